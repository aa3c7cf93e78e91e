"""``neurodyn fit | validate | test | predict``: the LightningCLI entry point.

A run is a stack of YAML files (later ones override earlier ones) plus command-line overrides::

    neurodyn fit --config configs/langevinflow/lorenz.yaml --trainer.max_epochs 50 --run-name lorenz
    neurodyn fit --run runs/lorenz --trainer.max_epochs 100        # resume from last.ckpt, same folder
    neurodyn predict --run runs/lorenz                              # best checkpoint -> runs/lorenz/predictions.h5
    neurodyn validate --run runs/lorenz --ckpt_path last

Run folders
    Each ``fit`` writes one folder, ``<trainer.default_root_dir>/<run name>`` (default root ``runs``, default
    name a timestamp ``YYYYmmdd-HHMMSS``; ``--run-name NAME`` picks it): ``config.yaml`` (the full
    configuration), ``metrics.csv``, ``tensorboard/``, ``checkpoints/`` with ``last.ckpt`` (the last finished
    epoch, always), the top-k files named after the monitored metric and ``checkpoints.json`` (monitor, scores,
    best file). ``--run DIR`` reads ``DIR/config.yaml``, so a run is resumed, validated or predicted without
    copying paths; ``--ckpt_path best|last`` resolve inside the run's checkpoints folder (``DIR/checkpoints``, or
    the ``--checkpoint.dirpath`` of its first fit, which config.yaml records absolute, or ``{run}/SUB`` inside the
    run folder: :func:`~neurodyn.training.checkpoint_index.checkpoint_folder`; default: ``last`` for ``fit --run``,
    ``best`` for validate / test / predict; a resume into a folder outside the run folder whose ``checkpoints.json``
    names another run folder, a copy's, is refused). ``fit --ckpt_path DIR/checkpoints/X.ckpt`` also continues in
    ``DIR``, and so does a checkpoint in the run's ``--checkpoint.dirpath`` folder that its index links to ``DIR``
    (:func:`~neurodyn.training.checkpoint_index.run_of_checkpoint`); with ``--run-name`` naming another folder it is
    refused (a resumed run continues in its own folder; the old run is never written). ``fit --run DIR --ckpt_path
    FILE`` takes only a checkpoint of ``DIR``'s (one that records ``DIR``'s run id, ``run.json``; for runs and
    checkpoints written before run ids, one in its checkpoints folder, or a copy with the same bytes): another
    run's, or any other file, is refused (a run folder records one run). Any other fit (a new run, or one from a
    checkpoint outside a run folder) writes only a new or empty folder: a ``--run-name`` -- or the ``run_name`` of
    ``fit --config DIR/config.yaml`` -- of a folder that holds files is refused. A fit holds the run folder's lock
    ``.run.lock`` until it ends (:func:`neurodyn.io.output.hold_folder`): a second fit of the same folder is refused
    at once. ``{run}`` in a logger's ``save_dir`` stands for the run folder. validate / test / predict write no
    logs. The prediction file follows every command's output policy (:func:`neurodyn.io.output_file`): it may not
    be a file the command reads (:func:`neurodyn.training.inputs.command_inputs`: the data, the Lorenz cache, the
    checkpoint, every config file however given: ``-c``, ``--data d.yaml``, ...) or one of the run's records
    (:data:`RUN_RECORDS`: ``config.yaml``, ``run.json``, ``hparams.yaml``, ``metrics.csv``, ``tensorboard/``,
    ``checkpoints/``; ``config.resume-<n>.yaml``); an existing one is replaced only with ``--overwrite``
    (``--prediction.overwrite true``). A fit whose run records would be written over a file it reads is refused
    the same way. Its lock is taken when the arguments are checked and held until the file is written or the run
    fails (:func:`neurodyn.io.output.hold_output`), so a second predict to the same file is refused before it loads
    anything. The file records what produced it (model, model settings,
    checkpoint, versions: :class:`PredictionWriter`).

A checkpoint's model settings
    Lightning rebuilds the model from the checkpoint's hyper-parameters, over the run's config. For
    validate / test / predict, a model setting the user gave (config file or command line, not a default)
    that differs from the checkpoint's is sorted by
    :func:`~neurodyn.training.checkpoints.reconcile_model_settings`: a setting that defines the trained
    model (sizes, architecture, states, lags, basis, link, LangevinFlow's dynamics, and any setting not
    listed below) is refused in one line naming the option and both values; an evaluation setting
    (:data:`~neurodyn.training.checkpoints.EVALUATION_SETTINGS`: LangevinFlow's ``eval_mode``,
    ``n_eval_samples`` and speed / memory options) is the user's, with a one-line note; a training
    setting (:data:`~neurodyn.training.checkpoints.TRAINING_SETTINGS`) keeps the checkpoint's value, with
    a note. Resuming (``fit --run`` / ``fit --ckpt_path``) refuses a training setting too: the resumed run
    continues the checkpoint's (a different ``lr`` or ``hidden_size`` given there was silently dropped).
    A resume also keeps the run's data, trainer (those a resume may change aside), seed, checkpoint,
    evaluation and optimizer settings (:func:`~neurodyn.training.checkpoints.check_resumed_settings`
    against the run's ``config.yaml``, or against the checkpoint's record of them outside a run folder), and
    never rewrites ``config.yaml``: what it was given goes to ``config.resume-<n>.yaml``. Of the evaluation
    settings, a resume refuses those that change how the monitored validation metrics are computed
    (:data:`~neurodyn.training.checkpoints.VALIDATION_SETTINGS`: ``eval_mode``, ``n_eval_samples``,
    ``val_samples``, ``decoder_precision``), since ``best.ckpt`` would be chosen under two rules.

Exact resume and interrupts
    Checkpoints hold every random state training draws from (torch, numpy, python, the model's and the
    DataModule's ``torch.Generator``), so ``fit`` for N epochs and ``fit`` for k epochs + resume to N
    give identical weights and metrics. A first SIGTERM / SIGINT finishes the epoch, saves ``last.ckpt``
    and exits with 128 + the signal number and the command that resumes, also before ``trainer.min_epochs``
    / ``min_steps`` are done (the resume honours them); a second one stops at once. A first
    signal during the epoch that ends the fit anyway (``max_epochs`` / ``max_steps`` reached, early stopping,
    ``max_time`` used up) leaves a finished run: one line on stderr says so, no resume command, exit 0.
    ``trainer.max_time`` is checked at epoch ends (:class:`~neurodyn.training.callbacks.EpochTimer`), so the
    ``last.ckpt`` of a fit it stopped is an exact resume point too; a line says the run is unfinished and that
    a resume needs a longer ``max_time`` (the run's training time in all), and a resume that has none left says
    there is nothing to train (:func:`~neurodyn.training.checkpoints.check_resume_time`).

Errors
    Every bad input -- unknown keys in YAML or on the command line, bad values, unknown class paths,
    missing files, checkpoints that are truncated, of another model family, of other sizes or of a newer
    format -- raises :class:`neurodyn.errors.InputError` (one line naming the file and the field; the
    ``neurodyn`` command prints it and exits with 2). No usage text is printed before it, nor anything else:
    what a run prints before it starts (Lightning's device banner, "Restoring states ...", the model summary,
    notes) is held until training / validation / testing / prediction begins
    (:func:`~neurodyn.training.quiet.hold_stdout`; on a terminal until a fit's sanity check starts, whose bar
    is then drawn live), and a checkpoint is checked against the model and the data before the Trainer is
    built. The ``limit_*_batches`` and ``val_check_interval`` are checked when the Trainer sets up
    (:func:`~neurodyn.training.refusals.check_batch_limits`). Under ``ddp_spawn`` / ``ddp_fork`` the processes
    Lightning starts hold and quiet their output the same way, and bad input they find is the command's one
    line (:mod:`neurodyn.training.processes`); under ``ddp`` the processes it starts (the command run again)
    leave that line to the command's process. ``--trainer.devices`` above the CPU cores on the CPU is run
    with a note on stderr (:func:`~neurodyn.training.processes.processes_note`).

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
import os
import random
import signal
import sys
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import ModelCheckpoint, ModelSummary, ProgressBar, RichProgressBar
from lightning.pytorch.cli import LightningCLI

from neurodyn.errors import InputError, command_line_names, one_line, wrapped_input_error
from neurodyn.io.hdf5 import absent_reason, check_input_file
from neurodyn.io.output import Interrupted, may_access, not_writable_words
from neurodyn.training import child_rank, restore_environ
from neurodyn.training.callbacks import (
    EpochLog,
    EpochTimer,
    ParameterSummary,
    ResumableCSVLogger,
    ResumeState,
    RunInterrupted,
    denormals_flushed,
    float32_default,
    max_time_seconds,
    torch_settings_kept,
)
from neurodyn.training.checkpoint_index import (
    INDEX_NAME,
    RUN_PLACEHOLDER,
    RUN_RECORD,
    checkpoint_folder,
    claim_folder,
    claimed_by,
    claimed_words,
    foreign_index,
    is_run_folder,
    missing_folder,
    new_run_from,
    new_run_id,
    recorded_dirpath,
    release_folder,
    resolved_dirpath,
    run_id,
    unreadable_index,
    unreadable_words,
    used_words,
)
from neurodyn.training.checkpoints import (
    DATA_FILES_KEY,
    RUN_SETTINGS_KEY,
    SIZE_KEYS,
    AutoModelCheckpoint,
    check_bin_width,
    check_checkpoint,
    check_data_files,
    check_header,
    check_resume_length,
    check_resume_time,
    check_resumed_settings,
    check_units,
    cosine_span_note,
    read_checkpoint,
    reconcile_model_settings,
    run_seed,
    sampled_batch_note,
)

# Imported so that their short class names resolve in YAML (class_path: LangevinFlowModule).
from neurodyn.training.datamodules import (  # noqa: F401
    LFADSDataModule,
    LorenzDataModule,
    NeuralDataModule,
    NLBDataModule,
    SwitchingGLMDataModule,
)
from neurodyn.training.hmmglm_module import HMMGLMModule  # noqa: F401
from neurodyn.training.inputs import command_inputs, config_inputs
from neurodyn.training.module import LangevinFlowModule  # noqa: F401
from neurodyn.training.parser_errors import (
    CALLBACK_SECTIONS,
    _file_with_key,
    check_config_files,
    config_files,
    parser_error,
    qualified,
)
from neurodyn.training.predictions import NLBEvaluationCallback, PredictionWriter, run_select_split
from neurodyn.training.processes import processes_note, use_command_launcher
from neurodyn.training.quiet import HeldStream, ReleaseStdout, hold_stdout, quiet_lightning
from neurodyn.training.refusals import check_trainer_counts, input_error_of, misconfigured_option
from neurodyn.training.runs import (
    DEFAULT_ROOT,
    LENGTH_SETTINGS,
    RUN_DIR_ENV,
    RUN_ID_ENV,
    RunConfigSaver,
    checkpoint_run_id,
    is_run_checkpoint,
    keeps_best,
    prepare_argv,
    resolve_checkpoint,
    run_dir_of_checkpoint,
    run_stopped,
    unique_run_dir,
)

# Run folders written before the DataModules moved from neurodyn.data.datamodule to neurodyn.training.datamodules
# name the old module in their config.yaml; it resolves to the new one, so `--run DIR` still works for them.
sys.modules.setdefault("neurodyn.data.datamodule", sys.modules["neurodyn.training.datamodules"])

#: the classes ``neurodyn fit`` uses when neither the command line nor a config names one
DEFAULT_CLASSES = {"model": "neurodyn.training.module.LangevinFlowModule",
                   "data": "neurodyn.training.datamodules.LorenzDataModule"}

#: what each training subcommand does (its --help)
SUBCOMMAND_HELP = {
    "fit": "Train a model into a run folder <trainer.default_root_dir>/<run name>, or resume a run: --run DIR "
           "(from its last.ckpt) or --ckpt_path DIR/checkpoints/X.ckpt; both read DIR/config.yaml.",
    "validate": "Score a trained model on the split validation uses (the select split where the data carve one): "
                "valid/* metrics. Give --run DIR or --ckpt_path FILE.",
    "test": "Score a trained model once on the report split (the validation / evaluation trials): test/* metrics. "
            "Give --run DIR or --ckpt_path FILE.",
    "predict": "Write a model's predictions of every trial (LangevinFlow: rates and latents; HMM-GLM: state "
               "posteriors, Viterbi paths, couplings, connection types) to an HDF5 file: --prediction.path, "
               "default DIR/predictions.h5 with --run DIR.",
}
#: --ckpt_path help: fit, and validate / test / predict
CKPT_PATH_HELP = {
    "fit": "resume from a checkpoint: 'last' inside --run DIR (the default there), or a checkpoint file (a file "
           "DIR/checkpoints/X.ckpt of a run folder reads DIR/config.yaml and continues in DIR; any other file "
           "starts a new run folder)",
    "other": "the checkpoint to use: 'best' (the run's selected checkpoint, the default where the run selects) "
             "or 'last' (its last epoch, the default for runs that select nothing) inside --run DIR, or a "
             "checkpoint file",
}


#: what ``fit`` writes into a run folder and ``predict`` never writes over (a prediction file may sit beside them)
RUN_RECORDS = ("config.yaml", RUN_RECORD, "hparams.yaml", "metrics.csv", "tensorboard", "checkpoints")


def _started_by_another_launcher() -> bool:
    """Whether this process is one of several of a run that a launcher other than Lightning's started
    (torchrun sets ``WORLD_SIZE``, srun ``SLURM_NTASKS``): each runs the command line on its own, and no process
    hands its drawn seed to the others as Lightning's launcher does (``PL_GLOBAL_SEED``)."""
    for key in ("WORLD_SIZE", "SLURM_NTASKS"):
        try:
            if int(os.environ.get(key) or 1) > 1:
                return True
        except ValueError:
            continue
    return False


