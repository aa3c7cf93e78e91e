"""``neurodyn ensemble``: average the rates of several prediction files of the same data (a rate ensemble).

Example (shell): three fits of one config with different seeds, one prediction file::

    for s in 0 1 2; do
        neurodyn fit --config configs/langevinflow/mc_maze_small_cpu.yaml --data.path prep.h5 \\
            --seed_everything $s --trainer.default_root_dir runs/seed$s
        neurodyn predict --config runs/seed$s/.../config.yaml --ckpt_path runs/seed$s/.../last.ckpt \\
            --prediction.path pred_seed$s.h5
    done
    neurodyn ensemble --pred pred_seed0.h5 pred_seed1.h5 pred_seed2.h5 --out pred_ensemble.h5

Every rate array of the submission layout (same groups, keys and shapes in every file) is averaged
(rates, not log-rates: the Poisson likelihood is concave in the rate, so the ensemble scores at least the
members' mean on every entry; :class:`neurodyn.models.ensemble.RateEnsemble`). The latents that ``neurodyn
predict`` stores beside the rates are not comparable across separate fits and are not copied; the window starts
it copies from the prepared file (``window_start_ms``, what ``evaluate`` / ``submit --upsample`` line bins up
by) are kept when every member records the same ones, and so are the rows' NLB trial ids (``trial_ids``, what
``plot`` names rows by): members that record other ids (other trials, or another order) are refused. Choose the
members in advance (how many, which seeds), never by their scores on the trials you report.

The file records what its members agree on (``phase``, ``dataset``, ``bin_ms``, ``data``) and its members
(``ensemble_members``, and the files and fits underneath through nested ensembles: ``ensemble_sources``,
``ensemble_fits`` and each fit's seed, ``ensemble_seeds``), so ``submit`` still tells its phase; members of
two phases or of other data, two copies of one fit's predictions, an ensemble beside one of its own members
(:func:`member_provenance`) and two members with the same rates (:func:`_same_rates`) are refused.

Writes under :func:`neurodyn.io.output_file` (``--overwrite`` to replace a file; never onto an input). Bad
input is one line and exit code 2 through :mod:`neurodyn.cli`.
"""

from __future__ import annotations

import os
import sys

import numpy as np

from neurodyn.errors import ArgumentParser, InputError

__all__ = ["average_predictions", "cli_main", "member_provenance", "shared_trial_ids"]

#: root attributes an ensemble file keeps where every member records the same value
SHARED_ATTRS = ("phase", "dataset", "bin_ms", "data", "datamodule", "data_sha256", "heldin_unit_ids",
                "heldout_unit_ids")


def _same_data(a: str, b: str) -> bool | None:
    """Whether two recorded data files are one: the same path, the same file, or the same bytes; None when
    that cannot be told (a file no longer there)."""
    from neurodyn.io import file_digest
    from neurodyn.io.output import _same_file

    if a == b:
        return True
    if not (os.path.isfile(a) and os.path.isfile(b)):
        return None
    if _same_file(a, b):
        return True

    return file_digest(a) == file_digest(b)


