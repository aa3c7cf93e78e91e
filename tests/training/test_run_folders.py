"""Run folders are the user's records: a command that names another run never writes into a run, a resumed
run keeps its config.yaml and its data, one fit at a time writes a run folder."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from tiny_runs import TINY

from neurodyn.cli import main


def _digest(folder: Path) -> dict[str, str]:
    """Every file of a folder (hidden ones too) -> its sha256."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _one_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line]
    assert len(err) == 1, err
    return err[0]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """A 1-epoch run ``old`` (copied per test: tests that resume it write into their copy)."""
    root = tmp_path_factory.mktemp("runs")
    assert main(["fit", *TINY, "--trainer.default_root_dir", str(root), "--run-name", "old",
                 "--trainer.max_epochs", "1"]) == 0
    return root / "old"


@pytest.fixture
def run(fitted, tmp_path):
    """A copy of ``fitted`` that stands for a run made in its place: its run.json names the copy's folder and its
    identity (the run id is a run's only in the folder its record was made in, checkpoint_index.run_id)."""
    import json

    from neurodyn.training.checkpoint_index import new_run_record

    copy = tmp_path / "runs" / "old"
    shutil.copytree(fitted, copy)
    record = json.loads((copy / "run.json").read_text())
    (copy / "run.json").write_text(json.dumps(new_run_record(record["id"], copy)) + "\n")
    return copy


def test_run_name_of_another_folder_with_a_run_checkpoint_is_refused(run, capsys):
    before = _digest(run)
    root = run.parent
    for resume in (["--ckpt_path", str(run / "checkpoints" / "last.ckpt")], ["--run", str(run)]):
        capsys.readouterr()
        code = main(["fit", *TINY, *resume, "--trainer.default_root_dir", str(root), "--run-name", "finetune",
                     "--trainer.max_epochs", "2"])
        line = _one_line(capsys)
        assert code == 2 and f"{run}: run_name: names another folder" in line and f"--run {run}" in line, line
        assert _digest(run) == before  # the old run is untouched
        assert sorted(p.name for p in root.iterdir()) == ["old"]  # and no new folder
    # naming the run's own folder is the same as not naming it
    assert main(["fit", *TINY, "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), "--trainer.default_root_dir",
                 str(root), "--run-name", "old", "--trainer.max_epochs", "2"]) == 0


@pytest.mark.parametrize("option, value, field", [
    ("--data.trials_per_condition", "6", "data.init_args.trials_per_condition"),
    ("--data", "SwitchingGLMDataModule", "data"),
    ("--trainer.gradient_clip_val", "0.5", "trainer.gradient_clip_val"),
    ("--seed_everything", "7", "seed_everything"),
    ("--checkpoint.save_top_k", "3", "checkpoint.save_top_k"),
    ("--checkpoint.monitor", "train/loss", "checkpoint.monitor"),
    ("--nlb_eval.every_n_epochs", "1", "nlb_eval.every_n_epochs"),
    ("--optimizer", "SGD", "optimizer"),
], ids=["data-setting", "data-class", "trainer-setting", "seed", "checkpoint-top-k", "checkpoint-monitor",
        "nlb-eval-interval", "optimizer"])
def test_resuming_with_other_data_or_trainer_settings_is_refused(run, capsys, option, value, field):
    before = _digest(run)
    capsys.readouterr()
    assert main(["fit", "--run", str(run), option, value, "--trainer.max_epochs", "2"]) == 2
    line = _one_line(capsys)
    assert f"{run / 'config.yaml'}: {field}: a resumed run continues with the run's" in line, line
    assert _digest(run) == before


def test_resume_keeps_config_yaml_and_records_each_resume(run):
    config = (run / "config.yaml").read_bytes()
    assert main(["fit", "--run", str(run), "--trainer.max_epochs", "2", "--checkpoint.verbose", "true"]) == 0
    assert main(["fit", "--run", str(run), "--trainer.max_epochs", "3", "--trainer.log_every_n_steps", "7"]) == 0
    assert (run / "config.yaml").read_bytes() == config  # the record of the run
    first, second = (run / f"config.resume-{n}.yaml" for n in (1, 2))
    assert "max_epochs: 2" in first.read_text() and "max_epochs: 3" in second.read_text()
    assert "log_every_n_steps: 7" in second.read_text()
    assert not list(run.glob(".*.part"))


def test_a_second_fit_of_a_run_folder_is_refused_while_the_first_runs(run, capsys):
    """The lock ``.run.lock`` is held by the fit writing the folder (here: this process, as the first fit
    would), so a second fit of the same folder -- new name or resume -- is refused at once; a timestamped
    name is never shared."""
    from neurodyn.io.output import hold_folder
    from neurodyn.training.runs import unique_run_dir

    before, top = _digest(run), {p.name for p in run.iterdir()}
    with hold_folder(run):
        for args in (["fit", *TINY, "--trainer.default_root_dir", str(run.parent), "--run-name", "old"],
                     ["fit", "--run", str(run), "--trainer.max_epochs", "2"]):
            capsys.readouterr()
            assert main(args) == 2
            line = _one_line(capsys)
            assert f"{run}: run" in line and "another neurodyn fit is writing this run folder" in line, line
        assert {p.name for p in run.iterdir()} == {".run.lock", *top}
    assert not (run / ".run.lock").exists()
    assert _digest(run) == before
    # released after a fit, a refused fit and a failed one: the folder resumes, nothing left behind
    assert main(["fit", "--run", str(run), "--trainer.max_epochs", "2"]) == 0
    assert not (run / ".run.lock").exists()
    names = {unique_run_dir(run.parent / "t") for _ in range(3)}
    assert len(names) == 3 and all(p.is_dir() for p in names)


