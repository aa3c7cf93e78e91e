"""The search of ``neurodyn tune``: command-line arguments, Ray Tune schedulers (PBT, ASHA), signals, and
the run folder with the best configuration and checkpoint (see :mod:`neurodyn.training.tune`)."""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from neurodyn.errors import CommandFailed, InputError
from neurodyn.io.output import _RECEIVED as _SIGNAL_RECEIVED  # one record of the signals turned into Interrupted
from neurodyn.io.output import _raise_interrupted
from neurodyn.training import restore_environ, select_split_words
from neurodyn.training.tune.results import (
    fmt,
    perturbation_columns,
    perturbation_rows,
    reported_history,
    rich_table,
    trial_rows,
    write_csv,
)
from neurodyn.training.tune.space import (
    HYPERPARAMETERS,
    apply_hyperparameters,
    check_fit_config,
    check_model,
    check_values,
    endpoints,
    get_path,
    load_search,
    read_yaml,
    set_path,
    source_of,
)
from neurodyn.training.tune.trial import (
    METRIC,
    MODE,
    build_model_and_data,
    record_select_split,
    saved_checkpoints,
    select_split,
    stack_configs,
    train_trial,
    trial_index,
    trial_name,
)


# -- the search -----------------------------------------------------------------------------------------
def _domain(spec: tuple):
    from ray import tune

    if spec[0] == "uniform":
        return tune.uniform(spec[1], spec[2])
    if spec[0] == "loguniform":
        return tune.loguniform(spec[1], spec[2])
    if spec[0] == "choice":
        return tune.choice(list(spec[1]))
    return spec[1]


def _clip_to_space(space: dict):
    """PBT's explore multiplies by 0.8 / 1.2 without bounds; keep every value inside its search range."""

    def explore(config: dict) -> dict:
        for name, spec in space.items():
            if spec[0] in ("uniform", "loguniform") and name in config:
                config[name] = float(min(max(config[name], spec[1]), spec[2]))
        return config

    return explore


