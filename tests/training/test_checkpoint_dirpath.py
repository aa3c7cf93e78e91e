"""A run started with ``--checkpoint.dirpath FOLDER`` keeps its checkpoints there, and its config.yaml records the
folder: ``--run DIR`` alone finds them (``fit`` resumes from its last.ckpt, ``predict`` / ``validate`` / ``test`` take
its best or last, ``neurodyn info DIR`` lists them). Before, ``last`` and ``best`` were looked for in
``DIR/checkpoints`` only: the resume was refused ('no last.ckpt'), and a refusal that said to resume with
``--run DIR`` alone gave advice that failed."""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
from pathlib import Path

import pytest
import yaml
from tiny_runs import TINY

from neurodyn.cli import main


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
        assert "choose another --checkpoint.dirpath, or --checkpoint.dirpath null" in err[0], err
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


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line]
    assert len(err) == 1, err
    return err[0]


def test_checkpoint_dirpath_null_gives_a_new_run_from_such_a_config_its_own_folder(run_elsewhere, capsys):
    """The refusal of a used checkpoint folder says ``--checkpoint.dirpath null`` (it said only 'choose another'),
    and that takes a new run from the run's config.yaml back to its own ``checkpoints/``."""
    run, ck = run_elsewhere
    before = _digest(ck)
    capsys.readouterr()
    assert main(["fit", "--config", str(run / "config.yaml"), "--trainer.default_root_dir", str(run.parent),
                 "--run-name", "c", "--trainer.max_epochs", "1", "--checkpoint.dirpath", "null"]) == 0, \
        capsys.readouterr().err
    assert (run.parent / "c" / "checkpoints" / "last.ckpt").is_file() and _digest(ck) == before


def test_the_index_names_its_run_folder_and_a_copy_of_the_run_is_refused_a_resume_there(run_elsewhere, capsys):
    """``cp -r runs/a runs/a2`` of a run whose checkpoints are in ``ck`` (outside the run folder), then
    ``fit --run runs/a2``: exit 0, and a2's continuation wrote its last.ckpt and checkpoints.json over a's in ``ck``.
    The index records its run folder; a resume of another folder into it is refused in one line, nothing written.
    The way out it names (a new run from the checkpoint) works."""
    run, ck = run_elsewhere
    assert json.loads((ck / "checkpoints.json").read_text())["run_dir"] == str(run.resolve())
    copy = run.parent / "a2"
    shutil.copytree(run, copy)
    before, kept = _digest(ck), _digest(copy)
    capsys.readouterr()
    assert main(["fit", "--run", str(copy), "--trainer.max_epochs", "3"]) == 2
    line = _one_line(capsys)
    assert f"{copy}: run: its checkpoint folder {ck} lies outside it" in line, line
    assert f"names the run folder {run.resolve()} and the run id" in line, line
    assert "this run folder is a copy of the run" in line, line
    # the checkpoint is linked to its run (the index's run folder and id): the new run starts from a copy of it
    assert f"a copy of its checkpoint: cp {ck / 'last.ckpt'} KEPT.ckpt, then neurodyn fit" in line, line
    assert "--ckpt_path KEPT.ckpt --checkpoint.dirpath null --run-name NEW" in line, line
    assert _digest(ck) == before and _digest(copy) == kept
    # the run's checkpoint given to the copy: another run's (the index names the run)
    assert main(["fit", "--run", str(copy), "--ckpt_path", str(ck / "last.ckpt"), "--trainer.max_epochs", "3"]) == 2
    line = _one_line(capsys)
    assert f"ckpt_path: is a checkpoint of another run ({run.resolve()}), not of --run {copy}" in line, line
    assert _digest(ck) == before and _digest(copy) == kept
    # the run itself still resumes there
    assert main(["fit", "--run", str(run), "--trainer.max_epochs", "2"]) == 0
    assert json.loads((ck / "checkpoints.json").read_text())["last_epoch"] == 1
    # the advice: a new run from a copy of the checkpoint, in a folder of its own
    shutil.copy(ck / "last.ckpt", ck.parent / "KEPT.ckpt")
    assert main(["fit", "--config", str(copy / "config.yaml"), "--ckpt_path", str(ck.parent / "KEPT.ckpt"),
                 "--checkpoint.dirpath", "null", "--run-name", "new", "--trainer.default_root_dir", str(run.parent),
                 "--trainer.max_epochs", "3"]) == 0, capsys.readouterr().err
    assert (run.parent / "new" / "checkpoints" / "last.ckpt").is_file()


