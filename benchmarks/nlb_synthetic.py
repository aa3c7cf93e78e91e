"""The NLB user path through the CLI on synthetic NLB-shaped files, beside the smoothing baseline and the true rates.

For each style (``mc_maze`` as MC_Maze_Small, ``dmfc_rsg``, ``area2_bump``) and each seed, neurodyn's
simulator (:mod:`neurodyn.data.synthetic.nlb_nwb`) writes a DANDI-like train + test pair with the
dataset's unit counts and 100 trials in the train file, split 75 train / 25 val as in MC_Maze_Small.
Then, exactly as the README's NLB workflow, in a fresh folder:

1. ``neurodyn prepare --dataset D --nwb FOLDER --bin-ms 20 --phase val`` (and ``--bin-ms 5``, the scoring
   bin width of the NLB leaderboard);
2. ``neurodyn fit --config configs/langevinflow/D_cpu.yaml --data.path D_20ms_val.h5 --seed_everything S``;
3. ``neurodyn predict --config <run>/config.yaml --ckpt_path <run>/checkpoints/last.ckpt``;
4. with ``--members K`` (default 3): steps 2-3 once per member with ``--seed_everything S + 1000 m``, then
   ``neurodyn ensemble`` averages the K predictions (member 0, the single fit, is scored alone too);
5. ``neurodyn evaluate`` at 20 ms, and at 5 ms with ``--upsample 5``.

Beside it, on the same prepared files: the smoothing + Poisson GLM baseline (``neurodyn baseline`` at its
defaults, the nlb_tools tutorial recipe, and with ``--recipe neurodyn``, each fit at each bin width) and the
true-rate oracle (the simulator's
expected counts summed over exactly the bins ``prepare`` cuts,
:func:`neurodyn.data.synthetic.nlb_nwb.window_sums`), scored by the same ``neurodyn evaluate``.

Fit / select / report. The model trains on the 75 train trials and is scored once on the 25 val trials.
Nothing is selected on them: the CPU config trains a fixed number of epochs with a cosine learning-rate
decay and predicts from the last epoch (``last.ckpt``); its settings were chosen on simulator seed 100,
which is never reported. The baselines' settings are fixed in advance (nlb_tools' tutorial; neurodyn's recipe).

Usage::

    python benchmarks/nlb_synthetic.py --seeds 0 [--styles mc_maze,dmfc_rsg,area2_bump] [--threads 1] [--merge]

Writes ``benchmarks/results/nlb_synthetic.json`` (per style, seed and method: co-bps, vel R2 or tp corr,
psth R2, fp-bps at 20 and 5 ms; wall time of each step) and prints a summary as the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

from _results import (  # noqa: E402
    BenchmarkParser,
    OptionValueError,
    check_results_folder,
    exits_on_signals,
    mean_sd,
    name_list,
    new_folder,
    open_log,
    output_file,
    output_folder,
    parse_seeds,
    positive_int,
    read_results,
    summarize,
    write_results,
)

from neurodyn.data.synthetic.nlb_nwb import STYLE_DATASET, STYLE_UNITS  # noqa: E402

#: style -> (registry dataset, held-in units, held-out units): the dataset's unit counts
STYLES = {style: (STYLE_DATASET[style], *STYLE_UNITS[style]) for style in ("mc_maze", "dmfc_rsg", "area2_bump")}
N_TRIALS = 100  # train file (75 train / 25 val), as MC_Maze_Small
N_TEST_TRIALS = 100
GOAL_RATIO, GOAL_MINUTES = 0.85, 15.0
BEHAVIOUR = {"dmfc_rsg": "tp corr"}
_NOT_GIVEN = object()  # an option of a run left out (see main)


def _neurodyn_exe() -> list[str]:
    exe = Path(sys.executable).parent / "neurodyn"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("neurodyn")
    if found is None:
        raise SystemExit("the `neurodyn` command is not installed (pip install -e .)")
    return [found]


def neurodyn(args: list[str], cwd: Path, env: dict, log) -> tuple[float, str]:
    """Run ``neurodyn ARGS`` as a user would; returns (seconds, stdout). Raises on a non-zero exit."""
    log.write(f"$ neurodyn {' '.join(args)}\n")
    log.flush()
    start = time.perf_counter()
    proc = subprocess.run([*_neurodyn_exe(), *args], cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    log.write(proc.stdout[-3000:] + proc.stderr[-3000:] + f"[{seconds:.1f} s, exit {proc.returncode}]\n")
    log.flush()
    if proc.returncode:
        raise RuntimeError(f"neurodyn {args[0]} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return seconds, proc.stdout


def scores(stdout: str) -> dict[str, float]:
    """The one dataset's metrics from ``neurodyn evaluate --json`` (scaling prefixes dropped)."""
    result = json.loads(stdout.strip().splitlines()[-1])
    (split,) = result[0].values()
    return {k.split("] ", 1)[-1]: float(v) for k, v in split.items()}


