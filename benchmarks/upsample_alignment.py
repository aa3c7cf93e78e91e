"""What ``--upsample 5`` costs a 20 ms prediction scored at 5 ms, with and without the windows lined up.

A trial's 20 ms and 5 ms windows need not start together (a window's first bin is ``ceil(t0 / bin)``, and
nlb_tools rounds the DMFC_RSG jitter at each width apart), so ``prepare`` records each row's window start
and ``--upsample`` shifts every trial by the difference. This benchmark scores, on NLB-shaped files of
neurodyn's simulator (val phase, the sizes of ``benchmarks/nlb_synthetic.py``), the simulator's *true*
rates three ways against the 5 ms target:

- ``cut at 5 ms``: the true rates summed on the 5 ms windows (the ceiling of any 5 ms prediction);
- ``upsampled, windows assumed aligned``: the true rates on the 20 ms windows, each bin spread over four
  5 ms bins as if both windows started together (what ``--upsample`` did before the starts were recorded,
  and still does for older files, with a note);
- ``upsampled, windows lined up``: the same 20 ms rates with the window starts ``neurodyn predict`` copies
  from the 20 ms prepared file (the current ``--upsample``).

Nothing is fitted or chosen: true rates in, NLB metrics out (``neurodyn evaluate --json``). Writes
``benchmarks/results/upsample_alignment.json`` and prints it.

Usage::

    python benchmarks/upsample_alignment.py --seeds 0,1,2 [--styles mc_maze,dmfc_rsg,area2_bump]
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _results import (  # noqa: E402
    BenchmarkParser,
    check_results_folder,
    exits_on_signals,
    mean_sd,
    name_list,
    parse_seeds,
    summarize,
    write_results,
)

STYLES = ("mc_maze", "dmfc_rsg", "area2_bump")
WAYS = ("cut at 5 ms", "upsampled, windows assumed aligned", "upsampled, windows lined up")


def _evaluate(args: list[str]) -> dict:
    """``neurodyn evaluate ... --json`` in this process: the metrics of the one scored group."""
    from neurodyn.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["evaluate", *args, "--json"])
    if code != 0:
        raise RuntimeError(f"neurodyn evaluate {' '.join(args)}: exit {code}: {err.getvalue()[-1000:]}")
    (entry,) = json.loads(out.getvalue().strip().splitlines()[-1])
    (metrics,) = entry.values()
    return {k.split("] ", 1)[-1]: float(v) for k, v in metrics.items()}


def run_one(style: str, seed: int, work: Path) -> dict:
    """The three scores of one style and seed (files in ``work``)."""
    import h5py
    import nlb_synthetic as nb

    from neurodyn.data.prepare import prepare
    from neurodyn.data.prepared import group_name
    from neurodyn.data.synthetic.nlb_nwb import write_nlb_pair

    dataset, n_in, n_out = nb.STYLES[style]
    nwb = work / "nwb"
    write_nlb_pair(nwb, style, n_train_trials=nb.N_TRIALS, n_test_trials=nb.N_TEST_TRIALS, n_heldin=n_in,
                   n_heldout=n_out, seed=seed)
    prepared = {b: prepare(dataset, nwb, bin_ms=b, phase="val", out=work / f"val_{b}ms.h5", log=None)
                for b in (20, 5)}
    truth = {b: work / f"truth_{b}ms.h5" for b in (20, 5)}
    for b, path in truth.items():
        nb.oracle_file(nwb, style, seed, b, path)
    lined_up = work / "truth_20ms_with_starts.h5"  # as neurodyn predict writes it: the starts beside the rates
    with h5py.File(truth[20], "r") as src, h5py.File(lined_up, "w") as dst, h5py.File(prepared[20], "r") as p:
        for key in src:
            src.copy(key, dst)
        for split in ("train", "eval"):
            dst[f"window_start_ms/{group_name(dataset, 20)}/{split}"] = p[f"window_start_ms/{split}"][()]
    with h5py.File(prepared[20], "r") as p20, h5py.File(prepared[5], "r") as p5:
        offsets = (p20["window_start_ms/eval"][()] - p5["window_start_ms/eval"][()]) // 5
    target = ["--target", str(prepared[5])]
    scores = {WAYS[0]: _evaluate([*target, "--pred", str(truth[5])]),
              WAYS[1]: _evaluate([*target, "--pred", str(truth[20]), "--upsample", "5"]),
              WAYS[2]: _evaluate([*target, "--pred", str(lined_up), "--upsample", "5"])}
    return {"scores": scores, "eval_trials": int(len(offsets)),
            "eval_trials_offset": int((offsets != 0).sum()),
            "offset_5ms_bins_min_max": [int(offsets.min()), int(offsets.max())]}


@exits_on_signals
def main(argv=None) -> int:
    parser = BenchmarkParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=parse_seeds, default=[0, 1, 2], help="simulator seeds, e.g. 0,1,2")
    parser.add_argument("--styles", type=name_list(STYLES, "style"), default=list(STYLES),
                        help="comma-separated subset of " + ", ".join(STYLES))
    args = parser.parse_args(argv)
    check_results_folder(name="upsample_alignment")  # before any work, not when the results are written
    styles = args.styles
    start = time.perf_counter()
    per: dict = {style: {} for style in styles}
    with tempfile.TemporaryDirectory(prefix="neurodyn_upsample_") as tmp:
        for style in styles:
            for seed in args.seeds:
                per[style][str(seed)] = run_one(style, seed, Path(tmp) / f"{style}_{seed}")
                print(f"{style} seed {seed}: {json.dumps(per[style][str(seed)]['scores'])}", file=sys.stderr)
    summaries: dict = {}
    rows = []
    for style in styles:
        runs = per[style].values()
        metrics = list(next(iter(runs))["scores"][WAYS[0]])
        summaries[style] = {way: {m: summarize(r["scores"][way][m] for r in runs) for m in metrics} for way in WAYS}
        moved = [r["eval_trials_offset"] for r in runs]
        total = [r["eval_trials"] for r in runs]
        lo = min(r["offset_5ms_bins_min_max"][0] for r in runs)
        hi = max(r["offset_5ms_bins_min_max"][1] for r in runs)
        for metric in metrics:
            rows.append([style, metric, *(mean_sd(summaries[style][way][metric]) for way in WAYS),
                         f"{sum(moved)} of {sum(total)} (offsets {lo} to {hi} bins of 5 ms)"])
    seeds = ", ".join(map(str, args.seeds))
    figures = {"per_seed": per, "summaries": summaries, "seeds": args.seeds,
               "selection": "none: true rates, nothing fitted or chosen"}
    path = write_results("upsample_alignment", figures, seconds=time.perf_counter() - start, readme={
        "title": "A 20 ms prediction scored at 5 ms (--upsample 5): true rates of the simulator, val phase",
        "columns": ["style", "metric", WAYS[0], WAYS[1], WAYS[2], "eval trials whose windows start apart"],
        "rows": rows,
        "notes": f"Mean ± sd over seeds {seeds} (100 simulated trials per file: 75 train / 25 scored). "
                 "'cut at 5 ms': the true rates summed on the 5 ms windows; 'assumed aligned': the 20 ms true "
                 "rates spread over four 5 ms bins as if each trial's windows started together (--upsample "
                 "before the window starts were recorded, and for older files); 'lined up': the same rates "
                 "shifted by each trial's window starts (the current --upsample). 5 ms bins outside the 20 ms "
                 "window take its edge rate, so a lined-up 20 ms prediction need not reach the 5 ms cut."})
    print(json.dumps({"results_file": str(path), "summaries": summaries}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
