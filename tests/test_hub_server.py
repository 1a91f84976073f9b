"""The local Hub server (tests/hub_server.py) driven by the real huggingface_hub 2.4 client.

These tests prove two things: the server speaks the protocol the client expects (uploads through LFS, cache
layout, revision pinning, listing, auth), and each injected fault surfaces on the client side as the exception
a caller of huggingface_hub would see against the real Hub. Where a count of requests is asserted, it
documents huggingface_hub 2.4.0's retry behaviour (pinned), not a requirement of ours.

Every test uses its own repo names and cache dir, and removes its faults, so it can share the session server.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
from hub_server import HubServer, LoggedRequest, patch_client_retry_sleep
from huggingface_hub import HfApi, ModelHubMixin, constants, hf_hub_download, snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.file_download import get_hf_file_metadata, hf_hub_url

TOKEN = "hf_test_token"


# ---- fixtures ------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _server_had_no_internal_errors(hub: HubServer) -> Iterator[None]:
    """A bug in the server shows up as a 500 the client may retry or hide: fail loudly instead."""
    before = len(hub.errors)
    yield
    assert hub.errors[before:] == []


@pytest.fixture
def repo_id() -> str:
    return f"test-user/fst-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    """A clean HF cache per test, so every download really goes to the server."""
    return tmp_path / "hf-cache"


@pytest.fixture
def model_folder(tmp_path: Path) -> Path:
    """What fast-style publishes: a card with tags, a config, a small text file and ~1 MB of weights."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "README.md").write_text("---\nlibrary_name: fast-style\ntags:\n- style-transfer\n- candy\n---\n# Candy\n")
    (folder / "config.json").write_text('{"style": "candy", "channels": 32}')
    (folder / "notes.txt").write_text("trained on COCO 2017\n")
    (folder / "model.safetensors").write_bytes(os.urandom(1 << 20))
    return folder


@pytest.fixture
def api() -> HfApi:
    return HfApi(token=TOKEN)


