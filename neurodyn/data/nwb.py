"""Read NLB-style NWB files (one file, or a folder of them) into an :class:`NWBSession`.

Inputs: a local path (file or folder), a URL (``dandi://<dandiset>[@<version>]/<path>`` or
``https://...``, read over HTTP range requests without downloading, see :mod:`neurodyn.data.stream`),
or an open binary file object.

What is read, as ``nlb_tools.nwb_interface.NWBDataset`` reads it (nlb_tools 0.0.4, MIT), but into plain
NumPy arrays instead of a 1 ms DataFrame of the whole session:

- ``units``: ``spike_times`` per unit, ``obs_intervals``, ``heldout``.
- ``trials``: every column; ``id`` is renamed ``trial_id`` and ``stop_time`` ``end_time``; times are
  float seconds on the session clock.
- Time series anywhere in the file (``processing`` modules and their containers, as nlb_tools finds
  them), read lazily; column names from ``comments`` ``"columns=[...]"`` when present.

The session lives on a 1 ms grid ``[0, n_ms)``, ``n_ms = round(1000 * max last obs_intervals end)``;
spike ``t`` lands in 1 ms bin ``int(round(t * 1000, 6))``. A folder loads every ``*.nwb`` in sorted order
(``desc-test`` before ``desc-train``); each later file starts ``ceil(10 * (previous end + 0.05 s)) / 10``
seconds after the previous one (the gap is unobserved) and its trial ids are offset by the trials before
it. Files are opened read-only and never written.

Examples
--------
>>> from neurodyn.data.nwb import load_session              # doctest: +SKIP
>>> s = load_session("sub-Jenkins_ses-small_desc-test_ecephys.nwb")   # doctest: +SKIP
>>> s.n_units, s.n_trials, s.n_ms                           # doctest: +SKIP
(107, 100, 79900)
"""

from __future__ import annotations

import contextlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from neurodyn.data.stream import StreamedFile
from neurodyn.errors import InputError
from neurodyn.io import read_h5

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
#: unit groups: False = held-in, True = held-out
GROUPS = (False, True)


def seconds_to_ns(seconds) -> np.ndarray:
    """Float seconds -> int64 ns exactly as ``pandas.to_timedelta(x, unit='s')`` converts them.

    pandas splits off the whole seconds, rounds the fraction to 9 digits and truncates ``frac * 1e9``.
    Reproducing this keeps window edges bit-identical with nlb_tools. NaN gives 0 (check validity apart).
    """
    t = np.asarray(seconds, dtype=np.float64)
    t = np.where(np.isfinite(t), t, 0.0)
    base = t.astype(np.int64)
    frac = np.round(t - base, 9)
    return base * NS_PER_S + (frac * NS_PER_S).astype(np.int64)


def spike_ms_index(spike_times) -> np.ndarray:
    """1 ms bin of each spike: ``int(round(t * 1000, 6))`` (nlb_tools' rule; t = 0.005 s -> bin 5)."""
    return np.round(np.asarray(spike_times, dtype=np.float64) * 1000.0, 6).astype(np.int64)


@dataclass(frozen=True)
class SourceFile:
    """One file of a session: where its clock starts on the session clock, and its extent.

    ``path`` is the local file, or the :class:`neurodyn.data.stream.StreamedFile` it was read from
    (``.name`` works on both).
    """

    path: Path | StreamedFile
    offset_ms: int
    n_ms: int
    n_trials: int
    n_units: int
    has_heldout_column: bool
    has_obs_intervals: bool


@dataclass(frozen=True)
class _SeriesPart:
    source: Path | StreamedFile
    data_path: str | None
    timestamps_path: str | None
    starting_time: float
    rate: float | None
    n_samples: int
    offset_ms: int
    n_ms_file: int
    data: np.ndarray | None = None  # only for series not backed by the file


