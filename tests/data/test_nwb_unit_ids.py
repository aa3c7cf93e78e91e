"""An NWB file's unit ids (``units/id``) are held to the rule of every unit id neurodyn reads
(:func:`neurodyn.data.prepared.check_unit_ids`: distinct integers within int64) when the NWB file is read.

Before, a repeated id was not refused: two held-in (or two held-out) rows of one id were merged into one unit with
both rows' spikes and prepared without a word, and a held-in and a held-out row of one id were refused as "held-out
in one file and held-in in another" of a single file (uint64 ids past int64 wrapped to negative ids).
"""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from neurodyn.cli import main
from neurodyn.data.synthetic.nlb_nwb import pair_names, write_nlb_pair


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """A small simulated train + test pair (4 held-in, 2 held-out units)."""
    folder = tmp_path_factory.mktemp("nwb_unit_ids") / "plain"
    write_nlb_pair(folder, "mc_maze", n_train_trials=8, n_test_trials=4, n_heldin=4, n_heldout=2, seed=3)
    return folder


def _repeat(kinds):
    """An edit giving the second row of ``kinds`` (held-in / held-out rows) the first row's id."""
    def edit(ids, held):
        first, second = (np.flatnonzero(held == (kind == "heldout"))[i] for kind, i in zip(kinds, (0, 1)))
        ids = ids.copy()
        ids[second] = ids[first]
        return ids
    return edit


@pytest.mark.parametrize("kinds", [("heldin", "heldin"), ("heldout", "heldout"), ("heldin", "heldout")],
                         ids=["two_held_in", "two_held_out", "held_in_and_held_out"])
@pytest.mark.parametrize("command", ["prepare_file", "prepare_folder", "info"])
def test_a_repeated_unit_id_is_refused_naming_the_nwb_file(pair, tmp_path, capsys, kinds, command):
    folder = tmp_path / "session"
    shutil.copytree(pair, folder)
    train = folder / pair_names("mc_maze")[0]
    with h5py.File(train, "r+") as f:
        ids = _repeat(kinds)(f["units/id"][()], f["units/heldout"][()].astype(bool))
        f["units/id"][...] = ids
    repeated = next(i for i in ids if list(ids).count(i) == 2)
    nwb = folder if command == "prepare_folder" else train
    out = tmp_path / "prepared.h5"
    name = command.split("_")[0]
    argv = (["prepare", "--dataset", "mc_maze_small", "--nwb", str(nwb), "--bin-ms", "20", "--out", str(out)]
            if name == "prepare" else ["info", str(nwb)])
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"neurodyn {name}: error: {train}: units/id: expected distinct unit ids, found unit id "
                           f"{repeated} twice (damaged file?)"), err
    assert not out.exists()


def test_unit_ids_past_int64_are_refused(pair, tmp_path, capsys):
    folder = tmp_path / "session"
    shutil.copytree(pair, folder)
    train = folder / pair_names("mc_maze")[0]
    with h5py.File(train, "r+") as f:  # the same dataset (its attributes kept), stored as uint64 from 2**63
        attrs = dict(f["units/id"].attrs)
        n = f["units/id"].shape[0]
        del f["units/id"]
        f["units/id"] = np.arange(n, dtype=np.uint64) + np.uint64(2**63)
        f["units/id"].attrs.update(attrs)
    assert main(["prepare", "--dataset", "mc_maze_small", "--nwb", str(train), "--bin-ms", "20",
                 "--out", str(tmp_path / "prepared.h5")]) == 2
    assert capsys.readouterr().err.strip() == (f"neurodyn prepare: error: {train}: units/id: unit id "
                                               "9223372036854775808 is beyond int64 (damaged file?)")
