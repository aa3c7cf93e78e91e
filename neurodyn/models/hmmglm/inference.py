r"""Exact, batched, log-space inference for hidden Markov models (pure functions).

Model (per sequence, states :math:`z_t \in \{0..S-1\}`, :math:`t = 0..T-1`):

.. math::
    p(X, z) = \pi_{z_0}\, \ell_0(z_0) \prod_{t \ge 1} P_{z_{t-1} z_t}\, \ell_t(z_t),
    \qquad \ell_t(s) = p(x_t \mid z_t = s).

Every function takes ``log_initial`` (S,) or (B, S), ``log_transitions`` (S, S) (row = from, column =
to) and ``log_likelihoods`` (B, T, S) (``log ℓ_t(s)``, any scale: hundreds of neurons give values of
-1e3 and below; nothing is exponentiated without first subtracting a maximum). The same code runs on
CPU and GPU, in float32 or float64. Inputs need not be normalised: with unnormalised weights the
functions compute the corresponding path sums (this is what makes the analytic gradient checkable by
finite differences).

Speed. On CPU tensors that do not require a gradient, the default ``method="auto"`` runs
``method="compiled"`` (:mod:`.compiled`, numba): one compiled loop over time per sequence, no per-step
Python or tensor overhead, float64 arithmetic, and a Rauch-Tung-Striebel form of the smoother (no
backward messages); it falls back to the torch methods below on GPU, under autograd, or when numba does
not import. A plain torch recursion costs ~T Python steps. ``method="chunked"`` is a two-level scan:
time is cut into C chunks of L steps; (1) for all chunks at once, L steps propagate every one-hot start
state through its chunk (an S x S transfer matrix per chunk, O(T S^3) work but batched); (2) C cheap
steps chain the chunk boundaries; (3) all chunks at once re-run their L steps from the now known
boundary messages and store the messages. About 2*sqrt(2T) Python steps instead of T.
``method="parallel"`` is a log-depth associative scan over log-semiring matrix products (O(T S^3)
memory-bound work); ``method="sequential"`` is the textbook recursion. ``method="scan"`` (:mod:`.scan`)
is an odd-even parallel prefix product in scaled probability space: ~4 log2 T batched matrix products
and no per-step Python work. Without the compiled kernels, ``"auto"`` picks the scan for few states
(:data:`SCAN_MAX_STATES`) when the transition probabilities are far from underflow, else the chunked
scan. All are exact and agree to rounding (see ``benchmarks/hmm_speed.py`` for timings).

The torch methods' vector-matrix products use ``log(exp(v - max v) @ P) + max v`` (a BLAS product, no
S x S temporaries), which is exact to rounding as long as the transition probabilities are far above the
floating-point underflow threshold (every dropped term is below ``tiny`` while the kept maximum term is at
least ``min P``); when ``min log P`` is below ``log(tiny) / 2`` the functions switch to explicit log-sum-exp.
The compiled kernels make the same switch with float64's ``tiny`` on ``min log P - max log P`` (their
arithmetic is float64 and they divide ``P`` by its maximum).
"""

from __future__ import annotations

import contextlib
import math
from typing import NamedTuple

import torch
from torch import Tensor

from neurodyn.models.hmmglm.scan import scan_predicted_messages

try:  # numba is a core dependency; without it "auto" uses the torch methods
    from neurodyn.models.hmmglm import compiled as _compiled

    _COMPILED_ERROR = ""
except ImportError as exc:  # pragma: no cover - the tests set _compiled = None to check the fallback
    _compiled = None
    _COMPILED_ERROR = str(exc)

__all__ = [
    "Posterior",
    "FilterResult",
    "forward_filter",
    "forward_backward",
    "log_marginal_likelihood",
    "viterbi",
    "sample_states",
]


class Posterior(NamedTuple):
    """Result of :func:`forward_backward`.

    Attributes
    ----------
    log_marginal : Tensor (B,)
        ``log p(X_b)`` per sequence, nats.
    posteriors : Tensor (B, T, S)
        ``γ_t(s) = p(z_t = s | X)``; rows sum to 1.
    expected_transitions : Tensor (B, S, S)
        ``Σ_{t=1}^{T-1} ξ_t(i, j)`` with ``ξ_t(i, j) = p(z_{t-1} = i, z_t = j | X)``.
    pairwise : Tensor (B, T-1, S, S) or None
        Per-step ``ξ_t`` (only when ``return_pairwise=True``; entry ``t-1`` holds ``ξ_t``).
    """

    log_marginal: Tensor
    posteriors: Tensor
    expected_transitions: Tensor
    pairwise: Tensor | None = None


