"""The README's NLB user path on CPU: CPU configs, last-epoch prediction, 20 ms models scored and submitted at
5 ms (``--upsample``), the test-phase recipe, and the true-rate oracle of the synthetic benchmark."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from neurodyn.cli import main
from neurodyn.data.nlb import DATASET_NAMES
from neurodyn.data.prepared import load_prepared
from neurodyn.data.pseudo import rebin
from neurodyn.data.synthetic.nlb_latents import expected_counts_ms
from neurodyn.data.synthetic.nlb_nwb import pair_names, window_sums, write_nlb_pair
from neurodyn.errors import InputError
from neurodyn.metrics import evaluate
from neurodyn.metrics.resample import read_window_starts, upsample_group, upsample_submission, window_offsets

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "configs" / "langevinflow"
SIZES = {"mc_maze": ("mc_maze_small", 10, 4), "dmfc_rsg": ("dmfc_rsg", 8, 3), "area2_bump": ("area2_bump", 8, 3)}


# ------------------------------------------------------------------------------------------- configs
@pytest.mark.parametrize("dataset", DATASET_NAMES)
def test_every_dataset_has_a_cpu_config_that_selects_nothing_on_the_scored_trials(dataset):
    gpu, cpu = CONFIGS / f"{dataset}.yaml", CONFIGS / f"{dataset}_cpu.yaml"
    assert gpu.is_file() and cpu.is_file()
    cfg = yaml.safe_load(cpu.read_text())
    init = cfg["model"]["init_args"]
    # no checkpoint selection: no monitor, only last.ckpt; a fixed schedule that does not read valid/loss
    assert cfg["checkpoint"]["monitor"] is None and cfg["checkpoint"]["save_top_k"] == 0
    # a fixed, finite schedule (its minutes on 2 cores are measured by benchmarks/nlb_synthetic.py, goal <= 15)
    assert init["lr_schedule"] == "cosine" and 0 < cfg["trainer"]["max_epochs"] <= 1000
    assert cfg["nlb_eval"]["every_n_epochs"] == cfg["trainer"]["max_epochs"]  # NLB metrics once, at the end
    assert cfg["data"]["init_args"]["path"] == f"data/{dataset}_20ms_val.h5"
    # the CPU model is the small one; the GPU config keeps the reference hyper-parameters
    assert init["config"]["hidden_size"] < yaml.safe_load(gpu.read_text())["model"]["init_args"]["config"][
        "hidden_size"]
    assert "GPU" in gpu.read_text().splitlines()[0]


# ------------------------------------------------------------------------------------------- upsample
def test_upsample_is_the_inverse_of_summing_bins():
    rng = np.random.default_rng(0)
    rates = rng.gamma(2.0, 0.3, (3, 7, 5)).astype(np.float32)
    fine = upsample_group({"eval_rates_heldout": rates}, 4)["eval_rates_heldout"]
    assert fine.shape == (3, 28, 5) and fine.dtype == np.float32
    np.testing.assert_allclose(rebin(fine, 4), rates, rtol=1e-6)  # the same counts per coarse bin
    assert np.all(fine[:, 0::4] == fine[:, 3::4])  # constant within a coarse bin
    groups = upsample_submission({"dmfc_rsg_20": {"train_rates_heldin": rates}}, 5)
    assert sorted(groups) == ["dmfc_rsg", "dmfc_rsg_20"]
    assert upsample_submission({"dmfc_rsg": {"train_rates_heldin": rates}}, 5).keys() == {"dmfc_rsg"}
    with pytest.raises(InputError, match="already there"):
        upsample_submission({"dmfc_rsg_20": {"a": rates}, "dmfc_rsg": {"a": rates}}, 5)
    with pytest.raises(InputError, match="cannot split 5 ms"):
        upsample_submission({"dmfc_rsg": {"a": rates}}, 20)
    with pytest.raises(InputError, match="trials, bins, units"):
        upsample_group({"a": rates[0]}, 4)


# ------------------------------------------------------------------------------------- synthetic data
@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """mc_maze-style pair prepared at 20 and 5 ms for both phases."""
    from neurodyn.data.prepare import prepare

    tmp = tmp_path_factory.mktemp("cpu_recipe")
    write_nlb_pair(tmp / "nwb", "mc_maze", n_train_trials=40, n_test_trials=10, n_heldin=12, n_heldout=5, seed=4)
    out = {"tmp": tmp, "nwb": tmp / "nwb"}
    for phase in ("val", "test"):
        for b in (20, 5):
            out[f"{phase}_{b}"] = prepare("mc_maze_small", tmp / "nwb", bin_ms=b, phase=phase,
                                          out=tmp / f"mc_maze_small_{b}ms_{phase}.h5", log=None)
    return out


def _spike_grid(path: Path, n_ms: int) -> np.ndarray:
    from pynwb import NWBHDF5IO

    from neurodyn.data.nwb import spike_ms_index

    with NWBHDF5IO(str(path), "r") as io:
        spikes = io.read().units["spike_times"][:]
    grid = np.zeros((n_ms, len(spikes)))
    for unit, times in enumerate(spikes):
        idx = spike_ms_index(times)
        np.add.at(grid[:, unit], idx[idx < n_ms], 1)
    return grid


@pytest.mark.parametrize("style", list(SIZES))
def test_window_sums_of_the_spikes_reproduce_prepare_exactly(style, tmp_path):
    """The oracle's windows are prepare's: summing the spikes themselves gives the prepared tensors."""
    from neurodyn.data.nwb import load_session
    from neurodyn.data.prepare import prepare
    from neurodyn.data.prepared import load_prepared

    dataset, n_in, n_out = SIZES[style]
    train, _ = write_nlb_pair(tmp_path, style, n_train_trials=24, n_test_trials=4, n_heldin=n_in,
                              n_heldout=n_out, seed=2)
    grid = _spike_grid(train, load_session(train).n_ms)
    for b in (20, 5):
        prep = load_prepared(prepare(dataset, tmp_path, bin_ms=b, phase="val", out=tmp_path / f"p{b}.h5", log=None))
        sums = window_sums(tmp_path, dataset, b, {train.name: grid})
        target = next(iter(prep.eval_target.values()))
        expected = {
            "train_rates_heldin": prep.train_input["train_spikes_heldin"],
            "train_rates_heldout": prep.train_input["train_spikes_heldout"],
            "eval_rates_heldin": prep.eval_input["eval_spikes_heldin"],
            "eval_rates_heldout": prep.eval_input["eval_spikes_heldout"],
            "eval_rates_heldin_forward": target["eval_spikes_heldin_forward"],
            "eval_rates_heldout_forward": target["eval_spikes_heldout_forward"],
        }
        assert sums.keys() == expected.keys()
        for key, value in expected.items():
            np.testing.assert_array_equal(sums[key], np.asarray(value, dtype=np.float64), err_msg=f"{key} {b} ms")


def test_expected_counts_match_the_spikes_and_the_oracle_beats_the_baseline(files):
    """Totals within Poisson noise; the true rates score above the smoothing baseline on the same trials."""
    from neurodyn.commands.baseline import predict_prepared

    kw = dict(n_trials=40, n_heldin=12, n_heldout=5, seed=4)
    train = files["nwb"] / pair_names("mc_maze")[0]
    expected = expected_counts_ms("mc_maze", **kw)
    observed = _spike_grid(train, len(expected))
    # per unit, the total count is Poisson with the expected total as mean: 5 sd covers every unit
    # (17 units) with probability > 1 - 1e-5; a wrong rate, lag or unit order is off by far more
    total_e, total_o = expected.sum(0), observed.sum(0)
    assert np.all(np.abs(total_o - total_e) < 5 * np.sqrt(total_e))
    # a one-bin shift of the expected counts is detectably worse than the exact alignment
    sums = window_sums(files["nwb"], "mc_maze_small", 5, {train.name: expected})
    shifted = window_sums(files["nwb"], "mc_maze_small", 5, {train.name: np.roll(expected, 40, axis=0)})
    oracle = evaluate(files["val_5"], {"mc_maze_small": sums})[0]["mc_maze_scaling_split"]["[100] co-bps"]
    moved = evaluate(files["val_5"], {"mc_maze_small": shifted})[0]["mc_maze_scaling_split"]["[100] co-bps"]
    baseline = evaluate(files["val_5"], predict_prepared(files["val_5"]))[0]["mc_maze_scaling_split"]
    assert oracle > baseline["[100] co-bps"] and oracle > moved


# --------------------------------------------------------------------------------------- the CLI path
def _offsets(coarse: Path, fine: Path) -> dict:
    """Per split, how many 5 ms bins each trial's 20 ms window starts after its 5 ms one (the prepared starts)."""
    c, f = load_prepared(coarse).window_start_ms, load_prepared(fine).window_start_ms
    return {split: window_offsets(c[split], f[split], 5, 20) for split in ("train", "eval")}


