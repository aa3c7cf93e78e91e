"""``--upsample``: a trial's 20 ms and 5 ms windows need not start together (first bin ``ceil(t0 / bin)`` on a
1 ms grid of alignment times; the DMFC_RSG jitter rounded to whole bins at each width). The window starts that
``prepare`` records line them up."""

from __future__ import annotations

import contextlib
import io
import json

import h5py
import numpy as np
import pytest

from neurodyn.cli import main
from neurodyn.data.nwb import load_session
from neurodyn.data.prepare import prepare
from neurodyn.data.prepared import group_name, load_prepared
from neurodyn.data.synthetic.nlb_latents import expected_counts_ms
from neurodyn.data.synthetic.nlb_nwb import pair_names, window_sums, write_nlb_pair
from neurodyn.errors import InputError
from neurodyn.metrics.resample import read_window_starts, upsample_group, upsample_submission, window_offsets
from neurodyn.metrics.submission import read_submission, write_submission

SIZES = {"mc_maze": ("mc_maze_small", 6, 3, 24), "dmfc_rsg": ("dmfc_rsg", 6, 3, 32)}
KEYS = ("train_rates_heldin", "train_rates_heldout", "eval_rates_heldin", "eval_rates_heldout",
        "eval_rates_heldin_forward", "eval_rates_heldout_forward")


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    """Per style: (folder, {20: prepared, 5: prepared}), val phase."""
    out = {}
    for style, (dataset, n_in, n_out, n_trials) in SIZES.items():
        folder = tmp_path_factory.mktemp(style)
        write_nlb_pair(folder / "nwb", style, n_train_trials=n_trials, n_test_trials=4, n_heldin=n_in,
                       n_heldout=n_out, seed=5)
        out[style] = (folder, {b: prepare(dataset, folder / "nwb", bin_ms=b, phase="val", out=folder / f"p{b}.h5",
                                          log=None) for b in (20, 5)})
    return out


def _offsets(prep20, prep5):
    s20, s5 = load_prepared(prep20).window_start_ms, load_prepared(prep5).window_start_ms
    return {split: window_offsets(s20[split], s5[split], 5, 20) for split in ("train", "eval")}


def _inside(n_fine: int, offsets: np.ndarray, n_coarse_fine: int) -> np.ndarray:
    """(trials, n_fine) True where fine bin j lies inside the coarse window (j - offset in [0, n_coarse_fine))."""
    j = np.arange(n_fine)[None, :] - offsets[:, None]
    return (j >= 0) & (j < n_coarse_fine)


