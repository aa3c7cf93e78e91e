"""Seeds of the DataModules out of range are one line naming the option, exit 2.

``--data.seed -1`` reached ``numpy.random.default_rng`` and ended in its ValueError traceback (exit 1) for
LorenzDataModule and SwitchingGLMDataModule; ``--data.select_seed -1`` did the same when a select split was
carved.
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from neurodyn.cli import main
from neurodyn.errors import STORED_SEED_MAX, InputError
from neurodyn.training.datamodules import ArrayDataModule, LorenzDataModule, SwitchingGLMDataModule, assemble_split

WORDS = f"must be a whole number from 0 to {STORED_SEED_MAX}, got"


@pytest.mark.parametrize(("argv", "expected"), [
    (["--data.seed", "-1"], f"data.init_args.seed: {WORDS} -1"),
    (["--data.seed", str(STORED_SEED_MAX + 1)], f"data.init_args.seed: {WORDS} {STORED_SEED_MAX + 1}"),
    (["--data", "SwitchingGLMDataModule", "--model", "HMMGLMModule", "--data.seed", "-1"],
     f"data.init_args.seed: {WORDS} -1"),
    (["--data.select_fraction", "0.2", "--data.select_seed", "-1"], f"data.init_args.select_seed: {WORDS} -1"),
])
def test_out_of_range_seeds_are_one_line(tmp_path, capsys, argv, expected):
    assert main(["fit", *argv, "--trainer.default_root_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"neurodyn fit: error: {expected}"], err


def test_a_seed_from_a_config_file_names_the_file(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"class_path": "SwitchingGLMDataModule", "init_args": {"seed": -5}},
                                   "model": {"class_path": "HMMGLMModule"}}))
    assert main(["fit", "--config", str(cfg), "--trainer.default_root_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"neurodyn fit: error: {cfg}: data.init_args.seed: {WORDS} -5"], err


@pytest.mark.parametrize("make", [
    lambda: LorenzDataModule(seed=-1),
    lambda: SwitchingGLMDataModule(seed=-1),
    lambda: LorenzDataModule(n_conditions=2, trials_per_condition=2, select_seed=-1),
])
def test_the_classes_refuse_them_before_simulating(make):
    with pytest.raises(InputError, match="seed: must be a whole number"):
        make()


def test_array_datamodule_select_seed():
    x = np.random.default_rng(0).poisson(0.3, (10, 20, 5)).astype(float)
    train, valid = assemble_split(x[:8, :, :3], x[:8, :, 3:]), assemble_split(x[8:, :, :3], x[8:, :, 3:])
    with pytest.raises(InputError, match="^select_seed: "):  # a Python caller: its argument's name
        ArrayDataModule(train, valid, select_fraction=0.25, select_seed=-1)
    largest = ArrayDataModule(train, valid, select_fraction=0.25, select_seed=STORED_SEED_MAX)
    assert largest.select_seed == STORED_SEED_MAX
