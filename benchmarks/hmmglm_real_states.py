"""HMM-GLM states on real motor-cortex data: do state switches line up with movement onset?

Data: the MC_Maze_Small test file (NLB '21; ``$NEURODYN_TEST_DATA`` or ``../shared/data/``), binned
by ``neurodyn.data.prepare.prepare(..., bin_ms=20, phase="test")``: ``eval_input/eval_spikes_heldin``,
100 trials x 35 bins x 107 units, each trial spanning move onset -250..+450 ms. Bin ``t`` covers
``[-250 + 20 t, -230 + 20 t)`` ms, so move onset (0 ms) is the middle of bin 12 and the boundary
between bins ``t-1`` and ``t`` lies at ``-250 + 20 t`` ms.

Each trial is one sequence. Trials are split at random (``--seed``) into ``--n-test`` held-out
trials and the rest for training; a fifth of the training trials is a validation set for early
stopping (with ~2,000 bins and 107 x 107 couplings per state every model overfits if fitted to
convergence). Fitted: a one-state coupled GLM (gradient ascent on the exact likelihood, validated
every 10 steps) and, for every ``S`` in ``--states``, an HMM-GLM (EM, validated every iteration;
``--variant gaussian`` adds the Gaussian prior tying the states); self-couplings are learned (real
neurons have refractoriness and bursting). Reported per ``S``:

- ``test_ll``: marginal held-out log-likelihood (forward algorithm), nats per spike, vs the GLM's;
- Viterbi paths on all 100 trials; a *switch* is a boundary where the state changes;
  ``frac_near`` = fraction of switches within +-``--window-ms`` (default 100) of move onset;
- ``chance`` = fraction of the 34 boundaries inside that window (what uniform switch times give);
  ``shuffle_mean`` and ``p_shuffle``: each trial's switches re-placed uniformly at random among its
  34 boundaries (``--n-shuffles`` times, same counts), mean fraction and the one-sided p-value of
  the observed fraction (with the +1 correction) (:func:`neurodyn.metrics.states.switch_alignment`);
- ``switches_per_trial``, ``occupancy`` (fraction of bins per state), and ``state_by_bin``
  (per bin, the most frequent state across trials) for a quick look at the time course.

The last line printed is a JSON object. Usage::

    python benchmarks/hmmglm_real_states.py [--states 2,3,4] [--seed 0] [--threads 1] [--results-dir DIR]

It writes ``benchmarks/results/hmmglm_real_states.json`` (``--no-write`` to skip).
"""

from __future__ import annotations

import copy
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _results import (
    BenchmarkParser,
    check_results_folder,
    count_list,
    exits_on_signals,
    output_folder,
    parse_seed,
    positive_float,
    positive_int,
)

ROOT = Path(__file__).resolve().parents[1]
FILE = "sub-Jenkins_ses-small_desc-test_ecephys.nwb"
BIN_MS, START_MS = 20, -250
GLM_BLOCK = 10  # GLM gradient steps between validations


def find_nwb(path: str | None) -> Path:
    """The test NWB file: ``--nwb`` (the file, or a folder holding ``FILE``, as ``neurodyn prepare --nwb`` takes
    either; refused when it is neither: no other file is read in its place), else ``$NEURODYN_TEST_DATA/FILE``,
    else ``../shared/data/FILE``."""
    from neurodyn.errors import InputError

    if path:
        if Path(path).is_dir():
            if not (Path(path) / FILE).is_file():
                raise InputError(f"no {FILE} in this folder", path=path, field="--nwb")
            return Path(path) / FILE
        if not Path(path).is_file():
            raise InputError("file not found", path=path, field="--nwb")
        return Path(path)
    candidates = []
    if os.environ.get("NEURODYN_TEST_DATA"):
        candidates.append(Path(os.environ["NEURODYN_TEST_DATA"]) / FILE)
    candidates.append(ROOT.parent / "shared" / "data" / FILE)
    for c in candidates:
        if c.is_file():
            return c
    raise InputError("MC_Maze_Small test file not found (pass --nwb or set NEURODYN_TEST_DATA)", candidates[0])


