"""A loopback DANDI archive for the tests: the REST endpoints ``dandi.dandiapi.DandiAPIClient`` calls, plus
a blob store with HTTP ``Range`` support, on 127.0.0.1.

Endpoints (the DANDI API's shapes, https://api.dandiarchive.org/swagger/):

- ``/server-info`` -- what ``dandi`` asks a server it does not know;
- ``/api/dandisets/<id>/`` -- most recent published version and draft;
- ``/api/dandisets/<id>/versions/<v>/info/``;
- ``/api/dandisets/<id>/versions/<v>/assets/?glob=&path=`` -- one page of assets;
- ``/api/dandisets/<id>/versions/<v>/assets/<asset>/[info/]`` and ``/api/assets/<asset>/`` -- metadata
  with ``digest`` (``dandi:sha2-256``, ``dandi:dandi-etag``) and ``contentUrl``;
- ``/api/assets/<asset>/download/`` -- 302 to ``/blobs/<blob>``, which serves bytes (``Range`` honoured);
  ``/files/<dandiset>/<path>`` serves the same bytes under a plain address ending in the file name.

Every blob byte written is counted (:attr:`FakeDandi.bytes_served`); faults can be injected per asset.
Loaded by path from the test modules (``importlib``), started by their fixtures.
"""

from __future__ import annotations

import fnmatch
import hashlib
import http.server
import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

CREATED = "2022-01-13T04:08:00.000000Z"


def dandi_etag(data: bytes, part_size: int = 64 * 1024 * 1024) -> str:
    """DANDI's etag written out independently of dandischema: md5 over the 64 MiB parts' md5s, ``-<parts>``
    (S3 multipart etag; valid for files up to 640 GB, where the part size is 64 MiB). An empty file has no part:
    ``md5(b"")-0``, as dandischema's PartGenerator defines it."""
    parts = [data[i:i + part_size] for i in range(0, len(data), part_size)]
    joined = b"".join(hashlib.md5(p).digest() for p in parts)
    return f"{hashlib.md5(joined).hexdigest()}-{len(parts)}"


@dataclass
class Asset:
    asset_id: str
    dandiset_id: str
    version: str
    path: str
    data: bytes
    sha256: str
    etag: str
    blob: str
    extra_metadata: dict = field(default_factory=dict)


@dataclass
class Fault:
    """What the next blob requests of an asset get: ``status`` (an HTTP error code) for ``count`` requests,
    after serving ``after`` requests normally; with a ``Retry-After`` header when ``retry_after`` is given."""

    status: int
    count: int = 1
    after: int = 0
    retry_after: str | None = None


