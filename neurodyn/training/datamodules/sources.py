"""The DataModules of each data source (batch contract and shared machinery: :mod:`.base`).

- :class:`NLBDataModule` -- a file written by ``neurodyn prepare`` (NWB parsed once).
- :class:`LFADSDataModule` -- an LFADS/NDT-layout HDF5 file such as ``lfads_lorenz.h5``.
- :class:`LorenzDataModule` -- the LFADS Lorenz simulator, generated in memory (optionally cached).
- :class:`SwitchingGLMDataModule` -- the one-hot HMM-GLM paper's switching-GLM simulator, or its HDF5.
- :class:`ArrayDataModule` -- in-memory arrays.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from neurodyn.data.synthetic.switching_glm import DEFAULT_N_TRAIN
from neurodyn.errors import InputError, named, one_line
from neurodyn.training.datamodules.base import (
    NeuralDataModule,
    SplitArrays,
    _require_file,
    assemble_split,
    check_seed,
    data_option,
    split_off,
)


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
    batch_size, num_workers, select_fraction, select_seed
        See :class:`NeuralDataModule`. Without a select split (``select_fraction`` 0) validation runs on
        the evaluation trials, so choose nothing on it (predict from ``last.ckpt``).
    dataset
        The NLB dataset the config's recipe was written for (every shipped NLB config sets it), or None.
        ``fit`` on a prepared file of another dataset prints a note (epochs, batch size and model size were
        chosen for that dataset's trials); nothing is refused.
    """

    predict_splits = ("train", "valid")
    input_files = ("path",)

    def __init__(self, path: str, batch_size: int = 64, num_workers: int = 0, select_fraction: float = 0.0,
                 select_seed: int = 0, dataset: str | None = None):
        from neurodyn.data.nlb import DATASET_NAMES

        if dataset is not None and dataset not in DATASET_NAMES:
            raise InputError(f"unknown NLB dataset {dataset!r} (known: {', '.join(DATASET_NAMES)})",
                             field=data_option("dataset"))
        self.recipe_dataset = dataset
        self.path = Path(path)
        super().__init__(batch_size=batch_size, num_workers=num_workers, select_fraction=select_fraction,
                         select_seed=select_seed)

    def load(self) -> None:
        path = _require_file(self.path, "prepared NLB file")
        from neurodyn.data.prepared import group_name, load_prepared

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
        held = (f"eval_target/{group_name(prep.dataset, int(prep.bin_ms))}" if "eval_spikes_heldout" in target
                else "eval_input")
        self.spike_fields = {"train": "train_input", "valid": held}
        # a file prepared with --no-forward has no forward bins in train_input: the model predicts none, so the
        # eval target's forward spikes (nlb_tools keeps them there) are left out of the validation split too
        self.splits["valid"] = assemble_split(
            ev_in["eval_spikes_heldin"],
            target.get("eval_spikes_heldout", ev_in.get("eval_spikes_heldout")),
            target.get("eval_spikes_heldin_forward") if n_fwd else None,
            target.get("eval_spikes_heldout_forward") if n_fwd else None,
            n_heldout=n_heldout,
            n_fwd_bins=n_fwd,
        )

    def training_trials_origin(self) -> tuple[str, Path | None, tuple[str, ...]]:
        return "in the file", self.path, ("path",)

    def recipe_note(self) -> str | None:
        """A note when the file holds another NLB dataset than the one the config was written for."""
        if self.recipe_dataset is None or self.recipe_dataset == self.dataset:
            return None
        return (f"note: data.init_args.dataset: the config is the recipe for {self.recipe_dataset}; {self.path} "
                f"holds {self.dataset} (its epochs, batch size and model size were chosen for "
                f"{self.recipe_dataset}'s trials)")