def oracle_file(folder: Path, style: str, seed: int, bin_ms: int, out: Path) -> None:
    """Submission file of the simulator's true rates (expected counts per bin) on the prepared windows."""
    from neurodyn.data.prepared import group_name
    from neurodyn.data.synthetic.nlb_latents import expected_counts_ms
    from neurodyn.data.synthetic.nlb_nwb import pair_names, window_sums
    from neurodyn.metrics.submission import write_submission

    dataset, n_in, n_out = STYLES[style]
    expected = expected_counts_ms(style, n_trials=N_TRIALS, n_heldin=n_in, n_heldout=n_out, seed=seed,
                                  split="train")
    group = window_sums(folder, dataset, bin_ms, {pair_names(style)[0]: expected})
    write_submission(out, {group_name(dataset, bin_ms): group})


def fit_command(dataset: str, data: Path, seed: int, fit_args: tuple[str, ...]) -> list[str]:
    """The ``neurodyn fit`` arguments of one member: the dataset's CPU config on the 20 ms file, then ``fit_args``."""
    config = ROOT / "configs" / "langevinflow" / f"{dataset}_cpu.yaml"
    return ["fit", "--config", str(config), "--data.path", str(data), "--seed_everything", str(seed),
            "--trainer.enable_progress_bar", "false", *fit_args]


def fit_args_error(fit_args: tuple[str, ...], styles: list[str], env: dict) -> str | None:
    """Why ``neurodyn fit`` refuses ``fit_args`` (its one error line) on the command of a style in ``styles``, else
    None: checked before anything runs, by the fit command itself with ``--print_config`` (which parses the whole
    command line, config files and types included, and trains nothing), rather than by the first fit after the
    minutes of simulating and preparing. A value refused only as the model is built (sizes that do not fit
    together) is still the fit's own error."""
    for dataset in dict.fromkeys(STYLES[style][0] for style in styles):
        with tempfile.TemporaryDirectory() as tmp:  # the file prepare would write; --print_config does not read it
            args = [*fit_command(dataset, Path(tmp) / f"{dataset}_20ms_val.h5", 0, fit_args), "--print_config"]
            proc = subprocess.run([*_neurodyn_exe(), *args], cwd=tmp, env=env, capture_output=True, text=True)
        if proc.returncode:
            lines = [line for line in proc.stderr.splitlines() if line.strip()] or [f"exit code {proc.returncode}"]
            return f"`neurodyn fit` refuses them ({dataset}): {lines[-1].removeprefix('neurodyn fit: error: ')}"
    return None


