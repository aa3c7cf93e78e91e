"""The training commands in the processes that Lightning starts itself (``ddp``, ``ddp_spawn``, ``ddp_fork``), and
a note on more processes than CPU cores.

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

With plain ``--trainer.strategy ddp`` Lightning's script launcher starts the other processes by running the
command again (``LOCAL_RANK`` 1, 2, ...), and each printed the command's one-line error itself: the same line once
per process. :class:`ScriptLauncher` takes that launcher's place: a process it starts records bad input for the
command's process (:func:`leave_to_launcher`) and prints nothing; the command's process prints its own error, or,
when its run failed for want of a process that left (a broken exchange), the error that process recorded.
Lightning's watch over the started processes ends the command's process (SIGKILL, no line, exit 137) within 5 s of
another process's failure, possibly before it has printed the error it found too, and always when only the other
process found one; now it is given time to report it (:class:`_Observer`). Processes still running when the
command's run fails are ended (they would wait for it).

Every process ends its ``torch.distributed`` process group when its run ends (:func:`process_group_ended`;
Lightning leaves a gloo group to the interpreter's exit), and under plain ``ddp`` the command's process waits for
the processes it started: one that ends with an error after the run fails the command (exit code 1).

:func:`processes_note` is the line the command prints on stderr, before the processes start, when a run on the
CPU asks for more processes than the cores it may use.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from lightning.fabric.strategies.launchers.subprocess_script import _ChildProcessObserver
from lightning.pytorch.strategies.launchers.multiprocessing import _MultiProcessingLauncher
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

from neurodyn.errors import CommandFailed, InputError
from neurodyn.io.output import Interrupted, held_locks, interrupts_raise, write_under
from neurodyn.training import child_rank
from neurodyn.training.callbacks import ResumeState, RunInterrupted, received_line
from neurodyn.training.checkpoint_index import checkpoint_folder
from neurodyn.training.quiet import HeldStream, ReleaseStdout, quiet_lightning
from neurodyn.training.refusals import input_error_of

#: the folder (set by :class:`ScriptLauncher` for the processes it starts) where they record bad input they find
ERRORS_ENV = "NEURODYN_PROCESS_ERRORS"
#: seconds between two looks at the processes a script launcher started (Lightning's period)
WATCH_S = 5.0
#: seconds the command's process is given to report the bad input another process recorded before it is ended
GRACE_S = 30.0
#: seconds the command's process waits, once its run has finished, for each process it started to end
END_S = 60.0


def record_error(folder: str | None, name: str, error: InputError | CommandFailed) -> None:
    """Write ``error`` (pickled) to ``folder/name.pickle`` for the command's process, atomically; nothing when the
    folder is gone (the command has ended)."""
    try:
        data = pickle.dumps(error)
    except Exception:  # noqa: BLE001 - an error of a class that does not pickle: its line is what counts
        kind = InputError if isinstance(error, InputError) else CommandFailed
        data = pickle.dumps(kind(str(error)) if kind is InputError else kind(str(error), error.exit_code))
    if folder is None or not os.path.isdir(folder):
        return
    path = os.path.join(folder, f"{name}.pickle")
    with open(path + ".tmp", "wb") as file:
        file.write(data)
    os.replace(path + ".tmp", path)


def recorded_error(folder: str | None, first: str | None = None) -> InputError | CommandFailed | None:
    """The error a process recorded in ``folder``: process ``first``'s if it recorded one, else the first by name."""
    if folder is None or not os.path.isdir(folder):
        return None
    names = sorted((n for n in os.listdir(folder) if n.endswith(".pickle")), key=lambda n: (n != f"{first}.pickle", n))
    for name in names:
        try:
            with open(os.path.join(folder, name), "rb") as file:
                return pickle.load(file)
        except (OSError, pickle.UnpicklingError, EOFError):
            continue
    return None