def test_a_resume_refused_while_the_run_is_written_is_told_to_wait_and_resume(run, capsys):
    """A second `fit --run DIR` (or `--ckpt_path DIR/checkpoints/last.ckpt`) while a fit writes DIR was refused with
    '... wait for it to end, or choose another --run-name', advice for a new run that a resume cannot follow (it
    continues in its own folder). A resume is told to wait and resume; a new run named into the folder keeps the
    --run-name advice. Fails before (the resumes were told to choose another --run-name)."""
    from neurodyn.io.output import hold_folder

    with hold_folder(run):
        for args in (["fit", "--run", str(run), "--trainer.max_epochs", "2"],
                     ["fit", *TINY, "--ckpt_path", str(run / "checkpoints" / "last.ckpt"),
                      "--trainer.max_epochs", "2"]):
            capsys.readouterr()
            assert main(args) == 2
            line = _one_line(capsys)
            assert line.endswith("another neurodyn fit is writing this run folder; wait for it to end, then resume "
                                 f"it (neurodyn fit --run {run})"), line
        capsys.readouterr()
        assert main(["fit", *TINY, "--trainer.default_root_dir", str(run.parent), "--run-name", "old"]) == 2
        assert _one_line(capsys).endswith("wait for it to end, or choose another --run-name")


@pytest.mark.parametrize("below", ["", "sub"])
def test_default_root_dir_that_is_a_file_is_one_line(tmp_path, capsys, below):
    file = tmp_path / "notes.txt"
    file.write_text("mine")
    root = file / below if below else file
    assert main(["fit", *TINY, "--trainer.default_root_dir", str(root), "--trainer.max_epochs", "1"]) == 2
    assert f"{root}: trainer.default_root_dir: is a file" in _one_line(capsys)
    assert file.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


