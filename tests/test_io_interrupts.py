"""Ctrl-C / SIGTERM landing in the few instructions between creating a file and guarding it: the output
policy still leaves nothing behind (lock file, temporary file, created folder) and never removes another
writer's lock."""

from __future__ import annotations

import fcntl
import tempfile

import pytest

from neurodyn import io


def _listing(folder):
    return sorted(p.name for p in folder.rglob("*"))


def test_interrupt_between_lock_open_and_flock(tmp_path, monkeypatch):
    real_flock = fcntl.flock
    calls = {"n": 0}

    def flock(fd, op):
        calls["n"] += 1
        if calls["n"] == 1:  # the first flock: the lock file exists, the guard is not set up yet
            real_flock(fd, op)
            raise KeyboardInterrupt
        return real_flock(fd, op)

    monkeypatch.setattr(fcntl, "flock", flock)
    with pytest.raises(KeyboardInterrupt), io.output_file(tmp_path / "sub" / "out.h5"):
        pass
    assert _listing(tmp_path) == []


def _open_then_interrupt(monkeypatch):
    """os.open that creates the lock file and is then interrupted, its descriptor lost: what SIGTERM (turned
    into Interrupted by the output policy) does when it lands as os.open returns, before the result is stored
    -- the moment a watcher first sees the file (seen once in a loaded CI run of test_sigterm_leaves_nothing)."""
    import os
    import signal

    real_open = os.open

    def open_then_interrupt(path, flags, *args, **kwargs):
        fd = real_open(path, flags, *args, **kwargs)
        if str(path).endswith(".lock") and flags & os.O_CREAT:
            raise io.Interrupted(signal.SIGTERM)
        return fd

    monkeypatch.setattr(os, "open", open_then_interrupt)


def test_interrupt_the_moment_the_lock_file_appears(tmp_path, monkeypatch):
    _open_then_interrupt(monkeypatch)
    with pytest.raises(KeyboardInterrupt), io.output_file(tmp_path / "sub" / "out.h5"):
        pass
    assert _listing(tmp_path) == []


def test_interrupt_as_the_lock_opens_keeps_another_writers_lock(tmp_path, monkeypatch):
    import os

    lock = tmp_path / ".out.h5.lock"
    other = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)  # another writer holds the lock
    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        _open_then_interrupt(monkeypatch)
        with pytest.raises(KeyboardInterrupt), io.output_file(tmp_path / "out.h5"):
            pass
        assert _listing(tmp_path) == [".out.h5.lock"]
    finally:
        os.close(other)


def test_interrupt_right_after_the_temporary_file_is_made(tmp_path, monkeypatch):
    real_mkstemp = tempfile.mkstemp

    def mkstemp(*args, **kwargs):
        real_mkstemp(*args, **kwargs)  # the file exists, its name never reaches the caller
        raise KeyboardInterrupt

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    with pytest.raises(KeyboardInterrupt), io.output_file(tmp_path / "sub" / "out.h5"):
        pass
    assert _listing(tmp_path) == []


def test_atomic_path_interrupt_as_the_temporary_file_is_closed(tmp_path, monkeypatch):
    """atomic_path alone (the checkpoint index, the metrics file): a Ctrl-C between mkstemp and the guard
    left ``.index.json.X.part`` behind."""
    import os

    real_close = os.close
    armed = {"on": True}

    def close(fd):
        real_close(fd)
        if armed.pop("on", False):
            raise KeyboardInterrupt

    monkeypatch.setattr(os, "close", close)
    with pytest.raises(KeyboardInterrupt), io.atomic_path(tmp_path / "index.json") as tmp:
        tmp.write_text("never")
    assert _listing(tmp_path) == []


def test_another_writers_lock_is_never_removed(tmp_path):
    out = tmp_path / "out.h5"
    lock = tmp_path / ".out.h5.lock"
    with open(lock, "w") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        from neurodyn.errors import InputError

        with pytest.raises(InputError, match="another process"), io.output_file(out):
            pass
        assert lock.exists()


class _Swallowed:
    """An object whose finaliser runs a signal handler: the exception it raises is swallowed by Python
    ("Exception ignored in ...") -- what happens when SIGINT / SIGTERM lands inside a weakref callback or a
    ``__del__`` of h5py during the final write."""


def _swallowed_signal(signum):
    import signal
    import weakref

    def callback(_ref):
        handler = signal.getsignal(signum)
        assert callable(handler), handler
        handler(signum, None)  # raises inside the callback: Python ignores it

    obj = _Swallowed()
    ref = weakref.ref(obj, callback)
    del obj
    return ref


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_signal_swallowed_inside_the_block_still_fails_it(signame, tmp_path, capsys):
    import signal

    signum = getattr(signal, signame)
    with pytest.raises(KeyboardInterrupt) as caught, io.output_file(tmp_path / "sub" / "out.h5") as tmp:
        tmp.write_text("complete-looking output")
        _swallowed_signal(signum)
    assert getattr(caught.value, "signum", None) == signum
    assert _listing(tmp_path) == []
    assert "Exception ignored" not in capsys.readouterr().err


