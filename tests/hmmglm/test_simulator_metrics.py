"""Switching-GLM simulator, its HDF5 round trip and CLI hooks; state-matching metrics; export."""

from __future__ import annotations

import argparse
import itertools
import re

import h5py
import numpy as np
import pytest
import torch

from neurodyn.data.synthetic.switching_glm import (
    add_cli_arguments,
    read_switching_glm_h5,
    run_cli,
    simulate_switching_glm,
    write_switching_glm_h5,
)
from neurodyn.errors import InputError
from neurodyn.metrics.states import (
    connection_type_accuracy,
    connection_type_f1,
    find_permutation,
    overlap_matrix,
    permute_states,
    state_accuracy,
    weight_error,
)
from neurodyn.models.hmmglm import HMMGLM, HMMGLMConfig, build_model
from neurodyn.models.hmmglm.evaluate import export_model_h5, path_conditioned_log_likelihood
from neurodyn.training.hmmglm_scores import evaluate_model


def test_simulator_structure_and_reproducibility():
    sim = simulate_switching_glm(n_states=3, n_neurons=6, n_sequences=4, n_bins=300, seed=7)
    assert sim.spikes.shape == (4, 300, 6) and sim.states.shape == (4, 300)
    assert set(np.unique(sim.connection_types)) <= {-1, 0, 1}
    assert np.allclose(sim.weights, sim.connection_types * sim.strengths)
    assert ((sim.strengths > 0) & (sim.strengths < np.log(4))).all()
    assert np.allclose(sim.transitions.sum(1), 1) and np.allclose(np.diag(sim.transitions), 0.98)
    assert np.allclose(sim.prior.sum(-1), 1) and (np.abs(sim.bias) <= 0.05).all()
    again = simulate_switching_glm(n_states=3, n_neurons=6, n_sequences=4, n_bins=300, seed=7)
    assert np.array_equal(sim.spikes, again.spikes) and np.array_equal(sim.states, again.states)
    other = simulate_switching_glm(n_states=3, n_neurons=6, n_sequences=4, n_bins=300, seed=8)
    assert not np.array_equal(sim.spikes, other.spikes)


def test_first_state_option():
    # reference bug: first state drawn from row 0 of P (state 0 w.p. 0.98). With 400 sequences the
    # count of state 0 is Binomial(400, 0.98) (mean 392, sd 2.8) vs Binomial(400, 1/3) when uniform.
    ref = simulate_switching_glm(
        n_states=3, n_neurons=2, n_sequences=400, n_bins=6, seed=0, first_state="reference"
    )
    uni = simulate_switching_glm(n_states=3, n_neurons=2, n_sequences=400, n_bins=6, seed=0)
    assert (ref.states[:, 0] == 0).sum() >= 392 - 5 * 2.8
    assert abs((uni.states[:, 0] == 0).sum() - 400 / 3) <= 5 * np.sqrt(400 * 2 / 9)


def test_simulator_agrees_with_model_likelihood():
    """Σ_t (x_t - λ_t) under the true states is a martingale with variance Σ λ (Poisson)."""
    sim = simulate_switching_glm(n_states=3, n_neurons=8, n_sequences=4, n_bins=1000, seed=1)
    model = HMMGLM(8, 3, self_connections=True).double()
    with torch.no_grad():
        model.weights.copy_(torch.tensor(sim.weights)[..., None])
        model.bias.copy_(torch.tensor(sim.bias))
    x = torch.tensor(sim.spikes, dtype=torch.float64)
    with torch.no_grad():
        rates = model.rates(x)
    lam = rates.gather(2, torch.tensor(sim.states)[:, :, None, None].expand(-1, -1, 1, 8)).squeeze(2)
    z = (x - lam).sum((0, 1)) / lam.sum((0, 1)).sqrt()
    assert (z.abs() < 5).all(), z  # 5 sd per neuron: false-alarm probability < 8 * 6e-7
    # a model with the [pre, post] convention (transposed weights) is clearly worse
    with torch.no_grad():
        model.weights.copy_(torch.tensor(sim.weights).transpose(1, 2)[..., None])
        lam_t = (
            model.rates(x)
            .gather(2, torch.tensor(sim.states)[:, :, None, None].expand(-1, -1, 1, 8))
            .squeeze(2)
        )
    true_ll = (x * lam.log() - lam).sum()
    assert true_ll > (x * lam_t.log() - lam_t).sum()


