"""Render the README's results tables from ``benchmarks/results/*.json``.

Usage::

    python benchmarks/readme_tables.py          # rewrite the blocks in README.md
    python benchmarks/readme_tables.py --check  # exit 1 if README.md and the results files disagree

Each results file with a ``readme`` block (see ``benchmarks/_results.py``) is rendered between the
markers ``<!-- results:<name> -->`` and ``<!-- /results:<name> -->`` in README.md: the table, then one
line saying which command produced it, on which commit and machine, with how many threads, in how many
seconds. ``tests/test_readme_results.py`` runs the check in ``make test``, so a README figure can
neither be typed by hand nor go stale. README.md is rewritten atomically (a temporary file renamed onto it).
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


def load_records(results: Path = RESULTS) -> dict[str, dict]:
    records = {}
    for path in sorted(results.glob("*.json")):
        record = json.loads(path.read_text())
        if "readme" in record:
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
