"""``neurodyn tune``: hyperparameter search for LangevinFlow on Ray Tune (the ``tune`` extra).

::

    neurodyn tune --config configs/langevinflow/lorenz.yaml --search configs/tune/langevinflow.yaml \\
        --scheduler pbt --samples 8 --cpus-per-trial 1 --out runs/tune-lorenz

``--config`` is an ordinary ``neurodyn fit`` config (LightningCLI YAML; several are stacked, later ones
win). ``--search`` names the hyperparameters to search and their ranges (``configs/tune/*.yaml``)::

    space:                                   # short name: distribution or fixed value
      lr: {loguniform: [1.0e-4, 1.0e-2]}
      weight_decay: {loguniform: [1.0e-6, 1.0e-3]}
      dropout: {uniform: [0.0, 0.3]}
      cd_keep_prob: {uniform: [0.5, 1.0]}
      kl_max: {loguniform: [0.1, 1.0]}
      gamma: {uniform: [0.05, 0.6]}
      hidden_size: {choice: [32, 64]}
    epochs: 100                              # optional: epochs per trial (default trainer.max_epochs)
    pbt: {perturbation_interval: 10, burn_in_period: 10, quantile_fraction: 0.25,
          resample_probability: 0.25, perturbation_factors: [1.2, 0.8], synch: true}
    asha: {grace_period: 10, reduction_factor: 3}

The names are those of :class:`~neurodyn.training.module.LangevinFlowModule` (``lr``, ``weight_decay``)
and of :class:`~neurodyn.models.langevinflow.LangevinFlowConfig` (``dropout``, ``cd_keep_prob`` -- the
coordinated-dropout *keep* probability --, ``kl_max`` -- the KL weight --, ``gamma``, ``hidden_size``,
``latent_dim``, ``ff_dim``, ``kl_ramp_epochs``, ``velocity_prior_var``); :data:`HYPERPARAMETERS` lists them.

Schedulers
----------
``pbt``
    Population-based training (Jaderberg et al. 2017, arXiv:1711.09846) as AutoLFADS runs it (Keshtkaran
    et al. 2022, Nature Methods 19:1572, doi:10.1038/s41592-022-01675-0): every
    ``perturbation_interval`` epochs the worst quarter of the population copies the checkpoint of a
    trial in the best quarter (*exploit*) and perturbs its hyperparameters (*explore*: times 0.8 or 1.2,
    or resampled with probability ``resample_probability``; clipped to the search range). ``synch:
    true`` (default) waits until every trial has reached the perturbation epoch, so trials are compared
    at equal epochs (AutoLFADS's generations); ``false`` is Ray's asynchronous PBT. Only values that
    leave the weight shapes alone are perturbed; ``hidden_size``, ``latent_dim``, ``ff_dim`` and
    ``kl_ramp_epochs`` are sampled once and travel with the copied checkpoint. Checkpoints are written
    at perturbation epochs and at the last epoch, and all are kept (an exploit may copy any of them):
    about ``samples x epochs / perturbation_interval`` files.
``asha``
    Asynchronous successive halving (Li et al. 2020, arXiv:1810.05934): trials are stopped early at
    rungs ``grace_period * reduction_factor**k`` epochs unless they are in the top ``1/reduction_factor``.
    A checkpoint every epoch; each trial keeps its best and its latest.

Selection
---------
Every trial reports, once per epoch, the module's ``valid/loss``: the masked Poisson NLL of the
*select* split (the KL weight does not enter it, so trials with different ``kl_max`` compare fairly, as
AutoLFADS compares validation NLL). The select split is the DataModule's validation split (Lorenz,
LFADS-format and simulated data), except for :class:`~neurodyn.data.datamodule.NLBDataModule`, whose
validation trials are the NLB evaluation trials that ``neurodyn evaluate`` scores: there a seeded
``--select-fraction`` of the *training* trials is held out as the select split (:func:`carve_select_split`)
and the evaluation trials are never seen. Nothing is selected on true rates or on report/test trials.
The best checkpoint is the kept checkpoint with the lowest ``valid/loss`` over all trials (each holds a
``report.json`` with its trial, epoch and hyperparameters).
Every trial starts from the config's ``seed_everything``, so trials differ by their hyperparameters only.

Hyperparameters after an exploit come from the Tune trial config
-----------------------------------------------------------------
A trial always builds its module from *its own* Tune config and then restores the copied Lightning
checkpoint's weights, optimiser and scheduler state. Restoring the optimiser would bring back the
donor's learning rate (ray-project/ray#36660); :class:`TrialLearningRate` writes the module's ``lr`` (the
trial's) back into the optimiser, and into the scheduler's base learning rate (cosine: the rate at the
current epoch of the cosine from the new ``lr``). Every report carries ``lr_used``, the rate of the
optimiser at the epoch's first step, so the result files show which rate was applied.

Outputs (``--out``, default ``runs/tune/<config>-<scheduler>-<UTC time>``), written to a temporary folder
and renamed when the search ends (nothing partial is left on an error, Ctrl-C or SIGTERM):

- ``trials.csv`` (and ``trials.txt``, the rich table printed at the end): one row per trial;
- ``perturbations.csv`` (PBT): every exploit / explore step, with the old and new hyperparameters;
- ``best.yaml``: the fit config with the best trial's hyperparameters, ready for ``neurodyn fit``;
- ``best.ckpt``: the Lightning checkpoint of the best trial at its best epoch
  (``neurodyn predict --config best.yaml --ckpt_path best.ckpt``);
- ``summary.json``: metric, split, best trial, value, epoch, command, seconds;
- ``ray/``: Ray Tune's experiment folder (per-trial ``progress.csv`` / ``result.json``).

Runs locally by default (``ray.init`` with ``--num-cpus`` CPUs, default ``cpus-per-trial x samples``
capped at the machine's cores); ``--address ray://host:10001`` (or ``auto``) joins an existing cluster,
whose nodes must have neurodyn installed and see ``--out`` (a shared file system).
Sampled configurations are seeded (``--seed``); PBT's exploit timing depends on which trial reports
first, so two PBT runs are not identical.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import json
import logging
import math
import os
import random
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np

from neurodyn.errors import InputError

__all__ = ["HYPERPARAMETERS", "TrialLearningRate", "load_search", "cli_main"]

#: The selection metric: masked Poisson NLL on the DataModule's validation split (lower is better).
METRIC, MODE = "valid/loss", "min"


@dataclass(frozen=True)
class Hyperparameter:
    """Where a searchable hyperparameter lives in a fit config, and whether PBT may perturb it."""

    path: tuple[str, ...]
    mutable: bool
    kind: str  # "float" or "int"


_MODEL = ("model", "init_args")
_CFG = ("model", "init_args", "config")

#: Searchable hyperparameters: short name -> place in the fit config. ``mutable`` ones are perturbed by PBT;
#: the others change weight shapes (or the schedule length) and are only sampled at the start.
HYPERPARAMETERS: dict[str, Hyperparameter] = {
    "lr": Hyperparameter((*_MODEL, "lr"), True, "float"),
    "weight_decay": Hyperparameter((*_MODEL, "weight_decay"), True, "float"),
    "dropout": Hyperparameter((*_CFG, "dropout"), True, "float"),
    "cd_keep_prob": Hyperparameter((*_CFG, "cd_keep_prob"), True, "float"),
    "kl_max": Hyperparameter((*_CFG, "kl_max"), True, "float"),
    "gamma": Hyperparameter((*_CFG, "gamma"), True, "float"),
    "velocity_prior_var": Hyperparameter((*_CFG, "velocity_prior_var"), True, "float"),
    "hidden_size": Hyperparameter((*_CFG, "hidden_size"), False, "int"),
    "latent_dim": Hyperparameter((*_CFG, "latent_dim"), False, "int"),
    "ff_dim": Hyperparameter((*_CFG, "ff_dim"), False, "int"),
    "kl_ramp_epochs": Hyperparameter((*_CFG, "kl_ramp_epochs"), False, "int"),
}

_DISTRIBUTIONS = ("uniform", "loguniform", "choice")
_SEARCH_KEYS = {"space", "epochs", "pbt", "asha"}
_PBT_KEYS = {"perturbation_interval", "burn_in_period", "quantile_fraction", "resample_probability",
             "perturbation_factors", "synch"}
_ASHA_KEYS = {"grace_period", "reduction_factor"}
#: trainer settings of the fit config that a trial keeps; tune owns the rest (devices, loggers, callbacks)
_TRAINER_KEYS = ("precision", "gradient_clip_val", "gradient_clip_algorithm", "accumulate_grad_batches",
                 "limit_train_batches", "limit_val_batches", "deterministic", "benchmark")
_MODULES = ("LangevinFlowModule", "neurodyn.training.module.LangevinFlowModule",
            "neurodyn.training.LangevinFlowModule")


# -- config files ---------------------------------------------------------------------------------------
def _read_yaml(path: str | os.PathLike, field: str) -> dict:
    import yaml

    p = Path(path)
    if not p.is_file():
        raise InputError("file not found" if not p.exists() else "is not a file", path=p, field=field)
    try:
        data = yaml.safe_load(p.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise InputError(f"not valid YAML ({str(err).splitlines()[0]})", path=p, field=field) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(f"expected a mapping at the top level, got {type(data).__name__}", path=p, field=field)
    return data


def _merge(base: dict, over: dict) -> dict:
    """Deep merge of config mappings (later wins; lists are replaced, as LightningCLI stacks configs)."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _number(value: Any, path: Path, field: str) -> float:
    """A YAML number; PyYAML reads ``1e-4`` (no dot) as a string, so numeric strings are accepted."""
    if isinstance(value, bool):
        raise InputError(f"expected a number, got {value!r}", path=path, field=field)
    if isinstance(value, (int, float)):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        raise InputError(f"expected a number, got {value!r}", path=path, field=field) from None