def test_h5_round_trip_and_cli(tmp_path, capsys):
    sim = simulate_switching_glm(n_states=2, n_neurons=3, n_sequences=2, n_bins=40, seed=0)
    path = write_switching_glm_h5(tmp_path / "sim.h5", sim)
    back = read_switching_glm_h5(path)
    for name in ("spikes", "states", "weights", "connection_types", "prior", "transitions"):
        assert np.array_equal(getattr(back, name), getattr(sim, name))
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind
    parser = argparse.ArgumentParser()
    add_cli_arguments(parser)
    args = parser.parse_args(
        [
            "--out",
            str(tmp_path / "cli.h5"),
            "--n-states",
            "2",
            "--n-neurons",
            "3",
            "--n-sequences",
            "2",
            "--n-bins",
            "30",
            "--seed",
            "3",
            "--no-progress",
        ]
    )
    assert run_cli(args) == 0
    assert read_switching_glm_h5(tmp_path / "cli.h5").spikes.shape == (2, 30, 3)
    assert "wrote" in capsys.readouterr().out
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(InputError, match="format"):
        read_switching_glm_h5(tmp_path / "other.h5")
    with pytest.raises(InputError, match="no such file"):
        read_switching_glm_h5(tmp_path / "missing.h5")
    with pytest.raises(InputError, match="n_states"):
        simulate_switching_glm(n_states=0)


def test_hungarian_matching_equals_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(20):
        true = rng.integers(0, 4, 60)
        pred = rng.integers(0, 4, 60)
        best = max(np.mean(np.array(p)[pred] == true) for p in itertools.permutations(range(4)))
        assert np.isclose(state_accuracy(true, pred, 4), best)
    relabel = np.array([2, 0, 3, 1])
    true = rng.integers(0, 4, 100)
    perm = find_permutation(true, relabel[true])
    assert np.array_equal(perm, relabel) and state_accuracy(true, relabel[true]) == 1.0
    weights = rng.normal(size=(4, 3, 3))
    est = np.empty_like(weights)
    est[relabel] = weights  # model state relabel[i] holds true state i
    assert np.allclose(permute_states(est, perm), weights)
    assert weight_error(weights, est, perm) == 0.0
    types = rng.integers(-1, 2, (4, 3, 3))
    est_types = np.empty_like(types)
    est_types[relabel] = types
    assert connection_type_accuracy(types, est_types, perm) == 1.0


def test_evaluate_and_export(tmp_path):
    sim = simulate_switching_glm(n_states=2, n_neurons=4, n_sequences=2, n_bins=80, seed=5)
    model = build_model(4, HMMGLMConfig(variant="onehot", n_states=2)).double()
    result = evaluate_model(model, sim.spikes, sim.states, sim.connection_types, sim.weights, train_spikes=sim.spikes)
    x = torch.tensor(sim.spikes, dtype=torch.float64)
    total = float(model.marginal_log_likelihood(x).sum().detach())
    assert np.isclose(result["test_ll"], total / sim.spikes.sum())
    path_ll = path_conditioned_log_likelihood(model, x)
    manual = float(model.log_emissions(x).gather(-1, path_ll["path"].unsqueeze(-1)).sum().detach())
    assert np.isclose(path_ll["total"], manual)
    assert 0 <= result["state_accuracy"] <= 1 and 0 <= result["type_accuracy"] <= 1
    assert 0 <= result["type_accuracy_argmax"] <= 1  # the one-hot prior's own argmax read-out
    assert evaluate_model(model, sim.spikes, sim.states, sim.connection_types)["type_accuracy"] is None  # no train data
    out = export_model_h5(tmp_path / "model.h5", model, spikes=x, permutation=result["permutation"])
    with h5py.File(out) as f:
        assert f["coupling"].shape == (2, 4, 4) and f["posteriors"].shape == (2, 80, 2)
        assert f["connectome"].shape == (4, 4, 3) and f["connection_types_argmax"].shape == (2, 4, 4)
        assert "connection_types" not in f  # the read-out needs the training data: none given
        assert np.allclose(f["transitions"][()].sum(1), 1)


def _perturbed(model):
    """``model`` with random couplings (one-hot: random type logits, so its hard and softmax couplings differ)."""
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim >= 3:  # couplings, type and strength logits
                p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


