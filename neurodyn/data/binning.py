"""Trial windows, spike counts and resampled time series with nlb_tools' exact semantics.

Grid. The session's 1 ms grid ``[0, n_ms)`` is cut into bins of ``bin_ms``; bin ``b`` holds the 1 ms
samples ``[b * bin_ms, (b + 1) * bin_ms)`` (the last one may be partial), so there are
``ceil(n_ms / bin_ms)`` bins. A bin is NaN for a unit group when its *first* millisecond lies outside
that group's observed intervals (``NWBDataset.resample``: "a block starting on NaN stays NaN").

Windows. A trial window ``[t0, t1)`` (``t0 = align + start``, ``t1 = align + end``, or a trial's start /
end fields) holds the bins whose start lies in ``[t0, t1 - 1 us]``: first bin ``ceil(t0 / bin)``,
``(t1 - t0) / bin`` bins for a fixed-length window. Times are int64 nanoseconds converted as pandas does
(:func:`neurodyn.data.nwb.seconds_to_ns`). Without overlap allowed, a window is cut at
``min(next selected trial's align start, start of the trial after it)``, as ``make_trial_data`` does.

Time series are resampled from the 1 ms grid as nlb_tools does: NaN gaps linearly interpolated
(constant at the ends), ``scipy.signal.decimate(x, q, n=500, ftype='fir')`` over the whole session,
NaNs put back at the decimated samples, stored dtype kept; ``target_pos`` is subsampled instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurodyn.data.nlb import Window
from neurodyn.data.nwb import NS_PER_MS, NWBSession, observed_at
from neurodyn.errors import InputError

US_NS = 1_000  # nlb_tools subtracts 1 us from window ends to make them exclusive


def ceil_div(a: np.ndarray, b: int) -> np.ndarray:
    return -((-np.asarray(a, dtype=np.int64)) // b)


def n_grid_bins(session: NWBSession, bin_ms: int) -> int:
    """Number of bins of the resampled session (the last one may be partial)."""
    return -(-session.n_ms // bin_ms)


@dataclass(frozen=True)
class TrialWindows:
    """Bins of each kept trial's window.

    Attributes
    ----------
    rows
        Trial positions (session table order) that got a window.
    first_bin
        First bin of each window.
    n_bins
        Bins in each window after cutting at the next trial / the session edge (can be 0).
    align_bin
        ``first_bin - ceil(align / bin)``: the window's first bin relative to the alignment bin
        (``align_time`` in nlb_tools, in bins).
    """

    rows: np.ndarray
    first_bin: np.ndarray
    n_bins: np.ndarray
    align_bin: np.ndarray

    def require_length(self, n_bins: int, session: NWBSession, what: str) -> None:
        """InputError unless every window has exactly ``n_bins`` bins (stacked tensors)."""
        bad = np.flatnonzero(self.n_bins != n_bins)
        if len(bad):
            tid = session.trials["trial_id"][self.rows[bad[0]]]
            raise InputError(
                f"{len(bad)} trial window(s) for {what} do not fit in the data (trial {tid} gets "
                f"{self.n_bins[bad[0]]} of {n_bins} bins: it runs past the session end or into the next "
                f"trial)",
                session.path,
                "trials",
            )


def trial_windows(
    session: NWBSession,
    rows,
    bin_ms: int,
    window: Window,
    *,
    align_ns: np.ndarray | None = None,
    drop_invalid: bool = False,
    needed_for: str = "",
) -> TrialWindows:
    """Window bins of the trials at ``rows`` (table order), as ``NWBDataset.make_trial_data`` cuts them.

    Parameters
    ----------
    rows
        Trial positions to use, ascending (the non-ignored trials).
    align_ns
        Alignment times (ns) for ``rows`` replacing ``window.align_field`` (DMFC jitter).
    drop_invalid
        Drop trials with a NaN start / alignment (nlb_tools' ``dropna``); otherwise raise InputError.
    """
    bw = int(bin_ms) * NS_PER_MS
    rows = np.asarray(rows, dtype=np.int64)
    start_all, start_ok_all = session.time_ns(window.start_field, needed_for)
    end_all, end_ok_all = session.time_ns(window.end_field, needed_for)
    ts, ts_ok = start_all[rows], start_ok_all[rows]
    te, te_ok = end_all[rows], end_ok_all[rows]
    # start of the trial that follows each trial in the full table
    nxt_all = np.append(start_all[1:], 0)
    nxt_ok_all = np.append(start_ok_all[1:], False)
    if window.align_field is not None:
        if align_ns is not None:
            al, al_ok = np.asarray(align_ns, dtype=np.int64), np.ones(len(rows), dtype=bool)
        else:
            a, a_ok = session.time_ns(window.align_field, needed_for)
            al, al_ok = a[rows], a_ok[rows]
        ar, ar_ok = al, al_ok
    else:
        al, al_ok, ar, ar_ok = ts, ts_ok, te, te_ok
    if window.fixed:
        a_start, a_start_ok = al + int(window.start_ms) * NS_PER_MS, al_ok
        a_end, a_end_ok = ar + int(window.end_ms) * NS_PER_MS - US_NS, ar_ok
    else:
        a_start, a_start_ok = ts, ts_ok
        a_end, a_end_ok = te - US_NS, te_ok
    valid = ts_ok & al_ok & a_start_ok & a_end_ok
    if not drop_invalid and not np.all(valid):
        i = int(np.flatnonzero(~valid)[0])
        name = (
            window.start_field if not ts_ok[i] else window.align_field if not al_ok[i] else window.end_field
        )
        tid = session.trials["trial_id"][rows[i]]
        why = f" (needed for {needed_for})" if needed_for else ""
        raise InputError(f"trial {tid} has no value{why}", session.path, f"trials/{name}")

    # end bound of trial i = min(start of the trial after the next selected one, next selected align start)
    nxt, nxt_ok = nxt_all[rows], nxt_ok_all[rows]
    big = np.iinfo(np.int64).max
    m = np.minimum(np.where(nxt_ok, nxt, big), np.where(a_start_ok, a_start, big))
    m_ok = nxt_ok | a_start_ok
    bound = np.append(m[1:], 0)
    bound_ok = np.append(m_ok[1:], False)
    endpoint = a_end.copy()
    if not window.allow_overlap:
        cut = bound_ok & (a_end > bound)
        endpoint[cut] = bound[cut] - US_NS

    n_total = n_grid_bins(session, bin_ms)
    first = np.maximum(ceil_div(a_start, bw), 0)
    last = np.minimum(endpoint // bw, n_total - 1)
    keep = valid
    n = np.maximum(last - first + 1, 0)
    return TrialWindows(rows[keep], first[keep], n[keep], (first - ceil_div(al, bw))[keep])


def spike_table(session: NWBSession, heldout: bool, bin_ms: int) -> np.ndarray:
    """Spike counts of one unit group on the whole session's ``bin_ms`` grid, ``(n_grid_bins, units)``.

    The session is binned once per group and bin width (cached on the session); every trial window of a
    ``prepare`` call -- train and eval inputs, forward windows, eval targets -- is a slice of this table.
    Stored as the narrowest unsigned integer type that holds the largest count (uint8 unless a bin holds
    256 spikes or more), so the table costs ``n_grid_bins * units`` bytes.
    """
    key = ("spike_table", bool(heldout), int(bin_ms))
    if key not in session.cache:
        units = session.group(heldout)
        n_total = n_grid_bins(session, bin_ms)
        table = np.empty((n_total, len(units)), dtype=np.uint8)  # one unit's int64 counts at a time
        for j, u in enumerate(units):
            counts = np.bincount(session.spike_ms[u] // bin_ms, minlength=n_total)
            peak = int(counts.max()) if n_total else 0
            if peak > np.iinfo(table.dtype).max:  # widen once, for this and every later unit
                table = table.astype(np.uint16 if peak < 2**16 else np.uint32)
            table[:, j] = counts
        session.cache[key] = table
    return session.cache[key]


def bin_spikes(
    session: NWBSession, heldout: bool, first_bin: np.ndarray, n_bins: int, bin_ms: int
) -> np.ndarray:
    """Spike counts of one unit group, shape ``(n_trials, n_bins, n_units)``, float16, NaN where unobserved.

    Units are ordered by id (:meth:`NWBSession.group`). Bin ``first_bin[i] + k`` counts the spikes whose
    1 ms index lies in ``[b * bin_ms, (b + 1) * bin_ms)``: a slice of :func:`spike_table`.
    """
    table = spike_table(session, heldout, bin_ms)
    bins = np.asarray(first_bin, dtype=np.int64)[:, None] + np.arange(n_bins)[None, :]
    out = table[bins].astype(np.float16)
    out[~observed_at(session.observed_ms[heldout], bins * bin_ms)] = np.nan
    return out


def require_group(session: NWBSession, heldout: bool, what: str) -> None:
    """InputError when the session has no unit of the group (held-out units need the ``heldout`` column)."""
    if heldout and session.n_heldout == 0:
        missing = session.files_without_heldout()
        if missing:
            raise InputError(
                f"no 'heldout' column, so no held-out units for {what}", missing[0], "units/heldout"
            )
        raise InputError(
            f"no held-out units (heldout is False for every unit), needed for {what}",
            session.path,
            "units/heldout",
        )
    if not heldout and session.n_heldin == 0:
        raise InputError(f"no held-in units, needed for {what}", session.path, "units/heldout")


def stacked_spikes(
    session: NWBSession,
    heldout: bool,
    win: TrialWindows,
    n_bins: int,
    bin_ms: int,
    *,
    allow_nans: bool,
    what: str,
) -> np.ndarray:
    """Fixed-length spike tensor of one group over ``win`` (``make_stacked_array``)."""
    require_group(session, heldout, what)
    win.require_length(n_bins, session, what)
    out = bin_spikes(session, heldout, win.first_bin, n_bins, bin_ms)
    if not allow_nans and np.isnan(out).any():
        i = int(np.flatnonzero(np.isnan(out).any(axis=(1, 2)))[0])
        tid = session.trials["trial_id"][win.rows[i]]
        raise InputError(
            f"trial {tid}: the window for {what} leaves the observed intervals (NaN spikes)",
            session.path,
            "units/obs_intervals",
        )
    return out


# ------------------------------------------------------------------------------------------ time series
def _interpolate_nans(x: np.ndarray) -> np.ndarray:
    """Per column, linear interpolation over NaNs, constant beyond the ends (pandas ``interpolate(
    limit_direction='both')``); an all-NaN column stays NaN."""
    x = x.copy()
    pos = np.arange(x.shape[0])
    for j in range(x.shape[1]):
        bad = np.isnan(x[:, j])
        if bad.any() and not bad.all():
            x[bad, j] = np.interp(pos[bad], pos[~bad], x[~bad, j].astype(np.float64))
    return x


def resample_series(grid: np.ndarray, factor: int, name: str) -> np.ndarray:
    """Resample a ``(n_ms, channels)`` 1 ms series by ``factor`` as ``NWBDataset.resample`` does."""
    from scipy import signal

    if factor == 1:
        return grid
    if "spikes" in name:  # counts: summed per block, NaN where the block starts on NaN
        nan = np.isnan(grid[::factor])
        n_full = grid.shape[0] // factor * factor
        x = np.nan_to_num(grid)
        out = x[:n_full].reshape(-1, factor, grid.shape[1]).sum(axis=1)
        if n_full < grid.shape[0]:
            out = np.vstack([out, x[n_full:].sum(axis=0, keepdims=True)])
        out[nan] = np.nan
        return out.astype(grid.dtype)
    if name == "target_pos":
        return grid[::factor].copy()
    nan = np.isnan(grid[::factor])
    x = _interpolate_nans(grid) if nan.any() or np.isnan(grid).any() else grid
    out = signal.decimate(x, factor, n=500, ftype="fir", axis=0)
    out[nan] = np.nan
    return out.astype(grid.dtype)


def binned_series(session: NWBSession, name: str, bin_ms: int, needed_for: str = "") -> np.ndarray:
    """A time series resampled to ``bin_ms`` over the whole session, cached on the session."""
    key = ("series", name, int(bin_ms))
    if key not in session.cache:
        if name not in session.behavior:
            have = ", ".join(sorted(session.behavior)) or "none"
            why = f" (needed for {needed_for})" if needed_for else ""
            raise InputError(
                f"no time series {name!r}{why}; the file has: {have}", session.path, f"processing/{name}"
            )
        grid = session.behavior[name].on_grid(session.n_ms)
        session.cache[key] = resample_series(grid, int(bin_ms), name)
    return session.cache[key]


def jagged_series(session: NWBSession, series: np.ndarray, win: TrialWindows, what: str) -> np.ndarray:
    """Time series over each window, NaN-padded at the back to the longest (``make_jagged_array``)."""
    if len(win.rows) and np.any(win.n_bins == 0):
        tid = session.trials["trial_id"][win.rows[np.flatnonzero(win.n_bins == 0)[0]]]
        raise InputError(
            f"trial {tid}: the window for {what} lies outside the session", session.path, "trials"
        )
    max_len = int(win.n_bins.max()) if len(win.rows) else 0
    out = np.full((len(win.rows), max_len, series.shape[1]), np.nan)
    for i, (b0, nb) in enumerate(zip(win.first_bin, win.n_bins)):
        out[i, :nb] = series[b0 : b0 + nb]
    return out
