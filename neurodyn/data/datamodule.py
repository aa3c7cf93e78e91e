"""Lightning DataModules shared by every neurodyn model family.

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
``n_heldin`` (N_in), ``n_neurons`` (N), ``n_obs_bins`` (T), ``n_fwd_bins`` (F), ``bin_ms``. The
training / validation split always comes from the file (or from the simulator's seeded split); it is
never re-shuffled silently. ``train_dataloader`` shuffles batches (seeded by Lightning's global seed),
``predict_dataloader`` never does.

Sources:

- :class:`NLBDataModule` -- a file written by ``neurodyn prepare`` (NWB parsed once).
- :class:`LFADSDataModule` -- an LFADS/NDT-layout HDF5 file such as ``lfads_lorenz.h5``.
- :class:`LorenzDataModule` -- the LFADS Lorenz simulator, generated in memory (optionally cached).
- :class:`SwitchingGLMDataModule` -- the one-hot HMM-GLM paper's switching-GLM simulator, or its HDF5.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from neurodyn.errors import InputError
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


class NeuralDataModule(pl.LightningDataModule):
    """Base class: holds named splits and serves them with the batch contract of this module.

    Subclasses fill ``self.splits`` (at least ``"train"`` and ``"valid"``) in :meth:`load`, called
    once from ``__init__`` so that sizes are known before the model is built (the CLI links them).

    Parameters
    ----------
    batch_size
        Trials per batch.
    num_workers
        DataLoader worker processes (0 is right for in-memory tensors).
    """

    #: splits written by ``predict``, in order
    predict_splits: tuple[str, ...] = ("train", "valid")

    def __init__(self, batch_size: int = 64, num_workers: int = 0):
        super().__init__()
        if batch_size < 1:
            raise InputError(f"must be >= 1, got {batch_size}", field="data.batch_size")
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.splits: dict[str, SplitArrays] = {}
        self.bin_ms: float = 1.0
        self.n_fwd_bins: int = 0
        self.load()
        if "train" not in self.splits or "valid" not in self.splits:
            raise RuntimeError(f"{type(self).__name__}.load() must define 'train' and 'valid' splits")

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
        """True when held-out neurons are observed in the validation split (co-bps is defined)."""
        valid = self.splits["valid"]
        return self.n_neurons > self.n_heldin and bool(valid.target_mask[:, : self.n_obs_bins, self.n_heldin :].any())

    @property
    def has_true_rates(self) -> bool:
        return "true_rates" in self.splits["valid"].extras

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

    # -- loaders -------------------------------------------------------------------------------
    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        return DataLoader(
            _DictDataset(self.splits[split]),
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("valid", shuffle=False)

    def predict_dataloader(self) -> list[DataLoader]:
        return [self._loader(split, shuffle=False) for split in self.predict_splits]

    def describe(self) -> str:
        sizes = ", ".join(f"{name}={len(split)}" for name, split in self.splits.items())
        return (
            f"{type(self).__name__}: trials {sizes}; neurons {self.n_heldin} held-in / {self.n_neurons} total; "
            f"bins {self.n_obs_bins} observed + {self.n_fwd_bins} forward of {self.bin_ms:g} ms"
        )


def _require_file(path: str | os.PathLike, what: str) -> Path:
    with read_h5(path, what):
        pass
    return Path(path)


class NLBDataModule(NeuralDataModule):
    """Trials of a prepared NLB file (``neurodyn prepare``), in the nlb_tools split semantics.

    ``train`` = the file's ``train_input`` trials (held-in, held-out, forward blocks);
    ``valid`` = the evaluation trials: held-in input from ``eval_input``, and, in the val phase, the
    held-out and forward targets from ``eval_target``; in the test phase only the held-in target is
    observed (the held-out truth lives on EvalAI), so validation measures held-in reconstruction.

    Parameters
    ----------
    path
        A file written by ``neurodyn prepare``.
    batch_size, num_workers
        See :class:`NeuralDataModule`.
    """

    predict_splits = ("train", "valid")

    def __init__(self, path: str, batch_size: int = 64, num_workers: int = 0):
        self.path = Path(path)
        super().__init__(batch_size=batch_size, num_workers=num_workers)

    def load(self) -> None:
        path = _require_file(self.path, "prepared NLB file")
        from neurodyn.data.prepare import load_prepared

        prep = load_prepared(path)
        self.prepared = prep
        self.dataset = prep.dataset
        self.bin_ms = float(prep.bin_ms)
        self.phase = prep.phase
        if not prep.train_input:
            raise InputError("no train_input group (prepared from a test file alone?)", path=path, field="train_input")
        tr = prep.train_input
        n_heldout = tr["train_spikes_heldout"].shape[-1]
        n_fwd = tr["train_spikes_heldin_forward"].shape[1] if "train_spikes_heldin_forward" in tr else 0
        self.n_fwd_bins = n_fwd
        self.splits["train"] = assemble_split(
            tr["train_spikes_heldin"],
            tr["train_spikes_heldout"],
            tr.get("train_spikes_heldin_forward"),
            tr.get("train_spikes_heldout_forward"),
        )
        ev_in = prep.eval_input or {}
        if "eval_spikes_heldin" not in ev_in:
            raise InputError("missing array", path=path, field="eval_input/eval_spikes_heldin")
        target = prep.eval_target_group or {}
        self.splits["valid"] = assemble_split(
            ev_in["eval_spikes_heldin"],
            target.get("eval_spikes_heldout", ev_in.get("eval_spikes_heldout")),
            target.get("eval_spikes_heldin_forward"),
            target.get("eval_spikes_heldout_forward"),
            n_heldout=n_heldout,
            n_fwd_bins=n_fwd,
        )


class LFADSDataModule(NeuralDataModule):
    """Trials of an LFADS/NDT-layout HDF5 file (``train_data`` / ``valid_data`` [+ truth]).

    All neurons are held-in and there are no forward bins; ``true_rates`` (counts per bin) and
    ``true_latents`` are attached when the file has them.
    """

    predict_splits = ("train", "valid")

    def __init__(self, path: str, batch_size: int = 64, num_workers: int = 0):
        self.path = Path(path)
        super().__init__(batch_size=batch_size, num_workers=num_workers)

    def _from_lfads(self, data) -> None:
        self.lfads = data
        self.bin_ms = float(getattr(data, "bin_ms", None) or 20.0)
        for split in ("train", "valid"):
            extras = {}
            truth = getattr(data, f"{split}_truth", None)
            if truth is not None:
                extras["true_rates"] = np.asarray(truth, dtype=np.float32)
            latents = getattr(data, f"{split}_latents", None)
            if latents is not None:
                extras["true_latents"] = np.asarray(latents, dtype=np.float32)
            self.splits[split] = assemble_split(getattr(data, f"{split}_data"), extras=extras)

    def load(self) -> None:
        from neurodyn.data.lfads import read_lfads_h5

        self._from_lfads(read_lfads_h5(_require_file(self.path, "LFADS-format file")))


class LorenzDataModule(LFADSDataModule):
    """The LFADS Lorenz benchmark (``lorenz.md``), simulated in memory from a seed.

    Parameters
    ----------
    n_conditions, trials_per_condition, n_neurons
        Simulator sizes (defaults: the canonical 65 x 24 trials, 29 neurons).
    seed
        Simulator seed (independent of the training seed).
    cache
        Optional path: the simulated LFADS-layout file is written there once and read afterwards.
    """

    def __init__(
        self,
        n_conditions: int = 65,
        trials_per_condition: int = 24,
        n_neurons: int = 29,
        seed: int = 0,
        cache: str | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
    ):
        self.sim_kwargs = dict(
            n_conditions=n_conditions, trials_per_condition=trials_per_condition, n_neurons=n_neurons, seed=seed
        )
        self.cache = None if cache is None else Path(cache)
        NeuralDataModule.__init__(self, batch_size=batch_size, num_workers=num_workers)

    def load(self) -> None:
        from neurodyn.data.lfads import read_lfads_h5, write_lfads_h5
        from neurodyn.data.synthetic.lorenz import simulate_lorenz

        if self.cache is not None and self.cache.is_file():
            self._from_lfads(read_lfads_h5(self.cache))
            return
        sim = simulate_lorenz(**self.sim_kwargs)
        if self.cache is not None:
            write_lfads_h5(self.cache, sim)
            self._from_lfads(read_lfads_h5(self.cache))
        else:
            from neurodyn.data.lfads import lfads_from_simulation

            self._from_lfads(lfads_from_simulation(sim))


class SwitchingGLMDataModule(NeuralDataModule):
    """Sequences of the switching-GLM simulator (``hmmglm.md``) or of its HDF5 file.

    Each item is one whole sequence: ``heldin`` = ``target`` = spikes (T bins, N neurons), with
    ``true_states`` attached. The first ``n_train`` sequences train, the rest validate (the paper's
    split: 30 / 20 of 50).

    Parameters
    ----------
    path
        HDF5 written by ``neurodyn simulate switching-glm``; if None, simulate with the arguments below.
    n_states, n_neurons, n_sequences, n_bins, seed
        Simulator arguments (paper: 5, 20, 50, 2000).
    n_train
        Sequences used for training; the rest are validation.
    """

    def __init__(
        self,
        path: str | None = None,
        n_states: int = 5,
        n_neurons: int = 20,
        n_sequences: int = 50,
        n_bins: int = 2000,
        seed: int = 0,
        n_train: int = 30,
        batch_size: int = 30,
        num_workers: int = 0,
    ):
        self.path = None if path is None else Path(path)
        self.sim_kwargs = dict(
            n_states=n_states, n_neurons=n_neurons, n_sequences=n_sequences, n_bins=n_bins, seed=seed
        )
        self.n_train = n_train
        super().__init__(batch_size=batch_size, num_workers=num_workers)

    def load(self) -> None:
        from neurodyn.data.synthetic import switching_glm as sg

        if self.path is not None:
            sim = sg.read_switching_glm_h5(_require_file(self.path, "switching-GLM file"))
        else:
            sim = sg.simulate_switching_glm(**self.sim_kwargs)
        self.simulation = sim
        spikes = np.asarray(sim.spikes, dtype=np.float32)
        states = np.asarray(sim.states, dtype=np.int64)
        if not 0 < self.n_train < len(spikes):
            raise InputError(
                f"must be between 1 and {len(spikes) - 1} (file has {len(spikes)} sequences)", field="data.n_train"
            )
        for name, rows in (("train", slice(0, self.n_train)), ("valid", slice(self.n_train, None))):
            self.splits[name] = assemble_split(spikes[rows], extras={"true_states": states[rows]})


class ArrayDataModule(NeuralDataModule):
    """Splits given directly as arrays (notebooks, benchmarks, custom pipelines).

    Parameters
    ----------
    train, valid
        :class:`SplitArrays`, e.g. from :func:`assemble_split`.
    bin_ms
        Bin width in milliseconds.
    n_fwd_bins
        Forward-prediction bins at the end of ``target`` (0 if none).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).poisson(0.3, (10, 20, 5)).astype(float)
    >>> dm = ArrayDataModule(assemble_split(x[:8, :, :3], x[:8, :, 3:]),
    ...                      assemble_split(x[8:, :, :3], x[8:, :, 3:]), bin_ms=20, batch_size=4)
    >>> dm.n_heldin, dm.n_neurons, dm.default_monitor
    (3, 5, ('valid/co_bps', 'max'))
    """

    def __init__(self, train: SplitArrays, valid: SplitArrays, bin_ms: float = 20.0, n_fwd_bins: int = 0,
                 batch_size: int = 64, num_workers: int = 0):
        self._given = {"train": train, "valid": valid}
        self._bin_ms, self._n_fwd = float(bin_ms), int(n_fwd_bins)
        super().__init__(batch_size=batch_size, num_workers=num_workers)

    def load(self) -> None:
        self.splits.update(self._given)
        self.bin_ms, self.n_fwd_bins = self._bin_ms, self._n_fwd
