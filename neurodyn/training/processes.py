"""The training commands in the processes that Lightning starts itself (``ddp_spawn``, ``ddp_fork``), and a note
on more processes than CPU cores.

With ``--trainer.strategy ddp_spawn`` (new interpreters, given the pickled Trainer) or ``ddp_fork``, Lightning's
multiprocessing launcher runs the fit / validate / test / predict in other processes and torch hands the command
only the text of a failed process's traceback (``ProcessRaisedException``). Bad input that only the run itself
finds -- a ``checkpoint.monitor`` no validation logs, a prepared file whose evaluation targets do not fit, a
``limit_val_batches`` below one batch of a rank's share -- was that traceback and exit code 1, and a spawned
process ran without the command's quiet logging (Lightning's tips and warnings on stderr) and with its standard
output not held. :class:`CommandLauncher` takes the launcher's place and keeps the command's contract there:

- each process holds its standard output until the run starts (:class:`~neurodyn.training.quiet.ReleaseStdout`)
  under :func:`~neurodyn.training.quiet.quiet_lightning`; the first process prints what the command held before
  the processes started (Lightning's banner, notes), so a run prints what one process prints, in that order;
- bad input (an :class:`~neurodyn.errors.InputError`, a :class:`~neurodyn.errors.CommandFailed`, Lightning's
  refusals: :func:`~neurodyn.training.refusals.input_error_of`) is recorded by the process that found it, which
  prints nothing; the command raises it, so it is one line and exit code 2, with the process's traceback
  before it only with ``--debug``. Anything else is a bug: its traceback, as before.

:func:`processes_note` is the line the command prints on stderr, before the processes start, when a run on the
CPU asks for more processes than the cores it may use.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import sys
import tempfile

from lightning.pytorch.strategies.launchers.multiprocessing import _MultiProcessingLauncher

from neurodyn.errors import CommandFailed, InputError
from neurodyn.training.quiet import HeldStream, ReleaseStdout, quiet_lightning
from neurodyn.training.refusals import input_error_of


class _DropTermination(logging.Filter):
    """torch's warning that it terminates the other processes once one has failed (the failure is what the
    command reports)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Terminating process %s via signal SIGTERM")


class CommandLauncher(_MultiProcessingLauncher):
    """Lightning's multiprocessing launcher (``ddp_spawn`` / ``ddp_fork``) with the training commands' output
    and errors (module docstring). ``held``: the command's held standard output, handed to the first process."""

    def __init__(self, launcher: _MultiProcessingLauncher, held: HeldStream | None):
        super().__init__(launcher._strategy, start_method=launcher._start_method)
        self.procs = launcher.procs
        self._already_fit = launcher._already_fit
        self._held = held
        self._handover: list[str] = []  # what the command held, printed by the first process
        self._errors: str | None = None  # a folder: each process that finds bad input records it there

    # -- in the command's process ---------------------------------------------------------------------
    def launch(self, function, *args, trainer=None, **kwargs):
        from torch.multiprocessing.spawn import ProcessException

        self._errors = tempfile.mkdtemp(prefix="neurodyn-processes-")
        self._handover = self._held.take() if self._held is not None else []
        spawn_log = logging.getLogger("torch.multiprocessing.spawn")
        quiet = _DropTermination()
        spawn_log.addFilter(quiet)
        try:
            return super().launch(function, *args, trainer=trainer, **kwargs)
        except ProcessException as err:
            found = self._recorded(getattr(err, "error_index", None))
            if found is not None:
                raise found from err
            raise
        except BaseException:
            if not self.procs and self._handover:  # no process started: nobody printed what was held
                sys.stdout.write("".join(self._handover))
                sys.stdout.flush()
            raise
        finally:
            spawn_log.removeFilter(quiet)
            shutil.rmtree(self._errors, ignore_errors=True)

    def _recorded(self, first: int | None) -> InputError | CommandFailed | None:
        """The bad input a process recorded: the one that failed first, else the first that recorded one (the
        others may fail after it, their peer gone, or be terminated)."""
        names = sorted(os.listdir(self._errors), key=lambda n: (n != f"{first}.pickle", n))
        for name in names:
            if name.endswith(".pickle"):
                with open(os.path.join(self._errors, name), "rb") as file:
                    return pickle.load(file)
        return None

    # -- in each process it starts --------------------------------------------------------------------
    def _wrapping_function(self, process_idx, trainer, *args, **kwargs) -> None:
        real = sys.stdout
        underlying = real.underlying if isinstance(real, HeldStream) else real  # ddp_fork: the command's stream
        held = HeldStream(underlying, held=self._handover if process_idx == 0 else None)
        for callback in getattr(trainer, "callbacks", None) or []:
            if isinstance(callback, ReleaseStdout):
                callback.held = held
        sys.stdout = held
        try:
            with quiet_lightning():
                super()._wrapping_function(process_idx, trainer, *args, **kwargs)
        except BaseException as err:
            error = input_error_of(err)
            if error is None:  # a bug: what was held comes before its traceback
                held.release()
                raise
            held.drop()
            self._record(process_idx, error)
            raise
        else:
            held.release()
        finally:
            sys.stdout = real

    def _record(self, process_idx: int, error: InputError | CommandFailed) -> None:
        try:
            data = pickle.dumps(error)
        except Exception:  # noqa: BLE001 - an error of a class that does not pickle: its line is what counts
            kind = InputError if isinstance(error, InputError) else CommandFailed
            data = pickle.dumps(kind(str(error)) if kind is InputError else kind(str(error), error.exit_code))
        if self._errors is None or not os.path.isdir(self._errors):
            return
        path = os.path.join(self._errors, f"{process_idx}.pickle")
        with open(path + ".tmp", "wb") as file:
            file.write(data)
        os.replace(path + ".tmp", path)


def use_command_launcher(trainer, held: HeldStream | None) -> None:
    """Put a :class:`CommandLauncher` in the place of the Trainer's multiprocessing launcher, if it has one."""
    strategy = trainer.strategy
    launcher = getattr(strategy, "_launcher", None)
    if isinstance(launcher, _MultiProcessingLauncher) and not isinstance(launcher, CommandLauncher):
        strategy._launcher = CommandLauncher(launcher, held)


def cpu_cores() -> int:
    """The CPU cores this process may run on (its affinity; the machine's count where that is unknown)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def processes_note(trainer) -> str | None:
    """A note when a run on the CPU starts more processes (``trainer.devices``) on this machine than it has
    cores: Lightning and torch allow it, and it has its uses (a run with the process count of another machine:
    the data are split by the number of processes), so it is said, not refused."""
    from lightning.pytorch.accelerators import CPUAccelerator

    if not isinstance(trainer.accelerator, CPUAccelerator):
        return None
    processes, cores = int(trainer.num_devices), cpu_cores()
    if processes <= cores:
        return None
    on = f"{cores} CPU cores (accelerator cpu) share them" if cores > 1 else "1 CPU core (accelerator cpu) share it"
    fewer = f"{cores} or fewer" if cores > 1 else "1"
    return (f"note: trainer.devices: {processes} processes on {on}, each with its own copy of the data and the model; "
            f"--trainer.devices {fewer} gives each process a core")
