"""Reading one NWB file (local, streamed or a file object) into plain arrays: units, trials, lazy time series.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurodyn.data.nwb.session import BehaviorSeries, _SeriesPart, _where
from neurodyn.data.stream import StreamedFile
from neurodyn.errors import InputError, one_line
from neurodyn.io import read_h5


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


#: what ``prepare --nwb`` reads, for a file that is none of neurodyn's own kinds (:func:`_not_nwb`)
NWB_EXPECTED = ("prepare reads the NWB files of an NLB session (DANDI's, or neurodyn simulate nlb's): root attribute "
                "'nwb_version', groups 'units' and 'intervals/trials'")


def _top_level(f, shown: int = 8) -> str:
    """The first ``shown`` top-level objects of an open HDF5 file by name, as groups and datasets (only these are
    opened: a streamed file fetches each one's header).

    >>> import h5py, io
    >>> with h5py.File(io.BytesIO(), "w") as f:
    ...     _ = f.create_group("meta"); _ = f.create_group("results"); f["data"] = [1, 2]
    ...     _top_level(f)
    "groups 'meta', 'results' and dataset 'data'"
    """
    import h5py

    names = sorted(f)
    kinds: dict[str, list[str]] = {"group": [], "dataset": [], "other object": []}
    for name in names[:shown]:
        obj = f.get(name) if isinstance(f.get(name, getlink=True), h5py.HardLink) else None
        kind = "group" if isinstance(obj, h5py.Group) else "dataset" if isinstance(obj, h5py.Dataset) \
            else "other object"
        kinds[kind].append(repr(name))
    parts = [f"{kind}{'s' if len(listed) > 1 else ''} {', '.join(listed)}" for kind, listed in kinds.items() if listed]
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return (", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else "".join(parts)) + more


def _not_nwb(f) -> str:
    """``"; it is ..."``: what an HDF5 file given as NWB input is -- a prepared file, an LFADS-format or
    switching-GLM data file, a prediction file --, else what its top level holds and what prepare reads
    (``prepare --nwb prep.h5`` said only 'HDF5 file without NWB metadata'; an unrelated HDF5 file too)."""
    from neurodyn.data.prepared import _other_kind, is_prepared

    if is_prepared(f):
        return "; it is a prepared file already (neurodyn prepare's output: fit, baseline, evaluate take it)"
    other = _other_kind(f)
    if other:
        return f"; it {other[1]}"
    found = _top_level(f)
    return f"; its top level holds {found or 'nothing'}; {NWB_EXPECTED}"


#: the DynamicTables the reader reads, named in messages as the reader names their columns (``trials/<column>``)
_TABLES = {"units": "units", "intervals/trials": "trials"}


def _table_damage(table) -> tuple[str, str] | None:
    """``(dataset, reason)`` of the first dataset an HDF5 DynamicTable group ``table`` lacks or holds with the
    wrong number of rows, else None. pynwb refuses such a table with a ConstructError whose text is the whole
    table's builder (a column missing but still listed in its ``colnames``, a ragged column without its
    ``<column>_index``); this names the dataset instead.

    Checked: the row ids (``id``); each column ``colnames`` lists is a dataset of the group; the outermost of a
    column and its indexes (``<column>``, ``<column>_index``, ``<column>_index_index``...) has one entry per row.

    >>> import h5py, io
    >>> with h5py.File(io.BytesIO(), "w") as f:
    ...     t = f.create_group("units"); t.attrs["colnames"] = ["spike_times", "heldout"]
    ...     t["id"] = [0, 1]; t["spike_times"] = [0.1, 0.2, 0.3]; t["heldout"] = [False, True]
    ...     field, why = _table_damage(t)
    >>> field
    'spike_times_index'
    >>> why.split(", which")[0]
    "missing: 'spike_times' holds 3 values for the table's 2 rows"
    """
    import h5py

    if not isinstance(table.get("id"), h5py.Dataset):
        return "id", "missing: the table's row ids (its 'id' dataset) are not in the file"
    n_rows = table["id"].shape[0] if table["id"].shape else 0
    colnames = np.atleast_1d(table.attrs.get("colnames", []))
    for column in (c.decode("utf-8", "replace") if isinstance(c, bytes) else str(c) for c in colnames):
        if column not in table:
            return column, "missing: listed in the table's colnames, but the file holds no such dataset"
        chain = [column]
        while f"{chain[-1]}_index" in table:
            chain.append(f"{chain[-1]}_index")
        outer = table.get(chain[-1])
        if not isinstance(outer, h5py.Dataset):
            return chain[-1], "expected a dataset, found a group"
        length = outer.shape[0] if outer.shape else 0
        if length == n_rows:
            continue
        if len(chain) > 1:
            return chain[-1], f"{length} end offsets for the table's {n_rows} rows (its 'id')"
        if length > n_rows:  # more values than rows: only an index splits them into rows
            return f"{column}_index", (f"missing: '{column}' holds {length} values for the table's {n_rows} rows, "
                                       f"which only an index ('{column}_index', absent) splits into rows")
        return column, f"{length} values for the table's {n_rows} rows (its 'id')"
    return None


def _unreadable(h5, err: Exception, where) -> InputError:
    """The InputError of an NWB file pynwb could not read (``err``): the first dataset a DynamicTable of the open
    file ``h5`` lacks (:func:`_table_damage`; those the reader reads first, then any other: pynwb reads them
    all), named as ``<table>/<dataset>``; else pynwb's own error, cut to one line."""
    import h5py

    if h5 is not None:
        tables: list[str] = []
        h5.visititems(lambda name, obj: tables.append(name)
                      if isinstance(obj, h5py.Group) and "colnames" in obj.attrs else None)
        for name in sorted(tables, key=lambda n: (n not in _TABLES, n)):
            found = _table_damage(h5[name])
            if found is not None:  # names as the file spells them, on one line (a name may hold a newline)
                return InputError(one_line(found[1], 300), where,
                                  one_line(f"{_TABLES.get(name, name)}/{found[0]}", 120))
    return InputError(f"not a readable NWB file ({type(err).__name__}: {one_line(err, 200)})", where)