@pytest.mark.parametrize("style", list(SIZES))
def test_shifted_upsample_of_a_rate_constant_on_the_20ms_grid_is_its_5ms_cut(style, pairs):
    """The exact oracle: a rate constant within each 20 ms bin of the session grid, cut by prepare's windows at
    20 ms and upsampled with the recorded starts, is what prepare's 5 ms windows cut of it (fine bins outside the
    coarse window take the edge rate, as documented, and are left out). Unshifted, it is not."""
    dataset, n_in, n_out, _ = SIZES[style]
    folder, prep = pairs[style]
    train = folder / "nwb" / pair_names(style)[0]
    n_ms = load_session(train).n_ms
    rng = np.random.default_rng(0)
    per_bin = rng.gamma(2.0, 1.0, (-(-n_ms // 20), n_in + n_out))
    per_ms = np.repeat(per_bin / 20.0, 20, axis=0)[:n_ms]
    coarse = window_sums(folder / "nwb", dataset, 20, {train.name: per_ms})
    fine = window_sums(folder / "nwb", dataset, 5, {train.name: per_ms})
    offsets = _offsets(prep[20], prep[5])
    assert np.any(offsets["eval"] != 0) and np.any(offsets["train"] != 0)  # the windows do not start together
    shifted = upsample_group(coarse, 4, offsets)
    plain = upsample_group(coarse, 4)
    n_obs = coarse["eval_rates_heldin"].shape[1] * 4
    for split, keys in (("train", ("train_rates_heldin",)),
                        ("eval", ("eval_rates_heldin", "eval_rates_heldin_forward"))):
        got = np.concatenate([shifted[k] for k in keys], axis=1)
        old = np.concatenate([plain[k] for k in keys], axis=1)
        want = np.concatenate([fine[k] for k in keys], axis=1)
        inside = _inside(got.shape[1], offsets[split], got.shape[1])
        np.testing.assert_allclose(got[inside], want[inside], rtol=1e-9, err_msg=f"{style} {split}")
        assert not np.allclose(old[inside], want[inside])  # what --upsample scored before
        # forward bins continue the observed ones: the edge rate only where the coarse window ends
        if split == "eval":
            np.testing.assert_allclose(shifted["eval_rates_heldout_forward"],
                                       np.concatenate([shifted["eval_rates_heldout"], shifted[
                                           "eval_rates_heldout_forward"]], axis=1)[:, n_obs:])


def test_offsets_shift_observed_and_forward_bins_as_one_axis_with_edge_rates():
    group = {"eval_rates_heldout": np.array([[[4.0], [8.0]]] * 2),
             "eval_rates_heldout_forward": np.array([[[12.0]]] * 2), "train_rates_heldout": np.array([[[4.0], [8.0]]])}
    out = upsample_group(group, 4, {"eval": np.array([2, -1]), "train": np.array([0])})
    axis = np.concatenate([out["eval_rates_heldout"], out["eval_rates_heldout_forward"]], axis=1)[..., 0]
    assert axis[0].tolist() == [1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3]  # two fine bins later, edge rate in front
    assert axis[1].tolist() == [1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 3]  # one earlier, edge rate at the end
    assert out["train_rates_heldout"][0, :, 0].tolist() == [1, 1, 1, 1, 2, 2, 2, 2]
    with pytest.raises(InputError, match="more than 2 coarse bins"):
        upsample_group(group, 4, {"eval": np.array([9, 0]), "train": np.array([0])})
    with pytest.raises(InputError, match="2 window offsets"):
        upsample_group(group, 4, {"eval": np.array([0]), "train": np.array([0])})
    with pytest.raises(InputError) as err:
        window_offsets(np.array([20, 40]), np.array([18, 40]), 5, 20, path="p.h5", field="window_start_ms/x/eval")
    assert err.value.path is not None and err.value.field == "window_start_ms/x/eval"
    with pytest.raises(InputError, match="more than 40 ms"):
        window_offsets(np.array([100]), np.array([55]), 5, 20, path="p.h5", field="f")


def _oracle(folder, style, bin_ms, out, starts_from=None):
    """The simulator's true rates on prepare's windows (a submission file), with the window starts of the prepared
    file ``starts_from`` as ``neurodyn predict`` copies them."""
    dataset, n_in, n_out, n_trials = SIZES[style]
    expected = expected_counts_ms(style, n_trials=n_trials, n_heldin=n_in, n_heldout=n_out, seed=5)
    group = window_sums(folder / "nwb", dataset, bin_ms, {pair_names(style)[0]: expected})
    name = group_name(dataset, bin_ms)
    starts = {name: load_prepared(starts_from).window_start_ms} if starts_from else None
    write_submission(out, {name: group}, window_starts=starts)
    return out


def _evaluate(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert main(["evaluate", *map(str, args), "--json"]) == 0
    (result,) = json.loads(out.getvalue())
    (scores,) = result.values()
    return {k.split("] ")[-1]: v for k, v in scores.items()}, err.getvalue()


def test_dmfc_true_rates_upsampled_with_the_starts_score_as_the_5ms_cut(pairs, tmp_path):
    """Simulated DMFC_RSG val files: the 20 ms true rates upsampled with the recorded starts match the rates cut at
    5 ms away from the edges and score fp-bps at least as well as before (unshifted); a prediction file without
    starts is upsampled as before, with one note."""
    folder, prep = pairs["dmfc_rsg"]
    with_starts = _oracle(folder, "dmfc_rsg", 20, tmp_path / "o20s.h5", starts_from=prep[20])
    without = _oracle(folder, "dmfc_rsg", 20, tmp_path / "o20.h5")
    cut5 = _oracle(folder, "dmfc_rsg", 5, tmp_path / "o5.h5")
    after, note_after = _evaluate("--target", prep[5], "--pred", with_starts, "--upsample", "5")
    before, note_before = _evaluate("--target", prep[5], "--pred", without, "--upsample", "5")
    at5, _ = _evaluate("--target", prep[5], "--pred", cut5)
    assert note_after == ""
    assert note_before.count("note:") == 1 and "alignment could not be checked" in note_before
    assert "o20.h5" in note_before
    assert after["fp-bps"] >= before["fp-bps"]  # (psth R2 of 8 eval trials is too noisy to order)
    assert abs(after["fp-bps"] - at5["fp-bps"]) < abs(before["fp-bps"] - at5["fp-bps"])
    # the rates themselves: closer to the 5 ms cut inside the coarse windows, everywhere
    up = upsample_submission(read_submission(with_starts), 5, {"dmfc_rsg_20": _offsets(prep[20], prep[5])})
    old = upsample_submission(read_submission(without), 5)
    fine = read_submission(cut5)["dmfc_rsg"]
    offsets = _offsets(prep[20], prep[5])["eval"]
    key = "eval_rates_heldout"
    inside = _inside(fine[key].shape[1], offsets, fine[key].shape[1])
    # the true rate varies within a 20 ms bin: compare how far each is from the 5 ms cut
    err_new = np.abs(up["dmfc_rsg"][key] - fine[key])[inside].mean()
    err_old = np.abs(old["dmfc_rsg"][key] - fine[key])[inside].mean()
    assert err_new < 0.7 * err_old


def test_old_prepared_files_without_starts_still_work_with_one_note(pairs, tmp_path):
    """A target (or --prepared) file prepared before the starts were recorded: upsampled as before, one note."""
    folder, prep = pairs["mc_maze"]
    old5 = tmp_path / "old5.h5"
    with h5py.File(prep[5]) as src, h5py.File(old5, "w") as dst:
        for key in src:
            if key != "window_start_ms":
                src.copy(key, dst)
        dst.attrs.update(dict(src.attrs))
    assert load_prepared(old5).window_start_ms == {} and read_window_starts(old5) == {}
    pred = _oracle(folder, "mc_maze", 20, tmp_path / "o20s.h5", starts_from=prep[20])
    plain = _oracle(folder, "mc_maze", 20, tmp_path / "o20.h5")
    got, note = _evaluate("--target", old5, "--pred", pred, "--upsample", "5")
    want, _ = _evaluate("--target", old5, "--pred", plain, "--upsample", "5")
    assert got == want and note.count("note:") == 1 and "old5.h5 records no window starts" in note
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["submit", "--pred", str(pred), "--upsample", "5", "--prepared", str(prep[20]), str(old5),
                     "--out", str(tmp_path / "sub.h5")]) == 0
    assert out.getvalue().count("note:") == 1 and "alignment could not be checked" in out.getvalue()


def test_submit_upsamples_with_the_starts_and_writes_only_the_submission_keys(pairs, tmp_path):
    folder, prep = pairs["mc_maze"]
    pred = _oracle(folder, "mc_maze", 20, tmp_path / "o20s.h5", starts_from=prep[20])
    assert set(read_window_starts(pred)) == {"mc_maze_small_20"}
    sub = tmp_path / "sub.h5"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["submit", "--pred", str(pred), "--upsample", "5", "--prepared", str(prep[20]), str(prep[5]),
                     "--out", str(sub)]) == 0
    assert "note:" not in out.getvalue()
    with h5py.File(sub) as f:
        assert set(f) == {"mc_maze_small", "mc_maze_small_20"}
        assert all(set(f[g]) <= set(KEYS) for g in f)
    want = upsample_group(read_submission(pred)["mc_maze_small_20"], 4, _offsets(prep[20], prep[5]))
    got = read_submission(sub)["mc_maze_small"]
    for key, value in want.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-6, err_msg=key)


def test_ensemble_keeps_the_starts_its_members_agree_on(pairs, tmp_path):
    folder, prep = pairs["mc_maze"]
    a = _oracle(folder, "mc_maze", 20, tmp_path / "a.h5", starts_from=prep[20])
    groups = read_submission(a)
    b = tmp_path / "b.h5"
    write_submission(b, {g: {k: v * 1.1 for k, v in d.items()} for g, d in groups.items()},
                     window_starts=read_window_starts(a))
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["ensemble", "--pred", str(a), str(b), "--out", str(tmp_path / "e.h5")]) == 0
    kept = read_window_starts(tmp_path / "e.h5")["mc_maze_small_20"]
    np.testing.assert_array_equal(kept["eval"], load_prepared(prep[20]).window_start_ms["eval"])
    c = tmp_path / "c.h5"  # no starts: the ensemble records none
    write_submission(c, {g: {k: v * 1.2 for k, v in d.items()} for g, d in groups.items()})
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["ensemble", "--pred", str(a), str(c), "--out", str(tmp_path / "e2.h5")]) == 0
    assert read_window_starts(tmp_path / "e2.h5") == {}
    # the member is named here (evaluate's note would name only the ensemble)
    assert f"note: {c} records no window starts, unlike the other members" in out.getvalue()


