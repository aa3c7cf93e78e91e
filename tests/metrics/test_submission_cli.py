"""Submission writer/reader/validator and the `neurodyn evaluate` / `neurodyn submit` commands."""

from __future__ import annotations

import hashlib
import json
import shutil

import h5py
import numpy as np
import pytest

from neurodyn.cli import main
from neurodyn.errors import InputError
from neurodyn.io import write_h5_dict
from neurodyn.metrics import evaluate, read_submission, validate_submission, write_submission
from neurodyn.metrics.submission import expected_shapes_from_prepared, expected_shapes_from_registry


def registry_group(rng, dataset="mc_maze_small", bin_ms=20, n_train=6, n_eval=4):
    """Random valid rates of a dataset's registry shapes."""
    ((name, shapes),) = expected_shapes_from_registry(dataset, bin_ms).items()
    return name, {
        k: rng.gamma(2, 0.1, (n_train if k.startswith("train") else n_eval, *s[1:]))
        for k, s in shapes.items()
    }


def test_write_read_roundtrip_float32_gzip(tmp_path):
    rng = np.random.default_rng(0)
    groups = dict(registry_group(rng, d) for d in ("mc_maze_large", "mc_maze_medium", "mc_maze_small"))
    out = write_submission(tmp_path / "sub.h5", groups)
    with h5py.File(out) as f:
        ds = f["mc_maze_medium_20/eval_rates_heldout"]
        assert ds.dtype == np.float32 and ds.compression == "gzip"
    back = read_submission(out)
    assert set(back) == set(groups)
    for name in groups:
        for key, value in groups[name].items():
            np.testing.assert_array_equal(back[name][key], value.astype(np.float32))


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda g: g.pop("train_rates_heldout"), "mc_maze_small_20/train_rates_heldout: missing key"),
        (
            lambda g: g.update(eval_rates_heldout=g["eval_rates_heldout"][:, :, :-1]),
            r"eval_rates_heldout: expected shape \(4, 35, 35\), got \(4, 35, 34\)",
        ),
        (
            lambda g: g.update(eval_rates_held_out=g["eval_rates_heldout"]),
            "unknown key 'eval_rates_held_out'",
        ),
        (lambda g: g["eval_rates_heldin"].__setitem__((0, 0, 0), np.nan), "NaN rate predictions"),
        (lambda g: g["train_rates_heldin"].__setitem__((0, 0, 0), -1.0), "negative rate predictions"),
    ],
)
def test_validation_errors_and_nothing_written(tmp_path, edit, message):
    name, group = registry_group(np.random.default_rng(1))
    edit(group)
    with pytest.raises(InputError, match=message):
        write_submission(
            tmp_path / "sub.h5", {name: group}, expected_shapes_from_registry("mc_maze_small", 20)
        )
    assert list(tmp_path.iterdir()) == []  # no partial or temporary file left


def test_expected_shapes_checked_against_registry():
    rng = np.random.default_rng(2)
    name, group = registry_group(rng, bin_ms=5)
    # 20 ms expectations, 5 ms arrays: the bin count differs
    with pytest.raises(InputError, match="missing dataset group 'mc_maze_small_20'"):
        validate_submission({name: group}, expected_shapes_from_registry("mc_maze_small", 20))
    # 5 ms arrays filed under the 20 ms group name
    with pytest.raises(
        InputError, match=r"train_rates_heldin: expected shape \(\*, 35, 107\), got \(6, 140, 107\)"
    ):
        validate_submission({"mc_maze_small_20": group}, expected_shapes_from_registry("mc_maze_small", 20))
    validate_submission(
        {"mc_maze_small_20": {k: v[:, ::4] for k, v in group.items()}},
        expected_shapes_from_registry("mc_maze_small", 20),
    )


def _prepared(path, rng, n_train=6, n_eval=4, with_target=True):
    """A minimal prepare-layout file: the groups and attributes this module reads."""
    target_name, group = registry_group(rng, n_train=n_train, n_eval=n_eval)
    spikes = {k.replace("rates", "spikes"): rng.poisson(v).astype(np.float16) for k, v in group.items()}
    data = {
        "train_input": {k: v for k, v in spikes.items() if k.startswith("train")},
        "eval_input": {"eval_spikes_heldin": spikes["eval_spikes_heldin"]},
    }
    data["train_input"]["train_spikes_heldin_forward"] = rng.poisson(1.0, (n_train, 10, 107)).astype(
        np.float16
    )
    data["train_input"]["train_spikes_heldout_forward"] = rng.poisson(1.0, (n_train, 10, 35)).astype(
        np.float16
    )
    if with_target:
        behavior = rng.normal(size=(n_train, 35, 2))
        data["eval_target"] = {
            target_name: {
                "eval_spikes_heldout": rng.poisson(1.0, (n_eval, 35, 35)).astype(float),
                "train_behavior": behavior,
                "eval_behavior": rng.normal(size=(n_eval, 35, 2)),
                "eval_spikes_heldin_forward": rng.poisson(1.0, (n_eval, 10, 107)).astype(float),
                "eval_spikes_heldout_forward": rng.poisson(1.0, (n_eval, 10, 35)).astype(float),
            }
        }
    with h5py.File(path, "w") as f:
        write_h5_dict(f, data)
        f.attrs.update({"format": "neurodyn-prepared-nlb", "dataset": "mc_maze_small", "bin_ms": 20, "phase": "val"})
    return group


