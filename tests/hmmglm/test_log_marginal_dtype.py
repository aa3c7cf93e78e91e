"""``log p(X)`` of float32 inputs is returned in float64 by every inference method (it is accumulated in
float64; rounding it to float32 lost ~1e-3 nats at 2.5e4, more than the differences models are compared on)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurodyn.models.hmmglm.inference import forward_backward, forward_filter, log_marginal_likelihood


def _inputs(n_states: int = 3):
    gen = torch.Generator().manual_seed(0)
    ll = (-5.0 - 3.0 * torch.rand(2, 4000, n_states, generator=gen, dtype=torch.float64)).float()  # ~ -2.5e4 nats
    trans = (torch.rand(n_states, n_states, generator=gen, dtype=torch.float64)
             + 4.0 * torch.eye(n_states, dtype=torch.float64)).log().log_softmax(-1).float()
    init = torch.full((n_states,), 1.0 / n_states).log()
    return init, trans, ll


@pytest.mark.parametrize("method", ["compiled", "scan", "chunked", "sequential", "parallel"])
def test_log_marginal_of_float32_inputs_is_float64(method):
    init, trans, ll = _inputs()
    reference = forward_backward(init.double(), trans.double(), ll.double(), method="compiled").log_marginal
    smoothed = forward_backward(init, trans, ll, method=method)
    assert smoothed.posteriors.dtype == torch.float32  # everything else stays in the input dtype
    for result in (smoothed, forward_filter(init, trans, ll, method=method)):
        assert result.log_marginal.dtype == torch.float64, method
        ulp32 = np.spacing(np.float32(reference.abs().max()))  # 2e-3 nats here
        error = (result.log_marginal - reference).abs().max().item()
        # float64 arithmetic (compiled) keeps every digit; the torch methods' float32 messages stay below the
        # rounding a float32 result would add
        assert error < (1e-6 if method == "compiled" else 0.5 * ulp32), (method, error, ulp32)


def test_one_state_and_differentiable_log_marginal_are_float64():
    init, trans, ll = _inputs(1)
    one = forward_backward(init, trans, ll).log_marginal
    assert one.dtype == torch.float64
    assert torch.equal(one, ll[..., 0].double().sum(1))  # log pi = log P = 0: the sum of the bins, in float64
    init, trans, ll = _inputs()
    ll.requires_grad_(True)
    value = log_marginal_likelihood(init, trans, ll, method="chunked")
    assert value.dtype == torch.float64
    value.sum().backward()
    assert ll.grad.dtype == torch.float32 and torch.allclose(ll.grad.sum(-1), torch.ones(2, 4000))
