r"""One connection-type read-out rule for every switching GLM: a Wald test on the fitted coupling.

A coupling ``w = W_s[n, n']`` (summed over basis functions) is called

.. math:: \mathrm{type} = \begin{cases} \mathrm{sign}(w) & |w| \ge z\,\widehat{\mathrm{se}}(w) \\
          0\ (\text{none}) & \text{otherwise} \end{cases}

with ``z`` fixed in advance (default :data:`WALD_Z` = 3) and the standard error estimated **on the
training data only**, from the information of the state-weighted GLM that the M-step fits:

.. math:: \mathcal I_{s,n} = \sum_{b,t} \gamma_{bts}\, \big(\partial_u f(x_{btn}, u_{btsn})\big)^2
          \, \tilde h_{bt} \tilde h_{bt}^\top, \qquad
          \widehat{\mathrm{Var}}(W_s[n, \cdot]) = \mathcal I_{s,n}^{-1}

(outer product of the per-bin scores, which needs no closed-form second derivative and holds for every
link / emission; ``γ`` from the model's E-step; ``h̃`` = the history regressors of the unmasked
pre-synaptic neurons plus a constant for the bias). The same rule is applied to the GLM (one state,
``γ = 1``), the HMM-GLM, the Gaussian-prior HMM-GLM and the one-hot-prior HMM-GLM, whose couplings
are taken with their hard types (``argmax`` of the adjacency logits times the strength), so an entry the
one-hot model calls "none" stays none and a type the data cannot tell from zero is called none too.

Every file of a fitted model (``neurodyn predict``, :func:`neurodyn.models.hmmglm.evaluate.export_model_h5`)
holds these types as ``connection_types`` and the one-hot model's ``argmax - 1`` types of each state's adjacency
logits, when there are any, as ``connection_types_argmax`` (:func:`type_arrays`), each with a ``*_definition``
root attribute.

Why not the paper code's ``argmax(logits) - 1``: it ignores the strength, and from a cold start many
entries end with a sign but a strength near 0 (see ``benchmarks/hmmglm_synthetic.py``). Why not a fixed
``|w| < θ``: a weight threshold depends on the units of the data (bin width, rates); a Wald threshold
scales with how well the data determine each coupling. With ``z = 3`` about 0.27 % of truly absent
connections are called present when the estimate is unbiased and the information estimate is good.
"""

from __future__ import annotations

import torch
from torch import Tensor

from neurodyn.models.hmmglm.emissions import validate_spikes
from neurodyn.models.hmmglm.fused import _chunks, _flatten, emission_terms
from neurodyn.models.hmmglm.models import SwitchingGLM

__all__ = ["WALD_Z", "COUPLING_DEFINITION", "COUPLING_SOFTMAX_DEFINITION", "CONNECTION_TYPES_ARGMAX_DEFINITION",
           "CONNECTOME_DEFINITION", "SHARED_MEAN_DEFINITION", "connection_types_definition", "reported_couplings",
           "coupling_arrays", "type_attrs", "type_arrays", "prior_arrays",
           "coupling_standard_errors", "read_out_types"]

#: z of the Wald read-out, fixed in advance (two-sided false-positive rate 0.27 % under the null)
WALD_Z = 3.0


#: what every file's ``coupling`` holds (``neurodyn predict`` and ``export_model_h5`` write it as the
#: ``coupling_definition`` attribute): the paper's reported one-hot coupling (Li et al., ICLR 2024,
#: arXiv:2310.15263: each entry's most probable type times its strength)
COUPLING_DEFINITION = ("W[s, post, pre] summed over basis functions; one-hot prior: hard types, "
                       "(onehot(argmax A)[exc] - onehot(argmax A)[inh]) * softplus(R)")
#: what ``coupling_softmax`` holds (one-hot prior only; the ``coupling_softmax_definition`` attribute)
COUPLING_SOFTMAX_DEFINITION = ("one-hot prior: the softmax mixture the E-step and the likelihoods use, "
                               "(softmax(A)[exc] - softmax(A)[inh]) * softplus(R)")
#: what ``connection_types_argmax`` holds (one-hot prior only; the ``connection_types_argmax_definition``
#: attribute): each state's adjacency argmax, not the read-out rule of ``connection_types``
CONNECTION_TYPES_ARGMAX_DEFINITION = ("one-hot prior only: argmax(A) - 1 (+1 excitatory, -1 inhibitory, 0 none), "
                                      "each entry's most probable type whatever its strength (the paper code's "
                                      "read-out); not neurodyn's connection-type rule, which is connection_types")

#: what ``connectome`` holds (one-hot prior only; the ``connectome_definition`` attribute)
CONNECTOME_DEFINITION = ("one-hot prior only: softmax(Pi)[post, pre, type], the learned state-constant prior "
                         "probabilities of the connection types, shared by every state; type order [inhibitory, "
                         "none, excitatory] (argmax - 1: -1 inhibitory, 0 none, +1 excitatory); (neurons, neurons, 3)")
