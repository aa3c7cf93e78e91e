"""The benchmark scripts' command lines: bad values are one line naming the option and exit code 2, before
anything runs or is written (nothing here trains a model)."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from benchmark_modules import load_benchmark as _load_benchmark

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "benchmarks"


def _script(name: str, *args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}  # nothing written into a checkout imported
    env["NEURODYN_RESULTS_DIR"] = str(cwd / "results")  # never the committed files, whatever the script does
    return subprocess.run([sys.executable, str(BENCH / f"{name}.py"), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env)


def _fake_inputs(tmp_path: Path) -> list[Path]:
    """A plain file (``a_file``) and the markers of the two reference checkouts (``ref``: LangevinFlow's,
    ``oh``: the one-hot HMM-GLM code's), holding no code; returns the folder's listing to compare after a run."""
    (tmp_path / "a_file").write_text("")
    (tmp_path / "ref" / "nlb_lightning").mkdir(parents=True)
    (tmp_path / "ref" / "nlb_lightning" / "models.py").write_text("")
    (tmp_path / "oh" / "hmmglm" / "hmmglm" / "deprecated").mkdir(parents=True)
    (tmp_path / "oh" / "hmmglm" / "hmmglm" / "deprecated" / "model.py").write_text("")
    return sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))


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


@pytest.mark.parametrize("name, option, value, message", [
    ("evaluate_speed", "--blas-threads", "0", ">= 1"), ("evaluate_speed", "--blas-threads", "-1", ">= 1"),
    ("gpu_check", "--budget-s", "nan", "> 0"), ("gpu_check", "--budget-s", "-5", "> 0"),
    ("gpu_check", "--skip", "cuda-tests", "unknown section 'cuda-tests'"), ("gpu_check", "--skip", ",", "no section"),
    ("hmmglm_real_states", "--lr", "-0.01", "> 0"), ("hmmglm_real_states", "--window-ms", "inf", "> 0"),
    ("langevinflow_speed", "--warmup", "-1", ">= 0"), ("scaling", "--warmup", "-1", ">= 0"),
    ("scaling", "--max-gib", "nan", "> 0"), ("real_pseudo_cosmoothing", "--auto-ensemble", "-2", ">= 0"),
])
def test_numbers_and_names_a_run_cannot_use_are_refused(tmp_path, name, option, value, message):
    """These options took any int / float / text: ``evaluate_speed.py --blas-threads -1`` ran and wrote "BLAS threads
    -1" into its README table; ``gpu_check.py --budget-s -5`` skipped every section and wrote that report over the
    committed one, ``nan`` never skipped; a misspelt ``--skip`` section was ignored and the section ran; a negative
    ``--warmup`` or ``--auto-ensemble`` meant 0 without a word. Now one line naming the option, exit code 2."""
    line = _refused(_script(name, f"{option}={value}", "--no-such-option", cwd=tmp_path), option)
    assert message in line, line
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


@pytest.mark.parametrize("value, message", [
    ("0,0", "seed 0 named twice"), ("0-2,1", "seed 1 named twice"), ("0,,1", "empty item"), ("0,", "empty item"),
    ("-1", "is not a seed"), ("1--2", "is not a seed"), ("1_0", "is not a seed"), ("+1", "is not a seed"),
    ("\u0663", "is not a seed"), ("1.5", "is not a seed"), ("2147483648", "is above 2147483647"),
    ("0-20000", "more than 10000 seeds"), (" ", "no seeds"),
])
def test_seed_lists_that_name_a_seed_twice_or_leave_an_item_empty_are_refused(tmp_path, value, message):
    """``--seeds 0,0`` trained seed 0 twice and counted it twice in every mean and sd (n = 2, sd 0: a two-seed result
    from one seed); ``0,,1`` dropped the empty item; ``1_0`` read as 10 and an Arabic-Indic digit as a number;
    ``0-2000000000`` built a list of two billion seeds; a seed above 2**32 - 1 failed in Lightning's
    seed_everything mid-run. Each is one line naming --seeds, exit code 2, nothing written."""
    line = _refused(_script("lorenz", f"--seeds={value}", "--no-such-option", cwd=tmp_path), "--seeds")
    assert message in line, line
    assert not list(tmp_path.iterdir())


def test_seed_lists_still_read_as_documented():
    sys.path.insert(0, str(BENCH))
    try:
        from _results import parse_seed, parse_seeds
    finally:
        sys.path.remove(str(BENCH))
    assert parse_seeds("0,1,2") == [0, 1, 2] and parse_seeds(" 100-103 , 7 ") == [100, 101, 102, 103, 7]
    assert parse_seeds("3 - 4") == [3, 4] and parse_seeds("2147483647") == [2147483647] and parse_seed("5") == 5
    assert len(parse_seeds("0-9999")) == 10000


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
    # a run without the figures the summary reads: a KeyError traceback once every run was done
    ('{"name": "nlb_synthetic", "figures": {"per_seed": {"mc_maze": {"0": {"seconds": {}}}}}}',
     "lack what the summary needs"),
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


#: every benchmark script (nlb_tools_prepare.py too: it runs in the nlb_tools environment, without neurodyn, and its
#: parser words its errors with this checkout's neurodyn/errors.py)
SCRIPTS = sorted(p.stem for p in BENCH.glob("*.py") if not p.name.startswith("_"))


@pytest.mark.parametrize("name", SCRIPTS)
def test_an_unknown_option_is_one_line_and_exit_2(tmp_path, name):
    """argparse printed its usage block (2 to 12 lines) above the error; prepare_speed.py ignored an unknown option
    and ran (parse_known_args). Now one line, as in the ``neurodyn`` commands."""
    line = _one_line(_script(name, "--no-such-option", cwd=tmp_path), name)
    assert "--no-such-option" in line or "required: --reference" in line or "required: --job" in line
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
    ("onehot_reference", ["--reference", "oh"], "--reference"),  # its marker, but code that does not import
    ("langevinflow_speed", ["--reference", "."], "--reference"),
    ("langevinflow_speed", ["--reference", "ref"], "--reference"),  # an empty models.py: no LangevinAutoencoder
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
    # more held-in neurons than neurons: named n_neurons (the model's field), not the option (tiny sizes, so that
    # a regression runs in a second)
    ("langevinflow_speed", ["--heldin", "10", "--neurons", "5", "--steps", "1", "--warmup", "0", "--batch", "2",
                            "--hidden", "8", "--obs-bins", "3", "--fwd-bins", "1", "--threads", "1"], "--neurons"),
])
def test_bad_arguments_are_one_line_naming_the_field_and_exit_2_before_anything_runs(tmp_path, name, args, field):
    """A bad value, choice or missing option printed argparse's usage block first; a missing or unfit path given
    was a traceback, a one-line exit 1, or found only after the run (an unwritable --out), or another file was
    read in its place (hmmglm_real_states.py --nwb). Every one is now refused up front in one line, exit code 2."""
    before = _fake_inputs(tmp_path)
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


# -- files and JSON given to an option, read after parsing: one line naming the option, exit code 2 ------------------

JOB = {"folder": ".", "dataset": "mc_maze", "bin_ms": 5, "phase": "val", "out": "o"}


@pytest.mark.parametrize("job, message", [
    ("{bad", "not JSON"),
    ("[1]", "expected a JSON object"),
    (json.dumps({k: v for k, v in JOB.items() if k != "out"}), "field 'out' missing"),
    (json.dumps({**JOB, "phase": "train"}), "field 'phase' must be one of 'val', 'test'"),
    (json.dumps({**JOB, "bin_ms": "5"}), "field 'bin_ms' must be int"),
    (json.dumps({**JOB, "bin_ms": 0}), "field 'bin_ms' must be >= 1"),
    (json.dumps({**JOB, "folder": "missing"}), "field 'folder': missing: no such file or folder"),
])
def test_nlb_tools_prepare_refuses_a_bad_job_in_one_line_without_neurodyn(tmp_path, job, message):
    """nlb_tools_prepare.py read its JSON job with json.loads and used its fields unchecked: a bad job was a
    traceback (JSONDecodeError, KeyError, IndexError with none). It runs in the nlb_tools environment, where
    neurodyn is not installed: `python -S` (no site-packages, no PYTHONPATH) stands for it here."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    proc = subprocess.run([sys.executable, "-S", str(BENCH / "nlb_tools_prepare.py"), "--job", job], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, env=env)
    line = _one_line(proc, "nlb_tools_prepare")
    assert line.startswith("nlb_tools_prepare.py: error: --job: ") and message in line, line
    assert not list(tmp_path.iterdir())


def test_prepare_speed_hands_its_jobs_through_the_checked_option(tmp_path):
    """prepare_speed.py's own --child took json.loads too (a job without 'out': KeyError traceback in the child);
    both sides now read the job with nlb_tools_prepare.job_type, and the nlb_tools side gets it as --job."""
    proc = _script("prepare_speed", "--child", json.dumps({**JOB, "phase": "x"}), cwd=tmp_path)
    assert "field 'phase'" in _refused(proc, "--child")
    assert '["--job"]' in (BENCH / "prepare_speed.py").read_text()


def test_prepare_speed_tries_the_other_sides_before_any_work(tmp_path):
    """A --before checkout whose neurodyn does not import (or is not the neurodyn imported: no __init__.py) failed
    in the child of the first 'before' run, after the synthetic files were written: many lines, exit 1. An
    --nlb-python without nlb_tools likewise. Both are tried first, as the runs import them."""
    (tmp_path / "ck" / "neurodyn" / "data").mkdir(parents=True)
    (tmp_path / "ck" / "neurodyn" / "data" / "prepare.py").write_text("")
    small = ["--trials", "2", "--test-trials", "1", "--units", "4", "--repeats", "1"]
    line = _refused(_script("prepare_speed", *small, "--no-nlb-tools", "--before", "ck", cwd=tmp_path), "--before")
    assert "not from the checkout" in line
    (tmp_path / "ck" / "neurodyn" / "__init__.py").write_text("")
    (tmp_path / "ck" / "neurodyn" / "data" / "__init__.py").write_text("")
    (tmp_path / "ck" / "neurodyn" / "data" / "prepare.py").write_text("raise ImportError('an older layout')\n")
    line = _refused(_script("prepare_speed", *small, "--no-nlb-tools", "--before", "ck", cwd=tmp_path), "--before")
    assert "an older layout" in line
    python = tmp_path / "python"  # an interpreter without nlb_tools (neurodyn's, with no site-packages)
    python.write_text(f"#!/bin/sh\nexec {sys.executable} -S \"$@\"\n")
    python.chmod(0o755)
    line = _refused(_script("prepare_speed", *small, "--nlb-python", "python", cwd=tmp_path), "--nlb-python")
    assert "cannot import nlb_tools" in line and str(python) in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck", "python"]


@pytest.mark.parametrize("content, message", [
    ("{bad", "not JSON"),
    ("[1]", "not a seed log of lorenz.py"),
    ('{"seed": 0, "model": MODEL, "optimiser": OPT, "langevinflow_select_history": 5}', "its settings cannot be read"),
])
def test_lorenz_reuse_refuses_a_log_that_is_none_before_any_work(tmp_path, content, message):
    """--reuse read each seed's log with json.loads and indexed it unchecked: a traceback."""
    from neurodyn.demo import LORENZ_MODEL, LORENZ_OPT

    (tmp_path / "lz").mkdir()
    log = tmp_path / "lz" / "seed0.json"
    log.write_text(content.replace("MODEL", json.dumps(LORENZ_MODEL)).replace("OPT", json.dumps(LORENZ_OPT)))
    before = log.read_bytes()
    proc = _script("lorenz", "--reuse", "--out", "lz", "--seeds", "0", "--epochs", "1", "--members", "1",
                   "--no-write", cwd=tmp_path)
    line = _refused(proc, "--reuse")
    assert message in line and "lz/seed0.json" in line
    assert log.read_bytes() == before and sorted(p.name for p in tmp_path.rglob("*")) == ["lz", "seed0.json"]


def test_lorenz_reuse_trains_again_for_a_log_without_the_figures_it_takes(tmp_path, monkeypatch, capsys):
    """A log with the run's settings but without a figure the results take (here the deterministic pass's R2) was
    reused, and the run failed at its end with a KeyError; it is now trained again, as a log of other settings."""
    bench = _load_benchmark("lorenz")
    record = json.loads((ROOT / "benchmarks" / "results" / "lorenz.json").read_text())["figures"]["per_seed"][0]
    del record["langevinflow_mean_pass"]

    def trained(*args, **kwargs):
        raise RuntimeError("trained again")

    monkeypatch.setattr(bench, "fit_member", trained)
    monkeypatch.setattr(bench, "_baselines", lambda *args: {})
    monkeypatch.setattr(bench, "_simulate", lambda seed, sizes: (
        type("Sim", (), {"truth": None, "condition_ids": None}), None, (None, None, None)))
    monkeypatch.setattr(bench, "_data_digest", lambda *args: "same data")
    record["data_sha256"] = "same data"  # only the missing figure differs
    (tmp_path / f"seed{record['seed']}.json").write_text(json.dumps(record))
    epochs = ",".join(map(str, record["epoch_candidates_tried"]))
    with pytest.raises(RuntimeError, match="trained again"):
        bench.main(["--seeds", str(record["seed"]), "--epochs", epochs, "--members", str(record["members"]),
                    "--out", str(tmp_path), "--reuse", "--no-write"])
    assert "other settings or data (its data_sha256), not reused" in capsys.readouterr().err


def test_lorenz_reuse_reads_every_log_before_it_scores_a_baseline(tmp_path, monkeypatch, capsys):
    """A reusable log's baselines were scored while the later logs were still being read: a bad log of a later
    seed was refused only after that work. Every log is read first; a bad one is one line, nothing scored."""
    bench = _load_benchmark("lorenz")
    record = json.loads((ROOT / "benchmarks" / "results" / "lorenz.json").read_text())["figures"]["per_seed"][0]
    record["data_sha256"] = "same data"
    seed = record["seed"]
    (tmp_path / f"seed{seed}.json").write_text(json.dumps(record))
    (tmp_path / f"seed{seed + 1}.json").write_text("{bad")

    def scored(*args, **kwargs):
        raise RuntimeError("a baseline was scored")

    monkeypatch.setattr(bench, "_baselines", scored)
    monkeypatch.setattr(bench, "_data_digest", lambda *args: "same data")
    monkeypatch.setattr(bench, "_simulate", lambda seed, sizes: (
        type("Sim", (), {"truth": None, "condition_ids": None}), None, (None, None, None)))
    epochs = ",".join(map(str, record["epoch_candidates_tried"]))
    with pytest.raises(SystemExit) as stop:
        bench.main(["--seeds", f"{seed},{seed + 1}", "--epochs", epochs, "--members", str(record["members"]),
                    "--out", str(tmp_path), "--reuse", "--no-write"])
    assert stop.value.code == 2
    assert f"seed{seed + 1}.json: not JSON" in capsys.readouterr().err


def test_lorenz_reuse_takes_a_log_only_of_the_same_simulated_data(tmp_path):
    """A seed log was reused when its settings matched, whatever data it was fit on: after a change of the
    simulator its stale fits were reported beside baselines scored on the new data. Logs record the data's
    SHA-256 (spikes, true rates, labels, splits); one of other data, or none (an older log), is trained again."""
    bench = _load_benchmark("lorenz")
    record = json.loads((ROOT / "benchmarks" / "results" / "lorenz.json").read_text())["figures"]["per_seed"][0]
    seed, sizes = record["seed"], (20, 2, 2)
    sim, x, splits = bench._simulate(seed, sizes)
    digest = bench._data_digest(sim, x, splits)
    assert digest == bench._data_digest(*bench._simulate(seed, sizes))  # the same seed: the same data
    assert digest != bench._data_digest(*bench._simulate(seed + 1, sizes))
    moved = (splits[1], splits[0], splits[2])  # same arrays, other split: other data for the figures
    assert digest != bench._data_digest(sim, x, moved)
    path = tmp_path / "seed.json"
    settings = (seed, record["epoch_candidates_tried"], sizes, record["langevinflow_select_history"][0][0],
                record["members"], {}, {})
    for recorded, reused in ((digest, True), ("0" * 64, False), (None, False)):
        log = {**record, "data_sha256": recorded} if recorded else record
        path.write_text(json.dumps(log))
        assert (bench.reusable_log(path, *settings, digest) is not None) == reused, recorded


@pytest.mark.parametrize("log, rates, message", [
    ("{bad", np.zeros((2, 3, 4)), "select_500_epochs_seed0.json: not JSON"),
    ("{}", np.zeros((2, 3)), "select_500_epochs_seed0.npy: not the rates of a run log"),
    ("{}", None, "select_500_epochs_seed0.npy: not the rates of a run log"),
])
def test_real_pseudo_reuse_refuses_a_bad_run_log_before_any_work(tmp_path, log, rates, message):
    """--reuse read a run's log (json.loads) and its rates (np.load) when a phase first looked it up -- after the
    data were split and, for the report phase, after every select run: a traceback then."""
    (tmp_path / "po").mkdir()
    (tmp_path / "po" / "select_500_epochs_seed0.json").write_text(log)
    if rates is None:
        (tmp_path / "po" / "select_500_epochs_seed0.npy").write_text("not an array")
    else:
        np.save(tmp_path / "po" / "select_500_epochs_seed0.npy", rates)
    nwb = ROOT.parent / "shared" / "data" / "sub-Jenkins_ses-small_desc-test_ecephys.nwb"
    if not nwb.is_file():
        nwb = tmp_path / "stand_in.nwb"  # checked for existence only before the logs
        nwb.write_text("")
    proc = _script("real_pseudo_cosmoothing", "--nwb", str(nwb), "--reuse", "--out", "po", "--no-write",
                   "--candidates", "500 epochs", "--epochs", "1", "--auto-ensemble", "0", "--no-combine", cwd=tmp_path)
    assert message in _refused(proc, "--reuse")


def test_real_pseudo_names_its_n_select_option_when_it_leaves_no_trial(tmp_path):
    """An --n-select of every training trial was refused as 'n_select: must be between 1 and 79 ...': the field
    of neurodyn.data.pseudo.selection_split, not the script's option."""
    nwb = ROOT.parent / "shared" / "data" / "sub-Jenkins_ses-small_desc-test_ecephys.nwb"
    if not nwb.is_file():
        pytest.skip("needs the MC_Maze_Small test file (../shared/data)")
    proc = _script("real_pseudo_cosmoothing", "--nwb", str(nwb), "--n-select", "80", "--no-write", "--out", "po",
                   cwd=tmp_path)
    assert _refused(proc, "--n-select").endswith(
        "error: --n-select: must be between 1 and 79 (the split has 80 training trials)")
    assert not (tmp_path / "po").exists() and not (tmp_path / "results").exists()


def test_real_pseudo_reuse_refuses_rates_of_other_trials_before_any_work(tmp_path):
    """--reuse checked a log's settings, not its rates against the split: the rates of a run with --n-select 15
    were taken for a run with --n-select 16, and scoring them failed after the baselines had run ('rates:
    expected shape (16, 140, 27), got (15, 140, 27)': no file, no option). A log whose rates are not trials x
    bins x held-out units of its phase's trials is refused up front, naming the file and its shape."""
    nwb = ROOT.parent / "shared" / "data" / "sub-Jenkins_ses-small_desc-test_ecephys.nwb"
    if not nwb.is_file():
        pytest.skip("needs the MC_Maze_Small test file (../shared/data)")
    from neurodyn.data.pseudo import pseudo_cosmoothing_split, selection_split
    from neurodyn.training.recipes import SMALL_REAL_MODEL, SMALL_REAL_OPT

    split = pseudo_cosmoothing_split(nwb)
    want = selection_split(split, 16).eval_heldout.shape
    other = selection_split(split, 15).eval_heldout.shape  # the rates a --n-select 15 run logged
    (tmp_path / "po").mkdir()
    log = {"tag": "select:500 epochs", "seed": 0, "epochs": 1, "model": SMALL_REAL_MODEL, "optimiser": SMALL_REAL_OPT,
           "train_bin_ms": 20, "co_bps": 0.0, "train_seconds": 0.0}  # this run's settings: it would be reused
    (tmp_path / "po" / "select_500_epochs_seed0.json").write_text(json.dumps(log))
    np.save(tmp_path / "po" / "select_500_epochs_seed0.npy", np.ones(other))
    proc = _script("real_pseudo_cosmoothing", "--nwb", str(nwb), "--reuse", "--out", "po", "--no-write", "--seeds",
                   "0", "--candidates", "500 epochs", "--epochs", "1", "--auto-ensemble", "0", "--no-combine",
                   cwd=tmp_path, timeout=300)
    line = _refused(proc, "--reuse")
    assert line.endswith(f"--reuse: po/select_500_epochs_seed0.npy: shape: {' x '.join(map(str, other))}, but this "
                         f"run's select trials are {' x '.join(map(str, want))} (trials x bins x held-out units): a "
                         "log of another --n-select or other data"), line
    assert sorted(p.name for p in (tmp_path / "po").iterdir()) == ["select_500_epochs_seed0.json",
                                                                   "select_500_epochs_seed0.npy"]
    # rates of this run's trials pass the check
    bench = _load_benchmark("real_pseudo_cosmoothing")
    np.save(tmp_path / "po" / "select_500_epochs_seed0.npy", np.ones(want))
    bench.check_logs(str(tmp_path / "po"), {"select": want, "report": split.eval_heldout.shape})


@pytest.mark.parametrize("sections", ['5', '{"hmm": {"cases": [1]}}', '{"env": 3}'])
def test_gpu_check_rerender_refuses_sections_no_run_writes(tmp_path, sections):
    """--rerender checked the name and that figures held 'sections', then built the table from them: sections
    of another shape were an AttributeError / KeyError traceback."""
    path = tmp_path / "gpu_check.json"
    path.write_text(f'{{"name": "gpu_check", "figures": {{"sections": {sections}}}}}')
    before = path.read_bytes()
    line = _one_line(_script("gpu_check", "--rerender", str(path), cwd=tmp_path), "gpu_check")
    assert f": error: {path}: " in line and "figures.sections: not a gpu_check results file" in line, line
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["gpu_check.json"]


@pytest.mark.parametrize("args, message", [
    (["--child", "hmm", "--size", "{x"], "not JSON"),
    (["--child", "hmm"], "required with --child"),
    (["--child", "hmm", "--size", '{"bins": 10, "states": 2}'], "field 'neurons' missing"),
    (["--child", "langevinflow", "--size", '{"trials": 0, "neurons": 4, "heldin": 3, "obs_bins": 5, "fwd_bins": 1}'],
     "field 'trials' must be >= 1"),
])
def test_scaling_child_size_is_checked_as_an_option(tmp_path, args, message):
    """The size a parent hands its child (--size JSON) was read with json.loads and indexed unchecked."""
    assert message in _refused(_script("scaling", *args, cwd=tmp_path), "--size")


# -- the results folder ($NEURODYN_RESULTS_DIR, --results-dir / --out-dir), checked before any work -----------------

#: every benchmark that writes a results file, with options that run it in full (nothing refused, results written)
WRITERS = {
    "departures": [], "evaluate_speed": [], "gpu_check": [], "hmm_speed": [], "hmmglm_nlb": [],
    "hmmglm_real_states": [], "hmmglm_synthetic": ["--fast"], "langevinflow_speed": ["--reference", "ref"],
    "lorenz": [], "nlb_synthetic": [], "onehot_reference": ["--reference", "oh"], "onehot_restarts": [],
    "prepare_speed": ["--no-nlb-tools"], "real_pseudo_cosmoothing": [], "scaling": ["--quick"],
    "upsample_alignment": [],
}


def test_every_benchmark_that_writes_results_is_checked_below():
    writers = {p.stem for p in BENCH.glob("*.py") if not p.name.startswith("_") and "write_results(" in p.read_text()}
    assert writers == set(WRITERS)


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_a_bad_results_dir_from_the_environment_is_refused_before_any_work(tmp_path, name):
    """$NEURODYN_RESULTS_DIR was read only by write_results, at the end of the run: a file there (or a path under
    one) failed after the whole run, minutes to hours, with a traceback. Each benchmark now checks it right after
    its options, in one line naming the variable."""
    before = _fake_inputs(tmp_path)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
           "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1", "NEURODYN_RESULTS_DIR": "a_file/results"}
    proc = subprocess.run([sys.executable, str(BENCH / f"{name}.py"), *WRITERS[name]], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env=env)
    line = _one_line(proc, name)
    assert line == f"{name}.py: error: NEURODYN_RESULTS_DIR: a_file/results: {tmp_path / 'a_file'} is not a folder"
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_check_results_folder_names_where_the_folder_came_from(tmp_path, monkeypatch):
    sys.path.insert(0, str(BENCH))
    try:
        import _results
    finally:
        sys.path.remove(str(BENCH))
    from neurodyn.errors import InputError

    (tmp_path / "a_file").write_text("")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NEURODYN_RESULTS_DIR", "a_file")
    with pytest.raises(InputError, match=r"^NEURODYN_RESULTS_DIR: a_file: .*a_file is not a folder$"):
        _results.check_results_folder()
    assert _results.check_results_folder("r", "--results-dir") == Path("r")  # an option given: the variable unused
    with pytest.raises(InputError, match=r"^--out-dir: a_file/x: "):
        _results.check_results_folder("a_file/x", "--out-dir")
    monkeypatch.setenv("NEURODYN_RESULTS_DIR", " ")
    with pytest.raises(InputError, match="^NEURODYN_RESULTS_DIR: : empty path"):
        _results.check_results_folder()
    monkeypatch.setenv("NEURODYN_RESULTS_DIR", "new/folder")  # made when the results are written
    assert _results.check_results_folder() == Path("new/folder") and not (tmp_path / "new").exists()
    monkeypatch.delenv("NEURODYN_RESULTS_DIR")
    assert _results.check_results_folder() == _results.RESULTS_DIR
    monkeypatch.setattr(_results, "RESULTS_DIR", tmp_path / "a_file" / "results")
    with pytest.raises(InputError, match="^results folder: .*not a folder .set NEURODYN_RESULTS_DIR"):
        _results.check_results_folder()


