"""LangevinFlow speed at MC_Maze size: training step (forward + loss + backward + Adam) and eval pass.

Default size: batch 256, 35 observed + 10 forward bins, 137 held-in / 182 total neurons, hidden 280
(4,510,422 parameters). Inputs are Poisson(1) counts.

Three modes:

``--reference PATH`` (CPU, side by side): PATH is a checkout of the MIT reference code
(``git clone https://github.com/KingJamesSong/LangevinFlow_CCN``). neurodyn's reference preset and the
reference module get identical weights; their equality is checked first in float64 (log-rates, loss and
every gradient, ``_langevinflow_reference.parity``). Then, in ONE process, the two alternate call by call
(order rotated every round, so load from other processes hits both alike): the training step and one
sampled evaluation pass, in float32 and in bf16 (neurodyn: ``decoder_precision='bfloat16'``, the
transformer under bf16 autocast with encoder, dynamics and readout in float32; reference: its whole
forward under ``torch.autocast('cpu', bfloat16)``, the only way to run it in bf16). The reference's eval
pass is its validation forward (grad enabled: its force uses ``autograd.grad``); neurodyn's is
``predict(mode='sample', n_samples=1)``. Peak RSS is measured per phase and precision in a fresh child
process each (a process's peak cannot be reset); each child imports only what its implementation
needs (the reference module needs ``pytorch_lightning``, ~180 MiB) and reports its RSS after imports. Writes
``benchmarks/results/langevinflow_speed.json`` with a README table.

Default (CPU, neurodyn only) and ``--device cuda`` (fp32 / bf16 / compiled / CUDA-graph variants, peak
``torch.cuda.max_memory_allocated``; used by ``benchmarks/gpu_check.sh``) print JSON only.

Usage::

    python benchmarks/langevinflow_speed.py --reference /path/to/LangevinFlow_CCN --rounds 5 --threads 2
    python benchmarks/langevinflow_speed.py --steps 3
    python benchmarks/langevinflow_speed.py --device cuda --steps 20 --compile --cuda-graph

The last line printed is a JSON object with every number.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _results import (  # noqa: E402
    BenchmarkParser,
    add_timing_options,
    check_results_folder,
    checkout_with,
    exits_on_signals,
    name_list,
    output_folder,
    parse_seed,
    positive_int,
    write_results,
)
from _rss import peak_rss_mb as peak_rss_mib  # noqa: E402

from neurodyn.models.langevinflow import LangevinFlow, LangevinFlowConfig, count_parameters  # noqa: E402
from neurodyn.models.langevinflow.accel import cpu_flags, native_bf16  # noqa: E402
from neurodyn.training.schedules import kl_weight  # noqa: E402

EPOCH = 600  # past the KL and weight-decay ramps: every term of the loss is on


def parse_args(argv=None) -> argparse.Namespace:
    p = BenchmarkParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                   help="neurodyn-only modes: cpu (default), or cuda for the GPU variants")
    p.add_argument("--reference", default=None, metavar="PATH",
                   type=checkout_with("nlb_lightning/models.py", "KingJamesSong/LangevinFlow_CCN"),
                   help="checkout of KingJamesSong/LangevinFlow_CCN: side-by-side mode (CPU)")
    p.add_argument("--rounds", type=positive_int, default=5,
                   help="side-by-side: timed rounds (after one warm-up round)")
    p.add_argument("--precisions", type=name_list(("fp32", "bf16"), "precision"), default=["fp32", "bf16"],
                   help="side-by-side: fp32 and/or bf16")
    p.add_argument("--no-rss", action="store_true", help="side-by-side: skip the per-phase RSS children")
    p.add_argument("--recompute", action="store_true",
                   help="side-by-side: also time the bf16 + checkpoint_decoder training variant")
    p.add_argument("--train-chunks", type=positive_int, default=1,
                   help="side-by-side: also time and measure neurodyn's bf16 training step with "
                        "config.train_chunks=N (recomputed chunks of trials: less memory, one extra forward)")
    p.add_argument("--no-write", action="store_true", help="side-by-side: do not write the results file")
    p.add_argument("--out-dir", type=output_folder, default=None, help="results folder (default benchmarks/results)")
    add_timing_options(p, "neurodyn-only modes: timed steps / passes", "neurodyn-only modes: untimed steps first")
    p.add_argument("--batch", type=positive_int, default=256, help="trials per step (default 256, MC_Maze's batch)")
    p.add_argument("--obs-bins", type=positive_int, default=35, help="observed bins (default 35)")
    p.add_argument("--fwd-bins", type=positive_int, default=10, help="forward-prediction bins (default 10)")
    p.add_argument("--heldin", type=positive_int, default=137, help="held-in neurons (default 137)")
    p.add_argument("--neurons", type=positive_int, default=182, help="all neurons, held-in and held-out (default 182)")
    p.add_argument("--hidden", type=positive_int, default=280, help="hidden size (default 280)")
    p.add_argument("--preset", default="reference", choices=["default", "reference"],
                   help="LangevinFlowConfig() or .reference() (same arithmetic cost; the side-by-side "
                        "mode always uses the reference preset)")
    p.add_argument("--decoder-precision", default="float32", choices=["float32", "bfloat16", "auto"],
                   help="CPU neurodyn-only mode: LangevinFlowConfig.decoder_precision")
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--compile", action="store_true", help="also time torch.compile variants")
    p.add_argument("--cuda-graph", action="store_true", help="CUDA: also time the CUDA-graph rollout")
    p.add_argument("--seed", type=parse_seed, default=0, help="seed of the weights and the batch (default 0)")
    p.add_argument("--rss-child", default=None, help=argparse.SUPPRESS)  # impl:phase:precision
    args = p.parse_args(argv)
    if args.neurons < args.heldin:  # (the model's check would name its own field, n_neurons, after the imports)
        p.error(f"argument --neurons: all neurons ({args.neurons}) cannot be fewer than --heldin ({args.heldin}), "
                "the held-in neurons among them")
    if args.reference and args.device != "cpu":
        p.error(f"argument --device: the side-by-side mode (--reference) runs on the CPU, got --device {args.device}")
    if args.reference and not args.rss_child and not args.no_write:  # the side-by-side mode writes its results
        check_results_folder(args.out_dir, "--out-dir", name="langevinflow_speed")
    if args.reference and not args.rss_child:  # (a child measuring neurodyn's memory must not import it)
        from _langevinflow_reference import load_reference

        try:  # the reference module imported before any work: another version of the code is one line
            load_reference(args.reference)
        except (ImportError, SyntaxError, AttributeError) as err:
            p.error(f"argument --reference: {args.reference}: its nlb_lightning/models.py gives no "
                    f"LangevinAutoencoder ({type(err).__name__}: {err})")
    return args


def sizes(args) -> dict:
    return {"batch": args.batch, "obs_bins": args.obs_bins, "fwd_bins": args.fwd_bins, "heldin": args.heldin,
            "neurons": args.neurons, "hidden": args.hidden}


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def make_batch(args, device: str = "cpu") -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(args.seed + 1)
    target = torch.poisson(torch.ones(args.batch, args.obs_bins + args.fwd_bins, args.neurons), generator=gen)
    return {"heldin": target[:, : args.obs_bins, : args.heldin].contiguous().to(device),
            "target": target.to(device)}


def build_ours(args, device: str = "cpu", **options) -> LangevinFlow:
    torch.manual_seed(args.seed)  # a script: seeding globally is allowed here
    factory = LangevinFlowConfig.reference if args.preset == "reference" else LangevinFlowConfig
    config = factory(hidden_size=args.hidden, **options)
    return LangevinFlow(args.heldin, args.neurons, args.obs_bins, args.fwd_bins, config).to(device)


def ours_train_step(model: LangevinFlow, batch: dict, autocast_dtype=None):
    """One optimisation step: forward + loss (train stage, epoch past the KL ramp) + backward + Adam."""
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=2e-5)
    device = batch["heldin"].device.type

    def step():
        model.train()
        ctx = (torch.autocast(device_type=device, dtype=autocast_dtype) if autocast_dtype is not None
               else contextlib.nullcontext())
        with ctx:
            loss = model.loss(batch, kl_weight=kl_weight(EPOCH, model.config), stage="train")["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def ours_eval_pass(model: LangevinFlow, batch: dict):
    """One sampled evaluation pass (no gradients, dropout off), what predict() repeats n_samples times."""
    def run():
        model.predict(batch["heldin"], mode="sample", n_samples=1, seed=0)
    return run


def ref_train_step(ref, batch: dict, autocast: bool):
    from _langevinflow_reference import reference_train_loss

    optimizer = torch.optim.Adam(ref.parameters(), lr=3e-3, weight_decay=2e-5)

    def step():
        ref.train()
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
        with ctx:
            loss = reference_train_loss(ref, batch["heldin"], batch["target"], EPOCH)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def ref_eval_pass(ref, batch: dict, autocast: bool):
    """The reference's validation forward: eval mode, grad enabled (its force needs autograd.grad)."""
    def run():
        ref.eval()
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
        with torch.enable_grad(), ctx:
            ref(batch["heldin"])
        ref.train()
    return run


