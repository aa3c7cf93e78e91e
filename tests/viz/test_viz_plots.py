"""Plotting functions: each draws what it promises on tiny inputs and rejects bad shapes.

The numeric helpers (``pca``, ``trial_average``) are checked against closed forms: the eigenvalues
of the sample covariance, and the plain mean / standard error of the trials.
"""

from __future__ import annotations

import numpy as np
import pytest

from neurodyn.errors import InputError
from neurodyn.viz import (
    pca,
    plot_coupling,
    plot_energy,
    plot_latent_pca,
    plot_latents,
    plot_potential,
    plot_psth,
    plot_raster,
    plot_rates_heatmap,
    plot_rates_vs_truth,
    plot_state_posteriors,
    plot_states_aligned,
    trial_average,
)

RNG = np.random.default_rng(0)
SPIKES = RNG.poisson(0.3, (5, 24, 7)).astype(float)


def _data_axes(fig):
    """Axes that hold data (colour bars are axes too; they have the attribute `_colorbar`)."""
    return [ax for ax in fig.axes if not hasattr(ax, "_colorbar")]


# ------------------------------------------------------------------------------------------ numeric


def test_pca_matches_covariance_eigenvalues():
    # oracle: the variance along the k-th principal axis is the k-th eigenvalue of the sample
    # covariance (ddof=0); explained fractions are those over the trace. Float64 SVD vs eigvalsh on
    # a 4x4 problem agree to ~1e-12 relative; 1e-9 leaves room for summation order.
    x = RNG.normal(size=(6, 30, 4)) @ np.diag([3.0, 1.5, 0.5, 0.1]) @ np.linalg.qr(RNG.normal(size=(4, 4)))[0]
    projected, explained = pca(x, 4)
    flat = x.reshape(-1, 4)
    eig = np.sort(np.linalg.eigvalsh(np.cov(flat.T, ddof=0)))[::-1]
    np.testing.assert_allclose(projected.reshape(-1, 4).var(axis=0), eig, rtol=1e-9)
    np.testing.assert_allclose(explained, eig / eig.sum(), rtol=1e-9)
    # with all components the projection is a rotation of the centred data: distances are kept
    centred = flat - flat.mean(0)
    np.testing.assert_allclose(np.linalg.norm(projected.reshape(-1, 4), axis=1), np.linalg.norm(centred, axis=1))
    # sign convention: each component's largest loading is positive -> sign-flipped input, same output
    np.testing.assert_allclose(np.abs(pca(-x, 2)[0]), np.abs(projected[..., :2]), rtol=1e-9, atol=1e-12)


def test_pca_rejects_bad_input():
    with pytest.raises(InputError, match="n_components"):
        pca(np.zeros((2, 3, 2)), 3)
    with pytest.raises(InputError, match="latents"):
        pca(np.zeros((3, 2)), 1)
    with pytest.raises(InputError, match="NaN"):
        pca(np.full((2, 3, 2), np.nan), 1)


def test_trial_average_closed_form():
    psth, sem = trial_average(SPIKES, bin_ms=20)
    # no smoothing: mean and standard error over trials, in spikes/s (x 1000 / 20 ms)
    np.testing.assert_allclose(psth, SPIKES.mean(0) * 50.0)
    np.testing.assert_allclose(sem, SPIKES.std(0) * 50.0 / np.sqrt(len(SPIKES)))
    # NaN bins are left out of their bin's average (and count)
    x = SPIKES.copy()
    x[0, 3, 2] = np.nan
    psth, _ = trial_average(x, bin_ms=None)
    assert psth[3, 2] == pytest.approx(SPIKES[1:, 3, 2].mean())
    # smoothing by a normalised convolution keeps a constant rate exactly, also at the edges
    flat, _ = trial_average(np.full((3, 15, 2), 0.2), bin_ms=10, sigma_ms=30)
    np.testing.assert_allclose(flat, 20.0)
    with pytest.raises(InputError, match="bin_ms"):
        trial_average(SPIKES, sigma_ms=30)


# ------------------------------------------------------------------------------------------ figures


def test_raster_marks_every_nonempty_bin():
    fig = plot_raster(SPIKES[0], bin_ms=5, offset_ms=-50, title="t")
    (points,) = fig.axes[0].collections
    assert len(points.get_offsets()) == int((SPIKES[0] > 0).sum())
    assert fig.axes[0].get_xlabel() == "time (s)"
    with pytest.raises(InputError, match="spikes"):
        plot_raster(SPIKES)


