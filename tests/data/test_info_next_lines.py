"""``neurodyn info``'s ``next:`` lines are commands that run: a run folder without a best checkpoint is given
``--ckpt_path last``, an HMM-GLM model file (``export_model_h5``) is named and given ``neurodyn plot``, and a
switching-GLM file of one sequence is given no fit that refuses it."""

from __future__ import annotations

import json

import pytest

from neurodyn.cli import main


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")


def _what_next(capsys) -> tuple[str, list[str]]:
    """The ``what:`` line and the ``next:`` lines that end a summary."""
    out = capsys.readouterr().out.splitlines()
    what = [line[len("what: "):] for line in out if line.startswith("what: ")]
    assert len(what) == 1, out
    return what[0], [line[len("next: "):] for line in out if line.startswith("next: ")]


def _run_folder(tmp_path, index: dict):
    """A run folder of ``neurodyn fit`` as far as info and ``--ckpt_path best|last`` read it: its config, its
    checkpoint index and last.ckpt (bytes only: neither reads it)."""
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("model:\n  class_path: HMMGLMModule\ntrainer:\n  max_epochs: 1\n")
    (run / "checkpoints" / "checkpoints.json").write_text(json.dumps(index))
    (run / "checkpoints" / "last.ckpt").write_bytes(b"0")
    if index.get("best"):
        (run / "checkpoints" / index["best"]).write_bytes(b"0")
    return run


@pytest.mark.parametrize("best, ckpt", [(None, "last"), ("epoch=1-step=4-valid_loss=7.1.ckpt", "best")])
def test_a_run_folder_is_given_best_only_where_it_has_a_best_checkpoint(tmp_path, capsys, best, ckpt):
    """A run that monitors valid/loss but stopped before its first validation (``--trainer.max_epochs 1`` with
    validation every few epochs) has no best checkpoint; info suggested ``--ckpt_path best`` because a monitor
    was set, and predict / validate refused it ("the run has no best checkpoint yet ... use --ckpt_path
    last")."""
    from neurodyn.training.runs import resolve_checkpoint

    run = _run_folder(tmp_path, {"monitor": "valid/loss", "mode": "min", "save_top_k": 1, "best": best,
                                 "best_score": 7.1 if best else None, "top_k": {best: 7.1} if best else {},
                                 "last": "last.ckpt", "last_epoch": 0, "last_step": 4})
    assert main(["info", str(run)]) == 0
    out = capsys.readouterr().out
    if best is None:
        assert "none yet: valid/loss was never measured" in out, out
    assert main(["info", str(run)]) == 0
    what, steps = _what_next(capsys)
    assert what == "run folder of neurodyn fit (HMMGLMModule)"
    assert steps[:2] == [f"neurodyn predict --run {run} --ckpt_path {ckpt} --prediction.path PRED.h5",
                         f"neurodyn validate --run {run} --ckpt_path {ckpt}"]
    resolve_checkpoint(run, ckpt)  # what predict and validate do with it: no InputError


@pytest.mark.parametrize("with_spikes", [True, False])
def test_an_hmmglm_model_file_is_named_and_given_plot(tmp_path, capsys, with_spikes):
    """A file of ``export_model_h5`` was 'an HDF5 file of no kind neurodyn reads' with 'next: none', though
    ``neurodyn plot`` draws it (its ``coupling`` and ``transitions``) and evaluate tells it apart."""
    import torch

    from neurodyn.models.hmmglm import HMMGLMConfig, build_model
    from neurodyn.models.hmmglm.evaluate import export_model_h5

    model = build_model(4, HMMGLMConfig(variant="hmmglm", n_states=2)).double()
    spikes = torch.zeros(1, 30, 4, dtype=torch.float64) if with_spikes else None
    path = export_model_h5(tmp_path / "model file.h5", model, spikes)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"HMM-GLM model file {path} (" in out, out
    assert [line.split("│")[1].strip() for line in out.splitlines() if "│ coupling " in line] == ["coupling"], out
    assert main(["info", str(path)]) == 0
    what, steps = _what_next(capsys)
    assert what.startswith("an HMM-GLM model file (export_model_h5 of neurodyn.models.hmmglm; "), what
    assert ("state posteriors" in what) == with_spikes, what
    assert steps == [f"neurodyn plot '{path}'"]
    assert main(["plot", str(path), "--out", str(tmp_path / "m.png")]) == 0  # the next: line runs
    assert (tmp_path / "m.png").is_file()


