"""Across runs: runs of the same data ranked by flexibility (model bias vs
optimization, section 1 of the method) and N-fold cross-validation summaries
(section 3)."""
from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from .reference import data_key, flexibility, is_baseline
from .settings import Settings

__all__ = ["cross_evidence", "cross_update", "cross_key", "cross_run", "CrossEvidence", "Comparison", "NO_CROSS", "CVSummary", "cv_summaries"]

#: a less flexible run that reaches lower must beat this ratio to be cited (model bias needs a clear gain)
BIAS_RATIO = 1.5


@dataclass(frozen=True)
class Comparison:
    """Another run of the same data a run is compared with, and its level."""

    run: Any
    level: float


@dataclass(frozen=True)
class CrossEvidence:
    """What the other runs of the same data say about one run (see
    :func:`cross_evidence`)."""

    #: a less flexible run that got lower: optimization
    lower_simpler: Optional[Comparison] = None
    #: a more flexible run that got clearly lower: model bias
    lower_bigger: Optional[Comparison] = None

    def signature(self):
        """The runs cited: when they change, the run's verdicts are redone."""
        return tuple(c.run.key if c is not None else None for c in (self.lower_simpler, self.lower_bigger))


NO_CROSS = CrossEvidence()


def _comparable(st, s: Settings) -> bool:
    """A run is compared once its level stands on a window's worth of points
    (``patience`` for a per-step loss, a few epochs for a per-epoch log) and
    it has no non-finite loss."""
    a = st.assessment
    return a is not None and a.level is not None and a.points >= a.window_points and \
        st.train.first_nonfinite is None


def cross_key(st, s: Settings, baseline: Optional[str]) -> tuple:
    """What the comparison reads of a run, with its level rounded to 2% (in
    log space): a group is compared again only when a member's key moves,
    not on every new point of a run that trains."""
    a = st.assessment
    if not _comparable(st, s):
        return (False,)
    lv = a.level
    rounded = round(math.log(lv) / math.log(1.02)) if lv > 0 else lv
    return (True, rounded, flexibility(st.run), is_baseline(st.run, baseline), a.initial, st.task.trivial)


class _Run(NamedTuple):
    """What the comparison reads of one run, computed once per call."""

    st: Any
    key: Any
    level: float
    params: float  # NaN when unknown
    depth: float  # NaN when unknown
    trivial: Optional[float]
    initial: Optional[float]
    baseline: bool


def _scale(x: _Run, y: _Run) -> float:
    """The common scale two levels are compared on: the trivial loss, else
    the larger start."""
    for v in (x.trivial, y.trivial):
        if v:
            return abs(v)
    inits = [abs(v) for v in (x.initial, y.initial) if v is not None]
    return max(inits) if inits else 0.0


