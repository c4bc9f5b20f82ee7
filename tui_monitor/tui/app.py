"""The monitor app: runs panel, chart, findings and decision path, and the
gradient/system view, over a :class:`~tui_monitor.store.Store` that sources
fill from their own threads.

Threads: the UI thread only *reads* the store. A timer polls
``store.version`` (a dirty flag); only when it moved (or every few seconds,
for "silent for N minutes") is anything redrawn, so a burst of records costs
one redraw. The diagnosis engine runs in a thread worker, one update at a
time. Exports (CSV, SVG) are written by thread workers: no file or socket
I/O on the UI thread. The chart keeps a :class:`DecimationCache`, so a redraw
of series that did not change does not decimate them again.

Mouse: the wheel over the chart zooms on x around the pointer, shift+wheel
(or a horizontal wheel) pans; a click on a finding focuses the chart on it.
Fold groups (runs tagged ``group``/``fold``) get a group row with the
engine's cross-validation summary (mean ± std of the folds' best validation
losses); ``z`` or enter on it collapses / expands the group.
"""
from __future__ import annotations

import math
import os
import re
import time as _time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from rich.text import Text
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import ContentSwitcher, DataTable, Footer, Static

from ._text import plain, safe
from .chart import ChartSpec
from .chartdata import X_KINDS, DecimationCache, ViewState, build_chart, metric_names, x_extent
from .export import csv_rows, write_csv, write_text
from .findings import (decision_path, engine_findings, finding_runs, finding_title, make_diagnoser, matches_run,
                       path_from_engine, worst_by_run)
from .screens import FilterScreen, HelpScreen, MetricPicker
from .widgets import ChartView, DecisionPathView, FindingsList, GradientsView, RunsTable
from .keys import BINDINGS as _BINDINGS, KEYS, SMOOTHING_STEPS, palette_commands
from .widgets.findings import path_line
from .widgets.runs import (group_key, group_of_key, group_row, layout_rows, local_cv, order_runs, run_group, run_row,
                           worst_of)
from .jobview import job_key, job_layout, job_members, job_of, job_of_key, job_row
from .widgets.jobs import JobView

__all__ = ["MonitorApp", "run_app", "KEYS"]

def _key_of(run: Any) -> str:
    return RunsTable.row_key(run)


