"""nlb_tools' tensor makers, reimplemented on NumPy: same keys, shapes, dtypes and NaN pattern.

Ports of ``make_train_input_tensors``, ``make_eval_input_tensors`` and ``make_eval_target_tensors`` from
``nlb_tools.make_tensors`` (nlb_tools 0.0.4, MIT licence, Pei et al. 2021), with the trial split chosen by
``phase`` as the benchmark does:

========  ======================  =====================
phase     train input trials      eval trials
========  ======================  =====================
``val``   ``split == 'train'``    ``split == 'val'``
``test``  ``'train'`` + ``'val'``  ``split == 'test'``
========  ======================  =====================

Dtypes: spikes float16 (the DMFC eval target float64, NaN-padded at the front), behaviour and PSTH float64,
decode masks bool, condition indices int64, jitter int64 (bins). Rates are never made here.

DMFC_RSG jitter uses NumPy's legacy global generator exactly as nlb_tools does (``np.random.seed(seed)``,
one ``np.random.random()`` per selected trial, every maker reseeds); the caller's global state is saved
and restored.

Examples
--------
>>> from neurodyn.data.nwb import load_session                       # doctest: +SKIP
>>> s = load_session("sub-Jenkins_ses-small_desc-test_ecephys.nwb")  # doctest: +SKIP
>>> make_eval_input_tensors(s, "mc_maze_small", 5, "test")["eval_spikes_heldin"].shape  # doctest: +SKIP
(100, 140, 107)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import numpy as np

from neurodyn.data.binning import (
    TrialWindows,
    bin_spikes,
    binned_series,
    jagged_series,
    require_group,
    stacked_spikes,
    trial_windows,
)
from neurodyn.data.nlb import NLBDataset, Window, get_dataset
from neurodyn.data.nwb import NS_PER_MS, NWBSession, load_session
from neurodyn.errors import InputError

PHASES = ("val", "test")
#: phase -> (train-input splits, eval splits)
PHASE_SPLITS = {"val": (("train",), ("val",)), "test": (("train", "val"), ("test",))}
DMFC_TARGETS = ("nlb_tools", "input")


@contextlib.contextmanager
def legacy_seed(seed: int) -> Iterator[None]:
    """Seed NumPy's legacy global generator for the block, then put the caller's state back."""
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        yield
    finally:
        np.random.set_state(state)


def _session(session: NWBSession | str | os.PathLike) -> NWBSession:
    return session if isinstance(session, NWBSession) else load_session(session)


def _check_phase(phase: str) -> str:
    if phase not in PHASES:
        raise InputError(f"unknown phase {phase!r}; use 'val' or 'test'", field="phase")
    return phase


def split_rows(
    session: NWBSession, splits: tuple[str, ...], what: str, *, required: bool = True
) -> np.ndarray:
    """Positions of the trials whose ``split`` is one of ``splits``; InputError if none and ``required``."""
    rows = np.flatnonzero(np.isin(session.split(), list(splits)))
    if required and len(rows) == 0:
        raise InputError(
            f"no trials with split {' or '.join(map(repr, splits))} for {what}", session.path, "trials/split"
        )
    return rows


def jitter_ms(
    session: NWBSession, ds: NLBDataset, rows: np.ndarray, bin_ms: int, seed: int
) -> np.ndarray | None:
    """DMFC window jitter (ms) of each trial at ``rows``; None for datasets without jitter.

    Non-test trials draw ``round(u * floor(clip(1500 - tp, 0, 300) / bin)) * bin`` with ``u`` from
    ``np.random.random()`` after ``np.random.seed(seed)``; test trials get 0 (but still consume a draw).
    """
    if ds.jitter is None:
        return None
    split = session.split()[rows]
    tp_col = session.trials.get(ds.jitter.field)
    if tp_col is None:  # a file of another dataset: the column itself is absent, not one trial's value
        raise InputError(f"missing trial column (needed for the {ds.name} jitter; a file of another dataset?)",
                         session.path, f"trials/{ds.jitter.field}")
    tp = np.asarray(tp_col[rows], dtype=np.float64)
    hi = np.where(split == "test", 0.0, np.clip(ds.jitter.total_ms - tp, 0.0, ds.jitter.max_ms))
    if np.isnan(hi).any():
        tid = session.trials["trial_id"][rows[np.flatnonzero(np.isnan(hi))[0]]]
        raise InputError(
            f"trial {tid} has no value (needed for the {ds.name} jitter)",
            session.path,
            f"trials/{ds.jitter.field}",
        )
    lo_bins = np.zeros(len(rows))
    hi_bins = np.floor(np.round(hi / bin_ms, 4))
    with legacy_seed(seed):
        draws = np.array([np.random.random() for _ in range(len(rows))])
    return np.round(draws * (hi_bins - lo_bins) + lo_bins) * bin_ms


def _aligned(
    session: NWBSession, window: Window, rows: np.ndarray, jitter: np.ndarray | None
) -> np.ndarray | None:
    """Jittered alignment times (ns) of ``rows``, or None without jitter."""
    if jitter is None or window.align_field is None:
        return None
    align, ok = session.time_ns(window.align_field, "the jittered window")
    if not np.all(ok[rows]):
        tid = session.trials["trial_id"][rows[np.flatnonzero(~ok[rows])[0]]]
        raise InputError(f"trial {tid} has no value", session.path, f"trials/{window.align_field}")
    return align[rows] + np.round(jitter).astype(np.int64) * NS_PER_MS


def forward_window(window: Window, fp_len_ms: int) -> Window:
    """The forward-prediction window: ``fp_len_ms`` after the window end, overlap allowed (``_prep_fp``)."""
    align = window.align_field if window.align_field is not None else window.end_field
    start = window.end_ms if window.fixed else 0
    return Window(align, start, start + fp_len_ms, allow_overlap=True)


def behavior(
    session: NWBSession,
    ds: NLBDataset,
    rows: np.ndarray,
    bin_ms: int,
    window: Window,
    align_ns: np.ndarray | None,
    what: str,
) -> np.ndarray:
    """Behaviour of the trials at ``rows``: a lagged, resampled time series or trial-table columns."""
    if ds.behavior_source == "data":
        series = binned_series(session, ds.behavior_fields[0], bin_ms, what)
        win = trial_windows(
            session, rows, bin_ms, window.shifted(ds.behavior_lag_ms), align_ns=align_ns, needed_for=what
        )
        return jagged_series(session, series, win, what)
    cols = []
    for name in ds.behavior_fields:
        col = session.column(name, what)[rows]
        try:
            cols.append(np.asarray(col, dtype=np.float64))
        except (TypeError, ValueError):
            raise InputError("not numeric", session.path, f"trials/{name}") from None
    out = np.stack(cols, axis=1) if cols else np.zeros((len(rows), 0))
    if ds.behavior_valid_field is not None:
        valid = np.asarray(session.column(ds.behavior_valid_field, what)[rows], dtype=np.float64) == 0
        out[~valid] = np.nan
    return out


def _input_cut(
    session: NWBSession, ds: NLBDataset, bin_ms: int, phase: str, which: str, seed: int
) -> tuple[np.ndarray, np.ndarray | None, TrialWindows]:
    """The rows, jittered alignment times (ns; None without jitter) and windows of the train (``which="train"``)
    or eval (``"eval"``) input: where the input tensors and their window starts are cut (once for both)."""
    if which not in ("train", "eval"):
        raise InputError(f"expected 'train' or 'eval', got {which!r}", field="which")
    splits = PHASE_SPLITS[_check_phase(phase)][0 if which == "train" else 1]
    what = f"the {which} input"
    rows = split_rows(session, splits, what)
    align = _aligned(session, ds.window, rows, jitter_ms(session, ds, rows, bin_ms, seed))
    return rows, align, trial_windows(session, rows, bin_ms, ds.window, align_ns=align, needed_for=what)


def _starts_ms(win: TrialWindows, bin_ms: int) -> np.ndarray:
    """The start (ms on the session grid) of each window's first bin, int64."""
    return win.first_bin.astype(np.int64) * int(bin_ms)