def test_nested_temporary_file_is_removed(tmp_path):
    """A library writer using atomic_path on the temporary path makes ``..out.h5.X.part.Y.part``: an
    interrupt while it exists leaves nothing."""
    with pytest.raises(KeyboardInterrupt), io.output_file(tmp_path / "out.h5") as tmp:
        import tempfile as _tempfile

        _tempfile.mkstemp(prefix=f".{tmp.name}.", suffix=".part", dir=tmp.parent)  # name lost, as on a signal
        raise KeyboardInterrupt
    assert _listing(tmp_path) == []


def test_cli_simulate_signal_swallowed_in_the_write(tmp_path, monkeypatch, capsys):
    """``simulate`` with SIGINT landing in h5py's weakref callbacks during the final write: exit 130, one line,
    no output, no temporary file."""
    import signal

    import neurodyn.data.lfads as lfads
    from neurodyn.cli import main

    real = lfads.write_lfads_h5

    def write(path, sim, *args, **kwargs):
        out = real(path, sim, *args, **kwargs)
        _swallowed_signal(signal.SIGINT)
        return out

    monkeypatch.setattr(lfads, "write_lfads_h5", write)
    monkeypatch.chdir(tmp_path)
    rc = main(["simulate", "lorenz", "--no-progress", "--n-conditions", "2", "--trials-per-condition", "2",
               "--n-samples", "100", "--out", "sub/out.h5"])
    err = capsys.readouterr().err
    assert rc == 130, err
    assert err.splitlines() == ["neurodyn simulate: interrupted (SIGINT); nothing partial was kept"]
    assert _listing(tmp_path) == []


def test_a_swallowed_ctrl_c_fails_the_block_after_an_earlier_interrupted_one(tmp_path):
    """The record of received signals outlives a block: a later block must still count a plain Ctrl-C that
    Python swallowed (here raised in a weakref callback), even when the last recorded signal was SIGINT too."""
    import signal
    import weakref

    with pytest.raises(KeyboardInterrupt), io.output_file(tmp_path / "first.h5") as tmp:
        tmp.write_text("x")
        _swallowed_signal(signal.SIGINT)

    def plain_ctrl_c(_ref):
        raise KeyboardInterrupt  # Python's own SIGINT behaviour, not neurodyn's handler

    with pytest.raises(KeyboardInterrupt), io.output_file(tmp_path / "second.h5") as tmp:
        tmp.write_text("complete-looking output")
        obj = _Swallowed()
        ref = weakref.ref(obj, plain_ctrl_c)  # noqa: F841
        del obj
    assert _listing(tmp_path) == []


def test_the_unraisable_hook_is_only_swapped_in_the_main_thread(tmp_path):
    import sys
    import threading

    seen = []

    def write():
        with io.output_file(tmp_path / "t.h5") as tmp:
            seen.append(sys.unraisablehook)
            tmp.write_text("x")

    before = sys.unraisablehook
    worker = threading.Thread(target=write)
    worker.start()
    worker.join()
    assert seen == [before] and sys.unraisablehook is before


def test_deferred_signals_are_handed_over_or_dropped_and_an_ignored_one_stays_ignored():
    """``signals_deferred(replay=False)`` (tune's ray.init and cleanup) hands the held signals to the caller instead
    of raising them again; a signal the user's shell ignores (``SIG_IGN``, a background job) is not taken over by
    the block, and its handler is the same object afterwards."""
    import os
    import signal

    from neurodyn.io.output import signals_deferred

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with signals_deferred(replay=False) as received:
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
        signal.getsignal(signal.SIGINT)  # the handlers run between bytecodes
    assert received == [signal.SIGINT, signal.SIGTERM]
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        with signals_deferred() as received:
            os.kill(os.getpid(), signal.SIGTERM)
            signal.getsignal(signal.SIGTERM)
        assert received == []
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, before[1])


def test_deferred_signals_leave_the_handler_a_context_left_inside_them_restored():
    """``simulate nlb`` defers signals across the renames of its two output files: the block starts while the
    files' raising handlers are installed and ends after the files have restored Python's defaults. The block
    must not then put back the raising handler it found, which outlived the command (an in-process caller's
    next Ctrl-C was recorded as one of neurodyn's interrupts; the next test on the worker inherited it)."""
    import contextlib
    import signal

    from neurodyn.io.output import _interrupt_on_sigint, signals_deferred, terminate_as_interrupt

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with contextlib.ExitStack() as outer:
        with contextlib.ExitStack() as inner:
            inner.enter_context(terminate_as_interrupt())
            inner.enter_context(_interrupt_on_sigint())
            outer.enter_context(signals_deferred())
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
