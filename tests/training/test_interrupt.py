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
_DIST_VARS = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK",
              "LOCAL_WORLD_SIZE", "NEURODYN_RUN_DIR")


def _clean_env() -> dict[str, str]:
    """This process's environment without the variables of a distributed run (a subprocess starts fresh)."""
    return {k: v for k, v in os.environ.items() if k not in _DIST_VARS}


def _start_fit(root: Path) -> subprocess.Popen:
    code = "import sys; from neurodyn.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**_clean_env(), "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
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
    env = {**_clean_env(), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", _SIGNAL_AT, where, "fit", *TINY, "--trainer.default_root_dir",
                           str(tmp_path / "runs"), "--trainer.max_epochs", "1"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=240)
    assert proc.returncode == 128 + signal.SIGTERM, (proc.returncode, proc.stderr[-2000:])
    assert proc.stderr.strip().splitlines()[-1] == "neurodyn fit: interrupted (SIGTERM); nothing partial was kept"
    assert not (tmp_path / "runs").exists()
