"""Per-sequence transition updates (exact, against enumeration), the common connection-type read-out,
the fitting recipes, config defaults, and simulate -> fit -> recover for the Gaussian and one-hot priors."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from neurodyn.data.synthetic.switching_glm import simulate_switching_glm
from neurodyn.metrics.states import connection_type_accuracy, state_accuracy
from neurodyn.models.hmmglm import GLM, HMMGLM, HMMGLMConfig, build_model
from neurodyn.models.hmmglm.fit import fit_em
from neurodyn.models.hmmglm.models import SwitchingGLM
from neurodyn.models.hmmglm.readout import WALD_Z, coupling_standard_errors, read_out_types, reported_couplings
from neurodyn.models.hmmglm.recipes import RECIPES, RESTART_SEED_STEP, EMPhase, Recipe, fit_recipe
from neurodyn.training.hmmglm_scores import evaluate_model


def _xi_by_enumeration(log_initial, log_p, log_em):
    """Σ_t p(z_{t-1}=i, z_t=j | X) of one sequence by summing over every state path (exact oracle)."""
    n_time, n_states = log_em.shape
    paths = list(itertools.product(range(n_states), repeat=n_time))
    logw = torch.stack([
        log_initial[z[0]] + log_em[0, z[0]] + sum(log_p[z[t - 1], z[t]] + log_em[t, z[t]] for t in range(1, n_time))
        for z in paths
    ])
    w = torch.softmax(logw, 0)
    xi = torch.zeros(n_states, n_states, dtype=torch.float64)
    for weight, z in zip(w, paths):
        for t in range(1, n_time):
            xi[z[t - 1], z[t]] += weight
    return xi


def _update(xi, floor):
    """The paper's closed form by hand: P_ij = softmax_j(max(log(ξ_ij / Σ_j' ξ_ij'), floor))."""
    log_p = torch.log(xi / xi.sum(-1, keepdim=True)).clamp_min(floor)
    return torch.log_softmax(log_p, -1)


@pytest.mark.parametrize("floor", [-8.0, -1.0])
def test_per_sequence_transition_update_is_exact(floor):
    """batch_size=1, in order, no M-step: P after the epoch = update(ξ_1 under update(ξ_0 under P_0))."""
    g = torch.Generator().manual_seed(3)
    x = torch.poisson(torch.full((2, 7, 2), 0.6, dtype=torch.float64), generator=g)
    model = HMMGLM(2, n_states=2, n_lags=2, init_std=0.8, transition_floor=floor, sticky=0.9, seed=2).double()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        log_em = model.log_emissions(x)  # the couplings never change (n_inner = 0)
        p = model.log_transitions()
        for b in range(2):  # sequence 0, then sequence 1 under the P re-estimated from sequence 0
            p = _update(_xi_by_enumeration(model.log_initial(), p, log_em[b]), floor)
        pooled = _update(
            sum(_xi_by_enumeration(model.log_initial(), model.log_transitions(), log_em[b]) for b in range(2)), floor
        )
    fit_em(model, x, n_iters=1, n_inner=0, batch_size=1, shuffle=False, init_bias=False, transition_update="batch")
    assert torch.allclose(model.log_transitions(), p, atol=1e-10, rtol=0)
    assert not torch.allclose(p, pooled, atol=1e-3)  # the two schedules differ on this problem
    model.load_state_dict(start)
    fit_em(model, x, n_iters=1, n_inner=0, batch_size=1, shuffle=False, init_bias=False, transition_update="epoch")
    assert torch.allclose(model.log_transitions(), pooled, atol=1e-10, rtol=0)
    with pytest.raises(ValueError, match="transition_update"):
        fit_em(model, x, n_iters=1, batch_size=1, transition_update="never")


