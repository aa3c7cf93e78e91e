"""Matplotlib figures shared by the notebooks, the demo and ``neurodyn plot``.

Every function takes numpy arrays in the batch-first convention (trials, time, neurons), draws a new
figure (or on the given axes) and returns the :class:`matplotlib.figure.Figure`. Rates are in counts
per bin unless ``bin_ms`` is given, in which case time axes are in seconds and rates in spikes per
second (counts per bin x 1000 / ``bin_ms``). Bad shapes raise :class:`~neurodyn.errors.InputError`
naming the argument.
"""

from __future__ import annotations

import numpy as np

from neurodyn.errors import InputError, check_whole, whole_number
from neurodyn.viz._common import (
    as_array,
    axis_step,
    bin_width,
    check_index,
    check_indices,
    check_labels,
    check_number,
    check_pair,
    closes_on_error,
    figure,
    legend_columns,
    pyplot,
    state_colours,
    time_axis,
)

__all__ = ["plot_raster", "plot_rates_vs_truth", "plot_latents", "plot_state_posteriors", "plot_coupling"]


@closes_on_error
def plot_raster(spikes, *, bin_ms: float | None = None, offset_ms: float = 0.0, ax=None, title: str | None = None):
    """Raster of one trial: a tick per non-empty bin.

    Parameters
    ----------
    spikes : array (time, neurons)
        Spike counts per bin (NaN = unobserved, drawn as empty).
    bin_ms : float, optional
        Bin width; the x axis is then in seconds, else in bins.
    offset_ms : float
        Time of the first bin's left edge (e.g. -250 for a window starting 250 ms before move onset).
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_raster(np.random.default_rng(0).poisson(0.2, (50, 10)), bin_ms=5)
    """
    plt = pyplot()
    spikes = as_array(spikes, "spikes", 2)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 3))
    t, label = time_axis(spikes.shape[0], bin_ms, offset_ms)
    rows, neurons = np.nonzero(np.nan_to_num(spikes) > 0)
    ax.scatter(t[rows], neurons, s=14, c="k", marker="|", linewidths=1.0)
    ax.set_xlabel(label)
    ax.set_ylabel("neuron")
    ax.set_ylim(-0.5, spikes.shape[1] - 0.5)
    ax.set_xlim(t[0] - 0.5 * (t[1] - t[0] if len(t) > 1 else 1), t[-1] + 0.5 * (t[1] - t[0] if len(t) > 1 else 1))
    if title:
        ax.set_title(title)
    return fig