class _DropTermination(logging.Filter):
    """torch's warning that it terminates the other processes once one has failed (the failure is what the
    command reports)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(("Terminating process %s via signal SIGTERM",
                                               "Unable to shutdown process %s via SIGTERM"))


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
        self._outside = None  # shared memory: the signal the command's process received (ResumeState.outside)
        self._locks: frozenset[str] = frozenset()  # output locks the command's process holds (the prediction's)
        self._held_signals = self._started_holding = None  # signals blocked while the processes start

    @property
    def procs(self) -> list:
        return self._procs

    @procs.setter
    def procs(self, procs: list) -> None:
        # Lightning sets this as soon as ``torch.multiprocessing.start_processes`` has started every process: the
        # signals held while they started (:meth:`launch`) are delivered to the command's process from here on
        self._procs = procs
        _release_signals(getattr(self, "_held_signals", None))
        self._held_signals = None

    # -- in the command's process ---------------------------------------------------------------------
    def launch(self, function, *args, trainer=None, **kwargs):
        from torch.multiprocessing.spawn import ProcessException

        self._errors = tempfile.mkdtemp(prefix="neurodyn-processes-")
        self._handover = self._held.take() if self._held is not None else []
        self._outside = multiprocessing.get_context(self._start_method).RawValue("i", 0)
        self._locks = held_locks()
        spawn_log = logging.getLogger("torch.multiprocessing.spawn")
        quiet = _DropTermination()
        spawn_log.addFilter(quiet)
        try:
            with self._signals_passed_on(trainer):
                self._held_signals = self._started_holding = _hold_signals(self._start_method)
                return super().launch(function, *args, trainer=trainer, **kwargs)
        except ProcessException as err:
            found = self._recorded(getattr(err, "error_index", None))
            signum = found.signum if isinstance(found, Interrupted) else None if found else _ended_by_signal(err)
            if signum is not None:
                # a process stopped on a signal before its run's own handlers (a Ctrl-C while it started), or ended
                # by one: the command stops as on a second signal (not a KeyboardInterrupt: Lightning makes that an
                # exit code 1, nothing said)
                raise RunInterrupted(signum, finished_epoch=False) from err
            if found is not None:
                raise found from err
            raise
        except BaseException:
            if not self.procs and self._handover:  # no process started: nobody printed what was held
                sys.stdout.write("".join(self._handover))
                sys.stdout.flush()
            raise
        finally:
            _release_signals(self._held_signals)
            self._held_signals = None
            self._end_processes()
            spawn_log.removeFilter(quiet)
            shutil.rmtree(self._errors, ignore_errors=True)

    def _end_processes(self) -> None:
        """The processes still running when the command's process leaves :meth:`launch` are ended (SIGKILL) and
        waited for: the command has stopped (a second signal, a signal outside a fit, a failure), and they would run
        on without it -- a prediction written after the command said nothing was, a process waiting forever in the
        rendezvous for one that a Ctrl-C ended while it started, and the command's interpreter waiting for them at
        its exit (their processes are not daemons). What they wrote is the command's: a prediction's temporary file
        is removed with the output's lock (:func:`~neurodyn.io.output.hold_output`), a fit's checkpoints are written
        whole or not at all."""
        for proc in self.procs:
            if proc.is_alive():
                proc.kill()
        for proc in self.procs:
            proc.join()

    @contextlib.contextmanager
    def _signals_passed_on(self, trainer):
        """While a fit runs in the processes: a first SIGTERM / SIGINT to the command's process is said (as one
        process says it) and handed to the processes through :attr:`_outside` (each stops at the end of the epoch:
        :meth:`ResumeState._agreed_signal`); a second stops the processes at once. Before, the command's process
        died at once (exit 143, nothing said) and the processes, told by torch that it had gone (SIGINT), saved
        their epoch unseen. A terminal's Ctrl-C reaches the processes too: they stop on it as on this."""
        from lightning.pytorch.trainer.states import TrainerFn

        resume = _resume_state(trainer)
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        if resume is None or trainer is None or trainer.state.fn != TrainerFn.FITTING:
            # validate / test (predict's output already raises on both): a signal to the command's process stops
            # it as one line, and the processes with it (:meth:`_end_processes`); it killed the command's process
            # at once before (SIGTERM: nothing said), and the processes ran on without it
            with interrupts_raise():
                yield
            return

        def handle(signum, frame):
            if self._outside.value:
                raise RunInterrupted(signum, finished_epoch=False)
            self._outside.value = resume.signal = signum
            print(received_line(signum), file=sys.stderr, flush=True)

        previous = {signum: signal.signal(signum, handle) for signum in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    # -- results the first process hands back ------------------------------------------------------------
    def get_extra_results(self, trainer) -> dict:
        """Lightning's, with what :class:`ResumeState` knows at the fit's end in the first process (the signal that
        stopped the run, none if it finished anyway; ``max_epochs``, for the resume command)."""
        extra = super().get_extra_results(trainer)
        resume = _resume_state(trainer)
        if resume is not None:
            extra["neurodyn_resume"] = (resume.signal, resume.max_epochs)
        return extra

    def update_main_process_results(self, trainer, extra: dict) -> None:
        super().update_main_process_results(trainer, extra)
        resume = _resume_state(trainer)
        if resume is not None and "neurodyn_resume" in extra:
            resume.signal, resume.max_epochs = extra["neurodyn_resume"]

    def _recorded(self, first: int | None) -> InputError | CommandFailed | None:
        """The bad input a process recorded: the one that failed first, else the first that recorded one (the
        others may fail after it, their peer gone, or be terminated)."""
        return recorded_error(self._errors, None if first is None else str(first))

    # -- in each process it starts --------------------------------------------------------------------
    def _wrapping_function(self, process_idx, trainer, *args, **kwargs) -> None:
        write_under(self._locks)  # the first process writes the prediction file under the command's lock
        real = sys.stdout
        underlying = real.underlying if isinstance(real, HeldStream) else real  # ddp_fork: the command's stream
        held = HeldStream(underlying, held=self._handover if process_idx == 0 else None)
        for callback in getattr(trainer, "callbacks", None) or []:
            if isinstance(callback, ReleaseStdout):
                callback.held = held
            if isinstance(callback, ResumeState):
                callback.outside = self._outside
        sys.stdout = held
        # ddp_fork: the command's process's handlers were copied with it (one that hands a signal on to the processes,
        # or one that raises a second time); this process starts with Python's own, as a ddp_spawn process does
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            # SIGINT only: SIGTERM keeps its default action (a process waiting in the rendezvous for one that has
            # gone ends on it at once; a Python handler would wait for the rendezvous to time out)
            with interrupts_raise(sigterm=False):
                # held since the command's process started this one (inherited): delivered here
                _release_signals(getattr(self, "_started_holding", None))
                with quiet_lightning(), process_group_ended():
                    super()._wrapping_function(process_idx, trainer, *args, **kwargs)
        except KeyboardInterrupt as err:  # Ctrl-C (or SIGTERM, where it raises) before the run's own handlers
            held.drop()
            signum = getattr(err, "signum", signal.SIGINT)
            self._record(process_idx, Interrupted(signum))
            raise SystemExit(128 + signum) from None  # torch's wrapper ends a KeyboardInterrupt with exit code 0
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

    def _record(self, process_idx: int, error: InputError | CommandFailed | Interrupted) -> None:
        record_error(self._errors, str(process_idx), error)


#: the signals the command's process holds while it starts the processes of a run (:func:`_hold_signals`)
_HELD = frozenset({signal.SIGINT, signal.SIGTERM})


def _hold_signals(start_method: str) -> frozenset | None:
    """Block SIGINT and SIGTERM in the command's process (its main thread) until :func:`_release_signals`, and so
    in the processes it starts, which inherit the mask: a signal while they start is delivered once they have,
    to the command's process as it would have been, and to each process when its run begins
    (:meth:`CommandLauncher._wrapping_function`). Before, a Ctrl-C while a ``ddp_spawn`` process was importing its
    modules printed that process's KeyboardInterrupt traceback after the command's line, or left the other process
    waiting for it in the rendezvous (and the command with it), and a SIGTERM while the command's process was
    handing a process its Trainer printed ``pickle data was truncated`` there. None where nothing was blocked
    (not the main thread, or no ``pthread_sigmask``)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "pthread_sigmask"):
        return None
    if start_method in ("spawn", "forkserver"):
        # multiprocessing's resource tracker unblocks SIGINT and SIGTERM in this process once it has started its own
        # (multiprocessing/resource_tracker.py, ``ensure_running``): started first, so that it does not undo this
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    return _HELD - set(blocked)  # those that were not blocked already


def _release_signals(held) -> None:
    """Unblock the signals :func:`_hold_signals` blocked (one pending is delivered now)."""
    if held:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, held)


def _ended_by_signal(err: BaseException) -> int | None:
    """The signal (SIGINT / SIGTERM) that ended the process torch's ``ProcessExitedException`` is about, by the
    signal or by the exit code 128 + its number that a process ends with when it stopped on one; None otherwise."""
    for signum in _HELD:
        if getattr(err, "signal_name", None) == signal.Signals(signum).name or getattr(err, "exit_code", None) == \
                128 + signum:
            return int(signum)
    return None


class _Observer(_ChildProcessObserver):
    """Lightning's watch over the processes its script launcher started (every 5 s: a process that failed ends
    them all, the command's process with SIGKILL), except for a process that failed on bad input it recorded
    (:func:`leave_to_launcher`): the command's process reports that -- it finds the same input bad, or its run fails
    at its next exchange with the process that left -- so it is given :data:`GRACE_S` seconds to. Only if it is
    still running then (waiting for the process that left: a rendezvous, an exchange that waits on) are the
    processes ended here, after the recorded error's line (``neurodyn <command>: error: ...``, as the command
    prints it), with the error's exit code. :meth:`stop` ends the watch (the command's run has ended)."""

    def __init__(self, main_pid: int, child_processes, errors: str, command: str,
                 resume: ResumeState | None = None):
        super().__init__(main_pid=main_pid, child_processes=child_processes, sleep_period=WATCH_S)
        self._errors, self._command, self._grace = errors, command, GRACE_S
        self._resume = resume
        self._lock = threading.Lock()
        self._stopped = False
        self._failed_at: float | None = None

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._finished = True

    def _run(self) -> bool:
        with self._lock:
            if self._stopped:
                return True
            for proc in self._child_processes:
                proc.poll()
            failed = [i for i, proc in enumerate(self._child_processes) if proc.returncode]
            error = recorded_error(self._errors) if failed else None
            if error is None:
                return super()._run()  # all finished, still running, or a failure without a record: Lightning's
            now = time.monotonic()
            if self._failed_at is None:
                self._failed_at = now
            if now - self._failed_at < self._grace:
                return False
            for proc in self._child_processes:
                if proc.poll() is None:
                    proc.kill()
            sys.stderr.write(f"neurodyn {self._command}: error: {error}\n")
            sys.stderr.flush()
            shutil.rmtree(self._errors, ignore_errors=True)
            self._clean_up()
            os._exit(getattr(error, "exit_code", 2))  # as Lightning's SIGKILL: the command's clean-up does not run

    def _clean_up(self) -> None:
        """What the command's clean-up does on bad input, done here before ``os._exit`` (it will not run): a run
        folder the fit created and that holds no checkpoint is removed with the folders created above it, and
        the lock files the command holds (its run folder's, a prediction file's) are removed. It left them
        (``<root>/<run>/.run.lock``)."""
        from neurodyn.io.output import remove_empty_folders, remove_locks_before_exit

        with contextlib.suppress(Exception):
            resume = self._resume
            run = resume.new_run_dir if resume is not None else None
            # its checkpoints folder: checkpoints/, or the checkpoint.dirpath its config.yaml records
            if run is not None and run.is_dir() and not any(checkpoint_folder(run).glob("*.ckpt")):
                shutil.rmtree(run, ignore_errors=True)
            remove_locks_before_exit()
            if resume is not None:
                remove_empty_folders(resume.new_parents)


class ScriptLauncher(_SubprocessScriptLauncher):
    """Lightning's script launcher (``--trainer.strategy ddp``) with the training commands' errors (module
    docstring): the processes it starts record bad input in a folder (:data:`ERRORS_ENV`) and print nothing."""

    def __init__(self, launcher: _SubprocessScriptLauncher, command: str):
        super().__init__(launcher.cluster_environment, launcher.num_processes, launcher.num_nodes)
        self.procs = launcher.procs
        self._command = command

    def launch(self, function, *args, trainer=None, **kwargs):
        from lightning.fabric.utilities.distributed import _set_num_threads_if_needed

        self.cluster_environment.validate_settings(num_devices=self.num_processes, num_nodes=self.num_nodes)
        if self.cluster_environment.creates_processes_externally:  # a process started for the command, or torchrun
            _set_num_threads_if_needed(num_processes=self.num_processes)
            with process_group_ended():
                return function(*args, **kwargs)
        errors = tempfile.mkdtemp(prefix="neurodyn-processes-")
        observer = None
        try:
            os.environ[ERRORS_ENV] = errors  # copied into the environment of the processes started now
            try:
                self._call_children_scripts()
            finally:
                os.environ.pop(ERRORS_ENV, None)
            observer = _Observer(os.getpid(), self.procs, errors, self._command, _resume_state(trainer))
            observer.start()
            _set_num_threads_if_needed(num_processes=self.num_processes)
            try:
                with process_group_ended():
                    result = function(*args, **kwargs)
            except BaseException as err:
                observer.stop()
                for proc in self.procs:  # they cannot finish without this process (they would wait for it)
                    if proc.poll() is None:
                        proc.kill()
                    proc.wait()
                found = None if input_error_of(err) is not None else recorded_error(errors)
                if found is not None:  # this run failed for want of a process that found bad input
                    raise found from err
                raise
            observer.stop()
            resume = _resume_state(trainer)
            self._wait_for_processes(resume.signal if resume is not None else None)
            return result
        finally:
            if observer is not None:
                observer.stop()
            shutil.rmtree(errors, ignore_errors=True)

    def _wait_for_processes(self, stopped_by: int | None = None) -> None:
        """After the command's run has finished: wait for the processes it started to end, and fail if one did
        not end cleanly (its exit code was lost: the command returned 0 whatever it was; the command's own
        results are written then). ``stopped_by``: the signal that stopped the fit, whose exit code (128 + its
        number) every process ends with. One still running after :data:`END_S` is killed."""
        clean = (0,) if not stopped_by else (0, 128 + int(stopped_by))
        failed = []
        for rank, proc in enumerate(self.procs, start=1):
            try:
                code = proc.wait(timeout=END_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
            if code not in clean:
                failed.append(f"process {rank} ended with exit code {code}")
        if failed:
            raise CommandFailed(f"{'; '.join(failed)} after the run had finished (its results are written)",
                                exit_code=1)


@contextlib.contextmanager
def process_group_ended():
    """End this process's ``torch.distributed`` process group when the run in it ends: Lightning leaves a gloo
    group to the interpreter's exit (it destroys only NCCL groups then), whose worker threads were still running
    at exit (``gloo_tcp_loop``, ``pt_gloo_runloop``), and a process ended now and then on C++'s ``terminate
    called without an active exception`` on stderr (a fresh-clone test run: a plain-ddp ``predict``'s other
    process). torch's documentation asks each process to call ``destroy_process_group`` when it has no more
    exchanges to make (https://docs.pytorch.org/docs/stable/distributed.html#shutdown). After a failure only a
    gloo group is ended (ending it is local to the process); an NCCL group's end may wait for the others, which
    the failure may have stopped (Lightning's exit handler ends it as before)."""
    import torch.distributed as dist

    def end(failed: bool) -> None:
        if not (dist.is_available() and dist.is_initialized()):
            return
        if failed and dist.get_backend() != "gloo":
            return
        dist.destroy_process_group()

    try:
        yield
    except BaseException:
        end(failed=True)
        raise
    end(failed=False)


def _resume_state(trainer) -> ResumeState | None:
    """The fit's :class:`ResumeState` callback (None: not a training command's Trainer)."""
    return next((cb for cb in getattr(trainer, "callbacks", None) or [] if isinstance(cb, ResumeState)), None)


def leave_to_launcher(error: InputError | CommandFailed) -> bool:
    """In a process that :class:`ScriptLauncher` started (the command run again by ``--trainer.strategy ddp``):
    record ``error`` for the command's process, which prints it, and return True (this process prints nothing).
    False in any other process: it prints its error itself."""
    folder = os.environ.get(ERRORS_ENV)
    if not folder or not child_rank():
        return False
    record_error(folder, f"rank-{os.environ.get('LOCAL_RANK', '')}", error)
    return True


def use_command_launcher(trainer, held: HeldStream | None, command: str = "") -> None:
    """Put a :class:`CommandLauncher` in the place of the Trainer's multiprocessing launcher, or a
    :class:`ScriptLauncher` in the place of its script launcher, if it has one."""
    strategy = trainer.strategy
    launcher = getattr(strategy, "_launcher", None)
    if isinstance(launcher, _MultiProcessingLauncher) and not isinstance(launcher, CommandLauncher):
        strategy._launcher = CommandLauncher(launcher, held)
    elif isinstance(launcher, _SubprocessScriptLauncher) and not isinstance(launcher, ScriptLauncher):
        strategy._launcher = ScriptLauncher(launcher, command)


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
