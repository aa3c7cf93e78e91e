"""Configuration dataclass and factory for the switching-GLM family (used by the Lightning wrapper)."""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass

from neurodyn.errors import InputError, whole_number
from neurodyn.models.hmmglm.models import GLM, HMMGLM, GaussianPriorHMMGLM, SwitchingGLM
from neurodyn.models.hmmglm.priors import OneHotPriorHMMGLM

__all__ = ["HMMGLMConfig", "build_model", "check_config", "VARIANTS"]

#: variant name -> class
VARIANTS = {"glm": GLM, "hmmglm": HMMGLM, "gaussian": GaussianPriorHMMGLM, "onehot": OneHotPriorHMMGLM}
#: ``init_std`` when the configuration leaves it None (paper: zeros; see :class:`HMMGLMConfig`)
DEFAULT_INIT_STD = {"glm": 0.0, "hmmglm": 0.1, "gaussian": 0.1, "onehot": 0.0}


@dataclass(frozen=True)
class HMMGLMConfig:
    """Hyperparameters of a switching GLM (defaults: the paper's settings).

    Attributes
    ----------
    variant : str
        ``"glm"`` (one state), ``"hmmglm"`` (independent states), ``"gaussian"`` (Gaussian prior tying
        states), ``"onehot"`` (one-hot connection-type prior shared by states).
    n_states : int
        Number of hidden states ``S`` (ignored for ``"glm"``).
    n_lags : int
        History window in bins.
    basis : str
        ``"exponential"`` (paper: decay 1, span 5) or ``"raised_cosine"``.
    decay, span : float
        Exponential basis parameters.
    n_basis : int
        Raised-cosine functions.
    link : str
        ``"sigmoid"`` (bounded, paper), ``"exp"`` or ``"softplus"``.
    emission : str
        ``"poisson"`` or ``"bernoulli"``.
    self_connections : bool
        Learn ``W_s[n, n]``. Default True, as the paper's demo (whose figures the benchmark
        compares with) and its simulator; the paper-era training functions mask the diagonal
        (``False``).
    sticky : float
        Initial self-transition probability.
    transition_floor : float or None
        Clamp of ``log P`` in the transition update (paper -8; None = exact).
    init_std : float or None
        Std of random initial couplings / adjacency logits. ``None`` (default): the paper's zeros for
        ``"glm"`` and ``"onehot"`` (whose Gumbel-softmax M-step breaks the symmetry between states),
        0.1 for ``"hmmglm"`` and ``"gaussian"`` -- a documented departure: from the paper's zeros
        their states stay identical under EM (every state gets the same γ and the same gradient),
        so state accuracy stays at the largest state's share.
    seed : int or None
        Seed of the model's generator (initial couplings, Gumbel noise). ``None`` (default): the Lightning
        module (``neurodyn fit``) takes the run's seed, ``seed_everything`` (so ``--seed_everything`` starts
        EM from another point, as it does for LangevinFlow; the run's ``config.yaml`` records it);
        :func:`build_model` uses 0, the recipes their own seeds.
    prior_std : float
        Gaussian prior std (``"gaussian"``; paper 1/3).
    gumbel_temperature, prior_temperature : float
        One-hot prior temperatures (paper 0.2, 0.2).
    prior_alpha : str
        ``"log_prob"`` (``log α = log π̄``) or ``"prob"`` (paper-era quirk).
    prior_form : str
        ``"concrete"`` (paper) or ``"categorical"`` (``-KL(q ‖ π̄)``), one-hot prior only.
    m_step_mode : str
        ``"gumbel"`` (paper), ``"softmax"`` (deterministic M-step) or ``"auto"`` (default: ``"gumbel"``
        with the bounded sigmoid link, ``"softmax"`` with ``"exp"`` and ``"softplus"``, whose Gumbel
        M-step averages unbounded sampled rates and, with ``"exp"`` on a population of ~100 units,
        lowers the likelihood every iteration; see :class:`~.priors.OneHotPriorHMMGLM`), one-hot prior only.
    bias_init : str
        ``"inverse_link"`` (``b = λ^{-1}(mean count)``, the initial rate equals the mean count) or
        ``"mean_count"`` (``b`` = the mean count, the paper demo's start; with the sigmoid link every
        neuron then starts near 0.5 spikes per bin). A documented departure: the ``"paper"`` one-hot
        recipe uses the demo's start (``benchmarks/onehot_reference.py`` measures the difference).
    """

    variant: str = "onehot"
    n_states: int = 5
    n_lags: int = 5
    basis: str = "exponential"
    decay: float = 1.0
    span: float = 5.0
    n_basis: int = 3
    link: str = "sigmoid"
    emission: str = "poisson"
    self_connections: bool = True
    sticky: float = 0.98
    transition_floor: float | None = -8.0
    init_std: float | None = None
    seed: int | None = None
    prior_std: float = 1.0 / 3.0
    gumbel_temperature: float = 0.2
    prior_temperature: float = 0.2
    prior_alpha: str = "log_prob"
    prior_form: str = "concrete"
    m_step_mode: str = "auto"
    bias_init: str = "inverse_link"


