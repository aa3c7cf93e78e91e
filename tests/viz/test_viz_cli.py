"""``neurodyn plot`` on tiny files of every prediction layout, and exit code 2 on bad ones."""

from __future__ import annotations

import hashlib

import h5py
import numpy as np
import pytest
import torch

from neurodyn.cli import main
from neurodyn.errors import InputError
from neurodyn.io import write_h5_dict
from neurodyn.viz.prediction import read_prediction

RNG = np.random.default_rng(1)


def _write(path, tree, **attrs):
    with h5py.File(path, "w") as f:
        write_h5_dict(f, tree)
        f.attrs.update(attrs)
    return path


def _nlb_tree(n_trials=3, n_bins=10, n_in=4, n_out=2, latent_dim=6):
    rates = RNG.gamma(2.0, 0.05, (n_trials, n_bins, n_in + n_out)).astype(np.float32)
    return {
        "mc_maze_small_20": {
            "train_rates_heldin": rates[:, :, :n_in],
            "train_rates_heldout": rates[:, :, n_in:],
            "eval_rates_heldin": rates[:, :, :n_in],
            "eval_rates_heldout": rates[:, :, n_in:],
        },
        "latents": {"eval_z": RNG.normal(size=(n_trials, n_bins, latent_dim)).astype(np.float32)},
    }


def _posteriors(n_seq=3, n_bins=30, n_states=2):
    return RNG.dirichlet(np.ones(n_states), size=(n_seq, n_bins)).astype(np.float32)


@pytest.fixture
def layouts(tmp_path):
    """One tiny file per layout (as PredictionWriter / export_model_h5 write them)."""
    from neurodyn.models.hmmglm import HMMGLM
    from neurodyn.models.hmmglm.evaluate import export_model_h5

    files = {"nlb": _write(tmp_path / "nlb.h5", _nlb_tree(), bin_ms=20.0, dataset="mc_maze_small")}
    gamma = _posteriors()
    files["lfads"] = _write(
        tmp_path / "lfads.h5",
        {
            "train_rates": RNG.random((4, 12, 5)),
            "valid_rates": RNG.random((2, 12, 5)),
            "valid_z": RNG.normal(size=(2, 12, 4)),
        },
        bin_ms=20.0,
    )
    files["hmmglm"] = _write(
        tmp_path / "hmm.h5",
        {"valid_posteriors": gamma, "valid_viterbi": gamma.argmax(-1), "valid_log_marginal": np.zeros(3)},
    )
    model = HMMGLM(4, n_states=2).double()
    spikes = torch.poisson(torch.full((2, 40, 4), 0.3, dtype=torch.float64), generator=torch.Generator().manual_seed(0))
    files["hmmglm_model"] = export_model_h5(tmp_path / "model.h5", model, spikes=spikes)
    return files


@pytest.mark.parametrize("layout", ["nlb", "lfads", "hmmglm", "hmmglm_model"])
def test_each_layout_makes_a_png(layouts, layout, capsys):
    import matplotlib.image

    path = layouts[layout]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    out = path.parent / f"{layout}_figure.png"
    assert main(["plot", str(path), "--out", str(out), "--dpi", "40"]) == 0
    assert f"({layout} layout)" in capsys.readouterr().out
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.image.imread(out).ndim == 3
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest  # input untouched
    assert not list(path.parent.glob("*.part"))


def test_read_prediction_contents(layouts, tmp_path):
    nlb = read_prediction(layouts["nlb"])
    assert nlb["layout"] == "nlb" and nlb["bin_ms"] == 20.0 and nlb["n_heldin"] == 4
    assert nlb["rates"].shape == (3, 10, 6) and nlb["latents"].shape == (3, 10, 6)
    # without a bin_ms attribute the NLB group name gives it: "mc_maze" = 5 ms, "x_20" = 20 ms
    tree = {"mc_maze": _nlb_tree()["mc_maze_small_20"]}
    assert read_prediction(_write(tmp_path / "five.h5", tree))["bin_ms"] == 5.0
    hmm = read_prediction(layouts["hmmglm"])
    np.testing.assert_array_equal(hmm["paths"], hmm["posteriors"].argmax(-1))
    model = read_prediction(layouts["hmmglm_model"])
    assert model["coupling"].shape == (2, 4, 4) and model["posteriors"].shape == (2, 40, 2)
    assert read_prediction(layouts["lfads"])["label"] == "valid trials"


