"""``neurodyn predict`` of a switching-GLM simulation with other data settings than the checkpoint's run read the
``connection_types`` out with standard errors from that command's training split: ``--data.n_train 2`` of a run
fitted on sequences 0-3 used sequences 0-1, and ``--data.seed 1`` a simulation the model never saw, with nothing
said. The read-out uses the sequences the run was fitted on (found again from its recorded data settings) where the
predicted data hold the run's simulation, and is left out, with a note naming the setting, where they do not."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from neurodyn.cli import main

SIM = ["--data.n_states", "2", "--data.n_neurons", "4", "--data.n_sequences", "6", "--data.n_bins", "80"]
FIT = ["--model", "HMMGLMModule", "--model.config.variant", "onehot", "--model.config.n_states", "2",
       "--model.n_inner", "2", "--data", "SwitchingGLMDataModule", "--data.n_train", "4", "--data.select_fraction",
       "0.25", "--trainer.accelerator", "cpu", "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false",
       "--trainer.enable_model_summary", "false"]
RUN = [*FIT, *SIM]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("types")
    assert main(["fit", *RUN, "--trainer.default_root_dir", str(root), "--run-name", "a"]) == 0
    return root / "a"


@pytest.fixture
def read_outs(monkeypatch):
    """The spikes every Wald read-out is given."""
    from neurodyn.models.hmmglm import readout

    seen, original = [], readout.read_out_types

    def recording(model, spikes, *args, **kwargs):
        seen.append(np.asarray(spikes.detach().cpu() if hasattr(spikes, "detach") else spikes))
        return original(model, spikes, *args, **kwargs)

    monkeypatch.setattr(readout, "read_out_types", recording)
    return seen


def _predict(run, out, *data):
    return main(["predict", "--run", str(run), "--ckpt_path", "last", *data, "--prediction.path", str(out)])


def test_another_n_train_reads_the_types_out_on_the_sequences_the_run_was_fitted_on(run, tmp_path, read_outs):
    from neurodyn.data.synthetic.switching_glm import simulate_switching_glm
    from neurodyn.training.datamodules.base import split_off

    assert _predict(run, tmp_path / "p.h5", "--data.init_args.n_train", "2") == 0
    spikes = simulate_switching_glm(n_states=2, n_neurons=4, n_sequences=6, n_bins=80, seed=0).spikes
    fitted = split_off(4, 0.25, 0, "select_fraction")[0]  # the run's 4 training sequences less its select split
    assert len(read_outs) == 1
    np.testing.assert_array_equal(read_outs[0], spikes[fitted])
    with h5py.File(tmp_path / "p.h5") as f:
        assert "connection_types" in f and len(f["train_posteriors"]) == 2


def test_another_simulation_gets_no_types_and_a_note_naming_the_setting(run, tmp_path, read_outs, capsys):
    capsys.readouterr()
    assert _predict(run, tmp_path / "p.h5", "--data.init_args.seed", "1") == 0
    assert ("note: connection_types left out: their standard errors come from the sequences the checkpoint's run was "
            "fitted on, and data.init_args.seed 1 is not the run's 0 (predict the run's simulation for them)"
            ) in capsys.readouterr().out
    assert read_outs == []
    with h5py.File(tmp_path / "p.h5") as f:
        assert "connection_types" not in f and "connection_types_definition" not in f.attrs
        assert "connection_types_argmax" in f  # the model's own types need no data


def test_the_runs_own_file_under_another_name_is_the_runs_simulation(tmp_path, read_outs):
    """A file is the run's simulation by the SHA-256 the run recorded, not by its path: a copy reads the types out
    on the run's sequences; another simulation written over the run's file gets none."""
    import shutil

    from neurodyn.data.synthetic.switching_glm import simulate_switching_glm, write_switching_glm_h5

    sim = simulate_switching_glm(n_states=2, n_neurons=4, n_sequences=6, n_bins=80, seed=0)
    write_switching_glm_h5(tmp_path / "sim.h5", sim)
    args = [*FIT, "--data.path", str(tmp_path / "sim.h5")]
    assert main(["fit", *args, "--trainer.default_root_dir", str(tmp_path), "--run-name", "f"]) == 0
    shutil.copy(tmp_path / "sim.h5", tmp_path / "copy.h5")
    assert _predict(tmp_path / "f", tmp_path / "p.h5", "--data.init_args.path", str(tmp_path / "copy.h5"),
                    "--data.init_args.n_train", "5") == 0
    np.testing.assert_array_equal(read_outs[-1], sim.spikes[[0, 1, 3]])  # split_off(4, 0.25, 0): select row 2
    write_switching_glm_h5(tmp_path / "copy.h5", simulate_switching_glm(n_states=2, n_neurons=4, n_sequences=6,
                                                                         n_bins=80, seed=5))
    n = len(read_outs)
    assert _predict(tmp_path / "f", tmp_path / "q.h5", "--data.init_args.path", str(tmp_path / "copy.h5")) == 0
    assert len(read_outs) == n
    with h5py.File(tmp_path / "q.h5") as f:
        assert "connection_types" not in f


@pytest.mark.parametrize(("fraction", "seed"), [(0.0, 0), (0.25, 0), (0.5, 3)])
def test_the_run_sequences_found_again_are_the_datamodules_fit_split(fraction, seed):
    """Guard (passes before and after the rule moved into SwitchingGLMDataModule.fitted_sequences): the sequences
    HMMGLMModule._run_sequences finds again from a run's recorded data settings, for a command of another n_train,
    and the rows rows_of_run_select takes from a command without the run's select split, are the rows the run's
    own DataModule fits on. It compares the two code paths, not a restated rule, so it fails if they drift apart."""
    from neurodyn.models.hmmglm import HMMGLMConfig
    from neurodyn.training.datamodules import SwitchingGLMDataModule
    from neurodyn.training.hmmglm_module import HMMGLMModule
    from neurodyn.training.predictions import rows_of_run_select

    sim = dict(n_states=2, n_neurons=4, n_sequences=6, n_bins=80, seed=0)
    ran = SwitchingGLMDataModule(**sim, n_train=4, select_fraction=fraction, select_seed=seed)
    fitted = ran.splits[ran.fit_split].heldin
    assert len(fitted) == 4 - round(fraction * 4)
    module = HMMGLMModule(n_heldin=4, n_neurons=4, config=HMMGLMConfig(n_states=2, seed=0))
    module._run_data = {"class_path": "neurodyn.training.datamodules.SwitchingGLMDataModule",
                        "init_args": {**sim, "n_train": 4, "select_fraction": fraction, "select_seed": seed}}
    for n_train in (2, 5):
        np.testing.assert_array_equal(module._run_sequences(SwitchingGLMDataModule(**sim, n_train=n_train)), fitted)
    whole = SwitchingGLMDataModule(**sim, n_train=4)  # the run's data, predicted without its select split
    np.testing.assert_array_equal(whole.splits["train"].heldin[rows_of_run_select(whole, (fraction, seed))], fitted)


def test_a_module_fitted_in_python_reads_its_types_out_on_the_sequences_it_was_fitted_on(tmp_path, read_outs):
    """A module fitted with ``trainer.fit`` (no checkpoint) and predicted on other data read its connection types out
    with standard errors from that data's fit split (here another simulation), with nothing said; the CLI's path
    reads them on the run's own sequences. The module now keeps the sequences it was fitted on at the fit's start
    and reads the types out on them; on the data it was fitted on the read-out is the one it was."""
    import lightning.pytorch as pl

    from neurodyn.models.hmmglm import HMMGLMConfig
    from neurodyn.training.datamodules import SwitchingGLMDataModule
    from neurodyn.training.hmmglm_module import HMMGLMModule
    from neurodyn.training.predictions import PredictionWriter

    def trainer(**kwargs):
        return pl.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_checkpointing=False,
                          enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path, **kwargs)

    sim = dict(n_states=2, n_neurons=4, n_sequences=6, n_bins=80)
    fitted_on = SwitchingGLMDataModule(**sim, seed=0, n_train=4, select_fraction=0.25)
    module = HMMGLMModule(n_heldin=4, n_neurons=4, config=HMMGLMConfig(variant="onehot", n_states=2, seed=0),
                          n_inner=2)
    trainer().fit(module, fitted_on)
    for name, data in (("other", SwitchingGLMDataModule(**sim, seed=1, n_train=3)), ("own", fitted_on)):
        writer = PredictionWriter(str(tmp_path / f"{name}.h5"))
        trainer(callbacks=[writer]).predict(module, data, return_predictions=False)
        np.testing.assert_array_equal(read_outs[-1], fitted_on.splits["fit"].heldin, err_msg=name)
        with h5py.File(tmp_path / f"{name}.h5") as f:
            assert "connection_types" in f and len(f["train_posteriors"]) == len(data.splits["train"])
    assert len(read_outs) == 2


def test_a_fit_whose_data_are_not_known_keeps_no_earlier_fits_sequences():
    """The sequences a module was fitted on were set only where the fit had a DataModule's splits: a later fit from
    plain dataloaders (no splits) kept the earlier fit's, and connection_types were then read out with standard errors
    from data the weights were no longer fitted on. Such a fit now leaves none kept."""
    from types import SimpleNamespace

    from neurodyn.models.hmmglm import HMMGLMConfig
    from neurodyn.training.hmmglm_module import HMMGLMModule

    module = HMMGLMModule(n_heldin=4, n_neurons=4, config=HMMGLMConfig(n_states=2, seed=0), n_inner=2)
    module._fitted_spikes = np.ones((2, 10, 4))  # kept by an earlier fit in this process
    module._trainer = SimpleNamespace(datamodule=None, ckpt_path=None)  # a fit from plain dataloaders
    module.on_fit_start()
    assert module._fitted_spikes is None
