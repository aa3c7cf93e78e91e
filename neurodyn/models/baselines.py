"""Reference estimators of single-trial rates: Gaussian smoothing, condition PSTH, factor analysis.

These are the fair baselines a latent-dynamics model is compared with (LFADS / NDT papers): every
hyper-parameter (smoothing width, number of factors) is chosen by an *observable* criterion, a
held-out Poisson log-likelihood of spike counts, so no true rate is ever consulted.

- :func:`smooth` — Gaussian smoothing along time, kernel renormalised at the trial edges.
- :func:`loo_smoothing_loglik` — leave-one-bin-out criterion for the width: each bin's count is
  predicted by the kernel-weighted mean of the *other* bins of the same trial and neuron.
- :func:`condition_psth` — mean of the fitting trials of each condition (needs the condition labels,
  so it is an oracle for single-trial methods), optionally smoothed; :func:`select_condition_psth` chooses
  the width by the selection trials' likelihood.
- :func:`select_smoothing`, :func:`select_condition_psth`, :func:`select_fa` — the choices, each from a grid
  that grows from a choice at its edge by one rule (a width halved or doubled) until the criterion turns down.
- :class:`SmoothedFA` — factor analysis (``sklearn.decomposition.FactorAnalysis``) on smoothed counts;
  rates are the factor model's reconstruction ``mu + W E[z | x]``; :meth:`SmoothedFA.loo_loglik` is the
  leave-one-neuron-out criterion (each neuron's count predicted from the other neurons through the
  fitted Gaussian, ``E[x_n | x_-n]``), used to choose width and dimension.

All arrays are ``(trials, bins, neurons)`` counts per bin.
"""

from __future__ import annotations

import numpy as np

from neurodyn.errors import InputError

__all__ = ["PSTH_WIDTHS", "SMOOTHING_WIDTHS", "SmoothedFA", "condition_psth", "fa_grid_edge", "loo_smoothing_loglik",
           "poisson_loglik", "select_condition_psth", "select_fa", "select_smoothing", "smooth", "smoothing_grid_edge",
           "smoothing_matrix"]

#: rates below this are clipped before taking logs (a zero rate with a spike would give -inf)
MIN_RATE = 1e-6


def _counts(x, name: str = "counts") -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 3:
        raise InputError(f"expected (trials, bins, neurons), got shape {x.shape}", field=name)
    return x


def poisson_loglik(rates, counts) -> float:
    """Mean Poisson log-likelihood per entry, ``mean(y log r - r - log y!)``; rates clipped at :data:`MIN_RATE`.

    >>> round(poisson_loglik(np.ones((1, 2, 1)), np.array([[[0.0], [1.0]]])), 6)
    -1.0
    """
    from scipy.special import gammaln

    r = np.maximum(np.asarray(rates, dtype=np.float64), MIN_RATE)
    y = np.asarray(counts, dtype=np.float64)
    return float(np.mean(y * np.log(r) - r - gammaln(y + 1.0)))


def smoothing_matrix(n_bins: int, sigma_bins: float, *, leave_out: bool = False) -> np.ndarray:
    """Row-normalised Gaussian weights ``S`` (n_bins, n_bins): ``smoothed[t] = sum_s S[t, s] x[s]``.

    ``sigma_bins = 0`` is the identity. Rows are renormalised, so the edges average over the bins that
    exist. ``leave_out=True`` zeroes the diagonal before normalising (bin ``t`` predicted from the others).

    >>> S = smoothing_matrix(5, 1.0); bool(np.allclose(S.sum(1), 1)), bool(np.allclose(S, S[::-1, ::-1]))
    (True, True)
    >>> float(smoothing_matrix(4, 1.0, leave_out=True)[2, 2])
    0.0
    """
    if sigma_bins < 0 or not np.isfinite(sigma_bins):
        raise InputError(f"must be >= 0, got {sigma_bins!r}", field="sigma_bins")
    if sigma_bins == 0:
        if leave_out:
            raise InputError("a zero width cannot leave the centre bin out", field="sigma_bins")
        return np.eye(n_bins)
    t = np.arange(n_bins)
    w = np.exp(-0.5 * ((t[:, None] - t[None, :]) / sigma_bins) ** 2)
    if leave_out:
        np.fill_diagonal(w, 0.0)
    return w / w.sum(1, keepdims=True)


