"""Hyper-parameters of LangevinFlow (Song et al. 2025) in one frozen, validated dataclass.

Numeric defaults are those of the reference code's MC_Maze script (``KingJamesSong/LangevinFlow_CCN``,
``train_langevin_maze.py``). Named options cover the places where neurodyn departs from the reference;
:meth:`LangevinFlowConfig.reference` returns the preset that reproduces the reference behaviour.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

from neurodyn.errors import InputError

__all__ = ["LangevinFlowConfig"]

_CHOICES = {
    "encoder_alignment": ("current", "lagged"),
    "transition_kl": ("gaussian", "reference"),
    "integrator": ("reference", "symplectic", "ou_exact"),
    "potential": ("coupled", "none"),
    "potential_init": ("random", "zeros"),
    "init": ("default", "reference"),
    "eval_mode": ("mean", "sample"),
    "val_mask": ("none", "fixed", "random"),
    "cd_gradient": ("dropped", "reference"),
    "kl_scale": ("reference", "per_entry"),
    "decoder_precision": ("float32", "bfloat16", "auto"),
}


@dataclass(frozen=True)
class LangevinFlowConfig:
    """All hyper-parameters of :class:`~neurodyn.models.langevinflow.LangevinFlow`.

    Sizes that come from the data (held-in / total neurons, observed / forward bins) are *not* here:
    they are constructor arguments of the model, linked from the DataModule.

    Parameters
    ----------
    hidden_size
        H, width of the GRU encoder state ``h_t`` (reference 280).
    latent_dim
        D, dimension of the position ``z_t`` and velocity ``v_t``; ``None`` means D = H (reference).
        Must be divisible by ``n_channels`` (the potential views z as channels x sites).
    n_channels
        Channels C of the coupled-oscillator potential (reference 4); sites L = D / C.
    kernel_size
        Taps of the local coupling kernel (reference 3); must be odd (zero padding ``kernel_size // 2``).
    dt
        Integrator step Δ in model time units (reference 0.01, hard-coded there).
    gamma
        Damping γ ∈ [0, 1] **per step**, not per unit time: every step keeps a fraction ``1 - gamma`` of
        the velocity (reference 0.55 for MC_Maze). See ``integrator`` for the matching noise variance.
    dropout
        Dropout probability in the encoder (on the fed-back GRU state) and the decoder block (0.05).
    n_heads
        Attention heads of the decoder block (2); must divide its width 2D + H.
    ff_dim
        Feed-forward width of the decoder block (512).
    velocity_prior_var
        Variance σ_p² of the per-step velocity prior N(0, σ_p² I) in the transition KL (0.1).
    kl_max
        Final KL weight β_max; β(e) = kl_max · clip(e / kl_ramp_epochs, 0, 1) for 0-based epoch e (0.1).
        A training setting: the model's ``loss`` takes the weight β itself; the training harness computes
        it per epoch (:func:`neurodyn.training.schedules.kl_weight`). Kept here so that one config
        section holds a run's hyper-parameters.
    kl_ramp_epochs
        Epochs of the linear KL ramp (500); 0 means full weight from the first epoch (training setting,
        as ``kl_max``).
    kl_scale
        How the KL enters the loss next to the NLL, which is a mean over target entries.
        ``'reference'`` (default): β·KL with the KL summed over latent dimensions and time and averaged
        over trials, as the reference code does; its weight relative to the NLL then grows with the
        number of bins and neurons (at 5 ms and 140 bins it can swamp the likelihood).
        ``'per_entry'``: β·KL / ((T+F)·N), the KL per target entry, so that β = 1 gives the ELBO per
        entry and the balance does not depend on bin width, trial length or neuron count.
    cd_keep_prob
        Coordinated dropout: the **KEEP** probability p of each held-in input entry (reference name
        ``cd_rate``, which is *not* a drop rate; 0.5 for MC_Maze). Kept inputs are scaled by 1/p; which
        entries then get gradient is set by ``cd_gradient``. ``1.0`` switches coordinated dropout off
        (every entry gets gradient).
    cd_gradient
        ``'dropped'`` (default): only dropped entries get gradient, so no gradient ever rewards passing
        an input bin through to its own rate (the point of coordinated dropout; with a GRU state h_t that
        reaches the decoder directly, any leak lets the model learn the identity and fit noise).
        ``'reference'``: dropped entries always, kept entries with probability 1 - p.
    encoder_alignment
        ``'current'`` (paper, default): GRU step t reads bin x_t; forward steps re-read x_{T-1}.
        ``'lagged'`` (reference code): h_0 reads x_0, step t ≥ 1 reads x_{t-1}, so x_0 is read twice
        and x_{T-1} only during the forward steps.
    transition_kl
        ``'gaussian'`` (default): Σ_t KL(N(m_t, σ²I) ‖ N(0, σ_p² I)) with the transition mean m_t (the
        velocity before noise is added) and the integrator's noise variance σ². ``'reference'``: the
        reference's term ½ Σ [ln σ_p² - 2γ - 1 + v_t²/σ_p² + e^{2γ}/σ_p²] with the *sampled* v_t, i.e. an
        L2 penalty on velocities. Both are computed with the nominal σ² even when ``noise=False``, so the
        noise ablation changes the dynamics, not the objective.
    integrator
        ``'reference'``: explicit Euler, z_t = z + Δv, v_t = (1-γ)(v - Δ∇U(z)) + √(2γ) ξ.
        ``'symplectic'``: symplectic Euler (kick with the old z, drift with the new v), same friction
        and noise as the reference. ``'ou_exact'`` (default): BAOAB splitting, half kick, half drift,
        exact Ornstein-Uhlenbeck step v ← (1-γ)v + √(2γ - γ²) ξ, half drift, half kick; its stationary
        velocity law is N(0, I), the prior of v_0.
    potential
        ``'coupled'`` (default): the learned coupled-oscillator potential. ``'none'``: U = 0, free
        inertial dynamics (ablation).
    noise
        Draw the stochastic force ξ in sampled passes (``False``: ablation, deterministic dynamics).
    causal
        Causal attention mask in the decoder, making it a filter instead of a smoother.
    positional_encoding
        Add a sinusoidal position code to the decoder input (the reference has none).
    potential_init
        ``'random'`` (default): kernel entries N(0, 1) (only directions matter after normalisation).
        ``'zeros'``: reference; at K = 0 the first gradient through the normalisation is ~1e12 too large.
    init
        ``'default'``: PyTorch's standard transformer init. ``'reference'``: feed-forward weights and the
        attention output projection scaled by 0.67·3^(-1/4) (T-Fixup written for 3 layers).
    eval_mode
        ``'sample'`` (default, as the reference): log-rates averaged over ``n_eval_samples`` stochastic
        passes (z_0, v_0 and ξ drawn; dropout off). ``'mean'``: one deterministic pass with the posterior
        means of z_0, v_0 and ξ = 0. The decoder is trained on noisy velocities (per-step noise std
        √(2γ-γ²), 0.71 at γ = 0.3), so a noiseless pass feeds it inputs it never saw: on the real
        MC_Maze_Small pseudo split (γ = 0.3; ``benchmarks/real_pseudo_cosmoothing.py --seed 0``) the same
        weights give co-bps 0.211 sampled and -0.518 deterministic. At small γ the gap is small (Lorenz,
        γ = 0.1; ``benchmarks/lorenz.py --seed 1 --epochs 200``: rate R2 0.969 deterministic, 0.971
        sampled), and the deterministic pass is 50x cheaper.
    n_eval_samples
        Passes averaged in ``'sample'`` evaluation mode (reference 50).
    sv_rate
        Sample-validation keep probability on the held-out x forward block (reference 0.8).
    val_mask
        Validation monitor: ``'none'`` (default, the plain masked Poisson NLL), ``'fixed'`` (a sample-
        validation mask drawn from ``sv_seed``, identical at every call), ``'random'`` (reference, fresh).
    sv_seed
        Seed of the ``'fixed'`` sample-validation mask.
    decoder_precision
        Speed option. ``'float32'`` (default): the transformer block runs in the parameters' precision
        (or under an autocast the caller opened, e.g. Lightning's ``precision='bf16-mixed'``).
        ``'bfloat16'``: the transformer block runs under bf16 autocast. ``'auto'``: bf16 where the
        device multiplies bf16 natively (CUDA with bf16; CPUs with ``avx512_bf16`` or AMX), else
        float32. In every case the encoder, the initial-state posterior, the latent dynamics and the
        readout run in float32 with autocast off (z moves by Δ·v = 0.01·v per step, which bf16's 8-bit
        mantissa would round away).
    compile
        Speed option: run the transformer block through ``torch.compile`` (falls back to eager with a
        warning when compilation fails). Same arithmetic; the first passes pay the compile time.
    checkpoint_decoder
        Memory option: recompute the transformer block's activations during backward instead of
        storing them (``torch.utils.checkpoint``; same dropout masks, same gradients). At MC_Maze size
        the activations kept from forward to backward drop from ~270 MB to ~40 MB, for one extra forward
        of the block; on a CPU that did not lower the process's peak RSS (the backward pass and the
        allocator set the peak; ``benchmarks/langevinflow_speed.py --reference PATH --recompute``).
    train_chunks
        Memory option: split each training batch into this many chunks of trials and recompute each
        chunk's whole pass (encoder, dynamics, decoder, loss) during backward instead of storing its
        activations (``torch.utils.checkpoint``), so the activations alive at once are a chunk's. Same
        objective (the chunks' NLL and KL are recombined with their weights) and gradients equal to
        running the chunks one after another; the random draws (coordinated-dropout masks, ε, ξ,
        dropout) are made chunk by chunk, so they differ from an unchunked pass of the same seed. Costs
        one extra forward pass. 1 (default): off.
    cuda_graph
        Speed option, CUDA only: replay the Langevin recurrence as a CUDA graph (one launch instead of
        ~10 per step). Same arithmetic; each batch shape is captured once. Ignored on other devices.

    Examples
    --------
    >>> cfg = LangevinFlowConfig(hidden_size=32, n_heads=2)
    >>> cfg.latent_size
    32
    >>> LangevinFlowConfig.reference().integrator
    'reference'
    """

    hidden_size: int = 280
    latent_dim: int | None = None
    n_channels: int = 4
    kernel_size: int = 3
    dt: float = 0.01
    gamma: float = 0.55
    dropout: float = 0.05
    n_heads: int = 2
    ff_dim: int = 512
    velocity_prior_var: float = 0.1
    kl_max: float = 0.1
    kl_ramp_epochs: int = 500
    kl_scale: Literal["reference", "per_entry"] = "reference"
    cd_keep_prob: float = 0.5
    cd_gradient: Literal["dropped", "reference"] = "dropped"
    encoder_alignment: Literal["current", "lagged"] = "current"
    transition_kl: Literal["gaussian", "reference"] = "gaussian"
    integrator: Literal["reference", "symplectic", "ou_exact"] = "ou_exact"
    potential: Literal["coupled", "none"] = "coupled"
    noise: bool = True
    causal: bool = False
    positional_encoding: bool = False
    potential_init: Literal["random", "zeros"] = "random"
    init: Literal["default", "reference"] = "default"
    eval_mode: Literal["mean", "sample"] = "sample"
    n_eval_samples: int = 50
    sv_rate: float = 0.8
    val_mask: Literal["none", "fixed", "random"] = "none"
    sv_seed: int = 0
    decoder_precision: Literal["float32", "bfloat16", "auto"] = "float32"
    compile: bool = False
    checkpoint_decoder: bool = False
    train_chunks: int = 1
    cuda_graph: bool = False

    def __post_init__(self) -> None:
        for name, choices in _CHOICES.items():
            if getattr(self, name) not in choices:
                raise InputError(f"must be one of {choices}, got {getattr(self, name)!r}", field=name)
        _positive_int(self, "hidden_size", "n_channels", "kernel_size", "n_heads", "ff_dim", "n_eval_samples",
                      "train_chunks")
        if self.latent_dim is not None:
            _positive_int(self, "latent_dim")
        if self.kernel_size % 2 != 1:
            raise InputError(f"must be odd, got {self.kernel_size}", field="kernel_size")
        if self.latent_size % self.n_channels:
            raise InputError(
                f"latent size {self.latent_size}"
                + (" (latent_dim unset: hidden_size)" if self.latent_dim is None else "")
                + f" is not divisible by n_channels={self.n_channels}",
                field="latent_dim",
                involves=("n_channels",) + (("hidden_size",) if self.latent_dim is None else ()),
            )
        if self.decoder_width % self.n_heads:
            raise InputError(
                f"decoder width 2*latent+hidden = {self.decoder_width} is not divisible by "
                f"n_heads={self.n_heads}",
                field="n_heads",
                involves=("hidden_size",) + (("latent_dim",) if self.latent_dim is not None else ()),
            )
        _in_range(self, "dt", 0.0, None, low_open=True)
        _in_range(self, "gamma", 0.0, 1.0)
        _in_range(self, "dropout", 0.0, 1.0, high_open=True)
        _in_range(self, "velocity_prior_var", 0.0, None, low_open=True)
        _in_range(self, "kl_max", 0.0, None)
        _in_range(self, "cd_keep_prob", 0.0, 1.0, low_open=True)
        _in_range(self, "sv_rate", 0.0, 1.0, low_open=True)
        for name in ("noise", "causal", "positional_encoding", "compile", "checkpoint_decoder", "cuda_graph"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"must be true or false, got {getattr(self, name)!r}", field=name)
        if not isinstance(self.kl_ramp_epochs, int) or self.kl_ramp_epochs < 0:
            raise InputError(f"must be an integer >= 0, got {self.kl_ramp_epochs!r}", field="kl_ramp_epochs")

    @property
    def latent_size(self) -> int:
        """D, the dimension of z and v (``latent_dim``, or ``hidden_size`` when that is None)."""
        return self.hidden_size if self.latent_dim is None else self.latent_dim

    @property
    def decoder_width(self) -> int:
        """Width 2D + H of the decoder input e_t = [z_t; v_t; h_t]."""
        return 2 * self.latent_size + self.hidden_size

    @classmethod
    def reference(cls, **overrides) -> LangevinFlowConfig:
        """The preset reproducing the MIT reference code (https://github.com/KingJamesSong/LangevinFlow_CCN).

        Equal to the reference module's loss, rates and gradients in float64
        (``tests/langevinflow/test_lf_reference_parity.py``).

        Parameters
        ----------
        **overrides
            Fields to change on top of the preset (e.g. ``hidden_size=64``, ``gamma=0.7``).
        """
        preset = dict(
            encoder_alignment="lagged",
            transition_kl="reference",
            integrator="reference",
            potential="coupled",
            noise=True,
            causal=False,
            positional_encoding=False,
            potential_init="zeros",
            init="reference",
            eval_mode="sample",
            val_mask="random",
            cd_gradient="reference",
        )
        preset.update(overrides)
        return cls(**preset)

    def replace(self, **changes) -> LangevinFlowConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _positive_int(cfg: LangevinFlowConfig, *names: str) -> None:
    for name in names:
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"must be a positive integer, got {value!r}", field=name)


def _in_range(cfg, name, low, high, *, low_open=False, high_open=False) -> None:
    value = getattr(cfg, name)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok:
        ok = (value > low) if low_open else (value >= low)
    if ok and high is not None:
        ok = (value < high) if high_open else (value <= high)
    if not ok:
        low_b = "(" if low_open else "["
        high_b = ")" if high_open else "]"
        hi = "inf" if high is None else high
        raise InputError(f"must lie in {low_b}{low}, {hi}{high_b}, got {value!r}", field=name)
