"""A training command run from Python (``neurodyn.cli.main``, a notebook or script) leaves its process as it found
it -- the environment and exception hooks too, after a DDP run -- and trains what it trains in a process of its own.
The global random generators, torch's settings, warnings and loggers of a one-process fit: test_harness
(``test_fits_run_twice_in_one_process_...``, ``test_a_fit_from_python_leaves_the_callers_random_generators_...``)."""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import random
import subprocess
import sys

import numpy as np
import pytest
import torch
from subprocess_env import DIST_VARS, clean_env
from tiny_runs import TINY

from neurodyn.cli import IMPORT_ENV, main

ONE_EPOCH = [*TINY, "--trainer.max_epochs", "1"]
DDP2 = ["--trainer.devices", "2"]  # TINY's --trainer.accelerator cpu: 2 processes, gloo


def _changed(before: dict, after: dict) -> dict:
    """The variables that differ: ``{name: (before, after)}``, None where unset."""
    return {k: (before.get(k), after.get(k)) for k in {*before, *after} if before.get(k) != after.get(k)}


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="ddp_fork needs fork")
def test_a_ddp_fit_from_python_leaves_the_callers_environment_as_it_was(tmp_path, monkeypatch):
    """Lightning's ddp_fork / ddp_spawn launcher sets MASTER_PORT in the environment of the process that runs the
    command, and left it: a notebook's later DDP runs took the old port (taken by then: 'address already in use'), and
    every process it started inherited it. The environment is the caller's again when the command ends."""
    from neurodyn.training import processes

    for key in DIST_VARS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(processes, "cpu_cores", lambda: 2)  # no note on processes and cores
    import sklearn  # noqa: F401 -- its first import (the fit's metrics) sets KMP_DUPLICATE_LIB_OK, as anywhere

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the forked processes keep it
    try:
        before = dict(os.environ)
        assert main(["fit", *ONE_EPOCH, *DDP2, "--trainer.strategy", "ddp_fork",
                     "--trainer.default_root_dir", str(tmp_path)]) == 0
        assert _changed(before, dict(os.environ)) == {}
    finally:
        torch.set_num_threads(threads)


#: the command, in a process of its own; the processes `--trainer.strategy ddp` starts run this script again (with
#: LOCAL_RANK set): only the command's own process reports what changed
_DDP_CALLER = """\
import json, os, sys, threading
from neurodyn.cli import main

own = "LOCAL_RANK" not in os.environ
environ, hooks = dict(os.environ), (sys.excepthook, threading.excepthook)
code = main(sys.argv[1:])
if own:
    print(json.dumps({"code": code, "environ": {k: [environ.get(k), os.environ.get(k)] for k in {*environ, *os.environ}
                                                 if environ.get(k) != os.environ.get(k)},
                      "hooks": [sys.excepthook is hooks[0], threading.excepthook is hooks[1]]}))
sys.exit(code)
"""


def test_a_ddp_fit_leaves_the_commands_process_as_it_found_it(tmp_path):
    """``--trainer.strategy ddp``: the command's process is rank 0. Lightning's launcher left MASTER_ADDR,
    MASTER_PORT, LOCAL_RANK and NODE_RANK in its environment, and torch's ``init_process_group`` left its
    ``sys.excepthook``, which writes ``[rank0]:`` before every later traceback of the caller's. Both come back;
    variables a first import sets for the process (:data:`neurodyn.cli.IMPORT_ENV`: Lightning's, scikit-learn's)
    stay, as after the caller's own import."""
    script = tmp_path / "caller.py"
    script.write_text(_DDP_CALLER)
    proc = subprocess.run([sys.executable, str(script), "fit", *ONE_EPOCH, *DDP2, "--trainer.strategy", "ddp",
                           "--trainer.default_root_dir", str(tmp_path)], capture_output=True, text=True,
                          cwd=tmp_path, env=clean_env(OMP_NUM_THREADS="1"), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    changed = {k: v for k, v in report["environ"].items() if not (k in IMPORT_ENV and v[0] is None)}
    assert (report["code"], changed, report["hooks"]) == (0, {}, [True, True])


def _fit_outputs(run) -> tuple[dict, list]:
    weights = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    with open(run / "metrics.csv", newline="") as f:
        return weights, list(csv.reader(f))


def test_the_callers_draws_before_a_fit_do_not_change_what_it_trains(tmp_path):
    """What the command trains is its seed's, also where the caller seeded and drew from the global generators before
    (the command seeds them inside, then gives the caller's back): weights and logged metrics equal bit for bit."""
    assert main(["fit", *ONE_EPOCH, "--trainer.default_root_dir", str(tmp_path), "--run-name", "plain"]) == 0
    torch.manual_seed(99), np.random.seed(99), random.seed(99)
    torch.rand(7), np.random.rand(7), random.random()
    assert main(["fit", *ONE_EPOCH, "--trainer.default_root_dir", str(tmp_path), "--run-name", "drawn"]) == 0
    (plain, plain_metrics), (drawn, drawn_metrics) = _fit_outputs(tmp_path / "plain"), _fit_outputs(tmp_path / "drawn")
    assert plain.keys() == drawn.keys() and all(torch.equal(plain[k], drawn[k]) for k in plain)
    assert plain_metrics == drawn_metrics
