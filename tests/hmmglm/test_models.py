"""Emission model, basis, priors and validation of the switching-GLM family (closed-form oracles)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from scipy.integrate import quad

from neurodyn.core.basis import exponential_basis, history_features, raised_cosine_basis
from neurodyn.errors import InputError
from neurodyn.models.hmmglm import (
    GLM,
    HMMGLM,
    GaussianPriorHMMGLM,
    HMMGLMConfig,
    OneHotPriorHMMGLM,
    build_model,
    validate_spikes,
)
from neurodyn.models.hmmglm.emissions import RATE_FLOOR
from neurodyn.models.hmmglm.priors import concrete_log_density


def _spikes(seed=0, shape=(2, 30, 4), rate=0.5):
    g = torch.Generator().manual_seed(seed)
    return torch.poisson(torch.full(shape, rate, dtype=torch.float64), generator=g)


def test_exponential_basis_paper_values():
    phi = exponential_basis(5, 1.0, 5.0)[0]
    assert torch.allclose(
        phi, torch.tensor([0.6364, 0.2341, 0.0861, 0.0317, 0.0117], dtype=phi.dtype), atol=5e-5
    )
    assert math.isclose(float(phi.sum()) * 1.0, 1.0, rel_tol=1e-12)  # dt * Σφ = 1 with dt = 1


@pytest.mark.parametrize("basis", [exponential_basis(5), raised_cosine_basis(3, 8)])
def test_history_convolution_equals_direct_loop(basis):
    x = _spikes(1, (2, 25, 3))
    h = history_features(x, basis)
    direct = torch.zeros(2, 25, 3, basis.shape[0], dtype=torch.float64)
    for t in range(25):
        for k in range(1, basis.shape[1] + 1):
            if t - k >= 0:
                direct[:, t] += x[:, t - k, :, None] * basis[:, k - 1]
    assert torch.allclose(h, direct, atol=1e-12)


@pytest.mark.parametrize(
    "link,emission",
    [("sigmoid", "poisson"), ("exp", "poisson"), ("softplus", "poisson"), ("sigmoid", "bernoulli")],
)
def test_log_emissions_equal_direct_formula(link, emission):
    x = _spikes(2, (2, 20, 3), rate=0.3)
    if emission == "bernoulli":
        x = x.clamp(max=1)
    model = HMMGLM(
        3, n_states=2, link=link, emission=emission, self_connections=True, n_lags=4, init_std=0.5
    ).double()
    with torch.no_grad():
        model.bias.copy_(torch.tensor([-0.5, 0.2, 0.1]))
    got = model.log_emissions(x)
    w = model.weights.detach()[..., 0]
    phi = model.basis[0]
    expected = torch.zeros(2, 20, 2, dtype=torch.float64)
    for b in range(2):
        for t in range(20):
            h = sum(phi[k - 1] * x[b, t - k] for k in range(1, 5) if t - k >= 0) + torch.zeros(
                3, dtype=torch.float64
            )
            for s in range(2):
                u = model.bias.detach() + w[s] @ h
                lam = {
                    "sigmoid": (1 - RATE_FLOOR) / (1 + torch.exp(-u)) + RATE_FLOOR,
                    "exp": torch.exp(u),
                    "softplus": torch.log1p(torch.exp(u)),
                }[link]
                if emission == "poisson":
                    lp = x[b, t] * torch.log(lam) - lam - torch.lgamma(x[b, t] + 1)
                else:
                    lp = x[b, t] * torch.log(lam) + (1 - x[b, t]) * torch.log(1 - lam)
                expected[b, t, s] = lp.sum()
    assert torch.allclose(got, expected, atol=1e-10)


def test_concrete_density_normalises():
    # K = 2: density over q1 in (0, 1) (q2 = 1 - q1) must integrate to 1 (exact oracle).
    for tau, alpha in [(0.5, (0.3, 0.7)), (0.2, (0.1, 2.0)), (1.0, (1.0, 1.0))]:
        la = torch.tensor(alpha, dtype=torch.float64).log()

        def dens(z, la=la, tau=tau):  # substitute q1 = sigmoid(z): dq1 = q1 q2 dz removes the endpoint singularities
            lq = torch.log_softmax(torch.tensor([z, 0.0], dtype=torch.float64), 0)
            return float((concrete_log_density(lq, la, tau) + lq.sum()).exp())

        total, err = quad(dens, -np.inf, np.inf, limit=200)
        assert abs(total - 1) < 1e-6 + 10 * err


def test_gaussian_prior_value_and_gradient():
    model = GaussianPriorHMMGLM(4, n_states=3, init_std=0.7).double()
    lp = model.log_prior()
    lp.backward()
    w = model.coupling().detach()
    mask = model.coupling_mask[..., None].bool().expand_as(w)
    mean = w.mean(0, keepdim=True)
    sigma = 1 / 3
    expected = torch.distributions.Normal(mean.expand_as(w)[mask], sigma).log_prob(w[mask]).sum()
    assert torch.allclose(lp.detach(), expected, atol=1e-10)
    # closed-form gradient -(W_s - W̄)/σ² on free entries, exactly 0 on the masked diagonal
    assert torch.allclose(model.weights.grad, -(w - mean) / sigma**2 * mask, atol=1e-10)


def test_onehot_types_prior_and_guards():
    model = OneHotPriorHMMGLM(5, n_states=2, init_std=1.0, seed=3).double()
    types = model.connection_types()
    assert set(types.unique().tolist()) <= {-1, 0, 1}
    assert (types.diagonal(dim1=1, dim2=2) == 0).all()
    with model.weights_as("hard"):
        hard = model.coupling()[..., 0]
    strength = torch.nn.functional.softplus(model.strength_logits.detach())
    assert torch.allclose(hard.detach(), types * strength * model.coupling_mask)
    # prior = Σ over off-diagonal entries of the Concrete density at softmax(A)
    lq = model.adjacency_logits.detach().log_softmax(-1)
    la = model.prior_logits.detach().log_softmax(-1)
    manual = sum(
        float(concrete_log_density(lq[s, i, j], la[i, j], 0.2))
        for s in range(2)
        for i in range(5)
        for j in range(5)
        if i != j
    )
    assert math.isclose(float(model.log_prior().detach()), manual, rel_tol=1e-10)
    quirk = OneHotPriorHMMGLM(5, n_states=2, prior_alpha="prob").double()
    quirk.load_state_dict(model.state_dict())
    manual_quirk = sum(
        float(concrete_log_density(lq[s, i, j], model.prior_logits.detach()[i, j].softmax(-1), 0.2))
        for s in range(2)
        for i in range(5)
        for j in range(5)
        if i != j
    )
    assert math.isclose(float(quirk.log_prior().detach()), manual_quirk, rel_tol=1e-10)
    # logit guard: a vector with log-probability < -20 is halved
    with torch.no_grad():
        model.adjacency_logits[0, 0, 1] = torch.tensor([30.0, 0.0, -1.0])
    model.after_optimizer_step()
    assert torch.allclose(
        model.adjacency_logits[0, 0, 1], torch.tensor([15.0, 0.0, -0.5], dtype=torch.float64)
    )
    # gumbel mode is random but seeded; softmax mode deterministic
    with model.weights_as("gumbel"):
        a, b = model.adjacency(), model.adjacency()
    assert not torch.equal(a, b) and torch.allclose(a.sum(-1), torch.ones_like(a[..., 0]))


def test_update_transitions_is_the_closed_form_maximiser():
    model = HMMGLM(3, n_states=3, transition_floor=None).double()
    xi = torch.tensor([[50.0, 2.0, 1.0], [3.0, 40.0, 0.5], [1.0, 1.0, 20.0]], dtype=torch.float64)
    model.update_transitions(xi)
    p = model.log_transitions().exp()
    assert torch.allclose(p, xi / xi.sum(-1, keepdim=True), atol=1e-12)
    q = (xi * p.log()).sum()
    g = torch.Generator().manual_seed(0)
    for _ in range(20):  # any other stochastic matrix has a lower Σ ξ log P
        other = torch.rand(3, 3, generator=g, dtype=torch.float64)
        assert (xi * (other / other.sum(-1, keepdim=True)).log()).sum() < q
    floored = HMMGLM(3, n_states=3).double()  # paper: log P clamped at -8 then renormalised
    floored.update_transitions(torch.tensor([[1.0, 0.0, 0.0]] * 3, dtype=torch.float64))
    lp = floored.log_transitions()[0]
    assert torch.allclose(lp, torch.log_softmax(torch.tensor([0.0, -8.0, -8.0], dtype=torch.float64), 0))


def test_model_gradient_matches_finite_differences():
    x = _spikes(3, (2, 40, 3))
    model = GaussianPriorHMMGLM(3, n_states=2, init_std=0.3).double()

    def objective(bias, weights, logits):
        with torch.no_grad():
            model.bias.copy_(bias), model.weights.copy_(weights), model.transition_logits.copy_(logits)
        return model.objective(x)

    params = [p.detach().clone() for p in (model.bias, model.weights, model.transition_logits)]
    model.zero_grad()
    model.objective(x).backward()
    grads = [model.bias.grad.clone(), model.weights.grad.clone(), model.transition_logits.grad.clone()]
    eps = 1e-6
    for i, (p, g) in enumerate(zip(params, grads)):
        for idx in (
            [(0,), (1,), (2,)]
            if p.ndim == 1
            else [(0, 0, 1, 0), (1, 2, 0, 0)]
            if p.ndim == 4
            else [(0, 1), (1, 0)]
        ):
            up, down = [q.clone() for q in params], [q.clone() for q in params]
            up[i][idx] += eps
            down[i][idx] -= eps
            fd = (float(objective(*up).detach()) - float(objective(*down).detach())) / (2 * eps)
            # central difference error O(eps² f''') plus rounding |f| eps64 / eps ~ 1e-7
            assert abs(fd - float(g[idx])) < 1e-5 * max(1.0, abs(fd))


@pytest.mark.parametrize(("variant", "setting", "value"), [
    ("hmmglm", "n_states", 0),
    ("hmmglm", "n_basis", 0),           # raised_cosine below: a ValueError from the basis (traceback) before
    ("gaussian", "prior_std", -1.0),    # math domain error
    ("gaussian", "prior_std", 0.0),
    ("onehot", "prior_temperature", -1.0),  # math domain error
    ("onehot", "gumbel_temperature", 0.0),  # a non-finite loss at the first step
    ("hmmglm", "span", 0.0),             # a non-finite loss at the first step
    ("hmmglm", "decay", -1.0),           # history weights growing with the lag: accepted before
    ("hmmglm", "decay", math.nan),
    ("hmmglm", "transition_floor", 1.0),  # a floor above log 1 made every transition row uniform
    ("hmmglm", "init_std", -0.1),
])
def test_bad_config_values_are_one_line_naming_the_field(variant, setting, value):
    values = {"variant": variant, setting: value}
    if setting == "n_basis":
        values["basis"] = "raised_cosine"
    with pytest.raises(InputError) as err:
        build_model(4, HMMGLMConfig(**values))
    assert str(err.value).startswith(f"{setting}: ") and "\n" not in str(err.value)


def test_validation_errors():
    good = np.zeros((1, 10, 2))
    with pytest.raises(InputError, match="negative"):
        validate_spikes(np.array([[[0, -1]]]), path="x.h5")
    with pytest.raises(InputError, match="non-integer"):
        validate_spikes(np.array([[[0.5, 1.0]]]))
    with pytest.raises(InputError, match="NaN"):
        validate_spikes(np.array([[[np.nan, 1.0]]]))
    with pytest.raises(InputError, match="history window"):
        validate_spikes(good[:, :5], n_lags=5)
    with pytest.raises(InputError, match="Bernoulli"):
        validate_spikes(good + 2, emission="bernoulli")
    with pytest.raises(InputError, match="shape"):
        validate_spikes(np.zeros(4))
    with pytest.raises(InputError, match="n_states"):
        HMMGLM(3, n_states=0)
    with pytest.raises(InputError, match="sigmoid"):
        HMMGLM(3, n_states=2, emission="bernoulli", link="exp")
    with pytest.raises(InputError, match="link"):
        GLM(3, link="relu")
    with pytest.raises(InputError, match="single history filter"):
        OneHotPriorHMMGLM(3, n_states=2, basis="raised_cosine")
    with pytest.raises(InputError, match="variant"):
        build_model(3, HMMGLMConfig(variant="lstm"))
    err = None
    try:
        validate_spikes(np.array([[[0, -1]]]), name="train/spikes", path="data.h5")
    except InputError as e:
        err = str(e)
    assert err is not None and "\n" not in err and err.startswith("data.h5: train/spikes:")
    assert validate_spikes(good, n_lags=5).shape == (1, 10, 2)


@pytest.mark.parametrize("variant", ["glm", "hmmglm", "gaussian", "onehot"])
def test_smoke_two_steps_finite_and_decreasing(variant):
    x = _spikes(4, (2, 60, 4))
    model = build_model(4, HMMGLMConfig(variant=variant, n_states=2, m_step_mode="softmax")).double()
    model.init_bias(x)
    post = model.e_step(x)
    assert torch.allclose(post.posteriors.sum(-1), torch.ones(2, 60, dtype=torch.float64))
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(3):
        opt.zero_grad()
        loss = model.m_step_loss(x, post)
        loss.backward()
        opt.step()
        model.after_optimizer_step()
        losses.append(float(loss.detach()))
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
    assert model.marginal_log_likelihood(x).shape == (2,)


def test_basis_stays_exact_through_dtype_casts():
    """A float64 model forms its history from the exact filter (not a float32 copy), whatever casts came
    before; a float32 model rounds it; a basis stored in float32 (an older pickle) casts as it used to."""
    exact = exponential_basis(5, 1.0, 5.0)
    model = HMMGLM(3, n_states=2, n_lags=5)
    assert model.basis.dtype == torch.float64 and torch.equal(model.basis, exact)
    model = model.float().double()
    assert torch.equal(model.basis, exact) and model.bias.dtype == torch.float64
    x = torch.poisson(torch.full((1, 30, 3), 0.7, dtype=torch.float64), generator=torch.Generator().manual_seed(0))
    assert torch.equal(model.history(x), history_features(x, exact).reshape(1, 30, -1))
    single = model.float()
    assert single.basis.dtype == torch.float64 and single.history(x).dtype == torch.float32
    assert torch.equal(single.history(x), history_features(x.float(), exact.float()).reshape(1, 30, -1))
    old = HMMGLM(3, n_states=2, n_lags=5)
    old.basis = exact.float()  # as stored before the basis was kept in float64
    old = old.double()
    assert old.basis.dtype == torch.float64 and torch.equal(old.basis, exact.float().double())
    assert not torch.equal(old.basis, exact)  # the float32 rounding is visible, so the test can fail


def test_the_models_own_methods_check_their_spikes():
    """e_step / log_emissions / marginal_log_likelihood (the README's API) took NaN or negative counts to NaN
    log-likelihoods without a word, and a numpy array, one sequence (T, N) or another neuron count to an
    error deep in torch ('mat1 and mat2 shapes cannot be multiplied'); fit_em too for the neuron count
    (helper-50)."""
    from neurodyn.errors import InputError
    from neurodyn.models.hmmglm import HMMGLM
    from neurodyn.models.hmmglm.fit import fit_em

    model = HMMGLM(4, n_states=2).double()
    x = torch.poisson(torch.full((2, 60, 4), 0.4, dtype=torch.float64), generator=torch.Generator().manual_seed(0))
    nan = x.clone()
    nan[0, 3, 1] = float("nan")
    for bad, message in [(nan, "spikes: 1 NaN or infinite values"), (-x - 1, "spikes: negative counts"),
                         (x + 0.5, "spikes: non-integer counts"),
                         (x[..., :3], "spikes: 3 neurons (last axis of shape (2, 60, 3)), the model has 4")]:
        for method in (model.e_step, model.log_emissions, model.marginal_log_likelihood):
            with pytest.raises(InputError, match=re.escape(message)):
                method(bad)
    with pytest.raises(InputError, match="the model has 4"):
        fit_em(model, x[..., :3], n_iters=1, n_inner=1)
    # an array and one sequence are read as they are documented: (B, T, N), (T, N) = one sequence
    assert torch.equal(model.e_step(x.numpy()).log_marginal, model.e_step(x).log_marginal)
    assert torch.allclose(model.marginal_log_likelihood(x[0]), model.marginal_log_likelihood(x)[:1])


def test_smaller_api_mistakes_are_one_input_error():
    """fit_em(lr=-1) was torch.optim's ValueError, build_model(2.5) a TypeError inside torch.ones, and viterbi
    returned a path for all-NaN log-likelihoods (helper-50)."""
    from neurodyn.errors import InputError
    from neurodyn.models.hmmglm import HMMGLM, build_model, viterbi
    from neurodyn.models.hmmglm.fit import fit_em, fit_gradient

    model = HMMGLM(4, n_states=2).double()
    x = torch.poisson(torch.full((2, 60, 4), 0.4, dtype=torch.float64), generator=torch.Generator().manual_seed(1))
    for fit in (fit_em, fit_gradient):
        with pytest.raises(InputError, match="lr: must be a finite number > 0, got -1"):
            fit(model, x, lr=-1)
    with pytest.raises(InputError, match="n_neurons: must be a whole number >= 1, got 2.5"):
        build_model(2.5)
    nan = torch.full_like(model.log_emissions(x), float("nan"))
    with pytest.raises(InputError, match="log_likelihoods: 240 NaN log-likelihoods"):
        viterbi(model.log_initial(), model.log_transitions(), nan)


def test_numpy_and_torch_numbers_are_taken_where_python_ones_are():
    """The checks added above refused np.int64 neurons (an HDF5 attribute) and np.float32 / 0-d tensor learning
    rates that torch takes (helper-51)."""
    import numpy as np

    from neurodyn.models.hmmglm import HMMGLMConfig, build_model
    from neurodyn.models.hmmglm.fit import fit_em, fit_gradient

    model = build_model(np.int64(4), HMMGLMConfig(n_states=2)).double()
    x = torch.poisson(torch.full((2, 30, 4), 0.4, dtype=torch.float64), generator=torch.Generator().manual_seed(2))
    for lr in (np.float32(0.01), torch.tensor(0.01)):
        assert len(fit_em(model, x, n_iters=1, n_inner=1, lr=lr).objective) == 2
        assert len(fit_gradient(model, x, n_steps=1, lr=lr).objective) >= 1


def test_the_spike_check_reads_no_values_of_a_gpu_tensor(monkeypatch):
    """log_emissions runs every training step: its value checks (three device syncs on a GPU) are skipped for
    tensors off the CPU; shapes are still checked (helper-51)."""
    from neurodyn.models.hmmglm import HMMGLM, emissions

    seen = []
    real = emissions.validate_spikes
    monkeypatch.setattr("neurodyn.models.hmmglm.models.validate_spikes",
                        lambda *a, **k: seen.append(k.get("values", True)) or real(*a, **k))
    model = HMMGLM(3, n_states=2).double()
    model.log_emissions(torch.zeros(1, 10, 3, dtype=torch.float64))
    assert seen == [True]
    meta = torch.zeros(1, 10, 3, dtype=torch.float64, device="meta")  # a tensor off the CPU, no GPU needed
    with pytest.raises(Exception):  # noqa: B017 - the meta tensor cannot be computed with; the check came first
        model.log_emissions(meta)
    assert seen == [True, False]
