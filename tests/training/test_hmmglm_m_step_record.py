"""The one-hot HMM-GLM's M-step: ``m_step_mode`` "auto" is resolved when the model is built (the Gumbel step with
the sigmoid link, the softmax step with exp / softplus). What a user reads (a checkpoint through ``neurodyn info``,
a prediction file) names the step that ran, and a resumed fit continues the step its checkpoint ran."""

from __future__ import annotations

import json
import re
import warnings

import h5py
import pytest
import torch

from neurodyn.cli import main

SIZES = ["--model.config.n_states", "2", "--model.n_inner", "2", "--data", "SwitchingGLMDataModule",
         "--data.n_states", "2", "--data.n_neurons", "5", "--data.n_sequences", "5", "--data.n_bins", "100",
         "--data.n_train", "3", "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
         "--trainer.enable_model_summary", "false"]
ONEHOT_EXP = ["--model", "HMMGLMModule", "--model.config.variant", "onehot", "--model.config.link", "exp", *SIZES]
GUMBEL_EXP = "m_step_mode 'gumbel' with link 'exp'"  # the warning of the Gumbel step's first M-step with link exp


def _fit(tmp_path, name, *extra, epochs=1):
    args = [*ONEHOT_EXP, "--trainer.default_root_dir", str(tmp_path), "--run-name", name,
            "--trainer.max_epochs", str(epochs), *extra]
    assert main(["fit", *args]) == 0
    return tmp_path / name / "checkpoints" / "last.ckpt"


def _as_old_checkpoint(ckpt, out, mode="gumbel", record=None):
    """``ckpt`` rewritten as an older one: its setting ``mode`` (before "auto" existed the default was "gumbel") and
    the ``resolved`` record ``record`` (None: none, as every checkpoint written before it had one)."""
    saved = torch.load(ckpt, weights_only=True)
    saved["hyper_parameters"]["config"]["m_step_mode"] = mode
    saved["neurodyn"].pop("resolved", None)
    if record is not None:
        saved["neurodyn"]["resolved"] = {"config.m_step_mode": record}
    torch.save(saved, out)
    return out


def test_checkpoint_info_and_prediction_file_name_the_m_step_that_ran(tmp_path, capsys, monkeypatch):
    """They recorded only the setting "auto": a reader could not tell which M-step produced the model. The
    setting stays recorded as given (a resume compares it); the step that ran is recorded beside it."""
    monkeypatch.setenv("COLUMNS", "400")
    ckpt = _fit(tmp_path, "hmm")
    saved = torch.load(ckpt, weights_only=True)
    assert saved["hyper_parameters"]["config"]["m_step_mode"] == "auto"
    assert saved["neurodyn"]["resolved"] == {"config.m_step_mode": "softmax"}
    capsys.readouterr()
    assert main(["info", str(ckpt)]) == 0
    assert re.search(r"config\.m_step_mode as run\s+│ softmax \(the setting: auto\)", capsys.readouterr().out)
    out = tmp_path / "pred.h5"
    assert main(["predict", "--run", str(tmp_path / "hmm"), "--ckpt_path", "last", "--prediction.path",
                 str(out)]) == 0
    with h5py.File(out) as f:
        assert f.attrs["m_step_mode"] == "softmax"
        assert json.loads(f.attrs["model_config"])["config"]["m_step_mode"] == "softmax"


def test_the_sigmoid_link_records_the_papers_gumbel_step_and_other_variants_none(tmp_path):
    sigmoid = _fit(tmp_path, "sigmoid", "--model.config.link", "sigmoid")
    assert torch.load(sigmoid, weights_only=True)["neurodyn"]["resolved"] == {"config.m_step_mode": "gumbel"}
    hmmglm = _fit(tmp_path, "hmmglm", "--model.config.variant", "hmmglm")
    assert "resolved" not in torch.load(hmmglm, weights_only=True)["neurodyn"]


def test_a_resume_of_a_checkpoint_from_before_auto_keeps_its_gumbel_step_and_says_so(tmp_path, capsys):
    """`fit --ckpt_path OLD.ckpt` with no m_step_mode stated: the checkpoint's settings are merged into the model's,
    so its 'gumbel' (the old default) runs on; a note now says that a new run's 'auto' would take another step."""
    old = _as_old_checkpoint(_fit(tmp_path, "a"), tmp_path / "old.ckpt")
    capsys.readouterr()
    with pytest.warns(UserWarning, match=GUMBEL_EXP):
        _fit(tmp_path, "b", "--ckpt_path", str(old), epochs=2)
    notes = [line for line in capsys.readouterr().out.splitlines() if "m_step_mode" in line]
    assert notes == ["note: model.init_args.config.m_step_mode: a fit from this checkpoint continues its 'gumbel' "
                     "M-step (its setting 'gumbel': checkpoints written before 'auto' existed record 'gumbel', the "
                     "old default); in a new run 'auto' takes 'softmax' with link 'exp'"], notes


