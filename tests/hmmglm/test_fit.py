"""EM monotonicity (generalised EM with the acceptance test) and simulate -> fit -> recover."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurodyn.data.synthetic.switching_glm import simulate_switching_glm
from neurodyn.errors import InputError
from neurodyn.metrics.states import state_accuracy
from neurodyn.models.hmmglm import HMMGLM, HMMGLMConfig, build_model
from neurodyn.models.hmmglm.fit import fit_em, fit_gradient
from neurodyn.training.hmmglm_scores import evaluate_model

EPS64 = torch.finfo(torch.float64).eps


@pytest.mark.parametrize("variant", ["hmmglm", "gaussian", "onehot"])
def test_em_never_decreases_the_objective(variant):
    sim = simulate_switching_glm(n_states=2, n_neurons=4, n_sequences=3, n_bins=200, seed=2)
    x = torch.tensor(sim.spikes, dtype=torch.float64)
    # transition_floor=None: the closed-form update is then the exact maximiser of its part of Q,
    # so an accepted M-step (Q + log prior increased) cannot lower log p(X) + log prior.
    model = build_model(
        4, HMMGLMConfig(variant=variant, n_states=2, transition_floor=None, init_std=0.3)
    ).double()
    history = fit_em(model, x, n_iters=8, n_inner=10, lr=0.05, monotone=True)
    obj = np.array(history.objective)
    # rounding of log p(X): a sum of B*T*S*N float64 terms of magnitude <= |obj|
    tol = x.numel() * 2 * EPS64 * np.abs(obj).max()
    assert (np.diff(obj) >= -tol).all(), np.diff(obj)
    assert obj[-1] > obj[0] + 1.0 and any(history.accepted)  # it did fit something


def test_gradient_fit_increases_marginal_likelihood():
    sim = simulate_switching_glm(n_states=2, n_neurons=4, n_sequences=2, n_bins=200, seed=3)
    model = build_model(4, HMMGLMConfig(variant="glm")).double()
    history = fit_gradient(model, sim.spikes, n_steps=30, lr=0.05)
    assert history.objective[-1] > history.objective[0]


def test_simulate_fit_recover_states():
    """3 states, 8 neurons: EM-fitted HMM-GLM decodes states almost as well as the true parameters.

    Threshold: the Bayes decoder with the true parameters (an upper reference, ~0.89 here) minus 0.1
    for finite-sample parameter error with 6 training sequences; chance is the largest state
    frequency (< 0.5), far below.
    """
    n_train = 6
    sim = simulate_switching_glm(n_states=3, n_neurons=8, n_sequences=n_train + 4, n_bins=1000, seed=1)
    train, test = sim.spikes[:n_train], sim.spikes[n_train:]
    truth = HMMGLM(8, 3, self_connections=True).double()
    with torch.no_grad():
        truth.weights.copy_(torch.tensor(sim.weights)[..., None])
        truth.bias.copy_(torch.tensor(sim.bias))
        truth.transition_logits.copy_(torch.tensor(sim.transitions).log())
    oracle = state_accuracy(
        sim.states[n_train:],
        truth.e_step(torch.tensor(test, dtype=torch.float64)).posteriors.argmax(-1).numpy(),
        3,
    )
    model = build_model(8, HMMGLMConfig(variant="hmmglm", n_states=3, self_connections=True)).double()
    fit_em(model, train, n_iters=15, n_inner=25, lr=0.05)
    result = evaluate_model(model, test, sim.states[n_train:], sim.connection_types, sim.weights)
    chance = np.bincount(sim.states[n_train:].ravel()).max() / sim.states[n_train:].size
    assert result["state_accuracy"] >= oracle - 0.1, (result["state_accuracy"], oracle)
    assert result["state_accuracy"] > chance + 0.2
    # the fitted model predicts held-out data better than the one-state GLM
    glm = build_model(8, HMMGLMConfig(variant="glm", self_connections=True)).double()
    fit_gradient(glm, train, n_steps=150, lr=0.05)
    assert result["test_ll"] > evaluate_model(glm, test)["test_ll"]


@pytest.mark.parametrize("fit, settings, field", [
    ("em", {"n_iters": 2.5}, "n_iters"),
    ("em", {"n_iters": -1}, "n_iters"),
    ("em", {"n_iters": "3"}, "n_iters"),
    ("em", {"n_inner": 1.5}, "n_inner"),
    ("em", {"n_inner": -2}, "n_inner"),
    ("em", {"batch_size": 0}, "batch_size"),
    ("em", {"batch_size": -1}, "batch_size"),
    ("em", {"batch_size": 1.5}, "batch_size"),
    ("em", {"seed": 1.5}, "seed"),
    ("gradient", {"n_steps": 2.5}, "n_steps"),
    ("gradient", {"n_steps": -1}, "n_steps"),
])
def test_fit_counts_that_are_not_whole_numbers_are_refused(fit, settings, field):
    """n_iters / n_inner / n_steps of 2.5 were range()'s 'float object cannot be interpreted as an integer' in
    the middle of the fit; -1 fitted nothing and returned as if it had; batch_size 0, -1 or 1.5 ran mini-batches
    of 1 (max(1, int(...))), seed 1.5 seed 1. Each is refused before the model is touched."""
    x = torch.poisson(torch.full((3, 40, 3), 0.4, dtype=torch.float64), generator=torch.Generator().manual_seed(0))
    model = HMMGLM(3, n_states=2).double()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(InputError) as caught:
        if fit == "em":
            fit_em(model, x, **{"n_iters": 1, "n_inner": 1, **settings})
        else:
            fit_gradient(model, x, **settings)
    assert caught.value.field == field, str(caught.value)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def _poisson_population(n_neurons: int, n_sequences: int, n_bins: int, seed: int = 0) -> torch.Tensor:
    """Independent Poisson counts, rates 0.1-0.9 per bin (a cortical population in 20 ms bins)."""
    g = torch.Generator().manual_seed(seed)
    rates = 0.1 + 0.8 * torch.rand(n_neurons, generator=g, dtype=torch.float64)
    return torch.poisson(rates.expand(n_sequences, n_bins, n_neurons).contiguous(), generator=g)


def test_onehot_with_the_exp_link_does_not_lower_the_likelihood_by_default():
    """The one-hot prior's Gumbel M-step with the exp link averages exp rates over nearly one-hot sampled types
    (±strength on every undecided pair), a factor ≈ exp(var/2) above the rates of the softmax couplings the
    model is scored with; its gradient only shrinks the sampled rates, so the types turn inhibitory and
    log p(X) fell every iteration (here, 20 neurons: -7509, -7566, -7702, -7910 nats). The default
    m_step_mode ("auto") now takes the deterministic softmax M-step for this link, which raises it."""
    x = _poisson_population(20, 10, 40)

    def fit(mode: str | None) -> list[float]:
        torch.manual_seed(0)  # the Gumbel M-step's samples
        extra = {} if mode is None else {"m_step_mode": mode}
        model = build_model(20, HMMGLMConfig(variant="onehot", n_states=2, link="exp", **extra)).double()
        lls = []

        def log_likelihood(*_) -> None:  # log p(X) alone: the objective also holds the log prior
            with torch.no_grad():
                lls.append(float(model.marginal_log_likelihood(x).sum()))

        fit_em(model, x, n_iters=3, n_inner=10, callback=log_likelihood)
        log_likelihood()
        assert model.m_step_mode == (mode or "softmax")
        return lls

    lls = fit(None)
    assert all(b > a for a, b in zip(lls, lls[1:])), lls
    with pytest.warns(UserWarning, match="m_step_mode 'gumbel' with link 'exp'"):
        sampled = fit("gumbel")  # the paper's M-step on this link: why "auto" does not take it
    assert all(b < a for a, b in zip(sampled, sampled[1:])), sampled


def test_onehot_m_step_mode_auto_keeps_the_papers_gumbel_step_with_the_sigmoid_link():
    assert build_model(4, HMMGLMConfig(variant="onehot")).m_step_mode == "gumbel"
    assert build_model(4, HMMGLMConfig(variant="onehot", link="softplus")).m_step_mode == "softmax"
    assert build_model(4, HMMGLMConfig(variant="onehot", link="exp", m_step_mode="gumbel")).m_step_mode == "gumbel"


def test_an_explicit_gumbel_m_step_with_the_exp_link_warns_once():
    x = _poisson_population(4, 2, 30)
    model = build_model(4, HMMGLMConfig(variant="onehot", n_states=2, link="exp", m_step_mode="gumbel")).double()
    with pytest.warns(UserWarning, match="m_step_mode 'gumbel' with link 'exp'") as record:
        fit_em(model, x, n_iters=2, n_inner=2)
    assert sum("m_step_mode 'gumbel'" in str(w.message) for w in record) == 1