class LFADSDataModule(NeuralDataModule):
    """Trials of an LFADS/NDT-layout HDF5 file (``train_data`` / ``valid_data`` [+ truth]).

    All neurons are held-in and there are no forward bins; ``true_rates`` (counts per bin) and
    ``true_latents`` are attached when the file has them. The bin width is the file's ``bin_ms`` attribute
    (neurodyn's simulators write it); a file without one has bins of no stated width (``bin_ms`` None).

    Parameters
    ----------
    path
        The LFADS-layout file.
    batch_size, num_workers, select_fraction, select_seed
        See :class:`NeuralDataModule`: with ``select_fraction`` the checkpoint is chosen on training
        trials held out from the fit, and the ``valid`` trials are only reported.
    """

    predict_splits = ("train", "valid")
    input_files = ("path",)

    def __init__(self, path: str, batch_size: int = 64, num_workers: int = 0, select_fraction: float = 0.0,
                 select_seed: int = 0):
        self.path = Path(path)
        super().__init__(batch_size=batch_size, num_workers=num_workers, select_fraction=select_fraction,
                         select_seed=select_seed)

    def _from_lfads(self, data) -> None:
        self.lfads = data
        bin_ms = getattr(data, "bin_ms", None)
        self.bin_ms = None if bin_ms is None else float(bin_ms)
        for split in ("train", "valid"):
            extras = {}
            truth = getattr(data, f"{split}_truth", None)
            if truth is not None:
                extras["true_rates"] = np.asarray(truth, dtype=np.float32)
            latents = getattr(data, f"{split}_latents", None)
            if latents is not None:
                extras["true_latents"] = np.asarray(latents, dtype=np.float32)
            self.splits[split] = assemble_split(getattr(data, f"{split}_data"), extras=extras)

    spike_fields = {"train": "train_data", "valid": "valid_data"}

    def load(self) -> None:
        from neurodyn.data.lfads import read_lfads_h5

        self._from_lfads(read_lfads_h5(_require_file(self.path, "LFADS-format file")))

    def training_trials_origin(self) -> tuple[str, Path | None, tuple[str, ...]]:
        return "in the file", self.path, ("path",)

    def sequence_ids(self) -> dict[str, np.ndarray]:
        """``{"train": ids, "valid": ids}`` (int64): the number of each split row's trial among all the trials the
        file's splits were cut from, the file's ``train_inds`` / ``valid_inds`` (the LFADS format's original trial
        index of each ``train_data`` / ``valid_data`` row, in row order), which ``predict`` records as
        ``<split>_sequence_ids`` -- the key a switching-GLM simulation's rows are numbered by, with the same
        meaning: the row's index in the whole data set. For the Lorenz simulation that is the trial's index among
        the simulated trials (the first axis of :class:`~neurodyn.data.synthetic.lorenz.LorenzSimulation`'s
        ``spikes``; its cache file and ``neurodyn simulate lorenz`` record them as ``*_inds``). A split the file
        does not number is left out: its rows are those of ``<split>_data``, in order, as their position says
        (the ``train`` split keeps every training row in file order, a select split carved from it or not)."""
        return {split: np.asarray(ids, dtype=np.int64) for split in ("train", "valid")
                if (ids := getattr(self.lfads, f"{split}_inds", None)) is not None}


