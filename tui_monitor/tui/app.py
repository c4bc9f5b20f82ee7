"""The monitor app: the layout, the clock and the diagnosis worker, over a
:class:`~tui_monitor.store.Store` that sources fill from their own threads.

The widgets own their state and their actions: the runs panel
(:class:`~.widgets.RunsPanel`: which runs are shown, selected, the baseline),
the chart (:class:`~.widgets.ChartPanel`: metric, smoothing, zoom, scale, x
axis) and the findings (:class:`~.widgets.FindingsPanel`). They report with
messages; the app hands each what it needs from the others. Every key comes
from one table (:mod:`.actions`), which also makes the help and the palette.

Threads: the UI thread only *reads* the store. A timer polls
``store.version`` (a dirty flag); only when it moved (or every few seconds,
for "silent for N minutes") is anything redrawn, so a burst of records costs
one redraw. The engine runs in a thread worker, one update at a time, and
replies with a :class:`MonitorApp.Diagnosed` message; exports are written by
thread workers; one handler reports any worker's failure.
"""
from __future__ import annotations

import math
import time as _time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional

from textual import events, on, work
from textual.app import App, ComposeResult, SystemCommand
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer
from textual.worker import Worker, WorkerState

from ..diagnose.reference import run_ref
from ._text import NAME_MAX, safe
from .actions import KEYS, NAMESPACES, bindings, palette_entries
from .alerts import Alerts
from .diagnosis import DIAGNOSE_EVERY, Diagnosis, diagnose_once
from .export import write_text
from .findings import finding_runs, matches_run
from .screens import FindingScreen, HelpScreen, ProblemsScreen
from .status import status_text
from .waiting import SourcesState, sources_state, waiting_text
from .widgets import ChartPanel, FindingsList, FindingsPanel, GradientsView, RunsPanel
from .widgets.findings import decision_path_text
from .widgets.jobs import JobView
from .widgets.steady import SteadyStatic

__all__ = ["MonitorApp", "run_app", "KEYS"]

#: Below this many columns the layout stacks and the findings show headlines only.
NARROW = 120


class ExportError(Exception):
    """A file the user asked for could not be written (the message says which and why)."""


