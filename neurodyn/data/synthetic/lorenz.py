"""The LFADS Lorenz benchmark: chaotic latents, a sorted log-linear readout, binary 1 ms spikes.

This follows the recipe of lfads-run-manager's ``generateDemoDatasets`` (see
https://github.com/lfads/lfads-run-manager, ``src/+LFADS/+Utils/generateDemoDatasets.m``; semantics only, no
code taken) so that a default run matches
the statistics of the canonical ``lfads_lorenz.h5`` file used by LFADS, NDT and LangevinFlow:
65 conditions x 24 trials = 1560 trials, 29 neurons, 50 bins of 20 ms, an 80/20 split of 1248/312.

Generative model
----------------
Latent dynamics (forward Euler, ``dt = 0.006`` per 1 ms sample, ``sigma=10, rho=28, beta=8/3``)::

    dx/dt = sigma (y - x)
    dy/dt = x (rho - z)        [reference: the textbook "- y" term is absent]
    dz/dt = x y - beta z       [standard_lorenz=True adds "- y" to dy/dt]

Each condition starts at ``N(0, I) + (0, 0, 25)``, runs ``burn_in`` Euler steps, then records
``n_samples`` samples. Each trajectory is normalised per condition and dimension:
``x_norm = (x - mean_t x) / max_t (x - mean_t x)`` (so its maximum is exactly 1).

Readout (per 1 ms): ``lambda[n, t] = exp(clip(sum_d W[n, d] x_norm[d, t] + b[n], -20, 20))`` with
``W[n, d] = (u + 1) sign(g)``, ``u ~ U(0, 1)``, ``g ~ N(0, 1)``, each column sorted ascending over
neurons (so ``|W| in [1, 2]``), and ``b = ln(mean_rate_hz / 1000)`` (= ln 0.005 by default).

Observations: binary spikes ``1[Poisson(lambda) > 0]`` per ms (or Poisson counts with
``spikes="poisson"``), summed into bins of ``bin_ms`` samples. Every trial of a condition shares the
same rates, so trial-to-trial variability is spiking noise only.

Truth, in counts per bin (what rate R^2 is computed against): ``truth`` is the *expected count of
what is observed*, ``sum_{ms in bin} (1 - exp(-lambda))`` for binary spikes and
``sum_{ms in bin} lambda`` for Poisson counts. ``truth_lambda_sum`` always holds ``sum lambda``; the two
differ a lot for saturated neurons (lambda ~ 2 per ms).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from neurodyn.errors import InputError

#: Number of independent random streams: initial states, readout, trial counts, spikes, split.
_N_STREAMS = 5
#: Trials simulated per chunk: bounds memory (float64 uniforms of chunk x n_samples x n_neurons).
_TRIAL_CHUNK = 64


@dataclass(frozen=True)
class LorenzConfig:
    """Size and physics knobs of the Lorenz benchmark; defaults reproduce the canonical file's recipe.

    Parameters
    ----------
    n_conditions
        Number of initial conditions (distinct latent trajectories); 65 in the reference.
    trials_per_condition
        Trials per condition (24 in the canonical file); ignored when ``trials_range`` is set.
    trials_range
        ``(low, high)``: draw the trial count of each condition from ``U{low..high}`` (reference
        generator: ``(20, 30)``).
    n_neurons
        Number of neurons (29 in the canonical file).
    n_samples
        Samples (1 ms each) per trial; must be a multiple of ``bin_ms``.
    bin_ms
        Bin width in ms (= samples per bin); 1000 samples / 20 ms -> 50 bins.
    dt
        Euler step of the latent ODE per sample (dimensionless ODE time).
    burn_in
        Euler steps discarded before recording, so every trajectory is on the attractor.
    sigma, rho, beta
        Lorenz parameters.
    standard_lorenz
        False: the reference equations (no ``- y`` in dy/dt); True: the textbook system.
    mean_rate_hz
        Sets the baseline ``b = ln(mean_rate_hz / 1000)`` per 1 ms sample (spikes/s -> per ms): the rate
        at zero Lorenz drive, not the mean rate: the readout's drive, exponentiated, raises the mean above it
        (the defaults, seed 0: 0.284 spikes per 20 ms bin, 14.2 spikes/s, for ``mean_rate_hz`` 5).
    spikes
        ``"binary"`` (reference: at most one spike per ms) or ``"poisson"`` (counts per ms).
    train_fraction
        Fraction of trials in the training split (``round(train_fraction * n_trials)``).
    initial_offset
        Mean of the initial state before burn-in; ``(0, 0, 25)`` in the reference.
    log_rate_clip
        Log-rates per ms are clipped to ``[-log_rate_clip, log_rate_clip]``.

    Examples
    --------
    >>> LorenzConfig(n_conditions=4, trials_per_condition=3, n_samples=200).n_bins
    10
    """

    n_conditions: int = 65
    trials_per_condition: int = 24
    trials_range: tuple[int, int] | None = None
    n_neurons: int = 29
    n_samples: int = 1000
    bin_ms: int = 20
    dt: float = 0.006
    burn_in: int = 500
    sigma: float = 10.0
    rho: float = 28.0
    beta: float = 8.0 / 3.0
    standard_lorenz: bool = False
    mean_rate_hz: float = 5.0
    spikes: str = "binary"
    train_fraction: float = 0.8
    initial_offset: tuple[float, float, float] = (0.0, 0.0, 25.0)
    log_rate_clip: float = 20.0

    def __post_init__(self) -> None:
        positive = ("n_conditions", "trials_per_condition", "n_neurons", "n_samples", "bin_ms")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise InputError(f"must be a positive integer, got {value!r}", field=name)
        if not isinstance(self.burn_in, (int, np.integer)) or self.burn_in < 0:
            raise InputError(f"must be a non-negative integer, got {self.burn_in!r}", field="burn_in")
        if self.n_samples % self.bin_ms:
            raise InputError(f"n_samples={self.n_samples} is not a multiple of bin_ms={self.bin_ms}",
                             field="n_samples")
        if self.trials_range is not None:
            low, high = self.trials_range
            if not (1 <= low <= high):
                raise InputError(f"need 1 <= low <= high, got {self.trials_range!r}", field="trials_range")
        if self.spikes not in ("binary", "poisson"):
            raise InputError(f"must be 'binary' or 'poisson', got {self.spikes!r}", field="spikes")
        if not (0.0 < self.train_fraction < 1.0):
            raise InputError(f"must lie in (0, 1), got {self.train_fraction!r}", field="train_fraction")
        for name in ("dt", "mean_rate_hz", "log_rate_clip"):
            if not (np.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise InputError(f"must be a positive number, got {getattr(self, name)!r}", field=name)

    @property
    def n_bins(self) -> int:
        """Bins per trial, ``n_samples // bin_ms``."""
        return self.n_samples // self.bin_ms

    @property
    def baseline(self) -> float:
        """Log-rate offset per 1 ms sample, ``ln(mean_rate_hz / 1000)``."""
        return float(np.log(self.mean_rate_hz / 1000.0))


