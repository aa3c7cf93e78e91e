"""Run folders, checkpoints a user can find, one-line errors of the LightningCLI commands."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from neurodyn.cli import main

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "--data", "LorenzDataModule",
    "--data.n_conditions", "4", "--data.trials_per_condition", "5", "--data.batch_size", "8",
    "--model.init_args.config.hidden_size", "8", "--model.init_args.config.ff_dim", "16",
    "--model.init_args.config.kl_ramp_epochs", "2",
    "--trainer.enable_model_summary", "false", "--trainer.accelerator", "cpu",
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A 4-epoch fit keeping the top 2 checkpoints (rate R2 improves on most epochs of a fresh model)."""
    root = tmp_path_factory.mktemp("runs")
    assert main(["fit", *TINY, "--trainer.default_root_dir", str(root), "--run-name", "r",
                 "--trainer.max_epochs", "4", "--checkpoint.save_top_k", "2"]) == 0
    return root / "r"


def test_run_folder_layout_under_default_root_dir(run):
    assert sorted(p.name for p in run.parent.iterdir()) == ["r"]
    names = {p.name for p in run.iterdir()}
    assert {"config.yaml", "metrics.csv", "tensorboard", "checkpoints"} <= names
    assert not (Path.cwd() / "runs" / "r").exists()


