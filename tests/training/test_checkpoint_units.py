"""A checkpoint applied to another session's (or dataset's) units is refused; another phase of its session is not.

A LangevinFlow or HMM-GLM model's read-in and read-out weights belong to particular units. Before, ``validate`` /
``test`` / ``predict`` compared only the unit counts and the bin width, so a checkpoint of one session predicted
another session with as many units (or the same units prepared as another NLB dataset) with no error.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from neurodyn.cli import main

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
TINY = ["--data.batch_size", "8", "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false", "--trainer.max_epochs", "1"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Two simulated sessions with as many units (seeds 0 and 1), the first prepared in both phases, from its
    train NWB file alone and as another dataset of the same window; a 1-epoch LangevinFlow and HMM-GLM run on
    the first session's val-phase file."""
    from neurodyn.data.prepare import prepare
    from neurodyn.data.synthetic.nlb_nwb import write_nlb_pair

    tmp = tmp_path_factory.mktemp("units")
    train0, _ = write_nlb_pair(tmp / "nwb0", "mc_maze", n_train_trials=24, n_test_trials=8, n_heldin=12,
                               n_heldout=4, seed=0)
    write_nlb_pair(tmp / "nwb1", "mc_maze", n_train_trials=24, n_test_trials=8, n_heldin=12, n_heldout=4, seed=1)

    def prep(name, nwb, phase="val", dataset="mc_maze_small"):
        return prepare(dataset, nwb, 20, phase, tmp / f"{name}.h5", include_psth=False, log=None)

    out = {"val": prep("val", tmp / "nwb0"), "test": prep("test", tmp / "nwb0", "test"),
           "train_only": prep("train_only", train0), "other_session": prep("other_session", tmp / "nwb1"),
           "other_dataset": prep("other_dataset", tmp / "nwb0", dataset="mc_maze_medium")}
    assert main(["fit", "--data", "NLBDataModule", "--data.path", str(out["val"]), "--model", "LangevinFlowModule",
                 "--model.config.hidden_size", "8", "--model.config.ff_dim", "16", *TINY,
                 "--trainer.default_root_dir", str(tmp), "--run-name", "lf"]) == 0
    assert main(["fit", "--config", str(CONFIGS / "hmmglm" / "mc_maze_small_states.yaml"), "--data.path",
                 str(out["val"]), "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp),
                 "--run-name", "hmm"]) == 0
    return tmp, out


def _predict(run: Path, data: Path, pred: Path, ckpt: Path | None = None) -> int:
    return main(["predict", "--config", str(run / "config.yaml"), "--ckpt_path",
                 str(ckpt or run / "checkpoints" / "last.ckpt"), "--data.init_args.path", str(data),
                 "--prediction.path", str(pred)])


@pytest.mark.parametrize("run", ["lf", "hmm"])
@pytest.mark.parametrize("other, field", [("other_session", "source_sha256"), ("other_dataset", "dataset")])
def test_predict_of_other_units_with_as_many_of_them_is_refused_in_one_line(files, capsys, run, other, field):
    tmp, data = files
    pred = tmp / f"pred_{run}_{other}.h5"
    capsys.readouterr()
    assert _predict(tmp / run, data[other], pred) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"neurodyn predict: error: {data[other]}: {field}: the checkpoint "), err
    assert "belong to the units it was trained on, not to these" in err[0], err
    assert not pred.exists()


@pytest.mark.parametrize("run", ["lf", "hmm"])
@pytest.mark.parametrize("phase", ["test", "train_only", "val"])
def test_the_same_sessions_other_phase_and_other_preparation_are_predicted(files, capsys, run, phase):
    """The documented pairings: the val-phase checkpoint on the test-phase file (and the file prepared from the
    session's train NWB file alone, which has its units too)."""
    tmp, data = files
    pred = tmp / f"pred_{run}_{phase}.h5"
    assert _predict(tmp / run, data[phase], pred) == 0, capsys.readouterr().err
    assert pred.is_file()


