"""Run folders of ``neurodyn fit``: where a run writes, how ``--run DIR`` and ``--ckpt_path best|last``
resolve, and what a stopped run says about resuming (see :mod:`neurodyn.training.cli`)."""

from __future__ import annotations

import datetime
import os
import signal
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.cli import SaveConfigCallback

from neurodyn.errors import InputError, Stopped
from neurodyn.training.callbacks import format_duration, max_time_seconds
from neurodyn.training.checkpoint_index import (
    CLAIMED,
    INDEX_NAME,
    RUN_RECORD,
    checkpoint_folder,
    claim_only,
    claimed_run_words,
    missing_folder,
    never_measured,
    new_run_record,
    run_of_checkpoint,
    selects_best,
    unreadable_index,
    unreadable_words,
)

#: the run folder chosen by rank 0, for the DDP processes it starts
RUN_DIR_ENV = "NEURODYN_RUN_DIR"
#: the run's id (:data:`~neurodyn.training.checkpoint_index.RUN_RECORD`) chosen by rank 0, for the DDP processes
RUN_ID_ENV = "NEURODYN_RUN_ID"
DEFAULT_ROOT = "runs"


def _keep_none() -> dict:
    """jsonargparse's option that keeps ``None`` values in a dump (renamed ``skip_none`` -> ``skip_unset`` in
    4.49; the old name warns there). Told by version: since 4.49 ``dump`` / ``save`` take ``**kwargs``, so
    their signatures do not name the option."""
    from importlib.metadata import version

    try:
        major, minor = (int(part) for part in version("jsonargparse").split(".")[:2])
    except ValueError:  # a development version string: the new name
        return {"skip_unset": False}
    return {"skip_unset" if (major, minor) >= (4, 49) else "skip_none": False}


_KEEP_NONE = _keep_none()


class RunConfigSaver(SaveConfigCallback):
    """Write the run's ``config.yaml`` into the run folder. A resumed fit (``resuming``) never rewrites it: it
    writes what the resume was given to ``config.resume-<n>.yaml`` beside it (n = 1, 2, ... per resume), so
    the first file stays the record of the run. With the first config.yaml it writes the run record
    (:data:`~neurodyn.training.checkpoint_index.RUN_RECORD`: ``run_id``, the run folder's realpath and identity), which
    a resume never rewrites either. Files are written atomically."""

    def __init__(self, *args, resuming: bool = False, run_id: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.resuming = resuming
        self.run_id = run_id
        self._settings: dict | None = None
        self._data_files: dict = {}

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.already_saved or stage != "fit":
            return
        from neurodyn.training.checkpoints import record_data_files

        self._data_files = record_data_files(trainer.datamodule)
        run_dir = Path(trainer.default_root_dir)
        name = self.config_filename
        if self.resuming and (run_dir / name).exists():
            n = 1
            while (run_dir / f"config.resume-{n}.yaml").exists():
                n += 1
            name = f"config.resume-{n}.yaml"
        if trainer.is_global_zero:
            from neurodyn.io import atomic_path

            run_dir.mkdir(parents=True, exist_ok=True)
            if self.run_id and name == self.config_filename and not (run_dir / RUN_RECORD).exists():
                import json

                with atomic_path(run_dir / RUN_RECORD) as tmp:
                    tmp.write_text(json.dumps(new_run_record(self.run_id, run_dir)) + "\n")
            with atomic_path(run_dir / name) as tmp:
                self.parser.save(self.config, str(tmp), overwrite=True, multifile=False, **_KEEP_NONE)
        self.already_saved = True

    def on_save_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict) -> None:
        """Record the run's data, trainer, seed, checkpoint and optimizer settings in every checkpoint
        (:data:`~neurodyn.training.checkpoints.RUN_SETTINGS_KEY`, plain values as in ``config.yaml``), and the
        size and SHA-256 of each data file (:data:`~neurodyn.training.checkpoints.DATA_FILES_KEY`): a
        checkpoint copied out of its run folder is then still resumed only on its own data, and none is
        resumed on a file re-made under the same name."""
        import yaml

        from neurodyn.training.checkpoints import DATA_FILES_KEY, RESUME_KEPT_SECTIONS, RUN_SETTINGS_KEY

        if self._settings is None:
            dumped = yaml.safe_load(self.parser.dump(self.config, **_KEEP_NONE))
            self._settings = {k: dumped[k] for k in ("data", "trainer", *RESUME_KEPT_SECTIONS) if k in dumped}
            self._settings[DATA_FILES_KEY] = self._data_files
        checkpoint[RUN_SETTINGS_KEY] = self._settings


