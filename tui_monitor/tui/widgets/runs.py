"""The runs panel: one row per run with status, step, losses, best
validation loss, size and the worst finding as a badge. Runs tagged with a
``group`` (the folds of a cross-validation) sit under a group row that shows
the group's N-fold summary (mean ± std of the folds' best validation losses)
and can be collapsed. Cells are Text built from plain strings (run names are
data, never markup)."""
from __future__ import annotations

import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

from rich.text import Text

from .._text import fmt_ago, fmt_count, fmt_duration, fmt_num, short_name, shorten
from ..findings import finding_cell, severity_rank
from ..palette import GROUP_MARK, STATUS_STYLES
from ..jobview import status_summary

__all__ = ["run_row", "COLUMNS", "order_runs", "run_group", "group_row",
           "layout_rows", "local_cv", "worst_of"]

def run_group(run: Any) -> Optional[str]:
    """The ``group`` tag of ``run`` as a string, or None."""
    tags = run.tags if isinstance(run.tags, dict) else {}
    g = tags.get("group")
    return None if g is None else str(g)



#: (key, label, shown when narrow)
COLUMNS = (
    ("mark", " ", True),
    ("name", "run", True),
    ("status", "status", True),
    ("step", "step", True),
    ("train", "train", True),
    ("val", "val", True),
    ("best", "best val", False),
    ("params", "params", False),
    ("base", "train vs base", False),  # the training loss against the baseline's
    ("finding", "finding", True),
)


def _last(series) -> Optional[float]:
    if series is None or not len(series):
        return None
    return series.last()[1]


def status_text(run: Any, now: float, silent_after: float = 60.0) -> Text:
    st = run.status_at(now, silent_after) if hasattr(run, "status_at") else run.status
    label = st
    if st == "silent" and run.last_seen is not None:
        label = "silent %s" % fmt_duration(now - run.last_seen)
    elif st == "stopped" and run.last_seen is not None:   # no end record, nothing for a day: not "finished"
        label = "stopped %s ago" % fmt_ago(now - run.last_seen)
    return Text(label, style=STATUS_STYLES.get(st, ""), no_wrap=True)


def order_runs(runs: Sequence[Any]) -> List[Any]:
    """Runs grouped: runs sharing a ``group`` tag (folds) together, by fold."""
    first_index: Dict[str, int] = {}
    for i, run in enumerate(runs):
        g = run.tags.get("group") if isinstance(run.tags, dict) else None
        if g is not None:
            first_index.setdefault(str(g), i)
    def key2(ir):
        i, run = ir
        g = run.tags.get("group") if isinstance(run.tags, dict) else None
        if g is None:
            return (i, 0, i)
        fold = run.tags.get("fold")
        fold = fold if isinstance(fold, (int, float)) and not isinstance(fold, bool) else 0
        return (first_index[str(g)], fold, i)
    return [r for _, r in sorted(enumerate(runs), key=key2)]


def run_row(run: Any, now: float, selected: bool, baseline: Optional[Any], finding: Any,
            name_width: int = 24, silent_after: float = 60.0, color: Optional[str] = None) -> Dict[str, Text]:
    """The cells of ``run``'s row (``color``: the run's colour in the chart,
    for its selection mark)."""
    train = run.get("loss", "train")
    val = run.get("loss", "val")
    mark = Text(no_wrap=True)
    mark.append("●" if selected else "○", "bold " + (color or "#4fc3f7") if selected else "dim")
    mark.append("★" if baseline is run else " ", "bold #9e9e9e")
    tags = run.tags if isinstance(run.tags, dict) else {}
    name = short_name(run.name)
    if tags.get("group") is not None and tags.get("fold") is not None:
        name = "%s ·f%s" % (name, short_name(tags.get("fold"), 8))
    if getattr(run, "world_size", 1) > 1:
        name = "%s r%d" % (name, run.rank)
    cells = {
        "mark": mark,
        "name": Text(shorten(name, name_width), no_wrap=True),
        "status": status_text(run, now, silent_after),
        "step": Text(str(run.last_step) if run.last_step is not None else "-", justify="right"),
        "train": Text(fmt_num(_last(train)), justify="right"),
        "val": Text(fmt_num(_last(val)), justify="right"),
    }
    best = val.min() if val is not None and len(val) else None
    cells["best"] = Text("%s @%d" % (fmt_num(best[0]), best[1]) if best else "-", justify="right")
    model = run.model if isinstance(run.model, dict) else {}
    params = model.get("trainable_params") or model.get("params")
    cells["params"] = Text(fmt_count(params) if isinstance(params, int) else "-", justify="right")
    base = "-"
    if baseline is not None and baseline is not run:
        a, b = _last(train), _last(baseline.get("loss", "train"))
        if a is not None and b is not None and math.isfinite(a) and math.isfinite(b) and b != 0:
            base = "%+.0f%%" % (100.0 * (a - b) / abs(b))
    elif baseline is run:
        base = "base"
    cells["base"] = Text(base, justify="right")
    cells["finding"] = finding_cell(finding)
    return cells


