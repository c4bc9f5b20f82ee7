"""The diagnosis engine against the labelled corpus, replayed as if live.

    python bench/diagnosis.py [--corpus DIR] [--seeds 0,1,2] [--every 1] [--records 1000000]

Generates the corpus (tui_monitor/scenarios: real tiny PyTorch runs) unless
``--corpus`` points at one, then replays every experiment (the runs that
share data are replayed together, interleaved by progress, as if they
trained side by side) record by record through a Store and a Diagnoser,
calling ``update()`` every ``--every`` records and at the end. Prints:

* per kind: precision and recall of the final verdict (a run's findings at
  warning level or above, about that run), and how often the top finding
  has the expected kind;
* false alarms: healthy runs that had a finding at warning level or above
  at *any* point of the replay;
* detection delay after the onset: steps and fraction of the run (and, for
  overfitting, evaluations after the validation loss clearly turned: the
  first evaluation after its final minimum that is 5% above it);
* the engine's cost per record on one synthetic run of ``--records`` records
  (metrics every step, validation every 100, grads every 50), ingested in
  batches of 1,000 with ``Store.apply_many`` and an ``update()`` after each
  batch, against the ingest cost in the same run.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tui_monitor.diagnose import KINDS, Diagnoser  # noqa: E402
from tui_monitor.diagnose.findings import severity_rank  # noqa: E402
from tui_monitor.schema import split_metric  # noqa: E402
from tui_monitor.scenarios.corpus import generate, load_manifest  # noqa: E402
from tui_monitor.store import Store  # noqa: E402

HEALTHY = "healthy"


def read_records(path):
    with open(path, "rb") as f:
        return [json.loads(line) for line in f if line.strip()]


def onset_of(entry, records):
    """The step where the expected problem begins (see the module doc)."""
    train = [(r["step"], r["values"].get("loss")) for r in records
             if r["type"] == "metrics" and r.get("split") in (None, "train") and "loss" in r["values"]]
    first = train[0][0] if train else 0
    if entry["onset"] == "non_finite":
        for s, v in train:
            if isinstance(v, str) or not math.isfinite(v):
                return s, None
        return first, None
    if entry["onset"] == "val_turn":
        val = [(r["step"], r["values"]["loss"]) for r in records
               if r["type"] == "metrics" and r.get("split") == "val" and "loss" in r["values"]]
        vals = [v for _, v in val]
        i = int(np.argmin(vals))
        for j in range(i + 1, len(val)):
            if vals[j] > 1.05 * vals[i]:
                return val[j][0], [s for s, _ in val]
        return val[-1][0], [s for s, _ in val]
    return first, None


def experiments(entries):
    groups = defaultdict(list)
    for e in entries:
        key = (e["group"], e["seed"]) if e["group"] else (e["scenario"], e["seed"], e["fold"])
        groups[key].append(e)
    return list(groups.values())


def replay(entries, every=1):
    """Replay one experiment's runs interleaved; return per-run results."""
    recs = {e["path"]: read_records(e["path"]) for e in entries}
    order = []  # (fraction, path, index)
    for p, rs in recs.items():
        n = len(rs)
        order.extend(((i + 1) / n, p, i) for i in range(n))
    order.sort()
    store = Store(splitter=split_metric)
    eng = Diagnoser(store)
    key_of = {}
    res = {e["path"]: {"first": {}, "alarms": [], "last_step": 0} for e in entries}
    last_step = defaultdict(int)

    def tick():
        eng.update()
        for f in eng.findings:
            if severity_rank(f.severity) < 1:
                continue
            path = key_of.get(f.runs[0])
            if path is None:
                continue
            r = res[path]
            r["first"].setdefault(f.kind, (last_step[path], f.step))
            r["alarms"].append(f.kind)

    for k, (_, p, i) in enumerate(order):
        rec = recs[p][i]
        run = store.apply(rec, stream=p)
        if run is not None:
            key_of[run.key] = p
        if isinstance(rec.get("step"), int):
            last_step[p] = max(last_step[p], rec["step"])
        if (k + 1) % every == 0:
            tick()
    tick()
    out = {}
    for e in entries:
        p = e["path"]
        final = [f for f in eng.findings if key_of.get(f.runs[0]) == p and severity_rank(f.severity) >= 1]
        onset, evals = onset_of(e, recs[p])
        out[p] = {"entry": e, "final": final, "first": res[p]["first"], "alarms": set(res[p]["alarms"]),
                  "last_step": last_step[p], "onset": onset, "evals": evals}
    return out


