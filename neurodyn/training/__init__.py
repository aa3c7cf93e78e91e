"""neurodyn.training."""

import os


def child_rank() -> bool:
    """True in a process that Lightning's DDP launcher started (local rank > 0 or node rank > 0). Here, not in
    :mod:`neurodyn.training.runs`, so that the command's last words after a Ctrl-C while modules load (Lightning half
    imported) can ask it without importing Lightning."""
    return any(int(os.environ.get(k, "0") or 0) > 0 for k in ("LOCAL_RANK", "NODE_RANK", "GROUP_RANK"))
