"""``neurodyn fit | validate | test | predict``: the LightningCLI entry point.

A run is a stack of YAML files (later ones override earlier ones) plus command-line overrides::

    neurodyn fit --config configs/langevinflow/lorenz.yaml --trainer.max_epochs 50 --run-name lorenz
    neurodyn fit --run runs/lorenz --trainer.max_epochs 100        # resume from last.ckpt, same folder
    neurodyn predict --run runs/lorenz                              # best checkpoint -> runs/lorenz/predictions.h5
    neurodyn validate --run runs/lorenz --ckpt_path last

Run folders
    Each ``fit`` writes one folder, ``<trainer.default_root_dir>/<run name>`` (default root ``runs``,
    default name a timestamp ``YYYYmmdd-HHMMSS``; ``--run-name NAME`` picks it): ``config.yaml`` (the
    full configuration), ``metrics.csv``, ``tensorboard/``, ``checkpoints/`` with ``last.ckpt`` (the
    last finished epoch, always), the top-k files named after the monitored metric and
    ``checkpoints.json`` (monitor, scores, best file). ``--run DIR`` reads ``DIR/config.yaml``, so a run
    is resumed, validated or predicted without copying paths; ``--ckpt_path best|last`` resolve inside
    the run folder (default: ``last`` for ``fit --run``, ``best`` for validate / test / predict).
    ``fit --ckpt_path DIR/checkpoints/X.ckpt`` also continues in ``DIR``. ``{run}`` in a logger's
    ``save_dir`` stands for the run folder. validate / test / predict write no logs.

Exact resume and interrupts
    Checkpoints hold every random state training draws from (torch, numpy, python, the model's and the
    DataModule's ``torch.Generator``), so ``fit`` for N epochs and ``fit`` for k epochs + resume to N
    give identical weights and metrics. A first SIGTERM / SIGINT finishes the epoch, saves ``last.ckpt``
    and exits with 128 + the signal number and the command that resumes; a second one stops at once.

Errors
    Every bad input -- unknown keys in YAML or on the command line, bad values, unknown class paths,
    missing files, checkpoints that are truncated, of another model family, of other sizes or of a newer
    format -- raises :class:`neurodyn.errors.InputError` (one line naming the file and the field; the
    ``neurodyn`` command prints it and exits with 2). No usage text is printed before it.

Data-derived sizes are linked from the DataModule into the model (``n_heldin``, ``n_neurons``,
``n_obs_bins``, ``n_fwd_bins``), so configs never repeat them. With no config at all, ``neurodyn
fit`` trains LangevinFlow on the simulated Lorenz benchmark. When stdout is not a terminal, progress
is one line per epoch with the logged metrics instead of a progress bar.

Forced callbacks (configurable under their own keys): ``checkpoint`` (:class:`AutoModelCheckpoint`,
monitor picked from the data), ``nlb_eval`` (:class:`NLBEvaluationCallback`), ``prediction``
(:class:`PredictionWriter`).
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import logging
import os
import re
import signal
import sys
import warnings
from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint, ProgressBar, RichProgressBar
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback

# Imported so that their short class names resolve in YAML (class_path: LangevinFlowModule).
from neurodyn.data.datamodule import (  # noqa: F401
    LFADSDataModule,
    LorenzDataModule,
    NeuralDataModule,
    NLBDataModule,
    SwitchingGLMDataModule,
)
from neurodyn.errors import InputError
from neurodyn.training.callbacks import EpochLog, ResumableCSVLogger, ResumeState, RunInterrupted
from neurodyn.training.checkpoints import (
    INDEX_NAME,
    SIZE_KEYS,
    AutoModelCheckpoint,
    check_checkpoint,
    check_header,
    read_checkpoint,
)
from neurodyn.training.hmmglm_module import HMMGLMModule  # noqa: F401
from neurodyn.training.module import LangevinFlowModule, TrainingDiverged  # noqa: F401
from neurodyn.training.predictions import NLBEvaluationCallback, PredictionWriter

#: stands for the run folder in a logger's ``save_dir``
RUN_PLACEHOLDER = "{run}"
#: the run folder chosen by rank 0, for the DDP processes it starts
RUN_DIR_ENV = "NEURODYN_RUN_DIR"
DEFAULT_ROOT = "runs"

#: Lightning messages that carry no information for a neurodyn user (advertising, expected situations)
_QUIET_INFO = ("💡 Tip",)
_QUIET_WARNINGS = (
    r".*does not have many workers.*",  # in-memory tensors: workers would only add copies
    r".*is smaller than the logging interval.*",  # epoch metrics are what neurodyn logs
    r".*exists and is not empty.*",  # a resumed run writes into its own folder on purpose
    r".*Experiment logs directory .* exists.*",
    r".*The `srun` command is available on your system but is not used.*",
    r".*GPU available but not used.*",
    r".*LeafSpec.*is deprecated.*",  # Lightning's own use of a torch API
    r".*callbacks used to create the checkpoint need to be provided.*",  # validate / predict need no checkpointing
    r".*LightningCLI's args parameter is intended to run from within Python.*",  # args are given on purpose
)


class _DropTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).lstrip().startswith(_QUIET_INFO)


class RunConfigSaver(SaveConfigCallback):
    """Write the run's ``config.yaml`` into the run folder; a resumed fit keeps it and writes
    ``config.resume.yaml`` beside it."""

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self.already_saved or stage != "fit":
            return
        run_dir = Path(trainer.default_root_dir)
        name = self.config_filename
        if trainer.ckpt_path is not None and (run_dir / name).exists():
            name = "config.resume.yaml"
        if trainer.is_global_zero:
            run_dir.mkdir(parents=True, exist_ok=True)
            self.parser.save(self.config, str(run_dir / name), skip_none=False, overwrite=True, multifile=False)
        self.already_saved = True


def _run_dir_of_checkpoint(path: str) -> Path | None:
    """``DIR`` for ``DIR/checkpoints/X.ckpt`` when ``DIR`` is a run folder (has config.yaml)."""
    p = Path(path)
    if p.parent.name == "checkpoints" and (p.parent.parent / "config.yaml").is_file():
        return p.parent.parent
    return None


def resolve_checkpoint(run_dir: Path | None, which: str, field: str = "ckpt_path") -> str:
    """``best`` / ``last`` -> the file inside ``run_dir/checkpoints``; one-line InputError when there is none."""
    if run_dir is None:
        raise InputError(f"'{which}' needs a run folder: add --run DIR", field=field)
    ckpt_dir = run_dir / "checkpoints"
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
        best = json.loads(index.read_text()).get("best")
    except ValueError as err:
        raise InputError(f"unreadable index ({err})", path=index, field="best") from None
    if not best:
        raise InputError("the run keeps no best checkpoint (no monitor, or checkpoint.save_top_k 0): use "
                         "--ckpt_path last", path=index, field="best")
    if not (ckpt_dir / best).is_file():
        raise InputError(f"the best checkpoint {best!r} is missing", path=index, field="best")
    return str(ckpt_dir / best)


def _child_rank() -> bool:
    """True in a process that Lightning's DDP launcher started (local rank > 0 or node rank > 0)."""
    return any(int(os.environ.get(k, "0") or 0) > 0 for k in ("LOCAL_RANK", "NODE_RANK", "GROUP_RANK"))


