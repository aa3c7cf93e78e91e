"""SIGTERM / SIGINT during `neurodyn fit`: the epoch finishes, last.ckpt is saved, the process exits with
128 + the signal number and says how to resume; resuming gives the same weights as an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from subprocess_env import clean_env

from neurodyn.cli import main

TINY = [
    "--data", "LorenzDataModule",
    # ~20 batches per epoch: a signal sent at an epoch line lands inside the next epoch, not after it
    "--data.n_conditions", "4", "--data.trials_per_condition", "40", "--data.batch_size", "6",
    "--model.init_args.config.hidden_size", "8", "--model.init_args.config.ff_dim", "16",
    "--model.init_args.config.kl_ramp_epochs", "2",
    "--trainer.enable_model_summary", "false", "--trainer.accelerator", "cpu",
]
ROOT = Path(__file__).resolve().parents[2]


def _start_fit(root: Path) -> subprocess.Popen:
    code = "import sys; from neurodyn.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**clean_env(), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", code, "fit", *TINY, "--trainer.default_root_dir", str(root), "--run-name", "run",
         "--trainer.max_epochs", "200"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_saves_and_resume_matches_an_uninterrupted_run(tmp_path, signum):
    proc = _start_fit(tmp_path)
    deadline = time.monotonic() + 240
    for line in proc.stdout:  # one line per epoch (stdout is not a terminal)
        if line.startswith("epoch 2/"):
            break
        assert time.monotonic() < deadline, "no epoch line"
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 128 + signum, err[-2000:]
    message = [line for line in err.splitlines() if "interrupted" in line]
    assert message and f"interrupted by {signal.Signals(signum).name}" in message[-1]
    assert f"neurodyn fit --run {tmp_path / 'run'}" in message[-1]
    run = tmp_path / "run"
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    stopped = last["epoch"]
    # the epoch under way when the signal came (index >= 2: it came after epoch 2's line) was finished, then
    # training stopped (Lightning's own SIGTERM handler would stop after the next batch: last.ckpt = epoch 1)
    assert 2 <= stopped < 199
    assert not list((run / "checkpoints").glob("*.part"))
    assert not (run / ".run.lock").exists()  # the run folder's lock is released on a signal

    n = stopped + 3
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the interrupted process: float reductions depend on the thread count
    try:
        assert main(["fit", "--run", str(run), "--trainer.max_epochs", str(n)]) == 0
        assert main(["fit", *TINY, "--trainer.default_root_dir", str(tmp_path), "--run-name", "straight",
                     "--trainer.max_epochs", str(n)]) == 0
    finally:
        torch.set_num_threads(threads)
    a = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    b = torch.load(tmp_path / "straight" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert a["epoch"] == b["epoch"] == n - 1
    for key in b["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    assert (run / "metrics.csv").read_text() == (tmp_path / "straight" / "metrics.csv").read_text()


_SIGNAL_AT = """
import importlib, os, signal, sys
from neurodyn.cli import main
where = sys.argv[1]
if where == "import":  # while the command's modules load (torch, Lightning: seconds)
    load = importlib.import_module
    def import_module(name, *a):
        if name == "neurodyn.training.cli":
            os.kill(os.getpid(), signal.SIGTERM)
        return load(name, *a)
    importlib.import_module = import_module
