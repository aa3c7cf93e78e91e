"""One-line errors from LightningCLI / jsonargparse: :func:`parser_error` turns a parser's many-line
message (nested Union explanations) into one :class:`~neurodyn.errors.InputError` naming the config file
and the key, which :func:`neurodyn.cli.main` prints."""

from __future__ import annotations

import re
from pathlib import Path

from neurodyn.errors import InputError, one_line

_NOISE = ("Parser key", "Does not validate against any of the Union subtypes", "Subtypes:", "Errors:",
          "Given value type:", "Expected a <class 'NoneType'>", "Not a valid subclass of", "Subclass types expected")


def config_files(argv: list[str]) -> list[str]:
    files = []
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            files.append(argv[i + 1])
        elif arg.startswith("--config="):
            files.append(arg.split("=", 1)[1])
    return files


def _file_with_key(files: list[str], key: str | None, option: str | None) -> str | None:
    """The last config file whose YAML holds ``key`` (or an ``option`` anywhere below it)."""
    if not key:
        return None
    import yaml

    def holds(node, parts) -> bool:
        if not parts:
            return option is None or _contains(node, option)
        return isinstance(node, dict) and parts[0] in node and holds(node[parts[0]], parts[1:])

    for file in reversed(files):
        try:
            data = yaml.safe_load(Path(file).read_text())
        except Exception:
            continue
        if holds(data, key.split(".")):
            return file
    return None


def _path_to(node, option: str) -> list[str] | None:
    """Keys leading to ``option`` inside nested dicts (depth first), or None."""
    if isinstance(node, dict):
        if option in node:
            return [option]
        for k, v in node.items():
            sub = _path_to(v, option)
            if sub:
                return [str(k), *sub]
    return None


def _contains(node, option: str) -> bool:
    if isinstance(node, dict):
        return option in node or any(_contains(v, option) for v in node.values())
    return False


def _as_spelt(name: str, argv: list[str]) -> str:
    """``name`` (``model.hiden_size``: jsonargparse drops ``init_args.config``) as the command line spelt it
    (``model.init_args.config.hiden_size``): the last option of the same section ending in the same key."""
    section, last = name.split(".", 1)[0], name.rsplit(".", 1)[-1]
    spelt = [a[2:].split("=", 1)[0] for a in argv if a.startswith(f"--{section}.")]
    spelt = [s for s in spelt if s.rsplit(".", 1)[-1] == last]
    return spelt[-1] if spelt else name


def parser_error(message: str, argv: list[str]) -> InputError:
    """Turn a jsonargparse error (many lines, nested Union explanations) into one InputError line."""
    text = str(message)
    key_match = re.search(r'Parser key "([^"]+)"', text)
    key = key_match.group(1) if key_match else None
    missing = re.search(r"File does not exist: '([^']+)'", text) or re.search(r"Unable to load config '([^']+)'", text)
    if missing:
        return InputError("no such config file", path=missing.group(1), field=key or "config")
    option = re.search(r"Option '([^']+)' is not accepted", text) or re.search(r'Key "([^"]+)" is not expected', text)
    files = config_files(argv)
    for file in files:
        if Path(file).is_dir():  # jsonargparse said only "config: invalid value"
            return InputError("is a folder, expected a YAML config file", path=file, field="--config")
    unknown = re.search(r"does not accept option '([^']+)'", text) or re.search(r"No action for key \"([^\"]+)\"", text)
    if unknown:
        name = unknown.group(1)
        head, _, last = name.rpartition(".")
        path = _file_with_key(files, head or None, last) if head else _file_with_key(files, name, None)
        if path is None:  # given on the command line: name it as spelt there
            name = _as_spelt(name, argv)
        return InputError("unknown option (misspelt, or not an option of this section)", path=path, field=name)
    if "Problems parsing config" in text:
        import yaml

        for file in files:
            try:
                yaml.safe_load(Path(file).read_text())
            except yaml.YAMLError as err:
                mark = getattr(err, "problem_mark", None)
                where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
                problem = getattr(err, "problem", None) or "invalid YAML"
                return InputError(f"{where}{problem}", path=file, field="yaml")
            except OSError:
                continue
        return InputError(one_line(text, 300), field="config")
    unrecognized = re.search(r"Unrecognized arguments: (.*)", text)
    if unrecognized:
        return InputError(f"unrecognized arguments: {unrecognized.group(1).strip()}", field="arguments")
    lines = [line.strip().lstrip("- ").strip() for line in text.splitlines()]
    given = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("Given value:")), None)
    lines = [line for line in lines if line and not line.startswith((*_NOISE, "Given value:"))]
    path = _file_with_key(files, key, option.group(1) if option else None)
    if option:
        cls = re.search(r"class_path '([^']+)'", text)
        where = f" by {cls.group(1).rsplit('.', 1)[-1]}" if cls else ""
        name = option.group(1)
        field = f"{key}.{name}" if key else name
        if path is not None:  # the full dotted path of the option inside the file
            import yaml

            found = _path_to(yaml.safe_load(Path(path).read_text()).get(key, {}), name)
            field = ".".join([key, *found]) if found else field
        else:  # given on the command line: as spelt there
            field = _as_spelt(field, argv)
        return InputError(f"option {name!r} is not accepted{where}", path=path, field=field)
    if re.search(r"Expected a dot import path string|Import path .* does not|No module named|not a subclass|"
                 r"does not correspond to a subclass|has no attribute", text) and key in ("model", "data"):
        choices = ("LangevinFlowModule, HMMGLMModule" if key == "model" else
                   "NLBDataModule, LFADSDataModule, LorenzDataModule, SwitchingGLMDataModule")
        return InputError(f"unknown class {given!r} (choices: {choices})", path=path, field=key)
    detail = one_line("; ".join(dict.fromkeys(lines)), 300) or "invalid value"
    if given is not None and given not in detail:
        detail += f" (given: {given})"
    return InputError(detail, path=path, field=key)


def qualified(err: InputError, cfg, argv: list[str]) -> InputError:
    """An InputError a model or DataModule raised while being built, naming the option as the config and
    the command line spell it (``model.init_args.config.hidden_size``, not ``hidden_size``) and the config
    file that set it (none when the command line did)."""
    field = err.field or ""
    candidates = ([field] if field.startswith(("model.", "data.")) else
                  [f"{section}.init_args.{sub}{field}" for section in ("model", "data") for sub in ("", "config.")])
    full = next((key for key in candidates if _has(cfg, key)), None) if field else None
    if full is None:
        return err
    short = full.replace(".init_args.", ".", 1)
    on_command_line = any(a.split("=", 1)[0] in (f"--{full}", f"--{short}") for a in argv)
    files = config_files(argv)
    path = err.path
    if path is None and not on_command_line:
        path = _file_with_key(files, full, None) or _file_with_key(files, short, None)
    return InputError(err.message, path=path, field=full)


def _has(cfg, key: str) -> bool:
    try:
        return key in cfg
    except Exception:  # noqa: BLE001 - a Namespace that cannot answer: not found
        return False
