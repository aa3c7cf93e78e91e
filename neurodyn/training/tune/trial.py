"""One trial of ``neurodyn tune``: build model and data from a fit config, restore a checkpoint that
Tune hands over (a PBT exploit), train, and report the selection metric each epoch."""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import lightning.pytorch as pl

from neurodyn.errors import InputError, command_line_names, one_line, wrapped_input_error
from neurodyn.training.checkpoints import SIZE_KEYS
from neurodyn.training.quiet import quiet_lightning
from neurodyn.training.tune.space import (
    apply_hyperparameters,
    find_key,
    get_path,
    merge_configs,
    set_path,
    source_of,
)

#: The selection metric: masked Poisson NLL on the DataModule's select split (lower is better; see select_split).
METRIC, MODE = "valid/loss", "min"


def trial_index(trial_id: str) -> int:
    """A trial's place in the order of creation: Tune's trial ids are ``<random experiment id>_<counter>``
    (``BasicVariantGenerator`` counts from 0), and only the counter is the same in every run."""
    return int(str(trial_id).rsplit("_", 1)[-1])


def trial_name(index: int) -> str:
    """The name and folder of a trial, from its index: ``trial_0003`` for the fourth trial created.

    >>> trial_name(trial_index("9d83a_00003"))
    'trial_0003'
    """
    return f"trial_{index:04d}"


#: trainer settings of the fit config that a trial keeps; tune owns the rest (devices, loggers, callbacks)
TRAINER_KEYS = ("precision", "gradient_clip_val", "gradient_clip_algorithm", "accumulate_grad_batches",
                 "limit_train_batches", "limit_val_batches", "deterministic", "benchmark")

# -- building model and data from a fit config --------------------------------------------------------
def _section_parser(section: str):
    """jsonargparse's parser of one ``class_path`` / ``init_args`` section (``model`` or ``data``), as fit's."""
    from jsonargparse import ArgumentParser

    import neurodyn.training.datamodules as datamodules
    import neurodyn.training.module  # noqa: F401  (short class names resolve)

    parser = ArgumentParser(exit_on_error=False)
    base = pl.LightningModule if section == "model" else datamodules.NeuralDataModule
    parser.add_subclass_arguments(base, section, required=True, fail_untyped=False)
    return parser


def stack_configs(configs: list[dict]) -> dict:
    """Stacked fit configs (later ones win) merged as ``neurodyn fit`` (jsonargparse) merges them.

    A deep merge, except that a later ``model`` / ``data`` section whose ``class_path`` names another class
    keeps only the earlier ``init_args`` that the new class accepts (jsonargparse's rule: a LorenzDataModule's
    ``n_conditions`` is dropped when a later file switches to LFADSDataModule; ``batch_size`` stays). The
    classes decide through jsonargparse itself; a section it refuses is merged as it is, for
    :func:`build_model_and_data` to report.
    """
    out: dict = {}
    for cfg in configs:
        merged = merge_configs(out, cfg)
        for section in ("model", "data"):
            before, over = out.get(section), cfg.get(section)
            if not (isinstance(before, dict) and isinstance(over, dict) and "class_path" in over
                    and isinstance(merged.get(section), dict) and isinstance(merged[section].get("init_args"), dict)):
                continue
            kept = _accepted_init_args(section, before, over)
            if kept is not None:
                merged[section]["init_args"] = {k: v for k, v in merged[section]["init_args"].items() if k in kept}
        out = merged
    return out


def _accepted_init_args(section: str, before: dict, over: dict) -> set | None:
    """The ``init_args`` keys that jsonargparse keeps when ``over`` is stacked on ``before`` (None: refused)."""
    import warnings

    from jsonargparse import ArgumentError

    parser = _section_parser(section)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # cfg_base was renamed namespace in jsonargparse 4.50
            namespace = parser.parse_object({section: copy.deepcopy(before)})
            try:
                namespace = parser.parse_object({section: copy.deepcopy(over)}, namespace=namespace)
            except TypeError:
                namespace = parser.parse_object({section: copy.deepcopy(over)}, cfg_base=namespace)
    except (ArgumentError, ValueError, TypeError):
        return None
    init_args = getattr(namespace[section], "init_args", None)
    return set(vars(init_args)) if init_args is not None else set()


