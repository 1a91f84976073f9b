"""An unreachable Hub fails fast and once; folders and Hub repo ids are never confused.

The Hub is a local address that refuses connections, or one that accepts them and never
answers (the ``dead_hub`` fixture), so these tests need no network.
"""
from __future__ import annotations

import logging
import time

import pytest
import torch

import fst.hub_access
import fst.settings
from fst import FastStyle, HubError, ModelLoadError
from fst.hub_access import HubUnreachable

UNREACHABLE = r"the Hub \(http://127\.0\.0\.1:\d+\) is unreachable"


@pytest.fixture(scope="module")
def small_model():
    torch.manual_seed(0)
    return FastStyle(channels=4, num_res_blocks=1).eval()


def _load_timed(source: str, **kwargs) -> tuple[float, BaseException | FastStyle]:
    start = time.perf_counter()
    try:
        result: BaseException | FastStyle = FastStyle.from_pretrained(source, **kwargs)
    except HubError as exc:
        result = exc
    return time.perf_counter() - start, result


def test_a_refusing_hub_fails_at_once_with_one_clear_message(dead_hub, tmp_path, caplog):
    dead_hub("refuse")
    with caplog.at_level(logging.INFO):
        elapsed, error = _load_timed("user/some-style", cache_dir=tmp_path)
    assert elapsed < 2.0
    assert isinstance(error, HubUnreachable)
    message = str(error)
    assert message.startswith("cannot load 'user/some-style': ")          # what was asked
    assert "Connection refused" in message and "not in the local Hub cache" in message
    assert "check your network connection" in message and "HF_HUB_OFFLINE=1" in message   # what to do
    assert "There is no local folder 'user/some-style' either" in message
    assert [r for r in caplog.records if r.name.startswith("huggingface_hub")] == []   # no retry chatter


def test_a_silent_hub_is_given_up_after_the_timeout_and_remembered(dead_hub, tmp_path, monkeypatch):
    assert fst.settings.hub_timeout() <= 5
    monkeypatch.setenv("FST_HUB_TIMEOUT", "1.5")   # the default 5 s, shortened for the test
    dead_hub("hang")
    elapsed, error = _load_timed("user/some-style", cache_dir=tmp_path)
    assert isinstance(error, HubUnreachable) and 1.4 < elapsed < 4.5
    assert "no answer within 1.5 s" in str(error)
    elapsed, again = _load_timed("user/other-style", cache_dir=tmp_path)   # the outage is remembered
    assert isinstance(again, HubUnreachable) and elapsed < 0.5
    assert "cannot load 'user/other-style'" in str(again) and "no answer within 1.5 s" in str(again)


def test_the_outage_is_forgotten_after_a_while(dead_hub, monkeypatch):
    dead_hub("refuse")
    with pytest.raises(HubUnreachable):
        fst.hub_access.probe("user/x", "config.json")
    assert fst.hub_access.current_outage() is not None
    monkeypatch.setenv("FST_HUB_RETRY_AFTER", "0")
    assert fst.hub_access.current_outage() is None


@pytest.mark.slow
def test_a_cached_model_loads_without_waiting_on_a_dead_hub(hub, small_model, dead_hub, tmp_path, monkeypatch,
                                                           caplog):
    small_model.push_to_hub("user/cached-style")
    FastStyle.from_pretrained("user/cached-style", cache_dir=tmp_path)     # fills the cache
    monkeypatch.setenv("FST_HUB_TIMEOUT", "1.5")
    dead_hub("hang")
    x = torch.rand(1, 3, 16, 16)
    with caplog.at_level(logging.WARNING):
        first, model = _load_timed("user/cached-style", cache_dir=tmp_path)
        second, again = _load_timed("user/cached-style", cache_dir=tmp_path)
    assert first < 4.5 and second < 0.5                      # at most one timeout, then no waiting at all
    assert torch.equal(model.stylize(x), small_model.stylize(x)) and torch.equal(again.stylize(x), model.stylize(x))
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2 and all("using the copy in the local Hub cache" in w for w in warnings)
    assert all(w.startswith("user/cached-style: the Hub (") for w in warnings)


@pytest.mark.parametrize("source", ["./no-such-model", "/no/such/model", "~/no-such-model", "a/b/c"])
def test_path_like_arguments_are_folders_and_never_reach_the_hub(hub, source):
    hub.clear_requests()
    with pytest.raises(ModelLoadError, match=r"no model folder .*does not exist") as info:
        FastStyle.from_pretrained(source)
    assert not isinstance(info.value, HubError)
    assert hub.requests == []


def test_an_existing_relative_folder_wins_over_a_repo_id(small_model, tmp_path, monkeypatch, hub):
    small_model.save_pretrained(tmp_path / "user" / "style")
    monkeypatch.chdir(tmp_path)
    hub.clear_requests()
    assert torch.equal(FastStyle.from_pretrained("user/style").stylize(torch.ones(1, 3, 8, 8)),
                       small_model.stylize(torch.ones(1, 3, 8, 8)))
    assert hub.requests == []
    with pytest.raises(ModelLoadError, match="is a file, not a model folder"):
        FastStyle.from_pretrained("./user/style/config.json")


def test_a_relative_folder_from_elsewhere_is_tried_on_the_hub_and_the_message_says_both(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(HubError) as info:
        FastStyle.from_pretrained("models/starry_night_typo")
    message = str(info.value)
    assert "model repository 'models/starry_night_typo' not found on the Hub" in message
    assert f"There is no local folder 'models/starry_night_typo' either (looked in {tmp_path})" in message


def test_a_bad_device_is_reported_before_any_download(hub):
    hub.clear_requests()
    with pytest.raises(ValueError, match="unknown device 'banana'; use cpu, cuda or cuda:N"):
        FastStyle.from_pretrained("user/anything", device="banana")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available on this machine"):
            FastStyle.from_pretrained("user/anything", device="cuda")
    assert hub.requests == []
