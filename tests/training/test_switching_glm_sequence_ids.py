"""Rows of a switching-GLM prediction of simulated data and the simulation's sequences (helper-h120).

With ``--data.init_args.n_train 8`` on a 10-sequence file, ``valid_posteriors`` holds the file's sequences 8 and 9,
but the prediction file recorded no sequence numbers and ``neurodyn plot`` titled its first row "sequence 0" with
row ticks 0 and 1: lining the posteriors up with the simulation's ``states`` needed the source. The file now
holds ``<split>_sequence_ids`` and the figure names the rows by them.
"""

from __future__ import annotations

import h5py
import numpy as np

from neurodyn.cli import main

QUIET = ["--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
         "--trainer.enable_model_summary", "false"]


def test_predictions_of_a_simulation_file_record_and_plot_each_rows_sequence(tmp_path, capsys):
    from neurodyn.data.synthetic.switching_glm import read_switching_glm_h5
    from neurodyn.viz.prediction import draw_prediction, read_prediction

    sim = tmp_path / "sim.h5"
    assert main(["simulate", "switching-glm", "--out", str(sim), "--n-sequences", "10", "--n-bins", "120",
                 "--n-states", "2", "--n-neurons", "4"]) == 0
    assert main(["fit", "--model", "HMMGLMModule", "--model.config.n_states", "2", "--model.n_inner", "2",
                 "--data", "SwitchingGLMDataModule", "--data.init_args.path", str(sim),
                 "--data.init_args.n_train", "8", "--trainer.max_epochs", "1", *QUIET,
                 "--trainer.default_root_dir", str(tmp_path), "--run-name", "run"]) == 0
    pred = tmp_path / "p.h5"
    assert main(["predict", "--run", str(tmp_path / "run"), "--ckpt_path", "last", "--prediction.path",
                 str(pred)]) == 0
    capsys.readouterr()
    with h5py.File(pred) as f:
        assert f["train_sequence_ids"].dtype == np.int64 and f["valid_sequence_ids"].dtype == np.int64
        assert f["train_sequence_ids"][()].tolist() == list(range(8))
        valid_ids = f["valid_sequence_ids"][()]
        assert valid_ids.tolist() == [8, 9]
        viterbi = f["valid_viterbi"][()]
    # the ids index the simulation file's sequences: the rows' true states are states[ids]
    states = read_switching_glm_h5(sim).states
    assert viterbi.shape == states[valid_ids].shape

    fig = draw_prediction(read_prediction(pred))
    titles = {ax.get_title() for ax in fig.axes}
    assert "row 0 (sequence 8): state posteriors" in titles, titles
    image = next(ax for ax in fig.axes if ax.get_ylabel() == "sequence")
    fig.canvas.draw()
    assert {t.get_text() for t in image.get_yticklabels() if t.get_text()} == {"8", "9"}

    # --trial takes a row: the file's sequence 8 is row 0, and asking for row 8 says so
    assert main(["plot", str(pred), "--out", str(tmp_path / "q.png"), "--trial", "8"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"neurodyn plot: error: {pred}: --trial: row 8 out of range: --trial takes a row index, 0..1, not a "
        "sequence id: the rows hold sequences 8..9; sequence 8 is row 0")


def test_a_simulation_in_memory_names_its_rows_sequences_too():
    """The data module behind the writer: valid rows start at n_train, with or without a file."""
    from neurodyn.training.datamodules.sources import SwitchingGLMDataModule

    dm = SwitchingGLMDataModule(n_states=2, n_neurons=3, n_sequences=5, n_bins=60, n_train=3, select_fraction=0.34)
    ids = dm.sequence_ids()
    assert ids["train"].tolist() == [0, 1, 2] and ids["valid"].tolist() == [3, 4]
    assert ids["valid"].dtype == np.int64
    np.testing.assert_array_equal(dm.splits["valid"].extras["true_states"], dm.simulation.states[ids["valid"]])
