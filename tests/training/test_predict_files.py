"""``neurodyn predict``: what a prediction file records (values and dtypes, what produced it)."""

from __future__ import annotations

import json
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


@pytest.fixture(scope="module")
def lorenz_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("lorenz")
    assert main(["fit", *LORENZ, "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(root),
                 "--run-name", "lf"]) == 0
    return root / "lf"


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


def test_hmmglm_file_records_the_model(hmm_run, tmp_path):
    """What produced the file: model, variant, basis and lags of ``coupling``, checkpoint, versions."""
    from neurodyn import __version__

    out = tmp_path / "pred.h5"
    assert _predict(hmm_run, out) == 0
    ckpt = hmm_run / "checkpoints" / "last.ckpt"
    with h5py.File(out) as f:
        attrs = dict(f.attrs)
    assert attrs["module"] == "HMMGLMModule" and attrs["model"] == "GaussianPriorHMMGLM"
    assert attrs["variant"] == "gaussian" and attrs["n_states"] == 2
    assert (attrs["basis"], attrs["n_basis"], attrs["n_lags"]) == ("raised_cosine", 2, 4)
    assert "decay" not in attrs  # an exponential-basis parameter
    config = json.loads(attrs["model_config"])
    assert config["config"]["variant"] == "gaussian" and config["config"]["n_basis"] == 2
    assert config["config"]["seed"] == 0  # the seed the model was built with (the config says null: the run's)
    assert config["n_heldin"] == 4 and config["n_inner"] == 3
    assert attrs["checkpoint"] == str(ckpt.resolve())
    assert attrs["checkpoint_epoch"] == 1 and attrs["checkpoint_global_step"] == 6  # 2 epochs x 1 batch x 3
    assert attrs["neurodyn_version"] == attrs["checkpoint_neurodyn_version"] == __version__


def test_exponential_basis_is_one_function_whatever_n_basis_says(tmp_path):
    """The exponential basis is one filter: ``n_basis`` in the file is 1 (``config.n_basis`` is unused)."""
    from neurodyn.training.predictions import provenance

    module = HMMGLMModule(n_heldin=3, n_neurons=3, config={"variant": "glm", "n_basis": 3, "decay": 2.0})
    attrs = provenance(module, tmp_path / "x.ckpt")
    assert (attrs["model"], attrs["variant"], attrs["n_states"]) == ("GLM", "glm", 1)
    assert (attrs["basis"], attrs["n_basis"], attrs["decay"], attrs["span"]) == ("exponential", 1, 2.0, 5.0)
    assert attrs["checkpoint"] == str((tmp_path / "x.ckpt").absolute())


def test_langevinflow_file_records_the_model_and_checkpoint(lorenz_run, tmp_path):
    out = tmp_path / "pred.h5"
    assert _predict(lorenz_run, out) == 0
    with h5py.File(out) as f:
        attrs = dict(f.attrs)
    assert (attrs["module"], attrs["model"]) == ("LangevinFlowModule", "LangevinFlow")
    config = json.loads(attrs["model_config"])
    assert config["config"]["hidden_size"] == 8 and config["config"]["eval_mode"] == "sample"
    assert attrs["checkpoint"] == str((lorenz_run / "checkpoints" / "last.ckpt").resolve())
    assert attrs["checkpoint_epoch"] == 0
