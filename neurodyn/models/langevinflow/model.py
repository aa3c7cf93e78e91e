"""LangevinFlow (Song, Keller, Yue, Perona, Welling 2025) as a plain ``nn.Module``.

Generative path for one trial with held-in counts x (T bins × N_in neurons):

    h_t      = dropout(GRU(x_{s(t)}, h_{t-1})),              t = 0 … T+F-1   (encoder.input_schedule)
    z_0, v_0 ~ N(μ_z(h_0), σ_z²(h_0)) N(μ_v(h_0), σ_v²(h_0))     (priors N(0, I))
    (z_t, v_t) = Langevin step of (z_{t-1}, v_{t-1}) in the learned potential U (integrator.py)
    ℓ_t      = W_out · Block([z_t; v_t; h_t])_t + b_out          log expected counts per bin, N_out neurons
    y_{t,n}  ~ Poisson(exp ℓ_{t,n})                            neurons [held-in | held-out], bins [obs | fwd]

Held-out neurons and forward bins never enter the encoder: ``forward`` takes the held-in block only.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch
from rich.progress import track
from torch import Tensor, nn

from neurodyn.errors import InputError
from neurodyn.models.langevinflow import loss as terms
from neurodyn.models.langevinflow._random import randn
from neurodyn.models.langevinflow.accel import CompiledOrEager, GraphedRollout, native_bf16, recomputed
from neurodyn.models.langevinflow.config import LangevinFlowConfig
from neurodyn.models.langevinflow.decoder import PostNormTransformerBlock, sinusoidal_positions
from neurodyn.models.langevinflow.encoder import GRUEncoder, InitialStatePosterior, input_schedule
from neurodyn.models.langevinflow.integrator import Rollout, langevin_rollout, noise_std, rollout_tensors
from neurodyn.models.langevinflow.interface import LangevinFlowOutput, check_batch, check_heldin
from neurodyn.models.langevinflow.potential import CoupledOscillatorPotential

__all__ = ["LangevinFlow"]


def _counts_for(heldin, weight: Tensor) -> Tensor:
    """``heldin`` checked as counts (finite, >= 0: a NaN count made every rate of its trial NaN, a negative one
    passed) and cast to the parameters' dtype and device (float64 or integer counts were a torch dtype error). Here, not
    in :meth:`LangevinFlow.forward`: the check reads the values, a device sync per training step on a GPU.

    A numpy array of numbers is taken as a tensor (as the metrics take either); anything else that is no tensor
    (a list, a bool or text array) is a one-line InputError naming its type."""
    if isinstance(heldin, np.ndarray) and heldin.dtype.kind in "iuf":
        heldin = torch.from_numpy(heldin.astype(np.float64))  # a copy: any byte order, strides or width
    elif not isinstance(heldin, Tensor):
        got = f"ndarray of {heldin.dtype}" if isinstance(heldin, np.ndarray) else type(heldin).__name__
        raise InputError(f"expected a (batch, bins, held-in neurons) tensor or numpy array of counts, got {got}",
                         field="heldin")
    if isinstance(heldin, Tensor) and heldin.dtype != torch.bool and not heldin.is_complex():
        heldin = heldin.to(device=weight.device, dtype=weight.dtype)  # integer counts too
        if bool((torch.isfinite(heldin) & (heldin >= 0)).all()):  # one read of the device (validation calls this)
            return heldin
        bad = ~torch.isfinite(heldin)
        if bad.any():
            raise InputError(f"{int(bad.sum())} NaN or infinite counts (unobserved bins: 0, as the DataModules "
                             "serve them)", field="heldin")
        raise InputError(f"negative counts (min {float(heldin.min()):g})", field="heldin")
    return heldin


class LangevinFlow(nn.Module):
    """GRU encoder → underdamped Langevin latent dynamics → transformer decoder → Poisson log-rates.

    Parameters
    ----------
    n_heldin
        N_in, held-in neurons (encoder input).
    n_neurons
        N_out = held-in + held-out neurons (readout); order [held-in | held-out].
    n_obs_bins
        T, observed bins given to the encoder.
    n_fwd_bins
        F, forward-prediction bins unrolled after T (no data).
    config
        :class:`LangevinFlowConfig` (hyper-parameters and options).

    Examples
    --------
    >>> cfg = LangevinFlowConfig(hidden_size=8, ff_dim=16)
    >>> model = LangevinFlow(n_heldin=3, n_neurons=5, n_obs_bins=6, n_fwd_bins=2, config=cfg)
    >>> out = model(torch.poisson(torch.ones(4, 6, 3)))
    >>> out.log_rates.shape
    torch.Size([4, 8, 5])
    >>> model.predict(torch.zeros(4, 6, 3))["rates"].shape
    torch.Size([4, 8, 5])
    """

    #: tokens per chunk of a CPU evaluation pass (no_grad, eval mode); see :meth:`forward`
    EVAL_CHUNK_TOKENS = 1024

    def __init__(self, n_heldin: int, n_neurons: int, n_obs_bins: int, n_fwd_bins: int,
                 config: LangevinFlowConfig = LangevinFlowConfig()):  # noqa: B008 (frozen, immutable)
        super().__init__()
        for name, value, low in (("n_heldin", n_heldin, 1), ("n_neurons", n_neurons, 1),
                                 ("n_obs_bins", n_obs_bins, 1), ("n_fwd_bins", n_fwd_bins, 0)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InputError(f"must be an integer >= {low}, got {value!r}", field=name)
        if n_neurons < n_heldin:
            raise InputError(f"n_neurons={n_neurons} is smaller than n_heldin={n_heldin}", field="n_neurons")
        if not isinstance(config, LangevinFlowConfig):
            raise InputError(f"expected a LangevinFlowConfig, got {type(config).__name__}", field="config")
        self.n_heldin, self.n_neurons = n_heldin, n_neurons
        self.n_obs_bins, self.n_fwd_bins = n_obs_bins, n_fwd_bins
        self.config = cfg = config
        self.latent_dim = cfg.latent_size
        self.encoder = GRUEncoder(n_heldin, cfg.hidden_size, cfg.dropout)
        self.posterior = InitialStatePosterior(cfg.hidden_size, self.latent_dim)
        self.potential = (
            CoupledOscillatorPotential(self.latent_dim, cfg.n_channels, cfg.kernel_size, cfg.potential_init)
            if cfg.potential == "coupled" else None
        )
        self.decoder = PostNormTransformerBlock(cfg.decoder_width, cfg.n_heads, cfg.ff_dim, cfg.dropout,
                                                cfg.init)
        self.readout = nn.Linear(cfg.decoder_width, n_neurons)
        schedule = input_schedule(n_obs_bins, n_fwd_bins, cfg.encoder_alignment)
        self.register_buffer("_schedule", torch.tensor(schedule, dtype=torch.long), persistent=False)

    # ------------------------------------------------------------------ forward
    def forward(self, heldin: Tensor, *, sample: bool = True, generator: torch.Generator | None = None
                ) -> LangevinFlowOutput:
        """One pass through the model.

        Parameters
        ----------
        heldin : Tensor, shape (batch, T, N_in)
            Held-in spike counts per bin (float).
        sample
            Draw z_0, v_0 (reparameterised) and the noise ξ (if ``config.noise``); ``False``: posterior
            means and ξ = 0. Dropout follows ``self.training``.
        generator
            Source of every random draw of the pass (ε, ξ, dropout masks); global RNG when None. Must
            live on the model's device.

        Returns
        -------
        LangevinFlowOutput
        """
        check_heldin(heldin, self.n_obs_bins, self.n_heldin)
        rows = max(1, self.EVAL_CHUNK_TOKENS // len(self._schedule))
        if (not torch.is_grad_enabled() and not self.training and heldin.device.type == "cpu"
                and heldin.shape[0] > rows):
            # Evaluation on a CPU: no dropout, and trials are independent, so run the pass ~1000
            # tokens at a time (same arithmetic: the (B, T+F, 2D+H) activations and the GRU's workspace of
            # the whole batch never exist at once). The random draws are made first, for the whole batch
            # and in the order of one pass, so chunking does not change them.
            # Each chunk's outputs are copied into tensors of the whole batch as soon as it is done (a
            # concatenation at the end would hold every output twice).
            batch = heldin.shape[0]
            draws = self._draws(batch, sample, generator)
            fields: list = []
            for i in range(0, batch, rows):
                part = self._pass(heldin[i:i + rows], sample, generator,
                                  tuple(None if d is None else d[i:i + rows] for d in draws))
                if not fields:
                    fields = [x.new_empty((batch, *x.shape[1:])) if isinstance(x, Tensor) else x for x in part]
                for whole, x in zip(fields, part):
                    if isinstance(x, Tensor):
                        whole[i:i + rows] = x
                del part
            return LangevinFlowOutput(*fields)
        return self._pass(heldin, sample, generator)

    def _draws(self, batch: int, sample: bool, generator) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        """ε_z, ε_v and the per-step noise ξ of a pass over ``batch`` trials (None where not drawn)."""
        if not sample:
            return None, None, None
        like = self.posterior.heads.weight  # the dtype and device of the initial state
        shape = (batch, self.latent_dim)
        eps_z, eps_v = randn(shape, like, generator), randn(shape, like, generator)
        noise = randn((batch, len(self._schedule) - 1, self.latent_dim), like, generator) if self.config.noise \
            else None
        return eps_z, eps_v, noise

    def _pass(self, heldin: Tensor, sample: bool, generator, draws=None) -> LangevinFlowOutput:
        """One pass over ``heldin``; ``draws`` (from :meth:`_draws`) or drawn here after the encoder."""
        device = heldin.device.type
        # Encoder, initial state, dynamics and readout run in the parameters' precision with autocast
        # off: under bf16 the position update z + 0.01·v would be lost to bf16's 8-bit mantissa, and the
        # GRU state would accumulate rounding over the bins. Only the transformer block (nearly all the
        # arithmetic) follows the autocast (config.decoder_precision or the caller's).
        with torch.autocast(device_type=device, enabled=False):
            hidden = self.encoder(heldin[:, self._schedule], generator)
            z_mean, z_logvar, v_mean, v_logvar = self.posterior(hidden[:, 0])
            # after the encoder: in training its dropout draws come first
            eps_z, eps_v, noise = draws if draws is not None else self._draws(heldin.shape[0], sample, generator)
            if sample:
                z0 = z_mean + (0.5 * z_logvar).exp() * eps_z
                v0 = v_mean + (0.5 * v_logvar).exp() * eps_v
            else:
                z0, v0 = z_mean, v_mean
            roll = self._rollout(z0, v0, hidden.shape[1] - 1, noise)
            tokens = torch.cat([roll.z, roll.v, hidden], dim=-1)
            if self.config.positional_encoding:
                tokens = tokens + sinusoidal_positions(tokens.shape[1], tokens.shape[2], dtype=tokens.dtype,
                                                       device=tokens.device)
        decoded = self._decode(tokens, generator)
        with torch.autocast(device_type=device, enabled=False):
            log_rates = self.readout(decoded.to(self.readout.weight.dtype))
        return LangevinFlowOutput(
            log_rates=log_rates, z=roll.z, v=roll.v, h=hidden,
            z0_mean=z_mean, z0_logvar=z_logvar, v0_mean=v_mean, v0_logvar=v_logvar,
            transition_mean=roll.transition_mean, noise_std=roll.noise_std,
        )

    def _rollout(self, z0: Tensor, v0: Tensor, n_steps: int, noise: Tensor | None):
        cfg = self.config
        if self.potential is None:
            return langevin_rollout(z0, v0, n_steps, force=None, dt=cfg.dt, gamma=cfg.gamma,
                                    scheme=cfg.integrator, noise=noise)
        # The force is linear, grad U(z) = S z with S symmetric: build S once per pass (one convolution
        # of the identity) so each step is one small fused matmul-update. Per-step convolutions cost
        # 10-30 ms each on CPU (oneDNN overhead); the matmul costs microseconds.
        force_matrix = self.potential.force_matrix()
        if cfg.cuda_graph and z0.is_cuda:
            graphed = self.__dict__.get("_graphed_rollout")
            if graphed is None:
                graphed = self.__dict__["_graphed_rollout"] = GraphedRollout(
                    functools.partial(rollout_tensors, dt=cfg.dt, gamma=cfg.gamma, scheme=cfg.integrator))
            steps_noise = noise if noise is not None else z0.new_zeros(z0.shape[0], n_steps, z0.shape[1])
            z, v, mean = graphed(z0, v0, force_matrix, steps_noise)
            return Rollout(z=z, v=v, transition_mean=mean, noise_std=noise_std(cfg.integrator, cfg.gamma))
        return langevin_rollout(z0, v0, n_steps, force_matrix=force_matrix, dt=cfg.dt, gamma=cfg.gamma,
                                scheme=cfg.integrator, noise=noise)

    def decoder_dtype(self, device: torch.device | str) -> torch.dtype | None:
        """The autocast dtype of the transformer block on ``device`` (None: no autocast of its own)."""
        precision = self.config.decoder_precision
        if precision == "bfloat16" or (precision == "auto" and native_bf16(device)):
            return torch.bfloat16
        return None

    def _decode(self, tokens: Tensor, generator: torch.Generator | None) -> Tensor:
        cfg = self.config
        block = self.decoder
        if cfg.compile:
            block = self.__dict__.get("_compiled_decoder")
            if block is None:
                block = self.__dict__["_compiled_decoder"] = CompiledOrEager(self.decoder)
        dtype = self.decoder_dtype(tokens.device)

        def run(x):
            if dtype is None:
                return block(x, causal=cfg.causal, generator=generator)
            with torch.autocast(device_type=x.device.type, dtype=dtype):
                return block(x, causal=cfg.causal, generator=generator)

        if not (cfg.checkpoint_decoder and torch.is_grad_enabled() and tokens.requires_grad):
            return run(tokens)
        # Recompute the block in backward instead of storing its activations (same dropout masks).
        return recomputed(run, generator, tokens)

    # ------------------------------------------------------------------ loss
    def kl_terms(self, out: LangevinFlowOutput) -> dict[str, Tensor]:
        """Batch-averaged KL terms: 'kl_z0', 'kl_v0', 'kl_transition' and their sum 'kl' (scalars)."""
        cfg = self.config
        dtype = out.z.dtype  # the dynamics' precision (float32 under autocast)
        kl_z0 = terms.kl_standard_normal(out.z0_mean.to(dtype), out.z0_logvar.to(dtype)).mean()
        kl_v0 = terms.kl_standard_normal(out.v0_mean.to(dtype), out.v0_logvar.to(dtype)).mean()
        kl_trans = terms.transition_kl(
            cfg.transition_kl, velocities=out.v, transition_mean=out.transition_mean,
            noise_std=out.noise_std, gamma=cfg.gamma, prior_var=cfg.velocity_prior_var,
        ).mean()
        return {"kl": kl_z0 + kl_v0 + kl_trans, "kl_z0": kl_z0, "kl_v0": kl_v0, "kl_transition": kl_trans}

    def loss(self, batch: dict[str, Tensor], *, kl_weight: float, stage: str = "train",
             generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """Objective and monitors for one batch.

        ``stage='train'``: coordinated dropout on the held-in input (see
        :func:`~neurodyn.models.langevinflow.loss.coordinated_dropout`), one sampled pass,
        ``loss = nll + β·kl`` with β = ``kl_weight`` (the trainer's schedule chooses it per epoch:
        :func:`neurodyn.training.schedules.kl_weight`).

        ``stage='val'`` / ``'test'``: no coordinated dropout. With ``eval_mode='mean'`` the pass uses the
        posterior means and ξ = 0; with ``'sample'`` one sampled pass (reference), drawn from a generator
        seeded with ``sv_seed`` unless ``generator`` is given, so the monitor is deterministic either way. The
        targets get the sample-validation mask chosen by ``val_mask``. Here ``loss`` is the monitor: the
        masked Poisson NLL alone (as the reference's ``valid/loss``); ``total`` is nll + β·kl.

        Dropout follows ``self.training`` (the caller sets train()/eval()).

        Parameters
        ----------
        batch
            ``'heldin'`` (B, T, N_in) float counts; ``'target'`` (B, T+F, N_out) float counts (0 where
            unknown); optional ``'target_mask'`` (B, T+F, N_out) bool, True where the target is observed.
        kl_weight
            β, the weight of the KL terms (a number >= 0).
        stage
            ``'train'``, ``'val'`` or ``'test'``.
        generator
            Source of every random draw (CD masks, ε, ξ, dropout, random SV mask).

        Returns
        -------
        dict of 0-dim tensors: 'loss', 'nll', 'kl', 'kl_weight', 'total', 'kl_z0', 'kl_v0', 'kl_transition'.
        NLL = Σ mask·(exp ℓ - yℓ) / Σ mask (a mean over observed entries).
        """
        if stage not in ("train", "val", "test"):
            raise InputError(f"must be 'train', 'val' or 'test', got {stage!r}", field="stage")
        numeric = isinstance(kl_weight, (int, float)) and not isinstance(kl_weight, bool)
        if not numeric or not 0 <= kl_weight < math.inf:
            raise InputError(f"must be a finite number >= 0, got {kl_weight!r}", field="kl_weight")
        heldin, target, mask = check_batch(batch, self.n_obs_bins, self.n_fwd_bins, self.n_heldin,
                                           self.n_neurons)
        cfg = self.config
        if stage == "train":
            if cfg.train_chunks > 1 and torch.is_grad_enabled():
                nll, kls = self._chunked_train_pass(heldin, target, mask, generator)
            else:
                nll, kls = self._train_pass(heldin, target, mask, generator)
        else:
            pass_gen = generator
            if cfg.eval_mode == "sample" and generator is None:  # fixed draws: a monitor must not jitter
                pass_gen = torch.Generator(device=heldin.device).manual_seed(cfg.sv_seed)
            out = self(heldin, sample=cfg.eval_mode == "sample", generator=pass_gen)
            if cfg.val_mask != "none":
                sv_gen = generator
                if cfg.val_mask == "fixed":
                    sv_gen = torch.Generator(device=target.device).manual_seed(cfg.sv_seed)
                target = terms.sample_validation_targets(target, self.n_obs_bins, self.n_heldin,
                                                         cfg.sv_rate, sv_gen)
            nll_entries = terms.poisson_nll(out.log_rates.to(target.dtype), target)
            nll, kls = terms.masked_mean(nll_entries, mask), self.kl_terms(out)
        beta = torch.tensor(float(kl_weight), dtype=nll.dtype, device=nll.device)
        kl = kls["kl"]
        if cfg.kl_scale == "per_entry":  # KL per target entry: the ELBO per entry at beta = 1
            kl = kl / (target.shape[1] * target.shape[2])
        total = nll + beta * kl
        return {"loss": total if stage == "train" else nll, "nll": nll, "kl_weight": beta, "total": total,
                **kls}

    def _train_pass(self, heldin: Tensor, target: Tensor, mask: Tensor | None, generator
                    ) -> tuple[Tensor, dict[str, Tensor]]:
        """Train-stage NLL (masked mean) and KL terms of a batch: coordinated dropout, one sampled pass."""
        cfg = self.config
        inputs, grad_mask = terms.coordinated_dropout(heldin, cfg.cd_keep_prob, generator, cfg.cd_gradient)
        out = self(inputs, sample=True, generator=generator)
        nll_entries = terms.poisson_nll(out.log_rates.to(target.dtype), target)
        if cfg.cd_keep_prob < 1.0:
            nll_entries = terms.gradient_masked(nll_entries, terms.pad_mask(grad_mask, target.shape))
        return terms.masked_mean(nll_entries, mask), self.kl_terms(out)

    def _chunked_train_pass(self, heldin: Tensor, target: Tensor, mask: Tensor | None, generator
                            ) -> tuple[Tensor, dict[str, Tensor]]:
        """:meth:`_train_pass` over ``config.train_chunks`` chunks of trials, each recomputed in backward.

        The batch NLL is the chunks' masked means weighted by their observed entries, the KL terms (batch
        means) the chunks' weighted by their trials: the values of one pass over the batch.
        """
        def weight(m: Tensor | None, t: Tensor) -> Tensor:
            count = m.sum() if m is not None else torch.tensor(float(t.numel()), device=t.device)
            return count.to(t.dtype).clamp_min(1.0)

        total = weight(mask, target)
        nll, kls = None, None
        batch = heldin.shape[0]
        for rows in torch.arange(batch).tensor_split(min(self.config.train_chunks, batch)):
            sl = slice(int(rows[0]), int(rows[-1]) + 1)
            m = None if mask is None else mask[sl]

            def chunk(h: Tensor, t: Tensor, m=m):
                n, k = self._train_pass(h, t, m, generator)
                return n, k["kl_z0"], k["kl_v0"], k["kl_transition"]

            n, *k = recomputed(chunk, generator, heldin[sl], target[sl])
            share = (len(rows) / batch, weight(m, target[sl]) / total)
            part = {"kl_z0": k[0] * share[0], "kl_v0": k[1] * share[0], "kl_transition": k[2] * share[0]}
            nll = n * share[1] if nll is None else nll + n * share[1]
            kls = part if kls is None else {key: kls[key] + part[key] for key in kls}
        kls["kl"] = kls["kl_z0"] + kls["kl_v0"] + kls["kl_transition"]
        return nll, kls

    # ------------------------------------------------------------------ predict
    @torch.no_grad()
    def predict(self, heldin: Tensor, *, mode: str | None = None, n_samples: int | None = None,
                generator: torch.Generator | None = None, seed: int | None = 0,
                progress: bool = False) -> dict[str, Tensor]:
        """Rates for evaluation / submission, without gradients and with dropout off.

        ``mode='mean'``: one pass with the posterior means and ξ = 0. ``mode='sample'``: the log-rates
        (and z, v) averaged over ``n_samples`` stochastic passes, then exponentiated (reference).
        The module's train/eval state is restored afterwards.

        Parameters
        ----------
        heldin : Tensor or numpy array, shape (batch, T, N_in)
            Held-in spike counts per bin, of any float or integer dtype (cast to the model's dtype and device).
        mode
            ``'mean'`` or ``'sample'``; default ``config.eval_mode``.
        n_samples
            Passes in ``'sample'`` mode; default ``config.n_eval_samples``.
        generator
            Source of the sampled passes' randomness.
        seed
            When no ``generator`` is given, the sampled passes draw from a fresh generator with this seed,
            so a checkpoint always gives the same rates; ``None`` draws from the global RNG.
        progress
            Show a ``rich`` progress bar over the sampled passes (for CLI use).

        Returns
        -------
        dict with 'rates' (batch, T+F, N_out) in counts per bin, 'log_rates' (same shape), 'z', 'v'
        (batch, T+F, D).
        """
        mode = self.config.eval_mode if mode is None else mode
        n_samples = self.config.n_eval_samples if n_samples is None else n_samples
        if mode not in ("mean", "sample"):
            raise InputError(f"must be 'mean' or 'sample', got {mode!r}", field="mode")
        if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
            raise InputError(f"must be a positive integer, got {n_samples!r}", field="n_samples")
        heldin = _counts_for(heldin, self.readout.weight)
        was_training = self.training
        self.eval()
        try:
            dtype = self.readout.weight.dtype  # full precision even under autocast
            if mode == "mean":
                out = self(heldin, sample=False)
                log_rates, z, v = out.log_rates.to(dtype), out.z, out.v
            else:
                if generator is None and seed is not None:
                    generator = torch.Generator(device=heldin.device).manual_seed(seed)
                sums: list[Tensor] = []  # running means of log_rates, z, v, updated in place
                passes = range(n_samples)
                if progress:
                    passes = track(passes, description="LangevinFlow sampled passes", transient=True)
                for _ in passes:
                    out = self(heldin, sample=True, generator=generator)
                    terms = (out.log_rates.to(dtype), out.z, out.v)
                    del out
                    if n_samples > 1:
                        terms = tuple(x.div_(n_samples) for x in terms)  # own tensors: nothing else holds them
                    if sums:
                        for total, x in zip(sums, terms):
                            total.add_(x)
                    else:
                        sums = list(terms)
                    del terms
                log_rates, z, v = sums
        finally:
            self.train(was_training)
        return {"rates": log_rates.exp(), "log_rates": log_rates, "z": z, "v": v}
