"""Matplotlib figures used by the notebooks, the demo and ``neurodyn plot``.

Batch-first inputs ``(trials, time, neurons)``; rates in counts per bin (spikes/s on the axes when
``bin_ms`` is given). Each function returns the figure it drew; bad shapes raise
:class:`~neurodyn.errors.InputError` naming the argument. A prediction file's summary figure, as
``neurodyn plot`` draws it: :func:`read_prediction`, :func:`draw_prediction`, :func:`plot_file`.
"""

from neurodyn.viz.dynamics import pca, plot_energy, plot_latent_pca, plot_potential
from neurodyn.viz.plots import (
    plot_coupling,
    plot_latents,
    plot_raster,
    plot_rates_vs_truth,
    plot_state_posteriors,
)
from neurodyn.viz.prediction import draw_prediction, plot_file, read_prediction
from neurodyn.viz.trials import plot_psth, plot_rates_heatmap, plot_states_aligned, trial_average

__all__ = [
    "draw_prediction",
    "pca",
    "plot_coupling",
    "plot_energy",
    "plot_file",
    "plot_latent_pca",
    "plot_latents",
    "plot_potential",
    "plot_psth",
    "plot_raster",
    "plot_rates_heatmap",
    "plot_rates_vs_truth",
    "plot_state_posteriors",
    "plot_states_aligned",
    "read_prediction",
    "trial_average",
]
