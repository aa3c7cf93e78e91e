"""Langevin integrators against the closed-form solution of their own discretisation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurodyn.models.langevinflow import CoupledOscillatorPotential, langevin_rollout, noise_std

SCHEMES = ["reference", "symplectic", "ou_exact"]


def step_matrices(S: np.ndarray, dt: float, gamma: float, scheme: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-step linear map for ∇U = Sz: [z; v]_t = M [z; v]_{t-1} + N ξ_t, written from the equations
    in the integrator's docstring (independently of its code)."""
    d = S.shape[0]
    I, O = np.eye(d), np.zeros((d, d))
    a = 1.0 - gamma
    if scheme == "reference":
        # z' = z + Δv ; v' = a(v - ΔSz) + σξ
        M = np.block([[I, dt * I], [-a * dt * S, a * I]])
        N = np.vstack([O, np.sqrt(2 * gamma) * I])
    elif scheme == "symplectic":
        # ṽ = v - ΔSz ; z' = z + Δṽ ; v' = aṽ + σξ
        M = np.block([[I - dt**2 * S, dt * I], [-a * dt * S, a * I]])
        N = np.vstack([O, np.sqrt(2 * gamma) * I])
    else:
        # Compose the five BAOAB sub-steps as matrices on [z; v] (noise enters at the O step).
        h = dt / 2
        B = np.block([[I, O], [-h * S, I]])
        A = np.block([[I, h * I], [O, I]])
        Om = np.block([[I, O], [O, a * I]])
        M = B @ A @ Om @ A @ B
        N = B @ A @ np.vstack([O, np.sqrt(1 - a**2) * I])
    return M, N


def matrix_power_eig(M: np.ndarray, t: int) -> np.ndarray:
    """M^t = P diag(μ^t) P⁻¹ by eigen-decomposition (float64 / complex128)."""
    mu, P = np.linalg.eig(M)
    return (P @ np.diag(mu**t) @ np.linalg.inv(P)).real


@pytest.fixture
def model_potential():
    torch.manual_seed(0)
    pot = CoupledOscillatorPotential(12, 4, 3).double()
    return pot


@pytest.mark.parametrize("scheme", SCHEMES)
def test_noiseless_rollout_equals_matrix_power(scheme, model_potential):
    dt, gamma, n_steps = 0.01, 0.55, 44  # the reference's Δ and γ; 35 + 10 bins -> 44 steps
    S = model_potential.force_matrix().detach().numpy()
    M, _ = step_matrices(S, dt, gamma, scheme)
    mu, P = np.linalg.eig(M)
    # Precondition for the oracle's own accuracy: rounding of P diag(μ^t) P⁻¹ is ~cond(P)·1e-16.
    assert np.linalg.cond(P) < 1e3
    gen = torch.Generator().manual_seed(1)
    z0 = torch.randn(5, 12, dtype=torch.float64, generator=gen)
    v0 = torch.randn(5, 12, dtype=torch.float64, generator=gen)
    kernel = model_potential.force_kernel().detach()
    out = langevin_rollout(z0, v0, n_steps, force=lambda z: model_potential.force(z, kernel),
                           dt=dt, gamma=gamma, scheme=scheme)
    state0 = torch.cat([z0, v0], dim=1).numpy()
    for t in (1, 2, 7, n_steps):
        expected = state0 @ matrix_power_eig(M, t).T
        got = torch.cat([out.z[:, t], out.v[:, t]], dim=1).numpy()
        # |state| = O(1), t ≤ 44 steps of O(1) matrices: rounding ≲ 44·cond·1e-16 ≈ 1e-12 ≪ 1e-10.
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_noisy_rollout_equals_affine_recursion(scheme, model_potential):
    dt, gamma, n_steps = 0.05, 0.3, 20
    S = model_potential.force_matrix().detach().numpy()
    M, N = step_matrices(S, dt, gamma, scheme)
    gen = torch.Generator().manual_seed(2)
    z0, v0 = (torch.randn(3, 12, dtype=torch.float64, generator=gen) for _ in range(2))
    xi = torch.randn(3, n_steps, 12, dtype=torch.float64, generator=gen)
    out = langevin_rollout(z0, v0, n_steps, force=model_potential.force, dt=dt, gamma=gamma,
                           scheme=scheme, noise=xi)
    state = torch.cat([z0, v0], dim=1).detach().numpy()
    for t in range(1, n_steps + 1):
        state = state @ M.T + xi[:, t - 1].numpy() @ N.T
        np.testing.assert_allclose(torch.cat([out.z[:, t], out.v[:, t]], 1).detach().numpy(), state,
                                   rtol=0, atol=1e-11)
    sigma = np.sqrt(1 - (1 - gamma) ** 2) if scheme == "ou_exact" else np.sqrt(2 * gamma)
    assert out.noise_std == pytest.approx(sigma)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_free_particle_closed_form(scheme):
    # Potential off: v_t = a^t v0; z_t = z0 + c·Δ·v0·(1 - a^t)/(1 - a), c = 1 (Euler) or (1 + a)/2 (BAOAB).
    dt, gamma, n_steps = 0.1, 0.4, 30
    a = 1 - gamma
    z0 = torch.randn(4, 6, dtype=torch.float64)
    v0 = torch.randn(4, 6, dtype=torch.float64)
    out = langevin_rollout(z0, v0, n_steps, force=None, dt=dt, gamma=gamma, scheme=scheme)
    t = torch.arange(n_steps + 1, dtype=torch.float64)[None, :, None]
    c = (1 + a) / 2 if scheme == "ou_exact" else 1.0
    torch.testing.assert_close(out.v, a**t * v0[:, None], rtol=1e-13, atol=1e-14)
    torch.testing.assert_close(out.z, z0[:, None] + c * dt * v0[:, None] * (1 - a**t) / (1 - a),
                               rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(out.transition_mean, a * out.v[:, :-1],
                               rtol=1e-13, atol=1e-14)


def spd_matrix(d: int, seed: int) -> torch.Tensor:
    """Random symmetric matrix with eigenvalues in [0.5, 2] (a confining quadratic potential)."""
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, dtype=torch.float64, generator=gen))
    lam = 0.5 + 1.5 * torch.rand(d, dtype=torch.float64, generator=gen)
    return q @ torch.diag(lam) @ q.T