else:  # while LightningCLI builds the data and the model, before Lightning's own handler is installed
    from neurodyn.training.datamodules import LorenzDataModule
    import functools
    init = LorenzDataModule.__init__
    @functools.wraps(init)  # the signature jsonargparse reads
    def patched(self, *a, **k):
        init(self, *a, **k)
        os.kill(os.getpid(), signal.SIGTERM)
    LorenzDataModule.__init__ = patched
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("where", ["import", "build"])
def test_a_signal_during_start_up_is_one_line_and_leaves_nothing(tmp_path, where):
    """SIGTERM in the first seconds of a fit (modules loading, arguments parsed, data and model built) killed
    the process with no word (exit 143 from the shell, -15 here) before neurodyn or Lightning had a handler."""
    env = {**clean_env(), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", _SIGNAL_AT, where, "fit", *TINY, "--trainer.default_root_dir",
                           str(tmp_path / "runs"), "--trainer.max_epochs", "1"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=240)
    assert proc.returncode == 128 + signal.SIGTERM, (proc.returncode, proc.stderr[-2000:])
    assert proc.stderr.strip().splitlines()[-1] == "neurodyn fit: interrupted (SIGTERM); nothing partial was kept"
    assert not (tmp_path / "runs").exists()


# -- a signal during the epoch that ends the fit anyway: a finished run -------------------------------------
SMALL = [
    "--data", "LorenzDataModule",
    "--data.n_conditions", "4", "--data.trials_per_condition", "5", "--data.batch_size", "4",
    "--model.init_args.config.hidden_size", "8", "--model.init_args.config.ff_dim", "16",
    "--trainer.enable_model_summary", "false", "--trainer.enable_progress_bar", "false",
    "--trainer.accelerator", "cpu",
]
EARLY_STOPPING = """trainer:
  callbacks:
    - class_path: lightning.pytorch.callbacks.EarlyStopping
      init_args: {monitor: valid/loss, mode: min, min_delta: 1.0e9, patience: 1}
"""


@pytest.mark.parametrize(("ending", "signum", "extra", "reason"), [
    ("max_epochs", signal.SIGTERM, ["--trainer.max_epochs", "2"], "trainer.max_epochs=2 reached"),
    ("max_epochs", signal.SIGINT, ["--trainer.max_epochs", "2"], "trainer.max_epochs=2 reached"),
    # the 5th optimizer step is the last (mid-epoch: 20 trials in batches of 4, a few of them held out)
    ("max_steps", signal.SIGTERM, ["--trainer.max_epochs", "50", "--trainer.max_steps", "5"],
     "trainer.max_steps=5 reached"),
    # min_delta 1e9: the first validation improves on inf, the second cannot; patience 1 stops epoch 1
    ("early_stopping", signal.SIGTERM, ["--trainer.max_epochs", "50"], "EarlyStopping on valid/loss stopped it"),
    ("max_time", signal.SIGTERM, ["--trainer.max_epochs", "50", "--trainer.max_time", "00:01:00:00"],
     "trainer.max_time used up"),
], ids=["max_epochs-SIGTERM", "max_epochs-SIGINT", "max_steps", "early_stopping", "max_time"])
def test_a_signal_during_the_last_epoch_leaves_a_finished_run(tmp_path, monkeypatch, capsys, ending, signum, extra,
                                                               reason):
    """A first signal during the epoch that ends the fit anyway (max_epochs, max_steps, max_time, early stopping)
    exited 128 + signum with 'interrupted by SIGTERM after finishing the epoch; resume with: neurodyn fit --run
    ...', a command that then only said there was nothing to train. The run finished: exit 0, a line that says
    so and names the signal, no resume command. The signal is sent from inside a training step (in this
    process, so it lands on a known batch): epoch 1's first batch, or max_steps' last step."""
    import functools

    import lightning.pytorch.callbacks.timer as timer_module

    from neurodyn.training.module import LangevinFlowModule

    step = LangevinFlowModule.training_step
    clock = {"shift": 0.0}
    real_time = timer_module.time

    class TimerClock:  # the Timer's own clock: jumps past max_time when the signal is sent
        def __getattr__(self, name):
            return getattr(real_time, name)

        def monotonic(self):
            return real_time.monotonic() + clock["shift"]

    monkeypatch.setattr(timer_module, "time", TimerClock())

    @functools.wraps(step)
    def signalling_step(self, batch, batch_idx):
        last = self.global_step == 4 if ending == "max_steps" else (self.current_epoch == 1 and batch_idx == 0)
        if last:
            os.kill(os.getpid(), signum)
            if ending == "max_time":
                clock["shift"] = 7200.0
        return step(self, batch, batch_idx)

    monkeypatch.setattr(LangevinFlowModule, "training_step", signalling_step)
    config = []
    if ending == "early_stopping":
        (tmp_path / "early.yaml").write_text(EARLY_STOPPING)
        config = ["--config", str(tmp_path / "early.yaml")]
    capsys.readouterr()
    code = main(["fit", *config, *SMALL, *extra, "--trainer.default_root_dir", str(tmp_path), "--run-name", "run"])
    out, err = capsys.readouterr()
    name = signal.Signals(signum).name
    assert code == 0, err[-2000:]
    if ending == "max_time":  # the run stopped unfinished, as max_time would have stopped it: that line follows
        assert f"{name} arrived during the last epoch: the run stopped there anyway ({reason})" in err, err
        assert "trainer.max_time 00:01:00:00 used up after epoch 2/50" in err, err
    else:
        assert f"{name} arrived during the last epoch: the run finished ({reason}); nothing to resume" in err, err
    assert "resume with" not in err and "interrupted" not in err
    assert f"run folder: {tmp_path / 'run'}" in out
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert last["epoch"] == 1  # the signal's epoch (epoch 1 for max_steps too: 5 steps outlast epoch 0)
    assert {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)} == {
        signal.SIGTERM: signal.SIG_DFL, signal.SIGINT: signal.default_int_handler}


