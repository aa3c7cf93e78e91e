"""Scores of a fitted switching GLM against ground truth: the model's likelihoods, states and connection
types (:mod:`neurodyn.models.hmmglm`) scored with :mod:`neurodyn.metrics.states`.

It combines a model with metrics, so it lives above both floors.
"""

from __future__ import annotations

import numpy as np
import torch

from neurodyn.core.arrays import to_numpy
from neurodyn.errors import InputError
from neurodyn.metrics.states import (
    connection_type_accuracy,
    connection_type_f1,
    find_permutation,
    state_accuracy,
    weight_error,
)
from neurodyn.models.hmmglm.evaluate import marginal_log_likelihood, path_conditioned_log_likelihood, spikes_for
from neurodyn.models.hmmglm.models import SwitchingGLM
from neurodyn.models.hmmglm.readout import WALD_Z, coupling_arrays, read_out_types

__all__ = ["evaluate_model"]


def _states_of(states, x: torch.Tensor | None, field: str, spikes_field: str) -> np.ndarray | None:
    """``states`` as integer labels of the (sequences, bins) of ``x`` (the validated ``spikes_field``), or an
    InputError naming ``field`` (a shape that differs was 'predicted_states: 160 labels, true_states has 80')."""
    if states is None:
        return None
    array = to_numpy(states)
    expected = tuple(x.shape[:2])
    if array.shape == expected[1:] and expected[0] == 1:  # one sequence given as (bins,), as its spikes (bins, N)
        array = array[None]
    if array.shape != expected:
        raise InputError(f"shape {array.shape} does not match the (sequences, bins) of {spikes_field}, {expected}",
                         field=field)
    return array


def _true_state_count(model: SwitchingGLM, true_types, true_weights, states: np.ndarray | None,
                      states_field: str) -> int | None:
    """The number of true states ``true_types`` / ``true_weights`` hold (None when neither is given), after
    checking each is (states, N, N) for the model's N neurons, that both hold as many states, and that the labels
    of ``states`` are among them (a mismatch left every recovery score None without a word)."""
    n_true, first = None, None
    for field, value in (("true_types", true_types), ("true_weights", true_weights)):
        if value is None:
            continue
        shape = tuple(np.shape(to_numpy(value)))
        n = model.n_neurons
        if len(shape) != 3 or shape[1:] != (n, n) or shape[0] < 1:
            raise InputError(f"shape {shape} does not match (states, {n}, {n}) (the model's {n} neurons)", field=field)
        if n_true is not None and shape[0] != n_true:
            raise InputError(f"{shape[0]} states, {first} {n_true}: the same true states expected", field=field)
        n_true, first = shape[0], field
        if states is not None and states.size and int(states.max()) >= shape[0]:
            raise InputError(f"{shape[0]} state{'s' * (shape[0] != 1)}, but {states_field} holds labels up to "
                             f"{int(states.max())}", field=field)
    return n_true


