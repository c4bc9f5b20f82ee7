"""The gradient and system view of the focused run."""
from __future__ import annotations

from typing import Any, Optional

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from .steady import SteadyStatic

from ..gradpanel import grad_chart, grads_text, system_text
from .chart import ChartView

__all__ = ["GradientsView"]


class GradientsView(Vertical):
    DEFAULT_CSS = """
    GradientsView { height: 1fr; }
    GradientsView > #sys { height: auto; padding: 0 1; }
    GradientsView > #layers { height: auto; max-height: 50%; padding: 0 1; }
    GradientsView > ChartView { height: 1fr; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.run: Optional[Any] = None

    def compose(self) -> ComposeResult:
        yield SteadyStatic(id="sys")
        yield SteadyStatic(id="layers")
        yield ChartView(self._spec, id="gradchart")

    def _spec(self, px_width: int):
        if self.run is None:
            from ..chart import ChartSpec

            return ChartSpec(empty="no run")
        return grad_chart(self.run, px_width)

    def show(self, run: Optional[Any]) -> None:
        self.run = run
        if run is None:
            self.query_one("#sys", SteadyStatic).update(Text("no run", style="dim"))
            self.query_one("#layers", SteadyStatic).update("")
        else:
            self.query_one("#sys", SteadyStatic).update(system_text(run))
            self.query_one("#layers", SteadyStatic).update(grads_text(run, max(40, self.size.width - 2)))
        self.query_one(ChartView).refresh()
