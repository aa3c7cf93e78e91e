"""The defaults of a class chosen with ``--model`` / ``--data`` are that class's own.

jsonargparse keeps the default class's values for arguments the chosen class shares with it (its issue
#460): ``neurodyn fit --model HMMGLMModule`` ran with LangevinFlowModule's learning rate, and
``--data SwitchingGLMDataModule`` simulated LorenzDataModule's 29 neurons in batches of 64.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import yaml

from neurodyn.cli import main
from neurodyn.training.datamodules import LorenzDataModule, SwitchingGLMDataModule
from neurodyn.training.hmmglm_module import HMMGLMModule
from neurodyn.training.module import LangevinFlowModule


def _printed(capsys, *args) -> dict:
    assert main(["fit", *args]) == 0
    return yaml.safe_load(capsys.readouterr().out)


def _defaults(cls) -> dict:
    return {k: p.default for k, p in inspect.signature(cls).parameters.items()
            if p.default is not inspect.Parameter.empty}


def _assert_own_defaults(section: dict, cls, skip=()) -> None:
    own = _defaults(cls)
    for key, value in section["init_args"].items():
        if key in own and key not in skip:
            assert value == own[key], (cls.__name__, key, value, own[key])


@pytest.mark.parametrize("print_config", [["--print_config"], ["--print_config=skip_null"]])
def test_a_chosen_class_gets_its_own_defaults(capsys, print_config):
    cfg = _printed(capsys, "--model", "HMMGLMModule", "--data", "SwitchingGLMDataModule", *print_config)
    assert cfg["model"]["class_path"].endswith("HMMGLMModule")
    _assert_own_defaults(cfg["model"], HMMGLMModule, skip=("config",))
    _assert_own_defaults(cfg["data"], SwitchingGLMDataModule)
    # the values the default classes would have lent, so the test cannot pass by accident
    assert _defaults(LangevinFlowModule)["lr"] != _defaults(HMMGLMModule)["lr"]
    assert _defaults(LorenzDataModule)["batch_size"] != _defaults(SwitchingGLMDataModule)["batch_size"]


def test_defaults_unchanged_without_a_choice_and_explicit_values_kept(capsys, tmp_path):
    cfg = _printed(capsys, "--print_config")
    assert cfg["model"]["class_path"].endswith("LangevinFlowModule")
    _assert_own_defaults(cfg["model"], LangevinFlowModule, skip=("config",))
    _assert_own_defaults(cfg["data"], LorenzDataModule)
    # an explicit value equal to the default class's default is the user's, not a leftover
    cfg = _printed(capsys, "--data", "SwitchingGLMDataModule", "--data.batch_size", "64", "--print_config")
    assert cfg["data"]["init_args"]["batch_size"] == 64
    # a class chosen in a config file
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"model": {"class_path": "HMMGLMModule"},
                                    "data": {"class_path": "SwitchingGLMDataModule", "init_args": {"n_train": 3}}}))
    cfg = _printed(capsys, "--config", str(path), "--print_config")
    _assert_own_defaults(cfg["model"], HMMGLMModule, skip=("config",))
    assert cfg["data"]["init_args"]["n_train"] == 3 and cfg["data"]["init_args"]["batch_size"] == 30


@pytest.mark.parametrize(("where", "expected"), [
    ("yaml", "{cfg}: model.init_args.lr_schedule: must be"),
    ("command line", "model.init_args.lr_schedule: must be"),
])
def test_a_refused_model_value_names_the_full_option_and_its_file(tmp_path, capsys, where, expected):
    """A value a module refuses named the bare field ('lr_schedule: must be ...'), not the option as the
    config spells it nor the file that set it."""
    cfg = tmp_path / "bad.yaml"
    model = {"class_path": "LangevinFlowModule", "init_args": {"lr_schedule": "cosin"}}
    cfg.write_text(yaml.safe_dump({"model": model}))
    args = ["--config", str(cfg)] if where == "yaml" else ["--model.init_args.lr_schedule", "cosin"]
    assert main(["fit", *args, "--trainer.default_root_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("neurodyn fit: error: " + expected.format(cfg=cfg)), err


def test_command_line_mistakes_are_named_as_spelt(tmp_path, capsys):
    """A misspelt option was reported as 'model.hiden_size' (jsonargparse's short form) and a folder given as
    --config as 'config: invalid value'."""
    assert main(["fit", "--model.init_args.config.hiden_size", "3"]) == 2
    assert "error: model.init_args.config.hiden_size: option 'hiden_size' is not accepted" in capsys.readouterr().err
    assert main(["fit", "--config", str(tmp_path)]) == 2
    assert f"error: {tmp_path}: --config: is a folder, expected a YAML config file" in capsys.readouterr().err
    # a simulated Lorenz file given to the Lorenz config (which simulates in memory): how to read a file
    assert main(["fit", "--config", "configs/langevinflow/lorenz.yaml", "--data.path", "lz.h5"]) == 2
    assert capsys.readouterr().err.strip() == (
        "neurodyn fit: error: data.path: option 'path' is not accepted by LorenzDataModule; a file (neurodyn "
        "simulate lorenz): --data LFADSDataModule --data.path FILE")


@pytest.mark.parametrize("option", [["--data.path", "p.h5"], ["--data.path=p.h5"], ["--data.init_args.path", "p.h5"]])
def test_an_option_before_the_config_that_chooses_its_class_says_so(tmp_path, capsys, option):
    """``--data.path p.h5 --config configs/langevinflow/mc_maze_small_cpu.yaml`` (options apply in order: the
    default data class, LorenzDataModule, gets the path) blamed the shipped config file and advised simulating a
    Lorenz file. Now the option as spelt, and that the config after it chooses the class."""
    config = "configs/langevinflow/mc_maze_small_cpu.yaml"
    assert main(["fit", *option, "--config", config, "--trainer.default_root_dir", str(tmp_path)]) == 2
    spelt = option[0][2:].split("=")[0]
    assert capsys.readouterr().err.strip() == (
        f"neurodyn fit: error: {spelt}: option 'path' is not accepted by LorenzDataModule, the class at that point "
        f"of the command line: options apply in order, and the --config {config} after it chooses NLBDataModule "
        "(options of that class go after it)")


@pytest.mark.parametrize(("where", "expected"), [
    ("command line", "data.init_args.n_states: must be a whole number >= 1, got 0"),
    ("yaml", "{cfg}: data.init_args.n_states: must be a whole number >= 1, got 0"),
])
def test_a_refused_data_value_is_named_in_the_data_section(tmp_path, capsys, where, expected):
    """n_states is an option of both the DataModule and the model's config: a value the DataModule refused
    was blamed on 'model.init_args.config.n_states' and on the config file, although --data.n_states set it."""
    base = "configs/hmmglm/synthetic_onehot.yaml"
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"init_args": {"n_states": 0}}}))
    args = ["--data.n_states", "0"] if where == "command line" else ["--config", str(cfg)]
    assert main(["fit", "--config", base, *args, "--trainer.default_root_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["neurodyn fit: error: " + expected.format(cfg=cfg)], err


def test_a_linked_size_refused_by_the_data_is_not_blamed_on_the_model(tmp_path, capsys):
    """n_neurons is linked from the DataModule into the model: --data.n_neurons 0 was reported as
    'model.init_args.n_neurons', an option the user cannot even set."""
    assert main(["fit", "--data.n_neurons", "0", "--trainer.accelerator", "cpu",
                 "--trainer.default_root_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["neurodyn fit: error: data.init_args.n_neurons: must be a positive integer, got 0"], err


def _both_sections():
    from jsonargparse import Namespace

    return Namespace(model=Namespace(init_args=Namespace(n_neurons=3, config=Namespace(x=1), x=2)),
                     data=Namespace(init_args=Namespace(n_neurons=3)))


@pytest.mark.parametrize(("argv", "section", "field", "expected"), [
    # the raising section decides, whatever the command line says
    (["--model.x", "2"], "data", "n_neurons", "data.init_args.n_neurons"),
    ([], "model", "n_neurons", "model.init_args.n_neurons"),
    # section unknown: the option the user wrote, else the bare field
    (["--data.n_neurons", "0"], None, "n_neurons", "data.init_args.n_neurons"),
    (["--model.init_args.n_neurons=0"], None, "n_neurons", "model.init_args.n_neurons"),
    ([], None, "n_neurons", "n_neurons"),
    # x and config.x in one section: the one written (the last of both), else the bare field
    (["--model.init_args.config.x", "0"], "model", "x", "model.init_args.config.x"),
    (["--model.config.x", "0", "--model.x", "0"], "model", "x", "model.init_args.x"),
    ([], "model", "x", "x"),
])
def test_qualified_picks_the_raising_section_then_what_the_user_wrote(argv, section, field, expected):
    from neurodyn.errors import InputError
    from neurodyn.training.parser_errors import qualified

    out = qualified(InputError("bad", field=field), _both_sections(), argv, section=section)
    assert (out.field, out.path) == (expected, None)


def test_qualified_prefers_the_option_a_config_file_sets(tmp_path):
    from neurodyn.errors import InputError
    from neurodyn.training.parser_errors import qualified

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"data": {"init_args": {"n_neurons": 0}}}))
    out = qualified(InputError("bad", field="n_neurons"), _both_sections(), ["--config", str(cfg)])
    assert (out.field, out.path) == ("data.init_args.n_neurons", str(cfg))


@pytest.mark.parametrize(("config", "expected"), [
    ({"data": {"class_path": "LorenzDataModule", "init_args": {"batch_size": 0}}},
     "{cfg}: data.init_args.batch_size: must be >= 1, got 0"),
    ({"model": {"class_path": "HMMGLMModule", "init_args": {"config": {"n_states": 0}}},
      "data": {"class_path": "SwitchingGLMDataModule"}},
     "{cfg}: model.init_args.config.n_states: must be an integer >= 1, got 0"),
])
def test_a_value_a_class_refuses_in_short_form_names_the_config_file(tmp_path, capsys, config, expected):
    """Classes word some fields in short form (``data.batch_size``, ``model.config.n_states``): such an error
    named neither the config option as written nor the file that set it."""
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(yaml.safe_dump(config))
    assert main(["fit", "--config", str(cfg), "--trainer.default_root_dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["neurodyn fit: error: " + expected.format(cfg=cfg)], err


@pytest.mark.parametrize(("yaml_text", "argv", "expected"), [
    (None, ["--data.batch_size", "abc"], "data.init_args.batch_size: expected an integer, got 'abc'"),
    (None, ["--trainer.max_epochs", "abc"], "trainer.max_epochs: expected an integer, got 'abc'"),
    (None, ["--model.init_args.lr", "abc"], "model.init_args.lr: expected a number, got 'abc'"),
    (None, ["--model.config.eval_mode", "foo"],
     "model.init_args.config.eval_mode: expected one of ['mean', 'sample'], got 'foo'"),
    ("data:\n  init_args:\n    batch_size: abc\n", [],
     "{cfg}: data.init_args.batch_size: expected an integer, got 'abc'"),
    ("trainer:\n  max_epochs: abc\n", [], "{cfg}: trainer.max_epochs: expected an integer, got 'abc'"),
    ("model:\n  init_args:\n    config:\n      latent_dim: abc\n", [],
     "{cfg}: model.init_args.config.latent_dim: expected an integer, got 'abc'"),
    # the command line after the file set the value: the file is not blamed
    ("data:\n  init_args:\n    batch_size: 3\n", ["--data.batch_size", "abc"],
     "data.init_args.batch_size: expected an integer, got 'abc'"),
    # an option of the model's config given on the command line, not the file's model.init_args.lr
    (None, ["--model.config.lr", "3"], "model.config.lr: option 'lr' is not accepted by LangevinFlowConfig"),
    # the file's bad value is refused as the file is read, before the option after it replaces it: the option's
    # good value was named as the culprit, without the file
    ("model:\n  init_args:\n    config:\n      latent_dim: abc\n", ["--model.config.latent_dim", "5"],
     "{cfg}: model.init_args.config.latent_dim: expected an integer, got 'abc'"),
    ("model:\n  init_args:\n    lr: abc\n", ["--model.lr=0.1"],
     "{cfg}: model.init_args.lr: expected a number, got 'abc'"),
])
def test_a_value_of_the_wrong_type_is_one_plain_line(tmp_path, capsys, yaml_text, argv, expected):
    """``--data.batch_size abc`` was 'configs/...lorenz.yaml: data: Problem with given class_path
    '...LorenzDataModule':; Expected a <class 'int'>. Got value: abc (given: NestedArg(...))': the config file
    blamed for a command-line value, and jsonargparse's text instead of the option and what it takes."""
    _refused_after_shipped_config(tmp_path, capsys, "configs/langevinflow/lorenz.yaml", yaml_text, argv, expected)


def _refused_after_shipped_config(tmp_path, capsys, shipped, yaml_text, argv, expected) -> None:
    """``neurodyn fit --config shipped [--config <yaml_text as a file>] *argv`` prints one line, ``expected``
    (``{cfg}``: the file of ``yaml_text``), exit 2."""
    cfg = tmp_path / "user.yaml"
    args = ["--config", shipped]
    if yaml_text is not None:
        cfg.write_text(yaml_text)
        args += ["--config", str(cfg)]
    assert main(["fit", *args, *argv, "--trainer.default_root_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["neurodyn fit: error: " + expected.format(cfg=cfg)], err


def test_a_wrong_type_in_the_hmmglm_config_names_the_option():
    from neurodyn.training.parser_errors import parser_error

    text = ("Parser key \"model\":\n  Errors:\n    - Problem with given class_path 'x.HMMGLMModule':\n"
            "        Parser key \"config\":\n          Errors:\n            - Problem with given class_path "
            "'x.HMMGLMConfig':\n                Parser key \"n_states\":\n                  Expected a <class "
            "'int'>. Got value: 2.5\n            - Expected a <class 'NoneType'>\n  Given value: "
            "NestedArg(key='config.n_states', val='2.5')")
    err = parser_error(text, ["--model.config.n_states", "2.5"])
    assert str(err) == "model.init_args.config.n_states: expected an integer, got '2.5'"
    assert err.path is None


LORENZ = "configs/langevinflow/lorenz.yaml"
DIVIDES = "decoder width 2*latent+hidden = 161 is not divisible by n_heads=2"


@pytest.mark.parametrize(("argv", "expected"), [
    # the command line changed hidden_size: named, with the file's n_heads and latent_dim it conflicts with
    (["--config", LORENZ, "--model.init_args.config.hidden_size", "33"],
     f"model.init_args.config.hidden_size: {DIVIDES} (--model.init_args.config.hidden_size 33 on the command "
     f"line; n_heads 2, latent_dim 64 in {LORENZ})"),
    (["--config", LORENZ, "--model.config.n_channels", "3"],
     "model.init_args.config.n_channels: latent size 64 is not divisible by n_channels=3 "
     f"(--model.config.n_channels 3 on the command line; latent_dim 64 in {LORENZ})"),
    (["--config", LORENZ, "--model.init_args.config.hidden_size=33", "--model.config.n_heads", "2"],
     f"model.init_args.config.n_heads: {DIVIDES} (--model.config.n_heads 2, --model.init_args.config.hidden_size "
     f"33 on the command line; latent_dim 64 in {LORENZ})"),
    (["--model.init_args.config.hidden_size", "33"],  # against the class's defaults
     "model.init_args.config.hidden_size: latent size 33 (latent_dim unset: hidden_size) is not divisible by "
     "n_channels=4 (--model.init_args.config.hidden_size 33 on the command line; latent_dim null, n_channels 4 "
     "by default)"),
    # a later file changed it: that file and the option, the earlier file's values beside
    (["--config", LORENZ, "--config", "{over}"],
     f"{{over}}: model.init_args.config.hidden_size: {DIVIDES} (hidden_size 33 in {{over}}; n_heads 2, latent_dim "
     f"64 in {LORENZ})"),
    # one file set them all: the plain line, as before
    (["--config", "{alone}"], f"{{alone}}: model.init_args.config.n_heads: {DIVIDES}"),
])
def test_a_refused_combination_names_the_value_that_changed_and_where_each_came_from(tmp_path, capsys, argv,
                                                                                     expected):
    """`fit --config lorenz.yaml --model.init_args.config.hidden_size 33` was reported as 'lorenz.yaml:
    model.init_args.config.n_heads: decoder width ... not divisible by n_heads=2': the file's n_heads blamed
    for the command line's hidden_size. The option set last is named, and where each value came from."""
    files = {"over": tmp_path / "over.yaml", "alone": tmp_path / "alone.yaml"}
    files["over"].write_text(yaml.safe_dump({"model": {"init_args": {"config": {"hidden_size": 33}}}}))
    files["alone"].write_text(yaml.safe_dump({"model": {"init_args": {"config": {
        "hidden_size": 33, "latent_dim": 64, "n_heads": 2}}}}))
    argv = [a.format(**files) for a in argv]
    assert main(["fit", *argv, "--trainer.default_root_dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["neurodyn fit: error: " + expected.format(**files)], err
    assert not (tmp_path / "runs").exists()


HMMGLM = "configs/hmmglm/synthetic_hmmglm.yaml"
ONEHOT = "configs/hmmglm/synthetic_onehot.yaml"


@pytest.mark.parametrize("argv, expected", [
    # the command line's emission against the file's link (the file's link was blamed)
    (["--config", "{exp_link}", "--model.init_args.config.emission", "bernoulli"],
     "model.init_args.config.emission: Bernoulli emission needs the bounded 'sigmoid' link (rate <= 1), got 'exp' "
     "(--model.init_args.config.emission bernoulli on the command line; link exp in {exp_link})"),
    # the command line's basis against the file's variant and the default n_basis
    (["--config", ONEHOT, "--model.init_args.config.basis", "raised_cosine"],
     "model.init_args.config.basis: the one-hot prior needs a single history filter (basis='exponential') "
     f"(--model.init_args.config.basis raised_cosine on the command line; variant onehot in {ONEHOT}; n_basis 3 "
     "by default)"),
])
def test_a_refused_hmmglm_combination_names_the_value_that_changed(tmp_path, capsys, argv, expected):
    """The HMM-GLM's refused combinations (a Bernoulli emission needs the sigmoid link; the one-hot prior one
    history filter) passed no involves, and HMMGLMModule dropped it: 'h.yaml: model.init_args.config.link: ...'
    for the command line's emission. They name the value set last and where each came from, as LangevinFlow's."""
    exp_link = tmp_path / "h.yaml"
    exp_link.write_text(Path(HMMGLM).read_text().replace("link: sigmoid", "link: exp"))
    argv = [a.format(exp_link=exp_link) for a in argv]
    assert main(["fit", *argv, "--trainer.default_root_dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["neurodyn fit: error: " + expected.format(exp_link=exp_link)], err
    assert not (tmp_path / "runs").exists()


def _data_inputs(tmp_path: Path) -> dict:
    """Tiny inputs of the data refusals below: a switching-GLM file of 5 sequences x 4 bins (the paper's 5
    states and 20 neurons of synthetic_hmmglm.yaml), a config that takes the file's sizes, one of a short
    simulation with one training sequence, an LFADS file of 2 training trials (Lorenz, 1 condition x 3 trials)
    and a config reading it."""
    from neurodyn.data.lfads import write_lfads_h5
    from neurodyn.data.synthetic.lorenz import simulate_lorenz
    from neurodyn.data.synthetic.switching_glm import simulate_switching_glm, write_switching_glm_h5

    files = {name: tmp_path / name for name in ("sg.h5", "sizes_of_file.yaml", "short.yaml", "lz.h5", "lfads.yaml")}
    files = {name.split(".")[0]: path for name, path in files.items()}
    write_switching_glm_h5(files["sg"], simulate_switching_glm(n_sequences=5, n_bins=4, seed=0))
    files["sizes_of_file"].write_text(yaml.safe_dump({"data": {"init_args": {
        key: None for key in ("n_states", "n_neurons", "n_sequences", "n_bins", "seed")}}}))
    files["short"].write_text(yaml.safe_dump({"data": {"init_args": {"n_sequences": 4, "n_bins": 40, "n_train": 1}}}))
    write_lfads_h5(files["lz"], simulate_lorenz(n_conditions=1, trials_per_condition=3, seed=0))
    files["lfads"].write_text(yaml.safe_dump({"data": {"class_path": "LFADSDataModule",
                                                       "init_args": {"path": str(files["lz"])}}}))
    return files


def _refused_fit(tmp_path, capsys, argv: list[str], files: dict) -> list[str]:
    """The error lines of ``neurodyn fit`` with ``argv`` (``{name}`` of ``files`` filled in), which must exit 2
    and leave no run folder."""
    argv = [a.format(**files) for a in argv]
    assert main(["fit", *argv, "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path / "runs")]) == 2
    assert not (tmp_path / "runs").exists()
    return capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("argv, expected", [
    # the command line's file against the config's n_lags (was '{sg}: spikes: sequences of 4 bins ...': not
    # where n_lags came from; then 'data.init_args.path: ...' without the file first, which the plain line of one
    # place, below, and a prepared NLB file's refusal (test_hmmglm_nlb) name)
    (["--config", HMMGLM, "--config", "{sizes_of_file}", "--data.path", "{sg}", "--data.n_train", "3"],
     "{sg}: data.init_args.path: sequences of 4 bins (spikes, train split) are not longer than the history window "
     "model.init_args.config.n_lags (5 bins) (--data.path {sg} on the command line; model.init_args.config.n_lags 5 "
     f"in {HMMGLM})"),
    # the command line's n_lags against a file's n_bins (was 'data.init_args.n_bins: ...': the file's n_bins
    # blamed for the command line's n_lags)
    (["--config", HMMGLM, "--config", "{short}", "--model.config.n_lags", "40"],
     "model.init_args.config.n_lags: sequences of 40 bins are not longer than the history window "
     "model.init_args.config.n_lags (40 bins) (--model.config.n_lags 40 on the command line; data.init_args.n_bins "
     "40 in {short})"),
    # one place set both: the plain line, naming the data file and the option that chose it (was '{sg}: spikes:
    # ...'; the dataset is in the message)
    (["--data", "SwitchingGLMDataModule", "--model", "HMMGLMModule", "--data.path", "{sg}", "--data.n_train", "3"],
     "{sg}: data.init_args.path: sequences of 4 bins (spikes, train split) are not longer than the history window "
     "model.init_args.config.n_lags (5 bins)"),
])
def test_the_data_against_the_history_window_names_the_value_that_changed(tmp_path, capsys, argv, expected):
    """HMMGLMModule refuses sequences no longer than its history window, the data's bins against the model's
    n_lags -- two sections -- and passed no involves (parser_errors knew the fields of one object only): the
    value another place set was blamed, and where each came from was not said. The option set last is named,
    the other by its full option, with where each came from (the data file by the option that chose it)."""
    files = _data_inputs(tmp_path)
    assert _refused_fit(tmp_path, capsys, argv, files) == ["neurodyn fit: error: " + expected.format(**files)]


@pytest.mark.parametrize("argv, expected", [
    # the command line's select_fraction against a later file's n_train (was 'data.init_args.select_fraction:
    # leaves no training trials (1 in all)': not where the one trial came from)
    (["--config", HMMGLM, "--config", "{short}", "--data.select_fraction", "0.2"],
     "data.init_args.select_fraction: select_fraction=0.2 selects 1 of the 1 training trial (the first n_train "
     "sequences), leaving none to train on (--data.select_fraction 0.2 on the command line; n_train 1 in {short})"),
    # ... against the training trials of a file a config names (was '... (2 in all)')
    (["--config", "{lfads}", "--data.select_fraction", "0.9"],
     "data.init_args.select_fraction: select_fraction=0.9 selects 2 of the 2 training trials in the file, leaving "
     "none to train on (--data.select_fraction 0.9 on the command line; path {lz} in {lfads})"),
    # the command line's file against the config's n_train (was '{sg}: data.init_args.n_train: ...': the
    # config's n_train blamed, under the file as if the file had set it)
    (["--config", HMMGLM, "--config", "{sizes_of_file}", "--data.path", "{sg}"],
     "{sg}: data.init_args.path: n_train=30 must be between 1 and 4 (the file has 5 sequences) (--data.path {sg} "
     f"on the command line; n_train 30 in {HMMGLM})"),
    # the command line's n_sequences against the config's n_train (was '{HMMGLM}: data.init_args.n_train: ...')
    (["--config", HMMGLM, "--data.n_sequences", "4"],
     "data.init_args.n_sequences: n_train=30 must be between 1 and 3 (the simulation has 4 sequences) "
     f"(--data.n_sequences 4 on the command line; n_train 30 in {HMMGLM})"),
    # the command line's file against the config's sizes (was '{sg}: data.init_args.n_sequences,
    # data.init_args.n_bins: ...': the config's sizes under the file)
    (["--config", HMMGLM, "--data.path", "{sg}"],
     "{sg}: data.init_args.path: the file holds n_sequences 5, n_bins 4, the run asks for 50, 2000; give null for "
     "data.init_args.n_sequences, data.init_args.n_bins (or leave them out) to take the file's (--data.path "
     f"{{sg}} on the command line; n_sequences 50, n_bins 2000 in {HMMGLM})"),
    # one place set them all: the plain line, naming the data file (the control)
    (["--data", "SwitchingGLMDataModule", "--model", "HMMGLMModule", "--data.path", "{sg}", "--data.n_bins", "5"],
     "{sg}: data.init_args.n_bins: the file holds n_bins 4, the run asks for 5; give null for data.init_args.n_bins "
     "(or leave it out) to take the file's"),
])
def test_a_refused_data_combination_names_the_value_that_changed(tmp_path, capsys, argv, expected):
    """The DataModules' refused combinations -- a select split of the training trials there are, n_train of the
    sequences there are, a file's sizes against the config's -- passed no involves: the value the file or
    another option set was blamed, and where the others came from was not said. They name the value set last
    and where each came from, as the model's refused combinations do."""
    files = _data_inputs(tmp_path)
    assert _refused_fit(tmp_path, capsys, argv, files) == ["neurodyn fit: error: " + expected.format(**files)]


@pytest.mark.parametrize("argv, expected", [
    (["--config", LORENZ, "--config", "{one}", "--data.trials_per_condition", "2"],
     "data.init_args.trials_per_condition: n_conditions x trials_per_condition = 1 x 2 = 2 trials leave no validation "
     "trial (the simulator trains on round(0.8 x 2) = 2 of them) (--data.trials_per_condition 2 on the command line; "
     "n_conditions 1 in {one})"),
    (["--data.n_conditions", "1", "--data.trials_per_condition", "1"],  # one place: the plain line
     "data.init_args.trials_per_condition: n_conditions x trials_per_condition = 1 x 1 = 1 trials leave no validation "
     "trial (the simulator trains on round(0.8 x 1) = 1 of them)"),
])
def test_too_few_lorenz_trials_name_the_options_that_count_them(tmp_path, capsys, argv, expected):
    """A Lorenz simulation of 2 trials or fewer was refused as 'train_fraction: 1 trials cannot be split 1/0':
    the simulator's field, no option of LorenzDataModule. The trial count's options are named, the one set
    last first, and where each came from."""
    files = {"one": tmp_path / "one.yaml"}
    files["one"].write_text(yaml.safe_dump({"data": {"init_args": {"n_conditions": 1}}}))
    assert _refused_fit(tmp_path, capsys, argv, files) == ["neurodyn fit: error: " + expected.format(**files)]


@pytest.mark.parametrize("yaml_text, argv, expected", [
    ("data:\n  init_args:\n    path: null\n", [], "{cfg}: data.init_args.path: required, got null"),
    (None, ["--data.path", "null"], "data.path: required, got null"),
    (None, ["--data.path=null"], "data.path: required, got null"),
])
def test_a_required_data_path_set_to_null_is_one_plain_line(tmp_path, capsys, yaml_text, argv, expected):
    """``path: null`` in a config file (or ``--data.path null``) was "data: Problem with given class_path
    '...NLBDataModule':; the following arguments are required: path (given: Namespace(class_path=..., init_args=
    Namespace(path=None, batch_size=16, ...)))", and the command-line value was blamed on the shipped config. Now
    the option, who set it, and that it is required."""
    _refused_after_shipped_config(tmp_path, capsys, "configs/langevinflow/mc_maze_small_cpu.yaml", yaml_text, argv,
                                  expected)


def test_a_data_class_without_its_required_path_says_how_to_give_it(tmp_path, capsys):
    assert main(["fit", "--model", "LangevinFlowModule", "--data", "NLBDataModule",
                 "--trainer.default_root_dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["neurodyn fit: error: data.init_args.path: required, not given: set --data.path or "
                   "data.init_args.path in a config file"], err
