"""Where a run keeps its checkpoints and what its checkpoint index (``checkpoints/checkpoints.json``, written by
:class:`~neurodyn.training.checkpoints.AutoModelCheckpoint`) says, read without Lightning or torch: ``neurodyn info``
of a run folder reads them as :mod:`neurodyn.training.runs` does (``--ckpt_path best|last``), and must not load
Lightning to do so. One rule for both, here."""

from __future__ import annotations

import os
from pathlib import Path

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


def checkpoint_folder(run_dir: str | os.PathLike) -> Path:
    """The folder of a run's checkpoints (``last.ckpt``, the top-k files, the index): ``DIR/checkpoints``, or the
    ``checkpoint.dirpath`` that the run's ``config.yaml`` records (``neurodyn fit --checkpoint.dirpath FOLDER``;
    before, ``--run DIR`` looked for ``last`` and ``best`` in ``DIR/checkpoints`` only, and a resume of such a run
    was refused for having no last.ckpt). ``neurodyn fit`` records the folder as Lightning's ModelCheckpoint
    resolved it (``os.path.realpath`` of the path with ``~`` expanded, from the fit's working folder); a relative
    path that an older run recorded is taken from the working folder, as Lightning takes it on that run's resume.
    An unreadable config.yaml, or a folder on a remote filesystem (``s3://...``), gives ``DIR/checkpoints``."""
    import yaml

    run_dir = Path(run_dir)
    try:
        config = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
        dirpath = (config.get("checkpoint") or {}).get("dirpath")
    except (OSError, yaml.YAMLError, AttributeError):
        dirpath = None
    if not isinstance(dirpath, str) or not dirpath or "://" in dirpath:
        return run_dir / "checkpoints"
    return Path(os.path.abspath(os.path.expanduser(dirpath)))