def build_model_and_data(cfg: dict, sources: list | None = None):
    """Instantiate the LightningModule and DataModule of a fit config as ``neurodyn fit`` reads them.

    The ``model`` and ``data`` sections are parsed by jsonargparse with LightningCLI's subclass mode
    (``class_path`` / ``init_args``, short class names, type checks) and the DataModule's sizes linked
    into the model; the global seed is ``seed_everything``. Parser errors, and the classes' own checks
    (an :class:`InputError` that jsonargparse wraps while it instantiates them), become one
    :class:`InputError` naming the key and the config file of ``sources`` (stacked, later ones win) that
    holds it; a refused combination (``involves``) of values set in different files names the value set last
    and where each came from (:func:`neurodyn.training.parser_errors.qualified`).
    """
    from jsonargparse import ArgumentError, ArgumentParser

    # imported so that short class names (class_path: LangevinFlowModule / LorenzDataModule) resolve
    import neurodyn.training.datamodules as datamodules
    import neurodyn.training.module  # noqa: F401

    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(pl.LightningModule, "model", required=True, fail_untyped=False)
    parser.add_subclass_arguments(datamodules.NeuralDataModule, "data", required=True, fail_untyped=False)
    for name in SIZE_KEYS:
        parser.link_arguments(f"data.{name}", f"model.init_args.{name}", apply_on="instantiate")
    sections = {
        "model": copy.deepcopy(cfg.get("model") or {"class_path": "neurodyn.training.module.LangevinFlowModule"}),
        "data": copy.deepcopy(cfg.get("data") or {"class_path": "neurodyn.training.datamodules.LorenzDataModule"}),
    }
    try:
        namespace = parser.parse_object(sections)
    except ArgumentError as err:
        if sources:
            from neurodyn.training.parser_errors import parser_error

            raise parser_error(str(err), [arg for f in sources for arg in ("--config", str(f))]) from None
        raise InputError(one_line(err, 400), field="--config") from None
    path = get_path(cfg, ("data", "init_args", "path"))
    if path is not None and not Path(path).is_file():
        raise InputError("file not found", path=path, field="data.init_args.path")
    seed = cfg.get("seed_everything", 0)
    pl.seed_everything(seed if isinstance(seed, int) and not isinstance(seed, bool) else 0, verbose=False)
    instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes  # renamed in jsonargparse 4.49
    try:
        with command_line_names():  # the DataModules name their arguments as the config spells them
            init = instantiate(namespace)
    except Exception as err:
        cause = wrapped_input_error(err)
        if cause is None:
            raise
        if cause.involves and sources:  # a refused combination (a data file's too): as neurodyn fit names it
            from neurodyn.training.parser_errors import qualified

            raise qualified(cause, namespace, [arg for f in sources for arg in ("--config", str(f))]) from None
        keys = None
        dotted = tuple(str(cause.field or "").split("."))
        if dotted[0] in sections and get_path(sections, dotted) is not None:
            keys = dotted  # named as the config spells it (the DataModules' data.init_args.batch_size)
        for section in ("model", "data"):  # the key the class refused, at its place in the config
            keys = keys or (find_key(sections[section], cause.field, (section,)) if cause.field else None)
        if cause.path is not None or keys is None:
            raise cause from None
        raise InputError(cause.message, path=source_of(list(sources or []), keys) if sources else None,
                         field=".".join(keys)) from None
    return init.model, init.data


# -- the learning rate after a restore -----------------------------------------------------------------
def _scheduled_lr(scheduler, base_lr: float) -> float:
    """The rate ``scheduler`` would give now had it started from ``base_lr`` (closed forms; else ``base_lr``;
    the module's cosine holds ``eta_min`` past its span, :class:`~neurodyn.training.schedules.CosineToMinLR`)."""
    import torch

    from neurodyn.training.schedules import CosineToMinLR

    if isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR):
        t = scheduler.last_epoch
        if isinstance(scheduler, CosineToMinLR) and t > scheduler.T_max:
            return scheduler.eta_min
        return scheduler.eta_min + (base_lr - scheduler.eta_min) * (1 + math.cos(math.pi * t / scheduler.T_max)) / 2
    return base_lr


class TrialLearningRate(pl.Callback):
    """Put the module's own ``hparams.lr`` into the optimiser after a checkpoint restore.

    ``Trainer.fit(ckpt_path=...)`` restores the optimiser's param groups, learning rate included, and the
    scheduler's ``base_lrs``: after a PBT exploit these are the *donor's*, while the module (built from the
    trial's Tune config) carries the perturbed ``lr`` (ray-project/ray#36660). ``on_train_start`` runs
    after the restore; it sets each param group's rate (for a cosine schedule: the value at the current
    epoch of the cosine that starts at ``lr``) and the scheduler's ``base_lrs``. ReduceLROnPlateau
    restarts from ``lr`` (its reductions belong to the donor's rate). ``lr_used`` records the rate of
    the first optimiser step of each epoch.
    """

    def __init__(self):
        self.lr_used: float | None = None
        self._epoch_seen = -1

    def on_train_start(self, trainer, pl_module) -> None:
        lr = float(pl_module.hparams.lr)
        schedulers = {id(cfg.scheduler.optimizer): cfg.scheduler for cfg in trainer.lr_scheduler_configs
                      if hasattr(cfg.scheduler, "optimizer")}
        for opt in trainer.optimizers:
            sched = schedulers.get(id(opt))
            for group in opt.param_groups:
                group["initial_lr"] = lr
                group["lr"] = _scheduled_lr(sched, lr)
            if sched is not None and hasattr(sched, "base_lrs"):
                sched.base_lrs = [lr for _ in opt.param_groups]
                if hasattr(sched, "_last_lr"):
                    sched._last_lr = [g["lr"] for g in opt.param_groups]

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        if trainer.current_epoch != self._epoch_seen:
            self._epoch_seen = trainer.current_epoch
            self.lr_used = float(optimizer.param_groups[0]["lr"])


