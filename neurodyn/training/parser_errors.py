"""One-line errors from LightningCLI / jsonargparse: :func:`parser_error` turns a parser's many-line
message (nested Union explanations) into one :class:`~neurodyn.errors.InputError` naming the config file
and the key, which :func:`neurodyn.cli.main` prints."""

from __future__ import annotations

import os
import re
from pathlib import Path

from neurodyn.errors import InputError, one_line

_NOISE = ("Parser key", "Does not validate against any of the Union subtypes", "Subtypes:", "Errors:",
          "Given value type:", "Expected a <class 'NoneType'>", "Not a valid subclass of", "Subclass types expected")


def _yaml_text(p: Path, field: str) -> str:
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError:  # an HDF5 file given as the config, say
        raise InputError(f"is not a text file (not UTF-8): expected a YAML config{_binary_kind(p)}", path=p,
                         field=field) from None


def _binary_kind(p: Path) -> str:
    """``"; it is ..."``: what a binary file given as a config is -- an HDF5 file (data, predictions) or a
    checkpoint, which take other options -- else ``""``."""
    from neurodyn.io.hdf5 import checkpoint_note

    with p.open("rb") as handle:
        head = handle.read(8)
    if head == b"\x89HDF\r\n\x1a\n":
        return "; it is an HDF5 file (data or predictions: neurodyn info says which, and what takes it)"
    if checkpoint_note(str(p)):
        return "; it is a checkpoint (torch.save archive): give it as --ckpt_path"
    return ""


def _mapping(data, p: Path, field: str) -> dict:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(f"expected a mapping at the top level, got {type(data).__name__}", path=p, field=field)
    return data


def read_yaml(path, field: str) -> dict:
    """A YAML config file's top-level mapping (an empty file: ``{}``); an InputError naming the file and
    ``field`` for a missing file, a folder, a file that is not UTF-8 text or not YAML, or one whose top
    level is not a mapping."""
    import yaml

    from neurodyn.io.hdf5 import refuse_denied

    p = Path(path)
    if os.path.isdir(p):  # before the permissions: a folder is the wrong input whatever they are ("may not be listed")
        raise InputError("is a folder, expected a YAML file", path=p, field=field)
    refuse_denied(p, field)  # is_file / read_text raised PermissionError: a traceback
    if not p.is_file():
        from neurodyn.io.hdf5 import absent_reason

        raise InputError(absent_reason(p, "file not found") if not p.exists() else "is not a file", path=p,
                         field=field)
    try:
        data = yaml.safe_load(_yaml_text(p, field))
    except yaml.YAMLError as err:
        raise InputError(f"not valid YAML ({str(err).splitlines()[0]})", path=p, field=field) from None
    return _mapping(data, p, field)


def check_config_files(argv: list[str]) -> None:
    """Refuse, before jsonargparse reads them, ``--config`` files that are not UTF-8 text (a traceback:
    UnicodeDecodeError), are empty, or hold a YAML value that is not a mapping ("Unexpected config: - a",
    naming no file), and folders, whatever their permissions (one that may not be listed was called that:
    "permission denied (this folder may not be listed ...)", while a folder is the wrong kind of input either
    way). Missing files and YAML syntax errors are left to :func:`parser_error` (which names the line and
    column)."""
    import yaml

    from neurodyn.io.hdf5 import refuse_denied

    for file in config_files(argv):
        p = Path(file)
        if os.path.isdir(p):  # as parser_error says it, before the permissions are looked at
            raise InputError("is a folder, expected a YAML config file", path=p, field="--config")
        refuse_denied(p, "--config")  # a file this user may not read, or one behind a folder: a traceback
        if not p.is_file():
            continue
        try:
            data = yaml.safe_load(_yaml_text(p, "--config"))
        except yaml.YAMLError:
            continue
        if data is None:
            raise InputError("is empty: expected a YAML mapping (trainer:, model:, data: ...)", path=p,
                             field="--config")
        _mapping(data, p, "--config")


