"""The diagnosis engine against the labelled corpus, replayed as if live,
judged on families its thresholds were not chosen on.

    python bench/diagnosis.py [--corpus DIR] [--seeds 0,1,2] [--every 10] [--quick]
                              [--tune FIELD=V1,V2,...] [--no-tune] [--json OUT] [--records 1000000]

Generates the corpus (tui_monitor/scenarios: real tiny PyTorch runs, in
families) unless ``--corpus`` points at one. Each run's records are read once
and kept. A replay feeds one experiment (the runs that share data, interleaved
by progress as if they trained side by side) into a Store and a Diagnoser,
calling ``update()`` every ``--every`` records and at 25/50/75/100% of the
runs (the cuts), where each run's verdict is taken: its findings at warning
level or above, most urgent first.

Scores: a problem run gets the *right kind* when its top finding at 100% has
its label's kind; a healthy run raises a *false alarm* at a cut when it has a
finding at warning level or above there. Per kind, recall (problem runs of
that kind given it) and precision (runs given it that have it).

Leave-one-family-out: the thresholds named in
``tui_monitor.diagnose.settings.TUNABLE`` (field -> candidate values; absent,
only the defaults are scored; ``--tune`` adds or overrides candidates) are
chosen by coordinate descent from the defaults, maximising right kinds minus
false alarms (healthy runs with a warning at any cut) on every family but
one, and that family is scored with them: the *held-out* figure. Also shown:
the defaults, and the thresholds fitted on all families scored on all (the
*fitted* figure, optimistic by construction). The search replays with
``update()`` at the cuts only (``--tune-every`` to change that); held-out,
defaults and fitted scores use the live replay.

Also: the detection delay after the onset (defaults), and the engine's cost
per record on one synthetic run of ``--records`` records against the ingest
cost in the same run.
"""
from __future__ import annotations

import argparse
import bisect
import dataclasses
import json
import math
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tui_monitor.diagnose import KINDS, Diagnoser, Settings  # noqa: E402
from tui_monitor.diagnose import settings as settings_module  # noqa: E402
from tui_monitor.diagnose.findings import severity_rank  # noqa: E402
from tui_monitor.schema import split_metric  # noqa: E402
from tui_monitor.scenarios import FAMILIES, HEALTHY  # noqa: E402
from tui_monitor.scenarios.corpus import generate, load_manifest  # noqa: E402
from tui_monitor.store import Store  # noqa: E402

CUTS = (0.25, 0.5, 0.75, 1.0)
ENGINE_ERROR = "engine error"
Overrides = Tuple[Tuple[str, Any], ...]  # sorted (field, value) pairs that differ from the defaults


# ---------------------------------------------------------------- records

class Records:
    """Each stream's records, read once."""

    def __init__(self) -> None:
        self._cache: Dict[str, List[dict]] = {}

    def __call__(self, path: str) -> List[dict]:
        recs = self._cache.get(path)
        if recs is None:
            with open(path, "rb") as f:
                recs = self._cache[path] = [json.loads(line) for line in f if line.strip()]
        return recs


def onset_of(entry, records):
    """The step where the expected problem begins, and for a validation turn
    the steps of the evaluations: "start" is the first step; "non_finite"
    the first non-finite training loss; "val_turn" the first evaluation
    after the validation loss's final minimum that is 5% above it (a log of
    the validation accuracy alone: its badness, 1/accuracy)."""
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
        if not val:  # a log of the validation accuracy alone: its badness 1/accuracy turns up
            val = [(r["step"], 1.0 / r["values"]["accuracy"]) for r in records
                   if r["type"] == "metrics" and r.get("split") == "val" and r["values"].get("accuracy")]
        vals = [v for _, v in val]
        i = int(np.argmin(vals))
        for j in range(i + 1, len(val)):
            if vals[j] > 1.05 * vals[i]:
                return val[j][0], [s for s, _ in val]
        return val[-1][0], [s for s, _ in val]
    return first, None


def experiments(entries):
    """The entries grouped by experiment: runs that share data are replayed together."""
    groups = defaultdict(list)
    for e in entries:
        key = (e["group"], e["seed"]) if e["group"] else (e["scenario"], e["seed"], e["fold"])
        groups[key].append(e)
    return list(groups.values())


# ---------------------------------------------------------------- the replay

