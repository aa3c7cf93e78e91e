"""The Lightning harness end to end through `neurodyn fit / predict` on a tiny Lorenz set."""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from random_draws import draws, seed_callers_generators

from neurodyn.cli import main
from neurodyn.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "--data", "LorenzDataModule",
    "--data.n_conditions", "4", "--data.trials_per_condition", "5", "--data.batch_size", "8",
    "--model.init_args.config.hidden_size", "8", "--model.init_args.config.ff_dim", "16",
    "--model.init_args.config.kl_ramp_epochs", "2",
    "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
    "--trainer.accelerator", "cpu",
]


def _fit(tmp_path: Path, *extra: str, name: str = "run") -> int:
    return main(["fit", *TINY, "--trainer.default_root_dir", str(tmp_path), "--run-name", name, *extra])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fit")
    assert _fit(tmp, "--trainer.max_epochs", "2") == 0
    run = tmp / "run"
    return tmp, run


def test_fit_writes_config_and_checkpoints(trained):
    tmp, run = trained
    assert (run / "config.yaml").is_file()
    # one run folder under the root, nothing else (no lightning_logs/version_N)
    assert sorted(p.name for p in tmp.iterdir()) == ["run"]
    ckpts = sorted(p.name for p in (run / "checkpoints").glob("*.ckpt"))
    assert "last.ckpt" in ckpts
    # the auto monitor picked rate R2 (synthetic data with truth): the best checkpoint is named after it
    assert any("valid_loss" in name for name in ckpts), ckpts  # selected on the loss, never on truth
    metrics = (run / "metrics.csv").read_text()
    assert "valid/rate_r2" in metrics and "train/loss" in metrics


def test_run_folder_from_before_the_datamodule_move_still_predicts(trained, tmp_path):
    """config.yaml of older runs names neurodyn.data.datamodule.LorenzDataModule (moved to training)."""
    import shutil

    _, run = trained
    old = tmp_path / "old_run"
    shutil.copytree(run, old)
    config = (old / "config.yaml").read_text()
    assert "neurodyn.training.datamodules.LorenzDataModule" in config
    (old / "config.yaml").write_text(config.replace("neurodyn.training.datamodules.", "neurodyn.data.datamodule."))
    out = tmp_path / "pred.h5"
    assert main(["predict", "--run", str(old), "--ckpt_path", "last", "--prediction.path", str(out)]) == 0
    assert out.is_file()


def test_checkpoint_roundtrip_and_predict_file(trained, tmp_path):
    from neurodyn.training.datamodules import LorenzDataModule
    from neurodyn.training.module import LangevinFlowModule

    _, run = trained
    ckpt = run / "checkpoints" / "last.ckpt"
    out = tmp_path / "pred.h5"
    before = sorted(p.relative_to(run) for p in run.rglob("*"))
    code = main(["predict", "--run", str(run), "--ckpt_path", "last", "--prediction.path", str(out)])
    assert code == 0 and out.is_file()
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == before  # predict writes no logs
    module = LangevinFlowModule.load_from_checkpoint(ckpt, map_location="cpu", weights_only=False)
    module.eval()
    dm = LorenzDataModule(n_conditions=4, trials_per_condition=5, batch_size=8)
    with torch.no_grad():
        rates = module.model.predict(torch.as_tensor(dm.splits["valid"].heldin))["rates"].numpy()
    with h5py.File(out) as f:
        assert f["train_rates"].shape == dm.splits["train"].target.shape
        stored = f["valid_rates"][()]
        assert f["valid_z"].shape[:2] == stored.shape[:2]
    # prediction is seeded (fixed noise draws), so file and fresh prediction agree to float32 rounding
    np.testing.assert_allclose(stored, rates, rtol=1e-5, atol=1e-7)


