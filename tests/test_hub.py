"""FastStyle against a Hub (the local test server): round trips and every failure mode."""
from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
import torch

from fst import FastStyle, HubError, ModelLoadError
from hub_server import patch_client_retry_sleep


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    return FastStyle(channels=4, num_res_blocks=1).eval()


@pytest.fixture()
def published(hub, small_model, request):
    repo_id = f"user/rt-{request.node.name[:40].replace('[', '-').replace(']', '')}"
    small_model.push_to_hub(repo_id)
    return repo_id


def test_push_then_load_from_a_clean_cache_gives_the_same_outputs(published, small_model, tmp_path):
    loaded = FastStyle.from_pretrained(published, cache_dir=tmp_path / "cache")
    x = torch.rand(1, 3, 24, 24)
    assert torch.equal(loaded.stylize(x), small_model.stylize(x))


def test_revision_pinning(hub, published, small_model, tmp_path):
    first = hub.head(published)
    torch.manual_seed(5)
    FastStyle(channels=4, num_res_blocks=1).push_to_hub(published)
    assert hub.head(published) != first
    pinned = FastStyle.from_pretrained(published, revision=first, cache_dir=tmp_path)
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(pinned.stylize(x), small_model.stylize(x))


def test_missing_repo_is_a_clear_error(tmp_path):
    with pytest.raises(HubError, match="model repository 'user/nothing-here' not found on the Hub"):
        FastStyle.from_pretrained("user/nothing-here", cache_dir=tmp_path)


def test_private_repo_without_token(hub, small_model, tmp_path):
    small_model.push_to_hub("user/secret", private=True, token="hf_owner")
    with pytest.raises(HubError, match="or it is private"):
        FastStyle.from_pretrained("user/secret", cache_dir=tmp_path)


def test_pickle_only_repo_is_refused_without_unpickling(hub, bad_inputs, tmp_path):
    hub.seed_repo("user/pickled", bad_inputs / "models" / "pickle_only_pytorch_model_bin")
    with pytest.raises(ModelLoadError, match=r"pickle checkpoints \(pytorch_model.bin\) are not loaded"):
        FastStyle.from_pretrained("user/pickled", cache_dir=tmp_path)


def test_server_errors_give_a_clear_bounded_failure(hub, published, tmp_path, monkeypatch):
    patch_client_retry_sleep(monkeypatch)
    with hub.fault("/resolve/", 500, times=None):
        start = time.perf_counter()
        with pytest.raises(HubError):
            FastStyle.from_pretrained(published, cache_dir=tmp_path)
        assert time.perf_counter() - start < 10


def test_a_hanging_hub_is_abandoned_after_the_deadline(hub, published, tmp_path, monkeypatch):
    monkeypatch.setenv("FST_HUB_DEADLINE", "1.5")
    with hub.fault("/resolve/", "delay", seconds=8, times=None):
        start = time.perf_counter()
        with pytest.raises(HubError, match=r"downloading .* from the Hub took over 2 s"):
            FastStyle.from_pretrained(published, cache_dir=tmp_path)
        assert time.perf_counter() - start < 4


def test_cached_copy_is_used_when_the_hub_fails(hub, published, small_model, tmp_path, monkeypatch):
    FastStyle.from_pretrained(published, cache_dir=tmp_path)
    patch_client_retry_sleep(monkeypatch)
    with hub.fault("/resolve/", "drop", times=None):
        loaded = FastStyle.from_pretrained(published, cache_dir=tmp_path)
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(loaded.stylize(x), small_model.stylize(x))


def test_truncated_download_leaves_no_corrupt_cache(hub, published, small_model, tmp_path, monkeypatch):
    patch_client_retry_sleep(monkeypatch)
    with hub.fault("/resolve/main/model.safetensors", "truncate", keep=100, times=None):
        with pytest.raises(HubError):
            FastStyle.from_pretrained(published, cache_dir=tmp_path)
    loaded = FastStyle.from_pretrained(published, cache_dir=tmp_path)   # the next start works
    x = torch.rand(1, 3, 16, 16)
    assert torch.equal(loaded.stylize(x), small_model.stylize(x))


def test_offline_mode_makes_no_request(hub, published, tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    hub.clear_requests()
    start = time.perf_counter()
    with pytest.raises(HubError, match="not in the local cache"):
        FastStyle.from_pretrained(published, cache_dir=tmp_path)
    assert time.perf_counter() - start < 2
    assert hub.requests == []


@pytest.fixture()
def snapshot(published, tmp_path) -> Path:
    """The Hub cache's folder of the published repo: files are relative symlinks into ../../blobs/."""
    from huggingface_hub import hf_hub_download

    for name in ("config.json", "model.safetensors"):
        path = Path(hf_hub_download(published, name, cache_dir=tmp_path / "cache"))
    folder = path.parent
    assert folder.parent.name == "snapshots" and (folder / "model.safetensors").is_symlink()
    assert os.readlink(folder / "model.safetensors").startswith("../../blobs/")
    return folder


def test_a_hub_cache_snapshot_folder_loads(snapshot, small_model, tmp_path):
    link = tmp_path / "link-to-snapshot"
    link.symlink_to(snapshot, target_is_directory=True)
    x = torch.rand(1, 3, 16, 16)
    for folder in (snapshot, link):
        assert torch.equal(FastStyle.from_pretrained(folder).stylize(x), small_model.stylize(x))


def test_a_symlink_out_of_the_hub_cache_repo_is_refused(snapshot, tmp_path):
    outside = tmp_path / "cache" / "elsewhere.safetensors"      # in the cache, but not in this repo's folder
    shutil.copyfile(snapshot / "model.safetensors", outside)
    (snapshot / "model.safetensors").unlink()
    (snapshot / "model.safetensors").symlink_to(os.path.relpath(outside, snapshot))
    with pytest.raises(ModelLoadError, match="model.safetensors resolves outside the model folder"):
        FastStyle.from_pretrained(snapshot)


@pytest.mark.parametrize("layout", ["plain", "snapshots_without_cache"])
def test_a_symlink_out_of_a_plain_folder_is_refused(small_model, tmp_path, layout):
    # "snapshots_without_cache": looks like snapshots/<rev>/ -> ../../blobs/ but is not in a models--* cache folder
    root = tmp_path / ("models" if layout == "plain" else "repo")
    small_model.save_pretrained(root / "blobs")
    folder = root / ("style" if layout == "plain" else "snapshots/abc123")
    folder.mkdir(parents=True)
    shutil.copyfile(root / "blobs" / "config.json", folder / "config.json")
    (folder / "model.safetensors").symlink_to(os.path.relpath(root / "blobs" / "model.safetensors", folder))
    with pytest.raises(ModelLoadError, match="model.safetensors resolves outside the model folder"):
        FastStyle.from_pretrained(folder)