class _PrefixMin:
    """Fenwick tree of running minima: ``add(i, item)``, ``query(i)`` = the
    smallest item at positions 0..i. O(log n) each."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.t: List[Tuple[float, int]] = [(math.inf, -1)] * (n + 1)

    def add(self, i: int, item: Tuple[float, int]) -> None:
        i += 1
        while i <= self.n:
            if item < self.t[i]:
                self.t[i] = item
            i += i & -i

    def query(self, i: int) -> Tuple[float, int]:
        best = (math.inf, -1)
        i += 1
        while i > 0:
            if self.t[i] < best:
                best = self.t[i]
            i -= i & -i
        return best


def _dominated_minima(runs: List[_Run], bigger: bool) -> List[Tuple[float, int]]:
    """For each run x, the lowest-level run y (``(level, index)``, or
    ``(inf, -1)``) with ``more_flexible(x, y)`` (``bigger=False``: y less
    flexible) or ``more_flexible(y, x)`` (``bigger=True``), by the rule of
    :func:`~.reference.more_flexible`, in O(n log n):

    * both parameter counts known: at least 20% more parameters and no
      shallower (depth unknown on either side: parameters alone);
    * otherwise, both depths known: strictly deeper.
    """
    n = len(runs)
    best: List[Tuple[float, int]] = [(math.inf, -1)] * n
    sign = -1.0 if bigger else 1.0  # "bigger" is the mirror image: negate sizes
    known = [i for i, r in enumerate(runs) if not math.isnan(r.params)]
    # 1) parameters known on both sides: sweep by size, a Fenwick tree over depth ranks
    depths = sorted({sign * runs[i].depth for i in known if not math.isnan(runs[i].depth)})
    rank = {d: k for k, d in enumerate(depths)}
    tree = _PrefixMin(len(depths))
    no_depth = (math.inf, -1)  # the lowest y whose depth is unknown
    any_y = (math.inf, -1)  # the lowest y of all inserted
    order = sorted(known, key=lambda i: sign * runs[i].params)
    j = 0
    for i in order:
        x = runs[i]
        # y qualifies on size when x has at least 1.2x its parameters (mirrored for "bigger")
        while j < len(order):
            y = runs[order[j]]
            ok = x.params >= 1.2 * y.params if not bigger else y.params >= 1.2 * x.params
            if not ok:
                break
            item = (y.level, order[j])
            if math.isnan(y.depth):
                no_depth = min(no_depth, item)
            else:
                tree.add(rank[sign * y.depth], item)
            any_y = min(any_y, item)
            j += 1
        if math.isnan(x.depth):
            cand = any_y
        else:
            # depth ranks at or below x's (mirrored: at or above)
            k = bisect.bisect_right(depths, sign * x.depth) - 1
            cand = min(tree.query(k) if k >= 0 else (math.inf, -1), no_depth)
        best[i] = min(best[i], cand)
    # 2) otherwise by depth alone: strictly deeper, where either side has no parameter count
    with_depth = sorted((i for i, r in enumerate(runs) if not math.isnan(r.depth)), key=lambda i: sign * runs[i].depth)
    lo_all = lo_unknown = (math.inf, -1)
    k = 0
    while k < len(with_depth):
        e = k
        while e < len(with_depth) and runs[with_depth[e]].depth == runs[with_depth[k]].depth:
            e += 1
        for i in with_depth[k:e]:  # the y strictly shallower (mirrored: deeper) than this depth
            cand = lo_unknown if not math.isnan(runs[i].params) else lo_all
            best[i] = min(best[i], cand)
        for i in with_depth[k:e]:
            item = (runs[i].level, i)
            lo_all = min(lo_all, item)
            if math.isnan(runs[i].params):
                lo_unknown = min(lo_unknown, item)
        k = e
    return best


def cross_evidence(group: List[Any], s: Settings, baseline: Optional[str],
                   prev: Optional[Dict[Any, CrossEvidence]] = None) -> Dict[Any, CrossEvidence]:
    """Per run key, its :class:`CrossEvidence`: ``lower_simpler`` when this
    run is more flexible yet higher than a less flexible run (optimization),
    ``lower_bigger`` when a more flexible run is clearly lower (model bias).
    The baseline, when marked, is cited first (it counts as the less
    flexible run unless its header says it is more flexible); then the run
    cited last time (``prev``) while it still qualifies, so one run that
    moves does not change what every other run cites; otherwise the lowest
    such run. Runs are sorted by flexibility once, so a group of n runs
    costs O(n log n), not a comparison of every pair."""
    out: Dict[Any, CrossEvidence] = {st.run.key: NO_CROSS for st in group}
    runs = _runs_of(group, s, baseline)
    if len(runs) < 2:
        return out
    lower = _dominated_minima(runs, bigger=False)
    higher = _dominated_minima(runs, bigger=True)
    bases = [i for i, r in enumerate(runs) if r.baseline]
    index = {r.key: i for i, r in enumerate(runs)}
    prev = prev or {}
    for i, x in enumerate(runs):
        simpler = bigger = None
        for b in bases:  # the baseline first: it counts as less flexible unless it is more
            y = runs[b]
            if b != i and not _more(y, x) and _lower(x, y, s.cross_ratio, s):
                simpler = Comparison(y.st.run, y.level)
                break
        was = prev.get(x.key, NO_CROSS)
        if simpler is None:
            j = _still(was.lower_simpler, index, i)
            if j is None or not (_more(x, runs[j]) and _lower(x, runs[j], s.cross_ratio, s)):
                j = lower[i][1]
            if j not in (-1, i) and _lower(x, runs[j], s.cross_ratio, s):
                simpler = Comparison(runs[j].st.run, runs[j].level)
        j = _still(was.lower_bigger, index, i)
        if j is None or not (_more(runs[j], x) and _lower(x, runs[j], BIAS_RATIO, s)):
            j = higher[i][1]
        if j not in (-1, i) and _lower(x, runs[j], BIAS_RATIO, s):
            bigger = Comparison(runs[j].st.run, runs[j].level)
        if simpler is not None or bigger is not None:
            out[x.key] = CrossEvidence(simpler, bigger)
    return out


def cross_run(st, ck: tuple) -> Optional[_Run]:
    """What the comparison reads of a run whose :func:`cross_key` is ``ck``
    (None when it is not compared). The engine keeps it on the run's state
    while the key holds."""
    if not ck[0]:
        return None
    p, d = ck[2]
    return _Run(st, st.run.key, st.assessment.level, p, d, st.task.trivial, st.assessment.initial, ck[3])


def _runs_of(group, s: Settings, baseline: Optional[str]) -> List[_Run]:
    runs = []
    for st in (group.values() if isinstance(group, dict) else group):
        r = getattr(st, "cross_run", False)
        if r is False:  # not an engine state: read it now
            r = cross_run(st, cross_key(st, s, baseline))
        if r is not None:
            runs.append(r)
    return runs


def _qualifies(x: _Run, y: _Run, s: Settings, bigger: bool) -> bool:
    """Whether y may be cited for x: less flexible (or a baseline that is not
    more flexible) and lower by ``cross_ratio``; or (``bigger``) more
    flexible and lower by ``BIAS_RATIO``."""
    if y.key == x.key:
        return False
    if bigger:
        return _more(y, x) and _lower(x, y, BIAS_RATIO, s)
    return (_more(x, y) or (y.baseline and not _more(y, x))) and _lower(x, y, s.cross_ratio, s)


def _scan(x: _Run, runs: List[_Run], s: Settings) -> CrossEvidence:
    """One run against every other (O(n)): the baseline first, else the
    lowest qualifying run, for each kind of citation."""
    simpler = bigger = None
    for y in runs:
        if _qualifies(x, y, s, False):
            if simpler is None or (y.baseline, -y.level) > (simpler.baseline, -simpler.level):
                simpler = y
        if _qualifies(x, y, s, True) and (bigger is None or y.level < bigger.level):
            bigger = y
    if simpler is None and bigger is None:
        return NO_CROSS
    return CrossEvidence(Comparison(simpler.st.run, simpler.level) if simpler else None,
                         Comparison(bigger.st.run, bigger.level) if bigger else None)


def cross_update(group, moved: set, s: Settings, baseline: Optional[str],
                 old: Dict[Any, CrossEvidence], limit: int = 16) -> Optional[Dict[Any, CrossEvidence]]:
    """:func:`cross_evidence` again after the runs ``moved`` (keys; runs
    gone from the group count too) changed, from its previous result
    ``old``, in O(n x moved) (``group``: the states, or a dict of them by
    run key): a run that did not move keeps its citation
    unless it cites a moved run that no longer qualifies, and gains a moved
    run that now qualifies where it had none (a baseline before any other).
    The moved runs, and those that lost a citation, are compared with every
    run. None when more than ``limit`` runs need that: the caller compares
    the whole group instead."""
    runs = _runs_of(group, s, baseline)
    by_key = {r.key: r for r in runs}
    mv = [by_key[k] for k in moved if k in by_key]
    out: Dict[Any, CrossEvidence] = {}
    redo = list(mv)
    for key in (group.keys() if isinstance(group, dict) else [st.run.key for st in group]):
        x = by_key.get(key)
        was = old.get(key, NO_CROSS)
        if x is None or key in moved:
            out[key] = NO_CROSS
            continue
        ls, lb = was.lower_simpler, was.lower_bigger
        lost = False
        if ls is not None and ls.run.key in moved:
            y = by_key.get(ls.run.key)
            lost = y is None or not _qualifies(x, y, s, False)
        if not lost and lb is not None and lb.run.key in moved:
            y = by_key.get(lb.run.key)
            lost = y is None or not _qualifies(x, y, s, True)
        if lost:
            redo.append(x)
            if len(redo) > limit:
                return None
            continue
        new = was
        for m in mv:
            simpler_base = ls is not None and ls.run.key in by_key and by_key[ls.run.key].baseline
            if (ls is None or (m.baseline and not simpler_base)) and _qualifies(x, m, s, False):
                ls = Comparison(m.st.run, m.level)
                new = None
            if lb is None and _qualifies(x, m, s, True):
                lb = Comparison(m.st.run, m.level)
                new = None
        out[key] = new if new is not None else CrossEvidence(ls, lb)
    for x in redo:
        out[x.key] = _scan(x, runs, s)
    return out


def _more(a: _Run, b: _Run) -> bool:
    """:func:`~.reference.more_flexible` on the numbers already read."""
    pa, da, pb, db = a.params, a.depth, b.params, b.depth
    if pa == pa and pb == pb:  # both known (NaN != NaN)
        return pa >= 1.2 * pb and (da != da or db != db or da >= db)
    if da == da and db == db:
        return da > db
    return False


def _still(c: Optional[Comparison], index: Dict[Any, int], i: int) -> Optional[int]:
    """The index of a run cited before, if it is still in the group."""
    if c is None:
        return None
    j = index.get(c.run.key)
    return None if j is None or j == i else j


def _lower(x: _Run, y: _Run, ratio: float, s: Settings) -> bool:
    """y's level is below x's by ``ratio`` and by ``cross_gap`` of their scale."""
    return x.level > y.level * ratio and x.level - y.level >= s.cross_gap * _scale(x, y)


@dataclass
class CVSummary:
    """N-fold cross-validation: the folds of one experiment (runs tagged
    ``group`` and ``fold``), summarised by the mean and standard deviation of
    their best validation losses; ``rank`` orders groups of the same data by
    that mean (1 = best)."""

    group: str
    data: str
    folds: List[Dict[str, Any]]
    n: int
    mean: Optional[float]
    std: Optional[float]
    complete: bool
    rank: Optional[int] = None
    metric: str = "val loss (best per fold)"
    extra: Dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> Dict[str, Any]:
        from dataclasses import asdict

        from .findings import _jsonable

        return _jsonable(asdict(self))

    def text(self) -> str:
        if self.mean is None:
            return f"{self.group}: {self.n} folds, no validation loss yet"
        pm = f" ± {self.std:.4g}" if self.std is not None else ""
        state = "" if self.complete else " (some folds still running)"
        rank = f" [rank {self.rank} on {self.data}]" if self.rank is not None else ""
        return f"{self.group}: {self.metric} {self.mean:.4g}{pm} over {self.n} folds{state}{rank}"


def cv_summaries(states) -> List[CVSummary]:
    by_group: Dict[str, List[Any]] = {}
    for st in states:
        tags = st.run.tags or {}
        if "fold" in tags and tags.get("group") is not None:
            by_group.setdefault(str(tags["group"]), []).append(st)
    out = []
    for g, members in by_group.items():
        folds = []
        for st in sorted(members, key=lambda st: str(st.run.tags.get("fold"))):
            v = st.val if st.val is not None and len(st.val) else None
            best = v.best if v is not None and math.isfinite(v.best) else None
            folds.append({"fold": st.run.tags.get("fold"), "run": st.run.name, "run_id": st.run.run_id,
                          "best": best, "best_step": v.best_step if v is not None else None,
                          "status": st.run.status})
        vals = [f["best"] for f in folds if f["best"] is not None]
        mean = float(np.mean(vals)) if vals else None
        std = float(np.std(vals, ddof=1)) if len(vals) > 1 else None
        complete = all(f["status"] in ("finished", "stopped") for f in folds)  # stopped: not running, long ago
        out.append(CVSummary(g, data_key(members[0].run), folds, len(folds), mean, std, complete))
    by_data: Dict[str, List[CVSummary]] = {}
    for c in out:
        if c.mean is not None:
            by_data.setdefault(c.data, []).append(c)
    for cs in by_data.values():
        for i, c in enumerate(sorted(cs, key=lambda c: c.mean)):
            c.rank = i + 1
    return sorted(out, key=lambda c: (c.data, c.mean if c.mean is not None else math.inf))
