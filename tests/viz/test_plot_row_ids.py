"""``neurodyn plot --trial`` is a row index, and rows are named by what they are (helper-h120).

``--trial 100`` on a file whose rows are NLB trials 100..124 said only "trial 100 out of range (0..24)" while the
figure titled row 0 "row 0 (NLB trial 100)"; the rows of a switching-GLM simulation's predictions were titled
"sequence 0" whatever sequence of the simulation they were, and a file naming its rows by nothing called them
sequences too.
"""

from __future__ import annotations

import numpy as np
import pytest
from h5_files import one_error as _one_error
from h5_files import write_h5 as _write

from neurodyn.cli import main
from neurodyn.errors import InputError

RNG = np.random.default_rng(120)


def _gamma(n_rows: int, n_bins: int = 30):
    return RNG.dirichlet(np.ones(3), size=(n_rows, n_bins))


def test_a_trial_id_given_to_trial_is_refused_naming_the_rows_and_the_ids(tmp_path, capsys):
    plain = _write(tmp_path / "plain.h5", {"valid_posteriors": _gamma(2)})  # rows named by nothing
    assert main(["plot", str(plain), "--out", str(tmp_path / "p.png"), "--trial", "2"]) == 2
    assert _one_error(capsys) == (f"neurodyn plot: error: {plain}: --trial: row 2 out of range: --trial takes a row "
                                  "index, 0..1")
    path = _write(tmp_path / "p.h5", {"valid_posteriors": _gamma(25), "valid_trial_ids": np.arange(100, 125)})
    assert main(["plot", str(path), "--out", str(tmp_path / "p.png"), "--trial", "100"]) == 2
    assert _one_error(capsys) == (f"neurodyn plot: error: {path}: --trial: row 100 out of range: --trial takes a row "
                                  "index, 0..24, not an NLB trial id: the rows hold NLB trials 100..124; NLB trial "
                                  "100 is row 0")
    assert main(["plot", str(path), "--out", str(tmp_path / "p.png"), "--trial", "0"]) == 0  # row 0 = trial 100
    capsys.readouterr()
    # ids that are not consecutive are listed (a few) or spanned; an id of no row names no row
    few = _write(tmp_path / "few.h5", {"valid_posteriors": _gamma(3), "valid_trial_ids": np.array([17, 4, 230])})
    assert main(["plot", str(few), "--out", str(tmp_path / "f.png"), "--trial", "5"]) == 2
    assert _one_error(capsys).endswith(": --trial: row 5 out of range: --trial takes a row index, 0..2, not an NLB "
                                       "trial id: the rows hold NLB trials 17, 4, 230")
    many = _write(tmp_path / "many.h5", {"valid_posteriors": _gamma(8),
                                         "valid_trial_ids": np.array([3, 5, 8, 9, 11, 20, 21, 40])})
    with pytest.raises(InputError) as err:  # from Python: the argument's name, not the option's
        from neurodyn.viz.prediction import plot_file

        plot_file(many, tmp_path / "m.png", trial=20)
    assert str(err.value) == (f"{many}: trial: row 20 out of range: trial takes a row index, 0..7, not an NLB trial "
                              "id: the rows hold NLB trials 3 to 40 (not consecutive); NLB trial 20 is row 5")


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
    for ids, message in [(np.array([1.5, 2.0]), "valid_sequence_ids: sequence ids must be integers, one per row (as "
                                                "neurodyn writes them, int64), found float64"),
                         (np.array([-1, 0]), "valid_sequence_ids: sequence ids must be >= 0, found -1"),
                         (np.array([0, 1, 2]), "valid_sequence_ids: 3 ids for 2 rows")]:
        bad = _write(tmp_path / "bad.h5", {"valid_posteriors": _gamma(2), "valid_sequence_ids": ids})
        assert main(["plot", str(bad), "--out", str(tmp_path / "b.png")]) == 2
        assert _one_error(capsys) == f"neurodyn plot: error: {bad}: {message}"
    assert not (tmp_path / "b.png").exists()


def test_the_help_of_trial_says_it_is_a_row_index(capsys):
    assert main(["plot", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--trial ROW" in text and "an index into the file's rows" in text and "not an NLB trial id" in text


@pytest.mark.parametrize("key, ids, message", [
    # the rule of unit ids (neurodyn.data.prepared.check_unit_ids): every writer stores row ids as int64
    # (prepare's trial_ids, predict's *_trial_ids / *_sequence_ids); whole floats were taken as ids, two rows of
    # one id were both drawn as that trial, and ids past 2**63 read as float lost their last digits
    ("valid_trial_ids", np.array([17.0, 4.0]), "NLB trial ids must be integers, one per row (as neurodyn writes "
                                               "them, int64), found float64"),
    ("valid_trial_ids", np.array([17, 17]), "expected distinct NLB trial ids, found 17 twice (damaged file?)"),
    ("valid_sequence_ids", np.array([3, 3]), "expected distinct sequence ids, found 3 twice (damaged file?)"),
    ("valid_trial_ids", np.array([2**63, 1], dtype=np.uint64), "NLB trial id 9223372036854775808 is beyond int64 "
                                                               "(damaged file?)"),
])
def test_row_ids_follow_the_rule_of_unit_ids(tmp_path, capsys, key, ids, message):
    bad = _write(tmp_path / "bad.h5", {"valid_posteriors": _gamma(2), key: ids})
    assert main(["plot", str(bad), "--out", str(tmp_path / "b.png")]) == 2
    assert _one_error(capsys) == f"neurodyn plot: error: {bad}: {key}: {message}"
    assert not (tmp_path / "b.png").exists()
