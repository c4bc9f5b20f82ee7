"""The status line: how many runs in which states, the findings, the stream
problems, the filter and sort, the baseline, and the chart's view (metric,
x axis, smoothing, log y, zoom). Pure: returns Rich Text.

It is fitted to the width: the least telling parts give way first (the
per-state counts, then the x axis, the sort...), so that at 80 columns the
line still ends with the chart's smoothing instead of an ellipsis.
"""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

from rich.text import Text

from ._text import safe, short_name
from .screens.problems import problems_summary
from .widgets.runs import COLUMNS
from .widgets.runs_panel import RunsSummary

__all__ = ["status_text"]

#: How readily a part gives way when the line is too long (higher: sooner).
KEEP, LATER, SOONER, FIRST = 0, 1, 2, 3
_LABELS = {key: label for key, label, _ in COLUMNS}


def _part(text: str, style: str = "") -> Text:
    return Text(text, style=style, no_wrap=True, end="")


def status_text(runs: RunsSummary, findings: Sequence[Any], problems: int, panel: Any, view: Any, width: int,
                badge: Optional[Text] = None) -> Text:
    """The status line for the ``runs`` the runs ``panel`` counted, its
    filter, sort and baseline and the chart's ``view``, at most ``width``
    cells when it can be; ``badge``: the alerts' part, after the name."""
    parts: List[Tuple[int, Text]] = [(KEEP, _part("tui-monitor", "bold #4fc3f7"))]
    if badge is not None and badge.cell_len:
        parts.append((KEEP, badge))
    total = runs.total
    parts.append((KEEP, _part(("%d of %d runs" % (runs.shown, total)) if runs.shown != total
                              else "%d run%s" % (total, "" if total == 1 else "s"))))
    if runs.counts:
        parts.append((FIRST, _part("(" + ", ".join("%d %s" % (n, s) for s, n in sorted(runs.counts.items())) + ")",
                                   "dim")))
    nf = len([f for f in findings if str(getattr(f, "severity", "")) != "info"])
    if total or nf:
        parts.append((KEEP, _part("%d finding%s" % (nf, "" if nf == 1 else "s"), "bold #ef5350" if nf else "")))
    if problems:
        parts.append((LATER, _part(problems_summary(problems), "#fff176")))
    if not total:  # waiting for the first run: no chart whose metric, x or smoothing to name
        return _fit(parts, width)
    if panel.filter:
        t = _part("filter ", "dim")
        t.append(safe(panel.filter.text), "#fff176")
        parts.append((LATER, t))
    if panel.sort_by:
        parts.append((SOONER, _part("sort %s%s" % (_LABELS.get(panel.sort_by, panel.sort_by),
                                                   "▼" if panel.sort_reverse else "▲"), "dim")))
    base = panel.baseline
    if base is not None:
        t = _part("baseline ", "dim")
        t.append(short_name(base.name, 32), "#9e9e9e")
        parts.append((LATER, t))
    t = _part("metric ", "dim")
    t.append(short_name(view.metric, 32))
    parts.append((KEEP, t))
    parts.append((SOONER, _part("x %s" % view.x_kind, "dim")))
    parts.append((LATER, _part("ema %.2f" % view.smoothing if view.smoothing else "ema off", "dim")))
    if view.log_y:
        parts.append((LATER, _part("log y", "dim")))
    if view.zoomed():
        parts.append((LATER, _part("zoom %d%%" % round(100 * (view.view[1] - view.view[0])), "dim")))
    return _fit(parts, width)


def _fit(parts: List[Tuple[int, Text]], width: int) -> Text:
    """Join ``parts`` with two spaces, dropping the most dispensable (and
    of those the last) until the line fits ``width``."""
    parts = list(parts)

    def length() -> int:
        return sum(p.cell_len for _, p in parts) + 2 * (len(parts) - 1)

    while length() > width:
        level = max(level for level, _ in parts)
        if level == KEEP:
            break
        i = max(i for i, (lv, _) in enumerate(parts) if lv == level)
        del parts[i]
    out = Text(no_wrap=True, overflow="ellipsis", end="")
    for i, (_, p) in enumerate(parts):
        if i:
            out.append("  ")
        out.append_text(p)
    return out
