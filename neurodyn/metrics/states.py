"""Model-agnostic recovery metrics for discrete-state models: label matching, state accuracy,
connection-type accuracy and weight error after the optimal state permutation.

Convention: a permutation ``perm`` (length = number of true states) maps **true state i -> model state
perm[i]**; :func:`permute_states` reorders a model's per-state array into the true order
(``array[perm]``). Matching maximises the number of bins where the labels agree (Hungarian algorithm,
``scipy.optimize.linear_sum_assignment``), which is exact, unlike greedy matching.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

from neurodyn.core.arrays import to_numpy

__all__ = [
    "overlap_matrix",
    "find_permutation",
    "state_accuracy",
    "permute_states",
    "connection_type_accuracy",
    "connection_type_f1",
    "weight_error",
    "switch_alignment",
]


def _labels(x, name: str = "states") -> np.ndarray:
    return state_labels(x, name).reshape(-1)


def state_labels(x, name: str = "states") -> np.ndarray:
    """State labels as an int64 array of the same shape; anything but whole numbers >= 0 is an InputError
    naming ``name`` (a -1 'unassigned' code was counted as the last state through negative indexing, 0.5 as
    state 0). Booleans are states 0 and 1."""
    from neurodyn.errors import InputError

    x = to_numpy(x)
    if x.dtype.kind not in "iub":
        if x.dtype.kind != "f":
            raise InputError(f"expected integer state labels, got dtype {x.dtype}", field=name)
        if not np.isfinite(x).all():
            raise InputError(f"{int((~np.isfinite(x)).sum())} NaN or infinite state labels", field=name)
        if (x != np.round(x)).any():
            raise InputError("non-integer state labels (e.g. 0.5)", field=name)
    if x.size and x.min() < 0:
        raise InputError(f"negative state labels (min {x.min()}); mask unassigned bins out instead", field=name)
    return x.astype(np.int64)


def overlap_matrix(
    true_states, predicted_states, n_true: int | None = None, n_predicted: int | None = None
) -> np.ndarray:
    """Counts ``C[i, k]`` of bins with true state ``i`` and predicted state ``k`` (any shapes, flattened).

    Examples
    --------
    >>> overlap_matrix([0, 0, 1], [1, 1, 0]).tolist()
    [[0, 2], [1, 0]]
    """
    t, p = _labels(true_states, "true_states"), _labels(predicted_states, "predicted_states")
    if t.shape != p.shape:
        from neurodyn.errors import InputError

        raise InputError(f"{p.size} labels, true_states has {t.size}", field="predicted_states")
    n_true = int(max(t.max(initial=-1) + 1, n_true or 0))
    n_predicted = int(max(p.max(initial=-1) + 1, n_predicted or 0, n_true))
    counts = np.zeros((n_true, n_predicted), dtype=np.int64)
    np.add.at(counts, (t, p), 1)
    return counts


def find_permutation(true_states, predicted_states, n_states: int | None = None) -> np.ndarray:
    """Optimal matching (maximal agreement): ``perm[i]`` = model state matched to true state ``i``.

    Examples
    --------
    >>> find_permutation([0, 0, 1, 2], [2, 2, 0, 1]).tolist()
    [2, 0, 1]
    """
    counts = overlap_matrix(true_states, predicted_states, n_states, n_states)
    rows, cols = linear_sum_assignment(-counts)
    perm = np.empty(counts.shape[0], dtype=np.int64)
    perm[rows] = cols
    return perm


def state_accuracy(true_states, predicted_states, n_states: int | None = None) -> float:
    """Fraction of bins whose predicted state equals the true one after optimal relabelling.

    Examples
    --------
    >>> state_accuracy([0, 0, 1, 1], [1, 1, 0, 1])
    0.75
    """
    counts = overlap_matrix(true_states, predicted_states, n_states, n_states)
    if not counts.sum():  # was an accuracy of 0.0
        from neurodyn.errors import InputError

        raise InputError("no bins to score", field="true_states")
    rows, cols = linear_sum_assignment(-counts)
    return float(counts[rows, cols].sum() / counts.sum())


def permute_states(array, permutation, axis: int = 0):
    """Reorder a model's per-state array into the true-state order (``take(perm, axis)``)."""
    if hasattr(array, "detach"):
        import torch

        return array.index_select(axis, torch.as_tensor(np.asarray(permutation), device=array.device))
    return np.take(np.asarray(array), np.asarray(permutation), axis=axis)


