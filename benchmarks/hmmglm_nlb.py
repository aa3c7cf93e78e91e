"""The HMM-GLM family on NLB-shaped data through the command line, as a user runs it.

Data: NLB-shaped NWB files written by neurodyn's own simulator (``mc_maze`` style, sized like
MC_Maze_Small: 100 train + val trials, 100 test trials, 107 held-in + 35 held-out units), prepared at
20 ms with ``neurodyn prepare`` for both phases. Each trial is one sequence of 35 bins spanning move
onset -250..+450 ms; the models' neurons are the 107 held-in units.

Per seed, for every model (``glm``: one state; ``hmmglm``: 3 states; ``gaussian``: 3 states tied by the
Gaussian prior), all through the CLI with the shipped config ``configs/hmmglm/mc_maze_small_states.yaml``
and only the variant / number of states changed:

``neurodyn fit`` (val-phase file) -> ``neurodyn predict --ckpt_path last`` -> ``neurodyn plot``.

Split and selection: fit on the 75 ``train`` trials; nothing is selected (a fixed number of EM epochs
from the shipped config, the last checkpoint); reported on the 25 ``val`` trials, scored once.

Reported, per model and seed, mean ± sd over seeds:

- ``ll_per_spike``: held-out marginal log-likelihood ``log p(X)`` (forward algorithm) of the 25
  evaluation trials' held-in spikes, nats per spike; ``gain_bits_per_spike``: the gain over the GLM,
  ``(LL_model - LL_glm) / (n_spikes ln 2)``, bits per spike;
- states vs task events: on the Viterbi paths of the evaluation trials, the fraction of state switches
  within ±100 ms of move onset (``frac_near``) against the fraction of bin boundaries in that window
  (``chance``) and a per-trial shuffle p-value (:func:`neurodyn.metrics.states.switch_alignment`);
  ``switches_per_trial``;
- ``connections``: how many couplings the one read-out rule (Wald test on the training data,
  :mod:`neurodyn.models.hmmglm.readout`) calls excitatory / inhibitory / none, per state.

Then the test phase (fit on train + val, predict the 100 test trials, plot) with the 3-state HMM-GLM,
timed, to show that every phase works. Wall-clock seconds per step are recorded.

Usage: ``python benchmarks/hmmglm_nlb.py --seeds 0,1,2`` (writes ``benchmarks/results/hmmglm_nlb.json``).
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _results import (  # noqa: E402
    BenchmarkParser,
    check_results_folder,
    exits_on_signals,
    mean_sd,
    new_folder,
    open_log,
    output_file,
    output_folder,
    parse_seeds,
    positive_int,
    summarize,
    write_results,
)
from nlb_synthetic import neurodyn  # noqa: E402

CONFIG = ROOT / "configs" / "hmmglm" / "mc_maze_small_states.yaml"
DATASET, STYLE, N_HELDIN, N_HELDOUT, N_TRIALS = "mc_maze_small", "mc_maze", 107, 35, 100
BIN_MS, START_MS, WINDOW_MS = 20, -250, 100.0
#: model -> CLI overrides of the shipped config
MODELS = {
    "glm": ["--model.init_args.config.variant", "glm", "--model.init_args.config.n_states", "1"],
    "hmmglm": ["--model.init_args.config.variant", "hmmglm", "--model.init_args.config.n_states", "3"],
    "gaussian": ["--model.init_args.config.variant", "gaussian", "--model.init_args.config.n_states", "3"],
}
TYPES = {"excitatory": 1, "inhibitory": -1, "none": 0}


def fit_predict_plot(name: str, prepared: Path, seed: int, work: Path, env: dict, log) -> tuple[Path, dict]:
    """``fit`` -> ``predict --ckpt_path last`` -> ``plot`` in ``work/name``; returns (prediction, seconds)."""
    folder = work / name
    folder.mkdir()
    times = {}
    times["fit"], _ = neurodyn(["fit", "--config", str(CONFIG), "--data.init_args.path", str(prepared),
                                "--seed_everything", str(seed), "--trainer.enable_progress_bar", "false",
                                "--trainer.default_root_dir", "runs", "--run-name", "run", *MODELS[name]],
                               folder, env, log)
    pred = folder / "pred.h5"
    times["predict"], _ = neurodyn(["predict", "--run", "runs/run", "--ckpt_path", "last", "--prediction.path",
                                    str(pred), "--trainer.enable_progress_bar", "false"], folder, env, log)
    times["plot"], _ = neurodyn(["plot", str(pred), "--out", str(folder / "pred.png")], folder, env, log)
    return pred, times


def score(pred: Path, prepared: Path, seed: int) -> dict:
    """Held-out LL per spike, switch alignment and read-out counts of one prediction file."""
    from neurodyn.metrics.states import switch_alignment

    with h5py.File(prepared, "r") as f:
        spikes = f["eval_input/eval_spikes_heldin"][()].astype(np.float64)
    with h5py.File(pred, "r") as f:
        log_marginal = f["valid_log_marginal"][()].astype(np.float64)
        paths = f["valid_viterbi"][()].astype(np.int64)
        types = f["connection_types"][()] if "connection_types" in f else None
    if len(log_marginal) != len(spikes) or paths.shape != spikes.shape[:2]:
        raise RuntimeError(f"{pred}: predictions do not match the {len(spikes)} evaluation trials")
    n_spikes = float(np.nansum(spikes))
    boundaries = START_MS + BIN_MS * np.arange(1, paths.shape[1])
    out = {"ll_nats": float(log_marginal.sum()), "n_spikes": n_spikes,
           "ll_per_spike": float(log_marginal.sum() / n_spikes),
           "states": switch_alignment(paths, boundaries, WINDOW_MS, n_shuffles=2000,
                                      rng=np.random.default_rng(seed))}
    if types is not None:
        out["connections"] = {k: [int((t == v).sum()) for t in types] for k, v in TYPES.items()}
    return out


def run_one(seed: int, work: Path, env: dict, log) -> dict:
    from neurodyn.data.synthetic.nlb_nwb import write_nlb_pair

    work.mkdir(parents=True)
    t0 = time.perf_counter()
    write_nlb_pair(work / "nwb", STYLE, n_train_trials=N_TRIALS, n_test_trials=N_TRIALS, n_heldin=N_HELDIN,
                   n_heldout=N_HELDOUT, seed=seed)
    seconds = {"simulate": time.perf_counter() - t0}
    prepared = {phase: work / f"{DATASET}_{BIN_MS}ms_{phase}.h5" for phase in ("val", "test")}
    for phase, path in prepared.items():
        seconds[f"prepare_{phase}"], _ = neurodyn(["prepare", "--dataset", DATASET, "--nwb", str(work / "nwb"),
                                                   "--bin-ms", str(BIN_MS), "--phase", phase, "--out", str(path),
                                                   "--quiet"], work, env, log)
    out: dict = {"models": {}, "seconds": seconds}
    for name in MODELS:
        pred, times = fit_predict_plot(name, prepared["val"], seed, work, env, log)
        out["models"][name] = {**score(pred, prepared["val"], seed), "seconds": times}
    glm = out["models"]["glm"]
    for result in out["models"].values():
        result["gain_bits_per_spike"] = (result["ll_nats"] - glm["ll_nats"]) / (glm["n_spikes"] * math.log(2))
    # test phase: fit on train + val trials, predict the test trials (held-in spikes only), plot
    test_work = work / "test_phase"
    test_work.mkdir()
    pred, times = fit_predict_plot("hmmglm", prepared["test"], seed, test_work, env, log)
    with h5py.File(pred, "r") as f:
        out["test_phase"] = {"seconds": times, "eval_trials": int(f["valid_viterbi"].shape[0]),
                             "keys": sorted(f.keys())}
    return out


def _summary_or_none(values: list) -> dict | None:
    """Mean ± sd of the seeds that have a value (a one-state GLM has no switches: None)."""
    return summarize(values) if values else None


def summaries(per: dict) -> tuple[dict, list]:
    summary, rows = {}, []
    for name in MODELS:
        runs = [r["models"][name] for r in per.values()]
        s = summary[name] = {
            "ll_per_spike": summarize(r["ll_per_spike"] for r in runs),
            "gain_bits_per_spike": summarize(r["gain_bits_per_spike"] for r in runs),
            "switches_per_trial": summarize(r["states"]["switches_per_trial"] for r in runs),
            "frac_near": _summary_or_none([r["states"]["frac_near"] for r in runs
                                           if r["states"]["frac_near"] is not None]),
            "chance": runs[0]["states"]["chance"],
            "p_shuffle_max": max((r["states"]["p_shuffle"] for r in runs if r["states"]["p_shuffle"] is not None),
                                 default=None),
            "fit_seconds": summarize(r["seconds"]["fit"] for r in runs),
        }
        near = mean_sd(s["frac_near"], 2) if s["frac_near"] else "no switches"
        rows.append([name, mean_sd(s["ll_per_spike"], 4), mean_sd(s["gain_bits_per_spike"], 4),
                     mean_sd(s["switches_per_trial"], 2), f"{near} (chance {s['chance']:.2f})",
                     "-" if s["p_shuffle_max"] is None else f"{s['p_shuffle_max']:.3g}",
                     mean_sd(s["fit_seconds"], 0)])
    return summary, rows


@exits_on_signals
def main(argv=None) -> int:
    parser = BenchmarkParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=parse_seeds, default=[0, 1, 2], help="simulator and training seeds")
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="torch / BLAS threads of every step (default 1)")
    parser.add_argument("--keep", type=new_folder, default=None,
                        help="keep the work folders under this new (or empty) folder")
    parser.add_argument("--log", type=output_file, default=None,
                        help="append every command and its output here (default stderr)")
    parser.add_argument("--results-dir", type=output_folder, default=None,
                        help="write the results file here (default benchmarks/results)")
    args = parser.parse_args(argv)
    results = check_results_folder(args.results_dir, "--results-dir", name="hmmglm_nlb")  # before any work
    if args.log is not None and Path(args.log).resolve() == (results / "hmmglm_nlb.json").resolve():
        parser.error(f"argument --log: {args.log} is the results file this run writes: the log would be appended "
                     "to it (and left there if the run stops)")
    threads = str(args.threads)
    env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, PYTHONUNBUFFERED="1")
    log = open_log(args.log)
    start = time.perf_counter()
    per = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        for seed in args.seeds:
            per[str(seed)] = run_one(seed, root / f"seed{seed}", env, log)
            print(json.dumps({"seed": seed, **per[str(seed)]}), file=log, flush=True)
    summary, rows = summaries(per)
    readme = {
        "title": "HMM-GLM family on NLB-shaped data through the CLI (synthetic mc_maze style, 20 ms)",
        "columns": ["model", "held-out LL (nats/spike)", "gain over GLM (bits/spike)", "switches / trial",
                    f"switches within ±{WINDOW_MS:.0f} ms of move onset", "shuffle p (max over seeds)",
                    "fit s"],
        "rows": rows,
        "notes": (f"`python benchmarks/hmmglm_nlb.py --seeds {','.join(per)}`: fit on the 75 train trials, "
                  "nothing selected (shipped config, last epoch), scored once on the 25 val trials' held-in "
                  f"spikes; mean ± sd over seeds {', '.join(per)}; {args.threads} thread(s). The test phase "
                  "(fit on train + val, predict and plot the 100 test trials) ran for every seed."),
    }
    path = write_results(
        "hmmglm_nlb", {"summary": summary, "per_seed": per}, seconds=time.perf_counter() - start, readme=readme,
        out_dir=args.results_dir,
        split={"fit": "the 75 'train' trials (val phase)", "select": "none: fixed EM epochs, last checkpoint",
               "report": "the 25 'val' trials' held-in spikes, scored once"},
        selection="last.ckpt of a fixed schedule (configs/hmmglm/mc_maze_small_states.yaml)",
        data={"style": STYLE, "dataset": DATASET, "heldin": N_HELDIN, "heldout": N_HELDOUT, "trials": N_TRIALS,
              "bin_ms": BIN_MS})
    print(json.dumps({"results": str(path), "summary": {k: {m: v["mean"] for m, v in s.items() if isinstance(v, dict)}
                                                        for k, s in summary.items()}}, allow_nan=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
