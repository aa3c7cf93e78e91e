"""A run folder moved with ``mv`` (or reached by another path) is the same run: it keeps its run id, which a copy
(``cp -r``) never gets, also one made at the run's old path after the move. ``run.json`` records the run folder's
identity (device and inode numbers) besides its path (checkpoint_index.run_id)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from tiny_runs import TINY

from neurodyn.cli import main
from neurodyn.training.checkpoint_index import run_id, run_of_checkpoint


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line]
    assert len(err) == 1, err
    return err[0]


def _header_id(path: Path) -> str | None:
    return torch.load(path, map_location="cpu", weights_only=True)["neurodyn"].get("run_id")


def _record(run: Path, **fields) -> None:
    (run / "run.json").write_text(json.dumps(fields) + "\n")


def test_the_run_id_follows_the_folder_it_was_made_in(tmp_path):
    """The rule on hand-made records: the recorded identity (dev, ino) wherever the folder is (it was the recorded
    path alone: a moved folder lost its id), a folder at the recorded path only with the recorded inode (a copy
    made there has another: it had the id), the recorded path and inode on a renumbered device (a reboot, NFS from
    another host), and a record without identity (written before it was kept) by its path, as before."""
    run = tmp_path / "b"
    run.mkdir()
    stat, real = os.stat(run), os.path.realpath(run)
    _record(run, id="x", folder=str(tmp_path / "a"), dev=stat.st_dev, ino=stat.st_ino)  # made as a, moved to b
    assert run_id(run) == "x"
    link = tmp_path / "link"
    link.symlink_to(run)
    assert run_id(link) == "x"  # another path to the same folder
    _record(run, id="x", folder=real, dev=stat.st_dev, ino=stat.st_ino + 1)  # a copy made where the run was
    assert run_id(run) is None
    _record(run, id="x", folder=real, dev=stat.st_dev + 1, ino=stat.st_ino)  # its device renumbered
    assert run_id(run) == "x"
    _record(run, id="x", folder=str(tmp_path / "a"), dev=stat.st_dev + 1, ino=stat.st_ino)  # ... and elsewhere
    assert run_id(run) is None
    _record(run, id="x", folder=real)  # written before run.json kept the identity: by the path, as before
    assert run_id(run) == "x"
    _record(run, id="x", folder=str(tmp_path / "a"))
    assert run_id(run) is None
    _record(run, id="x", folder=real, dev=True, ino="1")  # not numbers: no identity recorded
    assert run_id(run) == "x"


def test_a_moved_run_keeps_its_id_and_a_copy_of_it_gets_none(tmp_path, capsys):
    """``mv a b`` of a run: its resume recorded no id in its index and checkpoints (run.json named a's path), and a
    checkpoint of it kept elsewhere was told by its bytes. b is the run: its resume records the run's id; a copy of
    b (``cp -r``) has none and records none."""
    root = tmp_path / "runs"
    assert main(["fit", *TINY, "--trainer.default_root_dir", str(root), "--run-name", "a",
                 "--trainer.max_epochs", "1"]) == 0
    made = json.loads((root / "a" / "run.json").read_text())
    moved = root / "b"
    os.rename(root / "a", moved)
    assert run_id(moved) == made["id"]
    assert made["folder"] == os.path.realpath(root / "a") and {"dev", "ino"} <= made.keys(), made
    capsys.readouterr()
    assert main(["fit", "--run", str(moved), "--trainer.max_epochs", "2"]) == 0, capsys.readouterr().err
    index = json.loads((moved / "checkpoints" / "checkpoints.json").read_text())
    assert index["run_id"] == made["id"] and index["run_dir"] == os.path.realpath(moved), index
    assert _header_id(moved / "checkpoints" / "last.ckpt") == made["id"]
    assert json.loads((moved / "run.json").read_text()) == made  # the record is the run's, never rewritten

    copy = root / "a2"
    shutil.copytree(moved, copy)
    assert run_id(copy) is None
    assert main(["fit", "--run", str(copy), "--trainer.max_epochs", "3"]) == 0, capsys.readouterr().err
    assert "run_id" not in json.loads((copy / "checkpoints" / "checkpoints.json").read_text())
    assert _header_id(copy / "checkpoints" / "last.ckpt") is None


@pytest.fixture
def moved_elsewhere(tmp_path):
    """A 1-epoch run made as ``runs/a`` with its checkpoints in ``ck``, then moved to ``runs/b``."""
    root, ck = tmp_path / "runs", tmp_path / "ck"
    assert main(["fit", *TINY, "--trainer.default_root_dir", str(root), "--run-name", "a",
                 "--trainer.max_epochs", "1", "--checkpoint.dirpath", str(ck)]) == 0
    os.rename(root / "a", root / "b")
    return root / "b", ck


def test_a_moved_run_with_its_checkpoints_elsewhere_resumes_and_is_linked_again(moved_elsewhere, tmp_path, capsys,
                                                                                monkeypatch):
    """After ``mv a b`` of a run whose checkpoints are in ``ck`` (outside it), ``ck/checkpoints.json`` names a:
    ``fit --run b`` was refused as 'a copy or a moved run', with the advice to edit the index. b holds the run's id
    (run.json's identity), so it resumes, and its index names b from its next checkpoint on: ``predict
    --ckpt_path ck/last.ckpt`` writes b/predictions.h5 again. ``predict --run b`` and ``info b`` read it before."""
    run, ck = moved_elsewhere
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.chdir(tmp_path)
    assert json.loads((ck / "checkpoints.json").read_text())["run_dir"] == os.path.realpath(run.parent / "a")
    assert run_of_checkpoint(ck / "last.ckpt") is None  # the index names a folder that is gone
    assert main(["info", str(ck / "last.ckpt")]) == 0  # ... which info of the checkpoint says (it said nothing)
    out = " ".join(capsys.readouterr().out.split())
    assert f"linked to no run: its checkpoints.json names the run folder {os.path.realpath(run.parent / 'a')}, " \
        "which no longer exists" in out, out
    assert main(["predict", "--run", str(run), "--prediction.path", str(tmp_path / "p.h5")]) == 0
    capsys.readouterr()
    assert main(["info", str(run)]) == 0
    out = capsys.readouterr().out
    assert "what: run folder of neurodyn fit" in out and "│ last.ckpt" in out, out

    assert main(["fit", "--run", str(run), "--trainer.max_epochs", "2"]) == 0, capsys.readouterr().err
    index = json.loads((ck / "checkpoints.json").read_text())
    assert index["run_dir"] == os.path.realpath(run) and index["last_epoch"] == 1, index
    assert run_of_checkpoint(ck / "last.ckpt") == Path(os.path.realpath(run))
    capsys.readouterr()
    assert main(["info", str(ck / "last.ckpt")]) == 0
    out = capsys.readouterr().out
    assert "linked to no run" not in out and f"--config {os.path.realpath(run)}/config.yaml" in out, out
    assert main(["predict", *TINY, "--ckpt_path", str(ck / "last.ckpt")]) == 0, capsys.readouterr().err
    assert (run / "predictions.h5").is_file()


def test_a_copy_made_at_a_moved_runs_old_path_is_not_the_run(moved_elsewhere, tmp_path, capsys):
    """``mv a b; cp -r b a`` of a run whose checkpoints are in ``ck``: the index names a, and a's run.json named a,
    so the copy a held the run's id -- ``fit --run a`` wrote over the run's checkpoints in ck, ``predict --ckpt_path
    ck/last.ckpt`` wrote into a -- and b was refused. The id is b's only (a is a new folder): a's resume is refused in
    one line, nothing written, and b resumes."""
    run, ck = moved_elsewhere
    copy = run.parent / "a"
    shutil.copytree(run, copy)
    assert run_id(copy) is None and run_id(run) is not None
    assert run_of_checkpoint(ck / "last.ckpt") is None
    before, kept = _digest(ck), _digest(copy)
    capsys.readouterr()
    assert main(["fit", "--run", str(copy), "--trainer.max_epochs", "2"]) == 2
    line = _one_line(capsys)
    assert f"{copy}: run: its checkpoint folder {ck} lies outside it, and its checkpoints.json names this folder" \
        in line and "this run folder is a copy of the run" in line, line
    assert "Resume the run in its own folder, or start a new run from" in line, line
    assert _digest(ck) == before and _digest(copy) == kept
    assert main(["predict", *TINY, "--ckpt_path", str(ck / "last.ckpt")]) == 2  # no run folder: no default output
    assert "prediction.path: no file to write the predictions to" in _one_line(capsys)
    assert not (copy / "predictions.h5").exists()
    assert main(["fit", "--run", str(run), "--trainer.max_epochs", "2"]) == 0, capsys.readouterr().err
    assert json.loads((ck / "checkpoints.json").read_text())["run_dir"] == os.path.realpath(run)
    assert main(["fit", "--run", str(copy), "--trainer.max_epochs", "3"]) == 2  # still the copy
    assert "is a copy of the run" in _one_line(capsys)


@pytest.mark.parametrize("symlinks", [True, False], ids=["link-copied", "folder-copied"])
def test_a_copy_made_at_a_moved_runs_old_path_with_linked_checkpoints_is_not_the_run(tmp_path, capsys, symlinks):
    """The same ``mv a b; cp -r b a`` where the run's ``checkpoints/`` is a link to scratch storage: the link is the
    run's own folder by its record, so the run id was never asked -- the copy a (``cp -r`` copies the link) resumed,
    wrote its last.ckpt and index over b's in scratch, and then b was refused as 'a copy'. a's resume is refused in
    one line, nothing written, and b resumes. A copy that copied the folder (not the link) has checkpoints of its
    own, and resumes them, as any copy of a run does."""
    root, scratch = tmp_path / "runs", tmp_path / "scratch"
    assert main(["fit", *TINY, "--trainer.default_root_dir", str(root), "--run-name", "a",
                 "--trainer.max_epochs", "1"]) == 0
    shutil.move(root / "a" / "checkpoints", scratch)
    (root / "a" / "checkpoints").symlink_to(scratch, target_is_directory=True)
    run, copy = root / "b", root / "a"
    os.rename(copy, run)
    shutil.copytree(run, copy, symlinks=symlinks)
    assert run_id(copy) is None and run_id(run) is not None
    assert (copy / "checkpoints").is_symlink() == symlinks
    before, kept = _digest(scratch), _digest(copy)
    capsys.readouterr()
    if symlinks:
        assert main(["fit", "--run", str(copy), "--trainer.max_epochs", "2"]) == 2
        line = _one_line(capsys)
        assert f"{copy}: run: its checkpoint folder {copy / 'checkpoints'} (a link to {scratch}) lies outside it, " \
            "and its checkpoints.json names this folder" in line, line
        assert "this run folder is a copy of the run" in line, line
        assert _digest(copy) == kept
    else:
        assert main(["fit", "--run", str(copy), "--trainer.max_epochs", "2"]) == 0, capsys.readouterr().err
        assert json.loads((copy / "checkpoints" / "checkpoints.json").read_text())["last_epoch"] == 1
    assert _digest(scratch) == before
    assert main(["fit", "--run", str(run), "--trainer.max_epochs", "2"]) == 0, capsys.readouterr().err
    index = json.loads((scratch / "checkpoints.json").read_text())
    assert index["run_dir"] == os.path.realpath(run) and index["last_epoch"] == 1, index
    assert run_of_checkpoint(scratch / "last.ckpt") == Path(os.path.realpath(run))
