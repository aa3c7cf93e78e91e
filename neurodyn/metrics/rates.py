"""Rate R² against ground-truth rates (synthetic data such as the LFADS Lorenz benchmark)."""

from __future__ import annotations

from neurodyn.errors import InputError
from neurodyn.metrics.bits import check_rates, check_shape


def rate_r2(true_rates, pred_rates) -> float:
    r"""R² of predicted against true rates, the NDT convention (``neuron_r2``).

    Trials and time are flattened into rows; per neuron

    .. math:: R^2_n = 1 - \frac{\sum_{i,t} (y_{itn} - \hat y_{itn})^2}{\sum_{i,t} (y_{itn} - \bar y_n)^2}

    with :math:`y` = **true** rates, :math:`\hat y` = predicted; averaged uniformly over neurons
    (``sklearn.metrics.r2_score(y_true=true, y_pred=pred, multioutput="uniform_average")``).
    R² is not symmetric: the first argument is the truth. Both arrays must use the same unit
    (counts per bin; divide the Lorenz file's truth by its ``conversion_factor``). NaN, infinite or negative
    values are refused (naming the argument and the first index), as :func:`~neurodyn.metrics.bits_per_spike`
    refuses them: a rate is never below zero, so such values are no rates (log-rates, a read-out that was not
    clipped) and an R² of them would be a number about something else. A neuron whose true rate
    is constant has no variance to explain: sklearn scores it 1 when predicted exactly, else 0
    (``force_finite``), and it counts in the average like the others. At least two rows are needed.

    Parameters
    ----------
    true_rates : array (trials, bins, neurons) or (rows, neurons)
    pred_rates : array of the same shape

    Returns
    -------
    float
        1 for a perfect prediction, 0 for predicting each neuron's mean true rate, unbounded below.

    Examples
    --------
    >>> import numpy as np
    >>> truth = np.array([[[1.0, 2.0], [3.0, 2.5]]])
    >>> rate_r2(truth, truth)
    1.0
    >>> rate_r2(truth, np.broadcast_to(truth.mean(axis=(0, 1)), truth.shape))
    0.0
    """
    from sklearn.metrics import r2_score

    true_rates = check_rates(true_rates, "true_rates", what="rates")
    pred_rates = check_rates(pred_rates, "pred_rates")
    check_shape(pred_rates, true_rates.shape, "pred_rates")
    if true_rates.ndim < 2:
        raise InputError(f"expected (..., neurons) arrays, got shape {true_rates.shape}", field="true_rates")
    n_neurons = true_rates.shape[-1]
    if true_rates.size // max(n_neurons, 1) < 2:  # sklearn returned nan with a warning
        raise InputError(f"R² needs at least two rows (trials x bins), got shape {true_rates.shape}",
                         field="true_rates")
    return float(
        r2_score(
            true_rates.reshape(-1, n_neurons),
            pred_rates.reshape(-1, n_neurons),
            multioutput="uniform_average",
        )
    )