def cost(n_records, batch=1000):
    """Seconds per record: ingest (apply_many) and engine (update), one run."""
    rng = np.random.default_rng(0)
    store = Store(splitter=split_metric)
    eng = Diagnoser(store)
    header = {"type": "run", "seq": 0, "v": 1, "run_id": "big", "name": "big", "start": 1.7e9,
              "config": {"task": "classification", "num_classes": 10},
              "model": {"params": 10 ** 6, "trainable_params": 10 ** 6, "depth": 8, "width": 512}}
    store.apply(header, stream="big")
    t_ingest = t_engine = 0.0
    seq = 1
    step = 0
    while seq < n_records:
        recs = []
        while len(recs) < batch and seq < n_records:
            loss = 2.3 * math.exp(-step / 2e5) + 0.05 + 0.05 * float(rng.standard_normal())
            recs.append({"type": "metrics", "seq": seq, "step": step, "time": 1.7e9 + step,
                         "values": {"loss": loss, "lr": 1e-3}})
            seq += 1
            if step % 50 == 0:
                recs.append({"type": "grads", "seq": seq, "step": step, "time": 1.7e9 + step, "norm": 1.0,
                             "layers": {f"l{i}.weight": {"grad": 0.1, "weight": 10.0 + step * 1e-5,
                                                         "zero_rows": 0.0} for i in range(8)}})
                seq += 1
            if step % 100 == 0:
                recs.append({"type": "metrics", "seq": seq, "step": step, "time": 1.7e9 + step, "split": "val",
                             "values": {"loss": 2.3 * math.exp(-step / 2e5) + 0.1}})
                seq += 1
            step += 1
        t0 = time.perf_counter()
        store.apply_many(recs, stream="big")
        t1 = time.perf_counter()
        eng.update()
        t2 = time.perf_counter()
        t_ingest += t1 - t0
        t_engine += t2 - t1
    return t_ingest / n_records, t_engine / n_records, eng


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", help="a generated corpus (default: generate one in a temporary directory)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--every", type=int, default=1, help="records between update() calls (default 1)")
    ap.add_argument("--records", type=int, default=1_000_000, help="size of the synthetic run for the cost")
    a = ap.parse_args(argv)
    if a.corpus and (Path(a.corpus) / "corpus.json").exists():
        corpus = Path(a.corpus)
    else:
        corpus = Path(a.corpus) if a.corpus else Path(tempfile.mkdtemp(prefix="tm-corpus-"))
        t0 = time.perf_counter()
        generate(corpus, seeds=[int(x) for x in a.seeds.split(",")])
        print(f"corpus generated in {time.perf_counter() - t0:.1f} s: {corpus}")
    entries = load_manifest(corpus)
    results = {}
    t0 = time.perf_counter()
    for exp in experiments(entries):
        results.update(replay(exp, a.every))
    print(f"replayed {len(entries)} runs in {time.perf_counter() - t0:.1f} s, update() every {a.every} record(s)\n")

    # per kind precision / recall
    print(f"{'kind':14} {'runs':>4} {'recall':>7} {'precision':>9} {'top=label':>9}")
    problem_ok = problem_n = 0
    for k in KINDS:
        expected = [r for r in results.values() if r["entry"]["label"] == k]
        predicted = [r for r in results.values() if any(f.kind == k for f in r["final"])]
        tp = [r for r in expected if any(f.kind == k for f in r["final"])]
        top = [r for r in expected if r["final"] and r["final"][0].kind == k]
        if not expected and not predicted:
            continue
        rec = len(tp) / len(expected) if expected else math.nan
        prec = len([r for r in predicted if r["entry"]["label"] == k]) / len(predicted) if predicted else math.nan
        print(f"{k:14} {len(expected):4} {rec:7.0%} {prec:9.0%} {len(top):4}/{len(expected):<4}")
        problem_ok += len(top)
        problem_n += len(expected)
    healthy = [r for r in results.values() if r["entry"]["label"] == HEALTHY]
    alarms = [r for r in healthy if r["alarms"]]
    print(f"\nproblem runs given the right kind (top finding): {problem_ok}/{problem_n} "
          f"= {problem_ok / max(1, problem_n):.0%}")
    print(f"healthy runs with a warning at any point of the replay: {len(alarms)}/{len(healthy)}")
    for r in alarms:
        print(f"   false alarm: {Path(r['entry']['path']).name}: {sorted(r['alarms'])}")
    wrong = [r for r in results.values() if r["entry"]["label"] != HEALTHY and
             (not r["final"] or r["final"][0].kind != r["entry"]["label"])]
    for r in wrong:
        print(f"   missed/wrong: {Path(r['entry']['path']).name}: label {r['entry']['label']}, "
              f"got {[f.kind + '/' + str(f.symptom) for f in r['final']]}")

    # detection delay
    print(f"\n{'scenario':16} {'runs':>4} {'detected':>8} {'delay steps':>12} {'of run':>7} {'evals late':>10}")
    by = defaultdict(list)
    for r in results.values():
        if r["entry"]["label"] != HEALTHY:
            by[r["entry"]["scenario"]].append(r)
    for name, rs in sorted(by.items()):
        delays, fracs, evl = [], [], []
        for r in rs:
            first = r["first"].get(r["entry"]["label"])
            if first is None:
                continue
            seen_step = first[0]
            d = max(0, seen_step - r["onset"])
            delays.append(d)
            fracs.append(d / max(1, r["last_step"]))
            if r["evals"]:
                evl.append(sum(1 for s in r["evals"] if r["onset"] < s <= seen_step))
        if delays:
            ev = f"{max(evl)}" if evl else "-"
            print(f"{name:16} {len(rs):4} {len(delays):8} {statistics.median(delays):12.0f} "
                  f"{statistics.median(fracs):7.0%} {ev:>10}")
        else:
            print(f"{name:16} {len(rs):4} {0:8}")

    # cost
    if a.records:
        ing, engc, eng = cost(a.records)
        print(f"\ncost on one run of {a.records:,} records (batches of 1,000, update() after each):")
        print(f"  ingest Store.apply_many   {ing * 1e6:8.2f} us/record")
        print(f"  engine Diagnoser.update() {engc * 1e6:8.2f} us/record   ratio engine/ingest {engc / ing:.2f}")
        print(f"  findings on that (healthy, synthetic) run: {len(eng.findings)}")


if __name__ == "__main__":
    main()