def layout_rows(runs: Sequence[Any], collapsed: Any = ()) -> List[Tuple[str, Any]]:
    """``runs`` (in :func:`order_runs` order) as table rows: ``("group",
    (name, members))`` before the members of each group, then ``("run",
    run)`` for each member unless the group is in ``collapsed``."""
    members: Dict[str, List[Any]] = {}
    for run in runs:
        g = run_group(run)
        if g is not None:
            members.setdefault(g, []).append(run)
    out: List[Tuple[str, Any]] = []
    done = set()
    for run in runs:
        g = run_group(run)
        if g is None:
            out.append(("run", run))
            continue
        if g not in done:
            done.add(g)
            out.append(("group", (g, members[g])))
        if g not in collapsed:
            out.append(("run", run))
    return out


class _CV:
    """A cross-validation summary computed here from the store, for when no
    engine gives one (same fields as the engine's ``CVSummary``)."""

    def __init__(self, group: str, n: int, mean: Optional[float], std: Optional[float], complete: bool) -> None:
        self.group, self.n, self.mean, self.std, self.complete, self.rank = group, n, mean, std, complete, None
        self.metric = "val loss (best per fold)"

    def text(self) -> str:
        if self.mean is None:
            return "%s: %d folds, no validation loss yet" % (self.group, self.n)
        pm = " ± %.4g" % self.std if self.std is not None else ""
        state = "" if self.complete else " (some folds still running)"
        return "%s: %s %.4g%s over %d folds%s" % (self.group, self.metric, self.mean, pm, self.n, state)


def local_cv(name: str, members: Sequence[Any]) -> _CV:
    """Mean ± std (ddof 1) of the members' best validation losses (the
    store's running minimum: no scan of the series)."""
    bests = []
    for run in members:
        val = run.get("loss", "val")
        best = val.min() if val is not None and len(val) else None
        if best is not None and math.isfinite(best[0]):
            bests.append(float(best[0]))
    mean = sum(bests) / len(bests) if bests else None
    std = None
    if len(bests) > 1:
        std = math.sqrt(sum((b - mean) ** 2 for b in bests) / (len(bests) - 1))
    return _CV(name, len(members), mean, std, all(getattr(r, "status", None) in ("finished", "stopped") for r in members))


def group_row(name: str, members: Sequence[Any], now: float, collapsed: bool, selected: int, summary: Any,
              worst: Optional[Any], name_width: int = 24, silent_after: float = 60.0) -> Dict[str, Text]:
    """The cells of a group row: ▾/▸, the group's name and fold count, how
    many folds are running, and its cross-validation summary."""
    mark = Text(no_wrap=True)
    mark.append("▸" if collapsed else "▾", GROUP_MARK)
    mark.append("●" if selected and selected == len(members) else ("◐" if selected else " "), GROUP_MARK)
    n = len(members)
    label = "%s · %d fold%s" % (short_name(name), n, "" if n == 1 else "s")
    status = status_summary(members, now, silent_after)
    steps = [r.last_step for r in members if r.last_step is not None]
    mean = getattr(summary, "mean", None) if summary is not None else None
    std = getattr(summary, "std", None) if summary is not None else None
    cv = "-"
    if mean is not None:
        cv = fmt_num(mean, 3) + ("±" + fmt_num(std, 2) if std is not None else "")
    cells = {
        "mark": mark,
        "name": Text(shorten(label, name_width), style="bold", no_wrap=True),
        "status": status,
        "step": Text(str(max(steps)) if steps else "-", justify="right", style="dim"),
        "train": Text("cv", justify="right", style="dim"),
        "val": Text(cv, justify="right", style="bold"),
        "best": Text("%d fold%s" % (n, "" if n == 1 else "s") if mean is None else "mean±std", justify="right",
                     style="dim"),
        "params": Text(""),
        "base": Text(""),
    }
    rank = getattr(summary, "rank", None) if summary is not None else None
    cells["finding"] = finding_cell(worst)
    if worst is None and isinstance(rank, int):
        cells["finding"] = Text("cv rank %d" % rank, style="dim", no_wrap=True)
    return cells


def worst_of(findings_by_run: Dict[Any, Any], members: Sequence[Any]) -> Optional[Any]:
    """The most severe finding among ``members``' worst ones."""
    fs = [findings_by_run.get(r.key) for r in members]
    fs = [f for f in fs if f is not None]
    return max(fs, key=severity_rank) if fs else None
