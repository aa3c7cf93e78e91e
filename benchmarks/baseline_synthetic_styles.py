"""Smoothing + Poisson GLM baseline on NLB-shaped synthetic NWB files of each style (val phase).

Writes a train + test pair per style (mc_maze, area2_bump, dmfc_rsg; seed 0, the writer's default
sizes), prepares it at 5 and 20 ms, fits the baseline and evaluates it like a submission. Prints
JSON (metrics per style and bin width) as the last line.

Usage::

    python benchmarks/baseline_synthetic_styles.py [--seed 0]
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _results import BenchmarkParser, exits_on_signals, parse_seed  # noqa: E402

from neurodyn.commands.baseline import predict_prepared  # noqa: E402
from neurodyn.data.prepare import prepare  # noqa: E402
from neurodyn.data.synthetic.nlb_nwb import write_nlb_pair  # noqa: E402
from neurodyn.metrics import evaluate  # noqa: E402


@exits_on_signals
def main(argv=None) -> int:
    parser = BenchmarkParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=parse_seed, default=0, help="seed of the synthetic NWB files (default 0)")
    args = parser.parse_args(argv)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for style in ("mc_maze", "area2_bump", "dmfc_rsg"):
            folder = Path(tmp) / style
            write_nlb_pair(folder, style, seed=args.seed)
            for bin_ms in (5, 20):
                path = Path(tmp) / f"{style}_{bin_ms}.h5"
                prepare(style, folder, bin_ms=bin_ms, phase="val", out=path, log=None)
                result = evaluate(path, predict_prepared(path, style))
                out[f"{style}_{bin_ms}ms"] = {k: v for entry in result for split in entry.values()
                                              for k, v in split.items()}
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
