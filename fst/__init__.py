"""fst: fast neural style transfer and automatic colorization.

>>> from fst import FastStyle
>>> FastStyle.from_pretrained("models/starry_night")(image)

Importing fst changes nothing in the process. Programs that run many CPU inferences can call
:func:`fst.settings.enable_huge_pages` first, as the app, the ``fst`` command and the training
scripts do (1.3x faster at 640x480).
"""
from __future__ import annotations

from .errors import (ConfigError, FstError, HubError, HubUnreachable, InvalidImageError, ModelLoadError,
                     NonFiniteOutputError, RepoNotFoundError, StyleError)
from .faststyle import FastStyle
from .transformer import ARCHITECTURES, TransformerConfig, TransformerNet, config_for_arch

__version__ = "0.1.0"


def __getattr__(name: str):
    # Colorizer and ArbitraryStyle pull in more code; import them on first use.
    if name == "Colorizer":
        from .colorizer import Colorizer

        return Colorizer
    if name == "ArbitraryStyle":
        from .arbitrary import ArbitraryStyle

        return ArbitraryStyle
    raise AttributeError(name)


__all__ = ["FastStyle", "Colorizer", "ArbitraryStyle", "TransformerNet", "TransformerConfig", "ARCHITECTURES",
           "config_for_arch", "FstError", "InvalidImageError", "ModelLoadError", "ConfigError", "HubError",
           "NonFiniteOutputError", "HubUnreachable", "RepoNotFoundError", "StyleError"]