def test_an_index_that_names_no_run_folder_is_refused_for_a_resume_from_another_folder(run_elsewhere, capsys):
    """An index that names no run folder (written by a neurodyn that did not record it), in a recorded checkpoint
    folder outside the run folder: nothing tells the run from a copy of it sharing that folder, so the resume is
    refused, saying why and how to name the run folder in the index (not 'its folder moved here')."""
    run, ck = run_elsewhere
    index = json.loads((ck / "checkpoints.json").read_text())
    del index["run_dir"], index["run_id"]  # as written before run folders and run ids were recorded
    (ck / "checkpoints.json").write_text(json.dumps(index))
    before = _digest(ck)
    capsys.readouterr()
    assert main(["fit", "--run", str(run), "--trainer.max_epochs", "2"]) == 2
    line = _one_line(capsys)
    assert "names no run folder (written by an older neurodyn)" in line and _digest(ck) == before, line
    assert "moved here" not in line and "is the one that wrote them (not a copy)" in line, line
    # the way out it names for the run's own folder (a moved run): the index names the run folder again
    assert f'set "run_dir" in {ck / "checkpoints.json"} to {run.resolve()}' in line, line
    (ck / "checkpoints.json").write_text(json.dumps({**index, "run_dir": str(run.resolve())}))
    assert main(["fit", "--run", str(run), "--trainer.max_epochs", "2"]) == 0, capsys.readouterr().err


@pytest.mark.parametrize("dirpath", [None, "{run}/ck", "inside"])
def test_a_copied_run_folder_with_its_checkpoints_inside_resumes_in_its_copy(tmp_path, capsys, dirpath):
    """A run whose checkpoints lie inside its folder (``checkpoints/``, or a ``--checkpoint.dirpath`` inside it) takes
    them along when copied: the copy resumes in itself, the original is left as it was. A dirpath inside the run
    folder is recorded ``{run}/SUB`` (it was recorded absolute: the copy resumed into the original's folder)."""
    root = tmp_path / "runs"
    extra = [] if dirpath is None else ["--checkpoint.dirpath",
                                        str(root / "a" / "ck") if dirpath == "inside" else dirpath]
    assert main(["fit", *TINY, "--trainer.default_root_dir", str(root), "--run-name", "a",
                 "--trainer.max_epochs", "1", *extra]) == 0
    sub = "checkpoints" if dirpath is None else "ck"
    assert (root / "a" / sub / "last.ckpt").is_file()
    recorded = yaml.safe_load((root / "a" / "config.yaml").read_text())["checkpoint"]["dirpath"]
    assert recorded == (None if dirpath is None else "{run}/ck"), recorded
    shutil.copytree(root / "a", root / "a2")
    before = _digest(root / "a")
    capsys.readouterr()
    assert main(["fit", "--run", str(root / "a2"), "--trainer.max_epochs", "2"]) == 0, capsys.readouterr().err
    assert json.loads((root / "a2" / sub / "checkpoints.json").read_text())["last_epoch"] == 1
    assert _digest(root / "a") == before
    # and a new run from its config keeps its checkpoints inside its own folder
    assert main(["fit", "--config", str(root / "a" / "config.yaml"), "--trainer.default_root_dir", str(root),
                 "--run-name", "b", "--trainer.max_epochs", "1"]) == 0, capsys.readouterr().err
    assert (root / "b" / sub / "last.ckpt").is_file() and _digest(root / "a") == before


def test_a_run_whose_recorded_checkpoint_folder_is_gone_is_said_so_by_every_command(run_elsewhere, tmp_path, capsys,
                                                                                    monkeypatch):
    """The run and its checkpoint folder moved elsewhere: fit --run said 'no last.ckpt: the run has not finished an
    epoch', predict the same, info 'is no run folder'. Each says now, in one line naming config.yaml and
    checkpoint.dirpath, that the recorded folder does not exist: moved, where the run was resumed from a checkpoint
    there (config.resume-1.yaml)."""
    run, ck = run_elsewhere
    assert main(["fit", "--run", str(run), "--trainer.max_epochs", "2"]) == 0
    ck.rename(tmp_path / "moved")
    monkeypatch.setenv("COLUMNS", "400")
    for args in (["fit", "--run", str(run), "--trainer.max_epochs", "2"], ["predict", "--run", str(run)],
                 ["predict", "--run", str(run), "--ckpt_path", "last"], ["info", str(run)]):
        capsys.readouterr()
        assert main(args) == 2, args
        line = _one_line(capsys)
        assert (f"{run / 'config.yaml'}: checkpoint.dirpath: the recorded checkpoint folder {ck} does not exist "
                "(moved?)") in line, (args, line)
        assert "set checkpoint.dirpath in this file" in line, line


