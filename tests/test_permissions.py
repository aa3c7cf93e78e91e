"""Files and folders this user may not read, enter or write: one line naming the file and the field, exit code 2,
no traceback, nothing partial left.

Root ignores permission bits and the test suite often runs as root (CI, containers), so each test injects the
error the kernel gives an unprivileged user instead of relying on chmod: :func:`deny` makes ``os.stat`` of a
path inside a folder that may not be entered fail with EACCES (what stat(2) does behind a folder without
execute permission) and ``os.access`` answer as it does for that user; ``open`` of such a file raises the
PermissionError that open(2) raises, and listing such a folder (``os.scandir``, ``os.listdir``) the one
getdents gives. The chmod test at the end checks the same thing for real, as a user.
"""

from __future__ import annotations

import builtins
import errno
import io
import os
from pathlib import Path

import h5py
import numpy as np
import pytest

from neurodyn.cli import main


class Denied:
    """What :func:`deny` forbids: ``unreadable`` files or folders (no read permission; a folder also no execute
    permission: nothing inside can be reached) and ``unwritable`` folders."""

    def __init__(self):
        self.unreadable: set[str] = set()
        self.unwritable: set[str] = set()

    def _inside(self, path) -> bool:
        p = os.path.abspath(os.fspath(path))
        return any(p.startswith(folder + os.sep) for folder in self.unreadable)

    def _error(self, path):
        return PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))


def deny(monkeypatch, unreadable=(), unwritable=()) -> Denied:
    state = Denied()
    state.unreadable = {os.path.abspath(p) for p in unreadable}
    state.unwritable = {os.path.abspath(p) for p in unwritable}
    real_stat, real_access, real_open, real_io_open = os.stat, os.access, builtins.open, io.open

    def stat(path, *args, **kwargs):
        if not isinstance(path, int) and state._inside(path):
            raise state._error(path)
        return real_stat(path, *args, **kwargs)

    def access(path, mode, *args, **kwargs):
        if not isinstance(path, int):
            p = os.path.abspath(os.fspath(path))
            if state._inside(p):
                return False
            if p in state.unreadable and mode & (os.R_OK | os.X_OK):
                return False
            if p in state.unwritable and mode & os.W_OK:
                return False
        return real_access(path, mode, *args, **kwargs)

    def opener(real):
        def open_(file, mode="r", *args, **kwargs):
            if not isinstance(file, int):
                p = os.path.abspath(os.fspath(file))
                writing = any(c in mode for c in "wax+")
                if state._inside(p) or (p in state.unreadable and not writing) or \
                        (writing and os.path.dirname(p) in state.unwritable):
                    raise state._error(file)
            return real(file, mode, *args, **kwargs)
        return open_

    def lister(real):
        def list_(path=".", *args, **kwargs):
            if not isinstance(path, int):
                p = os.path.abspath(os.fspath(path))
                if p in state.unreadable or state._inside(p):
                    raise state._error(path)
            return real(path, *args, **kwargs)
        return list_

    monkeypatch.setattr(os, "scandir", lister(os.scandir))
    monkeypatch.setattr(os, "listdir", lister(os.listdir))
    monkeypatch.setattr(os, "stat", stat)
    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(builtins, "open", opener(real_open))
    monkeypatch.setattr(io, "open", opener(real_io_open))
    return state


def one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    assert "Traceback" not in err, err
    return err


@pytest.fixture
def prepared_like(tmp_path) -> Path:
    path = tmp_path / "prep.h5"
    with h5py.File(path, "w") as f:
        f["a"] = np.zeros(3)
    return path


# ------------------------------------------------------------------ input files
def test_an_input_behind_a_folder_that_may_not_be_entered_is_not_called_missing(monkeypatch, tmp_path, capsys):
    """``os.path.exists`` is False behind a folder without execute permission: it said "no such file"."""
    locked = tmp_path / "locked"
    locked.mkdir()
    (locked / "prep.h5").write_bytes(b"x")
    deny(monkeypatch, unreadable=[locked])
    assert main(["baseline", "--prepared", str(locked / "prep.h5"), "--out", str(tmp_path / "b.h5")]) == 2
    err = one_line(capsys)
    assert f"{locked / 'prep.h5'}: permission denied (folder {locked} may not be entered" in err
    assert "no such file" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["locked"]