def test_read_window_starts_opens_a_prepared_file_once(pairs, monkeypatch):
    """A prepared file is read with read_prepared's checks on the handle that found it prepared (it was opened a
    second time, by read_prepared); a prediction file is opened once as before."""
    opened = []

    class CountingFile(h5py.File):
        def __init__(self, name, *args, **kwargs):
            opened.append(str(name))
            super().__init__(name, *args, **kwargs)

    _, prep = pairs["mc_maze"]
    want = load_prepared(prep[20]).window_start_ms
    monkeypatch.setattr(h5py, "File", CountingFile)
    got = read_window_starts(prep[20])
    assert opened == [str(prep[20])]
    assert set(got) == {"mc_maze_small_20"} and set(got["mc_maze_small_20"]) == set(want)
    for split, starts in want.items():
        np.testing.assert_array_equal(got["mc_maze_small_20"][split], starts)


def _nan_start(f):
    starts = f["window_start_ms/eval"][()].astype(np.float64)
    starts[0] = np.nan
    del f["window_start_ms/eval"]
    f["window_start_ms/eval"] = starts


def _tiny_read_limit(monkeypatch):
    import neurodyn.io.hdf5 as hdf5

    monkeypatch.setattr(hdf5, "MIN_READ_LIMIT", 16)
    monkeypatch.setattr(hdf5, "MAX_EXPANSION", 0)


