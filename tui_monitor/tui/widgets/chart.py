"""The chart widget: asks its provider for a :class:`ChartSpec` sized to the
widget and renders it with the pure :class:`LineChart` renderable. The mouse
wheel over it posts :class:`ChartView.Wheel` (zoom at the pointer, or pan with
shift / a horizontal wheel); the app decides what that does."""
from __future__ import annotations

from typing import Callable, Optional

from textual import events
from textual.message import Message
from textual.widget import Widget

from ..chart import Y_AXIS_WIDTH, ChartSpec, LineChart, plot_size

__all__ = ["ChartView"]

Provider = Callable[[int], ChartSpec]


class ChartView(Widget, can_focus=True):
    """``provider(px_width) -> ChartSpec`` is called on each render with the
    plot's width in braille pixel columns; call :meth:`refresh` when the data
    or the view state changed."""

    DEFAULT_CSS = """
    ChartView { height: 1fr; min-height: 6; padding: 0 1 0 0; }
    ChartView:focus { background: $boost; }
    """

    class Wheel(Message):
        """The wheel turned over the chart. ``zoom``: -1 in, +1 out (0: none);
        ``pan``: -1 left, +1 right (0: none); ``pos``: where the pointer is, as
        a fraction of the plot's width (0 = left edge)."""

        def __init__(self, chart: "ChartView", pos: float, zoom: int = 0, pan: int = 0) -> None:
            super().__init__()
            self.chart = chart
            self.pos = pos
            self.zoom = zoom
            self.pan = pan

    def __init__(self, provider: Optional[Provider] = None, **kw) -> None:
        super().__init__(**kw)
        self.provider = provider
        self.last_spec: Optional[ChartSpec] = None

    def render(self) -> LineChart:
        w, h = self.content_size.width, self.content_size.height
        pw, _ = plot_size(w, h)
        spec = self.provider(2 * pw) if self.provider is not None else ChartSpec()
        self.last_spec = spec
        return LineChart(spec, height=max(1, h))

    def plot_fraction(self, x: float) -> float:
        """The fraction of the plot's width at column ``x`` of the widget."""
        pw, _ = plot_size(self.content_size.width, self.content_size.height)
        if pw <= 0:
            return 0.5
        return min(1.0, max(0.0, (x - Y_AXIS_WIDTH + 0.5) / pw))

    def _wheel(self, event: events.MouseEvent, zoom: int = 0, pan: int = 0) -> None:
        event.stop()
        event.prevent_default()
        self.post_message(self.Wheel(self, self.plot_fraction(event.x), zoom=zoom, pan=pan))

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
