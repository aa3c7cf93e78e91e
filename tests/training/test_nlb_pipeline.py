"""NLB workflow through the harness: synthetic NWB -> prepare -> fit -> predict -> evaluate -> submit."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from neurodyn.cli import main


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from neurodyn.data.prepare import prepare
    from neurodyn.data.synthetic.nlb_nwb import write_nlb_pair

    tmp = tmp_path_factory.mktemp("nlb")
    write_nlb_pair(tmp / "nwb", "mc_maze", n_train_trials=40, n_test_trials=8, n_heldin=12, n_heldout=5, seed=3)
    out = tmp / "mc_maze_20_val.h5"
    prepare("mc_maze", tmp / "nwb", bin_ms=20, phase="val", out=out, log=None)
    return tmp, out


def _fit_args(path) -> list[str]:
    """A tiny LangevinFlow fit of the prepared file ``path``, its NLB metrics every epoch."""
    return ["--data", "NLBDataModule", "--data.path", str(path), "--data.batch_size", "8",
            "--model", "LangevinFlowModule", "--model.config.hidden_size", "8", "--model.config.ff_dim", "16",
            "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false", "--nlb_eval.every_n_epochs", "1"]


def test_fit_logs_nlb_metrics_and_predict_writes_submission_layout(prepared, capsys):
    tmp, path = prepared
    run = tmp / "run"
    args = _fit_args(path)
    assert main(["fit", *args, "--trainer.max_epochs", "2", "--trainer.default_root_dir", str(tmp),
                 "--run-name", "run"]) == 0
    log_dir = run
    metrics = (log_dir / "metrics.csv").read_text().splitlines()[0].split(",")
    for key in ("valid/co_bps", "valid/fp_bps", "nlb/co_bps", "nlb/vel_r2", "nlb/psth_r2", "nlb/fp_bps"):
        assert key in metrics, key
    best = [p for p in (log_dir / "checkpoints").glob("*.ckpt") if "valid_co_bps" in p.name]
    assert best, "checkpoint not selected on co-bps"

    pred = tmp / "pred.h5"
    assert main(["predict", "--config", str(log_dir / "config.yaml"), "--ckpt_path", str(best[0]),
                 "--prediction.path", str(pred)]) == 0
    with h5py.File(pred) as f, h5py.File(path) as p:
        group = f["mc_maze_20"]
        n_train, n_bins, n_in = p["train_input/train_spikes_heldin"].shape
        n_out = p["train_input/train_spikes_heldout"].shape[-1]
        n_eval = p["eval_input/eval_spikes_heldin"].shape[0]
        assert group["train_rates_heldin"].shape == (n_train, n_bins, n_in)
        assert group["train_rates_heldout"].shape == (n_train, n_bins, n_out)
        assert group["eval_rates_heldout"].shape == (n_eval, n_bins, n_out)
        assert group["eval_rates_heldin_forward"].shape == (n_eval, 10, n_in)
        assert group["eval_rates_heldin"].dtype == np.float32
        assert np.all(np.asarray(group["eval_rates_heldout"]) > 0)

    capsys.readouterr()
    assert main(["evaluate", "--target", str(path), "--pred", str(pred), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    scores = result[0]["mc_maze_20_split"]
    assert all(np.isfinite(scores[k]) for k in ("co-bps", "vel R2", "psth R2", "fp-bps"))

    sub = tmp / "submission.h5"
    assert main(["submit", "--pred", str(pred), "--out", str(sub), "--prepared", str(path)]) == 0
    with h5py.File(sub) as f:
        assert f["mc_maze_20/eval_rates_heldout"].compression == "gzip"


def test_select_split_keeps_validation_off_the_evaluation_trials(prepared):
    """select_fraction: training and validation trials partition train_input; eval trials only for predict."""
    from neurodyn.training.datamodules import NLBDataModule

    _, path = prepared
    dm = NLBDataModule(str(path), batch_size=8, select_fraction=0.25, select_seed=1)
    train, fit, select = dm.splits["train"], dm.splits["fit"], dm.splits["select"]
    assert len(select) == round(0.25 * len(train)) and len(fit) + len(select) == len(train)
    np.testing.assert_array_equal(select.heldin, train.heldin[dm.select_rows])
    seen = np.concatenate([b["heldin"].numpy() for b in dm.val_dataloader()])
    np.testing.assert_array_equal(seen, select.heldin)  # validation sees the select trials, in order
    trained = np.concatenate([b["heldin"].numpy() for b in dm.train_dataloader()])
    assert len(trained) == len(fit)
    assert not {r.tobytes() for r in trained} & {r.tobytes() for r in select.heldin}
    assert dm.default_monitor == ("valid/co_bps", "max")  # held-out units of training trials are observed
    assert [len(loader.dataset) for loader in dm.predict_dataloader()] == [len(train), len(dm.splits["valid"])]
    again = NLBDataModule(str(path), batch_size=8, select_fraction=0.25, select_seed=1)
    np.testing.assert_array_equal(again.select_rows, dm.select_rows)
    assert "select_rows" not in vars(NLBDataModule(str(path), batch_size=8))  # default: no select split


def test_select_fraction_out_of_range_is_an_input_error(prepared):
    from neurodyn.errors import InputError
    from neurodyn.training.datamodules import NLBDataModule

    with pytest.raises(InputError, match="select_fraction"):
        NLBDataModule(str(prepared[1]), select_fraction=1.5)


def test_predict_refuses_data_of_another_bin_width(prepared, capsys):
    """A 20 ms model given the 5 ms file of the same trials: one line naming the checkpoint's bin width (was
    accepted: LangevinFlow runs on any number of bins and wrote per-20-ms rates for 5 ms bins)."""
    from neurodyn.data.prepare import prepare

    tmp, path = prepared
    fine = tmp / "mc_maze_5_val.h5"
    if not fine.exists():
        prepare("mc_maze", tmp / "nwb", bin_ms=5, phase="val", out=fine, log=None)
    args = ["--data", "NLBDataModule", "--data.path", str(path), "--data.batch_size", "8",
            "--model", "LangevinFlowModule", "--model.config.hidden_size", "8", "--model.config.ff_dim", "16",
            "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false"]
    assert main(["fit", *args, "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp),
                 "--run-name", "run_bins"]) == 0
    ckpt = tmp / "run_bins" / "checkpoints" / "last.ckpt"
    capsys.readouterr()
    code = main(["predict", "--run", str(tmp / "run_bins"), "--ckpt_path", "last", "--data.init_args.path",
                 str(fine), "--prediction.path", str(tmp / "pred_5.h5")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert f"{ckpt}: neurodyn.bin_ms: checkpoint was trained on 20 ms bins but the data has 5 ms" in err[0]
    assert not (tmp / "pred_5.h5").exists()
    assert main(["predict", "--run", str(tmp / "run_bins"), "--ckpt_path", "last",
                 "--prediction.path", str(tmp / "pred_20.h5")]) == 0  # the model's own width still predicts


def test_fit_notes_a_file_of_another_dataset_than_the_recipe(prepared, capsys):
    """The shipped NLB configs name their dataset (``data.dataset``): fit on a prepared file of another dataset
    prints one note (the mc_maze_small CPU recipe on an mc_maze file trained without a word before); the
    dataset the file holds gets none, and a name NLB does not have is one line naming the option."""
    tmp, path = prepared
    args = ["--data", "NLBDataModule", "--data.path", str(path), "--data.batch_size", "8",
            "--model", "LangevinFlowModule", "--model.config.hidden_size", "8", "--model.config.ff_dim", "16",
            "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false", "--trainer.max_epochs", "1",
            "--trainer.default_root_dir", str(tmp)]
    notes = {}
    for dataset in ("mc_maze_small", "mc_maze"):
        capsys.readouterr()
        assert main(["fit", *args, "--data.dataset", dataset, "--run-name", f"recipe_{dataset}"]) == 0
        notes[dataset] = [line for line in capsys.readouterr().out.splitlines() if "data.init_args.dataset" in line]
    assert notes["mc_maze"] == []
    assert notes["mc_maze_small"] == [
        f"note: data.init_args.dataset: the config is the recipe for mc_maze_small; {path} holds mc_maze (its "
        "epochs, batch size and model size were chosen for mc_maze_small's trials)"]
    code = main(["fit", *args, "--data.dataset", "mc_mazz", "--run-name", "recipe_bad"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "data.init_args.dataset: unknown NLB dataset 'mc_mazz'" in err[0], err


def test_predict_notes_another_batch_size_when_passes_are_sampled(prepared, capsys):
    """eval_mode 'sample' draws each batch's passes from one seed: predict with another batch size than the
    run's gives other rates (measured here), and says so in one note naming the run's value; the run's own
    batch size, and eval_mode 'mean' (deterministic, same rates), get no note."""
    from neurodyn.metrics.submission import read_submission

    tmp, path = prepared
    args = ["--data", "NLBDataModule", "--data.path", str(path), "--data.batch_size", "8",
            "--model", "LangevinFlowModule", "--model.config.hidden_size", "8", "--model.config.ff_dim", "16",
            "--model.config.n_eval_samples", "2", "--trainer.accelerator", "cpu",
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
            "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp)]
    assert main(["fit", *args, "--run-name", "run_batch"]) == 0
    rates, notes = {}, {}
    for mode in ("sample", "mean"):
        for batch in ("8", "5"):
            out = tmp / f"pred_{mode}_{batch}.h5"
            capsys.readouterr()
            assert main(["predict", "--run", str(tmp / "run_batch"), "--ckpt_path", "last", "--data.batch_size",
                         batch, "--model.config.eval_mode", mode, "--prediction.path", str(out)]) == 0
            notes[mode, batch] = [line for line in capsys.readouterr().out.splitlines()
                                  if "data.init_args.batch_size" in line]
            (group,) = read_submission(out).values()
            rates[mode, batch] = group["eval_rates_heldout"]
    assert not np.array_equal(rates["sample", "8"], rates["sample", "5"])  # what the note is about
    np.testing.assert_allclose(rates["mean", "8"], rates["mean", "5"], rtol=1e-5)
    assert notes["sample", "5"] == [
        "note: data.init_args.batch_size: predict batches 5 trials, the run 8; eval_mode 'sample' draws each "
        "batch's passes from one seed, so these rates differ a little from those of batches of 8 (give "
        "--data.batch_size 8 to reproduce them)"]
    assert notes["sample", "8"] == notes["mean", "8"] == notes["mean", "5"] == []


def test_a_no_forward_file_fits_without_forward_bins_and_evaluate_notes_the_missing_fp_bps(prepared, capsys):
    """``prepare --no-forward`` (nlb_tools' include_forward_pred=False: no forward bins in train_input, the eval
    target keeps them): the validation split took the target's 10 forward bins, so fit stopped in the sanity
    check (batch/target (8, 45, 17) vs (8, 35, 17)); now the model has no forward bins, its predictions no
    forward rates, and evaluate says on stderr why fp-bps is absent (it was dropped without a word)."""
    from neurodyn.data.prepare import prepare
    from neurodyn.training.datamodules import NLBDataModule

    tmp, _ = prepared
    path = tmp / "mc_maze_20_val_nofwd.h5"
    prepare("mc_maze", tmp / "nwb", bin_ms=20, phase="val", out=path, include_forward_pred=False, log=None)
    dm = NLBDataModule(str(path), batch_size=8)
    assert dm.n_fwd_bins == 0
    assert dm.splits["valid"].target.shape[1] == dm.splits["train"].target.shape[1] == dm.n_obs_bins
    args = _fit_args(path)
    assert main(["fit", *args, "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp),
                 "--run-name", "run_nofwd"]) == 0
    pred = tmp / "pred_nofwd.h5"
    assert main(["predict", "--run", str(tmp / "run_nofwd"), "--ckpt_path", "last",
                 "--prediction.path", str(pred)]) == 0
    with h5py.File(pred) as f:
        assert "eval_rates_heldin_forward" not in f["mc_maze_20"]
    capsys.readouterr()
    assert main(["evaluate", "--target", str(path), "--pred", str(pred), "--json"]) == 0
    out, err = capsys.readouterr()
    scores = json.loads(out)[0]["mc_maze_20_split"]
    assert "fp-bps" not in scores and np.isfinite(scores["co-bps"])
    assert f"note: {pred}: mc_maze_20: no forward rates" in err and "fp-bps is not computed" in err
