"""Text from a stream made safe to print: strings from a stream are data, so
control characters (ANSI escapes included), bidi overrides and lone surrogates
are shown escaped, never sent to the terminal. Also the compact number
formats that the TUI and the plain-text commands share."""
from __future__ import annotations

import math
from typing import Any, Dict, Optional

_ESCAPES: Optional[Dict[int, str]] = None


def _escapes() -> Dict[int, str]:
    global _ESCAPES
    if _ESCAPES is None:
        table: Dict[int, str] = {}
        for c in list(range(0x20)) + list(range(0x7F, 0xA0)):
            table[c] = f"\\x{c:02x}"
        table[ord("\t")] = "\\t"
        table[ord("\n")] = "\\n"
        table[ord("\r")] = "\\r"
        # bidirectional overrides and isolates can reorder what is shown
        for c in list(range(0x202A, 0x202F)) + list(range(0x2066, 0x206A)) + [0x200E, 0x200F, 0x061C]:
            table[c] = f"\\u{c:04x}"
        for c in range(0xD800, 0xE000):  # lone surrogates (from \\ud800 escapes) cannot be printed
            table[c] = f"\\u{c:04x}"
        _ESCAPES = table
    return _ESCAPES


_JSON_ESCAPES: Optional[Dict[int, str]] = None


def json_escapes() -> Dict[int, str]:
    """The escapes JSON output needs on a terminal: DEL, C1 controls, bidi overrides (as ``\\uXXXX``)."""
    global _JSON_ESCAPES
    if _JSON_ESCAPES is None:
        _JSON_ESCAPES = {c: f"\\u{c:04x}" for c in _escapes() if c >= 0x7F}
    return _JSON_ESCAPES


def clean(text: Any) -> str:
    """``text`` as a string safe to print: control characters, bidi overrides
    and lone surrogates escaped as ``\\x1b``, ``\\u202e``..."""
    return str(text).translate(_escapes())


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
