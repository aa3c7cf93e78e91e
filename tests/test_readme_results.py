"""The README's results tables are exactly what benchmarks/results/*.json render to."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _module():
    spec = importlib.util.spec_from_file_location("readme_tables", ROOT / "benchmarks" / "readme_tables.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_tables_match_results_files():
    mod = _module()
    text = (ROOT / "README.md").read_text()
    new, problems = mod.rewrite(text, mod.load_records())
    assert not problems, problems
    assert new == text, "README.md results tables are stale: run python benchmarks/readme_tables.py"


def test_every_results_file_has_provenance():
    for path in sorted((ROOT / "benchmarks" / "results").glob("*.json")):
        record = json.loads(path.read_text())
        for key in ("command", "commit", "machine", "threads", "seconds", "figures"):
            assert key in record, f"{path.name} lacks {key}"


def test_check_detects_a_changed_figure(tmp_path):
    mod = _module()
    record = {"name": "x", "command": "python benchmarks/x.py", "commit": "0" * 40, "machine": {}, "threads": {},
              "seconds": 1.0, "figures": {"a": 0.5},
              "readme": {"title": "X", "columns": ["a"], "rows": [["0.500"]]}}
    text = "intro\n<!-- results:x -->\nold\n<!-- /results:x -->\n"
    new, problems = mod.rewrite(text, {"x": record})
    assert not problems and "| 0.500 |" in new
    record["readme"]["rows"] = [["0.600"]]
    newer, _ = mod.rewrite(new, {"x": record})
    assert newer != new and "| 0.600 |" in newer
    _, problems = mod.rewrite("no markers\n", {"x": record})
    assert problems and "no <!-- results:x --> block" in problems[0]
    _, problems = mod.rewrite(text, {})
    assert problems and "has no benchmarks/results/x.json" in problems[0]


def test_results_writer_roundtrip(tmp_path):
    spec = importlib.util.spec_from_file_location("_results", ROOT / "benchmarks" / "_results.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    path = mod.write_results("t", {"r2": mod.summarize([0.9, 0.95, 1.0])}, seconds=2.5, out_dir=tmp_path,
                             argv=["benchmarks/t.py", "--seeds", "0,1,2"], split={"fit": 10})
    record = json.loads(path.read_text())
    assert record["figures"]["r2"]["mean"] == pytest.approx(0.95)
    assert record["figures"]["r2"]["sd"] == pytest.approx(0.05)
    assert record["command"].endswith("--seeds 0,1,2") and record["split"] == {"fit": 10}
    assert not list(tmp_path.glob(".*part"))
    with pytest.raises(ValueError):
        mod.write_results("bad", {}, seconds=0, out_dir=tmp_path, readme={"title": "t", "columns": ["a"], "rows": [[]]})


def test_provenance_commit_named_by_caller(monkeypatch):
    """A copied tree (a GPU machine, whose .git may be older) takes the commit its caller names, says so,
    and keeps git's view there beside it."""
    spec = importlib.util.spec_from_file_location("_results", ROOT / "benchmarks" / "_results.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "_git", lambda *args: None)
    monkeypatch.delenv("NEURODYN_SOURCE_COMMIT", raising=False)
    record = mod.provenance(["benchmarks/t.py"])
    assert record["commit"] is None and "commit_from" not in record
    monkeypatch.setenv("NEURODYN_SOURCE_COMMIT", "abc123")
    record = mod.provenance(["benchmarks/t.py"])
    assert record["commit"] == "abc123" and "NEURODYN_SOURCE_COMMIT" in record["commit_from"]
    assert record["dirty"] is None and record["git_where_run"] == {"commit": None, "dirty": None}
    monkeypatch.setattr(mod, "_git", lambda *args: "" if args[0] == "status" else "def456")
    record = mod.provenance(["benchmarks/t.py"])
    assert record["commit"] == "abc123" and record["git_where_run"] == {"commit": "def456", "dirty": False}


def test_readme_commands_name_no_machine_path():
    """Absolute paths in a recorded command are shortened in the README (the results file keeps them)."""
    mod = _module()
    assert mod.public_command("python x.py --reference /home/u/onehot-hmmglm --a=/tmp/r/n.json b/c") == (
        "python x.py --reference .../onehot-hmmglm --a=.../n.json b/c")
    text = (ROOT / "README.md").read_text()
    for line in text.splitlines():
        if line.startswith("<sub>`python"):
            command = line.split("`")[1]
            assert not any(t.lstrip("-").split("=")[-1].startswith("/") for t in command.split()), line


def test_results_dir_from_the_environment(tmp_path, monkeypatch):
    """Rerunning a README command rewrote the committed results file; NEURODYN_RESULTS_DIR sends every
    benchmark's file elsewhere (an explicit out_dir still wins)."""
    spec = importlib.util.spec_from_file_location("_results", ROOT / "benchmarks" / "_results.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setenv("NEURODYN_RESULTS_DIR", str(tmp_path / "env"))
    assert mod.write_results("t", {}, seconds=0, argv=["t"]) == tmp_path / "env" / "t.json"
    given = mod.write_results("t", {}, seconds=0, argv=["t"], out_dir=tmp_path / "given")
    assert given == tmp_path / "given" / "t.json"
    assert not (mod.RESULTS_DIR / "t.json").exists()


def test_a_failed_rewrite_leaves_the_old_readme_and_no_temporary_file(tmp_path, monkeypatch):
    """readme_tables.py wrote README.md in place (Path.write_text): a failure mid-write (disk full, Ctrl-C) left
    a truncated README. It writes a temporary file and renames it: the old README stays whole, nothing is left."""
    mod = _module()
    record = {"name": "x", "command": "python benchmarks/x.py", "commit": "0" * 40, "machine": {}, "threads": {},
              "seconds": 1.0, "figures": {"a": 0.5},
              "readme": {"title": "X", "columns": ["a"], "rows": [["0.500"]]}}
    readme = tmp_path / "README.md"
    old = "intro\n<!-- results:x -->\nstale\n<!-- /results:x -->\n" + "more text\n" * 100
    readme.write_text(old)
    monkeypatch.setattr(mod, "README", readme)
    monkeypatch.setattr(mod, "load_records", lambda: {"x": record})
    real = Path.write_text

    def half_then_fail(self, data, *args, **kwargs):  # half the text reaches the disk, then the write fails
        real(self, data[: len(data) // 2], *args, **kwargs)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "write_text", half_then_fail)
    with pytest.raises(OSError):
        mod.main([])
    monkeypatch.setattr(Path, "write_text", real)
    assert readme.read_text() == old and sorted(p.name for p in tmp_path.iterdir()) == ["README.md"]
    assert mod.main([]) == 0  # and a write that succeeds replaces it
    assert "| 0.500 |" in readme.read_text() and sorted(p.name for p in tmp_path.iterdir()) == ["README.md"]


GOOD = {"name": "x", "command": "python benchmarks/x.py", "commit": "0" * 40, "machine": {}, "threads": {},
        "seconds": 1.0, "figures": {"a": 0.5}, "readme": {"title": "X", "columns": ["a"], "rows": [["0.500"]]}}


@pytest.mark.parametrize("content, field, message", [
    ('{"name": "x", "trunc', "results file", "cannot read a results file"),
    ("[1, 2]", "results file", "not a results file"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "seconds"}), "seconds", "missing or not a number"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "command"}), "command", "missing"),
    (json.dumps({**GOOD, "name": "y"}), "name", "must be the file's name 'x'"),
    (json.dumps({**GOOD, "readme": {"title": "X", "columns": ["a", "b"], "rows": [["1"]]}}), "readme.rows",
     "rows of 2 cells"),
    (json.dumps({**GOOD, "readme": {"columns": ["a"], "rows": []}}), "readme.title", "missing"),
    (json.dumps({**GOOD, "threads": 1}), "threads", "not an object"),
])
def test_a_results_file_that_cannot_be_rendered_is_one_line_naming_it_and_the_field(tmp_path, monkeypatch, capsys,
                                                                                   content, field, message):
    """readme_tables.py (and --check) read every results file with json.loads and rendered it unchecked: a cut-short
    or hand-edited file was a JSONDecodeError or KeyError traceback; a file copied under another name rendered a
    table naming the other file as its source. Now one line naming the file and the field, exit code 2, and the
    README untouched."""
    from neurodyn.errors import InputError

    mod = _module()
    (tmp_path / "x.json").write_text(content)
    with pytest.raises(InputError) as err:
        mod.load_records(tmp_path)
    assert f"x.json: {field}: " in str(err.value) and message in str(err.value), str(err.value)
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:x -->\nold\n<!-- /results:x -->\n")
    load = mod.load_records
    monkeypatch.setattr(mod, "README", readme)
    monkeypatch.setattr(mod, "load_records", lambda: load(tmp_path))
    for argv in ([], ["--check"]):
        assert mod.main(argv) == 2
        lines = capsys.readouterr().err.splitlines()
        assert len(lines) == 1 and f": error: {tmp_path / 'x.json'}: {field}: " in lines[0], lines
    assert readme.read_text() == "intro\n<!-- results:x -->\nold\n<!-- /results:x -->\n"
    (tmp_path / "x.json").write_text(json.dumps(GOOD))  # and a good file renders
    assert mod.main([]) == 0 and "| 0.500 |" in readme.read_text()


