"""Score a model trained at a coarse bin width (20 ms) at a finer one (5 ms): ``--upsample``.

NLB scores every dataset at 5 ms and at 20 ms. A model trained on 20 ms bins predicts counts per
20 ms bin; :func:`upsample_submission` turns each such group into a group of the finer width by
splitting every bin's rate evenly over its ``factor`` finer bins (:func:`neurodyn.data.pseudo.spread`,
the inverse of summing the finer bins). This is how ``neurodyn evaluate`` / ``neurodyn submit --upsample 5``
score and submit a 20 ms model at 5 ms; ``benchmarks/real_pseudo_cosmoothing.py`` scores its model the
same way.

Alignment. A trial's 20 ms and 5 ms windows need not start at the same time: a window's first bin is
``ceil(t0 / bin)`` on the session grid (alignment times on a 1 ms grid put the two starts up to 15 ms
apart), and nlb_tools rounds the DMFC_RSG jitter to whole bins at each width apart (up to 25 ms apart in
all). ``neurodyn prepare`` records each row's window start (``window_start_ms``), ``neurodyn predict``
copies the coarse ones into its prediction file, and the commands pass per-trial ``offsets``
(``(start_coarse - start_fine) / fine_ms`` fine bins, :func:`window_offsets`) so that every fine bin gets
the rate of the coarse bin covering the same time. Without offsets (files made before the starts were
recorded) coarse bin ``k`` is spread over fine bins ``factor*k .. factor*k + factor - 1``, as if both
windows started together.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from neurodyn.errors import InputError, named

__all__ = ["MAX_OFFSET_COARSE_BINS", "WINDOW_SPLITS", "read_window_starts", "shift_bins", "upsample_group",
           "upsample_hint", "upsample_offsets", "upsample_submission", "window_offsets"]

#: the splits whose rows have window starts, and the prefix of their rate keys
WINDOW_SPLITS = ("train", "eval")
#: the largest plausible distance between a trial's coarse and fine window starts, in coarse bins: the first
#: bins' ``ceil`` puts them less than one coarse bin apart, and nlb_tools' DMFC_RSG jitter, drawn as a fraction
#: of a whole number of bins at each width and rounded there, adds up to 10 ms more (25 ms at 20 / 5 ms,
#: measured in simulated val files); more than this is taken for windows of other trials or files
MAX_OFFSET_COARSE_BINS = 2


def _split_of(key: str) -> str:
    for split in WINDOW_SPLITS:
        if key.startswith(f"{split}_"):
            return split
    raise InputError(f"cannot tell the trials of '{key}' (train_* or eval_* keys)", field=key)


def shift_bins(rates: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """``out[i, j] = rates[i, j - offsets[i]]``, the index clipped to the bins there are: trial ``i``'s bins
    moved ``offsets[i]`` bins later (earlier when negative); the bins this leaves uncovered at either edge take
    the nearest edge bin's value.

    >>> shift_bins(np.arange(4.0).reshape(1, 4, 1), np.array([1]))[0, :, 0].tolist()
    [0.0, 0.0, 1.0, 2.0]
    """
    rates = np.asarray(rates)
    n = rates.shape[1]
    index = np.clip(np.arange(n)[None, :] - np.asarray(offsets, dtype=np.int64)[:, None], 0, max(n - 1, 0))
    return np.take_along_axis(rates, index[:, :, None], axis=1)


def _checked_offsets(offsets, n_trials: int, factor: int, key: str) -> np.ndarray:
    found = np.asarray(offsets)
    if found.shape != (n_trials,):
        raise InputError(f"expected {n_trials} window offsets (one per trial), got shape {found.shape}",
                         field=key)
    if found.size and (found.dtype.kind not in "iuf" or not np.all(np.isfinite(found))
                       or not np.array_equal(found, np.round(found))):
        raise InputError("window offsets must be whole numbers of fine bins", field=key)
    found = found.astype(np.int64)
    if found.size and np.abs(found).max() > MAX_OFFSET_COARSE_BINS * factor:
        raise InputError(f"window offset of {int(np.abs(found).max())} fine bins is more than "
                         f"{MAX_OFFSET_COARSE_BINS} coarse bins ({MAX_OFFSET_COARSE_BINS * factor} fine bins)",
                         field=key)
    return found


def upsample_group(group: Mapping[str, np.ndarray], factor: int,
                   offsets: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """Every ``(trials, bins, units)`` rate array of one submission group at ``factor`` x finer bins.

    Each coarse bin's rate (counts per bin) is split evenly over its ``factor`` finer bins, so the total
    predicted count of every trial and unit is unchanged when the windows start together.

    Parameters
    ----------
    offsets
        None (coarse bin ``k`` becomes fine bins ``factor*k .. factor*k + factor - 1``: both windows taken to
        start together), or per split (``"train"`` for the ``train_*`` keys, ``"eval"`` for the ``eval_*``
        keys) one whole number per trial: ``(start_coarse - start_fine) / fine_ms``, the fine bins by which the
        trial's coarse window starts after its fine one (:func:`window_offsets`). Each trial's spread rates are
        then shifted so that fine bin ``j`` gets the rate of the coarse bin covering the same time. A key and
        its ``*_forward`` key (the observed and the forward bins of the eval trials) are one continuous time
        axis and are shifted together. Fine bins that fall outside the coarse window (at most
        :data:`MAX_OFFSET_COARSE_BINS` coarse bins' worth at either end) take the nearest edge bin's rate, so
        there the counts are not preserved exactly.

    Examples
    --------
    >>> g = upsample_group({"eval_rates_heldout": np.array([[[4.0], [8.0]]])}, 4)
    >>> g["eval_rates_heldout"][0, :, 0].tolist()
    [1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0]
    >>> g = upsample_group({"eval_rates_heldout": np.array([[[4.0], [8.0]]])}, 4, {"eval": np.array([1])})
    >>> g["eval_rates_heldout"][0, :, 0].tolist()
    [1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0]
    """
    from neurodyn.data.pseudo import spread

    if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 1:
        raise InputError(f"must be a positive integer, got {factor!r}", field="factor")
    out = {}
    for key, value in group.items():
        value = np.asarray(value)
        if value.ndim != 3:
            raise InputError(f"expected (trials, bins, units), got shape {value.shape}", field=key)
        out[key] = spread(value, int(factor)).astype(value.dtype, copy=False)
    if offsets is None:
        return out
    for key in list(out):
        if key.endswith("_forward") and key.removesuffix("_forward") in out:
            continue  # shifted with its observed bins
        split = _split_of(key)
        if split not in offsets or offsets[split] is None:
            raise InputError(f"no window offsets for the {split} trials", field=key)
        shift = _checked_offsets(offsets[split], out[key].shape[0], int(factor), key)
        parts = [out[key]] + ([out[key + "_forward"]] if key + "_forward" in out else [])
        if len(parts) == 2 and parts[1].shape[0] != parts[0].shape[0]:
            raise InputError(f"{parts[1].shape[0]} trials, but {parts[0].shape[0]} in {key}", field=key + "_forward")
        shifted = shift_bins(np.concatenate(parts, axis=1), shift)
        out[key] = shifted[:, : parts[0].shape[1]]
        if len(parts) == 2:
            out[key + "_forward"] = shifted[:, parts[0].shape[1]:]
    return out


def window_offsets(coarse_ms: np.ndarray, fine_ms: np.ndarray, fine_bin_ms: int, coarse_bin_ms: int,
                   path=None, field: str | None = None) -> np.ndarray:
    """Per trial ``(coarse_ms - fine_ms) / fine_bin_ms``: how many fine bins each coarse window starts after
    the fine one (window starts in ms on the session grid, ``window_start_ms`` of prepared files).

    Raises
    ------
    InputError
        Naming ``path`` and ``field``, when a distance is not a whole number of fine bins or is more than
        :data:`MAX_OFFSET_COARSE_BINS` coarse bins (windows of other trials, or of another file).

    >>> window_offsets(np.array([20, 40]), np.array([15, 40]), 5, 20).tolist()
    [1, 0]
    """
    diff = np.asarray(coarse_ms, dtype=np.int64) - np.asarray(fine_ms, dtype=np.int64)
    whole = diff % int(fine_bin_ms) == 0
    if not np.all(whole):
        i = int(np.flatnonzero(~whole)[0])
        raise InputError(f"row {i}: window starts {int(coarse_ms[i])} ms ({coarse_bin_ms} ms bins) and "
                         f"{int(fine_ms[i])} ms ({fine_bin_ms} ms bins) are not a whole number of {fine_bin_ms} ms "
                         "bins apart (damaged file?)", path, field)
    limit = MAX_OFFSET_COARSE_BINS * int(coarse_bin_ms)
    far = np.abs(diff) > limit
    if np.any(far):
        i = int(np.flatnonzero(far)[0])
        raise InputError(f"row {i}: window starts {int(coarse_ms[i])} ms ({coarse_bin_ms} ms bins) and "
                         f"{int(fine_ms[i])} ms ({fine_bin_ms} ms bins) are {abs(int(diff[i]))} ms apart, more "
                         f"than {limit} ms: windows of other trials (prepared from other data?)", path, field)
    return diff // int(fine_bin_ms)


def read_window_starts(path) -> dict[str, dict[str, np.ndarray]]:
    """``{group: {"train": starts, "eval": starts}}`` (ms, int64) recorded in a prepared file (its one group)
    or in a prediction file (``window_start_ms/<group>/<split>``); ``{}`` when it records none (older files,
    nlb_tools' files, files that cannot be read)."""
    import h5py

    from neurodyn.data.prepared import (
        WINDOW_START,
        check_window_starts,
        group_name,
        is_prepared,
        read_open_prepared,
    )
    from neurodyn.io import checked_h5, read_h5_dict

    try:
        handle = h5py.File(path, "r")
    except (OSError, ValueError):
        return {}
    with handle:
        try:
            prepared = is_prepared(handle)
            found = read_h5_dict(handle[WINDOW_START]) if not prepared and WINDOW_START in handle else {}
        except (OSError, ValueError):
            return {}
        if prepared:  # read_prepared's checks and errors, on the file open here (one open)
            with checked_h5(handle, path):
                prep = read_open_prepared(handle, Path(path), groups=())
            return {group_name(prep.dataset, prep.bin_ms): prep.window_start_ms} if prep.window_start_ms else {}
    return {name: {split: check_window_starts(path, f"{WINDOW_START}/{name}/{split}", values)
                   for split, values in starts.items()}
            for name, starts in found.items() if isinstance(starts, dict)}


def check_upsample_width(bin_ms) -> int:
    """``bin_ms`` when it is an NLB bin width (:func:`neurodyn.data.nlb.check_nlb_width`), else an InputError
    naming ``bin_ms`` (inside :func:`neurodyn.errors.command_line_names`, as ``neurodyn evaluate`` / ``submit``
    run: ``--upsample``). Given text (the type of ``evaluate`` / ``submit``'s ``--upsample`` option) it raises
    argparse's ``ArgumentTypeError`` instead, so 0 or -5 is refused before any file is read.

    >>> check_upsample_width("5")
    5
    """
    from neurodyn.data.nlb import check_nlb_width

    if not isinstance(bin_ms, str):
        return check_nlb_width(bin_ms, field=named("bin_ms", "--upsample"))
    import argparse

    try:
        value = int(bin_ms)
    except ValueError:
        value = bin_ms
    try:
        return check_nlb_width(value, field="--upsample")  # argparse names the option itself
    except InputError as err:
        raise argparse.ArgumentTypeError(err.message) from None


def upsample_offsets(groups: Mapping[str, Mapping[str, np.ndarray]], bin_ms: int,
                     coarse: Mapping[str, tuple], fine: Mapping[str, tuple]) -> tuple[dict, list[str]]:
    """Window offsets for :func:`upsample_submission` and the notes on groups upsampled without them.

    Parameters
    ----------
    groups
        The submission groups (those coarser than ``bin_ms`` are upsampled).
    coarse
        ``{coarse group: (path, {split: starts})}``: the file the group's rates come from and its starts.
    fine
        ``{fine group: (path, {split: starts})}``: the prepared file of the finer width and its starts (path
        None: no such file given); fine groups that are not wanted (nothing scores them) are left out.

    Returns
    -------
    (offsets, notes)
        ``offsets``: ``{coarse group: {split: offsets}}``; ``notes``: one ``note:`` line per upsampled group
        whose windows could not be lined up (starts not recorded, trial counts that differ), upsampled as
        before. The notes name ``bin_ms`` and ``fine`` (inside :func:`neurodyn.errors.command_line_names`:
        ``--upsample`` and ``--prepared``, the options of ``neurodyn submit`` / ``evaluate``).
    """
    from neurodyn.data.prepared import WINDOW_START, group_name, parse_group_name

    check_upsample_width(bin_ms)
    offsets: dict = {}
    notes: list[str] = []
    for name, group in groups.items():
        dataset, source_ms = parse_group_name(name)
        if source_ms <= bin_ms or source_ms % bin_ms:
            continue
        target = group_name(dataset, bin_ms)
        if target not in fine:
            continue
        coarse_path, coarse_starts = coarse.get(name, (None, {}))
        fine_path, fine_starts = fine[target]
        why = None
        old_file = "; a file made before neurodyn recorded them?"
        splits = sorted({_split_of(key) for key in group}, key=WINDOW_SPLITS.index)
        if not coarse_starts:
            why = f"{coarse_path} records no window starts for {name}{old_file}"
        elif fine_path is None:
            why = (f"no prepared {bin_ms} ms file of {target} given: "
                   + named("give its path in fine", "pass it with --prepared"))
        elif not fine_starts:
            why = f"{fine_path} records no window starts{old_file}"
        else:
            for split in splits:
                n = next(np.shape(v)[0] for k, v in group.items() if k.startswith(f"{split}_"))
                have = {len(np.atleast_1d(s)) for s in (coarse_starts.get(split), fine_starts.get(split))
                        if s is not None}
                if split not in coarse_starts or split not in fine_starts:
                    why = f"no {split} window starts in {coarse_path if split not in coarse_starts else fine_path}"
                elif have != {n}:
                    why = (f"{split} trials: {n} predicted, {len(coarse_starts[split])} starts in {coarse_path}, "
                           f"{len(fine_starts[split])} in {fine_path}")
                if why:
                    break
        if why:
            notes.append(f"note: {named(f'bin_ms={bin_ms}', f'--upsample {bin_ms}')}: the windows' alignment could "
                         f"not be checked ({why}): {name} "
                         f"is spread as if each trial's {bin_ms} ms window started with its {source_ms} ms one")
            continue
        offsets[name] = {split: window_offsets(coarse_starts[split], fine_starts[split], bin_ms, source_ms,
                                               coarse_path, f"{WINDOW_START}/{name}/{split}") for split in splits}
    return offsets, notes


def upsample_submission(groups: Mapping[str, Mapping[str, np.ndarray]], bin_ms: int,
                        offsets: Mapping[str, Mapping[str, np.ndarray]] | None = None) -> dict[str, dict]:
    """The submission ``groups`` plus a ``bin_ms`` copy of every group with a coarser bin width.

    Group names follow nlb_tools (``mc_maze_small_20`` at 20 ms, ``mc_maze_small`` at 5 ms). Groups already
    at ``bin_ms`` are kept as they are; adding a group that already exists, or a bin width that does not
    divide the group's, is refused. ``offsets``: ``{coarse group: {"train": ..., "eval": ...}}`` per-trial
    window offsets in fine bins (:func:`upsample_group`, :func:`upsample_offsets`); groups without are spread
    as if both windows started together. Refusals name ``bin_ms`` / this call (inside
    :func:`neurodyn.errors.command_line_names`: ``--upsample``).

    Examples
    --------
    >>> rates = {k: np.ones((2, 3, 1)) for k in ("train_rates_heldin", "train_rates_heldout")}
    >>> out = upsample_submission({"mc_maze_small_20": rates}, 5)
    >>> sorted(out), out["mc_maze_small"]["train_rates_heldin"].shape
    (['mc_maze_small', 'mc_maze_small_20'], (2, 12, 1))
    """
    from neurodyn.data.prepared import group_name, parse_group_name

    check_upsample_width(bin_ms)
    out = {name: dict(group) for name, group in groups.items()}
    for name, group in groups.items():
        dataset, source_ms = parse_group_name(name)
        if source_ms == bin_ms:
            continue
        if source_ms < bin_ms or source_ms % bin_ms:
            raise InputError(f"cannot split {source_ms} ms bins into {bin_ms} ms bins", field=name)
        fine = group_name(dataset, bin_ms)
        if fine in groups:
            drop = named("the upsample_submission call", "--upsample")
            raise InputError(f"group '{fine}' is already there; nothing to upsample '{name}' into (drop {drop})",
                             field=fine)
        out[fine] = upsample_group(group, source_ms // bin_ms, (offsets or {}).get(name))
    return out


def nothing_added_note(given, upsampled, bin_ms: int) -> str | None:
    """The note of ``neurodyn submit`` / ``evaluate --upsample MS`` when :func:`upsample_submission` added no
    group (every group of ``given`` already at ``bin_ms``; ``upsampled``: its result), else None. Inside
    :func:`neurodyn.errors.command_line_names` it names ``--upsample MS``.

    Examples
    --------
    >>> from neurodyn.errors import command_line_names
    >>> with command_line_names():
    ...     nothing_added_note({"mc_maze_20": {}}, {"mc_maze_20": {}}, 20)
    'note: --upsample 20: no prediction group is coarser than 20 ms; nothing was added'
    >>> nothing_added_note({"mc_maze_20": {}}, {"mc_maze_20": {}, "mc_maze": {}}, 5) is None
    True
    """
    if set(upsampled) != set(given):
        return None
    return (f"note: {named(f'bin_ms={bin_ms}', f'--upsample {bin_ms}')}: no prediction group is coarser than "
            f"{bin_ms} ms; nothing was added")


def upsample_hint(wanted: str, present) -> str:
    """``"; ... upsample_submission(..., MS) ..."`` when group ``wanted`` is missing but a coarser group of its
    dataset is ``present`` (a 20 ms prediction scored or submitted at 5 ms without upsampling), else ``""``;
    inside :func:`neurodyn.errors.command_line_names` (``neurodyn evaluate`` / ``submit``) it names
    ``--upsample MS``.

    Examples
    --------
    >>> upsample_hint("mc_maze", ["mc_maze_20"]).split(" makes")[0]
    '; mc_maze_20 holds 20 ms bins: neurodyn.metrics.resample.upsample_submission(..., 5)'
    >>> from neurodyn.errors import command_line_names
    >>> with command_line_names():
    ...     upsample_hint("mc_maze", ["mc_maze_20"])
    "; mc_maze_20 holds 20 ms bins: --upsample 5 makes its 5 ms group (each bin's rate split evenly)"
    >>> upsample_hint("mc_maze", ["area2_bump_20"])
    ''
    """
    from neurodyn.data.prepared import group_name, parse_group_name

    try:
        dataset, bin_ms = parse_group_name(wanted)
    except InputError:
        return ""
    for name in present:
        try:
            theirs, source_ms = parse_group_name(name)
        except InputError:
            continue
        if theirs == dataset and source_ms > bin_ms and source_ms % bin_ms == 0:
            how = named(f"neurodyn.metrics.resample.upsample_submission(..., {bin_ms})", f"--upsample {bin_ms}")
            return (f"; {group_name(dataset, source_ms)} holds {source_ms} ms bins: {how} makes its "
                    f"{bin_ms} ms group (each bin's rate split evenly)")
    return ""
