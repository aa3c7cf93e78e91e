"""``neurodyn download``: fetch NLB files, or any dandiset's assets, from DANDI with resume and digest checks.

Lookup goes through the ``dandi`` library's :class:`dandi.dandiapi.DandiAPIClient` (dandiset, version,
asset path, size, the digests DANDI publishes, the download URL); the bytes come over the client's own
HTTP session with neurodyn's resume logic (the library's downloader does not resume). Files land in
``<out>/<dandiset_id>/<asset path>`` -- the layout of ``dandi download``.

Two ways to name what to fetch:

- a registry name (``neurodyn download mc_maze_small``): the dandiset, version, asset ids, sizes and
  sha256 of the seven NLB datasets come from :mod:`neurodyn.data.nlb`, the offline source of truth;
  DANDI's answer is checked against it before any byte is fetched;
- a dandiset (``neurodyn download --dandiset 000140 [--version V] [--path GLOB]``): any asset, also
  ones the registry does not list (an asset the registry does list is still checked against it).

Integrity rules
---------------
- Bytes go to ``<file>.part`` (refused, untouched, when something else -- a folder, a link -- has that name),
  made (or, when the server ignores ``Range``, emptied) with the first byte
  received: an answer that brings none leaves no new file and an earlier ``.part`` as it was. An interrupted
  transfer keeps it, and the next run resumes it with an HTTP ``Range`` request and says so (a server that
  ignores ``Range`` restarts the file).
- A finished ``.part`` is checked against the size, the sha256 (DANDI's ``dandi:sha2-256`` and the
  registry's) and DANDI's ``dandi:dandi-etag``; only then is it renamed to its final name, so a file under
  its final name is always complete. A ``.part`` that fails is deleted; when it had resumed bytes an
  earlier run left (damaged, or the start of another file at this path), the file is fetched once more
  from the start in the same run before the command fails.
- An existing final file is verified the same way: verified -> skipped; different -> refused unless
  ``--overwrite`` (then downloaded again and replaced only once the new copy is verified).
- The final file is written under :func:`neurodyn.io.output_file` (checked up front, disk space for
  the missing bytes, a lock against a second download of the same file, renamed into place).

The API root is ``--api-url``, else ``$NEURODYN_DANDI_API``, else the ``dandi`` library's default
instance (``$DANDI_INSTANCE``, normally https://api.dandiarchive.org/api).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from neurodyn.data.dandi import (
    _CHUNK,
    MAX_RETRY_AFTER_S,
    DownloadError,
    DownloadFailures,
    DownloadResult,
    RemoteFile,
    dandi_client,
    dandiset_files,
    one_line,
    resolve_nlb_files,
    retry_after_s,
    unresolved,
)
from neurodyn.errors import InputError, Stopped, named


def sha256_of(path: str | os.PathLike, chunk_size: int = _CHUNK,
              advance: Callable[[int], None] | None = None) -> str:
    """Hex sha256 of a file, read in chunks (``advance(n_bytes)`` is called per chunk)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
            if advance:
                advance(len(chunk))
    return digest.hexdigest()


def file_digests(path: str | os.PathLike, etag: bool = True, chunk_size: int = _CHUNK,
                 advance: Callable[[int], None] | None = None) -> dict[str, str]:
    """``{"sha256": hex, "dandi-etag": str}`` of a file in one pass (the etag only when ``etag``).

    The DANDI etag is computed by ``dandischema``'s :class:`DandiETag` (md5 of the part md5s).
    """
    from dandischema.digests.dandietag import DandiETag

    sha = hashlib.sha256()
    tagger = DandiETag(os.path.getsize(path)) if etag else None
    with open(path, "rb") as handle:
        if tagger is None:
            while chunk := handle.read(chunk_size):
                sha.update(chunk)
                if advance:
                    advance(len(chunk))
        else:
            for part in tagger.get_parts():
                pieces, left = [], part.size
                while left:
                    piece = handle.read(min(chunk_size, left))
                    if not piece:
                        break
                    sha.update(piece)
                    pieces.append(piece)
                    left -= len(piece)
                    if advance:
                        advance(len(piece))
                tagger.update(b"".join(pieces))
    out = {"sha256": sha.hexdigest()}
    if tagger is not None:
        out["dandi-etag"] = tagger.as_str()
    return out