@dataclass
class RunResult:
    """What one run of a replay was told."""

    entry: Dict[str, Any]
    #: kinds of its findings at warning level or above at each cut, most urgent first
    at_cut: List[Tuple[str, ...]] = field(default_factory=list)
    #: kinds seen at warning level or above at any update
    alarms: Set[str] = field(default_factory=set)
    #: kind -> (the run's last step when first seen, the finding's step)
    first: Dict[str, Tuple[int, Optional[int]]] = field(default_factory=dict)
    final: list = field(default_factory=list)
    last_step: int = 0
    #: what the engine raised during the replay (it must not: scored as a miss, or a false alarm)
    error: Optional[str] = None

    @property
    def label(self) -> str:
        return self.entry["label"]

    @property
    def top(self) -> Optional[str]:
        return self.at_cut[-1][0] if self.at_cut and self.at_cut[-1] else None

    @property
    def right(self) -> bool:
        return self.top == self.label

    def alarm_at(self, i: int) -> bool:
        return bool(self.at_cut[i])


def replay(entries, records: Records, settings: Optional[Settings] = None, every: int = 1) -> Dict[str, RunResult]:
    """Replay one experiment's runs interleaved by progress; ``every``: records
    between updates (0: at the cuts only)."""
    return replay_many(entries, records, [settings or Settings()], every)[0]


def replay_many(entries, records: Records, settings: Sequence[Settings], every: int = 1
                ) -> List[Dict[str, RunResult]]:
    """:func:`replay` under several settings at once: one store, one engine
    per setting (the engine only reads the store, so the records are taken in
    once)."""
    recs = {e["path"]: records(e["path"]) for e in entries}
    order = sorted(((i + 1) / len(rs), p, i) for p, rs in recs.items() for i in range(len(rs)))
    fracs = [o[0] for o in order]
    stops: Dict[int, List[int]] = defaultdict(list)  # position -> the cuts taken there (none: a plain update)
    if every:
        for k in range(every, len(order) + 1, every):
            stops.setdefault(k, [])
    for c, cut in enumerate(CUTS):
        stops[bisect.bisect_right(fracs, cut + 1e-12)].append(c)
    store = Store(splitter=split_metric)
    engines = [Diagnoser(store, settings=s) for s in settings]
    key_of: Dict[Any, str] = {}
    outs = [{e["path"]: RunResult(e) for e in entries} for _ in settings]
    last_step: Dict[str, int] = defaultdict(int)
    start = 0
    for stop in sorted(stops):
        pending: Dict[str, List[dict]] = defaultdict(list)
        for _, p, i in order[start:stop]:
            pending[p].append(recs[p][i])
        for p, batch in pending.items():
            for key in store.apply_many(batch, stream=p):
                key_of[key] = p
            steps = [r["step"] for r in batch if isinstance(r.get("step"), int)]
            if steps:
                last_step[p] = max(last_step[p], max(steps))
        start = stop
        for eng, out in zip(engines, outs):
            eng.update()
            now: Dict[str, list] = defaultdict(list)
            for f in eng.findings:
                p = key_of.get(tuple(f.runs[0]))
                if p is not None and severity_rank(f.severity) >= 1:
                    now[p].append(f)
                    out[p].alarms.add(f.kind)
                    out[p].first.setdefault(f.kind, (last_step[p], f.step))
            for _ in stops[stop]:
                for p, r in out.items():
                    r.at_cut.append(tuple(f.kind for f in now.get(p, [])))
                    r.final = now.get(p, [])
    for out in outs:
        for p, r in out.items():
            r.last_step = last_step[p]
    return outs


# ---------------------------------------------------------------- scores

@dataclass
class Score:
    right: int = 0
    problems: int = 0
    healthy: int = 0
    #: healthy runs with a warning at each cut, and at any cut
    alarms_at: List[int] = field(default_factory=lambda: [0] * len(CUTS))
    alarms_any: int = 0

    @property
    def objective(self) -> int:
        return self.right - self.alarms_any


def score(results: Iterable[RunResult]) -> Score:
    s = Score()
    for r in results:
        if r.label == HEALTHY:
            s.healthy += 1
            flags = [r.alarm_at(i) for i in range(len(CUTS))]
            s.alarms_at = [a + f for a, f in zip(s.alarms_at, flags)]
            s.alarms_any += any(flags)
        else:
            s.problems += 1
            s.right += r.right
    return s


def per_kind(results: Sequence[RunResult]) -> Dict[str, Tuple[int, int, int]]:
    """kind -> (runs labelled so, of them given it as top finding, runs given it as top finding)."""
    out = {}
    for k in KINDS:
        expected = [r for r in results if r.label == k]
        given = [r for r in results if r.top == k]
        if expected or given:
            out[k] = (len(expected), sum(r.right for r in expected), len(given))
    return out


