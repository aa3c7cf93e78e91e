"""Helpers shared by the plotting modules: a headless-safe pyplot and argument checks."""

from __future__ import annotations

import numpy as np

from neurodyn.errors import InputError, whole_number


def pyplot():
    """``matplotlib.pyplot``, switched to the Agg backend when no display and no IPython kernel exist.

    Notebooks keep their inline backend; scripts, tests and the CLI draw off-screen, so plotting
    never needs a display.
    """
    import matplotlib

    if matplotlib.get_backend().lower() not in {"agg", "module://matplotlib_inline.backend_inline"}:
        try:
            import IPython

            if IPython.get_ipython() is None:
                matplotlib.use("Agg")
        except ImportError:
            matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def as_array(value, name: str, ndim: int | tuple[int, ...], *, min_size: int = 1) -> np.ndarray:
    """``value`` as a float array with ``ndim`` dimensions (one of them) and a non-empty shape.

    Raises
    ------
    InputError
        Naming ``name`` when the number of dimensions is wrong or an axis is shorter than ``min_size``.
    """
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"expected a numeric array, got {type(value).__name__}", field=name) from None
    allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
    if arr.ndim not in allowed:
        want = " or ".join(f"{d}-D" for d in allowed)
        raise InputError(f"expected a {want} array, got shape {arr.shape}", field=name)
    if any(s < min_size for s in arr.shape):
        raise InputError(f"every axis needs at least {min_size} entries, got shape {arr.shape}", field=name)
    return arr


def time_axis(n_bins: int, bin_ms: float | None, offset_ms: float = 0.0) -> tuple[np.ndarray, str]:
    """Bin centres and their label: seconds (with ``bin_ms``; ``offset_ms`` = time of the first bin's
    left edge) or bin indices (without)."""
    if bin_ms is None or (not isinstance(bin_ms, bool) and np.ndim(bin_ms) == 0 and bin_ms == 0):
        return np.arange(n_bins, dtype=np.float64), "bin"  # 0 too, as before: no width
    try:
        width = float(bin_ms)  # Python, numpy (0-d arrays too) or torch numbers
    except (TypeError, ValueError):
        width = np.nan
    if isinstance(bin_ms, bool) or not (np.isfinite(width) and width > 0):
        raise InputError(f"must be a finite number of ms > 0, got {bin_ms!r}", field="bin_ms")
    bin_ms = width
    return (offset_ms + (np.arange(n_bins) + 0.5) * bin_ms) / 1000.0, "time (s)"


def check_index(value, name: str, size: int) -> int:
    """A whole number in ``0..size-1`` (a float 1.5 was numpy's 'only integers ... are valid indices')."""
    index = whole_number(value)  # Python, numpy (0-d too) and torch integers; not 1.5, not True
    if index is None or not 0 <= index < size:
        raise InputError(f"{value!r} out of range (a whole number 0..{size - 1})", field=name)
    return index


def check_labels(labels, name: str, n_states: int | None) -> np.ndarray:
    """State labels as int64: whole numbers in ``0..n_states-1`` (>= 0 without ``n_states``: true states may
    be more than a model's); 2.5 was drawn as a state."""
    from neurodyn.metrics.states import state_labels

    labels = state_labels(labels, name)  # whole numbers >= 0, the metrics' rule
    if n_states is not None and labels.size and labels.max() >= n_states:
        raise InputError(f"state labels must lie in 0..{n_states - 1}, got up to {labels.max()}", field=name)
    return labels


def figure(fig=None, figsize: tuple[float, float] = (6.0, 4.0)):
    """``(figure, owned)``: the given Figure/SubFigure to draw into, or a new figure (``owned=True``).

    Functions call ``tight_layout`` only on figures they own; a caller composing several plots in
    ``Figure.subfigures`` should create its figure with ``layout="constrained"``.
    """
    if fig is not None:
        return fig, False
    return pyplot().figure(figsize=figsize), True
