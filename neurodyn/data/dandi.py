"""DANDI lookup for ``neurodyn download`` and streaming: the archive client, asset metadata (size, digests,
URL) as :class:`RemoteFile`, and the seven NLB datasets' files checked against the registry
(:mod:`neurodyn.data.nlb`) before any byte is fetched. The transfer itself: :mod:`neurodyn.data.download`.
"""

from __future__ import annotations

import contextlib
import fnmatch
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from neurodyn.errors import InputError, named, one_line, with_article

DEFAULT_API = "https://api.dandiarchive.org/api"
API_ENV_VAR = "NEURODYN_DANDI_API"
FILE_CHOICES = ("train", "test", "both")
SHA256_KEY = "dandi:sha2-256"
ETAG_KEY = "dandi:dandi-etag"
_CHUNK = 1 << 20


@dataclass(frozen=True)
class RemoteFile:
    """One DANDI asset: where it goes, how big it is, what it must hash to, where its bytes are.

    Attributes
    ----------
    name
        Destination path relative to the output folder, POSIX style: ``<dandiset_id>/<asset path>``
        (e.g. ``"000140/sub-Jenkins/sub-Jenkins_ses-small_desc-test_ecephys.nwb"``).
    size
        Exact size in bytes.
    url
        Download URL (DANDI's ``/assets/<id>/download/``, which redirects to the storage bucket).
    sha256
        Expected lower-case hex sha256 (DANDI's ``dandi:sha2-256``, or the registry's), or None.
    dandi_etag
        DANDI's ``dandi:dandi-etag`` (md5 of the 64 MiB part md5s, ``-<parts>``), or None.
    asset_id, version
        DANDI asset id and dandiset version, when known.
    """

    name: str
    size: int
    url: str
    sha256: str | None = None
    dandi_etag: str | None = None
    asset_id: str | None = None
    version: str | None = None

    @property
    def filename(self) -> str:
        return self.name.rsplit("/", 1)[-1]


class DownloadResult(NamedTuple):
    """Outcome for one file: final ``path``, ``status`` (``downloaded``, ``resumed``, ``skipped``), the
    bytes transferred in this run and the digests that were checked (e.g. ``("sha256", "dandi-etag")``)."""

    path: Path
    status: str
    bytes_transferred: int
    verified: tuple[str, ...] = ()


class DownloadError(OSError):
    """A lookup or transfer failed (network, server, or integrity); the message is one line naming the file."""


class DownloadFailures(DownloadError):
    """Some files of a download of several failed; every file was tried (a failure does not stop the others).

    The message is one line: how many failed, and the first failure.

    Attributes
    ----------
    results
        The :class:`DownloadResult` of each file that was downloaded, resumed or skipped (verified, in place).
    failures
        ``(RemoteFile, exception)`` of each file that failed, in order: a :class:`DownloadError` (network, server,
        verification) or an :class:`~neurodyn.errors.InputError` (e.g. an existing file that differs).
    total
        How many files were asked for.
    """

    def __init__(self, results: list, failures: list, total: int):
        self.results, self.failures, self.total = list(results), list(failures), int(total)
        first = one_line(failures[0][1], 300)
        super().__init__(f"{len(failures)} of {total} files failed (first: {first})")

    @property
    def bad_input(self) -> bool:
        """Whether any failure is bad input (:class:`~neurodyn.errors.InputError`): running again alone cannot
        succeed."""
        return any(isinstance(err, InputError) for _, err in self.failures)


class HostUnresolvable(DownloadError):
    """The host of a URL has no address: no network (no DNS), or no such name. Not worth retrying.

    Attributes
    ----------
    host
        The host name that could not be resolved (``"?"`` when the failure did not record it).
    reason
        The resolver's words, e.g. ``"Name or service not known"``.
    """

    def __init__(self, host: str, reason: object = "name resolution failed", hint: str | None = None):
        self.host = host or "?"
        self.reason = one_line(getattr(reason, "strerror", None) or reason, 120)
        message = f"cannot resolve host {self.host} ({self.reason}): no network, or no such host name"
        super().__init__(f"{message}; {hint}" if hint else message)


#: the longest ``Retry-After`` a retry loop waits out; a server asking for more is reported instead
MAX_RETRY_AFTER_S = 120.0


