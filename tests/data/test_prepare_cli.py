"""``neurodyn prepare``: the real file, the HDF5 layout, load_prepared, and bad input through the CLI."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from neurodyn.cli import main
from neurodyn.data.nwb import load_session
from neurodyn.data.prepare import prepare
from neurodyn.data.prepared import load_prepared
from neurodyn.data.tensors import make_eval_target_tensors, make_train_input_tensors
from neurodyn.errors import InputError

pytestmark = pytest.mark.xdist_group("nlb_data")


@pytest.mark.requires_data
def test_real_file_test_phase(small_test_nwb, tmp_path, oracle, capsys):
    digest = oracle.sha256(small_test_nwb)
    out = tmp_path / "small.h5"
    rc = main(
        [
            "prepare",
            "--dataset",
            "mc_maze_small",
            "--nwb",
            str(small_test_nwb),
            "--bin-ms",
            "5",
            "--phase",
            "test",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    assert "train_input left out" in capsys.readouterr().out
    p = load_prepared(out)
    x = p.eval_input["eval_spikes_heldin"]
    assert x.shape == (100, 140, 107) and x.dtype == np.float16
    assert not np.isnan(x).any()
    assert f"{x.astype(np.float64).mean():.5f}" == "0.02196"
    assert p.train_input is None and p.eval_target is None
    assert (p.dataset, p.bin_ms, p.phase, p.n_heldin, p.n_heldout) == ("mc_maze_small", 5, "test", 107, 0)
    assert (p.n_obs_bins, p.n_fwd_bins) == (140, 40)
    assert p.attrs["source_files"] == [small_test_nwb.name]
    assert p.attrs["source_sha256"] == [digest]  # = DANDI's digest of the file
    assert oracle.sha256(small_test_nwb) == digest


def test_val_phase_file_layout(maze_pair, tmp_path):
    out = tmp_path / "maze.h5"
    assert prepare("mc_maze", maze_pair, 20, "val", out, log=None) == out
    p = load_prepared(out)
    s = load_session(maze_pair)
    tr = make_train_input_tensors(s, "mc_maze", 20, "val")
    assert list(p.train_input) == sorted(tr)
    for key, value in tr.items():
        assert p.train_input[key].dtype == value.dtype
        np.testing.assert_array_equal(p.train_input[key], value)
    assert list(p.eval_target) == ["mc_maze_20"]
    tg = make_eval_target_tensors(s, "mc_maze", 20, "val")["mc_maze_20"]
    got = p.eval_target_group
    assert set(got) == set(tg)
    for key in ("train_cond_idx", "eval_cond_idx"):  # ragged rows
        assert isinstance(got[key], list) and len(got[key]) == len(tg[key])
        for a, b in zip(got[key], tg[key]):
            np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(got["psth"], tg["psth"])
    with h5py.File(out, "r") as f:
        assert f["eval_target/mc_maze_20/train_cond_idx"].attrs["ragged"]
        assert sorted(f) == ["eval_input", "eval_target", "train_input", "trial_ids", "trial_source", "unit_ids",
                             "window_start_ms"]
    assert p.attrs["groups"] == ["train_input", "eval_input", "eval_target"]
    assert len(p.trial_ids["train"]) == p.attrs["n_train_trials"] == 18
    assert len(p.attrs["source_sha256"]) == 2 and p.attrs["neurodyn_version"]


def test_load_prepared_rejects_other_files(tmp_path, bad_files):
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["train_data"] = np.zeros((2, 3, 4))
    with pytest.raises(InputError, match="not a prepared file"):
        load_prepared(other)
    with pytest.raises(InputError, match="not an HDF5 file"):
        load_prepared(bad_files["text"])
    with pytest.raises(InputError, match="no such file"):
        load_prepared(tmp_path / "missing.h5")


@pytest.mark.parametrize("attrs, datasets, expected", [
    ({"nwb_version": "2.4.0"}, {"acquisition/x": [1]},
     "nwb_version: is an NWB file (make tensors from it with neurodyn prepare first)"),
    ({}, {"train_data": np.zeros((2, 3, 4))}, "train_data: is an LFADS-format data file (e.g. neurodyn simulate "
     "lorenz: --data LFADSDataModule reads it)"),
    ({"format": "neurodyn.switching_glm/1"}, {"spikes": np.zeros((2, 3, 4))}, "format: is a simulated switching-GLM "
     "data file (neurodyn simulate switching-glm: SwitchingGLMDataModule reads it)"),
    ({"phase": "val"}, {"mc_maze_20/eval_rates_heldin": np.zeros((2, 3, 4))},
     "format: is a prediction file (neurodyn predict / baseline / ensemble / submit)"),
    ({"module": "HMMGLMModule"}, {"valid_posteriors": np.zeros((2, 3, 2))},
     "format: is a prediction file (neurodyn predict / baseline / ensemble / submit)"),
])
def test_a_file_of_another_kind_is_named_where_a_prepared_file_belongs(tmp_path, capsys, attrs, datasets, expected):
    """A raw NWB file, an LFADS-format or switching-GLM data file or a prediction file given as a prepared file
    (baseline --prepared, fit / predict / validate --data.init_args.path) said only "format: not a prepared file
    (no format='neurodyn-prepared-nlb' attribute: `neurodyn prepare` did not write it)"."""
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as f:
        f.attrs.update(attrs)
        for key, value in datasets.items():
            f[key] = value
    assert main(["baseline", "--prepared", str(path), "--out", str(tmp_path / "p.h5")]) == 2
    assert capsys.readouterr().err.strip() == (f"neurodyn baseline: error: {path}: {expected}, not a prepared file "
                                               "(neurodyn prepare)")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.h5"]


