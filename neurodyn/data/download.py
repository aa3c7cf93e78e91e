"""``neurodyn download``: fetch NLB files from DANDI with resume and sha256 checks.

Each file is fetched over plain HTTP(S) with :mod:`urllib.request` from the DANDI asset URL
``<api>/assets/<asset_id>/download/`` (which redirects to the storage bucket), into
``<out>/<dandiset_id>/sub-<subject>/<file>`` -- the layout of ``dandi download``.

Integrity rules
---------------
- Bytes go to ``<file>.part``; an interrupted transfer leaves the ``.part`` file, and the next run
  resumes it with an HTTP ``Range`` request (a server that ignores ``Range`` restarts the file).
- Only a ``.part`` file whose size and sha256 match the registry is renamed to its final name, so a
  file under its final name is always complete; a mismatching ``.part`` is deleted.
- An existing final file is re-verified (size, then sha256): verified -> skipped; corrupted ->
  deleted and downloaded again.

The API root defaults to ``https://api.dandiarchive.org/api``; ``--base-url`` or the environment
variable ``NEURODYN_DANDI_API`` override it (tests point it at a loopback server). ``file://`` URLs are
also accepted in :class:`RemoteFile` records (local mirrors).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from neurodyn.errors import InputError

DEFAULT_API = "https://api.dandiarchive.org/api"
API_ENV_VAR = "NEURODYN_DANDI_API"
FILE_CHOICES = ("train", "test", "both")
_CHUNK = 1 << 20
_USER_AGENT = "neurodyn-download (+https://github.com/neurodyn)"


@dataclass(frozen=True)
class RemoteFile:
    """One file to fetch.

    Attributes
    ----------
    name
        Destination path relative to the output folder, POSIX style
        (e.g. ``"000140/sub-Jenkins/sub-Jenkins_ses-small_desc-test_ecephys.nwb"``).
    size
        Exact size in bytes.
    sha256
        Lower-case hex digest.
    url
        ``http(s)://`` or ``file://`` URL of the bytes (redirects are followed).
    """

    name: str
    size: int
    sha256: str
    url: str


class DownloadResult(NamedTuple):
    """Outcome for one file: final ``path``, ``status`` (``downloaded``, ``resumed``, ``skipped``)
    and the number of bytes transferred in this run."""

    path: Path
    status: str
    bytes_transferred: int


class DownloadError(OSError):
    """A transfer failed (network, server, or integrity); the message is one line naming the file."""


def api_root(base_url: str | None = None) -> str:
    """The DANDI API root: ``base_url``, else ``$NEURODYN_DANDI_API``, else the public API."""
    root = base_url or os.environ.get(API_ENV_VAR) or DEFAULT_API
    return root.rstrip("/")


def asset_url(asset_id: str, base_url: str | None = None) -> str:
    """Download URL of a DANDI asset: ``<api>/assets/<asset_id>/download/``.

    Examples
    --------
    >>> asset_url("abc", "http://127.0.0.1:8000/api/")
    'http://127.0.0.1:8000/api/assets/abc/download/'
    """
    return f"{api_root(base_url)}/assets/{asset_id}/download/"


# --------------------------------------------------------------------------------------------------
# registry (neurodyn.data.nlb.DATASETS)
# --------------------------------------------------------------------------------------------------
def nlb_dataset_names() -> list[str]:
    """Names accepted by :func:`nlb_remote_files` (keys of ``neurodyn.data.nlb.DATASETS``)."""
    from neurodyn.data import nlb

    return list(nlb.DATASETS)


def nlb_remote_files(dataset_name: str, *, files: str = "both",
                     base_url: str | None = None) -> list[RemoteFile]:
    """The NLB files of a dataset as :class:`RemoteFile` records, from the registry
    :data:`neurodyn.data.nlb.DATASETS` (read lazily).

    Parameters
    ----------
    dataset_name
        nlb_tools name (``"mc_maze_small"``) or DANDI title (``"MC_Maze_Small"``).
    files
        ``"train"``, ``"test"`` or ``"both"``.
    base_url
        API root override (see :func:`api_root`).

    Returns
    -------
    list[RemoteFile]
        Named ``<dandiset_id>/sub-<subject>/<file>`` (the ``dandi download`` layout).

    Raises
    ------
    InputError
        Unknown dataset or ``files`` value.

    Examples
    --------
    >>> [f.name for f in nlb_remote_files("mc_maze_small", files="test")]
    ['000140/sub-Jenkins/sub-Jenkins_ses-small_desc-test_ecephys.nwb']
    """
    from neurodyn.data.nlb import get_dataset

    if files not in FILE_CHOICES:
        raise InputError(f"must be one of {', '.join(FILE_CHOICES)}, got {files!r}", field="--files")
    dataset = get_dataset(dataset_name)
    return [
        RemoteFile(name=f"{dataset.dandiset_id}/{entry.dandi_path}", size=int(entry.size),
                   sha256=entry.sha256.lower(), url=asset_url(entry.asset_id, base_url))
        for entry in dataset.files if files in ("both", entry.kind)
    ]


# --------------------------------------------------------------------------------------------------
# transfer
# --------------------------------------------------------------------------------------------------
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


def _open_stream(url: str, offset: int, timeout: float):
    """Open ``url`` at byte ``offset``; return ``(stream, start)`` where ``start`` is where the
    stream really begins (0 when an HTTP server ignored the ``Range`` header)."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        handle = open(urllib.request.url2pathname(parsed.path), "rb")  # noqa: SIM115 (closed by caller)
        handle.seek(offset)
        return handle, offset
    if parsed.scheme not in ("http", "https"):
        raise DownloadError(f"{url}: unsupported URL scheme {parsed.scheme!r}")
    headers = {"User-Agent": _USER_AGENT}
    if offset:
        # A plain header (not an "unredirected" one) so urllib repeats it after the 302 to the blob.
        headers["Range"] = f"bytes={offset}-"
    response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    if offset and response.status == 206:
        content_range = response.headers.get("Content-Range", "")
        match = re.match(r"bytes (\d+)-", content_range)
        if not match or int(match.group(1)) != offset:
            response.close()
            raise DownloadError(f"{url}: asked for bytes {offset}-, got Content-Range {content_range!r}")
        return response, offset
    return response, 0


