"""Checkpoints of the training harness: what they hold, how they are written, read and checked.

- :class:`AutoModelCheckpoint`: monitor picked from the data, ``last.ckpt`` rewritten every epoch, top-k
  files, atomic writes, one large write per epoch at most, an index (``checkpoints.json``) that
  ``--ckpt_path best`` resolves.
- The header ``checkpoint["neurodyn"]`` (format version, model family, data sizes, neurodyn version, the bin
  width and the units of the training data): written by :func:`add_checkpoint_header`, checked by
  :func:`check_header`, :func:`check_checkpoint` (a file against a module, before anything loads it),
  :func:`check_bin_width` and :func:`check_units` (against the data a command reads) and
  :func:`check_checkpoint_header` (inside Lightning's own load).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from neurodyn.data.prepared import UNIT_IDS
from neurodyn.errors import InputError, one_line, with_article
from neurodyn.io import atomic_path
from neurodyn.io.output import disk_full
from neurodyn.training.checkpoint_index import INDEX_NAME

#: version of the ``checkpoint["neurodyn"]`` layout; a checkpoint with a larger number is refused
CHECKPOINT_FORMAT = 1
#: the data-derived sizes of a model: linked from the DataModule, recorded in the checkpoint header
SIZE_KEYS = ("n_heldin", "n_neurons", "n_obs_bins", "n_fwd_bins")

#: Model settings (keys under ``model.init_args``, per LightningModule class) that ``validate`` / ``test`` /
#: ``predict`` may choose for themselves: how a trained model is evaluated (LangevinFlow's sampled or mean
#: pass and its number of samples, speed and memory options of the same arithmetic). A value the user gives
#: that differs from the checkpoint's is used, with a note (:func:`reconcile_model_settings`); a resumed fit
#: may change only those outside :data:`VALIDATION_SETTINGS`.
EVALUATION_SETTINGS = {
    "LangevinFlowModule": frozenset({
        "config.eval_mode", "config.n_eval_samples", "config.decoder_precision", "config.compile",
        "config.cuda_graph", "config.checkpoint_decoder", "config.train_chunks", "val_samples",
    }),
}
#: The evaluation settings that also define how a fit computes its validation metrics -- ``valid/loss`` (the
#: sampled or mean pass, and its arithmetic) and the rates behind ``valid/co_bps`` / ``fp_bps`` / ``rate_r2``
#: (``min(val_samples, n_eval_samples)`` passes) -- which the checkpoint monitor, the plateau schedule and early
#: stopping compare from epoch to epoch. A resumed fit may not change them (:func:`reconcile_model_settings`):
#: the best checkpoint would be the best under two rules, as with another ``--checkpoint.monitor``.
#: ``decoder_precision`` changes the rounding of every pass, training's too, as ``trainer.precision`` (which a
#: resume may not change either). The rest (``compile``, ``cuda_graph``, ``checkpoint_decoder``,
#: ``train_chunks``) are the same arithmetic, and a resume may change them.
VALIDATION_SETTINGS = {
    "LangevinFlowModule": frozenset({
        "config.eval_mode", "config.n_eval_samples", "val_samples", "config.decoder_precision",
    }),
}
#: Model settings that only shape training (optimiser, schedules, loss weights, priors of the M-step,
#: initialisation, seeds): the weights were trained with the checkpoint's values, which are kept (a
#: different value from the user gets a note; it would change nothing the run computes from the weights,
#: except ``validate`` losses, which are then the fit's).
TRAINING_SETTINGS = {
    "LangevinFlowModule": frozenset({
        "lr", "weight_decay", "ramp_epochs", "lr_factor", "lr_patience", "min_lr", "lr_schedule",
        "config.dropout", "config.velocity_prior_var", "config.kl_max", "config.kl_ramp_epochs",
        "config.kl_scale", "config.cd_keep_prob", "config.cd_gradient", "config.transition_kl",
        "config.potential_init", "config.init", "config.sv_rate", "config.val_mask", "config.sv_seed",
    }),
    "HMMGLMModule": frozenset({
        "method", "lr", "n_inner", "transition_update", "config.sticky", "config.transition_floor",
        "config.init_std", "config.seed", "config.prior_std", "config.gumbel_temperature",
        "config.prior_temperature", "config.prior_alpha", "config.prior_form", "config.m_step_mode",
        "config.bias_init",
    }),
}


def _no_validation(trainer: pl.Trainer) -> bool:
    """Whether the fit has no validation batches at all."""
    val = trainer.num_val_batches
    return (sum(val) if isinstance(val, list) else val) == 0


def checkpoint_filename(monitor: str | None) -> str:
    """The name template of a run's top-k files: Lightning's default ``epoch=E-step=S`` (``step``: the
    optimizer steps so far), then the monitored value with the metric's ``/`` as ``_`` (a ``/`` in a file name
    is a folder): ``epoch=4-step=90-valid_loss=0.4073.ckpt``; ``epoch=4-step=90.ckpt`` without a monitor.

    >>> checkpoint_filename("valid/co_bps")
    'epoch={epoch}-step={step}-valid_co_bps={valid/co_bps:.4f}'
    """
    name = "epoch={epoch}-step={step}"
    return f"{name}-{monitor.replace('/', '_')}={{{monitor}:.4f}}" if monitor else name


def _checkpoint_option(message: str) -> str:
    """The ``checkpoint.*`` option that Lightning's ModelCheckpoint refused, where its words say.

    >>> _checkpoint_option("Invalid value for save_top_k=-5. Must be >= -1"), _checkpoint_option("`mode` can be ...")
    ('checkpoint.save_top_k', 'checkpoint.mode')
    """
    found = re.match(r"Invalid value for (\w+)=", message) or re.match(r"`(\w+)` can be", message)
    return f"checkpoint.{found.group(1)}" if found else "checkpoint"


class AutoModelCheckpoint(ModelCheckpoint):
    """ModelCheckpoint whose ``monitor="auto"`` follows the data: co-bps or loss.

    With ``monitor="auto"`` (the default) the monitored metric is the DataModule's
    ``default_monitor``: ``valid/co_bps`` (max) where validation trials have held-out neurons,
    else ``valid/loss`` (min); never ``valid/rate_r2``, which compares with true rates. Any other
    value behaves as Lightning's ModelCheckpoint.

    Differences from Lightning's ModelCheckpoint:

    - ``last.ckpt`` is the last finished epoch, always, written at the end of every training epoch, also
      when validation runs only every ``check_val_every_n_epoch`` epochs (Lightning 2.6 rewrites it only
      when a top-k file is written, and then at the end of validation, which is not an exact resume
      point); top-k files are considered on validated epochs only; when the epoch's end entered the top k,
      ``last.ckpt`` is a hard link to that file (one large file); a top-k file saved inside the epoch (a
      validation with ``val_check_interval`` below 1 that ends on its last batch) holds another state, and
      ``last.ckpt`` is written beside it.
    - Every file is written to a temporary name and renamed, so an interrupted write never leaves a
      truncated checkpoint (and a hard link is never written through).
    - Top-k files are named ``epoch=E-step=S-<monitor>=<value>.ckpt`` whatever the monitor
      (:func:`checkpoint_filename`; ``--checkpoint.filename`` still picks another template). Runs written
      before had ``epochE-valid_loss=V.ckpt`` under the auto monitor; the files are found by the names that
      ``checkpoints.json`` and the restored callback state record, so such runs resume as they are.
    - A fit resumed from a file other than ``last.ckpt`` never deletes that file (Lightning keeps the file a fit
      resumed from), nor the top-k files written after its epoch (the restored state does not know them):
      the folder may hold more than the top k, and ``checkpoints.json``'s ``top_k`` names the top k.
    - ``checkpoints.json`` next to the files records the monitor, the top-k files with their scores, the
      best file, the last epoch and ``last_step`` (Lightning's ``global_step``, which counts optimizer
      steps: one per batch for LangevinFlow and the HMM-GLM ``gradient`` method, ``n_inner`` M-step Adam
      steps per batch for HMM-GLM ``em``) and, under ``neurodyn fit``, ``run_dir``: the run folder they belong
      to (a copy of the run folder is refused a resume into a checkpoint folder outside it), and ``run_id``, the
      run's id (which links a checkpoint in such a folder to its run: ``checkpoint_index.run_of_checkpoint``);
      ``neurodyn predict --run DIR --ckpt_path best`` reads it.
    """

    def __init__(self, monitor: str | None = "auto", mode: str = "min", save_last: bool | None = True,
                 save_top_k: int = 1, **kwargs):
        from lightning.fabric.utilities.exceptions import MisconfigurationException

        self._auto = monitor == "auto"
        # a stand-in monitor for Lightning's init checks (top k > 1 needs one); setup() picks the real one
        try:
            super().__init__(monitor="valid/loss" if self._auto else monitor, mode=mode, save_last=save_last,
                             save_top_k=save_top_k, **kwargs)
        except MisconfigurationException as err:  # save_top_k -5, every_n_epochs -1, mode: was a traceback
            raise InputError(one_line(err, 300), field=_checkpoint_option(str(err))) from None
        if self._auto:
            self.monitor = None
        self._validated_epoch: int | None = None  # the epoch whose validation ran last (this fit)
        #: the run folder whose checkpoints these are (set by ``neurodyn fit``), recorded in the index: a resume
        #: of another folder (a copy of the run folder) is refused this folder (checkpoint_index.foreign_index)
        self.run_dir: str | None = None
        #: the run's id (set by ``neurodyn fit``; None for a run written before run records), recorded in the index
        #: and in every checkpoint (add_checkpoint_header): checkpoint_index.run_of_checkpoint links them to the run
        self.run_id: str | None = None

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._auto and self.monitor is None:
            monitor, mode = getattr(trainer.datamodule, "default_monitor", ("valid/loss", "min"))
            if not hasattr(pl_module, "_collect_validation") and monitor != "valid/loss":
                monitor, mode = "valid/loss", "min"
            self.monitor = monitor
            self.mode = mode
            inf = torch.tensor(np.inf)
            self.kth_value = inf if mode == "min" else -inf
        if self.filename is None:  # one style for every run, auto monitor or not (--checkpoint.filename aside)
            self.filename = checkpoint_filename(self.monitor)
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

    # -- a monitor no validation logs: refused in one line, in the sanity check when there is one ------
    def _unknown_monitor(self, logged) -> InputError:
        shown = sorted(k for k in logged if "/" in k and not k.startswith("train/"))  # what validation logs
        return InputError(f"{self.monitor!r} is not a metric this run logs at validation (it logs "
                          f"{', '.join(shown) or 'none'})", field="checkpoint.monitor")

    def on_sanity_check_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """The module's own ``valid/`` metrics are logged by the sanity check already: a monitor none of them
        matches fails now, not after the first training epoch (the ``nlb/`` metrics of NLBEvaluationCallback
        come on the epochs it evaluates, and are left to the first validation)."""
        conditional = self.monitor and self.monitor.endswith(("/co_bps", "/fp_bps"))  # need observed bins in
        # the few sanity batches: left to the first validation, which sees every trial
        if (not self._auto and self.save_top_k and self.monitor and self.monitor.startswith("valid/")
                and not conditional and self.monitor not in trainer.callback_metrics):
            raise self._unknown_monitor(trainer.callback_metrics)

    def _save_topk_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict) -> None:
        # Lightning's MisconfigurationException listed every train metric and named no option
        if (self.save_top_k and self.monitor is not None and self.monitor not in monitor_candidates
                and trainer.fit_loop.epoch_loop.val_loop._has_run):
            raise self._unknown_monitor(monitor_candidates)
        super()._save_topk_checkpoint(trainer, monitor_candidates)

    # -- every epoch: top-k (when the epoch was validated), then last ---------------------------------
    def _should_save_on_train_epoch_end(self, trainer: pl.Trainer) -> bool:
        """Top-k files at the end of the training epoch whenever validation runs at epoch ends (every
        ``check_val_every_n_epoch`` epochs: it finishes before the epoch's end hooks); Lightning defers them
        to the end of validation when ``check_val_every_n_epoch != 1``, which saved ``last.ckpt`` only on
        validated epochs, at a point that is not an exact resume point."""
        if self._save_on_train_epoch_end is not None or getattr(trainer, "_val_check_time_interval", None):
            return super()._should_save_on_train_epoch_end(trainer)
        return _no_validation(trainer) or trainer.val_check_interval == 1.0

    def _validated_now(self, trainer: pl.Trainer) -> bool:
        """Whether the monitored value is this epoch's: no monitor, no validation, or validation ran."""
        return self.monitor is None or _no_validation(trainer) or self._validated_epoch == trainer.current_epoch

    def _save_topk(self, trainer: pl.Trainer) -> None:
        if self._every_n_epochs >= 1 and (trainer.current_epoch + 1) % self._every_n_epochs == 0:
            self._save_topk_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # last.ckpt every epoch, always here: the end of an epoch is the one exact resume point. Not skipped when a
        # file was saved at this global step already (Lightning's skip): with val_check_interval < 1 an epoch's
        # last validation ends on its last batch, and the top-k file it saved then, before the epoch's end hooks,
        # left the epoch without a last.ckpt (none at all, or the last epoch's)
        if self._outside_training(trainer):
            return
        saved_before = self._last_global_step_saved == trainer.global_step  # not at this epoch's end
        if not saved_before and self._should_save_on_train_epoch_end(trainer) and self._validated_now(trainer):
            self._save_topk(trainer)
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer), link=not saved_before)
        self._write_index(trainer)

    @staticmethod
    def _outside_training(trainer: pl.Trainer) -> bool:
        """Lightning's reasons to save nothing (fast_dev_run, not fitting, the sanity check), without its 'saved
        at this step already'."""
        from lightning.pytorch.trainer.states import TrainerFn

        return bool(trainer.fast_dev_run) or trainer.state.fn != TrainerFn.FITTING or trainer.sanity_checking

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._validated_epoch = trainer.current_epoch
        if not self._should_skip_saving_checkpoint(trainer) and not self._should_save_on_train_epoch_end(trainer):
            self._save_topk(trainer)  # validation inside the epoch (val_check_interval < 1): top-k only
            self._write_index(trainer)

    def _save_last_checkpoint(self, trainer: pl.Trainer, monitor_candidates, link: bool = True) -> None:
        """``last.ckpt``: a hard link to the file saved at this step when ``link`` (the top-k file of this epoch's
        end: the same state), else written."""
        if not self.save_last:
            return
        filepath = os.path.join(self.dirpath, self.CHECKPOINT_NAME_LAST + self.FILE_EXTENSION)
        self.last_model_path = filepath
        source = self._last_checkpoint_saved
        if (link and self._last_global_step_saved == trainer.global_step and source and source != filepath
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
        try:
            trainer.save_checkpoint(tmp, self.save_weights_only)
            if trainer.is_global_zero:
                os.replace(tmp, filepath)
        except OSError as err:
            if trainer.is_global_zero:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)  # nothing partial: a checkpoint cut short by a full disk
            full = disk_full(err, filepath, "trainer.default_root_dir")
            if full is not None:
                raise full from None
            raise
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
            "save_top_k": self.save_top_k,
            "best": os.path.basename(self.best_model_path) if self.best_model_path else None,
            "best_score": score(self.best_model_score),
            "top_k": {os.path.basename(k): score(v) for k, v in self.best_k_models.items()},
            "last": os.path.basename(self.last_model_path) if self.last_model_path else None,
            "last_epoch": int(trainer.current_epoch),
            "last_step": int(trainer.global_step),
        }
        if self.run_dir is not None:
            index["run_dir"] = os.path.realpath(self.run_dir)
        if self.run_id is not None:
            index["run_id"] = self.run_id
        with atomic_path(Path(self.dirpath) / INDEX_NAME) as tmp:
            tmp.write_text(json.dumps(index, indent=1) + "\n")


