"""Lorenz benchmark: simulate (lorenz.md recipe), train LangevinFlow, compare rate R2 with smoothing.

Usage::

    python benchmarks/lorenz.py --seed 0 [--epochs 300] [--out data/bench_lorenz]

Simulates 65 conditions x 24 trials (29 neurons, 50 bins of 20 ms, 1248 / 312 split), trains
LangevinFlow on the CPU with the Lightning harness (checkpoint on validation rate R2), and prints as
its last line a JSON object with ``langevinflow_rate_r2`` (the selected checkpoint),
``langevinflow_rate_r2_last_epoch`` (the last epoch's weights: nothing selected on the validation
trials) and ``smoothing_rate_r2`` (R2 against the true expected counts of the validation trials, NDT
convention: y_true = truth), and ``train_seconds``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

from _overrides import key_values

from neurodyn.demo import LORENZ_MODEL, LORENZ_OPT, train_lorenz


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--out", default="data/bench_lorenz")
    parser.add_argument("--progress", action="store_true")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--model", nargs="*", default=[], metavar="KEY=VALUE",
                        help="LangevinFlowConfig overrides, e.g. hidden_size=128")
    parser.add_argument("--opt", nargs="*", default=[], metavar="KEY=VALUE",
                        help="LangevinFlowModule optimiser overrides, e.g. lr=2e-3 lr_patience=5")
    args = parser.parse_args(argv)
    model_overrides = key_values(args.model, parser, "--model")
    opt_overrides = key_values(args.opt, parser, "--opt")
    result = train_lorenz(Path(args.out) / f"seed{args.seed}", max_epochs=args.epochs, seed=args.seed,
                          batch_size=args.batch_size, progress=args.progress, threads=args.threads,
                          model_overrides=model_overrides, opt_overrides=opt_overrides)
    import torch

    summary = {k: v for k, v in result.items() if not k.startswith("_")}
    summary.update(seed=args.seed, model={**LORENZ_MODEL, **model_overrides}, optimiser={**LORENZ_OPT, **opt_overrides},
                   torch=torch.__version__,
                   threads=torch.get_num_threads(), machine=platform.machine(), python=platform.python_version())
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