def test_a_switching_glm_file_of_one_sequence_is_given_no_fit_it_refuses(tmp_path, capsys):
    """A file of one sequence was given ``fit ... --data.init_args.n_train 1``, which fit refused with
    'n_train=1 must be between 1 and 0': one sequence cannot be split into train and valid sequences."""
    one = tmp_path / "one.h5"
    assert main(["simulate", "switching-glm", "--out", str(one), "--n-states", "2", "--n-neurons", "3",
                 "--n-sequences", "1", "--n-bins", "20", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["info", str(one)]) == 0
    what, steps = _what_next(capsys)
    assert "of 1 sequence;" in what and "cannot be split into train and valid sequences" in what, what
    assert not any(step.startswith("neurodyn fit") for step in steps), steps
    assert steps == ["none (fit needs 2 or more sequences: n_train to train on, the rest to validate on)"]


def _langevin_run(tmp_path, last_epoch: int, schedule: str, resumed_to: int | None = None):
    """A run folder of a 5-epoch LangevinFlow fit whose last.ckpt is epoch ``last_epoch`` (counted from 0), with a
    ``config.resume-1.yaml`` of a resume to ``resumed_to`` epochs where given."""
    run = _run_folder(tmp_path, {"monitor": None, "save_top_k": 0, "last": "last.ckpt", "last_epoch": last_epoch,
                                 "last_step": 4 * (last_epoch + 1)})
    config = ("model:\n  class_path: LangevinFlowModule\n  init_args:\n    lr: 0.003\n    min_lr: 2.0e-05\n"
              f"    lr_schedule: {schedule}\ntrainer:\n  max_epochs: {{}}\n  max_steps: -1\n")
    (run / "config.yaml").write_text(config.format(5))
    if resumed_to is not None:
        (run / "config.resume-1.yaml").write_text(config.format(resumed_to))
    return run


@pytest.mark.parametrize("schedule", ["cosine", "plateau"])
def test_an_interrupted_run_is_given_the_resume_that_finishes_it(tmp_path, capsys, schedule):
    """A run stopped before its max_epochs (interrupted) was given `fit --run DIR --trainer.max_epochs N`, an
    extension (for a cosine run past its decay's span); the plain `fit --run DIR` resumes it to its own
    max_epochs, and after an extension that was interrupted, to the extension's. Fails before."""
    run = _langevin_run(tmp_path / "a", last_epoch=2, schedule=schedule)
    assert main(["info", str(run)]) == 0
    assert _what_next(capsys)[1][2:] == [f"neurodyn fit --run {run}   (resume from last.ckpt, on to the run's 5 "
                                         "epochs)"]
    run = _langevin_run(tmp_path / "b", last_epoch=6, schedule=schedule, resumed_to=9)
    assert main(["info", str(run)]) == 0
    assert _what_next(capsys)[1][2:] == [f"neurodyn fit --run {run} --trainer.max_epochs 9   (resume from "
                                         "last.ckpt, on to the run's 9 epochs)"]


def test_a_finished_cosine_run_is_told_its_extra_epochs_train_at_min_lr(tmp_path, capsys):
    """A finished cosine run was given `fit --run DIR --trainer.max_epochs N   (resume from last.ckpt, up to N
    epochs)`: its decay keeps the span the run started with, so the extra epochs train at min_lr, unlike a run of
    N epochs from the start. The line says so and a new run of N epochs is offered beside it; a run of another
    schedule keeps the plain extension (a guard). Fails before (the plain extension only)."""
    run = _langevin_run(tmp_path / "a", last_epoch=4, schedule="cosine")
    assert main(["info", str(run)]) == 0
    assert _what_next(capsys)[1][2:] == [
        f"neurodyn fit --run {run} --trainer.max_epochs N   (resume from last.ckpt, up to N epochs; the cosine decay "
        "spans 5 epochs: the ones past it train at min_lr 2e-05)",
        f"neurodyn fit --config {run / 'config.yaml'} --checkpoint.dirpath null --trainer.max_epochs N --run-name NEW"
        "   (a new run whose cosine decays over all N epochs)"]
    run = _langevin_run(tmp_path / "b", last_epoch=4, schedule="plateau")
    assert main(["info", str(run)]) == 0
    assert _what_next(capsys)[1][2:] == [f"neurodyn fit --run {run} --trainer.max_epochs N   (resume from last.ckpt, "
                                         "up to N epochs)"]


def test_a_run_with_a_max_time_is_also_given_a_resume_with_a_longer_one(tmp_path, capsys):
    """A run stopped by its trainer.max_time before its max_epochs was given only `fit --run DIR (resume ..., on to
    the run's N epochs)`, which trains nothing: max_time counts over the whole run (the resume says 'nothing to
    train'). Nothing tells a used-up max_time from an interrupt, so both resumes are given. Fails before."""
    run = _langevin_run(tmp_path / "a", last_epoch=2, schedule="cosine")
    config = (run / "config.yaml").read_text().replace("  max_steps: -1\n",
                                                       "  max_steps: -1\n  max_time: 00:00:10:00\n")
    (run / "config.yaml").write_text(config)
    assert main(["info", str(run)]) == 0
    assert _what_next(capsys)[1][2:] == [
        f"neurodyn fit --run {run}   (resume from last.ckpt, on to the run's 5 epochs, where it was interrupted)",
        f"neurodyn fit --run {run} --trainer.max_time DD:HH:MM:SS   (where its trainer.max_time 00:00:10:00, counted "
        "over the whole run, stopped it: a longer one)"]


def test_a_folder_of_runs_lists_them(tmp_path, capsys):
    """`neurodyn info runs` (the folder fit makes its runs in) was refused: 'folder holds no .nwb files and is no run
    folder of neurodyn fit'. It now lists each run with its model and the epochs finished of its max_epochs, and
    gives `info` of each as the next step; other files beside them are not runs. Fails before (exit 2)."""
    runs = tmp_path / "runs"
    runs.mkdir()
    for name, last_epoch in (("b", 4), ("a", 2)):
        _langevin_run(tmp_path / name, last_epoch=last_epoch, schedule="cosine").rename(runs / name)
    (runs / "notes.txt").write_text("not a run")
    (runs / "empty").mkdir()
    assert main(["info", str(runs)]) == 0
    out = capsys.readouterr().out
    rows = [[cell.strip() for cell in line.strip().strip("│").split("│")] for line in out.splitlines()
            if line.strip().startswith("│")]
    assert rows == [["a", "neurodyn fit", "LangevinFlowModule", "3 of 5"],
                    ["b", "neurodyn fit", "LangevinFlowModule", "5 of 5"]], out
    capsys.readouterr()
    assert main(["info", str(runs)]) == 0
    assert _what_next(capsys) == ("folder of 2 runs", [f"neurodyn info {runs / 'a'}", f"neurodyn info {runs / 'b'}"])
