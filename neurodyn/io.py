"""Small I/O helpers shared by every writer: the output policy, atomic output files and nested-dict HDF5 I/O.

The output policy
-----------------
Every command that writes a file goes through :func:`output_file` (one place, one set of rules):

* the output is written to a temporary file in the destination folder and renamed onto its final
  name only when the block succeeds; on an exception, Ctrl-C or SIGTERM the temporary file (and any
  folder the call created) is removed, so a half-written output never exists;
* an output that resolves to an input (same path, a symlink to it or a hard link: same inode) is
  refused, even with ``overwrite``;
* an existing output is refused unless ``overwrite=True`` (the commands' ``--overwrite``);
* the destination is checked up front: not a folder, its parent is (or can be created as) a
  writable folder, and the estimated size fits the free disk (:func:`check_disk`); ``simulate``
  also checks its estimated memory against the available RAM (:func:`check_memory`);
* an exclusive lock file ``.<name>.lock`` next to the output: of two processes writing the same
  path, one writes and the other is refused at once (one line, exit code 2).

Every refusal is an :class:`~neurodyn.errors.InputError` naming the file and the option (``--out``).
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np

__all__ = [
    "Interrupted",
    "atomic_path",
    "check_disk",
    "check_memory",
    "check_output",
    "output_file",
    "read_h5",
    "read_h5_dict",
    "terminate_as_interrupt",
    "write_h5_dict",
]

#: headroom kept free on the destination disk beyond the estimated output size
DISK_MARGIN_BYTES = 16 * 2**20


class Interrupted(KeyboardInterrupt):
    """Raised in the main thread by SIGTERM (see :func:`terminate_as_interrupt`); ``signum`` tells which.

    A subclass of KeyboardInterrupt, so ``finally`` blocks and context managers clean up as on
    Ctrl-C, and ``except Exception`` does not swallow it.
    """

    def __init__(self, signum: int = signal.SIGINT):
        self.signum = int(signum)
        super().__init__(f"interrupted by {signal.Signals(self.signum).name}")


def _raise_interrupted(signum, _frame):
    raise Interrupted(signum)


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Interrupted` (so cleanup code runs) instead of killing.

    Only in the main thread, and only when SIGTERM still has its default action (a handler someone
    else installed, e.g. Lightning's, is left alone). The previous handler is restored on exit.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    try:
        previous = signal.getsignal(signal.SIGTERM)
    except (ValueError, OSError):  # pragma: no cover - no signals on this platform
        yield
        return
    if previous not in (signal.SIG_DFL, None):
        yield
        return
    signal.signal(signal.SIGTERM, _raise_interrupted)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"  # pragma: no cover


def available_memory() -> int:
    """Bytes of RAM available to a new allocation (Linux ``MemAvailable``; else free physical pages)."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - unknown: do not refuse
        return 2**63


def check_memory(nbytes: float, *, field: str | None = None, what: str = "this run") -> None:
    """Refuse up front (InputError) when ``nbytes`` exceed the available memory.

    Examples
    --------
    >>> check_memory(1000)
    >>> check_memory(1e30, field="--n-conditions")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    neurodyn.errors.InputError: --n-conditions: this run needs about ... of memory, only ... available
    """
    from neurodyn.errors import InputError

    have = available_memory()
    if nbytes > 0.9 * have:
        raise InputError(f"{what} needs about {_size(nbytes)} of memory, only {_size(have)} available",
                         field=field)


def _existing_ancestor(path: Path) -> Path:
    """``path``'s nearest ancestor (or itself) that exists (not following a dangling last link)."""
    probe = path
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent
    return probe


def check_disk(path: str | os.PathLike, nbytes: float | None, *, field: str | None = "--out") -> None:
    """Refuse (InputError) when ``nbytes`` (+16 MB) do not fit the free space where ``path`` would go."""
    from neurodyn.errors import InputError

    if not nbytes:
        return
    folder = _existing_ancestor(Path(path).absolute().parent)
    try:
        usage = shutil.disk_usage(folder)
    except OSError:  # cannot tell: let the write itself fail
        return
    if usage.total == 0:  # a pseudo file system (/proc, some FUSE mounts) tells nothing
        return
    free = usage.free
    if nbytes + DISK_MARGIN_BYTES > free:
        raise InputError(f"the output needs about {_size(nbytes)}, only {_size(free)} free in {folder}",
                         path=path, field=field)


