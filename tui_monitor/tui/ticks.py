"""Axis ticks: "nice" values (1, 2, 5 times a power of ten) for linear and
log axes, and their labels. Pure functions."""
from __future__ import annotations

import math
from typing import List, Optional

__all__ = ["nice_ticks", "log_ticks", "time_ticks", "tick_labels", "fmt_log_tick"]

#: SI suffixes for large tick values.
_SI = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


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


def _exact(labels: List[str], ticks: List[float], scale: float, tol: float) -> bool:
    """The labels, read back (times ``scale``), are the ticks, and differ."""
    if len(set(labels)) < len(labels):
        return False
    try:
        return all(abs(float(l) * scale - t) <= tol for l, t in zip(labels, ticks))
    except ValueError:
        return False


def _fixed(ticks: List[float], scale: float, tol: float) -> Optional[List[str]]:
    """Fixed-point labels of ``ticks / scale`` with the fewest decimals that
    make every label exact (the same number of decimals on each: 0.50 next
    to 0.75)."""
    for decimals in range(0, 13):
        labels = ["%.*f" % (decimals, t / scale) for t in ticks]
        labels = ["0" if float(l) == 0 else l for l in labels]
        if _exact(labels, ticks, scale, tol):
            return labels
    return None


def _scientific(ticks: List[float], tol: float) -> Optional[List[str]]:
    """``1.5e-7``-style labels with the fewest mantissa digits that are exact."""
    for digits in range(0, 10):
        labels = []
        for t in ticks:
            if t == 0:
                labels.append("0")
                continue
            mant, exp = ("%.*e" % (digits, t)).split("e")
            labels.append("%se%d" % (mant, int(exp)))
        if _exact(labels, ticks, 1.0, tol):
            return labels
    return None


def tick_labels(ticks: List[float], width: int = 7, si_from: float = 1e4) -> List[str]:
    """Labels for evenly spaced ``ticks``: exact (each reads back as its tick,
    with as many decimals as the step needs and no more: 1.25 1.00 0.75, not
    1.2 1.0 0.8) and distinct; fixed-point when that fits ``width``, with an
    SI suffix from ``si_from`` (50k, 2.5M), else scientific (2e-5). When no
    exact form fits, the shortest exact one (the caller asks for fewer ticks)."""
    ticks = [float(t) for t in ticks]
    if not ticks:
        return []
    step = min((abs(b - a) for a, b in zip(ticks, ticks[1:])), default=0.0) or abs(ticks[0]) or 1.0
    tol = step * 1e-6
    big = max(abs(t) for t in ticks)
    tries = []
    if big >= si_from:
        scale, suffix = next(((m, sfx) for m, sfx in _SI if big >= m), (1.0, ""))
        fixed = _fixed(ticks, scale, tol)
        if fixed is not None:
            tries.append([l if l == "0" else l + suffix for l in fixed])
    elif big >= 1e-3:  # smaller values read better as 2e-5 than as 0.00002
        fixed = _fixed(ticks, 1.0, tol)
        if fixed is not None:
            tries.append(fixed)
    sci = _scientific(ticks, tol)
    if sci is not None:
        tries.append(sci)
    fitting = [t for t in tries if max(map(len, t)) <= width]
    if fitting:
        return fitting[0]
    if tries:
        return min(tries, key=lambda t: max(map(len, t)))
    return ["%g" % t for t in ticks]


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