def test_lorenz_checks_the_results_folder_before_training(tmp_path, monkeypatch, capsys):
    """The brief's case: lorenz.py with a bad $NEURODYN_RESULTS_DIR trained every seed, then failed writing."""
    bench = _load_benchmark("lorenz")

    def trained(*args, **kwargs):
        raise AssertionError("training started")

    monkeypatch.setattr(bench, "fit_member", trained)
    (tmp_path / "a_file").write_text("")
    monkeypatch.setenv("NEURODYN_RESULTS_DIR", str(tmp_path / "a_file"))
    assert bench.main(["--seeds", "0", "--out", str(tmp_path / "logs")]) == 2
    err = capsys.readouterr().err  # (the script's name is pytest's here)
    bad = tmp_path / "a_file"
    assert err.endswith(f": error: NEURODYN_RESULTS_DIR: {bad}: {bad} is not a folder\n")
    assert len(err.splitlines()) == 1 and not (tmp_path / "logs").exists()


def test_scaling_writes_where_the_environment_says(tmp_path, monkeypatch):
    """scaling.py passed benchmarks/results to write_results when --out-dir was not given, so $NEURODYN_RESULTS_DIR
    was ignored and a README command's rerun rewrote the committed scaling.json and scaling.png. Its 'plot' field
    then still said benchmarks/results/scaling.png, not the figure it wrote."""
    bench = _load_benchmark("scaling")
    committed = {p.name: p.read_bytes() for p in (BENCH / "results").glob("scaling.*")}
    monkeypatch.setattr(bench, "sweep", lambda *args: {})
    monkeypatch.setattr(bench, "plot", lambda lf, hmm, path: path.write_text("plot"))
    monkeypatch.setenv("NEURODYN_RESULTS_DIR", str(tmp_path / "env"))
    assert bench.main(["--quick"]) == 0
    assert sorted(p.name for p in (tmp_path / "env").iterdir()) == ["scaling.json", "scaling.png"]
    assert {p.name: p.read_bytes() for p in (BENCH / "results").glob("scaling.*")} == committed
    # the figure is recorded where it was written (it said benchmarks/results/scaling.png), --out-dir too
    record = json.loads((tmp_path / "env" / "scaling.json").read_text())
    assert record["plot"] == str((tmp_path / "env" / "scaling.png").resolve())
    monkeypatch.chdir(tmp_path)
    assert bench.main(["--quick", "--out-dir", "out"]) == 0
    assert json.loads((tmp_path / "out" / "scaling.json").read_text())["plot"] == str(tmp_path.resolve() / "out"
                                                                                        / "scaling.png")
    assert json.loads((BENCH / "results" / "scaling.json").read_text())["plot"] == "benchmarks/results/scaling.png"