def test_an_input_file_without_read_permission_says_so(monkeypatch, prepared_like, tmp_path, capsys):
    """It said h5py's "cannot read file ([Errno 13] Unable to determine if file is accessible as hdf5 ...)"."""
    deny(monkeypatch, unreadable=[prepared_like])
    monkeypatch.setattr(h5py, "is_hdf5", lambda path: (_ for _ in ()).throw(
        OSError(errno.EACCES, "Unable to determine if file is accessible as hdf5")))
    assert main(["plot", str(prepared_like), "--out", str(tmp_path / "fig.png")]) == 2
    err = one_line(capsys)
    assert f"{prepared_like}: permission denied (no read permission)" in err
    assert not (tmp_path / "fig.png").exists()


def test_a_checkpoint_without_read_permission_is_not_called_a_damaged_archive(monkeypatch, tmp_path):
    """torch.load's PermissionError was read as "not a torch.save zip archive (truncated, or another kind of
    file)": the user went looking for damage in a good file."""
    ckpt = tmp_path / "last.ckpt"
    ckpt.write_bytes(b"PK\x03\x04 a checkpoint this user may not read")
    deny(monkeypatch, unreadable=[ckpt])
    from neurodyn.errors import InputError
    from neurodyn.training.checkpoints import read_checkpoint

    with pytest.raises(InputError) as err:  # what predict --ckpt_path, fit --run and info read checkpoints with
        read_checkpoint(ckpt)
    assert str(err.value) == f"{ckpt}: ckpt_path: permission denied (no read permission)"


@pytest.mark.parametrize("target", ["folder", "file inside"])
def test_info_on_a_folder_this_user_may_not_enter(monkeypatch, tmp_path, capsys, target):
    """``Path.is_file`` of config.yaml inside (the run-folder test) raised PermissionError: a traceback, exit 1."""
    locked = tmp_path / "run"
    (locked / "checkpoints").mkdir(parents=True)
    (locked / "config.yaml").write_text("trainer: {}\n")
    deny(monkeypatch, unreadable=[locked])
    path = locked if target == "folder" else locked / "config.yaml"
    assert main(["info", str(path)]) == 2
    err = one_line(capsys)
    assert f"neurodyn info: error: {path}: permission denied (" in err


@pytest.mark.parametrize("where", ["file", "folder"])
def test_a_config_file_this_user_may_not_read(monkeypatch, tmp_path, capsys, where):
    """``--config`` was read with ``Path.read_text`` / checked with ``Path.is_file``: a PermissionError
    traceback, exit 1, before any run folder existed."""
    folder = tmp_path / "configs"
    folder.mkdir()
    cfg = folder / "fit.yaml"
    cfg.write_text("trainer:\n  max_epochs: 1\n")
    deny(monkeypatch, unreadable=[cfg if where == "file" else folder])
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "--config", str(cfg), "--run-name", "r"]) == 2
    err = one_line(capsys)
    assert f"neurodyn fit: error: {cfg}: --config: permission denied (" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["configs"]  # no runs/ folder left


@pytest.mark.parametrize("command", ["predict", "fit"])
def test_a_run_folder_this_user_may_not_enter(monkeypatch, tmp_path, capsys, command):
    """``--run DIR``: ``Path.is_file`` of DIR/config.yaml raised PermissionError, a traceback with exit 1."""
    run = tmp_path / "runs" / "r"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("trainer:\n  max_epochs: 1\n")
    deny(monkeypatch, unreadable=[run])
    monkeypatch.chdir(tmp_path)
    assert main([command, "--run", str(run)]) == 2
    err = one_line(capsys)
    assert f"neurodyn {command}: error: {run}: run: permission denied (" in err


@pytest.mark.parametrize("command", ["fit", "validate"])
def test_a_config_folder_that_may_not_be_listed_is_called_a_folder(monkeypatch, tmp_path, capsys, command):
    """``--config DIR`` on a folder this user may not list said "permission denied (this folder may not be listed
    or entered ...)": the permission check came first, and the user went to fix permissions of a folder that is
    the wrong kind of input whatever they are."""
    folder = tmp_path / "configs"
    folder.mkdir()
    deny(monkeypatch, unreadable=[folder])
    monkeypatch.chdir(tmp_path)
    assert main([command, "--config", str(folder)]) == 2
    assert one_line(capsys) == (f"neurodyn {command}: error: {folder}: --config: is a folder, expected a YAML "
                                "config file")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["configs"]


