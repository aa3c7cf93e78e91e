"""``neurodyn plot`` of a Lorenz / LFADS prediction names its rows by their trial in the data set (helper-h144).

The ``lfads`` layout read no row ids: its rates panel was ``row 0`` whatever trial of the simulation or of the
LFADS file's ``valid_inds`` it was. It reads ``*_sequence_ids`` now, by the rule of the ``hmmglm`` layout's.
"""

from __future__ import annotations

import numpy as np
import pytest
from h5_files import one_error as _one_error
from h5_files import write_h5 as _write

from neurodyn.cli import main


def _rates(n_rows: int) -> np.ndarray:
    return np.random.default_rng(144).gamma(2.0, 0.1, (n_rows, 6, 3))


def test_the_rates_panel_names_its_row_by_its_trial(tmp_path, capsys):
    from neurodyn.viz.prediction import draw_prediction, read_prediction

    path = _write(tmp_path / "p.h5", {"valid_rates": _rates(3), "valid_sequence_ids": np.array([17, 4, 9])},
                  bin_ms=20.0)
    data = read_prediction(path)
    assert data["layout"] == "lfads" and data["sequence_ids"].tolist() == [17, 4, 9]
    fig = draw_prediction(data, trial=1)
    assert "row 1 (sequence 4): predicted rates" in {ax.get_title() for ax in fig.axes}
    assert main(["plot", str(path), "--out", str(tmp_path / "p.png"), "--trial", "17"]) == 2
    assert _one_error(capsys) == (f"neurodyn plot: error: {path}: --trial: row 17 out of range: --trial takes a row "
                                  "index, 0..2, not a sequence id: the rows hold sequences 17, 4, 9; sequence 17 is "
                                  "row 0")


@pytest.mark.parametrize("ids, message", [
    (np.array([1.0, 2.0]), "sequence ids must be integers, one per row (as neurodyn writes them, int64), found "
                           "float64"),
    (np.array([-1, 0]), "sequence ids must be >= 0, found -1"),
    (np.array([3, 3]), "expected distinct sequence ids, found 3 twice (damaged file?)"),
    (np.array([0, 1, 2]), "3 ids for 2 rows"),
])
def test_bad_ids_are_refused(tmp_path, capsys, ids, message):
    bad = _write(tmp_path / "bad.h5", {"valid_rates": _rates(2), "valid_sequence_ids": ids})
    assert main(["plot", str(bad), "--out", str(tmp_path / "b.png")]) == 2
    assert _one_error(capsys) == f"neurodyn plot: error: {bad}: valid_sequence_ids: {message}"