class FakeDandi:
    def __init__(self):
        self.assets: dict[str, Asset] = {}
        self.published: dict[str, str] = {}  # dandiset -> most recent published version
        # [path, Range header, bytes of body], logged when a request arrives, bytes counted before they are sent
        # (so a client that has its answer never sees a log that lags behind)
        self.requests: list[list] = []
        self.faults: dict[str, Fault] = {}
        self.drop_after: dict[str, int] = {}  # asset id -> bytes sent before the next response hangs up
        # asset id -> (bytes, seconds): the body goes out that many bytes at a time, that many seconds apart (a slow
        # link), until the client hangs up
        self.pace: dict[str, tuple[int, float]] = {}
        # requests whose path matches this regular expression get no answer: the server holds the connection for
        # ``stall_s`` seconds, then hangs up (a stalled link or proxy)
        self.stall: str | None = None
        self.stall_s = 30.0
        self.pages: dict[str, tuple[str, bytes]] = {}  # path -> (Content-Type, body): served whole (200), Range or not
        self.ignore_range = False
        self.redirect_loop: set[str] = set()  # asset ids whose blob URL redirects to itself
        # asset id -> bytes the blob store holds: fewer than the asset's size (its start), or more (zeros appended)
        self.blob_bytes: dict[str, int] = {}
        # asset id -> headers its blob answers carry besides the usual ones (ETag, Last-Modified: a server's
        # validators); ``asset.data`` may be replaced meanwhile (a file replaced on its server)
        self.headers: dict[str, dict[str, str]] = {}
        # asset id -> (answers, data, headers): once that many more blob requests of the asset have been answered,
        # its bytes and headers become these (a file replaced on its server while a client reads it)
        self.replace_after: dict[str, tuple[int, bytes, dict[str, str]]] = {}
        # asset id -> copies behind a load balancer, each (headers, bytes or None: the asset's): the blob requests of
        # the asset are answered by one copy after the other, in turn (its headers replace ``headers``)
        self.copies: dict[str, list[tuple[dict[str, str], bytes | None]]] = {}
        self._turns: dict[str, int] = {}
        # whether a blob answer honours ``If-Match`` (RFC 9110 §13.1.1: 412 unless the asset's ``ETag`` header is
        # one of those listed, compared strongly), as S3 does; False: ignored, as many servers do; "one string": the
        # whole field compared with the ETag, a list never matching (as S3 compares a conditional write's)
        self.if_match: bool | str = True
        self.bytes_served = 0
        self.lock = threading.Lock()
        self.root = ""  # http://127.0.0.1:<port>
        self._n = 0

    @property
    def api(self) -> str:
        return f"{self.root}/api"

    def add(self, dandiset_id: str, version: str, path: str, data: bytes | Path, *, sha256: str | None = None,
            etag: str | None = None, asset_id: str | None = None) -> Asset:
        """Publish ``data`` as ``path`` in ``dandiset_id``/``version``; digests are the true ones unless given."""
        data = Path(data).read_bytes() if isinstance(data, Path) else bytes(data)
        self._n += 1
        asset_id = asset_id or f"00000000-0000-4000-8000-{self._n:012d}"
        asset = Asset(asset_id, dandiset_id, version, path, data, sha256 or hashlib.sha256(data).hexdigest(),
                      etag or dandi_etag(data), f"blob{self._n:04d}")
        self.assets[asset_id] = asset
        if version != "draft":
            self.published[dandiset_id] = max(self.published.get(dandiset_id, version), version)
        return asset

    def reset_counts(self) -> None:
        with self.lock:
            self.bytes_served = 0
            self.requests.clear()

    def blob_requests(self) -> list[tuple[str, str | None, int]]:
        return [r for r in self.requests if r[0].startswith(("/blobs/", "/files/"))]

    # ------------------------------------------------------------------ JSON bodies
    def _version(self, dandiset_id: str, version: str) -> dict:
        assets = [a for a in self.assets.values() if a.dandiset_id == dandiset_id and a.version == version]
        return {"version": version, "name": f"dandiset {dandiset_id}", "asset_count": len(assets),
                "size": sum(len(a.data) for a in assets), "created": CREATED, "modified": CREATED,
                "status": "Published" if version != "draft" else "Valid"}

    def _asset_row(self, a: Asset) -> dict:
        return {"asset_id": a.asset_id, "blob": a.blob, "zarr": None, "path": a.path, "size": len(a.data),
                "created": CREATED, "modified": CREATED}

    def metadata(self, a: Asset) -> dict:
        md = {"id": f"dandiasset:{a.asset_id}", "identifier": a.asset_id, "path": a.path,
              "contentSize": len(a.data), "encodingFormat": "application/x-nwb",
              "digest": {"dandi:sha2-256": a.sha256, "dandi:dandi-etag": a.etag},
              "contentUrl": [f"{self.api}/assets/{a.asset_id}/download/", f"{self.root}/blobs/{a.blob}"]}
        md.update(a.extra_metadata)
        return md


