"""Callbacks of the training harness that keep a run going across restarts.

- :class:`ResumeState`: every random state training consumes goes into the checkpoint and comes back
  on resume (exact resume); a first SIGTERM / SIGINT finishes the current epoch, saves and stops.
- :class:`EpochTimer`: ``trainer.max_time``, checked at epoch ends, so its stop is an exact resume point too.
- :class:`EpochLog`: one log line per epoch with the monitored metrics (when stdout is not a terminal).
- :class:`ResumableCSVLogger`: a ``metrics.csv`` that a resumed fit continues.

Checkpoint writing and checking: :mod:`neurodyn.training.checkpoints`; NLB evaluation during training and
``neurodyn predict`` output files: :mod:`neurodyn.training.predictions`.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sys
import time
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.callbacks import Timer
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from neurodyn.io import atomic_path
from neurodyn.training import restore_environ


# -- random states ------------------------------------------------------------------------------------
def _generators(obj) -> dict[str, torch.Generator]:
    """Every ``torch.Generator`` held as an attribute of ``obj`` or of its submodules."""
    found: dict[str, torch.Generator] = {}
    if obj is None:
        return found
    items = obj.named_modules() if isinstance(obj, torch.nn.Module) else [("", obj)]
    for prefix, item in items:
        for name, value in vars(item).items():
            if isinstance(value, torch.Generator):
                found[f"{prefix}.{name}" if prefix else name] = value
    return found


def capture_random_state(pl_module: pl.LightningModule | None = None, datamodule=None) -> dict:
    """Torch (CPU and CUDA), numpy, python and owned ``torch.Generator`` states; loadable with ``weights_only``."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, py_state, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"kind": str(kind), "keys": torch.as_tensor(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": int(version), "state": list(py_state), "gauss_next": gauss_next},
        "model_generators": {k: g.get_state() for k, g in _generators(pl_module).items()},
        "data_generators": {k: g.get_state() for k, g in _generators(datamodule).items()},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_random_state(state: dict, pl_module: pl.LightningModule | None = None, datamodule=None) -> None:
    """Inverse of :func:`capture_random_state`."""
    torch.set_rng_state(state["torch"])
    npy = state["numpy"]
    np.random.set_state((npy["kind"], npy["keys"].numpy().astype(np.uint32), npy["pos"], npy["has_gauss"],
                         npy["gauss"]))
    py = state["python"]
    random.setstate((py["version"], tuple(py["state"]), py["gauss_next"]))
    for key, owner in (("model_generators", pl_module), ("data_generators", datamodule)):
        gens = _generators(owner)
        for name, value in state.get(key, {}).items():
            if name in gens:
                gens[name].set_state(value)
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class RandomStateInCheckpoints(pl.Callback):
    """Saves :func:`capture_random_state` in every checkpoint (``checkpoint["neurodyn_random_state"]``) and
    restores it when training resumes from that checkpoint, before the first resumed epoch draws its
    batch order, so a fit for N epochs equals a fit for k epochs resumed to N, bit for bit (``neurodyn fit``
    through :class:`ResumeState`; ``neurodyn tune``'s trials, which PBT pauses and restores every
    ``perturbation_interval`` epochs). ``restore=False`` saves them but does not restore them (a PBT trial
    that copied another trial's checkpoint keeps its own random streams, rather than repeat the donor's)."""

    def __init__(self, restore: bool = True) -> None:
        self.restore = restore

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint["neurodyn_random_state"] = capture_random_state(pl_module, trainer.datamodule)

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        state = checkpoint.get("neurodyn_random_state")
        if state is not None and self.restore and trainer.state.fn == "fit":
            # The checkpoint is restored before the sanity check (which runs under isolate_rng) and before
            # the training loop creates the first resumed epoch's data iterator; nothing in between draws.
            restore_random_state(state, pl_module, trainer.datamodule)


