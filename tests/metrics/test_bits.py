"""bits per spike, co-bps, fp-bps against closed forms and scipy's Poisson log-pmf."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy.stats import poisson

from neurodyn.errors import InputError
from neurodyn.metrics import bits_per_spike, co_bps, fp_bps, poisson_nll


def oracle_bps(rates, spikes):
    """Independent route: scipy's Poisson log-pmf, explicit loops over neurons for the null model."""
    rates = np.where(rates == 0, 1e-9, rates)
    observed = ~np.isnan(spikes)
    ll_model = poisson.logpmf(spikes[observed], rates[observed]).sum()
    ll_null = 0.0
    for j in range(spikes.shape[-1]):
        n = spikes[..., j][observed[..., j]]
        ll_null += poisson.logpmf(n, max(n.mean(), 1e-9)).sum()
    return (ll_model - ll_null) / spikes[observed].sum() / np.log(2)


def test_hand_computed_case():
    # n = (0, 2), r = (0.5, 1.5), null mean 1: NLL_null - NLL_model = 2 ln 1.5, 2 spikes
    # -> bps = 2 ln 1.5 / (2 ln 2) = log2 1.5
    spikes = np.array([[[0.0], [2.0]]])
    rates = np.array([[[0.5], [1.5]]])
    assert bits_per_spike(rates, spikes) == pytest.approx(np.log2(1.5), rel=1e-14)


def test_null_model_gives_exactly_zero():
    rng = np.random.default_rng(0)
    spikes = rng.poisson(1.3, (7, 11, 4)).astype(float)
    rates = np.broadcast_to(spikes.mean(axis=(0, 1)), spikes.shape)
    assert bits_per_spike(rates, spikes) == 0.0


@pytest.mark.parametrize("seed", [0, 1])
def test_matches_scipy_logpmf_with_nan_mask_and_zero_rates(seed):
    rng = np.random.default_rng(seed)
    truth = rng.gamma(1.5, 0.6, (9, 13, 5))
    spikes = rng.poisson(truth).astype(float)
    spikes[:, :4, :] = np.nan  # unobserved bins (e.g. DMFC before set)
    spikes[2, 6, 1] = np.nan
    rates = truth.copy()
    rates[:, :4, :] = np.nan  # ignored where the target is NaN
    rates[3, 5, 0] = 0.0  # replaced by 1e-9
    spikes[3, 5, 0] = 0.0
    # float64 sums of ~500 terms: relative rounding << 1e-10
    assert bits_per_spike(rates, spikes) == pytest.approx(oracle_bps(rates, spikes), rel=1e-10)


def test_perfect_rates_beat_null_and_poisson_nll():
    rng = np.random.default_rng(2)
    truth = rng.gamma(2.0, 1.0, (20, 30, 3))
    spikes = rng.poisson(truth).astype(float)
    assert co_bps(truth, spikes) > 0.1
    expected = -poisson.logpmf(spikes, truth).sum()
    assert poisson_nll(truth, spikes) == pytest.approx(expected, rel=1e-12)


def test_fp_bps_stacks_neurons():
    rng = np.random.default_rng(3)
    r_in, r_out = rng.gamma(2, 1, (4, 5, 3)), rng.gamma(2, 1, (4, 5, 2))
    n_in, n_out = rng.poisson(r_in).astype(float), rng.poisson(r_out).astype(float)
    expected = oracle_bps(np.dstack([r_in, r_out]), np.dstack([n_in, n_out]))
    assert fp_bps(r_in, r_out, n_in, n_out) == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("bad, word", [(np.nan, "NaN"), (-0.1, "negative"), (np.inf, "infinite")])
def test_bad_rates_rejected(bad, word):
    spikes = np.ones((2, 3, 2))
    rates = np.ones((2, 3, 2))
    rates[1, 2, 0] = bad
    with pytest.raises(InputError, match=f"{word} rate predictions.*\\(1, 2, 0\\)"):
        bits_per_spike(rates, spikes)


def test_shape_mismatch_and_empty_target():
    with pytest.raises(InputError, match=r"expected shape \(2, 3, 2\), got \(2, 3, 1\)"):
        bits_per_spike(np.ones((2, 3, 1)), np.ones((2, 3, 2)))
    with pytest.raises(InputError, match="no spikes"):
        bits_per_spike(np.ones((2, 3, 1)), np.zeros((2, 3, 1)))


@pytest.mark.parametrize(("spikes", "message"), [
    (np.array([[[3.0], [-1.0], [2.0]]]), "spikes: negative counts (min -1)"),
    (-np.ones((1, 3, 1)), "spikes: negative counts (min -1)"),  # was 'target holds no spikes'
    (np.array([[[np.inf], [1.0], [2.0]]]), "spikes: 1 infinite counts"),  # was nan with RuntimeWarnings
    (np.float64(2.0), "spikes: expected an array (..., n_neurons) of counts, got a scalar"),  # an IndexError
])
def test_counts_that_are_not_counts_are_refused(spikes, message):
    """A negative count scored -0.054 bits per spike with no error (helper-50)."""
    rates = np.ones(np.shape(spikes)) if np.ndim(spikes) else 1.0
    with pytest.raises(InputError, match=re.escape(message)):
        bits_per_spike(rates, spikes)