def _ratio(a: int, b: int) -> str:
    return f"{a / b:.0%}" if b else "-"


# ---------------------------------------------------------------- choosing thresholds

def tunable(extra: Sequence[str] = ()) -> Dict[str, Tuple[Any, ...]]:
    """The candidates: ``settings.TUNABLE`` (if the engine has one) and ``--tune FIELD=V1,V2``."""
    out = dict(getattr(settings_module, "TUNABLE", {}) or {})
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    for item in extra:
        name, _, values = item.partition("=")
        if name not in fields:
            raise SystemExit(f"--tune: Settings has no field {name!r}")
        cast = type(getattr(Settings(), name))
        out[name] = tuple(cast(v) for v in values.split(","))
    return {k: tuple(v) for k, v in out.items()}


def settings_of(overrides: Overrides) -> Settings:
    return dataclasses.replace(Settings(), **dict(overrides))


class Evaluator:
    """Replays each family under a setting once (memoised: the search asks
    for the same settings for many held-out families); several settings are
    replayed together, one ingest for all."""

    def __init__(self, by_family: Dict[str, list], records: Records, every: int):
        self.by_family, self.records, self.every = by_family, records, every
        self.memo: Dict[Tuple[Overrides, str], List[RunResult]] = {}
        self.replays = 0

    def prepare(self, many: Sequence[Overrides], families: Iterable[str]) -> None:
        for family in families:
            todo = list(dict.fromkeys(o for o in many if (o, family) not in self.memo))
            if not todo:
                continue
            got: List[List[RunResult]] = [[] for _ in todo]
            for exp in self.by_family[family]:
                try:
                    per_setting = replay_many(exp, self.records, [settings_of(o) for o in todo], self.every)
                except Exception as e:  # noqa: BLE001 - the engine must never raise: a miss (or an alarm), said
                    per_setting = [{x["path"]: RunResult(x, at_cut=[(ENGINE_ERROR,)] * len(CUTS), error=repr(e))
                                    for x in exp} for _ in todo]
                for acc, res in zip(got, per_setting):
                    acc.extend(res.values())
            for o, acc in zip(todo, got):
                self.memo[(o, family)] = acc
            self.replays += len(todo)

    def results(self, overrides: Overrides, family: str) -> List[RunResult]:
        self.prepare([overrides], [family])
        return self.memo[(overrides, family)]

    def objective(self, overrides: Overrides, families: Iterable[str]) -> int:
        return score(r for f in families for r in self.results(overrides, f)).objective


def descend(ev: Evaluator, families: Sequence[str], candidates: Dict[str, Tuple[Any, ...]],
            passes: int = 2) -> Overrides:
    """Coordinate descent from the defaults: each field in turn takes the
    candidate that maximises the objective on ``families`` (ties keep the
    current value); stops when a pass changes nothing."""
    defaults = Settings()
    current: Dict[str, Any] = {}
    best = ev.objective((), families)
    def key(trial: Dict[str, Any]) -> Overrides:
        return tuple(sorted((k, x) for k, x in trial.items() if x != getattr(defaults, k)))

    for _ in range(passes):
        moved = False
        for name, values in candidates.items():
            trials = [{**current, name: v} for v in values]
            ev.prepare([key(t) for t in trials], families)  # all of a field's candidates in one replay
            for trial in trials:
                obj = ev.objective(key(trial), families)
                if obj > best:
                    best, current, moved = obj, trial, True
        if not moved:
            break
    return key(current)


# ---------------------------------------------------------------- cost

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


# ---------------------------------------------------------------- the report

def print_kinds(columns: Dict[str, List[RunResult]]) -> None:
    names = list(columns)
    print(f"{'kind':14} {'runs':>4}  " + "  ".join(f"{n + ' recall':>16} {'precision':>9}" for n in names))
    tables = {n: per_kind(rs) for n, rs in columns.items()}
    kinds = [k for k in KINDS if any(k in t for t in tables.values())]
    for k in kinds:
        runs = next(t[k][0] for t in tables.values() if k in t)
        cells = []
        for n in names:
            exp, right, given = tables[n].get(k, (0, 0, 0))
            cells.append(f"{_ratio(right, exp):>16} {_ratio(right, given):>9}")
        print(f"{k:14} {runs:4}  " + "  ".join(cells))


def print_alarms(columns: Dict[str, List[RunResult]]) -> None:
    cuts = " ".join(f"{int(c * 100):>3}%" for c in CUTS)
    print(f"{'':10} {'healthy':>7}  false alarms at {cuts}   any cut")
    for n, rs in columns.items():
        s = score(rs)
        print(f"{n:10} {s.healthy:7}  {'':16}" + " ".join(f"{a:4}" for a in s.alarms_at) + f"   {s.alarms_any:7}")


