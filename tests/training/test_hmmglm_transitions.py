"""The Lightning HMM-GLM module runs the same stochastic EM as ``fit_em``: transitions re-estimated per batch
(the paper's per-sequence update) or pooled per epoch, checked against ``fit_em`` as the oracle."""

from __future__ import annotations

import copy

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from neurodyn.models.hmmglm import HMMGLMConfig
from neurodyn.models.hmmglm.fit import fit_em
from neurodyn.training.hmmglm_module import HMMGLMModule

N_NEURONS, N_INNER, N_EPOCHS = 4, 3, 3


@pytest.mark.parametrize("update", ["batch", "epoch"])
def test_module_matches_fit_em(update):
    from neurodyn.training.datamodules import SwitchingGLMDataModule

    # three training sequences, one per batch, visited in order by both (the module's loader unshuffled): with
    # one sequence per epoch "batch" and "epoch" would give the same result (P does not enter the M-step)
    dm = SwitchingGLMDataModule(n_states=2, n_neurons=N_NEURONS, n_sequences=4, n_bins=200, seed=3, n_train=3,
                                batch_size=1)
    dm.train_dataloader = lambda: dm._loader("train", shuffle=False)
    config = HMMGLMConfig(variant="hmmglm", n_states=2, n_lags=3, init_std=0.1, seed=5)
    module = HMMGLMModule(n_heldin=N_NEURONS, n_neurons=N_NEURONS, config=config, n_inner=N_INNER,
                          transition_update=update)
    oracle = copy.deepcopy(module.model)
    trainer = pl.Trainer(max_epochs=N_EPOCHS, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         limit_val_batches=0)
    trainer.fit(module, datamodule=dm)
    spikes = torch.as_tensor(np.asarray(dm.splits["train"].heldin), dtype=torch.float32)
    fit_em(oracle, spikes, n_iters=N_EPOCHS, n_inner=N_INNER, lr=module.hparams.lr, batch_size=1,
           transition_update=update, shuffle=False)
    # same operations in the same order on float32: equal up to a few float32 roundings
    eps = float(torch.finfo(torch.float32).eps)
    for (name, got), (_, want) in zip(module.model.state_dict().items(), oracle.state_dict().items()):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=100 * eps, atol=100 * eps, err_msg=name)


def test_batch_update_changes_transitions_before_the_epoch_ends():
    """With "batch" the transition matrix moves after the first E-step; with "epoch" only at the end."""
    from neurodyn.training.datamodules import SwitchingGLMDataModule

    seen = {}
    for update in ("batch", "epoch"):
        dm = SwitchingGLMDataModule(n_states=2, n_neurons=N_NEURONS, n_sequences=3, n_bins=150, seed=1, n_train=2,
                                    batch_size=1)
        module = HMMGLMModule(n_heldin=N_NEURONS, n_neurons=N_NEURONS,
                              config=HMMGLMConfig(variant="hmmglm", n_states=2, n_lags=3, seed=2), n_inner=1,
                              transition_update=update)
        start = module.model.log_transitions().detach().clone()

        class Probe(pl.Callback):
            def __init__(self, key, start):
                self.key, self.start = key, start

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
                if batch_idx == 0:
                    seen[self.key] = not torch.equal(pl_module.model.log_transitions().detach(), self.start)

        pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                   callbacks=[Probe(update, start)], enable_progress_bar=False, enable_model_summary=False,
                   num_sanity_val_steps=0, limit_val_batches=0).fit(module, datamodule=dm)
    assert seen == {"batch": True, "epoch": False}


def test_unknown_transition_update_is_an_input_error():
    from neurodyn.errors import InputError

    with pytest.raises(InputError, match="model.transition_update"):
        HMMGLMModule(n_heldin=2, n_neurons=2, transition_update="sequence")
