r"""Small NWB files shaped like the NLB'21 DANDI files, with spikes from a known latent system.

Generative model (per style, all times on a 1 ms grid). A ``d``-dimensional latent :math:`x(t)` follows a
condition-dependent smooth trajectory around each trial's alignment time (Gaussian bumps with
condition-specific amplitudes; a ramp from ``set`` to ``go`` scaled by the produced interval for DMFC;
a sum of slow sinusoids for MC_RTT) and is 0 between trials. Unit :math:`n` fires as an inhomogeneous
Poisson process with rate

.. math:: \lambda_n(t) = \exp(b_n + c_n^\top x(t)) \ \text{Hz},

so held-out units are predictable from held-in ones through the shared latent. Hand (finger) velocity is a
linear read-out :math:`v(t) = D\, x(t - \ell) + \varepsilon` with the dataset's behaviour lag
:math:`\ell` (so the NLB lagged decoder has a target). Model parameters depend only on ``seed``; trials
and spikes on ``seed`` and the file's split, so a train / test pair shares one model.

File layout follows the DANDI NLB schema: ``units`` with ``spike_times``, ``obs_intervals`` and
``heldout``; ``trials`` with each style's columns and ``split``; behaviour under ``processing/behavior``
(1 kHz ``TimeSeries``, ``comments='columns=[x,y]'``). A test file holds only held-in units, only test
trials (alignment times only) and ``obs_intervals`` limited to the test windows, like the real ones: each
test trial's window is cut from the simulated recording (spikes and all) and re-timed onto a grid of
window + 100 ms from 0, as the DANDI MC_Maze_Small test file lays out its 700 ms trials every 0.8 s, so the
windows start on every bin grid and each bin of a prepared test window lies inside its trial.

Examples
--------
>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> p = write_nlb_nwb(d / "maze.nwb", "mc_maze", n_trials=8, n_heldin=5, n_heldout=2, seed=0)
>>> p.name
'maze.nwb'
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from neurodyn.data.synthetic.nlb_latents import (
    _STYLE,
    _simulate,
    _test_windows,
    _us,
    _window,
)
from neurodyn.errors import InputError


def _units_table(spikes: list[np.ndarray], obs: list[np.ndarray], heldout: list[bool] | None):
    """The ``units`` table built from whole columns (``add_unit`` row by row is slow for many spikes)."""
    from hdmf.common import ElementIdentifiers, VectorData, VectorIndex
    from pynwb.misc import Units

    columns, names = [], []
    if heldout is not None:
        columns.append(
            VectorData(
                name="heldout",
                description="held out of the model inputs (NLB co-smoothing target)",
                data=np.asarray(heldout, dtype=bool),
            )
        )
        names.append("heldout")
    for name, rows, what in (
        ("spike_times", spikes, "the spike times for each unit"),
        ("obs_intervals", obs, "the observation intervals for each unit"),
    ):
        data = VectorData(name=name, description=what, data=np.concatenate(rows))
        ends = np.cumsum([len(r) for r in rows])
        columns += [data, VectorIndex(name=f"{name}_index", data=ends, target=data)]
        names.append(name)
    return Units(
        name="units",
        description="data on spiking units",
        columns=columns,
        colnames=names,
        id=ElementIdentifiers(name="id", data=np.arange(len(spikes))),
    )


def write_nlb_nwb(
    path: str | os.PathLike,
    style: str,
    *,
    n_trials: int = 40,
    n_heldin: int = 20,
    n_heldout: int = 8,
    seed: int = 0,
    split: str = "train",
    val_fraction: float = 0.25,
    n_conditions: int = 4,
    base_rate_hz: tuple[float, float] = (6.0, 20.0),
    latent_dim: int = 3,
    obs_intervals: Sequence[tuple[float, float]] | None = None,
    unit_obs_intervals: Mapping[int, Sequence[tuple[float, float]]] | None = None,
    extra_spikes: Mapping[int, Sequence[float]] | None = None,
    include_heldout_column: bool = True,
    behavior_timestamps: bool = False,
) -> Path:
    """Write one NLB-shaped NWB file with pynwb and return its path.

    Parameters
    ----------
    path
        Output ``.nwb`` path (overwritten).
    style
        ``mc_maze``, ``area2_bump``, ``dmfc_rsg`` or ``mc_rtt``: trial columns, windows, behaviour.
    n_trials, n_heldin, n_heldout
        Trials and units. A test file (``split='test'``) keeps only the held-in units.
    seed
        Model parameters depend on ``seed`` only; trials and spikes on ``seed`` and ``split``.
    split
        ``"train"`` (trials split into ``train`` / ``val`` by ``val_fraction``, all units, behaviour,
        one observed interval over the session) or ``"test"`` (``test`` trials, alignment columns only,
        held-in units, spikes and ``obs_intervals`` limited to the test windows, re-timed onto a grid of
        window + 100 ms from 0).
    n_conditions
        Conditions (``trial_type/trial_version``, ``cond_dir/ctr_hold_bump``, ``is_eye/is_short/ts``).
    obs_intervals, unit_obs_intervals
        Override the observed intervals (s) of every unit / of single units (for NaN tests).
    extra_spikes
        Extra spike times (s) per unit index, e.g. ``{0: [0.005]}`` for the 1 ms boundary rule.
    include_heldout_column
        False writes no ``heldout`` column (bad-input tests).
    behavior_timestamps
        Store behaviour with explicit ``timestamps`` instead of ``starting_time`` + ``rate``.
    """
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries

    # what the file's bytes depend on (the output path aside): its object ids are drawn from these, so the same
    # seed and settings write the same bytes, and other settings other ids
    # arrays given in full (not elided with "..."), each number as it is (not rounded to 8 digits)
    with np.printoptions(threshold=sys.maxsize, floatmode="unique"):
        settings = repr({k: v for k, v in locals().items() if k not in ("path", "NWBHDF5IO", "NWBFile", "TimeSeries")})
    sim = _simulate(style, n_trials=n_trials, n_heldin=n_heldin, n_heldout=n_heldout, seed=seed, split=split,
                    n_conditions=n_conditions, base_rate_hz=base_rate_hz, latent_dim=latent_dim)
    path = Path(path)
    behavior_name, lag_ms, _ = _STYLE[style]
    rng, conds, cols, x = sim.rng, sim.conds, sim.cols, sim.latent
    n_units, n_ms, end_s = n_heldin + n_heldout, sim.n_ms, sim.end_s
    readout = sim.readout

    if split == "test":
        # each test trial's window cut from the simulated recording and re-timed onto a grid of window + 100 ms
        # from 0, as in the DANDI test files: windows start on the bin grids, so every bin nlb_tools makes of a
        # window lies inside it (windows left on the recording's 1 ms grid put up to 19 ms of each last 20 ms
        # bin past stop_time, where the file holds no spikes). Whole milliseconds: no window ends inside one,
        # which would leave that millisecond unobserved, a NaN in the trial's last bin
        recorded_ms, placed_ms, length_ms = _test_windows(style, cols)
        lo = _window(style)[0]
        windows = np.stack([placed_ms, placed_ms + length_ms], axis=1) / 1000.0
        align = _us(placed_ms / 1000.0 - lo)
        default_obs = [tuple(w) for w in windows]
    else:
        windows = None
        default_obs = [(0.0, end_s)]
    obs_all = [list(obs_intervals) if obs_intervals is not None else default_obs for _ in range(n_units)]
    for u, iv in (unit_obs_intervals or {}).items():
        obs_all[u] = list(iv)

    nwb = NWBFile(
        session_description=f"neurodyn synthetic NLB-style {style} ({split} file)",
        identifier=f"neurodyn-synthetic-{style}-{split}-{seed}",
        session_start_time=_SESSION_START,
        file_create_date=_SESSION_START,  # not the clock: the same seed and settings write the same bytes
        experiment_description="Simulated spikes from a latent system (neurodyn.data.synthetic.nlb_nwb)",
    )
    # trials
    if split == "test":
        align_col = {
            "mc_maze": "move_onset_time",
            "area2_bump": "move_onset_time",
            "dmfc_rsg": "go_time",
            "mc_rtt": None,
        }[style]
        table = {"start_time": _us(windows[:, 0]), "stop_time": _us(windows[:, 1])}
        if align_col:
            table[align_col] = align
        table["split"] = np.array(["test"] * n_trials, dtype=object)
    else:
        table = {k: v for k, v in cols.items() if k != "cond"}
        for key in conds[0] if conds else {}:
            table[key] = np.array([conds[c][key] for c in cols["cond"]])
        n_val = max(1, int(round(val_fraction * n_trials))) if n_trials > 1 else 0
        split_col = np.array(["train"] * n_trials, dtype=object)
        split_col[rng.choice(n_trials, n_val, replace=False)] = "val"
        table["split"] = split_col
    for name in table:
        if name not in ("start_time", "stop_time"):
            nwb.add_trial_column(name, f"{name} (synthetic)")
    for i in range(n_trials):
        row = {k: (v[i].item() if hasattr(v[i], "item") else v[i]) for k, v in table.items()}
        nwb.add_trial(**row)

    # units: Poisson spikes from exp(b + C x) at 1 ms
    keep_units = range(n_heldin) if split == "test" else range(n_units)
    spikes, obs = [], []
    for u in keep_units:
        rate = sim.rate_per_ms(u)  # spikes per ms, at most 200 Hz
        # a Poisson process on the 1 ms grid: the total count, then each spike's millisecond by its rate
        cdf = np.cumsum(rate)
        draws = np.sort(rng.uniform(0.0, cdf[-1], rng.poisson(cdf[-1])))
        ms = np.searchsorted(cdf, draws, side="right")
        ms = np.minimum(ms, n_ms - 1)
        frac = rng.uniform(0.05, 0.95, len(ms))
        if windows is None:
            t = (ms + frac) / 1000.0
        else:  # the spikes of each window's milliseconds, moved with it (a whole number of ms)
            parts = []
            for a, b in zip(recorded_ms, placed_ms):
                inside = (ms >= a) & (ms < a + length_ms)
                parts.append((ms[inside] - a + b + frac[inside]) / 1000.0)
            t = np.concatenate(parts)  # each inside its window, on whole milliseconds: no partial one to drop
        if extra_spikes and u in extra_spikes:
            t = np.concatenate([t, np.asarray(extra_spikes[u], dtype=np.float64)])
        spikes.append(np.sort(t))
        obs.append(np.asarray(obs_all[u], dtype=np.float64).reshape(-1, 2))
    nwb.units = _units_table(
        spikes, obs, [u >= n_heldin for u in keep_units] if include_heldout_column else None
    )

    # behaviour: v(t) = D x(t - lag) + noise, at 1 kHz over the whole session
    if behavior_name is not None and split == "train":
        shifted = np.zeros_like(x)
        if lag_ms >= 0:
            shifted[lag_ms:] = x[: n_ms - lag_ms]
        else:
            shifted[:lag_ms] = x[-lag_ms:]
        vel = shifted @ readout.T + rng.normal(0.0, 2.0, (n_ms, 2))
        kw = (
            {"timestamps": np.arange(n_ms) / 1000.0}
            if behavior_timestamps
            else {"rate": 1000.0, "starting_time": 0.0}
        )
        module = nwb.create_processing_module("behavior", "behavioural data")
        module.add(
            TimeSeries(
                name=behavior_name,
                data=vel,
                unit="mm/s",
                comments="columns=[x,y]",
                description=f"{behavior_name} = linear read-out of the latent, lag {lag_ms} ms",
                **kw,
            )
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        path.unlink()
    _seeded_object_ids(nwb, settings)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


#: session start and file creation date of every simulated file (NWB requires both)
_SESSION_START = datetime(2021, 1, 1, tzinfo=timezone.utc)


def _seeded_object_ids(nwb, settings: str) -> None:
    """Give every container of ``nwb`` a UUID drawn from ``settings`` instead of hdmf's random ``uuid4``.

    The ids of one file are distinct, and files of other settings (seed, style, split, sizes, ...) get other
    ids; the same settings give the same ids, so a simulated file is a function of its settings, byte for
    byte (two runs hash alike, and files prepared from them record the same source SHA-256).
    """
    import hashlib
    import uuid
    from unittest import mock

    key = hashlib.sha256(("neurodyn.data.synthetic.nlb_nwb " + settings).encode()).digest()
    counter = iter(range(1 << 62))

    def draw() -> uuid.UUID:
        digest = hashlib.sha256(key + next(counter).to_bytes(8, "little")).digest()
        return uuid.UUID(bytes=digest[:16], version=4)

    import hdmf.container

    if not callable(getattr(hdmf.container, "uuid4", None)):  # an hdmf that draws its ids elsewhere: random ids
        return  # (the file is still valid; test_nlb_same_seed_writes_the_same_bytes... then fails)
    with mock.patch.object(hdmf.container, "uuid4", draw):
        nwb.generate_new_id()


#: held-in / held-out units of the NLB dataset each style imitates (MC_Maze_Small, Area2_Bump, DMFC_RSG and
#: MC_RTT; Pei et al. 2021, arXiv:2109.04463): the sizes of ``neurodyn simulate nlb`` and
#: ``benchmarks/nlb_synthetic.py``
STYLE_UNITS = {"mc_maze": (107, 35), "area2_bump": (49, 16), "dmfc_rsg": (40, 14), "mc_rtt": (98, 32)}
#: the NLB dataset name to ``neurodyn prepare`` a simulated pair of each style as
STYLE_DATASET = {"mc_maze": "mc_maze_small", "area2_bump": "area2_bump", "dmfc_rsg": "dmfc_rsg", "mc_rtt": "mc_rtt"}
#: the longest trial of each style, the gap to the next included (s), from the layout's draws: MC_Maze up to
#: 0.7 s before move onset + 0.65 s + 0.2 s; Area2_Bump 0.5 + 0.65 + 0.2; DMFC_RSG set at up to 1.1 s, a 1.6 x
#: 1.2 s outlier interval, 0.3 s + 0.2 s; MC_RTT 0.6 s chunks back to back. A session adds 1.7 s of margins.
TRIAL_S_MAX = {"mc_maze": 1.55, "area2_bump": 1.35, "dmfc_rsg": 3.55, "mc_rtt": 0.6}
#: spikes per unit and millisecond assumed for the memory / disk estimates of ``neurodyn simulate nlb``: 2.5 x
#: the mean of the simulator's units (0.019 in a 1000-trial mc_maze file), far below the 0.2 ceiling of a unit
SPIKES_PER_MS = 0.05


def pair_names(style: str) -> tuple[str, str]:
    """DANDI-like file names of a synthetic pair: (train, test); test sorts first, as on DANDI."""
    behavior_name = _STYLE[style][0]
    train = (
        f"sub-Synth_ses-{style.replace('_', '')}_desc-train_{'behavior+' if behavior_name else ''}ecephys.nwb"
    )
    return train, f"sub-Synth_ses-{style.replace('_', '')}_desc-test_ecephys.nwb"


def write_nlb_pair(
    folder: str | os.PathLike,
    style: str,
    *,
    n_train_trials: int = 40,
    n_test_trials: int = 12,
    n_heldin: int = 20,
    n_heldout: int = 8,
    seed: int = 0,
    **kwargs,
) -> tuple[Path, Path]:
    """Write a train + test pair with DANDI-like names into ``folder``; returns (train, test) paths."""
    folder = Path(folder)
    train_name, test_name = pair_names(style)
    train = write_nlb_nwb(
        folder / train_name,
        style,
        n_trials=n_train_trials,
        n_heldin=n_heldin,
        n_heldout=n_heldout,
        seed=seed,
        split="train",
        **kwargs,
    )
    test = write_nlb_nwb(
        folder / test_name,
        style,
        n_trials=n_test_trials,
        n_heldin=n_heldin,
        n_heldout=n_heldout,
        seed=seed,
        split="test",
        **kwargs,
    )
    return train, test


def window_sums(
    nwb: str | os.PathLike,
    dataset: str,
    bin_ms: int,
    per_ms: Mapping[str, np.ndarray],
    *,
    phase: str = "val",
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Sum per-millisecond values over the bins and trial windows ``neurodyn prepare`` uses.

    The result has the NLB submission layout (``train_rates_held{in,out}``, ``eval_rates_held{in,out}``,
    ``eval_rates_held{in,out}_forward``): with ``per_ms`` the expected counts of
    :func:`expected_counts_ms` it is the true-rate oracle of a prepared file; with the spike counts
    themselves it reproduces the prepared spike tensors (how the windows are tested).

    Parameters
    ----------
    nwb
        The NWB file or folder given to ``prepare``.
    dataset, bin_ms, phase, seed
        As given to ``prepare`` (``seed``: the DMFC_RSG jitter).
    per_ms
        File name -> array ``(n_ms of that file, units)``, column ``k`` for unit id ``k``, on that file's
        own clock; files not named contribute zeros.
    """
    from neurodyn.data.binning import trial_windows
    from neurodyn.data.nlb import get_dataset
    from neurodyn.data.nwb import load_session
    from neurodyn.data.tensors import PHASE_SPLITS, _aligned, forward_window, jitter_ms, split_rows

    ds = get_dataset(dataset)
    session = load_session(nwb)
    grid = {False: np.zeros((session.n_ms + 1, session.n_heldin)),
            True: np.zeros((session.n_ms + 1, session.n_heldout))}
    names = {f.path.name: f for f in session.files}
    for name, values in per_ms.items():
        if name not in names:
            raise InputError(f"no file named {name!r} in the session", path=str(nwb), field="per_ms")
        src = names[name]
        values = np.asarray(values, dtype=np.float64)
        n = min(len(values), src.n_ms)
        for heldout in (False, True):
            ids = session.unit_ids[session.group(heldout)]
            grid[heldout][src.offset_ms:src.offset_ms + n] += values[:n, ids]
    cum = {g: np.concatenate([np.zeros((1, a.shape[1])), np.cumsum(a, axis=0)]) for g, a in grid.items()}

    def sums(first_bin: np.ndarray, n_bins: int, heldout: bool) -> np.ndarray:
        edges = (np.asarray(first_bin)[:, None] + np.arange(n_bins + 1)[None, :]) * bin_ms
        c = cum[heldout][np.minimum(edges, session.n_ms)]
        return np.diff(c, axis=1)

    out = {}
    for part, splits in zip(("train", "eval"), PHASE_SPLITS[phase]):
        rows = split_rows(session, splits, f"the {part} trials")
        align = _aligned(session, ds.window, rows, jitter_ms(session, ds, rows, bin_ms, seed))
        win = trial_windows(session, rows, bin_ms, ds.window, align_ns=align)
        for heldout, kind in ((False, "heldin"), (True, "heldout")):
            out[f"{part}_rates_{kind}"] = sums(win.first_bin, ds.n_bins(bin_ms), heldout)
        if part == "eval":
            fwin = trial_windows(session, rows, bin_ms, forward_window(ds.window, ds.fp_len_ms), align_ns=align)
            for heldout, kind in ((False, "heldin"), (True, "heldout")):
                out[f"eval_rates_{kind}_forward"] = sums(fwin.first_bin, ds.n_fwd_bins(bin_ms), heldout)
    return out