def test_the_checkpoint_records_the_units_of_its_training_file(files):
    tmp, data = files
    ckpt = torch.load(tmp / "lf" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    with h5py.File(data["val"], "r") as f:
        sources = [[str(s), str(n)] for s, n in zip(f.attrs["source_sha256"], f.attrs["source_files"])]
        ids = {f"{kind}_ids": f[f"unit_ids/{kind}"][()].tolist() for kind in ("heldin", "heldout")}
    assert len(ids["heldin_ids"]) == 12 and len(ids["heldout_ids"]) == 4
    assert ckpt["neurodyn"]["units"] == {"dataset": "mc_maze_small", "sources": sources, **ids}


def _edited_ids(src: Path, dst: Path, **ids) -> Path:
    """A copy of a prepared file (same sources, same digests) with other unit ids (``kind=None``: none recorded,
    as a file prepared before neurodyn recorded them)."""
    import shutil

    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        for kind, values in ids.items():
            old = f[f"unit_ids/{kind}"][()]
            del f[f"unit_ids/{kind}"]
            if values is not None:
                f[f"unit_ids/{kind}"] = values(old)
        if not len(f["unit_ids"]):
            del f["unit_ids"]
    return dst


@pytest.mark.parametrize("run", ["lf", "hmm"])
@pytest.mark.parametrize("kind, values", [("heldin", lambda ids: ids[::-1]), ("heldout", lambda ids: ids + 100)])
def test_the_sessions_file_with_other_unit_ids_is_refused_in_one_line(files, capsys, run, kind, values):
    """The same source digest, but the columns are other units (held-out) or in another order (held-in): the ids
    recorded in the checkpoint decide, where both record them."""
    tmp, data = files
    edited = _edited_ids(data["val"], tmp / f"ids_{run}_{kind}.h5", **{kind: values})
    pred = tmp / f"pred_ids_{run}_{kind}.h5"
    capsys.readouterr()
    assert _predict(tmp / run, edited, pred) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"neurodyn predict: error: {edited}: unit_ids/{kind}: the checkpoint "), err
    assert "belong to the units it was trained on, not to these" in err[0], err
    assert not pred.exists()


@pytest.mark.parametrize("run", ["lf", "hmm"])
def test_the_prediction_file_names_the_units_of_its_columns(files, capsys, run):
    """Each id attribute names the columns of arrays the file holds: LangevinFlow's rates have held-in and held-out
    columns; a switching GLM's neurons (``bias``, ``coupling``'s post and pre axes) are the held-in units only, so
    its file carries no ``heldout_unit_ids`` (before, it did: a notebook labelling its columns by them would
    have named units the file holds nothing of)."""
    tmp, data = files
    pred = tmp / f"pred_names_{run}.h5"
    assert _predict(tmp / run, data["val"], pred) == 0, capsys.readouterr().err
    kinds = ("heldin", "heldout") if run == "lf" else ("heldin",)
    with h5py.File(data["val"], "r") as f, h5py.File(pred, "r") as p:
        assert sorted(k for k in p.attrs if k.endswith("_unit_ids")) == [f"{kind}_unit_ids" for kind in kinds]
        for kind in kinds:
            got = p.attrs[f"{kind}_unit_ids"]
            assert got.dtype == np.int64
            np.testing.assert_array_equal(got, f[f"unit_ids/{kind}"][()])
        # as many ids as the columns they name
        n_in = len(p.attrs["heldin_unit_ids"])
        widths = {}
        p.visititems(lambda name, obj: widths.update({name: obj.shape[-1]}) if isinstance(obj, h5py.Dataset) else None)
        rates = {name: width for name, width in widths.items() if "rates_held" in name}
        if run == "lf":
            n_out = len(p.attrs["heldout_unit_ids"])
            assert rates and all(width == (n_in if "heldin" in name else n_out) for name, width in rates.items()), rates
        else:
            assert not rates and widths["bias"] == n_in and p["coupling"].shape[-2:] == (n_in, n_in), widths