class EpochTimer(Timer):
    """``trainer.max_time`` as ``neurodyn fit`` applies it: Lightning's ``Timer`` checked at the end of each training
    epoch, so the fit stops at the end of the epoch in which the time ran out (up to one epoch past it).

    Lightning's own, made from ``Trainer(max_time=...)``, checks after every batch and stopped mid-epoch; the
    epoch-end hooks then ran as if the epoch had finished, so ``last.ckpt`` held part of an epoch as a whole one
    and a resume went on with the next epoch: not the run that would have trained straight through. Its state
    (the training time used, in the checkpoint under Lightning's key ``Timer``) carries over a resume as
    Lightning's does: ``max_time`` is the run's training time in all. ``verbose`` is off: :class:`ResumeState`
    says what the stop means for the run instead."""

    def __init__(self, duration) -> None:
        super().__init__(duration=duration, interval="epoch", verbose=False)
        self.limit = self.time_remaining()  #: the duration in seconds (none used yet)

    @property
    def state_key(self) -> str:
        return "Timer"  # Lightning's Timer's key: a checkpoint of either restores the time used


def max_time_seconds(duration) -> float | None:
    """A ``trainer.max_time`` (``DD:HH:MM:SS``, a mapping of ``timedelta`` fields such as ``{hours: 12}``, a
    ``timedelta``) in seconds, as Lightning's Timer reads it; None for none. One it cannot read is an
    :class:`~neurodyn.errors.InputError` of ``trainer.max_time`` (Lightning raised a MisconfigurationException for a
    bad string, a TypeError for a bad mapping, an OverflowError for a huge one).

    >>> max_time_seconds("00:01:00:30"), max_time_seconds({"minutes": 2}), max_time_seconds(None)
    (3630.0, 120.0, None)
    >>> max_time_seconds({"hourz": 1})
    Traceback (most recent call last):
    ...
    neurodyn.errors.InputError: trainer.max_time: {'hourz': 1} is not a duration; give DD:HH:MM:SS ...
    """
    if duration is None:
        return None
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    from neurodyn.errors import InputError

    try:
        return float(Timer(duration=duration).time_remaining())
    except (MisconfigurationException, TypeError, ValueError, OverflowError):
        raise InputError(f"{duration!r} is not a duration; give DD:HH:MM:SS (days:hours:minutes:seconds, e.g. "
                         "00:12:00:00), a mapping such as {hours: 12}, or null for none",
                         field="trainer.max_time") from None


def format_duration(seconds: float) -> str:
    """Seconds as Lightning's ``max_time`` format ``DD:HH:MM:SS`` (whole seconds, rounded down).

    >>> format_duration(93784.9)
    '01:02:03:04'
    """
    rest = int(seconds)
    days, rest = divmod(rest, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days:02d}:{hours:02d}:{minutes:02d}:{secs:02d}"


def _min_limits_met(trainer: pl.Trainer) -> bool:
    """Whether ``trainer.min_epochs`` and ``trainer.min_steps`` are done: until then Lightning trains on though
    ``trainer.should_stop`` is set (by ``EarlyStopping``, the ``max_time`` Timer)."""
    loop = trainer.fit_loop
    epochs = not loop.min_epochs or loop.epoch_progress.current.processed >= loop.min_epochs
    steps = not loop.min_steps or trainer.global_step >= loop.min_steps
    return epochs and steps


#: :func:`fit_end_reached`'s reason when ``trainer.max_time`` ended the fit
MAX_TIME_USED_UP = "trainer.max_time used up"


def fit_end_reached(trainer: pl.Trainer) -> str | None:
    """What ended a fit by its own rules, read when training ends (``on_train_end``): ``trainer.max_steps``,
    ``trainer.max_epochs``, an ``EarlyStopping`` that stopped on the last epoch, or ``trainer.max_time`` used
    up (Lightning's ``Timer``); None when none did (a stop request alone, such as a signal's). Early stopping
    and ``max_time`` count only once ``trainer.min_epochs`` / ``min_steps`` are done: before, Lightning would
    have trained on."""
    from lightning.pytorch.callbacks import EarlyStopping

    loop = trainer.fit_loop
    if loop.max_steps not in (None, -1) and trainer.global_step >= loop.max_steps:
        return f"trainer.max_steps={loop.max_steps} reached"
    if loop.max_epochs not in (None, -1) and loop.epoch_progress.current.processed >= loop.max_epochs:
        return f"trainer.max_epochs={loop.max_epochs} reached"
    if not _min_limits_met(trainer):
        return None
    last = loop.epoch_progress.current.processed - 1  # the epoch that just ended
    for cb in trainer.callbacks:
        if isinstance(cb, EarlyStopping) and cb.stopped_epoch == last:
            reason = getattr(cb, "stopping_reason", None)  # Lightning >= 2.6; before, stopped_epoch alone
            if (reason is None and last > 0) or (reason is not None and reason.name != "NOT_STOPPED"):
                return f"EarlyStopping on {cb.monitor} stopped it"
        if isinstance(cb, Timer):
            remaining = cb.time_remaining()
            if remaining is not None and remaining <= 0:
                return MAX_TIME_USED_UP
    return None


