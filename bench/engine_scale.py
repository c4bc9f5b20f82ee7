"""The diagnosis engine with many runs in view: is ``Diagnoser.update()``
still incremental with 10,000 runs?

    python bench/engine_scale.py [--runs 10000] [--points 100] [--groups 1]

Builds ``--runs`` small runs (``--points`` training losses, a validation
loss every 10 points, a model size that differs from run to run, all of the
same data unless ``--groups`` splits them: the worst case for the cross-run
comparison, which compares every run of a data group with the others), and
times, against the anchor of ingesting the same records into the store
(``Store.apply_many``) in the same process:

* the first ``update()`` over all of them (a sweep opened at once);
* an ``update()`` after 10 new points of one run (the TUI's timer while one
  run trains), of 1% of the runs, and an ``update()`` with nothing new.

Prints seconds and the ratios to the ingest anchor; the engine's cost must
follow what changed, not the number of runs.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tui_monitor.diagnose import Diagnoser  # noqa: E402
from tui_monitor.schema import split_metric  # noqa: E402
from tui_monitor.store import Store  # noqa: E402


def run_records(k: int, points: int, groups: int, rng, start: int = 0, header: bool = True):
    """Run ``k``'s records: a header (unless ``header`` is False) and the
    training points ``start .. start + points - 1``."""
    rid = f"run{k:05d}"
    recs = []
    if header:
        params = int(1000 * 1.5 ** (k % 17))
        recs.append({"type": "run", "seq": 0, "v": 1, "run_id": rid, "name": rid, "start": 1.7e9,
                     "config": {"data": f"data{k % groups}", "lr": 10 ** -(1 + k % 4)},
                     "model": {"params": params, "trainable_params": params, "depth": 2 + k % 7}})
    level = 0.2 + 0.8 * (k % 13) / 13
    for s in range(start, start + points):
        loss = level + (2.3 - level) * math.exp(-s / 30) + 0.02 * float(rng.standard_normal())
        recs.append({"type": "metrics", "seq": 1 + 2 * s, "step": s, "time": 1.7e9 + s, "values": {"loss": loss}})
        if s % 10 == 0:
            recs.append({"type": "metrics", "seq": 2 + 2 * s, "step": s, "time": 1.7e9 + s, "split": "val",
                         "values": {"loss": loss * 1.1}})
    return recs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--points", type=int, default=100)
    ap.add_argument("--groups", type=int, default=1, help="data groups the runs are split into (default 1)")
    a = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    streams = [run_records(k, a.points, a.groups, rng) for k in range(a.runs)]
    store = Store(splitter=split_metric)
    t0 = time.perf_counter()
    for k, recs in enumerate(streams):
        store.apply_many(recs, stream=k)
    ingest = time.perf_counter() - t0
    eng = Diagnoser(store)
    t0 = time.perf_counter()
    eng.update()
    first = time.perf_counter() - t0
    print(f"{a.runs:,} runs of {a.points} points ({sum(map(len, streams)):,} records), {a.groups} data group(s)")
    print(f"  ingest (anchor)              {ingest:8.3f} s")
    print(f"  first update()               {first:8.3f} s   {first / ingest:7.2f}x ingest")

    def timed(label, keys=(), start=0):
        """Ten new points (steps ``start`` on, after the first ``--points``) for each run of ``keys``, then
        one timed update()."""
        for k in keys:
            store.apply_many(run_records(k, 10, a.groups, rng, start=a.points + start, header=False), stream=k)
        t0 = time.perf_counter()
        eng.update()
        dt = time.perf_counter() - t0
        print(f"  {label:28} {dt:8.4f} s   {dt / ingest:7.4f}x ingest")

    timed("update(), 1 run moved", [0])
    timed("update(), 1% of runs moved", range(0, a.runs, 100), start=10)
    timed("update(), nothing new")
    print(f"  findings: {len(eng.findings)}")


if __name__ == "__main__":
    main()
