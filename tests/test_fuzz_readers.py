"""Property-based fuzzing of the file readers: damaged input gives one InputError line or a valid result.

Each reader gets a valid file with random damage (hypothesis): cut at a random length, or 1-8 bytes
XOR-ed with random values, half of them in the first 4 kB where HDF5 keeps its superblock and root
object headers. The property: the reader returns, or raises :class:`~neurodyn.errors.InputError`
whose message is one line and names the file; never another exception, never a hang (each example
runs under an alarm of ``HANG_S`` seconds). Runs are deterministic (``derandomize``) and bounded:
``NEURODYN_FUZZ_EXAMPLES`` scales the example counts (default 1: about a minute in all on 2 cores).

Readers: the NWB reader (:func:`neurodyn.data.nwb.load_session`), the prepared-file readers
(:func:`neurodyn.data.prepare.load_prepared`, :func:`neurodyn.metrics.submission.expected_shapes_from_prepared`,
:func:`neurodyn.metrics.evaluate.load_target`), the prediction-file readers
(:func:`neurodyn.metrics.submission.read_submission`, :func:`neurodyn.viz.cli.read_prediction`). Checkpoint
files are fuzzed with the training harness (``tests/training/``).
"""

from __future__ import annotations

import os
import signal
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurodyn.errors import InputError

SCALE = float(os.environ.get("NEURODYN_FUZZ_EXAMPLES", "1"))
HANG_S = 30  # a reader stuck this long on one damaged file is a hang

#: example counts per reader (times NEURODYN_FUZZ_EXAMPLES)
EXAMPLES = {"nwb": 150, "prepared": 300, "target": 200, "submission": 300, "plot": 200}


class Hang(Exception):
    """Raised by the alarm: a reader did not return within HANG_S seconds."""


def _alarm(_signum, _frame):
    raise Hang(f"reader still running after {HANG_S} s")


def _settings(name: str):
    return settings(
        max_examples=max(1, int(EXAMPLES[name] * SCALE)),
        deadline=timedelta(seconds=HANG_S),
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def damage(n: int):
    """Strategy: a function bytes -> damaged bytes (a cut, or XOR flips) for a file of ``n`` bytes."""
    head = min(n - 1, 4095)
    cut = st.integers(0, n - 1).map(lambda k: ("cut", k))
    position = st.one_of(st.integers(0, head), st.integers(0, n - 1))
    flips = st.lists(st.tuples(position, st.integers(1, 255)), min_size=1, max_size=8).map(lambda f: ("flip", f))
    return st.one_of(cut, flips)


def apply(data: bytes, change) -> bytes:
    kind, arg = change
    if kind == "cut":
        return data[:arg]
    out = bytearray(data)
    for pos, xor in arg:
        out[pos] ^= xor
    return bytes(out)


def check(read, data: bytes, change, path: Path) -> str:
    """Write the damaged file and read it: a result or one InputError line naming the file.

    Returns ``"valid"`` or ``"error"`` (what the reader did).
    """
    path.write_bytes(apply(data, change))
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(HANG_S)
    try:
        read(path)
        return "valid"
    except InputError as err:
        msg = str(err)
        assert "\n" not in msg, msg
        assert str(path) in msg or path.name in msg, msg
        return "error"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """One small valid file of each kind."""
    from neurodyn.data.prepare import prepare
    from neurodyn.data.synthetic.nlb_nwb import pair_names, write_nlb_pair
    from neurodyn.metrics.submission import expected_shapes_from_prepared, write_submission

    d = tmp_path_factory.mktemp("fuzz")
    write_nlb_pair(d / "nwb", "mc_maze", n_train_trials=12, n_test_trials=4, seed=2, n_heldin=4, n_heldout=2)
    train, test = (d / "nwb" / name for name in pair_names("mc_maze"))
    prep = prepare("mc_maze", d / "nwb", 20, "val", d / "prep.h5", include_psth=False, log=None)
    (name, shapes), = expected_shapes_from_prepared(prep).items()
    rng = np.random.default_rng(0)
    pred = write_submission(d / "pred.h5", {name: {k: rng.random(s) for k, s in shapes.items()}})
    return {"nwb": test, "prepared": prep, "prediction": pred, "scratch": d}


def _run(reader, kind: str, name: str, files):
    data = files[kind].read_bytes()
    target = files["scratch"] / f"damaged_{name}{files[kind].suffix}"

    outcomes = {"valid": 0, "error": 0}

    @_settings(name)
    @given(damage(len(data)))
    def prop(change):
        outcomes[check(reader, data, change, target)] += 1

    prop()
    total = sum(outcomes.values())
    print(f"fuzz {name}: {total} examples ({outcomes['valid']} read as valid, {outcomes['error']} InputError)")
    # the damage must reach the reader: most examples are refused (a test that could not fail is no test)
    assert total >= _settings(name).max_examples // 2 and outcomes["error"] > 0, outcomes


def test_nwb_reader(files):
    from neurodyn.data.nwb import load_session

    _run(load_session, "nwb", "nwb", files)


def test_prepared_readers(files):
    from neurodyn.data.prepare import load_prepared
    from neurodyn.metrics.submission import expected_shapes_from_prepared

    def read(path):
        load_prepared(path)
        expected_shapes_from_prepared(path)

    _run(read, "prepared", "prepared", files)


def test_target_reader(files):
    from neurodyn.metrics.evaluate import load_target

    _run(load_target, "prepared", "target", files)


def test_prediction_reader(files):
    from neurodyn.metrics.submission import read_submission, validate_submission

    def read(path):
        validate_submission(read_submission(path), path=path)

    _run(read, "prediction", "submission", files)


def test_plot_reader(files):
    from neurodyn.viz.cli import read_prediction

    _run(read_prediction, "prediction", "plot", files)
