"""``neurodyn info FILE``: a short summary of an NWB file (or folder), a prepared file, an LFADS-format
HDF5 file or any other HDF5 file, as rich tables.

``FILE`` may be a URL: ``dandi://<dandiset>[@<version>]/<path>`` or ``https://...`` is read over HTTP
range requests without downloading it (:mod:`neurodyn.data.stream`); for an NWB file only the metadata,
units and trials travel.

- NWB: files, session length, units (held-in / held-out), spikes, trials per split, trial columns and
  time series.
- ``neurodyn prepare`` output: attributes, then every array with shape, dtype, NaN fraction and mean.
- LFADS-format HDF5 (``train_data`` / ``valid_data`` ... keys) and anything else: the tree of datasets.

Every summary ends with a ``what:`` line (the kind of file; for data and predictions the dataset, phase and
bin width) and ``next:`` lines, the commands that take the file (:func:`print_what_next`).

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


#: what ``info`` reads, in the message for a file it cannot read
READS = "info reads NWB and other HDF5 files, checkpoints (.ckpt), fit configs (.yaml) and run folders"


def shell_word(path) -> str:
    """``path`` as one shell word (a path with spaces or quotes is quoted) for a command line of ``next:``."""
    import shlex

    return shlex.quote(str(path))


#: the NLB datasets with a CPU config of LangevinFlow (configs/langevinflow/<dataset>_cpu.yaml)
CPU_CONFIGS = ("mc_maze", "mc_maze_small", "mc_maze_medium", "mc_maze_large", "mc_rtt", "area2_bump", "dmfc_rsg")


def print_what_next(console, what: str, steps: list[str]) -> None:
    """The last lines of every summary: ``what: <what the file is>`` and one ``next: <command line>`` per
    command that takes it (``next: none`` when no neurodyn command reads it). Placeholders in capitals
    (PRED.h5, RUN, DATASET) stand for files or names the user chooses."""
    console.print(f"what: {what}")
    for step in steps or ["none (no neurodyn command reads it)"]:
        console.print(f"next: {step}")


def _h5(path: Path | str):
    """Context manager: the HDF5 file at a local path (:func:`neurodyn.io.read_h5`) or a URL (streamed)."""
    from neurodyn.data.stream import is_url, resolve_url

    if is_url(path):
        files = resolve_url(path)
        if len(files) != 1:
            raise InputError(f"stands for {len(files)} files, expected one", path)
        return files[0].h5()
    return read_h5(path, READS)


#: what a run folder of ``neurodyn fit`` holds, for a folder that is none, where the caller says no more (the rule is
#: ``neurodyn.training.checkpoint_index.is_run_folder``'s, which this floor may not import: ``neurodyn info`` passes
#: its ``why_no_run``)
RUN_FOLDER_HOLDS = ("config.yaml, the run's checkpoint folder (checkpoints/, or the checkpoint.dirpath that "
                    "config.yaml records) and, with a checkpoint.dirpath, run.json")


#: the trials columns an NWB file names one way and nlb_tools (hence a session) another: file -> session
NLB_TRIAL_NAMES = {"id": "trial_id", "stop_time": "end_time"}


def file_kind(path: str | os.PathLike, why_no_run=None) -> str:
    """``"nwb"``, ``"prepared"``, ``"lfads"`` or ``"hdf5"``; InputError for anything unreadable. A folder without
    .nwb files is refused, saying what it lacks to be a run folder: ``why_no_run(path)`` where given
    (``neurodyn.training.checkpoint_index.why_no_run``), else :data:`RUN_FOLDER_HOLDS` (it said '(config.yaml and
    checkpoints/)' of every folder, also of a run with its checkpoints elsewhere)."""
    from neurodyn.data.prepared import is_prepared
    from neurodyn.data.stream import is_url, resolve_url

    if is_url(path):
        if len(resolve_url(path)) > 1:  # a DANDI folder: its NWB files
            return "nwb"
    else:
        path = Path(path)
        if path.is_dir():
            if not sorted(path.glob("*.nwb")):  # info reads two kinds of folder: said only "no .nwb files"
                why = why_no_run(path) if why_no_run is not None else RUN_FOLDER_HOLDS
                raise InputError(f"folder holds no .nwb files and is no run folder of neurodyn fit ({why}) or of "
                                 "neurodyn tune (summary.json, best.yaml and best.ckpt)", path)
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
    from neurodyn.data.prepare import identify_dataset

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
    # the file's own names: the session reads them as nlb_tools names them (id -> trial_id, stop_time -> end_time)
    renamed = {key: name for name, key in NLB_TRIAL_NAMES.items()}
    console.print("trial columns: " + ", ".join(renamed.get(key, key) for key in s.trials)
                  + " (nlb_tools' names: " + ", ".join(f"{name} -> {key}" for name, key in NLB_TRIAL_NAMES.items()
                                                       if key in s.trials) + ")")

    if not s.behavior:  # an NLB test file holds none (an empty table said only its header)
        console.print("time series: none")
    else:
        _behavior_table(s, console)
    splits = set(s.split().astype(str)) if "split" in s.trials else set()
    train = bool(splits & {"train", "val"})
    what = f"raw NLB data (NWB {what}): {s.n_trials} trials, {s.n_heldin} held-in + {s.n_heldout} held-out units; "
    # the dataset, where the files are evidently an NLB dataset's (as prepare tells a file of another dataset)
    found = identify_dataset([Path(f.path) for f in s.files] if not isinstance(path, str) else
                             [f.path for f in s.files])  # streamed: by name, size and DANDI's published digest
    if found is not None:
        dataset = found[0].name
        what += found[1]
    else:
        dataset = "DATASET"
        what += "DATASET: its NLB dataset (neurodyn prepare --help lists them)"
    steps = []
    prepare = f"neurodyn prepare --dataset {dataset} --nwb {shell_word(path)} --bin-ms 20"
    if train:
        steps.append(f"{prepare} --phase val   (or --bin-ms 5)")
    if "test" in splits:
        steps.append(f"{prepare} --phase test  (or --bin-ms 5)")
        if not train:
            what += ("; test trials only: no training trials (prepare it together with its train file, "
                     "their folder, to fit a model)")
    print_what_next(console, what, steps)


