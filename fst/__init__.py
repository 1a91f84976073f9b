"""fst: fast neural style transfer and automatic colorization.

>>> from fst import FastStyle
>>> FastStyle.from_pretrained("models/starry_night")(image)
"""
from __future__ import annotations

import os

# PyTorch's own switch (read at its first large CPU allocation): tensors of 2 MB and more
# go on transparent huge pages, so each fresh 40 MB activation costs ~20 page faults
# instead of ~10,000. 1.3x faster CPU inference at 640x480 (BENCHMARKS.md). Set it to 0
# before importing fst to opt out.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

from .errors import (ConfigError, FstError, HubError, HubUnreachable, InvalidImageError, ModelLoadError,
                     NonFiniteOutputError, RepoNotFoundError, StyleError)
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
           "config_for_arch", "FstError", "InvalidImageError", "ModelLoadError", "ConfigError", "HubError",
           "NonFiniteOutputError", "HubUnreachable", "RepoNotFoundError", "StyleError"]
