"""Read NLB-style NWB files (one file, or a folder of them) into an :class:`NWBSession`.

Inputs: a local path (file or folder), a URL (``dandi://<dandiset>[@<version>]/<path>`` or
``https://...``, read over HTTP range requests without downloading, see :mod:`neurodyn.data.stream`),
or an open binary file object.

What is read, as ``nlb_tools.nwb_interface.NWBDataset`` reads it (nlb_tools 0.0.4, MIT), but into plain
NumPy arrays instead of a 1 ms DataFrame of the whole session:

- ``units``: ``spike_times`` per unit, ``obs_intervals``, ``heldout``.
- ``trials``: every column; ``id`` is renamed ``trial_id`` and ``stop_time`` ``end_time``; times are
  float seconds on the session clock.
- Time series anywhere in the file (``processing`` modules and their containers, as nlb_tools finds
  them), read lazily; column names from ``comments`` ``"columns=[...]"`` when present.

The session lives on a 1 ms grid ``[0, n_ms)``, ``n_ms = round(1000 * max last obs_intervals end)``;
spike ``t`` lands in 1 ms bin ``int(round(t * 1000, 6))``. A folder loads every ``*.nwb`` in sorted order
(``desc-test`` before ``desc-train``); each later file starts ``ceil(10 * (previous end + 0.05 s)) / 10``
seconds after the previous one (the gap is unobserved) and its trial ids are offset by the trials before
it. Files are opened read-only and never written.

Examples
--------
>>> from neurodyn.data.nwb import load_session              # doctest: +SKIP
>>> s = load_session("sub-Jenkins_ses-small_desc-test_ecephys.nwb")   # doctest: +SKIP
>>> s.n_units, s.n_trials, s.n_ms                           # doctest: +SKIP
(107, 100, 79900)
"""

from neurodyn.data.nwb.merge import NWBInput, load_session, merge_intervals, nwb_files, observed_at
from neurodyn.data.nwb.reader import units_header
from neurodyn.data.nwb.session import (
    NS_PER_MS,
    NS_PER_S,
    BehaviorSeries,
    NWBSession,
    SourceFile,
    seconds_to_ns,
    spike_ms_index,
)

__all__ = ["NS_PER_MS", "NS_PER_S", "BehaviorSeries", "NWBInput", "NWBSession", "SourceFile", "load_session",
           "merge_intervals", "nwb_files", "observed_at", "seconds_to_ns", "spike_ms_index", "units_header"]