@torch.no_grad()
def evaluate_model(
    model: SwitchingGLM,
    spikes,
    true_states=None,
    true_types=None,
    true_weights=None,
    train_spikes=None,
    train_states=None,
    readout_z: float = WALD_Z,
) -> dict:
    """Test metrics, and recovery metrics when ground truth is given.

    Parameters
    ----------
    model : SwitchingGLM
    spikes : (B, T, N) test counts
    true_states : (B, T), optional
        True states of ``spikes``; the state permutation is matched on these.
    true_types : (S, N, N), optional
        True connection types in {-1, 0, 1}, scored off-diagonal only unless the model learns
        self-connections. Every model's types come from the same rule,
        :func:`~neurodyn.models.hmmglm.readout.read_out_types` (Wald test, ``z`` fixed in advance,
        standard errors from ``train_spikes``), so they need ``train_spikes``; the one-hot prior's
        own ``argmax`` types (the paper code's read-out) are scored as well.
    true_weights : (S, N, N), optional
        True couplings (summed over basis functions). ``weight_error`` is the mean squared error of the
        couplings the model reports, those every file of it holds as ``coupling``
        (:func:`~neurodyn.models.hmmglm.readout.reported_couplings`; one-hot prior: each entry's most
        probable type times its strength); ``weight_error_softmax`` (one-hot prior only) that of the softmax
        mixture its likelihoods use (the files' ``coupling_softmax``).
    train_spikes, train_states : optional
        Training data: the read-out's standard errors come from ``train_spikes``; with
        ``train_states`` the state permutation is found on the training data instead of ``spikes``.
    readout_z : float
        ``z`` of the read-out (default :data:`~neurodyn.models.hmmglm.readout.WALD_Z`).

    Returns
    -------
    dict
        ``test_ll`` (marginal per spike), ``test_ll_per_bin``, ``path_ll`` (per spike),
        ``state_accuracy``, ``type_accuracy`` and ``type_f1`` (macro over {inh, none, exc}) of the
        common read-out, ``type_accuracy_argmax`` and ``type_f1_argmax`` (one-hot prior only),
        ``weight_error`` (reported couplings), ``weight_error_softmax`` (one-hot prior only),
        ``permutation`` (true state -> model state, one entry per true state; None where not applicable) and
        ``n_unmatched_states``, the model states matched to no true state (None where no matching is made). The
        recovery scores are None without the truth they need (``true_states`` for a model of several states), or
        where the model has fewer states than ``true_types`` / ``true_weights`` (several true states would share
        one model state's couplings; a one-state model stands for every true state and is scored).

        A model of more states than the truth (``K = 6`` fitted to a 5-state simulation) is scored on the best
        one-to-one matching of its states to the true ones: the assignment that maximises the bins where the
        matched labels agree on the rectangular (true x model) confusion counts
        (:func:`~neurodyn.metrics.states.find_permutation`, ``scipy.optimize.linear_sum_assignment``). Its extra
        states are matched to no true state: their bins count as errors in ``state_accuracy`` (the same best
        matching, made on ``spikes``), their couplings and types are left out of ``type_*`` and ``weight_error*``
        (those score each true state against its matched model state), and ``n_unmatched_states`` counts them.
        The number of true states is that of ``true_types`` / ``true_weights``, else the largest label of
        ``true_states`` (and ``train_states``) plus one.

    Raises
    ------
    InputError
        Naming the argument: ``true_states`` / ``train_states`` of another (sequences, bins) shape than
        ``spikes`` / ``train_spikes`` (``train_states`` without ``train_spikes``); ``true_types`` /
        ``true_weights`` not (states, N, N) for the model's N neurons, of different numbers of states, or of
        fewer states than the labels of the true states.
    """
    x = spikes_for(model, spikes)
    if train_states is not None and train_spikes is None:
        raise InputError("given without train_spikes (the states of which sequences?)", field="train_states")
    train_x = None if train_spikes is None else spikes_for(model, train_spikes)
    true_states = _states_of(true_states, x, "true_states", "spikes")
    train_states = _states_of(train_states, train_x, "train_states", "train_spikes")
    n_true = _true_state_count(model, true_types, true_weights,
                               true_states if train_states is None else train_states,
                               "true_states" if train_states is None else "train_states")
    marginal = marginal_log_likelihood(model, x)
    out = {
        "test_ll": marginal["per_spike"],
        "test_ll_per_bin": marginal["per_bin"],
        "path_ll": path_conditioned_log_likelihood(model, x)["per_spike"],
        "state_accuracy": None,
        "type_accuracy": None,
        "type_f1": None,
        "type_accuracy_argmax": None,
        "type_f1_argmax": None,
        "weight_error": None,
        "weight_error_softmax": None,
        "permutation": None,
        "n_unmatched_states": None,
    }
    perm = None
    if true_states is not None and model.n_states > 1:
        ref_x, ref_states = (x, true_states) if train_states is None else (train_x, train_states)
        pred = model.e_step(ref_x).posteriors.argmax(-1).cpu().numpy()
        labelled = max(int(np.max(states, initial=-1)) + 1 for states in (true_states, ref_states))
        n_truth = n_true if n_true is not None else labelled
        n = max(model.n_states, n_truth, int(np.max(ref_states)) + 1)
        # square counts padded with empty rows or columns: its best assignment restricted to the true states (rows)
        # is the best one-to-one matching of the rectangular counts, an empty row adding nothing whatever it takes
        perm = find_permutation(ref_states, pred, n_states=n)[:n_truth]
        test_pred = model.e_step(x).posteriors.argmax(-1).cpu().numpy()
        out["state_accuracy"] = state_accuracy(true_states, test_pred, n_states=n)
        out["permutation"] = perm.tolist()
    elif model.n_states == 1 and n_true is not None:
        perm = np.zeros(n_true, dtype=np.int64)  # one state stands for every true state
    if perm is not None and perm.max() >= model.n_states:
        perm = None  # more true states than model states: per-state recovery undefined
    if perm is not None:
        out["n_unmatched_states"] = int(model.n_states - len(np.unique(perm)))
    mask = None if model.self_connections else ~np.eye(model.n_neurons, dtype=bool)
    if mask is not None and not mask.any():  # one neuron, no self-coupling: no coupling to score (None)
        perm = None
    if true_types is not None and perm is not None and perm.shape[0] == np.asarray(true_types).shape[0]:
        if train_x is not None:
            est = read_out_types(model, train_x, z=readout_z).cpu().numpy()
            out["type_accuracy"] = connection_type_accuracy(true_types, est, perm, mask)
            out["type_f1"] = connection_type_f1(true_types, est, perm, mask)
        if hasattr(model, "connection_types"):
            est = model.connection_types().cpu().numpy()
            out["type_accuracy_argmax"] = connection_type_accuracy(true_types, est, perm, mask)
            out["type_f1_argmax"] = connection_type_f1(true_types, est, perm, mask)
    if true_weights is not None and perm is not None and perm.shape[0] == np.asarray(true_weights).shape[0]:
        couplings = coupling_arrays(model)[0]  # the arrays every file of the model holds, by their names
        out["weight_error"] = weight_error(true_weights, couplings["coupling"].cpu().numpy(), perm, mask)
        if "coupling_softmax" in couplings:  # one-hot prior: the softmax mixture its likelihoods use
            out["weight_error_softmax"] = weight_error(true_weights, couplings["coupling_softmax"].cpu().numpy(),
                                                       perm, mask)
    return out
