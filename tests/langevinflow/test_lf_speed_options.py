"""Speed options that must not change the arithmetic: the fused force-matrix rollout, torch.compile with
its eager fallback, the CUDA-graph switch off CUDA, decoder precision resolution."""

from __future__ import annotations

import copy

import pytest
import torch

from neurodyn.errors import InputError
from neurodyn.models.langevinflow import LangevinFlowConfig, langevin_rollout
from neurodyn.models.langevinflow.accel import CompiledOrEager, GraphedRollout, cpu_flags, native_bf16


@pytest.mark.parametrize("scheme", ["reference", "symplectic", "ou_exact"])
@pytest.mark.parametrize("with_noise", [True, False])
def test_fused_matrix_rollout_equals_force_callable(scheme, with_noise):
    gen = torch.Generator().manual_seed(0)
    d, b, n = 12, 5, 30
    a = torch.randn(d, d, dtype=torch.float64, generator=gen)
    matrix = a + a.T
    z0 = torch.randn(b, d, dtype=torch.float64, generator=gen)
    v0 = torch.randn(b, d, dtype=torch.float64, generator=gen)
    noise = torch.randn(b, n, d, dtype=torch.float64, generator=gen) if with_noise else None
    kw = dict(dt=0.01, gamma=0.55, scheme=scheme, noise=noise)
    fused = langevin_rollout(z0, v0, n, force_matrix=matrix, **kw)
    plain = langevin_rollout(z0, v0, n, force=lambda z: z @ matrix, **kw)
    for got, want in zip(fused[:3], plain[:3]):
        # addmm(beta, alpha) rounds differently from (v - Δ·f)·(1-γ) by ~1 ulp per step
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-13)
    with pytest.raises(ValueError, match="not both"):
        langevin_rollout(z0, v0, n, force=lambda z: z, force_matrix=matrix, **kw)


def test_native_bf16_follows_cpu_flags(make_model):
    expected = bool({"avx512_bf16", "amx_bf16"} & cpu_flags())
    assert native_bf16("cpu") is expected
    model = make_model(decoder_precision="auto")
    assert model.decoder_dtype("cpu") == (torch.bfloat16 if expected else None)
    assert make_model(decoder_precision="bfloat16").decoder_dtype("cpu") == torch.bfloat16
    assert make_model().decoder_dtype("cpu") is None


@pytest.mark.parametrize("field,value", [("decoder_precision", "fp16"), ("compile", "yes"), ("cuda_graph", 1)])
def test_speed_option_validation(field, value):
    with pytest.raises(InputError) as err:
        LangevinFlowConfig(**{field: value})
    assert err.value.field == field


def test_compile_failure_falls_back_to_eager(make_model, make_batch, monkeypatch):
    eager = make_model(dropout=0.0)
    compiled = make_model(dropout=0.0, compile=True)
    compiled.load_state_dict(eager.state_dict())
    assert set(compiled.state_dict()) == set(eager.state_dict())  # the wrapper adds no keys

    def broken_compile(module, **kwargs):
        def call(*args, **kw):
            raise RuntimeError("no C++ compiler found")
        return call

    monkeypatch.setattr(torch, "compile", broken_compile)
    batch = make_batch(eager)
    with pytest.warns(RuntimeWarning, match="torch.compile failed"):
        got = compiled.predict(batch["heldin"], mode="mean")["log_rates"]
    torch.testing.assert_close(got, eager.predict(batch["heldin"], mode="mean")["log_rates"], rtol=0, atol=0)
    wrapper = compiled.__dict__["_compiled_decoder"]
    assert not wrapper.active and "no C++ compiler" in wrapper.error
    # later calls stay eager without warning again, training included
    loss = compiled.loss(batch, kl_weight=0.0)["loss"]
    loss.backward()
    clone = copy.deepcopy(compiled)  # the wrapper is copied fresh, sharing nothing with the original
    assert clone.__dict__["_compiled_decoder"].module is clone.decoder


def test_compiled_or_eager_calls_the_compiled_function(monkeypatch):
    calls = []
    monkeypatch.setattr(torch, "compile", lambda module, **kw: (lambda *a, **k: calls.append(kw) or module(*a, **k)))
    layer = torch.nn.Linear(3, 2)
    wrapper = CompiledOrEager(layer, dynamic=False)
    x = torch.randn(4, 3)
    torch.testing.assert_close(wrapper(x), layer(x))
    assert calls == [{"dynamic": False}] and wrapper.active


def test_cuda_graph_option_is_ignored_off_cuda(make_model, make_batch):
    eager = make_model()
    graphed = make_model(cuda_graph=True)
    graphed.load_state_dict(eager.state_dict())
    batch = make_batch(eager)
    a = eager.loss(batch, kl_weight=0.0, generator=torch.Generator().manual_seed(1))["loss"]
    b = graphed.loss(batch, kl_weight=0.0, generator=torch.Generator().manual_seed(1))["loss"]
    assert a.item() == b.item()
    assert "_graphed_rollout" not in graphed.__dict__
    with pytest.raises(ValueError, match="CUDA"):
        GraphedRollout(lambda *t: t)(torch.zeros(2))