def test_expected_shapes_from_prepared(tmp_path):
    _prepared(tmp_path / "p.h5", np.random.default_rng(3))
    assert expected_shapes_from_prepared(tmp_path / "p.h5") == {
        "mc_maze_small_20": {
            "train_rates_heldin": (6, 35, 107),
            "train_rates_heldout": (6, 35, 35),
            "eval_rates_heldin": (4, 35, 107),
            "eval_rates_heldout": (4, 35, 35),
            "eval_rates_heldin_forward": (4, 10, 107),
            "eval_rates_heldout_forward": (4, 10, 35),
        }
    }


def test_cli_evaluate_json_and_table(tmp_path, capsys):
    rng = np.random.default_rng(4)
    group = _prepared(tmp_path / "p.h5", rng)
    with h5py.File(tmp_path / "pred.h5", "w") as f:
        write_h5_dict(f, {"mc_maze_small_20": group})
    assert (
        main(["evaluate", "--target", str(tmp_path / "p.h5"), "--pred", str(tmp_path / "pred.h5"), "--json"])
        == 0
    )
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed == evaluate(tmp_path / "p.h5", tmp_path / "pred.h5")
    assert list(printed[0]["mc_maze_scaling_20_split"]) == ["[100] co-bps", "[100] vel R2", "[100] fp-bps"]
    assert main(["evaluate", "--target", str(tmp_path / "p.h5"), "--pred", str(tmp_path / "pred.h5")]) == 0
    assert "[100] co-bps" in capsys.readouterr().out