@pytest.mark.parametrize("variant", ["glm", "hmmglm", "gaussian", "onehot"])
def test_export_writes_the_read_out_types_of_every_variant(tmp_path, variant):
    """export_model_h5 wrote `connection_types` = the one-hot prior's argmax - 1 (and nothing for the other
    variants) while `neurodyn predict` wrote the Wald read-out under that name. With the training spikes it
    now writes the read-out for every variant; the argmax types go under `connection_types_argmax`."""
    from neurodyn.models.hmmglm.readout import (
        CONNECTION_TYPES_ARGMAX_DEFINITION,
        connection_types_definition,
        read_out_types,
    )

    sim = simulate_switching_glm(n_states=2, n_neurons=4, n_sequences=3, n_bins=200, seed=5)
    train = torch.tensor(sim.spikes[:2], dtype=torch.float64)
    model = _perturbed(build_model(4, HMMGLMConfig(variant=variant, n_states=2)).double())
    perm = [1, 0] if model.n_states == 2 else None
    out = export_model_h5(tmp_path / "model.h5", model, permutation=perm, train_spikes=train)
    expected = read_out_types(model, train).numpy()
    expected = expected if perm is None else expected[perm]  # the file is in the true order
    with h5py.File(out) as f:
        np.testing.assert_array_equal(f["connection_types"][()], expected)
        assert f.attrs["connection_types_definition"] == connection_types_definition()
        if variant == "onehot":
            argmax = model.connection_types().numpy()[perm]
            np.testing.assert_array_equal(f["connection_types_argmax"][()], argmax)
            assert not np.array_equal(argmax, expected)  # two rules, two names
            assert f.attrs["connection_types_argmax_definition"] == CONNECTION_TYPES_ARGMAX_DEFINITION
        else:
            assert "connection_types_argmax" not in f and "connection_types_argmax_definition" not in f.attrs


def test_weight_error_is_the_error_of_the_reported_couplings(tmp_path):
    """evaluate_model's weight_error came from the softmax mixture for the one-hot prior, while every file's
    `coupling` holds the hard types x strength: the score was not the error of what is reported. Now
    weight_error is the error of the file's `coupling`, weight_error_softmax that of `coupling_softmax`."""
    sim = simulate_switching_glm(n_states=2, n_neurons=4, n_sequences=3, n_bins=200, seed=5)
    train = torch.tensor(sim.spikes[:2], dtype=torch.float64)
    model = _perturbed(build_model(4, HMMGLMConfig(variant="onehot", n_states=2, self_connections=False)).double())
    result = evaluate_model(model, sim.spikes[2:], sim.states[2:], sim.connection_types, sim.weights,
                            train_spikes=train, train_states=sim.states[:2])
    out = export_model_h5(tmp_path / "model.h5", model, permutation=result["permutation"], train_spikes=train)
    off = ~np.eye(4, dtype=bool)  # no self-connections learned: scored off the diagonal
    with h5py.File(out) as f:  # the file is in the true state order
        reported, softmax = f["coupling"][()], f["coupling_softmax"][()]
    assert not np.allclose(reported, softmax)
    for key, coupling in (("weight_error", reported), ("weight_error_softmax", softmax)):
        independent = float(np.mean((sim.weights - coupling)[:, off] ** 2))
        assert result[key] == pytest.approx(independent, rel=1e-12), key
    hmm = _perturbed(build_model(4, HMMGLMConfig(variant="hmmglm", n_states=2)).double())
    scores = evaluate_model(hmm, sim.spikes[2:], sim.states[2:], sim.connection_types, sim.weights,
                            train_spikes=train, train_states=sim.states[:2])
    assert scores["weight_error"] is not None and scores["weight_error_softmax"] is None  # one set of couplings