def member_provenance(paths) -> dict:
    """The root attributes of an ensemble of the prediction files ``paths``: those every member records
    alike (:data:`SHARED_ATTRS`) and ``ensemble_members`` (JSON list of the members' absolute paths).

    Raises InputError (naming the member) for members of two NLB phases or of other data (the ``data``
    files they record are other files with other bytes), and for two members of the same checkpoint and
    epoch (copies of one prediction file: an ensemble of one fit).
    """
    import json

    from neurodyn.io.hdf5 import root_attrs

    records = [(os.fspath(p), root_attrs(p) or {}) for p in paths]
    phased = [(p, r["phase"]) for p, r in records if r.get("phase")]
    for path, phase in phased[1:]:
        if phase != phased[0][1]:
            raise InputError(f"is a {phase}-phase prediction, {phased[0][0]} a {phased[0][1]}-phase one: an "
                             "ensemble averages predictions of the same trials", path=path, field="phase")
    made_from = [(p, str(r["data"])) for p, r in records if r.get("data")]
    if made_from:
        for path, record in records:
            if not record.get("data"):
                print(f"note: {path} records no data file (a submission of several datasets, or a file of an "
                      "older neurodyn): it is not checked to hold predictions of the same data as the others",
                      flush=True)
    for path, data in made_from[1:]:
        if _same_data(data, made_from[0][1]) is False:
            raise InputError(f"was made from {data}, {made_from[0][0]} from {made_from[0][1]} (another file, other "
                             "bytes): an ensemble averages predictions of the same data", path=path, field="data")
    hashed = [(p, str(r["data_sha256"])) for p, r in records if r.get("data_sha256")]
    for path, digest in hashed[1:]:  # the same path re-made in place between two predictions
        if digest != hashed[0][1]:
            raise InputError(f"was made from data of SHA-256 {digest[:12]}..., {hashed[0][0]} from {hashed[0][1][:12]}"
                             "... (another data file, or one re-made between the predictions): an ensemble averages "
                             "predictions of the same data", path=path, field="data_sha256")
    seen: dict = {}
    for path, record in records:
        key = (record.get("checkpoint"), record.get("checkpoint_epoch"))
        if key[0] is None:
            continue
        if key in seen:
            raise InputError(f"holds the predictions of the same checkpoint as {seen[key]} ({key[0]}, epoch "
                             f"{key[1]}): an ensemble averages different fits", path=path, field="checkpoint")
        seen[key] = path
    sources = [(path, _sources(path, record)) for path, record in records]
    for i, (path, (files, fits)) in enumerate(sources):
        for earlier, (earlier_files, earlier_fits) in sources[:i]:
            both = sorted(files & earlier_files) or [f"{c} (epoch {e})" for c, e in sorted(fits & earlier_fits)]
            if both:  # an ensemble and one of its own members: that member would count twice
                raise InputError(f"holds the predictions of {both[0]}, as {earlier} does (an ensemble file and one "
                                 "of its members, or two ensembles sharing one): it would count twice",
                                 path=path, field="--pred")
    first = records[0][1]
    shared = {k: first[k] for k in SHARED_ATTRS  # array attributes (the unit ids) compared whole
              if first.get(k) is not None and all(np.array_equal(r.get(k), first[k]) if isinstance(first[k], np.ndarray)
                                                  else r.get(k) == first[k] for _, r in records)}
    files = sorted({f for _, (member_files, _) in sources for f in member_files})
    fits = sorted({fit for _, (_, member_fits) in sources for fit in member_fits}, key=str)
    seeds = {}  # fit -> the seed of its run (None: not recorded)
    for _, record in records:
        seeds.update(_fit_seeds(record))
    # a member trained on the evaluation trials (neurodyn predict records how many): the ensemble is too
    leaks = [r for _, r in records if r.get("trained_on_eval_trials") is not None]
    if leaks:
        worst = max(leaks, key=lambda r: int(r["trained_on_eval_trials"]))
        shared.update({k: worst[k] for k in ("trained_on_eval_trials", "training_data") if k in worst})
    return {**shared, "ensemble_members": json.dumps([os.path.abspath(p) for p, _ in records]),
            # the prediction files and fits underneath, through nested ensembles: a later ensemble of this file
            # and one of them is refused
            "ensemble_sources": json.dumps(files), "ensemble_fits": json.dumps([list(f) for f in fits]),
            # each fit's seed (``checkpoint_seed_everything``), in the order of ensemble_fits; null where not recorded
            "ensemble_seeds": json.dumps([seeds.get(f) for f in fits])}


def _recorded(record: dict, key: str) -> list | None:
    """A JSON list recorded in a root attribute, or None (absent or unreadable)."""
    import json

    try:
        value = json.loads(record[key]) if key in record else None
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, list) else None


def _sources(path: str, record: dict) -> tuple[set[str], set[tuple]]:
    """(prediction files, fits) a member's rates come from: itself and its checkpoint, or for an ensemble
    file the files and fits it records (``ensemble_sources`` / ``ensemble_members``, ``ensemble_fits``)."""
    files = set(_recorded(record, "ensemble_sources") or _recorded(record, "ensemble_members") or [])
    files = {os.path.abspath(f) for f in files if isinstance(f, str)} or {os.path.abspath(path)}
    fits = {(str(f[0]), f[1]) for f in (_recorded(record, "ensemble_fits") or [])
            if isinstance(f, list) and len(f) == 2}
    if record.get("checkpoint") is not None:
        fits.add((str(record["checkpoint"]), record.get("checkpoint_epoch")))
    return files, fits