def _mask(shape, mask) -> np.ndarray:
    if mask is None:
        return np.ones(shape, dtype=bool)
    try:
        return np.broadcast_to(np.asarray(mask, dtype=bool), shape)
    except ValueError:
        from neurodyn.errors import InputError

        raise InputError(f"shape {np.shape(mask)} does not fit the arrays' {shape}", field="mask") from None


def _pair(true, estimated, permutation, names: tuple[str, str], dtype=None) -> tuple[np.ndarray, np.ndarray]:
    """``(true, estimated)`` as arrays of one shape (after the permutation), or an InputError naming the
    estimate (an IndexError 'boolean index did not match' deep in numpy before)."""
    from neurodyn.errors import InputError

    t = to_numpy(true, dtype)
    e = to_numpy(estimated, dtype)
    if permutation is not None:
        perm = np.asarray(permutation)
        if e.ndim == 0 or perm.ndim != 1 or len(perm) != len(t) or perm.min(initial=0) < 0 or \
                perm.max(initial=0) >= len(e):
            raise InputError(f"a permutation of {len(e) if e.ndim else 0} model states to the {len(t)} true ones "
                             f"expected, got {perm.tolist()}", field="permutation")
        e = np.take(e, perm, axis=0)
    if t.shape != e.shape:
        raise InputError(f"shape {e.shape} does not match {names[0]}'s {t.shape}", field=names[1])
    return t, e


def _scored(t: np.ndarray, e: np.ndarray, mask, names: tuple[str, str], types: bool) -> tuple[np.ndarray, np.ndarray]:
    """The entries of ``(t, e)`` that ``mask`` selects; an InputError when it selects none (nan and numpy's
    'Mean of empty slice' before), for NaN / infinite true values, or, with ``types``, values outside
    {-1, 0, +1} (scored as if they were types). Non-finite estimated weights are scored: a fit that diverged
    gets an error of nan or inf (a benchmark records it, and goes on with the other fits)."""
    from neurodyn.errors import InputError

    m = _mask(t.shape, mask)
    if not m.any():
        raise InputError(f"selects none of the {t.size} entries: nothing to score", field="mask")
    for array, name in ((t, names[0]), (e, names[1])):
        values = array[m]
        if (types or array is t) and not np.isfinite(values).all():
            raise InputError(f"{int((~np.isfinite(values)).sum())} NaN or infinite entries", field=name)
        if types and not np.isin(values, (-1, 0, 1)).all():
            raise InputError("connection types must be -1 (inhibitory), 0 (none) or +1 (excitatory), got "
                             f"{np.setdiff1d(values, (-1, 0, 1))[:5].tolist()}", field=name)
    return t[m], e[m]


def connection_type_accuracy(true_types, estimated_types, permutation=None, mask=None) -> float:
    """Fraction of (state, post, pre) entries whose type in {-1, 0, +1} matches.

    Parameters
    ----------
    true_types, estimated_types : array (S, N, N)
    permutation : array (S,), optional
        From :func:`find_permutation`; applied to ``estimated_types``.
    mask : array (N, N) or (S, N, N) of bool, optional
        Entries to score (e.g. off-diagonal only when self-connections were not learned).

    Examples
    --------
    >>> connection_type_accuracy([[[1, 0], [0, -1]]], [[[1, 0], [1, -1]]])
    0.75
    """
    names = ("true_types", "estimated_types")
    t, e = _scored(*_pair(true_types, estimated_types, permutation, names), mask, names, types=True)
    return float((t == e).mean())


