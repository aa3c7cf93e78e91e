"""``evaluate``: all NLB metrics of a submission against eval targets, nlb_tools' result layout.

Targets are nlb_tools' eval-target dicts: one group per ``<dataset><suffix>`` (suffix ``''`` at
5 ms, ``'_<bin_ms>'`` otherwise) holding ``eval_spikes_heldout``, ``train_behavior``,
``eval_behavior``, ``eval_spikes_held{in,out}_forward`` and optionally ``{train,eval}_decode_mask``,
``psth`` + ``{train,eval}_cond_idx``, ``{train,eval}_jitter``. Predictions use the submission layout
(:mod:`neurodyn.metrics.submission`). Rates are counts per bin.

The result is nlb_tools' list ``[{"mc_maze_split": {"co-bps": ..., "vel R2": ..., "psth R2": ...,
"fp-bps": ...}}, ...]``; DMFC_RSG reports ``tp corr`` instead of ``vel R2``; the three scaling
datasets merge into ``mc_maze_scaling[_20]_split`` with keys prefixed ``[500]``, ``[250]``, ``[100]``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np

from neurodyn.data.nlb import BIN_WIDTHS_MS, DATASET_NAMES
from neurodyn.data.prepared import FORWARD_RATES, REQUIRED_RATES, check_counts, group_name, parse_group_name
from neurodyn.errors import InputError, named
from neurodyn.io import read_h5
from neurodyn.metrics.bits import bits_per_spike, check_rates, check_shape
from neurodyn.metrics.decoding import tp_corr, velocity_r2
from neurodyn.metrics.psth import psth_r2
from neurodyn.metrics.resample import upsample_hint

#: key prefixes of the scaling datasets (number of training trials)
SCALING_PREFIX = {"mc_maze_large": "[500]", "mc_maze_medium": "[250]", "mc_maze_small": "[100]"}

REQUIRED_TARGET = ("eval_spikes_heldout", "train_behavior", "eval_behavior")


#: fields of the metric functions' errors that are target data (the others are predictions)
TARGET_FIELDS = frozenset(REQUIRED_TARGET + (
    "spikes", "psth", "eval_cond_idx", "eval_jitter", "train_decode_mask", "eval_decode_mask",
    "eval_spikes_heldin_forward", "eval_spikes_heldout_forward"))


def _get(group: Mapping, key: str, name: str, path, required: bool = True):
    if key not in group:
        if required:
            raise InputError(f"missing key '{key}'", path=path, field=name)
        return None
    return np.asarray(group[key])


def _numbers(group: Mapping, key: str, name: str, path) -> np.ndarray:
    """``group[key]`` as float64; an InputError naming the file and key if it does not hold numbers."""
    value = np.asarray(group[key])
    if value.dtype.kind not in "biuf":
        raise InputError(f"expected numbers, found dtype {value.dtype}", path, f"{name}/{key}")
    return value.astype(np.float64)


def _check_target(target: Mapping, name: str, path) -> dict:
    """The target arrays used by the metrics, checked on their own (dtypes, counts, consistent trials,
    bins and units), as float64; every error names the target file."""
    a = {}
    for key in REQUIRED_TARGET:
        _get(target, key, name, path)
        a[key] = _numbers(target, key, name, path)
    spikes = a["eval_spikes_heldout"]
    if spikes.ndim != 3:
        raise InputError(f"expected (trials, bins, neurons), got shape {spikes.shape}", path,
                         f"{name}/eval_spikes_heldout")
    check_counts(path, name, {"eval_spikes_heldout": spikes})  # whole numbers >= 0 where observed
    if not np.nansum(spikes) > 0:
        raise InputError("no spikes in the held-out eval data (all counts are 0 or NaN): bits per spike is "
                         "undefined", path, f"{name}/eval_spikes_heldout")
    n_eval, n_bins, n_heldout = spikes.shape
    if a["eval_behavior"].ndim < 2 or a["eval_behavior"].shape[0] != n_eval:
        raise InputError(f"expected {n_eval} eval trials (as eval_spikes_heldout), got shape "
                         f"{a['eval_behavior'].shape}", path, f"{name}/eval_behavior")
    for key in ("eval_spikes_heldin_forward", "eval_spikes_heldout_forward", "psth", "eval_jitter"):
        if key in target:
            a[key] = _numbers(target, key, name, path)
    n_heldin = None
    if "eval_spikes_heldin_forward" in a:
        for kind in ("heldin", "heldout"):
            key = f"eval_spikes_{kind}_forward"
            if key not in a:
                raise InputError(f"missing key '{key}' (the other forward key is there)", path, f"{name}/{key}")
            check_counts(path, name, {key: a[key]})
        fwd_in, fwd_out = a["eval_spikes_heldin_forward"], a["eval_spikes_heldout_forward"]
        n_fwd = fwd_in.shape[1] if fwd_in.ndim == 3 else None
        check_shape(fwd_in, (n_eval, None, None), f"{name}/eval_spikes_heldin_forward", path)
        check_shape(fwd_out, (n_eval, n_fwd, n_heldout), f"{name}/eval_spikes_heldout_forward", path)
        n_heldin = fwd_in.shape[2]
    if "psth" in a:
        psth = a["psth"]
        check_shape(psth, (None, n_bins, None if n_heldin is None else n_heldin + n_heldout), f"{name}/psth", path)
        if psth.shape[2] <= n_heldout:
            raise InputError(f"expected more than {n_heldout} neurons (held-in + held-out), got shape "
                             f"{psth.shape}", path, f"{name}/psth")
        if "eval_cond_idx" not in target:
            raise InputError("target has 'psth' but no 'eval_cond_idx'", path, f"{name}/eval_cond_idx")
        for row in _index_rows(target["eval_cond_idx"], name, path):
            if row.size and (row.min() < 0 or row.max() >= n_eval):
                raise InputError(f"trial index out of range 0..{n_eval - 1}", path, f"{name}/eval_cond_idx")
    return a


def _index_rows(cond_idx, name: str, path) -> list[np.ndarray]:
    from neurodyn.metrics.psth import as_index_list

    field = f"{name}/eval_cond_idx"
    try:
        rows = as_index_list(cond_idx, field=field)
    except InputError as err:  # its own message, named once, with the file (it was wrapped in the line below)
        raise InputError(err.message, path, field) from None
    except (TypeError, ValueError) as err:
        raise InputError(f"expected rows of trial indices ({err})", path, field) from None
    return rows


def _validate(target: Mapping, prediction: Mapping, name: str, target_path, pred_path) -> dict:
    """Check keys and shapes of one dataset group; return float64 arrays by nlb_tools' key names."""
    a = _check_target(target, name, target_path)
    for key in REQUIRED_RATES:
        a[key] = _get(prediction, key, name, pred_path)
    n_eval, n_bins, n_heldout = a["eval_spikes_heldout"].shape
    n_heldin = a["eval_rates_heldin"].shape[-1] if a["eval_rates_heldin"].ndim == 3 else None
    if "eval_spikes_heldin_forward" in a:
        n_heldin = a["eval_spikes_heldin_forward"].shape[-1]
    elif "psth" in a:
        n_heldin = a["psth"].shape[-1] - n_heldout
    # train behaviour is (trials, bins, dims), or (trials, 5) trial columns for DMFC_RSG
    n_train = a["train_behavior"].shape[0]
    expected = {
        "eval_rates_heldout": (n_eval, n_bins, n_heldout),
        "eval_rates_heldin": (n_eval, n_bins, n_heldin),
        "train_rates_heldin": (n_train, n_bins, n_heldin),
        "train_rates_heldout": (n_train, n_bins, n_heldout),
    }
    forward = [key for key in FORWARD_RATES if key in prediction]
    if len(forward) == 1:
        other = (set(FORWARD_RATES) - set(forward)).pop()
        raise InputError(f"'{forward[0]}' given without '{other}'", pred_path, f"{name}/{other}")
    use_forward = bool(forward) and "eval_spikes_heldin_forward" in target
    if use_forward:
        for kind in ("heldin", "heldout"):
            spikes_key = f"eval_spikes_{kind}_forward"
            a[spikes_key] = _get(target, spikes_key, name, target_path).astype(np.float64)
            a[f"eval_rates_{kind}_forward"] = np.asarray(prediction[f"eval_rates_{kind}_forward"])
            expected[f"eval_rates_{kind}_forward"] = a[spikes_key].shape
    for key, shape in expected.items():
        check_shape(a[key], shape, f"{name}/{key}", pred_path)
        a[key] = check_rates(a[key], f"{name}/{key}", pred_path)
    a["use_forward"] = use_forward
    return a


