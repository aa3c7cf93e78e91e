"""How time and memory grow with the data: LangevinFlow training step and HMM-GLM E-step on the CPU.

LangevinFlow (training step = coordinated dropout, one sampled pass, loss, backward, Adam step; the
model of ``configs/langevinflow/mc_maze.yaml``: hidden 280, D = H, neurodyn's default options), grown
one axis at a time from a base of 500 trials, 182 neurons (137 held-in) and 35 + 10 bins:

- trials 100 -> 2000: the step (a batch of ``--batch`` trials) does not change; the epoch is
  ``ceil(trials / batch)`` steps (``epoch_s`` = that many times the measured median step, a derived
  figure) and the resident data grow;
- neurons 50 -> 500 (three quarters held-in);
- bins 35 -> 140 observed (plus 10 forward).

HMM-GLM E-step (``HMMGLM.e_step``: coupled-GLM log-emissions, then exact forward-backward with the
compiled kernel; one sequence of T bins, 20 neurons as in the paper's simulator, exponential history
basis): T = 1e3 -> 1e6 bins at K = 5 states, and K = 2 -> 25 at T = 1e5.

Every size runs in a fresh child process (``ru_maxrss`` is a process's peak and cannot be reset) on
``--threads`` threads; figures: median wall time of ``--steps`` timed calls after ``--warmup`` untimed
ones, peak RSS, and the RSS of the same child before the data were made (imports and runtime). A size is
skipped, and the skip recorded, when the previous size on its axis predicts (linearly in the axis) a
peak above ``--max-gib`` (the machine is shared). Where peak memory reaches 24 GiB is extrapolated
linearly from each axis's measured points (``gib24_at``: a prediction, not a measurement).

Writes ``benchmarks/results/scaling.json`` (with a README table) and ``benchmarks/results/scaling.png`` (or both
into ``--out-dir`` / ``$NEURODYN_RESULTS_DIR``; the json's ``plot`` records where the figure was written, relative
to the repository root when inside it)::

    OMP_NUM_THREADS=1 python benchmarks/scaling.py --threads 1
    python benchmarks/scaling.py --quick --out-dir /tmp/scaling      # tiny sizes, a smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _results import (  # noqa: E402
    BenchmarkParser,
    OptionValueError,
    add_timing_options,
    check_results_folder,
    exits_on_signals,
    json_object,
    output_folder,
    positive_float,
    positive_int,
    refuse_committed_folder,
)
from _rss import peak_rss_mb  # noqa: E402

LF_BASE = {"trials": 500, "neurons": 182, "heldin": 137, "obs_bins": 35, "fwd_bins": 10}
LF_AXES = {"trials": [100, 500, 1000, 2000], "neurons": [50, 100, 182, 300, 500], "obs_bins": [35, 70, 140]}
HMM_BASE = {"bins": 100_000, "states": 5, "neurons": 20}
HMM_AXES = {"bins": [1_000, 10_000, 100_000, 1_000_000], "states": [2, 5, 10, 25]}
EPOCH = 600  # past the KL and weight-decay ramps: every loss term is on
GIB = 2**30


# -- children -----------------------------------------------------------------------------------------
def child_langevinflow(size: dict, args) -> dict:
    import torch

    from neurodyn.models.langevinflow import LangevinFlow, LangevinFlowConfig
    from neurodyn.training.schedules import kl_weight

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    base_mib = peak_rss_mb()
    gen = torch.Generator().manual_seed(0)
    n_trials, n_obs, n_fwd = size["trials"], size["obs_bins"], size["fwd_bins"]
    n_in, n_all = size["heldin"], size["neurons"]
    target = torch.poisson(torch.full((n_trials, n_obs + n_fwd, n_all), 0.5), generator=gen)
    heldin = target[:, :n_obs, :n_in].clone()
    mask = torch.ones_like(target, dtype=torch.bool)
    config = LangevinFlowConfig(hidden_size=args.hidden, eval_mode="mean")
    model = LangevinFlow(n_in, n_all, n_obs, n_fwd, config)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch_size = min(args.batch, n_trials)
    times, cpus = [], []
    for i in range(args.warmup + args.steps):
        idx = torch.randint(n_trials, (batch_size,), generator=gen)
        batch = {"heldin": heldin[idx], "target": target[idx], "target_mask": mask[idx]}
        t0, c0 = time.perf_counter(), time.process_time()
        opt.zero_grad(set_to_none=True)
        loss = model.loss(batch, kl_weight=kl_weight(EPOCH, model.config), stage="train")["loss"]
        loss.backward()
        opt.step()
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        if not math.isfinite(float(loss)):
            raise RuntimeError(f"non-finite loss at {size}")
    step, cpu = statistics.median(times), statistics.median(cpus)
    n_steps = math.ceil(n_trials / batch_size)
    return {"step_s": step, "step_s_all": times, "step_cpu_s": cpu, "step_cpu_s_all": cpus,
            "epoch_s": step * n_steps, "epoch_cpu_s": cpu * n_steps,
            "batch": batch_size, "peak_rss_mib": peak_rss_mb(), "base_rss_mib": base_mib,
            "parameters": sum(p.numel() for p in model.parameters())}


def child_hmm(size: dict, args) -> dict:
    import torch

    from neurodyn.models.hmmglm import HMMGLM

    torch.set_num_threads(args.threads)
    model = HMMGLM(n_neurons=size["neurons"], n_states=size["states"], seed=0)
    gen = torch.Generator().manual_seed(0)
    model.e_step(torch.poisson(torch.full((1, 200, size["neurons"]), 0.3), generator=gen))  # compile numba
    base_mib = peak_rss_mb()
    spikes = torch.poisson(torch.full((1, size["bins"], size["neurons"]), 0.3), generator=gen)
    times, cpus = [], []
    for i in range(args.warmup + args.steps):
        t0, c0 = time.perf_counter(), time.process_time()
        post = model.e_step(spikes)
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - c0)
        del post
    step, cpu = statistics.median(times), statistics.median(cpus)
    return {"estep_s": step, "estep_s_all": times, "estep_cpu_s": cpu, "estep_cpu_s_all": cpus,
            "per_bin_us": step / size["bins"] * 1e6,
            "peak_rss_mib": peak_rss_mb(), "base_rss_mib": base_mib}


# -- parent ---------------------------------------------------------------------------------------------
def run_child(kind: str, size: dict, args) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--size", json.dumps(size), "--threads", str(args.threads),
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--batch", str(args.batch),
           "--hidden", str(args.hidden)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads),
           "NUMBA_NUM_THREADS": str(args.threads)}
    t0 = time.time()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"skipped": f"over the {args.timeout} s limit"}
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
        return {"failed": f"exit {proc.returncode}: {tail[0][:300]}"}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["child_s"] = round(time.time() - t0, 2)
    return out


def predicted_peak_gib(points: list[tuple[float, float]], x: float) -> float | None:
    """Linear prediction of peak RSS (GiB) at ``x`` from measured (x, MiB) points (None with < 1 point)."""
    if not points:
        return None
    if len(points) == 1:
        return points[0][1] * x / points[0][0] / 1024
    slope, intercept = fit_line(points)
    return (slope * x + intercept) / 1024


def fit_line(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares line through (x, y) points."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else 0.0
    return slope, my - slope * mx


def gib24_at(points: list[tuple[float, float]]) -> float | None:
    """Where the linear fit of peak RSS (MiB) reaches 24 GiB; None when it does not grow."""
    if len(points) < 2:
        return None
    slope, intercept = fit_line(points)
    return (24 * 1024 - intercept) / slope if slope > 0 else None


def sweep(kind: str, base: dict, axes: dict, args, log) -> dict:
    results = {}
    for axis, values in axes.items():
        rows, measured = [], []
        for value in values:
            size = dict(base, **{axis: value})
            if kind == "langevinflow" and axis == "neurons":
                size["heldin"] = max(1, round(0.75 * value))
            guess = predicted_peak_gib(measured, value)
            if guess is not None and guess > args.max_gib:
                row = {axis: value, "skipped": f"predicted peak {guess:.1f} GiB > --max-gib {args.max_gib}"}
            else:
                row = {axis: value, **run_child(kind, size, args)}
                if "peak_rss_mib" in row:
                    measured.append((value, row["peak_rss_mib"]))
            rows.append(row)
            log(f"{kind} {axis}={value}: " + json.dumps({k: v for k, v in row.items() if not k.endswith("_all")}))
        at = gib24_at(measured)
        results[axis] = {"rows": rows, "gib24_at": at, "fixed": {k: v for k, v in base.items() if k != axis}}
    return results


def _fmt_s(x) -> str:
    return "—" if x is None else (f"{x * 1e3:.0f} ms" if x < 1 else f"{x:.2f} s")


def _fmt_gib24(at, largest: float) -> str:
    if at is None:
        return "not reached (memory does not grow along this axis)"
    if at > 100 * largest:
        return f"beyond 100x the largest size measured ({largest:,.0f})"
    return f"≈ {at:,.0f}"


def readme_block(lf: dict, hmm: dict, args) -> dict:
    rows = []
    names = {"trials": "trials", "neurons": "neurons", "obs_bins": "observed bins", "bins": "bins T",
             "states": "states K"}
    for model, res, time_key in (("LangevinFlow step", lf, "step"), ("HMM-GLM E-step", hmm, "estep")):
        for axis, block in res.items():
            for row in block["rows"]:
                if "skipped" in row or "failed" in row:
                    rows.append([model, f"{names[axis]} {row[axis]:,}", "—", "—", "—",
                                 row.get("skipped") or row.get("failed")])
                    continue
                extra = f"epoch {_fmt_s(row['epoch_cpu_s'])} CPU" if axis == "trials" else ""
                rows.append([model, f"{names[axis]} {row[axis]:,}", _fmt_s(row[f"{time_key}_cpu_s"]),
                             _fmt_s(row[f"{time_key}_s"]), f"{row['peak_rss_mib'] / 1024:.2f}", extra])
            rows.append([model, f"{names[axis]}: 24 GiB at (linear extrapolation)", "", "", "",
                         _fmt_gib24(block["gib24_at"], max(r[axis] for r in block["rows"]))])
    notes = (f"LangevinFlow: hidden {args.hidden}, batch {args.batch}, one axis at a time from "
             f"{LF_BASE['trials']} trials, {LF_BASE['neurons']} neurons ({LF_BASE['heldin']} held-in), "
             f"{LF_BASE['obs_bins']} + {LF_BASE['fwd_bins']} bins; the epoch time is steps x the median step "
             f"(derived). Medians of the timed calls; CPU time (process time, one thread) is the steadier figure "
             f"on a shared machine, wall time is what a user waits. HMM-GLM: one sequence, "
             f"{HMM_BASE['neurons']} neurons, K = {HMM_BASE['states']} for the T "
             f"axis, T = {HMM_BASE['bins']:,} for the K axis. Peak RSS of a fresh process (imports included); "
             f"![scaling](benchmarks/results/scaling.png)")
    return {"title": "Scaling on the CPU: time and peak memory by size (benchmarks/scaling.py)",
            "columns": ["model", "size", "CPU time", "wall time", "peak RSS (GiB)", "note"], "rows": rows,
            "notes": notes}


def plot(lf: dict, hmm: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    lf_labels = {"trials": "trials (epoch time)", "neurons": "neurons", "obs_bins": "observed bins"}
    for axis, block in lf.items():
        rows = [r for r in block["rows"] if "peak_rss_mib" in r]
        if not rows:
            continue
        x0 = rows[0][axis]
        key = "epoch_cpu_s" if axis == "trials" else "step_cpu_s"
        axes[0, 0].plot([r[axis] / x0 for r in rows], [r[key] for r in rows], "o-", label=lf_labels[axis])
        axes[0, 1].plot([r[axis] / x0 for r in rows], [r["peak_rss_mib"] / 1024 for r in rows], "o-",
                        label=lf_labels[axis])
    axes[0, 0].set(title="LangevinFlow training step (epoch for trials)", xlabel="size / smallest size",
                   ylabel="CPU seconds",
                   xscale="log", yscale="log")
    axes[0, 1].set(title="LangevinFlow peak RSS", xlabel="size / smallest size", ylabel="GiB", xscale="log")
    for axis, block in hmm.items():
        rows = [r for r in block["rows"] if "peak_rss_mib" in r]
        if not rows:
            continue
        label = "bins T (K = 5)" if axis == "bins" else "states K (T = 1e5)"
        x0 = rows[0][axis]
        axes[1, 0].plot([r[axis] / x0 for r in rows], [r["estep_cpu_s"] for r in rows], "o-", label=label)
        axes[1, 1].plot([r[axis] / x0 for r in rows], [r["peak_rss_mib"] / 1024 for r in rows], "o-", label=label)
    axes[1, 0].set(title="HMM-GLM E-step", xlabel="size / smallest size", ylabel="CPU seconds", xscale="log",
                   yscale="log")
    axes[1, 1].set(title="HMM-GLM E-step peak RSS", xlabel="size / smallest size", ylabel="GiB", xscale="log")
    for ax in axes.flat:
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    from neurodyn.io import atomic_path

    try:
        with atomic_path(path) as tmp:  # a failure or Ctrl-C mid-write leaves the old figure and no partial file
            fig.savefig(tmp, dpi=80, format="png")
    finally:
        plt.close(fig)


def parse_args(argv=None):
    p = BenchmarkParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=positive_int, default=1, help="torch / BLAS threads of every child (default 1)")
    add_timing_options(p, "timed calls per size", "untimed calls first")
    p.add_argument("--batch", type=positive_int, default=64, help="LangevinFlow trials per step")
    p.add_argument("--hidden", type=positive_int, default=280, help="LangevinFlow hidden size (mc_maze.yaml: 280)")
    p.add_argument("--max-gib", type=positive_float, default=6.0, help="skip sizes predicted to need more")
    p.add_argument("--timeout", type=positive_int, default=900, help="seconds per size")
    p.add_argument("--only", choices=["langevinflow", "hmm"], default=None,
                   help="run one of the two sweeps (no README table: needs --out-dir or $NEURODYN_RESULTS_DIR)")
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes (a smoke run; not for the README: needs --out-dir or $NEURODYN_RESULTS_DIR)")
    p.add_argument("--out-dir", type=output_folder, default=None,
                   help="results folder (default $NEURODYN_RESULTS_DIR, else benchmarks/results)")
    p.add_argument("--child", default=None, choices=["langevinflow", "hmm"], help=argparse.SUPPRESS)
    p.add_argument("--size", default=None, help=argparse.SUPPRESS)  # a child's size, JSON
    args = p.parse_args(argv)
    if args.child:  # the size a parent hands its child, checked as any option is (one line, exit code 2)
        fields = LF_BASE if args.child == "langevinflow" else HMM_BASE
        if args.size is None:
            p.error("argument --size: required with --child")
        try:
            args.size = json_object(**dict.fromkeys(fields, int))(args.size)
        except OptionValueError as err:
            p.error(f"argument --size: {err}")
        small = [k for k in fields if args.size[k] < 1]
        if small:
            p.error(f"argument --size: field {small[0]!r} must be >= 1, got {args.size[small[0]]}")
    return args


@exits_on_signals
def main(argv=None) -> int:
    args = parse_args(argv)
    if args.child:
        size = args.size
        out = child_langevinflow(size, args) if args.child == "langevinflow" else child_hmm(size, args)
        print(json.dumps(out))
        return 0
    out_dir = check_results_folder(args.out_dir, "--out-dir", name="scaling")  # before any work, not at the end
    if args.quick or args.only:  # no README table: never over the committed scaling.json / .png
        flag = "--quick" if args.quick else "--only"
        refuse_committed_folder(out_dir, "scaling", f"a {flag} run", flag, "--out-dir")
    global LF_BASE, LF_AXES, HMM_BASE, HMM_AXES
    if args.quick:
        args.hidden, args.batch, args.steps = 16, 8, 1
        LF_BASE = {"trials": 20, "neurons": 12, "heldin": 9, "obs_bins": 10, "fwd_bins": 2}
        LF_AXES = {"trials": [10, 20], "neurons": [8, 12], "obs_bins": [10, 20]}
        HMM_BASE = {"bins": 2000, "states": 2, "neurons": 5}
        HMM_AXES = {"bins": [1000, 2000], "states": [2, 3]}
    t0 = time.time()

    def log(msg):
        print(msg, flush=True)

    lf = {} if args.only == "hmm" else sweep("langevinflow", LF_BASE, LF_AXES, args, log)
    hmm = {} if args.only == "langevinflow" else sweep("hmm", HMM_BASE, HMM_AXES, args, log)
    from _results import recorded_path, write_results

    out_dir.mkdir(parents=True, exist_ok=True)  # --out-dir, else $NEURODYN_RESULTS_DIR, else benchmarks/results
    plot(lf, hmm, out_dir / "scaling.png")
    figures = {"langevinflow": lf, "hmm_estep": hmm,
               "settings": {"hidden": args.hidden, "batch": args.batch, "steps": args.steps, "warmup": args.warmup,
                            "max_gib": args.max_gib, "lf_base": LF_BASE, "hmm_base": HMM_BASE, "quick": args.quick}}
    readme = None if args.quick or args.only else readme_block(lf, hmm, args)
    # the figure where it was written (it was always recorded as benchmarks/results/scaling.png)
    path = write_results("scaling", figures, seconds=time.time() - t0, readme=readme, out_dir=out_dir,
                         plot=recorded_path(out_dir / "scaling.png"))
    log(f"wrote {path} and {out_dir / 'scaling.png'}")  # (write_results said the first on stderr too)
    return 0


if __name__ == "__main__":
    sys.exit(main())
