"""The MIT reference LangevinFlow module beside neurodyn's, for side-by-side timing and parity checks.

The reference is ``LangevinAutoencoder`` in ``nlb_lightning/models.py`` of KingJamesSong/LangevinFlow_CCN
(MIT, "Copyright (c) 2022 Andrew Sedler"; https://github.com/KingJamesSong/LangevinFlow_CCN). Nothing of
it is copied here: the user points :func:`load_reference` at a checkout (``git clone`` it), the module
is imported from there and run as is. Its package ``__init__`` is skipped (it imports data modules with
dependencies the model does not need); ``pytorch_lightning`` 2.x (installed with ``lightning``) serves
its LightningModule base class.

:func:`build_pair` makes a neurodyn :class:`~neurodyn.models.langevinflow.LangevinFlow` with the reference
preset and a reference module with identical weights; :func:`parity` checks, in float64, that both give
the same log-rates, training loss and every gradient when fed the same random draws (the draws differ in
order between the two implementations, so they are drawn once here and injected into both).
"""

from __future__ import annotations

import importlib
import sys
import types
from contextlib import contextmanager
from pathlib import Path

import torch

from neurodyn.models.langevinflow import LangevinFlow, LangevinFlowConfig
from neurodyn.models.langevinflow import loss as lf_loss
from neurodyn.models.langevinflow import model as lf_model
from neurodyn.training.schedules import kl_weight

__all__ = ["load_reference", "build_pair", "copy_weights", "parity", "reference_train_loss"]

_PACKAGE = "_lfref_nlb_lightning"


def load_reference(path: str | Path):
    """The ``LangevinAutoencoder`` class from a checkout of KingJamesSong/LangevinFlow_CCN at ``path``."""
    root = Path(path).expanduser().resolve()
    models = root / "nlb_lightning" / "models.py"
    if not models.is_file():
        raise FileNotFoundError(f"{root}: no nlb_lightning/models.py (expected a KingJamesSong/LangevinFlow_CCN "
                                "checkout)")
    if _PACKAGE not in sys.modules:
        package = types.ModuleType(_PACKAGE)
        package.__path__ = [str(models.parent)]  # a namespace for the relative imports, __init__ not run
        sys.modules[_PACKAGE] = package
    module = importlib.import_module(f"{_PACKAGE}.models")
    return module.LangevinAutoencoder


def copy_weights(ours: LangevinFlow, ref: torch.nn.Module) -> None:
    """Give ``ours`` exactly the reference module's weights (same architecture, fused layouts)."""
    enc, dec, attn = ours.encoder.rnn, ours.decoder, ref.decoder.self_attn
    pairs = [
        (enc.weight_ih_l0, ref.encoder.weight_ih), (enc.weight_hh_l0, ref.encoder.weight_hh),
        (enc.bias_ih_l0, ref.encoder.bias_ih), (enc.bias_hh_l0, ref.encoder.bias_hh),
        (ours.posterior.heads.weight, torch.cat([ref.linear_z_means.weight, ref.linear_z_logvar.weight,
                                                 ref.linear_v_means.weight, ref.linear_v_logvar.weight])),
        (ours.posterior.heads.bias, torch.cat([ref.linear_z_means.bias, ref.linear_z_logvar.bias,
                                               ref.linear_v_means.bias, ref.linear_v_logvar.bias])),
        (dec.qkv.weight, attn.in_proj_weight), (dec.qkv.bias, attn.in_proj_bias),
        (dec.out_proj.weight, attn.out_proj.weight), (dec.out_proj.bias, attn.out_proj.bias),
        (dec.ff1.weight, ref.decoder.linear1.weight), (dec.ff1.bias, ref.decoder.linear1.bias),
        (dec.ff2.weight, ref.decoder.linear2.weight), (dec.ff2.bias, ref.decoder.linear2.bias),
        (dec.norm1.weight, ref.decoder.norm1.weight), (dec.norm1.bias, ref.decoder.norm1.bias),
        (dec.norm2.weight, ref.decoder.norm2.weight), (dec.norm2.bias, ref.decoder.norm2.bias),
        (ours.potential.kernel, ref.potential.conv_z),
        (ours.readout.weight, ref.readout.weight), (ours.readout.bias, ref.readout.bias),
    ]
    with torch.no_grad():
        for mine, theirs in pairs:
            mine.copy_(theirs)