def evaluate_dataset(
    target_group: Mapping, prediction_group: Mapping, dataset: str, *, target_path=None, prediction_path=None
) -> dict[str, float]:
    """All metrics of one dataset group (unprefixed keys), e.g. for a validation callback.

    Parameters
    ----------
    target_group
        nlb_tools' eval-target dict of one group (see module docstring).
    prediction_group
        Submission-layout dict of the same group: ``train_rates_held{in,out}``,
        ``eval_rates_held{in,out}``, optionally ``eval_rates_held{in,out}_forward``.
    dataset
        Dataset name with or without bin suffix (``"mc_maze"``, ``"dmfc_rsg_20"``).
    target_path, prediction_path
        Named in error messages.

    Returns
    -------
    dict
        ``co-bps``; ``tp corr`` (DMFC) or ``vel R2``; ``psth R2`` if the target has a PSTH;
        ``fp-bps`` if both hold forward data. Floats, in nlb_tools' order.

    Raises
    ------
    InputError
        Missing keys, wrong shapes (expected vs actual), NaN / infinite / negative rates.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> spk = rng.poisson(1.0, (10, 4, 2)).astype(float); beh = rng.normal(size=(10, 4, 2))
    >>> target = {"eval_spikes_heldout": spk, "train_behavior": beh, "eval_behavior": beh}
    >>> pred = {"train_rates_heldin": np.ones((10, 4, 3)), "train_rates_heldout": np.ones((10, 4, 2)),
    ...         "eval_rates_heldin": np.ones((10, 4, 3)), "eval_rates_heldout": np.ones((10, 4, 2))}
    >>> sorted(evaluate_dataset(target, pred, "mc_maze"))
    ['co-bps', 'vel R2']
    """
    base = dataset if dataset in DATASET_NAMES else parse_group_name(dataset)[0]
    try:
        return _evaluate_dataset(target_group, prediction_group, dataset, base, target_path, prediction_path)
    except InputError as err:
        if err.path is not None or (target_path is None and prediction_path is None):
            raise
        # a metric function found it: name the file it comes from (target data or predictions)
        key = (err.field or "").rsplit("/", 1)[-1]
        path = target_path if key in TARGET_FIELDS else prediction_path
        field = err.field if not err.field or err.field.startswith(f"{dataset}/") else f"{dataset}/{err.field}"
        raise InputError(err.message, path=path, field=field) from None


