"""Peak resident memory of this process, shared by the benchmarks' child processes (stdlib only: it also
runs in the nlb_tools environment)."""

from __future__ import annotations

import resource
import sys


def peak_rss_mb() -> float:
    """This process's peak resident size in MiB: ``VmHWM`` on Linux (``ru_maxrss`` keeps the RSS the parent
    had at fork across exec, so a child of a big parent would report the parent's size), else ``ru_maxrss``."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # macOS reports bytes


def children_peak_rss_mb() -> float:
    """The largest peak resident size among this process's finished children, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024