def load_trials(nwb: Path) -> np.ndarray:
    """(100, 35, 107) spike counts per 20 ms bin over move onset -250..+450 ms."""
    from neurodyn.data.prepare import prepare
    from neurodyn.data.prepared import load_prepared

    with tempfile.TemporaryDirectory() as tmp:
        out = prepare("mc_maze_small", nwb, bin_ms=BIN_MS, phase="test", out=Path(tmp) / "p.h5", log=None)
        spikes = np.asarray(load_prepared(out).eval_input["eval_spikes_heldin"], dtype=np.float64)
    if np.isnan(spikes).any():
        raise ValueError("NaN in eval_spikes_heldin")
    return spikes


class EarlyStopping:
    """Keep the parameters with the best validation log-likelihood per spike (called once per round).

    With ~2,000 training bins and 107 x 107 couplings per state, every model overfits if fitted to
    convergence; stopping on held-out trials of the training set treats GLM and HMM-GLM alike.
    """

    def __init__(self, model, valid):
        self.valid, self.calls, self.best_call, self.value, self.state = valid, 0, 0, -float("inf"), None

    def __call__(self, model) -> None:
        from neurodyn.models.hmmglm.evaluate import marginal_log_likelihood

        value = marginal_log_likelihood(model, self.valid)["per_spike"]
        if value > self.value:
            self.value, self.best_call = value, self.calls
            self.state = copy.deepcopy(model.state_dict())
        self.calls += 1

    def restore(self, model) -> None:
        model.load_state_dict(self.state)