def smooth(counts, sigma_bins: float) -> np.ndarray:
    """Gaussian-smooth each trial and neuron along time (width in bins; 0 returns a copy).

    >>> x = np.zeros((1, 9, 1)); x[0, 4, 0] = 1.0
    >>> y = smooth(x, 1.0)[0, :, 0]; int(y.argmax()), bool(np.isclose(y[3], y[5])), bool(y[4] < 1)
    (4, True, True)
    """
    x = _counts(counts)
    return np.einsum("ts,isn->itn", smoothing_matrix(x.shape[1], sigma_bins), x)


def loo_smoothing_loglik(counts, sigma_bins: float) -> float:
    """Leave-one-bin-out Poisson log-likelihood per entry of Gaussian smoothing at ``sigma_bins``.

    Each count ``x[i, t, n]`` is scored under the rate ``sum_{s != t} S[t, s] x[i, s, n]`` (other bins of
    the same trial and neuron), so the criterion does not reward copying the count itself and peaks at
    a width that balances noise against bias. Uses only spikes.
    """
    x = _counts(counts)
    rates = np.einsum("ts,isn->itn", smoothing_matrix(x.shape[1], sigma_bins, leave_out=True), x)
    return poisson_loglik(rates, x)


#: the widths (bins) :func:`select_smoothing` starts from
SMOOTHING_WIDTHS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0)
#: the narrowest width :func:`select_smoothing` extends its grid to (below it each bin is predicted by the
#: mean of its two neighbours, whatever the width)
MIN_SMOOTHING_WIDTH = 0.25


def _wider_or_narrower(width: float, widths, n_bins: int) -> list[float]:
    """The widths a growing grid tries next from the chosen ``width`` (``widths``: those tried so far): half of it
    when it is the narrowest (not below :data:`MIN_SMOOTHING_WIDTH`), twice it when it is the widest and narrower
    than the trial (``n_bins``). Empty when the choice lies inside the grid or at a limit: the grid stops growing.
    The one rule of :func:`select_smoothing`, :func:`select_condition_psth` and :func:`select_fa`'s width axis.

    >>> _wider_or_narrower(2.0, [1.0, 2.0], 50), _wider_or_narrower(0.5, [0.5, 1.0], 50)
    ([4.0], [0.25])
    >>> _wider_or_narrower(1.0, [0.5, 1.0, 2.0], 50), _wider_or_narrower(64.0, [32.0, 64.0], 50)
    ([], [])
    """
    steps = []
    if width == min(widths) and width > MIN_SMOOTHING_WIDTH:
        steps.append(max(width / 2.0, MIN_SMOOTHING_WIDTH))
    if width == max(widths) and width < n_bins:
        steps.append(2.0 * width)
    return steps


def _select_width(score, sigmas, n_bins: int, extend: bool) -> tuple[float, dict]:
    """The width with the highest ``score(width)`` among ``sigmas`` and every score; with ``extend`` the grid grows
    by :func:`_wider_or_narrower` while the best width is at its edge (until the score turns down, or a limit)."""
    scores = {float(s): score(float(s)) for s in sigmas}
    if not scores:
        raise InputError("no candidate width", field="sigmas")
    best = max(scores, key=scores.get)
    while extend:
        steps = [w for w in _wider_or_narrower(best, scores, n_bins) if w not in scores]
        if not steps:
            break
        for width in steps:
            scores[width] = score(width)
        best = max(scores, key=scores.get)
    return best, dict(sorted(scores.items()))