def test_chunked_cpu_evaluation_equals_whole_batch(make_model, make_batch, monkeypatch):
    model = make_model(positional_encoding=True).eval()
    batch = make_batch(model, batch_size=10)
    whole = model.predict(batch["heldin"], mode="sample", n_samples=2)["log_rates"]
    calls = []
    real = model._decode
    monkeypatch.setattr(model, "_decode", lambda tokens, gen: calls.append(tokens.shape[0]) or real(tokens, gen))
    monkeypatch.setattr(type(model), "EVAL_CHUNK_TOKENS", 3 * (model.n_obs_bins + model.n_fwd_bins))
    chunked = model.predict(batch["heldin"], mode="sample", n_samples=2)["log_rates"]
    assert calls == [3, 3, 3, 1] * 2
    torch.testing.assert_close(chunked, whole, rtol=1e-6, atol=1e-6)
    # the whole pass runs in chunks of trials; the random draws are those of one pass over the batch
    with torch.no_grad():
        parts = model(batch["heldin"], generator=torch.Generator().manual_seed(3))
        monkeypatch.setattr(type(model), "EVAL_CHUNK_TOKENS", 10**9)
        one = model(batch["heldin"], generator=torch.Generator().manual_seed(3))
    for name, a, b in zip(one._fields, parts, one):
        if isinstance(b, torch.Tensor):
            assert a.shape == b.shape, name
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6, msg=name)
    monkeypatch.setattr(type(model), "EVAL_CHUNK_TOKENS", 3 * (model.n_obs_bins + model.n_fwd_bins))
    calls.clear()
    with torch.no_grad():  # training mode (dropout draws) is never chunked
        model.train()
        model(batch["heldin"])
    model.eval()
    model(batch["heldin"])  # nor is a pass that records gradients
    assert calls == [10, 10]


@pytest.mark.parametrize("explicit_generator", [True, False])
def test_checkpointed_decoder_gives_the_same_loss_and_gradients(make_model, make_batch, explicit_generator):
    plain = make_model(dtype=torch.float64)  # dropout on: the recomputation must redraw the same masks
    ckpt = make_model(dtype=torch.float64, checkpoint_decoder=True)
    ckpt.load_state_dict(plain.state_dict())
    batch = make_batch(plain, dtype=torch.float64)
    results = []
    for model in (plain, ckpt):
        gen = torch.Generator().manual_seed(4) if explicit_generator else None
        torch.manual_seed(11)
        loss = model.loss(batch, kl_weight=0.0002, generator=gen)["loss"]
        loss.backward()
        after = None if gen is None else torch.rand(1, generator=gen).item()
        results.append((loss.item(), {n: p.grad.clone() for n, p in model.named_parameters()}, after,
                        torch.rand(1).item()))
    (l0, g0, a0, r0), (l1, g1, a1, r1) = results
    assert l0 == l1 and a0 == a1 and r0 == r1  # generators left where the plain pass leaves them
    for name, grad in g0.items():
        torch.testing.assert_close(g1[name], grad, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("explicit_generator", [True, False])
@pytest.mark.parametrize("n_chunks", [2, 3])
def test_train_chunks_equal_the_chunks_run_one_after_another(make_model, make_batch, explicit_generator, n_chunks):
    """Oracle: the unchunked model on each chunk in turn (same draws), NLL weighted by observed entries and
    KL by trials; loss and every gradient must agree exactly in float64."""
    chunked = make_model(dtype=torch.float64, train_chunks=n_chunks, cd_keep_prob=0.7)  # dropout and CD on
    plain = make_model(dtype=torch.float64, cd_keep_prob=0.7)
    plain.load_state_dict(chunked.state_dict())
    batch = make_batch(plain, batch_size=7, dtype=torch.float64)
    batch["target_mask"][0, :, 1] = False  # chunks with different observed counts
    batch["target_mask"][5:, -2:] = False

    def start():
        torch.manual_seed(11)
        return torch.Generator().manual_seed(4) if explicit_generator else None

    terms = chunked.loss(batch, kl_weight=0.3, generator=start())
    terms["loss"].backward()
    gen = start()
    mask, nll, kl = batch["target_mask"], 0.0, 0.0
    for rows in torch.arange(7).tensor_split(n_chunks):
        part = plain.loss({k: v[rows] for k, v in batch.items()}, kl_weight=0.3, generator=gen)
        nll = nll + part["nll"] * mask[rows].sum() / mask.sum()
        kl = kl + part["kl"] * len(rows) / 7
    (nll + 0.3 * kl).backward()
    assert terms["nll"].item() == pytest.approx(nll.item(), rel=1e-14)
    assert terms["kl"].item() == pytest.approx(kl.item(), rel=1e-14)
    for (name, p), q in zip(plain.named_parameters(), chunked.parameters()):
        torch.testing.assert_close(q.grad, p.grad, rtol=1e-12, atol=1e-14, msg=name)
    with torch.no_grad():  # no gradients: one pass, nothing to recompute
        assert torch.isfinite(chunked.loss(batch, kl_weight=0.3)["loss"])


def test_train_chunks_must_be_a_positive_integer():
    with pytest.raises(InputError) as err:
        LangevinFlowConfig(train_chunks=0)
    assert err.value.field == "train_chunks"
