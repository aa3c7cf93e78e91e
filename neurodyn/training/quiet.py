"""Lightning's noise, silenced where neurodyn trains: ``neurodyn fit | validate | test | predict`` and
``neurodyn demo`` (:func:`quiet_lightning`).

Only known messages are dropped, each by its own pattern (advertising tips, a deprecation inside Lightning
itself, the logging interval; for the training commands also warnings about situations they create on purpose);
every other warning and log line -- a NaN loss, a bad setting -- still shows.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import warnings

#: Lightning's info lines that carry no information for a neurodyn user (advertising; the seed, which
#: config.yaml records, was printed on stderr before any error line)
_QUIET_INFO = ("💡 Tip", "Seed set to")
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


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).lstrip().startswith(_QUIET_INFO)


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
                                                     "lightning.fabric.utilities.seed")]
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
