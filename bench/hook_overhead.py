#!/usr/bin/env python
"""What logging a metric costs a training loop: tui_monitor's run.log() against
the least possible work, an inline JSON-lines write and tensorboard.

    python bench/hook_overhead.py                # full run, about a minute
    python bench/hook_overhead.py --quick        # smoke test, well under 20 s
    python bench/hook_overhead.py --against main # also the hook as it is at a git revision
    python bench/hook_overhead.py --against c32b279 --against main   # several, side by side

Contenders (each call logs one record of 1 or 5 scalars with a step):

  floor        list.append((step, v, ...)): the least any logger can do
  reads        list.append((step, t.tolist(), ...)) of 5 0-dim CPU tensors,
               each looked at first (t.is_cpu, t.ndim: reading a GPU tensor
               would wait for the device, and a big one is no scalar): the
               least a logger that keeps each tensor's value as it is at the
               call can do (tensorboard's add_scalar reads it at the call too)
  tui-monitor  run.log({...}, step=i), flush_every left at its default (1 s);
               Python floats, and 5 0-dim CPU torch tensors (if torch imports),
               which log() reads at once (a loop may change them in place)
  @REV         the same with the hook of git revision REV (--against, may be
               given more than once), loaded as the one-file copy is: before
               and after a change, same run
  inline json  f.write(json.dumps({...}) + "\\n") to a buffered file
  tensorboard  SummaryWriter.add_scalar, one call per scalar (needs
               `pip install tensorboard`; skipped, with the reason, otherwise),
               with floats and with the same tensors

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

Then the writer thread's throughput: N records of 5 and of 50 values queued
with the writer idle, then timed from flush() until they are written
(converted, encoded, written to the file), in records/s, against the inline
json.dumps+write of the same dicts (the least a writer does). A loop that logs
faster than this for long fills the queue, and what it turns away is counted.

Absolute microseconds depend on the machine and its load; the ratios are what
the targets (printed last, PASS/FAIL) are about.
"""
import argparse
import gc
import importlib.util
import json
import os
import statistics
import subprocess
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


def make_reads(tmp):
    out = []
    return {"app": out.append, **tensors()}, out.clear


def tensors():
    """Like a loss tensor: made before, logged as is."""
    return {f"t{j}": torch.tensor(X + j) for j in range(5)} if torch is not None else {}


def hook_maker(module):
    def make_hook(tmp):
        run = module.init("bench", dir=tmp, system_every=0)   # flush_every: the default
        assert run.flush_every == 1.0, run.flush_every
        return {"log": run.log, **tensors()}, run.close
    return make_hook


make_hook = hook_maker(tm)


def hook_at(rev, tmp):
    """tui_monitor/hook.py as it is at git revision ``rev``, imported on its
    own (as the copy-one-file hook is); None, with the reason, if it cannot be."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        src = subprocess.run(["git", "-C", root, "show", f"{rev}:tui_monitor/hook.py"], check=True,
                             capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        return None, f"git show {rev}:tui_monitor/hook.py failed: {getattr(e, 'stderr', b'').decode().strip() or e}"
    name = "hook_at_" + "".join(c if c.isalnum() else "_" for c in rev)
    path = os.path.join(tmp, name + ".py")
    with open(path, "wb") as f:
        f.write(src)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, None


def make_json(tmp):
    f = open(os.path.join(tmp, f"inline-{time.monotonic_ns()}.jsonl"), "w")  # buffered
    return {"write": f.write, "dumps": json.dumps}, f.close


def make_sw(tmp):
    w = SummaryWriter(log_dir=tempfile.mkdtemp(dir=tmp))
    return {"add": w.add_scalar, **tensors()}, w.close   # close() flushes


def values(n, v=lambda j: "x"):
    return "{" + ", ".join(f'"{k}": {v(j)}' for j, k in enumerate(NAMES[:n])) + "}"


def contenders(olds=()):
    """(label, scalars, group, statement, make, fast, values) for each contender;
    ``olds``: (git revision, its hook module) to run beside today's."""
    cs = []
    tensor = lambda j: f"t{j}"  # noqa: E731
    for n in (1, 5):
        cs.append(("floor: list.append(tuple)", n, "floor",
                   "app((i, " + ", ".join(["x"] * n) + "))", make_floor, True, "floats"))
        cs.append(("tui-monitor run.log (floats)", n, "hook", f"log({values(n)}, step=i)", make_hook, True, "floats"))
        for rev, old in olds if n == 5 else ():
            cs.append((f"@{rev} run.log (floats)", n, f"@{rev}", f"log({values(n)}, step=i)", hook_maker(old), True,
                       "floats"))
        cs.append(("inline json.dumps+write", n, "json",
                   f'write(dumps({{"step": i, **{values(n)}}}) + "\\n")', make_json, True, "floats"))
        if SummaryWriter is not None:
            cs.append(("tensorboard add_scalar", n, "sw",
                       "; ".join(f'add("{k}", x, i)' for k in NAMES[:n]), make_sw, False, "floats"))
    if torch is not None:
        read = " ".join(f"t{j}.is_cpu and not t{j}.ndim and t{j}.tolist()," for j in range(5))
        cs.append(("reads: list.append(checked .tolist())", 5, "reads", f"app((i, {read}))", make_reads, True,
                   "tensors"))
        cs.append(("tui-monitor run.log (tensors)", 5, "hook",
                   f"log({values(5, tensor)}, step=i)", make_hook, True, "tensors"))
        for rev, old in olds:
            cs.append((f"@{rev} run.log (tensors)", 5, f"@{rev}", f"log({values(5, tensor)}, step=i)",
                       hook_maker(old), True, "tensors"))
        if SummaryWriter is not None:
            cs.append(("tensorboard add_scalar (tensors)", 5, "sw",
                       "; ".join(f'add("{k}", t{j}, i)' for j, k in enumerate(NAMES[:5])), make_sw, False, "tensors"))
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


