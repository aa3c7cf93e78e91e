"""``validate`` / ``test`` / ``predict`` of a val-phase run on the session's test-phase prepared file.

Both ``validate`` and ``test`` exited 0 with nothing said: on the test-phase file's evaluation trials (held-in
spikes only) they printed a loss and no co-bps, and with the run's select split they printed ``valid/co_bps`` of
the test-phase file's select trials, most of them trials the val-phase run was fitted on. ``predict`` of the
test trials is legitimate and says nothing.
"""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from neurodyn.cli import main

SELECT = 0.25


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """The val- and test-phase files of one simulated session, and a 1-epoch val-phase run with a select split."""
    from neurodyn.data.prepare import prepare
    from neurodyn.data.synthetic.nlb_nwb import write_nlb_pair

    tmp = tmp_path_factory.mktemp("phases")
    write_nlb_pair(tmp / "nwb", "mc_maze", n_train_trials=24, n_test_trials=8, n_heldin=12, n_heldout=4, seed=0)
    val = prepare("mc_maze_small", tmp / "nwb", 20, "val", tmp / "val.h5", include_psth=False, log=None)
    test = prepare("mc_maze_small", tmp / "nwb", 20, "test", tmp / "test.h5", include_psth=False, log=None)
    assert main(["fit", "--data", "NLBDataModule", "--data.path", str(val), "--data.batch_size", "8",
                 "--data.select_fraction", str(SELECT), "--model", "LangevinFlowModule",
                 "--model.config.hidden_size", "8", "--model.config.ff_dim", "16", "--trainer.accelerator", "cpu",
                 "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
                 "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp), "--run-name", "run"]) == 0
    return tmp, val, test, tmp / "run"


def _run(sub: str, run, *extra) -> list[str]:
    return [sub, "--config", str(run / "config.yaml"), "--ckpt_path", str(run / "checkpoints" / "last.ckpt"),
            *extra]


def _trials(path) -> list[tuple[str, int]]:
    """(NWB file name, trial id) of each training row of a prepared file, read from the file itself."""
    with h5py.File(path, "r") as f:
        names = [str(n) for n in np.atleast_1d(f.attrs["source_files"])]
        return [(names[int(i)], int(t)) for i, t in np.asarray(f["trial_source/train"][()]).reshape(-1, 2)]


@pytest.mark.parametrize("sub, prefix", [("validate", "valid"), ("test", "test")])
def test_scores_of_a_test_phase_files_evaluation_trials_say_they_are_held_in_only(session, capsys, sub, prefix):
    _, _, test, run = session
    extra = ["--data.init_args.select_fraction", "0"] if sub == "validate" else []
    capsys.readouterr()
    assert main(_run(sub, run, "--data.init_args.path", str(test), *extra)) == 0
    out = capsys.readouterr().out
    with h5py.File(test, "r") as f:
        n_eval = f["eval_input/eval_spikes_heldin"].shape[0]
    assert (f"note: {test} is a test-phase file: its {n_eval} evaluation trials hold held-in spikes only (their "
            f"held-out and forward spikes are EvalAI's), so {prefix}/* scores the held-in spikes alone: no co-bps "
            f"or fp-bps, and a {prefix}/loss of other bins than a val-phase file's") in out, out
    assert f"{prefix}/co_bps" not in out


def test_validate_of_another_files_select_split_counts_the_trials_the_checkpoint_was_fitted_on(session, capsys):
    from neurodyn.training.datamodules import NLBDataModule

    _, val, test, run = session
    # the run's select split of val.h5 and the same settings' select split of test.h5, trials named by the files
    run_dm = NLBDataModule(str(val), select_fraction=SELECT)
    fitted = {t for i, t in enumerate(_trials(val)) if i not in set(run_dm.select_rows.tolist())}
    scored = [_trials(test)[i] for i in NLBDataModule(str(test), select_fraction=SELECT).select_rows]
    overlap = sum(t in fitted for t in scored)
    assert overlap > 0  # the case the note is for (seeded: the same every run)
    capsys.readouterr()
    assert main(_run("validate", run, "--data.init_args.path", str(test))) == 0
    out = capsys.readouterr().out
    assert (f"note: valid/* is scored on the select split of {test} ({len(scored)} of its training trials): "
            f"{overlap} of them are trials the checkpoint was fitted on ({val} holds them in train_input), so they "
            "are not held out") in out, out


def test_validate_of_the_runs_own_file_and_predict_of_the_test_trials_say_nothing(session, capsys):
    tmp, _, test, run = session
    capsys.readouterr()
    assert main(_run("validate", run)) == 0
    assert "note:" not in capsys.readouterr().out
    pred = tmp / "pred_test.h5"
    assert main(_run("predict", run, "--data.init_args.path", str(test), "--prediction.path", str(pred))) == 0
    assert "note:" not in capsys.readouterr().out
    with h5py.File(pred, "r") as f, h5py.File(test, "r") as p:
        assert f.attrs["phase"] == "test"
        assert f["mc_maze_small_20/eval_rates_heldout"].shape[0] == p["eval_input/eval_spikes_heldin"].shape[0]


def test_an_hmmglm_run_on_the_test_phase_file_gets_no_held_in_note(session, capsys):
    """An HMM-GLM models the held-in units alone: its valid/* are of held-in spikes in either phase and it never
    logs co-bps, so the test-phase note would tell its user something false."""
    from pathlib import Path

    tmp, val, test, _ = session
    config = Path(__file__).resolve().parents[2] / "configs" / "hmmglm" / "mc_maze_small_states.yaml"
    assert main(["fit", "--config", str(config), "--data.path", str(val), "--trainer.max_epochs", "1",
                 "--trainer.default_root_dir", str(tmp), "--run-name", "hmm"]) == 0
    capsys.readouterr()
    assert main(["validate", "--run", str(tmp / "hmm"), "--ckpt_path", "last", "--data.init_args.path",
                 str(test)]) == 0
    out = capsys.readouterr().out
    assert "valid/ll_per_spike" in out and "test-phase file" not in out, out
