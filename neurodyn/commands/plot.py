"""``neurodyn plot FILE [--out PNG]``: a summary figure of a prediction file, as PNG or, by the suffix of
--out, PDF, SVG, ...

The layouts it recognises and what it draws: :mod:`neurodyn.viz.prediction`.
"""

from __future__ import annotations

from neurodyn.errors import ArgumentParser, command_line_names
from neurodyn.viz.prediction import plot_file

__all__ = ["cli_main"]


def cli_main(argv: list[str]) -> int:
    """Entry point of ``neurodyn plot``; returns the exit code."""
    parser = ArgumentParser(prog="neurodyn plot", description=__doc__.split("\n\n")[0].replace("``", ""))
    parser.add_argument("file", help="prediction file (.h5) written by neurodyn predict / baseline / submit")
    parser.add_argument("--out", default=None,
                        help="figure to write; its suffix chooses the format: .png, .pdf, .svg, .eps, .jpg, ... "
                             "(default: FILE with the suffix .png)")
    parser.add_argument("--group", default=None,
                        help="NLB group to draw, e.g. mc_maze_small_20; required when the file holds several "
                             "(datasets or bin widths: the error lists them), else the file's one group")
    parser.add_argument("--trial", type=int, default=None, metavar="ROW",
                        help="row drawn on its own: an index into the file's rows, 0 .. rows - 1 (default 0), not "
                             "an NLB trial id or a sequence id (a simulation's sequence or trial, an LFADS file's "
                             "*_inds); the figure names the row's id beside it "
                             "('row 0 (NLB trial 100)', 'row 0 (sequence 8)'), and a row out of range "
                             "is refused with the ids the rows hold; refused for a file of no rows")
    parser.add_argument("--dpi", type=int, default=90,
                        help="dots per inch of raster output (PNG, JPEG, ...; in PDF / SVG only of the embedded "
                             "images) (default %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file (never the input)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help
        return int(stop.code or 0)
    from neurodyn.viz._common import offscreen_backend

    # a command draws into a file, never a window; the caller's backend and rcParams come back after it
    with offscreen_backend(), command_line_names():  # errors name --out, --overwrite, --group, ... (not out=, ...)
        out, layout, group = plot_file(args.file, args.out, group=args.group, trial=args.trial, dpi=args.dpi,
                                       overwrite=args.overwrite)
    print(f"wrote {out} ({layout} layout)" + (f": NLB group {group}" if group else ""))
    return 0
