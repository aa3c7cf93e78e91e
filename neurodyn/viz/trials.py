"""Trial-aligned figures: PSTHs, rate heat maps and hidden-state paths across trials.

Inputs are batch-first ``(trials, time, neurons)`` counts or rates per bin; with ``bin_ms`` the time
axis is in seconds relative to the alignment event, whose position is given by ``offset_ms`` (time of
the first bin's left edge, e.g. -250 for the MC_Maze window of move onset -250..+450 ms). With ``unit_ids`` (the
NWB unit id of each neuron column, as prediction files record them in ``heldin_unit_ids`` / ``heldout_unit_ids``)
the neurons are named by unit ("unit 1011 (column 0)"), else by column index.
"""

from __future__ import annotations

import numpy as np

from neurodyn.data.prepared import check_disjoint_unit_ids, check_unit_ids
from neurodyn.errors import InputError
from neurodyn.viz._common import (
    as_array,
    bin_edges,
    bin_width,
    check_index,
    check_indices,
    check_labels,
    check_number,
    closes_on_error,
    figure,
    label_rows,
    legend_columns,
    pyplot,
    state_colours,
    time_axis,
)

__all__ = ["trial_average", "plot_psth", "plot_rates_heatmap", "plot_states_aligned"]


def trial_average(
    spikes, *, bin_ms: float | None = None, sigma_ms: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    r"""PSTH: each trial smoothed in time, then averaged over trials; and its standard error.

    .. math:: \mathrm{PSTH}_{t,n} = \frac{c}{B_{t,n}} \sum_b (g * x_{b,\cdot,n})_t

    over the ``B_{t,n}`` trials observed (non-NaN) at that bin, with ``c = 1000 / bin_ms`` (spikes/s)
    or ``c = 1`` without ``bin_ms`` (counts per bin). ``g`` is a Gaussian of ``sigma_ms`` applied as a
    normalised convolution (smoothed values / smoothed observation mask, nearest-value padding), so
    trial edges and NaN gaps are not pulled towards zero; for complete trials this equals smoothing
    the trial average. The standard error is the across-trial standard deviation over ``sqrt(B)``.

    Parameters
    ----------
    spikes : array (trials, time, neurons)
        Counts (or rates) per bin.
    bin_ms : float, optional
        Bin width (output in spikes/s); None or 0: output in counts per bin.
    sigma_ms : float, optional
        Smoothing width (needs ``bin_ms``); None = no smoothing.

    Returns
    -------
    (psth, sem) : arrays (time, neurons)

    Examples
    --------
    >>> x = np.ones((4, 10, 2))
    >>> psth, sem = trial_average(x, bin_ms=20, sigma_ms=40)
    >>> round(float(psth[5, 0]), 9), float(sem.max())
    (50.0, 0.0)
    """
    spikes = as_array(spikes, "spikes", 3)
    bin_ms = bin_width(bin_ms)  # None or 0: counts per bin, as on every plot's axes (0 was refused here)
    if sigma_ms is not None and not check_number(sigma_ms, "sigma_ms") >= 0:  # scipy: 'Radius must be ...'
        raise InputError(f"must be a finite number of ms >= 0, got {sigma_ms!r}", field="sigma_ms")
    sigma_ms = None if sigma_ms is None else float(sigma_ms)
    if sigma_ms and bin_ms is None:
        raise InputError("smoothing in ms needs the bin width", field="bin_ms")
    per_trial = spikes * (1000.0 / bin_ms if bin_ms else 1.0)
    if sigma_ms:
        from scipy.ndimage import gaussian_filter1d

        observed = ~np.isnan(per_trial)
        num = gaussian_filter1d(np.where(observed, per_trial, 0.0), sigma_ms / bin_ms, axis=1, mode="nearest")
        den = gaussian_filter1d(observed.astype(np.float64), sigma_ms / bin_ms, axis=1, mode="nearest")
        with np.errstate(invalid="ignore", divide="ignore"):
            per_trial = np.where(observed, num / den, np.nan)
    count = np.sum(~np.isnan(per_trial), axis=0)
    filled = np.where(np.isnan(per_trial), 0.0, per_trial)
    psth = filled.sum(axis=0) / np.maximum(count, 1)
    variance = (np.where(np.isnan(per_trial), 0.0, (per_trial - psth) ** 2)).sum(axis=0) / np.maximum(count, 1)
    return psth, np.sqrt(variance) / np.sqrt(np.maximum(count, 1))


def column_unit_ids(attrs, n_heldin: int, n_columns: int, path=None) -> np.ndarray | None:
    """The NWB unit id of each rates column of a prediction file (held-in columns, then held-out), from its root
    attributes ``heldin_unit_ids`` / ``heldout_unit_ids`` (``attrs``, as ``predict``, ``baseline``, ``ensemble`` and
    ``submit`` copy them from a prepared file's ``unit_ids``); None when the file does not record ids for every
    column (files of LFADS-format or Lorenz data, files of an earlier neurodyn, a submission of several datasets):
    the columns are then named by index. Ids that are not distinct integers, one per column, are refused in one line
    naming ``path`` and the attribute (a figure labelled with the wrong units would be worse than none): the rule of
    a prepared file's ``unit_ids`` (:func:`~neurodyn.data.prepared.check_unit_ids`), whose ids these are.

    >>> column_unit_ids({"heldin_unit_ids": [1011, 1022], "heldout_unit_ids": [1033]}, 2, 3)
    array([1011, 1022, 1033])
    """
    parts = {}
    for kind, count in (("heldin", n_heldin), ("heldout", n_columns - n_heldin)):
        key = f"{kind}_unit_ids"
        if count == 0:
            continue
        if attrs.get(key) is None:
            return None
        parts[kind] = check_unit_ids(path, f"{key} (attribute)", np.atleast_1d(attrs[key]), count,
                                     f"{kind} rates column")
    if len(parts) == 2:  # distinct over every column, held-in and held-out together
        check_disjoint_unit_ids(path, parts["heldin"], parts["heldout"], "heldout_unit_ids (attribute)",
                                "heldin_unit_ids")
    return np.concatenate(list(parts.values()))


@closes_on_error
def plot_psth(
    spikes,
    *,
    bin_ms: float | None,
    offset_ms: float = 0.0,
    sigma_ms: float | None = 25.0,
    neurons: list[int] | None = None,
    event: str = "alignment",
    title: str | None = None,
    fig=None,
    unit_ids=None,
):
    """PSTHs of a population: a heat map of every neuron sorted by peak time, and a few neurons' curves.

    The heat map shows each neuron's PSTH divided by its maximum (so neurons with different rates
    share one colour scale) and ordered by the time of that maximum, its y ticks naming the neuron drawn in that
    row (its unit id with ``unit_ids``, else its column index in ``spikes``); the right panel shows the PSTHs
    of ``neurons`` in spikes/s with a band of ±1 standard error across trials.

    Parameters
    ----------
    spikes : array (trials, time, neurons)
        Counts per bin, trials aligned to the same event.
    bin_ms : float or None
        Bin width; None: time in bins and rates in counts per bin (then ``sigma_ms`` must be None).
    offset_ms : float
        Time of the first bin's left edge relative to the event; a dashed line marks t = 0.
    sigma_ms : float, optional
        Gaussian smoothing of the PSTH (None: none).
    neurons : sequence of int, optional
        Neurons of the right panel (default: the four with the highest peak rate).
        Whole numbers: a list, tuple, range or array (floats such as ``2.0`` too); a set is drawn in
        increasing order.
    event : str
        Name of the alignment event (axis label).
    title : str, optional
    fig : Figure or SubFigure, optional
    unit_ids : int array (neurons,), optional
        NWB unit id of each column of ``spikes``: the heat map's ticks read them and the curves are "unit 1011
        (column 0)"; default the column indices ("neuron 0"). ``neurons`` are column indices either way. Distinct
        integers, as files record them (:func:`~neurodyn.data.prepared.check_unit_ids`).

    Returns
    -------
    matplotlib.figure.Figure
        Two data axes (heat map, curves) and a colour bar.

    Examples
    --------
    >>> x = np.random.default_rng(0).poisson(0.1, (20, 40, 12))
    >>> fig = plot_psth(x, bin_ms=5, offset_ms=-100, event="move onset")
    """
    psth, sem = trial_average(spikes, bin_ms=bin_ms, sigma_ms=sigma_ms)
    n_bins, n_neurons = psth.shape
    peak = psth.max(axis=0)
    if neurons is None:
        neurons = list(np.argsort(-peak, kind="stable")[: min(4, n_neurons)])
    neurons = check_indices(neurons, "neurons", n_neurons)  # [1.5] drew neuron 1
    unit_ids = None if unit_ids is None else check_unit_ids(None, "unit_ids", unit_ids, n_neurons, "neuron column")
    t, time_label = time_axis(n_bins, bin_ms, offset_ms)
    order = np.argsort(psth.argmax(axis=0), kind="stable")
    normalised = psth[:, order] / np.where(peak[order] > 0, peak[order], 1.0)
    fig, owned = figure(fig, (10, 3.6))
    ax_map, ax_lines = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.2, 1]})
    edges = bin_edges(t, bin_ms)
    mesh = ax_map.pcolormesh(edges, np.arange(n_neurons + 1) - 0.5, normalised.T, cmap="viridis", vmin=0, vmax=1)
    fig.colorbar(mesh, ax=ax_map, label="rate / peak rate")
    ax_map.set_ylabel(("neuron" if unit_ids is None else "unit id") + " (sorted by peak time)")
    # the rows are ranks; the ticks name the neuron drawn there (not the rank)
    label_rows(ax_map, order if unit_ids is None else unit_ids[order])
    for n in neurons:
        name = f"neuron {n}" if unit_ids is None else f"unit {unit_ids[n]} (column {n})"
        line = ax_lines.plot(t, psth[:, n], lw=1.5, label=name)[0]
        ax_lines.fill_between(t, psth[:, n] - sem[:, n], psth[:, n] + sem[:, n], color=line.get_color(), alpha=0.25)
    ax_lines.set_xlim(edges[0], edges[-1])  # the bins' outer edges, as the heat map
    ax_lines.set_ylabel("spikes/s" if bin_ms else "counts/bin")
    ax_lines.legend(fontsize="small", loc="upper left")
    for ax in (ax_map, ax_lines):
        ax.set_xlabel(f"time from {event} (s)" if bin_ms else time_label)
        if bin_ms and t[0] <= 0 <= t[-1]:
            ax.axvline(0.0, color="w" if ax is ax_map else "k", ls="--", lw=1)
    if title:
        fig.suptitle(title)
    if owned:
        fig.tight_layout()
    return fig


