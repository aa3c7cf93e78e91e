"""What goes into and comes out of :class:`~neurodyn.models.langevinflow.LangevinFlow`.

:class:`LangevinFlowOutput` (one forward pass), the checks of its inputs (a held-in count tensor, a
training batch; one-line :class:`~neurodyn.errors.InputError` on a wrong shape or type) and
:func:`count_parameters`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from neurodyn.errors import InputError, with_article

__all__ = ["LangevinFlowOutput", "check_batch", "check_heldin", "count_parameters"]


class LangevinFlowOutput(NamedTuple):
    """Everything one forward pass produces (batch-first; T+F = observed + forward bins).

    Attributes
    ----------
    log_rates : (batch, T+F, N_out)   log expected spike counts per bin
    z, v : (batch, T+F, D)            latent positions and velocities
    h : (batch, T+F, H)               encoder states (after dropout)
    z0_mean, z0_logvar, v0_mean, v0_logvar : (batch, D)   posterior of the initial state
    transition_mean : (batch, T+F-1, D)   velocity of each step before its noise
    noise_std : float                 the integrator's per-step noise std σ (even when ξ was 0)
    """

    log_rates: Tensor
    z: Tensor
    v: Tensor
    h: Tensor
    z0_mean: Tensor
    z0_logvar: Tensor
    v0_mean: Tensor
    v0_logvar: Tensor
    transition_mean: Tensor
    noise_std: float


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters (4,510,422 for the MC_Maze reference size H=280, 137 -> 182)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def check_heldin(heldin: Tensor, n_obs_bins: int, n_heldin: int, field: str = "heldin") -> None:
    """A float (batch, ``n_obs_bins``, ``n_heldin``) tensor of counts, or a one-line InputError."""
    if not isinstance(heldin, Tensor) or heldin.dim() != 3 or not heldin.is_floating_point():
        got = (f"{heldin.dtype} tensor of shape {tuple(heldin.shape)}" if isinstance(heldin, Tensor)
               else f"{with_article(type(heldin).__name__)} (LangevinFlow.predict takes numpy arrays too)")
        raise InputError(f"expected a float (batch, bins, held-in neurons) tensor of counts, got {got}", field=field)
    if heldin.shape[1] != n_obs_bins or heldin.shape[2] != n_heldin:
        raise InputError(f"shape {tuple(heldin.shape)} does not match (batch, {n_obs_bins}, {n_heldin})",
                         field=field)


def check_batch(batch: dict[str, Tensor], n_obs_bins: int, n_fwd_bins: int, n_heldin: int, n_neurons: int
                ) -> tuple[Tensor, Tensor, Tensor | None]:
    """``(heldin, target, target_mask or None)`` of a training batch after checking keys, shapes and dtypes."""
    for key in ("heldin", "target"):
        if key not in batch:
            raise InputError("missing key", field=f"batch/{key}")
    heldin, target = batch["heldin"], batch["target"]
    check_heldin(heldin, n_obs_bins, n_heldin, field="batch/heldin")
    expected = (heldin.shape[0], n_obs_bins + n_fwd_bins, n_neurons)
    for key in ("target", "target_mask"):
        value = batch.get(key)
        if value is not None and (not isinstance(value, Tensor) or tuple(value.shape) != expected):
            shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise InputError(f"shape {shape} does not match {expected}", field=f"batch/{key}")
    mask = batch.get("target_mask")
    if mask is not None and mask.dtype != torch.bool:
        raise InputError(f"must be a bool tensor, got {mask.dtype}", field="batch/target_mask")
    return heldin, target, mask
