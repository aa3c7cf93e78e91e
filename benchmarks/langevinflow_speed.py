"""LangevinFlow speed at MC_Maze size: training step (forward + loss + backward + Adam) and predict.

Default size: batch 256, 35 observed + 10 forward bins, 137 held-in / 182 total neurons, hidden 280
(4,510,422 parameters). Inputs are Poisson(1) counts; timings are medians over ``--steps`` after
``--warmup`` untimed steps.

CPU: peak resident memory (ru_maxrss) after the predict phase and after the training phase.
CUDA: fp32 and bf16 autocast, eager and (``--compile``) ``torch.compile``, peak
``torch.cuda.max_memory_allocated`` per variant.

Usage::

    python benchmarks/langevinflow_speed.py --steps 3
    python benchmarks/langevinflow_speed.py --device cuda --steps 20 --compile

The last line printed is a JSON object with every number.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import resource
import statistics
import sys
import time

import torch

from neurodyn.models.langevinflow import LangevinFlow, LangevinFlowConfig, count_parameters


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--steps", type=int, default=3, help="timed training steps / predict calls")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--obs-bins", type=int, default=35)
    p.add_argument("--fwd-bins", type=int, default=10)
    p.add_argument("--heldin", type=int, default=137)
    p.add_argument("--neurons", type=int, default=182)
    p.add_argument("--hidden", type=int, default=280)
    p.add_argument("--preset", default="default", choices=["default", "reference"],
                   help="LangevinFlowConfig() or LangevinFlowConfig.reference() (same arithmetic cost)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--compile", action="store_true", help="CUDA: also time torch.compile variants")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024**2) if sys.platform == "darwin" else peak / 1024


def build(args, device: str) -> tuple[LangevinFlow, dict[str, torch.Tensor]]:
    torch.manual_seed(args.seed)  # a script: seeding globally is allowed here
    factory = LangevinFlowConfig.reference if args.preset == "reference" else LangevinFlowConfig
    model = LangevinFlow(args.heldin, args.neurons, args.obs_bins, args.fwd_bins,
                         factory(hidden_size=args.hidden)).to(device)
    gen = torch.Generator().manual_seed(args.seed)
    target = torch.poisson(torch.ones(args.batch, args.obs_bins + args.fwd_bins, args.neurons), generator=gen)
    batch = {
        "heldin": target[:, : args.obs_bins, : args.heldin].contiguous().to(device),
        "target": target.to(device),
        "target_mask": torch.ones_like(target, dtype=torch.bool).to(device),
    }
    return model, batch


def time_calls(fn, n_steps: int, n_warmup: int, device: str) -> tuple[list[float], list[float]]:
    """Wall-clock and process CPU seconds of each timed call (CPU time is less sensitive to other
    processes sharing the machine; wall ≈ CPU / threads when the process has the cores to itself)."""
    for _ in range(n_warmup):
        fn()
    synchronize(device)
    walls, cpus = [], []
    for _ in range(n_steps):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        synchronize(device)
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)
    return walls, cpus


def train_step_fn(model, batch, *, autocast_dtype=None, compiled=False):
    """One optimisation step: forward + loss (train stage, epoch past the KL ramp) + backward + Adam."""
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=2e-5)
    device = batch["heldin"].device.type

    def loss_of(b):
        return model.loss(b, epoch=600, stage="train")["loss"]

    loss_fn = torch.compile(loss_of) if compiled else loss_of

    def step():
        ctx = (torch.autocast(device_type=device, dtype=autocast_dtype) if autocast_dtype is not None
               else contextlib.nullcontext())
        with ctx:
            loss = loss_fn(batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def summary(timed: tuple[list[float], list[float]]) -> dict[str, float]:
    walls, cpus = timed
    return {"median_s": statistics.median(walls), "min_s": min(walls), "max_s": max(walls),
            "median_cpu_s": statistics.median(cpus), "n": len(walls)}


def run_cpu(args) -> dict:
    if args.threads:
        torch.set_num_threads(args.threads)
    model, batch = build(args, "cpu")
    result = {"n_parameters": count_parameters(model)}
    model.eval()
    predict_mean = time_calls(lambda: model.predict(batch["heldin"], mode="mean"), args.steps, args.warmup,
                              "cpu")
    predict_one = time_calls(lambda: model.predict(batch["heldin"], mode="sample", n_samples=1),
                             args.steps, 0, "cpu")
    result["predict_mean"] = summary(predict_mean)
    result["predict_sample_per_pass"] = summary(predict_one)
    result["peak_rss_mb_after_predict"] = peak_rss_mb()
    model.train()
    step = train_step_fn(model, batch)
    result["train_step"] = summary(time_calls(step, args.steps, args.warmup, "cpu"))
    result["peak_rss_mb_after_train"] = peak_rss_mb()
    result["threads"] = torch.get_num_threads()
    return result


def run_cuda(args) -> dict:
    if not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device visible to torch")
    result = {"gpu": torch.cuda.get_device_name(0)}
    variants = [("fp32", None, False), ("bf16", torch.bfloat16, False)]
    if args.compile:
        variants += [("fp32_compiled", None, True), ("bf16_compiled", torch.bfloat16, True)]
    for name, dtype, compiled in variants:
        model, batch = build(args, "cuda")
        result.setdefault("n_parameters", count_parameters(model))
        model.train()
        step = train_step_fn(model, batch, autocast_dtype=dtype, compiled=compiled)
        torch.cuda.reset_peak_memory_stats()
        warmup = args.warmup + (2 if compiled else 0)  # compilation happens in the first calls
        times = time_calls(step, args.steps, warmup, "cuda")
        result[f"train_step_{name}"] = {**summary(times),
                                        "peak_mem_mb": torch.cuda.max_memory_allocated() / 2**20}
        model.eval()
        torch.cuda.reset_peak_memory_stats()
        ctx = torch.autocast("cuda", dtype=dtype) if dtype is not None else contextlib.nullcontext()
        heldin = batch["heldin"]
        with ctx:
            times = time_calls(lambda m=model, x=heldin: m.predict(x, mode="mean"), args.steps, args.warmup,
                               "cuda")
        if not compiled:
            result[f"predict_mean_{name}"] = {**summary(times),
                                              "peak_mem_mb": torch.cuda.max_memory_allocated() / 2**20}
        model = batch = step = None  # free this variant's memory before the next one
        torch.cuda.empty_cache()
    return result


def main(argv=None) -> int:
    args = parse_args(argv)
    result = run_cuda(args) if args.device == "cuda" else run_cpu(args)
    result.update({
        "benchmark": "langevinflow_speed",
        "device": args.device,
        "preset": args.preset,
        "size": {"batch": args.batch, "obs_bins": args.obs_bins, "fwd_bins": args.fwd_bins,
                 "heldin": args.heldin, "neurons": args.neurons, "hidden": args.hidden},
        "torch": torch.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    })
    for key, value in result.items():
        if isinstance(value, dict) and "median_s" in value:
            print(f"{key:>28}: median {value['median_s']:.3f} s wall, {value['median_cpu_s']:.3f} s CPU "
                  f"over {value['n']}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