def run_dir_of_checkpoint(path: str) -> Path | None:
    """``DIR`` for ``DIR/checkpoints/X.ckpt`` when ``DIR`` is a run folder (has config.yaml), and for a checkpoint in
    a ``--checkpoint.dirpath`` folder the run folder that its index and the run's record link it to
    (:func:`~neurodyn.training.checkpoint_index.run_of_checkpoint`)."""
    return run_of_checkpoint(path)


def checkpoint_run_id(path: str | os.PathLike) -> str | None:
    """The run id a checkpoint file records (``checkpoint["neurodyn"]["run_id"]``, written by ``neurodyn fit``
    since run records), or None: none recorded (an older checkpoint), or a file that cannot be read (its reader
    names why)."""
    import torch

    try:  # mmap: the header, not every tensor
        header = torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("neurodyn") or {}
    except Exception:  # noqa: BLE001 - the file is read and checked again when the fit loads it
        return None
    run_id = header.get("run_id") if isinstance(header, dict) else None
    return run_id if isinstance(run_id, str) and run_id else None


def is_run_checkpoint(path: str | os.PathLike, checkpoint_dir: Path) -> bool | None:
    """Whether ``path`` is one of a run's checkpoints: a file in ``checkpoint_dir`` (the run's checkpoints folder;
    links followed), or a file with the same bytes as one there (a copy kept elsewhere: the run's own state).
    None when ``path`` cannot be read (its reader names why); a file there that cannot be read is passed over."""
    import filecmp

    if os.path.realpath(Path(path).parent) == os.path.realpath(checkpoint_dir):
        return True
    try:
        size = os.path.getsize(path)
        with open(path, "rb"):
            pass
    except OSError:
        return None
    try:
        others = [p for p in checkpoint_dir.glob("*.ckpt") if p.is_file() and p.stat().st_size == size]
    except OSError:
        return False
    for other in others:
        try:
            if filecmp.cmp(path, other, shallow=False):
                return True
        except OSError:
            continue
    return False


def resolve_checkpoint(run_dir: Path | None, which: str, field: str = "ckpt_path") -> str:
    """``best`` / ``last`` -> the file inside the run's checkpoints folder (``run_dir/checkpoints``, or the
    ``checkpoint.dirpath`` its config.yaml records: :func:`~neurodyn.training.checkpoint_index.checkpoint_folder`);
    one-line InputError when there is none."""
    if run_dir is None:
        raise InputError(f"'{which}' needs a run folder: add --run DIR", field=field)
    missing = missing_folder(run_dir)  # said 'no last.ckpt: the run has not finished an epoch'
    if missing is not None:
        raise InputError(missing[0], path=missing[1], field="checkpoint.dirpath")
    ckpt_dir = checkpoint_folder(run_dir)
    if which == "best" or not (ckpt_dir / "last.ckpt").is_file():
        import json

        broken = unreadable_index(ckpt_dir)  # a claim cut short: 'unreadable index (Expecting value: ...)'
        if broken is not None:
            raise InputError(f"no checkpoint for '{which}': the run's checkpoint folder {ckpt_dir}: "
                             f"{unreadable_words(ckpt_dir, broken)}", path=ckpt_dir / INDEX_NAME, field=field)
        try:  # an index that holds only a fit's claim: no best, no last (it said 'use --ckpt_path last')
            claim = claim_only(json.loads((ckpt_dir / INDEX_NAME).read_text()))
        except (OSError, ValueError):
            claim = False
        if claim:
            raise InputError(f"no checkpoint for '{which}': the run's checkpoint folder is "
                             f"{claimed_run_words(ckpt_dir)}", path=ckpt_dir / INDEX_NAME, field=field)
    if which == "last":
        path = ckpt_dir / "last.ckpt"
        if not path.is_file():
            raise InputError("no last.ckpt: the run has not finished an epoch", path=ckpt_dir, field=field)
        return str(path)
    index = ckpt_dir / INDEX_NAME
    if not index.is_file():
        raise InputError(f"no {INDEX_NAME}: the run has not saved a checkpoint", path=ckpt_dir, field=field)
    import json

    try:
        recorded = json.loads(index.read_text())
    except ValueError as err:
        raise InputError(f"unreadable index ({err})", path=index, field="best") from None
    best = recorded.get("best")
    if not best:
        raise InputError(f"{no_best_reason(recorded)}: use --ckpt_path last", path=index, field="best")
    if not (ckpt_dir / best).is_file():
        raise InputError(f"the best checkpoint {best!r} is missing", path=index, field="best")
    return str(ckpt_dir / best)


def no_best_reason(index: dict) -> str:
    """Why a run's checkpoint index names no best file: the run selects nothing, or it has not validated, or the
    index is the claim of a run that has saved no checkpoint yet (:func:`~neurodyn.training.checkpoint_index.
    claim_folder`)."""
    if claim_only(index):
        return f"the run has not saved a checkpoint yet: its {INDEX_NAME} is {CLAIMED}"
    if selects_best(index):
        return f"the run has no best checkpoint yet: {never_measured(index)}"
    return "the run keeps no best checkpoint (no monitor, or checkpoint.save_top_k 0)"


