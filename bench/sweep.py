"""`tui-monitor diagnose` on a sweep, against `watch --once` reading the same folder.

    python bench/sweep.py                   # 5,000 runs of 200 steps
    python bench/sweep.py --runs 1000 --quick

A sweep is many runs of one data set (one ``data`` key: the diagnosis compares
them all), each with its own learning rate and width: a stream per run, a
loss every step, a validation loss every 20 steps, the model's size in the
header; some runs diverge to NaN and some overfit. Measured in the same run,
each command as a fresh process (``python -m tui_monitor``), alternating:

- ``watch --once DIR``: read every run and print the runs table (the anchor);
- ``diagnose --json DIR``: read every run the same way, diagnose, print the
  report.

The ratio diagnose / watch is the figure (goal: at most ~3). Then, in this
process, where diagnose's time goes: reading (the ingest both commands
share), the engine's ``update()``, and writing the report.
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def write_sweep(directory: Path, runs: int, steps: int, seed: int = 0) -> int:
    """Write ``runs`` streams; returns the number of records."""
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    total = 0
    for k in range(runs):
        lr = float(10 ** rng.uniform(-4.5, -0.5))
        width = int(rng.choice([32, 64, 128, 256, 512]))
        depth = int(rng.choice([2, 3, 4, 6]))
        params = width * width * (depth - 1) + 20 * width
        fate = rng.random()
        speed = min(1.0, lr * 300)
        floor = 0.3 + 20.0 / width
        recs = [{"type": "run", "seq": 0, "v": 1, "run_id": f"sweep-{k:05d}", "name": f"lr{lr:.2g}-w{width}-d{depth}",
                 "start": 1.7e9 + k, "host": "bench", "pid": None, "rank": 0, "world_size": 1,
                 "config": {"task": "classification", "num_classes": 10, "data": "sweep-data", "lr": lr,
                            "width": width, "depth": depth},
                 "model": {"params": params, "trainable_params": params, "depth": depth, "width": width}}]
        seq = 1
        noise = (rng.standard_normal(steps) * 0.05).tolist()
        for s in range(steps):
            loss = floor + (math.log(10) - floor) * math.exp(-speed * s / 20) + noise[s]
            if fate < 0.05 and s > steps // 2:
                loss = "NaN"
            recs.append({"type": "metrics", "seq": seq, "step": s, "time": 1.7e9 + k + s * 0.01,
                         "values": {"loss": loss, "lr": lr}})
            seq += 1
            if s % 20 == 0 or s == steps - 1:
                val = (floor + 0.1 + (math.log(10) - floor) * math.exp(-speed * s / 20)
                       + (0.004 * max(0, s - steps // 3) if 0.05 <= fate < 0.15 else 0.0))
                recs.append({"type": "metrics", "seq": seq, "step": s, "time": 1.7e9 + k + s * 0.01, "split": "val",
                             "values": {"loss": val}})
                seq += 1
        recs.append({"type": "end", "seq": seq, "time": 1.7e9 + k + steps, "status": "finished"})
        (directory / f"run-{k:05d}.jsonl").write_bytes(b"\n".join(map(orjson.dumps, recs)) + b"\n")
        total += len(recs)
    return total


def timed(args, timeout: float) -> float:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "tui_monitor", *args], cwd=ROOT, env=env, timeout=timeout,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.perf_counter() - t0
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(args)} exited {proc.returncode}: {proc.stderr.decode()[-2000:]}")
    return dt


def breakdown(directory: Path) -> dict:
    """Where one in-process diagnose's time goes."""
    import json

    from tui_monitor.commands.diagnose import read_runs
    from tui_monitor.diagnose import Diagnoser, report_dict

    t0 = time.perf_counter()
    store, _, empty = read_runs([str(directory)], [])
    t1 = time.perf_counter()
    eng = Diagnoser(store)
    eng.update()
    t2 = time.perf_counter()
    text = json.dumps(report_dict(eng), ensure_ascii=False, allow_nan=False)
    t3 = time.perf_counter()
    return {"read": t1 - t0, "engine": t2 - t1, "report": t3 - t2, "runs": len(store.runs),
            "findings": len(eng.findings), "bytes": len(text)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--runs", type=int, default=5000)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=2, help="alternating rounds of the two commands (default 2)")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds one command may take")
    ap.add_argument("--dir", help="write the sweep here and keep it (default: a temporary folder, removed)")
    ap.add_argument("--quick", action="store_true", help="1,000 runs, one round")
    a = ap.parse_args(argv)
    if a.quick:
        a.runs, a.repeats = min(a.runs, 1000), 1
    directory = Path(a.dir) if a.dir else Path(tempfile.mkdtemp(prefix="tm-sweep-"))
    try:
        return _run(a, directory)
    finally:
        if not a.dir:
            shutil.rmtree(directory, ignore_errors=True)


def _run(a, directory: Path) -> int:
    t0 = time.perf_counter()
    n = write_sweep(directory, a.runs, a.steps)
    print(f"sweep: {a.runs:,} runs, {n:,} records in {directory} (written in {time.perf_counter() - t0:.1f} s)")
    reads, diags = [], []
    for _ in range(a.repeats):
        reads.append(timed(["watch", "--once", str(directory)], a.timeout))
        diags.append(timed(["diagnose", "--json", str(directory)], a.timeout))
        print(f"  watch --once {reads[-1]:7.2f} s   diagnose --json {diags[-1]:7.2f} s")
    r, d = statistics.median(reads), statistics.median(diags)
    print(f"\n{'command':28} {'seconds':>8}")
    print(f"{'watch --once (anchor)':28} {r:8.2f}")
    print(f"{'diagnose --json':28} {d:8.2f}")
    print(f"ratio diagnose / watch --once: {d / r:.2f} (goal <= 3)")
    b = breakdown(directory)
    print(f"\nin one process: read {b['read']:.2f} s, engine update() {b['engine']:.2f} s, report {b['report']:.2f} s "
          f"({b['runs']:,} runs, {b['findings']:,} findings, {b['bytes'] / 1e6:.1f} MB of JSON)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
