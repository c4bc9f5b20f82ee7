"""Axis ticks: "nice" values (1, 2, 5 times a power of ten) for linear and
log axes, and their labels. Pure functions."""
from __future__ import annotations

import math
from typing import List

__all__ = ["nice_ticks", "log_ticks", "time_ticks", "fmt_tick", "fmt_log_tick"]


def _nice_step(span: float, n: int) -> float:
    raw = span / max(1, n)
    if raw <= 0 or not math.isfinite(raw):
        return 1.0
    mag = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if raw <= m * mag:
            return m * mag
    return 10.0 * mag


def nice_ticks(lo: float, hi: float, n: int = 5, integer: bool = False) -> List[float]:
    """About ``n`` round values inside ``[lo, hi]``."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
        return []
    if hi == lo:
        return [lo]
    step = _nice_step(hi - lo, n)
    if integer:
        step = max(1.0, round(step))
    first = math.ceil(lo / step - 1e-9) * step
    out = []
    v = first
    while v <= hi + step * 1e-9 and len(out) < 100:
        out.append(0.0 if abs(v) < step * 1e-9 else v)
        v = first + len(out) * step
    return out


def log_ticks(lo: float, hi: float, n: int = 5) -> List[float]:
    """Ticks for a log10 axis; ``lo``/``hi`` are log10 values, the ticks too."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi < lo:
        return []
    d0, d1 = math.floor(lo), math.ceil(hi)
    decades = list(range(d0, d1 + 1))
    if len(decades) - 1 < n - 1 and len(decades) <= 3:
        mults = (1, 2, 5)
    else:
        mults = (1,)
    out = [d + math.log10(m) for d in decades for m in mults]
    out = [t for t in out if lo - 1e-9 <= t <= hi + 1e-9]
    if len(out) > n * 2:
        k = math.ceil(len(out) / n)
        out = out[::k]
    return out


def fmt_tick(v: float, step: float = 0.0) -> str:
    """A short label for a tick value."""
    if v == 0:
        return "0"
    a = abs(v)
    if 1e-3 <= a < 1e6:
        if a >= 1000 and v == int(v):
            return ("%.1fk" % (v / 1000)).replace(".0k", "k") if a < 1e5 else "%dk" % round(v / 1000)
        decimals = 0
        if step and step < 1:
            decimals = min(6, max(0, -int(math.floor(math.log10(step)))))
        elif v != int(v):
            decimals = 2
        text = "%.*f" % (decimals, v)
        return text
    text = "%.0e" % v
    mant, exp = text.split("e")
    return "%se%d" % (mant, int(exp))


def fmt_log_tick(v: float) -> str:
    """A label for a tick of a log axis (``v`` is the value, not its log)."""
    if 0.01 <= v < 1e5:
        return "%g" % float("%.2g" % v)
    text = "%.0e" % v
    mant, exp = text.split("e")
    return "%se%d" % (mant, int(exp))


def time_ticks(lo: float, hi: float, n: int = 5) -> List[float]:
    """Round ticks for a span of seconds (1 s .. 1 day steps)."""
    span = hi - lo
    if not (math.isfinite(span)) or span <= 0:
        return [lo] if math.isfinite(lo) else []
    steps = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
    raw = span / max(1, n)
    if raw < 1:  # under a second per tick: plain round numbers
        return nice_ticks(lo, hi, n)
    step = next((s for s in steps if s >= raw), 86400 * math.ceil(raw / 86400))
    first = math.ceil(lo / step) * step
    out = []
    v = first
    while v <= hi and len(out) < 100:
        out.append(float(v))
        v += step
    return out