class MonitorApp(App):
    """The TUI. ``store``: the store to show (filled by ``ingest`` or anyone
    else, from other threads). ``diagnoser``: ``"auto"`` for the diagnosis
    engine, None for none, or an object with ``update()``. ``clock``: the
    time used for "silent for N minutes" (inject a fixed one for snapshots).
    ``threaded``: run the engine in a thread worker (False: on the timer,
    for deterministic tests). ``out_dir``: where ``s`` and ``e`` write.
    ``bell``: ring (and ask the terminal for a desktop notification) on a
    new critical finding; ``notifier``: ``--notify``'s (see :mod:`.alerts`)."""

    TITLE = "tui-monitor"
    CSS = """
    Screen { layout: vertical; }
    #status { height: 1; background: $panel; color: $text; padding: 0 1; }
    #runs { height: auto; max-height: 35%; }
    #main { height: 1fr; }
    #chart { width: 1fr; }
    #side { width: 45%; min-width: 40; border-left: solid $primary-darken-2; }
    #side:focus-within { border-left: heavy $accent; }
    #waiting { height: 1fr; padding: 1 2; }
    App.-narrow #main { layout: vertical; }
    App.-narrow #side { width: 100%; height: 40%; min-height: 5; border-left: none; }
    App.-narrow #runs { max-height: 30%; }
    ContentSwitcher { height: 1fr; }
    """

    BINDINGS = bindings()

    class Diagnosed(Message):
        """The engine's answer, from its worker."""

        def __init__(self, diagnosis: Diagnosis) -> None:
            super().__init__()
            self.diagnosis = diagnosis

    class SourcesChecked(Message):
        """What the sources follow and listen on (checked off the UI thread)."""

        def __init__(self, state: SourcesState) -> None:
            super().__init__()
            self.state = state

    def __init__(self, store: Any, ingest: Any = None, *, diagnoser: Any = "auto",
                 clock: Callable[[], float] = _time.time, interval: float = 0.25, threaded: bool = True,
                 out_dir: Optional[str] = None, silent_after: float = 30.0,
                 x_format: Optional[Callable[[float], str]] = None, baseline: Optional[str] = None,
                 task: Optional[Dict[str, Any]] = None, bell: bool = True, notifier: Any = None) -> None:
        super().__init__()
        self._action_targets = set(self._action_targets) | set(NAMESPACES)
        self.store = store
        self.ingest = ingest
        #: Whether the waiting screen shows (no run yet): keys that need a run are off.
        self.waiting = False
        self.clock = clock
        self.interval = interval
        self.threaded = threaded
        self.out_dir = Path(out_dir) if out_dir else Path.cwd()
        self.silent_after = silent_after
        self.x_format = x_format
        self.baseline_wanted = baseline
        self.alerts = Alerts(enabled=bell, notifier=notifier)
        self.diagnoser = self.alerts.engine(store, ingest, baseline=baseline, task=task) if diagnoser == "auto" \
            else diagnoser
        self.diagnosis = Diagnosis([], {}, {})
        self.exports: List[str] = []  # files written by s / e
        self.sources = SourcesState()
        self._version = -1
        self._last_redraw = 0.0
        self._table_runs, self._table_at = -1, 0.0
        self._table_cost = 0.0  # seconds the last rebuild of the runs' rows took
        self._last_periodic = -math.inf
        self._diag_busy = False
        self._diag_again = False
        self._diag_started = -math.inf
        self._sources_at = -math.inf
        self._exports_n = 0
        self.redraws = 0  # full refreshes done (for tests and the bench)

    # -- layout --------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield SteadyStatic(id="status")
        yield RunsPanel(self.store, clock=self.clock, silent_after=self.silent_after,
                        baseline=self.baseline_wanted, id="runs")
        with ContentSwitcher(initial="main"):
            with Horizontal(id="main"):
                yield ChartPanel(self.store, x_format=self.x_format, id="chart")
                yield FindingsPanel(id="side")
            yield GradientsView(id="grads")
            yield JobView(id="job")
            yield SteadyStatic(id="waiting")
        yield Footer()

    @property
    def chart(self) -> ChartPanel:
        return self.query_one("#chart", ChartPanel)

    @property
    def runs_panel(self) -> RunsPanel:
        return self.query_one("#runs", RunsPanel)

    @property
    def findings_panel(self) -> FindingsPanel:
        return self.query_one("#side", FindingsPanel)

    @property
    def findings(self) -> List[Any]:
        return self.diagnosis.findings

    @property
    def narrow(self) -> bool:
        return self.has_class("-narrow")

    def on_mount(self) -> None:
        self._apply_width(self.size.width)
        self.runs_panel.focus()
        self._tick()
        self.set_interval(self.interval, self._tick)

    def on_resize(self, event) -> None:
        self._apply_width(event.size.width)

    def _apply_width(self, width: int) -> None:
        narrow = width < NARROW
        if self.narrow != narrow:
            self.set_class(narrow, "-narrow")
            self.runs_panel.narrow = narrow
            self.query_one(Footer).compact = narrow
            self._version = -1  # columns change
            self.call_later(self._tick)

    def show_view(self, name: str) -> None:
        """Switch the area under the runs to ``name`` (main, grads, job)."""
        switcher = self.query_one(ContentSwitcher)
        if name == "main" and not self.store.runs:
            name = "waiting"
        if switcher.current != name:
            switcher.current = name
        self._refresh_view()

    def check_action(self, action: str, parameters: tuple) -> Optional[bool]:
        """The views (g, j) are off while the waiting screen shows: there is
        nothing to show in them yet (the runs', chart's and findings' keys
        say the same, each in its own widget)."""
        return not (action == "toggle_view" and self.waiting)

    def action_toggle_view(self, name: str) -> None:
        """``g`` / ``j``: the gradient and system view or the job view, and back."""
        self.show_view("main" if self.query_one(ContentSwitcher).current == name else name)

    def _refresh_view(self) -> None:
        current = self.query_one(ContentSwitcher).current
        if current == "grads":
            self.query_one(GradientsView).show(self.runs_panel.focus_run())
        elif current == "job":
            self.query_one(JobView).show(self.runs_panel.job_ranks(self.runs_panel.cursor_job()), self.findings,
                                         self.clock(), self.silent_after)
        elif current == "waiting":
            self.query_one("#waiting", SteadyStatic).update(waiting_text(self.sources))
        else:
            self.chart.refresh()

    # -- the clock -----------------------------------------------------------------

    def notify(self, message: str, *, markup: bool = False, **kw: Any) -> None:
        """Notifications here carry run names, paths and error texts: data,
        never markup (Textual's default would style ``[bold]`` in a run name
        and fail on ``[/]``)."""
        super().notify(message, markup=markup, **kw)

    def _tick(self) -> None:
        for text in self.alerts.failures():  # --notify's command failed (said once)
            self.notify(text, severity="error", timeout=10)
        v = self.store.version
        now = self.clock()
        periodic = now - self._last_periodic >= 5.0
        if not self.store.runs:
            self._check_sources()
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
        From the timer, the runs table's values refresh once a second: a
        busy run's step changes on every tick, faster than anyone reads it."""
        self.redraws += 1
        mono = _time.monotonic()
        runs = len(self.store.runs)
        # new runs show at once, unless rebuilding the rows is costly (a
        # sweep of thousands arriving): then at most a fifth of the UI
        # thread's time goes to it, and the readers keep the rest
        due = mono - self._table_at >= max(1.0, 4 * self._table_cost)
        if not timer or due or (runs != self._table_runs and mono - self._table_at >= 4 * self._table_cost):
            self._table_runs, self._table_at = runs, mono
            self.runs_panel.refresh_rows(self.findings, self.diagnosis.cv)
            self._table_cost = _time.monotonic() - mono
        switcher = self.query_one(ContentSwitcher)
        if switcher.current == "waiting" and runs:
            switcher.current = "main"
        elif switcher.current == "main" and not runs:
            switcher.current = "waiting"
        if self.waiting != (switcher.current == "waiting"):
            self.waiting = switcher.current == "waiting"
            self.refresh_bindings()   # the footer offers only keys that do something now
        if self.runs_panel.display != bool(runs):  # no runs: the waiting screen's words, not an empty table
            self.runs_panel.display = bool(runs)
        self._show_subject()
        self._refresh_view()
        self._refresh_status()

    def _show_subject(self) -> None:
        """Hand the chart and the findings panel what the runs panel points at."""
        panel = self.runs_panel
        fp = self.findings_panel
        subject = panel.subject()._replace(findings=tuple(self.findings), chosen=fp.chosen)
        self.chart.show(subject)
        runs = self.chart.drawn()[0]
        names = self._finding_run_names()
        path = decision_path_text(runs, self.findings, self.diagnosis.paths, panel.group_cv)
        fp.show(self.findings, names, detail=not self.narrow, path=path)

    def _finding_run_names(self) -> Dict[Any, str]:
        """Names of the runs the findings cite (not of every run: a sweep
        has thousands)."""
        runs = self.store.runs
        names: Dict[Any, str] = {}
        for f in self.findings:
            for ref in finding_runs(f):
                key = tuple(ref) if isinstance(ref, (list, tuple)) else ref
                run = runs.get(key) if isinstance(key, tuple) else None
                if run is not None:
                    names[key] = run.name[:NAME_MAX + 1]   # shown cut: a megabyte name is not copied about
        return names

    def _refresh_status(self) -> None:
        ingest = self.ingest
        panel = self.runs_panel
        self.query_one("#status", SteadyStatic).update(status_text(
            panel.summary, self.findings, ingest.problem_count if ingest is not None else 0, panel, self.chart.view,
            max(20, self.size.width - 2), badge=self.alerts.badge()))  # the badge: what came since you last looked

    # -- what the widgets report ---------------------------------------------------

    @on(RunsPanel.SubjectChanged)
    def _subject_changed(self, event: RunsPanel.SubjectChanged) -> None:
        if event.by_cursor and not self.runs_panel.selected:
            self.findings_panel.chosen = None
        self._show_subject()
        if self.query_one(ContentSwitcher).current in ("grads", "job"):
            self._refresh_view()
        self._refresh_status()

    @on(RunsPanel.BaselineChanged)
    def _baseline_changed(self, event: RunsPanel.BaselineChanged) -> None:
        """A fresh engine re-reads every run against the new baseline (the
        same task); one rank of a job, not the whole job."""
        if self.diagnoser is not None and hasattr(self.diagnoser, "baseline"):
            ref = run_ref(event.run) if event.run is not None else None
            try:
                self.diagnoser = type(self.diagnoser)(self.store, baseline=ref,
                                                      task=getattr(self.diagnoser, "task", None))
            except TypeError:
                self.diagnoser.baseline = ref
            self._diagnose()

    @on(ChartPanel.ViewChanged)
    def _view_changed(self) -> None:
        self._show_subject()
        self._refresh_status()

    def leave_findings(self) -> None:
        """esc in the findings: the runs take the focus now (set_focus, not
        focus(): the keys already read after esc are the runs')."""
        self.screen.set_focus(self.runs_panel)

    @on(FindingsList.Chosen)
    @on(FindingScreen.Shown)
    def _finding_chosen(self, message: FindingsList.Chosen) -> None:
        self.choose_finding(message.finding)

    def choose_finding(self, finding: Any) -> None:
        """Focus the chart on a finding's evidence: its runs, its step."""
        self.findings_panel.chosen = finding
        runs = []
        for ref in finding_runs(finding):
            run = next((r for r in list(self.store.runs.values()) if matches_run(ref, r)), None)
            if run is not None:
                runs.append(run)
        if runs:
            self.runs_panel.select_keys([RunsPanel.row_key(r) for r in runs])
        self.chart.focus_on_step(runs, getattr(finding, "step", None))
        self.refresh_views()

    # -- the diagnosis ---------------------------------------------------------------

    def _diagnose(self) -> None:
        if self.diagnoser is None:
            return
        if not self.threaded:
            self._apply_diagnosis(diagnose_once(self.diagnoser, self.store))
            return
        now = _time.monotonic()
        if self._diag_busy or now - self._diag_started < DIAGNOSE_EVERY:
            self._diag_again = True  # the timer comes back for it
            return
        self._diag_again = False
        self._diag_started = now
        self._diag_busy = True
        self._diagnose_in_thread()

    @work(thread=True, exclusive=True, group="diagnose", exit_on_error=False)
    def _diagnose_in_thread(self) -> None:
        self.post_message(self.Diagnosed(diagnose_once(self.diagnoser, self.store)))

    @on(Diagnosed)
    def _diagnosed(self, message: Diagnosed) -> None:
        self._diag_busy = False
        self._apply_diagnosis(message.diagnosis)

    def _apply_diagnosis(self, diagnosis: Diagnosis) -> None:
        self.diagnosis = diagnosis
        self.alerts.ring(self.alerts.take().critical, self.bell, self._write_terminal)
        if self.is_mounted:
            self.runs_panel.refresh_rows(diagnosis.findings, diagnosis.cv)
            self._show_subject()
            self._refresh_status()
            self.chart.refresh()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place a worker's failure is reported (the engine's, an export's)."""
        worker = event.worker
        if event.state not in (WorkerState.ERROR, WorkerState.CANCELLED):
            return
        if worker.group == "diagnose":
            self._diag_busy = False
        if event.state == WorkerState.ERROR:
            error = worker.error
            what = "diagnosis failed: " if worker.group == "diagnose" else ""
            self.notify(what + safe(error), severity="error", timeout=8)

    # -- the sources, while there is nothing to show ------------------------------------

    def _check_sources(self) -> None:
        mono = _time.monotonic()
        if self.ingest is not None and mono - self._sources_at >= 2.0:
            self._sources_at = mono
            self._sources_in_thread()

    @work(thread=True, exclusive=True, group="sources", exit_on_error=False)
    def _sources_in_thread(self) -> None:
        self.post_message(self.SourcesChecked(sources_state(self.ingest)))

    @on(SourcesChecked)
    def _sources_checked(self, message: SourcesChecked) -> None:
        if message.state != self.sources:
            self.sources = message.state
            if self.query_one(ContentSwitcher).current == "waiting":
                self._refresh_view()

    # -- alerts ------------------------------------------------------------------------

    def action_toggle_alerts(self) -> None:
        """``n``: the bell and the desktop notification on / off."""
        on = self.alerts.toggle()
        self.notify("alerts on: a bell on a new critical finding" if on else "alerts off (n: on again)", timeout=4)
        self._refresh_status()

    def _write_terminal(self, text: str) -> None:
        """A few bytes for the terminal itself (the desktop escape), in order
        with the frames the driver writes (as Textual's own bell does)."""
        driver = getattr(self, "_driver", None)
        if not self.is_headless and driver is not None:
            driver.write(text)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.MouseDown, events.AppFocus)) and self.alerts.unseen \
                and not getattr(event, "is_forwarded", False):
            self.alerts.looked()  # the user is looking: the header's count starts again
            self._refresh_status()
        await super().on_event(event)

    # -- app-wide actions ------------------------------------------------------------

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(KEYS))

    def action_problems(self) -> None:
        if not isinstance(self.screen, ProblemsScreen):
            self.push_screen(ProblemsScreen(self.stream_problems))

    def stream_problems(self) -> "tuple[list, int]":
        """(the problems kept, how many there were): a copy, no I/O."""
        return self.ingest.recent_problems() if self.ingest is not None else ([], 0)

    def action_save_svg(self) -> None:
        svg = self.export_screenshot()
        self.write_export("tui-monitor-screen", ".svg", lambda p: write_text(p, svg), "screen saved")

    def write_export(self, stem: str, suffix: str, write: Callable[[Path], Any], what: str) -> None:
        """Write ``out_dir/stem-N.suffix`` with ``write(path)`` in a thread
        worker (no file I/O on the UI thread); a notification says where,
        or why not."""
        self._exports_n += 1
        self._write_in_thread(self.out_dir / ("%s-%d%s" % (stem, self._exports_n, suffix)), write, what)

    @work(thread=True, group="export", exit_on_error=False)
    def _write_in_thread(self, path: Path, write: Callable[[Path], Any], what: str) -> None:
        try:
            final = write(path)
        except OSError as e:
            raise ExportError("could not write %s: %s" % (path, e.strerror or e)) from None
        self.exports.append(str(final))
        self.call_from_thread(self.notify, "%s: %s" % (what, safe(final)), timeout=4)

    # -- the command palette ---------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for title, help_text, callback in palette_entries(self.run_action):
            yield SystemCommand(title, help_text, callback)


def run_app(store: Any, ingest: Any = None, **kw: Any) -> int:
    """Run the monitor on ``store`` until the user quits; returns 0."""
    app = MonitorApp(store, ingest, **kw)
    app.run()
    return 0
