"""Peri-stimulus time histograms of the NLB eval target (``nlb_tools.make_tensors._make_psth``).

Recipe (nlb_tools 0.0.4, MIT): spikes are smoothed on the 1 ms grid with a Gaussian of ``sigma`` ms
(``scipy.signal.windows.gaussian(int(6 * sigma), sigma)`` normalised to sum 1, ``'same'`` convolution
within each observed stretch, NaN outside), summed into bins (a bin starting on NaN is NaN), and averaged
per condition over every non-ignored, non-skipped trial of any split, bin by bin relative to the
alignment bin. Trials shorter than 0.8x the condition's mean length are dropped; each PSTH is trimmed to
its shortest remaining trial (DMFC: from the front, keeping the bins before ``go``) and the PSTHs are
padded with NaN to a common length. ``train_cond_idx`` / ``eval_cond_idx`` list, per condition, the
positions of its (kept) trials among the train / eval trials.

Here the smoothing is done per trial window (with the kernel's reach on either side), never over a
1 ms array of the whole session; values agree with nlb_tools to floating-point round-off (nlb_tools
convolves float16 spikes, which scipy's FFT path carries in float32).
"""

from __future__ import annotations

import numpy as np

from neurodyn.data.binning import observed_at, require_group, trial_windows
from neurodyn.data.nlb import NLBDataset
from neurodyn.data.nwb import NWBSession
from neurodyn.errors import InputError


def gaussian_kernel(sigma_ms: float) -> np.ndarray:
    """nlb_tools' smoothing kernel on the 1 ms grid: ``int(6 * sigma)`` samples, unit sum."""
    from scipy.signal.windows import gaussian

    w = gaussian(int(6 * sigma_ms), sigma_ms, sym=True)
    return w / np.sum(w)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


def smoothed_bins(
    session: NWBSession, heldout: bool, first_bin: int, n_bins: int, bin_ms: int, kernel: np.ndarray
) -> np.ndarray:
    """Smoothed spikes of one unit group summed into ``n_bins`` bins from ``first_bin``: ``(n_bins, units)``.

    The smoothing runs over the window plus the kernel's reach on either side; within each observed
    stretch it equals nlb_tools' ``'same'`` convolution of the whole stretch.
    """
    from scipy.signal import fftconvolve

    units = session.group(heldout)
    size = len(kernel)
    half = (size - 1) // 2  # 'same' keeps full-convolution samples [half, half + n)
    m0 = first_bin * bin_ms
    m1 = min((first_bin + n_bins) * bin_ms, session.n_ms)
    e0 = max(m0 - (size - 1 - half), 0)
    e1 = min(m1 + half, session.n_ms)
    length = e1 - e0
    x = np.zeros((length, len(units)))
    for j, u in enumerate(units):
        s = session.spike_ms[u]
        lo, hi = np.searchsorted(s, [e0, e1])
        x[:, j] = np.bincount(s[lo:hi] - e0, minlength=length)
    observed = observed_at(session.observed_ms[heldout], np.arange(e0, e1))
    y = np.full_like(x, np.nan)
    for a, b in _runs(observed):
        y[a:b] = fftconvolve(x[a:b], kernel[:, None], mode="same", axes=0)
    # sum into bins; the bins past the session end are partial, as in nlb_tools' resample
    r0 = m0 - e0
    block = np.zeros((n_bins * bin_ms, len(units)))
    avail = min(n_bins * bin_ms, length - r0)
    block[:avail] = np.nan_to_num(y[r0 : r0 + avail])
    out = block.reshape(n_bins, bin_ms, len(units)).sum(axis=1)
    out[np.isnan(y[r0 + np.arange(n_bins) * bin_ms])] = np.nan
    return out


