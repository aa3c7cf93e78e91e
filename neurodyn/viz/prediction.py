"""A summary figure of a prediction file (what ``neurodyn plot FILE [--out FIGURE]`` draws).

Layouts recognised (first match wins):

``nlb``
    NLB submission layout written by ``neurodyn predict`` / ``neurodyn baseline`` / ``neurodyn submit``: a group
    ``<dataset>[_<bin>]`` with ``eval_rates_heldin`` (trials, time, neurons) counts per bin, optional
    ``eval_rates_heldout``, and optional ``latents/eval_z`` (trials, time, D). Rates must be finite and >= 0 (the
    check of ``evaluate`` / ``submit``); latents need the rates' bins and may have more (forward prediction, marked
    "forward" on their time axes); optional ``trial_ids/<group>/eval`` beside the group (the rows' NLB trial ids,
    ``neurodyn predict`` / ``baseline`` of a prepared file; whole numbers, one per row, the rule of the ``hmmglm``
    layout's ``*_trial_ids``) names the rows (``row 0 (NLB trial 100)``). Drawn: one trial's rates (held-in above
    the line, held-out below), the trial-averaged rates, and the top principal components of the latents (up to 3;
    one-dimensional latents as their time course). A file with several such groups (``neurodyn submit``: several
    datasets or bin widths) is drawn one group at a time: ``group`` / ``--group`` names it, and is required there
    (never a silent choice; the error lists the groups).
``lfads``
    ``valid_rates`` / ``train_rates`` (trials, time, neurons) with optional ``valid_z`` / ``train_z``
    (LangevinFlow on LFADS-format or Lorenz data) and ``*_sequence_ids`` (each row's trial in the data set: the
    Lorenz simulation's trial, an LFADS-format file's ``train_inds`` / ``valid_inds``; whole numbers >= 0, the
    rule of the ``hmmglm`` layout's): the rates panel names its row by them (``row 0 (sequence 17)``). Drawn as
    ``nlb``.
``hmmglm``
    ``valid_posteriors`` / ``train_posteriors`` (sequences, time, states) with optional
    ``*_viterbi`` (sequences, time) and ``*_trial_ids`` (the rows' NLB trial ids, whole numbers, a prepared
    NLB file's predictions) or ``*_sequence_ids`` (each row's sequence in the simulation, whole numbers >= 0, a
    switching-GLM simulation's predictions: valid row 0 is sequence ``n_train``): the figure's row ticks and
    titles name rows by them (``row 0 (sequence 8)``), and rows of a file without them by their position
    (``row 0``), never as trial or sequence numbers. Drawn: the posteriors of one row and the state paths of
    all.
``hmmglm_model``
    A fitted switching GLM exported by :func:`neurodyn.models.hmmglm.evaluate.export_model_h5`:
    ``coupling`` (states, post, pre), ``transitions``, optional ``posteriors`` / ``viterbi``. Drawn:
    the coupling matrices (and the states when present).

Time axes are in seconds when the file states its bin width (attribute ``bin_ms``, a finite number of ms
> 0, else the file is refused; or an NLB group name such as ``mc_maze_small_20``), else in bins; an NLB
group's are relative to its dataset's alignment event (move onset for MC_Maze and Area2_Bump, go for
DMFC_RSG, trial start for MC_RTT), marked at 0. Every time panel spans the outer bin edges, with
one label and a dashed line at the event. The title names what made the file (its ``model`` attribute,
``baseline (<recipe>)``, ...) and the layout. A prepared data file is refused as such. The figure is written
atomically, in the format its suffix names (PNG, PDF, SVG, ...: :func:`figure_formats`); anything unreadable
or of unknown layout raises :class:`~neurodyn.errors.InputError` (one line, exit code 2).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from neurodyn.errors import InputError, named, one_line, with_article
from neurodyn.io import read_h5
from neurodyn.viz._common import bin_width, closes_on_error

__all__ = ["read_prediction", "draw_prediction", "plot_file", "figure_formats", "figure_format", "source_date_epoch"]

LAYOUTS = ("nlb", "lfads", "hmmglm", "hmmglm_model")


def _array(f, key: str, path: Path, ndim: int, *, finite: bool = True) -> np.ndarray:
    """Read dataset ``key`` and check its rank (and finiteness) -> InputError naming file and key."""
    import h5py

    item = f.get(key)
    if not isinstance(item, h5py.Dataset):
        raise InputError("missing dataset", path, key)
    try:
        arr = np.asarray(item[()], dtype=np.float64)
    except (TypeError, ValueError, OSError) as err:
        raise InputError(f"cannot read as numbers ({one_line(err, 120)})", path, key) from None
    if arr.ndim != ndim or min(arr.shape, default=0) < 1:
        raise InputError(f"expected a non-empty {ndim}-D array, got shape {arr.shape}", path, key)
    if finite and not np.all(np.isfinite(arr)):
        raise InputError("contains NaN or infinite values", path, key)
    return arr


def _rates(f, key: str, path: Path) -> np.ndarray:
    """Predicted rates ``key`` (trials, time, neurons): finite and non-negative, the check of ``evaluate``,
    ``submit`` and ``ensemble`` (:func:`neurodyn.metrics.bits.check_rates`)."""
    from neurodyn.metrics.bits import check_rates

    return check_rates(_array(f, key, path, 3), key, path)


def _nlb_groups(f) -> list[str]:
    import h5py

    from neurodyn.data.prepared import AUXILIARY_GROUPS

    return sorted(k for k, v in f.items()
                  if isinstance(v, h5py.Group) and k not in AUXILIARY_GROUPS and "eval_rates_heldin" in v)


def _bin_ms(f, path: Path, group: str | None) -> float | None:
    """The file's bin width: its ``bin_ms`` attribute (a number by :func:`~neurodyn.viz._common.bin_width`'s
    rule, and > 0: a file's bins have a width, so the plotting functions' 0 = "no width" is refused here; else an
    InputError naming the file and the attribute), else the NLB group name's, else None."""
    value = f.attrs.get("bin_ms")
    if value is not None:
        try:
            width = bin_width(value)
        except InputError:
            width = None
        if width is None:
            raise InputError(f"must be a finite number of ms > 0, got {value!r}", path, "bin_ms (attribute)")
        return width
    if group is not None:  # nlb_tools naming: "mc_maze" at 5 ms, "mc_maze_20" at 20 ms
        match = re.search(r"_(\d+)$", group)
        return float(match.group(1)) if match else 5.0
    return None


