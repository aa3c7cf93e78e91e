"""Fast paths against their oracles: chunked closed-form emissions vs autograd of the direct formula,
mini-batch EM's pooled transition update, one-hot warm start, switch alignment statistics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import neurodyn.models.hmmglm.fused as fused
from neurodyn.metrics.states import switch_alignment
from neurodyn.models.hmmglm import HMMGLM, OneHotPriorHMMGLM
from neurodyn.models.hmmglm.emissions import emission_log_prob
from neurodyn.models.hmmglm.fit import fit_em

COMBOS = [("sigmoid", "poisson"), ("exp", "poisson"), ("softplus", "poisson"), ("sigmoid", "bernoulli")]


def _data(emission, seed=0, batch=3, n_time=40, n_states=3, n_neurons=4):
    g = torch.Generator().manual_seed(seed)
    x = torch.poisson(torch.full((batch, n_time, n_neurons), 0.6, dtype=torch.float64), generator=g)
    if emission == "bernoulli":
        x = x.clamp(max=1)
    h = torch.rand(batch, n_time, n_neurons, generator=g, dtype=torch.float64)
    w = 0.8 * torch.randn(n_states, n_neurons, n_neurons, generator=g, dtype=torch.float64)
    b = 0.3 * torch.randn(n_neurons, generator=g, dtype=torch.float64)
    gamma = torch.softmax(torch.randn(batch, n_time, n_states, generator=g, dtype=torch.float64), -1)
    return x, h, w, b, gamma


def _direct(x, h, w, b, link, emission):
    drive = b + torch.einsum("btf,snf->btsn", h, w)
    return emission_log_prob(x.unsqueeze(2), drive, link, emission).sum(-1)


@pytest.mark.parametrize("link,emission", COMBOS)
@pytest.mark.parametrize("chunk", [1 << 18, 16])  # one chunk, and many (16 elements = 1 row per chunk)
def test_chunked_emissions_equal_autograd_of_direct_formula(link, emission, chunk, monkeypatch):
    monkeypatch.setattr(fused, "CHUNK_ELEMENTS", chunk)
    x, h, w, b, gamma = _data(emission)
    w1, b1 = w.clone().requires_grad_(), b.clone().requires_grad_()
    w2, b2 = w.clone().requires_grad_(), b.clone().requires_grad_()
    direct = _direct(x, h, w1, b1, link, emission)
    fast = fused.chunked_log_emissions(h, x, w2, b2, link, emission)
    # same float64 sums of ~N terms of O(1): rounding ~1e-15; closed-form log λ differs from the
    # logaddexp form by < 1e-15 per term (module docstring); 1e-10 leaves a wide margin
    assert torch.allclose(fast, direct, atol=1e-10, rtol=0)
    upstream = torch.randn(direct.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    (direct * upstream).sum().backward()
    (fast * upstream).sum().backward()
    assert torch.allclose(w2.grad, w1.grad, atol=1e-9, rtol=0) and torch.allclose(b2.grad, b1.grad, atol=1e-9)
    # the γ-weighted scalar (M-step) with its forward-pass gradient
    w3, b3 = w.clone().requires_grad_(), b.clone().requires_grad_()
    weighted = fused.weighted_log_emissions(h, x, w3, b3, gamma, link, emission)
    w1.grad = b1.grad = None
    ref = (_direct(x, h, w1, b1, link, emission) * gamma).sum()
    ref.backward()
    weighted.backward()
    assert math.isclose(float(weighted.detach()), float(ref.detach()), rel_tol=1e-12, abs_tol=1e-10)
    assert torch.allclose(w3.grad, w1.grad, atol=1e-9, rtol=0) and torch.allclose(b3.grad, b1.grad, atol=1e-9)


def test_extreme_drives_stay_finite():
    # softplus: λ underflows for u < -745 (σ/λ -> 1 is used); sigmoid: λ >= 1e-8 by construction
    u = torch.tensor([-800.0, -40.0, 0.0, 40.0, 800.0], dtype=torch.float64)
    for link, emission in COMBOS:
        x = torch.ones_like(u)
        f, d = fused.emission_terms(x, u, link, emission)
        if link != "exp":
            assert torch.isfinite(f).all() and torch.isfinite(d).all(), (link, emission)
    f, d = fused.emission_terms(
        torch.zeros(1, dtype=torch.float64), torch.tensor([-800.0]).double(), "softplus", "poisson"
    )
    assert float(d) == 0.0 and float(f) == 0.0  # x = 0: f = -λ = 0, ∂f/∂u = -σ(u) = 0 (underflow)


def test_minibatch_epoch_pools_transition_counts():
    """With no M-step (n_inner=0) an epoch of mini-batch E-steps must update P from the same pooled
    ξ as one full-batch E-step (the forward-backward of each sequence does not depend on the others)."""
    g = torch.Generator().manual_seed(0)
    x = torch.poisson(torch.full((5, 60, 3), 0.5, dtype=torch.float64), generator=g)
    a = HMMGLM(3, n_states=3, init_std=0.5, transition_floor=None).double()
    b = HMMGLM(3, n_states=3, init_std=0.5, transition_floor=None).double()
    b.load_state_dict(a.state_dict())
    fit_em(a, x, n_iters=1, n_inner=0, batch_size=2, transition_update="epoch")
    b.init_bias(x)
    b.update_transitions(b.e_step(x).expected_transitions.sum(0))
    assert torch.allclose(a.log_transitions(), b.log_transitions(), atol=1e-12)
    history = fit_em(a, x, n_iters=3, n_inner=5, lr=0.05, batch_size=2, transition_update="epoch")
    assert len(history.objective) == 4 and all(math.isfinite(v) for v in history.objective)
    with pytest.raises(ValueError, match="monotone"):
        fit_em(a, x, n_iters=1, batch_size=2, monotone=True)


def test_onehot_warm_start_from_couplings():
    source = HMMGLM(4, n_states=2, init_std=0.4, seed=1).double()
    with torch.no_grad():
        source.bias.fill_(-0.7)
        source.transition_logits.copy_(torch.tensor([[0.9, 0.1], [0.3, 0.7]]).log())
    w = source.coupling_matrices()
    model = OneHotPriorHMMGLM(4, n_states=2).double().init_from_couplings(source, threshold=0.2, sharpness=10)
    expected = torch.where(w.abs() < 0.2, 0, torch.sign(w)).long() * (1 - torch.eye(4, dtype=torch.long))
    assert torch.equal(model.connection_types(), expected)
    with model.weights_as("hard"):
        hard = model.coupling_matrices()
    # hard couplings = sign(w)·max(|w|, θ) where the type is not "none"
    assert torch.allclose(hard, expected * w.abs().clamp_min(0.2), atol=1e-12)
    assert torch.allclose(model.bias, source.bias) and torch.allclose(model.log_transitions(), source.log_transitions())
    # connectome = mean over states of the initial soft types (off-diagonal)
    off = ~torch.eye(4, dtype=torch.bool)
    q = torch.softmax(model.adjacency_logits.detach(), -1).mean(0)
    assert torch.allclose(model.connectome()[off], q[off], atol=1e-12)
    from neurodyn.errors import InputError

    with pytest.raises(InputError, match="couplings"):
        model.init_from_couplings(torch.zeros(3, 4, 4))


def test_switch_alignment_counts_and_shuffle_baseline():
    # 3 trials x 6 bins, boundaries at -25, -15, ..., 15 ms; window 10 ms -> boundaries -5 and 5 near
    paths = np.array([[0, 0, 1, 1, 1, 1], [0, 0, 0, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    times = np.array([-25.0, -15.0, -5.0, 5.0, 15.0])
    r = switch_alignment(paths, times, 10.0, n_shuffles=4000, rng=np.random.default_rng(0))
    # switches: trial 0 at boundary 2 (-15 ms), trial 1 at boundaries 3 (-5) and 4 (5)
    assert r["n_switches"] == 3 and r["frac_near"] == 2 / 3 and r["chance"] == 2 / 5
    assert r["switches_per_trial"] == 1.0
    # shuffle mean: E = chance exactly; sd of one shuffled fraction <= 1/2 -> sd of the mean of
    # 4000 <= 0.0079; 5 sd tolerance
    assert abs(r["shuffle_mean"] - 0.4) < 5 * 0.5 / math.sqrt(4000)
    # exact p-value: P(fraction >= 2/3) = P(trial 0's switch near) P(trial 1 has >= 1 near) + P(trial 1 both near)
    p0, p1_ge1, p1_both = 2 / 5, 1 - (3 / 5) * (2 / 4), 1 / 10
    exact = p0 * p1_ge1 + (1 - p0) * p1_both
    assert abs(r["p_shuffle"] - exact) < 5 * math.sqrt(exact * (1 - exact) / 4000) + 1 / 4000
    assert switch_alignment(np.zeros((2, 4), int), [-1, 0, 1], 0.5)["frac_near"] is None


def test_categorical_prior_is_minus_kl_to_the_connectome():
    model = OneHotPriorHMMGLM(3, n_states=2, init_std=1.0, prior_form="categorical", seed=4).double()
    with torch.no_grad():
        model.prior_logits.copy_(torch.randn(3, 3, 3, generator=torch.Generator().manual_seed(0)))
    q = torch.softmax(model.adjacency_logits.detach(), -1)
    p = torch.softmax(model.prior_logits.detach(), -1)
    manual = -sum(
        float((q[s, i, j] * (q[s, i, j] / p[i, j]).log()).sum())
        for s in range(2)
        for i in range(3)
        for j in range(3)
        if i != j
    )
    assert math.isclose(float(model.log_prior().detach()), manual, rel_tol=1e-12)
    # maximal (0) when every state's types equal the connectome
    with torch.no_grad():
        model.adjacency_logits.copy_(model.prior_logits.expand_as(model.adjacency_logits))
    assert abs(float(model.log_prior().detach())) < 1e-12


def test_log_factorial_reused_for_the_same_batch_and_recomputed_after_an_edit():
    """The M-step's repeated emission passes on one batch compute ``Σ log x!`` once; a new tensor with the
    same values, an in-place edit or another dtype gets it recomputed -- the value is always lgamma's."""
    gen = torch.Generator().manual_seed(0)
    spikes = torch.poisson(torch.full((2, 30, 4), 1.5), generator=gen).double()
    h = torch.randn(2, 30, 4, dtype=torch.float64, generator=gen)

    def exact(s):
        return torch.lgamma(s.reshape(-1, 4) + 1).sum(-1)

    first = fused._flatten(h, spikes, "poisson")[2]
    assert fused._flatten(h, spikes, "poisson")[2] is first  # same batch: reused
    torch.testing.assert_close(first, exact(spikes), rtol=0, atol=0)
    twin = spikes.clone()
    assert fused._flatten(h, twin, "poisson")[2] is not first  # another tensor: recomputed
    spikes[0, 0, 0] += 3.0  # in-place edit of the first batch
    edited = fused._flatten(h, spikes, "poisson")[2]
    torch.testing.assert_close(edited, exact(spikes), rtol=0, atol=0)
    assert float(edited[0] - first[0]) > 0  # x! grew
    as32 = fused._flatten(h.float(), spikes, "poisson")[2]
    assert as32.dtype == torch.float32
    torch.testing.assert_close(as32, exact(spikes).float())
    # the weighted pass still equals its definition with the reused term
    w, b = torch.randn(3, 4, 4, dtype=torch.float64, generator=gen), torch.zeros(4, dtype=torch.float64)
    g = torch.softmax(torch.randn(2, 30, 3, dtype=torch.float64, generator=gen), -1)
    direct = (g * fused.chunked_log_emissions(h, spikes, w, b, "sigmoid", "poisson")).sum()
    for _ in range(2):
        torch.testing.assert_close(fused.weighted_log_emissions(h, spikes, w, b, g, "sigmoid", "poisson"), direct)