def _handler(state: FakeDandi):
    class Handler(http.server.BaseHTTPRequestHandler):
        timeout = 20  # seconds a connection may stay idle: the server never hangs a test

        def log_message(self, *args):
            pass

        def _json(self, body, status: int = 200, headers: dict | None = None) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _error(self, status: int, headers: dict | None = None) -> None:
            self._json({"detail": "Not found." if status == 404 else "error"}, status, headers)

        def _arrived(self) -> None:
            self._entry = [self.path.split("?")[0], self.headers.get("Range"), 0]
            with state.lock:
                state.requests.append(self._entry)

        def _log(self, n: int) -> None:
            with state.lock:
                self._entry[2] = n
                if self.path.startswith(("/blobs/", "/files/")):
                    state.bytes_served += n

        def do_HEAD(self):
            self.do_GET(head=True)

        def do_GET(self, head: bool = False):  # noqa: C901 (one dispatcher)
            self._arrived()
            url = urllib.parse.urlsplit(self.path)
            if state.stall is not None and re.search(state.stall, url.path):
                time.sleep(state.stall_s)
                self.close_connection = True
                return
            if url.path in state.pages:
                kind, body = state.pages[url.path]
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)
                return
            path, query = url.path, dict(urllib.parse.parse_qsl(url.query))
            if path in ("/server-info", "/api/info/"):
                return self._json({"version": "0.0.0", "services": {"api": {"url": state.api}},
                                   "cli-minimal-version": "0.0.0", "cli-bad-versions": []})
            m = re.fullmatch(r"/api/dandisets/(\d+)/", path)
            if m:
                ds = m.group(1)
                if not any(a.dandiset_id == ds for a in state.assets.values()):
                    return self._error(404)
                pub = state.published.get(ds)
                return self._json({"identifier": ds, "created": CREATED, "modified": CREATED,
                                   "contact_person": "Test, Person", "embargo_status": "OPEN",
                                   "most_recent_published_version": state._version(ds, pub) if pub else None,
                                   "draft_version": state._version(ds, "draft")})
            m = re.fullmatch(r"/api/dandisets/(\d+)/versions/([^/]+)/info/", path)
            if m:
                ds, v = m.groups()
                if not any(a.dandiset_id == ds and a.version == v for a in state.assets.values()):
                    return self._error(404)
                return self._json({**state._version(ds, v), "asset_validation_errors": [],
                                   "version_validation_errors": []})
            m = re.fullmatch(r"/api/dandisets/(\d+)/versions/([^/]+)/assets/", path)
            if m:
                ds, v = m.groups()
                rows = [a for a in state.assets.values() if a.dandiset_id == ds and a.version == v]
                if not rows:
                    return self._error(404)
                if "glob" in query:
                    rows = [a for a in rows if fnmatch.fnmatchcase(a.path, query["glob"])]
                if "path" in query:
                    rows = [a for a in rows if a.path.startswith(query["path"])]
                rows.sort(key=lambda a: a.path)
                return self._json({"count": len(rows), "next": None, "previous": None,
                                   "results": [state._asset_row(a) for a in rows]})
            m = re.fullmatch(r"/api/dandisets/(\d+)/versions/([^/]+)/assets/([\w-]+)/(info/)?", path)
            if m:
                ds, v, aid, info = m.groups()
                a = state.assets.get(aid)
                if a is None or a.dandiset_id != ds or a.version != v:
                    return self._error(404)
                if info:
                    return self._json({**state._asset_row(a), "metadata": state.metadata(a)})
                return self._json(state.metadata(a))
            m = re.fullmatch(r"/api/assets/([\w-]+)/", path)
            if m and m.group(1) in state.assets:
                return self._json(state.metadata(state.assets[m.group(1)]))
            m = re.fullmatch(r"/api/assets/([\w-]+)/download/", path)
            if m and m.group(1) in state.assets:
                self.send_response(302)
                self.send_header("Location", f"{state.root}/blobs/{state.assets[m.group(1)].blob}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            m = re.fullmatch(r"/blobs/(\w+)", path)
            asset = next((a for a in state.assets.values() if m and a.blob == m.group(1)), None)
            m = re.fullmatch(r"/files/(\d+)/(.+)", path)  # a plain https:// address ending in the file name
            if m:
                asset = next((a for a in state.assets.values()
                              if a.dandiset_id == m.group(1) and a.path == m.group(2)), None)
            if asset is None:
                return self._error(404)
            return self._blob(asset, head)

        def _blob(self, asset: Asset, head: bool) -> None:
            if asset.asset_id in state.redirect_loop:
                self.send_response(302)
                self.send_header("Location", self.path)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            with state.lock:
                replace = state.replace_after.get(asset.asset_id)
                if replace is not None and replace[0] <= 0:
                    del state.replace_after[asset.asset_id]
                    asset.data, state.headers[asset.asset_id] = replace[1], dict(replace[2])
                elif replace is not None:
                    state.replace_after[asset.asset_id] = (replace[0] - 1, *replace[1:])
            data, headers = asset.data, state.headers.get(asset.asset_id, {})
            copies = state.copies.get(asset.asset_id)
            if copies:
                with state.lock:
                    turn = state._turns.get(asset.asset_id, 0)
                    state._turns[asset.asset_id] = turn + 1
                headers, held = copies[turn % len(copies)]
                data = asset.data if held is None else held
            if asset.asset_id in state.blob_bytes:
                held = state.blob_bytes[asset.asset_id]
                data = (data + bytes(max(held - len(data), 0)))[:held]
            fault = state.faults.get(asset.asset_id)
            if fault is not None:
                if fault.after > 0:
                    fault.after -= 1
                elif fault.count > 0:
                    fault.count -= 1
                    return self._error(fault.status, {"Retry-After": fault.retry_after} if fault.retry_after else None)
            condition = self.headers.get("If-Match")
            etag = headers.get("ETag")
            listed = [(condition or "").strip()] if state.if_match == "one string" else \
                [c.strip() for c in (condition or "").split(",")]
            if state.if_match and condition is not None and condition.strip() != "*" and (
                    etag is None or etag.startswith("W/") or etag not in listed):
                return self._error(412, {"ETag": etag} if etag else None)
            start, end = 0, len(data) - 1
            ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
            if ranged and not state.ignore_range:
                start = int(ranged.group(1))
                if ranged.group(2):
                    end = min(int(ranged.group(2)), len(data) - 1)
                if start >= len(data):  # as S3 answers: the size it holds in Content-Range
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            else:
                self.send_response(200)
            self.send_header("Accept-Ranges", "bytes")
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(end - start + 1))
            self.end_headers()
            if head:
                return
            body = data[start:end + 1]
            drop = state.drop_after.pop(asset.asset_id, None)
            if drop is not None:  # promise the whole body, send part of it, hang up
                body = body[:drop]
                self.close_connection = True
            self._log(len(body))
            step, pause = state.pace.get(asset.asset_id, (len(body) or 1, 0.0))
            try:
                for at in range(0, len(body), step):
                    if at:
                        time.sleep(pause)
                    self.wfile.write(body[at:at + step])
                    self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):  # the client stopped reading
                pass

    return Handler