def _config_option(arg: str) -> tuple[bool, str | None]:
    """Whether ``arg`` is the config option as the parser takes it (``--config`` -- options are matched whole, no
    abbreviation -- or ``-c``), and its value when attached (``--config=F``, ``-c=F``, ``-cF``)."""
    name, eq, value = arg.partition("=")
    if name == "--config":
        return True, value if eq else None
    if arg.startswith("-c") and not arg.startswith("--"):
        rest = arg[2:]
        return True, (rest[1:] if rest.startswith("=") else rest) or None
    return False, None


def config_files(argv: list[str]) -> list[str]:
    """The config files the command line gives (``--config F``, ``-c F`` and the other spellings of
    :func:`_config_option`), before jsonargparse parses it: for the errors of parsing. Once parsed, every file a
    command reads (class config files such as ``--data d.yaml`` too) is
    :func:`neurodyn.training.inputs.command_inputs`."""
    files = []
    i = 0
    while i < len(argv):
        matched, value = _config_option(argv[i])
        if matched and value is None and i + 1 < len(argv):
            files.append(argv[i + 1])
            i += 1
        elif matched and value is not None:
            files.append(value)
        i += 1
    return files


def _file_with_key(files: list[str], key: str | tuple[str, ...] | None, option: str | None,
                   value: str | None = None) -> str | None:
    """The last config file whose YAML holds ``key`` (or an ``option`` anywhere below it); with ``value``, the
    last that sets ``key`` to ``value`` as jsonargparse prints it (a value the parser refused). ``key`` may be
    several spellings of one option (``model.init_args.x``, ``model.x``): a file holding any of them counts."""
    if not key:
        return None
    import yaml

    def holds(node, parts) -> bool:
        if not parts:
            if value is not None and (node is None or str(node) != value):
                return False
            return option is None or _contains(node, option)
        return isinstance(node, dict) and parts[0] in node and holds(node[parts[0]], parts[1:])

    spellings = (key,) if isinstance(key, str) else key
    for file in reversed(files):
        try:
            data = yaml.safe_load(Path(file).read_text())
        except Exception:  # noqa: BLE001 - unreadable here: jsonargparse named it already if it was the problem
            continue
        if any(holds(data, spelling.split(".")) for spelling in spellings):
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
        from neurodyn.io.hdf5 import absent_reason

        path = missing.group(1)  # a link loop / broken link was 'no such config file' too
        return InputError(absent_reason(path, "no such config file") if not os.path.exists(path) else
                          "no such config file", path=path, field=key or "config")
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
        name = option.group(1)
        classes = re.findall(r"class_path '([^']+)'", text)
        where = f" by {classes[-1].rsplit('.', 1)[-1]}" if classes else ""  # the innermost class refused it
        full = _full_key([*_key_chain(text), name])
        spelt, path = _who_set(full, files, argv)
        if spelt is None and path is None:  # neither found as spelt: the old guess (the option anywhere below)
            path = _file_with_key(files, key, name)
            if path is not None:
                import yaml

                found = _path_to(yaml.safe_load(Path(path).read_text()).get(key, {}), name)
                full = ".".join([key, *found]) if found else full
        later = _class_chosen_after(full, argv)
        if later is not None:  # options apply in order: before the file, the section still had its default class
            spelt, path = later[0], None
            hint = (f", the class at that point of the command line: options apply in order, and the --config "
                    f"{later[1]} after it chooses {later[2].rsplit('.', 1)[-1]} (options of that class go after it)")
        elif name == "path" and where == " by LorenzDataModule":
            hint = "; a file (neurodyn simulate lorenz): --data LFADSDataModule --data.path FILE"
        else:
            hint = ""
        return InputError(f"option {name!r} is not accepted{where}{hint}", path=path, field=spelt or full)
    required = re.search(r"the following arguments are required: ([\w, ]+)", text)
    if required and key in ("model", "data"):  # a DataModule's path (or a model's size) left out or set to null
        name = required.group(1).split(",")[0].strip()
        full = f"{key}.init_args.{name}"
        _, spelt, where = _setter(full, argv)
        if spelt is None and where is None:
            return InputError(f"required, not given: set --{key}.{name} or {full} in a config file", field=full)
        return InputError("required, got null", path=where, field=spelt or full)
    if re.search(r"Expected a dot import path string|Import path .* does not|No module named|not a subclass|"
                 r"does not correspond to a subclass|has no attribute", text) and key in ("model", "data"):
        choices = ("LangevinFlowModule, HMMGLMModule" if key == "model" else
                   "NLBDataModule, LFADSDataModule, LorenzDataModule, SwitchingGLMDataModule")
        return InputError(f"unknown class {given!r} (choices: {choices})", path=path, field=key)
    wrong_type = _type_error(text, files, argv)
    if wrong_type is not None:
        return wrong_type
    detail = one_line("; ".join(dict.fromkeys(lines)), 300) or "invalid value"
    if given is not None and given not in detail:
        detail += f" (given: {given})"
    return InputError(detail, path=path, field=key)