def load_search(path: str | os.PathLike) -> dict:
    """Read and check a search-space file; returns ``{'space': {name: spec}, 'epochs', 'pbt', 'asha'}``.

    Each ``spec`` is ``("fixed", value)``, ``("uniform", lo, hi)``, ``("loguniform", lo, hi)`` or
    ``("choice", [values])``. Raises :class:`InputError` naming the file and the field.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.yaml"
    >>> _ = p.write_text("space:\\n  lr: {loguniform: [1e-4, 1e-2]}\\n  bogus: 1\\n")
    >>> load_search(p)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    neurodyn.errors.InputError: .../s.yaml: space.bogus: unknown hyperparameter; known: lr, weight_decay, ...
    """
    path = Path(path)
    data = _read_yaml(path, "--search")
    unknown = sorted(set(data) - _SEARCH_KEYS)
    if unknown:
        raise InputError(f"unknown key; expected {sorted(_SEARCH_KEYS)}", path=path, field=unknown[0])
    raw = data.get("space")
    if not isinstance(raw, dict) or not raw:
        raise InputError("needs a non-empty mapping of hyperparameters", path=path, field="space")
    space: dict[str, tuple] = {}
    for name, spec in raw.items():
        field = f"space.{name}"
        if name not in HYPERPARAMETERS:
            raise InputError(f"unknown hyperparameter; known: {', '.join(HYPERPARAMETERS)}", path=path, field=field)
        kind = HYPERPARAMETERS[name].kind
        if not isinstance(spec, dict):
            space[name] = ("fixed", _cast(_number(spec, path, field), kind, path, field))
            continue
        if len(spec) != 1 or next(iter(spec)) not in _DISTRIBUTIONS:
            raise InputError(f"expected one of {{{', '.join(_DISTRIBUTIONS)}: ...}} or a value, got {spec!r}",
                             path=path, field=field)
        dist, args = next(iter(spec.items()))
        if not isinstance(args, list) or not args:
            raise InputError(f"{dist} needs a list, got {args!r}", path=path, field=field)
        values = [_cast(_number(v, path, field), kind, path, field) for v in args]
        if dist == "choice":
            space[name] = ("choice", values)
            continue
        if len(values) != 2 or not values[0] < values[1]:
            raise InputError(f"{dist} needs [low, high] with low < high, got {args!r}", path=path, field=field)
        if kind == "int":
            raise InputError("is an integer; use choice: [...]", path=path, field=field)
        if dist == "loguniform" and values[0] <= 0:
            raise InputError(f"loguniform needs low > 0, got {args!r}", path=path, field=field)
        space[name] = (dist, *values)
    out = {"space": space, "epochs": None, "pbt": {}, "asha": {}}
    if data.get("epochs") is not None:
        out["epochs"] = _positive_int(data["epochs"], path, "epochs")
    for section, keys in (("pbt", _PBT_KEYS), ("asha", _ASHA_KEYS)):
        opts = data.get(section) or {}
        if not isinstance(opts, dict):
            raise InputError("expected a mapping", path=path, field=section)
        bad = sorted(set(opts) - keys)
        if bad:
            raise InputError(f"unknown option; expected {sorted(keys)}", path=path, field=f"{section}.{bad[0]}")
        out[section] = _scheduler_options(section, opts, path)
    return out


