"""One-hot HMM-GLM: the paper's reference code beside neurodyn, on the same data, in one process.

Li et al. (ICLR 2024) published their code at https://github.com/JerrySoybean/onehot-hmmglm (no licence:
neurodyn contains none of it). Point ``--reference`` at a checkout of it; this script imports the
paper-era package (``hmmglm.deprecated``, the one its demo notebook uses) from there and drives it with
the demo's own procedure, written out here: ``OnehotHMMGLM(5, N, exp basis (decay 1, 5 bins), Poisson,
Sigmoid, Softplus)``, bias at the mean count, Adam lr 0.01, ``torch.manual_seed(seed)``, 10 epochs over the
training sequences in order, each: forward-backward, Gumbel-softmax adjacency, 50 steps of ``-(m_step +
adjacency prior)`` with ``correct_extreme_onehot`` after each, softmax adjacency again; the fitted model
with its ``hard`` adjacency (as the demo keeps it).

Per seed, on neurodyn's port of the paper's simulator (5 states, 20 neurons, 50 x 2000 bins; 30 fitted,
20 reported; nothing selected on any data), alternating which goes first from seed to seed:

- ``reference``: the reference code, demo procedure (float32, as it runs);
- ``default``: neurodyn's default one-hot recipe (``fit_recipe(..., "default")``);
- ``paper``: neurodyn's ``"paper"`` recipe, its reproduction of the demo procedure (``--no-paper`` skips it).

Each fitted reference model is copied into a neurodyn ``HMMGLM`` (same couplings, bias and transitions;
the copy's log-emissions on a training sequence are checked against the reference's own, in float64)
and scored by the same code as neurodyn's models (``neurodyn.training.hmmglm_scores.evaluate_model``):
test log-likelihood per spike, state accuracy, connection types by the common read-out and by the
one-hot argmax (the paper code's), weight error of the reported couplings (each entry's most probable type
times its strength: the reference's ``hard`` couplings, neurodyn's ``readout.reported_couplings``; neurodyn's
fits add ``weight_error_softmax``, the softmax mixture's). Times are wall-clock and CPU seconds of the fit alone,
``--threads`` torch threads (default 1), numba kernels compiled before any timing.

With ``--repeats R`` the reference and neurodyn's paper recipe are each fitted R times per data seed with
noise seeds ``seed + 1000 r`` (Gumbel noise, sequence order; same data): both procedures are stochastic, and
one fit each says little about whether they behave alike, so the README table also gives their spread
over all fits.

Usage::

    python benchmarks/onehot_reference.py --reference /path/to/onehot-hmmglm --seeds 0,1,2 --repeats 4

Writes ``benchmarks/results/onehot_reference.json`` (``--no-write`` to skip) with the fit-time ratio of
neurodyn's default recipe to the reference code's (issue 11, item 5d: goal <= 0.1).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _results import (  # noqa: E402
    BenchmarkParser,
    OptionValueError,
    check_results_folder,
    checkout_with,
    exits_on_signals,
    mean_sd,
    parse_seeds,
    positive_int,
    summarize,
    write_results,
)

SIZE = dict(n_states=5, n_neurons=20, n_sequences=50, n_bins=2000)
N_TRAIN = 30
DEMO = dict(n_epochs=10, n_sub_epochs=50, lr=0.01, decay=1.0, window_size=5, time_span=5.0)
GOAL_TIME_RATIO = 0.1
#: noise seed of repeat r on data seed s: s + 1000 r (Gumbel noise, sequence order; the data stay the same)
REPEAT_SEED_STEP = 1000
FIDELITY = ("state_accuracy", "type_accuracy", "type_f1", "type_accuracy_argmax", "test_ll")
IMPLS = ("reference", "default", "paper")
LABELS = {"reference": "reference code, demo procedure (float32)",
          "default": "neurodyn, default recipe",
          "paper": "neurodyn, `paper` recipe (its reproduction of the demo procedure)"}
METRICS = ("test_ll", "state_accuracy", "type_accuracy", "type_f1", "type_accuracy_argmax", "type_f1_argmax",
           "weight_error", "weight_error_softmax", "fit_seconds", "fit_cpu_seconds")
#: largest |log-emission difference| (nats per bin) accepted between the reference model and its neurodyn
#: copy in float64 after the known epsilon term is removed (:func:`emission_parity`): float64 rounding of
#: sums of ~20 terms of size <= 40 is ~1e-13; a wrong copy differs by O(0.1-10)
PARITY_TOL = 1e-9
#: the reference code, and the file that marks a checkout of it (the paper-era modules imported from it)
REFERENCE_REPO = "JerrySoybean/onehot-hmmglm"
REFERENCE_MARKER = "hmmglm/hmmglm/deprecated/model.py"


def load_reference(path: str):
    """The paper-era modules of a checkout of JerrySoybean/onehot-hmmglm (``--reference``, checked to hold
    :data:`REFERENCE_MARKER` when parsed)."""
    package = Path(path).expanduser().resolve() / "hmmglm"
    sys.path.insert(0, str(package))  # its hmmglm.egg-info there gives importlib.metadata the version
    try:
        from hmmglm.deprecated import distributions, model, nonlinearities, utils
    except (ImportError, SyntaxError) as err:  # another version of the code, or its dependencies missing
        raise OptionValueError(f"{path}: its paper-era modules (hmmglm.deprecated) do not import "
                               f"({type(err).__name__}: {err})") from None
    return model, distributions, nonlinearities, utils


def fit_reference(ref, train, seed: int):
    """The demo notebook's one-hot training, on ``train`` (B, T, N) float32; returns the model (hard adjacency)."""
    import torch

    model, distributions, nonlinearities, utils = ref
    n_seq, _, n_neurons = train.shape
    basis = utils.exp_basis(decay=DEMO["decay"], window_size=DEMO["window_size"], time_span=DEMO["time_span"])
    convolved = utils.convolve_spikes_with_basis(train, basis)
    m = model.OnehotHMMGLM(SIZE["n_states"], n_neurons, basis, distributions.Poisson(), nonlinearities.Sigmoid(),
                           nonlinearities.Softplus())
    m._bias.data = train.mean(dim=(0, 1))
    optimizer = torch.optim.Adam(m.parameters(), lr=DEMO["lr"])
    torch.manual_seed(seed)
    for _epoch in range(DEMO["n_epochs"]):
        for b in range(n_seq):
            gamma, xi = m.forward_backward(train[b], convolved[b])
            m.set_adjacency_type("gumbel_softmax")
            for _ in range(DEMO["n_sub_epochs"]):
                loss = -m.m_step(train[b], convolved[b], gamma, xi) - m.adjacency_prior_log_likelihood()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                m.correct_extreme_onehot()
            m.set_adjacency_type("softmax")
    m.set_adjacency_type("hard")
    return m


