"""The HMM-GLM family on prepared NLB files through the CLI, every phase: fit -> predict -> plot.

A val-phase file (train trials + evaluation trials with targets), a test-phase file (train + val trials,
test trials without held-out data) and a file prepared from the test NWB alone (no training trials:
one line, exit 2).
"""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

from neurodyn.cli import main

N_HELDIN, N_HELDOUT = 6, 3
MODEL = ["--model", "HMMGLMModule", "--model.config.variant", "hmmglm", "--model.config.n_states", "2",
         "--model.config.n_lags", "3", "--model.n_inner", "3", "--trainer.accelerator", "cpu",
         "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


@pytest.fixture(scope="module")
def nlb(tmp_path_factory):
    from neurodyn.data.prepare import prepare
    from neurodyn.data.synthetic.nlb_nwb import write_nlb_pair

    tmp = tmp_path_factory.mktemp("nlb_hmm")
    write_nlb_pair(tmp / "nwb", "mc_maze", n_train_trials=12, n_test_trials=6, n_heldin=N_HELDIN,
                   n_heldout=N_HELDOUT, seed=1)
    files = {}
    for phase in ("val", "test"):
        files[phase] = tmp / f"mc_maze_20_{phase}.h5"
        prepare("mc_maze", tmp / "nwb", bin_ms=20, phase=phase, out=files[phase], log=None)
    alone = tmp / "test_only"
    alone.mkdir()
    (alone / next((tmp / "nwb").glob("*test*.nwb")).name).symlink_to(next((tmp / "nwb").glob("*test*.nwb")))
    files["test_alone"] = tmp / "mc_maze_20_test_alone.h5"
    prepare("mc_maze", alone, bin_ms=20, phase="test", out=files["test_alone"], log=None)
    return tmp, files


@pytest.mark.parametrize("phase", ["val", "test"])
def test_fit_predict_plot_every_phase(nlb, phase, tmp_path):
    from neurodyn.data.prepared import load_prepared
    from neurodyn.models.hmmglm.readout import read_out_types
    from neurodyn.training.hmmglm_module import HMMGLMModule

    _, files = nlb
    prepared = load_prepared(files[phase])
    data = ["--data", "NLBDataModule", "--data.path", str(files[phase]), "--data.batch_size", "4"]
    # nlb_eval every epoch: the NLB rate metrics must skip a model that predicts no rates
    assert main(["fit", *MODEL, *data, "--trainer.max_epochs", "2", "--nlb_eval.every_n_epochs", "1",
                 "--trainer.default_root_dir", str(tmp_path), "--run-name", "run"]) == 0
    out = tmp_path / "pred.h5"
    assert main(["predict", "--run", str(tmp_path / "run"), "--ckpt_path", "last", "--prediction.path",
                 str(out)]) == 0
    n_train = len(prepared.trial_ids["train"])
    n_eval = len(prepared.trial_ids["eval"])
    n_bins = prepared.n_obs_bins
    with h5py.File(out) as f:
        for split, n in (("train", n_train), ("valid", n_eval)):
            post = f[f"{split}_posteriors"][()]
            assert post.shape == (n, n_bins, 2)
            np.testing.assert_allclose(post.sum(-1), 1.0, atol=1e-5)
            path = f[f"{split}_viterbi"][()]
            assert path.dtype.kind == "i" and path.shape == (n, n_bins) and set(np.unique(path)) <= {0, 1}
            assert np.isfinite(f[f"{split}_log_marginal"][()]).all()
        np.testing.assert_array_equal(f["train_trial_ids"][()], prepared.trial_ids["train"])
        np.testing.assert_array_equal(f["valid_trial_ids"][()], prepared.trial_ids["eval"])
        coupling, types = f["coupling"][()], f["connection_types"][()]
        transitions = f["transitions"][()]
        assert coupling.shape == types.shape == (2, N_HELDIN, N_HELDIN)
        np.testing.assert_allclose(transitions.sum(-1), 1.0, atol=1e-5)
        np.testing.assert_allclose(f["initial"][()].sum(), 1.0, atol=1e-5)
        assert f["bias"].shape == (N_HELDIN,)
    # the stored types are the one read-out rule applied to the fitted model on the training trials
    module = HMMGLMModule.load_from_checkpoint(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu")
    train = torch.as_tensor(np.asarray(prepared.train_input["train_spikes_heldin"], dtype=np.float32))
    np.testing.assert_array_equal(types, read_out_types(module.model, train).numpy())
    png = tmp_path / "pred.png"
    assert main(["plot", str(out), "--out", str(png)]) == 0
    assert png.stat().st_size > 0


def test_select_split_is_kept_out_of_the_fit(nlb, tmp_path, monkeypatch):
    """With data.select_fraction the model's bias init and type read-out see only the fit trials."""
    import neurodyn.models.hmmglm.readout as readout
    from neurodyn.models.hmmglm.models import SwitchingGLM
    from neurodyn.training.datamodules import NLBDataModule

    seen = {}

    def recording(name, real):
        def call(first, x, *args, **kwargs):
            seen[name] = x.detach().cpu().clone()
            return real(first, x, *args, **kwargs)
        return call

    monkeypatch.setattr(readout, "read_out_types", recording("readout", readout.read_out_types))
    monkeypatch.setattr(SwitchingGLM, "init_bias", recording("init_bias", SwitchingGLM.init_bias))
    _, files = nlb
    data = ["--data", "NLBDataModule", "--data.path", str(files["val"]), "--data.batch_size", "4",
            "--data.select_fraction", "0.25", "--data.select_seed", "2"]
    assert main(["fit", *MODEL, *data, "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path),
                 "--run-name", "run"]) == 0
    out = tmp_path / "pred.h5"
    assert main(["predict", "--run", str(tmp_path / "run"), "--ckpt_path", "last", "--prediction.path",
                 str(out)]) == 0
    dm = NLBDataModule(str(files["val"]), select_fraction=0.25, select_seed=2)
    assert len(dm.splits["fit"]) < len(dm.splits["train"])
    for name in ("init_bias", "readout"):  # the fit trials, not all training trials
        np.testing.assert_array_equal(seen[name].numpy(), dm.splits["fit"].heldin, err_msg=name)
    with h5py.File(out) as f:
        assert f["train_posteriors"].shape[0] == len(dm.splits["train"])  # predictions for every train trial


def test_file_without_training_trials_is_one_line(nlb, tmp_path, capsys):
    _, files = nlb
    code = main(["fit", *MODEL, "--data", "NLBDataModule", "--data.path", str(files["test_alone"]),
                 "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert str(files["test_alone"]) in err[0] and "train_input" in err[0]


def test_shipped_nlb_config_selects_nothing_on_the_evaluation_trials(nlb, tmp_path):
    """configs/hmmglm/mc_maze_small_states.yaml validates on the evaluation trials (the ones reported): it
    must keep no 'best' checkpoint chosen on them, so `predict --run DIR` predicts from the last epoch."""
    from pathlib import Path

    config = Path(__file__).resolve().parents[2] / "configs" / "hmmglm" / "mc_maze_small_states.yaml"
    _, files = nlb
    small = ["--model.init_args.config.n_lags", "3", "--model.init_args.n_inner", "2",
             "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]
    assert main(["fit", "--config", str(config), "--data.init_args.path", str(files["val"]), *small,
                 "--trainer.max_epochs", "2", "--trainer.check_val_every_n_epoch", "1",
                 "--trainer.default_root_dir", str(tmp_path), "--run-name", "run"]) == 0
    checkpoints = tmp_path / "run" / "checkpoints"
    index = json.loads((checkpoints / "checkpoints.json").read_text())
    assert index["best"] is None and index["top_k"] == {}
    assert sorted(p.name for p in checkpoints.glob("*.ckpt")) == ["last.ckpt"]
    out = tmp_path / "pred.h5"
    assert main(["predict", "--run", str(tmp_path / "run"), "--prediction.path", str(out),
                 "--trainer.enable_progress_bar", "false"]) == 0
    assert out.is_file()


def test_nan_held_in_counts_are_one_line_in_fit_and_predict(nlb, tmp_path, capsys):
    """NaN in some held-in units of a bin (train or evaluation trials): one line naming the file and the array,
    exit 2, for fit and for predict with a trained model (they were read as zero counts)."""
    import shutil

    _, files = nlb
    data = ["--data", "NLBDataModule", "--data.batch_size", "4"]
    assert main(["fit", *MODEL, *data, "--data.path", str(files["val"]), "--trainer.max_epochs", "1",
                 "--trainer.default_root_dir", str(tmp_path), "--run-name", "run"]) == 0
    capsys.readouterr()
    for key in ("train_input/train_spikes_heldin", "eval_input/eval_spikes_heldin"):
        bad = tmp_path / f"nan_{key.split('/')[0]}.h5"
        shutil.copy(files["val"], bad)
        with h5py.File(bad, "r+") as f:
            counts = f[key][()]
            counts[1, 4, 2] = np.nan
            f[key][...] = counts
        runs = [["fit", *MODEL, *data, "--data.path", str(bad), "--trainer.max_epochs", "1",
                 "--trainer.default_root_dir", str(tmp_path)],
                ["predict", "--run", str(tmp_path / "run"), "--ckpt_path", "last", "--data.init_args.path",
                 str(bad), "--prediction.path", str(tmp_path / "pred.h5")]]
        for argv in runs:
            code = main(argv)
            err = capsys.readouterr().err.strip().splitlines()
            assert code == 2 and len(err) == 1, (argv[0], key, err)
            assert f"{bad}: {key}: 1 missing (NaN)" in err[0], err[0]
        assert not (tmp_path / "pred.h5").exists()
    # a bin with no data in any unit is how nlb_tools marks bins outside the recording (the simulated
    # MC_Maze_Small-shaped test files have them at trial edges): read as zero counts, with a note
    gap = tmp_path / "gap.h5"
    shutil.copy(files["val"], gap)
    with h5py.File(gap, "r+") as f:
        counts = f["eval_input/eval_spikes_heldin"][()]
        counts[1, -1, :] = np.nan
        f["eval_input/eval_spikes_heldin"][...] = counts
    assert main(["fit", *MODEL, *data, "--data.path", str(gap), "--trainer.max_epochs", "1",
                 "--trainer.default_root_dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "note: 1 of " in out and "bins of the valid split have no data" in out and "rows [1]" in out


def test_plot_names_rows_by_their_nlb_trial_ids(nlb, tmp_path):
    """The rows of an NLB prediction are not trial numbers: the figure titles the drawn row with its NLB
    trial id and labels the path image's rows as rows (it said 'sequence 2' and 'trial' 0..n-1)."""
    from neurodyn.data.prepared import load_prepared
    from neurodyn.viz._common import pyplot
    from neurodyn.viz.prediction import draw_prediction, read_prediction

    _, files = nlb
    data = ["--data", "NLBDataModule", "--data.path", str(files["val"]), "--data.batch_size", "4"]
    assert main(["fit", *MODEL, *data, "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path),
                 "--run-name", "run"]) == 0
    out = tmp_path / "pred.h5"
    assert main(["predict", "--run", str(tmp_path / "run"), "--ckpt_path", "last", "--prediction.path",
                 str(out)]) == 0
    ids = load_prepared(files["val"]).trial_ids["eval"]
    pred = read_prediction(out)
    np.testing.assert_array_equal(pred["trial_ids"], ids)
    fig = draw_prediction(pred, trial=2)
    try:
        titles = [ax.get_title() for ax in fig.get_axes()]
        labels = [ax.get_ylabel() for ax in fig.get_axes()]
        assert f"row 2 (NLB trial {ids[2]}): state posteriors" in titles, titles
        assert "trial" not in labels and any(label.startswith("row") for label in labels), labels
    finally:
        pyplot().close(fig)


def test_connection_types_come_from_the_trials_the_model_was_fitted_on(nlb, tmp_path, capsys, monkeypatch):
    """The Wald read-out's standard errors were taken from the training rows of whatever file predict read, not
    from the trials the model was fitted on: one checkpoint gave other ``connection_types`` for the val-phase file
    than for the test-phase file (whose training rows add the val trials), and a test-phase model predicting the
    val-phase file read its types out on 9 of the 12 trials it was fitted on."""
    from neurodyn.data.prepared import load_prepared
    from neurodyn.models.hmmglm import readout

    _, files = nlb
    for phase in ("val", "test"):
        data = ["--data", "NLBDataModule", "--data.path", str(files[phase]), "--data.batch_size", "4"]
        assert main(["fit", *MODEL, *data, "--trainer.max_epochs", "2", "--trainer.default_root_dir",
                     str(tmp_path), "--run-name", phase]) == 0
    read_out, seen = readout.read_out_types, []

    def recording(model, spikes, **kwargs):  # the sequences the standard errors are estimated on
        seen.append(np.asarray(spikes.cpu()))
        return read_out(model, spikes, **kwargs)

    monkeypatch.setattr(readout, "read_out_types", recording)
    fitted = load_prepared(files["val"]).train_input["train_spikes_heldin"]
    assert len(load_prepared(files["test"]).train_input["train_spikes_heldin"]) > len(fitted)
    out = tmp_path / "val_on_test.h5"
    assert main(["predict", "--run", str(tmp_path / "val"), "--ckpt_path", "last", "--data.path",
                 str(files["test"]), "--prediction.path", str(out)]) == 0
    assert len(seen) == 1
    np.testing.assert_array_equal(np.sort(seen[0].reshape(len(seen[0]), -1), axis=0),
                                  np.sort(fitted.reshape(len(fitted), -1), axis=0))
    with h5py.File(out, "r") as f:
        assert "connection_types" in f and "connection_types_definition" in f.attrs
    capsys.readouterr()
    out = tmp_path / "test_on_val.h5"
    assert main(["predict", "--run", str(tmp_path / "test"), "--ckpt_path", "last", "--data.path",
                 str(files["val"]), "--prediction.path", str(out)]) == 0
    assert "note: connection_types left out" in capsys.readouterr().out
    with h5py.File(out, "r") as f:
        assert "connection_types" not in f and "connection_types_definition" not in f.attrs
        assert "coupling" in f and "valid_posteriors" in f


def test_connection_types_leave_out_the_runs_select_trials_however_predict_is_called(nlb, tmp_path, monkeypatch):
    """With a select split the run was fitted on its training trials less the select ones, but predict read the
    types out on all training trials of the file (``--ckpt_path FILE --data.path ...``, or the test-phase file)
    or on the fit split of whatever select split predict itself was given. The run records the select rows; every
    way of calling predict now reads out on the same fitted trials."""
    from neurodyn.data.prepared import load_prepared
    from neurodyn.models.hmmglm import readout
    from neurodyn.training.datamodules.base import split_off

    _, files = nlb
    for name, select in (("sel", ["--data.select_fraction", "0.25"]), ("all", [])):
        data = ["--data", "NLBDataModule", "--data.path", str(files["val"]), "--data.batch_size", "4", *select]
        assert main(["fit", *MODEL, *data, "--trainer.max_epochs", "1", "--trainer.default_root_dir",
                     str(tmp_path), "--run-name", name]) == 0
    train = load_prepared(files["val"]).train_input["train_spikes_heldin"]
    fit_rows, _ = split_off(len(train), 0.25, seed=0, field="select_fraction")  # the DataModule's default seed
    expected = {"sel": train[np.sort(fit_rows)], "all": train}
    read_out, seen = readout.read_out_types, []

    def recording(model, spikes, **kwargs):
        seen.append(np.asarray(spikes.cpu()))
        return read_out(model, spikes, **kwargs)

    monkeypatch.setattr(readout, "read_out_types", recording)
    calls = {
        "sel": [["--run", str(tmp_path / "sel"), "--ckpt_path", "last"],
                ["--ckpt_path", str(tmp_path / "sel" / "checkpoints" / "last.ckpt"), *MODEL[:2], "--data",
                 "NLBDataModule", "--data.path", str(files["val"])],
                ["--run", str(tmp_path / "sel"), "--ckpt_path", "last", "--data.path", str(files["test"])]],
        "all": [["--run", str(tmp_path / "all"), "--ckpt_path", "last", "--data.select_fraction", "0.25"]],
    }
    for name, ways in calls.items():
        for i, way in enumerate(ways):
            seen.clear()
            assert main(["predict", *way, "--prediction.path", str(tmp_path / f"{name}{i}.h5")]) == 0, way
            assert len(seen) == 1, way
            got, want = (np.sort(a.reshape(len(a), -1), axis=0) for a in (seen[0], expected[name]))
            assert got.shape == want.shape and np.array_equal(got, want), (name, way, got.shape, want.shape)


def test_a_checkpoint_of_other_data_names_the_data_file_too(nlb, tmp_path, capsys):
    """A checkpoint refused for the data's held-in units or bin width named the checkpoint only ('... but the data
    has 5'): with --run the data file may come from the run's config.yaml or the command line, and the line did not
    say which file has the other units."""
    from neurodyn.data.prepare import prepare
    from neurodyn.data.synthetic.nlb_nwb import write_nlb_pair

    tmp, files = nlb
    other = tmp_path / "other.h5"
    write_nlb_pair(tmp_path / "nwb", "mc_maze", n_train_trials=8, n_test_trials=4, n_heldin=N_HELDIN - 1,
                   n_heldout=N_HELDOUT, seed=2)
    prepare("mc_maze", tmp_path / "nwb", bin_ms=20, phase="val", out=other, log=None)
    five = tmp_path / "five.h5"
    prepare("mc_maze", tmp / "nwb", bin_ms=5, phase="val", out=five, log=None)
    data = ["--data", "NLBDataModule", "--data.path", str(files["val"]), "--data.batch_size", "4"]
    assert main(["fit", *MODEL, *data, "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path),
                 "--run-name", "run"]) == 0
    capsys.readouterr()
    last = tmp_path / "run" / "checkpoints" / "last.ckpt"
    for path, words in ((other, f"with n_heldin={N_HELDIN} but the data has {N_HELDIN - 1} ({other})"),
                        (five, f"trained on 20 ms bins but the data has 5 ms bins ({five}; prepare")):
        assert main(["predict", "--run", str(tmp_path / "run"), "--ckpt_path", "last", "--data.path", str(path),
                     "--prediction.path", str(tmp_path / "p.h5")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"neurodyn predict: error: {last}: neurodyn."), err
        assert words in err[0], err


@pytest.mark.parametrize("where", ["config", "command line"])
def test_trials_within_the_history_window_name_the_prepared_file_and_the_option(nlb, tmp_path, capsys, where):
    """A prepared NLB file's trials (35 bins at 20 ms) no longer than the history window are refused in the line
    of a switching-GLM simulation's (test_cli_defaults): the data file, the option that chose it, and -- where
    n_lags came from elsewhere (a config file) -- where each came from. With the file on the command line and n_lags
    in a config, the file was not named first ('data.init_args.path: sequences of 35 bins ...'), while the same
    refusal from one place was '{file}: data.init_args.path: ...'."""
    _, files = nlb
    prep, lags = files["val"], tmp_path / "lags.yaml"
    lags.write_text("model:\n  init_args:\n    config:\n      n_lags: 40\n")
    window = ["--config", str(lags)] if where == "config" else ["--model.config.n_lags", "40"]
    at = MODEL.index("--model.config.n_lags")
    code = main(["fit", *MODEL[:at], *MODEL[at + 2:], *window, "--data", "NLBDataModule", "--data.path", str(prep),
                 "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err.strip().splitlines()
    expected = (f"neurodyn fit: error: {prep}: data.init_args.path: sequences of 35 bins (train_input/"
                "train_spikes_heldin, train split) are not longer than the history window "
                "model.init_args.config.n_lags (40 bins)")
    if where == "config":
        expected += f" (--data.path {prep} on the command line; model.init_args.config.n_lags 40 in {lags})"
    assert code == 2 and err == [expected], err
    assert not (tmp_path / "runs").exists()