def build_ref(args):
    from _langevinflow_reference import load_reference

    Reference = load_reference(args.reference)
    torch.manual_seed(args.seed)
    return Reference(input_size=args.heldin, hidden_size=args.hidden, output_size=args.neurons,
                     fwd_steps=args.fwd_bins, learning_rate=3e-3, weight_decay=2e-5, dropout=0.05, gamma=0.55,
                     cd_rate=0.5)


def time_calls(fn, n_steps: int, n_warmup: int, device: str) -> tuple[list[float], list[float]]:
    """Wall-clock and process CPU seconds of each timed call."""
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


def summary(walls: list[float], cpus: list[float] | None = None) -> dict[str, float]:
    out = {"median_s": statistics.median(walls), "min_s": min(walls), "max_s": max(walls), "n": len(walls),
           "all_s": [round(w, 4) for w in walls]}
    if cpus:
        out["median_cpu_s"] = statistics.median(cpus)
    return out


# ---------------------------------------------------------------------------------------- side by side
def rss_child(args) -> dict:
    """Child process: build one implementation, run one phase 3 times, report peak RSS (MiB)."""
    impl, phase, precision = args.rss_child.split(":")
    if impl == "reference":  # its module needs pytorch_lightning (~180 MiB of imports); neurodyn's does not
        from _langevinflow_reference import load_reference

        load_reference(args.reference)
    after_imports = peak_rss_mib()
    batch = make_batch(args)
    bf16 = precision.startswith("bf16")
    if impl == "neurodyn":
        model = build_ours(args, decoder_precision="bfloat16" if bf16 else "float32",
                           checkpoint_decoder=precision == "bf16_recompute",
                           train_chunks=args.train_chunks if precision == "bf16_chunks" else 1)
        fn = ours_train_step(model, batch) if phase == "train" else ours_eval_pass(model, batch)
    else:
        ref = build_ref(args)
        fn = ref_train_step(ref, batch, bf16) if phase == "train" else ref_eval_pass(ref, batch, bf16)
    before = peak_rss_mib()
    for _ in range(3):
        fn()
    return {"peak_rss_mib": peak_rss_mib(), "rss_after_imports_mib": after_imports,
            "rss_before_phase_mib": before}