def test_standard_errors_equal_outer_product_of_autograd_scores():
    """se from the γ-weighted outer product of per-bin scores, rebuilt with autograd bin by bin."""
    g = torch.Generator().manual_seed(1)
    x = torch.poisson(torch.full((1, 40, 3), 0.4, dtype=torch.float64), generator=g)
    model = HMMGLM(3, n_states=2, n_lags=3, init_std=0.4, self_connections=False, seed=5).double()
    with torch.no_grad():
        model.bias.fill_(-0.8)
    se = coupling_standard_errors(model, x)
    gamma = model.e_step(x).posteriors[0]
    h = model.history(x)[0]  # (T, N)
    for s in range(2):
        for n in range(3):
            pre = [k for k in range(3) if k != n]
            info = torch.zeros(3, 3, dtype=torch.float64)
            for t in range(x.shape[1]):
                theta = torch.cat([model.weights[s, n, pre, 0].detach(), model.bias[n:n + 1].detach()]).requires_grad_()
                u = (theta[:2] * h[t, pre]).sum() + theta[2]
                lam = (1 - 1e-8) * torch.sigmoid(u) + 1e-8
                (score,) = torch.autograd.grad(x[0, t, n] * torch.log(lam) - lam, theta)
                info += gamma[t, s] * torch.outer(score, score)
            expected = torch.linalg.inv(info).diagonal()[:2].sqrt()
            assert torch.allclose(se[s, n, pre], expected, rtol=1e-8), (s, n)
            assert torch.isinf(se[s, n, n])  # masked diagonal: never called


def test_read_out_rule_is_sign_above_z_standard_errors():
    g = torch.Generator().manual_seed(0)
    x = torch.poisson(torch.full((2, 300, 4), 0.3, dtype=torch.float64), generator=g)
    model = HMMGLM(4, n_states=2, init_std=0.3, seed=1).double()
    types = read_out_types(model, x)
    w, se = reported_couplings(model), coupling_standard_errors(model, x)
    expected = torch.where(w.abs() >= WALD_Z * se, torch.sign(w), torch.zeros_like(w)).long()
    assert torch.equal(types, expected)
    assert torch.equal(read_out_types(model, x, z=0.0), torch.sign(w).long())  # z = 0: every nonzero sign


def test_read_out_ignores_weak_onehot_types_and_keeps_strong_ones():
    """A one-hot entry typed excitatory with a tiny strength is read out as none; a strong one keeps its sign."""
    model = build_model(3, HMMGLMConfig(variant="onehot", n_states=1)).double()
    with torch.no_grad():
        model.adjacency_logits.zero_()
        model.adjacency_logits[0, 0, 1] = torch.tensor([0.0, 0.0, 5.0])  # excitatory, strength ~ 0.001
        model.strength_logits[0, 0, 1] = -7.0
        model.adjacency_logits[0, 1, 2] = torch.tensor([5.0, 0.0, 0.0])  # inhibitory, strength 1.5
        model.strength_logits[0, 1, 2] = float(np.log(np.expm1(1.5)))
        model.adjacency_logits[..., 1] += 1e-3 * torch.eye(3)  # ties broken towards "none" elsewhere
    g = torch.Generator().manual_seed(2)
    x = torch.poisson(torch.full((3, 500, 3), 0.4, dtype=torch.float64), generator=g)
    argmax = model.connection_types()
    assert argmax[0, 0, 1] == 1 and argmax[0, 1, 2] == -1
    types = read_out_types(model, x)
    assert types[0, 0, 1] == 0 and types[0, 1, 2] == -1


def test_config_defaults_follow_the_paper():
    cfg = HMMGLMConfig()
    assert cfg.self_connections and cfg.n_lags == 5 and cfg.sticky == 0.98 and cfg.transition_floor == -8.0
    assert cfg.gumbel_temperature == cfg.prior_temperature == 0.2 and cfg.prior_std == pytest.approx(1 / 3)
    onehot = build_model(4, HMMGLMConfig(variant="onehot", n_states=2))
    assert torch.count_nonzero(onehot.adjacency_logits[:, ~torch.eye(4, dtype=torch.bool)]) == 0  # paper: zeros
    assert build_model(4, HMMGLMConfig(variant="glm")).weights.abs().sum() == 0
    assert build_model(4, HMMGLMConfig(variant="hmmglm", n_states=2)).weights.abs().sum() > 0  # departure


def test_zero_initialised_hmmglm_keeps_its_states_identical():
    """Why hmmglm / gaussian depart from the paper's zeros: with them, EM never separates the states."""
    sim = simulate_switching_glm(n_states=2, n_neurons=4, n_sequences=2, n_bins=300, seed=4)
    model = build_model(4, HMMGLMConfig(variant="hmmglm", n_states=2, init_std=0.0)).double()
    fit_em(model, sim.spikes, n_iters=3, n_inner=5, lr=0.05)
    assert torch.equal(model.weights[0], model.weights[1])
    gamma = model.e_step(torch.tensor(sim.spikes, dtype=torch.float64)).posteriors
    assert torch.allclose(gamma, torch.full_like(gamma, 0.5))