def _binned_kernel(kernel: np.ndarray, n_bins: int, bin_ms: int) -> np.ndarray:
    """Matrix ``A`` with ``A[b, j]`` = bin ``b``'s share of a spike at ms ``j`` of the extended window.

    Column ``j`` stands for millisecond ``m0 - (size - 1 - half) + j`` (``m0``: the window's first ms);
    ``'same'`` convolution puts ``kernel[i + half - j']`` on ms ``i`` for a spike at ``j'``.
    """
    size = len(kernel)
    half = (size - 1) // 2
    i = np.arange(n_bins * bin_ms)[:, None]
    j = np.arange(n_bins * bin_ms + size - 1)[None, :] - (size - 1 - half)
    k = i + half - j
    weights = np.where((k >= 0) & (k < size), kernel[np.clip(k, 0, size - 1)], 0.0)
    return weights.reshape(n_bins, bin_ms, -1).sum(axis=1)


def smoothed_windows(
    session: NWBSession,
    heldout: bool,
    first_bin: np.ndarray,
    n_bins: np.ndarray,
    bin_ms: int,
    kernel: np.ndarray,
) -> list[np.ndarray]:
    """:func:`smoothed_bins` for many windows: a list of ``(n_bins[i], units)`` arrays.

    Windows whose kernel reach stays inside one observed stretch (the usual case) are done at once as a
    linear map of their 1 ms counts; the others go through :func:`smoothed_bins`.
    """
    first_bin = np.asarray(first_bin, dtype=np.int64)
    n_bins = np.asarray(n_bins, dtype=np.int64)
    size = len(kernel)
    half = (size - 1) // 2
    e0 = first_bin * bin_ms - (size - 1 - half)
    e1 = (first_bin + n_bins) * bin_ms + half
    iv = session.observed_ms[heldout]
    run = np.searchsorted(iv[:, 0], e0, side="right") - 1 if len(iv) else np.full(len(e0), -1)
    fast = (run >= 0) & (e0 >= 0) & (e1 <= session.n_ms)
    fast &= e1 <= np.where(run >= 0, iv[np.maximum(run, 0), 1] if len(iv) else 0, 0)
    out: list[np.ndarray] = [None] * len(first_bin)  # type: ignore[list-item]
    rows = np.flatnonzero(fast)
    if len(rows):
        n_max = int(n_bins[rows].max())
        # one row per millisecond of the extended window, plus a zero row for windows without spikes
        a = np.vstack([_binned_kernel(kernel, n_max, bin_ms).T, np.zeros((1, n_max))])
        units = session.group(heldout)
        y = np.empty((len(rows), n_max, len(units)))
        starts, stops = e0[rows], e1[rows]
        for j, u in enumerate(units):
            s = session.spike_ms[u]
            lo, hi = np.searchsorted(s, starts), np.searchsorted(s, stops)
            count = hi - lo
            first = np.cumsum(count) - count  # where each window's spikes start in the gathered list
            idx = np.repeat(lo - first, count) + np.arange(count.sum())
            rel = s[idx] - np.repeat(starts, count)  # each spike's column of the extended window
            sums = np.add.reduceat(a[np.append(rel, len(a) - 1)], first, axis=0)
            sums[count == 0] = 0.0
            y[:, :, j] = sums
        for r, i in enumerate(rows):
            out[i] = y[r, : n_bins[i]]
    for i in np.flatnonzero(~fast):
        out[i] = smoothed_bins(session, heldout, int(first_bin[i]), int(n_bins[i]), bin_ms, kernel)
    return out


def _keys(session: NWBSession, fields: tuple[str, ...]) -> list[tuple | None]:
    cols = [session.column(f, "the PSTH conditions").tolist() for f in fields]
    keys: list[tuple | None] = []
    for values in zip(*cols):
        bad = any(v is None or (isinstance(v, float) and np.isnan(v)) for v in values)
        keys.append(None if bad else tuple(values))
    return keys