@pytest.fixture
def slept(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The client's retry back-off, made instant; the list holds the sleeps it asked for."""
    return patch_client_retry_sleep(monkeypatch)


def _since(hub: HubServer, mark: int) -> list[LoggedRequest]:
    return hub.request_log[mark:]


def _upload(api: HfApi, repo_id: str, folder: Path, **kwargs) -> str:
    api.create_repo(repo_id, exist_ok=True, **kwargs)
    return api.upload_folder(repo_id=repo_id, folder_path=folder).oid


# ---- protocol: upload, download, revisions, listing, auth ----------------------------------------------------


def test_upload_folder_then_download_from_clean_cache(hub, api, repo_id, model_folder, cache_dir):
    mark = len(hub.request_log)
    sha = _upload(api, repo_id, model_folder)

    sent = [(r.method, r.path) for r in _since(hub, mark)]
    assert ("POST", f"/{repo_id}.git/info/lfs/objects/batch") in sent
    assert sum(1 for m, p in sent if m == "PUT" and p.startswith("/__lfs__/")) == 1  # only the weights
    assert hub.head(repo_id) == sha

    info = api.model_info(repo_id, files_metadata=True)
    by_name = {s.rfilename: s for s in info.siblings}
    assert by_name["model.safetensors"].lfs is not None and by_name["model.safetensors"].lfs.size == 1 << 20
    assert by_name["config.json"].lfs is None and by_name["notes.txt"].lfs is None
    assert info.sha == sha and "style-transfer" in info.tags

    for name in ("model.safetensors", "config.json", "notes.txt"):
        local = hf_hub_download(repo_id, name, cache_dir=cache_dir)
        assert Path(local).read_bytes() == (model_folder / name).read_bytes()
        assert f"/snapshots/{sha}/" in local
    assert api.list_repo_files(repo_id) == [".gitattributes", "README.md", "config.json", "model.safetensors",
                                            "notes.txt"]
    assert api.file_exists(repo_id, "config.json") and not api.file_exists(repo_id, "missing.bin")
    assert api.repo_exists(repo_id) and not api.repo_exists(f"{repo_id}-nope")

    # The metadata the client relies on for caching: sha256 ETag and size for LFS, X-Repo-Commit.
    meta = get_hf_file_metadata(hf_hub_url(repo_id, "model.safetensors"))
    assert meta.commit_hash == sha and meta.size == 1 << 20
    assert meta.etag == hashlib.sha256((model_folder / "model.safetensors").read_bytes()).hexdigest()


def test_revision_pinning_and_second_commit(hub, api, repo_id, model_folder, cache_dir):
    first = _upload(api, repo_id, model_folder)
    (model_folder / "config.json").write_text('{"style": "candy", "channels": 64}')
    second = api.upload_file(path_or_fileobj=model_folder / "config.json", path_in_repo="config.json",
                             repo_id=repo_id).oid
    assert second != first and hub.head(repo_id) == second

    def config(revision: str) -> str:
        return Path(hf_hub_download(repo_id, "config.json", revision=revision, cache_dir=cache_dir)).read_text()

    assert '"channels": 64' in config("main")
    assert '"channels": 32' in config(first)
    assert '"channels": 32' in config(first[:10])  # short shas resolve too
    assert api.model_info(repo_id, revision=first).sha == first
    assert [c.commit_id for c in api.list_repo_commits(repo_id)][:2] == [second, first]
    assert api.list_repo_refs(repo_id).branches[0].target_commit == second
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(repo_id, "config.json", revision="no-such-branch", cache_dir=cache_dir)
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download(repo_id, "nope.json", cache_dir=cache_dir)


def test_list_models_by_tag_search_author_and_limit(hub, api, repo_id, model_folder):
    _upload(api, repo_id, model_folder)
    hub.seed_repo(f"{repo_id}-private", model_folder, private=True)

    found = [m.id for m in api.list_models(filter="candy", search=repo_id.split("/")[1])]
    assert found == sorted([repo_id, f"{repo_id}-private"])  # a token sees private repos
    anonymous = [m.id for m in HfApi(token=False).list_models(filter=["candy", "fast-style"], author="test-user")]
    assert repo_id in anonymous and f"{repo_id}-private" not in anonymous
    assert not list(api.list_models(filter="no-such-tag"))
    assert len(list(api.list_models(limit=1))) == 1
    model = next(iter(api.list_models(search=repo_id, cardData=True)))
    assert model.sha == hub.head(repo_id) and model.card_data.library_name == "fast-style"


def test_private_repo_is_not_found_without_a_token(hub, repo_id, model_folder, cache_dir):
    HfApi(token=TOKEN).create_repo(repo_id, private=True)
    HfApi(token=TOKEN).upload_folder(repo_id=repo_id, folder_path=model_folder)
    anonymous = HfApi(token=False)

    with pytest.raises(RepositoryNotFoundError) as err:
        anonymous.model_info(repo_id)
    assert err.value.response.status_code == 401
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download(repo_id, "config.json", cache_dir=cache_dir, token=False)
    with pytest.raises(RepositoryNotFoundError):
        snapshot_download(repo_id, cache_dir=cache_dir, token=False)
    assert not anonymous.repo_exists(repo_id)
    assert hf_hub_download(repo_id, "config.json", cache_dir=cache_dir, token=TOKEN)


def test_seed_repo_snapshot_download_and_gated_repo(hub, repo_id, model_folder, cache_dir):
    sha = hub.seed_repo(repo_id, model_folder)
    snapshot = Path(snapshot_download(repo_id, cache_dir=cache_dir))
    assert snapshot.name == sha
    assert (snapshot / "model.safetensors").read_bytes() == (model_folder / "model.safetensors").read_bytes()

    gated = f"{repo_id}-gated"
    hub.seed_repo(gated, {"config.json": "{}"}, gated="manual")
    with pytest.raises(GatedRepoError):
        hf_hub_download(gated, "config.json", cache_dir=cache_dir, token=TOKEN)
    hub.grant_access(gated, TOKEN)
    assert Path(hf_hub_download(gated, "config.json", cache_dir=cache_dir, token=TOKEN)).read_text() == "{}"


def test_model_hub_mixin_push_to_hub(hub, repo_id, cache_dir):
    class TinyStyle(ModelHubMixin, library_name="fast-style", tags=["fst-mixin-test"]):
        def __init__(self, channels: int = 8) -> None:
            self.channels = channels

        def _save_pretrained(self, save_directory: Path) -> None:
            (save_directory / "model.safetensors").write_bytes(b"\0" * 4096)

    TinyStyle(channels=16).push_to_hub(repo_id, token=TOKEN)
    assert repo_id in [m.id for m in HfApi().list_models(filter="fst-mixin-test")]
    config = Path(hf_hub_download(repo_id, "config.json", cache_dir=cache_dir)).read_text()
    assert '"channels": 16' in config


def test_offline_mode_makes_no_request(hub, monkeypatch, repo_id, cache_dir):
    hub.seed_repo(repo_id, {"config.json": "{}"})
    cached = hf_hub_download(repo_id, "config.json", cache_dir=cache_dir)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # what HF_HUB_OFFLINE=1 sets at import time
    mark = len(hub.request_log)
    assert hf_hub_download(repo_id, "config.json", cache_dir=cache_dir) == cached
    with pytest.raises(LocalEntryNotFoundError):
        hf_hub_download(repo_id, "other.json", cache_dir=cache_dir)
    assert _since(hub, mark) == []


# ---- fault injection -----------------------------------------------------------------------------------------


def test_server_error_on_resolve_is_retried_then_surfaces(hub, slept, repo_id, cache_dir):
    hub.seed_repo(repo_id, {"config.json": "{}"})
    with hub.fault("/resolve/", 500, times=None) as fault, pytest.raises(LocalEntryNotFoundError) as err:
        hf_hub_download(repo_id, "config.json", cache_dir=cache_dir)
    # hf_hub_download hides the 500 behind "not in the local cache"; the HTTP error is the cause.
    assert isinstance(err.value.__cause__, HfHubHTTPError)
    assert err.value.__cause__.response.status_code == 500
    # 2.4.0: one HEAD without retry, then a HEAD with 5 retries backing off 1, 2, 4, 8, 8 s.
    assert fault.hits == 7 and slept == [1, 2, 4, 8, 8]


def test_api_errors_map_to_client_exceptions(hub, slept, api, repo_id, cache_dir):
    hub.seed_repo(repo_id, {"config.json": "{}"})
    with hub.fault(f"/api/models/{repo_id}$", 500) as fault, pytest.raises(HfHubHTTPError) as err:
        api.model_info(repo_id)  # a plain GET: no retry at all
    assert err.value.response.status_code == 500 and fault.hits == 1
    with hub.fault("/api/models$", 502) as fault:
        assert list(api.list_models(search=repo_id))  # paginated listings go through http_backoff
    assert fault.hits == 1 and slept == [1]


@pytest.mark.parametrize(
    ("status", "expected"),
    [(401, RepositoryNotFoundError), (403, GatedRepoError), (404, RemoteEntryNotFoundError)],
)
def test_injected_status_on_download_maps_like_the_hub(hub, repo_id, cache_dir, status, expected):
    hub.seed_repo(repo_id, {"config.json": "{}"})
    with hub.fault("/resolve/", status), pytest.raises(expected) as err:
        hf_hub_download(repo_id, "config.json", cache_dir=cache_dir)
    assert err.value.response.status_code == status


def test_upload_survives_503_on_preupload_and_resumes_after_503_on_commit(hub, slept, api, repo_id, model_folder):
    api.create_repo(repo_id)
    # preupload goes through http_backoff: the client retries by itself.
    with hub.fault("/preupload/", 503) as fault:
        api.upload_folder(repo_id=repo_id, folder_path=model_folder, allow_patterns=["*.txt"])
    assert fault.hits == 1 and slept == [1]

    # The commit call is a single POST (create_commit does not retry it): the caller must retry.
    mark = len(hub.request_log)
    with hub.fault(f"/api/models/{repo_id}/commit/main", 503) as fault, pytest.raises(HfHubHTTPError) as err:
        api.upload_folder(repo_id=repo_id, folder_path=model_folder)
    assert err.value.response.status_code == 503 and fault.hits == 1
    assert api.list_repo_files(repo_id) == [".gitattributes", "notes.txt"]
    sha = api.upload_folder(repo_id=repo_id, folder_path=model_folder).oid
    assert hub.head(repo_id) == sha and "model.safetensors" in hub.list_files(repo_id)
    # The weights reached LFS storage on the failed try: the second try does not upload them again.
    assert sum(1 for r in _since(hub, mark) if r.method == "PUT") == 1


def test_delay_trips_client_timeouts(hub, monkeypatch, slept, api, repo_id, cache_dir):
    hub.seed_repo(repo_id, {"config.json": "{}", "model.safetensors": os.urandom(4096)})
    # API calls: the default httpx2 client has no timeout; only an explicit one trips.
    with hub.fault(f"/api/models/{repo_id}$", "delay", seconds=1.5), pytest.raises(httpx2.TimeoutException):
        api.model_info(repo_id, timeout=0.3)

    # Metadata HEAD: `etag_timeout` trips, then hf_hub_download retries the HEAD (60 s timeout) and succeeds.
    with hub.fault("/resolve/", "delay", seconds=1.5, method="HEAD") as fault:
        assert hf_hub_download(repo_id, "config.json", cache_dir=cache_dir, etag_timeout=0.3)
    assert fault.hits == 1

    # Body GET: constants.HF_HUB_DOWNLOAD_TIMEOUT (env HF_HUB_DOWNLOAD_TIMEOUT, read at import) trips,
    # then http_get resumes after a 1 s pause.
    monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 0.3)
    with hub.fault("/resolve/", "delay", seconds=1.5, method="GET") as fault:
        assert hf_hub_download(repo_id, "model.safetensors", cache_dir=cache_dir)
    assert fault.hits == 1 and slept == [1]


