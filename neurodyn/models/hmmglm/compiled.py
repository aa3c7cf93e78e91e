r"""Compiled CPU kernels (numba) for HMM smoothing, filtering and Viterbi (``method="compiled"``).

Same contract as :mod:`.inference` (``log_initial`` (B, S), ``log_transitions`` (S, S), ``log_likelihoods``
(B, T, S) of any scale, unnormalised weights allowed); one compiled loop over time per sequence, a loop
(``prange`` when torch runs more than one thread) over the batch. Inputs may be float32 or float64; all
arithmetic is float64 and results are returned in the input dtype.

Two recursions, chosen by the spread of the transition probabilities (:func:`fast_ok`):

* scaled (``min log P - max log P > floor / 2`` with ``floor = 0.9 log(tiny_float64) ≈ -637.5``, the
  condition of ``inference._fast_ok`` in float64). ``P`` is divided by its maximum (``P̂``; this scales
  ``p(X)`` by ``(max P)^(T-1)`` and leaves every posterior unchanged). Forward:
  ``α_t = max((α_{t-1} P̂) ⊙ ℓ̂_t, e^floor)`` with ``ℓ̂_t(s) = exp(max(ll_t(s) - max_s ll_t(s), floor))``;
  a row is divided by its sum only when the sum leaves ``[2^-100, 2^32]``, so no division sits on the
  step-to-step dependency chain (the maxima and the logs of those sums add up to ``log p(X)``, float64).
  Backward, in the Rauch-Tung-Striebel form of the smoother (no backward messages, no ``exp``/``log``):
  with ``p_t = α_{t-1} P̂`` and ``r_t = γ_t / p_t``,
  ``ξ_t(i, j) = α_{t-1}(i) P̂_ij r_t(j)`` and ``γ_{t-1} = α_{t-1} ⊙ (P̂ r_t)``, ``γ_{T-1} ∝ α_{T-1}``.
  This is the backward kernel ``p(z_{t-1} = i | z_t = j, x_{0:t-1}) = α_{t-1}(i) P_ij / p_t(j)``, a
  stochastic matrix, whatever the scale of each row of ``α``: rounding errors are not amplified and the
  carried ``γ`` keeps sum 1 up to rounding (outputs and counts use it divided by its sum). The identity
  holds for unnormalised weights too (paths with ``z_{t-1} = i, z_t = j`` weigh ``F_{t-1}(i) P_ij G_t(j)``
  for forward/backward sums ``F``, ``G``). Expected transitions are ``P̂ ⊙ Σ_t α_{t-1} r_t^T`` (one
  rank-1 update per step).
  Exactness: ``p_t(j) >= min P̂ · max α_{t-1} >= min P̂ · 2^-100 / S``, so the largest term of every sum
  is at least that while a clamp adds at most ``e^floor`` per term: the relative error is below
  ``S^2 2^100 e^floor / min P̂ < S^2 2^100 e^{floor/2} ≈ S^2 · 5e-109``. ``α >= e^floor 2^-32 / S`` and
  ``p`` stay normal floats (subnormal arithmetic is ~100x slower on x86).
* log-space (tiny or zero transition probabilities): per-step log-sum-exp over ``log α_{t-1} + log P``
  in the forward pass, and the same smoother in log space (``log γ``, ``log r``), so probabilities far
  below the float64 range keep their relative precision.

Speed: vector-matrix products run as dot products in registers for few states and as row updates
(vectorised over the output) for many; two states have their own kernels in registers with one ``exp``
per step (the larger state's factor is exactly 1). Same sums in the same order in every variant.

:func:`filter_` returns ``log p(z_t | x_{0:t})`` and ``log p(z_t | x_{0:t-1})`` computed without the
clamp (``log p_t + ll_t - log Σ``, exact to rounding). :func:`viterbi` is max-product with back-pointers.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch
from numba import njit, prange
from torch import Tensor

__all__ = ["FLOOR", "fast_ok", "smooth", "filter_", "viterbi"]

#: clamp (nats below the maximum) before ``exp``: ``e^FLOOR`` is a normal float64 (see module docstring)
FLOOR = 0.9 * math.log(np.finfo(np.float64).tiny)
_TINY = math.exp(FLOOR)
#: the scaled forward pass renormalises a row only when its sum leaves [_LOW, _HIGH] (bounds in the
#: module docstring; with stochastic P sums only shrink, growth needs unnormalised weights)
_LOW, _HIGH = 2.0**-100, 2.0**32
#: up to this many states vector-matrix products run as dot products (measured faster up to ~10 states)
_SMALL = 10
_NEG_INF = -np.inf


def fast_ok(log_transitions: Tensor) -> bool:
    """Whether the kernels take the scaled recursion (exact to rounding): ``min log P - max log P >
    FLOOR / 2`` in float64 (the kernels divide P by its maximum)."""
    return bool(_choose_fast(log_transitions.detach().to(torch.float64).contiguous().numpy(), -1))


# ----------------------------------------------------------------------------------------------------
# per-sequence kernels (ll: (T, S) float32 or float64; every accumulator float64)


@njit(cache=True, nogil=True, error_model="numpy")
def _forward_scaled(log_initial, trans, trans_t, ll, alpha):
    """Scaled forward pass. ``alpha[t]`` = filtered probabilities times a per-row factor (row sums kept
    in ``[_LOW, _HIGH]`` or 1; :func:`_backward_scaled` needs no normalisation); ``trans`` has maximum 1,
    ``trans_t`` is its transpose. Returns ``log p(X)`` for ``trans``.

    Rows are renormalised only when their sum leaves ``[_LOW, _HIGH]``, so no division sits on the
    step-to-step dependency chain (``pred -> alpha -> pred``).
    """
    n_time, n_states = ll.shape
    small = n_states <= _SMALL
    pred = np.empty(n_states)
    top = log_initial[0]
    for s in range(1, n_states):
        if log_initial[s] > top:
            top = log_initial[s]
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
        log_scale += top
        total = 0.0
        for s in range(n_states):
            v = float(ll[t, s]) - top
            if v < FLOOR:
                v = FLOOR
            a = pred[s] * math.exp(v)
            if a < _TINY:
                a = _TINY
            alpha[t, s] = a
            total += a
        if total < _LOW or total > _HIGH:
            inv = 1.0 / total
            for s in range(n_states):
                alpha[t, s] *= inv
            log_scale += math.log(total)
        if t + 1 < n_time:  # pred = alpha[t] P (dot products in registers for few states,
            # row updates vectorised over j for many: the same sums in the same order)
            if small:
                for j in range(n_states):
                    acc = 0.0
                    for i in range(n_states):
                        acc += alpha[t, i] * trans_t[j, i]
                    pred[j] = acc
            else:
                for j in range(n_states):
                    pred[j] = 0.0
                for i in range(n_states):
                    ai = alpha[t, i]
                    for j in range(n_states):
                        pred[j] += ai * trans[i, j]
    total = 0.0
    for s in range(n_states):
        total += alpha[n_time - 1, s]
    return log_scale + math.log(total)


@njit(cache=True, nogil=True, error_model="numpy")
def _backward_scaled(trans, trans_t, alpha, post, counts, pairwise, want_pairwise):
    """Smoother from the scaled forward pass (rows of ``alpha`` in any scale). ``post`` may be the same
    array as ``alpha`` (row t is read before it is overwritten and row t-1 is read afterwards).
    ``counts`` (S, S, any float dtype) receives ``Σ_t ξ_t`` (accumulated in float64).

    The carried ``γ`` is not renormalised (the backward kernel is stochastic: its sum stays 1 up to
    rounding), so the dependency chain ``γ_t -> r_t -> γ_{t-1}`` holds no division; each output row and
    each count increment uses ``γ`` divided by its sum.
    """
    n_time, n_states = alpha.shape
    small = n_states <= _SMALL
    inv_pred = np.empty(n_states)
    ratio = np.empty(n_states)
    back = np.empty(n_states)
    gam = np.empty(n_states)
    acc_counts = np.zeros((n_states, n_states))
    total = 0.0
    for s in range(n_states):
        total += alpha[n_time - 1, s]
    inv_total = 1.0 / total
    for s in range(n_states):
        gam[s] = alpha[n_time - 1, s] * inv_total
        post[n_time - 1, s] = gam[s]
    inv_total = 1.0
    for t in range(n_time - 1, 0, -1):
        prev = alpha[t - 1]
        # 1 / p_t with p_t = α_{t-1} P (off the dependency chain)
        if small:
            for j in range(n_states):
                acc = 0.0
                for i in range(n_states):
                    acc += prev[i] * trans_t[j, i]
                inv_pred[j] = 1.0 / acc
        else:
            for j in range(n_states):
                back[j] = 0.0
            for i in range(n_states):
                ai = prev[i]
                for j in range(n_states):
                    back[j] += ai * trans[i, j]
            for j in range(n_states):
                inv_pred[j] = 1.0 / back[j]
        for j in range(n_states):
            ratio[j] = gam[j] * inv_pred[j]
        for i in range(n_states):
            ai = prev[i] * inv_total
            for j in range(n_states):
                acc_counts[i, j] += ai * ratio[j]
        if want_pairwise:
            for i in range(n_states):
                ai = prev[i] * inv_total
                for j in range(n_states):
                    pairwise[t - 1, i, j] = ai * trans[i, j] * ratio[j]
        # γ_{t-1} = α_{t-1} ⊙ (P r_t)
        total = 0.0
        if small:
            for i in range(n_states):
                acc = 0.0
                for j in range(n_states):
                    acc += trans[i, j] * ratio[j]
                g = prev[i] * acc
                gam[i] = g
                total += g
        else:
            for i in range(n_states):
                back[i] = 0.0
            for j in range(n_states):
                rj = ratio[j]
                for i in range(n_states):
                    back[i] += trans_t[j, i] * rj
            for i in range(n_states):
                g = prev[i] * back[i]
                gam[i] = g
                total += g
        inv_total = 1.0 / total
        for i in range(n_states):
            post[t - 1, i] = gam[i] * inv_total
    for i in range(n_states):
        for j in range(n_states):
            counts[i, j] = acc_counts[i, j] * trans[i, j]


@njit(cache=True, nogil=True, error_model="numpy")
def _forward_two(log_initial, trans, ll, alpha):
    """:func:`_forward_scaled` for two states, in registers and with one ``exp`` per step (the larger
    state's factor is exactly 1)."""
    n_time = ll.shape[0]
    t00, t01, t10, t11 = trans[0, 0], trans[0, 1], trans[1, 0], trans[1, 1]
    top = log_initial[0] if log_initial[0] > log_initial[1] else log_initial[1]
    v0 = log_initial[0] - top
    v1 = log_initial[1] - top
    p0 = math.exp(v0 if v0 > FLOOR else FLOOR)
    p1 = math.exp(v1 if v1 > FLOOR else FLOOR)
    log_scale = top
    for t in range(n_time):
        x0 = float(ll[t, 0])
        x1 = float(ll[t, 1])
        d = x0 - x1
        log_scale += x0 if d > 0.0 else x1
        v = -abs(d)
        if v < FLOOR:
            v = FLOOR
        e = math.exp(v)  # NaN in, NaN out
        a0 = p0 * (e if d < 0.0 else 1.0)
        a1 = p1 * (1.0 if d < 0.0 else e)
        if a0 < _TINY:
            a0 = _TINY
        if a1 < _TINY:
            a1 = _TINY
        total = a0 + a1
        if total < _LOW or total > _HIGH:
            inv = 1.0 / total
            a0 *= inv
            a1 *= inv
            log_scale += math.log(total)
        alpha[t, 0] = a0
        alpha[t, 1] = a1
        p0 = a0 * t00 + a1 * t10
        p1 = a0 * t01 + a1 * t11
    return log_scale + math.log(alpha[n_time - 1, 0] + alpha[n_time - 1, 1])


@njit(cache=True, nogil=True, error_model="numpy")
def _backward_two(trans, alpha, post, counts, pairwise, want_pairwise):
    """:func:`_backward_scaled` for two states, in registers (same operations in the same order)."""
    n_time = alpha.shape[0]
    t00, t01, t10, t11 = trans[0, 0], trans[0, 1], trans[1, 0], trans[1, 1]
    c00 = c01 = c10 = c11 = 0.0
    inv_total = 1.0 / (alpha[n_time - 1, 0] + alpha[n_time - 1, 1])
    g0 = alpha[n_time - 1, 0] * inv_total
    g1 = alpha[n_time - 1, 1] * inv_total
    post[n_time - 1, 0] = g0
    post[n_time - 1, 1] = g1
    inv_total = 1.0
    for t in range(n_time - 1, 0, -1):
        a0 = alpha[t - 1, 0]
        a1 = alpha[t - 1, 1]
        r0 = g0 * (1.0 / (a0 * t00 + a1 * t10))
        r1 = g1 * (1.0 / (a0 * t01 + a1 * t11))
        b0 = a0 * inv_total
        b1 = a1 * inv_total
        c00 += b0 * r0
        c01 += b0 * r1
        c10 += b1 * r0
        c11 += b1 * r1
        if want_pairwise:
            pairwise[t - 1, 0, 0] = b0 * t00 * r0
            pairwise[t - 1, 0, 1] = b0 * t01 * r1
            pairwise[t - 1, 1, 0] = b1 * t10 * r0
            pairwise[t - 1, 1, 1] = b1 * t11 * r1
        g0 = a0 * (t00 * r0 + t01 * r1)
        g1 = a1 * (t10 * r0 + t11 * r1)
        inv_total = 1.0 / (g0 + g1)
        post[t - 1, 0] = g0 * inv_total
        post[t - 1, 1] = g1 * inv_total
    counts[0, 0] = c00 * t00
    counts[0, 1] = c01 * t01
    counts[1, 0] = c10 * t10
    counts[1, 1] = c11 * t11


@njit(cache=True, nogil=True, error_model="numpy")
def _log_predict(log_alpha_row, log_trans_t, out):
    """``out[j] = log Σ_i exp(log_alpha_row[i] + log P[i, j])`` (exact; -inf when every term is -inf)."""
    n_states = out.shape[0]
    for j in range(n_states):
        top = _NEG_INF
        for i in range(n_states):
            x = log_alpha_row[i] + log_trans_t[j, i]
            if x > top:
                top = x
        if top == _NEG_INF:
            out[j] = _NEG_INF
            continue
        acc = 0.0
        for i in range(n_states):
            acc += math.exp(log_alpha_row[i] + log_trans_t[j, i] - top)
        out[j] = top + math.log(acc)


@njit(cache=True, nogil=True, error_model="numpy")
def _forward_log(log_initial, log_trans_t, ll, log_alpha, log_pred, want_pred):
    """Log-space forward pass: ``log_alpha[t]`` = log filtered (normalised); with ``want_pred`` also
    ``log_pred[t]`` = log predicted (normalised). Returns ``log p(X)``."""
    n_time, n_states = ll.shape
    cur = np.empty(n_states)
    for s in range(n_states):
        cur[s] = log_initial[s]
    log_scale = 0.0
    for t in range(n_time):
        if want_pred:
            top = _NEG_INF
            for s in range(n_states):
                if cur[s] > top:
                    top = cur[s]
            acc = 0.0
            for s in range(n_states):
                acc += math.exp(cur[s] - top)
            lz = top + math.log(acc)
            for s in range(n_states):
                log_pred[t, s] = cur[s] - lz
        top = _NEG_INF
        for s in range(n_states):
            v = cur[s] + float(ll[t, s])
            log_alpha[t, s] = v
            if v > top:
                top = v
        acc = 0.0
        for s in range(n_states):
            acc += math.exp(log_alpha[t, s] - top)
        lz = top + math.log(acc)
        for s in range(n_states):
            log_alpha[t, s] -= lz
        log_scale += lz
        if t + 1 < n_time:
            _log_predict(log_alpha[t], log_trans_t, cur)
    return log_scale


@njit(cache=True, nogil=True, error_model="numpy")
def _backward_log(log_trans, log_trans_t, log_alpha, post, counts, pairwise, want_pairwise):
    """Log-space smoother: ``log γ_{t-1}(i) = log α_{t-1}(i) + log Σ_j P_ij exp(log γ_t(j) - log p_t(j))``.
    ``post`` may be the same array as ``log_alpha`` (same row order as :func:`_backward_scaled`)."""
    n_time, n_states = log_alpha.shape
    lpred = np.empty(n_states)
    lratio = np.empty(n_states)
    lgam = np.empty(n_states)
    terms = np.empty(n_states)
    acc_counts = np.zeros((n_states, n_states))
    for s in range(n_states):
        lgam[s] = log_alpha[n_time - 1, s]
        post[n_time - 1, s] = math.exp(lgam[s])
    for t in range(n_time - 1, 0, -1):
        _log_predict(log_alpha[t - 1], log_trans_t, lpred)
        for j in range(n_states):
            # γ_t(j) > 0 implies p_t(j) > 0 in exact arithmetic; a zero γ_t(j) contributes nothing
            lratio[j] = _NEG_INF if lgam[j] == _NEG_INF else lgam[j] - lpred[j]
        for i in range(n_states):
            la = log_alpha[t - 1, i]
            top = _NEG_INF
            for j in range(n_states):
                x = la + log_trans[i, j] + lratio[j]
                terms[j] = x
                if x > top:
                    top = x
            if top == _NEG_INF:
                lgam[i] = _NEG_INF
                if want_pairwise:
                    for j in range(n_states):
                        pairwise[t - 1, i, j] = 0.0
                continue
            acc = 0.0
            scale = math.exp(top)  # log ξ_t(i, j) <= 0: no overflow
            for j in range(n_states):
                e = math.exp(terms[j] - top)
                acc += e
                acc_counts[i, j] += e * scale
                if want_pairwise:
                    pairwise[t - 1, i, j] = e * scale
            lgam[i] = top + math.log(acc)
        top = _NEG_INF
        for i in range(n_states):
            if lgam[i] > top:
                top = lgam[i]
        acc = 0.0
        for i in range(n_states):
            acc += math.exp(lgam[i] - top)
        lz = top + math.log(acc)  # 0 up to rounding: renormalise so rows keep summing to 1
        for i in range(n_states):
            lgam[i] -= lz
            post[t - 1, i] = math.exp(lgam[i])
    for i in range(n_states):
        for j in range(n_states):
            counts[i, j] = acc_counts[i, j]


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


def _inputs(log_initial: Tensor, log_transitions: Tensor, log_likelihoods: Tensor):
    """float64 numpy parameters and the (contiguous, float32/float64) likelihood array."""
    if log_likelihoods.device.type != "cpu":
        raise ValueError(f'method="compiled" runs on CPU tensors, got device {log_likelihoods.device}')
    if log_likelihoods.dtype not in (torch.float32, torch.float64):
        raise ValueError(f'method="compiled" supports float32 and float64, got {log_likelihoods.dtype}')
    batch, n_time, n_states = log_likelihoods.shape
    if n_time == 0 or n_states == 0:
        raise ValueError(f"log_likelihoods needs at least one bin and one state, got {tuple(log_likelihoods.shape)}")
    li = log_initial.detach().to(torch.float64).expand(batch, n_states).contiguous().numpy()
    lp = log_transitions.detach().to(torch.float64).contiguous().numpy()
    ll = log_likelihoods.detach().contiguous().numpy()
    return li, lp, ll


def _run(serial, parallel, batch: int, *args) -> None:
    """Call the serial kernel, or the ``prange`` one on ``min(torch threads, batch)`` numba threads."""
    n = min(torch.get_num_threads(), batch, numba.config.NUMBA_NUM_THREADS)
    if n <= 1:
        serial(*args)
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        parallel(*args)
    finally:
        numba.set_num_threads(previous)


def _mode(fast: bool | None) -> int:
    return -1 if fast is None else int(bool(fast))


def smooth(
    log_initial: Tensor,
    log_transitions: Tensor,
    log_likelihoods: Tensor,
    return_pairwise: bool = False,
    fast: bool | None = None,
) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """``log p(X)`` (B,), posteriors (B, T, S), expected transitions (B, S, S) and optionally the
    per-step pairwise (B, T-1, S, S), in the dtype of ``log_likelihoods``.

    ``fast`` forces the scaled (True) or log-space (False) recursion; default :func:`fast_ok`.
    """
    li, lp, ll = _inputs(log_initial, log_transitions, log_likelihoods)
    batch, n_time, n_states = ll.shape
    dtype = log_likelihoods.dtype
    post = torch.empty(batch, n_time, n_states, dtype=dtype)
    # float64: the forward messages are stored in the output and overwritten row by row by γ
    alpha = post if dtype == torch.float64 else torch.empty(batch, n_time, n_states, dtype=torch.float64)
    counts = torch.empty(batch, n_states, n_states, dtype=dtype)
    pairwise = torch.empty(batch, max(n_time - 1, 0) if return_pairwise else 0, n_states, n_states, dtype=dtype)
    log_z = torch.empty(batch, dtype=dtype)
    _run(
        _smooth_serial,
        _smooth_parallel,
        batch,
        li,
        lp,
        ll,
        _mode(fast),
        alpha.numpy(),
        post.numpy(),
        counts.numpy(),
        pairwise.numpy(),
        return_pairwise,
        log_z.numpy(),
    )
    return log_z, post, counts, pairwise if return_pairwise else None


def filter_(
    log_initial: Tensor, log_transitions: Tensor, log_likelihoods: Tensor, fast: bool | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """``log p(X)`` (B,), log filtered (B, T, S) and log predicted (B, T, S) (see ``inference.forward_filter``)."""
    li, lp, ll = _inputs(log_initial, log_transitions, log_likelihoods)
    batch, n_time, n_states = ll.shape
    dtype = log_likelihoods.dtype
    filtered = torch.empty(batch, n_time, n_states, dtype=dtype)
    predicted = torch.empty(batch, n_time, n_states, dtype=dtype)
    log_z = torch.empty(batch, dtype=dtype)
    args = (li, lp, ll, _mode(fast), filtered.numpy(), predicted.numpy(), log_z.numpy())
    _run(_filter_serial, _filter_parallel, batch, *args)
    return log_z, filtered, predicted


def viterbi(log_initial: Tensor, log_transitions: Tensor, log_likelihoods: Tensor) -> Tensor:
    """Most probable path (B, T), long (max-product in float64)."""
    li, lp, ll = _inputs(log_initial, log_transitions, log_likelihoods)
    path = torch.empty(ll.shape[0], ll.shape[1], dtype=torch.int64)
    _run(_viterbi_serial, _viterbi_parallel, ll.shape[0], li, lp, ll, path.numpy())
    return path
