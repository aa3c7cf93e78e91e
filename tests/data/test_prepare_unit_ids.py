"""``prepare`` records the NWB unit id of every unit column (``unit_ids/heldin``, ``unit_ids/heldout``).

Before, a prepared file said nothing of which NWB unit a column is: a rates column could not be named, and a
checkpoint could be compared with the data only by the source files' digests. The ids must follow the columns:
files whose units table ids are relabelled (unsorted, held-in and held-out ids interleaved) give the same columns in
ascending-id order (nlb_tools' order), each labelled with its unit's new id.
"""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest

from neurodyn.data.prepare import prepare
from neurodyn.data.prepared import UNIT_IDS, load_prepared, read_prepared
from neurodyn.errors import InputError

N_HELDIN, N_HELDOUT = 6, 3
#: new id of the unit with id k (the simulator numbers its units 0, 1, ...): unsorted, held-in and held-out mixed
RELABEL = np.array([40, 7, 93, 12, 5, 61, 30, 2, 77])


def _nwb_ids(path) -> dict[str, np.ndarray]:
    """The oracle: the units table's ids, split by its heldout column and sorted (nlb_tools' column order)."""
    with h5py.File(path, "r") as f:
        ids = f["units/id"][()]
        held = f["units/heldout"][()].astype(bool)
    return {"heldin": np.sort(ids[~held]), "heldout": np.sort(ids[held])}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A simulated train + test pair, a copy of it with relabelled unit ids, both prepared (val phase; the copy
    also in the test phase)."""
    from neurodyn.data.synthetic.nlb_nwb import write_nlb_pair

    tmp = tmp_path_factory.mktemp("unit_ids")
    write_nlb_pair(tmp / "plain", "mc_maze", n_train_trials=16, n_test_trials=6, n_heldin=N_HELDIN,
                   n_heldout=N_HELDOUT, seed=3)
    shutil.copytree(tmp / "plain", tmp / "relabelled")
    for nwb in sorted((tmp / "relabelled").glob("*.nwb")):
        with h5py.File(nwb, "r+") as f:
            f["units/id"][...] = RELABEL[f["units/id"][()]]

    def prep(folder, phase="val"):
        return prepare("mc_maze_small", tmp / folder, 20, phase, tmp / f"{folder}_{phase}.h5", include_psth=False,
                       log=None)

    return tmp, {"plain": prep("plain"), "relabelled": prep("relabelled"),
                 "relabelled_test": prep("relabelled", "test")}


@pytest.mark.parametrize("name", ["plain", "relabelled"])
def test_prepare_records_the_units_tables_ids_in_column_order(files, name):
    tmp, out = files
    train = next((tmp / name).glob("*desc-train*.nwb"))
    want = _nwb_ids(train)
    assert len(want["heldin"]) == N_HELDIN and len(want["heldout"]) == N_HELDOUT
    prep = load_prepared(out[name])
    assert set(prep.unit_ids) == {"heldin", "heldout"}
    for kind in ("heldin", "heldout"):
        assert prep.unit_ids[kind].dtype == np.int64
        np.testing.assert_array_equal(prep.unit_ids[kind], want[kind], err_msg=kind)
    if name == "relabelled":  # the guard: the relabelling reorders the columns
        assert not np.array_equal(np.argsort(RELABEL[:N_HELDIN]), np.arange(N_HELDIN))


def test_the_ids_name_the_columns_they_label(files):
    """The relabelled file's column for unit ``RELABEL[k]`` holds the spikes of the plain file's unit ``k``."""
    _, out = files
    plain, relabelled = load_prepared(out["plain"]), load_prepared(out["relabelled"])
    back = {int(new): old for old, new in enumerate(RELABEL)}
    arrays = [("heldin", "train_input", "train_spikes_heldin"), ("heldout", "train_input", "train_spikes_heldout"),
              ("heldin", "eval_input", "eval_spikes_heldin"), ("heldout", "eval_input", "eval_spikes_heldout")]
    for kind, group, key in arrays:
        a, b = getattr(plain, group)[key], getattr(relabelled, group)[key]
        for column, uid in enumerate(relabelled.unit_ids[kind].tolist()):
            source = plain.unit_ids[kind].tolist().index(back[uid])
            np.testing.assert_array_equal(b[..., column], a[..., source], err_msg=f"{key} unit {uid}")
    target_a, target_b = plain.eval_target_group, relabelled.eval_target_group
    order = [plain.unit_ids["heldout"].tolist().index(back[uid]) for uid in relabelled.unit_ids["heldout"].tolist()]
    np.testing.assert_array_equal(target_b["eval_spikes_heldout"], target_a["eval_spikes_heldout"][..., order])


def test_both_phases_of_a_folder_record_the_same_units(files):
    """The test-phase file (train + val trials of the train file, test trials of the test file) has the val-phase
    file's units: a folder's files are read as one session with the same held-in units."""
    _, out = files
    val, test = load_prepared(out["relabelled"]), load_prepared(out["relabelled_test"])
    for kind in ("heldin", "heldout"):
        np.testing.assert_array_equal(test.unit_ids[kind], val.unit_ids[kind])


@pytest.mark.requires_data
def test_the_real_test_files_ids(small_test_nwb, tmp_path):
    """MC_Maze_Small's test file alone (test phase: held-in units only)."""
    out = prepare("mc_maze_small", small_test_nwb, 20, "test", tmp_path / "small.h5", log=None)
    with h5py.File(small_test_nwb, "r") as f:
        ids = f["units/id"][()]
    prep = read_prepared(out, groups=())
    assert prep.n_heldin == 107 and prep.n_heldout == 0
    np.testing.assert_array_equal(prep.unit_ids["heldin"], np.sort(ids))
    assert prep.unit_ids["heldout"].shape == (0,)


