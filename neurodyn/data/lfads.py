"""Read and write the LFADS / NDT ``lfads_lorenz.h5`` HDF5 layout.

Canonical keys (all flat datasets at the file root; as in ``data/lfads_lorenz.h5`` of https://github.com/snel-repo/neural-data-transformers):

==================  =====================================================================
``train_data``      ``(n_train, n_bins, n_neurons)`` spike counts per bin
``valid_data``      ``(n_valid, n_bins, n_neurons)``
``train_truth``     true rates times ``conversion_factor`` (NDT divides by it to get counts per bin)
``valid_truth``     same for the validation trials
``conversion_factor``  scalar
``train_inds``      original trial index of each training trial
``valid_inds``      same for the validation trials
==================  =====================================================================

The ``*_inds`` (optional) number each row's trial among all the trials the splits were cut from, in row order:
whole numbers >= 0 (the canonical file stores them as float64), distinct over both splits; ``neurodyn predict``
copies them into the prediction file as ``train_sequence_ids`` / ``valid_sequence_ids``
(:meth:`~neurodyn.training.datamodules.sources.LFADSDataModule.sequence_ids`).

neurodyn adds optional keys: ``train_latents`` / ``valid_latents`` (``(trials, bins, latent_dim)``),
``train_condition_ids`` / ``valid_condition_ids``, and any further arrays (``W``, ``b``,
``train_truth_lambda_sum`` ...), which the reader returns in ``extras``. Truth-like extras whose
name contains ``truth`` are stored times ``conversion_factor`` like the canonical truth.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neurodyn.errors import InputError
from neurodyn.io import atomic_path, read_h5

CANONICAL_KEYS = ("train_data", "valid_data", "train_truth", "valid_truth", "conversion_factor",
                  "train_inds", "valid_inds")
_NAMED_OPTIONAL = ("train_latents", "valid_latents", "train_condition_ids", "valid_condition_ids")


@dataclass
class LFADSData:
    """Contents of an LFADS-format file, truth in counts per bin.

    Attributes
    ----------
    train_data, valid_data
        ``(trials, bins, neurons)`` spike counts per bin.
    train_truth, valid_truth
        ``(trials, bins, neurons)`` true expected counts per bin (the file's ``*_truth`` divided by
        ``conversion_factor``), or None when the file has no truth.
    conversion_factor
        The file's scale of ``*_truth`` relative to counts per bin (neurodyn writes
        ``1000 / bin_ms``, i.e. truth stored in spikes/s).
    train_inds, valid_inds
        Original trial index of each row (int64, >= 0, distinct over both splits), or None when absent.
    train_latents, valid_latents
        ``(trials, bins, latent_dim)`` true latents, or None.
    train_condition_ids, valid_condition_ids
        ``(trials,)`` condition labels, or None.
    bin_ms
        Bin width in ms when known (neurodyn writes it as a root attribute), else None.
    extras
        Any other root-level datasets (truth-like ones, name containing ``truth``, divided by
        ``conversion_factor``).
    attrs
        Root attributes of the file.

    Examples
    --------
    >>> d = LFADSData(np.zeros((2, 5, 3)), np.zeros((1, 5, 3)))
    >>> d.n_neurons, d.n_bins
    (3, 5)
    """

    train_data: np.ndarray
    valid_data: np.ndarray
    train_truth: np.ndarray | None = None
    valid_truth: np.ndarray | None = None
    conversion_factor: float = 1.0
    train_inds: np.ndarray | None = None
    valid_inds: np.ndarray | None = None
    train_latents: np.ndarray | None = None
    valid_latents: np.ndarray | None = None
    train_condition_ids: np.ndarray | None = None
    valid_condition_ids: np.ndarray | None = None
    bin_ms: float | None = None
    extras: dict = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)

    @property
    def n_bins(self) -> int:
        """Bins per trial."""
        return int(self.train_data.shape[1])

    @property
    def n_neurons(self) -> int:
        """Number of neurons."""
        return int(self.train_data.shape[2])

    def validate(self, path: str | os.PathLike | None = None) -> None:
        """Check shapes agree; raise :class:`InputError` naming ``path`` and the offending key."""
        for key in ("train_data", "valid_data"):
            array = getattr(self, key)
            if array.ndim != 3:
                raise InputError(f"expected (trials, bins, neurons), got shape {array.shape}", path, key)
            if not np.all(np.isfinite(array)) or np.any(array < 0):
                raise InputError("spike counts must be finite and non-negative", path, key)
        if self.train_data.shape[1:] != self.valid_data.shape[1:]:
            raise InputError(f"(bins, neurons) {self.valid_data.shape[1:]} differ from train_data's "
                             f"{self.train_data.shape[1:]}", path, "valid_data")
        if (self.train_truth is None) != (self.valid_truth is None):
            raise InputError("train_truth and valid_truth must both be present or both absent", path,
                             "train_truth" if self.train_truth is None else "valid_truth")
        if not (np.isfinite(self.conversion_factor) and self.conversion_factor > 0):
            raise InputError(f"must be a positive number, got {self.conversion_factor!r}", path,
                             "conversion_factor")
        for split in ("train", "valid"):
            n_trials, n_bins, _ = getattr(self, f"{split}_data").shape
            truth = getattr(self, f"{split}_truth")
            if truth is not None and truth.shape != getattr(self, f"{split}_data").shape:
                raise InputError(f"shape {truth.shape} differs from {split}_data's "
                                 f"{getattr(self, f'{split}_data').shape}", path, f"{split}_truth")
            latents = getattr(self, f"{split}_latents")
            if latents is not None and (latents.ndim != 3 or latents.shape[:2] != (n_trials, n_bins)):
                raise InputError(f"expected ({n_trials}, {n_bins}, latent_dim), got {latents.shape}", path,
                                 f"{split}_latents")
            for key in (f"{split}_inds", f"{split}_condition_ids"):
                value = getattr(self, key)
                if value is not None and value.shape != (n_trials,):
                    raise InputError(f"expected shape ({n_trials},), got {value.shape}", path, key)
            inds = getattr(self, f"{split}_inds")
            if inds is not None and inds.size:
                # each row's trial among all the trials: predict numbers the rows by them (*_sequence_ids), and a
                # negative or repeated index names no trial, or two rows as one
                from neurodyn.data.prepared import repeated_id

                if inds.min() < 0:
                    raise InputError(f"trial indices must be >= 0, found {inds.min()}", path, f"{split}_inds")
                repeated = repeated_id(inds)
                if repeated:
                    raise InputError(f"expected distinct trial indices, found {repeated}", path, f"{split}_inds")
        if self.train_inds is not None and self.valid_inds is not None:
            if np.intersect1d(self.train_inds, self.valid_inds).size:
                raise InputError("train and valid trial indices overlap", path, "valid_inds")


def lfads_from_simulation(sim) -> LFADSData:
    """Split a :class:`~neurodyn.data.synthetic.lorenz.LorenzSimulation` into :class:`LFADSData`.

    Truth is the expected count of what is observed (counts per bin); ``conversion_factor`` is
    ``1000 / bin_ms`` so the file stores truth in spikes/s. Extras: ``*_truth_lambda_sum``
    (``sum lambda`` per bin), ``W`` ``(n_neurons, 3)``, ``b`` ``(n_neurons,)``, ``trajectories``
    ``(n_conditions, n_samples, 3)`` (normalised, 1 ms).

    Examples
    --------
    >>> from neurodyn.data.synthetic.lorenz import simulate_lorenz
    >>> d = lfads_from_simulation(simulate_lorenz(n_conditions=3, trials_per_condition=2, n_samples=100))
    >>> d.train_data.shape, d.conversion_factor
    ((5, 5, 29), 50.0)
    """
    import dataclasses

    config = sim.config
    tr, va = sim.train_inds, sim.valid_inds
    extras = {
        "train_truth_lambda_sum": sim.truth_lambda_sum[tr],
        "valid_truth_lambda_sum": sim.truth_lambda_sum[va],
        "W": sim.readout_weights,
        "b": sim.readout_bias,
        "trajectories": sim.trajectories,
    }
    attrs = {
        "generator": "neurodyn.data.synthetic.lorenz",
        "truth_kind": ("expected binary count sum(1-exp(-lambda))" if config.spikes == "binary"
                       else "expected Poisson count sum(lambda)"),
        "config": repr(dataclasses.asdict(config)),
        **{k: v for k, v in sim.seed_info.items() if v is not None},
    }
    return LFADSData(
        train_data=sim.spikes[tr], valid_data=sim.spikes[va],
        train_truth=sim.truth[tr], valid_truth=sim.truth[va],
        conversion_factor=1000.0 / config.bin_ms,
        train_inds=tr, valid_inds=va,
        train_latents=sim.latents[tr], valid_latents=sim.latents[va],
        train_condition_ids=sim.condition_ids[tr], valid_condition_ids=sim.condition_ids[va],
        bin_ms=float(config.bin_ms), extras=extras, attrs=attrs,
    )


def write_lfads_h5(path: str | os.PathLike, data, *, compression: str | None = "gzip") -> Path:
    """Write an LFADS-format file atomically (a failure leaves no file under ``path``).

    Parameters
    ----------
    path
        Output ``.h5`` file; its folder is created.
    data
        An :class:`LFADSData`, or anything with a ``to_lfads()`` method returning one (e.g.
        :class:`neurodyn.data.synthetic.lorenz.LorenzSimulation`). Truth is given in counts per bin
        and stored times ``conversion_factor``.
    compression
        h5py compression filter for arrays (``None`` for none).

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "x.h5"
    >>> d = LFADSData(np.ones((2, 5, 3)), np.ones((1, 5, 3)), np.ones((2, 5, 3)), np.ones((1, 5, 3)))
    >>> float(read_lfads_h5(write_lfads_h5(out, d)).train_truth.mean())
    1.0
    """
    import h5py

    if not isinstance(data, LFADSData):
        data = data.to_lfads()
    data.validate(path)
    factor = float(data.conversion_factor)
    arrays = {"train_data": data.train_data, "valid_data": data.valid_data}
    if data.train_truth is not None:
        arrays["train_truth"] = data.train_truth * factor
        arrays["valid_truth"] = data.valid_truth * factor
    for key in ("train_inds", "valid_inds", *_NAMED_OPTIONAL):
        if getattr(data, key) is not None:
            arrays[key] = getattr(data, key)
    for key, value in data.extras.items():
        if key in CANONICAL_KEYS or key in _NAMED_OPTIONAL:
            raise InputError("extras may not shadow a named key", path, key)
        arrays[key] = np.asarray(value) * factor if "truth" in key else value
    path = Path(path)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        for key, value in arrays.items():
            value = np.asarray(value)
            kwargs = {"compression": compression} if compression and value.ndim > 0 else {}
            f.create_dataset(key, data=value, **kwargs)
        f.create_dataset("conversion_factor", data=factor)
        for key, value in data.attrs.items():
            f.attrs[key] = value
        if data.bin_ms is not None:
            f.attrs["bin_ms"] = float(data.bin_ms)
    return path


def read_lfads_h5(path: str | os.PathLike, *, require_truth: bool = True) -> LFADSData:
    """Read an LFADS-format file (the canonical ``lfads_lorenz.h5`` or one written by neurodyn).

    Only ``train_data`` and ``valid_data`` are always required; with ``require_truth`` (default)
    ``train_truth``, ``valid_truth`` and ``conversion_factor`` are too. Truth is returned in counts
    per bin (stored value / ``conversion_factor``, the NDT convention). Input is never modified.

    Parameters
    ----------
    path
        The ``.h5`` file.
    require_truth
        Raise if the truth keys are missing (set False for real data in this layout).

    Returns
    -------
    LFADSData

    Raises
    ------
    InputError
        Missing file, not HDF5, a missing key, or shapes that disagree; the message names the file
        and the key.

    Examples
    --------
    >>> read_lfads_h5("data/lfads_lorenz.h5")  # doctest: +SKIP
    """
    import h5py

    path = Path(path)
    with read_h5(path, "LFADS-format file") as f:
        required = ["train_data", "valid_data"]
        if require_truth:
            required += ["train_truth", "valid_truth", "conversion_factor"]
        for key in required:
            if key not in f:
                raise InputError("missing key", path, key)
            if not isinstance(f[key], h5py.Dataset):
                raise InputError("expected a dataset, found a group", path, key)
        values = {}
        for key, item in f.items():
            if isinstance(item, h5py.Dataset):
                values[key] = item[()]
        attrs = {key: _plain(value) for key, value in f.attrs.items()}

    factor = 1.0
    if "conversion_factor" in values:
        raw = np.asarray(values.pop("conversion_factor"), dtype=np.float64)
        if raw.size != 1:
            raise InputError(f"expected a scalar, got shape {raw.shape}", path, "conversion_factor")
        factor = float(raw.reshape(()))
        if not (np.isfinite(factor) and factor > 0):
            raise InputError(f"must be a positive number, got {factor!r}", path, "conversion_factor")

    def take(key, dtype=None):
        value = values.pop(key, None)
        if value is None:
            return None
        return np.asarray(value) if dtype is None else np.asarray(value).astype(dtype).reshape(-1)

    named = {"train_data": take("train_data"), "valid_data": take("valid_data")}
    for key in ("train_truth", "valid_truth"):
        truth = take(key)
        named[key] = None if truth is None else np.asarray(truth, dtype=np.float64) / factor
    for key in ("train_inds", "valid_inds"):  # the canonical file stores them as float64 (whole numbers)
        if key in values:
            fraction = _not_whole(np.asarray(values[key]))
            if fraction:  # astype(int64) made 2.5 trial 2, and NaN some large negative number
                raise InputError(f"trial indices must be whole numbers, found {fraction}", path, key)
        named[key] = take(key, np.int64)
    for key in ("train_condition_ids", "valid_condition_ids"):
        named[key] = take(key, np.int64)
    for key in ("train_latents", "valid_latents"):
        named[key] = take(key)
    extras = {key: (np.asarray(v, dtype=np.float64) / factor if "truth" in key else v)
              for key, v in values.items()}
    bin_ms = attrs.get("bin_ms")
    bin_ms = float(bin_ms) if isinstance(bin_ms, (int, float)) and bin_ms > 0 else None
    data = LFADSData(**named, conversion_factor=factor, bin_ms=bin_ms, extras=extras, attrs=attrs)
    data.validate(path)
    return data


def _not_whole(values: np.ndarray) -> str:
    """``""`` when ``values`` are integers, or floats that are whole numbers within int64; else the first value that
    is not (``"2.5"``, ``"nan"``), or the dtype of values that are no numbers."""
    if values.dtype.kind in "iu":
        return ""
    if values.dtype.kind != "f":
        return str(values.dtype)
    flat = values.reshape(-1)
    with np.errstate(invalid="ignore"):
        bad = ~(np.isfinite(flat) & (flat == np.round(flat)) & (np.abs(flat) < 2.0**63))
    return repr(float(flat[np.flatnonzero(bad)[0]])) if bad.any() else ""


def _plain(value):
    """HDF5 attribute -> plain Python (bytes decoded, 0-d arrays unwrapped)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value.item()
    if isinstance(value, np.generic):
        return value.item()
    return value
