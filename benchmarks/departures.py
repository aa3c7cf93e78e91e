"""neurodyn's departures from the reference code on the Lorenz benchmark, together and one at a time (issue 11 item 7).

neurodyn's LangevinFlow defaults differ from the MIT reference code (https://github.com/KingJamesSong/LangevinFlow_CCN)
in six model fields: the integrator (``ou_exact``: exact Ornstein-Uhlenbeck velocity step, noise
sqrt(2g - g^2), vs the reference's Euler step with sqrt(2g)), the transition KL (``gaussian`` vs the
reference's), the encoder alignment (``current`` vs ``lagged``), the potential's initialisation (N(0, 1)
vs zeros), the decoder's initialisation (PyTorch default vs the reference's T-Fixup-style scaling) and the
coordinated-dropout gradient (``dropped`` vs the reference's). ``val_mask`` (validation only) differs too and
is left at neurodyn's value: it changes no training step.

This script runs :func:`lorenz.run_seed` (``benchmarks/lorenz.py``: the Lorenz settings of
``neurodyn.demo.LORENZ_MODEL``, 20 fit / 2 select / 2 report trials per condition, the epoch chosen every 5
epochs on the select trials by held-out spike likelihood) per seed on the same data and split for every
variant: neurodyn's defaults (``neurodyn``), the six fields at the reference's values together
(``reference_fields``), and one leave-one-out variant per field (``reference_<field>``: neurodyn's defaults
with only that field at the reference's value). It reports the report trials' rate R2 against the true
rates (selected epoch and last epoch), per seed, mean +- sd, and each variant's paired difference from
neurodyn's defaults, and the same for the select trials' held-out spike log-likelihood at the chosen epoch (the
observable figure a decision to keep or revert a departure may rest on); a departure "helps" when neurodyn
minus the variant is above zero by more than its sd over seeds, "hurts" when below by more than it, and is
"neutral" otherwise.

``--case nlb --style mc_maze`` runs the same variants through ``benchmarks/nlb_synthetic.py``'s whole CLI path
(the variant's fields as ``neurodyn fit`` overrides of the CPU config) and reports co-bps / oracle on the scored
val trials; that path has no select split, so its figures are report figures only.

Usage::

    python benchmarks/departures.py [--seeds 0,1,2] [--epochs 200] [--jobs 2] [--case nlb]
    python benchmarks/departures.py --case nlb --style dmfc_rsg --results-dir DIR   # no README block: not into
                                                                                    # benchmarks/results
    python benchmarks/departures.py --variants reference_integrator,reference_init   # a subset of the variants
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _results import (  # noqa: E402
    BenchmarkParser,
    WorkerPool,
    check_results_folder,
    exits_on_signals,
    mean_sd,
    name_list,
    output_folder,
    parse_seeds,
    positive_int,
    refuse_development_run,
    summarize,
    write_results,
)
from nlb_synthetic import STYLES  # noqa: E402

#: the reference preset's model fields that differ from neurodyn's defaults (validation-only val_mask left out)
REFERENCE_FIELDS = {"integrator": "reference", "transition_kl": "reference", "encoder_alignment": "lagged",
                    "potential_init": "zeros", "init": "reference", "cd_gradient": "reference"}
#: the --case nlb styles whose results file (departures_nlb_STYLE.json) the README has a block for; another
#: style is a development run, written only into another results folder
README_STYLES = ("mc_maze",)
VARIANTS = {"neurodyn": {}, "reference_fields": REFERENCE_FIELDS,
            **{f"reference_{field}": {field: value} for field, value in REFERENCE_FIELDS.items()}}


def _job(variant: str, seed: int, epochs: int, threads: int) -> tuple[str, int, dict]:
    from lorenz import run_seed

    res = run_seed(seed, epochs, (20, 2, 2), VARIANTS[variant], {}, threads, 5, None, baselines=False)
    keep = ("langevinflow", "langevinflow_last_epoch", "langevinflow_best_epoch", "langevinflow_select_loglik",
            "train_seconds", "model")
    return variant, seed, {k: res[k] for k in keep}


def _nlb_job(variant: str, seed: int, style: str) -> tuple[str, int, dict]:
    """nlb_synthetic's whole CLI user path for one style and seed, the variant's fields as fit overrides."""
    import os
    import tempfile

    from nlb_synthetic import run_one

    args = tuple(a for k, v in VARIANTS[variant].items() for a in (f"--model.init_args.config.{k}", str(v)))
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    with tempfile.TemporaryDirectory() as tmp, open(os.devnull, "w") as log:
        res = run_one(style, seed, Path(tmp) / "work", env, log, fit_args=args)
    return variant, seed, {"co_bps_20ms": res["langevinflow"]["20ms"]["co-bps"],
                           "co_bps_ratio_20ms": res["co_bps_ratio_20ms"], "co_bps_ratio_5ms": res["co_bps_ratio_5ms"],
                           "fit_seconds": res["seconds"]["fit"]}


def nlb_case(args, variants: list[str]) -> int:
    """Item 7's synthetic NLB half: the variants through nlb_synthetic's CLI path (no select split there:
    the CPU config predicts from its last epoch), co-bps of the 25 scored val trials / the oracle's."""
    start = time.perf_counter()
    jobs = [(v, s) for s in args.seeds for v in variants]
    runs: dict = {v: {} for v in variants}
    with WorkerPool(max_workers=args.jobs) as pool:
        for variant, seed, res in pool.map(_nlb_job, *zip(*jobs), [args.style] * len(jobs)):
            runs[variant][seed] = res
            print(json.dumps({"variant": variant, "seed": seed, **res}), flush=True)
    figures: dict = {"runs": {v: {str(s): r for s, r in rs.items()} for v, rs in runs.items()},
                     "variants": {v: VARIANTS[v] for v in variants}, "style": args.style, "seeds": args.seeds}
    rows = []
    for v, paired in _paired(runs, "co_bps_ratio_20ms", variants, args.seeds).items():
        ratio = paired.pop("value")
        row = figures[v] = {"co_bps_ratio_20ms": ratio, **paired}
        rows.append([_label(v), mean_sd(ratio), "—" if v == "neurodyn" else mean_sd(row["neurodyn_minus_variant"]),
                     "—" if v == "neurodyn" else row["verdict"],
                     " / ".join(f"{runs[v][s]['co_bps_ratio_20ms']:.3f}" for s in args.seeds)])
    if not args.no_write:
        write_results(f"departures_nlb_{args.style}", figures, seconds=time.perf_counter() - start,
                      out_dir=args.results_dir, readme={
            "title": f"Departures from the reference code on the synthetic NLB case ({args.style}, co-bps / oracle)",
            "columns": ["variant (neurodyn defaults except)", "co-bps / oracle, 20 ms", "neurodyn minus variant",
                        "departure", "per seed"],
            "rows": rows,
            "notes": (f"`benchmarks/nlb_synthetic.py`'s whole CLI path for {args.style} (prepare, fit with the CPU "
                      f"config plus the variant's fields as `--model.init_args.config.*` overrides, predict from "
                      f"the last epoch, evaluate), seeds {', '.join(map(str, args.seeds))}, co-bps of the 25 "
                      f"scored val trials divided by the true rates'. No select split exists on this path (the "
                      f"config selects nothing), so these are report figures only: no default is chosen on them. "
                      f"'departure' as in the Lorenz table.")})
    return 0