def test_rows_last_copies_reused_per_batch_and_posteriors_and_redone_after_an_edit():
    """The M-step's passes on one batch lay its spikes and posteriors out rows last once; an in-place edit of
    either (or a new tensor) is seen, and value and gradient always equal the pass's definition."""
    gen = torch.Generator().manual_seed(1)
    spikes = torch.poisson(torch.full((2, 40, 4), 1.0), generator=gen).double()
    h = torch.randn(2, 40, 8, dtype=torch.float64, generator=gen)
    g = torch.softmax(torch.randn(2, 40, 3, dtype=torch.float64, generator=gen), -1)
    x_flat = spikes.reshape(-1, 4)
    first = fused._spikes_rows_last(spikes, x_flat)
    assert first.is_contiguous() and fused._spikes_rows_last(spikes, x_flat) is first
    torch.testing.assert_close(first, x_flat.T, rtol=0, atol=0)

    def check(spikes, g):
        w = torch.randn(3, 4, 8, dtype=torch.float64, generator=gen, requires_grad=True)
        b = torch.randn(4, dtype=torch.float64, generator=gen, requires_grad=True)
        direct = (g * fused.chunked_log_emissions(h, spikes, w, b, "sigmoid", "poisson")).sum()
        want = torch.autograd.grad(direct, (w, b))
        for _ in range(2):  # the second pass reuses both copies
            got = fused.weighted_log_emissions(h, spikes, w, b, g, "sigmoid", "poisson")
            torch.testing.assert_close(got, direct)
            for a, e in zip(torch.autograd.grad(got, (w, b)), want):
                torch.testing.assert_close(a, e)

    check(spikes, g)
    g[0, :5] = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)  # in-place edits of both
    spikes[1, 3, 2] += 4.0
    assert fused._spikes_rows_last(spikes, x_flat) is not first
    check(spikes, g)
    check(spikes.clone(), g.float())  # new tensors, posteriors in another dtype: cast to the features'


