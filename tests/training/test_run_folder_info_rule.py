"""``neurodyn info`` of a run folder and ``--ckpt_path best`` read the run's checkpoint index by one rule (a run with a
monitor and a top k keeps a best checkpoint: :func:`neurodyn.training.checkpoint_index.selects_best`); info had a
copy of it because :mod:`neurodyn.training.runs` imports Lightning, which info of a run folder does not load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

INDEXES = [
    {"monitor": "valid/loss", "mode": "min", "save_top_k": 1},  # selects, never validated: "none yet"
    {"monitor": "valid/loss", "mode": "min", "save_top_k": -1},
    {"monitor": "valid/loss", "mode": "min", "save_top_k": 0},  # a monitor, but keeps no top k
    {"monitor": None, "save_top_k": 1},  # no monitor: last.ckpt is the result
    {"monitor": "valid/loss", "mode": "min"},  # an index without save_top_k
]


def _run_folder(path: Path, index: dict) -> Path:
    (path / "checkpoints").mkdir(parents=True)
    (path / "config.yaml").write_text("model:\n  class_path: HMMGLMModule\ntrainer:\n  max_epochs: 1\n")
    (path / "checkpoints" / "checkpoints.json").write_text(json.dumps({**index, "best": None, "last_epoch": 0,
                                                                        "last_step": 4, "last": "last.ckpt"}))
    (path / "checkpoints" / "last.ckpt").write_bytes(b"0")
    return path


@pytest.mark.parametrize("index", INDEXES)
def test_info_says_none_yet_exactly_where_best_says_never_measured(tmp_path, capsys, monkeypatch, index):
    """info's "best: none yet (... never measured ...)" row and predict's refusal of ``--ckpt_path best`` ("the run
    has no best checkpoint yet: ... was never measured") tell the same runs apart."""
    from neurodyn.cli import main
    from neurodyn.errors import InputError
    from neurodyn.training.runs import resolve_checkpoint

    monkeypatch.setenv("COLUMNS", "400")
    run = _run_folder(tmp_path / "run", index)
    assert main(["info", str(run)]) == 0
    said_none_yet = "│ none yet: valid/loss was never measured" in capsys.readouterr().out
    with pytest.raises(InputError) as caught:
        resolve_checkpoint(run, "best")
    assert said_none_yet == ("was never measured" in str(caught.value)), (index, str(caught.value))
    assert said_none_yet == (index.get("monitor") is not None and index.get("save_top_k") not in (None, 0))


def test_info_of_a_run_folder_loads_no_lightning_nor_torch(tmp_path):
    """info of a run folder reads its config and checkpoint index only: a summary that loaded Lightning (or torch)
    took seconds, and was why info kept its own copy of the rule instead of importing training.runs."""
    run = _run_folder(tmp_path / "run", INDEXES[0])
    script = ("import sys\n"
              "from neurodyn.cli import main\n"
              f"assert main(['info', {str(run)!r}]) == 0\n"
              "print('loaded:', sorted(m for m in ('lightning', 'pytorch_lightning', 'torch') if m in sys.modules))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "COLUMNS": "400"}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "│ none yet: valid/loss was never measured" in proc.stdout, proc.stdout
    assert proc.stdout.splitlines()[-1] == "loaded: []", proc.stdout[-2000:]


def test_info_and_best_say_a_monitor_never_measured_in_one_phrase(tmp_path, capsys, monkeypatch):
    """info's row said "none yet (valid/loss never measured: validation runs every ...; last.ckpt is the result)"
    where ``--ckpt_path best`` said "valid/loss was never measured (validation runs every ..., and the run stopped
    before the first)": one case in two ways. Both say :func:`~neurodyn.training.checkpoint_index.never_measured`."""
    from neurodyn.cli import main
    from neurodyn.training.runs import no_best_reason

    monkeypatch.setenv("COLUMNS", "400")
    run = _run_folder(tmp_path / "run", INDEXES[0])
    assert main(["info", str(run)]) == 0
    out = capsys.readouterr().out
    phrase = no_best_reason(INDEXES[0]).split("yet: ", 1)[1]
    assert f"│ none yet: {phrase}; last.ckpt is the result" in out, (phrase, out)


def test_info_of_a_folder_with_a_config_and_no_checkpoint_folder_says_what_it_lacks(tmp_path, capsys):
    """info of a folder that holds a config.yaml but no checkpoint folder said it lacked "config.yaml and
    checkpoints/"; it names the checkpoint folder it looked for."""
    from neurodyn.cli import main

    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "config.yaml").write_text("trainer:\n  max_epochs: 1\n")
    assert main(["info", str(folder)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"neurodyn info: error: {folder}: folder holds no .nwb files and is no run folder of neurodyn fit "
                   f"(it has a config.yaml, but no checkpoint folder: no {folder / 'checkpoints'}) or of neurodyn "
                   "tune (summary.json, best.yaml and best.ckpt)"), err


def test_an_older_run_whose_index_names_no_run_folder_is_told_how_to_be_one_again(tmp_path, capsys):
    """A run written before run.json with ``--checkpoint.dirpath`` elsewhere, ``--trainer.logger false`` (no
    metrics.csv, no hparams.yaml) and an index that names no run folder is no run folder by the run.json rule: info's
    refusal said it lacks run.json, and nothing the user could do about it. It names the remedy a resume's refusal
    of such a folder names: set "run_dir" in the index."""
    from neurodyn.cli import main
    from neurodyn.training.checkpoint_index import is_run_folder

    run, ck = tmp_path / "run", tmp_path / "ck"
    run.mkdir()
    ck.mkdir()
    (run / "config.yaml").write_text(f"model:\n  class_path: HMMGLMModule\ncheckpoint:\n  dirpath: {ck}\n")
    (ck / "checkpoints.json").write_text(json.dumps({"monitor": None, "last": "last.ckpt", "last_epoch": 0}))
    (ck / "last.ckpt").write_bytes(b"0")
    assert not is_run_folder(run)
    assert main(["info", str(run)]) == 2
    err = capsys.readouterr().err
    assert f"set \"run_dir\" in {ck / 'checkpoints.json'} to {os.path.realpath(run)}" in err, err
    index = json.loads((ck / "checkpoints.json").read_text())
    (ck / "checkpoints.json").write_text(json.dumps({**index, "run_dir": os.path.realpath(run)}))
    assert is_run_folder(run)  # the remedy works