def retry_after_s(err_or_response) -> float | None:
    """Seconds a 429 / 503 answer's ``Retry-After`` header asks to wait (RFC 9110 section 10.2.3: delay
    seconds or an HTTP date); None when there is no such header or it cannot be read. ``err_or_response``
    is a ``requests`` response or an exception carrying one.

    Examples
    --------
    >>> import requests
    >>> r = requests.Response(); r.status_code = 429; r.headers["Retry-After"] = "7"
    >>> retry_after_s(r)
    7.0
    >>> r.headers["Retry-After"] = "soon"; retry_after_s(r) is None
    True
    """
    import email.utils
    import time

    response = getattr(err_or_response, "response", err_or_response)
    headers = getattr(response, "headers", None)
    if getattr(response, "status_code", None) not in (429, 503) or not headers:
        return None
    value = (headers.get("Retry-After") or "").strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time()) if when.tzinfo is not None else None


def unresolved(err: BaseException, hint: str | None = None) -> HostUnresolvable | None:
    """A :class:`HostUnresolvable` (with ``hint``) when ``err``, or an exception it wraps, is a name-resolution
    failure (``socket.gaierror``, urllib3's ``NameResolutionError``, as ``requests`` and ``dandi`` raise
    them); None for any other error.

    Examples
    --------
    >>> import socket
    >>> unresolved(ConnectionError("refused")) is None
    True
    >>> str(unresolved(ConnectionError(socket.gaierror(-2, "Name or service not known"))))
    'cannot resolve host ? (Name or service not known): no network, or no such host name'
    """
    import socket

    try:
        from urllib3.exceptions import NameResolutionError
    except ImportError:  # urllib3 1.x: a NewConnectionError caused by socket.gaierror
        NameResolutionError = ()  # noqa: N806
    todo, seen = [err], set()
    while todo:
        item = todo.pop()
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, HostUnresolvable):
            return HostUnresolvable(item.host, item.reason, hint)
        if NameResolutionError and isinstance(item, NameResolutionError):
            why = getattr(item, "_reason", None) or item.__cause__ or "name resolution failed"
            return HostUnresolvable(str(getattr(item, "_host", "") or ""), why, hint)
        if isinstance(item, socket.gaierror):
            return HostUnresolvable("", item, hint)
        # requests' ConnectionError holds urllib3's MaxRetryError in args, which holds the cause in .reason
        todo += [item.__cause__, item.__context__, getattr(item, "reason", None), *item.args]
    return None


def check_host(url: str, hint: str | None = None) -> None:
    """Raise :class:`HostUnresolvable` at once when the host of ``url`` cannot be resolved.

    One ``socket.getaddrinfo`` call, no request: an unresolvable name fails in the time of one lookup instead
    of going through the retries with back-off of the ``dandi`` client (``dandi.consts.REQUEST_RETRIES``
    attempts, close to a minute in all) or of a transfer. Skipped when a proxy from the environment
    (``HTTPS_PROXY`` ...) serves ``url``: the proxy resolves the name then. Any
    other lookup problem is left to the request itself.
    """
    import socket
    import urllib.parse

    import requests.utils

    parts = urllib.parse.urlsplit(url)
    host = parts.hostname
    if not host:
        return
    if requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url)):
        return
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise HostUnresolvable(host, err, hint) from None
    except (OSError, UnicodeError, ValueError):  # not a name-resolution failure: the request reports it
        return


# --------------------------------------------------------------------------------------------------
# the DANDI client
# --------------------------------------------------------------------------------------------------
def check_api_url(api_url: str | None = None) -> None:
    """Refuse an API root that is no ``http(s)://host[:port]/...`` URL: ``api_url`` (``--api-url``), else
    ``$NEURODYN_DANDI_API``; one line naming the argument or variable (``http://[::1`` raised a ValueError
    traceback, ``notaurl`` an unclear lookup error).

    Raises
    ------
    InputError
        ``api_url: not an http(s)://<host>/... URL: 'notaurl'`` (``neurodyn download``, which calls it inside
        :func:`neurodyn.errors.command_line_names`: ``--api-url: ...``).
    """
    import urllib.parse

    root, field = ((api_url, named("api_url", "--api-url")) if api_url
                   else (os.environ.get(API_ENV_VAR), API_ENV_VAR))
    if not root:
        return
    try:
        parts = urllib.parse.urlsplit(root)
        ok = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        _ = parts.port  # a port that is no number raises
    except ValueError as err:
        raise InputError(f"not a valid URL: {root!r} ({one_line(err, 120)})", field=field) from None
    if not ok:
        raise InputError(f"not an http(s)://<host>/... URL: {root!r}", field=field)


