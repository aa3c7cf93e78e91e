"""The commands that the results files and the README name still parse with today's benchmark scripts.

Each ``benchmarks/results/**/*.json`` records the command that wrote it, and the README shows that command under
its table and lists a command per script: an option renamed or removed since would make that provenance a lie
(the command could not be run again); the same holds for the usage lines the README, ARCHITECTURE.md and the
scripts' docstrings show. Every command is parsed here with its script's own argument parser --
parsing only, nothing runs: the parser is stopped as soon as it has read the arguments. Options that name a
path on the machine that ran the benchmark (a checkout, a results or log folder, an interpreter) are read as
plain text, since those paths need not exist here; every other check of the value (seeds, counts, choices,
names) is the script's own.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from pathlib import Path

import pytest
from benchmark_modules import load_benchmark

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"
RESULTS = sorted((BENCH / "results").rglob("*.json"))

#: argparse types of the benchmarks that check a path on this machine (folders written, checkouts read, the
#: nlb_tools interpreter): a recorded command names the paths of the machine that ran it
PATH_TYPES = {"output_folder", "output_file", "checkout", "_executable"}


class _Parsed(Exception):
    def __init__(self, namespace, parser):
        super().__init__("parsed")
        self.namespace, self.parser = namespace, parser


def parse_only(name: str, argv: list[str], monkeypatch, parse: bool = True):
    """``argv`` read by benchmarks/<name>.py's parser, as its ``main`` builds it, and that parser; nothing after
    parsing runs. A refused argument is ``SystemExit(2)`` with the script's one-line error on stderr.
    ``parse=False``: the parser alone (the namespace is None)."""
    mod = load_benchmark(name, prefix="bench_parse_")
    results = sys.modules["_results"]  # the shared module the script imported

    def stop_after_parsing(self, args=None, namespace=None):
        for action in self._actions:
            if getattr(action.type, "__name__", None) in PATH_TYPES:
                action.type = str
        raise _Parsed(argparse.ArgumentParser.parse_args(self, args, namespace) if parse else None, self)

    monkeypatch.setattr(results.BenchmarkParser, "parse_args", stop_after_parsing)
    monkeypatch.setattr(sys, "argv", [str(BENCH / f"{name}.py"), *argv])  # main() without argv reads sys.argv
    entry = getattr(mod, "parse_args", None) or mod.main
    try:
        try:
            entry(argv)
        except TypeError as err:
            if "positional argument" not in str(err):
                raise
            entry()
    except _Parsed as parsed:
        return parsed.namespace, parsed.parser
    raise AssertionError(f"{name}.py did not parse its arguments")


def _script_and_argv(command: str) -> tuple[str, list[str]]:
    words = shlex.split(command)
    script = next(w for w in words if w.endswith(".py"))
    assert Path(script).parent.name == "benchmarks", command
    return Path(script).stem, words[words.index(script) + 1:]


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: str(p.relative_to(BENCH / "results")))
def test_every_results_file_names_a_command_that_parses_today(path, monkeypatch, capsys):
    record = json.loads(path.read_text())
    name, argv = _script_and_argv(record["command"])
    try:
        parse_only(name, argv, monkeypatch)
    except SystemExit:
        pytest.fail(f"{path.name}: its command {record['command']!r} no longer parses: {capsys.readouterr().err}")


def test_a_renamed_option_is_caught(monkeypatch, capsys):
    """The check above can fail: a command with an option the script does not have is refused."""
    with pytest.raises(SystemExit) as stop:
        parse_only("lorenz", ["--seeds", "0,1,2", "--ensemble-members", "3"], monkeypatch)
    assert stop.value.code == 2 and "--ensemble-members" in capsys.readouterr().err
    namespace, _ = parse_only("lorenz", ["--seeds", "0,1,2", "--members", "3"], monkeypatch)
    assert namespace.seeds == [0, 1, 2] and namespace.members == 3


def _readme_script_rows() -> list[tuple[str, str, str]]:
    """(script, command, what) of each row of the README's table of benchmark scripts."""
    rows = []
    for line in (ROOT / "README.md").read_text().splitlines():
        match = re.match(r"\| `(?:bash )?(benchmarks/[\w.]+)(.*?)` \| (.*) \|$", line)
        if match:
            rows.append((match.group(1), match.group(2).strip(), match.group(3)))
    return rows


