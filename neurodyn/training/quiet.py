"""Lightning's noise, silenced where neurodyn trains: ``neurodyn fit | validate | test | predict`` and
``neurodyn demo`` (:func:`quiet_lightning`).

Only known messages are dropped, each by its own pattern (advertising tips, a deprecation inside Lightning
itself, the logging interval; for the training commands also warnings about situations they create on purpose);
every other warning and log line -- a NaN loss, a bad setting -- still shows.

The training commands also hold their standard output back until the run starts (:func:`hold_stdout`): bad input
found after the Trainer exists is still the only line the command prints.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import threading
import warnings

import lightning.pytorch as pl

#: Lightning's info lines that carry no information for a neurodyn user (advertising; the seed, which
#: config.yaml records, was printed on stderr before any error line)
_QUIET_INFO = ("💡 Tip", "Seed set to",
               # a signal during a run, which the command itself says in its one line (the demo's)
               "Received SIGTERM", "Detected KeyboardInterrupt")
#: warnings of Lightning's own making, noise wherever neurodyn trains
_LIGHTNING_NOISE = (
    r".*is smaller than the logging interval.*",  # epoch metrics are what neurodyn logs
    r".*LeafSpec.*is deprecated.*",  # Lightning's own use of a torch API
)
#: warnings about situations the training commands create on purpose
_EXPECTED_SITUATIONS = (
    r".*does not have many workers.*",  # in-memory tensors: workers would only add copies
    r".*exists and is not empty.*",  # a resumed run writes into its own folder on purpose
    r".*Experiment logs directory .* exists.*",
    r".*The `srun` command is available on your system but is not used.*",
    r".*GPU available but not used.*",
    r".*callbacks used to create the checkpoint need to be provided.*",  # validate / predict need no checkpointing
    r".*LightningCLI's args parameter is intended to run from within Python.*",  # args are given on purpose
)


#: Lightning's prefix of a message of a process other than the first (``[rank: 1] Seed set to 0``)
_RANK_PREFIX = re.compile(r"^\[rank: \d+\] ")


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # with the rank prefix too: the processes `--trainer.strategy ddp` starts printed '[rank: 1] Seed set to 0'
        return not _RANK_PREFIX.sub("", str(record.getMessage()).lstrip()).startswith(_QUIET_INFO)


def _set_stream(handler: logging.StreamHandler, stream) -> None:
    """``handler.setStream`` without its flush of the old stream (which may be closed: a test's capture)."""
    handler.acquire()
    try:
        handler.stream = stream
    finally:
        handler.release()


@contextlib.contextmanager
def quiet_lightning(*, situations: bool = True):
    """Silence Lightning's advertising tips and warnings that are expected in neurodyn's use.

    Always dropped: the tips, the ``Seed set to`` line, Lightning's torch ``LeafSpec`` deprecation warning and its
    ``log_every_n_steps`` warning. ``situations`` (the training commands): also the warnings about situations they
    create on purpose (a resumed run's folder exists, in-memory data needs no workers, a GPU left unused, ...).
    """
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch.utilities.rank_zero",
                                                     "lightning.fabric.utilities.seed",
                                                     "lightning.pytorch.trainer.connectors.signal_connector")]
    tips = _DropTips()
    for logger in loggers:
        logger.addFilter(tips)
    # Lightning's info lines ("GPU available: ...") are progress, not errors: on stdout, so that an error
    # found after the Trainer exists is still the only line on stderr
    moved = [(h, h.stream) for name in ("lightning", "lightning.pytorch", "lightning.fabric")
             for h in logging.getLogger(name).handlers
             if type(h) is logging.StreamHandler]
    for handler, _ in moved:
        _set_stream(handler, sys.stdout)
    with warnings.catch_warnings():
        for pattern in _LIGHTNING_NOISE + (_EXPECTED_SITUATIONS if situations else ()):
            warnings.filterwarnings("ignore", message=pattern)
        try:
            yield
        finally:
            for logger in loggers:
                logger.removeFilter(tips)
            for handler, stream in moved:
                _set_stream(handler, stream)


