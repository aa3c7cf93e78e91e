"""LangevinFlow model: shapes, information flow, determinism, parameter counts, oracles for the parts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from neurodyn.errors import InputError
from neurodyn.models.langevinflow import (
    GRUEncoder,
    LangevinFlow,
    LangevinFlowConfig,
    PostNormTransformerBlock,
    count_parameters,
    input_schedule,
)
from neurodyn.models.langevinflow.decoder import REFERENCE_FIXUP_SCALE


@pytest.mark.parametrize(
    "sizes,config",
    [
        ((3, 5, 6, 2), {}),
        ((4, 4, 1, 0), {"encoder_alignment": "lagged"}),
        ((2, 7, 5, 3), {"latent_dim": 4, "integrator": "reference", "n_heads": 4}),
        ((3, 5, 6, 2), {"potential": "none", "noise": False, "causal": True, "positional_encoding": True}),
        ((3, 6, 4, 4), {"integrator": "symplectic", "hidden_size": 6, "latent_dim": 8, "n_channels": 2,
                        "kernel_size": 5, "transition_kl": "reference"}),
    ],
)
def test_shapes(make_model, sizes, config):
    n_heldin, n_neurons, n_obs, n_fwd = sizes
    model = make_model(*sizes, **config)
    batch = 3
    out = model(torch.poisson(torch.ones(batch, n_obs, n_heldin)))
    latent, hidden = model.latent_dim, model.config.hidden_size
    assert out.log_rates.shape == (batch, n_obs + n_fwd, n_neurons)
    assert out.z.shape == out.v.shape == (batch, n_obs + n_fwd, latent)
    assert out.h.shape == (batch, n_obs + n_fwd, hidden)
    assert out.transition_mean.shape == (batch, n_obs + n_fwd - 1, latent)
    assert all(t.shape == (batch, latent) for t in (out.z0_mean, out.z0_logvar, out.v0_mean, out.v0_logvar))
    pred = model.predict(torch.zeros(batch, n_obs, n_heldin), mode="sample", n_samples=2)
    assert pred["rates"].shape == (batch, n_obs + n_fwd, n_neurons) and torch.all(pred["rates"] > 0)


def test_input_schedule():
    assert input_schedule(4, 2, "current") == [0, 1, 2, 3, 3, 3]
    assert input_schedule(4, 2, "lagged") == [0, 0, 1, 2, 3, 3]
    assert input_schedule(1, 2, "lagged") == [0, 0, 0]


def test_bad_input_raises_input_error(make_model, make_batch):
    model = make_model()
    with pytest.raises(InputError, match="heldin"):
        model(torch.zeros(2, 8, 3))  # T + F bins: the forward bins must never be passed in
    with pytest.raises(InputError, match="heldin"):
        model(torch.zeros(2, 6, 5))  # all neurons: held-out neurons must never be passed in
    batch = make_batch(model)
    with pytest.raises(InputError, match="batch/target"):
        model.loss({**batch, "target": batch["target"][:, :6]}, kl_weight=0.0)
    with pytest.raises(InputError, match="batch/target_mask"):
        model.loss({**batch, "target_mask": batch["target_mask"].float()}, kl_weight=0.0)
    with pytest.raises(InputError, match="stage"):
        model.loss(batch, kl_weight=0.0, stage="fit")
    with pytest.raises(InputError, match="n_neurons"):
        LangevinFlow(5, 3, 4, 1, LangevinFlowConfig(hidden_size=8, ff_dim=8))


def test_predict_checks_its_counts_and_takes_any_numeric_dtype(make_model, make_batch):
    """predict() took a NaN count to NaN rates for the whole trial and a negative count without a word; float64
    counts (numpy's default) were torch's 'RNN input dtype ... does not match weight dtype' (helper-50)."""
    model = make_model()
    heldin = make_batch(model)["heldin"]
    for bad, message in [(heldin.clone().index_fill_(1, torch.tensor([0]), float("nan")), "NaN or infinite counts"),
                         (-heldin - 1, "negative counts")]:
        with pytest.raises(InputError, match=message) as err:
            model.predict(bad, mode="mean")
        assert err.value.field == "heldin"
    assert torch.equal(heldin, heldin.round())  # counts: exact in float32, float64 and int64 alike
    expected = model.predict(heldin, mode="mean")["rates"]
    for other in (heldin.double(), heldin.long()):
        assert torch.equal(model.predict(other, mode="mean")["rates"], expected)


def test_predict_takes_numpy_counts_and_names_any_other_type(make_model, make_batch):
    """predict() on a numpy array (a notebook's counts) said 'expected a float ... tensor of counts' without
    saying it had a numpy array; the metrics take numpy and tensors alike, so predict now does too."""
    model = make_model()
    heldin = make_batch(model)["heldin"]
    expected = model.predict(heldin, mode="mean")["rates"]
    for array in (heldin.numpy(), heldin.numpy().astype(np.float64), heldin.numpy().astype(np.int64),
                  heldin.numpy().astype(np.uint8)):
        assert torch.equal(model.predict(array, mode="mean")["rates"], expected)
    with pytest.raises(InputError, match="negative counts") as err:
        model.predict(-heldin.numpy() - 1, mode="mean")
    assert err.value.field == "heldin"
    for other, name in [(heldin.tolist(), "list"), (np.full(heldin.shape, "1"), "ndarray of <U1"),
                        (heldin.numpy() > 0, "ndarray of bool"), ("counts", "str")]:
        with pytest.raises(InputError, match=f"tensor or numpy array of counts, got (a )?{name}") as err:
            model.predict(other, mode="mean")
        assert err.value.field == "heldin"
    with pytest.raises(InputError, match="got a list"):  # forward() takes tensors only, and says what it got
        model(heldin.tolist())


def _capture_log_rates(model):
    captured = []
    handle = model.readout.register_forward_hook(lambda mod, inp, out: captured.append(out.detach().clone()))
    return captured, handle


def test_heldout_and_forward_targets_never_reach_the_model(make_model, make_batch):
    model = make_model(dropout=0.1)
    batch = make_batch(model)
    captured, handle = _capture_log_rates(model)
    perturbed = batch["target"].clone()
    perturbed[:, :, model.n_heldin:] += 7.0  # held-out neurons, all bins
    perturbed[:, model.n_obs_bins:, :] += 5.0  # forward bins, all neurons
    losses = []
    for target in (batch["target"], perturbed):
        gen = torch.Generator().manual_seed(3)
        losses.append(model.loss({**batch, "target": target}, kl_weight=0.002, generator=gen)["nll"])
    handle.remove()
    assert torch.equal(captured[0], captured[1])
    assert not torch.isclose(losses[0], losses[1])  # the targets do enter the loss


@pytest.mark.parametrize("alignment,lag", [("current", 0), ("lagged", 1)])
def test_causal_decoder_output_before_t_ignores_x_t(make_model, alignment, lag):
    model = make_model(n_obs_bins=8, n_fwd_bins=3, causal=True, encoder_alignment=alignment).eval()
    x = torch.poisson(torch.ones(2, 8, 3))
    t = 4
    x2 = x.clone()
    x2[:, t] += 3.0
    a, b = model(x, sample=False).log_rates, model(x2, sample=False).log_rates
    assert torch.equal(a[:, : t + lag], b[:, : t + lag])
    assert not torch.allclose(a[:, t + lag:], b[:, t + lag:])
    # Without the causal mask the decoder is a smoother: earlier outputs do change.
    smoother = make_model(n_obs_bins=8, n_fwd_bins=3, encoder_alignment=alignment).eval()
    a, b = smoother(x, sample=False).log_rates, smoother(x2, sample=False).log_rates
    assert not torch.allclose(a[:, :t], b[:, :t])


def test_generator_makes_passes_reproducible(make_model, make_batch):
    model = make_model(dropout=0.2).train()
    batch = make_batch(model)
    run = lambda seed: model.loss(batch, kl_weight=0.0006, generator=torch.Generator().manual_seed(seed))  # noqa: E731
    first, second, other = run(0), run(0), run(1)
    assert torch.equal(first["loss"], second["loss"])
    assert not torch.equal(first["loss"], other["loss"])
    out1 = model(batch["heldin"], generator=torch.Generator().manual_seed(4))
    torch.manual_seed(123)  # the global RNG must not matter when a generator is given
    out2 = model(batch["heldin"], generator=torch.Generator().manual_seed(4))
    assert torch.equal(out1.log_rates, out2.log_rates) and torch.equal(out1.z, out2.z)


def test_mean_mode_is_deterministic_and_matches_noiseless_mean_pass(make_model, make_batch):
    model = make_model(dropout=0.2).train()
    heldin = make_batch(model)["heldin"]
    torch.manual_seed(0)
    p1 = model.predict(heldin, mode="mean")
    torch.manual_seed(1)
    p2 = model.predict(heldin, mode="mean")
    assert model.training  # predict restores the mode
    assert torch.equal(p1["log_rates"], p2["log_rates"])
    model.eval()
    out = model(heldin, sample=False)
    torch.testing.assert_close(out.z[:, 0], out.z0_mean)
    torch.testing.assert_close(p1["log_rates"], out.log_rates)
    torch.testing.assert_close(p1["rates"], out.log_rates.exp())


def test_sample_mode_averages_log_rates(make_model, make_batch):
    model = make_model(dropout=0.2).eval()
    heldin = make_batch(model)["heldin"]
    pred = model.predict(heldin, mode="sample", n_samples=5, generator=torch.Generator().manual_seed(9))
    gen = torch.Generator().manual_seed(9)
    with torch.no_grad():
        outs = [model(heldin, sample=True, generator=gen) for _ in range(5)]
    passes = torch.stack([o.log_rates for o in outs])
    torch.testing.assert_close(pred["log_rates"], passes.mean(0))
    for name in ("z", "v"):  # the latents are averaged the same way (running sums updated in place)
        torch.testing.assert_close(pred[name], torch.stack([getattr(o, name) for o in outs]).mean(0))
    torch.testing.assert_close(pred["rates"], passes.mean(0).exp())  # exp of the mean log-rate (reference)
    assert not torch.allclose(passes[0], passes[1])  # the passes really are stochastic


@pytest.mark.parametrize("config", [LangevinFlowConfig.reference(), LangevinFlowConfig()])
def test_reference_parameter_counts(config):
    model = LangevinFlow(137, 182, 35, 10, config)
    assert count_parameters(model) == 4_510_422
    assert count_parameters(model.decoder) == 3_690_632
    small = LangevinFlow(191, 191, 35, 10, config.replace(hidden_size=64))
    assert count_parameters(small) == 449_199  # jkbhagatio/nldisco audit


def test_ablations_change_structure(make_model):
    assert make_model(potential="none").potential is None
    assert count_parameters(make_model(potential="none")) == count_parameters(make_model()) - 48


def test_decoder_matches_torch_transformer_layer():
    # Oracle: PyTorch's post-norm TransformerEncoderLayer with the same weights (float64, no dropout).
    torch.manual_seed(0)
    width, heads, ff = 12, 3, 10
    ours = PostNormTransformerBlock(width, heads, ff, dropout_p=0.0).double().eval()
    ref = nn.TransformerEncoderLayer(width, heads, ff, dropout=0.0, batch_first=True).double().eval()
    with torch.no_grad():
        ref.self_attn.in_proj_weight.copy_(ours.qkv.weight)
        ref.self_attn.in_proj_bias.copy_(ours.qkv.bias.add(0.1))
        ours.qkv.bias.add_(0.1)
        ref.self_attn.out_proj.weight.copy_(ours.out_proj.weight)
        ref.self_attn.out_proj.bias.copy_(ours.out_proj.bias)
        pairs = ((ours.ff1, ref.linear1), (ours.ff2, ref.linear2), (ours.norm1, ref.norm1),
                 (ours.norm2, ref.norm2))
        for a, b in pairs:
            b.weight.copy_(a.weight)
            b.bias.copy_(a.bias)
    x = torch.randn(4, 7, width, dtype=torch.float64)
    torch.testing.assert_close(ours(x), ref(x), rtol=1e-12, atol=1e-12)
    mask = nn.Transformer.generate_square_subsequent_mask(7, dtype=torch.float64)
    torch.testing.assert_close(ours(x, causal=True), ref(x, src_mask=mask), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("causal", [False, True])
def test_fused_and_explicit_attention_agree(causal):
    torch.manual_seed(0)
    block = PostNormTransformerBlock(12, 2, 8, dropout_p=0.0).double()
    x = torch.randn(3, 6, 12, dtype=torch.float64)
    fused = block._attend(x, causal, None, explicit=False)
    torch.testing.assert_close(fused, block._attend(x, causal, None, explicit=True), rtol=1e-12, atol=1e-12)


def test_reference_init_scales_weights():
    torch.manual_seed(0)
    default = PostNormTransformerBlock(840, 2, 512, init="default")
    torch.manual_seed(0)
    reference = PostNormTransformerBlock(840, 2, 512, init="reference")
    for name in ("out_proj", "ff1", "ff2"):
        expected = REFERENCE_FIXUP_SCALE * getattr(default, name).weight
        torch.testing.assert_close(getattr(reference, name).weight, expected)
    torch.testing.assert_close(reference.qkv.weight, default.qkv.weight)


def test_encoder_loop_matches_fused_gru_and_grucell_with_dropout():
    torch.manual_seed(0)
    enc = GRUEncoder(3, 5, dropout_p=0.0).double()
    x = torch.randn(2, 6, 3, dtype=torch.float64)
    torch.testing.assert_close(enc(x, loop=True), enc(x, loop=False), rtol=1e-12, atol=1e-12)
    # With dropout: oracle = nn.GRUCell with the same weights, the dropped state fed back, masks drawn
    # from an identical generator in the same order (one Bernoulli(1 - p) mask per step).
    p = 0.3
    enc.dropout_p = p
    enc.train()
    cell = nn.GRUCell(3, 5).double()
    with torch.no_grad():
        cell.weight_ih.copy_(enc.rnn.weight_ih_l0)
        cell.weight_hh.copy_(enc.rnn.weight_hh_l0)
        cell.bias_ih.copy_(enc.rnn.bias_ih_l0)
        cell.bias_hh.copy_(enc.rnn.bias_hh_l0)
    got = enc(x, torch.Generator().manual_seed(5))
    gen = torch.Generator().manual_seed(5)
    h = torch.zeros(2, 5, dtype=torch.float64)
    states = []
    for t in range(6):
        keep = torch.rand(2, 5, generator=gen) < 1 - p
        h = cell(x[:, t], h) * keep / (1 - p)
        states.append(h)
    torch.testing.assert_close(got, torch.stack(states, 1), rtol=1e-12, atol=1e-12)


class _LossOf(nn.Module):
    """Wraps model.loss as a forward, so torch.func.functional_call can swap parameters."""

    def __init__(self, model):
        super().__init__()
        self.inner = model

    def forward(self, batch, generator):
        return self.inner.loss(batch, kl_weight=0.1, generator=generator)["loss"]


def test_gradcheck_tiny_model(make_model, make_batch):
    # Whole training objective (CD off so the gradient is the true one, dropout 0, noise on with the
    # generator re-seeded inside so the function is deterministic), float64 finite differences.
    model = make_model(n_heldin=2, n_neurons=3, n_obs_bins=3, n_fwd_bins=1, dtype=torch.float64,
                       hidden_size=4, ff_dim=4, dropout=0.0, cd_keep_prob=1.0, kl_ramp_epochs=0).train()
    wrapper = _LossOf(model)
    batch = make_batch(model, batch_size=2, dtype=torch.float64)
    names = ["inner.potential.kernel", "inner.posterior.heads.bias", "inner.readout.weight",
             "inner.encoder.rnn.weight_hh_l0"]
    params = {n: p.detach().clone().requires_grad_() for n, p in wrapper.named_parameters() if n in names}
    assert len(params) == len(names)

    def objective(heldin, *values):
        gen = torch.Generator().manual_seed(0)
        swapped = dict(zip(params, values))
        return torch.func.functional_call(wrapper, swapped, ({**batch, "heldin": heldin}, gen))

    heldin = batch["heldin"].clone().requires_grad_()
    # fast_mode: compares the directional derivative along random directions (same oracle, O(1) passes).
    assert torch.autograd.gradcheck(objective, (heldin, *params.values()), fast_mode=True)


def test_dynamics_stay_in_full_precision_under_bf16_autocast(make_model, make_batch):
    # z advances by Δ·v = 0.01·v per step: bf16's 8-bit mantissa would round such steps away, so the
    # rollout runs in the parameters' dtype with autocast off.
    model = make_model().eval()
    batch = make_batch(model)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(batch["heldin"], sample=False)
        losses = model.loss(batch, kl_weight=0.0, stage="val")
        pred = model.predict(batch["heldin"], mode="sample", n_samples=2, progress=True)
    assert out.z.dtype == out.v.dtype == torch.float32
    assert pred["rates"].dtype == torch.float32
    assert all(torch.isfinite(v) and v.dtype == torch.float32 for v in losses.values())
    # Rollout from the same (bf16-rounded) initial state in float32 without autocast: identical.
    from neurodyn.models.langevinflow import langevin_rollout

    kernel = model.potential.force_kernel()
    expected = langevin_rollout(out.z[:, 0], out.v[:, 0], out.z.shape[1] - 1,
                                force=lambda z: model.potential.force(z, kernel), dt=model.config.dt,
                                gamma=model.config.gamma, scheme=model.config.integrator)
    torch.testing.assert_close(out.z, expected.z)


def test_a_latent_size_taken_from_hidden_size_says_so():
    """LangevinFlowConfig(hidden_size=10) blamed 'latent_dim: latent size 10', a value the user never set
    (latent_dim defaults to hidden_size; helper-50)."""
    with pytest.raises(InputError, match=r"latent size 10 \(latent_dim unset: hidden_size\) is not divisible"):
        LangevinFlowConfig(hidden_size=10, n_heads=3)
    with pytest.raises(InputError, match=r"latent size 10 is not divisible"):
        LangevinFlowConfig(hidden_size=8, latent_dim=10)