@dataclass
class LorenzSimulation:
    """A simulated Lorenz dataset with its ground truth; shapes are batch-first.

    Attributes
    ----------
    config
        The :class:`LorenzConfig` used.
    spikes
        ``(n_trials, n_bins, n_neurons)`` int64 spike counts per bin.
    truth
        ``(n_trials, n_bins, n_neurons)`` expected count per bin of what is observed
        (binary: ``sum (1 - exp(-lambda))``; Poisson: ``sum lambda``). Rate R^2 uses this.
    truth_lambda_sum
        ``(n_trials, n_bins, n_neurons)`` ``sum lambda`` per bin (counts per bin).
    latents
        ``(n_trials, n_bins, 3)`` normalised Lorenz state averaged over each bin's samples.
    trajectories
        ``(n_conditions, n_samples, 3)`` normalised trajectories at 1 ms.
    raw_trajectories
        ``(n_conditions, n_samples, 3)`` trajectories before normalisation (ODE units).
    rates
        ``(n_conditions, n_samples, n_neurons)`` ``lambda`` in expected spikes per 1 ms sample.
    readout_weights
        ``W``, ``(n_neurons, 3)``; each column sorted ascending.
    readout_bias
        ``b``, ``(n_neurons,)`` log-rate offset per ms (all equal to ``config.baseline``).
    condition_ids
        ``(n_trials,)`` condition of each trial; trials are ordered by condition.
    train_inds, valid_inds
        Sorted, disjoint trial indices of the two splits (together ``0..n_trials-1``).
    seed_info
        ``{"seed": int}`` when an integer seed was given (written as a file attribute).
    """

    config: LorenzConfig
    spikes: np.ndarray
    truth: np.ndarray
    truth_lambda_sum: np.ndarray
    latents: np.ndarray
    trajectories: np.ndarray
    raw_trajectories: np.ndarray
    rates: np.ndarray
    readout_weights: np.ndarray
    readout_bias: np.ndarray
    condition_ids: np.ndarray
    train_inds: np.ndarray
    valid_inds: np.ndarray
    seed_info: dict = field(default_factory=dict)

    @property
    def n_trials(self) -> int:
        """Total number of trials."""
        return int(self.spikes.shape[0])

    def to_lfads(self):
        """Split into :class:`~neurodyn.data.lfads.LFADSData` (see ``lfads_from_simulation``)."""
        from neurodyn.data.lfads import lfads_from_simulation

        return lfads_from_simulation(self)


