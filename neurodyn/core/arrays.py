"""Arrays as numpy sees them, whichever library made them."""

from __future__ import annotations

import numpy as np


def to_numpy(value, dtype=None) -> np.ndarray:
    """``value`` as a numpy array (``np.asarray(value, dtype)``); a torch tensor -- on any device, part of an
    autograd graph, in bfloat16 (which numpy has no type for: widened to float32, exactly) -- is detached and
    copied to the CPU first. torch is not imported.

    Examples
    --------
    >>> to_numpy([1, 2], dtype=float)
    array([1., 2.])
    >>> import torch
    >>> to_numpy(torch.ones(2, dtype=torch.bfloat16, requires_grad=True) * 3)
    array([3., 3.], dtype=float32)
    """
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch tensor
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            value = value.float()
    return np.asarray(value, dtype=dtype)
