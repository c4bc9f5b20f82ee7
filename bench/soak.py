"""Soak: many writers streaming into one monitor for a long time.

    python bench/soak.py                 # 20 writers x 100 records/s for 10 minutes
    python bench/soak.py --quick         # 20 writers for 30 s
    python bench/soak.py --writers 20 --rate 100 --seconds 600 --socket

Each writer is a real process using the hook (`init` + `log` at a fixed
rate, then `close`); by default they write files into one folder, with
`--socket` they stream to the monitor's listener instead. The monitor is the
real one: `Ingest` following the folder (or listening) into the store, the
diagnosis engine, and the Textual app running headless at 160x48.

Measured while it runs, and printed as a table at the end:

- records: every writer's records counted in the store against what the
  writers logged (must be equal: nothing lost);
- memory: the monitor's RSS after warm-up (first quarter) and at the end;
  "flat" means the growth is what the stored points themselves take
  (the store's arrays and caches, measured in the run), not a leak;
- responsiveness: the UI event loop's lateness, measured by a callback asked
  for every 50 ms: the worst lateness must stay under 100 ms (a frame within
  100 ms throughout). The anchor is the same callback's lateness in an
  idle app before the writers start. The first 5 s after the writers are
  launched are reported apart: twenty interpreters importing at once on a
  small machine starve every process, the monitor included.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import textwrap
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

from tui_monitor.sources import Ingest  # noqa: E402
from tui_monitor.tui.app import MonitorApp  # noqa: E402

WRITER = textwrap.dedent("""
    import sys, time, tui_monitor as tm
    target, rate, seconds, index = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    kw = {"to": target, "dir": False} if ":" in target and not target.startswith("/") else {"dir": target}
    run = tm.init(f"soak{index:02d}", flush_every=0.25, system_every=0, **kw)
    n = int(rate * seconds)
    t0 = time.monotonic()
    for step in range(n):
        run.log({"loss": 1.0 / (step + 1), "lr": 0.1}, step=step)
        if step % 10 == 9:
            wait = t0 + (step + 1) / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
    run.close(socket_timeout=30)
    print(n, flush=True)
""")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def store_bytes(store) -> int:
    """What the store's arrays and smoothing caches hold now, measured."""
    return sum(s.nbytes + s.cache_nbytes() for r in list(store.runs.values()) for s in list(r.series.values()))