def _evaluate_dataset(target_group, prediction_group, dataset, base, target_path, prediction_path):
    name = dataset
    dmfc = base == "dmfc_rsg"
    a = _validate(target_group, prediction_group, name, target_path, prediction_path)
    eval_rates = np.concatenate([a["eval_rates_heldin"], a["eval_rates_heldout"]], axis=-1)
    result: dict[str, float] = {"co-bps": bits_per_spike(a["eval_rates_heldout"], a["eval_spikes_heldout"])}
    if dmfc:
        result["tp corr"] = tp_corr(a["eval_spikes_heldout"], eval_rates, a["eval_behavior"])
    else:
        train_rates = np.concatenate([a["train_rates_heldin"], a["train_rates_heldout"]], axis=-1)
        masks = [target_group.get(k) for k in ("train_decode_mask", "eval_decode_mask")]
        result["vel R2"] = velocity_r2(
            train_rates,
            a["train_behavior"],
            eval_rates,
            a["eval_behavior"],
            *(None if m is None else np.asarray(m) for m in masks),
        )
    if "psth" in a:
        jitter = target_group.get("eval_jitter")
        result["psth R2"] = psth_r2(
            a["psth"],
            eval_rates,
            target_group["eval_cond_idx"],
            None if jitter is None else np.asarray(jitter),
        )
    if a["use_forward"]:
        rates = np.concatenate([a["eval_rates_heldin_forward"], a["eval_rates_heldout_forward"]], axis=-1)
        spikes = np.concatenate([a["eval_spikes_heldin_forward"], a["eval_spikes_heldout_forward"]], axis=-1)
        result["fp-bps"] = bits_per_spike(rates, spikes)
    return {key: float(value) for key, value in result.items()}


