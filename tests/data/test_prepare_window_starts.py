"""``prepare`` records each input row's window start (``window_start_ms``): the NWB trials' alignment times plus the
window start, on the row's own NWB file's clock (first bin ``ceil(t0 / bin)``), DMFC_RSG jitter included; at 5 and
20 ms the offsets between them explain the spike sums."""

from __future__ import annotations

import numpy as np
import pytest

from neurodyn.data.nlb import get_dataset
from neurodyn.data.prepare import prepare
from neurodyn.data.prepared import load_prepared


@pytest.fixture(scope="module")
def prepared(maze_pair, dmfc_pair, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("starts")
    return {(name, b): load_prepared(prepare(name, folder, bin_ms=b, phase="val", out=tmp / f"{name}_{b}.h5",
                                             log=None))
            for name, folder in (("mc_maze_small", maze_pair), ("dmfc_rsg", dmfc_pair)) for b in (5, 20)}


@pytest.mark.parametrize("dataset, style", [("mc_maze_small", "mc_maze"), ("dmfc_rsg", "dmfc_rsg")])
@pytest.mark.parametrize("bin_ms", [5, 20])
def test_window_starts_are_the_trials_alignment_plus_window_start(dataset, style, bin_ms, prepared, oracle,
                                                                 maze_pair, dmfc_pair):
    folder = maze_pair if style == "mc_maze" else dmfc_pair
    from neurodyn.data.nwb import load_session

    train = oracle.pair(folder, style)[0]
    truth = oracle.Truth(train)
    # the starts are on the train file's own clock: the session grid puts the test file in front of it, a
    # multiple of 100 ms earlier, so the bins (and the first-bin rounding) are those of the file alone
    assert [f.offset_ms % 100 for f in load_session(folder).files] == [0, 0]
    offset_ms = 0
    prep = prepared[(dataset, bin_ms)]
    window = get_dataset(dataset).window
    target = prep.eval_target_group
    for split, nwb_split in (("train", "train"), ("eval", "val")):
        rows = truth.rows(nwb_split)
        align_s = truth.trials[window.align_field][rows] + offset_ms / 1000.0
        if f"{split}_jitter" in target:  # DMFC: the jitter (whole bins of this width) moves the window
            align_s = align_s + target[f"{split}_jitter"] * bin_ms / 1000.0
        want = oracle.first_label_ms(align_s, window.start_ms, bin_ms)
        got = prep.window_start_ms[split]
        assert got.dtype == np.int64 and len(got) == len(rows)
        np.testing.assert_array_equal(got, want, err_msg=f"{dataset} {bin_ms} ms {split}")


@pytest.mark.parametrize("dataset", ["mc_maze_small", "dmfc_rsg"])
def test_offsets_between_5_and_20_ms_starts_explain_the_spike_sums(dataset, prepared):
    """Four consecutive 5 ms bins from the offset sum to the 20 ms bin, for every bin both windows observe."""
    fine, coarse = prepared[(dataset, 5)], prepared[(dataset, 20)]
    moved = 0
    for split, group, key in (("train", "train_input", "train_spikes_heldin"),
                              ("eval", "eval_input", "eval_spikes_heldin")):
        offsets = (coarse.window_start_ms[split] - fine.window_start_ms[split]) // 5
        assert np.all((coarse.window_start_ms[split] - fine.window_start_ms[split]) % 5 == 0)
        f = np.asarray(getattr(fine, group)[key], dtype=np.float64)
        c = np.asarray(getattr(coarse, group)[key], dtype=np.float64)
        checked = 0
        for i, o in enumerate(offsets):
            for k in range(c.shape[1]):
                lo = int(o) + 4 * k
                if lo < 0 or lo + 4 > f.shape[1] or np.isnan(f[i, lo:lo + 4]).any() or np.isnan(c[i, k]).any():
                    continue
                np.testing.assert_array_equal(f[i, lo:lo + 4].sum(0), c[i, k], err_msg=f"{split} row {i} bin {k}")
                checked += 1
        assert checked > 0.8 * c.shape[0] * c.shape[1]
        moved += int(np.count_nonzero(offsets))
    assert moved > 0  # the windows do not all start together: the test tells an offset from none


def test_prepare_cuts_each_inputs_windows_once(maze_pair, tmp_path, monkeypatch):
    """The window starts come from the windows the input tensors were cut with (they were cut a second time for
    the starts alone); they are those of input_window_starts_ms, on the row's own file's clock."""
    import neurodyn.data.tensors as tensors
    from neurodyn.data.nwb import load_session

    cuts = []
    real = tensors.trial_windows

    def counting(*args, needed_for="", **kwargs):
        cuts.append(needed_for)
        return real(*args, needed_for=needed_for, **kwargs)

    monkeypatch.setattr(tensors, "trial_windows", counting)
    prep = load_prepared(prepare("mc_maze_small", maze_pair, bin_ms=20, phase="val", out=tmp_path / "p.h5", log=None))
    assert cuts.count("the train input") == 1 and cuts.count("the eval input") == 1
    session = load_session(maze_pair)
    for which in ("train", "eval"):
        on_session = tensors.input_window_starts_ms(session, "mc_maze_small", 20, "val", which)
        assert len(np.unique(on_session - prep.window_start_ms[which])) == 1  # one file: one clock offset
