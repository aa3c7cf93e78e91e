"""Nested-dict HDF5 I/O and the guarded HDF5 reader every input goes through (:func:`read_h5`: missing,
truncated, damaged or oversized files become one :class:`~neurodyn.errors.InputError` line).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from neurodyn.errors import one_line
from neurodyn.io.output import human_size, may_access


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




def is_nwb(handle) -> bool:
    """Whether an open h5py file is an NWB file (pynwb's root attributes ``nwb_version`` /
    ``neurodata_type``, or an ``acquisition`` group); one rule for ``info`` and the readers that refuse one."""
    kind = handle.attrs.get("neurodata_type")
    kind = kind.decode() if isinstance(kind, bytes) else kind
    return "nwb_version" in handle.attrs or kind == "NWBFile" or "acquisition" in handle


def root_attrs(path: str | os.PathLike) -> dict | None:
    """The root attributes of an HDF5 file as plain Python values (bytes decoded, numpy scalars unwrapped);
    None when the file cannot be read as HDF5. For small marker files (caches), not for inputs: those go
    through :func:`read_h5`."""
    import h5py

    if not os.path.isfile(path):  # a FIFO would block the open until someone writes to it
        return None
    try:
        with h5py.File(path, "r") as f:
            return {k: v.decode() if isinstance(v, bytes) else v.item() if isinstance(v, np.generic) else v
                    for k, v in f.attrs.items()}
    except (OSError, ValueError):
        return None


def check_input_file(path: str | os.PathLike, what: str | None = None, field: str | None = None) -> str:
    """Raise InputError unless ``path`` is an existing regular file; returns ``path`` as str. The one check every
    reader makes before it opens an input: a folder, a missing file and a FIFO, device or socket are refused
    (opening a FIFO blocks until some other process writes to it: ``prepare`` and ``submit`` hung on one).

    >>> check_input_file("/dev/null", "prediction file")
    Traceback (most recent call last):
    neurodyn.errors.InputError: /dev/null: not a regular file (prediction file)
    """
    from neurodyn.errors import InputError

    path = os.fspath(path)
    kind = f" ({what})" if what else ""
    if os.path.isdir(path):
        raise InputError(f"is a folder, expected a file{kind}", path=path, field=field)
    if not os.path.exists(path):
        raise InputError(f"{absent_reason(path)}{kind}", path=path, field=field)
    if not os.path.isfile(path):
        raise InputError(f"not a regular file{kind}", path=path, field=field)
    if not may_access(path, os.R_OK):  # h5py's "Unable to determine if file is accessible"; torch: "not a zip"
        raise InputError(f"{denied_reason(path) or 'permission denied'}{kind}", path=path, field=field)
    return path


def absent_reason(path: str | os.PathLike, missing: str = "no such file") -> str:
    """Why ``path``, which :func:`os.path.exists` calls absent, cannot be read: ``missing``, or for a
    symbolic link that leads back to itself (or a path through such a link) ``"symbolic link loop (...)"``,
    or for a link to nothing ``"broken symbolic link (to ...)"`` (both were called "no such file" while
    ``ls`` lists the name).

    >>> import os, tempfile
    >>> loop = os.path.join(tempfile.mkdtemp(), "loop.h5"); os.symlink("loop.h5", loop)
    >>> absent_reason(loop)
    'symbolic link loop (the link leads back to itself)'
    """
    import errno

    try:
        os.stat(path)
    except OSError as err:
        if err.errno == errno.ELOOP:
            return "symbolic link loop (the link leads back to itself)"
        if err.errno in (errno.EACCES, errno.EPERM):  # os.path.exists is False behind a folder one may not enter
            return denied_reason(path) or "permission denied"
    if os.path.islink(path):
        return f"broken symbolic link (to {os.readlink(path)}, which does not exist)"
    return missing


def denied_reason(path: str | os.PathLike, listing: bool = True) -> str | None:
    """Why this user may not read ``path``, or None when nothing forbids it (or it is absent): a folder on the
    way that may not be entered (no execute permission: ``os.stat`` fails with EACCES, which Python 3.11's
    ``Path.is_file`` / ``is_dir`` raise as a traceback and :func:`os.path.exists` reports as absent), a folder
    that may not be listed, a file without read permission. Each reader asked before and met the error later:
    a traceback, or a wrong reason ("no such file", "folder holds no .nwb files", "not a torch.save archive").
    Root passes every check (:func:`~neurodyn.io.output.may_access` asks the kernel as this process's effective
    user, the one its opens are checked for). ``listing=False``:
    a folder the caller only enters, opening the files in it by name (a run folder shared as ``chmod 711``), is
    refused only where it may not be entered.

    >>> denied_reason("/") is None
    True
    """
    import errno

    try:
        st = os.stat(path)
    except OSError as err:
        if err.errno not in (errno.EACCES, errno.EPERM):
            return None
        # the outermost folder that may not be entered: on the path as given (the user's spelling), else on the
        # path its symbolic links lead to (a link into a closed folder named the link's own, open folder)
        folder = None
        for spelt in (os.path.abspath(path), os.path.realpath(path)):
            parent = Path(spelt).parent
            folder = next((above for above in reversed([parent, *parent.parents]) if not may_access(above, os.X_OK)),
                          None)
            if folder is not None:
                break
        folder = folder or Path(os.path.abspath(path)).parent
        return f"permission denied (folder {folder} may not be entered: no execute permission)"
    import stat

    if stat.S_ISDIR(st.st_mode):
        if not listing:
            if not may_access(path, os.X_OK):
                return "permission denied (this folder may not be entered: no execute permission)"
        elif not may_access(path, os.R_OK | os.X_OK):
            return "permission denied (this folder may not be listed or entered: no read or execute permission)"
    elif not may_access(path, os.R_OK):
        return "permission denied (no read permission)"
    return None


def refuse_denied(path: str | os.PathLike, field: str | None = None, listing: bool = True) -> None:
    """Raise InputError naming ``path`` and ``field`` when :func:`denied_reason` finds one."""
    reason = denied_reason(path, listing)
    if reason is not None:
        from neurodyn.errors import InputError

        raise InputError(reason, path=path, field=field)


def _check_h5(path: str | os.PathLike, what: str | None):
    """Raise InputError unless ``path`` is a regular file with the HDF5 signature; returns ``path`` as str."""
    import h5py

    from neurodyn.errors import InputError

    path = check_input_file(path, what)
    kind = f" ({what})" if what else ""
    try:
        is_h5 = h5py.is_hdf5(path)
    except OSError as err:  # e.g. no read permission
        raise InputError(f"cannot read file ({one_line(err, 200)})", path=path) from None
    if not is_h5:
        raise InputError(f"not an HDF5 file{kind}{checkpoint_note(path)}", path=path)
    return path


def checkpoint_note(path: str) -> str:
    """``": a checkpoint of neurodyn fit (...)"`` for a torch.save zip archive that is not HDF5, else ``""``: a
    checkpoint given where an HDF5 file belongs (``plot last.ckpt``, ``evaluate --target last.ckpt``) was only
    'not an HDF5 file'."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            torch_saved = any(name.endswith("/data.pkl") for name in archive.namelist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return ""
    return (": a checkpoint (torch.save archive), which neurodyn predict / validate take as --ckpt_path"
            if torch_saved else "")