def evaluate(target, prediction, *, target_path=None, prediction_path=None) -> list[dict[str, dict[str, float]]]:
    """Evaluate a submission against eval targets; same result structure as nlb_tools' ``evaluate``.

    Parameters
    ----------
    target
        Mapping ``{group: eval-target dict}`` or a path to a ``prepare`` file (its ``eval_target``
        group) or to an nlb_tools eval-target HDF5 file (see :func:`load_target`).
    prediction
        Mapping ``{group: submission dict}`` or a path to a submission HDF5 file.
    target_path, prediction_path
        The files of in-memory ``target`` / ``prediction``, named in error messages; ``target_path`` may be
        a mapping ``{group: file}`` (targets from several files).

    Returns
    -------
    list of dict
        ``[{"<dataset><suffix>_split": {metric: value}}, ...]`` in nlb_tools' order, scaling datasets
        merged into ``mc_maze_scaling[_20]_split`` with ``[500]``/``[250]``/``[100]`` key prefixes.

    Raises
    ------
    InputError
        No prediction group; a prediction group :func:`~neurodyn.metrics.submission.validate_submission`
        refuses (unknown keys too, as submit and ensemble do); unknown group names, a prediction group
        without a matching target group (another dataset or bin size), and everything
        :func:`evaluate_dataset` rejects. Each names the file at fault when the paths are known.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> spk = rng.poisson(1.0, (10, 4, 2)).astype(float); beh = rng.normal(size=(10, 4, 2))
    >>> target = {"mc_maze_small": {"eval_spikes_heldout": spk, "train_behavior": beh, "eval_behavior": beh}}
    >>> pred = {"mc_maze_small": {"train_rates_heldin": np.ones((10, 4, 3)),
    ...     "train_rates_heldout": np.ones((10, 4, 2)), "eval_rates_heldin": np.ones((10, 4, 3)),
    ...     "eval_rates_heldout": np.ones((10, 4, 2))}}
    >>> list(evaluate(target, pred)[0]["mc_maze_scaling_split"])
    ['[100] co-bps', '[100] vel R2']
    """
    from neurodyn.metrics.submission import read_submission, validate_submission


    if isinstance(target, (str, os.PathLike)):
        target_path, target = target, load_target(target)
    if isinstance(prediction, (str, os.PathLike)):
        prediction_path, prediction = prediction, read_submission(prediction)
    target_paths = target_path if isinstance(target_path, Mapping) else dict.fromkeys(target, target_path)
    # the checks of submit and ensemble: groups, keys, 3-D consistent finite non-negative rates
    validate_submission(prediction, path=prediction_path)
    for name in target:
        parse_group_name(name, target_paths.get(name))
    missing = [name for name in prediction if name not in target]
    if missing:
        raise InputError(
            f"no target for '{missing[0]}' (target groups: {', '.join(sorted(target)) or 'none'})"
            + ("".join(upsample_hint(name, missing[:1]) for name in sorted(target) if name not in prediction)
               or ": another dataset or bin size?"),
            path=prediction_path,
            field=missing[0],
        )
    results: list[dict] = []
    scaling: dict[int, dict[str, float]] = {5: {}, 20: {}}
    for dataset in DATASET_NAMES:
        for bin_ms in BIN_WIDTHS_MS:
            name = group_name(dataset, bin_ms)
            if name not in prediction:
                continue
            metrics = evaluate_dataset(
                target[name], prediction[name], name, target_path=target_paths.get(name),
                prediction_path=prediction_path,
            )
            if dataset in SCALING_PREFIX:
                scaling[bin_ms].update({f"{SCALING_PREFIX[dataset]} {k}": v for k, v in metrics.items()})
            else:
                results.append({f"{name}_split": metrics})
    for bin_ms in BIN_WIDTHS_MS:
        if scaling[bin_ms]:
            results.append({f"{group_name('mc_maze_scaling', bin_ms)}_split": scaling[bin_ms]})
    return results