def test_resume_continues_in_the_same_run_folder(trained, tmp_path):
    import shutil

    _, run = trained
    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    assert main(["fit", "--run", str(copy), "--trainer.max_epochs", "3"]) == 0
    ckpt = torch.load(copy / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["epoch"] == 2  # epochs 0, 1 restored; only epoch 2 was trained
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy"]
    epochs = [line.split(",")[0] for line in (copy / "metrics.csv").read_text().splitlines()[1:]]
    assert sorted(set(epochs)) == ["0", "1", "2"]  # the first fit's rows are kept


def test_neuron_count_mismatch_is_a_one_line_error(trained, tmp_path, capsys):
    _, run = trained
    code = main(["predict", "--config", str(run / "config.yaml"), "--data.n_neurons", "12",
                 "--ckpt_path", str(run / "checkpoints" / "last.ckpt"),
                 "--prediction.path", str(tmp_path / "p.h5")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[-1].startswith("neurodyn predict: error:") and "n_heldin" in err[-1]
    assert not (tmp_path / "p.h5").exists()


def test_missing_data_file(tmp_path, capsys):
    missing = tmp_path / "nope.h5"
    code = main(["fit", "--data", "NLBDataModule", "--data.path", str(missing)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and str(missing) in err[-1] and "data.init_args.path" in err[-1]
    broken = tmp_path / "broken.h5"  # a link to nothing was 'file not found', while ls lists the name
    broken.symlink_to(missing)
    assert main(["fit", "--data", "NLBDataModule", "--data.path", str(broken)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"neurodyn fit: error: {broken}: data.init_args.path: broken symbolic link (to {missing}, which does not "
        "exist)"]


def test_unknown_datamodule_is_one_line(capsys):
    assert main(["fit", "--data", "NoSuchDataModule"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "data: unknown class 'NoSuchDataModule'" in err[0] and "LorenzDataModule" in err[0]


def test_nan_loss_stops_with_step_and_keeps_last_good_checkpoint(tmp_path, monkeypatch, capsys):
    from neurodyn.models.langevinflow import LangevinFlow

    real_loss = LangevinFlow.loss

    def loss(self, batch, *, kl_weight, stage="train", **kw):
        out = real_loss(self, batch, kl_weight=kl_weight, stage=stage, **kw)
        if stage == "train" and kl_weight > 0:  # from epoch 1 on (kl_ramp_epochs 2)
            out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(LangevinFlow, "loss", loss)
    code = _fit(tmp_path, "--trainer.max_epochs", "3")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert "non-finite training loss" in err[-1] and "epoch 1" in err[-1] and "global step 2" in err[-1]
    assert err[-1].endswith("; the checkpoints saved so far are kept (last.ckpt: epoch 0)"), err[-1]
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 0
    assert all(torch.isfinite(v).all() for v in last["state_dict"].values())


@pytest.mark.parametrize("family", ["LangevinFlow", "HMM-GLM"])
def test_a_non_finite_loss_in_the_first_epoch_says_nothing_is_kept(tmp_path, monkeypatch, capsys, family):
    """``fit --model.init_args.lr 1e6`` diverged in epoch 0 and said 'the last good checkpoint is kept' while
    there was none and the run folder was removed: the message says what is kept (nothing) and that the folder
    goes. The HMM-GLM message said nothing of it."""
    if family == "LangevinFlow":
        from neurodyn.models.langevinflow import LangevinFlow

        real_loss = LangevinFlow.loss

        def loss(self, batch, *, kl_weight, stage="train", **kw):
            out = real_loss(self, batch, kl_weight=kl_weight, stage=stage, **kw)
            if stage == "train":
                out["loss"] = out["loss"] * float("nan")
            return out

        monkeypatch.setattr(LangevinFlow, "loss", loss)
        code = _fit(tmp_path, "--trainer.max_epochs", "3")
        start = "non-finite training loss (nan) at epoch 0, global step 0, batch 0; "
    else:
        from neurodyn.models.hmmglm.models import SwitchingGLM

        real_m_step = SwitchingGLM.m_step_loss
        monkeypatch.setattr(SwitchingGLM, "m_step_loss", lambda *a, **k: real_m_step(*a, **k) * float("nan"))
        code = main(["fit", "--model", "HMMGLMModule", "--model.config.variant", "gaussian",
                     "--model.config.n_states", "2", "--model.config.n_lags", "4", "--model.n_inner", "3",
                     "--data", "SwitchingGLMDataModule", "--data.n_states", "2", "--data.n_neurons", "4",
                     "--data.n_sequences", "4", "--data.n_bins", "500", "--data.n_train", "2",
                     "--trainer.max_epochs", "2", "--trainer.accelerator", "cpu",
                     "--trainer.enable_model_summary", "false", "--trainer.default_root_dir", str(tmp_path),
                     "--run-name", "run"])
        start = "non-finite loss at epoch 0, step 3; "  # the n_inner M-step steps of the first batch
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and start in err[-1], err
    assert err[-1].endswith("; no epoch had finished, so no checkpoint was saved: nothing is kept, and the run folder "
                            f"{tmp_path / 'run'} is removed"), err[-1]
    assert not (tmp_path / "run").exists()


def test_a_non_finite_loss_outside_neurodyn_fit_without_checkpoints_claims_nothing(tmp_path):
    """A trainer with no checkpoint callback outside ``neurodyn fit`` (a tune trial: Ray keeps its checkpoints)
    gets no word on what is kept (it said 'the last good checkpoint is kept'); with checkpointing off under
    ``neurodyn fit``, the folder fit made is named as removed."""
    import lightning.pytorch as pl

    from neurodyn.training.callbacks import ResumeState
    from neurodyn.training.module import kept_after_divergence

    trainer = pl.Trainer(enable_checkpointing=False, logger=False, default_root_dir=tmp_path)
    assert kept_after_divergence(trainer) == ""
    resume = ResumeState()
    resume.new_run_dir = tmp_path / "run"
    trainer = pl.Trainer(enable_checkpointing=False, logger=False, default_root_dir=tmp_path, callbacks=[resume])
    assert kept_after_divergence(trainer) == ("; checkpointing is off, so no checkpoint was saved: nothing is kept, "
                                              f"and the run folder {tmp_path / 'run'} is removed")


@pytest.mark.parametrize("config", sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "configs").rglob("*.yaml")
                                           if p.parent.name != "tune"))  # tune/: search spaces, not fit configs
def test_every_config_parses(config, capsys):
    try:
        code = main(["fit", "--config", str(ROOT / config), "--print_config"])
    except SystemExit as exc:  # --print_config exits; neurodyn.cli may turn that into a return code
        code = exc.code
    assert code in (0, None)
    assert "class_path" in capsys.readouterr().out


def test_predict_follows_the_output_policy(trained, tmp_path, capsys):
    """The prediction file may not replace the checkpoint, the run's config or an existing file (unless
    --overwrite); each refusal is one line, exit 2, and leaves the inputs byte for byte as they were."""
    import hashlib

    _, run = trained
    ckpt = run / "checkpoints" / "last.ckpt"

    def digest(p: Path) -> str:
        return hashlib.sha256(p.read_bytes()).hexdigest()

    before = {p: digest(p) for p in (ckpt, run / "config.yaml")}
    for target in (ckpt, run / "config.yaml", run / "checkpoints" / "link.ckpt"):
        if target.name == "link.ckpt":
            target.symlink_to(ckpt)  # a link to an input is that input
        code = main(["predict", "--run", str(run), "--ckpt_path", "last", "--prediction.path", str(target)])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and len(err) == 1 and "prediction.path" in err[0] and "input" in err[0], err
    (run / "checkpoints" / "link.ckpt").unlink()
    assert {p: digest(p) for p in before} == before
    out = tmp_path / "pred.h5"
    out.write_bytes(b"keep me")
    assert main(["predict", "--run", str(run), "--ckpt_path", "last", "--prediction.path", str(out)]) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err and out.read_bytes() == b"keep me"
    assert main(["predict", "--run", str(run), "--ckpt_path", "last", "--prediction.path", str(out),
                 "--overwrite"]) == 0
    with h5py.File(out) as f:
        assert "valid_rates" in f


def test_validate_of_a_checkpoint_uses_its_epochs_kl_weight(trained, capsys):
    """`validate` starts a trainer at epoch 0; the KL weight (ramped over epochs) must be that of the
    checkpoint's epoch, as the fit logged it for these weights, not the untrained epoch 0's (weight 0)."""
    import csv

    _, run = trained
    assert main(["validate", "--run", str(run), "--ckpt_path", "last"]) == 0
    out = capsys.readouterr().out
    shown = {line.split()[1]: float(line.split()[3]) for line in out.splitlines()
             if line.strip().startswith("│") and "valid/" in line}
    with open(run / "metrics.csv", newline="") as f:
        logged = [r for r in csv.DictReader(f) if r.get("valid/kl_weight")][-1]
    assert float(logged["valid/kl_weight"]) > 0
    assert shown["valid/kl_weight"] == pytest.approx(float(logged["valid/kl_weight"]))
    assert shown["valid/total"] == pytest.approx(float(logged["valid/total"]), rel=1e-5)


def test_fit_leaves_the_signal_handlers_as_it_found_them(tmp_path):
    """The interrupt handlers live only while training runs: after `fit` returns, SIGTERM / SIGINT act as
    before (a leftover handler would swallow the first signal of whatever the process does next)."""
    import signal

    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    assert _fit(tmp_path, "--trainer.max_epochs", "1") == 0
    assert {s: signal.getsignal(s) for s in before} == before


def test_seed_everything_true_draws_a_seed_that_the_run_records(tmp_path, capsys):
    """``--seed_everything true`` is "a random seed" (--help): Lightning's seed_everything(None) took 0 (or an
    earlier PL_GLOBAL_SEED), so two such fits were the same run. Each draws a seed now, says it and records it in
    config.yaml, and a fit given that seed is the same run, bit for bit."""
    import yaml

    seeds, weights = [], []
    for name in ("a", "b"):
        capsys.readouterr()
        assert _fit(tmp_path, "--trainer.max_epochs", "1", "--seed_everything", "true", name=name) == 0
        seed = yaml.safe_load((tmp_path / name / "config.yaml").read_text())["seed_everything"]
        assert isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2**32
        assert f"note: seed_everything: true drew the seed {seed} " in capsys.readouterr().out
        seeds.append(seed)
        weights.append(torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"])
    assert seeds[0] != seeds[1]
    assert any(not torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert _fit(tmp_path, "--trainer.max_epochs", "1", "--seed_everything", str(seeds[0]), name="again") == 0
    again = torch.load(tmp_path / "again" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(weights[0][k], again[k]) for k in again)


@pytest.mark.parametrize("env", [{"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}, {"SLURM_NTASKS": "4"}])
def test_seed_everything_true_is_refused_where_another_launcher_started_the_processes(tmp_path, capsys,
                                                                                   monkeypatch, env):
    """torchrun / srun start every process of a run themselves, and each runs the command line: with
    ``seed_everything: true`` each drew its own seed (config.yaml recorded rank 0's, so a rerun with it was not
    the same run). Refused in one line, before anything is written; Lightning's own launcher hands its drawn seed
    on (PL_GLOBAL_SEED), so a plain fit draws as before."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("PL_GLOBAL_SEED", raising=False)
    capsys.readouterr()
    assert _fit(tmp_path, "--trainer.max_epochs", "1", "--seed_everything", "true", name="x") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "seed_everything: true draws a seed in each process" in err[0], err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("env", [{"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"}, {"SLURM_NTASKS": "4"}])
def test_a_new_run_folder_is_refused_where_another_launcher_started_the_processes(tmp_path, capsys, monkeypatch,
                                                                                 env):
    """torchrun / srun start every process of a run themselves: without --run-name each named a new timestamped run
    folder of its own, and the ranks > 0 left theirs empty beside the run. Refused in one line, before anything
    is written; with --run-name every process writes the same folder (Lightning's launcher hands rank 0's on)."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("NEURODYN_RUN_DIR", raising=False)
    capsys.readouterr()
    assert main(["fit", *TINY, "--trainer.default_root_dir", str(tmp_path / "runs"), "--trainer.max_epochs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["neurodyn fit: error: run_name: torchrun / srun start each process of the run on its own, and each "
                   "would make a run folder of its own: give --run-name NAME (the same in every process)"], err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("args, field", [
    (["--trainer.max_epochs", "-3"], "trainer.max_epochs: `max_epochs` must be a non-negative integer"),
    (["--trainer.accelerator", "mps"], "trainer: `MPSAccelerator` can not run"),  # Apple GPUs only
    # was "trainer: `Timer(duration='abc')` is not a valid duration", blaming the whole section
    (["--trainer.max_time", "abc"], "trainer.max_time: 'abc' is not a duration; give DD:HH:MM:SS"),
    (["--trainer.max_time", "{hourz: 1}"], "trainer.max_time: {'hourz': 1} is not a duration"),
    (["--seed_everything", "-5"], "seed_everything: must be in 0 .. 4294967295"),
    (["--seed_everything", "99999999999999999999"], "seed_everything: must be in 0 .. 4294967295"),
    (["--model.init_args.lr", "-1"], "lr: must be a finite number > 0"),
    (["--model.init_args.weight_decay", "-1"], "weight_decay: must be a finite number >= 0"),
    (["--model.init_args.lr_factor", "1.5"], "lr_factor: must be in (0, 1)"),
    # found only once the model is built and the optimiser configured: the run folder made by then goes too
    # (max_epochs 0 is refused up front now: "trains nothing"; -1 with a time limit still reaches this check)
    (["--model.init_args.lr_schedule", "cosine", "--trainer.max_epochs", "-1", "--trainer.max_time", "00:00:01:00"],
     "lr_schedule: needs a finite"),
    # badin: Lightning divides by these (a ZeroDivisionError traceback after the first batch or epoch, exit 1) ...
    (["--trainer.accumulate_grad_batches", "0"], "trainer.accumulate_grad_batches: must be a whole number >= 1"),
    (["--trainer.check_val_every_n_epoch", "0"],
     "trainer.check_val_every_n_epoch: must be a whole number >= 1 or null"),
    (["--trainer.val_check_interval", "0"], "trainer.val_check_interval: must be above 0"),
    # ... or took these without a word, exit 0: a step / validation / log every batch, gradients turned around,
    # no training batch at all
    (["--trainer.accumulate_grad_batches", "-1"], "trainer.accumulate_grad_batches: must be a whole number >= 1"),
    (["--trainer.check_val_every_n_epoch", "-1"], "trainer.check_val_every_n_epoch: must be a whole number >= 1"),
    (["--trainer.log_every_n_steps", "-1"], "trainer.log_every_n_steps: must be a whole number >= 0"),
    (["--trainer.num_sanity_val_steps", "-5"], "trainer.num_sanity_val_steps: must be a whole number >= -1"),
    (["--trainer.min_epochs", "-3"], "trainer.min_epochs: must be a whole number >= 0"),
    (["--trainer.gradient_clip_val", "-1"], "trainer.gradient_clip_val: must be a finite number >= 0"),
    (["--trainer.gradient_clip_val", ".nan"],
     "trainer.gradient_clip_val: must be a finite number >= 0 (0 or null: no clipping), got nan"),
    (["--trainer.limit_train_batches", "0"], "trainer.limit_train_batches: 0 trains nothing"),
    # refused by Lightning's Trainer itself: the line named only `trainer` (and devices -3, num_nodes 0 were a
    # TypeError / ValueError traceback)
    (["--trainer.max_steps", "-5"], "trainer.max_steps: `max_steps` must be a non-negative integer or -1"),
    (["--trainer.limit_val_batches", "-1"], "trainer.limit_val_batches: You have passed invalid value -1"),
    (["--trainer.reload_dataloaders_every_n_epochs", "-1"],
     "trainer.reload_dataloaders_every_n_epochs: `reload_dataloaders_every_n_epochs` should be an int >= 0"),
    (["--trainer.devices", "0"], "trainer.devices: `Trainer(devices='0')` value is not a valid input"),
    (["--trainer.devices", "-3"], "trainer.devices: `devices` selected with `CPUAccelerator` should be an int > 0"),
    (["--trainer.num_nodes", "0"], "trainer.num_nodes: `num_nodes` must be a positive integer"),
    (["--trainer.accelerator", "xyz"], "trainer.accelerator: You selected an invalid accelerator name"),
    # badin: tracebacks: torch's DataLoader (when the first loader was made), Lightning's ModelCheckpoint (while the
    # callbacks were built) and the NLB scoring callback (ZeroDivisionError at the first validation, after training)
    (["--data.num_workers", "-1"], "data.init_args.num_workers: must be >= 0"),
    (["--checkpoint.save_top_k", "-5"], "checkpoint.save_top_k: Invalid value for save_top_k=-5. Must be >= -1"),
    (["--checkpoint.every_n_epochs", "-1"], "checkpoint.every_n_epochs: Invalid value for every_n_epochs=-1"),
    (["--nlb_eval.every_n_epochs", "0"], "nlb_eval.every_n_epochs: must be a whole number >= 1"),
])
def test_bad_training_values_are_one_line_and_leave_no_run_folder(tmp_path, capsys, args, field):
    code = main(["fit", *TINY, "--trainer.default_root_dir", str(tmp_path / "runs"), "--run-name", "r",
                 "--trainer.max_epochs", "1", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("neurodyn fit: error: ") and field in err[0], err
    assert not (tmp_path / "runs" / "r").exists()


@pytest.mark.parametrize("setting, line", [
    ("max_time: abc", "trainer.max_time: 'abc' is not a duration"),
    ("max_epochs: 0", "trainer.max_epochs: max_epochs 0 trains nothing"),
    ("accumulate_grad_batches: 0", "trainer.accumulate_grad_batches: must be a whole number >= 1"),
    # refused by Lightning's Trainer itself: named `trainer` alone, no file
    ("max_epochs: -2", "trainer.max_epochs: `max_epochs` must be a non-negative integer or -1"),
    ("limit_val_batches: -1", "trainer.limit_val_batches: You have passed invalid value -1"),
    ("devices: 0", "trainer.devices: `Trainer(devices="),
    ("val_check_interval: .nan", "trainer.val_check_interval: must be above 0"),
])
def test_a_bad_trainer_setting_of_a_config_file_names_the_file(tmp_path, capsys, setting, line):
    """A refused Trainer setting that a config file gave is named with that file (it named the field alone); one
    the command line gave names no file, though a config file has the key too."""
    config = tmp_path / "trainer.yaml"
    config.write_text(f"trainer:\n  {setting}\n")
    code = main(["fit", *TINY, "--config", str(config), "--trainer.default_root_dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"neurodyn fit: error: {config}: {line}"), err
    option, value = setting.split(": ")
    code = main(["fit", *TINY, "--config", str(config), f"--trainer.{option}", value,
                 "--trainer.default_root_dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"neurodyn fit: error: {line}"), err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("section, setting, line", [
    ("checkpoint", "save_top_k: -5", "checkpoint.save_top_k: Invalid value for save_top_k=-5"),
    ("nlb_eval", "every_n_epochs: 0", "nlb_eval.every_n_epochs: must be a whole number >= 1"),
])
def test_a_bad_callback_setting_of_a_config_file_names_the_file(tmp_path, capsys, section, setting, line):
    """A refused setting of the checkpoint or nlb_eval section that a config file gave names that file (it was a
    traceback, exit 1)."""
    config = tmp_path / "callbacks.yaml"
    config.write_text(f"{section}:\n  {setting}\n")
    code = main(["fit", *TINY, "--config", str(config), "--trainer.default_root_dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"neurodyn fit: error: {config}: {line}"), err
    assert not (tmp_path / "runs").exists()


def test_lfads_file_without_a_bin_width_has_none(tmp_path):
    """An LFADS-layout file with no ``bin_ms`` attribute: the width is unknown (was silently 20 ms), so
    plots count bins and checkpoints record no width."""
    from neurodyn.data.lfads import LFADSData, write_lfads_h5
    from neurodyn.training.datamodules import LFADSDataModule

    rng = np.random.default_rng(0)
    counts = rng.poisson(0.5, (6, 10, 4)).astype(np.float32)
    path = write_lfads_h5(tmp_path / "x.h5", LFADSData(counts[:4], counts[4:], counts[:4] + 0.1, counts[4:] + 0.1))
    dm = LFADSDataModule(str(path), batch_size=2)
    assert dm.bin_ms is None and dm.describe().endswith("(no stated width)")
    with h5py.File(path, "r+") as f:
        f.attrs["bin_ms"] = 10.0
    assert LFADSDataModule(str(path), batch_size=2).bin_ms == 10.0


def test_lorenz_cache_is_read_only_for_the_simulation_it_holds(tmp_path, capsys):
    """--data.cache written by one seed was read for any other seed or size without a word."""
    from neurodyn.training.datamodules import LorenzDataModule

    sizes = dict(n_conditions=3, trials_per_condition=4, batch_size=4)
    cache = tmp_path / "lorenz.h5"
    first = LorenzDataModule(seed=1, cache=str(cache), **sizes)
    again = LorenzDataModule(seed=1, cache=str(cache), **sizes)  # read back, the same trials
    np.testing.assert_array_equal(first.splits["train"].heldin, again.splits["train"].heldin)
    before = cache.read_bytes()
    for kwargs, held in ((dict(seed=2, **sizes), "(seed 1)"), (dict(seed=1, **{**sizes, "n_conditions": 4}),
                                                                "(other settings)")):
        with pytest.raises(InputError, match=f"cache: holds another simulation {re.escape(held)}"):
            LorenzDataModule(cache=str(cache), **kwargs)
    assert cache.read_bytes() == before  # refused, never replaced
    (tmp_path / "notes.h5").write_text("mine")
    with pytest.raises(InputError, match="not an HDF5 file"):
        LorenzDataModule(seed=1, cache=str(tmp_path / "notes.h5"), **sizes)
    # through the CLI: one line, exit 2, before any training
    code = main(["fit", "--data", "LorenzDataModule", "--data.seed", "2", "--data.cache", str(cache),
                 "--data.n_conditions", "3", "--data.trials_per_condition", "4", "--trainer.max_epochs", "1",
                 "--trainer.default_root_dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "data.init_args.cache: holds another simulation (seed 1)" in err[0]


def test_every_datamodule_carves_a_select_split_from_its_training_trials(tmp_path):
    """select_fraction was an NLBDataModule option only: a Lorenz / LFADS / switching-GLM fit chose its
    checkpoint on the valid trials whose rates it reports."""
    from neurodyn.training.datamodules import LorenzDataModule, SwitchingGLMDataModule

    plain = LorenzDataModule(n_conditions=4, trials_per_condition=5, batch_size=4)
    dm = LorenzDataModule(n_conditions=4, trials_per_condition=5, batch_size=4, select_fraction=0.25, select_seed=1)
    assert (dm.fit_split, dm.val_split) == ("fit", "select")
    n_train = len(plain.splits["train"])
    assert len(dm.splits["select"]) == round(0.25 * n_train) and len(dm.splits["fit"]) == n_train - len(
        dm.splits["select"])
    # a partition of the training trials; the valid trials are untouched and seen by no monitor
    rows = np.concatenate([np.flatnonzero((plain.splits["train"].heldin == t).all(axis=(1, 2)))
                           for t in dm.splits["select"].heldin])
    assert len(np.unique(rows)) == len(dm.splits["select"])
    np.testing.assert_array_equal(dm.splits["valid"].heldin, plain.splits["valid"].heldin)
    assert [b["heldin"].shape[0] for b in dm.val_dataloader()] == [len(dm.splits["select"])]
    glm = SwitchingGLMDataModule(n_states=2, n_neurons=3, n_sequences=6, n_bins=50, n_train=4,
                                 select_fraction=0.25)
    assert (len(glm.splits["fit"]), len(glm.splits["select"]), len(glm.splits["valid"])) == (3, 1, 2)
    with pytest.raises(InputError, match="^select_fraction: "):
        LorenzDataModule(n_conditions=4, trials_per_condition=5, select_fraction=1.0)


def test_lorenz_config_selects_on_training_trials(tmp_path):
    """The shipped Lorenz config holds out a select split, so predict --run's best checkpoint was chosen on
    no valid trial."""
    import yaml

    cfg = yaml.safe_load((ROOT / "configs/langevinflow/lorenz.yaml").read_text())
    assert cfg["checkpoint"]["monitor"] == "valid/loss" and 0 < cfg["data"]["init_args"]["select_fraction"] < 1


def test_test_logs_the_validation_metrics_of_the_report_split(trained, capsys):
    """``neurodyn test`` was a traceback ('No test_step() method defined'), exit 1; it now prints the
    validation metrics under test/* (here on the 'valid' trials, which carry true rates: test/rate_r2)."""
    _, run = trained
    capsys.readouterr()
    assert main(["test", "--run", str(run), "--ckpt_path", "last"]) == 0
    names = set(re.findall(r"│\s*((?:test|valid)/\w+)\s*│", capsys.readouterr().out))
    assert {"test/loss", "test/nll", "test/rate_r2"} <= names and not any(n.startswith("valid/") for n in names)


@pytest.mark.parametrize("value", [float("inf"), -3.0])
def test_impossible_spike_counts_are_refused_by_fit(tmp_path, capsys, value):
    """helper-58: a prepared file with an infinite or negative count was trained on (inf became 3.4e38 in the
    input, -3 a Poisson target), exit 0. Now one line naming the file and the array, and no run folder."""
    import h5py
    import numpy as np

    from neurodyn.data.prepare import prepare
    from neurodyn.data.synthetic.nlb_nwb import write_nlb_pair

    write_nlb_pair(tmp_path / "nwb", "mc_maze", n_train_trials=12, n_test_trials=4, seed=0, n_heldin=6, n_heldout=2)
    data = prepare("mc_maze", tmp_path / "nwb", 20, "val", tmp_path / "prep.h5", include_psth=False, log=None)
    with h5py.File(data, "r+") as f:
        counts = f["train_input/train_spikes_heldin"][()].astype(np.float32)
        counts[0, 1, 2] = value
        del f["train_input/train_spikes_heldin"]
        f["train_input/train_spikes_heldin"] = counts
    code = main(["fit", "--data", "NLBDataModule", "--data.path", str(data), "--trainer.max_epochs", "1",
                 "--trainer.default_root_dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert f"{data}: train_input/train_spikes_heldin: expected spike counts" in err[0] and "(0, 1, 2)" in err[0]
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("zeroed, command, words", [
    ("train_input", "fit", "train_input: the 9 training trials hold no spikes (every count is 0): there is nothing "
                           "to fit"),
    ("eval_spikes_heldout", "fit", "eval_target/mc_maze_20: the 3 evaluation trials hold no held-out spikes "
                                   "(every count is 0): their co-bps is undefined"),
    ("eval_spikes_heldout", "validate", "eval_target/mc_maze_20: the 3 evaluation trials hold no held-out spikes"),
])
def test_data_without_spikes_is_refused_in_one_line(tmp_path, capsys, zeroed, command, words):
    """badin: a prepared file whose training spikes are all 0 was fitted (every rate to 0) with exit 0; one whose
    held-out evaluation spikes are all 0 failed after an epoch of training with 'spikes: target holds no spikes',
    naming no file (validate: the same). Now one line naming the file and the array, before the Trainer."""
    from neurodyn.data.prepare import prepare
    from neurodyn.data.synthetic.nlb_nwb import write_nlb_pair

    write_nlb_pair(tmp_path / "nwb", "mc_maze", n_train_trials=12, n_test_trials=4, seed=0, n_heldin=6, n_heldout=2)
    data = prepare("mc_maze", tmp_path / "nwb", 20, "val", tmp_path / "prep.h5", include_psth=False, log=None)
    args = ["--data", "NLBDataModule", "--data.path", str(data), "--trainer.max_epochs", "1",
            "--model.init_args.config.hidden_size", "8", "--model.init_args.config.ff_dim", "16",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    if command == "validate":  # a run of the same sizes on the good file first
        assert main(["fit", *args, "--trainer.default_root_dir", str(tmp_path / "good"), "--run-name", "r"]) == 0
        capsys.readouterr()
    with h5py.File(data, "r+") as f:
        keys = []
        f.visititems(lambda key, obj: keys.append(key) if isinstance(obj, h5py.Dataset) and (
            key.startswith("train_input/") and "spikes" in key if zeroed == "train_input" else
            key.startswith("eval_target/") and key.endswith(zeroed)) else None)
        assert keys
        for key in keys:
            f[key][...] = 0
    if command == "fit":
        code = main(["fit", *args, "--trainer.default_root_dir", str(tmp_path / "runs")])
    else:
        code = main(["validate", "--run", str(tmp_path / "good" / "r"), "--data.path", str(data)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith(f"neurodyn {command}: error: {data}: {words}"), err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("family", ["LangevinFlow", "HMM-GLM"])
def test_training_files_without_spikes_are_refused_by_fit(tmp_path, capsys, family):
    """badin: an LFADS-layout or switching-GLM file whose training spikes are all 0 was fitted with exit 0."""
    if family == "LangevinFlow":
        assert main(["simulate", "lorenz", "--no-progress", "--n-conditions", "2", "--trials-per-condition", "5",
                     "--n-samples", "200", "--out", str(tmp_path / "d.h5")]) == 0
        key, field = "train_data", "train_data: the 8 training trials"
        args = ["--data", "LFADSDataModule", "--model.init_args.config.hidden_size", "8",
                "--model.init_args.config.ff_dim", "16"]
    else:
        assert main(["simulate", "switching-glm", "--no-progress", "--n-sequences", "4", "--n-bins", "50",
                     "--n-neurons", "4", "--n-states", "2", "--out", str(tmp_path / "d.h5")]) == 0
        key, field = "spikes", "spikes: the 3 training trials"
        args = ["--config", str(ROOT / "configs/hmmglm/synthetic_glm.yaml"), "--data.n_train", "3"]
        for option in ("n_states", "n_neurons", "n_sequences", "n_bins"):
            args += [f"--data.{option}", "null"]
    with h5py.File(tmp_path / "d.h5", "r+") as f:
        f[key][...] = 0
    capsys.readouterr()
    code = main(["fit", *args, "--data.path", str(tmp_path / "d.h5"), "--trainer.max_epochs", "1",
                 "--trainer.accelerator", "cpu", "--trainer.default_root_dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"neurodyn fit: error: {tmp_path / 'd.h5'}: {field} hold no spikes"), err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def _process_state() -> dict:
    """What a command run from Python (a notebook, a script) must leave as it found it."""
    import logging
    import os
    import sys
    import warnings

    from neurodyn.training.callbacks import flushing_denormals

    loggers = [logging.getLogger()] + [logging.getLogger(name) for name in ("lightning", "lightning.pytorch",
                                                                             "lightning.fabric", "neurodyn")]
    return {
        # (Lightning's seed_everything sets PL_GLOBAL_SEED / PL_SEED_WORKERS for the run's processes: a later
        # seed_everything() of the caller took the run's seed, a later unseeded DDP fit was reseeded with it)
        "environ": dict(os.environ),
        "torch": (torch.get_default_dtype(), torch.is_grad_enabled(), torch.get_num_threads(),
                  torch.are_deterministic_algorithms_enabled(), torch.get_float32_matmul_precision(),
                  flushing_denormals()),
        "warnings": list(warnings.filters),
        "logging": [(lg.level, lg.disabled, lg.propagate, list(lg.handlers), list(lg.filters)) for lg in loggers],
        "hooks": (sys.unraisablehook, sys.excepthook, sys.stdout, sys.stderr),
        "cwd": os.getcwd(),
    }


def test_fits_run_twice_in_one_process_are_the_same_run_and_leave_the_process_as_they_found_it(tmp_path,
                                                                                                monkeypatch):
    """A notebook calling ``main(["fit", ...])`` twice with one seed gets the same weights, and its process back as it
    was. The fit left NEURODYN_RUN_DIR (the run folder it hands to the DDP processes it starts) in os.environ: a
    later run that torchrun / srun started from that environment took the old run for the folder of its ranks > 0
    ('run folder: <the old run>' printed by rank 1). It left Lightning's PL_GLOBAL_SEED / PL_SEED_WORKERS too."""
    import sklearn  # noqa: F401 -- its first import (the fit's metrics) sets KMP_DUPLICATE_LIB_OK, as anywhere

    monkeypatch.delenv("NEURODYN_RUN_DIR", raising=False)
    weights = []
    before = _process_state()
    for name in ("a", "b"):
        assert _fit(tmp_path, "--trainer.max_epochs", "1", name=name) == 0
        after = _process_state()
        changed = {k: (before[k], after[k]) for k in before if before[k] != after[k]}
        if "environ" in changed:  # the variables that changed
            was, now = changed["environ"]
            changed["environ"] = {k: (was.get(k), now.get(k)) for k in {*was, *now} if was.get(k) != now.get(k)}
        assert not changed, changed
        weights.append(torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"])
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_a_fit_from_python_trains_what_the_shell_trains_whatever_the_callers_default_dtype(tmp_path):
    """A notebook that had set ``torch.set_default_dtype(torch.float64)`` made ``main(["fit", ...])`` build float64
    weights: a LangevinFlow fit failed with a traceback (float32 batches against the float64 GRU). The command builds
    its model as in its own process (float32) and leaves the caller's default dtype as it was."""
    torch.set_default_dtype(torch.float64)
    try:
        assert _fit(tmp_path, "--trainer.max_epochs", "1", name="caller_f64") == 0
        assert torch.get_default_dtype() == torch.float64
    finally:
        torch.set_default_dtype(torch.float32)
    assert _fit(tmp_path, "--trainer.max_epochs", "1", name="plain") == 0
    weights = [torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
               for name in ("caller_f64", "plain")]
    assert weights[0].keys() == weights[1].keys()
    assert all(weights[0][k].dtype == weights[1][k].dtype and torch.equal(weights[0][k], weights[1][k])
               for k in weights[0])


def test_a_fit_from_python_inside_inference_mode_trains_what_the_shell_trains(tmp_path):
    """``main(["fit", ...])`` inside a caller's ``torch.inference_mode()`` block (a notebook cell that had been
    predicting) failed with a traceback ('element 0 of tensors does not require grad'): the command runs as in its
    own process, and the caller's block is still in inference mode after it."""
    with torch.inference_mode():
        assert _fit(tmp_path, "--trainer.max_epochs", "1", name="inside") == 0
        assert torch.is_inference_mode_enabled()
    assert _fit(tmp_path, "--trainer.max_epochs", "1", name="plain") == 0
    weights = [torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
               for name in ("inside", "plain")]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


@pytest.mark.parametrize("option", ["deterministic", "benchmark"])
def test_a_fit_from_python_leaves_the_callers_deterministic_and_benchmark_settings(tmp_path, monkeypatch, option):
    """``--trainer.deterministic true`` made Lightning switch torch's deterministic algorithms on for the process and
    set CUBLAS_WORKSPACE_CONFIG, ``--trainer.benchmark true`` cuDNN's benchmark mode, and both stayed after the
    command: a notebook's later operation without a deterministic kernel raised. The run's settings go with it."""
    import os

    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    try:
        assert _fit(tmp_path, "--trainer.max_epochs", "1", f"--trainer.{option}", "true") == 0
        assert (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark) == before
        assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.benchmark = before[1]


def _ctrl_c_in_training(monkeypatch):
    """A Ctrl-C in the first training step, after the command seeded the generators and drew from them."""
    import os
    import signal

    from neurodyn.training.module import LangevinFlowModule

    step = LangevinFlowModule.training_step

    def training_step(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        return step(self, *args, **kwargs)

    monkeypatch.setattr(LangevinFlowModule, "training_step", training_step)


@pytest.mark.parametrize("how", ["trained", "bad input", "ctrl-c"])
def test_a_fit_from_python_leaves_the_callers_random_generators_as_they_were(tmp_path, monkeypatch, how):
    """Lightning's ``seed_everything`` reseeds torch, NumPy's legacy global generator and Python's ``random`` for the
    process, and training draws from them: a notebook's draws after ``main(["fit", ...])`` were the run's, not the
    ones its own seeding gave (the same after every fit of one seed), also when the command stopped on bad input
    (exit 2, found after the seeding) or a Ctrl-C. The caller's states come back; the run's own draws are its seed's
    (test_fits_run_twice_in_one_process_...)."""
    extra = {"trained": ["--trainer.fast_dev_run", "1"], "bad input": ["--data.n_conditions", "0"],
             "ctrl-c": ["--trainer.max_epochs", "1"]}[how]
    if how == "ctrl-c":
        _ctrl_c_in_training(monkeypatch)
    seed_callers_generators(1234)
    expected = draws()
    seed_callers_generators(1234)
    code = _fit(tmp_path, *extra)
    assert code == {"trained": 0, "bad input": 2, "ctrl-c": 130}[how]
    assert draws() == expected


_CUDA_CALLER = """\
import json, sys, torch
from neurodyn.cli import main

torch.manual_seed(1234)  # queued for the CUDA generators too, until CUDA starts
if sys.argv[1] == "initialised":
    torch.cuda.manual_seed_all(99)
    torch.rand(1, device="cuda")
if sys.argv[2] == "fit":
    assert main(["fit", *sys.argv[3:]]) == 0
print(json.dumps([torch.rand(4).tolist(), torch.rand(4, device="cuda").tolist()]))
"""


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("cuda", ["initialised", "not initialised"])
def test_a_fit_on_the_gpu_from_python_leaves_the_callers_cuda_generators_as_they_were(tmp_path, cuda):
    """A fit on the GPU reseeds the CUDA generators (seed_everything) and draws from them: a caller's later CUDA draws
    were the run's. Where the caller had started CUDA, its states come back; where not, its ``torch.manual_seed``
    (queued until CUDA starts, replaced by the run's) seeds them again: the draws are those of a process that ran no
    fit. In processes of their own: whether CUDA was started is the process's."""
    import subprocess
    import sys

    from subprocess_env import clean_env

    fit = [*TINY[:-2], "--trainer.accelerator", "gpu", "--trainer.devices", "1", "--trainer.max_epochs", "1",
           "--trainer.default_root_dir", str(tmp_path)]
    draws = []
    for mode in ("plain", "fit"):
        proc = subprocess.run([sys.executable, "-c", _CUDA_CALLER, cuda.replace(" ", "-"), mode, *fit],
                              capture_output=True, text=True, timeout=600, cwd=tmp_path,
                              env=clean_env(OMP_NUM_THREADS="1"))
        assert proc.returncode == 0, proc.stderr[-3000:]
        draws.append(proc.stdout.strip().splitlines()[-1])
    assert draws[0] == draws[1]