def api_root(api_url: str | None = None) -> str | None:
    """The DANDI API root: ``api_url``, else ``$NEURODYN_DANDI_API``, else None (the ``dandi`` default);
    refused in one line when it is no http(s) URL (:func:`check_api_url`)."""
    check_api_url(api_url)
    root = api_url or os.environ.get(API_ENV_VAR)
    return root.rstrip("/") if root else None


def client_api_url(api_url: str | None = None) -> str:
    """The API root :func:`dandi_client` talks to: :func:`api_root`, else the ``dandi`` library's instance
    (``$DANDI_INSTANCE``, a known instance name or a URL), else :data:`DEFAULT_API`. No request is made.

    Examples
    --------
    >>> client_api_url("http://127.0.0.1:8000/api/")
    'http://127.0.0.1:8000/api'
    """
    root = api_root(api_url)
    if root:
        return root
    # dandi.utils.get_instance maps these too, but asks the server (server-info) before any host check
    from dandi.consts import known_instances, known_instances_rev

    instance = os.environ.get("DANDI_INSTANCE", "dandi")
    if instance.lower().startswith(("http://", "https://")):
        url = instance.rstrip("/")
        name = known_instances_rev.get(url)  # a known instance's web address: its API, as dandi does
        return known_instances[name].api.rstrip("/") if name is not None else url
    known = known_instances.get(instance)
    return known.api.rstrip("/") if known is not None else DEFAULT_API


def api_host(api_url: str | None = None) -> str:
    """Host (and port, when given) of :func:`client_api_url`, for messages: ``api.dandiarchive.org``."""
    import urllib.parse

    return urllib.parse.urlsplit(client_api_url(api_url)).netloc


def api_hint() -> str:
    """How an error about the DANDI API host says where another server is chosen: ``api_url`` (a Python
    caller's argument) or, inside :func:`neurodyn.errors.command_line_names` (``neurodyn download``),
    ``--api-url``, and ``$NEURODYN_DANDI_API``.

    Examples
    --------
    >>> api_hint()
    'api_url or $NEURODYN_DANDI_API selects another DANDI API'
    """
    return f"{named('api_url', '--api-url')} or ${API_ENV_VAR} selects another DANDI API"


#: seconds a DANDI API request may wait for the server (to connect, and between bytes) unless told otherwise
#: (``neurodyn download`` / ``info`` / ``prepare --timeout``); the ``dandi`` client sets none, so a server that
#: never answered was waited for forever
LOOKUP_TIMEOUT_S = 60.0


def dandi_client(api_url: str | None = None, hint: str | None = None, timeout: float | None = None):
    """A :class:`dandi.dandiapi.DandiAPIClient` for :func:`api_root` (``api_url``).

    The API host is resolved first (:func:`check_host`): without a network (or with a misspelt host) this
    raises :class:`HostUnresolvable` at once, naming the host and ``hint`` (None: :func:`api_hint`), instead
    of after the ``dandi`` client's retries. Other failures (refused connections, 5xx) keep the client's
    retries.

    Every request of the client -- its server-info request while it is made, each lookup afterwards --
    waits at most ``timeout`` seconds (None: :data:`LOOKUP_TIMEOUT_S`) for the server to connect or send
    the next bytes; a request that passes its own timeout (a transfer's) keeps it. A server that never
    answers fails with a :class:`DownloadError` (no answer within ``timeout`` s) instead of a wait without end.

    The ``dandi`` logger gets a NullHandler, so its messages are not printed by Python's last-resort
    handler (neurodyn reports failures itself, on one line); an application that configures logging
    still receives them.
    """
    check_host(client_api_url(api_url), api_hint() if hint is None else hint)
    logger = logging.getLogger("dandi")
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    import requests
    from dandi.dandiapi import DandiAPIClient

    timeout = LOOKUP_TIMEOUT_S if timeout is None else float(timeout)
    root = api_root(api_url)
    seen: list[BaseException] = []
    # two mechanisms, one per moment (why one cannot serve both: _default_timeout's docstring): the server-info
    # request made while the client is built goes through ``requests.get`` (a Session of its own), so
    # Session.request gets the default timeout for that moment only; the client's session is wrapped afterwards
    with _default_timeout(requests.Session, timeout, seen):
        try:
            client = DandiAPIClient(api_url=root) if root else DandiAPIClient()
        except Exception as err:  # server-info lookup of an unknown API root
            late = next((e for e in reversed(seen) if isinstance(e, requests.Timeout)), None)
            if late is not None:
                asked = getattr(late.request, "url", None) or root or DEFAULT_API
                raise DownloadError(f"DANDI API {root or DEFAULT_API}: no answer from {asked} within {timeout:g} s"
                                    ) from None
            raise DownloadError(f"DANDI API {root or DEFAULT_API}: {one_line(err)}") from None
    _with_timeout(client.session, timeout)
    return client


