"""The prepared NLB file (``neurodyn prepare``): its layout names, its container and its reader / writer.

One module owns the file format: the root attributes and group names (:data:`FORMAT`, :data:`GROUPS`), the
nlb_tools group naming of a dataset at a bin width (:func:`group_name`, :func:`parse_group_name`), reading
(:func:`read_prepared` / :func:`load_prepared` -> :class:`PreparedNLB`; :func:`is_prepared`) and writing
(:func:`write_prepared`).
The layout itself is documented in :mod:`neurodyn.data.prepare`, which makes the tensors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neurodyn.data.nlb import BIN_WIDTHS_MS, DATASET_NAMES
from neurodyn.errors import InputError, with_article
from neurodyn.io import read_h5, read_h5_dict, write_h5_dict

__all__ = ["FORMAT", "FORMAT_VERSION", "GROUPS", "TRIAL_IDS", "TRIAL_SOURCE", "UNIT_IDS", "WINDOW_START",
           "REQUIRED_RATES", "FORWARD_RATES", "PreparedNLB", "group_name", "parse_group_name", "is_prepared",
           "read_prepared", "read_open_prepared", "load_prepared", "trial_keys", "write_prepared"]

FORMAT = "neurodyn-prepared-nlb"
FORMAT_VERSION = 1
GROUPS = ("train_input", "eval_input", "eval_target")
#: group holding the NWB trial ids of the rows of ``train_input`` / ``eval_input``
TRIAL_IDS = "trial_ids"
#: group holding the start (ms on the session grid) of the first bin of each row of ``train_input`` /
#: ``eval_input`` (``train``, ``eval``; int64); files prepared before it was added have none
WINDOW_START = "window_start_ms"
#: group holding, for each row of ``train_input`` / ``eval_input`` (``train``, ``eval``; int64, (rows, 2)), its
#: NWB file (index into the ``source_sha256`` attribute) and its trial id within that file; files prepared
#: before it was added have none
TRIAL_SOURCE = "trial_source"
#: group holding the NWB unit ids (the units table's ``id`` column) of the unit columns of every array:
#: ``heldin`` (int64, n_heldin) and ``heldout`` (int64, n_heldout), each in the order nlb_tools gives the
#: columns (ascending id); files prepared before it was added have none
UNIT_IDS = "unit_ids"
#: the rate arrays of one dataset group of a prediction / submission file (nlb_tools' names)
REQUIRED_RATES = ("train_rates_heldin", "train_rates_heldout", "eval_rates_heldin", "eval_rates_heldout")
#: forward-prediction rates: both or neither
FORWARD_RATES = ("eval_rates_heldin_forward", "eval_rates_heldout_forward")
#: top-level groups of a prediction file that are not dataset groups (skipped when reading): ``latents``, the rows'
#: window starts (``window_start_ms/<group>/{train,eval}``) and their NLB trial ids (``trial_ids/<group>/{train,eval}``,
#: int64: a prepared file's :data:`TRIAL_IDS` of the predicted rows), each beside the dataset groups, which hold
#: nlb_tools' rate arrays only
AUXILIARY_GROUPS = ("latents", WINDOW_START, TRIAL_IDS)


def group_name(dataset: str, bin_ms: int) -> str:
    """nlb_tools' group name: ``dataset`` at 5 ms, ``dataset_<bin_ms>`` otherwise.

    Examples
    --------
    >>> group_name("mc_maze", 20)
    'mc_maze_20'
    """
    return dataset if int(bin_ms) == 5 else f"{dataset}_{int(bin_ms)}"


def parse_group_name(name: str, path=None) -> tuple[str, int]:
    """Inverse of :func:`group_name`; raises :class:`InputError` for unknown names.

    Examples
    --------
    >>> parse_group_name("mc_maze_small_20")
    ('mc_maze_small', 20)
    """
    for dataset in DATASET_NAMES:
        for bin_ms in BIN_WIDTHS_MS:
            if name == group_name(dataset, bin_ms):
                return dataset, bin_ms
    valid = ", ".join(group_name(d, b) for d in DATASET_NAMES for b in BIN_WIDTHS_MS)
    raise InputError(f"unknown dataset group '{name}' (valid: {valid})", path=path, field=name)


@dataclass
class PreparedNLB:
    """A file written by :func:`prepare`, read back into dicts of arrays.

    Attributes
    ----------
    path
        The file.
    attrs
        Root attributes (see the module docstring); strings decoded.
    train_input, eval_input
        nlb_tools' dicts, or None where the group was left out.
    eval_target
        ``{name + suffix: {...}}`` as nlb_tools nests it, or None.
    trial_ids
        ``{"train": ids, "eval": ids}`` (missing keys where a group was left out).
    window_start_ms
        ``{"train": starts, "eval": starts}``: the start in ms (session grid) of each row's first bin; empty
        for files prepared before it was recorded.
    unit_ids
        ``{"heldin": ids, "heldout": ids}`` (int64): the NWB unit id of each held-in / held-out column
        (:data:`UNIT_IDS`); empty for files prepared before they were recorded.
    shapes
        ``{"group/key": shape}`` of every array in the file, also of groups not read.
    """

    path: Path
    attrs: dict
    train_input: dict | None = None
    eval_input: dict | None = None
    eval_target: dict | None = None
    trial_ids: dict = field(default_factory=dict)
    window_start_ms: dict = field(default_factory=dict)
    unit_ids: dict = field(default_factory=dict)
    shapes: dict = field(default_factory=dict)

    def shape(self, group: str, key: str) -> tuple | None:
        """Shape of ``group/key`` in the file (read or not), None when absent."""
        return self.shapes.get(f"{group}/{key}")

    def column_ids(self) -> dict[str, np.ndarray]:
        """``{"heldin": ids, "heldout": ids}`` (int64), the NWB unit id of each held-in / held-out column, where the
        file records both (:data:`UNIT_IDS`); ``{}`` otherwise (files prepared before neurodyn recorded them)."""
        if "heldin" not in self.unit_ids or "heldout" not in self.unit_ids:
            return {}
        return {kind: np.asarray(self.unit_ids[kind], dtype=np.int64) for kind in ("heldin", "heldout")}

    @property
    def dataset(self) -> str:
        return str(self.attrs["dataset"])

    @property
    def bin_ms(self) -> int:
        return int(self.attrs["bin_ms"])

    @property
    def phase(self) -> str:
        return str(self.attrs["phase"])

    @property
    def n_heldin(self) -> int:
        return int(self.attrs["n_heldin"])

    @property
    def n_heldout(self) -> int:
        return int(self.attrs["n_heldout"])

    @property
    def n_obs_bins(self) -> int:
        return int(self.attrs["n_obs_bins"])

    @property
    def n_fwd_bins(self) -> int:
        return int(self.attrs["n_fwd_bins"])

    @property
    def eval_target_group(self) -> dict | None:
        """The inner eval-target dict (``eval_target[name + suffix]``), or None."""
        if not self.eval_target:
            return None
        return next(iter(self.eval_target.values()))


def _attr(value):
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray) and value.dtype.kind in "OS":
        return [v.decode() if isinstance(v, bytes) else str(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def is_prepared(h5file) -> bool:
    """True for an open h5py file written by :func:`prepare`."""
    return _attr(h5file.attrs.get("format", "")) == FORMAT


#: why a group can be missing, for the message naming it
_MISSING = {
    "train_input": "the NWB files it was prepared from have no train trials for its phase, e.g. a test file alone",
    "eval_input": "the NWB files it was prepared from have no eval trials for its phase",
    "eval_target": "a test-phase file: held-out data of test trials exist only on EvalAI; prepare the val phase "
    "to evaluate locally",
}


def _checked_attrs(attrs: dict, path: Path) -> dict:
    """The root attributes, with the two every reader needs checked: ``dataset`` (text), ``bin_ms`` (> 0)."""
    for key in ("dataset", "bin_ms"):
        if key not in attrs:
            raise InputError(f"missing root attribute '{key}' (damaged file?)", path, key)
    if not isinstance(attrs["dataset"], str):
        raise InputError(f"expected a dataset name, found {attrs['dataset']!r}", path, "dataset")
    if attrs["dataset"] not in DATASET_NAMES:
        raise InputError(f"unknown dataset '{attrs['dataset']}' (valid: {', '.join(DATASET_NAMES)})", path,
                         "dataset")
    bin_ms = attrs["bin_ms"]
    if isinstance(bin_ms, bool) or not isinstance(bin_ms, (int, float)) or not bin_ms > 0 or bin_ms != int(bin_ms):
        raise InputError(f"expected a positive whole number of ms, found {bin_ms!r}", path, "bin_ms")
    return attrs


def check_counts(path: Path, group: str, arrays: dict) -> None:
    """Spike counts (every ``*spikes*`` array of ``group``) must be whole numbers >= 0; NaN is allowed (nlb_tools
    marks bins outside a trial's data with it). Raises an InputError naming the file and the first bad array
    (helper-58: inf or negative counts in a damaged file were a sklearn traceback in ``baseline`` and trained on
    silently by ``fit``)."""
    for key, values in arrays.items():
        if "spikes" not in key or not isinstance(values, np.ndarray) or values.dtype.kind not in "fiu":
            continue
        if values.dtype.kind == "f":
            with np.errstate(invalid="ignore"):
                bad = ~np.isnan(values) & ((values < 0) | ~np.isfinite(values) | (values != np.round(values)))
        else:
            bad = values < 0
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise InputError(f"expected spike counts (whole numbers >= 0, NaN where unobserved), found "
                             f"{values[where].item()!r} at index {where}", path, f"{group}/{key}")


#: the layout of :mod:`neurodyn.data.prepare` as symbolic dimensions: T train trials, E eval trials, B bins,
#: F forward bins, I held-in units, O held-out units, C conditions, ``*`` any size; ``...`` any further axes.
#: Keys under ``eval_target`` are relative to its one ``<dataset><suffix>`` group.
LAYOUT = {
    "train_input/train_spikes_heldin": "TBI",
    "train_input/train_spikes_heldout": "TBO",
    "train_input/train_behavior": "T...",
    "train_input/train_spikes_heldin_forward": "TFI",
    "train_input/train_spikes_heldout_forward": "TFO",
    "eval_input/eval_spikes_heldin": "EBI",
    "eval_input/eval_spikes_heldout": "EBO",
    "eval_target/eval_spikes_heldout": "EBO",
    "eval_target/train_behavior": "T...",
    "eval_target/eval_behavior": "E...",
    "eval_target/eval_spikes_heldin_forward": "EFI",
    "eval_target/eval_spikes_heldout_forward": "EFO",
    "eval_target/train_decode_mask": "T*",
    "eval_target/eval_decode_mask": "E*",
    "eval_target/train_jitter": "T",
    "eval_target/eval_jitter": "E",
    "eval_target/eval_cond_idx": "C",
    f"{WINDOW_START}/train": "T",
    f"{WINDOW_START}/eval": "E",
    f"{TRIAL_SOURCE}/train": "T*",
    f"{TRIAL_SOURCE}/eval": "E*",
    f"{UNIT_IDS}/heldin": "I",
    f"{UNIT_IDS}/heldout": "O",
}
#: root attributes that fix a dimension
_LAYOUT_ATTRS = {"n_train_trials": "T", "n_eval_trials": "E", "n_obs_bins": "B", "n_fwd_bins": "F",
                 "n_heldin": "I", "n_heldout": "O"}
_DIM_NAMES = {"T": "train trials", "E": "eval trials", "B": "bins", "F": "forward bins", "I": "held-in units",
              "O": "held-out units", "C": "conditions"}


def _is_numeric(dtype) -> bool:
    import h5py

    base = h5py.check_vlen_dtype(dtype)  # ragged rows (eval_cond_idx): numbers inside
    return (base if base is not None else dtype).kind in "biuf"


def check_layout(path: Path, attrs: dict, shapes: dict, dtypes: dict) -> None:
    """Check a prepared file's arrays against :data:`LAYOUT`: numbers only, and trials, bins and units that agree
    between the arrays and with the root attributes. Reads shapes and dtypes only (no data).

    Raises
    ------
    InputError
        Naming the file and the first array (``group/key``) that disagrees, with its shape and what the others
        (or the attribute) say.
    """
    for key, dtype in dtypes.items():
        if not _is_numeric(dtype):
            raise InputError(f"expected numbers, found dtype {dtype}", path, key)
    sizes: dict[str, tuple[int, str]] = {}  # dimension -> (size, where it was seen)
    for name, dim in _LAYOUT_ATTRS.items():
        value = attrs.get(name)
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            sizes[dim] = (int(value), f"root attribute {name}")
    targets = sorted({key.split("/")[1] for key in shapes if key.startswith("eval_target/") and key.count("/") >= 2})
    items = []
    for key, dims in LAYOUT.items():
        group, leaf = key.split("/")
        if group == "eval_target":
            items += [(f"eval_target/{g}/{leaf}", dims) for g in targets]
        else:
            items.append((key, dims))
    for key, dims in items:
        shape = shapes.get(key)
        if shape is None:
            continue
        ragged = dims.endswith("...")
        dims = dims.removesuffix("...")
        if len(shape) < len(dims) if ragged else len(shape) != len(dims):
            axes = ", ".join(_DIM_NAMES.get(d, "any") for d in dims) + (", ..." if ragged else "")
            raise InputError(f"expected {with_article(len(dims))}{'+' if ragged else ''}-D array ({axes}), got shape "
                             f"{shape}", path, key)
        for dim, size in zip(dims, shape):
            if dim == "*":
                continue
            if dim not in sizes:
                sizes[dim] = (int(size), key)
            elif sizes[dim][0] != size:
                raise InputError(f"shape {shape}: {size} {_DIM_NAMES[dim]}, but {sizes[dim][0]} in {sizes[dim][1]} "
                                 "(inconsistent or damaged prepared file)", path, key)
    for g in targets:
        key = f"eval_target/{g}/psth"
        shape = shapes.get(key)
        if shape is None:
            continue
        expected = [sizes.get("C", (None,))[0], sizes.get("B", (None,))[0]]
        if "I" in sizes and "O" in sizes:
            expected.append(sizes["I"][0] + sizes["O"][0])
        else:
            expected.append(None)
        if len(shape) != 3 or any(e is not None and e != s for e, s in zip(expected, shape)):
            shown = ", ".join("*" if e is None else str(e) for e in expected)
            raise InputError(f"expected shape ({shown}) (conditions, bins, held-in + held-out units), got {shape}",
                             path, key)


def read_prepared(
    path: str | os.PathLike, groups: tuple[str, ...] = GROUPS, *, require: tuple[str, ...] = ()
) -> PreparedNLB:
    """Read a file written by :func:`prepare`: its attributes, the shapes of every array, and ``groups``.

    Parameters
    ----------
    groups
        The groups whose arrays are read (``()``: attributes and shapes only); groups the file does not
        hold stay None.
    require
        Groups that must be present (an :class:`InputError` naming the group and why it can be missing).

    Raises
    ------
    InputError
        Missing file, not HDF5, an HDF5 file that ``neurodyn prepare`` did not write, a required group
        missing, an unknown dataset, or arrays that disagree with the layout (:func:`check_layout`).
    """
    path = Path(path)
    with read_h5(path, "prepared NLB file") as f:
        return read_open_prepared(f, path, groups, require=require)


def _other_kind(f) -> tuple[str, str] | None:
    """``(field, what it is)`` for a file of a kind neurodyn knows that is not a prepared file: an NWB file, an
    LFADS-format or switching-GLM data file, a prediction file; None for any other."""
    from neurodyn.io.hdf5 import is_nwb

    def text(name):
        value = f.attrs.get(name)
        return value.decode() if isinstance(value, bytes) else value

    if is_nwb(f):
        return "nwb_version", "is an NWB file (make tensors from it with neurodyn prepare first)"
    if "train_data" in f or "valid_data" in f:
        return ("train_data" if "train_data" in f else "valid_data",
                "is an LFADS-format data file (e.g. neurodyn simulate lorenz: --data LFADSDataModule reads it)")
    if text("format") == "neurodyn.switching_glm/1":
        return "format", ("is a simulated switching-GLM data file (neurodyn simulate switching-glm: "
                          "SwitchingGLMDataModule reads it)")
    if any(text(key) for key in ("module", "baseline")) or "ensemble_members" in f.attrs or any(
            isinstance(key, str) and key.endswith("_rates") for key in f) or any(
            hasattr(f[key], "keys") and any(k.endswith("_rates_heldin") for k in f[key]) for key in f):
        return "format", "is a prediction file (neurodyn predict / baseline / ensemble / submit)"
    return None


def read_open_prepared(
    f, path: Path, groups: tuple[str, ...] = GROUPS, *, require: tuple[str, ...] = ()
) -> PreparedNLB:
    """:func:`read_prepared` of ``path``, open as ``f`` inside :func:`~neurodyn.io.read_h5` or
    :func:`~neurodyn.io.checked_h5` (a reader that has opened the file already reads it without opening it
    again); the same checks and errors."""
    import h5py

    if not is_prepared(f):
        other = _other_kind(f)
        if other:  # an NWB file given to baseline / fit / predict said only 'no format=... attribute'
            raise InputError(f"{other[1]}, not a prepared file (neurodyn prepare)", path, other[0])
        raise InputError(f"not a prepared file (no format={FORMAT!r} attribute: `neurodyn prepare` did not "
                         f"write it)", path, "format")
    for name in require:
        if name not in f:
            raise InputError(f"missing group '{name}' ({_MISSING[name]})", path, name)
    out = PreparedNLB(path, _checked_attrs({k: _attr(v) for k, v in f.attrs.items()}, path))
    dtypes = {}

    def visit(key, obj):
        if isinstance(key, bytes):  # a damaged name
            key = key.decode("utf-8", "replace")
        if isinstance(obj, h5py.Dataset):
            out.shapes[key] = tuple(obj.shape)
            dtypes[key] = obj.dtype

    f.visititems(visit)
    check_layout(path, out.attrs, out.shapes, dtypes)
    for name in groups:
        if name in f:
            setattr(out, name, read_h5_dict(f[name]))
            check_counts(path, name, _flat_arrays(getattr(out, name)))
    if TRIAL_IDS in f:
        out.trial_ids = read_h5_dict(f[TRIAL_IDS])
    if WINDOW_START in f:
        out.window_start_ms = {split: check_window_starts(path, f"{WINDOW_START}/{split}", values)
                               for split, values in read_h5_dict(f[WINDOW_START]).items()}
    if UNIT_IDS in f:
        out.unit_ids = {kind: check_unit_ids(path, f"{UNIT_IDS}/{kind}", values)
                        for kind, values in read_h5_dict(f[UNIT_IDS]).items()}
        if "heldin" in out.unit_ids and "heldout" in out.unit_ids:
            check_disjoint_unit_ids(path, out.unit_ids["heldin"], out.unit_ids["heldout"], f"{UNIT_IDS}/heldout",
                                    f"{UNIT_IDS}/heldin")
    return out


def check_unit_ids(path, key: str, values, count: int | None = None, columns: str = "unit column") -> np.ndarray:
    """Unit ids as int64; an InputError naming the file and ``key`` when they are not distinct integers in a 1-D
    array, or (with ``count``) not ``count`` of them, one per ``columns`` (a prepared file's count is checked
    against its unit columns by :func:`check_layout`).

    The one rule for unit ids wherever they are read: an NWB file's ``units/id`` (one row per unit, read by
    :mod:`neurodyn.data.nwb.reader`), a prepared file's ``unit_ids`` group, the ``heldin_unit_ids`` /
    ``heldout_unit_ids`` attributes a prediction file copies from it, and the ids a figure is given
    (:mod:`neurodyn.viz.trials`). Every writer stores int64 (:func:`write_prepared`, ``predict``,
    ``baseline``, ``ensemble``, ``submit``): float ids (``1011.0``) are not a file neurodyn wrote, unsigned ids
    past int64's range would wrap to negative ids, and two columns of one id would name two units alike (ids
    held by both held-in and held-out columns: :func:`check_disjoint_unit_ids`).

    >>> check_unit_ids(None, "unit_ids", [1011, 1022], 2)
    array([1011, 1022])
    >>> check_unit_ids("p.h5", "ids", [1011, 1011])
    Traceback (most recent call last):
    neurodyn.errors.InputError: p.h5: ids: expected distinct unit ids, found unit id 1011 twice (damaged file?)
    >>> check_unit_ids("p.h5", "ids", [7, 1011, 7, 7])
    Traceback (most recent call last):
    neurodyn.errors.InputError: p.h5: ids: expected distinct unit ids, found unit id 7 3 times (damaged file?)
    """
    values = np.asarray(values)
    if values.ndim != 1 or values.dtype.kind not in "iu":
        raise InputError(f"expected one integer NWB unit id per {columns}, found {values.dtype} of shape "
                         f"{values.shape}", path, key)
    if count is not None and len(values) != count:
        raise InputError(f"{len(values)} ids for {count} {columns}s (expected one per column)", path, key)
    beyond = values[values > np.iinfo(np.int64).max] if values.dtype.kind == "u" else values[:0]
    if beyond.size:
        raise InputError(f"unit id {beyond[0]} is beyond int64 (damaged file?)", path, key)
    repeated = repeated_id(values)
    if repeated:  # name the id, so that the row can be found in a large units table
        raise InputError(f"expected distinct unit ids, found unit id {repeated} (damaged file?)", path, key)
    return values.astype(np.int64)


def repeated_id(values) -> str:
    """``""`` when ``values`` are distinct, else the most repeated one and how often (``"1011 twice"``, ``"7 3
    times"``): the words of a refusal of repeated ids (unit ids here, a plot's row ids in :mod:`neurodyn.viz`).

    >>> repeated_id([3, 1, 2]), repeated_id([5, 1, 5]), repeated_id([7, 7, 1, 7])
    ('', '5 twice', '7 3 times')
    """
    ids, counts = np.unique(np.asarray(values), return_counts=True)
    if not counts.size or counts.max() < 2:
        return ""
    return f"{ids[counts.argmax()]} " + ("twice" if counts.max() == 2 else f"{counts.max()} times")


def check_disjoint_unit_ids(path, heldin, heldout, key: str, heldin_key: str) -> None:
    """An InputError naming the file and ``key`` (the held-out ids) when a unit id names both a held-in and a
    held-out column: the ids are distinct over all columns, one per column. NLB's held-in and held-out units are
    disjoint (nlb_tools splits the units table's rows by its ``heldout`` column, one row per unit), so such a file
    was not written by ``prepare`` from an NWB file, nor copied from one by ``predict`` and the others.

    >>> check_disjoint_unit_ids("p.h5", [1011, 1022], [1022], "unit_ids/heldout", "unit_ids/heldin")
    Traceback (most recent call last):
    neurodyn.errors.InputError: p.h5: unit_ids/heldout: unit id 1022 is also a held-in unit's id (unit_ids/heldin): \
expected distinct unit ids, one per column (damaged file?)
    """
    both = np.intersect1d(heldin, heldout)
    if both.size:
        raise InputError(f"unit id {both[0]} is also a held-in unit's id ({heldin_key}): expected distinct unit ids, "
                         "one per column (damaged file?)", path, key)


def check_window_starts(path, key: str, values) -> np.ndarray:
    """Window starts (ms) as int64; an InputError naming the file and ``key`` when they are not finite whole
    numbers (within +-2**53) in a 1-D array (helper-58: a NaN start was a ValueError traceback inside the error
    message of ``--upsample``). That there is one per trial is checked by the callers (a prepared file's
    layout; ``--upsample`` against the trial counts)."""
    values = np.asarray(values)
    if values.ndim != 1 or values.dtype.kind not in "fiu":
        raise InputError(f"expected one window start (ms) per trial, found {values.dtype} of shape {values.shape}",
                         path, key)
    if values.dtype.kind == "f":
        bad = ~np.isfinite(values) | (values != np.round(values)) | (np.abs(values) > 2.0**53)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputError(f"expected whole numbers of ms, found {values[i].item()!r} at row {i}", path, key)
    return values.astype(np.int64)


def _flat_arrays(tree: dict, prefix: str = "") -> dict:
    """``{"a/b": array}`` of a nested dict of arrays (eval_target holds one group per dataset)."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat_arrays(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = value
    return out


def load_prepared(path: str | os.PathLike) -> PreparedNLB:
    """Read a whole file written by :func:`prepare` (:func:`read_prepared` of every group)."""
    return read_prepared(path)


def trial_keys(path, split: str) -> list[tuple[str, str, int]] | None:
    """The trials of a prepared file's ``split`` rows (``train`` / ``eval``): one (SHA-256, file name, trial id
    within that file) per row, the NWB file it is from (:data:`TRIAL_SOURCE`; the SHA-256 ``""`` where unknown:
    streamed from a plain URL); None when the file records no trial sources (an older file) or is not a
    prepared file."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            rows = f.get(f"{TRIAL_SOURCE}/{split}")
            if rows is None:
                return None
            rows = np.asarray(rows[()], dtype=np.int64).reshape(-1, 2)
            shas = [str(v) for v in np.atleast_1d(f.attrs.get("source_sha256", []))]
            names = [str(v) for v in np.atleast_1d(f.attrs.get("source_files", []))]
    except (OSError, ValueError):
        return None

    def at(values: list, i: int) -> str:
        return values[i] if 0 <= i < len(values) else ""

    return [(at(shas, int(i)), at(names, int(i)), int(t)) for i, t in rows]


def write_prepared(tmp: Path, attrs: dict, groups: dict, trial_ids: dict, compression: str | None,
                   window_start_ms: dict | None = None, trial_source: dict | None = None,
                   unit_ids: dict | None = None) -> None:
    """Write the prepared file to ``tmp`` (the temporary file of :func:`neurodyn.io.output_file`);
    ``window_start_ms``: ``{"train": starts, "eval": starts}`` (int64 ms), see :data:`WINDOW_START`;
    ``trial_source``: ``{"train": (rows, 2), "eval": ...}`` (int64), see :data:`TRIAL_SOURCE`;
    ``unit_ids``: ``{"heldin": ids, "heldout": ids}`` (int64), see :data:`UNIT_IDS`."""
    import h5py

    with h5py.File(tmp, "w") as f:
        for key, value in attrs.items():
            if isinstance(value, np.ndarray) and value.dtype == object:
                f.attrs.create(key, value.astype(str).tolist(), dtype=h5py.string_dtype())
            else:
                f.attrs[key] = value
        for name, data in groups.items():
            write_h5_dict(f.require_group(name), data, compression)
        if trial_ids:
            write_h5_dict(f.require_group(TRIAL_IDS), trial_ids)
        if window_start_ms:
            write_h5_dict(f.require_group(WINDOW_START),
                          {k: np.asarray(v, dtype=np.int64) for k, v in window_start_ms.items()})
        if trial_source:
            write_h5_dict(f.require_group(TRIAL_SOURCE),
                          {k: np.asarray(v, dtype=np.int64) for k, v in trial_source.items()})
        if unit_ids:
            write_h5_dict(f.require_group(UNIT_IDS), {k: np.asarray(v, dtype=np.int64) for k, v in unit_ids.items()})