def _scheduler(kind: str, search: dict, epochs: int, seed: int):
    from ray.tune.schedulers import ASHAScheduler

    from neurodyn.training.tune.pbt import seeded_pbt

    space = search["space"]
    if kind == "asha":
        opts = search["asha"]
        grace = opts.get("grace_period", max(1, epochs // 10))
        return ASHAScheduler(time_attr="training_iteration", max_t=epochs, grace_period=min(grace, epochs),
                             reduction_factor=opts.get("reduction_factor", 3))
    opts = dict(search["pbt"])
    mutations = {name: _domain(spec) for name, spec in space.items() if _perturbable(name, spec)}
    interval = opts.pop("perturbation_interval", max(1, epochs // 10))
    # synch: every trial reaches the perturbation epoch before any exploits, as in AutoLFADS's generations
    return seeded_pbt(
        seed, time_attr="training_iteration", perturbation_interval=interval, hyperparam_mutations=mutations,
        custom_explore_fn=_clip_to_space(space), synch=opts.pop("synch", True), **opts,
    )


def _note_no_perturbation(search: dict, epochs: int) -> None:
    """PBT perturbs first at epoch ``max(perturbation_interval, burn_in_period)``, and never at the last epoch
    (the trial stops there): a search shorter than that is a plain random search, which is said.

    >>> _note_no_perturbation({"pbt": {"perturbation_interval": 20, "burn_in_period": 20}}, 3)  # doctest: +ELLIPSIS
    note: pbt.perturbation_interval 20 / burn_in_period 20: PBT would perturb first at epoch 20, but trials ...
    >>> _note_no_perturbation({"pbt": {"perturbation_interval": 2}}, 3)
    """
    opts = search["pbt"]
    interval, burn_in = opts.get("perturbation_interval", max(1, epochs // 10)), opts.get("burn_in_period", 0)
    first = max(interval, burn_in)
    if first >= epochs:
        unit = "epoch" if epochs == 1 else "epochs"
        print(f"note: pbt.perturbation_interval {interval} / burn_in_period {burn_in}: PBT would perturb first at "
              f"epoch {first}, but trials train {epochs} {unit}: no trial will be perturbed (a random search); "
              "lower them or raise --epochs", flush=True)


def _perturbable(name: str, spec: tuple) -> bool:
    return spec[0] != "fixed" and HYPERPARAMETERS[name].mutable


def _check_scheduler(kind: str, space: dict, search_path: Path) -> None:
    """Scheduler settings that cannot work, refused before Ray starts."""
    if kind == "pbt" and not any(_perturbable(name, spec) for name, spec in space.items()):
        raise InputError("PBT needs at least one searched hyperparameter that it may perturb "
                         f"({', '.join(n for n, h in HYPERPARAMETERS.items() if h.mutable)}); or use --scheduler asha",
                         path=search_path, field="space")


def _local_resources(args) -> tuple[int, int]:
    """CPUs and GPUs of the local Ray instance; a trial that needs more than that would never be scheduled
    (Tune waits for resources forever), so it is refused here."""
    cores = os.cpu_count() or 1
    num_cpus = args.num_cpus or max(1, min(cores, math.ceil(args.cpus_per_trial * args.samples)))
    num_gpus = math.ceil(args.gpus_per_trial * args.samples) if args.gpus_per_trial else 0
    if args.cpus_per_trial > num_cpus:
        given = "--num-cpus" if args.num_cpus else f"the default --num-cpus: the {cores} cores"
        raise InputError(f"{args.cpus_per_trial:g} CPUs per trial, but the local Ray instance has {num_cpus} "
                         f"({given}); no trial could start", field="--cpus-per-trial")
    return num_cpus, num_gpus


def _checkpoint_every(kind: str, search: dict, epochs: int) -> int:
    """PBT: checkpoints at every epoch a perturbation may happen (all kept: an exploit may copy any of
    them); ASHA: every epoch.

    Ray's PBT, synchronous or not, perturbs first at ``max(perturbation_interval, burn_in_period)``, then
    every interval: all multiples of ``gcd(interval, burn_in_period)``. With checkpoints every interval only, a
    burn-in that is not a multiple of it (15 with 10) made every exploit copy a donor's checkpoint from up
    to an interval before the perturbation.

    >>> _checkpoint_every("pbt", {"pbt": {"perturbation_interval": 10, "burn_in_period": 15}}, 100)
    5
    >>> _checkpoint_every("pbt", {"pbt": {"perturbation_interval": 10, "burn_in_period": 20}}, 100)
    10
    """
    if kind == "pbt":
        interval = search["pbt"].get("perturbation_interval", max(1, epochs // 10))
        return math.gcd(interval, search["pbt"].get("burn_in_period", 0))  # gcd(n, 0) = n
    return 1


def _undamaged(saved: list) -> tuple[list, list[str]]:
    """The kept trial checkpoints ``(folder, record)`` whose ``model.ckpt`` passes its CRC-32 / header check
    (:func:`~neurodyn.training.checkpoints.damaged_entry`), and a line for each that does not (its file and
    entry)."""
    from neurodyn.training.checkpoints import damaged_entry

    good, damaged = [], []
    for folder, record in saved:
        found = damaged_entry(Path(folder) / "model.ckpt")
        if found is None:
            good.append((folder, record))
        else:
            damaged.append(f"{Path(folder) / 'model.ckpt'}: {found} fails its CRC-32 or header check")
    return good, damaged


def _write_best_checkpoint(source: Path, dest: Path, data_files: dict) -> None:
    """``best.ckpt``: the best trial's checkpoint with the run's data-file record
    (:data:`~neurodyn.training.checkpoints.DATA_FILES_KEY` under ``RUN_SETTINGS_KEY``) that ``fit`` writes into its
    checkpoints, so that ``predict`` / ``validate`` / a resumed ``fit`` with it tell a data file re-made under the
    same name, and the trials it was fitted on. No other run setting is recorded: ``best.yaml`` is the config."""
    import torch

    from neurodyn.training.checkpoints import DATA_FILES_KEY, RUN_SETTINGS_KEY, damaged_entry

    # torch.load checks no CRC and torch.save writes fresh ones: a trial checkpoint damaged on disk became a
    # best.ckpt that every later check passes
    found = damaged_entry(source)
    if found is not None:
        raise CommandFailed(f"the best trial's checkpoint {source} is damaged: {found} fails its CRC-32 or header "
                            "check (modified after it was written: a disk or copy fault)")
    checkpoint = torch.load(source, map_location="cpu", weights_only=False)
    if data_files:
        checkpoint[RUN_SETTINGS_KEY] = {**(checkpoint.get(RUN_SETTINGS_KEY) or {}), DATA_FILES_KEY: data_files}
    torch.save(checkpoint, dest)


def _relative_paths_note(cfg: dict) -> str:
    """best.yaml's header line naming the folder its relative file settings are of: the folder ``neurodyn tune``
    ran in, as for the fit config it came from, which a command started elsewhere does not find ('' when
    every file setting is absolute).

    >>> _relative_paths_note({"data": {"class_path": "LFADSDataModule", "init_args": {"path": "/d/l.h5"}}})
    ''
    """
    from neurodyn.training.inputs import setting_inputs

    relative = [option for option, path in setting_inputs(cfg) if not path.is_absolute()]
    if not relative:
        return ""
    return (f"#   {', '.join(relative)}: relative to the folder neurodyn tune ran in, {os.getcwd()}; run the "
            "commands there\n")


def _sigterm_interrupts() -> None:
    """SIGTERM raises neurodyn's Interrupted (a KeyboardInterrupt): cleanup runs, exit code 143."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupted)


@contextlib.contextmanager
def _ray_console(verbose: int) -> Iterator[None]:
    """``--verbose 0``: the console shows neurodyn's own lines and errors only, for the duration of the search.

    Ray Tune's new output engine prints its experiment header ("Configuration for experiment", "View
    detailed results here", the TensorBoard hint) at every verbosity; the legacy engine
    (``RAY_AIR_NEW_OUTPUT=0``) prints nothing at verbosity 0. Ray's warnings (e.g. that token
    authentication was enabled for the local cluster) are logged to the ``ray`` logger, which is raised to
    ERROR: Ray's errors, such as a trial's failure, still show (in one line: :func:`_trial_errors_in_one_line`).
    Trials' own output reaches the driver only at ``--verbose 2`` (``log_to_driver``). Both settings are put
    back afterwards.
    """
    if verbose > 0:
        yield
        return
    saved_env, ray_logger = {"RAY_AIR_NEW_OUTPUT": os.environ.get("RAY_AIR_NEW_OUTPUT")}, logging.getLogger("ray")
    saved_level = ray_logger.level
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    ray_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        ray_logger.setLevel(saved_level)
        restore_environ(saved_env)


#: the logger of Ray Tune's driver loop, which logs a failed trial with its traceback ("Trial task failed for trial")
_TRIAL_FAILURES = "ray.tune.execution.tune_controller"


class _OneLineErrors(logging.Filter):
    """A record with a traceback (Ray's "Trial task failed for trial trial_0001" and the ~100 lines of the
    remote traceback) becomes one line: its message and the trial's error, ``Type: message``
    (:func:`~neurodyn.training.tune.results.error_line`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            from neurodyn.training.tune.results import error_line

            record.msg, record.args = f"{record.getMessage()}: {error_line(record.exc_info[1])}", ()
            record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


@contextlib.contextmanager
def _trial_errors_in_one_line(debug: bool) -> Iterator[None]:
    """Without ``--debug`` (or ``NEURODYN_DEBUG``), a failed trial is one line on the console, whatever
    ``--verbose``; its whole traceback is in its Ray folder (``ray/trial_XXXX/error.txt`` of the run folder)."""
    if debug:
        yield
        return
    logger, one_line_filter = logging.getLogger(_TRIAL_FAILURES), _OneLineErrors()
    logger.addFilter(one_line_filter)
    try:
        yield
    finally:
        logger.removeFilter(one_line_filter)


def _trial_name(trial) -> str:
    """``trial_0003``: the same names in every run (Tune's own carry its random experiment id)."""
    return trial_name(trial_index(trial.trial_id))


#: the share of the training trials tune holds out to select on when neither --select-fraction nor the config sets one
SELECT_FRACTION = 0.2


def _select_fraction_note(given: float, base: dict, files: list[Path]) -> str:
    """The note for a ``--select-fraction`` the config's select split overrides (it was ignored without a word).

    >>> print(_select_fraction_note(0.3, {"data": {"init_args": {"select_fraction": 0.1}}}, [Path("fit.yaml")]))
    ... # doctest: +NORMALIZE_WHITESPACE
    note: --select-fraction 0.3 is not used: the config's data.init_args.select_fraction 0.1 (fit.yaml; select_seed 0)
    carves the select split and takes precedence (best.yaml keeps it); change it there to select on another share
    """
    key = ("data", "init_args", "select_fraction")
    value = get_path(base, key)
    if value is None:  # a DataModule that carves a select split of its own
        return (f"note: --select-fraction {given:g} is not used: the DataModule carves its own select split, "
                "which takes precedence")
    select_seed = get_path(base, ("data", "init_args", "select_seed")) or 0
    return (f"note: --select-fraction {given:g} is not used: the config's data.init_args.select_fraction "
            f"{float(value):g} ({source_of(files, key)}; select_seed {select_seed}) carves the select split and takes "
            "precedence (best.yaml keeps it); change it there to select on another share")


def _default_out(configs: list[str], scheduler: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path("runs") / "tune" / f"{Path(configs[-1]).stem}-{scheduler}-{stamp}"


def _parser() -> argparse.ArgumentParser:
    from neurodyn.errors import ArgumentParser  # usage errors are one-line InputErrors
    from neurodyn.training import tune

    p = ArgumentParser(prog="neurodyn tune", description=tune.__doc__.split("\n\n")[0],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", action="append", required=True, metavar="YAML",
                   help="a neurodyn fit config (repeat to stack; later files win)")
    p.add_argument("--search", required=True, metavar="YAML", help="search space (configs/tune/*.yaml)")
    p.add_argument("--scheduler", choices=("pbt", "asha"), default="pbt",
                   help="pbt: population-based training, the worst trials copy and perturb the best every "
                        "perturbation_interval epochs; asha: asynchronous successive halving, stops the worst trials "
                        "early (settings: the search file's pbt / asha section) (default: %(default)s)")
    p.add_argument("--samples", type=int, default=8, help="trials (the PBT population size)")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs per trial (default: the search file's 'epochs', else trainer.max_epochs)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0,
                   help="CPU cores Ray reserves for each trial, > 0 (fractions share a core); a trial trains on "
                        "that many torch threads (rounded down, at least 1) (default: %(default)s)")
    p.add_argument("--gpus-per-trial", type=float, default=0.0,
                   help="GPUs Ray reserves for each trial, >= 0 (0.5: two trials share one GPU); above 0 a trial "
                        "trains on a CUDA device, 0 on the CPU (default: %(default)s)")
    p.add_argument("--num-cpus", type=int, default=None,
                   help="CPUs of the local Ray instance (default cpus-per-trial x samples, at most the cores)")
    p.add_argument("--address", default=None, help="join an existing Ray cluster (ray://host:10001 or auto)")
    p.add_argument("--out", default=None, help="run folder (must not exist; default runs/tune/<name>-<time>)")
    p.add_argument("--select-fraction", type=float, default=None,
                   help="share of the training trials held out to select on (validation trials unused; a config's "
                        "data.init_args.select_fraction takes precedence, and a note says so) (default: "
                        f"{SELECT_FRACTION})")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the sampled configurations and of PBT's perturbations (default: seed_everything)")
    p.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2),
                   help="Ray Tune's console output: 0 none (neurodyn's lines and errors only), 1 progress tables, "
                        "2 also the trials' own output")
    return p


def _check_args(args) -> None:
    if args.samples < 1:
        raise InputError(f"must be >= 1, got {args.samples}", field="--samples")
    if args.epochs is not None and args.epochs < 1:
        raise InputError(f"must be >= 1, got {args.epochs}", field="--epochs")
    # finite: inf / nan were an OverflowError / ValueError traceback where the Ray instance is sized
    if not (math.isfinite(args.cpus_per_trial) and args.cpus_per_trial > 0):
        raise InputError(f"must be a finite number > 0, got {args.cpus_per_trial}", field="--cpus-per-trial")
    if not (math.isfinite(args.gpus_per_trial) and args.gpus_per_trial >= 0):
        raise InputError(f"must be a finite number >= 0, got {args.gpus_per_trial}", field="--gpus-per-trial")
    if args.gpus_per_trial > 0 and args.address is None:
        import torch

        if not torch.cuda.is_available():
            raise InputError("no CUDA device on this machine", field="--gpus-per-trial")
    if args.select_fraction is not None and not 0 < args.select_fraction < 1:
        raise InputError(f"must lie in (0, 1), got {args.select_fraction}", field="--select-fraction")
    if args.seed is not None:  # it seeds the select split best.yaml records (select_seed) and the samples
        from neurodyn.training.datamodules.base import check_seed

        check_seed(args.seed, "--seed")  # -1 was numpy's ValueError traceback
    if args.num_cpus is not None and args.num_cpus < 1:
        raise InputError(f"must be >= 1, got {args.num_cpus}", field="--num-cpus")


def _check_out(out: Path, inputs: list[Path]) -> None:
    if os.path.lexists(out):
        raise InputError("exists; choose a new run folder", path=out, field="--out")
    for source in inputs:
        if source.absolute().is_relative_to(out.absolute()):
            raise InputError("would contain an input file", path=out, field="--out")


@contextlib.contextmanager
def _run_folder(out: Path, inputs: list[Path]) -> Iterator[tuple[Path, list[Path]]]:
    """Hold the run folder ``out`` for the search; yields its parent, where the temporary folder goes, and a list
    of folders to keep (results that could not be renamed).

    Checked up front, then the lock ``.<name>.lock`` beside it is taken -- the lock every command's output
    takes (:func:`neurodyn.io.output_file`, :func:`~neurodyn.io.output.hold_output`): a second ``neurodyn
    tune`` (or any neurodyn writer) to the same ``--out`` is refused at once, one line, rather than search for
    hours and lose its results to the first -- and the checks are repeated under it. On exit, still under the
    lock, every temporary folder of ``out`` (``.<name>.XXXXXXXX.part``) is removed: this run's, and those a
    killed run (``kill -9``, a crash) left behind. Missing parent folders that are still empty are removed.
    """
    from neurodyn.io.output import _lock, make_folders, may_access, remove_empty_folders

    _check_out(out, inputs)
    parent = out.absolute().parent
    created = make_folders(parent, out, "--out")
    try:
        if not parent.is_dir():  # a file (was called a folder that is not writable)
            raise InputError(f"{parent} is not a folder", path=out, field="--out")
        if not may_access(parent, os.W_OK | os.X_OK):
            raise InputError(f"folder {parent} is not writable", path=out, field="--out")
        with _lock(out, "--out", what="run folder"):
            _check_out(out, inputs)  # another search may have finished since the first check
            keep: list[Path] = []
            try:
                yield parent, keep
            finally:
                with _held_signals(raise_after=sys.exc_info()[0] is None):
                    _remove_temporary_folders(out, keep)
    finally:
        remove_empty_folders(created)


def _remove_temporary_folders(out: Path, keep: list[Path]) -> None:
    """The temporary folders (and files) of ``out`` only: ``.<name>.XXXXXXXX.part``, mkdtemp's names; a
    user's ``.<name>.backup.part`` or results kept as ``<name>.results-XXXXXXXX`` are left alone."""
    from neurodyn.io.output import temporary_files

    for part in temporary_files(out):
        if part in keep:
            continue
        if part.is_dir() and not part.is_symlink():
            shutil.rmtree(part, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                part.unlink()


@contextlib.contextmanager
def _held_signals(raise_after: bool = True) -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM are held back (:func:`~neurodyn.io.output.signals_deferred`), and
    Ray may not install its own SIGTERM handler; after it (``raise_after``) the first one held is raised as
    :class:`~neurodyn.io.Interrupted`, else dropped.

    For ``ray.init`` and the cleanup: ``ray.init`` sets a SIGTERM handler that calls ``sys.exit(15)``, and
    a signal in the middle of it -- the raylet started, ``ray.shutdown`` not yet able to stop it -- ended the
    command with exit code 15 and no line, and left Ray's ``DashboardAgent`` and ``RuntimeEnvAgent`` running
    for minutes. Held back, the signal ends the command once ``ray.init`` has returned, so ``ray.shutdown``
    stops every process it started; during the cleanup, a second signal cannot cut it short."""
    from neurodyn.io.output import signals_deferred

    ray_utils = sys.modules.get("ray._private.utils")  # ray.init installs its handler through this
    set_handler = getattr(ray_utils, "set_sigterm_handler", None)
    if set_handler is not None:
        ray_utils.set_sigterm_handler = lambda handler: None
    try:
        with signals_deferred(replay=False) as received:
            try:
                yield
            except BaseException as err:
                if received and raise_after:
                    from neurodyn.io import Interrupted

                    _SIGNAL_RECEIVED.append(received[0])
                    raise Interrupted(received[0]) from err
                raise
    finally:
        if set_handler is not None:
            ray_utils.set_sigterm_handler = set_handler
    if received and raise_after:
        _raise_interrupted(received[0], None)


def _shutdown_ray(ray) -> None:
    """Stop the Ray processes this command started (a cluster joined with ``--address``: disconnect), and wait
    for them to end (``wait_for_processes``, Ray >= 2.5x)."""
    try:
        ray.shutdown(wait_for_processes=True)
    except TypeError:  # an older Ray
        ray.shutdown()


def _keep_results(tmp_out: Path, out: Path) -> Path:
    """``--out`` appeared while the search ran (made by someone else: a second neurodyn is refused by the lock):
    the finished results move to a new folder ``<name>.results-XXXXXXXX`` beside it, which no later run removes;
    returns it (``tmp_out`` itself if that move fails)."""
    try:
        kept = Path(tempfile.mkdtemp(prefix=f"{out.name}.results-", dir=tmp_out.parent))
    except OSError:
        return tmp_out
    try:
        os.replace(tmp_out, kept)  # onto the empty folder just made for it
    except OSError:
        with contextlib.suppress(OSError):
            kept.rmdir()
        return tmp_out
    return kept


def _command_line(argv: list[str]) -> str:
    """The command as it was typed, for ``summary.json`` (``neurodyn --debug tune ...`` was recorded as
    ``neurodyn tune`` and nothing else); ``neurodyn tune`` alone when tune was not started from the command line.

    >>> _command_line(["/venv/bin/neurodyn", "--debug", "tune", "--config", "a b.yaml"])
    "neurodyn --debug tune --config 'a b.yaml'"
    >>> _command_line(["pytest", "-q"])
    'neurodyn tune'
    """
    import shlex

    args = list(argv[1:])
    return "neurodyn " + shlex.join(args) if "tune" in args[:2] else "neurodyn tune"


def run_search(args) -> Path:
    """Run ``neurodyn tune``; returns the run folder."""
    t0 = time.time()
    config_paths = [Path(c) for c in args.config]
    base = stack_configs([read_yaml(path, "--config") for path in config_paths])  # as fit stacks them
    check_fit_config(base, config_paths)
    check_model(base, str(source_of(config_paths, ("model", "class_path"))))
    search_path = Path(args.search)
    search = load_search(search_path)
    space = search["space"]
    check_values(base, space, search_path, config_paths)
    _check_args(args)
    _check_scheduler(args.scheduler, space, search_path)
    resources = None if args.address else _local_resources(args)
    epochs = args.epochs or search["epochs"] or get_path(base, ("trainer", "max_epochs"))
    if epochs is None:
        raise InputError("give the epochs per trial (--epochs, 'epochs' in the search file or trainer.max_epochs)",
                         field="--epochs")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:  # the config's (the others are checked)
        # named where it was set (0 and -1, Lightning's "no limit", were refused as a missing --epochs; true trained 1)
        raise InputError(f"the epochs of each trial: must be a whole number >= 1, got {epochs!r} (or give --epochs)",
                         path=source_of(config_paths, ("trainer", "max_epochs")), field="trainer.max_epochs")
    seed_note = None
    if base.get("seed_everything") is True:  # "a random seed": drawn once, so every trial (and best.yaml) has it
        import random

        base["seed_everything"] = random.SystemRandom().randrange(2**32)
        seed_note = (f"note: seed_everything: true drew the seed {base['seed_everything']} (every trial trains with "
                     "it; best.yaml records it)")
    seed = args.seed if args.seed is not None else base.get("seed_everything", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        seed = 0
    # Ctrl-C must stop the search (and leave nothing), not make Tune stop trials and return a partial grid
    os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")
    try:
        import ray
        from ray import tune
        from ray.tune.search import BasicVariantGenerator
    except ImportError:
        raise InputError("needs Ray Tune: pip install 'neurodyn[tune]'", field="--scheduler") from None

    # The model and data must build before any Ray worker starts (one-line errors for bad configs).
    sample = {n: endpoints(s)[0] for n, s in space.items()}
    _, data = build_model_and_data(apply_hyperparameters(base, sample), config_paths)
    if data.splits.get("valid") is None or not len(data.splits["valid"]):
        raise InputError("the data module has no validation trials to select on", field="data")
    carved_by_config = "select" in data.splits
    fraction = SELECT_FRACTION if args.select_fraction is None else args.select_fraction
    split = select_split(data, fraction, seed)
    carved_here = "select" in data.splits and not carved_by_config  # best.yaml must carry it (see below)
    fraction_note = (_select_fraction_note(args.select_fraction, base, config_paths)
                     if carved_by_config and args.select_fraction is not None else None)
    # best.ckpt records the data files (bytes, trials, the select split's rows), as a fit's checkpoints do: the
    # trials carve the same seeded split from the same file
    from neurodyn.training.checkpoints import record_data_files

    data_files = record_data_files(data)
    del data

    out = Path(args.out) if args.out else _default_out(args.config, args.scheduler)
    # the lock on --out: a second writer is refused here, before Ray starts
    with _run_folder(out, [*config_paths, search_path]) as (parent, kept_folders):
        # notes once every input is accepted (the run folder is the last check): bad input is its one line alone
        if seed_note:
            print(seed_note, flush=True)
        if fraction_note:
            print(fraction_note, flush=True)
        if args.scheduler == "pbt":
            _note_no_perturbation(search, epochs)
        names = list(space)
        ray_called, tmp_out = False, None
        from neurodyn.io import terminate_as_interrupt

        try:
            from neurodyn.errors import debug_enabled

            # `neurodyn --debug tune ...` (its argv) or NEURODYN_DEBUG: a failed trial's traceback is shown
            with terminate_as_interrupt(), _ray_console(args.verbose), \
                    _trial_errors_in_one_line(debug_enabled(sys.argv[1:])):
                tmp_out = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=parent))
                ray_called = True  # from here on ray.shutdown (below) ends whatever ray.init started
                with _held_signals():  # a signal inside ray.init ends the command once it has returned
                    if args.address:
                        ray.init(address=args.address, log_to_driver=args.verbose > 1)
                    else:
                        num_cpus, num_gpus = resources
                        ray.init(num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False,
                                 log_to_driver=args.verbose > 1, object_store_memory=256 * 2**20,
                                 configure_logging=args.verbose > 1)
                _sigterm_interrupts()  # whatever handler Ray may have installed after all (sys.exit in the driver)
                every = _checkpoint_every(args.scheduler, search, epochs)
                # PBT keeps every checkpoint (an exploit may copy any); ASHA the best and the latest
                keep = tune.CheckpointConfig(checkpoint_score_attribute=METRIC, checkpoint_score_order=MODE,
                                             num_to_keep=None if args.scheduler == "pbt" else 1)
                trainable = tune.with_resources(
                    tune.with_parameters(train_trial, base=base, epochs=epochs, cpus=args.cpus_per_trial,
                                         gpus=args.gpus_per_trial, checkpoint_every=every,
                                         select_fraction=fraction, seed=seed, workdir=os.getcwd()),
                    {"cpu": args.cpus_per_trial, "gpu": args.gpus_per_trial},
                )
                scheduler = _scheduler(args.scheduler, search, epochs, seed)
                history = reported_history()  # trials.csv's source: every report, as the driver received it
                tuner = tune.Tuner(
                    trainable,
                    param_space={name: _domain(spec) for name, spec in space.items()},
                    tune_config=tune.TuneConfig(
                        metric=METRIC, mode=MODE, num_samples=args.samples, reuse_actors=True,
                        scheduler=scheduler,
                        search_alg=BasicVariantGenerator(random_state=seed),
                        trial_name_creator=_trial_name, trial_dirname_creator=_trial_name,
                    ),
                    run_config=tune.RunConfig(
                        name="ray", storage_path=str(tmp_out.absolute()), verbose=args.verbose,
                        checkpoint_config=keep, stop={"training_iteration": epochs}, callbacks=[history],
                    ),
                )
                grid = tuner.fit()
                perturbations = perturbation_rows(getattr(scheduler, "steps", []), names)
                rows = trial_rows(grid, names, perturbations, history.rows)
                saved = saved_checkpoints(tmp_out / "ray")
                if not saved:
                    errors = [r["error"] for r in rows if r.get("error")]
                    raise SearchFailed(f"no trial reported {METRIC}"
                                       + (f"; first error: {errors[0]}" if errors else ""))
                # a checkpoint damaged on disk is never the best: torch.load checks no CRC, and best.ckpt is saved
                # again with fresh ones, which every later check would pass
                saved, damaged = _undamaged(saved)
                if not saved:  # never lose a finished search: its results are kept, and said where
                    kept = _keep_results(tmp_out, out)
                    if kept == tmp_out:
                        kept_folders.append(kept)
                    tmp_out = None
                    raise CommandFailed(f"every kept trial checkpoint is damaged ({damaged[0]}): no best.ckpt; "
                                        f"the results are in {kept}")
                for line in damaged:
                    print(f"note: {line}: skipped as the best trial's checkpoint", file=sys.stderr)
                # the lowest select-split loss over every kept checkpoint (ties: the earlier epoch)
                best_dir, best = min(saved, key=lambda item: (item[1]["value"], item[1]["epoch"]))
                best_trial, metrics = best["trial"], {METRIC: best["value"], "epoch": best["epoch"]}
                best_values = {name: best["hyperparameters"].get(name) for name in names}
                best_cfg = apply_hyperparameters(base, best_values)
                if carved_here:  # a refit with best.yaml trains and selects on the trials the search did
                    best_cfg = record_select_split(best_cfg, fraction, seed)
                set_path(best_cfg, ("trainer", "max_epochs"), epochs)
                import yaml

                header = (f"# neurodyn tune: best of {args.samples} trials ({args.scheduler}), {METRIC} = "
                          f"{metrics[METRIC]:.6g} at epoch {metrics.get('epoch')} of {best_trial}\n"
                          f"#   neurodyn fit --config best.yaml    (checkpoint: best.ckpt)\n"
                          + _relative_paths_note(best_cfg))
                (tmp_out / "best.yaml").write_text(header + yaml.safe_dump(best_cfg, sort_keys=False))
                _write_best_checkpoint(best_dir / "model.ckpt", tmp_out / "best.ckpt", data_files)
                write_csv(tmp_out / "trials.csv", rows)
                if args.scheduler == "pbt":
                    # no step (an interval beyond the epochs): the header alone, the columns a step fills
                    write_csv(tmp_out / "perturbations.csv", perturbations, perturbation_columns(names))
                text = rich_table(rows, names, best_trial, f"neurodyn tune ({args.scheduler}): {out}")
                (tmp_out / "trials.txt").write_text(text)
                summary = {
                    "command": _command_line(sys.argv),
                    "configs": [str(p) for p in config_paths], "search": str(search_path),
                    "scheduler": args.scheduler, "samples": args.samples, "epochs": epochs, "seed": seed,
                    "metric": METRIC, "mode": MODE, "select_split": split,
                    "best_trial": best_trial, "best_value": metrics[METRIC], "best_epoch": metrics.get("epoch"),
                    "best_hyperparameters": best_values, "perturbations": len(perturbations),
                    "trials_failed": sum(r["status"] == "ERROR" for r in rows),
                    "seconds": round(time.time() - t0, 1),
                }
                (tmp_out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
                try:
                    if os.path.lexists(out):  # made by another program: neurodyn writers are refused by the lock
                        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(out))
                    os.replace(tmp_out, out)
                except OSError as err:  # never lose a finished search: its results are kept, and said where
                    kept = _keep_results(tmp_out, out)
                    if kept == tmp_out:
                        kept_folders.append(kept)
                    tmp_out = None
                    what = ("appeared while the search ran" if os.path.lexists(out)
                            else f"cannot rename the results onto it ({err.strerror or err})")
                    raise InputError(f"{what}; the results are in {kept}", path=out, field="--out") from None
                tmp_out = None
        except KeyboardInterrupt as err:
            # Tune may re-raise the interrupt as a plain KeyboardInterrupt: keep the signal's name and code
            if _SIGNAL_RECEIVED and getattr(err, "signum", None) != _SIGNAL_RECEIVED[-1]:
                from neurodyn.io import Interrupted

                raise Interrupted(_SIGNAL_RECEIVED[-1]) from None
            raise
        finally:
            # a second signal cannot cut the cleanup short (held, then raised unless an exception is on its way)
            with _held_signals(raise_after=sys.exc_info()[0] is None):
                if ray_called:
                    _shutdown_ray(ray)  # first: no trial may write into the folder once it is removed
                if tmp_out is not None:
                    shutil.rmtree(tmp_out, ignore_errors=True)
    # the kept checkpoint's figure (PBT keeps them at its perturbation epochs): named so, since trials.csv's
    # "best" column above can hold a lower value of an epoch without a checkpoint
    print(f"best.ckpt: {METRIC} {metrics[METRIC]:.6g} ({best_trial}, epoch {metrics.get('epoch')}, the best kept "
          "checkpoint): "
          + ", ".join(f"{k}={fmt(v)}" for k, v in best_values.items()))
    # which trials the figures are of (the name valid/loss reads as the validation trials', which no trial saw)
    print(f"{METRIC}: the masked Poisson NLL of {select_split_words(split)}")
    if summary["trials_failed"]:
        print(f"{summary['trials_failed']} of {len(rows)} trials failed (their errors: trials.csv, "
              "ray/trial_XXXX/error.txt)")
    print(f"wrote {out}/best.yaml, best.ckpt, trials.csv, ray/ ({time.time() - t0:.0f} s)")
    return out


class SearchFailed(CommandFailed):
    """No trial of the search produced a result (each trial's error is in its Ray folder); exit code 1."""

    exit_code = 1


#: the variables a search sets in the command's process: neurodyn's Ctrl-C for Tune (run_search), and the driver's
#: ``breakpoint()`` hook that ``ray.init`` sets
_DRIVER_ENV = ("TUNE_DISABLE_SIGINT_HANDLER", "PYTHONBREAKPOINT")


@contextlib.contextmanager
def _driver_state_kept() -> Iterator[None]:
    """What a search changes in the process that runs it, put back when it ends: the variables of :data:`_DRIVER_ENV`,
    SIGUSR1's handler (Ray Tune's stops a search; after it a SIGUSR1 no longer ended the process), ``sys.excepthook``
    (Ray's reports to its cluster) and faulthandler (``ray.init`` enables it). A notebook or script that ran ``tune``
    in its own process kept them: its own Ray Tune runs then ignored Ctrl-C, its ``breakpoint()`` went to Ray's
    debugger hook."""
    import faulthandler
    import signal
    import threading

    env = {key: os.environ.get(key) for key in _DRIVER_ENV}
    main_thread = threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGUSR1")
    usr1 = signal.getsignal(signal.SIGUSR1) if main_thread else None
    hook, faults = sys.excepthook, faulthandler.is_enabled()
    try:
        yield
    finally:
        restore_environ(env)
        if main_thread and usr1 is not None:
            signal.signal(signal.SIGUSR1, usr1)
        sys.excepthook = hook
        if not faults and faulthandler.is_enabled():
            faulthandler.disable()


def cli_main(argv: list[str]) -> int:
    """``neurodyn tune``; returns the exit code (InputError and SearchFailed are printed by neurodyn.cli)."""
    # a search run from Python leaves its process as it found it (its global random generators: neurodyn.cli.main)
    with _driver_state_kept():
        run_search(_parser().parse_args(argv))
    return 0