def _cast(value: float, kind: str, path: Path, field: str):
    if kind == "int":
        if float(value) != int(value):
            raise InputError(f"expected an integer, got {value!r}", path=path, field=field)
        return int(value)
    return float(value)


def _positive_int(value, path: Path, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"must be a positive integer, got {value!r}", path=path, field=field)
    return value


def _scheduler_options(section: str, opts: dict, path: Path) -> dict:
    out = dict(opts)
    for key in ("perturbation_interval", "grace_period", "reduction_factor"):
        if key in out:
            out[key] = _positive_int(out[key], path, f"{section}.{key}")
    if "reduction_factor" in out and out["reduction_factor"] < 2:
        raise InputError(f"must be >= 2, got {out['reduction_factor']}", path=path, field=f"{section}.reduction_factor")
    if "burn_in_period" in out:
        value = out["burn_in_period"]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InputError(f"must be an integer >= 0, got {value!r}", path=path, field=f"{section}.burn_in_period")
    for key in ("quantile_fraction", "resample_probability"):
        if key in out:
            value = _number(out[key], path, f"{section}.{key}")
            if not 0 <= value <= (0.5 if key == "quantile_fraction" else 1):
                raise InputError(f"out of range, got {value!r}", path=path, field=f"{section}.{key}")
            out[key] = float(value)
    if "synch" in out and not isinstance(out["synch"], bool):
        raise InputError(f"must be true or false, got {out['synch']!r}", path=path, field=f"{section}.synch")
    if "perturbation_factors" in out:
        factors = out["perturbation_factors"]
        if not isinstance(factors, list) or len(factors) != 2:
            raise InputError(f"expected [up, down], got {factors!r}", path=path,
                             field=f"{section}.perturbation_factors")
        out["perturbation_factors"] = tuple(float(_number(f, path, f"{section}.perturbation_factors")) for f in factors)
    return out