def test_a_resume_continues_the_step_the_checkpoint_records_though_auto_resolves_otherwise(tmp_path, capsys):
    """A checkpoint of "auto" that ran the Gumbel step (under another rule of "auto"): its resume ran the softmax
    step that "auto" resolves to now, so kill-and-resume differed from the uninterrupted run."""
    old = _as_old_checkpoint(_fit(tmp_path, "a"), tmp_path / "old.ckpt", mode="auto", record="gumbel")
    capsys.readouterr()
    with pytest.warns(UserWarning, match=GUMBEL_EXP):
        last = _fit(tmp_path, "b", "--ckpt_path", str(old), epochs=2)
    assert "a fit from this checkpoint continues its 'gumbel' M-step (the step it records)" in capsys.readouterr().out
    assert torch.load(last, weights_only=True)["neurodyn"]["resolved"] == {"config.m_step_mode": "gumbel"}


def test_trainer_fit_from_python_continues_the_checkpoints_step(tmp_path, capsys):
    """A module built with the default "auto" and resumed with ``trainer.fit(module, ckpt_path=...)`` (no merge of the
    checkpoint's settings) continued a Gumbel checkpoint of link exp with the softmax step."""
    import lightning.pytorch as pl

    from neurodyn.models.hmmglm import HMMGLMConfig
    from neurodyn.training.datamodules import SwitchingGLMDataModule
    from neurodyn.training.hmmglm_module import HMMGLMModule

    old = _as_old_checkpoint(_fit(tmp_path, "a"), tmp_path / "old.ckpt")
    module = HMMGLMModule(5, 5, 100, config=HMMGLMConfig(variant="onehot", n_states=2, link="exp"), n_inner=2)
    assert module.model.m_step_mode == "softmax"
    dm = SwitchingGLMDataModule(n_states=2, n_neurons=5, n_sequences=5, n_bins=100, n_train=3)
    trainer = pl.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    capsys.readouterr()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(module, dm, ckpt_path=old)
    assert module.model.m_step_mode == "gumbel" and module.config.m_step_mode == "gumbel"
    assert module.hparams.config.m_step_mode == "auto"  # the setting as given, which a resume compares
    assert "a fit from this checkpoint continues its 'gumbel' M-step" in capsys.readouterr().out


# -- a resume that states m_step_mode: compared as the step that runs, not as written ---------------------------
def test_a_resume_stating_auto_against_a_gumbel_checkpoint_of_the_sigmoid_link_is_not_refused(tmp_path, capsys):
    """A checkpoint written before "auto" existed records "gumbel"; with the sigmoid link "auto" is that step. The
    text was compared: `m_step_mode: auto` (the setting of a shared config) was refused as a changed training
    setting although the run continues with the step it ran."""
    sigmoid = ["--model.config.link", "sigmoid"]
    old = _as_old_checkpoint(_fit(tmp_path, "a", *sigmoid), tmp_path / "old.ckpt")
    capsys.readouterr()
    last = _fit(tmp_path, "b", *sigmoid, "--model.config.m_step_mode", "auto", "--ckpt_path", str(old), epochs=2)
    assert "m_step_mode" not in capsys.readouterr().out  # the same step: no note
    assert torch.load(last, weights_only=True)["neurodyn"]["resolved"] == {"config.m_step_mode": "gumbel"}


