"""Reference rate estimators: smoothing, condition PSTH, factor analysis, and their observable criteria."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import gammaln

from neurodyn.errors import InputError
from neurodyn.models.baselines import (
    SmoothedFA,
    condition_psth,
    fa_grid_edge,
    loo_smoothing_loglik,
    poisson_loglik,
    select_fa,
    select_smoothing,
    smooth,
    smoothing_grid_edge,
    smoothing_matrix,
)


def _r2(truth, pred):
    t, p = truth.reshape(-1, truth.shape[-1]), pred.reshape(-1, pred.shape[-1])
    return float(np.mean(1 - ((t - p) ** 2).sum(0) / ((t - t.mean(0)) ** 2).sum(0)))


def _latent_data(seed, n_trials=60, n_bins=50, n_neurons=12, dim=2):
    """Poisson counts from a smooth `dim`-dimensional latent trajectory per trial."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 2 * np.pi, n_bins)
    phase = rng.uniform(0, 2 * np.pi, (n_trials, 1, dim))
    z = np.sin(t[None, :, None] * (1 + np.arange(dim)) + phase)
    w = rng.normal(0, 0.6, (dim, n_neurons))
    rates = np.exp(np.log(0.8) + z @ w)
    return rng.poisson(rates).astype(float), rates


def test_smooth_equals_an_explicit_weighted_mean():
    x = np.random.default_rng(0).poisson(1.0, (2, 7, 3)).astype(float)
    sigma = 1.5
    expected = np.empty_like(x)
    for t in range(7):
        w = np.exp(-0.5 * ((np.arange(7) - t) / sigma) ** 2)
        expected[:, t] = (w[None, :, None] * x).sum(1) / w.sum()
    np.testing.assert_allclose(smooth(x, sigma), expected, rtol=1e-12)
    np.testing.assert_array_equal(smooth(x, 0), x)


def test_loo_criterion_is_the_leave_one_bin_out_poisson_likelihood():
    x = np.random.default_rng(1).poisson(0.7, (3, 9, 2)).astype(float)
    sigma, total = 2.0, []
    for i in range(3):
        for n in range(2):
            for t in range(9):
                others = np.arange(9) != t
                w = np.exp(-0.5 * ((np.arange(9)[others] - t) / sigma) ** 2)
                r = max((w * x[i, others, n]).sum() / w.sum(), 1e-6)
                total.append(x[i, t, n] * np.log(r) - r - gammaln(x[i, t, n] + 1))
    assert loo_smoothing_loglik(x, sigma) == pytest.approx(np.mean(total), rel=1e-12)
    assert np.all(np.diag(smoothing_matrix(9, sigma, leave_out=True)) == 0)


def test_smoothing_width_choice_follows_the_data():
    rng = np.random.default_rng(2)
    # constant rates: more smoothing is always better -> the widest candidate, and the grid grows to the trial
    # length (40 bins) with the choice still at its widest edge
    flat = rng.poisson(1.0, (40, 40, 5)).astype(float)
    assert select_smoothing(flat, (0.5, 2.0, 8.0), extend=False)[0] == 8.0
    best, scores = select_smoothing(flat, (0.5, 2.0, 8.0))
    assert best == 64.0 and sorted(scores) == [0.5, 2.0, 8.0, 16.0, 32.0, 64.0]
    assert smoothing_grid_edge(best, scores) == "widest"
    # fast rate changes (period 8 bins): wide smoothing erases them -> not the widest candidate
    t = np.arange(40)
    fast = rng.poisson(np.broadcast_to(3 * (1 + np.sin(2 * np.pi * t / 8))[None, :, None], (40, 40, 5))).astype(float)
    assert select_smoothing(fast, (0.5, 1.0, 8.0))[0] < 8.0


def test_smoothing_width_needs_two_bins():
    """One-bin trials scored every width NaN (with numpy warnings) and returned an arbitrary width."""
    one_bin = np.random.default_rng(0).poisson(1.0, (5, 1, 3)).astype(float)
    with pytest.raises(InputError, match="at least 2 bins"):
        select_smoothing(one_bin)