def test_a_yaml_folder_that_may_not_be_listed_is_called_a_folder(monkeypatch, tmp_path):
    """The same for the YAML files ``tune`` reads itself (``--config``, ``--search``)."""
    from neurodyn.errors import InputError
    from neurodyn.training.parser_errors import read_yaml

    folder = tmp_path / "space"
    folder.mkdir()
    deny(monkeypatch, unreadable=[folder])
    with pytest.raises(InputError) as err:
        read_yaml(folder, "--search")
    assert str(err.value) == f"{folder}: --search: is a folder, expected a YAML file"


def test_a_run_folder_whose_config_this_user_may_not_read(monkeypatch, tmp_path, capsys):
    """Refused as ``--config``, an option the user never gave; ``--run`` is the one to name."""
    run = tmp_path / "r"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("trainer:\n  max_epochs: 1\n")
    deny(monkeypatch, unreadable=[run / "config.yaml"])
    assert main(["predict", "--run", str(run)]) == 2
    assert f"{run / 'config.yaml'}: run: permission denied (no read permission)" in one_line(capsys)


def test_download_over_a_file_this_user_may_not_read(monkeypatch, tmp_path):
    """An existing destination is verified before anything is fetched; reading it was a PermissionError
    traceback (exit 1). Refused without overwrite, before any request (the URL never resolves)."""
    from neurodyn.data.dandi import RemoteFile
    from neurodyn.data.download import fetch_file
    from neurodyn.errors import InputError

    dest = tmp_path / "000999" / "x.nwb"
    dest.parent.mkdir()
    dest.write_bytes(b"0123456789")
    deny(monkeypatch, unreadable=[dest])
    remote = RemoteFile("000999/x.nwb", 10, "http://blobs.neurodyn-test.invalid/x.nwb", sha256="0" * 64)
    with pytest.raises(InputError) as err:
        fetch_file(remote, dest, retries=0)
    assert str(err.value) == (f"{dest}: exists and cannot be checked against DANDI's file (permission denied "
                              "(no read permission)); pass overwrite=True to replace it")
    assert sorted(p.name for p in dest.parent.iterdir()) == ["x.nwb"]


def test_prepare_from_a_folder_this_user_may_not_list(monkeypatch, tmp_path, capsys):
    """``Path.glob`` swallows the PermissionError of a folder it may not list: "folder holds no .nwb files", of a
    folder that holds them."""
    folder = tmp_path / "nwb"
    folder.mkdir()
    (folder / "sub-X_ses-y_desc-test_ecephys.nwb").write_bytes(b"x")
    deny(monkeypatch, unreadable=[folder])
    assert main(["prepare", "--dataset", "mc_maze_small", "--nwb", str(folder), "--out", str(tmp_path / "p.h5")]) == 2
    err = one_line(capsys)
    assert f"neurodyn prepare: error: {folder}: permission denied (this folder may not be listed" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nwb"]


@pytest.mark.parametrize("sub", ["checkpoints", "tensorboard"])
def test_resuming_a_run_whose_folder_inside_this_user_may_not_write(monkeypatch, tmp_path, capsys, sub):
    """``fit --run DIR`` with DIR writable but DIR/checkpoints (or DIR/tensorboard) not: the resume trained, then
    the checkpoint rename (or TensorBoard's event file) was a traceback with exit 1, leaving config.resume-1.yaml
    and an event file. Refused before anything is written."""
    run = tmp_path / "runs" / "r"
    for name in ("checkpoints", "tensorboard"):
        (run / name).mkdir(parents=True)
    (run / "config.yaml").write_text("seed_everything: 0\ntrainer:\n  max_epochs: 1\n")
    (run / "checkpoints" / "last.ckpt").write_bytes(b"not reached")
    deny(monkeypatch, unwritable=[run / sub])
    monkeypatch.chdir(tmp_path)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert main(["fit", "--run", str(run), "--trainer.max_epochs", "2"]) == 2
    err = one_line(capsys)
    assert err == f"neurodyn fit: error: {run}: run: cannot write in its folder {sub} (permission denied)"
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