def test_nlb_synthetic_merges_into_the_file_it_writes(tmp_path, monkeypatch):
    """--merge read benchmarks/results/nlb_synthetic.json whatever $NEURODYN_RESULTS_DIR said, and wrote the merge
    into the variable's folder: the committed runs mixed into a file meant to be apart from them."""
    bench = _load_benchmark("nlb_synthetic")
    committed = json.loads((BENCH / "results" / "nlb_synthetic.json").read_text())
    runs = committed["figures"]["per_seed"]
    env = tmp_path / "env"
    env.mkdir()
    mine = {**committed, "figures": {"per_seed": {"area2_bump": {"7": runs["area2_bump"]["0"]}}},
            "threads": {"OMP_NUM_THREADS": "1"}}
    (env / "nlb_synthetic.json").write_text(json.dumps(mine))
    monkeypatch.setattr(bench, "run_one", lambda style, seed, *args, **kwargs: runs[style]["0"])
    monkeypatch.setenv("NEURODYN_RESULTS_DIR", str(env))
    assert bench.main(["--seeds", "5", "--styles", "mc_maze", "--merge", "--threads", "1"]) == 0
    merged = json.loads((env / "nlb_synthetic.json").read_text())["figures"]["per_seed"]
    assert {style: sorted(by_seed) for style, by_seed in merged.items()} == {"area2_bump": ["7"], "mc_maze": ["5"]}


