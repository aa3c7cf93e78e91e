"""`neurodyn baseline`: bad numeric options are one line naming the option, before any file is read."""

from __future__ import annotations

import numpy as np
import pytest

from neurodyn.cli import main


@pytest.mark.parametrize(("option", "value"), [("--alpha", "-1"), ("--alpha", "nan"), ("--alpha", "inf"),
                                               ("--sigma-ms", "nan"), ("--sigma-ms", "inf"), ("--sigma-ms", "0")])
def test_bad_settings_are_refused_up_front(tmp_path, capsys, option, value):
    """--alpha -1 / nan / inf was an sklearn InvalidParameterError traceback and --sigma-ms nan / inf a
    ValueError / OverflowError, each after reading the file and smoothing; the prepared file here does not
    even exist, so the line must come before any reading."""
    code = main(["baseline", "--prepared", str(tmp_path / "missing.h5"), "--out", str(tmp_path / "b.h5"),
                 option, value])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and f"error: {option}: must be a finite number" in err[0], err
    assert not (tmp_path / "b.h5").exists()


@pytest.fixture(scope="module")
def prepared_5ms(tmp_path_factory):
    """A small synthetic prepared file at 5 ms: 140-bin trials, so sigma must lie in [5, 117.5) ms."""
    from neurodyn.data.prepare import prepare
    from neurodyn.data.synthetic.nlb_nwb import write_nlb_pair

    folder = tmp_path_factory.mktemp("baseline_sigma")
    write_nlb_pair(folder / "nwb", "mc_maze", n_train_trials=6, n_test_trials=2, n_heldin=3, n_heldout=2, seed=0)
    return prepare("mc_maze_small", folder / "nwb", 5, "val", folder / "p5.h5", include_psth=False, log=None)


@pytest.mark.parametrize(("value", "why"), [
    ("1e9", "a 1e+09 ms kernel spans int(6 sigma / bin) = 1200000000 bins of 5 ms, longer than the 140-bin"),
    ("1e308", "spans int(6 sigma / bin) = 1.2e+308 bins of 5 ms"),
    ("117.5", "spans int(6 sigma / bin) = 141 bins of 5 ms"),  # the first width whose window is 141 bins
    ("800", "an 800 ms kernel spans int(6 sigma / bin) = 960 bins of 5 ms"),  # "a 800 ms" before
    ("4.99", "4.99 ms is shorter than one 5 ms bin"),
])
def test_sigma_that_cannot_fit_the_trials_is_refused_before_the_arrays_are_read(
        prepared_5ms, tmp_path, capsys, monkeypatch, value, why):
    """--sigma-ms 1e9 built a 1.2e9-float window after reading the file (a MemoryError traceback, or all the
    memory and 17-75 s) before the smoothing refused it as longer than the trials; now the bound, derived from
    the file's bin width and trial length, refuses it from the file's shapes alone."""
    from neurodyn.commands import baseline

    def no_fit(*_args, **_kwargs):
        raise AssertionError("the arrays were read and the model fit")

    monkeypatch.setattr(baseline, "predict_prepared", no_fit)
    out = tmp_path / "b.h5"
    code = main(["baseline", "--prepared", str(prepared_5ms), "--out", str(out), "--sigma-ms", value])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"neurodyn baseline: error: {prepared_5ms}: --sigma-ms: ") and why in err[0], err
    assert err[0].endswith("sigma must be at least 5 ms (one bin) and below 117.5 ms"), err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_widest_sigma_that_fits_still_runs(prepared_5ms, tmp_path, capsys):
    out = tmp_path / "b.h5"
    assert main(["baseline", "--prepared", str(prepared_5ms), "--out", str(out), "--sigma-ms", "117.4"]) == 0
    assert out.exists(), capsys.readouterr().err


@pytest.mark.parametrize("recipe", ["nlb_tools", "neurodyn"])
def test_a_silent_unit_is_one_note_not_sklearn_warnings(prepared_5ms, tmp_path, capsys, recipe):
    """A unit without a spike in the train trials printed sklearn's "RuntimeWarning: divide by zero encountered in
    log" with its source line (once per such GLM) and nothing said which unit. Now one note names the units; the
    rates are what they were (sklearn's intercept -inf: rate 0, clipped to the floor, as nlb_tools')."""
    import shutil
    import warnings

    import h5py
    import numpy as np

    from neurodyn.models.smoothing import RATE_CLIP

    silent = tmp_path / "silent.h5"
    shutil.copy(prepared_5ms, silent)
    with h5py.File(silent, "r+") as f:
        for key in ("train_input/train_spikes_heldout", "train_input/train_spikes_heldin"):
            counts = f[key][()]
            counts[..., 1] = 0
            f[key][...] = counts
        n_train = len(counts)
    out = tmp_path / "b.h5"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["baseline", "--prepared", str(silent), "--out", str(out), "--recipe", recipe]) == 0
    assert [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)] == []
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    fitted = "held-out 1; held-in 1" if recipe == "neurodyn" else "held-out 1"  # nlb_tools: held-in rates smoothed
    assert notes == [f"note: unit(s) without a spike in the {n_train} train trials, whose GLM rates are the floor "
                     f"1e-09 (indices within each group): {fitted}"], notes
    with h5py.File(out) as f:
        group = f[next(iter(f))]
        rates = group["train_rates_heldout"][()]
        assert np.all(rates[..., 1] == np.float32(RATE_CLIP[0])) and np.all(rates[..., 0] > RATE_CLIP[0])


def test_many_train_spikes_raise_no_overflow_warning(prepared_5ms, tmp_path):
    """The "train trials hold no spikes" check summed the float16 counts in float16: past 65504 spikes the sum was
    inf (the check passed by luck) and NumPy printed "overflow encountered in reduce" on every real dataset's run."""
    import shutil
    import warnings

    import h5py

    from neurodyn.commands.baseline import predict_prepared

    busy = tmp_path / "busy.h5"
    shutil.copy(prepared_5ms, busy)
    with h5py.File(busy, "r+") as f:
        counts = f["train_input/train_spikes_heldin"]
        assert counts.dtype == np.float16  # as prepare writes them (nlb_tools' layout)
        counts[...] = np.full(counts.shape, 60, dtype=np.float16)
        assert float(np.sum(counts[...], dtype=np.float64)) > np.finfo(np.float16).max
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        predict_prepared(busy)
    overflow = [str(w.message) for w in caught if "overflow" in str(w.message)]
    assert overflow == [], overflow


def test_the_header_is_read_once(prepared_5ms, tmp_path, capsys, monkeypatch):
    """baseline read the prepared file's header (attributes and shapes) three times -- for the expected shapes,
    for the kernel check, and for the provenance after the fits; now once, handed to all three. The file it
    writes is checked as before by the tests above and by tests/metrics/test_submission_cli.py."""
    import h5py

    from neurodyn.data import prepared

    real, header_reads = prepared.read_prepared, []

    def counted(path, groups=prepared.GROUPS, **kwargs):
        if not groups:
            header_reads.append(path)
        return real(path, groups, **kwargs)

    monkeypatch.setattr(prepared, "read_prepared", counted)
    out = tmp_path / "b.h5"
    assert main(["baseline", "--prepared", str(prepared_5ms), "--out", str(out)]) == 0, capsys.readouterr().err
    assert len(header_reads) == 1, header_reads
    with h5py.File(out, "r") as f:  # the provenance from the header read once
        assert (f.attrs["dataset"], int(f.attrs["bin_ms"]), f.attrs["phase"]) == ("mc_maze_small", 5, "val")
