"""A Python caller of the DataModules reads its own argument names in their errors (they named the config keys
``data.init_args.trials_per_condition``, ``data.batch_size``, ...); the training commands, which build the
DataModules inside :func:`neurodyn.errors.command_line_names`, still name the config keys (tests in
test_harness, test_hmmglm_harness, test_cli_defaults, test_run_folders, test_datamodule_seeds)."""

from __future__ import annotations

import numpy as np
import pytest

from neurodyn.data.synthetic.switching_glm import simulate_switching_glm, write_switching_glm_h5
from neurodyn.errors import InputError, command_line_names
from neurodyn.training.datamodules import (
    ArrayDataModule,
    LorenzDataModule,
    NLBDataModule,
    SwitchingGLMDataModule,
    assemble_split,
)

SMALL = dict(n_conditions=2, trials_per_condition=4)


def _file(folder):
    (folder / "afile").write_text("mine")
    return folder / "afile"


def _arrays(**kwargs):
    x = np.random.default_rng(0).poisson(0.3, (10, 20, 5)).astype(float)
    return ArrayDataModule(assemble_split(x[:8, :, :3], x[:8, :, 3:]), assemble_split(x[8:, :, :3], x[8:, :, 3:]),
                           **kwargs)


@pytest.mark.parametrize("make,field,words", [
    (lambda tmp: LorenzDataModule(n_conditions=1, trials_per_condition=2), "trials_per_condition", "no validation"),
    (lambda tmp: LorenzDataModule(seed=-1, **SMALL), "seed", "whole number"),
    (lambda tmp: LorenzDataModule(batch_size=0, **SMALL), "batch_size", ">= 1"),
    (lambda tmp: LorenzDataModule(select_fraction=0.99, **SMALL), "select_fraction", "leaving none"),
    (lambda tmp: _arrays(select_fraction=0.25, select_seed=-1), "select_seed", "whole number"),
    (lambda tmp: LorenzDataModule(cache=str(_file(tmp) / "c.h5"), **SMALL), "cache", "is a file, not a folder"),
    (lambda tmp: NLBDataModule(str(tmp / "x.h5"), dataset="mc_mazes"), "dataset", "unknown NLB dataset"),
    (lambda tmp: SwitchingGLMDataModule(n_sequences=5, n_bins=50, n_train=10), "n_train", "between 1 and 4"),
])
def test_a_python_caller_reads_its_argument_names(tmp_path, make, field, words):
    with pytest.raises(InputError) as err:
        make(tmp_path)
    assert err.value.field == field and words in err.value.message, str(err.value)
    assert "data." not in str(err.value) and "--" not in str(err.value), str(err.value)
    with command_line_names(), pytest.raises(InputError) as err:  # as the training commands build them
        make(tmp_path)
    assert err.value.field == f"data.init_args.{field}", str(err.value)


def test_the_file_and_cache_refusals_say_what_a_python_caller_passes(tmp_path):
    path = tmp_path / "sim.h5"
    write_switching_glm_h5(path, simulate_switching_glm(n_states=2, n_neurons=4, n_sequences=3, n_bins=50, seed=7))
    with pytest.raises(InputError) as err:
        SwitchingGLMDataModule(path=str(path), n_states=5, n_neurons=6, n_train=2)
    assert err.value.field == "n_states", str(err.value)
    assert "give None for n_states, n_neurons (or leave them out)" in err.value.message, str(err.value)
    cache = tmp_path / "lorenz.h5"
    LorenzDataModule(seed=1, cache=str(cache), **SMALL)
    with pytest.raises(InputError) as err:
        LorenzDataModule(seed=2, cache=str(cache), **SMALL)
    assert err.value.field == "cache" and "delete it or pass another cache" in err.value.message, str(err.value)
    with command_line_names(), pytest.raises(InputError) as err:
        LorenzDataModule(seed=2, cache=str(cache), **SMALL)
    # the option starts the line; "--data.cache" was named in the text too, an option neurodyn tune (config files
    # only) does not have
    assert err.value.field == "data.init_args.cache" and err.value.message.endswith("delete it or name another "
                                                                                    "cache file"), str(err.value)
