r"""The one-hot-prior HMM-GLM (the paper's "OHG") and the Concrete log-density it uses.

Per state ``s`` and pair (post ``n``, pre ``n'``): a connection type ``a ∈ {inhibitory, none,
excitatory}`` (class order fixed) and a strength ``softplus(R_s[n, n'])`` shared by both signs:

.. math:: W_s[n, n'] = (a_{exc} - a_{inh})\,\mathrm{softplus}(R_s[n, n'])

``a`` is a relaxed one-hot vector from the adjacency logits ``A_s[n, n']``:

=========== ===================================================== ===============
mode        ``a``                                                 used in
=========== ===================================================== ===============
softmax     ``softmax(A)``                                        E-step, likelihoods
gumbel      ``softmax((A + g) / τ_w)``, ``g ~ Gumbel(0, 1)``      M-step (τ_w = 0.2)
hard        ``one_hot(argmax A)``                                 reporting
=========== ===================================================== ===============

Prior: the relaxed types are Concrete(α, τ) with ``α`` from prior logits ``Π[n, n']`` **shared by all
states** (``softmax(Π)`` is the state-constant "connectome"), evaluated at ``q = softmax(A)``:

.. math:: \log p(q \mid \alpha, \tau) = \log\Gamma(K) + (K-1)\log\tau
          + \sum_i (\log\alpha_i - (\tau+1)\log q_i) - K \log\sum_i \alpha_i q_i^{-\tau}, \quad K = 3

``prior_alpha="log_prob"`` (default) uses ``log α = log softmax(Π)``; ``"prob"`` reproduces the
paper-era code, which passes the probabilities where ``log α`` belongs (``log α = softmax(Π)``).
"""

from __future__ import annotations

import contextlib
import math
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from neurodyn.errors import InputError
from neurodyn.models.hmmglm.inference import Posterior
from neurodyn.models.hmmglm.models import SwitchingGLM

__all__ = ["concrete_log_density", "OneHotPriorHMMGLM", "CONNECTION_TYPES"]

#: class order of the adjacency logits; type value = index - 1
CONNECTION_TYPES = ("inhibitory", "none", "excitatory")


# (Log-)softmax over a short last axis (the 3 connection types, S·N·N rows) run along the *first* axis of a
# moved view: torch's CPU kernels vectorise along the reduced axis when it is the last one, which for
# length 3 is several times slower than reducing a leading axis (vectorised across rows; time
# ``torch.softmax(x, -1)`` against this on a (5, 20, 20, 3) tensor to see it on a given build). Same values up
# to rounding (tests/hmmglm/test_fast_paths.py); the whole fit's time is in benchmarks/onehot_reference.py.
def _softmax_types(x: Tensor) -> Tensor:
    return torch.softmax(x.movedim(-1, 0), 0).movedim(0, -1)


def _log_softmax_types(x: Tensor) -> Tensor:
    return torch.log_softmax(x.movedim(-1, 0), 0).movedim(0, -1)


def concrete_log_density(log_q: Tensor, log_alpha: Tensor, temperature: float) -> Tensor:
    """Concrete / Gumbel-softmax log-density at a point of the simplex (Maddison et al. 2017).

    Parameters
    ----------
    log_q : Tensor (..., K)
        ``log q`` of the point (rows of ``q`` sum to 1).
    log_alpha : Tensor (..., K)
        Log location parameters (broadcast against ``log_q``).
    temperature : float
        ``τ > 0``.

    Returns
    -------
    Tensor (...)

    Examples
    --------
    >>> import torch
    >>> lq = torch.tensor([0.2, 0.8], dtype=torch.float64).log()  # K = 2, α = (1, 1), τ = 1
    >>> float(concrete_log_density(lq, torch.zeros(2, dtype=torch.float64), 1.0).exp())  # 1 / (q1 q2 (1/q1 + 1/q2)^2)
    1.0
    """
    k = log_q.shape[-1]
    tau = float(temperature)
    return (
        math.lgamma(k)
        + (k - 1) * math.log(tau)
        + (log_alpha - (tau + 1) * log_q).sum(-1)
        - k * torch.logsumexp((log_alpha - tau * log_q).movedim(-1, 0), dim=0)
    )