def _fit(config_args: list[str], data: Path, root: Path) -> tuple[Path, Path]:
    assert main(["fit", "--config", str(CONFIGS / "mc_maze_small_cpu.yaml"), "--data.path", str(data),
                 "--trainer.max_epochs", "2", "--trainer.check_val_every_n_epoch", "1", "--nlb_eval.every_n_epochs",
                 "2", "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
                 "--trainer.default_root_dir", str(root), "--trainer.logger", "CSVLogger",
                 "--trainer.logger.save_dir", str(root), *config_args]) == 0
    ckpts = sorted(root.rglob("*.ckpt"))
    configs = sorted(root.rglob("config.yaml"))
    assert [p.name for p in ckpts] == ["last.ckpt"], "the CPU config keeps only the last epoch"
    return ckpts[0], configs[-1]


def test_val_phase_cpu_config_predict_last_and_score_at_20_and_5_ms(files, capsys):
    ckpt, config = _fit([], files["val_20"], files["tmp"] / "val_run")
    pred = files["tmp"] / "pred_val.h5"
    assert main(["predict", "--config", str(config), "--ckpt_path", str(ckpt), "--prediction.path", str(pred),
                 "--trainer.logger", "false", "--trainer.enable_progress_bar", "false"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "--target", str(files["val_20"]), "--pred", str(pred), "--json"]) == 0
    at20 = json.loads(capsys.readouterr().out)[0]["mc_maze_scaling_20_split"]
    assert main(["evaluate", "--target", str(files["val_5"]), "--pred", str(pred), "--upsample", "5", "--json"]) == 0
    at5 = json.loads(capsys.readouterr().out)[0]["mc_maze_scaling_split"]
    # predict copies the prepared file's window starts; --upsample scores exactly what upsample_submission makes
    # of the 20 ms predictions, each trial lined up by the 20 ms and 5 ms files' starts
    from neurodyn.metrics.submission import read_submission

    offsets = _offsets(files["val_20"], files["val_5"])
    recorded = read_window_starts(pred)["mc_maze_small_20"]
    for split in ("train", "eval"):
        np.testing.assert_array_equal(recorded[split], load_prepared(files["val_20"]).window_start_ms[split])
    by_hand = evaluate(files["val_5"], {"mc_maze_small": upsample_submission(
        read_submission(pred), 5, {"mc_maze_small_20": offsets})["mc_maze_small"]})[0]["mc_maze_scaling_split"]
    assert at5 == pytest.approx(by_hand, rel=1e-12)
    assert set(at20) == set(at5) == {"[100] co-bps", "[100] vel R2", "[100] psth R2", "[100] fp-bps"}
    # both targets at once: the 20 ms group and its 5 ms copy are both scored
    assert main(["evaluate", "--target", str(files["val_20"]), str(files["val_5"]), "--pred", str(pred),
                 "--upsample", "5", "--json"]) == 0
    both = {k: v for entry in json.loads(capsys.readouterr().out) for k, v in entry.items()}
    assert both["mc_maze_scaling_split"] == pytest.approx(at5)
    assert both["mc_maze_scaling_20_split"] == pytest.approx(at20)