def verify(remote: RemoteFile, path: str | os.PathLike,
           advance: Callable[[int], None] | None = None) -> tuple[str | None, tuple[str, ...]]:
    """(None, checked digests) when ``path`` matches ``remote``; else (why, ()) on one line."""
    size = os.path.getsize(path)
    if size != remote.size:
        return f"size {size} != {remote.size}", ()
    got = file_digests(path, etag=remote.dandi_etag is not None, advance=advance)
    checked = []
    if remote.sha256:
        if got["sha256"] != remote.sha256:
            return f"sha256 {got['sha256']} != {remote.sha256}", ()
        checked.append("sha256")
    if remote.dandi_etag:
        if got["dandi-etag"] != remote.dandi_etag:
            return f"dandi-etag {got['dandi-etag']} != {remote.dandi_etag}", ()
        checked.append("dandi-etag")
    return None, tuple(checked)


# --------------------------------------------------------------------------------------------------
# transfer
# --------------------------------------------------------------------------------------------------
class _Restart(Exception):
    """The server ignored the Range request: the ``.part`` file must start over."""


def _transfer(session, remote: RemoteFile, part: Path, timeout: float, chunk_size: int,
              advance: Callable[[int], None]) -> tuple[int, int]:
    """Append the missing bytes of ``remote`` to ``part`` over ``session``; returns (bytes received, the
    offset the server started at: 0 when it ignored the Range request and the file started over).

    Raises ``requests`` errors on network / HTTP failures (the ``.part`` keeps what arrived),
    ConnectionError when the stream ends early, and DownloadError (the ``.part`` removed) when the answer
    states that the server holds another size than ``remote.size``, fewer bytes or more.
    """
    offset = part.stat().st_size if part.exists() else 0
    if offset >= remote.size:
        if remote.size == 0:  # an empty file: nothing to ask for, the .part is the (empty) file to verify
            part.touch()
        return 0, offset
    import urllib3

    headers = {"Accept-Encoding": "identity"}  # byte ranges of the file itself
    if offset:
        headers["Range"] = f"bytes={offset}-"
    # requests keeps the Range header across the API's redirect to the storage bucket
    with session.get(remote.url, headers=headers, stream=True, timeout=timeout) as response:
        held = _size_held(response)
        if held is not None and held != remote.size:  # no run can ever get DANDI's file from this server
            kept = part.exists()
            if kept:
                part.unlink()
            raise DownloadError(f"{remote.name}: the server holds {held:,} bytes, DANDI states {remote.size:,} "
                                f"({remote.url}){'; the partial file was removed' if kept else ''}")
        if response.status_code == 416 and offset:  # the server thinks the .part already covers the file
            part.unlink()
            advance(-offset)
            raise _Restart()
        response.raise_for_status()
        start = 0
        if offset and response.status_code == 206:
            content_range = response.headers.get("Content-Range", "")
            match = re.match(r"bytes (\d+)-", content_range)
            if not match or int(match.group(1)) != offset:
                raise DownloadError(f"{remote.name}: asked for bytes {offset}-, got Content-Range {content_range!r}")
            start = offset
        received, out = 0, None
        with contextlib.ExitStack() as stack:
            try:
                # read1 (urllib3 >= 2): whatever has arrived, up to chunk_size, so a cut keeps every byte
                # received; urllib3 1.x falls back to read (a cut loses the last partial chunk)
                read = getattr(response.raw, "read1", None) or response.raw.read
                while chunk := read(chunk_size):
                    if out is None:  # opened with the first byte: an answer bringing none leaves the .part as it was
                        if offset and not start:
                            advance(-offset)  # the server ignored Range and sends the whole file: rewind the bar
                        out = stack.enter_context(open(part, "ab" if start else "wb"))
                    out.write(chunk)
                    received += len(chunk)
                    advance(len(chunk))
                    if start + received > remote.size:
                        break
            except urllib3.exceptions.HTTPError as err:
                raise ConnectionError(one_line(err, 200)) from None
    have = part.stat().st_size if part.exists() else 0
    if have < remote.size:
        raise ConnectionError(f"stream ended after {have} of {remote.size} bytes")
    return received, start


