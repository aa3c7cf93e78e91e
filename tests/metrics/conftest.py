"""Fixtures of the metric tests: small random but valid NLB targets and predictions."""

from __future__ import annotations

import numpy as np
import pytest


def make_group(
    rng: np.random.Generator,
    *,
    dmfc: bool = False,
    n_train: int = 30,
    n_eval: int = 12,
    n_bins: int = 10,
    n_heldin: int = 5,
    n_heldout: int = 3,
    n_fwd: int = 4,
    n_masks: int = 0,
    psth: bool = True,
) -> tuple[dict, dict]:
    """(target group, prediction group) with nlb_tools' keys; rates Gamma, spikes Poisson of them."""
    n_all = n_heldin + n_heldout
    train_rates = rng.gamma(2.0, 0.5, (n_train, n_bins, n_all))
    eval_rates = rng.gamma(2.0, 0.5, (n_eval, n_bins, n_all))
    fwd_rates = rng.gamma(2.0, 0.5, (n_eval, n_fwd, n_all))
    spikes = rng.poisson(eval_rates).astype(float)
    fwd_spikes = rng.poisson(fwd_rates).astype(float)
    target = {
        "eval_spikes_heldout": spikes[..., n_heldin:],
        "eval_spikes_heldin_forward": fwd_spikes[..., :n_heldin],
        "eval_spikes_heldout_forward": fwd_spikes[..., n_heldin:],
    }
    if dmfc:
        target["eval_spikes_heldout"][:, :3] = np.nan  # before "set"

        def behavior(n):  # columns is_eye, theta, is_short, ts, tp
            labels = [rng.integers(0, 2, n), rng.integers(0, 2, n), np.zeros(n)]
            return np.column_stack([*labels, rng.uniform(500, 900, n), rng.uniform(500, 1000, n)])

        target["train_behavior"], target["eval_behavior"] = behavior(n_train), behavior(n_eval)
        target["eval_behavior"][0] = np.nan  # an outlier trial
    else:
        mixing = rng.normal(size=(n_all, 2))
        target["train_behavior"] = train_rates @ mixing + rng.normal(0, 0.5, (n_train, n_bins, 2))
        target["eval_behavior"] = eval_rates @ mixing + rng.normal(0, 0.5, (n_eval, n_bins, 2))
        target["train_behavior"][0, :2] = np.nan
    if n_masks:
        target["train_decode_mask"] = np.stack([np.arange(n_train) % 2 == k for k in range(2)], axis=1)
        target["eval_decode_mask"] = np.stack([np.arange(n_eval) % 2 == k for k in range(2)], axis=1)
    if psth:
        conditions = np.arange(n_eval) % 3
        target["eval_cond_idx"] = [np.flatnonzero(conditions == c) for c in range(3)]
        target["psth"] = np.stack([eval_rates[conditions == c].mean(0) for c in range(3)])
        target["psth"][:, :1] = np.nan
        if dmfc:
            target["eval_jitter"] = np.zeros(n_eval, dtype=int)
    prediction = {
        "train_rates_heldin": train_rates[..., :n_heldin],
        "train_rates_heldout": train_rates[..., n_heldin:],
        "eval_rates_heldin": eval_rates[..., :n_heldin],
        "eval_rates_heldout": eval_rates[..., n_heldin:],
        "eval_rates_heldin_forward": fwd_rates[..., :n_heldin],
        "eval_rates_heldout_forward": fwd_rates[..., n_heldin:],
    }
    return target, prediction


@pytest.fixture
def nlb_group():
    """Factory: ``nlb_group(seed, **kwargs) -> (target, prediction)``."""
    return lambda seed=0, **kwargs: make_group(np.random.default_rng(seed), **kwargs)
