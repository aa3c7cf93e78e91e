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