_TYPE_WORDS = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
               "dict": "a mapping", "list": "a list"}


def _key_chain(text: str) -> list[str]:
    """The nested ``Parser key "..."`` names of a jsonargparse message, outermost first (``model``,
    ``config``, ``latent_dim``)."""
    return re.findall(r'Parser key "([^"]+)"', text)


def _full_key(chain: list[str]) -> str:
    """The option as a config file spells it: ``model.init_args.config.latent_dim`` for the chain
    ``model, config, latent_dim`` (a model's or DataModule's own options sit under ``init_args``)."""
    if len(chain) > 1 and chain[0] in ("model", "data") and chain[1] not in ("init_args", "class_path"):
        return ".".join([chain[0], "init_args", *chain[1:]])
    return ".".join(chain)


def _who_set(full: str, files: list[str], argv: list[str]) -> tuple[str | None, str | None]:
    """``(spelt, path)``: the command-line option (as spelt there) or the config file that set ``full``, the
    later one winning as in jsonargparse (a ``--config`` after the option overrides it); ``(None, None)`` when
    neither is found."""
    return _setter(full, argv)[1:]


def _setter(full: str, argv: list[str]) -> tuple[int, str | None, str | None]:
    """``(position, spelt, path)`` of what set ``full`` last, as :func:`_who_set`, with its position in
    ``argv`` (-1: neither, the class's default)."""
    options = [a[2:].split("=", 1)[0] for a in argv]
    spellings = {full, _short(full), full.replace(".init_args.", ".")}
    at_option = max((i for i, o in enumerate(options) if argv[i].startswith("--") and o in spellings), default=-1)
    at_file, path = -1, None
    for i, arg in enumerate(argv):
        matched, file = _config_option(arg)
        if matched and file is None and i + 1 < len(argv):
            file = argv[i + 1]
        elif not matched:
            file = None
        if file is not None and (_file_with_key([file], full, None) or _file_with_key([file], _short(full), None)):
            at_file, path = i, file
    if at_option > at_file:
        return at_option, options[at_option], None
    return at_file, None, path


def _type_error(text: str, files: list[str], argv: list[str]) -> InputError | None:
    """``data.init_args.batch_size: expected an integer, got 'abc'`` for a value of the wrong type (jsonargparse
    wraps it in every enclosing Union's explanation, ``Problem with given class_path ...; NestedArg(...)``);
    None when ``text`` is not such an error. The file is named only when a config file set the value."""
    chain = _key_chain(text)
    if not chain:
        return None
    inner = text[text.rindex(f'Parser key "{chain[-1]}"'):]
    expected = [m.group(1) or m.group(2) for m in re.finditer(
        r"Expected a (?:<class '(\w+)'>|(typing\.Literal\[[^\]]*\]))", inner)]
    expected = [e for e in dict.fromkeys(expected) if e != "NoneType"]
    if not expected:
        return None
    got = re.search(r"Got value: (.*)", inner) or re.search(r"Given value: (.*)", inner)
    words = []
    for kind in expected:
        if kind.startswith("typing.Literal"):
            words.append(f"one of [{kind[len('typing.Literal['):-1]}]")
        else:
            words.append(_TYPE_WORDS.get(kind, kind))
    full = _full_key(chain)
    position, spelt, path = _setter(full, argv)
    value = got.group(1).strip() if got else None
    if value is not None and spelt is not None and _option_value(argv, position) != value:
        # jsonargparse checks a config file's values as it reads the file: its bad value is refused although an
        # option after it would replace it; the command-line option, which holds another value, is not to blame
        path = _file_with_key(files, (full, _short(full)), None, value) or path
    given = f", got {value!r}" if got else ""
    return InputError(f"expected {' or '.join(words)}{given}", path=path, field=full)


