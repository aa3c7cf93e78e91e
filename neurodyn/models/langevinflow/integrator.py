"""Underdamped Langevin rollouts of (z, v): unit mass, per-step damping γ, step Δ.

Continuous model: dz = v dt, dv = -∇U(z) dt - (friction) v dt + noise. All three schemes keep a
fraction a = 1 - γ of the velocity per step (the reference's convention: γ is per step, not per unit
time) and add Gaussian noise σ ξ_t, ξ_t ~ N(0, I):

``'reference'`` (explicit Euler, reference code; not symplectic)
    z_t = z + Δ v,   v_t = a (v - Δ ∇U(z)) + √(2γ) ξ_t
``'symplectic'`` (symplectic Euler: kick with the old z, drift with the kicked v)
    ṽ = v - Δ ∇U(z),   z_t = z + Δ ṽ,   v_t = a ṽ + √(2γ) ξ_t
``'ou_exact'`` (BAOAB: the O step is the exact Ornstein-Uhlenbeck step at unit temperature)
    v ← v - Δ/2 ∇U(z);  z ← z + Δ/2 v;  v ← a v + √(1 - a²) ξ_t;  z ← z + Δ/2 v;  v ← v - Δ/2 ∇U(z)

With γ = 0 and no noise, BAOAB is velocity Verlet and conserves ½|v|² + ½ zᵀS(I - Δ²S/4)z exactly for
∇U = Sz; symplectic Euler conserves ½|v|² + ½ zᵀSz - ½Δ zᵀSv; explicit Euler gains energy.
The "transition mean" m_t is the velocity just before noise is added (a ṽ, or a v in the O step):
given the previous state, that velocity is N(m_t, σ² I), which is what the Gaussian transition KL uses.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["SCHEMES", "Rollout", "langevin_rollout", "noise_std", "rollout_tensors"]

SCHEMES = ("reference", "symplectic", "ou_exact")


class Rollout(NamedTuple):
    """Result of :func:`langevin_rollout`.

    Attributes
    ----------
    z, v : Tensor, shape (batch, n_steps + 1, D)
        Positions and velocities at t = 0 … n_steps (t = 0 is the initial state).
    transition_mean : Tensor, shape (batch, n_steps, D)
        m_t for t = 1 … n_steps: the velocity of step t just before its noise is added.
    noise_std : float
        σ, the standard deviation of the per-step velocity noise of the scheme.
    """

    z: Tensor
    v: Tensor
    transition_mean: Tensor
    noise_std: float


def noise_std(scheme: str, gamma: float) -> float:
    """Per-step velocity-noise std: √(2γ) for 'reference'/'symplectic', √(2γ - γ²) for 'ou_exact'.

    Examples
    --------
    >>> round(noise_std("ou_exact", 0.55), 4)
    0.893
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown integrator {scheme!r}; choose from {SCHEMES}")
    if scheme == "ou_exact":
        return math.sqrt(1.0 - (1.0 - gamma) ** 2)
    return math.sqrt(2.0 * gamma)


def langevin_rollout(
    z0: Tensor,
    v0: Tensor,
    n_steps: int,
    *,
    force: Callable[[Tensor], Tensor] | None = None,
    force_matrix: Tensor | None = None,
    dt: float,
    gamma: float,
    scheme: str = "ou_exact",
    noise: Tensor | None = None,
) -> Rollout:
    """Integrate n_steps Langevin steps from (z0, v0).

    Parameters
    ----------
    z0, v0 : Tensor, shape (batch, D)
        Initial position and velocity.
    n_steps
        Number of steps (the trajectory has n_steps + 1 states).
    force
        Callable returning ∇U(z), shape (batch, D) -> (batch, D); ``None`` (and no ``force_matrix``)
        means U = 0 (free motion). Must be cheap and autograd-free inside (e.g.
        :meth:`CoupledOscillatorPotential.force` with a precomputed kernel); it is called once per step.
    force_matrix : Tensor, shape (D, D), optional
        A linear force ∇U(z) = z S (S symmetric, :meth:`CoupledOscillatorPotential.force_matrix`), used
        instead of ``force``: each kick is then one fused ``addmm`` (product and update in one kernel,
        no temporary for the force).
    dt, gamma
        Step Δ > 0 and per-step damping γ ∈ [0, 1].
    scheme
        ``'reference'``, ``'symplectic'`` or ``'ou_exact'`` (see module docstring).
    noise : Tensor, shape (batch, n_steps, D), optional
        Standard-normal ξ_t for t = 1 … n_steps, drawn by the caller in one call (so the loop has no
        sampling); ``None`` means ξ = 0 (deterministic dynamics / posterior-mean mode).

    Returns
    -------
    Rollout

    Examples
    --------
    >>> z0, v0 = torch.zeros(2, 3), torch.ones(2, 3)
    >>> out = langevin_rollout(z0, v0, 4, force=None, dt=0.1, gamma=0.5, scheme="reference")
    >>> out.v[0, :, 0].tolist()
    [1.0, 0.5, 0.25, 0.125, 0.0625]
    """
    sigma = noise_std(scheme, gamma)
    if force is not None and force_matrix is not None:
        raise ValueError("give force or force_matrix, not both")
    z, v, mean = _rollout_tensors(z0, v0, force_matrix, noise, n_steps=n_steps, force=force, dt=dt,
                                  gamma=gamma, scheme=scheme)
    return Rollout(z=z, v=v, transition_mean=mean, noise_std=sigma)


