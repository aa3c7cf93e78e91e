"""Array training recipe, the cosine schedule, and seeded sampled prediction."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from random_draws import draws, seed_callers_generators

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


class _FixedRates:
    """Stands in for a model: predict() returns known rates (of the input's shape plus held-out columns)."""

    def __init__(self, rates_fn):
        self.rates_fn, self.inputs = rates_fn, []

    def predict(self, heldin, n_samples=None):
        self.inputs.append(heldin.numpy().copy())
        return {"rates": torch.as_tensor(self.rates_fn(heldin.numpy()))}


def _poisson_ll(r, y):
    from scipy.special import gammaln

    return y * np.log(r) - r - gammaln(y + 1)


def test_heldout_loglik_scores_heldout_units_exactly():
    from neurodyn.training.recipes import heldout_loglik

    rng = np.random.default_rng(0)
    x, y = rng.poisson(1.0, (3, 5, 4)).astype(float), rng.poisson(0.5, (3, 5, 2)).astype(float)
    rates = rng.uniform(0.2, 2.0, (3, 5, 6))
    model = _FixedRates(lambda _: rates)
    assert heldout_loglik(model, x, y) == pytest.approx(_poisson_ll(rates[..., 4:], y).mean(), rel=1e-12)
    np.testing.assert_array_equal(model.inputs[0], x)  # held-out units: the full held-in input


def test_heldout_loglik_hides_entries_and_scores_only_them():
    from neurodyn.training.recipes import heldout_loglik

    rng = np.random.default_rng(1)
    x = rng.poisson(1.0, (4, 6, 5)).astype(float)
    # a model that copies its input: on hidden entries it predicts 0 (clipped), on kept ones x / p
    model = _FixedRates(lambda inp: np.maximum(inp, 0.0))
    score = heldout_loglik(model, x, None, keep_prob=0.6, n_masks=2, seed=3)
    masks = np.random.default_rng(3)
    total, count = 0.0, 0
    for inp in model.inputs:
        keep = masks.random(x.shape) < 0.6
        np.testing.assert_allclose(inp, np.where(keep, x / 0.6, 0.0), rtol=1e-6)
        total += _poisson_ll(np.maximum(inp, 1e-9), x)[~keep].sum()
        count += (~keep).sum()
    assert score == pytest.approx(total / count, rel=1e-6)
    # copying the input is not rewarded: a constant mean-rate model scores higher
    mean_model = _FixedRates(lambda inp: np.full(inp.shape, x.mean()))
    assert heldout_loglik(mean_model, x, None, keep_prob=0.6, n_masks=2, seed=3) > score


def test_fit_langevinflow_keeps_the_best_selection_epoch():
    from neurodyn.training.recipes import fit_langevinflow, heldout_loglik

    split = _split(np.random.default_rng(2))
    module, _ = fit_langevinflow(*split.parts(), bin_ms=20, epochs=4, model=TINY_MODEL, select_every=2,
                                 select_samples=2, check_val_every_n_epoch=5)
    sel = module.selection
    assert [e for e, _ in sel["history"]] == [2, 4]
    best_epoch, best = max(sel["history"], key=lambda h: h[1])
    assert sel["best_epoch"] == best_epoch and sel["best_score"] == best
    # the returned weights are the selected ones: scoring them again gives the recorded score
    again = heldout_loglik(module.model, split.eval_heldin, split.eval_heldout, n_samples=2)
    assert again == pytest.approx(best, rel=1e-6)
    assert "held-out units" in sel["rule"]
    no_heldout = np.zeros(split.eval_heldin.shape[:2] + (0,))
    with pytest.raises(InputError, match="keep probability"):
        fit_langevinflow(split.train_heldin, split.train_heldout[..., :0], split.eval_heldin, no_heldout, bin_ms=20,
                         epochs=1, model={**TINY_MODEL, "cd_keep_prob": 1.0}, select_every=1)


def test_heldout_loglik_passes_the_evaluation_mode_through():
    from neurodyn.training.recipes import heldout_loglik

    class ByMode:
        def __init__(self):
            self.calls = []

        def predict(self, heldin, n_samples=None, mode="mean"):
            self.calls.append(mode)
            return {"rates": torch.full(heldin.shape, 1.0 if mode == "mean" else 2.0)}

    x = np.random.default_rng(2).poisson(2.0, (3, 4, 2)).astype(float)
    model = ByMode()
    by_mode = {m: heldout_loglik(model, x, None, keep_prob=0.5, n_masks=1, mode=m) for m in ("mean", "sample")}
    assert model.calls == ["mean", "sample"]
    assert by_mode["sample"] > by_mode["mean"]  # rate 2 fits Poisson(2) counts better than rate 1
    heldout_loglik(model, x, None, keep_prob=0.5, n_masks=1)  # no mode: the model's own default
    assert model.calls[-1] == "mean"


@pytest.mark.parametrize("caller", [False, True])
def test_fit_langevinflow_and_the_demo_put_the_callers_torch_settings_back(tmp_path, caller):
    """The recipe (notebook 02's pseudo_cosmoothing) and the demo's train_lorenz flush subnormal floats to zero while
    they train (callbacks.flush_denormals) and left it on: a notebook then computed ``1e-300 * 1e-10`` as 0.0 (the
    setting is the thread's: NumPy and Python floats too). train_lorenz also left torch at its ``threads``, and its
    Trainer's ``deterministic=False`` switched a caller's deterministic algorithms off."""
    from neurodyn.demo import train_lorenz
    from neurodyn.training.recipes import fit_langevinflow

    if not torch.set_flush_denormal(caller):
        pytest.skip("this CPU cannot flush subnormals")
    threads = torch.get_num_threads()
    try:
        split = _split(np.random.default_rng(2))
        torch.use_deterministic_algorithms(caller)
        fit_langevinflow(*split.parts(), bin_ms=20, epochs=1, model=TINY_MODEL)
        assert ((1e-300 * 1e-10) == 0) is caller
        train_lorenz(tmp_path, max_epochs=1, n_conditions=2, trials_per_condition=4, batch_size=8, progress=False,
                     model_overrides={"hidden_size": 8, "ff_dim": 16}, threads=threads + 1)
        assert ((1e-300 * 1e-10) == 0) is caller
        assert torch.get_num_threads() == threads
        assert torch.are_deterministic_algorithms_enabled() is caller
    finally:
        torch.set_flush_denormal(False)  # the process default, for the tests after this one
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(False)


@pytest.mark.parametrize("recipe", ["fit_langevinflow", "train_lorenz"])
def test_the_recipes_leave_the_callers_random_generators_and_seed_as_they_were(tmp_path, monkeypatch, recipe):
    """The library functions a notebook calls directly (notebook 02's fit_langevinflow, the demo's and the Lorenz
    benchmark's train_lorenz) run Lightning's seed_everything(seed): they reseeded torch, NumPy's legacy generator
    and Python's random for the process, and left PL_GLOBAL_SEED / PL_SEED_WORKERS set (a later unseeded DDP fit
    took the recipe's seed). The commands put these back (random_states_kept); the recipes now do too."""
    from neurodyn.demo import train_lorenz
    from neurodyn.training.recipes import fit_langevinflow

    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)
    monkeypatch.delenv("PL_SEED_WORKERS", raising=False)
    seed_callers_generators(5)
    expected = draws()
    seed_callers_generators(5)
    if recipe == "fit_langevinflow":
        fit_langevinflow(*_split(np.random.default_rng(2)).parts(), bin_ms=20, epochs=1, model=TINY_MODEL, seed=3)
    else:
        train_lorenz(tmp_path, max_epochs=1, seed=3, n_conditions=2, trials_per_condition=4, batch_size=8,
                     progress=False, model_overrides={"hidden_size": 8, "ff_dim": 16})
    assert draws() == expected
    assert "PL_GLOBAL_SEED" not in os.environ and "PL_SEED_WORKERS" not in os.environ


