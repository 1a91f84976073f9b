"""Exceptions raised by fst. Every message says what is wrong and what to do."""
from __future__ import annotations


class FstError(Exception):
    """Base class of every error fst raises on purpose."""


class InvalidImageError(FstError, ValueError):
    """An input image (file, bytes, array, tensor) cannot be used."""


class ModelLoadError(FstError, ValueError):
    """A model repository or folder cannot be loaded safely."""


class ConfigError(ModelLoadError):
    """A model config (config.json) is invalid or out of bounds."""


class HubError(ModelLoadError):
    """The Hub could not be reached or refused a request."""


class HubUnreachable(HubError):
    """The Hub could not be reached (no connection, or no answer in time): a network problem."""


class RepoNotFoundError(HubError):
    """The Hub has no repository of that name (or it is private and no valid token was given)."""


class StyleError(FstError, ValueError):
    """A style choice or blend cannot be used (unknown style, bad weights)."""


class DataError(FstError, ValueError):
    """A training data folder or option is unusable."""


class NonFiniteOutputError(FstError, RuntimeError):
    """A network produced NaN/Inf values: its weights are damaged or come from a diverged run."""


class InvalidVideoError(FstError, ValueError):
    """An input video cannot be used (corrupt, no video stream, over a limit, ...)."""
