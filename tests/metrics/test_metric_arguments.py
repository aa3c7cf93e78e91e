"""The metrics' Python callers get one line naming the argument for anything that is not an array of the
documented shape, and the metrics take torch tensors as they come out of a model (with a grad, in float32).

Before, a tensor that requires grad gave torch's 'Can't call numpy() on Tensor that requires grad' from inside
numpy, a ragged list numpy's 'inhomogeneous shape', a 2-D PSTH an IndexError, heldin / heldout forward arrays
of different trial counts numpy's concatenate error, and psth_r2 truncated trial indices 1.5 -> 1 and jitters
0.5 -> 0 without a word."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurodyn.errors import InputError
from neurodyn.metrics import bits_per_spike, co_bps, fp_bps, poisson_nll, psth_r2, rate_r2, tp_corr, velocity_r2

RNG = np.random.default_rng(0)
SPIKES = RNG.poisson(0.5, (6, 10, 4)).astype(np.float64)
RATES = RNG.gamma(2.0, 0.25, SPIKES.shape)
PSTH = np.stack([RATES[:3].mean(0), RATES[3:].mean(0)])
CONDITIONS = [np.arange(3), np.arange(3, 6)]
BEHAVIOUR = RNG.normal(size=(6, 10, 2))


def _graph_tensor(array: np.ndarray) -> torch.Tensor:
    """``array`` as a model's output holds it: float32, part of an autograd graph."""
    leaf = torch.tensor(array, dtype=torch.float32, requires_grad=True)
    return leaf * 1.0


@pytest.mark.parametrize("name, call, expected", [
    ("bits_per_spike", lambda r: bits_per_spike(r, SPIKES), lambda: bits_per_spike(RATES, SPIKES)),
    ("co_bps", lambda r: co_bps(r, SPIKES), lambda: co_bps(RATES, SPIKES)),
    ("poisson_nll", lambda r: poisson_nll(r, SPIKES), lambda: poisson_nll(RATES, SPIKES)),
    ("rate_r2", lambda r: rate_r2(RATES, r), lambda: rate_r2(RATES, RATES)),
    ("psth_r2", lambda r: psth_r2(PSTH, r, CONDITIONS), lambda: psth_r2(PSTH, RATES, CONDITIONS)),
    ("velocity_r2", lambda r: velocity_r2(r, BEHAVIOUR, r, BEHAVIOUR),
     lambda: velocity_r2(RATES, BEHAVIOUR, RATES, BEHAVIOUR)),
])
def test_metrics_take_a_models_tensor_with_its_grad(name, call, expected):
    """float32 round-off is the only difference from the float64 array: 1e-6 relative (float32 eps 1.2e-7,
    a few operations deep) covers it."""
    rates = np.asarray(torch.tensor(RATES, dtype=torch.float32), dtype=np.float64)  # the values the tensor holds
    assert call(_graph_tensor(RATES)) == pytest.approx(call(rates), rel=1e-6, abs=1e-9)
    assert call(rates) == pytest.approx(expected(), rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("call, field", [
    (lambda: bits_per_spike([[0.5], [0.5, 0.5]], SPIKES), "rates"),
    (lambda: bits_per_spike(RATES, "spikes.h5"), "spikes"),
    (lambda: rate_r2("truth", RATES), "true_rates"),
    (lambda: rate_r2(RATES, object()), "pred_rates"),
    (lambda: psth_r2(PSTH[0], RATES, CONDITIONS), "psth"),
    (lambda: psth_r2(PSTH, RATES[0], CONDITIONS), "eval_rates"),
    (lambda: psth_r2(PSTH, RATES, [np.array([0, 1.5]), np.arange(3, 6)]), "eval_cond_idx"),
    (lambda: psth_r2(PSTH, RATES, CONDITIONS, jitter=np.array([0.5, 0, 0, 0, 0, 0])), "eval_jitter"),
    (lambda: fp_bps(RATES[:, :2], RATES[:4, :2, :1], SPIKES[:, :2], SPIKES[:4, :2, :1]),
     "eval_spikes_heldout_forward"),
    (lambda: velocity_r2(RATES[0], BEHAVIOUR[0], RATES[0], BEHAVIOUR[0]), "train_rates"),
    (lambda: velocity_r2(RATES, BEHAVIOUR, RATES[0], BEHAVIOUR), "eval_rates"),
    (lambda: tp_corr(SPIKES[0], RATES, np.zeros((6, 5))), "eval_spikes_heldout"),
])
def test_bad_arguments_are_one_line_naming_the_argument(call, field):
    with pytest.raises(InputError) as caught:
        call()
    assert caught.value.field == field, str(caught.value)
    assert "\n" not in str(caught.value)


def test_metrics_take_bfloat16_tensors():
    """A model run in bfloat16 (``--trainer.precision bf16-true``) gives bfloat16 tensors, which numpy has no type
    for: state_accuracy / weight metrics / psth_r2's condition rows raised torch's "Got unsupported ScalarType
    BFloat16" (each converted tensors with np.asarray(x.detach().cpu())). bfloat16 widens exactly to float32, so
    each value is what the float32 tensor gives."""
    from neurodyn.metrics.psth import as_index_list
    from neurodyn.metrics.states import state_accuracy, weight_error

    truth = np.array([0, 0, 1, 1, 2, 2, 1, 0])
    estimate = np.array([2, 2, 0, 0, 1, 1, 0, 1])
    bf16 = torch.tensor(estimate, dtype=torch.bfloat16)
    assert state_accuracy(truth, bf16) == state_accuracy(truth, estimate) == 7 / 8
    weights = np.random.default_rng(0).normal(size=(2, 3, 3))
    as_bf16 = torch.tensor(weights, dtype=torch.bfloat16, requires_grad=True) * 1.0
    widened = as_bf16.detach().float().numpy()
    assert weight_error(weights, as_bf16) == pytest.approx(weight_error(weights, widened), abs=0)
    rows = as_index_list([torch.tensor([0.0, 2.0], dtype=torch.bfloat16), torch.tensor([1, 3])])
    assert [r.tolist() for r in rows] == [[0, 2], [1, 3]]
    assert rate_r2(RATES, torch.tensor(RATES, dtype=torch.bfloat16)) == pytest.approx(
        rate_r2(RATES, torch.tensor(RATES, dtype=torch.bfloat16).float().numpy()), abs=0)