def test_hmmglm_synthetic_table_is_rebuilt_from_its_figures_only(tmp_path):
    """The committed results file's README table is what its own figures render to (``--rerender`` rebuilds it
    without fitting); the coupling-error column is the files' ``coupling`` error, one-hot included."""
    mod = _load_benchmark("hmmglm_synthetic")
    committed = BENCH / "results" / "hmmglm_synthetic.json"
    record = json.loads(committed.read_text())
    assert mod.readme_block(record) == record["readme"], "run: python benchmarks/hmmglm_synthetic.py --rerender ..."
    column = record["readme"]["columns"].index("coupling MSE")
    row = next(r for r in record["readme"]["rows"] if r[0] == mod.LABELS["onehot"])
    per_seed = [record["figures"]["per_seed"][str(s)]["onehot"]["weight_error"] for s in record["seeds"]]
    assert row[column].startswith(f"{np.mean(per_seed):.4f} ± ")
    stale = dict(record, readme={"title": "old", "columns": ["a"], "rows": [["1"]]})
    path = tmp_path / "hmmglm_synthetic.json"
    path.write_text(json.dumps(stale))
    assert _script("hmmglm_synthetic", "--rerender", str(path), cwd=tmp_path).returncode == 0
    rebuilt = json.loads(path.read_text())
    assert rebuilt["readme"] == record["readme"] and {k: v for k, v in rebuilt.items() if k != "readme"} == {
        k: v for k, v in record.items() if k != "readme"}
    path.write_text(json.dumps(dict(record, name="lorenz")))
    line = _one_line(_script("hmmglm_synthetic", "--rerender", str(path), cwd=tmp_path), "hmmglm_synthetic")
    assert f"{path}: name / figures.summary: not a hmmglm_synthetic results file" in line, line


