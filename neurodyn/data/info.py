"""``neurodyn info FILE``: a short summary of an NWB file (or folder), a prepared file, an LFADS-format
HDF5 file or any other HDF5 file, as rich tables.

``FILE`` may be a URL: ``dandi://<dandiset>[@<version>]/<path>`` or ``https://...`` is read over HTTP
range requests without downloading it (:mod:`neurodyn.data.stream`); for an NWB file only the metadata,
units and trials travel.

- NWB: files, session length, units (held-in / held-out), spikes, trials per split, trial columns and
  time series.
- ``neurodyn prepare`` output: attributes, then every array with shape, dtype, NaN fraction and mean.
- LFADS-format HDF5 (``train_data`` / ``valid_data`` ... keys) and anything else: the tree of datasets.

Examples
--------
>>> from neurodyn.commands.info import cli_main   # doctest: +SKIP
>>> cli_main(["sub-Jenkins_ses-small_desc-test_ecephys.nwb"])   # doctest: +SKIP
0
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from neurodyn.errors import InputError
from neurodyn.io import read_h5
from neurodyn.io.hdf5 import is_nwb

#: root keys that mark an LFADS-format file
LFADS_KEYS = {
    "train_data",
    "valid_data",
    "train_encod_data",
    "valid_encod_data",
    "train_recon_data",
    "valid_recon_data",
    "train_inds",
    "valid_inds",
}


def _h5(path: Path | str):
    """Context manager: the HDF5 file at a local path (:func:`neurodyn.io.read_h5`) or a URL (streamed)."""
    from neurodyn.data.stream import is_url, resolve_url

    if is_url(path):
        files = resolve_url(path)
        if len(files) != 1:
            raise InputError(f"stands for {len(files)} files, expected one", path)
        return files[0].h5()
    return read_h5(path, "info reads NWB and HDF5 files")


def file_kind(path: str | os.PathLike) -> str:
    """``"nwb"``, ``"prepared"``, ``"lfads"`` or ``"hdf5"``; InputError for anything unreadable."""
    from neurodyn.data.prepared import is_prepared
    from neurodyn.data.stream import is_url, resolve_url

    if is_url(path):
        if len(resolve_url(path)) > 1:  # a DANDI folder: its NWB files
            return "nwb"
    else:
        path = Path(path)
        if path.is_dir():
            if not sorted(path.glob("*.nwb")):
                raise InputError("folder holds no .nwb files", path)
            return "nwb"
    with _h5(path) as f:
        if is_nwb(f):
            return "nwb"
        if is_prepared(f):
            return "prepared"
        if LFADS_KEYS & set(f.keys()):
            return "lfads"
        return "hdf5"


def titled_table(title: str, *columns: str):
    """A rich table with a title above it (left) and folding columns."""
    from rich.table import Table

    # min_width: a title (a long path) is not folded over lines to the width of a narrow table
    table = Table(title=title, title_justify="left", show_lines=False, min_width=len(title))
    for c in columns:
        table.add_column(c, overflow="fold")
    return table


def _nwb(path: Path | str, console) -> None:
    from neurodyn.data.nwb import load_session

    s = load_session(path)
    what = "URL" if isinstance(path, str) else "folder" if path.is_dir() else "file"
    head = titled_table(f"NWB {what} {path}", "field", "value")
    for f in s.files:
        head.add_row(
            "file", f"{f.path.name} (offset {f.offset_ms / 1000:g} s, {f.n_trials} trials, {f.n_units} units)"
        )
    head.add_row("session length", f"{s.duration_s:.3f} s ({s.n_ms} ms grid)")
    head.add_row(
        "units",
        f"{s.n_units} ({s.n_heldin} held-in, {s.n_heldout} held-out)"
        + ("" if not s.files_without_heldout() else "; no 'heldout' column"),
    )
    rate = s.n_spikes / max(s.n_units, 1) / max(s.duration_s, 1e-9)
    head.add_row(
        "spikes", f"{sum(len(t) for t in s.spike_times)} ({rate:.2f} spikes/s per unit over the session)"
    )
    head.add_row("obs_intervals", "yes" if s.obs_intervals is not None else "none")
    console.print(head)

    trials = titled_table(f"Trials ({s.n_trials})", "split", "trials")
    if "split" in s.trials:
        names, counts = np.unique(s.split().astype(str), return_counts=True)
        for name, count in zip(names, counts):
            trials.add_row(name, str(count))
    else:
        trials.add_row("(no split column)", str(s.n_trials))
    console.print(trials)
    console.print("trial columns: " + ", ".join(s.trials))

    if not s.behavior:  # an NLB test file holds none (an empty table said only its header)
        console.print("time series: none")
        return
    beh = titled_table(f"Time series ({len(s.behavior)})", "name", "channels", "samples", "timing", "unit")
    for name, b in s.behavior.items():
        p = b.parts[0]
        timing = "timestamps" if p.timestamps_path else f"{p.rate:g} Hz from {p.starting_time:g} s"
        beh.add_row(name, ", ".join(b.columns), str(b.n_samples), timing, b.unit)
    console.print(beh)


def _arrays_table(title: str, items: list[tuple[str, object]]):
    table = titled_table(title, "array", "shape", "dtype", "NaN", "mean")
    for key, ds in items:
        shape = ds.shape
        dtype = ds.dtype
        if dtype.kind == "O" or ds.attrs.get("ragged", False):
            table.add_row(key, f"{shape[0]} ragged rows", str(dtype), "", "")
            continue
        nan, mean = "", ""
        if dtype.kind in "fiub" and ds.size:
            data = ds[()].astype(np.float64)
            isnan = np.isnan(data)
            nan = f"{isnan.mean():.4f}"
            mean = f"{np.nanmean(data):.5g}" if not isnan.all() else "nan"
        table.add_row(key, str(tuple(shape)), str(dtype), nan, mean)
    return table


def _datasets(f) -> list[tuple[str, object]]:
    import h5py

    items: list[tuple[str, object]] = []
    f.visititems(lambda name, obj: items.append((name, obj)) if isinstance(obj, h5py.Dataset) else None)
    return items


#: how ``info`` shows a prepared file's ``source_sha256_from`` values
SHA256_FROM = {"bytes": "bytes (hashed from the file read)",
               "dandi": "dandi (DANDI's published digest, not hashed from the bytes streamed)",
               "": "unknown"}


def _prepared(path: Path | str, console) -> None:
    from neurodyn.data.prepared import _attr

    # tables are built inside the block and printed after it: read_h5 reports any OSError in the
    # block as file damage, and printing can raise one too (BrokenPipeError under `| head`)
    with _h5(path) as f:
        head = titled_table(f"Prepared NLB tensors {path}", "attribute", "value")
        for key, value in f.attrs.items():
            value = _attr(value)
            if key == "source_sha256":
                value = [v[:16] + "…" if v else "unknown" for v in value]
            elif key == "source_sha256_from":  # "bytes" | "dandi" | "" (see neurodyn.data.prepare)
                value = [SHA256_FROM.get(v, v) for v in value]
            head.add_row(key, ", ".join(map(str, value)) if isinstance(value, list) else str(value))
        arrays = _arrays_table("Arrays (counts are spikes per bin)", _datasets(f))
    console.print(head)
    console.print(arrays)


#: an attribute value longer than this (characters) is shown cut, with its length (``model_config``'s JSON)
ATTR_WIDTH = 120


def _attributes_table(f, title: str):
    """The root attributes of an open file, one row each (what a prediction or simulation file records:
    phase, dataset, data, checkpoint, model, seed, ...), or None when it has none."""
    from neurodyn.data.prepared import _attr

    if not len(f.attrs):
        return None
    table = titled_table(title, "attribute", "value")
    for key in sorted(f.attrs):
        value = _attr(f.attrs[key])
        table.add_row(key, cut_text(", ".join(map(str, value)) if isinstance(value, list) else str(value)))
    return table


def cut_text(text: str) -> str:
    """``text`` cut at :data:`ATTR_WIDTH` characters, with its length (``model_config``'s JSON)."""
    return f"{text[:ATTR_WIDTH]}… ({len(text)} characters)" if len(text) > ATTR_WIDTH else text


def _generic(path: Path | str, console, kind: str, max_rows: int) -> str:
    """The datasets of any other HDF5 file (with min / mean / max for a ``neurodyn predict`` file of a Lorenz /
    LFADS file or a switching GLM); returns its kind (``"prediction"`` for those)."""
    with _h5(path) as f:  # read in the block, print after it (see _prepared)
        items = _datasets(f)
        module = f.attrs.get("module")
        module = module.decode() if isinstance(module, bytes) else module
        if module and "checkpoint" in f.attrs:  # `neurodyn predict` of a Lorenz / LFADS file or a switching GLM
            kind = "prediction"
            table = titled_table(f"Prediction file {path} ({module}, {len(items)} arrays; {_units(items)})",
                           "array", "shape", "dtype", "min", "mean", "max")
            for name, ds in items[:max_rows]:
                table.add_row(name, str(tuple(ds.shape)), str(ds.dtype), *_stats(ds))
            attrs = _attributes_table(f, f"Prediction file {path}: what it records")
        else:
            title = "LFADS-format HDF5" if kind == "lfads" else "HDF5"
            table = titled_table(f"{title} {path} ({len(items)} datasets)", "dataset", "shape", "dtype")
            for name, ds in items[:max_rows]:
                table.add_row(name, str(tuple(ds.shape)), str(ds.dtype))
            attrs = _attributes_table(f, f"{path}: attributes")
        if len(items) > max_rows:
            table.add_row(f"… {len(items) - max_rows} more", *[""] * (len(table.columns) - 1))
    if attrs is not None:
        console.print(attrs)
    console.print(table)
    return kind


def _units(items) -> str:
    """The units of a ``neurodyn predict`` file's arrays, for its title: rates in spikes per bin (LangevinFlow), or
    what a switching GLM's file holds instead (no rates: posteriors, and log-likelihoods in nats)."""
    names = {name.rsplit("/", 1)[-1] for name, _ in items}
    units = ["rates in spikes per bin"] if any("rates" in name for name in names) else []
    if any(name.endswith("posteriors") for name in names):
        units.append("posteriors: probability of each state per bin, summing to 1")
    if any(name.endswith("log_marginal") for name in names):
        units.append("log_marginal: log p(spikes) in nats per sequence")
    return "; ".join(units) or "no rates"


#: arrays larger than this (elements) get no min / mean / max in the summary of a prediction file
STATS_MAX_SIZE = 50_000_000
#: console width when the output is not a terminal (a file, a pipe): wide enough that no name is wrapped
UNWRAPPED_WIDTH = 10_000


def _prediction_groups(f) -> list[str] | None:
    """The dataset groups of a prediction / submission file (top-level groups named as NLB groups), else None."""
    import h5py

    from neurodyn.data.prepared import AUXILIARY_GROUPS, parse_group_name

    names = [k for k in f if k not in AUXILIARY_GROUPS]
    if not names or not all(isinstance(f[k], h5py.Group) for k in names):
        return None
    try:
        for name in names:
            parse_group_name(name)
    except InputError:
        return None
    return names


def _stats(ds) -> list[str]:
    """min / mean / max of a numeric dataset (blank for others and those above :data:`STATS_MAX_SIZE`)."""
    if ds.dtype.kind not in "fiub" or not 0 < ds.size <= STATS_MAX_SIZE:
        return ["", "", ""]
    data = ds[()]  # in its stored dtype (no float64 copy); the mean accumulates in float64
    data = data.view(np.uint8) if data.dtype.kind == "b" else data
    with np.errstate(all="ignore"):
        if data.dtype.kind == "f" and np.isnan(data).all():
            return ["nan"] * 3
        return [f"{float(v):.5g}" for v in (np.nanmin(data), np.nanmean(data, dtype=np.float64), np.nanmax(data))]


def _prediction(path: Path | str, console, groups: list[str]) -> None:
    """Per group: each array's shape, dtype and min / mean / max (rates in spikes per bin)."""
    import h5py

    tables = []
    with _h5(path) as f:  # read in the block, print after it (see _prepared)
        attrs = _attributes_table(f, f"Prediction file {path}: what it records")
        if attrs is not None:
            tables.append(attrs)
        for name in groups:
            table = titled_table(f"Prediction group {name} (rates in spikes per bin)", "array", "shape", "dtype", "min",
                           "mean", "max")
            for key, ds in f[name].items():
                if not isinstance(ds, h5py.Dataset):
                    table.add_row(key, "(group)", "", "", "", "")
                    continue
                table.add_row(key, str(tuple(ds.shape)), str(ds.dtype), *_stats(ds))
            tables.append(table)
        others = [k for k in f if k not in groups]
    for table in tables:
        console.print(table)
    if others:
        console.print("other groups: " + ", ".join(others))


def new_console():
    """A rich console for ``info``'s tables: the terminal's width, or unwrapped in a file or a pipe. Markup is
    off: what a file records is shown as written (``[exc]`` in a coupling definition, ``[...]`` in a path, were
    read as style tags and dropped)."""
    from rich.console import Console

    console = Console(markup=False)
    return console if console.is_terminal else Console(width=UNWRAPPED_WIDTH, markup=False)  # never wrap mid-word


def info(path: str | os.PathLike, console=None, max_rows: int = 200) -> str:
    """Print the summary of ``path``; returns its kind (see :func:`file_kind`, plus ``"prediction"`` for a
    prediction / submission file: its groups' arrays with min / mean / max)."""
    from neurodyn.data.stream import check_url_typo, is_url

    check_url_typo(path)  # "htps://..." read as a path was named "htps:/..."
    if console is None:
        console = new_console()
    path = path if is_url(path) else Path(path)
    kind = file_kind(path)
    if kind == "nwb":
        _nwb(path, console)
    elif kind == "prepared":
        _prepared(path, console)
    else:
        groups = None
        if kind == "hdf5":
            with _h5(path) as f:
                groups = _prediction_groups(f)
        if groups:
            _prediction(path, console, groups)
            return "prediction"
        return _generic(path, console, kind, max_rows)
    return kind
