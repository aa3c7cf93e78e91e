"""Parity with nlb_tools itself (optional: runs only where ``nlb_tools`` imports).

nlb_tools 0.0.4 pins ``pandas<=1.3.4`` (no wheel for Python >= 3.11); installed with ``--no-deps`` it
works on pandas 2.x, while pandas 3 breaks its ``resample`` (nlb.md section 7). Spikes, behaviour,
masks, jitter and condition indices must be bit-identical; PSTHs agree to 1e-9.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest

from neurodyn.data.nwb import load_session
from neurodyn.data.tensors import make_eval_input_tensors, make_eval_target_tensors, make_train_input_tensors

pytestmark = pytest.mark.xdist_group("nlb_data")


@pytest.fixture(scope="module")
def nlb_tools():
    mt = pytest.importorskip("nlb_tools.make_tensors")
    import pandas

    if int(pandas.__version__.split(".")[0]) >= 3:
        pytest.skip("nlb_tools' resample fails on pandas 3")
    logging.getLogger("nlb_tools").setLevel(logging.ERROR)
    from nlb_tools.nwb_interface import NWBDataset

    return NWBDataset, mt


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
def test_val_and_test_phase_parity(nlb_tools, request, style, bin_ms):
    NWBDataset, mt = nlb_tools
    folder = request.getfixturevalue(
        {"mc_maze": "maze_pair", "area2_bump": "area2_pair", "dmfc_rsg": "dmfc_pair"}[style]
    )
    ds = NWBDataset(str(folder))
    ds.resample(bin_ms)
    s = load_session(folder)
    _same(
        make_train_input_tensors(s, style, bin_ms, "val"),
        mt.make_train_input_tensors(
            ds, style, "train", save_file=False, include_behavior=True, include_forward_pred=True
        ),
        "train_input",
    )
    _same(
        make_eval_input_tensors(s, style, bin_ms, "val"),
        mt.make_eval_input_tensors(ds, style, "val", save_file=False),
        "eval_input",
    )
    _same(
        make_eval_target_tensors(s, style, bin_ms, "val"),
        mt.make_eval_target_tensors(ds, style, "train", "val", save_file=False, include_psth=True),
        "eval_target",
    )
    _same(
        make_train_input_tensors(s, style, bin_ms, "test"),
        mt.make_train_input_tensors(
            ds, style, ["train", "val"], save_file=False, include_behavior=True, include_forward_pred=True
        ),
        "train_input (test)",
    )
    _same(
        make_eval_input_tensors(s, style, bin_ms, "test"),
        mt.make_eval_input_tensors(ds, style, "test", save_file=False),
        "eval_input (test)",
    )
