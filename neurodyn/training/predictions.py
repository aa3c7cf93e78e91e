"""Predictions of a trained model: NLB metrics during training and ``neurodyn predict`` output files.

- :class:`NLBEvaluationCallback`: every few validation epochs, the full NLB metric set on the evaluation
  trials of a prepared NLB file.
- :class:`PredictionWriter`: the HDF5 file ``neurodyn predict`` writes (the NLB submission layout for
  NLB data).
"""

from __future__ import annotations

import os
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from neurodyn.data.prepared import TRIAL_IDS, WINDOW_START, group_name, trial_keys
from neurodyn.io import data_identity, output_file, write_h5_dict


class NLBEvaluationCallback(pl.Callback):
    """Every ``every_n_epochs`` validation epochs, compute the full NLB metric set on the eval trials.

    Predicts train and eval trials (train rates are needed for the velocity decoder), then calls
    :func:`neurodyn.metrics.evaluate_dataset` against the prepared file's ``eval_target`` and logs
    ``nlb/co_bps``, ``nlb/fp_bps``, ``nlb/vel_r2``, ``nlb/psth_r2`` (and ``nlb/tp_corr`` for DMFC).
    Only acts on an :class:`~neurodyn.training.datamodules.NLBDataModule` in the val phase.
    """

    def __init__(self, every_n_epochs: int = 10):
        from neurodyn.errors import InputError, whole_number

        # 0 was a ZeroDivisionError traceback at the first validation (after training); -2 scored every epoch
        if whole_number(every_n_epochs) is None or every_n_epochs < 1:
            raise InputError(f"must be a whole number >= 1 (validation epochs between NLB scorings), got "
                             f"{every_n_epochs!r}", field="nlb_eval.every_n_epochs")
        self.every_n_epochs = every_n_epochs

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        dm = trainer.datamodule
        if trainer.sanity_checking or getattr(dm, "phase", None) != "val" or not hasattr(dm, "prepared"):
            return
        if not hasattr(pl_module, "_predict_rates"):  # a switching GLM models held-in units only: no rates
            return
        if (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        from neurodyn.metrics import evaluate_dataset

        arrays = predict_arrays(pl_module, dm)
        group = nlb_submission_group(arrays, dm)
        # the file and its group named in an error, as `neurodyn evaluate` names them (it was 'mc_maze/<key>': no file)
        metrics = evaluate_dataset(dm.prepared.eval_target_group, group, group_name(dm.dataset, int(dm.bin_ms)),
                                   target_path=getattr(dm, "path", None))
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


#: prediction outputs kept in float64: log marginal likelihoods of whole sequences reach thousands of nats, where
#: float32's rounding (4e-3 nats at 5e4) exceeds the differences models are compared on
FLOAT64_KEYS = frozenset({"log_marginal"})


def _numpy(tensor: torch.Tensor, key: str = "") -> np.ndarray:
    """Floating outputs as float32 (float64 for :data:`FLOAT64_KEYS`), integer ones (state paths) as they are."""
    if tensor.is_floating_point():
        tensor = tensor.double() if key in FLOAT64_KEYS else tensor.float()
    return tensor.cpu().numpy()


def _plain(value):
    """``value`` as JSON-ready plain data (dataclasses and mappings to dicts, paths to strings)."""
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if hasattr(value, "items"):
        return {str(k): _plain(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def provenance(pl_module: pl.LightningModule, checkpoint: str | os.PathLike | None = None,
               checkpoint_info: dict | None = None) -> dict:
    """Root attributes that say what produced a prediction file (see :class:`PredictionWriter`)."""
    import json

    from neurodyn import __version__

    settings = dict(getattr(pl_module, "hparams", {}) or {})
    config = getattr(pl_module, "config", None)
    # the config the model was built with (HMM-GLM: seed filled, one-hot M-step resolved)
    if config is not None and "config" in settings:
        settings["config"] = config
    attrs = {
        "neurodyn_version": str(__version__),
        "module": type(pl_module).__name__,
        "model_config": json.dumps(_plain(settings), sort_keys=True),
    }
    model = getattr(pl_module, "model", None)
    if isinstance(model, torch.nn.Module):
        attrs["model"] = type(model).__name__
    if checkpoint is not None:
        attrs["checkpoint"] = os.path.abspath(os.fspath(checkpoint))
        for key, value in (checkpoint_info or {}).items():
            if value is not None:
                attrs[f"checkpoint_{key}"] = value
    extra = getattr(pl_module, "prediction_attrs", None)
    if extra is not None:  # family-specific (switching GLM: variant, basis, lags)
        attrs.update(extra())
    return attrs


def _same_trials(a: list, b: list) -> int:
    """How many trials of ``a`` are in ``b`` (:func:`~neurodyn.data.prepared.trial_keys`): by NWB file SHA-256
    and trial id, or, where a digest is unknown on either side, by file name and trial id (a name is the best
    identity left)."""
    by_digest = all(sha for sha, _, _ in a) and all(sha for sha, _, _ in b)
    key = (lambda r: (r[0], r[2])) if by_digest else (lambda r: (r[1], r[2]))
    theirs = {key(r) for r in b}
    return sum(key(r) in theirs for r in a)


def _session_ids(path, split: str):
    """A prepared file's ``trial_ids/<split>`` (nlb_tools' session ids) with its sources, or None."""
    import h5py

    with h5py.File(path, "r") as f:
        ids = f.get(f"trial_ids/{split}")
        if ids is None:
            return None
        return (tuple(str(v) for v in np.atleast_1d(f.attrs.get("source_sha256", []))),
                set(np.asarray(ids[()], dtype=np.int64).tolist()))


def trained_on_eval_trials(training_files, data_path) -> dict:
    """``{"trained_on_eval_trials": n, "training_data": path}``: how many evaluation trials of the prepared
    val-phase file ``data_path`` were training rows of the checkpoint's run (``training_files``: its
    recorded data files, :data:`~neurodyn.training.checkpoints.DATA_FILES_KEY`).

    A test-phase file's ``train_input`` holds the train *and* val trials (NLB's test-phase recipe trains on
    both), so a model fit on it and asked for the val file's evaluation trials predicts trials it was trained
    on, held-out units included: its val-phase scores are not held out (co-bps 0.62 against 0.52 for a model
    fit on the val file, same settings). Trials are compared as (NWB file by SHA-256 -- by name where a digest
    is unknown --, trial id within it), :data:`~neurodyn.data.prepared.TRIAL_SOURCE`, so a file prepared from
    the train NWB file alone and one prepared from the folder of both (whose session ids differ) are compared
    right. The training rows come from the checkpoint's record (``train_trials``, kept at fit time: the file
    may be gone since), else from the training file if it is still there with its size. Files without trial
    sources (older) are compared by session id only when they list the same NWB files in the same order. Empty
    when nothing can be compared: another phase, a training file that is gone or has another size than when
    it trained (re-made), no trial records.
    """
    from neurodyn.io.hdf5 import root_attrs

    if not isinstance(training_files, dict) or data_path is None or not Path(data_path).is_file():
        return {}
    if (root_attrs(data_path) or {}).get("phase") != "val":
        return {}
    scored = trial_keys(data_path, "eval")
    scored_ids = None  # session ids, read only for files without trial sources
    for record in training_files.values():
        path = record.get("path") if isinstance(record, dict) else None
        recorded = record.get("train_trials") if isinstance(record, dict) else None
        if scored is not None and isinstance(recorded, list):  # recorded at fit time: the file may be gone
            trained = [(str(sha), str(name), int(t)) for sha, name, t in recorded]
            return {"trained_on_eval_trials": _same_trials(scored, trained), "training_data": str(path)}
        if not path or not os.path.isfile(path) or os.path.getsize(path) != record.get("size"):
            continue
        trained = trial_keys(path, "train")
        if scored is not None and trained is not None:
            n = _same_trials(scored, trained)
        else:
            scored_ids = scored_ids or _session_ids(data_path, "eval")
            trained_ids = _session_ids(path, "train")
            if (scored_ids is None or trained_ids is None or scored_ids[0] != trained_ids[0]
                    or "" in scored_ids[0]):
                continue
            n = len(scored_ids[1] & trained_ids[1])
        return {"trained_on_eval_trials": int(n), "training_data": os.path.abspath(path)}
    return {}


def trained_on_select_trials(training_files, dm) -> dict:
    """``{"trained_on_select_trials": n, "select_trials": k, "training_data": path}``: how many of the ``k`` trials
    of the select split ``dm`` carved from its prepared file's training trials are trials the checkpoint's run
    was fitted on (``training_files``, its recorded data files: their training trials less its own select rows).

    ``validate`` on another prepared file of the session with a select split (the run's config carries
    ``select_fraction``) scores the select trials of that file's ``train_input``: the test-phase file's holds the
    val-phase file's training trials too, so a val-phase model's ``valid/*`` there were mostly of trials it was
    fitted on. Trials are compared as :func:`trained_on_eval_trials` compares them. Empty when nothing can be
    compared: no select split, a file or checkpoint without trial records (older ones, simulations).
    """
    path = getattr(dm, "path", None)
    rows = getattr(dm, "select_rows", None)
    if (not isinstance(training_files, dict) or path is None or rows is None
            or "select" not in (getattr(dm, "splits", None) or {}) or not Path(path).is_file()):
        return {}
    current = trial_keys(path, "train")
    if current is None or len(current) != len(dm.splits["train"]):
        return {}
    for record in training_files.values():
        if not (isinstance(record, dict) and isinstance(record.get("train_trials"), list)
                and isinstance(record.get("select_rows"), list)):
            continue
        kept = {int(i) for i in record["select_rows"]}
        fitted = [(str(sha), str(name), int(t)) for i, (sha, name, t) in enumerate(record["train_trials"])
                  if i not in kept]
        scored = [current[int(i)] for i in rows]
        return {"trained_on_select_trials": _same_trials(scored, fitted), "select_trials": len(scored),
                "training_data": str(record.get("path"))}
    return {}


#: data settings that choose no trials of the training split (or choose the select split, which run_select_split
#: reads from the run's settings)
_NOT_TRIALS = ("select_fraction", "select_seed", "batch_size", "num_workers")


def run_select_split(run_data, current_data) -> tuple[float, int] | None:
    """``(select_fraction, select_seed)`` of the checkpoint's run (``run_data``: the ``data`` section its checkpoint
    records) where the current command's ``data`` section (``current_data``) is the run's in every setting that
    decides the training trials (class, file, simulation, ``n_train``, ...: all but :data:`_NOT_TRIALS`), so that
    its ``train`` split holds the run's training trials in the run's order; else None.

    >>> run = {"class_path": "SwitchingGLMDataModule", "init_args": {"seed": 0, "select_fraction": 0.5}}
    >>> run_select_split(run, {"class_path": "SwitchingGLMDataModule", "init_args": {"seed": 0}})
    (0.5, 0)
    >>> run_select_split(run, {"class_path": "SwitchingGLMDataModule", "init_args": {"seed": 1}}) is None
    True
    """
    from neurodyn.training.checkpoints import _flat, _section

    if not isinstance(run_data, dict):
        return None
    then, now = _flat({"data": run_data}), _flat({"data": _section(current_data) or {}})

    def same(key):
        a, b = then.get(key), now.get(key)
        if key == "data.class_path":  # a class as given ("SwitchingGLMDataModule") or in full
            return str(a).rpartition(".")[2] == str(b).rpartition(".")[2]
        if key.rpartition(".")[2] in ("path", "cache") and isinstance(a, str) and isinstance(b, (str, os.PathLike)):
            return os.path.abspath(a) == os.path.abspath(b)
        return a == b

    if not all(same(k) for k in set(then) | set(now) if k.rpartition(".")[2] not in _NOT_TRIALS):
        return None
    args = run_data.get("init_args") or {}
    return float(args.get("select_fraction") or 0.0), int(args.get("select_seed") or 0)


def rows_of_run_select(dm, run_select):
    """The rows of ``dm``'s ``train`` split that the run's select split (``run_select``) left to the fit, or None: by
    ``dm``'s own rule for carving one (:meth:`~neurodyn.training.datamodules.NeuralDataModule.fit_select_rows`)."""
    if run_select is None or "train" not in getattr(dm, "splits", {}):
        return None
    fraction, seed = run_select
    if not fraction:
        return np.arange(len(dm.splits["train"]))
    return dm.fit_select_rows(fraction, seed, "data.init_args.select_fraction")[0]


def fitted_train_rows(training_files, dm, run_select=None):
    """Which rows of ``dm``'s training split the checkpoint's run was fitted on, for the Wald read-out of a switching
    GLM's ``connection_types`` (its standard errors come from the sequences the model was fitted on).

    The run records its file's training trials and the rows of them its select split took
    (:func:`~neurodyn.training.checkpoints.record_data_files`); the others are the fitted trials. An index array:
    the rows of ``dm``'s ``train`` split (all its training trials, whatever select split this command carved) that
    are those trials -- the run's own file, or another prepared file of the session holding them all (the
    test-phase file, whose ``train_input`` adds the val trials); ``False``: ``dm``'s file does not hold them all as
    training rows (a checkpoint of a test-phase file predicting the val-phase file, a file of another session):
    no read-out can be made from it. With nothing recorded to compare (a switching-GLM simulation or file, a file
    or checkpoint without trial records): the rows the run's select split (``run_select``, :func:`run_select_split`)
    left to the fit, where the data settings are the run's but for the select split (a simulation's ``predict
    --data.init_args.select_fraction 0`` read out on all its training sequences, also those the run selected on),
    else ``None``: ``dm``'s own fit split. Trials are compared as :func:`trained_on_eval_trials` compares them (NWB
    file SHA-256, else name, and trial id).
    """
    path = getattr(dm, "path", None)
    if not isinstance(training_files, dict) or path is None or not Path(path).is_file() or "train" not in dm.splits:
        return rows_of_run_select(dm, run_select)
    record = next((r for r in training_files.values()
                   if isinstance(r, dict) and isinstance(r.get("train_trials"), list)
                   and isinstance(r.get("select_rows"), list)), None)  # checkpoints before select_rows: None
    current = trial_keys(path, "train")
    if record is None or current is None:
        return rows_of_run_select(dm, run_select)
    select = {int(i) for i in record["select_rows"]}
    trained = [(str(sha), str(name), int(t)) for i, (sha, name, t) in enumerate(record["train_trials"])
               if i not in select]
    by_digest = all(r[0] for r in trained) and all(r[0] for r in current)
    key = (lambda r: (r[0], r[2])) if by_digest else (lambda r: (r[1], r[2]))
    wanted = {key(r) for r in trained}
    rows = np.array([i for i, r in enumerate(current) if key(r) in wanted], dtype=np.int64)
    return rows if len(rows) == len(wanted) else False


def window_starts(dm, group: dict) -> dict:
    """``{"train": starts, "eval": starts}`` of the prepared file behind ``dm`` when it records them for every
    row of the predicted ``group`` (same trial counts), else ``{}`` (files prepared before they were recorded)."""
    recorded = getattr(getattr(dm, "prepared", None), "window_start_ms", None) or {}
    out = {}
    for split in ("train", "eval"):
        starts = recorded.get(split)
        rates = group.get(f"{split}_rates_heldin")
        if starts is None or rates is None or len(starts) != len(rates):
            return {}
        out[split] = np.asarray(starts, dtype=np.int64)
    return out


def row_trial_ids(dm, group: dict) -> dict:
    """``{"train": ids, "eval": ids}`` (int64): the NLB trial ids (the prepared file's ``trial_ids``) of the rows of
    the predicted ``group`` when the file records them for every row of both splits (same trial counts), else
    ``{}`` (a file without them, e.g. a test-phase file prepared from the test NWB alone has no train rows)."""
    recorded = getattr(getattr(dm, "prepared", None), "trial_ids", None) or {}
    out = {}
    for split in ("train", "eval"):
        ids = recorded.get(split)
        rates = group.get(f"{split}_rates_heldin")
        if ids is None or rates is None or len(ids) != len(rates):
            return {}
        out[split] = np.asarray(ids)  # as prepare wrote them (int64): plot checks them, as the HMM-GLM files' ids
    return out


def _every_process(trainer, predictions: list[list[dict]]) -> list[list[dict]] | None:
    """Under DDP each process predicts its share of the trials: every share, in the first process (None in the
    others). Each process wrote a file of its own share before (the second one refused: the file existed)."""
    if trainer.world_size <= 1 or not torch.distributed.is_available() or not torch.distributed.is_initialized():
        return predictions
    mine = [[{k: v.cpu() if isinstance(v, torch.Tensor) else v for k, v in out.items()} for out in outputs]
            for outputs in predictions]
    shares: list = [None] * torch.distributed.get_world_size()
    torch.distributed.all_gather_object(shares, mine)
    if not trainer.is_global_zero:
        return None
    return [[out for share in shares for out in share[i]] for i in range(len(mine))]


class PredictionWriter(BasePredictionWriter):
    """Write ``neurodyn predict`` outputs to one HDF5 file (atomically).

    Layout depends on the data:

    - NLB (:class:`NLBDataModule`): the NLB submission layout, group ``<dataset>[_<bin>]`` with
      ``train_rates_heldin``, ``train_rates_heldout``, ``eval_rates_heldin``, ``eval_rates_heldout``
      and ``eval_rates_*_forward`` (spikes per bin, float32), plus ``latents/{train,eval}_{z,v}`` and, when
      the prepared file records them, ``window_start_ms/<group>/{train,eval}`` (int64: the start in ms of each
      row's first bin on its NWB file's clock, copied from the prepared file; ``evaluate`` / ``submit
      --upsample`` line a coarse group's bins up with a finer one's by them) and
      ``trial_ids/<group>/{train,eval}`` (int64: each row's NLB trial id, the prepared file's ``trial_ids``;
      ``plot`` names rows by them). Both sit beside the dataset group, which holds nlb_tools' rate arrays only.
    - LFADS / Lorenz: ``train_rates``, ``valid_rates`` (counts per bin) and ``train_z``, ``valid_v``..., and
      ``train_sequence_ids`` / ``valid_sequence_ids`` (int64: each row's index in the whole data set, the key and
      meaning of a switching-GLM simulation's rows): for the Lorenz simulation the row's trial among the simulated
      trials, for an LFADS-format file its ``train_inds`` / ``valid_inds`` (the original trial index of each
      ``train_data`` / ``valid_data`` row); a file without them gets none, its rows being those of
      ``train_data`` / ``valid_data`` in order
      (:meth:`~neurodyn.training.datamodules.sources.LFADSDataModule.sequence_ids`).
    - Switching GLM: per split (``train_``, ``valid_``) the state ``posteriors`` (sequences, bins, states),
      the ``viterbi`` path (int64) and ``log_marginal`` (nats per sequence), the NLB ``trial_ids`` of the
      rows when the data are a prepared NLB file, their ``sequence_ids`` (int64: each row's index in the
      simulation's sequences, the first axis of ``spikes`` / ``states`` of the ``neurodyn simulate
      switching-glm`` file; ``valid_`` rows start at ``n_train``) when the data are a switching-GLM simulation
      (:meth:`~neurodyn.training.datamodules.sources.SwitchingGLMDataModule.sequence_ids`); and the model:
      ``coupling`` (states, post, pre, summed over basis functions; one-hot prior: hard types, as
      ``export_model_h5`` writes it) and, for the
      one-hot prior, ``coupling_softmax`` (the softmax mixture the posteriors use), ``connection_types``
      (states, post, pre; int8, +1 excitatory, -1 inhibitory, 0 none, by the Wald read-out on the sequences
      the checkpoint's run was fitted on, as ``export_model_h5`` writes it given them; left out, with a note,
      for a prepared file that does not hold them as training rows: :func:`fitted_train_rows`; a module fitted in
      this process, no checkpoint loaded since, reads them out on the sequences it was fitted on) and, for the
      one-hot prior,
      ``connection_types_argmax`` (states, post, pre; each state's adjacency logits' ``argmax - 1`` types),
      ``transitions`` (states, states), ``initial`` (states,), ``bias`` (neurons,), and the fitted prior: one-hot
      ``connectome`` (post, pre, 3; ``softmax(Π)``, type order [inhibitory, none, excitatory], shared by the
      states), Gaussian ``shared_mean`` (post, pre).

    Every array is float32 (integer paths, types and ids as integers), except ``log_marginal``: float64 (a
    sequence's log likelihood reaches thousands of nats; float32 would round it by ~4e-3 nats at 5e4, more
    than the differences models are compared on).

    Root attributes: ``datamodule`` (class name), ``bin_ms`` (when the data state a bin width),
    ``dataset`` (NLB), ``heldin_unit_ids`` and ``heldout_unit_ids`` (int64: the NWB unit id of each held-in /
    held-out column, copied from a prepared file that records them, :func:`unit_ids`; a switching GLM's neurons
    are the held-in units: its file carries ``heldin_unit_ids`` only), and what produced the file:
    ``neurodyn_version``; ``module`` (the LightningModule class) and ``model`` (the model class:
    ``LangevinFlow``; ``GLM``, ``HMMGLM``, ``GaussianPriorHMMGLM`` or ``OneHotPriorHMMGLM``);
    ``model_config``, JSON of the module's settings as the predictions used
    them (the data sizes, ``config`` -- the model's dataclass, every field -- and the training settings,
    which are the checkpoint's); ``checkpoint`` (absolute path) with ``checkpoint_epoch``,
    ``checkpoint_global_step``, ``checkpoint_neurodyn_version`` (the version that wrote it) and
    ``checkpoint_seed_everything`` (the seed of the checkpoint's run, where it records one) when the
    weights came from a checkpoint. A switching GLM adds what ``coupling`` needs to be read: ``variant``
    (``glm``, ``hmmglm``, ``gaussian``, ``onehot``), ``n_states``, ``n_lags`` (history window in bins),
    ``basis`` (``exponential`` or ``raised_cosine``), ``n_basis`` (functions the couplings are summed
    over: 1 for the exponential basis, whatever ``config.n_basis`` says) and, for the exponential basis,
    ``decay`` and ``span``, and ``coupling_definition`` and ``connection_types_definition`` (one-hot:
    ``coupling_softmax_definition``, ``connection_types_argmax_definition``, ``connectome_definition``; Gaussian:
    ``shared_mean_definition``), what the couplings, types and prior arrays are
    (:func:`neurodyn.models.hmmglm.readout.coupling_arrays`, :func:`~neurodyn.models.hmmglm.readout.type_arrays`,
    :func:`~neurodyn.models.hmmglm.readout.prior_arrays`); one-hot prior: ``m_step_mode`` (the M-step that trained
    the model) and ``m_step_mode_definition``, as ``export_model_h5`` writes them
    (:func:`~neurodyn.models.hmmglm.evaluate.m_step_attrs`).

    Parameters
    ----------
    path
        Output file; nothing is written under this name unless prediction finishes. The output policy of
        every neurodyn command applies (:func:`neurodyn.io.output_file`): it may not be one of the inputs
        (``neurodyn predict`` names the data, the checkpoint, the configs and the run's checkpoints), and
        an existing file is replaced only with ``overwrite`` (``neurodyn predict --overwrite``).
    overwrite
        Replace an existing ``path``.

    The CLI sets ``inputs`` (files the output may not replace), ``checkpoint`` and ``checkpoint_info``
    (``epoch``, ``global_step``, ``neurodyn_version``, ``seed_everything`` of the checkpoint); without them
    the checkpoint is the trainer's ``ckpt_path``, if any. Under DDP each process predicts whole batches of the
    single-process loader (:class:`~neurodyn.training.datamodules.base.BatchShares`): the shares are gathered
    and the first process writes the file, every trial once, in the data's order -- the file one process
    writes.
    """

    def __init__(self, path: str | None = None, overwrite: bool = False):
        super().__init__(write_interval="epoch")
        self.path = path
        self.overwrite = overwrite
        self.inputs: list = []  # set by the CLI: files the prediction file may not replace
        self.checkpoint: str | None = None  # set by the CLI: the checkpoint the weights came from
        self.checkpoint_info: dict = {}  # set by the CLI: its epoch, global step, neurodyn version
        self.training_files: dict | None = None  # set by the CLI: the data files the checkpoint's run read
        self.run_select: tuple[float, int] | None = None  # set by the CLI: the run's select split (run_select_split)

    def write_on_epoch_end(self, trainer, pl_module, predictions, batch_indices) -> None:
        if self.path is None:
            raise ValueError("PredictionWriter needs a path: pass --prediction.path FILE.h5")
        dm = trainer.datamodule
        if predictions and isinstance(predictions[0], dict):  # a single dataloader
            predictions = [predictions]
        predictions = _every_process(trainer, predictions)
        if predictions is None:
            return  # another process's share: the first process writes the file
        splits = {}
        for split, outputs in zip(dm.predict_splits, predictions):
            keys = [k for k in outputs[0] if k != "index"]
            merged = {k: _numpy(torch.cat([o[k] for o in outputs]), k) for k in keys}
            index = torch.cat([o["index"] for o in outputs]).cpu().numpy()
            _, order = np.unique(index, return_index=True)  # trial order, each trial once
            if len(order) != len(dm.splits[split]):
                raise RuntimeError(f"predicted {len(order)} of the {len(dm.splits[split])} trials of the {split} "
                                   "split; nothing was written")
            splits[split] = {k: v[order] for k, v in merged.items()}
        tree: dict = {}
        columns = ("heldin",)  # the units the arrays' columns are: a switching GLM models the held-in spikes only
        if hasattr(dm, "prepared") and "rates" in splits.get("train", {}):
            columns = ("heldin", "heldout")  # the submission layout: *_heldin and *_heldout rates
            name = group_name(dm.dataset, int(dm.bin_ms))
            tree[name] = nlb_submission_group({s: splits[s]["rates"] for s in splits}, dm)
            tree["latents"] = {f"{'eval' if s == 'valid' else s}_{k}": v for s, d in splits.items()
                               for k, v in d.items() if k in ("z", "v")}
            starts = window_starts(dm, tree[name])
            if starts:
                tree[WINDOW_START] = {name: starts}
            ids = row_trial_ids(dm, tree[name])
            if ids:  # beside the dataset group, which holds nlb_tools' rate arrays only (evaluate, submit read it)
                tree[TRIAL_IDS] = {name: ids}
        else:
            for split, data in splits.items():
                for key, value in data.items():
                    tree[f"{split}_{key}"] = value
            trial_ids = getattr(getattr(dm, "prepared", None), "trial_ids", None) or {}
            for split in splits:  # NLB trial ids of the rows (prepared files: "train" / "eval")
                ids = trial_ids.get("eval" if split == "valid" else split)
                if ids is not None:
                    tree[f"{split}_trial_ids"] = np.asarray(ids)
            sequences = dm.sequence_ids() if hasattr(dm, "sequence_ids") else {}
            # each row's index in the whole data set: a switching-GLM simulation's sequence (valid row 0 is sequence
            # n_train), a Lorenz simulation's trial, an LFADS-format file's train_inds / valid_inds
            for split in splits:
                if split in sequences:
                    tree[f"{split}_sequence_ids"] = np.asarray(sequences[split], dtype=np.int64)
            extras = getattr(pl_module, "prediction_extras", None)
            if extras is not None:  # model-level outputs (switching GLM: couplings, types, transitions)
                rows = fitted_train_rows(self.training_files, dm, self.run_select)
                tree.update(extras(dm, fitted_rows=rows))
                if rows is False:
                    print(f"note: connection_types left out: their standard errors come from the trials the "
                          f"checkpoint's run was fitted on, and the training rows of {dm.path} are not those "
                          "(predict the run's own data file for them)", flush=True)
        checkpoint = self.checkpoint if self.checkpoint is not None else getattr(trainer, "ckpt_path", None)
        attrs = provenance(pl_module, checkpoint, self.checkpoint_info)
        if "connection_types" not in tree:  # no read-out written: nothing for its definition to define
            attrs.pop("connection_types_definition", None)
        leak = trained_on_eval_trials(self.training_files, getattr(dm, "path", None))
        if leak.get("trained_on_eval_trials"):
            print(f"note: the checkpoint's run trained on {leak['trained_on_eval_trials']} of these evaluation "
                  f"trials ({leak['training_data']} holds them in train_input); evaluate and submit refuse these "
                  "predictions", flush=True)
        path = Path(self.path)
        import h5py

        # the arrays' size, uncompressed: checked against the free disk and the file-size limit before h5py writes
        # (a disk that filled up under it was 150 lines of h5py errors, then a segmentation fault)
        with output_file(path, inputs=self.inputs, overwrite=self.overwrite, field="prediction.path",
                         size_bytes=_tree_nbytes(tree)) as tmp:
            with h5py.File(tmp, "w") as f:
                write_h5_dict(f, tree, compression="gzip")
                f.attrs["datamodule"] = type(dm).__name__
                if dm.bin_ms is not None:  # bins without a stated width (switching-GLM simulator): none
                    f.attrs["bin_ms"] = float(dm.bin_ms)
                if hasattr(dm, "dataset"):
                    f.attrs["dataset"] = dm.dataset
                if getattr(dm, "phase", None):  # NLB: "val" (local evaluation) or "test" (EvalAI's test phase)
                    f.attrs["phase"] = dm.phase
                for kind, ids in unit_ids(dm, columns).items():  # names the columns (a notebook labels them by it)
                    f.attrs[f"{kind}_unit_ids"] = ids
                if getattr(dm, "path", None) is not None:  # the data file the rates are of
                    f.attrs["data"] = str(Path(dm.path).resolve())
                    f.attrs.update(data_identity(dm.path))
                    f.attrs.update(leak)
                f.attrs["batch_size"] = int(dm.batch_size)  # sampled passes (eval_mode sample) draw per batch
                for key, value in attrs.items():
                    f.attrs[key] = value
        print(f"wrote predictions to {path}")


def unit_ids(dm, kinds: tuple[str, ...] = ("heldin", "heldout")) -> dict[str, np.ndarray]:
    """``{"heldin": ids, "heldout": ids}`` (int64), those of ``kinds``: the NWB unit ids of the held-in / held-out
    columns of the prepared NLB file behind ``dm`` (:data:`~neurodyn.data.prepared.UNIT_IDS`), hence of the
    predicted rates' ``*_heldin`` / ``*_heldout`` columns; ``{}`` for other data and files prepared before
    neurodyn recorded them. A switching GLM's neurons -- ``bias``, ``coupling``'s post and pre axes -- are the
    held-in units, and its file holds no held-out column: its writer asks for ``("heldin",)``, since an id
    attribute naming columns the file does not hold would mislabel a notebook's columns."""
    prepared = getattr(dm, "prepared", None)
    ids = prepared.column_ids() if hasattr(prepared, "column_ids") else {}
    return {kind: ids[kind] for kind in kinds if kind in ids}


def _tree_nbytes(tree) -> int:
    """The bytes of the arrays of a nested dict (what :func:`neurodyn.io.write_h5_dict` writes, before gzip)."""
    if isinstance(tree, dict):
        return sum(_tree_nbytes(value) for value in tree.values())
    return int(getattr(np.asarray(tree), "nbytes", 0))
