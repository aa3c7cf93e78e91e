"""`neurodyn tune`: bad fit configs, search files and resources are refused up front, in one line that names
the file and the field (exit code 2), before Ray starts and without leaving a run folder."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

from neurodyn.cli import main
from neurodyn.errors import InputError
from neurodyn.training.tune.space import check_values, load_search

#: test_tune.py's tiny Lorenz fit config, two epochs
TINY = yaml.safe_load((Path(__file__).with_name("tiny_lorenz_tune.yaml")).read_text())
TINY["trainer"]["max_epochs"] = 2

SEARCH = "space:\n  lr: {loguniform: [1e-3, 2e-2]}\n  gamma: {uniform: [0.05, 0.5]}\n"


def _tune(tmp_path, capsys, config: dict, search: str = SEARCH, extra=()):
    cfg_file, search_file = tmp_path / "fit.yaml", tmp_path / "search.yaml"
    cfg_file.write_text(yaml.safe_dump(config))
    search_file.write_text(search)
    before = {p: p.read_bytes() for p in (cfg_file, search_file)}
    code = main(["tune", "--config", str(cfg_file), "--search", str(search_file), "--out", str(tmp_path / "run"),
                 "--verbose", "0", *extra])
    err = capsys.readouterr().err.strip()
    assert {p: p.read_bytes() for p in before} == before  # inputs left alone
    assert not (tmp_path / "run").exists() and not list(tmp_path.glob(".run.*"))
    return code, err, cfg_file, search_file


def _with(path: tuple, value, base=TINY) -> dict:
    cfg = copy.deepcopy(base)
    node = cfg
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return cfg


def _without(path: tuple, name: str, value) -> dict:
    """TINY with the key ``name`` under ``path`` renamed to ``value`` (a misspelt key)."""
    cfg = copy.deepcopy(TINY)
    node = cfg
    for key in path:
        node = node[key]
    node[value] = node.pop(name)
    return cfg


@pytest.mark.parametrize(
    "config, field, words",
    [
        # the module's or DataModule's own checks (raised while jsonargparse instantiates the classes)
        (_with(("model", "init_args", "lr_schedule"), "bogus"), "model.init_args.lr_schedule", "must be"),
        (_with(("data", "init_args", "n_conditions"), -4), "data.init_args.n_conditions", "positive"),
        # a DataModule refusal named as the config spells it (data.init_args.batch_size) named no file
        (_with(("data", "init_args", "batch_size"), 0), "data.init_args.batch_size", "must be >= 1"),
        # misspelt keys (jsonargparse parse errors; the config of the model)
        (_without(("model", "init_args"), "weight_decay", "weight_decai"), "model.init_args.weight_decai",
         "not accepted"),
        (_without(("model", "init_args", "config"), "ff_dim", "ff_dimm"), "model.init_args.config.ff_dimm",
         "ff_dimm"),
        # keys tune would otherwise ignore: the trainer's, and the sections of the fit config
        (_without(("trainer",), "max_epochs", "max_epocs"), "trainer.max_epocs", "unknown"),
        (_without((), "model", "modle"), "modle", "unknown"),
        # no validation: every trial failed inside Ray, and the error line was Ray's coloured traceback
        (_with(("trainer", "limit_val_batches"), 0), "trainer.limit_val_batches", "after every epoch"),
        # badin: trainer settings each trial's Trainer takes: every trial failed inside Ray (ZeroDivisionError) ...
        (_with(("trainer", "accumulate_grad_batches"), 0), "trainer.accumulate_grad_batches",
         "must be a whole number >= 1"),
        # ... or the search ran on, exit 0: gradients turned around, no training batch
        (_with(("trainer", "gradient_clip_val"), -1), "trainer.gradient_clip_val", "must be a finite number >= 0"),
        (_with(("trainer", "limit_train_batches"), 0), "trainer.limit_train_batches", "0 trains nothing"),
        # the epochs of every trial (SEARCH sets none): refused as a missing --epochs, or (true) one epoch
        (_with(("trainer", "max_epochs"), 0), "trainer.max_epochs", "must be a whole number >= 1, got 0"),
        (_with(("trainer", "max_epochs"), -1), "trainer.max_epochs", "must be a whole number >= 1, got -1"),
        (_with(("trainer", "max_epochs"), True), "trainer.max_epochs", "must be a whole number >= 1, got True"),
        # seeds neurodyn fit refuses: Lightning's ValueError traceback (-1, 2**32), or every trial seeded 0 and a
        # best.yaml that neurodyn fit refuses ('abc', 1.5)
        (_with(("seed_everything",), -1), "seed_everything", "must be in 0 .. 4294967295, got -1"),
        (_with(("seed_everything",), 2**32), "seed_everything", "must be in 0 .. 4294967295"),
        (_with(("seed_everything",), "abc"), "seed_everything", "expected true or false or an integer"),
        (_with(("seed_everything",), 1.5), "seed_everything", "expected true or false or an integer, got '1.5'"),
    ],
)
def test_bad_fit_config_is_one_line_naming_file_and_field(tmp_path, capsys, config, field, words):
    code, err, cfg_file, _ = _tune(tmp_path, capsys, config)
    assert code == 2, err
    assert err.count("\n") == 0 and "Traceback" not in err
    assert f"{cfg_file}: {field}:" in err and words in err


def test_stacked_configs_name_the_file_that_holds_the_bad_value(tmp_path, capsys):
    over = tmp_path / "over.yaml"
    over.write_text(yaml.safe_dump({"model": {"init_args": {"lr_schedule": "bogus"}}}))
    cfg_file, search_file = tmp_path / "fit.yaml", tmp_path / "search.yaml"
    cfg_file.write_text(yaml.safe_dump(TINY))
    search_file.write_text(SEARCH)
    code = main(["tune", "--config", str(cfg_file), "--config", str(over), "--search", str(search_file),
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count("\n") == 0
    assert f"{over}: model.init_args.lr_schedule:" in err


@pytest.mark.parametrize(
    "text, field",
    [
        ("space: {hidden_size: {choice: [8, .inf]}}", "space.hidden_size"),  # was an OverflowError traceback
        ("space: {lr: .inf}", "space.lr"),
        ("space: {lr: {loguniform: [1e-3, .inf]}}", "space.lr"),
        ("space: {lr: {choice: [1e-3, .inf]}}", "space.lr"),
        ("space: {weight_decay: .nan}", "space.weight_decay"),
        ("space: {weight_decay: {uniform: [0, .inf]}}", "space.weight_decay"),
        ("space: {gamma: {uniform: [0.1, .nan]}}", "space.gamma"),
        ("space: {lr: 1e-3}\npbt: {perturbation_factors: [-1.2, 0.8]}", "pbt.perturbation_factors"),
        ("space: {lr: 1e-3}\npbt: {perturbation_factors: [.inf, 0.8]}", "pbt.perturbation_factors"),
    ],
)
def test_non_finite_search_values_name_the_field(tmp_path, text, field):
    search = tmp_path / "search.yaml"
    search.write_text(text)
    with pytest.raises(InputError) as info:
        check_values(TINY, load_search(search)["space"], search)
    assert str(info.value).startswith(f"{search}: {field}:") and "\n" not in str(info.value)


@pytest.fixture()
def no_ray(monkeypatch):
    """Ray must not start for input that can be refused up front (a hang or a wasted start otherwise)."""
    ray = pytest.importorskip("ray")

    def refuse(*args, **kwargs):
        raise AssertionError("ray.init was called")

    monkeypatch.setattr(ray, "init", refuse)


@pytest.mark.parametrize("extra", [["--cpus-per-trial", "4", "--num-cpus", "2"],
                                   ["--cpus-per-trial", "1000"]])  # the default --num-cpus: at most the cores
def test_more_cpus_per_trial_than_the_local_ray_has_is_refused(tmp_path, capsys, no_ray, extra):
    """A trial that needs more CPUs than the local Ray instance has is never scheduled: Tune waited forever."""
    code, err, _, _ = _tune(tmp_path, capsys, TINY, extra=["--scheduler", "asha", *extra])
    assert code == 2 and err.count("\n") == 0
    assert "--cpus-per-trial" in err and "--num-cpus" in err


@pytest.mark.parametrize("extra, words", [
    (["--seed", "-1"], "--seed: must be a whole number from 0 to 9223372036854775807, got -1"),  # numpy's traceback
    (["--seed", str(2**63)], f"--seed: must be a whole number from 0 to 9223372036854775807, got {2**63}"),
    (["--cpus-per-trial", "inf"], "--cpus-per-trial: must be a finite number > 0, got inf"),  # OverflowError
    (["--cpus-per-trial", "nan"], "--cpus-per-trial: must be a finite number > 0, got nan"),
    (["--gpus-per-trial", "nan"], "--gpus-per-trial: must be a finite number >= 0, got nan"),  # ValueError
    (["--gpus-per-trial", "inf"], "--gpus-per-trial: must be a finite number >= 0, got inf"),
])
def test_a_bad_seed_or_resource_option_is_one_line(tmp_path, capsys, no_ray, extra, words):
    code, err, _, _ = _tune(tmp_path, capsys, TINY, extra=extra)
    assert code == 2 and err.count("\n") == 0 and "Traceback" not in err
    assert err.endswith(words), err


def test_an_out_inside_a_file_is_called_so(tmp_path, capsys, no_ray):
    """--out under a file was refused as 'folder <file> is not writable'."""
    (tmp_path / "notes.txt").write_text("mine\n")
    config, search = tmp_path / "fit.yaml", tmp_path / "search.yaml"
    config.write_text(yaml.safe_dump(TINY))
    search.write_text(SEARCH)
    out = tmp_path / "notes.txt" / "run"
    code = main(["tune", "--config", str(config), "--search", str(search), "--out", str(out), "--verbose", "0"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == f"neurodyn tune: error: {out}: --out: {tmp_path / 'notes.txt'} is not a folder"
    assert (tmp_path / "notes.txt").read_text() == "mine\n"


def test_build_model_and_data_names_the_file_that_changed_a_data_file_refusal(tmp_path):
    """A refused combination that names a data file (the file's sizes against a later config's) was re-raised as
    the DataModule gave it, not as neurodyn fit names it: '{sg}: data.init_args.n_bins: the file holds ...' for
    over.yaml's n_bins, not saying where either came from."""
    from neurodyn.data.synthetic.switching_glm import simulate_switching_glm, write_switching_glm_h5
    from neurodyn.training.tune.trial import build_model_and_data, stack_configs

    sg = tmp_path / "sg.h5"
    write_switching_glm_h5(sg, simulate_switching_glm(n_states=2, n_neurons=4, n_sequences=4, n_bins=20, seed=0))
    fit = {"data": {"class_path": "SwitchingGLMDataModule", "init_args": {"path": str(sg), "n_train": 2}}}
    over = {"data": {"init_args": {"n_bins": 30}}}
    err, files = _refused_build(tmp_path, fit, over)
    assert str(err.value) == (f"{files[1]}: data.init_args.n_bins: the file holds n_bins 20, the run asks for 30; give "
                              "null for data.init_args.n_bins (or leave it out) to take the file's (n_bins "
                              f"30 in {files[1]}; path {sg} in {files[0]})")
    # one file: the plain line, naming the data file
    both = stack_configs([fit, over])
    files[0].write_text(yaml.safe_dump(both))
    with pytest.raises(InputError) as err:
        build_model_and_data(both, files[:1])
    assert str(err.value).startswith(f"{sg}: data.init_args.n_bins: the file holds n_bins 20, the run asks for 30;")


