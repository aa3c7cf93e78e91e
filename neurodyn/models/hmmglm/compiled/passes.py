"""Batched passes of the compiled HMM recursions: smoothing, filtering and Viterbi per sequence, and their
serial / ``prange``-parallel loops over a batch (kernels: :mod:`.kernels`).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from neurodyn.models.hmmglm.compiled.kernels import (
    _NEG_INF,
    _TINY,
    FLOOR,
    _backward_log,
    _backward_scaled,
    _backward_two,
    _forward_log,
    _forward_scaled,
    _forward_two,
)


@njit(cache=True, nogil=True, error_model="numpy")
def _scaled_transitions(log_trans):
    """``P / max P`` (maximum exactly 1) and ``log max P``: scaling P by ``c`` scales ``p(X)`` by
    ``c^(T-1)`` and leaves every posterior unchanged."""
    n_states = log_trans.shape[0]
    top = log_trans[0, 0]
    for i in range(n_states):
        for j in range(n_states):
            if log_trans[i, j] > top:
                top = log_trans[i, j]
    trans = np.empty((n_states, n_states))
    for i in range(n_states):
        for j in range(n_states):
            trans[i, j] = math.exp(log_trans[i, j] - top)
    return trans, top


@njit(cache=True, nogil=True, error_model="numpy")
def _choose_fast(log_trans, mode):
    """``mode`` 1 / 0 forces the scaled / log-space recursion; -1: :func:`fast_ok`'s criterion."""
    if mode >= 0:
        return mode == 1
    low = log_trans[0, 0]
    high = log_trans[0, 0]
    for i in range(log_trans.shape[0]):
        for j in range(log_trans.shape[1]):
            low = min(low, log_trans[i, j])
            high = max(high, log_trans[i, j])
    return low - high > 0.5 * FLOOR


@njit(cache=True, nogil=True, error_model="numpy")
def _smooth_one(log_initial, log_trans, ll, fast, alpha, post, counts, pairwise, want_pairwise):
    n_time, n_states = ll.shape
    if fast:
        trans, log_top = _scaled_transitions(log_trans)
        trans_t = np.ascontiguousarray(trans.T)
        if n_states == 2:
            log_z = _forward_two(log_initial, trans, ll, alpha)
            _backward_two(trans, alpha, post, counts, pairwise, want_pairwise)
        else:
            log_z = _forward_scaled(log_initial, trans, trans_t, ll, alpha)
            _backward_scaled(trans, trans_t, alpha, post, counts, pairwise, want_pairwise)
        return log_z + (n_time - 1) * log_top
    log_trans_t = np.ascontiguousarray(log_trans.T)
    log_z = _forward_log(log_initial, log_trans_t, ll, alpha, alpha, False)
    _backward_log(log_trans, log_trans_t, alpha, post, counts, pairwise, want_pairwise)
    return log_z


@njit(cache=True, nogil=True, error_model="numpy")
def _smooth_serial(log_initial, log_trans, ll, mode, alpha, post, counts, pairwise, want_pairwise, log_z):
    fast = _choose_fast(log_trans, mode)
    for b in range(ll.shape[0]):
        log_z[b] = _smooth_one(
            log_initial[b], log_trans, ll[b], fast, alpha[b], post[b], counts[b], pairwise[b], want_pairwise
        )


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def _smooth_parallel(log_initial, log_trans, ll, mode, alpha, post, counts, pairwise, want_pairwise, log_z):
    fast = _choose_fast(log_trans, mode)
    for b in prange(ll.shape[0]):
        log_z[b] = _smooth_one(
            log_initial[b], log_trans, ll[b], fast, alpha[b], post[b], counts[b], pairwise[b], want_pairwise
        )