class QuietHTTPServer(http.server.ThreadingHTTPServer):
    """A threaded ``http.server`` that takes a client hanging up on an answer (BrokenPipeError, ConnectionResetError)
    as the normal event it is: a reader that refuses an answer closes it before its body (neurodyn's range check
    does), and socketserver printed "Exception occurred during processing of request" with a traceback on the
    test's stderr when the hang-up came while the answer was written -- by timing, so a test that reads the
    command's one stderr line failed now and then (test_a_failed_read_is_not_retried_again, once in a full run)."""

    def handle_error(self, request, client_address):
        import sys

        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


class Server:
    """Context manager: a :class:`FakeDandi` served on 127.0.0.1 by a threaded ``http.server``."""

    def __init__(self):
        self.state = FakeDandi()
        self.httpd = QuietHTTPServer(("127.0.0.1", 0), _handler(self.state))
        self.httpd.daemon_threads = True
        self.state.root = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def __enter__(self) -> FakeDandi:
        self.thread.start()
        return self.state

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


# ------------------------------------------------------------------ no network
#: an API root whose host never resolves, with or without a network (RFC 6761 reserves ``.invalid``)
INVALID_API = "https://api.neurodyn-test.invalid/api"
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


@dataclass
class Offline:
    """What a command did while a host did not resolve: the ``.invalid`` names it looked up and the
    back-off sleeps it asked for (recorded, not slept: time.sleep is replaced)."""

    lookups: list = field(default_factory=list)
    sleeps: list = field(default_factory=list)


def offline(monkeypatch, known_api: str | None = INVALID_API) -> Offline:
    """Record name lookups of ``.invalid`` hosts and every ``time.sleep`` (the dandi client's tenacity
    back-off, neurodyn's and remfile's retries), clear the proxy variables (a proxy would resolve names
    itself) and, when ``known_api`` is given, let the dandi client treat it as a known instance.

    Why the last: offline, the dandi client's server-info lookup of a known instance (the default one) fails
    and it falls back to the instance's hard-coded URLs, so the lookups themselves are made -- and retried.
    Replacing that server-info lookup puts a ``.invalid`` root on the same path without any network.
    """
    import socket
    import time

    from dandi import dandiapi
    from dandi.consts import DandiInstance

    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DANDI_NO_ET", "1")  # no version telemetry request
    record = Offline()
    real = socket.getaddrinfo

    def getaddrinfo(host, *args, **kwargs):
        if str(host).endswith(".invalid"):
            record.lookups.append(host)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(time, "sleep", record.sleeps.append)
    if known_api is not None:
        monkeypatch.setattr(dandiapi, "get_instance", lambda _: DandiInstance("neurodyn-test", None, known_api))
    return record


def closed_port() -> int:
    """A loopback port nothing listens on (a connection is refused: a reachable host, a transient failure)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
