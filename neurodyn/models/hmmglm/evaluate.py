"""Evaluation and export for fitted switching GLMs.

Two test log-likelihoods are reported:

* **marginal** ``log p(X)`` by the forward algorithm (the proper held-out likelihood), per spike
  (``Σ_b log p(X_b) / Σ spikes``) and per bin (``/ (B·T)``, summed over neurons), in nats;
* the paper code's **path-conditioned** value ``Σ_{t,n} log p(x_{t,n} | ẑ_t)`` along the decoded path
  ``ẑ_t = argmax_s γ_t(s)`` (or Viterbi), which is not a likelihood of the data alone.

Recovery against ground truth uses :mod:`neurodyn.metrics.states` after Hungarian matching.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from neurodyn.metrics.states import (
    connection_type_accuracy,
    connection_type_f1,
    find_permutation,
    permute_states,
    state_accuracy,
    weight_error,
)
from neurodyn.models.hmmglm.emissions import validate_spikes
from neurodyn.models.hmmglm.inference import viterbi
from neurodyn.models.hmmglm.models import SwitchingGLM
from neurodyn.models.hmmglm.readout import WALD_Z, read_out_types

__all__ = ["marginal_log_likelihood", "path_conditioned_log_likelihood", "evaluate_model", "export_model_h5"]


def _spikes(model: SwitchingGLM, spikes) -> torch.Tensor:
    return validate_spikes(spikes, n_lags=model.n_lags, emission=model.emission, dtype=model.bias.dtype).to(
        model.bias.device
    )


@torch.no_grad()
def marginal_log_likelihood(model: SwitchingGLM, spikes) -> dict:
    """Marginal test log-likelihood: ``{"total", "per_spike", "per_bin"}`` in nats.

    Examples
    --------
    >>> import torch
    >>> from neurodyn.models.hmmglm import HMMGLM
    >>> x = torch.poisson(torch.full((2, 40, 3), 0.5))
    >>> sorted(marginal_log_likelihood(HMMGLM(3, n_states=2), x))
    ['per_bin', 'per_spike', 'total']
    """
    x = _spikes(model, spikes)
    total = float(model.marginal_log_likelihood(x).sum())
    return {
        "total": total,
        "per_spike": total / max(float(x.sum()), 1.0),
        "per_bin": total / (x.shape[0] * x.shape[1]),
    }


@torch.no_grad()
def path_conditioned_log_likelihood(model: SwitchingGLM, spikes, decoder: str = "posterior") -> dict:
    """The paper's evaluation: ``Σ_{b,t} log p(x_t | ẑ_t)`` with ``ẑ`` from ``decoder``.

    ``decoder="posterior"`` (paper: argmax of γ per bin) or ``"viterbi"`` (2025 code). Returns
    ``{"total", "per_spike", "per_bin", "path"}`` (path: (B, T) long).
    """
    x = _spikes(model, spikes)
    log_em = model.log_emissions(x)
    if decoder == "posterior":
        path = model.e_step(x).posteriors.argmax(-1)
    elif decoder == "viterbi":
        path = viterbi(model.log_initial(), model.log_transitions(), log_em)
    else:
        raise ValueError(f"decoder must be 'posterior' or 'viterbi', got {decoder!r}")
    total = float(log_em.gather(-1, path.unsqueeze(-1)).sum())
    return {
        "total": total,
        "per_spike": total / max(float(x.sum()), 1.0),
        "per_bin": total / (x.shape[0] * x.shape[1]),
        "path": path,
    }


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
        ``weight_error``, ``permutation`` (None where not applicable).
    """
    x = _spikes(model, spikes)
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
        "permutation": None,
    }
    n_true = None if true_types is None else np.asarray(true_types).shape[0]
    perm = None
    if true_states is not None and model.n_states > 1:
        ref_x, ref_states = (
            (x, true_states) if train_states is None else (_spikes(model, train_spikes), train_states)
        )
        pred = model.e_step(ref_x).posteriors.argmax(-1).cpu().numpy()
        n = max(model.n_states, n_true or 0, int(np.max(ref_states)) + 1)
        perm = find_permutation(ref_states, pred, n_states=n)
        test_pred = model.e_step(x).posteriors.argmax(-1).cpu().numpy()
        out["state_accuracy"] = state_accuracy(true_states, test_pred, n_states=n)
        out["permutation"] = perm.tolist()
    elif model.n_states == 1 and n_true is not None:
        perm = np.zeros(n_true, dtype=np.int64)  # one state stands for every true state
    if perm is not None and perm.max() >= model.n_states:
        perm = None  # more true states than model states: per-state recovery undefined
    mask = None if model.self_connections else ~np.eye(model.n_neurons, dtype=bool)
    if true_types is not None and perm is not None and perm.shape[0] == np.asarray(true_types).shape[0]:
        if train_spikes is not None:
            est = read_out_types(model, train_spikes, z=readout_z).cpu().numpy()
            out["type_accuracy"] = connection_type_accuracy(true_types, est, perm, mask)
            out["type_f1"] = connection_type_f1(true_types, est, perm, mask)
        if hasattr(model, "connection_types"):
            est = model.connection_types().cpu().numpy()
            out["type_accuracy_argmax"] = connection_type_accuracy(true_types, est, perm, mask)
            out["type_f1_argmax"] = connection_type_f1(true_types, est, perm, mask)
    if true_weights is not None and perm is not None and perm.shape[0] == np.asarray(true_weights).shape[0]:
        est_w = model.coupling_matrices().cpu().numpy()  # the couplings the likelihood uses
        out["weight_error"] = weight_error(true_weights, est_w, perm, mask)
    return out