def run_one(style: str, seed: int, work: Path, env: dict, log, fit_args: tuple[str, ...] = (),
            members: int = 1) -> dict:
    """The whole user path, the baseline and the oracle for one style and seed, in ``work``.

    ``members > 1``: the CPU config is fitted ``members`` times (``--seed_everything seed + 1000 m``), each
    fit predicted, and ``neurodyn ensemble`` averages the predictions (the scored ``langevinflow``); member 0
    alone is scored too (``langevinflow_single``).

    ``fit_args``: extra ``neurodyn fit`` arguments (e.g. model-field overrides of ``benchmarks/departures.py``).
    """
    from neurodyn.data.synthetic.nlb_nwb import write_nlb_pair
    from neurodyn.models.ensemble import member_seed

    dataset, n_in, n_out = STYLES[style]
    work.mkdir(parents=True)
    folder = work / "nwb"
    t0 = time.perf_counter()
    write_nlb_pair(folder, style, n_train_trials=N_TRIALS, n_test_trials=N_TEST_TRIALS, n_heldin=n_in,
                   n_heldout=n_out, seed=seed)
    times = {"simulate": time.perf_counter() - t0}
    prepared = {b: work / f"{dataset}_{b}ms_val.h5" for b in (20, 5)}
    for b, path in prepared.items():
        times[f"prepare_{b}ms"], _ = neurodyn(["prepare", "--dataset", dataset, "--nwb", str(folder), "--bin-ms",
                                               str(b), "--phase", "val", "--out", str(path), "--quiet"],
                                              work, env, log)
    preds = []
    times["fit"] = times["predict"] = 0.0
    for m in range(members):  # member 0 is the single fit
        t, _ = neurodyn(fit_command(dataset, prepared[20], member_seed(seed, m), fit_args), work, env, log)
        times["fit"] += t
        ckpts = sorted(work.glob("runs/**/checkpoints/last.ckpt"), key=os.path.getmtime)
        configs = sorted(work.glob("runs/**/config.yaml"), key=os.path.getmtime)
        if len(ckpts) != m + 1 or len(configs) != m + 1:
            raise RuntimeError(f"expected {m + 1} last.ckpt / config.yaml under {work / 'runs'}")
        preds.append(work / f"pred_20ms_member{m}.h5")
        t, _ = neurodyn(["predict", "--config", str(configs[-1]), "--ckpt_path", str(ckpts[-1]),
                         "--prediction.path", str(preds[-1]), "--trainer.logger", "false",
                         "--trainer.enable_progress_bar", "false"], work, env, log)
        times["predict"] += t
    pred = preds[0]
    if members > 1:
        pred = work / "pred_20ms_ensemble.h5"
        times["ensemble"], _ = neurodyn(["ensemble", "--pred", *map(str, preds), "--out", str(pred)], work, env, log)
    out: dict = {"members": members, "fit_args": list(fit_args), "langevinflow": {}, "baseline": {},
                 "baseline_neurodyn": {}, "oracle": {}}
    t20, stdout = neurodyn(["evaluate", "--target", str(prepared[20]), "--pred", str(pred), "--json"],
                           work, env, log)
    out["langevinflow"]["20ms"] = scores(stdout)
    t5, stdout = neurodyn(["evaluate", "--target", str(prepared[5]), "--pred", str(pred), "--upsample", "5",
                           "--json"], work, env, log)
    out["langevinflow"]["5ms"] = scores(stdout)
    if members > 1:  # member 0 alone: the single fit of the CPU config
        out["langevinflow_single"] = {}
        for b in (20, 5):
            _, stdout = neurodyn(["evaluate", "--target", str(prepared[b]), "--pred", str(preds[0]),
                                  *(["--upsample", "5"] if b == 5 else []), "--json"], work, env, log)
            out["langevinflow_single"][f"{b}ms"] = scores(stdout)
    times["evaluate"] = t20 + t5
    times["user_path"] = sum(times.get(k, 0.0)
                             for k in ("prepare_20ms", "prepare_5ms", "fit", "predict", "ensemble", "evaluate"))
    for b, path in prepared.items():
        sub = work / f"baseline_{b}ms.h5"
        times[f"baseline_{b}ms"], _ = neurodyn(["baseline", "--prepared", str(path), "--out", str(sub)],
                                               work, env, log)
        _, stdout = neurodyn(["evaluate", "--target", str(path), "--pred", str(sub), "--json"], work, env, log)
        out["baseline"][f"{b}ms"] = scores(stdout)
        sub = work / f"baseline_neurodyn_{b}ms.h5"
        times[f"baseline_neurodyn_{b}ms"], _ = neurodyn(["baseline", "--prepared", str(path), "--out", str(sub),
                                                         "--recipe", "neurodyn"], work, env, log)
        _, stdout = neurodyn(["evaluate", "--target", str(path), "--pred", str(sub), "--json"], work, env, log)
        out["baseline_neurodyn"][f"{b}ms"] = scores(stdout)
        orc = work / f"oracle_{b}ms.h5"
        oracle_file(folder, style, seed, b, orc)
        _, stdout = neurodyn(["evaluate", "--target", str(path), "--pred", str(orc), "--json"], work, env, log)
        out["oracle"][f"{b}ms"] = scores(stdout)
    for b in ("20ms", "5ms"):
        out[f"co_bps_ratio_{b}"] = out["langevinflow"][b]["co-bps"] / out["oracle"][b]["co-bps"]
        if members > 1:
            out[f"co_bps_ratio_single_{b}"] = out["langevinflow_single"][b]["co-bps"] / out["oracle"][b]["co-bps"]
    out["seconds"] = {k: round(v, 1) for k, v in times.items()}
    return out


