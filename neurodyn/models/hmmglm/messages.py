"""Torch message passing for the HMM recursions (any device, differentiable): the forward messages before
each emission by a chunked, a sequential, an associative-scan or a parallel (log-matrix product) pass.

:mod:`.inference` chooses among these and the numba kernels (:mod:`.compiled`) and builds the public
smoothing, filtering, likelihood and Viterbi functions on them.
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch import Tensor

from neurodyn.models.hmmglm.scan import scan_predicted_messages

#: accepted ``method`` values
METHODS = ("auto", "compiled", "scan", "chunked", "sequential", "parallel")
#: "auto" uses the scan up to this many states: its batched S x S products cost ~S^3 per step and,
#: measured with ``benchmarks/hmm_speed.py`` (1 thread), it is 1.5x faster than chunked at S = 2,
#: about even at S = 5 and 2.5x slower at S = 25
SCAN_MAX_STATES = 4
#: "auto" uses the scan while its (B, T, S, S) matrices stay below this many elements (~256 MB float64)
SCAN_MAX_ELEMENTS = 1 << 25


def _floor(dtype: torch.dtype) -> float:
    """Clamp for max-normalised log messages before ``exp``: ``exp(floor)`` is a normal number.

    Without it, messages ~1e-40 become subnormal floats, which are ~100x slower on x86 CPUs.
    """
    return 0.9 * math.log(torch.finfo(dtype).tiny)  # float32: -78.6, float64: -637


def _fast_ok(log_transitions: Tensor) -> bool:
    """Whether ``log(exp(max(v, floor)) @ P)`` is exact to rounding.

    Each output ``Σ_i e^{v_i} P_ij`` keeps its ``v_i = 0`` term, at least ``min P``; the clamp adds
    at most ``S e^{floor}``. With ``min log P > floor / 2`` the relative error is below
    ``S e^{floor/2}`` (float32: ``S·1e-17``), far below rounding.
    """
    return bool(log_transitions.min() > 0.5 * _floor(log_transitions.dtype))


def _step(v: Tensor, log_transitions: Tensor, transitions: Tensor | None) -> Tensor:
    """``log Σ_i exp(v_i) P_ij`` for ``v`` (..., S) whose max is 0; returns (..., S)."""
    if transitions is not None:
        return torch.log(torch.clamp_min(v, _floor(v.dtype)).exp_() @ transitions)
    return torch.logsumexp(v.unsqueeze(-1) + log_transitions, dim=-2)


@contextlib.contextmanager
def _one_thread(device: torch.device):
    """Run the per-step loops on one CPU thread (restored afterwards).

    Each step works on a few hundred numbers; with several intra-op threads the BLAS/OpenMP
    fork-join and spin-waiting cost far more than the work (measured 25x slower on a loaded
    2-core machine). GPU tensors are unaffected.
    """
    n = torch.get_num_threads()
    if device.type != "cpu" or n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def _auto_method(log_transitions: Tensor, shape: torch.Size, fast: bool) -> str:
    """ "scan" when exact (transitions far from underflow) and its O(B T S^2) memory is affordable
    and S is small enough that its O(T S^3) products beat the chunked scan's; else "chunked"."""
    batch, n_time, n_states = shape
    if fast and n_states <= SCAN_MAX_STATES and batch * n_time * n_states**2 <= SCAN_MAX_ELEMENTS:
        return "scan"
    return "chunked"


def _default_chunk(n_steps: int) -> int:
    # Python steps ~ 2L + C with C = n/L: minimised at L = sqrt(n / 2); below ~64 steps chunking
    # does not pay for its setup.
    return max(1, int(math.ceil(math.sqrt(n_steps / 2.0)))) if n_steps >= 64 else n_steps