#: what ``shared_mean`` holds (Gaussian prior only; the ``shared_mean_definition`` attribute)
SHARED_MEAN_DEFINITION = ("Gaussian prior only: Wbar[post, pre] summed over basis functions, the prior mean the "
                          "states' couplings are tied to (mean over states of W_s, as set before the last M-step "
                          "gradient step); (neurons, neurons)")


def connection_types_definition(z: float = WALD_Z) -> str:
    """What every file's ``connection_types`` holds (its ``connection_types_definition`` attribute)."""
    return (f"+1 excitatory, -1 inhibitory, 0 none: sign(coupling) where |coupling| >= {z:g} standard errors, "
            "else 0; standard errors from the information of the training sequences "
            "(neurodyn.models.hmmglm.readout.read_out_types)")


@torch.no_grad()
def reported_couplings(model: SwitchingGLM) -> Tensor:
    """The couplings a model reports, (S, N, N) summed over basis functions (one-hot: hard types)."""
    with model.weights_as("hard"):
        return model.coupling_matrices()


@torch.no_grad()
def coupling_arrays(model: SwitchingGLM) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The couplings every file of a fitted model holds, and the attributes that define them.

    ``coupling``: :func:`reported_couplings` (:data:`COUPLING_DEFINITION`), for every variant. The one-hot
    prior adds ``coupling_softmax`` (:data:`COUPLING_SOFTMAX_DEFINITION`), ``model.coupling_matrices()``
    in its default softmax mode: the couplings the E-step, the marginal likelihood and the posteriors of
    the file were computed with; the other variants have one set of couplings only.

    Examples
    --------
    >>> from neurodyn.models.hmmglm import OneHotPriorHMMGLM
    >>> arrays, attrs = coupling_arrays(OneHotPriorHMMGLM(3, n_states=2))
    >>> sorted(arrays), sorted(attrs)
    (['coupling', 'coupling_softmax'], ['coupling_definition', 'coupling_softmax_definition'])
    """
    arrays = {"coupling": reported_couplings(model)}
    attrs = {"coupling_definition": COUPLING_DEFINITION}
    if hasattr(model, "connectome"):  # the one-hot prior: a softmax mixture besides the hard types
        with model.weights_as("softmax"):
            arrays["coupling_softmax"] = model.coupling_matrices()
        attrs["coupling_softmax_definition"] = COUPLING_SOFTMAX_DEFINITION
    return arrays, attrs


def type_attrs(model: SwitchingGLM, z: float = WALD_Z, read_out: bool = True) -> dict[str, str]:
    """The attributes that define :func:`type_arrays`' datasets (``read_out``: ``connection_types`` is written)."""
    attrs = {"connection_types_definition": connection_types_definition(z)} if read_out else {}
    if hasattr(model, "connection_types"):  # the one-hot model's adjacency argmax types
        attrs["connection_types_argmax_definition"] = CONNECTION_TYPES_ARGMAX_DEFINITION
    return attrs


@torch.no_grad()
def type_arrays(model: SwitchingGLM, train_spikes=None, z: float = WALD_Z) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The connection types every file of a fitted model holds (int8), and the attributes that define them.

    One name, one rule, for ``neurodyn predict`` and ``export_model_h5`` alike: ``connection_types`` is
    :func:`read_out_types` with standard errors from ``train_spikes`` (the sequences the model was fitted on;
    without them nothing is written under that name), for every variant. The one-hot prior adds
    ``connection_types_argmax`` (:data:`CONNECTION_TYPES_ARGMAX_DEFINITION`), its own ``argmax - 1`` types.

    Examples
    --------
    >>> import torch
    >>> from neurodyn.models.hmmglm import OneHotPriorHMMGLM
    >>> x = torch.poisson(torch.full((2, 100, 3), 0.3))
    >>> arrays, attrs = type_arrays(OneHotPriorHMMGLM(3, n_states=2), x)
    >>> sorted(arrays)
    ['connection_types', 'connection_types_argmax']
    >>> sorted(attrs)
    ['connection_types_argmax_definition', 'connection_types_definition']
    >>> sorted(type_arrays(OneHotPriorHMMGLM(3, n_states=2))[0])  # no training data: no read-out
    ['connection_types_argmax']
    """
    arrays = {}
    if train_spikes is not None:
        arrays["connection_types"] = read_out_types(model, train_spikes, z=z).to(torch.int8)
    if hasattr(model, "connection_types"):
        arrays["connection_types_argmax"] = model.connection_types().to(torch.int8)
    return arrays, type_attrs(model, z, read_out=train_spikes is not None)


@torch.no_grad()
def prior_arrays(model: SwitchingGLM) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The fitted prior every file of a model holds, and the attributes that define it: the one-hot prior's
    ``connectome`` (:data:`CONNECTOME_DEFINITION`), the Gaussian prior's ``shared_mean``
    (:data:`SHARED_MEAN_DEFINITION`); nothing for the GLM and the plain HMM-GLM.

    Examples
    --------
    >>> from neurodyn.models.hmmglm import OneHotPriorHMMGLM
    >>> arrays, attrs = prior_arrays(OneHotPriorHMMGLM(3, n_states=2))
    >>> arrays["connectome"].shape, sorted(attrs)
    (torch.Size([3, 3, 3]), ['connectome_definition'])
    """
    if hasattr(model, "connectome"):
        return {"connectome": model.connectome()}, {"connectome_definition": CONNECTOME_DEFINITION}
    if hasattr(model, "shared_mean"):
        return {"shared_mean": model.shared_mean.sum(-1)}, {"shared_mean_definition": SHARED_MEAN_DEFINITION}
    return {}, {}