@pytest.mark.parametrize(("true", "predicted", "field", "message"), [
    ([0, -1, 1], [0, 1, 1], "true_states", "negative state labels (min -1)"),
    ([0, 0, 1, 2], [0, 0, 1, -1], "predicted_states", "negative state labels (min -1)"),
    ([0.5, 1.2], [0, 1], "true_states", "non-integer state labels"),
    (np.array([0, np.nan]), [0, 1], "true_states", "1 NaN or infinite state labels"),
    ([0, 1, 1], [0, 1], "predicted_states", "2 labels, true_states has 3"),
])
def test_state_labels_that_are_not_states_are_refused(true, predicted, field, message):
    """-1 (an 'unassigned bin' code) was counted as the last state through negative indexing and 0.5 as
    state 0: state_accuracy([0, -1, 1], [0, 1, 1]) was 1.0 (helper-50); NaN was an IndexError."""
    for metric in (state_accuracy, overlap_matrix, find_permutation):
        with pytest.raises(InputError, match=re.escape(message)) as err:
            metric(true, predicted)
        assert err.value.field == field


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"self_transition": 1.5}, "self_transition"),  # negative transition probabilities, states still drawn
    ({"n_states": 2.5}, "n_states"),                 # silently 2 states
    ({"sparsity": float("nan")}, "sparsity"),        # accepted
    ({"sparsity": -0.5}, "sparsity"),                # numpy's 'alpha < 0'
    ({"decay": -1.0}, "decay"),                      # a reversed basis: lag 5 heaviest
    ({"seed": None}, "seed"),                        # a TypeError after the whole simulation
    ({"n_lags": 0}, "n_lags"),
])
def test_simulator_parameters_it_cannot_simulate_are_refused(kwargs, field):
    """simulate_switching_glm took these to nonsense or to a late numpy / Python error (helper-50)."""
    with pytest.raises(InputError) as err:
        simulate_switching_glm(**{"n_states": 2, "n_neurons": 3, "n_sequences": 1, "n_bins": 10, **kwargs})
    assert err.value.field == field


def test_recovery_metrics_name_a_mismatched_estimate():
    """Shape mismatches were numpy IndexErrors ('boolean index did not match', 'too many indices'), a
    permutation out of range an IndexError (helper-50)."""
    three, four = np.zeros((2, 3, 3)), np.zeros((2, 4, 4))
    cases = [(connection_type_accuracy, (three, four), "estimated_types: shape (2, 4, 4) does not match"),
             (weight_error, (three, np.zeros((3, 3))), "estimated_weights: shape (3, 3) does not match"),
             (connection_type_accuracy, (three, three, [0, 5]), "permutation: a permutation of 2 model states"),
             (weight_error, (three, three, None, np.ones((4, 4))), "mask: shape (4, 4) does not fit")]
    for metric, args, message in cases:
        with pytest.raises(InputError, match=re.escape(message)):
            metric(*args)
    # a model with more states than the truth, matched by a permutation, is scored on the matched states
    assert connection_type_accuracy(three, np.zeros((3, 3, 3)), [2, 0]) == 1.0


@pytest.mark.parametrize(("metric", "args", "field"), [
    (state_accuracy, ([], []), "true_states"),                                    # 0.0
    (state_accuracy, (np.zeros((0, 5), int), np.zeros((0, 5), int)), "true_states"),
    (connection_type_accuracy, (np.zeros((2, 3, 3)), np.zeros((2, 3, 3)), None, np.zeros((3, 3), bool)),
     "mask"),                                                                     # nan + 'Mean of empty slice'
    (connection_type_f1, (np.zeros((2, 3, 3)), np.zeros((2, 3, 3)), None, np.zeros((3, 3), bool)), "mask"),
    (weight_error, (np.zeros((2, 3, 3)), np.zeros((2, 3, 3)), None, np.zeros((3, 3), bool)), "mask"),
    (weight_error, (np.full((2, 3, 3), np.nan), np.zeros((2, 3, 3))), "true_weights"),  # nan
    (connection_type_accuracy, (np.zeros((2, 3, 3)), np.full((2, 3, 3), 0.5)), "estimated_types"),  # 0.0
    (connection_type_f1, (np.full((2, 3, 3), 2), np.zeros((2, 3, 3))), "true_types"),
])
def test_recovery_metrics_refuse_nothing_to_score_and_values_that_are_not_scores(metric, args, field):
    """No bins gave a state accuracy of 0.0, a mask selecting nothing nan with numpy's 'Mean of empty slice'
    (sklearn's 'Found empty input array' for the F1), NaN true couplings a weight error of nan and types outside
    {-1, 0, +1} an accuracy as if they were types: each is now one InputError naming the argument."""
    with pytest.raises(InputError) as err:
        metric(*args)
    assert err.value.field == field, str(err.value)


def test_a_diverged_fit_gets_a_weight_error_of_nan_not_a_refusal():
    """Non-finite estimated weights are a fit that diverged, not bad input: the benchmarks loop over fits and
    record each one's scores, so weight_error gives nan / inf there (the review of the refusal of non-finite
    couplings found it would end a benchmark run at the first diverged fit)."""
    truth = np.zeros((2, 3, 3))
    assert np.isnan(weight_error(truth, np.full((2, 3, 3), np.nan)))
    assert weight_error(truth, np.full((2, 3, 3), np.inf)) == np.inf


