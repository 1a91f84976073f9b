"""The logic behind the Gradio app (``app.py``): models, caching, input checks, error messages.

Nothing here imports Gradio, so it is unit-testable on its own. ``app.py`` only wires
these functions to components and turns :func:`user_message` into ``gr.Error``.

* :class:`ModelCache` - bounded, thread-safe LRU that loads each key once, even when
  many requests ask for it at the same time (the first one loads, the others wait).
* :class:`ModelRegistry` - the styles on offer: the embedded catalogue, networks
  found on the Hub by tag (bounded time, failures ignored), and any repo id a user
  pastes; model info read from the (untrusted) model card.
* :class:`AppBackend` - what the three tabs call: :meth:`~AppBackend.stylize`,
  :meth:`~AppBackend.colorize` and :meth:`~AppBackend.webcam_frame`.

Every upload is decoded by :mod:`fst.imageio` (format sniffed from content, size
limits, EXIF, alpha) and every result is a fresh pixel array, so nothing a user
sent is ever served back as-is.
"""
from __future__ import annotations

from .handlers import (ARBITRARY_WEBCAM_LEVELS, ARBITRARY_WEBCAM_SIDE, MAX_APP_STYLE_SCALE, WEBCAM_NETWORKS, AppBackend,
                      Result, WebcamSession)
from .cache import ModelCache
from .config import AppSettings, configure_torch, device_summary
from .errors import AppError, ColorizerUnavailable, user_message
from .registry import HUB_TAG, ModelRegistry, Progress, StyleOption, thumbnail
from .uploads import (check_integer, check_number, decode_upload, downscale, downscale_to_pixels, is_empty_upload,
                      is_monochrome)

__all__ = ["ARBITRARY_WEBCAM_LEVELS", "ARBITRARY_WEBCAM_SIDE", "HUB_TAG", "MAX_APP_STYLE_SCALE", "WEBCAM_NETWORKS",
           "AppBackend", "AppError", "AppSettings", "ColorizerUnavailable", "ModelCache", "ModelRegistry", "Progress",
           "Result", "StyleOption", "WebcamSession", "check_integer", "check_number", "configure_torch",
           "decode_upload", "device_summary", "downscale", "downscale_to_pixels", "is_empty_upload", "is_monochrome",
           "thumbnail", "user_message"]