class ResumeState(RandomStateInCheckpoints):
    """Exact resume (:class:`RandomStateInCheckpoints`) and clean interrupts.

    While fitting, a first SIGTERM or SIGINT lets the current epoch finish (its checkpoint is an exact
    resume point), then stops, also before ``trainer.min_epochs`` / ``min_steps`` are done (Lightning ignores
    ``trainer.should_stop`` until then; the limits are lifted for the rest of this fit only, and a resume
    honours them); a second one stops at once (``last.ckpt`` stays the previous epoch). A first
    one during the epoch that ends the fit anyway (:func:`fit_end_reached`: ``max_epochs``, ``max_steps``,
    ``max_time``, early stopping) leaves a finished run: :attr:`signal` is cleared (the fit exits 0, with no
    resume command, which would have nothing to train) and a line on stderr says the run finished.

    A fit that ``max_time`` stopped (:class:`EpochTimer`: at an epoch's end) before ``max_epochs`` / ``max_steps``
    is unfinished: a line on stderr says so, and that a resume needs a longer ``max_time`` (the run's training
    time in all), with the command; the fit exits 0, as a run stopped by its own limit.
    """

    def __init__(self) -> None:
        super().__init__()
        self.signal: int | None = None
        self.run_dir: Path | None = None  # set by the CLI, for the resume message
        self.new_run_dir: Path | None = None  # set by the CLI: a run folder this fit creates (not a resume)
        self.new_parents: list[Path] = []  # set by the CLI: folders above it this fit created (the root)
        self.max_epochs: int | None = None  # the fit's trainer.max_epochs, once it starts
        #: set by the CLI: the fit's length settings as given (trainer.max_epochs, min_epochs, max_steps, min_steps,
        #: max_time), which the resume command names where the run's config.yaml records others
        self.limits: dict | None = None
        self._previous: dict[int, object] = {}
        self._min_limits: tuple | None = None  # (min_epochs, min_steps) lifted by a signal, put back at the end
        #: in a process ddp_spawn / ddp_fork started: the signal number the command's process received (0: none),
        #: shared memory set by :class:`neurodyn.training.processes.CommandLauncher`
        self.outside = None

    # -- signals ------------------------------------------------------------------------------------
    def on_fit_start(self, trainer, pl_module) -> None:
        self.signal = None
        self.max_epochs = trainer.max_epochs  # for the resume command a stop prints

    def on_train_start(self, trainer, pl_module) -> None:
        """Install the handlers once training starts: after Lightning's own SIGTERM handler (registered
        after ``on_fit_start``), which would otherwise stop the run after the next batch, mid-epoch,
        with nothing saved; Lightning restores the handlers it found when the fit ends."""
        import threading

        if threading.current_thread() is not threading.main_thread():
            return
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.signal is not None:
            raise RunInterrupted(signum, finished_epoch=False)
        self.signal = signum
        import multiprocessing

        from neurodyn.training import child_rank

        if multiprocessing.parent_process() is not None or child_rank():
            # a process the command started (ddp_spawn / ddp_fork: the command's process says it, and torch ends
            # such a process with SIGTERM when another failed, whose one line the command prints; plain ddp: the
            # command's process is the first of the run): its line would be a second one, or a false one
            return
        print(received_line(signum), file=sys.stderr, flush=True)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        signum = self._agreed_signal(trainer)
        if signum:
            self.signal = self.signal or signum
            trainer.should_stop = True
            # Lightning honours should_stop only once min_epochs / min_steps are done (it trained on to
            # min_epochs after the first signal): lifted for the rest of this fit; no checkpoint records them
            # (a resume takes them from the run's config), and on_train_end puts them back
            loop = trainer.fit_loop
            if self._min_limits is None:
                self._min_limits = (loop.min_epochs, loop.epoch_loop.min_steps)
            loop.min_epochs, loop.epoch_loop.min_steps = 0, None

    def _agreed_signal(self, trainer) -> int:
        """The signal that stops the fit at this epoch's end (0: none): this process's own, the one the command's
        process received (ddp_spawn / ddp_fork: :attr:`outside`, which the processes share), and, in a run of
        several processes, any process's (the largest number), so that every process stops at the same epoch's
        end. Without that, a signal to the command's process alone (``kill``, a scheduler's) stopped it while the
        others trained on and failed at their next exchange with it (a traceback, exit code 1)."""
        signum = self.signal or (self.outside.value if self.outside is not None else 0) or 0
        if trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            agreed = torch.tensor([signum], dtype=torch.int64, device=trainer.strategy.root_device)
            torch.distributed.all_reduce(agreed, op=torch.distributed.ReduceOp.MAX)
            signum = int(agreed.item())
        return signum

    def on_train_end(self, trainer, pl_module) -> None:
        # here, not on_fit_end: Lightning restores the handlers it found before on_fit_end, and putting its
        # own (saved at on_train_start) back after that would leave them installed past the fit
        self._restore_handlers()
        self._restore_min_limits(trainer)
        reached = fit_end_reached(trainer)
        if reached is not None and self.signal is not None:  # the run ended by its own rules: exit 0
            name = signal.Signals(self.signal).name
            self.signal = None
            if trainer.is_global_zero and reached == MAX_TIME_USED_UP:  # followed by the line on max_time
                print(f"{name} arrived during the last epoch: the run stopped there anyway ({reached})",
                      file=sys.stderr, flush=True)
            elif trainer.is_global_zero:  # finished, nothing to resume
                print(f"{name} arrived during the last epoch: the run finished ({reached}); nothing to resume",
                      file=sys.stderr, flush=True)
        timer = next((cb for cb in trainer.callbacks if isinstance(cb, Timer)), None)
        if reached == MAX_TIME_USED_UP and isinstance(timer, EpochTimer) and trainer.is_global_zero:
            print(self._time_used_up(trainer, timer), file=sys.stderr, flush=True)

    def _time_used_up(self, trainer, timer: EpochTimer) -> str:
        """What a stop on ``max_time`` (before ``max_epochs`` / ``max_steps``) leaves, and how to train on. (A Timer
        callback of the user's own, checked after every batch by default, may stop mid-epoch: nothing is said.)"""
        done = trainer.fit_loop.epoch_progress.current.processed
        total = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
        line = (f"trainer.max_time {format_duration(timer.limit)} used up after epoch {done}{total} "
                f"({format_duration(timer.time_elapsed())} of training): the run stopped unfinished at that epoch's "
                "end, an exact resume point")
        if self.run_dir is None:
            return line
        from neurodyn.training.runs import resume_command

        return (f"{line}; max_time counts the run's training time in all, so train on with a longer one: "
                f"{resume_command(self.run_dir, self.resume_limits(), leave_out=('max_time',))} "
                "--trainer.max_time DD:HH:MM:SS (or null for none)")

    def resume_limits(self) -> dict:
        """The length settings the resume command compares with the run's config.yaml (:attr:`limits`; without
        them, the Trainer's ``max_epochs``)."""
        return self.limits if self.limits is not None else {"max_epochs": self.max_epochs}

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._restore_handlers()
        self._restore_min_limits(trainer)

    def _restore_min_limits(self, trainer) -> None:
        if self._min_limits is not None:
            trainer.fit_loop.min_epochs, trainer.fit_loop.epoch_loop.min_steps = self._min_limits
            self._min_limits = None

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}


