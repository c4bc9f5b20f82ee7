"""Tests of the run store: series growth and queries, smoothing, decimation,
the record-applying store."""

from __future__ import annotations

import math
import subprocess
import sys
import threading

import numpy as np
import pytest

from tui_monitor.store import (
    NAN,
    NEGINF,
    POSINF,
    Series,
    Store,
    decimate_arrays,
)

INF = math.inf


def ema_loop(values, w):
    """TensorBoard's smoothing, written out (the reference)."""
    out = []
    last = 0.0
    n = 0
    for v in values:
        if not math.isfinite(v):
            out.append(v)
            continue
        last = last * w + (1 - w) * v
        n += 1
        out.append(last / (1 - w**n) if w != 1 else last)
    return np.array(out, dtype=np.float64)


def filled(values, steps=None, times=None):
    s = Series()
    values = list(values)
    steps = range(len(values)) if steps is None else steps
    times = [1000.0 + i for i in range(len(values))] if times is None else times
    for st, t, v in zip(steps, times, values):
        s.append(st, t, v)
    return s


# -- imports ------------------------------------------------------------------


def test_store_imports_no_ui_or_pydantic():
    code = (
        "import sys, tui_monitor.store; "
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('textual', 'rich', 'pydantic', 'watchdog')]; print(bad); "
        "sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


# -- growth and storage ----------------------------------------------------


def test_growth_keeps_every_point_exactly():
    rng = np.random.default_rng(1)
    n = 5000
    steps = np.cumsum(rng.integers(0, 3, n))
    times = 1.7e9 + np.cumsum(rng.random(n))
    values = rng.standard_normal(n) * 10.0 ** rng.integers(-300, 300, n)
    values[::97] = np.nan
    values[5] = INF
    values[6] = -INF
    s = Series()
    caps = set()
    for i in range(n):
        s.append(int(steps[i]), float(times[i]), float(values[i]))
        caps.add(s.capacity)
    assert len(caps) > 10  # it did grow, many times
    assert len(s) == n
    np.testing.assert_array_equal(s.steps, steps)
    assert s.times.tobytes() == times.tobytes()
    assert s.values.tobytes() == values.tobytes()  # bit for bit, NaN included


def test_extend_and_append_mix_and_views_are_readonly():
    s = Series()
    s.extend([0, 1, 2], [10.0, 11.0, 12.0], [1.0, 2.0, 3.0])
    s.append(3, 13.0, 4.0)
    s.extend(np.arange(4, 1000), np.arange(4, 1000) + 10.0, np.arange(4, 1000) + 1.0)
    np.testing.assert_array_equal(s.values, np.arange(1000) + 1.0)
    np.testing.assert_array_equal(s.steps, np.arange(1000))
    with pytest.raises(ValueError):
        s.values[0] = 5.0
    with pytest.raises(ValueError):
        s.extend([1, 2], [1.0], [1.0, 2.0])
    assert s.last() == (999, 1000.0)


def test_big_steps_promote_to_int64():
    s = filled([1.0, 2.0])
    assert s.steps.dtype == np.int32
    s.append(2**40, 1.0, 3.0)
    s.extend([2**41, -(2**35)], [1.0, 1.0], [4.0, 5.0])
    assert s.steps.dtype == np.int64
    assert s.steps.tolist() == [0, 1, 2**40, 2**41, -(2**35)]
    assert not s.monotonic
    s2 = Series()
    s2.extend([2**33], [0.0], [1.0])
    assert s2.steps.tolist() == [2**33]


def test_bytes_per_point_at_a_million_points():
    s = Series()
    rng = np.random.default_rng(0)
    n = 1_000_000
    vals = rng.standard_normal(n)
    # Grow the way a live stream does (small batches), then by single appends.
    for i in range(0, n - 100, 997):
        j = min(i + 997, n - 100)
        s.extend(np.arange(i, j), np.full(j - i, 1.7e9), vals[i:j])
    for i in range(len(s), n):
        s.append(i, 1.7e9, float(vals[i]))
    assert len(s) == n
    assert s.nbytes / n <= 24.0
    # The bound holds just after a growth as well, the worst moment.
    while True:
        cap = s.capacity
        s.append(len(s), 1.7e9, 0.0)
        if s.capacity != cap:
            break
    assert s.nbytes / len(s) <= 24.0


# -- queries ----------------------------------------------------------------


