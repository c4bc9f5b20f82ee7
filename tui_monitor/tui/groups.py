"""Fold groups and multi-rank jobs in the runs panel: which runs a group or
job row stands for, collapsing and expanding them, and the job view.

A mixin of :class:`~tui_monitor.tui.app.MonitorApp` (uses its ``shown_runs``,
``run_by_key`` and widgets).
"""
from __future__ import annotations

from typing import Any, Callable, List, Optional, Sequence

from textual.widgets import ContentSwitcher

from .jobview import job_members, job_of
from .rowkeys import group_key, group_of_key, job_key, job_of_key
from .widgets import ChartView, RunsTable
from .widgets.jobs import JobView
from .widgets.runs import local_cv, run_group

__all__ = ["GroupRows"]


class GroupRows:
    """Fold groups (runs tagged ``group``/``fold``) and multi-rank jobs."""

    def group_members(self, name: Optional[str]) -> List[Any]:
        """The shown runs of fold group ``name``, by fold."""
        if name is None:
            return []
        return [r for r in self.shown_runs() if run_group(r) == name]

    def _cursor_owner(self, of_key: Callable[[Optional[str]], Optional[str]],
                      of_run: Callable[[Any], Optional[str]]) -> Optional[str]:
        """What the highlighted row belongs to: the group (job) its key
        names, else the one its run is in."""
        key = self.query_one(RunsTable).cursor_key()
        owner = of_key(key)
        if owner is not None:
            return owner
        run = self.run_by_key(key)
        return of_run(run) if run is not None else None

    def cursor_group(self) -> Optional[str]:
        """The group of the highlighted row: a group row's, or a fold's."""
        return self._cursor_owner(group_of_key, run_group)

    def cv_summary(self, name: str, members: Sequence[Any]) -> Any:
        """The group's cross-validation summary: the engine's, else one made
        here from the folds' best validation losses."""
        summary = self.cv.get(name)
        return summary if summary is not None else local_cv(name, members)

    def job_ranks(self, run_id: Optional[str]) -> List[Any]:
        """The shown ranks of multi-rank job ``run_id``, by rank."""
        return job_members(self.shown_runs(), run_id)

    def cursor_job(self) -> Optional[str]:
        """The job of the highlighted row: a job row's, or a rank's."""
        return self._cursor_owner(job_of_key, job_of)

    def action_toggle_group(self) -> None:
        """Collapse the fold group of the highlighted row into its group row, or expand it."""
        j = self.cursor_job()
        if j is not None and self.cursor_group() is None:  # a multi-rank job: its ranks, or one row
            self.expanded_jobs.symmetric_difference_update({j})
            self._refresh_runs()
            self.query_one(RunsTable).move_to_key(job_key(j))
            self._chart_changed()
            return
        g = self.cursor_group()
        if g is None:
            self.notify("not in a fold group (runs tagged group/fold) or a multi-rank job", timeout=2)
            return
        if g in self.collapsed:
            self.collapsed.discard(g)
        else:
            self.collapsed.add(g)
        self._refresh_runs()
        self.query_one(RunsTable).move_to_key(group_key(g))
        self._chart_changed()

    def _refresh_job(self) -> None:
        if self.query_one(ContentSwitcher).current == "job":
            self.query_one(JobView).show(self.job_ranks(self.cursor_job()), self.findings, self.clock(),
                                         self.silent_after)

    def action_toggle_job(self) -> None:
        """The job view (one line per rank, per-rank step times) / back."""
        sw = self.query_one(ContentSwitcher)
        sw.current = "job" if sw.current != "job" else "main"
        if sw.current == "job":
            self._refresh_job()
        else:
            self.query_one("#chart", ChartView).refresh()
