"""SIGTERM / SIGINT during a fit in several processes (gloo, 2 processes on the CPU) does what it does in one: the
epoch under way finishes in every process, ``last.ckpt`` is an exact resume point, the command says so once and
exits with 128 + the signal number, and the resume equals a run that was never stopped.

Before: under plain ``--trainer.strategy ddp`` a signal to the command's process alone (``kill``, a scheduler's)
stopped it at the epoch's end while the other process trained on and failed at its next exchange (its traceback,
exit code 1); a terminal's signal, which reaches every process, was said once per process; under ``ddp_fork`` /
``ddp_spawn`` the command's process died at once (exit 143, nothing said) while the processes, told by torch that it
had gone, stopped unseen.

The signal is sent from inside the run (``ResumeState.on_train_batch_end`` wrapped by :data:`SIGNAL_COMMAND`), at
the first batch of epoch 1, so that where it lands does not depend on the machine's speed.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from subprocess_env import clean_env, without_cores_note

pytestmark = pytest.mark.xdist_group("ddp_signals")  # one worker runs them one after another (2 processes each)

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "--data", "LorenzDataModule", "--data.n_conditions", "2", "--data.trials_per_condition", "8",
    "--data.batch_size", "2", "--model", "LangevinFlowModule", "--model.config.hidden_size", "8",
    "--model.config.ff_dim", "16", "--model.config.kl_ramp_epochs", "2", "--trainer.enable_model_summary", "false",
    "--trainer.accelerator", "cpu", "--trainer.devices", "2",
]

#: the `neurodyn` command; $SIGNAL_AT = "RANK TARGET SIGNUM": at the first batch of epoch 1 the process of that rank
#: sends the signal to itself ("self") or to the command's process ("command": itself under plain ddp, its parent
#: under ddp_fork, where it then waits until the command's process has handed the signal on)
SIGNAL_COMMAND = """import multiprocessing, os, signal, sys, time

from neurodyn.training import callbacks
from neurodyn.cli import main

rank, target, signum = os.environ["SIGNAL_AT"].split()
after = callbacks.ResumeState.on_train_batch_end


def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
    if after is not None:
        after(self, trainer, pl_module, outputs, batch, batch_idx)
    if trainer.current_epoch == 1 and batch_idx == 0 and str(trainer.global_rank) == rank:
        forked = multiprocessing.parent_process() is not None
        os.kill(os.getppid() if target == "command" and forked else os.getpid(), int(signum))
        outside = getattr(self, "outside", None) if forked and target == "command" else None
        deadline = time.monotonic() + 60
        while outside is not None and not outside.value and time.monotonic() < deadline:
            time.sleep(0.01)


callbacks.ResumeState.on_train_batch_end = on_train_batch_end
sys.exit(main(sys.argv[1:]))
"""


def _fit(tmp: Path, argv: list[str], signal_at: str = "") -> subprocess.CompletedProcess:
    script = tmp / "signal_command.py"
    script.write_text(SIGNAL_COMMAND)
    env = clean_env()
    env.update(OMP_NUM_THREADS="1", SIGNAL_AT=signal_at or "-1 self 15")
    return subprocess.run([sys.executable, str(script), "fit", *argv], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=600)


def _received(signum: int) -> str:
    name = signal.Signals(signum).name
    return f"received {name}: finishing this epoch to save an exact resume point (send {name} again to stop at once)"


def _stopped(signum: int, run: Path) -> str:
    return (f"neurodyn fit: interrupted by {signal.Signals(signum).name} after finishing the epoch; resume with: "
            f"neurodyn fit --run {run}")


def _last(run: Path) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


@pytest.mark.parametrize(("strategy", "rank", "target", "signum", "said"), [
    ("ddp", 0, "command", signal.SIGTERM, True),  # `kill` of the command: the other process trained on
    ("ddp", 1, "self", signal.SIGINT, False),  # the other process's alone: the command's says how the run stopped
    ("ddp_fork", 0, "command", signal.SIGTERM, True),  # the command's process died at once, nothing said
], ids=["ddp-command", "ddp-other-process", "ddp_fork-command"])
def test_a_signal_stops_every_process_at_the_epoch_end(strategy, rank, target, signum, said, tmp_path):
    run = tmp_path / "run"
    argv = [*TINY, "--trainer.strategy", strategy, "--trainer.max_epochs", "6", "--trainer.default_root_dir",
            str(tmp_path), "--run-name", "run"]
    proc = _fit(tmp_path, argv, f"{rank} {target} {signum}")
    assert proc.returncode == 128 + signum, proc.stderr[-3000:]
    assert without_cores_note(proc.stderr) == [_received(signum)] * said + [_stopped(signum, run)], proc.stderr[-3000:]
    assert _last(run)["epoch"] == 1  # the epoch the signal came in was finished, in every process
    assert not (run / ".run.lock").exists()


def test_a_stopped_multi_process_fit_resumes_as_if_never_stopped(tmp_path):
    """Plain ddp, SIGTERM to the command's process at epoch 1: `fit --run` (2 processes again: the run's config)
    to 3 epochs equals a run of 3 epochs never stopped, weights and metrics.csv bit for bit (each process's batches
    are the same float computations in the same order: tolerance 0)."""
    run, straight = tmp_path / "run", tmp_path / "straight"
    common = [*TINY, "--trainer.strategy", "ddp", "--trainer.default_root_dir", str(tmp_path)]
    proc = _fit(tmp_path, [*common, "--trainer.max_epochs", "3", "--run-name", "run"], "0 command 15")
    assert proc.returncode == 128 + signal.SIGTERM and _last(run)["epoch"] == 1, proc.stderr[-3000:]
    proc = _fit(tmp_path, ["--run", str(run)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = _fit(tmp_path, [*common, "--trainer.max_epochs", "3", "--run-name", "straight"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = _last(run), _last(straight)
    assert a["epoch"] == b["epoch"] == 2
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in b["state_dict"])
    assert (run / "metrics.csv").read_text() == (straight / "metrics.csv").read_text()