def _fit_seeds(record: dict) -> dict[tuple, int | None]:
    """``{(checkpoint, epoch): seed}`` of a member: its own checkpoint's ``checkpoint_seed_everything``, or for an
    ensemble file the ``ensemble_seeds`` it records beside ``ensemble_fits`` (None where a seed is not recorded)."""
    fits = _recorded(record, "ensemble_fits") or []
    recorded = _recorded(record, "ensemble_seeds") or []
    seeds = {}
    for i, fit in enumerate(fits):
        if isinstance(fit, list) and len(fit) == 2:
            seed = recorded[i] if i < len(recorded) and len(recorded) == len(fits) else None
            seeds[(str(fit[0]), fit[1])] = seed if isinstance(seed, int) else None
    if record.get("checkpoint") is not None:
        seed = record.get("checkpoint_seed_everything")
        seeds[(str(record["checkpoint"]), record.get("checkpoint_epoch"))] = (
            int(seed) if isinstance(seed, (int, np.integer)) else None)
    return seeds


def average_predictions(paths) -> dict[str, dict[str, np.ndarray]]:
    """``{group: {key: mean rates}}`` over the prediction files ``paths``; see :func:`_average`."""
    return _average(paths)[0]


def _average(paths) -> tuple[dict[str, dict[str, np.ndarray]], dict, dict]:
    """``({group: {key: mean rates}}, root attributes, {group: {split: NLB trial ids}})`` over the prediction files
    ``paths`` (float64 sums, in file order; the attributes of :func:`member_provenance`, read once; the rows' trial
    ids of :func:`shared_trial_ids`).

    Raises
    ------
    InputError
        Fewer than two files; a file given twice (also through a link or another path); a file that is not
        a prediction file; members :func:`member_provenance` refuses; a group or key missing from a file,
        or one it has and the first does not; arrays of different shapes; NLB trial ids that are not one
        integer per row, or that differ between members (:func:`shared_trial_ids`; each names the file and field).
    """
    from neurodyn.io.output import _same_file
    from neurodyn.metrics.submission import read_submission, validate_submission

    paths = [os.fspath(p) for p in paths]
    if len(paths) < 2:
        raise InputError("an ensemble needs at least two prediction files", field="--pred")
    for i, path in enumerate(paths):
        for earlier in paths[:i]:
            if _same_file(path, earlier):  # a missing file is not the same: read_submission names it below
                raise InputError(f"is the same file as {earlier} (given twice, or a link to it): an ensemble "
                                 "averages different prediction files", path=path, field="--pred")
    members = []
    for path in paths:
        groups = read_submission(path)
        validate_submission(groups, path=path)  # finite, non-negative, 3-D rates in the NLB layout
        members.append((path, groups))
    attrs = member_provenance(paths)  # two phases or other data explain any difference of shapes: named first
    total: dict[str, dict[str, np.ndarray]] = {}
    first = paths[0]
    for path, groups in members:
        if path == first:
            total = {g: {k: np.asarray(v, dtype=np.float64).copy() for k, v in arrays.items()}
                     for g, arrays in groups.items()}
            continue
        for earlier, earlier_groups in members[:members.index((path, groups))]:
            if _same_rates(groups, earlier_groups):
                raise InputError(f"has the same rates as {earlier} (a copy of its predictions: one fit, a submission "
                                 "made from it, two fits of one seed): an ensemble averages different predictions",
                                 path=path, field="--pred")
        for name in total.keys() | groups.keys():
            if name not in groups or name not in total:
                where = path if name not in groups else first
                raise InputError(f"group not in every prediction file (missing from {where})", path=path,
                                 field=name)
            for key in total[name].keys() | groups[name].keys():
                if key not in groups[name] or key not in total[name]:
                    where = path if key not in groups[name] else first
                    raise InputError(f"not in every prediction file (missing from {where})", path=path,
                                     field=f"{name}/{key}")
                if groups[name][key].shape != total[name][key].shape:
                    raise InputError(f"shape {groups[name][key].shape}, but {total[name][key].shape} in {first}",
                                     path=path, field=f"{name}/{key}")
                total[name][key] += groups[name][key]
    ids = shared_trial_ids(members)
    return {g: {k: v / len(paths) for k, v in arrays.items()} for g, arrays in total.items()}, attrs, ids


