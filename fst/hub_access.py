"""Reaching the Hugging Face Hub: fail fast, once.

Left to itself, ``huggingface_hub`` retries an unreachable Hub with back-off (about 25 s
per file, with a 60 s timeout per try when nothing is cached) and logs a line per try.
fst asks differently: every download starts with one metadata request (``HEAD``) that
waits at most :func:`fst.settings.hub_timeout` seconds (``$FST_HUB_TIMEOUT``, 5) to connect
and to be answered, and is never retried. When the Hub cannot be reached that way, the outage
is remembered for :func:`fst.settings.hub_retry_after` seconds (``$FST_HUB_RETRY_AFTER``, 60;
per endpoint, in this process): later requests fail
at once, without touching the network, and callers fall back to cached copies.

Nothing here changes ``huggingface_hub``'s global settings: the timeouts are passed
with each call.
"""
from __future__ import annotations

import dataclasses
import importlib
import threading
import time
from typing import Any

from . import settings
from .errors import HubUnreachable

HUB_OFFLINE_HINT = "set HF_HUB_OFFLINE=1 to use cached models only"


@dataclasses.dataclass(frozen=True)
class Outage:
    """The Hub at ``endpoint`` could not be reached at ``since`` (time.monotonic) because of ``reason``."""

    endpoint: str
    reason: str
    since: float

    def describe(self) -> str:
        """E.g. ``the Hub (https://huggingface.co) is unreachable (connection refused, 3 s ago)``."""
        ago = time.monotonic() - self.since
        when = f", {ago:.0f} s ago" if ago >= 1 else ""
        return f"the Hub ({self.endpoint}) is unreachable ({self.reason}{when})"


_outages: dict[str, Outage] = {}
_lock = threading.Lock()


def endpoint() -> str:
    """The Hub endpoint in use (``HF_ENDPOINT``), read at each call."""
    from huggingface_hub import constants

    return constants.ENDPOINT


def is_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` forbids any Hub request."""
    from huggingface_hub import constants

    return bool(getattr(constants, "is_offline_mode", lambda: constants.HF_HUB_OFFLINE)())


def current_outage() -> Outage | None:
    """The remembered outage of the current endpoint, if it is recent (see :func:`fst.settings.hub_retry_after`)."""
    retry_after = settings.hub_retry_after()
    with _lock:
        outage = _outages.get(endpoint())
        if outage is not None and time.monotonic() - outage.since > retry_after:
            del _outages[outage.endpoint]
            outage = None
    return outage


def forget_outages() -> None:
    """Forget every remembered outage: the next request tries the network again."""
    with _lock:
        _outages.clear()


def check_reachable() -> None:
    """Raise :class:`HubUnreachable` at once while an outage of the current endpoint is remembered."""
    outage = current_outage()
    if outage is not None:
        raise HubUnreachable(outage.describe())


def network_errors() -> tuple[type[BaseException], ...]:
    """What the HTTP client of ``huggingface_hub`` raises when it cannot connect or gets no answer
    (``httpx2`` for huggingface_hub 2.x, ``httpx`` for 1.x)."""
    errors: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for name in ("httpx2", "httpx"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        errors += [module.TimeoutException, module.NetworkError, module.RemoteProtocolError]
    return tuple(errors)


def _reason(error: BaseException) -> str:
    name = type(error).__name__
    if name == "ConnectTimeout":
        return f"no connection within {settings.hub_timeout():g} s"
    if "Timeout" in name or isinstance(error, TimeoutError):
        return f"no answer within {settings.hub_timeout():g} s"
    text = str(error).strip() or type(error).__name__
    return text.split("\n")[0][:160]


def remember_outage(error: BaseException) -> HubUnreachable:
    """Record that the current endpoint is unreachable because of ``error``; return the error to raise."""
    outage = Outage(endpoint(), _reason(error), time.monotonic())
    with _lock:
        _outages[outage.endpoint] = outage
    return HubUnreachable(outage.describe())


def probe(repo_id: str, filename: str, *, revision: str | None = None, token: Any = None,
          repo_type: str | None = None) -> Any:
    """One metadata request for ``filename`` of ``repo_id``: at most :func:`fst.settings.hub_timeout` s, no retry.

    Returns huggingface_hub's ``HfFileMetadata``. Raises :class:`HubUnreachable` when the Hub
    cannot be reached (and remembers it); HTTP errors (404, 401, 5xx) come as huggingface_hub's
    own exceptions. Does nothing in offline mode (returns None).
    """
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    if is_offline():
        return None
    check_reachable()
    url = hf_hub_url(repo_id, filename, revision=revision, repo_type=repo_type)
    try:
        return get_hf_file_metadata(url, token=token, timeout=settings.hub_timeout())
    except network_errors() as error:
        raise remember_outage(error) from None


def hub_download(repo_id: str, filename: str, **kwargs: Any) -> str:
    """``hf_hub_download`` that fails fast: :func:`probe` first (skipped with ``local_files_only``),
    then the download with the same short metadata timeout. Returns the cached file's path.

    Only an unreachable Hub is remembered; a transfer that breaks off after the Hub answered
    raises huggingface_hub's error as usual.
    """
    from huggingface_hub import hf_hub_download

    if not kwargs.get("local_files_only"):
        probe(repo_id, filename, revision=kwargs.get("revision"), token=kwargs.get("token"),
              repo_type=kwargs.get("repo_type"))
    return hf_hub_download(repo_id, filename, etag_timeout=settings.hub_timeout(), **kwargs)


__all__ = ["HUB_OFFLINE_HINT", "HubUnreachable", "Outage", "check_reachable", "current_outage", "endpoint",
           "forget_outages", "hub_download", "is_offline", "network_errors", "probe", "remember_outage"]