def _size_held(response) -> int | None:
    """The size of the file on the server, from an answer that states it: ``Content-Range: bytes */N``
    (416) or ``bytes a-b/N`` (206), ``Content-Length`` of a complete (200) answer; None otherwise."""
    if response.status_code in (206, 416):
        match = re.fullmatch(r"bytes (?:\*|\d+-\d+)/(\d+)", response.headers.get("Content-Range", "").strip())
        return int(match.group(1)) if match else None
    if response.status_code == 200 and response.headers.get("Content-Encoding", "identity") == "identity":
        length = response.headers.get("Content-Length", "")
        return int(length) if length.isdigit() else None
    return None


_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
_LOCAL_ERRNOS = (*_DISK_FULL, errno.EROFS, errno.EACCES, errno.EPERM)


def _local_error(err: BaseException) -> bool:
    """An OSError of this machine's disk (full, read-only, no permission) while writing the ``.part``: not
    retryable, and no network error (those come as ``requests`` / urllib3 errors or ConnectionError)."""
    import requests

    return (isinstance(err, OSError) and not isinstance(err, (requests.RequestException, ConnectionError))
            and err.errno in _LOCAL_ERRNOS)


def _retryable(err: BaseException) -> bool:
    """Network errors, 5xx, 408 and 429 are worth another attempt; a host name that does not resolve (no
    network, or no such name) and other HTTP errors are not."""
    if unresolved(err) is not None:
        return False
    response = getattr(err, "response", None)
    code = getattr(response, "status_code", None)
    return code is None or code >= 500 or code in (408, 429)


def _http_reason(err: BaseException) -> str:
    import requests

    if isinstance(err, requests.TooManyRedirects):  # its response is the last redirect: "HTTP 302" misleads
        return f"too many redirects (a redirect loop?; last to {_location(err)})"
    response = getattr(err, "response", None)
    if response is not None and getattr(response, "status_code", None):
        return f"HTTP {response.status_code} {response.reason or ''}".strip()
    found = unresolved(err)
    if found is not None:
        return str(found)
    reason = err
    while getattr(reason, "__context__", None) is not None and not str(reason):
        reason = reason.__context__
    return one_line(f"{type(reason).__name__}: {reason}", 200)


def _location(err: BaseException) -> str:
    response = getattr(err, "response", None)
    return (response.headers.get("Location") if response is not None else None) or "?"


def _fetch_part(session, remote: RemoteFile, dest: Path, part: Path, retries: int, backoff_s: float,
                timeout: float, chunk_size: int, advance, finish, log) -> tuple[int, bool, tuple[str, ...]]:
    """Bring ``part`` to the complete, verified file (resuming it); returns (bytes received, resumed, checked)."""
    if part.exists() and part.stat().st_size > remote.size:
        part.unlink()
    resumed = part.exists() and part.stat().st_size > 0
    if resumed:
        advance(part.stat().st_size)
        if log:
            log(f"resuming {part} at {part.stat().st_size:,} of {remote.size:,} bytes")
    received = 0
    while True:
        got, resumed, earlier = _fetch_attempts(session, remote, dest, part, retries, backoff_s, timeout,
                                                chunk_size, advance, finish, resumed)
        received += got
        why, checked = verify(remote, part)
        if why is None:
            finish()
            return received, resumed, checked
        advance(-part.stat().st_size)
        part.unlink()
        if not earlier:
            finish()
            raise DownloadError(f"{dest}: verification failed ({why}); the partial file was removed")
        # bytes an earlier run kept did not verify (damaged, or the start of another file at this path):
        # the file is fetched once more from the start in this run, not left for a failed run and a rerun
        if log:
            log(f"{part} (begun by an earlier run) did not verify ({why}): downloading the file from the start")
        resumed = False


