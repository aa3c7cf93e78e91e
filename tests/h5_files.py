"""Small helpers shared by tests that write HDF5 files by hand and read a command's one-line error."""

from __future__ import annotations

import h5py


def write_h5(path, tree, **attrs):
    """Write ``tree`` (key -> array) and root ``attrs`` to ``path``; returns ``path``."""
    with h5py.File(path, "w") as f:
        for key, value in tree.items():
            f[key] = value
        f.attrs.update(attrs)
    return path


def one_error(capsys) -> str:
    """The one line a command printed on stderr (fails unless it is exactly one)."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]
