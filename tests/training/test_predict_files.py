"""``neurodyn predict``: the prediction file keeps the switching GLM's ``log_marginal`` in float64."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from neurodyn.cli import main
from neurodyn.training.hmmglm_module import HMMGLMModule

QUIET = ["--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
         "--trainer.enable_model_summary", "false"]
HMM = ["--model", "HMMGLMModule", "--model.config.variant", "gaussian", "--model.config.n_states", "2",
       "--model.config.basis", "raised_cosine", "--model.config.n_basis", "2", "--model.config.n_lags", "4",
       "--model.n_inner", "3", "--data", "SwitchingGLMDataModule", "--data.n_states", "2", "--data.n_neurons", "4",
       "--data.n_sequences", "4", "--data.n_bins", "2000", "--data.n_train", "2", *QUIET]
LORENZ = ["--data", "LorenzDataModule", "--data.n_conditions", "4", "--data.trials_per_condition", "5",
          "--data.batch_size", "8", "--model.init_args.config.hidden_size", "8",
          "--model.init_args.config.ff_dim", "16", *QUIET]


@pytest.fixture(scope="module")
def hmm_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("hmm")
    assert main(["fit", *HMM, "--trainer.max_epochs", "2", "--trainer.default_root_dir", str(root),
                 "--run-name", "hmm"]) == 0
    return root / "hmm"


def _predict(run: Path, out: Path, *extra: str) -> int:
    return main(["predict", "--run", str(run), "--ckpt_path", "last", "--prediction.path", str(out), *extra])


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# -- what a prediction file records --------------------------------------------------------------------
def test_hmmglm_file_keeps_log_marginal_in_float64(hmm_run, tmp_path):
    from neurodyn.training.datamodules import SwitchingGLMDataModule

    out = tmp_path / "pred.h5"
    assert _predict(hmm_run, out) == 0
    module = HMMGLMModule.load_from_checkpoint(hmm_run / "checkpoints" / "last.ckpt", map_location="cpu",
                                              weights_only=False)
    dm = SwitchingGLMDataModule(n_states=2, n_neurons=4, n_sequences=4, n_bins=2000, n_train=2)
    dm.setup("predict")
    expected = module.model.e_step(torch.as_tensor(dm.splits["valid"].heldin)).log_marginal
    with h5py.File(out) as f:
        log_marginal = f["valid_log_marginal"][()]
    # float64, the value inference computed (float32 rounded -7.5e3 nats to 5e-4)
    assert log_marginal.dtype == np.float64 and np.abs(log_marginal).min() > 1000
    np.testing.assert_allclose(log_marginal, expected.numpy(), rtol=0, atol=1e-9)
    assert (log_marginal != log_marginal.astype(np.float32)).any()
