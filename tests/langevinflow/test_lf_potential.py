"""Coupled-oscillator potential: energy against its definition, closed-form force against autograd."""

from __future__ import annotations

import itertools

import pytest
import torch

from neurodyn.models.langevinflow import CoupledOscillatorPotential

# float64 throughout: a quadratic form with O(1) entries over D ≤ 40 terms has rounding error
# ~ D·1e-16·|U|, so 1e-11 relative is a safe bound that a wrong index/sign (O(1) error) cannot meet.
RTOL = 1e-11


def naive_energy(kernel: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """U(z) = Σ_l (Σ_o Y[o,l]) (Σ_c Z[c,l]) by explicit loops over the definition (the reference code's potential:
    https://github.com/KingJamesSong/LangevinFlow_CCN, nlb_lightning/models.py)."""
    n_out, n_in, taps = kernel.shape
    norms = kernel.pow(2).sum(-1, keepdim=True).sqrt().clamp_min(1e-12)
    w_hat = kernel / norms
    pad = taps // 2
    batch, dim = z.shape
    sites = dim // n_in
    energies = []
    for b in range(batch):
        Z = z[b].reshape(n_in, sites)  # channel-major: Z[c, l] = z[c*L + l]
        total = z.new_zeros(())
        for l in range(sites):
            y = z.new_zeros(())
            for o, c, j in itertools.product(range(n_out), range(n_in), range(taps)):
                m = l + j - pad
                if 0 <= m < sites:
                    y = y + w_hat[o, c, j] * Z[c, m]
            total = total + y * Z[:, l].sum()
        energies.append(total)
    return torch.stack(energies)


@pytest.mark.parametrize("n_channels,kernel_size,n_sites", [(4, 3, 5), (2, 5, 7), (3, 1, 4)])
def test_energy_matches_definition(n_channels, kernel_size, n_sites):
    torch.manual_seed(0)
    pot = CoupledOscillatorPotential(n_channels * n_sites, n_channels, kernel_size).double()
    z = torch.randn(3, n_channels * n_sites, dtype=torch.float64)
    expected = naive_energy(pot.kernel.detach(), z)
    torch.testing.assert_close(pot.energy(z), expected, rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("n_channels,kernel_size,n_sites", [(4, 3, 70 // 10), (2, 5, 9), (4, 3, 1)])
def test_force_is_gradient_of_energy(n_channels, kernel_size, n_sites):
    torch.manual_seed(1)
    pot = CoupledOscillatorPotential(n_channels * n_sites, n_channels, kernel_size).double()
    z = torch.randn(4, n_channels * n_sites, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(pot.energy(z).sum(), z)
    torch.testing.assert_close(pot.force(z.detach()), grad, rtol=RTOL, atol=1e-12)


def test_zero_kernel_gives_zero_energy_and_force():
    # Reference init: K = 0; the normalisation maps it to Ŵ = 0, so U ≡ 0 and ∇U ≡ 0.
    pot = CoupledOscillatorPotential(8, 4, 3, init="zeros").double()
    z = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    energy = pot.energy(z)
    (grad,) = torch.autograd.grad(energy.sum(), z)
    assert torch.equal(energy.detach(), torch.zeros(3, dtype=torch.float64))
    assert torch.equal(grad, torch.zeros_like(grad))
    assert torch.equal(pot.force(z.detach()), torch.zeros_like(grad))


def test_partially_zero_kernel_force_is_gradient():
    # Some filters zero, others not: the zero ones must contribute nothing, the rest as usual.
    torch.manual_seed(2)
    pot = CoupledOscillatorPotential(12, 4, 3).double()
    with torch.no_grad():
        pot.kernel[1] = 0.0
        pot.kernel[:, 2] = 0.0
    z = torch.randn(5, 12, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(pot.energy(z).sum(), z)
    torch.testing.assert_close(pot.force(z.detach()), grad, rtol=RTOL, atol=1e-12)


def test_force_matrix_is_symmetric_hessian_and_scale_invariant():
    torch.manual_seed(3)
    pot = CoupledOscillatorPotential(12, 4, 3).double()
    origin = torch.zeros(12, dtype=torch.float64)
    hessian = torch.autograd.functional.hessian(lambda x: pot.energy(x[None])[0], origin)
    S = pot.force_matrix().detach()
    torch.testing.assert_close(S, hessian, rtol=RTOL, atol=1e-12)
    torch.testing.assert_close(S, S.T, rtol=0, atol=1e-14)
    # Only filter directions matter: scaling the raw kernel by 7 leaves the force unchanged.
    z = torch.randn(3, 12, dtype=torch.float64)
    before = pot.force(z)
    with torch.no_grad():
        pot.kernel.mul_(7.0)
    torch.testing.assert_close(pot.force(z), before, rtol=RTOL, atol=1e-12)


@pytest.mark.parametrize("n_channels,kernel_size,n_sites", [(4, 3, 16), (4, 3, 5), (2, 5, 7), (3, 1, 4)])
def test_force_matrix_rank_is_at_most_two_sites_per_channel_group(n_channels, kernel_size, n_sites):
    """U depends on z only through y (L numbers) and s (L numbers), so rank S <= 2L = 2D/C for every
    kernel, and every z with y = 0 and s = 0 has zero force (the potential's docstring)."""
    torch.manual_seed(5)
    dim = n_channels * n_sites
    pot = CoupledOscillatorPotential(dim, n_channels, kernel_size).double()
    S = pot.force_matrix().detach()
    singular = torch.linalg.svdvals(S)
    # float64: zero modes come out at ~ D·eps·|S| (1e-15 here); the smallest genuine one of these seeded
    # kernels is 7e-3, so 1e-10 relative separates them with orders of magnitude on both sides
    rank = int((singular > 1e-10 * singular[0]).sum())
    assert rank == min(2 * n_sites, dim)  # at most 2L; a random kernel reaches the bound
    # the null space of the map z -> (y, s), built independently of force(): y and s from their definition
    sites = torch.eye(dim, dtype=torch.float64).reshape(dim, n_channels, n_sites)
    w = pot.normalized_kernel().detach().sum(dim=0, keepdim=True)
    y = torch.nn.functional.conv1d(sites, w, padding=kernel_size // 2)[:, 0]  # (D, L): column l of M^T
    s = sites.sum(dim=1)
    readout = torch.cat([y, s], dim=1).T  # (2L, D): z -> (y, s)
    _, sv, vh = torch.linalg.svd(readout)
    null = vh[int((sv > 1e-10 * sv[0]).sum()):]  # orthonormal basis of {z : y = 0, s = 0}
    assert null.shape[0] == dim - rank  # S vanishes exactly on {y = 0, s = 0} for a random kernel
    if null.shape[0]:
        assert pot.force(null).abs().max() < 1e-12


def test_kernel_gradient_matches_finite_differences():
    # The kernel gradient goes through the L2 normalisation; check it (and the force's) numerically.
    torch.manual_seed(4)
    pot = CoupledOscillatorPotential(8, 4, 3).double()
    z = torch.randn(3, 8, dtype=torch.float64)

    def objective(kernel):
        energy = torch.func.functional_call(pot, {"kernel": kernel}, (z,))
        force = torch.func.functional_call(pot, {"kernel": kernel}, (z,), {"return_force": True})
        return energy.sum() + force.square().sum()

    assert torch.autograd.gradcheck(objective, (pot.kernel.detach().clone().requires_grad_(),))