@torch.no_grad()
def export_model_h5(path, model: SwitchingGLM, spikes=None, permutation=None) -> Path:
    """Write couplings, transitions, bias, (one-hot: types, connectome) and posteriors to HDF5.

    Layout: ``coupling`` (S, N, N) (softmax-mode couplings), ``transitions`` (S, S), ``bias`` (N,),
    ``basis`` (n_basis, K); one-hot prior: ``connection_types`` (S, N, N), ``hard_coupling``,
    ``connectome`` (N, N, 3); Gaussian prior: ``shared_mean``; with ``spikes``: ``posteriors``
    (B, T, S), ``viterbi`` (B, T), ``log_marginal`` (B,). ``permutation`` (true -> model), if given,
    reorders every per-state array into the true order. Written atomically.
    """
    import h5py

    from neurodyn.io import atomic_path, write_h5_dict

    def per_state(a, axis=0):
        a = a.detach().cpu().numpy() if hasattr(a, "detach") else np.asarray(a)
        return a if permutation is None else permute_states(a, permutation, axis)

    data = {
        "coupling": per_state(model.coupling_matrices()),
        "transitions": model.log_transitions().exp().cpu().numpy(),
        "bias": model.bias.detach().cpu().numpy(),
        "basis": model.basis.cpu().numpy(),
    }
    if permutation is not None:
        p = np.asarray(permutation)
        data["transitions"] = data["transitions"][np.ix_(p, p)]
        data["permutation"] = p
    if hasattr(model, "connection_types"):
        data["connection_types"] = per_state(model.connection_types())
        with model.weights_as("hard"):
            data["hard_coupling"] = per_state(model.coupling_matrices())
        data["connectome"] = model.connectome().cpu().numpy()
    if hasattr(model, "shared_mean"):
        data["shared_mean"] = model.shared_mean.sum(-1).cpu().numpy()
    if spikes is not None:
        x = _spikes(model, spikes)
        post = model.e_step(x)
        data["posteriors"] = per_state(post.posteriors, axis=2)
        data["log_marginal"] = post.log_marginal.cpu().numpy()
        path_ = viterbi(model.log_initial(), model.log_transitions(), model.log_emissions(x)).cpu().numpy()
        if permutation is not None:
            path_ = np.argsort(np.asarray(permutation))[path_]  # model label -> true label
        data["viterbi"] = path_
    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            write_h5_dict(f, data, compression="gzip")
            f.attrs["model"] = type(model).__name__
            f.attrs["n_states"] = model.n_states
            f.attrs["link"] = model.link
            f.attrs["emission"] = model.emission
    return path