def test_a_select_fraction_that_leaves_no_training_trial_names_the_tune_option(tmp_path, capsys, no_ray):
    """tune carves its select split with --select-fraction (the config's data.select_fraction unset): one that
    selects every training trial was refused as 'data.select_fraction: ...', an option the config did not set."""
    config = _with(("data", "init_args"), {**TINY["data"]["init_args"], "n_conditions": 1, "trials_per_condition": 3})
    code, err, _, _ = _tune(tmp_path, capsys, config, extra=["--select-fraction", "0.9"])
    assert code == 2 and err == ("neurodyn tune: error: --select-fraction: --select-fraction=0.9 selects 2 of the 2 "
                                 "training trials of the simulation (1 x 3 trials), leaving none to train on")


def test_pbt_without_a_perturbable_hyperparameter_is_refused_before_ray(tmp_path, capsys, no_ray):
    code, err, _, search = _tune(tmp_path, capsys, TINY, search="space:\n  hidden_size: {choice: [8, 16]}\n",
                                 extra=["--scheduler", "pbt"])
    assert code == 2 and err.count("\n") == 0
    assert err.startswith(f"neurodyn tune: error: {search}: space:") and "PBT" in err


class _RayStarted(Exception):
    pass


def test_a_later_config_that_changes_the_data_class_replaces_its_options(tmp_path, capsys, monkeypatch):
    """Stacked configs merge as fit merges them (jsonargparse): a later data section naming another class keeps
    only the earlier init_args that class accepts (the Lorenz config's n_conditions was refused by the
    LFADSDataModule that a later file switched to, though `neurodyn fit` runs the same stack)."""
    ray = pytest.importorskip("ray")
    from neurodyn.training.tune.search import _parser, run_search

    h5 = tmp_path / "l.h5"
    assert main(["simulate", "lorenz", "--out", str(h5), "--n-conditions", "2", "--trials-per-condition", "8",
                 "--n-neurons", "8", "--no-progress"]) == 0
    over = {"data": {"class_path": "LFADSDataModule", "init_args": {"path": str(h5), "select_fraction": 0.25}},
            "trainer": {"max_epochs": 1}}

    cfg_file, over_file, search_file = tmp_path / "fit.yaml", tmp_path / "over.yaml", tmp_path / "search.yaml"
    cfg_file.write_text(yaml.safe_dump(TINY))
    over_file.write_text(yaml.safe_dump(over))
    search_file.write_text(SEARCH)

    def started(*args, **kwargs):
        raise _RayStarted

    monkeypatch.setattr(ray, "init", started)
    args = _parser().parse_args(["--config", str(cfg_file), "--config", str(over_file), "--search", str(search_file),
                                 "--samples", "1", "--out", str(tmp_path / "run"), "--verbose", "0"])
    with pytest.raises(_RayStarted):  # every check before Ray passed
        run_search(args)
    assert main(["fit", "--config", str(cfg_file), "--config", str(over_file), "--trainer.fast_dev_run", "true",
                 "--trainer.default_root_dir", str(tmp_path / "fit"), "--trainer.enable_progress_bar", "false"]) == 0

    from neurodyn.training.tune.trial import stack_configs

    stacked = stack_configs([TINY, over])
    assert stacked["data"] == {"class_path": "LFADSDataModule",  # batch_size: accepted by both, kept
                               "init_args": {"batch_size": 8, "path": str(h5), "select_fraction": 0.25}}
    assert stack_configs([TINY, {"data": {"init_args": {"seed": 3}}}])["data"]["init_args"] == \
        {**TINY["data"]["init_args"], "seed": 3}  # no class_path: a plain merge


