"""Forward-backward speed and memory vs sequence length T and number of states K.

For each (T, K) a batch of sequences with random log-likelihoods (scale ~ 300 Poisson neurons) is
smoothed by neurodyn's ``forward_backward`` (``--methods``, default auto, compiled and chunked; on CPU
"auto" is the numba-compiled kernel) on CPU (and CUDA when available); where ``dynamax`` is importable,
its jit-compiled ``hmm_smoother`` (vmapped over the batch) runs on the same inputs, with the time ratio
and the max absolute posterior difference. Compile times are excluded on both sides: one untimed
warm-up call each (jax jit; numba compilation or cache load, reported as ``first_call_s``). The last
line is a JSON list of rows with ``T``, ``K``, ``device``, ``method``, ``neurodyn_s``, ``dynamax_s``,
``ratio`` (neurodyn / dynamax), ``max_abs_diff``, ``first_call_s``, ``peak_mb``.

Usage: ``python benchmarks/hmm_speed.py [--batch 4] [--repeats 3] [--threads 1] [--methods auto,compiled,chunked]``
"""

from __future__ import annotations

import json
import resource
import sys
import time

import numpy as np
import torch
from _results import (
    BenchmarkParser,
    check_results_folder,
    count_list,
    exits_on_signals,
    name_list,
    positive_int,
)

from neurodyn.models.hmmglm.inference import forward_backward
from neurodyn.models.hmmglm.messages import METHODS


def _problem(n_time, n_states, batch, seed=0):
    g = torch.Generator().manual_seed(seed)
    p = torch.full((n_states, n_states), 0.05 / max(n_states - 1, 1), dtype=torch.float64)
    p.fill_diagonal_(0.95 if n_states > 1 else 1.0)
    ll = -300 + 20 * torch.randn(batch, n_time, n_states, generator=g, dtype=torch.float64)
    return torch.full((n_states,), 1.0 / n_states, dtype=torch.float64), p, ll


def _best(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


@exits_on_signals
def main(argv=None) -> int:
    parser = BenchmarkParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=count_list, default=[1000, 10000, 100000],
                        help="sequence lengths T, comma-separated (default 1000,10000,100000)")
    parser.add_argument("--states", type=count_list, default=[2, 5, 10, 25],
                        help="numbers of states K, comma-separated (default 2,5,10,25)")
    parser.add_argument("--batch", type=positive_int, default=4, help="sequences per call (default 4)")
    parser.add_argument("--repeats", type=positive_int, default=3,
                        help="timed calls per case, the fastest reported (default 3)")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument(
        "--methods",
        type=name_list(METHODS, "method"),
        default=["auto", "compiled", "chunked"],
        help="comma list of auto, compiled, scan, chunked, sequential, parallel",
    )
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64"),
                        help="precision of both sides; the results file is hmm_speed_DTYPE.json (default float32)")
    args = parser.parse_args(argv)
    check_results_folder(name=f"hmm_speed_{args.dtype}")  # before any work, not when the results are written
    wall = time.perf_counter()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    try:
        import jax

        jax.config.update("jax_enable_x64", args.dtype == "float64")
        import jax.numpy as jnp
        from dynamax.hidden_markov_model.inference import hmm_smoother

        smoother = jax.jit(jax.vmap(hmm_smoother, in_axes=(None, None, 0)))
    except ImportError:
        smoother = None
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for n_time in args.lengths:
        for n_states in args.states:
            init, trans, ll = _problem(n_time, n_states, args.batch)
            dyn_s, dyn_post = None, None
            if smoother is not None:
                a, b, c = (jnp.asarray(v.to(dtype).numpy()) for v in (init, trans, ll))
                smoother(a, b, c).smoothed_probs.block_until_ready()  # compile
                dyn_s, res = _best(
                    lambda a=a, b=b, c=c: smoother(a, b, c).smoothed_probs.block_until_ready(), args.repeats
                )
                dyn_post = np.asarray(res)
            for device in devices:
                for method in args.methods:
                    if method in ("parallel", "scan") and n_time * n_states**3 * args.batch > 5e8:
                        continue  # O(T K^3) memory per scan level
                    if method == "sequential" and n_time > 20000:
                        continue
                    if method == "compiled" and device != "cpu":
                        continue
                    li, lp, x = (v.to(device=device, dtype=dtype) for v in (init.log(), trans.log(), ll))
                    if device == "cuda":
                        torch.cuda.reset_peak_memory_stats()

                    def run(li=li, lp=lp, x=x, method=method, device=device):
                        post = forward_backward(li, lp, x, method=method)
                        if device == "cuda":
                            torch.cuda.synchronize()
                        return post

                    start = time.perf_counter()
                    run()  # warm-up: numba compilation (or cache load), allocator, caches
                    first = time.perf_counter() - start
                    seconds, post = _best(run, args.repeats)
                    peak = (
                        torch.cuda.max_memory_allocated() / 2**20
                        if device == "cuda"
                        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
                    )
                    diff = None
                    if dyn_post is not None:
                        diff = float(np.abs(post.posteriors.double().cpu().numpy() - dyn_post).max())
                    row = {
                        "T": n_time,
                        "K": n_states,
                        "batch": args.batch,
                        "device": device,
                        "method": method,
                        "dtype": args.dtype,
                        "neurodyn_s": round(seconds, 5),
                        "dynamax_s": None if dyn_s is None else round(dyn_s, 5),
                        "ratio": None if dyn_s is None else round(seconds / dyn_s, 3),
                        "max_abs_diff": diff,
                        "first_call_s": round(first, 5),
                        "peak_mb": round(peak, 1),
                    }
                    rows.append(row)
                    print(row, file=sys.stderr, flush=True)
    _write(rows, args, time.perf_counter() - wall, smoother is not None)
    print(json.dumps(rows))
    return 0


