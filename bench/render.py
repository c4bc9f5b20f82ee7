"""Benchmarks of the TUI (tui_monitor.tui) against the issue's targets.

    python bench/render.py [--quick] [--idle-seconds 5]

Three measurements, each with an anchor measured in the same run, so that the
ratios carry from one machine to another better than raw times do:

1. **First full frame** for a folder of 20 runs holding 1,000,000 points in
   all (train loss and lr every step, val loss and accuracy every 10 steps):
   from nothing (no store) to the app's first frame with every point read,
   headless at 160x48. Anchor: decoding the same files with
   ``stream.read_file`` alone (no store, no UI). Target: <= 1.5 s.
2. **Chart redraw** (view model + renderable: decimated min/max buckets from
   the store, EMA from the store's cache, braille canvas, axes) of one run
   with 1,000,000 points vs one with 1,000 points, at 160x48, with the
   app's :class:`~tui_monitor.tui.chartdata.DecimationCache` (a redraw of an
   unchanged series reuses its decimated points). Anchor: the 1,000-point
   redraw. Targets: ratio <= 2, and <= 30 ms. For context (no target), the
   same redraw without the cache, which is what a series that just grew
   costs: one decimation of the visible window.
3. **Idle CPU** of the app showing those 20 runs while nothing arrives (a
   child process, headless, CPU time over wall time). Anchor: an empty
   Textual app idling the same way. Target: <= 2% of one core.
4. **A sweep of 10,000 finished runs** (20 steps each, a config with lr and
   batch): from nothing to every run listed in the runs panel, headless at
   160x48, without the diagnosis engine (the UI's share; the engine's own
   cost at this scale is measured by bench/diagnosis.py), and, for context,
   with it. Anchor: what ``watch --once`` does in the same process (read
   every file, print the table). Target: <= 3x the anchor.
"""
from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tui_monitor.schema import split_metric  # noqa: E402
from tui_monitor.store import Store  # noqa: E402
from tui_monitor.stream import read_file  # noqa: E402
from tui_monitor.tui.chart import LineChart, plot_size  # noqa: E402
from tui_monitor.tui.chartdata import DecimationCache, ViewState, build_chart  # noqa: E402

T0 = 1_764_430_000.0


def write_runs(directory: Path, runs: int, points: int) -> int:
    """``runs`` stream files with ``points`` metric values in all; returns the count written."""
    per_run = points // runs
    steps = int(per_run / 2.2)
    total = 0
    rng = np.random.default_rng(0)
    for r in range(runs):
        lines = ['{"type":"run","seq":0,"v":1,"run_id":"bench%02d","name":"bench-%02d","start":%r,'
                 '"host":"h","pid":1,"rank":0,"world_size":1,"config":{},"tags":{}}' % (r, r, T0)]
        seq = 1
        loss = np.exp(-np.arange(steps) / (steps / 5)) + 0.05 * rng.standard_normal(steps)
        for i in range(steps):
            lines.append('{"type":"metrics","seq":%d,"step":%d,"time":%r,"values":{"loss":%r,"lr":0.001}}'
                         % (seq, i, T0 + i * 0.01, float(loss[i])))
            seq += 1
            total += 2
            if i % 10 == 0:
                lines.append('{"type":"metrics","seq":%d,"step":%d,"time":%r,"split":"val",'
                             '"values":{"loss":%r,"acc":0.5}}' % (seq, i, T0 + i * 0.01 + 0.005, float(loss[i]) + 0.1))
                seq += 1
                total += 2
        lines.append('{"type":"end","seq":%d,"time":%r,"status":"finished","dropped":0}' % (seq, T0 + steps))
        (directory / ("bench-%02d.jsonl" % r)).write_text("\n".join(lines) + "\n")
    return total


def decode_only(directory: Path) -> float:
    t0 = time.perf_counter()
    for p in sorted(directory.glob("*.jsonl")):
        read_file(p)
    return time.perf_counter() - t0


def first_frame(directory: Path, expected_points: int, runs: int = 20):
    """``(all runs on screen, every point read and drawn)`` in seconds from nothing."""
    from tui_monitor.sources import open_ingest
    from tui_monitor.tui import MonitorApp

    async def go() -> float:
        t0 = time.perf_counter()
        store, ingest = open_ingest([str(directory)], poll=True)

        def points() -> int:
            return sum(len(s) for run in list(store.runs.values()) for s in list(run.series.values()))

        app = MonitorApp(store, ingest, diagnoser=None)
        try:
            async with app.run_test(size=(160, 48)) as pilot:
                from tui_monitor.tui.widgets import ChartView, RunsTable

                chart = app.query_one("#chart", ChartView)
                while not (app.query_one(RunsTable).row_count >= runs and chart.last_spec is not None
                           and chart.last_spec.lines):
                    await pilot.pause(0.005)
                t_runs = time.perf_counter() - t0
                while points() < expected_points:
                    await pilot.pause(0.01)
                seen = store.version
                while app._version != seen:  # the frame after the last point
                    await pilot.pause(0.005)
                await pilot.pause()
                app.screen._compositor.render_update(full=True)
                return t_runs, time.perf_counter() - t0
        finally:
            ingest.stop()

    return asyncio.run(go())


