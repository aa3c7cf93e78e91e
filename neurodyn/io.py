"""Small I/O helpers shared by every writer: atomic output files and nested-dict HDF5 I/O."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    A failure (exception, Ctrl-C) removes the temporary file, so a half-written output never exists
    under its final name.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "x.txt") as tmp:
    ...     _ = tmp.write_text("hi")
    >>> (d / "x.txt").read_text()
    'hi'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.exists():
            # mkstemp creates 0600 files; give the result the permissions of an ordinary new file.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_h5_dict(group, data: Mapping, compression: str | None = None) -> None:
    """Write a nested mapping into an open ``h5py`` group (dicts become subgroups).

    Lists of 1-D arrays (ragged, e.g. nlb_tools' ``*_cond_idx``) are stored as variable-length
    datasets; ``None`` values are skipped.
    """
    import h5py

    for key, value in data.items():
        if value is None:
            continue
        if isinstance(value, Mapping):
            write_h5_dict(group.require_group(key), value, compression)
        elif isinstance(value, (list, tuple)) and value and all(np.ndim(v) == 1 for v in value):
            dtype = np.asarray(value[0]).dtype
            vlen = h5py.vlen_dtype(dtype)
            ds = group.create_dataset(key, (len(value),), dtype=vlen)
            for i, v in enumerate(value):
                ds[i] = np.asarray(v, dtype=dtype)
            ds.attrs["ragged"] = True
        else:
            arr = np.asarray(value)
            kw = {"compression": compression} if compression and arr.ndim > 0 else {}
            group.create_dataset(key, data=arr, **kw)


def read_h5_dict(group) -> dict:
    """Read an ``h5py`` group written by :func:`write_h5_dict` back into nested dicts of arrays."""
    import h5py

    out: dict = {}
    for key, item in group.items():
        if isinstance(item, h5py.Group):
            out[key] = read_h5_dict(item)
        elif item.attrs.get("ragged", False):
            out[key] = [np.asarray(v) for v in item[()]]
        else:
            out[key] = item[()]
    return out


def open_h5(path: str | os.PathLike, what: str = "HDF5 file"):
    """Open an HDF5 file read-only, turning a missing or unreadable file into a one-line InputError.

    Returns the open ``h5py.File`` (use it as a context manager). ``what`` names the expected kind of
    file in the message, e.g. ``"prepared NLB file"``.
    """
    import h5py

    from neurodyn.errors import InputError

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"no such file ({what})", path=path)
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise InputError(f"not a readable HDF5 file ({what}; {err.__class__.__name__})", path=path) from None
