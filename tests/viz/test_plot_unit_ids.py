"""``neurodyn plot`` of a rates file names its neurons by the NWB unit ids the file records.

Prediction, baseline and ensemble files carry ``heldin_unit_ids`` / ``heldout_unit_ids`` so that their columns can
be labelled, but the figure called them by column index ("neuron 3", heat-map ticks 0, 1, 2, ...).
"""

from __future__ import annotations

import re

import h5py
import numpy as np
import pytest

from neurodyn.cli import main

HELDIN, HELDOUT = [1011, 1022, 1033], [2001, 2002]


def _nlb(path, **attrs):
    rng = np.random.default_rng(3)
    rates = rng.gamma(2.0, 0.05, (2, 35, 5))
    with h5py.File(path, "w") as f:
        f["mc_maze_small_20/eval_rates_heldin"] = rates[..., :3]
        f["mc_maze_small_20/eval_rates_heldout"] = rates[..., 3:]
        f.attrs.update(attrs)
    return path


def _panels(fig):
    """The one trial's heat map, the PSTH heat map and the PSTH curves of the figure, drawn."""
    heat, (psth_map, curves) = fig.subfigs[0].axes[0], fig.subfigs[1].axes[:2]
    fig.canvas.draw()
    return heat, psth_map, curves


def _ticks(ax) -> dict:
    return {round(t.get_position()[1]): t.get_text() for t in ax.get_yticklabels() if t.get_text()}


def test_rates_panels_name_the_units_the_file_records(tmp_path):
    from neurodyn.viz.prediction import draw_prediction, read_prediction

    path = _nlb(tmp_path / "pred.h5", heldin_unit_ids=np.array(HELDIN, dtype=np.int64),
                heldout_unit_ids=np.array(HELDOUT, dtype=np.int64))
    data = read_prediction(path)
    assert data["unit_ids"].tolist() == HELDIN + HELDOUT
    heat, psth_map, curves = _panels(draw_prediction(data))
    ids = HELDIN + HELDOUT
    ticks = _ticks(heat)
    assert ticks and all(ticks[row] == str(ids[row]) for row in ticks), ticks
    assert heat.get_ylabel() == "unit id (held-in | held-out)"
    ticks = _ticks(psth_map)  # rows sorted by peak time: each tick names the unit drawn in its row
    assert ticks and set(ticks.values()) <= {str(i) for i in ids}, ticks
    assert psth_map.get_ylabel() == "unit id (sorted by peak time)"
    legend = [re.fullmatch(r"unit (\d+) \(column (\d)\)", t.get_text()) for t in curves.get_legend().get_texts()]
    assert legend and all(found and int(found[1]) == ids[int(found[2])] for found in legend), legend
    assert main(["plot", str(path), "--out", str(tmp_path / "fig.png")]) == 0


def test_files_without_ids_for_every_column_keep_the_column_indices(tmp_path):
    from neurodyn.viz.prediction import draw_prediction, read_prediction

    for name, attrs in (("none.h5", {}), ("heldin_only.h5", {"heldin_unit_ids": np.array(HELDIN)})):
        data = read_prediction(_nlb(tmp_path / name, **attrs))
        assert data["unit_ids"] is None
        heat, psth_map, curves = _panels(draw_prediction(data))
        assert heat.get_ylabel() == "neuron (held-in | held-out)"
        assert all(t.get_text().startswith("neuron ") for t in curves.get_legend().get_texts())