@dataclass(frozen=True)
class BehaviorSeries:
    """A time series of the session (e.g. ``hand_vel``), read lazily from its file(s).

    Attributes
    ----------
    name
        nlb_tools' field name: the series name, or ``<container>_<series>`` inside a container.
    columns
        Channel names (from ``comments`` ``columns=[...]``, else ``0000``, ``0001``, ...).
    dtype
        Stored dtype (kept through resampling, as nlb_tools does).
    unit, description
        From the NWB TimeSeries.
    """

    name: str
    columns: tuple[str, ...]
    dtype: np.dtype
    unit: str
    description: str
    parts: tuple[_SeriesPart, ...]

    @property
    def n_channels(self) -> int:
        return len(self.columns)

    @property
    def n_samples(self) -> int:
        return sum(p.n_samples for p in self.parts)

    def on_grid(self, n_ms: int) -> np.ndarray:
        """The series on the session's 1 ms grid, shape ``(n_ms, n_channels)``; NaN where absent.

        Raises
        ------
        InputError
            When a sample is off the 1 ms grid or outside its file's grid (nlb_tools drops such series).
        """
        dtype = self.dtype if np.issubdtype(self.dtype, np.floating) else np.dtype(np.float64)
        out = np.full((n_ms, self.n_channels), np.nan, dtype=dtype)
        for part in self.parts:
            with _open_h5(part.source) as f:
                data = part.data if part.data is not None else f[part.data_path][()]
                if part.timestamps_path is not None:
                    t = np.asarray(f[part.timestamps_path][()], dtype=np.float64)
                else:
                    t = part.starting_time + np.arange(part.n_samples) / part.rate
            data = np.asarray(data).reshape(part.n_samples, -1)
            t = np.round(t, 6)
            k = np.rint(t * 1000.0)
            ok = (np.round(k / 1000.0, 6) == t) & (k >= 0) & (k < part.n_ms_file)
            if not np.all(ok):
                bad = t[~ok][0]
                raise InputError(
                    f"series {self.name!r} has a sample at {bad!r} s that is off the 1 ms grid "
                    f"[0, {part.n_ms_file / 1000} s) of its file",
                    _where(part.source),
                    self.name,
                )
            out[k.astype(np.int64) + part.offset_ms] = data
        return out


@dataclass
class NWBSession:
    """Spikes, trials and time series of one NLB file or a folder of them, on one session clock.

    Attributes
    ----------
    path
        The file or folder given (a Path), or the URL / file-object label (a str).
    files
        The files read, in load order, with their offsets on the session clock.
    unit_ids
        NWB unit ids, shape ``(n_units,)``; held-in units keep their id across files.
    heldout
        Held-out flag per unit (False where a file has no ``heldout`` column).
    spike_times
        Spike times per unit in seconds on the session clock.
    spike_ms
        Sorted 1 ms bin index (:func:`spike_ms_index`, plus the file offset) of every *observed* spike:
        spikes at milliseconds outside the group's observed intervals are dropped, as nlb_tools' NaN
        mask erases them.
    obs_intervals
        Observed intervals per unit, ``(k, 2)`` seconds; None when the files have none.
    observed_ms
        Per group (False = held-in, True = held-out): merged ``[start, end)`` ms intervals where that
        group's spikes are observed — the first unit of the group in each file decides, as in nlb_tools.
    trials
        Trial table: column name -> array (``trial_id``, ``start_time``, ``end_time``, ...). Times in s.
    trial_ns
        For each ``*_time`` column: (int64 ns on the session clock as pandas computes it, valid mask).
    behavior
        Time series by name (read lazily).
    n_ms
        Length of the 1 ms grid.
    """

    path: Path | str
    files: tuple[SourceFile, ...]
    unit_ids: np.ndarray
    heldout: np.ndarray
    spike_times: list[np.ndarray]
    spike_ms: list[np.ndarray]
    obs_intervals: list[np.ndarray] | None
    observed_ms: dict[bool, np.ndarray]
    trials: dict[str, np.ndarray]
    trial_ns: dict[str, tuple[np.ndarray, np.ndarray]]
    behavior: dict[str, BehaviorSeries]
    n_ms: int
    cache: dict = field(default_factory=dict, repr=False)

    @property
    def n_units(self) -> int:
        return len(self.unit_ids)

    @property
    def n_trials(self) -> int:
        return len(self.trials["trial_id"])

    @property
    def n_heldin(self) -> int:
        return int(np.sum(~self.heldout))

    @property
    def n_heldout(self) -> int:
        return int(np.sum(self.heldout))

    @property
    def duration_s(self) -> float:
        return self.n_ms / 1000.0

    @property
    def n_spikes(self) -> int:
        return int(sum(len(s) for s in self.spike_ms))

    def group(self, heldout: bool) -> np.ndarray:
        """Positions of the held-in (False) or held-out (True) units, ordered by unit id (nlb_tools)."""
        idx = np.flatnonzero(self.heldout == heldout)
        return idx[np.argsort(self.unit_ids[idx], kind="stable")]

    def column(self, name: str, needed_for: str = "") -> np.ndarray:
        """A trial column, or InputError naming the file and ``trials/<name>``."""
        if name not in self.trials:
            why = f" (needed for {needed_for})" if needed_for else ""
            raise InputError(f"missing trial column{why}", self.path, f"trials/{name}")
        return self.trials[name]

    def time_ns(self, name: str, needed_for: str = "") -> tuple[np.ndarray, np.ndarray]:
        """(ns, valid) of a ``*_time`` trial column, or InputError if it is missing."""
        self.column(name, needed_for)
        if name not in self.trial_ns:
            raise InputError("not a time column (names ending in '_time' are)", self.path, f"trials/{name}")
        return self.trial_ns[name]

    def split(self) -> np.ndarray:
        """The ``split`` column as strings (``train``/``val``/``test``/``none``)."""
        return np.asarray([str(s) for s in self.column("split", "trial splits")], dtype=object)

    def files_without_heldout(self) -> list[Path | StreamedFile]:
        return [f.path for f in self.files if not f.has_heldout_column]


