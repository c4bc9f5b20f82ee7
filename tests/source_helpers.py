"""Helpers for the source tests: stream lines to write, files to append to,
and what the store holds after reading them."""
from __future__ import annotations

import json

from tui_monitor.sources import Ingest


def header(run_id="r1", name="run", seq=0, **extra):
    rec = {"type": "run", "seq": seq, "v": 1, "run_id": run_id, "name": name, "start": 1000.0,
           "host": "elsewhere", "pid": 1, "rank": 0, "world_size": 1, "config": {}}
    rec.update(extra)
    return json.dumps(rec) + "\n"


def metrics(seq, step, loss, split=None):
    rec = {"type": "metrics", "seq": seq, "step": step, "time": 1000.0 + step, "values": {"loss": loss}}
    if split:
        rec["split"] = split
    return json.dumps(rec) + "\n"


def append(path, text, mode="a"):
    with open(path, mode + "b") as f:
        f.write(text.encode() if isinstance(text, str) else text)


def losses(store, run_id="r1", split="train"):
    run = store.get(run_id)
    if run is None or (split, "loss") not in run.series:
        return []
    s = run.series[(split, "loss")]
    return list(zip(s.steps.tolist(), s.values.tolist()))


def follow(*paths, context=None):
    """An Ingest that has read ``paths`` to their current ends, and its
    follower (to tick again after appending)."""
    ing = Ingest()
    f = ing.add_path(*map(str, paths))
    if context:
        f.context.update(context)
    ing.read_all()
    return ing, f


def read(*paths, context=None):
    return follow(*paths, context=context)[0]


def values(run, metric="loss", split="train"):
    s = run.get(metric, split)
    assert s is not None, f"no {split}/{metric} in {sorted(run.series)}"
    snap = s.snapshot()
    return list(snap.steps), list(snap.values)
