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


def _reason(err: BaseException, limit: int = 200) -> str:
    """An exception's message on one line, cut to ``limit`` characters (h5py messages span lines)."""
    return " ".join(str(err).split())[:limit]


def _check_h5(path: str | os.PathLike, what: str | None):
    """Raise InputError unless ``path`` is a regular file with the HDF5 signature; returns ``path`` as str."""
    import h5py

    from neurodyn.errors import InputError

    path = os.fspath(path)
    kind = f" ({what})" if what else ""
    if os.path.isdir(path):
        raise InputError(f"is a folder, expected a file{kind}", path=path)
    if not os.path.exists(path):
        raise InputError(f"no such file{kind}", path=path)
    if not os.path.isfile(path):
        raise InputError(f"not a regular file{kind}", path=path)
    try:
        is_h5 = h5py.is_hdf5(path)
    except OSError as err:  # e.g. no read permission
        raise InputError(f"cannot read file ({_reason(err)})", path=path) from None
    if not is_h5:
        raise InputError(f"not an HDF5 file{kind}", path=path)
    return path


@contextlib.contextmanager
def read_h5(path: str | os.PathLike, what: str | None = None) -> Iterator:
    """Open an HDF5 file read-only for a ``with`` block; every way it can be unreadable is a one-line InputError.

    A folder, a missing path or a file without the HDF5 signature fails before opening; an ``OSError``
    while opening or reading inside the block (h5py's error for a truncated or damaged file) becomes
    "truncated or damaged HDF5 file (<reason>)". ``what`` names the expected kind of file in the
    message, e.g. ``"prepared NLB file"``. Only read inside the block: any ``OSError`` there is
    reported as damage to ``path``. InputErrors raised in the block pass through unchanged.

    Examples
    --------
    >>> import tempfile, pathlib, h5py
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.h5"
    >>> with h5py.File(p, "w") as f:
    ...     f["a"] = [1, 2]
    >>> with read_h5(p) as f:
    ...     f["a"][()].tolist()
    [1, 2]
    >>> with read_h5(p.with_name("absent.h5"), "prediction file"):  # doctest: +ELLIPSIS
    ...     pass
    Traceback (most recent call last):
    neurodyn.errors.InputError: .../absent.h5: no such file (prediction file)
    """
    import h5py

    from neurodyn.errors import InputError

    path = _check_h5(path, what)
    try:
        with h5py.File(path, "r") as handle:
            yield handle
    except OSError as err:
        raise InputError(f"truncated or damaged HDF5 file ({_reason(err)})", path=path) from None