# --------------------------------------------------------------------------------------------- reading
@dataclass
class _FileData:
    path: Path | StreamedFile
    unit_ids: np.ndarray
    heldout: np.ndarray | None
    spike_times: list[np.ndarray]
    obs_intervals: list[np.ndarray] | None
    trials: dict[str, np.ndarray]
    series: dict[str, BehaviorSeries]
    n_ms: int


def _where(source) -> Path | str:
    """What error messages call a source: the local path, or the URL / label of a streamed file."""
    return source if isinstance(source, Path) else str(source)


def _open_h5(source):
    """Context manager: a local file through :func:`neurodyn.io.read_h5`, a streamed one through its reader."""
    return read_h5(source, "NWB file") if isinstance(source, Path) else source.h5()


def _open_nwb_stream(source: StreamedFile):
    """(io, nwbfile, h5file) of a streamed / file-object source; no full-file walk (it would fetch every
    object header over the network)."""
    import h5py

    with source.guard():
        h5 = h5py.File(source.reader, "r")
    is_nwb = "nwb_version" in h5.attrs or h5.attrs.get("neurodata_type") == "NWBFile"
    if not is_nwb:
        h5.close()
        raise InputError("HDF5 file without NWB metadata (no 'nwb_version' attribute)", source.label)
    from pynwb import NWBHDF5IO

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            io = NWBHDF5IO(file=h5, mode="r", load_namespaces=True)
            nwb = io.read()
    except Exception as err:
        h5.close()
        failure = source.failure()
        if failure is not None:
            raise failure from None
        raise InputError(
            f"not a readable NWB file ({type(err).__name__}: {' '.join(str(err).split())[:200]})", source.label
        ) from None
    return io, nwb, h5


def _open_nwb(path: Path):
    with read_h5(path, "NWB file") as f:
        try:
            f.visit(lambda name: None)  # touches every object header: truncated files fail here
            is_nwb = "nwb_version" in f.attrs or f.attrs.get("neurodata_type") == "NWBFile"
        except OSError:
            raise  # read_h5 reports it
        except Exception as err:  # h5py's RuntimeError/KeyError for damaged object headers
            raise InputError(
                f"truncated or damaged HDF5 file ({' '.join(str(err).split())[:200]})", path
            ) from None
    if not is_nwb:
        raise InputError("HDF5 file without NWB metadata (no 'nwb_version' attribute)", path)
    from pynwb import NWBHDF5IO

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            io = NWBHDF5IO(str(path), mode="r", load_namespaces=True)
            nwb = io.read()
    except Exception as err:
        raise InputError(
            f"not a readable NWB file ({type(err).__name__}: {' '.join(str(err).split())[:200]})", path
        ) from None
    return io, nwb


