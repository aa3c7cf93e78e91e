"""``neurodyn plot`` of a submission with several NLB groups (datasets or bin widths): --group chooses one.

Before, the first group by name was drawn silently (``mc_maze_large_20`` of a scaling submission) and
nothing said which, nor that --group existed. Now several groups without --group are refused in one
line listing them, and the command says which group it drew.
"""

from __future__ import annotations

import numpy as np
import pytest

from neurodyn.cli import main
from neurodyn.errors import InputError
from neurodyn.metrics.submission import write_submission
from neurodyn.viz.prediction import read_prediction

#: group -> (eval trials, bins, held-in, held-out): as neurodyn submit writes a scaling submission, with
#: the 20 ms small dataset also upsampled to 5 ms (group "mc_maze_small")
SHAPES = {"mc_maze_medium_20": (4, 10, 5, 2), "mc_maze_small_20": (3, 10, 4, 2), "mc_maze_small": (3, 40, 4, 2)}
LISTED = "mc_maze_medium_20, mc_maze_small, mc_maze_small_20"


def _group(seed, n_eval, n_bins, n_in, n_out):
    rng = np.random.default_rng(seed)
    train, evaluation = (rng.gamma(2.0, 0.05, (n, n_bins, n_in + n_out)).astype(np.float32) for n in (5, n_eval))
    return {"train_rates_heldin": train[..., :n_in], "train_rates_heldout": train[..., n_in:],
            "eval_rates_heldin": evaluation[..., :n_in], "eval_rates_heldout": evaluation[..., n_in:]}


@pytest.fixture
def groups():
    return {name: _group(k, *shape) for k, (name, shape) in enumerate(SHAPES.items())}


@pytest.fixture
def submission(tmp_path, groups):
    return write_submission(tmp_path / "submission.h5", groups)


def test_several_groups_without_group_are_refused_listing_them(submission, tmp_path, capsys):
    out = tmp_path / "fig.png"
    assert main(["plot", str(submission), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"neurodyn plot: error: {submission}: --group: the file holds 3 NLB groups; "
                   f"choose one with --group: {LISTED}"]
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["submission.h5"]
    with pytest.raises(InputError, match="group: the file holds 3 NLB groups; choose one with group: "):
        read_prediction(submission)


def test_unknown_group_lists_the_files_groups(submission, tmp_path, capsys):
    assert main(["plot", str(submission), "--group", "mc_maze_large_20", "--out", str(tmp_path / "f.png")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"neurodyn plot: error: {submission}: --group: no NLB group 'mc_maze_large_20' with "
                   f"eval_rates_heldin; the file holds: {LISTED}"]


@pytest.mark.parametrize(("name", "bin_ms"), [("mc_maze_small", 5.0), ("mc_maze_small_20", 20.0),
                                              ("mc_maze_medium_20", 20.0)])
def test_the_chosen_group_is_drawn_and_named(submission, groups, tmp_path, name, bin_ms, capsys):
    out = tmp_path / f"{name}.png"
    assert main(["plot", str(submission), "--group", name, "--out", str(out), "--dpi", "30"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out} (nlb layout): NLB group {name}"
    assert out.read_bytes()[:4] == b"\x89PNG"
    data = read_prediction(submission, group=name)
    want = np.concatenate([groups[name]["eval_rates_heldin"], groups[name]["eval_rates_heldout"]], axis=2)
    assert data["group"] == name and data["bin_ms"] == bin_ms and data["label"].startswith(f"{name}:")
    np.testing.assert_array_equal(data["rates"], want)


def test_one_group_is_drawn_without_group_and_named(tmp_path, groups, capsys):
    single = write_submission(tmp_path / "one.h5", {"mc_maze_small_20": groups["mc_maze_small_20"]})
    assert main(["plot", str(single), "--dpi", "30"]) == 0
    printed = capsys.readouterr().out.strip()
    assert printed == f"wrote {single.with_suffix('.png')} (nlb layout): NLB group mc_maze_small_20"


def test_group_of_a_file_without_nlb_groups(tmp_path, capsys):
    import h5py

    path = tmp_path / "lfads.h5"
    with h5py.File(path, "w") as f:
        f["valid_rates"] = np.ones((2, 5, 3))
    assert main(["plot", str(path), "--group", "mc_maze", "--out", str(tmp_path / "f.png")]) == 2
    assert "--group: no NLB group 'mc_maze' with eval_rates_heldin; the file holds none" in capsys.readouterr().err
    assert main(["plot", str(path), "--out", str(tmp_path / "f.png"), "--dpi", "30"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'f.png'} (lfads layout)"


@pytest.mark.parametrize(("name", "n_bins", "bin_ms", "first_s", "event"), [
    ("mc_maze_small_20", 35, 20, -0.24, "move onset"),     # MC_Maze window -250 .. 450 ms around move onset
    ("mc_maze_small", 140, 5, -0.2475, "move onset"),
    ("dmfc_rsg_20", 75, 20, -1.49, "go"),                  # -1500 .. 0 ms around go
    ("mc_rtt_20", 30, 20, 0.01, "trial start"),
    ("area2_bump_20", 12, 20, 0.01, None),                 # not its 600 ms window: time from the window start
])
def test_nlb_time_axes_are_relative_to_the_alignment_event(tmp_path, name, n_bins, bin_ms, first_s, event):
    """The NLB figure's time axes ran from the window start (0 at -250 ms of MC_Maze); they are now the
    dataset's window around its alignment event, 0 marked, the event named on the axes."""
    from neurodyn.viz.prediction import draw_prediction

    path = write_submission(tmp_path / "p.h5", {name: _group(0, 3, n_bins, 4, 2)})
    data = read_prediction(path)
    fig = draw_prediction(data)
    image = fig.axes[0]
    left = image.collections[0].get_coordinates()[0, 0, 0]  # the first bin's left edge (s)
    assert left + bin_ms / 2000 == pytest.approx(first_s)  # its centre
    labels = {ax.get_xlabel() for ax in fig.axes if ax.get_xlabel().startswith("time")}
    assert labels == ({f"time from {event} (s)"} if event else {"time (s)"}), labels  # one label (was two)
