"""Array kernels behind :class:`~tui_monitor.store.Series`: smoothing and
min/max decimation. Pure functions over numpy arrays, no state.

Only numpy and the standard library are imported here.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional, Tuple

import numpy as np

__all__ = [
    "NAN",
    "POSINF",
    "NEGINF",
    "Decimated",
    "affine_scan",
    "ema_chunk",
    "ema_reference",
    "decimate_arrays",
    "nonfinite_kind",
]

# Marker kinds for non-finite points (``Decimated.mark_kind``).
NAN = 0
POSINF = 1
NEGINF = 2

# Largest scale factor a^-k used inside one block of the blocked scan: keeps
# c / a^k far from float64 overflow (values up to ~1e200 stay exact enough).
_LOG_SCALE_LIMIT = 100.0 * math.log(10.0)


# --------------------------------------------------------------------------
# Smoothing
# --------------------------------------------------------------------------


def _scan_loop(a: float, c: np.ndarray, y0: float) -> np.ndarray:
    out = np.empty(len(c), dtype=np.float64)
    y = y0
    for i, ci in enumerate(c.tolist()):
        y = a * y + ci
        out[i] = y
    return out


def affine_scan(a: float, c: np.ndarray, y0: float = 0.0) -> np.ndarray:
    """``y[i] = a * y[i-1] + c[i]`` with ``y[-1] = y0``, for ``0 <= a <= 1``.

    Vectorised by blocks: within a block of length B,
    ``y[k] = a^k * cumsum(c / a^j)[k] + a^(k+1) * y_start``, with B chosen so
    that ``a^-B`` stays below 1e100; the states carried from block to block
    follow the same recurrence with ``a^B``, solved recursively (the number of
    blocks shrinks by B each level). The rounding error is of the order of
    ``eps * B`` relative to the terms' magnitudes, far below what a chart can
    show; a block whose result overflows falls back to the plain loop.
    """
    c = np.asarray(c, dtype=np.float64)
    m = len(c)
    if m == 0:
        return np.empty(0, dtype=np.float64)
    if a == 0.0:
        return c.copy()
    if m <= 16:
        return _scan_loop(a, c, y0)
    if a >= 1.0:
        return np.cumsum(c) + y0
    block = int(_LOG_SCALE_LIMIT / -math.log(a))
    if block < 2:  # a < 1e-100: too small to scale; rare, and exact this way
        return _scan_loop(a, c, y0)
    block = min(block, m)
    nb = -(-m // block)
    pw = a ** np.arange(1, block + 1, dtype=np.float64)  # a^(k+1)
    if nb == 1:
        local = np.cumsum(c / pw[:m] * a)  # sum_j c_j a^-j
        out = local * (pw[:m] / a)
        out += y0 * pw[:m]
    else:
        padded = np.zeros(nb * block, dtype=np.float64)
        padded[:m] = c
        mat = padded.reshape(nb, block)
        inv = a / pw  # a^-k
        local = np.cumsum(mat * inv, axis=1)
        local *= pw / a
        ends = local[:, -1].copy()
        carried = affine_scan(float(a ** block), ends, y0)
        starts = np.empty(nb, dtype=np.float64)
        starts[0] = y0
        starts[1:] = carried[:-1]
        local += starts[:, None] * pw[None, :]
        out = local.reshape(-1)[:m]
    if not np.isfinite(out).all():
        return _scan_loop(a, c, y0)
    return out


def ema_chunk(
    values: np.ndarray, weight: float, last: float, count: int
) -> Tuple[np.ndarray, float, int]:
    """Continue TensorBoard's debiased EMA over ``values``.

    ``last`` and ``count`` are the state after the previous points (``0.0``
    and ``0`` at the start): the raw EMA accumulator and the number of finite
    points folded in. Returns ``(smoothed, last, count)``. Non-finite points
    come out unchanged and leave the state alone. With ``weight == 1`` the
    debias factor is 1, exactly as TensorBoard does (the output is then 0).
    """
    values = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(values)
    allfinite = bool(finite.all())
    xs = values if allfinite else values[finite]
    m = len(xs)
    if m == 0:
        return values.copy(), last, count
    w = float(weight)
    acc = affine_scan(w, (1.0 - w) * xs, last)
    sm = acc
    if 0.0 < w < 1.0:
        # Debias: divide by 1 - w^n. Once w^n < 2^-54 the divisor rounds to
        # exactly 1, so only the first points of a series need it.
        head = int(math.ceil(54 * math.log(2.0) / -math.log(w))) + 1
        k = min(m, max(0, head - count))
        if k:
            n = np.arange(count + 1, count + k + 1, dtype=np.float64)
            sm = acc.copy() if k < m else acc
            sm[:k] = acc[:k] / (1.0 - np.power(w, n))
    if allfinite:
        out = sm if sm is not values else sm.copy()
    else:
        out = values.copy()
        out[finite] = sm
    return out, float(acc[-1]), count + m


def ema_reference(values, weight: float) -> np.ndarray:
    """TensorBoard's smoothing as a plain loop (for tests and benchmarks)."""
    out = []
    last = 0.0
    n = 0
    for v in values:
        v = float(v)
        if not math.isfinite(v):
            out.append(v)
            continue
        last = last * weight + (1 - weight) * v
        n += 1
        debias = 1.0 if weight == 1 else 1 - weight ** n
        out.append(last / debias)
    return np.asarray(out, dtype=np.float64)