def test_rates_vs_truth_one_panel_per_neuron():
    fig = plot_rates_vs_truth(SPIKES, SPIKES * 0.5, neurons=[1, 4, 6], spikes=SPIKES, bin_ms=20)
    assert len(fig.axes) == 3
    assert all(len(ax.lines) == 2 for ax in fig.axes)
    # the drawn values are spikes/s: counts per bin x 1000 / bin_ms
    np.testing.assert_allclose(fig.axes[0].lines[0].get_ydata(), SPIKES[0, :, 1] * 50.0)
    with pytest.raises(InputError, match="pred_rates"):
        plot_rates_vs_truth(SPIKES, SPIKES[:, :10])
    with pytest.raises(InputError, match="neurons"):
        plot_rates_vs_truth(SPIKES, SPIKES, neurons=[7])
    with pytest.raises(InputError, match="trial"):
        plot_rates_vs_truth(SPIKES, SPIKES, trial=5)


def test_latents_panels_and_dims():
    z = RNG.normal(size=(4, 20, 5))
    fig = plot_latents(z, reference=z[..., :3], trials=3)
    assert len(fig.axes) == 2
    assert [len(ax.lines) for ax in fig.axes] == [3, 3]
    with pytest.raises(InputError, match="reference"):
        plot_latents(z, reference=z[..., :2])
    with pytest.raises(InputError, match="dims"):
        plot_latents(z, dims=(0, 1))


def test_state_posteriors_stack_and_truth():
    gamma = RNG.dirichlet(np.ones(3), size=30)
    fig = plot_state_posteriors(gamma, true_states=gamma.argmax(1), bin_ms=20, title="x")
    ax = fig.axes[0]
    assert len(ax.collections) == 3 + 1  # one polygon per state + the truth strip
    with pytest.raises(InputError, match="true_states"):
        plot_state_posteriors(gamma, true_states=np.zeros(29, dtype=int))


def test_coupling_grid():
    w = RNG.normal(size=(3, 4, 4))
    fig = plot_coupling(w, reference=w[:2], titles=["a", "b", "c"])
    images = [ax for ax in _data_axes(fig) if ax.images]
    assert len(images) == 5
    # shared symmetric colour scale = the largest absolute weight
    assert images[0].images[0].get_clim() == pytest.approx((-np.abs(w).max(), np.abs(w).max()))
    with pytest.raises(InputError, match="reference"):
        plot_coupling(w, reference=np.zeros((3, 5, 5)))
    with pytest.raises(InputError, match="titles"):
        plot_coupling(w, titles=["a"])


def test_psth_heatmap_sorted_by_peak():
    fig = plot_psth(SPIKES, bin_ms=10, offset_ms=-100, sigma_ms=20, neurons=[0, 2], event="move onset")
    ax_map, ax_lines = _data_axes(fig)
    image = ax_map.collections[0].get_array().reshape(SPIKES.shape[2], SPIKES.shape[1])
    # rows are neurons normalised to their peak and ordered by the time of that peak
    assert np.allclose(image.max(axis=1), 1.0)
    assert np.all(np.diff(image.argmax(axis=1)) >= 0)
    assert len([line for line in ax_lines.lines if line.get_label().startswith("neuron")]) == 2
    assert ax_lines.get_xlabel() == "time from move onset (s)"
    with pytest.raises(InputError, match="neurons"):
        plot_psth(SPIKES, bin_ms=10, neurons=[9])


def test_rates_heatmap_units():
    fig = plot_rates_heatmap(SPIKES, trial=2, bin_ms=20)
    values = _data_axes(fig)[0].collections[0].get_array().reshape(SPIKES.shape[2], SPIKES.shape[1])
    np.testing.assert_allclose(values, SPIKES[2].T * 50.0)
    with pytest.raises(InputError, match="trial"):
        plot_rates_heatmap(SPIKES, trial=5)


def test_states_aligned_paths_and_mean():
    gamma = RNG.dirichlet(np.ones(3), size=(4, 25))
    fig = plot_states_aligned(gamma, bin_ms=20, offset_ms=-250, event="move onset")
    ax_path, ax_mean = _data_axes(fig)
    np.testing.assert_array_equal(ax_path.collections[0].get_array().reshape(4, 25), gamma.argmax(-1))
    state_lines = [line for line in ax_mean.lines if line.get_label().startswith("state")]
    np.testing.assert_allclose(state_lines[1].get_ydata(), gamma.mean(0)[:, 1])
    with pytest.raises(InputError, match="paths"):
        plot_states_aligned(gamma, paths=np.full((4, 25), 3))