#: one patch of ``requests.Session.request`` at a time (:func:`_default_timeout`)
_PATCH_LOCK = threading.Lock()


@contextlib.contextmanager
def _default_timeout(cls, timeout: float, seen: list):
    """Within the block, ``cls.request`` (``requests.Session``'s) waits at most ``timeout`` seconds when the call
    names no timeout; the exceptions it raises are appended to ``seen``. The requests of this thread only: the
    class is shared, so another thread's requests pass as they would, and one block at a time patches it (two
    overlapping blocks in two threads restored each other's patch, leaving it on the class for good).

    Why a patch of the class while the client is built, and :func:`_with_timeout` (one session's requests)
    afterwards -- neither can serve both moments (dandi-cli 0.81, ``dandi/dandiapi.py`` and ``dandi/utils.py``):

    - while it is built, ``DandiAPIClient.__init__`` asks for the server info (``get_instance`` ->
      ``_get_instance``) *before* ``RESTFullAPIClient.__init__`` creates ``client.session``, and it asks through
      the module-level ``requests.get``, which makes a Session of its own for that one request and closes it.
      ``DandiAPIClient`` takes no session argument, so there is no session to wrap before that request happens;
      short of building the client around dandi's private constructor, the class is the only place to put a
      timeout on it (the ``etelemetry`` version check, the other request there, sets its own 5 s).
    - afterwards, the class patch cannot stay: the client's lookups run for as long as the client is used, and
      in other threads (``paginate`` fetches pages in a pool of ``page_workers`` threads), so it would have to
      stay on the shared ``requests.Session`` class for the client's lifetime and give every other library's
      requests in the process a timeout they never asked for. ``client.session`` exists by then and is what
      every later lookup goes through, so :func:`_with_timeout` wraps that one session instead.
    """
    owner = threading.get_ident()
    with _PATCH_LOCK:
        real = cls.request

        def request(self, *args, **kwargs):
            if threading.get_ident() != owner:
                return real(self, *args, **kwargs)
            if kwargs.get("timeout") is None:
                kwargs["timeout"] = timeout
            try:
                return real(self, *args, **kwargs)
            except Exception as err:
                seen.append(err)
                raise

        cls.request = request
        try:
            yield
        finally:
            cls.request = real


def _with_timeout(session, timeout: float) -> None:
    """``session``'s requests wait at most ``timeout`` seconds when the call names no timeout; a timeout is
    reported as "no answer from <url> within <timeout> s" (a ``requests.Timeout`` still, for the callers).

    A connection not made within ``timeout`` (``ConnectTimeout``, which is also a ``ConnectionError``) becomes a
    plain ``requests.Timeout``: the dandi client retries ConnectionErrors ``REQUEST_RETRIES`` (12) times, so an
    API that never accepts the connection took 12 timeouts and their back-off, some 12 minutes at the default
    60 s, instead of one. A refused connection (no timeout) keeps the client's retries."""
    import requests

    real = session.request

    def request(method, url, *args, **kwargs):
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = timeout
            try:
                return real(method, url, *args, **kwargs)
            except requests.ConnectTimeout as err:
                raise requests.Timeout(f"no connection to {url} within {timeout:g} s", request=err.request,
                                       response=err.response) from None
            except requests.Timeout as err:
                raise type(err)(f"no answer from {url} within {timeout:g} s", request=err.request,
                                response=err.response) from None
        return real(method, url, *args, **kwargs)

    session.request = request