@pytest.mark.parametrize("name", ["_results", "_overrides", "readme_tables"])
def test_the_docstring_examples_of_the_benchmark_helpers_hold(name):
    """The suite's --doctest-modules covers the package, not benchmarks/ (not in testpaths): these modules'
    examples ran nowhere (and `pytest benchmarks/_results.py` imports them as benchmarks._results, whose
    exceptions the examples do not name). Run here under the name the benchmarks import them by."""
    import doctest

    sys.path.insert(0, str(BENCH))
    try:
        module = importlib.import_module(name)
    finally:
        sys.path.remove(str(BENCH))
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0 and result.failed == 0, result


def test_benchmarks_import_the_neurodyn_of_their_own_checkout(tmp_path):
    """One virtual environment serving several worktrees: its editable install maps `neurodyn` to one checkout, and
    a benchmark run from another imported that checkout's package while its results file named its own commit.
    Stand-in: another checkout's neurodyn found by the import system after sys.path's folders, as an editable
    install's finder is (here: a folder appended to sys.path by sitecustomize). The benchmarks' shared module puts
    its checkout first, for the process and the processes it starts (PYTHONPATH); a neurodyn imported from
    elsewhere (or a PYTHONPATH one) gets no results file stamped with this checkout's commit."""
    other = tmp_path / "other"
    (other / "neurodyn").mkdir(parents=True)
    (other / "neurodyn" / "__init__.py").write_text("OTHER = True\n")
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(f"import sys\nsys.path.append({str(other)!r})\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(tmp_path / "site")
    child = "import neurodyn; print(neurodyn.__file__)"
    code = ("import subprocess, sys; sys.path.insert(0, sys.argv[1]); import _results, neurodyn; "
            f"print(neurodyn.__file__); subprocess.run([sys.executable, '-c', {child!r}], check=True)")
    proc = subprocess.run([sys.executable, "-c", code, str(BENCH)], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == [str(ROOT / "neurodyn" / "__init__.py")] * 2, proc.stdout
    # the control: without the shared module, the other checkout's package is the one imported
    plain = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, env=env, cwd=tmp_path,
                           timeout=120)
    assert plain.stdout.strip() == str(other / "neurodyn" / "__init__.py"), plain.stderr[-2000:]
    # imported from elsewhere before the shared module, or chosen through PYTHONPATH: no results file names this
    # checkout's commit for it
    late = "import sys; import neurodyn; sys.path.insert(0, sys.argv[1]); import _results; _results.provenance()"
    chosen = {**env, "PYTHONPATH": os.pathsep.join([str(other), env["PYTHONPATH"]])}
    early = code.split("; print")[0] + "; _results.provenance()"
    for script, environment in ((late, env), (early, chosen)):
        proc = subprocess.run([sys.executable, "-c", script, str(BENCH)], capture_output=True, text=True,
                              env=environment, cwd=tmp_path, timeout=120)
        assert proc.returncode != 0 and "not from this checkout" in proc.stderr.strip().splitlines()[-1], proc.stderr
    # where neurodyn is this checkout's already (a clone with its own environment), importing the shared module
    # changes nothing. Stand-in: this checkout found first by the import system (here: put first on sys.path by
    # sitecustomize, as the environment's install would find it). The environment's own install was used: in a
    # worktree sharing another checkout's environment it maps neurodyn to that checkout, the shared module then
    # rightly puts this checkout first, and the probe printed False (True only in the installed checkout)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "sitecustomize.py").write_text(f"import sys\nsys.path.insert(0, {str(ROOT)!r})\n")
    mine = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "PYTHONPATH": str(tmp_path / "mine")}
    probe = ("import os, sys; before = (list(sys.path), os.environ.get('PYTHONPATH')); "
             "import importlib.util; print(importlib.util.find_spec('neurodyn').origin); "
             "sys.path.insert(0, sys.argv[1]); import _results; sys.path.remove(sys.argv[1]); "
             "print(before == (sys.path, os.environ.get('PYTHONPATH')))")
    proc = subprocess.run([sys.executable, "-c", probe, str(BENCH)], capture_output=True, text=True, cwd=tmp_path,
                          env=mine, timeout=120)
    assert proc.stdout.split() == [str(ROOT / "neurodyn" / "__init__.py"), "True"], proc.stderr[-2000:]