#: a dataset may claim at most this many times its file's size (gzip of neural data stays far below) ...
MAX_EXPANSION = 1000
#: ... or this many bytes, whichever is larger
MIN_READ_LIMIT = 256 * 2**20


def read_limit(path: str | os.PathLike) -> int:
    """The most bytes one dataset of ``path`` may claim before :func:`read_h5` calls the file damaged.

    Relative to the file's size only: a valid file may hold datasets larger than the memory that
    a reader never loads whole (raw ephys in an NWB file); reading too much is a MemoryError, which
    :func:`read_h5` reports as one line.
    """
    return int(max(MIN_READ_LIMIT, MAX_EXPANSION * os.path.getsize(path)))


def _check_datasets(handle, path: str) -> None:
    """Open every object header and check each dataset's claimed size against :func:`read_limit`.

    A damaged header (a flipped bit in a dimension) can claim terabytes: reading it would exhaust
    the memory instead of failing. h5py reports damaged headers as RuntimeError / KeyError /
    ValueError / TypeError besides OSError; all of them mean a damaged file here, where no other code runs.
    """
    import h5py

    from neurodyn.errors import InputError

    limit = read_limit(path)

    def check(what, name, shape, dtype):
        nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize if shape else dtype.itemsize
        if nbytes > limit:
            raise InputError(f"{what} claims shape {shape} of {dtype} ({human_size(nbytes)}), implausible for a "
                             f"file of {human_size(os.path.getsize(path))}: damaged file?", path=path, field=name)

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            check("dataset", name, obj.shape, obj.dtype)
        for key in obj.attrs:
            attr = obj.attrs.get_id(key)
            check("attribute", f"{name}.{key}" if name else key, attr.shape, attr.dtype)

    try:
        visit("", handle)
        handle.visititems(visit)
    except (RuntimeError, KeyError, ValueError, TypeError) as err:
        raise InputError(f"truncated or damaged HDF5 file ({one_line(err, 200)})", path=path) from None


_GCOL = b"GCOL\x01\x00\x00\x00"  # signature, version 1, three reserved bytes of a global heap collection
_heaps_checked: dict[tuple, str | None] = {}


