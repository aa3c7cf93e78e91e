"""A run started with ``--checkpoint.dirpath FOLDER`` keeps its checkpoints there, and its config.yaml records the
folder: ``--run DIR`` alone finds them (``fit`` resumes from its last.ckpt, ``predict`` / ``validate`` / ``test`` take
its best or last, ``neurodyn info DIR`` lists them). Before, ``last`` and ``best`` were looked for in
``DIR/checkpoints`` only: the resume was refused ('no last.ckpt'), and a refusal that said to resume with
``--run DIR`` alone gave advice that failed."""

from __future__ import annotations

import json
import signal

import pytest
import yaml

from neurodyn.cli import main

TINY = [
    "--data", "LorenzDataModule",
    "--data.n_conditions", "4", "--data.trials_per_condition", "5", "--data.batch_size", "8",
    "--model.init_args.config.hidden_size", "8", "--model.init_args.config.ff_dim", "16",
    "--trainer.enable_model_summary", "false", "--trainer.enable_progress_bar", "false",
    "--trainer.accelerator", "cpu",
]


def test_a_run_with_its_own_checkpoint_folder_resumes_and_predicts_with_run_alone(tmp_path, monkeypatch, capsys):
    start, elsewhere = tmp_path / "start", tmp_path / "elsewhere"
    start.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(start)  # a relative folder: from the fit's working folder, as Lightning takes it
    root = tmp_path / "runs"
    assert main(["fit", *TINY, "--trainer.default_root_dir", str(root), "--run-name", "a",
                 "--trainer.max_epochs", "1", "--checkpoint.dirpath", "ck"]) == 0
    run, ck = root / "a", start / "ck"
    assert (ck / "last.ckpt").is_file() and not (run / "checkpoints").exists()
    # recorded as Lightning resolved it, so the run resumes from any working folder
    recorded = yaml.safe_load((run / "config.yaml").read_text())["checkpoint"]["dirpath"]
    assert recorded == str(ck.resolve()), recorded

    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert main(["fit", "--run", str(run), "--trainer.max_epochs", "2"]) == 0, capsys.readouterr().err
    assert json.loads((ck / "checkpoints.json").read_text())["last_epoch"] == 1  # continued in its own folder
    assert not (elsewhere / "ck").exists() and not (run / "checkpoints").exists()

    for which in ("best", "last"):
        out = tmp_path / f"{which}.h5"
        assert main(["predict", "--run", str(run), "--ckpt_path", which, "--prediction.path", str(out)]) == 0
        assert out.is_file()
    assert main(["predict", "--run", str(run)]) == 0  # the default: best
    assert (run / "predictions.h5").is_file()

    monkeypatch.setenv("COLUMNS", "400")
    capsys.readouterr()
    assert main(["info", str(run)]) == 0
    out = capsys.readouterr().out
    assert "what: run folder of neurodyn fit" in out, out
    assert "last epoch" in out and "│ last.ckpt" in out, out

    # a stop of the run says how to resume it (it said 'nothing to resume': no DIR/checkpoints/last.ckpt)
    from neurodyn.training.runs import run_stopped

    stopped = run_stopped(signal.SIGTERM, run, finished=True, max_epochs=5)
    assert f"resume with: neurodyn fit --run {run}" in str(stopped), str(stopped)


@pytest.fixture
def run_elsewhere(tmp_path):
    """A 1-epoch run ``runs/a`` whose checkpoints are in ``ck``."""
    root = tmp_path / "runs"
    assert main(["fit", *TINY, "--trainer.default_root_dir", str(root), "--run-name", "a",
                 "--trainer.max_epochs", "1", "--checkpoint.dirpath", str(tmp_path / "ck")]) == 0
    return root / "a", tmp_path / "ck"


def test_a_failed_fit_keeps_a_run_whose_checkpoints_are_in_its_own_folder(run_elsewhere):
    """A fit that fails removes the run folder it made when that holds no checkpoint: it looked in
    ``DIR/checkpoints`` only, so a run whose checkpoints went to ``--checkpoint.dirpath`` lost its config.yaml and
    metrics.csv (its checkpoints left without a run)."""
    from neurodyn.training.cli import _remove_failed_run

    run, _ = run_elsewhere
    _remove_failed_run(run)
    assert (run / "config.yaml").is_file()


def test_a_new_run_is_refused_a_checkpoint_folder_that_holds_another_runs(run_elsewhere, capsys):
    """A new run given the checkpoint folder of another (on the command line, or by ``fit --config DIR/config.yaml
    --run-name NEW``, whose config records it) wrote its last.ckpt and checkpoints.json over that run's (Lightning
    only warns); refused in one line, nothing written."""
    run, ck = run_elsewhere
    before = {p.name: p.read_bytes() for p in ck.iterdir()}
    for args in (["fit", *TINY, "--checkpoint.dirpath", str(ck)], ["fit", "--config", str(run / "config.yaml")]):
        capsys.readouterr()
        assert main([*args, "--trainer.default_root_dir", str(run.parent), "--run-name", "b",
                     "--trainer.max_epochs", "1"]) == 2
        err = [line for line in capsys.readouterr().err.splitlines() if line]
        assert len(err) == 1 and "checkpoint.dirpath: holds the checkpoints of another run (" in err[0], err
        assert "choose another --checkpoint.dirpath" in err[0], err
        assert {p.name: p.read_bytes() for p in ck.iterdir()} == before
        assert sorted(p.name for p in run.parent.iterdir()) == ["a"]
    # the run's own folder named for a new run: told it is a run's, to be resumed with --run (it read 'folder exists
    # and holds files': the run's last.ckpt was looked for in DIR/checkpoints only)
    capsys.readouterr()
    assert main(["fit", *TINY, "--trainer.default_root_dir", str(run.parent), "--run-name", "a",
                 "--trainer.max_epochs", "1"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(err) == 1 and "is the folder of an existing run" in err[0] and f"--run {run}" in err[0], err


def test_a_new_run_from_such_a_checkpoint_keeps_its_checkpoints_in_a_folder_of_its_own(run_elsewhere, tmp_path, capsys):
    """A new run from a checkpoint of that run (``fit --ckpt_path FILE`` outside any run folder) was refused for not
    giving the run's ``--checkpoint.dirpath`` (a resume keeps the checkpoint rule it records), and given it, for a
    folder that holds that run's checkpoints: the folder is where that run keeps its files, not a rule. The new run
    writes its own folder (``checkpoints/`` of its run folder, or another ``--checkpoint.dirpath``)."""
    run, ck = run_elsewhere
    before = {p.name: p.read_bytes() for p in ck.iterdir()}
    kept = tmp_path / "kept.ckpt"
    kept.write_bytes((ck / "last.ckpt").read_bytes())
    capsys.readouterr()
    assert main(["fit", *TINY, "--ckpt_path", str(kept), "--trainer.default_root_dir", str(run.parent),
                 "--run-name", "b", "--trainer.max_epochs", "2"]) == 0, capsys.readouterr().err
    assert (run.parent / "b" / "checkpoints" / "last.ckpt").is_file()
    assert {p.name: p.read_bytes() for p in ck.iterdir()} == before