@torch.no_grad()
def coupling_standard_errors(model: SwitchingGLM, spikes) -> Tensor:
    """Standard errors (S, N, N) of :func:`reported_couplings` from ``spikes`` (the training data).

    Masked entries (the diagonal without self-connections) get ``inf``. Computed in float64.

    Examples
    --------
    >>> import torch
    >>> from neurodyn.models.hmmglm import GLM
    >>> x = torch.poisson(torch.full((2, 400, 3), 0.3, dtype=torch.float64))
    >>> se = coupling_standard_errors(GLM(3).double(), x)
    >>> se.shape, bool(torch.isinf(se[0, 0, 0])), bool((se[0, 0, 1:] > 0).all())
    (torch.Size([1, 3, 3]), True, True)
    """
    dtype = torch.float64
    x = validate_spikes(spikes, n_lags=model.n_lags, emission=model.emission,
                        n_neurons=model.n_neurons, dtype=dtype).to(model.bias.device)
    features = model.history(x.to(model.bias.dtype)).to(dtype)
    gamma = model.e_step(x.to(model.bias.dtype), features.to(model.bias.dtype)).posteriors.to(dtype)
    with model.weights_as("hard"):
        weights = model.coupling().detach().to(dtype)  # (S, N, N, J)
    s_, n_, _, j_ = weights.shape
    w_flat = weights.reshape(s_ * n_, n_ * j_).T.contiguous()
    bias = model.bias.detach().to(dtype)
    h, xs, _ = _flatten(features, x, model.emission)
    g = gamma.reshape(-1, s_)
    info = torch.zeros(s_, n_, n_ * j_ + 1, n_ * j_ + 1, dtype=dtype, device=h.device)
    n_feat = n_ * j_ + 1
    for a, b in _chunks(h.shape[0], n_feat * n_feat):
        hb = torch.cat([h[a:b], torch.ones(b - a, 1, dtype=dtype, device=h.device)], 1)  # (R, F+1)
        u = (h[a:b] @ w_flat).view(b - a, s_, n_) + bias
        _, d = emission_terms(xs[a:b, None, :], u, model.link, model.emission)
        weight = (g[a:b, :, None] * d**2).reshape(b - a, s_ * n_)  # (R, S*N)
        outer = (hb[:, :, None] * hb[:, None, :]).reshape(b - a, n_feat * n_feat)
        info += (weight.T @ outer).view(s_, n_, n_feat, n_feat)  # one GEMM per chunk
    mask = model.coupling_mask.to(torch.bool)  # (N_post, N_pre)
    se = torch.full((s_, n_, n_), float("inf"), dtype=dtype, device=h.device)
    for n in range(n_):
        pre = torch.nonzero(mask[n]).flatten()
        if pre.numel() == 0:
            continue
        cols = (pre[:, None] * j_ + torch.arange(j_, device=pre.device)).flatten()
        cols = torch.cat([cols, torch.tensor([n_ * j_], device=pre.device)])
        block = info[:, n][:, cols][:, :, cols]  # (S, F'+1, F'+1)
        eye = torch.eye(block.shape[-1], dtype=dtype, device=block.device)
        scale = block.diagonal(dim1=-2, dim2=-1).abs().amax(-1).clamp_min(1e-300)[:, None, None]
        cov = torch.linalg.pinv(block + 1e-12 * scale * eye)[:, :-1, :-1]  # drop the bias row / column
        # variance of the basis-summed coupling: sum of each pre-neuron's J x J block
        var = cov.reshape(s_, pre.numel(), j_, pre.numel(), j_).diagonal(dim1=1, dim2=3).sum((1, 2))
        se[:, n, pre] = var.clamp_min(0).sqrt()
    return se.to(model.bias.dtype)


@torch.no_grad()
def read_out_types(model: SwitchingGLM, spikes, z: float = WALD_Z) -> Tensor:
    """Connection types (S, N, N) in {-1, 0, +1} by the Wald rule of the module docstring.

    ``spikes`` are the **training** sequences (never test data or true types). Masked entries are 0.

    Examples
    --------
    >>> import torch
    >>> from neurodyn.models.hmmglm import GLM
    >>> m = GLM(2).double()
    >>> with torch.no_grad():
    ...     m.weights[0, 0, 1, 0] = 2.0  # neuron 1 strongly excites neuron 0
    >>> x = torch.poisson(torch.full((2, 500, 2), 0.3, dtype=torch.float64))
    >>> read_out_types(m, x).tolist()
    [[[0, 1], [0, 0]]]
    """
    w = reported_couplings(model).to(torch.float64)
    se = coupling_standard_errors(model, spikes).to(torch.float64)
    called = w.abs() >= z * se
    return (torch.sign(w) * called).to(torch.int64)