def _input_files(inputs: Iterable) -> list[Path]:
    files = []
    for item in inputs:
        if item is None:
            continue
        item = Path(item)
        files.append(item)
        if item.is_dir():
            with contextlib.suppress(OSError):
                files += [p for p in item.iterdir() if p.is_file()]
    return files


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_output(path: str | os.PathLike, *, inputs: Iterable = (), overwrite: bool = False,
                 size_bytes: float | None = None, field: str | None = "--out") -> Path:
    """The up-front half of the output policy; raises InputError, creates nothing. Returns ``Path(path)``.

    Refuses: a folder; a path whose parent is a file or cannot be created / written; an output that is
    any of ``inputs`` (files or folders, whose files count too; compared by inode, so a symlink or hard
    link to an input is caught); an existing output without ``overwrite``; an estimated
    ``size_bytes`` beyond the free disk.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> (d / "in.h5").write_bytes(b"data")
    4
    >>> check_output(d / "in.h5", inputs=[d / "in.h5"], overwrite=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    neurodyn.errors.InputError: .../in.h5: --out: is an input file; choose another output path
    """
    from neurodyn.errors import InputError

    path = Path(path)
    if os.path.isdir(path):
        raise InputError("is a folder, expected a file path", path=path, field=field)
    for source in _input_files(inputs):
        if _same_file(path, source) or (not os.path.lexists(path) and path.absolute() == source.absolute()):
            what = "is an input file" if source.is_file() else "is an input"
            raise InputError(f"{what}; choose another output path", path=path, field=field)
    parent = path.absolute().parent
    ancestor = _existing_ancestor(parent)
    if not ancestor.is_dir():
        raise InputError(f"cannot create the folder: {ancestor} is a file, not a folder", path=path, field=field)
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"folder {ancestor} is not writable", path=path, field=field)
    if os.path.lexists(path) and not overwrite:
        raise InputError("exists; pass --overwrite to replace it", path=path, field=field)
    check_disk(path, size_bytes, field=field)
    return path


def _make_folders(folder: Path, path: Path, field: str | None) -> list[Path]:
    """Create ``folder`` and missing parents; returns those created (deepest last); OSError -> InputError."""
    from neurodyn.errors import InputError

    missing = []
    probe = folder
    while not os.path.lexists(probe) and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    created = []
    try:
        for item in reversed(missing):
            os.mkdir(item)
            created.append(item)
    except OSError as err:
        _remove_folders(created)
        raise InputError(f"cannot create folder {item} ({os.strerror(err.errno or 0) or err})",
                         path=path, field=field) from None
    return created


def _remove_folders(created: list[Path]) -> None:
    for item in reversed(created):
        with contextlib.suppress(OSError):
            os.rmdir(item)  # only if still empty


@contextlib.contextmanager
def _lock(path: Path, field: str | None) -> Iterator[None]:
    """Exclusive, non-blocking lock on ``.<name>.lock`` next to ``path``; removed on exit."""
    import fcntl

    from neurodyn.errors import InputError

    lock = path.with_name(f".{path.name}.lock")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise InputError(f"cannot write in folder {path.parent} ({os.strerror(err.errno or 0) or err})",
                         path=path, field=field) from None
    held = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # The holder before us may have removed the file between our open and our flock: then
            # we hold a lock on a name nobody sees, and must refuse as if it were still held.
            if os.fstat(fd).st_ino != os.stat(lock).st_ino:
                raise BlockingIOError(errno.EAGAIN, "lock file replaced")
        except OSError:
            raise InputError(f"another process is writing this file (lock {lock.name}); try again when it "
                             "has finished", path=path, field=field) from None
        held = True
        yield
    finally:
        # held, or interrupted (Ctrl-C / SIGTERM) between the open and ``held = True``: remove the file
        # only if this descriptor holds the lock on the name it has, never another writer's lock
        if held or _holds_lock(fd, lock):
            with contextlib.suppress(OSError):
                os.unlink(lock)
        os.close(fd)


