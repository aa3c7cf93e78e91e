"""Callbacks of the training harness.

- :class:`AutoModelCheckpoint`: monitor picked from the data, ``last.ckpt`` rewritten every epoch, top-k
  files, atomic writes, one large write per epoch at most, an index (``checkpoints.json``) that
  ``--ckpt_path best`` resolves.
- :class:`ResumeState`: every random state training consumes goes into the checkpoint and comes back
  on resume (exact resume); a first SIGTERM / SIGINT finishes the current epoch, saves and stops.
- :class:`EpochLog`: one log line per epoch with the monitored metrics (when stdout is not a terminal).
- :class:`NLBEvaluationCallback`, :class:`PredictionWriter`.

:func:`check_checkpoint` validates a checkpoint file against a module before anything loads it.
"""

from __future__ import annotations

import json
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
from lightning.pytorch.callbacks import BasePredictionWriter, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from neurodyn.errors import InputError
from neurodyn.io import atomic_path, write_h5_dict

#: version of the ``checkpoint["neurodyn"]`` layout; a checkpoint with a larger number is refused
CHECKPOINT_FORMAT = 1
#: name of the index that ``AutoModelCheckpoint`` keeps next to its checkpoints
INDEX_NAME = "checkpoints.json"


class AutoModelCheckpoint(ModelCheckpoint):
    """ModelCheckpoint whose ``monitor="auto"`` follows the data: co-bps or loss.

    With ``monitor="auto"`` (the default) the monitored metric is the DataModule's
    ``default_monitor``: ``valid/co_bps`` (max) where validation trials have held-out neurons,
    else ``valid/loss`` (min); never ``valid/rate_r2``, which compares with true rates. Any other
    value behaves as Lightning's ModelCheckpoint.

    Differences from Lightning's ModelCheckpoint:

    - ``last.ckpt`` is the last finished epoch, always (Lightning 2.6 rewrites it only when a top-k file
      is written); when the epoch also entered the top k, ``last.ckpt`` is a hard link to that file, so
      an epoch writes one large file at most.
    - Every file is written to a temporary name and renamed, so an interrupted write never leaves a
      truncated checkpoint (and a hard link is never written through).
    - ``checkpoints.json`` next to the files records the monitor, the top-k files with their scores, the
      best file and the last epoch; ``neurodyn predict --run DIR --ckpt_path best`` reads it.
    """

    def __init__(self, monitor: str | None = "auto", mode: str = "min", save_last: bool | None = True,
                 save_top_k: int = 1, **kwargs):
        self._auto = monitor == "auto"
        # a stand-in monitor for Lightning's init checks (top k > 1 needs one); setup() picks the real one
        super().__init__(monitor="valid/loss" if self._auto else monitor, mode=mode, save_last=save_last,
                         save_top_k=save_top_k, **kwargs)
        if self._auto:
            self.monitor = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._auto and self.monitor is None:
            monitor, mode = getattr(trainer.datamodule, "default_monitor", ("valid/loss", "min"))
            if not hasattr(pl_module, "_collect_validation") and monitor != "valid/loss":
                monitor, mode = "valid/loss", "min"
            self.monitor = monitor
            self.mode = mode
            inf = torch.tensor(np.inf)
            self.kth_value = inf if mode == "min" else -inf
            if self.filename is None:
                self.filename = "epoch{epoch}-" + monitor.replace("/", "_") + "={" + monitor + ":.4f}"
                self.auto_insert_metric_name = False
        super().setup(trainer, pl_module, stage)

    def load_state_dict(self, state_dict: dict) -> None:
        # A run folder that was moved or copied: the saved paths point into the old folder; the files
        # are the same names inside this one.
        old = state_dict.get("dirpath")
        if old and self.dirpath and os.path.abspath(old) != os.path.abspath(self.dirpath):
            def moved(path):
                return os.path.join(self.dirpath, os.path.basename(path)) if path else path

            state_dict = dict(state_dict)
            state_dict["dirpath"] = self.dirpath
            for key in ("best_model_path", "kth_best_model_path", "last_model_path"):
                state_dict[key] = moved(state_dict.get(key))
            state_dict["best_k_models"] = {moved(k): v for k, v in (state_dict.get("best_k_models") or {}).items()}
        super().load_state_dict(state_dict)

    # -- every epoch: top-k, then last --------------------------------------------------------------
    def _save_epoch(self, trainer: pl.Trainer) -> None:
        candidates = self._monitor_candidates(trainer)
        if self._every_n_epochs >= 1 and (trainer.current_epoch + 1) % self._every_n_epochs == 0:
            self._save_topk_checkpoint(trainer, candidates)
        self._save_last_checkpoint(trainer, candidates)
        self._write_index(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._should_skip_saving_checkpoint(trainer) and self._should_save_on_train_epoch_end(trainer):
            self._save_epoch(trainer)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._should_skip_saving_checkpoint(trainer) and not self._should_save_on_train_epoch_end(trainer):
            self._save_epoch(trainer)

    def _save_last_checkpoint(self, trainer: pl.Trainer, monitor_candidates) -> None:
        if not self.save_last:
            return
        filepath = os.path.join(self.dirpath, self.CHECKPOINT_NAME_LAST + self.FILE_EXTENSION)
        self.last_model_path = filepath
        source = self._last_checkpoint_saved
        if (self._last_global_step_saved == trainer.global_step and source and source != filepath
                and os.path.isfile(source)):
            if trainer.is_global_zero:
                tmp = f"{filepath}.{os.getpid()}.link"
                try:
                    os.link(source, tmp)  # one file on disk, two names
                except OSError:  # filesystems without hard links
                    import shutil

                    shutil.copyfile(source, tmp)
                os.replace(tmp, filepath)
            trainer.strategy.barrier()
        else:
            self._save_checkpoint(trainer, filepath)

    def _save_checkpoint(self, trainer: pl.Trainer, filepath: str) -> None:
        tmp = f"{filepath}.part"
        trainer.save_checkpoint(tmp, self.save_weights_only)
        if trainer.is_global_zero:
            os.replace(tmp, filepath)
        trainer.strategy.barrier()
        self._last_global_step_saved = trainer.global_step
        self._last_checkpoint_saved = filepath
        if trainer.is_global_zero:
            for logger in trainer.loggers:
                logger.after_save_checkpoint(self)

    def _write_index(self, trainer: pl.Trainer) -> None:
        if not trainer.is_global_zero or self.dirpath is None:
            return

        def score(value):
            return None if value is None else float(value)

        index = {
            "monitor": self.monitor,
            "mode": self.mode,
            "best": os.path.basename(self.best_model_path) if self.best_model_path else None,
            "best_score": score(self.best_model_score),
            "top_k": {os.path.basename(k): score(v) for k, v in self.best_k_models.items()},
            "last": os.path.basename(self.last_model_path) if self.last_model_path else None,
            "last_epoch": int(trainer.current_epoch),
            "last_step": int(trainer.global_step),
        }
        with atomic_path(Path(self.dirpath) / INDEX_NAME) as tmp:
            tmp.write_text(json.dumps(index, indent=1) + "\n")


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


class ResumeState(pl.Callback):
    """Exact resume and clean interrupts.

    Saves :func:`capture_random_state` in every checkpoint (``checkpoint["neurodyn_random_state"]``) and
    restores it when training resumes from that checkpoint, before the first resumed epoch draws its
    batch order, so ``fit`` for N epochs equals ``fit`` for k epochs + ``--ckpt_path last`` to N, bit for bit.

    While fitting, a first SIGTERM or SIGINT lets the current epoch finish (its checkpoint is an exact
    resume point), then stops; a second one stops at once (``last.ckpt`` stays the previous epoch).
    """

    def __init__(self) -> None:
        self.signal: int | None = None
        self.run_dir: Path | None = None  # set by the CLI, for the resume message
        self._previous: dict[int, object] = {}

    def on_save_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        checkpoint["neurodyn_random_state"] = capture_random_state(pl_module, trainer.datamodule)

    def on_load_checkpoint(self, trainer, pl_module, checkpoint: dict) -> None:
        state = checkpoint.get("neurodyn_random_state")
        if state is not None and trainer.state.fn == "fit":
            # The checkpoint is restored before the sanity check (which runs under isolate_rng) and before
            # the training loop creates the first resumed epoch's data iterator; nothing in between draws.
            restore_random_state(state, pl_module, trainer.datamodule)

    # -- signals ------------------------------------------------------------------------------------
    def on_fit_start(self, trainer, pl_module) -> None:
        import threading

        if threading.current_thread() is not threading.main_thread():
            return
        self.signal = None
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.signal is not None:
            raise RunInterrupted(signum, finished_epoch=False)
        self.signal = signum
        name = signal.Signals(signum).name
        print(f"received {name}: finishing this epoch to save an exact resume point "
              f"(send {name} again to stop at once)", file=sys.stderr, flush=True)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if self.signal is not None:
            trainer.should_stop = True

    def on_fit_end(self, trainer, pl_module) -> None:
        self._restore_handlers()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._restore_handlers()

    def _restore_handlers(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}


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

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero or trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        shown = []
        for key in sorted(metrics):
            if key.startswith(("train/", "valid/", "nlb/")) and not key.endswith(("_step", "weight_decay")):
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


# -- checkpoint validation ------------------------------------------------------------------------------
def read_checkpoint(path: str | os.PathLike, field: str = "ckpt_path") -> dict:
    """Load a checkpoint file with ``weights_only=True``; every way it can be unreadable is a one-line InputError."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise InputError("is a folder, expected a checkpoint file", path=path, field=field)
    if not os.path.isfile(path):
        raise InputError("no such checkpoint file", path=path, field=field)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated zip, not a torch file, disallowed pickled globals
        reason = " ".join(str(err).split())[:160]
        raise InputError(f"not a readable checkpoint (truncated, or not written by neurodyn fit: {reason})",
                         path=path, field=field) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise InputError("not a Lightning checkpoint (no state_dict)", path=path, field=field)
    return ckpt


def check_checkpoint(path: str | os.PathLike, pl_module: pl.LightningModule, field: str = "ckpt_path") -> dict:
    """Check that a checkpoint fits ``pl_module``: neurodyn format version, model family, data sizes, tensor shapes.

    Returns the checkpoint (loaded with ``weights_only=True``). Raises a one-line InputError naming the
    file and the field that does not match.
    """
    ckpt = read_checkpoint(path, field)
    path = os.fspath(path)
    header = ckpt.get("neurodyn")
    if not isinstance(header, dict) or "format" not in header:
        raise InputError("not a neurodyn checkpoint (no format version; written by an older neurodyn or by another "
                         "program)", path=path, field="neurodyn.format")
    if int(header["format"]) > CHECKPOINT_FORMAT:
        raise InputError(f"format {header['format']} is newer than this neurodyn reads ({CHECKPOINT_FORMAT}); "
                         "upgrade neurodyn", path=path, field="neurodyn.format")
    family = header.get("family")
    expected = type(pl_module).__name__
    if family != expected:
        raise InputError(f"a {family} checkpoint given to {expected}", path=path, field="neurodyn.family")
    sizes = header.get("sizes") or {}
    for key in ("n_heldin", "n_neurons"):  # the other sizes only matter where tensor shapes depend on them
        saved = sizes.get(key)
        current = pl_module.hparams.get(key, getattr(pl_module, key, None))
        if saved is None:
            continue
        if current is not None and int(saved) != int(current):
            raise InputError(f"checkpoint was trained with {key}={saved} but the data has {current}",
                             path=path, field=f"neurodyn.sizes.{key}")
    own = pl_module.state_dict()
    saved_sd = ckpt["state_dict"]
    for key, tensor in own.items():
        if key not in saved_sd:
            raise InputError(f"missing tensor {key!r} (the model config differs from the checkpoint's)",
                             path=path, field="state_dict")
        if tuple(saved_sd[key].shape) != tuple(tensor.shape):
            raise InputError(f"{key} has shape {tuple(saved_sd[key].shape)} but the configured model has "
                             f"{tuple(tensor.shape)} (the model config differs from the checkpoint's)",
                             path=path, field="state_dict")
    extra = sorted(set(saved_sd) - set(own))
    if extra:
        raise InputError(f"unexpected tensor {extra[0]!r} (the model config differs from the checkpoint's)",
                         path=path, field="state_dict")
    return ckpt


class NLBEvaluationCallback(pl.Callback):
    """Every ``every_n_epochs`` validation epochs, compute the full NLB metric set on the eval trials.

    Predicts train and eval trials (train rates are needed for the velocity decoder), then calls
    :func:`neurodyn.metrics.evaluate_dataset` against the prepared file's ``eval_target`` and logs
    ``nlb/co_bps``, ``nlb/fp_bps``, ``nlb/vel_r2``, ``nlb/psth_r2`` (and ``nlb/tp_corr`` for DMFC).
    Only acts on an :class:`~neurodyn.data.datamodule.NLBDataModule` in the val phase.
    """

    def __init__(self, every_n_epochs: int = 10):
        self.every_n_epochs = every_n_epochs

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        dm = trainer.datamodule
        if trainer.sanity_checking or getattr(dm, "phase", None) != "val" or not hasattr(dm, "prepared"):
            return
        if (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        from neurodyn.metrics import evaluate_dataset

        arrays = predict_arrays(pl_module, dm)
        group = nlb_submission_group(arrays, dm)
        metrics = evaluate_dataset(dm.prepared.eval_target_group, group, dm.dataset)
        for key, value in metrics.items():
            name = "nlb/" + key.replace(" ", "_").replace("-", "_").lower()
            pl_module.log(name, float(value), sync_dist=True)


@torch.no_grad()
def predict_arrays(pl_module: pl.LightningModule, dm) -> dict[str, np.ndarray]:
    """Rates (counts per bin) of every predict split, concatenated in trial order."""
    was_training = pl_module.training
    pl_module.eval()
    out = {}
    try:
        for split in dm.predict_splits:
            loader = dm._loader(split, shuffle=False)
            rates = []
            for batch in loader:
                batch = {k: v.to(pl_module.device) for k, v in batch.items()}
                rates.append(pl_module._predict_rates(batch).float().cpu().numpy())
            out[split] = np.concatenate(rates)
    finally:
        pl_module.train(was_training)
    return out


def nlb_submission_group(rates: dict[str, np.ndarray], dm) -> dict[str, np.ndarray]:
    """Split predicted rates into the NLB submission arrays of one dataset group."""
    n_in, n_obs = dm.n_heldin, dm.n_obs_bins
    group = {
        "train_rates_heldin": rates["train"][:, :n_obs, :n_in],
        "train_rates_heldout": rates["train"][:, :n_obs, n_in:],
        "eval_rates_heldin": rates["valid"][:, :n_obs, :n_in],
        "eval_rates_heldout": rates["valid"][:, :n_obs, n_in:],
    }
    if dm.n_fwd_bins:
        group["eval_rates_heldin_forward"] = rates["valid"][:, n_obs:, :n_in]
        group["eval_rates_heldout_forward"] = rates["valid"][:, n_obs:, n_in:]
    return {k: v.astype(np.float32) for k, v in group.items()}


def nlb_group_name(dataset: str, bin_ms: float) -> str:
    """nlb_tools' group naming: ``mc_maze`` at 5 ms, ``mc_maze_20`` at 20 ms."""
    return dataset if int(bin_ms) == 5 else f"{dataset}_{int(bin_ms)}"


class PredictionWriter(BasePredictionWriter):
    """Write ``neurodyn predict`` outputs to one HDF5 file (atomically).

    Layout depends on the data:

    - NLB (:class:`NLBDataModule`): the NLB submission layout, group ``<dataset>[_<bin>]`` with
      ``train_rates_heldin``, ``train_rates_heldout``, ``eval_rates_heldin``, ``eval_rates_heldout``
      and ``eval_rates_*_forward`` (spikes per bin, float32), plus ``latents/{train,eval}_{z,v}``.
    - LFADS / Lorenz: ``train_rates``, ``valid_rates`` (counts per bin) and ``train_z``, ``valid_v``...
    - Switching GLM: per split the state ``posteriors``, the ``viterbi`` path and ``log_marginal``.

    Parameters
    ----------
    path
        Output file; nothing is written under this name unless prediction finishes.
    """

    def __init__(self, path: str | None = None):
        super().__init__(write_interval="epoch")
        self.path = path

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:
        if self.path is None:
            raise ValueError("PredictionWriter needs a path: pass --prediction.path FILE.h5")
        dm = trainer.datamodule
        if predictions and isinstance(predictions[0], dict):  # a single dataloader
            predictions = [predictions]
        splits = {}
        for split, outputs in zip(dm.predict_splits, predictions):
            keys = [k for k in outputs[0] if k != "index"]
            merged = {k: torch.cat([o[k] for o in outputs]).float().cpu().numpy() for k in keys}
            order = np.argsort(torch.cat([o["index"] for o in outputs]).cpu().numpy(), kind="stable")
            splits[split] = {k: v[order] for k, v in merged.items()}
        tree: dict = {}
        if hasattr(dm, "prepared") and "rates" in splits.get("train", {}):
            name = nlb_group_name(dm.dataset, dm.bin_ms)
            tree[name] = nlb_submission_group({s: splits[s]["rates"] for s in splits}, dm)
            tree["latents"] = {f"{'eval' if s == 'valid' else s}_{k}": v for s, d in splits.items()
                               for k, v in d.items() if k in ("z", "v")}
        else:
            for split, data in splits.items():
                for key, value in data.items():
                    tree[f"{split}_{key}"] = value
        path = Path(self.path)
        import h5py

        with atomic_path(path) as tmp:
            with h5py.File(tmp, "w") as f:
                write_h5_dict(f, tree, compression="gzip")
                f.attrs["datamodule"] = type(dm).__name__
                f.attrs["bin_ms"] = float(dm.bin_ms)
                if hasattr(dm, "dataset"):
                    f.attrs["dataset"] = dm.dataset
        print(f"wrote predictions to {path}")