@closes_on_error
def plot_rates_heatmap(
    rates,
    *,
    trial: int = 0,
    bin_ms: float | None = None,
    offset_ms: float = 0.0,
    ax=None,
    title: str | None = None,
    label: str | None = None,
    unit_ids=None,
):
    """One trial's rates as a (neurons x time) image.

    Parameters
    ----------
    rates : array (trials, time, neurons)
        Counts per bin (shown in spikes/s when ``bin_ms`` is given).
    trial : int
    bin_ms, offset_ms : float, optional
    ax : matplotlib Axes, optional
    title : str, optional
    label : str, optional
        Colour-bar label (default: the unit).
    unit_ids : int array (neurons,), optional
        NWB unit id of each column of ``rates``: the rows' ticks read them (default: the column indices); distinct
        integers, as for :func:`plot_psth`.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> fig = plot_rates_heatmap(np.random.default_rng(0).random((3, 20, 6)), trial=2, bin_ms=20)
    """
    plt = pyplot()
    rates = as_array(rates, "rates", 3)
    trial = check_index(trial, "trial", len(rates))
    unit_ids = None if unit_ids is None else check_unit_ids(None, "unit_ids", unit_ids, rates.shape[2],
                                                            "neuron column")
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 3))
    t, time_label = time_axis(rates.shape[1], bin_ms, offset_ms)
    edges = bin_edges(t, bin_ms)
    width = bin_width(bin_ms)  # a torch number too (the raw one made the image a tensor)
    scale = 1000.0 / width if width else 1.0
    mesh = ax.pcolormesh(edges, np.arange(rates.shape[2] + 1) - 0.5, rates[trial].T * scale, cmap="magma")
    fig.colorbar(mesh, ax=ax, label=label or ("spikes/s" if width else "counts/bin"))
    ax.set_xlabel(time_label)
    ax.set_ylabel("neuron" if unit_ids is None else "unit id")
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # neurons are whole (ticks read 2.5, 7.5 on small sets)
    if unit_ids is not None:
        label_rows(ax, unit_ids)
    if title:
        ax.set_title(title)
    return fig


