"""The departures from the reference code, all together, on the Lorenz benchmark (issue 11 item 7).

neurodyn's LangevinFlow defaults differ from the MIT reference code (https://github.com/KingJamesSong/LangevinFlow_CCN)
in six model fields: the integrator (``ou_exact``: exact Ornstein-Uhlenbeck velocity step, noise
sqrt(2g - g^2), vs the reference's Euler step with sqrt(2g)), the transition KL (``gaussian`` vs the
reference's), the encoder alignment (``current`` vs ``lagged``), the potential's initialisation (N(0, 1)
vs zeros), the decoder's initialisation (PyTorch default vs the reference's T-Fixup-style scaling) and the
coordinated-dropout gradient (``dropped`` vs the reference's). ``val_mask`` (validation only) differs too and
is left at neurodyn's value: it changes no training step.

This script runs :func:`lorenz.run_seed` (``benchmarks/lorenz.py``: the Lorenz settings of
``neurodyn.demo.LORENZ_MODEL``, 20 fit / 2 select / 2 report trials per condition, the epoch chosen every 5
epochs on the select trials by held-out spike likelihood) twice per seed on the same data and split: once
with neurodyn's defaults and once with the six fields at the reference's values. It reports the report
trials' rate R2 against the true rates of both (selected epoch and last epoch), per seed, mean +- sd and
the paired difference. The six fields are changed together: one variant per field is the next step.

Usage: ``python benchmarks/departures.py [--seeds 0,1,2] [--epochs 200] [--jobs 2]``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _results import mean_sd, parse_seeds, summarize, write_results  # noqa: E402

#: the reference preset's model fields that differ from neurodyn's defaults (validation-only val_mask left out)
REFERENCE_FIELDS = {"integrator": "reference", "transition_kl": "reference", "encoder_alignment": "lagged",
                    "potential_init": "zeros", "init": "reference", "cd_gradient": "reference"}
VARIANTS = {"neurodyn": {}, "reference_fields": REFERENCE_FIELDS}


def _job(variant: str, seed: int, epochs: int, threads: int) -> tuple[str, int, dict]:
    from lorenz import run_seed

    res = run_seed(seed, epochs, (20, 2, 2), VARIANTS[variant], {}, threads, 5, None)
    keep = ("langevinflow", "langevinflow_last_epoch", "langevinflow_best_epoch", "train_seconds", "model")
    return variant, seed, {k: res[k] for k in keep}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=parse_seeds, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel processes (1 torch thread each)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    jobs = [(v, s) for s in args.seeds for v in VARIANTS]
    runs: dict = {v: {} for v in VARIANTS}
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for variant, seed, res in pool.map(_job, *zip(*jobs), [args.epochs] * len(jobs), [1] * len(jobs)):
            runs[variant][seed] = res
            print(json.dumps({"variant": variant, "seed": seed, **{k: v for k, v in res.items() if k != "model"}}),
                  flush=True)
    figures: dict = {"runs": {v: {str(s): r for s, r in rs.items()} for v, rs in runs.items()},
                     "reference_fields": REFERENCE_FIELDS, "epochs": args.epochs, "seeds": args.seeds}
    rows = []
    for key, label in (("langevinflow", "epoch chosen on select trials"), ("langevinflow_last_epoch", "last epoch")):
        per = {v: summarize([runs[v][s][key] for s in args.seeds]) for v in VARIANTS}
        diff = summarize([runs["neurodyn"][s][key] - runs["reference_fields"][s][key] for s in args.seeds])
        figures[key] = {**per, "neurodyn_minus_reference": diff}
        rows.append([label, mean_sd(per["neurodyn"]), mean_sd(per["reference_fields"]), mean_sd(diff),
                     " / ".join(f"{runs['neurodyn'][s][key]:.3f} vs {runs['reference_fields'][s][key]:.3f}"
                                for s in args.seeds)])
    d = figures["langevinflow"]["neurodyn_minus_reference"]
    verdict = ("neurodyn's departures help" if d["mean"] - d["sd"] > 0 else
               "neurodyn's departures hurt" if d["mean"] + d["sd"] < 0 else
               "no difference beyond the seed-to-seed spread")
    figures["verdict"] = verdict
    if not args.no_write:
        write_results("departures_lorenz", figures, seconds=time.perf_counter() - start, readme={
            "title": "Departures from the reference code on Lorenz (rate R2 on report trials)",
            "columns": ["LangevinFlow", "neurodyn defaults", "reference values of the six fields",
                        "difference (paired)", "per seed"],
            "rows": rows,
            "notes": (f"`benchmarks/lorenz.py` settings and split (20 fit / 2 select / 2 report trials per condition, "
                      f"{args.epochs} epochs, epoch chosen on the select trials by held-out spike likelihood), seeds "
                      f"{', '.join(map(str, args.seeds))}, the same data and split for both; the reference values "
                      f"of {', '.join(f'{k}={v}' for k, v in REFERENCE_FIELDS.items())} changed together. "
                      f"Verdict (mean paired difference against its sd): {verdict}. Not yet run: one variant per "
                      f"field, and the synthetic NLB case.")})
    print(json.dumps({"verdict": verdict, **{k: figures[k] for k in ("langevinflow", "langevinflow_last_epoch")}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
