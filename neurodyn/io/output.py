"""Small I/O helpers shared by every writer: the output policy, atomic output files and nested-dict HDF5 I/O.

The output policy
-----------------
Every command that writes a file goes through :func:`output_file` (one place, one set of rules):

* the output is written to a temporary file in the destination folder and renamed onto its final
  name only when the block succeeds; on an exception, Ctrl-C or SIGTERM the temporary file (and any
  folder the call created) is removed, so a half-written output never exists;
* an output that resolves to an input (same path, a symlink to it or a hard link: same inode) is
  refused, even with ``overwrite``;
* an existing output is refused unless ``overwrite=True`` (the commands' ``--overwrite``); a
  write-protected one (``chmod a-w``, or one this user may not write) is refused even then, and a replaced
  file's permission bits are kept (:func:`write_protected`); a symbolic link there is replaced by an ordinary
  new file, its target untouched;
* the destination is checked up front: not a folder, its parent is (or can be created as) a
  writable folder, and the estimated size fits the free disk (:func:`check_disk`); ``simulate``
  also checks its estimated memory against the available RAM (:func:`check_memory`);
* an exclusive lock file ``.<name>.lock`` next to the output: of two processes writing the same
  path, one writes and the other is refused at once (one line, exit code 2). A command whose work
  happens before it knows what to write (``neurodyn predict``: the writer is a Lightning callback)
  takes the lock up front with :func:`hold_output` and keeps it until the file is written or the
  run fails; :func:`output_file` inside it, in the same process, uses the lock already held.

Every refusal is an :class:`~neurodyn.errors.InputError` naming the file and the option (``--out``; a public
Python function that writes through it names its own arguments, ``out`` / ``overwrite=True``, via ``field`` and
``overwrite_name``, see :func:`neurodyn.errors.named`).
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

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

    def __reduce__(self):  # pickled by the processes of a run for the command's (training.processes)
        return type(self), (self.signum,)


#: every signal number that a handler of this module turned into :class:`Interrupted`, in order. The
#: exception a handler raises can be swallowed (a signal landing in a weakref callback or a ``__del__``,
#: e.g. h5py's, is only printed as "Exception ignored in ..."): :func:`output_file` looks here when its
#: block ends, so a swallowed signal still fails the block.
_RECEIVED: list[int] = []


def _raise_interrupted(signum, _frame):
    _RECEIVED.append(int(signum))
    err = Interrupted(signum)
    err.recorded = True  # already in _RECEIVED: the unraisable hook must not count it again
    raise err


@contextlib.contextmanager
def _raising_on(signum: int, defaults: tuple) -> Iterator[None]:
    """Within the block, ``signum`` raises :class:`Interrupted` and is recorded in :data:`_RECEIVED` -- only in
    the main thread and only while the signal's handler is one of ``defaults`` (a handler someone else
    installed is left alone). The previous handler is restored on exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    try:
        previous = signal.getsignal(signum)
    except (ValueError, OSError):  # pragma: no cover - no signals on this platform
        yield
        return
    if previous not in defaults:
        yield
        return
    signal.signal(signum, _raise_interrupted)
    try:
        yield
    finally:
        signal.signal(signum, previous)


def _interrupt_on_sigint():
    """Within the block, Ctrl-C raises :class:`Interrupted` and is recorded in :data:`_RECEIVED`, while SIGINT
    has Python's default handler (which raises a plain KeyboardInterrupt); any other handler is left alone."""
    return _raising_on(signal.SIGINT, (signal.default_int_handler,))


