"""Loss terms of LangevinFlow: Poisson NLL, Gaussian KLs, coordinated dropout, sample validation.

Reductions follow the reference: the NLL is a mean over the observed target entries; each KL is summed
over latent dimensions (and time) and averaged over the batch, so the balance of the two depends on the
sizes (B, T + F, N_out, D).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from neurodyn.models.langevinflow._random import bernoulli

__all__ = [
    "poisson_nll",
    "masked_mean",
    "kl_standard_normal",
    "transition_kl",
    "coordinated_dropout",
    "pad_mask",
    "gradient_masked",
    "sample_validation_targets",
]


def poisson_nll(log_rates: Tensor, counts: Tensor) -> Tensor:
    """Elementwise Poisson negative log-likelihood without the log(y!) term: exp(ℓ) - y·ℓ.

    Parameters
    ----------
    log_rates : Tensor
        ℓ, log of the expected count per bin (not Hz).
    counts : Tensor
        y, spike counts per bin, same shape.

    Examples
    --------
    >>> poisson_nll(torch.zeros(2), torch.tensor([0.0, 3.0])).tolist()
    [1.0, 1.0]
    """
    return torch.exp(log_rates) - counts * log_rates


def masked_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    """Mean of ``values`` over the entries where ``mask`` is True (all entries when None)."""
    if mask is None:
        return values.mean()
    weights = mask.to(values.dtype)
    return (values * weights).sum() / weights.sum().clamp_min(1.0)


def kl_standard_normal(mean: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(μ, diag e^{logvar}) ‖ N(0, I)) = ½ Σ_i (μ_i² + e^{logvar_i} - 1 - logvar_i), per row.

    Parameters
    ----------
    mean, logvar : Tensor, shape (batch, D)

    Returns
    -------
    Tensor, shape (batch,)

    Examples
    --------
    >>> kl_standard_normal(torch.zeros(1, 3), torch.zeros(1, 3)).item()
    0.0
    """
    return 0.5 * (mean.square() + logvar.exp() - 1.0 - logvar).sum(dim=-1)


def transition_kl(
    kind: str,
    *,
    velocities: Tensor,
    transition_mean: Tensor,
    noise_std: float,
    gamma: float,
    prior_var: float,
) -> Tensor:
    """Per-trial velocity-transition term summed over steps t ≥ 1 and dimensions.

    ``'gaussian'``: Σ_t KL(N(m_t, σ² I) ‖ N(0, σ_p² I))
    = ½ Σ_{t,i} [ln(σ_p²/σ²) - 1 + m_{t,i}²/σ_p² + σ²/σ_p²]
    with the transition mean m_t and the scheme's noise std σ (0 when σ = 0: deterministic steps).

    ``'reference'``: ½ Σ_{t,i} [ln σ_p² - 2γ - 1 + v_{t,i}²/σ_p² + e^{2γ}/σ_p²] with the sampled v_t (the
    reference passes 2γ as a log-variance), i.e. Σ v²/(2σ_p²) + const.

    Parameters
    ----------
    velocities : Tensor, shape (batch, steps + 1, D)
        v_0 … v_steps (v_0 is excluded: it has its own KL).
    transition_mean : Tensor, shape (batch, steps, D)
    noise_std, gamma, prior_var
        σ, γ and σ_p².

    Returns
    -------
    Tensor, shape (batch,)
    """
    if kind == "gaussian":
        if noise_std == 0.0 or transition_mean.shape[1] == 0:
            return transition_mean.new_zeros(transition_mean.shape[0])
        var = noise_std**2
        const = math.log(prior_var / var) - 1.0 + var / prior_var
        n_terms = transition_mean.shape[1] * transition_mean.shape[2]
        return 0.5 * (transition_mean.square().sum(dim=(1, 2)) / prior_var + const * n_terms)
    if kind == "reference":
        later = velocities[:, 1:]
        const = math.log(prior_var) - 2.0 * gamma - 1.0 + math.exp(2.0 * gamma) / prior_var
        n_terms = later.shape[1] * later.shape[2]
        return 0.5 * (later.square().sum(dim=(1, 2)) / prior_var + const * n_terms)
    raise ValueError(f"unknown transition_kl {kind!r}")


def coordinated_dropout(heldin: Tensor, keep_prob: float, generator: torch.Generator | None = None,
                        mode: str = "dropped") -> tuple[Tensor, Tensor]:
    """Coordinated dropout (reference convention: ``keep_prob`` is the KEEP probability p).

    Keep mask c ~ Bernoulli(p); the input is x·c/p (same expected sum). The gradient mask is
    g = 1 - c (``mode='dropped'``: only dropped entries get gradient, so copying inputs to rates is
    never rewarded) or, as in the reference code (``mode='reference'``), g = (1 - c) OR π with
    π ~ Bernoulli(1 - p): kept entries also get gradient with probability 1 - p. p = 1 switches CD
    off (g = 1).

    Parameters
    ----------
    heldin : Tensor, shape (batch, T, N_in)
    keep_prob : float in (0, 1]
    generator : torch.Generator, optional

    Returns
    -------
    (Tensor, Tensor)
        The masked, rescaled input (batch, T, N_in) and the boolean gradient mask (batch, T, N_in).
    """
    if keep_prob >= 1.0:
        return heldin, torch.ones_like(heldin, dtype=torch.bool)
    if mode not in ("dropped", "reference"):
        raise ValueError(f"unknown coordinated-dropout mode {mode!r}")
    keep = bernoulli(heldin.shape, keep_prob, heldin, generator)
    grad_mask = ~keep
    if mode == "reference":
        grad_mask = grad_mask | bernoulli(heldin.shape, 1.0 - keep_prob, heldin, generator)
    return heldin * keep.to(heldin.dtype) / keep_prob, grad_mask


def pad_mask(mask: Tensor, shape: torch.Size, value: bool = True) -> Tensor:
    """Pad a (batch, T, N_in) mask to (batch, T + F, N_out) with ``value`` (held-out neurons, fwd bins)."""
    extra_bins = shape[1] - mask.shape[1]
    extra_neurons = shape[2] - mask.shape[2]
    return F.pad(mask, (0, extra_neurons, 0, extra_bins), value=value)


def gradient_masked(values: Tensor, grad_mask: Tensor) -> Tensor:
    """Same values, gradient only through the entries where ``grad_mask`` is True.

    values·g + (values·(1 - g)).detach(): the loss value still counts every entry.
    """
    weights = grad_mask.to(values.dtype)
    return values * weights + (values * (1.0 - weights)).detach()


def sample_validation_targets(target: Tensor, n_obs_bins: int, n_heldin: int, keep_prob: float,
                              generator: torch.Generator | None = None) -> Tensor:
    """Sample validation (reference): on the held-out x forward block, targets × s / p, s ~ Bernoulli(p).

    Parameters
    ----------
    target : Tensor, shape (batch, T + F, N_out)
    n_obs_bins, n_heldin
        T and N_in; the block is ``target[:, T:, N_in:]``.
    keep_prob
        p (reference ``sv_rate`` 0.8).

    Returns
    -------
    Tensor, the masked targets (same shape; other blocks unchanged).
    """
    block = target[:, n_obs_bins:, n_heldin:]
    keep = bernoulli(block.shape, keep_prob, target, generator)
    out = target.clone()
    out[:, n_obs_bins:, n_heldin:] = block * keep.to(target.dtype) / keep_prob
    return out
