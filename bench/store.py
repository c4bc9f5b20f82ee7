"""Benchmarks of the run store (tui_monitor.store).

    python bench/store.py [--points 1000000] [--buckets 400] [--repeats 21] [--names 200000]

Prints one table. Times are medians of repeats (the many-names and many-runs
cases, seconds each, are timed once). The anchor is ``np.sum`` over the same
1,000,000 float64 values, measured in the same run, so ratios carry from one
machine to another better than raw times do.

Many names: each record brings a new metric name (``loss_{step}``, a common
accident). Adding a name is O(1), so the time per name stays flat from 20,000
to ``--names``; it used to grow with the names already there (each new one
copied the run's map: 20k names 1.7 s, 80k 25.7 s, 200k 271 s).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tui_monitor.store import Series, Store, ema_reference  # noqa: E402


def median_time(fn, repeats):
    fn()  # warm
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--buckets", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--names", type=int, default=200_000, help="distinct metric names in the largest case")
    ap.add_argument("--runs", type=int, default=10_000, help="runs in the many-runs case")
    a = ap.parse_args(argv)
    n, nb, r = a.points, a.buckets, a.repeats
    rng = np.random.default_rng(0)
    vals = np.cumsum(rng.standard_normal(n))
    steps = np.arange(n)
    times = 1.7e9 + np.arange(n) * 0.1

    s = Series()
    s.extend(steps, times, vals)
    dirty_vals = vals.copy()
    dirty_vals[rng.integers(0, n, n // 1000)] = np.nan
    dirty_vals[rng.integers(0, n, 10)] = np.inf
    dirty = Series()
    dirty.extend(steps, times, dirty_vals)
    resumed = Series()  # a run resumed from a checkpoint at 60%
    cut = int(n * 0.7)
    back = int(n * 0.6)
    resumed.extend(steps[:cut], times[:cut], vals[:cut])
    resumed.extend(steps[back : back + n - cut], times[cut:], vals[cut:])
    stride = max(1, n // (2 * nb))

    rows = []  # (name, seconds or None, unit value, unit)

    anchor = median_time(lambda: vals.sum(), r)
    rows.append(("anchor: np.sum, %d float64" % n, anchor, None, ""))
    rows.append(("naive stride decimation v[::%d] (copy)" % stride,
                 median_time(lambda: vals[::stride].copy(), r), None, ""))
    rows.append(("decimate %d -> %d buckets, by step" % (n, nb),
                 median_time(lambda: s.decimate(nb), r), None, ""))
    rows.append(("decimate, by time", median_time(lambda: s.decimate(nb, x="time"), r), None, ""))
    rows.append(("decimate, window lo/hi = middle 10%",
                 median_time(lambda: s.decimate(nb, lo=n * 0.45, hi=n * 0.55), r), None, ""))
    rows.append(("decimate, 0.1% NaN + 10 inf",
                 median_time(lambda: dirty.decimate(nb), r), None, ""))
    rows.append(("decimate, steps went back (sorts)",
                 median_time(lambda: resumed.decimate(nb), max(3, r // 3)), None, ""))
    sm = s.ema(0.6)
    rows.append(("decimate an EMA (values=)",
                 median_time(lambda: s.decimate(nb, values=sm), r), None, ""))

    # -- appends
    chunk = 1000

    def bulk():
        t = Series()
        for i in range(0, n, chunk):
            t.extend(steps[i : i + chunk], times[i : i + chunk], vals[i : i + chunk])
        return t

    tb = median_time(bulk, max(3, r // 4))
    rows.append(("extend, %d chunks of %d" % (n // chunk, chunk), tb, n / tb, "points/s"))
    m = min(n, 200_000)
    sl, tl, vl = steps[:m].tolist(), times[:m].tolist(), vals[:m].tolist()

    def single():
        t = Series()
        app = t.append
        for i in range(m):
            app(sl[i], tl[i], vl[i])

    ts1 = median_time(single, 3)
    rows.append(("append, one point a call (%d)" % m, ts1, m / ts1, "points/s"))

    k = min(n, 100_000)
    recs = [{"type": "run", "seq": 0, "run_id": "b", "rank": 0, "name": "b", "start": 0.0}]
    for i in range(k):
        recs.append({"type": "metrics", "seq": i + 1, "step": i, "time": float(i),
                     "values": {"loss": vl[i], "acc": 0.5, "lr": 0.1}})

    def many():
        st = Store()
        st.apply_many(recs, "bench")

    tm = median_time(many, 3)
    rows.append(("Store.apply_many, %d metrics records x 3 values" % k, tm, 3 * k / tm, "values/s"))

    def one_by_one():
        st = Store()
        for rec in recs:
            st.apply(rec, "bench")

    to = median_time(one_by_one, 3)
    rows.append(("Store.apply one by one, same records", to, 3 * k / to, "values/s"))

    # -- many names, many runs: the time per name or run stays flat
    def time_once(fn):
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0

    per_name = {}
    for count in sorted({min(20_000, a.names), min(80_000, a.names), a.names}):
        named = [{"type": "metrics", "seq": i + 1, "step": i, "time": float(i), "values": {"loss_%d" % i: 1.0}}
                 for i in range(count)]

        def names(named=named):
            st = Store()
            st.apply(recs[0], "bench")
            st.apply_many(named, "bench")

        tn = time_once(names)
        per_name[count] = tn / count
        rows.append(("Store.apply_many, %d distinct names (one a record)" % count, tn, count / tn, "names/s"))
    many = []
    for r_ in range(a.runs):
        many.append([{"type": "run", "seq": 0, "run_id": "run%d" % r_, "rank": 0, "name": "r", "start": 0.0},
                     {"type": "metrics", "seq": 1, "step": 0, "time": 0.0, "values": {"loss": 1.0}}])

    def runs():
        st = Store()
        for r_, stream in enumerate(many):
            st.apply_many(stream, r_)

    tr_ = time_once(runs)
    rows.append(("Store.apply_many, %d runs (a header and a record each)" % a.runs, tr_, a.runs / tr_, "runs/s"))

    # -- smoothing
    def ema_full():
        s.drop_caches()
        s.ema(0.6)

    tf = median_time(ema_full, max(3, r // 2))
    rows.append(("ema(0.6), full %d points (cold cache)" % n, tf, None, ""))
    live = Series()
    live.extend(steps[: n - 100_000], times[: n - 100_000], vals[: n - 100_000])
    live.ema(0.6)
    pos = [n - 100_000]

    def ema_incr():
        i = pos[0]
        live.extend(steps[i : i + 1000], times[i : i + 1000], vals[i : i + 1000])
        pos[0] = i + 1000
        live.ema(0.6)

    ti = median_time(ema_incr, min(r, 90))
    rows.append(("ema(0.6) after 1000 new points (incremental)", ti, None, ""))
    kk = min(n, 100_000)
    tr = median_time(lambda: ema_reference(vals[:kk], 0.6), 3) * (n / kk)
    rows.append(("ema python loop reference (scaled to %d)" % n, tr, None, ""))

    # -- memory
    grown = bulk()
    n_grown, cap_grown = len(grown), grown.capacity
    bpp = grown.nbytes / n_grown
    worst = grown
    while True:
        cap = worst.capacity
        worst.append(len(worst), 0.0, 0.0)
        if worst.capacity != cap:
            break
    bpp_worst = worst.nbytes / len(worst)

    print("tui_monitor.store benchmark: numpy %s, python %s" % (np.__version__, sys.version.split()[0]))
    print()
    w = max(len(x[0]) for x in rows) + 2
    print("%-*s %12s %12s %16s" % (w, "case", "median", "x anchor", "throughput"))
    print("-" * (w + 43))
    for name, sec, thr, unit in rows:
        ratio = sec / anchor
        tp = "" if thr is None else "%.3g %s" % (thr, unit)
        print("%-*s %9.3f ms %12.1f %16s" % (w, name, sec * 1e3, ratio, tp))
    print()
    print("bytes/point at %d points (grown by extend): %.2f (capacity %d)" % (n_grown, bpp, cap_grown))
    print("bytes/point just after a growth (worst case): %.2f" % bpp_worst)
    print("bytes/point bound: 20 x growth factor %.1f = %.1f" % (Series.GROWTH, 20 * Series.GROWTH))
    small, large = min(per_name), max(per_name)
    if large > small:
        print("time per name at %d names / at %d: %.2f (1.0: linear; it was ~16 at 200k vs 20k)"
              % (large, small, per_name[large] / per_name[small]))


if __name__ == "__main__":
    main()