async def watch(app: MonitorApp, seconds: float, lateness: list, rss: list, stop) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end and not stop():
        asked = loop.time()
        await asyncio.sleep(0.05)
        lateness.append((time.monotonic(), loop.time() - asked - 0.05))
        if len(lateness) % 20 == 0:
            rss.append((time.monotonic(), rss_bytes(), store_bytes(app.store)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--writers", type=int, default=20)
    ap.add_argument("--rate", type=float, default=100.0, help="records a second per writer")
    ap.add_argument("--seconds", type=float, default=600.0)
    ap.add_argument("--quick", action="store_true", help="30 seconds")
    ap.add_argument("--socket", action="store_true", help="stream over TCP instead of files")
    args = ap.parse_args()
    seconds = 30.0 if args.quick else args.seconds
    with tempfile.TemporaryDirectory() as tmp:
        ingest = Ingest()
        if args.socket:
            lst = ingest.listen("127.0.0.1:0")
            target = f"127.0.0.1:{lst.bound[1]}"
        else:
            target = os.path.join(tmp, "runs")
            os.makedirs(target)
            ingest.add_path(target)
        ingest.start()
        app = MonitorApp(ingest.store, ingest)
        env = dict(os.environ, PYTHONPATH=ROOT)
        procs = []
        idle, lateness, rss = [], [], []

        async def soak() -> None:
            async with app.run_test(size=(160, 48)) as pilot:
                await watch(app, 3.0, idle, [], lambda: False)          # the anchor: idle lateness
                idle[:] = [late for _, late in idle]
                t0 = time.monotonic()
                for i in range(args.writers):
                    procs.append(subprocess.Popen(
                        [sys.executable, "-c", WRITER, target, str(args.rate), str(seconds), str(i)],
                        env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True))
                await watch(app, seconds + 60, lateness, rss, lambda: all(p.poll() is not None for p in procs))
                expected = sum(int(p.stdout.read() or 0) for p in procs)
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    got = sum(len(s) for r in ingest.store.runs.values() for (sp, m), s in r.series.items()
                              if (sp, m) == ("train", "loss"))
                    if got >= expected:
                        break
                    await pilot.pause(0.2)
                # the writers' own start (20 interpreters importing at once on
                # a small machine) is the harness's cost, not the monitor's
                started = [late for t, late in lateness if t - t0 >= 5.0]
                report(args, seconds, expected, got, idle, started, rss, time.monotonic() - t0,
                       startup=max((late for t, late in lateness if t - t0 < 5.0), default=0.0))

        try:
            asyncio.run(soak())
        finally:
            for p in procs:
                if p.poll() is None:
                    p.kill()
            ingest.stop()


def report(args, seconds, expected, got, idle, lateness, rss, wall, startup=0.0) -> None:
    def pct(xs, q):
        xs = sorted(xs)
        return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")

    warm = rss[len(rss) // 4][1] if rss else 0
    mid, mid_store = rss[len(rss) // 2][1:] if rss else (0, 0)
    end, end_store = rss[-1][1:] if rss else (0, 0)
    points = expected * 2  # loss and lr
    print(f"\nsoak: {args.writers} writers x {args.rate:.0f} records/s for {seconds:.0f} s "
          f"({'socket' if args.socket else 'files'}), {wall:.0f} s in all")
    print(f"{'measure':44} {'value':>14} {'anchor (idle)':>14}")
    print(f"{'records logged by the writers':44} {expected:14,d}")
    print(f"{'records in the monitor':44} {got:14,d}")
    print(f"{'UI loop lateness, median (ms)':44} {pct(lateness, 0.5) * 1e3:14.1f} {pct(idle, 0.5) * 1e3:14.1f}")
    print(f"{'UI loop lateness, p99 (ms)':44} {pct(lateness, 0.99) * 1e3:14.1f} {pct(idle, 0.99) * 1e3:14.1f}")
    print(f"{'UI loop lateness, worst (ms)':44} {max(lateness or [0]) * 1e3:14.1f} {max(idle or [0]) * 1e3:14.1f}")
    print(f"{'  ... while the writers start (first 5 s)':44} {startup * 1e3:14.1f}")
    print(f"{'monitor RSS after warm-up (MiB)':44} {warm / 2**20:14.1f}")
    print(f"{'monitor RSS at the end (MiB)':44} {end / 2**20:14.1f}")
    growth = end - warm
    print(f"{'growth per stored point after warm-up (B)':44} {growth / max(points * 0.75, 1):14.1f}")
    print("\ntargets:")
    print(f"  {'PASS' if got == expected else 'FAIL'}  no record lost: {got:,} of {expected:,}")
    worst = max(lateness or [0])
    print(f"  {'PASS' if worst <= 0.1 else 'FAIL'}  a frame within 100 ms throughout: worst lateness {worst * 1e3:.0f} ms")
    # The store legitimately grows with its points (its arrays, their growth
    # slack and the smoothing caches: measured, not assumed); a leak of
    # anything per record (a dict, a line) costs hundreds of bytes more.
    # Judged on the second half, after the allocator and the UI's caches
    # have settled.
    half = max(points * 0.5, 1)
    stored = (end_store - mid_store) / half
    beyond = (end - mid) / half - stored
    print(f"  {'PASS' if beyond <= 100 else 'FAIL'}  memory flat after warm-up beyond the points stored: "
          f"{beyond:.0f} B a point in the second half beyond the store's own {stored:.0f} (allowance 100)")


if __name__ == "__main__":
    main()