def test_last_is_the_last_epoch_and_index_names_the_best(run):
    ckpts = run / "checkpoints"
    last = torch.load(ckpts / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 3
    index = json.loads((ckpts / "checkpoints.json").read_text())
    assert index["monitor"] == "valid/loss" and index["mode"] == "min" and index["last_epoch"] == 3
    assert len(index["top_k"]) == 2 and index["best"] in index["top_k"]
    assert index["best_score"] == min(index["top_k"].values())  # valid/loss: lower is better
    assert {p.name for p in ckpts.glob("*.ckpt")} == {"last.ckpt", *index["top_k"]}
    best = torch.load(ckpts / index["best"], map_location="cpu", weights_only=True)
    assert best["callbacks"]  # a full training checkpoint
    # the newest top-k file and last.ckpt of the same epoch are one file on disk (one write per epoch)
    same_epoch = [name for name in index["top_k"] if name.startswith("epoch=3-")]
    if same_epoch:
        assert (ckpts / same_epoch[0]).stat().st_ino == (ckpts / "last.ckpt").stat().st_ino


def _names_match_their_checkpoints(ckpts: Path, metric: str) -> None:
    """Every top-k file of ``ckpts`` is named ``epoch=E-step=S-<metric>=V.ckpt`` after its own epoch, optimizer
    step and score (checkpoints.json's, to 4 decimals)."""
    index = json.loads((ckpts / "checkpoints.json").read_text())
    assert index["top_k"]
    for name, score in index["top_k"].items():
        found = re.fullmatch(rf"epoch=(\d+)-step=(\d+)-{metric.replace('/', '_')}=(-?\d+\.\d{{4}})\.ckpt", name)
        assert found, name
        ckpt = torch.load(ckpts / name, map_location="cpu", weights_only=True)
        assert (int(found[1]), int(found[2])) == (ckpt["epoch"], ckpt["global_step"]), name
        assert found[3] == f"{score:.4f}", (name, score)


def test_top_k_files_are_named_one_way_whatever_the_monitor(run, tmp_path):
    """The auto monitor named files ``epoch0-valid_loss=0.4073.ckpt`` (no '=' after epoch, no step), an explicit
    one Lightning's ``epoch=1-step=36.ckpt`` (no score): one style now, ``epoch=E-step=S-<metric>=V``."""
    _names_match_their_checkpoints(run / "checkpoints", "valid/loss")  # the auto monitor
    assert main(["fit", *TINY, "--trainer.default_root_dir", str(tmp_path), "--run-name", "nll",
                 "--trainer.max_epochs", "2", "--checkpoint.monitor", "valid/nll"]) == 0
    _names_match_their_checkpoints(tmp_path / "nll" / "checkpoints", "valid/nll")
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "The top-k files are named `epoch=E-step=S-<metric>=<value>.ckpt` whatever the monitor" in readme


def test_a_run_with_the_earlier_checkpoint_names_resumes_and_finds_its_best(tmp_path, monkeypatch):
    """Run folders written before the names were one style (``epoch1-valid_loss=0.8596.ckpt`` under the auto
    monitor) resume, and ``--ckpt_path best`` finds their best file, before and after a resume: checkpoints.json
    and the checkpoint callback's restored state name the files. Top-k files the resume displaces, old names
    included, are removed: the folder holds last.ckpt and the top k checkpoints.json lists."""
    import neurodyn.training.checkpoints as checkpoints

    with monkeypatch.context() as patch:  # the template the auto monitor used before
        patch.setattr(checkpoints, "checkpoint_filename",
                      lambda monitor: "epoch{epoch}-" + monitor.replace("/", "_") + "={" + monitor + ":.4f}")
        assert main(["fit", *TINY, "--trainer.default_root_dir", str(tmp_path), "--run-name", "old",
                     "--trainer.max_epochs", "2", "--checkpoint.save_top_k", "2"]) == 0
    run = tmp_path / "old"
    ckpts = run / "checkpoints"
    assert sorted(p.name for p in ckpts.glob("epoch*.ckpt")) == [
        name for name in sorted(json.loads((ckpts / "checkpoints.json").read_text())["top_k"])]
    assert all(re.fullmatch(r"epoch\d-valid_loss=\d+\.\d{4}\.ckpt", p.name) for p in ckpts.glob("epoch*.ckpt"))
    old_names = {p.name for p in ckpts.glob("epoch*.ckpt")}
    assert main(["validate", "--run", str(run), "--ckpt_path", "best"]) == 0
    assert main(["fit", "--run", str(run), "--trainer.max_epochs", "6"]) == 0
    index = json.loads((ckpts / "checkpoints.json").read_text())
    assert index["last_epoch"] == 5 and len(index["top_k"]) == 2 and index["best"] in index["top_k"]
    assert {p.name for p in ckpts.glob("*.ckpt")} == {"last.ckpt", *index["top_k"]}
    assert old_names - set(index["top_k"])  # a fresh model's loss falls: epochs 2-5 displaced an old-named file
    assert main(["validate", "--run", str(run), "--ckpt_path", "best"]) == 0


def test_a_resume_from_a_top_k_file_keeps_it_and_checkpoints_json_lists_the_top_k_alone(tmp_path):
    """README said the folder holds 'the best --checkpoint.save_top_k files'; a resume from a top-k file
    (``fit --ckpt_path DIR/checkpoints/epoch=2-....ckpt``) leaves more: the file it resumed from (Lightning never
    deletes it) and the top-k files written after its epoch (the restored state does not know them). Nothing
    is deleted; README says which files these are, and checkpoints.json's top_k lists the top k alone."""
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert ("leaves files beside the top k that it never deletes: the file it resumed from (Lightning never "
            "removes that one, also once it has left the top k), and the top-k files the run had written after "
            "that file's epoch") in readme
    assert "`checkpoints.json`'s `top_k` lists the top-k files alone" in readme

    def fit(name, top_k, epochs):
        assert main(["fit", *TINY, "--trainer.default_root_dir", str(tmp_path), "--run-name", name,
                     "--trainer.max_epochs", str(epochs), "--checkpoint.save_top_k", str(top_k)]) == 0
        return tmp_path / name / "checkpoints"

    def state(ckpts):
        index = json.loads((ckpts / "checkpoints.json").read_text())
        return index, {p.name for p in ckpts.glob("*.ckpt")} - {"last.ckpt"}

    # the audit's case: top 1 of 3 epochs (a fresh model's loss falls: epoch 2's file), resumed to 5 epochs
    ckpts = fit("one", 1, 3)
    (resumed_from,) = state(ckpts)[0]["top_k"]
    assert main(["fit", "--ckpt_path", str(ckpts / resumed_from), "--trainer.max_epochs", "5"]) == 0
    index, files = state(ckpts)
    assert len(index["top_k"]) == 1 and resumed_from not in index["top_k"]  # left the top k, kept
    assert files == {*index["top_k"], resumed_from}

    # top 3 of 4 epochs, resumed from the earliest of them: the later ones are kept, not listed; the epochs
    # trained again score as before (exact resume) and get their names with -v1
    ckpts = fit("three", 3, 4)
    before = state(ckpts)[0]["top_k"]
    resumed_from = min(before, key=lambda name: int(name.split("-")[0].removeprefix("epoch=")))
    later = set(before) - {resumed_from}
    assert main(["fit", "--ckpt_path", str(ckpts / resumed_from), "--trainer.max_epochs", "4"]) == 0
    index, files = state(ckpts)
    assert files - set(index["top_k"]) == later  # the resumed-from file is still among the top 3 here
    assert sorted(index["top_k"]) == sorted([resumed_from, *(n.replace(".ckpt", "-v1.ckpt") for n in later)])
    assert index["top_k"] == {**{resumed_from: before[resumed_from]},
                              **{n.replace(".ckpt", "-v1.ckpt"): before[n] for n in later}}


def test_checkpoint_header_and_weights_only(run):
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    head = ckpt["neurodyn"]
    assert head["format"] == 1 and head["family"] == "LangevinFlowModule"
    assert head["sizes"]["n_neurons"] == 29 and head["sizes"]["n_obs_bins"] == 50
    assert isinstance(ckpt["hyper_parameters"]["config"], dict)
    assert set(ckpt["neurodyn_random_state"]) >= {"torch", "numpy", "python"}


def test_predict_resolves_best_and_writes_into_the_run(run, tmp_path):
    import shutil

    copy = tmp_path / "r"
    shutil.copytree(run, copy)
    assert main(["predict", "--run", str(copy)]) == 0
    assert (copy / "predictions.h5").is_file()
    assert not list(copy.rglob("version_*")) and not (tmp_path / "lightning_logs").exists()


def test_validate_best_and_last(run, capsys):
    for which in ("best", "last"):
        assert main(["validate", "--run", str(run), "--ckpt_path", which]) == 0
    assert "valid/loss" in capsys.readouterr().out


def test_one_epoch_line_per_epoch_when_not_a_terminal(tmp_path, capsys, caplog):
    assert main(["fit", *TINY, "--trainer.default_root_dir", str(tmp_path), "--trainer.max_epochs", "2"]) == 0
    out, err = capsys.readouterr()
    lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["1/2", "2/2"]
    assert all("valid/rate_r2" in line and "train/loss" in line for line in lines)
    assert "Tip" not in out + err and "litlogger" not in out + err
    assert not any("Tip" in record.getMessage() for record in caplog.records)  # dropped at Lightning's logger
    (run_dir,) = tmp_path.iterdir()  # default name: a timestamp
    assert run_dir.name[:8].isdigit()


def test_existing_run_name_is_refused(run, capsys):
    code = main(["fit", *TINY, "--trainer.default_root_dir", str(run.parent), "--run-name", "r"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and f"resume this run with --run {run}" in err[0], err


def test_debug_config_runs(tmp_path):
    assert main(["fit", "--config", str(ROOT / "configs" / "trainer" / "debug.yaml"), *TINY,
                 "--trainer.default_root_dir", str(tmp_path)]) == 0
    assert not any(tmp_path.iterdir())  # debug writes no logs or checkpoints


def _one_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line]
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize(
    "yaml_text, argv, expected",
    [
        ("trainer:\n  max_epoch: 3\n", [], "trainer.max_epoch: unknown option"),
        ("model:\n  init_args:\n    config:\n      hiden_size: 3\n", [],
         "model.init_args.config.hiden_size: option 'hiden_size' is not accepted"),
        ("trainer: [\n", [], "yaml: line 2"),
        (None, ["--trainer.max_epochs", "abc"], "trainer.max_epochs"),
        (None, ["--model", "neurodyn.nothere.X"], "model: unknown class"),
        (None, ["--bogus", "3"], "unrecognized arguments: --bogus 3"),
        # options are matched whole: a prefix of one was taken for it (--trainer.max_epochs 2 trained)
        (None, ["--trainer.max_ep", "2"], "unrecognized arguments: --trainer.max_ep 2"),
        (None, ["--seed", "5"], "unrecognized arguments: --seed 5"),
        (None, ["--config", "/nonexistent/x.yaml"], "/nonexistent/x.yaml: config: no such config file"),
        (None, ["--config", "{tmp}/loop.yaml"],
         "loop.yaml: config: symbolic link loop (the link leads back to itself)"),
        (None, ["--data.batch_size", "0"], "data.init_args.batch_size: must be >= 1"),
    ],
)
def test_parser_errors_are_one_line(tmp_path, capsys, yaml_text, argv, expected):
    args = ["fit", "--trainer.default_root_dir", str(tmp_path)]
    (tmp_path / "loop.yaml").symlink_to("loop.yaml")  # was 'no such config file'
    argv = [arg.replace("{tmp}", str(tmp_path)) for arg in argv]
    if yaml_text is not None:
        cfg = tmp_path / "bad.yaml"
        cfg.write_text(yaml_text)
        args += ["--config", str(cfg)]
    assert main([*args, *argv]) == 2
    line = _one_line(capsys)
    assert line.startswith("neurodyn fit: error: ") and expected in line, line
    if yaml_text is not None and "yaml" not in expected:
        assert str(tmp_path / "bad.yaml") in line
    assert not (tmp_path / "runs").exists()


def test_bad_checkpoints_are_one_line(run, tmp_path, capsys):
    truncated = tmp_path / "trunc.ckpt"
    truncated.write_bytes((run / "checkpoints" / "last.ckpt").read_bytes()[:5000])
    assert main(["predict", "--run", str(run), "--ckpt_path", str(truncated)]) == 2
    assert f"{truncated}: ckpt_path: not a readable checkpoint" in _one_line(capsys)

    text = tmp_path / "notes.ckpt"
    text.write_text("hello")
    assert main(["predict", "--run", str(run), "--ckpt_path", str(text)]) == 2
    assert _one_line(capsys).endswith(f"{text}: ckpt_path: not a readable checkpoint: not a torch.save zip archive "
                                      "(truncated, or another kind of file)")
    # torch's legacy (non-zip) format is read as before (helper-51: refused by a zip-only pre-check)
    from neurodyn.training.checkpoints import read_checkpoint

    legacy = tmp_path / "legacy.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "epoch": 0}, legacy, _use_new_zipfile_serialization=False)
    assert sorted(read_checkpoint(legacy)) == ["epoch", "state_dict"]
    # a file of another program holding pickled objects: which object, not torch's paragraph on PyTorch 2.6
    import datetime

    other = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}, "saved": datetime.date(2026, 1, 1)}, other)
    assert main(["predict", "--run", str(run), "--ckpt_path", str(other)]) == 2
    line = _one_line(capsys)
    assert line.endswith(f"{other}: ckpt_path: not a readable checkpoint: it holds Python objects a safe load "
                         "refuses (Unsupported global: GLOBAL datetime.date); neurodyn loads checkpoints with "
                         "weights_only=True, so only files of neurodyn fit are read"), line

    assert main(["predict", "--run", str(run), "--ckpt_path", str(tmp_path / "missing.ckpt")]) == 2
    assert "no such checkpoint file" in _one_line(capsys)
    loop = tmp_path / "loop.ckpt"  # a link to itself was 'no such checkpoint file', as a run folder 'no such run
    loop.symlink_to(loop.name)     # folder', while ls lists the name
    assert main(["predict", "--run", str(run), "--ckpt_path", str(loop)]) == 2
    assert _one_line(capsys).endswith(f"{loop}: ckpt_path: symbolic link loop (the link leads back to itself)")
    assert main(["predict", "--run", str(loop)]) == 2
    assert _one_line(capsys).endswith(f"{loop}: run: symbolic link loop (the link leads back to itself)")

    ckpt = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    ckpt["neurodyn"]["format"] = 99
    newer = tmp_path / "newer.ckpt"
    torch.save(ckpt, newer)
    assert main(["predict", "--run", str(run), "--ckpt_path", str(newer)]) == 2
    assert "neurodyn.format: format 99 is newer" in _one_line(capsys)

    del ckpt["neurodyn"]
    old = tmp_path / "old.ckpt"
    torch.save(ckpt, old)
    assert main(["validate", "--run", str(run), "--ckpt_path", str(old)]) == 2
    assert "not a neurodyn checkpoint" in _one_line(capsys)

    # an architecture setting that differs from the checkpoint's is refused before the data are read
    assert main(["predict", "--run", str(run), "--model.init_args.config.hidden_size", "16",
                 "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), "--data.n_neurons", "7"]) == 2
    assert "model.init_args.config.hidden_size: the checkpoint was trained with hidden_size=8" in _one_line(capsys)
    assert main(["predict", "--run", str(run), "--ckpt_path", str(run / "checkpoints" / "last.ckpt"),
                 "--data.n_neurons", "7"]) == 2
    assert "n_heldin" in _one_line(capsys)

    assert main(["predict", "--run", str(tmp_path / "nope")]) == 2
    assert "no such run folder" in _one_line(capsys)
    # the run's config.yaml given as the run: 'no such run folder' for a file that exists
    assert main(["predict", "--run", str(run / "config.yaml")]) == 2
    line = _one_line(capsys)
    assert f"run: is a file, expected a run folder written by neurodyn fit; the run folder is {run}" in line
    # a run's checkpoint given as the run said only 'is a file, expected a run folder written by neurodyn fit'
    ckpt = run / "checkpoints" / "last.ckpt"
    assert main(["predict", "--run", str(ckpt)]) == 2
    assert _one_line(capsys).endswith(f"{ckpt}: run: is a file, expected a run folder written by neurodyn fit; it is "
                                      f"a checkpoint of the run folder {run}: --run {run} --ckpt_path {ckpt}")
    assert main(["predict", "--config", str(ROOT / "configs" / "langevinflow" / "lorenz.yaml")]) == 2
    assert "needs a trained model" in _one_line(capsys)


def test_checkpoint_of_another_family_is_one_line(run, tmp_path, capsys):
    hmm = ["--model", "HMMGLMModule", "--model.config.n_states", "2", "--model.n_inner", "2",
           "--data", "SwitchingGLMDataModule", "--data.n_states", "2", "--data.n_neurons", "5",
           "--data.n_sequences", "4", "--data.n_bins", "60", "--data.n_train", "3",
           "--trainer.max_epochs", "1", "--trainer.enable_model_summary", "false"]
    assert main(["fit", *hmm, "--trainer.default_root_dir", str(tmp_path), "--run-name", "h"]) == 0
    capsys.readouterr()
    code = main(["predict", "--run", str(run), "--ckpt_path", str(tmp_path / "h" / "checkpoints" / "last.ckpt"),
                 "--prediction.path", str(tmp_path / "p.h5")])
    assert code == 2
    assert "neurodyn.family: an HMMGLMModule checkpoint given to LangevinFlowModule" in _one_line(capsys)
    assert not (tmp_path / "p.h5").exists()


def test_run_without_selection_predicts_from_last(tmp_path, capsys):
    assert main(["fit", *TINY, "--trainer.default_root_dir", str(tmp_path), "--run-name", "n",
                 "--trainer.max_epochs", "1", "--checkpoint.monitor", "null", "--checkpoint.save_top_k", "0"]) == 0
    run = tmp_path / "n"
    assert sorted(p.name for p in (run / "checkpoints").glob("*.ckpt")) == ["last.ckpt"]
    assert main(["predict", "--run", str(run)]) == 0 and (run / "predictions.h5").is_file()
    capsys.readouterr()
    assert main(["predict", "--run", str(run), "--ckpt_path", "best"]) == 2
    assert "keeps no best checkpoint" in _one_line(capsys)


def test_the_model_summary_prints_no_unmeasured_flops(tmp_path, capsys):
    """Lightning printed "FLOPs 0" per layer and "Total FLOPs: 0": it counts FLOPs only through an
    example_input_array, which neurodyn's modules do not have, so the zeros were not a measurement."""
    argv = ["fit", "--config", str(ROOT / "configs/hmmglm/synthetic_glm.yaml"), "--trainer.max_epochs", "1",
            "--data.init_args.n_sequences", "4", "--data.init_args.n_bins", "50", "--data.init_args.n_train", "3",
            "--trainer.default_root_dir", str(tmp_path), "--trainer.enable_progress_bar", "false"]
    assert main([*argv, "--run-name", "a"]) == 0
    out = capsys.readouterr().out
    assert "total params" in out and "flops" not in out.lower()
    assert "model  GLM" in out  # the layer table is still there
    assert main([*argv, "--run-name", "b", "--trainer.enable_model_summary", "false"]) == 0
    assert "total params" not in capsys.readouterr().out


@pytest.mark.parametrize("content, expected", [
    (b"\x89HDF\r\n\x1a\n\x00\x00", "--config: is not a text file (not UTF-8): expected a YAML config; it is an HDF5 "
     "file (data or predictions: neurodyn info says which, and what takes it)"),
    ("checkpoint", "--config: is not a text file (not UTF-8): expected a YAML config; it is a checkpoint (torch.save "
     "archive): give it as --ckpt_path"),
    (b"", "--config: is empty: expected a YAML mapping"),
    (b"- a\n", "--config: expected a mapping at the top level, got list"),
    (b'"just a string"\n', "--config: expected a mapping at the top level, got str"),
])
def test_a_config_that_is_not_a_yaml_mapping_is_one_line(tmp_path, capsys, content, expected):
    """helper-58: an HDF5 file given as --config was a 73-line UnicodeDecodeError traceback; an empty file or
    a YAML list / string was 'Unexpected config: - a', naming no file."""
    config = tmp_path / "c.yaml"
    if content == "checkpoint":  # a checkpoint given as the config was named only 'not a text file' (as an HDF5
        torch.save({"state_dict": {"w": torch.full((64,), -1.5)}}, config)  # file): which option takes it
    else:
        config.write_bytes(content)
    assert main(["fit", "--config", str(config), "--trainer.default_root_dir", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{config}: {expected}" in err[0], err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("extra, expected", [
    (["--trainer.max_epochs", "0"], "trainer.max_epochs: max_epochs 0 trains nothing"),
    (["--trainer.max_steps", "0"], "trainer.max_steps: max_steps 0 trains nothing"),  # max_epochs set (helper-60)
    (["--trainer.max_epochs", "-1"], "trainer.max_epochs: -1 (Lightning's 'no limit') with no trainer.max_steps"),
])
def test_a_fit_that_trains_nothing_or_forever_is_refused(tmp_path, capsys, extra, expected):
    """helper-58: max_epochs 0 wrote a run folder without a checkpoint (exit 0); -1 trained until killed (the
    HMM-GLM configs have no cosine schedule to refuse it)."""
    argv = ["fit", "--config", str(ROOT / "configs/hmmglm/synthetic_glm.yaml"), *extra,
            "--trainer.default_root_dir", str(tmp_path / "runs")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_predict_never_writes_over_the_run_records(run, capsys):
    """helper-58: `predict --prediction.path RUN/metrics.csv --prediction.overwrite true` replaced the run's
    metrics.csv with a prediction file (config.yaml and the checkpoints were protected, the other records not),
    also when the checkpoint alone names the run."""
    before = {name: (run / name).read_bytes() for name in ("metrics.csv", "hparams.yaml")}
    for name in ("metrics.csv", "hparams.yaml"):
        for how in (["--run", str(run), "--ckpt_path", "last"],
                    ["--config", str(run / "config.yaml"), "--ckpt_path", str(run / "checkpoints" / "last.ckpt")]):
            assert main(["predict", *how, "--prediction.path", str(run / name), "--prediction.overwrite", "true"]) == 2
            assert f"{run / name}: prediction.path: is an input file" in _one_line(capsys)
    assert {name: (run / name).read_bytes() for name in before} == before


def test_the_parameter_summary_takes_older_lightning_calls(capsys):
    """helper-60: Lightning before 2.3 / 2.6 calls summarize without total_training_modes / total_flops
    (pyproject allows lightning >= 2.2); the summary prints without their rows instead of a TypeError."""
    from neurodyn.training.callbacks import ParameterSummary

    data = [(" ", ["0"]), ("Name", ["model"]), ("Type", ["GLM"]), ("Params", ["421"])]
    ParameterSummary.summarize(data, 421, 421, 0.002)
    out = capsys.readouterr().out
    assert re.search(r"421\s+total params", out) and "train / eval" not in out and "FLOPs" not in out
    ParameterSummary.summarize(data + [("FLOPs", ["1.2 K"])], 421, 421, 0.002, {"train": 1, "eval": 0}, 1200)
    out = capsys.readouterr().out
    assert "1 / 0  modules in train / eval mode" in out and re.search(r"1\.2 K\s+total FLOPs", out)


@pytest.mark.parametrize("caller", [False, True])
def test_fit_flushes_subnormal_floats_while_it_trains(tmp_path, monkeypatch, caller):
    """Subnormal weights (15 % of the parameters after the DMFC CPU recipe's 600 epochs) made CPU epochs 4x
    slower; training entry points flush them to zero (torch.set_flush_denormal) while they train, and put the
    caller's setting back: it is the thread's and reaches NumPy and Python floats too, so a notebook that ran
    ``main(["fit", ...])`` computed ``1e-300 * 1e-10`` as 0.0 after it (the setting was left on)."""
    from neurodyn.training.hmmglm_module import HMMGLMModule

    if not torch.set_flush_denormal(caller):
        pytest.skip("this CPU cannot flush subnormals")
    subnormal = torch.tensor([1e-39], dtype=torch.float32)
    seen = []
    real = HMMGLMModule.training_step

    def training_step(self, batch, batch_idx):
        seen.append((subnormal * 2).item() == 0)
        return real(self, batch, batch_idx)

    monkeypatch.setattr(HMMGLMModule, "training_step", training_step)
    try:
        assert ((1e-300 * 1e-10) == 0) is caller  # plain Python floats follow the setting
        assert main(["fit", "--config", str(ROOT / "configs/hmmglm/synthetic_glm.yaml"), "--trainer.max_epochs", "1",
                     "--data.init_args.n_sequences", "4", "--data.init_args.n_bins", "50", "--data.init_args.n_train",
                     "3", "--trainer.default_root_dir", str(tmp_path), "--trainer.enable_model_summary", "false"]) == 0
        assert seen and all(seen)  # flushed while it trained
        assert ((1e-300 * 1e-10) == 0) is caller  # the caller's setting after it
        assert ((subnormal * 2).item() == 0) is caller
    finally:
        torch.set_flush_denormal(False)  # the process default, for the tests after this one


def test_info_of_a_run_names_its_predictions_and_says_when_a_resume_left_them_behind(tmp_path, capsys, monkeypatch):
    """info of a run folder said nothing of the predictions.h5 that predict --run writes into it, nor that a resume
    since had trained the weights on (found by a new-user walkthrough). It now gives a row naming the checkpoint
    and epoch they come from, and says when the run's checkpoint of that name is newer."""
    monkeypatch.setenv("COLUMNS", "400")
    args = ["fit", *TINY, "--trainer.default_root_dir", str(tmp_path), "--run-name", "r"]
    assert main([*args, "--trainer.max_epochs", "1"]) == 0
    run = tmp_path / "r"
    assert main(["predict", "--run", str(run), "--ckpt_path", "last"]) == 0
    capsys.readouterr()

    def row() -> str:
        assert main(["info", str(run)]) == 0
        found = [line for line in capsys.readouterr().out.splitlines() if "predictions.h5" in line]
        assert len(found) == 1, found
        return " ".join(found[0].replace("│", " ").split())

    assert "from last.ckpt (epoch 0, counted from 0)" in row() and "older" not in row()
    assert main(["fit", "--run", str(run), "--trainer.max_epochs", "2"]) == 0
    capsys.readouterr()
    assert row().endswith("from last.ckpt (epoch 0, counted from 0); older than last.ckpt now (epoch 1): predict "
                          "again for the weights trained since")