def test_a_file_without_the_ids_is_compared_by_its_sources(files, capsys):
    """A file prepared before the ids were recorded: the checkpoint's ids are not compared (its sources are), and
    the prediction file names no units."""
    tmp, data = files
    old = _edited_ids(data["val"], tmp / "no_ids.h5", heldin=None, heldout=None)
    pred = tmp / "pred_no_ids.h5"
    assert _predict(tmp / "lf", old, pred) == 0, capsys.readouterr().err
    with h5py.File(pred, "r") as p:
        assert "heldin_unit_ids" not in p.attrs and "heldout_unit_ids" not in p.attrs
    other = _edited_ids(data["other_session"], tmp / "other_no_ids.h5", heldin=None, heldout=None)
    assert _predict(tmp / "lf", other, tmp / "pred_other_no_ids.h5") == 2
    assert ": source_sha256: the checkpoint " in capsys.readouterr().err


def test_info_of_a_checkpoint_names_the_units_it_was_trained_on(files, capsys):
    """``info`` of a checkpoint shows the units record the checks above compare (dataset and source NWB files)."""
    tmp, data = files
    assert main(["info", str(tmp / "lf" / "checkpoints" / "last.ckpt")]) == 0
    out = " ".join(capsys.readouterr().out.split())
    with h5py.File(data["val"], "r") as f:
        names = [str(n) for n in f.attrs["source_files"]]
    assert "│ units │ mc_maze_small: the units of" in out and all(name in out for name in names), out
    with h5py.File(data["val"], "r") as f:
        heldout = ", ".join(map(str, f["unit_ids/heldout"][()].tolist()))
    assert "held-in unit ids (12): " in out and f"held-out unit ids (4): {heldout}" in out, out


