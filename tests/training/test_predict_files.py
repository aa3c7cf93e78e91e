"""``neurodyn predict``: what a prediction file records, a checkpoint's model settings against the run's, and
the output lock held from the up-front check to the write."""

from __future__ import annotations

import fcntl
import json
import os
import signal
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from neurodyn.cli import main
from neurodyn.training.hmmglm_module import HMMGLMModule

QUIET = ["--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
         "--trainer.enable_model_summary", "false"]
HMM = ["--model", "HMMGLMModule", "--model.config.variant", "gaussian", "--model.config.n_states", "2",
       "--model.config.basis", "raised_cosine", "--model.config.n_basis", "2", "--model.config.n_lags", "4",
       "--model.n_inner", "3", "--data", "SwitchingGLMDataModule", "--data.n_states", "2", "--data.n_neurons", "4",
       "--data.n_sequences", "4", "--data.n_bins", "2000", "--data.n_train", "2", *QUIET]
LORENZ = ["--data", "LorenzDataModule", "--data.n_conditions", "4", "--data.trials_per_condition", "5",
          "--data.batch_size", "8", "--model.init_args.config.hidden_size", "8",
          "--model.init_args.config.ff_dim", "16", *QUIET]


def _fit(tmp_path_factory, name: str, args: list[str], epochs: int) -> Path:
    root = tmp_path_factory.mktemp(name)
    assert main(["fit", *args, "--trainer.max_epochs", str(epochs), "--trainer.default_root_dir", str(root),
                 "--run-name", name]) == 0
    return root / name


@pytest.fixture(scope="module")
def hmm_run(tmp_path_factory):
    return _fit(tmp_path_factory, "hmm", HMM, 2)


@pytest.fixture(scope="module")
def lorenz_run(tmp_path_factory):
    return _fit(tmp_path_factory, "lf", LORENZ, 1)


def _predict(run: Path, out: Path, *extra: str) -> int:
    return main(["predict", "--run", str(run), "--ckpt_path", "last", "--prediction.path", str(out), *extra])


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# -- what a prediction file records --------------------------------------------------------------------
def test_hmmglm_file_keeps_log_marginal_in_float64(hmm_run, tmp_path):
    from neurodyn.training.datamodules import SwitchingGLMDataModule

    out = tmp_path / "pred.h5"
    assert _predict(hmm_run, out) == 0
    module = HMMGLMModule.load_from_checkpoint(hmm_run / "checkpoints" / "last.ckpt", map_location="cpu",
                                              weights_only=False)
    dm = SwitchingGLMDataModule(n_states=2, n_neurons=4, n_sequences=4, n_bins=2000, n_train=2)
    dm.setup("predict")
    expected = module.model.e_step(torch.as_tensor(dm.splits["valid"].heldin)).log_marginal
    with h5py.File(out) as f:
        log_marginal = f["valid_log_marginal"][()]
    # float64, the value inference computed (float32 rounded -7.5e3 nats to 5e-4)
    assert log_marginal.dtype == np.float64 and np.abs(log_marginal).min() > 1000
    np.testing.assert_allclose(log_marginal, expected.numpy(), rtol=0, atol=1e-9)
    assert (log_marginal != log_marginal.astype(np.float32)).any()


def test_hmmglm_file_records_the_model(hmm_run, tmp_path):
    """What produced the file: model, variant, basis and lags of ``coupling``, checkpoint, versions."""
    from neurodyn import __version__

    out = tmp_path / "pred.h5"
    assert _predict(hmm_run, out) == 0
    ckpt = hmm_run / "checkpoints" / "last.ckpt"
    with h5py.File(out) as f:
        attrs = dict(f.attrs)
    assert attrs["module"] == "HMMGLMModule" and attrs["model"] == "GaussianPriorHMMGLM"
    assert attrs["variant"] == "gaussian" and attrs["n_states"] == 2
    assert (attrs["basis"], attrs["n_basis"], attrs["n_lags"]) == ("raised_cosine", 2, 4)
    assert "decay" not in attrs  # an exponential-basis parameter
    config = json.loads(attrs["model_config"])
    assert config["config"]["variant"] == "gaussian" and config["config"]["n_basis"] == 2
    assert config["config"]["seed"] == 0  # the seed the model was built with (the config says null: the run's)
    assert config["n_heldin"] == 4 and config["n_inner"] == 3
    assert attrs["checkpoint"] == str(ckpt.resolve())
    assert attrs["checkpoint_epoch"] == 1 and attrs["checkpoint_global_step"] == 6  # 2 epochs x 1 batch x 3
    assert attrs["neurodyn_version"] == attrs["checkpoint_neurodyn_version"] == __version__
    assert attrs["checkpoint_seed_everything"] == 0