def test_real_pseudo_reuse_takes_a_log_only_for_the_same_data(tmp_path, capsys):
    """--reuse compared a log's settings and (since 2026-12-06, up front) its rates' shape: the rates of other
    trials or units of the same size (another held-out unit draw, another file of that shape) were taken as this
    run's. A log records the digest of the data its run trained and was scored on, and is taken only for the same
    digest; a log without one (older) is trained again, as a log of other settings is."""
    from neurodyn.data.pseudo import PseudoSplit

    bench = _load_benchmark("real_pseudo_cosmoothing")
    rng = np.random.default_rng(0)

    def split(seed):
        r = np.random.default_rng(seed)
        arrays = [r.poisson(0.3, shape).astype(np.float32) for shape in ((6, 10, 4), (6, 10, 2), (3, 10, 4),
                                                                          (3, 10, 2))]
        return PseudoSplit(*arrays, np.arange(4), np.arange(4, 6), 5)

    mine, other = split(1), split(2)  # the same shapes, other spikes
    assert bench.data_digest(mine) == bench.data_digest(split(1)) != bench.data_digest(other)
    settings = (3, {"hidden_size": 8}, {"lr": 0.01}, 20)
    log = {"tag": "select:x", "seed": 0, "epochs": 3, "model": settings[1], "optimiser": settings[2],
           "train_bin_ms": 20, "co_bps": 0.1, "train_seconds": 1.0, "data_sha256": bench.data_digest(mine)}
    (tmp_path / "select_x_seed0.json").write_text(json.dumps(log))
    np.save(tmp_path / "select_x_seed0.npy", rng.random((3, 10, 2)))
    trained = []

    def run(split_, seed, *rest):
        trained.append(split_)
        return {"co_bps": 0.2}

    for data, retrained, said in ((mine, False, None), (other, True, "other data, not reused")):
        capsys.readouterr()
        trained.clear()
        job = (data, 0, *settings, 1, "select:x", str(tmp_path))
        [result] = bench._map(run, [job], None, str(tmp_path))
        assert (trained == [data]) is retrained and ("reused_log" in result) is not retrained
        err = capsys.readouterr().err
        assert (said in err) if said else err == "", err
    del log["data_sha256"]
    (tmp_path / "select_x_seed0.json").write_text(json.dumps(log))
    trained.clear()
    bench._map(run, [(mine, 0, *settings, 1, "select:x", str(tmp_path))], None, str(tmp_path))
    assert trained == [mine] and "no digest of its data (an older log), not reused" in capsys.readouterr().err


TEST_FILE = "sub-Jenkins_ses-small_desc-test_ecephys.nwb"


def test_nwb_takes_a_folder_holding_the_test_file_as_the_recorded_command_gives_it(tmp_path):
    """benchmarks/results/hmmglm_real_states.json records ``--nwb <the data folder>``, as ``neurodyn prepare --nwb``
    takes a folder; the script took only a file and now refuses anything else, so the recorded command no longer
    ran. --nwb takes the file or a folder holding it (hmmglm_real_states.py and real_pseudo_cosmoothing.py); a
    folder without it is one line naming --nwb."""
    from neurodyn.errors import InputError

    bench = _load_benchmark("hmmglm_real_states")
    recorded = json.loads((BENCH / "results" / "hmmglm_real_states.json").read_text())["command"]
    assert "--nwb" in recorded  # the form of --nwb the record uses: a folder
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / TEST_FILE).write_text("")
    assert bench.find_nwb(str(tmp_path / "data")) == tmp_path / "data" / TEST_FILE
    assert bench.find_nwb(str(tmp_path / "data" / TEST_FILE)) == tmp_path / "data" / TEST_FILE
    with pytest.raises(InputError, match=f"--nwb: no {TEST_FILE} in this folder"):
        bench.find_nwb(str(tmp_path))
    # real_pseudo_cosmoothing.py: the folder is taken (the run goes on to the --reuse check of a bad log) ...
    (tmp_path / "po").mkdir()
    (tmp_path / "po" / "select_500_epochs_seed0.json").write_text("{bad")
    np.save(tmp_path / "po" / "select_500_epochs_seed0.npy", np.zeros((2, 3, 4)))
    proc = _script("real_pseudo_cosmoothing", "--nwb", "data", "--reuse", "--out", "po", "--no-write",
                   "--candidates", "500 epochs", "--epochs", "1", "--auto-ensemble", "0", "--no-combine", cwd=tmp_path)
    assert "select_500_epochs_seed0.json: not JSON" in _refused(proc, "--reuse")
    # ... and a folder without the file is refused
    proc = _script("real_pseudo_cosmoothing", "--nwb", "po", "--no-write", cwd=tmp_path)
    assert f"no {TEST_FILE} in this folder" in _one_line(proc, "real_pseudo_cosmoothing")


def _committed_stand_in(name: str, tmp_path: Path, monkeypatch, work: str):
    """benchmarks/<name>.py loaded with an empty ``tmp_path/results`` standing in for the committed
    benchmarks/results (no $NEURODYN_RESULTS_DIR), and each function named in ``work`` (space-separated) made to
    raise ``AssertionError("the run started")``; returns the module and the stand-in folder."""
    bench = _load_benchmark(name)
    results = sys.modules["_results"]  # the shared module the script imported
    committed = tmp_path / "results"
    committed.mkdir()
    monkeypatch.setattr(results, "RESULTS_DIR", committed)
    monkeypatch.delenv("NEURODYN_RESULTS_DIR", raising=False)

    def no_work(*a, **k):
        raise AssertionError("the run started")

    for fn in work.split():
        monkeypatch.setattr(bench, fn, no_work)
    return bench, committed


@pytest.mark.parametrize("name, args, option, work", [
    ("scaling", ["--quick"], "--quick", "sweep"), ("scaling", ["--only", "hmm"], "--only", "sweep"),
    ("hmmglm_synthetic", ["--fast", "--seeds", "0"], "--fast", "_warm_up_kernels run_seed"),
])
def test_a_smoke_run_does_not_replace_a_committed_results_file(tmp_path, monkeypatch, capsys, name, args, option,
                                                                work):
    """``scaling.py --quick`` (or ``--only``) and ``hmmglm_synthetic.py --fast`` write a results file without a README
    table; without --out-dir / --results-dir / $NEURODYN_RESULTS_DIR they wrote it over the committed
    benchmarks/results file the README's table is rendered from (scaling.py its plot too), and
    readme_tables.py then found no table for the README's block. Refused before any work, in one line; with a
    folder given the run goes on (test_scaling_writes_where_the_environment_says). The committed folder is a
    stand-in here, so that a regression cannot overwrite the real files."""
    bench, committed = _committed_stand_in(name, tmp_path, monkeypatch, work)
    (committed / f"{name}.json").write_text("committed")
    assert bench.main(args) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and f": error: {option}: a {option} run writes no README table" in lines[0], lines
    assert f"would replace the committed benchmarks/results/{name}.json" in lines[0]
    assert [p.name for p in committed.iterdir()] == [f"{name}.json"]
    assert (committed / f"{name}.json").read_text() == "committed"


@pytest.mark.parametrize("case", ["output is an input", "named twice", "same runs twice", "log is an input",
                                  "log is the output"])
