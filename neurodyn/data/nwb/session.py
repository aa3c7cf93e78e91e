"""The in-memory NWB session: time grid constants, spike-time helpers, behaviour series and :class:`NWBSession`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

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


def _where(source) -> Path | str:
    """What error messages call a source: the local path, or the URL / label of a streamed file."""
    return source if isinstance(source, Path) else str(source)


def _open_h5(source):
    """Context manager: a local file through :func:`neurodyn.io.read_h5`, a streamed one through its reader."""
    return read_h5(source, "NWB file") if isinstance(source, Path) else source.h5()