def _ragged(col) -> list[np.ndarray] | np.ndarray:
    """A DynamicTable column as a list of per-row arrays (indexed) or one array."""
    from hdmf.common.table import VectorIndex

    if isinstance(col, VectorIndex):
        ends = np.asarray(col.data[:], dtype=np.int64)
        flat = np.asarray(col.target.data[:])
        starts = np.concatenate([[0], ends[:-1]])
        return [flat[a:b] for a, b in zip(starts, ends)]
    return np.asarray(col.data[:])


def _as_column(values) -> np.ndarray:
    if isinstance(values, list):  # ragged
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out
    arr = np.asarray(values)
    if arr.dtype.kind in "OSU":
        return np.asarray([v.decode() if isinstance(v, bytes) else v for v in arr.tolist()], dtype=object)
    return arr


def _find_series(nwb, path: Path) -> dict[str, object]:
    """TimeSeries found as nlb_tools finds them (children, processing modules, containers)."""
    from pynwb import ProcessingModule, TimeSeries
    from pynwb.core import MultiContainerInterface

    found: dict[str, object] = {}

    def walk(obj):
        for child in obj.children:
            if isinstance(child, TimeSeries):
                found[child.name] = child
            elif isinstance(child, ProcessingModule):
                walk(child)
            elif isinstance(child, MultiContainerInterface):
                for sub in child.children:
                    if isinstance(sub, TimeSeries):
                        found[f"{child.name}_{sub.name}"] = sub

    walk(nwb)
    return found


def _series_meta(name: str, ts, path: Path | StreamedFile, n_ms: int) -> BehaviorSeries:
    import h5py

    data = ts.data
    shape = tuple(data.shape)
    n_samples = shape[0] if shape else 0
    n_channels = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    comments = ts.comments or ""
    if "columns=" in comments:
        columns = tuple(c.strip() for c in comments.split("[")[-1].split("]")[0].split(","))
        if len(columns) != n_channels:
            columns = tuple(f"{i:04d}" for i in range(n_channels))
    else:
        columns = tuple(f"{i:04d}" for i in range(n_channels))
    stamps = ts.timestamps
    part = _SeriesPart(
        source=path,
        data_path=data.name if isinstance(data, h5py.Dataset) else None,
        timestamps_path=stamps.name if isinstance(stamps, h5py.Dataset) else None,
        starting_time=float(ts.starting_time or 0.0) if stamps is None else 0.0,
        rate=float(ts.rate) if stamps is None and ts.rate else None,
        n_samples=n_samples,
        offset_ms=0,
        n_ms_file=n_ms,
        data=None if isinstance(data, h5py.Dataset) else np.asarray(data),
    )
    if stamps is not None and not isinstance(stamps, h5py.Dataset):
        raise InputError("timestamps not stored in the file", _where(path), name)
    if stamps is None and part.rate is None:
        raise InputError("time series has neither timestamps nor a rate", _where(path), name)
    return BehaviorSeries(
        name=name,
        columns=columns,
        dtype=np.dtype(data.dtype),
        unit=str(ts.unit or ""),
        description=str(ts.description or ""),
        parts=(part,),
    )


def _read_file(source: Path | StreamedFile) -> _FileData:
    if isinstance(source, Path):
        io, nwb = _open_nwb(source)
        try:
            return _read_nwb(nwb, source, source)
        finally:
            io.close()
            del io, nwb
            _collect()
    _collect()
    io, nwb, h5 = _open_nwb_stream(source)
    try:
        with source.guard():
            return _read_nwb(nwb, source, source.label)
    finally:
        with contextlib.suppress(Exception):
            io.close()
        with contextlib.suppress(Exception):
            h5.close()
        del io, nwb, h5
        _collect()


def _collect() -> None:
    """Collect the reference cycles a pynwb read leaves (its IO object and containers) here, in this thread.

    Their finalizers take h5py's global lock; collected later by whichever thread happens to trigger the
    garbage collector, they would wait for that lock while this thread holds it during a streamed read
    that waits on that thread (an in-process HTTP server) -- a deadlock.
    """
    import gc

    gc.collect()


