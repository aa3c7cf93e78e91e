"""A write-protected folder (no write bit for anyone: ``chmod a-w``, mode 0555) takes no output, even as root.

Root's access(2) says yes to every folder, so a command run as root (CI, containers) wrote its output into a folder
the user had protected, while a write-protected file in it was refused by its mode bits. Folders now follow the
same rule: the mode bits are read, so these tests mean the same as root and as any other user. One line naming the
folder and the option, exit 2, before any work, and nothing written.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from neurodyn.cli import main
from neurodyn.errors import InputError
from neurodyn.io import output_file
from neurodyn.io.output import hold_folder

LORENZ = ["simulate", "lorenz", "--no-progress", "--n-conditions", "2", "--trials-per-condition", "2",
          "--n-neurons", "4", "--n-samples", "100"]
HMM_FIT = ["fit", "--model", "HMMGLMModule", "--model.config.n_states", "2", "--model.n_inner", "2", "--data",
           "SwitchingGLMDataModule", "--data.n_states", "2", "--data.n_neurons", "5", "--data.n_sequences", "5",
           "--data.n_bins", "100", "--data.n_train", "3", "--trainer.accelerator", "cpu",
           "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
           "--trainer.max_epochs", "1"]


@pytest.fixture
def protected(tmp_path) -> Path:
    folder = tmp_path / "protected"
    folder.mkdir()
    folder.chmod(0o555)
    yield folder
    assert list(folder.iterdir()) == [] and stat.S_IMODE(os.stat(folder).st_mode) == 0o555  # nothing written
    folder.chmod(0o755)


def _why(folder: Path) -> str:
    return f"folder {folder} is write-protected (mode 0555: no write bit)"


def _not_reached(*args, **kwargs):
    raise AssertionError("the command started its work before refusing its output folder")


@pytest.mark.parametrize("deeper", [False, True], ids=["in-it", "below-it"])
def test_prepare_refuses_an_out_in_a_write_protected_folder(protected, tmp_path, capsys, monkeypatch, deeper):
    from neurodyn.data import prepare
    from neurodyn.data.synthetic.nlb_nwb import write_nlb_nwb

    nwb = write_nlb_nwb(tmp_path / "test.nwb", "mc_maze", n_trials=4, n_heldin=3, n_heldout=2, seed=1, split="test")
    monkeypatch.setattr(prepare, "load_session", _not_reached)
    out = protected / "sub" / "x.h5" if deeper else protected / "x.h5"
    assert main(["prepare", "--dataset", "mc_maze", "--nwb", str(nwb), "--bin-ms", "20", "--phase", "test",
                 "--out", str(out)]) == 2
    why = f"cannot create folder {protected / 'sub'}: {_why(protected)}" if deeper else _why(protected)
    assert capsys.readouterr().err.strip() == f"neurodyn prepare: error: {out}: --out: {why}"


def test_simulate_refuses_an_out_in_a_write_protected_folder(protected, capsys, monkeypatch):
    import neurodyn.data.synthetic.lorenz as lorenz

    monkeypatch.setattr(lorenz, "simulate_lorenz", _not_reached)
    out = protected / "sim.h5"
    assert main([*LORENZ, "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == f"neurodyn simulate: error: {out}: --out: {_why(protected)}"


@pytest.mark.parametrize("how", ["root", "run-name", "below-root"])
def test_fit_refuses_a_run_folder_in_a_write_protected_folder(protected, capsys, how):
    root = protected / "runs" if how == "below-root" else protected
    extra = ["--run-name", "r"] if how == "run-name" else []
    assert main([*HMM_FIT, "--trainer.default_root_dir", str(root), *extra]) == 2
    why = f"cannot create folder {root}: {_why(protected)}" if how == "below-root" else _why(protected)
    assert capsys.readouterr().err.strip() == f"neurodyn fit: error: {root}: trainer.default_root_dir: {why}"


@pytest.mark.parametrize("deeper", [False, True], ids=["in-it", "below-it"])
def test_fit_says_a_write_protected_checkpoint_dirpath_is_write_protected(protected, tmp_path, capsys, deeper):
    """The checkpoint.dirpath refusals said 'permission denied' of a folder protected by its mode bits, which root
    (who is never denied) could not make sense of; they now say what the other refusals say."""
    dirpath = protected / "ck" if deeper else protected
    assert main([*HMM_FIT, "--trainer.default_root_dir", str(tmp_path / "runs"), "--checkpoint.dirpath",
                 str(dirpath)]) == 2
    why = (f"cannot make this folder: {protected} is not writable (write-protected, mode 0555: no write bit)"
           if deeper else "cannot write in this folder (write-protected, mode 0555: no write bit)")
    assert capsys.readouterr().err.strip() == f"neurodyn fit: error: {dirpath}: checkpoint.dirpath: {why}"
    assert not (tmp_path / "runs").exists()


def test_demo_refuses_an_out_in_a_write_protected_folder(protected, capsys):
    out = protected / "demo"
    assert main(["demo", "--out", str(out), "--epochs", "1"]) == 2
    assert capsys.readouterr().err.strip() == (f"neurodyn demo: error: {out / 'lorenz_rates.png'}: --out: cannot "
                                               f"create folder {out}: {_why(protected)}")


def test_the_output_helpers_refuse_a_write_protected_folder(protected):
    """output_file (every file output) and hold_folder (a run folder) refuse before their block runs."""
    with pytest.raises(InputError) as err:
        with output_file(protected / "x.h5"):
            raise AssertionError("the block ran")
    assert str(err.value) == f"{protected / 'x.h5'}: --out: {_why(protected)}"
    with pytest.raises(InputError) as err:
        with hold_folder(protected, field="run"):
            raise AssertionError("the block ran")
    assert str(err.value) == f"{protected}: run: {_why(protected)}"


@pytest.mark.parametrize("mode", [0o755, 0o575, 0o557], ids=oct)
def test_a_folder_with_a_write_bit_takes_the_output(tmp_path, mode):
    """Guard (passes before and after): a folder someone may write is not write-protected; the kernel decides
    whether this user may (root may)."""
    if os.geteuid() != 0 and mode != 0o755:
        pytest.skip("only root may write a folder whose owner's write bit is off")
    folder = tmp_path / "f"
    folder.mkdir()
    folder.chmod(mode)
    try:
        with output_file(folder / "x.h5") as tmp:
            tmp.write_bytes(b"new")
        assert (folder / "x.h5").read_bytes() == b"new"
    finally:
        folder.chmod(0o755)
