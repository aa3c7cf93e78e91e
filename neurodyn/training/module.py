"""LightningModules: thin wrappers that train plain neurodyn ``nn.Module`` models.

This package is the only place Lightning appears. Each wrapper takes the data-derived sizes
(``n_heldin``, ``n_neurons``, ``n_obs_bins``, ``n_fwd_bins``) -- the CLI links them from the
DataModule, so YAML configs never repeat them -- plus the model's hyper-parameter dataclass and the
optimiser settings.

Validation logs scalar metrics under ``valid/...``: ``valid/loss`` always, ``valid/co_bps`` when the
validation trials have held-out neurons, ``valid/rate_r2`` when they carry true rates. Under DDP they are those of
one process on the same checkpoint, up to the order of float sums: each process validates whole batches of the
single-process loader (:class:`~neurodyn.training.datamodules.base.BatchShares`), and the epoch's values are made
from every process's batches, each batch once (:class:`NeurodynModule`).
"""

from __future__ import annotations

import math

import lightning.pytorch as pl
import numpy as np
import torch

from neurodyn.errors import CommandFailed, InputError
from neurodyn.models.langevinflow import LangevinFlow, LangevinFlowConfig
from neurodyn.training.checkpoints import SIZE_KEYS, add_checkpoint_header, check_checkpoint_header
from neurodyn.training.schedules import CosineToMinLR, kl_weight, linear_ramp


class TrainingDiverged(CommandFailed):
    """Raised when the loss becomes non-finite; the message names the epoch and step (exit code 2) and what is
    kept (:func:`kept_after_divergence`)."""


def kept_after_divergence(trainer) -> str:
    """What a fit stopped by a non-finite loss leaves, for its message (``"; ..."``): the checkpoints saved so
    far (``last.ckpt`` and the epoch it holds, from ``checkpoints.json``), or none -- no epoch had finished, or
    checkpointing is off -- and then, for a run folder ``neurodyn fit`` made for this fit
    (:attr:`~neurodyn.training.callbacks.ResumeState.new_run_dir`), that the folder is removed (``neurodyn fit``
    removes a run folder it made that holds no checkpoint). Empty for a trainer without a checkpoint callback
    outside ``neurodyn fit`` (a ``neurodyn tune`` trial, whose checkpoints Ray keeps): nothing said there."""
    import json
    from pathlib import Path

    from neurodyn.training.callbacks import ResumeState

    callback = getattr(trainer, "checkpoint_callback", None) if trainer is not None else None
    folder = Path(callback.dirpath) if getattr(callback, "dirpath", None) else None
    saved = sorted(folder.glob("*.ckpt")) if folder is not None and folder.is_dir() else []
    if saved:
        if not (folder / "last.ckpt").is_file():
            return "; the checkpoints saved so far are kept"
        try:
            epoch = json.loads((folder / "checkpoints.json").read_text())["last_epoch"]
        except (OSError, ValueError, KeyError, TypeError):
            return "; the checkpoints saved so far are kept (last.ckpt: the last epoch saved)"
        return f"; the checkpoints saved so far are kept (last.ckpt: epoch {epoch})"
    made = next((cb.new_run_dir for cb in getattr(trainer, "callbacks", None) or []
                 if isinstance(cb, ResumeState) and cb.new_run_dir is not None), None)
    if callback is None and made is None:
        return ""
    why = "no epoch had finished" if callback is not None else "checkpointing is off"
    if made is not None:
        return f"; {why}, so no checkpoint was saved: nothing is kept, and the run folder {made} is removed"
    return f"; {why}, so no checkpoint was saved: nothing is kept"


def _bits_per_spike(rates: np.ndarray, counts: np.ndarray, mask: np.ndarray) -> float:
    from neurodyn.metrics import bits_per_spike

    counts = np.where(mask, counts, np.nan)
    return float(bits_per_spike(rates.astype(np.float64), counts.astype(np.float64)))


