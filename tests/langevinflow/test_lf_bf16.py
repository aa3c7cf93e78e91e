"""bf16 mixed precision on CPU: the transformer runs in bf16, the latent integrator stays float32, and
the loss stays within a derived rounding bound of the float32 loss; a Lightning ``bf16-mixed`` fit runs.

Tolerance (derived, not tuned). bf16 keeps p = 8 significant bits, so rounding a value x to bf16 gives
x(1 + δ) with |δ| ≤ u = 2^-8. Under autocast every operand of the decoder's matrix products is rounded
(inputs, weights, biases, the products' outputs; inside attention the scores, the softmax weights and
the mixed values) while accumulation stays float32 (relative error ~k·2^-24, negligible). To first order
in u, perturbing each rounded operand a by δ_a·a changes the loss by Σ_a Σ_i (∂L/∂a_i)·a_i·δ_a,i, so

    |L_bf16 - L_fp32| ≤ u · Σ_a Σ_i |∂L/∂a_i · a_i|  =: u · S,

a worst-case bound (every rounding aligned against us); second-order terms are O(u²·S). S is computed
exactly, by autograd, on the float32 pass of the same weights, batch and random draws.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from neurodyn.models.langevinflow import model as lf_model

U_BF16 = 2.0**-8


def _instrumented_block(block, operands: list):
    """The decoder block's forward (dropout off), keeping every bf16-rounded operand for autograd."""

    def keep(t):
        if t.requires_grad:
            t.retain_grad()
        operands.append(t)
        return t

    def linear(x, layer, input_rounded=False):
        if not input_rounded:  # a bf16 product's output feeds the next product without a new rounding
            keep(x)
        return keep(F.linear(x, layer.weight, layer.bias))  # weights/biases: their .grad after backward

    def forward(x, *, causal=False, generator=None):
        assert block.dropout_p == 0.0 and not causal
        batch, time, width = x.shape
        d = width // block.n_heads
        q, k, v = (t.reshape(batch, time, block.n_heads, d).transpose(1, 2)
                   for t in linear(x, block.qkv).chunk(3, dim=-1))
        scores = keep(q @ k.transpose(-1, -2) / math.sqrt(d))
        weights = keep(scores.softmax(dim=-1))
        mixed = keep(weights @ v).transpose(1, 2).reshape(batch, time, width)
        x = block.norm1(x + linear(mixed, block.out_proj, input_rounded=True))
        hidden = F.relu(linear(x, block.ff1))
        return block.norm2(x + linear(hidden, block.ff2, input_rounded=True))

    return forward


def _loss(model, batch, seed):
    gen = torch.Generator().manual_seed(seed)
    return model.loss(batch, kl_weight=0.06, stage="train", generator=gen)["loss"]


def _first_order_bound(model, batch, seed) -> tuple[float, float]:
    """(float32 loss, S, R): S = Σ|g·a| for the bound u·S, R = (Σ (g·a)²)^½ for the spread."""
    operands: list = []
    model.decoder.forward = _instrumented_block(model.decoder, operands)
    try:
        model.zero_grad(set_to_none=True)
        loss = _loss(model, batch, seed)
        loss.backward()
    finally:
        del model.decoder.forward
    terms = [(a.grad * a.detach()).flatten() for a in operands if a.grad is not None]
    for layer in (model.decoder.qkv, model.decoder.out_proj, model.decoder.ff1, model.decoder.ff2):
        terms += [(p.grad * p.detach()).flatten() for p in (layer.weight, layer.bias)]
    terms = torch.cat(terms).double()
    return float(loss.detach()), float(terms.abs().sum()), float(terms.square().sum().sqrt())


@pytest.fixture
def pair(make_model, make_batch):
    """A float32 model and a bf16-decoder copy with the same weights (dropout off, CD on)."""
    fp32 = make_model(n_heldin=6, n_neurons=9, n_obs_bins=8, n_fwd_bins=3, hidden_size=16, ff_dim=32,
                      dropout=0.0, kl_ramp_epochs=5)
    bf16 = lf_model.LangevinFlow(6, 9, 8, 3, fp32.config.replace(decoder_precision="bfloat16"))
    bf16.load_state_dict(fp32.state_dict())
    return fp32, bf16, make_batch(fp32, batch_size=16)