def test_a_resume_stating_softmax_against_an_auto_checkpoint_that_ran_softmax_is_not_refused(tmp_path, capsys):
    """A run of "auto" with the exp link ran the softmax step (its checkpoints record it); `fit --run DIR` stating
    that step was refused as a change of "auto"."""
    _fit(tmp_path, "a")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["fit", "--run", str(tmp_path / "a"), "--trainer.max_epochs", "2",
                     "--model.config.m_step_mode", "softmax"]) == 0
    assert not [w for w in caught if GUMBEL_EXP in str(w.message)]  # no Gumbel step with link exp
    last = torch.load(tmp_path / "a" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 1 and last["neurodyn"]["resolved"] == {"config.m_step_mode": "softmax"}


@pytest.mark.parametrize(("stated", "setting", "had", "asked"), [
    ("gumbel", "auto", "'auto' (it ran the 'softmax' step)", "'gumbel'"),
    ("auto", "softmax", "'softmax'", "'auto' (the 'gumbel' step with link 'sigmoid')")])
def test_a_resume_stating_another_step_than_the_checkpoint_ran_is_still_refused(tmp_path, capsys, stated, setting,
                                                                                 had, asked):
    """Stated "gumbel" against a checkpoint of "auto" that ran softmax (its record), and stated "auto" (the Gumbel
    step with the sigmoid link) against one of "softmax": another step, refused as before, naming both steps."""
    sigmoid = ["--model.config.link", "sigmoid"]
    ckpt = _fit(tmp_path, "a", *sigmoid, "--model.config.m_step_mode", "softmax")
    old = _as_old_checkpoint(ckpt, tmp_path / "old.ckpt", mode=setting, record="softmax")
    capsys.readouterr()
    args = [*ONEHOT_EXP, *sigmoid, "--trainer.default_root_dir", str(tmp_path), "--run-name", "b",
            "--model.config.m_step_mode", stated, "--ckpt_path", str(old)]
    assert main(["fit", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"neurodyn fit: error: {old}: model.init_args.config.m_step_mode: resuming continues the "
                   f"checkpoint's run, trained with m_step_mode={had}, but the run asks for {asked}: drop it, or start "
                   "a new run to change it"), err
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(("stated", "setting", "record", "link", "refused"), [
    ("auto", "gumbel", None, "sigmoid", False),    # before 'auto': the old default, which 'auto' is with sigmoid
    ("auto", "gumbel", None, "exp", True),         # ... but not with exp (the checkpoint ran the Gumbel step)
    ("softmax", "auto", "softmax", "exp", False),  # 'auto' recorded as run
    ("softmax", "auto", None, "exp", False),       # 'auto' without a record: today's rule, the model's link
    ("gumbel", "auto", "softmax", "exp", True),
    ("gumbel", "auto", "softmax", "sigmoid", True),  # the record wins over what 'auto' takes now
    ("auto", "auto", "gumbel", "exp", False),       # the same text: never compared
    ("gumbel", "softmax", None, "sigmoid", True),
])
def test_reconcile_compares_the_m_step_as_it_runs(stated, setting, record, link, refused):
    from neurodyn.errors import InputError
    from neurodyn.training.checkpoints import reconcile_model_settings

    saved = {"config": {"variant": "onehot", "link": link, "m_step_mode": setting}}
    resolved = None if record is None else {"config.m_step_mode": record}
    call = lambda: reconcile_model_settings("HMMGLMModule", {"config": {"m_step_mode": stated}}, saved,  # noqa: E731
                                            "x.ckpt", "fit", resolved=resolved)
    if refused:
        with pytest.raises(InputError, match="model.init_args.config.m_step_mode"):
            call()
    else:
        assert call() == ({}, [])


# -- from Python: a module that states another step than its checkpoint's ---------------------------------------
def _stated_module(mode="softmax"):
    from neurodyn.models.hmmglm import HMMGLMConfig
    from neurodyn.training.hmmglm_module import HMMGLMModule

    return HMMGLMModule(5, 5, 100, config=HMMGLMConfig(variant="onehot", n_states=2, link="exp", m_step_mode=mode),
                        n_inner=2)


def _python_trainer():
    import lightning.pytorch as pl

    return pl.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False)


def _data():
    from neurodyn.training.datamodules import SwitchingGLMDataModule

    return SwitchingGLMDataModule(n_states=2, n_neurons=5, n_sequences=5, n_bins=100, n_train=3)


def test_trainer_fit_from_python_stating_another_step_than_the_checkpoints_is_refused(tmp_path):
    """``trainer.fit(module, ckpt_path=...)`` with a module that states "softmax" against a checkpoint that ran the
    Gumbel step ran the softmax step without a word, where ``neurodyn fit --ckpt_path`` refuses it (kill-and-resume
    would differ from one run): refused now, in the CLI's words, naming the option and the checkpoint."""
    from neurodyn.errors import InputError

    old = _as_old_checkpoint(_fit(tmp_path, "a"), tmp_path / "old.ckpt", mode="auto", record="gumbel")
    module = _stated_module("softmax")
    with pytest.raises(InputError) as caught:
        _python_trainer().fit(module, _data(), ckpt_path=old)
    assert str(caught.value) == (
        f"{old}: model.config.m_step_mode: resuming continues the checkpoint's run, trained with the 'gumbel' M-step, "
        "but the module asks for 'softmax': build it with 'auto' (or 'gumbel'), or start a new run to change it")


def test_loading_from_python_with_another_stated_step_keeps_the_checkpoints_and_says_so(tmp_path, capsys):
    """``load_from_checkpoint`` / ``trainer.predict`` with a stated step other than the checkpoint's: the model
    reported the stated step (``resolved_settings``, so a prediction file's ``m_step_mode``) though the weights were
    trained with the other one; it keeps the checkpoint's now, with ``neurodyn predict``'s note."""
    from neurodyn.models.hmmglm import HMMGLMConfig
    from neurodyn.training.hmmglm_module import HMMGLMModule

    old = _as_old_checkpoint(_fit(tmp_path, "a"), tmp_path / "old.ckpt", mode="auto", record="gumbel")
    capsys.readouterr()
    config = HMMGLMConfig(variant="onehot", n_states=2, link="exp", m_step_mode="softmax")
    loaded = HMMGLMModule.load_from_checkpoint(old, config=config, weights_only=True)
    assert loaded.model.m_step_mode == "gumbel" and loaded.resolved_settings() == {"config.m_step_mode": "gumbel"}
    assert ("note: model.config.m_step_mode: a training setting; loading keeps the checkpoint's 'gumbel' M-step (the "
            "'softmax' asked for is not used)") in capsys.readouterr().out
    module = _stated_module("softmax")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _python_trainer().predict(module, _data(), ckpt_path=old)
    assert module.model.m_step_mode == "gumbel"
    assert "a training setting; predict keeps the checkpoint's" in capsys.readouterr().out
