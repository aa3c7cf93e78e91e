"""LangevinFlow predictions of a prepared NLB file name their rows by NLB trial id, beside the submission group.

``neurodyn plot pred.h5`` of such a prediction titled its row "row 0: predicted rates" although the prepared file
records each row's NLB trial id (``trial_ids/train``, ``trial_ids/eval``), and ``--trial 100`` (the README's
example, NLB trials 100..124) said only "row 100 out of range" there: only HMM-GLM predictions carried their
rows' ids. ``predict`` now writes them as ``trial_ids/<group>/{train,eval}`` beside the dataset group (whose
arrays -- what nlb_tools' evaluator and ``submit`` read -- are unchanged), ``plot`` names rows by them as it does
for HMM-GLM predictions, and ``ensemble`` keeps them when its members agree, refusing members of other ids.
"""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
from h5_files import one_error

from neurodyn.cli import main

GROUP = "mc_maze_20"
#: the arrays of the NLB submission group of a LangevinFlow prediction of a file with forward bins
SUBMISSION_ARRAYS = {"train_rates_heldin", "train_rates_heldout", "eval_rates_heldin", "eval_rates_heldout",
                     "eval_rates_heldin_forward", "eval_rates_heldout_forward"}


@pytest.fixture(scope="module")
def predictions(tmp_path_factory):
    """A val-phase file prepared from the simulator's NWB pair and the predictions of two tiny fits (seeds 0, 1)."""
    from neurodyn.data.prepare import prepare
    from neurodyn.data.synthetic.nlb_nwb import write_nlb_pair

    tmp = tmp_path_factory.mktemp("nlb_ids")
    write_nlb_pair(tmp / "nwb", "mc_maze", n_train_trials=16, n_test_trials=4, n_heldin=6, n_heldout=3, seed=2)
    prepared = tmp / "mc_maze_20_val.h5"
    prepare("mc_maze", tmp / "nwb", bin_ms=20, phase="val", out=prepared, log=None)
    preds = []
    for seed in (0, 1):
        args = ["--data", "NLBDataModule", "--data.path", str(prepared), "--data.batch_size", "8",
                "--model", "LangevinFlowModule", "--model.config.hidden_size", "8", "--model.config.ff_dim", "16",
                "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
                "--trainer.enable_model_summary", "false", "--trainer.max_epochs", "1", "--seed_everything", str(seed),
                "--trainer.default_root_dir", str(tmp)]
        assert main(["fit", *args, "--run-name", f"run{seed}"]) == 0
        out = tmp / f"pred{seed}.h5"
        assert main(["predict", "--run", str(tmp / f"run{seed}"), "--ckpt_path", "last", "--prediction.path",
                     str(out)]) == 0
        preds.append(out)
    return tmp, prepared, preds


def _ids(prepared):
    with h5py.File(prepared) as f:
        return {split: f[f"trial_ids/{split}"][()] for split in ("train", "eval")}


def test_predict_writes_the_rows_trial_ids_beside_an_unchanged_submission_group(predictions):
    _, prepared, (pred, _) = predictions
    ids = _ids(prepared)
    with h5py.File(pred) as f:
        assert set(f[GROUP]) == SUBMISSION_ARRAYS  # nlb_tools' arrays only: no id array inside the group
        assert set(f) == {GROUP, "latents", "window_start_ms", "trial_ids"}
        for split in ("train", "eval"):
            written = f[f"trial_ids/{GROUP}/{split}"]
            assert written.dtype == np.int64
            np.testing.assert_array_equal(written[()], ids[split])
            assert len(written) == len(f[f"{GROUP}/{split}_rates_heldin"])


def test_plot_names_the_rows_by_their_nlb_trial_ids(predictions, tmp_path, capsys):
    from neurodyn.viz.prediction import draw_prediction, read_prediction

    _, prepared, (pred, _) = predictions
    ids = _ids(prepared)["eval"]
    data = read_prediction(pred)
    np.testing.assert_array_equal(data["trial_ids"], ids)
    fig = draw_prediction(data, trial=1)
    assert f"row 1 (NLB trial {ids[1]}): predicted rates" in {ax.get_title() for ax in fig.axes}
    # an NLB trial id given to --trial: refused, naming the ids and the row of that trial
    last = int(ids[-1])
    assert last >= len(ids)  # an id that is no row index (else --trial would draw that row)
    assert main(["plot", str(pred), "--out", str(tmp_path / "p.png"), "--trial", str(last)]) == 2
    error = one_error(capsys)
    assert error.startswith(f"neurodyn plot: error: {pred}: --trial: row {last} out of range: --trial takes a row "
                            f"index, 0..{len(ids) - 1}, not an NLB trial id: the rows hold NLB trials ")
    assert error.endswith(f"; NLB trial {last} is row {len(ids) - 1}")
    assert main(["plot", str(pred), "--out", str(tmp_path / "p.png")]) == 0