def test_info_of_a_run_folder_whose_config_is_not_text_is_one_line(tmp_path, capsys):
    """A config.yaml of bytes that are not UTF-8 text: the checkpoint folder's reader caught OSError and YAML errors
    but not UnicodeDecodeError, and ``neurodyn info`` of the folder was a traceback."""
    run = tmp_path / "r"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_bytes(b"\xff\xfe\x00\x81 not text")
    from neurodyn.training.checkpoint_index import checkpoint_folder

    assert checkpoint_folder(run) == run / "checkpoints"
    capsys.readouterr()
    assert main(["info", str(run)]) == 2
    line = _one_line(capsys)
    assert f"{run / 'config.yaml'}: yaml: unreadable (UnicodeDecodeError)" in line, line


def test_a_missing_checkpoint_folder_is_said_as_the_record_tells(run_elsewhere, tmp_path, capsys, monkeypatch):
    """'does not exist (moved?)' was said of every missing folder: also of a relative folder an older run recorded,
    taken from another working folder than the fit's, and of one never made (the run saved no checkpoint: it said
    'no last.ckpt' before). The relative one is named with the working folder it was taken from; the other keeps
    'no last.ckpt'."""
    run, ck = run_elsewhere
    shutil.rmtree(ck)  # as if the run had stopped before its first checkpoint: Lightning makes the folder then
    capsys.readouterr()
    assert main(["fit", "--run", str(run), "--trainer.max_epochs", "2"]) == 2
    line = _one_line(capsys)
    assert f"{run / 'config.yaml'}: checkpoint.dirpath: no last.ckpt: the recorded checkpoint folder {ck} does not " \
           "exist" in line and "(moved?)" not in line, line

    config = yaml.safe_load((run / "config.yaml").read_text())
    config["checkpoint"]["dirpath"] = "ck"  # relative, as an older run recorded it from its working folder
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for args in (["fit", "--run", str(run), "--trainer.max_epochs", "2"], ["predict", "--run", str(run)]):
        capsys.readouterr()
        assert main(args) == 2, args
        line = _one_line(capsys)
        assert (f"the recorded checkpoint folder 'ck' is relative, taken from the working folder {elsewhere}: "
                f"{elsewhere / 'ck'} does not exist") in line and "moved" not in line, line


def test_a_new_run_checkpoint_dirpath_with_run_is_checked_on_the_folder_it_names(tmp_path, capsys):
    """A ``{run}`` in a new run's --checkpoint.dirpath passed over the refusal of a folder holding another run's
    checkpoints (and the writability check), as if it lay inside the new run folder: ``{run}/../../shared`` wrote
    b's last.ckpt and index over a's (exit 0), and ``{run}/../../afile/ck`` (inside a file) was a NotADirectoryError
    traceback at the first checkpoint. Now checked on the folder it names; ``SCRATCH/{run}`` (outside, a new folder
    per run) works as before."""
    root, shared = tmp_path / "runs", tmp_path / "shared"
    assert main(["fit", *TINY, "--trainer.default_root_dir", str(root), "--run-name", "a",
                 "--trainer.max_epochs", "1", "--checkpoint.dirpath", str(shared)]) == 0
    before = _digest(shared)
    capsys.readouterr()
    assert main(["fit", *TINY, "--trainer.default_root_dir", str(root), "--run-name", "b",
                 "--trainer.max_epochs", "1", "--checkpoint.dirpath", "{run}/../../shared"]) == 2
    line = _one_line(capsys)
    assert f"{{run}}/../../shared ({shared}): checkpoint.dirpath: holds the checkpoints of another run" in line, line
    assert _digest(shared) == before and not (root / "b").exists()

    (tmp_path / "afile").write_text("not a folder")  # a {run} path that cannot be made: refused before training
    assert main(["fit", *TINY, "--trainer.default_root_dir", str(root), "--run-name", "b",
                 "--trainer.max_epochs", "1", "--checkpoint.dirpath", "{run}/../../afile/ck"]) == 2
    line = _one_line(capsys)
    assert f"checkpoint.dirpath: cannot make this folder: {tmp_path / 'afile'} is not a folder" in line, line
    assert not (root / "b").exists()

    scratch = tmp_path / "scratch"
    for name in ("c", "d"):
        assert main(["fit", *TINY, "--trainer.default_root_dir", str(root), "--run-name", name,
                     "--trainer.max_epochs", "1", "--checkpoint.dirpath", f"{scratch}/{{run}}"]) == 0, \
            capsys.readouterr().err
        folder = Path(f"{scratch}/{(root / name).resolve()}".replace("//", "/"))
        assert (folder / "last.ckpt").is_file(), sorted(scratch.rglob("*"))
        assert yaml.safe_load((root / name / "config.yaml").read_text())["checkpoint"]["dirpath"] == str(folder)
    assert _digest(shared) == before