def _alignment(group: str, bin_ms: float | None, n_bins: int) -> dict:
    """``offset_ms`` / ``event`` of an NLB group's evaluation bins: the dataset's window relative to its
    alignment event (MC_Maze: -250 .. 450 ms around move onset), when the rates span exactly that window;
    else nothing (time then runs from the window start)."""
    from neurodyn.data.nlb import get_dataset
    from neurodyn.data.prepared import parse_group_name

    try:
        window = get_dataset(parse_group_name(group)[0]).window
    except InputError:
        return {}
    if not bin_ms or not window.align_field or n_bins * bin_ms != window.end_ms - window.start_ms:
        return {}
    event = window.align_field.removesuffix("_time").replace("_", " ")
    return {"offset_ms": float(window.start_ms), "event": "trial start" if event == "start" else event}


def _first(f, keys: tuple[str, ...]) -> str | None:
    return next((k for k in keys if k in f), None)


def read_prediction(path, *, group: str | None = None) -> dict:
    """Detect the layout of a prediction file and read what the figure needs.

    Parameters
    ----------
    path : str or Path
    group : str, optional
        NLB group to draw; required when the file holds several (datasets or bin widths), optional with
        one (then that one).

    Returns
    -------
    dict
        ``layout`` (one of ``LAYOUTS``), ``bin_ms`` (float or None), ``label`` (what is drawn),
        ``group`` (the NLB group drawn; None for the other layouts), ``path`` (str), ``name`` (what made
        the file, when its attributes say: model, baseline, ensemble, submission) and
        the arrays: ``rates`` (trials, time, neurons), ``n_heldin`` and ``unit_ids`` (the NWB unit id of each
        rates column, or None: :func:`~neurodyn.viz.trials.column_unit_ids`), optional ``latents``
        (trials, time, D) with ``latents_key`` (the dataset they came from) and, layout ``nlb``, optional
        ``trial_ids`` (the rows' NLB trial ids, ``trial_ids/<group>/eval``), layout ``lfads``, optional
        ``sequence_ids`` (each row's trial in the Lorenz simulation or the LFADS file's ``*_inds``); or ``posteriors``
        (sequences, time, states), optional ``paths`` and ``trial_ids`` (NLB trial ids of the rows) or
        ``sequence_ids`` (the rows' sequences in a switching-GLM simulation);
        or ``coupling`` (states, post, pre). With a known alignment (an NLB dataset's event, or the
        window starts the file records): ``offset_ms`` (time of the first bin's start from the event) and
        ``event``.

    Raises
    ------
    InputError
        Missing or non-HDF5 file, a prepared data file (not a prediction), unknown layout, arrays of the
        wrong shape or with NaN, negative rates, fractional trial or sequence ids (or negative sequence ids,
        or not as many ids as rows), a ``bin_ms`` attribute that is not a
        number > 0; ``group`` not an NLB group of the file, or not given for a file with several (field
        ``--group``; the message lists the file's groups).

    Examples
    --------
    >>> data = read_prediction("pred.h5")  # doctest: +SKIP
    >>> data["layout"], data["rates"].shape  # doctest: +SKIP
    ('nlb', (100, 35, 142))
    """
    path = Path(path)
    with read_h5(path, "prediction .h5 file") as f:
        out = _read(f, path, group)
        name = _model_name(f)
        if "rates" in out:  # the columns' NWB unit ids, where the file records them (the figure names units by them)
            from neurodyn.viz.trials import column_unit_ids

            out["unit_ids"] = column_unit_ids(f.attrs, out["n_heldin"], out["rates"].shape[2], path)
    out["path"] = str(path)
    if name:
        out["name"] = name
    return out