M_STEP_MODES = ("auto", "gumbel", "softmax")


def resolve_m_step_mode(mode: str, link: str) -> str:
    """The M-step that ``m_step_mode`` ``mode`` runs with ``link``: ``"auto"`` is ``"gumbel"`` with the bounded
    ``"sigmoid"`` link and ``"softmax"`` with the others (why: :class:`OneHotPriorHMMGLM`); ``"gumbel"`` and
    ``"softmax"`` are themselves. One rule for the model and for what a checkpoint or prediction file records
    (``neurodyn.training.hmmglm_module``: a resumed fit continues the M-step its checkpoint ran).

    >>> resolve_m_step_mode("auto", "sigmoid"), resolve_m_step_mode("auto", "exp"), resolve_m_step_mode("gumbel", "exp")
    ('gumbel', 'softmax', 'gumbel')
    """
    if mode not in M_STEP_MODES:
        raise InputError(f"must be 'auto', 'gumbel' or 'softmax', got {mode!r}", field="m_step_mode")
    if mode == "auto":
        return "gumbel" if link == "sigmoid" else "softmax"
    return mode


class OneHotPriorHMMGLM(SwitchingGLM):
    """HMM-GLM with per-state connection types under a shared one-hot (Concrete) prior.

    Parameters
    ----------
    n_neurons, n_states, **kwargs
        As :class:`~neurodyn.models.hmmglm.models.SwitchingGLM` (exponential basis only: one
        strength per pair).
    gumbel_temperature : float
        ``τ_w`` of the M-step Gumbel-softmax sample (paper 0.2).
    prior_temperature : float
        ``τ`` of the Concrete prior (paper 0.2).
    prior_alpha : {"log_prob", "prob"}
        See the module docstring.
    prior_form : {"concrete", "categorical"}
        ``"concrete"`` (paper): the Concrete log-density at ``q = softmax(A)``. It is unbounded above at
        the simplex vertices (``≈ (K - 1 - τ)·|log q_min|``, i.e. +1.8 nats per unit of logit gap for
        ``K = 3, τ = 0.2``), so it rewards *any* hard type and locks in whatever the logits start
        with unless the data are decisive. ``"categorical"`` (the 2025 rewrite's default):
        ``-KL(q ‖ softmax(Π))`` per entry, bounded by 0 and maximal at the shared connectome.
    m_step_mode : {"auto", "gumbel", "softmax"}
        How couplings are formed in :meth:`m_step_loss`: ``"gumbel"`` (paper) maximises ``Q`` averaged
        over Gumbel-softmax samples of the types, ``"softmax"`` maximises ``Q`` of the couplings the E-step
        and every likelihood use (a deterministic M-step). ``"auto"`` (default): ``"gumbel"`` with the
        bounded ``"sigmoid"`` link (the paper's setting, verified on its simulator), ``"softmax"`` with the
        unbounded ``"exp"`` and ``"softplus"`` links. Why: the sampled types are nearly one-hot (τ_w =
        0.2), so while a type is undecided each sample gives the entry a coupling of ``±softplus(R)`` or
        0, and the sampled drive of neuron ``n`` scatters with a std of about ``softplus(R)·(2/3 Σ_n'
        h_n'²)^{1/2}``, growing with the number of presynaptic neurons. The Gumbel M-step minimises the
        *sample average* of ``λ(u)``, which for ``exp`` exceeds ``λ`` of the softmax drive by a factor
        ``≈ exp(var / 2)``, and its gradient, which only asks to shrink those sampled rates, moves the types
        towards "inhibitory" at every Adam step: the softmax couplings the model is scored with turn net
        inhibitory and the likelihood falls every iteration where the softmax M-step raises it (seeded in
        ``tests/hmmglm/test_fit.py`` on 20 neurons; on a prepared MC_Maze_Small file of 107 units, as
        ``neurodyn fit --config configs/hmmglm/mc_maze_small_states.yaml`` with the one-hot variant shows). With a
        bounded link the sampled rates are bounded and the average stays close; ``softplus`` grows linearly
        and drifts down slowly.
        An explicit ``"gumbel"`` with ``link="exp"`` warns at its first M-step.
    logit_guard : float
        After each step, logit vectors with a log-probability below this are halved (paper -20).

    Examples
    --------
    >>> m = OneHotPriorHMMGLM(n_neurons=4, n_states=2)
    >>> m.connection_types().shape, m.connectome().shape
    (torch.Size([2, 4, 4]), torch.Size([4, 4, 3]))
    """

    def __init__(
        self,
        n_neurons: int,
        n_states: int = 5,
        gumbel_temperature: float = 0.2,
        prior_temperature: float = 0.2,
        prior_alpha: str = "log_prob",
        prior_form: str = "concrete",
        m_step_mode: str = "auto",
        logit_guard: float = -20.0,
        **kwargs,
    ):
        kwargs.setdefault("init_std", 0.0)
        super().__init__(n_neurons, n_states, **kwargs)
        if self.n_basis != 1:
            raise InputError("the one-hot prior needs a single history filter (basis='exponential')", field="basis",
                             involves=("variant", "n_basis"))
        if prior_form not in {"concrete", "categorical"}:
            raise InputError(f"must be 'concrete' or 'categorical', got {prior_form!r}", field="prior_form")
        self.prior_form = prior_form
        if prior_alpha not in {"log_prob", "prob"}:
            raise InputError(f"must be 'log_prob' or 'prob', got {prior_alpha!r}", field="prior_alpha")
        m_step_mode = resolve_m_step_mode(m_step_mode, self.link)
        self.gumbel_temperature, self.prior_temperature = float(gumbel_temperature), float(prior_temperature)
        self.prior_alpha, self.m_step_mode, self.logit_guard = prior_alpha, m_step_mode, float(logit_guard)
        #: the M-step of each fit_em call on this model, in order (a recipe's phases may differ from m_step_mode)
        self.m_step_phases: tuple[str, ...] = ()
        s, n = self.n_states, self.n_neurons
        self.adjacency_logits = nn.Parameter(self._randn(s, n, n, 3))
        self.strength_logits = nn.Parameter(torch.zeros(s, n, n))
        self.prior_logits = nn.Parameter(torch.zeros(n, n, 3))
        self.weight_mode = "softmax"
        self.after_optimizer_step()

    @contextlib.contextmanager
    def weights_as(self, mode: str):
        """Form couplings with ``mode`` ("softmax", "gumbel", "hard") inside the block."""
        if mode not in {"softmax", "gumbel", "hard"}:
            raise InputError(f"must be 'softmax', 'gumbel' or 'hard', got {mode!r}", field="weight_mode")
        old, self.weight_mode = self.weight_mode, mode
        try:
            yield self
        finally:
            self.weight_mode = old

    def adjacency(self, mode: str | None = None) -> Tensor:
        """Relaxed one-hot connection types (S, N, N, 3) under ``mode`` (default: current mode)."""
        mode = self.weight_mode if mode is None else mode
        logits = self.adjacency_logits
        if mode == "softmax":
            return _softmax_types(logits)
        if mode == "hard":
            return F.one_hot(logits.argmax(-1), 3).to(logits.dtype)
        uniform = torch.rand(logits.shape, generator=self.generator, dtype=logits.dtype).to(logits.device)
        gumbel = -torch.log(-torch.log(uniform.clamp(1e-20, 1.0)))
        return _softmax_types((logits + gumbel) / self.gumbel_temperature)

    def coupling(self) -> Tensor:
        a = self.adjacency()
        weights = (a[..., 2] - a[..., 0]) * F.softplus(self.strength_logits) * self.coupling_mask
        return weights.unsqueeze(-1)

    def connection_types(self) -> Tensor:
        """Hard types (S, N, N) in {-1 (inhibitory), 0 (none), +1 (excitatory)}; masked diagonal = 0."""
        types = self.adjacency_logits.argmax(-1) - 1
        return types * self.coupling_mask.to(types.dtype)

    def connectome(self) -> Tensor:
        """Learned state-constant prior ``softmax(Π)`` (N, N, 3) over [inhibitory, none, excitatory]."""
        return _softmax_types(self.prior_logits).detach()

    def log_prior(self) -> Tensor:
        log_q = _log_softmax_types(self.adjacency_logits)
        if self.prior_form == "categorical":  # -KL(q || π̄) per entry: bounded above by 0
            kl = (log_q.exp() * (log_q - _log_softmax_types(self.prior_logits))).sum(-1)
            return -(kl * self.coupling_mask).sum()
        log_alpha = (
            _log_softmax_types(self.prior_logits)
            if self.prior_alpha == "log_prob"
            else _softmax_types(self.prior_logits)
        )
        density = concrete_log_density(log_q, log_alpha.unsqueeze(0), self.prior_temperature)
        return (density * self.coupling_mask).sum()

    @torch.no_grad()
    def revive_collapsed(self, threshold: float, strength: float) -> int:
        r"""Reset entries whose strength has collapsed: ``softplus(R) < threshold`` -> type logits 0 (uniform
        over the three types) and strength ``strength``; returns how many.

        ``W = (a_exc - a_inh)\,\mathrm{softplus}(R)`` has a saddle at zero strength: an entry whose type
        locked into the wrong sign during the noisy Gumbel-softmax phase drives its strength to ~0, and then
        ``∂W/∂A ∝ softplus(R) ≈ 0`` -- its type can no longer change, so the coupling stays at 0 where the
        data want the opposite sign (on development seed 100 of the paper's simulator: 28 of 2,000 entries,
        true strengths ~0.75, fitted 0.00 / 0.002, most of the one-hot fit's weight error). After the reset
        ``W = 0`` still, but its gradient with respect to the type logits is ``strength · ∂Q/∂W``, so a
        deterministic M-step re-decides the entry from the data; entries the data do not support go back to
        a small strength, which the read-out calls "none". Most reset entries are such "none" entries (on
        that seed 1,383 of 2,000: every entry whose strength shrank below the threshold, whatever its type).
        The default recipe does this once, before its polish.

        Examples
        --------
        >>> m = OneHotPriorHMMGLM(3, n_states=1, self_connections=True)
        >>> with torch.no_grad():
        ...     _ = m.strength_logits.fill_(-8.0)  # softplus ~ 3e-4: every entry collapsed
        >>> m.revive_collapsed(0.05, 0.1), round(float(F.softplus(m.strength_logits).max()), 6)
        (9, 0.1)
        """
        if not (math.isfinite(threshold) and threshold > 0):
            raise InputError(f"must be a positive number, got {threshold!r}", field="revive threshold")
        if not (math.isfinite(strength) and strength > 0):
            raise InputError(f"must be a positive number, got {strength!r}", field="revive strength")
        s = F.softplus(self.strength_logits)
        dead = (s < float(threshold)) & self.coupling_mask.to(torch.bool)  # masked entries stay as they are
        self.adjacency_logits[dead] = 0.0
        target = torch.full_like(s, float(strength))
        self.strength_logits.copy_(torch.where(dead, torch.log(torch.expm1(target)), self.strength_logits))
        self.after_optimizer_step()  # masked diagonal back to "none"
        return int(dead.sum())

    @torch.no_grad()
    def init_from_couplings(self, source, threshold: float = 0.2, sharpness: float = 10.0) -> OneHotPriorHMMGLM:
        r"""Warm start from continuous couplings, e.g. a fitted :class:`~neurodyn.models.hmmglm.HMMGLM`.

        For each coupling ``w = W_s[n, n']`` (summed over basis functions):

        .. math:: A_s[n, n'] = \kappa\,(-w - \theta,\ 0,\ w - \theta), \quad
                  \mathrm{softplus}(R_s[n, n']) = \max(|w|, \theta), \quad
                  \Pi[n, n'] = \log \tfrac1S \sum_s \mathrm{softmax}(A_s[n, n'])

        so ``|w| < θ`` starts as "none", larger ones as their sign, with ties at ``|w| = θ``;
        ``κ = sharpness`` (per unit weight) keeps the types soft enough for EM to revise (a weight 0.1
        from the threshold is a logit difference of 1). The default ``θ = 0.2`` is 4.5 median standard
        errors of an HMM-GLM coupling fitted to 30 x 2000 bins of the paper's simulator (inverse
        Fisher information: median 0.044, 90th percentile 0.074), so noise rarely passes as a
        connection while strengths above 0.2 (93 % of true ones, ``log(1 + 3u)``) start with their
        sign. ``source`` is a model (its bias and transition logits are copied too) or an (S, N, N)
        array.

        Examples
        --------
        >>> import torch
        >>> m = OneHotPriorHMMGLM(2, n_states=1, self_connections=True)
        >>> m.init_from_couplings(torch.tensor([[[0.5, -0.05], [-0.8, 0.0]]])).connection_types().tolist()
        [[[1, 0], [-1, 0]]]
        """
        if isinstance(source, SwitchingGLM):
            self.bias.copy_(source.bias.detach())
            self.transition_logits.copy_(source.transition_logits.detach())
            source = source.coupling_matrices()
        w = torch.as_tensor(source, dtype=self.strength_logits.dtype, device=self.strength_logits.device)
        if w.shape != self.strength_logits.shape:
            raise InputError(
                f"expected shape {tuple(self.strength_logits.shape)}, got {tuple(w.shape)}", field="couplings"
            )
        strength = w.abs().clamp_min(threshold)
        self.strength_logits.copy_(torch.log(torch.expm1(strength)))
        logits = torch.stack([sharpness * (-w - threshold), torch.zeros_like(w), sharpness * (w - threshold)], -1)
        self.adjacency_logits.copy_(logits)
        self.prior_logits.copy_(torch.log(_softmax_types(logits).mean(0)))
        self.after_optimizer_step()
        return self

    @torch.no_grad()
    def e_step(
        self, spikes: Tensor, features: Tensor | None = None, log_emission_floor: float | None = None
    ) -> Posterior:
        with self.weights_as("softmax"):
            return super().e_step(spikes, features, log_emission_floor)

    #: class-level default (models pickled before the flag existed): the exp-link warning not yet given
    _warned_gumbel_exp = False

    def m_step_loss(self, spikes: Tensor, posterior: Posterior, features: Tensor | None = None) -> Tensor:
        if self.m_step_mode == "gumbel" and self.link == "exp" and not self._warned_gumbel_exp:
            self._warned_gumbel_exp = True
            warnings.warn(
                "m_step_mode 'gumbel' with link 'exp': the M-step averages exp rates over sampled connection "
                "types, which grow with the number of presynaptic neurons and can make every EM iteration "
                "worsen the likelihood; m_step_mode 'softmax' (the default for this link) avoids it",
                UserWarning, stacklevel=2,
            )
        with self.weights_as(self.m_step_mode):
            return super().m_step_loss(spikes, posterior, features)

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        """Logit guard on ``A`` and ``Π``; masked diagonal reset to type "none" (logits (0, 5, 0))."""
        for logits in (self.adjacency_logits, self.prior_logits):
            bad = torch.log_softmax(logits.movedim(-1, 0), 0).amin(0) < self.logit_guard  # (see _softmax_types)
            # halve the logits of the guarded entries (exact); on the CPU skip the no-op of most steps (on a
            # GPU the check would cost a device sync per step)
            if logits.device.type != "cpu" or bad.any():
                logits.mul_(torch.where(bad.unsqueeze(-1), 0.5, 1.0).to(logits.dtype))
        if not self.self_connections:
            idx = torch.arange(self.n_neurons, device=self.prior_logits.device)
            none = torch.tensor([0.0, 5.0, 0.0], dtype=self.prior_logits.dtype, device=idx.device)
            self.adjacency_logits[:, idx, idx] = none
            self.prior_logits[idx, idx] = none
            self.strength_logits[:, idx, idx] = -10.0