def received_line(signum: int) -> str:
    """What a fit prints on stderr when a first signal arrives."""
    name = signal.Signals(signum).name
    return (f"received {name}: finishing this epoch to save an exact resume point "
            f"(send {name} again to stop at once)")


class RunInterrupted(Exception):
    """A fit stopped by a signal (the second one, or one that arrived outside an epoch)."""

    def __init__(self, signum: int, finished_epoch: bool):
        self.signum = signum
        self.finished_epoch = finished_epoch
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


class EpochLog(pl.Callback):
    """One line per epoch on stdout with the logged train / valid / nlb metrics and the epoch's seconds.

    Used instead of a progress bar when stdout is not a terminal (nohup, SLURM, CI), so a log file shows
    progress as it happens.
    """

    def __init__(self) -> None:
        self._start = time.perf_counter()
        self._validated: int | None = None  # the epoch whose validation ran last

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self._validated = trainer.current_epoch

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        # validation metrics only on the epochs that computed them (check_val_every_n_epoch > 1 keeps the
        # last values in callback_metrics, which would read as if measured every epoch)
        prefixes = ("train/", "valid/", "nlb/") if self._validated == trainer.current_epoch else ("train/",)
        shown = []
        for key in sorted(metrics):
            if key.startswith(prefixes) and not key.endswith(("_step", "weight_decay")):
                value = metrics[key]
                value = float(value.item() if isinstance(value, torch.Tensor) else value)
                shown.append(f"{key} {value:.5g}")
        total = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else "?"
        seconds = time.perf_counter() - self._start
        print(f"epoch {trainer.current_epoch + 1}/{total}  " + "  ".join(shown) + f"  ({seconds:.1f} s)",
              flush=True)


