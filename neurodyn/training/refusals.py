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
    """The trainer option a run-time MisconfigurationException of Lightning is about, where its wording says.

    >>> misconfigured_option("You requested to check 0.001 of the `val_dataloader` but 0.001 * 1 < 1.")
    'trainer.limit_val_batches'
    """
    found = re.search(r"of the `?(train|val|test|predict)_dataloader", message)
    return f"trainer.limit_{found.group(1)}_batches" if found else "trainer"


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