@pytest.fixture(scope="module")
def test_phase_fit(files):
    return _fit([], files["test_20"], files["tmp"] / "test_run")


def test_test_phase_recipe_fit_on_train_val_predict_test_submit_both_bin_widths(files, test_phase_fit, capsys):
    """README: prepare --phase test (train + val -> test), fit, predict, submit at 20 and 5 ms."""
    with h5py.File(files["test_20"]) as f:
        n_train, n_test = f["train_input/train_spikes_heldin"].shape[0], f["eval_input/eval_spikes_heldin"].shape[0]
    with h5py.File(files["val_20"]) as f:  # the test phase trains on train + val
        assert n_train == f["train_input/train_spikes_heldin"].shape[0] + f["eval_input/eval_spikes_heldin"].shape[0]
    ckpt, config = test_phase_fit
    pred = files["tmp"] / "pred_test.h5"
    assert main(["predict", "--config", str(config), "--ckpt_path", str(ckpt), "--prediction.path", str(pred),
                 "--trainer.logger", "false", "--trainer.enable_progress_bar", "false"]) == 0
    with h5py.File(pred) as f:  # the phase and the data file the rates are of
        assert f.attrs["phase"] == "test" and f.attrs["data"] == str(Path(files["test_20"]).resolve())
        # the data's bytes and NWB sources as predicted (a file re-made in place keeps its path)
        from neurodyn.io import file_digest
        from neurodyn.io.hdf5 import root_attrs

        assert f.attrs["data_sha256"] == file_digest(files["test_20"])["sha256"]
        assert list(f.attrs["data_source_sha256"]) == list(root_attrs(files["test_20"])["source_sha256"])
    sub = files["tmp"] / "submission.h5"
    capsys.readouterr()
    assert main(["submit", "--pred", str(pred), "--upsample", "5", "--prepared", str(files["test_20"]),
                 str(files["test_5"]), "--out", str(sub)]) == 0
    assert capsys.readouterr().out.strip().endswith("(test phase)")
    with h5py.File(sub) as f, h5py.File(pred) as p:
        assert set(f) == {"mc_maze_small", "mc_maze_small_20"}
        assert f["mc_maze_small/eval_rates_heldout"].shape == (n_test, 140, 5)
        assert f["mc_maze_small_20/eval_rates_heldout"].shape == (n_test, 35, 5)
        # the 20 ms rates spread over 5 ms bins, each trial lined up by the window starts of the prepared files
        fine = upsample_group({k: p["mc_maze_small_20"][k][()] for k in p["mc_maze_small_20"]}, 4,
                              _offsets(files["test_20"], files["test_5"]))
        np.testing.assert_allclose(f["mc_maze_small/eval_rates_heldin"][()], fine["eval_rates_heldin"], rtol=1e-6)


