"""Actions on the chart: the metric, smoothing, raw series, log y, the x
axis, zoom and pan (keys and the mouse wheel).

A mixin of :class:`~tui_monitor.tui.app.MonitorApp`: each changes its
``view`` state and redraws through ``_chart_changed``.
"""
from __future__ import annotations

from typing import List, Optional

from .chartdata import X_KINDS, metric_names
from .keys import SMOOTHING_STEPS
from .screens import MetricPicker
from .widgets import ChartView

__all__ = ["ChartActions"]


class ChartActions:
    """Keys and mouse events that change the chart's view."""

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
