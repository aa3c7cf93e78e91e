"""Lightning's refusals of a run's settings as neurodyn's one-line :class:`~neurodyn.errors.InputError`.

Lightning refuses some trainer settings only once the run is under way: a ``limit_*_batches`` fraction below one
batch (a ``MisconfigurationException``, for a fit's training batches after its sanity check) and a
``val_check_interval`` of more batches than an epoch has (a plain ``ValueError``). :func:`check_batch_limits`
makes these checks when the Trainer sets up, before anything of the run is shown; :func:`input_error_of`
words what Lightning raised as one line naming the option, in the process that runs the command and in those
that :mod:`neurodyn.training.processes` starts.
"""

from __future__ import annotations

import re
import warnings

from neurodyn.errors import CommandFailed, InputError, one_line, wrapped_input_error


def misconfigured_option(message: str) -> str:
    """The trainer option a refusal of Lightning's Trainer is about, where its wording names one (``trainer`` where
    it does not): a run-time MisconfigurationException about a loader's batches, or what the Trainer raised when
    it was built -- ``max_epochs -2``, ``limit_val_batches -1``, ``devices 0``, ``num_nodes 0`` -- each worded its
    own way. Only a name that is a Trainer argument counts.

    >>> misconfigured_option("You requested to check 0.001 of the `val_dataloader` but 0.001 * 1 < 1.")
    'trainer.limit_val_batches'
    >>> misconfigured_option("`max_epochs` must be a non-negative integer or -1. You passed in -2.")
    'trainer.max_epochs'
    >>> misconfigured_option("You have passed invalid value -1 for limit_val_batches, it has to be in [0.0, 1.0]")
    'trainer.limit_val_batches'
    >>> misconfigured_option("`Trainer(devices='0')` value is not a valid input using cpu accelerator.")
    'trainer.devices'
    >>> misconfigured_option("`CPUAccelerator` can not run on your system")
    'trainer'
    """
    import inspect

    from lightning.pytorch import Trainer

    found = re.search(r"of the `?(train|val|test|predict)_dataloader", message)
    if found:
        return f"trainer.limit_{found.group(1)}_batches"
    options = inspect.signature(Trainer.__init__).parameters
    for pattern in (r"`Trainer\((\w+)=", r"^`(\w+)`", r"`(\w+)=", r"invalid value .* for (\w+),"):
        found = re.search(pattern, message)
        if found and found.group(1) in options and found.group(1) != "self":
            return f"trainer.{found.group(1)}"
    return "trainer"


def input_error_of(err: BaseException) -> InputError | CommandFailed | None:
    """The one-line error ``err`` stands for: an InputError or CommandFailed as it is (or the InputError that
    jsonargparse wrapped), Lightning's MisconfigurationException as an InputError naming the option; None for
    anything else (a bug: its traceback is shown)."""
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    if isinstance(err, InputError | CommandFailed):
        return err
    if isinstance(err, MisconfigurationException):
        return InputError(one_line(err, 400), field=misconfigured_option(str(err)))
    return wrapped_input_error(err)


#: the loaders each command runs and the trainer option that limits each (predict's is refused before: the CLI)
_LOADERS = {"fit": (("train", "train_dataloader"), ("val", "val_dataloader")),
            "validate": (("val", "val_dataloader"),), "test": (("test", "test_dataloader"),)}


def check_batch_limits(trainer, stage: str) -> None:
    """The ``limit_*_batches`` of the run's loaders (a fit's also ``val_check_interval``) against its data, by
    Lightning's own rule (its ``_parse_num_batches``: the same words), when the Trainer sets up (its ``setup``
    hook): Lightning checks them when each loop starts -- a fit's training batches after the sanity check, its
    validation batches in it (with ``num_sanity_val_steps 0`` after the first training epoch) -- after its own
    warnings about the loaders, and a ``val_check_interval`` of more batches than an epoch has was a ValueError
    traceback. The loaders are built as Lightning builds them (a distributed sampler under DDP: the batches of
    one process) and not iterated, so nothing random is drawn."""
    from lightning.pytorch.trainer.connectors.data_connector import _parse_num_batches
    from lightning.pytorch.trainer.states import RunningStage

    datamodule = trainer.datamodule
    if datamodule is None:
        return
    counts = {}
    for prefix, method in _LOADERS.get(stage, ()):
        limit = getattr(trainer, f"limit_{prefix}_batches")
        if not limit or not hasattr(datamodule, method):
            continue
        running = {"train": RunningStage.TRAINING, "val": RunningStage.VALIDATING, "test": RunningStage.TESTING}[prefix]
        with warnings.catch_warnings():  # Lightning warns (or not) when it builds them itself
            warnings.simplefilter("ignore")
            loader = trainer._data_connector._prepare_dataloader(getattr(datamodule, method)(),
                                                                 shuffle=prefix == "train", mode=running)
        try:
            length = len(loader)
        except TypeError:  # an iterable without a length: Lightning checks it
            continue
        counts[prefix] = _parse_num_batches(running, length, limit)
    interval, batches = trainer.val_check_interval, counts.get("train")
    if (isinstance(interval, int) and not isinstance(interval, bool) and batches is not None and interval > batches
            and trainer.check_val_every_n_epoch is not None and trainer.limit_val_batches > 0):
        raise InputError(f"{interval} batches is more than an epoch's {batches} training batches: give at most "
                         f"{batches}, a fraction of the epoch (0.5), or trainer.check_val_every_n_epoch null to count "
                         "batches across epochs", field="trainer.val_check_interval")


