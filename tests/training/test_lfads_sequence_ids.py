"""Rows of a Lorenz / LFADS-format prediction and the trials of the data set they are (helper-h144).

``neurodyn predict`` of the Lorenz benchmark or of an LFADS-format file wrote ``valid_rates`` row by row without
saying which trial each row was: the Lorenz simulator splits its trials at random (``train_inds`` /
``valid_inds``), and an LFADS file records its own ``*_inds``, so lining a prediction up with the simulation's
truth or the original trials needed the source. The file now holds ``<split>_sequence_ids`` (the key and meaning
of a switching-GLM simulation's rows: each row's index in the whole data set), and ``neurodyn plot`` names the
rows by them. Each test checks the ids against the rows actually predicted: the rates of a deterministic pass
(``eval_mode mean``) of the checkpoint over the data set's trials ``ids``, row by row.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch
from tiny_runs import TINY

from neurodyn.cli import main

QUIET = ["--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
         "--trainer.enable_model_summary", "false"]
SMALL = ["--model.init_args.config.hidden_size", "8", "--model.init_args.config.ff_dim", "16",
         "--model.init_args.config.eval_mode", "mean", "--data.batch_size", "4"]


def _fit_and_predict(tmp_path: Path, args: list[str]) -> tuple[Path, Path]:
    assert main(["fit", *args, "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path),
                 "--run-name", "run"]) == 0
    pred = tmp_path / "pred.h5"
    assert main(["predict", "--run", str(tmp_path / "run"), "--ckpt_path", "last", "--prediction.path",
                 str(pred)]) == 0
    return tmp_path / "run" / "checkpoints" / "last.ckpt", pred


def _rates_of(checkpoint: Path, trials: np.ndarray) -> np.ndarray:
    """The checkpoint's rates of ``trials`` (trials, bins, neurons), one deterministic pass."""
    from neurodyn.training.module import LangevinFlowModule

    module = LangevinFlowModule.load_from_checkpoint(checkpoint, map_location="cpu")
    with torch.no_grad():
        return module.model.predict(torch.as_tensor(trials, dtype=torch.float32), mode="mean")["rates"].numpy()


def _assert_rows_are(pred: Path, checkpoint: Path, trials: np.ndarray, inds: dict) -> None:
    """Each split's ``*_sequence_ids`` are ``inds`` and each row's rates are the checkpoint's of ``trials[id]``."""
    with h5py.File(pred) as f:
        for split, want in inds.items():
            ids = f[f"{split}_sequence_ids"][()]
            assert ids.dtype == np.int64
            assert ids.tolist() == np.asarray(want).tolist(), split
            rates = f[f"{split}_rates"][()]
            np.testing.assert_allclose(rates, _rates_of(checkpoint, trials[ids]), rtol=1e-4, atol=1e-6, err_msg=split)
            # the comparison tells rows apart: the rates of the same trials in another order are not these
            assert not np.allclose(rates, _rates_of(checkpoint, trials[np.roll(ids, 1)]), rtol=1e-4, atol=1e-6)