def _transfer(remote: RemoteFile, part: Path, timeout: float, chunk_size: int,
              advance: Callable[[int], None]) -> int:
    """Append the missing bytes of ``remote`` to ``part``; returns the bytes received.

    Raises on network errors (the ``.part`` file keeps what arrived) and when the stream ends early.
    """
    offset = part.stat().st_size if part.exists() else 0
    if offset >= remote.size:
        return 0
    try:
        stream, start = _open_stream(remote.url, offset, timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416:  # the server thinks our .part already covers the file: start over
            part.unlink()
            stream, start = _open_stream(remote.url, 0, timeout)
        else:
            raise
    received = 0
    with stream, open(part, "ab" if start else "wb") as out:
        if start != offset:
            advance(start - offset)  # server restarted the file: rewind the bar
        while chunk := stream.read(chunk_size):
            out.write(chunk)
            received += len(chunk)
            advance(len(chunk))
            if start + received > remote.size:
                break
    have = part.stat().st_size
    if have < remote.size:
        raise ConnectionError(f"stream ended after {have} of {remote.size} bytes")
    return received


def fetch_file(remote: RemoteFile, dest: str | os.PathLike, *, retries: int = 3, backoff_s: float = 2.0,
               timeout: float = 60.0, chunk_size: int = _CHUNK, progress=None) -> DownloadResult:
    """Download one file to ``dest`` with resume, verification and an atomic final rename.

    Parameters
    ----------
    remote
        What to fetch and how to verify it.
    dest
        Final path; ``<dest>.part`` holds bytes in transit.
    retries
        Further attempts (each resuming) after a network error; ``backoff_s * attempt`` seconds
        apart. When all fail the ``.part`` file is kept for a later run.
    timeout
        Socket timeout in seconds.
    chunk_size
        Bytes per read.
    progress
        A ``rich.progress.Progress`` to report to, or None.

    Returns
    -------
    DownloadResult

    Raises
    ------
    DownloadError
        Network failure after all retries (``.part`` kept), or size / sha256 mismatch after a
        complete transfer (``.part`` deleted); no file is then left under ``dest``.
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    task = progress.add_task(dest.name, total=remote.size) if progress is not None else None

    def advance(n: int) -> None:
        if task is not None:
            progress.advance(task, n)

    def finish() -> None:
        if task is not None:
            progress.remove_task(task)

    if dest.exists():
        if dest.stat().st_size == remote.size and sha256_of(dest, chunk_size) == remote.sha256:
            advance(remote.size)
            finish()
            return DownloadResult(dest, "skipped", 0)
        # A corrupted or truncated final file must not pass for a good one.
        dest.unlink()

    resumed = part.exists() and 0 < part.stat().st_size
    if part.exists() and part.stat().st_size > remote.size:
        part.unlink()
        resumed = False
    if part.exists():
        advance(part.stat().st_size)
    received, attempt = 0, 0
    while True:
        try:
            received += _transfer(remote, part, timeout, chunk_size, advance)
            break
        except DownloadError:
            finish()
            raise
        except urllib.error.HTTPError as err:
            # Client errors will not heal by retrying; 5xx, 408 and 429 may.
            if (err.code < 500 and err.code not in (408, 429)) or attempt >= retries:
                finish()
                raise DownloadError(f"{dest}: HTTP {err.code} {err.reason} from {remote.url}") from None
        except (OSError, http.client.HTTPException) as err:
            if attempt >= retries:
                finish()
                have = part.stat().st_size if part.exists() else 0
                raise DownloadError(f"{dest}: transfer interrupted at {have} of {remote.size} bytes "
                                    f"({_reason(err)}); run again to resume from {part.name}") from None
        attempt += 1
        time.sleep(backoff_s * attempt)
        resumed = True

    size = part.stat().st_size
    digest = sha256_of(part, chunk_size)
    finish()
    if size != remote.size or digest != remote.sha256:
        part.unlink()
        what = (f"size {size} != {remote.size}" if size != remote.size
                else f"sha256 {digest} != {remote.sha256}")
        raise DownloadError(f"{dest}: verification failed ({what}); the partial file was removed")
    os.replace(part, dest)
    return DownloadResult(dest, "resumed" if resumed else "downloaded", received)


def _reason(err: BaseException) -> str:
    reason = getattr(err, "reason", None) or err
    return " ".join(f"{type(reason).__name__}: {reason}".split())


def download(name_or_spec: str | Sequence[RemoteFile], out_dir: str | os.PathLike = "data", *,
             base_url: str | None = None, files: str = "both", retries: int = 3, backoff_s: float = 2.0,
             timeout: float = 60.0, progress: bool = False) -> list[DownloadResult]:
    """Download an NLB dataset (or explicit :class:`RemoteFile` records) into ``out_dir``.

    Parameters
    ----------
    name_or_spec
        A registry name (``"mc_maze_small"``) or a list of :class:`RemoteFile`.
    out_dir
        Output root; files land in ``<out_dir>/<record.name>``
        (``<dandiset_id>/sub-<subject>/<file>`` for registry datasets).
    base_url
        API root override for registry datasets (see :func:`api_root`).
    files
        ``"train"``, ``"test"`` or ``"both"`` (registry datasets only).
    retries, backoff_s, timeout
        See :func:`fetch_file`.
    progress
        Show a ``rich`` progress bar on stderr (the CLI sets this).

    Returns
    -------
    list[DownloadResult]

    Examples
    --------
    >>> [r.status for r in download("mc_maze_small", "data", files="test")]  # doctest: +SKIP
    ['downloaded']
    """
    if isinstance(name_or_spec, str):
        remotes = nlb_remote_files(name_or_spec, files=files, base_url=base_url)
    else:
        remotes = list(name_or_spec)
    out_dir = Path(out_dir)
    for remote in remotes:
        relative = Path(remote.name)
        if relative.is_absolute() or ".." in relative.parts:
            raise InputError(f"destination must stay inside the output folder: {remote.name!r}", field="name")
    bar = _progress_bar() if progress else None
    results = []
    if bar is not None:
        bar.start()
    try:
        for remote in remotes:
            results.append(fetch_file(remote, out_dir / remote.name, retries=retries, backoff_s=backoff_s,
                                      timeout=timeout, progress=bar))
    finally:
        if bar is not None:
            bar.stop()
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
def build_parser() -> argparse.ArgumentParser:
    """The ``neurodyn download`` parser."""
    parser = argparse.ArgumentParser(
        prog="neurodyn download",
        description="Download NLB NWB files from DANDI (resumable, sha256-verified) into "
                    "<out>/<dandiset_id>/sub-<subject>/<file>.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("name", metavar="NAME", nargs="?", help="dataset name, e.g. mc_maze_small")
    parser.add_argument("--out", type=Path, default=Path("data"), help="output root folder")
    parser.add_argument("--files", choices=FILE_CHOICES, default="both", help="which NLB files")
    parser.add_argument("--base-url", default=None,
                        help=f"DANDI API root (default ${API_ENV_VAR} or {DEFAULT_API})")
    parser.add_argument("--retries", type=int, default=3, help="resuming retries after a network error")
    parser.add_argument("--timeout", type=float, default=60.0, help="socket timeout in seconds")
    parser.add_argument("--list", action="store_true", help="list the known dataset names and exit")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def cli_main(argv: list[str]) -> int:
    """Entry point of ``neurodyn download``; 0 ok, 1 transfer failure, 2 bad input."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as stop:  # argparse printed usage or help
        return stop.code if isinstance(stop.code, int) else 2
    if args.list:
        for name in nlb_dataset_names():
            print(name)
        return 0
    if not args.name:
        raise InputError("a dataset name is required (see --list)", field="NAME")
    if args.retries < 0:
        raise InputError(f"must be >= 0, got {args.retries}", field="--retries")
    if args.out.exists() and not args.out.is_dir():
        raise InputError("exists and is not a folder", args.out, "--out")
    try:
        results = download(args.name, args.out, base_url=args.base_url, files=args.files,
                           retries=args.retries, timeout=args.timeout, progress=not args.no_progress)
    except DownloadError as err:
        print(f"neurodyn download: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 1
    for result in results:
        size = result.path.stat().st_size
        print(f"{result.status:<10} {result.path} ({size:,} bytes, sha256 verified)")
    return 0