def select_smoothing(counts, sigmas=SMOOTHING_WIDTHS, *, extend: bool = True) -> tuple[float, dict]:
    """The width (bins) with the highest :func:`loo_smoothing_loglik` on ``counts``, and every score.

    A best width at an edge of the grid says the grid is too narrow, so with ``extend`` (default) the grid
    grows until the criterion turns down: while the best is the widest width tried, twice that width is
    tried, until a width at or beyond the trial length (``counts.shape[1]`` bins) has been tried (wider
    kernels tend to each trial's flat mean); while it is the narrowest, half that width, down to
    :data:`MIN_SMOOTHING_WIDTH`. The scores hold every width tried; :func:`smoothing_grid_edge` says whether
    the choice is still at an edge (the criterion was still rising where the grid stops).

    >>> x = np.random.default_rng(0).poisson(1.0, (20, 30, 3)).astype(float)  # constant rates
    >>> best, scores = select_smoothing(x, (1.0, 2.0))
    >>> best, sorted(scores), smoothing_grid_edge(best, scores)
    (32.0, [1.0, 2.0, 4.0, 8.0, 16.0, 32.0], 'widest')
    """
    x = _counts(counts)
    if x.shape[1] < 2:  # leave-one-bin-out needs another bin to predict a bin from (1 bin: every score NaN)
        raise InputError(f"needs trials of at least 2 bins to choose a width, got {x.shape[1]}", field="counts")
    return _select_width(lambda s: loo_smoothing_loglik(x, s), sigmas, x.shape[1], extend)


def smoothing_grid_edge(best: float, scores: dict) -> str | None:
    """``'widest'`` / ``'narrowest'`` when ``best`` is the widest / narrowest width in ``scores``, else None.

    >>> smoothing_grid_edge(2.0, {1.0: -0.9, 2.0: -0.8, 4.0: -0.85}) is None
    True
    """
    if len(scores) > 1 and best == max(scores):
        return "widest"
    if len(scores) > 1 and best == min(scores):
        return "narrowest"
    return None


def condition_psth(counts, conditions, query_conditions, sigma_bins: float = 0.0) -> np.ndarray:
    """Rates of ``query_conditions`` trials: the mean of ``counts`` over trials of the same condition.

    Knows each trial's condition label, which a single-trial model does not: an oracle reference.
    ``sigma_bins > 0`` smooths the average along time. A query condition absent from ``conditions``
    raises.

    >>> x = np.arange(8.0).reshape(4, 2, 1)
    >>> condition_psth(x, [0, 0, 1, 1], [1, 0])[:, :, 0].tolist()
    [[5.0, 6.0], [1.0, 2.0]]
    """
    x = _counts(counts)
    conditions, query = np.asarray(conditions), np.asarray(query_conditions)
    if conditions.shape != (x.shape[0],):
        raise InputError(f"need one label per trial ({x.shape[0]}), got shape {conditions.shape}", field="conditions")
    labels = np.unique(conditions)
    missing = np.setdiff1d(np.unique(query), labels)
    if missing.size:
        raise InputError(f"condition(s) {missing[:5].tolist()} have no fitting trials", field="query_conditions")
    means = np.stack([x[conditions == c].mean(0) for c in labels])
    if sigma_bins > 0:
        means = smooth(means, sigma_bins)
    return means[np.searchsorted(labels, query)]


#: the widths (bins) :func:`select_condition_psth` starts from (0: the plain mean of the trials)
PSTH_WIDTHS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)


