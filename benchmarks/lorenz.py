"""Lorenz benchmark: LangevinFlow vs fair baselines, fit / select / report trials, several seeds.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/lorenz.py --seeds 0,1,2 [--jobs 2] [--epochs 200[,400]] [--members 3]
        [--split 20,2,2]

For each seed: simulate the LFADS Lorenz benchmark (65 conditions x 24 trials, 29 neurons, 50 bins of
20 ms; ``neurodyn.data.synthetic.lorenz``, seed = the seed), and split the trials of *every condition*
at random into fit / select / report trials (default 20 / 2 / 2 per condition: 1300 / 130 / 130).

- fit trials train every model;
- select trials choose everything that is chosen (LangevinFlow's epoch, smoothing widths, the number
  of factors), always by a held-out Poisson log-likelihood of *spikes* -- never the true rates;
- report trials are scored once: rate R2 against the true rates (NDT convention, y_true = truth,
  counts per bin, averaged over neurons).

Models: LangevinFlow (``neurodyn.demo.LORENZ_MODEL`` / ``LORENZ_OPT``; epoch chosen every 5 epochs by
the held-out-entry likelihood of :func:`neurodyn.training.recipes.heldout_loglik` on the select trials,
then the evaluation pass -- deterministic or the 50-sample average -- by the same likelihood, and the last
epoch's weights in that pass for comparison), Gaussian smoothing (width by leave-one-bin-out
likelihood), factor analysis on smoothed counts (width and dimension by leave-one-neuron-out
likelihood) and the condition PSTH of the fit trials (an *oracle*: it knows each trial's condition;
smoothing width by the select trials' likelihood). Every grid grows from a choice at its edge until the
likelihood turns down (``neurodyn.models.baselines``); the per-seed records say whether a choice is still at
an edge (``*_sigma_edge``, ``factor_analysis_edge``).

Writes ``benchmarks/results/lorenz.json`` (per-seed values, mean +- sd, the split, the selection rules,
provenance; ``--no-write`` to skip) and prints it as the last line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from _overrides import check_langevinflow_settings, key_values
from _results import (
    BenchmarkParser,
    OptionValueError,
    WorkerPool,
    check_results_folder,
    count_list,
    exits_on_signals,
    mean_sd,
    output_folder,
    parse_seeds,
    positive_int,
    read_json_object,
    summarize,
    write_results,
)

METHODS = {
    "langevinflow": "LangevinFlow (epoch and pass chosen on select trials)",
    "langevinflow_last_epoch": "LangevinFlow (last epoch, pass as above)",
    "condition_psth_oracle": "Condition PSTH of fit trials (oracle: knows labels)",
    "factor_analysis": "Factor analysis on smoothed counts",
    "gaussian_smoothing": "Gaussian smoothing",
}
#: LangevinFlow's evaluation passes (``LangevinFlow.predict``), one chosen per seed on the select trials
EVAL_MODES = ("mean", "sample")


def three_way_split(conditions, sizes, seed: int):
    """Per-condition random split of trial indices into (fit, select, report), sorted."""
    import numpy as np

    rng = np.random.default_rng([seed, 20261203])
    parts = ([], [], [])
    n_fit, n_sel, n_rep = sizes
    for c in np.unique(conditions):
        idx = rng.permutation(np.flatnonzero(conditions == c))
        if len(idx) < n_fit + n_sel + n_rep:
            raise ValueError(f"condition {c} has {len(idx)} trials, fewer than {n_fit + n_sel + n_rep}")
        parts[0].extend(idx[:n_fit])
        parts[1].extend(idx[n_fit:n_fit + n_sel])
        parts[2].extend(idx[n_fit + n_sel:n_fit + n_sel + n_rep])
    return tuple(np.sort(np.asarray(p)) for p in parts)


def _baselines(x, truth, cond, fit, sel, rep, seed: int) -> dict:
    """Gaussian smoothing (width chosen on the select trials), the condition-PSTH oracle (smoothing chosen
    on the select trials) and factor analysis on smoothed counts (width and dimension chosen on them)."""
    from neurodyn.metrics import rate_r2
    from neurodyn.models.baselines import (
        condition_psth,
        fa_grid_edge,
        select_condition_psth,
        select_fa,
        select_smoothing,
        smooth,
        smoothing_grid_edge,
    )

    res: dict = {}
    sigma, sigma_scores = select_smoothing(x[sel])  # the grid grows while the best width is at its edge
    res["gaussian_smoothing"] = float(rate_r2(truth[rep], smooth(x[rep], sigma)))
    res["gaussian_smoothing_sigma_bins"] = sigma
    res["gaussian_smoothing_sigma_edge"] = smoothing_grid_edge(sigma, sigma_scores)

    # fit trials' PSTH, width chosen on the select trials' spikes and labels; the grid grows as the two above
    psth_sigma, psth_scores = select_condition_psth(x[fit], cond[fit], x[sel], cond[sel])
    res["condition_psth_oracle"] = float(rate_r2(truth[rep], condition_psth(x[fit], cond[fit], cond[rep], psth_sigma)))
    res["condition_psth_oracle_sigma_bins"] = psth_sigma
    res["condition_psth_oracle_sigma_edge"] = smoothing_grid_edge(psth_sigma, psth_scores)

    fa, fa_scores = select_fa(x[fit], x[sel], seed=seed)  # the grid grows while the choice is at an edge
    res["factor_analysis"] = float(rate_r2(truth[rep], fa.predict(x[rep])))
    res["factor_analysis_sigma_bins"], res["factor_analysis_dim"] = fa.sigma_bins, fa.n_components
    res["factor_analysis_edge"] = fa_grid_edge((fa.sigma_bins, fa.n_components), fa_scores)
    return res


def _simulate(seed: int, sizes):
    import numpy as np

    from neurodyn.data.synthetic.lorenz import simulate_lorenz

    sim = simulate_lorenz(seed=seed)
    fit, sel, rep = three_way_split(sim.condition_ids, sizes, seed)
    return sim, sim.spikes.astype(np.float64), (fit, sel, rep)


def _data_digest(sim, x, splits) -> str:
    """SHA-256 of the data a seed's figures are made from (the spikes, the true rates, the condition labels and
    the fit / select / report trials): a seed log records it, and ``--reuse`` takes a log only when this run's
    simulator and split give the same data (a changed simulator made stale fits look reusable)."""
    import hashlib

    import numpy as np

    digest = hashlib.sha256()
    for array in (x, sim.truth, sim.condition_ids, *splits):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def fit_member(seed: int, member: int, epochs: int, sizes, model_overrides: dict, opt_overrides: dict,
               threads: int, select_every: int) -> dict:
    """Train ensemble member ``member`` of seed ``seed`` (data of ``seed``, initialisation and batches of
    ``member_seed(seed, member)``): the model at the chosen epoch and at the last, as bytes."""
    import io

    import numpy as np
    import torch

    from neurodyn.demo import LORENZ_MODEL, LORENZ_OPT
    from neurodyn.models.ensemble import member_seed
    from neurodyn.training.recipes import fit_langevinflow

    torch.set_num_threads(threads)
    _, x, (fit, sel, _) = _simulate(seed, sizes)
    model = {**LORENZ_MODEL, **model_overrides}
    opt = {**LORENZ_OPT, **opt_overrides}
    empty = np.zeros(x.shape[:2] + (0,))
    module, seconds = fit_langevinflow(x[fit], empty[fit], x[sel], empty[sel], bin_ms=20, epochs=epochs,
                                       seed=member_seed(seed, member), model=model, opt=opt, batch_size=64,
                                       select_every=select_every, check_val_every_n_epoch=epochs + 1)

    def as_bytes():
        buf = io.BytesIO()
        torch.save(module.model, buf)
        return buf.getvalue()

    chosen = as_bytes()
    selection = module.selection
    module.load_state_dict(module.last_state)
    return {"seed": seed, "member": member, "epochs": epochs, "fit_seed": member_seed(seed, member), "chosen": chosen,
            "last": as_bytes(), "selection": selection, "train_seconds": seconds, "model": model, "optimiser": opt}


def _load(blob: bytes):
    import io

    import torch

    return torch.load(io.BytesIO(blob), map_location="cpu", weights_only=False)


def score_seed(seed: int, sizes, fits: list[dict], out: str | None, baselines: bool = True,
               candidates: list[dict] | None = None, epochs_tried: list[int] | None = None) -> dict:
    """Report-trial figures of seed ``seed`` from its members' fits (member 0 first): the single fit
    (member 0) as before, and with several members their rate ensemble, with the select trials'
    held-out likelihood of both (the observable figure that says whether the ensemble is preferred).
    ``candidates``: member-0 fits of every schedule length tried (the chosen one among them), reported
    with their select likelihood (which chose) and report R2 (never used); ``epochs_tried``: the schedule
    lengths tried (recorded for ``--reuse``)."""
    import torch

    from neurodyn.metrics import rate_r2
    from neurodyn.models.ensemble import RateEnsemble
    from neurodyn.training.recipes import heldout_loglik

    start = time.perf_counter()
    fits = sorted(fits, key=lambda f: f["member"])
    sim, x, (fit, sel, rep) = _simulate(seed, sizes)
    truth, cond = sim.truth, sim.condition_ids
    res: dict = {"seed": seed, "n_trials": {"fit": len(fit), "select": len(sel), "report": len(rep)},
                 "data_sha256": _data_digest(sim, x, (fit, sel, rep))}
    if baselines:
        res.update(_baselines(x, truth, cond, fit, sel, rep, seed))
    res["baseline_seconds"] = time.perf_counter() - start

    def predict(model, mode=None):
        with torch.no_grad():
            return model.predict(torch.as_tensor(x[rep], dtype=torch.float32), mode=mode)["rates"].numpy()

    first = fits[0]
    chosen = [_load(f["chosen"]) for f in fits]
    keep = float(first["model"].get("cd_keep_prob", 0.7))

    def pass_chosen_on_select(model) -> tuple[str, dict]:
        """The pass (deterministic 'mean' or 50-sample 'sample') with the higher select-trial held-out
        likelihood -- the criterion that chose the epoch -- and both likelihoods."""
        scores = {m: heldout_loglik(model, x[sel], keep_prob=keep, mode=m) for m in EVAL_MODES}
        return max(scores, key=scores.get), scores

    mode, sel_by_mode = pass_chosen_on_select(chosen[0])
    # both passes' report R2, recorded for comparison; the chosen one is reported, neither chooses
    r2_by_mode = {m: float(rate_r2(truth[rep], predict(chosen[0], m))) for m in EVAL_MODES}
    res["langevinflow"] = r2_by_mode[mode]
    res["eval_mode"] = mode
    res["select_loglik_by_mode"] = sel_by_mode
    res["langevinflow_mean_pass"] = r2_by_mode["mean"]
    res["langevinflow_sampled_pass"] = r2_by_mode["sample"]
    res["langevinflow_last_epoch"] = float(rate_r2(truth[rep], predict(_load(first["last"]), mode)))
    res.update(langevinflow_best_epoch=first["selection"]["best_epoch"],
               langevinflow_select_loglik=first["selection"]["best_score"],
               langevinflow_select_history=first["selection"]["history"], train_seconds=first["train_seconds"],
               model=first["model"], optimiser=first["optimiser"], members=len(fits))
    res["epochs"] = first["epochs"]
    if candidates:
        res["epoch_candidates"] = {
            str(c["epochs"]): {"select_loglik": c["selection"]["best_score"],
                               "best_epoch": c["selection"]["best_epoch"],
                               "report_r2": float(rate_r2(truth[rep], predict(_load(c["chosen"])))),
                               "train_seconds": c["train_seconds"]} for c in candidates}
    if len(fits) > 1:
        ensemble = RateEnsemble(chosen)
        ens_mode, ens_by_mode = pass_chosen_on_select(ensemble)
        res["langevinflow_ensemble"] = float(rate_r2(truth[rep], predict(ensemble, ens_mode)))
        res["ensemble_eval_mode"] = ens_mode
        res["ensemble_select_loglik_by_mode"] = ens_by_mode
        res["langevinflow_members"] = [float(rate_r2(truth[rep], predict(m, ens_mode))) for m in chosen]
        # the selection criterion for the single fit and the ensemble alike, each in its chosen pass
        res["select_loglik_single"] = sel_by_mode[mode]
        res["select_loglik_ensemble"] = ens_by_mode[ens_mode]
        res["member_fit_seeds"] = [f["fit_seed"] for f in fits]
        res["member_best_epochs"] = [f["selection"]["best_epoch"] for f in fits]
        res["ensemble_train_seconds"] = sum(f["train_seconds"] for f in fits)
    res["seconds"] = sum(f["train_seconds"] for f in fits) + time.perf_counter() - start
    if epochs_tried is not None:
        res["epoch_candidates_tried"] = list(epochs_tried)
    if out:
        from neurodyn.io import atomic_path

        with atomic_path(Path(out) / f"seed{seed}.json") as tmp:  # --reuse never meets a half-written log
            tmp.write_text(json.dumps(res, indent=1))
    print(json.dumps({k: v for k, v in res.items() if k != "langevinflow_select_history"}), flush=True)
    return res


def run_seed(seed: int, epochs: int, sizes, model_overrides: dict, opt_overrides: dict, threads: int,
             select_every: int, out: str | None, baselines: bool = True, members: int = 1) -> dict:
    """One seed in this process: ``members`` fits, then :func:`score_seed`."""
    fits = [fit_member(seed, m, epochs, sizes, model_overrides, opt_overrides, threads, select_every)
            for m in range(members)]
    return score_seed(seed, sizes, fits, out, baselines=baselines)


#: what this script takes from a reused seed log (the baselines are scored again); with several members, also
#: :data:`ENSEMBLE_KEYS`
REUSED_KEYS = ("langevinflow", "langevinflow_last_epoch", "langevinflow_mean_pass", "langevinflow_sampled_pass",
               "eval_mode", "train_seconds", "seconds", "epochs", "n_trials")
ENSEMBLE_KEYS = ("langevinflow_ensemble", "ensemble_train_seconds", "ensemble_eval_mode", "select_loglik_single",
                 "select_loglik_ensemble")


def reusable_log(path: Path, seed: int, epoch_list: list[int], sizes, select_every: int, members: int,
                 model_overrides: dict, opt_overrides: dict, data_digest: str) -> dict | None:
    """The per-seed log ``path`` (``--reuse``) when it was written with these settings, from the same data
    (``data_digest``: :func:`_data_digest`; a log without one is older and trained again) and holds what this run
    takes from it, else None (trained again); :class:`OptionValueError` naming the file when it is no such log
    (not JSON, not an object, its settings of other kinds)."""
    from neurodyn.demo import LORENZ_MODEL, LORENZ_OPT

    r = read_json_object(path, "a seed log of lorenz.py")
    try:
        hist = r.get("langevinflow_select_history") or [[None]]
        n_trials = r.get("n_trials", {})
        same = (r.get("seed") == seed and r.get("model") == {**LORENZ_MODEL, **model_overrides}
                and r.get("optimiser") == {**LORENZ_OPT, **opt_overrides}
                and r.get("epoch_candidates_tried", [hist[-1][0]]) == epoch_list
                and hist[0][0] == select_every
                and n_trials.get("fit") == 65 * sizes[0] and n_trials.get("select") == 65 * sizes[1]
                and r.get("members", 1) == members and r.get("data_sha256") == data_digest)
    except (AttributeError, IndexError, KeyError, TypeError) as err:
        raise OptionValueError(f"{path}: not a seed log of lorenz.py (its settings cannot be read: "
                               f"{type(err).__name__}: {err})") from None
    # logs from before the pass was chosen on the select trials have no eval_mode: trained again
    keys = REUSED_KEYS + (ENSEMBLE_KEYS if members > 1 else ())
    return r if same and all(k in r for k in keys) else None


@exits_on_signals
def main(argv=None) -> int:
    parser = BenchmarkParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=parse_seeds, default=[0, 1, 2], help="e.g. 0,1,2 or 0-4 (default 0,1,2)")
    parser.add_argument("--epochs", type=count_list, default=[200, 400],
                        help="training epochs (cosine schedule), or several, e.g. 200,400: then each seed trains one "
                             "fit per value and keeps the one with the highest select-trial held-out likelihood "
                             "(its ensemble members use that value); default 200,400")
    parser.add_argument("--split", type=count_list, default=[20, 2, 2],
                        help="fit,select,report trials per condition (default 20,2,2)")
    parser.add_argument("--select-every", type=positive_int, default=5, help="score the select trials every N epochs")
    parser.add_argument("--members", type=positive_int, default=3,
                        help="LangevinFlow fits per seed whose rates are averaged (fit seeds seed + 1000 m; "
                             "member 0 is also reported alone; default 3)")
    parser.add_argument("--jobs", type=positive_int, default=1, help="fits trained in parallel processes (default 1)")
    parser.add_argument("--threads", type=positive_int, default=1,
                        help="torch intra-op threads per process (default 1)")
    parser.add_argument("--out", type=output_folder, default="data/bench_lorenz",
                        help="per-seed logs (default data/bench_lorenz)")
    parser.add_argument("--no-write", action="store_true", help="do not write benchmarks/results/lorenz.json")
    parser.add_argument("--reuse", action="store_true",
                        help="take a seed's result from OUT/seedN.json when it was run with the same settings "
                             "on the same simulated data (logs record its SHA-256; logs written before that are "
                             "trained again) (e.g. seeds run as separate processes); the results file lists which "
                             "were reused. "
                             "The logs are read before any training: a file that is no such log is refused")
    parser.add_argument("--model", nargs="*", default=[], metavar="KEY=VALUE",
                        help="LangevinFlowConfig overrides, e.g. hidden_size=128")
    parser.add_argument("--opt", nargs="*", default=[], metavar="KEY=VALUE",
                        help="LangevinFlowModule optimiser overrides, e.g. lr=2e-3")
    args = parser.parse_args(argv)
    seeds, epoch_list, sizes = args.seeds, args.epochs, tuple(args.split)
    if len(set(epoch_list)) != len(epoch_list):
        parser.error(f"argument --epochs: takes distinct numbers, e.g. 200 or 200,400, got {epoch_list}")
    if len(sizes) != 3:
        parser.error(f"argument --split: takes three numbers (fit,select,report), e.g. 20,2,2, got {list(sizes)}")
    model_overrides = key_values(args.model, parser, "--model")
    opt_overrides = key_values(args.opt, parser, "--opt")
    from neurodyn.demo import LORENZ_MODEL, LORENZ_OPT

    check_langevinflow_settings({**LORENZ_MODEL, **model_overrides}, {**LORENZ_OPT, **opt_overrides}, parser)
    if not args.no_write:  # before any work, not when the results are written
        check_results_folder(name="lorenz")
    start = time.perf_counter()
    reused, data = {}, {}
    if args.reuse:  # every log read and checked before any work: a bad one is one line, exit code 2
        for s in seeds:
            path = Path(args.out) / f"seed{s}.json"
            if path.is_file():
                data[s] = _simulate(s, sizes)
                try:
                    r = reusable_log(path, s, epoch_list, sizes, args.select_every, args.members, model_overrides,
                                     opt_overrides, _data_digest(*data[s]))
                except OptionValueError as err:
                    parser.error(f"argument --reuse: {err}")
                if r is not None:
                    reused[s] = r
                else:
                    print(f"{path}: other settings or data (its data_sha256), not reused", file=sys.stderr)
    for s, r in reused.items():  # the baselines need no training: scored by this run's code, never taken from a log
        sim, x, splits = data[s]
        r.update(_baselines(x, sim.truth, sim.condition_ids, *splits, s))
    del data
    todo = [s for s in seeds if s not in reused]
    common = (sizes, model_overrides, opt_overrides, args.threads, args.select_every)

    def train(units):
        if args.jobs > 1 and len(units) > 1:
            import multiprocessing as mp

            with WorkerPool(max_workers=args.jobs, mp_context=mp.get_context("spawn")) as pool:
                return list(pool.map(fit_member, *zip(*[(*u, *common) for u in units])))
        return [fit_member(*u, *common) for u in units]

    # member 0 with every schedule length; then the other members with the length chosen on the select trials
    first = train([(s, 0, ep) for s in todo for ep in epoch_list])
    chosen_epochs = {s: max((f for f in first if f["seed"] == s), key=lambda f: f["selection"]["best_score"])["epochs"]
                     for s in todo}
    rest = train([(s, m, chosen_epochs[s]) for s in todo for m in range(1, args.members)])
    fresh = []
    for s in todo:
        tried = [f for f in first if f["seed"] == s]
        fits = [f for f in tried + rest if f["seed"] == s and f["epochs"] == chosen_epochs[s]]
        fresh.append(score_seed(s, sizes, fits, args.out, candidates=tried if len(epoch_list) > 1 else None,
                                epochs_tried=epoch_list))
    by_seed = {**reused, **{r["seed"]: r for r in fresh}}
    per_seed = [by_seed[s] for s in seeds]
    seconds = time.perf_counter() - start

    ensemble = args.members > 1
    methods = ({"langevinflow_ensemble": f"LangevinFlow, rate ensemble of {args.members} fits (epochs chosen on "
                                         f"select trials)"} if ensemble else {}) | METHODS
    headline = "langevinflow_ensemble" if ensemble else "langevinflow"
    extra = ("langevinflow_mean_pass", "langevinflow_sampled_pass",
             *(("select_loglik_single", "select_loglik_ensemble") if ensemble else ()))
    figures = {key: summarize(r[key] for r in per_seed) for key in (*methods, *extra)}
    figures["train_seconds"] = summarize(r["train_seconds"] for r in per_seed)
    if ensemble:
        figures["ensemble_train_seconds"] = summarize(r["ensemble_train_seconds"] for r in per_seed)
        figures["ensemble_preferred_on_select"] = [r["select_loglik_ensemble"] > r["select_loglik_single"]
                                                   for r in per_seed]
        figures["ensemble_eval_mode"] = [r["ensemble_eval_mode"] for r in per_seed]
    figures["eval_mode"] = [r["eval_mode"] for r in per_seed]
    figures["per_seed"] = per_seed
    figures["headline"] = headline
    goal = all(r[headline] >= 0.95 and r[headline] > r["condition_psth_oracle"] for r in per_seed)
    figures["goal_met"] = goal
    n_fit, n_sel, n_rep = sizes
    split = {"rule": f"per condition, trials shuffled with numpy default_rng([seed, 20261203]): {n_fit} fit / "
                     f"{n_sel} select / {n_rep} report", "per_condition": list(sizes),
             "trials": per_seed[0]["n_trials"], "simulator": "simulate_lorenz(seed=seed): 65 conditions x 24 "
                                                           "trials, 29 neurons, 50 bins of 20 ms"}
    from neurodyn.models.ensemble import MEMBER_SEED_STEP

    selection = {
        "langevinflow": f"epoch with the highest held-out-entry Poisson log-likelihood on the select trials, "
                        f"scored every {args.select_every} epochs (inputs hidden with the training keep "
                        f"probability, 3 fixed masks; deterministic pass); then, for those weights, the pass -- "
                        f"deterministic ('mean') or 50 sampled passes averaged in log-rate ('sample') -- with the "
                        f"higher held-out-entry likelihood on the same select trials; the last epoch's weights are "
                        f"reported too, in the chosen pass",
        **({"langevinflow_ensemble": f"{args.members} members fixed in advance (fit seeds seed + "
                                     f"{MEMBER_SEED_STEP} m, m = 0..{args.members - 1}; member 0 is the single "
                                     "fit), each with its epoch chosen as above; rates averaged; the pass chosen "
                                     "for the ensemble as a whole, as above. The select "
                                     "trials' held-out likelihood of the ensemble and of the single fit is "
                                     "reported (the observable figure that prefers one or the other)"}
           if ensemble else {}),
        **({"epochs": f"one member-0 fit per schedule length ({', '.join(map(str, epoch_list))} epochs, cosine); "
                      "the length whose fit has the highest select-trial held-out likelihood (at its chosen "
                      "epoch) is kept, and the other members train with it"} if len(epoch_list) > 1 else {}),
        "gaussian_smoothing": "width (bins) with the highest leave-one-bin-out Poisson log-likelihood on the select "
                              "trials; the grid (neurodyn.models.baselines.select_smoothing) grows while the best "
                              "width is at its edge, up to the trial length (gaussian_smoothing_sigma_edge: "
                              "'widest' when the likelihood still rises there)",
        "factor_analysis": "width and number of factors with the highest leave-one-neuron-out Poisson "
                           "log-likelihood on the select trials (FA fitted on fit trials; the grid grows from a "
                           "choice at its edge, one axis at a time, until the likelihood turns down: "
                           "factor_analysis_edge names an edge the choice is still on)",
        "condition_psth_oracle": "smoothing width of the fit-trial PSTH with the highest Poisson log-likelihood "
                                 "of the select trials (spikes and condition labels only); the grid "
                                 "(neurodyn.models.baselines.select_condition_psth) grows from a width at its edge "
                                 "as the Gaussian smoothing's does (condition_psth_oracle_sigma_edge: the edge "
                                 "the choice is still on)",
        "report": "rate R2 vs true rates on the report trials, computed once per seed; never used to choose",
    }
    seed_cols = " / ".join(str(s) for s in seeds)
    rows = [[label, mean_sd(figures[key]), " / ".join(f"{v:.3f}" for v in figures[key]["values"])]
            for key, label in methods.items()]
    notes = (f"Report-trial rate R² vs the true rates ({n_fit} fit / {n_sel} select / {n_rep} report trials per "
             f"condition, 65 conditions). Everything chosen (epoch, evaluation pass, widths, factors) is chosen "
             f"on the select "
             f"trials by a held-out spike likelihood; true rates are used only to score. LangevinFlow "
             + (f"{epoch_list[0]} epochs" if len(epoch_list) == 1 else
                f"{' or '.join(map(str, epoch_list))} epochs, the schedule with the higher select-trial held-out "
                f"likelihood of member 0 kept per seed (kept: " + " / ".join(str(r["epochs"]) for r in per_seed)
                + "; both member-0 fits' figures are in the results file)")
             + f", mean training time {figures['train_seconds']['mean']:.0f} s per fit "
             f"({args.threads} torch thread" + ("" if args.reuse else f", {args.jobs} fit(s) in "
                                                "parallel") + ").")
    if ensemble:
        sel_single, sel_ens = figures["select_loglik_single"], figures["select_loglik_ensemble"]
        notes += (f" The ensemble (the headline) averages the rates of {args.members} fits with different "
                  f"initialisations, fixed in advance ({args.members}x the training time); its select-trial held-out "
                  f"likelihood is {sel_ens['mean']:.4f} vs the single fit's {sel_single['mean']:.4f} nats per entry "
                  f"(higher on {sum(figures['ensemble_preferred_on_select'])} of {len(seeds)} seeds).")
    passes = " / ".join(r["eval_mode"] for r in per_seed)
    notes += (f" Pass chosen on the select trials (single fit, per seed): {passes}"
              + (f"; ensemble: {' / '.join(figures['ensemble_eval_mode'])}" if ensemble else "")
              + f"; report R² of the single fit in each pass, never used to choose: deterministic "
              f"{mean_sd(figures['langevinflow_mean_pass'])}, sampled {mean_sd(figures['langevinflow_sampled_pass'])}.")
    notes += f" Goal (>= 0.95 on every seed and above the PSTH oracle): {'met' if goal else 'not met'}."
    readme = {"title": f"Lorenz, rate R² on report trials ({len(seeds)} seeds)",
              "columns": ["Method", "R² mean ± sd", f"per seed ({seed_cols})"], "rows": rows, "notes": notes}
    if reused:
        split["reused_seed_logs"] = {str(s): f"{args.out}/seed{s}.json" for s in sorted(reused)}
        walls = " / ".join(f"{reused[s]['seconds']:.0f}" for s in sorted(reused))
        notes += (f" Seeds {', '.join(map(str, sorted(reused)))} were trained by earlier runs of this script with the "
                  f"same settings and read from their logs (--reuse; the baselines were scored again by this run), "
                  f"so this run's own time covers only reading them and the baselines; "
                  f"the seeds' fits and scoring took {walls} s (per seed, summed over its fits, which shared "
                  f"the cores with other runs).")
        readme["notes"] = notes
    record = {"split": split, "selection": selection, "seeds": seeds, "figures": figures}
    if not args.no_write:
        write_results("lorenz", figures, seconds=seconds, readme=readme, split=split, selection=selection,
                      seeds=seeds)
    print(json.dumps({k: v for k, v in record.items() if k != "figures"}
                     | {"figures": {k: v for k, v in figures.items() if k != "per_seed"}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