def _open_nwb_stream(source: StreamedFile):
    """(io, nwbfile, h5file) of a streamed / file-object source; no full-file walk (it would fetch every
    object header over the network)."""
    import h5py

    reader = source.reader  # a network failure is told of the reader that read (StreamedFile.failure)
    with source.guard(reader):
        h5 = h5py.File(reader, "r")
    is_nwb = "nwb_version" in h5.attrs or h5.attrs.get("neurodata_type") == "NWBFile"
    if not is_nwb:
        what = _not_nwb(h5)
        h5.close()
        raise InputError(f"HDF5 file without NWB metadata (no 'nwb_version' attribute){what}", source.label)
    from pynwb import NWBHDF5IO

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            io = NWBHDF5IO(file=h5, mode="r", load_namespaces=True)
            nwb = io.read()
    except Exception as err:
        failure = source.failure(reader)
        if failure is not None:
            h5.close()
            raise failure from None
        error = _unreadable(None, err, source.label)
        with contextlib.suppress(Exception), source.guard(reader):
            error = _unreadable(h5, err, source.label)
        h5.close()
        raise error from None
    return io, nwb, h5


def _open_nwb(path: Path):
    with read_h5(path, "NWB file") as f:
        try:
            f.visit(lambda name: None)  # touches every object header: truncated files fail here
            is_nwb = "nwb_version" in f.attrs or f.attrs.get("neurodata_type") == "NWBFile"
            what = "" if is_nwb else _not_nwb(f)
        except OSError:
            raise  # read_h5 reports it
        except Exception as err:  # h5py's RuntimeError/KeyError for damaged object headers
            raise InputError(
                f"truncated or damaged HDF5 file ({one_line(err, 200)})", path
            ) from None
    if not is_nwb:
        raise InputError(f"HDF5 file without NWB metadata (no 'nwb_version' attribute){what}", path)
    from pynwb import NWBHDF5IO

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            io = NWBHDF5IO(str(path), mode="r", load_namespaces=True)
            nwb = io.read()
    except Exception as err:
        import h5py

        error = _unreadable(None, err, path)
        with contextlib.suppress(Exception), h5py.File(path, "r") as h5:
            error = _unreadable(h5, err, path)
        raise error from None
    return io, nwb


def units_header(path: Path) -> tuple[str | None, int, int] | None:
    """``(subject_id, units, held-out units)`` of a local NWB file, read cheaply; None when it cannot tell.

    Opens the file with h5py alone and reads ``general/subject/subject_id`` (None when absent),
    the length of ``units/id`` and the number of True values in ``units/heldout`` (0 without the column):
    no pynwb read, no walk over the file, no spike times, whatever the file's size. Any problem (not HDF5,
    damaged, no units table) gives None and is left to :func:`_read_file` to report.
    """
    import h5py

    try:
        with h5py.File(path, "r") as f:
            n_units = int(f["units/id"].shape[0])
            held = f["units/heldout"] if "heldout" in f["units"] else None
            if held is not None and held.shape != (n_units,):
                return None
            n_heldout = int(np.count_nonzero(held[:])) if held is not None else 0
            subject = f["general/subject/subject_id"][()] if "general/subject/subject_id" in f else None
    except Exception:  # noqa: BLE001 -- the full read reports the problem with its field
        return None
    if isinstance(subject, bytes):
        subject = subject.decode("utf-8", "replace")
    return (subject if isinstance(subject, str) else None), n_units, n_heldout