def select_condition_psth(fit_counts, fit_conditions, select_counts, select_conditions, sigmas=PSTH_WIDTHS, *,
                          extend: bool = True) -> tuple[float, dict]:
    """The smoothing width (bins) of the :func:`condition_psth` of the fitting trials with the highest
    :func:`poisson_loglik` of the selection trials' counts (each scored under the PSTH of its own condition),
    and every score.

    Uses the spikes of both sets and the condition labels, never a true rate. With ``extend`` (default) the grid
    grows from a best width at its edge as :func:`select_smoothing`'s does, until the criterion turns down (twice
    the widest until the trial length is reached, half the narrowest down to :data:`MIN_SMOOTHING_WIDTH`; 0, no
    smoothing, is a limit); :func:`smoothing_grid_edge` says whether the choice is still at an edge.

    >>> rng = np.random.default_rng(0)
    >>> x = rng.poisson(1.0, (40, 30, 3)).astype(float)  # rates constant in time: the widest width wins
    >>> cond = np.arange(40) % 4
    >>> best, scores = select_condition_psth(x[:32], cond[:32], x[32:], cond[32:], (1.0, 2.0))
    >>> best, sorted(scores), smoothing_grid_edge(best, scores)
    (32.0, [1.0, 2.0, 4.0, 8.0, 16.0, 32.0], 'widest')
    """
    fit_x, sel_x = _counts(fit_counts, "fit_counts"), _counts(select_counts, "select_counts")
    if sel_x.shape[1:] != fit_x.shape[1:]:
        raise InputError(f"bins and neurons {sel_x.shape[1:]} differ from the fitting trials' {fit_x.shape[1:]}",
                         field="select_counts")
    if np.shape(select_conditions) != (sel_x.shape[0],):
        raise InputError(f"need one label per selection trial ({sel_x.shape[0]}), got shape "
                         f"{np.shape(select_conditions)}", field="select_conditions")

    def score(sigma: float) -> float:
        return poisson_loglik(condition_psth(fit_x, fit_conditions, select_conditions, sigma), sel_x)

    return _select_width(score, sigmas, fit_x.shape[1], extend)


class SmoothedFA:
    """Factor analysis on Gaussian-smoothed counts (each bin of each trial is one sample).

    Parameters
    ----------
    n_components
        Number of factors.
    sigma_bins
        Smoothing width in bins applied before the factor model.
    seed
        ``random_state`` of :class:`sklearn.decomposition.FactorAnalysis`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> z = np.sin(np.linspace(0, 6, 40))[None, :, None] * rng.uniform(0.5, 1.5, (30, 1, 1))
    >>> x = rng.poisson(np.exp(0.8 * z @ np.ones((1, 10)))).astype(float)
    >>> fa = SmoothedFA(1, 2.0).fit(x)
    >>> fa.predict(x).shape
    (30, 40, 10)
    """

    def __init__(self, n_components: int, sigma_bins: float, seed: int = 0):
        if int(n_components) < 1:
            raise InputError(f"must be >= 1, got {n_components!r}", field="n_components")
        self.n_components, self.sigma_bins, self.seed = int(n_components), float(sigma_bins), seed

    def fit(self, counts) -> SmoothedFA:
        from sklearn.decomposition import FactorAnalysis

        x = smooth(counts, self.sigma_bins)
        self.n_neurons = x.shape[-1]
        self.fa_ = FactorAnalysis(n_components=self.n_components, random_state=self.seed)
        self.fa_.fit(x.reshape(-1, self.n_neurons))
        return self

    def _flat(self, counts) -> tuple[np.ndarray, tuple]:
        x = smooth(counts, self.sigma_bins)
        if x.shape[-1] != self.n_neurons:
            raise InputError(f"fitted on {self.n_neurons} neurons, got {x.shape[-1]}", field="counts")
        return x.reshape(-1, self.n_neurons), x.shape

    def predict(self, counts) -> np.ndarray:
        """Denoised rates ``mu + W E[z | x]`` (counts per bin, clipped at :data:`MIN_RATE`)."""
        flat, shape = self._flat(counts)
        z = self.fa_.transform(flat)
        rec = z @ self.fa_.components_ + self.fa_.mean_
        return np.maximum(rec, MIN_RATE).reshape(shape)

    def loo_predict(self, counts) -> np.ndarray:
        """Each neuron's rate predicted from the *other* neurons' smoothed counts, ``E[x_n | x_-n]``."""
        flat, shape = self._flat(counts)
        cov = self.fa_.get_covariance()
        centred = flat - self.fa_.mean_
        out = np.empty_like(flat)
        idx = np.arange(self.n_neurons)
        for n in idx:
            rest = idx != n
            coef = np.linalg.solve(cov[np.ix_(rest, rest)], cov[rest, n])
            out[:, n] = self.fa_.mean_[n] + centred[:, rest] @ coef
        return np.maximum(out, MIN_RATE).reshape(shape)

    def loo_loglik(self, counts) -> float:
        """Poisson log-likelihood per entry of the raw ``counts`` under :meth:`loo_predict` (observable)."""
        return poisson_loglik(self.loo_predict(counts), _counts(counts))