def writer_rate(module, keys, n, tmp):
    """Records/s of a run's writer thread draining ``n`` queued records of ``keys`` values."""
    run = module.init("writer", dir=tmp, flush_every=3600, system_every=0, max_queue=10 * n)
    run.flush()                                   # the header: the writer is idle from here
    values = {f"layer{j}/grad_norm": X + j for j in range(keys)}
    for i in range(n):
        run.log(values, step=i)
    gc.collect()
    t0 = time.perf_counter()
    run.flush()
    elapsed = time.perf_counter() - t0
    run.close()
    return n / elapsed


def json_rate(keys, n, tmp):
    values = {f"layer{j}/grad_norm": X + j for j in range(keys)}
    dumps = json.dumps
    with open(os.path.join(tmp, f"inline-{time.monotonic_ns()}.jsonl"), "w") as f:
        gc.collect()
        t0 = time.perf_counter()
        for i in range(n):
            f.write(dumps({"step": i, **values}) + "\n")
        f.flush()
        return n / (time.perf_counter() - t0)


def writer_table(olds, tmp, rounds, quick):
    print("\nthe writer thread: records written per second, queued records drained by one flush()")
    head = f"{'writer':34} {'values':>6} {'records':>8} | {'records/s':>10} {'values/s':>11} {'/json':>6}"
    print(head + "\n" + "-" * len(head))
    out = {}
    for keys, n in ((5, 10_000 if quick else 50_000), (50, 2_000 if quick else 10_000)):
        who = [("tui-monitor writer", lambda keys=keys, n=n: writer_rate(tm, keys, n, tmp))]
        for rev, old in olds:
            who.append((f"@{rev} writer", lambda keys=keys, n=n, old=old: writer_rate(old, keys, n, tmp)))
        who.append(("inline json.dumps+write", lambda keys=keys, n=n: json_rate(keys, n, tmp)))
        rates = {label: [] for label, _ in who}
        for r in range(rounds):
            for label, measure in who[r % len(who):] + who[:r % len(who)]:
                rates[label].append(measure())
        anchor = statistics.median(rates["inline json.dumps+write"])
        for label, _ in who:
            rate = statistics.median(rates[label])
            out[(label, keys)] = rate
            print(f"{label:34} {keys:6} {n:8} | {rate:10,.0f} {rate * keys:11,.0f} {rate / anchor:6.2f}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer calls and rounds: a smoke test")
    ap.add_argument("--against", metavar="REV", action="append", default=[],
                    help="also time the hook of this git revision (e.g. main), side by side with today's; "
                         "may be given more than once")
    a = ap.parse_args()
    rounds, n_fast, n_slow, seconds = (3, 2_000, 200, 0.3) if a.quick else (7, 20_000, 2_000, 2.5)
    print(f"python {sys.version.split()[0]}, torch {torch.__version__ if torch else 'absent'}, "
          f"{rounds} rounds, N={n_fast} calls ({n_slow} for tensorboard), per-call pass {seconds} s"
          f" each, gc on, switch interval {sys.getswitchinterval() * 1e3:g} ms")
    if SummaryWriter is None:
        print(f"SKIPPED tensorboard SummaryWriter: not importable ({SW_SKIP}); `pip install tensorboard`")
    caller, cpu = {}, {}
    with tempfile.TemporaryDirectory(prefix="hook-bench-") as tmp:
        olds = []
        for rev in a.against:
            old, why = hook_at(rev, tmp)
            if old is None:
                print(f"SKIPPED @{rev}: {why}")
            else:
                olds.append((rev, old))
        cs = contenders(olds)
        for r in range(rounds):
            for c in cs[r % len(cs):] + cs[:r % len(cs)]:   # rotating order
                us, cu = timed(c, n_fast if c[5] else n_slow, tmp)
                caller.setdefault(c, []).append(us)
                cpu.setdefault(c, []).append(cu)
        worst = {c: per_call(c, tmp, seconds) for c in cs}
        writer = writer_table(olds, tmp, rounds, a.quick)

    med = {c: (statistics.median(caller[c]), statistics.median(cpu[c])) for c in cs}
    ref = {(c[2], c[1], c[6]): med[c] for c in cs}   # (group, scalars, values) -> medians

    def ratios(c, k):
        fl, sw = ref.get(("floor", c[1], "floats")), ref.get(("sw", c[1], c[6]))
        return (f"{med[c][k] / fl[k]:7.1f}" if fl else "      -",
                f"{sw[k] / med[c][k]:7.1f}" if sw else "      -")

    head = (f"{'contender':34} {'n':>2} {'calls':>6} | {'caller us':>9} {'/floor':>7} {'SW/':>7} | "
            f"{'CPU us':>8} {'/floor':>7} {'SW/':>7} | {'max us':>8} {'p99.9 us':>8} {'calls':>7}")
    print("\n" + head + "\n" + "-" * len(head))
    order = ["floor", "reads", "hook"] + [f"@{rev}" for rev, _ in olds] + ["json", "sw"]
    for c in sorted(cs, key=lambda c: (c[1], c[6], order.index(c[2]))):
        (f1, s1), (f2, s2), w = ratios(c, 0), ratios(c, 1), worst[c]
        print(f"{c[0]:34} {c[1]:2} {n_fast if c[5] else n_slow:6} | {med[c][0]:9.3f} {f1} {s1} | "
              f"{med[c][1]:8.3f} {f2} {s2} | {w[0]:8.1f} {w[1]:8.2f} {w[2]:7}")
    print("SW/: tensorboard's cost over this one's, logging the same values (floats or tensors)")

    print("\ntargets (run.log of 5 scalars):")
    h, f, s = ref[("hook", 5, "floats")], ref[("floor", 5, "floats")], ref.get(("sw", 5, "floats"))
    ht, st = ref.get(("hook", 5, "tensors")), ref.get(("sw", 5, "tensors"))
    rows = [("caller: log() within 8x the floor (floats)", h[0] / f[0], "<=", 8,
             f"(vs the 1-scalar floor: {h[0] / ref[('floor', 1, 'floats')][0]:.1f}x)")]
    if s:
        rows += [("caller: >= 100x cheaper than SummaryWriter (floats)", s[0] / h[0], ">=", 100, ""),
                 ("total CPU: >= 20x cheaper than SummaryWriter (floats)", s[1] / h[1], ">=", 20, "")]
    rd = ref.get(("reads", 5, "tensors"))
    if st and ht:
        rows += [("caller: >= 100x cheaper than SummaryWriter (tensors)", st[0] / ht[0], ">=", 100,
                  f"(the reads alone: at most {st[0] / rd[0]:.0f}x)")]
    for keys in (5, 50):
        rows.append((f"writer, {keys} values: >= 0.5x inline json.dumps+write",
                     writer[("tui-monitor writer", keys)] / writer[("inline json.dumps+write", keys)], ">=", 0.5,
                     f"({writer[('tui-monitor writer', keys)]:,.0f} records/s)"))
    for label, v, op, lim, note in rows:
        ok = v <= lim if op == "<=" else v >= lim
        print(f"  {'PASS' if ok else 'FAIL'}  {label:53} {v:7.1f}x {op} {lim}  {note}".rstrip())
    if not s:
        print(f"  SKIP  SummaryWriter targets: tensorboard not importable ({SW_SKIP})")
    if st and ht:
        print(f"\nthe arithmetic, tensors: 100x SummaryWriter ({st[0]:.1f} us) is {st[0] / 100:.2f} us a call; "
              f"reading the 5 tensors at the call\ncosts {rd[0]:.2f} us of it ({rd[0] / 5 * 1e3:.0f} ns a tensor: "
              f"is_cpu, ndim, tolist), leaving {st[0] / 100 - rd[0]:.2f} us for the rest of log(), which "
              f"costs\n{h[0]:.2f} us with floats (time, step, queue, the copy) and adds {ht[0] - rd[0]:.2f} us "
              f"to the reads with tensors")


if __name__ == "__main__":
    main()
