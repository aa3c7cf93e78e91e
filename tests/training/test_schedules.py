"""The epoch schedules of the training harness (KL weight, weight decay) and their use by the module."""

from __future__ import annotations

import pytest

from neurodyn.models.langevinflow import LangevinFlowConfig
from neurodyn.training.schedules import kl_weight, linear_ramp


def test_linear_ramp():
    assert [linear_ramp(e, 0.1, 500) for e in (-3, 0, 100, 500, 2000)] == pytest.approx([0, 0, 0.02, 0.1, 0.1])
    assert linear_ramp(0, 0.1, 0) == 0.1


def test_kl_weight_follows_the_config():
    cfg = LangevinFlowConfig(hidden_size=8, ff_dim=16, kl_max=0.1, kl_ramp_epochs=500)
    assert [kl_weight(e, cfg) for e in (0, 250, 600)] == [0.0, 0.05, 0.1]
    assert kl_weight(0, cfg.replace(kl_ramp_epochs=0)) == 0.1


def test_module_passes_the_epochs_kl_weight(monkeypatch):
    import torch

    from neurodyn.models.langevinflow import LangevinFlow
    from neurodyn.training.module import LangevinFlowModule

    cfg = LangevinFlowConfig(hidden_size=8, ff_dim=16, kl_max=0.5, kl_ramp_epochs=4)
    module = LangevinFlowModule(n_heldin=3, n_neurons=5, n_obs_bins=6, n_fwd_bins=2, config=cfg)
    seen = []
    monkeypatch.setattr(LangevinFlow, "loss", lambda self, batch, *, kl_weight, stage: seen.append(kl_weight)
                        or {"loss": torch.zeros(())})
    monkeypatch.setattr(LangevinFlowModule, "current_epoch", property(lambda self: 2))
    monkeypatch.setattr(LangevinFlowModule, "log_dict", lambda self, *a, **k: None)
    module.training_step({"heldin": torch.zeros(1, 6, 3)}, 0)
    assert seen == [0.25]


def test_metrics_csv_records_each_epochs_learning_rate(tmp_path):
    """metrics.csv had no learning rate: a cosine run resumed for longer (which restarts the schedule's
    length, README) could not be seen. The logged ``train/lr`` is the closed-form cosine of each epoch."""
    import csv
    import math

    from neurodyn.cli import main

    lr, min_lr, epochs = 0.004, 1e-4, 3
    assert main(["fit", "--data.n_conditions", "2", "--data.trials_per_condition", "4", "--data.batch_size", "8",
                 "--model.init_args.config.hidden_size", "8", "--model.init_args.config.ff_dim", "16",
                 "--model.lr", str(lr), "--model.min_lr", str(min_lr), "--model.lr_schedule", "cosine",
                 "--trainer.max_epochs", str(epochs), "--trainer.enable_progress_bar", "false",
                 "--trainer.enable_model_summary", "false", "--trainer.default_root_dir", str(tmp_path),
                 "--run-name", "cos"]) == 0
    rows = [r for r in csv.DictReader((tmp_path / "cos" / "metrics.csv").open()) if r.get("train/lr")]
    logged = {int(r["epoch"]): float(r["train/lr"]) for r in rows}
    expected = {e: min_lr + (lr - min_lr) * (1 + math.cos(math.pi * e / epochs)) / 2 for e in range(epochs)}
    assert logged == pytest.approx(expected, rel=1e-6)  # float32 logging: 6 digits


def _stepped_rates(sched_class, epochs: int, T_max: int, lr: float, min_lr: float) -> list[float]:
    """The rate of each epoch 0..epochs-1 of a ``sched_class`` cosine over ``T_max`` epochs (stepped per epoch)."""
    import torch

    params = [torch.zeros(2, requires_grad=True)]
    opt = torch.optim.Adam(params, lr=lr)
    sched = sched_class(opt, T_max=T_max, eta_min=min_lr)
    rates = []
    for _ in range(epochs):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return rates


