"""``neurodyn info FILE|URL``: a summary of an NWB file or folder, a prepared file, any HDF5 file, a
checkpoint, a run folder of ``neurodyn fit`` or of ``neurodyn tune``.

What it reads and prints: :func:`neurodyn.data.info.info` for data and prediction files; here, for what
``neurodyn fit`` writes: a checkpoint (model family, epoch and step, neurodyn version, bin width, sizes,
the data files it was trained on with their size and SHA-256, its model and run settings) and a run
folder (its config's model and data, ``checkpoints/checkpoints.json``: monitor, best and last, and its
checkpoint files), a run folder of ``neurodyn tune`` (``summary.json``: the search, the best trial with its
metric and the split it was taken on; ``trials.csv``; the files ``best.yaml`` / ``best.ckpt`` that a refit, predict
and validate take) and a YAML config of ``neurodyn fit`` (its model, data and trainer). Every summary ends
with what the file is and the commands that take it next (``what:`` / ``next:`` lines).
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from neurodyn.data.info import ATTR_WIDTH, cut_text, info, new_console, print_what_next, shell_word, titled_table
from neurodyn.data.stream import TIMEOUT_HELP, TRUST_SIZE_HELP, timeout_s, trust_size
from neurodyn.errors import ArgumentParser, InputError
from neurodyn.io.hdf5 import refuse_denied
from neurodyn.io.output import human_size
from neurodyn.training import select_split_words
from neurodyn.training.checkpoint_index import (
    INDEX_NAME,
    checkpoint_folder,
    claim_only,
    claimed_run_words,
    is_run_folder,
    missing_folder,
    never_measured,
    run_of_checkpoint,
    selects_best,
    unlinked_words,
    unreadable_index,
    unreadable_words,
    why_no_run,
)

__all__ = ["cli_main", "checkpoint_info", "run_folder_info", "tune_folder_info"]


def _text(value, cut: bool = True) -> str:
    """A value on one table row: JSON for containers, cut as :func:`~neurodyn.data.info.cut_text` cuts, or
    (``cut`` False: the data and the model settings, kept whole) wrapped at its width over several lines, so
    that one long value (the model settings: ~3000 characters) does not pad every row of the table to its
    length."""
    text = json.dumps(value, default=str) if isinstance(value, dict | list | tuple) else str(value)
    return cut_text(text) if cut else _wrapped(text)


def _wrapped(text: str) -> str:
    """``text`` over lines of at most :data:`~neurodyn.data.info.ATTR_WIDTH` characters, broken at spaces
    (after JSON's commas and colons; a longer word, e.g. a path, stays whole)."""
    import textwrap

    return "\n".join(textwrap.wrap(text, width=ATTR_WIDTH, break_long_words=False, break_on_hyphens=False,
                                    replace_whitespace=False, drop_whitespace=True)) or text


def _is_run_folder(path: Path) -> bool:
    """A run folder of ``neurodyn fit``: its config.yaml and its checkpoints folder (``checkpoints/``, or the
    ``checkpoint.dirpath`` that config.yaml records; one recorded that no longer exists is still a run folder,
    whose info says so: it read 'is no run folder'): :func:`~neurodyn.training.checkpoint_index.is_run_folder`."""
    return is_run_folder(path)


#: the files of a run folder of ``neurodyn tune`` (:mod:`neurodyn.training.tune`), in the order info lists them
TUNE_FILES = ("summary.json", "best.yaml", "best.ckpt", "trials.csv", "trials.txt", "perturbations.csv", "ray")


def _is_tune_folder(path: Path) -> bool:
    """A run folder of ``neurodyn tune``: its ``summary.json``, or its ``best.yaml`` and ``best.ckpt``."""
    return path.is_dir() and ((path / "summary.json").is_file()
                              or ((path / "best.yaml").is_file() and (path / "best.ckpt").is_file()))


def tune_folder_info(path: str | os.PathLike, console=None) -> None:
    """Print a run folder of ``neurodyn tune``: the search (``summary.json``: command, configs, scheduler, trials,
    epochs, seed), the metric and the split it was taken on, the best trial with its value, epoch and
    hyperparameters, the trials of ``trials.csv`` and the folder's files; then what takes it next (``best.yaml``
    and ``best.ckpt``). A missing or unreadable ``summary.json`` is said in its row, not refused: the rest is
    shown."""
    import csv

    console = console or new_console()
    path = Path(path)
    table = titled_table(f"Tune run folder {path}", "field", "value")
    summary: dict = {}
    try:
        loaded = json.loads((path / "summary.json").read_text(encoding="utf-8"))
        summary = loaded if isinstance(loaded, dict) else {}
        if not summary:
            table.add_row("summary.json", "not a JSON object")
    except FileNotFoundError:
        table.add_row("summary.json", "missing (the search's figures are in best.yaml's header and trials.csv)")
    except (OSError, UnicodeDecodeError, ValueError) as err:
        table.add_row("summary.json", f"unreadable ({type(err).__name__})")
    metric = summary.get("metric", "valid/loss")
    split = summary.get("select_split")
    where = select_split_words(split)  # as neurodyn tune's closing line names the trials its figures are of
    scheduler, samples = summary.get("scheduler"), summary.get("samples")
    best_trial, best_value, best_epoch = summary.get("best_trial"), summary.get("best_value"), summary.get("best_epoch")
    value = f"{best_value:.6g}" if isinstance(best_value, int | float) else str(best_value)
    for key, row in [
        ("command", summary.get("command")),
        ("configs", ", ".join(map(str, summary["configs"])) if isinstance(summary.get("configs"), list) else None),
        ("search", summary.get("search")),
        ("scheduler", f"{scheduler}: {samples} trials of {summary.get('epochs')} epochs, seed {summary.get('seed')}"
         if scheduler else None),
        ("metric", f"{metric} ({summary.get('mode', 'min')}): the masked Poisson NLL of {where}" if where else None),
        ("best trial", f"{best_trial}: {metric} {value} at epoch {best_epoch} (best.ckpt: the best kept checkpoint)"
         if best_trial else None),
        ("best hyperparameters", summary.get("best_hyperparameters")),
        ("perturbations", summary.get("perturbations") if scheduler == "pbt" else None),
        ("trials failed", summary.get("trials_failed")),
        ("seconds", summary.get("seconds")),
    ]:
        if row is not None:
            table.add_row(key, row if isinstance(row, str) else _text(row))
    trials = path / "trials.csv"
    if trials.is_file():
        try:
            with trials.open(newline="", encoding="utf-8") as handle:
                statuses = [row.get("status") for row in csv.DictReader(handle)]
            table.add_row("trials.csv", f"{len(statuses)} trials ({statuses.count('OK')} OK, "
                                        f"{statuses.count('ERROR')} failed)")
        except (OSError, UnicodeDecodeError, csv.Error) as err:
            table.add_row("trials.csv", f"unreadable ({type(err).__name__})")
    files = titled_table("Files", "file", "size")
    for name in TUNE_FILES:
        item = path / name
        if item.is_dir():
            files.add_row(f"{name}/", "folder (Ray Tune's experiment: per-trial progress.csv, result.json)")
        elif item.is_file():
            files.add_row(name, human_size(item.stat().st_size))
    console.print(table)
    console.print(files)
    what = f"run folder of neurodyn tune ({scheduler or 'scheduler not recorded'}"
    what += f", {samples} trials)" if samples is not None else ")"
    if best_trial:
        what += f"; best {best_trial}: {metric} {value} at epoch {best_epoch}" + (f" on {where}" if where else "")
    steps = []
    config, ckpt = shell_word(path / "best.yaml"), shell_word(path / "best.ckpt")
    if (path / "best.yaml").is_file():
        steps.append(f"neurodyn fit --config {config}   (retrain with the best hyperparameters)")
        if (path / "best.ckpt").is_file():
            steps += [f"neurodyn predict --config {config} --ckpt_path {ckpt} --prediction.path PRED.h5",
                      f"neurodyn validate --config {config} --ckpt_path {ckpt}   (its {metric} on the same split)"]
    print_what_next(console, what, steps)


def _units_row(header: dict) -> str | None:
    """The units a checkpoint was trained on, as its header records them (``checkpoints.data_units``: the dataset
    and the NWB files its prepared file was made from; validate / test / predict refuse another session's), or None
    (not recorded: data other than a prepared NLB file, an older neurodyn)."""
    units = header.get("units")
    if not isinstance(units, dict):
        return None
    sources = [f"{row[1]} (SHA-256 {str(row[0])[:16]}…)" if row[0] else f"{row[1]} (SHA-256 unknown)"
               for row in units.get("sources") or [] if isinstance(row, (list, tuple)) and len(row) == 2]
    row = f"{units.get('dataset')}: the units of " + (", ".join(sources) or "(no source file recorded)")
    for kind, what in (("heldin", "held-in"), ("heldout", "held-out")):  # the NWB unit id of each column
        ids = units.get(f"{kind}_ids")
        if isinstance(ids, list):
            row += f"; {what} unit ids ({len(ids)}): " + (cut_text(", ".join(map(str, ids))) or "(none)")
    return row


def _setting(model: dict, key: str):
    """The value of the dotted model setting ``key`` (``config.m_step_mode``) in a checkpoint's hyper-parameters."""
    for part in key.split("."):
        model = model.get(part) if isinstance(model, dict) else None
    return model


def checkpoint_info(path: str | os.PathLike, console=None) -> None:
    """Print what a checkpoint of ``neurodyn fit`` holds besides its weights (read with ``weights_only=True``;
    an unreadable file is a one-line InputError)."""
    from neurodyn.training.checkpoints import DATA_FILES_KEY, RUN_SETTINGS_KEY, read_checkpoint

    console = console or new_console()
    ckpt = read_checkpoint(path, field="checkpoint")
    header = ckpt.get("neurodyn") or {}
    table = titled_table(f"Checkpoint {path}", "field", "value")
    rows = [("model family", header.get("family", "(not recorded: not a neurodyn checkpoint)")),
            ("epoch", f"{ckpt.get('epoch')} (counted from 0: {int(ckpt.get('epoch', -1)) + 1} finished)"),
            ("global_step", ckpt.get("global_step")),
            ("neurodyn version", header.get("version")), ("checkpoint format", header.get("format")),
            ("bin_ms", header.get("bin_ms")), ("sizes", header.get("sizes")), ("units", _units_row(header))]
    settings = ckpt.get(RUN_SETTINGS_KEY) or {}
    data = settings.get("data") or {}
    if data:
        rows.append(("data", _wrapped(data.get("class_path", "").rsplit(".", 1)[-1] + " "
                                      + json.dumps(data.get("init_args") or {}, default=str))))
    for option, record in (settings.get(DATA_FILES_KEY) or ckpt.get(DATA_FILES_KEY) or {}).items():
        rows.append((f"data file ({option})", f"{record.get('path')} ({record.get('size')} bytes, SHA-256 "
                                              f"{str(record.get('sha256'))[:16]}…)"))
    trainer = settings.get("trainer") or {}
    for key in ("max_epochs", "check_val_every_n_epoch", "accelerator", "precision"):
        if trainer.get(key) is not None:
            rows.append((f"trainer.{key}", trainer[key]))
    for key in ("seed_everything", "checkpoint"):
        if settings.get(key) is not None:
            rows.append((key, settings[key]))
    model = {k: v for k, v in (ckpt.get("hyper_parameters") or {}).items() if not k.startswith("_")}
    if model:
        rows.append(("model settings", model))
    for key, value in (header.get("resolved") or {}).items():  # what an "auto" setting ran as (one-hot M-step)
        rows.append((f"{key} as run", f"{value} (the setting: {_setting(model, key)})"))
    unlinked = unlinked_words(path)  # its folder's index names a run that is not there (moved, copied over)
    if unlinked is not None:
        rows.append(("run", unlinked))
    for key, value in rows:  # the data and the model settings whole (wrapped): what a reader of a checkpoint is after
        if value is not None:
            table.add_row(key, value if isinstance(value, str) else _text(value, cut=key != "model settings"))
    console.print(table)
    path = Path(path)
    family = header.get("family") or "not a neurodyn checkpoint: no model family recorded"
    what = f"checkpoint of neurodyn fit ({family}; epochs finished: {int(ckpt.get('epoch', -1)) + 1})"
    # its run folder: DIR of DIR/checkpoints/X.ckpt, or the run that a --checkpoint.dirpath folder's index links it to
    run = run_of_checkpoint(path)
    config = shell_word(run / "config.yaml") if run is not None and _is_run_folder(run) else "CONFIG.yaml"
    if path.name == "best.ckpt" and _is_tune_folder(path.parent):  # neurodyn tune's: best.yaml beside it
        config = shell_word(path.parent / "best.yaml")
    print_what_next(console, what, [
        f"neurodyn predict --config {config} --ckpt_path {shell_word(path)} --prediction.path PRED.h5",
        f"neurodyn validate --config {config} --ckpt_path {shell_word(path)}"])


def _max_epochs(config) -> int | None:
    """A fit config's ``trainer.max_epochs`` (None when it records none, or not as a number of epochs)."""
    trainer = config.get("trainer") if isinstance(config, dict) else None
    value = trainer.get("max_epochs") if isinstance(trainer, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _latest_fit_config(path: Path, config: dict) -> dict:
    """The config of the run's latest fit: its last ``config.resume-<n>.yaml`` (a resume's, with the
    ``trainer.max_epochs`` it trained to), else ``config.yaml`` (``config``)."""
    import yaml

    resumes = [(int(p.name[len("config.resume-"):-len(".yaml")]), p) for p in path.glob("config.resume-*.yaml")
               if p.name[len("config.resume-"):-len(".yaml")].isdigit()]
    for _, latest in sorted(resumes, reverse=True):
        try:
            loaded = yaml.safe_load(latest.read_text())
        except (OSError, ValueError, yaml.YAMLError):
            continue
        if isinstance(loaded, dict):
            return loaded
    return config


def _train_on_lines(path: Path, config: dict, last_epoch, last_step) -> list[str]:
    """The ``next:`` lines that train the run on. A run stopped before the ``max_epochs`` of its latest fit (an
    interrupt; not ``max_steps``, which ``last_step`` reached) resumes to them: ``fit --run DIR`` (a bare resume
    takes config.yaml's), with ``--trainer.max_epochs`` where a resume asked for others; where the fit had a
    ``max_time``, which may be what stopped it (nothing tells it from an interrupt), a line with a longer one too.
    A finished run is extended with ``--trainer.max_epochs N``; with a cosine decay, whose span stays the
    ``max_epochs`` the run started with, the extra epochs train at ``min_lr`` (the line says so), and a new run of N
    epochs, whose decay spans them all, is offered beside it."""
    q = shell_word(path)
    fit = _latest_fit_config(path, config)
    first, latest = _max_epochs(config), _max_epochs(fit)
    max_steps = (fit.get("trainer") or {}).get("max_steps") if isinstance(fit.get("trainer"), dict) else None
    stepped_out = (isinstance(max_steps, int) and max_steps > 0 and isinstance(last_step, int)
                   and last_step >= max_steps)  # stopped by trainer.max_steps, not before its end
    if isinstance(last_epoch, int) and latest is not None and last_epoch + 1 < latest and not stepped_out:
        option = "" if latest == first else f" --trainer.max_epochs {latest}"
        max_time = (fit.get("trainer") or {}).get("max_time") if isinstance(fit.get("trainer"), dict) else None
        if max_time:  # used up, or interrupted before it was: a bare resume trains nothing in the first case
            return [f"neurodyn fit --run {q}{option}   (resume from last.ckpt, on to the run's {latest} epochs, where "
                    f"it was interrupted)",
                    f"neurodyn fit --run {q}{option} --trainer.max_time DD:HH:MM:SS   (where its trainer.max_time "
                    f"{max_time}, counted over the whole run, stopped it: a longer one)"]
        return [f"neurodyn fit --run {q}{option}   (resume from last.ckpt, on to the run's {latest} epochs)"]
    model = config.get("model")
    args = (model.get("init_args") if isinstance(model, dict) else None) or {}
    if isinstance(args, dict) and args.get("lr_schedule") == "cosine" and first is not None:
        floor = args.get("min_lr")
        floor = f" {floor:g}" if isinstance(floor, (int, float)) and not isinstance(floor, bool) else ""
        return [f"neurodyn fit --run {q} --trainer.max_epochs N   (resume from last.ckpt, up to N epochs; the "
                f"cosine decay spans {first} epochs: the ones past it train at min_lr{floor})",
                f"neurodyn fit --config {shell_word(path / 'config.yaml')} --checkpoint.dirpath null "
                "--trainer.max_epochs N --run-name NEW   (a new run whose cosine decays over all N epochs)"]
    return [f"neurodyn fit --run {q} --trainer.max_epochs N   (resume from last.ckpt, up to N epochs)"]


def _predictions_words(pred: Path, index: dict) -> str | None:
    """The row of a run's default prediction file (``predict --run DIR`` writes ``DIR/predictions.h5``), or None
    where there is none: its size and the checkpoint and epoch it was predicted from, and whether it is older than
    the run's checkpoint of that name now (a resume trained on since: predict again). ``info`` of a run said
    nothing of it."""
    import h5py

    if not pred.is_file():
        return None
    size = human_size(pred.stat().st_size)
    try:
        with h5py.File(pred, "r") as f:
            checkpoint, epoch = f.attrs.get("checkpoint"), f.attrs.get("checkpoint_epoch")
    except (OSError, ValueError):
        return f"{size}, unreadable as HDF5"
    if not isinstance(checkpoint, str) or epoch is None:
        return f"{size}, from weights no checkpoint names"
    name, epoch = Path(checkpoint).name, int(epoch)
    words = f"{size}, from {name} (epoch {epoch}, counted from 0)"
    now = index.get("last_epoch") if name == index.get("last") else None
    if isinstance(now, int) and not isinstance(now, bool) and now > epoch:
        words += f"; older than {name} now (epoch {now}): predict again for the weights trained since"
    return words


def run_folder_info(path: str | os.PathLike, console=None) -> None:
    """Print a run folder of ``neurodyn fit``: the model and data its ``config.yaml`` names, what
    ``checkpoints/checkpoints.json`` records (monitor, best, last epoch) and its checkpoint files."""
    import yaml

    console = console or new_console()
    path = Path(path)
    refuse_denied(path / "config.yaml")  # said "yaml: unreadable (PermissionError)"
    try:
        config = yaml.safe_load((path / "config.yaml").read_text()) or {}
    except (OSError, ValueError, yaml.YAMLError) as err:  # ValueError: bytes that are not UTF-8 text
        raise InputError(f"unreadable ({type(err).__name__})", path=path / "config.yaml", field="yaml") from None
    missing = missing_folder(path)
    if missing is not None:  # moved with its checkpoints elsewhere: said 'is no run folder'
        raise InputError(missing[0], path=missing[1], field="checkpoint.dirpath")
    table = titled_table(f"Run folder {path}", "field", "value")
    for section in ("model", "data"):
        part = config.get(section) or {}
        if isinstance(part, dict) and part.get("class_path"):
            args = part.get("init_args") or {}
            where = f" ({args['path']})" if isinstance(args, dict) and args.get("path") else ""
            table.add_row(section, str(part["class_path"]).rsplit(".", 1)[-1] + where)
    trainer = config.get("trainer") or {}
    if isinstance(trainer, dict) and trainer.get("max_epochs") is not None:
        table.add_row("trainer.max_epochs", str(trainer["max_epochs"]))
    resumes = sorted(p.name for p in path.glob("config.resume-*.yaml"))
    if resumes:
        table.add_row("resumed", f"{len(resumes)} time(s): {', '.join(resumes)}")
    folder = checkpoint_folder(path)  # checkpoints/, or the checkpoint.dirpath the run recorded
    if folder != path / "checkpoints":
        table.add_row("checkpoint folder", f"{folder} (checkpoint.dirpath)")
    index_path = folder / INDEX_NAME
    broken = unreadable_index(folder)
    try:
        index = json.loads(index_path.read_text()) if index_path.is_file() and broken is None else {}
    except (OSError, ValueError):
        index = {}
    if index and ("monitor" in index or "last" in index):  # not the claim of a fit that has saved nothing yet
        last = index.get("last_epoch")
        table.add_row("last epoch", f"{last} (counted from 0: {last + 1} finished), step {index.get('last_step')}"
                      if isinstance(last, int) else str(last))
        table.add_row("monitor", f"{index.get('monitor')} ({index.get('mode')})" if index.get("monitor") else
                      "none (last.ckpt is the result)")
        if index.get("best"):
            table.add_row("best", f"{index['best']} ({index.get('monitor')} {index.get('best_score')})")
        elif selects_best(index):  # a monitor never measured: in the words of training.runs.no_best_reason
            table.add_row("best", f"none yet: {never_measured(index)}; last.ckpt is the result")
    elif broken is not None:  # a claim cut short (empty): read as {}, it said the folder was claimed
        table.add_row(INDEX_NAME, unreadable_words(folder, broken))
    elif index_path.is_file() and claim_only(index):  # a fit's claim alone: it said 'none yet' beside a .ckpt
        table.add_row(INDEX_NAME, claimed_run_words(folder))
    else:
        table.add_row(INDEX_NAME, "none yet (no epoch finished)")
    metrics = path / "metrics.csv"
    if metrics.is_file():
        with metrics.open() as handle:
            table.add_row("metrics.csv", f"{max(sum(1 for _ in handle) - 1, 0)} rows")
    predictions = _predictions_words(path / "predictions.h5", index if isinstance(index, dict) else {})
    if predictions is not None:
        table.add_row("predictions.h5", predictions)
    files = titled_table("Checkpoint files", "file", "size")
    seen: dict = {}
    for ckpt in sorted(folder.glob("*.ckpt")):
        stat = ckpt.stat()
        same = seen.setdefault((stat.st_dev, stat.st_ino), ckpt.name)  # last.ckpt: a hard link to a top-k file
        # in B / kB / MB: a small model's checkpoint read '0.0' in MB
        files.add_row(ckpt.name,
                      human_size(stat.st_size) + (f" (the same file as {same})" if same != ckpt.name else ""))
    console.print(table)
    console.print(files)
    model = (config.get("model") or {}).get("class_path", "?") if isinstance(config.get("model"), dict) else "?"
    # best only where the index names a best file: a run whose monitor was never measured (it stopped before its
    # first validation) has none, and predict / validate refuse --ckpt_path best there
    ckpt = "best" if index.get("best") else "last"
    q = shell_word(path)
    what = f"run folder of neurodyn fit ({str(model).rsplit('.', 1)[-1]})"
    claim = broken is None and index_path.is_file() and claim_only(index)
    if claim or (broken is not None and not (folder / "last.ckpt").is_file()):  # nothing to predict or resume from
        print_what_next(console, what, [
            f"neurodyn fit --config {shell_word(path / 'config.yaml')} --checkpoint.dirpath null --run-name NEW   "
            "(a new run with its settings)"])
        return
    print_what_next(console, what, [
        f"neurodyn predict --run {q} --ckpt_path {ckpt} --prediction.path PRED.h5",
        f"neurodyn validate --run {q} --ckpt_path {ckpt}",
        *_train_on_lines(path, config, index.get("last_epoch"), index.get("last_step"))])


def _runs_in(path: Path) -> list[Path]:
    """The run folders of ``neurodyn fit`` and ``neurodyn tune`` directly inside ``path`` (``runs/``, the default
    root), where ``path`` is a folder that is neither itself nor an NWB folder; else ``[]``."""
    if not path.is_dir() or any(path.glob("*.nwb")):
        return []

    def is_run(p: Path) -> bool:
        try:
            return p.is_dir() and (_is_run_folder(p) or _is_tune_folder(p))
        except OSError:  # a folder this user may not enter (PermissionError): not listed, as `ls` would not tell
            return False

    return sorted(p for p in path.iterdir() if is_run(p))


def runs_folder_info(path: Path, runs: list[Path], console=None) -> None:
    """Print a folder of runs (``runs/``, where ``neurodyn fit`` makes them): each run's kind, model and epochs
    (finished of its latest fit's ``max_epochs``), as far as its files say; ``info`` of one run tells the rest. It
    was refused ("folder holds no .nwb files and is no run folder")."""
    import yaml

    console = console or new_console()
    table = titled_table(f"Folder of runs {path}", "run", "kind", "model", "epochs finished")
    for run in runs:
        if _is_tune_folder(run):
            table.add_row(run.name, "neurodyn tune", "", "")
            continue
        try:
            config = yaml.safe_load((run / "config.yaml").read_text()) or {}
        except (OSError, ValueError, yaml.YAMLError):
            config = None
        if not isinstance(config, dict):
            table.add_row(run.name, "neurodyn fit", "config.yaml unreadable", "")
            continue
        model = config.get("model")
        model = str(model.get("class_path", "?")).rsplit(".", 1)[-1] if isinstance(model, dict) else "?"
        try:
            index = json.loads((checkpoint_folder(run) / INDEX_NAME).read_text())
        except (OSError, ValueError):
            index = None
        last = index.get("last_epoch") if isinstance(index, dict) else None
        latest = _max_epochs(_latest_fit_config(run, config))
        done = str(last + 1) if isinstance(last, int) and not isinstance(last, bool) and last >= 0 else "none"
        table.add_row(run.name, "neurodyn fit", model, done + (f" of {latest}" if latest is not None else ""))
    console.print(table)
    print_what_next(console, f"folder of {len(runs)} run{'s' if len(runs) != 1 else ''}",
                    [f"neurodyn info {shell_word(run)}" for run in runs])


#: the sections of a config of ``neurodyn fit`` (LightningCLI), one of which a YAML file must hold to be one
CONFIG_SECTIONS = ("model", "data", "trainer", "seed_everything", "checkpoint")


def config_info(path: str | os.PathLike, console=None) -> None:
    """Print a YAML config of ``neurodyn fit``: its model and data (class, data file), trainer settings and
    what takes it; a file that is not YAML, or YAML without a section of a fit config, is a one-line
    InputError (it was "not an HDF5 file")."""
    import yaml

    from neurodyn.io.hdf5 import check_input_file

    console = console or new_console()
    path = Path(check_input_file(path, "fit config"))
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InputError(f"not a readable YAML file ({type(err).__name__}{where}; info reads fit configs as YAML)",
                         path=path) from None
    if not isinstance(config, dict) or not set(config) & set(CONFIG_SECTIONS):
        raise InputError("not a config of neurodyn fit (no model, data, trainer or seed_everything section)",
                         path=path)
    table = titled_table(f"Fit config {path}", "section", "value")
    for section in ("model", "data"):
        part = config.get(section)
        if isinstance(part, dict) and part.get("class_path"):
            args = part.get("init_args") or {}
            where = f" ({args['path']})" if isinstance(args, dict) and args.get("path") else ""
            table.add_row(section, str(part["class_path"]).rsplit(".", 1)[-1] + where)
        elif part is not None:
            table.add_row(section, _text(part))
    trainer = config.get("trainer")
    if isinstance(trainer, dict):
        for key in ("max_epochs", "accelerator", "check_val_every_n_epoch", "precision"):
            if trainer.get(key) is not None:
                table.add_row(f"trainer.{key}", str(trainer[key]))
    for key in ("seed_everything", "checkpoint"):
        if config.get(key) is not None:
            table.add_row(key, _text(config[key]))
    console.print(table)
    q = shell_word(path)
    steps = [f"neurodyn fit --config {q}"]
    if path.name == "config.yaml" and _is_run_folder(path.parent):  # a run folder's: its checkpoints
        # in the folder the run records (--checkpoint.dirpath), which may not be DIR/checkpoints (it said so)
        last = checkpoint_folder(path.parent) / "last.ckpt"
        steps = [f"neurodyn predict --config {q} --ckpt_path {shell_word(last)} "
                 "--prediction.path PRED.h5", f"neurodyn predict --run {shell_word(path.parent)} --ckpt_path last "
                 "--prediction.path PRED.h5"]
    what = "config of neurodyn fit (LightningCLI YAML)" + ("; the run folder's own (written by fit)" if len(steps) > 1
                                                           else "")
    if path.name == "best.yaml" and _is_tune_folder(path.parent) and (path.parent / "best.ckpt").is_file():
        what += "; the best trial's of a neurodyn tune run folder (its checkpoint: best.ckpt beside it)"
        steps.append(f"neurodyn predict --config {q} --ckpt_path {shell_word(path.parent / 'best.ckpt')} "
                     "--prediction.path PRED.h5")
    print_what_next(console, what, steps)


def cli_main(argv: list[str]) -> int:
    """Entry point of ``neurodyn info``; returns the exit code."""
    parser = ArgumentParser(
        prog="neurodyn info",
        description="Summarise an NWB file or folder, a prepared file, any HDF5 file, a checkpoint, a config "
                    "or a run folder of neurodyn fit, or a run folder of neurodyn tune: what it is and the commands "
                    "that take it next.",
    )
    parser.add_argument(
        "file",
        help="NWB file / folder, `neurodyn prepare` output, prediction, LFADS-format or other HDF5, a checkpoint "
        "(.ckpt), a config (.yaml) or a run folder of `neurodyn fit`, a run folder of `neurodyn tune`; or a "
        "dandi:// or https:// URL (streamed, not downloaded). The summary ends with what the file is and the "
        "commands that take it next",
    )
    parser.add_argument("--max-rows", type=int, default=200, help="datasets listed for generic HDF5 files")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help=TIMEOUT_HELP)
    parser.add_argument("--trust-size", action="store_true", help=TRUST_SIZE_HELP)
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:
        return int(stop.code or 0)
    if args.max_rows < 0:  # a negative count listed all but its last rows and miscounted the rest
        raise InputError(f"must be >= 0, got {args.max_rows}", field="--max-rows")
    path = Path(args.file)
    # a folder this user may not list or enter, or a path through one: Path.is_dir / is_file below raised
    # PermissionError (a traceback), where os.path.exists says "absent" (Python 3.11)
    refuse_denied(path)
    # --trust-size absent: the setting of $NEURODYN_STREAM_TRUST_SIZE (or an enclosing block) holds, as in prepare
    size_only = trust_size() if args.trust_size else contextlib.nullcontext()
    with timeout_s(args.timeout, field="--timeout"), size_only:
        if _is_run_folder(path):
            run_folder_info(path)
        elif _is_tune_folder(path):
            tune_folder_info(path)
        elif path.suffix == ".ckpt" and path.is_file():
            checkpoint_info(path)
        elif path.suffix.lower() in (".yaml", ".yml"):
            config_info(path)
        elif _runs_in(path):  # a folder of runs (runs/): was refused as no run folder
            runs_folder_info(path, _runs_in(path))
        else:  # a folder that is neither of info's folders nor an NWB folder is refused there, saying what it lacks
            info(args.file, max_rows=args.max_rows, why_no_run=why_no_run)
    return 0
