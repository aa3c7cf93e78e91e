"""Per-sequence numba kernels of the compiled HMM recursions: scaled (exact to rounding when the transition
probabilities are not tiny) and log-space forward / backward passes. The algorithms and their error bounds
are described in :mod:`neurodyn.models.hmmglm.compiled`.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

#: clamp (nats below the maximum) before ``exp``: ``e^FLOOR`` is a normal float64 (see module docstring)
FLOOR = 0.9 * math.log(np.finfo(np.float64).tiny)
_TINY = math.exp(FLOOR)
#: the scaled forward pass renormalises a row only when its sum leaves [_LOW, _HIGH] (bounds in the
#: module docstring; with stochastic P sums only shrink, growth needs unnormalised weights)
_LOW, _HIGH = 2.0**-100, 2.0**32
#: up to this many states vector-matrix products run as dot products (measured faster up to ~10 states)
_SMALL = 10
_NEG_INF = -np.inf



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
