"""Schedules of the training harness: values that change with the epoch.

Models take the values (a KL weight, a weight decay) as arguments; which value applies at which epoch
is training policy and lives here. LangevinFlow's KL weight follows the reference code's linear warm-up
(Song et al. 2025, https://github.com/KingJamesSong/LangevinFlow_CCN): β(e) = kl_max · clip(e /
kl_ramp_epochs, 0, 1) for the 0-based epoch e; the weight decay ramps the same way.
"""

from __future__ import annotations

__all__ = ["kl_weight", "linear_ramp"]


def linear_ramp(epoch: int, max_value: float, ramp_epochs: int) -> float:
    """Linear warm-up max_value · clip(epoch / ramp_epochs, 0, 1) (0-based epoch; 0 epochs: no ramp).

    Examples
    --------
    >>> linear_ramp(0, 0.1, 500), linear_ramp(250, 0.1, 500), linear_ramp(900, 0.1, 500)
    (0.0, 0.05, 0.1)
    >>> linear_ramp(0, 0.1, 0)
    0.1
    """
    if ramp_epochs <= 0:
        return float(max_value)
    return float(max_value) * min(max(epoch / ramp_epochs, 0.0), 1.0)


def kl_weight(epoch: int, config) -> float:
    """The KL weight β at 0-based ``epoch`` for a model config with ``kl_max`` and ``kl_ramp_epochs``.

    Examples
    --------
    >>> from neurodyn.models.langevinflow import LangevinFlowConfig
    >>> kl_weight(250, LangevinFlowConfig(kl_max=0.1, kl_ramp_epochs=500))
    0.05
    """
    return linear_ramp(epoch, config.kl_max, config.kl_ramp_epochs)
