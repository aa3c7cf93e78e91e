"""GLM, HMM-GLM, Gaussian-prior and one-hot-prior HMM-GLM on the paper's simulator, per seed.

Paper size (default): 5 states, 20 neurons, 50 sequences x 2000 bins; the first 30 sequences are fitted,
the last 20 are reported (nothing is selected: every setting is fixed in advance, no checkpoint or
hyper-parameter is chosen on any data, and the connection-type threshold comes from the training data).
``--fast``: 3 states, 10 neurons, 14 sequences x 500 bins (10 / 4).

Models, each fitted from a cold start, the same for every seed:

- ``glm``: one state, 300 Adam steps (lr 0.05) on the exact likelihood.
- ``hmmglm``, ``gaussian``: full-batch EM, 12 E-steps x 25 Adam steps (lr 0.05), couplings from N(0, 0.1²).
- ``onehot``: neurodyn's default one-hot recipe (``neurodyn.models.hmmglm.recipes``, ``"default"``):
  all logits 0, categorical prior, per-sequence E-step and transition update, 5 Gumbel-softmax Adam steps
  (lr 0.1) per sequence for 10 epochs, then collapsed entries revived and 4 full-batch EM iterations of 25
  softmax steps (lr 0.05); float32; two
  restarts of the first 3 epochs, the better one continued. Its settings were chosen on simulator seeds
  100-119, not on the report seeds. ``--init warm`` instead
  warm-starts it from the fitted HMM-GLM (``init_from_couplings``, then 8 full-batch EM iterations; its
  time includes the HMM-GLM's).
- ``onehot_paper``: the reference code's demo procedure (recipe ``"paper"``: logits 0, bias at the mean
  count, Concrete prior with the paper-era ``α = exp(π̄)``, 10 epochs x 30 sequences x 50 Adam steps at lr
  0.01, Gumbel τ 0.2, per-sequence transition update, E-step emission probabilities floored at 1e-16;
  float32). ``--no-paper`` skips it.

Every model's connection types come from one rule (``neurodyn.models.hmmglm.readout``): sign of the coupling
where ``|w| >= 3 se(w)``, the standard error from the training data; the one-hot models' own argmax read-out
(the paper code's) is reported too. Also reported: the all-"none" predictor and the true parameters
(``truth``). Test log-likelihood is the marginal ``log p(X)`` per spike (nats) of the 20 report sequences.
``weight_error`` is the mean squared error of the couplings each model reports (``readout.reported_couplings``,
the ``coupling`` of its files: for the one-hot models each entry's most probable type times its strength);
``weight_error_softmax`` (one-hot only) that of the softmax mixture their likelihood uses. Results files
written before this split hold the softmax mixture's error under ``weight_error`` for the one-hot rows.

Compute: every model reports its Adam steps, E-steps, wall-clock and CPU seconds (numba kernels are
compiled before any timing). The paper's reference code itself runs beside neurodyn's recipes on the same
data in ``benchmarks/onehot_reference.py`` (it needs a checkout of the reference).

Usage: ``python benchmarks/hmmglm_synthetic.py --seeds 0,1,2 --init cold`` (writes
``benchmarks/results/hmmglm_synthetic.json``; ``--no-write`` to skip; ``--results-dir`` / ``--name`` for
runs on development seeds, e.g. ``--seeds 100-104 --no-paper --results-dir benchmarks/results/dev --name
hmmglm_synthetic_dev``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import (  # noqa: E402
    BenchmarkParser,
    WorkerPool,
    check_results_folder,
    exits_on_signals,
    mean_sd,
    output_folder,
    parse_seeds,
    positive_int,
    refuse_committed_folder,
    refuse_development_run,
    rerender_readme,
    summarize,
    write_results,
)

from neurodyn.data.synthetic.switching_glm import simulate_switching_glm  # noqa: E402
from neurodyn.metrics.states import connection_type_accuracy, connection_type_f1  # noqa: E402
from neurodyn.models.hmmglm import HMMGLM, HMMGLMConfig, build_model  # noqa: E402
from neurodyn.models.hmmglm.fit import fit_em, fit_gradient  # noqa: E402
from neurodyn.models.hmmglm.readout import WALD_Z  # noqa: E402
from neurodyn.models.hmmglm.recipes import RECIPES, fit_recipe  # noqa: E402
from neurodyn.training.hmmglm_scores import evaluate_model  # noqa: E402

MODELS = ("glm", "hmmglm", "gaussian", "onehot", "onehot_paper")
LABELS = {
    "truth": "true parameters (oracle)",
    "none": 'all-"none" predictor',
    "glm": "GLM (1 state)",
    "hmmglm": "HMM-GLM",
    "gaussian": "Gaussian-prior HMM-GLM",
    "onehot": "one-hot, neurodyn default recipe",
    "onehot_paper": "one-hot, paper recipe",
}
METRICS = ("test_ll", "state_accuracy", "type_accuracy", "type_f1", "type_accuracy_argmax", "type_f1_argmax",
           "weight_error", "weight_error_softmax", "fit_seconds", "fit_cpu_seconds", "adam_steps", "e_steps")
GOALS = {"state_accuracy": 0.95, "type_accuracy": 0.9, "type_f1": 0.85}
FIT_EM = dict(n_iters=12, n_inner=25, lr=0.05)
GLM_STEPS, GLM_LR = 300, 0.05
WARM = dict(n_iters=8, n_inner=25, lr=0.05, threshold=0.2)


def _warm_up_kernels() -> None:
    """Compile (or load) the numba forward-backward kernels for both dtypes before any timing."""
    x = torch.poisson(torch.full((1, 30, 3), 0.3))
    for dtype in (torch.float32, torch.float64):
        HMMGLM(3, 2).to(dtype).e_step(x.to(dtype))


def equivalent_hmmglm(weights, bias, transitions) -> HMMGLM:
    """A float64 ``HMMGLM`` with these couplings (S, N, N) [post, pre] on the simulator's history basis
    (exponential, decay 1, 5 bins), bias (N,) and transition matrix (S, S); self-couplings kept."""
    weights = np.asarray(weights, dtype=np.float64)
    model = HMMGLM(weights.shape[1], weights.shape[0], self_connections=True).double()
    with torch.no_grad():
        model.weights.copy_(torch.tensor(weights)[..., None])
        model.bias.copy_(torch.as_tensor(bias, dtype=torch.float64))
        model.transition_logits.copy_(torch.as_tensor(transitions, dtype=torch.float64).log())
    return model


def _truth_model(sim) -> HMMGLM:
    return equivalent_hmmglm(sim.weights, sim.bias, sim.transitions)


def run_seed(seed: int, args, size: dict, n_train: int) -> dict:
    torch.manual_seed(seed)
    sim = simulate_switching_glm(seed=seed, **size)
    n_states, n_neurons = size["n_states"], size["n_neurons"]
    train = torch.tensor(sim.spikes[:n_train], dtype=torch.float64)
    test, test_states, train_states = sim.spikes[n_train:], sim.states[n_train:], sim.states[:n_train]
    n_seq = train.shape[0]
    out: dict = {}

    def score(model, extra: dict) -> dict:
        r = evaluate_model(model, test, test_states, sim.connection_types, sim.weights,
                           train_spikes=train.to(model.bias.dtype), train_states=train_states)
        row = {k: r.get(k) for k in METRICS if k in r} | extra
        return row

    out["truth"] = score(_truth_model(sim), {"fit_seconds": None, "fit_cpu_seconds": None,
                                             "adam_steps": 0, "e_steps": 0})
    zeros = np.zeros_like(sim.connection_types)
    out["none"] = {"type_accuracy": connection_type_accuracy(sim.connection_types, zeros),
                   "type_f1": connection_type_f1(sim.connection_types, zeros)}
    models = [m for m in MODELS if not (m == "onehot_paper" and args.no_paper)]
    for name in models:
        start, cpu = time.perf_counter(), time.process_time()
        if name == "glm":
            model = build_model(n_neurons, HMMGLMConfig(variant="glm", seed=seed)).double()
            fit_gradient(model, train, n_steps=GLM_STEPS, lr=GLM_LR)
            steps, e_steps = GLM_STEPS, 0
        elif name in ("hmmglm", "gaussian"):
            model = build_model(n_neurons, HMMGLMConfig(variant=name, n_states=n_states, seed=seed)).double()
            fit_em(model, train, **FIT_EM)
            steps, e_steps = FIT_EM["n_iters"] * FIT_EM["n_inner"], FIT_EM["n_iters"]
        elif name == "onehot" and args.init == "warm":
            model = build_model(n_neurons, HMMGLMConfig(variant="onehot", n_states=n_states, seed=seed)).double()
            model.init_from_couplings(out_models["hmmglm"], threshold=WARM["threshold"])
            fit_em(model, train, n_iters=WARM["n_iters"], n_inner=WARM["n_inner"], lr=WARM["lr"], init_bias=False)
            steps = WARM["n_iters"] * WARM["n_inner"] + out["hmmglm"]["adam_steps"]
            e_steps = WARM["n_iters"] + out["hmmglm"]["e_steps"]
        else:
            recipe = "paper" if name == "onehot_paper" else "default"
            model, _ = fit_recipe(train, n_states, recipe=recipe, seed=seed)
            steps, e_steps = RECIPES[recipe].n_adam_steps(n_seq), RECIPES[recipe].n_e_steps(n_seq)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
        if name == "onehot" and args.init == "warm":
            wall += out["hmmglm"]["fit_seconds"]
            cpu += out["hmmglm"]["fit_cpu_seconds"]
        out_models[name] = model
        out[name] = score(model, {"fit_seconds": round(wall, 2), "fit_cpu_seconds": round(cpu, 2),
                                  "adam_steps": steps, "e_steps": e_steps})
        print(f"seed {seed} {name}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in out[name].items()), flush=True)
    out_models.clear()
    lls = [out[m]["test_ll"] for m in ("onehot", "gaussian", "hmmglm", "glm")]
    out["ll_ordered"] = bool(all(a >= b for a, b in zip(lls, lls[1:])))
    oh = out["onehot"]
    out["onehot_meets_goals"] = bool(all(oh[k] >= v for k, v in GOALS.items()))
    if "onehot_paper" in out:
        out["fit_time_ratio_default_vs_paper"] = oh["fit_seconds"] / out["onehot_paper"]["fit_seconds"]
        out["cpu_time_ratio_default_vs_paper"] = oh["fit_cpu_seconds"] / out["onehot_paper"]["fit_cpu_seconds"]
    print(f"seed {seed} none: {out['none']}; truth: {out['truth']}", flush=True)
    return out


out_models: dict = {}


def _run_seed_process(seed, args, size, n_train) -> dict:
    """One seed in a worker process (one torch thread, kernels compiled before timing)."""
    torch.set_num_threads(args.threads)
    _warm_up_kernels()
    return run_seed(seed, args, size, n_train)


def _fmt(v) -> str:
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def _cell(summary: dict | None, digits: int = 3) -> str:
    return "—" if summary is None else mean_sd(summary, digits)


def readme_block(record: dict) -> dict:
    """The README table of a results record (its ``figures``, ``seeds`` and ``size``): what a run writes, and what
    ``--rerender`` rebuilds from a results file without fitting anything."""
    figures, seeds, size = record["figures"], [int(s) for s in record["seeds"]], record["size"]
    n_train, summary = size["n_train"], figures["summary"]
    rows_models = [m for m in ("truth", "none", *MODELS) if m in summary]
    columns = ["model", "test LL / spike", "state acc.", "type acc.", "type macro-F1",
               "type acc. (argmax)", "coupling MSE", "fit s (wall)", "Adam steps"]
    rows = []
    for m in rows_models:
        sm = summary[m]
        steps = sm["adam_steps"]
        rows.append([LABELS[m], _cell(sm["test_ll"], 4), _cell(sm["state_accuracy"]), _cell(sm["type_accuracy"]),
                     _cell(sm["type_f1"]), _cell(sm["type_accuracy_argmax"]),
                     "—" if m == "truth" else _cell(sm["weight_error"], 4), _cell(sm["fit_seconds"], 1),
                     "—" if steps is None else f"{steps['mean']:.0f}"])
    onehot_beats_hmmglm = figures["onehot_beats_hmmglm_on_types"]
    goals_each_seed = {int(s): ok for s, ok in figures["onehot_meets_goals_each_seed"].items()}
    ll_ordered = {int(s): ok for s, ok in figures["ll_ordered_each_seed"].items()}
    goals = figures["goals"]
    verdict = []
    if onehot_beats_hmmglm["type_accuracy"] and onehot_beats_hmmglm["type_f1"]:
        verdict.append("The one-hot default recipe recovers connection types better than the HMM-GLM read out "
                       "with the same rule (mean over seeds).")
    else:
        verdict.append("**The one-hot prior does not beat the plain HMM-GLM on connection-type recovery** when both "
                       "are read out with the same rule (mean over seeds): type accuracy "
                       f"{summary['onehot']['type_accuracy']['mean']:.3f} vs "
                       f"{summary['hmmglm']['type_accuracy']['mean']:.3f}, macro-F1 "
                       f"{summary['onehot']['type_f1']['mean']:.3f} vs {summary['hmmglm']['type_f1']['mean']:.3f}.")
    met = [s for s, ok in goals_each_seed.items() if ok]
    verdict.append(f"Goals (state ≥ {goals['state_accuracy']}, type ≥ {goals['type_accuracy']}, F1 ≥ "
                   f"{goals['type_f1']}) met by the default one-hot recipe on seeds {met or 'none'} of {seeds}; "
                   f"test LL ordered one-hot ≥ Gaussian ≥ HMM-GLM ≥ GLM on seeds "
                   f"{[s for s, ok in ll_ordered.items() if ok] or 'none'}.")
    if "fit_time_ratio_default_vs_paper" in figures:
        r = figures["fit_time_ratio_default_vs_paper"]
        c = figures["cpu_time_ratio_default_vs_paper"]
        verdict.append(f"Fit time of the default recipe / paper recipe in the same run: {mean_sd(r)} (wall), "
                       f"{mean_sd(c)} (CPU); against the reference code itself: the side-by-side table below "
                       "(`benchmarks/onehot_reference.py`).")
    return {
        "title": f"Switching GLMs on the paper's simulator ({size['n_states']} states, {size['n_neurons']} neurons, "
                 f"{n_train} fit / {size['n_sequences'] - n_train} report sequences of {size['n_bins']} bins), "
                 f"cold start, mean ± sd over seeds {', '.join(map(str, seeds))}",
        "columns": columns,
        "rows": rows,
        "notes": " ".join(verdict) + f" Types: every model read out by one rule, sign(w) where |w| ≥ {WALD_Z:g} "
                 "standard errors (from the training data); '(argmax)' is the paper code's read-out of the one-hot "
                 "adjacency logits. Coupling MSE: mean squared error of the couplings the files report "
                 "(`coupling`; one-hot: hard types x strength) against the true ones, off-diagonal entries where "
                 "self-connections are not learned. Test LL: marginal log p(X) per spike, nats, on the report "
                 "sequences.",
    }


@exits_on_signals
def main(argv=None) -> int:
    parser = BenchmarkParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=parse_seeds, default=[0, 1, 2], help="e.g. 0,1,2 or 0-4 (default 0,1,2)")
    parser.add_argument("--init", choices=("cold", "warm"), default="cold",
                        help="one-hot: cold start (default recipe) or warm start from the HMM-GLM fit")
    parser.add_argument("--no-paper", action="store_true", help="skip the paper recipe (the slow one)")
    parser.add_argument("--fast", action="store_true",
                        help="small problem (smoke test; no README table, so it writes into --results-dir or "
                             "$NEURODYN_RESULTS_DIR, never over benchmarks/results)")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--jobs", type=positive_int, default=1, help="seeds run in parallel processes (default 1)")
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/hmmglm_synthetic.json")
    parser.add_argument("--results-dir", type=output_folder, default=None,
                        help="write the results file here (default benchmarks/results; "
                        "runs on development seeds go to benchmarks/results/dev)")
    parser.add_argument("--name", default="hmmglm_synthetic",
                        help="results file name (default hmmglm_synthetic; another name needs --results-dir)")
    parser.add_argument("--rerender", default=None, metavar="JSON",
                        help="only (re)build the README table of an existing results file from its own figures "
                             "(every other field kept) and exit; fits nothing")
    args = parser.parse_args(argv)
    if args.rerender:
        print(rerender_readme(args.rerender, "hmmglm_synthetic", "summary", readme_block))  # bad file: one line
        return 0
    if not args.name or Path(args.name).name != args.name or args.name.startswith("."):
        parser.error(f"argument --name: must be a plain file name without folders, got {args.name!r}")
    if not args.no_write:  # before any work, not when the results are written
        folder = check_results_folder(args.results_dir, "--results-dir", name=args.name)
        if args.fast:  # a smoke run writes no README table: never into the committed folder
            refuse_committed_folder(folder, args.name, "a --fast run", "--fast", "--results-dir")
        if args.name != "hmmglm_synthetic":
            refuse_development_run(parser, folder, "--name", f"{args.name!r} in benchmarks/results would replace "
                                   "another benchmark's results file or add one with no README block")
    seeds = args.seeds
    run_start = time.perf_counter()
    torch.set_num_threads(args.threads)
    if args.fast:
        size, n_train = dict(n_states=3, n_neurons=10, n_sequences=14, n_bins=500), 10
    else:
        size, n_train = dict(n_states=5, n_neurons=20, n_sequences=50, n_bins=2000), 30
    if args.jobs > 1 and len(seeds) > 1:
        import multiprocessing as mp

        with WorkerPool(min(args.jobs, len(seeds)), mp_context=mp.get_context("spawn")) as pool:
            futures = {s: pool.submit(_run_seed_process, s, args, size, n_train) for s in seeds}
            per_seed = {s: f.result() for s, f in futures.items()}
    else:
        _warm_up_kernels()
        per_seed = {seed: run_seed(seed, args, size, n_train) for seed in seeds}
    rows_models = ["truth", "none"] + [m for m in MODELS if m in per_seed[seeds[0]]]
    summary = {}
    for m in rows_models:
        summary[m] = {}
        for k in METRICS:
            vals = [per_seed[s][m].get(k) for s in seeds]
            summary[m][k] = summarize(vals) if all(v is not None for v in vals) else None
    onehot_beats_hmmglm = {
        k: bool(summary["onehot"][k]["mean"] > summary["hmmglm"][k]["mean"]) for k in ("type_accuracy", "type_f1")
    }
    goals_each_seed = {s: per_seed[s]["onehot_meets_goals"] for s in seeds}
    ll_ordered = {s: per_seed[s]["ll_ordered"] for s in seeds}
    figures = {"per_seed": {str(s): v for s, v in per_seed.items()}, "summary": summary,
               "goals": GOALS,
               "onehot_meets_goals_each_seed": goals_each_seed, "ll_ordered_each_seed": ll_ordered,
               "onehot_beats_hmmglm_on_types": onehot_beats_hmmglm}
    if "onehot_paper" in summary:
        figures["fit_time_ratio_default_vs_paper"] = summarize(
            [per_seed[s]["fit_time_ratio_default_vs_paper"] for s in seeds])
        figures["cpu_time_ratio_default_vs_paper"] = summarize(
            [per_seed[s]["cpu_time_ratio_default_vs_paper"] for s in seeds])
    readme = readme_block({"figures": figures, "seeds": seeds, "size": size | {"n_train": n_train}})
    seconds = time.perf_counter() - run_start
    print(f"summary: one-hot meets goals per seed {goals_each_seed}; LL ordered per seed {ll_ordered}; "
          f"one-hot beats HMM-GLM on types {onehot_beats_hmmglm}", flush=True)
    if not args.no_write:
        write_results(
            args.name, figures, seconds=seconds, readme=None if args.fast else readme, out_dir=args.results_dir,
            seeds=seeds, size=size | {"n_train": n_train},
            split={"fit": f"sequences 0..{n_train - 1}", "select": "none (all settings fixed in advance)",
                   "report": f"sequences {n_train}..{size['n_sequences'] - 1}"},
            selection="nothing is selected; the type read-out threshold uses training data only",
            settings={"glm": {"steps": GLM_STEPS, "lr": GLM_LR}, "em": FIT_EM, "init": args.init, "warm": WARM,
                      "recipes": {k: repr(v) for k, v in RECIPES.items()}, "readout_z": WALD_Z},
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
