"""Spike smoothing + Poisson GLM: the Neural Latents Benchmark's basic baseline.

Held-in spikes are smoothed with nlb_tools' Gaussian kernel; ``log(smoothed + log_offset)`` of all
held-in neurons is the feature vector of each bin, and one Poisson GLM
(``sklearn.linear_model.PoissonRegressor``) per predicted neuron maps it to that neuron's rate:

.. math:: \\hat r_{t,j} = \\exp\\big(b_j + w_j^\\top \\log(\\tilde s_t + \\epsilon)\\big),
          \\qquad \\tilde s = s * g_\\sigma

(counts per bin), fit on the training trials. This follows nlb_tools' ``run_smoothing.py`` / the
basic tutorial (MIT; our own code).

Recipes (:data:`RECIPES`). The defaults are the baseline of nlb_tools' basic tutorial
(``examples/tutorials/basic_example.ipynb``): a 40 ms Gaussian kernel, ``log(smoothed + 1e-4)`` features,
``PoissonRegressor(alpha=0.1, max_iter=500)`` with sklearn's default L-BFGS solver for the held-out
neurons, and the smoothed held-in spikes themselves as held-in rates, so its co-bps, vel R2 and psth R2
are the published example's. ``recipe="neurodyn"`` (``neurodyn baseline --recipe neurodyn``) is a
stronger variant: a Poisson GLM for every held-in neuron too (smoothed spikes are poor held-in rates for
the velocity decoder and the PSTHs), a 50 ms kernel and Newton solves to the optimum. Forward-prediction
rates (the nlb_tools example makes none) are
the training trials' mean count of each neuron in each forward bin, Gaussian-smoothed over time
together with the observed window (a trial-averaged PSTH; the smoothing keeps sparse 5 ms bins from
predicting near-zero rates). Pipeline::

    prepare file -> neurodyn.commands.baseline.predict_prepared -> submission dict -> evaluate / write_submission
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np

from neurodyn.errors import InputError, with_article

#: rates are clipped to this range, as nlb_tools' example does
RATE_CLIP = (1e-9, 1e20)

#: named settings of :class:`SmoothingGLM`: ``nlb_tools`` (the default) is the baseline of nlb_tools' basic
#: tutorial; ``neurodyn`` fits held-in GLMs too, with a wider kernel and exact Newton solves.
RECIPES = {
    "nlb_tools": {"sigma_ms": 40.0, "alpha": 0.1, "heldin": "smooth", "solver": "lbfgs"},
    "neurodyn": {"sigma_ms": 50.0, "alpha": 0.1, "heldin": "glm", "solver": "newton-cholesky"},
}


def check_sigma(sigma_ms: float, bin_ms: float, n_bins: int, *, path=None, field: str = "sigma_ms") -> None:
    """Refuse a kernel width that nlb_tools' smoothing cannot use on ``n_bins``-bin trials, before any array.

    The window of :func:`gaussian_kernel` is ``int(6 sigma / bin)`` bins long and ``int(sigma / bin)``
    bins wide: a width below one bin is refused, and so is a window longer than the trial
    (:func:`smoothing_matrix`: numpy's 'same' convolution would return the window's length). Hence
    ``bin <= sigma < (n_bins + 1) * bin / 6``. Checked here in O(1), the refusal no longer waits for the
    window itself, which for ``sigma_ms=1e9`` at 5 ms bins is 1.2e9 floats (9 GiB per temporary array).

    Examples
    --------
    >>> check_sigma(117.4, 5, 140)
    >>> check_sigma(117.5, 5, 140)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    neurodyn.errors.InputError: sigma_ms: a 117.5 ms kernel spans int(6 sigma / bin) = 141 bins of 5 ms, ...
    """
    span = 6 * sigma_ms / bin_ms  # the expression gaussian_kernel truncates (inf for a huge sigma: no int())
    limits = f"sigma must be at least {bin_ms:g} ms (one bin) and below {(n_bins + 1) * bin_ms / 6:g} ms"
    if not sigma_ms / bin_ms >= 1:
        raise InputError(f"{sigma_ms:g} ms is shorter than one {bin_ms:g} ms bin: {limits}", path, field)
    if not span < n_bins + 1:  # int(span) > n_bins
        spans = f"{int(span)}" if span < 1e15 else f"{6 * (sigma_ms / bin_ms):.3g}"  # finite up to float max
        raise InputError(f"{with_article(f'{sigma_ms:g}')} ms kernel spans int(6 sigma / bin) = {spans} bins of "
                         f"{bin_ms:g} ms, "
                         f"longer than the {n_bins}-bin trials: {limits}", path, field)


def gaussian_kernel(sigma_ms: float, bin_ms: float) -> np.ndarray:
    r"""nlb_tools' smoothing window: Gaussian, ``int(6 sigma / bin)`` bins long, sum 1.

    Both the length ``M = int(6 sigma/bin)`` and the width ``int(sigma/bin)`` (in bins) are truncated
    to integers as in nlb_tools (``scipy.signal.gaussian(M, int(sigma/bin), sym=True)``):
    :math:`w_k \propto \exp(-\tfrac12 ((k - (M-1)/2) / \lfloor\sigma/\Delta\rfloor)^2)`, k = 0..M-1.

    Examples
    --------
    >>> w = gaussian_kernel(50, 5); len(w), round(float(w.sum()), 12)
    (60, 1.0)
    """
    length, width = int(6 * sigma_ms / bin_ms), int(sigma_ms / bin_ms)
    if length < 1 or width < 1:
        raise InputError(f"sigma {sigma_ms} ms is shorter than one {bin_ms} ms bin", field="sigma_ms")
    k = np.arange(length) - (length - 1) / 2.0
    window = np.exp(-0.5 * (k / width) ** 2)
    return window / window.sum()


def smoothing_matrix(n_bins: int, window: np.ndarray) -> np.ndarray:
    """(n_bins, n_bins) matrix ``C`` with ``C @ x == np.convolve(x, window, 'same')`` for any x.

    Built column by column from ``np.convolve`` itself, so it inherits numpy's exact 'same'
    alignment (also for even-length windows). A window longer than the trial is refused: numpy's
    'same' output would then be longer than the trial.
    """
    if len(window) > n_bins:
        raise InputError(
            f"smoothing window of {len(window)} bins is longer than the {n_bins}-bin trials", field="sigma_ms"
        )
    eye = np.eye(n_bins)
    return np.stack([np.convolve(eye[j], window, "same") for j in range(n_bins)], axis=1)


def smooth_spikes(spikes: np.ndarray, sigma_ms: float, bin_ms: float) -> np.ndarray:
    """Gaussian-smooth each trial and neuron along time ('same' convolution, nlb_tools' kernel).

    NaN bins (unobserved) count as zero and the result is renormalised by the kernel mass on
    observed bins, so a NaN gap does not turn the whole trial into NaN (nlb_tools would propagate
    NaN there); trials without NaN give exactly nlb_tools' result.

    Parameters
    ----------
    spikes : array (trials, bins, neurons), counts per bin

    Examples
    --------
    >>> bool(smooth_spikes(np.ones((1, 140, 1)), 50, 5)[0, 70, 0] > 0.99)
    True
    """
    spikes = np.asarray(spikes, dtype=np.float64)
    check_sigma(sigma_ms, bin_ms, spikes.shape[1])  # before the window is built
    matrix = smoothing_matrix(spikes.shape[1], gaussian_kernel(sigma_ms, bin_ms))
    observed = ~np.isnan(spikes)
    smoothed = np.einsum("st,btn->bsn", matrix, np.where(observed, spikes, 0.0))
    if observed.all():
        return smoothed
    mass = np.einsum("st,btn->bsn", matrix, observed.astype(np.float64))
    full = matrix.sum(axis=1)[None, :, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(mass > 0, smoothed * full / mass, 0.0)


class SmoothingGLM:
    """Spike smoothing + per-neuron Poisson GLM baseline (see module docstring).

    Parameters
    ----------
    sigma_ms : float
        Gaussian kernel standard deviation in ms (default 40, nlb_tools' basic tutorial).
    alpha : float
        L2 penalty of ``PoissonRegressor`` (default 0.1, as the tutorial).
    bin_ms : float
        Bin width of the spike arrays in ms.
    log_offset : float
        Added to smoothed counts before the log (nlb_tools: 1e-4).
    heldin : {"smooth", "glm"}
        Held-in rates: the smoothed spikes themselves ("smooth", the default, as nlb_tools' tutorial
        and ``run_smoothing.py``) or a GLM per held-in neuron ("glm", the ``neurodyn`` recipe).
    max_iter : int
        Initial solver iterations; as in nlb_tools, a fit that hits the limit is redone with 5x
        more, up to 10000.
    solver : {"lbfgs", "newton-cholesky"}
        ``PoissonRegressor`` solver (default "lbfgs", sklearn's and nlb_tools'). Both minimise the same
        convex penalised likelihood; Newton
        needs 3-5 iterations where L-BFGS (nlb_tools' default) needs 20-40, and at sklearn's default
        ``tol`` L-BFGS stops short of the optimum: on the MC_Maze_Small pseudo co-smoothing split
        (see ``tests/metrics``) L-BFGS gives co-bps 0.0991, Newton 0.10065, the optimum (either
        solver at tol 1e-8) 0.10065.
    n_threads : int or None
        BLAS and OpenMP threads while fitting and predicting. The per-neuron fits are small, so one thread
        avoids thread start-up and oversubscription costs (measured 6x faster on a loaded 2-core
        machine); ``None`` keeps the library default.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> train = {"train_spikes_heldin": rng.poisson(0.3, (8, 20, 3)).astype(float),
    ...          "train_spikes_heldout": rng.poisson(0.3, (8, 20, 2)).astype(float)}
    >>> model = SmoothingGLM(sigma_ms=10, bin_ms=5).fit(train)
    >>> out = model.predict({"eval_spikes_heldin": train["train_spikes_heldin"]})
    >>> out["eval_rates_heldout"].shape
    (8, 20, 2)
    """

    def __init__(
        self,
        sigma_ms: float = 40.0,
        alpha: float = 0.1,
        bin_ms: float = 5.0,
        log_offset: float = 1e-4,
        heldin: str = "smooth",
        max_iter: int = 500,
        solver: str = "lbfgs",
        n_threads: int | None = 1,
    ):
        if heldin not in {"glm", "smooth"}:
            raise InputError(f"heldin must be 'glm' or 'smooth', got {heldin!r}", field="heldin")
        self.sigma_ms, self.alpha, self.bin_ms = float(sigma_ms), float(alpha), float(bin_ms)
        self.log_offset, self.heldin, self.max_iter = float(log_offset), heldin, int(max_iter)
        self.solver, self.n_threads = solver, n_threads
        self.heldout_models_: list | None = None
        self.heldin_models_: list | None = None
        self.silent_units_: dict[str, list[int]] = {}
        self.forward_mean_: dict[str, np.ndarray] = {}

    def _threads(self):
        """Context limiting BLAS threads to ``n_threads`` (a no-op for None)."""
        import contextlib

        if self.n_threads is None:
            return contextlib.nullcontext()
        from threadpoolctl import threadpool_limits

        return threadpool_limits(limits=self.n_threads)  # BLAS and OpenMP (sklearn's loss kernels)

    def _features(self, spikes_heldin: np.ndarray) -> np.ndarray:
        smoothed = smooth_spikes(spikes_heldin, self.sigma_ms, self.bin_ms)
        return np.log(smoothed.reshape(-1, smoothed.shape[2]) + self.log_offset)

    def _fit_one(self, features: np.ndarray, counts: np.ndarray):
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.linear_model import PoissonRegressor

        max_iter = self.max_iter
        silent = not counts.sum() > 0
        while True:
            model = PoissonRegressor(alpha=self.alpha, max_iter=max_iter, solver=self.solver)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                if silent:  # sklearn starts from log(mean count) = log(0): its intercept -inf predicts rate 0, as
                    # nlb_tools' GLM does (kept for parity); the warning it printed is said once by fit's caller
                    warnings.filterwarnings("ignore", "divide by zero encountered in log", RuntimeWarning)
                model.fit(features, counts)
            if model.n_iter_ < max_iter or max_iter >= 10000:
                return model
            max_iter *= 5

    def fit(self, train_input: Mapping[str, np.ndarray], progress: bool = False) -> SmoothingGLM:
        """Fit the GLMs on ``train_spikes_heldin`` -> ``train_spikes_held{out,in}``.

        Parameters
        ----------
        train_input
            nlb_tools' train-input dict: ``train_spikes_heldin`` (trials, bins, n_heldin),
            ``train_spikes_heldout`` (trials, bins, n_heldout), optionally the ``*_forward`` arrays.
        progress
            Show a rich progress bar over neurons (CLI use).
        """
        for key in ("train_spikes_heldin", "train_spikes_heldout"):
            if key not in train_input:
                raise InputError(f"missing key '{key}'", field=key)
        heldin = np.asarray(train_input["train_spikes_heldin"], dtype=np.float64)
        heldout = np.asarray(train_input["train_spikes_heldout"], dtype=np.float64)
        if heldin.ndim != 3 or heldout.shape[:2] != heldin.shape[:2]:
            raise InputError(
                f"expected (trials, bins, neurons) arrays sharing trials and bins, got "
                f"{heldin.shape} and {heldout.shape}",
                field="train_spikes_heldout",
            )
        features = self._features(heldin)
        targets = [("heldout", heldout.reshape(-1, heldout.shape[2]))]
        if self.heldin == "glm":
            targets.append(("heldin", heldin.reshape(-1, heldin.shape[2])))
        jobs = [(kind, counts, j) for kind, counts in targets for j in range(counts.shape[1])]
        models: dict[str, list] = {"heldout": [], "heldin": []}
        iterator = jobs
        if progress:
            from rich.progress import track

            iterator = track(jobs, description="fitting Poisson GLMs")
        finite_rows = np.isfinite(features).all(axis=1)
        with self._threads():
            for kind, counts, j in iterator:
                keep = ~np.isnan(counts[:, j]) & finite_rows
                models[kind].append(self._fit_one(features[keep], counts[keep, j]))
        self.heldout_models_ = models["heldout"]
        self.heldin_models_ = models["heldin"] if self.heldin == "glm" else None
        # units without a spike in the training data: rate 0 before the clip, whatever the features
        self.silent_units_ = {kind: [int(j) for j in np.flatnonzero(~(np.nansum(counts, axis=0) > 0))]
                              for kind, counts in targets}
        self.n_heldin_, self.n_heldout_ = heldin.shape[2], heldout.shape[2]
        self.forward_mean_ = {}
        for kind, observed in (("heldin", heldin), ("heldout", heldout)):
            key = f"train_spikes_{kind}_forward"
            if key in train_input:
                self.forward_mean_[kind] = self._forward_psth(observed, train_input[key])
        return self

    def _forward_psth(self, observed: np.ndarray, forward) -> np.ndarray:
        """(fwd_bins, neurons) trial-mean counts of the forward window, smoothed across both windows.

        Smoothing is linear, so the trial mean is smoothed once; dividing by the kernel mass inside
        the trial (``C @ 1``) removes the zero-padding bias at the end of the forward window.
        """
        forward = np.asarray(forward, dtype=np.float64)
        if (
            forward.ndim != 3
            or forward.shape[0] != observed.shape[0]
            or forward.shape[2] != observed.shape[2]
        ):
            raise InputError(
                f"expected ({observed.shape[0]}, *, {observed.shape[2]}) forward spikes, got {forward.shape}",
                field="train_spikes_forward",
            )
        with np.errstate(invalid="ignore"):
            mean = np.nan_to_num(np.nanmean(np.concatenate([observed, forward], axis=1), axis=0), nan=0.0)
        check_sigma(self.sigma_ms, self.bin_ms, len(mean))
        matrix = smoothing_matrix(len(mean), gaussian_kernel(self.sigma_ms, self.bin_ms))
        smoothed = (matrix @ mean) / matrix.sum(axis=1)[:, None]
        return np.clip(smoothed[observed.shape[1] :], *RATE_CLIP)

    def _rates(self, spikes_heldin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        spikes_heldin = np.asarray(spikes_heldin, dtype=np.float64)
        if spikes_heldin.ndim != 3 or spikes_heldin.shape[2] != self.n_heldin_:
            raise InputError(
                f"expected (trials, bins, {self.n_heldin_}) held-in spikes, got {spikes_heldin.shape}",
                field="spikes_heldin",
            )
        n_trials, n_bins, _ = spikes_heldin.shape
        features = self._features(spikes_heldin)

        def predict(models):
            rates = np.stack([m.predict(features) for m in models], axis=1)
            return np.clip(rates, *RATE_CLIP).reshape(n_trials, n_bins, len(models))

        heldout = predict(self.heldout_models_)
        if self.heldin_models_ is not None:
            heldin = predict(self.heldin_models_)
        else:
            heldin = np.clip(smooth_spikes(spikes_heldin, self.sigma_ms, self.bin_ms), *RATE_CLIP)
        return heldin, heldout

    def predict(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Submission-layout rates (counts per bin) for the inputs given.

        Parameters
        ----------
        inputs
            Any of ``train_spikes_heldin`` -> ``train_rates_held{in,out}`` and
            ``eval_spikes_heldin`` -> ``eval_rates_held{in,out}`` (+ ``eval_rates_held{in,out}_forward``
            when the training input had forward arrays).

        Returns
        -------
        dict of float64 arrays (trials, bins, neurons)
        """
        if self.heldout_models_ is None:
            raise InputError("SmoothingGLM.predict called before fit", field="model")
        out: dict[str, np.ndarray] = {}
        for split in ("train", "eval"):
            key = f"{split}_spikes_heldin"
            if key not in inputs:
                continue
            with self._threads():
                heldin, heldout = self._rates(inputs[key])
            out[f"{split}_rates_heldin"], out[f"{split}_rates_heldout"] = heldin, heldout
            if split == "eval" and len(self.forward_mean_) == 2:
                for kind in ("heldin", "heldout"):
                    mean = self.forward_mean_[kind]
                    out[f"eval_rates_{kind}_forward"] = np.broadcast_to(
                        mean, (len(heldin), *mean.shape)
                    ).copy()
        if not out:
            raise InputError(
                "inputs hold neither 'train_spikes_heldin' nor 'eval_spikes_heldin'", field="inputs"
            )
        return out