def test_default_output_next_to_input(layouts):
    assert main(["plot", str(layouts["lfads"]), "--dpi", "30"]) == 0
    assert layouts["lfads"].with_suffix(".png").is_file()


def _bad_files(tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    empty = _write(tmp_path / "empty.h5", {"something": np.zeros(3)})
    nan = _nlb_tree()
    nan["mc_maze_small_20"]["eval_rates_heldin"][0, 0, 0] = np.nan
    gamma = _posteriors()
    good = _write(tmp_path / "good.h5", _nlb_tree(), bin_ms=20.0)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(good.read_bytes()[:1500])
    return {
        "missing": (tmp_path / "absent.h5", "no such file"),
        "not hdf5": (text, "not an HDF5 file"),
        "unknown layout": (empty, "unknown prediction layout"),
        "NaN rates": (_write(tmp_path / "nan.h5", nan), "eval_rates_heldin: contains NaN"),
        "2-D rates": (
            _write(tmp_path / "flat.h5", {"valid_rates": np.ones((3, 4))}),
            "valid_rates: expected",
        ),
        "bad viterbi": (
            _write(tmp_path / "vit.h5", {"valid_posteriors": gamma, "valid_viterbi": np.full((3, 30), 7)}),
            "valid_viterbi: state labels",
        ),
        "not distributions": (
            _write(tmp_path / "post.h5", {"valid_posteriors": gamma * 2}),
            "valid_posteriors: rows are not probability",
        ),
        "latent trials": (
            _write(tmp_path / "lat.h5", {"valid_rates": np.ones((3, 4, 2)), "valid_z": np.ones((2, 4, 2))}),
            "valid_z: 2 trials",
        ),
        "truncated": (truncated, "HDF5"),
    }


def test_bad_files_exit_2_with_one_line(tmp_path, capsys):
    for name, (path, message) in _bad_files(tmp_path).items():
        out = tmp_path / f"{name.replace(' ', '_')}.png"
        assert main(["plot", str(path), "--out", str(out)]) == 2, name
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, (name, err)
        assert str(path) in err and message in err, (name, err)
        assert not out.exists(), name
    assert not list(tmp_path.glob("*.part")) and not list(tmp_path.glob("*.png"))


def test_bad_arguments_exit_2(layouts, capsys):
    cases = [
        (["--trial", "3"], "--trial"),
        (["--group", "mc_rtt"], "--group"),
        (["--out", str(layouts["nlb"].parent)], "--out"),
        (["--out", str(layouts["nlb"])], "is an input file"),
        (["--dpi", "0"], "--dpi"),
        (["--bogus"], "arguments"),
    ]
    for extra, message in cases:
        assert main(["plot", str(layouts["nlb"]), *extra]) == 2, extra
        assert message in capsys.readouterr().err, extra
    with pytest.raises(InputError, match="row 3 out of range"):
        from neurodyn.viz.prediction import plot_file

        plot_file(layouts["hmmglm"], layouts["hmmglm"].with_suffix(".png"), trial=3)
    assert not layouts["hmmglm"].with_suffix(".png").exists()


def test_an_hmmglm_figure_names_its_model_and_phase_and_whole_rows(tmp_path):
    """Every HMM-GLM figure was titled 'hmmglm prediction: valid sequences' (one-hot, GLM or Gaussian, any
    phase), and the path image's row ticks fell between rows (0.5, 1.5, ...). Rows without ids are rows, not
    sequence numbers (valid row 0 of a simulation is its sequence n_train)."""
    from neurodyn.viz.prediction import draw_prediction

    gamma = _posteriors(n_seq=4)
    path = _write(tmp_path / "p.h5", {"valid_posteriors": gamma, "valid_viterbi": gamma.argmax(-1)},
                  model="OneHotPriorHMMGLM", phase="test")
    data = read_prediction(path)
    assert data["name"] == "OneHotPriorHMMGLM" and data["label"] == "valid sequences, test phase"
    fig = draw_prediction(data)
    assert fig._suptitle.get_text() == "OneHotPriorHMMGLM prediction (HMM-GLM layout): valid sequences, test phase"
    ticks = [t for ax in fig.axes for t in ax.get_yticks() if ax.get_ylabel() == "row"]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_an_hmmglm_figure_of_nlb_rows_runs_from_the_alignment_event(tmp_path):
    """LangevinFlow and baseline NLB figures ran from the dataset's alignment event, an HMM-GLM one of the same
    rows from 0 to 0.7 s (helper-48): MC_Maze's 35 bins of 20 ms are -250 .. 450 ms around move onset."""
    from neurodyn.viz.prediction import draw_prediction

    gamma = _posteriors(n_seq=3, n_bins=35)
    path = _write(tmp_path / "p.h5", {"valid_posteriors": gamma, "valid_viterbi": gamma.argmax(-1)},
                  model="HMMGLM", phase="val", dataset="mc_maze_small", bin_ms=20.0)
    data = read_prediction(path)
    assert (data["offset_ms"], data["event"]) == (-250.0, "move onset")
    fig = draw_prediction(data)
    labels = {ax.get_xlabel() for ax in fig.axes if ax.get_xlabel().startswith("time")}
    assert labels == {"time from move onset (s)"}, labels
    stack = next(ax for ax in fig.axes if ax.collections and ax.get_xlabel() == "time from move onset (s)")
    xs = stack.collections[0].get_paths()[0].vertices[:, 0]
    assert xs.min() == pytest.approx(-0.25)  # the first bin's left edge, as the path image's (was its centre)
    # a file of no NLB dataset keeps its time from 0
    plain = read_prediction(_write(tmp_path / "q.h5", {"valid_posteriors": gamma}, bin_ms=20.0))
    assert "offset_ms" not in plain


@pytest.mark.parametrize("phase", ["val", "test"])
def test_an_hmmglm_figure_of_nlb_rows_calls_them_evaluation_trials(tmp_path, phase):
    """The rows of ``valid_`` in a prediction of a prepared NLB file are the evaluation trials (in the test phase
    the test trials); the figure called them 'valid sequences, test phase'."""
    from neurodyn.viz.prediction import draw_prediction

    gamma = _posteriors(n_seq=3, n_bins=35)
    path = _write(tmp_path / "p.h5", {"valid_posteriors": gamma, "valid_viterbi": gamma.argmax(-1),
                                      "valid_trial_ids": np.array([4, 9, 12])},
                  model="HMMGLM", phase=phase, dataset="mc_maze_small", bin_ms=20.0)
    data = read_prediction(path)
    assert data["label"] == f"evaluation trials, {phase} phase", data["label"]
    assert draw_prediction(data)._suptitle.get_text().endswith(f": evaluation trials, {phase} phase")


def test_plot_from_python_leaves_the_callers_matplotlib_as_it_was_and_draws_what_the_shell_draws(layouts, tmp_path):
    """``main(["plot", ...])`` in a notebook or script: the command called ``matplotlib.use("Agg")`` and left it (a
    notebook drew no inline figure after it; matplotlib's fallback to Agg was off), and it drew with the caller's
    rcParams, so the same file gave other bytes than ``neurodyn plot`` in a shell. Now the caller's backend, open
    figures and rcParams come back, and the figure is the shell's, byte for byte."""
    import subprocess
    import sys

    import matplotlib
    import matplotlib.pyplot as plt
    from subprocess_env import clean_env

    shell = tmp_path / "shell.png"
    subprocess.run([sys.executable, "-m", "neurodyn.cli", "plot", str(layouts["nlb"]), "--out", str(shell)],
                   check=True, capture_output=True, env=clean_env(MPLBACKEND="Agg"))
    before, fallback = matplotlib.get_backend(), matplotlib.rcParams["backend_fallback"]
    try:
        plt.switch_backend("svg")
        mine = plt.figure()
        with matplotlib.rc_context({"font.size": 23, "lines.linewidth": 4}):
            here = tmp_path / "here.png"
            assert main(["plot", str(layouts["nlb"]), "--out", str(here)]) == 0
            assert matplotlib.get_backend().lower() == "svg"
            assert matplotlib.rcParams["backend_fallback"] == fallback
            assert (matplotlib.rcParams["font.size"], matplotlib.rcParams["lines.linewidth"]) == (23, 4)
            assert plt.get_fignums() == [mine.number]
        assert here.read_bytes() == shell.read_bytes()
    finally:
        matplotlib.rcParams["backend_fallback"] = fallback
        plt.switch_backend(before)