def test_the_file_records_the_seed_of_the_checkpoints_run(tmp_path_factory, tmp_path):
    """Which of several fits (``--seed_everything``) made a prediction file: ``checkpoint_seed_everything`` (a
    LangevinFlow file recorded no seed at all)."""
    run = _fit(tmp_path_factory, "seed3", [*LORENZ, "--seed_everything", "3"], 1)
    out = tmp_path / "pred.h5"
    assert _predict(run, out) == 0
    with h5py.File(out) as f:
        assert f.attrs["checkpoint_seed_everything"] == 3


def test_exponential_basis_is_one_function_whatever_n_basis_says(tmp_path):
    """The exponential basis is one filter: ``n_basis`` in the file is 1 (``config.n_basis`` is unused)."""
    from neurodyn.training.predictions import provenance

    module = HMMGLMModule(n_heldin=3, n_neurons=3, config={"variant": "glm", "n_basis": 3, "decay": 2.0})
    attrs = provenance(module, tmp_path / "x.ckpt")
    assert (attrs["model"], attrs["variant"], attrs["n_states"]) == ("GLM", "glm", 1)
    assert (attrs["basis"], attrs["n_basis"], attrs["decay"], attrs["span"]) == ("exponential", 1, 2.0, 5.0)
    assert attrs["checkpoint"] == str((tmp_path / "x.ckpt").absolute())


def test_langevinflow_file_records_the_model_and_checkpoint(lorenz_run, tmp_path):
    out = tmp_path / "pred.h5"
    assert _predict(lorenz_run, out) == 0
    with h5py.File(out) as f:
        attrs = dict(f.attrs)
    assert (attrs["module"], attrs["model"]) == ("LangevinFlowModule", "LangevinFlow")
    config = json.loads(attrs["model_config"])
    assert config["config"]["hidden_size"] == 8 and config["config"]["eval_mode"] == "sample"
    assert attrs["checkpoint"] == str((lorenz_run / "checkpoints" / "last.ckpt").resolve())
    assert attrs["checkpoint_epoch"] == 0
    assert attrs["batch_size"] == 8  # sampled passes draw per batch: the rates depend on it


# -- the checkpoint's model settings against the run's -------------------------------------------------
@pytest.mark.parametrize("option, value, expected", [
    ("config.n_states", "3", "n_states=2 but the run asks for 3"),  # other shapes
    # same shapes, another model: was silently replaced by the checkpoint's
    ("config.link", "exp", "link='sigmoid' but the run asks for 'exp'"),
    ("config.n_lags", "6", "n_lags=4 but the run asks for 6"),
])
def test_settings_that_define_the_trained_model_are_refused(hmm_run, tmp_path, capsys, option, value, expected):
    out = tmp_path / "pred.h5"
    capsys.readouterr()
    assert _predict(hmm_run, out, f"--model.init_args.{option}", value) == 2
    err = capsys.readouterr().err.strip().splitlines()
    ckpt = hmm_run / "checkpoints" / "last.ckpt"
    assert err == [f"neurodyn predict: error: {ckpt}: model.init_args.{option}: the checkpoint was trained with "
                   f"{expected}; this setting defines the trained model: drop it or give the checkpoint's value"]
    assert not out.exists() and _leftovers(tmp_path) == []