#: trainer settings of a fit that Lightning takes without a check and then divides by (a ZeroDivisionError
#: traceback once training ran: ``accumulate_grad_batches 0``, ``check_val_every_n_epoch 0``,
#: ``val_check_interval 0``) or misreads without a word (``accumulate_grad_batches -1`` and
#: ``check_val_every_n_epoch -1`` stepped and validated every batch / epoch, ``log_every_n_steps -1`` logged every
#: step, ``gradient_clip_val -1`` turned every gradient around, ``limit_train_batches 0`` trained nothing and
#: exited 0): option -> (smallest value, None allowed, what the option counts)
_TRAINER_COUNTS = {
    "accumulate_grad_batches": (1, False, "batches per optimizer step"),
    "check_val_every_n_epoch": (1, True, "epochs between validations; null: by val_check_interval alone"),
    "log_every_n_steps": (0, True, "steps between logged metrics; 0 logs none"),
    "num_sanity_val_steps": (-1, True, "validation batches run before training; -1 all of them"),
    "min_epochs": (0, True, "epochs trained at least"),
    "min_steps": (0, True, "steps trained at least"),
}


def check_trainer_counts(config) -> None:
    """The trainer settings of a fit that Lightning divides by or misreads, checked before the Trainer is built:
    a whole number from each one's smallest sensible value (:data:`_TRAINER_COUNTS`); ``val_check_interval`` a
    number above 0; ``gradient_clip_val`` a finite number >= 0; ``limit_train_batches`` not 0 (as ``max_epochs 0``:
    trains nothing). An :class:`~neurodyn.errors.InputError` naming ``trainer.<option>``.

    >>> check_trainer_counts({"accumulate_grad_batches": 0})
    Traceback (most recent call last):
    neurodyn.errors.InputError: trainer.accumulate_grad_batches: must be a whole number >= 1 (batches per ...), got 0
    >>> check_trainer_counts({"accumulate_grad_batches": 2, "check_val_every_n_epoch": None, "gradient_clip_val": 0.5})
    """
    import math

    from neurodyn.errors import whole_number

    get = config.get
    for option, (least, none_ok, counts) in _TRAINER_COUNTS.items():
        value = get(option)
        if value is None:  # not set (tune's trainer section), or Lightning's null where it takes one
            continue
        number = whole_number(value)
        if number is None or number < least:
            raise InputError(f"must be a whole number >= {least}{' or null' if none_ok else ''} ({counts}), got "
                             f"{value!r}", field=f"trainer.{option}")

    def number(value):
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None

    interval = get("val_check_interval")
    if interval is not None and not (number(interval) is not None and math.isfinite(interval) and interval > 0):
        raise InputError(f"must be above 0 (a fraction of the training epoch up to 1.0, or a number of batches), got "
                         f"{interval!r}", field="trainer.val_check_interval")
    clip = get("gradient_clip_val")
    if clip is not None and not (number(clip) is not None and math.isfinite(clip) and clip >= 0):
        raise InputError(f"must be a finite number >= 0 (0 or null: no clipping), got {clip!r}",
                         field="trainer.gradient_clip_val")
    limit = get("limit_train_batches")
    if limit is not None and number(limit) is not None and limit == 0:
        raise InputError("0 trains nothing; give a positive number of batches or a fraction of them up to 1.0",
                         field="trainer.limit_train_batches")