@closes_on_error
def plot_rates_vs_truth(
    true_rates,
    pred_rates,
    *,
    trial: int = 0,
    neurons: list[int] | None = None,
    spikes=None,
    bin_ms: float | None = None,
    offset_ms: float = 0.0,
    labels: tuple[str, str] = ("true", "inferred"),
    title: str | None = None,
    fig=None,
):
    """Inferred vs true rates of a few neurons on one trial (optionally over the spike counts).

    Parameters
    ----------
    true_rates, pred_rates : array (trials, time, neurons)
        Expected counts per bin; same shape.
    trial : int
        Trial to draw.
    neurons : sequence of int, optional
        Neurons to draw, one panel each (default: the first four).
        Whole numbers: a list, tuple, range or array (floats such as ``2.0`` too); a set is drawn in
        increasing order.
    spikes : array (trials, time, neurons), optional
        Observed counts, drawn as grey bars.
    bin_ms : float, optional
        Bin width: axes in seconds and spikes/s; without it bins and counts/bin.
    offset_ms : float
        Time of the first bin's left edge (as in the other plots).
    labels : (str, str)
        Legend entries of the true and inferred rates.
    title : str, optional
        Figure (or subfigure) title.
    fig : Figure or SubFigure, optional
        Draw into this (e.g. a panel of a composite figure) instead of a new figure.

    Returns
    -------
    matplotlib.figure.Figure
        One axis per neuron, each with two lines (true, inferred).

    Examples
    --------
    >>> r = np.random.default_rng(0).random((2, 30, 5))
    >>> len(plot_rates_vs_truth(r, r * 0.9, neurons=[0, 3]).axes)
    2
    """
    true_rates = as_array(true_rates, "true_rates", 3)
    pred_rates = as_array(pred_rates, "pred_rates", 3)
    if true_rates.shape != pred_rates.shape:
        raise InputError(f"shape {pred_rates.shape} differs from true_rates {true_rates.shape}", field="pred_rates")
    n_trials, n_bins, n_neurons = true_rates.shape
    trial = check_index(trial, "trial", n_trials)
    neurons = list(range(min(4, n_neurons))) if neurons is None else check_indices(neurons, "neurons", n_neurons)
    labels = check_pair(labels, "labels")
    if spikes is not None:
        spikes = as_array(spikes, "spikes", 3)
        if spikes.shape != true_rates.shape:
            raise InputError(f"shape {spikes.shape} differs from true_rates {true_rates.shape}", field="spikes")
    fig, owned = figure(fig, (6, 1.6 * len(neurons)))
    axes = fig.subplots(len(neurons), 1, sharex=True, squeeze=False)
    t, label = time_axis(n_bins, bin_ms, offset_ms)
    width_ms = bin_width(bin_ms)
    scale = 1000.0 / width_ms if width_ms else 1.0
    width = t[1] - t[0] if n_bins > 1 else 1.0
    for ax, n in zip(axes[:, 0], neurons):
        if spikes is not None:
            ax.bar(t, spikes[trial, :, n] * scale, width=width, color="0.85", label="spikes")
        ax.plot(t, true_rates[trial, :, n] * scale, "k", lw=1.5, label=labels[0])
        ax.plot(t, pred_rates[trial, :, n] * scale, "C1", lw=1.5, label=labels[1])
        ax.set_ylabel(f"n{n}")
    axes[0, 0].legend(loc="upper right", fontsize="small", ncol=3)
    axes[-1, 0].set_xlabel(label)
    fig.supylabel("spikes/s" if width_ms else "counts/bin")
    if title:
        fig.suptitle(title)
    if owned:
        fig.tight_layout()
    return fig


@closes_on_error
def plot_latents(
    latents,
    *,
    reference=None,
    trials: int = 5,
    dims: tuple[int, int, int] = (0, 1, 2),
    title: str | None = None,
    labels: tuple[str, str] = ("inferred", "true"),
    fig=None,
):
    """3-D trajectories of a few trials; a ``reference`` (e.g. the true Lorenz state) in a second panel.

    Parameters
    ----------
    latents : array (trials, time, dims)
    reference : array (trials, time, >= 3), optional
        Drawn with the same trial colours, so trial i is the same colour in both panels.
    trials : int
        Number of trials drawn.
    dims : three ints
        Dimensions of ``latents`` (and ``reference``) on the x, y, z axes.
    title : str, optional
        Prefix of the panel titles.
    labels : (str, str)
        Panel titles of ``latents`` and ``reference``.
    fig : Figure or SubFigure, optional

    Returns
    -------
    matplotlib.figure.Figure
        One 3-D axis (two with ``reference``), ``min(trials, n_trials)`` lines each.

    Examples
    --------
    >>> z = np.random.default_rng(0).normal(size=(4, 20, 3)).cumsum(1)
    >>> len(plot_latents(z, reference=z, trials=2).axes)
    2
    """
    panels = [(as_array(latents, "latents", 3), labels[0])]
    if reference is not None:
        panels.append((as_array(reference, "reference", 3), labels[1]))
    if isinstance(dims, str | bytes) or np.ndim(dims) != 1 or len(dims) != 3:
        raise InputError(f"expected three dimensions, got {dims!r}", field="dims")
    if any(whole_number(d) is None for d in dims):  # (0, 1, 1.5) drew dimension 1
        raise InputError(f"expected whole numbers, got {tuple(dims)}", field="dims")
    dims = tuple(whole_number(d) for d in dims)
    for (data, _), arg in zip(panels, ("latents", "reference")):
        if max(dims) >= data.shape[-1] or min(dims) < 0:
            raise InputError(f"dims {dims} out of range for {data.shape[-1]} dimensions", field=arg)
    trials = check_whole(trials, "trials", 1)
    labels = check_pair(labels, "labels")
    fig, owned = figure(fig, (4.5 * len(panels), 4))
    for p, (data, name) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), p + 1, projection="3d")
        for i in range(min(trials, len(data))):
            ax.plot(*(data[i, :, d] for d in dims), lw=1, color=f"C{i % 10}")
        ax.set_title(name if title is None else f"{title}: {name}")
        ax.set_xlabel(f"dim {dims[0]}")
        ax.set_ylabel(f"dim {dims[1]}")
        ax.set_zlabel(f"dim {dims[2]}")
    if owned:
        fig.tight_layout()
    return fig