def measure_rss(args, impl: str, phase: str, precision: str, env: dict | None = None) -> dict:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--rss-child", f"{impl}:{phase}:{precision}",
           "--reference", str(args.reference), "--threads", str(torch.get_num_threads()),
           "--batch", str(args.batch), "--obs-bins", str(args.obs_bins), "--fwd-bins", str(args.fwd_bins),
           "--heldin", str(args.heldin), "--neurons", str(args.neurons), "--hidden", str(args.hidden),
           "--train-chunks", str(args.train_chunks)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                         env=None if env is None else {**os.environ, **env})
    return json.loads(out.stdout.strip().splitlines()[-1])


def side_by_side(args) -> dict:
    from _langevinflow_reference import copy_weights, parity

    started = time.perf_counter()
    load_before = os.getloadavg()
    check = parity(args.reference)
    tol = 1e-12
    parity_ok = max(check["log_rates_max_abs_diff"], check["loss_abs_diff"], check["grad_max_abs_diff"]) <= tol
    if not parity_ok:
        raise SystemExit(f"reference preset differs from the reference module: {check}")
    precisions = args.precisions
    batch = make_batch(args)
    ref = build_ref(args)
    calls = {}
    for precision in precisions:
        bf16 = precision == "bf16"
        ours = build_ours(args, decoder_precision="bfloat16" if bf16 else "float32")
        copy_weights(ours, ref)  # same starting weights (each model then trains on its own)
        ref_p = build_ref(args)
        calls[("train", precision, "neurodyn")] = ours_train_step(ours, batch)
        calls[("eval", precision, "neurodyn")] = ours_eval_pass(ours, batch)
        calls[("train", precision, "reference")] = ref_train_step(ref_p, batch, bf16)
        calls[("eval", precision, "reference")] = ref_eval_pass(ref_p, batch, bf16)
    if "bf16" in precisions and args.recompute:
        ours = build_ours(args, decoder_precision="bfloat16", checkpoint_decoder=True)
        copy_weights(ours, ref)
        calls[("train", "bf16_recompute", "neurodyn")] = ours_train_step(ours, batch)
    if "bf16" in precisions and args.train_chunks > 1:
        ours = build_ours(args, decoder_precision="bfloat16", train_chunks=args.train_chunks)
        copy_weights(ours, ref)
        calls[("train", "bf16_chunks", "neurodyn")] = ours_train_step(ours, batch)
    times: dict[tuple, list[float]] = {key: [] for key in calls}
    cpu_times: dict[tuple, list[float]] = {key: [] for key in calls}
    keys = list(calls)
    for round_ in range(args.rounds + 1):
        shift = round_ % len(keys)
        for key in keys[shift:] + keys[:shift]:  # rotate the order every round
            start, start_cpu = time.perf_counter(), time.process_time()
            calls[key]()
            if round_ > 0:  # round 0 warms up (allocator, oneDNN primitives)
                times[key].append(time.perf_counter() - start)
                cpu_times[key].append(time.process_time() - start_cpu)
        print(f"round {round_}: " + ", ".join(f"{'/'.join(k)} {times[k][-1]:.2f}s wall {cpu_times[k][-1]:.2f}s cpu"
                                              for k in keys if times[k]), file=sys.stderr, flush=True)
    figures: dict = {"parity_float64": {**check, "tolerance": tol, "ok": parity_ok}}
    for key, walls in times.items():
        phase, precision, impl = key
        figures.setdefault(phase, {}).setdefault(precision, {})[impl] = summary(walls, cpu_times[key])
        figures[phase][precision][impl]["all_cpu_s"] = [round(c, 4) for c in cpu_times[key]]
    for variant in ("bf16_recompute", "bf16_chunks"):  # compared with the same reference calls as bf16
        if ("train", variant, "neurodyn") in times:
            figures["train"][variant]["reference"] = figures["train"]["bf16"]["reference"]
            for table in (times, cpu_times):
                table[("train", variant, "reference")] = table[("train", "bf16", "reference")]
    # Speed-ups use process CPU time: with one thread it equals the wall time of an idle machine, and it
    # does not count the time this process waited for a core while other jobs ran (wall-time ratios,
    # also stored, swing with the load: see speedup_wall_per_round).
    for phase in ("train", "eval"):
        for precision in figures[phase]:
            entry = figures[phase][precision]
            o, r = entry["neurodyn"], entry["reference"]
            entry["speedup"] = r["median_cpu_s"] / o["median_cpu_s"]
            entry["speedup_wall"] = r["median_s"] / o["median_s"]
            # speed-up against the reference as shipped (float32), timed in the same rounds
            entry["speedup_vs_reference_fp32"] = (figures[phase]["fp32"]["reference"]["median_cpu_s"]
                                                  / o["median_cpu_s"]) if "fp32" in precisions else None
            for name, table in (("speedup_per_round", cpu_times), ("speedup_wall_per_round", times)):
                ratios = [a / b for a, b in zip(table[(phase, precision, "reference")],
                                                table[(phase, precision, "neurodyn")])]
                entry[name] = [round(x, 3) for x in ratios]
    if not args.no_rss:
        for phase in ("train", "eval"):
            for precision in figures[phase]:
                for impl in ("neurodyn", "reference"):
                    if precision in ("bf16_recompute", "bf16_chunks") and impl == "reference":
                        continue  # the same dict as the bf16 reference entry
                    figures[phase][precision][impl].update(measure_rss(args, impl, phase, precision))
        for variant in ("bf16", "bf16_chunks"):
            if variant in figures["train"]:
                # glibc's malloc keeps freed heap memory that fragmentation stops it from returning; with a
                # fixed mmap threshold every large tensor is mapped and unmapped on its own
                peak = measure_rss(args, "neurodyn", "train", variant, env={"MALLOC_MMAP_THRESHOLD_": "131072"})
                figures["train"][variant]["neurodyn"]["peak_rss_mib_malloc_mmap_threshold_128k"] = peak["peak_rss_mib"]
    goals = {}  # issue 15 item 4, against the reference as shipped (float32)
    for phase, speed_goal, rss_goal in (("train", 2.0, 1024.0), ("eval", 3.0, 512.0)):
        for precision, e in figures[phase].items():
            goals[f"{phase}_{precision}"] = {
                "speedup_vs_reference_fp32": e.get("speedup_vs_reference_fp32"), "speedup_goal": speed_goal,
                "speed_met": (e.get("speedup_vs_reference_fp32") or 0.0) >= speed_goal,
                "peak_rss_mib": e["neurodyn"].get("peak_rss_mib"), "rss_goal_mib": rss_goal,
                "rss_met": (e["neurodyn"].get("peak_rss_mib") or float("inf")) <= rss_goal}
    figures["goals"] = goals
    figures["train_chunks"] = args.train_chunks
    figures["load_avg_before"] = list(load_before)
    figures["load_avg_after"] = list(os.getloadavg())
    figures["cpu_native_bf16"] = native_bf16("cpu")
    figures["cpu_bf16_flags"] = sorted({"avx512_bf16", "amx_bf16", "amx_tile"} & cpu_flags())
    figures["n_parameters"] = count_parameters(ours)
    figures["threads"] = torch.get_num_threads()
    figures["size"] = sizes(args)
    figures["seconds"] = time.perf_counter() - started
    return figures