@pytest.mark.parametrize("T_max, lr, min_lr", [(100, 3e-3, 1e-5), (7, 5e-3, 1e-4), (1, 1e-2, 0.0)])
def test_the_modules_cosine_is_torchs_within_its_span_and_min_lr_after(monkeypatch, T_max, lr, min_lr):
    """The cosine is 'lr -> min_lr over max_epochs', but torch's CosineAnnealingLR is periodic: a run resumed with a
    larger trainer.max_epochs (the span restored from the checkpoint) climbed back up, to the full ``lr`` at twice
    the span, silently. The module's schedule now holds min_lr past the span; within it (and at its end, where the
    rate is min_lr exactly) every rate is torch's recursive one, bit for bit, so the runs and benchmark results
    made before are unchanged. Fails before (the rates past the span rose)."""
    import torch

    from neurodyn.training.module import LangevinFlowModule

    module = LangevinFlowModule(n_heldin=3, n_neurons=5, n_obs_bins=6, n_fwd_bins=2,
                                config=LangevinFlowConfig(hidden_size=8, ff_dim=16), lr=lr, min_lr=min_lr,
                                lr_schedule="cosine")
    monkeypatch.setattr(LangevinFlowModule, "trainer", property(lambda self: type("T", (), {"max_epochs": T_max})()))
    configured = module.configure_optimizers()
    opt, sched = configured["optimizer"], configured["lr_scheduler"]["scheduler"]
    rates = []
    for _ in range(3 * T_max + 2):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    torchs = _stepped_rates(torch.optim.lr_scheduler.CosineAnnealingLR, T_max + 1, T_max, lr, min_lr)
    assert rates[:T_max + 1] == torchs  # == : the same floats, not close ones
    assert rates[T_max] == min_lr
    assert rates[T_max + 1:] == [min_lr] * (2 * T_max + 1)
    assert isinstance(sched, torch.optim.lr_scheduler.CosineAnnealingLR)  # the tune trials' lr restore reads it


def test_the_cosine_loads_a_state_of_torchs_cosine_and_holds_after_its_span():
    """Checkpoints hold CosineAnnealingLR's state_dict: it loads into CosineToMinLR (the same keys), which goes on
    with the same rates within the span and min_lr past it."""
    import torch

    from neurodyn.training.schedules import CosineToMinLR

    T_max, lr, min_lr, done = 10, 3e-3, 1e-5, 6

    def run(sched_class, state=None, opt_state=None, epochs=done, start=0):
        opt = torch.optim.Adam([torch.zeros(2, requires_grad=True)], lr=lr)
        sched = sched_class(opt, T_max=T_max, eta_min=min_lr)
        if state is not None:
            opt.load_state_dict(opt_state)
            sched.load_state_dict(state)
        rates = []
        for _ in range(start, epochs):
            rates.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return rates, sched.state_dict(), opt.state_dict()

    old_rates, old_state, old_opt = run(torch.optim.lr_scheduler.CosineAnnealingLR)
    assert set(old_state) == set(run(CosineToMinLR)[1])
    rest, _, _ = run(CosineToMinLR, old_state, old_opt, epochs=3 * T_max, start=done)
    assert old_rates + rest[:T_max + 1 - done] == _stepped_rates(
        torch.optim.lr_scheduler.CosineAnnealingLR, T_max + 1, T_max, lr, min_lr)
    assert rest[T_max + 1 - done:] == [min_lr] * (2 * T_max - 1)


def test_the_tune_trials_lr_restore_follows_the_cosine_past_its_span():
    """After a PBT restore a trial's rate is the closed-form cosine at the restored epoch from its own ``lr``
    (tune.trial._scheduled_lr): past the span it is min_lr too, as the scheduler's (the closed form rose)."""
    import math

    import torch

    from neurodyn.training.schedules import CosineToMinLR
    from neurodyn.training.tune.trial import _scheduled_lr

    T_max, lr, min_lr = 5, 3e-3, 1e-5
    opt = torch.optim.Adam([torch.zeros(2, requires_grad=True)], lr=lr)
    sched = CosineToMinLR(opt, T_max=T_max, eta_min=min_lr)
    for epoch in range(3 * T_max):
        closed = _scheduled_lr(sched, lr)
        if epoch > T_max:
            assert closed == opt.param_groups[0]["lr"] == min_lr
        else:  # the closed form and torch's recursive update: a few roundings apart per epoch
            assert closed == pytest.approx(opt.param_groups[0]["lr"], rel=8 * (epoch + 1) * math.ulp(1.0))
        opt.step()
        sched.step()