def keeps_best(run_dir: Path) -> bool:
    """True when the run's checkpoint index names a best file (runs without selection keep only last.ckpt).
    A run that selects but has not validated yet is told so (its predictions come from last.ckpt)."""
    import json

    try:
        recorded = json.loads((checkpoint_folder(run_dir) / INDEX_NAME).read_text())
    except (OSError, ValueError):
        return True  # let resolve_checkpoint report what is wrong
    if recorded.get("best"):
        return True
    if selects_best(recorded):
        print(f"note: {no_best_reason(recorded)}; using last.ckpt", flush=True)
    return False


def unique_run_dir(root: Path) -> Path:
    """A new folder ``root/YYYYmmdd-HHMMSS[-n]``, created here (``mkdir`` fails on an existing name, so two
    fits started in the same second never share one: before, the name was checked, then created later). A folder
    that cannot be made (a read-only root) is a one-line InputError about ``trainer.default_root_dir`` (was an
    OSError traceback)."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate, n = root / stamp, 1
    while True:
        try:
            root.mkdir(parents=True, exist_ok=True)
            candidate.mkdir()
            return candidate
        except FileExistsError:
            n += 1
            candidate = root / f"{stamp}-{n}"
        except OSError as err:
            raise InputError(f"cannot create folder {candidate} ({os.strerror(err.errno or 0) or err})", path=root,
                             field="trainer.default_root_dir") from None


def prepare_argv(rest: list[str], command: str | None = None) -> list[str]:
    """``--run-name`` -> ``--run_name``; ``--run DIR`` puts ``DIR/config.yaml`` first in the config stack, and
    so does a ``fit --ckpt_path DIR/checkpoints/X.ckpt`` of a run folder (a resume continues the run as it
    was configured; before, the defaults stood in for every setting not given again, and a resume that gave
    none was refused for settings it had not asked for)."""
    out: list[str] = []
    run = ckpt = None
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg.startswith("--run-name"):
            arg = "--run_name" + arg[len("--run-name"):]
        if arg == "--run" and i + 1 < len(rest):
            run = rest[i + 1]
        elif arg.startswith("--run="):
            run = arg.split("=", 1)[1]
        elif arg == "--ckpt_path" and i + 1 < len(rest):
            ckpt = rest[i + 1]
        elif arg.startswith("--ckpt_path="):
            ckpt = arg.split("=", 1)[1]
        out.append(arg)
        i += 1
    if ckpt is not None and ckpt not in ("best", "last"):
        from neurodyn.io.hdf5 import refuse_denied

        # a checkpoint behind a folder this user may not enter: Path.is_file here (fit) and in
        # run_dir_of_checkpoint (predict, validate, test) raised PermissionError, a traceback
        refuse_denied(ckpt, "ckpt_path")
    if run is None and command == "fit" and ckpt is not None and Path(ckpt).is_file():
        folder = run_dir_of_checkpoint(ckpt)
        return ["--config", str(folder / "config.yaml"), *out] if folder is not None else out
    if run is None:
        return out
    from neurodyn.io.hdf5 import refuse_denied

    run_dir = Path(run)
    # a folder this user may not enter: Path.is_file raised PermissionError. One it may enter but not list is
    # read: its config.yaml and checkpoints are opened by name
    refuse_denied(run_dir, "run", listing=False)
    if run_dir.is_file():
        hint = f"; the run folder is {run_dir.parent}" if (run_dir.parent / "config.yaml").is_file() else ""
        folder = run_dir_of_checkpoint(run_dir) if run_dir.suffix == ".ckpt" else None
        if folder is not None:  # a run's checkpoint: said only 'is a file, expected a run folder'
            hint = f"; it is a checkpoint of the run folder {folder}: --run {folder} --ckpt_path {run_dir}"
        raise InputError(f"is a file, expected a run folder written by neurodyn fit{hint}", path=run, field="run")
    if not run_dir.is_dir():
        from neurodyn.io.hdf5 import absent_reason

        raise InputError(absent_reason(run_dir, "no such run folder"), path=run, field="run")
    config = run_dir / "config.yaml"
    if not config.is_file():
        raise InputError("not a run folder (no config.yaml)", path=run, field="run")
    refuse_denied(config, "run")  # else refused as --config, an option the user did not give
    return ["--config", str(config), *out]


#: the length settings of a fit (``trainer.<name>``) with Lightning's defaults, in the order a resume command
#: names them
LENGTH_SETTINGS = {"max_epochs": None, "min_epochs": None, "max_steps": -1, "min_steps": None, "max_time": None}


def resume_command(run_dir: Path, limits: dict | None, leave_out: tuple[str, ...] = ()) -> str:
    """``neurodyn fit --run DIR``, with ``--trainer.<name> VALUE`` for each length setting of the stopped fit
    (:data:`LENGTH_SETTINGS`, as that fit was given them: ``limits``) that the run's config.yaml records otherwise:
    a bare ``fit --run DIR`` takes config.yaml's, the run's first fit's, so the resume of a fit that was itself a
    resume with ``--trainer.max_epochs 50 --trainer.min_epochs 40`` (or ``max_steps``, ``min_steps``, ``max_time``)
    would train another run than the one stopped. ``leave_out``: settings the caller names itself."""
    recorded = _recorded_trainer(run_dir)
    options = []
    for name, default in LENGTH_SETTINGS.items():
        if name in leave_out or not limits or name not in limits:
            continue
        value, saved = limits[name], recorded.get(name, default)
        if name == "max_time":
            value, saved = _seconds(value), _seconds(saved)
            if value != saved:
                options.append(f" --trainer.max_time {_max_time_option(value, limits[name])}")
        elif value != saved:
            options.append(f" --trainer.{name} {'null' if value is None else value}")
    return f"neurodyn fit --run {run_dir}{''.join(options)}"


def _seconds(duration) -> float | None:
    """A ``trainer.max_time`` in seconds (:func:`~neurodyn.training.callbacks.max_time_seconds`); one it cannot read
    as it is (compared as it is)."""
    try:
        return max_time_seconds(duration)
    except InputError:  # refused when the Trainer is built; here only the wording of a stop
        return duration


def _max_time_option(seconds, given) -> str:
    """The value of ``--trainer.max_time`` for a resume command: ``DD:HH:MM:SS`` of whole seconds, else the value
    as the stopped fit was given it (JSON, which the command line reads as YAML), quoted for the shell."""
    if seconds is None:
        return "null"
    if isinstance(seconds, (int, float)) and float(seconds).is_integer():
        return format_duration(seconds)
    import json
    import shlex

    return shlex.quote(given if isinstance(given, str) else json.dumps(given, default=str))


def _recorded_trainer(run_dir: Path) -> dict:
    """The ``trainer`` section of the run's config.yaml ({} when unreadable)."""
    import yaml

    try:
        trainer = (yaml.safe_load((run_dir / "config.yaml").read_text()) or {}).get("trainer") or {}
    except (OSError, yaml.YAMLError, AttributeError):
        return {}
    return trainer if isinstance(trainer, dict) else {}