def test_recipes_and_step_counts():
    paper = RECIPES["paper"]
    assert paper.n_adam_steps(30) == 10 * 30 * 50 and paper.n_e_steps(30) == 300
    assert paper.config["init_std"] == 0.0 and paper.config["prior_form"] == "concrete"
    (phase,) = paper.phases
    assert (phase.lr, phase.batch_size, phase.transition_update, phase.shuffle) == (0.01, 1, "batch", False)
    # the reference code's start, E-step floor and precision (benchmarks/onehot_reference.py runs it beside)
    assert paper.config["bias_init"] == "mean_count" and paper.dtype == "float32"
    assert phase.e_step_floor == pytest.approx(math.log(1e-16))
    # 2 restarts of 3 per-sequence epochs (3 x 30 x 5), the chosen one continued (7 x 30 x 5) and polished (4 x 25)
    assert RECIPES["default"].n_adam_steps(30) == 2 * 3 * 30 * 5 + 7 * 30 * 5 + 4 * 25
    assert RECIPES["default"].phases[-1].revive == (0.05, 0.1)
    with pytest.raises(Exception, match="recipe"):
        fit_recipe(torch.zeros(1, 20, 2), 2, recipe="nope")


def _truth(sim):
    truth = HMMGLM(sim.n_neurons, sim.n_states, self_connections=True).double()
    with torch.no_grad():
        truth.weights.copy_(torch.tensor(sim.weights)[..., None])
        truth.bias.copy_(torch.tensor(sim.bias))
        truth.transition_logits.copy_(torch.tensor(sim.transitions).log())
    return truth


@pytest.mark.parametrize("how", ["gaussian", "onehot_default"])
def test_simulate_fit_recover(how):
    """3 states, 8 neurons, 6 x 1000 training bins: states and types recovered close to the true model.

    Thresholds: the true parameters' decoder and read-out (upper references) minus 0.1 for finite-sample
    parameter error, as in ``test_fit.test_simulate_fit_recover_states``; the all-"none" predictor and
    the largest state's share (chance) are far below.
    """
    n_train = 6
    sim = simulate_switching_glm(n_states=3, n_neurons=8, n_sequences=n_train + 4, n_bins=1000, seed=1)
    train = torch.tensor(sim.spikes[:n_train], dtype=torch.float64)
    test, test_states = sim.spikes[n_train:], sim.states[n_train:]
    truth = evaluate_model(_truth(sim), test, test_states, sim.connection_types, train_spikes=train,
                           train_states=sim.states[:n_train])
    if how == "gaussian":
        model = build_model(8, HMMGLMConfig(variant="gaussian", n_states=3)).double()
        fit_em(model, train, n_iters=15, n_inner=25, lr=0.05)
    else:
        model, _ = fit_recipe(train, 3, recipe="default", seed=0)
    result = evaluate_model(model, test, test_states, sim.connection_types, train_spikes=train.to(model.bias.dtype),
                            train_states=sim.states[:n_train])
    chance = np.bincount(test_states.ravel()).max() / test_states.size
    none = connection_type_accuracy(sim.connection_types, np.zeros_like(sim.connection_types))
    assert result["state_accuracy"] >= truth["state_accuracy"] - 0.1 > chance
    assert result["type_accuracy"] >= truth["type_accuracy"] - 0.1
    assert result["type_accuracy"] > none
    assert state_accuracy(test_states, test_states) == 1.0


def test_fit_recipe_runs_phases_and_restores_the_m_step_mode():
    x = torch.poisson(torch.full((2, 60, 3), 0.3))
    recipe = Recipe(config=dict(variant="onehot"), phases=(EMPhase(1, 2, 0.05, batch_size=1),
                                                           EMPhase(1, 2, 0.05, m_step_mode="softmax")))
    model, histories = fit_recipe(x, 2, recipe=recipe, seed=3)
    assert len(histories) == 2 and model.m_step_mode == "gumbel" and model.bias.dtype == torch.float64
    assert all(np.isfinite(h.objective).all() for h in histories)
    glm, _ = fit_recipe(x, 1, recipe=Recipe(config=dict(variant="glm"), phases=(EMPhase(1, 3, 0.05),)))
    assert isinstance(glm, GLM)