def test_reused_copies_go_with_their_source_and_when_a_fit_returns():
    """A batch-sized copy is never kept past its source tensor's life, nor past the fit that made it."""
    import gc

    from neurodyn.models.hmmglm import HMMGLM
    from neurodyn.models.hmmglm.fit import fit_em, fit_gradient

    spikes = torch.poisson(torch.full((1, 30, 3), 1.0, dtype=torch.float64))
    fused._spikes_rows_last(spikes, spikes.reshape(-1, 3))
    assert "spikes_rows_last" in fused._last
    del spikes
    gc.collect()
    assert "spikes_rows_last" not in fused._last
    x = torch.poisson(torch.full((2, 40, 3), 0.5, dtype=torch.float64))
    for fit in (lambda m: fit_em(m, x, n_iters=1, n_inner=2), lambda m: fit_gradient(m, x, n_steps=2)):
        fit(HMMGLM(3, n_states=2).double())
        assert fused._last == {}  # x is still alive here: the fit itself let its copies go


def test_log_factorial_under_inference_mode():
    """Inference-mode tensors have no version counter (Lightning's predict): computed, never reused."""
    x = torch.poisson(torch.full((1, 20, 3), 1.0, dtype=torch.float64))
    h = torch.zeros(1, 20, 3, dtype=torch.float64)
    with torch.inference_mode():
        xi = x.clone()
        a = fused._flatten(h, xi, "poisson")[2]
        assert fused._flatten(h, xi, "poisson")[2] is not a
    torch.testing.assert_close(a, torch.lgamma(x.reshape(-1, 3) + 1).sum(-1), rtol=0, atol=0)