def test_truncated_download_resumes_with_range_or_fails(
    hub, monkeypatch, slept, repo_id, model_folder, cache_dir, tmp_path
):
    hub.seed_repo(repo_id, model_folder)
    weights = (model_folder / "model.safetensors").read_bytes()
    # http_get only counts bytes handed out by iter_bytes(chunk_size=DOWNLOAD_CHUNK_SIZE = 10 MB): a file cut
    # off before 10 MB restarts from 0 without a Range. Smaller chunks make the resume path observable.
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 256)
    mark = len(hub.request_log)
    with hub.fault("/resolve/main/model.safetensors", "truncate", keep=1024) as fault:
        local = hf_hub_download(repo_id, "model.safetensors", cache_dir=cache_dir)
    assert Path(local).read_bytes() == weights and fault.hits == 1 and slept == [1]
    gets = [r for r in _since(hub, mark) if r.method == "GET"]
    assert [r.headers.get("range") for r in gets] == [None, "bytes=1024-"] and gets[1].status == 206

    # A server that keeps cutting the body off: the client gives up after 5 resumes.
    with hub.fault("/resolve/", "truncate", keep=0, times=None) as fault, pytest.raises(httpx2.RemoteProtocolError):
        hf_hub_download(repo_id, "model.safetensors", cache_dir=tmp_path / "other-cache")
    assert fault.hits == 6


