"""The floors (data / models / metrics below training, below cli, viz and demo; Lightning only in training)
are an import-linter contract (.importlinter), checked on every `make test`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if exe is None:
        pytest.fail("import-linter is not installed (it is in the dev extra)")
    return subprocess.run([exe, "--no-cache"], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_import_contract_holds():
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "BROKEN" not in result.stdout


def test_a_new_arrow_against_the_floors_is_caught(tmp_path):
    """The contract can fail: a copy of the package with models importing the training harness breaks it."""
    shutil.copytree(ROOT / "neurodyn", tmp_path / "neurodyn", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    bad = tmp_path / "neurodyn" / "models" / "_bad_arrow.py"
    bad.write_text("from neurodyn.training import module  # noqa: F401\n")
    import os

    env = {**os.environ, "PYTHONPATH": str(tmp_path)}  # the copy shadows the installed package
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    result = subprocess.run([exe, "--no-cache"], cwd=tmp_path, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode != 0, result.stdout[-2000:]
    assert "BROKEN" in result.stdout and "neurodyn.models._bad_arrow -> neurodyn.training" in result.stdout