def test_a_signal_before_the_last_epoch_still_stops_with_the_resume_command(tmp_path, monkeypatch, capsys):
    """The control of the test above, in the same harness: a signal in epoch 0 of 3 stops after that epoch, exit
    143, with the command that resumes."""
    import functools

    from neurodyn.training.module import LangevinFlowModule

    step = LangevinFlowModule.training_step

    @functools.wraps(step)
    def signalling_step(self, batch, batch_idx):
        if self.current_epoch == 0 and batch_idx == 0:
            os.kill(os.getpid(), signal.SIGTERM)
        return step(self, batch, batch_idx)

    monkeypatch.setattr(LangevinFlowModule, "training_step", signalling_step)
    capsys.readouterr()
    code = main(["fit", *SMALL, "--trainer.max_epochs", "3", "--trainer.default_root_dir", str(tmp_path),
                 "--run-name", "run"])
    err = capsys.readouterr().err
    assert code == 128 + signal.SIGTERM
    assert f"interrupted by SIGTERM after finishing the epoch; resume with: neurodyn fit --run {tmp_path / 'run'}" \
        in err, err


@pytest.mark.parametrize("signal_epoch", [0, 1], ids=["before-early-stopping", "with-early-stopping"])
def test_a_signal_before_min_epochs_stops_at_the_epoch_end_and_resumes_exactly(tmp_path, monkeypatch, capsys,
                                                                                signal_epoch):
    """With --trainer.min_epochs, Lightning ignores trainer.should_stop until min_epochs are done: a first SIGTERM
    in epoch 0 of a fit with min_epochs 4 said 'finishing this epoch', printed Lightning's 'Training will
    continue...' and trained on to epoch 3 (in epoch 1, where EarlyStopping also stops, it then called the run
    finished, exit 0). It stops at the end of the signal's epoch, exit 143 with the resume command; the resume
    honours min_epochs (EarlyStopping, which stops epoch 1, is held off to epoch 3 as in the straight run) and
    equals the straight run bit for bit."""
    import functools

    from neurodyn.training.module import LangevinFlowModule

    step = LangevinFlowModule.training_step
    armed = {"on": True}

    @functools.wraps(step)
    def signalling_step(self, batch, batch_idx):
        if armed["on"] and self.current_epoch == signal_epoch and batch_idx == 0:
            os.kill(os.getpid(), signal.SIGTERM)
        return step(self, batch, batch_idx)

    monkeypatch.setattr(LangevinFlowModule, "training_step", signalling_step)
    (tmp_path / "early.yaml").write_text(EARLY_STOPPING)  # stops epoch 1, but for min_epochs
    args = ["--config", str(tmp_path / "early.yaml"), *SMALL, "--trainer.max_epochs", "6", "--trainer.min_epochs",
            "4", "--trainer.default_root_dir", str(tmp_path)]
    run = tmp_path / "run"
    capsys.readouterr()
    code = main(["fit", *args, "--run-name", "run"])
    out, err = capsys.readouterr()
    armed["on"] = False
    assert code == 128 + signal.SIGTERM, err[-2000:]
    assert "Training will continue" not in out + err
    assert f"interrupted by SIGTERM after finishing the epoch; resume with: neurodyn fit --run {run}" in err, err
    assert torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["epoch"] == signal_epoch

    assert main(["fit", "--run", str(run)]) == 0
    assert main(["fit", *args, "--run-name", "straight"]) == 0
    a = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    b = torch.load(tmp_path / "straight" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert a["epoch"] == b["epoch"] == 3  # min_epochs 4, though EarlyStopping asked to stop after epoch 1
    for key in b["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    assert (run / "metrics.csv").read_text() == (tmp_path / "straight" / "metrics.csv").read_text()


def test_the_resume_command_of_a_stopped_extension_carries_its_length_settings(tmp_path, monkeypatch, capsys):
    """A fit that was itself a resume with other length settings than the run's config.yaml (here
    ``--trainer.max_epochs 6 --trainer.min_epochs 4``, EarlyStopping asking to stop after epoch 1), stopped by
    SIGTERM: the printed command named only ``--trainer.max_epochs 6``, and running it stopped at epoch 2 (the
    config.yaml's min_epochs, none) where the fit it resumes would have trained to epoch 3. The command names
    every length setting that differs, and running it as printed equals the extension never stopped."""
    import functools
    import shlex

    from neurodyn.training.module import LangevinFlowModule

    step = LangevinFlowModule.training_step
    armed = {"on": False}

    @functools.wraps(step)
    def signalling_step(self, batch, batch_idx):
        if armed["on"] and self.current_epoch == 1 and batch_idx == 0:
            os.kill(os.getpid(), signal.SIGTERM)
        return step(self, batch, batch_idx)

    monkeypatch.setattr(LangevinFlowModule, "training_step", signalling_step)
    (tmp_path / "early.yaml").write_text(EARLY_STOPPING)
    first = ["--config", str(tmp_path / "early.yaml"), *SMALL, "--trainer.max_epochs", "1",
             "--trainer.default_root_dir", str(tmp_path)]
    longer = ["--trainer.max_epochs", "6", "--trainer.min_epochs", "4"]
    run, twin = tmp_path / "run", tmp_path / "twin"
    assert main(["fit", *first, "--run-name", "run"]) == 0
    assert main(["fit", *first, "--run-name", "twin"]) == 0
    assert main(["fit", "--run", str(twin), *longer]) == 0  # the extension, never stopped

    capsys.readouterr()
    armed["on"] = True
    code = main(["fit", "--run", str(run), *longer])
    armed["on"] = False
    err = capsys.readouterr().err
    assert code == 128 + signal.SIGTERM, err[-2000:]
    line = next(line for line in err.splitlines() if "resume with: " in line)
    command = line.split("resume with: ", 1)[1]
    assert command == f"neurodyn fit --run {run} --trainer.max_epochs 6 --trainer.min_epochs 4", line

    words = shlex.split(command)
    assert words[:2] == ["neurodyn", "fit"]
    assert main(words[1:]) == 0
    a = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    b = torch.load(twin / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert a["epoch"] == b["epoch"] == 3  # min_epochs 4 holds EarlyStopping off to epoch 3
    for key in b["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    assert (run / "metrics.csv").read_text() == (twin / "metrics.csv").read_text()
