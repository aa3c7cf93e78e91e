"""Schedules of the training harness: values that change with the epoch.

Models take the values (a KL weight, a weight decay) as arguments; which value applies at which epoch
is training policy and lives here. LangevinFlow's KL weight follows the reference code's linear warm-up
(Song et al. 2025, https://github.com/KingJamesSong/LangevinFlow_CCN): β(e) = kl_max · clip(e /
kl_ramp_epochs, 0, 1) for the 0-based epoch e; the weight decay ramps the same way. The cosine learning-rate
schedule (:class:`CosineToMinLR`) decays to ``min_lr`` over its span and holds there after it.
"""

from __future__ import annotations

import torch

__all__ = ["CosineToMinLR", "kl_weight", "linear_ramp"]


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


class CosineToMinLR(torch.optim.lr_scheduler.CosineAnnealingLR):
    """Half a cosine from each group's rate to ``eta_min`` over ``T_max`` epochs, then ``eta_min`` for good.

    torch's :class:`~torch.optim.lr_scheduler.CosineAnnealingLR` is periodic: past ``T_max`` its rate rises
    again, back to the starting rate at ``2 * T_max``. A run resumed with a larger ``trainer.max_epochs`` keeps
    the span it started with (the scheduler's state is restored from the checkpoint), so its extra epochs
    climbed back up, silently. Here every epoch past the span gets ``eta_min``; up to ``T_max`` the rates are
    torch's own (its recursive update, bit for bit: the rate at ``T_max`` is ``eta_min`` exactly there too).
    The state is torch's (no attribute of its own), so checkpoints written with ``CosineAnnealingLR`` load.

    Examples
    --------
    >>> opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    >>> sched = CosineToMinLR(opt, T_max=2, eta_min=0.1)
    >>> rates = []
    >>> for _ in range(5):
    ...     rates.append(round(opt.param_groups[0]["lr"], 6))
    ...     opt.step()
    ...     sched.step()
    >>> rates
    [1.0, 0.55, 0.1, 0.1, 0.1]
    """

    def _past_span(self) -> bool:
        return self.last_epoch > self.T_max

    def get_lr(self):
        if self._past_span():
            return [self.eta_min for _ in self.optimizer.param_groups]
        return super().get_lr()

    def _get_closed_form_lr(self):  # step(epoch) (deprecated in torch): the same floor
        if self._past_span():
            return [self.eta_min for _ in self.optimizer.param_groups]
        return super()._get_closed_form_lr()
