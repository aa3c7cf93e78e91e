"""Render the README's results tables from ``benchmarks/results/*.json``.

Usage::

    python benchmarks/readme_tables.py          # rewrite the blocks in README.md
    python benchmarks/readme_tables.py --check  # exit 1 if README.md and the results files disagree

Each results file with a ``readme`` block (see ``benchmarks/_results.py``) is rendered between the
markers ``<!-- results:<name> -->`` and ``<!-- /results:<name> -->`` in README.md: the table, then one
line saying which command produced it, on which commit and machine, with how many threads, in how many
seconds. ``tests/test_readme_results.py`` runs the check in ``make test``, so a README figure can
neither be typed by hand nor go stale. README.md is rewritten atomically (a temporary file renamed onto it).

A README block without its results file (or a results table without its block) is one line each and exit code 1;
a results file that is not JSON, or lacks what its table needs (``command``, ``seconds``, a ``readme`` block whose
rows fit its columns, a ``name`` that is the file's), is one line naming the file and the field and exit code 2,
README.md untouched.
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _results import BenchmarkParser, exits_on_signals  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
README = ROOT / "README.md"
BLOCK = re.compile(r"<!-- results:(?P<name>[\w.-]+) -->\n(?P<body>.*?)<!-- /results:(?P=name) -->", re.S)


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _load(value) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) else "?"


def public_command(command: str) -> str:
    """The command with every absolute path shortened to ``.../<last component>`` (a README names no path of
    the machine that ran it; the results file keeps the command as run).

    >>> public_command("python b.py --reference /home/me/src/onehot-hmmglm --seeds 0,1 --out=/tmp/x.json")
    'python b.py --reference .../onehot-hmmglm --seeds 0,1 --out=.../x.json'
    >>> public_command("python b.py --nwb '/my data/f.nwb' --fit-args '--trainer.max_epochs 400'")
    "python b.py --nwb .../f.nwb --fit-args '--trainer.max_epochs 400'"
    """
    def short(token: str) -> str:
        head, sep, value = token.rpartition("=") if token.startswith("--") else ("", "", token)
        if value.startswith("/") and len(value) > 1:
            value = ".../" + value.rstrip("/").rsplit("/", 1)[-1]
        return head + sep + value

    try:
        tokens = shlex.split(command)
    except ValueError:  # not shell syntax: shorten word by word
        return " ".join(short(t) for t in command.split(" "))
    return shlex.join(short(t) for t in tokens)


def render(record: dict) -> str:
    """Markdown for one results file's ``readme`` block (ends with a newline)."""
    table = record["readme"]
    lines = [f"**{table['title']}**", ""]
    lines.append("| " + " | ".join(_cell(c) for c in table["columns"]) + " |")
    lines.append("|" + "---|" * len(table["columns"]))
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table["rows"]]
    machine = record.get("machine", {})
    threads = ", ".join(f"{k}={v}" for k, v in record.get("threads", {}).items()) or "default"
    commit = (record.get("commit") or "unknown")[:10] + (" (uncommitted changes)" if record.get("dirty") else "")
    lines += ["", f"<sub>`{public_command(record['command'])}` — commit {commit}, {record.get('date', '?')}; "
                  f"{machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, "
                  f"load {_load(machine.get('load_avg_1min'))}; "
                  f"threads {threads}; {record['seconds']:.0f} s. "
                  f"Source: `benchmarks/results/{record['name']}.json`.</sub>"]
    if table.get("notes"):
        lines += ["", table["notes"]]
    return "\n".join(lines) + "\n"


def _check_record(path: Path, record) -> None:
    """Refuse a results file that cannot be rendered: an :class:`~neurodyn.errors.InputError` naming the file and
    the field (one line, exit code 2), not a ``KeyError`` traceback from :func:`render` -- or a table that names
    another results file as its source."""
    from neurodyn.errors import InputError

    def bad(field: str, what: str):
        raise InputError(what, path=path, field=field)

    if not isinstance(record, dict):
        bad("results file", f"not a results file (its JSON is a {type(record).__name__}, not an object)")
    if record.get("name") != path.stem:
        bad("name", f"must be the file's name {path.stem!r} (the table names it as its source), "
                    f"got {record.get('name')!r}")
    if not isinstance(record.get("command"), str) or not record["command"].strip():
        bad("command", "missing or not a command line")
    seconds = record.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        bad("seconds", f"missing or not a number, got {seconds!r}")
    for field in ("machine", "threads"):
        if not isinstance(record.get(field, {}), dict):
            bad(field, f"not an object, got {record[field]!r}")
    table = record["readme"]
    if not isinstance(table, dict):
        bad("readme", f"not an object, got {table!r}")
    if not isinstance(table.get("title"), str):
        bad("readme.title", "missing or not text")
    columns, rows = table.get("columns"), table.get("rows")
    if not isinstance(columns, list) or not columns:
        bad("readme.columns", "missing, empty or not a list")
    if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == len(columns) for r in rows):
        bad("readme.rows", f"not a list of rows of {len(columns)} cells (one per column)")


def load_records(results: Path = RESULTS) -> dict[str, dict]:
    """The results files in ``results`` that have a README table, by name; a file that is not JSON, or whose
    table cannot be rendered, is one :class:`~neurodyn.errors.InputError` naming it and the field."""
    from neurodyn.errors import InputError

    records = {}
    for path in sorted(results.glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as err:
            why = err.strerror if isinstance(err, OSError) and err.strerror else err
            raise InputError(f"cannot read a results file: {why}", path=path, field="results file") from None
        if isinstance(record, dict) and "readme" not in record:
            continue
        _check_record(path, record)
        records[path.stem] = record
    return records


def rewrite(text: str, records: dict[str, dict]) -> tuple[str, list[str]]:
    """README text with every block re-rendered, and the problems found (missing files, missing markers)."""
    problems = []
    seen = set()

    def sub(match):
        name = match.group("name")
        seen.add(name)
        if name not in records:
            problems.append(f"README block '{name}' has no benchmarks/results/{name}.json with a readme table")
            return match.group(0)
        return f"<!-- results:{name} -->\n{render(records[name])}<!-- /results:{name} -->"

    new = BLOCK.sub(sub, text)
    problems += [f"benchmarks/results/{n}.json has a readme table but README.md has no <!-- results:{n} --> block"
                 for n in sorted(set(records) - seen)]
    return new, problems


@exits_on_signals
def main(argv=None) -> int:
    parser = BenchmarkParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 on any difference")
    args = parser.parse_args(argv)
    text = README.read_text()
    new, problems = rewrite(text, load_records())
    for p in problems:
        print(p, file=sys.stderr)
    if args.check:
        if new != text:
            print("README.md results tables differ from benchmarks/results: run python benchmarks/readme_tables.py",
                  file=sys.stderr)
            return 1
        return 1 if problems else 0
    if new != text:
        from neurodyn.io import atomic_path

        with atomic_path(README) as tmp:  # a failure or Ctrl-C mid-write leaves the old README, no partial one
            tmp.write_text(new)
        print("README.md updated")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