def _fetch_attempts(session, remote: RemoteFile, dest: Path, part: Path, retries: int, backoff_s: float,
                    timeout: float, chunk_size: int, advance, finish, resumed: bool) -> tuple[int, bool, bool]:
    """Transfer into ``part`` until it holds ``remote.size`` bytes, retrying; returns (bytes received,
    resumed, whether bytes that were in ``part`` before the call are still in it)."""
    import requests

    received, attempt, earlier = 0, 0, resumed
    while True:
        wait = None
        try:
            got, started_at = _transfer(session, remote, part, timeout, chunk_size, advance)
            received += got
            resumed = resumed and started_at > 0
            earlier = earlier and started_at > 0
            break
        except _Restart:
            resumed = earlier = False
            continue
        except DownloadError:
            finish()
            raise
        except (OSError, requests.RequestException) as err:
            have = part.stat().st_size if part.exists() else 0
            if _local_error(err):  # the disk, not the network: another attempt would fail the same way
                finish()
                kept = (f"; {part} kept ({have:,} of {remote.size:,} bytes, a correct prefix): free space and "
                        "run again to resume") if have else ""
                what = "disk full while writing" if err.errno in _DISK_FULL else "cannot write"
                raise InputError(f"{what} ({os.strerror(err.errno)}){kept}", path=dest,
                                 field=named(None, "--out")) from None
            if not _retryable(err):
                finish()
                if unresolved(err) is not None:  # no network: the .part is worth keeping
                    keep = f"; run again to resume from {part.name}" if have else ""
                    raise DownloadError(f"{dest}: {_http_reason(err)} ({remote.url}){keep}") from None
                raise DownloadError(f"{dest}: {_http_reason(err)} from {remote.url}") from None
            wait = retry_after_s(err)
            if attempt >= retries or (wait is not None and wait > MAX_RETRY_AFTER_S):
                finish()
                keep = f"; run again to resume from {part.name}" if have else ""
                asks = f"; the server asks to wait {wait:.0f} s" if wait is not None else ""
                raise DownloadError(f"{dest}: transfer interrupted at {have} of {remote.size} bytes "
                                    f"({_http_reason(err)}{asks}){keep}") from None
        attempt += 1
        time.sleep(max(backoff_s * attempt, wait or 0.0))  # a server's Retry-After, when longer, is honoured
        resumed = resumed or (part.exists() and part.stat().st_size > 0)
    return received, resumed, earlier