def test_every_write_says_where_and_a_committed_file_replaced_is_named(tmp_path, monkeypatch, capsys):
    """departures.py, evaluate_speed.py, hmm_speed.py, onehot_restarts.py and prepare_speed.py wrote their results
    file without a word: a rerun of a README command replaced the committed file silently. write_results now says
    where it wrote, on stderr, and says when that replaced a committed results file."""
    spec = importlib.util.spec_from_file_location("_results", ROOT / "benchmarks" / "_results.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.delenv("NEURODYN_RESULTS_DIR", raising=False)
    path = mod.write_results("t", {}, seconds=0, argv=["t"], out_dir=tmp_path / "elsewhere")
    assert capsys.readouterr().err == f"wrote {path}\n"
    monkeypatch.setattr(mod, "RESULTS_DIR", tmp_path / "results")  # stands for benchmarks/results
    first = mod.write_results("t", {}, seconds=0, argv=["t"])  # a new file there: nothing replaced
    assert first == tmp_path / "results" / "t.json" and capsys.readouterr().err == f"wrote {first}\n"
    mod.write_results("t", {}, seconds=0, argv=["t"])
    assert capsys.readouterr().err == (f"wrote {first} (replaced the committed results file; set "
                                       "NEURODYN_RESULTS_DIR=DIR to write elsewhere)\n")