def test_a_config_file_with_other_model_settings_is_refused(hmm_run, tmp_path, capsys):
    """The reproduction: ``predict --config OTHER.yaml --ckpt_path CKPT`` where OTHER.yaml has 3 states."""
    other = tmp_path / "other.yaml"
    config = (hmm_run / "config.yaml").read_text()
    assert "    n_states: 2\n" in config
    other.write_text(config.replace("    n_states: 2\n", "    n_states: 3\n", 1))  # the model's, not the data's
    capsys.readouterr()
    code = main(["predict", "--config", str(other), "--ckpt_path", str(hmm_run / "checkpoints" / "last.ckpt"),
                 "--prediction.path", str(tmp_path / "p.h5")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert "model.init_args.config.n_states: the checkpoint was trained with n_states=2 but the run asks for 3" \
        in err[0]


def test_training_settings_keep_the_checkpoints_value_with_a_note(hmm_run, tmp_path, capsys):
    out = tmp_path / "pred.h5"
    capsys.readouterr()
    assert _predict(hmm_run, out, "--model.init_args.lr", "0.5", "--model.init_args.config.prior_std", "2.0") == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    assert len(notes) == 2
    assert any("model.init_args.lr: a training setting; predict keeps the checkpoint's 0.01" in n for n in notes)
    assert any("model.init_args.config.prior_std" in n and "2.0" in n for n in notes)
    with h5py.File(out) as f:
        config = json.loads(f.attrs["model_config"])
    assert config["lr"] == 0.01 and config["config"]["prior_std"] == pytest.approx(1 / 3)


@pytest.mark.parametrize("family", ["hmmglm", "langevinflow"])
def test_another_seed_everything_keeps_the_runs_seed_with_a_note(family, hmm_run, lorenz_run, tmp_path, capsys):
    """``predict --seed_everything 5`` on a run trained with seed 0: the rates are those of the run's seed (the
    sampled passes have their own seed), and the seed is the run's, said in a note (it was silently ignored,
    and an HMM-GLM's prediction file recorded ``config.seed`` 5 as the model's seed in ``model_config``)."""
    run = hmm_run if family == "hmmglm" else lorenz_run
    plain, seeded = tmp_path / "plain.h5", tmp_path / "seeded.h5"
    assert _predict(run, plain) == 0
    capsys.readouterr()
    assert _predict(run, seeded, "--seed_everything", "5") == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    assert notes == ["note: seed_everything: a training setting; predict keeps the checkpoint's 0 (the 5 asked for "
                     "is not used: predict draws no random numbers from it)"]
    with h5py.File(plain) as a, h5py.File(seeded) as b:
        assert dict(a.attrs).keys() == dict(b.attrs).keys()
        for key in a.attrs:
            if key != "checkpoint":
                assert np.array_equal(np.asarray(a.attrs[key]), np.asarray(b.attrs[key])), key
        names = []
        a.visit(lambda name: names.append(name) if isinstance(a[name], h5py.Dataset) else None)
        assert names
        for name in names:
            assert np.array_equal(a[name][()], b[name][()], equal_nan=True), name
        if family == "hmmglm":
            assert json.loads(b.attrs["model_config"])["config"]["seed"] == 0
    if family == "hmmglm":  # a random seed asked for (true) is the run's too, said so
        assert _predict(run, tmp_path / "random.h5", "--seed_everything", "true") == 0
        assert [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")] == [
            "note: seed_everything: a training setting; predict keeps the checkpoint's 0 (the random seed asked "
            "for is not used: predict draws no random numbers from it)"]


def test_predictions_draw_nothing_from_the_global_seed(lorenz_run, tmp_path, monkeypatch):
    """What the note of another seed says: predict draws no random numbers from seed_everything (LangevinFlow's
    sampled passes have a seed of their own). Run with another global seed than the run's (the keeping of the run's
    seed switched off), every array is the same."""
    import neurodyn.training.cli as training_cli

    plain, other = tmp_path / "plain.h5", tmp_path / "other.h5"
    assert _predict(lorenz_run, plain) == 0
    import lightning.pytorch.cli as lightning_cli

    monkeypatch.setattr(training_cli, "run_seed", lambda *args: (12345, None))
    seeds = []
    seed_everything = lightning_cli.seed_everything
    monkeypatch.setattr(lightning_cli, "seed_everything",
                        lambda seed=None, workers=False: seeds.append(seed) or seed_everything(seed, workers))
    assert _predict(lorenz_run, other) == 0
    assert seeds == [12345]  # the other seed was the global one
    with h5py.File(plain) as a, h5py.File(other) as b:
        names = []
        a.visit(lambda name: names.append(name) if isinstance(a[name], h5py.Dataset) else None)
        assert names and sorted(names) == sorted(n for n in names if n in b)
        for name in names:
            assert np.array_equal(a[name][()], b[name][()], equal_nan=True), name


def test_a_config_file_without_a_seed_asks_for_no_seed(tmp_path_factory, tmp_path, capsys):
    """A config file of other settings made predict's default seed_everything (0) look asked for: on a run of
    seed 3 a note said the checkpoint's 3 was kept instead of 'the 0 asked for'. Only a seed given on the command
    line, or held by a config file, is asked for."""
    import yaml

    run = _fit(tmp_path_factory, "seed3", [*HMM, "--seed_everything", "3"], 1)
    config = tmp_path / "other.yaml"
    config.write_text(yaml.safe_dump({"trainer": {"enable_progress_bar": False}}))
    capsys.readouterr()
    ckpt = str(run / "checkpoints" / "last.ckpt")

    def predict(out):  # the checkpoint alone, not --run: the seed is predict's default unless given
        return main(["predict", "-c", str(config), *HMM, "--ckpt_path", ckpt, "--prediction.path", str(out)])

    assert predict(tmp_path / "p.h5") == 0
    assert not [line for line in capsys.readouterr().out.splitlines() if "seed_everything" in line]
    config.write_text(yaml.safe_dump({"seed_everything": 7, "trainer": {"enable_progress_bar": False}}))
    assert predict(tmp_path / "q.h5") == 0
    assert [line for line in capsys.readouterr().out.splitlines() if "seed_everything" in line] == [
        "note: seed_everything: a training setting; predict keeps the checkpoint's 3 (the 7 asked for is not used: "
        "predict draws no random numbers from it)"]


def test_evaluation_settings_are_the_runs_with_a_note(lorenz_run, tmp_path, capsys):
    """LangevinFlow's eval_mode is chosen at predict time: 'mean' against a 'sample' checkpoint is used (it was
    silently replaced by the checkpoint's 'sample')."""
    from neurodyn.training.datamodules import LorenzDataModule
    from neurodyn.training.module import LangevinFlowModule

    out = tmp_path / "pred.h5"
    capsys.readouterr()
    assert _predict(lorenz_run, out, "--model.init_args.config.eval_mode", "mean",
                    "--model.init_args.config.hidden_size", "8") == 0  # the checkpoint's value: no note
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    assert notes == ["note: model.init_args.config.eval_mode: predict uses 'mean' as asked (the checkpoint was "
                     "trained with 'sample'; an evaluation setting)"]
    module = LangevinFlowModule.load_from_checkpoint(lorenz_run / "checkpoints" / "last.ckpt", map_location="cpu",
                                                     weights_only=False)
    dm = LorenzDataModule(n_conditions=4, trials_per_condition=5, batch_size=8)
    dm.setup("predict")
    expected = module.model.predict(torch.as_tensor(dm.splits["valid"].heldin), mode="mean")["rates"].numpy()
    with h5py.File(out) as f:
        np.testing.assert_allclose(f["valid_rates"][()], expected, rtol=1e-5, atol=1e-6)
        assert json.loads(f.attrs["model_config"])["config"]["eval_mode"] == "mean"


def test_the_run_folder_itself_gives_no_notes(hmm_run, tmp_path, capsys):
    capsys.readouterr()
    assert _predict(hmm_run, tmp_path / "p.h5") == 0
    assert "note:" not in capsys.readouterr().out


# -- the output lock, from the up-front check to the write ---------------------------------------------
def _flock(lock: Path) -> int | None:
    """A new open file description on ``lock`` with its flock taken, or None when someone holds it."""
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _count_predict_steps(monkeypatch, action=None) -> list:
    calls = []
    original = HMMGLMModule.predict_step

    def predict_step(self, *args, **kwargs):
        calls.append(1)
        if action is not None:
            action()
        return original(self, *args, **kwargs)

    monkeypatch.setattr(HMMGLMModule, "predict_step", predict_step)
    return calls


def test_second_predict_to_the_same_file_is_refused_before_it_computes(hmm_run, tmp_path, capsys, monkeypatch):
    out = tmp_path / "pred.h5"
    fd = _flock(tmp_path / ".pred.h5.lock")  # another writer of this file holds its lock
    assert fd is not None
    calls = _count_predict_steps(monkeypatch)
    try:
        capsys.readouterr()
        assert _predict(hmm_run, out) == 2
        captured = capsys.readouterr()
        err = captured.err.strip().splitlines()
        assert len(err) == 1 and "prediction.path: another process is writing this file" in err[0]
        assert calls == [] and "Restoring states" not in captured.out  # refused before the checkpoint is loaded
        assert (tmp_path / ".pred.h5.lock").exists()  # the other writer's lock is left alone
    finally:
        os.close(fd)
    assert not out.exists()


def test_the_lock_is_held_while_predict_computes_and_removed_after(hmm_run, tmp_path, monkeypatch):
    out = tmp_path / "sub" / "pred.h5"
    lock = out.with_name(".pred.h5.lock")
    seen = []

    def check():
        fd = _flock(lock)
        seen.append(fd is None)  # a second writer would be refused now
        if fd is not None:
            os.close(fd)

    _count_predict_steps(monkeypatch, check)
    assert _predict(hmm_run, out) == 0
    assert seen and all(seen)
    assert out.is_file() and _leftovers(out.parent) == []


@pytest.mark.parametrize("how", ["error", "SIGINT", "SIGTERM"])
def test_the_lock_is_released_when_predict_fails(hmm_run, tmp_path, monkeypatch, capsys, how):
    out = tmp_path / "sub" / "pred.h5"
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def fail():
        if how == "error":
            raise RuntimeError("boom")
        signum = getattr(signal, how)
        # the run turns SIGTERM into an exception while it holds the lock (never send it to a default handler:
        # that would kill the test process)
        assert signal.getsignal(signum) not in (signal.SIG_DFL, None)
        os.kill(os.getpid(), signum)

    _count_predict_steps(monkeypatch, fail)
    capsys.readouterr()
    if how == "error":
        with pytest.raises(RuntimeError, match="boom"):  # a bug's traceback, as every command
            _predict(hmm_run, out)
    else:
        assert _predict(hmm_run, out) == 128 + getattr(signal, how)
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1] == f"neurodyn predict: interrupted ({how}); nothing partial was kept"
    assert not out.parent.exists()  # the folder made for the output, the lock and temporary files: all gone
    assert {s: signal.getsignal(s) for s in handlers} == handlers


def test_the_settings_lists_name_fields_that_exist():
    """EVALUATION_SETTINGS / TRAINING_SETTINGS name module arguments and config fields; a renamed field
    would silently fall into 'defines the trained model' (refused), so every name must exist."""
    import dataclasses
    import inspect

    from neurodyn.models.hmmglm import HMMGLMConfig
    from neurodyn.models.langevinflow import LangevinFlowConfig
    from neurodyn.training.checkpoints import EVALUATION_SETTINGS, TRAINING_SETTINGS
    from neurodyn.training.hmmglm_module import HMMGLMModule
    from neurodyn.training.module import LangevinFlowModule

    classes = {"LangevinFlowModule": (LangevinFlowModule, LangevinFlowConfig),
               "HMMGLMModule": (HMMGLMModule, HMMGLMConfig)}
    for table in (EVALUATION_SETTINGS, TRAINING_SETTINGS):
        for family, keys in table.items():
            module, config = classes[family]
            arguments = set(inspect.signature(module).parameters)
            fields = {f.name for f in dataclasses.fields(config)}
            for key in keys:
                assert (key.removeprefix("config.") in fields if key.startswith("config.") else key in arguments), \
                    (family, key)


@pytest.mark.parametrize(("option", "value", "words"), [
    ("lr", "0.01", "resuming continues the checkpoint's run, trained with lr=0.003, but the run asks for 0.01"),
    ("config.hidden_size", "16", "the checkpoint was trained with hidden_size=8 but the run asks for 16"),
    # evaluation settings that define the validation metrics the monitor compares across epochs
    ("config.eval_mode", "mean", "resuming continues the checkpoint's run, validated with eval_mode='sample', but "
                                 "the run asks for 'mean': its epochs' valid/ metrics, and so its best checkpoint, "
                                 "would be measured two ways; drop it, or start a new run to change it (validate / "
                                 "test / predict take it)"),
    ("val_samples", "3", "resuming continues the checkpoint's run, validated with val_samples=10, but the run "
                         "asks for 3"),
    ("config.n_eval_samples", "7", "resuming continues the checkpoint's run, validated with n_eval_samples=50, but "
                                   "the run asks for 7"),
    ("config.decoder_precision", "bfloat16", "resuming continues the checkpoint's run, validated with "
                                             "decoder_precision='float32', but the run asks for 'bfloat16'"),
])
def test_resuming_with_other_model_settings_is_refused(lorenz_run, tmp_path, capsys, option, value, words):
    """``fit --run DIR --model.init_args.lr 0.01`` resumed with the checkpoint's lr and ``hidden_size 16`` with
    its 8, without a word; a resumed run continues the checkpoint's, so both are refused in one line, and the
    run folder is left as it was. ``--model.init_args.config.eval_mode mean`` on a run validated with 'sample'
    was taken with a note, and the best checkpoint then compared a mean-pass valid/loss with sampled ones of
    the earlier epochs: refused like another ``--checkpoint.monitor`` (validate / test / predict still take it,
    test_evaluation_settings_are_the_runs_with_a_note)."""
    import shutil

    run = tmp_path / "lf"
    shutil.copytree(lorenz_run, run)
    before = {p: p.stat().st_mtime_ns for p in run.rglob("*")}
    capsys.readouterr()
    code = main(["fit", "--run", str(run), "--trainer.max_epochs", "2", f"--model.init_args.{option}", value])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and f"model.init_args.{option}: {words}" in err[0], err
    assert {p: p.stat().st_mtime_ns for p in run.rglob("*")} == before


def test_a_resume_may_change_a_speed_option_of_the_same_arithmetic(lorenz_run, tmp_path, capsys):
    """The other half of VALIDATION_SETTINGS: ``checkpoint_decoder`` (recompute the block in backward, same
    arithmetic) is an evaluation setting outside it, so a resume takes it with a note and trains on."""
    import shutil

    run = tmp_path / "lf"
    shutil.copytree(lorenz_run, run)
    capsys.readouterr()
    assert main(["fit", "--run", str(run), "--trainer.max_epochs", "2",
                 "--model.init_args.config.checkpoint_decoder", "true"]) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    assert notes == ["note: model.init_args.config.checkpoint_decoder: fit uses True as asked (the checkpoint was "
                     "trained with False; an evaluation setting)"]
    assert json.loads((run / "checkpoints" / "checkpoints.json").read_text())["last_epoch"] == 1


# -- every file a training command reads is an input (training.inputs) --------------------------------
def _one_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line]
    assert len(err) == 1, err
    return err[0]