class FilterResult(NamedTuple):
    """Result of :func:`forward_filter`.

    Attributes
    ----------
    log_marginal : Tensor (B,)
        ``log p(X_b)``.
    log_filtered : Tensor (B, T, S)
        ``log p(z_t | x_{0:t})``.
    log_predicted : Tensor (B, T, S)
        ``log p(z_t | x_{0:t-1})`` (``t = 0``: the normalised initial distribution).
    """

    log_marginal: Tensor
    log_filtered: Tensor
    log_predicted: Tensor


# ----------------------------------------------------------------------------------------------------
# building blocks


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


def _check(log_initial: Tensor, log_transitions: Tensor, log_likelihoods: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    if log_likelihoods.ndim != 3:
        raise ValueError(f"log_likelihoods must be (batch, time, states), got shape {tuple(log_likelihoods.shape)}")
    batch, _, n_states = log_likelihoods.shape
    if log_transitions.shape != (n_states, n_states):
        raise ValueError(f"log_transitions must be ({n_states}, {n_states}), got {tuple(log_transitions.shape)}")
    dtype, device = log_likelihoods.dtype, log_likelihoods.device
    log_initial = torch.as_tensor(log_initial, dtype=dtype, device=device).expand(batch, n_states)
    return log_initial, log_transitions.to(dtype=dtype, device=device), log_likelihoods


#: accepted ``method`` values
METHODS = ("auto", "compiled", "scan", "chunked", "sequential", "parallel")
#: "auto" uses the scan up to this many states: its batched S x S products cost ~S^3 per step and,
#: measured with ``benchmarks/hmm_speed.py`` (1 thread), it is 1.5x faster than chunked at S = 2,
#: about even at S = 5 and 2.5x slower at S = 25
SCAN_MAX_STATES = 4
#: "auto" uses the scan while its (B, T, S, S) matrices stay below this many elements (~256 MB float64)
SCAN_MAX_ELEMENTS = 1 << 25


def _compiled_ok(*tensors: Tensor) -> bool:
    """Whether ``method="compiled"`` applies: numba imports, CPU float32/float64, no autograd graph."""
    ll = tensors[-1]
    return (
        _compiled is not None
        and ll.device.type == "cpu"
        and ll.dtype in (torch.float32, torch.float64)
        and not (torch.is_grad_enabled() and any(t.requires_grad for t in tensors))
    )


def _resolve(method: str, *tensors: Tensor) -> str:
    """``"compiled"`` for ``"auto"`` when :func:`_compiled_ok`; checks an explicit ``"compiled"``."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "auto" and _compiled_ok(*tensors):
        return "compiled"
    if method == "compiled" and not _compiled_ok(*tensors):
        ll = tensors[-1]
        if _compiled is None:
            raise ImportError(f'method="compiled" needs numba, which failed to import: {_COMPILED_ERROR}')
        if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
            raise ValueError('method="compiled" returns no gradient: pass detached inputs or use another method')
        raise ValueError(f'method="compiled" needs CPU float32/float64 tensors, got {ll.device} {ll.dtype}')
    return method


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
    and ``log_marginal`` (B,) accumulated in float64 and returned in the input dtype.
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
    return pre.transpose(0, 1), log_marginal.to(ll.dtype)


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
    return pre, log_marginal.to(log_likelihoods.dtype)


# ----------------------------------------------------------------------------------------------------
# public functions


def forward_filter(
    log_initial: Tensor,
    log_transitions: Tensor,
    log_likelihoods: Tensor,
    method: str = "auto",
    chunk: int | None = None,
) -> FilterResult:
    """Forward algorithm: filtered and predicted state probabilities and ``log p(X)``.

    .. math:: \\alpha_t(j) = \\ell_t(j) \\sum_i \\alpha_{t-1}(i) P_{ij}, \\quad
              \\log p(X) = \\log \\sum_j \\alpha_{T-1}(j)

    Parameters
    ----------
    log_initial : Tensor (S,) or (B, S)
    log_transitions : Tensor (S, S)
    log_likelihoods : Tensor (B, T, S)
        ``log p(x_t | z_t = s)`` (nats, any magnitude).
    method : {"auto", "compiled", "scan", "chunked", "sequential", "parallel"}
        ``"compiled"``: numba loop on CPU (:mod:`.compiled`; float64 arithmetic, results in the input
        dtype, no gradient); ``"scan"``: parallel prefix products in scaled probability space
        (:mod:`.scan`; exact when ``min log P > 0.45 log(tiny)``, otherwise it falls back to
        ``"chunked"``); ``"auto"``: compiled on CPU tensors that do not require a gradient (when numba
        imports), else the scan when exact and its ``B T S^2`` memory fits (:data:`SCAN_MAX_ELEMENTS`),
        else chunked.
    chunk : int, optional
        Chunk length for ``"chunked"`` (default ``ceil(sqrt((T-1)/2))``).

    Returns
    -------
    FilterResult

    Examples
    --------
    >>> import torch
    >>> ll = torch.log(torch.tensor([[[0.5, 0.1], [0.2, 0.4]]]))
    >>> r = forward_filter(torch.log(torch.tensor([0.5, 0.5])), torch.log(torch.tensor([[0.9, 0.1], [0.1, 0.9]])), ll)
    >>> round(float(r.log_marginal.exp()), 4)  # 0.5*.5*(.9*.2+.1*.4) + 0.5*.1*(.1*.2+.9*.4)
    0.074
    """
    log_initial, log_transitions, log_likelihoods = _check(log_initial, log_transitions, log_likelihoods)
    method = _resolve(method, log_initial, log_transitions, log_likelihoods)
    if method == "compiled":
        return FilterResult(*_compiled.filter_(log_initial, log_transitions, log_likelihoods))
    with _one_thread(log_likelihoods.device):
        pre, log_marginal = _predicted_messages(log_initial, log_transitions, log_likelihoods, method, chunk)
    post = pre + log_likelihoods
    return FilterResult(log_marginal, torch.log_softmax(post, -1), torch.log_softmax(pre, -1))


def forward_backward(
    log_initial: Tensor,
    log_transitions: Tensor,
    log_likelihoods: Tensor,
    return_pairwise: bool = False,
    method: str = "auto",
    chunk: int | None = None,
) -> Posterior:
    """Forward-backward smoother in log space: exact posteriors and expected transition counts.

    .. math:: \\gamma_t(s) \\propto \\alpha_t(s)\\beta_t(s), \\qquad
              \\xi_t(i,j) \\propto \\alpha_{t-1}(i) P_{ij} \\ell_t(j) \\beta_t(j)

    Parameters
    ----------
    log_initial : Tensor (S,) or (B, S)
    log_transitions : Tensor (S, S)
    log_likelihoods : Tensor (B, T, S)
    return_pairwise : bool
        Also return per-step ``ξ_t`` (B, T-1, S, S) (memory ``B T S^2``).
    method, chunk
        See :func:`forward_filter`.

    Returns
    -------
    Posterior

    Examples
    --------
    >>> import torch
    >>> ll = torch.randn(2, 50, 3, dtype=torch.float64)
    >>> post = forward_backward(torch.zeros(3).log_softmax(0), torch.full((3, 3), 1 / 3).log(), ll)
    >>> torch.allclose(post.posteriors, ll.softmax(-1))  # uniform transitions: independent bins
    True
    """
    log_initial, log_transitions, log_likelihoods = _check(log_initial, log_transitions, log_likelihoods)
    method = _resolve(method, log_initial, log_transitions, log_likelihoods)
    batch, n_time, n_states = log_likelihoods.shape
    if n_states == 1:  # one state (plain GLM): a single path, no recursion needed
        log_marginal = log_initial[:, 0] + log_likelihoods.sum((1, 2)) + (n_time - 1) * log_transitions[0, 0]
        ones = torch.ones_like(log_likelihoods)
        expected = torch.full((batch, 1, 1), float(max(n_time - 1, 0)), dtype=ones.dtype, device=ones.device)
        return Posterior(
            log_marginal,
            ones,
            expected,
            ones.new_ones(batch, max(n_time - 1, 0), 1, 1) if return_pairwise else None,
        )
    if method == "compiled":
        return Posterior(*_compiled.smooth(log_initial, log_transitions, log_likelihoods, return_pairwise))
    with _one_thread(log_likelihoods.device):
        pre, log_marginal = _predicted_messages(log_initial, log_transitions, log_likelihoods, method, chunk)
    # backward messages = forward recursion on the reversed chain with P^T; the "pre-emission"
    # message of the reversed chain at reversed step k is beta_{T-1-k} (up to a constant).
    zeros = torch.zeros(batch, n_states, dtype=log_likelihoods.dtype, device=log_likelihoods.device)
    with _one_thread(log_likelihoods.device):
        beta, _ = _predicted_messages(zeros, log_transitions.T, log_likelihoods.flip(1), method, chunk)
    beta = beta.flip(1)
    alpha = torch.log_softmax(pre + log_likelihoods, -1)  # log filtered
    posteriors = torch.softmax(alpha + beta, -1)
    if n_time < 2:
        expected = torch.zeros(batch, n_states, n_states, dtype=alpha.dtype, device=alpha.device)
        return Posterior(
            log_marginal,
            posteriors,
            expected,
            expected.new_zeros(batch, 0, n_states, n_states) if return_pairwise else None,
        )
    g = log_likelihoods[:, 1:] + beta[:, 1:]
    g = g - g.amax(-1, keepdim=True)
    pairwise = None
    if return_pairwise or not _fast_ok(log_transitions):
        log_xi = alpha[:, :-1, :, None] + log_transitions + g[:, :, None, :]
        log_xi = log_xi - torch.logsumexp(log_xi, dim=(-2, -1), keepdim=True)
        xi = torch.exp(log_xi)
        expected = xi.sum(1)
        pairwise = xi if return_pairwise else None
    else:
        transitions = torch.exp(log_transitions)
        floor = _floor(alpha.dtype)
        u = torch.exp(alpha[:, :-1].clamp_min(floor))  # filtered probabilities (clamp: no subnormals)
        w = torch.exp(g.clamp_min(floor))  # max 1
        # per-step normaliser Z_t = Σ_ij u_i P_ij w_j >= min P (the argmax-w term), so no underflow
        z = ((u @ transitions) * w).sum(-1, keepdim=True)
        expected = transitions * ((u / z).transpose(1, 2) @ w)
    return Posterior(log_marginal, posteriors, expected, pairwise)


class _LogMarginal(torch.autograd.Function):
    """``log p(X)`` with the exact gradient from forward-backward (Fisher's identity):
    d/d ll_t(s) = γ_t(s), d/d log P_ij = Σ_t ξ_t(i, j), d/d log π_s = γ_0(s)."""

    @staticmethod
    def forward(ctx, log_initial, log_transitions, log_likelihoods, method):
        post = forward_backward(log_initial.detach(), log_transitions.detach(), log_likelihoods.detach(), method=method)
        ctx.save_for_backward(post.posteriors, post.expected_transitions)
        ctx.initial_shape = log_initial.shape
        return post.log_marginal

    @staticmethod
    def backward(ctx, grad):
        posteriors, expected = ctx.saved_tensors
        g = grad.to(posteriors.dtype)
        grad_ll = g[:, None, None] * posteriors
        grad_trans = (g[:, None, None] * expected).sum(0)
        grad_init = g[:, None] * posteriors[:, 0]
        if len(ctx.initial_shape) == 1:
            grad_init = grad_init.sum(0)
        return grad_init, grad_trans, grad_ll, None


def log_marginal_likelihood(
    log_initial: Tensor, log_transitions: Tensor, log_likelihoods: Tensor, method: str = "auto"
) -> Tensor:
    """Differentiable ``log p(X)`` (B,) by the forward algorithm.

    The backward pass uses the exact identity ``∂ log p(X) / ∂ log ℓ_t(s) = γ_t(s)`` (and the
    analogues for ``log P`` and ``log π``), so memory is O(B T S) and nothing is stored per Python step.

    Examples
    --------
    >>> import torch
    >>> ll = torch.randn(1, 20, 2, dtype=torch.float64, requires_grad=True)
    >>> lp = log_marginal_likelihood(torch.zeros(2).log_softmax(0), torch.full((2, 2), .5).log(), ll)
    >>> lp.sum().backward(); torch.allclose(ll.grad.sum(-1), torch.ones(1, 20, dtype=torch.float64))
    True
    """
    batch, _, n_states = log_likelihoods.shape
    log_initial = torch.as_tensor(log_initial, dtype=log_likelihoods.dtype, device=log_likelihoods.device)
    return _LogMarginal.apply(log_initial, log_transitions, log_likelihoods, method)


def viterbi(log_initial: Tensor, log_transitions: Tensor, log_likelihoods: Tensor, method: str = "auto") -> Tensor:
    """Most probable state path ``argmax_z p(z | X)`` (max-product in log space).

    Parameters
    ----------
    log_initial : Tensor (S,) or (B, S)
    log_transitions : Tensor (S, S)
    log_likelihoods : Tensor (B, T, S)
    method : {"auto", "compiled", "sequential"}
        ``"compiled"``: numba loop (CPU, float64 arithmetic); ``"sequential"``: per-step torch loop (any
        device and dtype); ``"auto"``: compiled when available for the inputs, else sequential.

    Returns
    -------
    Tensor (B, T), long

    Examples
    --------
    >>> import torch
    >>> ll = torch.log(torch.tensor([[[0.9, 0.1], [0.6, 0.4], [0.05, 0.95]]]))
    >>> viterbi(torch.log(torch.tensor([.5, .5])), torch.log(torch.tensor([[.9, .1], [.1, .9]])), ll).tolist()
    [[0, 0, 1]]
    """
    log_initial, log_transitions, log_likelihoods = _check(log_initial, log_transitions, log_likelihoods)
    if method not in ("auto", "compiled", "sequential"):
        raise ValueError(f'method must be "auto", "compiled" or "sequential", got {method!r}')
    if method != "sequential":  # the path carries no gradient: decide on detached inputs
        detached = (log_initial.detach(), log_transitions.detach(), log_likelihoods.detach())
        if _resolve(method, *detached) == "compiled":
            return _compiled.viterbi(*detached).to(log_likelihoods.device)
    batch, n_time, n_states = log_likelihoods.shape
    ll = log_likelihoods.transpose(0, 1)
    pointers = torch.empty(n_time, batch, n_states, dtype=torch.long, device=ll.device)
    v = log_initial + ll[0]
    path = torch.empty(n_time, batch, dtype=torch.long, device=ll.device)
    with _one_thread(ll.device):
        for t in range(1, n_time):
            v, pointers[t] = (v.unsqueeze(-1) + log_transitions).max(dim=-2)
            v = v + ll[t]
            v = v - v.amax(-1, keepdim=True)
        path[-1] = v.argmax(-1)
        for t in range(n_time - 1, 0, -1):
            path[t - 1] = pointers[t].gather(-1, path[t].unsqueeze(-1)).squeeze(-1)
    return path.T.contiguous()


def sample_states(
    log_initial: Tensor,
    log_transitions: Tensor,
    log_likelihoods: Tensor,
    generator: torch.Generator | None = None,
    n_samples: int = 1,
) -> Tensor:
    """Exact posterior samples ``z ~ p(z | X)`` by forward filtering, backward sampling.

    ``z_{T-1} ~ p(z_{T-1} | X)``, then ``p(z_t = i | z_{t+1} = j, X) ∝ α_t(i) P_ij`` (Gumbel-max with
    noise drawn from ``generator``).

    Returns
    -------
    Tensor (n_samples, B, T), long

    Examples
    --------
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> ll = torch.randn(2, 30, 3, dtype=torch.float64)
    >>> sample_states(torch.zeros(3), torch.full((3, 3), 1 / 3).log(), ll, g, n_samples=4).shape
    torch.Size([4, 2, 30])
    """
    log_initial, log_transitions, log_likelihoods = _check(log_initial, log_transitions, log_likelihoods)
    batch, n_time, n_states = log_likelihoods.shape
    alpha = forward_filter(log_initial, log_transitions, log_likelihoods).log_filtered.transpose(0, 1)
    device = log_likelihoods.device
    uniform = torch.rand(
        (n_time, n_samples, batch, n_states),
        generator=generator,
        dtype=log_likelihoods.dtype,
        device=generator.device if generator is not None else device,
    )
    gumbel = -torch.log(-torch.log(uniform.clamp_min(torch.finfo(uniform.dtype).tiny))).to(device)
    path = torch.empty(n_time, n_samples, batch, dtype=torch.long, device=device)
    path[-1] = (alpha[-1] + gumbel[-1]).argmax(-1)
    log_transitions_t = log_transitions.T.contiguous()  # row j = log P[:, j]
    with _one_thread(device):
        for t in range(n_time - 2, -1, -1):
            path[t] = (alpha[t] + log_transitions_t[path[t + 1]] + gumbel[t]).argmax(-1)
    return path.permute(1, 2, 0).contiguous()
