#!/usr/bin/env python
"""What logging a metric costs a training loop: tui_monitor's run.log() against
the least possible work, an inline JSON-lines write and tensorboard.

    python bench/hook_overhead.py           # full run, about a minute
    python bench/hook_overhead.py --quick   # smoke test, well under 20 s

Contenders (each call logs one record of 1 or 5 scalars with a step):

  floor        list.append((step, v, ...)): the least any logger can do
  tui-monitor  run.log({...}, step=i), flush_every left at its default (1 s);
               Python floats, and 5 0-dim CPU torch tensors (if torch imports)
  inline json  f.write(json.dumps({...}) + "\\n") to a buffered file
  tensorboard  SummaryWriter.add_scalar, one call per scalar (needs
               `pip install tensorboard`; skipped, with the reason, otherwise)

Columns, medians over R interleaved rounds (every round runs every contender
once, in rotating order, so drift and other processes' noise hit all alike):

  caller us     perf_counter around N calls, per call: what the training
                thread pays. A fresh Run's writer first wakes 1 s after init,
                so this is the uncontended cost; contention is in "max".
  CPU us        process_time (all threads of the process) around the N calls
                plus close()/flush(), per call: all that logging costs the
                machine, the writer thread's conversion and encoding included.
  max, p99.9    a separate pass per contender timing every call with
                perf_counter_ns, with ~20 us of busy "training work" (holding
                the GIL) between calls, for 2.5 s so the writer flushes at
                least twice meanwhile: a stall in log() while the writer works
                shows in max (a GIL hand-over can take sys.getswitchinterval()).

  /floor        this contender's cost over the floor's for the same number of
                scalars (1.0 = the floor; lower is better).
  SW/           SummaryWriter's cost over this contender's for the same number
                of scalars (how many times cheaper than tensorboard; higher is
                better).

Absolute microseconds depend on the machine and its load; the ratios are what
the targets (printed last, PASS/FAIL) are about.
"""
import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tui_monitor as tm  # noqa: E402

try:
    import torch
    torch.set_num_threads(1)
except ImportError:
    torch = None
try:
    from torch.utils.tensorboard import SummaryWriter
    SW_SKIP = None
except Exception as e:  # noqa: BLE001 - ImportError, or torch itself missing
    SummaryWriter, SW_SKIP = None, f"{type(e).__name__}: {e}"

X = 2.302585092994046   # full-precision: a real loss costs this much to repr
NAMES = ("loss", "acc", "lr", "grad_norm", "tokens_per_s")
WORK_NS = 20_000        # busy "training work" between calls in the per-call pass


# ---------------------------------------------------------------- contenders
# Each make(tmp) returns (names the statement uses, finish); finish is close()
# or flush+close and is inside the total-CPU measurement.

def make_floor(tmp):
    out = []
    return {"app": out.append}, out.clear


def make_hook(tmp):
    run = tm.init("bench", dir=tmp)        # flush_every: the default
    assert run.flush_every == 1.0, run.flush_every
    names = {"log": run.log}
    if torch is not None:                  # like a loss tensor: made before, logged as is
        names.update({f"t{j}": torch.tensor(X + j) for j in range(5)})
    return names, run.close


def make_json(tmp):
    f = open(os.path.join(tmp, f"inline-{time.monotonic_ns()}.jsonl"), "w")  # buffered
    return {"write": f.write, "dumps": json.dumps}, f.close


def make_sw(tmp):
    w = SummaryWriter(log_dir=tempfile.mkdtemp(dir=tmp))
    return {"add": w.add_scalar}, w.close   # close() flushes


def values(n, v=lambda j: "x"):
    return "{" + ", ".join(f'"{k}": {v(j)}' for j, k in enumerate(NAMES[:n])) + "}"


def contenders():
    cs = []  # (label, scalars, group, statement, make, fast)
    for n in (1, 5):
        cs.append(("floor: list.append(tuple)", n, "floor",
                   "app((i, " + ", ".join(["x"] * n) + "))", make_floor, True))
        cs.append(("tui-monitor run.log (floats)", n, "hook", f"log({values(n)}, step=i)", make_hook, True))
        cs.append(("inline json.dumps+write", n, "json",
                   f'write(dumps({{"step": i, **{values(n)}}}) + "\\n")', make_json, True))
        if SummaryWriter is not None:
            cs.append(("tensorboard add_scalar", n, "sw",
                       "; ".join(f'add("{k}", x, i)' for k in NAMES[:n]), make_sw, False))
    if torch is not None:
        cs.append(("tui-monitor run.log (tensors)", 5, "hook",
                   f"log({values(5, lambda j: f't{j}')}, step=i)", make_hook, True))
    return cs


# The statement is compiled into the loops (as timeit does), so no contender
# pays a Python call per iteration that the others don't; names are closure
# cells, equally cheap for all.
TEMPLATE = """
def build({args}):
    def loop(n):
        for i in range(n):
            {stmt}

    def percall(end_ns, lat):
        ns, rec, i = perf_counter_ns, lat.append, 0
        while True:
            start = ns()
            {stmt}
            stop = ns()
            rec(stop - start)
            if stop > end_ns:
                return
            i += 1
            while ns() < stop + {work}:
                pass
    return loop, percall
"""