@pytest.mark.parametrize("damage, message", [
    ("nan_start", "window_start_ms/eval: expected whole numbers of ms, found nan at row 0"),
    ("unknown_dataset", "dataset: "),
    ("claims_too_much", "claims shape"),  # read_h5's header check: on the one handle as on read_prepared's own
])
def test_read_window_starts_keeps_read_prepareds_checks_of_a_prepared_file(pairs, tmp_path, monkeypatch, damage,
                                                                          message):
    _, prep = pairs["mc_maze"]
    bad = tmp_path / f"{damage}.h5"
    bad.write_bytes(prep[20].read_bytes())
    if damage == "claims_too_much":
        _tiny_read_limit(monkeypatch)
    else:
        with h5py.File(bad, "r+") as f:
            if damage == "nan_start":
                _nan_start(f)
            else:
                f.attrs["dataset"] = "foo"
    with pytest.raises(InputError) as from_prepared:
        load_prepared(bad)
    with pytest.raises(InputError) as from_starts:
        read_window_starts(bad)
    assert str(from_starts.value) == str(from_prepared.value)
    assert str(from_starts.value).startswith(f"{bad}: ") and message in str(from_starts.value)


def test_python_callers_read_their_arguments_the_commands_the_options():
    """upsample_submission() / upsample_offsets() / validate_submission() from Python named '--upsample' and
    '--prepared' (options of neurodyn evaluate / submit: 'bin_ms: ...' was '--upsample: ...', a note said
    'note: --upsample 5: ... pass it with --prepared', a missing 5 ms group '--upsample 5 makes its 5 ms
    group'); inside command_line_names() (as the commands run them) the options, as before."""
    from neurodyn.errors import command_line_names
    from neurodyn.metrics.resample import upsample_offsets
    from neurodyn.metrics.submission import validate_submission

    rates = {k: np.ones((2, 3, 1)) for k in ("train_rates_heldin", "train_rates_heldout", "eval_rates_heldin",
                                              "eval_rates_heldout")}
    coarse = {"mc_maze_small_20": rates}

    def error(call) -> str:
        with pytest.raises(InputError) as err:
            call()
        return str(err.value)

    def said():  # (message or note, the Python spelling, the command line's)
        return [
            (error(lambda: upsample_submission(coarse, 7)), "bin_ms: ", "--upsample: "),
            (error(lambda: upsample_submission({**coarse, "mc_maze_small": rates}, 5)),
             "(drop the upsample_submission call)", "(drop --upsample)"),
            (upsample_offsets(coarse, 5, {"mc_maze_small_20": ("c.h5", {"train": np.zeros(2)})},
                              {"mc_maze_small": (None, {})})[1][0],
             "note: bin_ms=5: the windows' alignment could not be checked (no prepared 5 ms file of mc_maze_small "
             "given: give its path in fine)",
             "note: --upsample 5: the windows' alignment could not be checked (no prepared 5 ms file of "
             "mc_maze_small given: pass it with --prepared)"),
            (error(lambda: validate_submission(coarse, {"mc_maze_small": {}})),
             "mc_maze_small_20 holds 20 ms bins: neurodyn.metrics.resample.upsample_submission(..., 5) makes its "
             "5 ms group", "mc_maze_small_20 holds 20 ms bins: --upsample 5 makes its 5 ms group"),
        ]

    for text, python, _ in said():
        assert python in text and "--" not in text, text
    with command_line_names():
        for text, _, option in said():
            assert option in text, text
