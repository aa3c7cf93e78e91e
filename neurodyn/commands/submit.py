"""``neurodyn submit``: one validated EvalAI submission file (float32, gzip) from prediction files.

Example (shell)::

    neurodyn submit --pred large.h5 medium.h5 small.h5 \\
        --prepared large_test.h5 medium_test.h5 small_test.h5 --out submission.h5

Writes under :func:`neurodyn.io.output_file` (``--overwrite`` to replace a file; never onto an input). Bad
input is one line and exit code 2 through :mod:`neurodyn.cli`.
"""

from __future__ import annotations

import os

from neurodyn.errors import ArgumentParser, InputError, command_line_names
from neurodyn.metrics.resample import check_upsample_width

__all__ = ["cli_main"]


def cli_main(argv: list[str]) -> int:
    """``neurodyn submit``: one validated EvalAI submission file (float32, gzip) from prediction files."""
    with command_line_names():  # the library's errors and notes name --upsample, --prepared, --out, ...
        return _submit(argv)


def _submit(argv: list[str]) -> int:
    parser = ArgumentParser(prog="neurodyn submit", description=cli_main.__doc__)
    parser.add_argument(
        "--pred",
        required=True,
        nargs="+",
        metavar="FILE",
        help="prediction file(s) in the submission layout, one or more dataset groups each",
    )
    parser.add_argument("--out", required=True, metavar="FILE", help="submission file to write")
    parser.add_argument(
        "--prepared",
        nargs="+",
        default=[],
        metavar="FILE",
        help="prepared file(s) giving the exact expected shapes (else the registry's bins and "
        "units, any trial count)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file (never an input)")
    parser.add_argument(
        "--upsample",
        type=check_upsample_width,
        metavar="MS",
        help="add an MS ms group made from each coarser prediction group (a 20 ms model submitted at "
        "5 ms too: every bin's rate split evenly over its finer bins, each trial's bins lined up by the "
        "window starts of the prediction file and the MS ms --prepared file)",
    )
    args = parser.parse_args(argv)
    from neurodyn.io import output_file

    phases = _phases([*args.pred, *args.prepared])  # before anything is written
    from neurodyn.commands.evaluate import check_not_trained_on

    for path in args.pred:
        check_not_trained_on(path, "submitted")
    _check_prepared_sources(args.pred, args.prepared)
    size = sum(os.path.getsize(p) for p in args.pred if os.path.isfile(p))
    with output_file(args.out, inputs=[*args.pred, *args.prepared], overwrite=args.overwrite,
                     size_bytes=size) as tmp:
        groups = _submission(args, tmp, {"phase": next(iter(phases)) if phases else None,
                                         **_provenance(args.pred)})
    print(f"wrote {args.out}: {', '.join(groups)}" + (f" ({next(iter(phases))} phase)" if phases else ""))
    return 0


def _phases(paths) -> set[str]:
    """The NLB phases the files record (``neurodyn predict``, ``ensemble`` and ``baseline`` write ``phase``,
    and so does ``neurodyn prepare`` in the ``--prepared`` files); files of both phases in one submission are
    refused: EvalAI scores a val-phase and a test-phase submission apart."""
    from neurodyn.io.hdf5 import root_attrs

    found = {str(path): (root_attrs(path) or {}).get("phase") for path in paths}
    phases = {p for p in found.values() if p}
    if len(phases) > 1:
        listed = ", ".join(f"{path}: {phase}" for path, phase in found.items() if phase)
        raise InputError(f"mixes phases ({listed}); EvalAI scores val and test submissions apart",
                         path=next(iter(found)), field="phase")
    return phases


#: root attributes of a prediction file that its submission file keeps (the data the rates are of, by digest), so
#: ``ensemble`` and ``evaluate`` can still tell them, and the NWB unit id of each held-in / held-out column, so a
#: notebook can name a submission's columns as it names a prediction's (``--upsample``'s groups are of the same
#: units). No local path: a submission file is uploaded to EvalAI (``data``, ``checkpoint``, the ensemble members
#: are the user's paths); ``bin_ms`` is not kept (``--upsample`` adds groups of another width). Attributes cannot
#: change a score: nlb_tools' ``evaluation.evaluate``, which EvalAI runs, reads the dataset groups and their
#: arrays by key only (the root already carries ``phase`` and ``dataset``)
KEPT_ATTRS = ("dataset", "datamodule", "data_sha256", "data_source_sha256", "baseline", "trained_on_eval_trials",
              "heldin_unit_ids", "heldout_unit_ids")


def _provenance(paths) -> dict:
    """What the submission records of its prediction files: one file's :data:`KEPT_ATTRS` as they are; for
    several (datasets), ``submission_members``, JSON of each file's kept attributes (the unit ids as lists of
    ints; each entry's ``dataset`` names the groups its ids are of)."""
    import json

    import numpy as np

    from neurodyn.io.hdf5 import root_attrs

    records = [root_attrs(p) or {} for p in paths]
    kept = [{k: r[k] for k in KEPT_ATTRS if r.get(k) is not None} for r in records]
    if len(records) == 1:
        return kept[0]

    def plain(value):
        value = value.tolist() if isinstance(value, np.ndarray) else value
        return value.item() if isinstance(value, np.generic) else value

    return {"submission_members": json.dumps([{k: plain(v) for k, v in attrs.items()} for attrs in kept])}


