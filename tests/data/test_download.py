"""`neurodyn download` through the dandi client against a loopback DANDI archive (tests/data/dandi_server.py)."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import neurodyn.data.download as dl
from neurodyn.cli import main
from neurodyn.data.dandi import API_ENV_VAR, DownloadError, RemoteFile, dandiset_files, nlb_remote_files
from neurodyn.data.download import fetch_file
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
RNG = np.random.default_rng(0)
BIG, SMALL_BLOB, OLD = RNG.bytes(50_000), RNG.bytes(7_777), RNG.bytes(3_000)
FAST = ["--retries", "0", "--no-progress"]


@pytest.fixture
def dandi(monkeypatch):
    """The loopback archive; dandiset 000999 version 0.2.0 holds two files, 0.1.0 an older one."""
    monkeypatch.setenv("DANDI_NO_ET", "1")  # no version telemetry request
    with dandi_server.Server() as state:
        monkeypatch.setenv(API_ENV_VAR, state.api)
        state.big = state.add("000999", "0.2.0", "sub-Fake/sub-Fake_desc-train_ecephys.nwb", BIG)
        state.small = state.add("000999", "0.2.0", "sub-Fake/sub-Fake_desc-test_ecephys.nwb", SMALL_BLOB)
        state.old = state.add("000999", "0.1.0", "sub-Fake/sub-Fake_desc-test_ecephys.nwb", OLD)
        yield state


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err, err
    return err


# ------------------------------------------------------------------------------------ --dandiset
def test_full_dandiset_download_verified(dandi, tmp_path, capsys):
    assert main(["download", "--dandiset", "000999", "--out", str(tmp_path), *FAST]) == 0
    train = tmp_path / "000999" / "sub-Fake" / "sub-Fake_desc-train_ecephys.nwb"
    test = tmp_path / "000999" / "sub-Fake" / "sub-Fake_desc-test_ecephys.nwb"
    assert train.read_bytes() == BIG and test.read_bytes() == SMALL_BLOB  # latest published version
    assert files_under(tmp_path) == [test, train]  # nothing else, no .part
    out = capsys.readouterr().out
    assert out.count("downloaded") == 2 and out.count("sha256 + dandi-etag verified") == 2
    # the API download URL redirected to the blob; a fresh download sends no Range
    blobs = dandi.blob_requests()
    assert len(blobs) == 2 and all(rng is None for _, rng, _ in blobs)
    assert dandi.bytes_served == len(BIG) + len(SMALL_BLOB)


def test_path_glob_and_version(dandi, tmp_path):
    argv = ["download", "--dandiset", "000999", "--path", "sub-Fake/*test*", "--out", str(tmp_path), *FAST]
    assert main(argv) == 0
    test = tmp_path / "000999" / "sub-Fake" / "sub-Fake_desc-test_ecephys.nwb"
    assert files_under(tmp_path) == [test] and test.read_bytes() == SMALL_BLOB
    old = tmp_path / "old"
    assert main(["download", "--dandiset", "000999", "--version", "0.1.0", "--out", str(old), *FAST]) == 0
    assert (old / "000999" / "sub-Fake" / "sub-Fake_desc-test_ecephys.nwb").read_bytes() == OLD


def test_resume_after_a_cut(dandi, tmp_path, capsys):
    dandi.drop_after[dandi.big.asset_id] = 20_000
    argv = ["download", "--dandiset", "000999", "--path", "*train*", "--out", str(tmp_path), *FAST]
    assert main(argv) == 1
    err = one_line_error(capsys)
    assert err.startswith("neurodyn download: error:") and "interrupted at 20000 of 50000 bytes" in err
    assert "run again to resume" in err
    dest = tmp_path / "000999" / "sub-Fake" / "sub-Fake_desc-train_ecephys.nwb"
    part = dest.with_name(dest.name + ".part")
    assert not dest.exists() and part.read_bytes() == BIG[:20_000]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "resuming" in captured.err and "20,000 of 50,000" in captured.err
    assert captured.out.startswith("resumed") and dest.read_bytes() == BIG and not part.exists()
    assert dandi.blob_requests()[-1][1] == "bytes=20000-"  # the Range survived the redirect


def test_retry_resumes_within_one_call(dandi, tmp_path):
    (remote,) = dandiset_files("000999", glob="*train*")
    dandi.drop_after[dandi.big.asset_id] = 30_000
    result = fetch_file(remote, tmp_path / "x.nwb", retries=1, backoff_s=0.0, timeout=10.0)
    assert result.status == "resumed" and (tmp_path / "x.nwb").read_bytes() == BIG
    assert result.verified == ("sha256", "dandi-etag")
    assert [rng for _, rng, _ in dandi.blob_requests()] == [None, "bytes=30000-"]


def test_an_attempt_that_got_no_bytes_leaves_nothing(dandi, tmp_path, capsys):
    """An answer whose body never came (headers, then the connection dropped; a read timeout before the first byte)
    left an empty .part and the folders made for it, though the line said nothing was kept (and a SIGTERM then
    said "nothing partial was kept"). Now nothing is left; a .part an earlier run kept stays as it was."""
    dandi.drop_after[dandi.big.asset_id] = 0
    argv = ["download", "--dandiset", "000999", "--path", "*train*", "--out", str(tmp_path / "d"), *FAST]
    assert main(argv) == 1
    err = one_line_error(capsys)
    assert "transfer interrupted at 0 of 50000 bytes" in err and "resume" not in err, err
    assert not (tmp_path / "d").exists(), files_under(tmp_path)
    part = tmp_path / "d" / "000999" / "sub-Fake" / "sub-Fake_desc-train_ecephys.nwb.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(BIG[:1_000])
    dandi.drop_after[dandi.big.asset_id] = 0
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after "resuming ..."
    assert "interrupted at 1000 of 50000 bytes" in err and part.read_bytes() == BIG[:1_000]


def test_an_empty_asset_is_downloaded(dandi, tmp_path, capsys):
    """A file asset of 0 bytes ended in a FileNotFoundError traceback (no .part was ever written to verify)."""
    dandi.add("000997", "0.1.0", "sub-X/empty.txt", b"")
    assert main(["download", "--dandiset", "000997", "--out", str(tmp_path), *FAST]) == 0
    dest = tmp_path / "000997" / "sub-X" / "empty.txt"
    assert dest.read_bytes() == b"" and files_under(tmp_path) == [dest]
    assert capsys.readouterr().out.startswith(f"downloaded {dest} (0 bytes, sha256 + dandi-etag verified)")
    assert main(["download", "--dandiset", "000997", "--out", str(tmp_path), *FAST]) == 0
    assert capsys.readouterr().out.startswith("skipped")


@pytest.mark.parametrize("which", ["sha256", "etag"])
def test_wrong_digest_refused_and_nothing_left(dandi, tmp_path, capsys, which):
    bad = {"sha256": "0" * 64} if which == "sha256" else {"etag": "0" * 32 + "-1"}
    dandi.add("000998", "0.1.0", "sub-X/x.nwb", SMALL_BLOB, **bad)
    assert main(["download", "--dandiset", "000998", "--out", str(tmp_path), *FAST]) == 1
    err = one_line_error(capsys)
    assert "verification failed" in err and ("sha256" if which == "sha256" else "dandi-etag") in err
    assert str(tmp_path / "000998" / "sub-X" / "x.nwb") in err
    assert files_under(tmp_path) == []  # no final file, no .part


def test_damaged_part_from_an_earlier_run_is_fetched_again_in_the_same_run(dandi, tmp_path, capsys):
    """A .part whose kept bytes are wrong failed the run ("verification failed") and only a second run
    succeeded; now the file is fetched once more from the start within the first run, which says so."""
    argv = ["download", "--dandiset", "000999", "--path", "*train*", "--out", str(tmp_path), *FAST]
    dest = tmp_path / "000999" / "sub-Fake" / "sub-Fake_desc-train_ecephys.nwb"
    part = dest.with_name(dest.name + ".part")
    part.parent.mkdir(parents=True)
    damaged = bytearray(BIG[:20_000])
    damaged[123] ^= 0xFF
    part.write_bytes(bytes(damaged))
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "did not verify (sha256" in captured.err and "from the start" in captured.err, captured.err
    assert captured.out.startswith("downloaded"), captured.out  # the bytes are all from this run
    assert dest.read_bytes() == BIG and files_under(tmp_path) == [dest]
    assert [rng for _, rng, _ in dandi.blob_requests()] == ["bytes=20000-", None]


@pytest.mark.parametrize("server", ["honours Range", "ignores Range", "has it all"])
def test_progress_ends_at_the_file_size(dandi, tmp_path, server):
    """The progress bar counts a kept .part once: rewound when its bytes are dropped (a damaged .part,
    a server ignoring Range, a .part as long as the file that fails), never past the file's size."""
    (remote,) = dandiset_files("000999", glob="*train*")
    dest = tmp_path / "f.nwb"
    if server == "has it all":
        Path(f"{dest}.part").write_bytes(b"\0" * remote.size)  # as long as the file, wrong bytes
    else:
        Path(f"{dest}.part").write_bytes(b"\0" * 9_000)
    dandi.ignore_range = server == "ignores Range"

    class Progress:
        done = 0

        def add_task(self, name, total):
            return 1

        def advance(self, task, n):
            self.done += n
            assert self.done <= remote.size

        def remove_task(self, task):
            pass

    bar = Progress()
    assert fetch_file(remote, dest, retries=0, progress=bar).status == "downloaded"
    assert dest.read_bytes() == BIG and bar.done == remote.size


