"""Time ``neurodyn.metrics.evaluate`` on an MC_Maze-sized target with random but valid data.

Sizes (MC_Maze, val phase, 5 ms; Pei et al. 2021, https://arxiv.org/abs/2109.04463, and the shapes in
``examples/tutorials/basic_example.ipynb`` of https://github.com/neurallatents/nlb_tools): 1721 train / 574
eval trials, 140 bins, 137 held-in + 45 held-out units, 40 forward bins, hand velocity (2 dims), PSTHs of 108
conditions. The ridge decoder sees 1721 x 140 = 240,940 rows of 182 features. Prints JSON (seconds) as the last
line.

Usage: ``python benchmarks/evaluate_speed.py [--repeats 3] [--seed 0] [--blas-threads N]``

``--blas-threads`` caps BLAS/OpenMP threads (threadpoolctl); on a shared, loaded machine one thread
avoids OpenBLAS oversubscription, which otherwise dominates the ridge decoder's Gram products.
"""

from __future__ import annotations

import json
import platform
import time

import numpy as np
from _results import (
    BenchmarkParser,
    check_results_folder,
    exits_on_signals,
    parse_seed,
    positive_int,
)


def make_case(
    rng: np.random.Generator,
    n_train=1721,
    n_eval=574,
    n_bins=140,
    n_fwd=40,
    n_heldin=137,
    n_heldout=45,
    n_conditions=108,
):
    """(target, prediction) dicts of one ``mc_maze`` group; float32 rates as a submission stores them."""
    n_all = n_heldin + n_heldout
    rates = {
        split: rng.gamma(2.0, 0.05, (n, n_bins, n_all)).astype(np.float32)
        for split, n in (("train", n_train), ("eval", n_eval))
    }
    fwd = rng.gamma(2.0, 0.05, (n_eval, n_fwd, n_all)).astype(np.float32)
    mixing = rng.normal(size=(n_all, 2))
    conditions = rng.integers(0, n_conditions, n_eval)
    target = {
        "eval_spikes_heldout": rng.poisson(rates["eval"][..., n_heldin:]).astype(np.float16),
        "train_behavior": rates["train"] @ mixing + rng.normal(size=(n_train, n_bins, 2)),
        "eval_behavior": rates["eval"] @ mixing + rng.normal(size=(n_eval, n_bins, 2)),
        "eval_spikes_heldin_forward": rng.poisson(fwd[..., :n_heldin]).astype(np.float16),
        "eval_spikes_heldout_forward": rng.poisson(fwd[..., n_heldin:]).astype(np.float16),
        "eval_cond_idx": [np.flatnonzero(conditions == c) for c in range(n_conditions)],
        "psth": rng.gamma(2.0, 0.05, (n_conditions, n_bins, n_all)),
    }
    prediction = {
        "train_rates_heldin": rates["train"][..., :n_heldin],
        "train_rates_heldout": rates["train"][..., n_heldin:],
        "eval_rates_heldin": rates["eval"][..., :n_heldin],
        "eval_rates_heldout": rates["eval"][..., n_heldin:],
        "eval_rates_heldin_forward": fwd[..., :n_heldin],
        "eval_rates_heldout_forward": fwd[..., n_heldin:],
    }
    return {"mc_maze": target}, {"mc_maze": prediction}


@exits_on_signals
def main() -> None:
    from neurodyn.metrics import evaluate

    parser = BenchmarkParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=positive_int, default=3,
                        help="timed calls (min and median reported; default 3)")
    parser.add_argument("--seed", type=parse_seed, default=0,
                        help="seed of the random target and prediction (default 0)")
    parser.add_argument(
        "--blas-threads", type=positive_int, default=None, help="cap BLAS/OpenMP threads (default: no cap)"
    )
    args = parser.parse_args()
    check_results_folder(name="evaluate_speed")  # before any work, not when the results are written
    import contextlib

    from threadpoolctl import threadpool_limits

    limit = contextlib.nullcontext() if args.blas_threads is None else threadpool_limits(args.blas_threads)
    target, prediction = make_case(np.random.default_rng(args.seed))
    times, result = [], None
    with limit:
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = evaluate(target, prediction)
            times.append(time.perf_counter() - start)
    figures = {
        "seconds_min": min(times), "seconds_median": float(np.median(times)), "repeats": args.repeats,
        "blas_threads": args.blas_threads,
    }
    from _results import write_results

    write_results("evaluate_speed", figures, seconds=sum(times), readme={
        "title": "`neurodyn evaluate` time at MC_Maze size",
        "columns": ["repeats", "BLAS threads", "seconds (min)", "seconds (median)"],
        "rows": [[str(args.repeats), str(args.blas_threads or "default"), f"{min(times):.2f}",
                  f"{float(np.median(times)):.2f}"]]})
    print(
        json.dumps(
            {
                "benchmark": "evaluate_mc_maze_sized",
                "seconds_min": min(times),
                "seconds_median": float(np.median(times)),
                "repeats": args.repeats,
                "blas_threads": args.blas_threads,
                "metrics": result[0]["mc_maze_split"],
                "python": platform.python_version(),
            }
        )
    )


if __name__ == "__main__":
    raise SystemExit(main())