HMM_FIT = ["--model", "HMMGLMModule", "--model.config.n_states", "2", "--model.n_inner", "2", "--data",
           "SwitchingGLMDataModule", "--data.n_states", "2", "--data.n_neurons", "5", "--data.n_sequences", "5",
           "--data.n_bins", "100", "--data.n_train", "3", "--trainer.accelerator", "cpu",
           "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


def test_resuming_a_run_whose_recorded_checkpoint_dirpath_this_user_may_not_write(monkeypatch, tmp_path, capsys):
    """A run fitted with ``--checkpoint.dirpath kept/ckpts`` keeps its checkpoints there (its config.yaml records
    it), but the up-front check of ``fit --run DIR`` looked at DIR/checkpoints only: the resume trained and failed
    at its first checkpoint with a traceback. Refused before anything is written; nothing of the run changes."""
    kept = tmp_path / "kept" / "ckpts"
    run = tmp_path / "runs" / "r"
    monkeypatch.chdir(tmp_path)
    assert main(["fit", *HMM_FIT, "--trainer.default_root_dir", "runs", "--run-name", "r",
                 "--trainer.max_epochs", "1", "--checkpoint.dirpath", str(kept)]) == 0
    assert (kept / "last.ckpt").is_file() and not (run / "checkpoints").exists()
    capsys.readouterr()
    deny(monkeypatch, unwritable=[kept])
    before = {p: p.read_bytes() if p.is_file() else None for p in tmp_path.rglob("*")}
    assert main(["fit", "--run", str(run), "--trainer.max_epochs", "2"]) == 2
    assert one_line(capsys) == (f"neurodyn fit: error: {kept}: checkpoint.dirpath: cannot write in this folder "
                                "(permission denied), where the run keeps its checkpoints (its config.yaml records it)")
    assert {p: p.read_bytes() if p.is_file() else None for p in tmp_path.rglob("*")} == before


@pytest.mark.parametrize("case", ["inside a file", "a file", "unwritable", "under an unwritable folder"])
def test_a_new_run_whose_checkpoint_dirpath_cannot_be_written_is_refused_before_it_trains(monkeypatch, tmp_path,
                                                                                          capsys, case):
    """``fit --checkpoint.dirpath`` of a path inside a regular file trained, then Lightning's makedirs at the first
    checkpoint was a NotADirectoryError traceback; a folder this user may not write likewise. Refused before any
    folder is made (no run folder, no root left behind)."""
    (tmp_path / "notes.txt").write_text("a file")
    monkeypatch.chdir(tmp_path)
    if case == "inside a file":
        dirpath, why = "notes.txt/ckpts", f"cannot make this folder: {tmp_path / 'notes.txt'} is not a folder"
    elif case == "a file":
        dirpath, why = "notes.txt", "is not a folder, expected the folder of the run's checkpoints"
    else:
        (tmp_path / "shared").mkdir()
        deny(monkeypatch, unwritable=[tmp_path / "shared"])
        dirpath, why = (("shared", "cannot write in this folder (permission denied)") if case == "unwritable" else
                        ("shared/ckpts", f"cannot make this folder: {tmp_path / 'shared'} is not writable (permission "
                         "denied)"))
    assert main(["fit", *HMM_FIT, "--trainer.default_root_dir", "runs", "--run-name", "r", "--trainer.max_epochs",
                 "1", "--checkpoint.dirpath", dirpath]) == 2
    assert one_line(capsys) == f"neurodyn fit: error: {dirpath}: checkpoint.dirpath: {why}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"] + ["shared"] * ("unwritable" in case)
    assert (tmp_path / "notes.txt").read_text() == "a file"


def test_a_lock_file_this_user_may_not_write_is_not_called_an_unwritable_folder(monkeypatch, tmp_path):
    """``.<name>.lock`` left by another user's writer (killed with SIGKILL), or made read-only: its open for
    writing failed and the output was refused as "cannot write in folder X" -- a folder the user can write.
    flock needs only a descriptor: the lock is taken through one opened to read, and the output written."""
    from neurodyn.io.output import output_file

    out = tmp_path / "out.h5"
    lock = tmp_path / ".out.h5.lock"
    lock.write_bytes(b"")
    real_open = os.open

    def os_open(path, flags, *args, **kwargs):  # open(2) of a file whose mode forbids this user to write it
        if os.fspath(path) == str(lock) and flags & (os.O_RDWR | os.O_WRONLY):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    with output_file(out) as tmp:
        Path(tmp).write_bytes(b"written")
    assert out.read_bytes() == b"written"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5"]