def _class_chosen_after(full: str, argv: list[str]) -> tuple[str, str, str] | None:
    """``(spelt, file, class_path)``: the command-line option ``full`` as spelt there and the last config file
    after it that chooses the class of the option's section (``data.class_path``), else None."""
    import yaml

    section = full.split(".", 1)[0]
    spellings = {full, _short(full), full.replace(".init_args.", ".")}
    at = max((i for i, a in enumerate(argv) if a.startswith("--") and a[2:].split("=", 1)[0] in spellings),
             default=None)
    if at is None or section not in ("model", "data"):
        return None
    spelt = argv[at][2:].split("=", 1)[0]
    found = None
    for i in range(at + 1, len(argv)):
        matched, file = _config_option(argv[i])
        if matched and file is None and i + 1 < len(argv):
            file = argv[i + 1]
        if not matched or file is None:
            continue
        try:
            data = yaml.safe_load(Path(file).read_text())
        except Exception:  # noqa: BLE001 - unreadable: not the file that chose the class
            continue
        chosen = data.get(section) if isinstance(data, dict) else None
        chosen = chosen.get("class_path") if isinstance(chosen, dict) else None
        if isinstance(chosen, str):
            found = (spelt, file, chosen)
    return found


def _option_value(argv: list[str], position: int) -> str | None:
    """The value of the option at ``argv[position]`` (``--x=v`` or ``--x v``)."""
    arg = argv[position]
    if "=" in arg:
        return arg.split("=", 1)[1]
    return argv[position + 1] if position + 1 < len(argv) else None


#: the sections of the callbacks that ``neurodyn fit`` adds (``--checkpoint.save_top_k``, ``--nlb_eval.every_n_epochs``)
CALLBACK_SECTIONS = ("checkpoint.", "nlb_eval.")


