"""Held-out likelihoods and HDF5 export of fitted switching GLMs (no ground truth, no metrics).

Two test log-likelihoods:

* **marginal** ``log p(X)`` by the forward algorithm (the proper held-out likelihood), per spike
  (``Σ_b log p(X_b) / Σ spikes``) and per bin (``/ (B·T)``, summed over neurons), in nats;
* the paper code's **path-conditioned** value ``Σ_{t,n} log p(x_{t,n} | ẑ_t)`` along the decoded path
  ``ẑ_t = argmax_s γ_t(s)`` (or Viterbi), which is not a likelihood of the data alone.

Recovery against ground truth (states, connection types, weights) is scored by
:func:`neurodyn.training.hmmglm_scores.evaluate_model`, which combines these with :mod:`neurodyn.metrics.states`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from neurodyn.core.arrays import to_numpy
from neurodyn.models.hmmglm.emissions import validate_spikes
from neurodyn.models.hmmglm.inference import viterbi
from neurodyn.models.hmmglm.models import SwitchingGLM
from neurodyn.models.hmmglm.readout import coupling_arrays, prior_arrays, type_arrays

__all__ = ["marginal_log_likelihood", "path_conditioned_log_likelihood", "export_model_h5", "M_STEP_MODE_DEFINITION",
           "m_step_attrs"]

#: what ``export_model_h5``'s ``m_step_mode`` / ``m_step_phases`` attributes say (one-hot prior only; written as
#: ``m_step_mode_definition``). The words are those of checkpoints (``neurodyn.resolved``) and prediction files.
M_STEP_MODE_DEFINITION = (
    "one-hot prior: the M-step that fitted the couplings last, 'gumbel' (Q averaged over Gumbel-softmax samples of "
    "the types, the paper's) or 'softmax' (Q of the softmax couplings the E-step uses); m_step_phases, when "
    "written, is the M-step of each EM phase in the order they ran (fit_em calls, e.g. a recipe's phases: the "
    "default recipe's Gumbel phases and softmax polish read gumbel, gumbel, softmax), and m_step_mode is its last; "
    "without it m_step_mode is the model's own step, which a LightningModule trains with throughout"
)


def spikes_for(model: SwitchingGLM, spikes) -> torch.Tensor:
    """``spikes`` validated for ``model`` (counts, enough bins) in its dtype and on its device."""
    return validate_spikes(spikes, n_lags=model.n_lags, emission=model.emission, n_neurons=model.n_neurons,
                           dtype=model.bias.dtype).to(model.bias.device)


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
    x = spikes_for(model, spikes)
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
    x = spikes_for(model, spikes)
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


def m_step_attrs(model: SwitchingGLM) -> dict:
    """The one-hot model's M-step as it ran, for :func:`export_model_h5`'s root attributes: ``m_step_mode`` (the last
    step), ``m_step_phases`` (the step of each :func:`~neurodyn.models.hmmglm.fit.fit_em` call on the model, in
    order, where it recorded any) and ``m_step_mode_definition`` (:data:`M_STEP_MODE_DEFINITION`); ``{}`` for the
    other variants.

    Examples
    --------
    >>> from neurodyn.models.hmmglm import OneHotPriorHMMGLM
    >>> m = OneHotPriorHMMGLM(3, n_states=2, link="exp")
    >>> m.m_step_phases = ("gumbel", "softmax")  # as two fit_em phases record them
    >>> attrs = m_step_attrs(m)
    >>> attrs["m_step_mode"], attrs["m_step_phases"]
    ('softmax', ['gumbel', 'softmax'])
    """
    mode = getattr(model, "m_step_mode", None)
    if mode is None:
        return {}
    phases = list(getattr(model, "m_step_phases", ()) or ())
    attrs = {"m_step_mode": phases[-1] if phases else mode, "m_step_mode_definition": M_STEP_MODE_DEFINITION}
    if phases:
        attrs["m_step_phases"] = phases
    return attrs


@torch.no_grad()
def export_model_h5(path, model: SwitchingGLM, spikes=None, permutation=None, train_spikes=None) -> Path:
    """Write couplings, connection types, transitions, bias, (one-hot: connectome) and posteriors to HDF5.

    Layout: the arrays of the same names in ``neurodyn predict`` files, defined by the same code, so a
    name means one thing in every file of a model. ``coupling`` (S, N, N;
    :func:`neurodyn.models.hmmglm.readout.coupling_arrays`: for the one-hot prior the hard-type couplings,
    each entry's most probable type times its strength); with ``train_spikes`` (the sequences the model was
    fitted on) ``connection_types`` (S, N, N, int8; +1 / -1 / 0 by the one read-out rule of every variant,
    :func:`neurodyn.models.hmmglm.readout.read_out_types`, standard errors from ``train_spikes``; without
    them nothing is written under that name); ``transitions`` (S, S), ``initial`` (S,), ``bias`` (N,), ``basis``
    (n_basis, K); one-hot prior: ``coupling_softmax`` (S, N, N; the softmax mixture the E-step, and so
    ``posteriors`` and ``log_marginal``, use), ``connection_types_argmax`` (S, N, N, int8; each state's
    adjacency logits' ``argmax - 1`` types, strength ignored), ``connectome`` (N, N, 3; the state-constant prior
    ``softmax(Π)``, type order [inhibitory, none, excitatory]: :func:`neurodyn.models.hmmglm.readout.prior_arrays`);
    Gaussian prior: ``shared_mean`` (N, N);
    with ``spikes``: ``posteriors`` (B, T, S), ``viterbi`` (B, T), ``log_marginal`` (B,). Root attributes
    ``coupling_definition``, ``connection_types_definition`` (and ``coupling_softmax_definition``,
    ``connection_types_argmax_definition``, ``connectome_definition`` / ``shared_mean_definition``) say what each
    array is (:mod:`neurodyn.models.hmmglm.readout`).
    One-hot prior: root attributes ``m_step_mode`` (the M-step that fitted the couplings last), ``m_step_phases``
    (the step of each EM phase in order, where :func:`~neurodyn.models.hmmglm.fit.fit_em` recorded them: the
    default recipe's read ``["gumbel", "gumbel", "softmax"]``) and ``m_step_mode_definition``
    (:func:`m_step_attrs`), in the words of checkpoints and prediction files.
    ``permutation`` (true -> model), if given, reorders every per-state array into the true order. Written
    atomically.

    Files written before neurodyn recorded ``connection_types_definition`` hold the one-hot prior's argmax
    types under ``connection_types``; a file without that attribute is one of those.
    """
    import h5py

    from neurodyn.io import atomic_path, write_h5_dict

    def per_state(a, axis=0):
        a = to_numpy(a)
        return a if permutation is None else np.take(a, np.asarray(permutation), axis=axis)  # true order

    couplings, coupling_attrs = coupling_arrays(model)
    types, type_attrs_ = type_arrays(model, train_spikes)
    data = {
        **{name: per_state(value) for name, value in couplings.items()},
        **{name: per_state(value) for name, value in types.items()},
        "transitions": model.log_transitions().exp().cpu().numpy(),
        "initial": per_state(model.log_initial().exp()),
        "bias": model.bias.detach().cpu().numpy(),
        "basis": model.basis.cpu().numpy(),
    }
    if permutation is not None:
        p = np.asarray(permutation)
        data["transitions"] = data["transitions"][np.ix_(p, p)]
        data["permutation"] = p
    priors, prior_attrs = prior_arrays(model)
    data.update({name: value.cpu().numpy() for name, value in priors.items()})
    if spikes is not None:
        x = spikes_for(model, spikes)
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
            f.attrs.update(coupling_attrs)
            f.attrs.update(type_attrs_)
            f.attrs.update(prior_attrs)
            f.attrs.update(m_step_attrs(model))
    return path