def print_delays(results: Sequence[RunResult], records: Records) -> None:
    print(f"{'scenario':18} {'runs':>4} {'detected':>8} {'delay steps':>12} {'of run':>7} {'evals late':>10}")
    by = defaultdict(list)
    for r in results:
        if r.label != HEALTHY:
            by[r.entry["scenario"]].append(r)
    for name, rs in sorted(by.items()):
        delays, fracs, late = [], [], []
        for r in rs:
            first = r.first.get(r.label)
            if first is None:
                continue
            onset, evals = onset_of(r.entry, records(r.entry["path"]))
            d = max(0, first[0] - onset)
            delays.append(d)
            fracs.append(d / max(1, r.last_step))
            if evals:
                late.append(sum(1 for s in evals if onset < s <= first[0]))
        if delays:
            ev = f"{max(late)}" if late else "-"
            print(f"{name:18} {len(rs):4} {len(delays):8} {statistics.median(delays):12.0f} "
                  f"{statistics.median(fracs):7.0%} {ev:>10}")
        else:
            print(f"{name:18} {len(rs):4} {0:8}")


def _summary(rs: Sequence[RunResult]) -> Dict[str, Any]:
    s = score(rs)
    return {"right": s.right, "problems": s.problems, "healthy": s.healthy, "alarms_at": s.alarms_at,
            "alarms_any": s.alarms_any,
            "kinds": {k: {"runs": e, "right": r, "given": g} for k, (e, r, g) in per_kind(rs).items()}}