def _model_name(f) -> str | None:
    """What made the file, from its root attributes: the model class (``model``, as ``neurodyn predict`` and
    ``export_model_h5`` record it), ``baseline (<recipe>)``, ``ensemble of N files`` or ``submission``."""
    import json

    model = _text_attr(f, "model")
    if model:
        return model
    recipe = _text_attr(f, "baseline")
    if recipe:
        return f"baseline ({recipe})"
    members = _text_attr(f, "ensemble_members")
    if members:
        try:
            return f"ensemble of {len(json.loads(members))} files"
        except (ValueError, TypeError):
            return "ensemble"
    return "submission" if _text_attr(f, "submission_members") else None


def _read(f, path: Path, group: str | None) -> dict:
    groups = _nlb_groups(f)
    if group is not None and group not in groups:
        found = f"the file holds: {', '.join(groups)}" if groups else "the file holds none"
        raise InputError(f"no NLB group {group!r} with eval_rates_heldin; {found}", path, named("group", "--group"))
    if group is None and len(groups) > 1:
        option = named("group", "--group")
        raise InputError(f"the file holds {len(groups)} NLB groups; choose one with {option}: {', '.join(groups)}",
                         path, option)
    if groups:
        name = group or groups[0]
        rates = _rates(f, f"{name}/eval_rates_heldin", path)
        out = {
            "layout": "nlb",
            "group": name,
            "bin_ms": _bin_ms(f, path, name),
            "n_heldin": rates.shape[2],
            "label": f"{name}: evaluation trials",
        }
        if f"{name}/eval_rates_heldout" in f:
            heldout = _rates(f, f"{name}/eval_rates_heldout", path)
            if heldout.shape[:2] != rates.shape[:2]:
                raise InputError(
                    f"shape {heldout.shape} does not match eval_rates_heldin {rates.shape}",
                    path,
                    f"{name}/eval_rates_heldout",
                )
            rates = np.concatenate([rates, heldout], axis=2)
        out["rates"] = rates
        out.update(_alignment(name, out["bin_ms"], rates.shape[1]))
        if "latents/eval_z" in f:
            out.update(_latents(f, "latents/eval_z", path, rates))
        from neurodyn.data.prepared import TRIAL_IDS

        ids = f"{TRIAL_IDS}/{name}/eval"  # the rows' NLB trial ids, beside the group (predict of a prepared file)
        if ids in f:
            out["trial_ids"] = _row_ids(f, ids, path, len(rates), "NLB trial ids")
        return out
    key = _first(f, ("valid_rates", "train_rates"))
    if key is not None:
        split = key.split("_")[0]
        rates = _rates(f, key, path)
        out = {
            "layout": "lfads",
            "group": None,
            "bin_ms": _bin_ms(f, path, None),
            "rates": rates,
            "n_heldin": rates.shape[2],
            "label": f"{split} trials",
        }
        if f"{split}_z" in f:
            out.update(_latents(f, f"{split}_z", path, rates))
        out.update(_split_row_ids(f, split, path, len(rates)))
        return out
    key = _first(f, ("valid_posteriors", "train_posteriors"))
    if key is not None:
        split = key.split("_")[0]
        phase = _text_attr(f, "phase")
        # rows of a prepared NLB file are trials: valid_ holds the evaluation trials (the test trials in the
        # test phase, which "valid sequences, test phase" misnamed), train_ the training trials
        rows = {"valid": "evaluation trials", "train": "training trials"}[split] if (
            f"{split}_trial_ids" in f) else f"{split} sequences"
        out = {"layout": "hmmglm", "group": None, "bin_ms": _bin_ms(f, path, None),
               "label": rows + (f", {phase} phase" if phase else "")}
        out.update(_states(f, key, f"{split}_viterbi", path))
        out.update(_split_row_ids(f, split, path, len(out["posteriors"])))
        if "coupling" in f:  # neurodyn predict of a switching GLM also stores the model
            out["coupling"] = _coupling(f, path)
        dataset = _text_attr(f, "dataset")  # an NLB file's rows: time from the dataset's alignment event
        if dataset:
            out.update(_alignment(dataset, out["bin_ms"], out["posteriors"].shape[1]))
        return out
    from neurodyn.data.info import is_hmmglm_model_file

    if is_hmmglm_model_file(f):  # the rule info names such a file by
        out = {
            "layout": "hmmglm_model",
            "group": None,
            "bin_ms": _bin_ms(f, path, None),
            "coupling": _coupling(f, path),
            "label": "coupling of each state" + (", posteriors of the exported spikes" if "posteriors" in f else ""),
        }
        if "posteriors" in f:
            out.update(_states(f, "posteriors", "viterbi", path))
        return out
    from neurodyn.data.prepared import is_prepared
    from neurodyn.io.hdf5 import is_nwb

    if is_prepared(f):
        raise InputError("is a prepared data file (neurodyn prepare), not a prediction file: plot the predictions "
                         "of a model fitted on it (neurodyn predict, neurodyn baseline)", path, "format")
    if is_nwb(f):  # said "unknown prediction layout (expected an NLB group with eval_rates_heldin, ...)"
        raise InputError("is an NWB file, not a prediction file: plot the predictions of a model fitted on its "
                         "tensors (neurodyn prepare, then neurodyn predict or neurodyn baseline)", path, "nwb_version")
    data_kind = _data_file_kind(f)
    if data_kind:
        raise InputError(f"is {data_kind}, not a prediction file: plot the predictions of a model fitted on it "
                         "(neurodyn predict)", path, "format")
    raise InputError(
        "unknown prediction layout (expected an NLB group with eval_rates_heldin, valid_rates/train_rates, "
        "valid_posteriors/train_posteriors, or coupling + transitions)",
        path,
    )