def test_last_min_max_with_nonfinite():
    s = Series()
    assert s.last() is None and s.min() is None and s.max() is None
    s.append(0, 0.0, math.nan)
    assert s.min() is None and s.max() is None
    assert s.last()[0] == 0 and math.isnan(s.last()[1])
    s.append(1, 1.0, -INF)
    s.append(2, 2.0, 3.0)
    s.append(3, 3.0, INF)
    assert s.min() == (3.0, 2) and s.max() == (3.0, 2)
    s.append(4, 4.0, 1.0)
    s.append(5, 5.0, math.nan)
    s.append(6, 6.0, 1.0)  # a tie: the earliest wins
    assert s.min() == (1.0, 4)
    s.extend([7, 8, 9], [7.0, 8.0, 9.0], [0.5, math.nan, 7.0])
    assert s.min() == (0.5, 7)
    assert s.max() == (7.0, 9)
    assert s.last_finite() == (9, 7.0)
    s.append(10, 10.0, math.nan)
    assert s.last_finite() == (9, 7.0)


def test_range_sorted_with_repeats():
    s = filled([float(i) for i in range(10)], steps=[0, 1, 1, 2, 3, 3, 3, 4, 6, 9])
    assert s.monotonic
    assert s.range(1, 3).tolist() == [1, 2, 3, 4, 5, 6]
    assert s.range(5, 8).tolist() == [8]
    assert s.range(None, 0).tolist() == [0]
    assert s.range(9, None).tolist() == [9]
    assert s.range(1.5, 2.5).tolist() == [3]
    assert s.range(10, 20).tolist() == []
    assert s.range(-INF, INF).tolist() == list(range(10))
    st, t, v = s.window(3, 3)
    assert st.tolist() == [3, 3, 3] and v.tolist() == [4, 5, 6]


def test_range_unsorted_steps_after_a_restart():
    # A run logs steps 0..9, dies, resumes from a checkpoint at step 5.
    steps = list(range(10)) + list(range(5, 12))
    values = [float(i) for i in range(len(steps))]
    s = filled(values, steps=steps)
    assert not s.monotonic
    # Every point in the step range, both passes, in arrival order.
    assert s.range(6, 7).tolist() == [6.0, 7.0, 11.0, 12.0]
    assert s.range(10, None).tolist() == [15.0, 16.0]
    assert s.range(None, 1).tolist() == [0.0, 1.0]
    st, _, v = s.window(8, 9)
    assert st.tolist() == [8, 9, 8, 9] and v.tolist() == [8.0, 9.0, 13.0, 14.0]


def test_monotonic_flag_from_extend():
    s = Series()
    s.extend([0, 1, 2], [0, 1, 2], [0, 0, 0])
    assert s.monotonic and s.times_monotonic
    s.extend([2, 3], [1.5, 4], [0, 0])
    assert s.monotonic and not s.times_monotonic
    s.extend([1], [5], [0])
    assert not s.monotonic


# -- smoothing ----------------------------------------------------------------


@pytest.mark.parametrize("w", [0.0, 0.3, 0.6, 0.9, 0.99, 0.999, 1.0])
def test_ema_matches_tensorboard_loop(w):
    rng = np.random.default_rng(7)
    v = np.cumsum(rng.standard_normal(3000)) + 50
    v[rng.integers(0, 3000, 40)] = np.nan
    v[0] = np.nan  # a non-finite first point must not start the count
    v[10] = INF
    v[11] = -INF
    s = Series()
    s.extend(np.arange(3000), np.zeros(3000), v)
    got = s.ema(w)
    ref = ema_loop(v.tolist(), w)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10, equal_nan=True)
    assert np.isposinf(got[10]) and np.isneginf(got[11]) and np.isnan(got[0])


