"""Tests of the Lorenz benchmark simulator against its recipe (lfads-run-manager's generateDemoDatasets.m,
https://github.com/lfads/lfads-run-manager, src/+LFADS/+Utils/generateDemoDatasets.m; the canonical file
data/lfads_lorenz.h5 of https://github.com/snel-repo/neural-data-transformers) and exact oracles."""

from __future__ import annotations

import numpy as np
import pytest

from neurodyn.data.synthetic.lorenz import (
    LorenzConfig,
    integrate_lorenz,
    normalise_trajectories,
    sample_readout,
    simulate_lorenz,
)
from neurodyn.errors import InputError

TINY = dict(n_conditions=3, trials_per_condition=4, n_samples=100, n_neurons=7)


@pytest.fixture(scope="module")
def canonical():
    """The full default simulation (65 x 24 trials, 29 neurons, 50 bins of 20 ms); ~0.6 s."""
    return simulate_lorenz(seed=0)


def test_default_sizes_and_split(canonical):
    sim = canonical
    assert sim.spikes.shape == (1560, 50, 29)
    assert sim.truth.shape == sim.truth_lambda_sum.shape == sim.spikes.shape
    assert sim.latents.shape == (1560, 50, 3)
    assert sim.trajectories.shape == sim.raw_trajectories.shape == (65, 1000, 3)
    assert (len(sim.train_inds), len(sim.valid_inds)) == (1248, 312)
    assert np.intersect1d(sim.train_inds, sim.valid_inds).size == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([sim.train_inds, sim.valid_inds])), np.arange(1560))
    np.testing.assert_array_equal(np.bincount(sim.condition_ids), np.full(65, 24))


def test_trajectories_bounded(canonical):
    # generateDemoDatasets.m's system (lfads-run-manager, above) spans x in +-21, y in +-28, z in 4..52 over its
    # 65 conditions.
    # Other seeds visit other parts of the same attractor, so each range is widened by 20 % of its
    # half-width (x: 21 -> 25.2, y: 28 -> 33.6, z: 28 +- 24 -> 28 +- 28.8); a diverging or
    # mis-signed integrator leaves this box by orders of magnitude.
    raw = canonical.raw_trajectories
    assert np.all(np.isfinite(raw))
    assert np.abs(raw[..., 0]).max() <= 25.2
    assert np.abs(raw[..., 1]).max() <= 33.6
    assert raw[..., 2].min() >= 28 - 28.8 and raw[..., 2].max() <= 28 + 28.8


def test_normalisation_per_condition(canonical):
    traj = canonical.trajectories
    # max of x / max(x) is exactly 1 in IEEE arithmetic, for every condition and dimension
    np.testing.assert_array_equal(traj.max(axis=1), np.ones((65, 3)))
    # centred: |mean| is at most a few ulps of the summed magnitudes (1000 terms of size <= 3)
    assert np.abs(traj.mean(axis=1)).max() < 1000 * 3 * np.finfo(float).eps
    # the latents are bin means of the 1 ms trajectories of each trial's condition
    expected = traj.reshape(65, 50, 20, 3).mean(axis=2)[canonical.condition_ids]
    np.testing.assert_allclose(canonical.latents, expected, rtol=0, atol=1e-15)


def test_normalise_trajectories_closed_form():
    x = np.array([[[1.0, -2.0], [3.0, 0.0], [5.0, 8.0]]])  # (1 condition, 3 samples, 2 dims)
    # dim 0: centred (-2, 0, 2) / 2; dim 1: centred (-4, -2, 6) / 6
    expected = np.array([[[-1.0, -4 / 6], [0.0, -2 / 6], [1.0, 1.0]]])
    np.testing.assert_allclose(normalise_trajectories(x), expected, rtol=0, atol=1e-15)


