"""Time ``neurodyn prepare`` side by side with nlb_tools on the real MC_Maze_Small test file and on a larger
synthetic NLB pair.

Cases
-----
- ``real_test_5ms``: ``sub-Jenkins_ses-small_desc-test_ecephys.nwb`` (100 trials, 107 units), test phase,
  5 ms (skipped when the file is absent; looked up in ``$NEURODYN_TEST_DATA`` or ``../shared/data``).
- ``synthetic_val_{5,20}ms``: an mc_maze-style train + test pair written by
  :func:`neurodyn.data.synthetic.nlb_nwb.write_nlb_pair` (default 500 train trials, 100 test trials,
  135 held-in + 45 held-out units), val phase with PSTHs, loaded as a folder.
- ``synthetic_test_5ms``: the same folder, test phase.

Each run is a fresh process that does one case end to end: neurodyn runs :func:`neurodyn.data.prepare.prepare`
(NWB read, tensors, sha256 of the inputs, one gzip HDF5 file); nlb_tools runs
``benchmarks/nlb_tools_prepare.py`` in its own environment (``make nlb-env``; NWB read, ``resample``, the
tensor makers of the phase with nlb_tools' gzip HDF5 writer). The two alternate, run after run, on the same
machine, so load hits both alike. ``seconds`` runs from before the NWB read to the last byte written (the
imports -- pynwb and scipy.signal on both sides -- are timed apart as ``import_seconds``); ``peak_rss_mb`` is
the process's peak resident size (``VmHWM``), ``rss_after_import_mb`` what the interpreter and the imports
already held, and ``children_peak_rss_mb`` the largest process it started (nlb_tools forks worker
processes; their memory is not in the parent's figure). Figures are medians over ``--repeats`` runs; the ratio is
nlb_tools / neurodyn. Without the nlb_tools environment (or with ``--no-nlb-tools``) neurodyn is timed alone.

``--before DIR`` adds a third side: the neurodyn of another checkout (e.g. ``git worktree add DIR <commit>``),
run with ``PYTHONPATH=DIR``, to show a change's effect in the same alternating run. Both other sides are
imported once before any work, as the runs import them: a checkout whose ``neurodyn.data.prepare`` does not
import (or whose neurodyn is not the one imported), an ``--nlb-python`` without nlb_tools, is one line, exit 2.

Usage: ``python benchmarks/prepare_speed.py [--trials 500] [--units 180] [--repeats 3] [--nlb-python PATH]
[--before DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import (
    BenchmarkParser,
    OptionValueError,
    check_results_folder,
    checkout_with,
    exits_on_signals,
    parse_seed,
    positive_int,
)
from _rss import children_peak_rss_mb, peak_rss_mb
from nlb_tools_prepare import job_type

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CASES = (  # name, dataset, bin_ms, phase, synthetic?
    ("real_test_5ms", "mc_maze_small", 5, "test", False),
    ("synthetic_val_5ms", "mc_maze", 5, "val", True),
    ("synthetic_val_20ms", "mc_maze", 20, "val", True),
    ("synthetic_test_5ms", "mc_maze", 5, "test", True),
)


def _real_file() -> Path | None:
    folder = Path(os.environ.get("NEURODYN_TEST_DATA", ROOT.parent / "shared" / "data"))
    path = folder / "sub-Jenkins_ses-small_desc-test_ecephys.nwb"
    return path if path.is_file() else None


def child(job: dict) -> None:
    """neurodyn's side of one run (this file with ``--child``): prints the same JSON as nlb_tools_prepare.py."""
    start = time.perf_counter()
    import pynwb  # noqa: F401  (nlb_tools imports these at import time; neurodyn on first use)
    import scipy.signal  # noqa: F401

    from neurodyn.data.prepare import prepare

    import_seconds = time.perf_counter() - start
    rss_import = peak_rss_mb()
    out = Path(job["out"]) / "prepared.h5"
    start = time.perf_counter()
    prepare(job["dataset"], job["folder"], int(job["bin_ms"]), job["phase"], out, log=None)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "import_seconds": import_seconds, "rss_after_import_mb": rss_import,
                      "peak_rss_mb": peak_rss_mb(),
                      "children_peak_rss_mb": children_peak_rss_mb(),
                      "output_mb": out.stat().st_size / 2**20}))


