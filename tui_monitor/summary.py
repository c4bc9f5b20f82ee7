"""Plain-text summaries of a store for the headless commands (``watch --once``).

No textual or rich here: the text is printed as it is, with everything that
came from a stream passed through :func:`tui_monitor.safe_text.clean`, and
cut (:func:`~tui_monitor.safe_text.cut`): a column is as wide as its widest
cell, so one run named with a megabyte would pad every row to a megabyte.
"""
from __future__ import annotations

import math
import time
from typing import Iterable, List, Optional, Sequence

from .safe_text import clean, cut, fmt_ago, fmt_count, fmt_num
from .store import UNENDED, Run, Store


def main_metric(run: Run) -> Optional[str]:
    """The metric the summary shows: ``loss`` when the run has it, else the
    first train metric."""
    names = [m for (split, m) in run.series]
    if "loss" in names:
        return "loss"
    train = [m for (split, m) in run.series if split == "train"]
    return (train or names or [None])[0]


def status_text(run: Run, now: Optional[float] = None) -> str:
    """The run's status in words: ``silent 5m``, ``stopped 3y ago`` (no end
    record, nothing written for over a day: nobody knows how it ended),
    ``crashed (OSError)``..."""
    now = now if now is not None else time.time()
    status = run.status
    if status in UNENDED and run.status_at(now, math.inf) == "stopped":
        status = "stopped"    # the ingest marks it as the clock moves; a store read once is told here
    if status == "stopped":
        return f"stopped {fmt_ago(run.quiet_for(now))} ago"
    if status == "silent" and run.last_seen is not None:
        return f"silent {fmt_ago(run.quiet_for(now))}"
    if run.status == "interrupted" and run.end and run.end.get("signal"):
        return f"interrupted ({run.end['signal']})"
    if run.status == "crashed" and run.end and run.end.get("error"):
        return f"crashed ({run.end['error'].get('type', 'error')})"
    return run.status


#: The widest a cell from a stream is shown (run names, metric names, statuses).
NAME_WIDTH = 48
METRIC_WIDTH = 32


def run_rows(store: Store, now: Optional[float] = None) -> List[Sequence[str]]:
    rows = []
    for run in sorted(store.runs.values(), key=lambda r: (r.start or 0, r.name or "", r.rank)):
        metric = main_metric(run)
        train = run.series.get(("train", metric)) if metric else None
        val = run.series.get(("val", metric)) if metric else None
        last_train = train.last() if train is not None else None
        last_val = val.last() if val is not None else None
        best = val.min() if val is not None else None
        model = run.model or {}
        rows.append((
            cut(run.name or run.run_id, NAME_WIDTH), str(run.rank), cut(status_text(run, now), NAME_WIDTH),
            "-" if run.last_step is None else str(run.last_step), cut(metric or "-", METRIC_WIDTH),
            fmt_num(last_train[1] if last_train else None), fmt_num(last_val[1] if last_val else None),
            f"{fmt_num(best[0])} @{best[1]}" if best else "-",
            fmt_count(model.get("trainable_params") or model.get("params")),
        ))
    return rows


HEADERS = ("run", "rank", "status", "step", "metric", "train", "val", "best val", "params")


def table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    rows = [list(map(str, r)) for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def runs_table(store: Store, now: Optional[float] = None) -> str:
    return table(HEADERS, run_rows(store, now))


def problem_lines(problems: Sequence, total: int) -> List[str]:
    """The problems a reading met, one line each (a repeated one once, with
    its count), after a line saying how many were not kept when some were
    not: ``total`` is every problem reported, repeats included."""
    lines = []
    if total > sum(p.count for p in problems):
        lines.append(f"{total} problems; the last {len(problems)} kinds:")
    return lines + [clean(str(p)) for p in problems]
