"""Text from a stream, made safe to show.

Everything that comes from a stream (run names, metric names, configs, error
messages) is *data*: it is never parsed as Rich or Textual markup, and control
characters (a terminal escape such as ``\\x1b[31m``), bidi overrides and lone
surrogates are shown escaped instead of being sent to the terminal. Use
:func:`plain` for a :class:`rich.text.Text`, :func:`safe` for the string.
"""
from __future__ import annotations

import math
from typing import Any, Dict

from rich.style import Style
from rich.text import Text

from ..safe_text import fmt_count, fmt_num  # noqa: F401 - one copy, shared with the plain-text commands

__all__ = ["safe", "plain", "fmt_num", "fmt_count", "fmt_duration", "shorten"]


def _table() -> Dict[int, str]:
    table = {c: "\\x%02x" % c for c in list(range(0x20)) + list(range(0x7F, 0xA0))}
    for c in list(range(0x202A, 0x202F)) + list(range(0x2066, 0x206A)) + [0x200E, 0x200F, 0x061C]:
        table[c] = "\\u%04x" % c
    for c in range(0xD800, 0xE000):
        table[c] = "\\u%04x" % c
    return table


_ESCAPES = _table()


def safe(value: Any) -> str:
    """``value`` as a string with control characters, bidi overrides and lone
    surrogates escaped (``\\x1b``, ``\\u202e``)."""
    return str(value).translate(_ESCAPES)


def plain(value: Any, style: "str | Style" = "") -> Text:
    """A :class:`Text` holding ``value`` literally (no markup), made safe."""
    return Text(safe(value), style=style, no_wrap=True, end="")


def shorten(s: str, width: int) -> str:
    """``s`` cut to ``width`` characters with an ellipsis."""
    if width <= 0:
        return ""
    return s if len(s) <= width else s[: max(0, width - 1)] + "…"


def fmt_duration(seconds: float) -> str:
    """``75`` -> ``1m15s``, ``4000`` -> ``1h06m``."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = int(max(0.0, seconds))
    if s < 60:
        return "%ds" % s
    if s < 3600:
        return "%dm%02ds" % (s // 60, s % 60)
    if s < 86400:
        return "%dh%02dm" % (s // 3600, (s % 3600) // 60)
    return "%dd%02dh" % (s // 86400, (s % 86400) // 3600)
