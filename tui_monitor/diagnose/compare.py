"""Across runs: runs of the same data ranked by flexibility (model bias vs
optimization, section 1 of the method) and N-fold cross-validation summaries
(section 3)."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

from .reference import data_key, is_baseline, more_flexible
from .settings import Settings

__all__ = ["cross_evidence", "CVSummary", "cv_summaries", "groups"]

#: a less flexible run that reaches lower must beat this ratio to be cited (model bias needs a clear gain)
BIAS_RATIO = 1.5


def groups(states) -> Dict[str, List[Any]]:
    """Run states by data key (runs without one share a group)."""
    out: Dict[str, List[Any]] = {}
    for st in states:
        out.setdefault(data_key(st.run), []).append(st)
    return out


def _comparable(st, s: Settings) -> bool:
    return st.assessment is not None and st.assessment.get("level") is not None and \
        st.train.n_finite >= s.patience and st.train.first_nonfinite is None


def _scale(x, y) -> float:
    for v in (x.task.trivial, y.task.trivial):
        if v:
            return abs(v)
    inits = [abs(v) for v in (x.train.initial, y.train.initial) if v is not None]
    return max(inits) if inits else 0.0


def cross_evidence(group: List[Any], s: Settings, baseline: Optional[str]) -> Dict[Any, Dict[str, Any]]:
    """Per run key: ``lower_simpler`` = (less flexible run, its level) when
    this run is more flexible yet higher (optimization), ``lower_bigger`` =
    (more flexible run, its level) when that one is clearly lower (model
    bias). The baseline, when marked, is cited first."""
    out: Dict[Any, Dict[str, Any]] = {st.run.key: {} for st in group}
    ok = [st for st in group if _comparable(st, s)]
    if len(ok) < 2:
        return out
    ok.sort(key=lambda st: (not is_baseline(st.run, baseline)))
    for x in ok:
        ax = x.assessment
        lx = ax["level"]
        for y in ok:
            if y is x:
                continue
            ly = y.assessment["level"]
            scale = _scale(x, y)
            base_y = is_baseline(y.run, baseline)
            simpler = more_flexible(x.run, y.run) or (base_y and not more_flexible(y.run, x.run))
            if simpler and "lower_simpler" not in out[x.run.key]:
                if lx > ly * s.cross_ratio and lx - ly >= s.cross_gap * scale:
                    out[x.run.key]["lower_simpler"] = (y.run, ly)
            if more_flexible(y.run, x.run) and "lower_bigger" not in out[x.run.key]:
                if lx > ly * BIAS_RATIO and lx - ly >= s.cross_gap * scale:
                    out[x.run.key]["lower_bigger"] = (y.run, ly)
    return out


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