# --------------------------------------------------------------------------
# Decimation
# --------------------------------------------------------------------------


class Decimated(NamedTuple):
    """The result of a min/max decimation.

    ``x``, ``y``: the points to draw, in x order (``x`` int64 for steps and
    indices, float64 for times; ``y`` float64, always finite): for every
    bucket holding finite values, its minimum and its maximum, in the order
    they occur (one point when they are the same point). When the window holds
    no more than ``2 * n_buckets`` points nothing is decimated and every
    finite point comes back.

    ``mark_x``, ``mark_kind``: the non-finite points, as markers: ``mark_kind``
    is int8, :data:`NAN` (0), :data:`POSINF` (1) or :data:`NEGINF` (2). When
    decimating, one marker per bucket and kind (the first occurrence), so at
    most ``3 * n_buckets``; otherwise every non-finite point. Non-finite points
    never appear in ``x``/``y``.
    """

    x: np.ndarray
    y: np.ndarray
    mark_x: np.ndarray
    mark_kind: np.ndarray


def nonfinite_kind(v: np.ndarray) -> np.ndarray:
    """int8 kind codes for an array of non-finite values."""
    kind = np.full(len(v), NAN, dtype=np.int8)
    kind[v == np.inf] = POSINF
    kind[v == -np.inf] = NEGINF
    return kind


def _empty(xdtype) -> Decimated:
    return Decimated(
        np.empty(0, dtype=xdtype),
        np.empty(0, dtype=np.float64),
        np.empty(0, dtype=xdtype),
        np.empty(0, dtype=np.int8),
    )


def search(x: np.ndarray, v: float, side: str = "left") -> int:
    """``np.searchsorted(x, v, side)`` for a sorted ``x`` and any float ``v``
    (±inf included), without converting ``x``: an integer ``x`` is queried
    with an integer of its own dtype."""
    n = len(x)
    if x.dtype.kind not in "iu":
        return int(np.searchsorted(x, x.dtype.type(v), side))
    if math.isnan(v):
        return n
    info = np.iinfo(x.dtype)
    if side == "left":  # first i with x[i] >= v, i.e. x[i] >= ceil(v)
        if v <= info.min:
            return 0
        if v > info.max:
            return n
        return int(np.searchsorted(x, x.dtype.type(math.ceil(v)), "left"))
    # first i with x[i] > v, i.e. x[i] > floor(v)
    if v < info.min:
        return 0
    if v >= info.max:
        return n
    return int(np.searchsorted(x, x.dtype.type(math.floor(v)), "right"))


def _edges_for(x: np.ndarray, lo: float, hi: float, n_buckets: int) -> np.ndarray:
    """Start index of each bucket in the sorted ``x``; buckets split [lo, hi]
    evenly, each half-open except the last, which includes ``hi``."""
    edges = np.linspace(lo, hi, n_buckets + 1)[:-1]
    if x.dtype.kind in "iu":
        # For integer x, "x >= e" is "x >= ceil(e)"; query in x's own dtype so
        # searchsorted does not convert the whole array.
        info = np.iinfo(x.dtype)
        q = np.clip(np.ceil(edges), info.min, info.max).astype(x.dtype)
    else:
        q = edges.astype(x.dtype)
    return np.searchsorted(x, q, side="left")