def _lookup_error(what: str, err: BaseException, hint: str | None = None) -> Exception:
    """A one-line error for a failed DANDI lookup: InputError when the thing does not exist. ``hint``: how
    another API is selected, for a host that does not resolve (None: :func:`api_hint`)."""
    from dandi.exceptions import NotFoundError

    if isinstance(err, NotFoundError):
        return InputError(one_line(err), field=what)
    found = unresolved(err, api_hint() if hint is None else hint)  # e.g. behind a proxy that could not resolve it
    if found is not None:
        return found
    response = getattr(err, "response", None)
    if response is not None and getattr(response, "status_code", None) == 404:
        return InputError(f"not found on DANDI ({one_line(err, 200)})", field=what)
    return DownloadError(f"DANDI lookup of {what} failed: {type(err).__name__}: {one_line(err)}")


def _digests(metadata: dict) -> tuple[str | None, str | None]:
    digest = metadata.get("digest") or {}
    sha = digest.get(SHA256_KEY)
    return (sha.lower() if sha else None), digest.get(ETAG_KEY)


def remote_from_asset(asset, registry_sha256: str | None = None, *, field: str | None = None) -> RemoteFile:
    """A :class:`RemoteFile` from a ``dandi`` RemoteAsset (its metadata gives the digests).

    Raises DownloadError when DANDI's sha256 and ``registry_sha256`` disagree, InputError (naming ``field``,
    the argument that selected the asset) when the asset is no file.
    """
    if getattr(asset, "asset_type", None) is not None and asset.asset_type.name != "BLOB":
        raise InputError(f"asset {asset.path} is {with_article(asset.asset_type.name)} asset, not a file", field=field)
    try:
        metadata = asset.get_raw_metadata()
    except Exception as err:
        raise _lookup_error(f"asset {asset.path}", err) from None
    sha, etag = _digests(metadata)
    name = f"{asset.dandiset_id}/{asset.path}"
    if sha and registry_sha256 and sha != registry_sha256.lower():
        raise DownloadError(f"{name}: DANDI publishes sha256 {sha}, neurodyn's registry says {registry_sha256}")
    return RemoteFile(name=name, size=int(asset.size), url=asset.base_download_url,
                      sha256=sha or (registry_sha256.lower() if registry_sha256 else None), dandi_etag=etag,
                      asset_id=asset.identifier, version=asset.version_id)


def _registry_sha256(dandiset_id: str, path: str, size: int) -> str | None:
    """The registry's sha256 of an asset, when the registry lists it (same dandiset, path and size)."""
    from neurodyn.data.nlb import find_file

    found = find_file(path.rsplit("/", 1)[-1])
    if found is None:
        return None
    ds, entry = found
    if ds.dandiset_id != dandiset_id or entry.dandi_path != path:
        return None
    if entry.size != size:
        raise DownloadError(f"{dandiset_id}/{path}: DANDI says {size} bytes, neurodyn's registry {entry.size}")
    return entry.sha256


def dandiset_files(dandiset_id: str, version: str | None = None, glob: str | None = None, *,
                   api_url: str | None = None, client=None) -> list[RemoteFile]:
    """Every file asset of a dandiset version whose path matches ``glob`` (all when None), sorted by path.

    ``version`` None is DANDI's default: the most recent published version, else the draft.

    Raises
    ------
    InputError
        No such dandiset / version, or no asset matches (naming ``glob``; ``neurodyn download``: ``--path``).
    DownloadError
        The server could not be reached or answered with an error.
    """
    client = client or dandi_client(api_url)
    dandiset_id = str(dandiset_id)
    try:
        dandiset = client.get_dandiset(dandiset_id, version, lazy=False)
        version_id = dandiset.version_id
        assets = list(dandiset.get_assets_by_glob(glob, order="path") if glob
                      else dandiset.get_assets(order="path"))
    except (InputError, DownloadError):
        raise
    except Exception as err:
        raise _lookup_error(f"dandiset {dandiset_id}" + (f" version {version}" if version else ""), err) from None
    if glob:  # the server's glob; keep only what fnmatch agrees with (no surprise files)
        assets = [a for a in assets if fnmatch.fnmatchcase(a.path, glob)]
    field = named("glob", "--path")
    if not assets:
        raise InputError(f"no asset of dandiset {dandiset_id} version {version_id} matches {glob or '*'!r}",
                         field=field)
    return [remote_from_asset(a, _registry_sha256(dandiset_id, a.path, int(a.size)), field=field) for a in assets]