def summary_tables(per: dict, threads: int) -> tuple[dict, dict]:
    """(summaries, README block) from the per-style, per-seed results."""
    from neurodyn.models.ensemble import MEMBER_SEED_STEP

    summaries: dict = {}
    rows = []
    all_seeds = set()
    for style in STYLES:
        runs = list(per.get(style, {}).values())
        if not runs:
            continue
        all_seeds |= set(per[style])
        dataset = STYLES[style][0]
        beh = BEHAVIOUR.get(style, "vel R2")
        s = summaries[style] = {"seeds": sorted(int(k) for k in per[style])}
        for b in ("5ms", "20ms"):
            for method in ("langevinflow", "langevinflow_single", "baseline", "baseline_neurodyn", "oracle"):
                for metric in ("co-bps", beh, "psth R2", "fp-bps"):
                    vals = [r[method][b][metric] for r in runs if metric in r.get(method, {}).get(b, {})]
                    if vals:
                        s[f"{method} {metric} {b}"] = summarize(vals)
            s[f"co_bps_ratio_{b}"] = summarize(r[f"co_bps_ratio_{b}"] for r in runs)
            if all(f"co_bps_ratio_single_{b}" in r for r in runs):
                s[f"co_bps_ratio_single_{b}"] = summarize(r[f"co_bps_ratio_single_{b}"] for r in runs)
        s["user_path_minutes"] = summarize(r["seconds"]["user_path"] / 60 for r in runs)
        s["step_seconds"] = {k: summarize(r["seconds"][k] for r in runs) for k in runs[0]["seconds"]}
        s["fit_minutes"] = summarize(r["seconds"]["fit"] / 60 for r in runs)
        members = sorted({r.get("members", 1) for r in runs})
        s["members"] = members
        n_members = "/".join(map(str, members))
        overrides = sorted({" ".join(r.get("fit_args", [])) for r in runs} - {""})
        config_label = f"`{dataset}_cpu.yaml`" + (f" with `{'` / `'.join(overrides)}`" if overrides else "")
        for b in ("5ms", "20ms"):
            for method, label in (("langevinflow", f"LangevinFlow {config_label}"
                                   + (f", ensemble of {n_members} fits" if members != [1] else "")),
                                  ("langevinflow_single", "LangevinFlow, one fit (member 0 of the ensemble)"),
                                  ("baseline", "smoothing + GLM (`neurodyn baseline`, nlb_tools tutorial)"),
                                  ("baseline_neurodyn", "smoothing + GLM (`--recipe neurodyn`)"),
                                  ("oracle", "true rates (oracle)")):
                cells = [mean_sd(s[k]) if (k := f"{method} {m} {b}") in s else "—"
                         for m in ("co-bps", beh, "psth R2", "fp-bps")]
                if all(c == "—" for c in cells):
                    continue
                lf = method == "langevinflow"
                ratio = {"langevinflow": f"co_bps_ratio_{b}", "langevinflow_single": f"co_bps_ratio_single_{b}"}
                rows.append([f"{style} (n={len(runs)})", b.replace("ms", " ms"), label, *cells,
                             mean_sd(s[ratio[method]], 2) if ratio.get(method) in s else "",
                             mean_sd(s["user_path_minutes"], 1) if lf else ""])
    steps = "; ".join(
        f"{style}: " + ", ".join(f"{k.replace('_', ' ')} {v['mean']:.0f}" for k, v in s["step_seconds"].items()
                                 if k not in ("simulate", "user_path"))
        for style, s in summaries.items())
    readme = {
        "title": "Synthetic NLB user path through the CLI: LangevinFlow CPU configs vs smoothing baseline vs "
                 "true rates",
        "columns": ["style (seeds)", "scored at", "method", "co-bps", "vel R² (tp corr for dmfc_rsg)", "psth R²",
                    "fp-bps", "co-bps / oracle", "user path (min)"],
        "rows": rows,
        "notes": (f"Goal: co-bps ≥ {GOAL_RATIO} × oracle in ≤ {GOAL_MINUTES:.0f} min per dataset on 2 cores. "
                  "User path = `prepare` at 20 and 5 ms + `fit` with the CPU config + `predict` (with an "
                  f"ensemble: both once per member, `--seed_everything` seed + {MEMBER_SEED_STEP} m, then "
                  "`neurodyn ensemble`; "
                  "the number of members is fixed in advance) + `evaluate` at 20 ms and at 5 ms (`--upsample 5`), "
                  f"{threads} torch thread(s), on a machine shared with other jobs (see the load above). "
                  "100 trials per file (75 train / 25 scored val); the model trains at 20 ms and predicts "
                  "from its last epoch (nothing selected on the scored trials); the baseline is fit at each "
                  "bin width. Mean ± sd over seeds " + ", ".join(sorted(all_seeds)) + ". Seconds per step (mean "
                  "over seeds) — " + steps + "."),
    }
    return summaries, readme