def test_nlb_synthetic_combine_never_writes_over_what_it_reads(tmp_path, case):
    """``--combine r/nlb_synthetic.json ... --results-dir r`` replaced an input with the combination; a file named
    twice counted its time twice; two files with the same style and seed kept one run and dropped the other
    without a word; ``--log`` naming an input (or the results file) appended the log to it. Each is one line
    naming the option, exit code 2, every file as it was (and no log file made)."""
    committed = (BENCH / "results" / "nlb_synthetic.json").read_bytes()
    (tmp_path / "r").mkdir()
    for name in ("r/nlb_synthetic.json", "a.json", "b.json"):
        (tmp_path / name).write_bytes(committed)
    args, option = {
        "output is an input": (["--combine", "a.json", "r/nlb_synthetic.json", "--results-dir", "r"], "--combine"),
        "named twice": (["--combine", "a.json", "./a.json", "--results-dir", "out"], "--combine"),
        "same runs twice": (["--combine", "a.json", "b.json", "--results-dir", "out"], "--combine"),
        "log is an input": (["--combine", "a.json", "--results-dir", "out", "--log", "a.json"], "--log"),
        "log is the output": (["--combine", "a.json", "--results-dir", "r", "--log", "r/nlb_synthetic.json"], "--log"),
    }[case]
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    _refused(_script("nlb_synthetic", *args, cwd=tmp_path), option)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert not (tmp_path / "out").exists()


def test_nlb_synthetic_combine_of_separate_runs_still_writes(tmp_path):
    record = json.loads((BENCH / "results" / "nlb_synthetic.json").read_text())
    per = record["figures"]["per_seed"]
    styles = sorted(per)
    for i, style in enumerate(styles):  # one file per style, as the committed file was combined
        part = {**record, "figures": {**record["figures"], "per_seed": {style: per[style]}}}
        (tmp_path / f"{i}.json").write_text(json.dumps(part))
    proc = _script("nlb_synthetic", "--combine", *[f"{i}.json" for i in range(len(styles))], "--results-dir", "out",
                   "--log", "run.log", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((tmp_path / "out" / "nlb_synthetic.json").read_text())["figures"]["per_seed"] == per


@pytest.mark.filterwarnings("ignore:No artists with labels")  # an empty sweep: no lines to label
def test_scaling_plot_cut_short_leaves_the_old_figure_and_nothing_else(tmp_path, monkeypatch):
    """scaling.py saved its plot to a fixed temporary name and renamed it, with no clean-up: a failure or Ctrl-C
    while matplotlib wrote it left '.scaling.png.part.png' beside the results. Written through neurodyn's
    atomic_path now: the old figure stays, nothing else is left."""
    import matplotlib.figure

    bench = _load_benchmark("scaling")
    (tmp_path / "scaling.png").write_bytes(b"old figure")
    real = matplotlib.figure.Figure.savefig

    def half_then_interrupt(self, fname, *args, **kwargs):
        Path(fname).write_bytes(b"half a figure")
        raise KeyboardInterrupt

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        bench.plot({}, {}, tmp_path / "scaling.png")
    assert [p.name for p in tmp_path.iterdir()] == ["scaling.png"]
    assert (tmp_path / "scaling.png").read_bytes() == b"old figure"
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", real)
    bench.plot({}, {}, tmp_path / "scaling.png")  # and a plot that is written replaces it
    assert [p.name for p in tmp_path.iterdir()] == ["scaling.png"]
    assert (tmp_path / "scaling.png").read_bytes().startswith(b"\x89PNG")


@pytest.mark.parametrize("name, args, option, work", [
    ("hmmglm_synthetic", ["--name", "lorenz"], "--name", "_warm_up_kernels run_seed"),
    ("hmmglm_synthetic", ["--name", "hmmglm_synthetic_dev"], "--name", "_warm_up_kernels run_seed"),
    ("onehot_restarts", ["--split-first-phase", "3"], "--split-first-phase", "WorkerPool"),
    ("departures", ["--case", "nlb", "--style", "dmfc_rsg"], "--style", "nlb_case"),
    ("departures", ["--case", "nlb", "--style", "area2_bump"], "--style", "nlb_case"),
])
def test_a_development_run_keeps_out_of_the_committed_results(tmp_path, monkeypatch, capsys, name, args, option,
                                                               work):
    """``hmmglm_synthetic.py --name lorenz`` wrote its results over benchmarks/results/lorenz.json (the README's
    Lorenz table then rendered from an HMM-GLM record); another --name, or ``onehot_restarts.py
    --split-first-phase K`` or ``departures.py --case nlb --style dmfc_rsg`` (any style but mc_maze), added a
    results file with a README table but no README block, so readme_tables.py --check (and the suite) failed.
    All are development runs: refused in the committed folder (a stand-in here),
    before any work; with --results-dir they run."""
    bench, committed = _committed_stand_in(name, tmp_path, monkeypatch, work)
    with pytest.raises(SystemExit) as stop:
        bench.main(["--seeds", "100", *args])
    assert stop.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and f": error: {option}: " in lines[0] and "give --results-dir DIR" in lines[0], lines
    assert not list(committed.iterdir())
    with pytest.raises(AssertionError, match="the run started"):  # another folder: the run goes on
        bench.main(["--seeds", "100", *args, "--results-dir", str(tmp_path / "dev")])


@pytest.mark.parametrize("args, work", [(["--case", "nlb"], "nlb_case"), (["--case", "nlb", "--style", "mc_maze"],
                                                                          "nlb_case"), ([], "WorkerPool")])
def test_departures_with_a_readme_block_still_writes_into_the_committed_results(tmp_path, monkeypatch, args, work):
    """The cases the README has a block for (lorenz, nlb on mc_maze) are not development runs: they go on."""
    bench, committed = _committed_stand_in("departures", tmp_path, monkeypatch, work)
    with pytest.raises(AssertionError, match="the run started"):
        bench.main(["--seeds", "0", *args])


@pytest.mark.parametrize("name, args, work", [
    ("departures_lorenz", ["--seeds", "0"], "WorkerPool"),
    ("departures_nlb_mc_maze", ["--seeds", "0", "--case", "nlb"], "nlb_case"),
    ("departures_nlb_dmfc_rsg", ["--seeds", "0", "--case", "nlb", "--style", "dmfc_rsg", "--results-dir", "dev"],
     "nlb_case"),
    ("hmmglm_synthetic", ["--seeds", "100"], "_warm_up_kernels run_seed"),
    ("onehot_restarts", ["--seeds", "100"], "WorkerPool"),
    ("scaling", [], "sweep"),
    ("hmm_speed_float64", ["--dtype", "float64"], "_best"),
])
def test_a_results_file_that_is_a_folder_is_refused_before_the_run(tmp_path, monkeypatch, capsys, name, args, work):
    """``benchmarks/results/<name>.json`` a folder: the run went through and failed at the end, when
    os.replace could not put the results file there (a traceback, the run's work lost). Refused up front in
    one line naming the folder and the results file, exit code 2, the folder left as it was."""
    script = name.split("_nlb")[0].removesuffix("_lorenz").removesuffix("_float64")
    bench, committed = _committed_stand_in(script, tmp_path, monkeypatch, work)
    monkeypatch.chdir(tmp_path)
    folder = (tmp_path / "dev" if "--results-dir" in args else committed) / f"{name}.json"
    folder.mkdir(parents=True)
    try:
        code = bench.main(args)
    except SystemExit as stop:
        code = stop.code
    assert code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and f"{name}.json in it is a folder, not a results file" in lines[0], lines
    assert folder.is_dir() and not list(folder.iterdir())


@pytest.mark.parametrize("name, args, option", [
    ("nlb_synthetic", ["--keep", "ref"], "--keep"), ("hmmglm_nlb", ["--keep", "ref"], "--keep"),
    ("hmmglm_nlb", ["--results-dir", "r", "--log", "r/hmmglm_nlb.json"], "--log"),
])
def test_work_and_log_paths_that_would_clash_are_refused_before_any_work(tmp_path, name, args, option):
    """--keep took a folder that already held files: a work folder of an earlier run there (seed1/ ...) stopped the
    run with a FileExistsError traceback when its seed came, after the seeds before it had run (minutes). And
    hmmglm_nlb.py --log naming its results file appended the log to it (a committed file, left corrupt by a stopped
    run). One line naming the option, exit code 2, every file as it was."""
    _fake_inputs(tmp_path)
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "hmmglm_nlb.json").write_text("{}")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    _refused(_script(name, *args, cwd=tmp_path), option)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("args, message", [
    (["--model", "hiden_size=128"], "--model: unknown field 'hiden_size' of LangevinFlowConfig"),
    (["--model", "hidden_size=abc"], "--model: hidden_size: must be a positive integer, got 'abc'"),
    (["--opt", "learning_rate=1e-3"], "--opt: unknown setting 'learning_rate'"),
    (["--opt", "lr=-1"], "--opt: lr: must be a finite number > 0, got -1"),
])
@pytest.mark.parametrize("name", ["lorenz", "real_pseudo_cosmoothing"])
def test_model_and_optimiser_overrides_are_checked_before_any_work(tmp_path, monkeypatch, capsys, name, args,
                                                                  message):
    """--model / --opt (lorenz.py, real_pseudo_cosmoothing.py) were passed on unchecked: a misspelt field or a bad
    value was a TypeError / InputError traceback from inside the first fit, after the data were simulated or
    read. The settings a run would use are built first: one line naming the option, exit code 2."""
    bench = _load_benchmark(name)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / TEST_FILE).write_text("")  # real_pseudo_cosmoothing.py checks that it exists first

    def no_work(*a, **k):
        raise AssertionError("the run started")

    work = {"lorenz": ["_simulate", "fit_member"], "real_pseudo_cosmoothing": ["run_lf"]}[name]
    for fn in work:
        monkeypatch.setattr(bench, fn, no_work)
    if name == "real_pseudo_cosmoothing":
        import neurodyn.data.pseudo

        monkeypatch.setattr(neurodyn.data.pseudo, "pseudo_cosmoothing_split", no_work)
    common = ["--seeds", "0", "--epochs", "1", "--no-write", "--out", str(tmp_path / "logs")]
    common += ["--nwb", str(tmp_path / "data")] if name == "real_pseudo_cosmoothing" else ["--members", "1"]
    with pytest.raises(SystemExit) as stop:
        bench.main([*common, *args])
    assert stop.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and f": error: {message}" in lines[0], lines
    # valid overrides pass the check: the run starts
    with pytest.raises(AssertionError, match="the run started"):
        bench.main([*common, "--model", "dropout=0.1", "--opt", "lr=0.002"])


