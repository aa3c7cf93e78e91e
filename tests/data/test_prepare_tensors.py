"""Tensor makers against the formulas of nlb_tools' ``make_tensors.py`` (https://github.com/neurallatents/nlb_tools;
Pei et al. 2021, https://arxiv.org/abs/2109.04463): shapes, dtypes, NaN patterns and an independent brute-force
binning of the spike times (the oracle in conftest)."""

from __future__ import annotations

import numpy as np
import pytest

from neurodyn.data.binning import bin_spikes
from neurodyn.data.nlb import get_dataset
from neurodyn.data.nwb import load_session
from neurodyn.data.tensors import (
    jitter_ms,
    make_eval_input_tensors,
    make_eval_target_tensors,
    make_train_input_tensors,
)
from neurodyn.errors import InputError

pytestmark = pytest.mark.xdist_group("nlb_data")


@pytest.fixture(scope="module")
def maze(maze_pair, oracle):
    train, test = oracle.pair(maze_pair, "mc_maze")
    return load_session(train), oracle.Truth(train), load_session(maze_pair), oracle.Truth(test)


@pytest.mark.parametrize("bin_ms", [5, 20])
def test_val_phase_counts_equal_oracle(maze, oracle, bin_ms):
    s, truth, _, _ = maze
    n_bins, n_fwd = 700 // bin_ms, 200 // bin_ms
    tr = make_train_input_tensors(s, "mc_maze", bin_ms, "val")
    ev = make_eval_input_tensors(s, "mc_maze", bin_ms, "val")
    assert list(tr) == [
        "train_spikes_heldin",
        "train_spikes_heldout",
        "train_behavior",
        "train_spikes_heldin_forward",
        "train_spikes_heldout_forward",
    ]
    assert list(ev) == ["eval_spikes_heldin", "eval_spikes_heldout"]
    for split, data, prefix in (("train", tr, "train"), ("val", ev, "eval")):
        rows = truth.rows(split)
        onset = truth.trials["move_onset_time"][rows]
        first = oracle.first_label_ms(onset, -250, bin_ms)
        for heldout, name in ((False, "heldin"), (True, "heldout")):
            x = data[f"{prefix}_spikes_{name}"]
            assert x.dtype == np.float16 and x.shape == (len(rows), n_bins, 10 if name == "heldin" else 4)
            assert not np.isnan(x).any()
            np.testing.assert_array_equal(
                x, oracle.counts(truth, truth.units(heldout), first, n_bins, bin_ms)
            )
    # forward window: the fp_len (200 ms) right after the window end
    rows = truth.rows("train")
    first = oracle.first_label_ms(truth.trials["move_onset_time"][rows], 450, bin_ms)
    fwd = tr["train_spikes_heldout_forward"]
    assert fwd.shape == (len(rows), n_fwd, 4) and fwd.dtype == np.float16
    np.testing.assert_array_equal(fwd, oracle.counts(truth, truth.units(True), first, n_fwd, bin_ms))
    # the eval target repeats the eval-window held-out spikes, nested under name + suffix
    tg = make_eval_target_tensors(s, "mc_maze", bin_ms, "val", include_psth=False)
    key = "mc_maze" if bin_ms == 5 else f"mc_maze_{bin_ms}"
    assert list(tg) == [key]
    np.testing.assert_array_equal(tg[key]["eval_spikes_heldout"], ev["eval_spikes_heldout"])
    assert tg[key]["eval_spikes_heldin_forward"].shape == (len(truth.rows("val")), n_fwd, 10)