def _label(variant: str) -> str:
    field = variant.removeprefix("reference_")
    return ("neurodyn defaults" if variant == "neurodyn" else "all six fields at the reference's values"
            if variant == "reference_fields" else f"{field}={VARIANTS[variant][field]}")


def _paired(runs: dict, key: str, variants: list[str], seeds: list[int]) -> dict:
    """Per variant: ``key`` over seeds and, beside neurodyn's, the paired difference and its verdict."""
    out = {}
    for v in variants:
        row = {"value": summarize([runs[v][s][key] for s in seeds])}
        if v != "neurodyn":
            row["neurodyn_minus_variant"] = summarize([runs["neurodyn"][s][key] - runs[v][s][key] for s in seeds])
            row["verdict"] = _verdict(row["neurodyn_minus_variant"])
        out[v] = row
    return out


def _verdict(diff: dict) -> str:
    """neurodyn minus the variant, against its sd over seeds."""
    if diff["mean"] - diff["sd"] > 0:
        return "helps"
    if diff["mean"] + diff["sd"] < 0:
        return "hurts"
    return "neutral"


@exits_on_signals
def main(argv=None) -> int:
    parser = BenchmarkParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=parse_seeds, default=[0, 1, 2],
                        help="simulator and training seeds, e.g. 0,1,2 or 0-4 (default 0,1,2)")
    parser.add_argument("--epochs", type=positive_int, default=None,
                        help="--case lorenz: training epochs of every run (default 200)")
    parser.add_argument("--jobs", type=positive_int, default=2, help="runs in parallel processes (1 torch thread each)")
    parser.add_argument("--variants", type=name_list(VARIANTS, "variant"), default=list(VARIANTS),
                        help=f"comma-separated subset of {', '.join(VARIANTS)} (neurodyn is always run)")
    parser.add_argument("--case", choices=("lorenz", "nlb"), default="lorenz",
                        help="lorenz (default) or nlb: nlb_synthetic's CLI path on --style")
    parser.add_argument("--style", default=None, choices=tuple(STYLES),
                        help="--case nlb: the synthetic NLB style (default mc_maze)")
    parser.add_argument("--no-write", action="store_true",
                        help="do not write the results file (departures_lorenz.json / departures_nlb_STYLE.json)")
    parser.add_argument("--results-dir", type=output_folder, default=None,
                        help="results folder (default $NEURODYN_RESULTS_DIR, else benchmarks/results; needed by "
                             f"--case nlb with a --style other than {', '.join(README_STYLES)})")
    args = parser.parse_args(argv)
    # an option of the other case would be ignored, and the results file would not say so
    if args.case == "nlb" and args.epochs is not None:
        parser.error("argument --epochs: --case nlb trains with the CPU config's schedule; --epochs is --case lorenz's")
    if args.case == "lorenz" and args.style is not None:
        parser.error("argument --style: --case lorenz has no style; --style is --case nlb's")
    args.epochs = 200 if args.epochs is None else args.epochs
    args.style = "mc_maze" if args.style is None else args.style
    if not args.no_write:  # before any work, not when the results are written
        name = "departures_lorenz" if args.case == "lorenz" else f"departures_nlb_{args.style}"
        folder = check_results_folder(args.results_dir, "--results-dir", name=name)
        if args.case == "nlb" and args.style not in README_STYLES:
            refuse_development_run(parser, folder, "--style", f"--case nlb --style {args.style} writes {name}.json, "
                                   "which has no README block, into benchmarks/results")
    variants = ["neurodyn"] + [v for v in args.variants if v != "neurodyn"]
    if args.case == "nlb":
        return nlb_case(args, variants)
    start = time.perf_counter()
    jobs = [(v, s) for s in args.seeds for v in variants]
    runs: dict = {v: {} for v in variants}
    with WorkerPool(max_workers=args.jobs) as pool:
        for variant, seed, res in pool.map(_job, *zip(*jobs), [args.epochs] * len(jobs), [1] * len(jobs)):
            runs[variant][seed] = res
            print(json.dumps({"variant": variant, "seed": seed, **{k: v for k, v in res.items() if k != "model"}}),
                  flush=True)
    figures: dict = {"runs": {v: {str(s): r for s, r in rs.items()} for v, rs in runs.items()},
                     "variants": {v: VARIANTS[v] for v in variants}, "reference_fields": REFERENCE_FIELDS,
                     "epochs": args.epochs, "seeds": args.seeds}
    # report-trial R2 (what a user of the benchmark sees) and the select trials' held-out spike log-likelihood at
    # the chosen epoch (nats per entry: what a decision to keep or revert a departure may use)
    for key in ("langevinflow", "langevinflow_last_epoch", "langevinflow_select_loglik"):
        figures[key] = _paired(runs, key, variants, args.seeds)
    verdicts = {v: {"report_r2": figures["langevinflow"][v]["verdict"],
                    "select_loglik": figures["langevinflow_select_loglik"][v]["verdict"]}
                for v in variants if v != "neurodyn"}
    figures["verdicts"] = verdicts
    rows = []
    for v in variants:
        r2, ll = figures["langevinflow"][v], figures["langevinflow_select_loglik"][v]
        base = v == "neurodyn"
        rows.append([_label(v), mean_sd(r2["value"]), "—" if base else mean_sd(r2["neurodyn_minus_variant"]),
                     mean_sd(ll["value"], 4), "—" if base else mean_sd(ll["neurodyn_minus_variant"], 4),
                     "—" if base else f"{ll['verdict']} / {r2['verdict']}",
                     mean_sd(figures["langevinflow_last_epoch"][v]["value"]),
                     " / ".join(f"{runs[v][s]['langevinflow']:.3f}" for s in args.seeds)])
    if not args.no_write:
        write_results("departures_lorenz", figures, seconds=time.perf_counter() - start,
                      out_dir=args.results_dir, readme={
            "title": "Departures from the reference code on Lorenz (rate R2 on report trials)",
            "columns": ["variant (neurodyn defaults except)", "report R2, chosen epoch", "neurodyn minus variant",
                        "select LL / entry", "neurodyn minus variant", "departure (select LL / report R2)",
                        "report R2, last epoch", "report R2 per seed"],
            "rows": rows,
            "notes": (f"`benchmarks/lorenz.py` settings and split (20 fit / 2 select / 2 report trials per condition, "
                      f"{args.epochs} epochs, epoch chosen on the select trials by held-out spike likelihood), seeds "
                      f"{', '.join(map(str, args.seeds))}, the same data and split for every variant. Each row but "
                      f"the first and second sets one field to the reference code's value; the second sets all of "
                      f"{', '.join(f'{k}={v}' for k, v in REFERENCE_FIELDS.items())}. Select LL: held-out Poisson "
                      f"log-likelihood per masked entry on the select trials at the chosen epoch (nats; spikes only, "
                      f"the criterion a decision to keep a departure may use); report R2: rate R2 against the true "
                      f"rates on the report trials. 'departure': neurodyn's value helps / hurts when neurodyn minus "
                      f"the variant is above / below zero by more than its sd over seeds (paired), neutral "
                      f"otherwise. The synthetic NLB case: `--case nlb`.")})
    print(json.dumps({"verdicts": verdicts, "langevinflow": figures["langevinflow"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
