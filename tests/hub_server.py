"""A local stand-in for the Hugging Face Hub HTTP API, for tests.

The real ``huggingface_hub`` client (2.4) talks to this server when ``HF_ENDPOINT`` points at it, so tests
exercise the client's real code paths (retries, cache layout, LFS uploads, error mapping) without a network.
Only the endpoints that the client calls for the features fast-style uses are implemented, with plain LFS
transfers (``HF_HUB_DISABLE_XET=1`` must be set before ``huggingface_hub`` is imported).

Stdlib only: ``http.server.ThreadingHTTPServer`` in a daemon thread, state in memory, file contents in a temp
dir (content-addressed by sha256). PyYAML (a dependency of ``huggingface_hub``) is used, lazily, to read the
model card front matter.

    hub = HubServer().start()            # binds 127.0.0.1 on a free port
    os.environ["HF_ENDPOINT"] = hub.url  # before huggingface_hub is imported
    ...
    with hub.fault("/resolve/", 503, times=2):   # the next 2 matching requests get a 503
        ...
    hub.stop()

Endpoints (and the client functions that need them):

====================================================  =================================================
``GET  /api/whoami-v2``                               ``HfApi.whoami``
``POST /api/repos/create``                            ``HfApi.create_repo`` (409 when it exists)
``DELETE /api/repos/delete``                          ``HfApi.delete_repo``
``POST /api/validate-yaml``                           ``create_commit`` when README.md is committed
``GET  /api/agent-harnesses``                         once per process, for the client's user agent
``GET  /api/models``  (``datasets``, ``spaces``)      ``HfApi.list_models``: filter/author/search/limit
``GET  /api/models/{repo}[/revision/{rev}]``          ``model_info``, ``repo_info``, ``repo_exists``,
                                                      ``snapshot_download`` (resolves the commit sha)
``GET  /api/models/{repo}/tree/{rev}[/{path}]``       ``list_repo_files``/``list_repo_tree``,
                                                      ``snapshot_download``, ``upload_folder(delete_patterns)``
``POST /api/models/{repo}/paths-info/{rev}``          ``get_paths_info``
``GET  /api/models/{repo}/refs``                      ``list_repo_refs``
``GET  /api/models/{repo}/commits/{rev}``             ``list_repo_commits``
``POST /api/models/{repo}/preupload/{rev}``           ``create_commit``/``upload_*``: regular vs LFS
``POST /{repo}.git/info/lfs/objects/batch``           LFS batch API: where to PUT each LFS object
``PUT  /__lfs__/{sha256}``                            the LFS upload itself (the "S3" of this server)
``POST /{repo}.git/info/lfs/objects/verify``          LFS verify after upload
``POST /api/models/{repo}/commit/{rev}``              the NDJSON commit (header/file/lfsFile/deleted*)
``HEAD|GET /{repo}/resolve/{rev}/{path}``             ``hf_hub_download``, ``file_exists``, snapshots
``GET  /__cdn__/{sha256}``                            LFS "CDN" when ``lfs_cdn_host`` is set
====================================================  =================================================

Error responses carry the ``X-Error-Code``/``X-Error-Message`` headers that
``huggingface_hub.utils.hf_raise_for_status`` maps to exception types (RepoNotFound, RevisionNotFound,
EntryNotFound, GatedRepo). This matters here: the client only maps a *bare* 401 to ``RepositoryNotFoundError``
for ``https://`` URLs, so over plain http the error code header is what makes the mapping work.
"""
from __future__ import annotations

import base64
import contextlib
import fnmatch
import hashlib
import json
import re
import secrets
import shutil
import socket
import tempfile
import threading
import traceback
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["Fault", "HubServer", "LoggedRequest", "patch_client_retry_sleep"]

# Repo types as they appear in API paths (/api/models/...) and in download/LFS paths (/datasets/...).
_API_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
_URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}

# Sub-resources that may follow a repo id in /api/{type}s/{repo_id}/... paths.
_API_SUBRESOURCES = {"revision", "tree", "paths-info", "refs", "commits", "preupload", "commit"}

# The Hub asks for LFS for files over 10 MB even when .gitattributes does not track them.
_LFS_SIZE_THRESHOLD = 10 * 1024 * 1024

# What the Hub puts in the initial commit of a new repo (abridged): these patterns go through LFS.
_DEFAULT_GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n"
    for pattern in (
        "*.7z", "*.arrow", "*.bin", "*.bz2", "*.ckpt", "*.ftz", "*.gz", "*.h5", "*.joblib", "*.lfs.*",
        "*.mlmodel", "*.model", "*.msgpack", "*.npy", "*.npz", "*.onnx", "*.ot", "*.parquet", "*.pb",
        "*.pickle", "*.pkl", "*.pt", "*.pth", "*.rar", "*.safetensors", "saved_model/**/*", "*.tar.*",
        "*.tar", "*.tflite", "*.tgz", "*.wasm", "*.xz", "*.zip", "*.zst", "*tfevents*",
    )
)

_SERVER_ERROR_MESSAGES = {
    500: "Internal Error - We're working hard to fix this as soon as possible!",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    429: "Too Many Requests",
}


# --------------------------------------------------------------------------------------------------------------
# Storage model
# --------------------------------------------------------------------------------------------------------------