@closes_on_error
def plot_state_posteriors(
    posteriors,
    *,
    true_states=None,
    bin_ms: float | None = None,
    offset_ms: float = 0.0,
    ax=None,
    title: str | None = None,
):
    """Stacked state posteriors p(z_t = s | X) of one sequence, with the true states as a strip on top.

    Parameters
    ----------
    posteriors : array (time, states)
        Each row sums to 1.
    true_states : int array (time,), optional
        Drawn as coloured squares above the stack (same colour = same state index, so match the
        model's states to the truth first, e.g. with :func:`neurodyn.metrics.states.find_permutation`).
    bin_ms, offset_ms : float, optional
        Bin width and the first bin's left edge (x axis in seconds), else bins.
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
        One stack polygon per state on the axis.

    Examples
    --------
    >>> g = np.random.default_rng(0).dirichlet(np.ones(3), size=40)
    >>> fig = plot_state_posteriors(g, true_states=g.argmax(1))
    """
    plt = pyplot()
    posteriors = as_array(posteriors, "posteriors", 2)
    n_bins, n_states = posteriors.shape
    owned = ax is None
    fig, ax = plt.subplots(figsize=(8, 2.5)) if owned else (ax.figure, ax)
    t, label = time_axis(n_bins, bin_ms, offset_ms)
    if true_states is not None:
        true_states = np.asarray(true_states)
        if true_states.shape != (n_bins,):
            raise InputError(f"shape {true_states.shape} does not match ({n_bins},)", field="true_states")
        true_states = check_labels(true_states, "true_states", None)  # the truth may have more states
    n_colours = max(n_states, int(true_states.max()) + 1 if true_states is not None and true_states.size else 0)
    colours = state_colours(n_colours)  # one palette for both: state s has one colour in the stack and the strip
    step = axis_step(bin_ms)
    # from the first bin's left edge to the last one's right edge (the outer bins' values held there), as the
    # path image of plot_states_aligned: the stack ended half a bin short at both sides
    x = np.concatenate([[t[0] - step / 2], t, [t[-1] + step / 2]])
    ax.stackplot(x, np.concatenate([posteriors[:1], posteriors, posteriors[-1:]]).T,
                 labels=[f"state {s}" for s in range(n_states)], colors=colours[:n_states], alpha=0.8)
    if true_states is not None:
        ax.scatter(
            t,
            np.full(n_bins, 1.04),
            c=[colours[s] for s in true_states],
            s=6,
            marker="s",
            clip_on=False,
        )
        ax.text(t[-1], 1.08, "true", ha="right", va="bottom", fontsize="small")
    ax.set_ylim(0, 1.07)
    ax.set_xlim(x[0], x[-1])  # the bins' outer edges, as the path image of plot_states_aligned
    ax.set_ylabel("posterior")
    ax.set_xlabel(label)
    if title:
        ax.set_title(title, pad=12)
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small", ncols=legend_columns(n_states))
    if owned:
        fig.tight_layout()
    return fig