def _behavior_table(s, console) -> None:
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
        for kind in ("heldin", "heldout"):  # the NWB unit of each column (files of an earlier neurodyn: none)
            ids = f.get(f"unit_ids/{kind}")
            if ids is not None and ids.ndim == 1:
                head.add_row(f"{kind} unit ids", cut_text(", ".join(map(str, ids[()].tolist())) or "(none)"))
        arrays = _arrays_table("Arrays (counts are spikes per bin)", _datasets(f))
        attrs, groups = _root_attrs(f), set(f.keys())
    console.print(head)
    console.print(arrays)
    _prepared_next(path, console, attrs, groups)


def _root_attrs(f) -> dict:
    """The root attributes of an open file, decoded (read once, where the summary reads the file)."""
    from neurodyn.data.prepared import _attr

    return {key: _attr(value) for key, value in f.attrs.items()}


def _prepared_next(path: Path | str, console, attrs: dict, groups: set) -> None:
    """``what:`` / ``next:`` of a prepared file, from its root attributes and groups."""
    dataset, phase, bin_ms = attrs.get("dataset"), attrs.get("phase"), attrs.get("bin_ms")
    what = (f"prepared NLB tensors (neurodyn prepare): {dataset}, {phase} phase, {bin_ms} ms bins; "
            f"{attrs.get('n_train_trials')} train + {attrs.get('n_eval_trials')} eval trials, "
            f"{attrs.get('n_heldin')} held-in + {attrs.get('n_heldout')} held-out units")
    steps = []
    q = shell_word(path)
    if "train_input" in groups:
        config = f"configs/langevinflow/{dataset}_cpu.yaml" if dataset in CPU_CONFIGS else "CONFIG.yaml"
        steps += [f"neurodyn fit --config {config} --data.init_args.path {q}",
                  f"neurodyn baseline --prepared {q} --out PRED.h5",
                  f"neurodyn predict --run RUN --ckpt_path last --data.init_args.path {q} --prediction.path PRED.h5"]
    else:
        what += ("; no training trials (prepared from a test file alone): fit, baseline and predict refuse it; "
                 "prepare the folder of the test and train files")
    if "eval_target" in groups:
        steps.append(f"neurodyn evaluate --target {q} --pred PRED.h5")
    elif phase == "test":
        what += "; no eval_target (test phase: the held-out data are scored on EvalAI)"
    steps.append(f"neurodyn submit --pred PRED.h5 --prepared {q} --out SUBMISSION.h5")
    print_what_next(console, what, steps)


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
    LFADS file or a switching GLM, and for an HMM-GLM model file); returns its kind (``"prediction"``,
    ``"hmmglm_model"`` for those)."""
    with _h5(path) as f:  # read in the block, print after it (see _prepared)
        items = _datasets(f)
        root = _root_attrs(f)
        module, model = root.get("module"), root.get("model")
        title = None
        if module and "checkpoint" in f.attrs:  # `neurodyn predict` of a Lorenz / LFADS file or a switching GLM
            kind, title, what = "prediction", "Prediction file", module
        elif is_hmmglm_model_file(f):
            kind, title, what = "hmmglm_model", "HMM-GLM model file", model or "switching GLM"
        if title is not None:  # arrays with their ranges
            table = titled_table(f"{title} {path} ({what}, {len(items)} arrays; {_units(items)})",
                                 "array", "shape", "dtype", "min", "mean", "max")
            for name, ds in items[:max_rows]:
                table.add_row(name, str(tuple(ds.shape)), str(ds.dtype), *_stats(ds))
            attrs = _attributes_table(f, f"{title} {path}: what it records")
        else:
            title = "LFADS-format HDF5" if kind == "lfads" else "HDF5"
            table = titled_table(f"{title} {path} ({len(items)} datasets)", "dataset", "shape", "dtype")
            for name, ds in items[:max_rows]:
                table.add_row(name, str(tuple(ds.shape)), str(ds.dtype))
            attrs = _attributes_table(f, f"{path}: attributes")
        if len(items) > max_rows:
            table.add_row(f"… {len(items) - max_rows} more", *[""] * (len(table.columns) - 1))
        spikes = f["spikes"].shape if "spikes" in f else None
        names = {name for name, _ in items}
    if attrs is not None:
        console.print(attrs)
    console.print(table)
    print_what_next(console, *_generic_what_next(path, kind, root, spikes, names))
    return kind


def is_hmmglm_model_file(f) -> bool:
    """Whether an open HDF5 file (neither a prediction of ``neurodyn predict`` nor a prepared file) is a fitted
    switching GLM written by :func:`neurodyn.models.hmmglm.evaluate.export_model_h5`: its unprefixed
    ``coupling`` and ``transitions``, the arrays by which ``neurodyn plot`` reads one (``hmmglm_model``)."""
    return "coupling" in f and "transitions" in f


def _generic_what_next(path: Path | str, kind: str, attrs: dict, spikes: tuple | None,
                       names: set[str] = frozenset()) -> tuple[str, list[str]]:
    """``what:`` / ``next:`` of a file that :func:`_generic` shows: a prediction of a Lorenz / LFADS-format file
    or of a switching GLM, an HMM-GLM model file, an LFADS-format data file, a switching-GLM data file, or an
    HDF5 file of no known kind (``attrs``: its root attributes; ``spikes``: the shape of its ``spikes`` dataset,
    if any; ``names``: its datasets)."""
    from neurodyn.data.synthetic import switching_glm as sg

    q = shell_word(path)
    if kind == "prediction":
        units = "HMM-GLM state posteriors, Viterbi paths and couplings" if attrs.get("module") == "HMMGLMModule" \
            else "rates in spikes per bin, latents"
        return (f"predictions of neurodyn predict ({attrs.get('module')}) on {attrs.get('datamodule')} data: {units}; "
                "not NLB rates: evaluate, submit and ensemble take none", [f"neurodyn plot {q}"])
    if kind == "hmmglm_model":
        model = attrs.get("model") or "switching GLM"
        states = f", {attrs['n_states']} states" if attrs.get("n_states") is not None else ""
        posteriors = "; with the state posteriors of the spikes it was exported with" if "posteriors" in names else ""
        return (f"an HMM-GLM model file (export_model_h5 of neurodyn.models.hmmglm; {model}{states}): couplings, "
                f"transitions and biases of a fitted switching GLM{posteriors}; not NLB rates: evaluate, submit "
                "and ensemble take none", [f"neurodyn plot {q}"])
    if kind == "lfads":
        made = " from neurodyn simulate lorenz" if attrs.get("generator") == "neurodyn.data.synthetic.lorenz" else ""
        return (f"LFADS-format data{made}: spike counts to fit (train_data / valid_data)",
                [f"neurodyn fit --config configs/langevinflow/lorenz.yaml --data LFADSDataModule --data.path {q}"])
    if attrs.get("format") == sg.FORMAT and spikes is not None:
        n_sequences = spikes[0]
        what = ("simulated switching-GLM data (neurodyn simulate switching-glm): spikes, true states and couplings "
                f"of {n_sequences} sequence{'' if n_sequences == 1 else 's'}")
        if n_sequences < sg.MIN_FIT_SEQUENCES:  # as SwitchingGLMDataModule refuses it
            least = sg.MIN_FIT_SEQUENCES
            return (f"{what}; {sg.ONE_SEQUENCE_UNSPLITTABLE}, so fit refuses it (simulate {least} or more: "
                    f"{sg.MORE_SEQUENCES_COMMAND})",
                    [f"none (fit needs {least} or more sequences: {sg.FIT_SEQUENCE_ROLES})"])
        # the default n_train (the config's too) fits a file of more sequences; a smaller file gets ~3/5 of its own
        fits = n_sequences > sg.DEFAULT_N_TRAIN
        n_train = "" if fits else f" --data.init_args.n_train {max(1, n_sequences * 3 // 5)}"
        nulls = " ".join(f"--data.init_args.{k} null" for k in ("n_states", "n_neurons", "n_sequences", "n_bins"))
        return (what, [f"neurodyn fit --config configs/hmmglm/synthetic_hmmglm.yaml --data.init_args.path {q} "
                       f"{nulls}{n_train}"])
    return ("an HDF5 file of no kind neurodyn reads (not NWB, prepared, prediction, LFADS-format or switching-GLM "
            "data)", [])


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
        root = _root_attrs(f)
    for table in tables:
        console.print(table)
    if others:
        console.print("other groups: " + ", ".join(others))
    _prediction_next(path, console, groups, root)


def _prediction_next(path: Path | str, console, groups: list[str], attrs: dict) -> None:
    """``what:`` / ``next:`` of a file of NLB rates (predict, baseline, ensemble, submit), from its root
    attributes."""
    from neurodyn.data.prepared import parse_group_name

    if attrs.get("ensemble_members"):
        source = "neurodyn ensemble"
    elif attrs.get("baseline"):
        source = f"neurodyn baseline ({attrs['baseline']} recipe)"
    elif attrs.get("module"):
        source = f"neurodyn predict ({attrs['module']})"
    else:
        source = "neurodyn submit, or written elsewhere"
    widths = ", ".join(f"{name}: {parse_group_name(name)[1]} ms" for name in groups)
    phase = attrs.get("phase")
    what = (f"NLB rate predictions (spikes per bin, submission layout) of {source}; {widths}; "
            f"{phase or 'unrecorded'} phase")
    q = shell_word(path)
    data = attrs.get("data")
    prepared = shell_word(data) if data else "PREPARED.h5"
    steps = []
    if phase == "test":
        what += " (evaluate: no local target, EvalAI scores test predictions)"
    else:
        steps.append(f"neurodyn evaluate --target {prepared if phase == 'val' else 'PREPARED_VAL.h5'} --pred {q}")
    steps += [f"neurodyn submit --pred {q} --prepared {prepared} --out SUBMISSION.h5",
              f"neurodyn ensemble --pred {q} OTHER.h5 --out ENSEMBLE.h5", f"neurodyn plot {q}"]
    print_what_next(console, what, steps)


def new_console():
    """A rich console for ``info``'s tables: the terminal's width, or unwrapped in a file or a pipe. Markup is
    off: what a file records is shown as written (``[exc]`` in a coupling definition, ``[...]`` in a path, were
    read as style tags and dropped)."""
    from rich.console import Console

    console = Console(markup=False)
    return console if console.is_terminal else Console(width=UNWRAPPED_WIDTH, markup=False)  # never wrap mid-word


def info(path: str | os.PathLike, console=None, max_rows: int = 200, why_no_run=None) -> str:
    """Print the summary of ``path``; returns its kind (see :func:`file_kind`, plus ``"prediction"`` for a
    prediction / submission file: its groups' arrays with min / mean / max). ``why_no_run``: see :func:`file_kind`.

    A URL is resolved once for the whole summary (:func:`neurodyn.data.stream.resolved_once`): the summary reads
    one state of the remote file, its lookups, probe and blocks are not repeated."""
    from neurodyn.data.stream import check_url_typo, is_url, resolved_once

    check_url_typo(path)  # "htps://..." read as a path was named "htps:/..."
    if console is None:
        console = new_console()
    with resolved_once():
        return _info(path if is_url(path) else Path(path), console, max_rows, why_no_run)


def _info(path: Path | str, console, max_rows: int, why_no_run=None) -> str:
    kind = file_kind(path, why_no_run)
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
