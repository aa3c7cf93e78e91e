"""DDP on the CPU (gloo, 2 processes): validation metrics equal a single-process run.

co-bps and fp-bps are not means over trials, so each rank's value must not be averaged (``sync_dist``):
they are computed from every rank's gathered predictions and counts. The loss is a mean of per-trial
terms, reduced across ranks.

Tolerances are derived, not tuned:

- rates: each trial's forward pass is the same computation whichever rank runs it, but the batch it is
  in differs, and float32 matrix products may round differently with the batch shape. The test measures
  that difference ``delta`` (relative, largest over entries) by predicting the validation trials in one
  batch and split as the two ranks split them.
- co-bps / fp-bps = (LL(r) - LL(null)) / (n_spikes ln 2) with LL = sum k log r - r, so a relative
  change delta in every rate moves it by at most delta * sum(k + r) / (n_spikes ln 2).
- the loss: a mean of float32 terms summed in another order: |error| <= n eps32 * mean|term| (n = number of
  batch means combined), bounded here by n_trials * eps32 * |loss| plus the rate term above.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from neurodyn.cli import main

ROOT = Path(__file__).resolve().parents[2]
_DIST_VARS = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK",
              "LOCAL_WORLD_SIZE", "NEURODYN_RUN_DIR")


def _clean_env() -> dict[str, str]:
    """This process's environment without the variables of a distributed run (a subprocess starts fresh)."""
    return {k: v for k, v in os.environ.items() if k not in _DIST_VARS}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from neurodyn.data.prepare import prepare
    from neurodyn.data.synthetic.nlb_nwb import write_nlb_pair

    tmp = tmp_path_factory.mktemp("ddp")
    write_nlb_pair(tmp / "nwb", "mc_maze", n_train_trials=16, n_test_trials=4, n_heldin=6, n_heldout=3, seed=1)
    data = tmp / "tiny_20_val.h5"
    prepare("mc_maze", tmp / "nwb", bin_ms=20, phase="val", out=data, log=None)
    args = ["--data", "NLBDataModule", "--data.path", str(data), "--data.batch_size", "4",
            "--model", "LangevinFlowModule", "--model.config.hidden_size", "8", "--model.config.ff_dim", "16",
            "--model.config.eval_mode", "mean", "--trainer.accelerator", "cpu", "--trainer.max_epochs", "2",
            "--trainer.enable_model_summary", "false", "--trainer.default_root_dir", str(tmp), "--run-name", "run"]
    assert main(["fit", *args]) == 0
    return tmp, tmp / "run", data


def _metrics(folder: Path) -> dict[str, float]:
    (path,) = folder.rglob("metrics.csv")
    rows = list(csv.DictReader(path.open()))
    return {k: float(v) for row in rows for k, v in row.items() if k.startswith("valid/") and v != ""}


def test_ddp_validation_metrics_equal_single_process(trained):
    from neurodyn.training.datamodules import NLBDataModule
    from neurodyn.training.module import LangevinFlowModule, _bits_per_spike

    tmp, run, data = trained
    common = ["validate", "--run", str(run), "--ckpt_path", "last", "--trainer.enable_model_summary", "false",
              "--trainer.logger", "CSVLogger"]
    assert main([*common, "--trainer.logger.save_dir", str(tmp / "single")]) == 0
    single = _metrics(tmp / "single")

    script = tmp / "run_neurodyn.py"  # Lightning's DDP launcher starts rank 1 by re-running this script
    script.write_text("import sys\nfrom neurodyn.cli import main\nsys.exit(main(sys.argv[1:]))\n")
    env = {**_clean_env(), "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, str(script), *common, "--trainer.logger.save_dir", str(tmp / "ddp"),
                           "--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ddp = _metrics(tmp / "ddp")
    assert {"valid/co_bps", "valid/fp_bps", "valid/loss"} <= set(single) and set(ddp) == set(single)

    # delta: the same trials predicted in one batch vs split across two "ranks" (even / odd positions)
    module = LangevinFlowModule.load_from_checkpoint(run / "checkpoints" / "last.ckpt", map_location="cpu",
                                                     weights_only=True).eval()
    valid = NLBDataModule(str(data)).splits["valid"]
    heldin = torch.as_tensor(valid.heldin)
    with torch.no_grad():
        whole = module.model.predict(heldin)["rates"].double().numpy()
        split = np.empty_like(whole)
        for rank in (0, 1):
            split[rank::2] = module.model.predict(heldin[rank::2])["rates"].double().numpy()
    delta = float(np.max(np.abs(split - whole) / whole))
    target, mask = valid.target.astype(np.float64), valid.target_mask
    n_in, n_obs = module.n_heldin, module.n_obs_bins
    for key, rows, cols in (("valid/co_bps", slice(0, n_obs), slice(n_in, None)),
                            ("valid/fp_bps", slice(n_obs, None), slice(None))):
        k, r, m = target[:, rows, cols], whole[:, rows, cols], mask[:, rows, cols]
        bound = delta * float((k + r)[m].sum()) / (float(k[m].sum()) * np.log(2))
        bound += 8 * np.finfo(np.float32).eps * abs(single[key])  # float32 storage of rates and the logged value
        assert abs(ddp[key] - single[key]) <= bound, (key, ddp[key], single[key], bound)
        # control: averaging each rank's value (what sync_dist did) misses by far more than the bound
        averaged = np.mean([_bits_per_spike(r[i::2], k[i::2], m[i::2]) for i in (0, 1)])
        assert abs(averaged - single[key]) > 10 * bound, (key, averaged, single[key])
    n_trials = len(valid)
    loss_bound = ((n_trials + 8) * np.finfo(np.float32).eps + delta) * abs(single["valid/loss"])
    assert abs(ddp["valid/loss"] - single["valid/loss"]) <= loss_bound


def test_hmmglm_refuses_ddp(tmp_path, capsys):
    code = main(["fit", "--model", "HMMGLMModule", "--data", "SwitchingGLMDataModule", "--data.n_sequences", "4",
                 "--data.n_bins", "50", "--data.n_train", "2", "--trainer.strategy", "ddp", "--trainer.devices", "2",
                 "--trainer.accelerator", "cpu", "--trainer.default_root_dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "trainer.strategy: HMMGLMModule trains in one process" in err[0]
    assert not any(tmp_path.iterdir())
