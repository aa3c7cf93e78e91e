r"""Chunked, closed-form emission log-likelihoods and their gradients (the fitting hot path).

Every GLM variant evaluates, for all rows ``r = (b, t)``, states ``s`` and neurons ``n``,

.. math:: u_{rsn} = b_n + \sum_f W_s[n, f]\, h_{rf}, \qquad
          \ell_{rs} = \sum_n \big(f(x_{rn}, u_{rsn}) - \log x_{rn}!\big)

with ``f`` the emission log-density (without ``log x!``) of :mod:`.emissions`. With autograd on the
full ``(B, T, S, N)`` drive this allocates a dozen tensors of ``B·T·S·N`` numbers per call (48 MB
each at paper size) and spends most of its time in page faults and in generic ``logaddexp`` /
``logsigmoid`` kernels. Here the rows are processed in cache-sized chunks, ``f`` and ``∂f/∂u`` are
closed forms, and only the ``(S, N, F)`` weight gradient and ``(N,)`` bias gradient are accumulated:

.. math:: \frac{\partial L}{\partial W_s[n, f]} = \sum_r g_{rs}\, \partial_u f(x_{rn}, u_{rsn})\, h_{rf},
          \qquad \frac{\partial L}{\partial b_n} = \sum_{r, s} g_{rs}\, \partial_u f(x_{rn}, u_{rsn})

for ``L = Σ_rs g_rs ℓ_rs`` (``g`` = upstream gradient, or the posteriors ``γ`` in the M-step).

Closed forms (``ε = 1e-8``, ``σ`` the logistic function; rates in counts per bin):

============================ ======================================= =======================================
emission / link              ``f(x, u)``                              ``∂f/∂u``
============================ ======================================= =======================================
Poisson / sigmoid            ``x log λ - λ``, ``λ = (1-ε)σ(u) + ε``   ``(x/λ - 1)(1-ε)σ(1-σ)``
Poisson / exp                ``x u - e^u``                            ``x - e^u``
Poisson / softplus           ``x log λ - λ``, ``λ = log(1 + e^u)``    ``(x/λ - 1) σ(u)``
Bernoulli / sigmoid          ``x log λ + (1-x) log((1-ε)(1-σ))``     ``x(1-ε)σ(1-σ)/λ - (1-x)σ``
============================ ======================================= =======================================

``log λ`` for the bounded sigmoid is ``log`` of ``λ >= ε`` directly (relative rounding of ``λ`` is
``eps``, so the absolute error of ``log λ`` is ``eps``; no underflow is possible).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import weakref

import torch
import torch.nn.functional as F
from torch import Tensor

from neurodyn.models.hmmglm.emissions import RATE_FLOOR, log_rate

__all__ = [
    "emission_terms",
    "chunked_log_emissions",
    "weighted_log_emissions",
    "gradient_only",
    "CHUNK_ELEMENTS",
]

#: drive elements (rows x S x N) per chunk: ~2 MB in float64, so temporaries stay in cache
CHUNK_ELEMENTS = 1 << 18


def emission_terms(
    spikes: Tensor, drive: Tensor, link: str, emission: str, derivative: bool = True, value: bool = True
) -> tuple[Tensor | None, Tensor | None]:
    """``f(x, u)`` (log-density without ``-log x!``) and ``∂f/∂u`` in closed form (module table).

    Parameters
    ----------
    spikes : Tensor
        Counts per bin, broadcastable against ``drive``.
    drive : Tensor
        Linear predictor ``u``.

    derivative : bool
        Also compute ``∂f/∂u`` (else None is returned in its place).
    value : bool
        Compute ``f`` (else None in its place; only the Poisson / sigmoid hot path skips the work, the
        other forms compute it anyway).

    Returns
    -------
    (Tensor, Tensor or None)
        Both of the broadcast shape.

    Examples
    --------
    >>> import torch
    >>> f, d = emission_terms(torch.tensor([2.0]), torch.tensor([0.0]), "exp", "poisson")
    >>> float(f), float(d)  # 2*0 - e^0, 2 - e^0
    (-1.0, 1.0)
    """
    if emission == "poisson":
        if link == "sigmoid":
            # in place where possible: four temporaries of the drive's size instead of twelve (this is
            # the fitting hot path, memory-bound)
            s = torch.sigmoid(drive)
            in_place = (  # the hot path: no autograd through here, spikes broadcast into the drive's shape
                not (torch.is_grad_enabled() and drive.requires_grad)
                and _broadcasts_into(spikes.shape, drive.shape)
                and torch.result_type(spikes, drive) == drive.dtype
            )
            if not in_place:  # general case: plain out-of-place arithmetic
                lam = s * (1 - RATE_FLOOR) + RATE_FLOOR
                f = spikes * torch.log(lam) - lam
                d = (spikes / lam - 1) * ((1 - RATE_FLOOR) * s * (1 - s)) if derivative else None
                return f, d
            lam = torch.mul(s, 1 - RATE_FLOOR).add_(RATE_FLOOR)
            f = torch.log(lam).mul_(spikes).sub_(lam) if value or not derivative else None
            if not derivative:
                return f, None
            d = torch.div(spikes, lam).sub_(1).mul_(s)  # (x/λ - 1) σ
            return f, d.mul_(s.neg_().add_(1)).mul_(1 - RATE_FLOOR)  # ... (1 - σ)(1 - ε)
        if link == "exp":
            lam = torch.exp(drive)
            return spikes * drive - lam, (spikes - lam) if derivative else None
        if link == "softplus":
            lam = F.softplus(drive)
            if not derivative:
                return spikes * log_rate(drive, "softplus") - lam, None
            s = torch.sigmoid(drive)
            # σ(u)/softplus(u) -> 1 for u -> -inf, where softplus underflows (0/0 otherwise)
            ratio = torch.where(drive < -30, torch.ones_like(drive), s / lam.clamp_min(1e-300))
            return spikes * log_rate(drive, "softplus") - lam, spikes * ratio - s
    if emission == "bernoulli" and link == "sigmoid":
        s = torch.sigmoid(drive)
        lam = s * (1 - RATE_FLOOR) + RATE_FLOOR
        log_one_minus = F.logsigmoid(-drive) + math.log1p(-RATE_FLOOR)
        f = spikes * torch.log(lam) + (1 - spikes) * log_one_minus
        if not derivative:
            return f, None
        d = spikes * ((1 - RATE_FLOOR) * s * (1 - s) / lam) - (1 - spikes) * s
        return f, d
    raise ValueError(f"unsupported emission/link {emission!r}/{link!r}")


def _broadcasts_into(shape: torch.Size, target: torch.Size) -> bool:
    """Whether ``shape`` broadcasts to exactly ``target`` (``torch.broadcast_shapes(shape, target) == target``
    without the Python overhead of ``torch.broadcast_shapes``, which is called on every step of a fit)."""
    return len(shape) <= len(target) and all(a == b or a == 1 for a, b in zip(reversed(shape), reversed(target)))


#: set inside :func:`gradient_only` -- per thread and per asyncio task (a context variable), so a fit in one
#: thread never changes what another thread's emission passes compute
_GRADIENT_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar("neurodyn_gradient_only", default=False)


@contextlib.contextmanager
def gradient_only():
    """Inside this block the γ-weighted emission pass (:func:`weighted_log_emissions`) returns ``0`` as its
    value and skips computing it; its gradient is unchanged (exact). For optimisation loops that only call
    ``backward()`` on the M-step loss (:func:`~neurodyn.models.hmmglm.fit.fit_em`): the value costs a
    ``log`` and a reduction over every (row, state, neuron), ~20 % of a one-hot fit.

    Examples
    --------
    >>> import torch
    >>> h, x = torch.zeros(1, 4, 2), torch.ones(1, 4, 2)
    >>> w = torch.zeros(3, 2, 2, requires_grad=True)
    >>> g = torch.full((1, 4, 3), 1 / 3)
    >>> with gradient_only():
    ...     q = weighted_log_emissions(h, x, w, torch.zeros(2), g, "exp", "poisson")
    >>> float(q)
    0.0
    """
    token = _GRADIENT_ONLY.set(True)
    try:
        yield
    finally:
        _GRADIENT_ONLY.reset(token)


def _chunks(n_rows: int, width: int):
    step = max(1, CHUNK_ELEMENTS // max(width, 1))
    for start in range(0, n_rows, step):
        yield start, min(start + step, n_rows)


def _drive(h: Tensor, weights_2d: Tensor, bias: Tensor, n_states: int) -> Tensor:
    """``u`` (S, N, rows) = ``W_s h_rᵀ + b``, the rows last (dtypes promoted as ``W @ hᵀ + b`` would).

    Rows last: every operand the closed forms broadcast against the drive -- spikes (N, rows) over
    states, posteriors (S, 1, rows) over neurons, the bias over rows -- then broadcasts along a leading
    or the innermost axis with the rows contiguous, which torch's CPU kernels vectorise; in the
    rows-first layout (rows, S, N) they broadcast along a middle axis with contiguous runs of only N,
    several times slower per elementwise op at paper size (2000 rows x 5 states x 20 neurons, float32).
    """
    u = (weights_2d @ h.T).view(n_states, -1, h.shape[0])
    return u.add_(bias[:, None]) if torch.result_type(u, bias) == u.dtype else u + bias[:, None]


class _Emissions(torch.autograd.Function):
    """``ℓ`` (R, S) or ``Σ_rs γ_rs ℓ_rs`` (scalar, when ``gamma`` is given), chunked.

    With ``gamma`` the gradient is accumulated during the forward pass (one pass over the data);
    without it the backward pass recomputes the drive chunk by chunk (nothing of size R·S·N is kept).
    Features and spikes are data: they get no gradient. Per chunk the drive is laid out (S, N, rows)
    (:func:`_drive`); ``spikes`` (N, R) and ``gamma`` (S, R) come rows last (:func:`_rows_last`), so a
    chunk of either is a view.
    """

    @staticmethod
    def forward(ctx, features, spikes, log_factorial, weights, bias, gamma, link, emission):
        n_rows = features.shape[0]
        n_states, n_neurons, n_feat = weights.shape
        weights_2d = weights.reshape(n_states * n_neurons, n_feat)
        need = ctx.needs_input_grad[3] or ctx.needs_input_grad[4]
        ctx.link, ctx.emission, ctx.weighted = link, emission, gamma is not None
        if gamma is None:
            out = features.new_empty(n_rows, n_states)
        else:
            total = features.new_zeros(())
            grad_w = features.new_zeros(n_states * n_neurons, n_feat) if need else None
            grad_b = features.new_zeros(n_neurons) if need else None
        want_value = gamma is None or not (need and _GRADIENT_ONLY.get())
        for a, b in _chunks(n_rows, n_states * n_neurons):
            h = features[a:b]
            u = _drive(h, weights_2d, bias, n_states)
            f, d = emission_terms(spikes[:, a:b], u, link, emission,
                                  derivative=need and gamma is not None, value=want_value)
            if gamma is None:
                out[a:b] = f.sum(1).T - log_factorial[a:b, None]
                continue
            g = gamma[:, a:b]  # (S, rows)
            if want_value:
                total += (g * f.sum(1)).sum() - (g.sum(0) * log_factorial[a:b]).sum()
            if need:  # d is a fresh tensor of emission_terms: weighted in place
                _accumulate(d.mul_(g[:, None, :]), h, grad_w, grad_b)
        if gamma is None:
            ctx.save_for_backward(features, spikes, weights, bias)
            return out
        if need:
            ctx.save_for_backward(grad_w.view(n_states, n_neurons, n_feat), grad_b)
        return total

    @staticmethod
    def backward(ctx, grad_out):
        if ctx.weighted:
            grad_w, grad_b = ctx.saved_tensors
            return None, None, None, grad_out * grad_w, grad_out * grad_b, None, None, None
        features, spikes, weights, bias = ctx.saved_tensors
        n_states, n_neurons, n_feat = weights.shape
        weights_2d = weights.reshape(n_states * n_neurons, n_feat)
        grad_w = features.new_zeros(n_states * n_neurons, n_feat)
        grad_b = features.new_zeros(n_neurons)
        for a, b in _chunks(features.shape[0], n_states * n_neurons):
            h = features[a:b]
            _, d = emission_terms(spikes[:, a:b], _drive(h, weights_2d, bias, n_states), ctx.link,
                                  ctx.emission, value=False)
            _accumulate(d.mul_(grad_out[a:b].T[:, None, :]), h, grad_w, grad_b)
        return None, None, None, grad_w.view(n_states, n_neurons, n_feat), grad_b, None, None, None


def _accumulate(gd: Tensor, h: Tensor, grad_w: Tensor, grad_b: Tensor) -> None:
    """Add a chunk's ``Σ_r gd[s, n, r] h[r, f]`` to ``grad_w`` (S·N, F) and ``Σ_{s,r} gd`` to ``grad_b`` (N,)
    (in the features' dtype: a wider bias promotes the drive, the accumulators stay; autograd casts the
    bias gradient back to the bias's dtype)."""
    n_states, n_neurons, n_rows = gd.shape
    gd = gd.to(grad_w.dtype)
    grad_w.addmm_(gd.view(n_states * n_neurons, n_rows), h)
    grad_b += gd.sum((0, 2))


#: per slot, the last derived copy of a data tensor: ``slot -> (weak reference to the source, (version
#: counter, dtype, shape), result)``. EM evaluates the emission pass ``n_inner`` times in a row on the same
#: batch and posteriors; ``lgamma`` over every count (~10 % of a one-hot fit at paper size) and the
#: rows-last copies of the spikes and posteriors (~6 %) were its non-trivial preparation costs.
_last: dict[str, tuple] = {}


def _reused(slot: str, source: Tensor, dtype: torch.dtype, make) -> Tensor:
    """``make()``, or its result from the last call with the same ``source`` tensor in this ``slot``.

    Reuse is keyed on the identity of the ``source`` object (a weak reference: nothing is kept alive), its
    in-place version counter (``Tensor._version``), the result's dtype and the source's shape, so a new
    tensor or an in-place edit is recomputed; inference-mode tensors (no version counter) are never reused.
    Edits that bypass the version counter (``spikes.data.fill_()``, writing into the numpy array behind
    ``torch.from_numpy``) are not seen: the fitting loops never edit their batches or posteriors.
    """
    if source.is_inference():  # inference-mode tensors keep no version counter: no reuse
        return make()
    key = (source._version, dtype, source.shape)
    last = _last.get(slot)
    if last is not None and last[0]() is source and last[1] == key:
        return last[2]
    out = make()

    def drop(ref, slot=slot):  # the source was collected: its derived copy goes with it
        if _last.get(slot, (None,))[0] is ref:
            _last.pop(slot, None)

    _last[slot] = (weakref.ref(source, drop), key, out)
    return out


def release_reused() -> None:
    """Forget every reused copy (the fitting loops call it when they return: the copies of a batch's
    spikes and posteriors are as large as the batch and are kept only while a fit runs)."""
    _last.clear()


def _rows_last(rows: Tensor, dtype: torch.dtype) -> Tensor:
    """``rows`` (R, K) as a contiguous (K, R) tensor of ``dtype``: per chunk ``[:, a:b]`` is then a view whose
    rows broadcast against the drive (S, N, rows) with the rows innermost (:func:`_drive`)."""
    return torch.empty(rows.shape[::-1], dtype=dtype, device=rows.device).copy_(rows.T)


def _flatten(features: Tensor, spikes: Tensor, emission: str) -> tuple[Tensor, Tensor, Tensor]:
    """Rows-first features (R, F), spikes (R, N) in the features' dtype and ``Σ_n log x_rn!`` (R,), the
    last reused for the same ``spikes`` (:func:`_reused`; this term only shifts the objective's value,
    never a gradient or a posterior)."""
    h = features.reshape(-1, features.shape[-1]).contiguous()
    x = spikes.reshape(-1, spikes.shape[-1]).to(h.dtype).contiguous()
    if emission != "poisson":
        return h, x, x.new_zeros(x.shape[0])
    return h, x, _reused("log_factorial", spikes, x.dtype, lambda: torch.lgamma(x + 1).sum(-1))


def _spikes_rows_last(spikes: Tensor, x: Tensor) -> Tensor:
    """The flattened spikes ``x`` (R, N) of ``spikes`` as (N, R), reused for the same ``spikes``."""
    return _reused("spikes_rows_last", spikes, x.dtype, lambda: _rows_last(x, x.dtype))


def chunked_log_emissions(
    features: Tensor, spikes: Tensor, weights: Tensor, bias: Tensor, link: str, emission: str
) -> Tensor:
    """``log p(x_t | z_t = s)`` (B, T, S), summed over neurons; differentiable in weights and bias.

    Parameters
    ----------
    features : Tensor (B, T, F)
        History regressors (data).
    spikes : Tensor (B, T, N)
        Counts per bin.
    weights : Tensor (S, N, F)
    bias : Tensor (N,)

    Examples
    --------
    >>> import torch
    >>> h, x = torch.zeros(1, 4, 2), torch.ones(1, 4, 2)
    >>> out = chunked_log_emissions(h, x, torch.zeros(3, 2, 2), torch.zeros(2), "exp", "poisson")
    >>> out.shape, round(float(out[0, 0, 0]), 6)  # 2 neurons x (1*0 - e^0 - log 1!)
    (torch.Size([1, 4, 3]), -2.0)
    """
    batch, n_time = spikes.shape[:2]
    h, x, lf = _flatten(features, spikes, emission)
    out = _Emissions.apply(h, _spikes_rows_last(spikes, x), lf, weights, bias, None, link, emission)
    return out.view(batch, n_time, weights.shape[0])


def weighted_log_emissions(
    features: Tensor,
    spikes: Tensor,
    weights: Tensor,
    bias: Tensor,
    gamma: Tensor,
    link: str,
    emission: str,
) -> Tensor:
    """``Σ_{b,t,s} γ_bts log p(x_bt | z = s)`` (scalar) in one chunked pass, gradient included.

    The emission part of the EM objective ``Q``; ``gamma`` (B, T, S) is data (no gradient).

    Examples
    --------
    >>> import torch
    >>> h, x = torch.zeros(1, 4, 2), torch.ones(1, 4, 2)
    >>> g = torch.full((1, 4, 3), 1 / 3)
    >>> round(float(weighted_log_emissions(h, x, torch.zeros(3, 2, 2), torch.zeros(2), g, "exp", "poisson")), 5)
    -8.0
    """
    h, x, lf = _flatten(features, spikes, emission)
    g = _reused("gamma_rows_last", gamma, h.dtype, lambda: _rows_last(gamma.reshape(-1, gamma.shape[-1]), h.dtype))
    return _Emissions.apply(h, _spikes_rows_last(spikes, x), lf, weights, bias, g, link, emission)
