"""Rows of a prediction figure are named by what they are (helper-h120): the rows of a switching-GLM
simulation's predictions were titled "sequence 0" whatever sequence of the simulation they were, and a file
naming its rows by nothing called them sequences too.
"""

from __future__ import annotations

import h5py
import numpy as np

from neurodyn.cli import main

RNG = np.random.default_rng(120)


def _write(path, tree, **attrs):
    with h5py.File(path, "w") as f:
        for key, value in tree.items():
            f[key] = value
        f.attrs.update(attrs)
    return path


def _one_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def _gamma(n_rows: int, n_bins: int = 30):
    return RNG.dirichlet(np.ones(3), size=(n_rows, n_bins))


def test_rows_without_ids_are_rows_not_sequences(tmp_path):
    """A prediction file that names its rows by nothing (written before the ids, or by other tools)."""
    from neurodyn.viz.prediction import draw_prediction, read_prediction

    path = _write(tmp_path / "p.h5", {"valid_posteriors": _gamma(2)})
    fig = draw_prediction(read_prediction(path), trial=1)
    assert "row 1: state posteriors" in {ax.get_title() for ax in fig.axes}
    assert any(ax.get_ylabel() == "row" for ax in fig.axes)


def test_sequence_ids_name_the_rows_and_bad_ones_are_refused(tmp_path, capsys):
    from neurodyn.viz.prediction import draw_prediction, read_prediction

    path = _write(tmp_path / "p.h5", {"valid_posteriors": _gamma(2), "valid_sequence_ids": np.array([30, 31])})
    data = read_prediction(path)
    assert data["sequence_ids"].tolist() == [30, 31] and data["label"] == "valid sequences"
    fig = draw_prediction(data, trial=1)
    assert "row 1 (sequence 31): state posteriors" in {ax.get_title() for ax in fig.axes}
    image = next(ax for ax in fig.axes if ax.get_ylabel() == "sequence")
    fig.canvas.draw()
    assert {t.get_text() for t in image.get_yticklabels() if t.get_text()} == {"30", "31"}
    for ids, message in [(np.array([1.5, 2.0]), "valid_sequence_ids: sequence ids must be whole numbers, found 1.5"),
                         (np.array([-1, 0]), "valid_sequence_ids: sequence ids must be >= 0, found -1"),
                         (np.array([0, 1, 2]), "valid_sequence_ids: 3 ids for 2 rows")]:
        bad = _write(tmp_path / "bad.h5", {"valid_posteriors": _gamma(2), "valid_sequence_ids": ids})
        assert main(["plot", str(bad), "--out", str(tmp_path / "b.png")]) == 2
        assert _one_error(capsys) == f"neurodyn plot: error: {bad}: {message}"
    assert not (tmp_path / "b.png").exists()