def test_ema_incremental_equals_full():
    rng = np.random.default_rng(3)
    v = rng.standard_normal(20000)
    v[rng.integers(0, 20000, 100)] = np.nan
    s = Series()
    live = Series()
    s.extend(np.arange(20000), np.zeros(20000), v)
    pieces = []
    i = 0
    while i < 20000:  # grow live, asking for the EMA as a UI would
        k = int(rng.integers(1, 700))
        if k < 5:
            for j in range(i, min(i + k, 20000)):
                live.append(j, 0.0, float(v[j]))
        else:
            live.extend(np.arange(i, min(i + k, 20000)), np.zeros(min(k, 20000 - i)), v[i : i + k])
        i += k
        a = live.ema(0.9)
        b = live.ema(0.6)
        assert len(a) == len(live) == len(b)
        pieces.append(a)
    ref = ema_loop(v.tolist(), 0.9)
    np.testing.assert_allclose(live.ema(0.9), ref, rtol=1e-10, equal_nan=True)
    np.testing.assert_allclose(s.ema(0.9), ref, rtol=1e-10, equal_nan=True)
    np.testing.assert_allclose(live.ema(0.6), ema_loop(v.tolist(), 0.6), rtol=1e-10, equal_nan=True)
    # Earlier results were not disturbed by later growth.
    for p in pieces[:: max(1, len(pieces) // 10)]:
        np.testing.assert_allclose(p, ref[: len(p)], rtol=1e-10, equal_nan=True)
    with pytest.raises(ValueError):
        s.ema(1.5)


def test_ema_all_nonfinite_and_empty():
    s = Series()
    assert len(s.ema(0.6)) == 0
    s.extend([0, 1], [0, 0], [math.nan, INF])
    e = s.ema(0.6)
    assert math.isnan(e[0]) and e[1] == INF
    s.append(2, 0, 5.0)
    assert s.ema(0.6)[2] == pytest.approx(5.0)  # debiased: the first value


# -- decimation -----------------------------------------------------------------


def test_decimation_keeps_a_single_point_spike():
    n = 100_000
    v = np.zeros(n)
    v[31337] = 1e6
    v[77777] = -5.0
    s = Series()
    s.extend(np.arange(n), np.zeros(n), v)
    d = s.decimate(400)
    assert 1e6 in d.y and -5.0 in d.y
    assert d.x[d.y == 1e6].tolist() == [31337]
    assert d.x[d.y == -5.0].tolist() == [77777]
    assert np.all(np.diff(d.x) >= 0)  # x order
    assert len(d.x) <= 2 * 400
    assert len(d.mark_x) == 0


def test_decimation_nonfinite_markers_survive():
    n = 100_000
    v = np.sin(np.arange(n) / 100.0)
    v[10] = np.nan
    v[50_000] = INF
    v[50_001] = -INF
    v[99_999] = np.nan
    v[60_000:70_000] = np.nan  # a whole stretch
    s = Series()
    s.extend(np.arange(n), np.zeros(n), v)
    d = s.decimate(100)
    assert np.all(np.isfinite(d.y))
    marks = list(zip(d.mark_x.tolist(), d.mark_kind.tolist()))
    assert (10, NAN) in marks and (50_000, POSINF) in marks
    assert (50_001, NEGINF) in marks and (99_999, NAN) in marks
    assert (60_000, NAN) in marks
    # One marker per bucket and kind: the NaN stretch spans ~10 buckets.
    assert 10 <= sum(1 for x, k in marks if 60_000 <= x < 70_000) <= 12
    assert len(marks) <= 3 * 100
    # Buckets that are all NaN draw nothing; the others still do.
    assert not np.any((d.x > 60_000) & (d.x < 69_000))
    assert d.y.max() == pytest.approx(1.0, abs=1e-4)
    # The finite extremes of a bucket holding inf are kept.
    b = (d.x >= 49_500) & (d.x < 50_500)
    assert b.sum() >= 1


def test_decimation_bucket_count_bounds():
    rng = np.random.default_rng(5)
    for n in (3, 801, 802, 5000, 123_457):
        v = rng.standard_normal(n)
        s = Series()
        s.extend(np.arange(n) * 3, np.zeros(n), v)
        for nb in (1, 7, 400):
            d = s.decimate(nb)
            assert len(d.x) <= max(2 * nb, 0) or len(d.x) == n <= 2 * nb
            if n > 2 * nb:
                # Every bucket is populated (steps are evenly spread).
                assert len(d.x) >= nb
                assert v.min() in d.y and v.max() in d.y
            else:
                np.testing.assert_array_equal(d.y, v)
            assert np.all(np.diff(d.x) >= 0)


def test_decimation_lo_hi_window():
    n = 10_000
    v = np.arange(n, dtype=float)
    s = Series()
    s.extend(np.arange(n), np.arange(n) * 0.5, v)
    d = s.decimate(10, lo=2000, hi=2999)
    assert d.x.min() == 2000 and d.x.max() == 2999
    assert len(d.x) == 20
    d = s.decimate(10, lo=100.5, hi=110.2)  # fractional bounds on integer steps
    assert d.x.tolist() == list(range(101, 111))
    d = s.decimate(10, lo=20_000, hi=30_000)
    assert len(d.x) == 0
    d = s.decimate(10, lo=5, hi=4)
    assert len(d.x) == 0
    d = s.decimate(10, lo=-INF, hi=INF)
    assert d.x.min() == 0 and d.x.max() == n - 1
    d = s.decimate(4, x="time", lo=1000.0, hi=1999.75)
    assert d.x.dtype == np.float64 and d.x.min() == 1000.0 and d.x.max() == 1999.5
    d = s.decimate(5, x="index", lo=10, hi=19)
    assert d.x.tolist() == list(range(10, 20))


def test_decimation_tiny_and_constant_series():
    s = Series()
    d = s.decimate(400)
    assert len(d.x) == len(d.y) == len(d.mark_x) == 0
    s.append(5, 0.0, 2.0)
    d = s.decimate(400)
    assert d.x.tolist() == [5] and d.y.tolist() == [2.0]
    s.append(6, 0.0, math.nan)
    d = s.decimate(400)
    assert d.x.tolist() == [5] and d.mark_x.tolist() == [6] and d.mark_kind.tolist() == [NAN]
    d = s.decimate(1)
    assert d.x.tolist() == [5]
    c = Series()
    c.extend(np.arange(100_000), np.zeros(100_000), np.full(100_000, 3.25))
    d = c.decimate(50)
    assert np.all(d.y == 3.25) and 50 <= len(d.x) <= 100
    # All points at one step: one bucket.
    same = Series()
    same.extend(np.full(1000, 7), np.zeros(1000), np.arange(1000.0))
    d = same.decimate(10)
    assert d.x.tolist() == [7, 7] and d.y.tolist() == [0.0, 999.0]
    with pytest.raises(ValueError):
        s.decimate(0)


def test_decimation_of_smoothed_values_and_unsorted_steps():
    n = 50_000
    rng = np.random.default_rng(2)
    v = rng.standard_normal(n)
    s = Series()
    s.extend(np.arange(n), np.zeros(n), v)
    sm = s.ema(0.99)
    d = s.decimate(100, values=sm)
    assert sm.max() in d.y and sm.min() in d.y
    # Resumed run: steps go back; decimation sorts by step.
    r = Series()
    r.extend(np.arange(1000), np.zeros(1000), np.zeros(1000))
    r.extend(np.arange(500, 1500), np.zeros(1000), np.ones(1000))
    d = r.decimate(10)
    assert np.all(np.diff(d.x) >= 0)
    assert d.x.min() == 0 and 1350 <= d.x.max() <= 1499
    # buckets over the overlap keep both passes' extremes
    mid = (d.x >= 600) & (d.x < 900)
    assert set(d.y[mid].tolist()) == {0.0, 1.0}


def test_decimate_arrays_matches_bruteforce():
    rng = np.random.default_rng(11)
    for _ in range(30):
        n = int(rng.integers(1, 3000))
        x = np.sort(rng.integers(0, 5000, n))
        y = rng.standard_normal(n)
        y[rng.random(n) < 0.05] = np.nan
        nb = int(rng.integers(1, 50))
        d = decimate_arrays(x, y, nb)
        if n <= 2 * nb:
            continue
        lo, hi = x[0], x[-1]
        edges = np.linspace(lo, hi, nb + 1)
        b = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, nb - 1)
        want = []
        for k in range(nb):
            sel = np.flatnonzero((b == k) & np.isfinite(y))
            if len(sel):
                i, j = sel[np.argmin(y[sel])], sel[np.argmax(y[sel])]
                want.extend(sorted({int(i), int(j)}))
        np.testing.assert_array_equal(d.y, y[want])
        np.testing.assert_array_equal(d.x, x[want])


# -- concurrency ------------------------------------------------------------


def test_reads_during_appends_see_consistent_prefixes():
    s = Series()
    stop = threading.Event()
    errors = []

    def reader():
        while not stop.is_set():
            snap = s.snapshot()
            n = len(snap.values)
            if not (len(snap.steps) == len(snap.times) == n):
                errors.append("length")
            # value i was written as float(i), step i as i
            if n and (snap.values[-1] != n - 1 or snap.steps[-1] != n - 1):
                errors.append("torn %d" % n)
            e = s.ema(0.5)
            if len(e) and not np.isfinite(e[-1]):
                errors.append("ema")
            s.decimate(50)

    ts = [threading.Thread(target=reader) for _ in range(2)]
    for t in ts:
        t.start()
    for i in range(0, 200_000, 100):
        if i % 1000 == 0:
            for j in range(i, i + 100):
                s.append(j, 0.0, float(j))
        else:
            s.extend(np.arange(i, i + 100), np.zeros(100), np.arange(i, i + 100, dtype=float))
    stop.set()
    for t in ts:
        t.join()
    assert not errors, errors[:5]


# -- the store ---------------------------------------------------------------


def header(run_id="r1", rank=0, **kw):
    h = {
        "type": "run",
        "seq": 0,
        "v": 1,
        "run_id": run_id,
        "name": "resnet20",
        "start": 1000.0,
        "host": "gpu07",
        "pid": 42,
        "rank": rank,
        "world_size": 1,
        "config": {"lr": 0.1},
        "tags": {"fold": 2},
    }
    h.update(kw)
    return h


def test_store_applies_a_stream():
    st = Store()
    recs = [
        header(),
        {"type": "meta", "seq": 1, "time": 1000.1, "model": {"params": 10, "depth": 3}},
        {"type": "metrics", "seq": 2, "step": 0, "time": 1001.0, "values": {"loss": 2.3, "lr": 0.1}},
        {"type": "metrics", "seq": 3, "step": 0, "time": 1009.2, "split": "val",
         "values": {"loss": 2.29, "acc": 0.11}},
        {"type": "metrics", "seq": 4, "step": 1, "time": 1010.0, "values": {"loss": "NaN"},
         "text": {"note": "hi"}},
        {"type": "grads", "seq": 5, "step": 1, "time": 1010.5, "norm": 3.0,
         "layers": {"conv1": {"grad": 1.0, "weight": 2.0, "zero_rows": 0.0},
                    "fc": {"grad": 0.5}}},
        {"type": "heartbeat", "seq": 6, "time": 1020.0, "step": 1, "last_log": 1010.0},
        {"type": "dropped", "seq": 7, "time": 1021.0, "count": 3, "reasons": {"disk full": 3}},
        {"type": "wibble", "seq": 8, "time": 1022.0},
        {"type": "end", "seq": 9, "time": 1030.0, "status": "crashed",
         "error": {"type": "FloatingPointError", "message": "loss is NaN"}, "dropped": 4, "step": 1},
    ]
    v0 = st.version
    for r in recs:
        st.apply(r, stream="f.jsonl")
    assert st.version > v0
    run = st.get("r1")
    assert list(st.runs) == [("r1", 0)]
    assert run.name == "resnet20" and run.config == {"lr": 0.1} and run.tags == {"fold": 2}
    assert run.model == {"params": 10, "depth": 3} and run.header["model"]["depth"] == 3
    assert run.status == "crashed" and run.end["error"]["type"] == "FloatingPointError"
    assert run.dropped == 4 and run.dropped_reasons == {"disk full": 3}
    assert run.unknown == {"wibble": 1}
    assert run.last_seen == 1030.0 and run.last_step == 1
    assert set(run.series) == {("train", "loss"), ("train", "lr"), ("val", "loss"), ("val", "acc")}
    loss = run.get("loss")
    assert loss.steps.tolist() == [0, 1] and loss.values[0] == 2.3 and math.isnan(loss.values[1])
    assert run.get("loss", "val").times.tolist() == [1009.2]
    assert run.text[("train", "note")] == [(1, 1010.0, "hi")]
    assert run.grad_norm.values.tolist() == [3.0]
    assert run.layers() == ["conv1", "fc"]
    assert run.grads[("conv1", "weight")].values.tolist() == [2.0]
    assert ("fc", "weight") not in run.grads
    assert run.problems == 0


def test_store_versions_dedupe_and_problems():
    st = Store(clock=lambda: 5.0)
    st.apply(header(), stream=1)
    run = st.get("r1")
    v1, g1 = run.version, st.version
    assert st.apply({"type": "metrics", "seq": 0, "step": 0, "time": 1.0, "values": {"x": 1}}, 1) is None
    assert run.duplicates == 1 and run.version == v1 and st.version == g1
    st.apply({"type": "metrics", "seq": 3, "step": 0, "time": 1.0, "values": {"x": 1, "y": [1]}}, 1)
    assert run.missing == 2 and run.version > v1 and st.version == run.version
    assert run.problems == 1 and "y" in run.problem_log[-1]
    st.apply({"type": "metrics", "seq": 4, "time": 1.0, "values": "oops"}, 1)
    assert run.problems == 3  # no step, values not an object
    st.apply("garbage", 1)
    assert run.problems == 4
    assert run.last_arrival == 5.0
    # Another run's changes bump the global version, not this run's.
    v = run.version
    st.apply(header("r2"), stream=2)
    assert st.version > v and run.version == v


def test_store_splitter_plugs_in():
    def splitter(key, split):
        if split:
            return split, key
        if key.startswith("val_"):
            return "val", key[4:]
        return "train", key

    st = Store(splitter=splitter)
    st.apply(header(), "s")
    st.apply_many(
        [{"type": "metrics", "seq": i + 1, "step": i, "time": float(i),
          "values": {"val_loss": float(i), "loss": 2.0 * i}} for i in range(10)],
        "s",
    )
    run = st.get("r1")
    assert run.get("loss", "val").values.tolist() == [float(i) for i in range(10)]
    assert run.get("loss").values.tolist() == [2.0 * i for i in range(10)]


def test_apply_many_equals_apply():
    rng = np.random.default_rng(4)
    recs = [header()]
    seq = 1
    for step in range(3000):
        recs.append({"type": "metrics", "seq": seq, "step": step, "time": 1000.0 + step,
                     "values": {"loss": float(rng.standard_normal()), "acc": 0.5}})
        seq += 1
        if step % 50 == 0:
            recs.append({"type": "metrics", "seq": seq, "step": step, "time": 1000.0 + step,
                         "split": "val", "values": {"loss": "Infinity"}})
            seq += 1
        if step % 100 == 0:
            recs.append({"type": "grads", "seq": seq, "step": step, "time": 1000.0 + step,
                         "norm": 1.0, "layers": {"a": {"grad": 0.1}, "b": {"grad": 0.2}}})
            seq += 1
        if step == 1500:  # the process restarts and resumes at step 1400
            recs.append(header(start=2000.0, pid=43))
            seq = 1
        if step == 2000:
            recs.append({"type": "heartbeat", "seq": seq, "time": 3000.0, "step": step})
            seq += 1
    recs.append({"type": "end", "seq": seq, "time": 4000.0, "status": "finished", "dropped": 0})
    a, b = Store(), Store()
    for r in recs:
        a.apply(r, "s")
    changed = b.apply_many(recs, "s")
    assert changed == {("r1", 0)}
    ra, rb = a.get("r1"), b.get("r1")
    assert ra.series.keys() == rb.series.keys() and ra.grads.keys() == rb.grads.keys()
    for k in ra.series:
        assert ra.series[k].values.tobytes() == rb.series[k].values.tobytes()
        np.testing.assert_array_equal(ra.series[k].steps, rb.series[k].steps)
    for k in ra.grads:
        assert ra.grads[k].values.tobytes() == rb.grads[k].values.tobytes()
    assert ra.restarts == rb.restarts == 1
    assert ra.status == rb.status == "finished"
    assert ra.duplicates == rb.duplicates == 0


def test_restart_and_duplicate_header():
    st = Store()
    st.apply(header(), "a")
    st.apply({"type": "end", "seq": 1, "time": 1.0, "status": "interrupted", "signal": "SIGTERM"}, "a")
    run = st.get("r1")
    assert run.status == "interrupted"
    st.apply(header(), "b")  # the same file read a second time
    assert run.duplicates == 1 and run.restarts == 0 and run.status == "interrupted"
    st.apply(header(start=2000.0, pid=99), "c")  # resumed
    assert run.restarts == 1 and run.status == "running" and run.end is None
    st.apply({"type": "metrics", "seq": 1, "step": 5, "time": 2001.0, "values": {"loss": 1.0}}, "c")
    assert run.get("loss").values.tolist() == [1.0]


def test_records_before_header_and_ranks():
    st = Store()
    st.apply({"type": "metrics", "seq": 1, "step": 0, "time": 1.0, "values": {"loss": 1.0}}, "x")
    assert list(st.runs) == [("x", 0)]
    st.apply(header("job", rank=1), "x")
    assert list(st.runs) == [("job", 1)]
    assert st.get("job", 1).get("loss").values.tolist() == [1.0]
    st.apply(header("job", rank=0), "y")
    assert set(st.runs) == {("job", 0), ("job", 1)}


def test_silence():
    st = Store()
    st.apply(header(), "a")
    st.apply({"type": "heartbeat", "seq": 1, "time": 1100.0, "step": 3}, "a")
    run = st.get("r1")
    assert run.status_at(1150.0, 60) == "running"
    assert run.status_at(1200.0, 60) == "silent"
    assert st.mark_silent(1150.0, 60) == []
    assert st.mark_silent(1200.0, 60) == [run] and run.status == "silent"
    st.apply({"type": "heartbeat", "seq": 2, "time": 1201.0, "step": 3}, "a")
    assert run.status == "running"
    st.apply({"type": "end", "seq": 3, "time": 1202.0, "status": "finished"}, "a")
    assert run.status_at(99999.0) == "finished"


def test_bulk_path_keeps_points_in_order_when_records_share_a_series():
    """Records with different name sets that share a series (train_loss alone,
    then train_loss with val_loss) must land in step order."""
    from tui_monitor.schema import split_metric

    store = Store(splitter=split_metric)
    recs = [{"type": "run", "seq": 0, "run_id": "r"}]
    for i in range(40):
        values = {"train_loss": float(i), "epoch": 0.0}
        if i % 3 == 2:
            values["val_loss"] = float(i) + 0.5
        recs.append({"type": "metrics", "seq": i + 1, "step": i, "time": float(i), "values": values})
    store.apply_many(recs, stream="s")
    run = store.get("r")
    assert run.series[("train", "loss")].steps.tolist() == list(range(40))
    assert run.series[("train", "loss")].values.tolist() == [float(i) for i in range(40)]
    assert run.series[("val", "loss")].steps.tolist() == list(range(2, 40, 3))


def test_renamed_placeholder_takes_the_header_name():
    st = Store()
    st.apply({"type": "metrics", "seq": 1, "step": 0, "time": 1.0, "values": {"loss": 1.0}}, "tok")
    assert st.get("tok").name == "tok"
    st.apply(header("r9", name="my-run"), "tok")
    assert list(st.runs) == [("r9", 0)] and st.get("r9").name == "my-run"
    # no name in the header: the run id, not the stream token
    st.apply({"type": "metrics", "seq": 1, "step": 0, "time": 1.0, "values": {"loss": 1.0}}, "tok2")
    h = header("r10")
    del h["name"]
    st.apply(h, "tok2")
    assert st.get("r10").name == "r10"


def test_records_without_time_take_the_last_seen_time():
    """grads and system records without a time get the run's latest time, as
    metrics records do (not NaN), so a clock going back shows in the flag."""
    st = Store()
    st.apply({"type": "run", "seq": 0, "run_id": "g"}, "s")  # no start: last_seen comes from records
    for seq, t in enumerate([5.0, None, 1.0, 2.0], start=1):
        for rtype, extra in (("grads", {"norm": float(seq), "layers": {"a": {"grad": 0.1}}}),
                             ("system", {"values": {"cpu": 0.5}})):
            r = {"type": rtype, "seq": 2 * seq - (rtype == "grads"), "step": seq, **extra}
            if t is not None:
                r["time"] = t
            st.apply(r, "s")
    run = st.get("g")
    assert run.problems == 0
    for s in (run.grad_norm, run.grads[("a", "grad")], run.series[("system", "cpu")]):
        assert s.times.tolist() == [5.0, 5.0, 1.0, 2.0]
        assert not s.times_monotonic
        d = s.decimate(100, x="time")
        assert d.x.tolist() == [1.0, 2.0, 5.0, 5.0]


@pytest.mark.parametrize("bulk", [False, True])
def test_series_time_flag_is_nan_safe(bulk):
    s = Series()
    times = [5.0, math.nan, 1.0, 2.0]
    if bulk:
        s.extend([0, 1], times[:2], [0.0, 1.0])
        s.extend([2, 3], times[2:], [2.0, 3.0])
    else:
        for i, t in enumerate(times):
            s.append(i, t, float(i))
    assert not s.times_monotonic
    d = s.decimate(100, x="time")
    x = np.asarray(d.x, dtype=float)
    x = x[~np.isnan(x)]
    assert x.tolist() == sorted(x.tolist())


@pytest.mark.parametrize("odd, problems", [
    ({"values": {"loss": "1.5"}}, 1),
    ({"values": {"loss": "nan"}}, 1),
    ({"values": {"loss": None}}, 1),
    ({"values": {"loss": "inf"}}, 1),
    ({"time": "5"}, 0),  # not a time: the run's last time, as one by one
    ({"step": True}, 1),
])
def test_apply_many_agrees_with_apply_on_odd_values(odd, problems):
    """The bulk path must not read as numbers what the one-record path
    rejects (np.fromiter takes "1.5", None, ...)."""
    recs = [header()]
    for i in range(10):
        r = {"type": "metrics", "seq": i + 1, "step": i, "time": 1000.0 + i, "values": {"loss": float(i)}}
        if i == 4:
            r.update(odd)
        recs.append(r)
    a, b = Store(), Store()
    for r in recs:
        a.apply(r, "s")
    b.apply_many(recs, "s")
    ra, rb = a.get("r1"), b.get("r1")
    assert ra.problems == rb.problems == problems
    sa, sb = ra.get("loss"), rb.get("loss")
    assert sa.values.tobytes() == sb.values.tobytes()
    assert sa.steps.tolist() == sb.steps.tolist() and sa.times.tobytes() == sb.times.tobytes()


def test_a_step_past_int64_is_no_step_and_the_rest_of_the_batch_is_kept():
    store = Store()
    store.apply_many([header(), {"type": "metrics", "seq": 1, "step": 0, "time": 1.0, "values": {"loss": 1.0}},
                      {"type": "metrics", "seq": 2, "step": 10 ** 25, "time": 2.0, "values": {"loss": 0.9}},
                      {"type": "metrics", "seq": 3, "step": 1e30, "time": 3.0, "values": {"loss": 0.8}},
                      {"type": "metrics", "seq": 4, "step": 2 ** 63 - 1, "time": 4.0, "values": {"loss": 0.7}}],
                     stream="s")
    run = store.get("r1")
    s = run.series[("train", "loss")]
    assert s.steps.tolist() == [0, 0, 0, 2 ** 63 - 1] and s.values.tolist() == [1.0, 0.9, 0.8, 0.7]
    assert run.problems == 2  # each counted as a record without an integer step (it takes the last one)


def test_numbers_beyond_what_the_series_keep_from_unchecked_readers_never_raise():
    """The stream reader checks ranges at decode; the other readers' dicts
    (CSV, text, TensorBoard) come unchecked: a step beyond int64 is no step
    and a time no clock shows is no time, in every record type."""
    st = Store()
    st.apply({"type": "run", "seq": 0, "run_id": "r", "name": "n"}, "s")
    st.apply({"type": "metrics", "seq": 1, "step": 3, "time": 5.0, "values": {"loss": 1.0}}, "s")
    st.apply({"type": "system", "seq": 2, "step": 2 ** 63, "time": 1e300, "values": {"gpu": 1.0}}, "s")
    st.apply_many([{"type": "metrics", "seq": 3 + i, "step": 4 + i, "time": float("inf") if i == 5 else 6.0 + i,
                    "values": {"loss": 0.5}} for i in range(10)], "s")
    run = st.get("r")
    gpu = run.series[("system", "gpu")]
    assert gpu.steps.tolist() == [3] and gpu.times.tolist() == [5.0]   # the last step and time known
    loss = run.series[("train", "loss")]
    assert loss.steps.tolist() == list(range(3, 14))
    assert loss.times.tolist()[6] == 10.0                               # inf: the time before it


# -- many names, many runs: O(1) an addition ------------------------------------


def test_a_new_metric_name_or_run_is_added_in_place_not_by_copying_everything():
    """Each new name used to copy the run's whole map (and each new run the
    store's): 200,000 ``loss_{step}`` names took 271 s. The maps grow in
    place now; bench/store.py times 200,000 names."""
    st = Store()
    st.apply(header("a"), "a")
    runs, run = st.runs, st.get("a")
    series = run.series
    st.apply_many([{"type": "metrics", "seq": i + 1, "step": i, "time": 1.0, "values": {"loss_%d" % i: 1.0}}
                   for i in range(100)], "a")
    st.apply(header("b"), "b")
    assert run.series is series and st.runs is runs
    assert list(series) == [("train", "loss_%d" % i) for i in range(100)]
    assert [r.run_id for r in st.runs.values()] == ["a", "b"]


def test_readers_iterate_the_maps_while_names_and_runs_are_added_and_renamed():
    st = Store()
    stop, errors, seen = threading.Event(), [], []

    def reader():
        while not stop.is_set():
            try:
                for key, run in st.runs.items():          # keys always look up
                    if run.key != key and st.runs.get(key) is run:
                        errors.append(("key", key, run.key))
                    names = list(run.series)
                    for s in run.series.values():
                        len(s)
                    seen.append(len(names))
            except Exception as e:  # noqa: BLE001 - any error from reading while it grows is the failure
                errors.append(repr(e))

    ts = [threading.Thread(target=reader) for _ in range(2)]
    for t in ts:
        t.start()
    try:
        for i in range(300):
            stream = "s%d" % i
            st.apply({"type": "metrics", "seq": 0, "step": 0, "time": 1.0, "values": {"x": 1.0}}, stream)
            st.apply(header("run%d" % i, seq=1), stream)        # the header comes late: the run is renamed
            st.apply_many([{"type": "metrics", "seq": j + 2, "step": j, "time": 1.0,
                            "values": {"m%d" % j: 1.0}} for j in range(20)], stream)
    finally:
        stop.set()
        for t in ts:
            t.join()
    assert not errors, errors[:5]
    assert sorted(st.runs) == sorted(("run%d" % i, 0) for i in range(300))
    assert len(st.runs) == 300 and all(len(r.series) == 21 for r in st.runs.values())


def test_growing_map_removal_and_readding_lists_each_key_once():
    from tui_monitor.store.growing import GrowingMap
    m = GrowingMap()
    for k in "abcdef":
        m[k] = k.upper()
    it = iter(m)
    m.discard("b")
    m.discard("c")
    m["b"] = "B2"                                       # removed, then back: listed once, at the end
    m["a"] = "A2"                                       # a new value keeps its place
    assert list(m.items()) == [("a", "A2"), ("d", "D"), ("e", "E"), ("f", "F"), ("b", "B2")]
    assert list(it) == ["a", "b", "d", "e", "f"]      # an iterator taken before: its order, no key gone
    for k in "adef":
        m.discard(k)
    assert list(m) == ["b"] and len(m) == 1 and m == {"b": "B2"} and dict(m) == {"b": "B2"}
