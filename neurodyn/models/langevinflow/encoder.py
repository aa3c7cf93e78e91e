"""GRU encoder over held-in spikes and the Gaussian posterior of the initial state (z_0, v_0)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from neurodyn.models.langevinflow._random import dropout

__all__ = ["GRUEncoder", "InitialStatePosterior", "input_schedule"]


def input_schedule(n_obs_bins: int, n_fwd_bins: int, alignment: str) -> list[int]:
    """Which observed bin the GRU reads at each of the T + F steps.

    ``'current'``: [0, 1, …, T-1, T-1, …, T-1]; ``'lagged'`` (reference): [0, 0, 1, …, T-2, T-1, …, T-1].
    Forward steps always re-read the last observed bin: they never see data beyond bin T-1.

    Examples
    --------
    >>> input_schedule(3, 2, "current"), input_schedule(3, 2, "lagged")
    ([0, 1, 2, 2, 2], [0, 0, 1, 2, 2])
    """
    last = n_obs_bins - 1
    if alignment == "current":
        observed = list(range(n_obs_bins))
    elif alignment == "lagged":
        observed = [0] + list(range(n_obs_bins - 1))
    else:
        raise ValueError(f"unknown encoder alignment {alignment!r}")
    return observed + [last] * n_fwd_bins


class GRUEncoder(nn.Module):
    """Unidirectional GRU whose dropped-out state is fed back (reference semantics).

    h_t = dropout(GRU(x_{s(t)}, h_{t-1})), h_{-1} = 0, where s(t) is :func:`input_schedule`.
    Gate equations are PyTorch's (r, z, n order). In training with dropout > 0 the recurrence runs as a
    Python loop (the dropout mask must act on the state that is fed back); otherwise it runs as one
    fused ``nn.GRU`` call with the same parameters.

    Parameters
    ----------
    n_inputs
        Held-in neurons N_in.
    hidden_size
        H.
    dropout_p
        Dropout probability on the fed-back state.

    Examples
    --------
    >>> enc = GRUEncoder(n_inputs=3, hidden_size=5, dropout_p=0.0)
    >>> enc(torch.rand(2, 4, 3)).shape
    torch.Size([2, 4, 5])
    """

    def __init__(self, n_inputs: int, hidden_size: int, dropout_p: float = 0.05):
        super().__init__()
        self.rnn = nn.GRU(n_inputs, hidden_size, num_layers=1, batch_first=True)
        self.hidden_size = hidden_size
        self.dropout_p = dropout_p

    def forward(self, inputs: Tensor, generator: torch.Generator | None = None, *, loop: bool | None = None
                ) -> Tensor:
        """Run the recurrence.

        Parameters
        ----------
        inputs : Tensor, shape (batch, steps, N_in)
            The input of each step (already arranged by :func:`input_schedule`), counts per bin.
        generator
            Source of the dropout masks (global RNG when None).
        loop
            Force (True) or forbid (False) the step loop; default: loop only when dropout is active.

        Returns
        -------
        Tensor, shape (batch, steps, H)
        """
        active = self.training and self.dropout_p > 0.0
        if loop is None:
            loop = active
        if not loop:
            if active:
                raise ValueError("the fused GRU path cannot apply dropout to the fed-back state")
            return self.rnn(inputs)[0]
        w_ih, w_hh = self.rnn.weight_ih_l0, self.rnn.weight_hh_l0
        b_ih, b_hh = self.rnn.bias_ih_l0, self.rnn.bias_hh_l0
        # The input projection does not depend on the state: one matrix product for all steps.
        gates_x = torch.nn.functional.linear(inputs, w_ih, b_ih).unbind(dim=1)
        h = inputs.new_zeros(inputs.shape[0], self.hidden_size)
        states = []
        for gx in gates_x:
            gh = torch.nn.functional.linear(h, w_hh, b_hh)
            rx, zx, nx = gx.chunk(3, dim=-1)
            rh, zh, nh = gh.chunk(3, dim=-1)
            reset = torch.sigmoid(rx + rh)
            update = torch.sigmoid(zx + zh)
            candidate = torch.tanh(nx + reset * nh)
            h = candidate + update * (h - candidate)  # = (1 - u)·n + u·h
            h = dropout(h, self.dropout_p, active, generator)
            states.append(h)
        return torch.stack(states, dim=1)


class InitialStatePosterior(nn.Module):
    """q(z_0, v_0 | h_0) = N(μ_z, diag σ_z²) N(μ_v, diag σ_v²), four linear maps of h_0 (fused in one).

    Parameters
    ----------
    hidden_size
        H.
    latent_dim
        D.

    Examples
    --------
    >>> post = InitialStatePosterior(hidden_size=6, latent_dim=4)
    >>> [t.shape[-1] for t in post(torch.zeros(2, 6))]
    [4, 4, 4, 4]
    """

    def __init__(self, hidden_size: int, latent_dim: int):
        super().__init__()
        # Same fan-in as four separate nn.Linear(H, D), so PyTorch's default init has the same law.
        self.heads = nn.Linear(hidden_size, 4 * latent_dim)

    def forward(self, h0: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Return (μ_z, log σ_z², μ_v, log σ_v²), each (batch, D), from h_0 (batch, H)."""
        z_mean, z_logvar, v_mean, v_logvar = self.heads(h0).chunk(4, dim=-1)
        return z_mean, z_logvar, v_mean, v_logvar