@pytest.mark.parametrize("args, option", [
    (["--case", "nlb", "--epochs", "50"], "--epochs"), (["--style", "dmfc_rsg"], "--style"),
    (["--case", "lorenz", "--style", "mc_maze"], "--style"),
])
def test_departures_refuses_an_option_of_the_other_case(monkeypatch, capsys, args, option):
    """``--case nlb --epochs 50`` ran the NLB case with the CPU config's schedule and ``--style`` with the Lorenz
    case was dropped: the option was ignored without a word (and the results file did not say so)."""
    dep = _load_benchmark("departures")

    def no_run(*a, **k):
        raise AssertionError("a variant was run")

    for fn in ("_job", "_nlb_job", "write_results"):
        monkeypatch.setattr(dep, fn, no_run)
    with pytest.raises(SystemExit) as exc:
        dep.main([*args, "--seeds", "0", "--jobs", "1", "--no-write"])
    assert exc.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and f"error: {option}: " in lines[0], lines


@pytest.mark.parametrize("args, option", [
    (["--seeds", "3"], "--seeds"), (["--styles", "dmfc_rsg"], "--styles"), (["--members", "5"], "--members"),
    (["--fit-args", "--trainer.max_epochs 10"], "--fit-args"), (["--keep", "k"], "--keep"),
    # given with the default's value (in any spelling): found by comparing with the defaults, they slipped through
    (["--seeds", "0"], "--seeds"), (["--styles", "mc_maze,dmfc_rsg,area2_bump"], "--styles"),
    (["--members", "3"], "--members"), (["--fit-args", ""], "--fit-args"), (["--mem", "3"], "--members"),
    (["--seeds=0"], "--seeds"),
])
def test_nlb_synthetic_combine_refuses_the_options_of_a_run(tmp_path, args, option):
    """--combine runs nothing: --seeds / --styles / --members / --fit-args / --keep beside it were ignored without a
    word, and the merged results file was written as if they had been used. An option given with its default value
    is given too (``--combine a.json --members 3`` was taken)."""
    (tmp_path / "a.json").write_bytes((BENCH / "results" / "nlb_synthetic.json").read_bytes())
    line = _refused(_script("nlb_synthetic", "--combine", "a.json", "--results-dir", "out", *args, cwd=tmp_path),
                    option)
    assert "--combine runs nothing" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


class _Ran(Exception):
    """A benchmark went past its checks and started a run."""


@pytest.mark.parametrize("fit_args, refused", [
    ("--trainer.max_epoks 400", "unrecognized arguments: --trainer.max_epoks 400"),
    ("--model.init_args.config.latent_dmi 4", "model.init_args.config.latent_dmi: option 'latent_dmi' is not accepted"),
    ("--trainer.max_epochs 2", None),  # a good one goes on to the run
])
def test_nlb_synthetic_checks_fit_args_before_anything_runs(tmp_path, monkeypatch, capsys, fit_args, refused):
    """--fit-args were checked only by the first ``neurodyn fit``, after minutes of simulating and preparing: a typo
    cost the run. ``neurodyn fit`` now parses them (``--print_config``) before anything runs or is written."""
    bench = _load_benchmark("nlb_synthetic")

    def run_one(*args, **kwargs):
        raise _Ran

    monkeypatch.setattr(bench, "run_one", run_one)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.chdir(tmp_path)
    argv = ["--seeds", "0", "--styles", "mc_maze", "--members", "1", "--fit-args", fit_args, "--results-dir", "r",
            "--log", "run.log"]
    if refused is None:
        with pytest.raises(_Ran):
            bench.main(argv)
        return
    with pytest.raises(SystemExit) as stop:
        bench.main(argv)
    lines = capsys.readouterr().err.splitlines()
    assert stop.value.code == 2 and len(lines) == 1, lines
    assert ": error: --fit-args: `neurodyn fit` refuses them (mc_maze_small): " in lines[0] and refused in lines[0]
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("option", ["--model", "--opt"])
def test_an_override_given_twice_is_refused(tmp_path, option):
    """``--opt lr=1e-3 lr=2e-3`` kept the last value without a word (and the recorded command shows both)."""
    pair = "dropout" if option == "--model" else "lr"
    line = _refused(_script("lorenz", option, f"{pair}=0.1", f"{pair}=0.2", "--seeds", "0", "--no-write", cwd=tmp_path),
                    option)
    assert f"{pair} given twice" in line
    assert not list(tmp_path.iterdir())
