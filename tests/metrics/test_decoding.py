"""vel R² (ridge + grid-searched CV) against sklearn's GridSearchCV; tp corr on constructed cases."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import Ridge
from sklearn.model_selection import GridSearchCV

from neurodyn.errors import InputError
from neurodyn.metrics import ridge_cv_r2, tp_corr, velocity_r2
from neurodyn.metrics.decoding import RIDGE_ALPHAS


def sklearn_decoder(tx, ty, ex, ey):
    """nlb_tools' decoder, literally: the oracle for our sufficient-statistics ridge."""
    search = GridSearchCV(Ridge(), {"alpha": np.logspace(-4, 0, 9)})
    search.fit(tx, ty)
    return search.score(ex, ey), search.best_params_["alpha"]


@pytest.mark.parametrize("n_rows, noise", [(203, 3.0), (61, 0.3), (1000, 1.0)])
def test_ridge_cv_matches_gridsearchcv(n_rows, noise):
    rng = np.random.default_rng(n_rows)
    # collinear, offset features make the penalty matter and test the centring
    base = rng.normal(size=(n_rows + 80, 6))
    x = np.hstack([base, base[:, :3] + 1e-3 * rng.normal(size=(n_rows + 80, 3))]) + 5.0
    y = x[:, :2] @ rng.normal(size=(2, 2)) + noise * rng.normal(size=(n_rows + 80, 2))
    expected, _ = sklearn_decoder(x[:n_rows], y[:n_rows], x[n_rows:], y[n_rows:])
    # both solve the same 9-feature normal equations in float64 (condition number ~1e6 here):
    # agreement to 1e-8 leaves a wide margin over rounding yet catches any fold / alpha mistake
    assert ridge_cv_r2(x[:n_rows], y[:n_rows], x[n_rows:], y[n_rows:]) == pytest.approx(expected, abs=1e-8)


def test_grid_and_folds_are_sklearns():
    assert np.allclose(RIDGE_ALPHAS, np.logspace(-4, 0, 9))
    from sklearn.model_selection import KFold

    from neurodyn.metrics.decoding import _kfold_bounds

    for n in (10, 13, 24):
        ours = [np.arange(a, b) for a, b in _kfold_bounds(n, 5)]
        theirs = [test for _, test in KFold(5).split(np.zeros(n))]
        assert all(np.array_equal(o, t) for o, t in zip(ours, theirs))


def test_velocity_r2_with_nan_rows_and_two_masks(nlb_group):
    target, pred = nlb_group(4, n_masks=2, n_train=40, n_bins=8)
    train_rates = np.concatenate([pred["train_rates_heldin"], pred["train_rates_heldout"]], axis=-1)
    eval_rates = np.concatenate([pred["eval_rates_heldin"], pred["eval_rates_heldout"]], axis=-1)
    target["eval_behavior"][1, 3:5] = np.nan
    ours = velocity_r2(
        train_rates,
        target["train_behavior"],
        eval_rates,
        target["eval_behavior"],
        target["train_decode_mask"],
        target["eval_decode_mask"],
    )
    scores = []
    for k in range(2):  # the oracle: flatten, drop NaN-behaviour rows, sklearn decoder per mask
        parts = []
        for rates, beh, mask in (
            (train_rates, target["train_behavior"], target["train_decode_mask"][:, k]),
            (eval_rates, target["eval_behavior"], target["eval_decode_mask"][:, k]),
        ):
            x, y = rates[mask].reshape(-1, rates.shape[2]), beh[mask].reshape(-1, 2)
            keep = ~np.isnan(y[:, 0])
            parts += [x[keep], y[keep]]
        scores.append(sklearn_decoder(*parts)[0])
    assert ours == pytest.approx(np.mean(scores), abs=1e-8)


def test_velocity_r2_rejects_nan_rates_in_decoded_rows(nlb_group):
    target, pred = nlb_group(5)
    rates = np.concatenate([pred["train_rates_heldin"], pred["train_rates_heldout"]], axis=-1)
    eval_rates = np.concatenate([pred["eval_rates_heldin"], pred["eval_rates_heldout"]], axis=-1)
    rates[0, 0] = np.nan  # a NaN-behaviour row: dropped, allowed
    velocity_r2(rates, target["train_behavior"], eval_rates, target["eval_behavior"])
    rates[3, 3] = np.nan
    with pytest.raises(InputError, match="train_rates"):
        velocity_r2(rates, target["train_behavior"], eval_rates, target["eval_behavior"])
    with pytest.raises(InputError, match="expected shape"):
        velocity_r2(rates[:, :5], target["train_behavior"], eval_rates, target["eval_behavior"])


def _dmfc_case(sign: float):
    """Two conditions; each trial's rates move at constant speed tp (sign=+1) or 1/tp (sign=-1)."""
    n_trials, n_bins = 8, 12
    tp = np.array([600, 700, 800, 900, 650, 750, 850, 950.0])
    behavior = np.column_stack([np.repeat([0.0, 1.0], 4), np.zeros(8), np.zeros(8), np.full(8, 700.0), tp])
    spikes = np.zeros((n_trials, n_bins, 2))
    spikes[:, :4] = np.nan  # outside set -> go
    speed = tp if sign > 0 else 1.0 / tp
    steps = np.arange(n_bins)[None, :] * speed[:, None]
    rates = np.stack([steps, np.zeros_like(steps), np.zeros_like(steps)], axis=-1) / 1000.0
    rates[:, :4, 0] = np.random.default_rng(0).uniform(0, 50, (n_trials, 4))  # ignored bins: huge jumps
    return spikes, rates, behavior


def test_tp_corr_monotone_cases():
    # speed ∝ tp within each condition -> Pearson r = 1 exactly; speed ∝ 1/tp -> r < 0
    assert tp_corr(*_dmfc_case(+1.0)) == pytest.approx(1.0, abs=1e-12)
    spikes, rates, behavior = _dmfc_case(-1.0)
    # r of (1/tp, tp) for the two 4-trial conditions, computed directly
    expected = np.mean(
        [np.corrcoef(1 / behavior[i : i + 4, 4], behavior[i : i + 4, 4])[0, 1] for i in (0, 4)]
    )
    assert tp_corr(spikes, rates, behavior) == pytest.approx(expected, abs=1e-12)


def test_tp_corr_ignores_outliers():
    spikes, rates, behavior = _dmfc_case(+1.0)
    rates[0, 4:, 0] = rates[0, 4:, 0][::-1] * 7  # wreck trial 0 ...
    behavior[0] = np.nan  # ... but it is an outlier: excluded from every condition
    assert tp_corr(spikes, rates, behavior) == pytest.approx(1.0, abs=1e-12)
