"""The benchmark scripts' command lines: bad values are one line naming the option and exit code 2, before
anything runs or is written (nothing here trains a model)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


def _load_benchmark(name: str):
    """benchmarks/<name>.py as a module (benchmarks/ is on sys.path only while it loads)."""
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(BENCH))
    return mod


def _script(name: str, *args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1"}
    env["NEURODYN_RESULTS_DIR"] = str(cwd / "results")  # never the committed files, whatever the script does
    return subprocess.run([sys.executable, str(BENCH / f"{name}.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env)


def _one_line(proc: subprocess.CompletedProcess, name: str) -> str:
    """The whole output of a refused run of benchmarks/<name>.py: one line, ``<name>.py: error: ...``, exit code 2
    (no usage block above it, no traceback)."""
    lines = (proc.stdout + proc.stderr).splitlines()
    assert proc.returncode == 2 and len(lines) == 1, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert lines[0].startswith(f"{name}.py: error: "), lines[0]
    return lines[0]


def _refused(proc: subprocess.CompletedProcess, option: str) -> str:
    """The one error line of a refusal naming ``option`` (``<script>: error: <option>: ...``)."""
    line = _one_line(proc, Path(proc.args[1]).stem)
    assert f": error: {option}: " in line, line
    return line


@pytest.mark.parametrize("styles", ["", ",", " , "])
def test_nlb_synthetic_refuses_an_empty_style_list_and_keeps_the_results_file(tmp_path, styles):
    results = tmp_path / "r" / "nlb_synthetic.json"
    results.parent.mkdir()
    results.write_text('{"name": "nlb_synthetic", "figures": {"per_seed": {"mc_maze": {}}}}\n')
    before = results.read_bytes()
    proc = _script("nlb_synthetic", "--seeds", "0", "--styles", styles, "--results-dir", "r", cwd=tmp_path)
    assert "no style given" in _refused(proc, "--styles")
    assert results.read_bytes() == before and sorted(p.name for p in results.parent.iterdir()) == ["nlb_synthetic.json"]


def test_empty_lists_are_refused_by_every_list_option():
    """Each comma-list option of the benchmarks goes through one shared type: empty (or only commas) is refused."""
    sys.path.insert(0, str(BENCH))
    try:
        from _results import OptionValueError, count_list, name_list
    finally:
        sys.path.remove(str(BENCH))
    for text in ("", ",", " ,, "):
        with pytest.raises(OptionValueError, match="no style given"):
            name_list(("a", "b"), "style")(text)
        with pytest.raises(OptionValueError, match="no numbers"):
            count_list(text)
    with pytest.raises(OptionValueError, match="unknown style 'c'"):
        name_list(("a", "b"), "style")("a,c")
    with pytest.raises(OptionValueError, match="whole numbers >= 1"):
        count_list("2,0")
    assert count_list(" 2, 5 ") == [2, 5] and name_list(("a", "b"), "x")("b,a,b") == ["b", "a"]


def test_departures_refuses_an_empty_variant_list_before_running_anything(monkeypatch, capsys):
    """``--variants ''`` ran neurodyn's variant alone and wrote it over the full results; now refused."""
    dep = _load_benchmark("departures")

    def no_run(*args, **kwargs):
        raise AssertionError("a variant was run")

    monkeypatch.setattr(dep, "_job", no_run)
    monkeypatch.setattr(dep, "_nlb_job", no_run)
    monkeypatch.setattr(dep, "write_results", no_run)
    for variants in ("", ",", "neurodyn,bogus"):
        with pytest.raises(SystemExit) as exc:
            dep.main(["--variants", variants, "--seeds", "0", "--epochs", "1", "--jobs", "1", "--no-write"])
        assert exc.value.code == 2
        assert "error: --variants: " in capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize("name, args, option", [
    ("upsample_alignment", ["--seeds", "0", "--styles", ","], "--styles"),
    ("hmm_speed", ["--states", ""], "--states"),
    ("hmm_speed", ["--lengths", ","], "--lengths"),
    ("hmm_speed", ["--methods", ""], "--methods"),
    ("hmmglm_real_states", ["--no-write", "--states", ","], "--states"),
    ("langevinflow_speed", ["--no-write", "--precisions", ""], "--precisions"),
    ("real_pseudo_cosmoothing", ["--no-write", "--candidates"], "--candidates"),
])
def test_other_list_options_refuse_an_empty_list(tmp_path, name, args, option):
    _refused(_script(name, *args, cwd=tmp_path), option)
    assert not list(tmp_path.iterdir())


