"""``prepare --dataset D`` refuses an NWB file that is evidently another NLB dataset's, before any work.

Before, ``neurodyn prepare --dataset mc_maze --nwb <MC_Maze_Small's test file> --phase test`` wrote an
``mc_maze`` file of 107 held-in units (MC_Maze has 137), and the val phase failed only because the file
has no train trials. The evidence is cheap (file name and size, the subject and size of the units table)
and must be unambiguous: neurodyn's simulated NLB-shaped files keep working under any ``--dataset``.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

from neurodyn.cli import main
from neurodyn.data import prepare as prepare_module
from neurodyn.data import stream
from neurodyn.data.nlb import DATASETS, find_file_by_name_and_size, find_file_by_units
from neurodyn.data.nwb import units_header
from neurodyn.data.prepare import prepare
from neurodyn.data.prepared import load_prepared
from neurodyn.data.synthetic.nlb_nwb import write_nlb_nwb

SMALL_NAME = "sub-Jenkins_ses-small_desc-test_ecephys.nwb"


def _refused(argv, capsys, out: Path, monkeypatch) -> str:
    """Run ``neurodyn prepare`` expecting the refusal; no full read, nothing written; returns stderr."""

    def no_full_read(*_args, **_kwargs):
        raise AssertionError("the file was read in full before the refusal")

    monkeypatch.setattr(prepare_module, "load_session", no_full_read)
    before = sorted(out.parent.iterdir())
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert sorted(out.parent.iterdir()) == before  # no output, no temporary or lock file
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in captured.err, captured.err
    return lines[0]


# ------------------------------------------------------------------------------------ registry
def test_every_registry_file_is_told_apart_by_its_units_table():
    files = [(ds, f, units) for ds in DATASETS.values()
             for f, units in ((ds.train_file, (ds.n_units, ds.n_heldout)), (ds.test_file, (ds.n_heldin, 0)))]
    assert len({(f.subject, *units) for _, f, units in files}) == len(files) == 14
    for ds, f, units in files:
        assert find_file_by_units(f.subject, *units) == (ds, f)
        assert find_file_by_units(None, *units) is None  # no subject (neurodyn's simulated files): no match
        assert find_file_by_units("Synth", *units) is None
        assert find_file_by_name_and_size(f.filename, f.size) == (ds, f)
        assert find_file_by_name_and_size(f.filename, f.size + 1) is None


# ------------------------------------------------------------------------------------ the real file
@pytest.mark.requires_data
@pytest.mark.parametrize("phase", ["test", "val"])
def test_real_small_file_as_mc_maze_is_refused(small_test_nwb, tmp_path, capsys, monkeypatch, phase):
    out = tmp_path / "out.h5"
    line = _refused(["prepare", "--dataset", "mc_maze", "--nwb", str(small_test_nwb), "--phase", phase,
                     "--out", str(out)], capsys, out, monkeypatch)
    assert line.startswith(f"neurodyn prepare: error: {small_test_nwb}: --dataset: ")
    assert "MC_Maze_Small's test file" in line and "use --dataset mc_maze_small" in line
    assert "name and size (689,312 bytes)" in line
    assert "units table (subject Jenkins, 107 units, 0 held out)" in line


@pytest.mark.requires_data
def test_real_small_file_as_mc_maze_from_python_names_the_argument(small_test_nwb, tmp_path):
    """prepare() from Python said '--dataset: ... use --dataset mc_maze_small', the option of neurodyn prepare
    (whose line the test above keeps); a Python caller reads its argument, dataset."""
    from neurodyn.errors import InputError

    with pytest.raises(InputError) as err:
        prepare("mc_maze", small_test_nwb, 5, "test", tmp_path / "out.h5", log=None)
    assert str(err.value).startswith(f"{small_test_nwb}: dataset: the file appears to be MC_Maze_Small's test file")
    assert str(err.value).endswith("; use dataset='mc_maze_small'") and "--" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.requires_data
@pytest.mark.parametrize("dataset", ["mc_maze", "mc_maze_large", "mc_maze_medium", "mc_rtt", "area2_bump",
                                     "dmfc_rsg"])
def test_renamed_real_file_is_refused_by_its_units_table(small_test_nwb, tmp_path, capsys, monkeypatch,
                                                        dataset):
    renamed = tmp_path / "nwb" / "mine.nwb"
    renamed.parent.mkdir()
    shutil.copyfile(small_test_nwb, renamed)
    out = tmp_path / "out.h5"
    line = _refused(["prepare", "--dataset", dataset, "--nwb", str(renamed.parent), "--phase", "test",
                     "--out", str(out)], capsys, out, monkeypatch)
    assert line.startswith(f"neurodyn prepare: error: {renamed}: --dataset: ")
    assert "MC_Maze_Small's test file" in line and "use --dataset mc_maze_small" in line
    assert "name and size" not in line and "subject Jenkins, 107 units, 0 held out" in line


@pytest.mark.requires_data
def test_renamed_real_file_under_its_own_dataset_is_prepared(small_test_nwb, tmp_path):
    renamed = tmp_path / "mine.nwb"
    shutil.copyfile(small_test_nwb, renamed)
    assert units_header(renamed) == ("Jenkins", 107, 0)
    prep = load_prepared(prepare("mc_maze_small", renamed, 5, "test", tmp_path / "out.h5", log=None))
    assert prep.eval_input["eval_spikes_heldin"].shape == (100, 140, 107)


# ------------------------------------------------------------------------------------ not NLB files
def test_simulated_file_with_nlb_name_and_unit_counts_is_not_refused(tmp_path):
    """DANDI's file name and MC_Maze_Small's units, but not its size nor a subject: no evidence, prepared."""
    nwb = write_nlb_nwb(tmp_path / SMALL_NAME, "mc_maze", n_trials=3, n_heldin=107, n_heldout=35, seed=0,
                        split="test")
    assert units_header(nwb) == (None, 107, 0)
    assert find_file_by_units(*units_header(nwb)) is None
    assert find_file_by_name_and_size(nwb.name, nwb.stat().st_size) is None
    prep = load_prepared(prepare("mc_maze", nwb, 5, "test", tmp_path / "out.h5", log=None))
    assert prep.eval_input["eval_spikes_heldin"].shape == (3, 140, 107)


def test_units_header_of_unreadable_files_is_none(tmp_path):
    text = tmp_path / "a.nwb"
    text.write_text("not HDF5")
    assert units_header(text) is None
    assert units_header(tmp_path / "missing.nwb") is None


# ------------------------------------------------------------------------------------ streamed
def _load_server():
    """tests/data/dandi_server.py, loaded by path (test folders are not packages)."""
    name = "neurodyn_tests_dandi_server"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("dandi_server.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.mark.requires_data
def test_streamed_real_file_is_refused_by_name_and_size_without_reading_it(small_test_nwb, tmp_path, capsys,
                                                                           monkeypatch):
    monkeypatch.setenv("DANDI_NO_ET", "1")
    monkeypatch.setattr(stream, "REQUEST_TIMEOUT_S", 10.0)
    with _load_server().Server() as dandi:
        monkeypatch.setenv("NEURODYN_DANDI_API", dandi.api)
        dandi.add("000140", "0.220113.0408", f"sub-Jenkins/{SMALL_NAME}", small_test_nwb)
        url = f"dandi://000140/sub-Jenkins/{SMALL_NAME}"
        out = tmp_path / "out.h5"
        line = _refused(["prepare", "--dataset", "mc_maze", "--nwb", url, "--phase", "test", "--out", str(out)],
                        capsys, out, monkeypatch)
        assert dandi.bytes_served <= 1  # none of the file's bytes: at most the one byte of its Range probe (its
        # answer's headers reach the client before the server counts the byte: 0 or 1)
    # the label is the address with the version it resolved to
    label = f"dandi://000140@0.220113.0408/sub-Jenkins/{SMALL_NAME}"
    assert line.startswith(f"neurodyn prepare: error: {label}: --dataset: ")
    assert "MC_Maze_Small's test file" in line and "name and size and DANDI's published SHA-256 (689,312 bytes)" in line
