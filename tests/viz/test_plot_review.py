"""Review of the plotting layer (helper-h5): bad attributes of a prediction file, state colours, PSTH ticks,
titles by model, latents, negative rates, time axes, forward bins, trial ids, and the Python API."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from neurodyn.cli import main
from neurodyn.errors import InputError

RNG = np.random.default_rng(5)


def _write(path, tree, **attrs):
    with h5py.File(path, "w") as f:
        for key, value in tree.items():
            f[key] = value
        f.attrs.update(attrs)
    return path


def _one_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("value", ["twenty", np.array([20.0, 20.0]), np.nan, -20.0, 0.0, np.inf])
def test_a_bad_bin_ms_attribute_is_one_line_naming_the_file(tmp_path, capsys, value):
    """'twenty' was a ValueError traceback and [20, 20] a TypeError one (exit 1); NaN, -20 and 0 said
    'bin_ms: must be > 0' without the file."""
    path = _write(tmp_path / "p.h5", {"valid_rates": RNG.random((2, 50, 3))}, bin_ms=value)
    assert main(["plot", str(path), "--out", str(tmp_path / "p.png")]) == 2
    assert _one_error(capsys).startswith(f"neurodyn plot: error: {path}: bin_ms (attribute): must be")
    assert not (tmp_path / "p.png").exists()


def test_a_zero_bin_width_means_no_width_in_every_plotting_function():
    """time_axis drew bin_ms=0 in bins, trial_average refused it ('must be > 0'): one rule, 0 = no width."""
    from neurodyn.viz import plot_psth, trial_average

    x = RNG.poisson(0.3, (3, 12, 4)).astype(float)
    psth, _ = trial_average(x, bin_ms=0)
    np.testing.assert_allclose(psth, x.mean(0))
    fig = plot_psth(x, bin_ms=0, sigma_ms=None)
    assert fig.axes[0].get_xlabel() == "bin"
    for bad in (-5.0, np.nan, "20", True, np.array([20.0, 20.0])):
        with pytest.raises(InputError, match="bin_ms"):
            trial_average(x, bin_ms=bad)


@pytest.mark.parametrize("n_states", [12, 25])
def test_every_state_has_its_own_colour_beyond_ten(n_states):
    """f"C{s % 10}" drew state 10 in state 0's colour (stack, strip, path image and mean-posterior lines)."""
    from matplotlib.colors import to_hex

    from neurodyn.viz import plot_state_posteriors, plot_states_aligned

    gamma = RNG.dirichlet(np.ones(n_states), size=(3, 40))
    fig = plot_state_posteriors(gamma[0], true_states=np.arange(40) % n_states)
    stack = [to_hex(c.get_facecolor()[0]) for c in fig.axes[0].collections[:n_states]]
    assert len(set(stack)) == n_states
    strip = [to_hex(c) for c in fig.axes[0].collections[n_states].get_facecolors()]
    assert strip[:n_states] == stack  # the true state s is drawn in the stack's colour of s
    fig = plot_states_aligned(gamma)
    lines = {to_hex(line.get_color()) for line in fig.axes[1].lines if line.get_label().startswith("state")}
    assert len(lines) == n_states
    image = fig.axes[0].collections[0]
    assert len({to_hex(image.cmap(image.norm(s))) for s in range(n_states)}) == n_states


def test_the_psth_map_ticks_name_the_neurons_not_their_rank():
    """The rows are sorted by peak time, but their ticks read the rank 0, 1, 2, ... as if it were a neuron id."""
    from neurodyn.viz import plot_psth

    x = np.zeros((2, 10, 3))
    for neuron, peak in ((0, 8), (1, 2), (2, 5)):  # peak order: neuron 1, 2, 0
        x[:, peak, neuron] = 1.0
    fig = plot_psth(x, bin_ms=20, sigma_ms=None)
    ax = fig.axes[0]
    fig.canvas.draw()
    ticks = {int(t.get_position()[1]): t.get_text() for t in ax.get_yticklabels() if t.get_text()}
    assert ticks == {0: "1", 1: "2", 2: "0"}, ticks
    assert ax.get_ylabel() == "neuron (sorted by peak time)"


def test_one_coupling_row_is_not_called_the_estimate():
    """'estimate / post' labelled the only row, with nothing to compare it to."""
    from neurodyn.viz import plot_coupling

    w = RNG.normal(size=(2, 4, 4))
    assert plot_coupling(w).axes[0].get_ylabel() == "post"
    two = plot_coupling(w, reference=w)
    assert [ax.get_ylabel() for ax in two.axes[:4:2]] == ["estimate\npost", "reference\npost"]


def test_rates_vs_truth_and_energy_take_the_common_arguments():
    """plot_rates_vs_truth had no fig, offset_ms or title and plot_energy no offset_ms, unlike the other plots."""
    from neurodyn.viz import plot_energy, plot_rates_vs_truth
    from neurodyn.viz._common import pyplot

    r = RNG.random((2, 30, 3))
    outer = pyplot().figure(layout="constrained")
    sub = outer.subfigures(1, 2)[1]
    fig = plot_rates_vs_truth(r, r * 0.9, neurons=[0, 2], bin_ms=20, offset_ms=-250, title="Lorenz", fig=sub)
    assert fig is sub and len(outer.axes) == 2 and sub._suptitle.get_text() == "Lorenz"
    assert outer.axes[0].lines[0].get_xdata()[0] == pytest.approx(-0.24)
    fig = plot_energy(r[..., 0], r[..., 1], bin_ms=20, offset_ms=-250)
    assert fig.axes[0].lines[0].get_xdata()[0] == pytest.approx(-0.24)