def test_a_submission_keeps_its_predictions_provenance_and_checks_the_prepared_files_sources(
        files, test_phase_fit, capsys):
    """submit refuses a --prepared file made from other NWB files than the predictions' data (only the shapes
    were compared), and the submission keeps the prediction's data and checkpoint records, so an ensemble
    of it and predictions of other data, or of the same fit, is refused as for the prediction itself."""
    from neurodyn.data.prepare import prepare

    ckpt, config = test_phase_fit
    tmp = files["tmp"]
    write_nlb_pair(tmp / "nwb_other", "mc_maze", n_train_trials=40, n_test_trials=10, n_heldin=12, n_heldout=5,
                   seed=5)
    other = prepare("mc_maze_small", tmp / "nwb_other", bin_ms=20, phase="test", out=tmp / "other_20_test.h5",
                    log=None)
    pred, pred_other = tmp / "prov_pred.h5", tmp / "prov_pred_other.h5"
    # the other session's predictions are of a model fit on it (a checkpoint of one session is refused on the
    # units of another: test_checkpoint_units.py)
    for out, data, (c, cfg) in ((pred, files["test_20"], (ckpt, config)),
                                (pred_other, other, _fit([], other, tmp / "other_run"))):
        assert main(["predict", "--config", str(cfg), "--ckpt_path", str(c), "--data.path", str(data),
                     "--prediction.path", str(out), "--trainer.logger", "false",
                     "--trainer.enable_progress_bar", "false"]) == 0
    capsys.readouterr()
    assert main(["submit", "--pred", str(pred), "--prepared", str(other), "--out", str(tmp / "x.h5")]) == 2
    err = capsys.readouterr().err
    assert f"{other}: source_sha256: was prepared from other NWB files" in err and not (tmp / "x.h5").exists()
    sub, sub_other = tmp / "prov_sub.h5", tmp / "prov_sub_other.h5"
    assert main(["submit", "--pred", str(pred), "--prepared", str(files["test_20"]), "--out", str(sub)]) == 0
    assert main(["submit", "--pred", str(pred_other), "--prepared", str(other), "--out", str(sub_other)]) == 0
    with h5py.File(sub) as f, h5py.File(pred) as p:
        for key in ("data_sha256", "data_source_sha256", "dataset"):
            assert np.all(f.attrs[key] == p.attrs[key]), key
        # uploaded to EvalAI: no local path (the data file, the checkpoint) and no bin width
        assert not {"data", "checkpoint", "bin_ms", "training_data"} & set(f.attrs)
        assert str(tmp) not in " ".join(str(v) for v in f.attrs.values())
    capsys.readouterr()
    assert main(["ensemble", "--pred", str(sub_other), str(pred), "--out", str(tmp / "e1.h5")]) == 2
    assert "an ensemble averages predictions of the same data" in capsys.readouterr().err
    assert main(["ensemble", "--pred", str(sub), str(pred), "--out", str(tmp / "e2.h5")]) == 2
    assert "has the same rates as" in capsys.readouterr().err


