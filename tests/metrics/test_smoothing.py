"""The spike-smoothing + Poisson GLM baseline: kernel, smoothing, GLM recovery, real-data check."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal.windows import gaussian

from neurodyn.errors import InputError
from neurodyn.metrics import co_bps
from neurodyn.models import smoothing
from neurodyn.models.smoothing import SmoothingGLM, check_sigma, gaussian_kernel, smooth_spikes, smoothing_matrix


@pytest.mark.parametrize("sigma_ms, bin_ms", [(50, 5), (50, 20), (40, 5), (60, 20)])
def test_kernel_and_smoothing_equal_nlb_tools_recipe(sigma_ms, bin_ms):
    # nlb_tools: signal.gaussian(int(6 sd / bin), int(sd / bin), sym=True), normalised, np.convolve 'same'
    window = gaussian(int(6 * sigma_ms / bin_ms), int(sigma_ms / bin_ms), sym=True)
    window /= window.sum()
    np.testing.assert_allclose(gaussian_kernel(sigma_ms, bin_ms), window, rtol=1e-13)
    spikes = np.random.default_rng(0).poisson(0.4, (3, 70, 4)).astype(float)
    expected = np.apply_along_axis(lambda x: np.convolve(x, window, "same"), 1, spikes)
    np.testing.assert_allclose(smooth_spikes(spikes, sigma_ms, bin_ms), expected, rtol=1e-12, atol=1e-15)


def test_smoothing_nan_bins_renormalised():
    spikes = np.ones((1, 60, 1))
    spikes[0, :10] = np.nan
    smoothed = smooth_spikes(spikes, 20, 5)
    # a constant observed signal stays constant next to the NaN gap (mass renormalised) and away
    # from the trial ends (12 bins: half the 24-bin window, where 'same' zero padding cuts the mass)
    np.testing.assert_allclose(smoothed[0, 12:-12, 0], 1.0, rtol=1e-12)
    assert np.isfinite(smoothed).all()  # NaN bins get the renormalised average of their neighbours
    with pytest.raises(InputError, match="longer than the 20-bin trials"):
        smooth_spikes(np.ones((1, 20, 1)), 50, 5)


@pytest.mark.parametrize(("bin_ms", "n_bins"), [(5, 140), (20, 35), (5, 20), (20, 75)])
def test_check_sigma_refuses_exactly_what_the_smoothing_refuses(bin_ms, n_bins):
    """The O(1) check against the window itself: both edges (one bin; a window of n_bins + 1 bins), the
    neighbouring floats of each, and a spread between."""
    upper = (n_bins + 1) * bin_ms / 6
    edges = [bin_ms, upper]
    sigmas = [x for e in edges for x in (np.nextafter(e, 0), e, np.nextafter(e, np.inf), e * 0.999, e * 1.001)]
    sigmas += list(np.linspace(0.5 * bin_ms, 1.5 * upper, 97))
    for sigma in sigmas:
        try:
            smoothing_matrix(n_bins, gaussian_kernel(sigma, bin_ms))
            refused = False
        except InputError:
            refused = True
        assert _refuses(sigma, bin_ms, n_bins) == refused, (sigma, bin_ms, n_bins)
    assert not _refuses(bin_ms, bin_ms, n_bins) and _refuses(upper, bin_ms, n_bins)  # [bin, upper)


def _refuses(sigma, bin_ms, n_bins) -> bool:
    try:
        check_sigma(sigma, bin_ms, n_bins)
    except InputError:
        return True
    return False


@pytest.mark.parametrize("sigma_ms", [1e9, 1e308, 118.0])
def test_too_wide_kernel_is_refused_before_the_window_is_built(monkeypatch, sigma_ms):
    """sigma 1e9 at 5 ms bins built a 1.2e9-float window (9 GiB per temporary: a MemoryError or all of
    the machine's memory) before the trial-length check refused it; now the window is never built."""

    def no_window(*_args):
        raise AssertionError("the window was built")

    monkeypatch.setattr(smoothing, "gaussian_kernel", no_window)
    with pytest.raises(InputError, match=r"^sigma_ms: a .* kernel spans .* longer than the 140-bin trials: "
                                         r"sigma must be at least 5 ms \(one bin\) and below 117\.5 ms$"):
        smooth_spikes(np.ones((2, 140, 3)), sigma_ms, 5)


def test_glm_recovers_a_log_linear_neuron():
    """Held-out rates exactly log-linear in the smoothed held-in features: the GLM must find them."""
    rng = np.random.default_rng(1)
    latent = np.cumsum(rng.normal(0, 0.3, (60, 140, 1)), axis=1)
    heldin = rng.poisson(np.exp(-1.0 + latent * np.array([0.5, -0.4, 0.3]))).astype(float)
    model = SmoothingGLM(sigma_ms=25, alpha=1e-3, heldin="smooth")
    features = np.log(smooth_spikes(heldin, 25, 5) + 1e-4)
    true_rates = np.exp(-2.0 + features @ np.array([0.6, -0.3, 0.2]))[..., None]
    heldout = rng.poisson(true_rates).astype(float)
    model.fit({"train_spikes_heldin": heldin[:50], "train_spikes_heldout": heldout[:50]})
    pred = model.predict({"eval_spikes_heldin": heldin[50:]})["eval_rates_heldout"]
    # 4 parameters from >= 1400 spikes: the MLE's log-rate error is ~ sqrt(4 / 1400) ≈ 0.05 RMS
    # (measured 0.034-0.050 mean absolute over seeds 0-3); 0.15 is a 3x margin, and any wrong
    # feature, alignment or link function gives errors of order 1
    assert np.mean(np.abs(np.log(pred) - np.log(true_rates[50:]))) < 0.15
    # and the fitted rates explain the held-out spikes almost as well as the true rates
    assert co_bps(pred, heldout[50:]) > co_bps(true_rates[50:], heldout[50:]) - 0.02


def test_predict_layout_forward_and_errors():
    rng = np.random.default_rng(2)
    train = {
        "train_spikes_heldin": rng.poisson(0.3, (12, 35, 4)).astype(np.float16),
        "train_spikes_heldout": rng.poisson(0.3, (12, 35, 2)).astype(np.float16),
        "train_spikes_heldin_forward": rng.poisson(0.3, (12, 10, 4)).astype(np.float16),
        "train_spikes_heldout_forward": rng.poisson(0.3, (12, 10, 2)).astype(np.float16),
    }
    model = SmoothingGLM(sigma_ms=50, bin_ms=20)
    with pytest.raises(InputError, match="before fit"):
        model.predict({"eval_spikes_heldin": train["train_spikes_heldin"]})
    model.fit(train)
    out = model.predict(
        {
            "train_spikes_heldin": train["train_spikes_heldin"],
            "eval_spikes_heldin": train["train_spikes_heldin"][:5],
        }
    )
    assert {k: v.shape for k, v in out.items()} == {
        "train_rates_heldin": (12, 35, 4),
        "train_rates_heldout": (12, 35, 2),
        "eval_rates_heldin": (5, 35, 4),
        "eval_rates_heldout": (5, 35, 2),
        "eval_rates_heldin_forward": (5, 10, 4),
        "eval_rates_heldout_forward": (5, 10, 2),
    }
    assert all(np.isfinite(v).all() and (v > 0).all() for v in out.values())
    # forward rates: a smoothed trial-mean; their time-average equals the mean count up to edge effects
    np.testing.assert_allclose(
        out["eval_rates_heldin_forward"][0].mean(),
        train["train_spikes_heldin_forward"].astype(float).mean(),
        rtol=0.25,
    )
    with pytest.raises(InputError, match=r"expected \(trials, bins, 4\)"):
        model.predict({"eval_spikes_heldin": np.zeros((2, 35, 3))})


@pytest.mark.requires_data
def test_mc_maze_small_pseudo_co_smoothing(small_test_nwb):
    """Real data: a pseudo co-smoothing split of the MC_Maze_Small test file (DANDI:000140,
    https://dandiarchive.org/dandiset/000140): 27 units held out (``default_rng(0)``), trials 0-79 fit, 80-99 scored.

    Reference: co-bps ≈ 0.103 / ≈ 0.10, figures measured on this split (published nowhere) with the smoothing +
    Poisson-regression baseline of nlb_tools' tutorial (https://github.com/neurallatents/nlb_tools,
    examples/tutorials/basic_example.ipynb) at 50 ms and alpha 0.1, quoted without the kernel's boundary
    convention or the solver tolerance. On this split those unspecified choices move co-bps between
    0.0991 (L-BFGS at sklearn's default tol) and 0.1023 (scipy gaussian_filter1d, zero boundary);
    the converged fit with nlb_tools' kernel gives 0.1006. |co-bps - 0.103| <= 0.005 covers them all,
    while a broken pipeline (misaligned bins, a log offset of 1e-6: 0.028, the null model: 0) fails.
    """
    from neurodyn.data.tensors import make_eval_input_tensors

    spikes = make_eval_input_tensors(small_test_nwb, "mc_maze_small", 5, phase="test")["eval_spikes_heldin"]
    assert spikes.shape == (100, 140, 107)
    spikes = spikes.astype(np.float64)
    heldout = np.random.default_rng(0).choice(107, 27, replace=False)
    heldin = np.setdiff1d(np.arange(107), heldout)
    model = SmoothingGLM(sigma_ms=50, alpha=0.1, bin_ms=5, heldin="smooth")
    model.fit(
        {"train_spikes_heldin": spikes[:80][..., heldin], "train_spikes_heldout": spikes[:80][..., heldout]}
    )
    rates = model.predict({"eval_spikes_heldin": spikes[80:][..., heldin]})["eval_rates_heldout"]
    assert co_bps(rates, spikes[80:][..., heldout]) == pytest.approx(0.103, abs=0.005)


@pytest.mark.parametrize("bin_ms", [5, 20])
def test_defaults_are_the_nlb_tools_tutorial_baseline(bin_ms):
    """SmoothingGLM() = the baseline of nlb_tools' examples/tutorials/basic_example.ipynb, written out here
    as the tutorial does it: kern_sd = round(40 / bin) bins, signal.gaussian(6 kern_sd, kern_sd), 'same'
    convolution, log(smoothed + 1e-4) -> PoissonRegressor(alpha=0.1, max_iter=500) (sklearn's L-BFGS) per
    held-out neuron, the smoothed held-in spikes as held-in rates."""
    from sklearn.linear_model import PoissonRegressor

    rng = np.random.default_rng(3)
    n_bins = 140 if bin_ms == 5 else 35
    latent = np.cumsum(rng.normal(0, 0.3 * np.sqrt(bin_ms / 5), (24, n_bins, 1)), axis=1)
    heldin = rng.poisson(np.exp(-1.5 + np.log(bin_ms / 5) + latent * rng.normal(0, 0.5, 6))).astype(float)
    heldout = rng.poisson(np.exp(-1.5 + np.log(bin_ms / 5) + latent * rng.normal(0, 0.5, 3))).astype(float)
    kern_sd = int(round(40 / bin_ms))
    window = gaussian(kern_sd * 6, kern_sd, sym=True)
    window /= window.sum()
    smooth = np.apply_along_axis(lambda x: np.convolve(x, window, "same"), 1, heldin)
    features = np.log(smooth.reshape(-1, 6) + 1e-4)
    train_rows = slice(0, 18 * n_bins)
    expected = np.stack([PoissonRegressor(alpha=0.1, max_iter=500).fit(features[train_rows], y).predict(
        features[18 * n_bins:]) for y in heldout[:18].reshape(-1, 3).T], axis=1).reshape(6, n_bins, 3)

    model = SmoothingGLM(bin_ms=bin_ms).fit({"train_spikes_heldin": heldin[:18], "train_spikes_heldout": heldout[:18]})
    out = model.predict({"eval_spikes_heldin": heldin[18:]})
    # the same features (to ~1e-16: a matrix product instead of np.convolve) and the same L-BFGS solver
    # and stopping rule: the fits agree to far below the solver's tolerance (1e-4)
    np.testing.assert_allclose(out["eval_rates_heldout"], expected, rtol=1e-7)
    # zero smoothed counts are clipped to 1e-9 spikes per bin, as nlb_tools' run_smoothing.py clips them
    np.testing.assert_allclose(out["eval_rates_heldin"], np.clip(smooth[18:], 1e-9, None), rtol=1e-12, atol=1e-15)
    assert (model.sigma_ms, model.alpha, model.heldin, model.solver) == (40.0, 0.1, "smooth", "lbfgs")
