"""Text from a stream, made safe to show.

Everything that comes from a stream (run names, metric names, configs, error
messages) is *data*: it is never parsed as Rich or Textual markup, and control
characters (a terminal escape such as ``\\x1b[31m``), bidi overrides and lone
surrogates are shown escaped instead of being sent to the terminal
(:func:`safe`, the same escapes as the plain-text commands use).

And it is cut before it is escaped or rendered: a name (of a run, host,
metric, layer) to :data:`NAME_MAX` characters (:func:`short_name`), any other text
to :data:`TEXT_MAX`, its words to :data:`WORD_MAX` (:func:`safe`, so a name
inside a sentence is cut too). A run named with a megabyte costs each render
what a name of 60 characters does, and never wraps into a screenful.
"""
from __future__ import annotations

import math
import re

from ..safe_text import clean, cut
from ..safe_text import fmt_ago, fmt_count, fmt_num  # noqa: F401 - one copy, shared with the plain-text commands

__all__ = ["safe", "short_name", "run_label", "NAME_MAX", "TEXT_MAX", "WORD_MAX", "fmt_ago", "fmt_num", "fmt_count", "fmt_duration",
           "shorten"]

#: The most characters of a name from a stream shown anywhere (escapes count).
NAME_MAX = 60
#: The most characters of any other text from a stream, or built on one (a
#: finding's explanation, a problem's reason), shown.
TEXT_MAX = 2000
#: The longest word of such a text shown whole (a path, a name within it).
WORD_MAX = 80
_LONG_WORDS = {WORD_MAX: re.compile(r"\S{%d,}" % (WORD_MAX + 1))}


def short_name(text: object, width: int = NAME_MAX) -> str:
    """A name from a stream, escaped and cut to ``width`` characters (an
    ellipsis last when cut); only its start is looked at."""
    return cut(text, width)


def safe(text: object, limit: int = TEXT_MAX, word: int = WORD_MAX) -> str:
    """Text from a stream, escaped, its words cut to ``word`` characters
    and the whole to ``limit`` (an ellipsis where cut); only its start is
    looked at. (A path the user gave: ``word=TEXT_MAX``.)"""
    s = str(text)
    if len(s) <= min(word, limit):     # the common case: a short name or number
        return clean(s)
    long_word = _LONG_WORDS.get(word)
    if long_word is None:
        long_word = _LONG_WORDS[word] = re.compile(r"\S{%d,}" % (word + 1))
    shown = long_word.sub(lambda m: m.group()[: word - 1] + "…", clean(s[:limit]))
    if len(shown) > limit or len(s) > limit and not shown.endswith("…"):
        shown = shown[: limit - 1] + "…"
    return shown


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


def run_label(run: object) -> str:
    """A run's name as a chart or a message shows it: cut (:func:`short_name`),
    with its rank when its job has several (``ddp[rank 3]``)."""
    shown = short_name(getattr(run, "name", None) or getattr(run, "run_id", "?"))
    world = getattr(run, "world_size", 1) or 1
    return f"{shown}[rank {getattr(run, 'rank', 0)}]" if world > 1 else shown