def test_a_file_that_never_verifies_is_fetched_again_only_once(dandi, tmp_path, capsys):
    """Bytes that fail although this run fetched all of them are not fetched again (the server's file
    differs from what DANDI states); a resumed .part that fails costs one more transfer, not more."""
    dandi.add("000998", "0.1.0", "sub-X/x.nwb", SMALL_BLOB, sha256="0" * 64)
    argv = ["download", "--dandiset", "000998", "--out", str(tmp_path), *FAST]
    part = tmp_path / "000998" / "sub-X" / "x.nwb.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(SMALL_BLOB[:3_000])
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "did not verify" in err[-2] and "verification failed" in err[-1], err
    assert [rng for _, rng, _ in dandi.blob_requests()] == ["bytes=3000-", None]
    assert files_under(tmp_path) == []


def test_server_error_mid_stream(dandi, tmp_path, capsys):
    # the first response hangs up after 10 kB; every resume then gets HTTP 503
    dandi.drop_after[dandi.big.asset_id] = 10_000
    dandi.faults[dandi.big.asset_id] = dandi_server.Fault(status=503, count=10, after=1)
    argv = ["download", "--dandiset", "000999", "--path", "*train*", "--out", str(tmp_path), "--no-progress",
            "--retries", "2"]
    dl_sleep = dl.time.sleep
    try:
        dl.time.sleep = lambda s: None  # the back-off is not what is tested
        assert main(argv) == 1
    finally:
        dl.time.sleep = dl_sleep
    err = one_line_error(capsys)
    assert "interrupted at 10000 of 50000 bytes (HTTP 503" in err and "run again to resume" in err
    assert [rng for _, rng, _ in dandi.blob_requests()] == [None] + ["bytes=10000-"] * 2  # the cut, then two retries
    dest = tmp_path / "000999" / "sub-Fake" / "sub-Fake_desc-train_ecephys.nwb"
    assert not dest.exists()


def test_retry_after_is_honoured_or_reported(dandi, tmp_path, monkeypatch):
    """A 429 / 503 with Retry-After: waited out when longer than the back-off (RFC 9110 section 10.2.3);
    one longer than MAX_RETRY_AFTER_S ends the attempts at once, naming the wait."""
    (remote,) = dandiset_files("000999", glob="*train*")
    slept = []
    monkeypatch.setattr(dl.time, "sleep", slept.append)
    dandi.faults[dandi.big.asset_id] = dandi_server.Fault(status=429, count=1, retry_after="7")
    result = fetch_file(remote, tmp_path / "x.nwb", retries=2, backoff_s=0.5, timeout=10.0)
    assert result.status == "downloaded" and (tmp_path / "x.nwb").read_bytes() == BIG
    assert slept == [7.0]  # the back-off alone would have been 0.5 s
    dandi.reset_counts()
    dandi.faults[dandi.big.asset_id] = dandi_server.Fault(status=503, count=5, retry_after="3600")
    with pytest.raises(DownloadError, match=r"HTTP 503.*the server asks to wait 3600 s"):
        fetch_file(remote, tmp_path / "y.nwb", retries=3, backoff_s=0.5, timeout=10.0)
    assert slept == [7.0] and len(dandi.blob_requests()) == 1 and not (tmp_path / "y.nwb").exists()


def test_blob_shorter_than_dandi_states_fails_at_once(dandi, tmp_path, capsys):
    """The storage server holds fewer bytes than DANDI's size: every run downloaded the whole file retries + 1
    times (a resume got 416, the .part was deleted, the file restarted) and ended "run again to resume",
    which never worked. Now the first answer that states the server's size fails, without a resume hint."""
    dandi.blob_bytes[dandi.big.asset_id] = 40_000
    argv = ["download", "--dandiset", "000999", "--path", "*train*", "--out", str(tmp_path), "--no-progress",
            "--retries", "3"]
    dest = tmp_path / "000999" / "sub-Fake" / "sub-Fake_desc-train_ecephys.nwb"
    part = dest.with_name(dest.name + ".part")
    for existing in (None, BIG[:40_000]):  # a fresh download (200), a .part of all the server has (416)
        if existing is not None:
            part.parent.mkdir(parents=True, exist_ok=True)
            part.write_bytes(existing)
        dandi.reset_counts()
        assert main(argv) == 1
        err = capsys.readouterr().err.strip().splitlines()[-1]  # after "resuming ..." for the .part
        assert "the server holds 40,000 bytes, DANDI states 50,000" in err and "resume" not in err, err
        assert ("the partial file was removed" in err) is (existing is not None)
        assert len(dandi.blob_requests()) == 1  # no retries, no restart (the server counts what it sends)
        assert files_under(tmp_path) == []