def _check_target_kind(handle, path: str) -> None:
    """One line for a file that is not an evaluation target (was "unknown dataset group 'latents'" for a
    prediction file given as --target, "unknown dataset group 'acquisition'" for an NWB file). A prediction
    file names ``--target`` only inside :func:`neurodyn.errors.command_line_names` (``neurodyn evaluate``);
    a Python caller of :func:`load_target` / :func:`evaluate` reads the file and what is wrong."""
    import h5py

    from neurodyn.metrics.submission import _not_rates

    not_rates = _not_rates(handle)
    if not_rates:
        raise InputError(f"{not_rates[1]}, not an evaluation target (a val-phase file of neurodyn prepare)",
                         path=path, field=not_rates[0])
    rates = [name for name in handle if isinstance(handle[name], h5py.Group) and
             any(key.endswith("_rates_heldin") for key in handle[name])]
    if rates or "module" in handle.attrs or "ensemble_members" in handle.attrs or "baseline" in handle.attrs:
        swapped = named("the target and the prediction", "--target and --pred")
        raise InputError(f"is a prediction file (rates), not an evaluation target: swapped {swapped}?",
                         path=path, field=named(None, "--target"))


def load_target(path) -> dict[str, dict]:
    """Read eval targets from a ``prepare`` file or an nlb_tools eval-target HDF5 file.

    A ``prepare`` file (:func:`neurodyn.data.prepared.read_prepared`) has an ``eval_target`` group holding
    ``<dataset><suffix>``, which must agree with its root attributes ``dataset`` / ``bin_ms``. An nlb_tools
    file has the ``<dataset><suffix>`` groups at the top level.

    Returns
    -------
    dict
        ``{group_name: {key: array or list of index arrays}}``.
    """
    import h5py

    from neurodyn.data.prepared import is_prepared, read_prepared
    from neurodyn.io import read_h5_dict

    path = os.fspath(path)
    with read_h5(path, "evaluation target file") as handle:
        prepared = is_prepared(handle)
        if not prepared:
            _check_target_kind(handle, path)  # before any group is read: an NWB file is large
        if not prepared:  # nlb_tools' layout: the <dataset><suffix> groups at the top level
            groups = {key: read_h5_dict(handle[key]) for key in handle if isinstance(handle[key], h5py.Group)}
    if prepared:
        prep = read_prepared(path, ("eval_target",), require=("eval_target",))
        groups, expected = prep.eval_target, group_name(prep.dataset, prep.bin_ms)
        if set(groups) != {expected}:
            raise InputError(f"expected group '{expected}' (file attrs dataset/bin_ms), found {sorted(groups)}",
                             path=path, field="eval_target")
    if not groups:
        raise InputError("no eval-target groups found", path=path)
    for name, group in groups.items():
        parse_group_name(name, path)
        if "eval_spikes_heldout" not in group:
            raise InputError("missing key 'eval_spikes_heldout'", path=path, field=name)
    return groups
