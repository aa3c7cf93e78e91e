"""PSTH R² of the Neural Latents Benchmark (nlb_tools' ``eval_psth``, our own code)."""

from __future__ import annotations

import numpy as np

from neurodyn.core.arrays import to_numpy
from neurodyn.errors import InputError
from neurodyn.metrics.bits import as_float64, check_rates, check_shape


def _whole_values(values: np.ndarray) -> bool:
    """Whether every entry of a float array is a finite whole number (a trial index, a shift in bins)."""
    return bool(np.isfinite(values).all() and (values == np.round(values)).all())


def as_index_list(cond_idx, field: str = "eval_cond_idx") -> list[np.ndarray]:
    """Normalise ``*_cond_idx`` (list of arrays, ragged HDF5 rows, 2-D array) to a list of int arrays.

    NaN entries (padding of a rectangular float array) are dropped; any other entry that is not a whole number
    is an :class:`~neurodyn.errors.InputError` naming ``field``.

    Examples
    --------
    >>> as_index_list(np.array([[0, 2], [1, 3]]))
    [array([0, 2]), array([1, 3])]
    """
    rows = (
        list(cond_idx)
        if not isinstance(cond_idx, np.ndarray) or cond_idx.dtype == object
        else list(np.atleast_2d(cond_idx))
    )
    out = []
    for row in rows:
        row = np.atleast_1d(to_numpy(row))
        if row.dtype.kind == "f":
            row = row[~np.isnan(row)]
            if not _whole_values(row):  # 1.5 was trial 1
                raise InputError(f"trial indices must be whole numbers, got {row.tolist()}", field=field)
        elif row.dtype.kind not in "iu" and row.size:
            raise InputError(f"trial indices must be whole numbers, got dtype {row.dtype}", field=field)
        out.append(row.astype(np.int64))
    return out


def shift_trials(rates: np.ndarray, jitter: np.ndarray) -> np.ndarray:
    """Shift each trial by its jitter in bins, filling with NaN (nlb_tools' ``jitter_trial``).

    Positive jitter moves the trial later (NaN at the front, last bins dropped); negative moves it
    earlier (first bins dropped, NaN at the end). Shapes: rates (trials, bins, neurons), jitter (trials,).

    Examples
    --------
    >>> shift_trials(np.arange(3.0)[None, :, None], np.array([1]))[0, :, 0]
    array([nan,  0.,  1.])
    """
    out = np.full(rates.shape, np.nan)
    n_bins = rates.shape[1]
    for i, shift in enumerate(np.asarray(jitter, dtype=np.int64)):
        if shift == 0:
            out[i] = rates[i]
        elif 0 < shift < n_bins:
            out[i, shift:] = rates[i, :-shift]
        elif -n_bins < shift < 0:
            out[i, :shift] = rates[i, -shift:]
    return out


def psth_r2(psth, eval_rates, eval_cond_idx, jitter=None) -> float:
    r"""R² between condition-averaged predicted rates and the true PSTHs, mean over neurons.

    For each condition ``c`` with eval trials :math:`I_c`, the predicted PSTH is the mean over
    :math:`I_c` of the jitter-shifted rates; rows (bins) where ``psth[c, :, 0]`` is NaN are dropped;
    rows of all conditions are stacked and scored with ``sklearn.metrics.r2_score(true, pred)``
    (uniform average over neurons).

    Parameters
    ----------
    psth : array (conditions, bins, n_heldin + n_heldout)
        True PSTHs (counts per bin), NaN where undefined (bins where neuron 0 is NaN); within the defined bins,
        NaN, infinite or negative values are refused.
    eval_rates : array (trials, bins, n_heldin + n_heldout)
        Predicted rates of all eval trials (counts per bin); NaN, infinite or negative rates that enter a
        PSTH are refused (as :func:`~neurodyn.metrics.bits.bits_per_spike` refuses them).
    eval_cond_idx : list of int arrays
        Eval-trial indices of each condition (ragged); empty conditions are skipped.
    jitter : int array (trials,), optional
        Per-trial shift in bins (DMFC_RSG); zero if omitted.

    Examples
    --------
    >>> psth = np.array([[[1.0], [2.0]], [[3.0], [5.0]]])
    >>> rates = np.concatenate([psth, psth])
    >>> psth_r2(psth, rates, [np.array([0, 2]), np.array([1, 3])])
    1.0
    """
    from sklearn.metrics import r2_score

    psth = as_float64(psth, "psth")
    eval_rates = as_float64(eval_rates, "eval_rates")
    check_shape(psth, (None, None, None), "psth")  # (conditions, bins, neurons): an IndexError before
    # bins are undefined where neuron 0 is NaN (nlb_tools' rule); within the defined bins a value that is NaN (sklearn's
    # "Input contains NaN" before), infinite or below zero is no PSTH of counts
    check_rates(psth, "psth", mask=np.broadcast_to(~np.isnan(psth[..., :1]), psth.shape), what="PSTH rates")
    cond_idx = as_index_list(eval_cond_idx)
    check_shape(eval_rates, (None, psth.shape[1], psth.shape[2]), "eval_rates")
    if len(cond_idx) != psth.shape[0]:
        raise InputError(
            f"{len(cond_idx)} conditions in eval_cond_idx but {psth.shape[0]} PSTHs", field="eval_cond_idx"
        )
    if jitter is None:
        jitter = np.zeros(len(eval_rates), dtype=np.int64)
    jitter = as_float64(jitter, "eval_jitter")
    check_shape(jitter, (len(eval_rates),), "eval_jitter")
    if not _whole_values(jitter):  # 0.5 was a shift of 0
        raise InputError("shifts must be whole numbers of bins", field="eval_jitter")
    shifted = shift_trials(eval_rates, jitter)
    scored = np.zeros(shifted.shape[:2], dtype=bool)  # (trial, shifted bin) entries that enter a PSTH
    true_rows, pred_rows = [], []
    for condition, trials in enumerate(cond_idx):
        if trials.size == 0:
            continue
        if trials.min() < 0 or trials.max() >= len(eval_rates):
            raise InputError(f"trial index out of range 0..{len(eval_rates) - 1}", field="eval_cond_idx")
        keep = ~np.isnan(psth[condition, :, 0])
        scored[np.ix_(trials, keep)] = True
        predicted = shifted[trials].mean(axis=0)[keep]
        if np.isnan(predicted).any() or np.isinf(predicted).any():
            raise InputError("NaN or infinite rate predictions within the PSTH bins", field="eval_rates")
        true_rows.append(psth[condition][keep])
        pred_rows.append(predicted)
    if not true_rows:
        raise InputError("no condition has eval trials", field="eval_cond_idx")
    if not sum(len(rows) for rows in true_rows):
        raise InputError("no bin with a defined PSTH (all NaN)", field="psth")
    negative = (shifted < 0) & scored[..., None]
    if negative.any():  # as bits_per_spike (check_rates) refuses them; index in eval_rates, before the shift
        trial, shifted_bin, neuron = (int(i) for i in np.argwhere(negative)[0])
        first = (trial, shifted_bin - int(jitter[trial]), neuron)
        raise InputError(f"negative rate predictions ({int(negative.sum())} entries, first at index {first})",
                         field="eval_rates")
    return float(r2_score(np.vstack(true_rows), np.vstack(pred_rows)))
