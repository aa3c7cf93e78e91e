"""``neurodyn.io.read_h5``: every way an HDF5 input can be unreadable is one InputError line."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from neurodyn.errors import InputError
from neurodyn.io import read_h5


@pytest.fixture
def files(tmp_path):
    """A valid HDF5 file, the same file cut to half its size, a text file, a folder and a missing path."""
    good = tmp_path / "good.h5"
    with h5py.File(good, "w") as f:
        f["a"] = np.arange(5000.0)
        f.create_group("g")["b"] = np.ones((20, 20))
    data = good.read_bytes()
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(data[: len(data) // 2])
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5\n")
    folder = tmp_path / "folder.h5"
    folder.mkdir()
    loop = tmp_path / "loop.h5"
    loop.symlink_to("loop.h5")  # a link to itself: exists() is False, as for a missing file
    broken = tmp_path / "broken.h5"
    broken.symlink_to("gone.h5")
    return {"good": good, "truncated": truncated, "text": text, "folder": folder, "missing": tmp_path / "absent.h5",
            "loop": loop, "broken": broken}


def _message(err) -> str:
    msg = str(err.value)
    assert "\n" not in msg
    return msg


@pytest.mark.parametrize(
    "case, expected",
    [
        ("folder", "is a folder, expected a file (test file)"),
        ("missing", "no such file (test file)"),
        ("text", "not an HDF5 file (test file)"),
        ("truncated", "truncated or damaged HDF5 file ("),
        ("loop", "symbolic link loop (the link leads back to itself) (test file)"),
        ("broken", "broken symbolic link (to gone.h5, which does not exist) (test file)"),
    ],
)
def test_unreadable_inputs(files, case, expected):
    path = files[case]
    with pytest.raises(InputError) as err:
        with read_h5(path, "test file"):
            pass
    msg = _message(err)
    assert msg.startswith(f"{path}: ") and expected in msg
    assert err.value.path == str(path)
    if case == "truncated":
        # the reason is h5py's own: the superblock records the full size, so opening half a file fails
        assert "truncated file" in msg
    if case not in ("missing", "loop", "broken"):
        assert path.exists()  # nothing removed or created


def test_a_checkpoint_is_named_where_an_hdf5_file_belongs(tmp_path):
    """A checkpoint given as an HDF5 input (``plot last.ckpt``, ``evaluate --target last.ckpt``) was only 'not an
    HDF5 file (...)'; it is named, with the option that takes it. Another zip archive stays 'not an HDF5 file'."""
    import zipfile

    import torch

    ckpt = tmp_path / "last.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, ckpt)
    with pytest.raises(InputError) as err:
        with read_h5(ckpt, "prediction file"):
            pass
    assert _message(err) == (f"{ckpt}: not an HDF5 file (prediction file): a checkpoint (torch.save archive), which "
                             "neurodyn predict / validate take as --ckpt_path")
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("a.txt", "hello")
    with pytest.raises(InputError) as err:
        with read_h5(other, "prediction file"):
            pass
    assert _message(err) == f"{other}: not an HDF5 file (prediction file)"


def test_without_what_no_parentheses(files):
    with pytest.raises(InputError) as err:
        with read_h5(files["missing"]):
            pass
    assert _message(err) == f"{files['missing']}: no such file"


def test_reads_and_closes(files):
    with read_h5(files["good"]) as f:
        np.testing.assert_array_equal(f["a"][()], np.arange(5000.0))
        assert f.mode == "r"
    assert not f  # closed after the block
    with read_h5(files["good"]) as handle:
        assert handle["g/b"].shape == (20, 20)


def test_oserror_inside_block_becomes_input_error(files):
    long_reason = "line one\nline two " + "x" * 500
    with pytest.raises(InputError) as err:
        with read_h5(files["good"], "test file") as f:
            raise OSError(long_reason)
    msg = _message(err)
    assert msg.startswith(f"{files['good']}: truncated or damaged HDF5 file (line one line two xxx")
    # the reason is cut to 200 characters: prefix + 200 + ")"
    assert len(msg) == len(f"{files['good']}: truncated or damaged HDF5 file (") + 200 + 1
    assert not f  # the file was closed on the way out


