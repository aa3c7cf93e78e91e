"""benchmarks/upsample_alignment.py on one style and seed: the results file and its README table, and the
measured order (the lined-up upsample of the true 20 ms rates scores closer to the 5 ms cut than the
unaligned one) that the README's table reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_one_seed_writes_the_results_and_the_lined_up_rates_beat_the_unaligned(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "upsample_alignment.py"), "--seeds", "0",
                           "--styles", "mc_maze"], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "NEURODYN_RESULTS_DIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((tmp_path / "upsample_alignment.json").read_text())
    run = record["figures"]["per_seed"]["mc_maze"]["0"]
    cut, unaligned, lined = (run["scores"][w]["co-bps"] for w in ("cut at 5 ms", "upsampled, windows assumed "
                                                                   "aligned", "upsampled, windows lined up"))
    assert run["eval_trials_offset"] > 0  # the simulator's alignment times are off the 20 ms grid
    assert unaligned < lined <= cut
    assert len(record["readme"]["rows"]) == 4 and record["figures"]["seeds"] == [0]