# --------------------------------------------------------------------------------------------------
# registry (neurodyn.data.nlb.DATASETS)
# --------------------------------------------------------------------------------------------------
def nlb_dataset_names() -> list[str]:
    """Names accepted by :func:`nlb_remote_files` (keys of ``neurodyn.data.nlb.DATASETS``)."""
    from neurodyn.data import nlb

    return list(nlb.DATASETS)


def nlb_remote_files(dataset_name: str, *, files: str = "both", api_url: str | None = None) -> list[RemoteFile]:
    """The NLB files of a dataset as the registry describes them -- offline, no request made.

    Parameters
    ----------
    dataset_name
        nlb_tools name (``"mc_maze_small"``) or DANDI title (``"MC_Maze_Small"``).
    files
        ``"train"``, ``"test"`` or ``"both"``.
    api_url
        API root for the download URLs (see :func:`api_root`; default the public archive).

    Returns
    -------
    list[RemoteFile]
        Named ``<dandiset_id>/sub-<subject>/<file>`` (the ``dandi download`` layout), with the
        registry's size and sha256.

    Examples
    --------
    >>> [f.name for f in nlb_remote_files("mc_maze_small", files="test")]
    ['000140/sub-Jenkins/sub-Jenkins_ses-small_desc-test_ecephys.nwb']
    """
    from neurodyn.data.nlb import get_dataset

    if files not in FILE_CHOICES:
        raise InputError(f"must be one of {', '.join(FILE_CHOICES)}, got {files!r}", field=named("files", "--files"))
    dataset = get_dataset(dataset_name)
    root = api_root(api_url) or DEFAULT_API
    return [
        RemoteFile(name=f"{dataset.dandiset_id}/{entry.dandi_path}", size=int(entry.size),
                   url=f"{root}/assets/{entry.asset_id}/download/", sha256=entry.sha256.lower(),
                   asset_id=entry.asset_id, version=dataset.version)
        for entry in dataset.files if files in ("both", entry.kind)
    ]


def resolve_nlb_files(dataset_name: str, *, files: str = "both", version: str | None = None,
                      api_url: str | None = None, client=None) -> list[RemoteFile]:
    """The registry files of a dataset, looked up on DANDI (download URL, dandi-etag) and checked against
    the registry (path, size, sha256) before anything is fetched.

    ``version`` defaults to the registry's version of the dandiset.
    """
    from neurodyn.data.nlb import get_dataset

    dataset = get_dataset(dataset_name)
    expected = nlb_remote_files(dataset_name, files=files, api_url=api_url)
    client = client or dandi_client(api_url)
    if version is not None and version != dataset.version:
        # a version the registry does not name: looked up first, so a missing one is named as such (the
        # asset lookup below would say "No such asset" for each file)
        try:
            dandiset = client.get_dandiset(dataset.dandiset_id, version, lazy=False)
        except Exception as err:
            raise _lookup_error(f"dandiset {dataset.dandiset_id} version {version}", err) from None
    else:
        version = dataset.version
        dandiset = client.get_dandiset(dataset.dandiset_id, version, lazy=True)
    out = []
    for entry in expected:
        try:
            asset = dandiset.get_asset(entry.asset_id)
        except Exception as err:
            raise _lookup_error(f"{entry.name} (asset {entry.asset_id}, version {version})", err) from None
        name = f"{dataset.dandiset_id}/{asset.path}"
        if name != entry.name or int(asset.size) != entry.size:
            raise DownloadError(f"{entry.name}: DANDI's asset {entry.asset_id} is {name} ({asset.size} bytes), "
                                f"neurodyn's registry says {entry.name} ({entry.size} bytes)")
        out.append(remote_from_asset(asset, entry.sha256))
    return out


# --------------------------------------------------------------------------------------------------
# verification
# --------------------------------------------------------------------------------------------------