def build(stmt, names):
    names = dict(names, x=X)
    src = TEMPLATE.format(args=", ".join(names), stmt=stmt, work=WORK_NS)
    scope = {"perf_counter_ns": time.perf_counter_ns}
    exec(compile(src, "<bench>", "exec"), scope)
    return scope["build"](**names)


# gc stays ENABLED in the timed sections: log() allocates a dict copy and a
# tuple per call that live in the queue until the writer drains them, and the
# collections that this triggers are a cost the training loop really pays
# (the floor keeps its tuples in a list too, so it pays the same way).
# gc.collect() before each section gives every contender the same start.

def timed(c, n, tmp):
    names, finish = c[4](tmp)
    loop, _ = build(c[3], names)
    gc.collect()
    c0, t0 = time.process_time(), time.perf_counter()
    loop(n)
    t1 = time.perf_counter()
    finish()
    c1 = time.process_time()
    return (t1 - t0) / n * 1e6, (c1 - c0) / n * 1e6


def per_call(c, tmp, seconds):
    names, finish = c[4](tmp)
    _, percall = build(c[3], names)
    lat = []
    gc.collect()
    percall(time.perf_counter_ns() + int(seconds * 1e9), lat)
    finish()
    lat.sort()
    return lat[-1] / 1e3, lat[min(len(lat) - 1, int(0.999 * len(lat)))] / 1e3, len(lat)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer calls and rounds: a smoke test")
    a = ap.parse_args()
    rounds, n_fast, n_slow, seconds = (3, 2_000, 200, 0.3) if a.quick else (7, 20_000, 2_000, 2.5)
    cs = contenders()
    print(f"python {sys.version.split()[0]}, torch {torch.__version__ if torch else 'absent'}, "
          f"{rounds} rounds, N={n_fast} calls ({n_slow} for tensorboard), per-call pass {seconds} s"
          f" each, gc on, switch interval {sys.getswitchinterval() * 1e3:g} ms")
    if SummaryWriter is None:
        print(f"SKIPPED tensorboard SummaryWriter: not importable ({SW_SKIP}); `pip install tensorboard`")
    caller = {c: [] for c in cs}
    cpu = {c: [] for c in cs}
    with tempfile.TemporaryDirectory(prefix="hook-bench-") as tmp:
        for r in range(rounds):
            for c in cs[r % len(cs):] + cs[:r % len(cs)]:   # rotating order
                us, cu = timed(c, n_fast if c[5] else n_slow, tmp)
                caller[c].append(us)
                cpu[c].append(cu)
        worst = {c: per_call(c, tmp, seconds) for c in cs}

    med = {c: (statistics.median(caller[c]), statistics.median(cpu[c])) for c in cs}
    ref = {}  # (group, scalars) -> medians; the tensor variant is not a reference
    for c in cs:
        ref.setdefault((c[2], c[1]), med[c])

    def ratios(c, k):
        fl, sw = ref.get(("floor", c[1])), ref.get(("sw", c[1]))
        return (f"{med[c][k] / fl[k]:7.1f}" if fl else "      -",
                f"{sw[k] / med[c][k]:7.1f}" if sw else "      -")

    head = (f"{'contender':30} {'n':>2} {'calls':>6} | {'caller us':>9} {'/floor':>7} {'SW/':>7} | "
            f"{'CPU us':>8} {'/floor':>7} {'SW/':>7} | {'max us':>8} {'p99.9 us':>8} {'calls':>7}")
    print("\n" + head + "\n" + "-" * len(head))
    for c in sorted(cs, key=lambda c: (c[1], ["floor", "hook", "json", "sw"].index(c[2]))):
        (f1, s1), (f2, s2), w = ratios(c, 0), ratios(c, 1), worst[c]
        print(f"{c[0]:30} {c[1]:2} {n_fast if c[5] else n_slow:6} | {med[c][0]:9.3f} {f1} {s1} | "
              f"{med[c][1]:8.3f} {f2} {s2} | {w[0]:8.1f} {w[1]:8.2f} {w[2]:7}")

    print("\ntargets (run.log of 5 scalars, Python floats):")
    h, f, s = ref[("hook", 5)], ref[("floor", 5)], ref.get(("sw", 5))
    rows = [("caller: log() within 8x the floor", h[0] / f[0], "<=", 8,
             f"(vs the 1-scalar floor: {h[0] / ref[('floor', 1)][0]:.1f}x)")]
    if s:
        rows += [("caller: >= 100x cheaper than SummaryWriter", s[0] / h[0], ">=", 100, ""),
                 ("total CPU: >= 20x cheaper than SummaryWriter", s[1] / h[1], ">=", 20, "")]
    for label, v, op, lim, note in rows:
        ok = v <= lim if op == "<=" else v >= lim
        print(f"  {'PASS' if ok else 'FAIL'}  {label:45} {v:7.1f}x {op} {lim}  {note}".rstrip())
    if not s:
        print(f"  SKIP  SummaryWriter targets: tensorboard not importable ({SW_SKIP})")


if __name__ == "__main__":
    main()
