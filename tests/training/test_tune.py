"""`neurodyn tune`: search-file checks, the learning rate after a PBT exploit, and a 4-trial PBT on Ray."""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
import yaml

from neurodyn.cli import main
from neurodyn.errors import InputError
from neurodyn.training.tune import (
    HYPERPARAMETERS,
    TrialLearningRate,
    apply_hyperparameters,
    build_model_and_data,
    load_search,
)
from neurodyn.training.tune.space import check_values

ROOT = Path(__file__).resolve().parents[2]

#: a Lorenz set and a model small enough that an epoch takes ~0.1 s on one thread
TINY = yaml.safe_load((Path(__file__).with_name("tiny_lorenz_tune.yaml")).read_text())

SEARCH = """\
space:
  lr: {loguniform: [1e-3, 2e-2]}
  weight_decay: {loguniform: [1e-6, 1e-3]}
  dropout: {uniform: [0.0, 0.2]}
  cd_keep_prob: {uniform: [0.5, 1.0]}
  kl_max: {loguniform: [0.1, 1.0]}
  gamma: {uniform: [0.05, 0.5]}
pbt:
  perturbation_interval: 2
  quantile_fraction: 0.5
  resample_probability: 0.5
"""


@pytest.fixture()
def tiny_files(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(TINY))
    search = tmp_path / "search.yaml"
    search.write_text(SEARCH)
    return config, search


def _run(argv, capsys):
    code = main(argv)
    return code, capsys.readouterr().err.strip()


# -- bad input: one line, exit code 2 ------------------------------------------------------------------
def test_missing_search_file_is_one_line(tiny_files, tmp_path, capsys):
    config, _ = tiny_files
    code, err = _run(["tune", "--config", str(config), "--search", str(tmp_path / "nope.yaml"),
                      "--out", str(tmp_path / "run")], capsys)
    assert code == 2
    assert err.count("\n") == 0 and "nope.yaml" in err and "--search" in err and "file not found" in err
    assert not (tmp_path / "run").exists()