def integrate_lorenz(initial_states: np.ndarray, config: LorenzConfig) -> np.ndarray:
    """Forward-Euler Lorenz trajectories for many initial states at once.

    Runs ``config.burn_in`` steps, then records ``config.n_samples`` states (the first recorded
    sample is the state after burn-in). Dynamics as in the module docstring; the ``- y`` term of
    dy/dt is present only when ``config.standard_lorenz``.

    Parameters
    ----------
    initial_states
        ``(n_conditions, 3)`` states ``(x, y, z)`` before burn-in.
    config
        Supplies ``dt, burn_in, n_samples, sigma, rho, beta, standard_lorenz``.

    Returns
    -------
    np.ndarray
        ``(n_conditions, n_samples, 3)`` float64 trajectories in ODE units.

    Examples
    --------
    >>> cfg = LorenzConfig(n_samples=100, burn_in=0)
    >>> integrate_lorenz(np.array([[1.0, 1.0, 25.0]]), cfg).shape
    (1, 100, 3)
    """
    state = np.array(initial_states, dtype=np.float64, copy=True)
    if state.ndim != 2 or state.shape[1] != 3:
        raise InputError(f"expected shape (n_conditions, 3), got {state.shape}", field="initial_states")
    y_decay = 1.0 if config.standard_lorenz else 0.0
    out = np.empty((state.shape[0], config.n_samples, 3))
    derivative = np.empty_like(state)
    # One Python step per sample, vectorised over conditions: 1500 tiny steps take ~10 ms. A step too large
    # diverges to inf / NaN: numpy's overflow warnings are silenced (the caller checks the result and says so
    # in one line: simulate printed 8 lines of RuntimeWarnings before it).
    with np.errstate(over="ignore", invalid="ignore"):
        for step in range(config.burn_in + config.n_samples):
            if step >= config.burn_in:
                out[:, step - config.burn_in] = state
            x, y, z = state[:, 0], state[:, 1], state[:, 2]
            derivative[:, 0] = config.sigma * (y - x)
            derivative[:, 1] = x * (config.rho - z) - y_decay * y
            derivative[:, 2] = x * y - config.beta * z
            state += config.dt * derivative
    return out