COUNTS = [("nlb_synthetic", "--threads"), ("nlb_synthetic", "--members"), ("hmmglm_synthetic", "--jobs"),
          ("hmmglm_synthetic", "--threads"), ("departures", "--jobs"), ("departures", "--epochs"),
          ("lorenz", "--jobs"), ("lorenz", "--members"), ("lorenz", "--threads"), ("real_pseudo_cosmoothing", "--jobs"),
          ("real_pseudo_cosmoothing", "--epochs"), ("onehot_restarts", "--runs"), ("onehot_restarts", "--jobs"),
          ("hmmglm_nlb", "--threads"), ("hmmglm_real_states", "--threads"), ("onehot_reference", "--repeats"),
          ("hmm_speed", "--threads"), ("evaluate_speed", "--repeats"), ("prepare_speed", "--repeats"),
          ("scaling", "--steps"), ("langevinflow_speed", "--rounds"), ("gpu_check", "--lorenz-epochs")]


@pytest.mark.parametrize("name, option", COUNTS)
def test_counts_below_one_are_refused(tmp_path, name, option):
    """``--threads 0`` was passed on (libgomp complained, then the whole run started), ``--jobs 0`` likewise.
    The unknown option after it makes a script that accepts the count stop at once (exit 2, another line)."""
    _refused(_script(name, option, "0", "--no-such-option", cwd=tmp_path), option)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name, option, value", [
    ("hmmglm_synthetic", "--seeds", "a,b"), ("hmmglm_synthetic", "--seeds", ""), ("hmmglm_synthetic", "--seeds", "3-1"),
    ("lorenz", "--seeds", "x"), ("real_pseudo_cosmoothing", "--seeds", "1-0"),
    ("real_pseudo_cosmoothing", "--select-seed", "-1"), ("baseline_synthetic_styles", "--seed", "-1"),
    ("baseline_synthetic_styles", "--seed", "0,1"), ("evaluate_speed", "--seed", "x"),
    ("hmmglm_real_states", "--seed", "-3"), ("langevinflow_speed", "--seed", "-1"), ("prepare_speed", "--seed", "-1"),
    ("nlb_synthetic", "--seeds", "2-1"),
])
def test_every_seed_option_goes_through_the_shared_seed_parser(tmp_path, name, option, value):
    """Bad seeds were a ValueError traceback (or, for ``--seed -1``, a traceback from deep inside the run)."""
    last = _refused(_script(name, f"{option}={value}", "--no-such-option", cwd=tmp_path), option)
    assert "seed" in last
    assert not list(tmp_path.iterdir())


def test_no_benchmark_reads_a_seed_option_as_a_plain_int_or_string():
    for path in sorted(BENCH.glob("*.py")):
        for line in path.read_text().splitlines():
            if 'add_argument("--seed' in line or 'add_argument("--select-seed' in line:
                assert "type=parse_seed" in line, f"{path.name}: {line.strip()}"


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    ("not json {", "not JSON"),
    ('{"name": "lorenz", "figures": {}}', "not a results file of nlb_synthetic"),
    ('[1, 2]', "not a results file of nlb_synthetic"),
    ('{"name": "nlb_synthetic", "figures": {"per_seed": [1]}}', "no per_seed runs"),
])
def test_nlb_synthetic_combine_refuses_a_file_that_is_no_results_file_of_it(tmp_path, content, message):
    bad = tmp_path / "in.json"
    if content is not None:
        bad.write_text(content)
    proc = _script("nlb_synthetic", "--combine", str(bad), "--results-dir", str(tmp_path / "r"), cwd=tmp_path)
    last = _refused(proc, "--combine")
    assert message in last and str(bad) in last
    assert not (tmp_path / "r").exists()


def test_read_results_names_the_file_and_what_is_wrong(tmp_path):
    sys.path.insert(0, str(BENCH))
    try:
        from _results import OptionValueError, read_results
    finally:
        sys.path.remove(str(BENCH))
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"name": "x", "figures": {}}))
    assert read_results(good, "x")["name"] == "x"
    with pytest.raises(OptionValueError, match="not a results file of y"):
        read_results(good, "y")
    with pytest.raises(OptionValueError, match="no such file"):
        read_results(tmp_path / "none.json", "x")


#: every benchmark script; nlb_tools_prepare.py is not one: prepare_speed.py runs it with a JSON job (no options) in
#: the nlb_tools environment, where neurodyn and its parser are not installed
SCRIPTS = sorted(p.stem for p in BENCH.glob("*.py") if not p.name.startswith("_") and p.stem != "nlb_tools_prepare")


@pytest.mark.parametrize("name", SCRIPTS)
def test_an_unknown_option_is_one_line_and_exit_2(tmp_path, name):
    """argparse printed its usage block (2 to 12 lines) above the error; prepare_speed.py ignored an unknown option
    and ran (parse_known_args). Now one line, as in the ``neurodyn`` commands."""
    line = _one_line(_script(name, "--no-such-option", cwd=tmp_path), name)
    assert "--no-such-option" in line or "required: --reference" in line
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_still_shows_every_option(tmp_path, name):
    proc = _script(name, "-h", cwd=tmp_path)
    assert proc.returncode == 0 and not proc.stderr, proc.stderr[-2000:]
    assert proc.stdout.startswith(f"usage: {name}.py ") and "-h, --help" in proc.stdout
    assert len(proc.stdout.splitlines()) > 5