def test_binary_counts_bounded_by_bin_width(canonical):
    assert canonical.spikes.dtype.kind == "i"
    assert canonical.spikes.min() >= 0 and canonical.spikes.max() <= 20
    # binary truth can never exceed the bin width, and sum(1 - e^-l) <= sum(l)
    assert canonical.truth.max() <= 20
    assert np.all(canonical.truth <= canonical.truth_lambda_sum + 1e-12)
    # saturated neurons exist (generateDemoDatasets.m's readout, |w| in [1, 2] on 3 normalised latents plus
    # ln 0.005, gives log-rates up to ~0.7: ~2 spikes / ms), so the two truths differ there
    assert (canonical.truth_lambda_sum - canonical.truth).max() > 1.0


def test_readout_sorted_and_bounded(canonical):
    w = canonical.readout_weights
    assert w.shape == (29, 3)
    assert np.all(np.diff(w, axis=0) >= 0)
    assert np.all((np.abs(w) >= 1) & (np.abs(w) <= 2))
    np.testing.assert_array_equal(canonical.readout_bias, np.full(29, np.log(0.005)))
    # both signs occur: P(all 87 entries share a sign) = 2^-86
    assert (w > 0).any() and (w < 0).any()


def test_rates_and_truth_match_the_readout_formula(canonical):
    sim = canonical
    log_rates = np.clip(sim.trajectories @ sim.readout_weights.T + sim.readout_bias, -20, 20)
    np.testing.assert_allclose(sim.rates, np.exp(log_rates), rtol=1e-13)
    # independent recomputation of the per-bin truths with an explicit loop over bins
    for condition in (0, 64):
        trial = int(np.flatnonzero(sim.condition_ids == condition)[0])
        for b in (0, 17, 49):
            window = sim.rates[condition, 20 * b:20 * (b + 1)]
            np.testing.assert_allclose(sim.truth[trial, b], (1 - np.exp(-window)).sum(0), rtol=1e-12)
            np.testing.assert_allclose(sim.truth_lambda_sum[trial, b], window.sum(0), rtol=1e-12)


def test_trials_of_a_condition_share_truth(canonical):
    sim = canonical
    for condition in range(65):
        rows = np.flatnonzero(sim.condition_ids == condition)
        assert np.all(sim.truth[rows] == sim.truth[rows[0]])
        assert np.all(sim.latents[rows] == sim.latents[rows[0]])
    # ... but not across conditions (distinct initial states)
    first = [np.flatnonzero(sim.condition_ids == c)[0] for c in range(65)]
    assert len({sim.truth[i].tobytes() for i in first}) == 65


def test_euler_step_oracle_for_both_equation_sets():
    x0 = np.array([[1.0, -2.0, 20.0], [-3.0, 4.0, 30.0]])
    for standard in (False, True):
        cfg = LorenzConfig(n_samples=3, bin_ms=1, burn_in=0, standard_lorenz=standard)
        out = integrate_lorenz(x0, cfg)
        np.testing.assert_array_equal(out[:, 0], x0)
        x, y, z = x0.T
        dy = x * (28 - z) - (y if standard else 0)
        f = np.stack([10 * (y - x), dy, x * y - 8 / 3 * z], axis=1)
        np.testing.assert_allclose(out[:, 1], x0 + 0.006 * f, rtol=1e-15)
    # burn-in: recording starts after `burn_in` steps of the same map
    long = integrate_lorenz(x0, LorenzConfig(n_samples=10, bin_ms=1, burn_in=0))
    burnt = integrate_lorenz(x0, LorenzConfig(n_samples=5, bin_ms=1, burn_in=5))
    np.testing.assert_array_equal(burnt, long[:, 5:])


def test_standard_lorenz_changes_dynamics():
    reference = simulate_lorenz(seed=3, **TINY)
    textbook = simulate_lorenz(seed=3, standard_lorenz=True, **TINY)
    # same seed -> same readout (independent streams); only the dynamics differ
    np.testing.assert_array_equal(reference.readout_weights, textbook.readout_weights)
    assert np.abs(reference.raw_trajectories - textbook.raw_trajectories).max() > 1.0