def _number(values: dict, name: str, *, low: float, strict: bool, allow_none: bool = False) -> None:
    """One-line InputError unless ``values[name]`` is a finite number above ``low`` (``>=`` if not strict)."""
    value = values.get(name)
    if value is None and allow_none:
        return
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if strict else value >= low)
    if not ok:
        raise InputError(f"must be a finite number {'>' if strict else '>='} {low:g}, got {value!r}", field=name)


def check_config(values: dict) -> None:
    """The numeric settings of a configuration (a dict of :class:`HMMGLMConfig` fields), before any model is
    built: a bad one is a one-line InputError naming the field, not a traceback (``math domain error``) or a
    non-finite loss at the first step. Settings a variant does not use are checked too (they are in the
    config, its checkpoint and its hyper-parameters).

    Examples
    --------
    >>> check_config(asdict(HMMGLMConfig(prior_std=0.0)))
    Traceback (most recent call last):
    ...
    neurodyn.errors.InputError: prior_std: must be a finite number > 0, got 0.0
    """
    for name in ("decay", "init_std"):
        _number(values, name, low=0.0, strict=False, allow_none=name == "init_std")
    for name in ("span", "prior_std", "gumbel_temperature", "prior_temperature"):
        _number(values, name, low=0.0, strict=True)
    floor = values.get("transition_floor")
    if floor is not None:
        ok = isinstance(floor, numbers.Real) and not isinstance(floor, bool) and math.isfinite(floor) and floor <= 0
        if not ok:
            raise InputError(f"must be a finite log-probability <= 0 or None, got {floor!r}", field="transition_floor")
    for name in ("n_states", "n_lags", "n_basis"):
        value = values.get(name)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise InputError(f"must be an integer >= 1, got {value!r}", field=name)


def build_model(n_neurons: int, config: HMMGLMConfig | None = None, **overrides) -> SwitchingGLM:
    """Instantiate the model described by ``config`` (keyword overrides win).

    Examples
    --------
    >>> type(build_model(6, HMMGLMConfig(variant="gaussian", n_states=3))).__name__
    'GaussianPriorHMMGLM'
    """
    if whole_number(n_neurons) is None or n_neurons < 1:
        raise InputError(f"must be a whole number >= 1, got {n_neurons!r}", field="n_neurons")  # a torch TypeError
    values = asdict(config if config is not None else HMMGLMConfig())
    values.update(overrides)
    check_config(values)
    variant = values.pop("variant")
    if variant not in VARIANTS:
        raise InputError(f"must be one of {tuple(VARIANTS)}, got {variant!r}", field="variant")
    if values.get("seed") is None:
        values["seed"] = 0
    if values.get("init_std") is None:
        values["init_std"] = DEFAULT_INIT_STD[variant]
    prior_std = values.pop("prior_std")
    onehot_keys = ("gumbel_temperature", "prior_temperature", "prior_alpha", "prior_form", "m_step_mode")
    onehot = {k: values.pop(k) for k in onehot_keys}
    if variant == "glm":
        values.pop("n_states")
        return GLM(n_neurons, **values)
    if variant == "gaussian":
        return GaussianPriorHMMGLM(n_neurons, prior_std=prior_std, **values)
    if variant == "onehot":
        return OneHotPriorHMMGLM(n_neurons, **onehot, **values)
    return HMMGLM(n_neurons, **values)