def write_sweep(directory: Path, runs: int) -> None:
    """``runs`` small finished runs (20 train losses, 4 validation losses, a
    config with lr and batch), one file each."""
    rng = np.random.default_rng(1)
    for r in range(runs):
        lr = float(10 ** rng.uniform(-4, -1))
        lines = ['{"type":"run","seq":0,"v":1,"run_id":"sw%05d","name":"sweep-%05d","start":%r,"host":"h",'
                 '"pid":1,"rank":0,"world_size":1,"config":{"lr":%r,"batch":%d},"tags":{}}'
                 % (r, r, T0, lr, int(rng.choice([32, 64, 128])))]
        seq = 1
        for i in range(20):
            loss = float(np.exp(-i * lr * 10) + 0.1)
            lines.append('{"type":"metrics","seq":%d,"step":%d,"time":%r,"values":{"loss":%r}}' % (seq, i, T0 + i, loss))
            seq += 1
            if i % 5 == 4:
                lines.append('{"type":"metrics","seq":%d,"step":%d,"time":%r,"split":"val","values":{"loss":%r}}'
                             % (seq, i, T0 + i + 0.5, loss + 0.1))
                seq += 1
        lines.append('{"type":"end","seq":%d,"time":%r,"status":"finished","dropped":0}' % (seq, T0 + 20))
        (directory / ("sweep-%05d.jsonl" % r)).write_text("\n".join(lines) + "\n")


def once_time(directory: Path) -> float:
    """What ``watch --once`` does: read every file, then print the runs table."""
    import io

    from tui_monitor.sources import open_ingest
    from tui_monitor.summary import runs_table

    t0 = time.perf_counter()
    store, ingest = open_ingest([str(directory)], start=False)
    ingest.read_all()
    io.StringIO().write(runs_table(store))
    elapsed = time.perf_counter() - t0
    ingest.stop()  # closes its files: 10,000 of them left open would starve the next reader of descriptors
    return elapsed


def sweep_listed(directory: Path, runs: int, engine: bool) -> float:
    """Seconds from nothing until the runs panel lists all ``runs``."""
    from tui_monitor.sources import open_ingest
    from tui_monitor.tui import MonitorApp
    from tui_monitor.tui.widgets import RunsTable

    async def go() -> float:
        t0 = time.perf_counter()
        store, ingest = open_ingest([str(directory)])
        app = MonitorApp(store, ingest, diagnoser="auto" if engine else None)
        try:
            async with app.run_test(size=(160, 48)) as pilot:
                while app.query_one(RunsTable).row_count < runs:
                    if time.perf_counter() - t0 > 900:
                        raise RuntimeError("only %d of %d runs listed after 900 s"
                                           % (app.query_one(RunsTable).row_count, runs))
                    await pilot.pause(0.02)
                return time.perf_counter() - t0
        finally:
            ingest.stop()

    return asyncio.run(go())


class _Run:
    def __init__(self, n: int) -> None:
        s = Store(splitter=split_metric)
        steps = np.arange(n)
        recs = [{"type": "run", "seq": 0, "run_id": "r%d" % n, "name": "r", "start": T0}]
        s.apply_many(recs, stream="x")
        run = s.get("r%d" % n)
        series = run._series(("train", "loss"))
        series.extend(steps, T0 + steps * 0.01, np.exp(-steps / (n / 5)) + 0.05 * np.sin(steps / 7.0))
        val = run._series(("val", "loss"))
        vs = steps[::10]
        val.extend(vs, T0 + vs * 0.01, np.exp(-vs / (n / 5)) + 0.1)
        self.run = run


def redraw_time(n: int, repeats: int, width: int = 160, height: int = 48, cached: bool = True) -> float:
    run = _Run(n).run
    state = ViewState(smoothing=0.6)
    pw, _ = plot_size(width, height)
    cache = DecimationCache() if cached else None

    def once():
        spec = build_chart([run], state, 2 * pw, cache=cache)
        LineChart(spec).render_lines(width, height)

    once()
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        once()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


