"""The job view: one line per rank of the focused multi-rank job (host, step,
step time, last loss, status, finding) over the per-rank step-time chart.

The rank list scrolls (wheel, or tab to it and the arrow keys): a job of
hundreds of ranks is longer than the screen."""
from __future__ import annotations

from typing import Any, List, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from .steady import SteadyStatic

from ..chart import ChartSpec
from ..jobview import job_chart, rank_lines
from .chart import ChartView

__all__ = ["JobView"]


class JobView(Vertical):
    DEFAULT_CSS = """
    JobView { height: 1fr; }
    JobView > #rank-list { height: auto; max-height: 60%; }
    JobView #ranks { height: auto; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    JobView > ChartView { height: 1fr; }
    """

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.ranks: List[Any] = []

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="rank-list"):
            yield SteadyStatic(id="ranks")
        yield ChartView(self._spec, id="jobchart")

    def _spec(self, px_width: int) -> ChartSpec:
        if not self.ranks:
            return ChartSpec(empty="no multi-rank job: highlight a job or one of its ranks")
        return job_chart(self.ranks, px_width)

    def show(self, ranks: Sequence[Any], findings: Sequence[Any] = (), now: float = 0.0,
             silent_after: float = 30.0) -> None:
        self.ranks = list(ranks)
        if not self.ranks:
            self.query_one("#ranks", SteadyStatic).update(
                Text("no multi-rank job here: the ranks of a torchrun / SLURM job share a run id", style="dim"))
        else:
            self.query_one("#ranks", SteadyStatic).update(rank_lines(self.ranks, findings, now, silent_after))
        self.query_one(ChartView).refresh()