class MonitorApp(App):
    """The TUI. ``store``: the store to show (filled by ``ingest`` or anyone
    else, from other threads). ``diagnoser``: ``"auto"`` for the diagnosis
    engine, None for none, or an object with ``update()``. ``clock``: the
    time used for "silent for N minutes" (inject a fixed one for snapshots).
    ``threaded``: run the engine in a thread worker (False: on the timer,
    for deterministic tests). ``out_dir``: where ``s`` and ``e`` write."""

    TITLE = "tui-monitor"
    CSS = """
    Screen { layout: vertical; }
    #status { height: 1; background: $panel; color: $text; padding: 0 1; }
    #runs { height: auto; max-height: 35%; }
    #main { height: 1fr; }
    #chart { width: 1fr; }
    #side { width: 45%; min-width: 40; border-left: solid $primary-darken-2; }
    #side > FindingsList { height: 1fr; }
    App.-narrow #main { layout: vertical; }
    App.-narrow #side { width: 100%; height: 40%; min-height: 5; border-left: none;
                        border-top: solid $primary-darken-2; }
    App.-narrow #runs { max-height: 30%; }
    ContentSwitcher { height: 1fr; }
    """

    BINDINGS = _BINDINGS

    def __init__(self, store: Any, ingest: Any = None, *, diagnoser: Any = "auto",
                 clock: Callable[[], float] = _time.time, interval: float = 0.25, threaded: bool = True,
                 out_dir: Optional[str] = None, silent_after: float = 30.0,
                 x_format: Optional[Callable[[float], str]] = None) -> None:
        super().__init__()
        self.store = store
        self.ingest = ingest
        self.clock = clock
        self.interval = interval
        self.threaded = threaded
        self.out_dir = Path(out_dir) if out_dir else Path.cwd()
        self.silent_after = silent_after
        self.x_format = x_format
        self.diagnoser = make_diagnoser(store) if diagnoser == "auto" else diagnoser
        self.view = ViewState()
        self.selected: List[str] = []  # row keys, in the order selected
        self.baseline_key: Optional[str] = None
        self.filter = ""
        self.findings: List[Any] = []
        self.paths: Dict[Any, Any] = {}
        self.chosen: Optional[Any] = None
        self.collapsed: set = set()  # fold groups shown as one row
        self.expanded_jobs: set = set()  # multi-rank jobs shown rank by rank (folded into one row by default)
        self.cv: Dict[str, Any] = {}  # group -> the engine's cross-validation summary
        self.chart_cache = DecimationCache()  # decimated points of series that did not change
        self.exports: List[str] = []  # files written by s / e
        self._version = -1
        self._last_redraw = 0.0
        self._last_periodic = -math.inf
        self._diag_busy = False
        self._diag_again = False
        self._diag_version = -1
        self._exports_n = 0
        self.redraws = 0  # full refreshes done (for tests and the bench)

    # -- layout ------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        yield RunsTable(id="runs")
        with ContentSwitcher(initial="main"):
            with Horizontal(id="main"):
                yield ChartView(self._chart_spec, id="chart")
                with Vertical(id="side"):
                    yield FindingsList(id="findings")
                    yield DecisionPathView(id="path")
            yield GradientsView(id="grads")
            yield JobView(id="job")
        yield Footer()

    def on_mount(self) -> None:
        self._apply_width(self.size.width)
        self.query_one(RunsTable).focus()
        self._tick()
        self.set_interval(self.interval, self._tick)

    def on_resize(self, event) -> None:
        self._apply_width(event.size.width)

    def _apply_width(self, width: int) -> None:
        narrow = width < 120
        if self.has_class("-narrow") != narrow:
            self.set_class(narrow, "-narrow")
            self._version = -1  # columns change
            self.call_later(self._tick)

    # -- the timer ---------------------------------------------------------------

    def _tick(self) -> None:
        v = self.store.version
        now = self.clock()
        periodic = now - self._last_periodic >= 5.0
        if v == self._version and not periodic:
            return
        # While the sources read a backlog (history, a burst), redraw once a
        # second: the reading threads need the GIL more than the screen needs
        # a frame every 250 ms. Caught up, every tick draws again.
        mono = _time.monotonic()
        catching_up = bool(getattr(self.ingest, "catching_up", False))
        if catching_up and mono - self._last_redraw < 1.0 and not periodic:
            return
        if v != self._version:
            self._diagnose()
        self._version = v
        self._last_periodic = now
        self._last_redraw = mono
        self.refresh_views()

    def refresh_views(self) -> None:
        """Redraw everything from the store (cheap: bounded by the screen)."""
        self.redraws += 1
        self._refresh_runs()
        self._refresh_findings()
        self.query_one("#chart", ChartView).refresh()
        if self.query_one(ContentSwitcher).current == "grads":
            self.query_one(GradientsView).show(self.focus_run())
        self._refresh_job()
        self._refresh_status()

    # -- runs --------------------------------------------------------------------

    def all_runs(self) -> List[Any]:
        return order_runs(list(self.store.runs.values()))

    def shown_runs(self) -> List[Any]:
        runs = self.all_runs()
        if self.filter:
            try:
                rx = re.compile(self.filter)
            except re.error:
                return runs
            runs = [r for r in runs if rx.search(r.name) or rx.search(r.run_id)]
        return runs

    def run_by_key(self, key: Optional[str]) -> Optional[Any]:
        if key is None:
            return None
        for run in list(self.store.runs.values()):
            if _key_of(run) == key:
                return run
        return None

    def group_members(self, name: Optional[str]) -> List[Any]:
        """The shown runs of fold group ``name``, by fold."""
        if name is None:
            return []
        return [r for r in self.shown_runs() if run_group(r) == name]

    def cursor_group(self) -> Optional[str]:
        """The group of the highlighted row: a group row's, or a fold's."""
        key = self.query_one(RunsTable).cursor_key()
        g = group_of_key(key)
        if g is not None:
            return g
        run = self.run_by_key(key)
        return run_group(run) if run is not None else None

    def focus_run(self) -> Optional[Any]:
        table = self.query_one(RunsTable)
        key = table.cursor_key()
        run = self.run_by_key(key)
        if run is None:
            members = self.group_members(group_of_key(key)) or self.job_ranks(job_of_key(key))
            if members:
                return members[0]
            shown = self.shown_runs()
            run = shown[0] if shown else None
        return run

    def chart_runs(self) -> List[Any]:
        """The runs drawn: the selection, else the highlighted run (on a
        group row: every fold of the group)."""
        runs = [r for r in (self.run_by_key(k) for k in self.selected) if r is not None]
        if runs:
            return runs
        key = self.query_one(RunsTable).cursor_key()
        members = self.group_members(group_of_key(key)) or self.job_ranks(job_of_key(key))
        if members:
            return members[:12]
        run = self.focus_run()
        return [run] if run is not None else []

    def cv_summary(self, name: str, members: Sequence[Any]) -> Any:
        """The group's cross-validation summary: the engine's, else one made
        here from the folds' best validation losses."""
        summary = self.cv.get(name)
        return summary if summary is not None else local_cv(name, members)

    def _refresh_runs(self) -> None:
        table = self.query_one(RunsTable)
        now = self.clock()
        baseline = self.run_by_key(self.baseline_key)
        worst = worst_by_run(self.findings, self.store.runs.values())
        rows = []
        width = 22 if self.has_class("-narrow") else 32
        for kind, item in job_layout(layout_rows(self.shown_runs(), self.collapsed), self.expanded_jobs):
            if kind == "job":
                run_id, ranks = item
                n_sel = sum(1 for r in ranks if _key_of(r) in self.selected)
                rows.append((job_key(run_id), job_row(run_id, ranks, now, run_id in self.expanded_jobs, n_sel,
                                                      worst_of(worst, ranks), name_width=width,
                                                      silent_after=self.silent_after)))
                continue
            if kind == "group":
                name, members = item
                n_sel = sum(1 for r in members if _key_of(r) in self.selected)
                rows.append((group_key(name), group_row(name, members, now, name in self.collapsed, n_sel,
                                                        self.cv_summary(name, members), worst_of(worst, members),
                                                        name_width=width, silent_after=self.silent_after)))
                continue
            run = item
            key = _key_of(run)
            rows.append((key, run_row(run, now, key in self.selected, baseline, worst.get(run.key),
                                      name_width=width)))
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
        problems = getattr(self.ingest, "problem_count", 0) if self.ingest is not None else 0
        if problems:
            t.append("  %d unreadable line%s" % (problems, "" if problems == 1 else "s"), "#fff176")
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

    # -- findings ----------------------------------------------------------------

    def _diagnose(self) -> None:
        if self.diagnoser is None:
            return
        if not self.threaded:
            findings, paths, cv = self._diagnose_once()
            self._diagnosed(findings, paths, cv=cv)
            return
        if self._diag_busy:
            self._diag_again = True
            return
        self._diag_busy = True
        self.run_worker(self._diagnose_thread, thread=True, group="diagnose", exit_on_error=False)

    def _diagnose_once(self) -> Tuple[List[Any], Dict[Any, Any], Dict[str, Any]]:
        engine = self.diagnoser
        result = engine.update()
        findings = engine_findings(engine, result)
        cv: Dict[str, Any] = {}
        if hasattr(engine, "cv_summaries"):
            try:
                cv = {str(c.group): c for c in engine.cv_summaries()}
            except Exception:  # noqa: BLE001 - a summary is a nicety
                cv = {}
        paths: Dict[Any, Any] = {}
        if hasattr(engine, "decision_path"):
            for run in list(self.store.runs.values()):
                try:
                    paths[run.key] = engine.decision_path(run.key)
                except Exception:  # noqa: BLE001 - a path is a nicety
                    paths[run.key] = None
        return findings, paths, cv

    def _diagnose_thread(self) -> None:
        findings: List[Any] = []
        paths: Dict[Any, Any] = {}
        cv: Dict[str, Any] = {}
        try:
            findings, paths, cv = self._diagnose_once()
        except Exception as e:  # noqa: BLE001
            findings, paths, cv = list(self.findings), dict(self.paths), dict(self.cv)
            try:
                self.call_from_thread(self.notify, "diagnosis failed: %s" % safe(e), severity="error")
            except Exception:  # noqa: BLE001
                pass
        try:
            self.call_from_thread(self._diagnosed, findings, paths, True, cv)
        except Exception:  # noqa: BLE001 - the app is closing
            self._diag_busy = False

    def _diagnosed(self, findings: List[Any], paths: Dict[Any, Any], from_thread: bool = False,
                   cv: Optional[Dict[str, Any]] = None) -> None:
        self.findings = findings
        self.paths = paths
        if cv is not None:
            self.cv = cv
        if from_thread:
            self._diag_busy = False
            if self._diag_again:
                self._diag_again = False
                self._diagnose()
        if self.chosen is not None:
            cid = getattr(self.chosen, "id", None)
            self.chosen = next((f for f in findings if f is self.chosen or (cid and getattr(f, "id", None) == cid)),
                               None)
        if self.is_mounted:
            self._refresh_findings()
            self._refresh_runs()
            self._refresh_status()
            self.query_one("#chart", ChartView).refresh()

    def _run_names(self) -> Dict[Any, str]:
        return {r.key: r.name for r in list(self.store.runs.values())}

    def _refresh_findings(self) -> None:
        fl = self.query_one(FindingsList)
        fl.set_findings(self.findings, self._run_names(), detail=not self.has_class("-narrow"))
        runs = self.chart_runs()
        view = self.query_one(DecisionPathView)
        if not runs:
            view.show([], [])
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

    def on_findings_list_chosen(self, message: FindingsList.Chosen) -> None:
        self.choose_finding(message.finding)

    def choose_finding(self, finding: Any) -> None:
        """Focus the chart on a finding's evidence: its runs, its step."""
        self.chosen = finding
        runs = []
        for ref in finding_runs(finding):
            for run in list(self.store.runs.values()):
                if matches_run(ref, run):
                    runs.append(run)
                    break
        if runs:
            self.selected = [_key_of(r) for r in runs]
            self.query_one(RunsTable).move_to_key(_key_of(runs[0]))
        step = getattr(finding, "step", None)
        self.view.x_kind = "step"
        self.view.view = (0.0, 1.0)
        if isinstance(step, int) and runs:
            ext = x_extent(runs, self.view.metric, "step")
            if ext is not None and ext[1] > ext[0]:
                c = (step - ext[0]) / (ext[1] - ext[0])
                if 0.0 <= c <= 1.0:
                    self.view = self.view.zoom(0.6, centre=c) if c < 0.7 else self.view
        self.refresh_views()

    def _onsets(self, runs: Sequence[Any]) -> List[Tuple[Any, int, str]]:
        out = []
        chosen = self.chosen
        if chosen is not None:
            fr = [r for r in runs if any(matches_run(ref, r) for ref in finding_runs(chosen)[:1])]
            if fr and getattr(chosen, "step", None) is not None:
                out.append((fr[0], chosen.step, "%s @%s" % (finding_title(chosen), chosen.step)))
                return out
        worst = worst_by_run(self.findings, runs[:1])
        for run in runs[:1]:
            f = worst.get(run.key)
            if f is not None and getattr(f, "step", None) is not None and str(getattr(f, "severity", "")) != "info":
                out.append((run, f.step, "%s @%s" % (finding_title(f), f.step)))
        return out

    # -- the chart ---------------------------------------------------------------

    def _chart_spec(self, px_width: int) -> ChartSpec:
        runs = self.chart_runs()
        spec = build_chart(runs, self.view, px_width, baseline=self.run_by_key(self.baseline_key),
                           onsets=self._onsets(runs), cache=self.chart_cache)
        spec.x_format = self.x_format
        return spec

    def _chart_changed(self) -> None:
        self.query_one("#chart", ChartView).refresh()
        self._refresh_findings()
        self._refresh_status()

    # -- actions -----------------------------------------------------------------

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if not self.selected:
            self.chosen = None
        self._chart_changed()
        if self.query_one(ContentSwitcher).current == "grads":
            self.query_one(GradientsView).show(self.focus_run())
        self._refresh_job()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        key = self.query_one(RunsTable).cursor_key()
        if group_of_key(key) is not None or job_of_key(key) is not None:
            self.action_toggle_group()
            return
        if key is not None:
            self.selected = [key]
            self.chosen = None
            self.refresh_views()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(KEYS))

    def action_toggle_select(self) -> None:
        key = self.query_one(RunsTable).cursor_key()
        if key is None:
            return
        g = group_of_key(key)
        j = job_of_key(key)
        if g is not None or j is not None:  # a group row: all its folds (a job row: its ranks), or none
            keys = [_key_of(r) for r in (self.group_members(g) if g is not None else self.job_ranks(j))]
            if keys and all(k in self.selected for k in keys):
                self.selected = [k for k in self.selected if k not in keys]
            else:
                self.selected += [k for k in keys if k not in self.selected]
            self.refresh_views()
            return
        if key in self.selected:
            self.selected.remove(key)
        else:
            self.selected.append(key)
        self.refresh_views()

    def action_select_all(self) -> None:
        shown = [_key_of(r) for r in self.shown_runs()]
        self.selected = [] if self.selected else shown
        self.refresh_views()

    def action_toggle_group(self) -> None:
        """Collapse the fold group of the highlighted row into its group row, or expand it."""
        j = self.cursor_job()
        if j is not None and self.cursor_group() is None:  # a multi-rank job: its ranks, or one row
            self.expanded_jobs.symmetric_difference_update({j})
            self._refresh_runs()
            self.query_one(RunsTable).move_to_key(job_key(j))
            self._chart_changed()
            return
        g = self.cursor_group()
        if g is None:
            self.notify("not in a fold group (runs tagged group/fold) or a multi-rank job", timeout=2)
            return
        if g in self.collapsed:
            self.collapsed.discard(g)
        else:
            self.collapsed.add(g)
        self._refresh_runs()
        self.query_one(RunsTable).move_to_key(group_key(g))
        self._chart_changed()

    def action_baseline(self) -> None:
        key = self.query_one(RunsTable).cursor_key()
        if key is None:
            return
        if group_of_key(key) is not None:
            self.notify("the baseline is a run: highlight one of the folds", timeout=2)
            return
        self.baseline_key = None if self.baseline_key == key else key
        run = self.run_by_key(self.baseline_key)
        if self.diagnoser is not None and hasattr(self.diagnoser, "baseline"):
            # a fresh engine re-reads every run against the new baseline
            try:
                self.diagnoser = type(self.diagnoser)(self.store, baseline=run.run_id if run else None)
            except TypeError:
                self.diagnoser.baseline = run.run_id if run else None
            self._diagnose()
        self.notify("baseline: %s" % (safe(run.name) if run else "none"), timeout=2)
        self.refresh_views()

    def action_filter(self) -> None:
        def done(pattern: Optional[str]) -> None:
            if pattern is not None:
                self.filter = pattern
                self.refresh_views()

        self.push_screen(FilterScreen(self.filter), done)

    def _metrics(self) -> List[str]:
        return metric_names(list(self.store.runs.values()))

    def action_pick_metric(self) -> None:
        def done(metric: Optional[str]) -> None:
            if metric:
                self.set_metric(metric)

        self.push_screen(MetricPicker(self._metrics(), self.view.metric), done)

    def action_next_metric(self) -> None:
        names = self._metrics()
        if names:
            i = names.index(self.view.metric) if self.view.metric in names else -1
            self.set_metric(names[(i + 1) % len(names)])

    def set_metric(self, metric: str) -> None:
        self.view.metric = metric
        self.view.view = (0.0, 1.0)
        self._chart_changed()

    def action_smoothing(self, direction: int) -> None:
        w = self.view.smoothing
        if direction > 0:
            nxt = [s for s in SMOOTHING_STEPS if s > w + 1e-9]
            self.view.smoothing = nxt[0] if nxt else SMOOTHING_STEPS[-1]
        else:
            prv = [s for s in SMOOTHING_STEPS if s < w - 1e-9]
            self.view.smoothing = prv[-1] if prv else 0.0
        self._chart_changed()

    def action_toggle_raw(self) -> None:
        self.view.show_raw = not self.view.show_raw
        self._chart_changed()

    def action_log_y(self) -> None:
        self.view.log_y = not self.view.log_y
        self._chart_changed()

    def action_x_axis(self) -> None:
        i = X_KINDS.index(self.view.x_kind) if self.view.x_kind in X_KINDS else 0
        self.view.x_kind = X_KINDS[(i + 1) % len(X_KINDS)]
        self.view.view = (0.0, 1.0)
        self._chart_changed()

    def action_zoom(self, factor: float) -> None:
        self.view = self.view.zoom(float(factor))
        self._chart_changed()

    def action_pan(self, fraction: float) -> None:
        self.view = self.view.pan(float(fraction))
        self._chart_changed()

    def on_chart_view_wheel(self, message: ChartView.Wheel) -> None:
        """The mouse wheel over the chart: zoom on x around the pointer, or pan."""
        if message.chart.id != "chart":
            return
        if message.pan:
            self.view = self.view.pan(0.1 * message.pan)
        elif message.zoom:
            self.view = self.view.zoom_at(0.8 if message.zoom < 0 else 1.25, message.pos)
        else:
            return
        self._chart_changed()

    def action_reset_zoom(self) -> None:
        self.view.view = (0.0, 1.0)
        self._chart_changed()

    def action_focus_findings(self) -> None:
        if self.query_one(ContentSwitcher).current != "main":
            self.query_one(ContentSwitcher).current = "main"
        self.query_one(FindingsList).focus()

    # -- multi-rank jobs ---------------------------------------------------------

    def job_ranks(self, run_id: Optional[str]) -> List[Any]:
        """The shown ranks of multi-rank job ``run_id``, by rank."""
        return job_members(self.shown_runs(), run_id)

    def cursor_job(self) -> Optional[str]:
        """The job of the highlighted row: a job row's, or a rank's."""
        key = self.query_one(RunsTable).cursor_key()
        j = job_of_key(key)
        if j is not None:
            return j
        run = self.run_by_key(key)
        return job_of(run) if run is not None else None

    def _refresh_job(self) -> None:
        if self.query_one(ContentSwitcher).current == "job":
            self.query_one(JobView).show(self.job_ranks(self.cursor_job()), self.findings, self.clock(),
                                         self.silent_after)

    def action_toggle_job(self) -> None:
        """The job view (one line per rank, per-rank step times) / back."""
        sw = self.query_one(ContentSwitcher)
        sw.current = "job" if sw.current != "job" else "main"
        if sw.current == "job":
            self._refresh_job()
        else:
            self.query_one("#chart", ChartView).refresh()

    def action_toggle_grads(self) -> None:
        sw = self.query_one(ContentSwitcher)
        sw.current = "grads" if sw.current != "grads" else "main"
        if sw.current == "grads":
            self.query_one(GradientsView).show(self.focus_run())
        else:
            self.query_one("#chart", ChartView).refresh()

    def _next_path(self, stem: str, suffix: str) -> Path:
        self._exports_n += 1
        return self.out_dir / ("%s-%d%s" % (stem, self._exports_n, suffix))

    def action_save_svg(self) -> None:
        svg = self.export_screenshot()
        path = self._next_path("tui-monitor-screen", ".svg")
        self._write_in_thread(path, lambda p: write_text(p, svg), "screen saved")

    def action_export_csv(self) -> None:
        runs = self.chart_runs()
        rows = csv_rows(runs, self.view.metric)  # copies of the arrays: the writer thread owns them
        metric = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.view.metric)[:40] or "metric"
        path = self._next_path("tui-monitor-%s" % metric, ".csv")
        self._write_in_thread(path, lambda p: write_csv(p, rows), "series exported")

    def _write_in_thread(self, path: Path, write: Callable[[Path], Any], what: str) -> None:
        def work() -> None:
            try:
                final = write(path)
            except OSError as e:
                self.call_from_thread(self.notify, "could not write %s: %s" % (safe(path), safe(e.strerror or e)),
                                      severity="error")
                return
            self.exports.append(str(final))
            self.call_from_thread(self.notify, "%s: %s" % (what, safe(final)), timeout=4)

        self.run_worker(work, thread=True, group="export", exit_on_error=False)

    # -- command palette ---------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        commands = palette_commands(self)
        for title, help_text, cb in commands:
            yield SystemCommand(title, help_text, cb)


def run_app(store: Any, ingest: Any = None, **kw: Any) -> int:
    """Run the monitor on ``store`` until the user quits; returns 0."""
    app = MonitorApp(store, ingest, **kw)
    app.run()
    return 0