def _write(rows: list[dict], args, seconds: float, with_dynamax: bool) -> None:
    """``benchmarks/results/hmm_speed_<dtype>.json`` with a README table: per (T, K) the method a user gets
    (the first of ``--methods``: ``auto`` by default, fixed before the run -- never the fastest in hindsight);
    every method's row is in the file."""
    from _results import write_results

    shown = args.methods[0]
    best = {(r["T"], r["K"], r["device"]): r for r in rows if r["method"] == shown}
    table = []
    for (n_time, n_states, device), row in sorted(best.items()):
        table.append([f"{n_time:g}", str(n_states), device, row["method"], f"{row['neurodyn_s']:.4f}",
                      "-" if row["dynamax_s"] is None else f"{row['dynamax_s']:.4f}",
                      "-" if row["ratio"] is None else f"{row['ratio']:.2f}",
                      "-" if row["max_abs_diff"] is None else f"{row['max_abs_diff']:.1e}"])
    ratios = [r["ratio"] for r in best.values() if r["ratio"] is not None and r["device"] == "cpu"]
    summary = (f" neurodyn's {shown} method on the CPU: {min(ratios):.2f}-{max(ratios):.2f}x of dynamax's time"
               f" ({'no slower than dynamax everywhere' if max(ratios) <= 1 else 'slower somewhere'})."
               if ratios else " dynamax not installed (`pip install 'neurodyn[bench]'`): neurodyn alone.")
    write_results(f"hmm_speed_{args.dtype}", {"rows": rows, "dynamax": with_dynamax}, seconds=seconds, readme={
        "title": f"HMM forward-backward vs dynamax ({args.dtype})",
        "columns": ["T", "K", "device", "method", "neurodyn s", "dynamax s", "ratio", "max |diff|"],
        "rows": table,
        "notes": (f"Batch {args.batch} sequences of random log-likelihoods, best of {args.repeats} after an "
                  f"untimed warm-up on each side (jax jit / numba compile excluded); shown: {shown} (the default), "
                  f"all of {','.join(args.methods)} in the results file; ratio = neurodyn / dynamax's "
                  f"jit-compiled, vmapped `hmm_smoother` time; "
                  f"max |diff| = largest posterior difference.{summary}")})


if __name__ == "__main__":
    sys.exit(main())
