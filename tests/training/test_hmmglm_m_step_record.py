"""The one-hot HMM-GLM's M-step: ``m_step_mode`` "auto" is resolved when the model is built (the Gumbel step with
the sigmoid link, the softmax step with exp / softplus). What a user reads (a checkpoint through ``neurodyn info``,
a prediction file) names the step that ran, and a resumed fit continues the step its checkpoint ran."""

from __future__ import annotations

import json
import re

import h5py
import torch

from neurodyn.cli import main

SIZES = ["--model.config.n_states", "2", "--model.n_inner", "2", "--data", "SwitchingGLMDataModule",
         "--data.n_states", "2", "--data.n_neurons", "5", "--data.n_sequences", "5", "--data.n_bins", "100",
         "--data.n_train", "3", "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
         "--trainer.enable_model_summary", "false"]
ONEHOT_EXP = ["--model", "HMMGLMModule", "--model.config.variant", "onehot", "--model.config.link", "exp", *SIZES]


def _fit(tmp_path, name, *extra, epochs=1):
    args = [*ONEHOT_EXP, "--trainer.default_root_dir", str(tmp_path), "--run-name", name,
            "--trainer.max_epochs", str(epochs), *extra]
    assert main(["fit", *args]) == 0
    return tmp_path / name / "checkpoints" / "last.ckpt"


def test_checkpoint_info_and_prediction_file_name_the_m_step_that_ran(tmp_path, capsys, monkeypatch):
    """They recorded only the setting "auto": a reader could not tell which M-step produced the model. The
    setting stays recorded as given (a resume compares it); the step that ran is recorded beside it."""
    monkeypatch.setenv("COLUMNS", "400")
    ckpt = _fit(tmp_path, "hmm")
    saved = torch.load(ckpt, weights_only=True)
    assert saved["hyper_parameters"]["config"]["m_step_mode"] == "auto"
    assert saved["neurodyn"]["resolved"] == {"config.m_step_mode": "softmax"}
    capsys.readouterr()
    assert main(["info", str(ckpt)]) == 0
    assert re.search(r"config\.m_step_mode as run\s+│ softmax \(the setting: auto\)", capsys.readouterr().out)
    out = tmp_path / "pred.h5"
    assert main(["predict", "--run", str(tmp_path / "hmm"), "--ckpt_path", "last", "--prediction.path",
                 str(out)]) == 0
    with h5py.File(out) as f:
        assert f.attrs["m_step_mode"] == "softmax"
        assert json.loads(f.attrs["model_config"])["config"]["m_step_mode"] == "softmax"


def test_the_sigmoid_link_records_the_papers_gumbel_step_and_other_variants_none(tmp_path):
    sigmoid = _fit(tmp_path, "sigmoid", "--model.config.link", "sigmoid")
    assert torch.load(sigmoid, weights_only=True)["neurodyn"]["resolved"] == {"config.m_step_mode": "gumbel"}
    hmmglm = _fit(tmp_path, "hmmglm", "--model.config.variant", "hmmglm")
    assert "resolved" not in torch.load(hmmglm, weights_only=True)["neurodyn"]