def _holds_lock(fd: int, lock: Path) -> bool:
    """True when ``fd`` can hold the flock of ``lock`` (already holds it, or nobody does) and is its file."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return os.fstat(fd).st_ino == os.stat(lock).st_ino
    except OSError:
        return False


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


@contextlib.contextmanager
def output_file(path: str | os.PathLike, *, inputs: Iterable = (), overwrite: bool = False,
                size_bytes: float | None = None, field: str | None = "--out") -> Iterator[Path]:
    """Write one output under the policy of this module: yields a temporary path in the destination folder.

    Enter the block *before* the expensive work, so every check happens up front and the lock is
    held throughout. Write the result to the yielded path (a fresh empty file); when the block ends
    without an exception it is renamed onto ``path`` (with the permissions of an ordinary new file).
    On any exception, Ctrl-C or SIGTERM (turned into :class:`Interrupted` for the block) the
    temporary file, the lock file and the folders this call created are removed, and ``path`` is
    left as it was.

    Parameters
    ----------
    path
        The final output file.
    inputs
        Files or folders the command reads; the output may not be any of them.
    overwrite
        Replace an existing output (never an input).
    size_bytes
        Estimated output size, checked against the free disk; None to skip.
    field
        Name of the option in messages (default ``--out``).

    Raises
    ------
    InputError
        Any refusal of :func:`check_output`; a folder that cannot be created or written; another
        process holding the lock on ``path``.

    Examples
    --------
    How a command uses it (``download`` included)::

        from neurodyn.io import output_file

        with output_file(args.out, inputs=[args.nwb], overwrite=args.overwrite, size_bytes=expected) as tmp:
            data = compute()            # may raise InputError: nothing is left behind
            write(tmp, data)            # renamed onto args.out when the block ends

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with output_file(d / "sub" / "x.txt") as tmp:
    ...     _ = tmp.write_text("hi")
    >>> (d / "sub" / "x.txt").read_text(), sorted(p.name for p in (d / "sub").iterdir())
    ('hi', ['x.txt'])
    >>> with output_file(d / "sub" / "x.txt") as tmp:  # doctest: +ELLIPSIS
    ...     pass
    Traceback (most recent call last):
    neurodyn.errors.InputError: .../x.txt: --out: exists; pass --overwrite to replace it
    """
    from neurodyn.errors import InputError

    inputs = list(inputs)  # checked twice: a generator would be empty the second time
    path = check_output(path, inputs=inputs, overwrite=overwrite, size_bytes=size_bytes, field=field)
    created = _make_folders(path.absolute().parent, path, field)
    ok = False
    try:
        with terminate_as_interrupt(), _lock(path, field):
            try:
                # checked again under the lock: another writer may have finished since the first check
                check_output(path, inputs=inputs, overwrite=overwrite, field=field)
                fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
                os.close(fd)
                tmp = Path(name)
                try:
                    yield tmp
                except OSError as err:
                    if err.errno in (errno.ENOSPC, errno.EDQUOT):
                        raise InputError(f"disk full while writing ({os.strerror(err.errno)})", path=path,
                                         field=field) from None
                    raise
                if os.path.lexists(path) and not overwrite:  # appeared while we worked (not via neurodyn)
                    raise InputError("exists; pass --overwrite to replace it", path=path, field=field)
                if tmp.exists():
                    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600 files
                os.replace(tmp, path)
                ok = True
            finally:
                if not ok:  # under the lock every temporary file of this output is ours (or a crash's):
                    # this also catches one made by mkstemp just before an interrupt named it
                    for part in path.parent.glob(f".{glob.escape(path.name)}.*.part"):
                        with contextlib.suppress(OSError):
                            part.unlink()
    finally:
        if not ok:
            _remove_folders(created)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    A failure (exception, Ctrl-C) removes the temporary file, so a half-written output never exists
    under its final name. No other checks: commands use :func:`output_file`, which adds the rest of
    the output policy; this is for library writers whose caller already applied it.

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
            os.chmod(tmp, 0o666 & ~_umask())
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
            raise InputError(f"{what} claims shape {shape} of {dtype} ({_size(nbytes)}), implausible for a "
                             f"file of {_size(os.path.getsize(path))}: damaged file?", path=path, field=name)

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
        raise InputError(f"truncated or damaged HDF5 file ({_reason(err)})", path=path) from None


_GCOL = b"GCOL\x01\x00\x00\x00"  # signature, version 1, three reserved bytes of a global heap collection
_heaps_checked: dict[tuple, str | None] = {}


def _global_heap_damage(path: str) -> str | None:
    """Walk every global heap collection of ``path`` as libhdf5 does; describe the first damage, or None.

    Variable-length strings (NWB's text, the prepared file's names) live in global heap collections.
    libhdf5 2.0 walks a collection's objects by their sizes, and a damaged size can make it loop
    forever (a size of 0 never advances) inside C code, where Ctrl-C and SIGTERM do not reach.
    Each collection must be tiled exactly by its objects (16-byte header + data padded to 8 bytes;
    the free-space object, index 0, counts its header in its size). Files whose superblock does not
    use 8-byte lengths are not checked. The result is cached per (path, size, mtime).
    """
    import mmap
    import struct

    stat = os.stat(path)
    key = (os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
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

    from neurodyn.errors import InputError

    path = _check_h5(path, what)
    damage = _global_heap_damage(path)
    if damage:
        raise InputError(f"truncated or damaged HDF5 file ({damage})", path=path)
    try:
        with h5py.File(path, "r") as handle:
            _check_datasets(handle, path)
            yield handle
    except OSError as err:
        raise InputError(f"truncated or damaged HDF5 file ({_reason(err)})", path=path) from None
    except MemoryError:
        raise InputError("not enough memory to read it", path=path) from None
    except (RuntimeError, KeyError, ValueError, TypeError, SystemError) as err:
        if not _raised_in_h5py(err):
            raise  # the reader's own bug: keep the traceback
        raise InputError(f"truncated or damaged HDF5 file ({_reason(err)})", path=path) from None