def shared_trial_ids(members) -> dict[str, dict[str, np.ndarray]]:
    """The NLB trial ids of the rows (``trial_ids/<group>/<split>``,
    :func:`~neurodyn.metrics.submission.read_trial_ids`) the members ``[(path, groups), ...]`` record, checked:
    a group's split whose ids every member records, and alike, is kept; one some member does not record (a
    baseline, a file of an older neurodyn) is left out with a note, so ``plot`` names the ensemble's rows by their
    position, never by ids the rows were not checked to have.

    Raises
    ------
    InputError
        Naming the member and the field: ids that are not one distinct integer per row, or other ids than the
        first member's (its rows are other trials, or the same trials in another order: averaging row by row would
        mix the rates of two trials).
    """
    from neurodyn.data.prepared import TRIAL_IDS
    from neurodyn.metrics.submission import read_trial_ids

    found = [(path, read_trial_ids(path, groups)) for path, groups in members]
    keys = sorted({(g, s) for _, ids in found for g in ids for s in ids[g]})
    out: dict[str, dict[str, np.ndarray]] = {}
    for name, split in keys:
        field = f"{TRIAL_IDS}/{name}/{split}"
        have = [(path, ids[name][split]) for path, ids in found if split in ids.get(name, {})]
        if len(have) < len(found):
            missing = next(path for path, ids in found if split not in ids.get(name, {}))
            print(f"note: {missing} records no NLB trial ids of its rows ({field}), unlike {have[0][0]}: the ensemble "
                  "records none there, so plot names those rows by their position", flush=True)
            continue
        first_path, first = have[0]
        for path, ids in have[1:]:
            if not np.array_equal(ids, first):
                row = int(np.flatnonzero(ids != first)[0])
                raise InputError(f"row {row} is NLB trial {ids[row]}, but trial {first[row]} in {first_path}: the "
                                 "members' rows are other trials (or in another order), and an ensemble averages the "
                                 "rates of the same trials row by row", path=path, field=field)
        out.setdefault(name, {})[split] = first
    return out


def shared_window_starts(paths) -> dict:
    """The window starts (``window_start_ms``, :func:`neurodyn.metrics.resample.read_window_starts`) every member
    records alike, or ``{}`` when one records none or other ones (then ``--upsample`` notes it cannot line up
    the ensemble's windows)."""
    from neurodyn.metrics.resample import read_window_starts

    def alike(a: dict, b: dict) -> bool:
        return a.keys() == b.keys() and all(
            a[g].keys() == b[g].keys() and all(np.array_equal(a[g][s], b[g][s]) for s in a[g]) for g in a)

    found = [read_window_starts(p) for p in paths]
    first = found[0]
    if all(alike(starts, first) for starts in found[1:]):
        return first
    if any(found):  # said here, where the member can be named (evaluate's note would name the ensemble)
        missing = [p for p, starts in zip(paths, found) if not starts]
        odd = missing[0] if missing else next(p for p, starts in zip(paths[1:], found[1:]) if not alike(starts, first))
        why = "no window starts, unlike the other members" if missing else f"other window starts than {paths[0]}"
        print(f"note: {odd} records {why}: the ensemble records none, so --upsample cannot line up its windows",
              flush=True)
    return {}


def _same_rates(a: dict, b: dict) -> bool:
    """Whether two prediction files hold the same groups, keys and values (bit for bit)."""
    return a.keys() == b.keys() and all(
        a[g].keys() == b[g].keys() and all(np.array_equal(a[g][k], b[g][k]) for k in a[g]) for g in a)


def cli_main(argv: list[str]) -> int:
    """``neurodyn ensemble``: average the rates of several prediction files of the same data."""
    parser = ArgumentParser(prog="neurodyn ensemble", description=cli_main.__doc__)
    parser.add_argument("--pred", required=True, nargs="+", metavar="FILE",
                        help="prediction files of the same data (e.g. `neurodyn predict` of fits with different "
                             "seeds), at least two")
    parser.add_argument("--out", required=True, metavar="FILE", help="prediction file to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out file (never an input)")
    args = parser.parse_args(argv)
    from neurodyn.io import output_file
    from neurodyn.metrics.submission import write_submission

    size = max((os.path.getsize(p) for p in args.pred if os.path.isfile(p)), default=0)
    with output_file(args.out, inputs=args.pred, overwrite=args.overwrite, size_bytes=size) as tmp:
        groups, attrs, trial_ids = _average(args.pred)
        write_submission(tmp, groups, attrs=attrs, window_starts=shared_window_starts(args.pred), trial_ids=trial_ids)
    print(f"wrote {args.out}: the mean of {len(args.pred)} prediction files ({', '.join(groups)})")
    from neurodyn.io.hdf5 import root_attrs

    for path in args.pred:  # an ensemble among the members: its own members weigh less than the others
        inner = _recorded(root_attrs(path) or {}, "ensemble_members")
        if inner:
            print(f"note: {path} is itself an ensemble of {len(inner)} files: each of them weighs "
                  f"1/{len(inner) * len(args.pred)} in this mean, the other members 1/{len(args.pred)}",
                  file=sys.stderr)
    return 0