@pytest.mark.parametrize("error", [errno.EBADF, errno.EWOULDBLOCK], ids=errno.errorcode.get)
def test_a_lock_file_that_cannot_be_locked_read_only_is_not_called_another_writer(monkeypatch, tmp_path, error):
    """The read-only fallback above, on NFS or CIFS: Linux emulates flock there with POSIX locks, which need a
    descriptor open for writing, so flock fails with EBADF -- and the output was refused as "another process is
    writing this file", with no other process anywhere. EBADF now says what is wrong and names the lock file;
    EWOULDBLOCK (a lock held) is refused as before."""
    import fcntl

    from neurodyn.errors import InputError
    from neurodyn.io.output import output_file

    out = tmp_path / "out.h5"
    lock = tmp_path / ".out.h5.lock"
    lock.write_bytes(b"")
    real_open = os.open

    def os_open(path, flags, *args, **kwargs):  # open(2) of a lock file whose mode forbids this user to write it
        if os.fspath(path) == str(lock) and flags & (os.O_RDWR | os.O_WRONLY):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    def flock(fd, operation):  # flock(2) of that read-only descriptor on NFS: EBADF; or a lock someone holds
        raise OSError(error, os.strerror(error))

    monkeypatch.setattr(os, "open", os_open)
    monkeypatch.setattr(fcntl, "flock", flock)
    with pytest.raises(InputError) as err:
        with output_file(out):
            raise AssertionError("written without the lock")
    if error == errno.EBADF:
        assert str(err.value) == (f"{lock}: --out: cannot be locked: this user may not write the lock file, and this "
                                  "file system (NFS, CIFS) locks only files open for writing; if no process is "
                                  "writing this file, remove the lock file")
    else:
        assert str(err.value) == (f"{out}: --out: another process is writing this file (lock .out.h5.lock); try "
                                  "again when it has finished")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.h5.lock"]  # not ours to remove


def test_demo_refuses_a_checkpoints_folder_this_user_may_not_write_before_it_trains(monkeypatch, tmp_path,
                                                                                       capsys):
    """A rerun into an --out whose checkpoints/ (kept from an earlier run) this user may not write simulated and
    trained, then Lightning's makedirs of checkpoints/version_<n> was a traceback (exit 1), leaving
    logs/version_<n>."""
    import neurodyn.demo as demo

    out = tmp_path / "demo"
    (out / "checkpoints").mkdir(parents=True)
    deny(monkeypatch, unwritable=[out / "checkpoints"])

    def not_reached(*args, **kwargs):
        raise AssertionError("simulated or trained before refusing")

    monkeypatch.setattr(demo, "write_demo_cache", not_reached)
    monkeypatch.setattr(demo, "train_lorenz", not_reached)
    assert main(["demo", "--out", str(out), "--epochs", "1"]) == 2
    assert one_line(capsys) == (f"neurodyn demo: error: {out / 'checkpoints'}: --out: cannot write in this folder "
                                "(permission denied)")
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints"]


# ------------------------------------------------------------------ for real, as a user (root ignores the bits)
@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores permission bits")
def test_for_real_with_chmod(tmp_path, capsys):
    """The injected errors above, met through chmod by a user who is not root."""
    unreadable = tmp_path / "unreadable.h5"
    with h5py.File(unreadable, "w") as f:
        f["a"] = np.zeros(3)
    locked = tmp_path / "locked"
    (locked / "checkpoints").mkdir(parents=True)
    (locked / "config.yaml").write_text("trainer: {}\n")
    config = tmp_path / "fit.yaml"
    config.write_text("trainer:\n  max_epochs: 1\n")
    unreadable.chmod(0)
    locked.chmod(0)
    config.chmod(0)
    try:
        cases = [(["info", str(unreadable)], f"{unreadable}: permission denied (no read permission)"),
                 (["info", str(locked)], f"{locked}: permission denied (this folder may not be listed"),
                 (["predict", "--run", str(locked)], f"{locked}: run: permission denied ("),
                 (["fit", "--config", str(config)], f"{config}: --config: permission denied (no read permission)"),
                 (["baseline", "--prepared", str(locked / "x.h5"), "--out", str(tmp_path / "b.h5")],
                  f"{locked / 'x.h5'}: permission denied (folder {locked} may not be entered")]
        for argv, expected in cases:
            assert main(argv) == 2, argv
            assert expected in one_line(capsys), argv
    finally:
        for path in (unreadable, locked, config):
            path.chmod(0o700)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fit.yaml", "locked", "unreadable.h5"]