@pytest.mark.parametrize("ids, expected", [
    ([1011, 1022], "2 ids for 3 heldin rates columns (expected one per column)"),
    ([1011.5, 1022, 1033], "expected one integer NWB unit id per heldin rates column, found float64 of shape (3,)"),
    # the rule of a prepared file's unit_ids (whose ids these are): plot drew two columns named "unit 1011", and
    # took float ids, which no writer stores, as whole numbers
    ([1011, 1011, 1033], "expected distinct unit ids, found unit id 1011 twice (damaged file?)"),
    ([1011.0, 1022.0, 1033.0], "expected one integer NWB unit id per heldin rates column, found float64 of shape "
                               "(3,)"),
    (["a", "b", "c"], "expected one integer NWB unit id per heldin rates column, found object of shape (3,)"),
])
def test_ids_that_do_not_fit_the_columns_are_one_line(tmp_path, capsys, ids, expected):
    path = _nlb(tmp_path / "bad.h5", heldin_unit_ids=ids, heldout_unit_ids=np.array(HELDOUT))  # h5py: int64, ...
    assert main(["plot", str(path), "--out", str(tmp_path / "fig.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"neurodyn plot: error: {path}: heldin_unit_ids (attribute): {expected}"], err
    assert not (tmp_path / "fig.png").exists()


@pytest.mark.parametrize("heldin, heldout, key, expected", [
    # distinct over every column: a held-out column named like a held-in one was drawn as that unit (README:
    # "distinct integers, one per column"; NLB's held-in and held-out units are disjoint)
    (HELDIN, [1022, 2002], "heldout_unit_ids", "unit id 1022 is also a held-in unit's id (heldin_unit_ids): expected "
                                               "distinct unit ids, one per column (damaged file?)"),
    # uint64 ids past int64's range wrapped to negative ids
    (np.array([2**63, 1, 2], dtype=np.uint64), HELDOUT, "heldin_unit_ids",
     "unit id 9223372036854775808 is beyond int64 (damaged file?)"),
])
def test_ids_shared_by_held_in_and_held_out_columns_or_beyond_int64_are_one_line(tmp_path, capsys, heldin, heldout,
                                                                                  key, expected):
    path = _nlb(tmp_path / "bad.h5", heldin_unit_ids=heldin, heldout_unit_ids=np.array(heldout))
    assert main(["plot", str(path), "--out", str(tmp_path / "fig.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"neurodyn plot: error: {path}: {key} (attribute): {expected}"], err
    assert not (tmp_path / "fig.png").exists()


def test_plot_psth_and_the_heat_map_take_unit_ids():
    from neurodyn.errors import InputError
    from neurodyn.viz import plot_psth, plot_rates_heatmap

    x = np.zeros((2, 10, 3))
    for neuron, peak in ((0, 8), (1, 2), (2, 5)):  # peak order: neuron 1, 2, 0
        x[:, peak, neuron] = 1.0
    fig = plot_psth(x, bin_ms=20, sigma_ms=None, unit_ids=[7, 8, 9], neurons=[2])
    fig.canvas.draw()
    assert _ticks(fig.axes[0]) == {0: "8", 1: "9", 2: "7"}
    assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()] == ["unit 9 (column 2)"]
    fig = plot_rates_heatmap(x, bin_ms=20, unit_ids=np.array([7, 8, 9]))
    fig.canvas.draw()
    assert _ticks(fig.axes[0]) == {0: "7", 1: "8", 2: "9"} and fig.axes[0].get_ylabel() == "unit id"
    with pytest.raises(InputError, match="unit_ids: 2 ids for 3 neuron columns"):
        plot_psth(x, bin_ms=20, unit_ids=[7, 8])


@pytest.mark.parametrize("ids, expected", [
    ([7, 7, 9], "unit_ids: expected distinct unit ids"),
    ([7.0, 8.0, 9.0], r"unit_ids: expected one integer NWB unit id per neuron column, found float64"),
])
def test_the_figures_take_unit_ids_by_the_rule_of_the_files(ids, expected):
    """plot_psth / plot_rates_heatmap had a looser rule of their own (float ids taken, duplicates drawn as two
    rows of one unit); they take the ids a file may hold (:func:`neurodyn.data.prepared.check_unit_ids`)."""
    from neurodyn.errors import InputError
    from neurodyn.viz import plot_psth, plot_rates_heatmap

    x = np.ones((2, 10, 3))
    for draw in (plot_psth, plot_rates_heatmap):
        with pytest.raises(InputError, match=expected):
            draw(x, bin_ms=20, unit_ids=ids)
