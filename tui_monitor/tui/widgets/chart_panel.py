"""The main chart: the widget that owns the chart's view (metric, smoothing,
raw series, log y, x axis, zoom window) as reactives, and its actions.

What it draws comes from outside as a :class:`ChartSubject` (the runs, the
baseline, the findings to mark), set by the app when the runs panel's
cursor or selection or the findings change. Every render hands the view and
the subject to the pure :func:`~tui_monitor.tui.chartdata.build_chart`: the
widget itself draws nothing. A change of the view posts
:class:`ChartPanel.ViewChanged` (the status line shows the view).
"""
from __future__ import annotations

import re
from typing import Any, List, NamedTuple, Optional, Sequence, Tuple

from textual import events
from textual.message import Message
from textual.reactive import reactive

from ..chart import ChartSpec
from ..chartdata import X_KINDS, DecimationCache, ViewState, build_chart, metric_names, x_extent
from ..export import csv_rows, write_csv
from ..findings import onset_marks
from ..jobview import last_value, telling_ranks
from ..screens import MetricPicker
from .chart import ChartView

__all__ = ["ChartPanel", "ChartSubject", "MAX_CHART_RUNS", "SMOOTHING_STEPS"]

#: Smoothing weights the [ and ] keys step through.
SMOOTHING_STEPS = (0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.99)
#: Most runs one chart draws at once: more curves cannot be told apart.
MAX_CHART_RUNS = 12
WHOLE = (0.0, 1.0)


class ChartSubject(NamedTuple):
    """What the chart is about: ``runs`` (the first is the focused run),
    whether they are the ranks of one ``job`` (past :data:`MAX_CHART_RUNS`
    only the telling ones are drawn), the ``baseline`` run, and the findings
    whose onsets are marked (``chosen``: the one the user picked);
    ``colors``: each run's colour by its key (the runs panel's
    :class:`~tui_monitor.tui.chartdata.RunColors`, the same as its selection marks)."""

    runs: Tuple[Any, ...] = ()
    job: bool = False
    baseline: Any = None
    findings: Tuple[Any, ...] = ()
    chosen: Any = None
    colors: Tuple[Tuple[Any, str], ...] = ()


