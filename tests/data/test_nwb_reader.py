"""NWB reader: contents, the 1 ms rules, folder concatenation, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from neurodyn.data.nwb import load_session, seconds_to_ns, spike_ms_index
from neurodyn.errors import InputError

pytestmark = pytest.mark.xdist_group("nlb_data")


@pytest.mark.requires_data
def test_real_small_test_file(small_test_nwb, oracle):
    digest = oracle.sha256(small_test_nwb)
    s = load_session(small_test_nwb)
    assert (s.n_units, s.n_heldin, s.n_heldout, s.n_trials) == (107, 107, 0, 100)
    assert sum(len(t) for t in s.spike_times) == 32897
    assert s.n_ms == 79900
    assert list(s.trials) == ["trial_id", "start_time", "end_time", "move_onset_time", "split"]
    assert set(s.split()) == {"test"} and s.behavior == {}
    np.testing.assert_allclose(s.trials["end_time"] - s.trials["start_time"], 0.7)
    assert oracle.sha256(small_test_nwb) == digest  # opened read-only, bytes unchanged


def test_synthetic_train_file(maze_pair, oracle):
    train, _ = oracle.pair(maze_pair, "mc_maze")
    truth = oracle.Truth(train)
    s = load_session(train)
    assert s.n_heldin == 10 and s.n_heldout == 4 and s.n_trials == 24
    np.testing.assert_array_equal(s.trials["trial_id"], truth.trials["id"])
    np.testing.assert_array_equal(s.trials["end_time"], truth.trials["stop_time"])
    np.testing.assert_array_equal(s.trials["move_onset_time"], truth.trials["move_onset_time"])
    assert sorted(set(s.split())) == ["train", "val"]
    for u in range(s.n_units):
        np.testing.assert_array_equal(s.spike_times[u], truth.spikes[u])
    hand = s.behavior["hand_vel"]
    assert hand.columns == ("x", "y") and hand.unit == "mm/s"
    grid = hand.on_grid(s.n_ms)
    n = len(truth.behavior["hand_vel"])
    np.testing.assert_array_equal(grid[:n], truth.behavior["hand_vel"])
    assert np.isnan(grid[n:]).all()
    # the grid ends at the last obs_intervals end
    assert s.n_ms == int(round(truth.obs0[-1, 1] * 1000))


def test_behavior_timestamps_equal_rate(nlb_dir):
    from neurodyn.data.synthetic.nlb_nwb import write_nlb_nwb

    a = write_nlb_nwb(nlb_dir / "rate.nwb", "area2_bump", n_trials=3, n_heldin=2, n_heldout=1, seed=9)
    b = write_nlb_nwb(
        nlb_dir / "stamps.nwb",
        "area2_bump",
        n_trials=3,
        n_heldin=2,
        n_heldout=1,
        seed=9,
        behavior_timestamps=True,
    )
    sa, sb = load_session(a), load_session(b)
    assert sb.behavior["hand_vel"].parts[0].timestamps_path is not None
    np.testing.assert_array_equal(
        sa.behavior["hand_vel"].on_grid(sa.n_ms), sb.behavior["hand_vel"].on_grid(sb.n_ms)
    )


def test_spike_index_rule():
    t = np.array([0.0049994, 0.0049999996, 0.005, 0.0059999, 0.0099999996, 1.2345])
    np.testing.assert_array_equal(spike_ms_index(t), [4, 5, 5, 5, 10, 1234])


def test_seconds_to_ns_matches_pandas():
    pd = pytest.importorskip("pandas")
    t = np.concatenate(
        [
            np.random.default_rng(0).uniform(0, 5000, 5000),
            np.arange(0, 50, 0.001),
            np.round(np.random.default_rng(1).uniform(0, 900, 2000), 6),
        ]
    )
    expected = pd.to_timedelta(t, unit="s").as_unit("ns").asi8
    np.testing.assert_array_equal(seconds_to_ns(t), expected)


def test_folder_concatenation(maze_pair, oracle):
    train, test = oracle.pair(maze_pair, "mc_maze")
    s = load_session(maze_pair)
    st, sr = load_session(test), load_session(train)
    assert [f.path.name for f in s.files] == [test.name, train.name]  # test sorts first
    # next file starts 50 ms after the last sample, rounded up to 100 ms
    offset = int(np.ceil(((st.n_ms - 1) / 1000 + 0.05) * 10) * 100)
    assert s.files[1].offset_ms == offset and s.n_ms == offset + sr.n_ms
    np.testing.assert_array_equal(
        s.trials["trial_id"], np.r_[st.trials["trial_id"], sr.trials["trial_id"] + 8]
    )
    np.testing.assert_allclose(s.trials["move_onset_time"][8:], sr.trials["move_onset_time"] + offset / 1000)
    assert np.isnan(s.trials["trial_type"][:8]).all()  # test trials lack the condition columns
    assert (s.n_heldin, s.n_heldout) == (sr.n_heldin, sr.n_heldout)
    # held-in units carry spikes of both files; held-out units only the train file's
    u = s.group(False)[0]
    assert len(s.spike_ms[u]) == len(st.spike_ms[st.group(False)[0]]) + len(sr.spike_ms[sr.group(False)[0]])
    # held-out spikes are unobserved over the test file and the gap
    assert s.observed_ms[True][0, 0] == offset
    assert s.observed_ms[False][0, 0] == st.observed_ms[False][0, 0]


@pytest.mark.parametrize(
    "case, field",
    [
        ("text", None),
        ("truncated", None),
        ("plain_h5", None),
        ("no_units", "units"),
        ("no_trials", "trials"),
        ("spike_outside", "units/spike_times"),
    ],
)
def test_bad_files(bad_files, oracle, case, field):
    path = bad_files[case]
    digest = oracle.sha256(path)
    with pytest.raises(InputError) as err:
        load_session(path)
    msg = str(err.value)
    assert str(path) in msg and "\n" not in msg
    if field:
        assert f": {field}:" in msg
    assert oracle.sha256(path) == digest


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_session(tmp_path / "nope.nwb")
    with pytest.raises(InputError, match="no .nwb files"):
        load_session(tmp_path)


def test_a_folder_is_one_session(maze_pair, tmp_path, capsys):
    """A folder is read as one NLB session, its train and test file. A file of another session or simulation
    beside them was merged without a word: other unit ids stacked as more units (zero where that file has no
    trials), a second test file's trials added to the test set. Both are one line naming the file, through the
    prepare CLI too (exit 2, no output)."""
    import shutil

    from neurodyn.cli import main
    from neurodyn.data.synthetic.nlb_nwb import write_nlb_nwb

    other_units, other_test = tmp_path / "units", tmp_path / "test"
    for folder in (other_units, other_test):
        shutil.copytree(maze_pair, folder)
    write_nlb_nwb(other_units / "zz_other.nwb", "mc_maze", n_trials=4, seed=3, split="test", n_heldin=3, n_heldout=0)
    sizes = {"n_heldin": 10, "n_heldout": 4}  # maze_pair's (conftest SMALL): the same unit ids, another seed
    write_nlb_nwb(other_test / "zz_other.nwb", "mc_maze", n_trials=4, seed=9, split="test", **sizes)
    n_in = load_session(maze_pair).n_heldin
    with pytest.raises(InputError, match=rf"zz_other.nwb: units/id: its 3 held-in units are not the {n_in} of "):
        load_session(other_units)
    with pytest.raises(InputError, match=r"zz_other.nwb: trials/split: holds test trials, as "
                                         r"sub-Synth_ses-mcmaze_desc-test_ecephys.nwb does"):
        load_session(other_test)
    out = tmp_path / "p.h5"
    assert main(["prepare", "--dataset", "mc_maze", "--nwb", str(other_test), "--bin-ms", "20", "--phase", "test",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "trials/split: holds test trials" in err[0] and not out.exists()
