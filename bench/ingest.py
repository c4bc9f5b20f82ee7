"""How fast streams get into the store, against TensorBoard's reader.

    python bench/ingest.py            # 1,000,000 records, about a minute
    python bench/ingest.py --quick    # 100,000 records

Measured side by side in one process (medians of interleaved repeats):

- tui-monitor: a JSONL stream of N metric records (5 scalars each, as a
  training loop logs loss, lr, grad norm, step time, throughput; and 1 scalar
  each) read in 1 MiB chunks through the validating reader and applied to the
  store (`FileTail` + `Ingest`, exactly the path `tui-monitor watch` takes);
- the same values read from a TensorBoard event file by `tensorboard`'s
  `EventAccumulator` with `size_guidance` 0 (keep all). Its file holds fewer
  points (writing one with SummaryWriter costs ~40 us a scalar); rates are
  per scalar, so the comparison holds;
- the floor: `orjson.loads` of each line and nothing else.

Also: one min/max decimation of a 1,000,000-point series to 400 buckets, and
the store's bytes per point. Read the ratio columns; absolute rates drift
with the machine's load.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402
import orjson  # noqa: E402

from tui_monitor.sources import Ingest  # noqa: E402
from tui_monitor.store import Series  # noqa: E402

NAMES5 = ("loss", "lr", "grad_norm", "step_time", "tokens_per_s")


def write_jsonl(path: str, n: int, names) -> int:
    rng = np.random.default_rng(0)
    vals = rng.random((n, len(names)))
    with open(path, "wb") as f:
        f.write(orjson.dumps({"type": "run", "seq": 0, "v": 1, "run_id": "bench", "name": "bench",
                              "start": 1.7e9, "host": "h", "pid": 1, "rank": 0, "world_size": 1,
                              "config": {}}) + b"\n")
        lines = []
        for i in range(n):
            lines.append(orjson.dumps({"type": "metrics", "seq": i + 1, "step": i, "time": 1.7e9 + i * 0.1,
                                       "values": dict(zip(names, vals[i].tolist()))}))
            if len(lines) == 10000:
                f.write(b"\n".join(lines) + b"\n")
                lines = []
        if lines:
            f.write(b"\n".join(lines) + b"\n")
    return n * len(names)


def read_tui(path: str) -> float:
    t = time.perf_counter()
    ing = Ingest()
    ing.add_path(path)
    ing.read_all()
    dt = time.perf_counter() - t
    run = ing.store.get("bench")
    assert run is not None and len(run.series[("train", "loss")]) > 0 and ing.problem_count == 0
    return dt


def read_floor(path: str) -> float:
    t = time.perf_counter()
    with open(path, "rb") as f:
        for line in f:
            orjson.loads(line)
    return time.perf_counter() - t


def write_tb(logdir: str, n_scalars: int) -> int:
    from torch.utils.tensorboard import SummaryWriter

    w = SummaryWriter(logdir)
    steps = n_scalars // len(NAMES5)
    for i in range(steps):
        for name in NAMES5:
            w.add_scalar(f"train/{name}", 0.5, i)
    w.close()
    return steps * len(NAMES5)


def read_tb(logdir: str) -> float:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    t = time.perf_counter()
    acc = EventAccumulator(logdir, size_guidance={"scalars": 0})
    acc.Reload()
    got = sum(len(acc.Scalars(tag)) for tag in acc.Tags()["scalars"])
    dt = time.perf_counter() - t
    assert got > 0
    return dt


def median_time(fn, *args, repeats):
    return statistics.median(fn(*args) for _ in range(repeats))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="100,000 records instead of 1,000,000")
    args = ap.parse_args()
    n = 100_000 if args.quick else 1_000_000
    repeats = 3
    with tempfile.TemporaryDirectory() as tmp:
        p5, p1 = os.path.join(tmp, "five.jsonl"), os.path.join(tmp, "one.jsonl")
        print(f"writing {n:,} records x 5 and x 1 scalars ...", flush=True)
        s5, s1 = write_jsonl(p5, n, NAMES5), write_jsonl(p1, n, NAMES5[:1])
        tb_dir = os.path.join(tmp, "tb")
        try:
            print("writing a TensorBoard event file (SummaryWriter) ...", flush=True)
            s_tb = write_tb(tb_dir, 100_000 if not args.quick else 20_000)
        except ImportError as e:
            s_tb = None
            print(f"TensorBoard comparison skipped: {e} (pip install tensorboard torch)")
        # interleave: every contender once per round
        times = {"tui5": [], "tui1": [], "floor5": [], "tb": []}
        for _ in range(repeats):
            times["tui5"].append(read_tui(p5))
            times["tui1"].append(read_tui(p1))
            times["floor5"].append(read_floor(p5))
            if s_tb:
                times["tb"].append(read_tb(tb_dir))
        rate = {
            "tui-monitor, 5 scalars/record": s5 / statistics.median(times["tui5"]),
            "tui-monitor, 1 scalar/record": s1 / statistics.median(times["tui1"]),
            "floor: orjson.loads per line (5/record)": s5 / statistics.median(times["floor5"]),
        }
        if s_tb:
            rate["tensorboard EventAccumulator"] = s_tb / statistics.median(times["tb"])
    tb_rate = rate.get("tensorboard EventAccumulator")
    print(f"\ningest, {n:,} records, median of {repeats} interleaved rounds")
    print(f"{'reader':42} {'scalars/s':>12} {'records/s':>12} {'x TB':>8} {'/ floor':>8}")
    floor = rate["floor: orjson.loads per line (5/record)"]
    for name, r in rate.items():
        per = 5 if "5" in name or "floor" in name else (1 if "1 scalar" in name else 1)
        rec = r / per if "tensorboard" not in name else float("nan")
        xtb = f"{r / tb_rate:8.1f}" if tb_rate else "       -"
        print(f"{name:42} {r:12,.0f} {rec:12,.0f} {xtb} {r / floor:8.2f}")

    s = Series()
    m = 1_000_000
    s.extend(np.arange(m), np.arange(m, dtype=np.float64), np.random.default_rng(1).random(m))
    dec, anchor = [], []
    for _ in range(7):
        t = time.perf_counter()
        s.decimate(400)
        dec.append(time.perf_counter() - t)
        t = time.perf_counter()
        np.sum(s.values)
        anchor.append(time.perf_counter() - t)
    d, a = statistics.median(dec), statistics.median(anchor)
    print(f"\ndecimate 1,000,000 points to 400 buckets: {d * 1e3:.2f} ms ({d / a:.1f}x np.sum of the same values)")
    print(f"store bytes per point at 1,000,000 points: {s.nbytes / len(s):.1f}")
    five = rate["tui-monitor, 5 scalars/record"]
    print("\ntargets:")
    print(f"  {'PASS' if five >= 1e6 else 'FAIL'}  >= 1,000,000 scalars/s into the store: {five:,.0f}")
    if tb_rate:
        print(f"  {'PASS' if five >= 25 * tb_rate else 'FAIL'}  >= 25x EventAccumulator: {five / tb_rate:.1f}x")
    print(f"  {'PASS' if d <= 5e-3 else 'FAIL'}  decimation <= 5 ms: {d * 1e3:.2f} ms")
    print(f"  {'PASS' if s.nbytes / len(s) <= 24 else 'FAIL'}  <= 24 bytes a point: {s.nbytes / len(s):.1f}")


if __name__ == "__main__":
    main()