def _data_file_kind(f) -> str | None:
    """What a data file that ``plot`` cannot draw is (``"a simulated switching-GLM data file (...)"``), None for
    a file of no known data kind: the simulators' files and LFADS-format data hold spikes, not predictions."""
    from neurodyn.data.info import LFADS_KEYS
    from neurodyn.data.synthetic.switching_glm import FORMAT as SWITCHING_GLM_FORMAT

    if _text_attr(f, "format") == SWITCHING_GLM_FORMAT:
        return "a simulated switching-GLM data file (neurodyn simulate switching-glm)"
    if LFADS_KEYS & set(f.keys()):
        made = " (neurodyn simulate lorenz)" if _text_attr(f, "generator") == "neurodyn.data.synthetic.lorenz" else ""
        return f"an LFADS-format data file{made}"
    return None


def _text_attr(f, name: str) -> str | None:
    """A root attribute as text (h5py gives str or bytes), None when absent."""
    value = f.attrs.get(name)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value) if value is not None and str(value) else None


def _split_row_ids(f, split: str, path: Path, n_rows: int) -> dict:
    """``{"trial_ids": ids}`` or ``{"sequence_ids": ids}`` of the ``n_rows`` rows of ``split``, as the file records
    them (:data:`ROW_IDS`), else ``{}``: NLB trial ids of a prepared NLB file's rows (``*_trial_ids``), or each
    row's index in the whole data set (``*_sequence_ids``: a switching-GLM simulation's sequence, a Lorenz
    simulation's trial, an LFADS-format file's ``train_inds`` / ``valid_inds``), whole numbers >= 0."""
    if f"{split}_trial_ids" in f:
        return {"trial_ids": _row_ids(f, f"{split}_trial_ids", path, n_rows, "NLB trial ids")}
    if f"{split}_sequence_ids" not in f:
        return {}
    ids = _row_ids(f, f"{split}_sequence_ids", path, n_rows, "sequence ids")
    if ids.size and ids.min() < 0:
        raise InputError(f"sequence ids must be >= 0, found {ids.min()}", path, f"{split}_sequence_ids")
    return {"sequence_ids": ids}


def _row_ids(f, key: str, path: Path, n_rows: int, what: str) -> np.ndarray:
    """The ids of the ``n_rows`` rows under ``key`` (int64) -> InputError naming file and key unless they are
    distinct integers within int64, one per row: the rule of unit ids
    (:func:`~neurodyn.data.prepared.check_unit_ids`). Every writer stores row ids as int64 (``prepare``'s
    ``trial_ids``, which ``predict`` copies into ``*_trial_ids``; ``predict``'s ``*_sequence_ids``): float ids are
    not a file neurodyn wrote (1.5 was drawn as trial 1, and ids read as float64 lose digits past 2**53),
    unsigned ids past int64 would wrap to negative ids, and two rows of one id would tick and title two rows alike
    (each row is one trial of the NLB trials table, or one sequence of a simulation)."""
    import h5py

    item = f.get(key)
    if not isinstance(item, h5py.Dataset):
        raise InputError("missing dataset", path, key)
    try:
        ids = np.asarray(item[()])
    except (TypeError, ValueError, OSError) as err:
        raise InputError(f"cannot read as numbers ({one_line(err, 120)})", path, key) from None
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise InputError(f"{what} must be integers, one per row (as neurodyn writes them, int64), found {ids.dtype}"
                         + ("" if ids.ndim == 1 else f" of shape {ids.shape}"), path, key)
    if len(ids) != n_rows:
        raise InputError(f"{len(ids)} ids for {n_rows} rows", path, key)
    beyond = ids[ids > np.iinfo(np.int64).max] if ids.dtype.kind == "u" else ids[:0]
    if beyond.size:
        raise InputError(f"{what.removesuffix('s')} {beyond[0]} is beyond int64 (damaged file?)", path, key)
    from neurodyn.data.prepared import repeated_id

    repeated = repeated_id(ids)
    if repeated:
        raise InputError(f"expected distinct {what}, found {repeated} (damaged file?)", path, key)
    return ids.astype(np.int64)