class HeldStream:
    """A text stream in front of another that keeps what is written until :meth:`release` (then writes it, in
    order, and passes later writes through) or :meth:`drop` (forgets it). Everything else -- ``isatty``,
    ``fileno``, ``encoding``, ... -- is the other stream's, so a progress bar sees the terminal it will write to."""

    def __init__(self, stream, held: list[str] | None = None):
        self._stream = stream
        self._held: list[str] | None = list(held or [])  # None once released or dropped
        self._lock = threading.Lock()  # rich's progress bar writes from its refresh thread

    def write(self, text: str) -> int:
        with self._lock:
            if self._held is not None:
                self._held.append(text)
                return len(text)
        return self._stream.write(text)

    def writelines(self, lines) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if self._held is None:
            self._stream.flush()

    def release(self) -> None:
        """Write what was held and pass later writes through; idempotent."""
        with self._lock:
            held, self._held = self._held, None
            if held:
                self._stream.write("".join(held))
        self._stream.flush()

    def drop(self) -> None:
        """Forget what was held and pass later writes through; idempotent."""
        with self._lock:
            self._held = None

    def take(self) -> list[str]:
        """What is held, handed to another process to print (:class:`~neurodyn.training.processes.CommandLauncher`);
        this stream then passes writes through, as if released."""
        with self._lock:
            held, self._held = self._held, None
        return held or []

    @property
    def underlying(self):
        """The stream this one (and any :class:`HeldStream` it is in front of) writes to in the end."""
        stream = self._stream
        while isinstance(stream, HeldStream):
            stream = stream._stream
        return stream

    def __getattr__(self, name):
        return getattr(self._stream, name)

    def __reduce__(self):
        # ddp_spawn pickles the trainer (and, through its config saver's parser, the CLI) into new processes: there
        # it is the process's own standard output, nothing held (training.processes.CommandLauncher gives the
        # ReleaseStdout callback there a stream of that process that holds)
        return _passing_stdout, ()


def _passing_stdout() -> HeldStream:
    """A :class:`HeldStream` of this process's standard output that holds nothing (an unpickled one)."""
    stream = HeldStream(sys.stdout)
    stream.release()
    return stream


class ReleaseStdout(pl.Callback):
    """Releases a :class:`HeldStream` when the run starts: training (``fit``, after the sanity check), the
    validation / test / prediction loop (``validate`` / ``test`` / ``predict``) -- each after Lightning has set up
    its data loaders and checked the ``limit_*_batches`` against them.

    A fit whose progress bar shows the sanity check (on a terminal) is released when the sanity check starts,
    so that its bar is drawn while it runs, after what was held (before, the bar was held with the rest and
    printed at once when training began). The batch settings are checked before that, when the Trainer sets
    up (:func:`~neurodyn.training.refusals.check_batch_limits`; Lightning refuses a fit's training batches
    only after the sanity check). Bad input that only the sanity check finds -- a ``checkpoint.monitor`` that
    validation does not log -- then follows what was printed. Without a progress bar nothing is printed during
    the sanity check, and the stream is held until training starts."""

    def __init__(self, held: HeldStream):
        self.held = held

    def setup(self, trainer, pl_module, stage: str) -> None:
        from neurodyn.training.refusals import check_batch_limits

        check_batch_limits(trainer, stage)

    def on_sanity_check_start(self, trainer, pl_module) -> None:
        bar = trainer.progress_bar_callback
        if bar is not None and getattr(bar, "is_enabled", True):
            self.held.release()

    def on_train_start(self, trainer, pl_module) -> None:
        self.held.release()

    def on_validation_start(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:  # the sanity check: on_sanity_check_start
            self.held.release()

    def on_test_start(self, trainer, pl_module) -> None:
        self.held.release()

    def on_predict_start(self, trainer, pl_module) -> None:
        self.held.release()


@contextlib.contextmanager
def hold_stdout(drop_on: tuple[type[BaseException], ...] = ()):
    """Hold standard output back until the run starts (:class:`ReleaseStdout`, given the :class:`HeldStream` that
    this yields): Lightning's device banner ("GPU available: ...", "TPU available: ...") written when the Trainer
    is built, "Restoring states from the checkpoint ...", the model summary, neurodyn's notes. Bad input found
    before the run starts -- a checkpoint that does not fit the data, a ``limit_val_batches`` below one batch, a
    prediction file of some of the trials, ... -- is then the only line printed. At the end of the block what is
    still held is written (a fit with nothing left to train, ``--print_config``, before a bug's traceback or an
    interrupt's line) unless the block raised one of ``drop_on`` (bad input).

    Enter it before :func:`quiet_lightning`, which points Lightning's console handlers at ``sys.stdout``."""
    real = sys.stdout
    held = HeldStream(real)
    sys.stdout = held
    try:
        yield held
    except drop_on:
        held.drop()
        raise
    finally:
        sys.stdout = real
        held.release()