def test_a_prepared_or_prediction_file_given_as_nwb_is_named(maze_pair, tmp_path, capsys):
    """prepare --nwb on a file of neurodyn's own (a prepared file, a prediction file) said only 'HDF5 file without
    NWB metadata (no 'nwb_version' attribute)'; it now says what the file is."""
    prep = prepare("mc_maze", maze_pair, 20, "val", tmp_path / "prep.h5", include_psth=False, log=None)
    pred = tmp_path / "pred.h5"
    with h5py.File(pred, "w") as f:
        f.attrs["module"] = "LangevinFlowModule"
        f["mc_maze_20/eval_rates_heldin"] = np.zeros((2, 3, 4))
    lacks = "HDF5 file without NWB metadata (no 'nwb_version' attribute)"
    for path, what in ((prep, "a prepared file already (neurodyn prepare's output: fit, baseline, evaluate take it)"),
                       (pred, "a prediction file (neurodyn predict / baseline / ensemble / submit)")):
        capsys.readouterr()
        assert main(["prepare", "--dataset", "mc_maze", "--nwb", str(path), "--out", str(tmp_path / "o.h5")]) == 2
        assert capsys.readouterr().err.strip() == f"neurodyn prepare: error: {path}: {lacks}; it is {what}"
    assert not (tmp_path / "o.h5").exists()