def test_lorenz_predictions_record_each_rows_trial_in_the_simulation(tmp_path, capsys):
    from neurodyn.data.synthetic.lorenz import simulate_lorenz
    from neurodyn.viz.prediction import draw_prediction, read_prediction

    checkpoint, pred = _fit_and_predict(tmp_path, [*TINY, *SMALL, "--data.select_fraction", "0.25"])
    capsys.readouterr()
    sim = simulate_lorenz(n_conditions=4, trials_per_condition=5, seed=0)  # LorenzDataModule's defaults otherwise
    assert sim.valid_inds.tolist() != list(range(16, 20))  # a split at random: row order is not the trials'
    # the train split keeps every training trial in simulation order, the select trials among them
    _assert_rows_are(pred, checkpoint, sim.spikes, {"train": sim.train_inds, "valid": sim.valid_inds})

    first = int(sim.valid_inds[0])
    fig = draw_prediction(read_prediction(pred))
    assert f"row 0 (sequence {first}): predicted rates" in {ax.get_title() for ax in fig.axes}
    # --trial takes a row: asking for a trial's number says which row holds it
    last = int(sim.valid_inds[-1])
    assert main(["plot", str(pred), "--out", str(tmp_path / "p.png"), "--trial", str(last)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"neurodyn plot: error: {pred}: --trial: row {last} out of range: --trial takes a row "
                          f"index, 0..3, not a sequence id: the rows hold sequences "), err
    assert err.endswith(f"; sequence {last} is row 3"), err


def test_the_lorenz_cache_numbers_the_rows_as_the_simulation_does(tmp_path):
    """A cached simulation is read back from its LFADS-format file: the same rows, the same numbers."""
    from neurodyn.data.synthetic.lorenz import simulate_lorenz
    from neurodyn.training.datamodules import LorenzDataModule

    cache = tmp_path / "lz.h5"
    sizes = dict(n_conditions=3, trials_per_condition=4, n_neurons=5, seed=2)
    sim = simulate_lorenz(**sizes)
    for _ in range(2):  # written, then read
        dm = LorenzDataModule(**sizes, cache=str(cache))
        ids = dm.sequence_ids()
        assert ids["train"].tolist() == sim.train_inds.tolist() and ids["valid"].tolist() == sim.valid_inds.tolist()
        for split in ("train", "valid"):
            np.testing.assert_array_equal(dm.splits[split].heldin, sim.spikes[ids[split]].astype(np.float32))


def _lfads_file(path: Path, trials: np.ndarray, n_train: int, inds: bool = True) -> np.ndarray:
    """An LFADS-format file of ``trials`` split at random, ``*_inds`` as float64 as the canonical file stores them."""
    order = np.random.default_rng(3).permutation(len(trials))
    with h5py.File(path, "w") as f:
        f["train_data"], f["valid_data"] = trials[order[:n_train]], trials[order[n_train:]]
        f["train_truth"], f["valid_truth"] = f["train_data"][()] + 0.5, f["valid_data"][()] + 0.5  # LFADSDataModule
        f["conversion_factor"] = 1.0  # reads truth
        if inds:
            f["train_inds"], f["valid_inds"] = order[:n_train].astype(float), order[n_train:].astype(float)
        f.attrs["bin_ms"] = 20.0
    return order


def test_lfads_file_predictions_record_the_files_trial_indices(tmp_path, capsys):
    trials = np.random.default_rng(0).poisson(1.0, (12, 10, 4)).astype(np.int64)
    data = tmp_path / "data.h5"
    order = _lfads_file(data, trials, n_train=9)
    checkpoint, pred = _fit_and_predict(tmp_path, ["--data", "LFADSDataModule", "--data.path", str(data), *SMALL,
                                                   *QUIET])
    capsys.readouterr()
    _assert_rows_are(pred, checkpoint, trials, {"train": order[:9], "valid": order[9:]})


def test_an_lfads_file_without_indices_gets_no_ids(tmp_path, capsys):
    """Its rows are those of train_data / valid_data, in order: the row index says it, and no number is made up."""
    from neurodyn.viz.prediction import draw_prediction, read_prediction

    trials = np.random.default_rng(1).poisson(1.0, (8, 10, 3)).astype(np.int64)
    data = tmp_path / "data.h5"
    _lfads_file(data, trials, n_train=6, inds=False)
    _, pred = _fit_and_predict(tmp_path, ["--data", "LFADSDataModule", "--data.path", str(data), *SMALL, *QUIET])
    capsys.readouterr()
    with h5py.File(pred) as f:
        assert not [key for key in f if key.endswith("_ids")]
        np.testing.assert_array_equal(f["valid_rates"].shape, (2, 10, 3))
    fig = draw_prediction(read_prediction(pred), trial=1)
    assert "row 1: predicted rates" in {ax.get_title() for ax in fig.axes}