# -- a CSV log that survives a resume -------------------------------------------------------------------


class _ResumingWriter(ExperimentWriter):
    def __init__(self, log_dir: str, keep_before_epoch: int | None) -> None:
        self._keep_before_epoch = keep_before_epoch
        super().__init__(log_dir)

    def _check_log_dir_exists(self) -> None:
        if self._keep_before_epoch is None or not os.path.isfile(self.metrics_file_path):
            return super()._check_log_dir_exists()
        import csv

        with open(self.metrics_file_path, newline="") as f:
            reader = csv.DictReader(f)
            fields = list(reader.fieldnames or [])
            rows = [r for r in reader if r.get("epoch", "") != "" and int(r["epoch"]) < self._keep_before_epoch]
        with atomic_path(self.metrics_file_path) as tmp:
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=fields)
                writer.writeheader()
                writer.writerows(rows)
        self.metrics_keys = fields


class ResumableCSVLogger(CSVLogger):
    """Lightning's CSVLogger, except that a resumed fit keeps ``metrics.csv``.

    Lightning deletes an existing ``metrics.csv`` when a logger opens its folder; neurodyn resumes a run in
    its own folder, so the rows of the epochs before the resume point are kept (rows of later epochs, e.g.
    from an interrupted epoch or when resuming from an earlier checkpoint, are dropped) and the new
    epochs are appended: the file of a resumed run equals that of an uninterrupted one.
    """

    #: set by the CLI before a resumed fit: first epoch that will be trained again
    keep_before_epoch: int | None = None

    @property
    @rank_zero_experiment
    def experiment(self):
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _ResumingWriter(self.log_dir, self.keep_before_epoch)
        return self._experiment


class ParameterSummary(pl.callbacks.ModelSummary):
    """Lightning's model summary (layers, parameters, size, train/eval modules) printed as a plain table,
    without the FLOPs column and total when they were not measured.

    Lightning counts FLOPs only by running ``example_input_array`` through the model; neurodyn's modules
    have none (a batch is a dict of trial tensors), so Lightning printed ``FLOPs 0`` per layer and
    ``Total FLOPs: 0``, which reads as a measurement. ``fit`` adds this callback unless the configuration
    gives a ModelSummary of its own or ``--trainer.enable_model_summary false``.
    """

    @staticmethod
    def summarize(summary_data, total_parameters, trainable_parameters, model_size, total_training_modes=None,
                  total_flops=0, **summarize_kwargs) -> None:
        # total_training_modes and total_flops have defaults: Lightning before 2.3 / 2.6 passes neither
        from lightning.pytorch.utilities.model_summary.model_summary import (
            get_formatted_model_size,
            get_human_readable_count,
        )

        columns = [(name, values) for name, values in summary_data if name != "FLOPs" or total_flops]
        widths = [max([len(name), *(len(str(v)) for v in values)]) for name, values in columns]
        rows = [[name for name, _ in columns]] + [list(row) for row in zip(*(values for _, values in columns))]
        lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "-" * len(lines[0]))
        totals = [("trainable params", get_human_readable_count(trainable_parameters)),
                  ("non-trainable params", get_human_readable_count(total_parameters - trainable_parameters)),
                  ("total params", get_human_readable_count(total_parameters)),
                  ("estimated size of the parameters (MB)", get_formatted_model_size(model_size))]
        if total_training_modes:
            totals.append(("modules in train / eval mode",
                           f"{total_training_modes['train']} / {total_training_modes['eval']}"))
        if total_flops:
            totals.append(("total FLOPs", get_human_readable_count(total_flops)))
        print("\n".join(lines + [f"{value:>10}  {name}" for name, value in totals]), flush=True)