def _refused(capsys, argv: list[str], victim: Path, field: str) -> None:
    before = victim.read_bytes()
    assert main(argv) == 2
    line = _one_line(capsys)
    assert f"{victim}: {field}: is an input" in line, line
    assert victim.read_bytes() == before


def test_predict_never_writes_over_the_lorenz_cache(tmp_path_factory, tmp_path, capsys):
    """Auditor: `predict --prediction.path lz.h5 --prediction.overwrite true` replaced the Lorenz cache the run
    had just read (exit 0): predict's inputs held data.init_args.path only."""
    cache = tmp_path / "lz.h5"
    run = _fit(tmp_path_factory, "cached", [*LORENZ, "--data.cache", str(cache)], 1)
    assert cache.is_file()
    _refused(capsys, [*_predict_argv(run, cache), "--prediction.overwrite", "true"], cache, "prediction.path")


def _predict_argv(run: Path, out: Path) -> list[str]:
    return ["predict", "--run", str(run), "--ckpt_path", "last", "--prediction.path", str(out)]


def _section_file(run: Path, section: str, path: Path) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(yaml.safe_load((run / "config.yaml").read_text())[section]))
    return path


@pytest.mark.parametrize("spelling", ["-c {}", "-c{}", "-c={}", "--config {}", "--config={}"])
def test_a_config_file_however_given_is_an_input_of_predict(lorenz_run, tmp_path, capsys, spelling):
    """Auditor: `predict -c my.yaml --ckpt_path X --prediction.path my.yaml --prediction.overwrite true` made
    my.yaml an HDF5 file (exit 0): only `--config FILE` was known as an input."""
    config = tmp_path / "my.yaml"
    config.write_bytes((lorenz_run / "config.yaml").read_bytes())
    given = spelling.format(config).split(" ")
    argv = ["predict", *given, "--ckpt_path", str(lorenz_run / "checkpoints" / "last.ckpt"),
            "--prediction.path", str(config), "--prediction.overwrite", "true"]
    _refused(capsys, argv, config, "prediction.path")


