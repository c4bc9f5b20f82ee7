"""One metric's history: an append-only series of (step, wall time, value).

Storage
-------
Three parallel numpy buffers with spare capacity at the end:

* ``steps``: int32 while every step fits (it nearly always does: 2**31 steps),
  promoted once, for good, to int64 by the first step that does not;
* ``times``: float64 epoch seconds, exact;
* ``values``: float64, exact (NaN and ±inf included).

That is 20 bytes a point. Capacity grows by a factor of 1.2 (at least 16
points), so the allocated capacity is never more than 1.2 times the filled
part once past the first few points: at most 24 bytes a stored point counting
the slack, 22 on average over a series' life, and the amortised cost of an
append stays O(1) (each point is copied 5 times on average by the growth, at
memcpy speed). Keeping time exact rather than as float32 offsets was the
choice: the stream format promises readers every value back bit for bit, and
a float32 offset loses a quarter of a second per month of run time. The price
is the int32 steps, whose only cost is that a series with steps beyond ±2**31
takes 24 bytes a point plus slack.

Threads
-------
A series is written by one thread (the ingest side) and read by any number of
others. The writer fills new slots first and publishes the new length last;
it never writes a slot below the published length, and growth copies into new
buffers and swaps them in, leaving the old ones untouched for readers that
still hold them. Readers take the length first and the buffers after
(:meth:`Series.snapshot`), so what they see is always a consistent prefix; the
views they get are read-only. Caches that readers build (EMA, min/max) sit
behind a per-series lock the writer never takes. This relies on the GIL making
attribute reads and writes atomic, as CPython guarantees.
"""

from __future__ import annotations

import math
import threading
from typing import NamedTuple, Optional, Tuple

import numpy as np

from ._numeric import Decimated, decimate_arrays, ema_chunk, search

__all__ = ["Series", "Snapshot"]

_I32_MIN = -(2**31)
_I32_MAX = 2**31 - 1
_EMA_CACHE_MAX = 4


class Snapshot(NamedTuple):
    """A consistent, read-only view of a series' first ``len(steps)`` points."""

    steps: np.ndarray
    times: np.ndarray
    values: np.ndarray
    steps_sorted: bool  # steps non-decreasing over this prefix
    times_sorted: bool  # times non-decreasing over this prefix


class _EmaState:
    __slots__ = ("n", "last", "count", "buf")

    def __init__(self) -> None:
        self.n = 0
        self.last = 0.0
        self.count = 0
        self.buf = np.empty(0, dtype=np.float64)


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


