"""Serving limits from the environment, and the torch threads and device line of the footer."""
from __future__ import annotations

import dataclasses
import os

import torch

from ..settings import env_int

@dataclasses.dataclass(frozen=True)
class AppSettings:
    """Serving limits (environment variables in brackets, read by :func:`fst.settings.env_int` when
    :meth:`from_env` is called); defaults depend on the device."""

    concurrency: int          # image/colorize jobs run at once [FST_CONCURRENCY]
    queue_size: int           # waiting jobs before "queue full" [FST_QUEUE_SIZE]
    webcam_sessions: int      # webcam streams served at once [FST_WEBCAM_SESSIONS]
    webcam_seconds: int       # streaming time per session [FST_WEBCAM_SECONDS]
    max_side: int             # largest output side offered by the size slider [FST_MAX_SIDE]
    cache_size: int           # networks kept in memory [FST_MODEL_CACHE]
    colorize_max_pixels: int = 16_000_000   # colorized at full resolution up to this [FST_COLORIZE_MAX_PIXELS]
    temp_ttl: int = 3600      # seconds uploads, results and webcam frames stay in Gradio's temp folder [FST_TEMP_TTL]
    hub_downloads: int = 4    # requests that may fetch a network from the Hub meanwhile [FST_HUB_DOWNLOADS]
    webcam_fps: int = 15      # frame rate the webcam's adaptive resolution keeps [FST_WEBCAM_FPS]

    @property
    def request_slots(self) -> int:
        """Image and colorize requests handled at once: ``concurrency`` computing, plus up to
        ``hub_downloads`` fetching their network from the Hub outside the compute slots."""
        return self.concurrency + self.hub_downloads

    @property
    def delete_cache(self) -> tuple[int, int]:
        """``gr.Blocks(delete_cache=(every, older_than))``: temp files older than ``temp_ttl`` are deleted,
        checked every ``temp_ttl / 4`` seconds (at most every 10 minutes)."""
        return max(1, min(self.temp_ttl // 4, 600)), self.temp_ttl

    @classmethod
    def from_env(cls, device: torch.device) -> "AppSettings":
        gpu = device.type == "cuda"
        return cls(
            concurrency=env_int("FST_CONCURRENCY", 4 if gpu else 1),
            queue_size=env_int("FST_QUEUE_SIZE", 32 if gpu else 16),
            webcam_sessions=env_int("FST_WEBCAM_SESSIONS", 4 if gpu else 2),
            webcam_seconds=env_int("FST_WEBCAM_SECONDS", 120, low=5),
            max_side=env_int("FST_MAX_SIDE", 4096 if gpu else 2048, low=64),
            cache_size=env_int("FST_MODEL_CACHE", 8),
            colorize_max_pixels=env_int("FST_COLORIZE_MAX_PIXELS", 16_000_000, low=65_536),
            temp_ttl=env_int("FST_TEMP_TTL", 3600, low=2),
            hub_downloads=env_int("FST_HUB_DOWNLOADS", 4, low=0),
            webcam_fps=env_int("FST_WEBCAM_FPS", 15, low=1),
        )


def configure_torch(device: torch.device) -> int:
    """On CPU, leave one core to the web server (``$FST_TORCH_THREADS`` overrides); returns the thread count.

    With two cores this means one torch thread: measured on a loaded 2-core machine, a second
    thread that has to wait for the busy core makes each frame 20x slower, not 2x faster.
    """
    if device.type != "cpu":
        return torch.get_num_threads()
    cores = os.cpu_count() or 1
    threads = env_int("FST_TORCH_THREADS", max(1, cores - 1))
    torch.set_num_threads(threads)
    return threads


def device_summary(device: torch.device) -> str:
    """What the app's footer says the networks run on: on CUDA the GPU's name with how style
    networks run there (fp16 autocast, channels_last memory), e.g. ``NVIDIA H100 (CUDA, fp16,
    channels_last)``; on CPU torch's thread count (see :func:`configure_torch`), e.g. ``CPU (15 threads)``."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA, fp16, channels_last)"
    threads = torch.get_num_threads()
    return f"CPU ({threads} thread{'s' if threads != 1 else ''})"