def test_info_on_a_run_folder_whose_config_this_user_may_not_read(monkeypatch, tmp_path, capsys):
    """Said "config.yaml: yaml: unreadable (PermissionError)": the exception's class, not what to do."""
    run = tmp_path / "r"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("trainer: {}\n")
    deny(monkeypatch, unreadable=[run / "config.yaml"])
    assert main(["info", str(run)]) == 2
    assert one_line(capsys) == f"neurodyn info: error: {run / 'config.yaml'}: permission denied (no read permission)"


def test_resuming_a_run_with_a_read_only_folder_the_fit_does_not_write(monkeypatch, tmp_path, capsys):
    """Only ``checkpoints/`` and ``tensorboard/`` are written by a resume: a read-only folder of the user's own
    beside them (an analysis kept in the run, an archived copy) was refused as 'cannot write in its folder
    analysis', and every file of the run was walked to find it."""
    run = tmp_path / "runs" / "r"
    for name in ("checkpoints", "tensorboard", "analysis/old"):
        (run / name).mkdir(parents=True)
    (run / "config.yaml").write_text("seed_everything: 0\ntrainer:\n  max_epochs: 1\n")
    (run / "checkpoints" / "last.ckpt").write_bytes(b"not a checkpoint")
    deny(monkeypatch, unwritable=[run / "analysis", run / "analysis" / "old"])
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "--run", str(run), "--trainer.max_epochs", "2"]) == 2
    err = one_line(capsys)
    assert "cannot write in its folder" not in err, err
    assert "last.ckpt" in err, err


@pytest.mark.parametrize("command", ["predict", "fit"])
def test_a_run_folder_this_user_may_enter_but_not_list(monkeypatch, tmp_path, capsys, command):
    """A run folder shared as ``chmod 711`` (enter, not list): its config.yaml and checkpoints/last.ckpt are
    opened by name, which the folder allows, yet ``--run`` refused it as 'may not be listed or entered'. Here it
    goes on to the run's checkpoint index (absent)."""
    run = tmp_path / "runs" / "r"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text("seed_everything: 0\ntrainer:\n  max_epochs: 1\n")
    real_access, unlisted = os.access, os.path.abspath(run)

    def access(path, mode, *args, **kwargs):  # what access(2) answers for r-x-less "--x" to this user
        if not isinstance(path, int) and os.path.abspath(os.fspath(path)) == unlisted and mode & os.R_OK:
            return False
        return real_access(path, mode, *args, **kwargs)

    def lister(real):
        def list_(path=".", *args, **kwargs):
            if not isinstance(path, int) and os.path.abspath(os.fspath(path)) == unlisted:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
            return real(path, *args, **kwargs)
        return list_

    monkeypatch.setattr(os, "access", access)
    monkeypatch.setattr(os, "scandir", lister(os.scandir))
    monkeypatch.setattr(os, "listdir", lister(os.listdir))
    monkeypatch.chdir(tmp_path)
    extra = ["--prediction.path", str(tmp_path / "p.h5")] if command == "predict" else []
    assert main([command, "--run", str(run), *extra]) == 2
    err = one_line(capsys)
    assert "permission denied" not in err, err
    assert f"{run / 'checkpoints'}: ckpt_path: no " in err, err  # no checkpoints.json / last.ckpt


def test_a_symbolic_link_into_a_folder_that_may_not_be_entered_names_that_folder(monkeypatch, tmp_path, capsys):
    """``data/x.h5`` a link to ``secret/x.h5`` with ``secret/`` closed: the reason named ``data/`` -- the link's
    folder, which this user may enter -- as the folder that may not be entered."""
    from neurodyn.io.hdf5 import denied_reason

    (tmp_path / "data").mkdir()
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "x.h5").write_bytes(b"")
    link = tmp_path / "data" / "x.h5"
    link.symlink_to(secret / "x.h5")
    real_stat, real_access = os.stat, os.access

    def stat(path, *args, **kwargs):  # stat(2) follows the link into secret/: EACCES
        if not isinstance(path, int) and kwargs.get("follow_symlinks", True) and \
                os.path.realpath(path).startswith(str(secret) + os.sep):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return real_stat(path, *args, **kwargs)

    def access(path, mode, *args, **kwargs):
        if not isinstance(path, int) and os.path.abspath(os.fspath(path)) == str(secret):
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "stat", stat)
    monkeypatch.setattr(os, "access", access)
    assert denied_reason(link) == f"permission denied (folder {secret} may not be entered: no execute permission)"