@pytest.mark.parametrize(("ids", "words"), [
    (np.array([1.5, 2.0, 3.0, 4.0]), "NLB trial ids must be integers, one per row (as neurodyn writes them, int64), "
                                     "found float64"),
    (np.array([7, 8, 9]), "3 ids for 4 rows"),
    (np.array([7, 8, 8, 9]), "expected distinct NLB trial ids, found 8 twice (damaged file?)"),
])
def test_plot_refuses_ids_that_are_not_one_whole_number_per_row(predictions, tmp_path, capsys, ids, words):
    """The rule of the HMM-GLM layout's ``*_trial_ids``: one line naming the file and the field, exit 2."""
    _, _, (pred, _) = predictions
    bad = tmp_path / "bad.h5"
    shutil.copyfile(pred, bad)
    with h5py.File(bad, "a") as f:
        assert len(f[f"{GROUP}/eval_rates_heldin"]) == 4  # the rows the ids above are written for
        if "trial_ids" in f:
            del f["trial_ids"]
        f[f"trial_ids/{GROUP}/eval"] = ids
    assert main(["plot", str(bad), "--out", str(tmp_path / "b.png")]) == 2
    assert one_error(capsys) == f"neurodyn plot: error: {bad}: trial_ids/{GROUP}/eval: {words}"


def test_evaluate_and_submit_accept_the_file_and_submit_writes_rates_only(predictions, capsys):
    """A guard (passes before and after): the ids beside the group change nothing evaluate and submit read."""
    tmp, prepared, (pred, _) = predictions
    assert main(["evaluate", "--target", str(prepared), "--pred", str(pred), "--json"]) == 0
    capsys.readouterr()
    sub = tmp / "submission.h5"
    assert main(["submit", "--pred", str(pred), "--out", str(sub), "--prepared", str(prepared), "--overwrite"]) == 0
    with h5py.File(sub) as s, h5py.File(pred) as p:
        assert set(s) == {GROUP} and set(s[GROUP]) == SUBMISSION_ARRAYS  # an EvalAI submission: the rates alone
        for key in SUBMISSION_ARRAYS:
            np.testing.assert_array_equal(s[f"{GROUP}/{key}"][()], p[f"{GROUP}/{key}"][()])


def test_ensemble_keeps_the_ids_its_members_share_and_refuses_other_ids(predictions, tmp_path, capsys):
    _, prepared, (a, b) = predictions
    ids = _ids(prepared)
    out = tmp_path / "ens.h5"
    assert main(["ensemble", "--pred", str(a), str(b), "--out", str(out)]) == 0
    with h5py.File(out) as f:
        assert set(f[GROUP]) == SUBMISSION_ARRAYS
        for split in ("train", "eval"):
            np.testing.assert_array_equal(f[f"trial_ids/{GROUP}/{split}"][()], ids[split])
    capsys.readouterr()
    from neurodyn.viz.prediction import read_prediction

    np.testing.assert_array_equal(read_prediction(out)["trial_ids"], ids["eval"])
    # a member whose rows are other trials (here: its eval ids swapped, as a file of the rows in another order)
    other = tmp_path / "other.h5"
    shutil.copyfile(b, other)
    swapped = ids["eval"][[1, 0, *range(2, len(ids["eval"]))]]
    with h5py.File(other, "a") as f:
        f[f"trial_ids/{GROUP}/eval"][...] = swapped
    assert main(["ensemble", "--pred", str(a), str(other), "--out", str(tmp_path / "ens2.h5")]) == 2
    assert one_error(capsys) == (
        f"neurodyn ensemble: error: {other}: trial_ids/{GROUP}/eval: row 0 is NLB trial {swapped[0]}, but trial "
        f"{ids['eval'][0]} in {a}: the members' rows are other trials (or in another order), and an ensemble averages "
        "the rates of the same trials row by row")
    assert not (tmp_path / "ens2.h5").exists()
    # a member that records none (a file of an older neurodyn): a note, and an ensemble without ids
    bare = tmp_path / "bare.h5"
    shutil.copyfile(b, bare)
    with h5py.File(bare, "a") as f:
        del f["trial_ids"]
    out3 = tmp_path / "ens3.h5"
    assert main(["ensemble", "--pred", str(a), str(bare), "--out", str(out3)]) == 0
    printed = capsys.readouterr().out
    assert f"note: {bare} records no NLB trial ids of its rows (trial_ids/{GROUP}/eval), unlike {a}" in printed
    with h5py.File(out3) as f:
        assert "trial_ids" not in f


def test_a_baseline_carries_the_ids_too_and_ensembles_with_a_prediction(predictions, tmp_path):
    """``neurodyn baseline`` writes the same layout from the same prepared file: its rows were unnamed as well."""
    from neurodyn.viz.prediction import read_prediction

    _, prepared, (pred, _) = predictions
    ids = _ids(prepared)
    base = tmp_path / "baseline.h5"
    assert main(["baseline", "--prepared", str(prepared), "--out", str(base)]) == 0
    with h5py.File(base) as f:
        assert set(f[GROUP]) == SUBMISSION_ARRAYS
        for split in ("train", "eval"):
            np.testing.assert_array_equal(f[f"trial_ids/{GROUP}/{split}"][()], ids[split])
    np.testing.assert_array_equal(read_prediction(base)["trial_ids"], ids["eval"])
    out = tmp_path / "ens.h5"
    assert main(["ensemble", "--pred", str(pred), str(base), "--out", str(out)]) == 0
    np.testing.assert_array_equal(read_prediction(out)["trial_ids"], ids["eval"])
