"""Behaviour decoding metrics of the Neural Latents Benchmark: velocity R² and DMFC ``tp corr``.

``velocity_r2`` reproduces nlb_tools' ``velocity_decoding`` / ``fit_and_eval_decoder``:
``GridSearchCV(Ridge(), {"alpha": logspace(-4, 0, 9)})`` with the default 5-fold ``KFold`` (no
shuffling), refit on all training rows with the best alpha, R² on the evaluation rows. Instead of
45 separate ``Ridge`` fits on ~240k x 182 design matrices we compute each fold's Gram matrix once
and solve every alpha through one eigendecomposition per fold; the solutions are the same
(ridge with intercept = ridge on data centred with the training means), only faster.
"""

from __future__ import annotations

import numpy as np

from neurodyn.errors import InputError
from neurodyn.metrics.bits import as_float64, check_rates, check_shape

#: nlb_tools' ridge penalty grid
RIDGE_ALPHAS = np.logspace(-4, 0, 9)
#: sklearn's default number of cross-validation folds (``cv=None`` -> 5-fold KFold)
N_FOLDS = 5


def r2_uniform(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    r"""R² per trailing column set, averaged uniformly over outputs, as ``sklearn.metrics.r2_score``.

    ``y_true`` is (rows, outputs); ``y_pred`` is (rows, outputs) or (rows, k, outputs) for ``k``
    candidate predictions at once. Per output :math:`R^2 = 1 - \sum (y-\hat y)^2 / \sum (y-\bar y)^2`;
    a constant output scores 1 if predicted exactly, else 0 (sklearn's ``force_finite``).
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    yt = y_true if y_pred.ndim == 2 else y_true[:, None, :]
    numerator = np.sum((yt - y_pred) ** 2, axis=0)
    denominator = np.sum((y_true - y_true.mean(axis=0)) ** 2, axis=0)
    if y_pred.ndim == 3:
        denominator = np.broadcast_to(denominator, numerator.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        score = 1.0 - numerator / denominator
    score = np.where(denominator == 0, np.where(numerator == 0, 1.0, 0.0), score)
    return score.mean(axis=-1)


def _kfold_bounds(n_rows: int, n_folds: int) -> list[tuple[int, int]]:
    """Contiguous folds of sklearn's ``KFold(n_folds)``: the first ``n % k`` folds get one extra row."""
    sizes = np.full(n_folds, n_rows // n_folds)
    sizes[: n_rows % n_folds] += 1
    stops = np.cumsum(sizes)
    return [(int(stop - size), int(stop)) for size, stop in zip(sizes, stops)]


def _ridge_weights(gram, cross, alphas):
    """Ridge weights (alphas, features, outputs) from a centred Gram and cross-product matrix."""
    eigvals, eigvecs = np.linalg.eigh(gram)
    projected = eigvecs.T @ cross  # (features, outputs)
    scaled = projected[None] / (eigvals[None, :, None] + np.asarray(alphas)[:, None, None])
    return np.matmul(eigvecs[None], scaled)


def ridge_cv_r2(train_x, train_y, eval_x, eval_y, alphas=RIDGE_ALPHAS, n_folds: int = N_FOLDS) -> float:
    """Cross-validated ridge decoder, R² on held-out rows (nlb_tools' ``fit_and_eval_decoder``).

    Parameters
    ----------
    train_x : array (rows, features)
    train_y : array (rows, outputs)
    eval_x : array (rows_eval, features)
    eval_y : array (rows_eval, outputs)
        Rows whose first output is NaN must already be removed (see :func:`velocity_r2`).
    alphas
        Ridge penalties tried; the one with the best mean validation R² over the ``n_folds``
        contiguous folds (first one on ties) is refit on all training rows.

    Returns
    -------
    float
        R² on ``eval_y`` averaged uniformly over outputs.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 3)); y = x @ np.ones((3, 1))
    >>> round(ridge_cv_r2(x[:150], y[:150], x[150:], y[150:]), 4)
    1.0
    """
    train_x, train_y = as_float64(train_x, "train_x"), as_float64(train_y, "train_y")
    eval_x, eval_y = as_float64(eval_x, "eval_x"), as_float64(eval_y, "eval_y")
    check_shape(train_x, (None, None), "train_x")
    check_shape(train_y, (len(train_x), None), "train_y")
    check_shape(eval_x, (None, train_x.shape[1]), "eval_x")
    check_shape(eval_y, (len(eval_x), train_y.shape[1]), "eval_y")
    if len(train_x) < n_folds:
        raise InputError(
            f"{len(train_x)} training rows cannot be split into {n_folds} folds", field="train_behavior"
        )
    if len(eval_x) == 0:
        raise InputError("no evaluation rows with behaviour", field="eval_behavior")
    # Shifting x and y by constants does not change ridge-with-intercept predictions; removing the
    # global mean first keeps the per-fold centring (G - n m m^T) free of cancellation.
    x_shift, y_shift = train_x.mean(axis=0), train_y.mean(axis=0)
    x = train_x - x_shift
    y = train_y - y_shift
    bounds = _kfold_bounds(len(x), n_folds)
    grams = [x[a:b].T @ x[a:b] for a, b in bounds]
    crosses = [x[a:b].T @ y[a:b] for a, b in bounds]
    sums_x = [x[a:b].sum(axis=0) for a, b in bounds]
    sums_y = [y[a:b].sum(axis=0) for a, b in bounds]
    scores = np.zeros(len(alphas))
    for k, (a, b) in enumerate(bounds):
        others = [j for j in range(n_folds) if j != k]
        n_train = len(x) - (b - a)
        mean_x = sum(sums_x[j] for j in others) / n_train
        mean_y = sum(sums_y[j] for j in others) / n_train
        gram = sum(grams[j] for j in others) - n_train * np.outer(mean_x, mean_x)
        cross = sum(crosses[j] for j in others) - n_train * np.outer(mean_x, mean_y)
        weights = _ridge_weights(gram, cross, alphas)  # (alphas, features, outputs)
        n_alphas, n_features, n_outputs = weights.shape
        # one BLAS product for all alphas: (rows, features) @ (features, alphas * outputs)
        stacked = weights.transpose(1, 0, 2).reshape(n_features, n_alphas * n_outputs)
        intercept = (mean_y - mean_x @ weights).reshape(1, n_alphas * n_outputs)
        pred = (x[a:b] @ stacked + intercept).reshape(b - a, n_alphas, n_outputs)
        scores += r2_uniform(y[a:b], pred)
    best = int(np.argmax(scores / n_folds))  # argmax returns the first maximum, as GridSearchCV
    # the full training set's statistics are the sums over folds (x and y are already centred)
    weights = _ridge_weights(sum(grams), sum(crosses), [alphas[best]])[0]
    pred = (eval_x - x_shift) @ weights + y_shift
    return float(r2_uniform(eval_y, pred))


def velocity_r2(
    train_rates, train_behavior, eval_rates, eval_behavior, train_decode_mask=None, eval_decode_mask=None
) -> float:
    """Ridge decoding R² of behaviour from rates, averaged over decode masks (nlb ``vel R2``).

    Parameters
    ----------
    train_rates, eval_rates : array (trials, bins, n_heldin + n_heldout)
        Predicted rates, held-in then held-out neurons (counts per bin).
    train_behavior, eval_behavior : array (trials, bins, n_dims)
        E.g. hand velocity; rows whose first dimension is NaN are dropped.
    train_decode_mask, eval_decode_mask : bool array (trials, n_masks), optional
        One decoder per mask column (Area2_Bump: passive / active trials); all trials if omitted.

    Returns
    -------
    float
        Mean over masks of the evaluation R² (uniform over behaviour dimensions).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> rates = rng.gamma(2.0, size=(20, 10, 4)); vel = rates[..., :2] - rates[..., 2:]
    >>> round(velocity_r2(rates[:15], vel[:15], rates[15:], vel[15:]), 3)
    1.0
    """
    train_rates, eval_rates = as_float64(train_rates, "train_rates"), as_float64(eval_rates, "eval_rates")
    train_behavior = as_float64(train_behavior, "train_behavior")
    eval_behavior = as_float64(eval_behavior, "eval_behavior")
    check_shape(train_rates, (None, None, None), "train_rates")  # the behaviour was named for 2-D rates
    check_shape(eval_rates, (None, None, train_rates.shape[2]), "eval_rates")
    check_shape(train_behavior, (train_rates.shape[0], train_rates.shape[1], None), "train_behavior")
    check_shape(
        eval_behavior, (eval_rates.shape[0], eval_rates.shape[1], train_behavior.shape[2]), "eval_behavior"
    )
    if train_decode_mask is None:
        train_decode_mask = np.ones((train_rates.shape[0], 1), dtype=bool)
        eval_decode_mask = np.ones((eval_rates.shape[0], 1), dtype=bool)
    train_decode_mask = np.asarray(train_decode_mask, dtype=bool)
    eval_decode_mask = np.asarray(eval_decode_mask, dtype=bool)
    check_shape(train_decode_mask, (train_rates.shape[0], None), "train_decode_mask")
    check_shape(eval_decode_mask, (eval_rates.shape[0], train_decode_mask.shape[1]), "eval_decode_mask")
    r2s = []
    for column in range(train_decode_mask.shape[1]):
        rows = []
        for rates, behavior, mask, name in (
            (train_rates, train_behavior, train_decode_mask, "train"),
            (eval_rates, eval_behavior, eval_decode_mask, "eval"),
        ):
            selected = mask[:, column]
            if not selected.all():  # boolean indexing copies: skip it when every trial is selected
                rates, behavior = rates[selected], behavior[selected]
            x = rates.reshape(-1, rates.shape[2])
            y = behavior.reshape(-1, behavior.shape[2])
            keep = ~np.isnan(y[:, 0])
            if not keep.all():
                x, y = x[keep], y[keep]
            if np.isnan(x).any() or np.isinf(x).any():
                raise InputError(
                    "NaN or infinite rate predictions within the decoded bins", field=f"{name}_rates"
                )
            rows.append((x, y))
        (tx, ty), (ex, ey) = rows
        r2s.append(ridge_cv_r2(tx, ty, ex, ey))
    return float(np.mean(r2s))


def neural_speed(rates, observed) -> np.ndarray:
    r"""Mean step length of each trial's rate trajectory over its observed bins.

    .. math:: s_i = \operatorname{mean}_t \lVert r_{i,t+1} - r_{i,t} \rVert_2

    over consecutive *selected* bins of trial ``i`` (``observed[i]``), as nlb_tools does.

    Parameters
    ----------
    rates : array (trials, bins, neurons)
    observed : bool array (trials, bins)
    """
    speeds = np.full(len(rates), np.nan)
    for i, (trial, mask) in enumerate(zip(rates, observed)):
        steps = np.diff(trial[mask], axis=0)
        if len(steps):
            speeds[i] = np.linalg.norm(steps, axis=1).mean()
    return speeds


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; NaN for a constant input (as ``scipy.stats.pearsonr``)."""
    dx, dy = x - x.mean(), y - y.mean()
    denominator = np.sqrt(np.sum(dx * dx) * np.sum(dy * dy))
    if denominator == 0:
        return float("nan")
    return float(np.clip(np.sum(dx * dy) / denominator, -1.0, 1.0))


def tp_corr(eval_spikes_heldout, eval_rates, eval_behavior) -> float:
    """DMFC_RSG ``tp corr``: correlation of neural speed with produced interval, mean over conditions.

    Speed per eval trial (:func:`neural_speed`) over the bins where held-out spikes are not NaN
    (set -> go in nlb_tools' target); conditions are the unique non-NaN rows of behaviour columns
    ``[is_eye, theta, is_short]``; within each, Pearson r of speed against ``tp`` (last column).
    Outlier trials (NaN behaviour) belong to no condition. Conditions with fewer than 2 trials are
    skipped (nlb_tools would raise there).

    Parameters
    ----------
    eval_spikes_heldout : array (trials, bins, n_heldout)
    eval_rates : array (trials, bins, n_heldin + n_heldout)
    eval_behavior : array (trials, 5)
        Columns ``is_eye, theta, is_short, ts, tp``.

    Examples
    --------
    >>> spikes = np.zeros((4, 3, 1)); beh = np.array([[0, 0, 0, 0, tp] for tp in (1, 2, 3, 4.)])
    >>> rates = np.arange(3.0)[None, :, None] * np.array([1, 2, 3, 4.])[:, None, None]
    >>> tp_corr(spikes, rates, beh)
    1.0
    """
    eval_spikes_heldout = as_float64(eval_spikes_heldout, "eval_spikes_heldout")
    eval_rates = as_float64(eval_rates, "eval_rates")
    eval_behavior = as_float64(eval_behavior, "eval_behavior")
    check_shape(eval_spikes_heldout, (None, None, None), "eval_spikes_heldout")
    check_shape(eval_rates, (eval_spikes_heldout.shape[0], eval_spikes_heldout.shape[1], None), "eval_rates")
    check_shape(eval_behavior, (eval_rates.shape[0], 5), "eval_behavior")
    observed = ~np.isnan(eval_spikes_heldout[..., 0])
    check_rates(eval_rates, "eval_rates", mask=np.broadcast_to(observed[..., None], eval_rates.shape))
    speeds = neural_speed(eval_rates, observed)
    labels = eval_behavior[:, :3]
    valid = ~np.isnan(labels).any(axis=1)
    correlations = []
    for condition in np.unique(labels[valid], axis=0):
        members = valid & np.all(labels == condition, axis=1)
        if members.sum() < 2:
            continue
        correlations.append(_pearson(speeds[members], eval_behavior[members, -1]))
    if not correlations:
        raise InputError("no condition with at least 2 non-outlier trials", field="eval_behavior")
    return float(np.mean(correlations))