@pytest.mark.parametrize("section", ["data", "model", "trainer", "checkpoint"])
def test_a_section_config_file_is_an_input_of_predict(lorenz_run, tmp_path, capsys, section):
    """``--data d.yaml`` (a class or group given as a file) was read, then written over by the prediction."""
    config = _section_file(lorenz_run, section, tmp_path / f"{section}.yaml")
    argv = [*_predict_argv(lorenz_run, config), f"--{section}", str(config), "--prediction.overwrite", "true"]
    _refused(capsys, argv, config, "prediction.path")


def test_a_file_named_inside_a_config_is_an_input_of_predict(lorenz_run, tmp_path, capsys):
    """A config that names another config file for a section (``data: d.yaml``): that file is read too."""
    data = _section_file(lorenz_run, "data", tmp_path / "d.yaml")
    top = tmp_path / "top.yaml"
    top.write_text("data: d.yaml\n")
    argv = [*_predict_argv(lorenz_run, data), "--config", str(top), "--prediction.overwrite", "true"]
    _refused(capsys, argv, data, "prediction.path")


def test_the_checkpoint_is_an_input_of_predict(lorenz_run, tmp_path, capsys):
    """A checkpoint outside any run folder (not protected as a run record): still predict's input."""
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes((lorenz_run / "checkpoints" / "last.ckpt").read_bytes())
    argv = ["predict", "--config", str(lorenz_run / "config.yaml"), "--ckpt_path", str(ckpt),
            "--prediction.path", str(ckpt), "--prediction.overwrite", "true"]
    _refused(capsys, argv, ckpt, "prediction.path")


