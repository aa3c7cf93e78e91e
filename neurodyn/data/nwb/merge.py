"""Merging the files of a session onto one 1 ms grid (observed intervals, trial-id offsets) and the entry
points :func:`nwb_files` / :func:`load_session`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import numpy as np

from neurodyn.data.nwb.reader import _FileData, _read_file
from neurodyn.data.nwb.session import (
    GROUPS,
    NS_PER_MS,
    NS_PER_S,
    BehaviorSeries,
    NWBSession,
    SourceFile,
    _SeriesPart,
    _where,
    seconds_to_ns,
    spike_ms_index,
)
from neurodyn.data.stream import StreamedFile
from neurodyn.errors import InputError


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


def _label(fd: _FileData) -> str:
    return fd.path.name if isinstance(fd.path, Path) else str(getattr(fd.path, "label", fd.path))


def _check_one_session(fds: list[_FileData]) -> None:
    """Several files are read as one NLB session -- its train file and its test file: the same held-in units
    (nlb_tools lines files up by unit id), and no two files with trials of one kind (train / val, or test).
    Another session's or simulation's file in the folder was merged without a word before (units stacked,
    trials doubled)."""
    def heldin(fd):
        held = fd.heldout if fd.heldout is not None else np.zeros(len(fd.unit_ids), dtype=bool)
        return set(fd.unit_ids[~held].tolist())

    first = fds[0]
    ours = heldin(first)
    kinds: dict[str, _FileData] = {}
    for fd in fds:
        theirs = heldin(fd)
        if theirs != ours:
            raise InputError(
                f"its {len(theirs)} held-in units are not the {len(ours)} of {_label(first)} "
                f"({len(theirs ^ ours)} unit ids in one file only): the files of a folder are read as one NLB "
                "session (its train and test file); keep other sessions' files in other folders",
                _where(fd.path), "units/id")
        split = fd.trials.get("split")
        found = set() if split is None else {str(v) for v in np.asarray(split).tolist()}
        for kind, splits in (("train / val", {"train", "val"}), ("test", {"test"})):
            if not found & splits:
                continue
            if kind in kinds:
                raise InputError(
                    f"holds {kind} trials, as {_label(kinds[kind])} does: the files of a folder are read as one "
                    "NLB session (one train file, one test file); keep other sessions' files in other folders",
                    _where(fd.path), "trials/split")
            kinds[kind] = fd


def _merge(fds: list[_FileData], path: Path | str) -> NWBSession:
    if len(fds) > 1:
        _check_one_session(fds)
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
    from neurodyn.data.stream import FileObjectSource, check_url_typo, is_url, resolve_url

    if isinstance(path, StreamedFile):
        return [path]
    if isinstance(path, (list, tuple)) and path and all(isinstance(p, StreamedFile) for p in path):
        return list(path)
    if is_url(path):
        return resolve_url(path)
    if hasattr(path, "read") and hasattr(path, "seek"):
        return [FileObjectSource(path)]
    check_url_typo(path)  # "htps://..." read as a path was named "htps:/..."
    from neurodyn.io.hdf5 import absent_reason, check_input_file, refuse_denied

    path = Path(path).expanduser()
    # a folder this user may not list: glob found nothing there ("folder holds no .nwb files"); one it may list
    # but not enter: "no such file" for each; a path through one: Path.is_dir's PermissionError
    refuse_denied(path)
    if path.is_dir():
        files = sorted(path.glob("*.nwb"))
        if not files:
            raise InputError("folder holds no .nwb files", path)
    elif not path.exists():
        raise InputError(absent_reason(path, "no such file or folder"), path)
    else:
        files = [path]
    for file in files:  # a FIFO (also one in the folder): h5py's open would wait for a writer
        check_input_file(file, "NWB file")
    return files


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