def test_a_test_phase_model_asked_for_the_val_trials_is_refused_by_evaluate_submit_and_ensembles(
        files, test_phase_fit, capsys):
    """The test-phase file trains on the train and val trials: its model's predictions of the val file's
    evaluation trials are of trials it was trained on (held-out units included). predict records how many
    and notes it; evaluate and submit refuse them, also inside an ensemble; a val-phase model records 0."""
    ckpt, config = test_phase_fit
    tmp = files["tmp"]
    leaked, clean = tmp / "leaked_val.h5", tmp / "clean_val.h5"
    assert main(["predict", "--config", str(config), "--ckpt_path", str(ckpt), "--data.path", str(files["val_20"]),
                 "--prediction.path", str(leaked), "--trainer.logger", "false",
                 "--trainer.enable_progress_bar", "false"]) == 0
    with h5py.File(files["val_20"]) as f:
        n_eval = f["eval_input/eval_spikes_heldin"].shape[0]
    with h5py.File(leaked) as f:
        assert f.attrs["phase"] == "val" and f.attrs["trained_on_eval_trials"] == n_eval
        assert f.attrs["training_data"] == str(Path(files["test_20"]).resolve())
    assert f"trained on {n_eval} of these evaluation trials" in capsys.readouterr().out
    assert main(["evaluate", "--target", str(files["val_20"]), "--pred", str(leaked)]) == 2
    err = capsys.readouterr().err
    assert f"{leaked}: trained_on_eval_trials: its model was trained on {n_eval} of the evaluation trials" in err
    assert len(err.strip().splitlines()) == 1
    assert main(["submit", "--pred", str(leaked), "--out", str(tmp / "leaked_sub.h5")]) == 2
    assert "trained_on_eval_trials" in capsys.readouterr().err and not (tmp / "leaked_sub.h5").exists()
    # validate reports metrics of them: said in a note
    assert main(["validate", "--config", str(config), "--ckpt_path", str(ckpt), "--data.path", str(files["val_20"]),
                 "--trainer.logger", "false", "--trainer.enable_progress_bar", "false"]) == 0
    assert (f"note: the checkpoint's run trained on {n_eval} of the evaluation trials of {files['val_20']}"
            in capsys.readouterr().out)
    # a model fit on the val-phase file: nothing of its evaluation trials was trained on
    val_ckpt, val_config = _fit([], files["val_20"], tmp / "val_run_for_leak")
    assert main(["predict", "--config", str(val_config), "--ckpt_path", str(val_ckpt), "--prediction.path",
                 str(clean), "--trainer.logger", "false", "--trainer.enable_progress_bar", "false"]) == 0
    with h5py.File(clean) as f:
        assert f.attrs["trained_on_eval_trials"] == 0
    assert main(["evaluate", "--target", str(files["val_20"]), "--pred", str(clean)]) == 0
    # an ensemble with the leaked member is refused as its member is
    ens = tmp / "ens_leak.h5"
    assert main(["ensemble", "--pred", str(clean), str(leaked), "--out", str(ens)]) == 0
    with h5py.File(ens) as f:
        assert f.attrs["trained_on_eval_trials"] == n_eval
    capsys.readouterr()
    assert main(["evaluate", "--target", str(files["val_20"]), "--pred", str(ens)]) == 2
    assert "trained_on_eval_trials" in capsys.readouterr().err


