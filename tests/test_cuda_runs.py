"""Whole CLI runs on one GPU: a killed-and-resumed fit equals an uninterrupted one with
``--trainer.deterministic true``; a switching GLM fitted on the GPU predicts there what the CPU infers from
the same checkpoint; a LangevinFlow checkpoint predicts the same rates on the GPU as on the CPU.

``cuda``-marked and skipped without a CUDA device; ``benchmarks/gpu_check.sh`` runs them (``pytest -m
cuda``), and its ``determinism`` section measures the same comparisons with the default trainer settings
(kernels free to be non-deterministic), which a test could not assert either way."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from neurodyn.cli import main

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

ROOT = Path(__file__).resolve().parent.parent
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
LANGEVIN = [
    "--data", "LorenzDataModule",
    "--data.n_conditions", "4", "--data.trials_per_condition", "5", "--data.batch_size", "6",
    "--model.init_args.config.hidden_size", "8", "--model.init_args.config.ff_dim", "16",
    "--model.init_args.config.kl_ramp_epochs", "2", "--model.init_args.config.dropout", "0.2", *QUIET,
]
HMMGLM = [
    "--model", "HMMGLMModule", "--model.config.n_states", "2", "--model.n_inner", "3",
    "--data", "SwitchingGLMDataModule", "--data.n_states", "2", "--data.n_neurons", "5",
    "--data.n_sequences", "6", "--data.n_bins", "80", "--data.n_train", "4", "--data.batch_size", "2", *QUIET,
]
GPU = ["--trainer.accelerator", "gpu", "--trainer.devices", "1"]
CPU = ["--trainer.accelerator", "cpu"]


def _process(*args: str) -> None:
    """``neurodyn`` in a process of its own: ``--trainer.deterministic`` sets process-wide torch flags."""
    proc = subprocess.run([sys.executable, "-m", "neurodyn.cli", *args], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]


def _cli(*args: str) -> None:
    """``neurodyn`` in this process (the default settings change no process-wide flag)."""
    assert main(list(args)) == 0


def _last(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


@pytest.mark.parametrize("args", [LANGEVIN, HMMGLM], ids=["langevinflow", "hmmglm"])
def test_resume_on_the_gpu_is_bit_identical_with_deterministic_kernels(tmp_path, args):
    """4 epochs straight == 2 epochs + ``fit --run`` to 4, weights, optimiser state and metrics.csv bit for
    bit, on the GPU (the CUDA generators' states are in the checkpoints beside the CPU ones)."""
    n, k = 4, 2
    common = [*args, *GPU, "--trainer.deterministic", "true", "--trainer.default_root_dir", str(tmp_path)]
    _process("fit", *common, "--run-name", "straight", "--trainer.max_epochs", str(n))
    _process("fit", *common, "--run-name", "resumed", "--trainer.max_epochs", str(k))
    assert _last(tmp_path / "resumed")["epoch"] == k - 1
    _process("fit", "--run", str(tmp_path / "resumed"), "--trainer.max_epochs", str(n))
    a, b = _last(tmp_path / "straight"), _last(tmp_path / "resumed")
    assert a["epoch"] == b["epoch"] == n - 1 and a["global_step"] == b["global_step"]
    assert "cuda" in a["neurodyn_random_state"]
    for key in a["state_dict"]:
        assert a["state_dict"][key].device.type == "cpu"
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    for sa, sb in zip(a["optimizer_states"][0]["state"].values(), b["optimizer_states"][0]["state"].values()):
        for name in sa:
            assert torch.equal(torch.as_tensor(sa[name]), torch.as_tensor(sb[name])), name
    assert (tmp_path / "straight" / "metrics.csv").read_text() == (tmp_path / "resumed" / "metrics.csv").read_text()


def _arrays(path: Path) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    with h5py.File(path) as f:
        f.visititems(lambda name, obj: found.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return found


def test_switching_glm_fitted_on_the_gpu_predicts_there_what_the_cpu_infers(tmp_path):
    """Fit on the GPU; predict from its checkpoint on the GPU and on the CPU.

    The module computes its emissions in float32 (Lightning's default precision) and sums the log marginal
    in float64, so the devices differ by float32 rounding. Each emission term carries at most ~16 float32
    roundings (a history sum over 5 neurons' filters, exp, log: relative <= 16 * 2^-24 ~ 1e-6), and the
    terms add up to about the log marginal, so the log marginals agree to a relative 1e-6. Perturbing every
    path's log weight by at most D moves a posterior by at most exp(2D) - 1 ~ 2D, with D = 1e-6 * |log
    marginal|. A wrong device path (other parameters, reordered sequences) moves log marginals by whole
    nats (~5e-4 relative here) and posteriors by O(0.1-1). The parameters (float32 arrays, read from the
    same checkpoint) agree to float32 rounding; the connection types and Viterbi paths are decisions far
    from ties in this well-separated two-state simulation and must be equal.

    Measured on one H100 at commit e585a01, under a float64 tolerance that this test first had by mistake:
    log marginals within a relative 3.6e-9; bias, couplings, initial distribution and connection types (the
    arrays compared before the log marginals) within 1e-6 and equal."""
    root = tmp_path / "runs"
    _cli("fit", *HMMGLM, *GPU, "--data.n_bins", "400", "--trainer.max_epochs", "2",
         "--trainer.default_root_dir", str(root), "--run-name", "gpu")
    run = root / "gpu"
    assert _last(run)["epoch"] == 1
    outs = {}
    for name, device in (("gpu", GPU), ("cpu", CPU)):
        outs[name] = tmp_path / f"{name}.h5"
        _cli("predict", "--run", str(run), "--ckpt_path", "last", "--out", str(outs[name]), *device)
    gpu, cpu = _arrays(outs["gpu"]), _arrays(outs["cpu"])
    assert gpu.keys() == cpu.keys() and {"valid_posteriors", "valid_viterbi", "coupling"} <= gpu.keys()
    rtol = 16 * 2.0**-24
    for key, ref in cpu.items():
        got = gpu[key]
        assert got.shape == ref.shape and got.dtype == ref.dtype, key
        if got.dtype.kind != "f":
            np.testing.assert_array_equal(got, ref, err_msg=key)
            continue
        assert np.isfinite(got).all(), key
        if key.endswith("log_marginal"):
            np.testing.assert_allclose(got, ref, rtol=rtol, atol=0, err_msg=key)
        elif key.endswith("posteriors"):
            split = key.split("_")[0]
            bound = 2 * rtol * np.abs(cpu[f"{split}_log_marginal"]).max()
            np.testing.assert_allclose(got, ref, rtol=0, atol=bound, err_msg=key)
        else:
            np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol, err_msg=key)


def test_langevinflow_predicts_the_same_rates_on_the_gpu_as_on_the_cpu(tmp_path):
    """A CPU-trained checkpoint with ``eval_mode: mean`` (one pass, no random draw) predicted on both
    devices. float32 on both; cuDNN's GRU may use TF32 on the GPU (unit round-off 2^-11 = 4.9e-4), so
    log-rates agree to ~1e-3 after a few dozen steps. 1e-2 still separates a wrong device path (other
    weights, another pass, reordered trials), which moves log-rates by O(0.1-1)."""
    root = tmp_path / "runs"
    _cli("fit", *LANGEVIN, *CPU, "--model.init_args.config.eval_mode", "mean", "--trainer.max_epochs", "2",
         "--trainer.default_root_dir", str(root), "--run-name", "lf")
    outs = {}
    for name, device in (("gpu", GPU), ("cpu", CPU)):
        outs[name] = tmp_path / f"{name}.h5"
        _cli("predict", "--run", str(root / "lf"), "--ckpt_path", "last", "--out", str(outs[name]), *device)
    gpu, cpu = _arrays(outs["gpu"]), _arrays(outs["cpu"])
    assert gpu.keys() == cpu.keys() and {"train_rates", "valid_rates"} <= gpu.keys()
    for key in ("train_rates", "valid_rates"):
        assert gpu[key].shape == cpu[key].shape and (gpu[key] > 0).all() and np.isfinite(gpu[key]).all()
        np.testing.assert_allclose(np.log(gpu[key]), np.log(cpu[key]), rtol=0, atol=1e-2, err_msg=key)