def test_bf16_loss_within_derived_rounding_bound(pair):
    fp32, bf16, batch = pair
    loss32, s, r = _first_order_bound(fp32, batch, seed=3)
    loss16 = float(_loss(bf16, batch, seed=3))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # what Lightning's bf16-mixed does
        loss_autocast = float(_loss(fp32, batch, seed=3))
    assert loss16 == loss_autocast  # the option and an outer autocast run the same arithmetic
    tol = U_BF16 * s
    assert loss16 != loss32  # bf16 really ran
    assert abs(loss16 - loss32) <= tol, (loss16, loss32, tol)
    # Rounding errors behave like independent δ ~ Uniform(-u, u) (sd u/√3), so the loss error has sd
    # σ = u/√3 · R; a 6σ excursion has probability < 1e-8 for a near-Gaussian sum. This catches a bf16
    # error far above rounding (e.g. dynamics run in bf16) that the worst-case bound would let through.
    sigma = U_BF16 / math.sqrt(3.0) * r
    assert abs(loss16 - loss32) <= 6.0 * sigma, (loss16, loss32, sigma)
    assert tol < 0.05 * abs(loss32)  # the bound is informative at this size, not vacuous


def test_integrator_stays_float32_under_bf16(pair, monkeypatch):
    _, bf16, batch = pair
    seen = []
    real = lf_model.langevin_rollout

    def checked(z0, v0, n_steps, **kwargs):
        # inside the integrator: float32 state, float32 force matrix, no autocast
        matrix = kwargs.get("force_matrix")
        assert z0.dtype == v0.dtype == torch.float32
        assert matrix is None or matrix.dtype == torch.float32
        assert not torch.is_autocast_enabled("cpu")
        out = real(z0, v0, n_steps, **kwargs)
        assert out.z.dtype == out.v.dtype == out.transition_mean.dtype == torch.float32
        seen.append(n_steps)
        return out

    monkeypatch.setattr(lf_model, "langevin_rollout", checked)
    decoder_dtypes = []
    handle = bf16.decoder.qkv.register_forward_hook(lambda m, i, o: decoder_dtypes.append(o.dtype))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = bf16(batch["heldin"])
    handle.remove()
    assert seen == [bf16.n_obs_bins + bf16.n_fwd_bins - 1]
    assert decoder_dtypes == [torch.bfloat16]
    assert out.log_rates.dtype == out.z.dtype == out.h.dtype == torch.float32


def test_lightning_bf16_mixed_fit_runs_with_float32_dynamics(monkeypatch, tmp_path):
    import lightning.pytorch as pl

    from neurodyn.models.langevinflow import LangevinFlowConfig
    from neurodyn.training.datamodules import LorenzDataModule
    from neurodyn.training.module import LangevinFlowModule

    dtypes = []
    real = lf_model.langevin_rollout

    def checked(z0, v0, n_steps, **kwargs):
        dtypes.append((z0.dtype, torch.is_autocast_enabled("cpu")))
        return real(z0, v0, n_steps, **kwargs)

    monkeypatch.setattr(lf_model, "langevin_rollout", checked)
    dm = LorenzDataModule(n_conditions=2, trials_per_condition=4, batch_size=2)
    dm.setup("fit")
    sizes = {k: getattr(dm, k) for k in ("n_heldin", "n_neurons", "n_obs_bins", "n_fwd_bins")}
    module = LangevinFlowModule(**sizes, config=LangevinFlowConfig(hidden_size=8, ff_dim=16, kl_ramp_epochs=2),
                                val_samples=1)
    qkv_dtypes = []
    module.model.decoder.qkv.register_forward_hook(lambda m, i, o: qkv_dtypes.append(o.dtype))
    losses = []

    class Record(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            losses.append(float(outputs["loss"]))

    trainer = pl.Trainer(accelerator="cpu", precision="bf16-mixed", max_epochs=1, logger=False,
                         limit_train_batches=2, limit_val_batches=1, num_sanity_val_steps=0,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[Record()], default_root_dir=tmp_path)
    trainer.fit(module, datamodule=dm)
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
    assert dtypes and all(d == (torch.float32, False) for d in dtypes)
    assert torch.bfloat16 in qkv_dtypes  # the transformer did run in bf16
    assert all(p.dtype == torch.float32 for p in module.parameters())  # master weights stay float32
