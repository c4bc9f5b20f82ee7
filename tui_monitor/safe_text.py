"""Text from a stream made safe to print: strings from a stream are data, so
control characters (ANSI escapes included), bidi overrides and isolates,
invisible characters (zero-width spaces and joiners, the byte-order mark, tag
characters), line and paragraph separators and lone surrogates are shown
escaped (``\\x1b``, ``\\u202e``, ``\\u200b``), never sent to the terminal: a
zero-width space makes two different names look alike, a bidi override shows
``exe.txt`` for ``txt.exe``, a line separator breaks a table row. Also: the
same characters stripped (:func:`strip_controls`, for files a spreadsheet
opens), a name cut to a width (:func:`cut`), and the compact number formats
that the TUI and the plain-text commands share."""
from __future__ import annotations

import math
from typing import Any, Dict, Iterator, Optional

_ESCAPES: Optional[Dict[int, str]] = None
_STRIP: Optional[Dict[int, None]] = None


def _unsafe() -> Iterator[int]:
    """Every code point never shown as itself."""
    yield from range(0x20)                      # C0 controls (ESC, BEL, backspace, \t, \n, \r...)
    yield from range(0x7F, 0xA0)                # DEL and C1 controls (0x9B is a one-byte CSI)
    yield 0xAD                                  # soft hyphen: invisible
    yield from (0x061C, 0x200E, 0x200F)         # bidi marks
    yield from range(0x202A, 0x202F)            # bidi embeddings and overrides
    yield from range(0x2066, 0x206A)            # bidi isolates
    yield from range(0x200B, 0x200E)            # zero-width space, non-joiner, joiner
    yield from range(0x2060, 0x2065)            # word joiner, invisible operators
    yield from (0x180E, 0x115F, 0x1160, 0x3164, 0xFFA0)  # invisible separators and fillers
    yield 0xFEFF                                # zero-width no-break space (byte-order mark)
    yield from range(0xFFF9, 0xFFFC)            # interlinear annotation
    yield from (0x2028, 0x2029)                 # line and paragraph separators
    yield from range(0xE0000, 0xE0080)          # tag characters: invisible text
    yield from range(0xD800, 0xE000)            # lone surrogates (from \\ud800 escapes) cannot be printed


def _escapes() -> Dict[int, str]:
    global _ESCAPES
    if _ESCAPES is None:
        table: Dict[int, str] = {}
        for c in _unsafe():
            table[c] = f"\\x{c:02x}" if c < 0x100 else (f"\\u{c:04x}" if c < 0x10000 else f"\\U{c:08x}")
        table[ord("\t")] = "\\t"
        table[ord("\n")] = "\\n"
        table[ord("\r")] = "\\r"
        _ESCAPES = table
    return _ESCAPES


_JSON_ESCAPES: Optional[Dict[int, str]] = None


def json_escapes() -> Dict[int, str]:
    """The escapes JSON output needs on a terminal: DEL, C1 controls, bidi
    overrides, invisible characters and separators (as ``\\uXXXX``; JSON
    escapes the C0 controls itself)."""
    global _JSON_ESCAPES
    if _JSON_ESCAPES is None:
        table = {}
        for c in _escapes():
            if c >= 0x10000:  # JSON spells these as a surrogate pair
                hi, lo = 0xD800 + ((c - 0x10000) >> 10), 0xDC00 + ((c - 0x10000) & 0x3FF)
                table[c] = f"\\u{hi:04x}\\u{lo:04x}"
            elif c >= 0x7F:
                table[c] = f"\\u{c:04x}"
        _JSON_ESCAPES = table
    return _JSON_ESCAPES


def clean(text: Any) -> str:
    """``text`` as a string safe to print: control characters, bidi
    controls, invisible characters, line separators and lone surrogates
    escaped as ``\\x1b``, ``\\u202e``, ``\\u200b``..."""
    return str(text).translate(_escapes())


def strip_controls(text: Any) -> str:
    """``text`` without the characters :func:`clean` escapes (for files other
    programs show: a CSV a spreadsheet or ``cat`` opens)."""
    global _STRIP
    if _STRIP is None:
        _STRIP = dict.fromkeys(_escapes())
    return str(text).translate(_STRIP)


def cut(text: Any, width: int) -> str:
    """``text`` made safe (:func:`clean`) and cut to ``width`` characters,
    the last one an ellipsis when something was cut. Only the start of a
    long text is looked at: a name of a megabyte costs what one of
    ``width`` does."""
    s = str(text)
    if width <= 0:
        return ""
    shown = clean(s[:width + 1])
    if len(shown) <= width:
        return shown
    return shown[:width - 1] + "…"


def fmt_num(v: Optional[float], digits: int = 4) -> str:
    """A compact number: ``0.1234``, ``1.23e-05``, ``NaN``, ``+inf``; ``-`` for None."""
    if v is None:
        return "-"
    v = float(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+inf" if v > 0 else "-inf"
    if v == 0:
        return "0"
    a = abs(v)
    if 1e-3 <= a < 1e5:
        text = "%.*g" % (digits, v)
    else:
        text = "%.*e" % (max(0, digits - 2), v)
        mant, exp = text.split("e")
        if "." in mant:
            mant = mant.rstrip("0").rstrip(".")
        text = "%se%d" % (mant, int(exp))
    return text


def fmt_count(n: Optional[int]) -> str:
    """``1234567`` -> ``1.2M``; ``-`` for None."""
    if n is None:
        return "-"
    n = int(n)
    for div, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if abs(n) >= div:
            return ("%.1f" % (n / div)).rstrip("0").rstrip(".") + suffix
    return str(n)


def fmt_ago(seconds: Optional[float]) -> str:
    """How long ago, in the one unit that reads at a glance: ``45s``,
    ``12m``, ``5h``, ``12d``, ``8mo``, ``3y``; ``?`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    s = max(0, int(seconds))
    days = s // 86400
    if s < 60:
        return "%ds" % s
    if s < 3600:
        return "%dm" % (s // 60)
    if days < 1:
        return "%dh" % (s // 3600)
    if days < 60:
        return "%dd" % days
    if days < 730:
        return "%dmo" % (days // 30)
    return "%dy" % (days // 365)