def main(argv=None) -> Dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--corpus", help="a generated corpus (default: generate one in a temporary directory)")
    ap.add_argument("--seeds", default="0,1,2", help="seeds to generate (default 0,1,2)")
    ap.add_argument("--families", help="only these families (comma-separated)")
    ap.add_argument("--every", type=int, default=10, help="records between update() calls (default 10)")
    ap.add_argument("--tune-every", type=int, default=0,
                    help="records between update() calls while choosing thresholds (default 0: at the cuts only)")
    ap.add_argument("--tune", action="append", default=[], metavar="FIELD=V1,V2",
                    help="candidate values for a Settings field (added to settings.TUNABLE)")
    ap.add_argument("--no-tune", action="store_true", help="score the defaults only")
    ap.add_argument("--passes", type=int, default=2, help="coordinate-descent passes (default 2)")
    ap.add_argument("--quick", action="store_true",
                    help="seed 0 only, update() every 50 records, one descent pass, no cost run")
    ap.add_argument("--records", type=int, default=1_000_000, help="size of the synthetic run for the cost")
    ap.add_argument("--json", metavar="OUT", help="also write the scores as JSON")
    a = ap.parse_args(argv)
    if a.quick:
        a.seeds, a.every, a.passes, a.records = "0", 50, 1, 0
    t_all = time.perf_counter()
    if a.corpus and (Path(a.corpus) / "corpus.json").exists():
        corpus = Path(a.corpus)
    else:
        corpus = Path(a.corpus) if a.corpus else Path(tempfile.mkdtemp(prefix="tm-corpus-"))
        t0 = time.perf_counter()
        generate(corpus, seeds=[int(x) for x in a.seeds.split(",")],
                 families=a.families.split(",") if a.families else None)
        print(f"corpus generated in {time.perf_counter() - t0:.1f} s: {corpus}")
    entries = load_manifest(corpus)
    seeds = {int(x) for x in a.seeds.split(",")}
    entries = [e for e in entries if e["seed"] in seeds]
    if a.families:
        entries = [e for e in entries if e["family"] in set(a.families.split(","))]
    records = Records()
    by_family: Dict[str, list] = defaultdict(list)
    for exp in experiments(entries):
        by_family[exp[0]["family"]].append(exp)
    families = [f for f in FAMILIES if f in by_family] + sorted(set(by_family) - set(FAMILIES))
    n_healthy = sum(1 for e in entries if e["label"] == HEALTHY)
    print(f"corpus: {len(entries)} runs ({len(entries) - n_healthy} problem, {n_healthy} healthy) in "
          f"{len(families)} families, seeds {','.join(map(str, sorted(seeds)))}\n")

    live = Evaluator(by_family, records, a.every)
    t0 = time.perf_counter()
    defaults = [r for f in families for r in live.results((), f)]
    t_replay = time.perf_counter() - t0
    print(f"live replay of the corpus (update() every {a.every} records and at the cuts): {t_replay:.1f} s\n")

    candidates = {} if a.no_tune else tunable(a.tune)
    chosen: Dict[str, Overrides] = {}
    heldout: List[RunResult] = []
    fitted: List[RunResult] = []
    if candidates:
        search = Evaluator(by_family, records, a.tune_every)
        t0 = time.perf_counter()
        for f in families:
            chosen[f] = descend(search, [g for g in families if g != f], candidates, a.passes)
            heldout.extend(live.results(chosen[f], f))
        everywhere = descend(search, families, candidates, a.passes)
        fitted = [r for f in families for r in live.results(everywhere, f)]
        print(f"thresholds chosen among {sum(len(v) for v in candidates.values())} candidates of "
              f"{len(candidates)} fields ({', '.join(candidates)}): {search.replays} family replays at the "
              f"cuts, {time.perf_counter() - t0:.1f} s\n")
    else:
        heldout, everywhere = defaults, ()
        print("no TUNABLE thresholds (tui_monitor.diagnose.settings.TUNABLE, --tune): the defaults are scored; "
              "held-out = defaults\n")

    columns = {"held-out": heldout, "defaults": defaults}
    if candidates:
        columns["fitted"] = fitted
    print_kinds(columns)
    print()
    print_alarms(columns)
    hs = score(heldout)
    print(f"\nheld-out: problem runs given the right kind {hs.right}/{hs.problems} = {_ratio(hs.right, hs.problems)}; "
          f"healthy runs with a warning at any cut {hs.alarms_any}/{hs.healthy}")

    print(f"\n{'family':15} {'problem':>7} {'right held-out':>14} {'defaults':>8} {'fitted':>6}  {'healthy':>7} "
          f"{'alarms held-out':>15} {'defaults':>8}  thresholds chosen without it")
    per_family: Dict[str, Any] = {}
    for f in families:
        ho = [r for r in heldout if r.entry["family"] == f]
        de = [r for r in defaults if r.entry["family"] == f]
        fi = [r for r in fitted if r.entry["family"] == f]
        sh, sd, sf = score(ho), score(de), score(fi)
        diff = ", ".join(f"{k}={v}" for k, v in chosen.get(f, ())) or "defaults"
        print(f"{f:15} {sh.problems:7} {sh.right:14} {sd.right:8} {sf.right if fi else '-':>6}  {sh.healthy:7} "
              f"{sh.alarms_any:15} {sd.alarms_any:8}  {diff}")
        per_family[f] = {"heldout": _summary(ho), "defaults": _summary(de), "fitted": _summary(fi) if fi else None,
                         "chosen": dict(chosen.get(f, ()))}
    if candidates:
        print(f"fitted on all families: {', '.join(f'{k}={v}' for k, v in everywhere) or 'defaults'}")

    wrong = [r for r in heldout if r.label != HEALTHY and not r.right]
    noisy = [r for r in heldout if r.label == HEALTHY and any(r.at_cut)]
    if wrong or noisy:
        print("\nheld-out misses and false alarms (kinds at 25/50/75/100%):")
    for r in wrong + noisy:
        e = r.entry
        print(f"   {e['family']:13} {e['scenario']:18} s{e['seed']} {e['run_name']}: label {e['label']}, "
              f"got {' | '.join(','.join(k) or '-' for k in r.at_cut)}" + (f": {r.error}" if r.error else ""))

    print("\ndetection delay after the onset (defaults, live):")
    print_delays(defaults, records)

    out: Dict[str, Any] = {"runs": len(entries), "families": per_family, "cuts": list(CUTS), "every": a.every,
                           "heldout": _summary(heldout), "defaults": _summary(defaults),
                           "fitted": _summary(fitted) if fitted else None,
                           "tunable": {k: list(v) for k, v in candidates.items()},
                           "fitted_thresholds": dict(everywhere), "replay_seconds": round(t_replay, 2)}
    if a.records:
        ing, engc, eng = cost(a.records)
        print(f"\ncost on one run of {a.records:,} records (batches of 1,000, update() after each):")
        print(f"  ingest Store.apply_many   {ing * 1e6:8.2f} us/record")
        print(f"  engine Diagnoser.update() {engc * 1e6:8.2f} us/record   ratio engine/ingest {engc / ing:.2f}")
        print(f"  findings on that (healthy, synthetic) run: {len(eng.findings)}")
        out["cost"] = {"ingest_us": ing * 1e6, "engine_us": engc * 1e6}
    print(f"\ntotal {time.perf_counter() - t_all:.1f} s")
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1, default=str))
    return out


if __name__ == "__main__":
    main()
