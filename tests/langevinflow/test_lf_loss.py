"""Loss terms against closed forms / torch.distributions, CD and SV conventions, the loss dictionary."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, Poisson, kl_divergence

from neurodyn.errors import InputError
from neurodyn.models.langevinflow import LangevinFlowConfig
from neurodyn.models.langevinflow import loss as terms


def normal64(mean, std) -> Normal:
    """A float64 Normal (Python-float parameters would make torch.distributions use float32)."""
    mean = torch.as_tensor(mean, dtype=torch.float64)
    return Normal(mean, torch.as_tensor(std, dtype=torch.float64).expand_as(mean))


def test_poisson_nll_is_negative_log_pmf_without_factorial():
    log_rates = torch.randn(50, dtype=torch.float64)
    counts = torch.poisson(torch.full((50,), 2.0, dtype=torch.float64))
    expected = -Poisson(log_rates.exp()).log_prob(counts) - torch.lgamma(counts + 1)
    torch.testing.assert_close(terms.poisson_nll(log_rates, counts), expected, rtol=1e-12, atol=1e-12)


def test_kl_standard_normal_matches_torch_distributions():
    mean, logvar = torch.randn(4, 6, dtype=torch.float64), torch.randn(4, 6, dtype=torch.float64)
    expected = kl_divergence(normal64(mean, (0.5 * logvar).exp()), normal64(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(terms.kl_standard_normal(mean, logvar), expected, rtol=1e-12, atol=1e-12)


def test_transition_kl_forms():
    gamma, prior_var, sigma = 0.55, 0.1, 0.8
    v = torch.randn(3, 5, 4, dtype=torch.float64)
    m = torch.randn(3, 4, 4, dtype=torch.float64)
    gauss = terms.transition_kl("gaussian", velocities=v, transition_mean=m, noise_std=sigma, gamma=gamma,
                                prior_var=prior_var)
    expected = kl_divergence(normal64(m, sigma), normal64(0.0, math.sqrt(prior_var))).sum((1, 2))
    torch.testing.assert_close(gauss, expected, rtol=1e-12, atol=1e-12)
    # Reference: the sampled v_t (t ≥ 1) as mean and 2γ as *log*-variance, i.e. std e^γ.
    ref = terms.transition_kl("reference", velocities=v, transition_mean=m, noise_std=sigma, gamma=gamma,
                              prior_var=prior_var)
    expected = kl_divergence(normal64(v[:, 1:], math.exp(gamma)), normal64(0.0, math.sqrt(prior_var)))
    expected = expected.sum((1, 2))
    torch.testing.assert_close(ref, expected, rtol=1e-12, atol=1e-12)
    zero = terms.transition_kl("gaussian", velocities=v, transition_mean=m, noise_std=0.0, gamma=0.0,
                               prior_var=prior_var)
    assert torch.equal(zero, torch.zeros(3, dtype=torch.float64))


@pytest.mark.parametrize("mode", ["dropped", "reference"])
def test_coordinated_dropout_statistics(mode):
    # Keep prob p: kept fraction p, input sum preserved in expectation. Gradient fraction: 1 - p
    # ('dropped': only dropped entries) or 1 - p² ('reference': kept entries too, with prob 1 - p).
    p, n = 0.3, 200_000
    x = torch.ones(1, 400, 500)
    cd_input, grad = terms.coordinated_dropout(x, p, torch.Generator().manual_seed(0), mode)
    kept = cd_input > 0
    torch.testing.assert_close(cd_input[kept], torch.full_like(cd_input[kept], 1 / p))
    assert torch.all(grad[~kept])  # a dropped entry always gets gradient
    kept_grad = 1 - p if mode == "reference" else 0.0
    for observed, expected in ((kept.float().mean(), p), (grad.float().mean(), 1 - p + p * kept_grad),
                               (grad[kept].float().mean(), kept_grad)):
        # Binomial standard error sqrt(q(1-q)/n) with n ≥ 0.3·200,000 entries; 5 standard errors
        # (an exact 0 has no spread: the comparison is then exact).
        assert abs(observed.item() - expected) <= 5 * math.sqrt(expected * (1 - expected) / (0.3 * n))
    same_input, all_grad = terms.coordinated_dropout(x, 1.0)
    assert torch.equal(same_input, x) and torch.all(all_grad)
    with pytest.raises(ValueError):
        terms.coordinated_dropout(x, p, mode="sometimes")


def test_gradient_masked_keeps_value_and_blocks_gradient():
    values = torch.randn(3, 4, requires_grad=True)
    mask = torch.rand(3, 4) < 0.5
    out = terms.gradient_masked(values, mask)
    torch.testing.assert_close(out, values)
    out.sum().backward()
    assert torch.equal(values.grad, mask.float())


def test_pad_mask():
    mask = torch.zeros(2, 3, 4, dtype=torch.bool)
    padded = terms.pad_mask(mask, torch.Size((2, 5, 6)))
    assert padded.shape == (2, 5, 6)
    assert not padded[:, :3, :4].any() and padded[:, 3:].all() and padded[:, :, 4:].all()


def test_training_gradient_follows_cd_convention(make_model, make_batch):
    # d loss / d ℓ = g·(exp ℓ - y) / #entries, g = CD gradient mask padded with True (held-out, forward).
    model = make_model(dropout=0.0, cd_keep_prob=0.4, kl_max=0.0, dtype=torch.float64).train()
    batch = make_batch(model, batch_size=6, dtype=torch.float64)
    captured = []

    def keep(module, inputs, output):
        output.retain_grad()
        captured.append(output)

    handle = model.readout.register_forward_hook(keep)
    model.loss(batch, kl_weight=0.0, generator=torch.Generator().manual_seed(7))["loss"].backward()
    handle.remove()
    log_rates = captured[0]
    _, grad_mask = terms.coordinated_dropout(batch["heldin"], 0.4, torch.Generator().manual_seed(7))
    g = terms.pad_mask(grad_mask, log_rates.shape).double()
    expected = g * (log_rates.detach().exp() - batch["target"]) / log_rates.numel()
    torch.testing.assert_close(log_rates.grad, expected, rtol=1e-10, atol=1e-14)
    assert (g == 0).any() and (g[..., model.n_obs_bins:, :] == 1).all()


def test_loss_dictionary_values(make_model, make_batch):
    model = make_model(kl_max=0.1, kl_ramp_epochs=500).eval()
    batch = make_batch(model)
    out = model.loss(batch, kl_weight=0.05, stage="train", generator=torch.Generator().manual_seed(0))
    assert all(v.dim() == 0 and torch.isfinite(v) for v in out.values())
    assert out["kl_weight"].item() == pytest.approx(0.05)
    torch.testing.assert_close(out["loss"], out["nll"] + 0.05 * out["kl"])
    torch.testing.assert_close(out["kl"], out["kl_z0"] + out["kl_v0"] + out["kl_transition"])
    assert model.loss(batch, kl_weight=0.0)["kl_weight"].item() == 0.0
    for bad in (-0.1, float("nan"), float("inf"), True, "0.1"):
        with pytest.raises(InputError, match="kl_weight"):
            model.loss(batch, kl_weight=bad)


@pytest.mark.parametrize("preset", ["default", "reference"])
def test_loss_is_differentiable_everywhere(make_model, make_batch, preset):
    # 'reference' includes the zero-initialised kernel, whose first gradient is ~1e12 but finite.
    options = LangevinFlowConfig.reference(hidden_size=8).__dict__ if preset == "reference" else {}
    sizes = ("hidden_size", "ff_dim", "n_heads", "n_channels")
    options = {k: v for k, v in options.items() if k not in sizes}
    model = make_model(**{**options, "dropout": 0.1}).train()
    out = model.loss(make_batch(model), kl_weight=0.1)
    out["loss"].backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("eval_mode", ["mean", "sample"])
def test_val_monitor_is_deterministic_and_masked(make_model, make_batch, eval_mode):
    model = make_model(eval_mode=eval_mode).eval()
    batch = make_batch(model)
    first = model.loss(batch, kl_weight=0.0, stage="val")
    second = model.loss(batch, kl_weight=0.0, stage="val")
    assert torch.equal(first["loss"], second["loss"]) and torch.equal(first["loss"], first["nll"])
    # The monitor is the masked mean NLL of the posterior-mean pass ('mean'), or of one sampled pass
    # drawn from a generator seeded with sv_seed ('sample').
    if eval_mode == "mean":
        log_rates = model(batch["heldin"], sample=False).log_rates
    else:
        log_rates = model(batch["heldin"], sample=True, generator=torch.Generator().manual_seed(0)).log_rates
    mask = batch["target_mask"].clone()
    mask[:, :, model.n_heldin:] = False  # e.g. test-phase trials: no held-out targets
    garbage = batch["target"].clone()
    garbage[~mask] = 99.0
    masked = model.loss({**batch, "target": garbage, "target_mask": mask}, kl_weight=0.0, stage="val")
    expected = terms.poisson_nll(log_rates, batch["target"])[mask].mean()
    torch.testing.assert_close(masked["nll"], expected)


def test_sample_validation_options(make_model, make_batch):
    fixed = make_model(val_mask="fixed").eval()
    batch = make_batch(fixed, batch_size=16)
    monitor = lambda: fixed.loss(batch, kl_weight=0.0, stage="val")["loss"]  # noqa: E731
    assert torch.equal(monitor(), monitor())
    plain = fixed.loss(batch, kl_weight=0.0, stage="val")["loss"]
    fixed.config = fixed.config.replace(val_mask="none")
    assert not torch.equal(plain, fixed.loss(batch, kl_weight=0.0, stage="val")["loss"])
    target = batch["target"]
    sv = terms.sample_validation_targets(target, 6, 3, 0.8, torch.Generator().manual_seed(0))
    assert torch.equal(sv[:, :6], target[:, :6]) and torch.equal(sv[:, :, :3], target[:, :, :3])
    block = sv[:, 6:, 3:]
    assert torch.all((block == 0) | torch.isclose(block, target[:, 6:, 3:] / 0.8))


@pytest.mark.parametrize("field,value", [
    ("latent_dim", 7), ("kernel_size", 2), ("gamma", 1.5), ("cd_keep_prob", 0.0),
    ("integrator", "rk4"), ("n_heads", 5), ("dropout", 1.0), ("hidden_size", 0),
])
def test_config_validation(field, value):
    with pytest.raises(InputError, match=field):
        LangevinFlowConfig(**{"hidden_size": 8, "ff_dim": 8, field: value})


def test_kl_scale_per_entry_divides_by_target_entries(make_model, make_batch):
    # Same draws (same generator seed) -> same NLL and KL; only the weighting differs.
    ref = make_model(kl_max=0.1, kl_ramp_epochs=0, dtype=torch.float64)
    per = make_model(kl_max=0.1, kl_ramp_epochs=0, kl_scale="per_entry", dtype=torch.float64)
    per.load_state_dict(ref.state_dict())
    batch = make_batch(ref, dtype=torch.float64)
    a = ref.loss(batch, kl_weight=0.1, generator=torch.Generator().manual_seed(3))
    b = per.loss(batch, kl_weight=0.1, generator=torch.Generator().manual_seed(3))
    entries = batch["target"].shape[1] * batch["target"].shape[2]
    torch.testing.assert_close(a["kl"], b["kl"])
    torch.testing.assert_close(a["total"] - a["nll"], 0.1 * a["kl"])
    torch.testing.assert_close(b["total"] - b["nll"], 0.1 * b["kl"] / entries)
