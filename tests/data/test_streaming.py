"""Streaming NWB over HTTP range requests (dandi:// and https://) from a loopback DANDI archive.

The server (tests/data/dandi_server.py) counts every byte of file data it sends, so "how much of the file
was read" is measured where it is spent, not estimated by the client.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from neurodyn.cli import main
from neurodyn.data import stream
from neurodyn.data.nwb import load_session
from neurodyn.data.prepare import prepare
from neurodyn.data.synthetic.nlb_nwb import pair_names, write_nlb_nwb, write_nlb_pair
from neurodyn.errors import InputError


def _load_server():
    """tests/data/dandi_server.py, loaded by path (test folders are not packages)."""
    name = "neurodyn_tests_dandi_server"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("dandi_server.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules[name]


dandi_server = _load_server()
REAL_PATH = "sub-Jenkins/sub-Jenkins_ses-small_desc-test_ecephys.nwb"


@pytest.fixture
def dandi(monkeypatch):
    monkeypatch.setenv("DANDI_NO_ET", "1")  # no version telemetry request
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setattr(stream, "REQUEST_TIMEOUT_S", 10.0)  # a stuck exchange fails in seconds, not minutes
    with dandi_server.Server() as state:
        monkeypatch.setenv("NEURODYN_DANDI_API", state.api)
        yield state


@pytest.fixture(scope="module")
def big_train(tmp_path_factory) -> Path:
    """An mc_maze-style train file of 200 trials: 5.2 MB, 4.5 MB of it the 1 kHz hand_vel series."""
    return write_nlb_nwb(tmp_path_factory.mktemp("big") / "sub-Synth_desc-train_behavior+ecephys.nwb", "mc_maze",
                         n_trials=200, n_heldin=10, n_heldout=4, seed=1)


def assert_same_h5(a: Path, b: Path, differ: dict | None = None) -> None:
    """Every attribute and every dataset of two HDF5 files equal (NaN == NaN); ``differ``: root attributes
    of ``b`` expected to have these values instead (default: ``source_sha256_from`` "dandi", a streamed
    dandi:// file's, where ``a`` is local)."""
    differ = {"source_sha256_from": None} if differ is None else differ
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        attrs_a = {k: _plain(v) for k, v in fa.attrs.items()}
        attrs_b = {k: _plain(v) for k, v in fb.attrs.items()}
        assert attrs_a["source_sha256_from"] == ["bytes"] * len(attrs_a["source_files"])  # a local file: hashed
        for key, value in differ.items():
            attrs_a.pop(key)
            got = attrs_b.pop(key)
            assert got == (["dandi"] * len(got) if value is None else value), key
        assert attrs_a == attrs_b
        names_a, names_b = [], []
        fa.visit(names_a.append)
        fb.visit(names_b.append)
        assert names_a == names_b
        for name in names_a:
            if isinstance(fa[name], h5py.Dataset):
                x, y = fa[name][()], fb[name][()]
                if x.dtype == object:
                    assert len(x) == len(y) and all(np.array_equal(p, q) for p, q in zip(x, y)), name
                else:
                    np.testing.assert_array_equal(x, y, err_msg=name)


def _plain(value):
    if isinstance(value, np.ndarray):
        return [v.decode() if isinstance(v, bytes) else v for v in value.tolist()]
    return value.decode() if isinstance(value, bytes) else value


# ------------------------------------------------------------------------------------ equality
@pytest.mark.requires_data
def test_streamed_prepare_equals_local_real_file(dandi, small_test_nwb, tmp_path, capsys):
    asset = dandi.add("000140", "0.220113.0408", REAL_PATH, small_test_nwb)
    local = prepare("mc_maze_small", small_test_nwb, 5, "test", tmp_path / "local.h5", log=None)
    for i, url in enumerate([f"dandi://000140/{REAL_PATH}", f"dandi://000140@0.220113.0408/{REAL_PATH}",
                             f"{dandi.root}/files/000140/{REAL_PATH}"]):
        out = tmp_path / f"streamed{i}.h5"
        argv = ["prepare", "--dataset", "mc_maze_small", "--nwb", url, "--phase", "test", "--out", str(out),
                "--quiet"]
        assert main(argv) == 0, capsys.readouterr().err
        plain = url.startswith("http")
        # tensors and attributes; source_sha256 is DANDI's for dandi:// (the local file's), unknown for a URL
        assert_same_h5(local, out, differ={"source_sha256_from": ["dandi"] if not plain else [""],
                                           **({"source_sha256": [""]} if plain else {})})
    assert not list(tmp_path.glob("*.nwb")) and asset.sha256 == stream.resolve_url(
        f"dandi://000140/{REAL_PATH}")[0].sha256


@pytest.mark.parametrize("style", ["mc_maze", "dmfc_rsg"])
def test_streamed_folder_prepare_equals_local(dandi, tmp_path, style):
    folder = tmp_path / "pair"
    write_nlb_pair(folder, style, n_train_trials=24, n_test_trials=6, seed=7, n_heldin=8, n_heldout=3)
    for name in pair_names(style):
        dandi.add("000999", "0.1.0", f"sub-Synth/{name}", folder / name)
    for phase in ("val", "test"):
        local = prepare(style, folder, 20, phase, tmp_path / f"local_{phase}.h5", log=None)
        streamed = prepare(style, "dandi://000999/sub-Synth/", 20, phase, tmp_path / f"streamed_{phase}.h5",
                           log=None)
        assert_same_h5(local, streamed)


def test_plain_url_of_a_registry_name_and_size_borrows_no_digest(dandi, tmp_path, capsys):
    """A simulated file named and padded like MC_Maze_Small's test file, streamed from a plain URL: its
    source_sha256 was the real file's (the registry's, on name and size); now unknown, and so recorded."""
    from neurodyn.data.nlb import find_file

    _, entry = find_file(REAL_PATH.rsplit("/", 1)[-1])
    _, test = write_nlb_pair(tmp_path / "pair", "mc_maze", n_train_trials=8, n_test_trials=6, n_heldin=6,
                             n_heldout=2, seed=3)
    data = test.read_bytes()
    assert len(data) < entry.size
    fake = tmp_path / REAL_PATH.rsplit("/", 1)[-1]
    fake.write_bytes(data + bytes(entry.size - len(data)))  # HDF5 ignores bytes past its end
    dandi.add("000140", "0.220113.0408", REAL_PATH, fake)
    url = f"{dandi.root}/files/000140/{REAL_PATH}"
    assert stream.resolve_url(url)[0].sha256 is None
    out = tmp_path / "streamed.h5"
    assert main(["prepare", "--dataset", "mc_maze_small", "--nwb", url, "--phase", "test", "--out", str(out),
                 "--quiet"]) == 0, capsys.readouterr().err
    with h5py.File(out, "r") as f:
        assert _plain(f.attrs["source_sha256"]) == [""] and _plain(f.attrs["source_sha256_from"]) == [""]
    assert entry.sha256 not in out.read_bytes().decode("latin-1")
    assert main(["info", str(out)]) == 0
    assert "source_sha256_from" in (shown := capsys.readouterr().out) and "unknown" in shown
    dandi_out = tmp_path / "dandi.h5"  # dandi://: DANDI's digest, said to be DANDI's
    assert main(["prepare", "--dataset", "mc_maze_small", "--nwb", f"dandi://000140/{REAL_PATH}", "--phase", "test",
                 "--out", str(dandi_out), "--quiet"]) == 0
    with h5py.File(dandi_out, "r") as f:
        assert _plain(f.attrs["source_sha256_from"]) == ["dandi"]
        assert _plain(f.attrs["source_sha256"]) == [hashlib.sha256(fake.read_bytes()).hexdigest()]


def test_reader_takes_a_path_a_url_or_a_file_object(dandi, big_train):
    dandi.add("000999", "0.1.0", f"sub-Synth/{big_train.name}", big_train)
    local = load_session(big_train)
    streamed = load_session(f"dandi://000999/sub-Synth/{big_train.name}")
    handle = open(big_train, "rb")  # noqa: SIM115 (time series are read lazily: it must stay open)
    from_handle = load_session(handle)
    from_bytes = load_session(io.BytesIO(big_train.read_bytes()))
    hand_vel = local.behavior["hand_vel"].on_grid(local.n_ms)
    for s in (streamed, from_handle, from_bytes):
        assert s.n_units == local.n_units and s.n_ms == local.n_ms
        assert all(np.array_equal(a, b) for a, b in zip(s.spike_ms, local.spike_ms))
        for key, column in local.trials.items():
            assert list(s.trials[key]) == list(column) if column.dtype == object else np.array_equal(
                s.trials[key], column, equal_nan=True)
        np.testing.assert_array_equal(s.behavior["hand_vel"].on_grid(s.n_ms), hand_vel)
    handle.close()
    assert streamed.path == f"dandi://000999/sub-Synth/{big_train.name}"
    assert streamed.files[0].path.name == big_train.name


# ------------------------------------------------------------------------------------ bytes read
def _behaviour_extent(path: Path) -> tuple[int, int]:
    with h5py.File(path, "r") as f:
        ds = f["processing/behavior/hand_vel/data"]
        assert ds.chunks is None  # contiguous: one byte range
        return ds.id.get_offset(), ds.id.get_storage_size()


def _served_ranges(dandi) -> list[tuple[int, int]]:
    out = []
    for _, rng, n in dandi.blob_requests():
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        out.append((start, start + n))
    return out


def test_units_and_trials_read_a_fraction_of_the_file(dandi, big_train, record_property, capsys):
    size = big_train.stat().st_size
    dandi.add("000999", "0.1.0", f"sub-Synth/{big_train.name}", big_train)
    url = f"dandi://000999/sub-Synth/{big_train.name}"
    session = load_session(url)  # units, trials, series metadata
    served = dandi.bytes_served
    ratio = served / size
    record_property("streamed_bytes", served)
    record_property("file_bytes", size)
    with capsys.disabled():
        print(f"\nstreamed {served:,} of {size:,} bytes ({ratio:.3f}) to read units + trials of {big_train.name}")
    # the 1 kHz behaviour is 87% of the file; units, trials, the cached NWB schema and object headers the rest
    offset, length = _behaviour_extent(big_train)
    touched = sum(max(0, min(b, offset + length) - max(a, offset)) for a, b in _served_ranges(dandi))
    assert touched <= stream.MAX_READAHEAD_BYTES and touched < 0.1 * length, (touched, length)
    assert ratio < 0.25, ratio
    # the series is read when asked for: then its bytes travel, once
    session.behavior["hand_vel"].on_grid(session.n_ms)
    touched_after = sum(max(0, min(b, offset + length) - max(a, offset)) for a, b in _served_ranges(dandi))
    assert touched_after >= length


def test_block_cache_is_bounded(dandi, big_train, monkeypatch):
    monkeypatch.setenv(stream.CACHE_ENV_VAR, "1")  # 1 MiB
    dandi.add("000999", "0.1.0", f"sub-Synth/{big_train.name}", big_train)
    (remote,) = stream.resolve_url(f"dandi://000999/sub-Synth/{big_train.name}")
    session = load_session(remote)
    session.behavior["hand_vel"].on_grid(session.n_ms)  # 4.5 MB through a 1 MiB cache
    cached = sum(len(c) for c in remote.reader._remote._chunks.values())
    # remfile trims the cache to half once it holds more blocks than the bound; one read adds at most
    # one read-ahead run on top
    assert cached <= 2**20 + stream.MAX_READAHEAD_BYTES
    # a second pass fetches the series again: all but what the bounded cache still holds was evicted
    before = dandi.bytes_served
    session.behavior["hand_vel"].on_grid(session.n_ms)
    _, length = _behaviour_extent(big_train)
    assert dandi.bytes_served - before >= length - (2**20 + stream.MAX_READAHEAD_BYTES)


# ------------------------------------------------------------------------------------ info on URLs
def test_info_on_urls(dandi, big_train, capsys):
    dandi.add("000999", "0.1.0", f"sub-Synth/{big_train.name}", big_train)
    assert main(["info", f"dandi://000999/sub-Synth/{big_train.name}"]) == 0
    out = capsys.readouterr().out
    assert "NWB URL dandi://000999/sub-Synth/" in out and "14 (10 held-in, 4 held-out)" in out
    assert "hand_vel" in out
    assert main(["info", f"{dandi.root}/files/000999/sub-Synth/{big_train.name}"]) == 0
    assert "14 (10 held-in, 4 held-out)" in capsys.readouterr().out
    assert main(["info", "dandi://000999/sub-Synth/"]) == 0  # a folder URL
    assert big_train.name in capsys.readouterr().out



def _info_lines(capsys, url: str) -> tuple[str, list[str]]:
    """``neurodyn info URL``'s what: line and its next: lines."""
    assert main(["info", url]) == 0, capsys.readouterr().err
    lines = capsys.readouterr().out.splitlines()
    return next(x for x in lines if x.startswith("what: ")), [x for x in lines if x.startswith("next: ")]


def test_info_of_a_url_names_the_nlb_dataset_by_name_size_and_digest(dandi, tmp_path, capsys):
    """info of a URL said 'DATASET' in the prepare command it suggests, whatever the file. Now, from what is known
    without downloading: the file's DANDI name and size (a plain URL), and a dandi:// asset's published SHA-256
    against the registry's, which refutes or confirms them. The name alone, with another size, names nothing."""
    from neurodyn.data.nlb import find_file

    name = REAL_PATH.rsplit("/", 1)[-1]
    _, entry = find_file(name)
    _, test = write_nlb_pair(tmp_path / "pair", "mc_maze", n_train_trials=8, n_test_trials=6, n_heldin=6,
                             n_heldout=2, seed=3)
    data = test.read_bytes()
    (tmp_path / "padded").mkdir()
    padded = tmp_path / "padded" / name  # the registry file's name and size, other bytes
    padded.write_bytes(data + bytes(entry.size - len(data)))
    (tmp_path / "short").mkdir()
    short = tmp_path / "short" / name  # the registry file's name, another size
    short.write_bytes(data)
    dandi.add("000140", "0.220113.0408", REAL_PATH, padded)  # its true digest: not the registry's
    dandi.add("000140", "draft", REAL_PATH, padded, sha256=entry.sha256)  # DANDI states the registry's digest
    dandi.add("000141", "0.1.0", REAL_PATH, short)
    named = "neurodyn prepare --dataset mc_maze_small --nwb"
    unnamed = "neurodyn prepare --dataset DATASET --nwb"
    what, steps = _info_lines(capsys, f"{dandi.root}/files/000140/{REAL_PATH}")  # a plain URL: name and size
    assert "MC_Maze_Small, DANDI:000140: its test file, by its name and size" in what and \
        "SHA-256" not in what, what
    assert steps and all(named in step for step in steps), steps
    what, steps = _info_lines(capsys, f"dandi://000140@draft/{REAL_PATH}")
    assert "its test file, by its name and size and DANDI's published SHA-256" in what, what
    assert steps and all(named in step for step in steps), steps
    for url in (f"dandi://000140@0.220113.0408/{REAL_PATH}",  # DANDI's digest is another file's
                f"{dandi.root}/files/000141/{REAL_PATH}", f"dandi://000141/{REAL_PATH}"):  # the name alone
        what, steps = _info_lines(capsys, url)
        assert "DATASET: its NLB dataset" in what and "MC_Maze" not in what, (url, what)
        assert steps and all(unnamed in step for step in steps), (url, steps)


def test_prepare_takes_dandis_published_digest_as_info_does(dandi, tmp_path, capsys):
    """A dandi:// asset with a registry file's name and size whose published SHA-256 is another's: info names no
    dataset for it (the digest refutes the name and size), but prepare refused it for another --dataset as
    "MC_Maze_Small's test file". Both now read the evidence alike (prepare.registry_evidence); an asset whose
    digest agrees is still refused for another dataset, naming the digest among the evidence."""
    from neurodyn.data.nlb import find_file

    name = REAL_PATH.rsplit("/", 1)[-1]
    _, entry = find_file(name)
    _, test = write_nlb_pair(tmp_path / "pair", "mc_maze", n_train_trials=8, n_test_trials=6, n_heldin=6,
                             n_heldout=2, seed=3)
    data = test.read_bytes()
    padded = tmp_path / name  # the registry file's name and size, other bytes
    padded.write_bytes(data + bytes(entry.size - len(data)))
    dandi.add("000140", "0.220113.0408", REAL_PATH, padded)  # its true digest: not the registry's
    dandi.add("000140", "draft", REAL_PATH, padded, sha256=entry.sha256)  # DANDI states the registry's digest

    def run(url, out):
        code = main(["prepare", "--dataset", "mc_maze", "--nwb", url, "--phase", "test", "--out", str(out),
                     "--quiet"])
        return code, capsys.readouterr().err.strip().splitlines()

    code, err = run(f"dandi://000140@0.220113.0408/{REAL_PATH}", tmp_path / "refuted.h5")
    assert code == 0 and (tmp_path / "refuted.h5").is_file(), err
    code, err = run(f"dandi://000140@draft/{REAL_PATH}", tmp_path / "confirmed.h5")
    assert code == 2 and len(err) == 1 and "MC_Maze_Small's test file" in err[0], err
    assert "by its name and size and DANDI's published SHA-256" in err[0] and "--dataset" in err[0], err
    assert not (tmp_path / "confirmed.h5").exists()


@pytest.mark.requires_data
def test_info_of_the_real_file_streamed_names_its_dataset(dandi, small_test_nwb, capsys):
    dandi.add("000140", "0.220113.0408", REAL_PATH, small_test_nwb)
    what, steps = _info_lines(capsys, f"dandi://000140/{REAL_PATH}")
    assert "MC_Maze_Small, DANDI:000140: its test file, by its name and size and DANDI's published SHA-256" in what
    assert steps == [f"next: neurodyn prepare --dataset mc_maze_small --nwb dandi://000140/{REAL_PATH} --bin-ms 20 "
                     "--phase test  (or --bin-ms 5)"]


# ------------------------------------------------------------------------------------ failures
def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    return err


def test_server_error_mid_stream_is_one_line(dandi, big_train, capsys):
    asset = dandi.add("000999", "0.1.0", f"sub-Synth/{big_train.name}", big_train)
    url = f"dandi://000999/sub-Synth/{big_train.name}"
    dandi.faults[asset.asset_id] = dandi_server.Fault(status=410, count=1000, after=2)  # the blob URL expires
    assert main(["info", url]) == 1  # the file was there: a server failure, not bad input
    err = one_line_error(capsys)
    assert err.startswith(f"neurodyn info: error: dandi://000999@0.1.0/sub-Synth/{big_train.name}")
    assert "reading over the network failed" in err and "410" in err


def test_network_failure_in_a_real_process_exits_1(dandi, big_train):
    """The same failure in a separate process: one line, exit code 1, and a clean interpreter exit (an h5py
    file-object driver that kept a failed read's traceback alive used to segfault at shutdown)."""
    import os
    import subprocess

    asset = dandi.add("000999", "0.1.0", f"sub-Synth/{big_train.name}", big_train)
    dandi.faults[asset.asset_id] = dandi_server.Fault(status=410, count=1000, after=1)
    env = dict(os.environ, NEURODYN_DANDI_API=dandi.api, DANDI_NO_ET="1")
    proc = subprocess.run([sys.executable, "-m", "neurodyn.cli", "info", f"dandi://000999/sub-Synth/{big_train.name}"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    err = proc.stderr.strip()
    assert "\n" not in err and "reading over the network failed" in err and "410" in err


def test_a_failed_read_is_not_retried_again(dandi, big_train, capsys, monkeypatch):
    """Once a read has failed after remfile's retries, later reads (h5py / hdmf read again after an OSError)
    fail at once: a persistent server error after open cost 27 range requests here (76 s of back-off), now the
    retries of one read."""
    import time

    asset = dandi.add("000999", "0.1.0", f"sub-Synth/{big_train.name}", big_train)
    dandi.faults[asset.asset_id] = dandi_server.Fault(status=500, count=10**6, after=3)
    sleeps = []
    monkeypatch.setattr(time, "sleep", sleeps.append)
    assert main(["info", f"dandi://000999/sub-Synth/{big_train.name}"]) == 1
    assert "reading over the network failed" in one_line_error(capsys)
    failed = [r for r in dandi.blob_requests() if r[2] == 0]
    assert len(failed) <= 9 and sum(sleeps) < 30, (len(failed), sum(sleeps))  # one read: 9 tries (27 before)


def test_dandi_asset_whose_server_holds_another_size(dandi, big_train, capsys):
    asset = dandi.add("000999", "0.1.0", f"sub-Synth/{big_train.name}", big_train)
    dandi.blob_bytes[asset.asset_id] = 1_000_000
    url = f"dandi://000999@0.1.0/sub-Synth/{big_train.name}"
    assert main(["info", url]) == 1
    err = one_line_error(capsys)
    assert f"{url}: the server holds 1,000,000 bytes, DANDI states {big_train.stat().st_size:,}" in err, err


def test_transient_server_error_is_retried(dandi, big_train, tmp_path):
    asset = dandi.add("000999", "0.1.0", f"sub-Synth/{big_train.name}", big_train)
    dandi.faults[asset.asset_id] = dandi_server.Fault(status=503, count=1, after=1)
    s = load_session(f"dandi://000999/sub-Synth/{big_train.name}")
    assert s.n_units == 14 and any(r[2] == 0 for r in dandi.blob_requests())


def test_the_probe_retries_a_transient_server_error(dandi, big_train, monkeypatch):
    """helper-57: the one-byte probe of a dandi:// asset failed the run on one 503 (an S3 'SlowDown'), which
    remfile's retried reads had ridden out before the probe existed."""
    import time

    slept = []
    monkeypatch.setattr(time, "sleep", slept.append)
    asset = dandi.add("000999", "0.1.0", f"sub-Synth/{big_train.name}", big_train)
    dandi.faults[asset.asset_id] = dandi_server.Fault(status=503, count=1, after=0)  # the probe's first try
    assert main(["info", f"dandi://000999/sub-Synth/{big_train.name}"]) == 0
    assert slept[:1] == [1.0]


def test_the_probe_honours_retry_after(dandi, big_train, monkeypatch, capsys):
    """A 429 with Retry-After longer than the probe's back-off is waited out; one over MAX_RETRY_AFTER_S fails
    the open at once (exit 1), naming the wait, instead of three tries that cannot succeed."""
    import time

    slept = []
    monkeypatch.setattr(time, "sleep", slept.append)
    asset = dandi.add("000999", "0.1.0", f"sub-Synth/{big_train.name}", big_train)
    dandi.faults[asset.asset_id] = dandi_server.Fault(status=429, count=1, retry_after="5")
    assert main(["info", f"dandi://000999/sub-Synth/{big_train.name}"]) == 0
    assert slept[:1] == [5.0]  # the back-off alone: 1 s
    url = f"{dandi.root}/files/000999/sub-Synth/{big_train.name}"
    dandi.reset_counts()
    dandi.faults[asset.asset_id] = dandi_server.Fault(status=503, count=10, retry_after="3600")
    assert main(["info", url]) == 1
    assert "asks to wait 3600 s" in one_line_error(capsys) and len(dandi.blob_requests()) == 1


def test_a_failed_open_leaves_the_url_usable_once_the_server_is_back(dandi, big_train, monkeypatch):
    """helper-57: the failed reader stayed cached with the URL's StreamedFile, so every later open in the same
    process (a notebook retrying) failed at once with the old error and no request."""
    import time

    monkeypatch.setattr(time, "sleep", lambda s: None)
    asset = dandi.add("000999", "0.1.0", f"sub-Synth/{big_train.name}", big_train)
    dandi.faults[asset.asset_id] = dandi_server.Fault(status=500, count=10**6, after=3)  # after the probe
    url = f"dandi://000999/sub-Synth/{big_train.name}"
    with pytest.raises(stream.RemoteFailure):
        load_session(url)
    dandi.faults.clear()  # the server has recovered
    dandi.reset_counts()
    assert load_session(url).n_units == 14 and dandi.blob_requests()


def test_a_test_phase_file_streamed_from_a_plain_url_still_counts_the_val_trials_it_holds(dandi, tmp_path):
    """helper-57: a source streamed from a plain URL records no digest (""), and its trials never met the same
    trials of a file prepared locally (by digest): a leaked test-phase model was recorded as trained on 0 of the
    val trials. Where a digest is unknown, trials are matched by file name and trial id."""
    from neurodyn.training.predictions import trained_on_eval_trials

    train, test = write_nlb_pair(tmp_path / "pair", "mc_maze", n_train_trials=40, n_test_trials=10, n_heldin=6,
                                 n_heldout=2, seed=3)
    dandi.add("000999", "0.1.0", f"sub-X/{train.name}", train)
    streamed = prepare("mc_maze", f"{dandi.root}/files/000999/sub-X/{train.name}", bin_ms=20, phase="test",
                       out=tmp_path / "test_phase_streamed.h5", log=None)
    local = prepare("mc_maze", train, bin_ms=20, phase="test", out=tmp_path / "test_phase_local.h5", log=None)
    val = prepare("mc_maze", train, bin_ms=20, phase="val", out=tmp_path / "val.h5", log=None)
    with h5py.File(streamed) as f:
        assert list(f.attrs["source_sha256"]) == [""]
    with h5py.File(val) as f:
        n_val = f["eval_input/eval_spikes_heldin"].shape[0]
    for training in (streamed, local):
        found = trained_on_eval_trials({"data.init_args.path": {"path": str(training),
                                                                 "size": training.stat().st_size}}, val)
        assert found["trained_on_eval_trials"] == n_val, training


def test_bad_urls(dandi, big_train, capsys, tmp_path):
    dandi.add("000999", "0.1.0", f"sub-Synth/{big_train.name}", big_train)
    cases = [
        ("dandi://000111/x.nwb", "000111"),
        ("dandi://000999@9.9.9/x.nwb", "9.9.9"),
        ("dandi://000999/sub-Nobody/", "no NWB asset"),
        ("dandi://abc/x.nwb", "dandi://<6-digit dandiset>"),
        ("dandi://nowhere/000999/x.nwb", "unknown DANDI instance 'nowhere'"),
        # $NEURODYN_DANDI_API (the loopback archive here) and the URL's instance disagree: refused, not one
        # of them silently used (the variable won before)
        ("dandi://dandi/000999/x.nwb", "names DANDI instance 'dandi' (https://api.dandiarchive.org/api)"),
        (f"{dandi.root}/files/000999/missing.nwb", "HTTP 404"),
    ]
    for url, expected in cases:
        assert main(["info", url]) == 2, url
        err = one_line_error(capsys)
        assert expected in err and url in err, (url, err)
    dandi.ignore_range = True
    url = f"{dandi.root}/files/000999/sub-Synth/{big_train.name}?again"
    with pytest.raises(InputError, match="ignores HTTP range requests"):
        stream.resolve_url(url)
    # a dandi:// asset's storage server is probed too: exit 2 at once (exit 1 after 26 s of retries before)
    dandi.reset_counts()
    url = "dandi://000999@0.1.0/sub-Synth/"
    assert main(["info", url]) == 2
    err = one_line_error(capsys)
    assert url in err and "ignores HTTP range requests" in err and "storage URL" in err, err
    assert len(dandi.blob_requests()) == 1
    dandi.ignore_range = False
    assert main(["prepare", "--dataset", "mc_maze", "--nwb", "dandi://000111/", "--out", str(tmp_path / "o.h5")]) == 2
    assert "000111" in one_line_error(capsys) and not (tmp_path / "o.h5").exists()


@pytest.mark.parametrize("command", ["info", "prepare"])
def test_a_web_page_address_is_named_as_one(dandi, command, tmp_path, capsys):
    """A URL that answers with an HTML page (a dataset's web page pasted for its file, a Wi-Fi login page) was
    refused as "the server ignores HTTP range requests; download the file instead" -- advice that cannot help.
    Now the line says the address gives a web page, exit 2, naming the URL."""
    dandi.pages["/dandiset/000140"] = ("text/html; charset=utf-8", b"<!doctype html><html><body>DANDI</body></html>")
    url = f"{dandi.root}/dandiset/000140"
    argv = (["info", url] if command == "info" else
            ["prepare", "--dataset", "mc_maze_small", "--nwb", url, "--out", str(tmp_path / "o.h5")])
    assert main(argv) == 2
    err = one_line_error(capsys)
    assert err.startswith(f"neurodyn {command}: error: {url}: ") and "an HTML page (text/html)" in err, err
    assert "range" not in err and "dandi://" in err, err
    assert sorted(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("typed", "expected"), [
    ("htps://example.org/sub-Jenkins/x.nwb", "unknown URL scheme 'htps'"),
    ("dandi:/000140/sub-Jenkins/", "dandi:/ needs two slashes"),
    ("https:/example.org/x.nwb", "https:/ needs two slashes"),
    ("HTTP:/example.org/x.nwb", "HTTP:/ needs two slashes"),
])
@pytest.mark.parametrize("command", ["info", "prepare"])
def test_a_mistyped_url_is_named_as_typed(typed, expected, command, tmp_path, capsys, monkeypatch):
    """A mistyped URL was taken for a local path and named as pathlib shortens it ("htps:/example.org/...: no such
    file or folder", "dandi:/000140/sub-Jenkins: no such file"): now one line naming it as typed and what is wrong
    with it, exit 2, no request and nothing written. A local path of that spelling is still read as a path."""
    monkeypatch.chdir(tmp_path)
    argv = (["info", typed] if command == "info" else
            ["prepare", "--dataset", "mc_maze_small", "--nwb", typed, "--out", str(tmp_path / "o.h5")])
    assert main(argv) == 2
    err = one_line_error(capsys)
    assert err.startswith(f"neurodyn {command}: error: {typed}: ") and expected in err, err
    assert "dandi://, http:// or https://" in err
    assert sorted(tmp_path.iterdir()) == []
    from neurodyn.data.stream import url_typo

    (tmp_path / typed).mkdir(parents=True)  # folders "htps:", "example.org", ...: the string is a path after all
    assert url_typo(typed) is None


def test_network_and_server_failures_exit_1(dandi, big_train, capsys, monkeypatch):
    """Bad input exits 2 (test_bad_urls); the network or the server failing exits 1, one line naming the URL.
    A host that does not resolve fails after one lookup, with no back-off sleep (the dandi client's lookups
    and remfile's reads retried it with back-off)."""
    asset = dandi.add("000999", "0.1.0", f"sub-Synth/{big_train.name}", big_train)
    record = dandi_server.offline(monkeypatch)
    # a server error answering a plain URL
    dandi.faults[asset.asset_id] = dandi_server.Fault(status=503, count=1000)
    url = f"{dandi.root}/files/000999/sub-Synth/{big_train.name}"
    assert main(["info", url]) == 1
    err = one_line_error(capsys)
    assert url in err and "server error (HTTP 503)" in err
    assert record.sleeps == [1.0, 2.0]  # the probe tried 3 times (a 503 may pass: S3's SlowDown)
    record.sleeps.clear()
    dandi.faults.clear()
    # the storage host of a DANDI asset does not resolve
    asset.extra_metadata["contentUrl"] = [f"{dandi.api}/assets/{asset.asset_id}/download/",
                                          "http://blobs.neurodyn-test.invalid/blob"]
    url = f"dandi://000999/sub-Synth/{big_train.name}"
    assert main(["info", url]) == 1
    err = one_line_error(capsys)
    assert url in err and "cannot resolve host blobs.neurodyn-test.invalid" in err and "no network" in err
    assert record.lookups == ["blobs.neurodyn-test.invalid"] and record.sleeps == []
    # a plain URL whose host does not resolve
    url = "https://files.neurodyn-test.invalid/x.nwb"
    assert main(["info", url]) == 1
    err = one_line_error(capsys)
    assert url in err and "cannot resolve host files.neurodyn-test.invalid" in err
    # the DANDI API host does not resolve
    monkeypatch.setenv("NEURODYN_DANDI_API", dandi_server.INVALID_API)
    record.lookups.clear()
    url = "dandi://000999/sub-Synth/"
    assert main(["info", url]) == 1
    err = one_line_error(capsys)
    assert url in err and "cannot resolve host api.neurodyn-test.invalid" in err and "NEURODYN_DANDI_API" in err
    assert record.lookups == ["api.neurodyn-test.invalid"] and record.sleeps == []


@pytest.mark.parametrize("command", ["info", "prepare"])
def test_unresolved_host_in_a_dandi_lookup_names_no_missing_option(command, dandi, big_train, capsys, monkeypatch,
                                                                   tmp_path):
    """A name-resolution failure inside the dandi client's lookup (the API host resolved here, e.g. behind a proxy
    that could not) told `neurodyn prepare` / `info` users that '--api-url or $NEURODYN_DANDI_API selects another
    DANDI API': neither command has --api-url. It names what they have."""
    import socket

    from dandi import dandiapi

    dandi.add("000999", "0.1.0", f"sub-Synth/{big_train.name}", big_train)

    def get_dandiset(self, *args, **kwargs):
        raise ConnectionError(socket.gaierror(-2, "Name or service not known"))

    monkeypatch.setattr(dandiapi.DandiAPIClient, "get_dandiset", get_dandiset)
    url = "dandi://000999/sub-Synth/"
    argv = [command, url] if command == "info" else [command, "--dataset", "mc_maze", "--nwb", url, "--out",
                                                        str(tmp_path / "p.h5")]
    assert main(argv) == 1
    err = one_line_error(capsys)
    assert url in err and "no network" in err and err.endswith("$NEURODYN_DANDI_API selects another DANDI API"), err
    assert "--api-url" not in err and "api_url" not in err, err


@pytest.mark.network
def test_real_dandi_streamed_info():
    """Opt-in (--run-network): units and trials of the MC_Maze_Small test file straight from DANDI:000140."""
    s = load_session(f"dandi://000140/{REAL_PATH}")
    assert (s.n_units, s.n_trials, s.n_ms) == (107, 100, 79900)


@pytest.mark.parametrize("command", ["info", "prepare"])
def test_timeout_bounds_the_wait_for_a_silent_server(dandi, big_train, command, tmp_path, capsys):
    """`info` / `prepare` reading a URL had no --timeout: a server that accepts the connection and never answers
    held the one-byte probe 60 s, tried 3 times (about 3 minutes before the first line), and the DANDI lookups of a
    dandi:// URL 60 s each. Now --timeout bounds each wait, and a probe that timed out is not tried again (the
    whole wait was spent): one line naming the URL, exit 1, within seconds, nothing written."""
    import time

    dandi.add("000999", "0.1.0", f"sub-Synth/{big_train.name}", big_train)
    dandi.stall_s = 8.0
    out = tmp_path / "o.h5"
    plain = f"{dandi.root}/files/000999/sub-Synth/{big_train.name}"
    for url, stall, expected in [(plain, "^/files/", f"{plain}: cannot open URL, no answer within 1 s"),
                                 ("dandi://000999/sub-Synth/", "^/api/dandisets/", f"no answer from {dandi.root}/")]:
        dandi.stall = stall
        dandi.reset_counts()
        argv = (["info", url] if command == "info" else
                ["prepare", "--dataset", "mc_maze", "--nwb", url, "--out", str(out)])
        started = time.monotonic()
        assert main([*argv, "--timeout", "1"]) == 1
        took = time.monotonic() - started
        err = one_line_error(capsys)
        assert err.startswith(f"neurodyn {command}: error: {url}: ") and expected in err and "within 1 s" in err, err
        if url == plain:
            assert took < 4 and len(dandi.blob_requests()) == 1, (took, dandi.requests)  # one try, no retries
        else:
            assert took < 30, took
        assert not out.exists()
    dandi.stall = None
    assert main([*argv, "--timeout", "nan"] if command == "prepare" else ["info", plain, "--timeout", "-1"]) == 2
    assert "--timeout: must be a number of seconds > 0" in one_line_error(capsys)


def test_a_probe_that_timed_out_is_not_tried_again(dandi, big_train, capsys, monkeypatch):
    """The one-byte probe tried a timeout 3 times (1 s and 2 s apart): 3 x 60 s and more before the first line
    against a silent server. The wait was spent in full; now it fails after the one, naming it."""
    monkeypatch.setattr(stream, "REQUEST_TIMEOUT_S", 1.0)
    dandi.add("000999", "0.1.0", f"sub-Synth/{big_train.name}", big_train)
    dandi.stall, dandi.stall_s = "^/files/", 8.0
    url = f"{dandi.root}/files/000999/sub-Synth/{big_train.name}"
    assert main(["info", url]) == 1
    assert one_line_error(capsys) == f"neurodyn info: error: {url}: cannot open URL, no answer within 1 s"
    assert len(dandi.blob_requests()) == 1


def test_timeout_blocks_of_two_threads_that_overlap_leave_no_setting_behind():
    """timeout_s() set a module value and put back the one it found: two blocks in two threads that overlapped
    (a program reading two URLs at once) restored each other's -- the first to end put back the default, the
    other then put back the first's seconds, the setting of every later read of the process. Now each block's
    setting ends with it; while both are open the one entered last applies."""
    import threading

    from neurodyn.data.stream import REQUEST_TIMEOUT_S, request_timeout_s, timeout_s

    second_inside, first_done = threading.Event(), threading.Event()
    seen = {}

    def first():
        with timeout_s(5):
            seen["first"] = request_timeout_s()
            worker = threading.Thread(target=second)
            worker.start()
            assert second_inside.wait(5.0)
            seen["both"] = request_timeout_s()
        first_done.set()
        worker.join(5.0)

    def second():
        with timeout_s(9):
            second_inside.set()
            assert first_done.wait(5.0)  # the first block ends while this one is open
            seen["second alone"] = request_timeout_s()

    thread = threading.Thread(target=first)
    thread.start()
    thread.join(10.0)
    assert seen == {"first": 5.0, "both": 9.0, "second alone": 9.0}
    assert request_timeout_s() == REQUEST_TIMEOUT_S  # before: 5.0 for the rest of the process
    with timeout_s(2), timeout_s(None):  # nested, None keeps the outer one
        assert request_timeout_s() == 2.0
    assert request_timeout_s() == REQUEST_TIMEOUT_S


# ------------------------------------------------------------------------------------ a file replaced on its server
#: what a server says of a file's version (numbered 1, 2, ...): nothing, a strong ETag, or a Last-Modified (an
#: old one: the answer's Date, now, is more than one second later)
VALIDATORS = {"none": lambda n: {}, "etag": lambda n: {"ETag": f'"version-{n}"'},
              "last-modified": lambda n: {"Last-Modified": f"Wed, 0{n} Jan 2025 00:00:00 GMT"}}


def _two_versions(tmp_path) -> tuple[bytes, bytes]:
    """Two versions of one file: two NLB-shaped NWB files of 8 and 12 trials, padded to one size (HDF5 ignores
    bytes past its end), so that neither the size nor the name tells them apart."""
    first = write_nlb_nwb(tmp_path / "first.nwb", "mc_maze", n_trials=8, n_heldin=4, n_heldout=2, seed=1)
    second = write_nlb_nwb(tmp_path / "second.nwb", "mc_maze", n_trials=12, n_heldin=5, n_heldout=2, seed=2)
    a, b = first.read_bytes(), second.read_bytes()
    size = max(len(a), len(b))
    return a + bytes(size - len(a)), b + bytes(size - len(b))


@pytest.mark.parametrize("validators", list(VALIDATORS))
def test_a_file_replaced_on_its_server_is_read_again(dandi, tmp_path, validators):
    """A notebook streams an https:// URL; the file on the server is replaced by another of the same size. The
    next read of the URL read the blocks cached by the first (resolutions were kept for the process's life):
    8 trials again, or a mix of both files. Now the URL is probed again and the cached blocks are reused only
    when the server's validators (ETag / Last-Modified) and the size say it is the same file."""
    first, second = _two_versions(tmp_path)
    asset = dandi.add("000999", "0.1.0", "sub-Synth/replaced.nwb", first)
    dandi.headers[asset.asset_id] = VALIDATORS[validators](1)
    url = f"{dandi.root}/files/000999/sub-Synth/replaced.nwb"
    assert load_session(url).n_trials == 8
    asset.data = second
    dandi.headers[asset.asset_id] = VALIDATORS[validators](2)
    again = load_session(url)
    assert (again.n_trials, again.n_heldin) == (12, 5)


@pytest.mark.parametrize("validators", ["etag", "last-modified"])
def test_an_unchanged_file_is_read_from_the_blocks_cached_before(dandi, tmp_path, validators):
    """The other side: a file whose server says it is unchanged is not read again -- the second read of the URL
    costs one one-byte probe, its blocks come from the cache."""
    first, _ = _two_versions(tmp_path)
    asset = dandi.add("000999", "0.1.0", "sub-Synth/kept.nwb", first)
    dandi.headers[asset.asset_id] = VALIDATORS[validators](1)
    url = f"{dandi.root}/files/000999/sub-Synth/kept.nwb"
    (before,) = stream.resolve_url(url)
    assert load_session(url).n_trials == 8
    dandi.reset_counts()
    assert load_session(url).n_trials == 8
    assert [r[1] for r in dandi.blob_requests()] == ["bytes=0-0"] and dandi.bytes_served == 1
    assert stream.resolve_url(url)[0] is before


def test_without_validators_blocks_are_read_again_but_once_per_command(dandi, tmp_path, capsys):
    """A server that sends neither ETag nor Last-Modified cannot say a file is unchanged: each resolve_url reads
    it again (never stale). One command resolves its URL once: info resolves it three times (what kind of file,
    its reader, the NWB session) and probes it once, reading no block twice."""
    first, _ = _two_versions(tmp_path)
    dandi.add("000999", "0.1.0", "sub-Synth/plain.nwb", first)
    url = f"{dandi.root}/files/000999/sub-Synth/plain.nwb"
    (before,) = stream.resolve_url(url)
    load_session(url)
    dandi.reset_counts()
    (after,) = stream.resolve_url(url)
    assert after is not before and after.bytes_read == 0
    with stream.resolved_once():
        assert stream.resolve_url(url) == stream.resolve_url(url)
    assert [r[1] for r in dandi.blob_requests()] == ["bytes=0-0"] * 2  # the call above and the block's first
    dandi.reset_counts()
    assert main(["info", url]) == 0, capsys.readouterr().err
    ranges = [r[1] for r in dandi.blob_requests()]
    assert ranges.count("bytes=0-0") == 1 and len(ranges) == len(set(ranges)), ranges


def test_prepare_of_a_url_resolves_it_once(dandi, tmp_path, capsys):
    """prepare resolved its URL twice (the files it checks and sizes, then load_session's): a second probe, and
    from a server without validators a second object, so the file checked need not be the file read. Now one
    probe for the whole command, and no block is requested twice."""
    _, test = write_nlb_pair(tmp_path / "pair", "mc_maze", n_train_trials=8, n_test_trials=6, n_heldin=6,
                             n_heldout=2, seed=3)
    dandi.add("000999", "0.1.0", f"sub-Synth/{test.name}", test)
    url = f"{dandi.root}/files/000999/sub-Synth/{test.name}"
    dandi.reset_counts()
    out = tmp_path / "streamed.h5"
    assert main(["prepare", "--dataset", "mc_maze", "--nwb", url, "--phase", "test", "--out", str(out),
                 "--quiet"]) == 0, capsys.readouterr().err
    ranges = [r[1] for r in dandi.blob_requests()]
    assert ranges.count("bytes=0-0") == 1 and len(ranges) == len(set(ranges)), ranges


@pytest.mark.parametrize(("headers", "validates"), [
    ({}, False),
    ({"ETag": '"abc"'}, True),
    ({"ETag": 'W/"abc"'}, False),  # weak: "equivalent" content, not the same bytes (RFC 9110 §8.8.3)
    ({"Last-Modified": "Wed, 01 Jan 2025 00:00:00 GMT"}, False),  # no Date: its age is unknown
    ({"Last-Modified": "Wed, 01 Jan 2025 00:00:00 GMT", "Date": "Wed, 01 Jan 2025 00:00:01 GMT"}, True),
    # modified within the second of the answer: a second write in that second keeps both (RFC 9110 §8.8.2.2)
    ({"Last-Modified": "Wed, 01 Jan 2025 00:00:00 GMT", "Date": "Wed, 01 Jan 2025 00:00:00 GMT"}, False),
    ({"ETag": '"5f1-3a"', "Last-Modified": "Wed, 01 Jan 2025 00:00:00 GMT",
      "Date": "Wed, 01 Jan 2025 00:00:00 GMT"}, False),  # nginx's ETag is made of the same modification time
    ({"Last-Modified": "not a date", "Date": "Wed, 01 Jan 2025 00:00:01 GMT"}, False),
])
def test_which_validators_let_the_cached_blocks_be_read_again(headers, validates):
    probed = stream.Probed(100, headers.get("ETag"), headers.get("Last-Modified"), headers.get("Date"))
    assert probed.validates() is validates


def test_a_draft_or_unpinned_dandi_path_that_names_another_asset_is_read_again(dandi, tmp_path):
    """dandi:// URLs of a draft, or without a version (the most recent published one), may name another asset
    later: they were resolved once per process and read the first asset's blocks. Now they are looked up again;
    an unchanged asset (same storage URL, size and SHA-256) keeps its object and blocks, and a published version
    named in the URL is resolved once (it never changes)."""
    first, second = _two_versions(tmp_path)
    path = "sub-Synth/x.nwb"
    draft = dandi.add("000999", "draft", path, first)
    url = f"dandi://000999@draft/{path}"
    (before,) = stream.resolve_url(url)
    assert load_session(url).n_trials == 8
    dandi.reset_counts()
    assert stream.resolve_url(url)[0] is before and not dandi.blob_requests()  # unchanged: no probe, same blocks
    del dandi.assets[draft.asset_id]
    dandi.add("000999", "draft", path, second)  # the draft's path now names another asset
    assert load_session(url).n_trials == 12

    dandi.add("000999", "0.1.0", path, first)
    assert load_session(f"dandi://000999/{path}").n_trials == 8
    dandi.add("000999", "0.2.0", path, second)  # a newer version published
    assert load_session(f"dandi://000999/{path}").n_trials == 12
    pinned = f"dandi://000999@0.1.0/{path}"
    assert load_session(pinned).n_trials == 8
    dandi.reset_counts()
    assert load_session(pinned).n_trials == 8 and not dandi.requests  # resolved and read once


def test_nested_resolved_once_blocks_end_with_themselves(dandi, tmp_path):
    """resolved_once blocks nest (a command run inside a caller's own block). An inner block ended by removing
    the first *equal* block from the list (list.remove compares dicts by their contents): an outer block and an
    inner one that held the same URLs were taken for each other, the inner dict stayed open, and the outer
    block's end raised ValueError (list.remove(x): x not in list) once it had resolved another URL."""
    first, _ = _two_versions(tmp_path)
    dandi.add("000999", "0.1.0", "sub-Synth/a.nwb", first)
    dandi.add("000999", "0.1.0", "sub-Synth/b.nwb", first)
    a, b = (f"{dandi.root}/files/000999/sub-Synth/{name}.nwb" for name in "ab")
    with stream.resolved_once():
        with stream.resolved_once():
            stream.resolve_url(a)  # both blocks now hold a: equal dicts
        stream.resolve_url(b)  # the outer block's
    assert stream._once_blocks() == []


def test_another_threads_resolved_once_block_is_not_this_threads(dandi, tmp_path):
    """A resolved_once block is one command's. The open blocks were one module list: a thread that read a URL
    while another thread ran a command of its own (info, prepare) took that command's resolution, probing nothing,
    and read the blocks cached before the file on the server was replaced (8 trials instead of 12)."""
    import threading

    first, second = _two_versions(tmp_path)
    asset = dandi.add("000999", "0.1.0", "sub-Synth/threads.nwb", first)
    url = f"{dandi.root}/files/000999/sub-Synth/threads.nwb"
    opened, done = threading.Event(), threading.Event()

    def command():
        with stream.resolved_once():
            assert load_session(url).n_trials == 8
            opened.set()
            done.wait(60)

    other = threading.Thread(target=command)
    other.start()
    try:
        assert opened.wait(60)
        asset.data = second  # replaced on the server while the other thread's command runs
        assert load_session(url).n_trials == 12
    finally:
        done.set()
        other.join(60)


# ------------------------------------------------------------------------------------ a file replaced while it is read
#: how a server shows that a file was replaced while it was read (the old version's headers, the new version's,
#: whether the server honours ``If-Match``, whether the new version has another size)
CHANGES = {
    # a strong ETag: sent as If-Match, answered 412 (S3 does so)
    "etag, If-Match honoured": ({"ETag": '"version-1"'}, {"ETag": '"version-2"'}, True, False),
    # the same ETag, from a server that ignores If-Match: the range answer's own ETag tells
    "etag, If-Match ignored": ({"ETag": '"version-1"'}, {"ETag": '"version-2"'}, False, False),
    "last-modified": (VALIDATORS["last-modified"](1), VALIDATORS["last-modified"](2), True, False),
    # no validator at all: the size in the range answer's Content-Range tells
    "size": ({}, {}, True, True),
}
CHANGED_WHAT = {"etag, If-Match honoured": 'ETag "version-1" -> "version-2"',
                "etag, If-Match ignored": 'ETag "version-1" -> "version-2"',
                "last-modified": "Last-Modified Wed, 01 Jan 2025 00:00:00 GMT -> Wed, 02 Jan 2025 00:00:00 GMT",
                "size": "size {} -> {} bytes"}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_file_replaced_while_it_is_read_fails_in_one_line(dandi, tmp_path, capsys, monkeypatch, change):
    """The file on the server is replaced between two range reads of one command. The reads after it returned the
    new version's bytes, which HDF5 took for more of the old file beside the blocks cached from it: garbage (a
    'damaged HDF5 file' that is not, a traceback) or silently wrong tensors. Now every range answer is checked
    against the probe the file was opened on -- its size (Content-Range), ETag and Last-Modified -- and a strong
    ETag is sent as If-Match; the first answer of another version fails the command in one line, exit code 1
    (running it again reads the new version), with no retry. The next read of the URL reads the new version whole:
    none of its blocks was kept beside the old version's."""
    import time

    first, second = _two_versions(tmp_path)
    old_headers, new_headers, if_match, resized = CHANGES[change]
    if resized:
        second += bytes(4096)  # HDF5 ignores bytes past its end
    asset = dandi.add("000999", "0.1.0", "sub-Synth/moving.nwb", first)
    dandi.headers[asset.asset_id] = old_headers
    dandi.if_match = if_match
    dandi.replace_after[asset.asset_id] = (2, second, new_headers)  # after the probe and the first range read
    sleeps = []
    monkeypatch.setattr(time, "sleep", sleeps.append)
    url = f"{dandi.root}/files/000999/sub-Synth/moving.nwb"
    assert main(["info", url]) == 1
    what = CHANGED_WHAT[change].format(f"{len(first):,}", f"{len(second):,}")
    # of the same size, no copy known to hold the probed bytes answers the range read again to compare (copies of
    # the same bytes may have validators of their own): the message says both what changed and that
    unreached = "" if resized else (f", or a copy behind a load balancer gives the same bytes other validators: none "
                                    f"of {stream.CONFIRM_READS} reads of that range reached a copy known to hold the "
                                    "bytes read before, to compare")
    assert one_line_error(capsys) == (f"neurodyn info: error: {url}: the file changed on its server while it was read "
                                      f"({what}){unreached}; run the command again" +
                                      ("" if resized else ", or, where the file is known not to have changed, check "
                                       "the size alone (NEURODYN_STREAM_TRUST_SIZE=1, --trust-size)"))
    ranges = [r[1] for r in dandi.blob_requests()]
    # the probe, one good read, one of the new version; of the same size, its range read again CONFIRM_READS times
    # to compare, after a 412 first asked again without If-Match
    expected = {"size": 3, "etag, If-Match honoured": 4 + stream.CONFIRM_READS}.get(change, 3 + stream.CONFIRM_READS)
    assert len(ranges) == expected and not sleeps, (ranges, sleeps)
    if if_match and "etag" in change:
        assert [r[2] for r in dandi.blob_requests()][2] == 0  # answered 412: no byte of the new version sent
    again = load_session(url)  # probed again: the new version, read whole
    assert (again.n_trials, again.n_heldin) == (12, 5)


def test_a_file_replaced_while_it_is_read_fails_the_reader_too(dandi, tmp_path, monkeypatch):
    """The same through the reader (a notebook's load_session): a RemoteFailure naming the URL and the change,
    and every later read of the open file fails at once with it."""
    first, second = _two_versions(tmp_path)
    asset = dandi.add("000999", "0.1.0", "sub-Synth/moving.nwb", first)
    dandi.headers[asset.asset_id] = {"ETag": '"version-1"'}
    dandi.replace_after[asset.asset_id] = (2, second, {"ETag": '"version-2"'})
    url = f"{dandi.root}/files/000999/sub-Synth/moving.nwb"
    with pytest.raises(stream.RemoteFailure) as caught:
        load_session(url)
    # no copy of the bytes read before answers the range read again to compare: the message says so too
    assert str(caught.value).startswith(f'{url}: the file changed on its server while it was read (ETag "version-1" '
                                        '-> "version-2"), or a copy behind a load balancer')
    assert caught.value.exit_code == 1


@pytest.mark.parametrize(("status", "headers", "changed"), [
    (206, {"Content-Range": "bytes 0-9/100", "ETag": '"a"', "Last-Modified": "Wed, 01 Jan 2025 00:00:00 GMT"}, ""),
    # the same version said otherwise: a weakened ETag (a compressing server), the same date in RFC 850 form
    (206, {"Content-Range": "bytes 0-9/100", "ETag": 'W/"a"', "Last-Modified": "Wednesday, 01-Jan-25 00:00:00 GMT"},
     ""),
    (206, {"Content-Range": "bytes 0-9/100"}, ""),  # no validator in the answer: nothing to compare
    (206, {"Content-Range": "bytes 0-9/120", "ETag": '"b"'}, 'size 100 -> 120 bytes, ETag "a" -> "b"'),
    (416, {"Content-Range": "bytes */50"}, "size 100 -> 50 bytes"),  # shrunk below the range asked
    (412, {}, 'ETag "a" no longer held: HTTP 412 to If-Match'),
    (302, {"ETag": '"b"'}, ""), (503, {"ETag": '"b"'}, ""),  # a redirect, a server error: not the file's answer
    (206, {"Content-Range": "bytes 0-9/100", "Last-Modified": "Wed, 01 Jan 2025 00:00:09 GMT"},
     "Last-Modified Wed, 01 Jan 2025 00:00:00 GMT -> Wed, 01 Jan 2025 00:00:09 GMT"),
    # the same strong ETag proves the same bytes: a newer date alone (stored again with the same bytes, a copy with
    # its own mtime) is no change (RFC 9110 §13.2.2: If-Unmodified-Since counts only without If-Match)
    (206, {"Content-Range": "bytes 0-9/100", "ETag": '"a"', "Last-Modified": "Wed, 01 Jan 2025 00:00:09 GMT"}, ""),
    # a weakened or empty tag decides nothing: the date still tells the new version
    (206, {"Content-Range": "bytes 0-9/100", "ETag": 'W/"a"', "Last-Modified": "Wed, 01 Jan 2025 00:00:09 GMT"},
     "Last-Modified Wed, 01 Jan 2025 00:00:00 GMT -> Wed, 01 Jan 2025 00:00:09 GMT"),
    (206, {"Content-Range": "bytes 0-9/100", "ETag": "", "Last-Modified": "Wed, 01 Jan 2025 00:00:09 GMT"},
     "Last-Modified Wed, 01 Jan 2025 00:00:00 GMT -> Wed, 01 Jan 2025 00:00:09 GMT"),
])
def test_which_range_answers_show_another_version(status, headers, changed):
    """The checks behind the tests above, answer by answer: a version told otherwise is no change (it would fail a
    good read), and an answer that is not the file's is not compared."""
    import requests

    check = stream._RangeCheck(100, stream.Probed(100, '"a"', "Wed, 01 Jan 2025 00:00:00 GMT",
                                                  "Wed, 01 Jan 2025 00:00:05 GMT"))
    response = requests.Response()
    response.status_code = status
    response.headers.update(headers)
    response.request = requests.Request("GET", "http://127.0.0.1/x", headers={"If-Match": '"a"'}).prepare()
    assert check.changes(response) == changed


def test_a_server_that_dates_each_answer_by_its_clock_is_no_change():
    """Last-Modified equal to the answer's Date (a file made on request, dated by the server's clock) moves with
    every answer: taking that for another version would fail every read at its second block."""
    import requests

    check = stream._RangeCheck(100, stream.Probed(100, None, "Wed, 01 Jan 2025 00:00:00 GMT",
                                                  "Wed, 01 Jan 2025 00:00:00 GMT"))
    response = requests.Response()
    response.status_code = 206
    response.headers.update({"Content-Range": "bytes 0-9/100", "Last-Modified": "Wed, 01 Jan 2025 00:00:03 GMT",
                             "Date": "Wed, 01 Jan 2025 00:00:03 GMT"})
    response.request = requests.Request("GET", "http://127.0.0.1/x").prepare()
    assert check.changes(response) == ""


# ------------------------------------------------------------------------------------ copies behind a load balancer
#: copies of one file behind a load balancer that give the same bytes their own validators (nginx's ETag and
#: Last-Modified are the copy's mtime; Apache's ETag names the inode): two copies, answering in turn
COPIES = {
    "etag, If-Match honoured": ([{"ETag": '"copy-1"'}, {"ETag": '"copy-2"'}], True),
    "etag, If-Match ignored": ([{"ETag": '"copy-1"'}, {"ETag": '"copy-2"'}], False),
    "etag and last-modified": ([{"ETag": '"5f1-1"', **VALIDATORS["last-modified"](1)},
                                {"ETag": '"5f1-2"', **VALIDATORS["last-modified"](2)}], True),
    "last-modified": ([VALIDATORS["last-modified"](1), VALIDATORS["last-modified"](2)], True),
}


@pytest.mark.parametrize("copies", list(COPIES))
def test_copies_that_give_the_same_bytes_other_validators_read_fine(dandi, tmp_path, capsys, copies):
    """Copies of a file behind a load balancer (or CDN) that send other ETags / Last-Modified for the same bytes
    failed every read at its first answer from the other copy ('the file changed on its server while it was read'),
    and nothing turned the check off. Now an answer of the same size with other validators is accepted where the
    bytes of its range equal those of the same range read again from the probed copy (one more request for each
    answer of the other copy; If-Match is no longer sent after the first 412). Reading the same file from one copy
    gives the same session."""
    first, _ = _two_versions(tmp_path)
    asset = dandi.add("000999", "0.1.0", "sub-Synth/balanced.nwb", first)
    headers, dandi.if_match = COPIES[copies]
    dandi.copies[asset.asset_id] = [(h, None) for h in headers]
    url = f"{dandi.root}/files/000999/sub-Synth/balanced.nwb"
    assert main(["info", url]) == 0, capsys.readouterr().err
    session = load_session(url)
    assert (session.n_trials, session.n_heldin) == (8, 4)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("copies", ["etag, If-Match ignored", "etag and last-modified", "last-modified"])
def test_a_copy_with_other_bytes_of_the_same_size_still_fails_in_one_line(dandi, tmp_path, capsys, monkeypatch,
                                                                         copies):
    """The other side: a copy (a stale mirror, a file replaced on one server) whose bytes differ under the same
    size fails the command at its first answer, in one line naming the file, exit code 1 -- the bytes of the
    range compared with the probed copy's differ, so its other validators mean another file. (A server that
    honours If-Match, as this one does not, answers that copy's first turn with 412: its bytes never come then.)"""
    import time

    first, second = _two_versions(tmp_path)
    asset = dandi.add("000999", "0.1.0", "sub-Synth/stale.nwb", first)
    (old, new), _ = COPIES[copies]
    dandi.copies[asset.asset_id] = [(old, None), (new, second)]
    dandi.if_match = False
    monkeypatch.setattr(time, "sleep", lambda s: None)
    url = f"{dandi.root}/files/000999/sub-Synth/stale.nwb"
    assert main(["info", url]) == 1
    key = "ETag" if "ETag" in old else "Last-Modified"  # a strong ETag on both sides decides alone
    assert one_line_error(capsys) == (f"neurodyn info: error: {url}: the file changed on its server while it was read "
                                      f"({key} {old[key]} -> {new[key]}); run the command again")


def test_copies_named_by_the_same_repr_digest_need_no_comparing_read(dandi, tmp_path, capsys):
    """A server that gives the whole file's digest (Repr-Digest, RFC 9530) names the bytes: copies with other ETags
    but the probe's digest are read on without reading any block twice; a copy with another digest fails at once."""
    first, second = _two_versions(tmp_path)
    digest = f"sha-256=:{hashlib.sha256(first).hexdigest()}:"
    asset = dandi.add("000999", "0.1.0", "sub-Synth/digest.nwb", first)
    dandi.if_match = False
    dandi.copies[asset.asset_id] = [({"ETag": f'"copy-{n}"', "Repr-Digest": digest}, None) for n in (1, 2)]
    url = f"{dandi.root}/files/000999/sub-Synth/digest.nwb"
    assert main(["info", url]) == 0, capsys.readouterr().err
    ranges = [r[1] for r in dandi.blob_requests()]
    assert len(ranges) == len(set(ranges)), ranges
    other = f"sha-256=:{hashlib.sha256(second).hexdigest()}:"
    asset = dandi.add("000999", "0.1.0", "sub-Synth/digest2.nwb", first)
    dandi.copies[asset.asset_id] = [({"ETag": '"copy-1"', "Repr-Digest": digest}, None),
                                    ({"ETag": '"copy-3"', "Repr-Digest": other}, second)]
    url = f"{dandi.root}/files/000999/sub-Synth/digest2.nwb"
    dandi.reset_counts()
    assert main(["info", url]) == 1
    assert one_line_error(capsys) == (f'neurodyn info: error: {url}: the file changed on its server while it was read '
                                      f'(ETag "copy-1" -> "copy-3", Repr-Digest {digest} -> {other}); run the command '
                                      'again')
    assert len(dandi.blob_requests()) == 2  # the probe, the other copy's answer: no comparing read


def test_a_copy_no_read_reaches_fails_and_trust_size_reads_it_by_size(dandi, tmp_path, capsys, monkeypatch):
    """Where no read reaches the other copy to compare (here: none allowed), the read fails in one line that says so
    and names the way out; $NEURODYN_STREAM_TRUST_SIZE=1, prepare --trust-size and stream.trust_size() check the
    size alone, saying so once per file on stderr. A value of the variable that is neither 1 nor 0 is refused."""
    import time

    first, _ = _two_versions(tmp_path)
    dandi.if_match = False
    monkeypatch.setattr(stream, "CONFIRM_READS", 0)
    monkeypatch.setattr(time, "sleep", lambda s: None)

    def balanced(name: str) -> str:
        asset = dandi.add("000999", "0.1.0", f"sub-Synth/{name}.nwb", first)
        dandi.copies[asset.asset_id] = [({"ETag": f'"copy-{n}"'}, None) for n in (1, 2)]
        return f"{dandi.root}/files/000999/sub-Synth/{name}.nwb"

    def warning(url: str) -> str:
        return (f'warning: {url}: the server answers with other validators than the probe (ETag "copy-1" -> '
                '"copy-2") for the same size; read by size alone (trust size): a file replaced by one of the same '
                "size goes unseen")

    url = balanced("unreached")
    assert main(["info", url]) == 1
    assert one_line_error(capsys) == (
        f'neurodyn info: error: {url}: the file changed on its server while it was read (ETag "copy-1" -> "copy-2"), '
        "or a copy behind a load balancer gives the same bytes other validators: none of 0 reads of that range reached "
        "a copy known to hold the bytes read before, to compare; run the command again, or, where the file is known "
        "not to have changed, check the size alone (NEURODYN_STREAM_TRUST_SIZE=1, --trust-size)")
    monkeypatch.setenv("NEURODYN_STREAM_TRUST_SIZE", "1")
    assert main(["info", url]) == 0
    assert capsys.readouterr().err.strip() == warning(url)
    monkeypatch.delenv("NEURODYN_STREAM_TRUST_SIZE")
    url = balanced("info")  # info --trust-size, as the message offers it: the file is new to this process
    assert main(["info", url]) == 1
    capsys.readouterr()
    assert main(["info", url, "--trust-size"]) == 0
    assert capsys.readouterr().err.strip() == warning(url)

    url = balanced("prepared")
    out = tmp_path / "prepared.h5"
    assert main(["prepare", "--dataset", "mc_maze", "--nwb", url, "--out", str(out), "--quiet", "--trust-size"]) == 0
    assert capsys.readouterr().err.strip() == warning(url)
    url = balanced("notebook")
    with stream.trust_size():
        assert load_session(url).n_trials == 8
    assert capsys.readouterr().err.strip() == warning(url)

    monkeypatch.setenv("NEURODYN_STREAM_TRUST_SIZE", "maybe")
    assert main(["info", url]) == 2
    assert one_line_error(capsys) == "neurodyn info: error: NEURODYN_STREAM_TRUST_SIZE: must be 1 or 0, got 'maybe'"


def test_a_probe_that_reaches_a_confirmed_copy_keeps_the_cached_blocks(dandi, tmp_path):
    """A notebook reads a URL again: its probe reaches whichever copy is next. One that reached the copy other than
    the first probe's was taken for another file -- every block read again -- though the reads had found that copy
    to hold the same bytes. Now a probe of a copy vouched for by the probe's Repr-Digest keeps the cached blocks, as
    one of the first copy does (a copy whose ranges' bytes merely compared equal is not known: see
    test_a_copy_whose_bytes_compared_equal_once_is_not_known)."""
    first, _ = _two_versions(tmp_path)
    asset = dandi.add("000999", "0.1.0", "sub-Synth/kept.nwb", first)
    dandi.if_match = False
    digest = f"sha-256=:{hashlib.sha256(first).hexdigest()}:"
    dandi.copies[asset.asset_id] = [({"ETag": f'"copy-{n}"', "Repr-Digest": digest}, None) for n in (1, 2)]
    url = f"{dandi.root}/files/000999/sub-Synth/kept.nwb"
    assert load_session(url).n_trials == 8
    for _ in range(2):  # the probe reaches one copy, then the other
        dandi.reset_counts()
        assert load_session(url).n_trials == 8
        assert [r[1] for r in dandi.blob_requests()] == ["bytes=0-0"]


def test_a_dandi_copy_that_gives_the_published_etag_needs_no_comparing_read(dandi, tmp_path, capsys):
    """DANDI publishes each asset's dandi-etag, the ETag its S3 storage gives the blob: a dandi:// asset probed on a
    copy with an ETag of its own (a CDN's) reads on from S3 without reading any block twice."""
    first, _ = _two_versions(tmp_path)
    asset = dandi.add("000999", "0.1.0", "sub-Synth/cdn.nwb", first)
    dandi.if_match = False
    dandi.copies[asset.asset_id] = [({"ETag": '"cdn-1"'}, None), ({"ETag": f'"{asset.etag}"'}, None)]
    assert main(["info", "dandi://000999@0.1.0/sub-Synth/cdn.nwb"]) == 0, capsys.readouterr().err
    ranges = [r[1] for r in dandi.blob_requests()]
    assert len(ranges) > 2 and len(ranges) == len(set(ranges)), ranges


def test_a_dandi_asset_whose_server_gives_no_etag_is_asked_no_if_match(dandi, tmp_path, capsys):
    """The published dandi-etag names the asset's bytes, but a server that gives no ETag holds none: sent as
    If-Match, it would be answered 412 at every read (each read asked twice)."""
    first, _ = _two_versions(tmp_path)
    dandi.add("000999", "0.1.0", "sub-Synth/plain.nwb", first)
    assert main(["info", "dandi://000999@0.1.0/sub-Synth/plain.nwb"]) == 0, capsys.readouterr().err
    ranges = [r[1] for r in dandi.blob_requests()]
    assert len(ranges) == len(set(ranges)), ranges


def test_if_match_names_one_etag_for_a_server_that_reads_it_as_one_string(dandi, tmp_path, capsys):
    """A dandi:// asset probed on a CDN copy knows two ETags from the start (the probe's, and the dandi-etag S3 gives
    the blob). Both were sent as an If-Match list, which a server that compares the field as one string answers 412
    at every read, each read then asked twice. Now If-Match names one tag or none."""
    first, _ = _two_versions(tmp_path)
    asset = dandi.add("000999", "0.1.0", "sub-Synth/strict.nwb", first)
    dandi.if_match = "one string"
    dandi.copies[asset.asset_id] = [({"ETag": '"cdn-1"'}, None), ({"ETag": f'"{asset.etag}"'}, None)]
    assert main(["info", "dandi://000999@0.1.0/sub-Synth/strict.nwb"]) == 0, capsys.readouterr().err
    ranges = [r[1] for r in dandi.blob_requests()]
    assert len(ranges) == len(set(ranges)), ranges


# ------------------------------------------------------------------ copies: only the bytes of the same range decide
def _values_rewritten(first: bytes, tmp_path) -> bytes:
    """``first`` with its spike times moved by 0.5 s in place: the size, the first 128 KiB and the layout are the same
    (HDF5 writes that change only a dataset's values)."""
    with h5py.File(tmp_path / "first.nwb", "r") as f:
        chunk = f["units/spike_times"].id.get_chunk_info(0)
        assert f["units/spike_times"].compression is None and chunk.byte_offset > stream.BLOCK_BYTES
        moved = (f["units/spike_times"][()] + 0.5).astype("<f8").tobytes()
    assert len(moved) == chunk.size
    return first[:chunk.byte_offset] + moved + first[chunk.byte_offset + chunk.size:]


@pytest.mark.parametrize("if_match", [True, False])
def test_a_file_rewritten_in_place_that_keeps_its_first_block_fails(dandi, tmp_path, monkeypatch, if_match):
    """A file replaced on a single server by one of the same size whose first 128 KiB are unchanged (only the spike
    times' values rewritten) was read without complaint -- the first blocks compared equal, so the new ETag was taken
    for a copy of the same bytes, also after a 412 to If-Match -- and HDF5 got the new spike times beside the
    metadata cached from the old file: silently wrong data. Now an answer with other validators is accepted only
    where the bytes of its own range equal those of a copy known to hold the probed bytes; none answers here, and
    the read fails in one line."""
    import time

    first, _ = _two_versions(tmp_path)
    second = _values_rewritten(first, tmp_path)
    asset = dandi.add("000999", "0.1.0", "sub-Synth/rewritten.nwb", first)
    dandi.headers[asset.asset_id] = {"ETag": '"version-1"'}
    dandi.if_match = if_match
    dandi.replace_after[asset.asset_id] = (2, second, {"ETag": '"version-2"'})  # after the probe and one read
    monkeypatch.setattr(time, "sleep", lambda s: None)
    url = f"{dandi.root}/files/000999/sub-Synth/rewritten.nwb"
    with pytest.raises(stream.RemoteFailure) as caught:
        load_session(url)
    assert str(caught.value).startswith(f'{url}: the file changed on its server while it was read (ETag "version-1" '
                                        '-> "version-2")'), str(caught.value)


def test_copies_in_turn_that_refuse_if_match_are_asked_it_once(dandi, tmp_path, capsys):
    """Two copies with their own ETags in strict rotation, If-Match honoured: every read of the second copy was
    answered 412 and asked again, for the whole session. Now If-Match is not sent after the first 412 (the answers'
    own validators and the comparison of their bytes still guard)."""
    first, _ = _two_versions(tmp_path)
    asset = dandi.add("000999", "0.1.0", "sub-Synth/balanced.nwb", first)
    dandi.if_match = True
    dandi.copies[asset.asset_id] = [({"ETag": '"copy-1"'}, None), ({"ETag": '"copy-2"'}, None)]
    url = f"{dandi.root}/files/000999/sub-Synth/balanced.nwb"
    assert main(["info", url]) == 0, capsys.readouterr().err
    refused = [r for r in dandi.blob_requests() if r[1] != "bytes=0-0" and r[2] == 0]
    assert len(refused) == 1, dandi.blob_requests()


def _answer(data: bytes, start: int, end: int, headers: dict, status: int = 206):
    """A range answer of ``data[start:end + 1]`` with ``headers``, as the response hook sees it."""
    import requests

    response = requests.Response()
    response.status_code = status
    response.headers.update({"Content-Range": f"bytes {start}-{end}/{len(data)}", **headers})
    response._content = data[start:end + 1]
    response.request = requests.Request("GET", "http://127.0.0.1/x", headers={"Range": f"bytes={start}-{end}"}) \
        .prepare()
    return response


def test_a_copy_whose_bytes_compared_equal_once_is_not_known():
    """A copy with no ETag whose server dates each answer by its clock (Last-Modified = Date: nothing tells its
    versions apart) was added to the known copies once its first block compared equal; every answer then matched
    it -- another version's (new ETag, new Last-Modified) included: change detection off. Likewise the published
    dandi-etag matched any answer that carries no ETag. Now no copy is known from compared bytes, and the dandi-etag
    vouches only for an answer that carries that exact strong tag."""
    size = 2 * stream.BLOCK_BYTES
    data = bytes(size)
    probed = {"ETag": '"v1"', "Last-Modified": "Wed, 01 Jan 2025 00:00:00 GMT", "Date": "Thu, 02 Jan 2025 00:00:00 GMT"}
    clock = {"Last-Modified": "Thu, 02 Jan 2025 00:00:01 GMT", "Date": "Thu, 02 Jan 2025 00:00:01 GMT"}
    check = stream._RangeCheck(size, stream.Probed(size, probed["ETag"], probed["Last-Modified"], probed["Date"]), "f")
    first_block = (0, stream.BLOCK_BYTES - 1)
    check._get = lambda url, byte_range, **_: _answer(data, *first_block, probed)  # the probed copy
    check(_answer(data, *first_block, probed))
    check(_answer(data, *first_block, clock))  # the same bytes: handed on
    other = {"ETag": '"v2"', "Last-Modified": "Fri, 03 Jan 2025 00:00:00 GMT", "Date": "Sat, 04 Jan 2025 00:00:00 GMT"}
    assert check.changes(_answer(data, stream.BLOCK_BYTES, size - 1, other)) != ""
    assert check.known == [check.probed]

    dandi = stream._RangeCheck(size, stream.Probed(size, '"cdn"', probed["Last-Modified"], probed["Date"]), "f",
                               dandi_etag="s3-etag")
    assert dandi.changes(_answer(data, *first_block, {"ETag": '"s3-etag"'})) == ""
    assert dandi.changes(_answer(data, *first_block, {"Last-Modified": "Fri, 03 Jan 2025 00:00:00 GMT"})) != ""


def test_a_trust_size_block_of_another_thread_leaves_this_threads_reads_checked(dandi, tmp_path, monkeypatch):
    """trust_size() was the process's: a block open in one thread (a notebook's background job) switched off the
    checks of every other thread's reads, which then read a stale copy's bytes beside the good ones. Now
    trusts_size() is read when the file is opened, in the thread that opens it."""
    import threading
    import time

    first, second = _two_versions(tmp_path)
    asset = dandi.add("000999", "0.1.0", "sub-Synth/stale.nwb", first)
    dandi.copies[asset.asset_id] = [({"ETag": '"copy-1"'}, None), ({"ETag": '"copy-2"'}, second)]
    dandi.if_match = False
    monkeypatch.setattr(time, "sleep", lambda s: None)
    entered, leave = threading.Event(), threading.Event()

    def other():
        with stream.trust_size():
            entered.set()
            leave.wait(60)

    thread = threading.Thread(target=other)
    thread.start()
    try:
        assert entered.wait(60)
        url = f"{dandi.root}/files/000999/sub-Synth/stale.nwb"
        with pytest.raises(stream.RemoteFailure) as caught:
            load_session(url)
    finally:
        leave.set()
        thread.join(60)
    assert 'the file changed on its server while it was read (ETag "copy-1" -> "copy-2")' in str(caught.value)


def test_bytes_read_by_size_alone_vouch_for_nothing_later():
    """Under trust_size the first block of a copy never checked (another version's) was kept as the reference that
    later copies were compared with: once the block ended, that copy's answers compared equal with it and were read
    as the probed file. Now nothing read by size alone is kept: the copy is compared with a known copy's bytes."""
    size = 2 * stream.BLOCK_BYTES
    good, other = bytes(size), bytes([1]) * size
    check = stream._RangeCheck(size, stream.Probed(size, '"a"'), "f")
    check._get = lambda url, byte_range, **_: _answer(other, 0, size - 1, {"ETag": '"b"'})  # the other copy
    with stream.trust_size():
        check.trust = True  # as opened in the block
        check(_answer(other, 0, stream.BLOCK_BYTES - 1, {"ETag": '"b"'}))
    check.trust = False  # opened again, outside the block
    with pytest.raises(Exception, match="the file changed on its server while it was read"):
        check(_answer(other, stream.BLOCK_BYTES, size - 1, {"ETag": '"b"'}))
    assert check.changes(_answer(good, 0, size - 1, {"ETag": '"b"'})) != ""


def test_the_first_failure_keeps_its_reason():
    """``unconfirmed`` (no read reached a copy to compare) was set apart from ``changed``: a definite change seen
    first, then an answer no read could compare, was reported as the latter ("run with trust-size"). Now the two
    are set together by the first failure."""
    size = 2 * stream.BLOCK_BYTES
    good, other = bytes(size), bytes([1]) * size
    check = stream._RangeCheck(size, stream.Probed(size, '"a"'), "f")
    check._get = lambda url, byte_range, **_: _answer(good, 0, stream.BLOCK_BYTES - 1, {"ETag": '"a"'})
    with pytest.raises(Exception, match="changed"):
        check(_answer(other, 0, stream.BLOCK_BYTES - 1, {"ETag": '"b"'}))  # other bytes than the probed copy's
    check._get = lambda url, byte_range, **_: _answer(b"", 0, 0, {}, status=503)  # no copy answers
    with pytest.raises(Exception, match="changed"):
        check(_answer(other, stream.BLOCK_BYTES, size - 1, {"ETag": '"c"'}))  # no known copy reached
    assert (check.changed, check.unconfirmed) == ('ETag "a" -> "b"', False)


def test_blocks_read_by_size_alone_serve_no_later_checked_read(dandi, tmp_path, capsys):
    """A notebook read a URL in a trust_size() block while its server answered the range reads from another version
    of the same size (a stale copy behind the balancer: only the size was checked, as asked). A later read outside
    the block, whose probe reached the probed version again, was served the blocks cached from the other version's
    answers -- checked by nothing: 12 trials for a file that holds 8, with no request but the probe. Now a file opened
    with every check never takes a block that passed the size check alone: those are read again (and checked)."""
    first, second = _two_versions(tmp_path)
    asset = dandi.add("000999", "0.1.0", "sub-Synth/stale.nwb", first)
    dandi.headers[asset.asset_id] = {"ETag": '"version-1"'}
    dandi.if_match = False
    dandi.replace_after[asset.asset_id] = (1, second, {"ETag": '"version-2"'})  # every answer after the probe
    url = f"{dandi.root}/files/000999/sub-Synth/stale.nwb"
    with stream.trust_size():
        assert load_session(url).n_trials == 12  # read by size alone: the other version's bytes, as warned
    assert "read by size alone (trust size)" in capsys.readouterr().err
    asset.data, dandi.headers[asset.asset_id] = first, {"ETag": '"version-1"'}  # the probed version answers again
    dandi.reset_counts()
    session = load_session(url)
    assert (session.n_trials, session.n_heldin) == (8, 4)
    assert len(dandi.blob_requests()) > 1  # the probe, and the blocks read again
    assert capsys.readouterr().err == ""
    dandi.reset_counts()  # guard: blocks every check passed serve a later read with every check, as before
    assert load_session(url).n_trials == 8
    assert [r[1] for r in dandi.blob_requests()] == ["bytes=0-0"]


def test_a_trust_size_open_never_switches_the_checks_of_a_reader_open_with_every_check():
    """Each open set the trust_size setting of the file's one shared reader: a notebook that opened a streamed file in
    a trust_size() block in one thread, while another thread read it with every check, switched that thread's reads to
    the size alone (and the other way round). Now each setting has a reader of its own, never switched."""
    file = stream.StreamedFile("http://127.0.0.1:9/f.nwb", "f.nwb", "f.nwb", 10)
    checked = file.reader  # held by the thread reading with every check (h5py reads through it)
    with stream.trust_size():
        by_size = file.reader
    assert (checked.check.trust, by_size.check.trust) == (False, True)
    assert by_size is not checked and file.reader is checked  # each setting's reader (and block cache) is reused


# ------------------------------------------------------------------ reader threads: comparing reads, failure reasons
#: seconds a gate of the loopback server below waits for the other thread before it gives up: a guard against a hang,
#: never what a test measures (a gate that gives up answers 503, and the test fails on what it checks)
GATE_GUARD_S = 20.0


@contextlib.contextmanager
def _ranges_server(answer, gate=None):
    """A loopback server of one file: the answer to a range request ``bytes=start-end`` is ``answer(start, end, nth)``
    -> (headers, the whole file's bytes), of which it sends the range; ``nth`` counts the requests of that very range
    before this one (the probe is the range 0-0). ``gate(start, end, nth)`` runs first, in the request's own thread (it
    may wait for another request); if it raises, the answer is a 503. Yields the file's URL."""
    import http.server
    import re
    import threading

    lock, counts = threading.Lock(), {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            start, end = map(int, re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers["Range"]).groups())
            with lock:
                nth = counts.get((start, end), 0)
                counts[(start, end)] = nth + 1
            try:
                if gate is not None:
                    gate(start, end, nth)
            except Exception:
                self.send_response(503)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            headers, data = answer(start, end, nth)
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(end - start + 1))
            self.end_headers()
            self.wfile.write(data[start:end + 1])

    server = dandi_server.QuietHTTPServer(("127.0.0.1", 0), Handler)  # a reader may hang up on an answer it refuses
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/file.nwb"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(60)


@pytest.fixture
def two_reader_threads(monkeypatch):
    """remfile reading a span of two blocks in two threads (its ``_max_threads``: one range request each, at once)."""
    import functools

    import remfile

    monkeypatch.setattr(remfile, "File", functools.partial(remfile.File, _max_threads=2,
                                                           _bytes_per_thread=stream.BLOCK_BYTES))
    monkeypatch.setattr(stream, "REQUEST_TIMEOUT_S", 2 * GATE_GUARD_S)  # a gate gives up before a request does
    size = 2 * stream.BLOCK_BYTES
    return size, [(0, stream.BLOCK_BYTES - 1), (stream.BLOCK_BYTES, size - 1)]


def test_the_comparing_reads_of_two_reader_threads_overlap(two_reader_threads):
    """_RangeCheck held its lock while it read a range again to compare an answer of another copy: reader threads
    waited for one comparison at a time. Here each block's first answer comes from a copy with another ETag, and each
    comparing read (to the probed copy) is answered only once the other thread's has arrived too: with the lock held,
    the second never came, the first gave up, and the read failed. Now the comparing reads run outside the lock."""
    import threading

    size, halves = two_reader_threads
    data = bytes(range(256)) * (size // 256)
    both, met = threading.Barrier(2, timeout=GATE_GUARD_S), []

    def answer(start, end, nth):
        return ({"ETag": '"copy-2"'} if (start, end) in halves and nth == 0 else {"ETag": '"copy-1"'}), data

    def gate(start, end, nth):
        if (start, end) in halves and nth > 0:  # a comparing read: it waits for the other thread's
            both.wait()
            met.append((start, end))

    with _ranges_server(answer, gate) as url:
        (f,) = stream.resolve_url(url)
        reader = f.reader
        with f.guard():
            assert reader.read(size) == data
    assert sorted(met) == halves


@pytest.mark.parametrize("judged_first", ["unconfirmed", "changed"])
def test_two_reader_threads_that_fail_for_two_reasons_give_one_message(two_reader_threads, judged_first):
    """Two reader threads fail the same read for two reasons: one block's bytes differ from the probed copy's (the
    file changed), the other's copy no comparing read could vouch for (unconfirmed). The message was the reason of
    whichever thread was judged first: judged first, the unconfirmed one offered 'check the size alone
    (--trust-size)' for a file the other thread had shown changed. Now a proven change outranks an unconfirmed one
    (and of two of one rank, the lower block's wins): each order gives the same one line naming the file."""
    import re
    import threading

    size, (lower, upper) = two_reader_threads
    good = bytes(range(256)) * (size // 256)
    other = bytes(reversed(good))
    judged = {lower: threading.Event(), upper: threading.Event()}
    waits = {"unconfirmed": (lower, upper), "changed": (upper, lower)}[judged_first]  # (waiting block, awaited one)

    def answer(start, end, nth):
        if (start, end) == lower and nth == 0:
            return {"ETag": '"b"'}, other  # another version
        if (start, end) == upper:
            return {"ETag": '"c"'}, good  # a copy never vouched for, every time
        return {"ETag": '"a"'}, good  # the probed copy

    def gate(start, end, nth):
        if (start, end) == waits[0] and nth == 1:  # its first comparing read: once the other block was judged
            if not judged[waits[1]].wait(GATE_GUARD_S):
                raise TimeoutError("the other block was never judged")

    with _ranges_server(answer, gate) as url:
        (f,) = stream.resolve_url(url)
        reader = f.reader
        check, session = reader.check, reader._remote.session

        def judge(response, *args, **kwargs):  # the check, telling the server when it has judged a block's answer
            try:
                return check(response, *args, **kwargs)
            finally:
                start, end = map(int, re.fullmatch(r"bytes=(\d+)-(\d+)", response.request.headers["Range"]).groups())
                judged[(start, end)].set()

        session.hooks["response"] = [judge]
        with pytest.raises(stream.RemoteFailure) as caught:
            with f.guard():
                reader.read(size)
    assert all(event.is_set() for event in judged.values())
    assert (str(caught.value), caught.value.exit_code) == (
        f'{url}: the file changed on its server while it was read (ETag "a" -> "b"); run the command again', 1)


def _changed_at_first_read(start, end, nth):
    """A file whose first answer to a block comes from another version (ETag "b"), and every other answer, the
    probe's and the comparing reads', from the probed one (ETag "a"): the comparison shows the change."""
    size = 2 * stream.BLOCK_BYTES
    good = bytes(range(256)) * (size // 256)
    if (start, end) == (0, 0) or nth > 0:
        return {"ETag": '"a"'}, good
    return {"ETag": '"b"'}, bytes(reversed(good))


@pytest.mark.parametrize("opened_since", ["another thread", "this thread"])
def test_a_failed_read_is_told_of_the_reader_that_read(opened_since):
    """failure() told of the file's last opened reader, not of the one that read: a read with every check that saw
    the file change, while the file had been opened since in a trust_size() block (by another thread, or nested in
    this one), was told as a damaged file (InputError, exit 2) instead of the change (RemoteFailure, exit 1). Now a
    guard tells of the reader it is given, by default the one this thread opened last."""
    import threading

    with _ranges_server(_changed_at_first_read) as url:
        (file,) = stream.resolve_url(url)
        checked = file.reader

        def open_by_size():
            with stream.trust_size():
                return file.reader

        if opened_since == "another thread":
            thread = threading.Thread(target=open_by_size)
            thread.start()
            thread.join(60)
            guarded = file.guard()  # this thread's reader, by default
        else:
            open_by_size()
            guarded = file.guard(checked)  # nested: the block names the reader it reads through
        with pytest.raises(stream.RemoteFailure, match=r'changed on its server while it was read \(ETag "a" -> "b"'):
            with guarded:
                checked.read(1000)


def test_two_threads_opening_a_file_at_once_share_one_reader(monkeypatch):
    """Two threads opening one file with the same setting at once could each make a reader (and a block cache), of
    which one was kept: the other's blocks were read again, and its failure told of the kept one. Now the reader of
    an open is found or made under a lock. (The constructor's pause only widens the window that was there.)"""
    import threading
    import time

    import remfile

    made = remfile.File

    def slow(*args, **kwargs):
        time.sleep(0.2)
        return made(*args, **kwargs)

    monkeypatch.setattr(remfile, "File", slow)
    file = stream.StreamedFile("http://127.0.0.1:9/f.nwb", "f.nwb", "f.nwb", 10)
    got = [None, None]

    def open_(i):
        got[i] = file.reader

    threads = [threading.Thread(target=open_, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert got[0] is got[1] is file._readers[False]