def as_neurodyn(ref_model):
    """A neurodyn ``HMMGLM`` (float64) with the reference model's couplings, bias and transitions.

    The couplings are formed by the reference's own ``weight`` on a float64 copy of its parameters.
    """
    import copy

    import torch
    from hmmglm_synthetic import equivalent_hmmglm

    ref64 = copy.deepcopy(ref_model).double()
    with torch.no_grad():
        return equivalent_hmmglm(ref64.weight.numpy(), ref64._bias.numpy(), ref64.transition_matrix.numpy())


def emission_parity(ref, ref_model, copy, spikes) -> float:
    """max over bins and states of |log p(x_t | s)| reference - neurodyn copy, float64, on one sequence.

    The reference's Poisson term is ``x log(λ + 1e-8)`` on a rate already floored at ``1e-8``; neurodyn's is
    ``x log λ``. That known difference, ``Σ_n x_n log1p(1e-8 / λ_n)``, is removed, so what remains is
    rounding (~1e-12) unless the copy is wrong (orientation, bias, basis: O(0.1-10) nats).
    """
    import copy as copy_module

    import torch

    utils = ref[3]
    ref64 = copy_module.deepcopy(ref_model).double()
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # the reference builds its basis and padding in the default dtype
    try:
        basis = utils.exp_basis(decay=DEMO["decay"], window_size=DEMO["window_size"], time_span=DEMO["time_span"])
        x = spikes.double()
        h = utils.convolve_spikes_with_basis(x[None], basis)[0]
    finally:
        torch.set_default_dtype(default)
    with torch.no_grad():
        rates = ref64.firing_rates(h)  # (S, T, N)
        ref_ll = ref64.distribution.log_likelihood(x[None], rates).sum(-1).T  # (T, S)
        ref_ll = ref_ll - (x[None] * torch.log1p(1e-8 / rates)).sum(-1).T
        ours = copy.log_emissions(x[None])[0]  # a float64 model forms its history from the exact basis
    return float((ref_ll - ours).abs().max())