def qualified(err: InputError, cfg, argv: list[str], section: str | None = None) -> InputError:
    """An InputError a model or DataModule raised while being built, naming the option as the config and
    the command line spell it (``model.init_args.config.hidden_size``, not ``hidden_size``) and the config
    file that set it (none when the command line did). A refused Trainer setting (``trainer.max_time``) gets
    the config file that set it.

    The option is looked up in the section whose class raised the error (``section``: ``"model"`` or
    ``"data"``; by default the LightningModule or LightningDataModule whose method is on the error's
    traceback, :func:`raised_by`): ``n_neurons`` refused by the DataModule is ``data.init_args.n_neurons``
    although the model has a linked ``n_neurons`` too. Where that still leaves several options (the section
    is unknown, or it has ``X`` and ``config.X``), the one the user wrote wins (command line, then config
    files); if none was written the field is left as it is. A field a class words in short form
    (``data.batch_size``, ``model.config.n_states``) is its ``init_args`` option.

    A refused combination (``err.involves``: ``n_heads`` must divide ``2*latent_dim+hidden_size``) whose values
    were set in different places names the value set last -- the command-line option that changed it, not the
    config file's ``n_heads`` -- and where each value came from (:func:`combination`). Its values may span
    both sections (``data.init_args.n_bins`` against ``model.init_args.config.n_lags``) and include the data
    file the error names (``data.init_args.path``).
    """
    field = err.field or ""
    if not field:
        return err
    if field.startswith(("trainer.", *CALLBACK_SECTIONS)) and err.path is None:  # a Trainer or callback setting:
        # the config file that set it, if any
        path = None if _written(field, argv) else _file_with_key(config_files(argv), field, None)
        return InputError(err.message, path=path, field=field) if path is not None else err
    section = section or raised_by(err)
    if field.startswith(("model.", "data.")):
        head, rest = field.split(".", 1)
        # a class's own short spelling (data.batch_size, model.config.n_states) is init_args.* in the config
        candidates = [field] if rest.startswith(("init_args.", "class_path")) else [field, f"{head}.init_args.{rest}"]
    else:
        sections = (section,) if section in ("model", "data") else ("model", "data")
        candidates = [f"{s}.init_args.{sub}{field}" for s in sections for sub in ("", "config.")]
    found = [key for key in candidates if _has(cfg, key)]
    files = config_files(argv)
    on_command_line = [key for key in found if _written(key, argv)]
    in_files = [key for key in found if _in_files(files, key)]
    if len(found) == 1:
        full = found[0]
    elif on_command_line:
        full = _last_written(on_command_line, argv)
    elif in_files:
        full = in_files[0] if len(in_files) == 1 else None  # two in the files: which value was refused?
    else:
        full = None
    if full is None:
        return err
    path = err.path
    if path is None and not _written(full, argv):
        path = _file_with_key(files, full, None) or _file_with_key(files, _short(full), None)
    if err.involves:
        combined = combination(full, err, cfg, argv)
        if combined is not None:
            return combined
    return InputError(err.message, path=path, field=full)


def combination(full: str, err: InputError, cfg, argv: list[str]) -> InputError | None:
    """A refused combination of values (``err.involves``: ``hidden_size`` and ``latent_dim`` beside the refused
    ``n_heads``) that were set in different places: the error names the value set last -- the command line's
    option over any config file's, a later file over an earlier one, either over a default -- (the option
    and its file, as for one value) and says where each value came from::

        model.init_args.config.hidden_size: decoder width 2*latent+hidden = 161 is not divisible by n_heads=2
        (--model.init_args.config.hidden_size 33 on the command line; latent_dim 64, n_heads 2 in lorenz.yaml)

    An involved name is a field of the refusing object beside ``full`` (``n_heads``), or an option of
    another section spelt in full (``model.init_args.config.n_lags`` beside ``data.init_args.n_bins``); the
    listing names a value by its field where it sits beside the blamed one, else by its full option. An error
    naming a data file (``err.path``: sequences too short in that file) is a combination only where that file
    is one of the values, the ``path`` option that chose it: the listing then says where that came from, and where
    that option is the one blamed the line names the data file first, as the plain refusal of one place does
    (``sg.h5: data.init_args.path: ...``: the file whose contents are refused, not the config file that named it,
    whatever the file's kind -- a switching-GLM simulation, a prepared NLB file)::

        sg.h5: data.init_args.path: sequences of 4 bins (spikes, train split) are not longer than the history
        window model.init_args.config.n_lags (5 bins) (--data.path sg.h5 on the command line;
        model.init_args.config.n_lags 5 in synthetic_hmmglm.yaml)

    None when one place set them all (the plain error names it), when an option given as a whole mapping
    may have set one (not known which), or when the error names a file none of the values is.

    ``cfg`` answers ``key in cfg`` and ``cfg[key]`` for dotted keys (a jsonargparse Namespace, or a flat dict
    of the values, defaults included); ``argv`` the command line -- ``neurodyn tune``, whose only sources are
    its stacked ``--config`` files, passes ``["--config", file, ...]``."""
    prefix = full.rpartition(".")[0]
    named = [name if name.startswith(_SECTIONS) else f"{prefix}.{name}" for name in err.involves]
    keys = [k for k in dict.fromkeys([full, *named]) if _has(cfg, k)]
    if err.path is not None and not any(_is_file(cfg[k], err.path) for k in keys):
        return None  # a data file's refusal that no listed value names: the plain error keeps the file
    origins = {key: _setter(key, argv) for key in keys}  # (position, spelt, path)
    if any(origins[k][0] < 0 and _enclosing_option(k, argv) for k in keys):
        return None  # set within a whole mapping (--model.init_args.config '{...}'): not known which, not a default
    places = {"command line" if spelt else path for _, spelt, path in origins.values()}  # a path; None: default
    if len(places) < 2:
        return None
    # the value set last; of equals, the refused field
    blamed = max(keys, key=lambda k: (origins[k][0], k == full))
    beside = blamed.rpartition(".")[0]  # the blamed field's object: its fields are named short
    groups: dict[str, list[str]] = {}  # where -> "name value" items, the place that set a value last first
    for key in sorted(keys, key=lambda k: -origins[k][0]):
        _, spelt, path = origins[key]
        where = "on the command line" if spelt else f"in {path}" if path else "by default"
        head, _, name = key.rpartition(".")
        groups.setdefault(where, []).append(f"--{spelt}" if spelt else name if head == beside else key)
        groups[where][-1] += f" {_shown(cfg[key])}"
    parts = [f"{', '.join(items)} {where}" for where, items in groups.items()]
    _, _, path = origins[blamed]
    if err.path is not None and _is_file(cfg[blamed], err.path):  # the data file's option: that file, as above
        path = err.path
    return InputError(f"{err.message} ({'; '.join(parts)})", path=path, field=blamed)


