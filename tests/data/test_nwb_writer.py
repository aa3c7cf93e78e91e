"""The NLB-shaped NWB writer: schema of train and test files, seeding, and a latent worth finding."""

from __future__ import annotations

import numpy as np
import pytest

from neurodyn.data.nwb import load_session
from neurodyn.data.synthetic.nlb_nwb import pair_names, write_nlb_nwb
from neurodyn.data.tensors import make_eval_input_tensors, make_train_input_tensors
from neurodyn.errors import InputError

pytestmark = pytest.mark.xdist_group("nlb_data")


def test_pair_schema(maze_pair, oracle):
    train, test = oracle.pair(maze_pair, "mc_maze")
    assert sorted(p.name for p in maze_pair.glob("*.nwb")) == [test.name, train.name]  # test first
    tr, te = oracle.Truth(train), oracle.Truth(test)
    assert set(tr.trials) >= {
        "start_time",
        "stop_time",
        "move_onset_time",
        "trial_type",
        "trial_version",
        "split",
    }
    assert sorted(set(tr.trials["split"])) == ["train", "val"] and (tr.trials["split"] == "val").sum() == 6
    assert tr.heldout.sum() == 4 and len(tr.heldout) == 14
    assert set(tr.behavior) == {"hand_vel"} and tr.behavior["hand_vel"].shape[1] == 2
    # test file: held-in units only, test trials with alignment times only, obs_intervals = the windows
    assert sorted(te.trials) == ["id", "move_onset_time", "split", "start_time", "stop_time"]
    assert set(te.trials["split"]) == {"test"} and not te.heldout.any() and len(te.heldout) == 10
    np.testing.assert_allclose(te.trials["start_time"], te.trials["move_onset_time"] - 0.25, atol=1e-9)
    np.testing.assert_allclose(te.obs0, np.stack([te.trials["start_time"], te.trials["stop_time"]], 1))
    inside = np.zeros(0, dtype=bool)
    for spikes in te.spikes:
        hit = (spikes[:, None] >= te.obs0[:, 0]) & (spikes[:, None] < te.obs0[:, 1])
        inside = np.r_[inside, hit.any(axis=1)]
    assert inside.all() and te.behavior == {}


def test_seeded(nlb_dir, oracle):
    a = write_nlb_nwb(nlb_dir / "a.nwb", "area2_bump", n_trials=4, n_heldin=3, n_heldout=1, seed=7)
    b = write_nlb_nwb(nlb_dir / "b.nwb", "area2_bump", n_trials=4, n_heldin=3, n_heldout=1, seed=7)
    c = write_nlb_nwb(nlb_dir / "c.nwb", "area2_bump", n_trials=4, n_heldin=3, n_heldout=1, seed=8)
    ta, tb, tc = oracle.Truth(a), oracle.Truth(b), oracle.Truth(c)
    assert all(np.array_equal(x, y) for x, y in zip(ta.spikes, tb.spikes))
    np.testing.assert_array_equal(ta.behavior["hand_vel"], tb.behavior["hand_vel"])
    assert not all(np.array_equal(x, y) for x, y in zip(ta.spikes, tc.spikes))


def test_styles_and_names():
    assert pair_names("dmfc_rsg") == (
        "sub-Synth_ses-dmfcrsg_desc-train_ecephys.nwb",
        "sub-Synth_ses-dmfcrsg_desc-test_ecephys.nwb",
    )
    with pytest.raises(InputError, match="unknown style"):
        write_nlb_nwb("x.nwb", "mc_mazes")


def test_heldout_predictable_from_heldin(maze_pair):
    """Shared latents: a ridge read-out of held-in counts predicts held-out counts on val trials."""
    s = load_session(maze_pair)
    tr = make_train_input_tensors(s, "mc_maze", 20, "val", include_behavior=False, include_forward_pred=False)
    ev = make_eval_input_tensors(s, "mc_maze", 20, "val")

    def flat(x):
        return x.astype(np.float64).reshape(-1, x.shape[-1])

    xin, xout = flat(tr["train_spikes_heldin"]), flat(tr["train_spikes_heldout"])
    design = np.c_[xin, np.ones(len(xin))]
    w = np.linalg.solve(design.T @ design + 1.0 * np.eye(design.shape[1]), design.T @ xout)
    pred = np.c_[flat(ev["eval_spikes_heldin"]), np.ones(len(flat(ev["eval_spikes_heldin"])))] @ w
    truth = flat(ev["eval_spikes_heldout"])
    corr = [np.corrcoef(pred[:, j], truth[:, j])[0, 1] for j in range(truth.shape[1])]
    assert np.mean(corr) > 0.2


def test_dmfc_and_rtt_files(dmfc_pair, nlb_dir, oracle):
    train, test = oracle.pair(dmfc_pair, "dmfc_rsg")
    t = oracle.Truth(train)
    assert t.behavior == {}
    assert {"set_time", "go_time", "tp", "ts", "is_eye", "theta", "is_short", "is_outlier"} <= set(t.trials)
    assert np.all(t.trials["go_time"] > t.trials["set_time"])
    assert sorted(oracle.Truth(test).trials) == ["go_time", "id", "split", "start_time", "stop_time"]
    rtt = load_session(
        write_nlb_nwb(nlb_dir / "rtt.nwb", "mc_rtt", n_trials=6, n_heldin=3, n_heldout=1, seed=2)
    )
    assert "finger_vel" in rtt.behavior
    tr = make_train_input_tensors(rtt, "mc_rtt", 20, "val")
    assert tr["train_spikes_heldin"].shape[1:] == (30, 3) and tr["train_behavior"].shape[1:] == (30, 2)


def test_test_file_has_no_spike_past_its_last_millisecond(tmp_path):
    """The test file's grid ends at round(1000 x last window end) ms; the dmfc_rsg file of seed 103 (the size
    of benchmarks/nlb_synthetic.py) drew a spike in the partial millisecond after it, which every reader refuses."""
    path = write_nlb_nwb(tmp_path / "t.nwb", "dmfc_rsg", n_trials=100, n_heldin=40, n_heldout=14, seed=103,
                         split="test")
    session = load_session(path)  # raised InputError (units/spike_times: spike outside the session) before
    assert session.n_units == 40 and session.n_ms > 0
