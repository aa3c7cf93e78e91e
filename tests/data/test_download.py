"""`neurodyn download` against a loopback DANDI-like server (302 to a blob URL, HTTP Range)."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import re
import threading
from pathlib import Path

import numpy as np
import pytest

import neurodyn.data.download as dl
from neurodyn.cli import main
from neurodyn.data.download import DownloadError, RemoteFile, download, fetch_file, nlb_remote_files
from neurodyn.errors import InputError


class FakeDandi:
    """State shared with the request handler: blobs, the requests seen, and fault injection."""

    def __init__(self):
        rng = np.random.default_rng(0)
        self.blobs = {"aaa-111": rng.bytes(50_000), "bbb-222": rng.bytes(7_777)}
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.drop_after: dict[str, int] = {}  # asset id -> bytes sent before the connection dies
        self.ignore_range = False
        self.lock = threading.Lock()

    def remote(self, asset_id, root, name=None, sha256=None):
        blob = self.blobs[asset_id]
        return RemoteFile(name=name or f"000999/sub-Fake/{asset_id}.nwb", size=len(blob),
                          sha256=sha256 or hashlib.sha256(blob).hexdigest(),
                          url=f"{root}/assets/{asset_id}/download/")

    def blob_requests(self):
        return [r for r in self.requests if r[0].startswith("/blobs/")]


def _handler(state: FakeDandi):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output quiet
            pass

        def do_GET(self):
            with state.lock:
                state.requests.append((self.path, self.headers.get("Range")))
            match = re.fullmatch(r"/api/assets/([\w-]+)/download/", self.path)
            if match and match.group(1) in state.blobs:
                self.send_response(302)
                self.send_header("Location", f"/blobs/{match.group(1)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            match = re.fullmatch(r"/blobs/([\w-]+)", self.path)
            if not match or match.group(1) not in state.blobs:
                self.send_error(404)
                return
            asset_id = match.group(1)
            blob = state.blobs[asset_id]
            start = 0
            ranged = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
            if ranged and not state.ignore_range:
                start = int(ranged.group(1))
                if start >= len(blob):
                    self.send_error(416)
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(blob) - 1}/{len(blob)}")
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(blob) - start))
            self.end_headers()
            drop = state.drop_after.pop(asset_id, None)
            if drop is not None:  # promise the whole body, send part of it, then hang up
                self.wfile.write(blob[start:start + drop])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(blob[start:])

    return Handler


@pytest.fixture
def server():
    state = FakeDandi()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    state.root = f"http://127.0.0.1:{httpd.server_address[1]}/api"
    yield state
    httpd.shutdown()
    httpd.server_close()


FAST = dict(retries=0, backoff_s=0.0, timeout=10.0)


def test_fresh_download_verified(server, tmp_path):
    remotes = [server.remote("aaa-111", server.root), server.remote("bbb-222", server.root)]
    results = download(remotes, tmp_path, **FAST)
    assert [r.status for r in results] == ["downloaded", "downloaded"]
    for remote, result in zip(remotes, results):
        assert result.path == tmp_path / remote.name
        assert result.path.read_bytes() == server.blobs[Path(remote.name).stem]
        assert result.bytes_transferred == remote.size
    assert not list(tmp_path.rglob("*.part"))
    # the API URL redirected to the blob; no Range on a fresh download
    assert [p for p, _ in server.requests][:2] == ["/api/assets/aaa-111/download/", "/blobs/aaa-111"]
    assert all(rng is None for _, rng in server.requests)


def test_resume_from_partial_part_file(server, tmp_path):
    remote = server.remote("aaa-111", server.root)
    dest = tmp_path / remote.name
    dest.parent.mkdir(parents=True)
    Path(f"{dest}.part").write_bytes(server.blobs["aaa-111"][:12_345])
    result = fetch_file(remote, dest, **FAST)
    assert result.status == "resumed" and result.bytes_transferred == 50_000 - 12_345
    assert dest.read_bytes() == server.blobs["aaa-111"]
    # the Range header survived the redirect to the blob
    assert server.blob_requests() == [("/blobs/aaa-111", "bytes=12345-")]
    assert not Path(f"{dest}.part").exists()


def test_sha_mismatch_leaves_no_file(server, tmp_path):
    remote = server.remote("bbb-222", server.root, sha256="0" * 64)
    with pytest.raises(DownloadError, match="sha256") as err:
        download([remote], tmp_path, **FAST)
    assert str(tmp_path / remote.name) in str(err.value) and "\n" not in str(err.value)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_server_drop_keeps_part_then_resume_completes(server, tmp_path):
    remote = server.remote("aaa-111", server.root)
    dest = tmp_path / remote.name
    server.drop_after["aaa-111"] = 20_000
    with pytest.raises(DownloadError, match="run again to resume"):
        fetch_file(remote, dest, **FAST)
    part = Path(f"{dest}.part")
    assert not dest.exists()
    assert part.stat().st_size == 20_000 and part.read_bytes() == server.blobs["aaa-111"][:20_000]
    result = fetch_file(remote, dest, **FAST)
    assert result.status == "resumed" and dest.read_bytes() == server.blobs["aaa-111"]
    assert server.blob_requests()[-1] == ("/blobs/aaa-111", "bytes=20000-")


def test_retry_resumes_within_one_call(server, tmp_path):
    remote = server.remote("aaa-111", server.root)
    server.drop_after["aaa-111"] = 30_000
    result = fetch_file(remote, tmp_path / "x.nwb", retries=1, backoff_s=0.0, timeout=10.0)
    assert result.status == "resumed" and (tmp_path / "x.nwb").read_bytes() == server.blobs["aaa-111"]
    assert [rng for _, rng in server.blob_requests()] == [None, "bytes=30000-"]


def test_skip_when_complete_and_redownload_when_corrupted(server, tmp_path):
    remote = server.remote("bbb-222", server.root)
    dest = tmp_path / "f.nwb"
    assert fetch_file(remote, dest, **FAST).status == "downloaded"
    n_requests = len(server.requests)
    assert fetch_file(remote, dest, **FAST).status == "skipped"
    assert len(server.requests) == n_requests  # verified locally, nothing fetched
    # same size, one byte flipped: the sha256 catches it and the file is fetched again
    corrupted = bytearray(server.blobs["bbb-222"])
    corrupted[100] ^= 0xFF
    dest.write_bytes(bytes(corrupted))
    assert fetch_file(remote, dest, **FAST).status == "downloaded"
    assert dest.read_bytes() == server.blobs["bbb-222"]


def test_server_ignoring_range_restarts_the_file(server, tmp_path):
    server.ignore_range = True
    remote = server.remote("aaa-111", server.root)
    dest = tmp_path / "f.nwb"
    Path(f"{dest}.part").write_bytes(b"\0" * 9_000)  # wrong bytes: must be overwritten, not kept
    fetch_file(remote, dest, **FAST)
    assert dest.read_bytes() == server.blobs["aaa-111"]


def test_oversized_part_and_http_404(server, tmp_path):
    remote = server.remote("bbb-222", server.root)
    dest = tmp_path / "f.nwb"
    Path(f"{dest}.part").write_bytes(b"x" * (remote.size + 10))
    assert fetch_file(remote, dest, **FAST).status == "downloaded"
    missing = RemoteFile("g.nwb", 10, "0" * 64, f"{server.root}/assets/nope/download/")
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch_file(missing, tmp_path / "g.nwb", retries=3, backoff_s=0.0)
    assert not (tmp_path / "g.nwb").exists()


def test_file_url_with_resume(tmp_path):
    source = tmp_path / "mirror" / "blob.bin"
    source.parent.mkdir()
    payload = np.random.default_rng(1).bytes(10_000)
    source.write_bytes(payload)
    remote = RemoteFile("out/blob.nwb", len(payload), hashlib.sha256(payload).hexdigest(), source.as_uri())
    dest = tmp_path / "dl" / remote.name
    dest.parent.mkdir(parents=True)
    Path(f"{dest}.part").write_bytes(payload[:4_000])
    assert download([remote], tmp_path / "dl", **FAST)[0].status == "resumed"
    assert dest.read_bytes() == payload


def test_destination_may_not_escape(tmp_path):
    with pytest.raises(InputError, match="inside the output folder"):
        download([RemoteFile("../evil.nwb", 1, "0" * 64, "file:///dev/null")], tmp_path, **FAST)


# --- registry + CLI ------------------------------------------------------------------------------
@pytest.fixture
def registry(monkeypatch, server):
    """A registry entry ``fake`` (a copy of mc_maze_small with the fake blobs as its files)."""
    from neurodyn.data import nlb

    def entry(kind, asset_id, train_sha=None, test_sha=None):
        blob = server.blobs[asset_id]
        return nlb.NLBFile(kind, f"sub-Fake_desc-{kind}_ecephys.nwb", len(blob),
                           hashlib.sha256(blob).hexdigest(), asset_id, "Fake")

    def install(test_sha256=None):
        test = entry("test", "bbb-222")
        if test_sha256:
            test = dataclasses.replace(test, sha256=test_sha256)
        fake = dataclasses.replace(nlb.DATASETS["mc_maze_small"], name="fake", dandiset_id="000999",
                                   train_file=entry("train", "aaa-111"), test_file=test)
        monkeypatch.setitem(nlb.DATASETS, "fake", fake)

    install()
    return install


def test_registry_files_and_urls(registry, server, monkeypatch):
    files = nlb_remote_files("fake", files="test", base_url=server.root)
    assert [f.name for f in files] == ["000999/sub-Fake/sub-Fake_desc-test_ecephys.nwb"]
    assert files[0].url == f"{server.root}/assets/bbb-222/download/" and files[0].size == 7_777
    assert files[0].sha256 == hashlib.sha256(server.blobs["bbb-222"]).hexdigest()
    monkeypatch.setenv(dl.API_ENV_VAR, "http://127.0.0.1:1/api/")
    assert nlb_remote_files("fake")[0].url == "http://127.0.0.1:1/api/assets/aaa-111/download/"
    monkeypatch.delenv(dl.API_ENV_VAR)
    assert nlb_remote_files("fake")[0].url.startswith("https://api.dandiarchive.org/api/assets/")
    with pytest.raises(InputError, match="unknown dataset"):
        nlb_remote_files("nope")


def test_cli_download_layout_and_skip(registry, server, tmp_path, capsys):
    argv = ["download", "fake", "--out", str(tmp_path), "--base-url", server.root, "--no-progress"]
    assert main(argv) == 0
    train = tmp_path / "000999" / "sub-Fake" / "sub-Fake_desc-train_ecephys.nwb"
    test = tmp_path / "000999" / "sub-Fake" / "sub-Fake_desc-test_ecephys.nwb"
    assert train.read_bytes() == server.blobs["aaa-111"] and test.read_bytes() == server.blobs["bbb-222"]
    assert capsys.readouterr().out.count("downloaded") == 2
    assert main(argv + ["--files", "train"]) == 0
    assert capsys.readouterr().out.split()[0] == "skipped"


def test_cli_errors(registry, server, tmp_path, capsys, monkeypatch):
    assert main(["download", "nope", "--out", str(tmp_path)]) == 2
    assert "unknown dataset" in capsys.readouterr().err
    assert main(["download", "fake", "--files", "all"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    registry(test_sha256="f" * 64)
    monkeypatch.setenv(dl.API_ENV_VAR, server.root)
    assert main(["download", "fake", "--files", "test", "--out", str(tmp_path), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("neurodyn download: error:") and "verification failed" in err and "\n" not in err
    assert not (tmp_path / "000999" / "sub-Fake" / "sub-Fake_desc-test_ecephys.nwb").exists()


@pytest.mark.network
def test_real_dandi_small_test_file(tmp_path):
    """Opt-in (--run-network): the 689 kB MC_Maze_Small test file from DANDI:000140."""
    results = download("mc_maze_small", tmp_path, files="test", retries=2)
    assert len(results) == 1 and results[0].status == "downloaded"
    assert results[0].path.relative_to(tmp_path).parts[:2] == ("000140", "sub-Jenkins")


def test_real_registry_maps_to_dandi_layout(capsys):
    # reference/nlb.md section 1: MC_Maze_Small test file of DANDI:000140
    (remote,) = nlb_remote_files("MC_Maze_Small", files="test", base_url="http://127.0.0.1:9/api")
    assert remote.name == "000140/sub-Jenkins/sub-Jenkins_ses-small_desc-test_ecephys.nwb"
    assert remote.size == 689_312
    assert remote.sha256 == "ca8a0bef5f189eafb9db1961d617e065cb461360718fde1c16a538922a6fa5fe"
    assert remote.url == "http://127.0.0.1:9/api/assets/544a660e-a173-46f3-985a-60fd67e6ae1f/download/"
    assert len(nlb_remote_files("mc_maze")) == 2
    assert main(["download", "--list"]) == 0
    assert "mc_maze_small" in capsys.readouterr().out.split()
