"""Orders of the runs panel: by any of its columns. Pure: no Textual.

Each column has a sort key read straight from the run (no cell is built):
names and statuses as text, steps and losses as numbers, the finding by
severity (worst first). Runs without a value go last, whichever way.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Optional, Sequence

from .findings import severity_rank

__all__ = ["SORT_COLUMNS", "sort_runs", "sort_value"]

#: Columns the runs can be sorted by, in the order ``o`` steps through them.
SORT_COLUMNS = ("name", "status", "step", "train", "val", "best", "params", "base", "finding")

_STATUS_ORDER = {"crashed": 0, "silent": 1, "interrupted": 2, "running": 3, "stopped": 4, "finished": 5}


def _last(series: Any) -> Optional[float]:
    if series is None or not len(series):
        return None
    v = float(series.last()[1])
    return v if not math.isnan(v) else math.inf


def _best(run: Any) -> Optional[float]:
    val = run.get("loss", "val")
    best = val.min() if val is not None and len(val) else None
    return float(best[0]) if best is not None else None


def _params(run: Any) -> Optional[float]:
    model = run.model if isinstance(run.model, dict) else {}
    p = model.get("trainable_params") or model.get("params")
    return float(p) if isinstance(p, (int, float)) and not isinstance(p, bool) else None


def sort_value(run: Any, column: str, *, baseline: Any = None, worst: Optional[Dict[Any, Any]] = None,
               now: float = 0.0, silent_after: float = 30.0) -> Any:
    """The value ``run`` is sorted by in ``column`` (None: it has none)."""
    if column == "name":
        return run.name[:200].lower()
    if column == "status":
        st = run.status_at(now, silent_after) if hasattr(run, "status_at") else run.status
        return _STATUS_ORDER.get(st, 5)
    if column == "step":
        return run.last_step
    if column == "train":
        return _last(run.get("loss", "train"))
    if column == "val":
        return _last(run.get("loss", "val"))
    if column == "best":
        return _best(run)
    if column == "params":
        return _params(run)
    if column == "base":
        a, b = _last(run.get("loss", "train")), _last(baseline.get("loss", "train")) if baseline is not None else None
        return (a - b) / abs(b) if a is not None and b and math.isfinite(a) and math.isfinite(b) else None
    if column == "finding":
        f = (worst or {}).get(run.key)
        return -severity_rank(f) if f is not None else None  # the worst first
    raise KeyError(column)


def sort_runs(runs: Sequence[Any], column: str, reverse: bool = False, **kw: Any) -> List[Any]:
    """``runs`` ordered by ``column`` (ties keep their order); runs with no
    value last, ``reverse`` or not."""
    value: Callable[[Any], Any] = lambda r: sort_value(r, column, **kw)  # noqa: E731
    keyed = [(value(r), i, r) for i, r in enumerate(runs)]
    have = sorted((k for k in keyed if k[0] is not None), key=lambda k: k[0], reverse=reverse)  # stable
    return [r for _, _, r in have] + [r for v, _, r in keyed if v is None]