def _read_nwb(nwb, source: Path | StreamedFile, path: Path | str) -> _FileData:
    """The units, trials and time series of an open NWB file (``path`` names it in messages)."""
    units = nwb.units
    if units is None or len(units.id) == 0:
        raise InputError("no units (the file has no 'units' table or it is empty)", path, "units")
    if "spike_times" not in units.colnames:
        raise InputError("missing column", path, "units/spike_times")
    trials = nwb.trials
    if trials is None or len(trials.id) == 0:
        raise InputError("no trials (the file has no 'trials' table or it is empty)", path, "trials")
    unit_ids = np.asarray(units.id.data[:], dtype=np.int64)
    spike_times = [np.asarray(s, dtype=np.float64) for s in _ragged(units["spike_times"])]
    heldout = np.asarray(units["heldout"].data[:], dtype=bool) if "heldout" in units.colnames else None
    obs = None
    if "obs_intervals" in units.colnames:
        obs = [np.asarray(o, dtype=np.float64).reshape(-1, 2) for o in _ragged(units["obs_intervals"])]
    table: dict[str, np.ndarray] = {"trial_id": np.asarray(trials.id.data[:], dtype=np.int64)}
    from hdmf.common.table import DynamicTableRegion

    for name in trials.colnames:
        col = trials[name]
        if (
            isinstance(col, DynamicTableRegion)
            or getattr(col, "target", None) is not None
            and isinstance(col.target, DynamicTableRegion)
        ):
            continue
        key = "end_time" if name == "stop_time" else name
        table[key] = _as_column(_ragged(col))
    for name in ("start_time", "end_time"):
        if name not in table:
            raise InputError("missing column", path, f"trials/{name}")
    for uid, t in zip(unit_ids, spike_times):
        if not np.all(np.isfinite(t)):
            raise InputError(f"unit {uid}: non-finite spike time", path, "units/spike_times")
    ends = [o[-1, 1] for o in obs if len(o)] if obs is not None else []
    if ends:
        n_ms = int(np.round(max(ends) * 1000.0))
    else:  # no obs_intervals: cover every trial and spike
        last = max(
            [float(np.nanmax(table["end_time"]))] + [float(t.max()) for t in spike_times if len(t)]
        )
        n_ms = int(np.floor(round(last * 1000.0, 6))) + 1
    series = {}
    for name, ts in _find_series(nwb, path).items():
        series[name] = _series_meta(name, ts, source, n_ms)
    return _FileData(source, unit_ids, heldout, spike_times, obs, table, series, n_ms)


# --------------------------------------------------------------------------------------------- merging
def _observed(fd: _FileData, heldout: np.ndarray, group: bool) -> np.ndarray:
    """[start, end) ms observed for a group in one file (first unit of the group decides)."""
    members = np.flatnonzero(heldout == group)
    if len(members) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    if fd.obs_intervals is None:
        return np.array([[0, fd.n_ms]], dtype=np.int64)
    iv = fd.obs_intervals[members[0]]
    start = np.ceil(np.round(iv[:, 0] * 1000.0, 6)).astype(np.int64)
    end = np.floor(np.round(iv[:, 1] * 1000.0, 6)).astype(np.int64)
    out = np.stack([np.clip(start, 0, fd.n_ms), np.clip(end, 0, fd.n_ms)], axis=1)
    return out[out[:, 1] > out[:, 0]]


def merge_intervals(iv: np.ndarray) -> np.ndarray:
    """Union of ``[start, end)`` integer intervals, sorted and disjoint."""
    if len(iv) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    iv = iv[np.argsort(iv[:, 0], kind="stable")]
    out = [list(iv[0])]
    for a, b in iv[1:]:
        if a <= out[-1][1]:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return np.asarray(out, dtype=np.int64)


def observed_at(intervals: np.ndarray, ms) -> np.ndarray:
    """True where the 1 ms sample ``ms`` lies in one of the sorted disjoint ``[start, end)`` intervals."""
    ms = np.asarray(ms, dtype=np.int64)
    if len(intervals) == 0:
        return np.zeros(ms.shape, dtype=bool)
    i = np.searchsorted(intervals[:, 0], ms, side="right") - 1
    return (i >= 0) & (ms < intervals[np.maximum(i, 0), 1])