@pytest.mark.parametrize("name, args, field", [
    ("lorenz", ["--seeds", "a"], "--seeds"),  # a bad value
    ("lorenz", ["--seeds"], "--seeds"),  # no value
    ("departures", ["--case", "x"], "--case"),  # not one of the choices
    ("onehot_reference", [], "arguments"),  # a required option left out
    ("lorenz", ["--epochs", "200,200"], "--epochs"),  # checks after parsing
    ("lorenz", ["--model", "hidden_size"], "--model"),
    ("nlb_synthetic", ["--fit-args", '"unclosed'], "--fit-args"),
    ("hmmglm_synthetic", ["--name", "a/b", "--no-write"], "--name"),
    ("onehot_restarts", ["--seeds", "0"], "--seeds"),
    ("nlb_synthetic", ["--combine", "missing.json"], "--combine"),  # files read
    ("real_pseudo_cosmoothing", ["--nwb", "missing.nwb"], "missing.nwb: --nwb"),
    ("hmmglm_real_states", ["--nwb", "missing.nwb", "--no-write"], "missing.nwb: --nwb"),
    ("gpu_check", ["--rerender", "missing.json"], "missing.json: --rerender"),
    ("onehot_reference", ["--reference", "."], "--reference"),  # checkouts
    ("langevinflow_speed", ["--reference", "."], "--reference"),
    ("langevinflow_speed", ["--reference", "ref", "--device", "cuda"], "--device"),
    ("prepare_speed", ["--before", "."], "--before"),
    ("prepare_speed", ["--nlb-python", "a_file"], "--nlb-python"),
    ("lorenz", ["--out", "a_file"], "--out"),  # folders and files written: a file where a folder goes
    ("real_pseudo_cosmoothing", ["--out", "a_file/logs"], "--out"),
    ("nlb_synthetic", ["--results-dir", "a_file/r"], "--results-dir"),
    ("nlb_synthetic", ["--keep", "a_file"], "--keep"),
    ("hmmglm_nlb", ["--log", "."], "--log"),
    ("hmmglm_nlb", ["--log", "a_file/run.log"], "--log"),
    ("hmmglm_synthetic", ["--results-dir", "a_file", "--fast"], "--results-dir"),
    ("onehot_restarts", ["--results-dir", "a_file"], "--results-dir"),
    ("hmmglm_real_states", ["--results-dir", "a_file"], "--results-dir"),
    ("gpu_check", ["--out-dir", "a_file", "--cpu-dry-run"], "--out-dir"),
    ("scaling", ["--out-dir", "a_file", "--quick"], "--out-dir"),
    ("langevinflow_speed", ["--out-dir", "a_file"], "--out-dir"),
])
def test_bad_arguments_are_one_line_naming_the_field_and_exit_2_before_anything_runs(tmp_path, name, args, field):
    """A bad value, choice or missing option printed argparse's usage block first; a missing or unfit path given
    was a traceback, a one-line exit 1, or found only after the run (an unwritable --out), or another file was
    read in its place (hmmglm_real_states.py --nwb). Every one is now refused up front in one line, exit code 2."""
    (tmp_path / "a_file").write_text("")
    (tmp_path / "ref" / "nlb_lightning").mkdir(parents=True)
    (tmp_path / "ref" / "nlb_lightning" / "models.py").write_text("")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    line = _one_line(_script(name, *args, cwd=tmp_path), name)
    assert f": error: {field}: " in line, line
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert (tmp_path / "a_file").read_text() == ""


def test_the_shared_module_loads_beside_an_older_neurodyn(tmp_path):
    """`prepare_speed.py --before CHECKOUT` runs the benchmarks' shared module with an older neurodyn first on
    the path; importing `neurodyn.errors.ArgumentParser` when the module loaded broke every checkout from
    before that class (review, helper-67). A stand-in old neurodyn: an errors module without ArgumentParser."""
    old = tmp_path / "old" / "neurodyn"
    old.mkdir(parents=True)
    (old / "__init__.py").write_text("")
    (old / "errors.py").write_text("class InputError(ValueError):\n    pass\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "old"), str(ROOT / "benchmarks")])}
    proc = subprocess.run([sys.executable, "-c", "import _results; print(_results.BenchmarkParser.__name__)"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert proc.returncode == 0 and proc.stdout.strip() == "BenchmarkParser", proc.stderr


def test_a_checkout_under_home_is_used_as_checked(tmp_path, monkeypatch):
    """`--before ~/ck` was checked with '~' expanded but used unexpanded (a folder './~/ck' that does not
    exist, so the 'before' side timed the installed neurodyn); the checked, expanded path is what is used."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import _results
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "marker.py").write_text("")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert _results.checkout_with("marker.py", "x")("~/ck") == str(tmp_path / "ck")
