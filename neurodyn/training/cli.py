"""``neurodyn fit | validate | test | predict``: the LightningCLI entry point.

A run is a stack of YAML files (later ones override earlier ones) plus command-line overrides::

    neurodyn fit --config configs/langevinflow/lorenz.yaml --trainer.max_epochs 50
    neurodyn fit --config configs/langevinflow/mc_maze.yaml --data.path data/mc_maze_20_val.h5
    neurodyn predict --config runs/.../config.yaml --ckpt_path best --prediction.path pred.h5

Data-derived sizes are linked from the DataModule into the model (``n_heldin``, ``n_neurons``,
``n_obs_bins``, ``n_fwd_bins``), so configs never repeat them. With no config at all, ``neurodyn
fit`` trains LangevinFlow on the simulated Lorenz benchmark.

Forced callbacks (configurable under their own keys): ``checkpoint`` (:class:`AutoModelCheckpoint`,
monitor picked from the data), ``nlb_eval`` (:class:`NLBEvaluationCallback`), ``prediction``
(:class:`PredictionWriter`).
"""

from __future__ import annotations

import sys

import lightning.pytorch as pl
from lightning.pytorch.callbacks import ProgressBar, RichProgressBar
from lightning.pytorch.cli import LightningCLI

# Imported so that their short class names resolve in YAML (class_path: LangevinFlowModule).
from neurodyn.data.datamodule import (  # noqa: F401
    LFADSDataModule,
    LorenzDataModule,
    NeuralDataModule,
    NLBDataModule,
    SwitchingGLMDataModule,
)
from neurodyn.errors import InputError
from neurodyn.training.callbacks import AutoModelCheckpoint, NLBEvaluationCallback, PredictionWriter
from neurodyn.training.hmmglm_module import HMMGLMModule  # noqa: F401
from neurodyn.training.module import LangevinFlowModule, TrainingDiverged  # noqa: F401

SIZE_LINKS = ("n_heldin", "n_neurons", "n_obs_bins", "n_fwd_bins")


class NeurodynCLI(LightningCLI):
    """LightningCLI with neurodyn's links, forced callbacks and defaults."""

    def add_arguments_to_parser(self, parser) -> None:
        for name in SIZE_LINKS:
            parser.link_arguments(f"data.{name}", f"model.init_args.{name}", apply_on="instantiate")
        parser.add_lightning_class_args(AutoModelCheckpoint, "checkpoint")
        parser.add_lightning_class_args(NLBEvaluationCallback, "nlb_eval")
        parser.add_lightning_class_args(PredictionWriter, "prediction")
        parser.set_defaults(
            {
                "model": {"class_path": "neurodyn.training.module.LangevinFlowModule"},
                "data": {"class_path": "neurodyn.data.datamodule.LorenzDataModule"},
                "trainer.logger": [
                    {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": "runs"}},
                    {"class_path": "lightning.pytorch.loggers.TensorBoardLogger",
                     "init_args": {"save_dir": "runs", "name": "tensorboard"}},
                ],
            }
        )

    def _instantiate_trainer(self, config, callbacks):
        # A rich progress bar unless the user asked for none or configured another one.
        configured = list(config.get("callbacks") or []) + list(callbacks)
        if config.get("enable_progress_bar", True) is not False and not any(
            isinstance(cb, ProgressBar) for cb in configured
        ):
            callbacks = [*callbacks, RichProgressBar()]
        return super()._instantiate_trainer(config, callbacks)

    def before_instantiate_classes(self) -> None:
        # A path that does not exist is reported before any model is built.
        cfg = self.config[self.subcommand] if self.subcommand else self.config
        path = cfg.get("data", {}).get("init_args", {}).get("path") if hasattr(cfg, "get") else None
        if path is not None:
            from pathlib import Path

            if not Path(path).is_file():
                raise InputError("file not found", path=path, field="data.init_args.path")


def cli_main(argv: list[str]) -> int:
    """Run a training subcommand (``argv[0]`` is fit/validate/test/predict); returns the exit code."""
    saved_argv = sys.argv
    sys.argv = [f"neurodyn {argv[0]}"]  # LightningCLI warns when args and sys.argv both carry arguments
    try:
        NeurodynCLI(
            model_class=pl.LightningModule,
            datamodule_class=NeuralDataModule,
            subclass_mode_model=True,
            subclass_mode_data=True,
            args=argv,
            seed_everything_default=0,
            trainer_defaults={"default_root_dir": "runs"},
            save_config_kwargs={"overwrite": True},
        )
    except TrainingDiverged as err:
        print(f"neurodyn {argv[0]}: error: {err}", file=sys.stderr)
        return 2
    finally:
        sys.argv = saved_argv
    return 0
