"""Fixtures for the NWB / NLB tests: small NLB-shaped NWB files written with pynwb, plus an oracle.

The oracle bins spike times directly (``np.histogram`` per trial and unit on integer-microsecond
alignment times), independently of :mod:`neurodyn.data.binning`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from neurodyn.data.synthetic.nlb_nwb import pair_names, write_nlb_nwb, write_nlb_pair

SMALL = {"n_heldin": 10, "n_heldout": 4}


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def nlb_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("nlb")


@pytest.fixture(scope="session")
def maze_pair(nlb_dir) -> Path:
    """Folder with an mc_maze-style train (24 trials) + test (8 trials) pair; returns the folder."""
    folder = nlb_dir / "maze"
    write_nlb_pair(folder, "mc_maze", n_train_trials=24, n_test_trials=8, seed=3, **SMALL)
    return folder


@pytest.fixture(scope="session")
def area2_pair(nlb_dir) -> Path:
    folder = nlb_dir / "area2"
    write_nlb_pair(folder, "area2_bump", n_train_trials=24, n_test_trials=6, seed=4, **SMALL)
    return folder


@pytest.fixture(scope="session")
def dmfc_pair(nlb_dir) -> Path:
    folder = nlb_dir / "dmfc"
    write_nlb_pair(folder, "dmfc_rsg", n_train_trials=32, n_test_trials=6, seed=5, **SMALL)
    return folder


@pytest.fixture(scope="session")
def boundary_nwb(nlb_dir) -> Path:
    """A near-silent file whose only spikes sit on and around millisecond / bin boundaries."""
    extra = {0: [0.0049994, 0.005, 0.0099999996, 0.0125], 1: [0.019999, 0.02, 0.0399996, 0.0599999996]}
    return write_nlb_nwb(
        nlb_dir / "boundary.nwb",
        "mc_maze",
        n_trials=4,
        n_heldin=2,
        n_heldout=1,
        seed=0,
        base_rate_hz=(1e-9, 2e-9),
        extra_spikes=extra,
    )


# ------------------------------------------------------------------------------------ bad inputs
def _nwbfile(identifier: str):
    from pynwb import NWBFile

    return NWBFile(
        session_description="bad input",
        identifier=identifier,
        session_start_time=datetime(2021, 1, 1, tzinfo=timezone.utc),
    )


def _write(nwb, path: Path) -> Path:
    from pynwb import NWBHDF5IO

    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


@pytest.fixture(scope="session")
def bad_files(nlb_dir, maze_pair) -> dict[str, Path]:
    """One file per kind of bad input."""
    import h5py

    d = nlb_dir / "bad"
    d.mkdir()
    out: dict[str, Path] = {}
    out["text"] = d / "notes.nwb"
    out["text"].write_text("this is not an NWB file\n")
    good = (maze_pair / pair_names("mc_maze")[0]).read_bytes()
    out["truncated"] = d / "truncated.nwb"
    out["truncated"].write_bytes(good[: len(good) // 3])
    out["plain_h5"] = d / "plain.nwb"
    with h5py.File(out["plain_h5"], "w") as f:
        f["x"] = np.arange(3)
    nwb = _nwbfile("no-units")
    nwb.add_trial_column("move_onset_time", "m")
    nwb.add_trial_column("split", "s")
    nwb.add_trial(start_time=0.0, stop_time=1.0, move_onset_time=0.5, split="train")
    out["no_units"] = _write(nwb, d / "no_units.nwb")
    nwb = _nwbfile("no-trials")
    nwb.add_unit(spike_times=[0.1, 0.2], obs_intervals=[[0.0, 1.0]])
    out["no_trials"] = _write(nwb, d / "no_trials.nwb")
    out["no_heldout"] = write_nlb_nwb(
        d / "no_heldout.nwb", "mc_maze", n_trials=8, seed=1, include_heldout_column=False, **SMALL
    )
    out["no_heldout_test"] = write_nlb_nwb(
        d / "no_heldout_test.nwb",
        "mc_maze",
        n_trials=4,
        seed=1,
        split="test",
        include_heldout_column=False,
        **SMALL,
    )
    out["rtt_as_maze"] = write_nlb_nwb(d / "rtt.nwb", "mc_rtt", n_trials=8, seed=1, **SMALL)
    out["spike_outside"] = write_nlb_nwb(
        d / "outside.nwb", "mc_maze", n_trials=6, seed=1, extra_spikes={2: [1e4]}, **SMALL
    )
    return out


# ------------------------------------------------------------------------------------ the oracle
class Truth:
    """What a test file really contains, read with h5py (not with neurodyn's reader)."""

    def __init__(self, path: Path):
        import h5py

        with h5py.File(path, "r") as f:
            u = f["units"]
            ends = u["spike_times_index"][()]
            flat = u["spike_times"][()]
            starts = np.concatenate([[0], ends[:-1]])
            self.spikes = [flat[a:b] for a, b in zip(starts, ends)]
            self.unit_ids = u["id"][()]
            self.heldout = u["heldout"][()].astype(bool) if "heldout" in u else np.zeros(len(ends), bool)
            obs_ends = u["obs_intervals_index"][()]
            obs = u["obs_intervals"][()]
            self.obs0 = obs[: obs_ends[0]]  # first unit's intervals
            t = f["intervals/trials"]
            self.trials = {k: t[k][()] for k in t.keys() if k not in ("id",) and not k.endswith("_index")}
            self.trials["id"] = t["id"][()]
            if "split" in self.trials:
                self.trials["split"] = np.array(
                    [s.decode() if isinstance(s, bytes) else s for s in self.trials["split"]]
                )
            beh = f.get("processing/behavior")
            self.behavior = {k: beh[k]["data"][()] for k in beh} if beh is not None else {}

    def units(self, heldout: bool) -> np.ndarray:
        idx = np.flatnonzero(self.heldout == heldout)
        return idx[np.argsort(self.unit_ids[idx], kind="stable")]

    def rows(self, *splits: str) -> np.ndarray:
        return np.flatnonzero(np.isin(self.trials["split"], splits))


def first_label_ms(t_s: np.ndarray, offset_ms: float, bin_ms: int) -> np.ndarray:
    """First bin start (ms) of windows ``[t + offset, ...)``: the first multiple of ``bin_ms`` at or after
    the window start, computed on integer microseconds."""
    us = np.round(np.asarray(t_s) * 1e6).astype(np.int64) + int(round(offset_ms * 1000))
    step = bin_ms * 1000
    return (-((-us) // step)) * bin_ms


def oracle_counts(
    truth: Truth,
    units: np.ndarray,
    first_ms: np.ndarray,
    n_bins: int,
    bin_ms: int,
    observed_ms: tuple[int, int] | None = None,
) -> np.ndarray:
    """Counts (trials, bins, units) by direct histogramming of the spike times.

    Spike ``t`` sits at millisecond ``int(round(t * 1000, 6))``; only milliseconds inside
    ``observed_ms`` (half-open, per window: [start, stop)) count when it is given per trial.
    """
    out = np.zeros((len(first_ms), n_bins, len(units)))
    for i, f0 in enumerate(first_ms):
        edges = f0 + bin_ms * np.arange(n_bins + 1)
        for j, u in enumerate(units):
            ms = np.round(truth.spikes[u] * 1000.0, 6).astype(np.int64)
            if observed_ms is not None:
                lo, hi = observed_ms[i]
                ms = ms[(ms >= lo) & (ms < hi)]
            out[i, :, j] = np.histogram(ms + 0.5, bins=edges)[0]
    return out


class Oracle:
    """Namespace handed to tests by the ``oracle`` fixture (tests cannot import conftest reliably)."""

    Truth = Truth
    first_label_ms = staticmethod(first_label_ms)
    counts = staticmethod(oracle_counts)
    sha256 = staticmethod(sha256)

    @staticmethod
    def pair(folder: Path, style: str) -> tuple[Path, Path]:
        """(train, test) file paths of a synthetic pair folder."""
        train, test = pair_names(style)
        return folder / train, folder / test


@pytest.fixture(scope="session")
def oracle() -> type[Oracle]:
    return Oracle