def test_restarts_keep_the_fit_with_the_highest_training_objective():
    x = torch.poisson(torch.full((3, 80, 4), 0.4), generator=torch.Generator().manual_seed(0))
    one = Recipe(config=dict(variant="onehot"), phases=(EMPhase(2, 3, 0.1, batch_size=1),
                                                        EMPhase(1, 3, 0.02, m_step_mode="softmax")))
    three = replace(one, restarts=3)
    assert three.n_adam_steps(3) == 3 * one.n_adam_steps(3) and three.n_e_steps(3) == 3 * one.n_e_steps(3)
    runs = [fit_recipe(x, 2, recipe=one, seed=5 + r * RESTART_SEED_STEP) for r in range(3)]
    finals = [h[-1].objective[-1] for _, h in runs]
    assert len(set(finals)) == 3  # the restarts really differ
    model, histories = fit_recipe(x, 2, recipe=three, seed=5)
    best = runs[int(np.argmax(finals))]
    assert histories[-1].objective[-1] == max(finals)
    for name, value in best[0].state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name
    assert RECIPES["default"].restarts == 2
    with pytest.raises(Exception, match="restarts"):
        fit_recipe(x, 2, recipe=replace(one, restarts=0))


def test_a_recipe_forms_the_history_regressors_once_and_fits_as_if_each_phase_formed_them(monkeypatch):
    x = torch.poisson(torch.full((3, 80, 4), 0.4), generator=torch.Generator().manual_seed(1))
    recipe = Recipe(config=dict(variant="onehot"), phases=(EMPhase(1, 2, 0.1, batch_size=1),
                                                           EMPhase(1, 2, 0.05, m_step_mode="softmax")),
                    restarts=2, select_after=1)
    first, _ = fit_recipe(x, 2, recipe=recipe, seed=2)
    calls = []
    real = SwitchingGLM.history
    monkeypatch.setattr(SwitchingGLM, "history", lambda self, s: calls.append(1) or real(self, s))
    again, _ = fit_recipe(x, 2, recipe=recipe, seed=2)
    assert len(calls) == 1  # 2 restarts x phase 0, then phase 1: one set of regressors
    for name, value in first.state_dict().items():
        assert torch.equal(again.state_dict()[name], value), name
    # fit_em with the regressors given = formed inside; others' regressors are refused
    xd = x.double()
    a, b = (build_model(4, HMMGLMConfig(n_states=2, variant="hmmglm", seed=0)).double() for _ in range(2))
    fit_em(a, xd, n_iters=2, n_inner=3)
    with torch.no_grad():
        feats = b.history(xd)
    fit_em(b, xd, n_iters=2, n_inner=3, features=feats)
    for name, value in a.state_dict().items():
        assert torch.equal(b.state_dict()[name], value), name
    with pytest.raises(ValueError, match="history regressors"):
        fit_em(b, xd, n_iters=1, n_inner=1, features=feats[:, :-1])
    with pytest.raises(ValueError, match="history regressors"):
        fit_em(b, xd, n_iters=1, n_inner=1, features=feats.float())


def test_bias_init_mean_count_is_the_papers_start():
    x = torch.poisson(torch.full((2, 40, 3), 0.3, dtype=torch.float64), generator=torch.Generator().manual_seed(0))
    mean = x.reshape(-1, 3).mean(0)
    paper = HMMGLM(3, 2, bias_init="mean_count").double()
    paper.init_bias(x)
    assert torch.equal(paper.bias.detach(), mean)
    default = HMMGLM(3, 2).double()
    default.init_bias(x)  # inverse of the sigmoid link: the initial rate is the mean count
    torch.testing.assert_close(torch.sigmoid(default.bias.detach()) * (1 - 1e-8) + 1e-8, mean)
    with pytest.raises(Exception, match="bias_init"):
        HMMGLM(3, 2, bias_init="zeros")


def test_a_model_pickled_before_bias_init_existed_still_starts_its_bias():
    import io

    x = torch.poisson(torch.full((2, 40, 3), 0.3, dtype=torch.float64), generator=torch.Generator().manual_seed(0))
    model = HMMGLM(3, 2).double()
    del model.__dict__["bias_init"]  # as a model saved with torch.save before the option was added
    buf = io.BytesIO()
    torch.save(model, buf)
    old = torch.load(io.BytesIO(buf.getvalue()), weights_only=False)
    assert "bias_init" not in old.__dict__
    old.init_bias(x)  # the start it had then: the inverse link
    fresh = HMMGLM(3, 2).double()
    fresh.init_bias(x)
    assert torch.equal(old.bias, fresh.bias)


