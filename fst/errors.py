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


class DataError(FstError, ValueError):
    """A training data folder or option is unusable."""