def model_config(config, cls):
    """The model's config dataclass ``cls`` from ``config``: None (the defaults), an instance, or a plain
    mapping (a checkpoint's hyper-parameters)."""
    if config is None:
        return cls()
    return cls(**config) if isinstance(config, dict) else config


def _finite_number(name: str, value, positive: bool) -> None:
    """One-line InputError unless ``value`` is a finite number, > 0 (``positive``) or >= 0 (torch's optimisers
    raise a traceback at the first step otherwise)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        raise InputError(f"must be a finite number {'> 0' if positive else '>= 0'}, got {value!r}", field=name)


class ReportSplitTest:
    """``neurodyn test`` for a LightningModule whose validation logs under ``{stage_prefix}/``: the validation
    step and metrics on the report split (``DataModule.test_dataloader``), logged as ``test/*``."""

    #: ``valid`` (select split, every epoch) or ``test`` (while ``neurodyn test`` runs)
    stage_prefix = "valid"

    def on_test_epoch_start(self) -> None:
        self.stage_prefix = "test"
        self.on_validation_epoch_start()

    def test_step(self, batch, batch_idx):
        return self.validation_step(batch, batch_idx)

    def on_test_epoch_end(self) -> None:
        try:
            self.on_validation_epoch_end()
        finally:
            self.stage_prefix = "valid"


class NeurodynModule(ReportSplitTest, pl.LightningModule):
    """Common plumbing: size checks against checkpoints, validation metric accumulation.

    Subclasses set ``self.model`` and implement ``_predict_rates(batch) -> (B, T+F, N) counts/bin``.
    """

    size_keys = SIZE_KEYS

    def __init__(self, n_heldin: int, n_neurons: int, n_obs_bins: int, n_fwd_bins: int):
        super().__init__()
        self.n_heldin, self.n_neurons = int(n_heldin), int(n_neurons)
        self.n_obs_bins, self.n_fwd_bins = int(n_obs_bins), int(n_fwd_bins)
        self._val_outputs: list[dict[str, np.ndarray]] = []
        self._val_terms: list[tuple[tuple[int, ...], int, dict[str, torch.Tensor]]] = []  # (trials, n, batch means)
        self._checkpoint_epoch: int | None = None  # the epoch of the checkpoint the weights came from

    # -- checkpoints ----------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        add_checkpoint_header(self, checkpoint)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        check_checkpoint_header(self, checkpoint)
        self._checkpoint_epoch = checkpoint.get("epoch")

    @property
    def trained_epoch(self) -> int:
        """The 0-based epoch the weights belong to: the trainer's while fitting; under ``validate`` /
        ``test`` / ``predict`` of a checkpoint (whose trainer starts at epoch 0) the checkpoint's, so the
        epoch-dependent terms (the KL weight) are those the fit logged for these weights."""
        trainer = self._trainer
        fitting = trainer is not None and trainer.state.fn == "fit"
        if fitting or self._checkpoint_epoch is None:
            return self.current_epoch
        return int(self._checkpoint_epoch)

    # -- validation metrics ---------------------------------------------------------------------
    def _predict_rates(self, batch) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _collect_validation(self, batch, rates: torch.Tensor) -> None:
        out = {
            "rates": rates.detach().float().cpu().numpy(),
            "target": batch["target"].cpu().numpy(),
            "mask": batch["target_mask"].cpu().numpy(),
            "index": batch["index"].cpu().numpy(),
        }
        if "true_rates" in batch:
            out["true_rates"] = batch["true_rates"].cpu().numpy()
        self._val_outputs.append(out)

    def _record_terms(self, batch, terms: dict[str, torch.Tensor]) -> None:
        """One validation batch's loss terms (means over its trials), averaged over the epoch's batches at its end
        (:meth:`_epoch_means`)."""
        index = batch["index"].cpu()
        self._val_terms.append((tuple(index.tolist()), len(index), {k: v.detach().cpu() for k, v in terms.items()}))

    @staticmethod
    def _epoch_means(records) -> dict[str, torch.Tensor]:
        """Each term's epoch value from the batches' ``(trials, n, batch means)`` records: ``sum_b n_b m_b /
        sum_b n_b``, each batch once (under DDP a process may repeat the split's last batch:
        :class:`~neurodyn.training.datamodules.base.BatchShares`) and in the loader's order.

        This is the sum Lightning's epoch mean of a value logged per batch makes (float32, batches in order), so
        one process logs the same numbers as when each batch logged its terms; under DDP it is made from every
        process's batches, which are the single-process batches. Lightning's own mean across processes
        (``sync_dist``) was of padded shares; with shares of unequal sizes it is wrong under gloo, which averages
        the trial count as an integer (shares of 4 and 1 trials, each term 1.0: count 5 / 2 -> 2, mean 1.25)."""
        batches: dict = {}
        for trials, n, means in records:
            batches.setdefault(trials, (n, means))
        totals: dict[str, torch.Tensor] = {}
        count = torch.tensor(0)
        for trials in sorted(batches):
            n, means = batches[trials]
            for key, value in means.items():
                if value.dtype not in (torch.float32, torch.float64):
                    value = value.float()
                totals[key] = totals.get(key, torch.tensor(0.0, dtype=torch.float32)) + value * n
            count = count + n
        return {key: total / count for key, total in totals.items()}

    def _log_reduced(self, name: str, value, prog_bar: bool = False) -> None:
        """Log ``value``, the same in every process (made from every process's batches; the epoch's weight decay and
        learning rate): synced with ``max``, which is the value itself (a mean of the processes' copies may round
        it), and so without Lightning's warning about epoch values that are not synced."""
        self.log(name, value, prog_bar=prog_bar, sync_dist=True, reduce_fx="max")

    def on_validation_epoch_start(self) -> None:
        self._val_outputs = []
        self._val_terms = []

    def on_validation_epoch_end(self) -> None:
        if not self._val_outputs:
            return
        outputs, self._val_outputs = self._gather_validation(self._val_outputs), []
        records, self._val_terms = self._gather_validation(self._val_terms), []
        for key, value in self._epoch_means(records).items():
            self._log_reduced(f"{self.stage_prefix}/{key}", value)
        cat = {k: np.concatenate([o[k] for o in outputs]) for k in outputs[0]}
        # Every trial once, in trial order: under DDP a process may repeat the split's last batch (BatchShares).
        _, first = np.unique(cat["index"], return_index=True)
        cat = {k: v[first] for k, v in cat.items()}
        n_in, n_obs = self.n_heldin, self.n_obs_bins
        metrics: dict[str, float] = {}
        heldout_mask = cat["mask"][:, :n_obs, n_in:]
        if heldout_mask.size and heldout_mask.any():
            metrics[f"{self.stage_prefix}/co_bps"] = _bits_per_spike(
                cat["rates"][:, :n_obs, n_in:], cat["target"][:, :n_obs, n_in:], heldout_mask
            )
        fwd_mask = cat["mask"][:, n_obs:, :]
        if fwd_mask.size and fwd_mask.any():
            metrics[f"{self.stage_prefix}/fp_bps"] = _bits_per_spike(cat["rates"][:, n_obs:], cat["target"][:, n_obs:],
                                                                     fwd_mask)
        if "true_rates" in cat:
            from neurodyn.metrics import rate_r2

            truth = cat["true_rates"]
            rates = cat["rates"][:, : truth.shape[1], : truth.shape[2]]
            metrics[f"{self.stage_prefix}/rate_r2"] = float(rate_r2(truth, rates))
        for key, value in metrics.items():
            self._log_reduced(key, value, prog_bar=True)

    def _gather_validation(self, outputs: list[dict[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        """All ranks' validation outputs (a no-op in one process).

        co-bps, fp-bps and R2 are not means over trials, so averaging each rank's value (``sync_dist``)
        would be wrong; they are computed from every rank's predictions and counts instead.
        """
        trainer = self._trainer
        if trainer is None or trainer.world_size <= 1 or not torch.distributed.is_initialized():
            return outputs
        gathered: list = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(gathered, outputs)
        return [o for rank in gathered for o in rank]

    def _check_finite(self, loss: torch.Tensor, batch_idx: int) -> None:
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"non-finite training loss ({loss.item()}) at epoch {self.current_epoch}, "
                f"global step {self.global_step}, batch {batch_idx}{kept_after_divergence(self._trainer)}"
            )


class LangevinFlowModule(NeurodynModule):
    """Train :class:`neurodyn.models.langevinflow.LangevinFlow` (Song et al. 2025).

    The KL weight of each epoch comes from ``config.kl_max`` and ``config.kl_ramp_epochs``
    (:func:`neurodyn.training.schedules.kl_weight`). Optimisation follows the reference: Adam with a
    weight decay ramped linearly from 0 to
    ``weight_decay`` over ``ramp_epochs`` (coupled L2, set before each epoch), and
    ReduceLROnPlateau on ``valid/loss`` (factor 0.95, patience 10 validations, min lr 1e-5; stepped on
    the epochs that validate). ``lr_schedule='cosine'``
    instead decays the learning rate from ``lr`` to ``min_lr`` over ``trainer.max_epochs`` (half a cosine,
    stepped per epoch; :class:`~neurodyn.training.schedules.CosineToMinLR`); it needs no validation monitor, so
    the validation trials can stay untouched by training decisions. The span is the ``max_epochs`` the run
    started with (a resume restores it): epochs past it, a resume to a larger ``max_epochs``, train at
    ``min_lr``.

    Parameters
    ----------
    n_heldin, n_neurons, n_obs_bins, n_fwd_bins
        Data sizes, linked from the DataModule by the CLI.
    config
        Model hyper-parameters (:class:`~neurodyn.models.langevinflow.LangevinFlowConfig`).
    lr, weight_decay, ramp_epochs
        Adam learning rate; final weight decay and the epochs over which it ramps up.
    lr_factor, lr_patience, min_lr
        ReduceLROnPlateau settings (monitor ``valid/loss``); ``min_lr`` is also the cosine floor.
    lr_schedule
        ``'plateau'`` (reference), ``'cosine'`` or ``'constant'`` (``lr`` throughout).
    val_samples
        Sampled passes averaged for the validation metrics when ``config.eval_mode='sample'`` (at most
        ``config.n_eval_samples``; fixed seed, so epochs are compared on the same noise draws). Prediction
        uses ``config.n_eval_samples``.
    """

    def __init__(
        self,
        n_heldin: int,
        n_neurons: int,
        n_obs_bins: int,
        n_fwd_bins: int = 0,
        config: LangevinFlowConfig | None = None,
        lr: float = 3e-3,
        weight_decay: float = 2e-5,
        ramp_epochs: int = 500,
        lr_factor: float = 0.95,
        lr_patience: int = 10,
        min_lr: float = 1e-5,
        val_samples: int = 10,
        lr_schedule: str = "plateau",
    ):
        super().__init__(n_heldin, n_neurons, n_obs_bins, n_fwd_bins)
        if isinstance(val_samples, bool) or not isinstance(val_samples, int) or val_samples < 1:
            raise InputError(f"must be a positive integer, got {val_samples!r}", field="val_samples")
        if lr_schedule not in ("plateau", "cosine", "constant"):
            raise InputError(f"must be 'plateau', 'cosine' or 'constant', got {lr_schedule!r}", field="lr_schedule")
        for name, value, positive in (("lr", lr, True), ("weight_decay", weight_decay, False),
                                      ("min_lr", min_lr, False)):
            _finite_number(name, value, positive)
        if not 0 < lr_factor < 1:
            raise InputError(f"must be in (0, 1), got {lr_factor!r}", field="lr_factor")
        for name, value in (("ramp_epochs", ramp_epochs), ("lr_patience", lr_patience)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InputError(f"must be a non-negative integer, got {value!r}", field=name)
        config = model_config(config, LangevinFlowConfig)
        self.save_hyperparameters()
        self.config = config
        self.model = LangevinFlow(n_heldin, n_neurons, n_obs_bins, n_fwd_bins, config)

    def forward(self, heldin: torch.Tensor, **kwargs):
        return self.model.predict(heldin, **kwargs)

    def kl_weight(self) -> float:
        """The KL weight β of the weights' epoch (:attr:`trained_epoch`,
        :func:`neurodyn.training.schedules.kl_weight`)."""
        return kl_weight(self.trained_epoch, self.config)

    def training_step(self, batch, batch_idx):
        terms = self.model.loss(batch, kl_weight=self.kl_weight(), stage="train")
        self._check_finite(terms["loss"], batch_idx)
        # synced: the epoch's value is the mean over every process's batches, sum_r sum_b n_b m_b / sum_r sum_b n_b
        # (Lightning divides both sums by the process count, the count as an integer: exact, as the training shares
        # are of one size, padded by Lightning's DistributedSampler)
        self.log_dict({f"train/{k}": v.detach() for k, v in terms.items()}, on_step=False, on_epoch=True,
                      batch_size=len(batch["heldin"]), sync_dist=True)
        return terms["loss"]

    def validation_step(self, batch, batch_idx):
        terms = self.model.loss(batch, kl_weight=self.kl_weight(), stage="val")
        self._record_terms(batch, terms)  # logged as {stage_prefix}/<term> at the epoch's end
        self._collect_validation(batch, self._predict_rates(batch))

    def _predict_rates(self, batch) -> torch.Tensor:
        n_samples = min(self.hparams.val_samples, self.config.n_eval_samples)
        return self.model.predict(batch["heldin"], n_samples=n_samples)["rates"]

    def predict_step(self, batch, batch_idx, dataloader_idx=0):
        out = self.model.predict(batch["heldin"])
        out["index"] = batch["index"]
        return out

    def on_train_epoch_start(self) -> None:
        weight_decay = linear_ramp(self.current_epoch, self.hparams.weight_decay, self.hparams.ramp_epochs)
        for opt in self.trainer.optimizers:
            for group in opt.param_groups:
                group["weight_decay"] = weight_decay
        self._log_reduced("train/weight_decay", weight_decay)
        if self.trainer.optimizers:  # the epoch's learning rate (schedules step between epochs): metrics.csv's lr
            self._log_reduced("train/lr", float(self.trainer.optimizers[0].param_groups[0]["lr"]))

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=self.hparams.lr, weight_decay=0.0)
        if self.hparams.lr_schedule == "constant":
            return opt
        if self.hparams.lr_schedule == "cosine":
            n_epochs = self.trainer.max_epochs
            if not n_epochs or n_epochs < 1:
                raise InputError(f"needs a finite trainer.max_epochs, got {n_epochs!r}", field="lr_schedule")
            # min_lr past the span (torch's cosine rose again there: a resume to more epochs climbed back up)
            cosine = CosineToMinLR(opt, T_max=n_epochs, eta_min=self.hparams.min_lr)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": cosine, "interval": "epoch"}}
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="min", factor=self.hparams.lr_factor, patience=self.hparams.lr_patience,
            threshold=0.0, min_lr=self.hparams.min_lr,
        )
        # stepped on the epochs that validate (valid/loss is measured then): with trainer.check_val_every_n_epoch
        # N > 1 a step every epoch found no valid/loss and Lightning stopped the fit after the first epoch
        every = getattr(self.trainer, "check_val_every_n_epoch", None) if self._trainer is not None else None
        frequency = every if isinstance(every, int) and every > 1 else 1
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "valid/loss", "frequency": frequency}}