def test_blob_longer_than_dandi_states_fails_at_once(dandi, tmp_path, capsys):
    """The storage server holds more bytes than DANDI's size: each run (and each resume) fetched the whole file and
    failed its verification ("size 60000 != 50000"), fetching it twice when a .part was resumed; streaming refused
    it at once. Now the first answer that states the server's size fails, nothing kept."""
    dandi.blob_bytes[dandi.big.asset_id] = 60_000
    argv = ["download", "--dandiset", "000999", "--path", "*train*", "--out", str(tmp_path), "--no-progress",
            "--retries", "3"]
    dest = tmp_path / "000999" / "sub-Fake" / "sub-Fake_desc-train_ecephys.nwb"
    part = dest.with_name(dest.name + ".part")
    for existing in (None, BIG[:20_000]):  # a fresh download (200), a .part resumed (206, bytes 20000-59999/60000)
        if existing is not None:
            part.parent.mkdir(parents=True, exist_ok=True)
            part.write_bytes(existing)
        dandi.reset_counts()
        assert main(argv) == 1
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert "the server holds 60,000 bytes, DANDI states 50,000" in err and "resume" not in err, err
        assert ("the partial file was removed" in err) is (existing is not None)
        assert len(dandi.blob_requests()) == 1  # no retries, no second transfer
        assert files_under(tmp_path) == []


def test_redirect_loop_is_named(dandi, tmp_path, capsys):
    """A storage URL redirecting to itself was reported as "HTTP 302 Found"; now "too many redirects"."""
    dandi.redirect_loop.add(dandi.small.asset_id)
    assert main(["download", "--dandiset", "000999", "--path", "*test*", "--out", str(tmp_path), *FAST]) == 1
    err = one_line_error(capsys)
    assert "too many redirects" in err and "302" not in err, err
    assert files_under(tmp_path) == []
    assert main(["info", f"dandi://000999/{dandi.small.path}"]) == 1  # streamed: the probe says the same
    err = one_line_error(capsys)
    assert "too many redirects" in err and "302" not in err, err
    assert err.count("/blobs/") == 1, err  # the storage URL named once


def test_http_404_is_not_retried(dandi, tmp_path):
    dandi.faults[dandi.small.asset_id] = dandi_server.Fault(status=404, count=5)
    (remote,) = dandiset_files("000999", glob="*test*")
    with pytest.raises(DownloadError, match="HTTP 404") as err:
        fetch_file(remote, tmp_path / "g.nwb", retries=3, backoff_s=0.0)
    assert "\n" not in str(err.value) and len(dandi.blob_requests()) == 1
    assert files_under(tmp_path) == []


def test_existing_file_skipped_refused_or_overwritten(dandi, tmp_path, capsys):
    argv = ["download", "--dandiset", "000999", "--path", "*test*", "--out", str(tmp_path), *FAST]
    assert main(argv) == 0
    n_blobs = len(dandi.blob_requests())
    assert main(argv) == 0
    assert capsys.readouterr().out.split("\n")[-2].startswith("skipped")
    assert len(dandi.blob_requests()) == n_blobs  # verified locally, nothing fetched
    dest = tmp_path / "000999" / "sub-Fake" / "sub-Fake_desc-test_ecephys.nwb"
    changed = bytearray(SMALL_BLOB)
    changed[100] ^= 0xFF
    dest.write_bytes(bytes(changed))
    assert main(argv) == 2  # a different file is the user's: refused, untouched
    assert "pass --overwrite" in one_line_error(capsys) and dest.read_bytes() == bytes(changed)
    assert main(argv + ["--overwrite"]) == 0
    assert dest.read_bytes() == SMALL_BLOB and files_under(tmp_path) == [dest]


def test_a_python_download_names_overwrite_as_python_writes_it(dandi, tmp_path):
    """fetch_file() / download() from Python said "pass --overwrite" (and "--out: exists; pass --overwrite"),
    options of `neurodyn download`; a Python caller reads overwrite=True (the command: the test above)."""
    (remote,) = dandiset_files("000999", glob="*test*")
    dest = tmp_path / "f.nwb"
    dest.write_bytes(b"mine")
    with pytest.raises(InputError) as err:
        fetch_file(remote, dest, retries=0)
    assert str(err.value).startswith(f"{dest}: exists and differs from DANDI's file (")
    assert str(err.value).endswith("; pass overwrite=True to replace it") and "--" not in str(err.value)
    assert dest.read_bytes() == b"mine"


def test_second_download_of_the_same_file_is_refused(dandi, tmp_path, capsys):
    from neurodyn.io import output_file

    dest = tmp_path / "000999" / "sub-Fake" / "sub-Fake_desc-test_ecephys.nwb"
    with output_file(dest):  # another writer holds the lock
        assert main(["download", "--dandiset", "000999", "--path", "*test*", "--out", str(tmp_path), *FAST]) == 2
        assert "another process is writing this file" in one_line_error(capsys)
        assert not dest.exists() and dandi.blob_requests() == []


def test_server_ignoring_range_restarts_the_file(dandi, tmp_path):
    dandi.ignore_range = True
    (remote,) = dandiset_files("000999", glob="*train*")
    dest = tmp_path / "f.nwb"
    Path(f"{dest}.part").write_bytes(b"\0" * 9_000)  # wrong bytes: must be overwritten, not kept
    assert fetch_file(remote, dest, retries=0).status == "downloaded"
    assert dest.read_bytes() == BIG


def test_oversized_part_and_escaping_destination(dandi, tmp_path):
    (remote,) = dandiset_files("000999", glob="*test*")
    dest = tmp_path / "f.nwb"
    Path(f"{dest}.part").write_bytes(b"x" * (remote.size + 10))
    assert fetch_file(remote, dest, retries=0).status == "downloaded" and dest.read_bytes() == SMALL_BLOB
    with pytest.raises(InputError, match="inside the output folder"):
        dl.download([RemoteFile("../evil.nwb", 1, remote.url)], tmp_path)


def test_lookup_errors_are_one_line(dandi, tmp_path, capsys):
    assert main(["download", "--dandiset", "000111", "--out", str(tmp_path), *FAST]) == 2
    assert "000111" in one_line_error(capsys)
    assert main(["download", "--dandiset", "000999", "--version", "9.9.9", "--out", str(tmp_path), *FAST]) == 2
    assert "9.9.9" in one_line_error(capsys)
    assert main(["download", "--dandiset", "000999", "--path", "nothing*", "--out", str(tmp_path), *FAST]) == 2
    assert "matches 'nothing*'" in one_line_error(capsys)
    assert files_under(tmp_path) == []