@pytest.mark.parametrize("layout, found", [
    ({"meta": None, "results/x": None, "data": [1, 2, 3]}, "groups 'meta', 'results' and dataset 'data'"),
    ({}, "nothing"),
    ({f"g{i:02d}": None for i in range(10)},
     "groups 'g00', 'g01', 'g02', 'g03', 'g04', 'g05', 'g06', 'g07' and 2 more"),
])
def test_an_unrelated_hdf5_file_given_as_nwb_says_what_it_holds(tmp_path, capsys, layout, found):
    """prepare --nwb on an HDF5 file of no kind neurodyn knows said only 'HDF5 file without NWB metadata (no
    'nwb_version' attribute)': it now names what the file's top level holds and what prepare reads."""
    path = tmp_path / "unrelated.h5"
    with h5py.File(path, "w") as f:
        for key, value in layout.items():
            if value is None:
                f.create_group(key)
            else:
                f[key] = value
    assert main(["prepare", "--dataset", "mc_maze", "--nwb", str(path), "--out", str(tmp_path / "o.h5")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"neurodyn prepare: error: {path}: HDF5 file without NWB metadata (no 'nwb_version' attribute); its top "
        f"level holds {found}; prepare reads the NWB files of an NLB session (DANDI's, or neurodyn simulate nlb's): "
        "root attribute 'nwb_version', groups 'units' and 'intervals/trials'")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["unrelated.h5"]


@pytest.mark.parametrize("attrs, field", [({"bin_ms": 20}, "dataset"), ({"dataset": "mc_maze"}, "bin_ms"),
                                          ({"dataset": "mc_maze", "bin_ms": -5}, "bin_ms"),
                                          ({"dataset": 3, "bin_ms": 20}, "dataset")])
def test_damaged_root_attributes_are_one_input_error(tmp_path, attrs, field):
    """A prepare file whose dataset / bin_ms attribute is missing or nonsense (found by the reader fuzzer)."""
    from neurodyn.metrics.evaluate import load_target
    from neurodyn.metrics.submission import expected_shapes_from_prepared

    path = tmp_path / "damaged.h5"
    with h5py.File(path, "w") as f:
        f.attrs.update({"format": "neurodyn-prepared-nlb", **attrs})
        f["eval_input/eval_spikes_heldin"] = np.zeros((2, 3, 4), dtype=np.float16)
        f["eval_target/mc_maze_20/eval_spikes_heldout"] = np.zeros((2, 3, 1))
    for read in (load_prepared, load_target, expected_shapes_from_prepared):
        with pytest.raises(InputError) as err:
            read(path)
        assert err.value.field == field and str(path) in str(err.value)


@pytest.mark.parametrize(
    "case, args, field",
    [
        ("missing", [], "no such file"),
        ("text", [], "not an HDF5 file"),
        ("truncated", [], "truncated or damaged HDF5"),
        ("no_units", [], ": units:"),
        ("no_trials", [], ": trials:"),
        ("no_heldout", [], ": units/heldout:"),
        ("rtt_as_maze", [], ": trials/move_onset_time:"),
        ("spike_outside", [], ": units/spike_times:"),
        ("test_only_val", [], ": trials/split:"),
        ("bin", ["--bin-ms", "7"], "--bin-ms: invalid choice: 7 (choose from 5, 20)"),
        ("bin_10", ["--bin-ms", "10"], "--bin-ms: invalid choice: 10 (choose from 5, 20)"),
        ("dataset", ["--dataset", "mc_mazz"], "valid names"),
    ],
)
def test_cli_bad_input(bad_files, maze_pair, tmp_path, oracle, capsys, case, args, field):
    if case == "missing":
        path = tmp_path / "missing.nwb"
    elif case in ("bin", "bin_10", "dataset"):
        path = maze_pair
    elif case == "test_only_val":
        path = oracle.pair(maze_pair, "mc_maze")[1]
    else:
        path = bad_files[case]
    digests = {p: oracle.sha256(p) for p in ([path] if path.is_file() else sorted(path.glob("*.nwb")))}
    out = tmp_path / "out.h5"
    argv = [
        "prepare",
        "--dataset",
        "mc_maze",
        "--nwb",
        str(path),
        "--phase",
        "val",
        "--out",
        str(out),
        "--quiet",
    ]
    rc = main(argv + args)
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("neurodyn prepare: error: ") and "\n" not in err
    assert field in err
    if case not in ("bin", "bin_10", "dataset"):
        assert str(path) in err  # the message names the file
    assert not out.exists() and not list(tmp_path.glob(".out.h5.*"))  # nothing half-written
    assert all(oracle.sha256(p) == d for p, d in digests.items())


def test_cli_help_and_missing_args(capsys):
    assert main(["prepare", "--help"]) == 0
    assert "--bin-ms" in capsys.readouterr().out
    assert main(["prepare", "--dataset", "mc_maze"]) == 2
    assert "--nwb" in capsys.readouterr().err


def test_out_must_not_be_the_input(maze_pair, oracle):
    train, _ = oracle.pair(maze_pair, "mc_maze")
    with pytest.raises(InputError, match="is an input file"):
        prepare("mc_maze", train, 5, "val", out=train, log=None)


@pytest.mark.requires_data
def test_refused_phase_prints_only_the_error(small_test_nwb, tmp_path, capsys):
    """The test file alone has no val-phase trials: the refusal is the only output (the 'left out' notes of
    the groups it could not make were printed before it, four lines in all)."""
    rc = main(["prepare", "--dataset", "mc_maze_small", "--nwb", str(small_test_nwb), "--bin-ms", "20",
               "--phase", "val", "--out", str(tmp_path / "x.h5")])
    captured = capsys.readouterr()
    assert rc == 2 and captured.out == ""
    assert len(captured.err.strip().splitlines()) == 1 and "trials/split: nothing to prepare" in captured.err
    assert not (tmp_path / "x.h5").exists()


def test_the_python_prepare_keeps_an_existing_file_unless_told(maze_pair, tmp_path):
    """prepare() (the Python API) had overwrite=True by default: a notebook call wrote its tensors over any
    file at ``out`` (helper-50: a text file of notes became an HDF5 file), unlike ``neurodyn prepare``."""
    mine = tmp_path / "mine.h5"
    mine.write_text("my precious notes")
    with pytest.raises(InputError, match="exists"):
        prepare("mc_maze", maze_pair, 20, "val", mine, log=None)
    assert mine.read_text() == "my precious notes"
    assert prepare("mc_maze", maze_pair, 20, "val", mine, log=None, overwrite=True) == mine


def test_prepare_from_python_names_its_arguments_and_the_command_its_options(maze_pair, tmp_path, capsys):
    """prepare() from Python refused an existing file with "--out: exists; pass --overwrite", options of
    `neurodyn prepare`: a Python caller now reads out / overwrite=True, the command its options."""
    mine = tmp_path / "mine.h5"
    mine.write_text("notes")
    with pytest.raises(InputError) as err:
        prepare("mc_maze", maze_pair, 20, "val", mine, log=None)
    assert str(err.value) == f"{mine}: out: exists; pass overwrite=True to replace it"
    argv = ["prepare", "--dataset", "mc_maze", "--nwb", str(maze_pair), "--bin-ms", "20", "--phase", "val"]
    assert main([*argv, "--out", str(mine)]) == 2
    assert capsys.readouterr().err.strip() == (f"neurodyn prepare: error: {mine}: --out: exists; pass --overwrite "
                                               "to replace it")
    assert mine.read_text() == "notes"


def test_a_file_of_another_bin_width_is_read_and_fit_but_not_scored(maze_pair, tmp_path, capsys):
    """prepare() from Python writes any width that divides the windows (10 ms here); such a file is read
    (helper-60: a check added to the reader refused it, breaking pseudo_cosmoothing_split(bin_ms=10)), and
    only the commands that need an NLB group (baseline, --upsample) refuse it, naming the width."""
    out = prepare("mc_maze", maze_pair, 10, "val", tmp_path / "p10.h5", log=None)
    assert load_prepared(out).bin_ms == 10
    assert main(["baseline", "--prepared", str(out), "--out", str(tmp_path / "b.h5")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"neurodyn baseline: error: {out}: bin_ms: must be an NLB bin width (5 or 20 ms), got 10"]
    assert not (tmp_path / "b.h5").exists()


def test_a_seed_that_changes_nothing_is_said(maze_pair, dmfc_pair, tmp_path, capsys):
    """``--seed`` seeds the DMFC_RSG window jitter only: given for mc_maze it changed nothing and nothing said
    so. Now a note says it; the tensors are those of the default seed. For dmfc_rsg the seed moves the jitter
    (no note), and the same seed gives the same bytes."""
    def run(dataset, folder, out, *seed):
        capsys.readouterr()
        assert main(["prepare", "--dataset", dataset, "--nwb", str(folder), "--bin-ms", "20", "--out",
                     str(tmp_path / out), *seed]) == 0
        return [line for line in capsys.readouterr().out.splitlines() if "note:" in line]

    assert run("mc_maze", maze_pair, "plain.h5") == []
    assert run("mc_maze", maze_pair, "zero.h5", "--seed", "0") == [
        "neurodyn prepare: note: --seed 0 changes no tensor: mc_maze draws nothing at random (only the DMFC_RSG "
        "window jitter does); the file records it as given"]
    assert len(run("mc_maze", maze_pair, "seeded.h5", "--seed", "5")) == 1
    plain = load_prepared(tmp_path / "plain.h5")
    for name in ("zero.h5", "seeded.h5"):
        other = load_prepared(tmp_path / name)
        for group in ("train_input", "eval_input", "eval_target"):
            assert getattr(other, group).keys() == getattr(plain, group).keys()
            for key, value in getattr(other, group).items():
                ours = getattr(plain, group)[key]
                if np.asarray(value).dtype == object:  # ragged rows (eval_cond_idx)
                    assert len(value) == len(ours) and all(np.array_equal(a, b) for a, b in zip(value, ours)), key
                else:
                    np.testing.assert_array_equal(value, ours, err_msg=key)
    assert (tmp_path / "plain.h5").read_bytes() == (tmp_path / "zero.h5").read_bytes()
    # --dmfc-target likewise (it chooses DMFC_RSG's eval target only)
    assert run("mc_maze", maze_pair, "target.h5", "--dmfc-target", "input") == [
        "neurodyn prepare: note: --dmfc-target input changes no tensor: it chooses DMFC_RSG's eval target, and "
        "mc_maze has one; the file records it as given"]
    assert run("dmfc_rsg", dmfc_pair, "dt.h5", "--dmfc-target", "input") == []
    assert run("dmfc_rsg", dmfc_pair, "d1.h5", "--seed", "1") == []
    assert run("dmfc_rsg", dmfc_pair, "d1b.h5", "--seed", "1") == []
    assert run("dmfc_rsg", dmfc_pair, "d2.h5", "--seed", "2") == []
    assert (tmp_path / "d1.h5").read_bytes() == (tmp_path / "d1b.h5").read_bytes()
    with h5py.File(tmp_path / "d1.h5") as a, h5py.File(tmp_path / "d2.h5") as b:
        jitter = "eval_target/dmfc_rsg_20/train_jitter"
        assert not np.array_equal(a[jitter][()], b[jitter][()])
