"""``offscreen_backend`` (the commands ``plot`` and ``demo`` draw under Agg) on every matplotlib that pyproject
allows: the caller's open figures stay open where matplotlib's backend switch closes them."""

from __future__ import annotations

import matplotlib

from neurodyn.viz._common import offscreen_backend


def test_the_callers_figures_stay_open_where_a_backend_switch_closes_every_figure(monkeypatch):
    """matplotlib 3.7 to 3.9 close every figure when pyplot's backend changes (``pyplot.switch_backend`` calls
    ``close("all")``; deprecated in 3.8, gone in 3.10): the switch to Agg closed the figures of a caller on another
    backend (a script on svg, a notebook's inline figures), which only matplotlib 3.11 had been checked against.
    Here the switch closes figures as those versions do, whatever matplotlib runs the test."""
    import matplotlib.pyplot as plt

    switch = plt.switch_backend

    def switch_closing_every_figure(name):  # matplotlib 3.7's switch_backend, in effect
        old = dict.__getitem__(matplotlib.rcParams, "backend")
        switch(name)
        if str(old).lower() != str(name).lower():
            plt.close("all")

    before = matplotlib.get_backend()
    try:
        switch("svg")
        already = plt.get_fignums()  # figures other tests of this process left open: the caller's too, kept
        mine, other = plt.figure(), plt.figure()
        plt.figure(mine.number)  # the active one
        monkeypatch.setattr(plt, "switch_backend", switch_closing_every_figure)
        with offscreen_backend():
            assert matplotlib.get_backend().lower() == "agg"
            plt.figure()  # a figure the command leaves open: closed at the end, its number none of the caller's
        monkeypatch.undo()
        assert matplotlib.get_backend().lower() == "svg"
        assert plt.get_fignums() == sorted([*already, mine.number, other.number])
        assert plt.gcf() is mine
        assert type(mine.canvas).__module__.endswith("backend_svg")
    finally:
        monkeypatch.undo()
        plt.switch_backend(before)