def test_gradient_only_keeps_the_exact_gradient_and_skips_the_value():
    """fit_em's inner loops differentiate the M-step loss without its value: the gradient must be bitwise
    the full pass's, the value 0 inside the block and the full value again after it."""
    for link in ("sigmoid", "exp"):
        x, h, w, b, gamma = _data("poisson")
        w1, b1 = w.clone().requires_grad_(), b.clone().requires_grad_()
        w2, b2 = w.clone().requires_grad_(), b.clone().requires_grad_()
        full = fused.weighted_log_emissions(h, x, w1, b1, gamma, link, "poisson")
        with fused.gradient_only():
            cheap = fused.weighted_log_emissions(h, x, w2, b2, gamma, link, "poisson")
            values = fused.weighted_log_emissions(h, x, w.clone(), b.clone(), gamma, link, "poisson")  # no grad
        full.backward()
        cheap.backward()
        assert float(cheap.detach()) == 0.0 and float(full.detach()) != 0.0
        assert torch.equal(w2.grad, w1.grad) and torch.equal(b2.grad, b1.grad)
        assert float(values) == float(full.detach())  # nothing to differentiate: the value is computed
        after = fused.weighted_log_emissions(h, x, w, b, gamma, link, "poisson")
        assert float(after) == float(full.detach())


