"""What a run's checkpoint index (``checkpoints/checkpoints.json``, written by
:class:`~neurodyn.training.checkpoints.AutoModelCheckpoint`) says, read without Lightning or torch: ``neurodyn info``
of a run folder reads it as :mod:`neurodyn.training.runs` does (``--ckpt_path best``), and must not load Lightning
to do so. One rule for both, here."""

from __future__ import annotations

#: name of the index that :class:`~neurodyn.training.checkpoints.AutoModelCheckpoint` keeps next to its checkpoints
#: (here, not in that module: ``neurodyn info`` of a run folder reads the index and must not load Lightning)
INDEX_NAME = "checkpoints.json"


def selects_best(index: dict) -> bool:
    """Whether a run's checkpoint index says the run keeps a best checkpoint: it has a monitor and a top k
    (``checkpoint.save_top_k`` 0 keeps none; the index of a run without a monitor records none). A run that selects
    may still name no best file: its monitor was never measured (it stopped before its first validation).

    >>> [selects_best({"monitor": "valid/loss", "save_top_k": k}) for k in (1, -1, 0, None)]
    [True, True, False, False]
    >>> selects_best({"monitor": None, "save_top_k": 1}), selects_best({})
    (False, False)
    """
    return bool(index.get("monitor")) and index.get("save_top_k") not in (None, 0)
