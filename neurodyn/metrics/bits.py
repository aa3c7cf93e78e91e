"""Poisson likelihood metrics of the Neural Latents Benchmark: bits per spike, co-bps, fp-bps.

Definitions follow ``nlb_tools/evaluation.py`` (MIT, Pei et al. 2021, arXiv:2109.04463); the code
is our own. All computations run in float64; rates and spike counts are **counts per bin**.

Shared input checks live here too (:func:`as_float64`, :func:`check_rates`, :func:`check_shape`) so that every
metric rejects bad input with the same one-line :class:`~neurodyn.errors.InputError`. Every metric takes numpy
arrays, nested lists and torch tensors (detached and copied to the CPU: a model's output with its grad, on a
GPU, in float32 or bfloat16).
"""

from __future__ import annotations

import numpy as np

from neurodyn.core.arrays import to_numpy
from neurodyn.errors import InputError

#: rates of exactly zero are replaced by this value before taking logs (as nlb_tools does)
ZERO_RATE = 1e-9


def as_float64(value, field: str, path=None) -> np.ndarray:
    """``value`` as a float64 numpy array; a torch tensor is detached and copied to the CPU first.

    Raises
    ------
    InputError
        Naming ``field`` when ``value`` is no numeric array (text, a ragged list, an object): numpy's
        'could not convert' / 'inhomogeneous shape' before, and torch's 'Can't call numpy() on Tensor that
        requires grad' for a model's output.

    Examples
    --------
    >>> as_float64([[1, 2], [3, 4]], "rates").dtype
    dtype('float64')
    """
    try:
        return to_numpy(value, np.float64)  # a torch tensor: any dtype, device, grad
    except (TypeError, ValueError):
        shape = ""
        if isinstance(value, list | tuple):
            shape = " (a ragged nested list?)"
        raise InputError(f"expected a numeric array, got {type(value).__name__}{shape}", path=path,
                         field=field) from None


def check_shape(array: np.ndarray, expected: tuple, field: str, path=None) -> None:
    """Raise :class:`InputError` unless ``array.shape`` matches ``expected`` (``None`` = any size).

    Examples
    --------
    >>> check_shape(np.zeros((2, 3)), (2, None), "x")
    """
    shape = tuple(np.shape(array))
    ok = len(shape) == len(expected) and all(e is None or e == s for e, s in zip(expected, shape))
    if not ok:
        shown = (
            "("
            + ", ".join("*" if e is None else str(e) for e in expected)
            + ("," if len(expected) == 1 else "")
            + ")"
        )
        raise InputError(f"expected shape {shown}, got {shape}", path=path, field=field)


def check_rates(rates, field: str = "rates", path=None, mask: np.ndarray | None = None,
                what: str = "rate predictions") -> np.ndarray:
    """Return ``rates`` as float64 after checking they are finite and non-negative.

    Parameters
    ----------
    rates
        Predicted rates (counts per bin), any shape.
    field, path
        Named in the error message.
    mask
        Optional boolean array of ``rates``' shape: only entries where it is True are checked
        (nlb_tools ignores rates where the target is NaN).
    what
        What the values are, in the message (``"negative <what> (3 entries, ...)"``): true rates are no
        predictions.

    Raises
    ------
    InputError
        On NaN, infinite or negative entries (the message gives the first offending index).

    Examples
    --------
    >>> check_rates([0.5, 1.0]).dtype
    dtype('float64')
    """
    arr = as_float64(rates, field, path)
    checked = arr if mask is None else np.where(mask, arr, 0.0)
    if arr.size == 0 or (checked.min() >= 0 and np.isfinite(checked.max())):
        return arr  # fast path: two reductions, no temporaries (min is NaN if any entry is NaN)
    for bad, kind in ((np.isnan(checked), "NaN"), (np.isinf(checked), "infinite"), (checked < 0, "negative")):
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise InputError(
                f"{kind} {what} ({int(bad.sum())} entries, first at index {first})",
                path=path,
                field=field,
            )
    return arr


def poisson_nll(rates, spikes) -> float:
    r"""Total Poisson negative log-likelihood, nlb_tools' ``neg_log_likelihood``.

    .. math:: \mathrm{NLL}(r, n) = \sum [\, r - n \ln r + \ln\Gamma(n + 1) \,]

    over the entries where ``spikes`` is not NaN; rates equal to 0 are replaced by 1e-9.

    Parameters
    ----------
    rates, spikes
        Arrays of the same shape, counts per bin.

    Examples
    --------
    >>> round(poisson_nll([1.0], [0.0]), 6)
    1.0
    """
    from scipy.special import gammaln

    r, n = _observed(rates, spikes)
    return float(np.sum(r - n * np.log(r) + gammaln(n + 1.0)))


