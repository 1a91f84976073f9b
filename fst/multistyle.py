"""Several styles in one network: choosing and blending them (Dumoulin et al. 2017).

A multi-style network (``TransformerConfig.style_names``) differs from a single-style one
only in its instance norms: each holds one (gamma, beta) row per style (conditional
instance norm). Choosing a style selects a row; a blend is a convex combination of rows,
so any mix of styles costs one pass of the network.

A *style choice* is

* ``None``: the network's first style;
* a style name: ``"the_scream"``;
* a blend, as a mapping ``{"starry_night": 0.5, "the_scream": 0.5}`` or as text
  ``"starry_night:0.5,the_scream:0.5"``. Weights are non-negative numbers, not all zero;
  they are normalised to sum to 1.

:func:`style_weights` turns a choice into one weight per style (or a clear
:class:`~fst.errors.StyleError`); :func:`style_mix` makes those weights the ones the
network's norms use within a block (this thread only), so the rest of the inference
path (tiling, the fused CPU forward, brush size) sees ordinary affine parameters.
"""
from __future__ import annotations

import contextlib
import contextvars
import difflib
import math
import re
from typing import Any, Iterator, Mapping, Sequence, Union

import torch

from .errors import ConfigError, StyleError

#: At most this many styles in one network (the norm tables stay a few KB each).
MAX_STYLES = 64
#: Style names: letters, digits, ``_``, ``-`` and ``.`` (no ``:`` or ``,``: they separate blends).
STYLE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

StyleChoice = Union[str, Mapping[str, float], None]

_MIX: contextvars.ContextVar[torch.Tensor | None] = contextvars.ContextVar("fst_style_mix", default=None)


def check_style_names(value: Any) -> list[str]:
    """``value`` if it is a list of 1..MAX_STYLES distinct valid style names, else a ConfigError."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_STYLES:
        raise ConfigError(f"style_names must be a list of 1 to {MAX_STYLES} style names")
    for name in value:
        if not isinstance(name, str) or not STYLE_NAME.match(name):
            shown = name[:40] if isinstance(name, str) else type(name).__name__
            raise ConfigError(f"style_names: {shown!r} is not a valid style name (letters, digits, '_', '-', '.'; "
                              "at most 64 characters, starting with a letter or digit)")
    if len(set(value)) != len(value):
        repeated = sorted({name for name in value if value.count(name) > 1})
        raise ConfigError(f"style_names lists {', '.join(repeated)} more than once")
    return value


def style_name_from_path(path: str) -> str:
    """A valid style name from a file name: ``the_scream.jpg`` -> ``the_scream``."""
    stem = re.sub(r"\.[A-Za-z0-9]+$", "", path.replace("\\", "/").rsplit("/", 1)[-1])
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("_.-")[:64]
    return name or "style"


def parse_blend(text: str) -> dict[str, float]:
    """``"starry_night:0.5,the_scream:0.5"`` -> ``{"starry_night": 0.5, "the_scream": 0.5}``
    (a name without ``:weight`` weighs 1). Raises StyleError for malformed text."""
    blend: dict[str, float] = {}
    for part in text.split(","):
        name, sep, raw = part.strip().partition(":")
        name = name.strip()
        if not name:
            raise StyleError(f"malformed style blend {text[:100]!r}: use name:weight,name:weight "
                             "(e.g. starry_night:0.5,the_scream:0.5)")
        if name in blend:
            raise StyleError(f"style blend {text[:100]!r} names {name[:40]!r} twice")
        try:
            blend[name] = float(raw) if sep else 1.0
        except ValueError:
            raise StyleError(f"style blend: the weight of {name[:40]!r} is {raw.strip()[:20]!r}, "
                             "not a number") from None
    return blend


def style_weights(names: Sequence[str], style: StyleChoice) -> torch.Tensor | None:
    """One weight per style of a network with ``names`` (float32, summing to 1) for ``style``.

    A single-style network (``names`` empty) takes only ``style=None`` (returns None).
    Raises :class:`StyleError` for an unknown name, a negative, NaN or infinite weight,
    weights that are all zero, or a style given to a single-style network.
    """
    if not names:
        if style is None:
            return None
        raise StyleError("this is a single-style network: it takes no style choice (style=None); "
                         "style names and blends apply to multi-style networks (model.style_names lists them)")
    if style is None:
        style = names[0]
    if isinstance(style, str):
        if ":" in style or "," in style:
            style = parse_blend(style)
        else:
            return torch.nn.functional.one_hot(torch.tensor(_index(names, style)), len(names)).float()
    if not isinstance(style, Mapping):
        raise StyleError(f"style must be a style name or a blend {{name: weight}}, got {type(style).__name__}")
    if not style:
        raise StyleError(f"the style blend is empty; give at least one of {_listing(names)} with a weight")
    weights = torch.zeros(len(names), dtype=torch.float64)
    for name, weight in style.items():
        index = _index(names, name)
        if isinstance(weight, bool) or not isinstance(weight, (int, float)):
            raise StyleError(f"the weight of {name!r} must be a number, got {type(weight).__name__}")
        if not math.isfinite(weight):
            raise StyleError(f"the weight of {name!r} is {weight}; weights must be finite numbers >= 0")
        if weight < 0:
            raise StyleError(f"the weight of {name!r} is {weight:g}; blends take weights >= 0 (a mix of styles, "
                             "not a difference)")
        weights[index] = float(weight)
    total = float(weights.sum())
    if total <= 0:
        raise StyleError("all weights of the style blend are zero; give at least one style a weight above 0")
    return (weights / total).float()


def describe_blend(names: Sequence[str], weights: torch.Tensor) -> str:
    """E.g. ``starry_night 50% + the_scream 50%`` (styles with a weight above 0)."""
    return " + ".join(f"{name} {100 * float(w):.0f}%" for name, w in zip(names, weights) if float(w) > 0)


def _index(names: Sequence[str], name: Any) -> int:
    if not isinstance(name, str):
        raise StyleError(f"style names are strings, got {type(name).__name__}")
    try:
        return list(names).index(name)
    except ValueError:
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise StyleError(f"unknown style {name[:60]!r}{hint}; this network has {_listing(names)}") from None


def _listing(names: Sequence[str]) -> str:
    return ", ".join(names[:16]) + (f" and {len(names) - 16} more" if len(names) > 16 else "")


@contextlib.contextmanager
def style_mix(weights: torch.Tensor | None) -> Iterator[None]:
    """Within this block (this thread only), multi-style norms use ``weights``: one weight per
    style (S), or one row per image of the batch (BxS); None selects the first style."""
    token = _MIX.set(weights)
    try:
        yield
    finally:
        _MIX.reset(token)


def current_mix() -> torch.Tensor | None:
    """The weights set by the innermost :func:`style_mix` of this thread, if any."""
    return _MIX.get()


__all__ = ["MAX_STYLES", "StyleChoice", "check_style_names", "current_mix", "describe_blend", "parse_blend",
           "style_mix", "style_name_from_path", "style_weights"]
