"""Shared pytest configuration: markers, the shared NLB file, no network by default."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMALL_TEST_NWB = "sub-Jenkins_ses-small_desc-test_ecephys.nwb"


def pytest_addoption(parser):
    parser.addoption("--run-network", action="store_true", default=False, help="run tests that reach DANDI")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-network"):
        return
    skip = pytest.mark.skip(reason="needs the network; pass --run-network")
    for item in items:
        if "network" in item.keywords:
            item.add_marker(skip)


def shared_data_dir() -> Path:
    """The folder holding shared test data: $NEURODYN_TEST_DATA, else ../shared/data beside the repo."""
    env = os.environ.get("NEURODYN_TEST_DATA")
    return Path(env) if env else ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def small_test_nwb() -> Path:
    """Path of the real MC_Maze_Small test file (DANDI:000140); skips when it is absent."""
    path = shared_data_dir() / SMALL_TEST_NWB
    if not path.is_file():
        pytest.skip(f"{SMALL_TEST_NWB} not found in {path.parent} (set NEURODYN_TEST_DATA)")
    return path


@pytest.fixture(autouse=True)
def _no_network(monkeypatch, request):
    """Block non-loopback sockets unless the test is marked `network`."""
    if "network" in request.keywords:
        return
    import socket

    real_connect = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not (host.startswith("127.") or host in {"localhost", "::1"}
                                          or self.family == socket.AF_UNIX):
            raise RuntimeError(f"test tried to reach the network: {address!r}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)


def pytest_configure(config):
    # Tests use tiny tensors, for which intra-op threads cost more than they give (and CI runs two
    # pytest workers on two cores).
    import torch

    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _signal_handlers_restored():
    """Every test leaves SIGINT's and SIGTERM's handlers as it found them.

    neurodyn's commands install handlers that turn a signal into ``Interrupted`` for the span of a block
    (``neurodyn.io.output``); one left behind changes what the next test on the same worker sees, and
    makes failures depend on the order of the tests. A changed handler fails the test that changed it
    and is put back.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():  # pragma: no cover
        yield
        return
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    yield
    changed = {}
    for signum, handler in before.items():
        now = signal.getsignal(signum)
        if now != handler:
            changed[signal.Signals(signum).name] = (handler, now)
            signal.signal(signum, handler)
    if changed:
        pytest.fail(f"the test left signal handlers changed (before, after): {changed}", pytrace=False)