@pytest.mark.parametrize("spelling", ["--out", "--out="])
def test_predict_takes_out_as_every_other_command(run, tmp_path, capsys, spelling):
    """Every command that writes a file takes --out (prepare, baseline, ensemble, submit, plot, ...); predict
    refused it ('unrecognized arguments: --out pred.h5') and wanted --prediction.path."""
    out = tmp_path / "pred.h5"
    given = [spelling + str(out)] if spelling.endswith("=") else [spelling, str(out)]
    assert main(["predict", "--run", str(run), "--ckpt_path", "last", *given]) == 0
    assert out.is_file() and not (run / "predictions.h5").exists()
    assert main(["predict", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "neurodyn predict --out FILE`` is short for this option" in text


def test_predict_help_lists_overwrite(capsys):
    assert main(["predict", "--help"]) == 0
    out = capsys.readouterr().out
    option = out[out.index("  --prediction.overwrite"):].split("\n  --")[0]
    assert "neurodyn predict --overwrite" in " ".join(option.split()), option


def test_checkpoint_of_another_run_is_refused_for_a_resume(run, tmp_path, capsys):
    """``fit --run A --ckpt_path B/checkpoints/last.ckpt`` continued B's weights and loop in A's folder without
    a word; both runs are left untouched."""
    other = tmp_path / "runs" / "other"
    shutil.copytree(run, other)
    before, before_other = _digest(run), _digest(other)
    capsys.readouterr()
    code = main(["fit", "--run", str(run), "--ckpt_path", str(other / "checkpoints" / "last.ckpt"),
                 "--trainer.max_epochs", "2"])
    line = _one_line(capsys)
    assert code == 2 and "ckpt_path: is a checkpoint of another run" in line and f"--run {other}" in line, line
    assert _digest(run) == before and _digest(other) == before_other


def test_a_checkpoint_outside_the_run_is_refused_for_its_resume(run, tmp_path, capsys):
    """``fit --run A --ckpt_path kept/x.ckpt`` (a file outside any run folder, not one of A's checkpoints)
    continued that file's weights and loop in A's folder: A's metrics.csv and checkpoints then described two
    runs. Refused in one line naming the flag and the file, A left as it was; a copy of one of A's own
    checkpoints (the same bytes) is A's state and resumes A."""
    twin = tmp_path / "runs" / "twin"  # the same settings, one epoch further: its last.ckpt is no file of A's
    assert main(["fit", *TINY, "--trainer.default_root_dir", str(twin.parent), "--run-name", "twin",
                 "--trainer.max_epochs", "2"]) == 0
    kept = tmp_path / "kept" / "epoch1.ckpt"
    kept.parent.mkdir()
    shutil.copy(twin / "checkpoints" / "last.ckpt", kept)
    before = _digest(run)
    capsys.readouterr()
    assert main(["fit", "--run", str(run), "--ckpt_path", str(kept), "--trainer.max_epochs", "3"]) == 2
    line = _one_line(capsys)
    assert line.startswith(f"neurodyn fit: error: {kept}: ckpt_path: is not a checkpoint of --run {run}"), line
    assert f"--run {run} alone" in line and "new run" in line, line
    assert _digest(run) == before
    # a copy of A's own last.ckpt kept elsewhere: A's state, so the resume continues A
    own = tmp_path / "kept" / "old-last.ckpt"
    shutil.copy(run / "checkpoints" / "last.ckpt", own)
    assert main(["fit", "--run", str(run), "--ckpt_path", str(own), "--trainer.max_epochs", "2"]) == 0
    assert "max_epochs: 2" in (run / "config.resume-1.yaml").read_text()


def test_resume_from_a_run_checkpoint_alone_takes_the_runs_config(run, capsys):
    """``fit --ckpt_path DIR/checkpoints/last.ckpt`` (no --run) reads DIR/config.yaml like ``--run DIR``;
    before, the defaults stood in for every setting, and a resume that gave none was refused for a batch size
    it had not asked for."""
    assert main(["fit", "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), "--trainer.max_epochs", "2"]) == 0
    assert "max_epochs: 2" in (run / "config.resume-1.yaml").read_text()
    capsys.readouterr()
    assert main(["fit", "--ckpt_path", str(run / "checkpoints" / "last.ckpt"), "--data.batch_size", "4",
                 "--trainer.max_epochs", "3"]) == 2
    assert f"{run / 'config.yaml'}: data.init_args.batch_size: a resumed run" in _one_line(capsys)


def test_a_checkpoint_out_of_its_run_folder_resumes_only_on_its_own_data(run, tmp_path, capsys):
    """The checkpoint records the run's data / trainer / seed / checkpoint / optimizer settings, so a copy kept
    elsewhere is compared with them (before: resumed on whatever data was given, if the sizes matched)."""
    from neurodyn.training.checkpoints import RUN_SETTINGS_KEY, read_checkpoint

    elsewhere = tmp_path / "kept" / "epoch1.ckpt"
    elsewhere.parent.mkdir()
    shutil.copy(run / "checkpoints" / "last.ckpt", elsewhere)
    recorded = read_checkpoint(elsewhere)[RUN_SETTINGS_KEY]
    assert recorded["data"]["init_args"]["trials_per_condition"] == 5 and recorded["seed_everything"] == 0
    root = tmp_path / "new"
    for option, value, field in [("--data.trials_per_condition", "6", "data.init_args.trials_per_condition"),
                                 ("--seed_everything", "3", "seed_everything")]:
        capsys.readouterr()
        args = ["fit", *TINY, option, value, "--ckpt_path", str(elsewhere), "--trainer.default_root_dir", str(root),
                "--trainer.max_epochs", "2"]
        assert main(args) == 2
        line = _one_line(capsys)
        assert f"{elsewhere}: {field}: a resumed run continues with" in line and "in the checkpoint" in line, line
        assert not root.exists()  # the root this fit made is removed again
    # a setting the resume did not give (a default stands in) is to be given, not dropped
    capsys.readouterr()
    assert main(["fit", "--ckpt_path", str(elsewhere), "--trainer.default_root_dir", str(root),
                 "--trainer.max_epochs", "2"]) == 2
    line = _one_line(capsys)
    assert "but the resume asks for" in line and "as the run did" in line and "drop the option" not in line, line
    assert main(["fit", *TINY, "--ckpt_path", str(elsewhere), "--trainer.default_root_dir", str(root),
                 "--trainer.max_epochs", "2"]) == 0
    # a copy of another run's checkpoint given to --run DIR: not DIR's (before, held to the settings of the run it
    # came from, and with the same settings it continued in DIR)
    other = tmp_path / "runs" / "other"
    assert main(["fit", *TINY, "--data.trials_per_condition", "6", "--trainer.default_root_dir", str(other.parent),
                 "--run-name", "other", "--trainer.max_epochs", "1"]) == 0
    copy = tmp_path / "kept" / "other.ckpt"
    shutil.copy(other / "checkpoints" / "last.ckpt", copy)
    before = _digest(run)
    capsys.readouterr()
    assert main(["fit", "--run", str(run), "--ckpt_path", str(copy), "--trainer.max_epochs", "2"]) == 2
    line = _one_line(capsys)
    assert f"{copy}: ckpt_path: is not a checkpoint of --run {run}" in line, line
    assert _digest(run) == before


@pytest.mark.parametrize("named", [[], ["--run-name", "new"]], ids=["unnamed", "run-name"])
def test_a_refused_fit_leaves_no_root_folder_and_an_unmakeable_root_is_one_line(named, tmp_path, capsys):
    """The root (``trainer.default_root_dir``) and its missing parents made by a fit that fails are removed
    again (before: an empty ``a/b/c`` was left; with ``--run-name``, until the folders above the run were
    recorded as the fit's: the run folder's lock made them, and they stayed); a root that cannot be made is one
    line (was a traceback)."""
    root = tmp_path / "a" / "b" / "c"
    # limit_val_batches below one batch: refused once the run has started (its folder made), not while parsing
    assert main(["fit", *TINY, "--trainer.limit_val_batches", "0.001", "--trainer.default_root_dir", str(root),
                 *named]) == 2
    assert list(tmp_path.iterdir()) == []
    blocked = Path("/proc/neurodyn-test-root")  # mkdir fails there for anyone, root included
    if not Path("/proc/self").is_dir():
        pytest.skip("needs Linux /proc")
    capsys.readouterr()
    assert main(["fit", *TINY, "--trainer.default_root_dir", str(blocked), "--trainer.max_epochs", "1"]) == 2
    assert f"{blocked}: trainer.default_root_dir: cannot create folder" in _one_line(capsys)


def test_a_fit_that_does_not_resume_a_run_never_writes_into_its_folder(run, tmp_path, capsys):
    """``fit --config DIR/config.yaml --ckpt_path OTHER.ckpt`` (a checkpoint outside any run folder: another
    run's copy, or a saved copy of DIR's own older one) took the run_name DIR/config.yaml records and wrote
    into DIR: its last.ckpt was replaced and metrics.csv got the other epochs. Only ``--run DIR`` (or DIR's own
    checkpoint) continues DIR; any other fit naming it, from the config or with --run-name, is one line."""
    root = run.parent
    kept = tmp_path / "kept" / "old-epoch0.ckpt"
    kept.parent.mkdir()
    shutil.copy(run / "checkpoints" / "last.ckpt", kept)
    before = _digest(run)
    config = ["--config", str(run / "config.yaml"), "--trainer.default_root_dir", str(root)]
    for args, what in [([*config, "--ckpt_path", str(kept)], f"run_name 'old' of {run / 'config.yaml'}"),
                       ([*config, "--ckpt_path", str(kept), "--run-name", "old"], "--run-name"),
                       (config, f"run_name 'old' of {run / 'config.yaml'}")]:
        capsys.readouterr()
        assert main(["fit", *args, "--trainer.max_epochs", "3"]) == 2
        line = _one_line(capsys)
        assert f"{run}: run_name: is the folder of an existing run ({what})" in line, line
        assert f"resume this run with --run {run}" in line, line
        assert _digest(run) == before and sorted(p.name for p in root.iterdir()) == ["old"]
    # another name starts a new run from the checkpoint (or from the run's settings); the old run stays as it was
    assert main(["fit", *config, "--ckpt_path", str(kept), "--run-name", "again", "--trainer.max_epochs", "2"]) == 0
    assert main(["fit", *config, "--run-name", "fresh", "--trainer.max_epochs", "1"]) == 0
    assert (root / "again" / "checkpoints" / "last.ckpt").is_file() and (root / "fresh" / "config.yaml").is_file()
    assert _digest(run) == before


def test_a_new_run_writes_only_into_a_new_or_empty_folder(tmp_path, capsys):
    """``fit --run-name exp`` of an existing folder that holds no checkpoint wrote over its files, the fit's own
    ``--config exp/config.yaml`` among them; it is refused in one line, the folder left as it was. An empty
    folder is taken."""
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "config.yaml").write_text("trainer:\n  max_epochs: 1\n")
    (exp / "metrics.csv").write_text("my notes\n")
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("mine")
    before = {"exp": _digest(exp), "notes": _digest(notes)}
    for name, shown in [("exp", "config.yaml, metrics.csv"), ("notes", "todo.txt")]:
        capsys.readouterr()
        assert main(["fit", "--config", str(exp / "config.yaml"), *TINY, "--trainer.default_root_dir", str(tmp_path),
                     "--run-name", name]) == 2
        line = _one_line(capsys)
        assert f"{tmp_path / name}: run_name: folder exists and holds files ({shown}; --run-name)" in line, line
        assert _digest(tmp_path / name) == before[name]
    (tmp_path / "empty").mkdir()
    assert main(["fit", "--config", str(exp / "config.yaml"), *TINY, "--trainer.default_root_dir", str(tmp_path),
                 "--run-name", "empty"]) == 0
    assert (tmp_path / "empty" / "checkpoints" / "last.ckpt").is_file()
    assert _digest(exp) == before["exp"] and sorted(p.name for p in tmp_path.iterdir()) == ["empty", "exp", "notes"]


def test_a_run_folder_that_cannot_be_made_is_one_line(tmp_path, capsys):
    """A root that exists but takes no new folder (was an OSError traceback from the timestamped run folder's
    mkdir); a --run-name that is an existing file is said to be one (was 'FILE/run: ... cannot write in folder
    FILE', a path that does not exist)."""
    if not Path("/proc/self").is_dir():
        pytest.skip("needs Linux /proc")
    from neurodyn.io.output import folder_protection

    assert main(["fit", *TINY, "--trainer.default_root_dir", "/proc", "--trainer.max_epochs", "1"]) == 2
    # /proc has no write bit (mode 0555): refused up front as a write-protected folder, root included; else mkdir's
    protected = folder_protection("/proc")
    assert (f"/proc: trainer.default_root_dir: folder /proc is write-protected ({protected}" if protected else
            "/proc: trainer.default_root_dir: cannot create folder /proc/") in _one_line(capsys)
    (tmp_path / "data.h5").write_text("mine")
    assert main(["fit", *TINY, "--trainer.default_root_dir", str(tmp_path), "--run-name", "data.h5",
                 "--trainer.max_epochs", "1"]) == 2
    assert f"{tmp_path / 'data.h5'}: run_name: is a file, expected a folder" in _one_line(capsys)
    assert (tmp_path / "data.h5").read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["data.h5"]


def test_a_relative_data_path_is_recorded_absolute(tmp_path, monkeypatch):
    """A run fitted with ``--data.path sim.h5`` resumes from another working folder, on that same file
    (before: 'sim.h5' was looked up where the resume ran -- not found, or another file of that name)."""
    from neurodyn.data.synthetic.switching_glm import simulate_switching_glm, write_switching_glm_h5

    (tmp_path / "here").mkdir()
    (tmp_path / "there").mkdir()
    for folder, seed in (("here", 1), ("there", 2)):  # the same name, two files
        write_switching_glm_h5(tmp_path / folder / "sim.h5", simulate_switching_glm(
            n_states=2, n_neurons=4, n_sequences=3, n_bins=50, seed=seed))
    monkeypatch.chdir(tmp_path / "here")
    fit = ["fit", "--model", "HMMGLMModule", "--data", "SwitchingGLMDataModule", "--data.n_train", "2",
           "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
           "--trainer.enable_model_summary", "false", "--trainer.default_root_dir", str(tmp_path / "runs")]
    assert main([*fit, "--data.path", "sim.h5", "--run-name", "r", "--trainer.max_epochs", "1"]) == 0
    run = tmp_path / "runs" / "r"
    import yaml

    assert yaml.safe_load((run / "config.yaml").read_text())["data"]["init_args"]["path"] == str(
        tmp_path / "here" / "sim.h5")
    monkeypatch.chdir(tmp_path / "there")
    assert main(["fit", "--run", str(run), "--trainer.max_epochs", "2"]) == 0
    resumed = yaml.safe_load((run / "config.resume-1.yaml").read_text())["data"]["init_args"]["path"]
    assert resumed == str(tmp_path / "here" / "sim.h5")


def test_a_data_file_remade_in_place_is_refused_for_a_resume_and_noted_for_predict(tmp_path, capsys):
    """A data file re-made under the run's path (another simulation, split or session, same name) kept
    the path that is all a run recorded, and a resume trained on the new file unnoticed. Checkpoints record
    each data file's size and SHA-256: a resume on other bytes is one line, exit 2, the run untouched;
    predict reads the file as it is with a note; the file put back, the resume goes on."""
    from neurodyn.data.synthetic.switching_glm import simulate_switching_glm, write_switching_glm_h5
    from neurodyn.io import file_digest
    from neurodyn.training.checkpoints import DATA_FILES_KEY, RUN_SETTINGS_KEY, read_checkpoint

    data = tmp_path / "sim.h5"

    def simulate(seed: int) -> None:
        write_switching_glm_h5(data, simulate_switching_glm(n_states=2, n_neurons=4, n_sequences=3, n_bins=50,
                                                            seed=seed))

    simulate(1)
    fit = ["fit", "--model", "HMMGLMModule", "--data", "SwitchingGLMDataModule", "--data.n_train", "2",
           "--trainer.logger", "false", "--trainer.enable_progress_bar", "false",
           "--trainer.enable_model_summary", "false", "--trainer.default_root_dir", str(tmp_path / "runs")]
    assert main([*fit, "--data.path", str(data), "--run-name", "r", "--trainer.max_epochs", "1"]) == 0
    run = tmp_path / "runs" / "r"
    first = data.read_bytes()
    recorded = read_checkpoint(run / "checkpoints" / "last.ckpt")[RUN_SETTINGS_KEY][DATA_FILES_KEY]
    assert recorded == {"data.init_args.path": {"path": str(data), **file_digest(data)}}
    simulate(2)  # same sizes, other spikes
    assert data.read_bytes() != first
    before = _digest(run)
    capsys.readouterr()
    assert main(["fit", "--run", str(run), "--trainer.max_epochs", "2"]) == 2
    line = _one_line(capsys)
    assert (f"{run / 'checkpoints' / 'last.ckpt'}: data.init_args.path: {data} is not the file the run read"
            in line and "a resumed run continues on the data it began with" in line), line
    assert _digest(run) == before
    out = tmp_path / "pred.h5"
    assert main(["predict", "--run", str(run), "--ckpt_path", "last", "--prediction.path", str(out),
                 "--trainer.enable_progress_bar", "false"]) == 0
    assert f"note: {data} is not the file the run read" in capsys.readouterr().out
    data.write_bytes(first)
    assert main(["fit", "--run", str(run), "--trainer.max_epochs", "2"]) == 0


def test_writing_the_run_config_uses_jsonargparses_current_option_name(tmp_path):
    """config.yaml keeps None settings through jsonargparse's ``skip_unset`` (4.49 and later): the old name,
    chosen before because ``dump`` / ``save`` take ``**kwargs`` and the signature test missed it, warned of
    its removal on every fit."""
    import warnings

    import yaml

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["fit", *TINY, "--trainer.default_root_dir", str(tmp_path), "--run-name", "r",
                     "--trainer.max_epochs", "1", "--trainer.logger", "false"]) == 0
    ours = [w for w in caught if "skip_none" in str(w.message) and "neurodyn" in w.filename]
    assert not ours, [f"{w.filename}:{w.lineno}" for w in ours]
    saved = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())
    assert "optimizer" in saved and saved["optimizer"] is None  # None settings are kept


def test_a_resume_asking_for_fewer_epochs_than_trained_is_one_line(run, capsys):
    """config.yaml keeps the run's first trainer.max_epochs: after an extension (--trainer.max_epochs 3) a bare
    ``fit --run DIR`` asked for 1 and ended in Lightning's MisconfigurationException traceback, exit 1, leaving a
    config.resume-2.yaml of a resume that never ran. Now one line naming the option, nothing written; as many
    epochs as trained is a note."""
    assert main(["fit", "--run", str(run), "--trainer.max_epochs", "3"]) == 0
    before = _digest(run)
    capsys.readouterr()
    assert main(["fit", "--run", str(run)]) == 2
    line = _one_line(capsys)
    assert line.endswith(f"{run / 'checkpoints' / 'last.ckpt'}: trainer.max_epochs: the checkpoint has finished 3 "
                         "epochs, more than trainer.max_epochs 1 asks for in all: give --trainer.max_epochs above 3 "
                         "to train on"), line
    assert _digest(run) == before
    assert main(["fit", "--run", str(run), "--trainer.max_epochs", "3"]) == 0
    assert "note: the checkpoint has finished all 3 epochs" in capsys.readouterr().out
    # nothing trained, nothing written (was a config.resume-2.yaml and a tensorboard file of a fit that never ran)
    assert _digest(run) == before


def test_the_resume_command_of_a_stopped_extension_names_its_length(run):
    """A stop prints the command that resumes; for a run extended beyond config.yaml's max_epochs a bare
    ``fit --run DIR`` would take config.yaml's length (and be refused): the command names the extension's.
    A last.ckpt that has finished all of the stopped fit's max_epochs (a second signal after the last epoch was
    saved) gets no command: it was 'resume with: neurodyn fit --run DIR', which then said 'nothing to train'."""
    from neurodyn.training.runs import run_stopped

    config = run / "config.yaml"  # the run was made for 3 epochs and stopped after its first (last.ckpt: epoch 0)
    assert "  max_epochs: 1\n" in config.read_text()
    config.write_text(config.read_text().replace("  max_epochs: 1\n", "  max_epochs: 3\n", 1))
    assert str(run_stopped(15, run, finished=True, max_epochs=3)).endswith(f"neurodyn fit --run {run}")
    assert str(run_stopped(15, run, finished=True, max_epochs=5)).endswith(
        f"neurodyn fit --run {run} --trainer.max_epochs 5")
    # every length setting that differs from config.yaml's, as the stopped fit was given it; max_time as
    # Lightning reads it (one duration in two spellings is the same setting)
    limits = {"max_epochs": 3, "min_epochs": None, "max_steps": 40, "min_steps": 12, "max_time": {"hours": 1}}
    assert str(run_stopped(15, run, finished=True, max_epochs=3, limits=limits)).endswith(
        f"neurodyn fit --run {run} --trainer.max_steps 40 --trainer.min_steps 12 --trainer.max_time 00:01:00:00")
    config.write_text(config.read_text().replace("  max_time: null\n", "  max_time: 00:01:00:00\n", 1))
    assert str(run_stopped(15, run, finished=True, max_epochs=3, limits=limits)).endswith(
        f"neurodyn fit --run {run} --trainer.max_steps 40 --trainer.min_steps 12")
    assert str(run_stopped(15, run, finished=True, max_epochs=3, limits={**limits, "max_time": None})).endswith(
        f"neurodyn fit --run {run} --trainer.max_steps 40 --trainer.min_steps 12 --trainer.max_time null")
    # a duration of part seconds (DD:HH:MM:SS would round it down) as it was given, quoted for the shell
    assert str(run_stopped(15, run, finished=True, max_epochs=3, limits={"max_time": {"seconds": 90.5}})).endswith(
        f"neurodyn fit --run {run} --trainer.max_time '{{\"seconds\": 90.5}}'")
    for finished in (True, False):
        assert str(run_stopped(15, run, finished=finished, max_epochs=1)) == (
            "interrupted by SIGTERM after the last epoch was saved: the run finished (trainer.max_epochs=1 "
            "reached); nothing to resume")


@pytest.mark.parametrize(("option", "value"), [("--trainer.limit_predict_batches", "0.5"),
                                               ("--trainer.limit_predict_batches", "1"),
                                               ("--trainer.fast_dev_run", "true")])
def test_predict_of_some_batches_is_refused(run, tmp_path, capsys, option, value):
    """``predict --trainer.limit_predict_batches 1`` wrote a file of the first batch's trials with exit 0 (0.5 of
    one batch was a traceback); a prediction file holds every trial."""
    out = tmp_path / "p.h5"
    capsys.readouterr()
    assert main(["predict", "--run", str(run), "--ckpt_path", "last", "--prediction.path", str(out), option,
                 value]) == 2
    field = option[2:]
    assert f"error: {field}: " in _one_line(capsys)
    assert not out.exists()


def test_a_limit_fraction_below_one_batch_is_one_line(run, capsys):
    """Lightning refuses ``limit_val_batches 0.01`` of a one-batch loader only once running: it was a
    traceback, exit 1."""
    capsys.readouterr()
    assert main(["validate", "--run", str(run), "--ckpt_path", "last", "--trainer.limit_val_batches", "0.01"]) == 2
    line = _one_line(capsys)
    assert "error: trainer.limit_val_batches: You requested to check 0.01 of the `val_dataloader`" in line, line


def test_a_checkpoint_of_another_model_family_is_named_first_when_resuming(run, tmp_path, capsys):
    """A LangevinFlow checkpoint given to an HMM-GLM fit was refused for its batch size, then (with that given)
    its evaluation interval, one difference at a time; the family explains them all."""
    capsys.readouterr()
    assert main(["fit", "--config", "configs/hmmglm/synthetic_hmmglm.yaml", "--ckpt_path",
                 str(run / "checkpoints" / "last.ckpt"), "--trainer.default_root_dir", str(tmp_path / "new"),
                 "--trainer.max_epochs", "2"]) == 2
    line = _one_line(capsys)
    assert "neurodyn.family: a LangevinFlowModule checkpoint given to HMMGLMModule" in line, line


def test_a_run_that_never_validated_says_why_it_has_no_best_checkpoint(tmp_path, capsys):
    """A run that selects on valid/loss but stopped before its first validation (its plateau schedule steps
    only on validating epochs: it stopped the fit before) -- ``--ckpt_path best`` blamed
    'no monitor, or save_top_k 0' (the run has both), and predict took last.ckpt without a word."""
    root = tmp_path / "runs"
    assert main(["fit", *TINY, "--trainer.check_val_every_n_epoch", "5", "--trainer.max_epochs", "1",
                 "--trainer.default_root_dir", str(root), "--run-name", "r"]) == 0
    run = root / "r"
    capsys.readouterr()
    assert main(["predict", "--run", str(run), "--ckpt_path", "best", "--prediction.path", str(tmp_path / "a.h5")]) == 2
    line = _one_line(capsys)
    assert "best: the run has no best checkpoint yet: valid/loss was never measured" in line, line
    assert main(["predict", "--run", str(run), "--prediction.path", str(tmp_path / "b.h5")]) == 0
    assert "note: the run has no best checkpoint yet" in capsys.readouterr().out


@pytest.mark.parametrize("sanity", ["2", "0"])
def test_a_monitor_no_validation_logs_is_one_line_naming_the_option(tmp_path, capsys, sanity):
    """``--checkpoint.monitor valid/nonexistent`` trained a whole epoch before Lightning's 'trainer:
    `ModelCheckpoint(monitor=...)` could not find the monitored key in the returned metrics: [every train and
    valid metric] HINT: Did you call `log(...)`'. With a sanity check it is refused before the first epoch."""
    code = main(["fit", *TINY, "--trainer.default_root_dir", str(tmp_path), "--trainer.max_epochs", "2",
                 "--trainer.num_sanity_val_steps", sanity, "--checkpoint.monitor", "valid/nonexistent"])
    out, err = capsys.readouterr()
    assert code == 2 and err.strip().splitlines() == [
        "neurodyn fit: error: checkpoint.monitor: 'valid/nonexistent' is not a metric this run logs at validation "
        "(it logs valid/kl, valid/kl_transition, valid/kl_v0, valid/kl_weight, valid/kl_z0, valid/loss, valid/nll, "
        "valid/rate_r2, valid/total)"], err
    assert ("epoch 1/2" in out) == (sanity == "0"), out  # trained an epoch only without a sanity check
    assert not any(tmp_path.iterdir())  # nothing left behind


def test_info_of_a_checkpoint_wraps_the_model_settings(run, capsys):
    """The ``model settings`` row was one uncut JSON line (~1000 characters for LangevinFlow, ~2900 for
    other models) in a file or a pipe, so every row of the table was padded to its width. It is wrapped now,
    still whole: its lines joined are the checkpoint's settings."""
    import json

    from neurodyn.data.info import ATTR_WIDTH
    from neurodyn.training.checkpoints import read_checkpoint

    capsys.readouterr()
    assert main(["info", str(run / "checkpoints" / "last.ckpt")]) == 0
    lines = capsys.readouterr().out.splitlines()
    # the table's lines; the closing what: / next: lines are command lines kept whole (pasted into a shell)
    table = [line for line in lines if not line.startswith(("what: ", "next: "))]
    assert len(table) == len(lines) - 3
    assert max(len(line.rstrip()) for line in table) < ATTR_WIDTH + 60, max(map(len, table))
    start = next(i for i, line in enumerate(lines) if line.startswith("│ model settings "))
    cells = [lines[start].split("│")[2].strip()]
    for line in lines[start + 1:]:
        parts = line.split("│")
        if len(parts) < 4 or parts[1].strip():
            break
        cells.append(parts[2].strip())
    assert len(cells) > 1
    hparams = read_checkpoint(run / "checkpoints" / "last.ckpt")["hyper_parameters"]
    assert json.loads(" ".join(cells)) == json.loads(json.dumps(
        {k: v for k, v in hparams.items() if not k.startswith("_")}, default=str))


def test_info_summarises_a_run_folder_and_a_checkpoint(run, tmp_path, capsys, monkeypatch):
    """``neurodyn info`` of a run folder said 'folder holds no .nwb files', of a checkpoint 'not an HDF5 file
    (info reads NWB and HDF5 files)' (helper-48): what fit writes could not be read back without Python."""
    import re

    monkeypatch.setenv("COLUMNS", "400")
    capsys.readouterr()
    assert main(["info", str(run)]) == 0
    out = capsys.readouterr().out
    assert f"Run folder {run}" in out and re.search(r"model\s+│ LangevinFlowModule", out), out
    assert re.search(r"data\s+│ LorenzDataModule", out) and re.search(r"trainer.max_epochs\s+│ 1", out), out
    assert re.search(r"last epoch\s+│ 0 \(counted from 0: 1 finished\)", out), out
    assert re.search(r"│ last.ckpt\s+│ [0-9.]+", out) and "│ epoch=0-step=" in out, out  # (a copy: no hard link)
    # sizes in B / kB / MB as the file has them (a small model's checkpoint read '0.0', in MB)
    from neurodyn.io.output import human_size

    size = human_size((run / "checkpoints" / "last.ckpt").stat().st_size)
    assert re.search(rf"│ last.ckpt\s+│ {re.escape(size)}\s", out) and size != "0.0 MB", (size, out)
    # what it is and the commands that take it next (no summary named them)
    assert out.splitlines()[-4] == "what: run folder of neurodyn fit (LangevinFlowModule)", out
    assert [line.split(" --ckpt_path")[0] for line in out.splitlines()[-3:-1]] == [
        f"next: neurodyn predict --run {run}", f"next: neurodyn validate --run {run}"], out
    assert main(["info", str(run / "checkpoints" / "last.ckpt")]) == 0
    out = capsys.readouterr().out
    ckpt, config = run / "checkpoints" / "last.ckpt", run / "config.yaml"
    assert out.splitlines()[-3:] == [
        "what: checkpoint of neurodyn fit (LangevinFlowModule; epochs finished: 1)",
        f"next: neurodyn predict --config {config} --ckpt_path {ckpt} --prediction.path PRED.h5",
        f"next: neurodyn validate --config {config} --ckpt_path {ckpt}"], out
    for field, value in [("model family", "LangevinFlowModule"), ("epoch", r"0 \(counted from 0: 1 finished\)"),
                         ("bin_ms", "20.0"), ("data", r"LorenzDataModule \{\"n_conditions\": 4"),
                         ("model settings", r"\{\"n_heldin\": 29")]:
        assert re.search(rf"│ {field}\s+│ {value}", out), (field, out)
    garbage = tmp_path / "g.ckpt"
    garbage.write_text("hello")
    assert main(["info", str(garbage)]) == 2
    assert capsys.readouterr().err.strip() == (f"neurodyn info: error: {garbage}: checkpoint: not a readable "
                                               "checkpoint: not a torch.save zip archive (truncated, or another "
                                               "kind of file)")


def test_a_kept_copy_of_a_runs_checkpoint_resumes_it_after_the_original_moved_on(run, tmp_path, capsys):
    """``fit --run A --ckpt_path FILE`` took only a file in A's checkpoints folder or a copy with the same bytes as
    one there: a copy of A's last.ckpt kept elsewhere was refused once A's last.ckpt had moved on (its bytes matched
    nothing there any more). Checkpoints record their run's id (A's run.json): a file with A's id is A's, wherever
    it is kept; one with another run's id is refused, saying so."""
    import torch

    kept = tmp_path / "kept" / "epoch1.ckpt"
    kept.parent.mkdir()
    shutil.copy(run / "checkpoints" / "last.ckpt", kept)
    assert main(["fit", "--run", str(run), "--trainer.max_epochs", "2"]) == 0  # last.ckpt: epoch 2's now
    assert kept.read_bytes() != (run / "checkpoints" / "last.ckpt").read_bytes()
    capsys.readouterr()
    assert main(["fit", "--run", str(run), "--ckpt_path", str(kept), "--trainer.max_epochs", "3"]) == 0, \
        capsys.readouterr().err
    assert "max_epochs: 3" in (run / "config.resume-2.yaml").read_text()
    foreign = tmp_path / "kept" / "foreign.ckpt"  # the same state, recorded as another run's
    state = torch.load(kept, map_location="cpu", weights_only=True)
    state["neurodyn"]["run_id"] = "0" * 32
    torch.save(state, foreign)
    before = _digest(run)
    capsys.readouterr()
    assert main(["fit", "--run", str(run), "--ckpt_path", str(foreign), "--trainer.max_epochs", "4"]) == 2
    line = _one_line(capsys)
    assert f"{foreign}: ckpt_path: is not a checkpoint of --run {run} (it records another run's id)" in line, line
    assert _digest(run) == before


def test_a_copy_of_a_run_folder_is_not_the_run_for_its_id(run, tmp_path, capsys):
    """``cp -r a a2`` keeps run.json, id included: ``fit --run a2 --ckpt_path KEPT`` accepted a's checkpoint kept
    elsewhere (the ids matched), and a resume of a2 wrote a's id into its index and checkpoints. The id is a run's only
    in the folder its run.json names: a copy's checkpoints are told by their bytes, and its resume records no id."""
    import json

    import torch

    copy = run.parent / "copy"
    shutil.copytree(run, copy)
    assert main(["fit", "--run", str(run), "--trainer.max_epochs", "2"]) == 0
    kept = tmp_path / "kept.ckpt"
    shutil.copy(run / "checkpoints" / "last.ckpt", kept)  # a's epoch 2, a's id
    before = _digest(copy)
    capsys.readouterr()
    assert main(["fit", "--run", str(copy), "--ckpt_path", str(kept), "--trainer.max_epochs", "3"]) == 2
    line = _one_line(capsys)
    assert f"{kept}: ckpt_path: is not a checkpoint of --run {copy} (not in its checkpoints folder" in line, line
    assert _digest(copy) == before
    assert main(["fit", "--run", str(copy), "--trainer.max_epochs", "2"]) == 0  # the copy resumes, as its own run
    assert "run_id" not in json.loads((copy / "checkpoints" / "checkpoints.json").read_text())
    header = torch.load(copy / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["neurodyn"]
    assert "run_id" not in header