def _git_blob_sha1(content: bytes) -> str:
    """The git object id of a blob, which the Hub uses as the ETag of regular (non-LFS) files."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class _FileEntry:
    """One file of a commit. Its content lives in the object store under ``sha256``."""

    sha256: str
    size: int
    lfs: bool
    blob_id: str  # git sha1 of the content (regular file) or of the LFS pointer (LFS file)

    @property
    def etag(self) -> str:
        # The Hub's ETag on /resolve: git blob id for regular files, sha256 for LFS files.
        return self.sha256 if self.lfs else self.blob_id


@dataclass
class _Commit:
    oid: str
    parent: str | None
    title: str
    message: str
    date: datetime
    files: dict[str, _FileEntry]


@dataclass
class _Repo:
    repo_type: str
    repo_id: str
    private: bool
    gated: Literal[False, "auto", "manual"]
    created_at: datetime
    object_id: str = field(default_factory=lambda: secrets.token_hex(12))
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, _Commit] = field(default_factory=dict)
    gated_tokens: set[str] = field(default_factory=set)

    def resolve(self, revision: str) -> _Commit:
        """A branch name, a full commit sha, or an unambiguous sha prefix (>= 7 chars) -> commit."""
        if revision in self.branches:
            return self.commits[self.branches[revision]]
        if revision in self.commits:
            return self.commits[revision]
        if re.fullmatch(r"[0-9a-f]{7,39}", revision):
            found = [c for oid, c in self.commits.items() if oid.startswith(revision)]
            if len(found) == 1:
                return found[0]
        raise _HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")


class _HubError(Exception):
    """An error answer as the Hub sends it: a status, an ``X-Error-Code`` and a message."""

    def __init__(
        self, status: int, message: str, error_code: str | None = None, headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.extra = dict(extra or {})
        self.status = status
        self.message = message
        self.error_code = error_code
        self.headers = dict(headers or {})

    def to_response(self) -> _Response:
        headers = {"Content-Type": "application/json; charset=utf-8", **self.headers}
        # Header values must be latin-1 and single-line.
        headers["X-Error-Message"] = self.message.replace("\n", " ").encode("latin-1", "replace").decode("latin-1")
        if self.error_code:
            headers["X-Error-Code"] = self.error_code
        return _Response(self.status, headers, json.dumps({"error": self.message, **self.extra}).encode())


@dataclass
class _Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    # For HEAD answers to GET-able resources: the length GET would send (body is not sent for HEAD).
    content_length: int | None = None


def _json(obj: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> _Response:
    return _Response(status, {"Content-Type": "application/json; charset=utf-8", **(headers or {})},
                     json.dumps(obj).encode())


@dataclass
class _Request:
    method: str
    raw_path: str
    path: str  # percent-decoded, without the query string
    segments: list[str]  # raw path split on "/" then each segment percent-decoded
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    token: str | None

    def param(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name) or self.query.get(f"{name}[]")
        return values[0] if values else default

    def flag(self, name: str) -> bool:
        return (self.param(name) or "").lower() in {"1", "true", "yes"}

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError as err:
            raise _HubError(400, f"Invalid JSON body: {err}") from None


# --------------------------------------------------------------------------------------------------------------
# Fault injection and request log
# --------------------------------------------------------------------------------------------------------------

FaultKind = Literal["status", "delay", "truncate", "drop"]
_DEFAULT = object()  # sentinel: "pick the Hub-like error code for this status and path"


@dataclass(eq=False)  # identity semantics: two equal-looking faults are still distinct handles
class Fault:
    """One injected failure. Returned by :meth:`HubServer.inject`; ``hits`` counts how often it fired.

    Kinds:
      - ``status``: answer ``status`` with Hub-like error headers instead of handling the request.
      - ``delay``: wait ``seconds`` and then handle the request normally (a client with a shorter timeout
        gives up first). Shutdown interrupts the wait.
      - ``truncate``: handle the request, announce the full ``Content-Length`` but send only ``keep`` bytes
        of the body (an int, or a fraction of the body), then close the connection. HEAD requests never
        match (they have no body), so ``/resolve/`` truncation affects the download GET only.
      - ``drop``: close the connection without answering.
    """

    pattern: re.Pattern[str]
    kind: FaultKind
    method: str | None = None
    remaining: int | None = 1  # None = until removed
    status: int | None = None
    seconds: float = 0.0
    keep: int | float = 0.5
    error_code: Any = _DEFAULT  # a str, None (no X-Error-Code), or _DEFAULT (Hub-like for the status)
    message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    hits: int = 0

    def matches(self, method: str, path: str) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.method is not None and self.method != method:
            return False
        if self.kind == "truncate" and method == "HEAD":
            return False
        return self.pattern.search(path) is not None

    def error_response(self, path: str) -> _Response:
        """The Hub-like error answer for a ``status`` fault."""
        status = self.status or 500
        code = self.error_code
        message = self.message
        is_resolve = "/resolve/" in path
        if code is _DEFAULT:
            code = {
                401: "RepoNotFound",  # the Hub answers 401 + RepoNotFound for private/missing repos without auth
                403: "GatedRepo" if is_resolve else None,
                404: "EntryNotFound" if is_resolve else "RepoNotFound",
            }.get(status)
        if message is None:
            message = {
                "RepoNotFound": "Repository not found",
                "EntryNotFound": "Entry not found",
                "GatedRepo": "Access to this repo is restricted (injected fault).",
            }.get(code or "", _SERVER_ERROR_MESSAGES.get(status, f"Injected HTTP {status}"))
        return _HubError(status, message, code, self.headers).to_response()


@dataclass
class LoggedRequest:
    """A request the server received (whatever happened to it)."""

    method: str
    path: str  # percent-decoded, no query string
    query: str
    headers: dict[str, str]  # lower-cased names
    status: int | None = None  # None when the connection was dropped or the client went away
    fault: FaultKind | None = None


def patch_client_retry_sleep(monkeypatch: Any) -> list[float]:
    """Make ``huggingface_hub``'s retry back-off instant for one test; returns the list of requested sleeps.

    The client sleeps 1, 2, 4, 8, 8 s between its 5 retries (``http_backoff``) and 1 s before each resume
    of a broken download (``http_get``), so an exhausted retry loop takes ~23 s. This swaps the ``time``
    module those two modules see for a proxy whose ``sleep`` only records. Imported lazily: importing
    ``huggingface_hub`` from this module at import time would freeze ``HF_ENDPOINT`` too early.
    """
    import time as _time

    from huggingface_hub import file_download
    from huggingface_hub.utils import _http

    slept: list[float] = []

    class _InstantSleepTime:
        def __getattr__(self, name: str) -> Any:
            return getattr(_time, name)

        @staticmethod
        def sleep(seconds: float) -> None:
            slept.append(seconds)

    monkeypatch.setattr(_http, "time", _InstantSleepTime())
    monkeypatch.setattr(file_download, "time", _InstantSleepTime())
    return slept


# --------------------------------------------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    """Thin transport layer: everything is delegated to :meth:`HubServer._serve`."""

    protocol_version = "HTTP/1.1"  # keep-alive, like the Hub (the client pools connections)
    timeout = 120  # an idle keep-alive connection frees its thread eventually
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.hub._track_connection(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.hub._track_connection(self.connection, add=False)

    def _dispatch(self) -> None:
        self.server.hub._serve(self)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log replaces stderr noise


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    hub: HubServer


# --------------------------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------------------------


class HubServer:
    """A local Hub. See the module docstring for endpoints; the public methods below are for tests.

    Args:
        host: address to bind; loopback only.
        port: 0 picks a free port.
        user: the user name ``whoami`` returns and the namespace of repos created without one.
        tokens: if given, only these bearer tokens are valid (others get 401 "Invalid credentials");
            by default any token is accepted.
        require_token_for_write: if True, writes (create/commit/upload) without a token get 401, as on the
            real Hub. Off by default so tests need not pass tokens; set the attribute at any time.
        lfs_cdn_host: if set (e.g. ``"localhost"``), ``/resolve`` answers LFS files with a 302 to
            ``http://{lfs_cdn_host}:{port}/__cdn__/{sha256}``, a different origin from the endpoint, like the
            Hub's CDN: the client then takes the metadata from the 302 and must not forward its token.
        max_logged_requests: size of the request log ring buffer.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        user: str = "test-user",
        tokens: set[str] | None = None,
        require_token_for_write: bool = False,
        lfs_cdn_host: str | None = None,
        max_logged_requests: int = 10_000,
    ) -> None:
        self.host = host
        self.port = port
        self.user = user
        self.tokens = tokens
        self.require_token_for_write = require_token_for_write
        self.lfs_cdn_host = lfs_cdn_host
        self._lock = threading.RLock()
        self._repos: dict[tuple[str, str], _Repo] = {}
        self._faults: list[Fault] = []
        self._log: deque[LoggedRequest] = deque(maxlen=max_logged_requests)
        self._errors: list[str] = []
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._commit_counter = 0
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._storage = Path(tempfile.mkdtemp(prefix="hub-server-"))
        self._objects = self._storage / "objects"
        self._objects.mkdir()

    # ---- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> HubServer:
        """Bind and serve in a daemon thread. Returns self, so ``HubServer().start()`` reads well."""
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _HTTPServer((self.host, self.port), _Handler)
        httpd.hub = self
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name=f"hub-server:{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, interrupt pending delays, close open connections and delete the storage dir."""
        self._stopping.set()
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:  # unblock handler threads waiting on idle keep-alive connections
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        shutil.rmtree(self._storage, ignore_errors=True)

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (valid once started)."""
        return f"http://{self.host}:{self.port}"

    def reset(self) -> None:
        """Forget all repos, stored files, faults, the request log and recorded server errors."""
        with self._lock:
            self._repos.clear()
            self._faults.clear()
            self._log.clear()
            self._errors.clear()
            for obj in self._objects.iterdir():
                obj.unlink(missing_ok=True)

    # ---- fault injection -------------------------------------------------------------------------------------

    def inject(
        self,
        path: str,
        fault: int | Literal["delay", "truncate", "drop"],
        *,
        times: int | None = 1,
        method: str | None = None,
        seconds: float = 5.0,
        keep: int | float = 0.5,
        error_code: Any = _DEFAULT,
        message: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Fault:
        """Make the next ``times`` requests whose decoded path matches the regex ``path`` fail.

        ``fault`` is an HTTP status (e.g. 401, 403, 404, 429, 500, 502, 503) or ``"delay"``, ``"truncate"``,
        ``"drop"`` (see :class:`Fault`). ``times=None`` keeps it active until removed. ``method`` restricts
        it (``"HEAD"``, ``"GET"``, ...). For status faults, ``error_code`` defaults to what the Hub sends:
        401 -> RepoNotFound, 403 on /resolve -> GatedRepo, 404 -> EntryNotFound on /resolve else
        RepoNotFound, none for 5xx; pass ``error_code=None`` for a bare status. ``headers`` are added to the
        answer (e.g. ``{"Retry-After": "0"}``). The first matching active fault wins.

        Examples::

            hub.inject("/resolve/main/model.safetensors", 500, times=None)    # always 500
            hub.inject(r"/api/models/[^/]+/[^/]+/commit/", 503)                # next commit fails once
            hub.inject("/resolve/", "delay", seconds=3, method="HEAD")        # slow metadata call
            hub.inject("/resolve/", "truncate", keep=1000)                    # 1000 bytes then EOF
            hub.inject("/info/lfs/objects/batch", "drop", times=2)
        """
        if isinstance(fault, int):
            kind: FaultKind = "status"
            status: int | None = fault
        elif fault in ("delay", "truncate", "drop"):
            kind, status = fault, None
        else:
            raise ValueError(f"unknown fault {fault!r}: expected an HTTP status or 'delay'/'truncate'/'drop'")
        if times is not None and times < 1:
            raise ValueError("times must be >= 1 or None")
        handle = Fault(
            pattern=re.compile(path),
            kind=kind,
            method=method.upper() if method else None,
            remaining=times,
            status=status,
            seconds=seconds,
            keep=keep,
            error_code=error_code,
            message=message,
            headers=dict(headers or {}),
        )
        with self._lock:
            self._faults.append(handle)
        return handle

    @contextlib.contextmanager
    def fault(
        self, path: str, fault: int | Literal["delay", "truncate", "drop"], **kwargs: Any
    ) -> Iterator[Fault]:
        """:meth:`inject` for the duration of a ``with`` block; the fault is removed on exit.

        ``with hub.fault("/resolve/", 500, times=None) as f: ...; assert f.hits == 6``
        """
        handle = self.inject(path, fault, **kwargs)
        try:
            yield handle
        finally:
            self.remove_fault(handle)

    def remove_fault(self, handle: Fault) -> None:
        with self._lock:
            if handle in self._faults:
                self._faults.remove(handle)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for handle in self._faults:
                if handle.matches(method, path):
                    if handle.remaining is not None:
                        handle.remaining -= 1
                    handle.hits += 1
                    return handle
        return None

    # ---- request log -----------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[tuple[str, str]]:
        """``(method, path)`` of every request received, oldest first (a bounded log)."""
        with self._lock:
            return [(r.method, r.path) for r in self._log]

    @property
    def request_log(self) -> list[LoggedRequest]:
        """Like :attr:`requests` with query, headers, answered status and the fault applied."""
        with self._lock:
            return list(self._log)

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()

    @property
    def errors(self) -> list[str]:
        """Tracebacks of unexpected exceptions in the server (answered as 500). Tests can assert it's empty."""
        with self._lock:
            return list(self._errors)

    # ---- direct repo access for tests (no client involved) ---------------------------------------------------

    def create_repo(
        self,
        repo_id: str,
        *,
        private: bool = False,
        repo_type: str = "model",
        gated: Literal[False, "auto", "manual"] = False,
        exist_ok: bool = True,
    ) -> str:
        """Create a repo (initial commit with ``.gitattributes``, like the Hub); returns its head sha."""
        with self._lock:
            key = (repo_type, repo_id)
            if key in self._repos:
                if not exist_ok:
                    raise ValueError(f"{repo_type} repo {repo_id} exists")
                return self._repos[key].branches["main"]
            repo = _Repo(repo_type, repo_id, private, gated, datetime.now(timezone.utc))
            self._repos[key] = repo
            return self._commit_files(
                repo, "main", {".gitattributes": _DEFAULT_GITATTRIBUTES.encode()}, [], "initial commit", ""
            )

    def seed_repo(
        self,
        repo_id: str,
        source: str | Path | Mapping[str, bytes | str],
        *,
        private: bool = False,
        repo_type: str = "model",
        gated: Literal[False, "auto", "manual"] = False,
        commit_message: str = "Seed repo",
        branch: str = "main",
    ) -> str:
        """Commit a local folder (or a ``{path: content}`` mapping) to a repo, creating it if needed.

        Files go to LFS under the same rule as the preupload endpoint. Returns the new commit sha.
        """
        if isinstance(source, Mapping):
            files = {p: (c.encode() if isinstance(c, str) else bytes(c)) for p, c in source.items()}
        else:
            root = Path(source)
            files = {
                p.relative_to(root).as_posix(): p.read_bytes()
                for p in sorted(root.rglob("*"))
                if p.is_file() and ".git" not in p.relative_to(root).parts
            }
        with self._lock:
            self.create_repo(repo_id, private=private, repo_type=repo_type, gated=gated)
            repo = self._repos[(repo_type, repo_id)]
            repo.private, repo.gated = private, gated
            return self._commit_files(repo, branch, files, [], commit_message, "")

    def head(self, repo_id: str, branch: str = "main", repo_type: str = "model") -> str:
        """The commit sha a branch points at."""
        with self._lock:
            return self._repos[(repo_type, repo_id)].branches[branch]

    def read_file(self, repo_id: str, path: str, revision: str = "main", repo_type: str = "model") -> bytes:
        """A file's content at a revision, straight from storage."""
        with self._lock:
            entry = self._repos[(repo_type, repo_id)].resolve(revision).files[path]
        return self._read_object(entry.sha256)

    def list_files(self, repo_id: str, revision: str = "main", repo_type: str = "model") -> list[str]:
        with self._lock:
            return sorted(self._repos[(repo_type, repo_id)].resolve(revision).files)

    def set_private(self, repo_id: str, private: bool, repo_type: str = "model") -> None:
        with self._lock:
            self._repos[(repo_type, repo_id)].private = private

    def grant_access(self, repo_id: str, token: str, repo_type: str = "model") -> None:
        """Let ``token`` download files of a gated repo."""
        with self._lock:
            self._repos[(repo_type, repo_id)].gated_tokens.add(token)

    # ---- storage ---------------------------------------------------------------------------------------------

    def _store_object(self, content: bytes) -> str:
        sha256 = hashlib.sha256(content).hexdigest()
        target = self._objects / sha256
        if not target.exists():
            tmp = target.with_suffix(f".tmp{threading.get_ident()}")
            tmp.write_bytes(content)
            tmp.replace(target)
        return sha256

    def _has_object(self, sha256: str) -> bool:
        return re.fullmatch(r"[0-9a-f]{64}", sha256) is not None and (self._objects / sha256).is_file()

    def _read_object(self, sha256: str) -> bytes:
        return (self._objects / sha256).read_bytes()

    def _lfs_patterns(self, commit: _Commit | None) -> list[str]:
        """The LFS-tracked patterns of the commit's .gitattributes."""
        if commit is None or ".gitattributes" not in commit.files:
            return []
        return _gitattributes_lfs_patterns(self._read_object(commit.files[".gitattributes"].sha256))

    def _is_lfs(self, path: str, size: int, sample: bytes, patterns: list[str]) -> bool:
        """The Hub's rule: tracked by .gitattributes, or > 10 MB, or binary (a NUL byte in the sample)."""
        if size == 0:
            return False
        if size > _LFS_SIZE_THRESHOLD or b"\0" in sample:
            return True
        name = path.rsplit("/", 1)[-1]
        for pattern in patterns:
            target = path if "/" in pattern else name
            if fnmatch.fnmatchcase(target, pattern.replace("**/", "*")):
                return True
        return False

    def _entry_for(self, sha256: str, size: int, lfs: bool, content: bytes | None) -> _FileEntry:
        if lfs:
            return _FileEntry(sha256, size, True, _git_blob_sha1(_lfs_pointer(sha256, size)))
        if content is None:
            content = self._read_object(sha256)
        return _FileEntry(sha256, size, False, _git_blob_sha1(content))

    def _new_commit_oid(self, repo: _Repo, parent: str | None, files: dict[str, _FileEntry], title: str) -> str:
        self._commit_counter += 1
        manifest = json.dumps(sorted((p, e.blob_id) for p, e in files.items()))
        seed = f"{repo.repo_type}/{repo.repo_id}\n{parent}\n{title}\n{self._commit_counter}\n{manifest}"
        return hashlib.sha1(seed.encode()).hexdigest()

    def _commit_files(
        self,
        repo: _Repo,
        branch: str,
        additions: Mapping[str, bytes],
        deletions: list[str],
        title: str,
        message: str,
    ) -> str:
        """Commit raw contents (used by create_repo/seed_repo). Caller holds the lock."""
        parent = repo.commits[repo.branches[branch]] if branch in repo.branches else None
        files = dict(parent.files) if parent else {}
        for path in deletions:
            files.pop(path, None)
        patterns = self._lfs_patterns(parent)
        if ".gitattributes" in additions:
            patterns = _gitattributes_lfs_patterns(additions[".gitattributes"])
        for path, content in additions.items():
            sha256 = self._store_object(content)
            lfs = self._is_lfs(path, len(content), content[:512], patterns)
            files[path] = self._entry_for(sha256, len(content), lfs, content)
        return self._record_commit(repo, branch, parent, files, title, message)

    def _record_commit(
        self, repo: _Repo, branch: str, parent: _Commit | None, files: dict[str, _FileEntry], title: str, msg: str
    ) -> str:
        oid = self._new_commit_oid(repo, parent.oid if parent else None, files, title)
        repo.commits[oid] = _Commit(oid, parent.oid if parent else None, title, msg, datetime.now(timezone.utc), files)
        repo.branches[branch] = oid
        return oid

    # ---- request handling (transport) ------------------------------------------------------------------------

    def _track_connection(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            (self._connections.add if add else self._connections.discard)(conn)

    @staticmethod
    def _read_body(handler: _Handler) -> bytes:
        """Read the request body: Content-Length or chunked (httpx streams file uploads chunked)."""
        if "chunked" in (handler.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size_line = handler.rfile.readline(65537)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while handler.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(handler.rfile.read(size))
                handler.rfile.readline(65537)  # CRLF after each chunk
        length = int(handler.headers.get("Content-Length") or 0)
        return handler.rfile.read(length) if length else b""

    def _serve(self, handler: _Handler) -> None:
        """Parse, log, apply a fault if one matches, route, and write the answer."""
        split = urlsplit(handler.path)
        raw_path = split.path
        path = unquote(raw_path)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        record = LoggedRequest(handler.command, path, split.query, headers)
        with self._lock:
            self._log.append(record)
        try:
            body = self._read_body(handler)
        except (OSError, ValueError):
            handler.close_connection = True
            return
        fault = self._take_fault(handler.command, path)
        if fault is not None:
            record.fault = fault.kind
            if fault.kind == "drop":
                handler.close_connection = True
                return
            if fault.kind == "delay" and self._stopping.wait(fault.seconds):
                handler.close_connection = True  # shutting down: don't answer
                return

        if fault is not None and fault.kind == "status":
            response = fault.error_response(path)
        else:
            try:
                request = _Request(
                    method=handler.command,
                    raw_path=raw_path,
                    path=path,
                    segments=[unquote(s) for s in raw_path.split("/")[1:]],
                    query=parse_qs(split.query, keep_blank_values=True),
                    headers=headers,
                    body=body,
                    token=self._token(headers),
                )
                response = self._route(request)
            except _HubError as err:
                response = err.to_response()
            except Exception:  # a bug in this server: answer 500 and keep it for the test to see
                tb = traceback.format_exc()
                with self._lock:
                    self._errors.append(f"{handler.command} {handler.path}\n{tb}")
                response = _HubError(500, "hub_server internal error: " + tb.strip().splitlines()[-1]).to_response()

        response.headers.setdefault("X-Request-Id", headers.get("x-amzn-trace-id") or secrets.token_hex(8))
        truncate = fault.keep if fault is not None and fault.kind == "truncate" else None
        try:
            self._write(handler, response, truncate)
            record.status = response.status
        except OSError:  # the client went away (e.g. it timed out during a delay)
            handler.close_connection = True

    @staticmethod
    def _write(handler: _Handler, response: _Response, truncate: int | float | None) -> None:
        is_head = handler.command == "HEAD"
        body = b"" if is_head else response.body
        length = response.content_length if response.content_length is not None else len(response.body)
        handler.send_response(response.status)
        for name, value in response.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(length))
        handler.end_headers()
        if truncate is not None and body:
            keep = int(len(body) * truncate) if isinstance(truncate, float) else int(truncate)
            handler.wfile.write(body[: max(0, min(keep, len(body) - 1))])
            handler.wfile.flush()
            handler.close_connection = True  # EOF before Content-Length bytes: a truncated download
            return
        if body:
            handler.wfile.write(body)
        handler.wfile.flush()

    def _token(self, headers: Mapping[str, str]) -> str | None:
        auth = headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            return None
        token = auth[7:].strip()
        if not token:
            return None
        if self.tokens is not None and token not in self.tokens:
            # Exact message matters: the client does *not* turn this one into RepositoryNotFoundError.
            raise _HubError(401, "Invalid credentials in Authorization header")
        return token

    # ---- routing ---------------------------------------------------------------------------------------------

    def _route(self, req: _Request) -> _Response:
        seg, method = req.segments, req.method
        if seg[:1] == ["api"]:
            if seg[1:] == ["whoami-v2"] and method == "GET":
                return self._whoami(req)
            if seg[1:] == ["repos", "create"] and method == "POST":
                return self._create_repo(req)
            if seg[1:] == ["repos", "delete"] and method == "DELETE":
                return self._delete_repo(req)
            if seg[1:] == ["validate-yaml"] and method == "POST":
                return self._validate_yaml(req)
            if seg[1:] == ["agent-harnesses"] and method == "GET":
                # utils/_detect_agent.py fetches this once per process (for the user agent): empty = no agent.
                return _json({"standardEnvVars": [], "harnesses": {}})
            if len(seg) >= 2 and seg[1] in _API_TYPES:
                repo_type = _API_TYPES[seg[1]]
                if len(seg) == 2 and method == "GET":
                    return self._list_repos(req, repo_type)
                return self._route_repo_api(req, repo_type, seg[2:])
        if seg[:1] == ["__lfs__"] and len(seg) == 2 and method == "PUT":
            return self._lfs_put(req, seg[1])
        if seg[:1] == ["__cdn__"] and len(seg) == 2 and method in ("GET", "HEAD"):
            return self._cdn_get(req, seg[1])
        # /[datasets/|spaces/]{repo}.git/info/lfs/objects/{batch,verify}
        lfs = re.fullmatch(r"/(?:(datasets|spaces)/)?(.+?)\.git/info/lfs/objects/(batch|verify)", req.path)
        if lfs and method == "POST":
            repo_type = _API_TYPES[lfs.group(1)] if lfs.group(1) else "model"
            if lfs.group(3) == "batch":
                return self._lfs_batch(req, repo_type, lfs.group(2))
            return self._lfs_verify(req, repo_type, lfs.group(2))
        # /[datasets/|spaces/]{repo_id}/resolve/{rev}/{path}
        if method in ("GET", "HEAD"):
            rest, repo_type = seg, "model"
            if rest[:1] in (["datasets"], ["spaces"]):
                repo_type, rest = _API_TYPES[rest[0]], rest[1:]
            for n in (2, 1):  # "namespace/name" first, then canonical "name"
                if len(rest) > n + 2 and rest[n] == "resolve":
                    return self._resolve(req, repo_type, "/".join(rest[:n]), rest[n + 1], "/".join(rest[n + 2:]))
        raise _HubError(404, f"Not found: {method} {req.path} (not implemented by hub_server)")

    def _route_repo_api(self, req: _Request, repo_type: str, rest: list[str]) -> _Response:
        if not rest or not rest[0]:
            raise _HubError(404, "Missing repo id")
        if len(rest) >= 2 and rest[1] not in _API_SUBRESOURCES:
            repo_id, sub = f"{rest[0]}/{rest[1]}", rest[2:]
        else:
            repo_id, sub = rest[0], rest[1:]
        action, args = (sub[0], sub[1:]) if sub else ("", [])
        method = req.method
        if action == "" and method == "GET":
            return self._repo_info(req, repo_type, repo_id, None)
        if action == "revision" and len(args) == 1 and method == "GET":
            return self._repo_info(req, repo_type, repo_id, args[0])
        if action == "tree" and args and method == "GET":
            return self._tree(req, repo_type, repo_id, args[0], "/".join(args[1:]))
        if action == "paths-info" and len(args) == 1 and method == "POST":
            return self._paths_info(req, repo_type, repo_id, args[0])
        if action == "refs" and not args and method == "GET":
            return self._refs(req, repo_type, repo_id)
        if action == "commits" and len(args) == 1 and method == "GET":
            return self._commits(req, repo_type, repo_id, args[0])
        if action == "preupload" and len(args) == 1 and method == "POST":
            return self._preupload(req, repo_type, repo_id, args[0])
        if action == "commit" and len(args) == 1 and method == "POST":
            return self._commit(req, repo_type, repo_id, args[0])
        raise _HubError(404, f"Not found: {method} {req.path} (not implemented by hub_server)")

    # ---- access control --------------------------------------------------------------------------------------

    def _readable_repo(self, req: _Request, repo_type: str, repo_id: str) -> _Repo:
        """The repo, or the Hub's answer for a missing/private one: 401 without a token, 404 with one."""
        repo = self._repos.get((repo_type, repo_id))
        if repo is None or (repo.private and req.token is None):
            status = 404 if req.token else 401
            raise _HubError(status, "Repository not found", "RepoNotFound")
        return repo

    def _writable_repo(self, req: _Request, repo_type: str, repo_id: str) -> _Repo:
        if self.require_token_for_write and req.token is None:
            raise _HubError(401, "Repository not found", "RepoNotFound")
        return self._readable_repo(req, repo_type, repo_id)

    # ---- account / repo management ---------------------------------------------------------------------------

    def _whoami(self, req: _Request) -> _Response:
        # HfApi.whoami; the client itself refuses to call it without a token.
        if req.token is None:
            raise _HubError(401, "Invalid credentials in Authorization header")
        return _json({
            "type": "user", "id": "0" * 24, "name": self.user, "fullname": self.user.title(),
            "email": f"{self.user}@example.invalid", "emailVerified": True, "isPro": False, "canPay": False,
            "orgs": [], "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}},
        })

    def _create_repo(self, req: _Request) -> _Response:
        # HfApi.create_repo / ModelHubMixin.push_to_hub: {"name", "organization", "visibility"|"private", "type"}
        if self.require_token_for_write and req.token is None:
            raise _HubError(401, "Invalid credentials in Authorization header")
        payload = req.json() or {}
        name, organization = payload.get("name"), payload.get("organization")
        repo_type = payload.get("type") or "model"
        if repo_type not in _URL_PREFIX:
            raise _HubError(400, f"Invalid repo type: {repo_type}")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][\w.-]{0,95}", name) or "--" in name \
                or ".." in name:
            raise _HubError(400, f"Invalid repo name: {name!r}")
        repo_id = f"{organization or self.user}/{name}"
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        url = f"{self.url}/{_URL_PREFIX[repo_type]}{repo_id}"
        with self._lock:
            if (repo_type, repo_id) in self._repos:
                # Must not contain "another conflicting operation is in progress": the client retries that forever.
                # The Hub's 409 body carries the repo url: create_repo(exist_ok=True) reads it.
                raise _HubError(409, f"You already created this {repo_type} repo", headers={},
                                extra={"url": url}) from None
            self.create_repo(repo_id, private=private, repo_type=repo_type)
            return _json({"url": url, "name": repo_id, "id": self._repos[(repo_type, repo_id)].object_id})

    def _delete_repo(self, req: _Request) -> _Response:
        payload = req.json() or {}
        repo_id = f"{payload.get('organization') or self.user}/{payload.get('name')}"
        repo_type = payload.get("type") or "model"
        with self._lock:
            self._writable_repo(req, repo_type, repo_id)
            del self._repos[(repo_type, repo_id)]
        return _Response(200)

    def _validate_yaml(self, req: _Request) -> _Response:
        # create_commit posts README.md here first; the client reads JSON even on 400.
        content = (req.json() or {}).get("content", "")
        try:
            _front_matter(content, strict=True)
        except ValueError as err:
            return _json({"errors": [{"message": str(err)}], "warnings": []}, status=400)
        return _json({"errors": [], "warnings": []})

    # ---- repo information ------------------------------------------------------------------------------------

    def _card_data(self, commit: _Commit) -> dict[str, Any]:
        if "README.md" not in commit.files:
            return {}
        return _front_matter(self._read_object(commit.files["README.md"].sha256).decode("utf-8", "replace"))

    @staticmethod
    def _tags(card: Mapping[str, Any]) -> list[str]:
        """Tags as the Hub derives them from the model card metadata."""
        def as_list(value: Any) -> list[str]:
            if value is None:
                return []
            return [str(v) for v in value] if isinstance(value, list) else [str(value)]

        tags = as_list(card.get("tags"))
        tags += as_list(card.get("library_name")) + as_list(card.get("pipeline_tag"))
        tags += [f"dataset:{d}" for d in as_list(card.get("datasets"))]
        tags += as_list(card.get("language"))
        tags += [f"license:{lic}" for lic in as_list(card.get("license"))]
        tags.append("region:us")
        return list(dict.fromkeys(tags))

    def _info_payload(self, req: _Request, repo: _Repo, commit: _Commit, *, blobs: bool) -> dict:
        card = self._card_data(commit)
        siblings = []
        for path in sorted(commit.files):
            entry = commit.files[path]
            sibling: dict[str, Any] = {"rfilename": path}
            if blobs:
                sibling.update(size=entry.size, blobId=entry.blob_id)
                if entry.lfs:
                    sibling["lfs"] = {"sha256": entry.sha256, "size": entry.size,
                                      "pointerSize": len(_lfs_pointer(entry.sha256, entry.size))}
            siblings.append(sibling)
        data: dict[str, Any] = {
            "_id": repo.object_id,
            "id": repo.repo_id,
            "author": repo.repo_id.split("/")[0] if "/" in repo.repo_id else None,
            "sha": commit.oid,
            "lastModified": _iso(repo.commits[repo.branches["main"]].date if "main" in repo.branches else commit.date),
            "createdAt": _iso(repo.created_at),
            "private": repo.private,
            "gated": repo.gated,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": self._tags(card),
            "library_name": card.get("library_name"),
            "pipeline_tag": card.get("pipeline_tag"),
            "siblings": siblings,
            "usedStorage": sum(e.size for e in commit.files.values()),
        }
        if card:
            data["cardData"] = card
        if req.flag("config") and "config.json" in commit.files:
            with contextlib.suppress(ValueError):
                data["config"] = json.loads(self._read_object(commit.files["config.json"].sha256))
        expand = req.query.get("expand") or req.query.get("expand[]")
        if expand:  # the Hub returns only the requested properties
            data = {k: v for k, v in data.items() if k in {"_id", "id", *expand}}
        return data

    def _repo_info(self, req: _Request, repo_type: str, repo_id: str, revision: str | None) -> _Response:
        # HfApi.model_info / repo_info / repo_exists / snapshot_download (sha of a branch)
        with self._lock:
            repo = self._readable_repo(req, repo_type, repo_id)
            commit = repo.resolve(revision or "main")
            return _json(self._info_payload(req, repo, commit, blobs=req.flag("blobs")))

    def _list_repos(self, req: _Request, repo_type: str) -> _Response:
        # HfApi.list_models(filter=..., author=..., search=..., limit=..., sort=..., full=..., cardData=...)
        filters = [f for value in req.query.get("filter", []) for f in value.split(",") if f]
        author, search = req.param("author"), (req.param("search") or "").lower()
        limit = int(req.param("limit") or 0) or None
        full = req.flag("full")
        items = []
        with self._lock:
            for repo in self._repos.values():
                if repo.repo_type != repo_type or "main" not in repo.branches:
                    continue
                if repo.private and req.token is None:
                    continue
                if author and not repo.repo_id.startswith(f"{author}/"):
                    continue
                if search and search not in repo.repo_id.lower():
                    continue
                commit = repo.commits[repo.branches["main"]]
                tags = self._tags(self._card_data(commit))
                if not all(f in tags or f == repo.repo_id for f in filters):
                    continue
                data = self._info_payload(req, repo, commit, blobs=False)
                if not full and req.param("expand") is None:
                    # Like the Hub: the listing is lighter than model_info unless full/cardData is asked for.
                    drop = {"siblings", "usedStorage", "author", "gated", "disabled"}
                    if not req.flag("cardData"):
                        drop.add("cardData")
                    data = {k: v for k, v in data.items() if k not in drop}
                items.append(data)
        sort = req.param("sort")
        if sort in ("lastModified", "createdAt"):
            items.sort(key=lambda d: d.get(sort) or "", reverse=req.param("direction") != "1")
        else:
            items.sort(key=lambda d: d["id"])
        return _json(items[:limit] if limit else items)

    def _tree_entries(self, commit: _Commit, prefix: str, recursive: bool) -> list[dict[str, Any]]:
        prefix = prefix.strip("/")
        base = f"{prefix}/" if prefix else ""
        if prefix and prefix not in commit.files and not any(p.startswith(base) for p in commit.files):
            raise _HubError(404, f"{prefix} does not exist on \"{commit.oid}\"", "EntryNotFound")
        files: dict[str, _FileEntry] = {}
        dirs: set[str] = set()
        for path, entry in commit.files.items():
            if not path.startswith(base):
                continue
            rel = path[len(base):]
            parts = rel.split("/")
            for i in range(1, len(parts)):
                if recursive or i == 1:
                    dirs.add(base + "/".join(parts[:i]))
            if recursive or len(parts) == 1:
                files[path] = entry
        out: list[dict[str, Any]] = []
        for d in sorted(dirs):
            tree_id = hashlib.sha1(
                json.dumps(sorted((p, e.blob_id) for p, e in commit.files.items() if p.startswith(d + "/"))).encode()
            ).hexdigest()
            out.append({"type": "directory", "oid": tree_id, "size": 0, "path": d})
        for path in sorted(files):
            out.append(self._file_payload(path, files[path]))
        return out

    @staticmethod
    def _file_payload(path: str, entry: _FileEntry) -> dict[str, Any]:
        data: dict[str, Any] = {"type": "file", "oid": entry.blob_id, "size": entry.size, "path": path}
        if entry.lfs:
            data["lfs"] = {"oid": entry.sha256, "size": entry.size,
                           "pointerSize": len(_lfs_pointer(entry.sha256, entry.size))}
        return data

    def _tree(self, req: _Request, repo_type: str, repo_id: str, revision: str, path: str) -> _Response:
        # list_repo_tree / list_repo_files / snapshot_download / upload_folder(delete_patterns=...)
        with self._lock:
            commit = self._readable_repo(req, repo_type, repo_id).resolve(revision)
            return _json(self._tree_entries(commit, path, req.flag("recursive")))

    def _paths_info(self, req: _Request, repo_type: str, repo_id: str, revision: str) -> _Response:
        # get_paths_info: form-encoded "paths" (repeated) and "expand"
        form = parse_qs(req.body.decode(), keep_blank_values=True)
        if "json" in (req.headers.get("content-type") or ""):
            form = {"paths": list((req.json() or {}).get("paths", []))}
        with self._lock:
            commit = self._readable_repo(req, repo_type, repo_id).resolve(revision)
            out = []
            for path in form.get("paths", []):
                path = path.strip("/")
                if path in commit.files:
                    out.append(self._file_payload(path, commit.files[path]))
                elif any(p.startswith(path + "/") for p in commit.files):
                    out.append({"type": "directory", "oid": hashlib.sha1(path.encode()).hexdigest(), "path": path})
            return _json(out)

    def _refs(self, req: _Request, repo_type: str, repo_id: str) -> _Response:
        with self._lock:
            repo = self._readable_repo(req, repo_type, repo_id)
            branches = [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": oid} for b, oid in repo.branches.items()]
            return _json({"branches": branches, "converts": [], "tags": [], "pullRequests": []})

    def _commits(self, req: _Request, repo_type: str, repo_id: str, revision: str) -> _Response:
        # list_repo_commits: newest first
        with self._lock:
            repo = self._readable_repo(req, repo_type, repo_id)
            commit: _Commit | None = repo.resolve(revision)
            out = []
            while commit is not None:
                out.append({"id": commit.oid, "title": commit.title, "message": commit.message,
                            "date": _iso(commit.date), "authors": [{"user": self.user}]})
                commit = repo.commits.get(commit.parent) if commit.parent else None
            return _json(out)

    # ---- uploads ---------------------------------------------------------------------------------------------

    def _preupload(self, req: _Request, repo_type: str, repo_id: str, revision: str) -> _Response:
        # create_commit -> _fetch_upload_modes: "regular" (inline base64 in the commit) or "lfs" per file.
        # "oid" is the remote file's id (sha256 for LFS, git sha1 otherwise): the client skips unchanged files.
        payload = req.json() or {}
        with self._lock:
            repo = self._writable_repo(req, repo_type, repo_id)
            commit = repo.resolve(revision) if revision in repo.branches or revision in repo.commits else None
            if commit is None and "main" in repo.branches:
                commit = repo.commits[repo.branches["main"]]  # a new branch starts from main
            patterns = self._lfs_patterns(commit)
            files = []
            for item in payload.get("files", []):
                path, size = item["path"], int(item["size"])
                sample = base64.b64decode(item.get("sample") or "")
                mode = "lfs" if self._is_lfs(path, size, sample, patterns) else "regular"
                existing = commit.files.get(path) if commit else None
                oid = None if existing is None else (existing.sha256 if existing.lfs else existing.blob_id)
                files.append({"path": path, "uploadMode": mode, "shouldIgnore": False, "oid": oid})
            return _json({"files": files, "commitOid": commit.oid if commit else None})

    def _lfs_batch(self, req: _Request, repo_type: str, repo_id: str) -> _Response:
        # LFS batch API (lfs.post_lfs_batch_info): objects already stored get no "actions" => client skips them.
        payload = req.json() or {}
        if payload.get("operation") != "upload":
            raise _HubError(400, "hub_server only implements the 'upload' LFS operation")
        with self._lock:
            self._writable_repo(req, repo_type, repo_id)
        prefix = _URL_PREFIX[repo_type]
        objects = []
        for obj in payload.get("objects", []):
            oid, size = str(obj.get("oid")), int(obj.get("size", -1))
            if not re.fullmatch(r"[0-9a-f]{64}", oid) or size < 0:
                objects.append({"oid": oid, "size": size, "error": {"code": 422, "message": "Invalid oid or size"}})
            elif self._has_object(oid):
                objects.append({"oid": oid, "size": size})
            else:
                objects.append({"oid": oid, "size": size, "authenticated": True, "actions": {
                    "upload": {"href": f"{self.url}/__lfs__/{oid}", "header": {}},
                    "verify": {"href": f"{self.url}/{prefix}{repo_id}.git/info/lfs/objects/verify", "header": {}},
                }})
        return _Response(200, {"Content-Type": "application/vnd.git-lfs+json"},
                         json.dumps({"transfer": "basic", "objects": objects, "hash_algo": "sha256"}).encode())

    def _lfs_put(self, req: _Request, oid: str) -> _Response:
        # The upload href from the batch answer (lfs._upload_single_part): content must hash to the oid.
        actual = hashlib.sha256(req.body).hexdigest()
        if actual != oid:
            raise _HubError(400, f"Content sha256 {actual} does not match {oid}")
        self._store_object(req.body)
        return _Response(200, {"ETag": f'"{hashlib.md5(req.body).hexdigest()}"'})  # an S3-style ETag

    def _lfs_verify(self, req: _Request, repo_type: str, repo_id: str) -> _Response:
        payload = req.json() or {}
        oid, size = str(payload.get("oid")), payload.get("size")
        if not self._has_object(oid):
            raise _HubError(404, f"LFS object {oid} not found")
        if size is not None and (self._objects / oid).stat().st_size != int(size):
            raise _HubError(422, f"LFS object {oid} has a different size")
        return _json({"success": True})

    def _commit(self, req: _Request, repo_type: str, repo_id: str, revision: str) -> _Response:
        # _commit_api._send_commit: NDJSON lines {"key": header|file|lfsFile|deletedFile|deletedFolder, "value"}
        if req.flag("create_pr"):
            raise _HubError(400, "hub_server does not implement pull requests (create_pr)")
        lines = [json.loads(line) for line in req.body.decode().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise _HubError(400, "The first line of a commit must be its header")
        header = lines[0]["value"]
        title = header.get("summary") or ""
        if not title:
            raise _HubError(400, "Commit summary must not be empty")
        with self._lock:
            repo = self._writable_repo(req, repo_type, repo_id)
            if re.fullmatch(r"[0-9a-f]{40}", revision):
                raise _HubError(400, f"Cannot commit to a commit sha ({revision}): use a branch name")
            parent = repo.commits[repo.branches[revision]] if revision in repo.branches else \
                repo.commits[repo.branches["main"]]  # committing to a new branch starts it from main
            parent_commit = header.get("parentCommit")
            if parent_commit and not parent.oid.startswith(parent_commit):
                raise _HubError(412, "A commit has happened since. Please refresh and try again.")
            files = dict(parent.files)
            for line in lines[1:]:
                key, value = line.get("key"), line.get("value") or {}
                path = _check_repo_path(value.get("path", ""))
                if key == "file":
                    if value.get("encoding", "base64") != "base64":
                        raise _HubError(400, f"Unsupported encoding {value.get('encoding')}")
                    content = base64.b64decode(value.get("content", ""))
                    files[path] = self._entry_for(self._store_object(content), len(content), False, content)
                elif key == "lfsFile":
                    oid = str(value.get("oid"))
                    if not self._has_object(oid):
                        raise _HubError(
                            422, f"Your push was rejected because an LFS pointer pointed to a file that does not "
                            f"exist. For instance: {path} (oid {oid})")
                    size = (self._objects / oid).stat().st_size
                    files[path] = self._entry_for(oid, size, True, None)
                elif key == "deletedFile":
                    if path not in files:
                        raise _HubError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                    del files[path]
                elif key == "deletedFolder":
                    for existing in [p for p in files if p.startswith(path.rstrip("/") + "/")]:
                        del files[existing]
                else:
                    raise _HubError(400, f"Unknown commit operation {key!r}")
            oid = self._record_commit(repo, revision, parent, files, title, header.get("description") or "")
        url = f"{self.url}/{_URL_PREFIX[repo_type]}{repo_id}/commit/{oid}"
        return _json({"success": True, "commitOid": oid, "commitUrl": url, "commitMessage": title,
                      "hookOutput": "", "pullRequestUrl": None})

    # ---- downloads -------------------------------------------------------------------------------------------

    def _resolve(self, req: _Request, repo_type: str, repo_id: str, revision: str, path: str) -> _Response:
        # hf_hub_download: HEAD for metadata (X-Repo-Commit, ETag/X-Linked-Etag, size), then GET (maybe Range).
        with self._lock:
            repo = self._readable_repo(req, repo_type, repo_id)
            if repo.gated and req.token not in repo.gated_tokens:
                status = 403 if req.token else 401
                raise _HubError(status, f"Access to {repo_type} {repo_id} is restricted. You must have access to it "
                                        "and be authenticated to access it. Please log in.", "GatedRepo")
            commit = repo.resolve(revision)
            entry = commit.files.get(path)
            if entry is None:
                # X-Repo-Commit lets the client cache the absence of the file (.no_exist/{commit}/{path}).
                raise _HubError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": commit.oid})
        headers = {
            "X-Repo-Commit": commit.oid,
            "ETag": f'"{entry.etag}"',
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream" if entry.lfs else "text/plain; charset=utf-8",
            "Content-Disposition": f'inline; filename*=UTF-8\'\'{path.rsplit("/", 1)[-1]}',
        }
        if entry.lfs:
            headers["X-Linked-Etag"] = f'"{entry.sha256}"'
            headers["X-Linked-Size"] = str(entry.size)
            if self.lfs_cdn_host:
                headers["Location"] = f"http://{self.lfs_cdn_host}:{self.port}/__cdn__/{entry.sha256}"
                return _Response(302, headers)
        return self._serve_object(req, entry.sha256, entry.size, headers)

    def _cdn_get(self, req: _Request, sha256: str) -> _Response:
        # The "CDN" behind LFS redirects (lfs_cdn_host): like a signed URL, it needs no token.
        if not self._has_object(sha256):
            raise _HubError(404, "NoSuchKey")
        size = (self._objects / sha256).stat().st_size
        return self._serve_object(req, sha256, size, {"ETag": f'"{sha256}"', "Accept-Ranges": "bytes",
                                                      "Content-Type": "application/octet-stream"})

    def _serve_object(self, req: _Request, sha256: str, size: int, headers: dict[str, str]) -> _Response:
        """200 with the whole object, or 206 for a ``Range`` (the client resumes broken downloads with one)."""
        range_header = req.headers.get("range")
        if req.method == "HEAD":
            return _Response(200, headers, content_length=size)
        content = self._read_object(sha256)
        if not range_header:
            return _Response(200, headers, content)
        match = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", range_header)
        if not match or match.groups() == ("", ""):
            return _Response(416, {**headers, "Content-Range": f"bytes */{size}"})
        start_s, end_s = match.groups()
        if start_s:
            start, end = int(start_s), min(int(end_s) if end_s else size - 1, size - 1)
        else:  # suffix range: the last N bytes
            start, end = max(0, size - int(end_s)), size - 1
        if start >= size or start > end:
            return _Response(416, {**headers, "Content-Range": f"bytes */{size}"})
        return _Response(206, {**headers, "Content-Range": f"bytes {start}-{end}/{size}"}, content[start:end + 1])


# --------------------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------------------


def _gitattributes_lfs_patterns(content: bytes) -> list[str]:
    lines = content.decode("utf-8", "replace").splitlines()
    return [line.split()[0] for line in lines if "filter=lfs" in line and not line.lstrip().startswith("#")]


def _check_repo_path(path: str) -> str:
    """Reject paths the Hub would reject (and that could escape a checkout)."""
    if not path or path.startswith("/") or "\\" in path or any(p in ("", ".", "..") for p in path.split("/")) \
            or path.split("/")[0] == ".git":
        raise _HubError(400, f"Invalid path in repo: {path!r}")
    return path


def _front_matter(text: str, *, strict: bool = False) -> dict[str, Any]:
    """Parse the YAML metadata block at the top of a model card (``---\\n...\\n---``)."""
    match = re.match(r"^---\s*\n(.*?)\n---\s*(?:\n|$)", text.lstrip("\ufeff"), re.DOTALL)
    if not match:
        return {}
    try:
        import yaml  # a dependency of huggingface_hub
    except ImportError:  # pragma: no cover - degrade to "no metadata" rather than failing
        return {}
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as err:
        if strict:
            raise ValueError(f"Invalid YAML in model card metadata: {err}") from None
        return {}
    if data is None:
        return {}
    if not isinstance(data, dict):
        if strict:
            raise ValueError("Model card metadata must be a YAML mapping")
        return {}
    return data
