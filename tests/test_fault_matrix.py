"""The fault matrix: every argparse command given bad input fails the same way.

One table, one test: each row is (command line, bad input) -> exit code 2 and one line on stderr,
``neurodyn <command>: error: ...`` containing the row's substring; the input files are unchanged
(sha256 before and after) and no file is left behind in the input folder or the working folder (no
output, no ``.part``, no ``.lock``). Commands run in-process through :func:`neurodyn.cli.main`; the
SIGTERM and concurrent-writer rows run real processes (:func:`test_sigterm_leaves_nothing`,
:func:`test_two_writers_one_output`). The LightningCLI commands (fit / validate / test / predict)
have their rows in ``tests/training/``.

Placeholders in the table: ``{src}`` is the shared folder of inputs built once per module (see
:func:`src`), ``{work}`` the case's own empty folder (the working directory while it runs).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from neurodyn.cli import main

pytestmark = pytest.mark.xdist_group("fault_matrix")

TRAIN_NWB = "sub-Synth_ses-mcmaze_desc-train_behavior+ecephys.nwb"
TEST_NWB = "sub-Synth_ses-mcmaze_desc-test_ecephys.nwb"


def _pred_groups(prep: Path, **change) -> dict:
    """Rates of the right shapes for ``prep`` (all 0.1), with ``change`` = {key: array} replacing some."""
    from neurodyn.metrics.submission import expected_shapes_from_prepared

    (name, shapes), = expected_shapes_from_prepared(prep).items()
    group = {key: np.full(shape, 0.1) for key, shape in shapes.items()}
    group.update(change)
    return {name: group}


def _write_raw_pred(path: Path, groups: dict) -> Path:
    """A prediction file as a user's code might write it (no validation), float64."""
    with h5py.File(path, "w") as f:
        for name, group in groups.items():
            for key, value in group.items():
                f[f"{name}/{key}"] = value
    return path