_IDLE_CHILD = r"""
import asyncio, os, sys, time
sys.path.insert(0, sys.argv[1])
mode, directory, seconds = sys.argv[2], sys.argv[3], float(sys.argv[4])
from textual.app import App

async def main():
    if mode == "app":
        from tui_monitor.sources import open_ingest
        from tui_monitor.tui import MonitorApp
        store, ingest = open_ingest([directory])
        app = MonitorApp(store, ingest)
    else:
        app = App()
    async with app.run_test(size=(160, 48)) as pilot:
        if mode == "app":  # settle: every file read, the engine done, the first frames drawn
            while sum(len(s) for r in list(store.runs.values()) for s in list(r.series.values())) < int(sys.argv[5]):
                await pilot.pause(0.05)
            while app._diag_busy or app._version != store.version:
                await pilot.pause(0.05)
        await pilot.pause(1.0)
        t = os.times(); c0 = t.user + t.system; w0 = time.monotonic()
        await asyncio.sleep(seconds)
        t = os.times(); c1 = t.user + t.system; w1 = time.monotonic()
    print((c1 - c0) / (w1 - w0))
    os._exit(0)

asyncio.run(main())
"""


def idle_cpu(mode: str, directory: Path, seconds: float, points: int) -> float:
    out = subprocess.run([sys.executable, "-c", _IDLE_CHILD, str(ROOT), mode, str(directory), str(seconds),
                          str(points)],
                         capture_output=True, text=True, timeout=120 + seconds)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100,000 points, fewer repeats: a smoke test")
    ap.add_argument("--points", type=int, default=None)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--idle-seconds", type=float, default=5.0)
    ap.add_argument("--sweep-runs", type=int, default=None, help="runs in the sweep (default 10,000; --quick 1,000)")
    ap.add_argument("--sweep-engine", action="store_true", help="also time the sweep with the diagnosis engine")
    a = ap.parse_args(argv)
    points = a.points or (100_000 if a.quick else 1_000_000)
    repeats = 5 if a.quick else a.repeats
    tmp = Path(tempfile.mkdtemp(prefix="tui-monitor-bench-"))
    rows = []
    try:
        total = write_runs(tmp, a.runs, points)
        dec = min(decode_only(tmp) for _ in range(2))
        t_runs, ff = first_frame(tmp, total, a.runs)
        rows.append(("first full frame: all %d runs on screen" % a.runs, t_runs, "decode only", dec,
                     t_runs <= 1.5, "<= 1.5 s"))
        rows.append(("every one of %s points read and drawn" % f"{total:,}", ff, "decode only", dec,
                     ff <= 1.5, "<= 1.5 s"))
        big = redraw_time(max(points, 1000), repeats)
        small = redraw_time(1000, repeats)
        rows.append(("chart redraw 160x48, %s points" % f"{max(points, 1000):,}", big, "same, 1,000 points", small,
                     big <= 2 * small and big <= 0.030, "<= 2x and <= 30 ms"))
        big_cold = redraw_time(max(points, 1000), repeats, cached=False)
        small_cold = redraw_time(1000, repeats, cached=False)
        rows.append(("  same, series grew (no cache hit)", big_cold, "same, 1,000 points", small_cold, None,
                     "(context)"))
        idle = idle_cpu("app", tmp, a.idle_seconds, total)
        anchor = idle_cpu("empty", tmp, a.idle_seconds, total)
        rows.append(("idle CPU, %d runs shown (of one core)" % a.runs, idle, "empty Textual app", anchor,
                     idle <= 0.02, "<= 2%"))
        sweep_runs = a.sweep_runs or (1000 if a.quick else 10_000)
        sweep = tmp / "sweep"
        sweep.mkdir()
        write_sweep(sweep, sweep_runs)
        once = min(once_time(sweep) for _ in range(2))
        listed = sweep_listed(sweep, sweep_runs, engine=False)
        rows.append(("sweep: all %s runs listed (no engine)" % f"{sweep_runs:,}", listed, "watch --once", once,
                     listed <= 3 * once, "<= 3x"))
        if a.sweep_engine:
            with_engine = sweep_listed(sweep, sweep_runs, engine=True)
            rows.append(("  same, with the diagnosis engine", with_engine, "watch --once", once, None, "(context)"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def fmt(name: str, v: float) -> str:
        return "%.1f%%" % (100 * v) if name.startswith("idle") else ("%.1f ms" % (1000 * v) if v < 1 else "%.2f s" % v)

    print("%-46s %10s  %-22s %10s %7s  %-20s %s" % ("measure", "value", "anchor", "anchor", "ratio", "target", ""))
    for name, v, aname, av, ok, target in rows:
        ratio = ("%6.2fx" % (v / av)) if av > 0 else "      -"
        verdict = "" if ok is None else ("PASS" if ok else "FAIL")
        print("%-46s %10s  %-22s %10s %s  %-20s %s" % (name, fmt(name, v), aname, fmt(name, av), ratio, target,
                                                           verdict))
    return 0


if __name__ == "__main__":
    sys.exit(main())