def _check_prepared_sources(preds, prepared) -> None:
    """Refuse a ``--prepared`` file of a prediction's dataset made from none of the NWB files the predictions'
    data were made from (recorded ``data_source_sha256``): before, only the shapes were compared, so the
    prepared file of another session or simulation of the same sizes passed. Sharing one file is enough (a
    val-phase file prepared from the train NWB file alone and one from the folder of the pair hold the same
    trials). A source whose digest is unknown (``""``: streamed from a plain URL) cannot be compared: such a
    pair refuses nothing."""
    from neurodyn.commands.evaluate import nwb_sources
    from neurodyn.io.hdf5 import root_attrs

    for pred in preds:
        ours = root_attrs(pred) or {}
        made = nwb_sources({"source_sha256": ours.get("data_source_sha256")})  # None: unrecorded or unknown
        if made is None:
            continue
        made = set(made[0])
        for path in prepared:
            theirs = root_attrs(path) or {}
            other = nwb_sources(theirs)
            if other is None or (ours.get("dataset") and theirs.get("dataset")
                                 and str(ours["dataset"]) != str(theirs["dataset"])):
                continue
            other = set(other[0])
            if made and other and not made & other:  # a file prepared alone and one with its pair share it
                raise InputError(f"was prepared from other NWB files (SHA-256 {min(other)[:12]}...) than the data of "
                                 f"{pred} ({min(made)[:12]}...): the submission would be checked against other "
                                 "trials", path=path, field="source_sha256")


def _submission(args, tmp, attrs: dict) -> dict:
    """Read, check and write the submission of ``neurodyn submit`` to ``tmp`` (root attributes ``attrs``: the
    phase, so ``info`` and a later ``submit`` can tell it); returns the groups."""
    from neurodyn.data.prepared import parse_group_name
    from neurodyn.metrics.submission import (
        expected_shapes_from_prepared,
        expected_shapes_from_registry,
        read_submission,
        write_submission,
    )

    groups: dict = {}
    pred_of: dict = {}
    for path in args.pred:
        for name, group in read_submission(path).items():
            if name in groups:
                raise InputError(
                    f"group '{name}' appears in more than one prediction file", path=path, field=name
                )
            parse_group_name(name, path)
            groups[name], pred_of[name] = group, path
    expected: dict = {}
    shapes_from: dict = {}
    for path in args.prepared:
        for name, shapes in expected_shapes_from_prepared(path).items():
            if name in shapes_from:
                raise InputError(f"group '{name}' is also in --prepared {shapes_from[name]}: give one prepared "
                                 "file per group", path=path, field="--prepared")
            expected[name], shapes_from[name] = shapes, path
    if getattr(args, "upsample", None) is not None:
        from neurodyn.data.prepared import group_name
        from neurodyn.metrics.resample import (
            nothing_added_note,
            read_window_starts,
            upsample_offsets,
            upsample_submission,
        )

        # each trial's coarse window start (its prediction file) against its fine one (the --prepared file)
        coarse = {name: (path, read_window_starts(path).get(name, {})) for name, path in pred_of.items()}
        fine = {}
        for name in groups:
            target = group_name(parse_group_name(name)[0], args.upsample)
            path = shapes_from.get(target)
            fine[target] = (path, read_window_starts(path).get(target, {}) if path else {})
        given = set(groups)
        try:
            offsets, notes = upsample_offsets(groups, args.upsample, coarse, fine)
            for note in notes:
                print(note, flush=True)
            groups = upsample_submission(groups, args.upsample, offsets)
        except InputError as err:  # a group's error names the prediction file that holds it
            if err.path is not None:
                raise
            source = pred_of.get(err.field) or (args.pred[0] if len(args.pred) == 1 else ", ".join(args.pred))
            raise InputError(err.message, path=source, field=err.field) from None
        note = nothing_added_note(given, groups, args.upsample)
        if note:
            print(note, flush=True)
    for name in groups:
        if name not in expected:
            dataset, bin_ms = parse_group_name(name)
            expected.update(expected_shapes_from_registry(dataset, bin_ms))
    try:
        write_submission(tmp, groups, expected, attrs=attrs)
    except InputError as err:
        message = err.message
        if not args.prepared and "expected shape" in message:
            message += (" (without --prepared the shapes come from the registry's full dataset; pass "
                        "--prepared with the prepared file these predictions were made from)")
        if err.path is None:
            source = args.pred[0] if len(args.pred) == 1 else ", ".join(args.pred)
            raise InputError(message, path=source, field=err.field) from None
        raise InputError(message, path=err.path, field=err.field) from None
    for note in _no_forward_notes(groups, expected, pred_of):
        print(note, flush=True)
    return groups


def _no_forward_notes(groups: dict, expected: dict, pred_of: dict) -> list[str]:
    """Notes naming the groups whose data have forward bins (the prepared file's, or the registry's dataset)
    but whose predictions have no forward rates (a model fit, or a baseline made, on a file prepared with
    ``--no-forward``): the submission is valid without them, and fp-bps is then not computed for the group, as
    ``evaluate`` notes too -- but not without a word."""
    from neurodyn.data.prepared import FORWARD_RATES

    notes = []
    for name in sorted(groups):
        if any(k in expected.get(name, {}) for k in FORWARD_RATES) and not any(k in groups[name] for k in
                                                                              FORWARD_RATES):
            source = pred_of.get(name)
            where = f"{source}: " if source is not None else ""
            notes.append(f"note: {where}{name}: no forward rates ({', '.join(FORWARD_RATES)}), so fp-bps will not "
                         "be computed for it (predictions of a file prepared with --no-forward have none)")
    return notes
