"""``--overwrite`` and the file it replaces: a write-protected output (``chmod 444``) is refused, one line naming the
file and the option, exit code 2, before any work and with nothing written; a writable one is replaced keeping its
permission bits.

The protection is read from the file's mode bits, so these tests mean the same as root (CI), whose access(2) says
yes to every file.
"""

from __future__ import annotations

import os
import stat

import pytest

from neurodyn.cli import main
from neurodyn.errors import InputError
from neurodyn.io import output_file

LORENZ = ["simulate", "lorenz", "--no-progress", "--n-conditions", "2", "--trials-per-condition", "2",
          "--n-neurons", "4", "--n-samples", "100"]


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mode", [0o444, 0o400, 0o555], ids=oct)
def test_overwrite_refuses_a_write_protected_output(tmp_path, mode):
    """Renaming the new file onto the old one needs only a writable folder: the protected file was replaced."""
    out = tmp_path / "out.h5"
    out.write_bytes(b"the user's data")
    out.chmod(mode)
    with pytest.raises(InputError) as err:
        with output_file(out, overwrite=True) as tmp:
            raise AssertionError(f"the block ran: {tmp}")
    assert str(err.value) == (f"{out}: --out: is write-protected (mode {mode:04o}); --overwrite does not replace a "
                              "protected file: make it writable (chmod u+w) or choose another output path")
    assert out.read_bytes() == b"the user's data" and _mode(out) == mode
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5"]


def test_overwrite_refuses_a_file_this_user_may_not_write(tmp_path, monkeypatch):
    """Another user's file (mode 0644) in a folder this user may write: the rename replaced it. access(2) is
    asked as well as the mode bits, as ``rm`` does before "remove write-protected regular file?"; injected,
    since root may write every file."""
    out = tmp_path / "theirs.h5"
    out.write_bytes(b"a colleague's data")
    out.chmod(0o644)
    real_access = os.access

    def access(path, mode, *args, **kwargs):  # what access(2) answers another user for a 0644 file
        if os.fspath(path) == str(out) and mode & os.W_OK:
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)
    with pytest.raises(InputError) as err:
        with output_file(out, overwrite=True):
            raise AssertionError("the block ran")
    assert str(err.value) == (f"{out}: --out: is write-protected (mode 0644, not writable by this user); "
                              "--overwrite does not replace a protected file: choose another output path")
    assert out.read_bytes() == b"a colleague's data"


def test_overwrite_names_the_callers_option(tmp_path):
    """A public Python function names its own argument, as the other output-policy messages do."""
    from neurodyn.errors import named

    out = tmp_path / "fig.png"
    out.write_bytes(b"x")
    out.chmod(0o444)
    with pytest.raises(InputError, match=r"fig.png: out: is write-protected \(mode 0444\); overwrite=True does not"):
        with output_file(out, overwrite=True, field="out", overwrite_name=named("overwrite=True", "--overwrite")):
            raise AssertionError("the block ran")


def test_a_file_protected_while_the_command_worked_is_not_replaced(tmp_path):
    """Checked again before the rename: ``chmod a-w`` during a long run still protects the file."""
    out = tmp_path / "out.h5"
    out.write_bytes(b"old")
    with pytest.raises(InputError, match="is write-protected"):
        with output_file(out, overwrite=True) as tmp:
            tmp.write_bytes(b"new")
            out.chmod(0o444)
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5"]