def test_latent_pca_axes():
    z = RNG.normal(size=(6, 20, 5)).cumsum(1)
    fig = plot_latent_pca(z, bin_ms=20, offset_ms=-200, n_components=3, trials=4, event="move onset")
    assert len(fig.axes) == 4
    assert len(fig.axes[0].lines) == 4 + 1 + 1  # single trials, mean, the t = 0 marker
    assert len(plot_latent_pca(z, n_components=1).axes) == 1  # one component: its time course alone
    with pytest.raises(InputError, match="n_components"):
        plot_latent_pca(z, n_components=6)


def test_latent_pca_trials_is_the_number_of_single_trials_drawn():
    """trials=0 drew one single trial, though ``trials`` is documented as the number drawn; it now draws none
    (the mean alone), and the t = 0 marker of the PC plane sits on the mean's trajectory."""
    z = RNG.normal(size=(6, 20, 5)).cumsum(1)
    for trials, drawn in ((0, 0), (1, 1), (4, 4), (99, 6)):
        fig = plot_latent_pca(z, bin_ms=20, offset_ms=-200, n_components=2, trials=trials)
        time_ax, plane = fig.axes[0], fig.axes[-1]
        assert len(time_ax.lines) == drawn + 1 + 1, trials  # single trials, the mean, the t = 0 line
        assert len(plane.lines) == drawn + 1, trials  # single trajectories, the mean's
        marker = plane.collections[-1].get_offsets()
        assert len(marker) == max(drawn, 1), trials
    mean = pca(z, 2)[0].mean(axis=0)
    fig = plot_latent_pca(z, bin_ms=20, offset_ms=-200, n_components=2, trials=0)
    t = fig.axes[0].lines[-1].get_xdata()[0]  # the t = 0 line, at the bin whose time is nearest 0
    at_event = int(np.argmin(np.abs(fig.axes[0].lines[0].get_xdata() - t)))
    np.testing.assert_allclose(fig.axes[-1].collections[-1].get_offsets()[0], mean[at_event])


def test_coupling_without_a_finite_entry_or_colour_limit_is_refused():
    """plot_coupling of all-NaN couplings warned 'All-NaN slice encountered' and drew blank images on a NaN colour
    scale; an infinite entry, and vmax NaN / 0 / -1, gave colour limits of +-0.1 or (-1.1, 1.0) without a word.
    Each is now one InputError naming the argument; a NaN entry among finite ones is still drawn blank."""
    import warnings

    w = RNG.normal(size=(2, 3, 3))
    nan = np.full_like(w, np.nan)
    infinite = w.copy()
    infinite[0, 1, 2] = np.inf
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning on the way to the error
        for call, field, words in [(lambda: plot_coupling(nan), "weights", "no finite entry"),
                                   (lambda: plot_coupling(w, reference=nan[0]), "reference", "no finite entry"),
                                   (lambda: plot_coupling(infinite), "weights", "infinite"),
                                   (lambda: plot_coupling(w, reference=infinite), "reference", "infinite")] + [
                (lambda v=v: plot_coupling(w, vmax=v), "vmax", "finite number > 0")
                for v in (float("nan"), 0.0, -1.0, float("inf"), "1", True)]:
            with pytest.raises(InputError, match=words) as err:
                call()
            assert err.value.field == field, str(err.value)
    partly = w.copy()
    partly[1, 0, 0] = np.nan
    fig = plot_coupling(partly, vmax=np.float32(2.0))
    assert fig.axes[0].images[0].get_clim() == (-2.0, 2.0)
    largest = np.nanmax(np.abs(partly))
    assert plot_coupling(partly).axes[0].images[0].get_clim() == pytest.approx((-largest, largest))


def test_coupling_takes_a_colour_limit_of_a_0d_array_or_a_torch_number():
    """vmax as numpy or torch computes it -- a 0-d array, ``w.abs().max()`` of a model's tensor -- was drawn before
    bbfa5de and then refused ('must be a finite number > 0 ..., got tensor(2.)'); it is taken again, a 0-d array of
    NaN or a 1-element 1-d array still refused."""
    import torch

    w = RNG.normal(size=(2, 3, 3))
    for vmax in (np.array(2.0), torch.tensor(2.0), torch.tensor(2, dtype=torch.int64), np.int64(2)):
        assert plot_coupling(w, vmax=vmax).axes[0].images[0].get_clim() == (-2.0, 2.0), vmax
    for vmax in (np.array(np.nan), np.array([2.0]), torch.tensor(-1.0)):
        with pytest.raises(InputError, match="finite number > 0") as err:
            plot_coupling(w, vmax=vmax)
        assert err.value.field == "vmax"


