r"""Link functions, emission log-densities and input validation for the GLM family.

Rates are **counts per bin** (not Hz). For a drive ``u`` (log-odds-like, dimensionless):

========== ============================================== ==========================================
link       rate ``λ(u)``                                  notes
========== ============================================== ==========================================
sigmoid    ``(1 - ε) σ(u) + ε``, ``ε = 1e-8``             paper default; ``λ <= 1`` spike / bin
exp        ``e^u``                                        canonical Poisson link
softplus   ``log(1 + e^u)``
========== ============================================== ==========================================

Emissions: Poisson ``x log λ - λ - log x!`` (any link) and Bernoulli ``x log λ + (1-x) log(1-λ)``
(``x ∈ {0, 1}``; only with the bounded sigmoid link, since the others can exceed 1). ``log λ`` is
computed in closed form (``logaddexp``/``logsigmoid``) instead of the paper's ``log(λ + 1e-8)``; the
difference is below 1e-8 per term.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from neurodyn.errors import InputError

__all__ = [
    "LINKS",
    "EMISSIONS",
    "RATE_FLOOR",
    "rate",
    "log_rate",
    "emission_log_prob",
    "check_emission",
    "validate_spikes",
    "inverse_link",
]

LINKS = ("sigmoid", "exp", "softplus")
EMISSIONS = ("poisson", "bernoulli")
#: ε of the bounded sigmoid link (paper: 1e-8)
RATE_FLOOR = 1e-8


def check_emission(emission: str, link: str) -> None:
    """Raise :class:`InputError` for unknown or incompatible emission / link choices.

    Examples
    --------
    >>> check_emission("bernoulli", "exp")
    Traceback (most recent call last):
    ...
    neurodyn.errors.InputError: link: Bernoulli emission needs the bounded 'sigmoid' link (rate <= 1), got 'exp'
    """
    if emission not in EMISSIONS:
        raise InputError(f"must be one of {EMISSIONS}, got {emission!r}", field="emission")
    if link not in LINKS:
        raise InputError(f"must be one of {LINKS}, got {link!r}", field="link")
    if emission == "bernoulli" and link != "sigmoid":
        raise InputError(
            f"Bernoulli emission needs the bounded 'sigmoid' link (rate <= 1), got {link!r}", field="link",
            involves=("emission",),
        )


def log_rate(drive: Tensor, link: str) -> Tensor:
    """``log λ(u)`` computed stably (see the module table)."""
    if link == "sigmoid":
        return torch.logaddexp(
            F.logsigmoid(drive) + math.log1p(-RATE_FLOOR), torch.full_like(drive, math.log(RATE_FLOOR))
        )
    if link == "exp":
        return drive
    if link == "softplus":
        # log(softplus(u)) -> u for u << 0, where softplus itself would underflow
        return torch.where(drive < -30, drive, torch.log(F.softplus(drive.clamp_min(-30))))
    raise InputError(f"must be one of {LINKS}, got {link!r}", field="link")


def rate(drive: Tensor, link: str) -> Tensor:
    """Rate ``λ(u)`` in counts per bin."""
    if link == "sigmoid":
        return (1 - RATE_FLOOR) * torch.sigmoid(drive) + RATE_FLOOR
    if link == "exp":
        return torch.exp(drive)
    if link == "softplus":
        return F.softplus(drive)
    raise InputError(f"must be one of {LINKS}, got {link!r}", field="link")


def inverse_link(mean_rate: Tensor, link: str) -> Tensor:
    """Drive ``u`` with ``λ(u) = mean_rate`` (clipped into the link's range)."""
    if link == "sigmoid":
        p = ((mean_rate - RATE_FLOOR) / (1 - RATE_FLOOR)).clamp(1e-4, 1 - 1e-4)
        return torch.logit(p)
    r = mean_rate.clamp_min(1e-4)
    if link == "exp":
        return torch.log(r)
    return torch.log(torch.expm1(r))  # softplus^{-1}


def emission_log_prob(
    spikes: Tensor, drive: Tensor, link: str, emission: str, log_factorial: Tensor | None = None
) -> Tensor:
    """Element-wise ``log p(x | λ(u))`` (same shape as the broadcast of ``spikes`` and ``drive``).

    Parameters
    ----------
    spikes : Tensor
        Counts per bin.
    drive : Tensor
        Linear predictor ``u``.
    log_factorial : Tensor, optional
        Precomputed ``lgamma(x + 1)`` (Poisson); computed when omitted.

    Examples
    --------
    >>> import torch
    >>> lp = emission_log_prob(torch.tensor([2.]), torch.tensor([0.]), "exp", "poisson")
    >>> round(float(lp), 6) == round(2 * 0 - 1 - math.log(2), 6)
    True
    """
    if emission == "poisson":
        lf = torch.lgamma(spikes + 1) if log_factorial is None else log_factorial
        return spikes * log_rate(drive, link) - rate(drive, link) - lf
    if emission == "bernoulli":
        # bounded sigmoid: 1 - λ = (1 - ε)(1 - σ(u)) exactly
        log_one_minus = F.logsigmoid(-drive) + math.log1p(-RATE_FLOOR)
        return spikes * log_rate(drive, link) + (1 - spikes) * log_one_minus
    raise InputError(f"must be one of {EMISSIONS}, got {emission!r}", field="emission")


def validate_spikes(
    spikes,
    name: str = "spikes",
    n_lags: int | None = None,
    emission: str = "poisson",
    path=None,
    dtype: torch.dtype | None = None,
    n_neurons: int | None = None,
    values: bool = True,
) -> Tensor:
    """Check a spike-count array and return it as a (B, T, N) tensor.

    Raises :class:`~neurodyn.errors.InputError` (one line naming ``path`` and ``name``) for: not 2-D/3-D,
    another number of neurons than ``n_neurons`` (a model's), NaN or infinite values, negative or
    non-integer counts, counts > 1 with a Bernoulli emission, and sequences with no more bins than the
    history window (``T <= n_lags``). A 2-D array (T, N) is one sequence. ``values=False`` checks the type
    and shape only (no read of the values: on a GPU each value check is a device sync).

    Examples
    --------
    >>> validate_spikes(np.array([[0, 1], [2, 0]]), n_lags=1).shape
    torch.Size([1, 2, 2])
    >>> validate_spikes(np.array([[0, -1]]))
    Traceback (most recent call last):
    ...
    neurodyn.errors.InputError: spikes: negative counts (min -1)
    """
    try:
        x = torch.as_tensor(np.asarray(spikes) if not isinstance(spikes, Tensor) else spikes)
    except (TypeError, ValueError) as err:
        raise InputError(f"not a numeric array ({err})", path=path, field=name) from None
    if x.dtype == torch.bool or not (
        x.is_floating_point() or x.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)
    ):
        raise InputError(f"not a numeric count array (dtype {x.dtype})", path=path, field=name)
    if x.ndim == 2:
        x = x.unsqueeze(0)
    if x.ndim != 3:
        raise InputError(
            f"expected shape (sequences, bins, neurons), got {tuple(x.shape)}", path=path, field=name
        )
    if x.numel() == 0:
        raise InputError(f"empty array of shape {tuple(x.shape)}", path=path, field=name)
    if n_neurons is not None and x.shape[-1] != n_neurons:
        raise InputError(f"{x.shape[-1]} neurons (last axis of shape {tuple(x.shape)}), the model has {n_neurons}",
                         path=path, field=name)
    if not values:
        return x.to(dtype) if dtype is not None else x
    if x.is_floating_point():
        if not torch.isfinite(x).all():
            raise InputError(
                f"{int((~torch.isfinite(x)).sum())} NaN or infinite values", path=path, field=name
            )
        if (x != torch.round(x)).any():
            raise InputError(
                "non-integer counts (spike counts per bin must be whole numbers)", path=path, field=name
            )
    if (x < 0).any():
        raise InputError(f"negative counts (min {int(x.min())})", path=path, field=name)
    if emission == "bernoulli" and (x > 1).any():
        raise InputError(
            f"counts above 1 (max {int(x.max())}) with a Bernoulli emission", path=path, field=name
        )
    if n_lags is not None and x.shape[1] <= n_lags:
        raise InputError(
            f"sequences of {x.shape[1]} bins are not longer than the history window ({n_lags} bins)",
            path=path,
            field=name,
        )
    return x.to(dtype) if dtype is not None else x