def test_evaluate_model_refuses_truth_of_other_sizes_naming_the_argument():
    """evaluate_model scored true_types / true_weights of another number of states than true_states holds as None
    without a word, and a true_states of another shape than spikes was 'predicted_states: 160 labels, true_states
    has 80' (an array the caller never passed). Each is now one InputError naming the argument."""
    sim = simulate_switching_glm(n_states=2, n_neurons=4, n_sequences=2, n_bins=80, seed=5)
    model = build_model(4, HMMGLMConfig(variant="onehot", n_states=2)).double()
    types, weights = sim.connection_types, sim.weights
    one_state = dict(true_types=types[:1]), dict(true_weights=weights[:1])
    for kwargs in one_state:  # true_states labels 0 and 1: two true states at least
        (field,) = kwargs
        with pytest.raises(InputError, match="1 state, but true_states holds labels up to 1") as err:
            evaluate_model(model, sim.spikes, sim.states, train_spikes=sim.spikes, **kwargs)
        assert err.value.field == field
    with pytest.raises(InputError, match=r"3 states, true_types 2") as err:
        evaluate_model(model, sim.spikes, sim.states, types, np.concatenate([weights, weights[:1]]))
    assert err.value.field == "true_weights"
    with pytest.raises(InputError, match=r"shape \(2, 5, 5\) does not match \(states, 4, 4\)") as err:
        evaluate_model(model, sim.spikes, sim.states, np.zeros((2, 5, 5)))
    assert err.value.field == "true_types"
    for states, field, kwargs in [(sim.states[:, :40], "true_states", {}), (sim.states[:1], "true_states", {}),
                                  (sim.states[:, :3], "train_states", dict(train_spikes=sim.spikes))]:
        call = dict(true_states=sim.states, **kwargs)
        call[field] = states
        with pytest.raises(InputError, match=r"shape \(\d, \d+\) does not match the \(sequences, bins\) of") as err:
            evaluate_model(model, sim.spikes, **call)
        assert err.value.field == field
    with pytest.raises(InputError, match="train_spikes") as err:
        evaluate_model(model, sim.spikes, sim.states, train_states=sim.states)
    # the truth as it is, and one true state more than the labels show (a state no bin visits), still score
    result = evaluate_model(model, sim.spikes, sim.states, types, weights, train_spikes=sim.spikes)
    assert result["type_accuracy"] is not None and result["weight_error"] is not None
    three = build_model(4, HMMGLMConfig(variant="onehot", n_states=3)).double()
    result = evaluate_model(three, sim.spikes, sim.states, np.concatenate([types, types[:1]]),
                            np.concatenate([weights, weights[:1]]), train_spikes=sim.spikes)
    assert result["type_accuracy"] is not None and result["weight_error"] is not None
    assert evaluate_model(model, sim.spikes[:, :40], sim.states[:, :40])["state_accuracy"] is not None


def _best_injections(true_states, predicted, n_true: int, n_model: int) -> tuple[int, list[tuple[int, ...]]]:
    """Exact oracle: the most bins any one-to-one map of the true states into the model states (an injection,
    ``inj[i]`` the model state of true state ``i``) makes agree, and every injection that makes that many agree."""
    counts = np.zeros((n_true, n_model), dtype=np.int64)
    np.add.at(counts, (np.ravel(true_states), np.ravel(predicted)), 1)
    agree = {inj: int(counts[np.arange(n_true), list(inj)].sum())
             for inj in itertools.permutations(range(n_model), n_true)}
    best = max(agree.values())
    return best, [inj for inj, a in agree.items() if a == best]


def test_matching_more_model_states_than_true_ones_is_the_best_injection():
    """Guard of the matching evaluate_model uses for a model of more states than the truth (passes before and
    after): find_permutation on the square counts padded to the model's states, cut to the true states, is an
    injection that makes as many bins agree as the best of all injections (brute force), and state_accuracy is that
    many bins over all of them (the extra states' bins errors)."""
    rng = np.random.default_rng(0)
    for n_true, n_model in [(1, 3), (2, 3), (2, 5), (3, 4), (3, 6)]:
        for _ in range(20):
            true = rng.integers(0, n_true, 60)
            pred = rng.integers(0, n_model, 60)
            best, argmax = _best_injections(true, pred, n_true, n_model)
            perm = find_permutation(true, pred, n_states=n_model)[:n_true]
            assert len(set(perm.tolist())) == n_true and perm.max() < n_model  # one-to-one into the model states
            assert int((perm[true] == pred).sum()) == best
            assert tuple(perm.tolist()) in argmax
            assert state_accuracy(true, pred, n_states=n_model) == best / true.size


