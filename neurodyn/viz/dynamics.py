r"""Figures of latent dynamics: principal components of latents, Langevin energy, the learned potential.

LangevinFlow's latent position z and velocity v (``(trials, time, D)``) follow underdamped Langevin
dynamics in the quadratic potential :math:`U(z) = \tfrac12 z^\top S z` (``S`` =
``potential.force_matrix()``, the force being :math:`\nabla U = S z`); the energy of a state is
:math:`E = U(z) + \tfrac12 \lVert v \rVert^2` (unit mass).
"""

from __future__ import annotations

import numpy as np

from neurodyn.errors import InputError, check_whole, whole_number
from neurodyn.viz._common import as_array, axis_step, closes_on_error, figure, pyplot, time_axis

__all__ = ["pca", "plot_latent_pca", "plot_energy", "plot_potential"]


def pca(latents, n_components: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Project ``(trials, time, dims)`` latents on their top principal components.

    The mean over all trials and bins is removed and the components are the right singular vectors
    of the stacked ``(trials*time, dims)`` matrix; signs are fixed so that each component's largest
    loading is positive (deterministic output).

    Parameters
    ----------
    latents : array (trials, time, dims)
    n_components : int
        At most ``min(trials*time, dims)``.

    Returns
    -------
    projected : array (trials, time, n_components)
    explained : array (n_components,)
        Fraction of the total variance captured by each component.

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(5, 20, 4)) * [3.0, 1.0, 0.1, 0.1]
    >>> proj, ev = pca(x, 2)
    >>> proj.shape, bool(ev[0] > 0.8)
    ((5, 20, 2), True)
    """
    latents = as_array(latents, "latents", 3)
    flat = latents.reshape(-1, latents.shape[-1])
    count = whole_number(n_components)  # 2.5 was a slice error deep in numpy
    if count is None or not 1 <= count <= min(flat.shape):
        raise InputError(f"must be between 1 and {min(flat.shape)}, got {n_components!r}", field="n_components")
    n_components = count
    if not np.all(np.isfinite(flat)):
        raise InputError("latents contain NaN or infinite values", field="latents")
    centred = flat - flat.mean(axis=0)
    _, singular, components = np.linalg.svd(centred, full_matrices=False)
    components = components[:n_components]
    signs = np.sign(components[np.arange(n_components), np.abs(components).argmax(axis=1)])
    components = components * signs[:, None]
    total = float((singular**2).sum())
    explained = singular[:n_components] ** 2 / total if total > 0 else np.zeros(n_components)
    return (centred @ components.T).reshape(*latents.shape[:2], n_components), explained


@closes_on_error
def plot_latent_pca(
    latents,
    *,
    bin_ms: float | None = None,
    offset_ms: float = 0.0,
    n_components: int = 3,
    trials: int = 20,
    event: str = "alignment",
    title: str | None = None,
    fig=None,
    forward_from: int | None = None,
):
    """Top principal components of latents over time, and the trajectories in the PC1-PC2 plane.

    Left panels: each component against time, thin lines for the first ``trials`` trials and a thick
    line for the trial mean. Right panel: PC1 vs PC2 per trial, the trial mean's points coloured by time
    (viridis: early dark purple, late light yellow), with the alignment event (t = 0) marked by a dot on
    each single trial's trajectory (on the mean's when ``trials`` is 0). With ``n_components=1``
    (one-dimensional latents) the time panel alone is drawn.

    Parameters
    ----------
    latents : array (trials, time, dims)
    bin_ms, offset_ms : float, optional
        Bin width and the first bin's left edge relative to the event.
    n_components : int
        1 to ``min(trials * time, dims)``.
    trials : int
        Number of single trials drawn (the first ones; all of them when there are fewer); 0 draws the mean
        alone.
    event : str
        Name of the alignment event (axis label).
    title : str, optional
    fig : Figure or SubFigure, optional
        Draw into this (e.g. a panel of a composite figure) instead of a new figure.
    forward_from : int, optional
        First bin of forward prediction (after the observed window, e.g. an NLB prediction's latents beyond
        its rates): a dotted line labelled "forward" marks its left edge on the time axes.

    Returns
    -------
    matplotlib.figure.Figure
        ``n_components`` time axes (x limits on the outer bin edges) and, with two or more components, one
        PC1-PC2 axis.

    Examples
    --------
    >>> z = np.random.default_rng(0).normal(size=(6, 30, 8)).cumsum(1)
    >>> len(plot_latent_pca(z, bin_ms=20, offset_ms=-200).axes)
    4
    """
    projected, explained = pca(latents, n_components)
    n_components = projected.shape[-1]
    trials = check_whole(trials, "trials", 0)  # 1.5 was a slice error
    n_trials, n_bins, _ = projected.shape
    if forward_from is not None:
        if whole_number(forward_from) is None or not 0 < forward_from < n_bins:
            raise InputError(f"expected a bin 1..{n_bins - 1}, got {forward_from!r}", field="forward_from")
        forward_from = whole_number(forward_from)
    t, label = time_axis(n_bins, bin_ms, offset_ms)
    if bin_ms and event != "alignment":
        label = f"time from {event} (s)"
    step = axis_step(bin_ms)  # bin width on the time axis
    shown = projected[: min(trials, n_trials)]  # 0: the mean alone (was one trial drawn all the same)
    fig, owned = figure(fig, (10, 1.5 + 1.3 * n_components))
    grid = fig.add_gridspec(n_components, 2 if n_components > 1 else 1, width_ratios=[1.4, 1][: min(2, n_components)])
    for k in range(n_components):
        ax = fig.add_subplot(grid[k, 0])
        if len(shown):
            ax.plot(t, shown[..., k].T, color="0.6", lw=0.6)
        ax.plot(t, projected[..., k].mean(axis=0), color="C3", lw=2)
        ax.set_xlim(t[0] - step / 2, t[-1] + step / 2)  # the bins' outer edges, as the image panels
        ax.set_ylabel(f"PC{k + 1}\n({100 * explained[k]:.0f}%)")
        if bin_ms and t[0] <= 0 <= t[-1]:
            ax.axvline(0.0, color="k", ls="--", lw=1)
        if forward_from is not None:
            edge = t[forward_from] - step / 2
            ax.axvline(edge, color="C0", ls=":", lw=1.5)
            if k == 0:
                ax.text(edge, 1.0, " forward \u2192", transform=ax.get_xaxis_transform(), ha="left", va="top",
                        color="C0", fontsize="small")
        if k < n_components - 1:
            ax.tick_params(labelbottom=False)
        else:
            ax.set_xlabel(label)
    if n_components < 2:
        if title:
            fig.suptitle(title)
        if owned:
            fig.tight_layout()
        return fig
    ax_plane = fig.add_subplot(grid[:, 1])
    for trajectory in shown:
        ax_plane.plot(trajectory[:, 0], trajectory[:, 1], color="0.7", lw=0.6)
    mean = projected.mean(axis=0)
    ax_plane.scatter(mean[:, 0], mean[:, 1], c=t, cmap="viridis", s=14, zorder=3)
    ax_plane.plot(mean[:, 0], mean[:, 1], color="C3", lw=1.5, zorder=2)
    if bin_ms and t[0] <= 0 <= t[-1]:
        at_event = int(np.argmin(np.abs(t)))
        marked = shown[:, at_event] if len(shown) else mean[None, at_event]  # no single trial: the mean's point
        ax_plane.scatter(
            marked[:, 0],
            marked[:, 1],
            color="k",
            s=8,
            zorder=4,
            label=f"{event} (t = 0)" if event != "alignment" else "t = 0",
        )
        ax_plane.legend(fontsize="small", loc="best")
    ax_plane.set_xlabel("PC1")
    ax_plane.set_ylabel("PC2")
    if title:
        fig.suptitle(title)
    if owned:
        fig.tight_layout()
    return fig


@closes_on_error
def plot_energy(kinetic, potential, *, bin_ms: float | None = None, offset_ms: float = 0.0, title: str | None = None,
                ax=None):
    r"""Kinetic, potential and total energy of latent trajectories over time (mean ± 1 s.d. over trials).

    Parameters
    ----------
    kinetic : array (trials, time)
        :math:`\tfrac12 \lVert v_t \rVert^2` per trial and bin.
    potential : array (trials, time)
        :math:`U(z_t)` per trial and bin.
    bin_ms : float, optional
        Bin width (x axis in seconds), else bins.
    offset_ms : float
        Time of the first bin's left edge (as in the other plots).
    title : str, optional
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib.figure.Figure
        One axis with three mean lines (kinetic, potential, total), their bands and a line at zero.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> len(plot_energy(rng.random((4, 25)), rng.normal(size=(4, 25))).axes[0].lines)  # 3 + the zero line
    4
    """
    plt = pyplot()
    kinetic = as_array(kinetic, "kinetic", 2)
    potential = as_array(potential, "potential", 2)
    if kinetic.shape != potential.shape:
        raise InputError(f"shape {potential.shape} differs from kinetic {kinetic.shape}", field="potential")
    t, label = time_axis(kinetic.shape[1], bin_ms, offset_ms)
    owned = ax is None
    fig, ax = plt.subplots(figsize=(6, 3)) if owned else (ax.figure, ax)
    for values, name, colour in (
        (kinetic, "kinetic ½|v|²", "C0"),
        (potential, "potential U(z)", "C1"),
        (kinetic + potential, "total", "k"),
    ):
        mean, spread = values.mean(axis=0), values.std(axis=0)
        ax.plot(t, mean, color=colour, lw=1.8, label=name)
        ax.fill_between(t, mean - spread, mean + spread, color=colour, alpha=0.15)
    ax.axhline(0.0, color="0.5", lw=0.8)
    ax.set_xlabel(label)
    ax.set_ylabel("energy")
    ax.legend(fontsize="small", loc="best")
    if title:
        ax.set_title(title)
    if owned:
        fig.tight_layout()
    return fig


@closes_on_error
def plot_potential(force_matrix, *, kernel=None, title: str | None = None, fig=None):
    r"""The learned quadratic potential: the force matrix S, its spectrum and the coupling kernel.

    Parameters
    ----------
    force_matrix : array (D, D)
        Symmetric S with :math:`\nabla U(z) = S z`. Its eigenvalues are the squared angular
        frequencies (per unit time of the integrator) of the undamped normal modes; negative ones
        are unstable (repelling) directions, zero ones force-free (friction and noise only; LangevinFlow's
        potential has rank at most 2D/C, see :mod:`neurodyn.models.langevinflow.potential`).
    kernel : array (channels, channels, taps), optional
        The normalised coupling kernel Ŵ (``potential.normalized_kernel()``), drawn as a
        (out-channel) x (in-channel, tap) image.
    title : str, optional
    fig : Figure or SubFigure, optional

    Returns
    -------
    matplotlib.figure.Figure
        Data axes: force matrix, eigenvalues, and (with ``kernel``) the kernel image; plus colour bars.

    Examples
    --------
    >>> a = np.random.default_rng(0).normal(size=(8, 8))
    >>> fig = plot_potential(a + a.T, kernel=np.ones((2, 2, 3)) / 3 ** 0.5)
    """
    force_matrix = as_array(force_matrix, "force_matrix", 2)
    if force_matrix.shape[0] != force_matrix.shape[1]:
        raise InputError(f"expected a square matrix, got shape {force_matrix.shape}", field="force_matrix")
    if not np.allclose(force_matrix, force_matrix.T, atol=1e-6 * max(1.0, np.abs(force_matrix).max())):
        raise InputError("expected a symmetric matrix (S = A + A^T)", field="force_matrix")
    n_panels = 3 if kernel is not None else 2
    fig, owned = figure(fig, (4.2 * n_panels, 3.6))
    axes = fig.subplots(1, n_panels)
    vmax = float(np.abs(force_matrix).max()) or 1.0
    image = axes[0].imshow(force_matrix, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
    fig.colorbar(image, ax=axes[0], shrink=0.8)
    axes[0].set_title("force matrix S (∇U = S z)", fontsize="small")
    axes[0].set_xlabel("latent dim")
    axes[0].set_ylabel("latent dim")
    eigenvalues = np.linalg.eigvalsh(0.5 * (force_matrix + force_matrix.T))
    axes[1].plot(np.arange(1, len(eigenvalues) + 1), eigenvalues, "o", ms=3)
    axes[1].axhline(0.0, color="k", lw=0.8)
    axes[1].set_xlabel("mode (sorted)")
    axes[1].set_ylabel("eigenvalue of S")
    # float32 round-off leaves zero modes at about 1e-7 x the largest eigenvalue: within 1e-5 x it a mode
    # is force-free (LangevinFlow's potential has at least D - 2D/C of them), not unstable
    tol = 1e-5 * max(float(np.abs(eigenvalues).max()), 1e-12)
    n_unstable = int((eigenvalues < -tol).sum())
    n_free = int((np.abs(eigenvalues) <= tol).sum())
    axes[1].set_title(f"{n_unstable} of {len(eigenvalues)} modes unstable, {n_free} force-free", fontsize="small")
    if kernel is not None:
        kernel = as_array(kernel, "kernel", 3)
        n_out, n_in, n_taps = kernel.shape
        image = axes[2].imshow(kernel.reshape(n_out, n_in * n_taps), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
        for c in range(1, n_in):
            axes[2].axvline(c * n_taps - 0.5, color="k", lw=1)
        axes[2].set_xticks([c * n_taps + (n_taps - 1) / 2 for c in range(n_in)], [f"in {c}" for c in range(n_in)])
        axes[2].set_yticks(range(n_out), [f"out {o}" for o in range(n_out)])
        axes[2].set_title(f"normalised kernel Ŵ ({n_taps} taps per pair)", fontsize="small")
        fig.colorbar(image, ax=axes[2], shrink=0.8)
    if title:
        fig.suptitle(title)
    if owned:
        fig.tight_layout()
    return fig
