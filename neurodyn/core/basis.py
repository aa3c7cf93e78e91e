r"""Spike-history bases and the history convolution shared by every GLM variant.

The history regressor of presynaptic neuron ``n'`` for basis function ``j`` is

.. math:: h_{t,n',j} = \sum_{k=1}^{K} \phi_{j,k}\, x_{t-k,n'}

(strictly past bins, zeros before ``t = 0``). ``K`` is ``n_lags`` (bins).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["exponential_basis", "raised_cosine_basis", "history_features"]


def exponential_basis(
    n_lags: int = 5, decay: float = 1.0, span: float = 5.0, dtype: torch.dtype = torch.float64
) -> Tensor:
    r"""The paper's single exponential history filter, shape (1, n_lags).

    .. math:: \phi_k \propto e^{-\mathrm{decay}\,(k-1)\,\Delta}, \quad k = 1..K,\quad
              \Delta = \mathrm{span} / K,\quad \Delta \sum_k \phi_k = 1.

    Lag 1 (the previous bin) gets the largest weight. With ``decay=1, n_lags=5, span=5`` (the
    paper's demo) ``φ = (0.6364, 0.2341, 0.0861, 0.0317, 0.0117)``.

    Examples
    --------
    >>> [round(float(v), 4) for v in exponential_basis()[0]]
    [0.6364, 0.2341, 0.0861, 0.0317, 0.0117]
    """
    if n_lags < 1:
        raise ValueError(f"n_lags must be >= 1, got {n_lags}")
    dt = span / n_lags
    phi = torch.exp(-decay * dt * torch.arange(n_lags, dtype=dtype))
    return (phi / (dt * phi.sum())).unsqueeze(0)


def raised_cosine_basis(
    n_basis: int = 3, n_lags: int = 20, offset: float = 1.0, dtype: torch.dtype = torch.float64
) -> Tensor:
    r"""Log-time raised-cosine bumps (Pillow et al. 2008), shape (n_basis, n_lags).

    .. math:: \phi_{j,k} = \tfrac12\left(1 + \cos\left(\mathrm{clip}\left(\frac{\log(k + c) - \mu_j}{\delta}
              \pi / 2,\ -\pi, \pi\right)\right)\right)

    with centres ``μ_j`` evenly spaced in ``log(k + c)`` between lag 1 and lag ``n_lags`` and
    ``δ`` their spacing, so neighbouring bumps overlap by half. Each row is normalised to sum 1
    (unit area per bin), so a coupling weight has the same units as with the exponential basis.

    Examples
    --------
    >>> raised_cosine_basis(3, 10).shape
    torch.Size([3, 10])
    """
    if n_basis < 1 or n_lags < 1:
        raise ValueError("n_basis and n_lags must be >= 1")
    log_lag = torch.log(torch.arange(1, n_lags + 1, dtype=dtype) + offset)
    lo, hi = math.log(1 + offset), math.log(n_lags + offset)
    centres = torch.linspace(lo, hi, n_basis, dtype=dtype) if n_basis > 1 else torch.tensor([lo], dtype=dtype)
    spacing = (hi - lo) / max(n_basis - 1, 1)
    arg = ((log_lag[None, :] - centres[:, None]) * math.pi / (2 * spacing)).clamp(-math.pi, math.pi)
    bumps = 0.5 * (1 + torch.cos(arg))
    return bumps / bumps.sum(-1, keepdim=True)


def history_features(spikes: Tensor, basis: Tensor) -> Tensor:
    """Convolve spikes with the history basis (strictly causal).

    Parameters
    ----------
    spikes : Tensor (B, T, N)
        Counts per bin.
    basis : Tensor (n_basis, K)
        ``basis[j, k-1]`` multiplies lag ``k``.

    Returns
    -------
    Tensor (B, T, N, n_basis)
        ``h[b, t, n, j] = Σ_k basis[j, k-1] · spikes[b, t-k, n]``.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[[1.], [0.], [0.]]], dtype=torch.float64)
    >>> history_features(x, torch.tensor([[0.5, 0.25]], dtype=torch.float64))[0, :, 0, 0].tolist()
    [0.0, 0.5, 0.25]
    """
    batch, n_time, n_neurons = spikes.shape
    n_basis, n_lags = basis.shape
    x = spikes.to(basis.dtype).permute(0, 2, 1).reshape(batch * n_neurons, 1, n_time)
    # cross-correlation with the flipped filter over a left-padded signal: output t sees x[t-K..t-1]
    x = F.pad(x, (n_lags, 0))
    out = F.conv1d(x, basis.flip(-1).unsqueeze(1))[..., :n_time]  # (B*N, n_basis, T)
    return out.reshape(batch, n_neurons, n_basis, n_time).permute(0, 3, 1, 2)