def _edited(src, dst, edit):
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        edit(f)
    return dst


def test_a_file_prepared_before_the_ids_were_recorded_is_read(files):
    tmp, out = files
    old = _edited(out["plain"], tmp / "old.h5", lambda f: f.__delitem__(UNIT_IDS))
    prep = load_prepared(old)
    assert prep.unit_ids == {} and prep.train_input is not None


@pytest.mark.parametrize("edit, message", [
    (lambda f: (f[UNIT_IDS].__delitem__("heldin"), f[UNIT_IDS].create_dataset("heldin", data=np.arange(N_HELDIN - 1))),
     "held-in units"),
    (lambda f: (f[UNIT_IDS].__delitem__("heldin"), f[UNIT_IDS].create_dataset("heldin", data=np.zeros(N_HELDIN))),
     "integer NWB unit id"),
    (lambda f: (f[UNIT_IDS].__delitem__("heldin"), f[UNIT_IDS].create_dataset("heldin", data=[1] * N_HELDIN)),
     "distinct unit ids"),
])
def test_damaged_ids_are_refused_naming_the_file_and_the_field(files, edit, message):
    tmp, out = files
    bad = _edited(out["plain"], tmp / "bad.h5", edit)
    with pytest.raises(InputError, match=message) as err:
        read_prepared(bad, groups=())
    assert str(bad) in str(err.value) and f"{UNIT_IDS}/heldin" in str(err.value)


def test_info_of_a_prepared_file_shows_the_unit_ids(files, capsys):
    from neurodyn.cli import main

    _, out = files
    assert main(["info", str(out["relabelled"])]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "heldin unit ids │ 5, 7, 12, 40, 61, 93" in text and "heldout unit ids │ 2, 30, 77" in text, text


def _replace(kind, values):
    def edit(f):
        f[UNIT_IDS].__delitem__(kind)
        f[UNIT_IDS].create_dataset(kind, data=values)
    return edit


@pytest.mark.parametrize("edit, field, message", [
    # NLB's held-in and held-out units are disjoint (nlb_tools splits the units table by its heldout column): a
    # held-out column named like a held-in one was read, and plot drew two columns as one unit
    (lambda f: _replace("heldout", np.concatenate([f[UNIT_IDS]["heldin"][:1], f[UNIT_IDS]["heldout"][1:]]))(f),
     "heldout", r"is also a held-in unit's id \(unit_ids/heldin\): expected distinct unit ids"),
    # uint64 ids past int64's range were read as negative ids (astype wraps)
    (lambda f: _replace("heldin", np.arange(N_HELDIN, dtype=np.uint64) + np.uint64(2**63))(f),
     "heldin", "unit id 9223372036854775808 is beyond int64"),
])
def test_ids_shared_by_both_kinds_or_beyond_int64_are_refused(files, edit, field, message):
    tmp, out = files
    bad = _edited(out["plain"], tmp / "bad.h5", edit)
    with pytest.raises(InputError, match=message) as err:
        read_prepared(bad, groups=())
    assert str(err.value).startswith(f"{bad}: {UNIT_IDS}/{field}: "), err.value