def _ragged(col, path=None, field: str | None = None, n_rows: int | None = None) -> list[np.ndarray] | np.ndarray:
    """A DynamicTable column as a list of per-row arrays (indexed) or one array.

    An indexed column is checked against its index first (a damaged index would silently give rows the
    wrong values): integer end offsets, one per row when ``n_rows`` is given, non-negative, non-decreasing
    and within the data; an InputError names ``<field>_index``."""
    from hdmf.common.table import VectorIndex

    if not isinstance(col, VectorIndex):
        return np.asarray(col.data[:])
    flat, ends = col.target.data, col.data
    index_field = f"{field}_index" if field else None
    if (np.dtype(ends.dtype).kind not in "iu" or len(ends.shape) != 1
            or (n_rows is not None and ends.shape[0] != n_rows)):
        rows = f"{n_rows} " if n_rows is not None else ""
        raise InputError(f"expected {rows}integer end offsets (one per row), got shape {tuple(ends.shape)} of "
                         f"{ends.dtype}", path, index_field)
    ends = np.asarray(ends[:], dtype=np.int64)
    if len(ends) and (ends.min() < 0 or np.any(np.diff(ends) < 0)):
        raise InputError("end offsets must be non-negative and non-decreasing", path, index_field)
    if len(ends) and ends[-1] > flat.shape[0]:
        raise InputError(f"runs past the end of {field}: last end offset {int(ends[-1])}, but {flat.shape[0]} "
                         "values", path, index_field)
    values = np.asarray(flat[:])
    starts = np.concatenate([[0], ends[:-1]])
    return [values[a:b] for a, b in zip(starts, ends)]


def _spike_times(units, path) -> list[np.ndarray]:
    """``units/spike_times`` per unit, float64: 1-D numbers, checked against their index (:func:`_ragged`)."""
    field = "units/spike_times"
    col = units["spike_times"]
    flat = getattr(col, "target", col).data
    if np.dtype(flat.dtype).kind not in "iuf":
        raise InputError(f"expected spike times in seconds (numbers), found dtype {flat.dtype}", path, field)
    if getattr(col, "target", None) is not None and len(flat.shape) != 1:
        raise InputError(f"expected a 1-D array of spike times, got shape {tuple(flat.shape)}", path, field)
    return [np.asarray(s, dtype=np.float64) for s in _ragged(col, path, field, n_rows=len(units.id))]


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
            del io, nwb  # the cycles left are collected before any streamed read (below), not here
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


def _check_trial_order(table: dict[str, np.ndarray], path) -> None:
    """Refuse a trial that starts after it stops (NWB's TimeIntervals: ``stop_time`` is at or after
    ``start_time``; nlb_tools does not check it). Rows with a
    missing (NaN) time are left to the columns' users."""
    times = {}
    for key, field in (("start_time", "trials/start_time"), ("end_time", "trials/stop_time")):
        try:  # a column of text (or ragged) was a ValueError traceback here
            times[key] = np.asarray(table[key], dtype=np.float64)
        except (TypeError, ValueError):
            values = np.asarray(table[key], dtype=object).ravel()
            example = one_line(repr(values[0]), 40) if len(values) else "none"
            raise InputError(f"expected times in seconds (numbers), found values such as {example}", path,
                             field) from None
    start, stop = times["start_time"], times["end_time"]
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero(start > stop)
    if len(bad):
        i = bad[0]
        more = f" (and {len(bad) - 1} more trials)" if len(bad) > 1 else ""
        raise InputError(f"trial {int(table['trial_id'][i])} starts at {start[i]:.10g} s, after its stop_time "
                         f"{stop[i]:.10g} s{more}; a trial stops at or after its start", path, "trials/start_time")


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
    # a unit is named by its id (prepare's unit_ids; the files of a folder are matched by held-out flag and id), so
    # a repeated id merged two rows' spikes into one unit (both held-in, or both held-out) or was refused as "held-out
    # in one file and held-in in another" within one file; the rule is that of every unit id read (distinct
    # integers within int64), refused here naming the NWB file rather than later naming neurodyn's output
    from neurodyn.data.prepared import check_unit_ids

    unit_ids = check_unit_ids(path, "units/id", units.id.data[:], columns="row of the units table")
    spike_times = _spike_times(units, path)
    heldout = np.asarray(units["heldout"].data[:], dtype=bool) if "heldout" in units.colnames else None
    obs = None
    if "obs_intervals" in units.colnames:
        obs = [np.asarray(o, dtype=np.float64).reshape(-1, 2)
               for o in _ragged(units["obs_intervals"], path, "units/obs_intervals", n_rows=len(unit_ids))]
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
        table[key] = _as_column(_ragged(col, path, f"trials/{name}", n_rows=len(table["trial_id"])))
    for name in ("start_time", "end_time"):
        if name not in table:
            raise InputError("missing column", path, f"trials/{name}")
    _check_trial_order(table, path)
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
