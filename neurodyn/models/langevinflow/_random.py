"""Random draws that take an optional ``torch.Generator``.

``torch.nn.functional.dropout`` always uses the global RNG; to make a whole forward pass reproducible
from one generator, dropout masks are drawn here explicitly when a generator is given.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def randn(shape, like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Standard normal draws with ``like``'s dtype and device (generator must live on that device)."""
    return torch.randn(shape, dtype=like.dtype, device=like.device, generator=generator)


def bernoulli(shape, p: float, like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Boolean mask with ``P(True) = p``, drawn as ``uniform < p``."""
    return torch.rand(shape, dtype=torch.float32, device=like.device, generator=generator) < p


def dropout(x: Tensor, p: float, training: bool, generator: torch.Generator | None) -> Tensor:
    """Inverted dropout: zero each entry with probability p, scale survivors by 1/(1-p).

    Identical in distribution to :func:`torch.nn.functional.dropout`; uses ``generator`` when given.
    """
    if not training or p == 0.0:
        return x
    if generator is None:
        return F.dropout(x, p, training=True)
    keep = bernoulli(x.shape, 1.0 - p, x, generator)
    return x * keep.to(x.dtype) / (1.0 - p)
