"""The plotting functions' arguments: whatever is not a whole number where an index or a count is meant, not a
number where a time is meant, or not a pair where two labels are meant, is one InputError naming the argument,
and a refused call leaves no figure behind.

Before, ``trial=1.5`` was numpy's 'only integers ... are valid indices', ``trials=2.5`` 'float object cannot be
interpreted as an integer', ``neurons=2`` "'int' object is not iterable", ``sigma_ms="25"`` a ufunc error,
``offset_ms="x"`` a ufunc loop error, ``labels=("a",)`` an IndexError; ``neurons=[0.5]`` drew neuron 0 and
``dims=(0, 1, 1.5)`` dimension 1 without a word. A refused call after the figure was made left it open: in a
notebook an empty figure appeared under the error, and the figures piled up in a script."""

from __future__ import annotations

import numpy as np
import pytest
import torch

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
SPIKES = RNG.poisson(0.3, (4, 10, 3)).astype(float)
POSTERIORS = RNG.dirichlet(np.ones(3), size=(4, 10))

BAD = {
    "raster offset text": (lambda: plot_raster(SPIKES[0], bin_ms=5, offset_ms="x"), "offset_ms"),
    "raster bin text": (lambda: plot_raster(SPIKES[0], bin_ms="5"), "bin_ms"),
    "rates trial 1.5": (lambda: plot_rates_vs_truth(SPIKES, SPIKES, trial=1.5), "trial"),
    "rates neuron 0.5": (lambda: plot_rates_vs_truth(SPIKES, SPIKES, neurons=[0.5]), "neurons"),
    "rates neurons int": (lambda: plot_rates_vs_truth(SPIKES, SPIKES, neurons=2), "neurons"),
    "rates one label": (lambda: plot_rates_vs_truth(SPIKES, SPIKES, labels=("a",)), "labels"),
    "latents trials 2.5": (lambda: plot_latents(SPIKES, trials=2.5), "trials"),
    "latents dims 1.5": (lambda: plot_latents(SPIKES, dims=(0, 1, 1.5)), "dims"),
    "posteriors truth shape": (lambda: plot_state_posteriors(POSTERIORS[0], true_states=np.zeros(5, int)),
                               "true_states"),
    "posteriors truth 0.5": (lambda: plot_state_posteriors(POSTERIORS[0], true_states=np.full(10, 0.5)),
                             "true_states"),
    "coupling one row label": (lambda: plot_coupling(np.ones((2, 3, 3)), reference=np.ones((2, 3, 3)),
                                                     row_labels=("a",)), "row_labels"),
    "psth neuron 1.5": (lambda: plot_psth(SPIKES, bin_ms=5, neurons=[1.5]), "neurons"),
    "psth neurons int": (lambda: plot_psth(SPIKES, bin_ms=5, neurons=1), "neurons"),
    "psth sigma text": (lambda: plot_psth(SPIKES, bin_ms=5, sigma_ms="25"), "sigma_ms"),
    "average sigma text": (lambda: trial_average(SPIKES, bin_ms=5, sigma_ms="25"), "sigma_ms"),
    "aligned row ids": (lambda: plot_states_aligned(POSTERIORS, row_ids=np.arange(3)), "row_ids"),
    "potential kernel 2-D": (lambda: plot_potential(np.eye(4), kernel=np.ones((2, 3))), "kernel"),
    "pca 2.5 components": (lambda: pca(SPIKES, n_components=2.5), "n_components"),
    "latent pca trials 1.5": (lambda: plot_latent_pca(SPIKES, trials=1.5), "trials"),
    "energy offset text": (lambda: plot_energy(SPIKES[..., 0], SPIKES[..., 1], bin_ms=5, offset_ms="x"),
                           "offset_ms"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_arguments_name_the_argument_and_leave_no_figure(case):
    import matplotlib.pyplot as plt

    call, field = BAD[case]
    mine = plt.figure()  # the caller's own figure stays open
    with pytest.raises(InputError) as caught:
        call()
    assert caught.value.field == field, str(caught.value)
    assert plt.get_fignums() == [mine.number]


def test_a_torch_bin_width_draws_the_heatmap_in_spikes_per_second():
    """bin_ms as a torch number is taken by every plot (bin_width); the heat map divided by the raw tensor."""
    fig = plot_rates_heatmap(SPIKES, bin_ms=torch.tensor(5.0))
    mesh = fig.axes[0].collections[0]
    assert np.allclose(np.asarray(mesh.get_array()).reshape(3, 10), SPIKES[0].T * 200.0)


@pytest.mark.parametrize("neurons, drawn", [
    (np.array([2.0, 0.0]), [2, 0]),  # an index array read back as floats
    (torch.tensor([2.0, 0.0]), [2, 0]),
    ((2, 0), [2, 0]),
    (range(2), [0, 1]),
    ({2, 0}, [0, 2]),  # a set has no order: increasing
])
def test_neurons_as_whole_number_floats_or_any_sequence_are_drawn(neurons, drawn):
    """Whole-number floats (np.array([0., 1.])) and a set were refused as 'out of range' (check_indices); a
    tuple, a range and a set are taken as the list of their whole numbers."""
    fig = plot_rates_vs_truth(SPIKES, SPIKES, neurons=neurons)
    assert [ax.get_ylabel() for ax in fig.axes] == [f"n{n}" for n in drawn]
    fig = plot_psth(SPIKES, bin_ms=5, neurons=neurons)
    assert [line.get_label() for line in fig.axes[1].lines] == [f"neuron {n}" for n in drawn]


@pytest.mark.parametrize("neurons, words", [
    ([0.5], "expected whole numbers 0..2, got [0.5]"),
    (np.array([1.5]), "expected whole numbers 0..2, got [1.5]"),
    ([True], "expected whole numbers 0..2, got [True]"),
    ([3], "[3] out of range (whole numbers 0..2)"),
])
def test_neurons_that_are_not_whole_numbers_are_not_called_out_of_range(neurons, words):
    """[0.5] said '[0.5] out of range', as if 0.5 were past the last neuron."""
    with pytest.raises(InputError) as caught:
        plot_rates_vs_truth(SPIKES, SPIKES, neurons=neurons)
    assert str(caught.value) == f"neurons: {words}"