@closes_on_error
def plot_coupling(
    weights,
    *,
    reference=None,
    titles: list[str] | None = None,
    vmax: float | None = None,
    row_labels: tuple[str, str] = ("estimate", "reference"),
    label: str = "weight",
    fig=None,
):
    """Per-state coupling matrices ``W_s[post, pre]``, with a reference row (e.g. the truth) below.

    Parameters
    ----------
    weights : array (states, post, pre) or (post, pre)
        NaN entries are drawn blank; an array without a finite entry, or with an infinite one, is refused.
    reference : array (k, post, pre) or (post, pre), optional
        Second row, same colour scale (``k`` may differ from the number of states); NaN as in ``weights``.
    titles : list of str, optional
        Column titles.
    vmax : float, optional
        Symmetric colour limit, a finite number > 0 (Python, numpy -- 0-d arrays too -- or torch; default: the
        largest absolute finite entry).
    row_labels : (str, str)
        Y labels of the two rows (with ``reference``; one row is labelled "post" alone).
    label : str
        Colour-bar label.
    fig : Figure or SubFigure, optional

    Returns
    -------
    matplotlib.figure.Figure
        A grid of ``rows x max(states, k)`` image axes plus a colour bar.

    Examples
    --------
    >>> w = np.random.default_rng(0).normal(size=(3, 6, 6))
    >>> fig = plot_coupling(w, reference=w[:2], titles=["a", "b", "c"])
    """
    weights = as_array(weights, "weights", (2, 3))
    if weights.shape[-1] != weights.shape[-2]:  # W[post, pre] of one population
        raise InputError(f"expected square (post, pre) matrices, got shape {weights.shape}", field="weights")
    if weights.ndim == 2:
        weights = weights[None]
    rows = [weights]
    if reference is not None:
        reference = as_array(reference, "reference", (2, 3))
        if reference.shape[-2:] != weights.shape[-2:]:
            raise InputError(
                f"matrix shape {reference.shape[-2:]} differs from weights {weights.shape[-2:]}",
                field="reference",
            )
        rows.append(reference.reshape(-1, *weights.shape[-2:]))
        row_labels = check_pair(row_labels, "row_labels")
    n_cols = max(len(r) for r in rows)
    if titles is not None and len(titles) < len(weights):
        raise InputError(f"{len(titles)} titles for {len(weights)} matrices", field="titles")
    for mats, name in zip(rows, ("weights", "reference")):
        # an all-NaN array warned and drew on a NaN colour scale; an infinite entry left no scale to draw on
        if np.isinf(mats).any():
            raise InputError(f"{int(np.isinf(mats).sum())} infinite entries: no colour scale holds them", field=name)
        if np.isnan(mats).all():
            raise InputError(f"no finite entry to draw (all {mats.size} are NaN)", field=name)
    if vmax is None:
        vmax = float(np.nanmax(np.abs(np.concatenate([r.ravel() for r in rows])))) or 1.0
    else:  # a Python, numpy (0-d too) or torch number: `np.abs(w).max()`, `w.abs().max()` of a model's tensor
        try:
            limit = check_number(vmax, "vmax")
        except InputError:
            limit = np.nan
        if not limit > 0:
            raise InputError(f"must be a finite number > 0 (the symmetric colour limit), got {vmax!r}", field="vmax")
        vmax = limit
    fig, _ = figure(fig, (2.2 * n_cols + 0.8, 2.3 * len(rows)))
    axes = fig.subplots(len(rows), n_cols, squeeze=False)
    image = None
    for r, mats in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(mats):
                ax.axis("off")
                continue
            image = ax.imshow(mats[c], cmap="RdBu_r", vmin=-vmax, vmax=vmax)
            if titles is not None and r == 0:
                ax.set_title(titles[c], fontsize="small")
        # the row's name only when there is a second row to tell it from ("estimate" stood alone)
        axes[r, 0].set_ylabel(row_labels[r] + "\npost" if len(rows) > 1 else "post")
    axes[-1, 0].set_xlabel("pre")
    fig.colorbar(image, ax=axes, shrink=0.8, label=label)
    return fig