def test_other_errors_pass_through(files):
    original = InputError("missing key", path="x.h5", field="train_data")
    with pytest.raises(InputError) as err:
        with read_h5(files["good"]):
            raise original
    assert err.value is original
    with pytest.raises(KeyError):
        with read_h5(files["good"]) as f:
            f["no_such_dataset"]


def _readers():
    from neurodyn.commands.baseline import predict_prepared
    from neurodyn.data.info import file_kind
    from neurodyn.data.lfads import read_lfads_h5
    from neurodyn.data.nwb import load_session
    from neurodyn.data.prepared import load_prepared
    from neurodyn.metrics.evaluate import load_target
    from neurodyn.metrics.submission import expected_shapes_from_prepared, read_submission
    from neurodyn.viz.prediction import read_prediction

    return {
        "file_kind": file_kind,
        "read_lfads_h5": read_lfads_h5,
        "load_session": load_session,
        "load_prepared": load_prepared,
        "load_target": load_target,
        "expected_shapes_from_prepared": expected_shapes_from_prepared,
        "read_submission": read_submission,
        "predict_prepared": predict_prepared,
        "read_prediction": read_prediction,
    }


@pytest.mark.parametrize(
    "reader",
    [
        "file_kind",
        "read_lfads_h5",
        "load_session",
        "load_prepared",
        "load_target",
        "expected_shapes_from_prepared",
        "read_submission",
        "predict_prepared",
        "read_prediction",
    ],
)
def test_readers_share_the_messages(files, reader):
    read = _readers()[reader]
    for case, expected in [
        ("missing", "no such file"),
        ("text", "not an HDF5 file"),
        ("truncated", "truncated or damaged HDF5 file ("),
        ("loop", "symbolic link loop"),  # was "no such file" (load_session: "no such file or folder")
    ]:
        path = files[case]
        with pytest.raises(InputError) as err:
            read(path)
        msg = _message(err)
        assert msg.startswith(f"{path}: ") and expected in msg, (case, msg)
        if case == "truncated":
            assert "truncated file" in msg  # h5py's reason is carried


# ------------------------------------------------------------------------------ output_file (the output policy)
def test_output_file_failure_leaves_nothing(tmp_path):
    """An error in the block: no output, no temporary file, no lock file, no folder the call created."""
    from neurodyn.io import output_file

    out = tmp_path / "new" / "deeper" / "out.h5"
    with pytest.raises(RuntimeError, match="a bug"):
        with output_file(out) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("a bug")
    assert list(tmp_path.iterdir()) == []


def test_output_file_success_removes_a_killed_writers_left_overs(tmp_path):
    """A SIGKILLed writer leaves its 0-byte temporary file and lock file; a later run that completes removed
    the lock but kept the temporary files for ever. Both go now; another output's files are left alone."""
    from neurodyn.io import output_file

    stale = [tmp_path / ".out.h5.k1ll3d_8.part", tmp_path / "..out.h5.k1ll3d_8.part.x9x9x9x9.part",
             tmp_path / ".out.h5.lock"]  # mkstemp's names: 8 random characters
    others = [tmp_path / ".other.h5.abc.part", tmp_path / "out.h5.part",  # a download's resumable bytes
              # helper-57: another output's temporary file (out.h5.gz, under its own lock) and a user's file
              tmp_path / ".out.h5.gz.abcd1234.part", tmp_path / ".out.h5.backup.part"]
    for f in stale + others:
        f.write_bytes(b"")
    with output_file(tmp_path / "out.h5") as tmp:
        tmp.write_bytes(b"whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out.h5", *(f.name for f in others)])


