"""Validated, bounded model configs: checked before a single tensor is allocated."""
from __future__ import annotations

import dataclasses
import json
import logging
import math
from typing import Any, ClassVar, Mapping, TypeVar

from .errors import ConfigError

logger = logging.getLogger(__name__)

MAX_CONFIG_BYTES = 1 << 20  # a config.json is a few hundred bytes; refuse megabytes

C = TypeVar("C", bound="BaseConfig")


def check_int(name: str, value: Any, low: int, high: int) -> int:
    """Return ``value`` if it is an int in ``[low, high]``, else raise a clear ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int):
        shown = json.dumps(value)[:40] if isinstance(value, (str, int, float, bool, type(None))) else "..."
        raise ConfigError(f"{name} must be a positive integer, got {type(value).__name__} {shown}")
    if not low <= value <= high:
        raise ConfigError(f"{name}={value} is out of range ({low}..{high})")
    return value


def check_float(name: str, value: Any, low: float, high: float) -> float:
    """Return ``value`` as a float if it is a finite number in ``[low, high]``, else raise ConfigError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {type(value).__name__} {str(value)[:40]!r}")
    if not math.isfinite(value) or not low <= value <= high:
        raise ConfigError(f"{name}={value} is out of range ({low}..{high})")
    return float(value)


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``choices``, else raise a clear ConfigError."""
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {str(value)[:40]!r}")
    return value


def check_optional_str(name: str, value: Any, max_len: int = 200) -> str | None:
    """Return ``value`` if it is None or a string of bounded length."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise ConfigError(f"{name} must be a string of at most {max_len} characters")
    return value


@dataclasses.dataclass
class BaseConfig:
    """Common behaviour of model configs: named variants, JSON round trip with validation.

    Subclasses list their fields and implement :meth:`validate`. A subclass with named
    variants sets ``ARCHITECTURES`` (name -> the structural fields it fixes) and
    ``DEFAULT_ARCH``, has an ``arch`` field, and gives each structural field the default
    None: a config that names ``arch`` takes that variant's values, one without takes
    ``DEFAULT_ARCH``'s, and a structural field set explicitly to a value that contradicts
    the named variant is a :class:`ConfigError`. After construction every structural field
    holds its value, so ``to_dict`` writes the complete structure.
    """

    MODEL_TYPE = ""
    ARCHITECTURES: ClassVar[Mapping[str, Mapping[str, Any]]] = {}
    DEFAULT_ARCH: ClassVar[str] = ""

    def validate(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __post_init__(self) -> None:
        if self.ARCHITECTURES:
            self._apply_arch()
        self.validate()

    def _apply_arch(self) -> None:
        """Fill the structural fields from the named variant; refuse contradicting ones."""
        arch = check_optional_str("arch", getattr(self, "arch", None))
        if arch is not None and arch not in self.ARCHITECTURES:
            raise ConfigError(f"unknown architecture {arch[:40]!r}; choose one of {', '.join(self.ARCHITECTURES)}")
        variant = self.ARCHITECTURES[arch if arch is not None else self.DEFAULT_ARCH]
        conflicts = []
        for name, value in variant.items():
            given = getattr(self, name)
            if given is None:
                setattr(self, name, value)
            elif arch is not None and (type(given) is bool or given != value):
                shown = json.dumps(given)[:40] if isinstance(given, (str, int, float)) else type(given).__name__
                conflicts.append(f"{name}={shown} ({arch} has {json.dumps(value)})")
        if conflicts:
            raise ConfigError(f"config fields contradict arch={arch!r}: " + ", ".join(conflicts)
                              + f"; drop these fields to build {arch}, or drop arch for a custom network")

    def to_dict(self) -> dict[str, Any]:
        """The config as a JSON-serialisable dict (what config.json holds)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any], source: str = "config") -> C:
        """Build a validated config; unknown keys are ignored with one warning listing them."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source} must be a JSON object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(k for k in data if k not in names)
        if unknown:
            logger.warning("%s: ignoring unknown keys: %s", source, ", ".join(map(repr, unknown))[:300])
        model_type = data.get("model_type", cls.MODEL_TYPE)
        if model_type != cls.MODEL_TYPE:
            raise ConfigError(
                f"{source}: model_type={str(model_type)[:40]!r} but this class loads "
                f"{cls.MODEL_TYPE!r} models; use the matching class"
            )
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def from_json_bytes(cls: type[C], raw: bytes, source: str = "config.json") -> C:
        """Parse and validate config.json content."""
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError(f"{source} is {len(raw)} bytes; refusing configs over {MAX_CONFIG_BYTES} bytes")
        try:
            data = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{source} is not UTF-8 text: {exc.reason}") from None
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{source} is not valid JSON (line {exc.lineno} column {exc.colno}): {exc.msg}"
            ) from None
        except RecursionError:
            raise ConfigError(f"{source} is nested too deeply to be a config") from None
        return cls.from_dict(data, source)