def _coupling(f, path: Path) -> np.ndarray:
    coupling = _array(f, "coupling", path, 3)
    if coupling.shape[1] != coupling.shape[2]:
        raise InputError(f"expected (states, neurons, neurons), got shape {coupling.shape}", path, "coupling")
    return coupling


def _latents(f, key: str, path: Path, rates: np.ndarray) -> dict:
    """``latents`` (trials, time, D) with ``latents_key``: as many trials as the rates and at least their bins
    (more: forward-prediction bins after the rates' window)."""
    latents = _array(f, key, path, 3)
    if latents.shape[0] != rates.shape[0]:
        raise InputError(f"{latents.shape[0]} trials, but the rates have {rates.shape[0]}", path, key)
    if latents.shape[1] < rates.shape[1]:
        raise InputError(f"{latents.shape[1]} time bins, fewer than the rates' {rates.shape[1]} (expected the rates' "
                         "bins, then any forward-prediction bins)", path, key)
    return {"latents": latents, "latents_key": key}


def _states(f, key: str, path_key: str, path: Path) -> dict:
    posteriors = _array(f, key, path, 3)
    # stored as float32: row sums are 1 to within ~S·6e-8; 1e-3 only rejects non-distributions
    if posteriors.min() < 0 or posteriors.max() > 1 or not np.allclose(posteriors.sum(-1), 1.0, atol=1e-3):
        raise InputError("rows are not probability distributions over states", path, key)
    out = {"posteriors": posteriors}
    if path_key in f:
        paths = _array(f, path_key, path, 2)
        if paths.shape != posteriors.shape[:2]:
            raise InputError(f"shape {paths.shape} does not match {key} {posteriors.shape[:2]}", path, path_key)
        if np.any(paths != np.round(paths)) or paths.min() < 0 or paths.max() >= posteriors.shape[2]:
            raise InputError(f"state labels must be integers in 0..{posteriors.shape[2] - 1}", path, path_key)
        out["paths"] = paths.astype(np.int64)
    return out


#: how a figure title names each layout
LAYOUT_TITLES = {"nlb": "NLB layout", "lfads": "LFADS layout", "hmmglm": "HMM-GLM layout",
                 "hmmglm_model": "exported model"}


