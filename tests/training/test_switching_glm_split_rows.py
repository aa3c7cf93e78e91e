"""``SwitchingGLMDataModule.sequence_ids`` names the sequences each split was actually cut from: it worked the
train / valid rows out again from ``n_train`` beside the slices that cut the splits, two copies of one rule that
nothing held together."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("from_file, n_train", [(False, 1), (False, 4), (True, 3)])
def test_each_splits_ids_are_the_sequences_its_rows_hold(tmp_path, from_file, n_train):
    """Every row of train and valid holds the spikes and true states of the simulation's sequence its id names
    (the split's spike rows are the held-in counts of ``assemble_split``), and together the ids are each sequence
    once."""
    from neurodyn.data.synthetic.switching_glm import simulate_switching_glm, write_switching_glm_h5
    from neurodyn.training.datamodules.sources import SwitchingGLMDataModule

    sizes = {"n_states": 2, "n_neurons": 3, "n_sequences": 5, "n_bins": 30, "seed": 1}
    if from_file:
        path = tmp_path / "sim.h5"
        write_switching_glm_h5(path, simulate_switching_glm(**sizes))
        dm = SwitchingGLMDataModule(path=str(path), n_train=n_train)
    else:
        dm = SwitchingGLMDataModule(n_train=n_train, **sizes)
    ids = dm.sequence_ids()
    sim = dm.simulation
    for split in ("train", "valid"):
        rows = dm.splits[split]
        assert ids[split].dtype == np.int64 and len(ids[split]) == len(rows.heldin), split
        np.testing.assert_array_equal(rows.heldin, np.asarray(sim.spikes, dtype=np.float32)[ids[split]])
        np.testing.assert_array_equal(rows.extras["true_states"], sim.states[ids[split]])
    assert sorted([*ids["train"], *ids["valid"]]) == list(range(len(sim.spikes)))


def test_the_ids_stay_those_of_the_rows_loaded_when_n_train_changes_after():
    """The ids follow the rows the splits hold, not the attribute: ``n_train`` set on the module after it loaded
    (its data are read once, when it is made) moved the ids off the rows (valid ids [2, 3, 4] for rows of
    sequences 3 and 4)."""
    from neurodyn.training.datamodules.sources import SwitchingGLMDataModule

    dm = SwitchingGLMDataModule(n_states=2, n_neurons=3, n_sequences=5, n_bins=30, seed=1, n_train=3)
    dm.n_train = 2
    ids = dm.sequence_ids()
    assert ids["train"].tolist() == [0, 1, 2] and ids["valid"].tolist() == [3, 4]
    np.testing.assert_array_equal(dm.splits["valid"].extras["true_states"], dm.simulation.states[ids["valid"]])
