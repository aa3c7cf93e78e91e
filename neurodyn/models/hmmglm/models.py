r"""Switching Poisson GLMs with spike-history coupling: the base class, GLM, HMM-GLM, Gaussian prior.

Generative model (Li et al., ICLR 2024), per sequence of ``T`` bins and ``N`` neurons:

.. math::
    z_0 \sim \pi, \quad z_t \mid z_{t-1} \sim P_{z_{t-1}, \cdot}, \qquad
    x_{t,n} \mid z_t \sim \mathrm{Poisson}\Big(\lambda\big(b_n + \sum_{n', j} W_{z_t}[n, n', j]\, h_{t,n',j}\big)\Big)

with ``h`` the history regressors (:mod:`.basis`), ``λ`` the link (:mod:`.emissions`), ``W_s`` indexed
**[post, pre]** (positive = excitatory), bias ``b`` shared by all states, ``π`` uniform and fixed.

Every variant exposes the same methods (used by :mod:`.fit` and by the Lightning wrapper):
``log_emissions``, ``log_initial``, ``log_transitions``, ``log_prior``, ``e_step``, ``m_step_loss``,
``update_transitions``, ``after_optimizer_step``, ``marginal_log_likelihood``.

Self-connections (``W_s[n, n]``) are excluded by default, as in the paper's training code: the
diagonal is masked out of the weights and the prior (so its gradient is exactly zero) and reset after
each optimiser step. Pass ``self_connections=True`` to learn them (the simulator keeps them).
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch import Tensor, nn

from neurodyn.core.basis import exponential_basis, history_features, raised_cosine_basis
from neurodyn.errors import InputError
from neurodyn.models.hmmglm.emissions import check_emission, inverse_link, rate, validate_spikes
from neurodyn.models.hmmglm.fused import chunked_log_emissions, weighted_log_emissions
from neurodyn.models.hmmglm.inference import Posterior, forward_backward, log_marginal_likelihood

__all__ = ["SwitchingGLM", "GLM", "HMMGLM", "GaussianPriorHMMGLM"]


class SwitchingGLM(nn.Module):
    """Base class: HMM backbone + coupled GLM emissions; subclasses define :meth:`coupling`.

    Parameters
    ----------
    n_neurons : int
    n_states : int
        ``S >= 1``.
    n_lags : int
        History window ``K`` in bins.
    basis : {"exponential", "raised_cosine"}
        Paper default: one exponential filter (decay 1, span 5), so each coupling is one scalar.
    decay, span : float
        Exponential basis parameters.
    n_basis : int
        Number of raised-cosine functions (ignored for the exponential basis).
    link : {"sigmoid", "exp", "softplus"}
    emission : {"poisson", "bernoulli"}
    self_connections : bool
        Learn ``W_s[n, n]`` (default False: masked to 0, as in the paper's training).
    sticky : float
        Initial self-transition probability (paper: 0.98; the rest spread evenly).
    transition_floor : float or None
        Paper's clamp of ``log P_ij`` at -8 in the closed-form update; None = exact maximiser of Q.
    init_std : float
        Std of the random initial couplings (breaks the symmetry between states; 0 = paper's zeros).
    seed : int
        Seed of the model's own ``torch.Generator`` (initialisation, Gumbel noise).
    bias_init : {"inverse_link", "mean_count"}
        How :meth:`init_bias` starts the bias: ``λ^{-1}(mean count)`` (default: the initial rate equals
        the mean count for every link) or the mean count itself, as the paper's demo does (with the
        sigmoid link every neuron then starts at a rate near 0.5 per bin).

    Examples
    --------
    >>> import torch
    >>> model = HMMGLM(n_neurons=4, n_states=2).double()
    >>> spikes = torch.poisson(torch.full((3, 50, 4), 0.3, dtype=torch.float64))
    >>> model.log_emissions(spikes).shape, model.marginal_log_likelihood(spikes).shape
    (torch.Size([3, 50, 2]), torch.Size([3]))
    """

    n_states: int
    n_neurons: int
    #: class-level default: models pickled before the option existed (7f8d342) start the bias as they did then
    bias_init: str = "inverse_link"

    def __init__(
        self,
        n_neurons: int,
        n_states: int = 5,
        n_lags: int = 5,
        basis: str = "exponential",
        decay: float = 1.0,
        span: float = 5.0,
        n_basis: int = 3,
        link: str = "sigmoid",
        emission: str = "poisson",
        self_connections: bool = False,
        sticky: float = 0.98,
        transition_floor: float | None = -8.0,
        init_std: float = 0.1,
        seed: int = 0,
        bias_init: str = "inverse_link",
    ):
        super().__init__()
        if bias_init not in {"inverse_link", "mean_count"}:
            raise InputError(f"must be 'inverse_link' or 'mean_count', got {bias_init!r}", field="bias_init")
        self.bias_init = bias_init
        if int(n_states) < 1:
            raise InputError(f"must be >= 1, got {n_states}", field="n_states")
        if int(n_neurons) < 1:
            raise InputError(f"must be >= 1, got {n_neurons}", field="n_neurons")
        if int(n_lags) < 1:
            raise InputError(f"must be >= 1, got {n_lags}", field="n_lags")
        check_emission(emission, link)
        if basis == "exponential":
            filters = exponential_basis(n_lags, decay, span)
        elif basis == "raised_cosine":
            filters = raised_cosine_basis(n_basis, n_lags)
        else:
            raise InputError(f"must be 'exponential' or 'raised_cosine', got {basis!r}", field="basis")
        if not 0.0 < sticky < 1.0 and n_states > 1:
            raise InputError(f"must be in (0, 1), got {sticky}", field="sticky")
        self.n_states, self.n_neurons, self.n_lags = int(n_states), int(n_neurons), int(n_lags)
        self.link, self.emission, self.self_connections = link, emission, bool(self_connections)
        self.transition_floor = transition_floor
        self.init_std = float(init_std)
        self.generator = torch.Generator().manual_seed(int(seed))
        # kept in float64 whatever the module's dtype (see _apply): the history features are formed in the
        # module's dtype from the exact filter, so a float64 model uses the exact basis, not a float32 copy
        self.register_buffer("basis", filters.double())
        self.register_buffer(
            "coupling_mask",
            torch.ones(n_neurons, n_neurons) if self_connections else 1.0 - torch.eye(n_neurons),
        )
        self.register_buffer("initial_logits", torch.zeros(n_states))  # uniform, fixed (paper)
        s = self.n_states
        p0 = torch.full((s, s), (1 - sticky) / max(s - 1, 1)).fill_diagonal_(sticky if s > 1 else 1.0)
        self.transition_logits = nn.Parameter(torch.log(p0))
        self.bias = nn.Parameter(torch.zeros(n_neurons))

    def _apply(self, fn, *args, **kwargs):
        """Module casts (``.float()``, ``.to(device)``, ...) move the float64 history basis but keep its dtype,
        so ``.float().double()`` returns to the exact filter (a float32 model rounds it in :meth:`history`).
        A basis that is not float64 (a model pickled before this rule) is cast as before; MPS has no
        float64 and gets the cast basis."""
        exact = self.basis
        super()._apply(fn, *args, **kwargs)
        moved = self.basis
        if exact.dtype == torch.float64 and moved.dtype != torch.float64 and moved.device.type != "mps":
            self.basis = exact.to(moved.device)
        return self

    # -- parameters ---------------------------------------------------------------------------------
    @property
    def n_basis(self) -> int:
        return self.basis.shape[0]

    def coupling(self) -> Tensor:
        """Coupling weights (S, N_post, N_pre, n_basis), diagonal masked unless self-connections."""
        raise NotImplementedError  # abstract: every concrete subclass defines its parametrisation

    def coupling_matrices(self) -> Tensor:
        """(S, N, N) effective couplings (summed over basis functions), detached."""
        return self.coupling().detach().sum(-1)

    def _randn(self, *shape: int) -> Tensor:
        return torch.randn(shape, generator=self.generator) * self.init_std

    @torch.no_grad()
    def init_bias(self, spikes: Tensor) -> None:
        """Set ``b_n = λ^{-1}(mean count of neuron n)`` over all sequences and bins.

        With ``bias_init="mean_count"``, ``b_n`` = the mean count itself, as the paper's demo does; the
        default inverse link makes the initial rate equal the mean count for every link.
        """
        mean = spikes.to(self.bias.dtype).reshape(-1, self.n_neurons).mean(0)
        self.bias.copy_(mean if self.bias_init == "mean_count" else inverse_link(mean, self.link))

    # -- the shared interface ------------------------------------------------------------------------
    def history(self, spikes: Tensor) -> Tensor:
        """History regressors (B, T, N * n_basis) (neuron-major, basis-minor)."""
        h = history_features(spikes.to(self.bias.dtype), self.basis.to(self.bias.dtype))
        return h.reshape(*h.shape[:2], -1)

    def drive(self, spikes: Tensor, features: Tensor | None = None) -> Tensor:
        """Linear predictor ``u`` (B, T, S, N) of every state."""
        h = self.history(spikes) if features is None else features
        weights = self.coupling().reshape(self.n_states, self.n_neurons, -1)
        return self.bias + torch.einsum("btf,snf->btsn", h, weights)

    def rates(self, spikes: Tensor, features: Tensor | None = None) -> Tensor:
        """Rates (B, T, S, N) in counts per bin under each state."""
        return rate(self.drive(spikes, features), self.link)

    def log_emissions(self, spikes: Tensor, features: Tensor | None = None) -> Tensor:
        """``log p(x_t | z_t = s)`` (B, T, S), summed over neurons, nats.

        ``features`` (from :meth:`history`) can be passed to skip the convolution. Computed in
        cache-sized chunks with closed-form gradients (:mod:`.fused`); differentiable in the couplings
        and the bias. ``spikes`` (a tensor or an array, (B, T, N) or one sequence (T, N)) are checked
        (:func:`~.emissions.validate_spikes`: this model's N, finite whole counts >= 0 -- the values on the
        CPU only): one InputError,
        not NaN log-likelihoods or a shape error deep in torch. :meth:`e_step` and
        :meth:`marginal_log_likelihood` go through here.
        """
        # the values only off the GPU: there each check is a device sync, and this runs every training step
        on_gpu = isinstance(spikes, Tensor) and spikes.device.type != "cpu"
        x = validate_spikes(spikes, emission=self.emission, n_neurons=self.n_neurons, values=not on_gpu).to(
            self.bias.device, self.bias.dtype)
        h = self.history(x) if features is None else features
        weights = self.coupling().reshape(self.n_states, self.n_neurons, -1)
        return chunked_log_emissions(h, x, weights, self.bias, self.link, self.emission)

    def weighted_log_emissions(self, spikes: Tensor, gamma: Tensor, features: Tensor | None = None) -> Tensor:
        """``Σ_{b,t,s} γ_bts log p(x_bt | z = s)`` (scalar): the emission part of ``Q``, in one pass."""
        x = spikes.to(self.bias.dtype)
        h = self.history(x) if features is None else features
        weights = self.coupling().reshape(self.n_states, self.n_neurons, -1)
        return weighted_log_emissions(h, x, weights, self.bias, gamma, self.link, self.emission)

    def log_initial(self) -> Tensor:
        """(S,) log initial probabilities (uniform, fixed)."""
        return torch.log_softmax(self.initial_logits.to(self.bias.dtype), -1)

    def log_transitions(self) -> Tensor:
        """(S, S) log transition matrix; rows sum to 1 in probability space."""
        return torch.log_softmax(self.transition_logits, -1)

    def log_prior(self) -> Tensor:
        """Scalar log prior density of the parameters (0 without a prior)."""
        return self.bias.new_zeros(())

    @contextlib.contextmanager
    def weights_as(self, mode: str):
        """Temporarily set how couplings are formed (only meaningful for the one-hot prior)."""
        yield self

    @torch.no_grad()
    def e_step(
        self, spikes: Tensor, features: Tensor | None = None, log_emission_floor: float | None = None
    ) -> Posterior:
        """Forward-backward under the current parameters (no gradient).

        ``log_emission_floor``: clamp every ``log p(x_t | s)`` from below first, as the paper's code does
        in the E-step of its training (emission probabilities floored at ``1e-16``, i.e. ``log 1e-16``);
        ``None`` (default): exact posteriors.
        """
        log_em = self.log_emissions(spikes, features)
        if log_emission_floor is not None:
            log_em = log_em.clamp_min(float(log_emission_floor))
        return forward_backward(self.log_initial(), self.log_transitions(), log_em)

    def expected_log_joint(
        self,
        spikes: Tensor,
        posterior: Posterior,
        features: Tensor | None = None,
        detach_transitions: bool = False,
    ) -> Tensor:
        r"""``Q = Σ_b [Σ_t Σ_s γ_ts log p(x_t|s) + Σ_ij ξ_ij log P_ij + Σ_s γ_0s log π_s]`` (scalar)."""
        log_p = self.log_transitions()
        log_p = log_p.detach() if detach_transitions else log_p
        # the posteriors as they are: the emission pass casts them once per E-step (reused by the M-steps)
        q = self.weighted_log_emissions(spikes, posterior.posteriors, features)
        q = q + (posterior.expected_transitions.to(q.dtype) * log_p).sum()
        return q + (posterior.posteriors[:, 0].to(self.bias.dtype) * self.log_initial()).sum()

    @torch.no_grad()
    def q_value(self, spikes: Tensor, posterior: Posterior, features: Tensor | None = None) -> Tensor:
        """``Q + log prior`` under the E-step weights (deterministic); the GEM acceptance test."""
        with self.weights_as("softmax"):
            return self.expected_log_joint(spikes, posterior, features) + self.log_prior()

    def m_step_loss(self, spikes: Tensor, posterior: Posterior, features: Tensor | None = None) -> Tensor:
        """``-(Q + log prior)`` (scalar); transitions enter Q detached (they have a closed-form update)."""
        return -(self.expected_log_joint(spikes, posterior, features, detach_transitions=True) + self.log_prior())

    @torch.no_grad()
    def update_transitions(self, xi_sum: Tensor) -> None:
        """Closed-form M-step for ``P`` from expected counts pooled over all sequences (S, S).

        ``P_ij ∝ exp(max(log(ξ_ij / Σ_j' ξ_ij'), floor))`` (paper: floor -8; ``None``: plain
        normalised counts, the exact maximiser of Q). Rows with no expected visits are kept.
        """
        if xi_sum.ndim == 3:
            xi_sum = xi_sum.sum(0)
        xi_sum = xi_sum.to(self.transition_logits.dtype)
        total = xi_sum.sum(-1, keepdim=True)
        log_p = torch.log(xi_sum) - torch.log(total)
        if self.transition_floor is not None:
            log_p = log_p.clamp_min(self.transition_floor)
        new = torch.log_softmax(log_p, -1)
        keep = (total.squeeze(-1) > 0) & torch.isfinite(new).any(-1)
        self.transition_logits[keep] = new[keep]

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        """Hook after every optimiser step (diagonal reset etc.; nothing in the base class)."""

    def marginal_log_likelihood(self, spikes: Tensor, features: Tensor | None = None) -> Tensor:
        """``log p(X_b)`` (B,) by the forward algorithm; differentiable (exact gradient)."""
        return log_marginal_likelihood(self.log_initial(), self.log_transitions(), self.log_emissions(spikes, features))

    def objective(self, spikes: Tensor, features: Tensor | None = None) -> Tensor:
        """MAP objective ``Σ_b log p(X_b) + log prior`` (scalar)."""
        return self.marginal_log_likelihood(spikes, features).sum() + self.log_prior()


class GLM(SwitchingGLM):
    """One-state coupled GLM (``S = 1``), the baseline; fitted by direct likelihood maximisation.

    Examples
    --------
    >>> GLM(n_neurons=3).coupling().shape
    torch.Size([1, 3, 3, 1])
    """

    def __init__(self, n_neurons: int, **kwargs):
        kwargs["n_states"] = 1
        kwargs.setdefault("init_std", 0.0)
        super().__init__(n_neurons, **kwargs)
        self.weights = nn.Parameter(self._randn(1, n_neurons, n_neurons, self.n_basis))

    def coupling(self) -> Tensor:
        return self.weights * self.coupling_mask[..., None]

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        self.weights.mul_(self.coupling_mask[..., None])


class HMMGLM(SwitchingGLM):
    """HMM-GLM with independent couplings per state (the paper's "HG", no prior).

    Parameters ``weights`` (S, N, N, n_basis), initialised ``N(0, init_std²)`` (paper: zeros, which
    leaves all states identical under EM).
    """

    def __init__(self, n_neurons: int, n_states: int = 5, **kwargs):
        super().__init__(n_neurons, n_states, **kwargs)
        self.weights = nn.Parameter(self._randn(self.n_states, n_neurons, n_neurons, self.n_basis))

    def coupling(self) -> Tensor:
        return self.weights * self.coupling_mask[..., None]

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        self.weights.mul_(self.coupling_mask[..., None])


class GaussianPriorHMMGLM(HMMGLM):
    r"""HMM-GLM with a Gaussian prior tying the states to a shared coupling (the paper's "GHG").

    .. math:: W_s[n, n'] \sim \mathcal N(\bar W[n, n'], \sigma^2), \quad \bar W = \tfrac1S \sum_s W_s

    ``W̄`` is the closed-form maximiser given ``W`` (the paper sets it before every gradient step);
    computing it inside :meth:`log_prior` gives the same value and the same gradient
    ``-(W_s - W̄)/σ²`` (the derivative through ``W̄`` sums to zero). The full normal log-density is used
    (constant included), over the unmasked entries. ``shared_mean`` keeps ``W̄`` for export.

    Parameters
    ----------
    prior_std : float
        ``σ`` (paper: 1/3).
    """

    def __init__(self, n_neurons: int, n_states: int = 5, prior_std: float = 1.0 / 3.0, **kwargs):
        super().__init__(n_neurons, n_states, **kwargs)
        self.prior_std = float(prior_std)
        self.register_buffer("shared_mean", self.coupling().detach().mean(0))

    def log_prior(self) -> Tensor:
        w = self.coupling()
        mean = w.mean(0, keepdim=True)
        n_entries = self.n_states * self.coupling_mask.sum() * self.n_basis
        sq = ((w - mean) ** 2).sum() / (2 * self.prior_std**2)
        return -sq - n_entries * (0.5 * math.log(2 * math.pi) + math.log(self.prior_std))

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        super().after_optimizer_step()
        self.shared_mean.copy_(self.coupling().mean(0))