def test_determinism_under_seed():
    a, b = simulate_lorenz(seed=7, **TINY), simulate_lorenz(seed=7, **TINY)
    c = simulate_lorenz(seed=8, **TINY)
    for key in ("spikes", "truth", "raw_trajectories", "readout_weights", "train_inds"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    assert not np.array_equal(a.spikes, c.spikes)
    gen = simulate_lorenz(seed=np.random.default_rng(7), **TINY)
    np.testing.assert_array_equal(gen.spikes, a.spikes)  # a Generator seeded alike gives the same data


def _z_scores(spikes, truth, variance, condition_ids, min_expected_total):
    """Per (condition, bin, neuron) z of the trial-mean count against the truth.

    Only cells whose expected total count over trials is >= ``min_expected_total`` are used, so the
    normal approximation of the sum of independent counts holds in the tails.
    """
    z = []
    for condition in np.unique(condition_ids):
        rows = condition_ids == condition
        n = rows.sum()
        mean = spikes[rows].mean(0)
        mu, var = truth[rows][0], variance[rows][0]
        keep = n * mu >= min_expected_total
        z.append(((mean - mu) / np.sqrt(var / n))[keep])
    return np.concatenate(z)


@pytest.mark.parametrize("kind", ["binary", "poisson"])
def test_truth_is_the_expected_count(kind):
    trials = 1500
    sim = simulate_lorenz(seed=11, n_conditions=2, trials_per_condition=trials, n_samples=200, spikes=kind)
    rates = sim.rates  # (2, 200, 29) per ms
    # Variance of a bin count: binary -> sum of Bernoulli variances p(1-p), p = 1 - e^-l;
    # Poisson -> sum of l. The ms are independent given the rates.
    p = -np.expm1(-rates)
    per_ms_var = p * (1 - p) if kind == "binary" else rates
    variance = per_ms_var.reshape(2, 10, 20, 29).sum(2)[sim.condition_ids]
    z = _z_scores(sim.spikes.astype(float), sim.truth, variance, sim.condition_ids, min_expected_total=100)
    # 5-sigma per cell: with <= 580 cells, P(any |z| > 5) <= 580 * 5.7e-7 = 3e-4 under the model
    assert z.size > 100
    assert np.abs(z).max() < 5
    # pooled over all cells the z of the grand mean must also be within 5 sigma
    total_z = (sim.spikes.sum() - sim.truth.sum()) / np.sqrt(variance.sum())
    assert abs(total_z) < 5
    if kind == "binary":
        assert sim.spikes.max() <= 20
    else:
        np.testing.assert_array_equal(sim.truth, sim.truth_lambda_sum)


def test_trials_range_option():
    sim = simulate_lorenz(seed=2, n_conditions=40, trials_range=(20, 30), n_samples=100, n_neurons=3)
    counts = np.bincount(sim.condition_ids, minlength=40)
    assert counts.min() >= 20 and counts.max() <= 30
    assert len(set(counts.tolist())) > 1  # 40 draws of U{20..30} all equal: probability 11^-39
    assert len(sim.train_inds) == round(0.8 * counts.sum())


def test_sample_readout_shape_and_range():
    w = sample_readout(50, 4, np.random.default_rng(1))
    assert w.shape == (50, 4)
    assert np.all(np.diff(w, axis=0) >= 0) and np.all((np.abs(w) >= 1) & (np.abs(w) <= 2))


@pytest.mark.parametrize("bad", [
    dict(n_samples=1000, bin_ms=30),
    dict(n_conditions=0),
    dict(spikes="gaussian"),
    dict(train_fraction=1.0),
    dict(trials_range=(5, 2)),
    dict(dt=-0.1),
])
def test_bad_config_raises_input_error(bad):
    with pytest.raises(InputError):
        LorenzConfig(**bad)


def test_unknown_override_and_unsplittable_sizes():
    with pytest.raises(InputError, match="n_trial"):
        simulate_lorenz(n_trial=3)
    with pytest.raises(InputError, match="train_fraction"):
        simulate_lorenz(n_conditions=1, trials_per_condition=1, n_samples=20)