@pytest.fixture(scope="module")
def train_file_only(files):
    """The val phase prepared from the train NWB file alone (the val phase needs no test file) at 20 and 5 ms:
    the same trials as the folder's val files, other nlb_tools session ids and clock (the folder's session puts
    the train file after the test file)."""
    from neurodyn.data.prepare import prepare

    train = files["nwb"] / pair_names("mc_maze")[0]
    return {b: prepare("mc_maze_small", train, bin_ms=b, phase="val", out=files["tmp"] / f"train_only_{b}ms.h5",
                       log=None) for b in (20, 5)}


def _assert_refused_as_trained_on(ckpt: Path, config: Path, data: Path, out: Path, capsys) -> None:
    """Predict ``data`` (a val-phase file) with a checkpoint trained on all its evaluation trials: the file
    records how many, and evaluate refuses it in one line."""
    assert main(["predict", "--config", str(config), "--ckpt_path", str(ckpt), "--data.path", str(data),
                 "--prediction.path", str(out), "--trainer.logger", "false", "--trainer.enable_progress_bar",
                 "false"]) == 0
    with h5py.File(data) as f, h5py.File(out) as p:
        assert p.attrs["trained_on_eval_trials"] == f["eval_input/eval_spikes_heldin"].shape[0]
    capsys.readouterr()
    assert main(["evaluate", "--target", str(data), "--pred", str(out)]) == 2
    assert "trained_on_eval_trials" in capsys.readouterr().err


