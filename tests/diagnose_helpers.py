"""Synthetic runs for the diagnosis tests: records built from arrays."""
from __future__ import annotations

import numpy as np

from tui_monitor.diagnose import Diagnoser
from tui_monitor.schema import encode_metric_value, split_metric
from tui_monitor.store import Store


def enc(v):
    """A metric value as the stream carries it (non-finite values as strings)."""
    return encode_metric_value(float(v))


def run_records(name, train, val=None, test=None, steps=None, eval_every=10, config=None, model=None, tags=None,
                grads=None, run_id=None, end=True):
    """A stream's records: ``train`` a loss per step; ``val``/``test`` a
    value per evaluation (every ``eval_every`` steps); ``grads(step)`` ->
    layers dict, every 10 steps."""
    run_id = run_id or name
    recs = [{"type": "run", "seq": 0, "v": 1, "run_id": run_id, "name": name, "start": 1.7e9, "pid": 1,
             "config": config or {}, "tags": tags or {}, **({"model": model} if model else {})}]
    steps = list(range(len(train))) if steps is None else list(steps)
    seq = 1
    for i, (s, v) in enumerate(zip(steps, train)):
        recs.append({"type": "metrics", "seq": seq, "step": int(s), "time": 1.7e9 + i, "values": {"loss": enc(v)}})
        seq += 1
        if grads is not None and i % 10 == 0:
            recs.append({"type": "grads", "seq": seq, "step": int(s), "time": 1.7e9 + i, "norm": 1.0,
                         "layers": grads(int(s))})
            seq += 1
        for split, arr in (("val", val), ("test", test)):
            if arr is not None and i % eval_every == 0 and i // eval_every < len(arr):
                recs.append({"type": "metrics", "seq": seq, "step": int(s), "time": 1.7e9 + i, "split": split,
                             "values": {"loss": enc(arr[i // eval_every])}})
                seq += 1
    if end:
        recs.append({"type": "end", "seq": seq, "time": 1.7e9 + len(train), "status": "finished"})
    return recs


def diagnose(*streams, every=None, **kw):
    """Feed streams (lists of records) into a store; return the engine after
    updating (after each ``every`` records if given, else once)."""
    store = Store(splitter=split_metric)
    eng = Diagnoser(store, **kw)
    if every is None:
        for i, recs in enumerate(streams):
            store.apply_many(recs, stream=i)
        eng.update()
        return eng
    order = sorted(((j / len(r), i, j) for i, r in enumerate(streams) for j in range(len(r))))
    for k, (_, i, j) in enumerate(order):
        store.apply(streams[i][j], stream=i)
        if (k + 1) % every == 0:
            eng.update()
    eng.update()
    return eng


def kinds(eng, name=None):
    return sorted({f.kind for f in eng.findings if name is None or f.run_names[0] == name})


def decaying(n, start=1.0, end=0.1, noise=0.0, seed=0, tau=None):
    rng = np.random.default_rng(seed)
    tau = tau or n / 4
    x = end + (start - end) * np.exp(-np.arange(n) / tau)
    return x * (1 + noise * rng.standard_normal(n))


# ---------------------------------------------------------------- multi-rank jobs

T0 = 1.7e9


class Clock:
    def __init__(self, t=T0):
        self.t = t

    def __call__(self):
        return self.t


def rank_records(rank, world=4, steps=100, pace=0.1, data_time=0.01, loss=None, run_id="job-1", host=None,
                 lag=0.0, start_step=0, t_start=T0, grad_norm=1.0, seed=0, extra=None):
    """One rank's stream: a header and one metrics record a step at ``pace``
    seconds a step; ``data_time`` its own (per-rank) timing; ``lag`` how late
    it logs each step."""
    rng = np.random.default_rng(seed + rank)
    recs = [{"type": "run", "seq": 0, "v": 1, "run_id": run_id, "name": "ddp", "start": t_start, "pid": 100 + rank,
             "host": host or f"node{rank // 2}", "rank": rank, "world_size": world, "local_rank": rank % 2,
             "config": {}, "tags": {}, **({"small": True} if rank else {})}]
    for i in range(steps):
        s = start_step + i
        lv = loss(s, rank) if loss else 1.0 / (1 + 0.01 * s) * (1 + 0.05 * rng.standard_normal())
        gn = grad_norm(s, rank) if callable(grad_norm) else grad_norm * (1 + 0.05 * rng.standard_normal())
        dtm = data_time(s, rank) if callable(data_time) else data_time * (1 + 0.1 * rng.random())
        recs.append({"type": "metrics", "seq": len(recs), "step": s, "time": t_start + (i + 1) * pace + lag,
                     "values": {"loss": enc(lv), "grad_norm": enc(gn), "data_time": dtm, **(extra or {})}})
    return recs


def heartbeats(recs, until, every=0.5):
    """Heartbeats after the last record until ``until`` (the step does not move)."""
    last = recs[-1]
    out = list(recs)
    t = last["time"] + every
    while t <= until:
        out.append({"type": "heartbeat", "seq": len(out), "time": t, "step": last["step"], "last_log": last["time"]})
        t += every
    return out