def _per_seed_record(path) -> dict:
    """A results file of this benchmark with its per-seed runs (``--combine`` / ``--merge``), checked before any
    run: :class:`OptionValueError` naming the file and what is wrong."""
    record = read_results(path, "nlb_synthetic")
    per = record["figures"].get("per_seed")
    if not isinstance(per, dict) or not all(isinstance(v, dict) and all(isinstance(r, dict) for r in v.values())
                                            for v in per.values()):
        raise OptionValueError(f"{path}: its figures have no per_seed runs by style and seed")
    unknown = sorted(set(per) - set(STYLES))
    if unknown:
        raise OptionValueError(f"{path}: unknown style {unknown[0]!r} in its per_seed runs")
    try:  # what the run makes of them at its end, made now: a run that lacks a figure is refused before any work
        summary_tables(per, 1)
        goals(per)
    except (AttributeError, KeyError, TypeError, ValueError, ZeroDivisionError) as err:
        raise OptionValueError(f"{path}: its per_seed runs lack what the summary needs "
                               f"({type(err).__name__}: {err})") from None
    return record


def goals(per: dict) -> dict:
    """Per style: the lowest co-bps / oracle ratio at 5 and 20 ms, the longest user path, and whether the goal
    (ratio >= GOAL_RATIO in <= GOAL_MINUTES) is met on every seed."""
    goal = {}
    for style, by_seed in per.items():
        g = goal[style] = {
            "co_bps_ratio_5ms_min": min(r["co_bps_ratio_5ms"] for r in by_seed.values()),
            "co_bps_ratio_20ms_min": min(r["co_bps_ratio_20ms"] for r in by_seed.values()),
            "user_path_minutes_max": max(r["seconds"]["user_path"] for r in by_seed.values()) / 60,
        }
        g["met"] = bool(min(g["co_bps_ratio_5ms_min"], g["co_bps_ratio_20ms_min"]) >= GOAL_RATIO
                        and g["user_path_minutes_max"] <= GOAL_MINUTES)
    return goal


