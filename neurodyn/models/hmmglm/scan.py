r"""Forward messages by a parallel prefix product in scaled probability space (``method="scan"``).

For ``t >= 1`` let ``M_t = P diag(ℓ̂_t)`` with ``ℓ̂_t(j) = exp(ll_t(j) - max_j ll_t(j))`` (the transfer
from ``z_{t-1}`` to ``z_t`` including the emission at ``t``). The post-emission forward messages are
``a_t ∝ a_0 M_1 ⋯ M_t``, ``a_0 ∝ π ⊙ ℓ̂_0``. The prefix products ``Q_t = M_1 ⋯ M_t`` are computed by
odd-even reduction: multiply neighbouring pairs, recurse on the ``n/2`` pair products (which yields
every odd prefix), then one more product per even prefix. That is ``~2 log2 T`` batched matrix
products over all time steps at once (O(T S^3) flops, O(T S^2) memory), with no per-step Python work:
the cost of a CPU forward-backward becomes a few dozen BLAS calls instead of thousands of tiny ones.

Exactness. Every matrix is stored divided by its largest entry, with the log of that factor kept
in float64, so nothing overflows. Nothing that matters underflows either, provided every transition
probability is far above the underflow threshold (the same condition as the fast path of
:mod:`.inference`, ``min log P > 0.45 log(tiny)``): each row of ``M_t`` has an entry of at least
``min P`` times the matrix maximum (the argmax state of ``ℓ̂_t``), and by induction every row of any
product of ``M``'s is elementwise within a factor ``S / min P`` of every other row, so an entry that
rounds to 0 (or to the clamp ``e^{floor}``) relative to its matrix maximum also contributes less than
``e^{floor} S / min P`` relative to every sum it enters later. Emission terms more than ``-floor``
nats below the best state of their bin are clamped to ``e^{floor}`` (a normal number: no slow
subnormal arithmetic); their posterior weight is below ``e^{floor} / min P^2`` anyway.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["scan_predicted_messages"]


def _normalise(m: Tensor) -> tuple[Tensor, Tensor]:
    """Divide each (S, S) matrix by its maximum; return it and the log factor (float64)."""
    top = m.amax(dim=(-2, -1), keepdim=True)
    return m / top, top.squeeze(-1).squeeze(-1).log().double()


def _prefix_products(elems: Tensor, scale: Tensor) -> tuple[Tensor, Tensor]:
    """Inclusive prefix products of (B, n, S, S) max-normalised matrices with float64 log scales (B, n)."""
    n = elems.shape[1]
    if n == 1:
        return elems, scale
    half = n // 2
    pair, pair_scale = _normalise(elems[:, 0 : 2 * half : 2] @ elems[:, 1 : 2 * half : 2])
    odd, odd_scale = _prefix_products(pair, pair_scale + scale[:, 0 : 2 * half : 2] + scale[:, 1 : 2 * half : 2])
    out = torch.empty_like(elems)
    out_scale = torch.empty_like(scale)
    out[:, 1::2], out_scale[:, 1::2] = odd, odd_scale  # prefix ending at 2i+1 = i-th pair prefix
    out[:, 0], out_scale[:, 0] = elems[:, 0], scale[:, 0]
    n_even = (n - 1) // 2  # prefixes ending at 2i, i >= 1: prefix(2i-1) @ elem(2i)
    if n_even:
        even, even_scale = _normalise(odd[:, :n_even] @ elems[:, 2::2])
        out[:, 2::2] = even
        out_scale[:, 2::2] = even_scale + odd_scale[:, :n_even] + scale[:, 2::2]
    return out, out_scale


def scan_predicted_messages(
    log_initial: Tensor, log_transitions: Tensor, log_likelihoods: Tensor, floor: float
) -> tuple[Tensor, Tensor]:
    """Same contract as ``messages._predicted_messages``: ``pre`` (B, T, S) and ``log p(X)`` (B,; float64).

    ``pre[:, t] = log Σ_i a_{t-1}(i) P_ij`` up to a per-(b, t) constant (``pre[:, 0] = log_initial``);
    ``floor`` is the clamp of max-normalised log values before ``exp`` (see the module docstring).
    Requires ``exp(log_transitions)`` to be far from underflow (checked by the caller).
    """
    batch, n_time, n_states = log_likelihoods.shape
    transitions = torch.exp(log_transitions)
    top = log_likelihoods.amax(-1, keepdim=True)
    lik = torch.exp((log_likelihoods - top).clamp_min(floor))  # ℓ̂, max 1 per bin
    a0 = torch.exp(log_initial - log_initial.amax(-1, keepdim=True)) * lik[:, 0]
    a0_sum = a0.sum(-1, keepdim=True)
    a0 = a0 / a0_sum
    log_scale = (
        top[:, 0, 0].double() + log_initial.amax(-1).double() + a0_sum.squeeze(-1).log().double()
    )  # log of the normaliser taken out of a_0
    pre = torch.empty_like(log_likelihoods)
    pre[:, 0] = log_initial
    if n_time == 1:
        return pre, log_scale
    elems, elem_scale = _normalise(transitions * lik[:, 1:, None, :])  # (B, T-1, S, S)
    prefix, prefix_scale = _prefix_products(elems, elem_scale)
    msgs = (a0[:, None, None, :] @ prefix).squeeze(-2)  # unnormalised a_t, t = 1..T-1
    msg_sum = msgs.sum(-1, keepdim=True)
    msgs = msgs / msg_sum
    posts = torch.cat([a0.unsqueeze(1), msgs[:, :-1]], 1)  # a_0 .. a_{T-2}
    pre[:, 1:] = torch.log((posts @ transitions).clamp_min(math.exp(floor)))
    log_marginal = log_scale + prefix_scale[:, -1] + msg_sum[:, -1, 0].log().double() + top[:, 1:, 0].double().sum(1)
    return pre, log_marginal
