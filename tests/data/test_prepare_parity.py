"""Parity with nlb_tools itself, run in its own environment (``.venv-nlb``, built by ``make nlb-env``).

nlb_tools 0.0.4 pins ``pandas<=1.3.4`` (no wheel for Python >= 3.11); installed with ``--no-deps`` it
works on pandas 2.x, while pandas 3 breaks its ``resample`` (``NWBDataset.resample`` in ``nlb_tools/nwb_interface.py``
of https://github.com/neurallatents/nlb_tools applies an in-place ``nan_to_num`` to a copy-on-write
``to_numpy()`` view: "assignment destination is read-only"). So it lives in a second
environment: these tests compute neurodyn's tensors here, run ``tests/nlb_reference.py`` with the
reference interpreter on the same NWB files, and compare. Spikes, behaviour, masks, jitter and condition
indices must be bit-identical; PSTHs agree to 1e-9. Without the reference environment the tests skip,
except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from neurodyn.data.nwb import load_session
from neurodyn.data.tensors import make_eval_input_tensors, make_eval_target_tensors, make_train_input_tensors

pytestmark = pytest.mark.xdist_group("nlb_data")


def _reference_module():
    spec = importlib.util.spec_from_file_location("nlb_reference", Path(__file__).parents[1] / "nlb_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def reference():
    module = _reference_module()
    return module, module.require_reference(pytest)


def _same(mine, ref, key):
    if isinstance(mine, dict):
        assert set(mine) == set(ref), key
        for k in mine:
            _same(mine[k], ref[k], f"{key}/{k}")
    elif isinstance(mine, list):
        assert len(mine) == len(ref), key
        for a, b in zip(mine, ref):
            np.testing.assert_array_equal(a, b, err_msg=key)
    else:
        ref = np.asarray(ref)
        assert mine.shape == ref.shape and mine.dtype == ref.dtype, (
            key,
            mine.shape,
            ref.shape,
            mine.dtype,
            ref.dtype,
        )
        if key.endswith("psth"):
            np.testing.assert_allclose(mine, ref, rtol=0, atol=1e-9, err_msg=key)
        else:
            np.testing.assert_array_equal(mine, ref, err_msg=key)


@pytest.mark.parametrize("style", ["mc_maze", "area2_bump", "dmfc_rsg"])
@pytest.mark.parametrize("bin_ms", [5, 20])
def test_val_and_test_phase_parity(reference, request, tmp_path, style, bin_ms):
    module, python = reference
    folder = request.getfixturevalue(
        {"mc_maze": "maze_pair", "area2_bump": "area2_pair", "dmfc_rsg": "dmfc_pair"}[style]
    )
    out = tmp_path / "reference.npz"
    module.run(python, {"kind": "tensors", "folder": str(folder), "style": style, "bin_ms": bin_ms, "out": str(out)})
    ref = module.load_tree(out)
    s = load_session(folder)
    _same(make_train_input_tensors(s, style, bin_ms, "val"), ref["train_input"], "train_input")
    _same(make_eval_input_tensors(s, style, bin_ms, "val"), ref["eval_input"], "eval_input")
    _same(make_eval_target_tensors(s, style, bin_ms, "val"), ref["eval_target"], "eval_target")
    _same(make_train_input_tensors(s, style, bin_ms, "test"), ref["train_input_test"], "train_input (test)")
    _same(make_eval_input_tensors(s, style, bin_ms, "test"), ref["eval_input_test"], "eval_input (test)")