@njit(cache=True, nogil=True, error_model="numpy")
def _filter_scaled(log_initial, trans, ll, log_filtered, log_predicted):
    """Scaled forward pass writing exact log filtered / predicted rows (see module docstring)."""
    n_time, n_states = ll.shape
    pred = np.empty(n_states)
    alpha = np.empty(n_states)
    # t = 0 directly from the inputs (log-softmax of log π and of log π + ll_0)
    top = _NEG_INF
    top_f = _NEG_INF
    for s in range(n_states):
        if log_initial[s] > top:
            top = log_initial[s]
        v = log_initial[s] + float(ll[0, s])
        if v > top_f:
            top_f = v
    acc = 0.0
    acc_f = 0.0
    for s in range(n_states):
        acc += math.exp(log_initial[s] - top)
        acc_f += math.exp(log_initial[s] + float(ll[0, s]) - top_f)
    for s in range(n_states):
        log_predicted[0, s] = log_initial[s] - top - math.log(acc)
        log_filtered[0, s] = log_initial[s] + float(ll[0, s]) - top_f - math.log(acc_f)
    for s in range(n_states):
        v = log_initial[s] - top
        if v < FLOOR:
            v = FLOOR
        pred[s] = math.exp(v)
    log_scale = top
    for t in range(n_time):
        top = float(ll[t, 0])
        for s in range(1, n_states):
            if ll[t, s] > top:
                top = float(ll[t, s])
        total = 0.0
        for s in range(n_states):
            v = float(ll[t, s]) - top
            if v < FLOOR:
                v = FLOOR
            a = pred[s] * math.exp(v)
            if a < _TINY:
                a = _TINY
            alpha[s] = a
            total += a
        if t > 0:  # p_t >= min P / S (module docstring): its log is finite and exact
            pred_total = 0.0
            for s in range(n_states):
                pred_total += pred[s]
            log_pred_total = math.log(pred_total)
            log_total = math.log(total)
            for s in range(n_states):
                lp = math.log(pred[s])
                log_predicted[t, s] = lp - log_pred_total
                log_filtered[t, s] = lp + (float(ll[t, s]) - top) - log_total
        inv = 1.0 / total
        for s in range(n_states):
            alpha[s] *= inv
        log_scale += top + math.log(total)
        if t + 1 < n_time:
            for j in range(n_states):
                pred[j] = 0.0
            for i in range(n_states):
                ai = alpha[i]
                for j in range(n_states):
                    pred[j] += ai * trans[i, j]
    return log_scale


@njit(cache=True, nogil=True, error_model="numpy")
def _filter_one(log_initial, log_trans, ll, fast, log_filtered, log_predicted):
    n_time, n_states = ll.shape
    if fast:
        trans, log_top = _scaled_transitions(log_trans)
        return _filter_scaled(log_initial, trans, ll, log_filtered, log_predicted) + (n_time - 1) * log_top
    log_trans_t = np.ascontiguousarray(log_trans.T)
    log_alpha = np.empty((n_time, n_states))  # float64 whatever the output dtype
    log_z = _forward_log(log_initial, log_trans_t, ll, log_alpha, log_predicted, True)
    for t in range(n_time):
        for s in range(n_states):
            log_filtered[t, s] = log_alpha[t, s]
    return log_z


@njit(cache=True, nogil=True, error_model="numpy")
def _filter_serial(log_initial, log_trans, ll, mode, log_filtered, log_predicted, log_z):
    fast = _choose_fast(log_trans, mode)
    for b in range(ll.shape[0]):
        log_z[b] = _filter_one(log_initial[b], log_trans, ll[b], fast, log_filtered[b], log_predicted[b])


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def _filter_parallel(log_initial, log_trans, ll, mode, log_filtered, log_predicted, log_z):
    fast = _choose_fast(log_trans, mode)
    for b in prange(ll.shape[0]):
        log_z[b] = _filter_one(log_initial[b], log_trans, ll[b], fast, log_filtered[b], log_predicted[b])


@njit(cache=True, nogil=True, error_model="numpy")
def _viterbi_one(log_initial, log_trans_t, ll, path):
    n_time, n_states = ll.shape
    pointers = np.empty((n_time, n_states), dtype=np.int32)
    v = np.empty(n_states)
    nv = np.empty(n_states)
    for s in range(n_states):
        v[s] = log_initial[s] + float(ll[0, s])
    for t in range(1, n_time):
        top = _NEG_INF
        for j in range(n_states):
            best = _NEG_INF
            arg = 0
            for i in range(n_states):
                x = v[i] + log_trans_t[j, i]
                if x > best:  # first maximiser on ties, like torch.max
                    best = x
                    arg = i
            pointers[t, j] = arg
            nv[j] = best + float(ll[t, j])
            if nv[j] > top:
                top = nv[j]
        for j in range(n_states):
            v[j] = nv[j] - top
    arg = 0
    for s in range(1, n_states):
        if v[s] > v[arg]:
            arg = s
    path[n_time - 1] = arg
    for t in range(n_time - 1, 0, -1):
        path[t - 1] = pointers[t, path[t]]


@njit(cache=True, nogil=True, error_model="numpy")
def _viterbi_serial(log_initial, log_trans, ll, path):
    log_trans_t = np.ascontiguousarray(log_trans.T)
    for b in range(ll.shape[0]):
        _viterbi_one(log_initial[b], log_trans_t, ll[b], path[b])


@njit(cache=True, nogil=True, error_model="numpy", parallel=True)
def _viterbi_parallel(log_initial, log_trans, ll, path):
    log_trans_t = np.ascontiguousarray(log_trans.T)
    for b in prange(ll.shape[0]):
        _viterbi_one(log_initial[b], log_trans_t, ll[b], path[b])


# ----------------------------------------------------------------------------------------------------
# torch-facing wrappers
