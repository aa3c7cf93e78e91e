"""neurodyn.training."""

import os


def child_rank() -> bool:
    """True in a process that Lightning's DDP launcher started (local rank > 0 or node rank > 0). Here, not in
    :mod:`neurodyn.training.runs`, so that the command's last words after a Ctrl-C while modules load (Lightning half
    imported) can ask it without importing Lightning."""
    return any(int(os.environ.get(k, "0") or 0) > 0 for k in ("LOCAL_RANK", "NODE_RANK", "GROUP_RANK"))


def restore_environ(saved: dict) -> None:
    """Put environment variables back as ``saved`` (``{name: value or None}``, taken before a command changed them)
    holds them: None removes the variable. What a command sets for the processes it starts goes when it ends, so
    that a notebook or script that ran it in its own process keeps its environment.

    >>> saved = {"NEURODYN_DOCTEST_X": os.environ.get("NEURODYN_DOCTEST_X")}
    >>> os.environ["NEURODYN_DOCTEST_X"] = "1"; restore_environ(saved); "NEURODYN_DOCTEST_X" in os.environ
    False
    """
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def select_split_words(split) -> str | None:
    """The trials neurodyn tune's figures are of, as its closing line and ``neurodyn info`` of its run folder name
    them (never the validation trials, which the name ``valid/loss`` suggests): ``split`` is what tune's
    ``summary.json`` records as ``select_split``; None for anything but a string (a summary without it). Here, not in
    :mod:`neurodyn.training.tune`, so that ``info`` can say it without loading Lightning and Ray.

    >>> select_split_words("16 of the 160 training trials (seed 0); the validation trials are not used")
    'the select split, 16 of the 160 training trials (seed 0); the validation trials are not used'
    >>> select_split_words("the DataModule's select split: 16 of the training trials")
    "the DataModule's select split: 16 of the training trials"
    >>> select_split_words(None) is None
    True
    """
    if not isinstance(split, str):
        return None
    return split if split.startswith("the ") else f"the select split, {split}"