# -- one trial ------------------------------------------------------------------------------------------
#: written next to ``model.ckpt`` in every checkpoint: the epoch's report, hyperparameters and trial
REPORT_NAME = "report.json"


class _Report(pl.Callback):
    """Report the epoch's metrics to Tune (after validation, at the epoch's end), with a checkpoint
    every ``checkpoint_every`` epochs and at the last one. ``restored`` names the checkpoint this run
    started from (a PBT exploit copies another trial's)."""

    def __init__(self, lr_cb: TrialLearningRate, hparams: dict, checkpoint_every: int, epochs: int,
                 trial: str, restored: dict | None):
        self.lr_cb, self.hparams, self.trial = lr_cb, hparams, trial
        self.checkpoint_every, self.epochs = checkpoint_every, epochs
        self.restored = restored or {}

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        from ray import tune

        metrics: dict[str, Any] = {}
        for key, value in trainer.callback_metrics.items():
            with contextlib.suppress(TypeError, ValueError, RuntimeError):
                metrics[key] = float(value)
        if METRIC not in metrics:
            raise RuntimeError(f"{METRIC} was not logged this epoch (validation must run every epoch)")
        epoch = trainer.current_epoch + 1
        metrics["epoch"] = epoch
        metrics["lr_used"] = self.lr_cb.lr_used
        metrics["restored_from_trial"] = self.restored.get("trial", "")
        metrics["restored_from_epoch"] = self.restored.get("epoch", 0)
        metrics.update({f"hp/{k}": v for k, v in self.hparams.items()})
        if epoch % self.checkpoint_every and epoch < self.epochs:
            tune.report(metrics)
            return
        with tempfile.TemporaryDirectory(prefix="neurodyn-tune-") as tmp:
            trainer.save_checkpoint(os.path.join(tmp, "model.ckpt"))
            report = {"trial": self.trial, "epoch": epoch, "metric": METRIC, "value": metrics[METRIC],
                      "hyperparameters": dict(self.hparams)}
            Path(tmp, REPORT_NAME).write_text(json.dumps(report))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))


