"""Every ``neurodyn`` command run from Python leaves the caller's global random generators as it found them
(``neurodyn.cli.main`` runs each command inside :func:`neurodyn.training.random_states_kept`); the training
commands, the demo and tune are tested with their runs (tests/training)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from subprocess_env import clean_env

_CALLER = """\
import json, random, sys
import numpy as np
from neurodyn.cli import main

random.seed(7); np.random.seed(7)
if sys.argv[1] == "run":
    assert main(sys.argv[2:]) == 0
print(json.dumps([random.random(), float(np.random.rand())]))
"""


@pytest.mark.parametrize("command", ["simulate", "info"])
def test_a_command_from_python_leaves_the_callers_random_generators_as_they_were(tmp_path, command):
    """``info`` and ``simulate`` moved Python's ``random`` on their first run in a process: the modules they load
    import rich, which draws from it when it loads. A notebook's draws after the command were other than its own
    seeding gives. In fresh processes of their own: the first run in a process is the one that draws."""
    data = tmp_path / "lorenz.h5"
    argv = {"simulate": ["simulate", "lorenz", "--out", str(tmp_path / "out.h5")],
            "info": ["info", str(data)]}[command]
    if command == "info":
        shell = "import sys; from neurodyn.cli import main; sys.exit(main(sys.argv[1:]))"
        subprocess.run([sys.executable, "-c", shell, "simulate", "lorenz", "--out", str(data)], check=True,
                       capture_output=True, cwd=tmp_path, env=clean_env(OMP_NUM_THREADS="1"), timeout=600)
    draws = []
    for mode in ("plain", "run"):
        proc = subprocess.run([sys.executable, "-c", _CALLER, mode, *argv], capture_output=True, text=True,
                              cwd=tmp_path, env=clean_env(OMP_NUM_THREADS="1"), timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        draws.append(proc.stdout.strip().splitlines()[-1])
    assert draws[0] == draws[1]