def fetch_file(remote: RemoteFile, dest: str | os.PathLike, *, session=None, retries: int = 3,
               backoff_s: float = 2.0, timeout: float = 60.0, chunk_size: int = _CHUNK, progress=None,
               overwrite: bool = False, log: Callable[[str], None] | None = None) -> DownloadResult:
    """Download one file to ``dest`` with resume, verification and an atomic final rename.

    Parameters
    ----------
    remote
        What to fetch and how to verify it.
    dest
        Final path; ``<dest>.part`` holds bytes in transit and is resumed by the next call.
    session
        A ``requests.Session`` (the DANDI client's); a new one when None.
    retries
        Further attempts (each resuming) after a network error or a 5xx / 408 / 429 answer,
        ``backoff_s * attempt`` seconds apart, or the answer's ``Retry-After`` when that is longer (one
        longer than :data:`~neurodyn.data.dandi.MAX_RETRY_AFTER_S` ends the attempts at once, naming it).
        When all fail the ``.part`` file is kept for a later run.
        A host name that does not resolve (no network) fails at once, without retries.
    timeout
        Seconds each request waits for the server to connect or to send the next bytes (a socket timeout). It
        bounds each wait, not the whole transfer: a server that keeps sending, however slowly, is not cut off
        (a multi-GB file over a slow link still arrives); one silent for ``timeout`` s is cut and retried.
    progress
        A ``rich.progress.Progress`` to report to, or None.
    overwrite
        Replace an existing ``dest`` that does not verify (otherwise that is refused).
    log
        Receives one line when a ``.part`` file is resumed, and one when its bytes did not verify and the
        file is fetched again from the start.

    Returns
    -------
    DownloadResult

    Raises
    ------
    DownloadError
        Network failure after all retries (``.part`` kept); a server whose answer states another size
        than ``remote.size`` (at once, ``.part`` deleted); or a size / digest mismatch after a
        complete transfer (``.part`` deleted; a ``.part`` resumed from an earlier call is first fetched
        once more from the start); no file is then left under ``dest``.
    InputError
        ``dest`` exists, does not verify, and ``overwrite`` is False; or ``dest`` is a folder; or ``<dest>.part``
        is a folder, a symbolic link or no regular file (refused, untouched, before any request); or the disk
        is full (or not writable) while writing ``.part``: not retried, the ``.part`` kept (a correct prefix).
    Stopped
        Ctrl-C / SIGTERM during the transfer with bytes in ``.part``: the message names the ``.part`` kept
        (bytes of total) and that running again resumes it.
    """
    import requests

    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    if dest.is_dir():
        raise InputError("output path is a folder", dest)
    if part.is_symlink() or (part.exists() and not part.is_file()):
        # something else's, under the name of the partial file: resuming it can never work (a folder), or would
        # write through it (a link); never removed, never written
        what = ("a symbolic link" if part.is_symlink() else "a folder" if part.is_dir()
                else "no regular file")
        raise InputError(f"is {what}, not a partial download neurodyn wrote; move or remove it, then run again", part)
    task = progress.add_task(dest.name, total=remote.size) if progress is not None else None

    def advance(n: int) -> None:
        if task is not None:
            progress.advance(task, n)

    def finish() -> None:
        if task is not None:
            progress.remove_task(task)

    if dest.exists():
        from neurodyn.io.hdf5 import denied_reason

        # a file this user may not read cannot be verified (reading it was a PermissionError traceback): refused,
        # or replaced with overwrite as a file that differs would be
        denied = denied_reason(dest)
        why, checked = (denied, ()) if denied else verify(remote, dest)
        if why is None:
            advance(remote.size)
            finish()
            return DownloadResult(dest, "skipped", 0, checked)
        if not overwrite:
            finish()
            state = "cannot be checked against" if denied else "differs from"
            raise InputError(f"exists and {state} DANDI's file ({why}); pass "
                             f"{named('overwrite=True', '--overwrite')} to replace it", dest)
    session = session or requests.Session()
    from neurodyn.io import output_file

    have = part.stat().st_size if part.exists() else 0
    # neurodyn's output policy for the final file: checked up front (folder, disk space for what is
    # missing), a lock against a second download of the same file, renamed into place only when
    # verified. The .part file outside it is what a later run resumes.
    try:
        with output_file(dest, overwrite=overwrite, size_bytes=max(remote.size - have, 0),
                         field=named(None, "--out"), overwrite_name=named("overwrite=True", "--overwrite")) as tmp:
            received, resumed, checked = _fetch_part(session, remote, dest, part, retries, backoff_s, timeout,
                                                     chunk_size, advance, finish, log)
            os.replace(part, tmp)
    except KeyboardInterrupt as err:  # Ctrl-C / SIGTERM: the .part is kept on purpose, say so
        have = part.stat().st_size if part.exists() else 0
        if not have:
            raise
        import signal

        signum = getattr(err, "signum", signal.SIGINT)
        raise Stopped(signum, f"interrupted ({signal.Signals(signum).name}); kept {part} ({have:,} of "
                              f"{remote.size:,} bytes): running the command again resumes it") from None
    return DownloadResult(dest, "resumed" if resumed else "downloaded", received, checked)


