"""The axes of a chart: the y range (margins, constant series, values
orders of magnitude off), "nice" tick values (1, 2, 2.5, 5 times a power of
ten) for linear and log axes, and exact labels for them. Pure functions."""
from __future__ import annotations

import math
from typing import List, NamedTuple, Optional, Tuple

import numpy as np

__all__ = ["YView", "padded_range", "robust_range", "nice_ticks", "log_ticks", "time_ticks", "tick_labels",
           "log_tick_labels"]

#: SI suffixes for large tick values.
_SI = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


#: A series whose values differ by less than this fraction of their size is
#: constant (a learning rate, seen through float noise): drawn flat in the
#: middle of an axis of +-50% around it.
CONSTANT_SPAN = 1e-9
#: The least span of a linear y axis, as a fraction of the values' size: a
#: series that moves by less (a decay barely begun) is drawn nearly flat, not
#: stretched over the whole height with labels that cannot tell ticks apart.
MIN_SPAN = 0.01
#: The same on a log axis, in decades.
MIN_LOG_SPAN = 0.1


def padded_range(lo: float, hi: float, log_y: bool = False) -> Tuple[float, float]:
    """The axis range for data from ``lo`` to ``hi`` (on the plotted scale):
    a margin around varying data; a constant one in the middle of a range of
    +-50% of its value (+-1 around 0; half a decade each way on a log axis);
    at least :data:`MIN_SPAN` of its size (:data:`MIN_LOG_SPAN` decades)."""
    span = hi - lo
    if log_y:
        if span < MIN_LOG_SPAN:
            mid = (lo + hi) / 2
            half = 0.5 if span <= CONSTANT_SPAN else MIN_LOG_SPAN / 2
            return mid - half, mid + half
        return lo - span * 0.04, hi + span * 0.04
    size = max(abs(lo), abs(hi))
    if span <= CONSTANT_SPAN * size or size == 0 or not math.isfinite(span):
        mid = (lo + hi) / 2 if math.isfinite(span) else lo
        half = abs(mid) * 0.5 if mid else 1.0
        return mid - half, mid + half
    if span < MIN_SPAN * size:
        mid = (lo + hi) / 2
        return mid - MIN_SPAN * size / 2, mid + MIN_SPAN * size / 2
    return lo - span * 0.04, hi + span * 0.04


class YView(NamedTuple):
    """The y axis of a chart: ``range`` (lo, hi) on the plotted scale (log10
    of the values on a log axis; None: nothing to draw); ``clipped_hi`` /
    ``clipped_lo``: values of a line lie above / below it, off the scale."""

    range: Optional[Tuple[float, float]]
    clipped_hi: bool = False
    clipped_lo: bool = False


#: A value this many robust spreads (the interquartile range, at least 1e-3
#: of the median's size; a quarter decade on a log axis) from the median is
#: orders of magnitude off: the axis then shows the data within
#: :data:`KEEP_SPREADS` spreads and the rest is drawn off the scale.
FAR_SPREADS = 1000.0
KEEP_SPREADS = 20.0
FAR_SPREADS_LOG = 40.0  # 10 decades
KEEP_SPREADS_LOG = 12.0


def robust_range(values: np.ndarray, band: Optional[np.ndarray] = None, log_y: bool = False) -> YView:
    """The y axis for the lines' ``values`` (on the plotted scale) and a
    faint ``band`` beneath them.

    One run orders of magnitude off (a divergence to 1e36) does not flatten
    the others: when some values lie :data:`FAR_SPREADS` robust spreads from
    the median, the axis spans only the values within :data:`KEEP_SPREADS`
    of it, and the rest is off the scale (the chart draws arrows there and
    says so). An ordinary curve (a loss falling tenfold) is never cut. The
    band widens the axis only to its 2nd..98th percentiles: a raw spike does
    not squash the smoothed line it surrounds."""
    lo, hi = float(values.min()), float(values.max())
    clipped_hi = clipped_lo = False
    if len(values) >= 8:
        q25, median, q75 = np.percentile(values, (25, 50, 75))
        floor = 0.25 if log_y else 1e-3 * abs(median)
        spread = max(q75 - q25, floor, 1e-300)
        far, keep = (FAR_SPREADS_LOG, KEEP_SPREADS_LOG) if log_y else (FAR_SPREADS, KEEP_SPREADS)
        if hi > median + far * spread:
            clipped_hi = True
            hi = float(values[values <= median + keep * spread].max())
        if lo < median - far * spread:
            clipped_lo = True
            lo = float(values[values >= median - keep * spread].min())
    if band is not None and len(band):
        b_lo, b_hi = np.percentile(band, (2, 98))
        if not clipped_lo:
            lo = min(lo, float(b_lo))
        if not clipped_hi:
            hi = max(hi, float(b_hi))
    return YView(padded_range(lo, hi, log_y), clipped_hi, clipped_lo)


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


def log_tick_labels(values: List[float]) -> List[str]:
    """Labels for the ticks of a log axis (``values`` are the values, not
    their logs), in one form: plain (0.01 .. 1000) when every tick is in that
    range, else scientific for all (1e-3 .. 1e5, 2e5), never a mix of 10000
    and 1e5 on one axis."""
    if all(1e-3 <= v < 1e4 for v in values):
        return ["%g" % float("%.2g" % v) for v in values]
    out = []
    for v in values:
        mant, exp = ("%.0e" % v).split("e")
        out.append("%se%d" % (mant, int(exp)))
    return out


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