def test_output_file_sigterm_is_an_interrupt(tmp_path):
    """SIGTERM inside the block raises Interrupted (so cleanup runs); the previous handler is restored."""
    import os
    import signal

    from neurodyn.io import Interrupted, output_file

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as err:
        with output_file(tmp_path / "out.h5") as tmp:
            tmp.write_bytes(b"half")
            os.kill(os.getpid(), signal.SIGTERM)
    assert err.value.signum == signal.SIGTERM
    assert signal.getsignal(signal.SIGTERM) == before
    assert list(tmp_path.iterdir()) == []


def test_output_file_overwrite_and_inputs(tmp_path):
    """--overwrite replaces an existing output, never an input (same path, symlink, hard link)."""
    import os

    from neurodyn.io import output_file

    source = tmp_path / "in.h5"
    source.write_bytes(b"input")
    (tmp_path / "sym.h5").symlink_to(source)
    os.link(source, tmp_path / "hard.h5")
    for name in ("in.h5", "sym.h5", "hard.h5"):
        with pytest.raises(InputError, match="is an input file"):
            with output_file(tmp_path / name, inputs=iter([source]), overwrite=True):
                pass
    out = tmp_path / "out.h5"
    out.write_bytes(b"old")
    with output_file(out, inputs=[source], overwrite=True) as tmp:
        tmp.write_bytes(b"new")
    assert out.read_bytes() == b"new" and source.read_bytes() == b"input"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hard.h5", "in.h5", "out.h5", "sym.h5"]