def _predicted_messages(
    log_initial: Tensor,
    log_transitions: Tensor,
    log_likelihoods: Tensor,
    method: str = "auto",
    chunk: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Forward messages before the emission at every step, and ``log p(X)``.

    Returns ``pre`` (B, T, S) with ``pre[:, t] = log Σ_i exp(a_{t-1}(i)) P_ij`` up to an arbitrary
    per-(b, t) constant (``pre[:, 0] = log_initial``), where ``a_{t-1}`` is the post-emission message,
    and ``log_marginal`` (B,), accumulated and returned in float64 whatever the input dtype (a log likelihood
    of thousands of nats keeps its digits; float32 would round it to ~1e-3 of a nat per 1e4 nats).
    """
    batch, n_time, n_states = log_likelihoods.shape
    transitions = torch.exp(log_transitions) if _fast_ok(log_transitions) else None
    ll = log_likelihoods.transpose(0, 1)  # time-major (T, B, S): per-step slices are contiguous
    pre = torch.empty(n_time, batch, n_states, dtype=ll.dtype, device=ll.device)
    pre[0] = log_initial
    v = log_initial + ll[0]
    shift = v.amax(-1, keepdim=True)
    v = v - shift
    log_scale = shift.squeeze(-1).double()
    n_steps = n_time - 1
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "auto":
        method = _auto_method(log_transitions, log_likelihoods.shape, transitions is not None)
    if method == "scan":
        if transitions is None:  # tiny transition probabilities: only the log-space methods are exact
            method = "chunked"
        else:
            return scan_predicted_messages(log_initial, log_transitions, log_likelihoods, _floor(ll.dtype))
    if method == "parallel" and n_steps > 0:
        return _parallel_predicted(log_initial, log_transitions, log_likelihoods)
    length = n_steps if method == "sequential" else (chunk or _default_chunk(n_steps))
    n_chunks = n_steps // length if length > 0 else 0
    done = 1
    if n_chunks >= 2:
        main = ll[1 : 1 + n_chunks * length].reshape(n_chunks, length, batch, n_states)
        # (1) transfer matrices: row r of chunk c = message after the chunk when it starts in state r
        rows = torch.full((n_chunks, batch, n_states, n_states), -math.inf, dtype=ll.dtype, device=ll.device)
        rows.diagonal(dim1=-2, dim2=-1).fill_(0.0)
        # per-row scales in float64: they grow like L * |ll| and their differences between rows
        # (start states) must survive; in float32 that cost ~eps * L * |ll| nats per boundary
        row_scale = torch.zeros(n_chunks, batch, n_states, 1, dtype=torch.float64, device=ll.device)
        for k in range(length):
            rows = _step(rows, log_transitions, transitions) + main[:, k].unsqueeze(-2)
            m = rows.amax(-1, keepdim=True)
            rows = rows - m
            row_scale = row_scale + m
        transfer = rows.double() + row_scale  # log transfer matrices (C, B, S, S), float64
        # (2) chain the boundaries exactly (explicit log-sum-exp: transfer rows are not stochastic)
        starts = torch.empty(n_chunks, batch, n_states, dtype=ll.dtype, device=ll.device)
        v = v.double()
        for c in range(n_chunks):
            starts[c] = v
            v = torch.logsumexp(v.unsqueeze(-1) + transfer[c], dim=-2)
            m = v.amax(-1, keepdim=True)
            v = v - m
            log_scale = log_scale + m.squeeze(-1)
        v = v.to(ll.dtype)
        # (3) all chunks at once from their boundary messages
        w = starts
        out = torch.empty(length, n_chunks, batch, n_states, dtype=ll.dtype, device=ll.device)
        for k in range(length):
            p = _step(w, log_transitions, transitions)
            out[k] = p
            w = p + main[:, k]
            w = w - w.amax(-1, keepdim=True)
        pre[1 : 1 + n_chunks * length] = out.transpose(0, 1).reshape(n_chunks * length, batch, n_states)
        done = 1 + n_chunks * length
    for t in range(done, n_time):  # plain recursion (the tail, or everything)
        p = _step(v, log_transitions, transitions)
        pre[t] = p
        v = p + ll[t]
        m = v.amax(-1, keepdim=True)
        v = v - m
        log_scale = log_scale + m.squeeze(-1)
    log_marginal = log_scale + torch.logsumexp(v, -1).double()
    return pre.transpose(0, 1), log_marginal


def _log_matmul(a: Tensor, b: Tensor) -> Tensor:
    """Log-semiring product ``log Σ_j exp(a_ij + b_jk)`` over the last two dims (exact)."""
    return torch.logsumexp(a.unsqueeze(-1) + b.unsqueeze(-3), dim=-2)


def _parallel_predicted(log_initial: Tensor, log_transitions: Tensor, log_likelihoods: Tensor) -> tuple[Tensor, Tensor]:
    """Hillis-Steele inclusive scan of ``E_t = log P + ll_t`` (t >= 1) in the log semiring.

    Each element carries a max-normalised log matrix plus a float64 log scale, so nothing
    overflows and the per-row relative values stay exact.
    """
    batch, n_time, n_states = log_likelihoods.shape
    elems = log_transitions + log_likelihoods[:, 1:].unsqueeze(-2)  # (B, T-1, S, S)
    scale = elems.amax(dim=(-2, -1), keepdim=True)
    elems = elems - scale
    scale = scale.squeeze(-1).squeeze(-1).double()
    offset = 1
    n = n_time - 1
    while offset < n:
        combined = _log_matmul(elems[:, :-offset], elems[:, offset:])
        m = combined.amax(dim=(-2, -1), keepdim=True)
        elems = torch.cat([elems[:, :offset], combined - m], dim=1)
        scale = torch.cat(
            [scale[:, :offset], scale[:, :-offset] + scale[:, offset:] + m.squeeze(-1).squeeze(-1).double()],
            1,
        )
        offset *= 2
    a0 = log_initial + log_likelihoods[:, 0]
    m0 = a0.amax(-1, keepdim=True)
    a0 = a0 - m0
    # post-emission messages a_t = a_0 ⊗ prefix_t; pre_t = a_{t-1} ⊗ P
    post = torch.logsumexp(a0[:, None, :, None] + elems, dim=-2)  # (B, T-1, S)
    post_all = torch.cat([a0.unsqueeze(1), post - post.amax(-1, keepdim=True)], dim=1)
    pre = torch.empty_like(log_likelihoods)
    pre[:, 0] = log_initial
    pre[:, 1:] = torch.logsumexp(post_all[:, :-1].unsqueeze(-1) + log_transitions, dim=-2)
    log_marginal = m0.squeeze(-1).double() + scale[:, -1] + torch.logsumexp(post[:, -1], -1).double()
    return pre, log_marginal


# ----------------------------------------------------------------------------------------------------
# public functions