def flush_denormals() -> None:
    """Flush subnormal floats (``|x| < 1.2e-38`` in float32) to zero in this process's CPU arithmetic
    (``torch.set_flush_denormal``; x86 with SSE3 and ARM, a no-op elsewhere). Called by every training entry
    point (``fit`` / ``validate`` / ``test`` / ``predict``, ``tune`` trials, the recipes, the demo).

    Why: weights that training drives towards zero end up subnormal (after the 600 epochs of
    ``configs/langevinflow/dmfc_rsg_cpu.yaml``, 15 % of the parameters, in the decoder's attention and
    feed-forward layers), and CPUs handle subnormal operands in microcode, tens of times slower: that fit's
    epochs slowed from 0.3 s to 1.3 s after epoch 300, 578 s in all, 264 s with subnormals flushed, the same
    metrics to the 5 digits logged (largest weight difference 9e-31). GPUs flush them in their kernels
    already. A notebook that trains through Lightning directly can call this function too (it stays on for the rest
    of the thread: :func:`denormals_flushed` puts the caller's setting back after a block).
    """
    import torch

    torch.set_flush_denormal(True)


def flushing_denormals() -> bool:
    """Whether this thread's CPU arithmetic flushes subnormal floats to zero now (torch has no getter: half the
    smallest normal float32 is 0 when it does)."""
    import torch

    tiny = torch.tensor(torch.finfo(torch.float32).tiny, dtype=torch.float32)
    return (tiny / 2).item() == 0.0


#: the environment variables Lightning sets for a run in the command's own process: ``trainer.deterministic``
#: (CUBLAS_WORKSPACE_CONFIG), the ``ddp`` launcher (OMP_NUM_THREADS, with torch's threads)
_TORCH_ENV = ("CUBLAS_WORKSPACE_CONFIG", "OMP_NUM_THREADS")


@contextlib.contextmanager
def torch_settings_kept():
    """The process-wide torch settings a run changes, put back as they were when the block ends: deterministic
    algorithms (Lightning's ``Trainer(deterministic=...)`` switches them on or off and leaves them), cuDNN's
    benchmark mode (``benchmark``, or ``deterministic``), torch's intra-op threads and the variables of
    :data:`_TORCH_ENV`. A notebook or script that ran a training command in its own process kept the run's: after
    ``--trainer.deterministic true`` a later operation without a deterministic kernel raised, and the demo's
    ``deterministic=False`` switched off a caller's own."""
    import torch

    algorithms = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled())
    benchmark = torch.backends.cudnn.benchmark
    threads = torch.get_num_threads()
    env = {key: os.environ.get(key) for key in _TORCH_ENV}
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(algorithms[0], warn_only=algorithms[1])
        torch.backends.cudnn.benchmark = benchmark
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        restore_environ(env)


@contextlib.contextmanager
def float32_default():
    """torch's default dtype float32, a fresh process's, for the block, then the caller's back: a training command
    builds its model and data as in its own process (Lightning's ``trainer.precision`` chooses another). A notebook
    that had set ``torch.set_default_dtype(torch.float64)`` made ``main(["fit", ...])`` build float64 weights: a
    LangevinFlow fit failed with a traceback (its float32 batches against the float64 GRU), an HMM-GLM fit trained
    other weights than the command in a shell."""
    import torch

    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


@contextlib.contextmanager
def denormals_flushed():
    """:func:`flush_denormals` for the block, then the caller's setting back. What the training entry points use
    (``fit`` / ``validate`` / ``test`` / ``predict``, the recipes, the demo): the setting is the thread's, and it
    reaches NumPy and plain Python floats too (``1e-300 * 1e-10`` is 0.0 while it is on), so a notebook or script
    that ran a command in its own process kept computing with subnormals flushed after it."""
    import torch

    before = flushing_denormals()
    flush_denormals()
    try:
        yield
    finally:
        torch.set_flush_denormal(before)
