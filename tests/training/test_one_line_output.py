"""Bad input found after the Trainer exists is the only line a training command prints, on stdout and stderr
together: not Lightning's device banner ("GPU available: False, used: False", "TPU available: ..."), "Restoring
states from the checkpoint ...", the model summary or a note first. A successful run still prints them all.

On the command line Lightning gives its loggers a console handler (the root logger has none); under pytest the
root logger has pytest's handlers, so Lightning's lines would go to them and not to the captured output:
:func:`lightning_console` gives the loggers the handler they have on the command line.
:func:`test_the_command_line_prints_one_line` runs one case as a real process.
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from subprocess_env import clean_env

from neurodyn.cli import main

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "--data", "LorenzDataModule",
    "--data.n_conditions", "4", "--data.trials_per_condition", "5", "--data.batch_size", "8",
    "--model.init_args.config.hidden_size", "8", "--model.init_args.config.ff_dim", "16",
    "--trainer.enable_progress_bar", "false", "--trainer.accelerator", "cpu",
]
HMM_TINY = ["--model", "HMMGLMModule", "--data", "SwitchingGLMDataModule", "--data.n_sequences", "4",
            "--data.n_bins", "50", "--data.n_train", "2", "--trainer.accelerator", "cpu"]
BANNER = "GPU available: "


@pytest.fixture
def lightning_console(monkeypatch):
    """Lightning's loggers with the console handler they get where the root logger has none (its
    ``lightning/pytorch/__init__.py``), as in the ``neurodyn`` command."""
    for name in ("lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        monkeypatch.setattr(logger, "handlers", [logging.StreamHandler()])
        monkeypatch.setattr(logger, "propagate", False)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    assert main(["fit", *TINY, "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(root),
                 "--run-name", "run"]) == 0
    return root / "run"


def _cases(run: Path, tmp: Path) -> dict[str, tuple[list[str], str]]:
    """case -> (argv, the start of the one line; the whole line where neurodyn words it)"""
    last = run / "checkpoints" / "last.ckpt"
    out = ["--prediction.path", str(tmp / "p.h5")]
    return {
        # the checkpoint against the data (was checked after the Trainer was built)
        "validate-neurons": (["validate", "--run", str(run), "--ckpt_path", "last", "--data.n_neurons", "12"],
                             f"neurodyn validate: error: {last}: neurodyn.sizes.n_heldin: checkpoint was trained "
                             "with n_heldin=29 but the data has 12"),
        "predict-neurons": (["predict", "--run", str(run), "--ckpt_path", "last", "--data.n_neurons", "12", *out],
                            f"neurodyn predict: error: {last}: neurodyn.sizes.n_heldin: checkpoint was trained "
                            "with n_heldin=29 but the data has 12"),
        # a note of the run's own (an evaluation setting the user changed), then bad input
        "test-note-neurons": (["test", "--run", str(run), "--ckpt_path", "last", "--data.n_neurons", "12",
                               "--model.config.n_eval_samples", "3"],
                              f"neurodyn test: error: {last}: neurodyn.sizes.n_heldin: checkpoint was trained "
                              "with n_heldin=29 but the data has 12"),
        # refused by neurodyn once the Trainer exists
        "predict-limit": (["predict", "--run", str(run), "--trainer.limit_predict_batches", "1", *out],
                          "neurodyn predict: error: trainer.limit_predict_batches: 1 would write a prediction file "
                          "of some of the trials; predict writes every trial (drop the option)"),
        "predict-fast-dev-run": (["predict", "--run", str(run), "--trainer.fast_dev_run", "true", *out],
                                 "neurodyn predict: error: trainer.fast_dev_run: True would write a prediction file "
                                 "of some of the trials; predict writes every trial (drop the option)"),
        "fit-hmmglm-ddp": (["fit", *HMM_TINY, "--trainer.strategy", "ddp", "--trainer.devices", "2",
                            "--trainer.default_root_dir", str(tmp / "runs")],
                           "neurodyn fit: error: trainer.strategy: HMMGLMModule trains in one process"),
        # refused by Lightning once running: after "Restoring states ..." / the model summary
        "validate-limit": (["validate", "--run", str(run), "--trainer.limit_val_batches", "0.001"],
                           "neurodyn validate: error: trainer.limit_val_batches: You requested to check 0.001 of "
                           "the `val_dataloader`"),
        "test-limit": (["test", "--run", str(run), "--trainer.limit_test_batches", "0.001"],
                       "neurodyn test: error: trainer.limit_test_batches: You requested to check 0.001 of the "
                       "`test_dataloader`"),
        "fit-limit-train": (["fit", *TINY, "--trainer.max_epochs", "1", "--trainer.limit_train_batches", "0.001",
                             "--trainer.default_root_dir", str(tmp / "runs")],
                            "neurodyn fit: error: trainer.limit_train_batches: You requested to check 0.001 of the "
                            "`train_dataloader`"),
        "fit-limit-val": (["fit", *TINY, "--trainer.max_epochs", "1", "--trainer.limit_val_batches", "0.001",
                           "--trainer.default_root_dir", str(tmp / "runs")],
                          "neurodyn fit: error: trainer.limit_val_batches: You requested to check 0.001 of the "
                          "`val_dataloader`"),
        # the prediction writer's options, which only predict uses (fit / validate / test ignored them silently)
        "fit-prediction-path": (["fit", *TINY, "--trainer.max_epochs", "1", *out,
                                 "--trainer.default_root_dir", str(tmp / "runs")],
                                "neurodyn fit: error: prediction.path: only `neurodyn predict` writes a prediction "
                                "file; fit would ignore it"),
        "validate-prediction-path": (["validate", "--run", str(run), f"--prediction.path={tmp / 'p.h5'}"],
                                     "neurodyn validate: error: prediction.path: only `neurodyn predict` writes a "
                                     "prediction file; validate would ignore it"),
        "test-prediction-overwrite": (["test", "--run", str(run), "--prediction.overwrite", "true"],
                                      "neurodyn test: error: prediction.overwrite: only `neurodyn predict` writes a "
                                      "prediction file; test would ignore it"),
        # Lightning's ValueError after the sanity check: a traceback
        "fit-val-check-interval": (["fit", *TINY, "--trainer.max_epochs", "1", "--trainer.val_check_interval", "100",
                                    "--trainer.default_root_dir", str(tmp / "runs")],
                                   "neurodyn fit: error: trainer.val_check_interval: 100 batches is more than an "
                                   "epoch's 2 training batches: give at most 2, a fraction of the epoch (0.5), or "
                                   "trainer.check_val_every_n_epoch null to count batches across epochs"),
    }


@pytest.mark.parametrize("case", ["validate-neurons", "predict-neurons", "test-note-neurons", "predict-limit",
                                  "predict-fast-dev-run", "fit-hmmglm-ddp", "validate-limit", "test-limit",
                                  "fit-limit-train", "fit-limit-val", "fit-val-check-interval",
                                  "fit-prediction-path", "validate-prediction-path", "test-prediction-overwrite"])
def test_bad_input_found_late_is_the_only_line(case, run, tmp_path, lightning_console, capsys):
    argv, line = _cases(run, tmp_path)[case]
    capsys.readouterr()
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "", captured.out
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(line), lines
    assert not (tmp_path / "p.h5").exists() and not (tmp_path / "runs").exists()


def test_a_good_run_still_prints_the_banner_notes_and_summary(run, tmp_path, lightning_console, capsys):
    """What was held until the run started is printed then, in order."""
    capsys.readouterr()
    assert main(["fit", *TINY, "--trainer.max_epochs", "1", "--trainer.default_root_dir", str(tmp_path),
                 "--run-name", "a"]) == 0
    out = capsys.readouterr().out
    order = [out.find(text) for text in (BANNER, "TPU available: ", "trainable params", "epoch 1/1", "run folder: ")]
    assert -1 not in order and order == sorted(order), out
    assert main(["validate", "--run", str(run), "--ckpt_path", "last", "--model.config.n_eval_samples", "3"]) == 0
    out = capsys.readouterr().out
    order = [out.find(text) for text in ("note: model.init_args.config.n_eval_samples: validate uses 3", BANNER,
                                         "Restoring states from the checkpoint", "valid/loss")]
    assert -1 not in order and order == sorted(order), out


def test_the_command_line_prints_one_line(run, tmp_path):
    """The `neurodyn` command itself (Lightning's own console handler): stdout empty, one line on stderr."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("NEURODYN_DEBUG", None)
    argv, line = _cases(run, tmp_path)["validate-limit"]
    proc = subprocess.run([sys.executable, "-m", "neurodyn.cli", *argv], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=240)
    assert proc.returncode == 2 and proc.stdout == "", (proc.stdout, proc.stderr)
    assert len(proc.stderr.splitlines()) == 1 and proc.stderr.startswith(line), proc.stderr


def test_a_checkpoint_of_other_data_is_refused_before_the_trainer_is_built(run, monkeypatch, capsys):
    """The checkpoint is checked against the model and the data as soon as they exist: no Trainer is built for a
    run that cannot start (it was checked when the run started)."""
    from neurodyn.training.cli import NeurodynCLI

    built = []
    real = NeurodynCLI._trainer_or_input_error
    monkeypatch.setattr(NeurodynCLI, "_trainer_or_input_error", lambda self, *a: built.append(1) or real(self, *a))
    assert main(["validate", "--run", str(run), "--ckpt_path", "last", "--data.n_neurons", "12"]) == 2
    assert "neurodyn.sizes.n_heldin" in capsys.readouterr().err and built == []
    assert main(["validate", "--run", str(run), "--ckpt_path", "last"]) == 0
    assert built == [1]


def test_the_held_output_survives_ddp_spawn(run, tmp_path):
    """ddp_spawn pickles the trainer (and through its config saver the CLI) into new processes: the held stream
    pickles as the new process's own standard output (it was a TypeError, cannot pickle the terminal), and what
    was held is printed before the run goes on in them (else the banner came after the metrics table)."""
    import pickle

    from neurodyn.training.quiet import HeldStream

    copy = pickle.loads(pickle.dumps(HeldStream(sys.stdout)))
    assert isinstance(copy, HeldStream) and copy._held is None

    env = {k: v for k, v in clean_env(OMP_NUM_THREADS="1").items() if k != "NEURODYN_DEBUG"}
    proc = subprocess.run([sys.executable, "-m", "neurodyn.cli", "validate", "--run", str(run), "--ckpt_path", "last",
                           "--trainer.strategy", "ddp_spawn", "--trainer.devices", "1", "--trainer.accelerator", "cpu"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    banner, table = proc.stdout.find(BANNER), proc.stdout.find("valid/loss")
    assert 0 <= banner < table, proc.stdout


class _Terminal(io.StringIO):
    """Standard output that is a terminal (the training commands then draw rich's progress bar on it)."""

    def isatty(self) -> bool:
        return True


_SANITY_BAR_RUN = """
import json, logging, sys
from pathlib import Path
from lightning.pytorch.callbacks import RichProgressBar
from neurodyn.cli import main
import io

class Terminal(io.StringIO):
    def isatty(self):
        return True

for name in ("lightning.pytorch", "lightning.fabric"):
    logging.getLogger(name).handlers = [logging.StreamHandler()]
    logging.getLogger(name).propagate = False
argv, report = json.loads(sys.argv[1]), Path(sys.argv[2])
real_stdout, terminal, seen = sys.stdout, Terminal(), []
sys.stdout = terminal
real = RichProgressBar.on_sanity_check_end

def at_sanity_end(self, trainer, pl_module):
    self.refresh()  # the frame rich's timer draws next (whether it drew one yet depends on the machine's speed)
    seen.append(terminal.getvalue())
    real(self, trainer, pl_module)

RichProgressBar.on_sanity_check_end = at_sanity_end
code = main(argv)
report.write_text(json.dumps({"code": code, "seen": seen, "out": terminal.getvalue()}))
"""


def test_the_sanity_check_bar_is_drawn_while_the_sanity_check_runs(tmp_path):
    """On a terminal the sanity check's progress bar was held with the banner and the model summary and written
    when training began: nothing moved while the sanity check ran, then all its frames at once. It is drawn
    while the sanity check runs, after what was held, and nothing of it comes once training has begun. Run in a
    process of its own, as the command is (rich's console and Lightning's loggers are made once per process)."""
    import json

    bar = TINY.index("--trainer.enable_progress_bar")
    argv = ["fit", *TINY[:bar], *TINY[bar + 2:], "--trainer.max_epochs", "1",  # the default: a bar on a terminal
            "--trainer.default_root_dir", str(tmp_path), "--run-name", "a"]
    report = tmp_path / "report.json"
    env = {**os.environ, "TERM": "xterm", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", _SANITY_BAR_RUN, json.dumps(argv), str(report)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and report.exists(), proc.stderr[-3000:]
    result = json.loads(report.read_text())
    seen, out = result["seen"], result["out"]
    assert result["code"] == 0
    assert len(seen) == 1 and BANNER in seen[0] and "Sanity Checking" in seen[0], seen
    order = [out.find(text) for text in (BANNER, "trainable params", "Sanity Checking", "Epoch 0/0", "run folder: ")]
    assert -1 not in order and order == sorted(order), out
    assert out.rfind("Sanity Checking") < out.find("Epoch 0/0"), out