@pytest.mark.parametrize("index_names_run", [False, True])
def test_a_run_whose_checkpoints_folder_links_to_scratch_resumes_and_moves(tmp_path, capsys, index_names_run):
    """``DIR/checkpoints`` a link to scratch storage (common on clusters) counted as a folder outside the run folder:
    a resume was refused for an index that names no run folder (every index neurodyn wrote before it recorded one),
    and a moved run (``mv runs/a runs/b``) for an index naming the old folder. The default checkpoints folder is the
    run's own, whatever it links to."""
    root, scratch = tmp_path / "runs", tmp_path / "scratch" / "a-ck"
    assert main(["fit", *TINY, "--trainer.default_root_dir", str(root), "--run-name", "a",
                 "--trainer.max_epochs", "1"]) == 0
    scratch.parent.mkdir()
    shutil.move(root / "a" / "checkpoints", scratch)
    (root / "a" / "checkpoints").symlink_to(scratch, target_is_directory=True)
    index = json.loads((scratch / "checkpoints.json").read_text())
    if not index_names_run:
        del index["run_dir"]
        (scratch / "checkpoints.json").write_text(json.dumps(index))
    capsys.readouterr()
    assert main(["fit", "--run", str(root / "a"), "--trainer.max_epochs", "2"]) == 0, capsys.readouterr().err
    assert json.loads((scratch / "checkpoints.json").read_text())["last_epoch"] == 1
    (root / "a").rename(root / "b")  # the link moves with it
    assert main(["fit", "--run", str(root / "b"), "--trainer.max_epochs", "3"]) == 0, capsys.readouterr().err
    assert json.loads((scratch / "checkpoints.json").read_text())["last_epoch"] == 2
    # a copy that copied the link (cp -r does) shares the original's folder: refused while the original keeps it
    shutil.copytree(root / "b", root / "c", symlinks=True)
    before, kept = _digest(scratch), _digest(root / "c")
    capsys.readouterr()
    assert main(["fit", "--run", str(root / "c"), "--trainer.max_epochs", "4"]) == 2
    line = _one_line(capsys)
    assert f"{root / 'c'}: run: its checkpoint folder {root / 'c' / 'checkpoints'} is a link to {scratch}" in line, line
    assert f"where the run folder {(root / 'b').resolve()}" in line and "is a copy of that one" in line, line
    assert _digest(scratch) == before and _digest(root / "c") == kept


def test_info_of_such_a_run_config_suggests_its_own_checkpoint_folder(run_elsewhere, capsys, monkeypatch):
    """``neurodyn info DIR/config.yaml`` of a run folder suggests a predict with the run's last.ckpt: it named
    ``DIR/checkpoints/last.ckpt``, which a run with ``--checkpoint.dirpath`` does not have."""
    run, ck = run_elsewhere
    monkeypatch.setenv("COLUMNS", "400")
    capsys.readouterr()
    assert main(["info", str(run / "config.yaml")]) == 0
    out = capsys.readouterr().out
    assert "the run folder's own" in out, out
    assert f"--ckpt_path {ck / 'last.ckpt'} " in out, out
    assert str(run / "checkpoints") not in out, out


@pytest.mark.parametrize("sub", ["predict", "validate"])
def test_such_a_run_given_by_its_config_is_a_run_folder(run_elsewhere, capsys, sub):
    """``predict --config DIR/config.yaml`` (validate, test) takes DIR as the run folder, as ``--run DIR`` does: its
    best or last checkpoint and, for predict, the default output DIR/predictions.h5. It took DIR for a run folder
    only where DIR/checkpoints exists: such a run was refused ('needs a trained model')."""
    run, ck = run_elsewhere
    capsys.readouterr()
    assert main([sub, "--config", str(run / "config.yaml")]) == 0, capsys.readouterr().err
    if sub == "predict":
        assert (run / "predictions.h5").is_file()
    assert main([sub, "--config", str(run / "config.yaml"), "--ckpt_path", "last",
                 *(["--prediction.path", str(ck.parent / "last.h5")] if sub == "predict" else [])]) == 0
    assert not (run / "checkpoints").exists()


