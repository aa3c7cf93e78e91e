"""nlb_tools as a reference, run in its own environment (``.venv-nlb``), for the parity tests.

nlb_tools 0.0.4 pins ``pandas<=1.3.4`` (no wheel for Python >= 3.11) and its ``resample`` fails on
pandas 3, so it cannot live in neurodyn's environment. ``make nlb-env`` builds ``.venv-nlb`` with
``nlb-tools==0.0.4 --no-deps`` plus ``pandas<3``, numpy, scipy, scikit-learn, h5py and pynwb. The parity
tests (``tests/data/test_prepare_parity.py``, ``tests/metrics/test_parity_nlb_tools.py``) run in
neurodyn's environment: they write the inputs, compute neurodyn's result, run this file with the
reference interpreter in a subprocess, and compare.

As a script (reference environment)::

    python tests/nlb_reference.py '{"kind": "tensors", "folder": DIR, "style": "mc_maze", "bin_ms": 5, "out": F}'
    python tests/nlb_reference.py '{"kind": "evaluate", "target": T, "pred": P, "out": F}'

``tensors`` writes the five nlb_tools dicts (val-phase train / eval input and eval target, test-phase
train / eval input) to an ``.npz`` file (see :func:`save_tree`); ``evaluate`` writes
``nlb_tools.evaluation.evaluate`` as JSON.

As a module (neurodyn's environment, loaded by path): :func:`reference_python` finds the interpreter
and :func:`run` calls it. Nothing here imports nlb_tools at module level.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: environment variable naming the reference interpreter (default: <repo>/.venv-nlb/bin/python)
PYTHON_ENV_VAR = "NEURODYN_NLB_PYTHON"
MANIFEST = "__manifest__"


# ------------------------------------------------------------------------------- neurodyn side
def reference_python() -> str | None:
    """The reference interpreter: ``$NEURODYN_NLB_PYTHON``, else ``<repo>/.venv-nlb/bin/python``, if present."""
    env = os.environ.get(PYTHON_ENV_VAR)
    candidates = [Path(env)] if env else [ROOT / ".venv-nlb" / "bin" / "python"]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def require_reference(pytest) -> str:
    """The reference interpreter, or a skip (a failure under ``CI=true``: CI must run the parity tests)."""
    python = reference_python()
    if python is None:
        why = (
            f"nlb_tools reference environment not found (run `make nlb-env` or set {PYTHON_ENV_VAR}); "
            f"looked for {os.environ.get(PYTHON_ENV_VAR) or ROOT / '.venv-nlb' / 'bin' / 'python'}"
        )
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(why, pytrace=False)
        pytest.skip(why)
    return python


def run(python: str, job: dict, timeout: float = 600.0) -> None:
    """Run one job with the reference interpreter; raise with its stderr on failure."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.run(
        [python, str(Path(__file__).resolve()), json.dumps(job)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=str(ROOT),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"nlb_tools reference job {job['kind']} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")


# ------------------------------------------------------------------------------- exchange format
def save_tree(path, tree: dict) -> None:
    """Flatten nested dicts of arrays / lists of arrays into an ``.npz`` file (no pickles)."""
    import numpy as np

    arrays: dict = {}
    lists: dict[str, int] = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}/{key}" if prefix else str(key), item)
        elif isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.dtype == object):
            # ragged rows (nlb_tools' *_cond_idx come as object arrays of index arrays)
            lists[prefix] = len(value)
            for i, item in enumerate(value):
                arrays[f"{prefix}#{i}"] = np.asarray(item)
        else:
            arrays[prefix] = np.asarray(value)

    walk("", tree)
    arrays[MANIFEST] = np.array(json.dumps(lists))
    np.savez(path, **arrays)


def load_tree(path) -> dict:
    """Inverse of :func:`save_tree`."""
    import numpy as np

    with np.load(path, allow_pickle=False) as data:
        lists = json.loads(str(data[MANIFEST]))
        flat = {k: data[k] for k in data.files if k != MANIFEST}
    tree: dict = {}

    def put(key: str, value) -> None:
        parts = key.split("/")
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value

    for key, n in lists.items():
        put(key, [flat.pop(f"{key}#{i}") for i in range(n)])
    for key, value in flat.items():
        put(key, value)
    return tree


# ------------------------------------------------------------------------------- reference side
def _tensors(job: dict) -> None:
    import logging

    import pandas

    if int(pandas.__version__.split(".")[0]) >= 3:
        raise SystemExit(f"nlb_tools' resample fails on pandas 3 (found {pandas.__version__})")
    logging.getLogger("nlb_tools").setLevel(logging.ERROR)
    import nlb_tools.make_tensors as mt
    from nlb_tools.nwb_interface import NWBDataset

    style, bin_ms = job["style"], int(job["bin_ms"])
    ds = NWBDataset(str(job["folder"]))
    ds.resample(bin_ms)
    out = {
        "train_input": mt.make_train_input_tensors(
            ds, style, "train", save_file=False, include_behavior=True, include_forward_pred=True
        ),
        "eval_input": mt.make_eval_input_tensors(ds, style, "val", save_file=False),
        "eval_target": mt.make_eval_target_tensors(ds, style, "train", "val", save_file=False, include_psth=True),
        "train_input_test": mt.make_train_input_tensors(
            ds, style, ["train", "val"], save_file=False, include_behavior=True, include_forward_pred=True
        ),
        "eval_input_test": mt.make_eval_input_tensors(ds, style, "test", save_file=False),
    }
    save_tree(job["out"], out)


def _evaluate(job: dict) -> None:
    from nlb_tools.evaluation import evaluate

    result = evaluate(str(job["target"]), str(job["pred"]))
    plain = [{split: {k: float(v) for k, v in metrics.items()} for split, metrics in e.items()} for e in result]
    Path(job["out"]).write_text(json.dumps(plain))


def main(argv: list[str]) -> int:
    import warnings

    warnings.simplefilter("ignore")
    job = json.loads(argv[0])
    {"tensors": _tensors, "evaluate": _evaluate}[job["kind"]](job)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
