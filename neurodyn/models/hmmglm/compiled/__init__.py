r"""Compiled CPU kernels (numba) for HMM smoothing, filtering and Viterbi (``method="compiled"``).

Same contract as :mod:`.inference` (``log_initial`` (B, S), ``log_transitions`` (S, S), ``log_likelihoods``
(B, T, S) of any scale, unnormalised weights allowed); one compiled loop over time per sequence, a loop
(``prange`` when torch runs more than one thread) over the batch. Inputs may be float32 or float64; all
arithmetic is float64 and results are returned in the input dtype, except ``log p(X)``: float64 always.

Two recursions, chosen by the spread of the transition probabilities (:func:`fast_ok`):

* scaled (``min log P - max log P > floor / 2`` with ``floor = 0.9 log(tiny_float64) ≈ -637.5``, the
  condition of ``messages._fast_ok`` in float64). ``P`` is divided by its maximum (``P̂``; this scales
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

import numba
import torch
from torch import Tensor

from neurodyn.models.hmmglm.compiled.kernels import FLOOR
from neurodyn.models.hmmglm.compiled.passes import (
    _choose_fast,
    _filter_parallel,
    _filter_serial,
    _smooth_parallel,
    _smooth_serial,
    _viterbi_parallel,
    _viterbi_serial,
)

__all__ = ["FLOOR", "fast_ok", "smooth", "filter_", "viterbi"]


def fast_ok(log_transitions: Tensor) -> bool:
    """Whether the kernels take the scaled recursion (exact to rounding): ``min log P - max log P >
    FLOOR / 2`` in float64 (the kernels divide P by its maximum)."""
    return bool(_choose_fast(log_transitions.detach().to(torch.float64).contiguous().numpy(), -1))



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
    per-step pairwise (B, T-1, S, S), in the dtype of ``log_likelihoods`` (``log p(X)``: float64).

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
    log_z = torch.empty(batch, dtype=torch.float64)
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
    """``log p(X)`` (B,; float64), log filtered (B, T, S) and log predicted (B, T, S) (see
    ``inference.forward_filter``)."""
    li, lp, ll = _inputs(log_initial, log_transitions, log_likelihoods)
    batch, n_time, n_states = ll.shape
    dtype = log_likelihoods.dtype
    filtered = torch.empty(batch, n_time, n_states, dtype=dtype)
    predicted = torch.empty(batch, n_time, n_states, dtype=dtype)
    log_z = torch.empty(batch, dtype=torch.float64)
    args = (li, lp, ll, _mode(fast), filtered.numpy(), predicted.numpy(), log_z.numpy())
    _run(_filter_serial, _filter_parallel, batch, *args)
    return log_z, filtered, predicted


def viterbi(log_initial: Tensor, log_transitions: Tensor, log_likelihoods: Tensor) -> Tensor:
    """Most probable path (B, T), long (max-product in float64)."""
    li, lp, ll = _inputs(log_initial, log_transitions, log_likelihoods)
    path = torch.empty(ll.shape[0], ll.shape[1], dtype=torch.int64)
    _run(_viterbi_serial, _viterbi_parallel, ll.shape[0], li, lp, ll, path.numpy())
    return path