def test_a_hand_written_config_that_records_a_checkpoint_folder_is_no_run_folder(run_elsewhere, tmp_path, capsys):
    """A folder holding a config.yaml that records a ``checkpoint.dirpath`` of an existing folder was taken for a run
    folder (``info`` summarised it as one, ``predict --config`` wrote predictions.h5 beside it): a run folder holds
    neurodyn's run record (``run.json``, written with its config.yaml: the run's id and folder). A run written
    before neurodyn kept one is still a run folder: its checkpoints index names it, or it holds a fit's
    metrics.csv (or hparams.yaml)."""
    from neurodyn.training.checkpoint_index import is_run_folder

    run, ck = run_elsewhere
    hand = tmp_path / "notes"
    hand.mkdir()
    (hand / "config.yaml").write_text(f"checkpoint:\n  dirpath: {ck}\n")
    capsys.readouterr()
    assert main(["info", str(hand)]) == 2
    err = capsys.readouterr().err
    assert "is no run folder of neurodyn fit (it has a config.yaml that records a checkpoint.dirpath, but no run.json" \
        in err, err
    assert is_run_folder(run) and not is_run_folder(hand)
    record = json.loads((run / "run.json").read_text())
    assert len(record["id"]) == 32 and record["folder"] == str(run.resolve()), record

    (run / "run.json").unlink()  # a run written before run records: its index names it
    assert is_run_folder(run)
    index = json.loads((ck / "checkpoints.json").read_text())
    (ck / "checkpoints.json").write_text(json.dumps({**index, "run_dir": str(hand)}))
    assert is_run_folder(run)  # ... or its metrics.csv (and Lightning's hparams.yaml)
    for name in ("metrics.csv", "hparams.yaml"):
        (run / name).unlink(missing_ok=True)
    assert not is_run_folder(run)


_PAUSED_FIT = '''
import json, os, subprocess, sys
from neurodyn.training.checkpoints import AutoModelCheckpoint
from neurodyn.cli import main

args, second, out = json.loads(sys.argv[1])
original = AutoModelCheckpoint.on_train_start


def paused(self, trainer, pl_module):
    # this fit has passed every check and starts training; the second fit runs from start to end meanwhile
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEURODYN_RUN")}
    proc = subprocess.run([sys.executable, "-c", "import sys, json; from neurodyn.cli import main; "
                           "sys.exit(main(json.loads(sys.argv[1])))", json.dumps(second)],
                          capture_output=True, text=True, env=env, timeout=300)
    with open(out, "w") as handle:
        json.dump({"rc": proc.returncode, "err": proc.stderr}, handle)
    return original(self, trainer, pl_module)


AutoModelCheckpoint.on_train_start = paused
sys.exit(main(args))
'''


def test_a_new_run_started_while_another_trains_into_the_same_empty_folder_is_refused(tmp_path):
    """Two new runs started at the same moment into one empty ``--checkpoint.dirpath`` both passed the check that it
    held no checkpoints (the first has saved none yet), then wrote over each other's last.ckpt and checkpoints.json.
    A fit claims the folder when it starts (its checkpoints index, made with O_EXCL): here the second fit runs
    whole while the first, past its checks, is held at the start of training; it is refused in one line naming the
    folder and the run that holds it, exit 2, and the first run's checkpoints are its own."""
    import os
    import subprocess
    import sys

    from subprocess_env import clean_env

    root, ck = tmp_path / "runs", tmp_path / "ck"
    common = [*TINY, "--trainer.default_root_dir", str(root), "--trainer.max_epochs", "1",
              "--checkpoint.dirpath", str(ck)]
    out = tmp_path / "second.json"
    repo = str(Path(__file__).resolve().parents[2])
    env = clean_env(OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", _PAUSED_FIT,
                           json.dumps([["fit", *common, "--run-name", "a"], ["fit", *common, "--run-name", "b"],
                                       str(out)])], capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    second = json.loads(out.read_text())
    err = [line for line in second["err"].splitlines() if line and not line.startswith("note:")]
    assert second["rc"] == 2 and len(err) == 1, second
    assert f"{ck}: checkpoint.dirpath: is the checkpoint folder of the run {(root / 'a').resolve()}" in err[0], err
    assert json.loads((ck / "checkpoints.json").read_text())["run_dir"] == str((root / "a").resolve())
    assert sorted(p.name for p in root.iterdir()) == ["a"]  # the refused fit leaves no folder


def test_a_fit_that_saves_no_checkpoint_lets_its_claim_go(tmp_path, capsys):
    """The claim of a fit that ends without a checkpoint (here: ``max_epochs 0``, refused when the Trainer is built,
    after the claim) is removed with the folders made for it, so the folder is free for the next run."""
    ck = tmp_path / "ck" / "sub"
    assert main(["fit", *TINY, "--trainer.default_root_dir", str(tmp_path / "runs"), "--run-name", "a",
                 "--trainer.max_epochs", "0", "--checkpoint.dirpath", str(ck)]) == 2
    assert "max_epochs 0 trains nothing" in capsys.readouterr().err
    assert not (tmp_path / "ck").exists()


