"""The batch contract and the machinery every neurodyn DataModule shares (sources: :mod:`.sources`).

All DataModules yield batch-first dictionaries of tensors:

=================  ======================  =====================================================
key                shape                   meaning
=================  ======================  =====================================================
``heldin``         (B, T, N_in) float32    held-in spike counts in the observed bins (model input)
``target``         (B, T+F, N) float32     reconstruction target, neurons ``[held-in | held-out]``,
                                           bins ``[observed | forward]``; 0 where unknown
``target_mask``    (B, T+F, N) bool        True where ``target`` is observed (False for NaN bins,
                                           test-phase held-out units, missing forward bins)
``index``          (B,) int64              row of the trial inside its split (for predictions)
``true_rates``     (B, T, N) float32       optional: ground-truth rates in counts per bin
``true_latents``   (B, T, D) float32       optional: ground-truth latent state
``true_states``    (B, T) int64            optional: ground-truth discrete states
=================  ======================  =====================================================

Every DataModule exposes the sizes a model needs, so configs never repeat them:
``n_heldin`` (N_in), ``n_neurons`` (N), ``n_obs_bins`` (T), ``n_fwd_bins`` (F), ``bin_ms`` (None for
bins without a stated width, e.g. the switching-GLM simulator's: plots then count bins, not seconds). The
training / validation split always comes from the file (or from the simulator's seeded split); it is
never re-shuffled silently. ``train_dataloader`` shuffles batches (seeded by Lightning's global seed),
``predict_dataloader`` never does. Under DDP the validation, test and predict loaders give each process whole
batches of the single-process loader (:class:`BatchShares`), so every batch is the computation one process makes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from neurodyn.errors import STORED_SEED_MAX, InputError, named, whole_number
from neurodyn.io import read_h5


@dataclass
class SplitArrays:
    """One split (train / valid / eval) as numpy arrays following the batch contract above."""

    heldin: np.ndarray
    target: np.ndarray
    target_mask: np.ndarray
    extras: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        if self.target.shape != self.target_mask.shape:
            raise ValueError(f"target {self.target.shape} and mask {self.target_mask.shape} differ")
        if len(self.heldin) != len(self.target):
            raise ValueError("heldin and target have different trial counts")

    def __len__(self) -> int:
        return len(self.heldin)


def subset(split: SplitArrays, rows: np.ndarray) -> SplitArrays:
    """The trials ``rows`` of ``split`` (extras included)."""
    return SplitArrays(split.heldin[rows], split.target[rows], split.target_mask[rows],
                       {key: value[rows] for key, value in split.extras.items()})


def data_option(name: str) -> str:
    """How a DataModule's error names its argument ``name``: as a Python caller writes it (``trials_per_condition``)
    or, inside :func:`neurodyn.errors.command_line_names` (the training commands and ``neurodyn tune`` build their
    DataModule there), as the config key ``data.init_args.trials_per_condition``.

    >>> from neurodyn.errors import command_line_names
    >>> data_option("seed")
    'seed'
    >>> with command_line_names():
    ...     data_option("seed")
    'data.init_args.seed'
    """
    return named(name, f"data.init_args.{name}")


def check_seed(value, field: str) -> None:
    """Refuse a seed ``numpy.random.default_rng`` would not take or an int64 attribute could not store, in
    one line naming ``field`` (``-1`` was numpy's ValueError traceback, exit 1).

    >>> check_seed(-1, "seed")
    Traceback (most recent call last):
    neurodyn.errors.InputError: seed: must be a whole number from 0 to 9223372036854775807, got -1
    """
    whole = whole_number(value)
    if whole is None or not 0 <= whole <= STORED_SEED_MAX:
        raise InputError(f"must be a whole number from 0 to {STORED_SEED_MAX}, got {value!r}", field=field)


def split_off(n: int, fraction: float, seed: int, field: str, *, origin=None) -> tuple[np.ndarray, np.ndarray]:
    """Seeded (fit rows, select rows) of ``n`` trials, ``max(1, round(fraction * n))`` of them selected.

    A fraction that selects every trial is refused naming ``field``; ``origin`` (called then) gives where the
    ``n`` trials come from: words that follow "the n training trials" (``"in the file"``), the refusal's file
    and the other options that decide ``n`` (:class:`~neurodyn.errors.InputError`'s ``path`` and ``involves``;
    :meth:`NeuralDataModule.training_trials_origin`).

    >>> split_off(10, 0.2, seed=0, field="select_fraction")[1].tolist()
    [4, 6]
    >>> split_off(2, 0.8, seed=0, field="f", origin=lambda: ("in the file", None, ()))
    Traceback (most recent call last):
    neurodyn.errors.InputError: f: f=0.8 selects 2 of the 2 training trials in the file, leaving none to train on
    """
    if not 0.0 < fraction < 1.0:
        raise InputError(f"must be between 0 and 1 (exclusive), got {fraction}", field=field)
    k = max(1, round(fraction * n))
    if n - k < 1:
        source, path, involves = origin() if origin is not None else ("", None, ())
        trials = f"{n} training trial{'s' * (n != 1)}" + (f" {source}" if source else "")
        raise InputError(f"{field.rpartition('.')[2]}={fraction:g} selects {k} of the {trials}, leaving none to train "
                         "on", path=path, field=field, involves=involves)
    order = np.random.default_rng(seed).permutation(n)
    return np.sort(order[k:]), np.sort(order[:k])


class _DictDataset(Dataset):
    """Index a :class:`SplitArrays` into per-trial dictionaries of tensors."""

    def __init__(self, split: SplitArrays):
        self.tensors = {
            "heldin": torch.as_tensor(split.heldin, dtype=torch.float32),
            "target": torch.as_tensor(split.target, dtype=torch.float32),
            "target_mask": torch.as_tensor(split.target_mask, dtype=torch.bool),
            "index": torch.arange(len(split), dtype=torch.int64),
        }
        for key, value in split.extras.items():
            dtype = torch.int64 if np.issubdtype(np.asarray(value).dtype, np.integer) else torch.float32
            self.tensors[key] = torch.as_tensor(value, dtype=dtype)

    def __len__(self) -> int:
        return len(self.tensors["heldin"])

    def __getitem__(self, i):
        return {key: value[i] for key, value in self.tensors.items()}


def assemble_split(
    heldin: np.ndarray,
    heldout: np.ndarray | None = None,
    heldin_forward: np.ndarray | None = None,
    heldout_forward: np.ndarray | None = None,
    *,
    n_heldout: int = 0,
    n_fwd_bins: int = 0,
    extras: dict[str, np.ndarray] | None = None,
) -> SplitArrays:
    """Build input, target and mask from the four NLB blocks; absent blocks are masked out.

    NaN counts (bins outside ``obs_intervals``) become 0 in the input and False in the mask, so no
    NaN ever reaches a model.

    Parameters
    ----------
    heldin : (n_trials, T, N_in)
    heldout : (n_trials, T, N_out) or None (e.g. test-phase evaluation trials)
    heldin_forward, heldout_forward : (n_trials, F, N_in / N_out) or None
    n_heldout, n_fwd_bins : sizes of the absent blocks, so every split has the same shape.
    """
    heldin = np.asarray(heldin, dtype=np.float32)
    n_trials, n_obs, n_in = heldin.shape
    n_out = heldout.shape[-1] if heldout is not None else n_heldout
    n_fwd = heldin_forward.shape[1] if heldin_forward is not None else n_fwd_bins
    target = np.zeros((n_trials, n_obs + n_fwd, n_in + n_out), dtype=np.float32)
    mask = np.zeros(target.shape, dtype=bool)

    def put(block, rows, cols):
        if block is None:
            return
        block = np.asarray(block, dtype=np.float32)
        ok = np.isfinite(block)
        target[:, rows, cols] = np.where(ok, block, 0.0)
        mask[:, rows, cols] = ok

    put(heldin, slice(0, n_obs), slice(0, n_in))
    put(heldout, slice(0, n_obs), slice(n_in, None))
    put(heldin_forward, slice(n_obs, None), slice(0, n_in))
    put(heldout_forward, slice(n_obs, None), slice(n_in, None))
    return SplitArrays(np.nan_to_num(heldin, nan=0.0), target, mask, dict(extras or {}))


class BatchShares(DistributedSampler):
    """The evaluation (validation, test, prediction) trials of one DDP process: whole batches of the single-process
    loader, dealt out in turn (batch ``b`` to process ``b mod num_replicas``), in order.

    Lightning's ``DistributedSampler`` deals out trials and pads the split with repeated trials to a multiple of
    the process count, so a split whose size does not divide counted some trials twice in ``valid/*`` (5 trials,
    2 processes: ``valid/loss`` 0.74953 against 0.75241 in one process), and the batches differed from a single
    process's (a masked mean per batch, a sampled pass seeded per batch). Here each batch holds the trials it
    holds in one process (predictions under DDP were made in batches of other trials: a sampled pass drew other
    noise, rates up to 37 % apart). A process with fewer batches than the first ends with a repeat of the split's
    last batch, so that every process runs as many batches (DDP's collectives stay in step; a process with no
    batch of its own would skip validation); the module counts a batch it has already seen once
    (:class:`~neurodyn.training.module.NeurodynModule`), the prediction file takes each trial once
    (:class:`~neurodyn.training.predictions.PredictionWriter`). Its trials come in order, so a ``DataLoader`` of
    ``batch_size`` cuts them into those batches (every batch but the split's last is full, and that one is the
    last of its process).
    """

    def __init__(self, dataset, batch_size: int, num_replicas: int, rank: int):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False, drop_last=False)
        n = len(dataset)
        self.batch_size = int(batch_size)
        n_batches = -(-n // self.batch_size)
        self.batches = list(range(rank, n_batches, num_replicas))
        if n_batches and len(self.batches) < -(-n_batches // num_replicas):
            self.batches.append(n_batches - 1)  # the repeat (the module counts it once)
        self.indices = [i for b in self.batches for i in range(b * self.batch_size, min(n, (b + 1) * self.batch_size))]
        self.num_samples = len(self.indices)
        self.total_size = n

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return self.num_samples


def evaluation_shares(trainer, dataset, batch_size: int) -> BatchShares | None:
    """:class:`BatchShares` for this process when ``trainer`` runs several processes and shares the data among
    them (Lightning's ``use_distributed_sampler``, on by default), else None."""
    if trainer is None or getattr(trainer, "world_size", 1) <= 1:
        return None
    connector = getattr(trainer, "_accelerator_connector", None)
    if not getattr(connector, "use_distributed_sampler", True):
        return None
    kwargs = trainer.distributed_sampler_kwargs
    if not kwargs:
        return None
    return BatchShares(dataset, batch_size, num_replicas=int(kwargs["num_replicas"]), rank=int(kwargs["rank"]))


class NeuralDataModule(pl.LightningDataModule):
    """Base class: holds named splits and serves them with the batch contract of this module.

    Subclasses fill ``self.splits`` (at least ``"train"`` and ``"valid"``) in :meth:`load`, called
    once from ``__init__`` so that sizes are known before the model is built (the CLI links them).

    Parameters
    ----------
    batch_size
        Trials per batch.
    num_workers
        DataLoader worker processes, >= 0 (0 is right for in-memory tensors).
    select_fraction
        Fraction of the training trials held out as the *select* split (seeded by ``select_seed``): the
        model trains on the rest, and validation -- ``valid/loss``, ``valid/co_bps`` and so every
        checkpoint monitor and early stop -- runs on the select trials only, never on the validation /
        evaluation trials that are reported (:meth:`carve_select`). 0 (default): no select split;
        validation then runs on the reported trials, so a checkpoint chosen on it is chosen on them.
    select_seed
        Seed of the select split.
    """

    #: splits written by ``predict``, in order
    predict_splits: tuple[str, ...] = ("train", "valid")
    #: init arguments that name a file the data are read from (None when unset): every checkpoint records
    #: each file's size and SHA-256, and a resumed fit refuses a file that no longer holds those bytes
    input_files: tuple[str, ...] = ()
    #: init arguments that name any other file the DataModule reads (the Lorenz cache). Each of these and of
    #: ``input_files`` is an input of every training command, which no output of it may be
    #: (:func:`neurodyn.training.inputs.command_inputs`)
    file_options: tuple[str, ...] = ()

    def __init__(self, batch_size: int = 64, num_workers: int = 0, select_fraction: float = 0.0,
                 select_seed: int = 0):
        super().__init__()
        if batch_size < 1:
            raise InputError(f"must be >= 1, got {batch_size}", field=data_option("batch_size"))
        if num_workers < 0:  # torch's DataLoader refused it once the first loader was made: a traceback
            raise InputError(f"must be >= 0 (0: load in the main process), got {num_workers}",
                             field=data_option("num_workers"))
        check_seed(select_seed, data_option("select_seed"))
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.splits: dict[str, SplitArrays] = {}
        self.bin_ms: float | None = None  # set by load() where the data state a bin width
        self.n_fwd_bins: int = 0
        self.load()
        if "train" not in self.splits or "valid" not in self.splits:
            raise RuntimeError(f"{type(self).__name__}.load() must define 'train' and 'valid' splits")
        self.select_fraction, self.select_seed = float(select_fraction), int(select_seed)
        if self.select_fraction:
            self.carve_select(self.select_fraction, self.select_seed)

    # -- sizes ---------------------------------------------------------------------------------
    @property
    def n_heldin(self) -> int:
        """Number of held-in (encoder input) neurons."""
        return self.splits["train"].heldin.shape[-1]

    @property
    def n_neurons(self) -> int:
        """Total neurons in the target: held-in + held-out."""
        return self.splits["train"].target.shape[-1]

    @property
    def n_obs_bins(self) -> int:
        """Observed bins per trial (T)."""
        return self.splits["train"].heldin.shape[1]

    @property
    def has_heldout(self) -> bool:
        """True when held-out neurons are observed in the split validation sees (co-bps is defined)."""
        valid = self.splits[self.val_split]
        return self.n_neurons > self.n_heldin and bool(valid.target_mask[:, : self.n_obs_bins, self.n_heldin :].any())

    @property
    def has_true_rates(self) -> bool:
        return "true_rates" in self.splits[self.val_split].extras

    @property
    def default_monitor(self) -> tuple[str, str]:
        """(metric, mode) for checkpoint selection: co-bps on held-out neurons, else the validation loss.

        Never the true rates of synthetic data (``valid/rate_r2`` is logged, not selected on): nothing a
        user could not observe chooses a checkpoint.
        """
        if self.has_heldout:
            return "valid/co_bps", "max"
        return "valid/loss", "min"

    def load(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    #: where the spike counts of the training trials (``"train"``) and of the evaluation trials (``"valid"``) are
    #: in the data file: the field :meth:`check_spikes` names
    spike_fields: dict[str, str] = {"train": "train split", "valid": "valid split"}

    def check_spikes(self, command: str) -> None:
        """Refuse, in one line naming the data file and the array, data without the spikes ``command`` needs: a
        ``fit`` whose training trials hold none (every model fitted rates of 0 and the fit exited 0: nothing
        learnt), and a ``fit`` / ``validate`` / ``test`` whose validated trials have held-out or forward bins
        without a spike (co-bps / fp-bps are undefined: the error came once validation ran, after an epoch of
        training, naming no file)."""
        path = getattr(self, "path", None)
        trained = self.spike_fields["train"]
        if command == "fit":
            split = self.splits[self.fit_split]
            if not split.target[split.target_mask].sum() > 0:
                raise InputError(f"the {len(split)} training trials hold no spikes (every count is 0): there is "
                                 "nothing to fit", path, trained)
        if command not in ("fit", "validate", "test"):
            return
        name = "valid" if command == "test" else self.val_split
        split, n_in, n_obs = self.splits[name], self.n_heldin, self.n_obs_bins
        for what, metric, rows, cols in (("held-out", "co-bps", slice(0, n_obs), slice(n_in, None)),
                                         ("forward", "fp-bps", slice(n_obs, None), slice(None))):
            mask = split.target_mask[:, rows, cols]
            if mask.any() and not split.target[:, rows, cols][mask].sum() > 0:
                field = self.spike_fields["valid"] if name == "valid" else trained
                raise InputError(f"the {len(split)} {'evaluation' if name == 'valid' else 'select'} trials hold no "
                                 f"{what} spikes (every count is 0): their {metric} is undefined", path, field)

    # -- loaders -------------------------------------------------------------------------------
    def _loader(self, split: str, shuffle: bool, shared: bool = False) -> DataLoader:
        """The loader of ``split``; ``shared`` (validation, test, prediction): under DDP this process's whole batches
        of it (:class:`BatchShares`), not Lightning's share of the trials."""
        dataset = _DictDataset(self.splits[split])
        sampler = evaluation_shares(self.trainer, dataset, self.batch_size) if shared else None
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            shuffle=shuffle,
            sampler=sampler,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    @property
    def fit_split(self) -> str:
        """The split the model is trained on: ``"fit"`` when a select split was carved, else ``"train"``."""
        return "fit" if "fit" in self.splits else "train"

    @property
    def val_split(self) -> str:
        """The split the validation loop (and so every monitor) sees: ``"select"`` if carved, else ``"valid"``."""
        return "select" if "select" in self.splits else "valid"

    def carve_select(self, fraction: float, seed: int = 0, field: str | None = None) -> str:
        """Hold out a seeded ``fraction`` of the training trials as the *select* split.

        Training then uses the other training trials (``"fit"``) and validation -- the loss, co-bps and
        every checkpoint monitor -- sees only the select trials, so nothing is chosen on the evaluation
        trials (``"valid"``), which stay for ``predict`` and the report. ``"train"`` keeps all training
        trials in file order: the prediction file still has a rate for each. Returns a description. A
        ``fraction`` that leaves no trial to train on is refused naming ``field``, the option that gave it
        (``neurodyn tune``'s ``--select-fraction``; by default ``select_fraction``, :func:`data_option`).
        """
        train = self.splits["train"]
        fit, select = self.fit_select_rows(fraction, seed, field)
        self.splits["fit"], self.splits["select"] = subset(train, fit), subset(train, select)
        self.select_rows = select
        return f"{len(select)} of the {len(train)} training trials (seed {seed})"

    def fit_select_rows(self, fraction: float, seed: int = 0,
                        field: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """``(fit rows, select rows)`` of the ``train`` split that a select split of ``fraction`` and ``seed`` carves:
        the rule :meth:`carve_select` cuts by, and that code finding a run's fitted trials again applies
        (:func:`~neurodyn.training.predictions.rows_of_run_select`), so the two cannot drift apart. Here
        :func:`split_off` of the training trials; refusals name ``field`` (default ``select_fraction``)."""
        field = data_option("select_fraction") if field is None else field
        return split_off(len(self.splits["train"]), fraction, seed, field, origin=self.training_trials_origin)

    def training_trials_origin(self) -> tuple[str, Path | None, tuple[str, ...]]:
        """Where the training trials come from, for a refusal of a select split that leaves none
        (:meth:`carve_select`): words that follow "the N training trials" (``"in the file"``), the data file
        (or None), and the init arguments that decide their number (``("path",)``; the CLI says where each
        was set, :func:`~neurodyn.training.parser_errors.combination`)."""
        return "", None, ()

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.fit_split, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_split, shuffle=False, shared=True)

    def test_dataloader(self) -> DataLoader:
        """``neurodyn test``: the report split (``"valid"``: the evaluation trials, never seen by validation
        when a select split is carved), scored once with the validation metrics, logged as ``test/*``."""
        return self._loader("valid", shuffle=False, shared=True)

    def predict_dataloader(self) -> list[DataLoader]:
        return [self._loader(split, shuffle=False, shared=True) for split in self.predict_splits]

    def describe(self) -> str:
        sizes = ", ".join(f"{name}={len(split)}" for name, split in self.splits.items())
        return (
            f"{type(self).__name__}: trials {sizes}; neurons {self.n_heldin} held-in / {self.n_neurons} total; "
            f"bins {self.n_obs_bins} observed + {self.n_fwd_bins} forward"
            + (f" of {self.bin_ms:g} ms" if self.bin_ms else " (no stated width)")
        )


def _require_file(path: str | os.PathLike, what: str) -> Path:
    with read_h5(path, what):
        pass
    return Path(path)
