"""The coupled-oscillator potential of LangevinFlow and its closed-form (linear) force.

The latent position z ∈ R^D is read channel-major as Z ∈ R^{C×L} (``Z[c, l] = z[c·L + l]``, L = D/C).
A kernel K ∈ R^{C×C×k} is L2-normalised per filter, Ŵ[o,c,:] = K[o,c,:] / max(‖K[o,c,:]‖, 1e-12), and

    Y[o,l] = Σ_c Σ_j Ŵ[o,c,j] Z[c, l+j-P]        (zero outside 0…L-1, P = (k-1)/2)
    U(z)   = Σ_l y_l s_l,   y_l = Σ_o Y[o,l],   s_l = Σ_c Z[c,l].

U is the quadratic form zᵀAz, so ∇U(z) = (A + Aᵀ)z is linear in z. With w[c,j] = Σ_o Ŵ[o,c,j]:

    ∂U/∂Z[c,m] = y_m + Σ_j w[c,j] s_{m-j+P}  =  Σ_{c'} Σ_j G[c,c',j] Z[c', m+j-P],
    G[c,c',j]  = w[c',j] + w[c, k-1-j],

i.e. one zero-padded ``conv1d`` with the 'force kernel' G (self-adjoint: G[c,c',j] = G[c',c,k-1-j]).
No autograd is needed inside the integrator.

Rank: U depends on z only through the 2L numbers y = Mz and s = Pz (M, P of size L×D): U = (Mz)ᵀ(Pz),
A = MᵀP, and S = A + Aᵀ has rank at most 2L = 2D/C whatever the kernel. At the reference's C = 4 at least
half of the latent directions feel no force: every z with y = 0 and s = 0 is a zero mode, along which the
dynamics are friction and noise only. This is the reference code's energy, kept as it is;
:meth:`CoupledOscillatorPotential.force_matrix` shows it and ``neurodyn.viz.plot_potential`` counts the
zero modes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["CoupledOscillatorPotential"]


class CoupledOscillatorPotential(nn.Module):
    """Learned quadratic potential over channels x sites with a local coupling kernel.

    Parameters
    ----------
    latent_dim
        D; must be divisible by ``n_channels``.
    n_channels
        C (reference 4).
    kernel_size
        k, odd (reference 3).
    init
        ``'random'``: kernel entries N(0, 1) from the global RNG (module init, like every nn.Module);
        ``'zeros'``: reference (normalisation then divides by 1e-12 on the first gradient).

    Attributes
    ----------
    kernel : nn.Parameter, shape (C, C, k)
        The raw kernel K (48 numbers at the reference size); only each filter's direction matters.

    Examples
    --------
    >>> pot = CoupledOscillatorPotential(latent_dim=8, n_channels=4, kernel_size=3)
    >>> z = torch.randn(5, 8)
    >>> pot.energy(z).shape, pot.force(z).shape
    (torch.Size([5]), torch.Size([5, 8]))
    """

    def __init__(self, latent_dim: int, n_channels: int = 4, kernel_size: int = 3, init: str = "random"):
        super().__init__()
        if latent_dim % n_channels or kernel_size % 2 != 1:
            raise ValueError("latent_dim must be divisible by n_channels and kernel_size must be odd")
        self.latent_dim = latent_dim
        self.n_channels = n_channels
        self.kernel_size = kernel_size
        self.n_sites = latent_dim // n_channels
        self.kernel = nn.Parameter(torch.zeros(n_channels, n_channels, kernel_size))
        if init == "random":
            nn.init.normal_(self.kernel)
        elif init != "zeros":
            raise ValueError(f"unknown potential init {init!r}")

    def normalized_kernel(self) -> Tensor:
        """Ŵ, each filter K[o,c,:] divided by max(‖K[o,c,:]‖₂, 1e-12) (as ``F.normalize``), (C, C, k)."""
        return F.normalize(self.kernel, p=2.0, dim=2, eps=1e-12)

    def force_kernel(self) -> Tensor:
        """G[c,c',j] = w[c',j] + w[c,k-1-j] with w = Σ_o Ŵ[o]; shape (C, C, k). ∇U = conv1d(Z, G)."""
        w = self.normalized_kernel().sum(dim=0)  # (C, k): only the out-channel sum enters U
        return w.unsqueeze(0) + w.flip(-1).unsqueeze(1)

    def energy(self, z: Tensor) -> Tensor:
        """U(z) per trial.

        Parameters
        ----------
        z : Tensor, shape (batch, D)

        Returns
        -------
        Tensor, shape (batch,)
        """
        sites = z.reshape(z.shape[0], self.n_channels, self.n_sites)
        w = self.normalized_kernel().sum(dim=0, keepdim=True)  # (1, C, k): y = Σ_o Y[o]
        y = F.conv1d(sites, w.to(z.dtype), padding=self.kernel_size // 2)[:, 0]  # (B, L)
        s = sites.sum(dim=1)  # (B, L)
        return (y * s).sum(dim=-1)

    def force(self, z: Tensor, kernel: Tensor | None = None) -> Tensor:
        """∇U(z) in closed form (sign: the integrator uses v ← v - Δ·force).

        Parameters
        ----------
        z : Tensor, shape (batch, D)
        kernel : Tensor, optional
            A precomputed :meth:`force_kernel` (the integrator computes it once per rollout).

        Returns
        -------
        Tensor, shape (batch, D)
        """
        kernel = self.force_kernel() if kernel is None else kernel
        sites = z.reshape(z.shape[0], self.n_channels, self.n_sites)
        return F.conv1d(sites, kernel.to(z.dtype), padding=self.kernel_size // 2).reshape(z.shape)

    def forward(self, z: Tensor, return_force: bool = False) -> Tensor:
        """:meth:`energy` (batch,) or, with ``return_force``, :meth:`force` (batch, D)."""
        return self.force(z) if return_force else self.energy(z)

    def force_matrix(self) -> Tensor:
        """The symmetric matrix S = A + Aᵀ with ∇U(z) = S z, shape (D, D) (for analysis and tests)."""
        eye = torch.eye(self.latent_dim, dtype=self.kernel.dtype, device=self.kernel.device)
        return self.force(eye).T  # column j = force of the j-th basis vector
