"""NLB / EvalAI submission files: validate, write (float32, gzip, atomic), read.

Layout (nlb_tools' ``evaluate`` and the EvalAI challenge 1256): one HDF5 group per
``<dataset><suffix>`` (``mc_maze``, ``mc_maze_20``, ...; suffix ``''`` at 5 ms, ``'_<bin_ms>'``
otherwise) holding

=============================  =====================================  =========
key                            shape                                  required
=============================  =====================================  =========
``train_rates_heldin``         (train trials, bins, n_heldin)         yes
``train_rates_heldout``        (train trials, bins, n_heldout)        yes
``eval_rates_heldin``          (eval trials, bins, n_heldin)          yes
``eval_rates_heldout``         (eval trials, bins, n_heldout)         yes
``eval_rates_heldin_forward``  (eval trials, fwd bins, n_heldin)      with the next
``eval_rates_heldout_forward`` (eval trials, fwd bins, n_heldout)     with the previous
=============================  =====================================  =========

Rates are **spikes per bin**, finite and non-negative. The three scaling datasets
(``mc_maze_large/medium/small``) go together into one file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from neurodyn.data.prepared import (
    AUXILIARY_GROUPS,
    FORMAT,
    FORWARD_RATES,
    GROUPS,
    REQUIRED_RATES,
    TRIAL_IDS,
    WINDOW_START,
    group_name,
    parse_group_name,
)
from neurodyn.errors import InputError, with_article
from neurodyn.io import atomic_path, read_h5
from neurodyn.io.hdf5 import is_nwb
from neurodyn.metrics.bits import check_rates, check_shape
from neurodyn.metrics.resample import upsample_hint

SUBMISSION_KEYS = REQUIRED_RATES + FORWARD_RATES
#: the largest rate a submission file (float32) can hold; larger finite rates would become inf
FLOAT32_MAX = float(np.finfo(np.float32).max)

#: expected shapes: {group: {key: shape tuple, None = any size}}
ExpectedShapes = Mapping[str, Mapping[str, tuple]]


def validate_submission(
    groups: Mapping[str, Mapping[str, np.ndarray]], expected_shapes: ExpectedShapes | None = None, path=None
) -> None:
    """Check a submission before it is written or evaluated.

    Checks: group names are NLB groups; each group has the four required keys, both or neither
    forward key and no other key; arrays are 3-D and consistent (trials shared by train/eval
    held-in/held-out, neurons shared by train and eval, bins shared by train and eval); rates are
    finite, non-negative and representable in float32 (the file's type); when ``expected_shapes`` is given,
    every group it lists is present and every listed key has exactly the listed shape (``None`` entries match any size).

    Raises
    ------
    InputError
        Naming the group/key, with the expected and the actual shape.

    Examples
    --------
    >>> ones = lambda *s: np.ones(s)
    >>> validate_submission({"mc_maze": {
    ...     "train_rates_heldin": ones(2, 3, 4), "train_rates_heldout": ones(2, 3, 1),
    ...     "eval_rates_heldin": ones(1, 3, 4), "eval_rates_heldout": ones(1, 3, 1)}})
    """
    if not groups:
        raise InputError("submission holds no dataset group", path=path)
    for name, group in groups.items():
        parse_group_name(name, path)
        unknown = sorted(set(group) - set(SUBMISSION_KEYS))
        if unknown:
            raise InputError(
                f"unknown key '{unknown[0]}' (valid: {', '.join(SUBMISSION_KEYS)})",
                path,
                f"{name}/{unknown[0]}",
            )
        for key in REQUIRED_RATES:
            if key not in group:
                raise InputError(f"missing key '{key}'", path=path, field=f"{name}/{key}")
        present = [key for key in FORWARD_RATES if key in group]
        if len(present) == 1:
            other = (set(FORWARD_RATES) - set(present)).pop()
            raise InputError(f"'{present[0]}' given without '{other}'", path=path, field=f"{name}/{other}")
        for key in group:
            if np.ndim(group[key]) != 3:
                raise InputError(
                    f"expected a 3-D (trials, bins, neurons) array, got shape {np.shape(group[key])}",
                    path,
                    f"{name}/{key}",
                )
        n_train, n_bins, n_heldin = np.shape(group["train_rates_heldin"])
        n_eval = np.shape(group["eval_rates_heldin"])[0]
        n_heldout = np.shape(group["train_rates_heldout"])[2]
        internal = {
            "train_rates_heldout": (n_train, n_bins, n_heldout),
            "eval_rates_heldin": (n_eval, n_bins, n_heldin),
            "eval_rates_heldout": (n_eval, n_bins, n_heldout),
        }
        if present:
            n_fwd = np.shape(group["eval_rates_heldin_forward"])[1]
            internal["eval_rates_heldin_forward"] = (n_eval, n_fwd, n_heldin)
            internal["eval_rates_heldout_forward"] = (n_eval, n_fwd, n_heldout)
        for key, shape in internal.items():
            check_shape(group[key], shape, f"{name}/{key}", path)
        for key in group:
            rates = check_rates(group[key], f"{name}/{key}", path)
            if rates.size and rates.max() > FLOAT32_MAX:  # would be written as inf
                big = rates > FLOAT32_MAX
                first = tuple(int(i) for i in np.argwhere(big)[0])
                raise InputError(f"rate predictions too large for a float32 submission file ({int(big.sum())} "
                                 f"entries above {FLOAT32_MAX:.4g}, first at index {first})", path,
                                 f"{name}/{key}")
    for name, shapes in (expected_shapes or {}).items():
        if name not in groups:
            raise InputError(
                f"missing dataset group '{name}' (present: {', '.join(groups)}){upsample_hint(name, groups)}",
                path=path, field=name)
        for key, shape in shapes.items():
            if key in FORWARD_RATES and key not in groups[name]:
                continue  # forward prediction is optional
            check_shape(groups[name][key], tuple(shape), f"{name}/{key}", path)


def write_submission(
    path, groups: Mapping[str, Mapping[str, np.ndarray]], expected_shapes: ExpectedShapes | None = None,
    attrs: Mapping | None = None, window_starts: Mapping[str, Mapping[str, np.ndarray]] | None = None,
    trial_ids: Mapping[str, Mapping[str, np.ndarray]] | None = None,
) -> Path:
    """Validate ``groups`` and write them as one submission file (float32, gzip), atomically.

    Parameters
    ----------
    path
        Output ``.h5`` file; nothing is written when validation fails.
    groups
        ``{group_name: {key: rates}}`` in the layout of the module docstring (counts per bin).
    expected_shapes
        Optional ``{group: {key: shape}}`` (see :func:`expected_shapes_from_prepared`).
    attrs
        Optional root attributes (what the file was made from: ``phase``, ``dataset``, ``bin_ms``, ``data``;
        None values are left out).
    window_starts
        Optional ``{group: {"train": starts, "eval": starts}}`` (ms, int64), written as the auxiliary group
        ``window_start_ms`` that ``neurodyn predict`` writes (a prediction file, e.g. an ensemble's; an
        EvalAI submission holds the rates only and gets none).
    trial_ids
        Optional ``{group: {"train": ids, "eval": ids}}`` (int64, one per row of the group's split), written as the
        auxiliary group ``trial_ids`` that ``neurodyn predict`` writes (:func:`read_trial_ids`); likewise for
        prediction files only.

    Returns
    -------
    Path
        The written file.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> ones = lambda *s: np.ones(s)
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "sub.h5"
    >>> _ = write_submission(out, {"mc_maze": {
    ...     "train_rates_heldin": ones(2, 3, 4), "train_rates_heldout": ones(2, 3, 1),
    ...     "eval_rates_heldin": ones(1, 3, 4), "eval_rates_heldout": ones(1, 3, 1)}})
    >>> read_submission(out)["mc_maze"]["eval_rates_heldout"].dtype
    dtype('float32')
    """
    import h5py

    validate_submission(groups, expected_shapes)  # errors name the group/key; the output is not written
    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as handle:
            handle.attrs.update({k: v for k, v in (attrs or {}).items() if v is not None})
            for name, group in groups.items():
                out = handle.create_group(name)
                for key, value in group.items():
                    out.create_dataset(key, data=np.asarray(value, dtype=np.float32), compression="gzip")
            for name, starts in (window_starts or {}).items():
                for split, value in starts.items():
                    handle.create_dataset(f"{WINDOW_START}/{name}/{split}", data=np.asarray(value, dtype=np.int64))
            for name, ids in (trial_ids or {}).items():
                for split, value in ids.items():
                    handle.create_dataset(f"{TRIAL_IDS}/{name}/{split}", data=np.asarray(value, dtype=np.int64))
    return path


def read_trial_ids(path, groups: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, dict[str, np.ndarray]]:
    """``{group: {split: ids}}`` (int64): the NLB trial ids of the rows of the prediction file ``path``'s dataset
    ``groups`` (as :func:`read_submission` read them), from its auxiliary group ``trial_ids/<group>/<split>``
    (``neurodyn predict`` of a prepared file writes them, ``train`` and ``eval``); ``{}`` for a file that records
    none (nlb_tools' files, a baseline, a file of an older neurodyn).

    Raises
    ------
    InputError
        Naming the file and ``trial_ids/<group>/<split>``: not a group of datasets, ids of a group or split the file
        has no rates of, ids that are not integers within int64 (as every writer stores them), not one per row of
        ``<split>_rates_heldin``, or repeated (each row is one trial of the NLB trials table).
    """
    import h5py

    from neurodyn.data.prepared import repeated_id

    out: dict[str, dict[str, np.ndarray]] = {}
    with read_h5(os.fspath(path), "prediction file") as handle:
        found = handle.get(TRIAL_IDS)
        if found is None:
            return out
        if not isinstance(found, h5py.Group):
            raise InputError("expected a group of NLB trial ids per dataset group, found a dataset", path, TRIAL_IDS)
        for name, splits in found.items():
            if not isinstance(splits, h5py.Group) or name not in groups:
                raise InputError(f"names no dataset group of the file (groups: {', '.join(groups)})", path,
                                 f"{TRIAL_IDS}/{name}")
            for split, item in splits.items():
                key = f"{TRIAL_IDS}/{name}/{split}"
                rates = groups[name].get(f"{split}_rates_heldin")
                if rates is None:
                    raise InputError(f"the group holds no {split}_rates_heldin for these ids to name", path, key)
                ids = item[()] if isinstance(item, h5py.Dataset) else None
                if ids is None or np.ndim(ids) != 1 or np.asarray(ids).dtype.kind not in "iu":
                    what = "a group" if ids is None else f"{np.asarray(ids).dtype} of shape {np.shape(ids)}"
                    raise InputError(f"NLB trial ids must be integers, one per row (as neurodyn writes them, int64), "
                                     f"found {what}", path, key)
                if len(ids) != len(rates):
                    raise InputError(f"{len(ids)} ids for the {len(rates)} rows of {name}/{split}_rates_heldin", path,
                                     key)
                if ids.dtype.kind == "u" and ids.size and ids.max() > np.iinfo(np.int64).max:
                    raise InputError(f"NLB trial id {ids.max()} is beyond int64 (damaged file?)", path, key)
                repeated = repeated_id(ids)
                if repeated:
                    raise InputError(f"expected distinct NLB trial ids, found {repeated} (damaged file?)", path, key)
                out.setdefault(name, {})[split] = ids.astype(np.int64)
    return out




def _not_rates(handle) -> tuple[str, str] | None:
    """``(field, what the file is)`` for an HDF5 file that holds no NLB rates -- an HMM-GLM prediction file
    (state posteriors, couplings) or model file (:func:`neurodyn.models.hmmglm.evaluate.export_model_h5`), an
    NWB file, a switching-GLM data file (``neurodyn simulate switching-glm``), an LFADS-format data file
    (``neurodyn simulate lorenz``) or a prediction of one -- or None."""
    module = handle.attrs.get("module")
    module = module.decode() if isinstance(module, bytes) else module
    if module == "HMMGLMModule" or "valid_posteriors" in handle or "train_posteriors" in handle:
        return "module", "is an HMM-GLM prediction file (state posteriors, couplings)"
    if "coupling_definition" in handle.attrs or ("coupling" in handle and "transitions" in handle):
        # export_model_h5's file (no module attribute, unprefixed arrays): said "basis: expected one group per
        # dataset, found a dataset" as --pred, "no eval-target groups found" as --target
        return "coupling", "is an HMM-GLM model file (couplings, transitions: export_model_h5)"
    if is_nwb(handle):
        return "nwb_version", "is an NWB file (make tensors from it with neurodyn prepare first)"
    from neurodyn.data.synthetic.switching_glm import FORMAT as SWITCHING_GLM_FORMAT

    kind = handle.attrs.get("format")
    if (kind.decode() if isinstance(kind, bytes) else kind) == SWITCHING_GLM_FORMAT:  # as --target: "no eval-target
        # groups found"; as --pred: "is a 'neurodyn.switching_glm/1' file"
        return "format", ("is a simulated switching-GLM data file (spikes, states: neurodyn simulate switching-glm; "
                          "fit an HMM-GLM on it)")
    if "train_data" in handle or "valid_data" in handle:  # neurodyn simulate lorenz, write_lfads_h5: said "W:
        # expected one group per dataset, found a dataset"
        return ("train_data" if "train_data" in handle else "valid_data",
                "is an LFADS-format data file (train_data, valid_data: spikes to fit, e.g. neurodyn simulate lorenz)")
    if "valid_rates" in handle or "train_rates" in handle:  # LorenzDataModule / LFADSDataModule predictions
        return "valid_rates", "is a prediction of a Lorenz / LFADS-format file (train_rates, valid_rates)"
    return None


def read_submission(path) -> dict[str, dict[str, np.ndarray]]:
    """Read a submission file into ``{group: {key: array}}`` (arrays as stored, usually float32).

    Top-level groups listed in :data:`AUXILIARY_GROUPS` (the ``latents``, ``window_start_ms`` and ``trial_ids`` that
    ``neurodyn predict`` stores beside the rates) are not part of a submission and are skipped.

    Raises
    ------
    InputError
        Missing file, not HDF5, truncated or damaged, a file of another kind (a ``neurodyn prepare``
        file, an LFADS-format data file or a prediction of one, an HMM-GLM file, an NWB file), a top-level
        entry that is not a group, a group holding a sub-group or a non-numeric dataset.
    """
    import h5py

    path = os.fspath(path)
    out: dict[str, dict[str, np.ndarray]] = {}
    # every caller's file is a --pred (prediction files in the submission layout): "no such file (submission
    # file)" named the file submit writes, not the one it reads
    with read_h5(path, "prediction file") as handle:
        kind = handle.attrs.get("format")
        kind = None if kind is None else str(np.asarray(kind).astype(str))
        if kind == FORMAT or any(k in handle for k in GROUPS[:2]):
            raise InputError("is a prepared data file (neurodyn prepare), not a prediction file", path=path,
                             field="format")
        not_rates = _not_rates(handle)
        if kind is not None and not not_rates:
            raise InputError(f"is {with_article(repr(kind))} file, not a prediction file", path=path, field="format")
        if not_rates:
            raise InputError(f"{not_rates[1]}, not a file of NLB rates (neurodyn predict of a LangevinFlow run on "
                             "a prepared file, ensemble, baseline)", path=path, field=not_rates[0])
        for name, group in handle.items():
            if name in AUXILIARY_GROUPS:
                continue
            if not isinstance(group, h5py.Group):
                raise InputError("expected one group per dataset, found a dataset", path=path, field=name)
            out[name] = {}
            for key, item in group.items():
                if not isinstance(item, h5py.Dataset):
                    raise InputError("expected a rates array, found a group", path=path, field=f"{name}/{key}")
                if item.dtype.kind not in "biuf":
                    raise InputError(f"expected numbers, found dtype {item.dtype}", path=path,
                                     field=f"{name}/{key}")
                out[name][key] = item[()]
    return out


def expected_shapes_from_prepared(path) -> dict[str, dict[str, tuple]]:
    """Expected submission shapes of the dataset in a ``prepare`` file.

    Uses ``train_input/train_spikes_held{in,out}`` (train trials, bins, neurons),
    ``eval_input/eval_spikes_heldin`` (eval trials) and the forward arrays (or the root attribute
    ``n_fwd_bins``); keys whose size the file cannot tell (e.g. no train input in a test-only
    file) get ``None`` there. ``path``: the file, or its header already read (``read_prepared(path, groups=())``).

    Returns
    -------
    dict
        ``{group_name: {key: shape}}`` with one group.
    """

    from neurodyn.data.prepared import PreparedNLB, read_prepared

    prep = path if isinstance(path, PreparedNLB) else read_prepared(path, groups=())
    train_in = prep.shape("train_input", "train_spikes_heldin")
    train_out = prep.shape("train_input", "train_spikes_heldout")
    eval_in = prep.shape("eval_input", "eval_spikes_heldin")
    fwd = prep.shape("train_input", "train_spikes_heldin_forward")
    if eval_in is None and train_in is None:
        raise InputError("no 'train_input' or 'eval_input' arrays", path=prep.path)
    name = group_name(prep.dataset, prep.bin_ms)
    n_bins, n_heldin = (eval_in or train_in)[1:]
    n_heldout = train_out[2] if train_out else prep.attrs.get("n_heldout")
    n_fwd = fwd[1] if fwd else prep.attrs.get("n_fwd_bins")
    n_train = train_in[0] if train_in else None
    n_eval = eval_in[0] if eval_in else None
    n_heldout = None if n_heldout is None else int(n_heldout)
    shapes = {
        "train_rates_heldin": (n_train, n_bins, n_heldin),
        "train_rates_heldout": (n_train, n_bins, n_heldout),
        "eval_rates_heldin": (n_eval, n_bins, n_heldin),
        "eval_rates_heldout": (n_eval, n_bins, n_heldout),
    }
    if n_fwd:
        shapes["eval_rates_heldin_forward"] = (n_eval, int(n_fwd), n_heldin)
        shapes["eval_rates_heldout_forward"] = (n_eval, int(n_fwd), n_heldout)
    return {name: shapes}


def expected_shapes_from_registry(dataset: str, bin_ms: int) -> dict[str, dict[str, tuple]]:
    """Expected submission shapes from the NLB registry (:mod:`neurodyn.data.nlb`).

    The registry knows bins and units but not the per-phase trial counts, so trials are ``None``
    (any); validation still checks that trials agree between the arrays of a split.

    Examples
    --------
    >>> expected_shapes_from_registry("mc_maze_small", 20)["mc_maze_small_20"]["eval_rates_heldout"]
    (None, 35, 35)
    """
    from neurodyn.data.nlb import get_dataset

    info = get_dataset(dataset)
    n_bins, n_fwd = info.n_bins(bin_ms), info.n_fwd_bins(bin_ms)
    n_in, n_out = info.n_heldin, info.n_heldout
    shapes = {
        "train_rates_heldin": (None, n_bins, n_in),
        "train_rates_heldout": (None, n_bins, n_out),
        "eval_rates_heldin": (None, n_bins, n_in),
        "eval_rates_heldout": (None, n_bins, n_out),
        "eval_rates_heldin_forward": (None, n_fwd, n_in),
        "eval_rates_heldout_forward": (None, n_fwd, n_out),
    }
    return {group_name(info.name, bin_ms): shapes}