def _next_offset(prev_offset_ms: int, prev_n_ms: int) -> int:
    """Where nlb_tools starts the next file: the previous last sample + 50 ms, up to 100 ms."""
    past_end = (prev_offset_ms + prev_n_ms - 1) * NS_PER_MS / NS_PER_S + round(50 / 1000, 4)
    return int(np.ceil(past_end * 10) * 100)


def _merge_column(values: list[np.ndarray | None], counts: list[int]) -> np.ndarray:
    present = [v for v in values if v is not None]
    numeric = all(v.dtype.kind in "biuf" for v in present)
    if numeric and all(v is not None for v in values):
        return np.concatenate(values)
    if numeric:
        return np.concatenate(
            [v.astype(np.float64) if v is not None else np.full(n, np.nan) for v, n in zip(values, counts)]
        )
    parts = []
    for v, n in zip(values, counts):
        part = np.empty(n, dtype=object)
        part[:] = list(v) if v is not None else [None] * n
        parts.append(part)
    return np.concatenate(parts)


def _merge(fds: list[_FileData], path: Path | str) -> NWBSession:
    offsets = [0]
    for i in range(1, len(fds)):
        offsets.append(_next_offset(offsets[-1], fds[i - 1].n_ms))
    n_ms = offsets[-1] + fds[-1].n_ms

    # units: matched by (heldout, id) across files, in order of first appearance
    keys: dict[tuple[bool, int], int] = {}
    spike_times: list[list[np.ndarray]] = []
    spike_ms: list[list[np.ndarray]] = []
    obs: list[list[np.ndarray]] = []
    observed = {g: [] for g in GROUPS}
    files = []
    ids_seen: dict[int, bool] = {}
    for fd, off in zip(fds, offsets):
        held = fd.heldout if fd.heldout is not None else np.zeros(len(fd.unit_ids), dtype=bool)
        for j, uid in enumerate(fd.unit_ids.tolist()):
            flag = bool(held[j])
            if ids_seen.get(uid, flag) != flag:
                raise InputError(
                    f"unit {uid} is held-out in one file and held-in in another", _where(fd.path), "units/heldout"
                )
            ids_seen[uid] = flag
            k = keys.setdefault((flag, uid), len(keys))
            if k == len(spike_times):
                spike_times.append([])
                spike_ms.append([])
                obs.append([])
            t = fd.spike_times[j]
            idx = spike_ms_index(t)
            bad = (np.round(t * 1000.0, 6) < 0) | (idx >= fd.n_ms)
            if np.any(bad):
                raise InputError(
                    f"unit {uid}: spike at {t[bad][0]:.6f} s is outside the session "
                    f"[0, {fd.n_ms / 1000:g}) s (the grid ends at the last obs_intervals end)",
                    _where(fd.path),
                    "units/spike_times",
                )
            spike_times[k].append(t + off / 1000.0)
            spike_ms[k].append(idx + off)
            if fd.obs_intervals is not None:
                obs[k].append(fd.obs_intervals[j] + off / 1000.0)
        for g in GROUPS:
            iv = _observed(fd, held, g)
            observed[g].append(iv + off)
        files.append(
            SourceFile(
                fd.path,
                off,
                fd.n_ms,
                len(fd.trials["trial_id"]),
                len(fd.unit_ids),
                fd.heldout is not None,
                fd.obs_intervals is not None,
            )
        )
    unit_keys = list(keys)
    has_obs = all(fd.obs_intervals is not None for fd in fds)

    # trials: time columns shifted (in ns, as pandas does), trial ids offset by the trials before
    counts = [len(fd.trials["trial_id"]) for fd in fds]
    names: list[str] = []
    for fd in fds:
        names += [n for n in fd.trials if n not in names]
    trials: dict[str, np.ndarray] = {}
    trial_ns: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    before = np.cumsum([0] + counts[:-1])
    for name in names:
        cols = [fd.trials.get(name) for fd in fds]
        if name == "trial_id":
            trials[name] = np.concatenate([c + b for c, b in zip(cols, before)])
        elif name.endswith("_time"):
            secs, ns, valid = [], [], []
            for c, n, off in zip(cols, counts, offsets):
                c = np.full(n, np.nan) if c is None else np.asarray(c, dtype=np.float64)
                secs.append(c + off / 1000.0)
                ns.append(seconds_to_ns(c) + off * NS_PER_MS)
                valid.append(np.isfinite(c))
            trials[name] = np.concatenate(secs)
            trial_ns[name] = (np.concatenate(ns), np.concatenate(valid))
        else:
            trials[name] = _merge_column(cols, counts)

    behavior: dict[str, BehaviorSeries] = {}
    for fd, off in zip(fds, offsets):
        for name, s in fd.series.items():
            part = s.parts[0]
            part = _SeriesPart(
                part.source,
                part.data_path,
                part.timestamps_path,
                part.starting_time,
                part.rate,
                part.n_samples,
                off,
                part.n_ms_file,
                part.data,
            )
            if name in behavior:
                prev = behavior[name]
                behavior[name] = BehaviorSeries(
                    name, prev.columns, prev.dtype, prev.unit, prev.description, prev.parts + (part,)
                )
            else:
                behavior[name] = BehaviorSeries(name, s.columns, s.dtype, s.unit, s.description, (part,))

    def cat(lst, dtype):
        return np.concatenate(lst) if lst else np.zeros(0, dtype=dtype)

    observed_ms = {g: merge_intervals(np.concatenate(observed[g])) for g in GROUPS}
    # nlb_tools sets unobserved 1 ms samples to NaN, which erases their spikes even inside a bin whose first
    # millisecond is observed; drop them here once
    ms = []
    for (flag, _), parts in zip(unit_keys, spike_ms):
        idx = np.sort(cat(parts, np.int64), kind="stable")
        ms.append(idx[observed_at(observed_ms[flag], idx)])
    return NWBSession(
        path=path,
        files=tuple(files),
        unit_ids=np.asarray([k[1] for k in unit_keys], dtype=np.int64),
        heldout=np.asarray([k[0] for k in unit_keys], dtype=bool),
        spike_times=[cat(parts, np.float64) for parts in spike_times],
        spike_ms=ms,
        obs_intervals=[np.concatenate(o) if o else np.zeros((0, 2)) for o in obs] if has_obs else None,
        observed_ms=observed_ms,
        trials=trials,
        trial_ns=trial_ns,
        behavior=behavior,
        n_ms=n_ms,
    )