@pytest.mark.parametrize("how", ["-c", "--trainer"])
def test_fit_never_writes_its_run_records_over_a_config_it_reads(tmp_path, capsys, how):
    """`fit -c runs/x/config.yaml --run-name x` (a folder holding that config and no checkpoint) wrote the run's
    config.yaml over the config it was reading; a section file there named like a record (hparams.yaml) too."""
    run = tmp_path / "runs" / "x"
    run.mkdir(parents=True)
    if how == "-c":
        victim = run / "config.yaml"
        victim.write_text("trainer:\n  max_epochs: 1\n")
    else:
        victim = run / "hparams.yaml"
        victim.write_text("max_epochs: 1\n")
    argv = ["fit", how, str(victim), *LORENZ, "--trainer.default_root_dir", str(tmp_path / "runs"),
            "--run-name", "x"]
    before = victim.read_bytes()
    assert main(argv) == 2
    # refused as a new run into a folder that holds files (10e3b2d), before the records are compared with the inputs
    assert _one_line(capsys) == (f"neurodyn fit: error: {run}: run_name: folder exists and holds files "
                                 f"({victim.name}; --run-name); a new run writes only into a new or empty folder: "
                                 "choose another --run-name")
    assert victim.read_bytes() == before and sorted(p.name for p in run.iterdir()) == [victim.name]