def energies(out, S, form: str) -> torch.Tensor:
    z, v = out.z, out.v
    potential = 0.5 * torch.einsum("btd,de,bte->bt", z, S, z)
    if form == "verlet":  # velocity-Verlet shadow energy: ½|v|² + ½ zᵀS(I - Δ²S/4)z
        potential = potential - 0.5 * (DT**2 / 4) * torch.einsum("btd,de,bte->bt", z, S @ S, z)
    elif form == "symplectic_euler":  # ½|v|² + ½ zᵀSz - ½Δ zᵀSv
        potential = potential - 0.5 * DT * torch.einsum("btd,de,bte->bt", z, S, v)
    return 0.5 * v.square().sum(-1) + potential


DT = 0.1


def test_energy_conservation_without_damping():
    S = spd_matrix(6, 0)
    z0, v0 = torch.randn(3, 6, dtype=torch.float64), torch.randn(3, 6, dtype=torch.float64)
    force = lambda z: z @ S  # noqa: E731  (S symmetric)
    for scheme, form in (("ou_exact", "verlet"), ("symplectic", "symplectic_euler")):
        e = energies(langevin_rollout(z0, v0, 2000, force=force, dt=DT, gamma=0.0, scheme=scheme), S, form)
        # Exactly conserved quadratic invariants: only rounding (2000 steps · 1e-16 · O(1)) remains.
        torch.testing.assert_close(e, e[:, :1].expand_as(e), rtol=1e-11, atol=0)
    # Explicit Euler is not symplectic: det of each mode's map is 1 + Δ²λ > 1, so energy grows.
    out = langevin_rollout(z0, v0, 2000, force=force, dt=DT, gamma=0.0, scheme="reference")
    e = energies(out, S, "plain")
    assert torch.all(e[:, -1] > 2 * e[:, 0])


@pytest.mark.parametrize("scheme", SCHEMES)
def test_energy_decays_with_damping(scheme):
    S = spd_matrix(6, 1)
    z0, v0 = torch.randn(3, 6, dtype=torch.float64), torch.randn(3, 6, dtype=torch.float64)
    out = langevin_rollout(z0, v0, 3000, force=lambda z: z @ S, dt=DT, gamma=0.3, scheme=scheme)
    e = energies(out, S, "verlet" if scheme == "ou_exact" else "plain")
    # Slowest mode: overdamped relaxation rate ≈ Δ²λ_min/γ ≈ 0.017 per step -> e^{-2·0.017·3000} ≈ 1e-44.
    assert torch.all(e[:, -1] < 1e-20 * e[:, 0])
    if scheme == "ou_exact":
        # BAOAB = velocity Verlet with an O step inside; the O step only shrinks |v|, so the Verlet
        # shadow energy never increases (up to rounding, 1e-13 relative).
        assert torch.all(e[:, 1:] <= e[:, :-1] * (1 + 1e-13))


@pytest.mark.parametrize("scheme,stationary_var", [("reference", 1 / (1 - 0.55 / 2)), ("ou_exact", 1.0)])
def test_stationary_velocity_variance(scheme, stationary_var):
    # Free particle with noise: v_t → N(0, σ²/(1 - a²) I): 2γ/(2γ - γ²) for Euler, 1 for the OU step.
    gen = torch.Generator().manual_seed(5)
    batch, dim, n_steps, gamma = 4000, 8, 40, 0.55
    xi = torch.randn(batch, n_steps, dim, dtype=torch.float64, generator=gen)
    zeros = torch.zeros(batch, dim, dtype=torch.float64)
    out = langevin_rollout(zeros, zeros,
                           n_steps, force=None, dt=0.01, gamma=gamma, scheme=scheme, noise=xi)
    var = out.v[:, -1].square().mean().item()  # mean known to be 0; a^{80} ≈ 1e-28 transient left
    n = batch * dim
    # Var of the variance estimator = 2σ⁴/n; allow 5 standard errors.
    assert abs(var - stationary_var) < 5 * stationary_var * np.sqrt(2 / n)


def test_noise_std_values():
    assert noise_std("reference", 0.55) == pytest.approx(np.sqrt(1.1))
    assert noise_std("symplectic", 0.55) == pytest.approx(np.sqrt(1.1))
    assert noise_std("ou_exact", 0.55) == pytest.approx(np.sqrt(1 - 0.45**2))
    with pytest.raises(ValueError):
        noise_std("leapfrog", 0.5)
