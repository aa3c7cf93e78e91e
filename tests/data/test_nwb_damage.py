"""NWB files damaged below pynwb: a dataset of the units or trials table deleted while the table still lists it,
and trials that stop before they start. One line naming the file and the dataset, exit 2, for prepare and info."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import pytest

from neurodyn.cli import main
from neurodyn.data.nwb import load_session
from neurodyn.data.synthetic.nlb_nwb import write_nlb_nwb
from neurodyn.errors import InputError

LISTED = "missing: listed in the table's colnames, but the file holds no such dataset"

#: the dataset deleted (its HDF5 path) -> the field the message names
DAMAGES = {
    "intervals/trials/move_onset_time": "trials/move_onset_time",
    "intervals/trials/start_time": "trials/start_time",
    "units/heldout": "units/heldout",
    "units/spike_times_index": "units/spike_times_index",
}


@pytest.fixture(scope="module")
def test_nwb(tmp_path_factory) -> Path:
    """An mc_maze-style test-phase file, as DANDI's MC_Maze_Small test file is (units with heldout, spike_times
    and obs_intervals; trials with start, stop, move onset and split)."""
    return write_nlb_nwb(tmp_path_factory.mktemp("nwb") / "sub-Synth_desc-test_ecephys.nwb", "mc_maze", n_trials=4,
                         n_heldin=3, n_heldout=2, seed=1, split="test")


def _damaged(source: Path, folder: Path, dataset: str) -> tuple[Path, str]:
    """A copy of ``source`` without ``dataset`` (its table's colnames left as they are) and the reason expected."""
    folder.mkdir()
    path = folder / source.name
    shutil.copyfile(source, path)
    with h5py.File(path, "r+") as f:
        del f[dataset]
        if dataset.endswith("_index"):
            n_values, n_rows = f[dataset[: -len("_index")]].shape[0], f[f"{dataset.rsplit('/', 1)[0]}/id"].shape[0]
            column = dataset.rsplit("/", 1)[1][: -len("_index")]
            return path, (f"missing: '{column}' holds {n_values} values for the table's {n_rows} rows, which only "
                          f"an index ('{column}_index', absent) splits into rows")
    return path, LISTED


def _prepare(path: Path, out: Path, dataset: str = "mc_maze") -> list[str]:
    return ["prepare", "--dataset", dataset, "--nwb", str(path), "--bin-ms", "20", "--phase", "test",
            "--out", str(out)]


@pytest.mark.parametrize("dataset", list(DAMAGES))
@pytest.mark.parametrize("command", ["prepare", "info"])
def test_a_dataset_deleted_but_still_listed_is_named(test_nwb, tmp_path, capsys, dataset, command):
    """Was "not a readable NWB file (ConstructError: (root/intervals/trials GroupBuilder {'attributes': ..." cut
    at 200 characters, naming no field: pynwb's error text is the whole table's builder."""
    path, reason = _damaged(test_nwb, tmp_path / "bad", dataset)
    out = tmp_path / "p.h5"
    argv = _prepare(path, out) if command == "prepare" else ["info", str(path)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"neurodyn {command}: error: {path}: {DAMAGES[dataset]}: {reason}"
    assert not out.exists()


@pytest.mark.requires_data
@pytest.mark.parametrize("dataset", list(DAMAGES))
def test_the_real_test_file_with_a_dataset_deleted(small_test_nwb, tmp_path, capsys, dataset):
    path, reason = _damaged(small_test_nwb, tmp_path / "bad", dataset)
    assert main(_prepare(path, tmp_path / "p.h5", "mc_maze_small")) == 2
    assert capsys.readouterr().err.strip() == f"neurodyn prepare: error: {path}: {DAMAGES[dataset]}: {reason}"


def test_a_trial_that_starts_after_it_stops_is_refused(test_nwb, tmp_path, capsys):
    """A trial whose start_time is after its stop_time (NWB's TimeIntervals require stop >= start) was read as it
    is: prepare wrote windows of it."""
    path = tmp_path / test_nwb.name
    shutil.copyfile(test_nwb, path)
    with h5py.File(path, "r+") as f:
        start, stop = f["intervals/trials/start_time"], f["intervals/trials/stop_time"]
        start[2] = stop[2] + 100.0
        trial, begins, ends = int(f["intervals/trials/id"][2]), float(start[2]), float(stop[2])
    line = (f"{path}: trials/start_time: trial {trial} starts at {begins:.10g} s, after its stop_time {ends:.10g} s; "
            "a trial stops at or after its start")
    with pytest.raises(InputError) as err:
        load_session(path)
    assert str(err.value) == line
    out = tmp_path / "p.h5"
    for command, argv in (("prepare", _prepare(path, out)), ("info", ["info", str(path)])):
        assert main(argv) == 2
        assert capsys.readouterr().err.strip() == f"neurodyn {command}: error: {line}"
    assert not out.exists()


def test_trial_times_that_are_not_numbers_are_one_line(test_nwb, tmp_path, capsys):
    """A trials start_time column of text was a ValueError traceback (could not convert string to float) from info
    and prepare; it is now one line naming the file and the column."""
    path = tmp_path / test_nwb.name
    shutil.copyfile(test_nwb, path)
    with h5py.File(path, "r+") as f:
        trials = f["intervals/trials"]
        attrs, n = dict(trials["start_time"].attrs), trials["start_time"].shape[0]
        del trials["start_time"]
        column = trials.create_dataset("start_time", data=[b"abc"] * n)
        column.attrs.update(attrs)
    line = f"{path}: trials/start_time: expected times in seconds (numbers), found values such as 'abc'"
    for command, argv in (("prepare", _prepare(path, tmp_path / "p.h5")), ("info", ["info", str(path)])):
        assert main(argv) == 2
        assert capsys.readouterr().err.strip() == f"neurodyn {command}: error: {line}"


def test_a_damaged_column_whose_name_holds_a_newline_is_named_on_one_line(test_nwb, tmp_path, capsys):
    """The name of a missing column is the file's own text: one with a newline printed the message over two lines."""
    path = tmp_path / test_nwb.name
    shutil.copyfile(test_nwb, path)
    with h5py.File(path, "r+") as f:
        f["units"].attrs["colnames"] = [*f["units"].attrs["colnames"], "bad\nname"]
    assert main(["info", str(path)]) == 2
    assert capsys.readouterr().err.strip() == f"neurodyn info: error: {path}: units/bad name: {LISTED}"