def test_a_stale_lock_file_in_a_folder_this_user_may_not_write_still_refuses_the_folder(monkeypatch, tmp_path):
    """hold_folder's only check that a run folder is writable was creating its lock: another user's folder holding
    their stale ``.run.lock`` (readable to all) was taken through the read-only fallback for lock files, and the
    fit would have failed later writing its records. The folder is refused as before: 'cannot write in this
    folder'."""
    from neurodyn.errors import InputError
    from neurodyn.io.output import hold_folder

    run = tmp_path / "run"
    run.mkdir()
    lock = run / ".run.lock"
    lock.write_bytes(b"")
    deny(monkeypatch, unwritable=[run])
    real_open = os.open

    def os_open(path, flags, *args, **kwargs):  # the folder's owner's lock file: open(2) to write is EACCES
        if os.fspath(path) == str(lock) and flags & (os.O_RDWR | os.O_WRONLY):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)
    with pytest.raises(InputError, match="cannot write in this folder"):
        with hold_folder(run, field="run"):
            raise AssertionError("the lock of a folder this user may not write was taken")
    assert lock.exists()


def test_demo_out_behind_a_folder_this_user_may_not_enter(monkeypatch, tmp_path, capsys):
    """``demo --out closed/demo``: Path.exists of --out raised PermissionError (a traceback, not exit 2)."""
    import neurodyn.demo as demo

    closed = tmp_path / "closed"
    (closed / "demo").mkdir(parents=True)
    deny(monkeypatch, unreadable=[closed])

    def not_reached(*args, **kwargs):
        raise AssertionError("simulated or trained before refusing")

    monkeypatch.setattr(demo, "write_demo_cache", not_reached)
    monkeypatch.setattr(demo, "train_lorenz", not_reached)
    assert main(["demo", "--out", str(closed / "demo"), "--epochs", "1"]) == 2
    assert one_line(capsys) == (f"neurodyn demo: error: {closed / 'demo'}: --out: permission denied (folder "
                                f"{closed} may not be entered: no execute permission)")


def test_download_out_behind_a_folder_this_user_may_not_enter(monkeypatch, tmp_path, capsys):
    """``download NAME --out closed/d``: Path.exists of --out raised PermissionError (a traceback, not exit 2),
    before any request."""
    import requests

    closed = tmp_path / "closed"
    (closed / "d").mkdir(parents=True)

    def no_request(*args, **kwargs):
        raise AssertionError("a request before refusing")

    monkeypatch.setattr(requests.Session, "send", no_request)
    deny(monkeypatch, unreadable=[closed])
    assert main(["download", "mc_maze_small", "--out", str(closed / "d"), "--no-progress"]) == 2
    assert one_line(capsys) == (f"neurodyn download: error: {closed / 'd'}: --out: permission denied (folder "
                                f"{closed} may not be entered: no execute permission)")


@pytest.mark.parametrize("command", ["fit", "predict"])
def test_a_checkpoint_behind_a_folder_this_user_may_not_enter(monkeypatch, tmp_path, capsys, command):
    """``--ckpt_path closed/checkpoints/last.ckpt``: Path.is_file of it (fit) or of closed/config.yaml (predict,
    looking for its run folder) raised PermissionError, a traceback with exit 1."""
    closed = tmp_path / "closed"
    (closed / "checkpoints").mkdir(parents=True)
    ckpt = closed / "checkpoints" / "last.ckpt"
    ckpt.write_bytes(b"not reached")
    deny(monkeypatch, unreadable=[closed])
    monkeypatch.chdir(tmp_path)
    assert main([command, "--ckpt_path", str(ckpt)]) == 2
    assert one_line(capsys) == (f"neurodyn {command}: error: {ckpt}: ckpt_path: permission denied (folder {closed} "
                                "may not be entered: no execute permission)")