def make_psth(
    session: NWBSession,
    ds: NLBDataset,
    bin_ms: int,
    train_rows: np.ndarray,
    eval_rows: np.ndarray,
    ignore: np.ndarray,
) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """PSTHs and condition indices; returns ``(train_cond_idx, eval_cond_idx, psth)``.

    ``psth`` has shape ``(conditions, bins, held-in + held-out units)``, float64; conditions are the
    sorted unique tuples of ``ds.psth.cond_fields`` over the non-ignored trials.
    """
    p = ds.psth
    for g in (False, True):
        require_group(session, g, "the PSTH")
    kernel = gaussian_kernel(p.kern_sd_ms)
    skip = np.zeros(session.n_trials, dtype=bool)
    if p.skip_field is not None:
        skip = np.asarray(session.column(p.skip_field, "the PSTH") == p.skip_value, dtype=bool)
    keys = _keys(session, p.cond_fields)
    combos = sorted({keys[i] for i in np.flatnonzero(~ignore) if keys[i] is not None})
    if not combos:
        raise InputError(
            f"no trial has values in every PSTH condition field ({', '.join(p.cond_fields)})",
            session.path,
            f"trials/{p.cond_fields[0]}",
        )
    cols = [session.column(f) for f in p.cond_fields]
    _, ok = session.time_ns(p.window.align_field or "start_time", "the PSTH")
    trial_id = session.trials["trial_id"]
    train_ids = trial_id[train_rows][ok[train_rows]]
    eval_ids = trial_id[eval_rows][ok[eval_rows]]

    psths, train_idx, eval_idx = [], [], []
    for comb in combos:
        mask = np.ones(session.n_trials, dtype=bool)
        for col, value in zip(cols, comb):
            mask &= np.asarray(col == value, dtype=bool)
        cand = mask & ~ignore & ~skip
        if not cand.any():
            continue
        win = trial_windows(session, np.flatnonzero(cand), bin_ms, p.window, drop_invalid=True)
        has = win.n_bins > 0
        if not has.any():
            continue
        lens = win.n_bins[has]
        good = lens >= 0.8 * lens.mean()
        min_len = int(lens[good].min())
        first, nbins = win.first_bin[has][good], lens[good]
        rel = win.align_bin[has][good]
        lo, hi = int(rel.min()), int((rel + nbins).max())
        n_units = session.n_heldin + session.n_heldout
        sums = np.zeros((hi - lo, n_units))
        counts = np.zeros((hi - lo, n_units))
        present = np.zeros(hi - lo, dtype=bool)
        smoothed = [smoothed_windows(session, g, first, nbins, bin_ms, kernel) for g in (False, True)]
        for heldin, heldout, nb, r in zip(*smoothed, nbins, rel):
            data = np.concatenate([heldin, heldout], axis=1)
            sl = slice(int(r) - lo, int(r) - lo + int(nb))
            sums[sl] += np.nan_to_num(data)
            counts[sl] += ~np.isnan(data)
            present[sl] = True
        with np.errstate(invalid="ignore", divide="ignore"):
            psth = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)[present]
        psths.append(psth[:min_len] if p.pad == "back" else psth[-min_len:])
        kept = trial_id[win.rows[has][good]]
        train_idx.append(np.flatnonzero(np.isin(train_ids, kept)))
        eval_idx.append(np.flatnonzero(np.isin(eval_ids, kept)))
    if not psths:
        raise InputError("no PSTH condition has a usable trial", session.path, f"trials/{p.cond_fields[0]}")

    max_len = max(len(x) for x in psths) if p.seg_len_ms is None else int(round(p.seg_len_ms / bin_ms))
    stacked = np.full((len(psths), max_len, psths[0].shape[1]), np.nan)
    for i, x in enumerate(psths):
        x = x[:max_len] if p.pad == "back" else x[len(x) - min(len(x), max_len) :]
        if p.pad == "back":
            stacked[i, : len(x)] = x
        else:
            stacked[i, max_len - len(x) :] = x
    return train_idx, eval_idx, stacked
