"""Multi-rank jobs in the TUI, as pure functions (no Textual): the job row of
the runs panel (the ranks of a job folded into one expandable row), the job
view's one line per rank (host, step, step time, last loss, status, finding)
and its per-rank step-time chart.

A job is the runs sharing a ``run_id`` with ``world_size > 1`` (see
:mod:`tui_monitor.diagnose.ranks`). Everything from the stream (names, hosts)
is data: shown through :func:`~tui_monitor.tui._text.safe`, never markup.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
from rich.text import Text

from ..store import decimate_arrays
from ._text import fmt_num, shorten, short_name
from .chart import ChartSpec, Line
from .findings import finding_cell, worst_by_run
from .gradpanel import step_timing
from .palette import GROUP_MARK, STATUS_STYLES, run_color

__all__ = ["job_of", "job_layout", "job_row", "job_members", "rank_lines",
           "job_chart", "rank_step_times", "fmt_secs", "status_summary"]



def job_of(run: Any) -> Optional[str]:
    """The job (run id) of a rank of a multi-rank job, else None."""
    return run.run_id if (getattr(run, "world_size", 1) or 1) > 1 else None


def job_members(runs: Iterable[Any], run_id: Optional[str]) -> List[Any]:
    """The ranks of job ``run_id`` among ``runs``, by rank."""
    if run_id is None:
        return []
    return sorted((r for r in runs if job_of(r) == run_id), key=lambda r: r.rank)


def job_layout(items: Sequence[Tuple[str, Any]], expanded: Any = ()) -> List[Tuple[str, Any]]:
    """Rows of the runs panel (``("run", run)`` / ``("group", ...)`` from
    :func:`~tui_monitor.tui.widgets.runs.layout_rows`) with the ranks of each
    job folded into one ``("job", (run_id, ranks))`` row where its first rank
    was, followed by its ranks (by rank) when the job is in ``expanded``.
    A job with a single rank shown stays a plain run row."""
    members: Dict[str, List[Any]] = {}
    for kind, item in items:
        if kind == "run" and job_of(item) is not None:
            members.setdefault(job_of(item), []).append(item)
    out: List[Tuple[str, Any]] = []
    done = set()
    for kind, item in items:
        j = job_of(item) if kind == "run" else None
        if j is None or len(members[j]) < 2:
            out.append((kind, item))
            continue
        if j in done:
            continue
        done.add(j)
        ranks = sorted(members[j], key=lambda r: r.rank)
        out.append(("job", (j, ranks)))
        if j in expanded:
            out.extend(("run", r) for r in ranks)
    return out


def fmt_secs(x: Optional[float]) -> str:
    if x is None or not math.isfinite(x):
        return "-"
    if x >= 100:
        return "%.0f s" % x
    if x >= 1:
        return "%.2g s" % x if x < 10 else "%.1f s" % x
    if x >= 1e-3:
        return "%.3g ms" % (x * 1e3)
    return "%.3g µs" % (x * 1e6)


def _status(run: Any, now: float, silent_after: float) -> str:
    return run.status_at(now, silent_after) if hasattr(run, "status_at") else run.status


def status_summary(runs: Sequence[Any], now: float, silent_after: float = 30.0) -> Text:
    """The state of a group row's folds or a job row's ranks: the one state
    they share, or the most telling with its count (``1/4 crashed``:
    crashed, silent, interrupted, running, stopped, finished, in that order)."""
    counts: Dict[str, int] = {}
    for r in runs:
        st = _status(r, now, silent_after)
        counts[st] = counts.get(st, 0) + 1
    if len(counts) == 1:
        st = next(iter(counts))
        return Text(st, style=STATUS_STYLES.get(st, ""), no_wrap=True)
    st = next((s for s in ("crashed", "silent", "interrupted", "running", "stopped", "finished") if counts.get(s)),
              None) or max(counts, key=lambda k: (counts[k], k))
    return Text("%d/%d %s" % (counts[st], len(runs), st), style=STATUS_STYLES.get(st, ""), no_wrap=True)


def _last(series: Any) -> Optional[float]:
    if series is None or not len(series):
        return None
    return series.last()[1]


def _loss(run: Any) -> Optional[Any]:
    s = run.get("loss", "train")
    if s is None:
        for (split, m), ser in list(run.series.items()):
            if split == "train" and "loss" in m.lower():
                return ser
    return s


def job_row(run_id: str, ranks: Sequence[Any], now: float, expanded: bool, selected: int, worst: Optional[Any],
            name_width: int = 24, silent_after: float = 30.0) -> Dict[str, Text]:
    """The cells of a job row (the columns of the runs panel): ▸/▾, the
    job's name with its rank and host counts, the ranks' states, their step
    (lowest..highest), rank 0's losses, the job's step time, the worst
    finding of its ranks."""
    head = ranks[0]
    mark = Text(no_wrap=True)
    mark.append("▾" if expanded else "▸", GROUP_MARK)
    mark.append("●" if selected and selected == len(ranks) else ("◐" if selected else " "), GROUP_MARK)
    hosts = {r.host for r in ranks if getattr(r, "host", None)}
    world = max((getattr(r, "world_size", 1) or 1) for r in ranks)
    label = "%s · %d/%d ranks" % (short_name(head.name), len(ranks), world) if len(ranks) < world else \
        "%s · %d ranks" % (short_name(head.name), len(ranks))
    if len(hosts) > 1:
        label += " · %d hosts" % len(hosts)
    steps = [r.last_step for r in ranks if r.last_step is not None]
    if steps and min(steps) != max(steps):
        step = "%d..%d" % (min(steps), max(steps))
    else:
        step = str(steps[0]) if steps else "-"
    paces = [p for p in (step_timing(r)[0] for r in ranks) if p]
    pace = float(np.median(paces)) if paces else None
    cells = {
        "mark": mark,
        "name": Text(shorten(label, name_width), style="bold", no_wrap=True),
        "status": status_summary(ranks, now, silent_after),
        "step": Text(step, justify="right"),
        "train": Text(fmt_num(_last(_loss(head))), justify="right"),
        "val": Text(fmt_num(_last(head.get("loss", "val"))), justify="right"),
        "best": Text(("%s/step" % fmt_secs(pace)) if pace else "-", justify="right", style="dim"),
        "params": Text(""),
        "base": Text(""),
    }
    model = head.model if isinstance(head.model, dict) else {}
    params = model.get("trainable_params") or model.get("params")
    if isinstance(params, int):
        from ._text import fmt_count

        cells["params"] = Text(fmt_count(params), justify="right")
    cells["finding"] = finding_cell(worst)
    return cells


def rank_lines(ranks: Sequence[Any], findings: Sequence[Any] = (), now: float = 0.0,
               silent_after: float = 30.0) -> Text:
    """One line per rank: rank, host (local rank), status, step, step time
    (and how it compares with the median rank), last loss, its own timing
    when it logs one (data_time...), the worst finding about it."""
    t = Text(no_wrap=True, end="")
    if not ranks:
        t.append("no multi-rank job here (runs with world_size > 1 sharing a run id)", "dim")
        return t
    head = ranks[0]
    world = max((getattr(r, "world_size", 1) or 1) for r in ranks)
    t.append("job ", "bold")
    t.append(short_name(head.name), "bold #4fc3f7")
    t.append("  %s" % short_name(head.run_id, 40), "dim")
    t.append("  %d of %d ranks" % (len(ranks), world))
    hosts = sorted({short_name(r.host) for r in ranks if getattr(r, "host", None)})
    if hosts:
        t.append("  on %d host%s" % (len(hosts), "" if len(hosts) == 1 else "s"), "dim")
    paces = {r.key: step_timing(r)[0] for r in ranks}
    known = [p for p in paces.values() if p]
    med = float(np.median(known)) if known else None
    timing = _timing_name(ranks)
    def host_of(r: Any) -> str:
        local = r.header.get("local_rank") if isinstance(getattr(r, "header", None), dict) else None
        return short_name(r.host or "?") + ("" if local is None else ":%s" % short_name(local))

    host_w = max(4, min(22, max((len(host_of(r)) for r in ranks), default=4)))
    worst = worst_by_run(findings, ranks)
    own = {r.key: _median_last(r.get(timing, "train")) for r in ranks} if timing else {}  # once per rank
    t.append("\n")
    header = "%5s  %s  %-11s %8s %10s %10s" % ("rank", "host".ljust(host_w), "status", "step", "step time", "loss")
    if timing:
        header += " %10s" % short_name(timing, 10)
    t.append(header + "  finding", "bold")
    for r in ranks:
        t.append("\n")
        st = _status(r, now, silent_after)
        host = host_of(r)
        t.append("%5d  " % r.rank)
        t.append(shorten(host, host_w).ljust(host_w) + "  ")
        t.append("%-11s " % shorten(st, 11), STATUS_STYLES.get(st, ""))
        t.append("%8s " % (r.last_step if r.last_step is not None else "-"))
        p = paces.get(r.key)
        slow = p is not None and med and p > 1.25 * med
        t.append("%10s " % fmt_secs(p), "bold #ffb74d" if slow else "")
        loss = _last(_loss(r))
        t.append("%10s" % fmt_num(loss), "bold #ef5350" if loss is not None and not math.isfinite(loss) else "")
        if timing:
            v = own[r.key]
            others = [x for k, x in own.items() if k != r.key and x is not None]
            om = float(np.median(others)) if others else None
            hot = v is not None and om is not None and v > 1.5 * om and v - om > 1e-3
            t.append(" %10s" % fmt_secs(v), "bold #ffb74d" if hot else "")
        f = worst.get(r.key)
        if f is not None:
            t.append("  ")
            t.append_text(finding_cell(f, 24))
    return t


def _median_last(series: Any, n: int = 50) -> Optional[float]:
    if series is None or not len(series):
        return None
    v = np.asarray(series.snapshot().values[-n:], dtype=np.float64)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if v.size else None


def _timing_name(ranks: Sequence[Any]) -> Optional[str]:
    """A per-step duration every rank logs (``data_time``...), if any."""
    from ..diagnose.ranks import TIMING_EXCLUDE

    common = None
    for r in ranks:
        names = {m for s, m in r.metrics("train") if "time" in m.lower()
                 and not any(x in m.lower() for x in TIMING_EXCLUDE)}
        common = names if common is None else common & names
    if not common:
        return None
    return "data_time" if "data_time" in common else sorted(common)[0]


def rank_step_times(run: Any, max_points: int = 20000) -> Tuple[np.ndarray, np.ndarray]:
    """``(steps, seconds per step)`` of a rank: from the spacing of its train
    logs (the last ``max_points``), else its ``("system", "step_time")``
    samples."""
    s = _loss(run)
    if s is None or len(s) < 3:
        s = next((v for (sp, _), v in list(run.series.items()) if sp == "train" and len(v) >= 3), None)
    if s is not None:
        snap = s.snapshot()
        st = np.asarray(snap.steps[-max_points:], dtype=np.float64)
        tm = np.asarray(snap.times[-max_points:], dtype=np.float64)
        ds, dt = np.diff(st), np.diff(tm)
        ok = (ds > 0) & np.isfinite(dt) & (dt >= 0)
        if ok.sum() >= 2:
            return st[1:][ok], dt[ok] / ds[ok]
    sysv = run.series.get(("system", "step_time"))
    if sysv is not None and len(sysv):
        snap = sysv.snapshot()
        return np.asarray(snap.steps, dtype=np.float64), np.asarray(snap.values, dtype=np.float64)
    return np.empty(0), np.empty(0)


def job_chart(ranks: Sequence[Any], px_width: int, log_y: bool = False, max_ranks: int = 12) -> ChartSpec:
    """The per-rank step-time chart: one curve per rank (min/max decimated to
    the chart's width), coloured by rank. A job of more than ``max_ranks``
    ranks shows the ones that tell: the slowest by their recent step time,
    then the median and the fastest rank to compare them with."""
    spec = ChartSpec(title="step time per rank (s/step)", log_y=log_y, empty="no step times yet")
    shown = list(ranks)
    if len(shown) > max_ranks:  # ranked by their last 50 step times; only the ranks drawn read more
        shown = telling_ranks(shown, lambda r: _recent_median(rank_step_times(r, 51)[1]), max_ranks)
        spec.note = "%d of %d ranks: the slowest, the median and the fastest" % (len(shown), len(ranks))
    for r in shown:
        x, y = rank_step_times(r)
        if x.size < 2:
            continue
        order_ok = bool(np.all(np.diff(x) >= 0))
        d = decimate_arrays(x, y, max(1, px_width), x_sorted=order_ok)
        xs, ys = np.asarray(d.x, dtype=np.float64), np.asarray(d.y, dtype=np.float64)
        fin = np.isfinite(ys)
        label = "r%d %s" % (r.rank, short_name(r.host or ""))
        spec.lines.append(Line(xs[fin], ys[fin], run_color(r.rank), label=label.strip()))
    return spec


def _recent_median(y: np.ndarray, recent: int = 50) -> Optional[float]:
    y = y[-recent:]
    y = y[np.isfinite(y)]
    return float(np.median(y)) if y.size else None


def last_value(run: Any, metric: str) -> Optional[float]:
    """The rank's latest training ``metric`` (+inf when it is not finite:
    a rank gone NaN is the most telling); None before its first value."""
    s = run.get(metric, "train")
    last = s.last() if s is not None and len(s) else None
    if last is None:
        return None
    v = float(last[1])
    return v if math.isfinite(v) else math.inf


def telling_ranks(ranks: Sequence[Any], score: Callable[[Any], Optional[float]], n: int) -> List[Any]:
    """``n`` of ``ranks`` in rank order: the ``n - 2`` highest by ``score``
    (the slowest step time, the highest loss), the median one and the lowest.
    Ranks without a score yet are the least telling."""
    scores = {r.key: score(r) for r in ranks}
    by_score = sorted(ranks, key=lambda r: (scores[r.key] is None, -(scores[r.key] or 0.0), r.rank))
    scored = [r for r in by_score if scores[r.key] is not None]
    picked = by_score[:max(n - 2, 0)]
    for extra in (scored[len(scored) // 2] if scored else None, scored[-1] if scored else None):
        if extra is not None and extra not in picked:
            picked.append(extra)
    for r in by_score:  # fill up when the median or the lowest was already in
        if len(picked) >= n:
            break
        if r not in picked:
            picked.append(r)
    return sorted(picked[:n], key=lambda r: r.rank)
