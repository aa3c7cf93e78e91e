"""A pytest run that names package files (their docstring examples, pyproject's ``--doctest-modules``) ahead of
the tests leaves one module per name: the classes a test reaches through ``neurodyn.x.y`` are the ones the rest
of the package uses (the repository's ``conftest.py`` says why pytest alone would execute such a file twice)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from subprocess_env import clean_env

ROOT = Path(__file__).resolve().parent.parent

# A check run inside the pytest session under test, after collection: every neurodyn class or function held by
# a neurodyn module is the object its own module, as sys.modules has it, holds under that name.
PROBE = '''
import inspect
import sys


def test_each_module_of_the_package_is_the_one_its_users_imported():
    import neurodyn

    assert neurodyn.__file__.startswith(sys.argv_root), neurodyn.__file__
    copies = set()
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "neurodyn" or name.startswith("neurodyn.")):
            continue
        for value in list(vars(module).values()):
            home = getattr(value, "__module__", None) if inspect.isclass(value) or inspect.isfunction(value) else None
            if not home or not home.startswith("neurodyn") or home not in sys.modules:
                continue
            if vars(sys.modules[home]).get(value.__qualname__, value) is not value:
                copies.add(home)
    assert not copies, f"executed twice: {sorted(copies)}"
'''


def test_naming_package_files_first_imports_each_module_once(tmp_path):
    """Before the root conftest.py: pytest's importlib import of priors.py (after importing its package, which
    had imported it) made a second neurodyn.models.hmmglm.priors, and ``OneHotPriorHMMGLM`` there was not the
    class ``build_model`` makes (test_recipes_readout's revive test failed after ``priors.py`` on the command
    line); the same for any module its package's ``__init__`` imports, as the other two files here."""
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE.replace("sys.argv_root", repr(str(ROOT / "neurodyn"))))
    files = ["neurodyn/models/hmmglm/priors.py", "neurodyn/models/langevinflow/model.py", "neurodyn/metrics/bits.py"]
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-c", str(ROOT / "pyproject.toml"),
         "--rootdir", str(ROOT), *files, str(probe), "-k", "each_module_of_the_package"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=clean_env(PYTHONPATH=pythonpath, OMP_NUM_THREADS="1"),
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "1 passed" in result.stdout, result.stdout[-2000:]


def test_a_package_file_is_collected_from_itself_where_neurodyn_is_another_checkout(tmp_path):
    """Where the interpreter's ``neurodyn`` is another checkout (a git worktree or clone sharing a virtual
    environment whose editable install maps ``neurodyn`` to the first checkout, with no PYTHONPATH), the root
    conftest.py imported that checkout's module under the file's name, pytest's importer took it from
    ``sys.modules``, and the docstring examples collected for ``neurodyn/metrics/bits.py`` of this checkout were
    the other file's. A stand-in ``neurodyn`` first on PYTHONPATH plays the other checkout: its ``bits.py`` holds
    one docstring example under a name this checkout's lacks; this checkout's examples must be collected instead.
    The run starts outside this checkout, as the ``pytest`` script does not put the working folder on ``sys.path``
    (``python -m pytest`` in this checkout would find its ``neurodyn`` first)."""
    other = tmp_path / "other" / "neurodyn"
    (other / "metrics").mkdir(parents=True)
    (other / "__init__.py").write_text("")
    (other / "metrics" / "__init__.py").write_text("")
    (other / "metrics" / "bits.py").write_text(
        'def only_in_the_other_checkout():\n    """\n    >>> 1\n    1\n    """\n')
    pythonpath = os.pathsep.join(p for p in (str(tmp_path / "other"), os.environ.get("PYTHONPATH")) if p)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(ROOT), str(ROOT / "neurodyn" / "metrics" / "bits.py")],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
        env=clean_env(PYTHONPATH=pythonpath, OMP_NUM_THREADS="1"),
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "only_in_the_other_checkout" not in result.stdout, result.stdout[-2000:]
    assert "neurodyn.metrics.bits.poisson_nll" in result.stdout, result.stdout[-2000:]