@exits_on_signals
def main(argv=None) -> int:
    parser = BenchmarkParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=parse_seeds, default=[0], help="simulator and training seeds, e.g. 0,1,2")
    parser.add_argument("--styles", type=name_list(STYLES, "style"), default=list(STYLES),
                        help="comma-separated subset of " + ", ".join(STYLES))
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="torch / BLAS threads of every step (default 1)")
    parser.add_argument("--members", type=positive_int, default=3,
                        help="fits of the CPU config per seed, averaged by `neurodyn ensemble` (default 3; member 0 "
                             "is also scored alone)")
    parser.add_argument("--fit-args", default="",
                        help="extra `neurodyn fit` arguments, one quoted string (e.g. \"--trainer.max_epochs 400\"): "
                             "for studies on development seeds; recorded in the results file's command; checked "
                             "before anything runs (`neurodyn fit --print_config`, a few seconds per dataset)")
    parser.add_argument("--keep", type=new_folder, default=None,
                        help="keep the work folders under this new (or empty) folder")
    parser.add_argument("--merge", action="store_true",
                        help="add to the nlb_synthetic.json this run writes (in --results-dir, else "
                             "$NEURODYN_RESULTS_DIR, else benchmarks/results; other styles / seeds are kept)")
    parser.add_argument("--log", type=output_file, default=None,
                        help="append every command and its output here (default stderr)")
    parser.add_argument("--results-dir", type=output_folder, default=None,
                        help="write the results file here (default $NEURODYN_RESULTS_DIR, else benchmarks/results)")
    parser.add_argument("--combine", nargs="+", default=None, metavar="JSON",
                        help="run nothing: merge the per-seed results of these results files (runs of separate "
                             "styles or seeds; a style and seed in two files is refused) into one results file, "
                             "which must not be one of them")
    # the options of a run that are given (with any value, the default's too, in any spelling argparse takes: --mem 3,
    # --seeds=0): argparse sets an option's default only where the namespace it fills has no value yet, so one left
    # out keeps the marker (https://docs.python.org/3/library/argparse.html#the-namespace-object)
    run_options = {o: o[2:].replace("-", "_") for o in ("--seeds", "--styles", "--members", "--fit-args", "--keep")}
    args = parser.parse_args(argv, namespace=argparse.Namespace(**{dest: _NOT_GIVEN for dest in run_options.values()}))
    given = [o for o, dest in run_options.items() if getattr(args, dest) is not _NOT_GIVEN]
    for o, dest in run_options.items():
        if o not in given:
            setattr(args, dest, parser.get_default(dest))
    if args.combine and given:  # runs nothing: an option of a run would be ignored without a word
        parser.error(f"argument {given[0]}: --combine runs nothing (it merges the runs of the files given)")
    try:
        fit_args = tuple(shlex.split(args.fit_args))
    except ValueError as err:
        parser.error(f"argument --fit-args: {err}")
    results = check_results_folder(args.results_dir, "--results-dir", name="nlb_synthetic")  # before any work
    styles = args.styles
    threads = str(args.threads)
    env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads, PYTHONUNBUFFERED="1")
    os.environ.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    per: dict = {}
    previous_seconds = 0.0
    results_path = results / "nlb_synthetic.json"  # --merge: the file this run writes ($NEURODYN_RESULTS_DIR too)
    # the files read are never written: not by the results file (--merge is for adding to it), nor by the log
    inputs = {Path(p).resolve(): p for p in args.combine or []}
    if len(inputs) < len(args.combine or []):
        parser.error("argument --combine: a file is named twice (its runs and time would count twice)")
    if results_path.resolve() in inputs:
        parser.error(f"argument --combine: {inputs[results_path.resolve()]} is the results file this run writes, "
                     "which would replace it: give --results-dir DIR (or add a run to it with --merge)")
    if args.log is not None and Path(args.log).resolve() in {*inputs, results_path.resolve()}:
        what = "a --combine input" if Path(args.log).resolve() in inputs else "the results file this run writes"
        parser.error(f"argument --log: {args.log} is {what}: the log would be appended to it")
    if args.merge and results_path.exists():
        try:
            old = _per_seed_record(results_path)
        except OptionValueError as err:
            parser.error(f"argument --merge: {err}")
        if old.get("threads", {}).get("OMP_NUM_THREADS") == threads:
            per = old["figures"]["per_seed"]
            previous_seconds = float(old.get("seconds", 0.0))
    sources, combined_from = [], {}
    for path in args.combine or []:
        try:
            old = _per_seed_record(path)
        except OptionValueError as err:
            parser.error(f"argument --combine: {err}")
        for style, by_seed in old["figures"]["per_seed"].items():
            for seed in by_seed:
                if (style, seed) in combined_from:  # one run would silently replace the other
                    parser.error(f"argument --combine: {style} seed {seed} is in {combined_from[style, seed]} and "
                                 f"in {path}: combine runs of different styles or seeds")
                combined_from[style, seed] = path
            per.setdefault(style, {}).update(by_seed)
        previous_seconds += float(old.get("seconds", 0.0))
        sources.append({k: old.get(k) for k in ("command", "commit", "dirty", "date", "machine", "threads",
                                                 "seconds")})
    if args.combine:
        styles = []
    if fit_args and styles:  # last of the checks: it takes seconds (a fresh `neurodyn fit` per dataset)
        refused = fit_args_error(fit_args, styles, env)
        if refused:
            parser.error(f"argument --fit-args: {refused}")
    log = open_log(args.log)  # after every check: a refused run leaves no log file
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        for style in styles:
            for seed in args.seeds:
                result = run_one(style, seed, root / f"{style}_seed{seed}", env, log, members=args.members,
                                 fit_args=fit_args)
                per.setdefault(style, {})[str(seed)] = result
                print(json.dumps({"style": style, "seed": seed, **result}), file=log, flush=True)
    seconds = time.perf_counter() - start + previous_seconds
    summaries, readme = summary_tables(per, args.threads)
    goal = goals(per)
    if sources:
        loads = [src["machine"].get("load_avg_1min") for src in sources if src.get("machine")]
        loads = [x for x in loads if x is not None]
        if loads:
            readme["notes"] = readme["notes"].replace(
                "(see the load above)", f"(1-min load average at the end of the merged runs {min(loads):.1f}-"
                f"{max(loads):.1f}; the load above is the merge's)")
    readme["notes"] += " Goal met on every seed: " + "; ".join(
        f"{style} {'yes' if g['met'] else 'no'} (lowest co-bps / oracle "
        f"{min(g['co_bps_ratio_5ms_min'], g['co_bps_ratio_20ms_min']):.2f}, "
        f"longest user path {g['user_path_minutes_max']:.1f} min)" for style, g in goal.items()) + "."
    path = write_results(
        "nlb_synthetic", {"summary": summaries, "goal": goal, "per_seed": per}, seconds=seconds, readme=readme,
        out_dir=args.results_dir,
        split={"fit": "the 75 'train' trials of the train file",
               "select": "none: last epoch of a fixed schedule; the CPU configs' settings were chosen on "
                         "simulator seed 100, which is never reported",
               "report": "the 25 'val' trials of the train file (nlb_tools val phase), scored once"},
        selection="last epoch (last.ckpt); no checkpoint, epoch or setting chosen on the scored trials",
        styles={s: {"dataset": STYLES[s][0], "heldin": STYLES[s][1], "heldout": STYLES[s][2],
                    "trials": N_TRIALS, "config": f"configs/langevinflow/{STYLES[s][0]}_cpu.yaml"} for s in per},
        **({"combined_from": sources} if sources else {}),
    )
    print(json.dumps({"results": str(path), "goal": goal}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
