"""Time ``neurodyn prepare`` on the real MC_Maze_Small test file and on a larger synthetic NLB file.

Cases
-----
- ``real_test_5ms``: ``sub-Jenkins_ses-small_desc-test_ecephys.nwb`` (100 trials, 107 units), test phase,
  5 ms (skipped when the file is absent; looked up in ``$NEURODYN_TEST_DATA`` or ``../shared/data``).
- ``synthetic_val_{5,20}ms``: an mc_maze-style train + test pair written by
  :func:`neurodyn.data.synthetic.nlb_nwb.write_nlb_pair` (default 500 train trials, 100 test trials,
  135 held-in + 45 held-out units), val phase with PSTHs, loaded as a folder.
- ``synthetic_test_5ms``: the same folder, test phase.

Each case is timed end to end (NWB read, tensors, sha256 of the inputs, gzip HDF5 write) as the median
of ``--repeats`` runs, after a first read of the real file that is reported apart (it also loads
pynwb's namespaces); then it runs once more under ``tracemalloc`` for its peak traced memory (NumPy
buffers included). ``ru_maxrss`` is the process's peak resident size at the end. Prints JSON as the
last line.

Usage: ``python benchmarks/prepare_speed.py [--trials 500] [--units 180] [--repeats 1]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path


def _real_file() -> Path | None:
    folder = Path(
        os.environ.get("NEURODYN_TEST_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")
    )
    path = folder / "sub-Jenkins_ses-small_desc-test_ecephys.nwb"
    return path if path.is_file() else None


def _run(case: dict, out: Path, repeats: int) -> dict:
    from neurodyn.data.prepare import prepare

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        prepare(case["dataset"], case["nwb"], case["bin_ms"], case["phase"], out, log=None)
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    prepare(case["dataset"], case["nwb"], case["bin_ms"], case["phase"], out, log=None)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return {
        "seconds": round(statistics.median(times), 3),
        "peak_traced_mb": round(peak / 2**20, 1),
        "output_mb": round(out.stat().st_size / 2**20, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=500, help="train-file trials of the synthetic pair")
    parser.add_argument("--test-trials", type=int, default=100)
    parser.add_argument("--units", type=int, default=180, help="units (a quarter held out)")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    wall = time.perf_counter()

    import neurodyn.data.prepare
    from neurodyn.data.synthetic.nlb_nwb import write_nlb_pair

    result: dict = {"python": platform.python_version(), "machine": platform.machine(), "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        real = _real_file()
        if real is not None:
            case = {"dataset": "mc_maze_small", "nwb": real, "bin_ms": 5, "phase": "test"}
            start = time.perf_counter()  # the first read also loads pynwb's namespaces: timed apart
            neurodyn.data.prepare.prepare(case["dataset"], real, 5, "test", tmp / "real.h5", log=None)
            result["real_first_run_seconds"] = round(time.perf_counter() - start, 3)
            result["cases"]["real_test_5ms"] = _run(case, tmp / "real.h5", args.repeats)
        n_heldout = args.units // 4
        start = time.perf_counter()
        train, test = write_nlb_pair(
            tmp / "synthetic",
            "mc_maze",
            n_train_trials=args.trials,
            n_test_trials=args.test_trials,
            n_heldin=args.units - n_heldout,
            n_heldout=n_heldout,
            seed=args.seed,
        )
        result["synthetic"] = {
            "write_seconds": round(time.perf_counter() - start, 2),
            "train_trials": args.trials,
            "test_trials": args.test_trials,
            "units": args.units,
            "heldout": n_heldout,
            "train_file_mb": round(train.stat().st_size / 2**20, 1),
            "test_file_mb": round(test.stat().st_size / 2**20, 1),
        }
        for name, bin_ms, phase in (
            ("synthetic_val_5ms", 5, "val"),
            ("synthetic_val_20ms", 20, "val"),
            ("synthetic_test_5ms", 5, "test"),
        ):
            case = {"dataset": "mc_maze", "nwb": tmp / "synthetic", "bin_ms": bin_ms, "phase": phase}
            result["cases"][name] = _run(case, tmp / f"{name}.h5", args.repeats)
    result["ru_maxrss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    for name, case in result["cases"].items():
        print(f"{name:22s} {case['seconds']:8.3f} s   peak traced {case['peak_traced_mb']:8.1f} MiB")
    from _results import write_results

    rows = [[name, f"{case['seconds']:.2f}", f"{case['peak_traced_mb']:.0f}"] for name, case in result["cases"].items()]
    syn = result["synthetic"]
    write_results("prepare_speed", result, seconds=time.perf_counter() - wall, readme={
        "title": "`neurodyn prepare` time",
        "columns": ["case", "seconds", "peak traced MiB"], "rows": rows,
        "notes": (f"Real MC_Maze_Small test file (if present) and a synthetic mc_maze-style pair of "
                  f"{syn['train_trials']} + {syn['test_trials']} trials x {syn['units']} units "
                  f"({syn['heldout']} held out); best of {args.repeats} run(s) after a first read.")})
    print(json.dumps(result))


if __name__ == "__main__":
    main()
