"""Text from a stream, made safe to show.

Everything that comes from a stream (run names, metric names, configs, error
messages) is *data*: it is never parsed as Rich or Textual markup, and control
characters (a terminal escape such as ``\\x1b[31m``), bidi overrides and lone
surrogates are shown escaped instead of being sent to the terminal
(:func:`safe`, the same escapes as the plain-text commands use).
"""
from __future__ import annotations

import math

from ..safe_text import clean as safe
from ..safe_text import fmt_ago, fmt_count, fmt_num  # noqa: F401 - one copy, shared with the plain-text commands

__all__ = ["safe", "fmt_ago", "fmt_num", "fmt_count", "fmt_duration", "shorten"]


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