def test_python_callers_read_their_argument_names_the_command_its_options(dandi, tmp_path, monkeypatch, capsys):
    """dandiset_files() / nlb_remote_files() / check_api_url() / dandi_client() from Python said '--path',
    '--files', '--api-url' (options of `neurodyn download`, not the functions' glob, files, api_url); the
    command's lines keep the options."""
    from neurodyn.data.dandi import check_api_url, dandi_client

    cases = [
        (lambda: dandiset_files("000999", glob="nothing*"), "glob: no asset of dandiset 000999 version 0.2.0 "
                                                           "matches 'nothing*'"),
        (lambda: nlb_remote_files("mc_maze", files="all"), "files: must be one of train, test, both, got 'all'"),
        (lambda: check_api_url("notaurl"), "api_url: not an http(s)://<host>/... URL: 'notaurl'"),
    ]
    for call, expected in cases:
        with pytest.raises(InputError) as err:
            call()
        assert str(err.value) == expected
    assert main(["download", "--dandiset", "000999", "--path", "nothing*", "--out", str(tmp_path), *FAST]) == 2
    assert one_line_error(capsys).endswith("error: --path: no asset of dandiset 000999 version 0.2.0 matches "
                                           "'nothing*'")

    dandi_server.offline(monkeypatch)  # no network: the hint names the argument that selects another API
    with pytest.raises(DownloadError) as err:
        dandi_client(dandi_server.INVALID_API)
    assert str(err.value).endswith("; api_url or $NEURODYN_DANDI_API selects another DANDI API")
    assert "--" not in str(err.value)


# ------------------------------------------------------------------------------------ no network
def test_unresolvable_api_host_fails_at_once(monkeypatch, tmp_path, capsys):
    """No network: the line saying what is contacted, then one error line naming the host, --api-url and
    NEURODYN_DANDI_API, exit code 1 -- after one name lookup and no back-off (the dandi client's
    REQUEST_RETRIES attempts with back-off took close to a minute). A refused connection on a resolvable
    host keeps the client's retries."""
    record = dandi_server.offline(monkeypatch)
    monkeypatch.setenv(API_ENV_VAR, dandi_server.INVALID_API)
    argv = ["download", "mc_maze_small", "--files", "test", "--out", str(tmp_path / "a"), "--retries", "3"]
    assert main(argv) == 1
    lines = capsys.readouterr().err.strip().split("\n")
    assert lines[0] == ("neurodyn download: contacting DANDI at api.neurodyn-test.invalid "
                        "for 1 asset(s) of mc_maze_small …")
    assert len(lines) == 2 and lines[1].startswith("neurodyn download: error: cannot resolve host "
                                                   "api.neurodyn-test.invalid")
    assert "no network" in lines[1] and "--api-url" in lines[1] and API_ENV_VAR in lines[1]
    assert record.lookups == ["api.neurodyn-test.invalid"] and record.sleeps == []
    assert not (tmp_path / "a").exists()
    # --no-progress: the error line alone
    assert main(["download", "--dandiset", "000140", "--out", str(tmp_path), "--no-progress"]) == 1
    assert "cannot resolve host api.neurodyn-test.invalid" in one_line_error(capsys)

    # a reachable host that refuses the connection: a transient failure, retried with back-off
    refused = f"http://127.0.0.1:{dandi_server.closed_port()}/api"
    record = dandi_server.offline(monkeypatch, known_api=refused)
    monkeypatch.setenv(API_ENV_VAR, refused)
    assert main(["download", "--dandiset", "000140", "--out", str(tmp_path), "--no-progress"]) == 1
    err = one_line_error(capsys)
    assert "dandiset 000140" in err and "Connection refused" in err
    from dandi.consts import REQUEST_RETRIES

    assert len(record.sleeps) == REQUEST_RETRIES - 1  # every attempt the client makes


def test_an_api_that_never_accepts_the_connection_fails_after_one_timeout(monkeypatch, tmp_path, capsys):
    """A connection not made within --timeout (a ConnectTimeout: a firewall dropping the packets) is also a
    ConnectionError, which the dandi client retries REQUEST_RETRIES (12) times with back-off: 12 timeouts, some 12
    minutes at the default 60 s, before the one line. Now one timeout, then the line; the transfer's own retries
    (--retries) are not the lookups'."""
    import requests

    api = f"http://127.0.0.1:{dandi_server.closed_port()}/api"
    record = dandi_server.offline(monkeypatch, known_api=api)
    monkeypatch.setenv(API_ENV_VAR, api)
    calls = []

    def send(self, request, **kwargs):  # what urllib3 raises when the SYN is never answered
        calls.append((request.url, kwargs.get("timeout")))
        raise requests.ConnectTimeout(f"connect timeout={kwargs.get('timeout')}", request=request)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", send)
    assert main(["download", "--dandiset", "000140", "--out", str(tmp_path), "--no-progress", "--timeout", "2"]) == 1
    err = one_line_error(capsys)
    assert f"no connection to {api}/dandisets/000140/ within 2 s" in err and "dandiset 000140" in err, err
    assert [timeout for _, timeout in calls] == [2.0] and record.sleeps == []
    assert files_under(tmp_path) == []


