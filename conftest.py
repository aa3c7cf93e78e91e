"""Repository-wide pytest hooks: every module of the package is imported once, under its own name.

pyproject's ``--doctest-modules --import-mode=importlib`` collects the docstring examples of ``neurodyn/``
through pytest's own importer. For a package file named on the command line before its package was imported
(``pytest neurodyn/models/hmmglm/priors.py tests/hmmglm``), that importer first imports the parent package
(pytest-dev/pytest#12208), whose ``__init__`` imports the file as usual, and then executes
the file a second time as a new module object, without looking in ``sys.modules`` again
(``_pytest.pathlib._import_module_using_spec``). ``sys.modules`` and the parent package then hold the second
copy while every module that had imported the first keeps the first copy's classes:
``neurodyn.models.hmmglm.priors.OneHotPriorHMMGLM`` was no longer the class ``build_model`` makes, so a test
that patched a method on the one saw calls on the other never arrive, and an ``isinstance`` between the two
copies is False. Whether a test failed then depended on which files the same run collected, and in which
order (the whole suite, ``make test``, collects each package's ``__init__`` first and never made a copy).

Importing each package file through the ordinary import system just before pytest collects it leaves one
module per name, the one a user's ``import`` gives; pytest's importer finds it in ``sys.modules`` and uses it.

Only where that import gives the very file pytest is collecting: where ``neurodyn`` is another checkout's (a git
worktree or clone run by the ``pytest`` script of a virtual environment whose editable install maps ``neurodyn`` to
the first checkout, without PYTHONPATH), the import would put that checkout's module in ``sys.modules`` and
pytest's importer, which takes a module it finds there, would collect the other file's docstring examples under
this file's name. Nothing is imported then, and pytest's importer imports this checkout's file by its path as
it does without this conftest.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent / "neurodyn"


def package_module_name(path: Path) -> str | None:
    """The dotted name of a ``.py`` file of the package (``neurodyn/models/__init__.py``: ``neurodyn.models``),
    ``None`` for any other path (every folder of the package has an ``__init__.py``)."""
    path = Path(path).resolve()
    if path.suffix != ".py" or PACKAGE not in path.parents:
        return None
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _origin(name: str) -> Path | None:
    """The file the ordinary import of module ``name`` executes (or has executed), None where none is found.
    ``find_spec`` imports the parent packages of a dotted name, so the caller asks for ``neurodyn`` first."""
    try:
        spec = importlib.util.find_spec(name)
    except Exception:  # a parent that fails to import, or a module in sys.modules without __spec__
        return None
    return Path(spec.origin).resolve() if spec is not None and spec.origin else None


def pytest_collectstart(collector):
    """Import a package file the ordinary way just before pytest's importer would, where that import gives this
    very file (see the module docstring)."""
    name = package_module_name(collector.path) if isinstance(collector, pytest.File) else None
    if name is None:
        return
    # the package first: finding a submodule of another checkout's neurodyn would import that checkout's package
    if _origin("neurodyn") != PACKAGE / "__init__.py" or _origin(name) != Path(collector.path).resolve():
        return
    try:
        importlib.import_module(name)
    except Exception:  # pytest's own import of the file then fails the same way, and reports it on the file
        pass