def test_a_checkpoint_in_a_runs_checkpoint_folder_elsewhere_is_linked_to_its_run(run_elsewhere, tmp_path, capsys,
                                                                                  monkeypatch):
    """A checkpoint in a run's ``--checkpoint.dirpath`` folder is the run's, as one in ``DIR/checkpoints`` is (which
    was the only one known): its index names the run folder and the run's id, which the run folder's run.json
    holds. ``info FOLDER/X.ckpt`` suggests the run's config (it said CONFIG.yaml), ``predict --ckpt_path
    FOLDER/X.ckpt`` writes DIR/predictions.h5 by default (it had no default output), ``fit --ckpt_path FOLDER/X.ckpt``
    resumes the run in its folder (it started a new run). An index written before run ids links nothing, as
    before."""
    run, ck = run_elsewhere
    real = run.resolve()
    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(["info", str(ck / "last.ckpt")]) == 0
    out = capsys.readouterr().out
    assert f"--config {real / 'config.yaml'} --ckpt_path {ck / 'last.ckpt'}" in out, out
    assert main(["predict", *TINY, "--ckpt_path", str(ck / "last.ckpt")]) == 0, capsys.readouterr().err
    assert (run / "predictions.h5").is_file()
    assert main(["fit", "--ckpt_path", str(ck / "last.ckpt"), "--trainer.max_epochs", "2"]) == 0, \
        capsys.readouterr().err
    assert "max_epochs: 2" in (run / "config.resume-1.yaml").read_text()
    assert json.loads((ck / "checkpoints.json").read_text())["last_epoch"] == 1
    assert sorted(p.name for p in run.parent.iterdir()) == ["a"] and not (tmp_path / "runs" / "lightning_logs").exists()

    index = json.loads((ck / "checkpoints.json").read_text())
    del index["run_id"]  # written before run ids: no link, as before
    (ck / "checkpoints.json").write_text(json.dumps(index))
    from neurodyn.training.checkpoint_index import run_of_checkpoint

    assert run_of_checkpoint(ck / "last.ckpt") is None
    capsys.readouterr()
    assert main(["info", str(ck / "last.ckpt")]) == 0
    assert "--config CONFIG.yaml" in capsys.readouterr().out