def _quiet_worker_logs() -> None:
    """A Tune worker runs many trials: Lightning's info lines (devices, seeds), one set per trial, are dropped
    there; its warnings are filtered by :func:`~neurodyn.training.quiet.quiet_lightning`, as in ``fit``."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)


def select_split(data, fraction: float, seed: int) -> str:
    """Make sure ``data`` validates on a select split; returns what that split is.

    A DataModule that carved one (``data.select_fraction`` in the config) keeps it. Any other gets a
    seeded ``fraction`` of its training trials carved off in place
    (:meth:`~neurodyn.training.datamodules.NeuralDataModule.carve_select`, the mechanism of the fit
    harness): training uses the rest, and the validation trials -- the NLB evaluation trials that
    ``neurodyn evaluate`` scores, or the valid trials whose rates a Lorenz / LFADS user reports -- are
    never seen by the search.
    """
    if "select" in data.splits:  # the config carved one (data.select_fraction): validation already uses it
        return f"the DataModule's select split: {len(data.splits['select'])} of the training trials"
    # a fraction that leaves no training trial is refused as neurodyn tune's option, not the config's
    return data.carve_select(fraction, seed, field="--select-fraction") + "; the validation trials are not used"


def record_select_split(cfg: dict, fraction: float, seed: int) -> dict:
    """``cfg`` with the select split tune carved written into its data section, so that ``neurodyn fit``
    with it trains and selects on the same trials as the trials did (never on the evaluation trials).

    >>> record_select_split({"data": {"class_path": "NLBDataModule", "init_args": {"path": "p.h5"}}}, 0.1, 3)
    {'data': {'class_path': 'NLBDataModule', 'init_args': {'path': 'p.h5', 'select_fraction': 0.1, 'select_seed': 3}}}
    """
    out = copy.deepcopy(cfg)
    set_path(out, ("data", "init_args", "select_fraction"), fraction)
    set_path(out, ("data", "init_args", "select_seed"), seed)
    return out


#: the DataModules' file options: a relative one names a file in the folder tune was started in
_DATA_FILES = ("path", "cache")


def in_workdir(cfg: dict, workdir: str) -> dict:
    """``cfg`` with the data section's relative file options made absolute against ``workdir``, the folder
    ``neurodyn tune`` (like ``neurodyn fit``) was started in: Ray runs each trial in its own trial folder.

    >>> in_workdir({"data": {"init_args": {"path": "l.h5", "cache": "/c.h5"}}}, "/runs")["data"]["init_args"]
    {'path': '/runs/l.h5', 'cache': '/c.h5'}
    """
    out = copy.deepcopy(cfg)
    for key in _DATA_FILES:
        value = get_path(out, ("data", "init_args", key))
        if isinstance(value, str) and value and not os.path.isabs(value):
            set_path(out, ("data", "init_args", key), os.path.join(workdir, value))
    return out


def train_trial(config: dict, *, base: dict, epochs: int, cpus: float, gpus: float, checkpoint_every: int,
                select_fraction: float, seed: int, workdir: str) -> None:
    """Tune function trainable: build from the trial config, restore a checkpoint if Tune gives one, fit."""
    _quiet_worker_logs()
    with quiet_lightning():
        _train_trial(config, base=in_workdir(base, workdir), epochs=epochs, cpus=cpus, gpus=gpus,
                     checkpoint_every=checkpoint_every, select_fraction=select_fraction, seed=seed)


def _train_trial(config: dict, *, base: dict, epochs: int, cpus: float, gpus: float, checkpoint_every: int,
                 select_fraction: float, seed: int) -> None:
    import torch
    from ray import tune

    torch.set_num_threads(max(1, int(cpus)))
    trial = trial_name(trial_index(tune.get_context().get_trial_id()))
    cfg = apply_hyperparameters(base, config)
    model, data = build_model_and_data(cfg)
    select_split(data, select_fraction, seed)
    trainer_cfg = cfg.get("trainer") or {}
    with tempfile.TemporaryDirectory(prefix="neurodyn-restore-") as tmp:
        ckpt_path, restored = None, None
        checkpoint = tune.get_checkpoint()
        if checkpoint is not None:
            checkpoint.to_directory(tmp)
            ckpt_path = os.path.join(tmp, "model.ckpt")
            restored = json.loads(Path(tmp, REPORT_NAME).read_text())
            if restored["epoch"] >= epochs:
                return  # copied a finished trial: nothing left to train
        lr_cb = TrialLearningRate()
        own = restored is None or restored.get("trial") == trial  # not an exploit's copy of another trial
        trainer = trial_trainer(epochs, gpus, trainer_cfg, tmp, lr_cb,
                                _Report(lr_cb, config, checkpoint_every, epochs, trial, restored), own_checkpoint=own)
        trainer.fit(model, datamodule=data, ckpt_path=ckpt_path)


def trial_trainer(epochs: int, gpus: float, trainer_cfg: dict, root: str, lr_cb: TrialLearningRate,
                  *callbacks: pl.Callback, own_checkpoint: bool = True) -> pl.Trainer:
    """The Lightning trainer of one trial. Its checkpoints carry the random states (torch, numpy, python, the
    model's and the DataModule's generators: :class:`~neurodyn.training.callbacks.RandomStateInCheckpoints`),
    as ``fit``'s do: synchronous PBT pauses every trial at each perturbation and restores it from its own
    checkpoint, and without them a trial never exploited drifted from a plain fit of its settings after the
    first restore (other batch orders, dropout and coordinated-dropout masks). A trial that copied another
    trial's checkpoint (``own_checkpoint=False``, an exploit) keeps its own random streams, rather than repeat
    its donor's."""
    from neurodyn.training.callbacks import RandomStateInCheckpoints, flush_denormals

    flush_denormals()  # in the trial's worker process
    return pl.Trainer(
        accelerator="gpu" if gpus > 0 else "cpu", devices=1, max_epochs=epochs, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        check_val_every_n_epoch=1, num_sanity_val_steps=0, default_root_dir=root,
        callbacks=[lr_cb, RandomStateInCheckpoints(restore=own_checkpoint), *callbacks],
        **{k: trainer_cfg[k] for k in TRAINER_KEYS if trainer_cfg.get(k) is not None},
    )


def saved_checkpoints(experiment: Path) -> list[tuple[Path, dict]]:
    """Every checkpoint the search kept, with the report saved inside it (trial, epoch, value, hyperparameters)."""
    out = []
    for report in sorted(experiment.glob(f"*/checkpoint_*/{REPORT_NAME}")):
        with contextlib.suppress(ValueError, OSError):
            info = json.loads(report.read_text())
            if (report.parent / "model.ckpt").is_file() and math.isfinite(float(info["value"])):
                out.append((report.parent, info))
    return out