@closes_on_error
def draw_prediction(data: dict, *, trial: int | None = None, title: str | None = None):
    """The summary figure of :func:`read_prediction`'s output (a new matplotlib figure).

    Every time axis of the figure spans the outer edges of its bins, with one label ("time from <event> (s)"
    for an NLB alignment, else "time (s)", or "bin" without a bin width) and a dashed line at the event.

    Parameters
    ----------
    data : dict
        As returned by :func:`read_prediction`.
    trial : int, optional
        Row shown on its own, an index into the rows drawn, 0 .. rows - 1 (default 0): not an NLB trial id
        or a simulation's sequence number, which the figure prints beside the row (``row 0 (NLB trial
        100)``); refused for a file of no trials or sequences (a fitted model exported without posteriors).
    title : str, optional
        Figure title (default: the model that made the file, e.g. ``"LangevinFlow prediction (NLB layout):
        mc_maze_small_20: evaluation trials"``, from its ``model`` / ``baseline`` attribute, and what is drawn).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    InputError
        ``trial`` out of range (the message names the row range and the ids the rows hold, and the row of an id
        given as ``trial``) or given for a file without trials (field ``--trial``); latents that cannot be
        drawn (naming the file and their key).

    Examples
    --------
    >>> fig = draw_prediction(read_prediction("pred.h5"), trial=3)  # doctest: +SKIP
    """
    from neurodyn.viz._common import pyplot
    from neurodyn.viz.plots import plot_coupling, plot_state_posteriors
    from neurodyn.viz.trials import plot_psth, plot_rates_heatmap, plot_states_aligned

    plt = pyplot()
    bin_ms, layout = data["bin_ms"], data["layout"]
    per_trial = data.get("rates", data.get("posteriors"))
    if per_trial is None:
        if trial is not None:  # --trial 99 on a model without posteriors was ignored
            raise InputError("the file holds no trials or sequences to choose from (a fitted model without "
                             "posteriors)", data.get("path"), named("trial", "--trial"))
    else:
        trial = 0 if trial is None else trial
        if not 0 <= trial < len(per_trial):
            raise InputError(_out_of_range(trial, len(per_trial), data), data.get("path"), named("trial", "--trial"))
    offset_ms, event = data.get("offset_ms", 0.0), data.get("event")
    time_label = (f"time from {event} (s)" if event else "time (s)") if bin_ms else "bin"
    time_axes = []  # (axis, colour of its event line): every axis whose x is time gets one label and the line
    if layout in ("nlb", "lfads"):
        rates = data["rates"]
        panels = [1.0, 1.1] + ([1.6] if "latents" in data else [])
        fig = plt.figure(figsize=(10, 3.2 * sum(panels)), layout="constrained")
        subs = fig.subfigures(len(panels), 1, height_ratios=panels)
        ax = subs[0].subplots()
        ids, noun = _row_names(data)  # a Lorenz / LFADS prediction's rows: their trial in the data set
        which = f"row {trial}" if ids is None else f"row {trial} ({noun} {ids[trial]})"
        plot_rates_heatmap(rates, trial=trial, bin_ms=bin_ms, offset_ms=offset_ms, ax=ax,
                           title=f"{which}: predicted rates", unit_ids=data.get("unit_ids"))
        time_axes.append((ax, "w"))
        if data["n_heldin"] < rates.shape[2]:
            ax.axhline(data["n_heldin"] - 0.5, color="c", lw=1.2)
            ax.set_ylabel(f"{ax.get_ylabel()} (held-in | held-out)")
        plot_psth(rates, bin_ms=bin_ms, sigma_ms=None, fig=subs[1], title="trial-averaged predicted rates",
                  offset_ms=offset_ms, event=event or "alignment", unit_ids=data.get("unit_ids"))
        time_axes += zip(subs[1].axes[:2], "wk")
        if "latents" in data:
            time_axes += [(ax, "k") for ax in _draw_latents(data, subs[2], offset_ms, event)]
    elif "posteriors" in data:
        has_coupling = "coupling" in data
        panels = ([1.2] if has_coupling else []) + [0.8, 1.6]
        fig = plt.figure(figsize=(10, 3.0 * sum(panels)), layout="constrained")
        subs = fig.subfigures(len(panels), 1, height_ratios=panels)
        if has_coupling:
            plot_coupling(data["coupling"], fig=subs[0], titles=[f"state {s}" for s in range(len(data["coupling"]))])
        ax = subs[-2].subplots()
        # rows are not trial or sequence numbers: a prepared NLB file's rows are named by their NLB trial ids, a
        # simulation's by their sequence in it (valid row 0, the simulation's sequence n_train, was "sequence 0")
        ids, noun = _row_names(data)
        which = f"{noun} {trial}" if ids is None else f"row {trial} ({noun} {ids[trial]})"
        rows = "sequence" if noun == "sequence" else "row"  # what a row of the path image is
        plot_state_posteriors(data["posteriors"][trial], bin_ms=bin_ms, offset_ms=offset_ms, ax=ax,
                              title=f"{which}: state posteriors")
        time_axes.append((ax, "k"))
        plot_states_aligned(
            data["posteriors"],
            paths=data.get("paths"),
            bin_ms=bin_ms,
            offset_ms=offset_ms,
            event=event or "alignment",
            fig=subs[-1],
            title=f"state path of every {rows}" + (" (Viterbi)" if "paths" in data else ""),
            ylabel=rows if noun == rows else f"{rows}: {noun} id",  # "row: NLB trial id"
            row_ids=ids,
        )
        time_axes += [(ax, "k") for ax in subs[-1].axes[:2]]
    else:
        fig = plt.figure(figsize=(2.4 * len(data["coupling"]) + 1, 3), layout="constrained")
        plot_coupling(data["coupling"], fig=fig, titles=[f"state {s}" for s in range(len(data["coupling"]))])
    for ax, colour in time_axes:
        if ax.get_xlabel():  # of axes sharing x, the lowest carries it
            ax.set_xlabel(time_label)
        low, high = ax.get_xlim()
        drawn = any(list(line.get_xdata()) == [0.0, 0.0] for line in ax.lines)  # the plot functions' own line
        if event and bin_ms and low <= 0 <= high and not drawn:
            ax.axvline(0.0, color=colour, ls="--", lw=1)
    fig.suptitle(title or _title(data))
    return fig


#: what a prediction's row ids are (:func:`read_prediction`'s key: one id's noun): NLB trial ids of a prepared file's
#: rows, or each row's index in the whole data set (``*_sequence_ids``): the sequence in the simulation of a
#: switching-GLM simulation's, the trial in the simulation of a Lorenz simulation's, the ``train_inds`` /
#: ``valid_inds`` of an LFADS-format file's
ROW_IDS = {"trial_ids": "NLB trial", "sequence_ids": "sequence"}


def _row_names(data: dict) -> tuple[np.ndarray | None, str]:
    """``(ids, noun)`` of the rows of ``data``: their ids and what one id names (:data:`ROW_IDS`); for a file that
    names its rows by nothing but their position, ``ids`` None and what a row is: an exported model's rows are the
    sequences it was given (``sequence``), a prediction file's rows of a split (``row``)."""
    for key, noun in ROW_IDS.items():
        if data.get(key) is not None:
            return np.asarray(data[key]), noun
    return None, "sequence" if data["layout"] == "hmmglm_model" else "row"