#: the sections of a config: an involved name starting with one is an option spelt in full
_SECTIONS = ("model.", "data.", "trainer.")


def _is_file(value, path: str) -> bool:
    """Whether the option value ``value`` names the file ``path`` (``./sg.h5`` and ``sg.h5`` do)."""
    return isinstance(value, str | Path) and bool(str(value)) and Path(value) == Path(path)


def _enclosing_option(full: str, argv: list[str]) -> bool:
    """Whether the command line gives an option that encloses ``full`` (``--model.init_args.config``,
    ``--model``), which may have set it."""
    options = [a[2:].split("=", 1)[0] for a in argv if a.startswith("--")]
    return any(k.startswith(o + ".") for o in options for k in (full, _short(full)))


def _shown(value) -> str:
    """A config value as YAML writes it (``33``, ``null``, ``true``, ``mean``)."""
    import json

    return value if isinstance(value, str) else json.dumps(value)


def raised_by(err: BaseException) -> str | None:
    """``"model"`` or ``"data"``: the section whose class (a LightningModule or LightningDataModule) has a
    method on ``err``'s traceback, outermost first; None when neither has."""
    import lightning.pytorch as pl

    tb = err.__traceback__
    while tb is not None:
        owner = tb.tb_frame.f_locals.get("self")
        if isinstance(owner, pl.LightningDataModule):
            return "data"
        if isinstance(owner, pl.LightningModule):
            return "model"
        tb = tb.tb_next
    return None


def _short(full: str) -> str:
    return full.replace(".init_args.", ".", 1)


def _written(full: str, argv: list[str]) -> bool:
    """Whether the command line gives the option ``full`` (``--model.init_args.x`` or ``--model.x``)."""
    return any(a.split("=", 1)[0] in (f"--{full}", f"--{_short(full)}") for a in argv)


def _last_written(keys: list[str], argv: list[str]) -> str:
    """Of ``keys`` given on the command line, the one given last (which of them was refused is not known)."""
    spelt = [a.split("=", 1)[0][2:] for a in argv if a.startswith("--")]
    return max(keys, key=lambda k: max(i for i, s in enumerate(spelt) if s in (k, _short(k))))


def _in_files(files: list[str], full: str) -> bool:
    return bool(files) and (_file_with_key(files, full, None) or _file_with_key(files, _short(full), None)) is not None


def _has(cfg, key: str) -> bool:
    try:
        return key in cfg
    except Exception:  # noqa: BLE001 - a Namespace that cannot answer: not found
        return False
