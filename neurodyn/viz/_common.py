"""Helpers shared by the plotting modules: a headless-safe pyplot and argument checks."""

from __future__ import annotations

import contextlib
import functools

import numpy as np

from neurodyn.errors import InputError, whole_number, with_article


def pyplot():
    """``matplotlib.pyplot``, with the caller's backend left as it is.

    A notebook keeps its inline (or widget) backend, a script its own (a GUI one for ``plt.show()``, ``svg``,
    ``pdf``, ...). Without a display matplotlib itself falls back to Agg for a GUI backend named in
    ``MPLBACKEND`` or a matplotlibrc. This used to switch every caller outside IPython to Agg, which also closed
    the caller's open figures (``matplotlib.use`` does); the command line picks Agg itself
    (:func:`offscreen_backend`).
    """
    import matplotlib.pyplot as plt

    return plt


@contextlib.contextmanager
def offscreen_backend():
    """The Agg backend and a fresh process's rcParams (matplotlib's defaults and the matplotlibrc) for the block,
    then the caller's backend and rcParams back: for the commands of ``neurodyn`` that draw into files (``plot``,
    ``demo``), never for a library call.

    A command draws into a file, never a window (under a GUI backend in interactive mode a new figure is a window at
    once), and the same file gives the same figure bytes whether the command runs in its own process or from Python
    (``neurodyn.cli.main``). Before, the commands called ``matplotlib.use("Agg")`` and left it: a notebook that ran
    ``main(["plot", ...])`` showed no inline figure after it, and lost matplotlib's fallback to Agg; and the figure
    took the notebook's rcParams (a style, a font size), so its bytes differed from the shell's.

    The caller's open figures stay open. Before matplotlib 3.10, ``pyplot.switch_backend`` closed every figure when
    the backend changed (its ``close("all")``: deprecated in 3.8 by matplotlib PR #26472, gone in 3.10), so on 3.7
    to 3.9 the switch to Agg closed the caller's figures; they are held out of pyplot's list of figures while the
    command draws and put back after it. Where the backend was switched, figures the command left open are closed at
    the end (it drew them into files; on 3.7 to 3.9 the switch back closed them too), so that none of them takes a
    caller's figure number; a caller already on Agg keeps them, as it keeps its own (plot and the demo close theirs).
    """
    import matplotlib
    import matplotlib.pyplot as plt
    from matplotlib._pylab_helpers import Gcf  # pyplot's figures: number -> manager, the active one last

    getter = getattr(matplotlib.rcParams, "_get", None)  # the name as set, an automatic choice left unresolved
    backend = getter("backend") if getter else dict.__getitem__(matplotlib.rcParams, "backend")
    default = dict.__getitem__(matplotlib.rcParamsDefault, "backend")
    fresh = {key: value for key, value in matplotlib.rcParamsOrig.items() if not key.startswith("backend")}
    switched = str(backend).lower() != "agg"
    held = dict(Gcf.figs) if switched else {}
    with matplotlib.rc_context(fresh):
        try:
            if switched:
                Gcf.figs.clear()  # out of reach of the switch's close("all") (matplotlib < 3.10)
                plt.switch_backend("agg")
            yield
        finally:
            if switched:
                try:
                    plt.close("all")  # the command's own figures: only they are in the list now
                    plt.switch_backend(backend)
                    dict.__setitem__(matplotlib.rcParamsDefault, "backend", default)
                finally:
                    Gcf.figs.update(held)


def closes_on_error(function):
    """Decorate a plotting function: a figure it opened is closed again when it raises.

    A refused argument found after the figure was made left it open: in a notebook an empty figure appeared
    under the error, and in a script the figures piled up. Figures the caller had open (or passed in as ``ax``
    / ``fig``) stay.
    """

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        plt = pyplot()
        before = set(plt.get_fignums())
        try:
            return function(*args, **kwargs)
        except BaseException:
            for number in set(plt.get_fignums()) - before:
                plt.close(number)
            raise

    return wrapper