def test_simulate_refuses_a_write_protected_out_before_it_simulates(tmp_path, monkeypatch, capsys):
    import neurodyn.data.synthetic.lorenz as lorenz

    out = tmp_path / "sim.h5"
    out.write_bytes(b"the user's data")
    out.chmod(0o444)

    def not_reached(*args, **kwargs):
        raise AssertionError("simulated before refusing")

    monkeypatch.setattr(lorenz, "simulate_lorenz", not_reached)
    assert main([*LORENZ, "--out", str(out), "--overwrite"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"neurodyn simulate: error: {out}: --out: is write-protected (mode 0444); --overwrite does not "
                   "replace a protected file: make it writable (chmod u+w) or choose another output path")
    assert out.read_bytes() == b"the user's data" and _mode(out) == 0o444
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sim.h5"]


@pytest.mark.parametrize("mode", [0o640, 0o664, 0o600], ids=oct)
def test_overwrite_keeps_the_replaced_files_permission_bits(tmp_path, mode):
    """The new file got the default mode (0666 less the umask): a file shared with the group, or kept private,
    changed its permissions on every rerun. Editors keep them; so does --overwrite now."""
    out = tmp_path / "out.h5"
    out.write_bytes(b"old")
    out.chmod(mode)
    old = os.umask(0o022)
    try:
        with output_file(out, overwrite=True) as tmp:
            tmp.write_bytes(b"new")
    finally:
        os.umask(old)
    assert out.read_bytes() == b"new" and _mode(out) == mode


def test_a_new_output_still_gets_the_mode_of_an_ordinary_new_file(tmp_path):
    out = tmp_path / "out.h5"
    old = os.umask(0o027)
    try:
        with output_file(out) as tmp:
            tmp.write_bytes(b"new")
    finally:
        os.umask(old)
    assert _mode(out) == 0o640


def test_a_link_to_a_read_only_object_is_replaced_and_the_object_kept(tmp_path):
    """A git-annex / DataLad or DVC output is a link to a read-only object. The finished file replaces the link and
    never touches the object, so the link is no protected file (the check followed it and refused, advising a
    chmod of the annex object); the new file has an ordinary new file's mode, not the object's 0444."""
    store = tmp_path / "annex"
    store.mkdir()
    obj = store / "object"
    obj.write_bytes(b"annexed")
    obj.chmod(0o444)
    out = tmp_path / "out.h5"
    out.symlink_to(obj)
    with output_file(out, overwrite=True) as tmp:
        tmp.write_bytes(b"new")
    assert not out.is_symlink() and out.read_bytes() == b"new"
    assert obj.read_bytes() == b"annexed" and _mode(obj) == 0o444
    umask = os.umask(0)
    os.umask(umask)
    assert _mode(out) == 0o666 & ~umask


def test_another_users_read_only_file_gets_no_chmod_advice(tmp_path, monkeypatch):
    """A colleague's 0444 file: "make it writable (chmod u+w)" is advice this user cannot follow (the owner's bit
    is theirs); the refusal says whose it is instead. The owner and this process's user are injected (os.lstat
    of the file as another uid, a non-root euid), since a test cannot give a file away without root. Root, who
    may chmod any file, gets the advice."""
    out = tmp_path / "theirs.h5"
    out.write_bytes(b"a colleague's data")
    out.chmod(0o444)
    real_lstat, real_geteuid = os.lstat, os.geteuid
    other = real_geteuid() + 1000

    class Theirs:
        def __init__(self, st):
            self._st = st

        def __getattr__(self, name):
            return other if name == "st_uid" else getattr(self._st, name)

    monkeypatch.setattr(os, "lstat", lambda p, *a, **k: Theirs(real_lstat(p, *a, **k)) if os.fspath(p) == str(out)
                        else real_lstat(p, *a, **k))
    monkeypatch.setattr(os, "geteuid", lambda: other - 1)  # not root, not the owner
    with pytest.raises(InputError) as err:
        with output_file(out, overwrite=True):
            raise AssertionError("the block ran")
    assert str(err.value) == (f"{out}: --out: is write-protected (mode 0444, another user's, write-protected by its "
                              "owner); --overwrite does not replace a protected file: choose another output path")
    assert out.read_bytes() == b"a colleague's data"


def test_the_demo_names_no_overwrite_the_user_never_gave(tmp_path):
    """The demo rewrites its own cache of another seed without --overwrite; a read-only one was refused with
    "--overwrite does not replace a protected file", naming an option the user had not given."""
    from neurodyn import demo

    cache = tmp_path / demo.DEMO_CACHE
    small = {**demo.DEMO_SIMULATION, "n_conditions": 2, "trials_per_condition": 2}
    demo.write_demo_cache(tmp_path, seed=1, simulation=small)
    cache.chmod(0o444)
    with pytest.raises(InputError) as err:
        demo.check_demo_cache(tmp_path, seed=2, simulation=small)
    assert str(err.value) == (f"{cache}: --out: is write-protected (mode 0444); rewriting the demo's cache of another "
                              "seed or simulation does not replace a protected file: make it writable (chmod u+w) "
                              "or choose another output path")
    # a file the demo did not write, given with --overwrite: the user's option is the one named
    user = tmp_path / "user"
    user.mkdir()
    (user / demo.DEMO_CACHE).write_bytes(b"")
    assert demo.cache_replacer(user / demo.DEMO_CACHE) == "--overwrite"
    assert demo.cache_replacer(cache) == demo.REWRITE_CACHE
