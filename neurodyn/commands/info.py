"""``neurodyn info FILE|URL``: a summary of an NWB file or folder, a prepared file or any HDF5 file.

What it reads and prints: :func:`neurodyn.data.info.info`.
"""

from __future__ import annotations

from neurodyn.data.info import info
from neurodyn.errors import ArgumentParser

__all__ = ["cli_main"]


def cli_main(argv: list[str]) -> int:
    """Entry point of ``neurodyn info``; returns the exit code."""
    parser = ArgumentParser(
        prog="neurodyn info",
        description="Summarise an NWB file or folder, a prepared file, or any HDF5 file.",
    )
    parser.add_argument(
        "file",
        help="NWB file / folder, `neurodyn prepare` output, LFADS-format or other HDF5; or a dandi:// or "
        "https:// URL (streamed, not downloaded)",
    )
    parser.add_argument("--max-rows", type=int, default=200, help="datasets listed for generic HDF5 files")
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:
        return int(stop.code or 0)
    if args.max_rows < 0:  # a negative count listed all but its last rows and miscounted the rest
        from neurodyn.errors import InputError

        raise InputError(f"must be >= 0, got {args.max_rows}", field="--max-rows")
    info(args.file, max_rows=args.max_rows)
    return 0
