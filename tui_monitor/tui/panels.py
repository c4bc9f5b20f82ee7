"""Redrawing the panels from the store and the app's state: the runs table,
the status line, the findings and decision path, and the chart's spec.

A mixin of :class:`~tui_monitor.tui.app.MonitorApp`. Reads only: the store
(safe from the UI thread), the last diagnosis, the view state.
"""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

from rich.text import Text
from textual.widgets import Static

from ._text import safe
from .chart import ChartSpec
from .chartdata import build_chart
from .findings import decision_path, finding_title, is_about, path_from_engine, worst_by_run
from .jobview import job_layout, job_row
from .rowkeys import group_key, job_key
from .screens.problems import problems_summary
from .widgets import ChartView, DecisionPathView, FindingsList, RunsTable
from .widgets.findings import path_line
from .widgets.runs import group_row, layout_rows, run_group, run_row, worst_of

__all__ = ["Panels"]


class Panels:
    """Each panel's refresh, from the store and the app's state."""

    def _refresh_runs(self) -> None:
        table = self.query_one(RunsTable)
        now = self.clock()
        baseline = self.run_by_key(self.baseline_key)
        worst = worst_by_run(self.findings, self.store.runs.values())
        rows = []
        width = 22 if self.has_class("-narrow") else 32
        colors = self.run_colors.assign([r.key for r in self.chart_runs()])
        for kind, item in job_layout(layout_rows(self.shown_runs(), self.collapsed), self.expanded_jobs):
            if kind == "job":
                run_id, ranks = item
                n_sel = sum(1 for r in ranks if RunsTable.row_key(r) in self.selected)
                rows.append((job_key(run_id), job_row(run_id, ranks, now, run_id in self.expanded_jobs, n_sel,
                                                      worst_of(worst, ranks), name_width=width,
                                                      silent_after=self.silent_after)))
                continue
            if kind == "group":
                name, members = item
                n_sel = sum(1 for r in members if RunsTable.row_key(r) in self.selected)
                rows.append((group_key(name), group_row(name, members, now, name in self.collapsed, n_sel,
                                                        self.cv_summary(name, members), worst_of(worst, members),
                                                        name_width=width, silent_after=self.silent_after)))
                continue
            run = item
            key = RunsTable.row_key(run)
            rows.append((key, run_row(run, now, key in self.selected, baseline, worst.get(run.key),
                                      name_width=width, silent_after=self.silent_after, color=colors.get(run.key))))
        table.set_rows(rows, narrow=self.has_class("-narrow"))

    def _refresh_status(self) -> None:
        runs = list(self.store.runs.values())
        now = self.clock()
        counts: Dict[str, int] = {}
        for r in runs:
            st = r.status_at(now, self.silent_after)
            counts[st] = counts.get(st, 0) + 1
        t = Text(no_wrap=True, overflow="ellipsis")
        t.append("tui-monitor", "bold #4fc3f7")
        t.append("  %d run%s" % (len(runs), "" if len(runs) == 1 else "s"))
        if runs:
            t.append(" (" + ", ".join("%d %s" % (n, s) for s, n in sorted(counts.items())) + ")", "dim")
        nf = len([f for f in self.findings if str(getattr(f, "severity", "")) != "info"])
        t.append("  %d finding%s" % (nf, "" if nf == 1 else "s"), "bold #ef5350" if nf else "")
        problems = self.ingest.problem_count if self.ingest is not None else 0
        if problems:
            t.append("  " + problems_summary(problems), "#fff176")
        if self.filter:
            t.append("  filter /", "dim")
            t.append(safe(self.filter), "#fff176")
            t.append("/", "dim")
        base = self.run_by_key(self.baseline_key)
        if base is not None:
            t.append("  baseline ", "dim")
            t.append(safe(base.name), "#9e9e9e")
        t.append("  metric ", "dim")
        t.append(safe(self.view.metric))
        t.append("  x %s" % self.view.x_kind, "dim")
        t.append("  ema %.2f" % self.view.smoothing if self.view.smoothing else "  ema off", "dim")
        if self.view.log_y:
            t.append("  log y", "dim")
        if self.view.zoomed():
            t.append("  zoom %d%%" % round(100 * (self.view.view[1] - self.view.view[0])), "dim")
        self.query_one("#status", Static).update(t)

    def _run_names(self) -> Dict[Any, str]:
        return {r.key: r.name for r in list(self.store.runs.values())}

    def _refresh_findings(self) -> None:
        fl = self.query_one(FindingsList)
        fl.set_findings(self.findings, self._run_names(), detail=not self.has_class("-narrow"))
        runs = self.chart_runs()
        view = self.query_one(DecisionPathView)
        if not runs:
            view.update(Text("decision path: no run", style="dim"))
            return
        out = Text(no_wrap=False, end="")
        # the cross-validation summary of the folds shown, first (it is the answer for a group)
        groups: List[str] = []
        for run in runs:
            g = run_group(run)
            if g is not None and g not in groups:
                groups.append(g)
        for g in groups[:2]:
            summary = self.cv_summary(g, [r for r in self.all_runs() if run_group(r) == g])
            out.append("cv ", "bold #4fc3f7")
            out.append(safe(summary.text()))
            out.append("\n")
        for i, run in enumerate(runs[:3]):
            if i:
                out.append("\n")
            rows = path_from_engine(self.paths.get(run.key))
            if rows is None:
                has_val = any(k[0] in ("val", "test") for k in run.metrics())
                rows = decision_path(run, self.findings, has_val)
            out.append_text(path_line(run, rows))
        view.update(out)

    def _onsets(self, runs: Sequence[Any]) -> List[Tuple[Any, int, str]]:
        out = []
        chosen = self.chosen
        if chosen is not None:
            fr = [r for r in runs if is_about(chosen, r)]
            if fr and getattr(chosen, "step", None) is not None:
                out.append((fr[0], chosen.step, "%s @%s" % (finding_title(chosen), chosen.step)))
                return out
        worst = worst_by_run(self.findings, runs[:1])
        for run in runs[:1]:
            f = worst.get(run.key)
            if f is not None and getattr(f, "step", None) is not None and str(getattr(f, "severity", "")) != "info":
                out.append((run, f.step, "%s @%s" % (finding_title(f), f.step)))
        return out

    def _chart_spec(self, px_width: int) -> ChartSpec:
        runs, which = self.chart_pick()
        spec = build_chart(runs, self.view, px_width, baseline=self.run_by_key(self.baseline_key),
                           onsets=self._onsets(runs), cache=self.chart_cache,
                           colors=self.run_colors.assign([r.key for r in runs]))
        if which:
            spec.note = "  ".join(n for n in (which, spec.note) if n)
        spec.x_format = self.x_format
        return spec

    def _chart_changed(self) -> None:
        self.query_one("#chart", ChartView).refresh()
        self._refresh_findings()
        self._refresh_status()
