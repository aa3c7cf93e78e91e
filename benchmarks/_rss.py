"""Peak resident memory of this process, shared by the benchmarks' child processes (stdlib only: it also
runs in the nlb_tools environment)."""

from __future__ import annotations

import resource


def peak_rss_mb() -> float:
    """This process's peak resident size in MiB: ``VmHWM`` (``ru_maxrss`` would carry the parent's over exec)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def children_peak_rss_mb() -> float:
    """The largest peak resident size among this process's finished children, in MiB."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