class NeurodynCLI(LightningCLI):
    """LightningCLI with neurodyn's links, forced callbacks, run folders and one-line errors."""

    def __init__(self, *args, user_argv: list[str] | None = None, resume_state: ResumeState | None = None,
                 held: contextlib.ExitStack | None = None, stdout: HeldStream | None = None, **kwargs):
        self._user_argv = list(user_argv or [])
        # standard output (Lightning's device banner, notes), held until the run starts (quiet.hold_stdout)
        self._stdout = stdout
        self._checkpoint: dict | None = None  # the checkpoint the run uses, checked before the Trainer is built
        # what this run holds until it ends (the prediction file's lock); closed by the caller, after the run
        self._held = held if held is not None else contextlib.ExitStack()
        self._run_dir: Path | None = None
        self._continues_run = True  # fit: the run of the checkpoint goes on in its own folder (else a new run)
        #: fit: the run's id (checkpoint_index.RUN_RECORD): a new one for a new run, the run record's on a resume
        #: (None: a run written before neurodyn kept one)
        self._run_id: str | None = None
        self._prediction_inputs: list[Path] = []
        self._config_to_save = None
        self.resume_state = resume_state or ResumeState()
        super().__init__(*args, **kwargs)

    def _prepare_subcommand_parser(self, klass, subcommand: str, **kwargs):
        """Lightning's parser of a subcommand with neurodyn's description and ``--ckpt_path`` help (Lightning's
        were cut mid-sentence, "Useful to", and offered ``hpc`` / ``registry``, which neurodyn does not resolve)."""
        kwargs["description"] = SUBCOMMAND_HELP[subcommand]
        parser = super()._prepare_subcommand_parser(klass, subcommand, **kwargs)
        for action in parser._actions:
            if action.dest == "ckpt_path":
                action.help = CKPT_PATH_HELP["fit" if subcommand == "fit" else "other"]
        from lightning.pytorch.cli import _get_short_description

        lightning_title = _get_short_description(getattr(klass, subcommand))
        for group in parser._action_groups:  # the method's arguments, titled with its cut docstring
            if group.title == lightning_title:
                group.title = f"options of Trainer.{subcommand}"
        return parser

    def add_arguments_to_parser(self, parser) -> None:
        for name in SIZE_KEYS:
            parser.link_arguments(f"data.{name}", f"model.init_args.{name}", apply_on="instantiate")
        parser.add_lightning_class_args(AutoModelCheckpoint, "checkpoint")
        parser.add_lightning_class_args(NLBEvaluationCallback, "nlb_eval")
        parser.add_lightning_class_args(PredictionWriter, "prediction")
        for action in parser._actions:  # cli_main turns predict's --overwrite / --out into these: say so in --help
            if action.dest == "prediction.overwrite":
                short = "``neurodyn predict --overwrite`` is short for this option set to true."
                action.help = f"{action.help or ''} {short}"
            elif action.dest == "prediction.path":
                action.help = f"{action.help or ''} ``neurodyn predict --out FILE`` is short for this option."
        parser.add_argument("--run", type=str | None, default=None,
                            help="run folder written by `neurodyn fit` (its config.yaml is read first)")
        parser.add_argument("--run_name", "--run-name", type=str | None, default=None,
                            help="name of the run folder under trainer.default_root_dir (default: a timestamp)")
        parser.set_defaults(
            {
                **{key: {"class_path": path} for key, path in DEFAULT_CLASSES.items()},
                "trainer.logger": [
                    {"class_path": "neurodyn.training.callbacks.ResumableCSVLogger",
                     "init_args": {"save_dir": RUN_PLACEHOLDER, "name": "", "version": ""}},
                    {"class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                     "init_args": {"save_dir": RUN_PLACEHOLDER, "name": "tensorboard", "version": ""}},
                ],
            }
        )

    def parse_arguments(self, parser, args) -> None:
        """Parse; where ``--model`` / ``--data`` (or a config) chose a class other than the default, parse
        again with that class as the default.

        jsonargparse keeps the default class's values for the arguments the chosen class shares with it
        (jsonargparse issue #460): ``--model HMMGLMModule`` ran with LangevinFlowModule's ``lr`` 0.003
        instead of its own 0.01, ``--data SwitchingGLMDataModule`` simulated LorenzDataModule's 29 neurons
        with its batch size 64 instead of 20 and 30. The first pass only finds the chosen classes (it does
        not print a config)."""
        sub = args[0] if args and args[0] in parser._subcommands_action._name_parser_map else None
        first = [a for a in args if not a.startswith("--print_config")]  # jsonargparse: only --print_config[=FLAGS]
        super().parse_arguments(parser, first)
        cfg = self.config[sub] if sub else self.config
        chosen = {key: cfg[key]["class_path"] for key in DEFAULT_CLASSES
                  if cfg.get(key) is not None and cfg[key].get("class_path") not in (None, DEFAULT_CLASSES[key])}
        if chosen or first != args:
            target = parser._subcommands_action._name_parser_map[sub] if sub else parser
            target.set_defaults({key: {"class_path": path} for key, path in chosen.items()})
            super().parse_arguments(parser, args)

    # -- before the classes exist: paths, run folder, checkpoints -----------------------------------
    def _parse_ckpt_path(self) -> None:
        """Resolve the run folder and ``--ckpt_path best|last``, then read the checkpoint safely.

        Lightning's own step loads the checkpoint to merge its hyper-parameters into the model config; a
        truncated file or one of another model family would fail there with a traceback, so the file is
        first read here (``weights_only=True``) and its format and family checked against the config.

        That merge lets the checkpoint's model settings win over the run's. Model settings the user gave
        (config files, command line; not defaults) that differ from the checkpoint's are then sorted by
        :func:`~neurodyn.training.checkpoints.reconcile_model_settings`: evaluation settings are the user's
        (with a note); training settings the checkpoint's with a note for validate / test / predict, and
        refused when resuming a fit (it continues the checkpoint's run); anything that defines the trained
        model is refused in one line.
        """
        sub = self.config.get("subcommand")
        if not sub:
            return
        cfg = self.config[sub]
        self._resolve_run(sub, cfg)
        ckpt = cfg.get("ckpt_path")
        if ckpt is None:
            return
        saved = read_checkpoint(ckpt)
        model = cfg.get("model")
        class_path = model.get("class_path") if hasattr(model, "get") else None
        family = str(class_path).rsplit(".", 1)[-1] if class_path else None
        # another model family first: it explains every other difference (before, a LangevinFlow checkpoint
        # given to an HMM-GLM fit was refused for its batch size, then its evaluation interval, ...)
        check_header(saved, ckpt, family)
        if sub == "fit":
            self._finished = check_resume_length(saved, cfg, ckpt) or check_resume_time(saved, cfg)
            note = None if self._finished else cosine_span_note(saved, cfg)
            if note:  # the epochs past the cosine's span train at min_lr
                print(note, flush=True)
        if sub == "fit" and self._run_dir is not None and (self._run_dir / "config.yaml").is_file():
            self._check_resumed_run(cfg, self._run_dir / "config.yaml")
        if sub == "fit" and isinstance(saved.get(RUN_SETTINGS_KEY), dict):
            # the settings the checkpoint's own run recorded: also when it resumes in a run folder (a file of
            # another run's put into DIR/checkpoints continued that run's weights on DIR's data)
            recorded = saved[RUN_SETTINGS_KEY]
            if not self._continues_run:  # a new run from the file: its checkpoints go to a folder of its own
                recorded = _without_checkpoint_folder(recorded)
            check_resumed_settings(recorded, cfg, ckpt, source="the checkpoint", given=self._gave)
        if isinstance(saved.get(RUN_SETTINGS_KEY), dict):  # a file re-made under the run's data path
            for note in check_data_files(saved[RUN_SETTINGS_KEY].get(DATA_FILES_KEY), cfg, ckpt, sub == "fit"):
                print(note, flush=True)
        if sub in ("validate", "test") and isinstance(saved.get(RUN_SETTINGS_KEY), dict):
            self._note_trained_on(saved[RUN_SETTINGS_KEY].get(DATA_FILES_KEY), cfg, sub)
        given = self._given_model_settings(sub)
        from jsonargparse import ArgumentError

        try:
            super()._parse_ckpt_path()
        except ArgumentError as err:
            raise InputError(f"its hyper-parameters do not fit the model config ({parser_error(str(err), [])})",
                             path=ckpt, field="hyper_parameters") from None
        if given:
            apply, notes = reconcile_model_settings(family or "", given, saved.get("hyper_parameters") or {},
                                                    ckpt, sub, resolved=(saved.get("neurodyn") or {}).get("resolved"))
            for key, value in apply.items():
                self.config[sub][f"model.init_args.{key}"] = value
            for note in notes:
                print(note, flush=True)
        if sub != "fit":
            note = sampled_batch_note(saved.get(RUN_SETTINGS_KEY), self.config[sub], sub)
            if note:
                print(note, flush=True)
            seed, note = run_seed(saved.get(RUN_SETTINGS_KEY), self.config[sub].get("seed_everything"), sub,
                                  self._gave_top_level("seed_everything"))
            if seed is not None:  # before Lightning seeds with it (_set_seed follows this step)
                self.config[sub]["seed_everything"] = seed
            if note:
                print(note, flush=True)

    @staticmethod
    def _note_trained_on(training_files, cfg, sub: str) -> None:
        """A note when ``validate`` / ``test`` score a val-phase file's evaluation trials with a checkpoint whose
        run trained on them (a test-phase file's model): its metrics are not held out. ``predict`` records the
        same count and ``evaluate`` / ``submit`` refuse such predictions."""
        from neurodyn.training.predictions import trained_on_eval_trials

        data = cfg.get("data")
        path = (data.get("init_args") or {}).get("path") if hasattr(data, "get") else None
        if not isinstance(path, str) or not os.path.isfile(path):
            return
        found = trained_on_eval_trials(training_files, path)
        if found.get("trained_on_eval_trials"):
            print(f"note: the checkpoint's run trained on {found['trained_on_eval_trials']} of the evaluation trials "
                  f"of {path} ({found['training_data']} holds them in train_input): the {sub} metrics of them are "
                  "not held out", flush=True)

    def _gave(self, key: str) -> bool:
        """Whether the user set the option ``key`` (``data.init_args.batch_size``: also ``--data.batch_size``)
        on the command line or could have in a config file (any config file counts: ``--config`` / ``-c``, or
        one given for a section, ``--data d.yaml``)."""
        sub = self.config.get("subcommand")
        if config_inputs(self.config[sub] if sub else self.config):
            return True
        spellings = {key, key.replace(".init_args.", ".")}
        return any(a.startswith("--") and a[2:].split("=", 1)[0] in spellings for a in self._user_argv)

    def _gave_top_level(self, key: str) -> bool:
        """Whether the user set the top-level option ``key`` (``seed_everything``): on the command line, or in a
        config file that holds it (:meth:`_gave` counts any config file: a config of trainer settings alone made
        the default seed look asked for)."""
        from neurodyn.training.parser_errors import _file_with_key

        if any(a.startswith("--") and a[2:].split("=", 1)[0] == key for a in self._user_argv):
            return True
        sub = self.config.get("subcommand")
        files = [str(path) for path in config_inputs(self.config[sub] if sub else self.config)]
        return _file_with_key(files, key, None) is not None

    @staticmethod
    def _check_resumed_run(cfg, config: Path) -> None:
        """A resumed fit continues on the run's data with its trainer settings (those a resume may change
        aside): :func:`~neurodyn.training.checkpoints.check_resumed_settings` against the run's config.yaml."""
        import yaml

        try:
            saved = yaml.safe_load(config.read_text())
        except (OSError, yaml.YAMLError) as err:
            raise InputError(f"unreadable run config ({one_line(err, 160)})", path=config, field="run") from None
        if isinstance(saved, dict):
            check_resumed_settings(saved, cfg, config)

    def _given_model_settings(self, sub: str) -> dict | None:
        """The ``model.init_args`` values the user gave (config files and command line, defaults left out),
        or None when they cannot be told apart (then nothing is compared)."""
        try:
            given = self.parser.parse_args([sub, *self._user_argv], defaults=False)
            model = given[sub].get("model")
        except Exception:  # noqa: BLE001 - the arguments parsed once already; only the comparison is skipped
            return None
        init = model.get("init_args") if hasattr(model, "get") else None
        return init.as_dict() if hasattr(init, "as_dict") else None

    def _set_seed(self) -> None:
        seed = self._get(self.config, "seed_everything")
        if not isinstance(seed, bool) and isinstance(seed, int) and not 0 <= seed <= 2**32 - 1:
            # Lightning seeds numpy's legacy generator: 0 .. 2**32 - 1 (it raised a traceback)
            raise InputError(f"must be in 0 .. {2**32 - 1}, got {seed}", field="seed_everything")
        if seed is True:  # "a random seed" (--help): Lightning's seed_everything(None) takes 0, or PL_GLOBAL_SEED
            # a DDP process that Lightning started takes the seed the command drew (its PL_GLOBAL_SEED)
            inherited = os.environ.get("PL_GLOBAL_SEED") if child_rank() else None
            if inherited is None and _started_by_another_launcher():
                raise InputError("true draws a seed in each process, and these processes were started by another "
                                 "launcher (torchrun, srun), so each would train with its own: give a number",
                                 field="seed_everything")
            seed = int(inherited) if inherited is not None else random.SystemRandom().randrange(2**32)
            if self.subcommand:
                self.config[self.subcommand]["seed_everything"] = seed
            else:
                self.config["seed_everything"] = seed
            if not child_rank():
                where = " (the run's config.yaml records it)" if self.subcommand == "fit" else ""
                print(f"note: seed_everything: true drew the seed {seed}{where}", flush=True)
        super()._set_seed()

    def before_instantiate_classes(self) -> None:
        sub = self.subcommand
        cfg = self.config[sub] if sub else self.config
        if sub != "predict":  # fit / validate / test take the prediction writer's options but never write a file
            given = [a[2:].split("=", 1)[0] for a in self._user_argv if a.startswith("--prediction")]
            if given:  # (a shared config file may hold them for predict: only the command line is refused)
                raise InputError(f"only `neurodyn predict` writes a prediction file; {sub} would ignore it",
                                 field=given[0])
        path = cfg.get("data", {}).get("init_args", {}).get("path") if hasattr(cfg, "get") else None
        if path is not None and not os.path.exists(path):
            raise InputError(absent_reason(path, "file not found"), path=path, field="data.init_args.path")
        if path is not None:  # a folder, a FIFO (its open would wait for a writer), a device
            check_input_file(path, field="data.init_args.path")
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
            run_dir = run_dir_of_checkpoint(ckpt)
        if run_dir is None:  # --config DIR/config.yaml of a run folder (-c, or any other spelling)
            for file in config_inputs(cfg):
                # its config.yaml and its checkpoint folder, checkpoints/ or the one it records (it looked for
                # DIR/checkpoints only: a run with --checkpoint.dirpath had no best / last and no default output)
                if Path(file).name == "config.yaml" and is_run_folder(Path(file).parent):
                    run_dir = Path(file).parent
        if ckpt is None:
            if run_dir is None:
                raise InputError("needs a trained model: --run DIR (a folder written by neurodyn fit) or "
                                 "--ckpt_path FILE", field="ckpt_path")
            ckpt = "best" if keeps_best(run_dir) else "last"
        if ckpt in ("best", "last"):
            ckpt = resolve_checkpoint(run_dir, ckpt)
        cfg.ckpt_path = ckpt
        self._run_dir = run_dir
        # validate / test / predict write no logs (no new version folders) unless a logger is asked for
        if not any(a == "--trainer.logger" or a.startswith("--trainer.logger=") for a in self._user_argv):
            cfg.trainer.logger = False
        if sub == "predict":
            self._check_prediction_path(cfg, run_dir, ckpt)

    def _check_prediction_path(self, cfg, run_dir: Path | None, ckpt) -> None:
        """The output policy for ``predict`` (:func:`neurodyn.io.output.hold_output`), up front: the
        prediction file may not be a file the command reads (:func:`~neurodyn.training.inputs.command_inputs`)
        or one of the run's records
        (:data:`RUN_RECORDS`, ``config.resume-<n>.yaml``), also when only the checkpoint names the run; an
        existing one is replaced only with ``--overwrite``; its lock ``.<name>.lock`` is
        taken now and held until the file is written or the run fails, so a second ``predict`` to the same
        file is refused before it loads anything (by the command's process: under ``--trainer.strategy ddp`` the
        processes it starts neither take it nor write). The writer checks again and writes atomically
        (:class:`PredictionWriter`) under the held lock."""
        from neurodyn.io.output import hold_output

        prediction = cfg.get("prediction") or {}
        if prediction.get("path") is None and run_dir is not None:
            cfg.prediction.path = str(run_dir / "predictions.h5")
        if cfg.prediction.get("path") is None:
            # no run folder to write predictions.h5 into (a checkpoint outside any run, a config.yaml of a folder
            # that is no run folder): the writer said so only once the whole prediction had run, in a traceback
            raise InputError("no file to write the predictions to: give --prediction.path FILE.h5 (the default, "
                             "DIR/predictions.h5, needs a run folder: --run DIR, or a checkpoint in one)",
                             field="prediction.path")
        # every file the command reads: config files however given (-c, --data d.yaml, ...), the data and model
        # files (data.init_args.path, the Lorenz cache) and the checkpoint (training.inputs)
        inputs = command_inputs(cfg)
        if run_dir is None and ckpt not in (None, "best", "last"):
            run_dir = run_dir_of_checkpoint(ckpt)
        if run_dir is not None:  # the run's records (helper-58: --prediction.overwrite replaced its metrics.csv)
            inputs += [run_dir / name for name in RUN_RECORDS] + sorted(run_dir.glob("config.resume-*.yaml"))
        self._prediction_inputs = [Path(p) for p in inputs if p is not None]
        if child_rank():
            # a process `--trainer.strategy ddp` started (the command run again): the command's process holds the
            # lock and writes the file (here it was refused, 'another process is writing this file', and Lightning
            # killed the command: exit 137, no file)
            return
        self._held.enter_context(hold_output(cfg.prediction.path, inputs=self._prediction_inputs,
                                             overwrite=bool(prediction.get("overwrite")), field="prediction.path"))

    def _setup_fit_run(self, cfg, run_dir: Path | None, ckpt) -> None:
        root = Path(cfg.trainer.get("default_root_dir") or DEFAULT_ROOT)
        if any(p.exists() and not p.is_dir() for p in (root, *root.parents)):  # was a NotADirectoryError traceback
            raise InputError("is a file or lies inside one, expected a folder (run folders are made in it)",
                             path=root, field="trainer.default_root_dir")
        if run_dir is None and ckpt not in (None, "best", "last"):
            run_dir = run_dir_of_checkpoint(ckpt)
        elif run_dir is not None and ckpt not in (None, "best", "last"):
            owner = run_dir_of_checkpoint(ckpt)  # --run A --ckpt_path B/checkpoints/X.ckpt: B's weights in A
            if owner is not None and os.path.realpath(owner) != os.path.realpath(run_dir):
                raise InputError(f"is a checkpoint of another run ({owner}), not of --run {run_dir}; a resumed "
                                 f"run continues its own checkpoints: resume {owner} with --run {owner}",
                                 path=ckpt, field="ckpt_path")
            # --run A --ckpt_path kept/x.ckpt (outside any run folder): that file's weights and loop continued in
            # A, whose metrics.csv and checkpoints then described two runs. Only A's own checkpoints (in its
            # checkpoints folder, or the checkpoint.dirpath it recorded; or a copy with the same bytes) continue A. By
            # their run id where both record one: a copy kept elsewhere is A's after the original rotated out of A's
            # folder (the bytes matched nothing there), another run's never is
            if owner is None and os.path.isfile(ckpt):
                mine, its = run_id(run_dir), checkpoint_run_id(ckpt)  # a copy of a run folder has none
                why = None
                if mine and its and mine != its:
                    why = "it records another run's id"
                elif not (mine and its) and is_run_checkpoint(ckpt, checkpoint_folder(run_dir)) is False:
                    why = "not in its checkpoints folder, nor a copy of one there"
                if why is not None:
                    raise InputError(f"is not a checkpoint of --run {run_dir} ({why}); a run folder records one run: "
                                     f"resume the run with --run {run_dir} alone, or start a new run from this file "
                                     "with --ckpt_path and no --run (a new run folder)", path=ckpt, field="ckpt_path")
        named = any(a == "--run_name" or a.startswith("--run_name=") for a in self._user_argv)
        if named and run_dir is not None and cfg.get("run_name"):
            # --run-name NEW with --run OLD / --ckpt_path OLD/checkpoints/X.ckpt: a resume continues in the
            # run's own folder (before, it wrote into OLD without a word); the named folder is never OLD's
            other = root / str(cfg.run_name)
            same = (str(cfg.run_name) == run_dir.name if cfg.get("run") is not None
                    else os.path.realpath(other) == os.path.realpath(run_dir))
            if not same:  # ... and a new run from the checkpoint starts from a copy of it (the README's route)
                start = Path(ckpt) if ckpt not in (None, "best", "last") else checkpoint_folder(run_dir) / "last.ckpt"
                raise InputError(f"names another folder ({other}) than the run this checkpoint continues "
                                 f"({run_dir}): a resumed run continues in its own folder; resume it with --run "
                                 f"{run_dir}, or drop --run-name; or start the new run from "
                                 f"{new_run_from(run_dir, start, str(cfg.run_name))}", path=run_dir,
                                 field="run_name")
        resuming = ckpt is not None or cfg.get("run") is not None
        # the fit continues an existing run in its own folder (--run DIR, --ckpt_path DIR/checkpoints/X.ckpt); any
        # other fit -- a new run, or one from a checkpoint outside a run folder -- writes only a new or empty folder
        own_folder = run_dir is not None or ckpt in ("best", "last")  # best / last: inside the named folder
        self._continues_run = own_folder
        if not own_folder and not child_rank():
            _refuse_used_checkpoint_folder(cfg)  # ... and its checkpoints only a new or empty folder
            _refuse_unwritable_checkpoint_dirpath(cfg)
        if run_dir is None and cfg.get("run_name"):
            name = str(cfg.run_name)
            if not name or "/" in name or name in (".", ".."):
                raise InputError(f"must be a plain folder name, got {name!r}", field="run_name")
            run_dir = root / name
            if not resuming and not child_rank():
                from neurodyn.io.output import make_folders

                # as below: the root made here is the fit's, removed again if the fit leaves it empty (the run
                # folder's lock made it before, and a refused fit left it)
                self.resume_state.new_parents = make_folders(root.absolute(), root, "trainer.default_root_dir")
        if run_dir is None and child_rank() and os.environ.get(RUN_DIR_ENV):
            run_dir = Path(os.environ[RUN_DIR_ENV])  # a DDP process started by rank 0: the same folder
            resuming = True
        made = False
        if run_dir is None and _started_by_another_launcher():
            # each process names a new run folder by the time it starts: the ranks > 0 made folders of their own,
            # left empty beside the run (Lightning's launcher hands rank 0's on: RUN_DIR_ENV, above)
            raise InputError("torchrun / srun start each process of the run on its own, and each would make a run "
                             "folder of its own: give --run-name NAME (the same in every process)", field="run_name")
        if run_dir is None:
            from neurodyn.io.output import make_folders

            # the root and its missing parents, created here and removed again if the fit leaves them empty
            # (before: a refused fit left an empty runs/; a root that cannot be made was a traceback)
            self.resume_state.new_parents = make_folders(root.absolute(), root, "trainer.default_root_dir")
            run_dir, made = unique_run_dir(root), True
        if not child_rank():
            os.environ[RUN_DIR_ENV] = str(run_dir)  # inherited by the DDP processes Lightning starts
            # one fit at a time writes a run folder (a second one mixed its metrics.csv and config.yaml into
            # the first's): its lock .run.lock is held until this command ends, resumes included
            from neurodyn.io.output import hold_folder

            busy = "another neurodyn fit is writing this run folder; wait for it to end, " + (
                f"then resume it (neurodyn fit --run {run_dir})" if own_folder else "or choose another --run-name")
            field = "run" if cfg.get("run") else "run_name"
            made = self._held.enter_context(hold_folder(run_dir, field=field, busy=busy)) or made
            if not made and own_folder:  # a resume writes the run's checkpoint folder: the run's own, and there
                self._check_resumed_checkpoint_folder(run_dir)
            if not made:
                _refuse_unwritable_inside(run_dir, field)
            if made:
                self.resume_state.new_run_dir = run_dir  # removed again if the fit fails before a checkpoint
            elif not own_folder:  # checked under the lock: no other fit writes the folder meanwhile
                self._check_new_run_folder(run_dir, ckpt, named)
        # the run's id: a new run's is made here (written to its run record with its config.yaml), a resumed run's
        # is its record's (none for a run written before neurodyn kept one, nor for a copy of a run folder: its
        # record names the original's folder, whose id its checkpoints would carry); the ranks > 0 of DDP get rank 0's
        self._run_id = (os.environ.get(RUN_ID_ENV) if child_rank() else
                        run_id(run_dir) if own_folder else new_run_id())
        if not child_rank():
            if not own_folder:  # a {run} in --checkpoint.dirpath: checked now that the run folder is known
                _refuse_used_checkpoint_folder(cfg, run_dir)
                _refuse_unwritable_checkpoint_dirpath(cfg, run_dir)
                # ... and claimed: a second new run started at the same moment passed the checks above too
                self._held.enter_context(_claimed_checkpoint_folder(cfg, run_dir, self._run_id))
            if self._run_id:
                os.environ[RUN_ID_ENV] = self._run_id
            else:
                os.environ.pop(RUN_ID_ENV, None)
        if cfg.get("run") is not None and ckpt is None:
            ckpt = "last"
        if ckpt in ("best", "last"):
            ckpt = resolve_checkpoint(run_dir, ckpt)
        cfg.ckpt_path = ckpt
        self._run_dir = run_dir

    @staticmethod
    def _check_resumed_checkpoint_folder(run_dir: Path) -> None:
        """A resume continues in the run's checkpoint folder (:func:`~neurodyn.training.checkpoint_index.
        checkpoint_folder`): one that no longer exists is said as such (it read 'no last.ckpt: the run has not
        finished an epoch'), and one outside the run folder whose index names another run folder, or none, is
        refused (:func:`~neurodyn.training.checkpoint_index.foreign_index`): ``cp -r runs/a runs/a2`` of a run
        started with ``--checkpoint.dirpath ck``, then ``fit --run runs/a2``, wrote a2's last.ckpt and index over
        a's in ``ck``. Both in one line, before anything is written."""
        if not (run_dir / "config.yaml").is_file():
            return  # not a run folder: the resume says what is missing
        missing = missing_folder(run_dir)
        if missing is not None:
            raise InputError(missing[0], path=missing[1], field="checkpoint.dirpath")
        foreign = foreign_index(run_dir)
        if foreign is not None:
            raise InputError(foreign, path=run_dir, field="run")

    def _check_run_records(self, cfg) -> None:
        """A fit writes its run records (:data:`RUN_RECORDS`) into the run folder: none may be a file the fit reads
        (:func:`~neurodyn.training.inputs.command_inputs`). ``fit -c runs/x/config.yaml --run-name x`` (a folder
        with that config and no checkpoint) wrote the run's config.yaml over the config it was reading. A resume
        keeps an existing config.yaml (it writes config.resume-<n>.yaml) and continues from its checkpoint, so
        those two are not outputs there."""
        run_dir = self._run_dir
        ckpt = cfg.get("ckpt_path")
        resuming = ckpt is not None
        written = [run_dir / name for name in RUN_RECORDS
                   if not (name in ("config.yaml", RUN_RECORD) and resuming and (run_dir / name).is_file())]
        run_field = "run" if cfg.get("run") is not None else "run_name" if cfg.get("run_name") else "ckpt_path"
        fields = dict.fromkeys(written, run_field)
        if cfg.checkpoint.get("dirpath") is not None:  # the checkpoints go there, not into the run folder
            fields[Path(cfg.checkpoint.dirpath)] = "checkpoint.dirpath"
        ckpt_file = os.path.realpath(ckpt) if resuming else None
        for source in command_inputs(cfg):
            real = os.path.realpath(source)
            if real == ckpt_file or not os.path.isfile(real):
                continue
            for record, field in fields.items():
                inside = record.is_dir() and Path(real).is_relative_to(os.path.realpath(record))
                same = os.path.lexists(record) and _same_file(record, source)
                if inside:
                    other = "--checkpoint.dirpath" if field == "checkpoint.dirpath" else "run folder"
                    raise InputError(f"is an input file inside {record}, which the fit writes; move it, or choose "
                                     f"another {other}", path=source, field=field)
                if same or os.path.abspath(record) == os.path.abspath(source):
                    raise InputError(f"is an input file, and the fit writes the run's {record.name} here; choose "
                                     "another run folder (or move the input)", path=record, field=field)

    def _check_new_run_folder(self, run_dir: Path, ckpt, named: bool) -> None:
        """A fit that does not continue the run of ``run_dir`` (a new run, or a resume from a checkpoint outside
        any run folder) writes only into a folder that is new or empty: before, ``--run-name`` (or the
        ``run_name`` a run's config.yaml records, read by ``fit --config DIR/config.yaml``) of an existing
        folder wrote into it -- another run's ``last.ckpt`` and ``metrics.csv`` were replaced by the resumed
        checkpoint's, and a folder of the user's files lost its ``config.yaml`` (the fit's own ``--config``) and
        ``metrics.csv``. Refused in one line; the folder is left as it was."""
        found = sorted(p.name for p in run_dir.iterdir() if p.name != ".run.lock")
        if not found:
            return
        source = None if named else _file_with_key(config_files(self._user_argv), "run_name", None)
        where = "--run-name" if named else f"run_name {run_dir.name!r} of {source or 'a config file'}"
        if (checkpoint_folder(run_dir) / "last.ckpt").is_file():  # checkpoints/, or its checkpoint.dirpath
            what = (f"a fit from --ckpt_path {ckpt} (a checkpoint outside it) starts a new run" if ckpt is not None
                    else "a fit that resumes nothing starts a new run")
            raise InputError(f"is the folder of an existing run ({where}), and {what}, never written into another "
                             f"run's folder: resume this run with --run {run_dir}, or choose another --run-name",
                             path=run_dir, field="run_name")
        shown = ", ".join(found[:3]) + (", ..." if len(found) > 3 else "")
        raise InputError(f"folder exists and holds files ({shown}; {where}); a new run writes only into a new or "
                         "empty folder: choose another --run-name", path=run_dir, field="run_name")

    def _fit_run_paths(self, cfg) -> None:
        run_dir = self._run_dir
        dirpath = cfg.checkpoint.get("dirpath") if cfg.get("checkpoint") is not None else None
        if isinstance(dirpath, str) and RUN_PLACEHOLDER in dirpath:  # {run}/SUB: inside this run's folder
            cfg.checkpoint.dirpath = dirpath.replace(RUN_PLACEHOLDER, str(run_dir))
        self._check_run_records(cfg)
        # The saved config names the run and keeps the placeholders: `fit --run DIR` resumes this run, and
        # `fit --config DIR/config.yaml --run-name NEW` starts a new one with its settings (without --run-name it
        # names DIR again and is refused: a fit that does not resume DIR never writes into it).
        saved = copy.deepcopy(cfg)
        saved.run, saved.run_name, saved.ckpt_path = None, run_dir.name, None
        data = saved.get("data")
        init = data.get("init_args") if hasattr(data, "get") else None
        if init is not None and isinstance(init.get("path"), str) and not os.path.isabs(init.path):
            # recorded absolute: a resume started in another folder reads the same file (before, 'sg.h5' was
            # looked up where the resume ran: not found, or another file of that name)
            init.path = os.path.abspath(init.path)
        self._config_to_save = saved
        loggers = cfg.trainer.get("logger")
        for logger in loggers if isinstance(loggers, list) else [loggers]:
            init = logger.get("init_args") if hasattr(logger, "get") else None
            if init is not None and isinstance(init.get("save_dir"), str):
                init.save_dir = init.save_dir.replace(RUN_PLACEHOLDER, str(run_dir))
        dirpath = saved.checkpoint.get("dirpath") if saved.get("checkpoint") is not None else None
        if isinstance(dirpath, str) and dirpath and "://" not in dirpath:
            # recorded as Lightning's ModelCheckpoint resolves it (realpath of the path with ~ expanded, from the
            # working folder), so `--run DIR` finds last / best there from any working folder and a resume writes
            # there again (checkpoint_index.checkpoint_folder reads it); a folder inside the run folder as {run}/SUB,
            # so a copy or a move of the run folder keeps its own (an absolute path named the old folder's)
            saved.checkpoint.dirpath = recorded_dirpath(cfg.checkpoint.dirpath, run_dir)
        if cfg.checkpoint.get("dirpath") is None:
            cfg.checkpoint.dirpath = str(run_dir / "checkpoints")

    def instantiate_classes(self) -> None:
        # jsonargparse wraps an error raised by a class's __init__ (its Union handling re-raises it as a
        # long explanation); the InputError inside is the one-line message the user needs. The classes name their
        # arguments as the config spells them (data.init_args.seed, not a Python caller's seed)
        try:
            with command_line_names():
                super().instantiate_classes()
        except InputError as err:  # a callback's own section (checkpoint.save_top_k): the config file that set it
            if (err.field or "").startswith(CALLBACK_SECTIONS):
                sub = self.subcommand
                raise qualified(err, self.config[sub] if sub else self.config, self._user_argv) from None
            raise
        except Exception as err:
            cause = wrapped_input_error(err)
            if cause is None:
                raise
            sub = self.subcommand
            raise qualified(cause, self.config[sub] if sub else self.config, self._user_argv) from None

    # -- the trainer --------------------------------------------------------------------------------
    def _instantiate_trainer(self, config, callbacks):
        sub = self.subcommand
        self._check_checkpoint_fits(sub)
        if isinstance(self.datamodule, NeuralDataModule):
            self.datamodule.check_spikes(sub)  # no spike to fit, or none to score: one line, before the Trainer
        if sub in ("validate", "test"):
            self._note_scored_trials(sub)
        callbacks = list(callbacks)
        if self._stdout is not None:
            callbacks.append(ReleaseStdout(self._stdout))
        if sub == "fit" and self._run_dir is not None:
            config["default_root_dir"] = str(self._run_dir)
        if config.get("enable_checkpointing") is False or config.get("fast_dev_run") or sub != "fit":
            callbacks = [cb for cb in callbacks if not isinstance(cb, ModelCheckpoint)]
        if sub == "fit":
            self.resume_state.run_dir = self._run_dir
            for callback in callbacks:  # the run folder its checkpoint index names (checkpoint_index.foreign_index)
                if isinstance(callback, AutoModelCheckpoint) and self._run_dir is not None:
                    callback.run_dir, callback.run_id = str(self._run_dir), self._run_id
            self.resume_state.limits = {name: config.get(name, default) for name, default in LENGTH_SETTINGS.items()}
            callbacks.append(self.resume_state)
        configured = list(config.get("callbacks") or []) + callbacks
        if (sub == "fit" and config.get("enable_model_summary", True) is not False
                and not any(isinstance(cb, ModelSummary) for cb in configured)):
            callbacks.append(ParameterSummary())  # Lightning's, without its unmeasured "FLOPs 0"
            config["enable_model_summary"] = False  # Lightning's own stays out (and says nothing about it)
        bar_wanted = config.get("enable_progress_bar", True) is not False
        if not any(isinstance(cb, ProgressBar) for cb in configured):
            if bar_wanted and sys.stdout.isatty():
                callbacks.append(RichProgressBar())
            else:
                config["enable_progress_bar"] = False
                if sub == "fit":
                    callbacks.append(EpochLog())
        if sub != "fit" or self._config_to_save is None:
            return self._trainer_or_input_error(config, callbacks)
        # a resumed fit keeps the run's config.yaml and writes config.resume-<n>.yaml (RunConfigSaver)
        self.save_config_kwargs = {**self.save_config_kwargs, "run_id": self._run_id,
                                   "resuming": self.config[sub].get("ckpt_path") is not None}
        held, self.config[sub] = self.config[sub], self._config_to_save
        try:
            return self._trainer_or_input_error(config, callbacks)
        finally:
            self.config[sub] = held

    def _trainer_or_input_error(self, config, callbacks):
        """Lightning's Trainer refuses bad settings (``max_epochs -3``, an accelerator this machine lacks, ...)
        with a MisconfigurationException (``devices -3``, ``num_nodes 0``: a TypeError / ValueError): a one-line
        error naming the option its words name (``trainer.max_epochs``; ``trainer`` where they name none,
        :func:`~neurodyn.training.refusals.misconfigured_option`), not a traceback. A fit told to
        train nothing (``max_epochs 0``: a run folder without a checkpoint, exit 0) or forever (``max_epochs
        -1`` with no ``max_steps`` / ``max_time``: Lightning's "infinite") is refused too, and so are the settings
        Lightning divides by or misreads (``accumulate_grad_batches 0``, ``gradient_clip_val -1``:
        :func:`~neurodyn.training.refusals.check_trainer_counts`). A refused setting that a config file gave is
        named with that file."""
        try:
            return self._checked_trainer(config, callbacks)
        except InputError as err:
            raise qualified(err, None, self._user_argv) from None

    def _checked_trainer(self, config, callbacks):
        from lightning.fabric.utilities.exceptions import MisconfigurationException

        if self.subcommand == "fit":
            check_trainer_counts(config)  # settings Lightning divides by, or misreads without a word
            epochs, steps = config.get("max_epochs"), config.get("max_steps")
            if epochs == 0 or steps == 0:  # Lightning stops at max_steps 0 whatever max_epochs says
                option = "max_epochs" if epochs == 0 else "max_steps"
                raise InputError(f"{option} 0 trains nothing; give a positive number", field=f"trainer.{option}")
            if epochs == -1 and (steps is None or steps < 0) and not config.get("max_time"):
                raise InputError("-1 (Lightning's 'no limit') with no trainer.max_steps or trainer.max_time trains "
                                 "until stopped; give a positive number of epochs or a time / step limit",
                                 field="trainer.max_epochs")
        try:
            if self.subcommand == "fit":
                callbacks = self._epoch_timer(config, callbacks)
            return super()._instantiate_trainer(config, callbacks)
        except (MisconfigurationException, TypeError, ValueError) as err:
            # Lightning's refusals of its arguments (``devices -3`` and ``num_nodes 0`` are a TypeError and a
            # ValueError): one line naming the option its words name; a TypeError or ValueError that names none
            # is not known to be one (its traceback is shown)
            option = misconfigured_option(str(err))
            if option == "trainer" and not isinstance(err, MisconfigurationException):
                raise
            raise InputError(one_line(err, 400), field=option) from None

    @staticmethod
    def _epoch_timer(config, callbacks):
        """``trainer.max_time`` of a fit as an :class:`~neurodyn.training.callbacks.EpochTimer`, checked at epoch
        ends: Lightning's own Timer stopped mid-epoch, and its ``last.ckpt`` then held part of an epoch as a
        whole one (no exact resume point). A Timer among the configured callbacks is left as it is (Lightning
        then ignores ``max_time``)."""
        from lightning.pytorch.callbacks import Timer

        limit = config.get("max_time")
        if limit is None or any(isinstance(cb, Timer) for cb in [*(config.get("callbacks") or []), *callbacks]):
            return callbacks
        max_time_seconds(limit)  # one it cannot read: one line (Lightning's words named `Timer(duration=...)`)
        config["max_time"] = None  # Lightning adds no Timer of its own; the run's config.yaml keeps the value
        return [*callbacks, EpochTimer(limit)]

    def _check_checkpoint_fits(self, sub: str) -> None:
        """The checkpoint against the model and the data that were built (sizes, tensor shapes, bin width, units),
        before the Trainer: a checkpoint of other data is refused in one line, with nothing of Lightning's before it."""
        ckpt = self.config[sub].get("ckpt_path") if sub else None
        if ckpt is not None:
            self._checkpoint = check_checkpoint(ckpt, self.model, data=getattr(self.datamodule, "path", None))
            check_bin_width(self._checkpoint, self.datamodule, ckpt)
            check_units(self._checkpoint, self.datamodule, ckpt)  # another session's units: refused
            if sub == "validate":
                self._note_other_select(self._checkpoint)

    def _note_scored_trials(self, sub: str) -> None:
        """A note when ``validate`` / ``test`` report numbers of other trials or other spikes than their names say
        (both exited 0 with nothing said): a test-phase file's evaluation trials hold held-in spikes only, so a
        LangevinFlow's ``valid/*`` / ``test/*`` there is a held-in reconstruction (no co-bps or fp-bps, silently);
        a select split
        carved from another prepared file's training trials (the test-phase file's ``train_input`` holds the
        val-phase file's training trials too) held trials the checkpoint was fitted on. The select split of the
        run's own file is :meth:`_note_other_select`'s."""
        from neurodyn.training.predictions import trained_on_select_trials

        dm = self.datamodule
        path = getattr(dm, "path", None)
        split = "valid" if sub == "test" else getattr(dm, "val_split", None)
        # (an HMM-GLM models the held-in units alone: its valid/* are of held-in spikes in either phase)
        if (split == "valid" and getattr(dm, "phase", None) == "test" and "valid" in dm.splits
                and not isinstance(self.model, HMMGLMModule)):
            prefix = "test" if sub == "test" else "valid"
            print(f"note: {path} is a test-phase file: its {len(dm.splits['valid'])} evaluation trials hold held-in "
                  f"spikes only (their held-out and forward spikes are EvalAI's), so {prefix}/* scores the held-in "
                  f"spikes alone: no co-bps or fp-bps, and a {prefix}/loss of other bins than a val-phase file's; "
                  "the val-phase file's evaluation trials give those", flush=True)
            return
        saved = getattr(self, "_checkpoint", None)
        run = saved.get(RUN_SETTINGS_KEY) if isinstance(saved, dict) else None
        if split != "select" or not isinstance(run, dict):
            return
        if run_select_split(run.get("data"), self.config[sub].get("data")) is not None:
            return  # the run's own data: _note_other_select
        found = trained_on_select_trials(run.get(DATA_FILES_KEY), dm)
        if found.get("trained_on_select_trials"):
            print(f"note: valid/* is scored on the select split of {path} ({found['select_trials']} of its training "
                  f"trials): {found['trained_on_select_trials']} of them are trials the checkpoint was fitted on "
                  f"({found['training_data']} holds them in train_input), so they are not held out", flush=True)

    def _note_other_select(self, saved) -> None:
        """A note when ``validate`` scores other trials than the run's select split: a ``--data.select_fraction`` /
        ``select_seed`` other than the run's (data otherwise the run's, :func:`run_select_split`) gave ``valid/*``
        of another select split, sequences the checkpoint was fitted on among them, or of the report split, with
        nothing said."""
        from neurodyn.training.predictions import rows_of_run_select

        run = saved.get(RUN_SETTINGS_KEY) if isinstance(saved, dict) else None
        dm = self.datamodule
        then = run_select_split(run.get("data") if isinstance(run, dict) else None, self.config["validate"].get("data"))
        splits = getattr(dm, "splits", None) or {}
        if then is None or "train" not in splits:
            return
        now = (float(getattr(dm, "select_fraction", 0.0) or 0.0), int(getattr(dm, "select_seed", 0) or 0))
        if now == then or not (now[0] or then[0]):
            return
        run_split = f"select_fraction {then[0]:g}, select_seed {then[1]}" if then[0] else "no select split"
        if "select" not in splits:
            print(f"note: the run selected on its select split ({run_split}); with no select split given, valid/* is "
                  "scored on the validation / evaluation trials (the report split)", flush=True)
            return
        rows = {int(i) for i in getattr(dm, "select_rows", ())}
        fitted = set(rows_of_run_select(dm, then).tolist())  # the rows the run's select split left to the fit
        print(f"note: valid/* is scored on another select split than the run's ({run_split}): "
              f"{len(rows & fitted)} of its {len(rows)} trials are ones the checkpoint was fitted on", flush=True)

    def _run_subcommand(self, subcommand: str) -> None:
        if isinstance(self.model, HMMGLMModule) and (self.trainer.world_size > 1 or self.trainer.num_nodes > 1):
            from neurodyn.training.hmmglm_module import MULTI_PROCESS

            raise InputError(MULTI_PROCESS, field="trainer.strategy")
        cfg = self.config_init[subcommand]
        ckpt = cfg.get("ckpt_path")
        if ckpt is not None:
            saved = self._checkpoint
            if subcommand == "fit" and getattr(self, "_finished", False):
                return  # nothing left to train (noted): a run folder gets no config.resume-<n>.yaml, no log file
            if subcommand == "fit":
                for logger in self.trainer.loggers:
                    if isinstance(logger, ResumableCSVLogger):
                        logger.keep_before_epoch = int(saved.get("epoch", -1)) + 1
            if subcommand == "predict":
                for cb in self.trainer.callbacks:
                    if isinstance(cb, PredictionWriter):
                        cb.inputs = list(self._prediction_inputs)
                        cb.checkpoint = str(ckpt)
                        seed = (saved.get(RUN_SETTINGS_KEY) or {}).get("seed_everything")
                        if isinstance(seed, bool) or not isinstance(seed, int):
                            seed = None
                        cb.checkpoint_info = {"epoch": saved.get("epoch"), "global_step": saved.get("global_step"),
                                              "neurodyn_version": (saved.get("neurodyn") or {}).get("version"),
                                              # the run's seed: which of several fits (seeds) made the file
                                              "seed_everything": seed}
                        cb.training_files = (saved.get(RUN_SETTINGS_KEY) or {}).get(DATA_FILES_KEY)
                        cb.run_select = run_select_split((saved.get(RUN_SETTINGS_KEY) or {}).get("data"),
                                                         self.config[subcommand].get("data"))
            if "weights_only" in cfg and cfg.get("weights_only") is None:
                cfg["weights_only"] = True  # neurodyn checkpoints hold tensors and plain containers only
        note = self.datamodule.recipe_note() if subcommand == "fit" and hasattr(self.datamodule, "recipe_note") \
            else None
        if note:
            print(note, flush=True)
        if subcommand == "predict":
            limit = self.trainer.limit_predict_batches
            # an int is a number of batches (1: the first batch), a float a fraction of them; the text as given
            # too, since the parsed value of "1" is not always an int
            written = [v for v in _option_values(self._user_argv, "--trainer.limit_predict_batches")
                       if v.strip().lstrip("+").isdigit()]
            if (self.trainer.fast_dev_run or isinstance(limit, int) or written
                    or (limit is not None and limit != 1.0)):
                # a file of some batches was written with exit 0, and synthetic runs record no trial ids
                option = "fast_dev_run" if self.trainer.fast_dev_run else "limit_predict_batches"
                value = written[-1] if written and option == "limit_predict_batches" else repr(
                    getattr(self.trainer, option))
                raise InputError(f"{value} would write a prediction file of some of the "
                                 "trials; predict writes every trial (drop the option)", field=f"trainer.{option}")
        from lightning.fabric.utilities.exceptions import MisconfigurationException

        from neurodyn.io.output import command_interrupts, default_sigterm, disk_full

        # ddp / ddp_spawn / ddp_fork: the run goes on in processes Lightning starts; they keep the command's contract
        # (held output, quiet logging, bad input as one line: training.processes)
        use_command_launcher(self.trainer, self._stdout, subcommand)
        note = None if child_rank() else processes_note(self.trainer)
        if note:  # on stderr: standard output is held until the run starts, this is said before processes start
            print(note, file=sys.stderr, flush=True)
        # fit: Lightning's SIGTERM handler (an orderly stop: ResumeState) from here on; predict keeps SIGTERM raising,
        # as its output file's lock wants it (nothing partial is written); validate / test stop on SIGTERM or Ctrl-C
        # as one line and 128 + the signal -- Lightning's orderly stop ended them with exit code 0 and nothing said
        # (its SIGTERMException is a SystemExit), its Ctrl-C with exit code 1 and nothing said
        signals = {"fit": default_sigterm, "predict": contextlib.nullcontext}.get(
            subcommand, lambda: command_interrupts(ctrl_c=True))
        try:
            with signals():
                super()._run_subcommand(subcommand)
        except MisconfigurationException as err:
            # refused by Lightning once running (a limit_*_batches fraction below one batch, ...): one line
            raise input_error_of(err) from None
        except OSError as err:
            # a write that found no room (full disk, quota, ulimit -f) elsewhere than a checkpoint or the prediction
            # file (those name their file): metrics, logs, the run's config
            full = disk_full(err, err.filename2 or err.filename,
                             "prediction.path" if subcommand == "predict" else "trainer.default_root_dir")
            if full is None:
                raise
            raise full from None
        except InputError as err:
            if not err.involves:
                raise
            # a combination the model refused in its setup (the data's n_bins against the model's n_lags): the
            # option set last and where each value came from, as for one refused while the classes were built
            raise qualified(err, self.config[subcommand], self._user_argv) from None

    def __getstate__(self) -> dict:
        # ddp_spawn pickles the CLI (through the config saver's parser) into the processes it starts: the locks
        # this process holds (the run folder's, the prediction file's) stay here (an ExitStack of generators
        # does not pickle: every `fit --trainer.strategy ddp_spawn` was a TypeError traceback)
        state = self.__dict__.copy()
        state["_held"] = contextlib.ExitStack()
        return state


def _same_file(a, b) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _option_values(argv: list[str], option: str) -> list[str]:
    """The values given to ``option`` on the command line (``--x V`` and ``--x=V``), in order."""
    values = []
    for i, arg in enumerate(argv):
        if arg == option and i + 1 < len(argv):
            values.append(argv[i + 1])
        elif arg.startswith(option + "="):
            values.append(arg.split("=", 1)[1])
    return values


def _without_checkpoint_folder(settings: dict) -> dict:
    """A checkpoint's record of its run's settings (:data:`~neurodyn.training.checkpoints.RUN_SETTINGS_KEY`) without
    ``checkpoint.dirpath``, for a new run started from it: that is where the checkpoint's run keeps its files, not a
    rule the new run keeps. The new run was refused for not giving it, and given it, it was refused for a folder
    holding another run's checkpoints (:func:`_refuse_used_checkpoint_folder`; before that refusal, it wrote over
    them)."""
    section = settings.get("checkpoint")
    if not isinstance(section, dict) or "dirpath" not in section:
        return settings
    return {**settings, "checkpoint": {k: v for k, v in section.items() if k != "dirpath"}}


def _new_run_dirpath(cfg, run_dir: Path | None) -> tuple[str, Path] | None:
    """A new run's local ``checkpoint.dirpath`` and its folder (:func:`~neurodyn.training.checkpoint_index.
    resolved_dirpath`), for the checks of a new run's checkpoint folder; None where there is nothing to check. A
    path with ``{run}`` is checked once the run folder is known (``run_dir`` given), on the folder it names: only
    one inside the run folder (``{run}/SUB``: new or empty, :meth:`NeurodynCLI._check_new_run_folder`) is passed
    over. Before, every path with ``{run}`` was: ``{run}/../../shared`` or ``/scratch/{run}/..`` wrote over the
    checkpoints of the run kept there."""
    dirpath = cfg.checkpoint.get("dirpath") if cfg.get("checkpoint") is not None else None
    if not isinstance(dirpath, str) or not dirpath or "://" in dirpath:
        return None
    if (RUN_PLACEHOLDER in dirpath) != (run_dir is not None):
        return None  # a path without {run} is checked before the run folder is made; one with it, after
    folder = Path(resolved_dirpath(dirpath, run_dir))
    if run_dir is not None and folder.is_relative_to(os.path.realpath(run_dir)):
        return None
    return dirpath, folder


def _refuse_used_checkpoint_folder(cfg, run_dir: Path | None = None) -> None:
    """A new run's ``--checkpoint.dirpath`` (given, or recorded in the config.yaml of ``fit --config DIR/config.yaml
    --run-name NEW``) may not hold another run's checkpoints: the new run's ``last.ckpt``, top-k files and
    checkpoints index replaced that run's there (Lightning only warns of a folder that is not empty), and
    ``--run`` of that run then found the new run's. Refused in one line, before any folder is made (a path with
    ``{run}``: once the new run folder is known, which a refused fit removes again; :func:`_new_run_dirpath`)."""
    found = _new_run_dirpath(cfg, run_dir)
    if found is None:
        return
    dirpath, folder = found
    if RUN_PLACEHOLDER in dirpath:
        dirpath = f"{dirpath} ({folder})"
    held = sorted(p.name for p in folder.glob("*.ckpt")) + [INDEX_NAME] * (folder / INDEX_NAME).is_file()
    if held == [INDEX_NAME] and claimed_by(folder) is not None:  # another new run's claim (claim_folder)
        raise InputError(claimed_words(folder, claimed_by(folder)), path=dirpath, field="checkpoint.dirpath")
    if held == [INDEX_NAME] and unreadable_index(folder) is not None:  # a claim cut short: it said 'checkpoints'
        raise InputError(unreadable_words(folder, unreadable_index(folder)), path=dirpath, field="checkpoint.dirpath")
    if held:
        raise InputError(used_words(held), path=dirpath, field="checkpoint.dirpath")


@contextlib.contextmanager
def _claimed_checkpoint_folder(cfg, run_dir: Path, run_id: str | None):
    """A new run's local ``--checkpoint.dirpath`` outside its run folder (which its lock ``.run.lock`` keeps to
    one fit), claimed for the block (:func:`~neurodyn.training.checkpoint_index.claim_folder`: its checkpoints
    index, made with O_EXCL) and let go at its end if the run saved no checkpoint there
    (:func:`~neurodyn.training.checkpoint_index.release_folder`)."""
    dirpath = cfg.checkpoint.get("dirpath") if cfg.get("checkpoint") is not None else None
    if not isinstance(dirpath, str) or not dirpath or "://" in dirpath:
        yield
        return
    folder = Path(resolved_dirpath(dirpath, run_dir))
    if folder.is_relative_to(os.path.realpath(run_dir)):
        yield
        return
    made = claim_folder(folder, run_dir, run_id, shown=f"{dirpath} ({folder})" if RUN_PLACEHOLDER in dirpath
                        else dirpath)
    try:
        yield
    finally:
        release_folder(folder, run_dir, made)


def _refuse_unwritable_inside(run_dir: Path, field: str) -> None:
    """A resumed fit writes into the folders of its run (its checkpoints folder, ``tensorboard/``): one this user
    may not write was a traceback (exit 1) once training had begun -- Lightning's checkpoint rename, TensorBoard's
    event file -- and left ``config.resume-N.yaml`` and an event file behind. Refused before anything is
    written (the run folder itself is checked by its lock, :func:`neurodyn.io.output.hold_folder`). Only those
    two are checked: walking the whole run refused a read-only folder of the user's own that the fit never writes
    (an analysis kept beside the records), and read every file name of a large run to do so. The checkpoints folder
    is the run's own (:func:`~neurodyn.training.checkpoint_index.checkpoint_folder`): the ``checkpoint.dirpath``
    its config.yaml records, where it has one (before, only ``DIR/checkpoints`` was looked at, and a resume whose
    recorded folder could not be written trained, then failed at its first checkpoint with a traceback)."""
    folder = checkpoint_folder(run_dir)
    own = os.path.abspath(folder) == os.path.abspath(run_dir / "checkpoints")
    if not own:
        _refuse_unwritable_folder(folder, folder, "checkpoint.dirpath", ", where the run keeps its checkpoints (its "
                                  "config.yaml records it)")
    for name in ("checkpoints", "tensorboard"):
        sub = run_dir / name
        if name == "checkpoints" and not own:
            continue
        if os.path.isdir(sub) and not may_access(sub, os.W_OK | os.X_OK):
            raise InputError(f"cannot write in its folder {name} ({not_writable_words(sub)})", path=run_dir,
                             field=field)


def _refuse_unwritable_checkpoint_dirpath(cfg, run_dir: Path | None = None) -> None:
    """A new run's ``--checkpoint.dirpath`` (given, or recorded in the config.yaml of ``fit --config DIR/config.yaml
    --run-name NEW``) that cannot be written or made -- a folder this user may not write, a path inside a file --
    failed at the run's first checkpoint, after training, with a traceback (fsspec's makedirs: NotADirectoryError).
    Refused in one line, before any folder is made. A relative path is the working folder's, as Lightning's
    ModelCheckpoint takes it (:func:`~neurodyn.training.checkpoint_index.resolved_dirpath`; a path with ``{run}``:
    :func:`_new_run_dirpath`)."""
    found = _new_run_dirpath(cfg, run_dir)
    if found is None:
        return
    dirpath, folder = found
    _refuse_unwritable_folder(folder, f"{dirpath} ({folder})" if RUN_PLACEHOLDER in dirpath else dirpath,
                              "checkpoint.dirpath")


def _refuse_unwritable_folder(folder: Path, shown, field: str, where: str = "") -> None:
    """Refuse (one line naming ``shown`` and ``field``) a folder a fit writes that this user may not write
    (:func:`~neurodyn.io.output.may_access`), or, where it does not exist yet, may not make: its nearest existing
    ancestor is not a folder (a file), or one this user may not write. ``where`` ends the first message."""
    if os.path.isdir(folder):
        if not may_access(folder, os.W_OK | os.X_OK):
            raise InputError(f"cannot write in this folder ({not_writable_words(folder)}){where}", path=shown,
                             field=field)
        return
    if os.path.lexists(folder):
        raise InputError("is not a folder, expected the folder of the run's checkpoints", path=shown, field=field)
    ancestor = folder
    while not os.path.lexists(ancestor) and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not os.path.isdir(ancestor):
        raise InputError(f"cannot make this folder: {ancestor} is not a folder", path=shown, field=field)
    if not may_access(ancestor, os.W_OK | os.X_OK):
        raise InputError(f"cannot make this folder: {ancestor} is not writable ({not_writable_words(ancestor)})",
                         path=shown, field=field)


def cli_main(argv: list[str]) -> int:
    """Run a training subcommand (``argv[0]`` is fit/validate/test/predict); returns the exit code."""
    rest = list(argv[1:])
    if argv[0] == "predict":  # the output flags of every other command: --prediction.overwrite / .path
        rest = ["--prediction.overwrite=true" if a == "--overwrite" else
                "--prediction.path" if a == "--out" else
                "--prediction.path=" + a.split("=", 1)[1] if a.startswith("--out=") else a for a in rest]
    command, rest = argv[0], prepare_argv(rest, argv[0])
    # sys.argv is left as it is: Lightning's DDP launcher starts the other processes by re-running it.
    resume = ResumeState()
    from neurodyn.io.output import remove_empty_folders

    # the variables a command sets for the processes it starts go when it ends (a notebook or script that ran it in
    # its own process): a fit's RUN_DIR_ENV named the run to the ranks > 0 of a later run that torchrun / srun
    # started from this environment (they took that old run for theirs)
    env = {name: os.environ.get(name) for name in (RUN_DIR_ENV, RUN_ID_ENV)}
    try:  # the global random generators and PL_GLOBAL_SEED that seed_everything sets: neurodyn.cli.main puts them back
        code = _run_cli(command, rest, resume)
    except BaseException:
        _remove_failed_run(resume.new_run_dir)
        remove_empty_folders(resume.new_parents)
        raise
    finally:
        restore_environ(env)
    if resume.new_run_dir is not None:
        with contextlib.suppress(OSError):
            resume.new_run_dir.rmdir()  # a fit that wrote nothing (fast_dev_run) leaves no empty folder
    remove_empty_folders(resume.new_parents)
    return code


def _remove_failed_run(run_dir: Path | None) -> None:
    """A run folder this fit created and that holds no checkpoint (it failed or was stopped before the first
    epoch ended: bad input found late, a signal) is removed, so a refused command leaves nothing behind."""
    import shutil

    from neurodyn.io.output import hold_folder

    # the run's checkpoints folder: DIR/checkpoints, or the checkpoint.dirpath its config.yaml records (there, a
    # run with checkpoints lost its config.yaml and metrics.csv)
    if run_dir is not None and run_dir.is_dir() and not any(checkpoint_folder(run_dir).glob("*.ckpt")):
        # under the folder's lock again: a fit that took the folder since this one released it keeps it
        with contextlib.suppress(InputError), hold_folder(run_dir):
            shutil.rmtree(run_dir, ignore_errors=True)


def _run_cli(command: str, rest: list[str], resume: ResumeState) -> int:
    from jsonargparse import ArgumentError
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from neurodyn.io.output import terminate_as_interrupt

    cli = None
    check_config_files(rest)
    try:
        # ExitStack: the prediction file's lock, taken while the arguments are checked, is held to the end
        # terminate_as_interrupt: a SIGTERM while the arguments are parsed and the data and model are built is
        # one line and leaves nothing (NeurodynCLI._run_subcommand hands SIGTERM to Lightning for the run)
        # hold_stdout: what is printed (Lightning's banner "GPU available: ...", notes) waits for the run to start,
        # so that bad input found before it (also after the Trainer was built) is the only line printed
        # denormals_flushed: subnormal weights made CPU epochs 4x slower (callbacks.flush_denormals); float32_default:
        # a caller's default dtype does not reach the model; torch_settings_kept: what the run sets process-wide
        # (trainer.deterministic, the ddp launcher's threads); the caller's settings come back after the command;
        # inference_mode(False): a command run inside a caller's torch.inference_mode() block trains and predicts as
        # in its own process (a fit failed with a traceback: its loss had no gradient)
        with contextlib.ExitStack() as held, hold_stdout(drop_on=(InputError, ArgumentError)) as stdout, \
                quiet_lightning(), terminate_as_interrupt(), denormals_flushed(), float32_default(), \
                torch_settings_kept(), torch.inference_mode(False):
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
                parser_kwargs={"exit_on_error": False, "allow_abbrev": False,
                               command: {"exit_on_error": False, "allow_abbrev": False}},
                user_argv=rest,
                resume_state=resume,
                held=held,
                stdout=stdout,
            )
    except ArgumentError as err:
        raise parser_error(str(err), rest) from None
    except (RunInterrupted, SIGTERMException) as err:
        signum = getattr(err, "signum", signal.SIGTERM)
        if command != "fit":  # a process of a validate / test / predict run stopped on a signal: nothing to keep
            raise Interrupted(signum) from None
        # RunInterrupted: a second signal, mid-epoch; SIGTERMException: Lightning's own handler, before
        # training started (setup, sanity check) -- neither finished an epoch
        raise run_stopped(signum, resume.run_dir, finished=False, max_epochs=resume.max_epochs,
                          limits=resume.limits) from None
    if resume.signal is not None:
        raise run_stopped(resume.signal, resume.run_dir, finished=True, max_epochs=resume.max_epochs,
                          limits=resume.limits)
    run_dir = cli._run_dir if command == "fit" and cli is not None and cli.trainer.checkpoint_callback else None
    # fast_dev_run writes nothing: the folder holds only its lock, and is removed when the lock is let go
    if run_dir is not None and run_dir.is_dir() and any(p.name != ".run.lock" for p in run_dir.iterdir()):
        print(f"run folder: {run_dir}", flush=True)
    return 0