class Series:
    """An append-only, growable series of ``(step, time, value)`` points.

    Steps normally increase but may repeat (several logs per step) or go back
    (a run resumed from a checkpoint). :attr:`monotonic` stays true while they
    never decrease; queries by step use binary search while it holds and a
    full scan once it does not.
    """

    GROWTH = 1.2
    MIN_GROW = 16

    __slots__ = (
        "_n",
        "_steps",
        "_times",
        "_values",
        "monotonic",
        "times_monotonic",
        "_last_step",
        "_last_time",
        "_lock",
        "_ema",
        "_extrema",
        "__weakref__",
    )

    def __init__(self, capacity: int = 0) -> None:
        capacity = max(0, int(capacity))
        self._n = 0
        self._steps = np.empty(capacity, dtype=np.int32)
        self._times = np.empty(capacity, dtype=np.float64)
        self._values = np.empty(capacity, dtype=np.float64)
        #: Steps never decreased so far (repeats allowed).
        self.monotonic = True
        #: Wall times never decreased so far (and none was NaN).
        self.times_monotonic = True
        self._last_step = None  # type: Optional[int]
        self._last_time = -math.inf
        self._lock = threading.Lock()
        self._ema = {}  # type: Dict[float, _EmaState]
        # (n_done, min_value, min_index, max_value, max_index) over finite values
        self._extrema = (0, math.inf, -1, -math.inf, -1)

    # ------------------------------------------------------------------
    # size
    # ------------------------------------------------------------------

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        last = self.last()
        return "Series(len=%d, last=%r, monotonic=%r)" % (self._n, last, self.monotonic)

    @property
    def capacity(self) -> int:
        return len(self._values)

    @property
    def nbytes(self) -> int:
        """Bytes allocated for the points, spare capacity included (caches
        excluded: see :meth:`cache_nbytes`)."""
        return self._steps.nbytes + self._times.nbytes + self._values.nbytes

    def cache_nbytes(self) -> int:
        """Bytes held by the EMA caches."""
        with self._lock:
            return sum(st.buf.nbytes for st in self._ema.values())

    def drop_caches(self) -> None:
        with self._lock:
            self._ema = {}

    # ------------------------------------------------------------------
    # writing (one thread)
    # ------------------------------------------------------------------

    def _grow(self, need: int, wide_steps: bool = False) -> None:
        cap = len(self._values)
        new = cap
        if need > cap:
            new = max(need, cap + max(int(cap * (self.GROWTH - 1.0)), self.MIN_GROW))
        n = self._n
        sdtype = np.int64 if (wide_steps or self._steps.dtype == np.int64) else np.int32
        steps = np.empty(new, dtype=sdtype)
        steps[:n] = self._steps[:n]
        if new != cap:
            times = np.empty(new, dtype=np.float64)
            times[:n] = self._times[:n]
            values = np.empty(new, dtype=np.float64)
            values[:n] = self._values[:n]
            self._times = times
            self._values = values
        self._steps = steps

    def append(self, step: int, time: float, value: float) -> None:
        """Add one point. Amortised O(1)."""
        step = int(step)
        time = float(time)
        n = self._n
        if n >= len(self._values):
            self._grow(n + 1, not (_I32_MIN <= step <= _I32_MAX))
        elif not (_I32_MIN <= step <= _I32_MAX) and self._steps.dtype == np.int32:
            self._grow(n, True)
        self._steps[n] = step
        self._times[n] = time
        self._values[n] = value
        last = self._last_step
        if last is not None and step < last:
            self.monotonic = False
        if not (time >= self._last_time):  # NaN-safe: a NaN time (either side) ends the sorted order
            self.times_monotonic = False
        self._last_step = step
        self._last_time = time
        self._n = n + 1  # publish last

    def extend(self, steps, times, values) -> None:
        """Add many points at once (array-likes of equal length)."""
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        k = len(values)
        if k == 0:
            return
        times = np.asarray(times, dtype=np.float64).reshape(-1)
        steps = np.asarray(steps)
        if steps.dtype.kind not in "iu":
            steps = steps.astype(np.int64)
        steps = steps.reshape(-1)
        if len(steps) != k or len(times) != k:
            raise ValueError("steps, times and values must have the same length")
        n = self._n
        smin = int(steps.min())
        smax = int(steps.max())
        wide = not (_I32_MIN <= smin and smax <= _I32_MAX)
        if n + k > len(self._values) or (wide and self._steps.dtype == np.int32):
            self._grow(n + k, wide)
        self._steps[n : n + k] = steps
        self._times[n : n + k] = times
        self._values[n : n + k] = values
        if self.monotonic:
            last = self._last_step
            if (last is not None and int(steps[0]) < last) or (
                k > 1 and bool((steps[1:] < steps[:-1]).any())
            ):
                self.monotonic = False
        if self.times_monotonic:
            if not (float(times[0]) >= self._last_time) or (  # NaN-safe, as in append
                k > 1 and not bool((times[1:] >= times[:-1]).all())
            ):
                self.times_monotonic = False
        self._last_step = int(steps[-1])
        self._last_time = float(times[-1])
        self._n = n + k  # publish last

    # ------------------------------------------------------------------
    # reading (any thread)
    # ------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        """Read-only views (no copy) of the points published so far."""
        n = self._n  # length first, then flags and buffers
        ms = self.monotonic
        mt = self.times_monotonic
        s = _readonly(self._steps[:n])
        t = _readonly(self._times[:n])
        v = _readonly(self._values[:n])
        return Snapshot(s, t, v, ms, mt)

    @property
    def steps(self) -> np.ndarray:
        """Read-only view of the steps (int32, or int64 once a step needs it)."""
        n = self._n
        return _readonly(self._steps[:n])

    @property
    def times(self) -> np.ndarray:
        n = self._n
        return _readonly(self._times[:n])

    @property
    def values(self) -> np.ndarray:
        n = self._n
        return _readonly(self._values[:n])

    def last(self) -> Optional[Tuple[int, float]]:
        """``(step, value)`` of the last point, or None when empty."""
        n = self._n
        if n == 0:
            return None
        s, v = self._steps, self._values
        return int(s[n - 1]), float(v[n - 1])

    def last_finite(self) -> Optional[Tuple[int, float]]:
        """``(step, value)`` of the last point with a finite value."""
        snap = self.snapshot()
        v = snap.values
        # Look back in growing windows: usually the last point is finite.
        end = len(v)
        size = 16
        while end > 0:
            start = max(0, end - size)
            fin = np.flatnonzero(np.isfinite(v[start:end]))
            if len(fin):
                i = start + int(fin[-1])
                return int(snap.steps[i]), float(v[i])
            end = start
            size *= 4
        return None

    def _update_extrema(self) -> tuple:
        with self._lock:
            done, lo, ilo, hi, ihi = self._extrema
            n = self._n
            if n > done:
                chunk = self._values[done:n]
                fin = np.isfinite(chunk)
                if fin.all():
                    a = int(chunk.argmin())
                    b = int(chunk.argmax())
                    found = True
                elif fin.any():
                    a = int(np.where(fin, chunk, np.inf).argmin())
                    b = int(np.where(fin, chunk, -np.inf).argmax())
                    found = True
                else:
                    found = False
                if found:
                    if chunk[a] < lo:  # strict: ties keep the earliest
                        lo, ilo = float(chunk[a]), done + a
                    if chunk[b] > hi:
                        hi, ihi = float(chunk[b]), done + b
                self._extrema = (n, lo, ilo, hi, ihi)
            return self._extrema

    def min(self) -> Optional[Tuple[float, int]]:
        """``(value, step)`` of the smallest finite value (the earliest if
        tied), or None when there is none. Incremental: only points appended
        since the last call are scanned."""
        _, lo, ilo, _, _ = self._update_extrema()
        if ilo < 0:
            return None
        return lo, int(self._steps[ilo])

    def max(self) -> Optional[Tuple[float, int]]:
        """``(value, step)`` of the largest finite value, as :meth:`min`."""
        _, _, _, hi, ihi = self._update_extrema()
        if ihi < 0:
            return None
        return hi, int(self._steps[ihi])

    def _range_index(self, snap: Snapshot, lo, hi):
        s = snap.steps
        lo = -math.inf if lo is None else float(lo)
        hi = math.inf if hi is None else float(hi)
        if snap.steps_sorted:
            return slice(search(s, lo, "left"), search(s, hi, "right"))
        mask = np.ones(len(s), dtype=bool)
        if lo > -math.inf:
            mask &= s >= lo
        if hi < math.inf:
            mask &= s <= hi
        return mask

    def range(self, step_lo=None, step_hi=None) -> np.ndarray:
        """Values of the points with ``step_lo <= step <= step_hi`` (both
        inclusive; None leaves that side open), in the order they were
        appended.

        When steps went back (``monotonic`` is false: a resumed run), every
        point whose step lies in the range comes back, from before and after
        the restart alike, in arrival order; the sorted case is a view, the
        other a copy."""
        snap = self.snapshot()
        return snap.values[self._range_index(snap, step_lo, step_hi)]

    def window(self, step_lo=None, step_hi=None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(steps, times, values)`` of the points that :meth:`range` selects."""
        snap = self.snapshot()
        ix = self._range_index(snap, step_lo, step_hi)
        return snap.steps[ix], snap.times[ix], snap.values[ix]

    def ema(self, weight: float) -> np.ndarray:
        """TensorBoard's debiased exponential moving average, one output per
        point (read-only).

        ``last = last * weight + (1 - weight) * v`` over finite values, each
        divided by ``1 - weight**n`` where ``n`` counts the finite points so
        far; non-finite points come out as they are and do not touch the
        average. ``weight`` is in [0, 1]; 0 returns the values.

        Incremental: a cache per weight (the last 4 weights asked for) keeps
        the state and the output, so a call only processes the points
        appended since the previous one. Each cached weight holds 8 bytes a
        point (see :meth:`cache_nbytes`, :meth:`drop_caches`).

        TensorBoard also returns a series whose values are all equal
        unsmoothed; this does not (it cannot know the series will stay
        constant), and the debiased EMA of a constant is that constant up to
        rounding.
        """
        w = float(weight)
        if not (0.0 <= w <= 1.0):
            raise ValueError("weight must be in [0, 1]")
        with self._lock:
            st = self._ema.pop(w, None)
            if st is None:
                st = _EmaState()
                if len(self._ema) >= _EMA_CACHE_MAX:
                    self._ema.pop(next(iter(self._ema)))
            self._ema[w] = st  # most recently used last
            n = self._n
            if n > st.n:
                out, st.last, st.count = ema_chunk(self._values[st.n : n], w, st.last, st.count)
                if n > len(st.buf):
                    cap = max(n, int(len(st.buf) * 1.5), 16)
                    buf = np.empty(cap, dtype=np.float64)
                    buf[: st.n] = st.buf[: st.n]
                    st.buf = buf
                st.buf[st.n : n] = out
                st.n = n
            return _readonly(st.buf[: st.n])

    def decimate(
        self,
        n_buckets: int,
        x: str = "step",
        lo: Optional[float] = None,
        hi: Optional[float] = None,
        values: Optional[np.ndarray] = None,
    ) -> Decimated:
        """Min/max decimation for a chart: about two points per bucket.

        ``x`` is ``"step"``, ``"time"`` or ``"index"``; the buckets split
        ``[lo, hi]`` (default: the series' own x range) evenly, so a bucket is
        a pixel column. ``values`` replaces the series' values (e.g.
        ``series.ema(0.6)``), against the same x; only its first
        ``min(len(values), len(self))`` points are used. The contract of the
        result (markers for NaN and ±inf, the no-decimation case for short
        windows) is on :class:`~tui_monitor.store.Decimated`.

        When x is not sorted (steps that went back, a clock that jumped) the
        points are sorted by x first, ties keeping arrival order, so the
        chart shows both passes over a resumed stretch.
        """
        snap = self.snapshot()
        y = snap.values if values is None else np.asarray(values, dtype=np.float64)
        n = min(len(y), len(snap.values))
        if x == "step":
            xs, srt = snap.steps, snap.steps_sorted
        elif x == "time":
            xs, srt = snap.times, snap.times_sorted
        elif x == "index":
            xs, srt = np.arange(n, dtype=np.int64), True
        else:
            raise ValueError("x must be 'step', 'time' or 'index'")
        return decimate_arrays(xs[:n], y[:n], n_buckets, lo, hi, x_sorted=srt)
