"""RateEnsemble: the members' rates averaged, on LangevinFlow fits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurodyn.errors import InputError
from neurodyn.models.ensemble import RateEnsemble
from neurodyn.training.recipes import heldout_loglik


def test_rates_are_the_members_mean(make_model, make_batch):
    members = [make_model(seed=s, n_fwd_bins=0) for s in (0, 1, 2)]
    heldin = make_batch(members[0])["heldin"]
    for mode in ("mean", "sample"):
        each = [m.predict(heldin, mode=mode, n_samples=2)["rates"] for m in members]
        out = RateEnsemble(members).predict(heldin, mode=mode, n_samples=2)
        assert torch.equal(out["rates"], (each[0] + each[1] + each[2]) / 3)  # same additions, same order
        assert torch.equal(out["log_rates"], torch.log(out["rates"]))
    single = RateEnsemble(members[:1]).predict(heldin)["rates"]
    assert torch.equal(single, members[0].predict(heldin)["rates"])


def test_select_likelihood_of_the_ensemble_is_at_least_its_members_mean(make_model, make_batch):
    """The property the selection note relies on: the Poisson likelihood is concave in the rate."""
    members = [make_model(seed=s, n_fwd_bins=0) for s in (3, 4)]
    x = make_batch(members[0], batch_size=16)["heldin"].numpy()
    each = [heldout_loglik(m, x, keep_prob=0.7) for m in members]
    ens = heldout_loglik(RateEnsemble(members), x, keep_prob=0.7)
    assert ens >= np.mean(each) - 1e-6 * abs(np.mean(each))  # float32 rates: relative rounding only
    assert ens != pytest.approx(np.mean(each), rel=1e-9)  # the members differ, so the inequality is strict


def test_refusals(make_model, make_batch):
    with pytest.raises(InputError, match="at least one"):
        RateEnsemble([])
    a, b = make_model(n_neurons=5, n_fwd_bins=0), make_model(n_neurons=6, n_fwd_bins=0)
    with pytest.raises(InputError, match="different shapes"):
        RateEnsemble([a, b]).predict(make_batch(a)["heldin"])
