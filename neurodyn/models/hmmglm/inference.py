r"""Exact, batched, log-space inference for hidden Markov models (pure functions).

Model (per sequence, states :math:`z_t \in \{0..S-1\}`, :math:`t = 0..T-1`):

.. math::
    p(X, z) = \pi_{z_0}\, \ell_0(z_0) \prod_{t \ge 1} P_{z_{t-1} z_t}\, \ell_t(z_t),
    \qquad \ell_t(s) = p(x_t \mid z_t = s).

Every function takes ``log_initial`` (S,) or (B, S), ``log_transitions`` (S, S) (row = from, column =
to) and ``log_likelihoods`` (B, T, S) (``log ℓ_t(s)``, any scale: hundreds of neurons give values of
-1e3 and below; nothing is exponentiated without first subtracting a maximum). The same code runs on
CPU and GPU, in float32 or float64; every result is in the input dtype except ``log p(X)``
(``log_marginal``), which is accumulated and returned in float64 (a sequence's log likelihood reaches
thousands of nats, whose float32 rounding, ~4e-3 nats at 5e4, is larger than the differences models are
compared on). Inputs need not be normalised: with unnormalised weights the functions compute the
corresponding path sums (this is what makes the analytic gradient checkable by finite differences).

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

from typing import NamedTuple

import torch
from torch import Tensor

from neurodyn.errors import InputError
from neurodyn.models.hmmglm.messages import METHODS, _fast_ok, _floor, _one_thread, _predicted_messages

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
        ``log p(X_b)`` per sequence, nats; float64 whatever the input dtype.
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
        ``log p(X_b)``; float64 whatever the input dtype.
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


def _check(log_initial: Tensor, log_transitions: Tensor, log_likelihoods: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    if log_likelihoods.ndim != 3:
        raise ValueError(f"log_likelihoods must be (batch, time, states), got shape {tuple(log_likelihoods.shape)}")
    batch, _, n_states = log_likelihoods.shape
    if log_transitions.shape != (n_states, n_states):
        raise ValueError(f"log_transitions must be ({n_states}, {n_states}), got {tuple(log_transitions.shape)}")
    dtype, device = log_likelihoods.dtype, log_likelihoods.device
    log_initial = torch.as_tensor(log_initial, dtype=dtype, device=device).expand(batch, n_states)
    return log_initial, log_transitions.to(dtype=dtype, device=device), log_likelihoods


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
        dtype but ``log_marginal`` in float64, no gradient); ``"scan"``: parallel prefix products in
        scaled probability space (:mod:`.scan`; exact when ``min log P > 0.45 log(tiny)``, otherwise it falls back to
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
        log_marginal = (log_initial[:, 0].double() + log_likelihoods.double().sum((1, 2))
                        + (n_time - 1) * log_transitions[0, 0].double())
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
    """Differentiable ``log p(X)`` (B,; float64, see :class:`Posterior`) by the forward algorithm.

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
    if torch.isnan(log_likelihoods).any():  # a path of NaN likelihoods was returned as if decoded (-inf is fine)
        raise InputError(f"{int(torch.isnan(log_likelihoods).sum())} NaN log-likelihoods", field="log_likelihoods")
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