def decimate_arrays(
    x: np.ndarray,
    y: np.ndarray,
    n_buckets: int,
    lo: Optional[float] = None,
    hi: Optional[float] = None,
    x_sorted: bool = True,
) -> Decimated:
    """Min/max decimation of ``y`` against ``x`` into ``n_buckets`` buckets
    spanning ``[lo, hi]`` (default: the range of ``x``). See
    :class:`Decimated` for the contract. ``x`` must be non-decreasing when
    ``x_sorted`` is true; otherwise the points are put in x order first (a
    stable sort: ties keep their arrival order), which costs O(n log n).
    """
    if n_buckets < 1:
        raise ValueError("n_buckets must be at least 1")
    x = np.asarray(x)
    y = np.asarray(y, dtype=np.float64)
    n = min(len(x), len(y))
    x = x[:n]
    y = y[:n]
    xdtype = np.int64 if x.dtype.kind in "iub" else np.float64
    if n == 0:
        return _empty(xdtype)
    if not x_sorted:
        order = np.argsort(x, kind="stable")
        x = x[order]
        y = y[order]
    if lo is None:
        lo = x[0]
    if hi is None:
        hi = x[-1]
    lo = float(lo)
    hi = float(hi)
    if math.isnan(lo) or math.isnan(hi) or hi < lo:
        return _empty(xdtype)
    # The window [lo, hi].
    i0 = search(x, lo, "left")
    i1 = search(x, hi, "right")
    if i1 <= i0:
        return _empty(xdtype)
    xw = x[i0:i1]
    yw = y[i0:i1]
    m = i1 - i0

    if m <= 2 * n_buckets:
        fin = np.isfinite(yw)
        if fin.all():
            return Decimated(
                xw.astype(xdtype), yw.copy(), np.empty(0, xdtype), np.empty(0, np.int8)
            )
        bad = ~fin
        return Decimated(
            xw[fin].astype(xdtype), yw[fin], xw[bad].astype(xdtype), nonfinite_kind(yw[bad])
        )

    if hi == lo or not (math.isfinite(lo) and math.isfinite(hi)):
        # Degenerate or unbounded range: the data's own span.
        lo2, hi2 = float(xw[0]), float(xw[-1])
        starts = _edges_for(xw, lo2, hi2, n_buckets) if hi2 > lo2 else np.zeros(1, np.intp)
    else:
        starts = _edges_for(xw, lo, hi, n_buckets)
    ends = np.empty_like(starts)
    ends[:-1] = starts[1:]
    ends[-1] = m

    # Pass 1: argmin/argmax of every bucket. argmin lands on the first NaN
    # if there is one, else on -inf if there is one; argmax on +inf: so a
    # bucket is clean exactly when both extremes it finds are finite.
    sl = [(s, e) for s, e in zip(starts.tolist(), ends.tolist()) if s < e]
    ext = []  # (a, b) per bucket of sl, indices into the window; None if dirty
    dirty = []  # positions in sl
    isfinite = math.isfinite
    for j, (s, e) in enumerate(sl):
        seg = yw[s:e]
        a = int(seg.argmin())
        b = int(seg.argmax())
        if isfinite(seg[a]) and isfinite(seg[b]):
            ext.append((s + a, s + b))
        else:
            ext.append(None)
            dirty.append(j)

    mark_x = np.empty(0, xdtype)
    mark_kind = np.empty(0, np.int8)
    if dirty:
        # Pass 2, over the stretch the dirty buckets cover: markers (the first
        # point of each kind in each bucket) and the extremes of the finite
        # values, from copies where the non-finite points cannot win.
        lo_i = sl[dirty[0]][0]
        hi_i = sl[dirty[-1]][1]
        part = yw[lo_i:hi_i]
        bad = np.flatnonzero(~np.isfinite(part))
        kinds = nonfinite_kind(part[bad])
        bad += lo_i
        bstarts = np.asarray([s for s, _ in sl], dtype=np.intp)
        bucket = np.searchsorted(bstarts, bad, side="right") - 1
        _, first = np.unique(bucket * 3 + kinds, return_index=True)
        first.sort()
        mark_x = xw[bad[first]].astype(xdtype)
        mark_kind = kinds[first]
        ymin = part.copy()
        ymin[bad - lo_i] = np.inf
        ymax = part.copy()
        ymax[bad - lo_i] = -np.inf
        for j in dirty:
            s, e = sl[j]
            a = int(ymin[s - lo_i : e - lo_i].argmin())
            if ymin[s - lo_i + a] == np.inf:  # no finite value in the bucket
                continue
            b = int(ymax[s - lo_i : e - lo_i].argmax())
            ext[j] = (s + a, s + b)

    keep = []  # indices into the window, in x order
    for ab in ext:
        if ab is None:
            continue
        a, b = ab
        if a == b:
            keep.append(a)
        elif a < b:
            keep.append(a)
            keep.append(b)
        else:
            keep.append(b)
            keep.append(a)
    idx = np.asarray(keep, dtype=np.intp)
    return Decimated(xw[idx].astype(xdtype), yw[idx], mark_x, mark_kind)