def download(name_or_spec: str | Sequence[RemoteFile], out_dir: str | os.PathLike = "data", *,
             api_url: str | None = None, files: str = "both", version: str | None = None,
             retries: int = 3, backoff_s: float = 2.0, timeout: float = 60.0, progress: bool = False,
             overwrite: bool = False, log: Callable[[str], None] | None = None) -> list[DownloadResult]:
    """Download an NLB dataset (registry name) or explicit :class:`RemoteFile` records into ``out_dir``.

    Parameters
    ----------
    name_or_spec
        A registry name (``"mc_maze_small"``; looked up on DANDI with :func:`resolve_nlb_files`) or a
        list of :class:`RemoteFile` (e.g. from :func:`dandiset_files`).
    out_dir
        Output root; files land in ``<out_dir>/<record.name>``.
    api_url
        API root override (see :func:`api_root`).
    files, version
        ``"train"``, ``"test"`` or ``"both"``, and the dandiset version (registry names only).
    retries, backoff_s, timeout, overwrite, log
        See :func:`fetch_file`; ``timeout`` bounds each DANDI lookup request too.
    progress
        Show a ``rich`` progress bar on stderr (the CLI sets this).

    Returns
    -------
    list[DownloadResult]

    Raises
    ------
    DownloadFailures
        Of several files, some failed: every file was still tried, those that verified are in place; the
        exception lists the results and each failure. One file that fails raises its own error (see
        :func:`fetch_file`).
    Stopped
        Ctrl-C / SIGTERM stops every file (a ``.part`` in transit is kept, see :func:`fetch_file`); when earlier
        files were done, its ``results`` and ``failures`` (as :class:`DownloadFailures`') list them.

    Examples
    --------
    >>> [r.status for r in download("mc_maze_small", "data", files="test")]  # doctest: +SKIP
    ['downloaded']
    """
    client = None
    if isinstance(name_or_spec, str):
        client = dandi_client(api_url, timeout=timeout)
        remotes = resolve_nlb_files(name_or_spec, files=files, version=version, api_url=api_url, client=client)
    else:
        remotes = list(name_or_spec)
    return _download_with(client, remotes, out_dir, retries=retries, backoff_s=backoff_s, timeout=timeout,
                          progress=progress, overwrite=overwrite, log=log)


def download_dandiset(dandiset_id: str, out_dir: str | os.PathLike = "data", *, version: str | None = None,
                      glob: str | None = None, api_url: str | None = None, **kwargs) -> list[DownloadResult]:
    """Download the assets of a dandiset version matching ``glob`` (see :func:`dandiset_files`); ``timeout`` (in
    ``kwargs``, see :func:`fetch_file`) bounds the DANDI lookups too. Every file is tried when one fails
    (:class:`~neurodyn.data.dandi.DownloadFailures`, as :func:`download`)."""
    client = dandi_client(api_url, timeout=kwargs.get("timeout", 60.0))
    remotes = dandiset_files(dandiset_id, version, glob, client=client)
    return _download_with(client, remotes, out_dir, **kwargs)


def _download_with(client, remotes, out_dir, *, retries=3, backoff_s=2.0, timeout=60.0, progress=False,
                   overwrite=False, log=None) -> list[DownloadResult]:
    out_dir = Path(out_dir)
    for remote in remotes:
        relative = Path(remote.name)
        if relative.is_absolute() or ".." in relative.parts:
            raise InputError(f"destination must stay inside the output folder: {remote.name!r}", field="name")
    session = client.session if client is not None else None
    bar = _progress_bar() if progress else None
    results = []
    if bar is not None:
        bar.start()
    failures = []
    try:
        for remote in remotes:
            try:
                results.append(fetch_file(remote, out_dir / remote.name, session=session, retries=retries,
                                          backoff_s=backoff_s, timeout=timeout, progress=bar, overwrite=overwrite,
                                          log=log))
            except (DownloadError, InputError) as err:  # the other files are still tried (Ctrl-C stops all)
                if len(remotes) == 1:
                    raise
                failures.append((remote, err))
    except (Stopped, KeyboardInterrupt) as stop:  # Ctrl-C / SIGTERM stops all: what the earlier files came to
        if not (results or failures):
            raise
        if not isinstance(stop, Stopped):  # no byte of this file yet: nothing of it kept
            import signal

            signum = getattr(stop, "signum", signal.SIGINT)
            stop = Stopped(signum, f"interrupted ({signal.Signals(signum).name}) before any byte of "
                                   f"{out_dir / remote.name} arrived")
        stop.results, stop.failures = results, failures
        raise stop from None
    finally:
        if bar is not None:
            bar.stop()
    if failures:
        raise DownloadFailures(results, failures, len(remotes))
    return results


def _progress_bar():
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                    TimeRemainingColumn(), console=Console(stderr=True), transient=True)


# --------------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------------