def test_files_prepared_from_the_train_file_alone_or_the_folder_hold_the_same_trials(files, train_file_only,
                                                                                    test_phase_fit, capsys):
    """helper-56: the trial ids and window starts were the folder session's, so a leaked test-phase model
    scored on a val file prepared from the train file alone passed as held out, a val-phase model was refused
    as leaked, and --upsample / submit refused identical trials prepared one way at 20 ms and the other at 5 ms.
    Now trials are (NWB file, id within it) and starts are on each file's own clock."""
    with h5py.File(files["val_20"]) as a, h5py.File(train_file_only[20]) as b:
        assert list(a["trial_ids/eval"][()]) != list(b["trial_ids/eval"][()])  # nlb_tools' session ids differ
        np.testing.assert_array_equal(a["trial_source/eval"][()][:, 1], b["trial_source/eval"][()][:, 1])
        for split in ("train", "eval"):
            np.testing.assert_array_equal(a[f"window_start_ms/{split}"][()], b[f"window_start_ms/{split}"][()])
    tmp = files["tmp"]
    # a 20 ms prediction of the folder's val file scored against the 5 ms file of the train file alone
    from neurodyn.commands.baseline import predict_prepared
    from neurodyn.metrics.submission import write_submission

    pred = tmp / "mixed_pred.h5"
    write_submission(pred, predict_prepared(files["val_20"], "mc_maze_small"),
                     window_starts=read_window_starts(files["val_20"]))
    capsys.readouterr()
    scores = []
    for target in (files["val_5"], train_file_only[5]):
        assert main(["evaluate", "--target", str(target), "--pred", str(pred), "--upsample", "5", "--json"]) == 0
        out, err = capsys.readouterr()
        assert "note:" not in err, err
        scores.append(json.loads(out))
    assert scores[0] == scores[1]
    assert main(["submit", "--pred", str(pred), "--upsample", "5", "--prepared", str(files["val_20"]),
                 str(train_file_only[5]), "--out", str(tmp / "mixed_sub.h5")]) == 0
    # the test-phase model (the folder's test-phase file) asked for the val trials of the train file alone
    _assert_refused_as_trained_on(*test_phase_fit, train_file_only[20], tmp / "leaked_train_only.h5", capsys)
    # a val-phase model of the train file alone, asked for the folder's val file: not trained on them
    val_ckpt, val_config = _fit([], train_file_only[20], tmp / "train_only_run")
    clean = tmp / "clean_folder_val.h5"
    assert main(["predict", "--config", str(val_config), "--ckpt_path", str(val_ckpt), "--data.path",
                 str(files["val_20"]), "--prediction.path", str(clean), "--trainer.logger", "false",
                 "--trainer.enable_progress_bar", "false"]) == 0
    with h5py.File(clean) as p:
        assert p.attrs["trained_on_eval_trials"] == 0
    assert main(["evaluate", "--target", str(files["val_20"]), "--pred", str(clean)]) == 0


def test_the_trials_a_run_trained_on_are_told_after_its_data_file_is_gone(files, train_file_only, capsys):
    """The checkpoint records its training rows' trials (``train_trials`` beside the data file's digest), so a
    test-phase model asked for the val trials is caught also after its data file was deleted or moved (the
    check read the file, and gave up without it)."""
    import shutil

    tmp = files["tmp"]
    data = tmp / "test_phase_copy.h5"
    shutil.copyfile(files["test_20"], data)
    ckpt, config = _fit([], data, tmp / "gone_run")
    data.unlink()
    _assert_refused_as_trained_on(ckpt, config, train_file_only[20], tmp / "leaked_gone.h5", capsys)


def test_baseline_defaults_are_the_nlb_tools_tutorial_and_recipe_neurodyn_fits_heldin_glms(files):
    from neurodyn.data.prepared import load_prepared
    from neurodyn.models.smoothing import smooth_spikes

    out = {}
    for recipe in ("nlb_tools", "neurodyn"):
        path = files["tmp"] / f"baseline_{recipe}.h5"
        extra = [] if recipe == "nlb_tools" else ["--recipe", "neurodyn"]
        assert main(["baseline", "--prepared", str(files["val_5"]), "--out", str(path), *extra]) == 0
        with h5py.File(path) as f:
            out[recipe] = {k: f[f"mc_maze_small/{k}"][()] for k in f["mc_maze_small"]}
    heldin = load_prepared(files["val_5"]).eval_input["eval_spikes_heldin"]
    smoothed = np.clip(smooth_spikes(heldin, 40, 5), 1e-9, None)  # the tutorial's held-in rates
    np.testing.assert_allclose(out["nlb_tools"]["eval_rates_heldin"], smoothed, rtol=1e-6)  # float32 file
    assert not np.allclose(out["neurodyn"]["eval_rates_heldin"], smoothed, rtol=1e-2)
    assert main(["baseline", "--prepared", str(files["val_5"]), "--out", "x.h5", "--recipe", "nope"]) == 2