def _gradient_pairs(ours: LangevinFlow, ref: torch.nn.Module) -> dict[str, tuple]:
    """name -> (our gradient, the reference's gradient in our layout)."""
    enc, dec, attn = ours.encoder.rnn, ours.decoder, ref.decoder.self_attn

    def g(p):
        return torch.zeros_like(p) if p.grad is None else p.grad

    heads_ref = [ref.linear_z_means, ref.linear_z_logvar, ref.linear_v_means, ref.linear_v_logvar]
    return {
        "encoder.weight_ih": (g(enc.weight_ih_l0), g(ref.encoder.weight_ih)),
        "encoder.weight_hh": (g(enc.weight_hh_l0), g(ref.encoder.weight_hh)),
        "encoder.bias_ih": (g(enc.bias_ih_l0), g(ref.encoder.bias_ih)),
        "encoder.bias_hh": (g(enc.bias_hh_l0), g(ref.encoder.bias_hh)),
        "posterior.weight": (g(ours.posterior.heads.weight), torch.cat([g(h.weight) for h in heads_ref])),
        "posterior.bias": (g(ours.posterior.heads.bias), torch.cat([g(h.bias) for h in heads_ref])),
        "decoder.qkv.weight": (g(dec.qkv.weight), g(attn.in_proj_weight)),
        "decoder.qkv.bias": (g(dec.qkv.bias), g(attn.in_proj_bias)),
        "decoder.out_proj.weight": (g(dec.out_proj.weight), g(attn.out_proj.weight)),
        "decoder.out_proj.bias": (g(dec.out_proj.bias), g(attn.out_proj.bias)),
        "decoder.ff1.weight": (g(dec.ff1.weight), g(ref.decoder.linear1.weight)),
        "decoder.ff2.weight": (g(dec.ff2.weight), g(ref.decoder.linear2.weight)),
        "decoder.norm1.weight": (g(dec.norm1.weight), g(ref.decoder.norm1.weight)),
        "decoder.norm2.bias": (g(dec.norm2.bias), g(ref.decoder.norm2.bias)),
        "potential.kernel": (g(ours.potential.kernel), g(ref.potential.conv_z)),
        "readout.weight": (g(ours.readout.weight), g(ref.readout.weight)),
        "readout.bias": (g(ours.readout.bias), g(ref.readout.bias)),
    }


def build_pair(reference_path: str | Path, *, batch: int = 256, obs_bins: int = 35, fwd_bins: int = 10,
               heldin: int = 137, neurons: int = 182, hidden: int = 280, dropout: float = 0.05,
               gamma: float = 0.55, cd_keep_prob: float = 0.5, seed: int = 0, dtype=torch.float32,
               config: LangevinFlowConfig | None = None):
    """(ours, ref, data): same weights; ``data`` = {'heldin', 'target', 'target_mask'} Poisson(1) counts.

    ``ours`` uses ``config`` (default: the reference preset at these sizes) and the reference's weights.
    """
    Reference = load_reference(reference_path)
    torch.manual_seed(seed)  # the reference initialises from the global RNG
    ref = Reference(input_size=heldin, hidden_size=hidden, output_size=neurons, fwd_steps=fwd_bins,
                    learning_rate=3e-3, weight_decay=2e-5, dropout=dropout, gamma=gamma,
                    cd_rate=cd_keep_prob).to(dtype)
    if config is None:
        config = LangevinFlowConfig.reference(hidden_size=hidden, dropout=dropout, gamma=gamma,
                                              cd_keep_prob=cd_keep_prob)
    ours = LangevinFlow(heldin, neurons, obs_bins, fwd_bins, config).to(dtype)
    copy_weights(ours, ref)
    gen = torch.Generator().manual_seed(seed + 1)
    target = torch.poisson(torch.ones(batch, obs_bins + fwd_bins, neurons, dtype=dtype), generator=gen)
    data = {"heldin": target[:, :obs_bins, :heldin].contiguous(), "target": target,
            "target_mask": torch.ones_like(target, dtype=torch.bool)}
    return ours, ref, data


def reference_train_loss(ref, heldin: torch.Tensor, target: torch.Tensor, epoch: int) -> torch.Tensor:
    """The reference's ``training_step`` loss at a given 0-based epoch (its KL ramp reads ``current_epoch``)."""
    cls = type(ref)
    saved = cls.__dict__.get("current_epoch")
    cls.current_epoch = property(lambda self: epoch)  # no Trainer attached: supply the epoch it reads
    log = ref.log
    ref.log = lambda *a, **k: None  # no Trainer: its self.log calls would only warn
    try:
        return ref.training_step((heldin, target, None), 0)
    finally:
        ref.log = log
        if saved is None:
            del cls.current_epoch
        else:
            cls.current_epoch = saved