def test_predict_with_no_run_folder_and_no_prediction_path_is_one_line_before_it_loads(run_elsewhere, tmp_path,
                                                                                        capsys):
    """``predict --config DIR/config.yaml`` of a folder that is no run folder (a config.yaml written by hand) with a
    checkpoint outside any run ran the whole prediction, then ended in a traceback ('PredictionWriter needs a path',
    exit 1): no run folder, so no default DIR/predictions.h5. Now one line naming prediction.path, before anything
    loads."""
    run, ck = run_elsewhere
    hand = tmp_path / "notes"
    hand.mkdir()
    (hand / "config.yaml").write_text(f"checkpoint:\n  dirpath: {ck}\n")
    kept = tmp_path / "kept.ckpt"
    shutil.copy(ck / "last.ckpt", kept)
    capsys.readouterr()
    assert main(["predict", "--config", str(hand / "config.yaml"), *TINY, "--ckpt_path", str(kept)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and "prediction.path: no file to write the predictions to" in err[0], err
    assert sorted(p.name for p in hand.iterdir()) == ["config.yaml"]


def test_a_run_whose_index_holds_only_its_claim_says_so_and_suggests_no_failing_command(run_elsewhere, capsys,
                                                                                        monkeypatch):
    """A fit killed before or during its first save leaves its checkpoints.json holding only its claim
    (claim_folder), maybe beside a .ckpt: ``predict --run`` said 'use --ckpt_path last' (there is no last.ckpt), and
    info said 'none yet' beside the listed .ckpt and suggested predict / validate / fit --run, which all fail."""
    monkeypatch.setenv("COLUMNS", "400")
    run, ck = run_elsewhere
    index = json.loads((ck / "checkpoints.json").read_text())
    (ck / "checkpoints.json").write_text(json.dumps({"run_dir": index["run_dir"], "run_id": index["run_id"]}))
    (ck / "last.ckpt").unlink()
    assert any(ck.glob("*.ckpt"))
    for which in ("best", "last"):
        capsys.readouterr()
        assert main(["predict", "--run", str(run), "--ckpt_path", which, "--prediction.path", "p.h5"]) == 2
        err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
        assert len(err) == 1 and "claimed by its fit, which is running or stopped before its first checkpoint" \
            in err[0] and "use --ckpt_path last" not in err[0], err
    assert main(["info", str(run)]) == 0
    out = capsys.readouterr().out
    assert "claimed by its fit, which is running or stopped before its first checkpoint" in out and "none yet" \
        not in out, out
    steps = [line for line in out.splitlines() if line.startswith("next: ")]
    assert steps == [f"next: neurodyn fit --config {run / 'config.yaml'} --checkpoint.dirpath null --run-name NEW"
                     "   (a new run with its settings)"], steps


def test_a_claim_lost_to_a_run_that_saved_since_names_its_checkpoints(tmp_path):
    """Two new runs into one folder: the second passed the check before the first saved, then its claim (O_EXCL)
    failed when the first's index already held its checkpoints; claimed_by read no claim there, and the refusal said
    '(being written) ... no checkpoint saved yet'. It is read again and said as the folder of another run's
    checkpoints."""
    from neurodyn.errors import InputError
    from neurodyn.training.checkpoint_index import claim_folder

    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / "checkpoints.json").write_text(json.dumps({"monitor": None, "last": "last.ckpt", "last_epoch": 0,
                                                     "run_dir": str(tmp_path / "first"), "run_id": "a" * 32}))
    (ck / "last.ckpt").write_bytes(b"0")
    with pytest.raises(InputError) as caught:
        claim_folder(ck, tmp_path / "second", "b" * 32)
    said = str(caught.value)
    assert "holds the checkpoints of another run (last.ckpt, checkpoints.json)" in said, said
    assert "being written" not in said, said


def test_a_run_name_with_a_linked_checkpoint_is_refused_with_the_copy_first_route(run_elsewhere, tmp_path, capsys):
    """``fit --ckpt_path CK/last.ckpt --run-name z`` of a checkpoint linked to its run (a resume of that run) was
    refused saying only 'drop --run-name'; a new run ``z`` from it starts from a copy of it (the README's route),
    which the refusal now gives, and which runs."""
    run, ck = run_elsewhere
    root = run.parent
    capsys.readouterr()
    assert main(["fit", *TINY, "--ckpt_path", str(ck / "last.ckpt"), "--trainer.default_root_dir", str(root),
                 "--run-name", "z", "--trainer.max_epochs", "2"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    route = (f"cp {ck / 'last.ckpt'} KEPT.ckpt, then neurodyn fit --config {run / 'config.yaml'} --ckpt_path KEPT.ckpt "
             "--checkpoint.dirpath null --run-name z")
    assert len(err) == 1 and "drop --run-name" in err[0] and route in err[0], err
    kept = tmp_path / "KEPT.ckpt"
    shutil.copy(ck / "last.ckpt", kept)
    assert main(["fit", "--config", str(run / "config.yaml"), "--ckpt_path", str(kept), "--checkpoint.dirpath",
                 "null", "--run-name", "z", "--trainer.default_root_dir", str(root), "--trainer.max_epochs", "2"]) == 0
    assert (root / "z" / "checkpoints" / "last.ckpt").is_file()


@pytest.mark.parametrize("text, why", [("", "is empty (a fit killed between creating its claim on the folder and "
                                             "writing it)"),
                                       ('{"run_dir": "/r', "is not readable as JSON (cut short")])
def test_an_unreadable_checkpoints_index_is_one_line_for_every_reader(run_elsewhere, tmp_path, capsys, monkeypatch,
                                                                      text, why):
    """A fit killed between creating its claim (O_EXCL) and writing it leaves an EMPTY checkpoints.json; every reader
    said something of its own: a new run's refusal 'holds the checkpoints of another run (checkpoints.json)', ``fit
    --run`` 'names no run folder (written by an older neurodyn)', ``--ckpt_path best`` 'unreadable index (Expecting
    value ...)', ``--ckpt_path last`` 'the run has not finished an epoch', ``info`` 'claimed by its fit'. Each now
    says the file is empty (or not readable) and that removing it frees the folder; refusals exit 2, nothing
    written."""
    from neurodyn.errors import InputError
    from neurodyn.training.checkpoint_index import claim_folder, claimed_by

    monkeypatch.setenv("COLUMNS", "400")
    run, ck = run_elsewhere
    for ckpt in ck.glob("*.ckpt"):
        ckpt.unlink()
    (ck / "checkpoints.json").write_text(text)
    remove = f"if no fit is writing into {ck}, remove {ck / 'checkpoints.json'} to free the folder"
    before = _digest(ck)
    capsys.readouterr()
    assert main(["fit", *TINY, "--trainer.default_root_dir", str(tmp_path / "runs"), "--run-name", "c",
                 "--trainer.max_epochs", "1", "--checkpoint.dirpath", str(ck)]) == 2
    line = _one_line(capsys)
    assert f"{ck}: checkpoint.dirpath: its checkpoints.json {why}" in line and remove in line, line
    with pytest.raises(InputError) as caught:  # the claim's own refusal (a new run that passed the check before)
        claim_folder(ck, tmp_path / "runs" / "d", "d" * 32)
    assert f"its checkpoints.json {why}" in str(caught.value) and claimed_by(ck) is None, caught.value
    assert main(["fit", "--run", str(run), "--trainer.max_epochs", "2"]) == 2
    line = _one_line(capsys)
    assert f"lies outside it, and its checkpoints.json {why}" in line and remove in line, line
    for which in ("best", "last"):
        assert main(["predict", "--run", str(run), "--ckpt_path", which, "--prediction.path", "p.h5"]) == 2
        line = _one_line(capsys)
        assert f"no checkpoint for '{which}'" in line and f"its checkpoints.json {why}" in line, line
    assert main(["info", str(run)]) == 0
    out = capsys.readouterr().out
    assert f"its checkpoints.json {why}" in out and "claimed by its fit" not in out, out
    steps = [line for line in out.splitlines() if line.startswith("next: ")]
    assert steps == [f"next: neurodyn fit --config {run / 'config.yaml'} --checkpoint.dirpath null --run-name NEW"
                     "   (a new run with its settings)"], steps
    assert _digest(ck) == before and sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["a"]


_KILLED_FIT = '''
import os, signal, sys, json
from neurodyn.training.checkpoints import AutoModelCheckpoint
from neurodyn.cli import main


def killed(self, trainer, pl_module):  # SIGKILL once training starts: the claim is made, no checkpoint saved
    os.kill(os.getpid(), signal.SIGKILL)


AutoModelCheckpoint.on_train_start = killed
sys.exit(main(json.loads(sys.argv[1])))
'''


def test_a_claim_names_its_fit_and_says_when_that_fit_is_no_longer_running(tmp_path, capsys, monkeypatch):
    """A fit killed with SIGKILL before its first checkpoint leaves its claim; the refusal of the folder and ``info``
    of the run said only 'if no fit of that run is running ... remove'. The claim records the fit's pid and host:
    where that is this host and the pid is no process, they say so ('its fit, pid N on this host, is no longer
    running'); where a process has it, that it may be running; a claim from another host is named by it. Nothing
    is removed."""
    import os
    import subprocess
    import sys

    from subprocess_env import clean_env

    from neurodyn.training.checkpoint_index import claim_folder, claimed_run_words

    monkeypatch.setenv("COLUMNS", "400")
    root, ck = tmp_path / "runs", tmp_path / "ck"
    repo = str(Path(__file__).resolve().parents[2])
    env = clean_env(OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join([repo, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_FIT, json.dumps(
        ["fit", *TINY, "--trainer.default_root_dir", str(root), "--run-name", "a", "--trainer.max_epochs", "1",
         "--checkpoint.dirpath", str(ck)])], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == -signal.SIGKILL, err[-3000:]
    claim = json.loads((ck / "checkpoints.json").read_text())
    assert claim["pid"] == proc.pid and claim["run_dir"] == str((root / "a").resolve()), claim
    dead = f"its fit, pid {proc.pid} on this host, is no longer running"
    before = _digest(ck)
    capsys.readouterr()
    assert main(["fit", *TINY, "--trainer.default_root_dir", str(root), "--run-name", "b",
                 "--trainer.max_epochs", "1", "--checkpoint.dirpath", str(ck)]) == 2
    line = _one_line(capsys)
    assert f"is the checkpoint folder of the run {(root / 'a').resolve()}" in line and dead in line, line
    assert main(["info", str(root / "a")]) == 0
    assert dead in capsys.readouterr().out
    assert main(["predict", "--run", str(root / "a"), "--ckpt_path", "last", "--prediction.path", "p.h5"]) == 2
    assert dead in _one_line(capsys)
    assert _digest(ck) == before

    (ck / "checkpoints.json").write_text(json.dumps({**claim, "host": "elsewhere.invalid"}))
    assert f"its fit ran as pid {proc.pid} on the host elsewhere.invalid" in claimed_run_words(ck)
    mine = tmp_path / "mine"
    claim_folder(mine, tmp_path / "c", "c" * 32)  # claimed by this process, which runs
    assert f"its fit, pid {os.getpid()} on this host, may be running" in claimed_run_words(mine)


def test_a_claim_of_a_host_of_this_name_in_another_boot_is_not_said_to_have_ended(monkeypatch):
    """A claim recording this host's name and another boot id was said to be of a fit that "is no longer running (the
    host has restarted since)", which reads as "removing it is safe"; two machines of one name (cloned machines,
    "localhost") writing to shared storage have different boot ids too. Now neither is said."""
    import socket

    from neurodyn.training import checkpoint_index

    monkeypatch.setattr(checkpoint_index, "_boot_id", lambda: "boot-here")
    words = checkpoint_index.claim_process_words({"pid": 4242, "host": socket.gethostname(), "boot": "boot-other"})
    assert "no longer running" not in words and "another machine of that name" in words, words