def _global_heap_damage(path: str) -> str | None:
    """Walk every global heap collection of ``path`` as libhdf5 does; describe the first damage, or None.

    Variable-length strings (NWB's text, the prepared file's names) live in global heap collections.
    libhdf5 2.0 walks a collection's objects by their sizes, and a damaged size can make it loop
    forever (a size of 0 never advances) inside C code, where Ctrl-C and SIGTERM do not reach.
    Each collection must be tiled exactly by its objects (16-byte header + data padded to 8 bytes;
    the free-space object, index 0, counts its header in its size). Files whose superblock does not
    use 8-byte lengths are not checked. The result is cached per file and version: path, device, inode, size,
    modification and status-change times (a same-size copy that kept the modification time, ``cp -p``, changes the
    status-change time; a file renamed over it, the inode).
    """
    import mmap
    import struct

    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    if key in _heaps_checked:
        return _heaps_checked[key]
    found = None
    with open(path, "rb") as handle:
        if stat.st_size < 64:
            return None
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            base = data.find(b"\x89HDF\r\n\x1a\n")
            version = data[base + 8] if base >= 0 else None
            lengths = {0: 14, 1: 14, 2: 10, 3: 10}.get(version)
            if lengths is None or data[base + lengths] != 8:
                return None  # an unusual layout: leave it to libhdf5
            pos = data.find(_GCOL)
            while pos >= 0 and found is None:
                size = struct.unpack_from("<Q", data, pos + 8)[0]
                end = pos + size
                if size < 16 or end > len(data):
                    found = f"global heap at byte {pos} claims {size} bytes"
                    break
                p = pos + 16
                while p < end:
                    if p + 16 > end:
                        break  # a remainder too small for a header is free space
                    index, _, _, osize = struct.unpack_from("<HHIQ", data, p)
                    need = osize if index == 0 else 16 + (osize + 7) // 8 * 8
                    if need <= 0 or p + need > end:
                        found = f"global heap at byte {pos}: object {index} of {osize} bytes does not fit"
                        break
                    p += need
                pos = data.find(_GCOL, pos + 16)
    _heaps_checked[key] = found
    return found


def _raised_in_h5py(err: BaseException) -> bool:
    """True when the innermost frame of ``err`` is h5py's code: h5py failing on the file's bytes.

    A KeyError for a name that does not exist is the caller's (an unchecked key), not damage.
    """
    tb = err.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    if "h5py" not in Path(tb.tb_frame.f_code.co_filename).parts:
        return False
    return not (isinstance(err, KeyError) and "doesn't exist" in str(err))


@contextlib.contextmanager
def read_h5(path: str | os.PathLike, what: str | None = None) -> Iterator:
    """Open an HDF5 file read-only for a ``with`` block; every way it can be unreadable is a one-line InputError.

    A folder, a missing path or a file without the HDF5 signature fails before opening; an ``OSError``
    while opening or reading inside the block (h5py's error for a truncated or damaged file) becomes
    "truncated or damaged HDF5 file (<reason>)". ``what`` names the expected kind of file in the
    message, e.g. ``"prepared NLB file"``. Only read inside the block: any ``OSError`` there is
    reported as damage to ``path``. InputErrors raised in the block pass through unchanged. Before the
    block runs, every object header is opened and no dataset may claim more than :func:`read_limit`
    bytes (a damaged header must not exhaust the memory); a ``MemoryError`` in the block is an
    InputError too, and so is any other exception raised inside h5py itself (its RuntimeError,
    ValueError... for damaged attributes and headers); exceptions of the caller's code propagate.

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

    path = _check_h5(path, what)
    _refuse_heap_damage(path)
    with _damage_is_input_error(path), h5py.File(path, "r") as handle:
        _check_datasets(handle, path)
        yield handle


@contextlib.contextmanager
def checked_h5(handle, path: str | os.PathLike) -> Iterator:
    """:func:`read_h5`'s checks and messages for ``handle``, the file ``path`` opened read-only by the caller.

    For a reader that opens a file leniently and learns from it that it must read it as :func:`read_h5`
    would (:func:`neurodyn.metrics.resample.read_window_starts`: a prepared file is checked, any other file
    read as it is), without opening it again. That the path is an HDF5 file is known (it is open); the global
    heaps and the dataset sizes are checked before the block runs, and the block's exceptions become
    InputErrors as in :func:`read_h5`. The caller closes ``handle``.
    """
    path = os.fspath(path)
    _refuse_heap_damage(path)
    with _damage_is_input_error(path):
        _check_datasets(handle, path)
        yield handle


def _refuse_heap_damage(path: str) -> None:
    """An InputError when :func:`_global_heap_damage` finds damage in ``path``."""
    from neurodyn.errors import InputError

    damage = _global_heap_damage(path)
    if damage:
        raise InputError(f"truncated or damaged HDF5 file ({damage})", path=path)


@contextlib.contextmanager
def _damage_is_input_error(path: str) -> Iterator[None]:
    """Exceptions of h5py reading ``path`` in the block as one-line InputErrors (see :func:`read_h5`)."""
    from neurodyn.errors import InputError

    try:
        yield
    except OSError as err:
        raise InputError(f"truncated or damaged HDF5 file ({one_line(err, 200)})", path=path) from None
    except MemoryError:
        raise InputError("not enough memory to read it", path=path) from None
    except (RuntimeError, KeyError, ValueError, TypeError, SystemError) as err:
        if not _raised_in_h5py(err):
            raise  # the reader's own bug: keep the traceback
        raise InputError(f"truncated or damaged HDF5 file ({one_line(err, 200)})", path=path) from None
