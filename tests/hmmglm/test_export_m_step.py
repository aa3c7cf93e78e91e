"""``export_model_h5`` recorded no M-step for the one-hot HMM-GLM, though checkpoints (``neurodyn.resolved``) and
prediction files record the step that ran as ``m_step_mode``. The default recipe runs Gumbel phases and then a
softmax polish, and restores the model's own ``m_step_mode`` ("gumbel") after each: one attribute read from the
model would name a step that did not fit the couplings last. The file now records each phase's step, in order, and
the last one as ``m_step_mode``, with a definition beside them like its other fields."""

from __future__ import annotations

import h5py
import torch

from neurodyn.models.hmmglm import HMMGLM, OneHotPriorHMMGLM
from neurodyn.models.hmmglm.evaluate import export_model_h5
from neurodyn.models.hmmglm.fit import fit_em
from neurodyn.models.hmmglm.recipes import RECIPES, EMPhase, fit_recipe, with_phases


def _spikes():
    return torch.poisson(torch.full((3, 60, 3), 0.4, dtype=torch.float32), generator=torch.Generator().manual_seed(0))


def test_export_after_the_default_recipes_phases_records_each_step_and_the_last(tmp_path):
    """The default recipe's phases (shortened, same steps: Gumbel, Gumbel, softmax polish) with its restarts."""
    tiny = with_phases(RECIPES["default"], *(EMPhase(1, 1, p.lr, batch_size=p.batch_size, m_step_mode=p.m_step_mode,
                                                    revive=p.revive) for p in RECIPES["default"].phases))
    model, histories = fit_recipe(_spikes(), 2, recipe=tiny, seed=0)
    assert model.m_step_mode == "gumbel"  # the model's own step, restored after the polish
    assert [h.m_step_mode for h in histories] == ["gumbel", "gumbel", "softmax"]
    with h5py.File(export_model_h5(tmp_path / "model.h5", model)) as f:
        assert f.attrs["m_step_mode"] == "softmax"
        assert list(f.attrs["m_step_phases"]) == ["gumbel", "gumbel", "softmax"]
        assert "m_step_phases" in f.attrs["m_step_mode_definition"]


def test_a_model_fitted_outside_fit_em_records_its_own_step_and_other_variants_none(tmp_path):
    """No phases recorded (a LightningModule's model, a model fitted by hand): its own step, no phase list; the
    variants without an M-step mode write neither."""
    model = OneHotPriorHMMGLM(3, n_states=2, link="exp")
    with h5py.File(export_model_h5(tmp_path / "onehot.h5", model)) as f:
        assert f.attrs["m_step_mode"] == "softmax" and "m_step_phases" not in f.attrs
        assert "m_step_mode_definition" in f.attrs
    fit_em(model, _spikes(), n_iters=1, n_inner=1)
    with h5py.File(export_model_h5(tmp_path / "fitted.h5", model)) as f:
        assert list(f.attrs["m_step_phases"]) == ["softmax"]
    with h5py.File(export_model_h5(tmp_path / "hmmglm.h5", HMMGLM(3, n_states=2))) as f:
        assert not {"m_step_mode", "m_step_phases", "m_step_mode_definition"} & set(f.attrs)


def test_a_fit_stopped_after_some_m_steps_records_its_step(tmp_path):
    """A softmax fit stopped by its callback (as by Ctrl-C) after two M-steps has changed the couplings with the
    softmax step: the record names it (it recorded only on a normal return, and the file said 'gumbel'). A fit
    stopped before its first M-step records nothing."""
    model = OneHotPriorHMMGLM(3, n_states=2)
    fit_em(model, _spikes(), n_iters=1, n_inner=1)
    assert model.m_step_phases == ("gumbel",)

    class Stop(Exception):
        pass

    def stop_at(k):
        def callback(it, *_):
            if it == k:
                raise Stop
        return callback

    before = model.m_step_phases
    model.m_step_mode = "softmax"
    try:
        fit_em(model, _spikes(), n_iters=5, n_inner=1, callback=stop_at(0))  # before any M-step
    except Stop:
        pass
    assert model.m_step_phases == before
    try:
        fit_em(model, _spikes(), n_iters=5, n_inner=1, callback=stop_at(2))  # after two M-steps
    except Stop:
        pass
    assert model.m_step_phases == ("gumbel", "softmax")
    with h5py.File(export_model_h5(tmp_path / "model.h5", model)) as f:
        assert f.attrs["m_step_mode"] == "softmax"