def test_emission_terms_general_inputs_keep_autograd_broadcasting_and_promotion():
    """The in-place hot path is taken only when safe: with autograd, wider spikes or mixed dtypes the
    closed form is the plain arithmetic (same values, a differentiable graph, the promoted dtype)."""
    g = torch.Generator().manual_seed(2)
    u = torch.randn(4, 1, 3, dtype=torch.float64, generator=g)
    x = torch.poisson(torch.full((4, 2, 3), 0.7, dtype=torch.float64), generator=g)  # wider than u
    f, d = fused.emission_terms(x, u, "sigmoid", "poisson")
    lam = torch.sigmoid(u) * (1 - 1e-8) + 1e-8
    torch.testing.assert_close(f, x * torch.log(lam) - lam)
    ug = u.clone().requires_grad_()
    fg, _ = fused.emission_terms(x[:, :1], ug, "sigmoid", "poisson")
    fg.sum().backward()  # the hot path's in-place ops would break this graph
    torch.testing.assert_close(ug.grad, d[:, :1])
    f32, _ = fused.emission_terms(x[:, :1], u.float(), "sigmoid", "poisson")
    assert f32.dtype == torch.float64  # float64 spikes promote, as plain arithmetic does


@pytest.mark.parametrize("seed", range(40))
def test_broadcast_check_matches_torch(seed):
    """``_broadcasts_into`` (the hot path's cheap check) agrees with ``torch.broadcast_shapes(a, b) == b``."""
    rng = np.random.default_rng(seed)
    target = tuple(int(v) for v in rng.integers(0, 4, size=rng.integers(0, 4)))
    shape = tuple(int(rng.choice([1, v, v + 1, 0])) for v in target[len(target) - rng.integers(0, len(target) + 1):])
    if rng.random() < 0.2:
        shape = (1,) + shape  # one more leading dim than the target: never broadcasts into it
    try:
        expected = torch.broadcast_shapes(shape, target) == torch.Size(target)
    except RuntimeError:
        expected = False
    assert fused._broadcasts_into(torch.Size(shape), torch.Size(target)) == expected, (shape, target)