@pytest.mark.parametrize("bin_ms", [5, 20])
def test_behavior_lag_and_decimation(maze, oracle, bin_ms):
    from scipy.signal import decimate

    s, truth, _, _ = maze
    lag = get_dataset("mc_maze").behavior_lag_ms
    beh = make_train_input_tensors(s, "mc_maze", bin_ms, "val", include_forward_pred=False)["train_behavior"]
    rows = truth.rows("train")
    assert beh.dtype == np.float64 and beh.shape == (len(rows), 700 // bin_ms, 2)
    vel = truth.behavior["hand_vel"]
    full = np.full((s.n_ms, 2), np.nan)
    full[: len(vel)] = vel
    full[len(vel) :] = vel[-1]  # nlb_tools fills NaN by interpolation (constant at the end)
    dec = decimate(full, bin_ms, n=500, ftype="fir", axis=0)
    first = oracle.first_label_ms(truth.trials["move_onset_time"][rows], -250 + lag, bin_ms) // bin_ms
    expected = np.stack([dec[f : f + 700 // bin_ms] for f in first])
    np.testing.assert_allclose(beh, expected, rtol=0, atol=1e-9)


def test_test_phase_on_folder(maze, oracle):
    s_train, truth_train, s_dir, truth_test = maze
    tr = make_train_input_tensors(s_dir, "mc_maze", 5, "test")
    assert len(tr["train_spikes_heldin"]) == 24  # train + val trials of the train file
    ev = make_eval_input_tensors(s_dir, "mc_maze", 5, "test")
    assert list(ev) == ["eval_spikes_heldin"]  # test trials: held-in only
    onset = truth_test.trials["move_onset_time"]
    first = oracle.first_label_ms(onset, -250, 5)
    # the test file's obs_intervals are the windows: spikes in their partial last millisecond are NaN'd away
    obs = [
        (int(np.ceil(round(a * 1000, 6))), int(np.floor(round(b * 1000, 6))))
        for a, b in zip(truth_test.trials["start_time"], truth_test.trials["stop_time"])
    ]
    expected = oracle.counts(truth_test, truth_test.units(False), first, 140, 5, observed_ms=obs)
    np.testing.assert_array_equal(ev["eval_spikes_heldin"], expected)
    # the val tensors of the folder equal those of the train file alone
    a = make_train_input_tensors(s_dir, "mc_maze", 5, "val")
    b = make_train_input_tensors(s_train, "mc_maze", 5, "val")
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    with pytest.raises(InputError, match="EvalAI"):
        make_eval_target_tensors(s_dir, "mc_maze", 5, "test")


def test_nan_outside_first_units_obs_intervals(nlb_dir, oracle):
    from neurodyn.data.synthetic.nlb_nwb import write_nlb_nwb

    path = write_nlb_nwb(nlb_dir / "obs.nwb", "mc_maze", n_trials=10, n_heldin=3, n_heldout=2, seed=11)
    truth = oracle.Truth(path)
    val = truth.rows("val")[0]
    onset = truth.trials["move_onset_time"][val]
    cut = np.floor(onset * 1000) / 1000  # unobserved from the ms of the onset to 100 ms later
    end = float(truth.obs0[-1, 1])
    obs = [(0.0, cut), (cut + 0.1, end)]
    # the first held-in unit decides for the held-in group, the first held-out one for the held-out group
    path = write_nlb_nwb(
        nlb_dir / "obs.nwb",
        "mc_maze",
        n_trials=10,
        n_heldin=3,
        n_heldout=2,
        seed=11,
        unit_obs_intervals={0: obs, 3: obs},
    )
    s = load_session(path)
    ev = make_eval_input_tensors(s, "mc_maze", 5, "val")
    i = int(np.flatnonzero(truth.rows("val") == val)[0])
    first_ms = oracle.first_label_ms(np.array([onset]), -250, 5)[0]
    starts = first_ms + 5 * np.arange(140)
    nan_bins = (starts >= round(cut * 1000)) & (starts < round(cut * 1000) + 100)
    for key in ("eval_spikes_heldin", "eval_spikes_heldout"):
        x = ev[key]
        assert np.isnan(x[i]).all(axis=1).tolist() == nan_bins.tolist()  # whole bins, every unit of the group
        assert not np.isnan(np.delete(x, i, axis=0)).any()
    # NaN is not allowed in the train input: a train trial cut the same way is refused
    train = truth.rows("train")[0]
    cut = np.floor(truth.trials["move_onset_time"][train] * 1000) / 1000
    path = write_nlb_nwb(
        nlb_dir / "obs2.nwb",
        "mc_maze",
        n_trials=10,
        n_heldin=3,
        n_heldout=2,
        seed=11,
        unit_obs_intervals={0: [(0.0, cut), (cut + 0.1, end)]},
    )
    with pytest.raises(InputError, match="units/obs_intervals"):
        make_train_input_tensors(load_session(path), "mc_maze", 5, "val")


def test_one_ms_boundary_rule(boundary_nwb):
    s = load_session(boundary_nwb)
    # unit 0: 0.0049994 -> ms 4 (bin 0); 0.005 and 0.0099999996 -> ms 5 and 10; 0.0125 -> ms 12
    x = bin_spikes(s, False, np.array([0]), 4, 5)[0]
    np.testing.assert_array_equal(x[:, 0], [1, 1, 2, 0])
    # unit 1 at 20 ms bins: 0.019999 -> ms 19 (bin 0); 0.02 -> ms 20 and 0.0399996 -> ms 39 (bin 1: the
    # rule rounds to 6 digits, then truncates); 0.0599999996 -> ms 60 (bin 3)
    x = bin_spikes(s, False, np.array([0]), 4, 20)[0]
    np.testing.assert_array_equal(x[:, 1], [1, 2, 0, 1])


def test_spike_table_widens_past_255_spikes_per_bin(nlb_dir):
    """The session is binned once into the narrowest integer type; a bin of 300 spikes must not wrap."""
    from neurodyn.data.binning import spike_table
    from neurodyn.data.synthetic.nlb_nwb import write_nlb_nwb

    burst = np.sort(0.010 + np.arange(300) * 1.6e-5)  # 300 spikes in ms 10..14: one 5 ms bin, two 20 ms halves
    path = write_nlb_nwb(nlb_dir / "burst.nwb", "mc_maze", n_trials=4, n_heldin=2, n_heldout=1, seed=0,
                         base_rate_hz=(1e-9, 2e-9), extra_spikes={0: burst.tolist()})
    s = load_session(path)
    assert spike_table(s, False, 5).dtype == np.uint16
    assert spike_table(s, True, 5).dtype == np.uint8  # the held-out unit stays narrow
    x = bin_spikes(s, False, np.array([0]), 4, 5)[0]
    np.testing.assert_array_equal(x[:, 0], [0, 0, 300, 0])
    assert bin_spikes(s, False, np.array([0]), 1, 20)[0, 0, 0] == 300


def test_dmfc_jitter(dmfc_pair, oracle):
    train, _ = oracle.pair(dmfc_pair, "dmfc_rsg")
    s = load_session(train)
    truth = oracle.Truth(train)
    ds = get_dataset("dmfc_rsg")
    rows = np.flatnonzero(s.split() == "train")
    np.random.seed(123)
    state = np.random.get_state()
    j1 = jitter_ms(s, ds, rows, 5, seed=0)
    assert np.random.get_state()[1].tolist() == state[1].tolist()  # the caller's RNG is untouched
    np.testing.assert_array_equal(j1, jitter_ms(s, ds, rows, 5, seed=0))  # reproducible
    assert not np.array_equal(j1, jitter_ms(s, ds, rows, 5, seed=1))
    bound = np.floor(np.clip(1500 - truth.trials["tp"][rows], 0, 300) / 5)
    assert np.all(j1 % 5 == 0) and np.all(j1 >= 0) and np.all(j1 / 5 <= bound)
    # the legacy draws: one np.random.random() per trial after np.random.seed(0)
    rs = np.random.RandomState(0)
    np.testing.assert_array_equal(j1, np.round(np.array([rs.random_sample() for _ in rows]) * bound) * 5)
    # the input window follows the jittered go time; the eval target stores the jitter in bins
    tr = make_train_input_tensors(s, ds, 5, "val", include_behavior=False, include_forward_pred=False)
    go = truth.trials["go_time"][rows] + j1 / 1000
    first = oracle.first_label_ms(go, -1500, 5)
    np.testing.assert_array_equal(
        tr["train_spikes_heldin"], oracle.counts(truth, truth.units(False), first, 300, 5)
    )
    tg = make_eval_target_tensors(s, ds, 5, "val")["dmfc_rsg"]
    np.testing.assert_array_equal(tg["train_jitter"], j1 / 5)
    assert tg["train_jitter"].dtype == np.int64


def test_dmfc_eval_target(dmfc_pair, oracle):
    train, _ = oracle.pair(dmfc_pair, "dmfc_rsg")
    s, truth = load_session(train), oracle.Truth(train)
    tg = make_eval_target_tensors(s, "dmfc_rsg", 5, "val")["dmfc_rsg"]
    rows = truth.rows("val")
    y = tg["eval_spikes_heldout"]
    assert y.dtype == np.float64 and y.shape == (len(rows), 300, 4)
    jit = tg["eval_jitter"]
    first = oracle.first_label_ms(truth.trials["set_time"][rows], 0, 5)
    last = oracle.first_label_ms(truth.trials["go_time"][rows], 0, 5)  # first bin at/after go (excluded)
    for i in range(len(rows)):
        n = int((last[i] - first[i]) // 5)
        expected = oracle.counts(truth, truth.units(True), first[i : i + 1], n, 5)[0]
        stop = 300 - jit[i]
        keep = min(n, stop)
        np.testing.assert_array_equal(y[i, stop - keep : stop], expected[n - keep :])
        assert np.isnan(y[i, : stop - keep]).all() and np.isnan(y[i, stop:]).all()
    # behaviour: trial columns, NaN for outliers
    beh = tg["eval_behavior"]
    assert beh.shape == (len(rows), 5)
    outlier = truth.trials["is_outlier"][rows] != 0
    assert np.isnan(beh[outlier]).all() and not np.isnan(beh[~outlier]).any()
    np.testing.assert_array_equal(beh[~outlier, 4], truth.trials["tp"][rows][~outlier])
    # the nlb-lightning variant: the input window itself, float16, no NaN
    alt = make_eval_target_tensors(s, "dmfc_rsg", 5, "val", include_psth=False, dmfc_target="input")[
        "dmfc_rsg"
    ]
    ev = make_eval_input_tensors(s, "dmfc_rsg", 5, "val")
    np.testing.assert_array_equal(alt["eval_spikes_heldout"], ev["eval_spikes_heldout"])


def _smoothed_binned(truth, s, sigma, bin_ms):
    """Oracle PSTH input: whole-session 1 ms counts, np.convolve 'same' with nlb's kernel, block sums."""
    from scipy.signal.windows import gaussian

    w = gaussian(int(6 * sigma), sigma)
    w /= w.sum()
    cols = []
    for u in np.r_[truth.units(False), truth.units(True)]:
        ms = np.round(truth.spikes[u] * 1000, 6).astype(np.int64)
        x = np.bincount(ms, minlength=s.n_ms).astype(float)
        y = np.convolve(x, w, mode="full")[(len(w) - 1) // 2 :][: s.n_ms]
        n = s.n_ms // bin_ms * bin_ms
        cols.append(
            np.r_[y[:n].reshape(-1, bin_ms).sum(1), y[n:].sum()]
            if n < s.n_ms
            else y.reshape(-1, bin_ms).sum(1)
        )
    return np.stack(cols, axis=1)


@pytest.mark.parametrize("bin_ms", [5, 20])
def test_psth_conditions(maze, oracle, bin_ms):
    s, truth, _, _ = maze
    tg = make_eval_target_tensors(s, "mc_maze", bin_ms, "val")[
        "mc_maze" if bin_ms == 5 else f"mc_maze_{bin_ms}"
    ]
    cond = list(zip(truth.trials["trial_type"].tolist(), truth.trials["trial_version"].tolist()))
    combos = sorted(set(cond))
    psth = tg["psth"]
    assert psth.shape == (len(combos), 700 // bin_ms, 14) and psth.dtype == np.float64
    binned = _smoothed_binned(truth, s, get_dataset("mc_maze").psth.kern_sd_ms, bin_ms)
    for key, split in (("train_cond_idx", "train"), ("eval_cond_idx", "val")):
        rows = truth.rows(split)
        idx = tg[key]
        assert len(idx) == len(combos)
        assert sorted(np.concatenate(idx).tolist()) == list(range(len(rows)))  # a partition
        for c, members in zip(combos, idx):
            assert all(cond[rows[m]] == c for m in members)
    n = 700 // bin_ms
    for c_i, c in enumerate(combos):
        rows = [i for i in range(len(cond)) if cond[i] == c]  # every split of the train file
        onset = truth.trials["move_onset_time"][rows]
        first = oracle.first_label_ms(onset, -250, bin_ms) // bin_ms
        # nlb_tools averages bin by bin relative to the alignment bin (ceil(onset / bin)); at 20 ms the
        # -250 ms start is not a whole number of bins, so trials start 12 or 13 bins before it
        rel = first - oracle.first_label_ms(onset, 0, bin_ms) // bin_ms
        sums, counts = {}, {}
        for f, r in zip(first, rel):
            for k in range(n):
                sums[r + k] = sums.get(r + k, 0) + binned[f + k]
                counts[r + k] = counts.get(r + k, 0) + 1
        expected = np.stack([sums[k] / counts[k] for k in sorted(sums)])[:n]
        np.testing.assert_allclose(psth[c_i], expected, rtol=0, atol=1e-9)


def test_psth_short_trials_dropped_and_front_trim(dmfc_pair, oracle):
    train, _ = oracle.pair(dmfc_pair, "dmfc_rsg")
    s = load_session(train)
    tg = make_eval_target_tensors(s, "dmfc_rsg", 5, "val")["dmfc_rsg"]
    psth = tg["psth"]
    assert psth.shape[1:] == (300, 14)
    for p in psth:  # NaN-padded in front, data up to the go bin
        valid = ~np.isnan(p[:, 0])
        assert valid[-1] and not np.any(np.diff(valid.astype(int)) < 0)
    # make one non-outlier val trial of condition 0 very short: it leaves that condition's indices
    val = np.flatnonzero(s.split() == "val")
    members = tg["eval_cond_idx"][0]
    victim = val[members[0]]
    go_ns, ok = s.trial_ns["go_time"]
    s.trial_ns["set_time"][0][victim] = go_ns[victim] - 100_000_000  # set -> go = 100 ms
    s.trials["set_time"][victim] = s.trials["go_time"][victim] - 0.1
    tg2 = make_eval_target_tensors(s, "dmfc_rsg", 5, "val")["dmfc_rsg"]
    assert members[0] not in tg2["eval_cond_idx"][0].tolist()
    assert set(tg2["eval_cond_idx"][0].tolist()) == set(members.tolist()) - {members[0]}
    # outliers (is_outlier == 1) are in no condition
    outliers = set(np.flatnonzero(s.trials["is_outlier"][val] == 1).tolist())
    assert not outliers & set(np.concatenate(tg["eval_cond_idx"]).tolist())


def test_area2_decode_masks(area2_pair, oracle):
    train, _ = oracle.pair(area2_pair, "area2_bump")
    s, truth = load_session(train), oracle.Truth(train)
    tg = make_eval_target_tensors(s, "area2_bump", 20, "val", include_psth=False)["area2_bump_20"]
    for key, split in (("train_decode_mask", "train"), ("eval_decode_mask", "val")):
        bump = truth.trials["ctr_hold_bump"][truth.rows(split)]
        m = tg[key]
        assert m.dtype == bool and m.shape == (len(bump), 2)
        np.testing.assert_array_equal(m, np.stack([bump == 0, bump == 1], axis=1))
    assert tg["eval_behavior"].shape == (len(truth.rows("val")), 30, 2)


def test_input_errors(maze, bad_files):
    s, _, _, _ = maze
    with pytest.raises(InputError, match="do not divide"):
        make_train_input_tensors(s, "mc_maze", 7)
    with pytest.raises(InputError, match="valid names: mc_maze"):
        make_train_input_tensors(s, "mc_mazes", 5)
    with pytest.raises(InputError, match="trials/split: no trials with split 'test'"):
        make_eval_input_tensors(s, "mc_maze", 5, "test")
    rtt = load_session(bad_files["rtt_as_maze"])
    with pytest.raises(InputError, match="trials/move_onset_time"):
        make_train_input_tensors(rtt, "mc_maze", 5)
    no_heldout = load_session(bad_files["no_heldout"])
    with pytest.raises(InputError, match="units/heldout"):
        make_train_input_tensors(no_heldout, "mc_maze", 5)
    # a test-style file without the column is fine in the test phase: all units are held-in
    ev = make_eval_input_tensors(load_session(bad_files["no_heldout_test"]), "mc_maze", 5, "test")
    assert ev["eval_spikes_heldin"].shape == (4, 140, 10)


def test_smoothing_fast_path_equals_per_window(maze, nlb_dir):
    from neurodyn.data.psth import gaussian_kernel, smoothed_bins, smoothed_windows
    from neurodyn.data.synthetic.nlb_nwb import write_nlb_nwb

    s, _, _, _ = maze
    kernel = gaussian_kernel(50)
    first = np.array([300, 1000, 2501, 4000])
    n_bins = np.array([140, 100, 140, 7])
    fast = smoothed_windows(s, True, first, n_bins, 5, kernel)
    for f, n, got in zip(first, n_bins, fast):
        np.testing.assert_allclose(got, smoothed_bins(s, True, int(f), int(n), 5, kernel), rtol=0, atol=1e-12)
    # windows reaching an unobserved stretch or the session edges take the per-window path
    path = write_nlb_nwb(
        nlb_dir / "gap.nwb",
        "mc_maze",
        n_trials=6,
        n_heldin=3,
        n_heldout=1,
        seed=2,
        obs_intervals=[(0.0, 2.0), (2.5, 20.0)],
    )
    g = load_session(path)
    first = np.array([0, 90, 126, g.n_ms // 20 - 10])  # session start, across the gap, after it, end
    got = smoothed_windows(g, False, first, np.array([10, 30, 10, 10]), 20, kernel)
    assert np.isnan(got[1]).any() and not np.isnan(got[0]).all()
    for f, n, x in zip(first, [10, 30, 10, 10], got):
        np.testing.assert_array_equal(x, smoothed_bins(g, False, int(f), n, 20, kernel))
