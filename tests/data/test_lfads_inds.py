"""An LFADS-format file's ``train_inds`` / ``valid_inds`` number its rows' trials (helper-h144).

``neurodyn predict`` records them as the rows' ``*_sequence_ids``, which ``neurodyn plot`` refuses unless they are
distinct whole numbers >= 0; the reader cast them to int64 as they came (2.5 became trial 2, NaN a large negative
number) and took repeated ones, so a fit and predict ran on such a file and wrote a prediction file that plot
refused. The file is refused instead, in one line naming it and the key; the canonical file's float64 indices
that are whole numbers are read as before.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from neurodyn.data.lfads import LFADSData, read_lfads_h5
from neurodyn.errors import InputError


def _write(path, train_inds, valid_inds=(5.0, 6.0)):
    counts = np.ones((len(train_inds), 4, 2))
    with h5py.File(path, "w") as f:
        f["train_data"], f["valid_data"] = counts, np.ones((len(valid_inds), 4, 2))
        f["train_inds"], f["valid_inds"] = np.asarray(train_inds), np.asarray(valid_inds)
    return path


def test_whole_float_indices_are_read_as_before(tmp_path):
    data = read_lfads_h5(_write(tmp_path / "ok.h5", [3.0, 0.0, 4.0]), require_truth=False)
    assert data.train_inds.tolist() == [3, 0, 4] and data.train_inds.dtype == np.int64


@pytest.mark.parametrize("inds, message", [
    ([0.0, 2.5, 1.0], "train_inds: trial indices must be whole numbers, found 2.5"),
    ([0.0, np.nan, 1.0], "train_inds: trial indices must be whole numbers, found nan"),
    ([1e30, 0.0, 1.0], "train_inds: trial indices must be whole numbers, found 1e+30"),
    ([0, -1, 1], "train_inds: trial indices must be >= 0, found -1"),
    ([0, 1, 1], "train_inds: expected distinct trial indices, found 1 twice"),
])
def test_indices_that_name_no_trial_are_refused(tmp_path, inds, message):
    path = _write(tmp_path / "bad.h5", inds)
    with pytest.raises(InputError) as err:
        read_lfads_h5(path, require_truth=False)
    assert str(err.value) == f"{path}: {message}"


def test_the_writer_refuses_them_too(tmp_path):
    bad = LFADSData(np.ones((2, 4, 2)), np.ones((1, 4, 2)), train_inds=np.array([4, 4]), valid_inds=np.array([0]))
    with pytest.raises(InputError, match="train_inds: expected distinct trial indices, found 4 twice"):
        from neurodyn.data.lfads import write_lfads_h5

        write_lfads_h5(tmp_path / "out.h5", bad)
    assert list(tmp_path.iterdir()) == []