def normalise_trajectories(trajectories: np.ndarray) -> np.ndarray:
    """Centre each condition and dimension over time, then divide by its maximum.

    ``x_norm = (x - mean_t x) / max_t (x - mean_t x)``: the maximum is exactly 1 (a float divided by
    itself); the minimum may be below -1.

    Parameters
    ----------
    trajectories
        ``(n_conditions, n_samples, 3)``.

    Returns
    -------
    np.ndarray
        Same shape, normalised.

    Examples
    --------
    >>> float(normalise_trajectories(np.array([[[0.0], [1.0], [5.0]]])).max())
    1.0
    """
    centred = trajectories - trajectories.mean(axis=1, keepdims=True)
    return centred / centred.max(axis=1, keepdims=True)


def sample_readout(n_neurons: int, latent_dim: int, rng: np.random.Generator) -> np.ndarray:
    """Draw the sorted readout ``W[n, d] = (u + 1) sign(g)`` with each column sorted ascending.

    Sorting the columns orders neurons from most negative to most positive loading, as in the
    reference generator; ``|W|`` lies in ``[1, 2]``.

    Parameters
    ----------
    n_neurons, latent_dim
        Shape of ``W``.
    rng
        Source of randomness.

    Returns
    -------
    np.ndarray
        ``(n_neurons, latent_dim)``.

    Examples
    --------
    >>> w = sample_readout(5, 3, np.random.default_rng(0))
    >>> bool(np.all(np.diff(w, axis=0) >= 0))
    True
    """
    magnitude = rng.uniform(0.0, 1.0, size=(n_neurons, latent_dim)) + 1.0
    sign = np.sign(rng.standard_normal((n_neurons, latent_dim)))
    sign[sign == 0] = 1.0  # probability zero, but a zero weight would break |w| >= 1
    return np.sort(magnitude * sign, axis=0)