def test_the_demo_trains_float32_whatever_the_callers_default_dtype(tmp_path):
    """``main(["demo"])`` from a notebook that had set ``torch.set_default_dtype(torch.float64)`` failed with a
    traceback (float32 batches against float64 weights); train_lorenz builds as in its own process and leaves the
    caller's default dtype as it was."""
    from neurodyn.demo import train_lorenz

    torch.set_default_dtype(torch.float64)
    try:
        result = train_lorenz(tmp_path, max_epochs=1, n_conditions=2, trials_per_condition=4, batch_size=8,
                              progress=False, model_overrides={"hidden_size": 8, "ff_dim": 16})
        assert torch.get_default_dtype() == torch.float64
    finally:
        torch.set_default_dtype(torch.float32)
    assert result["_rates"].dtype == np.float32 and np.isfinite(result["langevinflow_rate_r2"])


def test_the_demo_from_python_leaves_the_callers_random_generators_as_they_were(tmp_path, monkeypatch, capsys):
    """``main(["demo"])`` trains with ``seed_everything(--seed)``, which reseeds torch, NumPy's legacy global generator
    and Python's ``random`` for the process: a notebook's own draws after the demo were the run's, not the ones its
    own seeding gave. Its generators come back as the demo found them."""
    import neurodyn.demo
    from neurodyn.cli import main

    monkeypatch.setattr(neurodyn.demo, "DEMO_SIMULATION", {"n_conditions": 2, "trials_per_condition": 4,
                                                           "n_neurons": 29})
    monkeypatch.setattr(neurodyn.demo, "_real_nwb", lambda: None)  # no prepare of the real file
    seed_callers_generators(77)
    expected = draws()
    seed_callers_generators(77)
    assert main(["demo", "--out", str(tmp_path / "demo"), "--epochs", "1"]) == 0
    assert "Lorenz validation rate R2" in capsys.readouterr().out
    assert draws() == expected