def connection_type_f1(true_types, estimated_types, permutation=None, mask=None) -> float:
    """Macro-averaged F1 over the three types (robust to the dominance of "none")."""
    from sklearn.metrics import f1_score

    names = ("true_types", "estimated_types")
    t, e = _scored(*_pair(true_types, estimated_types, permutation, names), mask, names, types=True)
    return float(f1_score(t, e, labels=[-1, 0, 1], average="macro", zero_division=0))


def weight_error(true_weights, estimated_weights, permutation=None, mask=None) -> float:
    """Mean squared difference of coupling weights after permutation (same units as the weights).

    Examples
    --------
    >>> weight_error([[[1.0, 0.0]]], [[[0.5, 0.0]]])
    0.125
    >>> weight_error([[[1.0, 0.0]]], [[[float("nan"), 0.0]]])  # a fit that diverged
    nan
    """
    names = ("true_weights", "estimated_weights")
    t, e = _scored(*_pair(true_weights, estimated_weights, permutation, names, np.float64), mask, names, types=False)
    return float(((t - e) ** 2).mean())


def switch_alignment(paths, boundary_times, window: float, n_shuffles: int = 1000, rng=None) -> dict:
    """How many state switches fall within ``±window`` of an event, against chance.

    Parameters
    ----------
    paths : int array (trials, bins)
        Decoded state paths (e.g. Viterbi), one row per trial.
    boundary_times : array (bins - 1,)
        Time of the boundary between bins ``t-1`` and ``t`` relative to the event (any unit).
    window : float
        Half-width, same unit.
    n_shuffles : int
        Shuffles for the permutation baseline.
    rng : numpy.random.Generator, optional

    Returns
    -------
    dict
        ``n_switches``; ``frac_near`` (fraction of switches with ``|time| <= window``); ``chance``
        (fraction of boundaries inside the window: the expectation when switches are uniform over
        the boundaries); ``shuffle_mean`` and ``p_shuffle`` (each trial's switches re-placed at
        random distinct boundaries, same count per trial; one-sided p-value ``(1 + #{shuffled >=
        observed}) / (1 + n_shuffles)``); ``switches_per_trial``. Fractions are None without switches.

    Examples
    --------
    >>> r = switch_alignment([[0, 0, 1, 1], [0, 0, 0, 0]], [-20, 0, 20], 10, n_shuffles=10)
    >>> r["n_switches"], r["frac_near"], round(r["chance"], 4)
    (1, 1.0, 0.3333)
    """
    paths = np.asarray(paths)
    times = np.asarray(boundary_times, dtype=np.float64)
    if paths.ndim != 2 or times.shape != (paths.shape[1] - 1,):
        raise ValueError(
            f"paths (trials, bins) and boundary_times (bins - 1,) expected, got {paths.shape}, {times.shape}"
        )
    rng = np.random.default_rng(0) if rng is None else rng
    near = np.abs(times) <= window
    switches = paths[:, 1:] != paths[:, :-1]
    counts = switches.sum(1)
    total = int(counts.sum())
    out = {
        "n_switches": total,
        "frac_near": None,
        "chance": float(near.mean()),
        "shuffle_mean": None,
        "p_shuffle": None,
        "switches_per_trial": float(counts.mean()),
    }
    if total == 0:
        return out
    observed = float(switches[:, near].sum() / total)
    # random distinct boundaries per trial: the ranks of i.i.d. uniform keys form a random permutation
    ranks = rng.random((n_shuffles, *switches.shape)).argsort(-1).argsort(-1)
    fractions = ((ranks < counts[None, :, None]) & near).sum((1, 2)) / total
    out.update(
        frac_near=observed,
        shuffle_mean=float(fractions.mean()),
        p_shuffle=float((1 + (fractions >= observed).sum()) / (1 + n_shuffles)),
    )
    return out