def _get(cfg: dict, keys: tuple[str, ...], default=None):
    for key in keys:
        if not isinstance(cfg, dict) or key not in cfg:
            return default
        cfg = cfg[key]
    return cfg


def _set(cfg: dict, keys: tuple[str, ...], value) -> None:
    for key in keys[:-1]:
        if not isinstance(cfg.get(key), dict):
            cfg[key] = {}
        cfg = cfg[key]
    cfg[keys[-1]] = value


def apply_hyperparameters(base: dict, values: dict) -> dict:
    """A copy of the fit config ``base`` with the short-named ``values`` written at their places.

    >>> apply_hyperparameters({"model": {"init_args": {"lr": 1e-3}}}, {"lr": 2e-3, "gamma": 0.2})["model"]
    {'init_args': {'lr': 0.002, 'config': {'gamma': 0.2}}}
    """
    cfg = copy.deepcopy(base)
    for name, value in values.items():
        _set(cfg, HYPERPARAMETERS[name].path, value)
    return cfg


def _check_model(base: dict, source: str) -> None:
    model = base.get("model")
    class_path = model.get("class_path") if isinstance(model, dict) else None
    if class_path is not None and class_path not in _MODULES:
        raise InputError(f"tune searches LangevinFlowModule hyperparameters, got {class_path!r}",
                         path=source, field="model.class_path")


def _endpoints(spec: tuple) -> list:
    if spec[0] == "fixed":
        return [spec[1]]
    if spec[0] == "choice":
        return list(spec[1])
    return [spec[1], spec[2]]


def _check_values(base: dict, space: dict, search_path: Path) -> None:
    """Every value a search can produce must make a valid model: endpoints and choices are tried."""
    from neurodyn.models.langevinflow import LangevinFlowConfig

    cfg_base = dict(_get(base, _CFG, {}) or {})
    for name, spec in space.items():
        for value in _endpoints(spec):
            if name in ("lr",) and not value > 0:
                raise InputError(f"must be > 0, got {value!r}", path=search_path, field=f"space.{name}")
            if name == "weight_decay" and value < 0:
                raise InputError(f"must be >= 0, got {value!r}", path=search_path, field=f"space.{name}")
            if HYPERPARAMETERS[name].path[:3] == _CFG:
                try:
                    LangevinFlowConfig(**{**cfg_base, name: value})
                except InputError as err:
                    raise InputError(f"value {value!r}: {err.message}", path=search_path,
                                     field=f"space.{name}") from None
                except TypeError as err:  # an unknown key in the fit config itself
                    raise InputError(str(err), field="model.init_args.config") from None


# -- building model and data from a fit config --------------------------------------------------------
#: sizes linked from the DataModule into the model, as ``neurodyn fit`` links them
SIZE_LINKS = ("n_heldin", "n_neurons", "n_obs_bins", "n_fwd_bins")


def build_model_and_data(cfg: dict):
    """Instantiate the LightningModule and DataModule of a fit config as ``neurodyn fit`` reads them.

    The ``model`` and ``data`` sections are parsed by jsonargparse with LightningCLI's subclass mode
    (``class_path`` / ``init_args``, short class names, type checks) and the DataModule's sizes linked
    into the model; the global seed is ``seed_everything``. Parser errors become :class:`InputError`.
    """
    from jsonargparse import ArgumentError, ArgumentParser

    # imported so that short class names (class_path: LangevinFlowModule / LorenzDataModule) resolve
    import neurodyn.data.datamodule as datamodules
    import neurodyn.training.module  # noqa: F401

    parser = ArgumentParser(exit_on_error=False)
    parser.add_subclass_arguments(pl.LightningModule, "model", required=True, fail_untyped=False)
    parser.add_subclass_arguments(datamodules.NeuralDataModule, "data", required=True, fail_untyped=False)
    for name in SIZE_LINKS:
        parser.link_arguments(f"data.{name}", f"model.init_args.{name}", apply_on="instantiate")
    sections = {
        "model": copy.deepcopy(cfg.get("model") or {"class_path": "neurodyn.training.module.LangevinFlowModule"}),
        "data": copy.deepcopy(cfg.get("data") or {"class_path": "neurodyn.data.datamodule.LorenzDataModule"}),
    }
    try:
        namespace = parser.parse_object(sections)
    except ArgumentError as err:
        raise InputError(" ".join(str(err).split())[:400], field="--config") from None
    path = _get(cfg, ("data", "init_args", "path"))
    if path is not None and not Path(path).is_file():
        raise InputError("file not found", path=path, field="data.init_args.path")
    seed = cfg.get("seed_everything", 0)
    pl.seed_everything(seed if isinstance(seed, int) and not isinstance(seed, bool) else 0, verbose=False)
    instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes  # renamed in jsonargparse 4.49
    init = instantiate(namespace)
    return init.model, init.data


