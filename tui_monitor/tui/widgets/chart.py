"""The chart widget: asks its provider for a :class:`ChartSpec` sized to the
widget and renders it with the pure :class:`LineChart` renderable."""
from __future__ import annotations

from typing import Callable, Optional

from textual.widget import Widget

from ..chart import ChartSpec, LineChart, plot_size

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