def test_an_output_that_is_not_a_regular_file_is_refused(tmp_path, capsys):
    """helper-58: `baseline --out /dev/null --overwrite` as root replaced the device node with a regular file
    (the finished file is renamed onto the output path). A FIFO stands in for /dev/null here."""
    import os
    import stat

    from neurodyn.cli import main
    from neurodyn.io import output_file

    fifo = tmp_path / "out.h5"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        with output_file(fifo, overwrite=True) as tmp:
            tmp.write_bytes(b"new")
    assert main(["simulate", "lorenz", "--out", str(fifo), "--overwrite", "--n-conditions", "2",
                 "--trials-per-condition", "2", "--n-neurons", "4", "--n-samples", "100", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a regular file" in err[0] and str(fifo) in err[0]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and sorted(p.name for p in tmp_path.iterdir()) == ["out.h5"]


def test_long_error_text_is_cut_at_a_word_boundary():
    """Error details (network errors, h5py messages) are cut at a word boundary and end with an ellipsis."""
    from neurodyn.data import dandi, stream
    from neurodyn.errors import one_line

    words = "HTTPSConnectionPool(host='api.dandiarchive.org', port=443): Max retries exceeded " * 10
    text = words + "Failed to resolve 'api.dandiarchive.org'"
    for cut in (one_line(text, 500), dandi.one_line(text, 300), stream.one_line(text, 240)):
        assert cut.endswith(" …") and "\n" not in cut
        body = cut[: -len(" …")]
        assert text.startswith(body) and text[len(body)] == " ", cut[-40:]  # ends where a word ends
    assert len(one_line(text, 500)) <= 500
    assert one_line("x" * 1000, 100) == "x" * 98 + " …"
    assert one_line("a  short\nmessage", 100) == "a short message"


def test_the_data_package_exports_what_it_lists():
    """``__all__`` listed ``prepare`` and ``download`` as lazily exported functions, but the submodules of the
    same names won: ``from neurodyn.data import prepare`` gave the module once it was imported, the function
    before (helper-50). Every listed name is now what it says, however the package was imported."""
    import importlib
    import inspect

    import neurodyn.data as data
    import neurodyn.data.download  # noqa: F401 - the submodules imported first: the case that broke
    import neurodyn.data.prepare  # noqa: F401

    # what download / download_dandiset raise and take is named by the package too (it was only in
    # neurodyn.data.dandi, a module the README never names)
    assert {"DownloadError", "DownloadFailures", "RemoteFile"} <= set(data.__all__)
    for name in data.__all__:
        value = getattr(data, name)
        assert not inspect.ismodule(value), name
        assert value is getattr(importlib.import_module(data._EXPORTS[name]), name)


def test_file_digest_reads_a_file_once_until_it_changes(tmp_path, monkeypatch):
    import hashlib
    import os

    import neurodyn.io.digest as digest

    path = tmp_path / "data.h5"
    path.write_bytes(b"a" * 3000)
    opened = []
    real_open = open
    monkeypatch.setattr(digest, "open", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k), raising=False)
    first = digest.file_digest(path)
    assert first == {"size": 3000, "sha256": hashlib.sha256(b"a" * 3000).hexdigest()}
    # just written (its mtime / ctime within _RACY_S of now): not remembered, a same-tick rewrite could hide
    assert digest.file_digest(path) == first and len(opened) == 2
    monkeypatch.setattr(digest, "_RACY_S", -1.0)  # as if written long ago
    digest.file_digest(path)
    assert digest.file_digest(str(path)) == first and len(opened) == 3  # the same file, unchanged: not read again
    stat = path.stat()
    path.write_bytes(b"b" * 3000)  # the same size, in place (same inode); its mtime set a second later, as the
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # clock would after a later edit
    assert digest.file_digest(path)["sha256"] == hashlib.sha256(b"b" * 3000).hexdigest() and len(opened) == 4


# ------------------------------------------------------------------------------ no room: disk full, ulimit -f
@pytest.mark.parametrize("code, words", [(28, "disk full while writing"), (27, "file too large while writing")])
def test_output_file_without_room_is_one_line_and_keeps_the_old_output(tmp_path, code, words):
    """ENOSPC / EDQUOT and EFBIG (past ``ulimit -f``; was a traceback, h5py's ended in a segmentation fault) in
    the block: one InputError naming the file, the earlier output kept, no temporary file."""
    from neurodyn.io import output_file

    out = tmp_path / "out.h5"
    out.write_bytes(b"earlier")
    with pytest.raises(InputError, match=words) as raised:
        with output_file(out, overwrite=True) as tmp:
            tmp.write_bytes(b"half")
            raise OSError(code, "no room")
    assert raised.value.path == str(out) and raised.value.field == "--out"
    assert out.read_bytes() == b"earlier" and sorted(p.name for p in tmp_path.iterdir()) == ["out.h5"]


def test_check_disk_refuses_an_output_beyond_the_file_size_limit(tmp_path, monkeypatch):
    import neurodyn.io.output as output

    monkeypatch.setattr(output, "file_size_limit", lambda: 50_000)
    output.check_disk(tmp_path / "o.h5", 40_000)
    with pytest.raises(InputError, match="file too large: the output needs about 60.0 kB, the file-size limit"):
        output.check_disk(tmp_path / "o.h5", 60_000)


def test_a_file_size_limit_is_one_line_up_front(tmp_path):
    """Under ``ulimit -f 50`` ``simulate lorenz --overwrite`` died in h5py (exit 139, the old file gone with the
    temporary one half-written): refused up front now, the old file kept."""
    import os
    import resource
    import subprocess
    import sys

    (tmp_path / "o.h5").write_bytes(b"earlier")

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (50 * 1024, resource.RLIM_INFINITY))

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("NEURODYN_DEBUG", None)
    proc = subprocess.run([sys.executable, "-m", "neurodyn.cli", "simulate", "lorenz", "--no-progress", "--out",
                           "o.h5", "--overwrite"], cwd=tmp_path, env=env, preexec_fn=limit, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.splitlines() == [proc.stderr.strip()] and "o.h5: --out: file too large" in proc.stderr
    assert (tmp_path / "o.h5").read_bytes() == b"earlier" and sorted(p.name for p in tmp_path.iterdir()) == ["o.h5"]