def make_train_input_tensors(
    session: NWBSession | str | os.PathLike,
    dataset: str | NLBDataset,
    bin_ms: int,
    phase: str = "val",
    include_behavior: bool = True,
    include_forward_pred: bool = True,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Training inputs (``make_train_input_tensors``): held-in / held-out spikes of the train trials.

    Returns
    -------
    dict
        ``train_spikes_heldin`` (trials, bins, held-in) float16, ``train_spikes_heldout`` (trials, bins,
        held-out) float16, [``train_behavior`` float64], [``train_spikes_heldin_forward``,
        ``train_spikes_heldout_forward`` (trials, fwd bins, units) float16].
    """
    return train_input_and_starts(session, dataset, bin_ms, phase, include_behavior, include_forward_pred, seed)[0]


def train_input_and_starts(
    session: NWBSession | str | os.PathLike,
    dataset: str | NLBDataset,
    bin_ms: int,
    phase: str = "val",
    include_behavior: bool = True,
    include_forward_pred: bool = True,
    seed: int = 0,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """:func:`make_train_input_tensors` and the window start of each of its rows
    (:func:`input_window_starts_ms` ``which="train"``), from one cut of the windows."""
    ds, session = get_dataset(dataset), _session(session)
    bin_ms = ds.check_bin(bin_ms)
    rows, align, win = _input_cut(session, ds, bin_ms, phase, "train", seed)
    n_bins = ds.n_bins(bin_ms)
    out = {
        "train_spikes_heldin": stacked_spikes(
            session, False, win, n_bins, bin_ms, allow_nans=False, what="the train input"
        ),
        "train_spikes_heldout": stacked_spikes(
            session, True, win, n_bins, bin_ms, allow_nans=False, what="the train input"
        ),
    }
    if include_behavior:
        out["train_behavior"] = behavior(session, ds, rows, bin_ms, ds.window, align, "the train behaviour")
    if include_forward_pred:
        fwin = trial_windows(
            session,
            rows,
            bin_ms,
            forward_window(ds.window, ds.fp_len_ms),
            align_ns=align,
            needed_for="the forward window",
        )
        for heldout, key in ((False, "train_spikes_heldin_forward"), (True, "train_spikes_heldout_forward")):
            out[key] = stacked_spikes(
                session,
                heldout,
                fwin,
                ds.n_fwd_bins(bin_ms),
                bin_ms,
                allow_nans=False,
                what="the train forward window",
            )
    return out, _starts_ms(win, bin_ms)


def make_eval_input_tensors(
    session: NWBSession | str | os.PathLike,
    dataset: str | NLBDataset,
    bin_ms: int,
    phase: str = "val",
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Evaluation inputs (``make_eval_input_tensors``): held-in spikes of the eval trials (NaN allowed),
    plus held-out spikes unless the trials are test trials."""
    return eval_input_and_starts(session, dataset, bin_ms, phase, seed)[0]


def eval_input_and_starts(
    session: NWBSession | str | os.PathLike,
    dataset: str | NLBDataset,
    bin_ms: int,
    phase: str = "val",
    seed: int = 0,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """:func:`make_eval_input_tensors` and the window start of each of its rows
    (:func:`input_window_starts_ms` ``which="eval"``), from one cut of the windows."""
    ds, session = get_dataset(dataset), _session(session)
    bin_ms = ds.check_bin(bin_ms)
    rows, _, win = _input_cut(session, ds, bin_ms, phase, "eval", seed)
    n_bins = ds.n_bins(bin_ms)
    out = {
        "eval_spikes_heldin": stacked_spikes(
            session, False, win, n_bins, bin_ms, allow_nans=True, what="the eval input"
        )
    }
    if not np.any(session.split()[rows] == "test"):
        out["eval_spikes_heldout"] = stacked_spikes(
            session, True, win, n_bins, bin_ms, allow_nans=True, what="the eval input"
        )
    return out, _starts_ms(win, bin_ms)


def _front_padded_target(
    session: NWBSession, win: TrialWindows, jitter: np.ndarray, bin_ms: int, seg_len: int
) -> np.ndarray:
    """DMFC target: set -> go held-out spikes, float64, placed to end ``jitter`` bins before the end of a
    ``seg_len``-bin row and NaN-padded in front (``make_jagged_array(pad='front')``)."""
    require_group(session, True, "the eval target")
    n_units = len(session.group(True))
    out = np.full((len(win.rows), seg_len, n_units), np.nan)
    for i, (b0, nb) in enumerate(zip(win.first_bin, win.n_bins)):
        if nb == 0:
            tid = session.trials["trial_id"][win.rows[i]]
            raise InputError(
                f"trial {tid}: empty set -> go window for the eval target", session.path, "trials"
            )
        data = bin_spikes(session, True, np.array([b0]), int(nb), bin_ms)[0]
        if np.isnan(data).any():
            tid = session.trials["trial_id"][win.rows[i]]
            raise InputError(
                f"trial {tid}: the eval target window leaves the observed intervals",
                session.path,
                "units/obs_intervals",
            )
        jit = int(round(jitter[i] / bin_ms))
        data = data[-(seg_len - jit) :]
        stop = seg_len - jit
        out[i, stop - len(data) : stop] = data
    return out


def input_window_starts_ms(
    session: NWBSession | str | os.PathLike,
    dataset: str | NLBDataset,
    bin_ms: int,
    phase: str = "val",
    which: str = "train",
    seed: int = 0,
) -> np.ndarray:
    """Start (ms on the session grid) of the first bin of each row of the train (``which="train"``) or eval
    (``"eval"``) input tensors: ``first_bin * bin_ms`` of the windows :func:`make_train_input_tensors` /
    :func:`make_eval_input_tensors` cut, DMFC jitter included; int64, one per row, in row order
    (:func:`train_input_and_starts` / :func:`eval_input_and_starts` return them with the tensors).

    A trial's windows at two bin widths need not start together (the first bin is ``ceil(t0 / bin)``, and the
    DMFC jitter is rounded to whole bins at each width), so ``--upsample`` lines bins up by these starts.
    """
    ds, session = get_dataset(dataset), _session(session)
    bin_ms = ds.check_bin(bin_ms)
    return _starts_ms(_input_cut(session, ds, bin_ms, phase, which, seed)[2], bin_ms)


def make_eval_target_tensors(
    session: NWBSession | str | os.PathLike,
    dataset: str | NLBDataset,
    bin_ms: int,
    phase: str = "val",
    include_psth: bool = True,
    seed: int = 0,
    dmfc_target: str = "nlb_tools",
) -> dict[str, dict]:
    """Evaluation targets (``make_eval_target_tensors``), nested under ``dataset.name + suffix``.

    Parameters
    ----------
    phase
        Only ``"val"``: held-out spikes of test trials are not public (EvalAI holds them).
    dmfc_target
        DMFC_RSG only: ``"nlb_tools"`` (default) builds ``eval_spikes_heldout`` over set -> go, float64,
        NaN-padded in front to 1500 ms; ``"input"`` builds it with the input window (float16, go - 1500 ms
        -> go, jittered), as the nlb-lightning preprocessing does.

    Returns
    -------
    dict
        ``{name + suffix: {eval_spikes_heldout, train_behavior, eval_behavior, eval_spikes_heldin_forward,
        eval_spikes_heldout_forward, [train_decode_mask, eval_decode_mask], [eval_cond_idx, train_cond_idx,
        psth], [eval_jitter, train_jitter]}}`` with ``suffix = ''`` at 5 ms, ``'_<bin>'`` otherwise.
    """
    from neurodyn.data.psth import make_psth

    ds, session = get_dataset(dataset), _session(session)
    bin_ms = ds.check_bin(bin_ms)
    if _check_phase(phase) == "test":
        raise InputError(
            "the test phase has no public eval targets (held-out spikes of test trials exist "
            "only on EvalAI); use phase 'val' to evaluate locally",
            field="phase",
        )
    if dmfc_target not in DMFC_TARGETS:
        raise InputError(
            f"unknown DMFC target {dmfc_target!r}; use one of {DMFC_TARGETS}", field="dmfc_target"
        )
    train_splits, eval_splits = PHASE_SPLITS[phase]
    train_rows = split_rows(session, train_splits, "the eval target (train trials)")
    eval_rows = split_rows(session, eval_splits, "the eval target")
    ignore = np.ones(session.n_trials, dtype=bool)
    ignore[train_rows] = False
    ignore[eval_rows] = False
    ew = ds.eval_window
    train_jit = jitter_ms(session, ds, train_rows, bin_ms, seed)
    eval_jit = jitter_ms(session, ds, eval_rows, bin_ms, seed)
    train_align = _aligned(session, ew, train_rows, train_jit)
    eval_align = _aligned(session, ew, eval_rows, eval_jit)
    what = "the eval target"

    if ds.jitter is not None and dmfc_target == "input":
        win = trial_windows(
            session,
            eval_rows,
            bin_ms,
            ds.window,
            align_ns=_aligned(session, ds.window, eval_rows, eval_jit),
            needed_for=what,
        )
        heldout = stacked_spikes(session, True, win, ds.n_bins(bin_ms), bin_ms, allow_nans=False, what=what)
    elif ew.fixed:
        win = trial_windows(session, eval_rows, bin_ms, ew, align_ns=eval_align, needed_for=what)
        heldout = stacked_spikes(session, True, win, ds.n_bins(bin_ms), bin_ms, allow_nans=False, what=what)
    else:
        win = trial_windows(session, eval_rows, bin_ms, ew, align_ns=eval_align, needed_for=what)
        jit = eval_jit if eval_jit is not None else np.zeros(len(eval_rows))
        heldout = _front_padded_target(session, win, jit, bin_ms, ds.eval_seg_len_ms // bin_ms)

    fwin = trial_windows(
        session,
        eval_rows,
        bin_ms,
        forward_window(ew, ds.fp_len_ms),
        align_ns=eval_align,
        needed_for="the forward window",
    )
    n_fwd = ds.n_fwd_bins(bin_ms)
    target: dict = {
        "eval_spikes_heldout": heldout,
        "train_behavior": behavior(session, ds, train_rows, bin_ms, ew, train_align, "the train behaviour"),
        "eval_behavior": behavior(session, ds, eval_rows, bin_ms, ew, eval_align, "the eval behaviour"),
        "eval_spikes_heldin_forward": stacked_spikes(
            session, False, fwin, n_fwd, bin_ms, allow_nans=False, what="the eval forward window"
        ),
        "eval_spikes_heldout_forward": stacked_spikes(
            session, True, fwin, n_fwd, bin_ms, allow_nans=False, what="the eval forward window"
        ),
    }
    if ds.decode_mask_field is not None:
        for key, rows in (("train_decode_mask", train_rows), ("eval_decode_mask", eval_rows)):
            col = session.column(ds.decode_mask_field, "the decode masks")[rows]
            target[key] = np.stack([col == v for v in ds.decode_mask_values]).T.astype(bool)
    if include_psth and ds.psth is not None:
        train_idx, eval_idx, psth = make_psth(session, ds, bin_ms, train_rows, eval_rows, ignore)
        target["eval_cond_idx"] = eval_idx
        target["train_cond_idx"] = train_idx
        target["psth"] = psth
        if ds.jitter is not None:
            target["eval_jitter"] = np.round(eval_jit / bin_ms).astype(np.int64)
            target["train_jitter"] = np.round(train_jit / bin_ms).astype(np.int64)
    return {ds.name + ds.suffix(bin_ms): target}
