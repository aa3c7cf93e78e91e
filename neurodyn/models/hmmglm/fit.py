r"""Plain-torch fitting of switching GLMs: generalised EM and direct marginal-likelihood ascent.

EM, per E-step (the full data set, or one mini-batch of sequences in stochastic EM):

1. E-step: ``γ, ξ = forward_backward(...)`` under the current parameters (no gradient).
2. Transitions: closed form from ``Σ_b Σ_t ξ`` of the sequences of this E-step
   (:meth:`SwitchingGLM.update_transitions`). In stochastic EM this is the paper's *per-sequence*
   re-estimation (``transition_update="batch"``, with ``batch_size=1``: ``P`` is re-estimated from each
   sequence's ``ξ`` alone before its M-step, and the next sequence's E-step uses it); the alternative
   ``"epoch"`` pools ``ξ`` over all mini-batches of an epoch and updates once at its end.
3. ``n_inner`` Adam steps on ``-(Q + log prior)`` (:meth:`SwitchingGLM.m_step_loss`), each followed by
   :meth:`SwitchingGLM.after_optimizer_step`.

This is *generalised* EM: Adam steps need not increase Q, so the objective ``log p(X) + log prior``
may dip. With ``monotone=True`` an M-step is kept only if it increases ``Q + log prior`` (evaluated
deterministically, :meth:`SwitchingGLM.q_value`); otherwise parameters are restored and the optimiser
state reset. Then, by the EM inequality ``log p(X|θ') - log p(X|θ) >= Q(θ'|θ) - Q(θ|θ)``, the
objective never decreases (up to rounding).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from neurodyn.errors import InputError, check_whole
from neurodyn.models.hmmglm.emissions import validate_spikes
from neurodyn.models.hmmglm.fused import gradient_only, release_reused
from neurodyn.models.hmmglm.models import SwitchingGLM

__all__ = ["FitHistory", "fit_em", "fit_gradient"]


@dataclass
class FitHistory:
    """What a fit did.

    Attributes
    ----------
    objective : list of float
        ``Σ_b log p(X_b) + log prior`` (nats): for EM at the start of every iteration and once after
        the last; for gradient fitting before every step and once after the last.
    accepted : list of bool
        EM only: whether each M-step was kept (always True unless ``monotone``).
    seconds : float
        Wall-clock time of the fit.
    m_step_mode : str or None
        EM of the one-hot prior: the M-step this fit ran (``"gumbel"`` or ``"softmax"``; a recipe's phases may
        differ); None for the other variants, for gradient fitting and for a fit that took no M-step.
    """

    objective: list[float] = field(default_factory=list)
    accepted: list[bool] = field(default_factory=list)
    seconds: float = 0.0
    m_step_mode: str | None = None


def _progress(enabled: bool, total: int, label: str):
    """A rich progress bar (or a no-op context) for CLI use."""
    if not enabled:
        return None
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=False,
    )
    bar.start()
    bar.add_task(label, total=total)
    return bar


def _adam(model: SwitchingGLM, lr: float) -> torch.optim.Optimizer:
    """Adam over the model's parameters, fused into one kernel where this torch build offers it for their
    device (CPU since torch 2.4: one kernel instead of a loop of small per-tensor ops, the cheaper step on
    these small parameters; same update up to rounding), else the default implementation."""
    try:
        return torch.optim.Adam(model.parameters(), lr=lr, fused=True)
    except (RuntimeError, ValueError):
        return torch.optim.Adam(model.parameters(), lr=lr)


def _prepare(model: SwitchingGLM, spikes, init_bias: bool, features: Tensor | None = None) -> tuple[Tensor, Tensor]:
    dtype = model.bias.dtype
    x = validate_spikes(spikes, n_lags=model.n_lags, emission=model.emission,
                        n_neurons=model.n_neurons, dtype=dtype).to(model.bias.device)
    if init_bias:
        model.init_bias(x)
    if features is None:
        with torch.no_grad():
            features = model.history(x)
    elif features.shape != (*x.shape[:2], model.n_neurons * model.n_basis) or features.dtype != dtype:
        raise ValueError(f"features {tuple(features.shape)} {features.dtype} are not this model's history "
                         f"regressors of spikes {tuple(x.shape)} ({dtype})")
    return x, features


def fit_em(
    model: SwitchingGLM,
    spikes,
    n_iters: int = 20,
    n_inner: int = 50,
    lr: float = 0.01,
    init_bias: bool = True,
    monotone: bool = False,
    progress: bool = False,
    callback: Callable[[int, SwitchingGLM, float], None] | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    transition_update: str = "batch",
    shuffle: bool = True,
    e_step_floor: float | None = None,
    features: Tensor | None = None,
) -> FitHistory:
    """Fit by (generalised) EM; returns the objective history.

    Parameters
    ----------
    model : SwitchingGLM
        Fitted in place (any variant; a GLM's E-step is trivial).
    spikes : array-like (B, T, N)
        Counts per bin; validated (:func:`validate_spikes`).
    n_iters : int
        E-steps (a whole number >= 0; 0 only scores the start).
    n_inner : int
        Adam steps per M-step (paper: 50 per sequence); 0 leaves the couplings alone (E-steps and transition
        updates only).
    lr : float
        Adam learning rate (paper 0.01).
    init_bias : bool
        Start the bias at the inverse link of each neuron's mean count.
    monotone : bool
        Keep an M-step only if it increases ``Q + log prior`` (see module docstring).
    progress : bool
        Show a rich progress bar.
    callback : callable, optional
        ``callback(iteration, model, objective)`` after each E-step (full batch) or epoch.
    batch_size : int, optional
        Stochastic EM, as the paper's training: each iteration is an epoch over the sequences in
        random mini-batches of this many; each mini-batch gets its own E-step and ``n_inner`` Adam
        steps; the transitions are updated as ``transition_update`` says. The recorded objective is
        then the sum of the mini-batch ``log p(X_b)`` during the epoch (+ log prior). ``None``: full
        batch. Not combinable with ``monotone``.
    seed : int
        Seed of the mini-batch order.
    transition_update : {"batch", "epoch"}
        Stochastic EM only. ``"batch"`` (paper): re-estimate ``P`` from each mini-batch's ``ξ`` right
        after its E-step (per sequence when ``batch_size=1``). ``"epoch"``: pool ``ξ`` over the epoch
        and update once at its end.
    shuffle : bool
        Stochastic EM only: visit the sequences in a random order each epoch (``False``: in order,
        as the paper's training loop does).
    e_step_floor : float, optional
        Floor of ``log p(x_t | s)`` in the E-steps of this fit (the paper's code floors emission
        probabilities at ``1e-16`` in its training; ``None``: exact posteriors). The per-iteration
        objectives then come from the floored E-steps; the final one is exact.
    features : Tensor (B, T, N * n_basis), optional
        ``model.history(spikes)`` when already computed (several fits of one configuration on the same
        spikes, as :func:`~neurodyn.models.hmmglm.recipes.fit_recipe`'s phases and restarts); computed
        when None.

    Examples
    --------
    >>> import torch
    >>> from neurodyn.models.hmmglm import HMMGLM
    >>> x = torch.poisson(torch.full((2, 60, 3), 0.4, dtype=torch.float64))
    >>> h = fit_em(HMMGLM(3, n_states=2).double(), x, n_iters=2, n_inner=3)
    >>> len(h.objective)
    3
    """
    _check_lr(lr)
    n_iters, n_inner = check_whole(n_iters, "n_iters", 0), check_whole(n_inner, "n_inner", 0)
    check_whole(seed, "seed")  # 1.5 was seed 1
    if batch_size is not None:
        batch_size = check_whole(batch_size, "batch_size", 1)  # 0, -1 and 1.5 ran batches of 1
    if batch_size is not None and monotone:
        raise ValueError("monotone EM needs full-batch E-steps (batch_size=None)")
    if transition_update not in {"batch", "epoch"}:
        raise ValueError(f"transition_update must be 'batch' or 'epoch', got {transition_update!r}")
    start = time.perf_counter()
    x, features = _prepare(model, spikes, init_bias, features)
    history = FitHistory()
    make_optimizer = lambda: _adam(model, lr)  # noqa: E731
    optimizer = make_optimizer()
    bar = _progress(progress, n_iters, f"EM {type(model).__name__}")
    order_generator = torch.Generator().manual_seed(int(seed))
    stepped = False  # whether an M-step may have changed the model: its step is then recorded, also if interrupted
    try:
        for it in range(n_iters):
            if batch_size is not None:
                stepped = stepped or n_inner > 0
                objective = _stochastic_epoch(
                    model, optimizer, x, features, batch_size, n_inner, order_generator, transition_update, shuffle,
                    e_step_floor,
                )
                history.objective.append(objective)
                history.accepted.append(True)
                if callback is not None:
                    callback(it, model, objective)
                if bar is not None:
                    bar.update(bar.task_ids[0], advance=1, description=f"EM epoch objective {objective:.6g}")
                continue
            posterior = model.e_step(x, features, e_step_floor)
            with torch.no_grad():
                objective = float(posterior.log_marginal.sum() + model.log_prior())
            history.objective.append(objective)
            if callback is not None:
                callback(it, model, objective)
            if monotone:
                q_old = float(model.q_value(x, posterior, features))
                saved = copy.deepcopy(model.state_dict())
            model.update_transitions(posterior.expected_transitions.sum(0))
            for _ in range(n_inner):
                optimizer.zero_grad(set_to_none=True)
                with gradient_only():  # the loss is only differentiated here
                    loss = model.m_step_loss(x, posterior, features)
                loss.backward()
                stepped = True
                optimizer.step()
                model.after_optimizer_step()
            accepted = True
            if monotone and float(model.q_value(x, posterior, features)) < q_old:
                model.load_state_dict(saved)
                optimizer = make_optimizer()
                accepted = False
            history.accepted.append(accepted)
            if bar is not None:
                bar.update(
                    bar.task_ids[0],
                    advance=1,
                    description=f"EM {type(model).__name__} objective {objective:.6g}",
                )
        with torch.no_grad():
            history.objective.append(float(model.objective(x, features)))
    finally:
        release_reused()
        if bar is not None:
            bar.stop()
        if stepped and getattr(model, "m_step_mode", None) is not None:
            # the one-hot M-step that ran, appended to the model's record of its fits in order: a recipe switches
            # the step between phases (Gumbel, then a softmax polish), so the model's own m_step_mode, which it
            # restores, does not say what fitted it (export_model_h5 writes the record). In the finally: a fit
            # stopped after some M-steps (Ctrl-C, a callback that raises) changed the couplings with this step too
            history.m_step_mode = model.m_step_mode
            model.m_step_phases = (*getattr(model, "m_step_phases", ()), model.m_step_mode)
    history.seconds = time.perf_counter() - start
    return history


def _stochastic_epoch(
    model, optimizer, x, features, batch_size, n_inner, generator, transition_update="batch", shuffle=True,
    e_step_floor=None,
) -> float:
    """One epoch of mini-batch EM; returns Σ_batches log p(X_batch) + log prior (nats)."""
    order = torch.randperm(x.shape[0], generator=generator) if shuffle else torch.arange(x.shape[0])
    order = order.to(x.device)
    xi_sum, total = None, 0.0
    for idx in order.split(max(1, int(batch_size))):
        xb, fb = x[idx], features[idx]
        posterior = model.e_step(xb, fb, e_step_floor)
        total += float(posterior.log_marginal.sum())
        xi = posterior.expected_transitions.sum(0)
        if transition_update == "batch":  # paper: P from this sequence's ξ, before its M-step
            model.update_transitions(xi)
        else:
            xi_sum = xi if xi_sum is None else xi_sum + xi
        for _ in range(n_inner):
            optimizer.zero_grad(set_to_none=True)
            with gradient_only():
                loss = model.m_step_loss(xb, posterior, fb)
            loss.backward()
            optimizer.step()
            model.after_optimizer_step()
    if xi_sum is not None:
        model.update_transitions(xi_sum)
    with torch.no_grad():
        return total + float(model.log_prior())



def _check_lr(lr) -> None:
    """A finite learning rate > 0, or one InputError (was torch.optim's ValueError 'Invalid learning rate')."""
    try:
        value = float(lr)  # Python, numpy or 0-d torch numbers alike
    except (TypeError, ValueError):
        value = math.nan
    if isinstance(lr, bool) or not (math.isfinite(value) and value > 0):
        raise InputError(f"must be a finite number > 0, got {lr!r}", field="lr")


def fit_gradient(
    model: SwitchingGLM,
    spikes,
    n_steps: int = 500,
    lr: float = 0.01,
    init_bias: bool = True,
    progress: bool = False,
) -> FitHistory:
    """Maximise ``Σ_b log p(X_b) + log prior`` directly with Adam (exact gradient, forward algorithm).

    The only way to fit a :class:`GLM` (one state) and an alternative to EM for the others; the
    transition matrix is learned by gradient too.

    Examples
    --------
    >>> import torch
    >>> from neurodyn.models.hmmglm import GLM
    >>> x = torch.poisson(torch.full((2, 60, 3), 0.4, dtype=torch.float64))
    >>> h = fit_gradient(GLM(3).double(), x, n_steps=5)
    >>> h.objective[-1] > h.objective[0]
    True
    """
    _check_lr(lr)
    n_steps = check_whole(n_steps, "n_steps", 0)
    start = time.perf_counter()
    x, features = _prepare(model, spikes, init_bias)
    history = FitHistory()
    optimizer = _adam(model, lr)
    bar = _progress(progress, n_steps, f"gradient {type(model).__name__}")
    try:
        for _ in range(n_steps):
            optimizer.zero_grad(set_to_none=True)
            objective = model.objective(x, features)
            (-objective).backward()
            optimizer.step()
            model.after_optimizer_step()
            history.objective.append(float(objective.detach()))
            if bar is not None:
                bar.update(bar.task_ids[0], advance=1, description=f"gradient objective {history.objective[-1]:.6g}")
        with torch.no_grad():
            history.objective.append(float(model.objective(x, features)))
    finally:
        release_reused()
        if bar is not None:
            bar.stop()
    history.seconds = time.perf_counter() - start
    return history
