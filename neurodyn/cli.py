"""The ``neurodyn`` command: one entry point with subcommands.

Training subcommands (``fit``, ``validate``, ``test``, ``predict``) go to the LightningCLI in
:mod:`neurodyn.training.cli`; the others are plain functions. Each subcommand module exposes
``cli_main(argv: list[str]) -> int``; modules are imported lazily so ``neurodyn --help`` is fast.

:data:`COMMANDS` is the one registry of subcommands: to add a command, write its module (argparse
commands: ``neurodyn/commands/<name>.py``) and add one line here.

One error path, here and nowhere else: bad input anywhere (a missing, truncated or non-HDF5 file, a
missing NWB field, predictions of the wrong shape, bad arguments, a bad LightningCLI config...) raises
:class:`neurodyn.errors.InputError` at the reader or parser that finds it; :func:`main` prints it as one
line, ``neurodyn <command>: error: <file>: <field>: <what is wrong>``, on stderr and returns 2. A command
that cannot finish for another reason that is not a bug (training diverged, a search with no result)
raises :class:`neurodyn.errors.CommandFailed`, printed the same way with its exit code. Any other
exception is a bug and propagates with its traceback. ``--debug`` (before or after the command) or
``NEURODYN_DEBUG=1`` prints the traceback of an InputError, CommandFailed or interrupt before that line,
with the same exit code. Ctrl-C / SIGTERM print
one line and return 128 + the signal number (:class:`neurodyn.errors.Stopped`: a run that stopped in
order and says how to resume). Outputs follow :func:`neurodyn.io.output_file`: no subcommand leaves a
partial output file behind.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import traceback
from collections.abc import Iterator

from neurodyn.errors import CommandFailed, InputError, Stopped, debug_enabled

#: subcommand -> ("module:function", one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "download": ("neurodyn.commands.download:cli_main", "download NLB datasets or dandiset assets (verified)"),
    "prepare": ("neurodyn.commands.prepare:cli_main", "bin an NLB NWB file (or folder) into nlb_tools tensors (HDF5)"),
    "simulate": ("neurodyn.commands.simulate:cli_main", "data with ground truth: Lorenz, switching GLM, NLB NWB"),
    "info": ("neurodyn.commands.info:cli_main", "summarise a data, prediction or checkpoint file, or a run folder"),
    "fit": ("neurodyn.training.cli:cli_main", "train a model (LightningCLI; --config configs/...yaml)"),
    "validate": ("neurodyn.training.cli:cli_main", "run validation of a trained model"),
    "test": ("neurodyn.training.cli:cli_main", "run the test loop of a trained model"),
    "predict": ("neurodyn.training.cli:cli_main",
                "write predictions to HDF5 (rates, latents; HMM-GLM: state posteriors, Viterbi paths, couplings)"),
    "tune": ("neurodyn.training.tune:cli_main", "hyperparameter search with Ray Tune (PBT / ASHA; the tune extra)"),
    "evaluate": ("neurodyn.commands.evaluate:cli_main", "NLB metrics (co-bps, fp-bps, vel/psth R2, tp corr)"),
    "submit": ("neurodyn.commands.submit:cli_main", "assemble an NLB/EvalAI submission file"),
    "ensemble": ("neurodyn.commands.ensemble:cli_main", "average the rates of several prediction files"),
    "baseline": ("neurodyn.commands.baseline:cli_main", "smoothing + Poisson GLM baseline -> NLB prediction file"),
    "plot": ("neurodyn.commands.plot:cli_main", "plot a prediction file"),
    "demo": ("neurodyn.demo:cli_main", "the main job on an embedded default (what `make demo` runs)"),
}

TRAINING = {"fit", "validate", "test", "predict"}
#: commands run whole under neurodyn.io.output.command_interrupts: SIGTERM is one line and exit 143 also before
#: an output file is opened (the DANDI lookup of download, info dandi://, prepare --nwb dandi://), not a
#: silent kill, and also when its exception was swallowed in h5py's callbacks; tune: also while it imports Ray and
#: builds the model, before its run folder exists
SIGTERM_AS_INTERRUPT = {"download", "info", "prepare", "demo", "simulate", "tune"}
#: ... and Ctrl-C too, recorded: the demo trains through Lightning, which turns a signal that raises inside its fit
#: into ``sys.exit(1)`` (the demo exited 0 on SIGTERM, Lightning's orderly stop, or 1 on Ctrl-C, nothing said)
CTRL_C_AS_INTERRUPT = {"demo"}
#: variables a library sets in ``os.environ`` when it is first imported, for the rest of the process: a command that
#: imported it first leaves them, as the caller's own import would (:func:`process_kept`); taken away, the library,
#: which stays imported, would run without them
IMPORT_ENV = frozenset({
    # lightning.fabric: torch.cuda.is_available() asks NVML rather than starting CUDA, which a process forked later
    # (ddp_fork, DataLoader workers) could not use (pytorch/pytorch#83973); USE_LIBUV: Windows (pytorch/pytorch#139990)
    "PYTORCH_NVML_BASED_CUDA_CHECK", "USE_LIBUV",
    # scikit-learn (the NLB metrics), for the OpenMP runtimes it loads when first used: two in one process abort it
    # unless KMP_DUPLICATE_LIB_OK is set (macOS, where torch brings its own)
    "KMP_DUPLICATE_LIB_OK", "KMP_INIT_AT_FORK",
})


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: neurodyn [--debug] <command> [options]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "`neurodyn <command> --help` describes each command.",
              "--debug (or NEURODYN_DEBUG=1): show the traceback of an error."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the ``neurodyn`` command line; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug_enabled(argv)
    argv = [arg for arg in argv if arg != "--debug"]  # global flag: before or after the command
    if argv and argv[0] in {"-h", "--help"}:
        print(_usage())
        return 0
    if not argv:  # bad arguments, as an unknown command is: one line, exit 2 (the usage is --help's)
        print(f"neurodyn: error: no command given (commands: {', '.join(COMMANDS)}; `neurodyn --help` describes "
              "them)", file=sys.stderr)
        return 2
    if argv[0] == "--version":
        from neurodyn import __version__

        print(__version__)
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"neurodyn: error: unknown command '{command}' (commands: {', '.join(COMMANDS)})", file=sys.stderr)
        return 2
    target, _ = COMMANDS[command]
    module_name, func_name = target.split(":")
    try:
        from neurodyn.io.output import terminate_as_interrupt
        from neurodyn.training import random_states_kept

        # random_states_kept: every command leaves the caller's global generators (torch, NumPy's legacy one,
        # Python's random) as it found them -- what training seeds and draws, and what a first import draws (rich,
        # imported by the modules of info, simulate, fit, ..., draws from Python's random when it loads); process_kept:
        # and its environment (what a DDP launcher sets) and exception hooks
        with process_kept(), random_states_kept():
            with terminate_as_interrupt():  # a signal while the command's modules load (seconds: torch): one line
                func = getattr(importlib.import_module(module_name), func_name)
            if command in TRAINING:
                return int(func([command, *rest]) or 0)
            if command in SIGTERM_AS_INTERRUPT:  # a SIGTERM before any output is opened (a DANDI lookup): one line
                from neurodyn.io.output import command_interrupts

                with command_interrupts(ctrl_c=command in CTRL_C_AS_INTERRUPT):
                    return int(func(rest) or 0)
            return int(func(rest) or 0)
    except (InputError, CommandFailed) as err:
        if debug:
            traceback.print_exc()
        if not (command in TRAINING and _left_to_launcher(err)):
            print(f"neurodyn {command}: error: {err}", file=sys.stderr)
        return getattr(err, "exit_code", 2)
    except Stopped as stop:  # an orderly stop on a signal: what was kept and how to go on
        if not (command in TRAINING and _later_process()):
            print(f"neurodyn {command}: {stop.message}", file=sys.stderr)
        return 128 + stop.signum
    except SystemExit as stop:  # argparse's --help / --version inside a command
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 2)
    except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM through neurodyn.io.terminate_as_interrupt
        if debug:
            traceback.print_exc()
        signum = getattr(err, "signum", 2)
        import signal

        if not (command in TRAINING and _later_process()):  # a terminal's Ctrl-C reaches every process of a run
            print(f"neurodyn {command}: interrupted ({signal.Signals(signum).name}); nothing partial was kept",
                  file=sys.stderr)
        return 128 + signum


@contextlib.contextmanager
def process_kept() -> Iterator[None]:
    """The environment and exception hooks of the process, put back as the block found them when it ends (also on bad
    input, a signal or an error). Lightning's DDP launchers set MASTER_ADDR / MASTER_PORT (and, ``ddp``, the first
    process's LOCAL_RANK / NODE_RANK) in the environment of the process that runs the command and leave them; torch's
    ``init_process_group`` (``ddp``: the command's process is rank 0) wraps ``sys.excepthook`` in one that writes
    ``[rank0]:`` before each traceback and leaves it. A notebook or script that ran ``fit --trainer.strategy ddp_spawn``
    kept the run's port for its own later runs and handed it to every process it started; after ``ddp``, its own
    errors were printed as rank 0's. Every variable comes back as it was, and one that was not set goes, except the
    ones a first import sets for the process (:data:`IMPORT_ENV`). What the command runs inside the block is
    unchanged: it sees the environment it saw before.

    >>> with process_kept():
    ...     os.environ["NEURODYN_DOCTEST_PORT"] = "29500"
    >>> "NEURODYN_DOCTEST_PORT" in os.environ
    False
    """
    import threading

    environ = dict(os.environ)
    hooks = sys.excepthook, threading.excepthook
    try:
        yield
    finally:
        sys.excepthook, threading.excepthook = hooks
        for key in [key for key in os.environ if key not in environ and key not in IMPORT_ENV]:
            del os.environ[key]
        for key, value in environ.items():
            if os.environ.get(key) != value:
                os.environ[key] = value


def _left_to_launcher(err: InputError | CommandFailed) -> bool:
    """True in a process that ``--trainer.strategy ddp`` started (the command run again): the command's own process
    prints the one line, this one recorded the error for it (:func:`neurodyn.training.processes.leave_to_launcher`).
    Each process printed the line before, once per process."""
    from neurodyn.training.processes import leave_to_launcher

    return leave_to_launcher(err)


def _later_process() -> bool:
    """True in a process of a multi-process run other than the first (``--trainer.strategy ddp`` runs the command
    again for each; torchrun starts them): the first process says how the run stopped (each said it, once per
    process)."""
    from neurodyn.training import child_rank

    return child_rank()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