def test_condition_psth_is_the_per_condition_mean():
    x = np.random.default_rng(3).poisson(2.0, (6, 5, 2)).astype(float)
    cond = np.array([2, 0, 2, 1, 0, 1])
    out = condition_psth(x, cond, [1, 2, 0])
    np.testing.assert_allclose(out[0], x[[3, 5]].mean(0))
    np.testing.assert_allclose(out[1], x[[0, 2]].mean(0))
    np.testing.assert_allclose(out[2], x[[1, 4]].mean(0))
    np.testing.assert_allclose(condition_psth(x, cond, [0], sigma_bins=1.0)[0], smooth(x[[1, 4]].mean(0)[None], 1.0)[0])
    with pytest.raises(InputError, match="no fitting trials"):
        condition_psth(x, cond, [7])


def test_fa_leave_one_neuron_out_matches_the_precision_formula():
    x, _ = _latent_data(4, n_trials=20, n_neurons=6)
    fa = SmoothedFA(2, 1.0).fit(x)
    flat = smooth(x, 1.0).reshape(-1, 6)
    prec = np.linalg.inv(fa.fa_.get_covariance())
    centred = flat - fa.fa_.mean_
    # Gaussian conditional mean from the precision matrix: mu_n - sum_{m != n} P_nm (x_m - mu_m) / P_nn
    expected = fa.fa_.mean_ - (centred @ prec - centred * np.diag(prec)) / np.diag(prec)
    np.testing.assert_allclose(fa.loo_predict(x).reshape(-1, 6), np.maximum(expected, 1e-6), rtol=1e-8, atol=1e-10)
    assert fa.loo_loglik(x) == pytest.approx(poisson_loglik(fa.loo_predict(x), x))


def test_fa_recovers_low_dimensional_rates_better_than_smoothing():
    x, rates = _latent_data(5, n_trials=40)
    fit, sel, rep = x[:25], x[25:30], x[30:]
    fa, scores = select_fa(fit, sel, sigmas=(1.0, 2.0), dims=(1, 2, 4))
    assert {(s, d) for s in (1.0, 2.0) for d in (1, 2, 4)} <= set(scores)  # the grid, and what it grew to
    assert fa.n_components >= 2  # a one-factor model cannot explain a two-dimensional latent
    sigma, _ = select_smoothing(sel)
    assert _r2(rates[30:], fa.predict(rep)) > _r2(rates[30:], smooth(rep, sigma))


def test_fa_grid_grows_from_an_edge_choice():
    """The Lorenz benchmark's FA chose the narrowest width of its grid on every seed and the most factors on
    one: the grid now grows from an edge choice until the select trials' criterion turns down."""
    x, _ = _latent_data(5, n_trials=40)
    fit, sel = x[:25], x[25:30]
    assert set(select_fa(fit, sel, sigmas=(1.0,), dims=(4, 6), extend=False)[1]) == {(1.0, 4), (1.0, 6)}
    # one width (both edges) and the fewest factors: grown along both axes, to a choice inside the grid
    fa, scores = select_fa(fit, sel, sigmas=(1.0,), dims=(4, 6))
    assert {w for w, _ in scores} > {1.0} and min(d for _, d in scores) < 4
    assert fa_grid_edge((fa.sigma_bins, fa.n_components), scores) is None
    # the narrowest width chosen (slow latents, a grid of wide widths): halved until the criterion turns down
    fa, scores = select_fa(fit, sel, sigmas=(8.0, 16.0), dims=(2,))
    assert fa.sigma_bins < 8.0 and fa_grid_edge((fa.sigma_bins, fa.n_components), scores) is None
    assert scores[(fa.sigma_bins, fa.n_components)] > scores[(8.0, 2)]