def _keeps_best(run_dir: Path) -> bool:
    """True when the run's checkpoint index names a best file (runs without selection keep only last.ckpt)."""
    import json

    try:
        return bool(json.loads((run_dir / "checkpoints" / INDEX_NAME).read_text()).get("best"))
    except (OSError, ValueError):
        return True  # let resolve_checkpoint report what is wrong


def _unique_run_dir(root: Path) -> Path:
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate, n = root / stamp, 1
    while candidate.exists():
        n += 1
        candidate = root / f"{stamp}-{n}"
    return candidate


class NeurodynCLI(LightningCLI):
    """LightningCLI with neurodyn's links, forced callbacks, run folders and one-line errors."""

    def __init__(self, *args, user_argv: list[str] | None = None, resume_state: ResumeState | None = None, **kwargs):
        self._user_argv = list(user_argv or [])
        self._run_dir: Path | None = None
        self._config_to_save = None
        self.resume_state = resume_state or ResumeState()
        super().__init__(*args, **kwargs)

    def add_arguments_to_parser(self, parser) -> None:
        for name in SIZE_KEYS:
            parser.link_arguments(f"data.{name}", f"model.init_args.{name}", apply_on="instantiate")
        parser.add_lightning_class_args(AutoModelCheckpoint, "checkpoint")
        parser.add_lightning_class_args(NLBEvaluationCallback, "nlb_eval")
        parser.add_lightning_class_args(PredictionWriter, "prediction")
        parser.add_argument("--run", type=str | None, default=None,
                            help="run folder written by `neurodyn fit` (its config.yaml is read first)")
        parser.add_argument("--run_name", "--run-name", type=str | None, default=None,
                            help="name of the run folder under trainer.default_root_dir (default: a timestamp)")
        parser.set_defaults(
            {
                "model": {"class_path": "neurodyn.training.module.LangevinFlowModule"},
                "data": {"class_path": "neurodyn.data.datamodule.LorenzDataModule"},
                "trainer.logger": [
                    {"class_path": "neurodyn.training.callbacks.ResumableCSVLogger",
                     "init_args": {"save_dir": RUN_PLACEHOLDER, "name": "", "version": ""}},
                    {"class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                     "init_args": {"save_dir": RUN_PLACEHOLDER, "name": "tensorboard", "version": ""}},
                ],
            }
        )

    # -- before the classes exist: paths, run folder, checkpoints -----------------------------------
    def _parse_ckpt_path(self) -> None:
        """Resolve the run folder and ``--ckpt_path best|last``, then read the checkpoint safely.

        Lightning's own step loads the checkpoint to merge its hyper-parameters into the model config; a
        truncated file or one of another model family would fail there with a traceback, so the file is
        first read here (``weights_only=True``) and its format and family checked against the config.
        """
        sub = self.config.get("subcommand")
        if not sub:
            return
        cfg = self.config[sub]
        self._resolve_run(sub, cfg)
        ckpt = cfg.get("ckpt_path")
        if ckpt is None:
            return
        model = cfg.get("model")
        class_path = model.get("class_path") if hasattr(model, "get") else None
        check_header(read_checkpoint(ckpt), ckpt, str(class_path).rsplit(".", 1)[-1] if class_path else None)
        from jsonargparse import ArgumentError

        try:
            super()._parse_ckpt_path()
        except ArgumentError as err:
            raise InputError(f"its hyper-parameters do not fit the model config ({parser_error(str(err), [])})",
                             path=ckpt, field="hyper_parameters") from None

    def before_instantiate_classes(self) -> None:
        sub = self.subcommand
        cfg = self.config[sub] if sub else self.config
        path = cfg.get("data", {}).get("init_args", {}).get("path") if hasattr(cfg, "get") else None
        if path is not None and not Path(path).is_file():
            what = "is a folder, expected a file" if Path(path).is_dir() else "file not found"
            raise InputError(what, path=path, field="data.init_args.path")
        if sub == "fit":
            self._fit_run_paths(cfg)

    def _resolve_run(self, sub: str, cfg) -> None:
        run = cfg.get("run")
        run_dir = Path(run) if run else None
        ckpt = cfg.get("ckpt_path")
        if sub == "fit":
            self._setup_fit_run(cfg, run_dir, ckpt)
            return
        if run_dir is None and ckpt not in (None, "best", "last"):
            run_dir = _run_dir_of_checkpoint(ckpt)
        if run_dir is None:  # --config DIR/config.yaml of a run folder
            for file in _config_files(self._user_argv):
                if Path(file).name == "config.yaml" and (Path(file).parent / "checkpoints").is_dir():
                    run_dir = Path(file).parent
        if ckpt is None:
            if run_dir is None:
                raise InputError("needs a trained model: --run DIR (a folder written by neurodyn fit) or "
                                 "--ckpt_path FILE", field="ckpt_path")
            ckpt = "best" if _keeps_best(run_dir) else "last"
        if ckpt in ("best", "last"):
            ckpt = resolve_checkpoint(run_dir, ckpt)
        cfg.ckpt_path = ckpt
        self._run_dir = run_dir
        # validate / test / predict write no logs (no new version folders) unless a logger is asked for
        if not any(a == "--trainer.logger" or a.startswith("--trainer.logger=") for a in self._user_argv):
            cfg.trainer.logger = False
        if sub == "predict" and cfg.get("prediction", {}).get("path") is None and run_dir is not None:
            cfg.prediction.path = str(run_dir / "predictions.h5")

    def _setup_fit_run(self, cfg, run_dir: Path | None, ckpt) -> None:
        root = Path(cfg.trainer.get("default_root_dir") or DEFAULT_ROOT)
        if run_dir is None and ckpt not in (None, "best", "last"):
            run_dir = _run_dir_of_checkpoint(ckpt)
        if run_dir is None and cfg.get("run_name"):
            name = str(cfg.run_name)
            if not name or "/" in name or name in (".", ".."):
                raise InputError(f"must be a plain folder name, got {name!r}", field="run_name")
            run_dir = root / name
        resuming = ckpt is not None or cfg.get("run") is not None
        if run_dir is None and _child_rank() and os.environ.get(RUN_DIR_ENV):
            run_dir = Path(os.environ[RUN_DIR_ENV])  # a DDP process started by rank 0: the same folder
            resuming = True
        if run_dir is None:
            run_dir = _unique_run_dir(root)
        if not _child_rank():
            os.environ[RUN_DIR_ENV] = str(run_dir)  # inherited by the DDP processes Lightning starts
        if cfg.get("run") is not None and ckpt is None:
            ckpt = "last"
        if ckpt in ("best", "last"):
            ckpt = resolve_checkpoint(run_dir, ckpt)
        if not resuming and (run_dir / "checkpoints").is_dir() and any((run_dir / "checkpoints").glob("*.ckpt")):
            raise InputError("run folder already holds checkpoints: resume it with --run DIR, or choose another "
                             "--run-name", path=run_dir, field="run_name")
        cfg.ckpt_path = ckpt
        self._run_dir = run_dir

    def _fit_run_paths(self, cfg) -> None:
        run_dir = self._run_dir
        # The saved config names the run and keeps the placeholders, so `fit --config DIR/config.yaml`
        # starts a new run and `fit --run DIR` resumes this one.
        saved = copy.deepcopy(cfg)
        saved.run, saved.run_name, saved.ckpt_path = None, run_dir.name, None
        self._config_to_save = saved
        loggers = cfg.trainer.get("logger")
        for logger in loggers if isinstance(loggers, list) else [loggers]:
            init = logger.get("init_args") if hasattr(logger, "get") else None
            if init is not None and isinstance(init.get("save_dir"), str):
                init.save_dir = init.save_dir.replace(RUN_PLACEHOLDER, str(run_dir))
        if cfg.checkpoint.get("dirpath") is None:
            cfg.checkpoint.dirpath = str(run_dir / "checkpoints")

    def instantiate_classes(self) -> None:
        # jsonargparse wraps an error raised by a class's __init__ (its Union handling re-raises it as a
        # long explanation); the InputError inside is the one-line message the user needs.
        try:
            super().instantiate_classes()
        except InputError:
            raise
        except Exception as err:
            cause: BaseException | None = err
            while cause is not None and not isinstance(cause, InputError):
                cause = cause.__cause__ or cause.__context__
            if cause is None:
                raise
            raise cause from None

    # -- the trainer --------------------------------------------------------------------------------
    def _instantiate_trainer(self, config, callbacks):
        sub = self.subcommand
        callbacks = list(callbacks)
        if sub == "fit" and self._run_dir is not None:
            config["default_root_dir"] = str(self._run_dir)
        if config.get("enable_checkpointing") is False or config.get("fast_dev_run") or sub != "fit":
            callbacks = [cb for cb in callbacks if not isinstance(cb, ModelCheckpoint)]
        if sub == "fit":
            self.resume_state.run_dir = self._run_dir
            callbacks.append(self.resume_state)
        configured = list(config.get("callbacks") or []) + callbacks
        bar_wanted = config.get("enable_progress_bar", True) is not False
        if not any(isinstance(cb, ProgressBar) for cb in configured):
            if bar_wanted and sys.stdout.isatty():
                callbacks.append(RichProgressBar())
            else:
                config["enable_progress_bar"] = False
                if sub == "fit":
                    callbacks.append(EpochLog())
        if sub != "fit" or self._config_to_save is None:
            return super()._instantiate_trainer(config, callbacks)
        held, self.config[sub] = self.config[sub], self._config_to_save
        try:
            return super()._instantiate_trainer(config, callbacks)
        finally:
            self.config[sub] = held

    def _run_subcommand(self, subcommand: str) -> None:
        if isinstance(self.model, HMMGLMModule) and (self.trainer.world_size > 1 or self.trainer.num_nodes > 1):
            from neurodyn.training.hmmglm_module import MULTI_PROCESS

            raise InputError(MULTI_PROCESS, field="trainer.strategy")
        cfg = self.config_init[subcommand]
        ckpt = cfg.get("ckpt_path")
        if ckpt is not None:
            saved = check_checkpoint(ckpt, self.model)
            if subcommand == "fit":
                for logger in self.trainer.loggers:
                    if isinstance(logger, ResumableCSVLogger):
                        logger.keep_before_epoch = int(saved.get("epoch", -1)) + 1
            if "weights_only" in cfg and cfg.get("weights_only") is None:
                cfg["weights_only"] = True  # neurodyn checkpoints hold tensors and plain containers only
        super()._run_subcommand(subcommand)


# -- one-line parser errors ---------------------------------------------------------------------------
_NOISE = ("Parser key", "Does not validate against any of the Union subtypes", "Subtypes:", "Errors:",
          "Given value type:", "Expected a <class 'NoneType'>", "Not a valid subclass of", "Subclass types expected")


def _config_files(argv: list[str]) -> list[str]:
    files = []
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            files.append(argv[i + 1])
        elif arg.startswith("--config="):
            files.append(arg.split("=", 1)[1])
    return files


def _file_with_key(files: list[str], key: str | None, option: str | None) -> str | None:
    """The last config file whose YAML holds ``key`` (or an ``option`` anywhere below it)."""
    if not key:
        return None
    import yaml

    def holds(node, parts) -> bool:
        if not parts:
            return option is None or _contains(node, option)
        return isinstance(node, dict) and parts[0] in node and holds(node[parts[0]], parts[1:])

    for file in reversed(files):
        try:
            data = yaml.safe_load(Path(file).read_text())
        except Exception:
            continue
        if holds(data, key.split(".")):
            return file
    return None


def _path_to(node, option: str) -> list[str] | None:
    """Keys leading to ``option`` inside nested dicts (depth first), or None."""
    if isinstance(node, dict):
        if option in node:
            return [option]
        for k, v in node.items():
            sub = _path_to(v, option)
            if sub:
                return [str(k), *sub]
    return None


def _contains(node, option: str) -> bool:
    if isinstance(node, dict):
        return option in node or any(_contains(v, option) for v in node.values())
    return False


def parser_error(message: str, argv: list[str]) -> InputError:
    """Turn a jsonargparse error (many lines, nested Union explanations) into one InputError line."""
    text = str(message)
    key_match = re.search(r'Parser key "([^"]+)"', text)
    key = key_match.group(1) if key_match else None
    missing = re.search(r"File does not exist: '([^']+)'", text) or re.search(r"Unable to load config '([^']+)'", text)
    if missing:
        return InputError("no such config file", path=missing.group(1), field=key or "config")
    option = re.search(r"Option '([^']+)' is not accepted", text) or re.search(r'Key "([^"]+)" is not expected', text)
    files = _config_files(argv)
    unknown = re.search(r"does not accept option '([^']+)'", text) or re.search(r"No action for key \"([^\"]+)\"", text)
    if unknown:
        name = unknown.group(1)
        head, _, last = name.rpartition(".")
        return InputError("unknown option (misspelt, or not an option of this section)",
                          path=_file_with_key(files, head or None, last) if head else _file_with_key(files, name, None),
                          field=name)
    if "Problems parsing config" in text:
        import yaml

        for file in files:
            try:
                yaml.safe_load(Path(file).read_text())
            except yaml.YAMLError as err:
                mark = getattr(err, "problem_mark", None)
                where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
                problem = getattr(err, "problem", None) or "invalid YAML"
                return InputError(f"{where}{problem}", path=file, field="yaml")
            except OSError:
                continue
        return InputError(" ".join(text.split())[:300], field="config")
    unrecognized = re.search(r"Unrecognized arguments: (.*)", text)
    if unrecognized:
        return InputError(f"unrecognized arguments: {unrecognized.group(1).strip()}", field="arguments")
    lines = [line.strip().lstrip("- ").strip() for line in text.splitlines()]
    given = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("Given value:")), None)
    lines = [line for line in lines if line and not line.startswith((*_NOISE, "Given value:"))]
    path = _file_with_key(files, key, option.group(1) if option else None)
    if option:
        cls = re.search(r"class_path '([^']+)'", text)
        where = f" by {cls.group(1).rsplit('.', 1)[-1]}" if cls else ""
        name = option.group(1)
        field = f"{key}.{name}" if key else name
        if path is not None:  # the full dotted path of the option inside the file
            import yaml

            found = _path_to(yaml.safe_load(Path(path).read_text()).get(key, {}), name)
            field = ".".join([key, *found]) if found else field
        return InputError(f"option {name!r} is not accepted{where}", path=path, field=field)
    if re.search(r"Expected a dot import path string|Import path .* does not|No module named|not a subclass|"
                 r"does not correspond to a subclass|has no attribute", text) and key in ("model", "data"):
        choices = ("LangevinFlowModule, HMMGLMModule" if key == "model" else
                   "NLBDataModule, LFADSDataModule, LorenzDataModule, SwitchingGLMDataModule")
        return InputError(f"unknown class {given!r} (choices: {choices})", path=path, field=key)
    detail = "; ".join(dict.fromkeys(lines))[:300] or "invalid value"
    if given is not None and given not in detail:
        detail += f" (given: {given})"
    return InputError(detail, path=path, field=key)