# -- the learning rate after a restore -----------------------------------------------------------------
def _scheduled_lr(scheduler, base_lr: float) -> float:
    """The rate ``scheduler`` would give now had it started from ``base_lr`` (closed forms; else ``base_lr``)."""
    import torch

    if isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR):
        t = scheduler.last_epoch
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


def _quiet_lightning() -> None:
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")


def carve_select_split(data, fraction: float, seed: int) -> str:
    """Use a seeded ``fraction`` of ``data``'s training trials as its validation split, in place.

    For data whose validation trials are report trials (NLB evaluation trials). Returns a description.

    >>> import numpy as np
    >>> from neurodyn.data.datamodule import SplitArrays
    >>> class D: splits = {"train": SplitArrays(np.zeros((10, 3, 2)), np.zeros((10, 3, 2)), np.ones((10, 3, 2), bool)),
    ...                    "valid": SplitArrays(np.ones((4, 3, 2)), np.ones((4, 3, 2)), np.ones((4, 3, 2), bool))}
    >>> carve_select_split(D, 0.2, seed=0), len(D.splits["train"]), float(D.splits["valid"].heldin.sum())
    ('2 of the 10 training trials (seed 0); the evaluation trials are not used', 8, 0.0)
    """
    from neurodyn.data.datamodule import SplitArrays

    train = data.splits["train"]
    n = len(train)
    k = max(1, round(fraction * n))
    if n - k < 1:
        raise InputError(f"leaves no training trials ({n} in all)", field="--select-fraction")
    order = np.random.default_rng(seed).permutation(n)
    select, fit = np.sort(order[:k]), np.sort(order[k:])

    def subset(split, idx):
        return SplitArrays(split.heldin[idx], split.target[idx], split.target_mask[idx],
                           {key: value[idx] for key, value in split.extras.items()})

    data.splits["valid"], data.splits["train"] = subset(train, select), subset(train, fit)
    return f"{k} of the {n} training trials (seed {seed}); the evaluation trials are not used"


def _select_split(data, fraction: float, seed: int) -> str:
    """Make ``data``'s validation split a select split; returns what it is."""
    from neurodyn.data.datamodule import NLBDataModule

    if isinstance(data, NLBDataModule):
        return carve_select_split(data, fraction, seed)
    return f"the DataModule's validation split ({len(data.splits['valid'])} trials)"


def _train_trial(config: dict, *, base: dict, epochs: int, cpus: float, gpus: float, checkpoint_every: int,
                 select_fraction: float, seed: int) -> None:
    """Tune function trainable: build from the trial config, restore a checkpoint if Tune gives one, fit."""
    import torch
    from ray import tune

    _quiet_lightning()
    torch.set_num_threads(max(1, int(cpus)))
    trial = f"trial_{tune.get_context().get_trial_id()}"
    cfg = apply_hyperparameters(base, config)
    model, data = build_model_and_data(cfg)
    _select_split(data, select_fraction, seed)
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
        trainer = pl.Trainer(
            accelerator="gpu" if gpus > 0 else "cpu", devices=1, max_epochs=epochs, logger=False,
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
            check_val_every_n_epoch=1, num_sanity_val_steps=0, default_root_dir=tmp,
            callbacks=[lr_cb, _Report(lr_cb, config, checkpoint_every, epochs, trial, restored)],
            **{k: trainer_cfg[k] for k in _TRAINER_KEYS if trainer_cfg.get(k) is not None},
        )
        trainer.fit(model, datamodule=data, ckpt_path=ckpt_path)


def _saved_checkpoints(experiment: Path) -> list[tuple[Path, dict]]:
    """Every checkpoint the search kept, with the report saved inside it (trial, epoch, value, hyperparameters)."""
    out = []
    for report in sorted(experiment.glob(f"*/checkpoint_*/{REPORT_NAME}")):
        with contextlib.suppress(ValueError, OSError):
            info = json.loads(report.read_text())
            if (report.parent / "model.ckpt").is_file() and math.isfinite(float(info["value"])):
                out.append((report.parent, info))
    return out


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