def test_e_step_floor_is_the_exact_e_step_of_clamped_emissions():
    """The paper code's floor: posteriors equal forward-backward on max(log p(x|s), floor); no floor: exact."""
    from neurodyn.models.hmmglm.inference import forward_backward

    gen = torch.Generator().manual_seed(3)
    model = HMMGLM(6, 3, init_std=2.0, seed=1).double()  # strong couplings: some log-emissions far below -12
    x = torch.poisson(torch.full((2, 60, 6), 0.8, dtype=torch.float64), generator=gen).clamp_max(1)
    log_em = model.log_emissions(x).detach()
    floor = -12.0
    assert (log_em < floor).any() and (log_em > floor).any()
    got = model.e_step(x, log_emission_floor=floor)
    want = forward_backward(model.log_initial(), model.log_transitions(), log_em.clamp_min(floor))
    torch.testing.assert_close(got.posteriors, want.posteriors, rtol=0, atol=1e-12)
    exact = model.e_step(x)
    assert (exact.posteriors - got.posteriors).abs().max() > 1e-3  # the floor matters here


def test_select_after_polishes_only_the_run_chosen_after_the_first_phases():
    """restarts=2, select_after=1: both runs do phase 0, the one with the higher objective then is polished;
    the same as running the two single runs' phase 0 by hand and continuing the better one."""
    x = torch.poisson(torch.full((4, 60, 3), 0.4), generator=torch.Generator().manual_seed(5))
    phases = (EMPhase(2, 2, 0.05, batch_size=1), EMPhase(1, 3, 0.02, batch_size=None, m_step_mode="softmax"))
    recipe = Recipe(config=dict(variant="onehot"), phases=phases, dtype="float64", restarts=2, select_after=1)
    assert recipe.n_adam_steps(4) == 2 * (2 * 4 * 2) + 1 * 3 and recipe.n_e_steps(4) == 2 * 2 * 4 + 1
    model, hist = fit_recipe(x, 2, recipe=recipe, seed=7)
    assert len(hist) == 2
    first = [fit_recipe(x, 2, recipe=replace(recipe, phases=phases[:1], restarts=1, select_after=None),
                        seed=7 + r * RESTART_SEED_STEP) for r in range(2)]
    best = max(range(2), key=lambda r: first[r][1][-1].objective[-1])
    assert hist[0].objective == first[best][1][0].objective
    polished = fit_recipe(x, 2, recipe=replace(recipe, restarts=1, select_after=None),
                          seed=7 + best * RESTART_SEED_STEP)
    assert hist[1].objective == polished[1][1].objective
    for a, b in zip(model.state_dict().values(), polished[0].state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(Exception, match="select_after"):
        fit_recipe(x, 2, recipe=replace(recipe, select_after=3))


def test_a_phase_with_revive_revives_the_chosen_restart_once(monkeypatch):
    """``EMPhase.revive`` runs ``revive_collapsed`` before its phase: once per fit with two restarts compared
    after the first phase (only the chosen run continues), never for a model without a one-hot prior."""
    from neurodyn.models.hmmglm.priors import OneHotPriorHMMGLM
    from neurodyn.models.hmmglm.recipes import EMPhase, Recipe

    calls = []
    real = OneHotPriorHMMGLM.revive_collapsed

    def spy(self, threshold, strength):
        calls.append((id(self), threshold, strength))
        return real(self, threshold, strength)

    monkeypatch.setattr(OneHotPriorHMMGLM, "revive_collapsed", spy)
    x = torch.poisson(torch.full((2, 60, 3), 0.4), generator=torch.Generator().manual_seed(0))
    phases = (EMPhase(1, 2, 0.05, batch_size=1), EMPhase(1, 2, 0.05, revive=(1e9, 0.1)))
    model, _ = fit_recipe(x, 2, recipe=Recipe(config=dict(variant="onehot"), phases=phases, restarts=2,
                                               select_after=1))
    assert calls == [(id(model), 1e9, 0.1)]
    fit_recipe(x, 2, recipe=Recipe(config=dict(variant="hmmglm"), phases=phases))
    assert len(calls) == 1


@pytest.mark.parametrize("bad", [(0.05,), (0.05, 0.0), (-1.0, 0.1), (0.05, True), "0.05,0.1"])
def test_revive_settings_are_checked(bad):
    from neurodyn.models.hmmglm.recipes import EMPhase

    with pytest.raises(Exception, match="revive"):
        EMPhase(1, 2, 0.05, revive=bad)