def test_fit_never_writes_its_checkpoints_into_a_folder_it_reads(tmp_path, capsys):
    """``--checkpoint.dirpath`` naming the folder of the config the fit reads: refused before the fit writes, in
    a line that names that option (it named run_name, which was not the cause)."""
    folder = tmp_path / "settings"
    folder.mkdir()
    victim = folder / "my.yaml"
    victim.write_text("trainer:\n  max_epochs: 1\n")
    argv = ["fit", "-c", str(victim), *LORENZ, "--trainer.default_root_dir", str(tmp_path / "runs"),
            "--run-name", "x", "--checkpoint.dirpath", str(folder)]
    before = victim.read_bytes()
    assert main(argv) == 2
    line = _one_line(capsys)
    assert line == (f"neurodyn fit: error: {victim}: checkpoint.dirpath: is an input file inside {folder}, which "
                    "the fit writes; move it, or choose another --checkpoint.dirpath"), line
    assert victim.read_bytes() == before and sorted(p.name for p in folder.iterdir()) == ["my.yaml"]


def test_every_file_option_of_the_datamodules_and_models_is_an_input():
    """Each init argument of a DataModule / model that names a file is listed by the class
    (``input_files`` / ``file_options``), so :func:`command_inputs` knows it: the Lorenz cache was not."""
    import inspect

    from neurodyn.training.datamodules import base, sources
    from neurodyn.training.hmmglm_module import HMMGLMModule
    from neurodyn.training.inputs import file_options
    from neurodyn.training.module import LangevinFlowModule

    classes = [c for m in (base, sources) for c in vars(m).values()
               if inspect.isclass(c) and issubclass(c, base.NeuralDataModule)]
    assert len(classes) >= 5
    for cls in [*classes, LangevinFlowModule, HMMGLMModule]:
        names = [p for p in inspect.signature(cls.__init__).parameters
                 if any(w in p for w in ("path", "file", "cache", "dir"))]
        assert set(names) <= set(file_options(cls)), (cls, names)
    assert file_options(sources.LorenzDataModule) == ("cache",)