def test_unknown_hyperparameter_is_one_line(tiny_files, tmp_path, capsys):
    config, search = tiny_files
    search.write_text(SEARCH.replace("  gamma:", "  learning_rate: {uniform: [0.1, 0.2]}\n  gamma:"))
    code, err = _run(["tune", "--config", str(config), "--search", str(search), "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and err.count("\n") == 0
    assert "space.learning_rate" in err and "unknown hyperparameter" in err and str(search) in err


@pytest.mark.parametrize(
    "text, field",
    [
        ("space: {gamma: {uniform: [0.1, 1.5]}}", "space.gamma"),  # gamma must lie in [0, 1]
        ("space: {lr: {loguniform: [0, 1e-2]}}", "space.lr"),
        ("space: {hidden_size: {uniform: [8, 16]}}", "space.hidden_size"),  # integers: choice only
        ("space: {hidden_size: {choice: [8, 9]}}", "space.hidden_size"),  # decoder width 2D+H odd for 2 heads
        ("space: {lr: 1e-3}\npbt: {interval: 2}", "pbt.interval"),
        ("space: {}", "space"),
        ("spaces: {lr: 1e-3}", "spaces"),
    ],
)
def test_bad_search_values_name_the_field(tiny_files, text, field):
    _, search = tiny_files
    search.write_text(text)
    with pytest.raises(InputError) as info:
        check_values(TINY, load_search(search)["space"], search)
    assert f": {field}:" in str(info.value) and "\n" not in str(info.value)


def test_other_model_family_and_existing_out_are_refused(tiny_files, tmp_path, capsys):
    config, search = tiny_files
    other = tmp_path / "hmm.yaml"
    other.write_text(yaml.safe_dump({**TINY, "model": {"class_path": "HMMGLMModule"}}))
    code, err = _run(["tune", "--config", str(other), "--search", str(search)], capsys)
    assert code == 2 and "model.class_path" in err
    (tmp_path / "taken").mkdir()
    code, err = _run(["tune", "--config", str(config), "--search", str(search), "--out", str(tmp_path / "taken")],
                     capsys)
    assert code == 2 and "--out" in err and "exists" in err


def test_shipped_search_spaces_fit_the_lorenz_config():
    base = yaml.safe_load((ROOT / "configs" / "langevinflow" / "lorenz.yaml").read_text())
    files = sorted((ROOT / "configs" / "tune").glob("*.yaml"))
    assert files
    for path in files:
        search = load_search(path)
        check_values(base, search["space"], path)
        assert set(search["space"]) <= set(HYPERPARAMETERS)


def test_nlb_data_select_on_training_trials_only():
    """NLB validation trials are the evaluation (report) trials: tune selects on held-out training trials."""
    import numpy as np

    from neurodyn.training.datamodules import NLBDataModule, SplitArrays
    from neurodyn.training.tune.trial import record_select_split, select_split

    def split(n, value):
        return SplitArrays(np.full((n, 5, 3), value), np.full((n, 6, 4), value), np.ones((n, 6, 4), bool),
                           {"behavior": np.arange(n) + 100 * value})

    data = NLBDataModule.__new__(NLBDataModule)  # the splits of a prepared file, without the file
    data.splits = {"train": split(20, 0.0), "valid": split(7, 1.0)}
    text = select_split(data, 0.25, seed=3)
    assert "5 of the 20 training trials" in text
    # the fit harness's own mechanism: training on "fit", validation (every monitor) on "select"
    assert (data.fit_split, data.val_split) == ("fit", "select")
    assert len(data.splits["fit"]) == 15 and len(data.splits["select"]) == 5
    assert not data.splits["select"].heldin.any()  # no evaluation trial (all ones) in the select split
    kept = np.concatenate([data.splits["fit"].extras["behavior"], data.splits["select"].extras["behavior"]])
    assert sorted(kept) == list(range(20))  # a partition of the training trials
    # best.yaml records it, and a DataModule built with those settings carves the very same trials
    cfg = record_select_split({"data": {"class_path": "NLBDataModule", "init_args": {"path": "x.h5"}}}, 0.25, 3)
    assert cfg["data"]["init_args"] == {"path": "x.h5", "select_fraction": 0.25, "select_seed": 3}
    refit = NLBDataModule.__new__(NLBDataModule)
    refit.splits = {"train": split(20, 0.0), "valid": split(7, 1.0)}
    refit.carve_select(cfg["data"]["init_args"]["select_fraction"], cfg["data"]["init_args"]["select_seed"])
    assert np.array_equal(refit.splits["select"].extras["behavior"], data.splits["select"].extras["behavior"])

    carved = NLBDataModule.__new__(NLBDataModule)  # a config's data.select_fraction already carved one
    carved.splits = {"train": split(20, 0.0), "valid": split(7, 1.0)}
    carved.carve_select(0.1, seed=0)
    assert select_split(carved, 0.25, seed=3) == "the DataModule's select split: 2 of the training trials"
    assert len(carved.splits["train"]) == 20 and len(carved.splits["valid"]) == 7  # left as they were


# -- the learning rate after a restore (ray-project/ray#36660), without Ray ---------------------------
class _LrRecorder(pl.Callback):
    """The rate of the optimiser at each epoch's first step: what training actually used."""

    def __init__(self):
        self.used = {}

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.used.setdefault(trainer.current_epoch, optimizer.param_groups[0]["lr"])


class _StopAfterFirstEpoch(pl.Callback):
    def on_train_epoch_end(self, trainer, pl_module):
        trainer.should_stop = True


def _trainer(epochs, callbacks):
    return pl.Trainer(max_epochs=epochs, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks)


@pytest.mark.parametrize("schedule", ["constant", "cosine", "plateau"])
def test_perturbed_lr_is_used_after_restore(tmp_path, schedule):
    """A trial restored from another trial's checkpoint trains with *its own* lr, not the checkpoint's."""
    torch.set_num_threads(1)
    donor_cfg = apply_hyperparameters(TINY, {"lr": 1e-3})
    donor_cfg["model"]["init_args"]["lr_schedule"] = schedule
    model, data = build_model_and_data(donor_cfg)
    trainer = _trainer(3, [_StopAfterFirstEpoch()])  # a PBT donor checkpointed after epoch 1 of 3
    ckpt = tmp_path / "donor.ckpt"
    trainer.fit(model, datamodule=data)
    trainer.save_checkpoint(ckpt)
    min_lr = 1e-5

    def scheduled(base, epoch):  # the cosine from `base` over 3 epochs; the other schedules stay at `base`
        return min_lr + (base - min_lr) * (1 + math.cos(math.pi * epoch / 3)) / 2 if schedule == "cosine" else base

    saved = torch.load(ckpt, weights_only=False)
    assert saved["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(scheduled(1e-3, 1), rel=1e-12)

    perturbed = apply_hyperparameters(donor_cfg, {"lr": 4e-3})  # what PBT's explore wrote into the trial config
    expected = scheduled(4e-3, 1)  # at the restored epoch (1 of 3)

    # The pitfall: a plain restore trains on with the donor's rate.
    model, data = build_model_and_data(perturbed)
    plain = _LrRecorder()
    _trainer(3, [plain]).fit(model, datamodule=data, ckpt_path=ckpt)
    assert plain.used[1] != pytest.approx(expected, rel=1e-6)

    # With TrialLearningRate (what every tune trial runs) the trial config's lr is applied.
    model, data = build_model_and_data(perturbed)
    recorder, fix = _LrRecorder(), TrialLearningRate()
    _trainer(3, [fix, recorder]).fit(model, datamodule=data, ckpt_path=ckpt)
    assert recorder.used[1] == pytest.approx(expected, rel=1e-12)
    assert fix.lr_used == recorder.used[2]
    assert recorder.used[2] == pytest.approx(scheduled(4e-3, 2), rel=1e-12)  # the schedule goes on from the new lr


def test_a_trial_restored_from_its_own_checkpoint_trains_on_as_if_never_paused(tmp_path):
    """Synchronous PBT pauses every trial at each perturbation and restores it from its own checkpoint: the
    trial's checkpoints held no random states, so a trial never exploited drifted from a plain fit of its
    settings after the first restore (helper-48: train/loss 0.9584 in tune, 1.0193 refit, epoch 1). Epochs
    1 + restore + 2 now give the weights of 3 epochs straight, bit for bit."""
    from neurodyn.training.tune.trial import trial_trainer

    torch.set_num_threads(1)
    cfg = apply_hyperparameters(TINY, {"lr": 3e-3, "dropout": 0.1, "cd_keep_prob": 0.7})

    def fitted(epochs, *callbacks, ckpt_path=None):
        model, data = build_model_and_data(cfg)
        trainer = trial_trainer(epochs, 0, {}, str(tmp_path), TrialLearningRate(), *callbacks)
        trainer.fit(model, datamodule=data, ckpt_path=ckpt_path)
        return trainer, model

    _, straight = fitted(3)
    first, _ = fitted(3, _StopAfterFirstEpoch())  # a trial paused after its first epoch ...
    first.save_checkpoint(tmp_path / "own.ckpt")  # ... at its checkpoint (as _Report saves it)
    _, resumed = fitted(3, ckpt_path=tmp_path / "own.ckpt")
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name


def test_an_exploit_keeps_its_own_random_streams():
    """A trial that copied another trial's checkpoint (an exploit) restored the donor's random states with its
    weights and repeated the donor's batch order and dropout masks (helper-51); its own checkpoint is restored."""
    from types import SimpleNamespace

    from neurodyn.training.callbacks import RandomStateInCheckpoints, capture_random_state
    from neurodyn.training.tune.trial import trial_trainer

    torch.manual_seed(1)
    donor = {"neurodyn_random_state": capture_random_state()}
    trainer = SimpleNamespace(state=SimpleNamespace(fn="fit"), datamodule=None)
    for restore, expected in ((False, 2), (True, 1)):
        torch.manual_seed(2)
        RandomStateInCheckpoints(restore=restore).on_load_checkpoint(trainer, None, donor)
        drawn = torch.rand(1)
        torch.manual_seed(expected)
        assert torch.equal(drawn, torch.rand(1)), restore
    for own in (True, False):
        callbacks = trial_trainer(1, 0, {}, ".", TrialLearningRate(), own_checkpoint=own).callbacks
        assert [cb.restore for cb in callbacks if isinstance(cb, RandomStateInCheckpoints)] == [own]


# -- a 4-trial PBT on Ray ------------------------------------------------------------------------------
def _progress(trial_dir: Path) -> list[dict]:
    with open(trial_dir / "progress.csv") as fh:
        return list(csv.DictReader(fh))


def _tune_child(config: Path, search: Path, out: Path, *extra: str, stale_restore: bool = False,
                before: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """``neurodyn tune`` in a child process, as a user runs it (Ray's global state stays out of the test process).

    ``stale_restore``: when a trial starts again from a checkpoint (synchronous PBT pauses every trial at a
    perturbation epoch), Ray's driver copies its ``result.json`` back from ``--out`` over the staging copy it
    appends to; the copy in ``--out`` is synced now and then only, so rows reported since the last sync can be
    lost. The child runs with every such copy empty (no sync yet), the worst case of that race, every time.
    ``before``: options before the command (``--debug``).
    """
    command = ["-m", "neurodyn.cli"] if not stale_restore else ["-c", _STALE_RESTORE]
    return subprocess.run(
        [sys.executable, *command, *before, "tune", "--config", str(config), "--search", str(search),
         "--out", str(out), *extra],
        capture_output=True, text=True, timeout=600, cwd=out.parent, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


_STALE_RESTORE = """\
import runpy, sys
from pathlib import Path
from ray.tune.logger import logger as ray_logger

restore = ray_logger.LoggerCallback._restore_from_remote

def stale(self, file_name, trial):
    restore(self, file_name, trial)
    if file_name == "result.json" and trial.checkpoint:
        Path(trial.local_path, file_name).write_text("")

ray_logger.LoggerCallback._restore_from_remote = stale
runpy.run_module("neurodyn.cli", run_name="__main__", alter_sys=True)
"""


#: the 4-trial PBT: two trials at a time, so they report in an order that varies from run to run
PBT_ARGS = ("--scheduler", "pbt", "--samples", "4", "--cpus-per-trial", "1", "--num-cpus", "2", "--seed", "3",
            "--verbose", "0")


@pytest.fixture(scope="module")
def pbt_runs(tmp_path_factory) -> list[tuple[Path, subprocess.CompletedProcess]]:
    """The same 4-trial PBT command run twice (run folders and finished processes); the second run's Ray loses the
    rows of result.json that a paused trial reported before it started again, as Ray's sync race can."""
    pytest.importorskip("ray.tune")
    root = tmp_path_factory.mktemp("pbt")
    config, search = root / "tiny.yaml", root / "search.yaml"
    config.write_text(yaml.safe_dump(TINY))
    search.write_text(SEARCH)
    runs = []
    for name in ("run", "again"):  # again: with Ray's result.json losing a paused trial's rows (_tune_child)
        proc = _tune_child(config, search, root / name, *PBT_ARGS, stale_restore=name == "again")
        assert proc.returncode == 0, proc.stderr[-3000:]
        runs.append((root / name, proc))
    return runs


def test_pbt_four_trials_end_to_end(pbt_runs, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out, proc = pbt_runs[0]
    assert "best.ckpt: valid/loss" in proc.stdout and "the best kept checkpoint" in proc.stdout
    for name in ("trials.csv", "trials.txt", "perturbations.csv", "best.yaml", "best.ckpt", "summary.json"):
        assert (out / name).is_file(), name
    assert not list(out.parent.glob(".run.*"))  # the temporary folder was renamed

    summary = json.loads((out / "summary.json").read_text())
    assert summary["metric"] == "valid/loss" and summary["perturbations"] >= 1
    # the select split comes from the training trials (Lorenz too), and best.yaml records it for a refit
    assert summary["select_split"].endswith("; the validation trials are not used"), summary["select_split"]
    best = yaml.safe_load((out / "best.yaml").read_text())
    assert best["data"]["init_args"]["select_fraction"] == 0.2
    with open(out / "trials.csv") as fh:
        trials = list(csv.DictReader(fh))
    assert len(trials) == 4 and all(t["status"] == "OK" for t in trials)

    # PBT perturbed: at epoch 2 the worse half (two trials) copied a checkpoint and changed its lr.
    with open(out / "perturbations.csv") as fh:
        steps = list(csv.DictReader(fh))
    assert steps and all(s["trial"] != s["copied_from"] for s in steps)
    assert all(float(s["new_lr"]) != pytest.approx(float(s["old_lr"]), rel=1e-6) for s in steps)
    # old_*: the trial's own values before the step (Ray's log holds the donor's), as its checkpoint at the
    # epoch of the step recorded them (written by the trial itself, every perturbation epoch)
    # (or, where Ray replaced that checkpoint folder when the trial copied its donor's, the hyperparameters its
    # progress.csv row of that epoch reports; Ray's files can lose either, so at least one step is checked)
    reports = [json.loads(f.read_text()) for f in (out / "ray").glob("trial_*/checkpoint_*/report.json")]
    reports = {(r["trial"], r["epoch"]): r["hyperparameters"] for r in reports}
    for trial_dir in (out / "ray").glob("trial_*"):
        for row in _progress(trial_dir):
            own = {k.removeprefix("hp/"): float(v) for k, v in row.items() if k.startswith("hp/")}
            reports.setdefault((trial_dir.name, int(row["epoch"])), own)
    checked = 0
    for s in steps:
        own = reports.get((s["trial"], int(s["epoch"])))
        if own is not None:
            assert {name: float(s[f"old_{name}"]) for name in own} == pytest.approx(own, rel=1e-12), s
            checked += 1
    assert checked >= 1, (steps, sorted(reports))

    # Every epoch of every trial trained with the lr of its Tune config, before and after exploits; a
    # restored run resumed at the epoch after the copied checkpoint and used the perturbed lr.
    # (synchronous PBT also pauses trials at each perturbation epoch: they restore their own checkpoint.)
    copies = 0
    for trial_dir in sorted((out / "ray").glob("trial_*")):
        rows = _progress(trial_dir)
        assert [int(r["epoch"]) for r in rows] == list(range(1, len(rows) + 1))
        for row, previous in zip(rows, [None, *rows]):
            assert float(row["lr_used"]) == pytest.approx(float(row["hp/lr"]), rel=1e-12)
            source = row["restored_from_trial"]
            if previous is None or source == previous["restored_from_trial"]:
                continue
            assert int(row["epoch"]) == int(float(row["restored_from_epoch"])) + 1  # resumed where it was copied
            if source != trial_dir.name:  # an exploit: the lr is the perturbed one, not the donor's
                copies += 1
                step = [s for s in steps if (s["trial"], s["copied_from"]) == (trial_dir.name, source)]
                assert any(float(row["lr_used"]) == pytest.approx(float(s["new_lr"]), rel=1e-12) for s in step)
                assert all(float(row["lr_used"]) != pytest.approx(float(s["old_lr"]), rel=1e-6) for s in step)
    assert copies >= 1

    # The best config is a ready-to-run fit config holding the best trial's hyperparameters ...
    best = yaml.safe_load((out / "best.yaml").read_text())
    for name, value in summary["best_hyperparameters"].items():
        node = best
        for key in HYPERPARAMETERS[name].path:
            node = node[key]
        assert node == pytest.approx(value, rel=1e-12)
    # ... its checkpoint fits the model it describes ...
    model, _ = build_model_and_data(best)
    state = torch.load(out / "best.ckpt", map_location="cpu", weights_only=False)["state_dict"]
    model.load_state_dict(state, strict=True)
    # ... and `neurodyn fit` runs it.
    assert main(["fit", "--config", str(out / "best.yaml"), "--trainer.fast_dev_run", "true",
                 "--trainer.default_root_dir", str(tmp_path / "fit"), "--trainer.enable_progress_bar", "false"]) == 0

    # `neurodyn info` of the run folder (it said 'folder holds no .nwb files') names the best trial, its value and
    # split, and commands that take best.yaml / best.ckpt: they run as printed
    capsys.readouterr()
    assert main(["info", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-4] == (f"what: run folder of neurodyn tune (pbt, 4 trials); best {summary['best_trial']}: valid/loss "
                         f"{summary['best_value']:.6g} at epoch {summary['best_epoch']} on the select split, "
                         f"{summary['select_split']}"), lines
    steps = [shlex.split(line.removeprefix("next: neurodyn ").split("   (")[0]) for line in lines[-3:]]
    assert [step[0] for step in steps] == ["fit", "predict", "validate"], lines
    assert steps[1] == ["predict", "--config", str(out / "best.yaml"), "--ckpt_path", str(out / "best.ckpt"),
                        "--prediction.path", "PRED.h5"], lines
    assert main(steps[1]) == 0 and (tmp_path / "PRED.h5").is_file()
    assert main(steps[2]) == 0
    # ... and best.ckpt's own summary names best.yaml beside it as its config (was CONFIG.yaml)
    capsys.readouterr()
    assert main(["info", str(out / "best.ckpt")]) == 0
    assert capsys.readouterr().out.splitlines()[-2] == (f"next: neurodyn predict --config {out / 'best.yaml'} "
                                                        f"--ckpt_path {out / 'best.ckpt'} --prediction.path PRED.h5")


def test_a_pbt_without_perturbations_writes_the_header_alone(tmp_path):
    """perturbations.csv of a PBT that made no step (its interval beyond the epochs) was 'trial\\r\\n""\\r\\n':
    a column of its own and one empty row, read back as one step of trial ''. Now the header alone, with the
    columns of a file with steps; its lines end as those of trials.csv (the csv module's \\r\\n)."""
    pytest.importorskip("ray.tune")
    from neurodyn.training.tune.results import perturbation_rows

    config, search = tmp_path / "tiny.yaml", tmp_path / "search.yaml"
    config.write_text(yaml.safe_dump(TINY))
    search.write_text("space:\n  lr: {loguniform: [1e-3, 2e-2]}\n  dropout: {uniform: [0.0, 0.2]}\n"
                      "pbt:\n  perturbation_interval: 10\n")
    out = tmp_path / "run"
    proc = _tune_child(config, search, out, "--scheduler", "pbt", "--samples", "1", "--epochs", "2",
                       "--cpus-per-trial", "1", "--num-cpus", "1", "--seed", "0", "--verbose", "0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((out / "summary.json").read_text())["perturbations"] == 0
    step = {"trial": "trial_0001", "copied_from": "trial_0000", "epoch": 2, "old": {}, "new": {}}
    columns = list(perturbation_rows([step], ["lr", "dropout"])[0])
    assert (out / "perturbations.csv").read_bytes() == (",".join(columns) + "\r\n").encode()
    with open(out / "perturbations.csv", newline="") as fh:
        assert list(csv.DictReader(fh)) == []
    trials = (out / "trials.csv").read_bytes()
    assert trials.count(b"\r\n") == trials.count(b"\n") == 2  # header and the one trial


def test_a_failed_trial_is_one_line_without_debug(tmp_path, monkeypatch):
    """A trial that fails (here: a learning rate that makes the loss NaN at the first step) printed Ray's
    traceback of it, ~100 lines, even at --verbose 0; without --debug it is one line naming the trial and its
    error, and (every trial failed) the command's own error line follows, exit 1."""
    pytest.importorskip("ray.tune")
    monkeypatch.delenv("NEURODYN_DEBUG", raising=False)
    config, search = tmp_path / "tiny.yaml", tmp_path / "search.yaml"
    config.write_text(yaml.safe_dump(TINY))
    search.write_text("space:\n  lr: 1.0e+8\n")
    proc = _tune_child(config, search, tmp_path / "run", "--scheduler", "asha", "--samples", "1", "--epochs", "1",
                       "--num-cpus", "1", "--verbose", "0")
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "^^^" not in proc.stderr, proc.stderr[-3000:]
    failed = [line for line in proc.stderr.splitlines() if "trial_0000" in line and "TrainingDiverged" in line]
    assert len(failed) == 1 and "non-finite training loss" in failed[0], proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("neurodyn tune: error: no trial reported valid/loss")
    assert not (tmp_path / "run").exists() and not list(tmp_path.glob(".run.*"))


def test_the_closing_lines_say_which_trials_the_figures_are_of_and_how_many_trials_failed(tmp_path):
    """The closing lines named the metric 'valid/loss' only, which reads as the validation trials' (the search
    never sees them: it selects on a select split of the training trials), and said nothing of trials that failed
    (exit 0). Now a line names the split, as summary.json records it, and one counts the failed trials."""
    pytest.importorskip("ray.tune")
    config, search = tmp_path / "tiny.yaml", tmp_path / "search.yaml"
    config.write_text(yaml.safe_dump(TINY))
    search.write_text("space:\n  lr: {choice: [5.0e-3, 1.0e+8]}\n")  # 1e8: a NaN loss at the first step
    out = tmp_path / "run"
    args = ("--scheduler", "asha", "--samples", "2", "--epochs", "1", "--num-cpus", "1", "--seed", "1",
            "--verbose", "0")
    proc = _tune_child(config, search, out, *args, before=("--debug",))
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    # the command as typed (with --debug before the command it was 'neurodyn tune ' and nothing else)
    assert summary["command"] == shlex.join(["neurodyn", "--debug", "tune", "--config", str(config), "--search",
                                             str(search), "--out", str(out), *args])
    assert summary["trials_failed"] == 1, summary  # seed 1 draws both values (Ray's choice from default_rng(1))
    lines = proc.stdout.strip().splitlines()
    assert lines[-3] == f"valid/loss: the masked Poisson NLL of the select split, {summary['select_split']}"
    assert summary["select_split"].endswith("training trials (seed 1); the validation trials are not used")
    assert lines[-2].startswith("1 of 2 trials failed")


def test_trial_names_are_the_same_in_every_run(pbt_runs):
    """Trials are named by their order of creation (Ray's names carry its random experiment id)."""
    expected = ["trial_0000", "trial_0001", "trial_0002", "trial_0003"]
    for out, _ in pbt_runs:
        assert sorted(p.name for p in (out / "ray").glob("trial_*")) == expected
        with open(out / "trials.csv") as fh:
            assert sorted(row["trial"] for row in csv.DictReader(fh)) == expected
        with open(out / "perturbations.csv") as fh:
            assert {name for row in csv.DictReader(fh) for name in (row["trial"], row["copied_from"])} <= set(expected)
        summary = json.loads((out / "summary.json").read_text())
        assert summary["best_trial"] in expected
        assert f"of {summary['best_trial']}" in (out / "best.yaml").read_text().splitlines()[0]
        for report in (out / "ray").glob("trial_*/checkpoint_*/report.json"):  # inside the trials too
            assert json.loads(report.read_text())["trial"] in expected


#: progress.csv columns that differ between runs (clock, process, host, Ray's own trial id)
_PER_RUN = {"timestamp", "time_this_iter_s", "time_total_s", "date", "pid", "hostname", "node_ip",
            "time_since_restore", "iterations_since_restore", "checkpoint_dir_name", "trial_id"}


def test_same_seed_same_pbt(pbt_runs):
    """Two runs of the same PBT command (two trials at a time, reporting in different orders) make the same
    exploit / explore decisions and train the same trials (Ray's PBT draws from the driver's global
    generators, which Ray's own code also consumes: the runs differed before)."""
    (first, _), (second, _) = pbt_runs
    assert (first / "perturbations.csv").read_text() == (second / "perturbations.csv").read_text()
    assert (first / "trials.csv").read_text() == (second / "trials.csv").read_text()
    # trials.csv is built from every epoch each trial reported (Ray's result.json of the second run lost some)
    assert any(len((t / "result.json").read_text().splitlines()) < 4 for t in (second / "ray").glob("trial_*"))
    with open(second / "trials.csv") as fh:
        for row in csv.DictReader(fh):
            losses = [float(r["valid/loss"]) for r in _progress(first / "ray" / row["trial"])]
            assert int(row["epochs"]) == len(losses) == 4
            assert float(row["best valid/loss"]) == min(losses) and float(row["last valid/loss"]) == losses[-1]
    assert (first / "best.yaml").read_text() == (second / "best.yaml").read_text()
    summaries = [json.loads((out / "summary.json").read_text()) for out in (first, second)]
    for summary in summaries:
        for key in ("command", "seconds"):  # --out and the clock
            summary.pop(key)
    assert summaries[0] == summaries[1]
    for trial_dir in sorted((first / "ray").glob("trial_*")):
        rows = [[{k: v for k, v in row.items() if k not in _PER_RUN} for row in _progress(run / "ray" / trial_dir.name)]
                for run in (first, second)]
        assert rows[0] == rows[1], trial_dir.name
    states = [torch.load(out / "best.ckpt", map_location="cpu", weights_only=False)["state_dict"]
              for out in (first, second)]
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_trials_table_comes_from_every_report_in_order():
    """A trial's best value is the lowest over every epoch it reported, before and after an exploit, whatever
    Ray's own result files kept (the table of a run with a paused trial's result.json rows lost took the
    epochs after the restart only: 0.6200, where the trial had reported 0.5738 and 0.6093)."""
    pytest.importorskip("ray.tune")
    from types import SimpleNamespace

    from neurodyn.training.tune.results import reported_history, trial_rows

    history = reported_history()
    reports = [  # (Tune trial id, epoch, valid/loss, lr): trial 2 copies trial 0 after epoch 1
        ("4998e_00002", 1, 0.5738483667373657, 6.1e-3), ("4998e_00000", 1, 0.5, 3.2e-3),
        ("4998e_00002", 2, 0.6093016862869263, 3.9e-3), ("4998e_00000", 2, 0.7, 3.2e-3),
        ("4998e_00002", 3, 0.6199742555618286, 3.9e-3), ("4998e_00000", 3, 0.4, 3.2e-3),
    ]
    for trial_id, epoch, loss, lr in reports:
        history.on_trial_result(0, [], SimpleNamespace(trial_id=trial_id),
                                {"epoch": epoch, "valid/loss": loss, "hp/lr": lr, "time_this_iter_s": 0.1})
    grid = [SimpleNamespace(path=f"/x/ray/trial_000{i}", error=None, config={"lr": 1.0}) for i in (0, 2, 1)]
    perturbations = [{"trial": "trial_0002", "copied_from": "trial_0000"}]
    rows = {r["trial"]: r for r in trial_rows(grid, ["lr"], perturbations, history.rows)}
    assert rows["trial_0002"] == {"trial": "trial_0002", "status": "OK", "epochs": 3,
                                  "best valid/loss": 0.5738483667373657, "last valid/loss": 0.6199742555618286,
                                  "exploits": 1, "lr": 3.9e-3}
    assert rows["trial_0000"]["best valid/loss"] == 0.4 and rows["trial_0000"]["exploits"] == 0
    assert rows["trial_0001"] == {"trial": "trial_0001", "status": "OK", "epochs": 0, "best valid/loss": None,
                                  "last valid/loss": None, "exploits": 0, "lr": 1.0}  # reported nothing


def test_pbt_draws_are_seeded_per_decision_and_leave_global_state_alone():
    """The draws of Ray's PBT module inside one decision depend on its seed only; the global generators
    are neither used nor changed."""
    import random

    import numpy as np

    ray_pbt = pytest.importorskip("ray.tune.schedulers.pbt")
    from ray import tune

    from neurodyn.training.tune.pbt import decision_seed, ray_pbt_draws

    mutations = {"lr": tune.loguniform(1e-4, 1e-1), "gamma": tune.uniform(0.0, 1.0)}

    def decide(seed):
        with ray_pbt_draws(seed):
            return [ray_pbt._explore({"lr": 1e-3, "gamma": 0.5}, mutations, 0.5, (1.2, 0.8), None)
                    for _ in range(5)], ray_pbt.random.choice(range(100))

    random.seed(1)
    np.random.seed(1)
    before = random.getstate(), np.random.get_state()[1].copy()
    seed = decision_seed(3, 1, 2)
    assert decide(seed) == decide(seed) != decide(decision_seed(3, 1, 4))
    assert random.getstate() == before[0] and np.array_equal(np.random.get_state()[1], before[1])
    assert ray_pbt.random is random


def test_verbose_0_prints_only_neurodyn_lines(pbt_runs):
    """--verbose 0: the table of trials and neurodyn's two closing lines, nothing else. Before, Ray printed its
    experiment header ("Configuration for experiment", "View detailed results here", a TensorBoard hint) at
    every verbosity, and a token-authentication warning on stderr."""
    for out, proc in pbt_runs:
        assert proc.stderr == ""
        lines = [line.rstrip() for line in proc.stdout.splitlines()]
        table = [line.rstrip() for line in (out / "trials.txt").read_text().splitlines()]
        assert lines[:-3] == table
        assert lines[-3].startswith("best.ckpt: valid/loss ") and lines[-1].startswith(f"wrote {out}/best.yaml, ")
        assert lines[-2].startswith("valid/loss: the masked Poisson NLL of the select split, ")


def test_a_relative_data_path_is_read_from_the_folder_tune_started_in(tmp_path):
    """``data.init_args.path: l.h5`` names a file of the current folder, as in ``neurodyn fit`` (the trials,
    which Ray runs in their own folders, failed: 'l.h5: data.init_args.path: file not found')."""
    pytest.importorskip("ray.tune")
    assert main(["simulate", "lorenz", "--out", str(tmp_path / "l.h5"), "--n-conditions", "2",
                 "--trials-per-condition", "8", "--n-neurons", "8", "--no-progress"]) == 0
    config, search = tmp_path / "fit.yaml", tmp_path / "search.yaml"
    config.write_text(yaml.safe_dump({**TINY, "data": {"class_path": "LFADSDataModule",
                                                       "init_args": {"path": "l.h5", "batch_size": 8}}}))
    search.write_text("space:\n  lr: {loguniform: [1e-3, 2e-2]}\n")
    proc = _tune_child(Path("fit.yaml"), Path("search.yaml"), tmp_path / "run", "--scheduler", "asha",
                       "--samples", "1", "--epochs", "1", "--num-cpus", "1", "--verbose", "0")
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(tmp_path / "run" / "trials.csv") as fh:
        assert [row["status"] for row in csv.DictReader(fh)] == ["OK"]
    text = (tmp_path / "run" / "best.yaml").read_text()
    assert yaml.safe_load(text)["data"]["init_args"]["path"] == "l.h5"
    # ... and its header says which folder that is: a `neurodyn fit --config run/best.yaml` started elsewhere
    # does not find l.h5
    assert (f"#   data.init_args.path: relative to the folder neurodyn tune ran in, {tmp_path}; run the commands "
            "there") in [line for line in text.splitlines() if line.startswith("#")], text
    # best.ckpt records the data file's bytes, as a fit's checkpoints do (a file re-made under the same name is
    # told by predict / validate, refused by a resumed fit)
    from neurodyn.io import file_digest
    from neurodyn.training.checkpoints import DATA_FILES_KEY, RUN_SETTINGS_KEY

    ckpt = torch.load(tmp_path / "run" / "best.ckpt", map_location="cpu", weights_only=False)
    assert ckpt[RUN_SETTINGS_KEY][DATA_FILES_KEY] == {
        "data.init_args.path": {"path": str(tmp_path / "l.h5"), **file_digest(tmp_path / "l.h5")}}


def test_sigterm_leaves_nothing(tiny_files, tmp_path):
    """SIGTERM during the search: exit 143, one line, no run folder and no temporary folder left."""
    pytest.importorskip("ray.tune")
    config, search = tiny_files
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "neurodyn.cli", "tune", "--config", str(config), "--search", str(search),
         "--samples", "2", "--epochs", "200", "--cpus-per-trial", "1", "--num-cpus", "2", "--out", str(out),
         "--verbose", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        deadline = time.time() + 300
        while not list(tmp_path.glob(".run.*.part/ray/trial_*/progress.csv")):  # trials are training
            assert proc.poll() is None and time.time() < deadline, proc.communicate()[1][-2000:]
            time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "interrupted" in err.strip().splitlines()[-1]
    assert not out.exists() and not list(tmp_path.glob(".run.*"))


# -- the run folder: one writer, results never lost, nothing left behind -----------------------------------
TINY_ASHA = ("--scheduler", "asha", "--samples", "1", "--epochs", "1", "--num-cpus", "1", "--verbose", "0")


def _tune_script(script: str, config: Path, search: Path, out: Path, *extra: str, env: dict | None = None
                 ) -> subprocess.CompletedProcess:
    """``neurodyn tune`` in a child process that runs ``script`` (patches) first."""
    return subprocess.run(
        [sys.executable, "-c", script + "\nimport runpy\nrunpy.run_module('neurodyn.cli', run_name='__main__', "
         "alter_sys=True)\n", "tune", "--config", str(config), "--search", str(search), "--out", str(out), *extra],
        capture_output=True, text=True, timeout=600, cwd=out.parent,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
    )


def _marked_processes(mark: str) -> list[int]:
    """The processes whose environment holds ``NEURODYN_TEST_MARK=<mark>`` (a child and all it started)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"NEURODYN_TEST_MARK={mark}".encode() in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


def test_a_second_tune_to_the_same_out_is_refused_at_once(tiny_files, tmp_path, capsys, monkeypatch):
    """Another writer holds --out's lock (a running tune): refused before Ray starts, one line, nothing made (a
    second search ran to its end and lost its results, 'appeared while the search ran')."""
    import fcntl

    ray = pytest.importorskip("ray")
    monkeypatch.setattr(ray, "init", lambda *a, **k: pytest.fail("Ray started for a refused search"))
    config, search = tiny_files
    out = tmp_path / "run"
    fd = os.open(tmp_path / ".run.lock", os.O_RDWR | os.O_CREAT)  # as another process's output lock holds it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        code, err = _run(["tune", "--config", str(config), "--search", str(search), "--out", str(out)], capsys)
        assert code == 2 and err.count("\n") == 0, err
        assert err.startswith(f"neurodyn tune: error: {out}: --out: another process is writing this run folder")
        assert sorted(p.name for p in tmp_path.iterdir()) == [".run.lock", "search.yaml", "tiny.yaml"]
    finally:
        os.close(fd)


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds Ray's processes through /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_inside_ray_init_is_one_line_and_ends_rays_processes(tiny_files, tmp_path, signum):
    """The signal arrives while ray.init starts Ray's processes (sent from there): exit 128 + signal, one line,
    no run folder, no temporary folder (a killed run's left-over one included), and no process of the run left
    (SIGTERM ended the command with code 15 and no line; both left Ray's DashboardAgent and RuntimeEnvAgent
    running for minutes)."""
    pytest.importorskip("ray.tune")
    config, search = tiny_files
    out = tmp_path / "run"
    (tmp_path / ".run.k1lled00.part" / "ray").mkdir(parents=True)  # a kill -9'd search's temporary folder
    mark = str(tmp_path)
    script = (f"import os, signal\nimport ray._private.node as node\nstart = node.Node.start_ray_processes\n"
              f"def started(self, *a, **k):\n    start(self, *a, **k)\n    os.kill(os.getpid(), {int(signum)})\n"
              f"node.Node.start_ray_processes = started\n")
    try:
        proc = _tune_script(script, config, search, out, *TINY_ASHA, env={"NEURODYN_TEST_MARK": mark})
        deadline = time.time() + 30
        while _marked_processes(mark) and time.time() < deadline:
            time.sleep(0.5)
        left = _marked_processes(mark)
    finally:
        for pid in _marked_processes(mark):  # a failing run's left-overs: not for the next tests
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    assert proc.returncode == 128 + signum, proc.stderr[-2000:]
    name = signal.Signals(signum).name
    assert proc.stderr.strip() == f"neurodyn tune: interrupted ({name}); nothing partial was kept"
    assert left == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["search.yaml", "tiny.yaml"]


def test_results_are_kept_where_the_message_says_when_out_appears(tiny_files, tmp_path):
    """--out made by someone else while the search ran: exit 2, one line naming the folder that holds the
    results, and that folder is there (the line named the temporary folder, which had been removed)."""
    pytest.importorskip("ray.tune")
    config, search = tiny_files
    out = tmp_path / "run"
    script = (f"import os\nimport neurodyn.training.tune.search as s\ntable = s.rich_table\n"
              f"def table_then_mkdir(*a, **k):\n    os.mkdir({str(out)!r})\n    return table(*a, **k)\n"
              f"s.rich_table = table_then_mkdir\n")
    proc = _tune_script(script, config, search, out, *TINY_ASHA)
    assert proc.returncode == 2, proc.stderr[-2000:]
    err = proc.stderr.strip()
    assert err.count("\n") == 0, err
    said = f"neurodyn tune: error: {out}: --out: appeared while the search ran; the results are in "
    assert err.startswith(said), err
    kept = Path(err.rsplit(" ", 1)[-1])
    assert kept.parent == tmp_path and kept.name.startswith("run.results-")
    assert {"best.ckpt", "best.yaml", "trials.csv", "summary.json"} <= {p.name for p in kept.iterdir()}
    assert list(out.iterdir()) == []  # the other program's folder, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["run", kept.name, "search.yaml", "tiny.yaml"])


def test_a_successful_run_removes_a_killed_runs_temporary_folder(tiny_files, tmp_path):
    """A search killed with SIGKILL leaves its temporary folder ``.run.XXXXXXXX.part``; the next run to the same
    --out removes it (under the lock), and nothing else: a user's ``.run.backup.part`` stays."""
    pytest.importorskip("ray.tune")
    config, search = tiny_files
    out = tmp_path / "run"
    (tmp_path / ".run.k1lled00.part" / "ray").mkdir(parents=True)
    (tmp_path / ".run.k1lled00.part" / "ray" / "result.json").write_text("{}")
    (tmp_path / ".run.backup.part").mkdir()
    proc = _tune_child(config, search, out, *TINY_ASHA)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (out / "best.ckpt").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".run.backup.part", "run", "search.yaml", "tiny.yaml"]


def test_the_trials_table_shows_each_cell_as_written():
    """The trials table went through a console that read ``[...]`` in a cell as a style tag and dropped it (a
    choice of string values such as ``[sample]``, an error text); markup is off, as in ``info``."""
    from neurodyn.training.tune.results import METRIC, rich_table

    rows = [{"trial": "t0", "status": "TERMINATED", "epochs": 2, f"best {METRIC}": 1.5, f"last {METRIC}": 1.6,
             "exploits": 0, "model.eval_mode": "[sample]"}]
    text = rich_table(rows, ["model.eval_mode"], "t0", "trials")
    assert "[sample]" in text, text


_TUNE_IN_PROCESS = """\
import faulthandler, hashlib, json, os, random, signal, sys
import numpy as np, torch
from neurodyn.cli import main

def state():
    return {"environ": {k: os.environ.get(k) for k in ("TUNE_DISABLE_SIGINT_HANDLER", "PYTHONBREAKPOINT")},
            "sigusr1": repr(signal.getsignal(signal.SIGUSR1)), "excepthook": repr(sys.excepthook),
            "faulthandler": faulthandler.is_enabled(),
            "generators": [hashlib.sha256(repr(s).encode()).hexdigest() for s in (
                torch.get_rng_state().tolist(), np.random.get_state()[1].tolist(), random.getstate())]}

before = state()
code = main(sys.argv[1:])
print(json.dumps({"code": code, "before": before, "after": state()}))
"""


def test_a_search_run_from_python_leaves_its_process_as_it_found_it(tiny_files, tmp_path):
    """``main(["tune", ...])`` in a notebook or script left TUNE_DISABLE_SIGINT_HANDLER (neurodyn's: the caller's own
    Ray Tune runs then ignored Ctrl-C), Ray's PYTHONBREAKPOINT (its ``breakpoint()`` went to Ray's driver hook), Ray
    Tune's SIGUSR1 handler (a SIGUSR1 no longer ended the process), Ray's sys.excepthook and faulthandler on, and
    the global random generators (torch's, NumPy's legacy one, Python's) reseeded by the search's own model build
    (seed_everything). Run in a process of its own, as the other searches here: Ray is not started inside the test
    worker."""
    pytest.importorskip("ray.tune")
    config, search = tiny_files
    proc = subprocess.run(
        [sys.executable, "-c", _TUNE_IN_PROCESS, "tune", "--config", str(config), "--search", str(search),
         "--out", str(tmp_path / "run"), "--scheduler", "asha", "--samples", "1", "--epochs", "1",
         "--cpus-per-trial", "1", "--num-cpus", "1", "--seed", "0", "--verbose", "0"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["code"] == 0
    assert result["after"] == result["before"]