@contextlib.contextmanager
def _quiet_swallowed_interrupts() -> Iterator[None]:
    """Within the block, an interrupt that Python cannot raise (in a weakref callback, a ``__del__``) is
    recorded in :data:`_RECEIVED` instead of printed as "Exception ignored in ..."; other unraisable
    exceptions go to the previous :data:`sys.unraisablehook`."""
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return
    previous = sys.unraisablehook

    def hook(unraisable):
        if isinstance(unraisable.exc_value, KeyboardInterrupt) or (
                unraisable.exc_type is not None and issubclass(unraisable.exc_type, KeyboardInterrupt)):
            if not getattr(unraisable.exc_value, "recorded", False):  # a plain Ctrl-C, not one of ours
                _RECEIVED.append(int(getattr(unraisable.exc_value, "signum", signal.SIGINT)))
            return
        previous(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = previous


def terminate_as_interrupt():
    """Within the block, SIGTERM raises :class:`Interrupted` (so cleanup code runs) instead of killing.

    Only in the main thread, and only when SIGTERM still has its default action (a handler someone
    else installed, e.g. Lightning's, is left alone). The previous handler is restored on exit.
    """
    return _raising_on(signal.SIGTERM, (signal.SIG_DFL, None))


@contextlib.contextmanager
def interrupts_raise(sigterm: bool = True) -> Iterator[None]:
    """Within the block, SIGTERM (unless ``sigterm`` is False) and Ctrl-C raise :class:`Interrupted` (recorded in
    :data:`_RECEIVED`) where their handlers are still the defaults (:func:`terminate_as_interrupt`,
    :func:`_interrupt_on_sigint`); the previous handlers are restored on exit."""
    with terminate_as_interrupt() if sigterm else contextlib.nullcontext(), _interrupt_on_sigint():
        yield


@contextlib.contextmanager
def command_interrupts(ctrl_c: bool = False) -> Iterator[None]:
    """:func:`terminate_as_interrupt` for a whole command outside any :func:`output_file` (a DANDI lookup, a
    streamed ``info``): SIGTERM raises :class:`Interrupted`, and one whose exception was swallowed (a signal
    landing in h5py's weakref callbacks or a ``__del__``: printed "Exception ignored in ..." and ignored, the
    command then ran on and exited 0) fails the block with :class:`Interrupted` when it ends. ``ctrl_c``: Ctrl-C
    too (:func:`interrupts_raise`), so that one a framework turned into an exit (Lightning's ``sys.exit(1)`` in
    ``validate`` / ``test``) also leaves the block as :class:`Interrupted`. A :class:`~neurodyn.errors.Stopped`
    leaves as it is: the command already stopped in order on that signal and says what it kept (``download``'s
    ``.part``; turned into a bare interrupt, the line said "nothing partial was kept")."""
    from neurodyn.errors import Stopped

    with interrupts_raise() if ctrl_c else terminate_as_interrupt(), _quiet_swallowed_interrupts():
        received = len(_RECEIVED)
        try:
            yield
        except (KeyboardInterrupt, Stopped):
            raise
        except BaseException as err:
            if len(_RECEIVED) > received:
                raise Interrupted(_RECEIVED[-1]) from err
            raise
        if len(_RECEIVED) > received:
            raise Interrupted(_RECEIVED[-1])


@contextlib.contextmanager
def signals_deferred(replay: bool = True) -> Iterator[list[int]]:
    """SIGINT and SIGTERM received within the block are acted on when it ends (each once, in order, by the handler
    of that moment: :func:`signal.raise_signal`), not inside it: for a few steps that must happen all or none, the
    renames of files written as one (``simulate nlb``'s pair: a signal between them kept one file of the pair while
    the command said nothing partial was kept). Python-level handlers, not a signal mask, so that a signal another
    thread receives is deferred too. Only in the main thread (signals reach no other). A signal that is ignored
    (``SIG_IGN``: a background job of a script) stays ignored.

    Yields the list of the signals received so far; with ``replay=False`` they are not raised again at the end:
    the caller acts on them (or drops them: a cleanup that runs because the command is ending anyway).

    When the block ends, each handler it replaced is put back unless the handler is no longer the block's own:
    a context entered before the block and left inside it has restored the handler it found.

    >>> import os, signal
    >>> with contextlib.suppress(Interrupted), terminate_as_interrupt():
    ...     with signals_deferred():
    ...         os.kill(os.getpid(), signal.SIGTERM)
    ...         print("still here")
    ...     print("not reached")
    still here
    """
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    def defer(signum, _frame):
        received.append(int(signum))

    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(signum)
        if handler is not None and handler is not signal.SIG_IGN:  # None: set outside Python, left so
            previous[signum] = signal.signal(signum, defer)
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            # only where the block's handler is still in place: a context entered before this block and left
            # inside it (simulate nlb's output files, whose renames this block spans) has already put back the
            # handler it found, and restoring ours would leave its raising handler behind after the command
            if signal.getsignal(signum) is defer:
                signal.signal(signum, handler)
        if replay:
            for signum in dict.fromkeys(received):
                signal.raise_signal(signum)


@contextlib.contextmanager
def default_sigterm() -> Iterator[None]:
    """Within the block, SIGTERM has its default action again where :func:`terminate_as_interrupt` had set it
    to raise: Lightning installs its own SIGTERM handler (an orderly stop) only over the default action, and
    turns a KeyboardInterrupt inside ``trainer.fit`` into ``sys.exit(1)``. The raising handler is put back
    after the block."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) is not \
            _raise_interrupted:
        yield
        return
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, _raise_interrupted)


def human_size(n: float) -> str:
    """A number of bytes in B / kB / MB / GB / TB (powers of 1000), as messages and ``neurodyn info`` show sizes.

    >>> human_size(512), human_size(1_500_000)
    ('512 B', '1.5 MB')
    """
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
        raise InputError(f"{what} needs about {human_size(nbytes)} of memory, only {human_size(have)} available",
                         field=field)


#: whether :func:`os.access` can answer for the effective user and groups (faccessat(2)'s AT_EACCESS: Linux, the
#: BSDs, macOS), read once at import: a test's stand-in for os.access is no member of os.supports_effective_ids
_EFFECTIVE_IDS = os.access in os.supports_effective_ids


def may_access(path: str | os.PathLike, mode: int) -> bool:
    """:func:`os.access` for this process's *effective* user and groups, those the kernel checks when it opens,
    creates or lists (where the platform can tell, :data:`_EFFECTIVE_IDS`). Plain ``os.access`` checks the real
    ones ("rather than the effective IDs as is done when actually attempting an operation", access(2), made for
    setuid programs asking on their caller's behalf): a setuid / setgid program was refused a folder it could
    write, or told it could read a file it could not. Root's access(2) answer is yes to everything either way (but
    see the next paragraph).

    A folder with no write bit for anyone (``chmod a-w``, mode 0555) is not writable here, root included: root's
    access(2) says yes to it, and a command run as root wrote its output into a folder the user had protected
    (the rule of write-protected files, :func:`write_protected`, by the mode bits; :func:`folder_protection`).

    >>> may_access("/", os.R_OK)
    True
    """
    if mode & os.W_OK and folder_protection(path) is not None:
        return False
    return os.access(path, mode, effective_ids=_EFFECTIVE_IDS)


def not_writable_words(folder: str | os.PathLike) -> str:
    """Why :func:`may_access` says a folder cannot be written, in words: ``"write-protected, mode 0555: no write
    bit"`` where no one has a write bit (root included), else ``"permission denied"`` (this user may not).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); d.chmod(0o555); not_writable_words(d)
    'write-protected, mode 0555: no write bit'
    >>> d.chmod(0o755)
    """
    protected = folder_protection(folder)
    return f"write-protected, {protected}: no write bit" if protected else "permission denied"


def folder_protection(path: str | os.PathLike) -> str | None:
    """``"mode 0555"`` for a folder without a write bit for anyone (write-protected: ``chmod a-w``), else None
    (also for a file, a missing path, one that cannot be looked at). Read from the mode bits, so it holds as root.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> folder_protection(d) is None
    True
    >>> d.chmod(0o555); folder_protection(d)
    'mode 0555'
    >>> d.chmod(0o755)
    """
    import stat

    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    if not stat.S_ISDIR(st.st_mode) or st.st_mode & 0o222:
        return None
    return f"mode {stat.S_IMODE(st.st_mode):04o}"


def _unwritable_folder(folder: Path, first_missing: Path | None) -> str:
    """The message of an output refused for ``folder``, an existing folder it may not write (``first_missing``:
    the folder it would have created in it, if any)."""
    protected = folder_protection(folder)
    why = (f"folder {folder} is write-protected ({protected}: no write bit)" if protected
           else f"folder {folder} is not writable")
    return f"cannot create folder {first_missing}: {why}" if first_missing is not None else why


def _existing_ancestor(path: Path) -> Path:
    """``path``'s nearest ancestor (or itself) that exists (not following a dangling last link)."""
    probe = path
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent
    return probe


#: errno values of a write that found no room: a full disk, a full quota, the file-size limit (``ulimit -f``)
DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def file_size_limit() -> int | None:
    """The largest file this process may write (``RLIMIT_FSIZE``, the shell's ``ulimit -f``) in bytes; None
    when unlimited or unknown. Python ignores SIGXFSZ: a write past it fails with EFBIG."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    except (ImportError, OSError, ValueError, AttributeError):  # pragma: no cover - not on this platform
        return None
    return None if soft == resource.RLIM_INFINITY or soft < 0 else int(soft)


def disk_full(err: BaseException | None, path: str | os.PathLike | None, field: str | None):
    """The one-line :class:`~neurodyn.errors.InputError` for a write that found no room -- an OSError of
    :data:`DISK_FULL` that ``err`` is or was raised from (h5py raises further errors while it closes a file it
    could not write) -- naming ``path`` and ``field``; None for any other error.

    >>> str(disk_full(OSError(errno.ENOSPC, "No space left on device"), "out.h5", "--out"))
    'out.h5: --out: disk full while writing (No space left on device)'
    >>> disk_full(ValueError("bad"), "out.h5", "--out") is None
    True
    >>> from neurodyn.errors import InputError
    >>> try:  # an error that is its own line already, raised while the disk was full, is left as it is
    ...     try:
    ...         raise OSError(errno.ENOSPC, "No space left on device")
    ...     except OSError:
    ...         raise InputError("kept x.part: free space and run again")
    ... except InputError as err:
    ...     disk_full(err, "out.h5", "--out") is None
    True
    """
    from neurodyn.errors import InputError

    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        if isinstance(err, InputError):  # a line of its own already (download's: the .part kept, how to resume)
            return None
        if isinstance(err, OSError) and err.errno in DISK_FULL:
            if err.errno == errno.EFBIG:
                limit = file_size_limit()
                why = f"the file-size limit, ulimit -f, is {human_size(limit)}" if limit else os.strerror(err.errno)
                return InputError(f"file too large while writing ({why})", path=path, field=field)
            return InputError(f"disk full while writing ({os.strerror(err.errno)})", path=path, field=field)
        err = err.__cause__ or err.__context__
    return None


def check_disk(path: str | os.PathLike, nbytes: float | None, *, field: str | None = "--out") -> None:
    """Refuse (InputError) when ``nbytes`` (+16 MB) do not fit the free space where ``path`` would go, or
    exceed the file-size limit (``ulimit -f``: h5py crashed with a segmentation fault writing past it)."""
    from neurodyn.errors import InputError

    if not nbytes:
        return
    limit = file_size_limit()
    if limit is not None and nbytes > limit:
        raise InputError(f"file too large: the output needs about {human_size(nbytes)}, the file-size limit "
                         f"(ulimit -f) is {human_size(limit)}", path=path, field=field)
    folder = _existing_ancestor(Path(path).absolute().parent)
    try:
        usage = shutil.disk_usage(folder)
    except OSError:  # cannot tell: let the write itself fail
        return
    if usage.total == 0:  # a pseudo file system (/proc, some FUSE mounts) tells nothing
        return
    free = usage.free
    if nbytes + DISK_MARGIN_BYTES > free:
        raise InputError(f"the output needs about {human_size(nbytes)}, only {human_size(free)} free in {folder}",
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
                 size_bytes: float | None = None, field: str | None = "--out",
                 overwrite_name: str = "--overwrite") -> Path:
    """The up-front half of the output policy; raises InputError, creates nothing. Returns ``Path(path)``.

    Refuses: a folder; an existing path that is not a regular file (``/dev/null``, a FIFO); a path whose
    parent is a file or cannot be created / written; an output that is
    any of ``inputs`` (files or folders, whose files count too; compared by inode, so a symlink or hard
    link to an input is caught); an existing output without ``overwrite``, and a write-protected one
    (:func:`write_protected`) even with it; an estimated
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
    if os.path.exists(path) and not os.path.isfile(path):
        # /dev/null, a FIFO, a socket: renaming the finished file onto it would replace the device node
        # itself (as root, /dev/null became a regular file), not write through it
        raise InputError("is not a regular file (a device, FIFO or socket); choose a file path", path=path,
                         field=field)
    for source in _input_files(inputs):
        if _same_file(path, source) or (not os.path.lexists(path) and path.absolute() == source.absolute()):
            what = "is an input file" if source.is_file() else "is an input"
            raise InputError(f"{what}; choose another output path", path=path, field=field)
    parent = path.absolute().parent
    ancestor = _existing_ancestor(parent)
    if not ancestor.is_dir():
        raise InputError(f"cannot create the folder: {ancestor} is a file, not a folder", path=path, field=field)
    if not may_access(ancestor, os.W_OK | os.X_OK):
        first = None if ancestor == parent else next(p for p in [parent, *parent.parents] if p.parent == ancestor)
        raise InputError(_unwritable_folder(ancestor, first), path=path, field=field)
    if os.path.lexists(path) and not overwrite:
        raise InputError(f"exists; pass {overwrite_name} to replace it", path=path, field=field)
    if overwrite:
        refuse_protected(path, field, overwrite_name)
    check_disk(path, size_bytes, field=field)
    return path


#: how :func:`write_protected` ends for a file this user may not write (another user's): no ``chmod`` of theirs helps
_NOT_THIS_USERS = "not writable by this user"
_ANOTHER_USERS = "another user's, write-protected by its owner"


def write_protected(path: str | os.PathLike) -> str | None:
    """Why ``path`` is a write-protected file (its mode, and who may not write it), else None (also when absent).

    Write-protected: its owner's write bit is off (``chmod 444``, ``chmod a-w``: how a user protects a file;
    renaming a new file onto it needs only a writable folder, so ``--overwrite`` replaced it silently), or
    this process may not write it (:func:`may_access`: another user's file, what ``rm`` asks about before it
    prompts "remove write-protected regular file?"). The mode bits are read with stat, not only asked of
    :func:`os.access`: root's access(2) says yes to everything, a protected file included. Where this user cannot
    undo the protection the reason says so (``another user's, write-protected by its owner``; ``not writable by
    this user``).

    A symbolic link is never write-protected: the finished file replaces the link, never the file it points to
    (a git-annex / DataLad or DVC output is a link to a read-only object, which stays as it is).

    >>> import tempfile, pathlib
    >>> f = pathlib.Path(tempfile.mkdtemp()) / "x.h5"; _ = f.write_bytes(b"")
    >>> write_protected(f) is None
    True
    >>> f.chmod(0o444); write_protected(f)
    'mode 0444'
    """
    import stat

    try:
        st = os.lstat(path)
    except OSError:  # absent: nothing to protect
        return None
    if not stat.S_ISREG(st.st_mode):  # a link (replaced, its target untouched), a folder, a device
        return None
    mode = stat.S_IMODE(st.st_mode)
    ours = st.st_uid == os.geteuid() or os.geteuid() == 0  # whose chmod can undo the protection
    if not st.st_mode & stat.S_IWUSR:
        return f"mode {mode:04o}" if ours else f"mode {mode:04o}, {_ANOTHER_USERS}"
    if not may_access(path, os.W_OK):
        return f"mode {mode:04o}, {_NOT_THIS_USERS}"
    return None


def refuse_protected(path: str | os.PathLike, field: str | None, overwrite_name: str = "--overwrite") -> None:
    """Refuse (InputError naming ``path``, ``field`` and ``overwrite_name``) to replace a write-protected file
    (:func:`write_protected`): the user protected it, and users' data is not replaced behind their back."""
    from neurodyn.errors import InputError

    why = write_protected(path)
    if why is not None:
        # chmod u+w undoes the owner's own protection; another user's file is not theirs to unprotect
        undo = "" if why.endswith((_NOT_THIS_USERS, _ANOTHER_USERS)) else "make it writable (chmod u+w) or "
        raise InputError(f"is write-protected ({why}); {overwrite_name} does not replace a protected file: "
                         f"{undo}choose another output path", path=path, field=field)


def make_folders(folder: Path, path: Path, field: str | None) -> list[Path]:
    """Create ``folder`` and missing parents; returns those created (deepest last), for
    :func:`remove_empty_folders`; an OSError is a one-line InputError naming ``path`` and ``field``.

    ``folder`` is one the caller writes in: where it, or the existing folder the missing ones would be made in,
    is write-protected (:func:`folder_protection`: no write bit, ``chmod a-w``) it is refused before anything is
    made, even as root, whose mkdir would succeed."""
    from neurodyn.errors import InputError

    missing = []
    probe = folder
    while not os.path.lexists(probe) and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    if folder_protection(probe) is not None:
        raise InputError(_unwritable_folder(probe, missing[-1] if missing else None), path=path, field=field)
    created = []
    try:
        for item in reversed(missing):
            os.mkdir(item)
            created.append(item)
    except OSError as err:
        remove_empty_folders(created)
        raise InputError(f"cannot create folder {item} ({os.strerror(err.errno or 0) or err})",
                         path=path, field=field) from None
    return created


def remove_empty_folders(created: list[Path]) -> None:
    """Remove the folders :func:`make_folders` created, deepest first, those that are still empty."""
    for item in reversed(created):
        with contextlib.suppress(OSError):
            os.rmdir(item)  # only if still empty


#: lock files this process holds through :func:`hold_output` (keys: :func:`_lock_key`); :func:`_lock` enters
#: them again without a second flock (which would refuse the holder itself: flock locks belong to an open file)
_HELD_LOCKS: set[str] = set()


def held_locks() -> frozenset[str]:
    """The lock files this process holds through :func:`hold_output` (keys of :data:`_HELD_LOCKS`)."""
    return frozenset(_HELD_LOCKS)


def write_under(locks: frozenset[str]) -> None:
    """In a process another started to write its outputs (``--trainer.strategy ddp_spawn``: a fresh interpreter),
    the starter's :func:`held_locks`: that process holds them for as long as this one runs, and this one writes
    under them (it was refused, 'another process is writing this file'). A forked process has them already."""
    _HELD_LOCKS.update(locks)


#: lock files this process holds through :func:`_lock` now (key: :func:`_lock_key`), for
#: :func:`remove_locks_before_exit`
_LIVE_LOCKS: dict[str, Path] = {}


def remove_locks_before_exit() -> None:
    """Remove the lock files this process holds, in a process about to end with ``os._exit`` (its ``finally``
    blocks will not run: the flocks die with it, the files would stay). Only for that: the holders' blocks are
    still under way."""
    for lock in list(_LIVE_LOCKS.values()):
        with contextlib.suppress(OSError):
            os.unlink(lock)


def _lock_key(lock: Path) -> str:
    """One name per lock file however the output path was spelt (relative, through symlinked folders)."""
    return os.path.join(os.path.realpath(lock.parent), lock.name)


@contextlib.contextmanager
def _lock(path: Path, field: str | None, busy: str | None = None, of_folder: bool = False,
          what: str = "file") -> Iterator[None]:
    """Exclusive, non-blocking lock on ``.<name>.lock`` next to ``path``; removed on exit. A lock this process
    already holds (:func:`hold_output`) is entered as it is: nothing is taken, and the holder removes it.
    ``of_folder``: the lock of the folder ``path.parent`` (:func:`hold_folder`), which its errors name. ``what``:
    the output in the message to a second writer (``neurodyn tune``'s run folder: "run folder")."""
    import fcntl

    from neurodyn.errors import InputError

    lock = path.with_name(f".{path.name}.lock")
    if _lock_key(lock) in _HELD_LOCKS:
        yield
        return
    fd = None
    held = False
    read_only = False  # the lock file could only be opened to read (the fallback below)
    try:  # the file is created inside the frame that removes it: a signal the moment it appears is covered
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            # a lock file this user may not write: another user's (their writer's, or left by one that was killed
            # with SIGKILL) or one made read-only. flock(2) needs only an open descriptor, so it is opened to read;
            # "cannot write in folder X" blamed a writable folder. Only in a folder this user may write: creating the
            # lock is hold_folder's check that its folder is writable, which another user's stale lock would pass
            if isinstance(err, PermissionError) and may_access(lock.parent, os.W_OK | os.X_OK):
                with contextlib.suppress(OSError):
                    fd = os.open(lock, os.O_RDONLY)
                    read_only = True
            if fd is None:
                where = "this folder" if of_folder else f"folder {path.parent}"
                raise InputError(f"cannot write in {where} ({os.strerror(err.errno or 0) or err})",
                                 path=path.parent if of_folder else path, field=field) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # The holder before us may have removed the file between our open and our flock: then
            # we hold a lock on a name nobody sees, and must refuse as if it were still held.
            if os.fstat(fd).st_ino != os.stat(lock).st_ino:
                raise BlockingIOError(errno.EAGAIN, "lock file replaced")
        except OSError as err:
            if read_only and err.errno == errno.EBADF:
                # NFS (and CIFS) emulate flock with POSIX byte-range locks, and "in order to place an exclusive
                # lock, the file must be opened for writing" (flock(2), NOTES): EBADF on a descriptor opened to
                # read, which is no sign of another writer ("another process is writing" sent the user waiting)
                raise InputError("cannot be locked: this user may not write the lock file, and this file system "
                                 "(NFS, CIFS) locks only files open for writing; if no process is writing this "
                                 f"{what}, remove the lock file", path=lock, field=field) from None
            raise InputError(busy or f"another process is writing this {what} (lock {lock.name}); try again when "
                             "it has finished", path=lock.parent if busy else path, field=field) from None
        held = True
        _LIVE_LOCKS[_lock_key(lock)] = lock
        yield
    finally:
        if held:
            _LIVE_LOCKS.pop(_lock_key(lock), None)
        if fd is None:
            # Ctrl-C / SIGTERM as os.open returned: the file may exist with its descriptor lost; look
            # at it through a new one (never creating it)
            with contextlib.suppress(OSError):
                fd = os.open(lock, os.O_RDWR)
        if fd is not None:
            # held, or interrupted before ``held = True``: remove the file only if this descriptor holds
            # the lock on the name it has (nobody else does), never another writer's lock
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


def _replaced_mode(path: Path) -> int:
    """The permission bits a finished output gets: those of the regular file at ``path`` it replaces (rwx for
    owner, group and others; never set-id bits), else (nothing, or a link there) those of an ordinary new file
    (``0o666`` less the umask)."""
    import stat

    with contextlib.suppress(OSError):
        st = os.lstat(path)  # a link is replaced by a new file, not given its target's (read-only) mode
        if stat.S_ISREG(st.st_mode):
            return stat.S_IMODE(st.st_mode) & 0o777
    return 0o666 & ~_umask()


@contextlib.contextmanager
def output_file(path: str | os.PathLike, *, inputs: Iterable = (), overwrite: bool = False,
                size_bytes: float | None = None, field: str | None = "--out",
                overwrite_name: str = "--overwrite") -> Iterator[Path]:
    """Write one output under the policy of this module: yields a temporary path in the destination folder.

    Enter the block *before* the expensive work, so every check happens up front and the lock is
    held throughout. Write the result to the yielded path (a fresh empty file); when the block ends
    without an exception it is renamed onto ``path`` (with the permissions of the file it replaces, else
    those of an ordinary new file).
    On any exception, Ctrl-C or SIGTERM (turned into :class:`Interrupted` for the block) the
    temporary file, the lock file and the folders this call created are removed, and ``path`` is
    left as it was. A Ctrl-C / SIGTERM whose exception was swallowed inside the block (a signal
    landing in a weakref callback or ``__del__``, e.g. h5py's, which Python only reports as
    "Exception ignored") is recorded by the handler and still fails the block when it ends, before
    the rename.

    Parameters
    ----------
    path
        The final output file.
    inputs
        Files or folders the command reads; the output may not be any of them.
    overwrite
        Replace an existing output (never an input, never a write-protected file).
    size_bytes
        Estimated output size, checked against the free disk; None to skip.
    field
        Name of the option in messages (default ``--out``).
    overwrite_name
        How a message tells to replace an existing output (default ``--overwrite``; a public Python function
        passes ``neurodyn.errors.named("overwrite=True", "--overwrite")``, its caller's spelling).

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
    path = check_output(path, inputs=inputs, overwrite=overwrite, size_bytes=size_bytes, field=field,
                        overwrite_name=overwrite_name)
    created = make_folders(path.absolute().parent, path, field)
    ok = False
    try:
        with terminate_as_interrupt(), _interrupt_on_sigint(), _quiet_swallowed_interrupts(), _lock(path, field):
            received = len(_RECEIVED)
            try:
                # checked again under the lock: another writer may have finished since the first check
                check_output(path, inputs=inputs, overwrite=overwrite, field=field, overwrite_name=overwrite_name)
                fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
                os.close(fd)
                tmp = Path(name)
                try:
                    yield tmp
                except KeyboardInterrupt:
                    raise
                except BaseException as err:
                    if len(_RECEIVED) > received:  # a signal whose exception was swallowed made this fail
                        raise Interrupted(_RECEIVED[-1]) from err
                    full = disk_full(err, path, field)  # no room: a full disk or quota, ulimit -f
                    if full is not None:
                        raise full from None
                    raise
                if len(_RECEIVED) > received:  # a signal whose exception was swallowed inside the block
                    raise Interrupted(_RECEIVED[-1])
                if os.path.lexists(path) and not overwrite:  # appeared while we worked (not via neurodyn)
                    raise InputError(f"exists; pass {overwrite_name} to replace it", path=path, field=field)
                refuse_protected(path, field, overwrite_name)  # protected (chmod a-w) while we worked
                if tmp.exists():
                    # mkstemp creates 0600 files: an ordinary new file's permissions, or those of the file it
                    # replaces (as editors keep them: a file shared with the group stays shared)
                    os.chmod(tmp, _replaced_mode(path))
                os.replace(tmp, path)
                ok = True
            finally:
                # under the lock every temporary file of this output is ours (or a crash's): removed after a
                # failure, and after a success too -- a SIGKILLed writer's left-overs are cleaned by the next
                # run that completes. This also catches one made by mkstemp just before an interrupt named it.
                # ``..<name>.*.part``: one a library writer made with atomic_path(tmp) inside the block
                for part in temporary_files(path):
                    with contextlib.suppress(OSError):
                        part.unlink()
    finally:
        if not ok:
            remove_empty_folders(created)


#: the random part of a :func:`tempfile.mkstemp` name (``tempfile._RandomNameSequence``: 8 of these)
_MKSTEMP = "[a-z0-9_]{8}"


def temporary_files(path: Path) -> list[Path]:
    """The temporary files :func:`output_file` makes for ``path`` (``.<name>.XXXXXXXX.part``, mkstemp's 8 random
    characters) and those :func:`atomic_path` makes of one inside its block (``..<name>.XXXXXXXX.part.YYYYYYYY
    .part``) -- nothing else: not the temporary files of another output whose name starts with this one's
    (``out.h5.gz`` beside ``out.h5``, under its own lock), not a user's ``.out.h5.backup.part``.

    >>> import tempfile as _t; d = Path(_t.mkdtemp())
    >>> for n in (".out.h5.ab12_xyz.part", "..out.h5.ab12_xyz.part.q1w2e3r4.part", ".out.h5.gz.ab12_xyz.part",
    ...           ".out.h5.backup.part", ".out.h5.ab12_xyz.part.bak"):
    ...     _ = (d / n).write_text("")
    >>> sorted(p.name for p in temporary_files(d / "out.h5"))
    ['..out.h5.ab12_xyz.part.q1w2e3r4.part', '.out.h5.ab12_xyz.part']
    """
    import re

    own = re.compile(rf"\.{re.escape(path.name)}\.{_MKSTEMP}\.part")
    inner = re.compile(rf"\.\.{re.escape(path.name)}\.{_MKSTEMP}\.part\.{_MKSTEMP}\.part")
    return [p for p in path.parent.glob(f"*.{glob.escape(path.name)}.*.part")
            if own.fullmatch(p.name) or inner.fullmatch(p.name)]


@contextlib.contextmanager
def hold_output(path: str | os.PathLike, *, inputs: Iterable = (), overwrite: bool = False,
                size_bytes: float | None = None, field: str | None = "--out",
                overwrite_name: str = "--overwrite") -> Iterator[Path]:
    """Check ``path`` under the output policy and hold its lock for the block; yields ``Path(path)``.

    For a command that must refuse a second writer *before* its expensive work but writes from somewhere
    it does not control (``neurodyn predict``: Lightning calls the writer at the end). Up front: the
    checks of :func:`check_output`, the missing folders created, the lock ``.<name>.lock`` taken (another
    process holding it: :class:`~neurodyn.errors.InputError` at once) and the checks repeated under it.
    Inside the block the output is written with :func:`output_file` as usual, which uses the held lock.
    On exit -- normal, exception, Ctrl-C or SIGTERM (turned into :class:`Interrupted` for the block, as in
    :func:`output_file`) -- the lock file is removed and the folders this call created are removed again
    if they are empty. An exception that a signal caused indirectly (a framework that catches Ctrl-C and
    exits, as Lightning does with ``sys.exit(1)``) leaves the block as :class:`Interrupted` with the
    signal's number.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with hold_output(d / "x.txt") as out:
    ...     (d / ".x.txt.lock").exists()                   # held from here on
    ...     with output_file(out) as tmp:                  # the same process: the held lock is used
    ...         _ = tmp.write_text("hi")
    True
    >>> sorted(p.name for p in d.iterdir())
    ['x.txt']
    """
    inputs = list(inputs)
    path = check_output(path, inputs=inputs, overwrite=overwrite, size_bytes=size_bytes, field=field,
                        overwrite_name=overwrite_name)
    created = make_folders(path.absolute().parent, path, field)
    try:
        with terminate_as_interrupt(), _interrupt_on_sigint(), _quiet_swallowed_interrupts(), _lock(path, field):
            key = _lock_key(path.with_name(f".{path.name}.lock"))
            received = len(_RECEIVED)
            _HELD_LOCKS.add(key)
            try:
                # another writer may have finished
                check_output(path, inputs=inputs, overwrite=overwrite, field=field, overwrite_name=overwrite_name)
                yield path
            except KeyboardInterrupt:
                raise
            except BaseException as err:
                if len(_RECEIVED) > received:  # a signal made this fail (caught and turned into an exit by a framework)
                    raise Interrupted(_RECEIVED[-1]) from err
                raise
            finally:
                _HELD_LOCKS.discard(key)
                # under the lock every temporary file of this output is ours: one a process writing under it
                # (write_under: a ddp_spawn predict's first process) left when it was ended mid-write
                for part in temporary_files(path):
                    with contextlib.suppress(OSError):
                        part.unlink()
    finally:
        remove_empty_folders(created)  # only those still empty: never the output's folder once it is written


@contextlib.contextmanager
def hold_folder(folder: str | os.PathLike, *, field: str | None = None, busy: str | None = None) -> Iterator[bool]:
    """Hold the exclusive lock ``.run.lock`` inside ``folder`` for the block (one writer of a folder: a run
    folder ``neurodyn fit`` writes into); yields True when this call created ``folder``.

    ``folder`` and missing parents are created; another process holding the lock is an
    :class:`~neurodyn.errors.InputError` at once (``busy``: its message). On exit -- normal, exception,
    Ctrl-C -- the lock file is removed (the flock itself dies with the process, so a killed holder leaves at
    most an unlocked file that the next holder takes) and the folders this call created are removed again
    if they are empty. Signal handlers are left alone (a fit installs its own).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()) / "run"
    >>> with hold_folder(d) as made:
    ...     made, (d / ".run.lock").exists()
    (True, True)
    >>> d.exists()                                        # created here and left empty: removed again
    False
    """
    from neurodyn.errors import InputError

    folder = Path(folder)
    if os.path.lexists(folder) and not folder.is_dir():  # was "folder/run: cannot write in folder folder"
        raise InputError("is a file, expected a folder (or a name that is not taken)", path=folder, field=field)
    created = make_folders(folder.absolute(), folder, field)
    try:
        with _lock(folder / "run", field, busy, of_folder=True):
            yield bool(created) and created[-1] == folder.absolute()
    finally:
        remove_empty_folders(created)


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
    tmp = None
    try:  # mkstemp inside the frame that removes its file: a Ctrl-C as it returns leaves nothing behind
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        tmp = Path(name)
        os.close(fd)
        yield tmp
        if tmp.exists():
            # mkstemp creates 0600 files; give the result the permissions of an ordinary new file.
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()