class ChartPanel(ChartView):
    """The chart of the runs the runs panel points at."""

    metric: reactive[str] = reactive("loss", init=False)
    smoothing: reactive[float] = reactive(0.6, init=False)
    show_raw: reactive[bool] = reactive(True, init=False)
    log_y: reactive[bool] = reactive(False, init=False)
    x_kind: reactive[str] = reactive("step", init=False)
    window: reactive[Tuple[float, float]] = reactive(WHOLE, init=False)

    class ViewChanged(Message):
        """The view changed (the status line shows it); only the latest counts."""

        def __init__(self, chart: "ChartPanel") -> None:
            super().__init__()
            self.chart = chart

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, ChartPanel.ViewChanged)

    def __init__(self, store: Any, *, x_format: Any = None, **kw: Any) -> None:
        super().__init__(self._spec, **kw)
        self.store = store
        self.x_format = x_format
        self.subject = ChartSubject()
        self.cache = DecimationCache()  # decimated points of series that did not change

    # -- the view -----------------------------------------------------------------------------------

    @property
    def view(self) -> ViewState:
        """The view as the renderer takes it."""
        return ViewState(metric=self.metric, smoothing=self.smoothing, log_y=self.log_y, x_kind=self.x_kind,
                         view=self.window, show_raw=self.show_raw)

    def _set_window(self, state: ViewState) -> None:
        self.window = state.view

    def _view_changed(self) -> None:
        self.refresh()
        self.post_message(self.ViewChanged(self))

    watch_smoothing = watch_show_raw = watch_log_y = watch_window = _view_changed

    def watch_metric(self) -> None:
        self.window = WHOLE
        self._view_changed()

    def watch_x_kind(self) -> None:
        self.window = WHOLE
        self._view_changed()

    def show(self, subject: ChartSubject) -> None:
        """Draw ``subject`` (redrawn when it differs from the one shown)."""
        if subject != self.subject:
            self.subject = subject
            self.refresh()

    def drawn(self) -> Tuple[List[Any], str]:
        """The runs drawn, and a note saying which ranks a big job's chart
        shows: past :data:`MAX_CHART_RUNS`, the ranks with the highest latest
        value of the metric (a NaN first), the median one and the lowest, so
        the rank that went wrong is never left out."""
        runs = list(self.subject.runs)
        if self.subject.job and len(runs) > MAX_CHART_RUNS:
            metric = self.metric
            shown = telling_ranks(runs, lambda r: last_value(r, metric), MAX_CHART_RUNS)
            return shown, "%d of %d ranks: highest, median, lowest" % (len(shown), len(runs))
        return runs[:MAX_CHART_RUNS] if self.subject.job else runs, ""

    def _spec(self, px_width: int) -> ChartSpec:
        runs, which = self.drawn()
        subject = self.subject
        spec = build_chart(runs, self.view, px_width, baseline=subject.baseline,
                           onsets=onset_marks(subject.findings, subject.chosen, runs), cache=self.cache,
                           colors=dict(subject.colors))
        if which:
            spec.note = "  ".join(n for n in (which, spec.note) if n)
        spec.x_format = self.x_format
        return spec

    def focus_on_step(self, runs: Sequence[Any], step: Optional[int]) -> None:
        """Show ``step`` of ``runs`` (a finding's onset): x by step, zoomed
        in around it when it is not near the end."""
        self.x_kind = "step"
        state = ViewState(metric=self.metric)
        if isinstance(step, int) and runs:
            ext = x_extent(runs, self.metric, "step")
            if ext is not None and ext[1] > ext[0]:
                c = (step - ext[0]) / (ext[1] - ext[0])
                if 0.0 <= c < 0.7:
                    state = state.zoom(0.6, centre=c)
        self.window = state.view

    # -- actions ------------------------------------------------------------------------------------

    def _metrics(self) -> List[str]:
        return metric_names(list(self.store.runs.values()))

    def check_action(self, action: str, parameters: tuple) -> Optional[bool]:
        """Picking a metric is off while no run has come (the waiting screen)."""
        return not (action == "pick_metric" and getattr(self.app, "waiting", False))

    def action_pick_metric(self) -> None:
        def done(metric: Optional[str]) -> None:
            if metric:
                self.metric = metric

        self.app.push_screen(MetricPicker(self._metrics(), self.metric), done)

    def action_next_metric(self) -> None:
        names = self._metrics()
        if names:
            i = names.index(self.metric) if self.metric in names else -1
            self.metric = names[(i + 1) % len(names)]

    def action_smoothing(self, direction: int) -> None:
        w = self.smoothing
        if direction > 0:
            self.smoothing = next((s for s in SMOOTHING_STEPS if s > w + 1e-9), SMOOTHING_STEPS[-1])
        else:
            self.smoothing = next((s for s in reversed(SMOOTHING_STEPS) if s < w - 1e-9), 0.0)

    def action_toggle_raw(self) -> None:
        self.show_raw = not self.show_raw

    def action_log_y(self) -> None:
        self.log_y = not self.log_y

    def action_x_axis(self) -> None:
        i = X_KINDS.index(self.x_kind) if self.x_kind in X_KINDS else 0
        self.x_kind = X_KINDS[(i + 1) % len(X_KINDS)]

    def action_zoom(self, factor: float) -> None:
        self._set_window(self.view.zoom(float(factor)))

    def action_pan(self, fraction: float) -> None:
        self._set_window(self.view.pan(float(fraction)))

    def action_reset_zoom(self) -> None:
        self.window = WHOLE

    def action_export_csv(self) -> None:
        """The series drawn as CSV, written by a thread worker (copies of the
        arrays are taken here: the writer owns them)."""
        rows = csv_rows(self.drawn()[0], self.metric)
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.metric)[:40] or "metric"
        self.app.write_export("tui-monitor-%s" % stem, ".csv", lambda p: write_csv(p, rows), "series exported")

    # -- the mouse wheel: zoom on x around the pointer, or pan ---------------------------------------

    def _wheel(self, event: events.MouseEvent, zoom: int = 0, pan: int = 0) -> None:
        event.stop()
        event.prevent_default()
        if pan:
            self._set_window(self.view.pan(0.1 * pan))
        elif zoom:
            self._set_window(self.view.zoom_at(0.8 if zoom < 0 else 1.25, self.plot_fraction(event.x)))

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        if event.shift:
            self._wheel(event, pan=-1)
        else:
            self._wheel(event, zoom=-1)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        if event.shift:
            self._wheel(event, pan=1)
        else:
            self._wheel(event, zoom=1)

    def on_mouse_scroll_left(self, event: events.MouseScrollLeft) -> None:
        self._wheel(event, pan=-1)

    def on_mouse_scroll_right(self, event: events.MouseScrollRight) -> None:
        self._wheel(event, pan=1)
