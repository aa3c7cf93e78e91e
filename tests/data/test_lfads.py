"""LFADS-format HDF5: round trip, the canonical key set alone, and bad input."""

from __future__ import annotations

import hashlib

import h5py
import numpy as np
import pytest

from neurodyn.data.lfads import (
    CANONICAL_KEYS,
    LFADSData,
    lfads_from_simulation,
    read_lfads_h5,
    write_lfads_h5,
)
from neurodyn.data.synthetic.lorenz import simulate_lorenz
from neurodyn.errors import InputError


@pytest.fixture(scope="module")
def sim():
    return simulate_lorenz(seed=5, n_conditions=4, trials_per_condition=5, n_samples=200, n_neurons=6)


def _canonical_file(path, n_train=8, n_valid=2, n_bins=5, n_neurons=3, factor=50.0, drop=()):
    """Write a file with only the keys of ``data/lfads_lorenz.h5`` in https://github.com/snel-repo/neural-data-transformers
    (as NDT / AutoLFADS expect), by hand."""
    rng = np.random.default_rng(0)
    truth = rng.uniform(0.01, 3.0, size=(n_train + n_valid, n_bins, n_neurons))
    counts = rng.poisson(truth)
    inds = rng.permutation(n_train + n_valid)
    arrays = {
        "train_data": counts[:n_train], "valid_data": counts[n_train:],
        "train_truth": truth[:n_train] * factor, "valid_truth": truth[n_train:] * factor,
        "conversion_factor": np.float64(factor),
        "train_inds": inds[:n_train].astype(float), "valid_inds": inds[n_train:].astype(float),
    }
    with h5py.File(path, "w") as f:
        for key, value in arrays.items():
            if key not in drop:
                f.create_dataset(key, data=value)
    return truth, counts, inds


def test_round_trip(tmp_path, sim):
    path = write_lfads_h5(tmp_path / "lorenz.h5", sim)
    expected = lfads_from_simulation(sim)
    got = read_lfads_h5(path)
    for key in ("train_data", "valid_data", "train_inds", "valid_inds", "train_latents", "valid_latents",
                "train_condition_ids", "valid_condition_ids"):
        np.testing.assert_array_equal(getattr(got, key), getattr(expected, key), err_msg=key)
    # truth is stored x conversion_factor and divided back: equal up to two roundings
    np.testing.assert_allclose(got.train_truth, sim.truth[sim.train_inds], rtol=4 * np.finfo(float).eps)
    np.testing.assert_allclose(got.valid_truth, sim.truth[sim.valid_inds], rtol=4 * np.finfo(float).eps)
    np.testing.assert_allclose(got.extras["valid_truth_lambda_sum"], sim.truth_lambda_sum[sim.valid_inds],
                               rtol=4 * np.finfo(float).eps)
    np.testing.assert_array_equal(got.extras["W"], sim.readout_weights)
    assert got.conversion_factor == 50.0 and got.bin_ms == 20.0
    assert "expected binary count" in got.attrs["truth_kind"]
    with h5py.File(path, "r") as f:  # the canonical keys hold what NDT expects
        assert set(CANONICAL_KEYS) <= set(f)
        assert f["train_data"].shape == (len(sim.train_inds), 10, 6)
        np.testing.assert_allclose(f["valid_truth"][()] / f["conversion_factor"][()],
                                   sim.truth[sim.valid_inds], rtol=4 * np.finfo(float).eps)
    assert [p.name for p in tmp_path.iterdir()] == ["lorenz.h5"]  # no temporary left behind


def test_reads_canonical_layout_only(tmp_path):
    path = tmp_path / "lfads_lorenz.h5"
    truth, counts, inds = _canonical_file(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    data = read_lfads_h5(path)
    np.testing.assert_array_equal(data.train_data, counts[:8])
    np.testing.assert_allclose(data.valid_truth, truth[8:], rtol=4 * np.finfo(float).eps)
    np.testing.assert_array_equal(data.train_inds, inds[:8])
    assert data.train_inds.dtype == np.int64
    assert data.train_latents is None and data.bin_ms is None and data.extras == {}
    assert (data.n_bins, data.n_neurons) == (5, 3)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest  # input never modified


def test_data_only_file_without_truth(tmp_path):
    path = tmp_path / "real.h5"
    _canonical_file(path, drop=("train_truth", "valid_truth", "conversion_factor"))
    with pytest.raises(InputError, match="train_truth"):
        read_lfads_h5(path)
    data = read_lfads_h5(path, require_truth=False)
    assert data.train_truth is None and data.valid_truth is None


def test_missing_file_and_not_hdf5(tmp_path):
    with pytest.raises(InputError, match="no such file") as err:
        read_lfads_h5(tmp_path / "absent.h5")
    assert "absent.h5" in str(err.value)
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5\n")
    with pytest.raises(InputError, match=r"not an HDF5 file \(LFADS-format file\)") as err:
        read_lfads_h5(text)
    assert "notes.h5" in str(err.value)


@pytest.mark.parametrize("key", ["train_data", "valid_data", "train_truth", "valid_truth",
                                 "conversion_factor"])
def test_missing_required_key(tmp_path, key):
    path = tmp_path / "x.h5"
    _canonical_file(path, drop=(key,))
    with pytest.raises(InputError) as err:
        read_lfads_h5(path)
    assert str(err.value) == f"{path}: {key}: missing key"


def test_shape_mismatch_between_data_and_truth(tmp_path):
    path = tmp_path / "x.h5"
    _canonical_file(path)
    with h5py.File(path, "a") as f:
        del f["valid_truth"]
        f.create_dataset("valid_truth", data=np.ones((2, 4, 3)))
    with pytest.raises(InputError, match="valid_truth") as err:
        read_lfads_h5(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("edit", ["2d_data", "neurons_differ", "bad_factor", "inds_length", "overlap"])
def test_other_bad_contents(tmp_path, edit):
    path = tmp_path / "x.h5"
    _canonical_file(path)
    with h5py.File(path, "a") as f:
        if edit == "2d_data":
            del f["train_data"]
            f["train_data"] = np.ones((8, 5))
        elif edit == "neurons_differ":
            del f["valid_data"], f["valid_truth"]
            f["valid_data"] = np.ones((2, 5, 4))
            f["valid_truth"] = np.ones((2, 5, 4))
        elif edit == "bad_factor":
            del f["conversion_factor"]
            f["conversion_factor"] = 0.0
        elif edit == "inds_length":
            del f["train_inds"]
            f["train_inds"] = np.arange(3)
        else:
            del f["valid_inds"]
            f["valid_inds"] = f["train_inds"][:2]
    with pytest.raises(InputError):
        read_lfads_h5(path)


def test_writer_rejects_bad_data_and_leaves_no_file(tmp_path):
    bad = LFADSData(np.ones((2, 5, 3)), np.ones((1, 5, 3)), np.ones((2, 5, 3)), np.ones((1, 4, 3)))
    with pytest.raises(InputError, match="valid_truth"):
        write_lfads_h5(tmp_path / "bad.h5", bad)
    shadow = LFADSData(np.ones((2, 5, 3)), np.ones((1, 5, 3)), extras={"train_data": np.zeros(1)})
    with pytest.raises(InputError, match="train_data"):
        write_lfads_h5(tmp_path / "bad.h5", shadow)
    assert list(tmp_path.iterdir()) == []