def test_dropped_connection(hub, slept, api, repo_id, cache_dir):
    hub.seed_repo(repo_id, {"config.json": "{}"})
    # 2.4.0 quirk: the first metadata HEAD does not catch RemoteProtocolError, so one drop fails the download.
    with hub.fault("/resolve/", "drop", method="HEAD"), pytest.raises(httpx2.RemoteProtocolError):
        hf_hub_download(repo_id, "config.json", cache_dir=cache_dir)
    # http_backoff (listings, preupload, LFS) retries on it.
    with hub.fault("/api/models$", "drop") as fault:
        assert list(api.list_models(search=repo_id))
    assert fault.hits == 1 and slept == [1]


def test_lfs_cdn_redirect_strips_the_token(tmp_path):
    with HubServer(lfs_cdn_host="localhost") as cdn_hub:
        cdn_hub.seed_repo("test-user/cdn", {"model.safetensors": b"\0weights" * 100, "config.json": "{}"})
        local = hf_hub_download("test-user/cdn", "model.safetensors", cache_dir=tmp_path, token=TOKEN,
                                endpoint=cdn_hub.url)
        assert Path(local).read_bytes() == b"\0weights" * 100
        (cdn_get,) = [r for r in cdn_hub.request_log if r.path.startswith("/__cdn__/")]
        assert cdn_get.method == "GET" and "authorization" not in cdn_get.headers
        head = next(r for r in cdn_hub.request_log if r.method == "HEAD")
        assert head.status == 302 and head.headers.get("authorization") == f"Bearer {TOKEN}"