# -- reading and checking checkpoint files -----------------------------------------------------------
def read_checkpoint(path: str | os.PathLike, field: str = "ckpt_path") -> dict:
    """Load a checkpoint file with ``weights_only=True``; every way it can be unreadable is a one-line InputError."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise InputError("is a folder, expected a checkpoint file", path=path, field=field)
    if not os.path.isfile(path):
        from neurodyn.io.hdf5 import absent_reason

        raise InputError(absent_reason(path, "no such checkpoint file"), path=path, field=field)
    from neurodyn.io.hdf5 import refuse_denied

    refuse_denied(path, field)  # torch.load's PermissionError read as "not a torch.save zip archive"
    import warnings
    import zipfile

    damaged = _damaged_once(path)  # torch.load reads the bytes as they are: a flipped tensor loaded as weights
    if damaged is not None:
        raise InputError(f"not a readable checkpoint: the zip archive is damaged (modified after it was written): "
                         f"{damaged} fails its CRC-32 or header check", path=path, field=field)
    try:
        with warnings.catch_warnings():  # torch's 'Detected pickle protocol 4' on files of other writers
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # not a torch file, a damaged archive, disallowed pickled objects
        if not zipfile.is_zipfile(path) and "Unsupported global" not in str(err):  # no pickle of objects either
            # torch.save writes a zip archive (a cut one has lost its directory); the legacy format loaded above
            reason = "not a torch.save zip archive (truncated, or another kind of file)"
        else:
            reason = _load_failure(str(err))
        raise InputError(f"not a readable checkpoint: {reason}", path=path, field=field) from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise InputError("not a Lightning checkpoint (no state_dict)", path=path, field=field)
    return ckpt


#: bytes read at a time by :func:`damaged_entry`
_CRC_CHUNK = 1 << 22

#: files :func:`_damaged_once` found intact, by (device, inode, size, mtime in ns, ctime in ns)
_INTACT: set[tuple[int, int, int, int, int]] = set()

#: how long (ns) a file's last change must lie before a check for :func:`_damaged_once` to remember it: longer than
#: the coarsest timestamp of common file systems (FAT's 2 s) plus the kernel clock's tick that stamps them
_SETTLED_NS = 3_000_000_000


def _damaged_once(path: str | os.PathLike) -> str | None:
    """:func:`damaged_entry`, read once per state of the file in a process: a command reads its checkpoint's header
    before the model is built and checks it against the model after (:func:`read_checkpoint` twice), and the
    second CRC pass would read the whole file again to find what the first found. A file written since (another
    size or modification time, another inode) is checked again.

    The state includes the inode's change time: a rewrite in place that keeps the size and sets the modification
    time back (``cp -p`` or ``rsync --inplace -t`` over the file, ``os.utime``) kept the key of size and mtime
    and the damage was never seen; the change time (POSIX ``st_ctime``) cannot be set back and is stamped by every
    write and every ``utime``. Timestamps are stamped on a coarse clock, so a second write within the tick of the
    file's last change keeps both times (git's "racily clean" index entries): a file whose last change is not
    older than :data:`_SETTLED_NS` when it is checked is not remembered (checked at every read)."""
    import time

    now = time.time_ns()  # before the stat: a write after it is stamped later than a settled change time
    st = os.stat(path)
    key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    if key in _INTACT:
        return None
    found = damaged_entry(path)
    if found is None and now - st.st_ctime_ns > _SETTLED_NS:
        _INTACT.add(key)
    return found


def damaged_entry(path: str | os.PathLike) -> str | None:
    """The first entry of a ``torch.save`` zip archive whose bytes differ from the CRC-32 its header records, named
    (``archive/data/45, the tensor state_dict['decoder.weight']``); None when every entry matches, or when the file
    is no zip archive that :mod:`zipfile` opens (torch.load's own failure then says why).

    torch.save writes a CRC-32 per entry (PKWARE's APPNOTE.TXT, section 4.4.7) and torch.load never checks it: a
    checkpoint with flipped bytes inside a tensor (a bad disk, a copy cut and patched) loaded with wrong weights,
    ``predict`` wrote rates from them and a resumed fit ran into a non-finite loss epochs later. Reading each entry
    through :mod:`zipfile` checks its CRC at the entry's end; about one more read of the file (CRC-32 runs at GB/s).
    An entry whose recorded CRC is 0 is not checked: ``torch.serialization.set_crc32_options(False)`` writes 0 for
    every entry (the CRC of an empty entry is 0 too).
    """
    import zipfile

    try:
        archive = zipfile.ZipFile(path)
    except Exception:  # noqa: BLE001 - no zip directory zipfile reads: torch.load's own failure says why
        return None
    with archive:
        for info in archive.infolist():
            if info.CRC == 0 or info.is_dir():
                continue
            try:
                with archive.open(info) as entry:
                    while entry.read(_CRC_CHUNK):
                        pass
            except Exception:  # noqa: BLE001 - 'Bad CRC-32', a local header that is not the directory's, a flag
                # bit flipped to 'encrypted' (RuntimeError) or an unknown compression: the entry is not as written
                return _entry_name(archive, info.filename)
    return None


def _entry_name(archive, name: str) -> str:
    """``name`` (an entry of a torch.save archive) and what it holds: ``archive/data/<key>`` is the bytes of the
    tensors that ``<archive>/data.pkl`` names by ``key``, found by unpickling ``data.pkl`` with stand-ins for every
    class and storage (nothing of the file is imported or run); ``data.pkl`` is the checkpoint's structure."""
    folder, _, rest = name.partition("/")
    if rest == "data.pkl":
        return f"{name} (the checkpoint's structure: its keys, settings and tensor layout)"
    if not rest.startswith("data/"):
        return name
    try:
        found = _storage_paths(archive.read(f"{folder}/data.pkl")).get(rest[len("data/"):])
    except Exception:  # noqa: BLE001 - a damaged data.pkl too: the entry's own name is still right
        found = None
    return f"{name} (the tensor {found})" if found else name


def _storage_paths(pickled: bytes) -> dict[str, str]:
    """Storage key -> where the checkpoint keeps the first tensor on it
    (``optimizer_states[0]['state'][3]['exp_avg']``), from torch.save's ``data.pkl``, unpickled with stand-ins (a
    persistent id ``('storage', type, key, ...)`` is a storage; every global a call that records its arguments)."""
    import io
    import pickle

    class Storage:
        def __init__(self, key):
            self.key = str(key)

    class Call(dict):
        """Any global the pickle names, called (REDUCE), created (NEWOBJ: it must be a type) or built (BUILD: its
        state kept); a dict, as an OrderedDict's items arrive by SETITEMS."""

        def __new__(cls, *args, **_):
            call = super().__new__(cls)
            call.args, call.state = args, None
            return call

        def __init__(self, *_, **__):  # the arguments are the call's, not the dict's items
            super().__init__()

        def __setstate__(self, state):
            self.state = state

        __hash__ = object.__hash__  # a key of a dict (an Enum member, a frozenset)

        def append(self, item):  # APPENDS to an instance of a list subclass
            self.args += (item,)

        def extend(self, items):
            self.args += tuple(items)

    class Reader(pickle.Unpickler):
        def find_class(self, module, name):
            return Call  # nothing is imported

        def persistent_load(self, pid):
            return Storage(pid[2] if isinstance(pid, tuple) and len(pid) > 2 else pid)

    paths: dict[str, str] = {}
    # a pickle may share one object many times ([a, a] nested: 2^depth paths): each object is walked once per
    # depth that is shallower than every earlier visit (at most 51 times), not once: an object first reached near
    # the depth limit, its tensors cut off, and later at a shallow depth was never walked again, its tensors unnamed
    seen: dict[int, int] = {}

    def walk(value, where, depth=0):
        if depth > 50 or len(seen) > 1_000_000:
            return
        if isinstance(value, (Call, dict, list, tuple)):
            if id(value) in seen and seen[id(value)] <= depth:  # walked before, as deep or shallower
                return
            seen[id(value)] = depth
        if isinstance(value, Storage):
            paths.setdefault(value.key, where)
        elif isinstance(value, Call):
            for arg in value.args:
                walk(arg, where, depth + 1)
            walk(value.state, where, depth + 1)
            for key, item in value.items():
                walk(item, f"{where}[{key!r}]", depth + 1)
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{where}[{key!r}]" if where else str(key), depth + 1)
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                walk(item, f"{where}[{i}]", depth + 1)

    walk(Reader(io.BytesIO(pickled)).load(), "")
    return paths


def _load_failure(message: str) -> str:
    """torch.load's reason in a few words: its weights-only refusal is a paragraph about PyTorch 2.6's
    defaults and arbitrary code execution around the one line that says which object was refused."""
    import re

    refused = re.search(r"WeightsUnpickler error:\s*(.+?)(?: was not an allowed global.*)?$", message, re.M)
    if refused:
        return (f"it holds Python objects a safe load refuses ({one_line(refused.group(1), 100)}); neurodyn loads "
                "checkpoints with weights_only=True, so only files of neurodyn fit are read")
    if "PytorchStreamReader" in message:
        return "the zip archive is damaged (truncated or modified after it was written)"
    return one_line(message, 160)


def check_header(ckpt: dict, path: str | os.PathLike, family: str | None) -> dict:
    """``ckpt["neurodyn"]`` after checking that it is there, of a format this neurodyn reads and (when
    ``family`` is given) written by that LightningModule class; one-line InputError otherwise."""
    header = ckpt.get("neurodyn")
    if not isinstance(header, dict) or "format" not in header:
        raise InputError("not a neurodyn checkpoint (no format version; written by an older neurodyn or by another "
                         "program)", path=path, field="neurodyn.format")
    if int(header["format"]) > CHECKPOINT_FORMAT:
        raise InputError(f"format {header['format']} is newer than this neurodyn reads ({CHECKPOINT_FORMAT}); "
                         "upgrade neurodyn", path=path, field="neurodyn.format")
    if family and header.get("family") != family:
        raise InputError(f"{with_article(header.get('family'))} checkpoint given to {family}", path=path,
                         field="neurodyn.family")
    return header


def check_checkpoint(path: str | os.PathLike, pl_module: pl.LightningModule, field: str = "ckpt_path",
                     data: str | os.PathLike | None = None) -> dict:
    """Check that a checkpoint fits ``pl_module``: neurodyn format version, model family, data sizes, tensor shapes.

    Returns the checkpoint (loaded with ``weights_only=True``). Raises a one-line InputError naming the
    file and the field that does not match (and ``data``, the data file the sizes are of, when there is one).
    """
    ckpt = read_checkpoint(path, field)
    path = os.fspath(path)
    header = check_header(ckpt, path, type(pl_module).__name__)
    sizes = header.get("sizes") or {}
    for key in ("n_heldin", "n_neurons"):  # the other sizes only matter where tensor shapes depend on them
        saved = sizes.get(key)
        current = pl_module.hparams.get(key, getattr(pl_module, key, None))
        if saved is None:
            continue
        if current is not None and int(saved) != int(current):
            raise InputError(f"checkpoint was trained with {key}={saved} but the data has {current}"
                             + (f" ({data})" if data is not None else ""), path=path, field=f"neurodyn.sizes.{key}")
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


# -- the header, from inside the LightningModule ----------------------------------------------------
def add_checkpoint_header(module: pl.LightningModule, checkpoint: dict) -> None:
    """Write neurodyn's checkpoint header and make the hyper-parameters plain (``weights_only`` loadable).

    ``checkpoint["neurodyn"]`` = ``{"format", "family", "sizes", "version"}``, ``"bin_ms"``, the bin width
    of the training data, when the module is attached to a trainer whose DataModule has one, and ``"units"``
    (:func:`data_units`) when that DataModule reads a prepared NLB file, and ``"run_id"``, the id of the run of
    ``neurodyn fit`` that saves it (:data:`~neurodyn.training.checkpoint_index.RUN_RECORD`); the model config
    dataclass in
    ``hyper_parameters`` becomes a dict (the modules accept either).
    """
    import dataclasses

    from neurodyn import __version__

    hp = dict(checkpoint.get("hyper_parameters") or {})
    for key, value in hp.items():
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            hp[key] = dataclasses.asdict(value)
    checkpoint["hyper_parameters"] = hp
    sizes = {k: int(hp[k]) for k in SIZE_KEYS if hp.get(k) is not None}
    checkpoint["neurodyn"] = {"format": CHECKPOINT_FORMAT, "family": type(module).__name__, "sizes": sizes,
                              "version": str(__version__)}
    trainer = getattr(module, "_trainer", None)
    bin_ms = getattr(getattr(trainer, "datamodule", None), "bin_ms", None)
    if bin_ms is not None:
        checkpoint["neurodyn"]["bin_ms"] = float(bin_ms)
    units = data_units(getattr(trainer, "datamodule", None))
    if units is not None:
        checkpoint["neurodyn"]["units"] = units
    # the id of the run that saves it (AutoModelCheckpoint.run_id, set by neurodyn fit): a copy of the file kept
    # anywhere is still told as that run's (fit --run DIR --ckpt_path FILE)
    run_id = getattr(getattr(trainer, "checkpoint_callback", None), "run_id", None)
    if isinstance(run_id, str) and run_id:
        checkpoint["neurodyn"]["run_id"] = run_id


def check_resume_length(checkpoint: dict, cfg, path: str | os.PathLike) -> bool:
    """A resumed fit trains up to ``trainer.max_epochs`` in all (the run's config.yaml's unless given): fewer
    than the checkpoint has finished is one line naming the option (was Lightning's traceback, exit 1, and a
    bare ``fit --run DIR`` after an extension with a larger ``--trainer.max_epochs`` always hit it); as many is
    a note that there is nothing left to train, and True (the fit then writes nothing: no
    ``config.resume-<n>.yaml``, no logger file)."""
    trainer = cfg.get("trainer")
    max_epochs = trainer.get("max_epochs") if hasattr(trainer, "get") else None
    epoch = checkpoint.get("epoch")
    if not isinstance(epoch, int) or isinstance(max_epochs, bool) or not isinstance(max_epochs, int) or max_epochs < 0:
        return False
    done = epoch + 1
    if max_epochs < done:
        raise InputError(f"the checkpoint has finished {done} epochs, more than trainer.max_epochs {max_epochs} "
                         f"asks for in all: give --trainer.max_epochs above {done} to train on", path=path,
                         field="trainer.max_epochs")
    if max_epochs == done:
        print(f"note: the checkpoint has finished all {done} epochs of trainer.max_epochs: nothing to train "
              f"(give --trainer.max_epochs above {done} to train on)", flush=True)
        return True
    return False


def cosine_span_note(checkpoint: dict, cfg) -> str | None:
    """The note for a resumed fit whose ``trainer.max_epochs`` goes past the span of the checkpoint's cosine
    learning-rate decay (its state holds ``T_max``, the ``max_epochs`` the run started with; a resume restores
    it): the epochs past the span train at ``min_lr`` (:class:`~neurodyn.training.schedules.CosineToMinLR`),
    unlike a run of the new length from the start. None when the run has no cosine or stays inside its span."""
    trainer = cfg.get("trainer")
    max_epochs = trainer.get("max_epochs") if hasattr(trainer, "get") else None
    if isinstance(max_epochs, bool) or not isinstance(max_epochs, int):
        return None
    for state in checkpoint.get("lr_schedulers") or []:
        span, floor = (state.get("T_max"), state.get("eta_min")) if isinstance(state, dict) else (None, None)
        if isinstance(span, bool) or not isinstance(span, int) or not isinstance(floor, (int, float)):
            continue
        if max_epochs > span:
            extra = f"epoch {span + 1} trains" if max_epochs == span + 1 else f"epochs {span + 1}-{max_epochs} train"
            return (f"note: trainer.max_epochs: the cosine learning-rate decay of the checkpoint's run spans {span} "
                    f"epochs (the max_epochs it started with); {extra} at min_lr {float(floor):g} (a new run of "
                    f"{max_epochs} epochs would decay over all of them)")
    return None


def check_resume_time(checkpoint: dict, cfg) -> bool:
    """A resumed fit whose ``trainer.max_time`` the checkpoint's run has used up already: a note that there is
    nothing to train, and True (the fit then writes nothing, as :func:`check_resume_length`). ``max_time`` is the
    run's training time in all (the checkpoint's ``Timer`` state carries the time used over a resume), so a bare
    ``fit --run DIR`` of a run that ``max_time`` stopped trained nothing, without a word. False when time is left,
    no ``max_time`` is asked, the checkpoint records no time used, or ``min_epochs`` / ``min_steps`` are still to
    do (Lightning trains on to them whatever the time)."""
    from neurodyn.training.callbacks import EpochTimer, format_duration, max_time_seconds

    trainer = cfg.get("trainer")
    limit = trainer.get("max_time") if hasattr(trainer, "get") else None
    state = (checkpoint.get("callbacks") or {}).get("Timer")
    if limit is None or not isinstance(state, dict):
        return False
    duration = max_time_seconds(limit)  # one it cannot read: refused in one line (it was a traceback here)
    timer = EpochTimer(limit)
    timer.load_state_dict(state)
    used = timer.time_elapsed()
    epoch, step = checkpoint.get("epoch"), checkpoint.get("global_step")
    min_epochs, min_steps = trainer.get("min_epochs"), trainer.get("min_steps")
    if used < duration or (min_epochs and isinstance(epoch, int) and epoch + 1 < min_epochs) or (
            min_steps and isinstance(step, int) and step < min_steps):
        return False
    print(f"note: the checkpoint's run has trained {format_duration(used)} of trainer.max_time "
          f"{format_duration(duration)} (the run's training time in all): nothing to train (give a longer "
          "--trainer.max_time, or --trainer.max_time null for none, to train on)", flush=True)
    return True


def check_bin_width(checkpoint: dict, datamodule, path: str | os.PathLike) -> None:
    """One-line InputError when the data's bin width differs from the one the checkpoint was trained on (a
    model's dynamics and rates are per bin: a 20 ms model fed 5 ms bins predicts nonsense without an
    error). Checkpoints written before the width was recorded are not checked."""
    saved = (checkpoint.get("neurodyn") or {}).get("bin_ms")
    current = getattr(datamodule, "bin_ms", None)
    if saved is not None and current is not None and abs(float(saved) - float(current)) > 1e-9:
        data = getattr(datamodule, "path", None)
        raise InputError(f"checkpoint was trained on {float(saved):g} ms bins but the data has {float(current):g} ms "
                         "bins (" + (f"{data}; " if data is not None else "") + "prepare the data at the model's "
                         "width; `evaluate --upsample` scores a 20 ms model at 5 ms)", path=path,
                         field="neurodyn.bin_ms")


def data_units(datamodule) -> dict | None:
    """What identifies the units of ``datamodule``'s prepared NLB file (its ``prepared`` attributes; None for
    other data): ``{"dataset": name, "sources": [[sha256, file name], ...]}``, the NWB files it was prepared from,
    and, where the file records them (:data:`neurodyn.data.prepared.UNIT_IDS`), ``"heldin_ids"`` and
    ``"heldout_ids"``: the NWB unit id of each held-in / held-out column (lists of ints, in column order).

    A model's read-in and read-out weights (a switching GLM's couplings and biases) belong to particular units
    (columns of the spike arrays), so a checkpoint is only meaningful on the units it was trained on. A file
    prepared before the unit ids were recorded has its session's units in unit-id order
    (:meth:`neurodyn.data.nwb.NWBSession.group`, as nlb_tools orders them), whatever the phase: every prepared file
    that ``NLBDataModule`` reads has training trials, so it was prepared from the session's train NWB file (alone,
    or with the test file of its folder), and the SHA-256 of that file (``source_sha256``: ``""`` where unknown,
    streamed from a plain URL) is common to the val- and test-phase files of one session and to no other session's."""
    prepared = getattr(datamodule, "prepared", None)
    attrs = getattr(prepared, "attrs", None)
    if not isinstance(attrs, dict) or not isinstance(attrs.get("dataset"), str):
        return None
    names = [str(v) for v in np.atleast_1d(attrs.get("source_files", []))]
    shas = [str(v) for v in np.atleast_1d(attrs.get("source_sha256", []))]
    units = {"dataset": attrs["dataset"], "sources": [[sha, name] for sha, name in zip(shas, names)]}
    ids = prepared.column_ids() if hasattr(prepared, "column_ids") else {}
    # plain lists of ints: a checkpoint is read with weights_only=True
    units.update({f"{kind}_ids": [int(v) for v in values.tolist()] for kind, values in ids.items()})
    return units


def _sources(units: dict) -> dict[str, str]:
    """``{sha256: file name}`` of a :func:`data_units` record whose every digest is known, else ``{}`` (a damaged
    record too): only the train NWB file is common to a session's prepared files, and which of a test-phase
    file's two sources it is cannot be told, so where one digest is unknown that may be the train file's, and
    the other digests differing says nothing about the session."""
    rows = units.get("sources")
    if not isinstance(rows, list) or not all(isinstance(row, (list, tuple)) and len(row) == 2 for row in rows):
        return {}
    return {str(row[0]): str(row[1]) for row in rows} if all(row[0] for row in rows) else {}


#: what of a model of each family (``checkpoint["neurodyn"]["family"]``) is bound to the units it was trained on,
#: in :func:`check_units`' messages; ``None``: any other family (LangevinFlow's, which a header without a family
#: was written by). A switching GLM has no read-in or read-out layer: its couplings and biases are per unit.
UNITS_BOUND = {
    None: "a model's read-in and read-out weights",
    "HMMGLMModule": "a switching GLM's couplings (one per pair of units, per state) and biases (one per unit)",
}


def check_units(checkpoint: dict, datamodule, path: str | os.PathLike) -> None:
    """One-line InputError (naming the data file and the field) when the data's units are not the ones the
    checkpoint was trained on (:func:`data_units`): another NLB dataset (``dataset``), or a prepared file of
    none of the NWB files the training file was prepared from (``source_sha256``: another session, or another
    simulation). Before, only the unit counts and the bin width were compared, and a checkpoint of one session
    applied to another with as many units predicted nonsense without an error. Another phase of the same
    session (its val- and test-phase files: the same train NWB file) and the same session prepared again pass.
    Where both the checkpoint and the file record the columns' NWB unit ids (``heldin_ids`` / ``heldout_ids``,
    files prepared since neurodyn records them), those must be equal too, in order (field ``unit_ids/heldin`` or
    ``unit_ids/heldout``): a file whose ids were changed, or whose columns are other units or in another order,
    is refused even where its sources are the training file's. Checkpoints written before the units were
    recorded, data other than a prepared file, and files with a source whose digest is unknown, on either side,
    are not compared (by ids: where either side records none)."""
    saved = (checkpoint.get("neurodyn") or {}).get("units")
    current = data_units(datamodule)
    if not isinstance(saved, dict) or current is None:
        return
    data = getattr(datamodule, "path", None)
    family = (checkpoint.get("neurodyn") or {}).get("family")
    why = f"{UNITS_BOUND.get(family, UNITS_BOUND[None])} belong to the units it was trained on, not to these"
    if isinstance(saved.get("dataset"), str) and saved["dataset"] != current["dataset"]:
        raise InputError(f"the checkpoint {os.fspath(path)} was trained on {saved['dataset']}'s units, but this file "
                         f"holds {current['dataset']}'s: {why}; use a checkpoint of a fit on {current['dataset']}",
                         path=data, field="dataset")
    theirs, ours = _sources(saved), _sources(current)
    if theirs and ours and not set(theirs) & set(ours):
        def shown(files):
            return ", ".join(f"{name} ({sha[:12]}...)" for sha, name in files.items())

        raise InputError(f"the checkpoint {os.fspath(path)} was trained on the units of {shown(theirs)}, but this "
                         f"file was prepared from {shown(ours)}, another session: {why}; use a checkpoint of a fit "
                         "on this session (any phase of it)", path=data, field="source_sha256")
    for kind, what in (("heldin", "held-in"), ("heldout", "held-out")):
        key = f"{kind}_ids"
        theirs_ids, ours_ids = saved.get(key), current.get(key)
        if not isinstance(theirs_ids, list) or ours_ids is None or list(theirs_ids) == list(ours_ids):
            continue
        order = "the same units in another order" if sorted(theirs_ids) == sorted(ours_ids) else (
            f"{len(set(theirs_ids) ^ set(ours_ids))} unit ids in one of them only")
        raise InputError(f"the checkpoint {os.fspath(path)} was trained on {what} units {_ids(theirs_ids)}, but "
                         f"this file's {what} columns are units {_ids(ours_ids)} ({order}): {why}; use a checkpoint "
                         "of a fit on this file's units", path=data, field=f"{UNIT_IDS}/{kind}")


def _ids(ids: list, shown: int = 6) -> str:
    """Unit ids in a message: the first few and how many."""
    head = ", ".join(map(str, ids[:shown]))
    return f"[{head}{', ...' if len(ids) > shown else ''}] ({len(ids)})"


def check_checkpoint_header(module: pl.LightningModule, checkpoint: dict) -> None:
    """One-line InputError when a checkpoint is of another model family, newer format or other data sizes."""
    header = checkpoint.get("neurodyn") or {}
    if int(header.get("format", 0)) > CHECKPOINT_FORMAT:
        raise InputError(f"format {header['format']} is newer than this neurodyn reads ({CHECKPOINT_FORMAT})",
                         field="neurodyn.format")
    family = header.get("family")
    if family is not None and family != type(module).__name__:
        raise InputError(f"{with_article(family)} checkpoint given to {type(module).__name__}", field="neurodyn.family")
    saved = checkpoint.get("hyper_parameters", {})
    for key in ("n_heldin", "n_neurons"):
        current = getattr(module, key, None)
        if key in saved and current is not None and int(saved[key]) != int(current):
            raise InputError(f"checkpoint was trained with {key}={saved[key]} but the data has {current}", field=key)


# -- a checkpoint's model settings against the ones a validate / test / predict run was given ----------------
def _flat(tree, prefix: str = "") -> dict:
    """Nested mappings as ``{"a.b": value}`` (keys starting with ``_`` left out)."""
    import dataclasses

    if dataclasses.is_dataclass(tree) and not isinstance(tree, type):
        tree = dataclasses.asdict(tree)
    if hasattr(tree, "as_dict"):  # a jsonargparse Namespace
        tree = tree.as_dict()
    out = {}
    for key, value in dict(tree).items():
        if str(key).startswith("_"):
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict) or hasattr(value, "as_dict") or (
                dataclasses.is_dataclass(value) and not isinstance(value, type)):
            out.update(_flat(value, f"{name}."))
        else:
            out[name] = value
    return out


def _same(a, b) -> bool:
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b or (isinstance(a, bool) and isinstance(b, bool) and a == b)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return a == b


def _m_step_as_run(setting, link, recorded=None) -> str | None:
    """The one-hot HMM-GLM's M-step that ``m_step_mode`` ``setting`` runs with ``link``
    (:func:`~neurodyn.models.hmmglm.priors.resolve_m_step_mode`), or ``recorded`` where a checkpoint records the
    step it ran (``checkpoint["neurodyn"]["resolved"]``: its "auto" may have resolved under another rule). None
    for a value that names no step (left to the model's own check)."""
    from neurodyn.models.hmmglm.priors import M_STEP_MODES, resolve_m_step_mode

    if recorded in M_STEP_MODES[1:]:
        return recorded
    return resolve_m_step_mode(setting, link) if setting in M_STEP_MODES else None


def _as_run(family: str, key: str, ours: dict, theirs: dict, resolved) -> tuple[str, str, str] | None:
    """A setting that "auto" lets the model resolve, as the resumed model runs it on both sides: ``(the given
    value's, the checkpoint's, the link)``, else None (compared as written). Only the one-hot M-step is such a
    setting: "auto" is "gumbel" with the sigmoid link and "softmax" with the others, so ``m_step_mode: auto`` given
    against a checkpoint of the sigmoid link that records "gumbel" (written before "auto" existed), or "softmax"
    against one of "auto" with the exp link, asks for the step the checkpoint ran. The link is the checkpoint's:
    the model is rebuilt with it (another link given is refused as a setting of the trained model)."""
    if family != "HMMGLMModule" or key != "config.m_step_mode":
        return None
    from neurodyn.models.hmmglm.config import HMMGLMConfig

    link = theirs.get("config.link", ours.get("config.link", HMMGLMConfig.link))
    mine = _m_step_as_run(ours[key], link)
    ran = _m_step_as_run(theirs[key], link, resolved.get(key) if isinstance(resolved, dict) else None)
    return None if mine is None or ran is None else (mine, ran, link)


def reconcile_model_settings(family: str, given: dict, saved: dict, path: str | os.PathLike,
                             command: str, *, resolved: dict | None = None) -> tuple[dict, list[str]]:
    """Compare the model settings a user gave (``given``: the ``model.init_args`` values that came from a
    config file or the command line, not from defaults) with a checkpoint's ``hyper_parameters``.

    Lightning merges the checkpoint's hyper-parameters over the run's config; without this check a
    different value the user asked for was dropped without a word. Per setting that differs:

    - an evaluation setting (:data:`EVALUATION_SETTINGS`): the user's value is used; returned in the
      first dict (key relative to ``model.init_args`` -> value) with a note; when resuming a fit, one that
      defines the validation metrics (:data:`VALIDATION_SETTINGS`) is refused (the run's earlier epochs
      were validated, and its best checkpoint chosen, with the checkpoint's value);
    - a training setting (:data:`TRAINING_SETTINGS`): the checkpoint's value is kept, with a note; when
      resuming a fit (``command`` ``"fit"``) it is refused like the next kind (the run continues as it was);
    - anything else (sizes, architecture, the model's computation: states, lags, basis, link, dynamics,
      ...): the weights mean something else under another value, so a one-line InputError naming the
      option with both values.

    A setting that "auto" lets the model resolve (the one-hot M-step) is compared as it runs
    (:func:`_as_run`; ``resolved``: the checkpoint's record of the steps it ran, ``checkpoint["neurodyn"]
    ["resolved"]``): before, its text was compared, and ``auto`` given against a checkpoint that records the step
    "auto" takes, or that step given against a checkpoint of "auto", was refused although the run would not change.

    Data sizes (linked from the DataModule and checked against the checkpoint elsewhere) and settings the
    checkpoint does not record are not compared. Returns ``(values to apply, notes)``.
    """
    ours = _flat(given)
    theirs = _flat(saved)
    evaluation = EVALUATION_SETTINGS.get(family, frozenset())
    training = TRAINING_SETTINGS.get(family, frozenset())
    validation = VALIDATION_SETTINGS.get(family, frozenset())
    apply, notes = {}, []
    for key, value in ours.items():
        if key in SIZE_KEYS or key not in theirs or _same(value, theirs[key]):
            continue
        option = f"model.init_args.{key}"
        as_run = _as_run(family, key, ours, theirs, resolved)
        if as_run is not None and as_run[0] == as_run[1]:  # two spellings of the step the checkpoint ran
            continue
        asked, had = repr(value), repr(theirs[key])
        if as_run is not None:  # name the steps where a value is not itself the step
            mine, ran, link = as_run
            asked += f" (the {mine!r} step with link {link!r})" if value != mine else ""
            had += f" (it ran the {ran!r} step)" if theirs[key] != ran else ""
        if key in validation and command == "fit":
            raise InputError(f"resuming continues the checkpoint's run, validated with {key.rsplit('.', 1)[-1]}="
                             f"{had}, but the run asks for {asked}: its epochs' valid/ metrics, and so "
                             "its best checkpoint, would be measured two ways; drop it, or start a new run to change "
                             "it (validate / test / predict take it)", path=path, field=option)
        if key in evaluation:
            apply[key] = value
            notes.append(f"note: {option}: {command} uses {asked} as asked (the checkpoint was trained with "
                         f"{had}; an evaluation setting)")
        elif key in training and command == "fit":
            raise InputError(f"resuming continues the checkpoint's run, trained with {key.rsplit('.', 1)[-1]}="
                             f"{had}, but the run asks for {asked}: drop it, or start a new run to "
                             "change it", path=path, field=option)
        elif key in training:
            notes.append(f"note: {option}: a training setting; {command} keeps the checkpoint's {had} "
                         f"(the {asked} asked for is not used)")
        else:
            raise InputError(f"the checkpoint was trained with {key.rsplit('.', 1)[-1]}={had} but the "
                             f"run asks for {asked}; this setting defines the trained model: drop it or give the "
                             "checkpoint's value", path=path, field=option)
    return apply, notes


# -- a resumed fit's data and trainer settings against the run's config.yaml ------------------------------
#: Trainer settings a resumed fit may change (``trainer.<name>``): how long it trains, on what hardware,
#: what it prints and logs. Any other trainer setting that differs from the run's config.yaml is refused
#: (it changes what the run computes: precision, gradient clipping, accumulation, batch limits, ...).
RESUME_TRAINER_SETTINGS = frozenset({
    "max_epochs", "max_steps", "max_time", "min_epochs", "min_steps", "accelerator", "devices", "num_nodes",
    "strategy", "enable_progress_bar", "enable_model_summary", "logger", "log_every_n_steps", "callbacks",
    "default_root_dir", "profiler", "num_sanity_val_steps", "detect_anomaly", "benchmark",
})


def _same_setting(key: str, a, b) -> bool:
    """:func:`_same`, two spellings of one existing file (a relative and an absolute data path), one class
    under its old and new module."""
    if _same(a, b):
        return True
    if key.endswith("class_path") and isinstance(a, str) and isinstance(b, str):  # a moved module: same class
        return a.rsplit(".", 1)[-1] == b.rsplit(".", 1)[-1]
    if isinstance(a, str) and isinstance(b, str) and os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return False


#: Top-level sections of a run's config.yaml that a resumed fit keeps (besides ``data`` and ``trainer``):
#: the seed (a resume restores every random state from the checkpoint, so another seed would be recorded
#: in ``config.resume-<n>.yaml`` but never used), the checkpoint callback (another monitor, mode or
#: save_top_k mid-run makes ``best.ckpt`` the best of two different rules), the NLB evaluation interval
#: (the epochs that have a co-bps to select on) and the optimizer / scheduler (the checkpoint's optimizer
#: state belongs to the run's).
RESUME_KEPT_SECTIONS = ("seed_everything", "checkpoint", "nlb_eval", "optimizer", "lr_scheduler")
#: Key of a checkpoint that records the run's settings of those sections and of ``data`` and ``trainer``
#: (as in its ``config.yaml``), so a checkpoint copied out of its run folder still resumes only on its data.
RUN_SETTINGS_KEY = "neurodyn_run_settings"
#: Settings under those sections a resume may change: what is printed.
RESUME_FREE_SETTINGS = frozenset({"checkpoint.verbose"})


def _is_unset(value) -> bool:
    return value is None or (hasattr(value, "get") and not _flat(value))


def _section(value):
    """A config section as plain data: a Namespace as a dict; None and a scalar (the seed) as they are."""
    return value.as_dict() if hasattr(value, "as_dict") else value


def _brief(value):
    """A whole section named by its class (``optimizer``: ``torch.optim.SGD``, not its every argument)."""
    return value["class_path"] if isinstance(value, dict) and "class_path" in value else value


def check_resumed_settings(saved: dict, current, path: str | os.PathLike, source: str = "its config.yaml",
                           given=None) -> None:
    """Refuse a resumed fit whose data, trainer, seed, checkpoint, evaluation or optimizer settings differ
    from the run's ``config.yaml`` (``saved``, the parsed file; ``current``: the resumed fit's configuration).

    A resumed run continues on its own data: the data class and every data setting (``data.init_args.*``:
    file, splits, batch size, simulation settings) must be the run's; before, ``fit --run DIR --data.path
    OTHER.h5`` trained on another file and the run's config recorded only the new one. Trainer settings
    outside :data:`RESUME_TRAINER_SETTINGS` likewise, and the sections of :data:`RESUME_KEPT_SECTIONS`
    (but :data:`RESUME_FREE_SETTINGS`). A one-line InputError names the option and both values. A checkpoint
    kept outside its run folder is compared with the settings it records (:data:`RUN_SETTINGS_KEY`,
    ``source`` "the checkpoint"). Settings
    the run's config does not record (added to neurodyn since) are not compared; model settings are
    compared with the checkpoint's by :func:`reconcile_model_settings`. ``given`` (option -> whether the user
    gave it) words the advice: a value the user did not give (a default standing in for a setting a checkpoint
    without its config.yaml recorded) is to be given as recorded, not dropped.
    """
    sections = ("data", "trainer", *RESUME_KEPT_SECTIONS)
    recorded = [name for name in sections if name in saved]
    ours = _flat({name: _section(current.get(name)) for name in recorded})
    theirs = _flat({name: _section(saved.get(name)) for name in recorded})
    # a section set on one side only (optimizer: null in the run, a class on the resume): compare its root
    for name in recorded:
        if _is_unset(saved.get(name)) != _is_unset(current.get(name)):
            ours = {k: v for k, v in ours.items() if k != name and not k.startswith(f"{name}.")}
            theirs = {k: v for k, v in theirs.items() if k != name and not k.startswith(f"{name}.")}
            ours[name], theirs[name] = _section(current.get(name)), _section(saved.get(name))
    keys = sorted(theirs, key=lambda k: (k != "data.class_path", k))  # another class first: it explains the rest
    for key in keys:
        if key not in ours or key in RESUME_FREE_SETTINGS or _same_setting(key, ours[key], theirs[key]):
            continue
        if key.startswith("trainer.") and key.split(".")[1] in RESUME_TRAINER_SETTINGS:
            continue
        option = "data" if key == "data.class_path" else key
        what = ("the run's data" if key.startswith("data") else "the run's trainer setting"
                if key.startswith("trainer.") else "the run's setting")
        advice = "drop the option, or start a new run to change it"
        if given is not None and not given(key):
            value = _brief(theirs[key])
            advice = (f"give --{option} {value} as the run did (the {_brief(ours[key])!r} here is a default)"
                      if not isinstance(value, (dict, list)) else "give the run's value as it did")
        raise InputError(f"a resumed run continues with {what}: {_brief(theirs[key])!r} in {source}, but the "
                         f"resume asks for {_brief(ours[key])!r}; {advice}", path=path, field=option)


# -- the bytes of a run's data files --------------------------------------------------------------------
#: Key under :data:`RUN_SETTINGS_KEY`: each data file the run read (``data.init_args.path`` -> its absolute
#: ``path``, ``size`` and ``sha256``), recorded when the fit starts (the DataModule's ``input_files``).
DATA_FILES_KEY = "data_files"


def record_data_files(datamodule) -> dict:
    """:data:`DATA_FILES_KEY`'s record of ``datamodule``'s input files (those it names that exist); for a prepared
    NLB file also ``train_trials``, its training rows' (NWB file SHA-256, file name, trial id) from
    :func:`neurodyn.data.prepared.trial_keys`, so ``predict`` can tell the trials the run trained on after the
    file is gone, and ``select_rows``, the rows of those the select split took (none fitted on; ``[]``: no
    select split), so it can tell the trials the model was fitted on."""
    from neurodyn.data.prepared import trial_keys
    from neurodyn.io import file_digest

    record = {}
    select = getattr(datamodule, "select_rows", None) if "select" in (getattr(datamodule, "splits", None) or {}) \
        else None
    for name in getattr(datamodule, "input_files", ()):
        value = getattr(datamodule, name, None)
        if value is not None and os.path.isfile(value):
            record[f"data.init_args.{name}"] = {"path": os.path.abspath(value), **file_digest(value)}
            trials = trial_keys(value, "train")
            if trials is not None:
                record[f"data.init_args.{name}"]["train_trials"] = [list(t) for t in trials]
                record[f"data.init_args.{name}"]["select_rows"] = [] if select is None else [int(i) for i in select]
    return record


def check_data_files(recorded, current, path: str | os.PathLike, resuming: bool) -> list[str]:
    """Compare the data files a checkpoint's run recorded (:data:`DATA_FILES_KEY`) with what those files hold
    now, where the configuration (``current``) still names the same file.

    A path is not a file's identity: a prepared file re-made in place (another split, bin width or session
    under the same name) kept its path, and a resumed fit continued on it unnoticed. Resuming a fit on a
    file whose size or SHA-256 changed is refused in one line (``path``: the checkpoint); validate / test /
    predict are told in a note (returned) that they read the file as it is now. A record that is absent (a
    checkpoint of an older neurodyn) or another file named in the config is not compared.
    """
    from neurodyn.io import file_digest

    if not isinstance(recorded, dict):
        return []
    flat = _flat({"data": _section(current.get("data"))})
    notes = []
    for option, then in recorded.items():
        value = flat.get(option)
        if (not isinstance(value, str) or not isinstance(then, dict) or not os.path.isfile(value)
                or os.path.abspath(value) != then.get("path")):
            continue
        now = file_digest(value)
        if now["size"] == then.get("size") and now["sha256"] == then.get("sha256"):
            continue
        change = (f"{value} is not the file the run read: {then.get('size')} bytes, sha256 "
                  f"{str(then.get('sha256'))[:12]}... then; {now['size']} bytes, {now['sha256'][:12]}... now")
        if resuming:
            raise InputError(f"{change}; a resumed run continues on the data it began with: put that file back, "
                             "or start a new run on this one", path=path, field=option)
        notes.append(f"note: {change} (the checkpoint's run trained on the earlier file)")
    return notes


def run_seed(recorded, current, command: str, given: bool) -> tuple[int | None, str | None]:
    """The ``seed_everything`` that validate / test / predict run with: the checkpoint's run's (``recorded``: its
    :data:`RUN_SETTINGS_KEY` settings), and a note when the user gave another (``current``, ``given``).

    Their results draw nothing from it (LangevinFlow's sampled passes and validation masks have seeds of their
    own), but a model rebuilt with another global seed records it: an HMM-GLM whose ``config.seed`` is unset
    takes torch's seed, so a prediction file's ``model_config`` named the seed given to ``predict`` as the
    training seed. A seed is a training setting, kept as the others are (:func:`reconcile_model_settings`).
    ``(None, None)`` when the checkpoint records no whole-number seed (nothing is changed)."""
    then = recorded.get("seed_everything") if isinstance(recorded, dict) else None
    if isinstance(then, bool) or not isinstance(then, int):
        return None, None
    if not given or (current == then and not isinstance(current, bool)):
        return then, None
    asked = ("random seed" if current else "no seeding") if isinstance(current, bool) else repr(current)
    return then, (f"note: seed_everything: a training setting; {command} keeps the checkpoint's {then!r} (the "
                  f"{asked} asked for is not used: {command} draws no random numbers from it)")


def sampled_batch_note(recorded, current, command: str) -> str | None:
    """A note when validate / test / predict batch the trials otherwise than the checkpoint's run
    (``recorded``: its :data:`RUN_SETTINGS_KEY` settings) and the model samples its evaluation passes
    (LangevinFlow ``eval_mode`` 'sample'): each batch draws its passes from one fixed seed, so which trials
    share a batch changes the draws, and the rates differ from those of the run's batch size (same seed,
    same checkpoint). None when nothing differs, nothing is recorded or the passes are deterministic."""
    if not isinstance(recorded, dict):
        return None
    then = _flat({"data": _section(recorded.get("data"))}).get("data.init_args.batch_size")
    now = _flat({"data": _section(current.get("data"))}).get("data.init_args.batch_size")
    mode = _flat({"model": _section(current.get("model"))}).get("model.init_args.config.eval_mode")
    if then is None or now is None or _same(then, now) or mode != "sample":
        return None
    return (f"note: data.init_args.batch_size: {command} batches {now} trials, the run {then}; eval_mode 'sample' "
            f"draws each batch's passes from one seed, so these rates differ a little from those of batches of "
            f"{then} (give --data.batch_size {then} to reproduce them)")