class LorenzDataModule(LFADSDataModule):
    """The LFADS Lorenz benchmark, simulated in memory from a seed.

    The benchmark of Sussillo et al. 2016 (arXiv:1608.06315) and Pandarinath et al. 2018
    (https://doi.org/10.1038/s41592-018-0109-9).

    Parameters
    ----------
    n_conditions, trials_per_condition, n_neurons
        Simulator sizes (defaults: the canonical 65 x 24 trials, 29 neurons). The simulator trains on
        ``round(0.8 x trials)`` of the trials and validates on the rest, so 2 trials or fewer are refused.
    seed
        Simulator seed (independent of the training seed).
    cache
        Optional path: the simulated LFADS-layout file is written there once and read afterwards, when the
        simulation it records (its ``config`` and ``seed`` attributes, as every neurodyn Lorenz file has) is
        this one; a file holding another simulation or none is refused (``cache``), never read as if
        it were this one and never replaced.
    batch_size, num_workers, select_fraction, select_seed
        See :class:`NeuralDataModule`.
    """

    input_files = ()  # the cache records its simulation and is checked against it
    file_options = ("cache",)  # read where it exists: an input of every command (predict may not write over it)

    def __init__(
        self,
        n_conditions: int = 65,
        trials_per_condition: int = 24,
        n_neurons: int = 29,
        seed: int = 0,
        cache: str | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        select_fraction: float = 0.0,
        select_seed: int = 0,
    ):
        check_seed(seed, data_option("seed"))
        self.sim_kwargs = dict(
            n_conditions=n_conditions, trials_per_condition=trials_per_condition, n_neurons=n_neurons, seed=seed
        )
        self.cache = None if cache is None else Path(cache)
        NeuralDataModule.__init__(self, batch_size=batch_size, num_workers=num_workers,
                                  select_fraction=select_fraction, select_seed=select_seed)

    def load(self) -> None:
        from neurodyn.data.lfads import read_lfads_h5, write_lfads_h5
        from neurodyn.data.synthetic.lorenz import simulate_lorenz

        if self.cache is not None and os.path.lexists(self.cache):
            self._check_cache()
            self._from_lfads(read_lfads_h5(self.cache))
            return
        if self.cache is not None:
            from neurodyn.io.output import check_output

            # before the simulation: a cache under a file (afile/c.h5), in a read-only folder, a device
            check_output(self.cache, overwrite=True, field=data_option("cache"))
        try:
            sim = simulate_lorenz(**self.sim_kwargs)
        except InputError as err:
            if err.field != "train_fraction":
                raise
            # the simulator's train/valid split of too few trials: its train_fraction is no option here, the
            # trial count is n_conditions x trials_per_condition (the CLI says where each was set)
            from neurodyn.data.synthetic.lorenz import LorenzConfig

            conditions, per_condition = self.sim_kwargs["n_conditions"], self.sim_kwargs["trials_per_condition"]
            n, fraction = conditions * per_condition, LorenzConfig().train_fraction
            raise InputError(f"n_conditions x trials_per_condition = {conditions} x {per_condition} = {n} trials leave "
                             f"no validation trial (the simulator trains on round({fraction:g} x {n}) = "
                             f"{round(fraction * n)} of them)", field=data_option("trials_per_condition"),
                             involves=("n_conditions",)) from None
        if self.cache is not None:
            from neurodyn.io.output import disk_full

            try:
                write_lfads_h5(self.cache, sim)
            except OSError as err:  # atomic: nothing is left under the cache's name
                field = data_option("cache")
                raise (disk_full(err, self.cache, field) or InputError(
                    f"cannot write the cache ({one_line(err, 160)})", self.cache, field)) from None
            self._from_lfads(read_lfads_h5(self.cache))
        else:
            from neurodyn.data.lfads import lfads_from_simulation

            self._from_lfads(lfads_from_simulation(sim))

    def training_trials_origin(self) -> tuple[str, Path | None, tuple[str, ...]]:
        sizes = self.sim_kwargs
        return (f"of the simulation ({sizes['n_conditions']} x {sizes['trials_per_condition']} trials)", None,
                ("n_conditions", "trials_per_condition"))

    def _check_cache(self) -> None:
        """Refuse a cache file that does not record this simulation (seed and simulator settings)."""
        from neurodyn.data.synthetic.lorenz import simulation_record
        from neurodyn.io.hdf5 import check_input_file, root_attrs

        sizes = {k: v for k, v in self.sim_kwargs.items() if k != "seed"}
        want = simulation_record(self.sim_kwargs["seed"], **sizes)
        field = data_option("cache")
        if self.cache.is_dir():
            raise InputError("is a folder, expected the Lorenz cache file", self.cache, field)
        check_input_file(self.cache, "the Lorenz cache file", field)  # a FIFO: reading it would wait
        attrs = root_attrs(self.cache)
        if attrs is None:
            raise InputError("is not an HDF5 file (expected a Lorenz cache written by neurodyn)", self.cache, field)
        have = {k: attrs.get(k) for k in want}
        if have != want:
            held = ("no simulation recorded" if have["config"] is None else
                    "another simulation" + (f" (seed {have['seed']})" if have["seed"] != want["seed"] else
                                            " (other settings)"))
            # the line starts with the option (data.init_args.cache under a command); --data.cache is fit's spelling
            # only (neurodyn tune reads config files)
            another = named("pass another cache", "name another cache file")
            raise InputError(f"holds {held}, not seed {want['seed']} with {sizes}; delete it or {another}", self.cache,
                             field)


