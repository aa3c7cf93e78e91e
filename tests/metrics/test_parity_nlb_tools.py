"""Parity with nlb_tools' ``evaluate``, run in its own environment (``.venv-nlb``, ``make nlb-env``).

nlb_tools 0.0.4 pins pandas <= 1.3.4, so it is not a dependency: ``tests/nlb_reference.py`` runs it with
the reference interpreter on the same target and prediction files. Without the reference environment the
test skips, except under ``CI=true``, where it fails.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from neurodyn.io import write_h5_dict


def _reference_module():
    spec = importlib.util.spec_from_file_location("nlb_reference", Path(__file__).parents[1] / "nlb_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_evaluate_matches_nlb_tools(tmp_path, nlb_group):
    module = _reference_module()
    python = module.require_reference(pytest)
    from neurodyn.metrics import evaluate

    target, pred = {}, {}
    cases = [
        ("mc_maze", {}),
        ("mc_rtt", {"psth": False}),
        ("area2_bump_20", {"n_masks": 2}),
        ("dmfc_rsg", {"dmfc": True}),
        ("mc_maze_small", {}),
    ]
    for i, (name, kwargs) in enumerate(cases):
        target[name], pred[name] = nlb_group(10 + i, n_train=60, **kwargs)
    target["dmfc_rsg"]["eval_jitter"][:] = np.arange(len(target["dmfc_rsg"]["eval_jitter"])) % 2
    # nlb_tools reads ragged eval_cond_idx with h5py's [()]: give it files, as EvalAI does
    for path, data in ((tmp_path / "target.h5", target), (tmp_path / "pred.h5", pred)):
        with h5py.File(path, "w") as handle:
            write_h5_dict(handle, data)
    module.run(
        python,
        {"kind": "evaluate", "target": str(tmp_path / "target.h5"), "pred": str(tmp_path / "pred.h5"),
         "out": str(tmp_path / "theirs.json")},
    )
    theirs = json.loads((tmp_path / "theirs.json").read_text())
    ours = evaluate(tmp_path / "target.h5", tmp_path / "pred.h5")
    assert [list(entry) for entry in ours] == [list(entry) for entry in theirs]
    for mine, ref in zip(ours, theirs):
        ((split, metrics),) = mine.items()
        assert list(metrics) == list(ref[split])
        for key, value in ref[split].items():
            # both compute in float64; the ridge solutions differ only by solver rounding
            assert metrics[key] == pytest.approx(float(value), abs=1e-6), (split, key)
