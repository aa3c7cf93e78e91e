"""The Lorenz benchmark's fit / select / report split (per condition, disjoint, seeded) and the departure variants."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_benchmark(name: str):
    """benchmarks/<name>.py as a module (benchmarks/ is on sys.path only while it loads)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return mod


@pytest.fixture(scope="module")
def lorenz_bench():
    return _load_benchmark("lorenz")


def test_three_way_split_is_per_condition_disjoint_and_seeded(lorenz_bench):
    conditions = np.repeat(np.arange(5), 6)
    fit, sel, rep = lorenz_bench.three_way_split(conditions, (3, 2, 1), seed=0)
    assert not (set(fit) & set(sel)) and not (set(fit) & set(rep)) and not (set(sel) & set(rep))
    for part, n in ((fit, 3), (sel, 2), (rep, 1)):
        np.testing.assert_array_equal(np.bincount(conditions[part], minlength=5), n)  # every condition, n each
    again = lorenz_bench.three_way_split(conditions, (3, 2, 1), seed=0)
    assert all(np.array_equal(a, b) for a, b in zip((fit, sel, rep), again))
    other = lorenz_bench.three_way_split(conditions, (3, 2, 1), seed=1)
    assert not np.array_equal(rep, other[2])
    with pytest.raises(ValueError, match="fewer than"):
        lorenz_bench.three_way_split(conditions, (5, 1, 1), seed=0)


def test_departure_variants_are_the_reference_presets_model_fields_one_at_a_time():
    from dataclasses import fields

    from neurodyn.models.langevinflow import LangevinFlowConfig

    dep = _load_benchmark("departures")
    ours, ref = LangevinFlowConfig(), LangevinFlowConfig.reference()
    differing = {f.name: getattr(ref, f.name) for f in fields(LangevinFlowConfig)
                 if getattr(ours, f.name) != getattr(ref, f.name)}
    # every field where the reference preset differs, except the validation-only val_mask
    assert dep.REFERENCE_FIELDS == {k: v for k, v in differing.items() if k != "val_mask"}
    singles = {k: v for k, v in dep.VARIANTS.items() if k not in ("neurodyn", "reference_fields")}
    assert {next(iter(v)) for v in singles.values()} == set(dep.REFERENCE_FIELDS)
    for name, override in singles.items():
        assert len(override) == 1 and ours.replace(**override) != ours, name
    assert dep.VARIANTS["neurodyn"] == {} and dep.VARIANTS["reference_fields"] == dep.REFERENCE_FIELDS
    assert [dep._verdict({"mean": m, "sd": 0.01}) for m in (0.02, 0.005, -0.005, -0.02)] == \
        ["helps", "neutral", "neutral", "hurts"]