@contextmanager
def _injected_draws(ref, eps_z, eps_v, xi, cd_keep, cd_pass, keep_prob):
    """Feed both implementations the same ε, ξ and coordinated-dropout masks."""
    queue = [eps_z, eps_v, *xi.unbind(1)]
    ref_calls = iter(queue)

    def ref_reparameterize(mu, log_var, logvar=True):
        std = torch.exp(0.5 * log_var) if logvar else log_var
        return mu + next(ref_calls) * std

    ours_calls = iter([eps_z, eps_v, xi])

    def ours_randn(shape, like, generator):
        draw = next(ours_calls)
        assert tuple(draw.shape) == tuple(shape), (draw.shape, shape)
        return draw

    grad_mask = (~cd_keep) | cd_pass

    def ref_cd(batch):
        return batch * cd_keep.to(batch.dtype) / keep_prob, grad_mask.to(batch.dtype)

    def ours_cd(heldin, p, generator=None, mode="dropped"):
        return heldin * cd_keep.to(heldin.dtype) / p, grad_mask

    saved = (lf_model.randn, lf_loss.coordinated_dropout)
    ref.reparameterize = ref_reparameterize
    ref.cd.process_batch = ref_cd
    lf_model.randn, lf_loss.coordinated_dropout = ours_randn, ours_cd
    try:
        yield
    finally:
        lf_model.randn, lf_loss.coordinated_dropout = saved
        del ref.reparameterize, ref.cd.process_batch


def parity(reference_path: str | Path, *, batch: int = 8, obs_bins: int = 7, fwd_bins: int = 3,
           heldin: int = 6, neurons: int = 9, hidden: int = 12, epoch: int = 600, seed: int = 0,
           random_kernel: bool = True) -> dict:
    """Max |difference| between neurodyn's reference preset and the reference module in float64.

    One training pass (dropout off so both see the same network; ε, ξ and the coordinated-dropout masks
    drawn once and injected into both): log-rates, the training loss at ``epoch`` and the gradient of
    every parameter. ``random_kernel`` gives the potential a random kernel first (the reference's zero
    kernel makes the force vanish, which would leave the potential untested).
    """
    ours, ref, data = build_pair(reference_path, batch=batch, obs_bins=obs_bins, fwd_bins=fwd_bins,
                                 heldin=heldin, neurons=neurons, hidden=hidden, dropout=0.0, seed=seed,
                                 dtype=torch.float64)
    if random_kernel:
        with torch.no_grad():
            ref.potential.conv_z.copy_(torch.randn(ref.potential.conv_z.shape, dtype=torch.float64,
                                                   generator=torch.Generator().manual_seed(seed + 2)))
        copy_weights(ours, ref)
    gen = torch.Generator().manual_seed(seed + 3)
    f64 = dict(dtype=torch.float64, generator=gen)
    eps_z, eps_v = torch.randn(batch, hidden, **f64), torch.randn(batch, hidden, **f64)
    xi = torch.randn(batch, obs_bins + fwd_bins - 1, hidden, **f64)
    p = ours.config.cd_keep_prob
    cd_keep = torch.rand(data["heldin"].shape, generator=gen) < p
    cd_pass = torch.rand(data["heldin"].shape, generator=gen) < 1 - p
    ours.train()
    ref.train()
    with _injected_draws(ref, eps_z, eps_v, xi, cd_keep, cd_pass, p):
        ref_log_rates = ref(data["heldin"] * cd_keep / p)[0]
        ours_log_rates = ours(data["heldin"] * cd_keep / p).log_rates
    with _injected_draws(ref, eps_z, eps_v, xi, cd_keep, cd_pass, p):
        ref_loss = reference_train_loss(ref, data["heldin"], data["target"], epoch)
        terms = ours.loss({k: v for k, v in data.items() if k != "target_mask"},
                          kl_weight=kl_weight(epoch, ours.config))
    # The reference's KL weight is a float32 tensor (1e-1 * clamp(torch.tensor(e / 500), 0, 1)), so in
    # float64 its beta is 0.1 rounded to float32; use the same beta to compare the arithmetic.
    beta_ref = float(1e-1 * torch.clamp(torch.tensor(epoch / 500.0), 0, 1))
    ours_loss = terms["nll"] + beta_ref * terms["kl"]
    ref_loss.backward()
    ours_loss.backward()
    grads = {name: (a - b).abs().max().item() for name, (a, b) in _gradient_pairs(ours, ref).items()}
    scale = {name: b.abs().max().item() for name, (_, b) in _gradient_pairs(ours, ref).items()}
    return {
        "log_rates_max_abs_diff": (ours_log_rates - ref_log_rates).abs().max().item(),
        "loss": ref_loss.item(),
        "loss_abs_diff": abs(ours_loss.item() - ref_loss.item()),
        "loss_abs_diff_float64_beta": abs(terms["loss"].item() - ref_loss.item()),
        "reference_beta": beta_ref,
        "grad_max_abs_diff": max(grads.values()),
        "grad_max_abs_diff_per_parameter": grads,
        "grad_max_abs_per_parameter": scale,
        "sizes": {"batch": batch, "obs_bins": obs_bins, "fwd_bins": fwd_bins, "heldin": heldin,
                  "neurons": neurons, "hidden": hidden, "epoch": epoch},
    }
