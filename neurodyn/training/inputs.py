"""The files a training command (``neurodyn fit | validate | test | predict``) reads, from its parsed
configuration: the one place that knows them, for the rule that no output of a command is one of its inputs.

:func:`command_inputs` lists

* every config file jsonargparse loaded: ``--config`` / ``-c`` (and ``--config=FILE``, ``-cFILE``, ``-c=FILE``;
  ``--run DIR`` stands for ``--config DIR/config.yaml``), and every file given where a class, a group or a
  nested value was expected (``--data data.yaml``, ``--model m.yaml``, ``--trainer t.yaml``,
  ``--checkpoint c.yaml``, ``--model.init_args.config c.yaml``, a path inside a config file): jsonargparse
  keeps these as the top-level ``config`` list and the ``__path__`` of each value read from a file;
* each file-valued init argument of the DataModule and the model: the names in the class's ``input_files``
  and ``file_options`` (``data.init_args.path``; the Lorenz ``data.init_args.cache``);
* the checkpoint (``ckpt_path``) once it names a file.

Reading them from the parsed namespace, not from the command line, catches every spelling the parser takes.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

#: sections whose class is chosen in the config and may name files it reads (``<section>.init_args.<name>``)
CLASS_SECTIONS = ("data", "model")


def _plain(node):
    """A jsonargparse Namespace as a dict (other values as they are)."""
    from jsonargparse import Namespace

    return node.__dict__ if isinstance(node, Namespace) else node


def _path_of(value) -> Path | None:
    """A jsonargparse Path (its absolute path: relative ones are relative to the file that named them) or a
    str / os.PathLike as a Path."""
    absolute = getattr(value, "absolute", None)
    if isinstance(absolute, (str, os.PathLike)):
        return Path(absolute)
    if isinstance(value, (str, os.PathLike)):
        return Path(value)
    return None


def config_inputs(cfg) -> list[Path]:
    """Every config file the parsed subcommand config ``cfg`` was read from, in the order given: the top-level
    ``config`` list (``--config`` / ``-c``), then each ``__path__`` below (a class, group or value file)."""
    files: list[Path] = []
    top = _plain(cfg)
    for value in (top.get("config") or []) if isinstance(top, dict) else []:
        path = _path_of(value)
        if path is not None:
            files.append(path)

    def walk(node) -> None:
        node = _plain(node)
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "__path__":
                    path = _path_of(value)
                    if path is not None:
                        files.append(path)
                else:
                    walk(value)
        elif isinstance(node, (list, tuple)):
            for item in node:
                walk(item)

    walk(top)
    return _unique(files)


#: where a short ``class_path`` (``LFADSDataModule``, as a config file may give it) is found: the modules whose
#: classes the training commands accept by their short names
SHORT_NAME_MODULES = ("neurodyn.training.datamodules", "neurodyn.training.module")


def _class_of(class_path) -> type | None:
    """The class a ``class_path`` names: a dotted path, or a short name of :data:`SHORT_NAME_MODULES` (a config
    read as plain YAML, e.g. tune's best.yaml, before the parser has resolved it).

    >>> _class_of("LFADSDataModule").__name__, _class_of("no.such.Class"), _class_of("NoSuchClass")
    ('LFADSDataModule', None, None)
    """
    if not isinstance(class_path, str) or not class_path:
        return None
    module, _, name = class_path.rpartition(".")
    try:
        for where in (module,) if module else SHORT_NAME_MODULES:
            found = getattr(importlib.import_module(where), name, None)
            if found is not None:
                return found
    except Exception:  # noqa: BLE001 - an unknown class is the parser's error, reported elsewhere
        return None
    return None


def file_options(cls) -> tuple[str, ...]:
    """The init arguments of a DataModule / model class that name files it reads: its ``input_files`` (recorded
    with their bytes in every checkpoint) and ``file_options`` (all of them, the Lorenz cache too)."""
    names = [*getattr(cls, "input_files", ()), *getattr(cls, "file_options", ())]
    return tuple(dict.fromkeys(names))


def setting_inputs(cfg) -> list[tuple[str, Path]]:
    """``(option, file)`` for each file-valued init argument of the configured DataModule and model that is
    set (``data.init_args.path``, ``data.init_args.cache``)."""
    found = []
    for section in CLASS_SECTIONS:
        spec = _plain(_plain(cfg).get(section)) if isinstance(_plain(cfg), dict) else None
        if not isinstance(spec, dict):
            continue
        cls = _class_of(spec.get("class_path"))
        init = _plain(spec.get("init_args"))
        if cls is None or not isinstance(init, dict):
            continue
        for name in file_options(cls):
            path = _path_of(init.get(name))
            if path is not None:
                found.append((f"{section}.init_args.{name}", path))
    return found


def command_inputs(cfg) -> list[Path]:
    """Every file the subcommand configured by ``cfg`` reads: config files (:func:`config_inputs`), the data and
    model files (:func:`setting_inputs`) and the checkpoint (``ckpt_path``, unless still ``best`` / ``last``)."""
    files = [*config_inputs(cfg), *(path for _, path in setting_inputs(cfg))]
    ckpt = _plain(cfg).get("ckpt_path") if isinstance(_plain(cfg), dict) else None
    if ckpt not in (None, "best", "last"):
        path = _path_of(ckpt)
        if path is not None:
            files.append(path)
    return _unique(files)


def _unique(files: list[Path]) -> list[Path]:
    seen, out = set(), []
    for f in files:
        key = os.path.abspath(f)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out