def select_fa(fit_counts, select_counts, sigmas=(1.0, 2.0, 3.0), dims=(2, 3, 4, 6, 8, 12, 16, 20), seed: int = 0,
              *, extend: bool = True):
    """Fit :class:`SmoothedFA` on ``fit_counts`` for every (width, dimension); keep the best on ``select_counts``.

    The criterion is :meth:`SmoothedFA.loo_loglik` on the selection trials (spikes only). A best candidate at an
    edge of the grid says the grid is too small, so with ``extend`` (default) it grows from the best candidate
    as :func:`select_smoothing`'s does, one axis at a time, until the criterion turns down: the width halved
    (down to :data:`MIN_SMOOTHING_WIDTH`) or doubled (until a width reaches the trial length), the number of
    factors halved (down to 1) or raised by half (up to one fewer than the neurons). Returns ``(model, scores)``
    with ``scores[(sigma, dim)]`` the criterion of each candidate tried; :func:`fa_grid_edge` says whether the
    choice is still at an edge.
    """
    fit_x = _counts(fit_counts)
    n_bins, n_neurons = fit_x.shape[1], fit_x.shape[-1]
    scores, models = {}, {}

    def score(s: float, d: int) -> None:
        model = SmoothedFA(d, s, seed=seed).fit(fit_x)
        scores[(float(s), int(d))] = model.loo_loglik(select_counts)
        models[(float(s), int(d))] = model

    for s in sigmas:
        for d in dims:
            if d < n_neurons:
                score(s, d)
    if not scores:
        raise InputError("no candidate dimension is smaller than the number of neurons", field="dims")
    best = max(scores, key=scores.get)
    while extend:
        s, d = best
        widths, counts = sorted({w for w, _ in scores}), sorted({k for _, k in scores})
        grow = [(w, d) for w in _wider_or_narrower(s, widths, n_bins)]
        if d == counts[0] and d > 1:
            grow.append((s, max(d // 2, 1)))
        if d == counts[-1] and d < n_neurons - 1:
            grow.append((s, min(max(d + 1, round(1.5 * d)), n_neurons - 1)))
        grow = [c for c in grow if c not in scores]
        if not grow:
            break
        for c in grow:
            score(*c)
        best = max(scores, key=scores.get)
    return models[best], dict(sorted(scores.items()))


def fa_grid_edge(best: tuple[float, int], scores: dict) -> str | None:
    """Where ``best`` (width, factors) lies on an edge of the candidates in ``scores``: ``'narrowest width'``,
    ``'widest width'``, ``'fewest factors'``, ``'most factors'`` (joined by ``', '``), else None.

    >>> fa_grid_edge((1.0, 3), {(1.0, 3): -0.5, (2.0, 3): -0.6, (1.0, 2): -0.7, (1.0, 4): -0.6})
    'narrowest width'
    """
    widths, counts = sorted({w for w, _ in scores}), sorted({k for _, k in scores})
    s, d = float(best[0]), int(best[1])
    edges = [name for name, hit, span in (("narrowest width", s == widths[0], widths),
                                          ("widest width", s == widths[-1], widths),
                                          ("fewest factors", d == counts[0], counts),
                                          ("most factors", d == counts[-1], counts)) if hit and len(span) > 1]
    return ", ".join(edges) or None