def readme_block(figures: dict, precisions: list[str]) -> dict:
    rows = []
    names = {"train": "training step", "eval": "eval pass"}
    labels = {"fp32": "fp32", "bf16": "bf16", "bf16_recompute": "bf16 + recomputed decoder",
              "bf16_chunks": f"bf16 + train_chunks {figures.get('train_chunks')}"}
    for phase in ("train", "eval"):
        for precision in figures[phase]:
            if not isinstance(figures[phase][precision], dict) or "neurodyn" not in figures[phase][precision]:
                continue
            e = figures[phase][precision]
            o, r = e["neurodyn"], e["reference"]
            rss = (f"{o['peak_rss_mib']:.0f} / {r['peak_rss_mib']:.0f}" if "peak_rss_mib" in o else "not measured")
            vs32 = "" if precision == "fp32" or e.get("speedup_vs_reference_fp32") is None else \
                f" ({e['speedup_vs_reference_fp32']:.2f}x vs reference fp32)"
            rows.append([names[phase], labels.get(precision, precision),
                         f"{o['median_cpu_s']:.2f} ({o['median_s']:.2f})",
                         f"{r['median_cpu_s']:.2f} ({r['median_s']:.2f})", f"{e['speedup']:.2f}x{vs32}", rss])
    p = figures["parity_float64"]
    key = "peak_rss_mib_malloc_mmap_threshold_128k"
    with_env = [f"{labels[v]} {figures['train'][v]['neurodyn'][key]:.0f} MiB" for v in ("bf16", "bf16_chunks")
                if key in figures["train"].get(v, {}).get("neurodyn", {})]
    mmap_note = ("; with MALLOC_MMAP_THRESHOLD_=131072 in the environment (glibc then returns each large freed "
                 "block) neurodyn's training step peaks at " + ", ".join(with_env)) if with_env else ""
    chunk_note = ("; train_chunks recomputes each chunk of trials in backward (one extra forward, the same "
                  "gradients as running the chunks one after another)") if "bf16_chunks" in figures["train"] else ""
    mc_maze = figures["size"] == {"batch": 256, "obs_bins": 35, "fwd_bins": 10, "heldin": 137, "neurons": 182,
                                  "hidden": 280}
    notes = (f"{'MC_Maze size' if mc_maze else 'Size'} (batch {figures['size']['batch']}, "
             f"{figures['size']['obs_bins']} + "
             f"{figures['size']['fwd_bins']} bins, {figures['size']['heldin']} -> {figures['size']['neurons']} "
             f"neurons, H {figures['size']['hidden']}, {figures['n_parameters']:,} parameters); medians over "
             f"{figures['train'][precisions[0]]['neurodyn']['n']} alternating rounds in one process, "
             f"{figures['threads']} torch thread(s); "
             "times are process CPU seconds per call (what the call computes, not the time it waited for a "
             "core on the shared machine), wall seconds in brackets. bf16: "
             "neurodyn runs the transformer under bf16 autocast (encoder, dynamics, readout float32); the "
             "reference runs its whole forward under bf16 autocast. Peak RSS per phase from a fresh child "
             "process each (3 calls), which imports only what its implementation needs (after imports: "
             f"neurodyn {figures['train'][precisions[0]]['neurodyn'].get('rss_after_imports_mib', 0):.0f} MiB, "
             f"reference {figures['train'][precisions[0]]['reference'].get('rss_after_imports_mib', 0):.0f} MiB, "
             "which needs pytorch_lightning)" + mmap_note + chunk_note + f". Load average "
             f"{figures['load_avg_before'][0]:.2f} before, "
             f"{figures['load_avg_after'][0]:.2f} after. Float64 parity of the reference preset with the "
             f"reference module first: log-rates {p['log_rates_max_abs_diff']:.1e}, loss {p['loss_abs_diff']:.1e}, "
             f"gradients {p['grad_max_abs_diff']:.1e}.")
    goal_text = []
    for name, g in figures.get("goals", {}).items():
        phase, precision = name.split("_", 1)
        label = f"{names[phase]} {labels.get(precision, precision)}"
        speed = "met" if g["speed_met"] else "not met"
        rss = "met" if g["rss_met"] else "not met"
        goal_text.append(f"{label}: >= {g['speedup_goal']:g}x {speed} ({g['speedup_vs_reference_fp32']:.2f}x), "
                         f"<= {g['rss_goal_mib']:.0f} MiB {rss} ({g['peak_rss_mib']:.0f})")
    if goal_text:
        notes += " Goals (issue 15, against the reference as shipped, fp32): " + "; ".join(goal_text) + "."
    return {"title": "LangevinFlow vs the reference module, side by side (CPU)",
            "columns": ["phase", "precision", "neurodyn CPU s (wall s)", "reference CPU s (wall s)",
                        "speed-up (CPU time)",
                        "peak RSS neurodyn / reference (MiB)"],
            "rows": rows, "notes": notes}


