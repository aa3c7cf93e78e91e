"""One GPU check of neurodyn, run by ``benchmarks/gpu_check.sh`` (no internet; about 9 min on one H100/H200).

Sections (each timed; a failing section is recorded and the others still run; a section that would
start after the time budget is skipped and says so):

1. ``env``: torch, CUDA, GPUs.
2. ``cuda_tests``: the test suite's ``cuda``-marked tests (``pytest -m cuda``), pass/fail/skip counts.
3. ``hmm``: HMM forward-backward with every torch method on the GPU (float64 and float32) against the
   numba-compiled CPU kernel (float64): max |posterior difference| (must be <= 1e-5) and times.
4. ``speed``: the MC_Maze-size training step and eval pass in fp32 / bf16 / compiled / CUDA graph
   (``benchmarks/langevinflow_speed.py --device cuda``), peak GPU memory per variant.
5. ``lorenz``: ``neurodyn fit`` of ``configs/langevinflow/lorenz.yaml`` for 50 epochs on the GPU
   (``configs/trainer/gpu.yaml``: bf16-mixed), wall time and the validation metrics of the last epoch.
6. ``determinism``: with the default trainer settings, the same seed twice and a fit resumed after 2 of 4
   epochs against 4 straight, LangevinFlow and HMM-GLM: max |weight difference| of each pair (reported, not
   judged; ``tests/test_cuda_runs.py`` asserts bit-identity with ``--trainer.deterministic true``).
7. ``ddp``: a 2-process DDP fit (``configs/trainer/ddp.yaml``, 2 GPUs) when 2 GPUs exist.

``--cpu-dry-run`` runs the same code on the CPU at tiny sizes (every CUDA-only part reports "not run:
no CUDA" instead), so everything but the CUDA kernels is tested in ``make test``
(``tests/test_gpu_check.py``). Prints one JSON object (last line) and writes it through
``benchmarks/_results.py`` (``benchmarks/results/gpu_check.json``; a dry run writes to ``--out-dir`` or a
temporary folder, never over the real results).

Usage::

    python benchmarks/gpu_check.py                   # on a GPU machine (normally via gpu_check.sh)
    python benchmarks/gpu_check.py --cpu-dry-run --out-dir /tmp/gpu_check
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from _results import (  # noqa: E402
    BenchmarkParser,
    check_results_folder,
    exits_on_signals,
    name_list,
    output_folder,
    positive_float,
    positive_int,
    rerender_readme,
    write_results,
)

HMM_TOL = 1e-5
#: the sections --skip may name (env, the first, always runs)
SKIPPABLE = ("cuda_tests", "hmm", "speed", "lorenz", "determinism", "ddp")


def parse_args(argv=None) -> argparse.Namespace:
    p = BenchmarkParser(description=__doc__.splitlines()[0])
    p.add_argument("--cpu-dry-run", action="store_true", help="tiny sizes on the CPU; CUDA-only parts not run")
    p.add_argument("--budget-s", type=positive_float, default=480.0,
                   help="no section starts after this many seconds (the script's own install time excluded)")
    p.add_argument("--out-dir", type=output_folder, default=None,
                   help="results folder (default benchmarks/results; dry run: a temp dir)")
    p.add_argument("--skip", type=name_list(SKIPPABLE, "section"), default=[],
                   help=f"comma-separated sections to skip ({','.join(SKIPPABLE)})")
    p.add_argument("--lorenz-epochs", type=positive_int, default=50,
                   help="epochs of the lorenz section's fit (default 50)")
    p.add_argument("--speed-steps", type=positive_int, default=10,
                   help="timed calls per variant in the speed section (default 10)")
    p.add_argument("--rerender", default=None, metavar="JSON",
                   help="only (re)build the README table of an existing gpu_check.json from its own figures "
                        "(every other field kept) and exit; runs anywhere, no GPU needed")
    return p.parse_args(argv)


def _neurodyn_cmd() -> list[str]:
    return [sys.executable, "-m", "neurodyn.cli"]


def _last_metrics(csv_path: Path) -> dict:
    """Last logged value of every column of a Lightning CSVLogger metrics.csv."""
    last: dict = {}
    with open(csv_path) as fh:
        for row in csv.DictReader(fh):
            for key, value in row.items():
                if value not in ("", None):
                    try:
                        last[key] = float(value)
                    except ValueError:
                        last[key] = value
    return last


def section_env(dry: bool) -> dict:
    out = {"torch": torch.__version__, "cuda_available": torch.cuda.is_available(),
           "torch_cuda": torch.version.cuda, "n_gpus": torch.cuda.device_count()}
    if torch.cuda.is_available():
        out["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        out["bf16_supported"] = torch.cuda.is_bf16_supported()
    return out


def section_cuda_tests(dry: bool, tmp: Path) -> dict:
    """``pytest -m cuda``; a dry run collects only the CUDA test files (their tests skip without CUDA)."""
    junit = tmp / "cuda_tests.xml"
    targets = ["tests/test_cuda_paths.py", "tests/test_cuda_runs.py"] if dry else ["tests"]
    cmd = [sys.executable, "-m", "pytest", *targets, "-m", "cuda", "-q", "-p", "no:cacheprovider",
           "-o", "addopts=--strict-markers --import-mode=importlib", f"--junitxml={junit}"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    out = {"command": " ".join(cmd[1:]), "returncode": proc.returncode}
    if junit.is_file():
        import xml.etree.ElementTree as ET

        suite = ET.parse(junit).getroot()
        suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
        counts = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
        counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
        out.update(counts)
        failed = [c.get("classname", "") + "::" + c.get("name", "") for c in suite.iter("testcase")
                  if c.find("failure") is not None or c.find("error") is not None]
        out["failed"] = failed
        out["skipped_tests"] = {c.get("classname", "") + "::" + c.get("name", ""): c.find("skipped").get("message", "")
                                for c in suite.iter("testcase") if c.find("skipped") is not None}
    out["ok"] = proc.returncode in (0, 5) and not out.get("failed")  # 5: nothing collected
    if not out["ok"]:
        out["output_tail"] = (proc.stdout + proc.stderr)[-3000:]
    return out


def section_speed(dry: bool, steps: int) -> dict:
    import langevinflow_speed as speed

    if dry:
        args = speed.parse_args(["--batch", "4", "--hidden", "16", "--obs-bins", "6", "--fwd-bins", "2",
                                 "--heldin", "5", "--neurons", "7", "--steps", "1", "--warmup", "0",
                                 "--threads", "1"])
        torch.set_num_threads(1)
        out = {}
        for name, options in (("fp32", {}), ("bf16", {"decoder_precision": "bfloat16"})):
            model, batch = speed.build_ours(args, **options), speed.make_batch(args)
            walls, _ = speed.time_calls(speed.ours_train_step(model, batch), 1, 0, "cpu")
            out[f"train_step_{name}"] = speed.summary(walls)
        out["compiled"] = out["cuda_graph"] = "not run: no CUDA (dry run)"
        out["ok"] = True
        return out
    args = speed.parse_args(["--device", "cuda", "--steps", str(steps), "--warmup", "2", "--compile",
                             "--cuda-graph"])
    out = speed.run_cuda(args)
    out["ok"] = not any(isinstance(v, dict) and "error" in v for v in out.values())
    return out


def section_lorenz(dry: bool, epochs: int, tmp: Path) -> dict:
    run_dir = tmp / "lorenz"
    if dry:
        cmd = [*_neurodyn_cmd(), "fit", "--data", "LorenzDataModule", "--data.n_conditions", "2",
               "--data.trials_per_condition", "4", "--data.batch_size", "4",
               "--model.init_args.config.hidden_size", "8", "--model.init_args.config.ff_dim", "16",
               "--trainer.accelerator", "cpu", "--trainer.max_epochs", "1"]
    else:
        cmd = [*_neurodyn_cmd(), "fit", "--config", "configs/langevinflow/lorenz.yaml",
               "--config", "configs/trainer/gpu.yaml", "--trainer.max_epochs", str(epochs)]
    cmd += ["--trainer.default_root_dir", str(run_dir), "--trainer.logger", "CSVLogger",
            "--trainer.logger.save_dir", str(run_dir), "--trainer.enable_progress_bar", "false"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    out = {"command": " ".join(["neurodyn", *cmd[3:]]), "returncode": proc.returncode,
           "epochs": 1 if dry else epochs, "wall_s": time.perf_counter() - start, "ok": proc.returncode == 0}
    metrics = sorted(run_dir.glob("lightning_logs/version_*/metrics.csv"))
    if metrics:
        last = _last_metrics(metrics[-1])
        out["last_metrics"] = {k: v for k, v in last.items() if k.startswith(("valid/", "train/loss", "epoch"))}
    if not out["ok"]:
        out["output_tail"] = (proc.stdout + proc.stderr)[-3000:]
    return out


def section_hmm(dry: bool) -> dict:
    from neurodyn.models.hmmglm.inference import forward_backward

    cuda = torch.cuda.is_available() and not dry
    device = torch.device("cuda" if cuda else "cpu")
    cases = [(2, 64), (5, 64)] if dry else [(2, 20000), (5, 20000), (25, 5000)]
    methods = ("scan", "chunked", "sequential", "parallel")
    out: dict = {"device": str(device), "tolerance": HMM_TOL, "cases": []}
    worst = 0.0
    gen = torch.Generator().manual_seed(0)
    for n_states, n_time in cases:
        batch = 4
        ll = torch.randn(batch, n_time, n_states, dtype=torch.float64, generator=gen) * 3.0
        trans = (torch.rand(n_states, n_states, dtype=torch.float64, generator=gen) + 4.0 * torch.eye(
            n_states, dtype=torch.float64)).log().log_softmax(-1)
        init = torch.full((n_states,), 1.0 / n_states, dtype=torch.float64).log()
        start = time.perf_counter()
        oracle = forward_backward(init, trans, ll, method="compiled")
        case = {"states": n_states, "bins": n_time, "batch": batch,
                "cpu_compiled_s": time.perf_counter() - start}
        for method in methods:
            if method == "sequential" and n_time > 5000:
                continue  # a Python loop over time: seconds per thousand bins on any device
            for dtype in (torch.float64, torch.float32):
                name = f"{method}_{str(dtype).split('.')[-1]}"
                args = [t.to(device=device, dtype=dtype) for t in (init, trans, ll)]
                forward_backward(*args, method=method)  # warm-up (kernels, caches)
                if cuda:
                    torch.cuda.synchronize()
                start = time.perf_counter()
                post = forward_backward(*args, method=method)
                if cuda:
                    torch.cuda.synchronize()
                diff = (post.posteriors.double().cpu() - oracle.posteriors).abs().max().item()
                case[name] = {"s": time.perf_counter() - start, "max_abs_posterior_diff": diff}
                worst = max(worst, diff)
        out["cases"].append(case)
    out["max_abs_posterior_diff"] = worst
    out["ok"] = worst <= HMM_TOL
    if not cuda:
        out["note"] = "not run on a GPU: no CUDA (dry run compares the same torch methods on the CPU)"
    return out


#: tiny fits of both model families for the determinism section (the cuda tests' sizes)
DETERMINISM_RUNS = {
    "langevinflow": ["--data", "LorenzDataModule", "--data.n_conditions", "4", "--data.trials_per_condition", "5",
                     "--data.batch_size", "6", "--model.init_args.config.hidden_size", "8",
                     "--model.init_args.config.ff_dim", "16", "--model.init_args.config.kl_ramp_epochs", "2",
                     "--model.init_args.config.dropout", "0.2"],
    "hmmglm": ["--model", "HMMGLMModule", "--model.config.n_states", "2", "--model.n_inner", "3",
               "--data", "SwitchingGLMDataModule", "--data.n_states", "2", "--data.n_neurons", "5",
               "--data.n_sequences", "6", "--data.n_bins", "80", "--data.n_train", "4", "--data.batch_size", "2"],
}


def _max_weight_diff(a: Path, b: Path) -> float:
    """Largest absolute difference between two runs' last.ckpt weights (0.0: bit for bit)."""
    sa, sb = (torch.load(r / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
              for r in (a, b))
    return max(((sa[k].double() - sb[k].double()).abs().max().item() if sa[k].numel() else 0.0) for k in sa)


def section_determinism(dry: bool, tmp: Path) -> dict:
    """The default trainer settings (no ``--trainer.deterministic``): the same seed twice, and 2 epochs +
    ``fit --run`` to 4 against 4 straight, per model family; max |weight difference| of each pair. The
    ``cuda``-marked tests assert bit-identity with ``--trainer.deterministic true``; here the kernels are
    free to be non-deterministic, so the figures are reported, not judged."""
    device = ["--trainer.accelerator", "cpu" if dry else "gpu", "--trainer.devices", "1"]
    quiet = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    out: dict = {"settings": "default trainer (deterministic unset), seed 0, 4 epochs; resumed: 2 + fit --run to 4"}

    def fit(*args: str) -> None:  # in this process: the default settings change no process-wide flag
        import contextlib
        import io

        from neurodyn.cli import main as neurodyn_main

        log = io.StringIO()
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            code = neurodyn_main(["fit", *args])
        if code != 0:
            raise RuntimeError(f"neurodyn fit {' '.join(args)}: exit {code}: {log.getvalue()[-1500:]}")

    for family, args in DETERMINISM_RUNS.items():
        if dry and family != "langevinflow":
            continue  # the dry run tests the code path once
        root = tmp / "determinism" / family
        common = [*args, *device, *quiet, "--trainer.default_root_dir", str(root)]
        for name, epochs in (("first", 4), ("second", 4), ("resumed", 2)):
            fit(*common, "--run-name", name, "--trainer.max_epochs", str(epochs))
        fit("--run", str(root / "resumed"), "--trainer.max_epochs", "4")
        same_seed = _max_weight_diff(root / "first", root / "second")
        resumed = _max_weight_diff(root / "first", root / "resumed")
        out[family] = {"same_seed_max_abs_diff": same_seed, "resume_max_abs_diff": resumed,
                       "same_seed_identical": same_seed == 0.0, "resume_identical": resumed == 0.0}
    out["ok"] = True
    if dry:
        out["note"] = "dry run: LangevinFlow only, on the CPU"
    return out


def section_ddp(dry: bool, tmp: Path) -> dict:
    n = torch.cuda.device_count()
    if dry or n < 2:
        return {"ok": None, "note": f"not run: needs 2 GPUs, found {n}"}
    run_dir = tmp / "ddp"
    cmd = [*_neurodyn_cmd(), "fit", "--config", "configs/langevinflow/lorenz.yaml", "--config",
           "configs/trainer/ddp.yaml", "--trainer.devices", "2", "--trainer.max_epochs", "3",
           "--trainer.default_root_dir", str(run_dir), "--trainer.logger", "CSVLogger",
           "--trainer.logger.save_dir", str(run_dir), "--trainer.enable_progress_bar", "false"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    out = {"command": " ".join(["neurodyn", *cmd[3:]]), "returncode": proc.returncode,
           "wall_s": time.perf_counter() - start, "ok": proc.returncode == 0}
    metrics = sorted(run_dir.glob("lightning_logs/version_*/metrics.csv"))
    if metrics:
        out["last_metrics"] = {k: v for k, v in _last_metrics(metrics[-1]).items() if k.startswith("valid/")}
    if not out["ok"]:
        out["output_tail"] = (proc.stdout + proc.stderr)[-3000:]
    return out


def _ms(entry) -> str:
    return f"{1000 * entry['median_s']:.1f}" if isinstance(entry, dict) and "median_s" in entry else "not run"


def readme_table(report: dict) -> dict:
    """The README's table of one GPU check, every cell formatted from ``report`` (the results' figures)."""
    sec = report["sections"]
    env = sec.get("env", {})
    rows = []
    tests = sec.get("cuda_tests", {})
    if "tests" in tests:
        skipped = "; ".join(f"{name} ({why})" for name, why in tests.get("skipped_tests", {}).items())
        rows.append(["`cuda`-marked tests (`pytest -m cuda`)",
                     f"{tests['passed']} passed, {tests['failures'] + tests['errors']} failed, "
                     f"{tests['skipped']} skipped" + (f": {skipped}" if skipped else "")])
    hmm = sec.get("hmm", {})
    if hmm.get("cases"):
        worst = hmm["max_abs_posterior_diff"]
        parts = []
        for case in hmm["cases"]:
            best = min(((k, v["s"]) for k, v in case.items() if isinstance(v, dict)), key=lambda kv: kv[1])
            parts.append(f"K={case['states']}, T={case['bins']}: {1000 * best[1]:.1f} ms ({best[0]})")
        rows.append(["HMM forward-backward on the GPU vs the compiled CPU kernel (float64 oracle)",
                     f"max abs posterior difference {worst:.1e} (bound {hmm['tolerance']:.0e}); fastest, batch 4: "
                     + "; ".join(parts)])
    speed = sec.get("speed", {})
    for variant in ("fp32", "bf16", "fp32_compiled", "bf16_compiled", "fp32_cuda_graph", "bf16_cuda_graph",
                    "bf16_compiled_cuda_graph"):
        if f"train_step_{variant}" in speed:
            rows.append([f"MC_Maze-size step, {variant.replace('_', ' ')}",
                         f"train step {_ms(speed[f'train_step_{variant}'])} ms, "
                         f"eval pass {_ms(speed.get(f'eval_pass_{variant}'))} ms (median of "
                         f"{speed[f'train_step_{variant}'].get('n', '?')})"])
    lorenz = sec.get("lorenz", {})
    if "wall_s" in lorenz:
        r2 = lorenz.get("last_metrics", {}).get("valid/rate_r2")
        rows.append([f"`neurodyn fit` Lorenz, {lorenz['epochs']} epochs, `configs/trainer/gpu.yaml`",
                     f"exit {lorenz['returncode']}, {lorenz['wall_s']:.0f} s wall (process start included)"
                     + (f"; last-epoch valid rate R2 {r2:.3f} (a smoke figure, not a benchmark)" if r2 is not None
                        else "")])
    det = sec.get("determinism", {})
    for family in DETERMINISM_RUNS:
        if family in det:
            d = det[family]
            rows.append([f"{family} fit, default trainer settings: same seed twice; 2 epochs + resume vs 4 straight",
                         "; ".join(("identical" if d[f"{k}_identical"] else f"max abs weight difference "
                                    f"{d[f'{k}_max_abs_diff']:.1e}") for k in ("same_seed", "resume"))
                         + " (`--trainer.deterministic true`: asserted identical by the cuda tests)"])
    ddp = sec.get("ddp", {})
    rows.append(["2-GPU DDP fit", "ok" if ddp.get("ok") else ddp.get("note", "failed" if ddp.get("ok") is False
                                                                              else "not run")])
    gpus = ", ".join(env.get("gpus", [])) or "no GPU (dry run)"
    return {"title": f"GPU check: {gpus}, torch {env.get('torch', '?')}, CUDA {env.get('torch_cuda', '?')}"
                     + (" — FAILED: " + ", ".join(report["failed_sections"]) if report.get("failed_sections") else ""),
            "columns": ["check", "result"], "rows": rows,
            "notes": "MC_Maze size: batch 256, 35 + 10 bins, 137 -> 182 neurons, H 280 (`langevinflow_speed.py "
                     "--device cuda`). Timings are one run of one process on a lent machine (10 calls after 2 "
                     "warm-ups). A step at this size is a long sequence of small kernels (one Langevin step per "
                     "bin), so CUDA graphs shorten the eval pass, while bf16 and compilation change the training "
                     "step little and their order differs between runs of this check (an earlier run of the same "
                     "code: `benchmarks/results/dev/gpu_check_first_run.json`). The Lorenz R2 is the last "
                     "epoch's on validation trials, logged by the fit: a smoke figure, not a selected result."}


def rerender(path: Path) -> Path:
    """Rebuild the ``readme`` table of an existing results file from its figures; all else kept as run."""
    return rerender_readme(path, "gpu_check", "sections", lambda record: readme_table(record["figures"]))


@exits_on_signals
def main(argv=None) -> int:
    args = parse_args(argv)
    if args.rerender:
        print(rerender(Path(args.rerender)))  # a bad file: one line, exit 2 (exits_on_signals)
        return 0
    dry = args.cpu_dry_run
    if args.out_dir is not None or not dry:  # (a dry run without --out-dir writes into a temporary folder)
        check_results_folder(args.out_dir, "--out-dir", name="gpu_check")  # before any work, not at the end
    if not dry and not torch.cuda.is_available():
        print("gpu_check: torch sees no CUDA device (use --cpu-dry-run to test the script on a CPU)",
              file=sys.stderr)
        return 2
    started = time.perf_counter()
    skip = set(args.skip)
    report: dict = {"dry_run": dry, "sections": {}}
    with tempfile.TemporaryDirectory(prefix="neurodyn_gpu_check_") as tmpdir:
        tmp = Path(tmpdir)
        sections = [
            ("env", lambda: section_env(dry)),
            ("cuda_tests", lambda: section_cuda_tests(dry, tmp)),
            ("hmm", lambda: section_hmm(dry)),
            ("speed", lambda: section_speed(dry, args.speed_steps)),
            ("lorenz", lambda: section_lorenz(dry, args.lorenz_epochs, tmp)),
            ("determinism", lambda: section_determinism(dry, tmp)),
            ("ddp", lambda: section_ddp(dry, tmp)),
        ]
        for name, fn in sections:
            elapsed = time.perf_counter() - started
            if name in skip:
                report["sections"][name] = {"ok": None, "note": "skipped (--skip)"}
                continue
            if elapsed > args.budget_s:
                report["sections"][name] = {"ok": None, "note": f"skipped: time budget {args.budget_s:.0f} s spent"}
                continue
            t0 = time.perf_counter()
            try:
                result = fn()
            except Exception as exc:  # noqa: BLE001 - record and go on with the other sections
                result = {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                          "traceback": traceback.format_exc()[-3000:]}
            result["section_s"] = time.perf_counter() - t0
            report["sections"][name] = result
            print(f"gpu_check: {name} done in {result['section_s']:.1f} s (ok={result.get('ok')})",
                  file=sys.stderr, flush=True)
    failed = [k for k, v in report["sections"].items() if v.get("ok") is False]
    report["failed_sections"] = failed
    report["ok"] = not failed
    out_dir = args.out_dir
    if out_dir is None and dry:
        out_dir = tempfile.mkdtemp(prefix="neurodyn_gpu_check_dry_")
    path = write_results("gpu_check", report, seconds=time.perf_counter() - started, out_dir=out_dir,
                         readme=readme_table(report))
    report["results_file"] = str(path)
    print(json.dumps(report, default=str))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