def check_number(value, name: str) -> float:
    """A finite real number (Python, numpy or torch) as a float: ``offset_ms``, ``sigma_ms``; text or an array
    was a ufunc error deep in numpy."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = np.nan
    if isinstance(value, bool | np.bool_ | str | bytes) or np.ndim(value) != 0 or not np.isfinite(number):
        raise InputError(f"must be a finite number, got {value!r}", field=name)
    return number



def _whole(value) -> int | None:
    """``value`` as an int when it is a whole number: an integer (Python, numpy, torch) or a float that is one
    (``1.0``, ``np.float32(2)``, a 0-d float tensor: an index array read back as floats); None otherwise (``0.5``,
    a bool, text)."""
    number = whole_number(value)
    if number is not None or isinstance(value, bool | np.bool_ | str | bytes):
        return number
    if np.ndim(value) == 0 and hasattr(value, "item"):  # a numpy or torch scalar
        value = value.item()
    if isinstance(value, float | np.floating) and np.isfinite(value) and float(value).is_integer():
        return int(value)
    return None


def check_indices(values, name: str, size: int) -> list[int]:
    """A non-empty 1-d sequence of whole numbers in ``0..size-1`` as a list of ints: a list, tuple, range or
    array, of integers or of floats that are whole (``np.array([0., 1.])``); a set in increasing order (it has
    none of its own). ``neurons=[0.5]`` drew neuron 0, ``neurons=2`` was "'int' object is not iterable".

    >>> check_indices(np.array([2., 0.]), "neurons", 3), check_indices({2, 0}, "neurons", 3)
    ([2, 0], [0, 2])
    >>> check_indices([0.5], "neurons", 3)
    Traceback (most recent call last):
    ...
    neurodyn.errors.InputError: neurons: expected whole numbers 0..2, got [0.5]
    """
    if isinstance(values, set | frozenset):
        values = sorted(values, key=lambda v: (_whole(v) is None, _whole(v) or 0))
    if isinstance(values, str | bytes) or np.ndim(values) != 1 or not len(values):
        raise InputError(f"expected a non-empty list of indices 0..{size - 1}, got {values!r}", field=name)
    indices = [_whole(v) for v in values]
    if any(i is None for i in indices):
        shown = [v.item() if np.ndim(v) == 0 and hasattr(v, "item") else v for v in values]
        raise InputError(f"expected whole numbers 0..{size - 1}, got {shown}", field=name)
    if any(not 0 <= i < size for i in indices):
        raise InputError(f"{indices} out of range (whole numbers 0..{size - 1})", field=name)
    return indices


def check_pair(values, name: str) -> tuple:
    """Two labels (``labels=("a",)`` was an IndexError once the figure was half drawn)."""
    if isinstance(values, str | bytes) or np.ndim(values) != 1 or len(values) != 2:
        raise InputError(f"expected two labels, got {values!r}", field=name)
    return tuple(values)


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
        raise InputError(f"expected {with_article(want)} array, got shape {arr.shape}", field=name)
    if any(s < min_size for s in arr.shape):
        raise InputError(f"every axis needs at least {min_size} entries, got shape {arr.shape}", field=name)
    return arr


def bin_width(bin_ms) -> float | None:
    """The bin width in ms as a float, or None for "no width" (``None`` or 0: axes in bins, rates in counts
    per bin): the one rule of every plotting function.

    Python, numpy (0-d arrays too) and torch numbers are taken.

    Raises
    ------
    InputError
        Naming ``bin_ms``: anything else (a bool, text, an array of several values, NaN, infinite, < 0).

    Examples
    --------
    >>> bin_width(20), bin_width(0), bin_width(None)
    (20.0, None, None)
    """
    if bin_ms is None:
        return None
    try:
        width = float(bin_ms)  # Python, numpy (0-d arrays too) or torch numbers
    except (TypeError, ValueError):
        width = np.nan
    if isinstance(bin_ms, bool | np.bool_ | str | bytes) or np.ndim(bin_ms) != 0 or not (
            np.isfinite(width) and width >= 0):
        raise InputError(f"must be a finite number of ms > 0 (or 0 / None: no width), got {bin_ms!r}",
                         field="bin_ms")
    return width or None  # 0 too, as before: no width


def time_axis(n_bins: int, bin_ms: float | None, offset_ms: float = 0.0) -> tuple[np.ndarray, str]:
    """Bin centres and their label: seconds (with ``bin_ms``; ``offset_ms`` = time of the first bin's
    left edge) or bin indices (without: None or 0, see :func:`bin_width`)."""
    width = bin_width(bin_ms)
    offset_ms = check_number(offset_ms, "offset_ms")
    if width is None:
        return np.arange(n_bins, dtype=np.float64), "bin"
    return (offset_ms + (np.arange(n_bins) + 0.5) * width) / 1000.0, "time (s)"


def axis_step(bin_ms: float | None) -> float:
    """One bin's width on :func:`time_axis`'s axis: seconds with a width, else 1 (the axis counts bins).

    >>> axis_step(20), axis_step(None)
    (0.02, 1.0)
    """
    width = bin_width(bin_ms)
    return width / 1000.0 if width else 1.0


def bin_edges(t: np.ndarray, bin_ms: float | None) -> np.ndarray:
    """The edges of the bins centred on ``t`` (from :func:`time_axis`): ``len(t) + 1`` values.

    >>> bin_edges(np.array([0.01, 0.03]), 20)
    array([0.  , 0.02, 0.04])
    """
    step = axis_step(bin_ms)
    return np.concatenate([t - step / 2, [t[-1] + step / 2]])


def legend_columns(n_entries: int, per_column: int = 8) -> int:
    """Columns of a legend of ``n_entries`` (``per_column`` to a column: a long legend broke tight_layout)."""
    return -(-n_entries // per_column)


def label_rows(ax, ids) -> None:
    """Tick the rows 0..len(ids)-1 of an image on ``ax`` (whole rows only) with ``ids``, the names of the rows
    (neuron or NLB trial ids), not their positions."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    ids = np.asarray(ids)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: str(ids[int(round(y))]) if 0 <= round(y) < len(ids)
                                               else ""))


def state_colours(n_states: int) -> list:
    """One distinct colour per hidden state, the same in every figure: matplotlib's qualitative ``tab10`` up to
    10 states, ``tab20`` up to 20 (its light shades after the ten of ``tab10``), beyond that ``n_states``
    evenly spaced samples of the continuous ``turbo`` map (``f"C{s % 10}"`` gave state 10 state 0's colour).

    Examples
    --------
    >>> len(set(state_colours(12))), state_colours(3)[0] == state_colours(10)[0]
    (12, True)
    """
    from matplotlib import colormaps

    if n_states <= 10:
        return [tuple(c) for c in colormaps["tab10"].colors[:n_states]]
    if n_states <= 20:  # tab20's dark halves are tab10: states 0..9 keep their colours, 10..19 the light ones
        pairs = colormaps["tab20"].colors
        return [tuple(c) for c in (pairs[0::2] + pairs[1::2])[:n_states]]
    return [tuple(colormaps["turbo"](x)) for x in np.linspace(0.0, 1.0, n_states)]


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