STALLED_LOOKUP = """
import sys
import neurodyn.data.dandi as dandi
dandi.LOOKUP_TIMEOUT_S = float(sys.argv[1])  # the default of info / prepare without --timeout
from neurodyn.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.parametrize("stalled", ["everything", "lookups"])
def test_a_dandi_api_that_never_answers_times_out(dandi, tmp_path, stalled):
    """A DANDI API that accepts the connection and never answers (a stalled link or proxy): `download` waited
    forever, --timeout notwithstanding (it bounded the transfer only), and so did `info dandi://` (the dandi
    client's requests have no timeout, nor has its server-info request). Now each lookup request gives up after
    the timeout: one line naming the API, exit 1, nothing written."""
    import subprocess
    import time

    from subprocess_env import clean_env

    dandi.stall = "." if stalled == "everything" else "^/api/dandisets/"  # the server-info request, or the rest
    dandi.stall_s = 60.0
    env = clean_env(**{API_ENV_VAR: dandi.api})
    runs = {"download": [sys.executable, "-m", "neurodyn.cli", "download", "--dandiset", "000999", "--out",
                         str(tmp_path), "--no-progress", "--timeout", "1"],
            "info": [sys.executable, "-c", STALLED_LOOKUP, "1", "info", "dandi://000999/sub-Fake/"]}
    for command, argv in runs.items():
        started = time.monotonic()
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=45, cwd=tmp_path)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{command}: no answer from the DANDI API, still waiting after 45 s")
        assert proc.returncode == 1, (command, proc.returncode, proc.stderr[-2000:])
        err = proc.stderr.strip()
        assert "\n" not in err and err.startswith(f"neurodyn {command}: error: "), err
        assert f"no answer from {dandi.root}/" in err and " within 1 s" in err, err
        assert time.monotonic() - started < 30
    assert files_under(tmp_path) == []


@pytest.mark.parametrize(("instance", "api"), [
    (None, "https://api.dandiarchive.org/api"),
    ("dandi-sandbox", "https://api.sandbox.dandiarchive.org/api"),
    ("https://dandiarchive.org/", "https://api.dandiarchive.org/api"),  # the web address: its API, as dandi maps it
    ("https://api.sandbox.dandiarchive.org/api", "https://api.sandbox.dandiarchive.org/api"),
    ("http://127.0.0.1:8123/api/", "http://127.0.0.1:8123/api"),
])
def test_the_api_named_in_messages_is_the_one_the_client_uses(monkeypatch, instance, api):
    """``$DANDI_INSTANCE`` as the dandi client reads it (a name, an API URL or a known instance's web address),
    without a request; the web address was taken for the API root (host dandiarchive.org checked and named)."""
    from neurodyn.data.dandi import client_api_url

    monkeypatch.delenv(API_ENV_VAR, raising=False)
    if instance is None:
        monkeypatch.delenv("DANDI_INSTANCE", raising=False)
    else:
        monkeypatch.setenv("DANDI_INSTANCE", instance)
    assert client_api_url() == api


def test_unresolvable_blob_host_is_not_retried(monkeypatch, tmp_path):
    """The transfer: a host name that does not resolve fails on the first attempt (--retries is for transient
    failures); a refused connection is retried with neurodyn's back-off."""
    record = dandi_server.offline(monkeypatch, known_api=None)
    remote = RemoteFile("000999/x.nwb", 10, "http://blobs.neurodyn-test.invalid/x.nwb")
    with pytest.raises(DownloadError, match=r"cannot resolve host blobs\.neurodyn-test\.invalid \(.+\): no network"):
        fetch_file(remote, tmp_path / "x.nwb", retries=3, backoff_s=1.0)
    assert record.lookups == ["blobs.neurodyn-test.invalid"] and record.sleeps == []
    remote = RemoteFile("000999/y.nwb", 10, f"http://127.0.0.1:{dandi_server.closed_port()}/y.nwb")
    with pytest.raises(DownloadError, match="transfer interrupted at 0 of 10 bytes"):
        fetch_file(remote, tmp_path / "y.nwb", retries=2, backoff_s=1.0)
    assert record.sleeps == [1.0, 2.0]
    assert files_under(tmp_path) == []


# ------------------------------------------------------------------------------------ registry names
REGISTRY_TEST_ASSET = "544a660e-a173-46f3-985a-60fd67e6ae1f"  # MC_Maze_Small test file (DANDI:000140)
REGISTRY_PATH = "sub-Jenkins/sub-Jenkins_ses-small_desc-test_ecephys.nwb"


def test_registry_dataset_from_loopback(dandi, tmp_path, capsys, small_test_nwb):
    dandi.add("000140", "0.220113.0408", REGISTRY_PATH, small_test_nwb, asset_id=REGISTRY_TEST_ASSET)
    assert main(["download", "mc_maze_small", "--files", "test", "--out", str(tmp_path), *FAST]) == 0
    dest = tmp_path / "000140" / REGISTRY_PATH
    assert dest.read_bytes() == small_test_nwb.read_bytes()
    assert "sha256 + dandi-etag verified" in capsys.readouterr().out
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == nlb_remote_files("mc_maze_small", files="test")[0].sha256


def test_registry_name_with_a_missing_version_names_the_version(dandi, tmp_path, capsys):
    dandi.add("000140", "0.220113.0408", REGISTRY_PATH, b"x" * 1_000, asset_id=REGISTRY_TEST_ASSET)
    assert main(["download", "mc_maze_small", "--version", "9.9", "--out", str(tmp_path), *FAST]) == 2
    err = one_line_error(capsys)
    assert "000140 version 9.9" in err and "asset" not in err.lower()
    assert dandi.blob_requests() == [] and files_under(tmp_path) == []


@pytest.mark.parametrize("fault", ["sha256", "size"])
def test_registry_disagreeing_with_dandi_fetches_nothing(dandi, tmp_path, capsys, fault):
    data = np.random.default_rng(2).bytes(689_312 if fault == "sha256" else 1_000)
    dandi.add("000140", "0.220113.0408", REGISTRY_PATH, data, asset_id=REGISTRY_TEST_ASSET)
    assert main(["download", "mc_maze_small", "--files", "test", "--out", str(tmp_path), *FAST]) == 1
    err = one_line_error(capsys)
    assert "registry" in err and ("sha256" in err if fault == "sha256" else "bytes" in err)
    assert dandi.blob_requests() == [] and files_under(tmp_path) == []


def test_real_registry_maps_to_dandi_layout(capsys):
    # the MC_Maze_Small test file's asset metadata in DANDI:000140 version 0.220113.0408
    # (https://dandiarchive.org/dandiset/000140/0.220113.0408; offline here, no request)
    (remote,) = nlb_remote_files("MC_Maze_Small", files="test", api_url="http://127.0.0.1:9/api")
    assert remote.name == "000140/" + REGISTRY_PATH
    assert remote.size == 689_312
    assert remote.sha256 == "ca8a0bef5f189eafb9db1961d617e065cb461360718fde1c16a538922a6fa5fe"
    assert remote.url == f"http://127.0.0.1:9/api/assets/{REGISTRY_TEST_ASSET}/download/"
    assert remote.version == "0.220113.0408"
    assert len(nlb_remote_files("mc_maze")) == 2
    assert main(["download", "--list"]) == 0
    assert "mc_maze_small" in capsys.readouterr().out.split()


def test_cli_argument_errors(tmp_path, capsys):
    assert main(["download", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown dataset" in one_line_error(capsys)
    assert main(["download", "mc_maze", "--dandiset", "000128"]) == 2
    assert "not both" in one_line_error(capsys)
    for argv in (["download"], ["download", "--path", "x.nwb"]):  # said "not both" (helper-58)
        assert main(argv) == 2
        assert "(neither was given)" in one_line_error(capsys)
    assert main(["download", "--dandiset", "140"]) == 2
    assert "six digits" in one_line_error(capsys)
    assert main(["download", "mc_maze", "--path", "*.nwb"]) == 2
    assert "--path" in one_line_error(capsys)
    assert main(["download", "mc_maze", "--files", "all"]) == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("argv, expected", [
    (["--timeout", "0"], "--timeout: must be a number of seconds > 0, got 0.0"),
    (["--timeout", "-1"], "--timeout: must be a number of seconds > 0"),
    (["--timeout", "nan"], "--timeout: must be a number of seconds > 0, got nan"),
    (["--timeout", "inf"], "--timeout: must be a number of seconds > 0, got inf"),
    (["--api-url", "http://[::1"], "--api-url: not a valid URL: 'http://[::1'"),
    (["--api-url", "notaurl"], "--api-url: not an http(s)://<host>/... URL: 'notaurl'"),
    (["--api-url", "http://host:port/api"], "--api-url: not a valid URL"),
    (["--files", "train"], "--files: --files selects the files of a dataset NAME; with --dandiset use --path"),
])
def test_bad_options_are_one_line(tmp_path, capsys, argv, expected):
    """Tracebacks before (--timeout 0 / -1 / nan / inf, --api-url 'http://[::1'), an unclear lookup error
    (--api-url notaurl), --files silently ignored with --dandiset: now one line, exit 2, no request."""
    assert main(["download", "--dandiset", "000140", "--out", str(tmp_path), "--no-progress", *argv]) == 2
    err = one_line_error(capsys)
    assert err.startswith("neurodyn download: error: ") and expected in err, err
    assert files_under(tmp_path) == []


@pytest.mark.parametrize("value", ["abc", "nan", "inf", "0", "-5"])
def test_bad_stream_cache_size_is_one_line(dandi, capsys, monkeypatch, value):
    monkeypatch.setenv("NEURODYN_STREAM_CACHE_MB", value)
    assert main(["info", "dandi://000999/sub-Fake/"]) == 2
    err = one_line_error(capsys)
    assert f"NEURODYN_STREAM_CACHE_MB: must be a number of MiB > 0, got '{value}'" in err, err
    assert dandi.blob_requests() == []


class _FailingFile:
    """A binary file that writes ``limit`` bytes, then raises ``error`` (disk full, an interrupt)."""

    def __init__(self, path, mode, limit, error):
        self._f = open(path, mode)  # noqa: SIM115
        self._left, self._error = limit, error

    def write(self, data):
        if len(data) > self._left:
            self._f.write(data[:self._left])
            self._left = 0
            self._f.flush()
            raise self._error
        self._left -= len(data)
        return self._f.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def _fail_writes_after(monkeypatch, limit: int, error: BaseException) -> None:
    real = open

    def fake_open(path, mode="r", *args, **kwargs):
        if str(path).endswith(".nwb.part") and "b" in mode and ("a" in mode or "w" in mode):
            return _FailingFile(path, mode, limit, error)
        return real(path, mode, *args, **kwargs)

    monkeypatch.setattr(dl, "open", fake_open, raising=False)


def test_disk_full_is_not_retried_and_keeps_the_part(dandi, tmp_path, capsys, monkeypatch):
    """ENOSPC while writing the .part was retried as a network error and ended "run again to resume", exit 1.
    Now the output policy's disk-full line, exit 2, at once; the .part kept is a correct prefix, and resumes."""
    import errno
    import os

    _fail_writes_after(monkeypatch, 20_000, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    argv = ["download", "--dandiset", "000999", "--path", "*train*", "--out", str(tmp_path), "--no-progress",
            "--retries", "3"]
    assert main(argv) == 2
    err = one_line_error(capsys)
    dest = tmp_path / "000999" / "sub-Fake" / "sub-Fake_desc-train_ecephys.nwb"
    part = dest.with_name(dest.name + ".part")
    assert f"{dest}: --out: disk full while writing (No space left on device); {part} kept (20,000 of 50,000 " \
           "bytes, a correct prefix): free space and run again to resume" in err, err
    assert len(dandi.blob_requests()) == 1 and part.read_bytes() == BIG[:20_000] and not dest.exists()
    monkeypatch.undo()
    monkeypatch.setenv(API_ENV_VAR, dandi.api)
    monkeypatch.setenv("DANDI_NO_ET", "1")
    assert main(argv) == 0 and dest.read_bytes() == BIG


def test_interrupted_download_says_which_part_was_kept(dandi, tmp_path, capsys, monkeypatch):
    """An interrupt said "nothing partial was kept" though the resumable .part is kept on purpose."""
    import signal

    from neurodyn.io.output import Interrupted

    _fail_writes_after(monkeypatch, 20_000, Interrupted(signal.SIGTERM))
    argv = ["download", "--dandiset", "000999", "--path", "*train*", "--out", str(tmp_path), *FAST]
    assert main(argv) == 143
    err = one_line_error(capsys)
    part = tmp_path / "000999" / "sub-Fake" / "sub-Fake_desc-train_ecephys.nwb.part"
    assert err == (f"neurodyn download: interrupted (SIGTERM); kept {part} (20,000 of 50,000 bytes): running the "
                   "command again resumes it")
    assert part.read_bytes() == BIG[:20_000]


@pytest.mark.parametrize("first", ["verified", "failed"])
@pytest.mark.parametrize("limit", [20_000, 0])
def test_interrupt_on_a_later_file_still_reports_the_earlier_ones(dandi, tmp_path, capsys, monkeypatch, first, limit):
    """Of several files, Ctrl-C / SIGTERM during a later one printed only the stop line: a file verified before it
    was not listed and one that had failed was never named (the summary of the files tried is printed only when the
    loop ends). Now the earlier files' lines come first (verified on stdout, failed on stderr), then the stop's:
    the .part kept, or, interrupted before any byte of the file arrived, which file it was."""
    import signal

    from neurodyn.io.output import Interrupted

    test = tmp_path / "000999" / "sub-Fake" / "sub-Fake_desc-test_ecephys.nwb"  # first in path order
    train = tmp_path / "000999" / "sub-Fake" / "sub-Fake_desc-train_ecephys.nwb"
    if first == "failed":
        dandi.faults[dandi.small.asset_id] = dandi_server.Fault(status=404)
    real = open

    def fake_open(path, mode="r", *args, **kwargs):
        if str(path) == f"{train}.part" and ("a" in mode or "w" in mode):
            return _FailingFile(path, mode, limit, Interrupted(signal.SIGTERM))
        return real(path, mode, *args, **kwargs)

    monkeypatch.setattr(dl, "open", fake_open, raising=False)
    assert main(["download", "--dandiset", "000999", "--out", str(tmp_path), *FAST]) == 143
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    stop = (f"neurodyn download: interrupted (SIGTERM); kept {train}.part (20,000 of 50,000 bytes): running the "
            "command again resumes it" if limit else
            f"neurodyn download: interrupted (SIGTERM) before any byte of {train} arrived")
    if first == "verified":
        assert captured.out == f"downloaded {test} (7,777 bytes, sha256 + dandi-etag verified)\n", captured.out
        assert lines == [stop], lines
    else:
        assert captured.out == ""
        assert len(lines) == 2 and lines[0].startswith(f"neurodyn download: error: {test}: HTTP 404"), lines
        assert lines[1] == stop
    assert not train.exists() and (test.exists() == (first == "verified"))


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGINT"])
def test_sigterm_during_a_transfer_names_the_part_kept(dandi, tmp_path, signame):
    """A real SIGTERM or Ctrl-C (the signal, not an exception raised in a write) while the bytes arrive over a slow
    link: the command printed "interrupted (SIGTERM); nothing partial was kept" and left the .part it had written
    (command_interrupts turned the Stopped naming the .part into a bare interrupt). Now the one line names the
    .part and its bytes, exit 143 (130), and the next run resumes it."""
    import signal
    import subprocess
    import time

    signum = getattr(signal, signame)

    from subprocess_env import clean_env

    dandi.pace[dandi.big.asset_id] = (1_000, 0.1)  # 50 kB in 5 s
    argv = ["download", "--dandiset", "000999", "--path", "*train*", "--out", str(tmp_path), *FAST]
    dest = tmp_path / "000999" / "sub-Fake" / "sub-Fake_desc-train_ecephys.nwb"
    part = dest.with_name(dest.name + ".part")
    proc = subprocess.Popen([sys.executable, "-m", "neurodyn.cli", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=clean_env(**{API_ENV_VAR: dandi.api}))
    try:
        deadline = time.monotonic() + 60
        while not (part.exists() and part.stat().st_size >= 2_000) and time.monotonic() < deadline:
            time.sleep(0.02)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    have = part.stat().st_size
    assert 2_000 <= have < len(BIG) and part.read_bytes() == BIG[:have] and not dest.exists()
    assert proc.returncode == 128 + signum, (proc.returncode, err[-2000:])
    assert err.strip() == (f"neurodyn download: interrupted ({signame}); kept {part} ({have:,} of 50,000 bytes): "
                           "running the command again resumes it"), err
    assert out == ""
    dandi.pace.clear()
    assert main(argv) == 0 and dest.read_bytes() == BIG and files_under(tmp_path) == [dest]
    assert dandi.blob_requests()[-1][1] == f"bytes={have}-"


SIGTERM_IN_LOOKUP = """
import os, signal, sys
import neurodyn.data.dandi as dandi, neurodyn.data.download as download
def lookup(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)
    raise AssertionError("SIGTERM did not stop the lookup")
dandi.dandi_client = download.dandi_client = lookup
from neurodyn.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("argv", [["download", "mc_maze_small", "--no-progress"],
                                  ["info", "dandi://000140/sub-Jenkins/"],
                                  ["prepare", "--dataset", "mc_maze_small", "--nwb", "dandi://000140/sub-Jenkins/"]])
def test_sigterm_during_the_dandi_lookup_is_one_line(tmp_path, argv):
    """SIGTERM during the DANDI lookup (before any output is opened) killed the process silently (rc -15)."""
    import os
    import subprocess

    env = dict(os.environ, NEURODYN_DANDI_API="http://127.0.0.1:9/api", DANDI_NO_ET="1")
    out = ["--out", str(tmp_path / ("o.h5" if argv[0] == "prepare" else "d"))] if argv[0] != "info" else []
    proc = subprocess.run([sys.executable, "-c", SIGTERM_IN_LOOKUP, *argv, *out], capture_output=True, text=True,
                          env=env, timeout=120, cwd=tmp_path)
    assert proc.returncode == 143, (proc.returncode, proc.stderr[-2000:])
    assert proc.stderr.strip() == f"neurodyn {argv[0]}: interrupted (SIGTERM); nothing partial was kept"
    assert files_under(tmp_path) == []


SIGTERM_SWALLOWED = """
import os, signal, sys
import neurodyn.data.info as info
real = info.file_kind
class Collected:
    def __del__(self):  # where h5py's callbacks take a signal: its exception cannot propagate from here
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(10000):
            pass
def kind(path, *args, **kwargs):
    Collected()
    return real(path, *args, **kwargs)
info.file_kind = kind
from neurodyn.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_swallowed_sigterm_still_stops_info(tmp_path):
    """helper-57: a SIGTERM landing in a ``__del__`` (h5py's weakref callbacks) during ``info`` was printed as
    "Exception ignored in ..." and the command ran on to exit 0."""
    import subprocess

    target = tmp_path / "x.h5"
    target.write_bytes(b"not hdf5 at all")
    proc = subprocess.run([sys.executable, "-c", SIGTERM_SWALLOWED, "info", str(target)], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 143, (proc.returncode, proc.stderr[-2000:])
    assert proc.stderr.strip() == "neurodyn info: interrupted (SIGTERM); nothing partial was kept"


def test_digests_match_an_independent_etag(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(BIG)
    got = dl.file_digests(path)
    assert got == {"sha256": hashlib.sha256(BIG).hexdigest(), "dandi-etag": dandi_server.dandi_etag(BIG)}


@pytest.mark.network
def test_real_dandi_small_test_file(tmp_path):
    """Opt-in (--run-network): the 689 kB MC_Maze_Small test file from DANDI:000140."""
    results = dl.download("mc_maze_small", tmp_path, files="test", retries=2)
    assert len(results) == 1 and results[0].status == "downloaded"
    assert results[0].path.relative_to(tmp_path).parts[:2] == ("000140", "sub-Jenkins")
    assert results[0].verified == ("sha256", "dandi-etag")


def test_readme_dataset_table_matches_the_registry():
    """The README's table of the seven datasets is the registry's sizes, rounded as printed."""
    from neurodyn.data.nlb import DATASETS

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    rows = {}
    for line in readme.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].strip("`") in DATASETS:
            rows[cells[0].strip("`")] = cells
    assert set(rows) == set(DATASETS)
    for name, ds in DATASETS.items():
        total = ds.train_file.size + ds.test_file.size
        assert rows[name] == [
            f"`{name}`",
            f"DANDI:{ds.dandiset_id}/{ds.version}",
            f"{ds.train_file.size / 1e6:,.1f} MB + {ds.test_file.size / 1e6:,.2f} MB",
            f"{total / 10e6:,.0f} s",
            f"{total / 100e6:,.1f} s",
        ]


@pytest.mark.parametrize("kind", ["folder", "dangling link", "link to a file"])
def test_a_part_that_is_no_file_is_refused_untouched(dandi, tmp_path, capsys, kind):
    """A `<file>.part` that is a folder (made by something else under the download's name) was "resumed at 4,096
    bytes" and then reported as a network interruption ("run again to resume", exit 1), which no run could get
    past. A .part that is a symbolic link had the download written through it: a dangling one made its target
    (outside --out) and left a link as the "downloaded" file, one to a file appended to that file. Now one line
    naming the .part and what it is, exit 2, before any byte is asked for; nothing removed or written."""
    dest = tmp_path / "000999" / "sub-Fake" / "sub-Fake_desc-train_ecephys.nwb"
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True)
    if kind == "folder":
        part.mkdir()
        (part / "mine.txt").write_text("keep me")
    elif kind == "dangling link":
        part.symlink_to(tmp_path / "nowhere")
    else:
        (tmp_path / "mine.bin").write_bytes(b"mine")
        part.symlink_to(tmp_path / "mine.bin")
    argv = ["download", "--dandiset", "000999", "--path", "*train*", "--out", str(tmp_path), *FAST]
    assert main(argv) == 2
    err = one_line_error(capsys)
    assert err.startswith(f"neurodyn download: error: {part}: ") and "move or remove it" in err, err
    assert "resum" not in err and "interrupted" not in err, err
    assert dandi.blob_requests() == [] and not dest.exists()
    if kind == "folder":
        assert (part / "mine.txt").read_text() == "keep me" and "is a folder" in err
    else:
        assert part.is_symlink() and "is a symbolic link" in err and not (tmp_path / "nowhere").exists()
        assert kind == "dangling link" or (tmp_path / "mine.bin").read_bytes() == b"mine"


def test_a_failed_file_does_not_stop_the_others(dandi, tmp_path, capsys):
    """Of several files, the first failure ended the command: the files after it were never tried. Now each is
    tried; each failure is one line naming its file, then a line counting them; verified files are kept and
    listed; exit 1 (network / server), or 2 when a failure is bad input (an existing file that differs)."""
    test = Path("000999/sub-Fake/sub-Fake_desc-test_ecephys.nwb")  # first in path order
    train = Path("000999/sub-Fake/sub-Fake_desc-train_ecephys.nwb")
    dandi.faults[dandi.small.asset_id] = dandi_server.Fault(status=404)
    out = tmp_path / "a"
    assert main(["download", "--dandiset", "000999", "--out", str(out), *FAST]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"neurodyn download: error: {out / test}: HTTP 404"), lines
    assert lines[1] == "neurodyn download: error: 1 of 2 files failed (each named above); the 1 verified kept"
    assert captured.out.startswith(f"downloaded {out / train} (50,000 bytes, sha256 + dandi-etag verified)")
    assert files_under(out) == [out / train] and (out / train).read_bytes() == BIG

    # bad input and a network failure: both named, exit 2, the .part of the cut transfer kept for a rerun
    out = tmp_path / "b"
    (out / test).parent.mkdir(parents=True)
    (out / test).write_bytes(b"mine")
    dandi.faults.clear()
    dandi.drop_after[dandi.big.asset_id] = 20_000
    assert main(["download", "--dandiset", "000999", "--out", str(out), *FAST]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 3 and captured.out == "", (lines, captured.out)
    assert lines[0].startswith(f"neurodyn download: error: {out / test}: exists and differs"), lines
    assert "--overwrite" in lines[0]
    assert lines[1].startswith(f"neurodyn download: error: {out / train}: transfer interrupted at 20000 of 50000")
    assert lines[2] == "neurodyn download: error: 2 of 2 files failed (each named above); none verified"
    assert (out / test).read_bytes() == b"mine" and Path(f"{out / train}.part").read_bytes() == BIG[:20_000]

    # from Python: DownloadFailures (a DownloadError) lists what was done and what failed
    dandi.faults[dandi.small.asset_id] = dandi_server.Fault(status=404)
    with pytest.raises(DownloadError) as err:
        dl.download_dandiset("000999", tmp_path / "c", retries=0)
    assert str(err.value).startswith("1 of 2 files failed (first: ") and "HTTP 404" in str(err.value)
    assert [r.path for r in err.value.results] == [tmp_path / "c" / train]
    assert [(r.name, type(e)) for r, e in err.value.failures] == [(test.as_posix(), DownloadError)]


def test_timeout_bounds_each_wait_not_the_transfer(dandi, tmp_path, capsys):
    """--timeout is documented as a bound on each wait for the server, not on a whole transfer: a slow link that
    keeps sending (here 2,000 bytes every 0.6 s, 2.4 s in all) is not cut off by a --timeout of 1 s."""
    import time

    dandi.pace[dandi.small.asset_id] = (2_000, 0.6)
    argv = ["download", "--dandiset", "000999", "--path", "*test*", "--out", str(tmp_path), *FAST, "--timeout", "1"]
    started = time.monotonic()
    assert main(argv) == 0
    assert time.monotonic() - started > 1.5  # longer than --timeout, in one request
    assert capsys.readouterr().out.startswith("downloaded") and [r for _, r, _ in dandi.blob_requests()] == [None]


def test_client_timeout_patch_is_this_threads_and_restored_when_two_overlap(monkeypatch):
    """dandi_client() gives the server-info request a timeout by patching requests.Session.request for the
    client's construction (f78d794). The class is shared by every thread: another thread's request during that
    window got this client's timeout and its failure was recorded as this client's, and two constructions in two
    threads that overlapped restored each other's patch -- the one that ended first put back the original, the
    other then put back the first one's wrapper, left on the class for the rest of the process (every request of
    every library with a timeout it never asked for, every failure kept in a list). Now the patch applies to the
    constructing thread's requests only and one construction at a time patches the class."""
    import threading

    import dandi.dandiapi
    import requests

    from neurodyn.data import dandi as dandi_mod

    calls = []  # (thread name, timeout) of every request that reached the Session class

    def recorded(self, method, url, **kwargs):
        calls.append((threading.current_thread().name, kwargs.get("timeout")))
        raise requests.ConnectionError("no network in this test")

    monkeypatch.setattr(requests.Session, "request", recorded)
    original = requests.Session.request
    first_inside, second_inside, first_done = threading.Event(), threading.Event(), threading.Event()

    class Client:  # stands in for DandiAPIClient: its construction is where dandi asks for server info
        def __init__(self, api_url=None):
            name = threading.current_thread().name
            if name == "first":
                first_inside.set()
                second_inside.wait(2.0)  # the second construction overlaps this one (before: it did)
                # another thread's plain request while this one constructs: not this client's timeout
                other = threading.Thread(target=_plain_request, name="other")
                other.start()
                other.join()
            else:
                second_inside.set()
                first_done.wait(5.0)  # ends after the first
            self.session = requests.Session()

    def _plain_request():
        try:
            requests.Session().request("GET", "http://127.0.0.1:9/elsewhere")
        except requests.ConnectionError:
            pass

    monkeypatch.setattr(dandi.dandiapi, "DandiAPIClient", Client)
    api = "http://127.0.0.1:9/api"

    def construct(timeout):
        dandi_mod.dandi_client(api, timeout=timeout)

    first = threading.Thread(target=construct, args=(7.0,), name="first")
    first.start()
    assert first_inside.wait(5.0)
    second = threading.Thread(target=construct, args=(11.0,), name="second")
    second.start()
    first.join(10.0)
    first_done.set()
    second.join(10.0)
    assert not first.is_alive() and not second.is_alive()
    assert requests.Session.request is original, "a construction's patch was left on requests.Session"
    assert ("other", None) in calls, calls  # before: ('other', 7.0) or ('other', 11.0)