def _id_span(ids: np.ndarray) -> str:
    """``8..9`` for consecutive ids, else the ids (up to 6), else ``4 to 230 (not consecutive)``."""
    first, last = int(ids[0]), int(ids[-1])
    if np.array_equal(ids, np.arange(first, first + len(ids))):
        return f"{first}..{last}" if len(ids) > 1 else str(first)
    if len(ids) <= 6:
        return ", ".join(str(int(i)) for i in ids)
    return f"{int(ids.min())} to {int(ids.max())} (not consecutive)"


def _out_of_range(trial, n_rows: int, data: dict) -> str:
    """Why ``trial`` picks no row: it is a row index, 0 .. n_rows - 1; for rows named by ids (NLB trial ids, a
    simulation's sequences) the ids they hold, and the row of ``trial`` when it is one of them (``--trial 100``
    for NLB trial 100 said only 'trial 100 out of range (0..24)')."""
    option = named("trial", "--trial")
    message = f"row {trial} out of range: {option} takes a row index, 0..{n_rows - 1}"
    ids, noun = _row_names(data)
    if ids is not None:
        message += f", not {with_article(noun)} id: the rows hold {noun}s {_id_span(ids)}"
        hit = np.flatnonzero(ids == trial)
        if hit.size:
            message += f"; {noun} {trial} is row {int(hit[0])}"
    return message


def _title(data: dict) -> str:
    """``<model> prediction (<layout>): <what is drawn>``; an exported model: ``<model> (exported model): ...``."""
    name, layout = data.get("name"), data["layout"]
    if layout == "hmmglm_model":
        return f"{name or 'switching GLM'} ({LAYOUT_TITLES[layout]}): {data['label']}"
    return f"{name + ' ' if name else ''}prediction ({LAYOUT_TITLES[layout]}): {data['label']}"


def _draw_latents(data: dict, fig, offset_ms: float, event: str | None) -> list:
    """The latents' principal components into ``fig``: up to 3 (fewer latent dimensions: as many; one: its time
    course alone), the forward-prediction bins after the rates' window marked. Returns the time axes."""
    from neurodyn.viz.dynamics import plot_latent_pca

    latents, n_rate_bins = data["latents"], data["rates"].shape[1]
    n_components = min(3, latents.shape[2], latents.shape[0] * latents.shape[1])
    try:
        plot_latent_pca(latents, bin_ms=data["bin_ms"], offset_ms=offset_ms, event=event or "alignment", fig=fig,
                        n_components=n_components, title="latents z: principal components",
                        forward_from=n_rate_bins if latents.shape[1] > n_rate_bins else None)
    except InputError as err:  # the file and key, not the plotting function's argument
        raise InputError(err.message, data.get("path"), data.get("latents_key")) from None
    return fig.axes[:n_components]


#: formats matplotlib can write that ``plot_file`` does not offer: pgf needs a LaTeX installation for the
#: figure's text; raw / rgba are headerless pixel dumps, not image files
_NOT_OFFERED = frozenset({"pgf", "raw", "rgba"})