def test_input_checks():
    with pytest.raises(InputError, match="trials, bins, neurons"):
        smooth(np.zeros((3, 4)), 1.0)
    with pytest.raises(InputError, match="zero width"):
        smoothing_matrix(4, 0.0, leave_out=True)
    with pytest.raises(InputError, match="n_components"):
        SmoothedFA(0, 1.0)
    fa = SmoothedFA(1, 1.0).fit(np.random.default_rng(0).poisson(1.0, (4, 10, 3)).astype(float))
    with pytest.raises(InputError, match="fitted on 3 neurons"):
        fa.predict(np.zeros((1, 10, 4)))


def test_a_width_at_the_edge_of_the_grid_extends_it():
    """The width was chosen at the widest candidate (12 bins) of a fixed grid, as on the demo's and the Lorenz
    benchmark's data: slow rates (period 300 bins over 200-bin trials) have their likelihood peak at 24 bins,
    which the grid now reaches, with the score turning down beyond it."""
    rng = np.random.default_rng(4)
    t = np.arange(200)
    rates = np.broadcast_to((0.5 * (1 + 0.5 * np.sin(2 * np.pi * t / 300)))[None, :, None], (60, 200, 4))
    x = rng.poisson(rates).astype(float)
    best, scores = select_smoothing(x)
    assert best == 24.0 and smoothing_grid_edge(best, scores) is None
    assert scores[48.0] < scores[24.0] > scores[12.0]
    # a choice at the narrowest edge extends the grid downwards, to MIN_SMOOTHING_WIDTH at most
    noisy = rng.poisson(np.broadcast_to(5 * (1 + np.sin(np.pi * t / 2))[None, :40, None], (30, 40, 3))).astype(float)
    best, scores = select_smoothing(noisy, (1.0, 2.0))
    assert min(scores) < 1.0 and min(scores) >= 0.25


def test_condition_psth_width_grid_grows_from_an_edge_by_the_smoothing_grid_rule():
    """select_condition_psth chooses the PSTH's width on the selection trials from a grid that grows as
    select_smoothing's and select_fa's width axis do (one rule, _wider_or_narrower)."""
    from neurodyn.models.baselines import PSTH_WIDTHS, select_condition_psth

    rng = np.random.default_rng(3)
    cond = np.repeat(np.arange(4), 12)
    t = np.arange(80)[None, :, None]
    slow = (0.5 * (1 + 0.8 * np.sin(2 * np.pi * t / 160 + rng.uniform(0, 6, (4, 1, 3)))))[cond]
    x = rng.poisson(slow).astype(float)
    fit, sel = np.arange(48) % 12 < 9, np.arange(48) % 12 >= 9
    best, scores = select_condition_psth(x[fit], cond[fit], x[sel], cond[sel])
    assert set(PSTH_WIDTHS) < set(scores) and best > max(PSTH_WIDTHS)
    assert smoothing_grid_edge(best, scores) is None and scores[best] == max(scores.values())
    expected = {w: poisson_loglik(condition_psth(x[fit], cond[fit], cond[sel], w), x[sel]) for w in scores}
    assert scores == pytest.approx(expected, rel=1e-12)
    # rates that change every bin: no smoothing (0, the grid's limit) is best, and the grid stays as given
    sharp = np.broadcast_to(np.where(np.arange(80) % 2, 8.0, 0.1)[None, :, None], (48, 80, 3))
    x = rng.poisson(sharp).astype(float)
    best, scores = select_condition_psth(x[fit], cond[fit], x[sel], cond[sel])
    assert best == 0.0 and set(scores) == set(PSTH_WIDTHS) and smoothing_grid_edge(best, scores) == "narrowest"
    with pytest.raises(InputError, match="select_conditions"):
        select_condition_psth(x[fit], cond[fit], x[sel], cond[sel][:-1])
    with pytest.raises(InputError, match="select_counts"):
        select_condition_psth(x[fit], cond[fit], x[sel][:, :-1], cond[sel])
