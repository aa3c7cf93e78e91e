"""Array training recipe, the cosine schedule, and seeded sampled prediction."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurodyn.data.pseudo import PseudoSplit
from neurodyn.errors import InputError
from neurodyn.training.recipes import SMALL_REAL_MODEL, SMALL_REAL_OPT, pseudo_cosmoothing

TINY_MODEL = {**SMALL_REAL_MODEL, "hidden_size": 8, "latent_dim": 8, "ff_dim": 16, "n_eval_samples": 3}


def _split(rng, n_train=12, n_eval=4, n_bins=16, n_in=6, n_out=3):
    # a shared slow rate modulation, so held-out units are predictable from held-in ones
    phase = rng.uniform(0, 2 * np.pi, (n_train + n_eval, 1, 1))
    t = np.arange(n_bins)[None, :, None]
    rates = 0.2 * np.exp(np.sin(0.4 * t + phase) * rng.uniform(0.5, 1.5, (1, 1, n_in + n_out)))
    x = rng.poisson(rates).astype(float)
    return PseudoSplit(x[:n_train, :, :n_in], x[:n_train, :, n_in:], x[n_train:, :, :n_in], x[n_train:, :, n_in:],
                       np.arange(n_in), np.arange(n_in, n_in + n_out), 5)


def test_pseudo_cosmoothing_trains_coarse_and_scores_fine(tmp_path):
    split = _split(np.random.default_rng(0))
    out = pseudo_cosmoothing(split, train_bin_ms=20, epochs=3, model=TINY_MODEL, out_dir=tmp_path)
    assert out["rates"].shape == (4, 16, 9)  # fine bins, held-in | held-out
    # spread rates: constant within each 4-bin block
    np.testing.assert_allclose(out["rates"][:, 0], out["rates"][:, 3])
    assert np.isfinite([out["co_bps"], out["co_bps_mean_mode"], out["train_co_bps"]]).all()
    assert (tmp_path / "last.ckpt").is_file()
    # the cosine schedule ends at min_lr after max_epochs epochs
    lr = out["module"].trainer.optimizers[0].param_groups[0]["lr"]
    assert lr == pytest.approx(1e-5, rel=1e-6)


def test_train_bin_must_be_a_multiple():
    with pytest.raises(ValueError, match="multiple"):
        pseudo_cosmoothing(_split(np.random.default_rng(1)), train_bin_ms=12, epochs=1, model=TINY_MODEL)


def test_module_option_errors():
    from neurodyn.training.module import LangevinFlowModule

    with pytest.raises(InputError, match="lr_schedule"):
        LangevinFlowModule(3, 5, 6, lr_schedule="step")
    with pytest.raises(InputError, match="val_samples"):
        LangevinFlowModule(3, 5, 6, val_samples=0)
    assert SMALL_REAL_OPT["lr_schedule"] == "cosine"


def test_sampled_prediction_is_seeded():
    from neurodyn.models.langevinflow import LangevinFlow, LangevinFlowConfig

    model = LangevinFlow(3, 5, 6, 0, LangevinFlowConfig(hidden_size=8, ff_dim=16, n_eval_samples=4))
    x = torch.poisson(torch.ones(2, 6, 3))
    a, b = model.predict(x)["rates"], model.predict(x)["rates"]
    torch.testing.assert_close(a, b, rtol=0, atol=0)  # default seed 0: same draws
    c = model.predict(x, seed=1)["rates"]
    assert not torch.equal(a, c)  # other draws give other (sampled) rates