@closes_on_error
def plot_states_aligned(
    posteriors,
    *,
    paths=None,
    bin_ms: float | None = None,
    offset_ms: float = 0.0,
    event: str = "alignment",
    title: str | None = None,
    fig=None,
    ylabel: str = "trial",
    row_ids=None,
):
    """Hidden states across aligned trials: the decoded path of every trial and the mean posterior.

    Top: an image of the state path (``paths``, e.g. Viterbi; default the per-bin argmax of the
    posteriors), one row per trial. Bottom: the probability of each state at each time averaged
    over trials, ``(1/B) Σ_b p(z_{b,t} = s | X_b)``.

    Parameters
    ----------
    posteriors : array (trials, time, states)
    paths : int array (trials, time), optional
    bin_ms, offset_ms : float, optional
        Bin width and first bin's left edge relative to the event (a dashed line marks t = 0).
    event : str
        Name of the alignment event (axis label).
    title : str, optional
    fig : Figure or SubFigure, optional
    ylabel : str
        Label of the path image's rows (default ``"trial"``).
    row_ids : int array (trials,), optional
        What the path image's row ticks read (e.g. NLB trial ids of the rows), default the row numbers.

    Returns
    -------
    matplotlib.figure.Figure
        Two data axes (path image, mean posterior with one line per state).

    Examples
    --------
    >>> g = np.random.default_rng(0).dirichlet(np.ones(3), size=(5, 30))
    >>> len(plot_states_aligned(g, bin_ms=20, offset_ms=-250).axes[1].lines) >= 3
    True
    """
    from matplotlib.colors import BoundaryNorm, ListedColormap

    posteriors = as_array(posteriors, "posteriors", 3)
    n_trials, n_bins, n_states = posteriors.shape
    if paths is None:
        paths = posteriors.argmax(-1)
    paths = np.asarray(paths)
    if paths.shape != (n_trials, n_bins):
        raise InputError(f"shape {paths.shape} does not match ({n_trials}, {n_bins})", field="paths")
    paths = check_labels(paths, "paths", n_states)
    t, time_label = time_axis(n_bins, bin_ms, offset_ms)
    edges = bin_edges(t, bin_ms)
    colours = state_colours(n_states)
    cmap = ListedColormap(colours)
    norm = BoundaryNorm(np.arange(n_states + 1) - 0.5, n_states)
    fig, owned = figure(fig, (7, 5))
    ax_path, ax_mean = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1.4, 1]})
    ax_path.pcolormesh(edges, np.arange(n_trials + 1) - 0.5, paths, cmap=cmap, norm=norm)
    ax_path.set_ylabel(ylabel)
    from matplotlib.ticker import MaxNLocator

    ax_path.yaxis.set_major_locator(MaxNLocator(integer=True))  # rows are whole trials (was 0.5, 1.5, ...)
    if row_ids is not None:
        row_ids = np.asarray(row_ids)
        if row_ids.shape != (n_trials,):
            raise InputError(f"shape {row_ids.shape} does not match ({n_trials},)", field="row_ids")
        label_rows(ax_path, row_ids)
    mean = posteriors.mean(axis=0)
    for s in range(n_states):
        ax_mean.plot(t, mean[:, s], color=colours[s], lw=1.8, label=f"state {s}")
    ax_mean.set_ylim(-0.03, 1.03)  # a margin: a posterior of 1 (one state, a sure path) is not hidden by the frame
    ax_mean.set_ylabel("mean posterior")
    ax_mean.set_xlabel(time_label if not bin_ms or event == "alignment" else f"time from {event} (s)")
    ax_mean.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.0, 0.5), ncols=legend_columns(n_states))
    if bin_ms and t[0] <= 0 <= t[-1]:
        for ax in (ax_path, ax_mean):
            ax.axvline(0.0, color="k", ls="--", lw=1)
    if title:
        ax_path.set_title(title)
    if owned:
        fig.tight_layout()
    return fig