def test_command_inputs_lists_every_file_of_the_parsed_config(tmp_path):
    """The parsed namespace holds each config file as jsonargparse read it (``config``, ``__path__``)."""
    from jsonargparse import Namespace
    from jsonargparse import Path as JPath

    from neurodyn.training.inputs import command_inputs

    for name in ("a.yaml", "d.yaml", "lz.h5", "m.ckpt"):
        (tmp_path / name).write_text("x: 1\n")
    cfg = Namespace(config=[JPath(str(tmp_path / "a.yaml"), mode="fr")], ckpt_path=str(tmp_path / "m.ckpt"),
                    data=Namespace(class_path="neurodyn.training.datamodules.LorenzDataModule",
                                   init_args=Namespace(cache=str(tmp_path / "lz.h5")),
                                   __path__=JPath(str(tmp_path / "d.yaml"), mode="fr")))
    assert {p.name for p in command_inputs(cfg)} == {"a.yaml", "d.yaml", "lz.h5", "m.ckpt"}


def test_config_files_of_the_command_line_knows_every_spelling():
    from neurodyn.training.parser_errors import config_files

    argv = ["-c", "a.yaml", "-cb.yaml", "-c=c.yaml", "--conf", "d.yaml", "--config=e.yaml", "--config", "f.yaml",
            "--ckpt_path", "x.ckpt", "--data.cache", "g.h5"]
    # --conf is no spelling of --config: options are matched whole (the parser refuses it, unrecognized)
    assert config_files(argv) == ["a.yaml", "b.yaml", "c.yaml", "e.yaml", "f.yaml"]
