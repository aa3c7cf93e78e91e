"""``neurodyn evaluate``: NLB metrics of a submission-layout file against the eval targets.

Example (shell)::

    neurodyn evaluate --target mc_maze_val.h5 --pred mc_maze_pred.h5 [--json] [--upsample 5]

Bad input is one line and exit code 2 through :mod:`neurodyn.cli`. The metrics: :mod:`neurodyn.metrics`.
"""

from __future__ import annotations

import json
import os

from neurodyn.errors import ArgumentParser, InputError

__all__ = ["cli_main"]


def _print_table(results: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="NLB metrics")
    table.add_column("split")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for entry in results:
        for split, metrics in entry.items():
            for key, value in metrics.items():
                table.add_row(split, key, f"{value:.4f}")
    Console().print(table)


def cli_main(argv: list[str]) -> int:
    """``neurodyn evaluate``: NLB metrics of a submission-layout file against eval targets."""
    from neurodyn.metrics.evaluate import evaluate, load_target
    from neurodyn.metrics.submission import read_submission

    parser = ArgumentParser(prog="neurodyn evaluate", description=cli_main.__doc__)
    parser.add_argument(
        "--target",
        required=True,
        nargs="+",
        metavar="FILE",
        help="prepare file(s) (their eval_target group) or nlb_tools eval-target .h5 file(s)",
    )
    parser.add_argument(
        "--pred",
        required=True,
        metavar="FILE",
        help="predictions in the NLB submission layout (rates in spikes per bin)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the result list as JSON instead of a table"
    )
    parser.add_argument(
        "--upsample",
        type=int,
        metavar="MS",
        help="also score each coarser prediction group at MS ms (a 20 ms model at 5 ms: every bin's "
        "rate split evenly over its finer bins); coarse groups without a target are then skipped",
    )
    args = parser.parse_args(argv)
    for path in args.target:
        if os.path.exists(path) and os.path.exists(args.pred) and os.path.samefile(path, args.pred):
            raise InputError("is given as both --target and --pred; --pred takes the predictions (the output "
                             "of neurodyn baseline / predict / submit)", path=args.pred, field="--pred")
    targets: dict = {}
    for path in args.target:
        for name, group in load_target(path).items():
            if name in targets:
                raise InputError(
                    f"group '{name}' appears in more than one target file", path=path, field=name
                )
            targets[name] = group
    prediction = read_submission(args.pred)
    if args.upsample is not None:
        from neurodyn.metrics.resample import upsample_submission

        prediction = {k: v for k, v in upsample_submission(prediction, args.upsample).items() if k in targets}
    try:
        results = evaluate(targets, prediction)
    except InputError as err:
        # the in-memory call cannot know the file names: add the prediction file when missing
        if err.path is None:
            raise InputError(err.message, path=args.pred, field=err.field) from None
        raise
    if args.json:
        print(json.dumps(results))
    else:
        _print_table(results)
    return 0
