"""Training commands given no room to write (a full disk, ``ulimit -f``), a cache or run folder that cannot be
made, or a FIFO as data: one line ``neurodyn <cmd>: error: ...``, exit code 2, nothing partial left. The disk and
the file system are simulated by patching (no root-only mounts)."""

from __future__ import annotations

import collections
import errno
import os
import shutil
from pathlib import Path

import pytest

from neurodyn.cli import main

TINY = [
    "--data", "LorenzDataModule",
    "--data.n_conditions", "4", "--data.trials_per_condition", "5", "--data.batch_size", "8",
    "--model.init_args.config.hidden_size", "8", "--model.init_args.config.ff_dim", "16",
    "--trainer.enable_model_summary", "false", "--trainer.enable_progress_bar", "false",
    "--trainer.accelerator", "cpu", "--trainer.max_epochs", "1",
]


def _one_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line]
    assert len(err) == 1, err
    return err[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    assert main(["fit", *TINY, "--trainer.default_root_dir", str(root), "--run-name", "r"]) == 0
    return root / "r"


def test_predict_checks_the_free_disk_before_writing(run, tmp_path, monkeypatch, capsys):
    """predict passed no size to the output checks: a disk with too little room was 150 lines of h5py errors and
    a segmentation fault."""
    usage = collections.namedtuple("usage", "total used free")
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage",
                        lambda p: usage(10**9, 10**9 - 1000, 1000) if str(p).startswith(str(tmp_path)) else real(p))
    out = tmp_path / "p.h5"
    assert main(["predict", "--run", str(run), "--out", str(out)]) == 2
    line = _one_line(capsys)
    assert line.startswith(f"neurodyn predict: error: {out}: prediction.path: the output needs about "), line
    assert "only 1.0 kB free" in line and list(tmp_path.iterdir()) == []


def test_predict_past_the_file_size_limit_keeps_the_old_file(run, tmp_path, monkeypatch, capsys):
    import neurodyn.training.predictions as predictions

    out = tmp_path / "p.h5"
    out.write_bytes(b"earlier")

    def too_large(*args, **kwargs):
        raise OSError(errno.EFBIG, "File too large")

    monkeypatch.setattr(predictions, "write_h5_dict", too_large)
    assert main(["predict", "--run", str(run), "--out", str(out), "--overwrite"]) == 2
    assert _one_line(capsys) == (f"neurodyn predict: error: {out}: prediction.path: file too large while writing "
                                 "(File too large)")
    assert out.read_bytes() == b"earlier" and sorted(p.name for p in tmp_path.iterdir()) == ["p.h5"]


def test_fit_on_a_full_disk_names_the_checkpoint(tmp_path, monkeypatch, capsys):
    import lightning.pytorch as pl

    def full(self, filepath, *args, **kwargs):
        Path(filepath).parent.mkdir(parents=True, exist_ok=True)
        Path(filepath).write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device", "/tmp/x", filepath)

    monkeypatch.setattr(pl.Trainer, "save_checkpoint", full)
    assert main(["fit", *TINY, "--trainer.default_root_dir", str(tmp_path / "runs")]) == 2
    line = _one_line(capsys)
    assert line.startswith("neurodyn fit: error: ") and ".ckpt: trainer.default_root_dir: disk full while " \
        "writing (No space left on device)" in line, line
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("*.part"))


def test_a_cache_under_a_file_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("a file\n")
    assert main(["fit", *TINY, "--trainer.default_root_dir", "runs", "--data.init_args.cache", "afile/c.h5"]) == 2
    assert _one_line(capsys) == ("neurodyn fit: error: afile/c.h5: data.init_args.cache: cannot create the folder: "
                                 f"{tmp_path}/afile is a file, not a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_a_cache_that_cannot_be_written_is_one_line(tmp_path, monkeypatch, capsys):
    import neurodyn.data.lfads as lfads

    def read_only(path, *args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(lfads, "write_lfads_h5", read_only)
    assert main(["fit", *TINY, "--trainer.default_root_dir", "runs", "--data.init_args.cache", "c.h5"]) == 2
    line = _one_line(capsys)
    assert line.startswith("neurodyn fit: error: c.h5: data.init_args.cache: cannot write the cache"), line
    assert list(tmp_path.iterdir()) == []


def test_a_read_only_root_folder_is_one_line(tmp_path, monkeypatch, capsys):
    """Without --run_name the run folder is made by runs.unique_run_dir: an OSError traceback before."""
    root = tmp_path / "ro"
    root.mkdir()
    real = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if self.parent == root:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    assert main(["fit", *TINY, "--trainer.default_root_dir", str(root)]) == 2
    line = _one_line(capsys)
    assert line.startswith(f"neurodyn fit: error: {root}: trainer.default_root_dir: cannot create folder "), line
    assert line.endswith("(Read-only file system)") and list(root.iterdir()) == []


def test_a_fifo_as_data_is_refused_as_not_a_regular_file(tmp_path, monkeypatch, capsys):
    """It said "file not found"."""
    monkeypatch.chdir(tmp_path)
    os.mkfifo(tmp_path / "a.fifo")
    assert main(["fit", "--data", "LFADSDataModule", "--data.init_args.path", "a.fifo", "--model",
                 "LangevinFlowModule", "--trainer.default_root_dir", "runs"]) == 2
    assert _one_line(capsys) == "neurodyn fit: error: a.fifo: data.init_args.path: not a regular file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.fifo"]
