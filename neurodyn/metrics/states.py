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

__all__ = [
    "overlap_matrix",
    "find_permutation",
    "state_accuracy",
    "permute_states",
    "connection_type_accuracy",
    "connection_type_f1",
    "weight_error",
]


def _labels(x) -> np.ndarray:
    x = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x)
    return x.reshape(-1).astype(np.int64)


def overlap_matrix(
    true_states, predicted_states, n_true: int | None = None, n_predicted: int | None = None
) -> np.ndarray:
    """Counts ``C[i, k]`` of bins with true state ``i`` and predicted state ``k`` (any shapes, flattened).

    Examples
    --------
    >>> overlap_matrix([0, 0, 1], [1, 1, 0]).tolist()
    [[0, 2], [1, 0]]
    """
    t, p = _labels(true_states), _labels(predicted_states)
    if t.shape != p.shape:
        raise ValueError(f"true and predicted states differ in size: {t.shape} vs {p.shape}")
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
    rows, cols = linear_sum_assignment(-counts)
    return float(counts[rows, cols].sum() / max(counts.sum(), 1))


def permute_states(array, permutation, axis: int = 0):
    """Reorder a model's per-state array into the true-state order (``take(perm, axis)``)."""
    if hasattr(array, "detach"):
        import torch

        return array.index_select(axis, torch.as_tensor(np.asarray(permutation), device=array.device))
    return np.take(np.asarray(array), np.asarray(permutation), axis=axis)


def _mask(shape, mask) -> np.ndarray:
    return (
        np.ones(shape, dtype=bool) if mask is None else np.broadcast_to(np.asarray(mask, dtype=bool), shape)
    )


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
    t = np.asarray(true_types)
    e = np.asarray(estimated_types.detach().cpu() if hasattr(estimated_types, "detach") else estimated_types)
    if permutation is not None:
        e = np.take(e, np.asarray(permutation), axis=0)
    m = _mask(t.shape, mask)
    return float((t[m] == e[m]).mean())


def connection_type_f1(true_types, estimated_types, permutation=None, mask=None) -> float:
    """Macro-averaged F1 over the three types (robust to the dominance of "none")."""
    from sklearn.metrics import f1_score

    t = np.asarray(true_types)
    e = np.asarray(estimated_types.detach().cpu() if hasattr(estimated_types, "detach") else estimated_types)
    if permutation is not None:
        e = np.take(e, np.asarray(permutation), axis=0)
    m = _mask(t.shape, mask)
    return float(f1_score(t[m], e[m], labels=[-1, 0, 1], average="macro", zero_division=0))


def weight_error(true_weights, estimated_weights, permutation=None, mask=None) -> float:
    """Mean squared difference of coupling weights after permutation (same units as the weights).

    Examples
    --------
    >>> weight_error([[[1.0, 0.0]]], [[[0.5, 0.0]]])
    0.125
    """
    t = np.asarray(true_weights, dtype=np.float64)
    e = np.asarray(
        estimated_weights.detach().cpu() if hasattr(estimated_weights, "detach") else estimated_weights,
        dtype=np.float64,
    )
    if permutation is not None:
        e = np.take(e, np.asarray(permutation), axis=0)
    m = _mask(t.shape, mask)
    return float(((t[m] - e[m]) ** 2).mean())
