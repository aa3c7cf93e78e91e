"""psth R² (conditions, jitter, NaN bins) and rate R² against sklearn's r2_score on explicit arrays."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import r2_score

from neurodyn.errors import InputError
from neurodyn.metrics import bits_per_spike, psth_r2, rate_r2
from neurodyn.metrics.psth import as_index_list, shift_trials


def test_psth_perfect_and_mean_predictions():
    rng = np.random.default_rng(0)
    psth = rng.gamma(2, 1, (3, 6, 4))
    psth[1, :2] = np.nan  # shorter condition
    cond_idx = [np.array([0, 3]), np.array([1, 4, 5]), np.array([2])]
    rates = np.empty((6, 6, 4))
    for c, trials in enumerate(cond_idx):
        rates[trials] = np.nan_to_num(psth[c], nan=0.0)
    assert psth_r2(psth, rates, cond_idx) == pytest.approx(1.0, abs=1e-12)
    # predicting each neuron's mean over the stacked valid rows gives R² = 0 exactly
    stacked = np.vstack([psth[c][~np.isnan(psth[c, :, 0])] for c in range(3)])
    rates[:] = stacked.mean(axis=0)
    assert psth_r2(psth, rates, cond_idx) == pytest.approx(0.0, abs=1e-12)


def test_psth_jitter_shift_and_oracle():
    rng = np.random.default_rng(1)
    psth = rng.gamma(2, 1, (2, 8, 3))
    psth[:, :2] = np.nan  # DMFC-like front padding
    jitter = np.array([0, 1, 2, 1])
    cond_idx = [np.array([0, 1]), np.array([2, 3])]
    rates = rng.gamma(2, 1, (4, 8, 3))
    shifted = shift_trials(rates, jitter)
    # the oracle, written out: trial 2 moved 2 bins later
    assert np.isnan(shifted[2, :2]).all() and np.array_equal(shifted[2, 2:], rates[2, :-2])
    true = np.vstack([psth[c, 2:] for c in range(2)])
    pred = np.vstack([shifted[idx].mean(0)[2:] for idx in cond_idx])
    assert psth_r2(psth, rates, cond_idx, jitter) == pytest.approx(r2_score(true, pred), abs=1e-12)
    with pytest.raises(InputError, match="NaN"):
        psth_r2(psth, rates, cond_idx, np.array([0, 3, 0, 0]))  # shift reaches the scored bins


def test_psth_bad_input():
    psth = np.ones((2, 4, 3))
    with pytest.raises(InputError, match=r"expected shape \(\*, 4, 3\), got \(5, 4, 2\)"):
        psth_r2(psth, np.ones((5, 4, 2)), [np.array([0]), np.array([1])])
    with pytest.raises(InputError, match="conditions"):
        psth_r2(psth, np.ones((5, 4, 3)), [np.array([0])])


def test_psth_r2_refuses_negative_rates_as_bits_per_spike_does():
    """psth_r2 scored negative predicted rates without a word where bits_per_spike
    refuses them; both now refuse them, in the entries they score: a negative rate of a trial no condition holds,
    or in a bin whose PSTH is NaN, is not scored and not refused (as bits_per_spike skips NaN-target entries)."""
    psth = np.array([[[1.0, 0.0], [2.0, 0.5], [np.nan, np.nan]], [[3.0, 1.0], [5.0, 0.0], [np.nan, np.nan]]])
    cond_idx = [np.array([0, 2]), np.array([1, 3])]
    rates = np.concatenate([psth, psth, np.ones((1, 3, 2))])  # trial 4: in no condition
    rates[:4, 2] = -1.0  # bins with a NaN PSTH: not scored
    rates[4] = -1.0
    assert psth_r2(psth, rates, cond_idx) == 1.0
    rates[2, 1, 1] = -0.25
    with pytest.raises(InputError, match=r"negative rate predictions \(1 entries, first at index \(2, 1, 1\)\)") as err:
        psth_r2(psth, rates, cond_idx)
    assert err.value.field == "eval_rates"
    with pytest.raises(InputError, match="negative rate predictions") as err:  # bits_per_spike: the same words
        bits_per_spike(rates[:4, :2], np.zeros((4, 2, 2)))


def test_cond_idx_formats():
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = np.array([0, 2]), np.array([1])
    assert [list(x) for x in as_index_list(ragged)] == [[0, 2], [1]]
    assert [list(x) for x in as_index_list(np.array([[0.0, np.nan], [1.0, 2.0]]))] == [[0], [1, 2]]


def test_rate_r2_known_cases_and_argument_order():
    rng = np.random.default_rng(2)
    truth = rng.gamma(2, 1, (5, 7, 3))
    assert rate_r2(truth, truth) == 1.0
    assert rate_r2(truth, np.broadcast_to(truth.mean(axis=(0, 1)), truth.shape)) == pytest.approx(
        0.0, abs=1e-12
    )
    pred = np.abs(truth + rng.normal(0, 0.5, truth.shape))  # rates: never below zero
    flat_t, flat_p = truth.reshape(-1, 3), pred.reshape(-1, 3)
    by_hand = np.mean(1 - ((flat_t - flat_p) ** 2).sum(0) / ((flat_t - flat_t.mean(0)) ** 2).sum(0))
    assert rate_r2(truth, pred) == pytest.approx(by_hand, rel=1e-12)
    assert rate_r2(pred, truth) != pytest.approx(by_hand, rel=1e-6)  # not symmetric: truth first
    with pytest.raises(InputError, match="expected shape"):
        rate_r2(truth, pred[:, :3])
    pred[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="pred_rates"):
        rate_r2(truth, pred)


def test_rate_r2_of_a_constant_neuron_and_of_one_row():
    """A constant true neuron counted as 0 (or 1 when predicted exactly) while the docstring's formula divides
    by zero; one row was nan with a sklearn warning (helper-50). The docstring now states the first, and one
    row is refused."""
    truth = np.array([[1.0, 2.0], [1.0, 3.0]])  # neuron 0 constant
    assert rate_r2(truth, np.array([[1.0, 2.0], [1.0, 2.5]])) == pytest.approx((1.0 + 0.5) / 2, abs=1e-15)
    assert rate_r2(truth, np.array([[1.5, 2.0], [1.0, 2.5]])) == pytest.approx((0.0 + 0.5) / 2, abs=1e-15)
    with pytest.raises(InputError, match="at least two rows"):
        rate_r2(np.ones((1, 1, 3)), np.ones((1, 1, 3)))


@pytest.mark.parametrize("argument", ["true_rates", "pred_rates", "psth"])
def test_rate_and_psth_r2_refuse_negative_rates(argument):
    """rate_r2 scored negative rates (log-rates or an unclipped read-out passed by mistake gave an R² of something
    else) and psth_r2 a negative or infinite true PSTH, while bits_per_spike and psth_r2's predictions refuse them.
    Now each is one InputError naming the argument and the first index; NaN bins of a PSTH stay undefined bins."""
    rng = np.random.default_rng(4)
    truth = rng.gamma(2, 1, (4, 5, 3))
    bad = truth.copy()
    bad[1, 2, 0] = -0.25
    if argument == "psth":
        conditions = [np.array([0, 2]), np.array([1, 3])]
        psth = np.stack([truth[[0, 2]].mean(0), truth[[1, 3]].mean(0)])
        psth[0, 0] = np.nan  # an undefined bin is no error
        assert psth_r2(psth, truth, conditions) == pytest.approx(1.0, abs=1e-12)
        psth[1, 2, 0] = -0.25
        with pytest.raises(InputError, match=r"psth: negative PSTH rates \(1 entries, first at index \(1, 2, 0\)\)"):
            psth_r2(psth, truth, conditions)
        psth[1, 2, 0], psth[1, 3, 2] = 1.0, np.inf
        with pytest.raises(InputError, match=r"psth: infinite PSTH rates"):
            psth_r2(psth, truth, conditions)
        psth[1, 3, 2] = np.nan  # NaN in a defined bin (neuron 0 is not NaN there): sklearn's ValueError before
        with pytest.raises(InputError, match=r"psth: NaN PSTH rates"):
            psth_r2(psth, truth, conditions)
        return
    args = (bad, truth) if argument == "true_rates" else (truth, bad)
    what = "rates" if argument == "true_rates" else "rate predictions"
    with pytest.raises(InputError, match=rf"{argument}: negative {what} \(1 entries, first at index \(1, 2, 0\)\)"):
        rate_r2(*args)
