"""Pseudo co-smoothing split of a real NLB test file, and the rebin / spread helpers."""

from __future__ import annotations

import numpy as np
import pytest

from neurodyn.data.pseudo import pseudo_cosmoothing_split, rebin, spread
from neurodyn.errors import InputError


def test_rebin_sums_and_spread_preserves_totals():
    x = np.random.default_rng(0).poisson(0.3, (3, 12, 4)).astype(float)
    coarse = rebin(x, 4)
    assert coarse.shape == (3, 3, 4)
    np.testing.assert_array_equal(coarse[:, 1], x[:, 4:8].sum(1))
    fine = spread(coarse, 4)
    assert fine.shape == x.shape
    np.testing.assert_allclose(rebin(fine, 4), coarse)  # spreading then summing is the identity


def test_rebin_rejects_ragged_factor():
    with pytest.raises(InputError, match="not a multiple"):
        rebin(np.zeros((1, 10, 2)), 4)


@pytest.mark.parametrize("factor", [2.5, 0, -1, True])
def test_spread_and_rebin_take_whole_factors_only(factor):
    """spread(r, 2.5) divided by 2.5 and repeated twice (3.2 spikes of 4.0), spread(r, 0) gave an empty axis
    with a divide-by-zero warning, rebin(x, 2.5) a TypeError (helper-50)."""
    for function in (spread, rebin):
        with pytest.raises(InputError, match="factor: must be a positive integer"):
            function(np.ones((1, 10, 2)), factor)
    assert spread(np.ones((1, 2, 1)), np.array(2)).shape == (1, 4, 1)  # a 0-d integer array, as before


@pytest.mark.requires_data
def test_split_matches_the_data_readme(small_test_nwb):
    split = pseudo_cosmoothing_split(small_test_nwb)
    heldout = np.random.default_rng(0).choice(107, 27, replace=False)
    assert sorted(split.heldout_units.tolist()) == sorted(heldout.tolist())
    assert split.train_heldin.shape == (80, 140, 80) and split.eval_heldout.shape == (20, 140, 27)
    # the four blocks partition the file's counts: README mean 0.02196 spikes per 5 ms bin
    total = sum(float(p.sum()) for p in split.parts())
    assert total / (100 * 140 * 107) == pytest.approx(0.02196, abs=5e-6)


@pytest.mark.requires_data
def test_split_rejects_bad_counts(small_test_nwb):
    with pytest.raises(InputError, match="n_heldout"):
        pseudo_cosmoothing_split(small_test_nwb, n_heldout=107)


@pytest.mark.parametrize("kwargs, field", [
    (dict(n_heldout=27.5), "n_heldout"), (dict(n_heldout=True), "n_heldout"), (dict(n_heldout="27"), "n_heldout"),
    (dict(n_train=80.5), "n_train"), (dict(seed=-1), "seed"), (dict(seed=2.5), "seed"),
])
def test_split_refuses_counts_and_seeds_that_are_not_whole_numbers_before_reading(tmp_path, kwargs, field):
    """n_heldout=27.5 was numpy's 'expected a sequence of integers' TypeError from inside rng.choice (True: the
    same), n_train=80.5 a slice TypeError, seed=-1 / 2.5 numpy's ValueError / TypeError, each after the whole file
    was binned; each is now one InputError naming the argument, before the file is read (here: there is none)."""
    with pytest.raises(InputError) as err:
        pseudo_cosmoothing_split(tmp_path / "absent.nwb", **kwargs)
    assert err.value.field == field and "whole number" in err.value.message, str(err.value)


def test_selection_split_refuses_a_count_that_is_not_a_whole_number():
    from neurodyn.data.pseudo import PseudoSplit, selection_split

    x = np.zeros((10, 2, 3))
    s = PseudoSplit(x[:8, :, :2], x[:8, :, 2:], x[8:, :, :2], x[8:, :, 2:], np.arange(2), np.arange(2, 3), 5)
    for bad in (2.5, True):  # 2.5 was a slice TypeError, True selected one trial
        with pytest.raises(InputError, match="n_select: must be a whole number"):
            selection_split(s, bad)
    assert selection_split(s, np.int64(3)).eval_heldin.shape[0] == 3


def test_selection_split_uses_training_trials_only():
    from neurodyn.data.pseudo import PseudoSplit, selection_split

    x = np.arange(10 * 2 * 3, dtype=float).reshape(10, 2, 3)
    s = PseudoSplit(x[:8, :, :2], x[:8, :, 2:], x[8:, :, :2], x[8:, :, 2:], np.arange(2), np.arange(2, 3), 5)
    v = selection_split(s, 3)
    np.testing.assert_array_equal(v.train_heldin, x[:5, :, :2])
    np.testing.assert_array_equal(v.eval_heldout, x[5:8, :, 2:])
    # no evaluation trial of the original split appears anywhere in the view
    seen = np.concatenate([v.train_heldin, v.eval_heldin])
    assert not np.isin(s.eval_heldin, seen).any()
    with pytest.raises(InputError, match="^n_select: must be between 1 and 7 "):
        selection_split(s, 8)
    # a script names its option (real_pseudo_cosmoothing.py's --n-select)
    with pytest.raises(InputError, match=r"^--n-select: must be between 1 and 7 \(the split has 8 training trials\)$"):
        selection_split(s, 0, field="--n-select")
