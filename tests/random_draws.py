"""What the tests of a caller's global random generators share (``tests/`` is on ``sys.path``: pyproject's pytest
``pythonpath``): a command or recipe run from Python must leave them as it found them."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_callers_generators(seed: int) -> None:
    """Seed the three global generators a command reseeds, as a notebook's own seeding does: torch's, NumPy's legacy
    one and Python's ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def draws() -> tuple:
    """A caller's next draws from the three global generators."""
    return torch.rand(4).tolist(), np.random.rand(4).tolist(), [random.random() for _ in range(4)]
