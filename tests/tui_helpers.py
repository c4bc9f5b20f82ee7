"""Helpers for the TUI tests: fixed synthetic runs, a real writer process,
waiting on conditions inside a Pilot, and the screen as text."""
from __future__ import annotations

import asyncio
import functools
import io
import math
import time

import numpy as np

from tui_monitor.schema import encode_metric_value, split_metric
from tui_monitor.store import Store

T0 = 1_764_430_000.0
#: A fixed "now" for snapshots: a few seconds after the synthetic runs' last record.
NOW = T0 + 700.0


def sync(fn):
    """Run an async test with asyncio.run (no pytest plugin needed)."""
    @functools.wraps(fn)
    def wrapper(*args, **kw):
        return asyncio.run(fn(*args, **kw))
    return wrapper


def _enc(v):
    """A metric value as the stream carries it (non-finite values as strings)."""
    return encode_metric_value(float(v))


def run_records(run_id, name, train, val=None, test=None, every=10, model=None, end="finished", tags=None,
                grads=False, config=None):
    """Records of one run: a train loss per step, held-out losses every ``every`` steps."""
    recs = [{"type": "run", "seq": 0, "v": 1, "run_id": run_id, "name": name, "start": T0, "host": "test-host",
             "pid": 1, "rank": 0, "world_size": 1, "config": config or {"data": "d1"}, "tags": tags or {},
             "model": model}]
    seq = 1
    for i, v in enumerate(train):
        recs.append({"type": "metrics", "seq": seq, "step": i, "time": T0 + i, "values": {"loss": _enc(v),
                                                                                     "lr": 0.01}})
        seq += 1
        for split, arr in (("val", val), ("test", test)):
            if arr is not None and i % every == 0 and i // every < len(arr):
                recs.append({"type": "metrics", "seq": seq, "step": i, "time": T0 + i + 0.5, "split": split,
                             "values": {"loss": _enc(arr[i // every])}})
                seq += 1
        if grads and i % 20 == 0:
            g = 1.0 / (1 + i / 50)
            recs.append({"type": "grads", "seq": seq, "step": i, "time": T0 + i + 0.25, "norm": g,
                         "layers": {"0.weight": {"grad": g * 1e-3, "weight": 3.0, "zero_rows": 0.0},
                                    "2.weight": {"grad": g * 0.5, "weight": 2.0, "zero_rows": 0.25},
                                    "4.weight": {"grad": g, "weight": 1.0}}})
            seq += 1
    if end:
        recs.append({"type": "end", "seq": seq, "time": T0 + len(train), "status": end, "dropped": 0,
                     "step": len(train) - 1, **({"error": {"type": "FloatingPointError", "message": "loss is nan"}}
                                                 if end == "crashed" else {})})
    return recs


def synthetic_store(names=None) -> Store:
    """Three fixed runs: a linear baseline that plateaus, an MLP that
    overfits, a run that diverges to NaN and +inf."""
    names = names or {}
    steps = np.arange(300)
    rng = np.random.default_rng(0)
    noise = 0.02 * rng.standard_normal(300)
    base = 0.5 + 0.4 * np.exp(-steps / 20) + noise
    fit = 0.9 * np.exp(-steps / 40) + 0.005 + 0.5 * np.abs(noise)
    val_fit = [0.9 * math.exp(-s / 40) + 0.2 + 0.0000045 * max(0, s - 100) ** 2.3 for s in range(0, 300, 10)]
    div = 0.9 * np.exp(-steps / 60) + noise
    div[200:] = 10.0 ** ((steps[200:] - 195) / 4.0)
    div[240:243] = np.nan
    div[243:245] = np.inf
    store = Store(splitter=split_metric, clock=lambda: NOW)
    store.apply_many(run_records("aaaa1111", names.get("a", "linear-baseline"), base,
                                 val=[0.55 + 0.3 * math.exp(-s / 20) for s in range(0, 300, 10)],
                                 model={"params": 5, "trainable_params": 5, "depth": 1, "width": 1,
                                        "input_features": 4}), stream="a")
    store.apply_many(run_records("bbbb2222", names.get("b", "mlp-wide"), fit, val=val_fit,
                                 model={"params": 67329, "trainable_params": 67329, "depth": 3, "width": 256,
                                        "input_features": 4}, grads=True), stream="b")
    store.apply_many(run_records("cccc3333", names.get("c", "diverging"), div[:245],
                                 val=[0.9 * math.exp(-s / 60) + 0.05 for s in range(0, 200, 10)],
                                 model={"params": 4545, "trainable_params": 4545, "depth": 3, "width": 64,
                                        "input_features": 4}, end="crashed", config={"data": "d2"}), stream="c")
    return store


#: A training script for a real writer process: argv = dir, name, steps, delay.
#: The train loss falls, the val loss turns up after step 60 (overfitting),
#: and with "nan" in argv the loss becomes NaN at 80% of the steps.
WRITER = r"""
import math, os, sys, time
sys.path.insert(0, sys.argv[5])
from tui_monitor import hook
d, name, steps, delay = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
nan = "nan" in sys.argv[6:]
# gate=PATH:STEP: at STEP, wait for the file PATH (the test says when the run may go on)
gate = next((a[5:].rsplit(":", 1) for a in sys.argv[6:] if a.startswith("gate=")), None)
run = hook.init(name, dir=d, config={"data": "w-" + name}, heartbeat_every=3600)
for step in range(steps):
    if gate and step == int(gate[1]):
        run.flush()
        while not os.path.exists(gate[0]):
            time.sleep(0.01)
    loss = 1.0 * math.exp(-step / 30) + 0.01 * math.sin(step)
    if nan and step >= int(steps * 0.8):
        loss = float("nan")
    run.log({"loss": loss, "lr": 0.1}, step=step)
    if step % 5 == 0:
        run.log({"loss": 0.6 * math.exp(-step / 30) + 0.3 + 0.00008 * max(0, step - 60) ** 2}, step=step, split="val")
    if delay:
        time.sleep(delay)
run.close(status="crashed" if nan else None)
"""


async def until(pilot, condition, timeout: float = 20.0, message: str = "condition"):
    """Let the app run until ``condition()`` is truthy; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        await pilot.pause(0.05)


def screen_text(app) -> str:
    """What the screen shows, as plain text."""
    from rich.console import Console

    c = Console(width=app.size.width, height=app.size.height, file=io.StringIO(), force_terminal=True,
                record=True, color_system="truecolor", legacy_windows=False)
    c.print(app.screen._compositor.render_update(full=True))
    return c.export_text(styles=False)


def fold_store(folds: int = 3) -> Store:
    """The three runs of :func:`synthetic_store` and a ``folds``-fold
    cross-validation group ``cv-mlp`` (runs tagged group/fold), whose fold k
    has a best validation loss of 0.3 + 0.02 k; the last fold is still running."""
    store = synthetic_store()
    steps = np.arange(100)
    for k in range(folds):
        train = 0.9 * np.exp(-steps / 25) + 0.1 + 0.01 * k
        val = [0.8 * math.exp(-s / 25) + 0.3 + 0.02 * k for s in range(0, 100, 10)]
        store.apply_many(run_records("fold%04d" % k, "cv-mlp-f%d" % k, train, val=val,
                                     tags={"group": "cv-mlp", "fold": k}, config={"data": "d1"},
                                     end=None if k == folds - 1 else "finished"), stream="f%d" % k)
    return store


class FixedFindings:
    """A stand-in for the diagnosis engine: always the same two findings
    (a divergence of ``diverging`` at 240, overfitting of ``mlp-wide`` at 130)."""

    baseline = None

    def __init__(self, store, baseline=None):
        from types import SimpleNamespace as f

        self.store = store
        self.findings = [
            f(kind="divergence", symptom="non_finite", runs=[("cccc3333", 0)], run_names=["diverging"], step=240,
              severity="critical", confidence=1.0, evidence={}, explanation="the train loss became NaN at step 240",
              advice="restart from the last good checkpoint with a smaller learning rate",
              guidance_step="1. Training loss large -> optimization", id="div"),
            f(kind="overfitting", symptom="validation_turned", runs=[("bbbb2222", 0)], run_names=["mlp-wide"],
              step=130, severity="warning", confidence=0.9, evidence={},
              explanation="the val loss rose from its best 0.2461 at step 130 while the train loss fell",
              advice="early stopping, more data, less flexibility, regularisation",
              guidance_step="2. Training loss small, held-out loss large -> overfitting", id="ovf"),
        ]

    def update(self):
        return []


def fixed_app(store=None, engine="fixed", **kw):
    """The app on fixed runs (:func:`synthetic_store` unless given), a fixed
    clock and the fixed findings (``engine="auto"``: the real engine; None:
    none), diagnosing in the UI thread, with relative x labels."""
    from tui_monitor.tui import MonitorApp

    store = store if store is not None else synthetic_store()
    diagnoser = FixedFindings(store) if engine == "fixed" else engine
    kw.setdefault("interval", 3600)
    return MonitorApp(store, diagnoser=diagnoser, clock=lambda: NOW, threaded=False,
                      x_format=lambda t: "%d" % (t - NOW), **kw)


def deep_store(layers: int = 20) -> Store:
    """The runs of :func:`synthetic_store` and ``deep-net``, a finished run
    whose gradient records have ``layers`` layers (the gradient table is
    longer than an 80x24 screen)."""
    store = synthetic_store()
    train = 0.9 * np.exp(-np.arange(100) / 30) + 0.05
    recs = run_records("dddd4444", "deep-net", train, val=[0.5] * 10)
    end = recs.pop()
    seq = end["seq"]
    for step in range(0, 100, 20):
        seq += 1
        recs.append({"type": "grads", "seq": seq, "step": step, "time": T0 + step + 0.25, "norm": 1.0,
                     "layers": {"layer%02d.weight" % i: {"grad": 10.0 ** (-i / 4), "weight": 1.0, "zero_rows": 0.0}
                                for i in range(layers)}})
    end["seq"] = seq + 1
    recs.append(end)
    store.apply_many(recs, stream="d")
    return store


def write_run(path, name: str, steps: int = 50) -> None:
    """A finished run's stream (a falling train loss) written to ``path``."""
    import json

    train = 0.9 * np.exp(-np.arange(steps) / 20) + 0.05
    with open(path, "w") as f:
        for rec in run_records("id-" + name, name, train):
            f.write(json.dumps(rec) + "\n")
