"""One post-norm transformer block over e_t = [z_t; v_t; h_t] (optionally causal, with positions)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurodyn.models.langevinflow._random import dropout

__all__ = ["PostNormTransformerBlock", "sinusoidal_positions"]

# T-Fixup factor of the reference code, written for 3 encoder layers although there is one.
REFERENCE_FIXUP_SCALE = 0.67 * 3.0 ** (-0.25)


def sinusoidal_positions(n_steps: int, width: int, *, dtype=torch.float32, device=None) -> Tensor:
    """Vaswani et al. (2017) position code, shape (n_steps, width).

    PE[t, 2i] = sin(t / 10000^{2i/width}), PE[t, 2i+1] = cos(t / 10000^{2i/width}); odd widths drop the
    last cosine column.

    Examples
    --------
    >>> sinusoidal_positions(3, 4)[0].tolist()
    [0.0, 1.0, 0.0, 1.0]
    """
    position = torch.arange(n_steps, dtype=torch.float64, device=device).unsqueeze(1)
    n_pairs = (width + 1) // 2
    pair_index = torch.arange(n_pairs, dtype=torch.float64, device=device)
    freq = torch.exp(-math.log(10000.0) * 2.0 * pair_index / width)
    angles = position * freq
    code = torch.stack([angles.sin(), angles.cos()], dim=-1).reshape(n_steps, 2 * n_pairs)
    return code[:, :width].to(dtype)


class PostNormTransformerBlock(nn.Module):
    """x ← LN(x + Drop(MHA(x))); x ← LN(x + Drop(W₂ Drop(ReLU(W₁ x))))  (``TransformerEncoderLayer``).

    Multi-head attention: softmax(Q Kᵀ / √d_head + mask) with dropout on the attention weights, as in
    ``nn.MultiheadAttention``; computed by ``F.scaled_dot_product_attention`` (SDPA) except when
    attention dropout is active and must come from an explicit generator or runs on a CPU (where SDPA
    with dropout takes a slower generic path). Same parameter count as
    ``nn.TransformerEncoderLayer`` (3d² + 3d packed Q/K/V, d² + d output, FF and two LayerNorms).

    Parameters
    ----------
    width
        d_model (2D + H in LangevinFlow).
    n_heads
        Heads; must divide ``width``.
    ff_dim
        Feed-forward width.
    dropout_p
        Dropout probability (attention weights, both residual branches, inside the FF).
    init
        ``'default'``: PyTorch's (Xavier-uniform packed Q/K/V, zero Q/K/V and output biases, Kaiming-
        uniform elsewhere). ``'reference'``: the same, then the output projection and both FF weights
        scaled by 0.67·3^(-1/4) ≈ 0.509.

    Examples
    --------
    >>> block = PostNormTransformerBlock(width=12, n_heads=2, ff_dim=16, dropout_p=0.0)
    >>> block(torch.randn(3, 5, 12)).shape
    torch.Size([3, 5, 12])
    """

    def __init__(self, width: int, n_heads: int, ff_dim: int, dropout_p: float = 0.05, init: str = "default"):
        super().__init__()
        if width % n_heads:
            raise ValueError(f"width {width} is not divisible by n_heads {n_heads}")
        self.width, self.n_heads, self.dropout_p = width, n_heads, dropout_p
        self.qkv = nn.Linear(width, 3 * width)
        self.out_proj = nn.Linear(width, width)
        self.ff1 = nn.Linear(width, ff_dim)
        self.ff2 = nn.Linear(ff_dim, width)
        self.norm1 = nn.LayerNorm(width)
        self.norm2 = nn.LayerNorm(width)
        self.reset_parameters(init)

    def reset_parameters(self, init: str = "default") -> None:
        """(Re)initialise as described in the class docstring."""
        if init not in ("default", "reference"):
            raise ValueError(f"unknown decoder init {init!r}")
        for layer in (self.out_proj, self.ff1, self.ff2):
            layer.reset_parameters()
        nn.init.xavier_uniform_(self.qkv.weight)
        nn.init.zeros_(self.qkv.bias)
        nn.init.zeros_(self.out_proj.bias)
        self.norm1.reset_parameters()
        self.norm2.reset_parameters()
        if init == "reference":
            with torch.no_grad():
                for layer in (self.out_proj, self.ff1, self.ff2):
                    layer.weight.mul_(REFERENCE_FIXUP_SCALE)

    def forward(self, x: Tensor, *, causal: bool = False, generator: torch.Generator | None = None) -> Tensor:
        """Apply the block.

        Parameters
        ----------
        x : Tensor, shape (batch, time, width)
        causal
            Mask attention to positions ≤ t (output t then depends on inputs 0…t only).
        generator
            Source of the dropout masks (global RNG when None).

        Returns
        -------
        Tensor, shape (batch, time, width)
        """
        p, train = self.dropout_p, self.training
        x = self.norm1(x + dropout(self._attend(x, causal, generator), p, train, generator))
        # relu(drop(a)) = drop(relu(a)) exactly (dropout scales by 0 or 1/(1-p) > 0); in this order the
        # ReLU output is also the input ff2 keeps for backward, so autograd stores one tensor, not two.
        hidden = F.relu(dropout(self.ff1(x), p, train, generator))
        return self.norm2(x + dropout(self.ff2(hidden), p, train, generator))

    def _attend(self, x: Tensor, causal: bool, generator: torch.Generator | None,
                explicit: bool | None = None) -> Tensor:
        batch, time, width = x.shape
        head_dim = width // self.n_heads
        q, k, v = (
            t.reshape(batch, time, self.n_heads, head_dim).transpose(1, 2)
            for t in self.qkv(x).chunk(3, dim=-1)
        )
        drop = self.dropout_p if self.training else 0.0
        if explicit is None:
            # With attention dropout on a CPU, PyTorch's fused kernel falls back to its generic "math"
            # path, which is slower than the explicit products below (MC_Maze size, bf16, 1 thread:
            # 17-25 s vs 13-15 s per block forward + backward on a heavily loaded 2-core machine).
            explicit = drop > 0.0 and (generator is not None or x.device.type == "cpu")
        if not explicit:
            # Fused kernel (same arithmetic); its attention dropout uses the global RNG.
            mixed = F.scaled_dot_product_attention(q, k, v, dropout_p=drop, is_causal=causal)
            return self.out_proj(mixed.transpose(1, 2).reshape(batch, time, width))
        # Explicit path: attention-weight dropout drawn from ``generator``.
        scores = q @ k.transpose(-1, -2) / math.sqrt(head_dim)  # (batch, heads, time, time)
        if causal:
            future = torch.ones(time, time, dtype=torch.bool, device=x.device).triu(1)
            scores = scores.masked_fill(future, float("-inf"))
        weights = dropout(scores.softmax(dim=-1), self.dropout_p, self.training, generator)
        mixed = (weights @ v).transpose(1, 2).reshape(batch, time, width)
        return self.out_proj(mixed)
