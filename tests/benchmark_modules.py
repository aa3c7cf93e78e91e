"""What the tests of the benchmark scripts share (``tests/`` is on ``sys.path``: pyproject's pytest
``pythonpath``)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


def load_benchmark(name: str, prefix: str = "bench_"):
    """benchmarks/<name>.py as a module named ``<prefix><name>`` (benchmarks/ is on sys.path only while it loads,
    so that its ``import _results`` finds the shared module)."""
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(f"{prefix}{name}", BENCH / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(BENCH))
    return mod