@exits_on_signals
def main(argv=None) -> int:
    parser = BenchmarkParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nwb", default=None,
                        help=f"the MC_Maze_Small test file, or a folder holding it (default {FILE} in "
                             "$NEURODYN_TEST_DATA, else in ../shared/data)")
    parser.add_argument("--states", type=count_list, default=[2, 3, 4],
                        help="HMM-GLM state counts, comma-separated (default 2,3,4)")
    parser.add_argument("--variant", default="hmmglm", choices=("hmmglm", "gaussian"),
                        help="hmmglm, or gaussian: with the Gaussian prior tying the states (default hmmglm)")
    parser.add_argument("--seed", type=parse_seed, default=0,
                        help="seed of the trial split, the initialisation and the shuffles (default 0)")
    parser.add_argument("--n-test", type=positive_int, default=30, help="held-out test trials (default 30)")
    parser.add_argument("--n-iters", type=positive_int, default=30, help="EM iterations at most (default 30)")
    parser.add_argument("--n-inner", type=positive_int, default=10,
                        help="gradient steps per M-step (default 10)")
    parser.add_argument("--lr", type=positive_float, default=0.01,
                        help="learning rate of the GLM fit and the M-steps (default 0.01)")
    parser.add_argument("--glm-steps", type=positive_int, default=300,
                        help="GLM gradient steps at most (default 300)")
    parser.add_argument("--window-ms", type=positive_float, default=100.0,
                        help="a switch within this many ms of move onset counts as near it (default 100)")
    parser.add_argument("--n-shuffles", type=positive_int, default=2000,
                        help="shuffles of the switch times for the p-value (default 2000)")
    parser.add_argument("--threads", type=positive_int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--progress", action="store_true", help="print EM progress")
    parser.add_argument("--results-dir", type=output_folder, default=None,
                        help="folder of the results file (default benchmarks/results, or $NEURODYN_RESULTS_DIR)")
    parser.add_argument("--no-write", action="store_true", help="do not write hmmglm_real_states.json")
    args = parser.parse_args(argv)
    if not args.no_write:  # before any work, not when the results are written
        check_results_folder(args.results_dir, "--results-dir", name="hmmglm_real_states")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    from neurodyn.metrics.states import switch_alignment
    from neurodyn.models.hmmglm import HMMGLMConfig, build_model, viterbi
    from neurodyn.models.hmmglm.evaluate import marginal_log_likelihood
    from neurodyn.models.hmmglm.fit import fit_em, fit_gradient

    began = time.perf_counter()
    spikes = load_trials(find_nwb(args.nwb))
    n_trials, n_bins, n_units = spikes.shape
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(n_trials)
    test_idx, train_idx = np.sort(order[: args.n_test]), np.sort(order[args.n_test :])
    train = torch.tensor(spikes[train_idx])
    n_valid = max(1, len(train_idx) // 5)
    valid, fit_part = train[:n_valid], train[n_valid:]
    test = torch.tensor(spikes[test_idx])
    everything = torch.tensor(spikes)
    # real neurons have refractoriness and bursting: learn self-coupling in every model
    common = dict(self_connections=True, seed=args.seed)

    start = time.perf_counter()
    glm = build_model(n_units, HMMGLMConfig(variant="glm", **common)).double()
    best = EarlyStopping(glm, valid)
    for _ in range(args.glm_steps // GLM_BLOCK):
        fit_gradient(glm, fit_part, n_steps=GLM_BLOCK, lr=args.lr, init_bias=best.calls == 0)
        best(glm)
    best.restore(glm)
    results = {
        "glm": {
            "test_ll": marginal_log_likelihood(glm, test)["per_spike"],
            "best_valid_ll": best.value,
            "steps": GLM_BLOCK * (best.best_call + 1),
            "fit_seconds": round(time.perf_counter() - start, 2),
        }
    }
    print(f"glm: {results['glm']}", file=sys.stderr, flush=True)
    for n_states in args.states:
        start = time.perf_counter()
        model = build_model(n_units, HMMGLMConfig(variant=args.variant, n_states=n_states, **common)).double()
        best = EarlyStopping(model, valid)
        fit_em(
            model,
            fit_part,
            n_iters=args.n_iters,
            n_inner=args.n_inner,
            lr=args.lr,
            callback=lambda it, m, obj, best=best: best(m),
            progress=args.progress,
        )
        best(model)
        best.restore(model)
        seconds = time.perf_counter() - start
        with torch.no_grad():
            paths = viterbi(model.log_initial(), model.log_transitions(), model.log_emissions(everything))
        paths = paths.numpy()
        boundary_ms = START_MS + BIN_MS * np.arange(1, n_bins)
        stats = switch_alignment(paths, boundary_ms, args.window_ms, args.n_shuffles, np.random.default_rng(args.seed))
        occupancy = np.bincount(paths.ravel(), minlength=n_states) / paths.size
        mode_by_bin = [int(np.bincount(paths[:, t], minlength=n_states).argmax()) for t in range(n_bins)]
        results[f"S{n_states}"] = {
            "test_ll": marginal_log_likelihood(model, test)["per_spike"],
            "best_valid_ll": best.value,
            "em_iterations": best.best_call,  # 0: the state after the first E-step (before any M-step)
            **stats,
            "occupancy": [round(float(v), 4) for v in occupancy],
            "state_by_bin": mode_by_bin,
            "fit_seconds": round(seconds, 2),
        }
        print(f"S={n_states}: {results[f'S{n_states}']}", file=sys.stderr, flush=True)
    results["config"] = {
        "variant": args.variant,
        "seed": args.seed,
        "n_train": len(train_idx),
        "n_fit": len(fit_part),
        "n_test": len(test_idx),
        "bin_ms": BIN_MS,
        "bins": n_bins,
        "units": n_units,
        "onset_bin": (0 - START_MS) // BIN_MS,
        "window_ms": args.window_ms,
        "n_iters": args.n_iters,
        "n_inner": args.n_inner,
        "lr": args.lr,
        "glm_steps": args.glm_steps,
        "self_connections": True,
        "threads": torch.get_num_threads(),
    }
    if not args.no_write:
        from _results import write_results

        write_results("hmmglm_real_states", results, seconds=time.perf_counter() - began,
                      out_dir=args.results_dir, argv=sys.argv,
                      split=f"{len(fit_part)} fit / {n_valid} early-stopping / {len(test_idx)} test trials "
                            f"of the MC_Maze_Small test file, drawn with seed {args.seed}",
                      selection="GLM steps and EM iterations stopped on the early-stopping trials' "
                                "likelihood; test trials scored once")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