def test_a_checkpoint_without_the_record_is_not_checked(files, capsys):
    """Checkpoints of an older neurodyn record no units: compared by counts and bin width only, as before."""
    tmp, data = files
    ckpt = torch.load(tmp / "lf" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    ckpt["neurodyn"].pop("units", None)
    old = tmp / "old.ckpt"
    torch.save(ckpt, old)
    assert _predict(tmp / "lf", data["other_session"], tmp / "pred_old.h5", old) == 0, capsys.readouterr().err


def test_the_test_phase_file_orders_the_units_as_the_val_phase_file(files):
    """The same trial's held-in and held-out spikes in both phases' train_input (the test-phase file holds the
    val-phase file's training trials): the same columns, so one checkpoint reads both files' units alike."""
    _, data = files

    def rows(path):
        with h5py.File(path, "r") as f:
            names = [str(n) for n in np.atleast_1d(f.attrs["source_files"])]
            keys = [(names[int(i)], int(t)) for i, t in np.asarray(f["trial_source/train"][()])]
            return {k: (f["train_input/train_spikes_heldin"][j], f["train_input/train_spikes_heldout"][j])
                    for j, k in enumerate(keys)}

    val, test = rows(data["val"]), rows(data["test"])
    shared = set(val) & set(test)
    assert len(shared) == len(val)
    for key in shared:
        np.testing.assert_array_equal(val[key][0], test[key][0])
        np.testing.assert_array_equal(val[key][1], test[key][1])


class _Prepared:
    def __init__(self, attrs):
        self.attrs = attrs


class _Data:
    """The attributes of an NLBDataModule that check_units reads."""

    def __init__(self, names, shas, dataset="mc_maze_small"):
        self.path = "data.h5"
        self.prepared = _Prepared({"dataset": dataset, "source_files": np.array(names, dtype=object),
                                   "source_sha256": np.array(shas, dtype=object)})


TRAIN, TEST = "sub-X_desc-train_ecephys.nwb", "sub-X_desc-test_ecephys.nwb"


@pytest.mark.parametrize("ckpt_sources, data_sources", [
    # trained on the val-phase file (train NWB file hashed); the test-phase file of the same session, prepared
    # from a folder (or a dandi:// path) whose train file's digest is unknown and whose test file's is known
    ([("a" * 64, TRAIN)], [("", TRAIN), ("b" * 64, TEST)]),
    # the reverse: trained on such a test-phase file, applied to the session's val-phase file
    ([("b" * 64, TEST), ("", TRAIN)], [("a" * 64, TRAIN)]),
])
def test_a_digest_unknown_on_one_side_is_never_taken_for_another_session(ckpt_sources, data_sources):
    """Only the train NWB file is common to every prepared file of a session; where its digest is unknown on one
    side, digests of the other files that differ say nothing about the session."""
    from neurodyn.training.checkpoints import check_units, data_units

    saved = data_units(_Data([n for _, n in ckpt_sources], [s for s, _ in ckpt_sources]))
    check_units({"neurodyn": {"units": saved}}, _Data([n for _, n in data_sources], [s for s, _ in data_sources]),
                "last.ckpt")


def test_every_digest_known_and_none_shared_is_another_session():
    """The guard of the test above: every digest known on both sides and none shared is another session."""
    from neurodyn.errors import InputError
    from neurodyn.training.checkpoints import check_units, data_units

    saved = data_units(_Data([TRAIN], ["a" * 64]))
    with pytest.raises(InputError, match="source_sha256"):
        check_units({"neurodyn": {"units": saved}}, _Data([TEST, TRAIN], ["b" * 64, "c" * 64]), "last.ckpt")


def test_baseline_and_ensemble_files_carry_the_unit_ids_as_predict_does(files, capsys):
    """``predict`` writes the NWB unit id of each column (heldin_unit_ids / heldout_unit_ids); the baseline's
    submission file and an ensemble of such files did not, so their columns could not be named."""
    from neurodyn.io.hdf5 import root_attrs

    tmp, data = files
    with h5py.File(data["val"], "r") as f:
        expected = {kind: f[f"unit_ids/{kind}"][()] for kind in ("heldin", "heldout")}
    made = []
    for sigma in ("40", "60"):
        out = tmp / f"baseline_{sigma}.h5"
        assert main(["baseline", "--prepared", str(data["val"]), "--out", str(out), "--sigma-ms", sigma]) == 0, \
            capsys.readouterr().err
        made.append(out)
    ensemble = tmp / "baseline_ensemble.h5"
    assert main(["ensemble", "--pred", *map(str, made), "--out", str(ensemble)]) == 0, capsys.readouterr().err
    for path in (*made, ensemble):
        attrs = root_attrs(path)
        for kind, ids in expected.items():
            np.testing.assert_array_equal(attrs[f"{kind}_unit_ids"], ids, err_msg=f"{path.name} {kind}")


def test_the_submission_file_keeps_the_unit_ids_of_its_groups(files, capsys):
    """``submit`` kept a whitelist of root attributes that left the unit ids out, so a submission's columns could
    not be named. One prediction file: its ``heldin_unit_ids`` / ``heldout_unit_ids`` at the root, as predict,
    baseline and ensemble write them; several (datasets): in each member's entry of ``submission_members``,
    beside its ``dataset``. nlb_tools' evaluation reads the dataset groups and their arrays by key only, so
    attributes cannot change a score."""
    import json

    from neurodyn.io.hdf5 import root_attrs

    tmp, data = files
    made, expected = {}, {}
    for name in ("val", "other_dataset"):
        out = tmp / f"submit_baseline_{name}.h5"
        assert main(["baseline", "--prepared", str(data[name]), "--out", str(out)]) == 0, capsys.readouterr().err
        made[name] = out
        with h5py.File(data[name], "r") as f:
            expected[str(f.attrs["dataset"])] = {kind: f[f"unit_ids/{kind}"][()] for kind in ("heldin", "heldout")}
    one = tmp / "submission_one.h5"
    assert main(["submit", "--pred", str(made["val"]), "--prepared", str(data["val"]), "--out", str(one)]) == 0, \
        capsys.readouterr().err
    attrs = root_attrs(one)
    for kind, ids in expected["mc_maze_small"].items():
        assert attrs[f"{kind}_unit_ids"].dtype == np.int64
        np.testing.assert_array_equal(attrs[f"{kind}_unit_ids"], ids, err_msg=kind)
    both = tmp / "submission_both.h5"
    assert main(["submit", "--pred", *map(str, made.values()), "--prepared", *(str(data[n]) for n in made),
                 "--out", str(both)]) == 0, capsys.readouterr().err
    members = json.loads(root_attrs(both)["submission_members"])
    assert sorted(m["dataset"] for m in members) == sorted(expected)
    for member in members:
        for kind, ids in expected[member["dataset"]].items():
            assert member[f"{kind}_unit_ids"] == ids.tolist(), (member["dataset"], kind)
