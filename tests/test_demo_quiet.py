"""``neurodyn demo`` shows a new user the results, not Lightning's noise: no advertising tip, no torch ``_pytree``
deprecation warning, no ``log_every_n_steps`` warning (the demo logs epoch metrics only)."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings

import pytest

#: what the demo printed before (Lightning 2.6 / torch 2.13): one pattern per message, matched in stdout + stderr
NOISE = {
    "Lightning's advertising tip": "💡 Tip",
    "torch _pytree deprecation": "LeafSpec",
    "log_every_n_steps warning": "smaller than the logging interval",
}


def test_demo_prints_no_lightning_noise(tmp_path):
    nodata = tmp_path / "nodata"  # no MC_Maze_Small file: the demo skips preparing it
    nodata.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NEURODYN_DEMO_EPOCHS": "1", "NEURODYN_TEST_DATA": str(nodata)}
    env.pop("NEURODYN_DEBUG", None)
    env.pop("PYTHONWARNINGS", None)
    proc = subprocess.run([sys.executable, "-m", "neurodyn.cli", "demo", "--out", str(tmp_path / "demo")],
                          cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout
    assert "Lorenz validation rate R2: LangevinFlow" in proc.stdout
    # the smoothing width and whether it is at the edge of its grid are stated (the width was chosen at the
    # largest of a fixed grid, 12 bins, without a word; on these data the spikes' likelihood rises up to the
    # trial length)
    assert ("Gaussian smoothing: sigma 96 bins, chosen by the training spikes' leave-one-bin-out likelihood; "
            "at the widest edge of the grid") in proc.stdout, proc.stdout
    assert (tmp_path / "demo" / "lorenz_rates.png").is_file()
    found = [name for name, text in NOISE.items() if text in proc.stdout]
    assert not found, f"{found} in the demo's output:\n{proc.stdout}"
    # stdout is a pipe: one line per epoch, no progress bar (it read 'Epoch 0/0' in a log)
    assert "Epoch 0/" not in proc.stdout and "epoch 1/" in proc.stdout, proc.stdout
    # a rerun into the same folder keeps each run's checkpoint beside its logs, not mixed into one folder
    # (before: Lightning warned 'Checkpoint directory ... exists and is not empty' and both files sat together)
    env["NEURODYN_DEMO_EPOCHS"] = "2"
    again = subprocess.run([sys.executable, "-m", "neurodyn.cli", "demo", "--out", str(tmp_path / "demo"),
                            "--overwrite"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=600)
    assert again.returncode == 0, again.stdout
    assert "exists and is not empty" not in again.stdout, again.stdout
    runs = {p.name: sorted(c.name for c in p.iterdir()) for p in (tmp_path / "demo" / "checkpoints").iterdir()}
    assert runs == {"version_0": ["checkpoints.json", "epoch=0-step=20.ckpt"],
                    "version_1": ["checkpoints.json", "epoch=1-step=40.ckpt"]}, runs
    assert sorted(p.name for p in (tmp_path / "demo" / "logs").iterdir()) == ["version_0", "version_1"]


@pytest.mark.parametrize("situations", [False, True])
def test_quiet_lightning_keeps_other_warnings(situations):
    """Only the known Lightning messages are dropped: a warning that matters (a NaN loss, say) still shows. The
    demo (``situations=False``) keeps the warnings about situations the training commands create on purpose."""
    from neurodyn.training.quiet import quiet_lightning

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with quiet_lightning(situations=situations):
            warnings.warn("The number of training batches (20) is smaller than the logging interval "
                          "Trainer(log_every_n_steps=50).", UserWarning, stacklevel=1)
            warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated, use ...", FutureWarning, stacklevel=1)
            warnings.warn("Checkpoint directory d/checkpoints exists and is not empty.", UserWarning, stacklevel=1)
            warnings.warn("loss is NaN at epoch 3", RuntimeWarning, stacklevel=1)
    kept = ["loss is NaN at epoch 3"] if situations else [
        "Checkpoint directory d/checkpoints exists and is not empty.", "loss is NaN at epoch 3"]
    assert [str(w.message) for w in seen] == kept


#: ``neurodyn demo`` with $SIGNAL sent to itself at the first training batch
DEMO_SIGNAL = """import os, sys

from neurodyn.cli import main
from neurodyn.training.module import LangevinFlowModule

step = LangevinFlowModule.training_step


def training_step(self, *args, **kwargs):
    os.kill(os.getpid(), int(os.environ["SIGNAL"]))
    return step(self, *args, **kwargs)


LangevinFlowModule.training_step = training_step
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("signum", [15, 2])
def test_a_signal_while_the_demo_trains_is_one_line(signum, tmp_path):
    """A SIGTERM while the demo trained ended it with exit code 0, '[rank: 0] Received SIGTERM: 15' on stdout and
    nothing on stderr (Lightning's orderly stop), a Ctrl-C with exit code 1 (Lightning's ``sys.exit(1)``), each
    leaving the cut-short run's log and checkpoint folders. Now: the command's one line, 128 + the signal, and
    only the simulation cache (written whole before training, reused by the next run)."""
    import signal

    nodata = tmp_path / "nodata"
    nodata.mkdir()
    script = tmp_path / "demo_signal.py"
    script.write_text(DEMO_SIGNAL)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NEURODYN_TEST_DATA": str(nodata), "SIGNAL": str(signum)}
    env.pop("NEURODYN_DEBUG", None)
    proc = subprocess.run([sys.executable, str(script), "demo", "--out", str(tmp_path / "demo"), "--epochs", "2"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    name = signal.Signals(signum).name
    assert (proc.returncode, proc.stderr.splitlines()) == (
        128 + signum, [f"neurodyn demo: interrupted ({name}); nothing partial was kept"]), proc.stderr[-3000:]
    assert "Received SIGTERM" not in proc.stdout and "KeyboardInterrupt" not in proc.stdout, proc.stdout
    left = sorted(str(p.relative_to(tmp_path / "demo")) for p in (tmp_path / "demo").rglob("*") if p.is_file())
    assert left == ["lorenz.h5"], left