def _truth_with_an_extra_state(sim):
    """A 3-state HMM-GLM that holds the 2-state simulation's states as model states 2 (true 0) and 1 (true 1), and
    an extra state 0 with true state 0's couplings reversed, entered from either with probability 0.05."""
    (p00, p01), (p10, p11) = sim.transitions
    transitions = np.array([[0.9, 0.05, 0.05], [0.05 * p11, 0.95 * p11, p10], [0.05 * p00, p01, 0.95 * p00]])
    model = HMMGLM(sim.n_neurons, 3, self_connections=True).double()
    with torch.no_grad():
        model.weights.copy_(torch.tensor(np.stack([-sim.weights[0], sim.weights[1], sim.weights[0]]))[..., None])
        model.bias.copy_(torch.tensor(sim.bias))
        model.transition_logits.copy_(torch.tensor(transitions).log())
    return model


def test_a_model_of_more_states_than_the_truth_is_scored_on_the_best_one_to_one_matching():
    """evaluate_model gave None type and weight scores for a model of more states than the truth (K=6 fitted to a
    5-state simulation): the square permutation it matched on held the extra states too, and its length was not
    the truth's. The model is now scored on the best injection of the true states into its states (checked against
    brute force over all of them), its extra state unmatched and counted; the scores are those of the metrics
    given that injection."""
    from neurodyn.models.hmmglm.readout import read_out_types

    sim = simulate_switching_glm(n_states=2, n_neurons=4, n_sequences=6, n_bins=400, seed=3)
    model = _truth_with_an_extra_state(sim)
    train, test = torch.tensor(sim.spikes[:4], dtype=torch.float64), sim.spikes[4:]
    train_states, test_states = sim.states[:4], sim.states[4:]
    result = evaluate_model(model, test, test_states, sim.connection_types, sim.weights, train_spikes=train,
                            train_states=train_states)
    with torch.no_grad():
        train_pred = model.e_step(train).posteriors.argmax(-1).numpy()
        test_pred = model.e_step(torch.tensor(test, dtype=torch.float64)).posteriors.argmax(-1).numpy()
    assert (train_pred == 0).any() and (test_pred == 0).any()  # the extra state decodes some bins: they are errors
    _, argmax = _best_injections(train_states, train_pred, 2, 3)  # the matching: on the training data
    assert argmax == [(2, 1)]  # one best injection, the construction's
    assert result["permutation"] == [2, 1] and result["n_unmatched_states"] == 1
    best_test, _ = _best_injections(test_states, test_pred, 2, 3)
    assert result["state_accuracy"] == best_test / test_states.size
    mask = ~np.eye(4, dtype=bool) if not model.self_connections else None
    est = read_out_types(model, train).numpy()
    assert result["type_accuracy"] == connection_type_accuracy(sim.connection_types, est, [2, 1], mask)
    assert result["type_f1"] == connection_type_f1(sim.connection_types, est, [2, 1], mask)
    assert result["weight_error"] == weight_error(sim.weights, model.weights.detach().sum(-1).numpy(), [2, 1], mask)
    assert result["weight_error"] == pytest.approx(0.0, abs=0)  # the true couplings, matched to the true states
    # the same truth with as many model states: nothing unmatched; fewer: no per-state scores, as before
    same = evaluate_model(_truth(sim), test, test_states, sim.connection_types, sim.weights, train_spikes=train,
                          train_states=train_states)
    assert same["n_unmatched_states"] == 0 and same["permutation"] == [0, 1]
    assert same["type_accuracy"] == connection_type_accuracy(sim.connection_types,
                                                             read_out_types(_truth(sim), train).numpy(), None, mask)
    fewer = evaluate_model(_truth(sim), test, np.where(test_states == 1, 2, test_states),
                           np.concatenate([sim.connection_types, sim.connection_types[:1]]), train_spikes=train)
    assert fewer["type_accuracy"] is None and fewer["n_unmatched_states"] is None


def _truth(sim):
    truth = HMMGLM(sim.n_neurons, sim.n_states, self_connections=True).double()
    with torch.no_grad():
        truth.weights.copy_(torch.tensor(sim.weights)[..., None])
        truth.bias.copy_(torch.tensor(sim.bias))
        truth.transition_logits.copy_(torch.tensor(sim.transitions).log())
    return truth