# ---------------------------------------------------------------------------------------- neurodyn only
def run_cpu(args) -> dict:
    model = build_ours(args, decoder_precision=args.decoder_precision)
    batch = make_batch(args)
    result = {"n_parameters": count_parameters(model), "decoder_precision": args.decoder_precision}
    model.eval()
    result["predict_mean"] = summary(*time_calls(lambda: model.predict(batch["heldin"], mode="mean"),
                                                 args.steps, args.warmup, "cpu"))
    result["predict_sample_per_pass"] = summary(*time_calls(ours_eval_pass(model, batch), args.steps, 0, "cpu"))
    result["peak_rss_mib_after_predict"] = peak_rss_mib()
    result["train_step"] = summary(*time_calls(ours_train_step(model, batch), args.steps, args.warmup, "cpu"))
    result["peak_rss_mib_after_train"] = peak_rss_mib()
    if args.compile:
        model = build_ours(args, decoder_precision=args.decoder_precision, compile=True)
        result["train_step_compiled"] = summary(*time_calls(ours_train_step(model, batch), args.steps,
                                                            args.warmup + 2, "cpu"))
    return result


def run_cuda(args) -> dict:
    if not torch.cuda.is_available():
        from neurodyn.errors import InputError

        raise InputError("no CUDA device visible to torch (use --device cpu)", field="--device")
    result = {"gpu": torch.cuda.get_device_name(0)}
    variants = [("fp32", {}), ("bf16", {"decoder_precision": "bfloat16"})]
    if args.compile:
        variants += [("fp32_compiled", {"compile": True}),
                     ("bf16_compiled", {"decoder_precision": "bfloat16", "compile": True})]
    if args.cuda_graph:
        variants += [("fp32_cuda_graph", {"cuda_graph": True}),
                     ("bf16_cuda_graph", {"decoder_precision": "bfloat16", "cuda_graph": True})]
    if args.compile and args.cuda_graph:
        variants += [("bf16_compiled_cuda_graph", {"decoder_precision": "bfloat16", "compile": True,
                                                   "cuda_graph": True})]
    for name, options in variants:
        model = build_ours(args, "cuda", **options)
        batch = make_batch(args, "cuda")
        result.setdefault("n_parameters", count_parameters(model))
        torch.cuda.reset_peak_memory_stats()
        warmup = args.warmup + (2 if options.get("compile") else 0)  # compilation happens in the first calls
        try:
            walls, cpus = time_calls(ours_train_step(model, batch), args.steps, warmup, "cuda")
            result[f"train_step_{name}"] = {**summary(walls, cpus),
                                            "peak_mem_mib": torch.cuda.max_memory_allocated() / 2**20}
            torch.cuda.reset_peak_memory_stats()
            walls, cpus = time_calls(ours_eval_pass(model, batch), args.steps, args.warmup, "cuda")
            result[f"eval_pass_{name}"] = {**summary(walls, cpus),
                                           "peak_mem_mib": torch.cuda.max_memory_allocated() / 2**20}
        except Exception as exc:  # noqa: BLE001 - one failing variant must not hide the others
            result[f"train_step_{name}"] = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        compiled = model.__dict__.get("_compiled_decoder")
        if compiled is not None and not compiled.active:
            result[f"train_step_{name}"]["compile_fell_back"] = compiled.error
        model = batch = None  # free this variant's memory before the next one
        torch.cuda.empty_cache()
    return result


@exits_on_signals
def main(argv=None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.rss_child:
        print(json.dumps(rss_child(args)))
        return 0
    base = {"benchmark": "langevinflow_speed", "device": args.device, "size": sizes(args),
            "torch": torch.__version__, "python": platform.python_version(), "machine": platform.machine(),
            "threads": torch.get_num_threads()}
    if args.reference:
        started = time.perf_counter()
        figures = side_by_side(args)
        precisions = args.precisions
        for phase in ("train", "eval"):
            for precision, e in figures[phase].items():
                print(f"{phase:>5} {precision}: neurodyn {e['neurodyn']['median_s']:.3f} s, reference "
                      f"{e['reference']['median_s']:.3f} s, {e['speedup']:.2f}x", file=sys.stderr)
        if not args.no_write:
            write_results("langevinflow_speed", figures, seconds=time.perf_counter() - started,
                          readme=readme_block(figures, precisions), out_dir=args.out_dir,
                          reference="KingJamesSong/LangevinFlow_CCN nlb_lightning/models.py "
                                    "LangevinAutoencoder (MIT), run from a checkout")
        print(json.dumps({**base, **figures}))
        return 0
    result = run_cuda(args) if args.device == "cuda" else run_cpu(args)
    result.update(base)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
