"""evaluate / evaluate_dataset: nlb_tools' result structure, metric composition, bad input."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from neurodyn.errors import InputError
from neurodyn.io import write_h5_dict
from neurodyn.metrics import bits_per_spike, evaluate, evaluate_dataset, psth_r2, tp_corr, velocity_r2


def test_evaluate_dataset_composes_the_metrics(nlb_group):
    target, pred = nlb_group(0)
    result = evaluate_dataset(target, pred, "mc_maze")
    assert list(result) == ["co-bps", "vel R2", "psth R2", "fp-bps"]  # nlb_tools' order
    eval_rates = np.concatenate([pred["eval_rates_heldin"], pred["eval_rates_heldout"]], -1)
    train_rates = np.concatenate([pred["train_rates_heldin"], pred["train_rates_heldout"]], -1)
    assert result["co-bps"] == bits_per_spike(pred["eval_rates_heldout"], target["eval_spikes_heldout"])
    assert result["vel R2"] == velocity_r2(
        train_rates, target["train_behavior"], eval_rates, target["eval_behavior"]
    )
    assert result["psth R2"] == psth_r2(target["psth"], eval_rates, target["eval_cond_idx"])
    fwd_rates = np.dstack([pred["eval_rates_heldin_forward"], pred["eval_rates_heldout_forward"]])
    fwd_spikes = np.dstack([target["eval_spikes_heldin_forward"], target["eval_spikes_heldout_forward"]])
    assert result["fp-bps"] == bits_per_spike(fwd_rates, fwd_spikes)
    # the true rates generated the spikes: every likelihood / R² metric must beat chance
    assert result["co-bps"] > 0 and result["fp-bps"] > 0 and result["psth R2"] == pytest.approx(1.0)


def test_dmfc_reports_tp_corr(nlb_group):
    target, pred = nlb_group(1, dmfc=True)
    result = evaluate_dataset(target, pred, "dmfc_rsg_20")
    assert list(result) == ["co-bps", "tp corr", "psth R2", "fp-bps"]
    eval_rates = np.concatenate([pred["eval_rates_heldin"], pred["eval_rates_heldout"]], -1)
    assert result["tp corr"] == tp_corr(target["eval_spikes_heldout"], eval_rates, target["eval_behavior"])


def test_result_structure_and_scaling_merge(nlb_group):
    names = ["mc_maze", "mc_maze_20", "dmfc_rsg", "mc_maze_small", "mc_maze_large", "mc_maze_large_20"]
    pairs = {name: nlb_group(i, dmfc=name.startswith("dmfc")) for i, name in enumerate(names)}
    target = {name: t for name, (t, _) in pairs.items()}
    pred = {name: p for name, (_, p) in pairs.items()}
    result = evaluate(target, pred)
    assert [list(entry)[0] for entry in result] == [
        "mc_maze_split",
        "mc_maze_20_split",
        "dmfc_rsg_split",
        "mc_maze_scaling_split",
        "mc_maze_scaling_20_split",
    ]
    scaling = result[3]["mc_maze_scaling_split"]
    assert list(scaling)[:4] == ["[500] co-bps", "[500] vel R2", "[500] psth R2", "[500] fp-bps"]
    assert (
        scaling["[100] co-bps"]
        == evaluate_dataset(target["mc_maze_small"], pred["mc_maze_small"], "mc_maze_small")["co-bps"]
    )
    assert list(result[4]["mc_maze_scaling_20_split"]) == [
        "[500] co-bps",
        "[500] vel R2",
        "[500] psth R2",
        "[500] fp-bps",
    ]
    # forward rates are optional
    for key in ("eval_rates_heldin_forward", "eval_rates_heldout_forward"):
        del pred["mc_maze"][key]
    assert (
        "fp-bps"
        not in evaluate({"mc_maze": target["mc_maze"]}, {"mc_maze": pred["mc_maze"]})[0]["mc_maze_split"]
    )


@pytest.mark.parametrize(
    "key, change, message",
    [
        (
            "eval_rates_heldout",
            lambda a: a[:, :-1],
            r"mc_maze/eval_rates_heldout: expected shape \(12, 10, 3\), "
            r"got \(12, 9, 3\)",
        ),
        (
            "eval_rates_heldin",
            lambda a: a[..., :-1],
            r"eval_rates_heldin: expected shape \(12, 10, 5\), got \(12, 10, 4\)",
        ),
        ("train_rates_heldout", lambda a: a[:-2], r"train_rates_heldout: expected shape \(30, 10, 3\)"),
        (
            "eval_rates_heldout_forward",
            lambda a: a[:, :2],
            r"eval_rates_heldout_forward: expected shape \(12, 4, 3\)",
        ),
        ("eval_rates_heldout", lambda a: np.where(a > 1, np.nan, a), "NaN rate predictions"),
        ("train_rates_heldin", lambda a: -a, "negative rate predictions"),
        ("eval_rates_heldin", None, "missing key 'eval_rates_heldin'"),
        (
            "eval_rates_heldin_forward",
            None,
            "'eval_rates_heldout_forward' given without 'eval_rates_heldin_forward'",
        ),
    ],
)
def test_bad_predictions(nlb_group, key, change, message):
    target, pred = nlb_group(2)
    if change is None:
        del pred[key]
    else:
        pred[key] = change(pred[key])
    with pytest.raises(InputError, match=message):
        evaluate({"mc_maze": target}, {"mc_maze": pred})


def test_target_for_another_dataset_or_bin_size(nlb_group):
    target, pred = nlb_group(3)
    with pytest.raises(InputError, match="no target for 'mc_maze_20'.*target groups: mc_maze"):
        evaluate({"mc_maze": target}, {"mc_maze_20": pred})
    with pytest.raises(InputError, match="no target for 'area2_bump'"):
        evaluate({"mc_maze": target}, {"area2_bump": pred})
    with pytest.raises(InputError, match="unknown dataset group 'maze'"):
        evaluate({"mc_maze": target}, {"maze": pred})


def test_files_prepare_layout_and_nlb_layout(tmp_path, nlb_group):
    target, pred = nlb_group(4)
    expected = evaluate({"mc_maze_20": target}, {"mc_maze_20": pred})
    nlb_file, prepared, pred_file = tmp_path / "target.h5", tmp_path / "prepared.h5", tmp_path / "pred.h5"
    with h5py.File(nlb_file, "w") as f:
        write_h5_dict(f, {"mc_maze_20": target})
    with h5py.File(prepared, "w") as f:
        write_h5_dict(f, {"eval_target": {"mc_maze_20": target}})
        f.attrs.update({"format": "neurodyn-prepared-nlb", "dataset": "mc_maze", "bin_ms": 20})
    with h5py.File(pred_file, "w") as f:
        write_h5_dict(f, {"mc_maze_20": pred})
    assert evaluate(str(nlb_file), str(pred_file)) == expected
    assert evaluate(prepared, pred_file) == expected
    with h5py.File(prepared, "a") as f:
        f.attrs["bin_ms"] = 5
    with pytest.raises(InputError, match="prepared.h5: eval_target: expected group 'mc_maze'"):
        evaluate(prepared, pred_file)


@pytest.mark.parametrize("rows, message", [
    (lambda rows: [np.append(rows[0], 0.5), *rows[1:]], "trial indices must be whole numbers, got"),
    (lambda rows: [np.array(["a"]), *rows[1:]], "trial indices must be whole numbers, got dtype <U1"),
])
def test_a_bad_condition_index_names_its_field_once(nlb_group, rows, message):
    """A condition row with 0.5 (or text) said "mc_maze/eval_cond_idx: expected rows of trial indices
    (eval_cond_idx: trial indices must be whole numbers, got [...])": the field twice, the inner one without its
    group. Now the line is the inner message under the group's field, named once."""
    target, pred = nlb_group(5)
    target["eval_cond_idx"] = rows([np.asarray(r) for r in target["eval_cond_idx"]])
    with pytest.raises(InputError) as err:
        evaluate({"mc_maze": target}, {"mc_maze": pred})
    assert err.value.field == "mc_maze/eval_cond_idx" and err.value.message.startswith(message), str(err.value)
    assert str(err.value).count("eval_cond_idx") == 1, str(err.value)