def _epochs_saved(last: Path) -> int | None:
    """The epochs a ``last.ckpt`` has finished (its ``epoch`` + 1), or None when it cannot be read."""
    import torch

    try:  # mmap: the header, not every tensor
        epoch = torch.load(last, map_location="cpu", weights_only=True, mmap=True).get("epoch")
    except Exception:  # noqa: BLE001 - only the wording of the stop depends on it
        return None
    return epoch + 1 if isinstance(epoch, int) else None


def run_stopped(signum: int, run_dir: Path | None, finished: bool, max_epochs: int | None = None,
                limits: dict | None = None) -> Stopped:
    """The stop of a fit on a signal, saying how to resume (printed by neurodyn.cli, exit 128 + signum).
    ``max_epochs``: the stopped fit's (the Trainer's); ``limits``: its length settings as it was given them, which
    the command names where the run's config.yaml records others (:func:`resume_command`; without ``limits``,
    ``max_epochs`` alone).
    A ``last.ckpt`` that has finished all ``max_epochs`` (a second signal after the last epoch was saved) gets
    no resume command: the run is finished, and that command would only say there is nothing to train. (A
    first signal during the epoch that ends the fit does not come here: the fit ends as finished, exit 0,
    :class:`~neurodyn.training.callbacks.ResumeState`.)"""
    name = signal.Signals(signum).name
    last = checkpoint_folder(run_dir) / "last.ckpt" if run_dir is not None else None
    if last is not None and last.is_file():
        done = _epochs_saved(last) if max_epochs not in (None, -1) else None
        if done is not None and done >= max_epochs:
            return Stopped(signum, f"interrupted by {name} after the last epoch was saved: the run finished "
                                   f"(trainer.max_epochs={max_epochs} reached); nothing to resume")
        when = "after finishing the epoch" if finished else "during an epoch; last.ckpt is the epoch before"
        command = resume_command(run_dir, limits if limits is not None else {"max_epochs": max_epochs})
        return Stopped(signum, f"interrupted by {name} {when}; resume with: {command}")
    return Stopped(signum, f"interrupted by {name} before any epoch finished; nothing to resume")
