"""``neurodyn evaluate``: NLB metrics of a submission-layout file against the eval targets.

Example (shell)::

    neurodyn evaluate --target mc_maze_val.h5 --pred mc_maze_pred.h5 [--json] [--upsample 5]

Bad input is one line and exit code 2 through :mod:`neurodyn.cli`. The metrics: :mod:`neurodyn.metrics`.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

from neurodyn.errors import ArgumentParser, InputError, command_line_names
from neurodyn.metrics.resample import check_upsample_width

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
    Console(markup=False).print(table)  # a cell as written: no '[...]' of a key read as a style tag


def nwb_sources(attrs: dict) -> tuple | None:
    """The NWB files a prepared file was made from (their SHA-256s) and its phase, or None when unrecorded or
    when a digest is unknown (``""``: streamed from a plain URL)."""
    found = attrs.get("source_sha256")
    if found is None:
        return None
    digests = tuple(str(v) for v in np.atleast_1d(found))
    return None if "" in digests else (digests, attrs.get("phase"))  # "": a digest unknown, nothing to compare


def other_data_note(pred, targets) -> str | None:
    """A note when the prepared file a prediction file records (``data``) was made from other NWB files or
    another phase than a target file (by their ``source_sha256`` and ``phase``): same shapes, other trials,
    scored without a word before. The paths alone are not compared: a 20 ms model scored at 5 ms
    (``--upsample 5``) has a 5 ms target beside its 20 ms data file."""
    from neurodyn.io.hdf5 import root_attrs

    recorded = root_attrs(pred) or {}
    data = recorded.get("data")
    if not data or not os.path.isfile(str(data)):
        return None
    if recorded.get("data_source_sha256") is not None:  # as it was when predicted (it may be re-made since)
        # no phase recorded: the data file's (as it is now: re-made in place in another phase from the same
        # NWB files, a real difference goes unnoted; the data_sha256 check below still says it changed)
        phase = recorded.get("phase") or (root_attrs(str(data)) or {}).get("phase")
        made = nwb_sources({"source_sha256": recorded["data_source_sha256"], "phase": phase})
    else:
        made = nwb_sources(root_attrs(str(data)) or {})
    for target in targets:
        theirs = nwb_sources(root_attrs(target) or {})
        # other data: another phase (where both are known: a prediction file without its phase attribute was
        # called "None phase ... other data"; helper-58), or none of the same NWB files (a file prepared from the
        # train NWB file alone and one from the folder of the pair share it and hold the same val trials)
        if made is None or theirs is None:
            continue
        other_phase = None not in (made[1], theirs[1]) and made[1] != theirs[1]
        if other_phase or (made[0] and theirs[0] and not set(made[0]) & set(theirs[0])):
            return (f"note: {pred} was predicted from {data} (NWB sources {made[0][0][:12]}..., "
                    f"{made[1] or 'unrecorded'} phase); {target} was prepared from {theirs[0][0][:12]}... "
                    f"({theirs[1] or 'unrecorded'} phase): other data")
    if recorded.get("data_sha256") is not None:
        from neurodyn.io import file_digest

        if file_digest(str(data))["sha256"] != str(recorded["data_sha256"]):
            return (f"note: {data} has changed since {pred} was predicted from it (re-made in place?): the "
                    "predictions may be of other trials than the target's")
    return None


def check_not_trained_on(path, scored: str) -> None:
    """Refuse (one line naming ``path``) predictions whose model was trained on the evaluation trials they
    hold: ``trained_on_eval_trials`` > 0, recorded by ``neurodyn predict`` (a model fit on a test-phase file,
    whose ``train_input`` holds the train and val trials, asked for the val file's evaluation trials) and
    carried by ``ensemble``. ``scored``: what would be done with them ("scored", "submitted")."""
    from neurodyn.io.hdf5 import root_attrs

    record = root_attrs(path) or {}
    n = record.get("trained_on_eval_trials")
    if n is not None and int(n) > 0:
        raise InputError(f"its model was trained on {int(n)} of the evaluation trials it predicts (the run's data "
                         f"file {record.get('training_data', '?')} holds them in train_input; a test-phase file "
                         f"holds the train and val trials), so they cannot be {scored} as held out; use a model "
                         "fit on the val-phase file", path=path, field="trained_on_eval_trials")


def _check_phases(pred: str, targets: list[str]) -> None:
    """Predictions of one NLB phase scored against a target of another (test-phase predictions of the test
    trials against a val-phase target of the val trials): refused by phase, before any shape is compared."""
    from neurodyn.io.hdf5 import root_attrs

    theirs = (root_attrs(pred) or {}).get("phase")
    for target in targets:
        ours = (root_attrs(target) or {}).get("phase")
        if theirs and ours and theirs != ours:
            raise InputError(f"is a {theirs}-phase prediction and {target} a {ours}-phase target: they hold "
                             "other evaluation trials", path=pred, field="phase")


def _unscored_note(given: dict, prediction: dict, targets: dict, upsample: int | None) -> str | None:
    """A note naming the prediction groups that no target scores (a submission of several datasets or bin
    widths against one target; ``--upsample 5`` beside a 20 ms target). A coarse group whose ``--upsample``
    copy is scored is not named: that is what the option is for."""
    from neurodyn.data.prepared import group_name, parse_group_name

    def scored(name):
        if name in targets:
            return True
        dataset, _ = parse_group_name(name)
        return name in given and upsample is not None and group_name(dataset, upsample) in targets

    left = sorted(name for name in prediction if not scored(name))
    if not left or not prediction.keys() & targets.keys():
        return None
    return (f"note: not scored, no target given: {', '.join(left)} (targets: {', '.join(sorted(targets))}; "
            "--target takes several files)")


def _no_forward_note(prediction: dict, targets: dict, pred_path: str, target_paths: dict) -> list[str]:
    """Notes naming the scored groups whose target holds forward spikes but whose prediction has no forward
    rates (a model fit, or a baseline made, on a file prepared with ``--no-forward``): fp-bps is left out of
    their results, as nlb_tools leaves it out, but not without a word."""
    from neurodyn.data.prepared import FORWARD_RATES

    notes = []
    for name in sorted(prediction.keys() & targets.keys()):
        if "eval_spikes_heldin_forward" in targets[name] and not any(k in prediction[name] for k in FORWARD_RATES):
            notes.append(f"note: {pred_path}: {name}: no forward rates ({', '.join(FORWARD_RATES)}), so fp-bps "
                         f"is not computed although {target_paths[name]} holds forward spikes (predictions of a "
                         "file prepared with --no-forward have none)")
    return notes


def cli_main(argv: list[str]) -> int:
    """``neurodyn evaluate``: NLB metrics of a submission-layout file against eval targets."""
    with command_line_names():  # the library's errors name --target, --upsample (not its Python arguments)
        return _evaluate(argv)


def _evaluate(argv: list[str]) -> int:
    from neurodyn.metrics.evaluate import evaluate, load_target
    from neurodyn.metrics.submission import read_submission

    parser = ArgumentParser(prog="neurodyn evaluate", description=cli_main.__doc__)
    parser.add_argument(
        "--target",
        required=True,
        nargs="+",
        metavar="FILE",
        help="prepared file(s) (their eval_target group) or nlb_tools eval-target .h5 file(s)",
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
        type=check_upsample_width,
        metavar="MS",
        help="also score each coarser prediction group at MS ms (a 20 ms model at 5 ms: every bin's "
        "rate split evenly over its finer bins, each trial's bins lined up by the window starts the "
        "prediction and target files record); coarse groups without a target are then skipped",
    )
    args = parser.parse_args(argv)
    for path in args.target:
        if os.path.exists(path) and os.path.exists(args.pred) and os.path.samefile(path, args.pred):
            raise InputError("is given as both --target and --pred; --pred takes the predictions (the output "
                             "of neurodyn baseline / predict / submit)", path=args.pred, field="--pred")
    targets: dict = {}
    target_paths: dict = {}
    for path in args.target:
        for name, group in load_target(path).items():
            if name in targets:
                raise InputError(
                    f"group '{name}' appears in more than one target file", path=path, field=name
                )
            targets[name], target_paths[name] = group, path
    prediction = read_submission(args.pred)
    if not prediction:
        raise InputError("submission holds no dataset group", path=args.pred)
    _check_phases(args.pred, args.target)
    check_not_trained_on(args.pred, "scored")
    given = prediction
    notes: list = []
    if args.upsample is not None:
        from neurodyn.metrics.resample import (
            nothing_added_note,
            read_window_starts,
            upsample_offsets,
            upsample_submission,
        )

        try:
            # each trial's coarse window start (the prediction file) against its fine one (the target file)
            recorded = read_window_starts(args.pred)
            coarse = {name: (args.pred, recorded.get(name, {})) for name in prediction}
            fine = {name: (path, read_window_starts(path).get(name, {})) for name, path in target_paths.items()}
            offsets, notes = upsample_offsets(prediction, args.upsample, coarse, fine)
            prediction = upsample_submission(prediction, args.upsample, offsets)
        except InputError as err:
            raise InputError(err.message, path=err.path or args.pred, field=err.field) from None
        notes.append(nothing_added_note(given, prediction, args.upsample))
        if not prediction.keys() & targets.keys():
            raise InputError(
                f"nothing to score: no prediction group matches a target group (predictions: "
                f"{', '.join(sorted(prediction))} at --upsample {args.upsample}; targets: "
                f"{', '.join(sorted(targets))})", path=args.pred, field="--upsample")
    notes.append(_unscored_note(given, prediction, targets, args.upsample))
    if prediction.keys() & targets.keys():  # else evaluate names the group without a target (and a hint)
        prediction = {k: v for k, v in prediction.items() if k in targets}
    results = evaluate(targets, prediction, target_path=target_paths, prediction_path=args.pred)
    notes.extend(_no_forward_note(prediction, targets, args.pred, target_paths))
    notes.append(other_data_note(args.pred, args.target))
    for note in filter(None, notes):
        print(note, file=sys.stderr, flush=True)  # stderr: --json output stays one JSON document
    if args.json:
        print(json.dumps(results))
    else:
        _print_table(results)
    return 0