def test_a_searched_value_the_model_refuses_names_the_search_file(tmp_path, capsys):
    """A choice the model refuses through a key the search does not set (the decoder width 2*latent+hidden must
    divide by n_heads) names the search file and the searched key, not the fit config's n_heads."""
    code, err, cfg_file, search = _tune(tmp_path, capsys, TINY, "space:\n  hidden_size: {choice: [9]}\n"
                                        "  lr: {loguniform: [1e-3, 1e-2]}\n", extra=["--scheduler", "asha"])
    assert code == 2 and err.count("\n") == 0
    assert err.startswith(f"neurodyn tune: error: {search}: space.hidden_size: value 9: "), err
    assert "not divisible by n_heads=2" in err and str(cfg_file) not in err
    # the config's own values at fault: the config is named (8 + 2 * 8 = 24 does not divide by 5)
    bad = _with(("model", "init_args", "config", "n_heads"), 5)
    code, err, cfg_file, _ = _tune(tmp_path, capsys, bad, "space:\n  hidden_size: {choice: [8]}\n")
    assert code == 2 and err.startswith(f"neurodyn tune: error: {cfg_file}: model.init_args.config.n_heads: "), err


@pytest.mark.parametrize("pbt, noted", [("{perturbation_interval: 2}", True), ("{perturbation_interval: 1}", False),
                                        ("{perturbation_interval: 1, burn_in_period: 5}", True)])
