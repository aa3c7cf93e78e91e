"""Score a model trained at a coarse bin width (20 ms) at a finer one (5 ms): ``--upsample``.

NLB scores every dataset at 5 ms and at 20 ms. A model trained on 20 ms bins predicts counts per
20 ms bin; :func:`upsample_submission` turns each such group into a group of the finer width by
splitting every bin's rate evenly over its ``factor`` finer bins (:func:`neurodyn.data.pseudo.spread`,
the inverse of summing the finer bins). The prepared 5 ms and 20 ms files of one dataset cut the same
windows (every NLB window is a multiple of 20 ms), so bin ``k`` of the 20 ms group covers bins
``4k .. 4k+3`` of the 5 ms group. This is how ``neurodyn evaluate`` / ``neurodyn submit --upsample 5``
score and submit a 20 ms model at 5 ms; ``benchmarks/real_pseudo_cosmoothing.py`` scores its model
the same way.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from neurodyn.errors import InputError

__all__ = ["upsample_group", "upsample_hint", "upsample_submission"]


def upsample_group(group: Mapping[str, np.ndarray], factor: int) -> dict[str, np.ndarray]:
    """Every ``(trials, bins, units)`` rate array of one submission group at ``factor`` x finer bins.

    Each coarse bin's rate (counts per bin) is split evenly over its ``factor`` finer bins, so the total
    predicted count of every trial and unit is unchanged.

    Examples
    --------
    >>> g = upsample_group({"eval_rates_heldout": np.array([[[4.0], [8.0]]])}, 4)
    >>> g["eval_rates_heldout"][0, :, 0].tolist()
    [1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0]
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
    return out


def upsample_submission(groups: Mapping[str, Mapping[str, np.ndarray]], bin_ms: int) -> dict[str, dict]:
    """The submission ``groups`` plus a ``bin_ms`` copy of every group with a coarser bin width.

    Group names follow nlb_tools (``mc_maze_small_20`` at 20 ms, ``mc_maze_small`` at 5 ms). Groups already
    at ``bin_ms`` are kept as they are; adding a group that already exists, or a bin width that does not
    divide the group's, is refused.

    Examples
    --------
    >>> rates = {k: np.ones((2, 3, 1)) for k in ("train_rates_heldin", "train_rates_heldout")}
    >>> out = upsample_submission({"mc_maze_small_20": rates}, 5)
    >>> sorted(out), out["mc_maze_small"]["train_rates_heldin"].shape
    (['mc_maze_small', 'mc_maze_small_20'], (2, 12, 1))
    """
    from neurodyn.data.nlb import BIN_WIDTHS_MS
    from neurodyn.data.prepared import group_name, parse_group_name

    if isinstance(bin_ms, bool) or bin_ms not in BIN_WIDTHS_MS:  # other widths name no NLB group
        raise InputError(f"must be an NLB bin width ({' or '.join(map(str, BIN_WIDTHS_MS))} ms), got {bin_ms!r}",
                         field="--upsample")
    out = {name: dict(group) for name, group in groups.items()}
    for name, group in groups.items():
        dataset, source_ms = parse_group_name(name)
        if source_ms == bin_ms:
            continue
        if source_ms < bin_ms or source_ms % bin_ms:
            raise InputError(f"cannot split {source_ms} ms bins into {bin_ms} ms bins", field=name)
        fine = group_name(dataset, bin_ms)
        if fine in groups:
            raise InputError(f"group '{fine}' is already there; nothing to upsample '{name}' into (drop "
                             "--upsample)", field=fine)
        out[fine] = upsample_group(group, source_ms // bin_ms)
    return out


def upsample_hint(wanted: str, present) -> str:
    """``"; ... --upsample MS ..."`` when group ``wanted`` is missing but a coarser group of its dataset is
    ``present`` (a 20 ms prediction scored or submitted at 5 ms without ``--upsample 5``), else ``""``.

    Examples
    --------
    >>> upsample_hint("mc_maze", ["mc_maze_20"])
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
            return (f"; {group_name(dataset, source_ms)} holds {source_ms} ms bins: --upsample {bin_ms} makes its "
                    f"{bin_ms} ms group (each bin's rate split evenly)")
    return ""