class SwitchingGLMDataModule(NeuralDataModule):
    """Sequences of the switching-GLM simulator (Li et al., ICLR 2024) or of its HDF5 file.

    Each item is one whole sequence: ``heldin`` = ``target`` = spikes (T bins, N neurons), with
    ``true_states`` attached. The first ``n_train`` sequences train, the rest validate (the paper's
    split: 30 / 20 of 50).

    Parameters
    ----------
    path
        HDF5 written by ``neurodyn simulate switching-glm``; if None, simulate with the arguments below.
    n_states, n_neurons, n_sequences, n_bins, seed
        Simulator arguments; None takes the paper's 5 states, 20 neurons, 50 sequences, 2000 bins and seed
        0 when simulating. With ``path`` they describe the file: None takes what it holds, and a value that
        disagrees with it is refused in one line naming the option (the file's simulation is never
        silently swapped for the one the config describes); where the file and the sizes were set in
        different places (``--data.path`` against a config's ``n_bins``), ``neurodyn fit`` names the one set
        last and where each came from.
    n_train
        Sequences used for training; the rest are validation (default: the paper's 30 of 50).
    batch_size, num_workers, select_fraction, select_seed
        See :class:`NeuralDataModule` (a select split is carved from the ``n_train`` training sequences).
    """

    input_files = ("path",)

    def __init__(
        self,
        path: str | None = None,
        n_states: int | None = None,
        n_neurons: int | None = None,
        n_sequences: int | None = None,
        n_bins: int | None = None,
        seed: int | None = None,
        n_train: int = DEFAULT_N_TRAIN,
        batch_size: int = 30,
        num_workers: int = 0,
        select_fraction: float = 0.0,
        select_seed: int = 0,
    ):
        if seed is not None:
            check_seed(seed, data_option("seed"))
        self.path = None if path is None else Path(path)
        self.sim_kwargs = dict(
            n_states=n_states, n_neurons=n_neurons, n_sequences=n_sequences, n_bins=n_bins, seed=seed
        )
        self.n_train = n_train
        super().__init__(batch_size=batch_size, num_workers=num_workers, select_fraction=select_fraction,
                         select_seed=select_seed)

    def load(self) -> None:
        from neurodyn.data.synthetic import switching_glm as sg

        if self.path is not None:
            sim = sg.read_switching_glm_h5(_require_file(self.path, "switching-GLM file"))
            self._check_file_matches(sim)
        else:
            sim = sg.simulate_switching_glm(**{k: v for k, v in self.sim_kwargs.items() if v is not None})
        self.simulation = sim
        spikes = np.asarray(sim.spikes, dtype=np.float32)
        states = np.asarray(sim.states, dtype=np.int64)
        if not 0 < self.n_train < len(spikes):
            # the sequences come from the file (data.path) or the simulation's n_sequences (when set): the CLI
            # names the one set last, and where each came from (parser_errors.combination)
            source = "simulation" if self.path is None else "file"
            involves = ("path",) if self.path is not None else (
                ("n_sequences",) if self.sim_kwargs["n_sequences"] is not None else ())
            # one sequence leaves no n_train to choose (it said "must be between 1 and 0"): say why instead
            least = sg.MIN_FIT_SEQUENCES  # the rule and its words: the data floor's, which info says too
            message = (f"n_train={self.n_train} must be between 1 and {len(spikes) - 1} (the {source} has "
                       f"{len(spikes)} sequences)") if len(spikes) >= least else (
                f"the {source} has {len(spikes)} sequence{'' if len(spikes) == 1 else 's'}, and a fit needs {least} "
                f"or more: {sg.FIT_SEQUENCE_ROLES} ({sg.ONE_SEQUENCE_UNSPLITTABLE}); "
                + (f"simulate {least} or more ({sg.MORE_SEQUENCES_COMMAND})" if self.path is not None
                   else f"set n_sequences to {least} or more"))
            raise InputError(message, path=self.path, field=data_option("n_train"), involves=involves)
        # the sequences of each split, kept: sequence_ids names the rows by them, so the two cannot disagree
        self._split_rows = {"train": self.fitted_sequences(self.n_train)[0], "valid": slice(self.n_train, len(spikes))}
        for name, rows in self._split_rows.items():
            self.splits[name] = assemble_split(spikes[rows], extras={"true_states": states[rows]})

    spike_fields = {"train": "spikes", "valid": "spikes"}

    def _check_file_matches(self, sim) -> None:
        """Refuse simulator arguments that disagree with the simulation the file holds."""
        n_sequences, n_bins, n_neurons = sim.spikes.shape
        held = {"n_states": len(sim.transitions), "n_neurons": n_neurons, "n_sequences": n_sequences,
                "n_bins": n_bins, "seed": int(sim.seed)}
        wrong = [key for key, want in self.sim_kwargs.items() if want is not None and want != held[key]]
        if wrong:  # all at once: a file of other sizes disagrees in several
            holds = ", ".join(f"{key} {held[key]}" for key in wrong)
            asks = ", ".join(str(self.sim_kwargs[key]) for key in wrong)
            # the config key, not the command line's --option: `neurodyn tune` reads configs only
            nulls = ", ".join(data_option(key) for key in wrong)
            them = "them" if len(wrong) > 1 else "it"
            # the file (data.path) against the sizes: the CLI names the one set last and where each came from
            raise InputError(f"the file holds {holds}, the run asks for {asks}; give {named('None', 'null')} for "
                             f"{nulls} (or leave {them} out) to take the file's", self.path, data_option(wrong[0]),
                             involves=(*wrong[1:], "path"))

    def training_trials_origin(self) -> tuple[str, Path | None, tuple[str, ...]]:
        return "(the first n_train sequences)", None, ("n_train",)

    @staticmethod
    def fitted_sequences(n_train: int, select_fraction: float | None = None, select_seed: int = 0, *,
                         field: str | None = None, origin=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(train, fit, select)``: the indices of the simulation's sequences (the first axis of its ``spikes``) that
        the ``train`` split of ``n_train`` holds, in its row order (the first ``n_train``), those of them a fit trains
        on, and those its select split of ``select_fraction`` and ``select_seed`` takes
        (:func:`~neurodyn.training.datamodules.base.split_off` of the training rows; ``select_fraction`` None: no
        select split, none; a fraction outside (0, 1), 0 too, is refused as :func:`split_off` refuses it).

        The one rule for which sequences a run was fitted on: :meth:`load` and :meth:`fit_select_rows` (so
        :meth:`carve_select`) cut this DataModule's splits by it, and
        :meth:`~neurodyn.training.hmmglm_module.HMMGLMModule._run_sequences` finds a run's fitted sequences again by
        it from the run's recorded settings. Refusals name ``field`` (default ``select_fraction``) and ``origin``
        (:func:`~neurodyn.training.datamodules.base.split_off`).

        >>> [a.tolist() for a in SwitchingGLMDataModule.fitted_sequences(4, 0.25, 0)]
        [[0, 1, 2, 3], [0, 1, 3], [2]]
        """
        train = np.arange(int(n_train))
        if select_fraction is None:
            return train, train, train[:0]
        field = data_option("select_fraction") if field is None else field
        fit, select = split_off(len(train), float(select_fraction), int(select_seed), field, origin=origin)
        return train, train[fit], train[select]

    def fit_select_rows(self, fraction: float, seed: int = 0,
                        field: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The rows of the ``train`` split that :meth:`fitted_sequences` fits on and selects on: this DataModule's
        select split and a run's fitted sequences come from the one rule."""
        train, fit, select = self.fitted_sequences(self.n_train, fraction, seed, field=field,
                                                   origin=self.training_trials_origin)
        return np.searchsorted(train, fit), np.searchsorted(train, select)  # train holds them in this order

    def sequence_ids(self) -> dict[str, np.ndarray]:
        """``{"train": ids, "valid": ids}`` (int64): the index of each split row's sequence in the simulation
        (along the first axis of its ``spikes`` and ``states``: the file's, with ``path``), so that predictions
        line up with the true states. The rows are ordered as in the file: train ``0 .. n_train - 1``, valid
        ``n_train ..`` (a valid row's position in its split is not its sequence number). Taken from the rows
        :meth:`load` cut each split from, not worked out again from ``n_train``."""
        sequences = np.arange(len(self.simulation.spikes), dtype=np.int64)
        return {name: sequences[rows] for name, rows in self._split_rows.items()}


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
    batch_size, num_workers, select_fraction, select_seed
        See :class:`NeuralDataModule`.

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
                 batch_size: int = 64, num_workers: int = 0, select_fraction: float = 0.0, select_seed: int = 0):
        self._given = {"train": train, "valid": valid}
        self._bin_ms, self._n_fwd = float(bin_ms), int(n_fwd_bins)
        super().__init__(batch_size=batch_size, num_workers=num_workers, select_fraction=select_fraction,
                         select_seed=select_seed)

    def load(self) -> None:
        self.splits.update(self._given)
        self.bin_ms, self.n_fwd_bins = self._bin_ms, self._n_fwd