NWBInput = str | os.PathLike | StreamedFile | BinaryIO


def nwb_files(path: NWBInput) -> list[Path | StreamedFile]:
    """The NWB files an input stands for: the file itself, a folder's ``*.nwb`` sorted by name, the
    remote file(s) of a ``dandi://`` / ``https://`` URL (:func:`neurodyn.data.stream.resolve_url`), or
    an open binary file object.

    Local files come back as Paths, the others as :class:`neurodyn.data.stream.StreamedFile`.
    """
    from neurodyn.data.stream import FileObjectSource, is_url, resolve_url

    if isinstance(path, StreamedFile):
        return [path]
    if isinstance(path, (list, tuple)) and path and all(isinstance(p, StreamedFile) for p in path):
        return list(path)
    if is_url(path):
        return resolve_url(path)
    if hasattr(path, "read") and hasattr(path, "seek"):
        return [FileObjectSource(path)]
    path = Path(path).expanduser()
    if path.is_dir():
        files = sorted(path.glob("*.nwb"))
        if not files:
            raise InputError("folder holds no .nwb files", path)
        return files
    if not path.exists():
        raise InputError("no such file or folder", path)
    return [path]


def load_session(path: NWBInput) -> NWBSession:
    """Read one NLB NWB file, or every ``*.nwb`` of a folder (test before train), into an NWBSession.

    ``path`` may also be a ``dandi://`` or ``https://`` URL (streamed, see :mod:`neurodyn.data.stream`)
    or an open binary file object.

    Raises
    ------
    InputError
        Missing file, not HDF5, truncated HDF5, NWB without units or trials, spike times outside the
        session; the message names the file and the field.
    """
    files = nwb_files(path)
    if isinstance(files[0], Path):
        label: Path | str = Path(path).expanduser()
    elif isinstance(path, str):
        label = path  # the URL given
    else:
        label = files[0].label
    return _merge([_read_file(f) for f in files], label)
