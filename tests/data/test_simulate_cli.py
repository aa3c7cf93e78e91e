"""`neurodyn simulate` through the real entry point `neurodyn.cli.main`."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from neurodyn.cli import main
from neurodyn.data.lfads import read_lfads_h5

TINY = ["--n-conditions", "3", "--trials-per-condition", "4", "--n-samples", "100", "--n-neurons", "5",
        "--no-progress"]


def test_lorenz_writes_lfads_file(tmp_path, capsys):
    out = tmp_path / "sub" / "lorenz.h5"
    assert main(["simulate", "lorenz", *TINY, "--seed", "3", "--out", str(out)]) == 0
    data = read_lfads_h5(out)
    # 12 trials, round(0.8 * 12) = 10 train; 100 samples / 20 ms = 5 bins
    assert data.train_data.shape == (10, 5, 5) and data.valid_data.shape == (2, 5, 5)
    assert data.train_latents.shape == (10, 5, 3)
    assert data.attrs["seed"] == 3
    printed = capsys.readouterr().out.strip().splitlines()
    assert len(printed) == 1 and str(out) in printed[0] and "12 trials" in printed[0]
    # same seed through the CLI -> identical file contents
    again = tmp_path / "again.h5"
    assert main(["simulate", "lorenz", *TINY, "--seed", "3", "--out", str(again)]) == 0
    np.testing.assert_array_equal(read_lfads_h5(again).train_data, data.train_data)


def test_lorenz_options_reach_the_simulator(tmp_path):
    out = tmp_path / "p.h5"
    args = ["simulate", "lorenz", "--n-conditions", "2", "--trials-range", "3", "5", "--n-samples", "60",
            "--bin-ms", "10", "--spikes", "poisson", "--standard-lorenz", "--no-progress", "--out", str(out)]
    assert main(args) == 0
    data = read_lfads_h5(out)
    assert data.n_bins == 6 and data.bin_ms == 10.0 and data.conversion_factor == 100.0
    n_trials = len(data.train_inds) + len(data.valid_inds)
    assert 6 <= n_trials <= 10
    assert "Poisson" in data.attrs["truth_kind"] and "'standard_lorenz': True" in data.attrs["config"]


@pytest.mark.parametrize("bad", [
    ["--bin-ms", "30"],                       # 100 samples not a multiple of 30 -> InputError
    ["--n-conditions", "zero"],               # argparse type error
    ["--n-conditions", "0"],                  # InputError from the config
    ["--spikes", "gaussian"],                 # argparse choices
    ["--trials-per-condition", "2", "--trials-range", "1", "2"],  # mutually exclusive
])
def test_bad_arguments_exit_2_without_file(tmp_path, bad, capsys):
    out = tmp_path / "x.h5"
    assert main(["simulate", "lorenz", *TINY, *bad, "--out", str(out)]) == 2
    assert not out.exists() and list(tmp_path.iterdir()) == []
    err = capsys.readouterr().err
    assert "error" in err


@pytest.mark.parametrize(("trials", "option"), [(["--trials-per-condition", "1"], "--trials-per-condition"),
                                               (["--trials-range", "1", "1"], "--trials-range")])
def test_trials_that_do_not_split_name_the_options(trials, option, tmp_path, capsys):
    """One condition of one trial cannot be split into training and validation trials: the line named
    'train_fraction', which is not an option of the command. It names the options that make the count."""
    out = tmp_path / "x.h5"
    argv = ["simulate", "lorenz", "--n-conditions", "1", *trials, "--n-samples", "100", "--n-neurons", "5",
            "--no-progress", "--out", str(out)]
    assert main(argv) == 2
    assert list(tmp_path.iterdir()) == []
    assert capsys.readouterr().err.strip().splitlines() == [
        f"neurodyn simulate: error: --n-conditions / {option} / --train-fraction: 1 trials cannot be split 1/0"]


def test_a_diverging_step_is_one_line_without_numpy_warnings(tmp_path, capsys):
    """helper-58: `--dt 10` printed 8 lines of numpy overflow RuntimeWarnings before its one-line error."""
    import warnings

    out = tmp_path / "x.h5"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails the command
        assert main(["simulate", "lorenz", *TINY, "--dt", "10", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["neurodyn simulate: error: dt: the Euler integration diverged; reduce dt"]
    assert not out.exists()


def test_missing_out_and_help(capsys):
    assert main(["simulate", "lorenz", *TINY]) == 2
    assert main(["simulate", "--help"]) == 0
    assert "switching-glm" in capsys.readouterr().out
    assert main(["simulate"]) == 2


def test_switching_glm_dispatch(monkeypatch, tmp_path):
    """The subcommand takes its options and runner from the switching_glm module (faked here)."""
    seen = {}
    fake = types.ModuleType("neurodyn.data.synthetic.switching_glm")

    def add_cli_arguments(parser):
        parser.add_argument("--n-states", type=int, default=5)
        parser.add_argument("--out", required=True)

    def run_cli(args):
        seen.update(vars(args))
        return 0

    fake.add_cli_arguments, fake.run_cli = add_cli_arguments, run_cli
    monkeypatch.setitem(sys.modules, "neurodyn.data.synthetic.switching_glm", fake)
    assert main(["simulate", "switching-glm", "--n-states", "3", "--out", str(tmp_path / "g.h5")]) == 0
    assert seen["n_states"] == 3 and seen["simulator"] == "switching-glm"
    assert main(["simulate", "switching-glm", "--n-states", "x", "--out", "g.h5"]) == 2


def test_switching_glm_real_module_help(capsys):
    pytest.importorskip("neurodyn.data.synthetic.switching_glm")
    assert main(["simulate", "switching-glm", "--help"]) == 0
    assert "usage: neurodyn simulate switching-glm" in capsys.readouterr().out


# ------------------------------------------------------------------------------------------------- nlb
NLB_TINY = ["--n-train-trials", "12", "--n-test-trials", "4", "--n-heldin", "6", "--n-heldout", "3"]


def test_nlb_writes_the_pair_that_the_python_simulator_writes(tmp_path, capsys):
    """``simulate nlb`` writes the train + test pair of ``write_nlb_pair`` (same seed, same sizes): prepared
    at 20 ms, every tensor is equal; the printed line names both files and the prepare command."""
    import h5py

    from neurodyn.data.prepare import prepare
    from neurodyn.data.synthetic.nlb_nwb import pair_names, write_nlb_pair

    out = tmp_path / "sim"
    assert main(["simulate", "nlb", "--style", "area2_bump", "--seed", "5", *NLB_TINY, "--out", str(out)]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert sorted(p.name for p in out.iterdir()) == sorted(pair_names("area2_bump"))
    assert len(printed) == 1 and "6 held-in + 3 held-out units" in printed[0]
    assert printed[0].endswith(f"neurodyn prepare --dataset area2_bump --nwb {out} --bin-ms 20 --phase val "
                               "(writes data/area2_bump_20ms_val.h5, the file configs/langevinflow/area2_bump_cpu.yaml "
                               "reads)")
    write_nlb_pair(tmp_path / "py", "area2_bump", n_train_trials=12, n_test_trials=4, n_heldin=6, n_heldout=3,
                   seed=5)
    tensors = {}
    for source in ("sim", "py"):
        for phase in ("val", "test"):
            path = prepare("area2_bump", tmp_path / source, 20, phase, tmp_path / f"{source}_{phase}.h5", log=None)
            with h5py.File(path) as f:
                f.visit(lambda name, f=f, key=(source, phase): tensors.setdefault(key, {}).update(
                    {name: f[name][()]} if isinstance(f[name], h5py.Dataset) else {}))
    for phase in ("val", "test"):
        sim, py = tensors["sim", phase], tensors["py", phase]
        assert sim.keys() == py.keys() and "train_input/train_spikes_heldin" in sim
        for name in sim:
            if sim[name].dtype == object:  # ragged rows (eval_cond_idx)
                assert len(sim[name]) == len(py[name]), name
                for a, b in zip(sim[name], py[name]):
                    np.testing.assert_array_equal(a, b, err_msg=name)
            else:
                np.testing.assert_array_equal(sim[name], py[name], err_msg=name)


def test_nlb_style_sizes_and_refusals(tmp_path, capsys):
    """Default sizes are the imitated dataset's units; an existing file of the pair refuses the whole pair
    (nothing written, nothing changed); bad sizes are one line naming the option."""
    from neurodyn.data.synthetic.nlb_nwb import pair_names

    out = tmp_path / "sim"
    assert main(["simulate", "nlb", "--style", "dmfc_rsg", "--n-train-trials", "4", "--n-test-trials", "2",
                 "--out", str(out)]) == 0
    assert "40 held-in + 14 held-out units" in capsys.readouterr().out
    train, test = (out / name for name in pair_names("dmfc_rsg"))
    train.unlink()
    before = test.read_bytes()
    assert main(["simulate", "nlb", "--style", "dmfc_rsg", *NLB_TINY, "--out", str(out)]) == 2
    assert f"{test}: --out: exists; pass --overwrite" in capsys.readouterr().err
    assert sorted(out.iterdir()) == [test] and test.read_bytes() == before
    assert main(["simulate", "nlb", "--style", "dmfc_rsg", *NLB_TINY, "--out", str(out), "--overwrite"]) == 0
    assert sorted(out.iterdir()) == sorted([train, test])
    capsys.readouterr()
    for bad, words in ((["--n-heldout", "0"], "--n-heldout: must be at least 1, got 0"),
                       (["--n-train-trials", "1"], "--n-train-trials: must be at least 2, got 1"),
                       (["--style", "mc_mazz"], "--style: invalid choice: 'mc_mazz'")):
        assert main(["simulate", "nlb", "--style", "mc_maze", *NLB_TINY, *bad, "--out", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0], err
    assert not (tmp_path / "x").exists()
    # a folder holding another session's NWB file: prepare would refuse it, so simulate does at once
    other = tmp_path / "other"
    other.mkdir()
    (other / "sub-X_ses-1_desc-test_ecephys.nwb").write_bytes(b"")
    assert main(["simulate", "nlb", "--style", "mc_maze", *NLB_TINY, "--out", str(other)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"neurodyn simulate: error: {other}: --out: holds other NWB files (sub-X_ses-1_desc-test_ecephys"
                   ".nwb); neurodyn prepare reads a folder as one session: choose a folder of its own"]
    assert [p.name for p in other.iterdir()] == ["sub-X_ses-1_desc-test_ecephys.nwb"]


@pytest.mark.parametrize("style", ["mc_maze", "area2_bump", "dmfc_rsg", "mc_rtt"])
def test_nlb_test_files_are_on_the_millisecond_grid(tmp_path, style):
    """The simulated test files' trial times and obs_intervals ended inside a millisecond, so the last bin
    of some test trials was NaN (17 of 100 MC_Maze trials at 5 ms); the DANDI test files are on the grid."""
    import h5py

    from neurodyn.data.prepare import prepare
    from neurodyn.data.synthetic.nlb_nwb import STYLE_DATASET

    assert main(["simulate", "nlb", "--style", style, "--n-train-trials", "8", "--n-test-trials", "40",
                 "--n-heldin", "4", "--n-heldout", "2", "--out", str(tmp_path / "nwb")]) == 0
    path = prepare(STYLE_DATASET[style], tmp_path / "nwb", 5, "test", tmp_path / "p.h5", log=None)
    with h5py.File(path) as f:
        heldin = f["eval_input/eval_spikes_heldin"][()]
    assert heldin.shape[0] == 40 and not np.isnan(heldin).any()


@pytest.mark.parametrize("style", ["mc_maze", "area2_bump", "dmfc_rsg", "mc_rtt"])
def test_nlb_size_estimate_bounds_the_session(style):
    """The memory / disk check of ``simulate nlb`` sizes the 1 ms grid from ``TRIAL_S_MAX``: it must hold every
    session the layout draws (it was one 3.7 s bound for every style, 2.4 x MC_Maze's longest trial)."""
    from neurodyn.data.synthetic.nlb_latents import _simulate
    from neurodyn.data.synthetic.nlb_nwb import TRIAL_S_MAX

    for seed in range(3):
        for split in ("train", "test"):
            sim = _simulate(style, n_trials=300, n_heldin=2, n_heldout=1, seed=seed, split=split, n_conditions=4,
                            base_rate_hz=(6.0, 20.0), latent_dim=3)
            bound = 1000 * (TRIAL_S_MAX[style] * 300 + 1.7)
            assert 0.5 * bound < sim.n_ms <= bound, (seed, split, sim.n_ms, bound)


#: ``neurodyn`` with SIGTERM sent to itself just after the first of its output files was renamed into place
SIGNAL_AFTER_FIRST_RENAME = """import os, signal, sys

import neurodyn.io.output as output
from neurodyn.cli import main

replace, renamed = os.replace, []


def replace_then_signal(src, dst):
    replace(src, dst)
    renamed.append(dst)
    if len(renamed) == 1:
        os.kill(os.getpid(), signal.SIGTERM)


output.os.replace = replace_then_signal
sys.exit(main(sys.argv[1:]))
"""


def test_nlb_a_signal_between_the_two_renames_keeps_the_pair_whole(tmp_path):
    """A SIGTERM that landed between the renames of the pair's two files kept one of them (exit 143, 'nothing
    partial was kept'); with ``--overwrite`` over an earlier pair, a new file beside the old one of the other split.
    The signal now waits until both are renamed: the pair is whole (this seed's), then the command stops on it."""
    import subprocess

    from neurodyn.data.synthetic.nlb_nwb import pair_names

    script = tmp_path / "signal_after_rename.py"
    script.write_text(SIGNAL_AFTER_FIRST_RENAME)
    out = tmp_path / "sim"
    base = ["simulate", "nlb", "--style", "mc_maze", *NLB_TINY, "--out", str(out)]
    assert main([*base, "--seed", "0"]) == 0
    old = {name: (out / name).read_bytes() for name in pair_names("mc_maze")}
    done = subprocess.run([sys.executable, str(script), *base, "--seed", "5", "--overwrite"], capture_output=True,
                          text=True, timeout=300)
    assert (done.returncode, done.stderr.splitlines()) == (
        143, ["neurodyn simulate: interrupted (SIGTERM); nothing partial was kept"]), done.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == sorted(old)  # no temporary or lock file either
    assert all((out / name).read_bytes() != data for name, data in old.items())  # both are the new seed's


def test_nlb_same_seed_writes_the_same_bytes_and_prepares_to_the_same_sources(tmp_path, capsys):
    """Two runs of ``simulate nlb`` with one seed and the same settings write byte-identical NWB files (the
    creation date and hdmf's object ids were the clock's and uuid4's: every run hashed differently, so a file
    prepared from a rerun recorded other ``source_sha256`` and ``evaluate`` called the same data other data);
    another seed still gives other ids, and within a file the ids stay distinct."""
    import hashlib

    import h5py

    from neurodyn.data.prepare import prepare
    from neurodyn.data.synthetic.nlb_nwb import pair_names

    outs = {}
    for name, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        outs[name] = tmp_path / name
        assert main(["simulate", "nlb", "--style", "area2_bump", "--seed", seed, *NLB_TINY,
                     "--out", str(outs[name])]) == 0
    capsys.readouterr()

    def ids(path):
        found = []
        with h5py.File(path) as f:
            found.append(f.attrs["object_id"])
            f.visititems(lambda _, o: found.append(o.attrs["object_id"]) if "object_id" in o.attrs else None)
        return found

    for file in pair_names("area2_bump"):
        a, b, c = (outs[k] / file for k in "abc")
        assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest(), file
        assert len(set(ids(a))) == len(ids(a)) > 1
        assert not set(ids(a)) & set(ids(c))
    assert not set(ids(outs["a"] / pair_names("area2_bump")[0])) & set(ids(outs["a"] / pair_names("area2_bump")[1]))
    sources = []
    for name in "ab":
        path = prepare("area2_bump", outs[name], 20, "val", tmp_path / f"{name}.h5", log=None)
        with h5py.File(path) as f:
            sources.append(list(f.attrs["source_sha256"]))
    assert sources[0] == sources[1]


def test_nlb_files_of_settings_that_differ_past_eight_digits_get_other_object_ids(tmp_path):
    """The object ids are drawn from the settings' repr, which numpy rounds to 8 digits: two files whose extra
    spike times differed in the 10th digit shared their ids. Each number is now written as it is."""
    import h5py

    from neurodyn.data.synthetic.nlb_nwb import write_nlb_nwb

    roots = []
    for name, spike in (("a", 0.005), ("b", 0.0050000001)):
        path = write_nlb_nwb(tmp_path / f"{name}.nwb", "mc_maze", n_trials=4, n_heldin=2, n_heldout=1, seed=0,
                             extra_spikes={0: np.array([spike])})
        with h5py.File(path) as f:
            roots.append(f.attrs["object_id"])
    assert roots[0] != roots[1]