def rollout_tensors(z0: Tensor, v0: Tensor, force_matrix: Tensor, noise: Tensor | None = None, *,
                    dt: float, gamma: float, scheme: str) -> tuple[Tensor, Tensor, Tensor]:
    """(z, v, transition_mean) of :func:`langevin_rollout` with a force matrix, as a function of tensors
    only (the form CUDA-graph capture needs). The number of steps is ``noise.shape[1]``; a noiseless
    pass passes zeros (``m + σ·0 = m`` exactly, so the result equals ``noise=None``)."""
    if noise is None:
        raise ValueError("rollout_tensors needs the noise tensor (zeros for a noiseless pass)")
    return _rollout_tensors(z0, v0, force_matrix, noise, n_steps=noise.shape[1], force=None, dt=dt,
                            gamma=gamma, scheme=scheme)


def _rollout_tensors(z0, v0, force_matrix, noise, *, n_steps, force, dt, gamma, scheme):
    sigma = noise_std(scheme, gamma)
    keep = 1.0 - gamma
    half = 0.5 * dt
    matrix = force_matrix
    if matrix is not None:
        def force(z):  # noqa: F811 - the matrix form, used where no fused update applies
            return z @ matrix
    z, v = z0, v0
    record = any(t is not None and t.requires_grad for t in (z0, v0, matrix)) and torch.is_grad_enabled()
    if record or n_steps == 0:
        zs, vs, means = [z0], [v0], []
    else:  # no autograd graph: write each state into one buffer (no per-step tensors kept, no stack copy)
        zs, vs = z0.new_empty(n_steps + 1, *z0.shape), v0.new_empty(n_steps + 1, *v0.shape)
        means = v0.new_empty(n_steps, *v0.shape)
        zs[0], vs[0] = z0, v0
    # In BAOAB the force at the end of a step is the force at the start of the next: compute it once.
    f = force(z) if (force is not None and scheme == "ou_exact") else None
    steps_noise = None if noise is None else noise.unbind(dim=1)
    for t in range(n_steps):
        # add(..., alpha=) / addmm(beta=, alpha=) keep each update to one kernel and one new tensor:
        # the loop is the hot path of the recurrence.
        if scheme == "reference":
            if matrix is not None:  # mean = (1-γ)(v - Δ z S) in one addmm
                mean = torch.addmm(v, z, matrix, beta=keep, alpha=-keep * dt)
            else:
                mean = (v if force is None else v.add(force(z), alpha=-dt)).mul(keep)
            z = z.add(v, alpha=dt)
        elif scheme == "symplectic":
            if matrix is not None:
                kicked = torch.addmm(v, z, matrix, alpha=-dt)
            else:
                kicked = v if force is None else v.add(force(z), alpha=-dt)
            z = z.add(kicked, alpha=dt)
            mean = kicked.mul(keep)
        else:
            v_half = v if f is None else v.add(f, alpha=-half)
            z = z.add(v_half, alpha=half)
            mean = v_half.mul(keep)
        v = mean if noise is None else mean.add(steps_noise[t], alpha=sigma)
        if scheme == "ou_exact":
            z = z.add(v, alpha=half)
            if force is not None:
                f = force(z)
                v = v.add(f, alpha=-half)
        if record:
            zs.append(z)
            vs.append(v)
            means.append(mean)
        else:
            zs[t + 1], vs[t + 1], means[t] = z, v, mean
    if n_steps == 0:
        return (z0.unsqueeze(1), v0.unsqueeze(1), z0.new_zeros(z0.shape[0], 0, z0.shape[-1]))
    if record:  # stack time-major (a contiguous copy of whole rows)
        zs, vs, means = torch.stack(zs), torch.stack(vs), torch.stack(means)
    return zs.transpose(0, 1), vs.transpose(0, 1), means.transpose(0, 1)  # batch-major views