@pytest.fixture(scope="module")
def src(tmp_path_factory) -> Path:
    """Inputs shared by all rows: NWB pair, prepared files, predictions, and broken files of each kind."""
    from neurodyn.data.prepare import prepare
    from neurodyn.data.synthetic.nlb_nwb import write_nlb_pair
    from neurodyn.metrics.submission import write_submission

    d = tmp_path_factory.mktemp("fault_inputs")
    nwb = d / "nwb"
    write_nlb_pair(nwb, "mc_maze", n_train_trials=24, n_test_trials=8, seed=3, n_heldin=10, n_heldout=4)
    prep = prepare("mc_maze", nwb, 20, "val", d / "prep.h5", include_psth=False, log=None)
    prepare("mc_maze", nwb / TEST_NWB, 20, "test", d / "prep_test.h5", log=None)
    (d / "prep_copy.h5").write_bytes(prep.read_bytes())
    write_submission(d / "pred.h5", _pred_groups(prep))
    write_submission(d / "pred_valphase.h5", _pred_groups(prep), attrs={"phase": "val"})
    (name, val_group), = _pred_groups(prep).items()  # the test phase: as many units, other (8) evaluation trials
    test_group = {k: np.full((8, *v.shape[1:]), 0.1) if k.startswith("eval") else v for k, v in val_group.items()}
    write_submission(d / "pred_testphase.h5", {name: test_group}, attrs={"phase": "test"})
    (d / "pred_copy.h5").write_bytes((d / "pred.h5").read_bytes())
    name = next(iter(_pred_groups(prep)))
    shapes = {k: v.shape for k, v in _pred_groups(prep)[name].items()}
    n_train, n_bins, _ = shapes["train_rates_heldout"]
    _write_raw_pred(d / "pred_shape.h5", _pred_groups(prep, train_rates_heldout=np.ones((n_train, n_bins, 3)),
                                                      eval_rates_heldout=np.ones((shapes["eval_rates_heldout"][0],
                                                                                  n_bins, 3))))
    _write_raw_pred(d / "pred_negative.h5", _pred_groups(prep, eval_rates_heldin=-np.ones(shapes["eval_rates_heldin"])))
    _write_raw_pred(d / "pred_nan.h5", _pred_groups(prep, eval_rates_heldout=np.full(shapes["eval_rates_heldout"],
                                                                                      np.nan)))
    _write_raw_pred(d / "pred_2d.h5", _pred_groups(prep, eval_rates_heldin=np.ones((3, 4))))
    _write_raw_pred(d / "pred_badname.h5", {"mc_mazz_20": _pred_groups(prep)[name]})
    _write_raw_pred(d / "pred_other_group.h5", {"mc_maze_small_20": _pred_groups(prep)[name]})
    groups = _pred_groups(prep)
    del groups[name]["eval_rates_heldout"]
    _write_raw_pred(d / "pred_missing_key.h5", groups)
    for stem, source in (("nwb", nwb / TRAIN_NWB), ("prep", prep), ("pred", d / "pred.h5")):
        data = source.read_bytes()
        (d / f"trunc_{stem}.{source.suffix[1:]}").write_bytes(data[: len(data) // 3])
    huge = np.full(shapes["eval_rates_heldin"], 1e39)  # finite in float64, inf in float32
    _write_raw_pred(d / "pred_1e39.h5", _pred_groups(prep, eval_rates_heldin=huge))
    _write_raw_pred(d / "pred_extra_key.h5", _pred_groups(prep, bogus=np.ones(shapes["eval_rates_heldin"])))
    with h5py.File(d / "pred_empty.h5", "w"):
        pass  # an HDF5 file with no group at all
    prepare("mc_maze", nwb, 5, "val", d / "prep5.h5", include_psth=False, log=None)
    prepare("mc_maze", nwb, 20, "val", d / "prep_psth.h5", log=None)
    (d / "pred_ws_nan.h5").write_bytes((d / "pred.h5").read_bytes())  # a window start that is NaN
    with h5py.File(prep, "r") as f, h5py.File(d / "pred_ws_nan.h5", "r+") as out:
        for split in ("train", "eval"):
            starts = f[f"window_start_ms/{split}"][()].astype(np.float64)
            starts[0] = np.nan if split == "eval" else starts[0]
            out[f"window_start_ms/{name}/{split}"] = starts
    _broken_prepared(d, prep, d / "prep_psth.h5")
    _broken_nwb(d, nwb / TRAIN_NWB)
    (d / "notes.txt").write_text("not an HDF5 file\n")
    with h5py.File(d / "plain.h5", "w") as f:
        f["x"] = np.arange(3)
    (d / "folder.h5").mkdir()
    return d


def _edit_h5(source: Path, out: Path, edit) -> None:
    """``out``: a copy of ``source`` changed in place by ``edit(h5py.File)``."""
    out.write_bytes(source.read_bytes())
    with h5py.File(out, "r+") as f:
        edit(f)


def _replace(key: str, value) -> callable:
    def edit(f):
        del f[key]
        f[key] = value

    return edit


def _broken_prepared(d: Path, prep: Path, prep_psth: Path) -> None:
    """Prepared files whose target / inputs are damaged in one way each (the rows name the array)."""
    with h5py.File(prep, "r") as f:
        (target,) = f["eval_target"]
        spikes = f[f"eval_target/{target}/eval_spikes_heldout"][()]
        behavior = f[f"eval_target/{target}/eval_behavior"][()]
        heldin = f["eval_input/eval_spikes_heldin"][()]
        n_bins = heldin.shape[1]
    tgt = f"eval_target/{target}"
    _edit_h5(prep, d / "tgt_negative.h5", _replace(f"{tgt}/eval_spikes_heldout", -np.ones(spikes.shape)))
    _edit_h5(prep, d / "tgt_nan.h5", _replace(f"{tgt}/eval_spikes_heldout", np.full(spikes.shape, np.nan)))
    _edit_h5(prep, d / "tgt_str.h5", _replace(f"{tgt}/eval_spikes_heldout", np.full(spikes.shape, b"a")))
    _edit_h5(prep, d / "tgt_beh_nan.h5", _replace(f"{tgt}/eval_behavior", np.full(behavior.shape, np.nan)))
    _edit_h5(prep, d / "tgt_trials.h5", _replace(f"{tgt}/eval_spikes_heldout", spikes[:-2]))

    def psth_nan(f):
        psth = f[f"{tgt}/psth"][()]
        _replace(f"{tgt}/psth", np.full(psth.shape, np.nan))(f)

    _edit_h5(prep_psth, d / "tgt_psth_nan.h5", psth_nan)

    def jitter_text(f):
        if "eval_jitter" in f[tgt]:
            del f[f"{tgt}/eval_jitter"]
        f[f"{tgt}/eval_jitter"] = np.full(len(spikes), b"a")

    _edit_h5(prep_psth, d / "tgt_jitter_str.h5", jitter_text)

    def cond_idx_out_of_range(f):
        f[f"{tgt}/eval_cond_idx"][0] = np.array([0, 10_000])

    _edit_h5(prep_psth, d / "tgt_cond_idx.h5", cond_idx_out_of_range)
    _edit_h5(prep, d / "prep_2d.h5", _replace("eval_input/eval_spikes_heldin", heldin.reshape(len(heldin), -1)))
    _edit_h5(prep, d / "prep_str.h5", _replace("eval_input/eval_spikes_heldin", np.full(heldin.shape, b"x")))
    _edit_h5(prep, d / "prep_bins.h5", _replace("eval_input/eval_spikes_heldin", heldin[:, : n_bins - 5]))

    def unknown_dataset(f):
        f.attrs["dataset"] = "foo"

    _edit_h5(prep, d / "prep_foo.h5", unknown_dataset)

    def no_train_trials(f):
        keys = [f"train_input/{key}" for key in f["train_input"]]
        keys += [f"{tgt}/{key}" for key in f[tgt] if key.startswith("train_")]
        keys += ["window_start_ms/train"] if "window_start_ms" in f else []  # one per train row, as the rest
        keys += ["trial_source/train"] if "trial_source" in f else []
        for key in keys:
            _replace(key, f[key][()][:0])(f)
        f.attrs["n_train_trials"] = 0

    _edit_h5(prep, d / "prep_no_train.h5", no_train_trials)

    def one_count(value):  # one training count made impossible (helper-58: inf / negative were trained on)
        def edit(f):
            counts = f["train_input/train_spikes_heldin"][()].astype(np.float32)
            counts[1, 2, 3] = value
            _replace("train_input/train_spikes_heldin", counts)(f)

        return edit

    for name, value in (("inf", np.inf), ("neg", -3.0), ("frac", 0.5)):
        _edit_h5(prep, d / f"prep_count_{name}.h5", one_count(value))

    for kind in ("heldin", "heldout"):  # every training count 0 (badin: fitted to rates of 0, log(0) warnings, exit 0)
        key = f"train_input/train_spikes_{kind}"
        with h5py.File(prep, "r") as f:
            zeros = np.zeros_like(f[key][()])
        _edit_h5(prep, d / f"prep_silent_{kind}.h5", _replace(key, zeros))

    def bin_width_7(f):
        f.attrs["bin_ms"] = 7

    _edit_h5(prep, d / "prep_bin7.h5", bin_width_7)


def _broken_nwb(d: Path, nwb: Path) -> None:
    """NWB files whose units/spike_times are damaged: string dtype, 2-D, an index past the end."""
    with h5py.File(nwb, "r") as f:
        times = f["units/spike_times"][()]
        index = f["units/spike_times_index"][()]

    def keep_attrs(key, value):
        def edit(f):
            attrs = dict(f[key].attrs)
            _replace(key, value)(f)
            f[key].attrs.update(attrs)

        return edit

    _edit_h5(nwb, d / "nwb_str_spikes.nwb", keep_attrs("units/spike_times", np.full(times.shape, b"s")))
    _edit_h5(nwb, d / "nwb_2d_spikes.nwb", keep_attrs("units/spike_times", np.stack([times, times], 1)))

    def index_past_end(f):
        f["units/spike_times_index"][-1] = index[-1] + 1000

    _edit_h5(nwb, d / "nwb_badindex.nwb", index_past_end)


def _same_file_other_path(work: Path, src: Path) -> None:
    (work / "sub").mkdir()
    os.symlink(src / "pred.h5", work / "sub" / "link.h5")


# (id, argv, expected substring of the one line, setup of the work folder or None)
def _afile(work: Path) -> None:
    (work / "afile").write_text("a regular file where a folder is expected\n")


def _fifo(work: Path) -> None:
    """``a.fifo`` and a folder ``fifos`` holding ``x.nwb``, both FIFOs: opening one waits for a writer (prepare and
    submit hung until killed)."""
    os.mkfifo(work / "a.fifo")
    (work / "fifos").mkdir()
    os.mkfifo(work / "fifos" / "x.nwb")


def _existing(name: str):
    def setup(work: Path) -> None:
        (work / name).write_bytes(b"an earlier result\n")

    return setup


def _symlink(target: str, name: str):
    def setup(work: Path, src: Path) -> None:
        (work / name).symlink_to(src / target)

    return setup


def _hardlink(target: str, name: str):
    def setup(work: Path, src: Path) -> None:
        os.link(src / target, work / name)

    return setup


def _foreign_cache(work: Path) -> None:
    (work / "demo").mkdir()
    with h5py.File(work / "demo" / "lorenz.h5", "w") as f:  # a user's file, not the demo's cache
        f["train_data"] = np.zeros((4, 5, 3))


def _demo_done(work: Path) -> None:
    (work / "demo").mkdir()
    (work / "demo" / "lorenz_rates.png").write_bytes(b"png of an earlier run\n")


PREP = ["prepare", "--dataset", "mc_maze", "--bin-ms", "20", "--quiet"]
LORENZ = ["simulate", "lorenz", "--no-progress", "--n-conditions", "2", "--trials-per-condition", "2",
          "--n-samples", "100"]
GLM = ["simulate", "switching-glm", "--no-progress", "--n-sequences", "2", "--n-bins", "20"]

CASES = [
    # ---------------------------------------------------------------- prepare
    ("prepare-missing-nwb", PREP + ["--nwb", "{src}/absent.nwb", "--out", "out.h5"], "no such file", None),
    ("prepare-text-nwb", PREP + ["--nwb", "{src}/notes.txt", "--out", "out.h5"], "not an HDF5 file", None),
    ("prepare-truncated-nwb", PREP + ["--nwb", "{src}/trunc_nwb.nwb", "--out", "out.h5"], "truncated or damaged",
     None),
    ("prepare-plain-h5", PREP + ["--nwb", "{src}/plain.h5", "--out", "out.h5"], "plain.h5: ", None),
    ("prepare-prepared-as-nwb", PREP + ["--nwb", "{src}/prep.h5", "--out", "out.h5"], "prep.h5: ", None),
    ("prepare-out-under-file", PREP + ["--nwb", "{src}/nwb", "--out", "afile/out.h5"],
     "afile is a file, not a folder", _afile),
    ("prepare-out-is-input", PREP + ["--nwb", "{src}/nwb", "--out", "{src}/nwb/" + TRAIN_NWB, "--overwrite"],
     "is an input file", None),
    ("prepare-out-symlink-to-input", PREP + ["--nwb", "{src}/nwb", "--out", "link.nwb", "--overwrite"],
     "is an input file", _symlink("nwb/" + TRAIN_NWB, "link.nwb")),
    ("prepare-out-hardlink-to-input", PREP + ["--nwb", "{src}/nwb", "--out", "hard.nwb", "--overwrite"],
     "is an input file", _hardlink("nwb/" + TRAIN_NWB, "hard.nwb")),
    ("prepare-out-exists", PREP + ["--nwb", "{src}/nwb", "--out", "old.h5"], "exists; pass --overwrite",
     _existing("old.h5")),
    ("prepare-out-folder", PREP + ["--nwb", "{src}/nwb", "--out", "{src}/folder.h5"], "is a folder", None),
    ("prepare-out-unwritable", PREP + ["--nwb", "{src}/nwb", "--out", "/proc/neurodyn-fault/out.h5"],
     "cannot create folder", None),
    ("prepare-bad-bin", ["prepare", "--dataset", "mc_maze", "--bin-ms", "7", "--nwb", "{src}/nwb", "--out", "o.h5"],
     "--bin-ms: invalid choice: 7", None),
    ("prepare-bad-dataset", ["prepare", "--dataset", "mc_mazz", "--nwb", "{src}/nwb", "--out", "o.h5"],
     "valid names", None),
    ("prepare-no-nwb-arg", ["prepare", "--dataset", "mc_maze"], "--nwb", None),
    ("prepare-bad-phase", PREP + ["--nwb", "{src}/nwb", "--phase", "train"], "invalid choice", None),
    ("prepare-test-file-for-val", PREP + ["--nwb", "{src}/nwb/" + TEST_NWB, "--out", "o.h5"], "trials/split", None),
    ("prepare-str-spike-times", PREP + ["--nwb", "{src}/nwb_str_spikes.nwb", "--out", "o.h5"],
     "nwb_str_spikes.nwb: units/spike_times: expected spike times in seconds (numbers)", None),
    ("prepare-2d-spike-times", PREP + ["--nwb", "{src}/nwb_2d_spikes.nwb", "--out", "o.h5"],
     "nwb_2d_spikes.nwb: units/spike_times: expected a 1-D array", None),
    ("prepare-index-past-end", PREP + ["--nwb", "{src}/nwb_badindex.nwb", "--out", "o.h5"],
     "nwb_badindex.nwb: units/spike_times_index: runs past the end", None),
    ("prepare-other-dataset-jitter", ["prepare", "--dataset", "dmfc_rsg", "--nwb", "{src}/nwb", "--out", "o.h5"],
     "trials/tp: missing trial column (needed for the dmfc_rsg jitter; a file of another dataset?)", None),
    ("prepare-huge-seed", PREP + ["--nwb", "{src}/nwb", "--out", "o.h5", "--seed", "99999999999999999999"],
     "invalid seed", None),
    ("prepare-negative-seed", PREP + ["--nwb", "{src}/nwb", "--out", "o.h5", "--seed", "-1"], "invalid seed", None),
    # a FIFO as input: every reader refuses it in the same line (prepare and submit waited for a writer forever)
    ("prepare-nwb-fifo", PREP + ["--nwb", "a.fifo", "--out", "o.h5"], "a.fifo: not a regular file", _fifo),
    ("prepare-nwb-folder-with-fifo", PREP + ["--nwb", "fifos", "--out", "o.h5"], "x.nwb: not a regular file", _fifo),
    ("submit-pred-fifo", ["submit", "--pred", "a.fifo", "--out", "s.h5"], "a.fifo: not a regular file", _fifo),
    ("submit-prepared-fifo", ["submit", "--pred", "{src}/pred.h5", "--prepared", "a.fifo", "--out", "s.h5"],
     "a.fifo: not a regular file", _fifo),
    ("baseline-prepared-fifo", ["baseline", "--prepared", "a.fifo", "--out", "p.h5"], "a.fifo: not a regular file",
     _fifo),
    ("ensemble-pred-fifo", ["ensemble", "--pred", "{src}/pred.h5", "a.fifo", "--out", "e.h5"],
     "a.fifo: not a regular file", _fifo),
    ("evaluate-target-fifo", ["evaluate", "--pred", "{src}/pred.h5", "--target", "a.fifo"],
     "a.fifo: not a regular file", _fifo),
    ("plot-fifo", ["plot", "a.fifo", "--out", "p.png"], "a.fifo: not a regular file", _fifo),
    ("info-fifo", ["info", "a.fifo"], "a.fifo: not a regular file", _fifo),
    # ---------------------------------------------------------------- simulate
    ("simulate-negative-seed", LORENZ + ["--out", "o.h5", "--seed", "-1"], "invalid seed -1", None),
    ("simulate-huge-seed", LORENZ + ["--out", "o.h5", "--seed", "99999999999999999999"], "invalid seed", None),
    ("simulate-glm-huge-seed", GLM + ["--out", "o.h5", "--seed", str(2**63)], "invalid seed", None),
    ("simulate-glm-absurd-states", GLM + ["--out", "o.h5", "--n-states", "100000"], "of memory", None),
    ("simulate-out-under-file", LORENZ + ["--out", "afile/out.h5"], "afile is a file, not a folder", _afile),
    ("simulate-out-exists", LORENZ + ["--out", "old.h5"], "exists; pass --overwrite", _existing("old.h5")),
    ("simulate-out-folder", LORENZ + ["--out", "{src}/folder.h5"], "is a folder", None),
    ("simulate-out-unwritable", LORENZ + ["--out", "/proc/neurodyn-fault/out.h5"], "cannot create folder", None),
    ("simulate-absurd-lorenz", ["simulate", "lorenz", "--out", "big.h5", "--n-conditions", "1000000",
                                "--n-samples", "100000"], "of memory", None),
    ("simulate-absurd-glm", ["simulate", "switching-glm", "--out", "big.h5", "--n-sequences", "100000000",
                             "--n-bins", "100000"], "of memory", None),
    ("simulate-zero-samples", LORENZ + ["--out", "o.h5", "--n-samples", "0"], "--n-samples: must be a positive", None),
    ("simulate-samples-not-multiple", LORENZ + ["--out", "o.h5", "--n-samples", "110"],
     "--n-samples: n_samples=110 is not a multiple", None),
    ("simulate-glm-zero-states", GLM + ["--out", "o.h5", "--n-states", "0"], "positive integer", None),
    ("simulate-bad-int", ["simulate", "lorenz", "--out", "o.h5", "--n-conditions", "many"], "invalid int", None),
    ("simulate-no-simulator", ["simulate"], "required", None),
    # ---------------------------------------------------------------- baseline
    ("baseline-out-is-prepared", ["baseline", "--prepared", "{src}/prep.h5", "--out", "{src}/prep.h5"],
     "is an input file", None),
    ("baseline-out-hardlink", ["baseline", "--prepared", "{src}/prep.h5", "--out", "h.h5", "--overwrite"],
     "is an input file", _hardlink("prep.h5", "h.h5")),
    ("baseline-out-exists", ["baseline", "--prepared", "{src}/prep.h5", "--out", "old.h5"],
     "exists; pass --overwrite", _existing("old.h5")),
    ("baseline-out-under-file", ["baseline", "--prepared", "{src}/prep.h5", "--out", "afile/p.h5"],
     "afile is a file, not a folder", _afile),
    ("baseline-missing", ["baseline", "--prepared", "{src}/absent.h5", "--out", "p.h5"], "no such file", None),
    ("baseline-text", ["baseline", "--prepared", "{src}/notes.txt", "--out", "p.h5"], "not an HDF5 file", None),
    ("baseline-truncated", ["baseline", "--prepared", "{src}/trunc_prep.h5", "--out", "p.h5"],
     "truncated or damaged", None),
    ("baseline-pred-as-prepared", ["baseline", "--prepared", "{src}/pred.h5", "--out", "p.h5"],
     "not a prepared file", None),
    ("baseline-test-phase", ["baseline", "--prepared", "{src}/prep_test.h5", "--out", "p.h5"], "train_input", None),
    ("baseline-bad-option", ["baseline", "--prepared", "{src}/prep.h5", "--out", "p.h5", "--heldin", "x"],
     "invalid choice", None),
    ("baseline-2d-spikes", ["baseline", "--prepared", "{src}/prep_2d.h5", "--out", "p.h5"],
     "prep_2d.h5: eval_input/eval_spikes_heldin: expected a 3-D array", None),
    ("baseline-str-spikes", ["baseline", "--prepared", "{src}/prep_str.h5", "--out", "p.h5"],
     "prep_str.h5: eval_input/eval_spikes_heldin: expected numbers", None),
    ("baseline-no-train-trials", ["baseline", "--prepared", "{src}/prep_no_train.h5", "--out", "p.h5"],
     "prep_no_train.h5: train_input/train_spikes_heldin: no train trials", None),
    ("baseline-inconsistent-bins", ["baseline", "--prepared", "{src}/prep_bins.h5", "--out", "p.h5"],
     "prep_bins.h5: eval_input/eval_spikes_heldin: shape", None),
    ("baseline-unknown-dataset", ["baseline", "--prepared", "{src}/prep_foo.h5", "--out", "p.h5"],
     "prep_foo.h5: dataset: unknown dataset 'foo'", None),
    # helper-58: inf / negative counts were an sklearn traceback here (and trained on by fit); a width other than
    # NLB's (prepare() from Python writes any width that divides the windows) failed after every GLM was fit,
    # naming no file
    ("baseline-inf-count", ["baseline", "--prepared", "{src}/prep_count_inf.h5", "--out", "p.h5"],
     "prep_count_inf.h5: train_input/train_spikes_heldin: expected spike counts (whole numbers >= 0, NaN where "
     "unobserved), found inf at index (1, 2, 3)", None),
    ("baseline-negative-count", ["baseline", "--prepared", "{src}/prep_count_neg.h5", "--out", "p.h5"],
     "prep_count_neg.h5: train_input/train_spikes_heldin: expected spike counts", None),
    ("baseline-fractional-count", ["baseline", "--prepared", "{src}/prep_count_frac.h5", "--out", "p.h5"],
     "found 0.5 at index (1, 2, 3)", None),
    ("baseline-no-heldin-spikes", ["baseline", "--prepared", "{src}/prep_silent_heldin.h5", "--out", "p.h5"],
     "prep_silent_heldin.h5: train_input/train_spikes_heldin: the 18 train trials hold no held-in spikes (every count "
     "is 0): there is nothing to fit the GLMs to", None),
    ("baseline-no-heldout-spikes", ["baseline", "--prepared", "{src}/prep_silent_heldout.h5", "--out", "p.h5"],
     "prep_silent_heldout.h5: train_input/train_spikes_heldout: the 18 train trials hold no held-out spikes", None),
    ("baseline-bin-width-7", ["baseline", "--prepared", "{src}/prep_bin7.h5", "--out", "p.h5"],
     "prep_bin7.h5: bin_ms: must be an NLB bin width (5 or 20 ms), got 7", None),
    # ---------------------------------------------------------------- submit
    ("submit-overflows-float32", ["submit", "--pred", "{src}/pred_1e39.h5", "--prepared", "{src}/prep.h5", "--out",
                                  "s.h5"], "pred_1e39.h5: mc_maze_20/eval_rates_heldin: rate predictions too large",
     None),
    ("submit-out-is-pred", ["submit", "--pred", "{src}/pred.h5", "--prepared", "{src}/prep.h5", "--out",
                            "{src}/pred.h5", "--overwrite"], "is an input file", None),
    ("submit-out-is-prepared", ["submit", "--pred", "{src}/pred.h5", "--prepared", "{src}/prep.h5", "--out",
                                "{src}/prep.h5"], "is an input file", None),
    ("submit-out-symlink-pred", ["submit", "--pred", "{src}/pred.h5", "--out", "s.h5", "--overwrite"],
     "is an input file", _symlink("pred.h5", "s.h5")),
    ("submit-without-prepared", ["submit", "--pred", "{src}/pred.h5", "--out", "s.h5"], "pass --prepared", None),
    ("submit-prepared-as-pred", ["submit", "--pred", "{src}/prep.h5", "--prepared", "{src}/prep.h5", "--out",
                                 "s.h5"], "not a prediction file", None),
    ("submit-truncated-pred", ["submit", "--pred", "{src}/trunc_pred.h5", "--out", "s.h5"], "truncated or damaged",
     None),
    ("submit-wrong-units", ["submit", "--pred", "{src}/pred_shape.h5", "--prepared", "{src}/prep.h5", "--out",
                            "s.h5"], "expected shape", None),
    ("submit-negative-rates", ["submit", "--pred", "{src}/pred_negative.h5", "--prepared", "{src}/prep.h5",
                               "--out", "s.h5"], "eval_rates_heldin", None),
    ("submit-nan-rates", ["submit", "--pred", "{src}/pred_nan.h5", "--prepared", "{src}/prep.h5", "--out", "s.h5"],
     "eval_rates_heldout", None),
    ("submit-2d-rates", ["submit", "--pred", "{src}/pred_2d.h5", "--out", "s.h5"], "3-D", None),
    ("submit-bad-group", ["submit", "--pred", "{src}/pred_badname.h5", "--out", "s.h5"], "mc_mazz_20", None),
    ("submit-missing-key", ["submit", "--pred", "{src}/pred_missing_key.h5", "--out", "s.h5"],
     "missing key 'eval_rates_heldout'", None),
    ("submit-out-under-file", ["submit", "--pred", "{src}/pred.h5", "--prepared", "{src}/prep.h5", "--out",
                               "afile/s.h5"], "afile is a file, not a folder", _afile),
    ("submit-missing-pred", ["submit", "--pred", "{src}/absent.h5", "--out", "s.h5"], "no such file", None),
    # ---------------------------------------------------------------- ensemble
    ("ensemble-two-phases", ["ensemble", "--pred", "{src}/pred_valphase.h5", "{src}/pred_testphase.h5", "--out",
                             "e.h5"], "pred_testphase.h5: phase: is a test-phase prediction, ", None),
    ("ensemble-one-file", ["ensemble", "--pred", "{src}/pred.h5", "--out", "e.h5"], "at least two", None),
    ("ensemble-out-is-pred", ["ensemble", "--pred", "{src}/pred.h5", "{src}/pred_copy.h5", "--out",
                              "{src}/pred.h5", "--overwrite"], "is an input file", None),
    ("ensemble-wrong-units", ["ensemble", "--pred", "{src}/pred.h5", "{src}/pred_shape.h5", "--out", "e.h5"],
     "pred_shape.h5: ", None),
    ("ensemble-other-group", ["ensemble", "--pred", "{src}/pred.h5", "{src}/pred_other_group.h5", "--out",
                              "e.h5"], "group not in every prediction file", None),
    ("ensemble-nan-rates", ["ensemble", "--pred", "{src}/pred.h5", "{src}/pred_nan.h5", "--out", "e.h5"],
     "pred_nan.h5: mc_maze_20/eval_rates_heldout: NaN rate", None),
    ("ensemble-prepared-as-pred", ["ensemble", "--pred", "{src}/pred.h5", "{src}/prep.h5", "--out", "e.h5"],
     "not a prediction file", None),
    ("ensemble-out-exists", ["ensemble", "--pred", "{src}/pred.h5", "{src}/pred_copy.h5", "--out", "old.h5"],
     "exists; pass --overwrite", _existing("old.h5")),
    ("ensemble-overflows-float32", ["ensemble", "--pred", "{src}/pred.h5", "{src}/pred_1e39.h5", "--out", "e.h5"],
     "pred_1e39.h5: mc_maze_20/eval_rates_heldin: rate predictions too large", None),
    ("ensemble-same-file-twice", ["ensemble", "--pred", "{src}/pred.h5", "{src}/pred.h5", "--out", "e.h5"],
     "is the same file as", None),
    ("ensemble-same-file-via-link", ["ensemble", "--pred", "{src}/pred.h5", "sub/link.h5", "--out", "e.h5"],
     "link.h5: --pred: is the same file as", _same_file_other_path),
    ("ensemble-same-file-other-path", ["ensemble", "--pred", "{src}/pred.h5", "{src}/../"
                                       "{src_name}/pred.h5", "--out", "e.h5"], "is the same file as", None),
    # ---------------------------------------------------------------- evaluate
    ("evaluate-other-phase", ["evaluate", "--target", "{src}/prep.h5", "--pred", "{src}/pred_testphase.h5"],
     "pred_testphase.h5: phase: is a test-phase prediction and ", None),
    ("evaluate-no-groups", ["evaluate", "--target", "{src}/prep.h5", "--pred", "{src}/pred_empty.h5"],
     "pred_empty.h5: submission holds no dataset group", None),
    ("evaluate-unknown-key", ["evaluate", "--target", "{src}/prep.h5", "--pred", "{src}/pred_extra_key.h5"],
     "pred_extra_key.h5: mc_maze_20/bogus: unknown key 'bogus'", None),
    ("evaluate-upsample-nothing-scored", ["evaluate", "--target", "{src}/prep5.h5", "--pred", "{src}/pred.h5",
                                          "--upsample", "20"], "nothing to score", None),
    ("evaluate-20ms-pred-5ms-target", ["evaluate", "--target", "{src}/prep5.h5", "--pred", "{src}/pred.h5"],
     "pred.h5: mc_maze_20: no target for 'mc_maze_20' (target groups: mc_maze); mc_maze_20 holds 20 ms bins: "
     "--upsample 5 makes its 5 ms group", None),
    # helper-58: a NaN window start was a ValueError raised inside the f-string of the error message
    ("evaluate-upsample-nan-window-start", ["evaluate", "--target", "{src}/prep5.h5", "--pred", "{src}/pred_ws_nan.h5",
                                            "--upsample", "5"],
     "pred_ws_nan.h5: window_start_ms/mc_maze_20/eval: expected whole numbers of ms, found nan at row 0", None),
    ("submit-upsample-nan-window-start", ["submit", "--pred", "{src}/pred_ws_nan.h5", "--prepared", "{src}/prep.h5",
                                          "{src}/prep5.h5", "--upsample", "5", "--out", "{work}/s.h5"],
     "pred_ws_nan.h5: window_start_ms/mc_maze_20/eval: expected whole numbers of ms", None),
    ("evaluate-upsample-not-nlb", ["evaluate", "--target", "{src}/prep5.h5", "--pred", "{src}/pred.h5",
                                   "--upsample", "1"], "--upsample: must be an NLB bin width", None),
    ("evaluate-target-jitter-str", ["evaluate", "--target", "{src}/tgt_jitter_str.h5", "--pred", "{src}/pred.h5"],
     "tgt_jitter_str.h5: eval_target/mc_maze_20/eval_jitter: expected numbers", None),
    ("submit-20ms-pred-5ms-prepared", ["submit", "--pred", "{src}/pred.h5", "--prepared", "{src}/prep5.h5", "--out",
                                       "s.h5"], "missing dataset group 'mc_maze' (present: mc_maze_20); mc_maze_20 "
     "holds 20 ms bins: --upsample 5 makes its 5 ms group", None),
    ("submit-prepared-group-twice", ["submit", "--pred", "{src}/pred.h5", "--prepared", "{src}/prep.h5",
                                     "{src}/prep_copy.h5", "--out", "s.h5"],
     "prep_copy.h5: --prepared: group 'mc_maze_20' is also in --prepared", None),
    ("submit-prepared-without-files", ["submit", "--pred", "{src}/pred.h5", "--prepared", "--out", "s.h5"],
     "--prepared: expected at least one argument", None),
    ("submit-upsample-not-nlb", ["submit", "--pred", "{src}/pred.h5", "--upsample", "10", "--out", "{work}/s.h5"],
     "--upsample: must be an NLB bin width", None),
    # helper-58: 0 was a ZeroDivisionError traceback (a modulo before the width check), -5 printed a note about
    # a "-5 ms" group first; both are refused by the option's type now, before any file is read
    ("evaluate-upsample-zero", ["evaluate", "--target", "{src}/prep5.h5", "--pred", "{src}/pred.h5",
                                "--upsample", "0"], "--upsample: must be an NLB bin width (5 or 20 ms), got 0", None),
    ("submit-upsample-zero", ["submit", "--pred", "{src}/pred.h5", "--upsample", "0", "--out", "{work}/s.h5"],
     "--upsample: must be an NLB bin width (5 or 20 ms), got 0", None),
    ("submit-upsample-negative", ["submit", "--pred", "{src}/pred.h5", "--upsample", "-5", "--out", "{work}/s.h5"],
     "--upsample: must be an NLB bin width (5 or 20 ms), got -5", None),
    ("evaluate-target-negative", ["evaluate", "--target", "{src}/tgt_negative.h5", "--pred", "{src}/pred.h5"],
     "tgt_negative.h5: eval_target/mc_maze_20/eval_spikes_heldout: expected spike counts", None),
    ("evaluate-target-nan", ["evaluate", "--target", "{src}/tgt_nan.h5", "--pred", "{src}/pred.h5"],
     "tgt_nan.h5: mc_maze_20/eval_spikes_heldout: no spikes", None),
    ("evaluate-target-str", ["evaluate", "--target", "{src}/tgt_str.h5", "--pred", "{src}/pred.h5"],
     "tgt_str.h5: eval_target/mc_maze_20/eval_spikes_heldout: expected numbers", None),
    ("evaluate-target-behaviour-nan", ["evaluate", "--target", "{src}/tgt_beh_nan.h5", "--pred", "{src}/pred.h5"],
     "tgt_beh_nan.h5: mc_maze_20/eval_behavior: no evaluation rows with behaviour", None),
    ("evaluate-target-trials", ["evaluate", "--target", "{src}/tgt_trials.h5", "--pred", "{src}/pred.h5"],
     "tgt_trials.h5: eval_target/mc_maze_20/eval_spikes_heldout: shape", None),
    ("evaluate-target-psth-nan", ["evaluate", "--target", "{src}/tgt_psth_nan.h5", "--pred", "{src}/pred.h5"],
     "tgt_psth_nan.h5: mc_maze_20/psth: no bin with a defined PSTH", None),
    ("evaluate-target-cond-idx", ["evaluate", "--target", "{src}/tgt_cond_idx.h5", "--pred", "{src}/pred.h5"],
     "tgt_cond_idx.h5: mc_maze_20/eval_cond_idx: trial index out of range", None),
    ("evaluate-target-as-pred", ["evaluate", "--target", "{src}/prep.h5", "--pred", "{src}/prep.h5"],
     "both --target and --pred", None),
    ("evaluate-prepared-copy-as-pred", ["evaluate", "--target", "{src}/prep.h5", "--pred", "{src}/prep_copy.h5"],
     "not a prediction file", None),
    ("evaluate-pred-as-target", ["evaluate", "--target", "{src}/pred.h5", "--pred", "{src}/pred_copy.h5"],
     "--target: is a prediction file (rates), not an evaluation target", None),
    ("evaluate-test-phase-target", ["evaluate", "--target", "{src}/prep_test.h5", "--pred", "{src}/pred.h5"],
     "eval_target", None),
    ("evaluate-wrong-units", ["evaluate", "--target", "{src}/prep.h5", "--pred", "{src}/pred_shape.h5"],
     "pred_shape.h5: ", None),
    ("evaluate-truncated-target", ["evaluate", "--target", "{src}/trunc_prep.h5", "--pred", "{src}/pred.h5"],
     "truncated or damaged", None),
    ("evaluate-text-pred", ["evaluate", "--target", "{src}/prep.h5", "--pred", "{src}/notes.txt"],
     "not an HDF5 file", None),
    ("evaluate-folder-pred", ["evaluate", "--target", "{src}/prep.h5", "--pred", "{src}/folder.h5"],
     "is a folder", None),
    # ---------------------------------------------------------------- plot
    ("plot-out-is-input", ["plot", "{src}/pred.h5", "--out", "{src}/pred.h5", "--overwrite"], "is an input file",
     None),
    ("plot-out-exists", ["plot", "{src}/pred.h5", "--out", "old.png"], "exists; pass --overwrite",
     _existing("old.png")),
    ("plot-out-under-file", ["plot", "{src}/pred.h5", "--out", "afile/p.png"], "afile is a file, not a folder",
     _afile),
    ("plot-text", ["plot", "{src}/notes.txt", "--out", "p.png"], "not an HDF5 file", None),
    ("plot-prepared", ["plot", "{src}/prep.h5", "--out", "p.png"], "is a prepared data file", None),
    ("plot-truncated", ["plot", "{src}/trunc_pred.h5", "--out", "p.png"], "truncated or damaged", None),
    # ---------------------------------------------------------------- demo (refused before any training)
    ("demo-zero-epochs", ["demo", "--out", "demo", "--epochs", "0"], "--epochs", None),
    ("demo-out-is-file", ["demo", "--out", "afile"], "is a file, expected a folder", _afile),
    ("demo-earlier-results", ["demo", "--out", "demo", "--epochs", "1"], "exists; pass --overwrite", _demo_done),
    ("demo-foreign-cache", ["demo", "--out", "demo", "--epochs", "1"], "is not a data cache written by neurodyn demo",
     _foreign_cache),
    ("demo-negative-seed", ["demo", "--out", "demo", "--seed", "-1"], "invalid seed", None),
    # ---------------------------------------------------------------- info and the dispatcher
    ("info-truncated", ["info", "{src}/trunc_prep.h5"], "truncated or damaged", None),
    ("info-text", ["info", "{src}/notes.txt"], "not an HDF5 file", None),
    ("unknown-command", ["prepair", "--nwb", "{src}/nwb"], "unknown command 'prepair'", None),
]


def _tree(folder: Path) -> dict[str, str]:
    """Every entry under ``folder`` (hidden ones too) -> sha256 of a file ('' for folders and links)."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(root, name)
            rel = str(path.relative_to(folder))
            # a FIFO (its rows) is not read: that would wait for a writer
            out[rel] = ("" if path.is_symlink() or not path.is_file() else
                        hashlib.sha256(path.read_bytes()).hexdigest())
    return out


def test_table_size():
    assert len(CASES) >= 40 and len({c[0] for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case, argv, expected, setup", CASES, ids=[c[0] for c in CASES])
def test_fault(case, argv, expected, setup, src, tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    work.mkdir()
    if setup is not None:
        setup(work, src) if setup.__code__.co_argcount == 2 else setup(work)
    monkeypatch.chdir(work)
    monkeypatch.delenv("NEURODYN_DEBUG", raising=False)
    before_src, before_work = _tree(src), _tree(work)
    capsys.readouterr()
    rc = main([arg.format(src=src, work=work, src_name=src.name) for arg in argv])
    err = capsys.readouterr().err
    lines = err.splitlines()
    command = argv[0] if argv[0] != "prepair" else ""
    assert rc == 2, (case, err)
    assert len(lines) == 1, (case, err)
    assert lines[0].startswith(f"neurodyn {command}: error: " if command else "neurodyn: error: "), lines[0]
    assert expected in lines[0], (case, lines[0])
    assert _tree(src) == before_src  # inputs unchanged, nothing added next to them
    assert _tree(work) == before_work  # no output, no .part, no .lock left


def test_debug_shows_the_traceback(src, tmp_path, monkeypatch, capsys):
    """``--debug`` (before or after the command) and NEURODYN_DEBUG=1 print the traceback of the InputError
    too, and keep the exit code (2) and the one-line message as its last line."""
    monkeypatch.chdir(tmp_path)
    argv = ["baseline", "--prepared", str(src / "absent.h5"), "--out", "p.h5"]
    for variant in (["--debug", *argv], [*argv, "--debug"]):
        capsys.readouterr()
        assert main(variant) == 2
        err = capsys.readouterr().err
        assert "Traceback (most recent call last)" in err and "InputError" in err, err
        assert err.splitlines()[-1].startswith("neurodyn baseline: error: ") and "no such file" in err
    monkeypatch.setenv("NEURODYN_DEBUG", "1")
    assert main(argv) == 2
    assert "Traceback (most recent call last)" in capsys.readouterr().err
    monkeypatch.delenv("NEURODYN_DEBUG")
    assert main(argv) == 2
    assert len(capsys.readouterr().err.splitlines()) == 1
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("error, code", [("command_failed", 7), ("interrupted", 143)])
def test_debug_keeps_the_exit_code(error, code, monkeypatch, capsys):
    """``--debug`` shows the traceback of a CommandFailed or an interrupt but keeps its exit code."""
    import neurodyn.commands.evaluate as evaluate_command
    from neurodyn.errors import CommandFailed
    from neurodyn.io import Interrupted

    def fail(_argv):
        if error == "command_failed":
            raise CommandFailed("could not finish", exit_code=7)
        raise Interrupted(signal.SIGTERM)

    monkeypatch.setattr(evaluate_command, "cli_main", fail)
    for argv in (["evaluate"], ["--debug", "evaluate"]):
        capsys.readouterr()
        assert main(argv) == code
        err = capsys.readouterr().err
        assert ("Traceback (most recent call last)" in err) == ("--debug" in argv), err
        assert err.splitlines()[-1].startswith("neurodyn evaluate: ")


def test_real_bugs_still_raise(monkeypatch, tmp_path):
    """Only InputError becomes exit code 2: a programming error keeps its traceback."""
    import neurodyn.commands.evaluate as evaluate_command

    def broken(_argv):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(evaluate_command, "cli_main", broken)
    with pytest.raises(ZeroDivisionError):
        main(["evaluate", "--target", "x", "--pred", "y"])


def test_overwrite_replaces_and_keeps_inputs(src, tmp_path, monkeypatch, capsys):
    """The other side of the ``exists`` rows: with --overwrite the same command succeeds."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.h5").write_bytes(b"an earlier result\n")
    digest = hashlib.sha256((src / "pred.h5").read_bytes()).hexdigest()
    argv = ["submit", "--pred", str(src / "pred.h5"), "--prepared", str(src / "prep.h5"), "--out", "s.h5"]
    assert main(argv) == 2
    assert main([*argv, "--overwrite"]) == 0
    assert h5py.is_hdf5(tmp_path / "s.h5")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.h5"]
    assert hashlib.sha256((src / "pred.h5").read_bytes()).hexdigest() == digest


# ------------------------------------------------------------------------------ real processes
def _neurodyn(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("NEURODYN_DEBUG", None)
    return subprocess.Popen([sys.executable, "-m", "neurodyn.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals)


def _default_signals() -> None:
    """In the child: SIGINT / SIGTERM with their default actions and no signal blocked, whatever this process
    inherited or set (a shell's `&` ignores SIGINT; a signal mask survives fork and exec, and one blocked
    SIGTERM would stay pending until the child exits 0 -- seen once in a fresh-clone CI run)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Wait until ``path`` exists (the writer holds its lock); fail if the process ends first."""
    end = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, "timed out waiting for the lock file"
        time.sleep(0.005)


def _wait_for_glob(folder: Path, pattern: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Wait until a file matching ``pattern`` exists in ``folder``; fail if the process ends first."""
    end = time.monotonic() + timeout
    while not any(folder.glob(pattern)):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < end, f"timed out waiting for {pattern}"
        time.sleep(0.005)


@pytest.fixture(scope="module")
def big_nwb(tmp_path_factory) -> Path:
    """An NWB pair large enough that ``prepare`` works for a few seconds after taking its lock."""
    from neurodyn.data.synthetic.nlb_nwb import write_nlb_pair

    folder = tmp_path_factory.mktemp("fault_big") / "nwb"
    write_nlb_pair(folder, "mc_maze", n_train_trials=300, n_test_trials=8, seed=1, n_heldin=40, n_heldout=10)
    return folder


@pytest.mark.parametrize("command, sig", [("prepare", signal.SIGTERM), ("simulate", signal.SIGTERM),
                                          ("simulate-nlb", signal.SIGTERM)])
def test_sigterm_leaves_nothing(command, sig, big_nwb, tmp_path):
    """SIGTERM / SIGINT while the output is being made: one line, exit code 128 + signal, nothing left."""
    work = tmp_path / "work"
    work.mkdir()
    lock = work / "sub" / ".out.h5.lock"
    if command == "prepare":
        args = ["prepare", "--dataset", "mc_maze", "--nwb", str(big_nwb), "--out", "sub/out.h5"]
        before = _tree(big_nwb)
    elif command == "simulate":  # the lock is held for the whole simulation: seconds even on a fast machine
        args = ["simulate", "lorenz", "--no-progress", "--trials-per-condition", "800", "--out", "sub/out.h5"]
    else:  # both files of the pair are locked before either is written; neither may be left
        from neurodyn.data.synthetic.nlb_nwb import pair_names

        args = ["simulate", "nlb", "--style", "mc_maze", "--n-train-trials", "1000", "--out", "sub"]
        lock = work / "sub" / f".{pair_names('mc_maze')[1]}.lock"
    proc = _neurodyn(*args, cwd=work)
    _wait_for(lock, proc)
    proc.send_signal(sig)  # (does nothing if the process has already ended: the check below says so)
    assert proc.returncode is None, "the command finished before the signal was sent: make it bigger"
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + sig, f"exit {proc.returncode}; stdout {out!r}; stderr {err!r}"
    assert err.splitlines() == [f"neurodyn {args[0]}: interrupted ({sig.name}); nothing partial was kept"]
    assert list(work.iterdir()) == []  # not even the folder sub/ it created
    if command == "prepare":
        assert _tree(big_nwb) == before


def test_two_writers_one_output(tmp_path, monkeypatch, capsys):
    """Two processes writing the same path: the second is refused at once, the first writes a whole file.

    The first is a real process; the second runs in this process (no start-up delay) while the first
    holds its lock.
    """
    from neurodyn.data.lfads import read_lfads_h5

    args = ["simulate", "lorenz", "--no-progress", "--trials-per-condition", "60", "--out", "out.h5"]
    first = _neurodyn(*args, cwd=tmp_path)
    # The lock file exists from the first writer's open(), a moment before its flock(); the temporary
    # .part file is made only once the lock is held, so waiting for it orders the two writers.
    _wait_for_glob(tmp_path, ".out.h5.*.part", first)
    monkeypatch.chdir(tmp_path)
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert first.poll() is None, "the first writer finished before the second started: make it bigger"
    assert len(err.splitlines()) == 1 and "another process is writing this file" in err, err
    _, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5"]
    assert read_lfads_h5(tmp_path / "out.h5").train_data.shape[0] > 0


def test_demo_cache_reused_only_when_it_matches(tmp_path):
    """``demo`` reuses ``lorenz.h5`` only when it wrote it with the same seed and simulation; its own cache of
    another seed is rewritten; a user's file is refused unless --overwrite."""
    from neurodyn.demo import check_demo_cache, write_demo_cache
    from neurodyn.errors import InputError

    small = {"n_conditions": 2, "trials_per_condition": 2, "n_neurons": 5}
    assert check_demo_cache(tmp_path, 0, simulation=small) is False  # nothing there
    write_demo_cache(tmp_path, 0, simulation=small)
    assert check_demo_cache(tmp_path, 0, simulation=small) is True
    assert check_demo_cache(tmp_path, 1, simulation=small) is False
    assert check_demo_cache(tmp_path, 0, simulation={**small, "n_conditions": 3}) is False
    assert check_demo_cache(tmp_path, 0) is False  # the default simulation
    (tmp_path / "user").mkdir()
    _foreign_cache(tmp_path / "user")
    with pytest.raises(InputError, match="not a data cache written by neurodyn demo"):
        check_demo_cache(tmp_path / "user" / "demo", 0, simulation=small)
    assert check_demo_cache(tmp_path / "user" / "demo", 0, simulation=small, overwrite=True) is False
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lorenz.h5", "user"]


@pytest.mark.parametrize("command, wanted, unwanted", [
    ("submit", "prepared file(s)", "prepare file(s)"), ("evaluate", "prepared file(s)", "prepare file(s)"),
    ("plot", "neurodyn plot FILE [--out PNG]: a summary figure", "``")])
def test_help_text(command, wanted, unwanted, capsys):
    assert main([command, "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert wanted in out and unwanted not in out, out


@pytest.mark.parametrize(("value", "words"), [("abc", "must be an integer >= 1, got 'abc'"),
                                              ("-3", "must be >= 1, got -3")])
def test_demo_epochs_from_the_environment_name_the_variable(tmp_path, capsys, monkeypatch, value, words):
    """NEURODYN_DEMO_EPOCHS=abc was a ValueError traceback; -3 was blamed on --epochs, which was not given."""
    monkeypatch.setenv("NEURODYN_DEMO_EPOCHS", value)
    assert main(["demo", "--out", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"neurodyn demo: error: NEURODYN_DEMO_EPOCHS: {words}"]
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize("value", ["abc", "-3"])
def test_demo_epochs_given_win_over_the_environment(tmp_path, capsys, monkeypatch, value):
    """NEURODYN_DEMO_EPOCHS=abc neurodyn demo --epochs 2 was refused for the variable, although the explicit
    --epochs decides. Training is stubbed: the test only needs the run to get past the checks with 2 epochs."""
    import neurodyn.demo as demo

    class Reached(Exception):
        pass

    def train(out, *, max_epochs, **kwargs):
        raise Reached(max_epochs)

    monkeypatch.setenv("NEURODYN_DEMO_EPOCHS", value)
    monkeypatch.setattr(demo, "_real_nwb", lambda: None)
    monkeypatch.setattr(demo, "check_demo_cache", lambda *a, **k: True)  # no simulation
    monkeypatch.setattr(demo, "train_lorenz", train)
    with pytest.raises(Reached) as reached:
        main(["demo", "--epochs", "2", "--out", str(tmp_path / "d")])
    assert reached.value.args == (2,)
    assert capsys.readouterr().err == ""
    monkeypatch.delenv("NEURODYN_DEMO_EPOCHS")
    assert main(["demo", "--epochs", "0", "--out", str(tmp_path / "d")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == ["neurodyn demo: error: --epochs: must be >= 1, got 0"]
