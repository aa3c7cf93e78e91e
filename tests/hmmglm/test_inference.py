"""Exact-oracle tests of the HMM inference functions (enumeration of all state paths, gradcheck)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

import neurodyn.models.hmmglm.inference as inference
from neurodyn.models.hmmglm import compiled
from neurodyn.models.hmmglm.inference import (
    forward_backward,
    forward_filter,
    log_marginal_likelihood,
    sample_states,
    viterbi,
)

METHODS = [
    ("sequential", None),
    ("chunked", None),
    ("chunked", 2),
    ("chunked", 4),
    ("parallel", None),
    ("scan", None),
    ("compiled", None),
    ("auto", None),
]
EPS64 = torch.finfo(torch.float64).eps
EPS32 = torch.finfo(torch.float32).eps


def _problem(seed=0, batch=3, n_time=7, n_states=3, normalised=True):
    g = torch.Generator().manual_seed(seed)
    log_initial = torch.randn(n_states, generator=g, dtype=torch.float64)
    log_transitions = torch.randn(n_states, n_states, generator=g, dtype=torch.float64)
    if normalised:
        log_initial, log_transitions = log_initial.log_softmax(0), log_transitions.log_softmax(1)
    log_lik = 3 * torch.randn(batch, n_time, n_states, generator=g, dtype=torch.float64)
    return log_initial, log_transitions, log_lik


def _enumerate(log_initial, log_transitions, log_lik):
    """Brute force over all S^T paths: log Z, γ, ξ_t, filtered, best path."""
    batch, n_time, n_states = log_lik.shape
    paths = torch.tensor(list(itertools.product(range(n_states), repeat=n_time)))
    steps = torch.arange(n_time)
    score = (
        log_initial[paths[:, 0]][None]
        + log_lik[:, steps[None], paths].sum(-1)
        + log_transitions[paths[:, :-1], paths[:, 1:]].sum(-1)[None]
    )  # (B, paths)
    log_z = torch.logsumexp(score, 1)
    weight = torch.softmax(score, 1)
    onehot = torch.nn.functional.one_hot(paths, n_states).to(weight.dtype)  # (paths, T, S)
    gamma = torch.einsum("bp,pts->bts", weight, onehot)
    xi = torch.einsum("bp,pti,ptj->btij", weight, onehot[:, :-1], onehot[:, 1:])
    # filtered p(z_t | x_{0:t}): enumerate with the likelihood of later bins removed
    filtered = torch.empty_like(gamma)
    for t in range(n_time):
        partial = (
            log_initial[paths[:, 0]][None]
            + log_lik[:, steps[None, : t + 1], paths[:, : t + 1]].sum(-1)
            + log_transitions[paths[:, :t], paths[:, 1 : t + 1]].sum(-1)[None]
        )
        filtered[:, t] = torch.einsum("bp,ps->bs", torch.softmax(partial, 1), onehot[:, t])
    best = paths[score.argmax(1)]
    return log_z, gamma, xi, filtered, best


@pytest.mark.parametrize("method,chunk", METHODS)
@pytest.mark.parametrize("normalised", [True, False])
def test_forward_backward_equals_enumeration(method, chunk, normalised):
    # Tolerance 1e-9: float64 rounding over a few dozen operations is ~1e-14; the spec asks 1e-9.
    li, lp, ll = _problem(normalised=normalised)
    log_z, gamma, xi, filtered, _ = _enumerate(li, lp, ll)
    post = forward_backward(li, lp, ll, return_pairwise=True, method=method, chunk=chunk)
    assert torch.allclose(post.log_marginal, log_z, atol=1e-9, rtol=0)
    assert torch.allclose(post.posteriors, gamma, atol=1e-9, rtol=0)
    assert torch.allclose(post.pairwise, xi, atol=1e-9, rtol=0)
    assert torch.allclose(post.expected_transitions, xi.sum(1), atol=1e-9, rtol=0)
    # the cheap path for expected transitions (no per-step pairwise tensor) agrees
    fast = forward_backward(li, lp, ll, method=method, chunk=chunk)
    assert torch.allclose(fast.expected_transitions, xi.sum(1), atol=1e-9, rtol=0)
    filt = forward_filter(li, lp, ll, method=method, chunk=chunk)
    assert torch.allclose(filt.log_filtered.exp(), filtered, atol=1e-9, rtol=0)
    assert torch.allclose(filt.log_marginal, log_z, atol=1e-9, rtol=0)


@pytest.mark.parametrize("method", ["auto", "chunked", "compiled"])
@pytest.mark.parametrize("tiny", [-200.0, -800.0])
def test_tiny_transitions_use_exact_log_sum_exp(method, tiny):
    # log P entries of -200 are below the float32 fast-path threshold (torch methods switch to
    # log-sum-exp), -800 below the float64 one (the compiled kernels switch); the float32 result must
    # still match float64 enumeration to float32 rounding of O(|ll|) quantities (100 * eps32 * max|score|).
    li, lp, ll = _problem(seed=3)
    lp = lp.clone()
    lp[0, 1] = lp[1, 2] = tiny
    log_z, gamma, *_ = _enumerate(li, lp, ll)
    post = forward_backward(li.float(), lp.float(), ll.float(), method=method)
    scale = float(ll.abs().sum(1).max() - 2 * tiny)
    assert torch.allclose(post.log_marginal.double(), log_z, atol=100 * EPS32 * scale, rtol=0)
    assert torch.allclose(post.posteriors.double(), gamma, atol=100 * EPS32 * scale, rtol=0)


@pytest.mark.parametrize("n_states,n_time", [(2, 9), (3, 7), (11, 3)])  # two-state, few- and many-state kernels
@pytest.mark.parametrize("normalised", [True, False])
@pytest.mark.parametrize("zeros", [False, True])
def test_compiled_paths_equal_enumeration(n_states, n_time, normalised, zeros):
    # Both compiled recursions: scaled and log-space (used when min log P - max log P < FLOOR / 2),
    # forced on an ordinary problem, and the log-space one taken automatically with zero-probability
    # transitions (log P = -inf); 1e-9 as above.
    li, lp, ll = _problem(seed=6, n_time=n_time, n_states=n_states, normalised=normalised)
    if zeros:
        lp = lp.clone()
        lp[0, 1] = lp[-1, 0] = -math.inf
        assert not compiled.fast_ok(lp)
    log_z, gamma, xi, filtered, _ = _enumerate(li, lp, ll)
    for fast in [False] if zeros else [False, True]:
        log_marginal, posteriors, expected, pairwise = compiled.smooth(li, lp, ll, return_pairwise=True, fast=fast)
        assert torch.allclose(log_marginal, log_z, atol=1e-9, rtol=0)
        assert torch.allclose(posteriors, gamma, atol=1e-9, rtol=0)
        assert torch.allclose(pairwise, xi, atol=1e-9, rtol=0)
        assert torch.allclose(expected, xi.sum(1), atol=1e-9, rtol=0)
        filt_z, log_filtered, log_predicted = compiled.filter_(li, lp, ll, fast=fast)
        assert torch.allclose(filt_z, log_z, atol=1e-9, rtol=0)
        assert torch.allclose(log_filtered.exp(), filtered, atol=1e-9, rtol=0)
        ref = forward_filter(li, lp, ll, method="sequential")
        assert torch.allclose(log_predicted.exp(), ref.log_predicted.exp(), atol=1e-9, rtol=0)
    if zeros:  # impossible transitions get exactly zero weight
        assert (pairwise[:, :, 0, 1] == 0).all() and (pairwise[:, :, -1, 0] == 0).all()


def test_compiled_parallel_batch_equals_serial():
    # torch with 2 threads runs the prange kernels over the batch: same arithmetic per sequence, so
    # results must be bitwise equal to the single-thread kernels.
    li, lp, ll = _problem(seed=7, batch=5, n_time=300, n_states=4)
    serial = forward_backward(li, lp, ll, return_pairwise=True, method="compiled")
    serial_filter = forward_filter(li, lp, ll, method="compiled")
    serial_path = viterbi(li, lp, ll, method="compiled")
    torch.set_num_threads(2)  # restored by the conftest fixture
    parallel = forward_backward(li, lp, ll, return_pairwise=True, method="compiled")
    for a, b in zip(serial, parallel):
        assert torch.equal(a, b)
    for a, b in zip(serial_filter, forward_filter(li, lp, ll, method="compiled")):
        assert torch.equal(a, b)
    assert torch.equal(serial_path, viterbi(li, lp, ll, method="compiled"))


def test_auto_falls_back_without_numba_or_under_autograd(monkeypatch):
    li, lp, ll = _problem(seed=8)
    ref = forward_backward(li, lp, ll, method="sequential")
    # under autograd "auto" must keep the graph (torch methods), and "compiled" refuses
    ll_grad = ll.clone().requires_grad_(True)
    post = forward_backward(li, lp, ll_grad)
    assert post.posteriors.requires_grad
    assert torch.allclose(post.posteriors, ref.posteriors, atol=1e-12, rtol=0)
    with pytest.raises(ValueError, match="gradient"):
        forward_backward(li, lp, ll_grad, method="compiled")
    with pytest.raises(ValueError, match="float32/float64"):
        forward_backward(li, lp, ll.half(), method="compiled")
    # numba missing: "auto" uses the torch methods, "compiled" says why it cannot run
    monkeypatch.setattr(inference, "_compiled", None)
    monkeypatch.setattr(inference, "_COMPILED_ERROR", "No module named 'numba'")
    post = forward_backward(li, lp, ll)
    assert torch.allclose(post.posteriors, ref.posteriors, atol=1e-12, rtol=0)
    assert torch.allclose(forward_filter(li, lp, ll).log_marginal, ref.log_marginal, atol=1e-12, rtol=0)
    assert torch.equal(viterbi(li, lp, ll), viterbi(li, lp, ll, method="sequential"))
    with pytest.raises(ImportError, match="numba"):
        forward_backward(li, lp, ll, method="compiled")


@pytest.mark.parametrize("method", ["sequential", "compiled"])
def test_viterbi_equals_enumeration(method):
    for seed in range(4):
        li, lp, ll = _problem(seed=seed)
        *_, best = _enumerate(li, lp, ll)
        assert torch.equal(viterbi(li, lp, ll, method=method), best)
        assert torch.equal(viterbi(li.float(), lp.float(), ll.float(), method=method), best)


def test_sampling_frequencies_match_posterior_marginals():
    li, lp, ll = _problem(seed=1)
    gamma = forward_backward(li, lp, ll).posteriors
    n = 4000
    samples = sample_states(li, lp, ll, torch.Generator().manual_seed(5), n_samples=n)
    freq = torch.nn.functional.one_hot(samples, 3).double().mean(0)
    # each frequency is Binomial(n, γ)/n: std <= sqrt(γ(1-γ)/n); 5 std per cell gives a false-failure
    # probability below 63 cells * 5.7e-7 (normal tail) ~ 4e-5.
    std = torch.sqrt(gamma * (1 - gamma) / n)
    assert ((freq - gamma).abs() <= 5 * std + 1e-12).all()
    # pairwise frequencies too: joint (z_{t-1}, z_t) ~ ξ_t
    xi = forward_backward(li, lp, ll, return_pairwise=True).pairwise
    pair = samples[:, :, :-1] * 3 + samples[:, :, 1:]
    pair_freq = torch.nn.functional.one_hot(pair, 9).double().mean(0).reshape(xi.shape)
    assert ((pair_freq - xi).abs() <= 5 * torch.sqrt(xi * (1 - xi) / n) + 1e-12).all()


@pytest.mark.parametrize("method", ["auto", "chunked"])  # auto: the compiled kernels
@pytest.mark.parametrize("n_time", [7, 90])  # 90 bins exercise the chunked scan (>= 64 steps)
def test_gradient_matches_finite_differences(n_time, method):
    li, lp, ll = _problem(seed=2, batch=2, n_time=n_time, n_states=3, normalised=False)
    inputs = tuple(t.clone().requires_grad_(True) for t in (li, lp, ll))
    # fast mode (random projections of the Jacobian) for the long case keeps the test at a few seconds
    assert torch.autograd.gradcheck(
        lambda a, b, c: log_marginal_likelihood(a, b, c, method=method),
        inputs,
        eps=1e-6,
        atol=1e-6,
        fast_mode=n_time > 10,
    )


@pytest.mark.parametrize("n_states", [2, 4, 12])  # 2 and 12: the compiled two-state and many-state kernels
def test_methods_agree_on_long_sequences(n_states):
    li, lp, ll = _problem(seed=4, batch=2, n_time=1001, n_states=n_states)
    ref = forward_backward(li, lp, ll, method="sequential")
    for method in ("chunked", "parallel", "scan", "compiled") if n_states <= 4 else ("chunked", "compiled"):
        post = forward_backward(li, lp, ll, method=method)
        # float64 rounding accumulated over 1000 steps of O(|ll|) = O(10) quantities
        assert torch.allclose(post.log_marginal, ref.log_marginal, atol=1000 * 10 * 10 * EPS64, rtol=0)
        assert torch.allclose(post.posteriors, ref.posteriors, atol=1e-10, rtol=0)
        assert torch.allclose(post.expected_transitions, ref.expected_transitions, atol=1e-8, rtol=0)


@pytest.mark.parametrize("method", ["chunked", "compiled"])
def test_single_bin_sequence(method):
    li, lp, ll = _problem(n_time=1)
    post = forward_backward(li, lp, ll, method=method)
    assert torch.allclose(post.log_marginal, torch.logsumexp(li + ll[:, 0], -1))
    assert torch.allclose(post.posteriors[:, 0], torch.softmax(li + ll[:, 0], -1))
    assert post.expected_transitions.abs().sum() == 0


@pytest.mark.parametrize("method", ["compiled", "chunked"])  # auto: compiled on CPU
def test_no_underflow_300_neurons_100k_bins(method):
    """300 Poisson neurons x 1e5 bins: float32 inference is finite and matches float64 (~2 s)."""
    g = torch.Generator().manual_seed(0)
    n_states, n_neurons, n_time = 3, 300, 100_000
    rates = 0.05 + 0.5 * torch.rand(n_states, n_neurons, generator=g, dtype=torch.float64)
    stay = 0.99
    p = torch.full((n_states, n_states), (1 - stay) / (n_states - 1), dtype=torch.float64).fill_diagonal_(stay)
    rng = np.random.default_rng(0)
    states = np.zeros(n_time, dtype=np.int64)
    u = rng.random(n_time)
    cum = p.cumsum(-1).numpy()
    for t in range(1, n_time):
        states[t] = min(int((u[t] > cum[states[t - 1]]).sum()), n_states - 1)
    x = torch.poisson(rates[torch.from_numpy(states)], generator=g)
    ll64 = (x @ rates.log().T - rates.sum(-1) - torch.lgamma(x + 1).sum(-1, keepdim=True)).unsqueeze(0)
    assert float(ll64.max()) < -103  # exp() of every emission underflows in float32: scaling would fail
    li = torch.full((n_states,), -math.log(n_states), dtype=torch.float64)
    ref = forward_backward(li, p.log(), ll64, method=method)
    ll32 = ll64.float()
    post = forward_backward(li.float(), p.log().float(), ll32, method=method)
    assert torch.isfinite(post.log_marginal).all() and torch.isfinite(post.posteriors).all()
    # Bound on |Δ log p(X)|: ∂ log p / ∂ ll_ts = γ_ts (sums to 1 over s), so rounding ll to float32
    # moves it by <= Σ_t max_s |ll_ts| eps/2; each recursion step adds <= 3 roundings of magnitude
    # max_s |ll_ts| (add, shift, accumulate); the final float32 result adds |log p| eps/2.
    mass = float(ll64.abs().amax(-1).sum())
    tol = 3.5 * EPS32 * mass + EPS32 * float(ref.log_marginal.abs())
    assert abs(float(post.log_marginal) - float(ref.log_marginal)) <= tol
    # Posteriors: γ = σ(log-odds) has slope <= 1/4; the log-odds of a bin carry the rounding of the
    # few O(max_s |ll_ts|) terms entering α_t + β_t (at most 8, each eps/2 relative), so
    # |Δγ| <= 8 * (eps/2) * max|ll_t| / 4 ... doubled for the normalisation: 2 eps max|ll_t|.
    per_bin = float(ll64.abs().amax(-1).max())
    assert float((post.posteriors.double() - ref.posteriors).abs().max()) <= 2 * EPS32 * per_bin
