"""The default number of training sequences of a switching-GLM fit has one source,
:data:`neurodyn.data.synthetic.switching_glm.DEFAULT_N_TRAIN`: ``SwitchingGLMDataModule``'s ``n_train`` default and
``neurodyn info``'s ``next:`` fit line of a switching-GLM file (which names ``--data.init_args.n_train`` only where
that default leaves no sequence to validate on) both take it; info wrote a literal 30 of its own."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import yaml

from neurodyn.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_the_datamodule_and_the_config_info_names_use_the_default():
    from neurodyn.data.synthetic import switching_glm as sg
    from neurodyn.training.datamodules import SwitchingGLMDataModule

    assert inspect.signature(SwitchingGLMDataModule).parameters["n_train"].default == sg.DEFAULT_N_TRAIN
    # info's fit line names this config: its n_train is the one the line relies on
    config = yaml.safe_load((ROOT / "configs" / "hmmglm" / "synthetic_hmmglm.yaml").read_text())
    assert config["data"]["init_args"]["n_train"] == sg.DEFAULT_N_TRAIN


@pytest.mark.parametrize("n_sequences, named", [(3, True), (4, False)])
def test_info_names_n_train_exactly_where_the_default_leaves_no_valid_sequence(tmp_path, capsys, monkeypatch,
                                                                               n_sequences, named):
    """With the default made 3 (any value: info must read it, not a number of its own), a 3-sequence file is
    given ``--data.init_args.n_train`` (3 would leave no valid sequence) and a 4-sequence file is not."""
    from neurodyn.data.synthetic import switching_glm as sg

    monkeypatch.setenv("COLUMNS", "400")
    monkeypatch.setattr(sg, "DEFAULT_N_TRAIN", 3)
    path = tmp_path / "sg.h5"
    assert main(["simulate", "switching-glm", "--out", str(path), "--n-states", "2", "--n-neurons", "3",
                 "--n-sequences", str(n_sequences), "--n-bins", "20", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["info", str(path)]) == 0
    fits = [line for line in capsys.readouterr().out.splitlines() if line.startswith("next: neurodyn fit")]
    assert len(fits) == 1, fits
    assert ("--data.init_args.n_train" in fits[0]) == named, fits[0]
