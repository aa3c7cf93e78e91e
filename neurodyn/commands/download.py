"""``neurodyn download``: NLB datasets (by registry name) or any dandiset's assets from DANDI.

The client, resume and verification: :mod:`neurodyn.data.download`.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

from neurodyn.data.dandi import (
    API_ENV_VAR,
    DEFAULT_API,
    FILE_CHOICES,
    DownloadError,
    DownloadFailures,
    api_host,
    check_api_url,
    nlb_dataset_names,
    nlb_remote_files,
)
from neurodyn.data.download import download, download_dandiset
from neurodyn.errors import ArgumentParser, CommandFailed, InputError, Stopped, command_line_names, one_line

__all__ = ["build_parser", "cli_main"]


def build_parser() -> argparse.ArgumentParser:
    """The ``neurodyn download`` parser."""
    parser = ArgumentParser(
        prog="neurodyn download",
        description="Download NLB NWB files (by registry name) or any dandiset's assets from DANDI -- "
                    "resumable, size + sha256 + dandi-etag verified -- into <out>/<dandiset_id>/<path>. Of "
                    "several files, one that fails does not stop the others: each failure is one line, the "
                    "verified files are kept, exit 1 (2 when a failure is bad input).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("name", metavar="NAME", nargs="?", help="NLB dataset name, e.g. mc_maze_small")
    parser.add_argument("--dandiset", default=None, help="a dandiset id instead of NAME, e.g. 000140")
    parser.add_argument("--version", default=None,
                        help="dandiset version (default: the registry's for NAME, the latest published "
                             "for --dandiset)")
    parser.add_argument("--path", default=None, metavar="GLOB",
                        help="with --dandiset: asset paths to fetch, e.g. 'sub-Jenkins/*test*.nwb'")
    parser.add_argument("--out", type=Path, default=Path("data"), help="output root folder")
    parser.add_argument("--files", choices=FILE_CHOICES, default="both",
                        help="which NLB files (NAME only; refused with --dandiset)")
    parser.add_argument("--api-url", "--base-url", dest="api_url", default=None,
                        help=f"DANDI API root (default ${API_ENV_VAR}, else the dandi library's default, "
                             f"{DEFAULT_API})")
    parser.add_argument("--retries", type=int, default=3, help="resuming retries after a network error")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds each request waits for the server to connect or send the next bytes (DANDI "
                             "lookups and transfers). It bounds each wait, not a whole transfer: a server still "
                             "sending, however slowly, is not cut off; a stalled one is cut and retried, resuming")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace existing files that differ from DANDI's (verified ones are skipped)")
    parser.add_argument("--list", action="store_true", help="list the registry's dataset names and exit")
    parser.add_argument("--no-progress", action="store_true",
                        help="hide the progress bar and the line naming the server contacted")
    return parser


def cli_main(argv: list[str]) -> int:
    """Entry point of ``neurodyn download``; 0 ok, 1 lookup / transfer failure, 2 bad input.

    Of several files, each is tried when one fails: each failure is one line, then a line counting them; exit 2
    when any failure is bad input, else 1.

    Failures are raised (:class:`~neurodyn.errors.InputError`, :class:`~neurodyn.errors.CommandFailed`) and
    printed as one line by :func:`neurodyn.cli.main`."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as stop:  # --help
        return int(stop.code or 0)
    with command_line_names():  # the library's errors name --api-url, --path, --files, --out, --overwrite
        return _run(args)


def _run(args) -> int:
    if args.list:
        for name in nlb_dataset_names():
            print(name)
        return 0
    if bool(args.name) == bool(args.dandiset):
        what = "not both" if args.name else "neither was given"
        raise InputError(f"give a dataset NAME (see --list) or --dandiset ID ({what})", field="NAME")
    if args.path and not args.dandiset:
        raise InputError("--path selects assets of a --dandiset; with NAME use --files", field="--path")
    if args.retries < 0:
        raise InputError(f"must be >= 0, got {args.retries}", field="--retries")
    if not math.isfinite(args.timeout) or args.timeout <= 0:
        raise InputError(f"must be a number of seconds > 0, got {args.timeout}", field="--timeout")
    if args.files != "both" and args.dandiset:
        raise InputError("--files selects the files of a dataset NAME; with --dandiset use --path", field="--files")
    check_api_url(args.api_url)
    from neurodyn.io.hdf5 import refuse_denied

    # an --out behind a folder this user may not enter: Path.exists raised PermissionError (a traceback)
    refuse_denied(args.out, "--out", listing=False)
    if args.out.exists() and not args.out.is_dir():
        raise InputError("exists and is not a folder", args.out, "--out")

    if args.dandiset and not re.fullmatch(r"\d{6}", args.dandiset):
        raise InputError(f"a dandiset id has six digits, got {args.dandiset!r}", field="--dandiset")

    def say(line: str) -> None:
        print(f"neurodyn download: {line}", file=sys.stderr)

    if not args.no_progress:  # before the first request: a slow or absent network is not a silent wait
        if args.dandiset:
            what = f"dandiset {args.dandiset}" + (f" version {args.version}" if args.version else "")
            what += f", assets matching {args.path!r}" if args.path else ""
        else:
            count = len(nlb_remote_files(args.name, files=args.files, api_url=args.api_url))
            what = f"{count} asset(s) of {args.name}"
        say(f"contacting DANDI at {api_host(args.api_url)} for {what} …")
    options = dict(retries=args.retries, timeout=args.timeout, progress=not args.no_progress,
                   overwrite=args.overwrite, log=say)
    failed = None
    try:
        results = _download(args, options)
    except DownloadFailures as err:  # several files, some failed: each was tried, each failure on its line
        failed, results = err, err.results
    except DownloadError as err:  # a lookup or transfer failure, not bad input: exit code 1
        raise CommandFailed(one_line(err, 1000), exit_code=1) from err
    except Stopped as stop:  # Ctrl-C / SIGTERM on a later file: the earlier ones' lines, then the stop's
        _report(getattr(stop, "results", []), getattr(stop, "failures", []))
        raise
    _report(results, failed.failures if failed is not None else [])
    if failed is None:
        return 0
    kept = f"the {len(results)} verified kept" if results else "none verified"
    # bad input among them (an existing file that differs, ...) needs the user before a run can succeed: exit 2
    raise CommandFailed(f"{len(failed.failures)} of {failed.total} files failed (each named above); {kept}",
                        exit_code=2 if failed.bad_input else 1)


def _report(results: list, failures: list) -> None:
    """A line per file done (stdout), then one per file that failed (stderr)."""
    for result in results:
        size = result.path.stat().st_size
        checked = " + ".join(result.verified) or "size"
        print(f"{result.status:<10} {result.path} ({size:,} bytes, {checked} verified)")
    sys.stdout.flush()
    for _, err in failures:
        print(f"neurodyn download: error: {one_line(err, 1000)}", file=sys.stderr)


def _download(args, options: dict) -> list:
    if args.dandiset:
        return download_dandiset(args.dandiset, args.out, version=args.version, glob=args.path,
                                 api_url=args.api_url, **options)
    return download(args.name, args.out, api_url=args.api_url, files=args.files, version=args.version, **options)
