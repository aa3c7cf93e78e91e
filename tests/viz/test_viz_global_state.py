"""The plotting functions leave the caller's matplotlib state alone: the backend they chose, the figures they
have open, the rcParams, and the arrays they pass in."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest

from neurodyn.viz import (
    plot_coupling,
    plot_energy,
    plot_latent_pca,
    plot_latents,
    plot_psth,
    plot_raster,
    plot_rates_heatmap,
    plot_rates_vs_truth,
    plot_state_posteriors,
    plot_states_aligned,
)

RNG = np.random.default_rng(0)
SPIKES = RNG.poisson(0.3, (5, 24, 7)).astype(float)
POSTERIORS = RNG.dirichlet(np.ones(3), size=(5, 24))


def _draw_every_kind():
    plot_raster(SPIKES[0], bin_ms=5)
    plot_psth(SPIKES, bin_ms=5, offset_ms=-20)
    plot_rates_heatmap(SPIKES, bin_ms=5)
    plot_rates_vs_truth(SPIKES, SPIKES * 0.9, spikes=SPIKES, bin_ms=5)
    plot_latents(SPIKES[..., :3], reference=SPIKES[..., 3:6])
    plot_latent_pca(SPIKES, bin_ms=5)
    plot_energy(SPIKES[..., 0], SPIKES[..., 1], bin_ms=5)
    plot_state_posteriors(POSTERIORS[0], true_states=POSTERIORS[0].argmax(-1))
    plot_states_aligned(POSTERIORS, bin_ms=5)
    plot_coupling(RNG.normal(size=(3, 4, 4)))


@pytest.mark.parametrize("backend", ["svg", "pdf"])
def test_plots_keep_the_callers_backend_and_open_figures(backend):
    """pyplot() switched every caller outside IPython to Agg (its docstring said: only without a display), and
    matplotlib.use closed the figures the caller had open: a script on the svg / pdf backend, or one on a GUI
    backend that meant to plt.show(), lost both."""
    import matplotlib.pyplot as plt

    before = matplotlib.get_backend()
    try:
        plt.switch_backend(backend)
        mine = plt.figure()
        _draw_every_kind()
        assert matplotlib.get_backend().lower() == backend
        assert plt.fignum_exists(mine.number)
    finally:
        plt.switch_backend(before)