def test_stop_does_not_wait_for_a_pending_delay():
    server = HubServer().start()
    server.inject("/", "delay", seconds=60)
    client = threading.Thread(target=lambda: _swallow(lambda: httpx2.get(f"{server.url}/api/models", timeout=30)))
    client.start()
    deadline = time.monotonic() + 5
    while not server.request_log and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2
    client.join(timeout=5)
    assert not client.is_alive()


def test_range_requests(hub, repo_id):
    hub.seed_repo(repo_id, {"data.bin": bytes(range(256))})
    url = f"{hub.url}/{repo_id}/resolve/main/data.bin"
    part = httpx2.get(url, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == bytes(range(10, 20))
    assert part.headers["Content-Range"] == "bytes 10-19/256"
    assert httpx2.get(url, headers={"Range": "bytes=-6"}).content == bytes(range(250, 256))
    assert httpx2.get(url, headers={"Range": "bytes=300-"}).status_code == 416
    head = httpx2.head(url)
    assert head.headers["Content-Length"] == "256" and head.headers["X-Linked-Size"] == "256"


def test_fault_api_bookkeeping(hub):
    fault = hub.inject("/api/nothing", 500, times=2, method="GET")
    assert fault.hits == 0
    assert httpx2.get(f"{hub.url}/api/nothing").status_code == 500
    assert httpx2.post(f"{hub.url}/api/nothing").status_code == 404  # method filter: not consumed
    assert httpx2.get(f"{hub.url}/api/nothing").status_code == 500
    assert httpx2.get(f"{hub.url}/api/nothing").status_code == 404  # used up
    assert fault.hits == 2
    hub.remove_fault(fault)
    with pytest.raises(ValueError):
        hub.inject("/", "explode")
    response = httpx2.get(f"{hub.url}/test-user/none/resolve/main/x")
    assert response.status_code == 401 and response.headers["X-Error-Code"] == "RepoNotFound"
    assert ("GET", "/test-user/none/resolve/main/x") in hub.requests


def _swallow(fn) -> None:
    with contextlib.suppress(Exception):  # the request is expected to fail when the server stops
        fn()


def test_strict_tokens_and_authenticated_writes(tmp_path):
    with HubServer(tokens={TOKEN}, require_token_for_write=True) as strict:
        strict.seed_repo("test-user/public", {"config.json": "{}"})
        with pytest.raises(HfHubHTTPError) as err:  # a bad token is not "repo not found"
            HfApi(endpoint=strict.url, token="hf_wrong").model_info("test-user/public")
        assert err.value.response.status_code == 401 and not isinstance(err.value, RepositoryNotFoundError)
        with pytest.raises(HfHubHTTPError):
            HfApi(endpoint=strict.url, token=False).create_repo("anonymous-repo")
        assert HfApi(endpoint=strict.url, token=False).model_info("test-user/public").sha  # reads stay open
        assert HfApi(endpoint=strict.url, token=TOKEN).whoami()["name"] == "test-user"
        url = HfApi(endpoint=strict.url, token=TOKEN).create_repo("no-namespace")
        assert url.repo_id == "test-user/no-namespace"