def test_energy_lines():
    kinetic, potential = RNG.random((3, 12)), RNG.normal(size=(3, 12))
    fig = plot_energy(kinetic, potential, bin_ms=20)
    total = [line for line in fig.axes[0].lines if line.get_label() == "total"][0]
    np.testing.assert_allclose(total.get_ydata(), (kinetic + potential).mean(0))
    with pytest.raises(InputError, match="potential"):
        plot_energy(kinetic, potential[:, :5])


def test_potential_spectrum():
    a = RNG.normal(size=(6, 6))
    s = a + a.T
    fig = plot_potential(s, kernel=RNG.normal(size=(2, 2, 3)))
    ax_matrix, ax_spectrum, ax_kernel = _data_axes(fig)
    np.testing.assert_allclose(ax_spectrum.lines[0].get_ydata(), np.linalg.eigvalsh(s))
    assert ax_kernel.images[0].get_array().shape == (2, 6)
    # a rank-1 PSD matrix in float32 has 5 zero modes that round to about -1e-7: none is unstable
    v = RNG.normal(size=(6, 1))
    fig = plot_potential((v @ v.T).astype(np.float32))
    assert _data_axes(fig)[1].get_title() == "0 of 6 modes unstable, 5 force-free"
    with pytest.raises(InputError, match="symmetric"):
        plot_potential(a)
    with pytest.raises(InputError, match="square"):
        plot_potential(np.zeros((3, 4)))


def test_the_neuron_axis_of_a_rate_image_has_whole_ticks():
    """A few neurons gave ticks at 2.5, 7.5 (helper-48: dmfc / area2 / mc_rtt figures)."""
    from neurodyn.viz.trials import plot_rates_heatmap

    for n_neurons in (3, 17):  # matplotlib's default ticks: 0, 0.5, 1 and 0, 2.5, 5
        fig = plot_rates_heatmap(np.random.default_rng(0).random((2, 10, n_neurons)), bin_ms=20)
        low, high = fig.axes[0].get_ylim()
        ticks = [t for t in fig.axes[0].get_yticks() if low <= t <= high]
        assert len(ticks) and all(float(t).is_integer() for t in ticks), (n_neurons, ticks)


def test_a_mean_posterior_of_one_is_drawn_inside_the_frame():
    """A one-state model's mean posterior (1 everywhere) sat on the axes' top edge, hidden by the frame."""
    from neurodyn.viz.trials import plot_states_aligned

    fig = plot_states_aligned(np.ones((3, 8, 1)), bin_ms=20)
    ax_mean = next(ax for ax in fig.axes if ax.get_ylabel() == "mean posterior")
    low, high = ax_mean.get_ylim()
    assert low < 0 and high > 1


def test_viz_arguments_are_checked_in_one_line():
    """A negative bin width was drawn, a float trial index, a negative smoothing width, float state labels and
    non-square couplings reached numpy / scipy errors or were drawn (helper-50)."""
    from neurodyn.viz import plot_coupling, plot_rates_heatmap, plot_state_posteriors, plot_states_aligned
    from neurodyn.viz.trials import trial_average

    x = np.random.default_rng(0).poisson(0.2, (5, 20, 4)).astype(float)
    g = np.random.default_rng(0).dirichlet(np.ones(3), size=(5, 30))
    cases = [(lambda: plot_rates_heatmap(x, bin_ms=-20), "bin_ms"),
             (lambda: plot_rates_heatmap(x, trial=1.5), "trial"),
             (lambda: trial_average(x, bin_ms=20, sigma_ms=-10), "sigma_ms"),
             (lambda: plot_states_aligned(g, paths=g.argmax(-1) + 0.5), "paths"),
             (lambda: plot_state_posteriors(g[0], true_states=np.full(30, 0.5)), "true_states"),
             (lambda: plot_coupling(np.zeros((2, 3, 4))), "weights")]
    for call, field in cases:
        with pytest.raises(InputError) as err:
            call()
        assert err.value.field == field
    plot_state_posteriors(g[0], true_states=np.full(30, 7))  # true states may outnumber the model's


def test_the_viz_checks_take_what_plotted_before():
    """The checks added above refused boolean state paths, a 0-d array bin width, bin_ms=0 (bins, as before) and
    a 0-d tensor trial index, all of which plotted before (helper-51)."""
    import torch

    from neurodyn.viz import plot_rates_heatmap, plot_states_aligned

    plot_states_aligned(np.full((3, 10, 2), 0.5), paths=np.zeros((3, 10), bool))
    plot_rates_heatmap(np.ones((2, 10, 3)), bin_ms=np.array(20.0))
    fig = plot_rates_heatmap(np.ones((2, 10, 3)), bin_ms=0)
    assert fig.axes[0].get_xlabel() == "bin"
    plot_rates_heatmap(np.ones((2, 10, 3)), trial=torch.tensor(1))
