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

The app is the composition: :mod:`.panels` redraws, :mod:`.groups` handles
fold groups and jobs, :mod:`.diagnosis_worker` runs the engine,
:mod:`.run_actions`, :mod:`.chart_actions` and :mod:`.export_actions` are the
keys; here are the layout, the timer and which runs the views show.
"""
from __future__ import annotations

import math
import re
import time as _time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional

from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer

from .chart_actions import ChartActions
from .chartdata import DecimationCache, RunColors, ViewState
from .diagnosis_worker import DiagnosisWorker
from .export_actions import ExportActions
from .findings import make_diagnoser
from .groups import GroupRows
from .jobview import last_value, telling_ranks
from .keys import BINDINGS as _BINDINGS, KEYS, palette_commands
from .panels import Panels
from .run_actions import RunActions
from .widgets import ChartView, DecisionPathView, FindingsList, GradientsView, RunsTable
from .widgets.jobs import JobView
from .widgets.steady import SteadyStatic
from .rowkeys import group_of_key, job_of_key
from .widgets.runs import order_runs

__all__ = ["MonitorApp", "run_app", "KEYS"]


#: Most runs one chart draws at once: more curves cannot be told apart.
MAX_CHART_RUNS = 12


class MonitorApp(Panels, GroupRows, DiagnosisWorker, RunActions, ChartActions, ExportActions, App):
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
                 x_format: Optional[Callable[[float], str]] = None, baseline: Optional[str] = None,
                 task: Optional[Dict[str, Any]] = None) -> None:
        super().__init__()
        self.store = store
        self.ingest = ingest
        self.clock = clock
        self.interval = interval
        self.threaded = threaded
        self.out_dir = Path(out_dir) if out_dir else Path.cwd()
        self.silent_after = silent_after
        self.x_format = x_format
        self.diagnoser = make_diagnoser(store, baseline, task) if diagnoser == "auto" else diagnoser
        self.view = ViewState()
        self.selected: List[str] = []  # row keys, in the order selected
        self.baseline_key: Optional[str] = None
        self.baseline_wanted = baseline  # --baseline: marked when a run of that name or id shows up
        self.filter = ""
        self.findings: List[Any] = []
        self.paths: Dict[Any, Any] = {}
        self.chosen: Optional[Any] = None
        self.collapsed: set = set()  # fold groups shown as one row
        self.expanded_jobs: set = set()  # multi-rank jobs shown rank by rank (folded into one row by default)
        self.cv: Dict[str, Any] = {}  # group -> the engine's cross-validation summary
        self.chart_cache = DecimationCache()  # decimated points of series that did not change
        self.run_colors = RunColors()  # one colour per run drawn: the chart's and the selection mark's
        self.exports: List[str] = []  # files written by s / e
        self._version = -1
        self._last_redraw = 0.0
        self._table_runs, self._table_at = -1, 0.0
        self._last_periodic = -math.inf
        self._diag_busy = False
        self._diag_again = False
        self._diag_version = -1
        self._exports_n = 0
        self.redraws = 0  # full refreshes done (for tests and the bench)

    # -- layout --------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield SteadyStatic(id="status")
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

    # -- the timer -----------------------------------------------------------------

    def notify(self, message: str, *, markup: bool = False, **kw: Any) -> None:
        """Notifications here carry run names, paths and error texts: data,
        never markup (Textual's default would style ``[bold]`` in a run name
        and fail on ``[/]``)."""
        super().notify(message, markup=markup, **kw)

    def _tick(self) -> None:
        v = self.store.version
        now = self.clock()
        periodic = now - self._last_periodic >= 5.0
        if v == self._version and not periodic:
            if self._diag_again:
                self._diagnose()  # a request held back by the rate limit
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
        self.refresh_views(timer=True)

    def refresh_views(self, timer: bool = False) -> None:
        """Redraw everything from the store (cheap: bounded by the screen).
        From the timer, the runs table's values refresh once a second: each
        refresh rebuilds every run's cells, and a busy run's step changes on
        every tick, faster than anyone reads it; new runs show at once."""
        self.redraws += 1
        mono = _time.monotonic()
        runs = len(self.store.runs)
        if self.baseline_wanted and self.baseline_key is None and runs != self._table_runs:
            self._mark_wanted_baseline()  # looked for as runs arrive, not every tick
        if not timer or runs != self._table_runs or mono - self._table_at >= 1.0:
            self._table_runs, self._table_at = runs, mono
            self._refresh_runs()
        self._refresh_findings()
        self.query_one("#chart", ChartView).refresh()
        if self.query_one(ContentSwitcher).current == "grads":
            self.query_one(GradientsView).show(self.focus_run())
        self._refresh_job()
        self._refresh_status()

    # -- runs ----------------------------------------------------------------------

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
        run_id, sep, rank = key.rpartition("\x00")  # the inverse of RunsTable.row_key
        return self.store.runs.get((run_id, int(rank))) if sep and rank.isdigit() else None

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
        group row: every fold of the group; on a job row, its ranks)."""
        return self.chart_pick()[0]

    def chart_pick(self) -> "tuple[List[Any], str]":
        """:meth:`chart_runs` and a note saying which ranks a big job's chart
        shows: past :data:`MAX_CHART_RUNS`, the ranks with the highest latest
        value of the metric (a NaN first), the median one and the lowest, so
        the rank that went wrong is never left out."""
        runs = [r for r in (self.run_by_key(k) for k in self.selected) if r is not None]
        if runs:
            return runs, ""
        key = self.query_one(RunsTable).cursor_key()
        folds = self.group_members(group_of_key(key))
        if folds:
            return folds[:MAX_CHART_RUNS], ""
        ranks = self.job_ranks(job_of_key(key))
        if len(ranks) > MAX_CHART_RUNS:
            metric = self.view.metric
            shown = telling_ranks(ranks, lambda r: last_value(r, metric), MAX_CHART_RUNS)
            return shown, "%d of %d ranks: highest, median, lowest" % (len(shown), len(ranks))
        if ranks:
            return ranks, ""
        run = self.focus_run()
        return ([run] if run is not None else []), ""

    # -- command palette -----------------------------------------------------------

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