@contextlib.contextmanager
def _quiet_lightning():
    """Silence Lightning's advertising tips and warnings that are expected in neurodyn's use."""
    rank_zero_logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    tips = _DropTips()
    rank_zero_logger.addFilter(tips)
    with warnings.catch_warnings():
        for pattern in _QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=pattern)
        try:
            yield
        finally:
            rank_zero_logger.removeFilter(tips)


def _prepare_argv(rest: list[str]) -> list[str]:
    """``--run-name`` -> ``--run_name``; ``--run DIR`` puts ``DIR/config.yaml`` first in the config stack."""
    out: list[str] = []
    run = None
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg.startswith("--run-name"):
            arg = "--run_name" + arg[len("--run-name"):]
        if arg == "--run" and i + 1 < len(rest):
            run = rest[i + 1]
        elif arg.startswith("--run="):
            run = arg.split("=", 1)[1]
        out.append(arg)
        i += 1
    if run is None:
        return out
    run_dir = Path(run)
    if not run_dir.is_dir():
        raise InputError("no such run folder", path=run, field="run")
    config = run_dir / "config.yaml"
    if not config.is_file():
        raise InputError("not a run folder (no config.yaml)", path=run, field="run")
    return ["--config", str(config), *out]


def cli_main(argv: list[str]) -> int:
    """Run a training subcommand (``argv[0]`` is fit/validate/test/predict); returns the exit code."""
    from jsonargparse import ArgumentError
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    command, rest = argv[0], _prepare_argv(list(argv[1:]))
    # sys.argv is left as it is: Lightning's DDP launcher starts the other processes by re-running it.
    cli = None
    resume = ResumeState()
    try:
        with _quiet_lightning():
            cli = NeurodynCLI(
                model_class=pl.LightningModule,
                datamodule_class=NeuralDataModule,
                subclass_mode_model=True,
                subclass_mode_data=True,
                args=[command, *rest],
                seed_everything_default=0,
                trainer_defaults={"default_root_dir": DEFAULT_ROOT},
                save_config_callback=RunConfigSaver,
                save_config_kwargs={"overwrite": True},
                parser_kwargs={"exit_on_error": False, command: {"exit_on_error": False}},
                user_argv=rest,
                resume_state=resume,
            )
    except ArgumentError as err:
        raise parser_error(str(err), rest) from None
    except TrainingDiverged as err:
        print(f"neurodyn {command}: error: {err}", file=sys.stderr)
        return 2
    except (RunInterrupted, SIGTERMException) as err:
        signum = getattr(err, "signum", signal.SIGTERM)
        return _interrupted(command, signum, resume.run_dir, finished=isinstance(err, SIGTERMException))
    if resume.signal is not None:
        return _interrupted(command, resume.signal, resume.run_dir, finished=True)
    if command == "fit" and cli is not None and cli._run_dir is not None and cli.trainer.checkpoint_callback:
        print(f"run folder: {cli._run_dir}", flush=True)
    return 0


def _interrupted(command: str, signum: int, run_dir: Path | None, finished: bool) -> int:
    name = signal.Signals(signum).name
    last = run_dir / "checkpoints" / "last.ckpt" if run_dir is not None else None
    if last is not None and last.is_file():
        when = "after finishing the epoch" if finished else "during an epoch; last.ckpt is the epoch before"
        print(f"neurodyn {command}: interrupted by {name} {when}; resume with: neurodyn fit --run {run_dir}",
              file=sys.stderr, flush=True)
    else:
        print(f"neurodyn {command}: interrupted by {name} before any epoch finished; nothing to resume",
              file=sys.stderr, flush=True)
    return 128 + int(signum)
