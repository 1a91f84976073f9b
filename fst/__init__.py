"""fst: fast neural style transfer and automatic colorization.

>>> from fst import FastStyle
>>> FastStyle.from_pretrained("models/starry_night")(image)
"""
from __future__ import annotations

from .errors import ConfigError, FstError, HubError, InvalidImageError, ModelLoadError
from .faststyle import FastStyle
from .transformer import ARCHITECTURES, TransformerConfig, TransformerNet, config_for_arch

__version__ = "0.1.0"


def __getattr__(name: str):
    # Colorizer pulls in more code; import it on first use.
    if name == "Colorizer":
        from .colorizer import Colorizer

        return Colorizer
    raise AttributeError(name)


__all__ = ["FastStyle", "Colorizer", "TransformerNet", "TransformerConfig", "ARCHITECTURES",
           "config_for_arch", "FstError", "InvalidImageError", "ModelLoadError", "ConfigError", "HubError"]