#: benchmarks/gpu_check.sh's own options; it passes every other one to benchmarks/gpu_check.py
GPU_CHECK_SH = {"--wheels", "--python"}
#: options of the ``neurodyn`` commands that a row's text names (what the script runs), not the script's own
CLI_OPTIONS = {"benchmarks/upsample_alignment.py": {"--upsample"}}


def test_the_readme_lists_every_script_and_its_commands_parse(monkeypatch, capsys):
    rows = _readme_script_rows()
    listed = {Path(script).stem for script, _, _ in rows}
    scripts = {p.stem for p in BENCH.glob("*.py") if not p.name.startswith("_")}
    # not in the table: nlb_tools_prepare.py (run by prepare_speed.py, in the nlb_tools environment) and
    # readme_tables.py (described above the table); gpu_check.py is listed as gpu_check.sh, which runs it
    assert scripts - listed == {"nlb_tools_prepare", "readme_tables"} and listed <= scripts, sorted(listed ^ scripts)
    for script, command, what in rows:
        name = Path(script).stem
        words = [w for w in shlex.split(command) if w not in ("[", "]")]
        words = [w.strip("[]") for w in words]
        if script.endswith(".sh"):
            words = [w for i, w in enumerate(words) if w not in GPU_CHECK_SH and (
                i == 0 or words[i - 1] not in GPU_CHECK_SH)]
        try:
            _, parser = parse_only(name, words, monkeypatch)
        except SystemExit:
            pytest.fail(f"README: `{script} {command}` does not parse: {capsys.readouterr().err}")
        # every option the row's text names is one of the script's
        known = {o for a in parser._actions for o in a.option_strings}
        known |= (GPU_CHECK_SH if script.endswith(".sh") else set()) | CLI_OPTIONS.get(script, set())
        named = set(re.findall(r"`[^`]*`", command + " " + what))
        options = {o for text in named for o in re.findall(r"(?<![\w-])--[a-z][\w-]*", text)}
        assert options <= known, f"README row of {script}: {sorted(options - known)} are no options of it"


SCRIPTS = sorted(p.stem for p in BENCH.glob("*.py") if not p.name.startswith("_"))

@pytest.mark.parametrize("name", SCRIPTS)
def test_help_documents_every_option(name, monkeypatch):
    """`-h` listed 41 options of 11 scripts with no word on them (hmmglm_real_states.py's 13, langevinflow_speed.py's
    sizes, departures.py --seeds / --epochs, hmm_speed.py --lengths / --states, ...): a user reproducing a figure
    could not tell what --n-inner or --obs-bins does without reading the code. Each option now says what it sets
    (options a parent hands its child process are hidden from the help)."""
    _, parser = parse_only(name, [], monkeypatch, parse=False)
    help_text = parser.format_help()
    for action in parser._actions:
        if action.help == argparse.SUPPRESS:
            continue
        assert action.help and action.help.strip(), f"{name}.py {'/'.join(action.option_strings)}: no help"
        assert action.option_strings[-1] in help_text


def _usage_lines() -> list[tuple[str, str]]:
    """(where, command) of every ``python benchmarks/<script>.py ...`` the README, ARCHITECTURE.md and the scripts'
    docstrings show (optional parts in [brackets] included, comments cut)."""
    found = []
    docs = [ROOT / "README.md", ROOT / "ARCHITECTURE.md", *sorted(BENCH.glob("*.py")), *sorted(BENCH.glob("*.sh"))]
    for path in docs:
        if not path.is_file():
            continue
        for match in re.finditer(r"python benchmarks/\w+\.py[^`\"\n]*", path.read_text()):
            command = match.group(0).split("#")[0].strip()
            if "{" not in command and "'" not in command:  # an f-string's template, a JSON job: not a command line
                found.append((path.name, command))
    return found


PLACEHOLDERS = {"N": "1", "PATH": ".", "DIR": "."}


@pytest.mark.parametrize("where, command", _usage_lines(), ids=lambda x: x[:60])
def test_every_usage_line_shown_parses(where, command, monkeypatch, capsys):
    # optional parts as given ("200[,400]": 200,400), placeholders as a value of their kind
    name, argv = _script_and_argv(command.replace("[,", ",").replace("[", " ").replace("]", " "))
    argv = [PLACEHOLDERS.get(w, w) for w in argv]
    try:
        parse_only(name, argv, monkeypatch)
    except SystemExit:
        pytest.fail(f"{where}: `{command}` does not parse: {capsys.readouterr().err}")