def figure_formats() -> tuple[str, ...]:
    """File suffixes (lower case, no dot) that :func:`plot_file` writes: matplotlib's formats less pgf, raw, rgba.

    Examples
    --------
    >>> {"png", "pdf", "svg"} <= set(figure_formats())
    True
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    return tuple(sorted(set(FigureCanvasAgg.get_supported_filetypes()) - _NOT_OFFERED))


#: figure formats whose files record a creation date: the clock's, or ``SOURCE_DATE_EPOCH``'s when it is set
DATED_FORMATS = frozenset({"pdf", "svg", "svgz", "ps", "eps"})


def source_date_epoch(fmt: str) -> int | None:
    """The creation date a figure of format ``fmt`` records, from ``SOURCE_DATE_EPOCH`` (the reproducible-builds
    variable, https://reproducible-builds.org/specs/source-date-epoch/, which matplotlib reads for PDF, SVG and
    PostScript); None when it is not set (or set empty, as matplotlib reads it) or the format records no date (the
    clock's date is used).

    Raises
    ------
    InputError
        ``SOURCE_DATE_EPOCH`` set, for a dated format, to anything but whole seconds since 1970 in 0 .. 2**32 - 1
        (the range of a gzip header's time, which ``.svgz`` records); matplotlib raised a ValueError traceback for
        one that is no integer.

    Examples
    --------
    >>> import os
    >>> os.environ["SOURCE_DATE_EPOCH"] = "1700000000"
    >>> source_date_epoch("pdf"), source_date_epoch("png")
    (1700000000, None)
    >>> del os.environ["SOURCE_DATE_EPOCH"]
    """
    import os

    raw = os.environ.get("SOURCE_DATE_EPOCH")
    if not raw or fmt not in DATED_FORMATS:  # empty: not set, as matplotlib reads it
        return None
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value < 2**32:
        raise InputError(f"must be whole seconds since 1970-01-01 UTC (0 .. {2**32 - 1}) when set: a .{fmt} figure "
                         f"records it as its creation date; got {raw!r} (unset it to record the clock's date)",
                         field="SOURCE_DATE_EPOCH")
    return value


def figure_format(out) -> str:
    """The format of a figure file from its suffix (case-insensitive), for ``savefig(format=...)``.

    Raises
    ------
    InputError
        Naming ``out`` (``--out`` in ``neurodyn plot``): no suffix, or one that is not in :func:`figure_formats`.

    Examples
    --------
    >>> figure_format("figs/pred.PDF")
    'pdf'
    >>> figure_format("pred.h5")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    neurodyn.errors.InputError: pred.h5: out: unsupported figure format '.h5' (suffixes: ...)
    """
    out = Path(out)
    formats = figure_formats()
    suffix = out.suffix.lower().lstrip(".")
    if suffix not in formats:
        what = f"unsupported figure format {out.suffix!r}" if suffix else "no suffix to tell the figure format"
        raise InputError(f"{what} (suffixes: {', '.join('.' + f for f in formats)})", out, named("out", "--out"))
    return suffix


def plot_file(path, out=None, *, group: str | None = None, trial: int | None = None, dpi: int = 90,
              overwrite: bool = False) -> tuple[Path, str, str | None]:
    """Read a prediction file, draw its summary figure and write it (atomically) in the format of ``out``'s suffix.

    Parameters
    ----------
    path : str or Path
        Prediction file (see the module docstring for the layouts).
    out : str or Path, optional
        Figure to write (default: ``path`` with the suffix ``.png``). Its suffix (case-insensitive)
        chooses the format: ``.png``, ``.pdf``, ``.svg``, ... (:func:`figure_formats`); any other
        suffix, or none, is refused before the file is read.
    group : str, optional
        NLB group to draw; required when the file holds several (see :func:`read_prediction`).
    trial : int, optional
        Row shown on its own, a row index, not an NLB trial id or sequence number (default 0; refused for a
        file of none, see :func:`draw_prediction`).
    dpi : int
        Dots per inch of raster output (PNG, JPEG, ...; in PDF / SVG only the embedded images).
    overwrite : bool
        Replace an existing ``out`` (never ``path``); default False, an existing ``out`` is refused, as
        ``neurodyn plot`` without ``--overwrite`` (the default was True).
        The figure is written under :func:`neurodyn.io.output_file`.

    Returns
    -------
    (out, layout, group)
        ``group``: the NLB group drawn, None for the other layouts.

    Raises
    ------
    InputError
        One line naming the file and the argument as a Python caller writes it (``out: exists; pass
        overwrite=True to replace it``, ``group``, ``trial``, ``dpi``); ``neurodyn plot`` names its options
        (``--out``, ``--overwrite``, ...) instead (:func:`neurodyn.errors.command_line_names`).

    Examples
    --------
    >>> plot_file("pred.h5", "pred.pdf")  # doctest: +SKIP
    (PosixPath('pred.pdf'), 'nlb', 'mc_maze_small_20')
    """
    from neurodyn.io import check_output, output_file
    from neurodyn.viz._common import pyplot

    path = Path(path)
    out = path.with_suffix(".png") if out is None else Path(out)
    names = {"field": named("out", "--out"), "overwrite_name": named("overwrite=True", "--overwrite")}
    check_output(out, inputs=[path], overwrite=overwrite, **names)  # before the slow reading and drawing
    fmt = figure_format(out)  # the temporary file's name ends in .part: the format is passed explicitly
    if dpi < 10 or dpi > 600:
        raise InputError(f"must be between 10 and 600, got {dpi}", field=named("dpi", "--dpi"))
    epoch = source_date_epoch(fmt)  # before the slow reading and drawing too
    data = read_prediction(path, group=group)
    fig = draw_prediction(data, trial=trial)
    import matplotlib

    try:
        # the same file, the same figure bytes: SVG ids hashed from a fixed salt, not a fresh uuid4 per file, and
        # an open file, so that PostScript's %%Title and the gzip header of .svgz do not name the random
        # temporary file; PDF / SVG / PS / .svgz creation dates stay the clock's, or SOURCE_DATE_EPOCH's when set
        with output_file(out, inputs=[path], overwrite=overwrite, **names) as tmp, \
                matplotlib.rc_context({"svg.hashsalt": "neurodyn"}), open(tmp, "wb") as handle:
            if fmt == "svgz":
                import gzip
                import io

                svg = io.BytesIO()
                fig.savefig(svg, format="svg", dpi=dpi)
                with gzip.GzipFile(out.with_suffix(".svg").name, "wb", fileobj=handle, mtime=epoch) as packed:
                    packed.write(svg.getvalue())
            else:
                fig.savefig(handle, format=fmt, dpi=dpi)
    finally:
        pyplot().close(fig)
    return out, data["layout"], data["group"]
