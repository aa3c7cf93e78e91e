"""Matplotlib figures shared by the notebooks, the demo and ``neurodyn plot``.

Every function takes numpy arrays in the batch-first convention (trials, time, neurons), draws on a
new figure (or the given axes) and returns the :class:`matplotlib.figure.Figure`. Rates are in counts
per bin unless ``bin_ms`` is given, in which case axes are labelled in seconds / spikes per second.
"""

from __future__ import annotations

import numpy as np


def _plt():
    import matplotlib

    if matplotlib.get_backend().lower() not in {"agg", "module://matplotlib_inline.backend_inline"}:
        try:
            import IPython  # noqa: F401

            if IPython.get_ipython() is None:
                matplotlib.use("Agg")
        except ImportError:
            matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_raster(spikes: np.ndarray, *, bin_ms: float = 1.0, ax=None, title: str | None = None):
    """Raster of one trial: ``spikes`` (time, neurons) counts; a dot per non-zero bin.

    Examples
    --------
    >>> fig = plot_raster(np.random.default_rng(0).poisson(0.2, (50, 10)))
    """
    plt = _plt()
    spikes = np.asarray(spikes)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(6, 3))
    t, n = np.nonzero(np.nan_to_num(spikes) > 0)
    ax.scatter(t * bin_ms / 1000.0, n, s=2, c="k", marker="|")
    ax.set_xlabel("time (s)" if bin_ms != 1.0 else "bin")
    ax.set_ylabel("neuron")
    ax.set_ylim(-0.5, spikes.shape[1] - 0.5)
    if title:
        ax.set_title(title)
    return fig


def plot_rates_vs_truth(
    true_rates: np.ndarray,
    pred_rates: np.ndarray,
    *,
    trial: int = 0,
    neurons: list[int] | None = None,
    spikes: np.ndarray | None = None,
    bin_ms: float | None = None,
    labels: tuple[str, str] = ("true", "inferred"),
):
    """Inferred vs true rates of a few neurons on one trial (optionally over the spike counts).

    ``true_rates`` and ``pred_rates`` are (trials, time, neurons) in counts per bin.
    """
    plt = _plt()
    true_rates, pred_rates = np.asarray(true_rates), np.asarray(pred_rates)
    if true_rates.shape != pred_rates.shape:
        raise ValueError(f"true {true_rates.shape} and predicted {pred_rates.shape} rates differ in shape")
    neurons = list(range(min(4, true_rates.shape[-1]))) if neurons is None else list(neurons)
    fig, axes = plt.subplots(len(neurons), 1, figsize=(6, 1.6 * len(neurons)), sharex=True, squeeze=False)
    scale = 1000.0 / bin_ms if bin_ms else 1.0
    t = np.arange(true_rates.shape[1]) * (bin_ms / 1000.0 if bin_ms else 1.0)
    for ax, n in zip(axes[:, 0], neurons):
        if spikes is not None:
            ax.bar(t, np.asarray(spikes)[trial, :, n] * scale, width=t[1] - t[0] if len(t) > 1 else 1,
                   color="0.85", label="spikes")
        ax.plot(t, true_rates[trial, :, n] * scale, "k", lw=1.5, label=labels[0])
        ax.plot(t, pred_rates[trial, :, n] * scale, "C1", lw=1.5, label=labels[1])
        ax.set_ylabel(f"n{n}")
    axes[0, 0].legend(loc="upper right", fontsize="small", ncol=3)
    axes[-1, 0].set_xlabel("time (s)" if bin_ms else "bin")
    fig.supylabel("spikes/s" if bin_ms else "counts/bin")
    fig.tight_layout()
    return fig


def plot_latents(latents: np.ndarray, *, reference: np.ndarray | None = None, trials: int = 5,
                 dims: tuple[int, int, int] = (0, 1, 2), title: str | None = None):
    """3-D trajectories of ``latents`` (trials, time, dims); ``reference`` drawn beside in grey."""
    plt = _plt()
    latents = np.asarray(latents)
    n_panels = 1 if reference is None else 2
    fig = plt.figure(figsize=(4.5 * n_panels, 4))
    for p, (data, name) in enumerate([(latents, "inferred")] + ([(np.asarray(reference), "true")]
                                                                 if reference is not None else [])):
        ax = fig.add_subplot(1, n_panels, p + 1, projection="3d")
        for i in range(min(trials, len(data))):
            ax.plot(*(data[i, :, d] for d in dims), lw=1)
        ax.set_title(name if title is None else f"{title}: {name}")
    fig.tight_layout()
    return fig


def plot_state_posteriors(posteriors: np.ndarray, *, true_states: np.ndarray | None = None, bin_ms: float = 1.0,
                          ax=None):
    """Stacked state posteriors p(z_t = s | X) of one sequence (time, states), true states on top."""
    plt = _plt()
    posteriors = np.asarray(posteriors)
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(8, 2.5))
    t = np.arange(len(posteriors)) * bin_ms / 1000.0
    ax.stackplot(t, posteriors.T, labels=[f"state {s}" for s in range(posteriors.shape[1])], alpha=0.8)
    if true_states is not None:
        true_states = np.asarray(true_states)
        ax.scatter(t, np.full(len(t), 1.03), c=[f"C{s % 10}" for s in true_states], s=4, marker="s",
                   clip_on=False)
    ax.set_ylim(0, 1.06)
    ax.set_xlim(t[0], t[-1])
    ax.set_ylabel("posterior")
    ax.set_xlabel("time (s)")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize="small")
    fig.tight_layout()
    return fig


def plot_coupling(weights: np.ndarray, *, reference: np.ndarray | None = None, titles: list[str] | None = None,
                  vmax: float | None = None):
    """Per-state coupling matrices (states, post, pre), with a reference row (e.g. truth) below."""
    plt = _plt()
    weights = np.asarray(weights)
    if weights.ndim == 2:
        weights = weights[None]
    rows = [weights] + ([np.asarray(reference).reshape(-1, *weights.shape[-2:])] if reference is not None else [])
    n_cols = max(len(r) for r in rows)
    vmax = float(np.nanmax(np.abs(np.concatenate([r.ravel() for r in rows])))) if vmax is None else vmax
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(2.2 * n_cols, 2.3 * len(rows)), squeeze=False)
    im = None
    for r, mats in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(mats):
                ax.axis("off")
                continue
            im = ax.imshow(mats[c], cmap="RdBu_r", vmin=-vmax, vmax=vmax)
            if titles is not None and r == 0:
                ax.set_title(titles[c], fontsize="small")
        axes[r, 0].set_ylabel("post" if r == 0 else "reference")
    fig.colorbar(im, ax=axes, shrink=0.8, label="weight")
    return fig
