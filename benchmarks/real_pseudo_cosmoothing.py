"""Pseudo co-smoothing on the real MC_Maze_Small test file (a real-data sanity check).

Split (``../shared/data/README.md``, :func:`neurodyn.data.pseudo.pseudo_cosmoothing_split`): hold out 27
of the 107 units (``numpy.random.default_rng(0).choice(107, 27, replace=False)``), train on trials
0-79, evaluate on trials 80-99, 5 ms bins over move onset -250..+450 ms. Two models predict the
held-out units' rates from the held-in units:

- the smoothing baseline: 50 ms Gaussian smoothing of held-in spikes + a log-input Poisson GLM
  (``PoissonRegressor(alpha=0.1)``), the NLB basic example, at 5 ms;
- LangevinFlow (:func:`neurodyn.training.recipes.pseudo_cosmoothing`, settings
  :data:`~neurodyn.training.recipes.SMALL_REAL_MODEL` / ``SMALL_REAL_OPT``) trained with the Lightning
  harness on the same counts summed into 20 ms bins; its rates are spread evenly over the 5 ms bins.
  The weights of the last epoch are scored (nothing is selected on the evaluation trials).

Prints as its last line a JSON object with ``langevinflow_co_bps`` and ``smoothing_glm_co_bps``
(NLB ``bits_per_spike`` on the evaluation trials' held-out units, 5 ms bins), plus
``langevinflow_co_bps_mean_mode`` (the same weights, one deterministic pass) and the training co-bps.

Usage::

    python benchmarks/real_pseudo_cosmoothing.py [--nwb PATH] [--epochs 500] [--seed 0] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

from _overrides import key_values

ROOT = Path(__file__).resolve().parents[1]
FILE = "sub-Jenkins_ses-small_desc-test_ecephys.nwb"


def smoothing_glm(train_in, train_out, eval_in, eval_out) -> float:
    from neurodyn.metrics import bits_per_spike
    from neurodyn.models.smoothing import SmoothingGLM

    model = SmoothingGLM(sigma_ms=50, alpha=0.1, bin_ms=5)
    model.fit({"train_spikes_heldin": train_in, "train_spikes_heldout": train_out})
    pred = model.predict({"eval_spikes_heldin": eval_in})
    return float(bits_per_spike(pred["eval_rates_heldout"], eval_out))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = Path(os.environ.get("NEURODYN_TEST_DATA", ROOT.parent / "shared" / "data")) / FILE
    parser.add_argument("--nwb", type=Path, default=default)
    parser.add_argument("--epochs", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-bin-ms", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--model", nargs="*", default=[], metavar="KEY=VALUE",
                        help="LangevinFlowConfig overrides of SMALL_REAL_MODEL, e.g. gamma=0.55")
    parser.add_argument("--opt", nargs="*", default=[], metavar="KEY=VALUE",
                        help="optimiser overrides of SMALL_REAL_OPT, e.g. lr_schedule=constant")
    args = parser.parse_args(argv)
    if not args.nwb.is_file():
        print(f"{args.nwb}: file not found (set --nwb or NEURODYN_TEST_DATA)", file=sys.stderr)
        return 2
    import torch

    from neurodyn.data.pseudo import pseudo_cosmoothing_split
    from neurodyn.training.recipes import SMALL_REAL_MODEL, SMALL_REAL_OPT, pseudo_cosmoothing

    torch.set_num_threads(args.threads)
    model = {**SMALL_REAL_MODEL, **key_values(args.model, parser, "--model")}
    opt = {**SMALL_REAL_OPT, **key_values(args.opt, parser, "--opt")}
    split = pseudo_cosmoothing_split(args.nwb)
    result = {"smoothing_glm_co_bps": smoothing_glm(*split.parts())}
    lf = pseudo_cosmoothing(split, train_bin_ms=args.train_bin_ms, epochs=args.epochs, seed=args.seed,
                            model=model, opt=opt, progress=args.progress)
    result.update(langevinflow_co_bps=lf["co_bps"], langevinflow_co_bps_mean_mode=lf["co_bps_mean_mode"],
                  langevinflow_train_co_bps=lf["train_co_bps"], train_seconds=lf["train_seconds"],
                  epochs=args.epochs, seed=args.seed, train_bin_ms=args.train_bin_ms, model=model,
                  optimiser=opt, threads=torch.get_num_threads(), torch=torch.__version__,
                  machine=platform.machine(), python=platform.python_version())
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
