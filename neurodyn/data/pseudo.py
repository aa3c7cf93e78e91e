"""Pseudo co-smoothing on a file without held-out units (a real-data check of a latent model).

NLB test files carry no held-out units, so this split hides some of the held-in ones: a model sees the
remaining units and predicts the hidden ones' rates, scored with the NLB ``bits_per_spike`` formula.
The defaults are neurodyn's fixed split of the MC_Maze_Small test file (DANDI:000140): hold out 27
of the 107 units (``numpy.random.default_rng(0).choice(107, 27, replace=False)``), train on trials
0-79, evaluate on trials 80-99, 5 ms bins over move onset -250..+450 ms.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurodyn.errors import InputError, check_whole, whole_number

__all__ = ["PseudoSplit", "pseudo_cosmoothing_split", "rebin", "selection_split", "spread"]


@dataclass(frozen=True)
class PseudoSplit:
    """Spike counts (trials, bins, units) of a pseudo co-smoothing split, float64.

    ``heldout_units`` / ``heldin_units`` index the file's units (sorted); ``bin_ms`` is the bin width.
    """

    train_heldin: np.ndarray
    train_heldout: np.ndarray
    eval_heldin: np.ndarray
    eval_heldout: np.ndarray
    heldin_units: np.ndarray
    heldout_units: np.ndarray
    bin_ms: int

    def parts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(train_heldin, train_heldout, eval_heldin, eval_heldout)."""
        return self.train_heldin, self.train_heldout, self.eval_heldin, self.eval_heldout



def pseudo_cosmoothing_split(nwb: str | os.PathLike, dataset: str = "mc_maze_small", *, n_heldout: int = 27,
                             n_train: int = 80, seed: int = 0, bin_ms: int = 5) -> PseudoSplit:
    """Bin an NLB test file (nlb_tools semantics) and split its units and trials.

    Parameters
    ----------
    nwb
        The NLB test-phase NWB file (e.g. ``sub-Jenkins_ses-small_desc-test_ecephys.nwb``).
    dataset
        Registry name (:func:`neurodyn.data.nlb.get_dataset`), for the trial window.
    n_heldout
        Units hidden from the model: ``default_rng(seed).choice(n_units, n_heldout, replace=False)``.
    n_train
        The first ``n_train`` trials train, the rest evaluate.
    seed, bin_ms
        Seed of the unit choice; bin width in ms.

    Raises
    ------
    InputError
        Naming the argument: ``n_heldout``, ``n_train`` or ``seed`` that is not a whole number (>= 1; the
        seed >= 0), refused before the file is read, or counts that leave no unit or trial on one side.

    Examples
    --------
    >>> split = pseudo_cosmoothing_split(path)  # doctest: +SKIP
    >>> split.train_heldin.shape, split.eval_heldout.shape  # doctest: +SKIP
    ((80, 140, 80), (20, 140, 27))
    """
    from neurodyn.data.prepare import prepare
    from neurodyn.data.prepared import load_prepared

    # before the file is binned: 27.5 was numpy's TypeError from rng.choice, 80.5 a slice error, -1 a seed error
    n_heldout = check_whole(n_heldout, "n_heldout", 1)
    n_train = check_whole(n_train, "n_train", 1)
    seed = check_whole(seed, "seed", 0)
    with tempfile.TemporaryDirectory() as tmp:
        out = prepare(dataset, nwb, bin_ms=bin_ms, phase="test", out=Path(tmp) / "split.h5", log=None)
        spikes = load_prepared(out).eval_input["eval_spikes_heldin"].astype(np.float64)
    n_trials, _, n_units = spikes.shape
    if not 0 < n_heldout < n_units:
        raise InputError(f"must be between 1 and {n_units - 1} (the file has {n_units} units)", path=str(nwb),
                         field="n_heldout")
    if not 0 < n_train < n_trials:
        raise InputError(f"must be between 1 and {n_trials - 1} (the file has {n_trials} trials)", path=str(nwb),
                         field="n_train")
    heldout = np.random.default_rng(seed).choice(n_units, n_heldout, replace=False)
    heldin = np.setdiff1d(np.arange(n_units), heldout)
    return PseudoSplit(spikes[:n_train][..., heldin], spikes[:n_train][..., heldout], spikes[n_train:][..., heldin],
                       spikes[n_train:][..., heldout], heldin, heldout, bin_ms)


def selection_split(split: PseudoSplit, n_select: int = 16, *, field: str = "n_select") -> PseudoSplit:
    """Fit / select view of a split's *training* trials: the last ``n_select`` of them become the trials
    scored, the others train. The split's evaluation trials are not part of it at all, so settings chosen
    by scoring this view are chosen without them (fit / select / report). An ``n_select`` that leaves no
    trial to fit or select is refused naming ``field`` (a script's option: ``--n-select``).

    >>> x = np.zeros((10, 4, 3))
    >>> s = PseudoSplit(x[:8, :, :2], x[:8, :, 2:], x[8:, :, :2], x[8:, :, 2:], np.arange(2), np.arange(2, 3), 5)
    >>> v = selection_split(s, 3); v.train_heldin.shape[0], v.eval_heldin.shape[0]
    (5, 3)
    """
    n_train = split.train_heldin.shape[0]
    n_select = check_whole(n_select, field)  # 2.5 was a slice error, True one trial
    if not 0 < n_select < n_train:
        raise InputError(f"must be between 1 and {n_train - 1} (the split has {n_train} training trials)",
                         field=field)
    cut = n_train - n_select
    return PseudoSplit(split.train_heldin[:cut], split.train_heldout[:cut], split.train_heldin[cut:],
                       split.train_heldout[cut:], split.heldin_units, split.heldout_units, split.bin_ms)


def rebin(counts: np.ndarray, factor: int) -> np.ndarray:
    """Sum ``factor`` consecutive bins of (trials, bins, units) counts (e.g. 5 ms -> 20 ms with 4).

    >>> rebin(np.arange(8.0).reshape(1, 4, 2), 2)[0].tolist()
    [[2.0, 4.0], [10.0, 12.0]]
    """
    counts = np.asarray(counts)
    if counts.ndim != 3:
        raise InputError(f"expected (trials, bins, units), got shape {counts.shape}", field="counts")
    factor = _factor(factor)
    n_trials, n_bins, n_units = counts.shape
    if n_bins % factor:
        raise InputError(f"{n_bins} bins are not a multiple of factor {factor}", field="factor")
    return counts.reshape(n_trials, n_bins // factor, factor, n_units).sum(2)


def spread(rates: np.ndarray, factor: int) -> np.ndarray:
    """Inverse of :func:`rebin` for rates: each coarse bin's rate split evenly over its ``factor`` bins.

    >>> spread(np.array([[[4.0], [8.0]]]), 2)[0, :, 0].tolist()
    [2.0, 2.0, 4.0, 4.0]
    """
    rates = np.asarray(rates)
    if rates.ndim != 3:
        raise InputError(f"expected (trials, bins, units), got shape {rates.shape}", field="rates")
    factor = _factor(factor)
    return np.repeat(rates / factor, factor, axis=1)


def _factor(factor) -> int:
    """A whole number of bins >= 1 (2.5 divided the rates by 2.5 and repeated them twice, losing counts)."""
    whole = whole_number(factor)  # Python, numpy (0-d too) and torch integers; not 2.5, not True
    if whole is None or whole < 1:
        raise InputError(f"must be a positive integer, got {factor!r}", field="factor")
    return whole