def _env(python: str, pythonpath: Path | None = None) -> dict:
    """The environment of a run in ``python`` (``pythonpath``: an earlier checkout, first on the path)."""
    env = dict(os.environ)
    if pythonpath is not None:  # an earlier checkout's neurodyn shadows the installed one
        env["PYTHONPATH"] = os.pathsep.join([str(pythonpath), *filter(None, [env.get("PYTHONPATH")])])
    if python != sys.executable:  # the nlb_tools environment must not see neurodyn's paths
        env = {k: v for k, v in env.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _run(python: str, script: Path, job: dict, extra: list[str], pythonpath: Path | None = None) -> dict:
    proc = subprocess.run([python, str(script), *extra, json.dumps(job)], capture_output=True, text=True,
                          env=_env(python, pythonpath), cwd=str(ROOT), timeout=1800)
    if proc.returncode != 0:
        raise SystemExit(f"{script.name} failed on {job}:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _executable(text: str) -> str:
    """The ``type`` of ``--nlb-python``: an executable file, as an absolute path (the runs start in the
    repository's root, where a relative path would name another file)."""
    if not (os.path.isfile(text) and os.access(text, os.X_OK)):
        raise OptionValueError(f"{text}: not an executable file")
    return os.path.abspath(text)


def _nlb_python(arg: str | None) -> str | None:
    path = Path(arg) if arg else ROOT / ".venv-nlb" / "bin" / "python"
    return str(path) if path.is_file() and os.access(path, os.X_OK) else None


def _probe(python: str, code: str, pythonpath: Path | None = None) -> tuple[str | None, str]:
    """Run ``code`` in ``python`` with the path of a run (``pythonpath`` first; the nlb_tools environment without
    neurodyn's paths; this folder, the scripts', where ``-c`` puts the working folder): (None, its output) when
    it works, else (its last error line, "")."""
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, env=_env(python, pythonpath),
                          cwd=str(HERE), timeout=300)
    if proc.returncode != 0:
        return ((proc.stderr or proc.stdout).strip().splitlines() or [f"exit code {proc.returncode}"])[-1], ""
    return None, proc.stdout.strip()


def _check_sides(parser, args, nlb_python: str | None) -> None:
    """The other sides' code is imported as the runs will import it, before any work: a checkout given to
    ``--before`` whose neurodyn does not import (or is not the one imported), an nlb_tools interpreter without
    nlb_tools, is one line, exit code 2 -- not a failure after the synthetic files and the first runs."""
    if args.before:
        before = Path(args.before).resolve()
        why, where = _probe(sys.executable, "import neurodyn, neurodyn.data.prepare; print(neurodyn.__file__)", before)
        if why is None and not Path(where).resolve().is_relative_to(before):
            why = f"neurodyn is imported from {where}, not from the checkout"
        if why is not None:
            parser.error(f"argument --before: {args.before}: its neurodyn.data.prepare does not import ({why})")
    if nlb_python is not None:
        why, _ = _probe(nlb_python, "import nlb_tools.make_tensors, nlb_tools.nwb_interface")
        if why is not None:
            given = "" if args.nlb_python else " (the default; --no-nlb-tools times neurodyn alone)"
            parser.error(f"argument --nlb-python: {nlb_python}{given}: cannot import nlb_tools ({why})")


def _summary(runs: list[dict]) -> dict:
    keys = ("seconds", "import_seconds", "rss_after_import_mb", "peak_rss_mb", "children_peak_rss_mb", "output_mb")
    out = {k: round(statistics.median(r[k] for r in runs), 3) for k in keys}
    out["seconds_per_run"] = [round(r["seconds"], 3) for r in runs]
    return out


@exits_on_signals
def main() -> None:
    parser = BenchmarkParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=positive_int, default=500, help="train-file trials of the synthetic pair")
    parser.add_argument("--test-trials", type=positive_int, default=100,
                        help="test-file trials of the synthetic pair (default 100)")
    parser.add_argument("--units", type=positive_int, default=180, help="units (a quarter held out)")
    parser.add_argument("--repeats", type=positive_int, default=3, help="runs per side and case (median reported)")
    parser.add_argument("--seed", type=parse_seed, default=0, help="seed of the synthetic pair (default 0)")
    parser.add_argument("--nlb-python", default=None, type=_executable,
                        help="the nlb_tools environment's interpreter (default .venv-nlb/bin/python)")
    parser.add_argument("--no-nlb-tools", action="store_true", help="time neurodyn alone")
    parser.add_argument("--before", default=None, type=checkout_with("neurodyn/data/prepare.py", "neurodyn"),
                        help="a checkout of an earlier neurodyn commit, timed as a third side (before / after)")
    parser.add_argument("--child", type=job_type, default=None, metavar="JOB", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child)
        return
    check_results_folder(name="prepare_speed")  # before any work, not when the results are written
    wall = time.perf_counter()
    nlb_python = None if args.no_nlb_tools else _nlb_python(args.nlb_python)
    _check_sides(parser, args, nlb_python)

    from neurodyn.data.synthetic.nlb_nwb import write_nlb_pair

    result: dict = {"cases": {}, "nlb_tools": nlb_python is not None, "repeats": args.repeats}
    before = Path(args.before).resolve() if args.before else None
    if before is not None:
        result["before_commit"] = subprocess.run(["git", "-C", str(before), "rev-parse", "HEAD"],
                                                 capture_output=True, text=True).stdout.strip() or None
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        n_heldout = args.units // 4
        start = time.perf_counter()
        train, test = write_nlb_pair(tmp / "synthetic", "mc_maze", n_train_trials=args.trials,
                                     n_test_trials=args.test_trials, n_heldin=args.units - n_heldout,
                                     n_heldout=n_heldout, seed=args.seed)
        result["synthetic"] = {
            "write_seconds": round(time.perf_counter() - start, 2), "train_trials": args.trials,
            "test_trials": args.test_trials, "units": args.units, "heldout": n_heldout,
            "train_file_mb": round(train.stat().st_size / 2**20, 1),
            "test_file_mb": round(test.stat().st_size / 2**20, 1),
        }
        real = _real_file()
        for name, dataset, bin_ms, phase, synthetic in CASES:
            if not synthetic and real is None:
                continue
            job = {"folder": str(tmp / "synthetic" if synthetic else real), "dataset": dataset,
                   "bin_ms": bin_ms, "phase": phase}
            sides = ["neurodyn"] + (["neurodyn_before"] if before else []) + (["nlb_tools"] if nlb_python else [])
            runs: dict[str, list[dict]] = {side: [] for side in sides}
            for r in range(args.repeats):
                for side in sides if r % 2 == 0 else sides[::-1]:  # alternate, and alternate who goes first
                    out = tmp / f"{name}_{side}_{r}"
                    out.mkdir()
                    job_r = {**job, "out": str(out)}
                    if side == "nlb_tools":
                        runs[side].append(_run(nlb_python, HERE / "nlb_tools_prepare.py", job_r, ["--job"]))
                    else:
                        runs[side].append(_run(sys.executable, Path(__file__), job_r, ["--child"],
                                               pythonpath=before if side == "neurodyn_before" else None))
            case = {side: _summary(r) for side, r in runs.items() if r}
            for side in sides[1:]:  # how much faster / smaller neurodyn is than each other side
                case[f"speedup_vs_{side}"] = round(case[side]["seconds"] / case["neurodyn"]["seconds"], 2)
                case[f"memory_ratio_vs_{side}"] = round(case[side]["peak_rss_mb"] / case["neurodyn"]["peak_rss_mb"], 2)
            result["cases"][name] = case
            print(name, json.dumps(case), flush=True)

    from _results import write_results

    def cell(case: dict, side: str, key: str, fmt: str) -> str:
        return format(case[side][key], fmt) if side in case else "-"

    rows = []
    for name, case in result["cases"].items():
        rows.append([name, cell(case, "neurodyn", "seconds", ".2f"), cell(case, "neurodyn_before", "seconds", ".2f"),
                     cell(case, "nlb_tools", "seconds", ".2f"),
                     f"{case['speedup_vs_nlb_tools']:.1f}x" if "nlb_tools" in case else "-",
                     cell(case, "neurodyn", "peak_rss_mb", ".0f"), cell(case, "neurodyn_before", "peak_rss_mb", ".0f"),
                     cell(case, "nlb_tools", "peak_rss_mb", ".0f")])
    ref = f" (commit {result['before_commit'][:10]})" if result.get("before_commit") else ""
    worker = max(c.get("nlb_tools", {}).get("children_peak_rss_mb", 0) for c in result["cases"].values())
    syn = result["synthetic"]
    names = ["neurodyn"] + ([f"neurodyn before the bin-once change{ref} ('before')"] if before else []) + (
        ["nlb_tools 0.0.4"] if nlb_python else [])
    sides_text = ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else "neurodyn runs"
    goal = ""
    if nlb_python:
        met = [n for n, c in result["cases"].items() if c["speedup_vs_nlb_tools"] >= 5]
        missed = [n for n, c in result["cases"].items() if c["speedup_vs_nlb_tools"] < 5]
        result["goal_5x_met"] = not missed
        goal = (f" Goal >= 5x nlb_tools: met for {', '.join(met) or 'no case'}"
                + (f"; not for {', '.join(missed)}." if missed else "."))
    write_results("prepare_speed", result, seconds=time.perf_counter() - wall, readme={
        "title": "`neurodyn prepare` vs nlb_tools, side by side",
        "columns": ["case", "neurodyn s", "before s", "nlb_tools s", "speed-up vs nlb_tools",
                    "neurodyn peak RSS MiB", "before MiB", "nlb_tools MiB"],
        "rows": rows,
        "notes": (f"Each run is a fresh process doing one case end to end (NWB read -> tensors -> gzip HDF5); "
                  f"{sides_text} alternate on the same machine, median of {args.repeats} runs "
                  f"each; seconds exclude imports, peak RSS includes them (the main process; nlb_tools' largest "
                  f"worker process: up to {worker:.0f} MiB). Synthetic: an mc_maze-style pair of "
                  f"{syn['train_trials']} + {syn['test_trials']} trials x {syn['units']} units "
                  f"({syn['heldout']} held out); real: the MC_Maze_Small test file (test phase).{goal}")})
    print(json.dumps(result))


if __name__ == "__main__":
    raise SystemExit(main())