def simulate_lorenz(config: LorenzConfig | None = None, *, seed: int | np.random.Generator | None = 0,
                    progress: bool = False, **overrides) -> LorenzSimulation:
    """Simulate the Lorenz benchmark (see the module docstring for the generative model).

    Randomness comes from five independent child streams of ``seed`` (initial states, readout,
    trial counts, spikes, split), so e.g. switching ``spikes`` or ``standard_lorenz`` keeps the
    same initial states and readout for a given seed.

    Parameters
    ----------
    config
        Sizes and physics; defaults reproduce the canonical recipe (1560 trials, 29 neurons,
        50 bins of 20 ms).
    seed
        Seed or ``numpy.random.Generator`` (None: fresh OS entropy, not reproducible).
    progress
        Show a ``rich`` progress bar over trial chunks (the CLI sets this).
    **overrides
        :class:`LorenzConfig` fields replacing those of ``config``
        (``simulate_lorenz(n_conditions=4, seed=1)``).

    Returns
    -------
    LorenzSimulation
        Spikes and truth are in counts per bin, batch-first ``(trials, bins, neurons)``.

    Examples
    --------
    >>> sim = simulate_lorenz(n_conditions=3, trials_per_condition=2, n_samples=100, seed=1)
    >>> sim.spikes.shape, len(sim.train_inds), len(sim.valid_inds)
    ((6, 5, 29), 5, 1)
    """
    config = LorenzConfig() if config is None else config
    if overrides:
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(LorenzConfig)})
        if unknown:
            raise InputError(f"unknown LorenzConfig field(s) {unknown}", field=unknown[0])
        config = dataclasses.replace(config, **overrides)
    seed_info = {"seed": int(seed) if isinstance(seed, (int, np.integer)) else None}
    streams = np.random.default_rng(seed).spawn(_N_STREAMS)
    rng_init, rng_readout, rng_trials, rng_spikes, rng_split = streams

    initial = rng_init.standard_normal((config.n_conditions, 3)) + np.asarray(config.initial_offset)
    raw = integrate_lorenz(initial, config)
    if not np.all(np.isfinite(raw)):
        raise InputError("the Euler integration diverged; reduce dt", field="dt")
    trajectories = normalise_trajectories(raw)

    weights = sample_readout(config.n_neurons, 3, rng_readout)
    bias = np.full(config.n_neurons, config.baseline)
    log_rates = np.clip(trajectories @ weights.T + bias, -config.log_rate_clip, config.log_rate_clip)
    rates = np.exp(log_rates)  # (n_conditions, n_samples, n_neurons), expected spikes per ms

    if config.trials_range is None:
        counts = np.full(config.n_conditions, config.trials_per_condition)
    else:
        low, high = config.trials_range
        counts = rng_trials.integers(low, high, endpoint=True, size=config.n_conditions)
    condition_ids = np.repeat(np.arange(config.n_conditions), counts)
    n_trials = condition_ids.size
    n_train = int(round(config.train_fraction * n_trials))
    if not (1 <= n_train < n_trials):
        raise InputError(f"{n_trials} trials cannot be split {n_train}/{n_trials - n_train}",
                         field="train_fraction")

    def per_bin(per_sample: np.ndarray) -> np.ndarray:
        lead = per_sample.shape[:-2]
        return per_sample.reshape(*lead, config.n_bins, config.bin_ms, per_sample.shape[-1]).sum(axis=-2)

    # P(at least one spike in a ms) = 1 - exp(-lambda); -expm1 keeps precision for tiny lambda.
    spike_probability = -np.expm1(-rates)
    lambda_sum = per_bin(rates)
    expected = per_bin(spike_probability) if config.spikes == "binary" else lambda_sum

    spikes = np.empty((n_trials, config.n_bins, config.n_neurons), dtype=np.int64)
    starts = range(0, n_trials, _TRIAL_CHUNK)
    for start in _progress(starts, progress, "simulating spikes"):
        ids = condition_ids[start:start + _TRIAL_CHUNK]
        if config.spikes == "binary":
            draws = rng_spikes.random((ids.size, config.n_samples, config.n_neurons)) < spike_probability[ids]
        else:
            draws = rng_spikes.poisson(rates[ids])
        spikes[start:start + ids.size] = per_bin(draws.astype(np.int64))

    permutation = rng_split.permutation(n_trials)
    latents = trajectories.reshape(config.n_conditions, config.n_bins, config.bin_ms, 3).mean(axis=2)
    return LorenzSimulation(
        config=config, spikes=spikes,
        truth=expected[condition_ids], truth_lambda_sum=lambda_sum[condition_ids],
        latents=latents[condition_ids], trajectories=trajectories, raw_trajectories=raw, rates=rates,
        readout_weights=weights, readout_bias=bias, condition_ids=condition_ids,
        train_inds=np.sort(permutation[:n_train]), valid_inds=np.sort(permutation[n_train:]),
        seed_info=seed_info,
    )


def simulation_record(seed: int, **overrides) -> dict:
    """The root attributes that identify a simulation in every Lorenz file neurodyn writes.

    ``config`` (the :class:`LorenzConfig` with ``overrides``, as a repr of its fields) and ``seed``, as
    :func:`neurodyn.data.lfads.lfads_from_simulation` records them; a cache is the simulation it claims to
    be when its attributes equal these.

    Examples
    --------
    >>> simulation_record(3, n_conditions=2)["seed"]
    3
    """
    return {"config": repr(dataclasses.asdict(LorenzConfig(**overrides))), "seed": int(seed)}


def _progress(items, enabled: bool, description: str):
    """Iterate ``items``, with a transient ``rich`` progress bar on stderr when ``enabled``."""
    if not enabled:
        yield from items
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        yield from bar.track(items, description=description)