def test_pbt_that_cannot_perturb_before_the_last_epoch_is_noted(tmp_path, capsys, monkeypatch, pbt, noted):
    """PBT perturbs first at max(perturbation_interval, burn_in_period) and never at the last epoch (TINY: 2)."""
    ray = pytest.importorskip("ray")

    def started(*args, **kwargs):
        raise _RayStarted

    monkeypatch.setattr(ray, "init", started)
    with pytest.raises(_RayStarted):
        _tune(tmp_path, capsys, TINY, SEARCH + f"pbt: {pbt}\n", extra=["--scheduler", "pbt"])
    out = capsys.readouterr().out
    assert ("no trial will be perturbed" in out) == noted, out


def test_bad_input_after_a_note_is_the_one_line_alone(tmp_path, capsys, no_ray):
    """``tune --out EXISTING`` with a PBT that cannot perturb printed the 'no trial will be perturbed' note, then
    the one-line '--out: exists' error: notes come once the input is accepted, so bad input is one line."""
    cfg_file, search_file, out = tmp_path / "fit.yaml", tmp_path / "search.yaml", tmp_path / "run"
    cfg_file.write_text(yaml.safe_dump(TINY))
    search_file.write_text(SEARCH + "pbt: {perturbation_interval: 2}\n")  # TINY trains 2 epochs: never perturbed
    out.mkdir()
    capsys.readouterr()
    code = main(["tune", "--config", str(cfg_file), "--search", str(search_file), "--out", str(out), "--verbose",
                 "0", "--scheduler", "pbt"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "", captured.out
    assert captured.err.strip().splitlines() == [
        f"neurodyn tune: error: {out}: --out: exists; choose a new run folder"], captured.err


def test_a_refused_combination_names_the_config_file_that_changed_it(tmp_path, capsys):
    """A decoder width that n_heads does not divide, with hidden_size from a later --config than n_heads, named
    the earlier file's n_heads ('fit.yaml: model.init_args.config.n_heads: ...'): tune dropped the refusal's
    involves. It names the value set last and where each came from, as fit does; one file: the line as before."""
    over = tmp_path / "over.yaml"
    over.write_text(yaml.safe_dump({"model": {"init_args": {"config": {"hidden_size": 9}}}}))
    cfg_file, search_file = tmp_path / "fit.yaml", tmp_path / "search.yaml"
    cfg_file.write_text(yaml.safe_dump(TINY))
    search_file.write_text(SEARCH)

    def tune(*configs) -> str:
        argv = [arg for c in configs for arg in ("--config", str(c))]
        assert main(["tune", *argv, "--search", str(search_file), "--out", str(tmp_path / "run")]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and not (tmp_path / "run").exists(), err
        return err

    width = "decoder width 2*latent+hidden = 25 is not divisible by n_heads=2"
    assert tune(cfg_file, over) == (f"neurodyn tune: error: {over}: model.init_args.config.hidden_size: {width} "
                                    f"(hidden_size 9 in {over}; n_heads 2, latent_dim 8 in {cfg_file})")
    # n_heads not written: the default, named as such
    no_heads = copy.deepcopy(TINY)
    del no_heads["model"]["init_args"]["config"]["n_heads"]
    no_heads["model"]["init_args"]["config"]["hidden_size"] = 9
    cfg_file.write_text(yaml.safe_dump(no_heads))
    assert tune(cfg_file) == (f"neurodyn tune: error: {cfg_file}: model.init_args.config.hidden_size: {width} "
                              f"(hidden_size 9, latent_dim 8 in {cfg_file}; n_heads 2 by default)")
    # all in one file: the plain line
    cfg_file.write_text(yaml.safe_dump(_with(("model", "init_args", "config", "hidden_size"), 9)))
    assert tune(cfg_file) == f"neurodyn tune: error: {cfg_file}: model.init_args.config.n_heads: {width}"
    # the config's own values at fault while hidden_size is searched: the config's width (24), not the first
    # searched value's (2*8+10 = 26, as the line said before)
    cfg_file.write_text(yaml.safe_dump(_with(("model", "init_args", "config", "n_heads"), 5)))
    search_file.write_text("space:\n  hidden_size: {choice: [10]}\n  lr: {loguniform: [1e-3, 1e-2]}\n")
    assert tune(cfg_file) == (f"neurodyn tune: error: {cfg_file}: model.init_args.config.n_heads: decoder width "
                              "2*latent+hidden = 24 is not divisible by n_heads=5")


def test_build_model_and_data_names_the_file_that_changed_a_refused_combination(tmp_path):
    """build_model_and_data (tune's trials and its up-front build) dropped a refusal's involves as check_values
    did: the earlier file's n_heads was named for the later file's hidden_size."""
    from neurodyn.training.tune.trial import build_model_and_data


    over = {"model": {"init_args": {"config": {"hidden_size": 9}}}}
    err, files = _refused_build(tmp_path, TINY, over)
    assert str(err.value) == (f"{files[1]}: model.init_args.config.hidden_size: decoder width 2*latent+hidden = 25 "
                              f"is not divisible by n_heads=2 (hidden_size 9 in {files[1]}; n_heads 2, latent_dim 8 "
                              f"in {files[0]})")
    # one file: the plain line, as before
    single = _with(("model", "init_args", "config", "hidden_size"), 9)
    files[0].write_text(yaml.safe_dump(single))
    with pytest.raises(InputError) as err:
        build_model_and_data(single, files[:1])
    assert str(err.value) == (f"{files[0]}: model.init_args.config.n_heads: decoder width 2*latent+hidden = 25 "
                              "is not divisible by n_heads=2")


def _refused_build(tmp_path, first: dict, second: dict):
    """``build_model_and_data`` of two stacked config files (fit.yaml, then over.yaml) that must refuse them: the
    InputError's ExceptionInfo and the two files."""
    from neurodyn.training.tune.trial import build_model_and_data, stack_configs


    files = [tmp_path / "fit.yaml", tmp_path / "over.yaml"]
    for file, cfg in zip(files, (first, second)):
        file.write_text(yaml.safe_dump(cfg))
    with pytest.raises(InputError) as err:
        build_model_and_data(stack_configs([first, second]), files)
    return err, files


def test_seed_everything_true_draws_one_seed_for_the_whole_search(tmp_path, capsys, monkeypatch, no_ray):
    """``seed_everything: true`` ("a random seed", as fit's --help says) became seed 0 for every trial, so two
    searches were the same search; it is drawn once per search, said in a note, and is the config every trial
    (and best.yaml) is made from."""
    import neurodyn.training.tune.search as search_module

    seen = []
    apply = search_module.apply_hyperparameters

    def recording(base, values):
        seen.append(base.get("seed_everything"))
        return apply(base, values)

    monkeypatch.setattr(search_module, "apply_hyperparameters", recording)
    drawn = []
    config, search = tmp_path / "fit.yaml", tmp_path / "search.yaml"
    config.write_text(yaml.safe_dump({**TINY, "seed_everything": True}))
    search.write_text(SEARCH)
    for run in ("a", "b"):
        with pytest.raises(AssertionError, match="ray.init was called"):
            main(["tune", "--config", str(config), "--search", str(search), "--out", str(tmp_path / run),
                  "--verbose", "0"])
        out = capsys.readouterr().out
        notes = [line for line in out.splitlines() if line.startswith("note: seed_everything: true drew the seed ")]
        assert len(notes) == 1, out
        drawn.append(int(notes[0].split("drew the seed ")[1].split()[0]))
        assert 0 <= drawn[-1] < 2**32 and seen and set(seen) == {drawn[-1]}, (seen, drawn)
        seen.clear()
    assert drawn[0] != drawn[1]  # two draws of 2**32 values (equal with probability 2**-32)
    # the note comes once every input is accepted: bad input is its one line alone
    assert main(["tune", "--config", str(config), "--search", str(search), "--out", str(config),
                 "--verbose", "0"]) == 2
    printed = capsys.readouterr()
    assert "note:" not in printed.out and len(printed.err.strip().splitlines()) == 1, printed


def test_seed_everything_false_is_refused_before_ray(tmp_path, capsys, no_ray):
    """``seed_everything: false`` is "no seed" to neurodyn fit, but every trial of the search was seeded 0 and no
    line said so: a search's trials start from one seed (they differ by their hyperparameters alone), so false is
    refused in one line naming the file and the key, before Ray starts."""
    code, err, cfg_file, _ = _tune(tmp_path, capsys, _with(("seed_everything",), False))
    assert code == 2 and err.count("\n") == 0 and "Traceback" not in err, err
    assert err.startswith(f"neurodyn tune: error: {cfg_file}: seed_everything: false (no seed) does not suit a "
                          "search"), err
    assert "give a seed, or true" in err


def _notes_before_ray(tmp_path, capsys, monkeypatch, config: dict, extra=()) -> list[str]:
    """The note lines tune prints before it starts Ray (ray.init stops the command there)."""
    ray = pytest.importorskip("ray")

    def started(*args, **kwargs):
        raise _RayStarted

    monkeypatch.setattr(ray, "init", started)
    with pytest.raises(_RayStarted):
        _tune(tmp_path, capsys, config, extra=["--scheduler", "asha", *extra])
    return [line for line in capsys.readouterr().out.splitlines() if line.startswith("note:")]


def test_a_select_fraction_the_config_overrides_is_noted(tmp_path, capsys, monkeypatch):
    """An explicit --select-fraction was ignored without a word when the config's data.init_args.select_fraction
    carved the select split: one note says which value is used and why; without the option, or without a select
    split in the config, there is no note."""
    carved = _with(("data", "init_args"), {**TINY["data"]["init_args"], "select_fraction": 0.25, "select_seed": 7})
    notes = _notes_before_ray(tmp_path, capsys, monkeypatch, carved, ["--select-fraction", "0.3"])
    assert notes == [f"note: --select-fraction 0.3 is not used: the config's data.init_args.select_fraction 0.25 "
                     f"({tmp_path / 'fit.yaml'}; select_seed 7) carves the select split and takes precedence "
                     "(best.yaml keeps it); change it there to select on another share"], notes
    assert _notes_before_ray(tmp_path, capsys, monkeypatch, carved) == []  # the default: nothing was asked
    assert _notes_before_ray(tmp_path, capsys, monkeypatch, TINY, ["--select-fraction", "0.3"]) == []  # it is used


def _tune_folder(folder: Path) -> dict:
    """A run folder as neurodyn tune writes it (summary.json with its keys, best.yaml, best.ckpt, trials.csv), without
    running a search: info reads the files, not the checkpoint's weights."""
    folder.mkdir()
    summary = {"command": "neurodyn tune --config fit.yaml --search search.yaml", "configs": ["fit.yaml"],
               "search": "search.yaml", "scheduler": "pbt", "samples": 2, "epochs": 2, "seed": 3,
               "metric": "valid/loss", "mode": "min",
               "select_split": "32 of the 160 training trials (select_fraction 0.2, seed 3); the validation trials "
                               "are not used",
               "best_trial": "trial_0001", "best_value": 0.1234567, "best_epoch": 2,
               "best_hyperparameters": {"lr": 0.004, "gamma": 0.2}, "perturbations": 1, "trials_failed": 1,
               "seconds": 12.5}
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "best.yaml").write_text(yaml.safe_dump(TINY))
    (folder / "best.ckpt").write_bytes(b"0" * 10)
    (folder / "trials.csv").write_text("trial,status,epochs\r\ntrial_0000,ERROR,1\r\ntrial_0001,OK,2\r\n")
    (folder / "ray").mkdir()
    return summary


def test_info_summarises_a_tune_run_folder(tmp_path, capsys, monkeypatch):
    """``neurodyn info`` of a tune run folder said 'folder holds no .nwb files and is no run folder of neurodyn fit':
    it names the search, its best trial with the metric and the split it was taken on, and the commands that take
    best.yaml / best.ckpt next, as it does a fit's run folder; a best.ckpt there names best.yaml as its config."""
    import re

    monkeypatch.setenv("COLUMNS", "400")
    folder = tmp_path / "tune run"  # a space: the next: lines quote it
    summary = _tune_folder(folder)
    capsys.readouterr()
    assert main(["info", str(folder)]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert f"Tune run folder {folder}" in out, out
    assert re.search(r"scheduler\s+│ pbt: 2 trials of 2 epochs, seed 3", out), out
    assert re.search(r"metric\s+│ valid/loss \(min\): the masked Poisson NLL of the select split, 32 of the 160 "
                     r"training trials", out), out
    assert re.search(r"best trial\s+│ trial_0001: valid/loss 0.123457 at epoch 2", out), out
    assert re.search(r"trials.csv\s+│ 2 trials \(1 OK, 1 failed\)", out), out
    q = f"'{folder}"
    assert out.splitlines()[-4:] == [
        f"what: run folder of neurodyn tune (pbt, 2 trials); best trial_0001: valid/loss 0.123457 at epoch 2 on the "
        f"select split, {summary['select_split']}",
        f"next: neurodyn fit --config {q}/best.yaml'   (retrain with the best hyperparameters)",
        f"next: neurodyn predict --config {q}/best.yaml' --ckpt_path {q}/best.ckpt' --prediction.path PRED.h5",
        f"next: neurodyn validate --config {q}/best.yaml' --ckpt_path {q}/best.ckpt'   (its valid/loss on the same "
        "split)"], out
    # best.yaml there: the config of a fit, and the one that best.ckpt beside it was trained with
    assert main(["info", str(folder / "best.yaml")]) == 0
    assert capsys.readouterr().out.splitlines()[-3:] == [
        "what: config of neurodyn fit (LightningCLI YAML); the best trial's of a neurodyn tune run folder (its "
        "checkpoint: best.ckpt beside it)", f"next: neurodyn fit --config {q}/best.yaml'",
        f"next: neurodyn predict --config {q}/best.yaml' --ckpt_path {q}/best.ckpt' --prediction.path PRED.h5"]
    # a damaged summary.json is said in its row; the folder is still summarised from its other files
    (folder / "summary.json").write_text("{not json")
    assert main(["info", str(folder)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"summary.json\s+│ unreadable \(JSONDecodeError\)", out), out
    assert out.splitlines()[-4] == "what: run folder of neurodyn tune (scheduler not recorded)", out
