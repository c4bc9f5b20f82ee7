"""The chart widget: asks its provider for a :class:`ChartSpec` sized to the
widget and renders it with the pure :class:`LineChart` renderable (the main
chart, :class:`~.chart_panel.ChartPanel`, adds its view and the mouse wheel)."""
from __future__ import annotations

from typing import Callable, List, Optional, Tuple

from rich.segment import Segment
from textual.geometry import Size
from textual.strip import Strip
from textual.widget import Widget

from ..chart import Y_AXIS_WIDTH, ChartSpec, LineChart, plot_size

__all__ = ["ChartView", "spec_key"]


def _array_key(a) -> Tuple:
    return (a.dtype.str, a.shape, a.tobytes())


def spec_key(spec: ChartSpec) -> Tuple:
    """A value equal for two specs that draw the same chart (their data and
    every setting); the data arrays are decimated, so this is cheap."""
    lines = tuple((_array_key(l.x), _array_key(l.y), l.color, l.pattern, l.faint, l.label,
                   _array_key(l.mark_x), _array_key(l.mark_kind)) for l in spec.lines)
    vmarks = tuple((v.x, v.color, v.glyph, v.label) for v in spec.vmarks)
    return (lines, vmarks, spec.x_range, spec.x_kind, spec.log_y, spec.title, spec.note, spec.empty, spec.x_format)

Provider = Callable[[int], ChartSpec]


class ChartView(Widget, can_focus=True):
    """``provider(px_width) -> ChartSpec`` is called on each render with the
    plot's width in braille pixel columns; call :meth:`refresh` when the data
    or the view state changed."""

    DEFAULT_CSS = """
    ChartView { height: 1fr; min-height: 6; padding: 0 1 0 0; }
    ChartView:focus { background: $boost; }
    """

    def __init__(self, provider: Optional[Provider] = None, **kw) -> None:
        super().__init__(**kw)
        self.provider = provider
        self.last_spec: Optional[ChartSpec] = None
        self._strips: List[Strip] = []
        self._strips_key: Optional[Tuple] = None
        self._strips_size: Optional[Size] = None

    def render_line(self, y: int) -> Strip:
        """One row of the chart. The rows are built once per refresh, straight
        from segments with the widget's style applied (what rendering the
        :class:`LineChart` renderable gives, without Rich Text); a refresh
        whose chart, size and style are unchanged reuses the previous rows."""
        if self._dirty_regions or self._strips_size != self.size:
            self._dirty_regions.clear()
            self._build_strips()
        strips = self._strips
        if 0 <= y < len(strips):
            return strips[y]
        return Strip.blank(self.size.width, self.visual_style.rich_style)

    def _build_strips(self) -> None:
        w, h = self.content_size.width, self.content_size.height
        self._strips_size = self.size
        if w <= 0 or h <= 0:
            self._strips, self._strips_key = [], None
            return
        chart = self.render()
        base = self.visual_style.rich_style
        key = (w, h, base, spec_key(chart.spec))
        if key == self._strips_key:
            return
        combined: dict = {}
        strips = []
        _Segment = Segment
        for row in chart.render_rows(w, max(1, h)):
            segments = []
            for text, style in row:
                st = combined.get(style)
                if st is None:
                    st = combined[style] = base + style
                # as Textual's link-style pass leaves it: a falsy style becomes None
                segments.append(_Segment(text, st) if st else _Segment(text))
            strip = Strip(segments)
            if strip.cell_length > w:
                strip = strip.crop(0, w)
            strips.append(strip)
        self._strips, self._strips_key = strips, key

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