def _observed(rates, spikes, field: str = "rates"):
    """Entries of (rates, spikes) where spikes are observed; checked, zeros replaced, float64."""
    spikes = as_float64(spikes, "spikes")
    if spikes.ndim == 0:
        raise InputError("expected an array (..., n_neurons) of counts, got a scalar", field="spikes")
    rates = as_float64(rates, field)
    check_shape(rates, spikes.shape, field)
    observed = ~np.isnan(spikes)
    counts = spikes[observed]
    if not np.isfinite(counts).all():  # NaN marks an unobserved entry; an infinite count is no count
        raise InputError(f"{int(np.isinf(counts).sum())} infinite counts", field="spikes")
    if counts.size and counts.min() < 0:
        raise InputError(f"negative counts (min {counts.min():g})", field="spikes")
    rates = check_rates(rates, field, mask=observed)
    r = rates[observed]
    r = np.where(r == 0, ZERO_RATE, r)
    return r, spikes[observed]


def bits_per_spike(rates, spikes) -> float:
    r"""Bits per spike of ``rates`` against a per-neuron mean-rate null model.

    .. math::
        \mathrm{bps} = \frac{\mathrm{NLL}(\bar r, n) - \mathrm{NLL}(r, n)}{\ln 2 \sum n},
        \qquad \bar r_j = \operatorname{nanmean}_{\text{all axes but the last}} n_{\dots j}

    Entries whose spike count is NaN are dropped (the evaluation mask); rates there may be anything.
    The :math:`\ln\Gamma(n+1)` terms cancel in the difference and are therefore not computed.

    Parameters
    ----------
    rates : array (..., n_neurons)
        Predicted rates, counts per bin, finite and >= 0 where ``spikes`` is observed.
    spikes : array (..., n_neurons)
        Observed counts per bin; NaN marks unobserved bins.

    Returns
    -------
    float
        0 for the null model itself, > 0 when better than each neuron's mean rate.

    Raises
    ------
    InputError
        Shape mismatch; NaN / infinite / negative rates; infinite or negative counts (NaN marks an
        unobserved entry); no spikes at all in ``spikes``.

    Examples
    --------
    >>> spikes = np.array([[[0.0], [2.0]]])
    >>> bits_per_spike(np.array([[[1.0], [1.0]]]), spikes)  # the null model
    0.0
    """
    spikes = as_float64(spikes, "spikes")
    r, n = _observed(rates, spikes)
    total = n.sum()
    if not total > 0:
        raise InputError("target holds no spikes: bits per spike is undefined", field="spikes")
    with np.errstate(invalid="ignore"):  # an all-NaN neuron has no observed entries anyway
        mean = np.nanmean(spikes.reshape(-1, spikes.shape[-1]), axis=0)
    null = np.broadcast_to(mean, spikes.shape)[~np.isnan(spikes)]
    null = np.where(null == 0, ZERO_RATE, null)
    nll_model = np.sum(r - n * np.log(r))
    nll_null = np.sum(null - n * np.log(null))
    return float((nll_null - nll_model) / total / np.log(2))


def co_bps(eval_rates_heldout, eval_spikes_heldout) -> float:
    """Co-smoothing bits per spike: :func:`bits_per_spike` of held-out rates on held-out spikes.

    Parameters
    ----------
    eval_rates_heldout, eval_spikes_heldout : array (trials, bins, n_heldout)
        Counts per bin over the evaluation window (NaN spikes outside it).

    Examples
    --------
    >>> n = np.array([[[1.0, 0.0], [0.0, 3.0]]])
    >>> co_bps(np.maximum(n, 1e-9), n) > 0
    True
    """
    return bits_per_spike(eval_rates_heldout, eval_spikes_heldout)


def fp_bps(
    eval_rates_heldin_forward,
    eval_rates_heldout_forward,
    eval_spikes_heldin_forward,
    eval_spikes_heldout_forward,
) -> float:
    """Forward-prediction bits per spike over held-in and held-out neurons stacked.

    Parameters
    ----------
    eval_rates_heldin_forward, eval_spikes_heldin_forward : array (trials, fwd_bins, n_heldin)
    eval_rates_heldout_forward, eval_spikes_heldout_forward : array (trials, fwd_bins, n_heldout)
        Counts per bin in the 200 ms after the observed window.

    Examples
    --------
    >>> n_in, n_out = np.ones((2, 3, 2)), np.ones((2, 3, 1))
    >>> fp_bps(n_in, n_out, n_in, n_out)
    0.0
    """
    names = ("eval_rates_heldin_forward", "eval_rates_heldout_forward", "eval_spikes_heldin_forward",
             "eval_spikes_heldout_forward")
    rates_in, rates_out, spikes_in, spikes_out = (as_float64(a, name) for a, name in zip(
        (eval_rates_heldin_forward, eval_rates_heldout_forward, eval_spikes_heldin_forward,
         eval_spikes_heldout_forward), names))
    check_shape(rates_in, spikes_in.shape, names[0])
    check_shape(rates_out, spikes_out.shape, names[1])
    if spikes_in.ndim == 0:
        raise InputError("expected an array (trials, fwd_bins, n_heldin) of counts, got a scalar", field=names[2])
    # the held-out units of the same trials and bins (numpy's concatenate error before)
    check_shape(spikes_out, (*spikes_in.shape[:-1], None), names[3])
    rates = np.concatenate([rates_in, rates_out], axis=-1)
    spikes = np.concatenate([spikes_in, spikes_out], axis=-1)
    return bits_per_spike(rates, spikes)
