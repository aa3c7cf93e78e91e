"""What the tests that start ``neurodyn`` in subprocesses share (``tests/`` is on ``sys.path``: pyproject's
pytest ``pythonpath``)."""

from __future__ import annotations

import os

#: the variables of a run of several processes (torch.distributed's, Lightning's; neurodyn's run folder for the
#: processes a command starts): a subprocess that inherited them would take itself for one process of that run
DIST_VARS = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK",
             "LOCAL_WORLD_SIZE", "NEURODYN_RUN_DIR", "NEURODYN_RUN_ID")


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without :data:`DIST_VARS`, with ``extra`` set (a subprocess starts fresh).

    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"RANK": "1"}):  # the caller's environment comes back
    ...     "RANK" in clean_env(), clean_env(OMP_NUM_THREADS="1")["OMP_NUM_THREADS"]
    (False, '1')
    """
    return {**{k: v for k, v in os.environ.items() if k not in DIST_VARS}, **extra}


def without_cores_note(stderr: str) -> list[str]:
    """stderr's lines, the note on processes sharing too few cores left out (printed on a machine of one core).

    >>> without_cores_note("note: trainer.devices: 2 processes on 1 CPU core ...\\nneurodyn fit: error: x")
    ['neurodyn fit: error: x']
    """
    return [line for line in stderr.splitlines() if not line.startswith("note: trainer.devices")]
