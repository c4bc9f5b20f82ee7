"""Actions on runs: highlighting, selecting, the baseline, the filter,
choosing a finding, and switching to the findings or gradient view.

A mixin of :class:`~tui_monitor.tui.app.MonitorApp`.
"""
from __future__ import annotations

from typing import Any, Optional

from textual.widgets import ContentSwitcher

from ..diagnose.reference import names_run, run_ref
from ._text import safe
from .chartdata import x_extent
from .findings import finding_runs, matches_run
from .keys import KEYS
from .rowkeys import group_of_key, job_of_key
from .screens import FilterScreen, HelpScreen, ProblemsScreen
from .widgets import ChartView, FindingsList, GradientsView, RunsTable

__all__ = ["RunActions"]


class RunActions:
    """Keys and events that change which runs are shown, selected or compared."""

    def on_runs_table_row_highlighted(self, event: RunsTable.RowHighlighted) -> None:
        if not self.selected:
            self.chosen = None
        self._chart_changed()
        if self.query_one(ContentSwitcher).current == "grads":
            self.query_one(GradientsView).show(self.focus_run())
        self._refresh_job()

    def on_runs_table_row_selected(self, event: RunsTable.RowSelected) -> None:
        key = event.key
        if group_of_key(key) is not None or job_of_key(key) is not None:
            self.action_toggle_group()
            return
        if key is not None:
            self.selected = [key]
            self.chosen = None
            self.refresh_views()

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(KEYS))

    def _mark_wanted_baseline(self) -> None:
        """Mark the run ``--baseline`` named once it has arrived (the
        engine was told at start and resolves the name itself)."""
        named = [r for r in list(self.store.runs.values()) if names_run(r, self.baseline_wanted)]
        run = min(named, key=lambda r: r.rank or 0) if named else None  # a job's name: its rank 0
        if run is not None:
            self.baseline_key = RunsTable.row_key(run)

    def action_problems(self) -> None:
        if not isinstance(self.screen, ProblemsScreen):
            self.push_screen(ProblemsScreen(self.stream_problems))

    def stream_problems(self) -> "tuple[list, int]":
        """(the problems kept, how many there were): a copy, no I/O."""
        return self.ingest.recent_problems() if self.ingest is not None else ([], 0)

    def action_toggle_select(self) -> None:
        key = self.query_one(RunsTable).cursor_key()
        if key is None:
            return
        g = group_of_key(key)
        j = job_of_key(key)
        if g is not None or j is not None:  # a group row: all its folds (a job row: its ranks), or none
            keys = [RunsTable.row_key(r) for r in (self.group_members(g) if g is not None else self.job_ranks(j))]
            if keys and all(k in self.selected for k in keys):
                self.selected = [k for k in self.selected if k not in keys]
            else:
                self.selected += [k for k in keys if k not in self.selected]
            self.refresh_views()
            return
        if key in self.selected:
            self.selected.remove(key)
        else:
            self.selected.append(key)
        self.refresh_views()

    def action_select_all(self) -> None:
        shown = [RunsTable.row_key(r) for r in self.shown_runs()]
        self.selected = [] if self.selected else shown
        self.refresh_views()

    def action_baseline(self) -> None:
        key = self.query_one(RunsTable).cursor_key()
        if key is None:
            return
        if self.run_by_key(key) is None:  # a fold group's or a job's row
            self.notify("the baseline is a run: highlight one of the folds or ranks", timeout=2)
            return
        self.baseline_key = None if self.baseline_key == key else key
        self.baseline_wanted = None  # the user chose: --baseline no longer applies
        run = self.run_by_key(self.baseline_key)
        if self.diagnoser is not None and hasattr(self.diagnoser, "baseline"):
            # a fresh engine re-reads every run against the new baseline (same task)
            ref = run_ref(run) if run else None  # one rank of a job, not the whole job
            try:
                self.diagnoser = type(self.diagnoser)(self.store, baseline=ref, task=getattr(self.diagnoser, "task", None))
            except TypeError:
                self.diagnoser.baseline = ref
            self._diagnose()
        self.notify("baseline: %s" % (safe(run.name) if run else "none"), timeout=2)
        self.refresh_views()

    def action_filter(self) -> None:
        def done(pattern: Optional[str]) -> None:
            if pattern is not None:
                self.filter = pattern
                self.refresh_views()

        self.push_screen(FilterScreen(self.filter), done)

    def on_findings_list_chosen(self, message: FindingsList.Chosen) -> None:
        self.choose_finding(message.finding)

    def choose_finding(self, finding: Any) -> None:
        """Focus the chart on a finding's evidence: its runs, its step."""
        self.chosen = finding
        runs = []
        for ref in finding_runs(finding):
            for run in list(self.store.runs.values()):
                if matches_run(ref, run):
                    runs.append(run)
                    break
        if runs:
            self.selected = [RunsTable.row_key(r) for r in runs]
            self.query_one(RunsTable).move_to_key(RunsTable.row_key(runs[0]))
        step = getattr(finding, "step", None)
        self.view.x_kind = "step"
        self.view.view = (0.0, 1.0)
        if isinstance(step, int) and runs:
            ext = x_extent(runs, self.view.metric, "step")
            if ext is not None and ext[1] > ext[0]:
                c = (step - ext[0]) / (ext[1] - ext[0])
                if 0.0 <= c <= 1.0:
                    self.view = self.view.zoom(0.6, centre=c) if c < 0.7 else self.view
        self.refresh_views()

    def action_focus_findings(self) -> None:
        if self.query_one(ContentSwitcher).current != "main":
            self.query_one(ContentSwitcher).current = "main"
        self.query_one(FindingsList).focus()

    def action_toggle_grads(self) -> None:
        sw = self.query_one(ContentSwitcher)
        sw.current = "grads" if sw.current != "grads" else "main"
        if sw.current == "grads":
            self.query_one(GradientsView).show(self.focus_run())
        else:
            self.query_one("#chart", ChartView).refresh()
