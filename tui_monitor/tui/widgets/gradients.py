"""The gradient and system view of the focused run: the system line, the
per-layer gradient table (scrollable: a deep model has more layers than the
screen has lines, and a line under the table says which are shown and how to
reach the others) and the global gradient norm over steps."""
from __future__ import annotations

from typing import Any, Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll

from ..chart import ChartSpec
from ..gradpanel import grad_chart, grads_text, system_text
from .chart import ChartView
from .steady import SteadyStatic

__all__ = ["GradientsView", "LayerTable"]

#: Lines of the gradient table above its first layer (the norm and the header).
HEAD_LINES = 2
#: Most layers listed (past them the table says how many more there are).
MAX_LAYERS = 500


class LayerTable(VerticalScroll, can_focus=True):
    """The per-layer table; it scrolls with the arrows (tab to it) or the wheel."""

    DEFAULT_CSS = """
    LayerTable { height: auto; max-height: 50%; padding: 0 1; }
    LayerTable:focus { background: $boost; }
    """

    layer_count = 0

    def hint(self) -> Text:
        """Which layers are on screen, when not all are."""
        if self.layer_count <= 0 or self.max_scroll_y <= 0:
            return Text("")
        y = int(self.scroll_y)
        first = max(1, y - HEAD_LINES + 1)
        last = min(self.layer_count, y + self.scrollable_content_region.height - HEAD_LINES)
        t = Text("layers %d–%d of %d" % (first, last, self.layer_count), style="bold #fff176")
        t.append("  (tab here, then ↓ / pgdn, or the wheel, for the others)" if last < self.layer_count
                 else "  (↑ / pgup for the first)", "dim")
        return t


class GradientsView(Vertical):
    DEFAULT_CSS = """
    GradientsView { height: 1fr; }
    GradientsView > #sys { height: auto; padding: 0 1; }
    GradientsView > #layers-hint { height: auto; padding: 0 1; }
    GradientsView > ChartView { height: 1fr; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.run: Optional[Any] = None

    def compose(self) -> ComposeResult:
        yield SteadyStatic(id="sys")
        with LayerTable(id="layer-table"):
            yield SteadyStatic(id="layers")
        yield SteadyStatic(id="layers-hint")
        yield ChartView(self._spec, id="gradchart")

    def on_mount(self) -> None:
        table = self.query_one(LayerTable)
        self.watch(table, "scroll_y", lambda: self._show_hint(table), init=False)

    def _show_hint(self, table: LayerTable) -> None:
        self.query_one("#layers-hint", SteadyStatic).update(table.hint())

    def _spec(self, px_width: int) -> ChartSpec:
        if self.run is None:
            return ChartSpec(empty="no run")
        return grad_chart(self.run, px_width)

    def show(self, run: Optional[Any]) -> None:
        self.run = run
        table = self.query_one(LayerTable)
        if run is None:
            self.query_one("#sys", SteadyStatic).update(Text("no run", style="dim"))
            self.query_one("#layers", SteadyStatic).update("")
            table.layer_count = 0
        else:
            self.query_one("#sys", SteadyStatic).update(system_text(run))
            table.layer_count = len(run.layers())
            self.query_one("#layers", SteadyStatic).update(grads_text(run, max(40, (self.size.width or self.app.size.width) - 4),
                                                                     max_layers=min(table.layer_count, MAX_LAYERS)))
        self.call_after_refresh(self._show_hint, table)
        self.query_one(ChartView).refresh()