def test_type_softmax_on_a_moved_axis_equals_torch_softmax():
    """The one-hot prior's (log-)softmax over the 3 types, reduced along a leading axis, equals the plain
    last-axis (log-)softmax: values and gradients to float64 rounding."""
    from neurodyn.models.hmmglm.priors import _log_softmax_types, _softmax_types

    x = torch.randn(2, 4, 4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 5
    w = torch.randn(x.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    for ours, plain in ((_softmax_types, torch.softmax), (_log_softmax_types, torch.log_softmax)):
        a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
        ya, yb = ours(a), plain(b, -1)
        torch.testing.assert_close(ya, yb, rtol=0, atol=1e-14)
        (ya * w).sum().backward()
        (yb * w).sum().backward()
        torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=1e-13)


def test_drive_promotes_mixed_dtypes():
    """A float64 bias with float32 weights and features gives the float64 drive ``W hᵀ + b``."""
    h = torch.randn(6, 3)
    w = torch.randn(2 * 4, 3)
    b = torch.randn(4, dtype=torch.float64)
    u = fused._drive(h, w, b, 2)
    assert u.dtype == torch.float64 and u.shape == (2, 4, 6)
    torch.testing.assert_close(u, (w @ h.T).view(2, 4, 6).double() + b[:, None])


@pytest.mark.parametrize("n_states", [1, 3])
@pytest.mark.parametrize("chunk", [1 << 18, 4 * 3 * 4])  # one chunk; 4 rows per chunk with S = 3 (last of 3)
def test_float32_emissions_match_float64(n_states, chunk, monkeypatch):
    """The float32 hot path that fits use (in-place closed form, (S, N, rows) chunks) against the float64
    pass (itself checked against autograd above): values and gradients within float32 rounding of sums of
    ~N terms (eps 1.2e-7 x N x a few), relative to their scale."""
    monkeypatch.setattr(fused, "CHUNK_ELEMENTS", chunk)
    x, h, w, b, gamma = _data("poisson", n_states=n_states, n_time=41)  # 3 x 41 = 123 rows: uneven chunks
    grads = {}
    for dtype in (torch.float64, torch.float32):
        wd, bd = w.to(dtype).clone().requires_grad_(), b.to(dtype).clone().requires_grad_()
        out = fused.chunked_log_emissions(h.to(dtype), x.to(dtype), wd, bd, "sigmoid", "poisson")
        out.sum().backward()  # a zero-stride upstream gradient
        q = fused.weighted_log_emissions(h.to(dtype), x.to(dtype), w.to(dtype).clone().requires_grad_(),
                                         b.to(dtype).clone().requires_grad_(), gamma.to(dtype), "sigmoid", "poisson")
        grads[dtype] = (out.detach().double(), wd.grad.double(), bd.grad.double(), float(q))
    tol = 1.2e-7 * x.shape[-1] * 10
    for a, c in zip(grads[torch.float32][:3], grads[torch.float64][:3]):
        assert float((a - c).abs().max()) <= tol * float(c.abs().max())
    assert math.isclose(grads[torch.float32][3], grads[torch.float64][3], rel_tol=tol)


def test_mixed_dtype_bias_fits_through_the_emission_pass():
    """float32 features / weights with a float64 bias: the drive promotes, the gradients come back in each
    parameter's dtype and agree with the float64 pass to float32 rounding."""
    x, h, w, b, gamma = _data("poisson")
    w32 = w.float().requires_grad_()
    b64 = b.clone().requires_grad_()
    fused.weighted_log_emissions(h.float(), x.float(), w32, b64, gamma.float(), "sigmoid", "poisson").backward()
    w64, b64ref = w.clone().requires_grad_(), b.clone().requires_grad_()
    fused.weighted_log_emissions(h, x, w64, b64ref, gamma, "sigmoid", "poisson").backward()
    assert w32.grad.dtype == torch.float32 and b64.grad.dtype == torch.float64
    scale = float(w64.grad.abs().max())
    assert float((w32.grad.double() - w64.grad).abs().max()) <= 1e-5 * scale
    assert float((b64.grad - b64ref.grad).abs().max()) <= 1e-5 * float(b64ref.grad.abs().max())


def test_adam_falls_back_when_fused_is_refused(monkeypatch):
    """Where a torch build or device refuses ``fused=True``, fitting uses the default Adam."""
    from neurodyn.models.hmmglm import fit as fit_module

    real = torch.optim.Adam
    calls = []

    def adam(params, **kwargs):
        calls.append(kwargs.get("fused"))
        if kwargs.get("fused"):
            raise RuntimeError("fused=True requires ... supported devices")
        return real(params, **kwargs)

    monkeypatch.setattr(torch.optim, "Adam", adam)
    opt = fit_module._adam(HMMGLM(3, n_states=2), 0.01)
    assert isinstance(opt, real) and calls == [True, None] and not opt.defaults.get("fused")


def test_revive_collapsed_resets_only_collapsed_entries():
    """Entries with softplus(R) below the threshold get uniform type logits and the new strength; the others
    keep theirs; without self-connections the diagonal stays "none"."""
    import torch.nn.functional as F

    m = OneHotPriorHMMGLM(4, n_states=2, init_std=1.0, seed=3, self_connections=False).double()
    with torch.no_grad():
        m.strength_logits.copy_(torch.randn(2, 4, 4, generator=torch.Generator().manual_seed(0)) * 4)
        m.after_optimizer_step()
    before_a, before_r = m.adjacency_logits.detach().clone(), m.strength_logits.detach().clone()
    dead = (F.softplus(before_r) < 0.05) & m.coupling_mask.bool()
    diag = ~m.coupling_mask.bool().expand_as(dead)
    n = m.revive_collapsed(0.05, 0.1)
    s = F.softplus(m.strength_logits.detach())
    assert n == int(dead.sum()) > 0
    assert torch.equal(m.adjacency_logits.detach()[dead], torch.zeros(int(dead.sum()), 3, dtype=torch.float64))
    torch.testing.assert_close(s[dead], torch.full((int(dead.sum()),), 0.1, dtype=torch.float64))
    keep = ~dead & ~diag & (F.softplus(before_r) >= 0.05)
    assert torch.equal(m.adjacency_logits.detach()[keep], before_a[keep])
    assert torch.equal(m.strength_logits.detach()[keep], before_r[keep])
    assert (m.connection_types()[diag] == 0).all()


def test_revive_frees_a_coupling_stuck_at_zero_strength_with_the_wrong_sign():
    """simulate -> plant the saddle -> fit: start a one-hot model at the true couplings except the strongest
    one, given the opposite type with collapsed strength. EM alone leaves it at 0 (∂W/∂A ∝ strength); after
    ``revive_collapsed`` the same EM recovers its sign and most of its size (the true parameters' own
    fit error is a few hundredths at this data size; 0.5 x |w| is a margin, not a tuned bound)."""
    from neurodyn.data.synthetic.switching_glm import simulate_switching_glm

    sim = simulate_switching_glm(seed=1, n_states=2, n_neurons=6, n_sequences=8, n_bins=2000)
    x = torch.tensor(sim.spikes, dtype=torch.float64)
    w = torch.tensor(np.asarray(sim.weights))
    s, n, m = np.unravel_index(int(w.abs().argmax()), w.shape)
    fitted = {}
    for revive in (False, True):
        truth = HMMGLM(6, 2, self_connections=True).double()
        with torch.no_grad():
            truth.weights.copy_(w[..., None])
            truth.bias.copy_(torch.tensor(sim.bias))
            truth.transition_logits.copy_(torch.tensor(sim.transitions).log())
        model = OneHotPriorHMMGLM(6, n_states=2, self_connections=True, prior_form="categorical",
                                  m_step_mode="softmax").double()
        model.init_from_couplings(truth)
        with torch.no_grad():
            wrong = 0 if w[s, n, m] > 0 else 2  # inhibitory for an excitatory truth and vice versa
            model.adjacency_logits[s, n, m] = torch.zeros(3, dtype=torch.float64).index_fill_(
                0, torch.tensor([wrong]), 10.0)
            model.strength_logits[s, n, m] = -10.0
        if revive:
            assert model.revive_collapsed(0.05, 0.1) == 1
        fit_em(model, x, n_iters=3, n_inner=25, lr=0.05, init_bias=False)
        fitted[revive] = float(model.coupling_matrices()[s, n, m])
    true_w = float(w[s, n, m])
    assert abs(fitted[False]) < 0.01 * abs(true_w)  # stuck at the saddle
    assert fitted[True] * true_w > 0 and abs(fitted[True]) > 0.5 * abs(true_w)


@pytest.mark.parametrize("threshold,strength", [(0.0, 0.1), (0.05, 0.0), (0.05, -1.0), (float("nan"), 0.1)])
def test_revive_refuses_non_positive_settings(threshold, strength):
    m = OneHotPriorHMMGLM(3, n_states=1)
    with pytest.raises(Exception, match="revive"):
        m.revive_collapsed(threshold, strength)


def test_gradient_only_does_not_leak_into_other_threads():
    """A fit's ``gradient_only`` block in one thread leaves another thread's emission pass its value."""
    import threading

    x, h, w, b, gamma = _data("poisson")
    full = float(fused.weighted_log_emissions(h, x, w.clone().requires_grad_(), b.clone().requires_grad_(), gamma,
                                              "sigmoid", "poisson").detach())
    inside, seen = threading.Event(), {}

    def other():
        inside.wait(5)
        q = fused.weighted_log_emissions(h, x, w.clone().requires_grad_(), b.clone().requires_grad_(), gamma,
                                         "sigmoid", "poisson")
        seen["value"] = float(q.detach())

    t = threading.Thread(target=other)
    t.start()
    with fused.gradient_only():
        inside.set()
        t.join(10)
    assert seen["value"] == full != 0.0
