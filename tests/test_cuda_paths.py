"""GPU paths: LangevinFlow on CUDA (float64 parity with the CPU, CUDA-graph rollout, bf16 decoder,
torch.compile), HMM forward-backward on the GPU against the compiled CPU kernel, Lightning fits on one
GPU and DDP on two. All ``cuda``-marked and skipped without a CUDA device; ``benchmarks/gpu_check.sh``
runs them (``pytest -m cuda``)."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from neurodyn.models.langevinflow import LangevinFlow, LangevinFlowConfig

ROOT = Path(__file__).resolve().parent
pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

TINY = dict(hidden_size=16, ff_dim=32, n_heads=2)


def _model(seed=0, dtype=torch.float64, device="cuda", **options):
    torch.manual_seed(seed)
    cfg = LangevinFlowConfig(**{**TINY, **options})
    return LangevinFlow(6, 9, 8, 3, cfg).to(device=device, dtype=dtype)


def _batch(batch_size=16, dtype=torch.float64, device="cuda", seed=1):
    gen = torch.Generator().manual_seed(seed)
    target = torch.poisson(torch.full((batch_size, 11, 9), 1.5, dtype=dtype), generator=gen)
    return {"heldin": target[:, :8, :6].contiguous().to(device), "target": target.to(device)}


def _grads(model):
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def test_gpu_forward_and_gradients_equal_cpu_in_float64():
    # eval_mode 'mean' and no dropout: the validation loss has no random draw, so both devices compute
    # the same function; float64 leaves only summation-order differences (~1e-15 relative).
    cpu = _model(device="cpu", dropout=0.0, eval_mode="mean")
    gpu = _model(dropout=0.0, eval_mode="mean")
    gpu.load_state_dict(cpu.state_dict())
    results = []
    for model, device in ((cpu, "cpu"), (gpu, "cuda")):
        out = model.loss(_batch(device=device), kl_weight=0.0006, stage="val")
        out["total"].backward()
        results.append((out["total"].item(), _grads(model),
                        model.predict(_batch(device=device)["heldin"], mode="mean")["log_rates"].cpu()))
    (loss_c, grads_c, rates_c), (loss_g, grads_g, rates_g) = results
    assert loss_g == pytest.approx(loss_c, rel=1e-12)
    torch.testing.assert_close(rates_g, rates_c, rtol=1e-10, atol=1e-10)
    for name, g in grads_c.items():
        torch.testing.assert_close(grads_g[name].cpu(), g, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("integrator", ["reference", "symplectic", "ou_exact"])
def test_cuda_graph_rollout_equals_eager(integrator):
    eager = _model(integrator=integrator, dropout=0.0)
    graphed = _model(integrator=integrator, dropout=0.0, cuda_graph=True)
    graphed.load_state_dict(eager.state_dict())
    batch = _batch()
    losses, grads = [], []
    for model in (eager, graphed):
        for _ in range(2):  # second step replays the captured graph
            model.zero_grad(set_to_none=True)
            gen = torch.Generator(device="cuda").manual_seed(7)
            loss = model.loss(batch, kl_weight=0.0006, generator=gen)["loss"]
            loss.backward()
        losses.append(loss.item())
        grads.append(_grads(model))
    assert losses[0] == pytest.approx(losses[1], rel=1e-12, abs=1e-12)
    for name, g in grads[0].items():
        torch.testing.assert_close(grads[1][name], g, rtol=1e-10, atol=1e-12)
    assert len(graphed.__dict__["_graphed_rollout"]) == 1  # one capture, replayed
    # evaluation (no_grad): a separate capture; outputs survive the next replay
    first = graphed.predict(batch["heldin"], mode="mean")["z"].clone()
    again = graphed.predict(batch["heldin"], mode="mean")
    other = graphed.predict(batch["heldin"][:4], mode="mean")
    torch.testing.assert_close(again["z"], first, rtol=0, atol=0)
    torch.testing.assert_close(other["z"], first[:4], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(eager.predict(batch["heldin"], mode="mean")["z"], first, rtol=1e-12, atol=1e-12)


def test_bf16_decoder_on_gpu_within_derived_bound():
    spec = importlib.util.spec_from_file_location("lf_bf16", ROOT / "langevinflow" / "test_lf_bf16.py")
    bound = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bound)
    fp32 = _model(dtype=torch.float32, dropout=0.0, kl_ramp_epochs=5)
    bf16 = _model(dtype=torch.float32, dropout=0.0, kl_ramp_epochs=5, decoder_precision="bfloat16")
    bf16.load_state_dict(fp32.state_dict())
    batch = _batch(dtype=torch.float32)
    def gpu_loss(model, batch, seed):  # the CPU test's loss with a CUDA generator
        gen = torch.Generator(device="cuda").manual_seed(seed)
        return model.loss(batch, kl_weight=0.06, stage="train", generator=gen)["loss"]

    bound._loss = gpu_loss
    loss32, s, r = bound._first_order_bound(fp32, batch, seed=3)
    loss16 = float(gpu_loss(bf16, batch, 3))
    assert abs(loss16 - loss32) <= bound.U_BF16 * s
    assert abs(loss16 - loss32) <= 6.0 * bound.U_BF16 / math.sqrt(3.0) * r


def test_compile_on_gpu_matches_eager():
    eager = _model(dtype=torch.float32, dropout=0.0)
    compiled = _model(dtype=torch.float32, dropout=0.0, compile=True)
    compiled.load_state_dict(eager.state_dict())
    heldin = _batch(dtype=torch.float32)["heldin"]
    ref = eager.predict(heldin, mode="mean")["log_rates"]
    got = compiled.predict(heldin, mode="mean")["log_rates"]
    wrapper = compiled.__dict__["_compiled_decoder"]
    assert wrapper.active, wrapper.error
    # float32, kernels fused and reordered: agreement to a few float32 ulps of O(1) log-rates
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-4)
    loss = compiled.loss(_batch(dtype=torch.float32), kl_weight=0.0006)["loss"]
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in compiled.parameters() if p.grad is not None)


@pytest.mark.parametrize("method", ["scan", "chunked", "sequential", "parallel"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_hmm_forward_backward_gpu_equals_cpu_compiled(method, dtype):
    from neurodyn.models.hmmglm.inference import forward_backward

    gen = torch.Generator().manual_seed(0)
    for n_states, n_time in ((2, 3000), (5, 1000), (25, 300)):
        ll = torch.randn(3, n_time, n_states, dtype=torch.float64, generator=gen) * 3.0
        trans = (torch.rand(n_states, n_states, dtype=torch.float64, generator=gen)
                 + 4.0 * torch.eye(n_states, dtype=torch.float64)).log().log_softmax(-1)
        init = torch.full((n_states,), 1.0 / n_states, dtype=torch.float64).log()
        oracle = forward_backward(init, trans, ll, method="compiled")
        post = forward_backward(*(t.to("cuda", dtype) for t in (init, trans, ll)), method=method)
        diff = (post.posteriors.double().cpu() - oracle.posteriors).abs().max().item()
        assert diff <= 1e-5, (n_states, n_time, diff)


def _cli(tmp_path, *args):
    cmd = [sys.executable, "-m", "neurodyn.cli", "fit", "--data", "LorenzDataModule",
           "--data.n_conditions", "4", "--data.trials_per_condition", "5", "--data.batch_size", "8",
           "--model.init_args.config.hidden_size", "8", "--model.init_args.config.ff_dim", "16",
           "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
           "--trainer.default_root_dir", str(tmp_path), "--trainer.logger", "false",
           "--trainer.max_epochs", "2", *args]
    return subprocess.run(cmd, cwd=ROOT.parent, capture_output=True, text=True)


@pytest.mark.parametrize("options", [[], ["--trainer.precision", "bf16-mixed",
                                          "--model.init_args.config.cuda_graph", "true"]])
def test_lightning_fit_on_one_gpu(tmp_path, options):
    proc = _cli(tmp_path, "--trainer.accelerator", "gpu", "--trainer.devices", "1", *options)
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_ddp_fit_on_two_gpus(tmp_path):
    proc = _cli(tmp_path, "--trainer.accelerator", "gpu", "--trainer.devices", "2", "--trainer.strategy", "ddp")
    assert proc.returncode == 0, proc.stderr[-3000:]