def _scheduler(kind: str, search: dict, epochs: int):
    from ray.tune.schedulers import ASHAScheduler, PopulationBasedTraining

    space = search["space"]
    if kind == "asha":
        opts = search["asha"]
        grace = opts.get("grace_period", max(1, epochs // 10))
        return ASHAScheduler(time_attr="training_iteration", max_t=epochs, grace_period=min(grace, epochs),
                             reduction_factor=opts.get("reduction_factor", 3))
    opts = dict(search["pbt"])
    mutations = {name: _domain(spec) for name, spec in space.items()
                 if spec[0] != "fixed" and HYPERPARAMETERS[name].mutable}
    if not mutations:
        raise InputError("PBT needs at least one searched hyperparameter that it may perturb "
                         f"({', '.join(n for n, h in HYPERPARAMETERS.items() if h.mutable)})", field="--search")
    interval = opts.pop("perturbation_interval", max(1, epochs // 10))
    # synch: every trial reaches the perturbation epoch before any exploits, as in AutoLFADS's generations
    return PopulationBasedTraining(
        time_attr="training_iteration", perturbation_interval=interval, hyperparam_mutations=mutations,
        custom_explore_fn=_clip_to_space(space), synch=opts.pop("synch", True), **opts,
    )


def _checkpoint_every(kind: str, search: dict, epochs: int) -> int:
    """PBT: checkpoints at perturbation epochs only (all kept: an exploit may copy any of them); ASHA: every epoch."""
    if kind == "pbt":
        return search["pbt"].get("perturbation_interval", max(1, epochs // 10))
    return 1


_SIGNAL_RECEIVED: list[int] = []


def _raise_interrupted(signum, _frame):
    from neurodyn.io import Interrupted

    _SIGNAL_RECEIVED.append(signum)
    raise Interrupted(signum)


def _sigterm_interrupts() -> None:
    """SIGTERM raises neurodyn's Interrupted (a KeyboardInterrupt): cleanup runs, exit code 143."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _raise_interrupted)


def _trial_name(trial) -> str:
    return f"trial_{trial.trial_id}"


def _default_out(configs: list[str], scheduler: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return Path("runs") / "tune" / f"{Path(configs[-1]).stem}-{scheduler}-{stamp}"


def _parser() -> argparse.ArgumentParser:
    from neurodyn.errors import ArgumentParser  # usage errors are one-line InputErrors

    p = ArgumentParser(prog="neurodyn tune", description=__doc__.split("\n\n")[0],
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", action="append", required=True, metavar="YAML",
                   help="a neurodyn fit config (repeat to stack; later files win)")
    p.add_argument("--search", required=True, metavar="YAML", help="search space (configs/tune/*.yaml)")
    p.add_argument("--scheduler", choices=("pbt", "asha"), default="pbt")
    p.add_argument("--samples", type=int, default=8, help="trials (the PBT population size)")
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs per trial (default: the search file's 'epochs', else trainer.max_epochs)")
    p.add_argument("--cpus-per-trial", type=float, default=1.0)
    p.add_argument("--gpus-per-trial", type=float, default=0.0)
    p.add_argument("--num-cpus", type=int, default=None,
                   help="CPUs of the local Ray instance (default cpus-per-trial x samples, at most the cores)")
    p.add_argument("--address", default=None, help="join an existing Ray cluster (ray://host:10001 or auto)")
    p.add_argument("--out", default=None, help="run folder (must not exist; default runs/tune/<name>-<time>)")
    p.add_argument("--select-fraction", type=float, default=0.2,
                   help="NLB data: share of the training trials held out to select on (evaluation trials unused)")
    p.add_argument("--seed", type=int, default=None, help="seed of the sampled configurations (default: config)")
    p.add_argument("--verbose", type=int, default=1, choices=(0, 1, 2), help="Ray Tune's console output")
    return p


def _check_args(args) -> None:
    if args.samples < 1:
        raise InputError(f"must be >= 1, got {args.samples}", field="--samples")
    if args.epochs is not None and args.epochs < 1:
        raise InputError(f"must be >= 1, got {args.epochs}", field="--epochs")
    if not args.cpus_per_trial > 0:
        raise InputError(f"must be > 0, got {args.cpus_per_trial}", field="--cpus-per-trial")
    if args.gpus_per_trial < 0:
        raise InputError(f"must be >= 0, got {args.gpus_per_trial}", field="--gpus-per-trial")
    if args.gpus_per_trial > 0 and args.address is None:
        import torch

        if not torch.cuda.is_available():
            raise InputError("no CUDA device on this machine", field="--gpus-per-trial")
    if not 0 < args.select_fraction < 1:
        raise InputError(f"must lie in (0, 1), got {args.select_fraction}", field="--select-fraction")
    if args.num_cpus is not None and args.num_cpus < 1:
        raise InputError(f"must be >= 1, got {args.num_cpus}", field="--num-cpus")


def _prepare_out(out: Path, inputs: list[Path]) -> Path:
    """Check the run folder up front; returns the temporary folder the search writes into."""
    if os.path.lexists(out):
        raise InputError("exists; choose a new run folder", path=out, field="--out")
    for source in inputs:
        if source.absolute().is_relative_to(out.absolute()):
            raise InputError("would contain an input file", path=out, field="--out")
    parent = out.absolute().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise InputError(f"cannot create the folder ({err.strerror})", path=out, field="--out") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"folder {parent} is not writable", path=out, field="--out")
    return Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=parent))


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def _write_csv(path: Path, rows: list[dict]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _tag_index(tag: str) -> int | None:
    head = str(tag).split("_", 1)[0]
    return int(head) if head.isdigit() else None


def _perturbations(experiment: Path, names: list[str], grid) -> list[dict]:
    """PBT's log of exploit / explore steps (``pbt_global.txt``: one JSON list per step), by trial name."""
    ids = {}
    for result in grid:
        trial_id = (result.metrics or {}).get("trial_id")
        if trial_id:
            ids[int(trial_id.rsplit("_", 1)[-1])] = f"trial_{trial_id}"
    rows = []
    log = experiment / "pbt_global.txt"
    if not log.is_file():
        return rows
    for line in log.read_text().splitlines():
        if not line.strip():
            continue
        target, donor, _, _, old, new = json.loads(line)
        row = {"trial": ids.get(_tag_index(target), target), "copied_from": ids.get(_tag_index(donor), donor)}
        for name in names:
            row[f"old_{name}"], row[f"new_{name}"] = old.get(name), new.get(name)
        rows.append(row)
    return rows


def _results(grid, names: list[str], perturbations: list[dict]) -> list[dict]:
    """One table row per trial."""
    rows = []
    for result in grid:
        trial_id = Path(result.path).name if result.path else "?"
        df = result.metrics_dataframe
        losses = df[METRIC].dropna() if df is not None and METRIC in df else None
        row = {"trial": trial_id, "status": "ERROR" if result.error else "OK",
               "epochs": int(df["epoch"].max()) if df is not None and "epoch" in df and len(df) else 0,
               f"best {METRIC}": float(losses.min()) if losses is not None and len(losses) else None,
               f"last {METRIC}": float(losses.iloc[-1]) if losses is not None and len(losses) else None,
               "exploits": sum(1 for p in perturbations if p["trial"] == trial_id)}
        config, last = result.config or {}, result.metrics or {}
        row.update({name: last.get(f"hp/{name}", config.get(name)) for name in names})  # in effect at the end
        if result.error:
            row["error"] = " ".join(str(result.error).split())[:200]
        rows.append(row)
    return rows


def _rich_table(rows: list[dict], names: list[str], best_trial: str | None, title: str) -> str:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    cols = ["trial", "status", "epochs", f"best {METRIC}", f"last {METRIC}", *names]
    if any(row.get("exploits") for row in rows):
        cols.insert(5, "exploits")
    for col in cols:
        table.add_column(col, justify="left" if col in ("trial", "status") else "right")
    for row in sorted(rows, key=lambda r: (r.get(f"best {METRIC}") is None, r.get(f"best {METRIC}") or 0)):
        style = "bold green" if row["trial"] == best_trial else None
        table.add_row(*[_fmt(row.get(c)) for c in cols], style=style)
    console = Console(record=True, width=max(120, 14 * len(cols)))
    console.print(table)
    return console.export_text()


def run_search(args) -> Path:
    """Run ``neurodyn tune``; returns the run folder."""
    t0 = time.time()
    config_paths = [Path(c) for c in args.config]
    base: dict = {}
    for path in config_paths:
        base = _merge(base, _read_yaml(path, "--config"))
    _check_model(base, str(config_paths[-1]))
    search_path = Path(args.search)
    search = load_search(search_path)
    space = search["space"]
    _check_values(base, space, search_path)
    _check_args(args)
    epochs = args.epochs or search["epochs"] or _get(base, ("trainer", "max_epochs"))
    if not isinstance(epochs, int) or epochs < 1:
        raise InputError("give the epochs per trial (--epochs, 'epochs' in the search file or trainer.max_epochs)",
                         field="--epochs")
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
    sample = {n: _endpoints(s)[0] for n, s in space.items()}
    _, data = build_model_and_data(apply_hyperparameters(base, sample))
    if data.splits.get("valid") is None or not len(data.splits["valid"]):
        raise InputError("the data module has no validation trials to select on", field="data")
    split = _select_split(data, args.select_fraction, seed)
    del data

    out = Path(args.out) if args.out else _default_out(args.config, args.scheduler)
    tmp_out = _prepare_out(out, [*config_paths, search_path])
    names = list(space)
    started_ray = False
    from neurodyn.io import terminate_as_interrupt

    try:
        with terminate_as_interrupt():
            if args.address:
                ray.init(address=args.address, log_to_driver=args.verbose > 1)
            else:
                cores = os.cpu_count() or 1
                num_cpus = args.num_cpus or max(1, min(cores, math.ceil(args.cpus_per_trial * args.samples)))
                num_gpus = math.ceil(args.gpus_per_trial * args.samples) if args.gpus_per_trial else 0
                ray.init(num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=False,
                         log_to_driver=args.verbose > 1, object_store_memory=256 * 2**20,
                         configure_logging=args.verbose > 1)
            started_ray = True
            _sigterm_interrupts()  # ray.init installs its own SIGTERM handler (sys.exit) in the driver
            every = _checkpoint_every(args.scheduler, search, epochs)
            # PBT keeps every checkpoint (an exploit may copy any); ASHA the best and the latest
            keep = tune.CheckpointConfig(checkpoint_score_attribute=METRIC, checkpoint_score_order=MODE,
                                         num_to_keep=None if args.scheduler == "pbt" else 1)
            random.seed(seed)  # PBT's explore draws from these in the driver
            np.random.seed(seed)
            trainable = tune.with_resources(
                tune.with_parameters(_train_trial, base=base, epochs=epochs, cpus=args.cpus_per_trial,
                                     gpus=args.gpus_per_trial, checkpoint_every=every,
                                     select_fraction=args.select_fraction, seed=seed),
                {"cpu": args.cpus_per_trial, "gpu": args.gpus_per_trial},
            )
            tuner = tune.Tuner(
                trainable,
                param_space={name: _domain(spec) for name, spec in space.items()},
                tune_config=tune.TuneConfig(
                    metric=METRIC, mode=MODE, num_samples=args.samples, reuse_actors=True,
                    scheduler=_scheduler(args.scheduler, search, epochs),
                    search_alg=BasicVariantGenerator(random_state=seed),
                    trial_name_creator=_trial_name, trial_dirname_creator=_trial_name,
                ),
                run_config=tune.RunConfig(
                    name="ray", storage_path=str(tmp_out.absolute()), verbose=args.verbose,
                    checkpoint_config=keep, stop={"training_iteration": epochs},
                ),
            )
            grid = tuner.fit()
            perturbations = _perturbations(tmp_out / "ray", names, grid)
            rows = _results(grid, names, perturbations)
            saved = _saved_checkpoints(tmp_out / "ray")
            if not saved:
                errors = [r["error"] for r in rows if r.get("error")]
                raise SearchFailed(f"no trial reported {METRIC}" + (f"; first error: {errors[0]}" if errors else ""))
            # the lowest select-split loss over every kept checkpoint (ties: the earlier epoch)
            best_dir, best = min(saved, key=lambda item: (item[1]["value"], item[1]["epoch"]))
            best_trial, metrics = best["trial"], {METRIC: best["value"], "epoch": best["epoch"]}
            best_values = {name: best["hyperparameters"].get(name) for name in names}
            best_cfg = apply_hyperparameters(base, best_values)
            _set(best_cfg, ("trainer", "max_epochs"), epochs)
            import yaml

            header = (f"# neurodyn tune: best of {args.samples} trials ({args.scheduler}), {METRIC} = "
                      f"{metrics[METRIC]:.6g} at epoch {metrics.get('epoch')} of {best_trial}\n"
                      f"#   neurodyn fit --config best.yaml    (checkpoint: best.ckpt)\n")
            (tmp_out / "best.yaml").write_text(header + yaml.safe_dump(best_cfg, sort_keys=False))
            shutil.copyfile(best_dir / "model.ckpt", tmp_out / "best.ckpt")
            _write_csv(tmp_out / "trials.csv", rows)
            if args.scheduler == "pbt":
                _write_csv(tmp_out / "perturbations.csv", perturbations or [{"trial": None}])
            text = _rich_table(rows, names, best_trial, f"neurodyn tune ({args.scheduler}): {out}")
            (tmp_out / "trials.txt").write_text(text)
            summary = {
                "command": "neurodyn tune " + " ".join(sys.argv[2:] if sys.argv[1:2] == ["tune"] else []),
                "configs": [str(p) for p in config_paths], "search": str(search_path),
                "scheduler": args.scheduler, "samples": args.samples, "epochs": epochs, "seed": seed,
                "metric": METRIC, "mode": MODE, "select_split": split,
                "best_trial": best_trial, "best_value": metrics[METRIC], "best_epoch": metrics.get("epoch"),
                "best_hyperparameters": best_values, "perturbations": len(perturbations),
                "trials_failed": sum(r["status"] == "ERROR" for r in rows),
                "seconds": round(time.time() - t0, 1),
            }
            (tmp_out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
            if os.path.lexists(out):
                raise InputError("appeared while the search ran; results left in " + str(tmp_out), path=out,
                                 field="--out")
            os.replace(tmp_out, out)
            tmp_out = None
    except KeyboardInterrupt as err:
        # Tune may re-raise the interrupt as a plain KeyboardInterrupt: keep the signal's name and code
        if _SIGNAL_RECEIVED and getattr(err, "signum", None) != _SIGNAL_RECEIVED[-1]:
            from neurodyn.io import Interrupted

            raise Interrupted(_SIGNAL_RECEIVED[-1]) from None
        raise
    finally:
        if started_ray:
            ray.shutdown()  # first: no trial may write into the folder once it is removed
        if tmp_out is not None:
            shutil.rmtree(tmp_out, ignore_errors=True)
    print(f"best {METRIC} {metrics[METRIC]:.6g} ({best_trial}, epoch {metrics.get('epoch')}): "
          + ", ".join(f"{k}={_fmt(v)}" for k, v in best_values.items()))
    print(f"wrote {out}/best.yaml, best.ckpt, trials.csv ({time.time() - t0:.0f} s)")
    return out


class SearchFailed(RuntimeError):
    """No trial of the search produced a result (each trial's error is in its Ray folder)."""


def cli_main(argv: list[str]) -> int:
    """``neurodyn tune``; returns the exit code (bad input raises InputError, printed by neurodyn.cli)."""
    args = _parser().parse_args(argv)
    try:
        run_search(args)
    except SearchFailed as err:
        if os.environ.get("NEURODYN_DEBUG", "") not in ("", "0"):
            raise
        print(f"neurodyn tune: error: {' '.join(str(err).split())}", file=sys.stderr)
        return 1
    return 0
