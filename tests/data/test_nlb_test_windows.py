"""Simulated NLB test files: every window ``prepare`` (and nlb_tools) cuts lies inside the simulated spiking time.

A test file holds spikes only inside its trials (``obs_intervals`` = the windows, as on DANDI). The simulator left
each test window where the simulated recording had it, on the 1 ms grid; nlb_tools' first bin is ``ceil(t0 / bin)``,
so a window started up to ``bin - 1`` ms late and its last bin ran that far past ``stop_time``, where the file has
no spikes: counted as zeros (the last 20 ms bin of a 100-trial mc_maze file held 0.45x the counts of the four
before it, 0.90x in the DANDI MC_Maze_Small test file, whose windows sit on a 0.8 s grid from 0).
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from neurodyn.data.nlb import get_dataset
from neurodyn.data.prepare import prepare
from neurodyn.data.synthetic.nlb_latents import expected_counts_ms
from neurodyn.data.synthetic.nlb_nwb import STYLE_DATASET, write_nlb_pair

pytestmark = pytest.mark.xdist_group("nlb_data")

STYLES = ("mc_maze", "area2_bump", "dmfc_rsg", "mc_rtt")


@pytest.mark.parametrize("style", STYLES)
def test_every_prepared_test_window_is_a_whole_trial_of_the_file(style, tmp_path):
    """Each prepared test window starts at its trial's start_time and ends at its stop_time, at 5 and 20 ms:
    the trials lie on a grid of window + 100 ms from 0, as in the DANDI file (window starts were up to 19 ms
    late before, for most trials)."""
    # a pair: the DMFC_RSG jitter rule reads the train file's tp column even in the test phase
    _, test = write_nlb_pair(tmp_path / "nwb", style, n_train_trials=4, n_test_trials=30, n_heldin=3, n_heldout=1,
                             seed=1)
    with h5py.File(test) as f:
        start = np.round(f["intervals/trials/start_time"][()] * 1000).astype(np.int64)
        stop = np.round(f["intervals/trials/stop_time"][()] * 1000).astype(np.int64)
    window = get_dataset(STYLE_DATASET[style]).window
    length = window.end_ms - window.start_ms
    np.testing.assert_array_equal(start, np.arange(30) * (length + 100))
    np.testing.assert_array_equal(stop - start, length)
    for bin_ms in (5, 20):
        path = prepare(STYLE_DATASET[style], tmp_path / "nwb", bin_ms=bin_ms, phase="test",
                       out=tmp_path / f"p{bin_ms}.h5", log=None)
        with h5py.File(path) as f:
            first = f["window_start_ms/eval"][()]
            n_bins = f["eval_input/eval_spikes_heldin"].shape[1]
        np.testing.assert_array_equal(first, start, err_msg=f"{style} {bin_ms} ms")
        np.testing.assert_array_equal(first + n_bins * bin_ms, stop, err_msg=f"{style} {bin_ms} ms")


@pytest.mark.parametrize("style", ["mc_maze", "dmfc_rsg"])
@pytest.mark.parametrize("bin_ms", [5, 20])
def test_test_file_counts_match_the_true_rates_in_every_bin(style, bin_ms, tmp_path):
    """Summed over trials and units, the count of each bin position of the prepared test windows is Poisson
    with the true rates' sum (expected_counts_ms on the test file's windows) as mean, the last bin included;
    5 sd covers every position (35 to 300) with probability > 1 - 1e-4. The last bin was half empty before
    (14 and 18 sd below at 20 ms, 6 and 7 sd at 5 ms: the rates ran on past stop_time, the spikes did not)."""
    from neurodyn.data.synthetic.nlb_nwb import window_sums

    kw = {"n_heldin": 60, "n_heldout": 2, "seed": 2}
    dataset = STYLE_DATASET[style]
    _, test = write_nlb_pair(tmp_path / "nwb", style, n_train_trials=4, n_test_trials=60, **kw)
    path = prepare(dataset, tmp_path / "nwb", bin_ms=bin_ms, phase="test", out=tmp_path / "p.h5", log=None)
    with h5py.File(path) as f:
        observed = f["eval_input/eval_spikes_heldin"][()].astype(np.float64).sum(axis=(0, 2))
    truth = expected_counts_ms(style, n_trials=60, split="test", **kw)
    expected = window_sums(tmp_path / "nwb", dataset, bin_ms, {test.name: truth}, phase="test")
    expected = expected["eval_rates_heldin"].sum(axis=(0, 2))
    assert expected.shape == observed.shape and expected.min() > 20
    z = (observed - expected) / np.sqrt(expected)
    assert np.all(np.abs(z) < 5), f"{style} {bin_ms} ms: bins {np.flatnonzero(np.abs(z) >= 5)}, z {z.round(1)}"


def test_the_first_millisecond_of_every_test_window_holds_its_true_count():
    """expected_counts_ms took NLB readers to put a spike at ``m + u`` (u ~ U(0.05, 0.95)) in ms bin
    ``round(1000 t)``, half the time ``m + 1``, so bin ``k`` expected ``(p[k] + p[k-1]) / 2``. Readers truncate
    (nlb_tools' ``((t - t0) * rate).round(6).astype(int)``, :func:`neurodyn.data.nwb.session.spike_ms_index`): the
    spike stays in ``m`` and the expectation is ``p[k]``. The difference shows where ``p`` jumps: the first
    millisecond of a test window (nothing before it) was expected to hold half of what it holds. Summed over the
    windows and units the count is Poisson with ~200 mean (60 windows x 200 units x ~15 Hz); the old rule's
    half is ~7 sd away, and 5 sd bounds the check's false alarms by 6e-7."""
    from neurodyn.data.nwb.session import spike_ms_index

    kw = {"n_heldin": 198, "n_heldout": 2, "seed": 3}
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        _, test = write_nlb_pair(Path(tmp) / "nwb", "mc_maze", n_train_trials=2, n_test_trials=60, **kw)
        with h5py.File(test) as f:
            spikes = spike_ms_index(f["units/spike_times"][()])
            starts = spike_ms_index(f["intervals/trials/start_time"][()])
    truth = expected_counts_ms("mc_maze", n_trials=60, split="test", **kw).sum(axis=1)
    observed = np.bincount(spikes, minlength=len(truth))[:len(truth)]
    inner = starts[starts > 0]
    assert np.all(truth[inner - 1] == 0)  # nothing before a window: where the two rules differ most
    expected, seen = truth[starts].sum(), observed[starts].sum()
    assert expected > 100
    z = (seen - expected) / np.sqrt(expected)
    assert abs(z) < 5, (seen, expected, z)


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("split", ["train", "test"])
def test_expected_counts_are_the_writers_rates_bit_for_bit(style, split):
    """expected_counts_ms computes every unit's rates at once, at the test windows' milliseconds only; each value
    is the one the writer draws its spikes from (SimulatedSession.rate_per_ms, one unit over the whole file), cut
    window by window onto the test file's clock: equal bit for bit, not merely close."""
    from neurodyn.data.synthetic.nlb_latents import _simulate, _test_windows

    kw = {"n_trials": 12, "n_heldin": 4, "n_heldout": 2, "seed": 4, "split": split, "n_conditions": 4}
    got = expected_counts_ms(style, **kw)
    sim = _simulate(style, base_rate_hz=(6.0, 20.0), latent_dim=3, **kw)
    if split == "test":
        recorded, placed, length = _test_windows(style, sim.cols)
        want = np.zeros((int(placed[-1]) + length, 6))
    else:
        want = np.empty((sim.n_ms, 6))
    for u in range(6):
        p = sim.rate_per_ms(u)
        if split == "test":
            for a, b in zip(recorded, placed):
                want[b:b + length, u] = p[a:a + length]
        else:
            want[:, u] = p
    assert got.shape == want.shape and got.tobytes() == want.tobytes()