def run_seed(seed: int, ref, args) -> dict:
    import numpy as np
    import torch

    from neurodyn.data.synthetic.switching_glm import simulate_switching_glm
    from neurodyn.metrics.states import connection_type_accuracy, connection_type_f1
    from neurodyn.models.hmmglm.recipes import fit_recipe
    from neurodyn.training.hmmglm_scores import evaluate_model

    sim = simulate_switching_glm(seed=seed, **SIZE)
    train = torch.tensor(sim.spikes[:N_TRAIN])
    test, test_states, train_states = sim.spikes[N_TRAIN:], sim.states[N_TRAIN:], sim.states[:N_TRAIN]
    impls = [i for i in IMPLS if not (i == "paper" and args.no_paper)]
    out: dict = {"repeats": []}
    for repeat in range(args.repeats):
        noise = seed + REPEAT_SEED_STEP * repeat  # repeat 0: the seed itself
        todo = impls if repeat == 0 else [i for i in impls if i != "default"]
        shift = (seed + repeat) % len(todo)  # each fit goes first in turn
        order = todo[shift:] + todo[:shift]
        rows = {"noise_seed": noise, "order": order}
        for impl in order:
            torch.manual_seed(noise)
            start, cpu = time.perf_counter(), time.process_time()
            if impl == "reference":
                ref_model = fit_reference(ref, train.float(), noise)
            else:
                model, _ = fit_recipe(train.double(), SIZE["n_states"], recipe=impl, seed=noise)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu
            extra = {"fit_seconds": round(wall, 2), "fit_cpu_seconds": round(cpu, 2)}
            if impl == "reference":
                model = as_neurodyn(ref_model)
                extra["emission_parity"] = emission_parity(ref, ref_model, model, train[0])
                if extra["emission_parity"] > PARITY_TOL:
                    raise RuntimeError(f"seed {seed}: the neurodyn copy of the reference model disagrees with it "
                                       f"(max |Δ log p(x_t | s)| {extra['emission_parity']:.2e} > {PARITY_TOL})")
            r = evaluate_model(model, test, test_states, sim.connection_types, sim.weights,
                               train_spikes=train.to(model.bias.dtype), train_states=train_states)
            row = {k: r.get(k) for k in METRICS if r.get(k) is not None} | extra
            if impl == "reference":  # the paper code's read-out: argmax of its adjacency logits
                perm = np.asarray(r["permutation"])
                est = ref_model.adjacency_index.numpy()
                row["type_accuracy_argmax"] = connection_type_accuracy(sim.connection_types, est, perm)
                row["type_f1_argmax"] = connection_type_f1(sim.connection_types, est, perm)
            rows[impl] = row
            print(f"seed {seed} noise {noise} {impl}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items()
                                                                 if isinstance(v, float)), flush=True)
        if repeat == 0:
            out.update({k: v for k, v in rows.items() if k in impls} | {"order": order})
        else:
            out["repeats"].append(rows)
    ref_row, default = out["reference"], out["default"]
    out["time_ratio_default_vs_reference"] = default["fit_seconds"] / ref_row["fit_seconds"]
    out["cpu_ratio_default_vs_reference"] = default["fit_cpu_seconds"] / ref_row["fit_cpu_seconds"]
    if "paper" in out:
        out["time_ratio_paper_vs_reference"] = out["paper"]["fit_seconds"] / ref_row["fit_seconds"]
    return out


