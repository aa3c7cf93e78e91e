"""HMM-GLM through the shared harness: `neurodyn fit` (EM) and `neurodyn predict` on simulated data."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from neurodyn.cli import main
from neurodyn.errors import InputError

TINY = ["--model", "HMMGLMModule", "--model.config.n_states", "2", "--model.n_inner", "5",
        "--data", "SwitchingGLMDataModule", "--data.n_states", "2", "--data.n_neurons", "5",
        "--data.n_sequences", "5", "--data.n_bins", "300", "--data.n_train", "3",
        "--trainer.accelerator", "cpu", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false"]


@pytest.mark.parametrize("method", ["em", "gradient"])
def test_fit_predict(tmp_path, method):
    args = [*TINY, "--model.method", method, "--trainer.default_root_dir", str(tmp_path), "--run-name", "hmm"]
    assert main(["fit", *args, "--trainer.max_epochs", "3"]) == 0
    run = tmp_path / "hmm"
    header = (run / "metrics.csv").read_text().splitlines()[0]
    # last_step counts optimizer steps: 3 epochs x 1 batch (3 sequences < batch size), x n_inner (5) for EM
    index = json.loads((run / "checkpoints" / "checkpoints.json").read_text())
    assert (index["last_epoch"], index["last_step"]) == (2, 15 if method == "em" else 3)
    assert "valid/state_accuracy" in header and "valid/ll_per_spike" in header
    out = tmp_path / "states.h5"
    assert main(["predict", "--run", str(run), "--ckpt_path", "last", "--prediction.path", str(out)]) == 0
    with h5py.File(out) as f:
        post = f["valid_posteriors"][()]
        assert post.shape == (2, 300, 2)
        np.testing.assert_allclose(post.sum(-1), 1.0, atol=1e-5)  # float32 posteriors
        assert f["valid_viterbi"].shape == (2, 300)
        assert "bin_ms" not in f.attrs  # the simulator's bins have no width: plots count bins, not seconds
    from neurodyn.viz.prediction import read_prediction

    assert read_prediction(out)["bin_ms"] is None


def _negative(spikes):
    spikes[0, 3, 1] = -1
    return spikes, "negative"


def _nan(spikes):
    spikes = spikes.astype(np.float64)
    spikes[2, 7, 1] = np.nan  # a validation sequence
    return spikes, "spikes: 1 missing (NaN)"


@pytest.mark.parametrize("corrupt", [_negative, _nan], ids=["negative", "nan"])
def test_bad_counts_in_file_exit_2(tmp_path, capsys, corrupt):
    """A negative or NaN count is refused in one line naming the file and the dataset. A NaN: the DataModule
    turns it into 0 (masked, which LangevinFlow's loss honours), but a switching GLM would read it as 'no
    spike'."""
    from neurodyn.data.synthetic.switching_glm import simulate_switching_glm, write_switching_glm_h5

    sim = simulate_switching_glm(n_states=2, n_neurons=4, n_sequences=3, n_bins=50, seed=0)
    sim.spikes, expected = corrupt(sim.spikes)
    path = tmp_path / "bad.h5"
    write_switching_glm_h5(path, sim)
    code = main(["fit", "--model", "HMMGLMModule", "--data", "SwitchingGLMDataModule", "--data.path", str(path),
                 "--data.n_train", "2", "--trainer.max_epochs", "1", "--trainer.logger", "false",
                 "--trainer.default_root_dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and str(path) in err[0] and expected in err[0]


def test_simulator_arguments_that_disagree_with_the_file_are_refused(tmp_path, capsys):
    """With ``--data.path``, a simulator argument describes the file: one that disagrees with it (the
    synthetic configs say ``n_states: 5``; this file holds 2 states) is one line naming the option, exit 2.
    Before, the file's simulation silently replaced the one the config described. Unset (None), the file's
    sizes are taken."""
    from neurodyn.data.synthetic.switching_glm import simulate_switching_glm, write_switching_glm_h5
    from neurodyn.training.datamodules import SwitchingGLMDataModule

    path = tmp_path / "sim.h5"
    write_switching_glm_h5(path, simulate_switching_glm(n_states=2, n_neurons=4, n_sequences=3, n_bins=50, seed=7))
    code = main(["fit", "--model", "HMMGLMModule", "--data", "SwitchingGLMDataModule", "--data.path", str(path),
                 "--data.n_states", "5", "--data.n_train", "2", "--trainer.max_epochs", "1",
                 "--trainer.logger", "false", "--trainer.default_root_dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and str(path) in err[0] and "data.init_args.n_states:" in err[0], err
    assert "holds n_states 2" in err[0] and "asks for 5" in err[0], err[0]
    with pytest.raises(InputError, match=r"sim\.h5: seed: the file holds seed 7"):  # a Python caller: its argument
        SwitchingGLMDataModule(path=str(path), seed=0, n_train=2).load()
    dm = SwitchingGLMDataModule(path=str(path), n_states=2, n_neurons=4, n_sequences=3, n_bins=50, seed=7,
                                n_train=2)
    dm.load()  # every argument agrees
    dm = SwitchingGLMDataModule(path=str(path), n_train=2)
    dm.load()  # unset: the file's
    assert dm.simulation.seed == 7 and dm.splits["train"].heldin.shape[1:] == (50, 4)


@pytest.mark.parametrize(("option", "value"), [("n_states", "0"), ("prior_std", "-1")])
def test_bad_model_config_value_names_the_option(tmp_path, capsys, option, value):
    """A bad model setting is one line naming the option as the YAML / command line spells it, exit 2 (the
    Gaussian prior's std <= 0 was a 'math domain error' traceback with exit 1)."""
    code = main(["fit", *TINY, "--model.config.variant", "gaussian", f"--model.config.{option}", value,
                 "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"neurodyn fit: error: model.init_args.config.{option}: must be"), err[0]


def test_seed_everything_seeds_the_model(tmp_path):
    """`--seed_everything` starts EM from another point (it was ignored: the model's generator always used
    config.seed 0, so every seed gave the same fit); the same seed gives identical results; an explicit
    model.config.seed still wins."""
    import torch

    def fit(name, *extra):
        assert main(["fit", *TINY, "--model.config.variant", "hmmglm", "--trainer.max_epochs", "1",
                     "--trainer.default_root_dir", str(tmp_path), "--run-name", name, *extra]) == 0
        return torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"][
            "model.weights"]

    a0, b0 = fit("a0", "--seed_everything", "0"), fit("b0", "--seed_everything", "0")
    a7 = fit("a7", "--seed_everything", "7")
    assert torch.equal(a0, b0)
    assert (a0 - a7).abs().max() > 0.01
    fixed = [fit(f"f{s}", "--seed_everything", str(s), "--model.config.seed", "3") for s in (0, 7)]
    # the same start; only the order of the sequences in the (shuffled) batch differs: rounding
    torch.testing.assert_close(fixed[0], fixed[1], rtol=0, atol=1e-5)


def test_test_scores_the_report_split_once(tmp_path, capsys):
    """``neurodyn test`` was a traceback ('No test_step() method defined'), exit 1. It now scores the report
    split ('valid': the sequences validation never saw when a select split is carved) with the validation
    metrics, logged as test/*. Oracle: the negative marginal log-likelihood per bin of the report sequences,
    computed directly from the checkpoint's model."""
    import torch

    from neurodyn.training.datamodules import SwitchingGLMDataModule
    from neurodyn.training.hmmglm_module import HMMGLMModule

    args = [*TINY, "--data.n_train", "4", "--data.n_sequences", "6", "--data.select_fraction", "0.25",
            "--trainer.default_root_dir", str(tmp_path), "--run-name", "hmm"]
    assert main(["fit", *args, "--trainer.max_epochs", "2"]) == 0
    run = tmp_path / "hmm"
    capsys.readouterr()
    assert main(["test", "--run", str(run), "--ckpt_path", "last"]) == 0
    table = capsys.readouterr().out
    printed = {line.split("│")[1].strip(): float(line.split("│")[2]) for line in table.splitlines()
               if line.startswith("│") and "test/" in line}
    assert set(printed) == {"test/loss", "test/ll_per_spike", "test/state_accuracy"}, table

    module = HMMGLMModule.load_from_checkpoint(run / "checkpoints" / "last.ckpt", map_location="cpu")
    dm = SwitchingGLMDataModule(n_states=2, n_neurons=5, n_sequences=6, n_bins=300, n_train=4,
                                select_fraction=0.25)
    dm.load()
    dm.carve_select(0.25, 0)
    report = torch.as_tensor(dm.splits["valid"].heldin)
    assert len(report) == 2 and len(dm.splits["select"].heldin) == 1  # 6 = 3 fit + 1 select + 2 report
    with torch.no_grad():
        ll = module.model.marginal_log_likelihood(report).sum().item()
    # the table prints the logged float32: a few float32 ulps
    assert printed["test/loss"] == pytest.approx(-ll / (report.shape[0] * report.shape[1]), rel=1e-6)


def test_the_glm_variant_notes_that_n_states_is_not_used(tmp_path, capsys):
    """``variant glm`` fits one state whatever n_states says; config.yaml recorded n_states 2 without a word."""
    args = ["fit", *TINY, "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path)]
    assert main([*args, "--model.config.variant", "glm"]) == 0
    assert "note: model.init_args.config.variant glm has one state; n_states 2 is not used" in capsys.readouterr().out
    assert main([*args, "--model.config.variant", "glm", "--model.config.n_states", "1"]) == 0
    assert "is not used" not in capsys.readouterr().out


def test_a_file_of_other_sizes_is_refused_naming_every_mismatch(tmp_path, capsys):
    """A file of other sizes than the config's was refused one option at a time (five tries to run it). The
    command line's file, set last, is named, with the config's sizes it disagrees with and where they came from."""
    from neurodyn.data.synthetic.switching_glm import simulate_switching_glm, write_switching_glm_h5

    path = tmp_path / "sim.h5"
    write_switching_glm_h5(path, simulate_switching_glm(n_states=2, n_neurons=4, n_sequences=3, n_bins=50, seed=0))
    code = main(["fit", "--config", "configs/hmmglm/synthetic_onehot.yaml", "--data.path", str(path),
                 "--trainer.default_root_dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [
        f"neurodyn fit: error: {path}: data.init_args.path: the file holds n_states 2, n_neurons 4, n_sequences 3, "
        "n_bins 50, the run asks for 5, 20, 50, 2000; give null for data.init_args.n_states, data.init_args.n_neurons, "
        "data.init_args.n_sequences, data.init_args.n_bins (or leave them out) to take the "
        f"file's (--data.path {path} on the command line; n_states 5, n_neurons 20, n_sequences 50, n_bins 2000 in "
        "configs/hmmglm/synthetic_onehot.yaml)"], err


@pytest.mark.parametrize(("argv", "expected"), [
    (["--data.n_bins", "3"], "data.init_args.n_bins: sequences of 3 bins are not longer than the history window "
                             "model.init_args.config.n_lags (5 bins) (--data.n_bins 3 on the command line; "
                             "model.init_args.config.n_lags 5 in configs/hmmglm/synthetic_onehot.yaml)"),
    (["--data.n_sequences", "4", "--data.n_train", "5"],
     "data.init_args.n_train: n_train=5 must be between 1 and 3 (the simulation has 4 sequences)"),
])
def test_a_simulation_in_memory_too_small_names_the_option(tmp_path, capsys, argv, expected):
    """``--data.n_bins 3`` was 'train spikes: sequences of 3 bins are not longer than the history window (5
    bins)', naming neither option; an n_train beyond a simulation held in memory spoke of a 'file'."""
    code = main(["fit", "--config", "configs/hmmglm/synthetic_onehot.yaml", "--data.n_sequences", "4",
                 "--data.n_train", "2", *argv, "--trainer.max_epochs", "1", "--trainer.logger", "false",
                 "--trainer.default_root_dir", str(tmp_path)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == ["neurodyn fit: error: " + expected], err


def _fit_and_predict(tmp_path, model_args):
    """A 2-epoch fit of TINY's data with ``model_args`` and its predict file; returns (file, module of last.ckpt)."""
    from neurodyn.training.hmmglm_module import HMMGLMModule

    args = [*TINY, *model_args, "--trainer.default_root_dir", str(tmp_path), "--run-name", "hmm"]
    assert main(["fit", *args, "--trainer.max_epochs", "2"]) == 0
    out = tmp_path / "pred.h5"
    assert main(["predict", "--run", str(tmp_path / "hmm"), "--ckpt_path", "last", "--prediction.path",
                 str(out)]) == 0
    return out, HMMGLMModule.load_from_checkpoint(tmp_path / "hmm" / "checkpoints" / "last.ckpt", map_location="cpu")


def test_predict_and_export_write_the_same_coupling(tmp_path):
    """The same fitted one-hot model gave two `coupling` matrices: export_model_h5 wrote the softmax mixture,
    `neurodyn predict` the hard-type couplings. Both now write the hard types as `coupling` (the paper's
    reported coupling), the softmax mixture as `coupling_softmax`, and say so in attributes."""
    import torch

    from neurodyn.models.hmmglm.evaluate import export_model_h5
    from neurodyn.models.hmmglm.readout import COUPLING_DEFINITION, COUPLING_SOFTMAX_DEFINITION

    out, module = _fit_and_predict(tmp_path, ["--model.config.variant", "onehot"])
    exported = export_model_h5(tmp_path / "model.h5", module.model)
    with h5py.File(out) as pred, h5py.File(exported) as model:
        for name in ("coupling", "coupling_softmax"):
            np.testing.assert_allclose(pred[name][()], model[name][()], rtol=1e-6, atol=0)
        assert not np.allclose(model["coupling"][()], model["coupling_softmax"][()])  # two definitions
        assert "hard_coupling" not in model
        for f in (pred, model):
            assert f.attrs["coupling_definition"] == COUPLING_DEFINITION
            assert f.attrs["coupling_softmax_definition"] == COUPLING_SOFTMAX_DEFINITION
        with torch.no_grad(), module.model.weights_as("hard"):  # `coupling` is the hard-type couplings
            np.testing.assert_allclose(model["coupling"][()], module.model.coupling_matrices().numpy(), rtol=1e-6)


def test_validate_notes_another_select_split_than_the_runs(tmp_path, capsys):
    """`validate --run DIR --data.select_fraction X` with another select split than the run's scored valid/* on
    other trials -- some the checkpoint was fitted on, or the report split for 0 -- and said nothing; README says
    validate scores the select split, what the monitor saw. A note now says which trials were scored."""
    from neurodyn.training.datamodules.base import split_off

    args = [*TINY, "--data.select_fraction", "0.34", "--trainer.default_root_dir", str(tmp_path), "--run-name", "hmm"]
    assert main(["fit", *args, "--trainer.max_epochs", "1", "--trainer.check_val_every_n_epoch", "1"]) == 0
    run = str(tmp_path / "hmm")
    notes = {}
    for fraction in ("0.34", "0.67", "0"):
        capsys.readouterr()
        assert main(["validate", "--run", run, "--data.select_fraction", fraction]) == 0
        notes[fraction] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]
    assert notes["0.34"] == []  # the run's own select split
    fitted = set(split_off(3, 0.34, 0, "f")[0].tolist())
    scored = set(split_off(3, 0.67, 0, "f")[1].tolist())
    assert notes["0.67"] == [f"note: valid/* is scored on another select split than the run's (select_fraction 0.34, "
                             f"select_seed 0): {len(scored & fitted)} of its {len(scored)} trials are ones the "
                             "checkpoint was fitted on"]
    assert len(notes["0"]) == 1 and "the report split" in notes["0"][0]


def test_connection_types_of_a_simulation_read_out_on_the_fitted_sequences_whatever_select_split(tmp_path):
    """A run on the in-memory simulation with a select split, predicted with another `--data.select_fraction`
    (here 0: none), read `connection_types` out on the predict command's fit split -- every training sequence,
    those the run only selected on too -- not on the sequences the run was fitted on, as README says it does
    "whatever select split `predict` is given" (files of prepared NLB trials did; a simulation records no trials).
    The run's own select split is now taken from its settings when the data are otherwise the run's."""
    import torch

    from neurodyn.models.hmmglm.readout import read_out_types
    from neurodyn.training.datamodules import SwitchingGLMDataModule
    from neurodyn.training.hmmglm_module import HMMGLMModule

    args = [*TINY, "--data.select_fraction", "0.34", "--trainer.default_root_dir", str(tmp_path), "--run-name", "hmm"]
    assert main(["fit", *args, "--trainer.max_epochs", "2"]) == 0
    ckpt = tmp_path / "hmm" / "checkpoints" / "last.ckpt"
    model = HMMGLMModule.load_from_checkpoint(ckpt, map_location="cpu").model
    dm = SwitchingGLMDataModule(n_states=2, n_neurons=5, n_sequences=5, n_bins=300, n_train=3, select_fraction=0.34)
    fitted = read_out_types(model, torch.as_tensor(dm.splits["fit"].heldin)).numpy()
    every = read_out_types(model, torch.as_tensor(dm.splits["train"].heldin)).numpy()
    assert (fitted != every).any()  # the two read-outs differ on this data, so the file tells which was made
    for fraction in ("0", "0.34", "0.67"):
        out = tmp_path / f"pred{fraction}.h5"
        assert main(["predict", "--run", str(tmp_path / "hmm"), "--ckpt_path", "last", "--data.select_fraction",
                     fraction, "--prediction.path", str(out)]) == 0
        with h5py.File(out) as f:
            np.testing.assert_array_equal(f["connection_types"][()], fitted, err_msg=fraction)


@pytest.mark.parametrize("variant", ["hmmglm", "gaussian", "onehot"])
def test_predict_writes_the_fitted_prior_as_export_does(tmp_path, variant):
    """`neurodyn predict` wrote no `connectome` (the one-hot prior's state-constant type probabilities, the
    paper's connectome) and no Gaussian `shared_mean`, which export_model_h5 writes, and export_model_h5 no
    `initial`, which predict writes: every model array of a prediction file is now in the export file under the
    same name, with the same values, and the prior's arrays carry a definition attribute (shape, type order)."""
    from neurodyn.models.hmmglm.evaluate import export_model_h5
    from neurodyn.models.hmmglm.readout import CONNECTOME_DEFINITION, SHARED_MEAN_DEFINITION

    out, module = _fit_and_predict(tmp_path, ["--model.config.variant", variant])
    m = module.model
    exported = export_model_h5(tmp_path / "model.h5", m)
    expected = {"onehot": ["connectome"], "gaussian": ["shared_mean"], "hmmglm": []}[variant]
    with h5py.File(out) as pred, h5py.File(exported) as model:
        model_arrays = [n for n in pred if not n.startswith(("train_", "valid_")) and n != "connection_types"]
        assert set(model_arrays) <= set(model), sorted(set(model_arrays) - set(model))
        for name in model_arrays:  # predict writes float32 (export: the model's dtype, float32 here)
            np.testing.assert_array_equal(pred[name][()], model[name][()].astype(pred[name].dtype), err_msg=name)
        assert [n for n in ("connectome", "shared_mean") if n in pred] == expected
        for f in (pred, model):
            assert [a for a in ("connectome_definition", "shared_mean_definition") if a in f.attrs] == \
                [f"{n}_definition" for n in expected]
        if variant == "onehot":
            con = pred["connectome"][()]
            assert con.shape == (5, 5, 3) and pred.attrs["connectome_definition"] == CONNECTOME_DEFINITION
            np.testing.assert_array_equal(con, m.connectome().numpy())  # softmax(Π), [inh, none, exc]
            np.testing.assert_allclose(con.sum(-1), 1.0, rtol=0, atol=4 * np.finfo(np.float32).eps)
        if variant == "gaussian":
            assert pred["shared_mean"].shape == (5, 5)
            assert pred.attrs["shared_mean_definition"] == SHARED_MEAN_DEFINITION
            np.testing.assert_array_equal(pred["shared_mean"][()], m.shared_mean.sum(-1).numpy())


@pytest.mark.parametrize("variant", ["glm", "hmmglm", "gaussian", "onehot"])
def test_predict_and_export_write_the_same_connection_types(tmp_path, variant):
    """`connection_types` meant two rules: `neurodyn predict` wrote the Wald read-out (standard errors from the
    training sequences), export_model_h5 the one-hot prior's argmax - 1 (and nothing for the other variants).
    Given the training sequences, export_model_h5 now writes the same read-out under that name, for every
    variant, and both files hold the one-hot argmax types as `connection_types_argmax`, each with a definition
    attribute."""
    import torch

    from neurodyn.models.hmmglm.evaluate import export_model_h5
    from neurodyn.models.hmmglm.readout import CONNECTION_TYPES_ARGMAX_DEFINITION, connection_types_definition
    from neurodyn.training.datamodules import SwitchingGLMDataModule

    states = ["--model.config.n_states", "1"] if variant == "glm" else []
    out, module = _fit_and_predict(tmp_path, ["--model.config.variant", variant, *states])
    dm = SwitchingGLMDataModule(n_states=2, n_neurons=5, n_sequences=5, n_bins=300, n_train=3)  # TINY's data
    train = torch.as_tensor(dm.splits[dm.fit_split].heldin)
    exported = export_model_h5(tmp_path / "model.h5", module.model, train_spikes=train)
    with h5py.File(out) as pred, h5py.File(exported) as model:
        np.testing.assert_array_equal(pred["connection_types"][()], model["connection_types"][()])
        names = ["connection_types_argmax"] if variant == "onehot" else []
        assert [n for n in model if n.startswith("connection_types_")] == names
        assert [n for n in pred if n.startswith("connection_types_")] == names
        for name in names:
            np.testing.assert_array_equal(pred[name][()], model[name][()])
            np.testing.assert_array_equal(model[name][()], module.model.connection_types().numpy())
        for f in (pred, model):
            assert f.attrs["connection_types_definition"] == connection_types_definition()
            if variant == "onehot":
                assert f.attrs["connection_types_argmax_definition"] == CONNECTION_TYPES_ARGMAX_DEFINITION
            assert f["connection_types"].dtype == np.int8


@pytest.mark.parametrize("variant", ["hmmglm", "onehot"])
def test_predict_records_the_m_step_with_the_exports_definition(tmp_path, variant):
    """`neurodyn predict` recorded the one-hot model's `m_step_mode` with no word of what it is, while
    export_model_h5 writes `m_step_mode_definition` beside it. A prediction file now carries the export's
    attributes of the step, the definition the same text (M_STEP_MODE_DEFINITION, one source); the other variants
    write neither."""
    from neurodyn.models.hmmglm.evaluate import M_STEP_MODE_DEFINITION, export_model_h5

    out, module = _fit_and_predict(tmp_path, ["--model.config.variant", variant])
    exported = export_model_h5(tmp_path / "model.h5", module.model)
    names = {"m_step_mode", "m_step_mode_definition", "m_step_phases"}
    with h5py.File(out) as pred, h5py.File(exported) as model:
        written = {name: pred.attrs[name] for name in names & set(pred.attrs)}
        assert written == {name: model.attrs[name] for name in names & set(model.attrs)}
    if variant == "onehot":
        assert written == {"m_step_mode": module.model.m_step_mode, "m_step_mode_definition": M_STEP_MODE_DEFINITION}
    else:
        assert written == {}


def test_ll_per_spike_of_validation_without_spikes_is_nan():
    """valid/ll_per_spike divided by max(spikes, 1): sequences without a spike logged their total log-likelihood
    under the per-spike name (a finite number that reads like a score). It is undefined: NaN; valid/loss (per bin)
    stays the finite number it was."""
    import torch

    from neurodyn.models.hmmglm import HMMGLMConfig
    from neurodyn.training.hmmglm_module import HMMGLMModule

    module = HMMGLMModule(n_heldin=3, n_neurons=3, config=HMMGLMConfig(n_states=2, seed=0))
    logged = {}
    module.log = lambda name, value, **kwargs: logged.__setitem__(name, value)
    for spikes, finite in ((torch.zeros(2, 40, 3), False), (torch.ones(2, 40, 3), True)):
        module.on_validation_epoch_start()
        module.validation_step({"heldin": spikes}, 0)
        module.on_validation_epoch_end()
        assert np.isfinite(logged["valid/loss"])
        assert np.isfinite(logged["valid/ll_per_spike"]) == finite, logged
    ll = module.model.marginal_log_likelihood(torch.ones(2, 40, 3)).sum().item()
    assert logged["valid/ll_per_spike"] == pytest.approx(ll / 240, rel=1e-12)


def test_a_fit_from_python_trains_what_the_shell_trains_whatever_the_callers_default_dtype(tmp_path):
    """Under a caller's ``torch.set_default_dtype(torch.float64)`` (a notebook), ``main(["fit", ...])`` of an HMM-GLM
    trained float64 weights, other than the command in a shell trains; the command builds as in its own process
    (float32) and leaves the caller's default dtype as it was."""
    import torch

    weights = []
    for name, dtype in (("caller_f64", torch.float64), ("plain", torch.float32)):
        torch.set_default_dtype(dtype)
        try:
            assert main(["fit", *TINY, "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path),
                         "--run-name", name]) == 0
            assert torch.get_default_dtype() == dtype
        finally:
            torch.set_default_dtype(torch.float32)
        weights.append(torch.load(tmp_path / name / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"])
    assert weights[0].keys() == weights[1].keys()
    assert all(weights[0][k].dtype == weights[1][k].dtype and torch.equal(weights[0][k], weights[1][k])
               for k in weights[0])
