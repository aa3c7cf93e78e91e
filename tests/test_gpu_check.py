"""benchmarks/gpu_check.sh / gpu_check.py on the CPU: every section but the CUDA kernels runs
(``--cpu-dry-run``: tiny sizes), the JSON and the results file have the promised shape."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--python", sys.executable,
                           "--cpu-dry-run", "--out-dir", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    return proc, out


def test_dry_run_prints_one_json_and_writes_results(dry_run):
    proc, out = dry_run
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["dry_run"] is True and report["ok"] is True, report["failed_sections"]
    sections = report["sections"]
    assert set(sections) == {"env", "cuda_tests", "speed", "lorenz", "hmm", "determinism", "ddp"}
    assert sections["cuda_tests"]["ok"] and sections["cuda_tests"]["tests"] > 0  # collected, skipped on CPU
    assert sections["cuda_tests"]["skipped"] == sections["cuda_tests"]["tests"]
    assert sections["speed"]["train_step_fp32"]["median_s"] > 0
    assert sections["speed"]["train_step_bf16"]["median_s"] > 0
    assert sections["lorenz"]["ok"] and sections["lorenz"]["returncode"] == 0
    assert "valid/loss" in sections["lorenz"]["last_metrics"]
    assert sections["hmm"]["ok"] and sections["hmm"]["max_abs_posterior_diff"] <= 1e-5
    assert sections["ddp"]["ok"] is None and "2 GPUs" in sections["ddp"]["note"]
    det = sections["determinism"]["langevinflow"]  # the CPU's kernels are deterministic: 0.0 both ways
    assert det["same_seed_identical"] and det["resume_identical"] and det["resume_max_abs_diff"] == 0.0
    written = json.loads((out / "gpu_check.json").read_text())
    assert written["name"] == "gpu_check" and written["figures"]["ok"] is True
    assert {"command", "commit", "machine", "threads", "seconds"} <= set(written)
    rows = dict(written["readme"]["rows"])  # the README table, built from the figures
    assert rows["2-GPU DDP fit"].startswith("not run") and "(bound 1e-05)" in "".join(rows.values())
    skipped = sections["cuda_tests"]["skipped_tests"]  # each skip named with its reason
    assert len(skipped) == sections["cuda_tests"]["skipped"] and all(skipped.values())
    assert "needs a CUDA device" in rows["`cuda`-marked tests (`pytest -m cuda`)"]
    assert "test_cuda_runs" in rows["`cuda`-marked tests (`pytest -m cuda`)"]
    determinism = [v for k, v in rows.items() if k.startswith("langevinflow fit, default trainer")]
    assert determinism == ["identical; identical (`--trainer.deterministic true`: asserted identical by the "
                           "cuda tests)"]


def test_rerender_rebuilds_only_the_table(dry_run, tmp_path):
    _, out = dry_run
    record = json.loads((out / "gpu_check.json").read_text())
    del record["readme"]
    path = tmp_path / "gpu_check.json"
    path.write_text(json.dumps(record))
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--rerender", str(path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    again = json.loads(path.read_text())
    assert again.pop("readme")["rows"] and again == record


def test_rerender_bad_input_one_line_exit_2(tmp_path):
    other = tmp_path / "lorenz.json"
    other.write_text(json.dumps({"name": "lorenz", "figures": {}}))
    for path, field in ((tmp_path / "missing.json", "No such file"), (other, "name / figures.sections")):
        proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--rerender", str(path)],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
        assert str(path) in proc.stderr and field in proc.stderr
    assert json.loads(other.read_text()) == {"name": "lorenz", "figures": {}}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lorenz.json"]


def test_bad_arguments_exit_2(tmp_path):
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--wheels", str(tmp_path / "nope")],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "no such folder" in proc.stderr


@pytest.mark.parametrize("args", [["--wheels"], ["--python"], ["--python", ""]])
def test_an_option_without_its_value_is_one_line_and_exit_2(args):
    """``gpu_check.sh --wheels`` (the folder left out) stopped on bash's 'line 26: $2: unbound variable', exit 1."""
    proc = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.splitlines() == [
        f"gpu_check.sh: error: {args[0]}: expected " + ("a folder of wheels" if args[0] == "--wheels" else
                                                        "a Python interpreter")], proc.stderr


def test_without_cuda_the_real_run_refuses(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device exists: the real run would start")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--out-dir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no CUDA device" in proc.stderr
    assert not (tmp_path / "gpu_check.json").exists()