@exits_on_signals
def main(argv=None) -> int:
    p = BenchmarkParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reference", required=True, metavar="PATH",
                   type=checkout_with(REFERENCE_MARKER, REFERENCE_REPO),
                   help="a checkout of https://github.com/JerrySoybean/onehot-hmmglm")
    p.add_argument("--seeds", type=parse_seeds, default=[0, 1, 2], help="simulator seeds (default 0,1,2)")
    p.add_argument("--threads", type=positive_int, default=1, help="torch threads (default 1)")
    p.add_argument("--no-paper", action="store_true", help="skip neurodyn's `paper` recipe")
    p.add_argument("--repeats", type=positive_int, default=1,
                   help="fits of the reference and of the paper recipe per data seed, noise seeds seed + 1000 r "
                        "(default 1): both are stochastic, so their match is a match of distributions")
    p.add_argument("--no-write", action="store_true", help="print only")
    args = p.parse_args(argv)
    if not args.no_write:  # before any work, not when the results are written
        check_results_folder(name="onehot_reference")
    try:
        ref = load_reference(args.reference)
    except OptionValueError as err:
        p.error(f"argument --reference: {err}")
    import torch
    from hmmglm_synthetic import _warm_up_kernels

    torch.set_num_threads(args.threads)
    _warm_up_kernels()
    start = time.perf_counter()
    per_seed = {str(s): run_seed(s, ref, args) for s in args.seeds}
    seconds = time.perf_counter() - start
    runs = list(per_seed.values())
    impls = [i for i in IMPLS if i in runs[0]]
    summary = {i: {k: summarize(r[i][k] for r in runs) for k in METRICS if all(k in r[i] for r in runs)}
               for i in impls}
    ratios = {k: summarize(r[k] for r in runs) for k in runs[0] if k.startswith(("time_ratio", "cpu_ratio"))}
    worst = max(r["time_ratio_default_vs_reference"] for r in runs)
    fidelity = {i: {k: summarize([r[i][k] for r in runs] + [x[i][k] for r in runs for x in r["repeats"]])
                    for k in FIDELITY}
                for i in ("reference", "paper") if i in impls}
    figures = {"per_seed": per_seed, "summary": summary, "ratios": ratios, "repeats": args.repeats,
               "all_runs": fidelity,
               "goal_time_ratio": GOAL_TIME_RATIO, "goal_time_met_each_seed": bool(worst <= GOAL_TIME_RATIO),
               "emission_parity_max": max(r["reference"]["emission_parity"] for r in runs)}
    cols = ("test_ll", "state_accuracy", "type_accuracy", "type_f1", "type_accuracy_argmax", "type_f1_argmax",
            "fit_seconds")
    rows = [[LABELS[i], *(mean_sd(summary[i][k], 1 if k == "fit_seconds" else 3) if k in summary[i] else "—"
                          for k in cols),
             mean_sd(ratios[f"time_ratio_{i}_vs_reference"], 3) if f"time_ratio_{i}_vs_reference" in ratios else ""]
            for i in impls]
    if args.repeats > 1:
        rows += [[f"{LABELS[i]}, all {fidelity[i]['state_accuracy']['n']} fits ({args.repeats} noise seeds per "
                  "data seed)", *(mean_sd(fidelity[i][k]) if k in fidelity[i] else "—" for k in cols[:-1]), "—", ""]
                 for i in fidelity]
    seeds = ", ".join(per_seed)
    readme = {
        "title": "One-hot HMM-GLM: the paper's reference code beside neurodyn on the same data "
                 "(5 states, 20 neurons, 30 fit / 20 report sequences of 2000 bins)",
        "columns": ["fit", "test LL (nats/spike)", "state acc.", "type acc.", "type F1", "type acc. (argmax)",
                    "type F1 (argmax)", "fit (s)", "time / reference"],
        "rows": rows,
        "notes": (f"Seeds {seeds}, mean ± sd (first rows: one fit of each per data seed, noise seed = data "
                  f"seed); one process, {args.threads} torch thread(s), the fits alternating in order from fit "
                  "to fit. The reference code "
                  "(https://github.com/JerrySoybean/onehot-hmmglm, paper-era `hmmglm.deprecated`, run from a "
                  "user's checkout, none of it in neurodyn) is driven with its demo notebook's procedure; its "
                  "fitted models are copied into neurodyn models (log-emissions agree to "
                  f"{figures['emission_parity_max']:.1e} nats in float64) and scored by the same code as "
                  "neurodyn's (exact forward-backward; the reference's own E-step floors emission "
                  "probabilities at 1e-16, which moves its posteriors at some bins). Types: "
                  "the common Wald read-out (type acc., F1) and each one-hot model's argmax (the paper code's "
                  f"read-out). Goal (issue 11, 5d): default-recipe fit time ≤ {GOAL_TIME_RATIO} × the reference "
                  f"code's on every seed: {'met' if figures['goal_time_met_each_seed'] else 'not met'} "
                  f"(worst seed {worst:.3f})."),
    }
    if args.no_write:
        print(figures["ratios"])
        return 0
    write_results("onehot_reference", figures, seconds=seconds, readme=readme,
                         split={"fit": f"sequences 0-{N_TRAIN - 1}",
                                "report": f"sequences {N_TRAIN}-{SIZE['n_sequences'] - 1}"},
                         selection="none: every setting fixed in advance (the demo's and neurodyn's recipes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
