"""Helpers shared by the plotting modules: a headless-safe pyplot and argument checks."""

from __future__ import annotations

import numpy as np

from neurodyn.errors import InputError


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
    if not bin_ms:
        return np.arange(n_bins, dtype=np.float64), "bin"
    return (offset_ms + (np.arange(n_bins) + 0.5) * bin_ms) / 1000.0, "time (s)"


def figure(fig=None, figsize: tuple[float, float] = (6.0, 4.0)):
    """``(figure, owned)``: the given Figure/SubFigure to draw into, or a new figure (``owned=True``).

    Functions call ``tight_layout`` only on figures they own; a caller composing several plots in
    ``Figure.subfigures`` should create its figure with ``layout="constrained"``.
    """
    if fig is not None:
        return fig, False
    return pyplot().figure(figsize=figsize), True