def test_cli_evaluate_bad_input_exit_2(tmp_path, capsys):
    rng = np.random.default_rng(5)
    group = _prepared(tmp_path / "p.h5", rng)
    group["eval_rates_heldout"] = group["eval_rates_heldout"][:3]
    with h5py.File(tmp_path / "pred.h5", "w") as f:
        write_h5_dict(f, {"mc_maze_small_20": group})
    digest = hashlib.sha256((tmp_path / "p.h5").read_bytes()).hexdigest()
    assert main(["evaluate", "--target", str(tmp_path / "p.h5"), "--pred", str(tmp_path / "pred.h5")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "pred.h5: mc_maze_small_20/eval_rates_heldout: expected shape (4, 35, 35), got (3, 35, 35)" in err
    assert hashlib.sha256((tmp_path / "p.h5").read_bytes()).hexdigest() == digest  # input untouched
    _prepared(tmp_path / "test_phase.h5", rng, with_target=False)
    assert (
        main(["evaluate", "--target", str(tmp_path / "test_phase.h5"), "--pred", str(tmp_path / "pred.h5")])
        == 2
    )
    assert "eval_target" in capsys.readouterr().err


def test_cli_submit(tmp_path, capsys):
    rng = np.random.default_rng(6)
    group = _prepared(tmp_path / "p.h5", rng)
    pred_files = []
    for name, grp in [("mc_maze_small_20", group), registry_group(rng, "mc_maze_large", 20)]:
        pred_files.append(tmp_path / f"{name}.h5")
        with h5py.File(pred_files[-1], "w") as f:
            write_h5_dict(f, {name: grp})
    out = tmp_path / "submission.h5"
    args = [
        "submit",
        "--pred",
        *map(str, pred_files),
        "--out",
        str(out),
        "--prepared",
        str(tmp_path / "p.h5"),
    ]
    assert main(args) == 0
    assert set(read_submission(out)) == {"mc_maze_small_20", "mc_maze_large_20"}
    # the prepare file pins the trial count: a 5-trial eval prediction is refused, nothing written
    bad = {k: (v[:, :, :] if k.startswith("train") else np.concatenate([v, v[:1]])) for k, v in group.items()}
    with h5py.File(pred_files[0], "w") as f:
        write_h5_dict(f, {"mc_maze_small_20": bad})
    out.unlink()
    assert main(args) == 2
    assert "eval_rates_heldin: expected shape (4, 35, 107), got (5, 35, 107)" in capsys.readouterr().err
    assert not out.exists()


def test_cli_ensemble_is_the_mean_and_scores_at_least_its_members_mean(tmp_path, capsys):
    """`neurodyn ensemble`: every rate array averaged (float32 out, as every prediction file); its co-bps and
    fp-bps are at least the members' mean (the Poisson likelihood is concave in the rate) -- strictly here."""
    rng = np.random.default_rng(7)
    group = _prepared(tmp_path / "p.h5", rng)
    members = []
    for i in range(3):  # the same target, three noisy "fits"
        pred = {k: v * rng.gamma(4.0, 0.25, v.shape) for k, v in group.items()}
        members.append(tmp_path / f"pred{i}.h5")
        write_submission(members[-1], {"mc_maze_small_20": pred})
    # latents beside the rates, as `neurodyn predict` writes them: not averaged, not copied
    with h5py.File(members[0], "a") as f:
        f["latents/eval_z"] = np.zeros((2, 3, 4))
    out = tmp_path / "ens.h5"
    digests = [hashlib.sha256(m.read_bytes()).hexdigest() for m in members]
    assert main(["ensemble", "--pred", *map(str, members), "--out", str(out)]) == 0
    assert [hashlib.sha256(m.read_bytes()).hexdigest() for m in members] == digests  # inputs untouched
    assert "the mean of 3 prediction files" in capsys.readouterr().out
    back = read_submission(out)["mc_maze_small_20"]
    reads = [read_submission(m)["mc_maze_small_20"] for m in members]
    for key, value in back.items():
        mean = (reads[0][key].astype(np.float64) + reads[1][key] + reads[2][key]) / 3
        np.testing.assert_array_equal(value, mean.astype(np.float32))
    with h5py.File(out) as f:
        assert "latents" not in f
    scores = [evaluate(tmp_path / "p.h5", m)[0]["mc_maze_scaling_20_split"] for m in (out, *members)]
    for metric in ("[100] co-bps", "[100] fp-bps"):
        assert scores[0][metric] > np.mean([s[metric] for s in scores[1:]])


def test_submit_refuses_prediction_files_of_two_phases(tmp_path, capsys):
    """neurodyn predict records the NLB phase; a val-phase and a test-phase file in one submission are
    refused before anything is written (EvalAI scores the two phases apart)."""
    rng = np.random.default_rng(7)
    paths = []
    for (name, grp), phase in zip([registry_group(rng, "mc_maze_large", 20), registry_group(rng, "mc_maze_medium", 20)],
                                  ("val", "test")):
        paths.append(tmp_path / f"{name}.h5")
        with h5py.File(paths[-1], "w") as f:
            write_h5_dict(f, {name: grp})
            f.attrs["phase"] = phase
    out = tmp_path / "submission.h5"
    capsys.readouterr()
    assert main(["submit", "--pred", *map(str, paths), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "phase: mixes phases" in err[0] and ": val" in err[0] and ": test" in err[0], err
    assert not out.exists()


def _member(path, group, **attrs):
    write_submission(path, {"mc_maze_small_20": group}, attrs=attrs)
    return path


def test_ensemble_and_baseline_files_keep_their_phase_for_submit(tmp_path, capsys):
    """An ensemble (and a baseline) file recorded no attributes, so submit's phase check passed a val-phase
    ensemble beside a test-phase prediction and labelled the file '(test phase)'. Now the ensemble keeps what
    its members agree on, the baseline what its prepared file says, and submit reads the --prepared files'
    phases too."""
    rng = np.random.default_rng(3)
    group = _prepared(tmp_path / "p.h5", rng)  # phase val
    data = str(tmp_path / "p.h5")
    members = [_member(tmp_path / f"m{i}.h5", {k: v * (1 + i / 10) for k, v in group.items()}, phase="val",
                       dataset="mc_maze_small", bin_ms=20.0, data=data, checkpoint=f"/runs/s{i}/last.ckpt",
                       checkpoint_epoch=3) for i in range(2)]
    ens = tmp_path / "ens.h5"
    assert main(["ensemble", "--pred", *map(str, members), "--out", str(ens)]) == 0
    with h5py.File(ens) as f:
        assert (f.attrs["phase"], f.attrs["dataset"], f.attrs["data"]) == ("val", "mc_maze_small", data)
        assert json.loads(f.attrs["ensemble_members"]) == [str(m) for m in members]
    name, test_group = registry_group(rng, "mc_maze_medium", 20)
    test_pred = tmp_path / "test_pred.h5"
    write_submission(test_pred, {name: test_group}, attrs={"phase": "test"})
    out = tmp_path / "sub.h5"
    capsys.readouterr()
    assert main(["submit", "--pred", str(ens), str(test_pred), "--out", str(out)]) == 2
    assert "phase: mixes phases" in capsys.readouterr().err and not out.exists()
    # a file that records no phase, with a val-phase --prepared file beside a test-phase prediction
    bare = _member(tmp_path / "bare.h5", group)
    assert main(["submit", "--pred", str(bare), str(test_pred), "--prepared", data, "--out", str(out)]) == 2
    assert "phase: mixes phases" in capsys.readouterr().err and not out.exists()
    # baseline files record their prepared file's phase
    base = tmp_path / "base.h5"
    assert main(["baseline", "--prepared", data, "--out", str(base)]) == 0
    with h5py.File(base) as f:
        assert (f.attrs["phase"], f.attrs["data"], f.attrs["baseline"]) == ("val", data, "nlb_tools")
    capsys.readouterr()
    assert main(["submit", "--pred", str(base), str(test_pred), "--out", str(out)]) == 2
    assert "phase: mixes phases" in capsys.readouterr().err and not out.exists()


def test_ensemble_refuses_members_of_other_phases_data_or_one_checkpoint(tmp_path, capsys):
    """Only shapes were compared: members of another phase or of other data (a re-prepared file, another
    session of the same sizes), and byte copies of one fit's file (an ensemble of one fit), were averaged."""
    rng = np.random.default_rng(4)
    group = _prepared(tmp_path / "p.h5", rng)
    _prepared(tmp_path / "q.h5", np.random.default_rng(5))  # same sizes, other spikes
    common = {"dataset": "mc_maze_small", "bin_ms": 20.0}
    a = _member(tmp_path / "a.h5", group, phase="val", data=str(tmp_path / "p.h5"), checkpoint="/r/a.ckpt",
                checkpoint_epoch=1, **common)
    cases = [
        ({"phase": "test", "data": str(tmp_path / "p.h5")}, "phase: is a test-phase prediction"),
        ({"phase": "val", "data": str(tmp_path / "q.h5")}, "data: was made from"),
        ({"phase": "val", "data": str(tmp_path / "p.h5"), "checkpoint": "/r/a.ckpt", "checkpoint_epoch": 1},
         "checkpoint: holds the predictions of the same checkpoint"),
    ]
    out = tmp_path / "e.h5"
    for attrs, expected in cases:
        b = _member(tmp_path / "b.h5", group, **common, **attrs)
        capsys.readouterr()
        assert main(["ensemble", "--pred", str(a), str(b), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expected in err[0], err
        assert not out.exists()
    # the same data under another path (a copy) is the same data
    import shutil

    shutil.copy(tmp_path / "p.h5", tmp_path / "copy.h5")
    other_rates = {k: v * 1.1 for k, v in group.items()}  # another fit's (the same rates are refused)
    b = _member(tmp_path / "b.h5", other_rates, phase="val", data=str(tmp_path / "copy.h5"), **common)
    assert main(["ensemble", "--pred", str(a), str(b), "--out", str(out)]) == 0


def test_files_of_another_kind_are_named_for_what_they_are(tmp_path, capsys):
    """A prediction file given as --target said "unknown dataset group 'latents'", an NWB file "unknown dataset
    group 'acquisition'", an HMM-GLM prediction file given as --pred "bias: expected one group per dataset"."""
    rng = np.random.default_rng(6)
    group = _prepared(tmp_path / "p.h5", rng)
    pred = _member(tmp_path / "pred.h5", group, phase="val", module="LangevinFlowModule")
    nwb = tmp_path / "session.nwb"
    with h5py.File(nwb, "w") as f:
        f.attrs["nwb_version"] = "2.5.0"
        f.create_group("acquisition")
    hmm = tmp_path / "states.h5"
    with h5py.File(hmm, "w") as f:
        f.attrs["module"] = "HMMGLMModule"
        f["bias"] = np.zeros(3)
        f["valid_posteriors"] = np.full((2, 5, 2), 0.5)
    lorenz = tmp_path / "lorenz_pred.h5"
    with h5py.File(lorenz, "w") as f:
        f.attrs["module"] = "LangevinFlowModule"
        f["train_log_rates"] = np.zeros((2, 5, 3))
        f["valid_rates"] = np.ones((2, 5, 3))
    simulated = tmp_path / "lorenz.h5"  # an LFADS-format data file
    assert main(["simulate", "lorenz", "--out", str(simulated), "--n-conditions", "2", "--trials-per-condition", "3",
                 "--n-samples", "200", "--burn-in", "50", "--no-progress"]) == 0
    data_file = f"{simulated}: train_data: is an LFADS-format data file"
    switching = tmp_path / "sglm.h5"  # said "no eval-target groups found" as --target
    assert main(["simulate", "switching-glm", "--out", str(switching), "--n-states", "2", "--n-neurons", "3",
                 "--n-sequences", "2", "--n-bins", "20", "--no-progress"]) == 0
    switching_file = f"{switching}: format: is a simulated switching-GLM data file (spikes, states: neurodyn simulate"
    cases = [
        (["evaluate", "--target", str(switching), "--pred", str(pred)], f"{switching_file} switching-glm; fit an "
         "HMM-GLM on it), not an evaluation target"),
        (["evaluate", "--target", str(tmp_path / "p.h5"), "--pred", str(switching)], switching_file),
        (["submit", "--pred", str(switching), "--out", str(tmp_path / "s.h5")], switching_file),
        # a simulated data file said 'W: expected one group per dataset, found a dataset'
        (["submit", "--pred", str(simulated), "--out", str(tmp_path / "s.h5")], data_file),
        (["ensemble", "--pred", str(pred), str(simulated), "--out", str(tmp_path / "s.h5")], data_file),
        (["evaluate", "--target", str(tmp_path / "p.h5"), "--pred", str(simulated)], data_file),
        (["evaluate", "--target", str(simulated), "--pred", str(pred)], f"{data_file} (train_data, valid_data: "
         "spikes to fit, e.g. neurodyn simulate lorenz), not an evaluation target"),
        (["evaluate", "--target", str(pred), "--pred", str(tmp_path / "p.h5")],
         f"{pred}: --target: is a prediction file (rates), not an evaluation target: swapped --target and --pred?"),
        (["evaluate", "--target", str(nwb), "--pred", str(pred)], f"{nwb}: nwb_version: is an NWB file"),
        (["evaluate", "--target", str(tmp_path / "p.h5"), "--pred", str(hmm)],
         f"{hmm}: module: is an HMM-GLM prediction file"),
        (["submit", "--pred", str(hmm), "--out", str(tmp_path / "s.h5")], f"{hmm}: module: is an HMM-GLM prediction"),
        # a Lorenz prediction said 'train_log_rates: expected one group per dataset, found a dataset'
        (["ensemble", "--pred", str(lorenz), str(pred), "--out", str(tmp_path / "s.h5")],
         f"{lorenz}: valid_rates: is a prediction of a Lorenz / LFADS-format file (train_rates, valid_rates), not a "
         "file of NLB rates"),
    ]
    for argv, expected in cases:
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expected in err[0], err
    assert not (tmp_path / "s.h5").exists()


@pytest.mark.parametrize("with_spikes", [False, True])
def test_an_hmmglm_model_file_is_named_for_what_it_is(tmp_path, capsys, with_spikes):
    """A file of export_model_h5 (the Python API's HMM-GLM file: couplings, transitions, with spikes posteriors;
    no module attribute, no split prefixes) said "basis: expected one group per dataset, found a dataset" to
    ensemble / submit / evaluate --pred, and "no eval-target groups found" to evaluate --target."""
    import torch

    from neurodyn.models.hmmglm import HMMGLMConfig, build_model
    from neurodyn.models.hmmglm.evaluate import export_model_h5

    group = _prepared(tmp_path / "p.h5", np.random.default_rng(6))
    pred = _member(tmp_path / "pred.h5", group, phase="val", module="LangevinFlowModule")
    model = build_model(3, HMMGLMConfig(variant="onehot", n_states=2))
    spikes = torch.zeros(2, 10, 3) if with_spikes else None
    hmm = export_model_h5(tmp_path / "model.h5", model, spikes=spikes)
    what = f"{hmm}: coupling: is an HMM-GLM model file"
    cases = [
        ["evaluate", "--target", str(tmp_path / "p.h5"), "--pred", str(hmm)],
        ["evaluate", "--target", str(hmm), "--pred", str(pred)],
        ["submit", "--pred", str(hmm), "--out", str(tmp_path / "s.h5")],
        ["ensemble", "--pred", str(pred), str(hmm), "--out", str(tmp_path / "s.h5")],
    ]
    for argv in cases:
        capsys.readouterr()
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and what in err[0], (argv, err)
    assert not (tmp_path / "s.h5").exists()


def test_a_prediction_file_as_target_from_python_names_no_option(tmp_path):
    """load_target() / evaluate() from Python said '--target: ... swapped --target and --pred?', options of
    neurodyn evaluate (whose line the test above keeps); a Python caller reads the file and what is wrong."""
    from neurodyn.metrics import load_target

    group = _prepared(tmp_path / "p.h5", np.random.default_rng(6))
    pred = _member(tmp_path / "pred.h5", group, phase="val", module="LangevinFlowModule")
    expected = (f"{pred}: is a prediction file (rates), not an evaluation target: swapped the target and the "
                "prediction?")
    for call in (lambda: load_target(pred), lambda: evaluate(pred, tmp_path / "p.h5")):
        with pytest.raises(InputError) as err:
            call()
        assert str(err.value) == expected


def test_evaluate_notes_predictions_of_other_data(tmp_path, capsys):
    """Predictions recorded as made from a prepared file of other NWB sources (another session or seed of the
    same sizes) were scored against a target without a word; a 20 ms prediction scored at 5 ms (another file
    of the same sources) is not other data."""
    rng = np.random.default_rng(8)
    group = _prepared(tmp_path / "p.h5", rng)
    _prepared(tmp_path / "q.h5", np.random.default_rng(9))
    for name, source in (("p.h5", "a" * 64), ("q.h5", "b" * 64)):
        with h5py.File(tmp_path / name, "a") as f:
            f.attrs["source_sha256"] = np.array([source], dtype=object)
    for data, noted in (("q.h5", True), ("p.h5", False)):
        pred = _member(tmp_path / f"pred_{data}", group, phase="val", data=str(tmp_path / data))
        capsys.readouterr()
        assert main(["evaluate", "--target", str(tmp_path / "p.h5"), "--pred", str(pred), "--json"]) == 0
        out, err = capsys.readouterr()
        json.loads(out)  # the note leaves --json output one JSON document
        assert (f"note: {pred} was predicted from {tmp_path / data}" in err) is noted, err
        assert ("other data" in err) is noted


def test_evaluate_a_prediction_without_its_phase_is_not_other_data(tmp_path, capsys):
    """helper-58: a prediction file of the same NWB sources whose phase attribute is missing was noted as
    '(NWB sources aaaa..., None phase); ... (val phase): other data'. An unrecorded phase is taken from the
    data file it names, and is not compared where neither records one."""
    rng = np.random.default_rng(8)
    group = _prepared(tmp_path / "p.h5", rng)
    with h5py.File(tmp_path / "p.h5", "a") as f:
        f.attrs["source_sha256"] = np.array(["a" * 64], dtype=object)
    pred = _member(tmp_path / "pred.h5", group, data=str(tmp_path / "p.h5"),
                   data_source_sha256=np.array(["a" * 64], dtype=object))
    capsys.readouterr()
    assert main(["evaluate", "--target", str(tmp_path / "p.h5"), "--pred", str(pred), "--json"]) == 0
    assert "other data" not in capsys.readouterr().err


def test_evaluate_unknown_source_digest_is_not_other_data(tmp_path, capsys):
    """A prepared file streamed from a plain URL records source_sha256 "" (unknown; no digest is borrowed):
    it cannot be compared, so no "other data" note against a file of known sources (there was one)."""
    rng = np.random.default_rng(8)
    group = _prepared(tmp_path / "p.h5", rng)
    _prepared(tmp_path / "r.h5", np.random.default_rng(9))
    for name, source in (("p.h5", "a" * 64), ("r.h5", "")):
        with h5py.File(tmp_path / name, "a") as f:
            f.attrs["source_sha256"] = np.array([source], dtype=object)
    pred = _member(tmp_path / "pred_r.h5", group, phase="val", data=str(tmp_path / "r.h5"))
    capsys.readouterr()
    assert main(["evaluate", "--target", str(tmp_path / "p.h5"), "--pred", str(pred), "--json"]) == 0
    assert "other data" not in capsys.readouterr().err


def test_evaluate_scores_the_groups_with_a_target_and_names_the_rest(tmp_path, capsys):
    """A submission holding both bin widths (``submit --upsample 5``) against one target file was refused,
    with a hint to add --upsample 5 (itself refused: the group is already there); ``--upsample 5`` beside a
    20 ms target scored the 20 ms group and said nothing of the unscored 5 ms one. Now the groups with a target
    are scored and a note names the others; no group with a target is still the one-line error."""
    from neurodyn.commands.baseline import predict_prepared
    from neurodyn.data.prepare import prepare
    from neurodyn.data.synthetic.nlb_nwb import write_nlb_pair

    write_nlb_pair(tmp_path / "nwb", "mc_maze", n_train_trials=16, n_test_trials=4, n_heldin=6, n_heldout=3, seed=2)
    p20, p5 = (prepare("mc_maze_small", tmp_path / "nwb", b, "val", tmp_path / f"p{b}.h5", log=None) for b in (20, 5))
    pred = write_submission(tmp_path / "pred.h5", predict_prepared(p20, "mc_maze_small"))
    both = tmp_path / "both.h5"
    assert main(["submit", "--pred", str(pred), "--upsample", "5", "--prepared", str(p20), str(p5), "--out",
                 str(both)]) == 0
    scores = {}
    for name, argv in (("both vs 5", ["--target", str(p5), "--pred", str(both)]),
                       ("both vs 20", ["--target", str(p20), "--pred", str(both)]),
                       ("upsampled", ["--target", str(p5), "--pred", str(pred), "--upsample", "5"]),
                       ("upsample vs 20", ["--target", str(p20), "--pred", str(pred), "--upsample", "5"]),
                       ("both vs both", ["--target", str(p20), str(p5), "--pred", str(both)])):
        capsys.readouterr()
        assert main(["evaluate", *argv, "--json"]) == 0, name
        out, err = capsys.readouterr()
        scores[name] = {k: v for entry in json.loads(out) for k, v in entry.items()}
        notes = [line for line in err.splitlines() if line.startswith("note: not scored")]
        unscored = {"both vs 5": "mc_maze_small_20 (targets: mc_maze_small;",
                    "both vs 20": "mc_maze_small (targets: mc_maze_small_20;",
                    "upsample vs 20": "mc_maze_small (targets: mc_maze_small_20;"}.get(name)
        assert notes == ([f"note: not scored, no target given: {unscored} --target takes several files)"]
                         if unscored else []), (name, err)
    assert scores["both vs 5"] == scores["upsampled"] and scores["both vs 20"] == scores["upsample vs 20"]
    assert scores["both vs both"] == {**scores["both vs 5"], **scores["both vs 20"]}
    assert set(scores["both vs 5"]) == {"mc_maze_scaling_split"} and set(scores["both vs 20"]) == {
        "mc_maze_scaling_20_split"}
    assert main(["evaluate", "--target", str(p5), "--pred", str(pred)]) == 2  # nothing with a target: refused
    assert "--upsample 5 makes its 5 ms group" in capsys.readouterr().err


def test_submit_records_its_phase_and_notes_an_upsample_that_adds_nothing(tmp_path, capsys):
    """A submission recorded no attribute (``info`` could not tell its phase); ``--upsample 20`` on 20 ms
    predictions added nothing without a word."""
    from neurodyn.io.hdf5 import root_attrs

    rng = np.random.default_rng(3)
    group = _prepared(tmp_path / "p.h5", rng)
    pred = _member(tmp_path / "pred.h5", group, phase="val")
    out = tmp_path / "s.h5"
    assert main(["submit", "--pred", str(pred), "--prepared", str(tmp_path / "p.h5"), "--upsample", "20",
                 "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "note: --upsample 20: no prediction group is coarser than 20 ms; nothing was added"
    assert root_attrs(out) == {"phase": "val"} and list(read_submission(out)) == ["mc_maze_small_20"]


def test_evaluate_notes_an_upsample_that_adds_nothing_as_submit_does(tmp_path, capsys):
    """``evaluate --upsample 20`` on 20 ms predictions and a 20 ms target did nothing without a word, while
    ``submit --upsample 20`` noted it; both print the same note (evaluate on stderr: --json stays JSON)."""
    rng = np.random.default_rng(3)
    group = _prepared(tmp_path / "p.h5", rng)
    pred = _member(tmp_path / "pred.h5", group, phase="val")
    assert main(["evaluate", "--target", str(tmp_path / "p.h5"), "--pred", str(pred), "--upsample", "20",
                 "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)[0]["mc_maze_scaling_20_split"]["[100] co-bps"] is not None
    assert err.splitlines() == ["note: --upsample 20: no prediction group is coarser than 20 ms; nothing was added"]
    assert main(["evaluate", "--target", str(tmp_path / "p.h5"), "--pred", str(pred), "--json"]) == 0
    assert capsys.readouterr().err == ""  # no --upsample, no note


def test_evaluate_notes_fp_bps_left_out_for_predictions_without_forward_rates(tmp_path, capsys):
    """Predictions without forward rates (a model or baseline of a ``prepare --no-forward`` file) against a
    target with forward spikes: fp-bps is left out, as nlb_tools leaves it out, but no longer without a word."""
    rng = np.random.default_rng(5)
    group = _prepared(tmp_path / "p.h5", rng)
    pred = _member(tmp_path / "pred.h5", {k: v for k, v in group.items() if not k.endswith("_forward")},
                   phase="val")
    assert main(["evaluate", "--target", str(tmp_path / "p.h5"), "--pred", str(pred), "--json"]) == 0
    out, err = capsys.readouterr()
    assert "[100] fp-bps" not in json.loads(out)[0]["mc_maze_scaling_20_split"]
    assert err.splitlines() == [
        f"note: {pred}: mc_maze_small_20: no forward rates (eval_rates_heldin_forward, eval_rates_heldout_forward), "
        f"so fp-bps is not computed although {tmp_path / 'p.h5'} holds forward spikes (predictions of a file "
        "prepared with --no-forward have none)"]


def test_submit_upsample_errors_name_the_prediction_file(tmp_path, capsys):
    """``--upsample 20`` on a 5 ms group, and a 5 ms group already beside the 20 ms one it would be made of,
    were one line naming no file (``mc_maze_small: cannot split 5 ms bins into 20 ms bins``)."""
    rng = np.random.default_rng(4)
    group = _prepared(tmp_path / "p.h5", rng)
    fine = tmp_path / "fine.h5"
    write_submission(fine, {"mc_maze_small": {k: np.repeat(v, 4, axis=1) / 4 for k, v in group.items()}})
    assert main(["submit", "--pred", str(fine), "--upsample", "20", "--out", str(tmp_path / "a.h5")]) == 2
    assert f"{fine}: mc_maze_small: cannot split 5 ms bins into 20 ms bins" in capsys.readouterr().err
    coarse = _member(tmp_path / "coarse.h5", group)
    assert main(["submit", "--pred", str(coarse), str(fine), "--upsample", "5", "--out", str(tmp_path / "b.h5")]) == 2
    assert (f"{fine}: mc_maze_small: group 'mc_maze_small' is already there; nothing to upsample "
            "'mc_maze_small_20' into (drop --upsample)") in capsys.readouterr().err
    assert not (tmp_path / "a.h5").exists() and not (tmp_path / "b.h5").exists()


def test_ensemble_refuses_a_member_that_would_count_twice(tmp_path, capsys):
    """An ensemble file and one of its own members, a copy of an ensemble, a submission made from a member (no
    checkpoint recorded) beside it, a byte copy of a baseline: each was averaged with exit 0, one fit counting
    twice (helper-48: ensemble of ens(pred0, pred1) and pred0 = 0.75 pred0 + 0.25 pred1)."""
    rng = np.random.default_rng(6)
    group = _prepared(tmp_path / "p.h5", rng)
    common = {"phase": "val", "dataset": "mc_maze_small", "bin_ms": 20.0, "data": str(tmp_path / "p.h5")}
    a, b, c = (_member(tmp_path / f"{n}.h5", {k: v * (1 + i / 10) for k, v in group.items()},
                       checkpoint=f"/r/{n}.ckpt", checkpoint_epoch=1, **common) for i, n in enumerate("abc"))
    for path, seed in ((a, 7), (b, 11)):  # c's run recorded no seed (an older neurodyn)
        with h5py.File(path, "r+") as f:
            f.attrs["checkpoint_seed_everything"] = np.int64(seed)
    ab = tmp_path / "ab.h5"
    assert main(["ensemble", "--pred", str(a), str(b), "--out", str(ab)]) == 0
    copy = tmp_path / "ab_copy.h5"
    shutil.copyfile(ab, copy)
    bare = tmp_path / "bare.h5"  # the rates of a with no attributes (as a submission made from it)
    shutil.copyfile(a, bare)
    with h5py.File(bare, "r+") as f:
        for key in list(f.attrs):
            del f.attrs[key]
    out = tmp_path / "out.h5"
    for pred, expected in [
        ([ab, a], f"{a}: --pred: holds the predictions of {a}, as {ab} does"),
        ([ab, copy], f"{copy}: --pred: holds the predictions of {a}, as {ab} does"),
        ([a, bare], f"{bare}: --pred: has the same rates as {a}"),
    ]:
        capsys.readouterr()
        assert main(["ensemble", "--pred", *map(str, pred), "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expected in err[0], err
        assert not out.exists()
    # an ensemble of an ensemble and another fit: allowed, with a note on the weights; it records every file
    # underneath, so a member of the inner ensemble is refused beside it too
    abc = tmp_path / "abc.h5"
    assert main(["ensemble", "--pred", str(ab), str(c), "--out", str(abc)]) == 0
    assert f"note: {ab} is itself an ensemble of 2 files: each of them weighs 1/4" in capsys.readouterr().err
    with h5py.File(abc) as f:
        assert json.loads(f.attrs["ensemble_sources"]) == [str(a), str(b), str(c)]
        assert json.loads(f.attrs["ensemble_fits"]) == [["/r/a.ckpt", 1], ["/r/b.ckpt", 1], ["/r/c.ckpt", 1]]
        # each fit's seed beside it, through the nested ensemble (ensemble files listed none)
        assert json.loads(f.attrs["ensemble_seeds"]) == [7, 11, None]
    assert main(["ensemble", "--pred", str(abc), str(b), "--out", str(out)]) == 2
    assert f"holds the predictions of {b}, as {abc} does" in capsys.readouterr().err


def test_a_baseline_file_keeps_the_window_starts_for_upsample(tmp_path, capsys):
    """helper-56: baseline files recorded no window starts, so a 20 ms baseline scored at 5 ms was spread as if
    each trial's windows started together, with a note blaming an old file."""
    from neurodyn.data.prepare import prepare
    from neurodyn.data.synthetic.nlb_nwb import write_nlb_pair
    from neurodyn.metrics.resample import read_window_starts

    write_nlb_pair(tmp_path / "nwb", "mc_maze", n_train_trials=16, n_test_trials=4, n_heldin=6, n_heldout=3, seed=2)
    p20, p5 = (prepare("mc_maze_small", tmp_path / "nwb", b, "val", tmp_path / f"p{b}.h5", log=None) for b in (20, 5))
    base = tmp_path / "base.h5"
    assert main(["baseline", "--prepared", str(p20), "--out", str(base)]) == 0
    starts = read_window_starts(base)["mc_maze_small_20"]
    for split in ("train", "eval"):
        np.testing.assert_array_equal(starts[split], read_window_starts(p20)["mc_maze_small_20"][split])
    capsys.readouterr()
    assert main(["evaluate", "--target", str(p5), "--pred", str(base), "--upsample", "5", "--json"]) == 0
    assert "note:" not in capsys.readouterr().err


def test_a_baseline_file_records_the_settings_it_was_made_with(tmp_path):
    """``--sigma-ms 80 --alpha 5 --heldin glm`` wrote the same attributes as the defaults (``baseline:
    nlb_tools``), so two baseline files of other rates could not be told apart."""
    _prepared(tmp_path / "p.h5", np.random.default_rng(7))
    default, changed = tmp_path / "b.h5", tmp_path / "b80.h5"
    assert main(["baseline", "--prepared", str(tmp_path / "p.h5"), "--out", str(default)]) == 0
    assert main(["baseline", "--prepared", str(tmp_path / "p.h5"), "--out", str(changed), "--sigma-ms", "80",
                 "--alpha", "5", "--heldin", "glm"]) == 0
    keys = ("baseline", "baseline_sigma_ms", "baseline_alpha", "baseline_heldin", "baseline_solver")
    with h5py.File(default) as f:
        assert tuple(f.attrs[k] for k in keys) == ("nlb_tools", 40.0, 0.1, "smooth", "lbfgs")
    with h5py.File(changed) as f:
        assert tuple(f.attrs[k] for k in keys) == ("nlb_tools, modified", 80.0, 5.0, "glm", "lbfgs")
        # the data file's bytes, as neurodyn predict records them (ensemble and evaluate compare them)
        from neurodyn.io import file_digest

        assert f.attrs["data_sha256"] == file_digest(tmp_path / "p.h5")["sha256"]


def test_predictions_of_a_data_file_re_made_in_place_are_refused_or_noted(tmp_path, capsys):
    """Prediction files recorded only the data file's path: predictions made before and after it was re-made in
    place (another session or seed under the same name) were ensembled, and scored against it, without a word
    (helper-48). Now they record its SHA-256 and NWB sources as predicted."""
    rng = np.random.default_rng(10)
    group = _prepared(tmp_path / "p.h5", rng)
    with h5py.File(tmp_path / "p.h5", "a") as f:
        f.attrs["source_sha256"] = np.array(["b" * 64], dtype=object)  # the file as it is now
    data = str(tmp_path / "p.h5")
    common = {"phase": "val", "dataset": "mc_maze_small", "bin_ms": 20.0, "data": data}
    old = _member(tmp_path / "old.h5", group, data_sha256="1" * 64, data_source_sha256=np.array(["a" * 64],
                  dtype=object), checkpoint="/r/a.ckpt", checkpoint_epoch=0, **common)
    new = _member(tmp_path / "new.h5", {k: v * 1.1 for k, v in group.items()}, data_sha256="2" * 64,
                  checkpoint="/r/b.ckpt", checkpoint_epoch=0, **common)
    out = tmp_path / "e.h5"
    assert main(["ensemble", "--pred", str(old), str(new), "--out", str(out)]) == 2
    assert (f"{new}: data_sha256: was made from data of SHA-256 222222222222..., {old} from 111111111111... "
            "(another data file, or one re-made between the predictions)") in capsys.readouterr().err
    assert not out.exists()
    # evaluate: the NWB sources recorded at predict time, not those of the file now
    assert main(["evaluate", "--target", data, "--pred", str(old)]) == 0
    assert f"note: {old} was predicted from {data} (NWB sources aaaaaaaaaaaa..., val phase)" in capsys.readouterr().err
    # without recorded sources: the file's bytes changed since
    assert main(["evaluate", "--target", data, "--pred", str(new)]) == 0
    assert f"note: {data} has changed since {new} was predicted from it" in capsys.readouterr().err


def test_submit_notes_groups_without_forward_rates_where_the_data_have_forward_bins(tmp_path, capsys):
    """``submit`` accepted predictions without forward rates without a word (valid: fp-bps is then not computed
    for the group); it now notes it where the data have forward bins, from the prepared file or, without
    ``--prepared``, the registry -- and says nothing where the predictions have them."""
    rng = np.random.default_rng(6)
    group = _prepared(tmp_path / "p.h5", rng)
    pred = _member(tmp_path / "pred.h5", {k: v for k, v in group.items() if not k.endswith("_forward")},
                   phase="val")
    note = (f"note: {pred}: mc_maze_small_20: no forward rates (eval_rates_heldin_forward, "
            "eval_rates_heldout_forward), so fp-bps will not be computed for it (predictions of a file prepared "
            "with --no-forward have none)")
    for i, prepared in enumerate(([], ["--prepared", str(tmp_path / "p.h5")])):
        out = tmp_path / f"s{i}.h5"
        assert main(["submit", "--pred", str(pred), *prepared, "--out", str(out)]) == 0
        printed = capsys.readouterr()
        assert note in printed.out.splitlines(), printed
        assert set(read_submission(out)["mc_maze_small_20"]) == {k for k in group if not k.endswith("_forward")}
    whole = _member(tmp_path / "whole.h5", group, phase="val")
    assert main(["submit", "--pred", str(whole), "--prepared", str(tmp_path / "p.h5"),
                 "--out", str(tmp_path / "w.h5")]) == 0
    assert "fp-bps" not in capsys.readouterr().out


@pytest.mark.parametrize("command", ["submit", "ensemble"])
def test_a_missing_pred_file_is_called_a_prediction_file(tmp_path, capsys, command):
    """``submit --pred missing.h5`` said "no such file (submission file)": the file submit writes (--out), not the
    prediction file it reads; ensemble's --pred too."""
    missing = tmp_path / "missing.h5"
    preds = [str(missing)] if command == "submit" else [str(missing), str(missing)]
    assert main([command, "--pred", *preds, "--out", str(tmp_path / "out.h5")]) == 2
    assert capsys.readouterr().err.strip() == f"neurodyn {command}: error: {missing}: no such file (prediction file)"
    assert sorted(tmp_path.iterdir()) == []
