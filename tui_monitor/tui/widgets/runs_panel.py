"""The runs panel: the runs table over the store, owning which runs are
shown (filter, order, folded groups and jobs), selected and the baseline.

Its state is reactive (``selected``, ``filter``, ``order``,
``baseline_key``): setting one rebuilds the rows and tells the app. It tells
the app what changed with messages: :class:`RunsPanel.SubjectChanged` when
what the chart should draw changed (the cursor moved, the selection, filter,
order or baseline changed), :class:`RunsPanel.BaselineChanged` when the user
marked a baseline.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence, Tuple

from textual import events
from textual.message import Message
from textual.reactive import reactive

from ...diagnose.reference import names_run
from ...store import UNENDED
from .._text import fmt_ago, short_name
from ..chartdata import RunColors
from ..findings import worst_by_run
from ..jobview import job_layout, job_members, job_of, job_row
from ..rowkeys import group_key, group_of_key, job_key, job_of_key
from ..runfilter import RunFilter, parse_filter
from ..runsort import SORT_COLUMNS, sort_runs
from ..screens import FilterScreen
from .chart_panel import ChartSubject
from .runs import group_row, layout_rows, local_cv, order_runs, run_group, run_row, worst_of
from .runs_table import RunsTable

__all__ = ["RunsPanel", "RunsSummary"]


class RunsSummary(NamedTuple):
    """What the runs panel counted when it last built its rows (the status
    line shows it): every run, those the filter lets through, and those by
    status (of the runs shown)."""

    total: int = 0
    shown: int = 0
    counts: Dict[str, int] = {}


class RunsPanel(RunsTable):
    """The runs of ``store``. ``clock`` and ``silent_after`` say when a run
    is silent; ``baseline``: a run's name or id to mark once it shows up."""

    #: Row keys of the runs selected for comparison, in the order selected.
    selected: reactive[Tuple[str, ...]] = reactive((), init=False)
    #: Which runs are shown (a regex on the name, config conditions).
    filter: reactive[RunFilter] = reactive(RunFilter(), init=False)
    #: ``(column, reversed)``; column None: the order runs came in (folds together).
    order: reactive[Tuple[Optional[str], bool]] = reactive((None, False), init=False)
    #: The row key of the baseline run.
    baseline_key: reactive[Optional[str]] = reactive(None, init=False)

    class SubjectChanged(Message):
        """What the chart should draw changed; only the latest counts.
        ``by_cursor``: the cursor moved (not the selection)."""

        def __init__(self, panel: "RunsPanel", by_cursor: bool = False) -> None:
            super().__init__()
            self.panel = panel
            self.by_cursor = by_cursor

        def can_replace(self, message: Message) -> bool:
            return isinstance(message, RunsPanel.SubjectChanged)

    class BaselineChanged(Message):
        """The user marked ``run`` as the baseline (None: unmarked)."""

        def __init__(self, run: Optional[Any]) -> None:
            super().__init__()
            self.run = run

    def __init__(self, store: Any, *, clock: Callable[[], float], silent_after: float = 30.0,
                 baseline: Optional[str] = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.store = store
        self.clock = clock
        self.silent_after = silent_after
        self.baseline_wanted = baseline  # --baseline: marked when a run of that name or id shows up
        self.collapsed: set = set()  # fold groups shown as one row
        self.expanded_jobs: set = set()  # multi-rank jobs shown rank by rank
        self.findings: Sequence[Any] = ()
        self.cv: Dict[str, Any] = {}  # group -> the engine's cross-validation summary
        self.narrow = False
        self._runs_seen = -1
        self._shown: Optional[tuple] = None  # (the filter, the runs it lets through)
        self._row_cache: Dict[str, Any] = {}  # row key -> (what its cells show, the cells)
        self.run_colors = RunColors()  # the chart's colour of each run drawn, also its selection mark's
        self.summary = RunsSummary()  # counted with the rows, not on every tick

    # -- which runs -------------------------------------------------------------------------------

    def all_runs(self) -> List[Any]:
        return order_runs(list(self.store.runs.values()))

    def shown_runs(self) -> List[Any]:
        """The runs the filter lets through, in order (folds together), as
        the rows show them: worked out again by :meth:`refresh_rows` (asked
        several times a frame, and a sweep has thousands)."""
        if self._shown is None or self._shown[0] != self.filter:
            runs = self.all_runs()
            if self.filter:
                runs = [r for r in runs if self.filter.matches(r)]
            self._shown = (self.filter, runs)
        return list(self._shown[1])

    def run_by_key(self, key: Optional[str]) -> Optional[Any]:
        if key is None:
            return None
        run_id, sep, rank = key.rpartition("\x00")  # the inverse of RunsTable.row_key
        return self.store.runs.get((run_id, int(rank))) if sep and rank.isdigit() else None

    @property
    def baseline(self) -> Optional[Any]:
        return self.run_by_key(self.baseline_key)

    @property
    def sort_by(self) -> Optional[str]:
        return self.order[0]

    @property
    def sort_reverse(self) -> bool:
        return self.order[1]

    def _rebuilt(self, by_cursor: bool = False) -> None:
        if self.is_mounted:
            self.refresh_rows()
            self._changed(by_cursor)

    def watch_selected(self) -> None:
        self._rebuilt()

    def watch_filter(self) -> None:
        self._rebuilt()

    def watch_baseline_key(self) -> None:
        if self.baseline_key is None and self.sort_by == "base":
            # its column hides: back to the order runs came in (it kept sorting by a '-' on every row)
            self.set_reactive(RunsPanel.order, (None, False))
        self._rebuilt()

    def watch_order(self) -> None:
        self._rebuilt(by_cursor=True)  # the cursor's run stays; the rows move around it

    def group_members(self, name: Optional[str]) -> List[Any]:
        """The shown runs of fold group ``name``, by fold."""
        return [r for r in self.shown_runs() if run_group(r) == name] if name is not None else []

    def job_ranks(self, run_id: Optional[str]) -> List[Any]:
        """The shown ranks of multi-rank job ``run_id``, by rank."""
        return job_members(self.shown_runs(), run_id)

    def _cursor_owner(self, of_key: Callable[[Optional[str]], Optional[str]],
                      of_run: Callable[[Any], Optional[str]]) -> Optional[str]:
        key = self.cursor_key()
        owner = of_key(key)
        if owner is not None:
            return owner
        run = self.run_by_key(key)
        return of_run(run) if run is not None else None

    def cursor_group(self) -> Optional[str]:
        """The group of the highlighted row: a group row's, or a fold's."""
        return self._cursor_owner(group_of_key, run_group)

    def cursor_job(self) -> Optional[str]:
        """The job of the highlighted row: a job row's, or a rank's."""
        return self._cursor_owner(job_of_key, job_of)

    def focus_run(self) -> Optional[Any]:
        """The highlighted run (a group's or job's first member on its row)."""
        key = self.cursor_key()
        run = self.run_by_key(key)
        if run is None:
            members = self.group_members(group_of_key(key)) or self.job_ranks(job_of_key(key))
            if members:
                return members[0]
            shown = self.shown_runs()
            run = shown[0] if shown else None
        return run

    def cv_summary(self, name: str, members: Sequence[Any]) -> Any:
        """The group's cross-validation summary: the engine's, else one made
        here from the folds' best validation losses."""
        summary = self.cv.get(name)
        return summary if summary is not None else local_cv(name, members)

    def group_cv(self, name: str) -> Any:
        """Fold group ``name``'s cross-validation summary, over its folds shown
        (as its row shows it)."""
        return self.cv_summary(name, self.group_members(name))

    def subject(self) -> ChartSubject:
        """What the chart draws, with each run's colour."""
        subject = self._subject()
        return subject._replace(colors=tuple(self.run_colors.assign([r.key for r in subject.runs]).items()))

    def _subject(self) -> ChartSubject:
        """What the chart draws: the selection, else the highlighted run (on
        a group row: every fold of the group; on a job row, its ranks)."""
        base = self.baseline
        runs = [r for r in (self.run_by_key(k) for k in self.selected) if r is not None]
        if runs:
            return ChartSubject(tuple(runs), baseline=base)
        key = self.cursor_key()
        folds = self.group_members(group_of_key(key))
        if folds:
            return ChartSubject(tuple(folds), job=True, baseline=base)
        ranks = self.job_ranks(job_of_key(key))
        if ranks:
            return ChartSubject(tuple(ranks), job=True, baseline=base)
        run = self.focus_run()
        return ChartSubject((run,) if run is not None else (), baseline=base)

    # -- the rows ---------------------------------------------------------------------------------

    def refresh_rows(self, findings: Optional[Sequence[Any]] = None, cv: Optional[Dict[str, Any]] = None) -> None:
        """Rebuild the rows from the store (and the findings and cv
        summaries, when given)."""
        if findings is not None:
            self.findings = findings
        if cv is not None:
            self.cv = cv
        if self.baseline_wanted and self.baseline_key is None and len(self.store.runs) != self._runs_seen:
            self._mark_wanted_baseline()  # looked for as runs arrive, not every tick
        self._runs_seen = len(self.store.runs)
        now = self.clock()
        baseline = self.baseline
        self._shown = None
        runs = self.shown_runs()
        counts: Dict[str, int] = {}
        for r in runs:
            st = r.status
            if st in UNENDED:  # the others' status does not move with the clock
                st = r.status_at(now, self.silent_after)
            counts[st] = counts.get(st, 0) + 1
        self.summary = RunsSummary(self._runs_seen, len(runs), counts)
        worst = worst_by_run(self.findings, runs)
        colors = dict(self.subject().colors)
        if self.sort_by is not None:
            runs = sort_runs(runs, self.sort_by, self.sort_reverse, baseline=baseline, worst=worst, now=now,
                             silent_after=self.silent_after)
        rows = []
        width = 22 if self.narrow else 32
        selected = set(self.selected)
        for kind, item in job_layout(layout_rows(runs, self.collapsed), self.expanded_jobs):
            if kind == "job":
                run_id, ranks = item
                n_sel = sum(1 for r in ranks if self.row_key(r) in selected)
                rows.append((job_key(run_id), job_row(run_id, ranks, now, run_id in self.expanded_jobs, n_sel,
                                                      worst_of(worst, ranks), name_width=width,
                                                      silent_after=self.silent_after)))
            elif kind == "group":
                name, members = item
                n_sel = sum(1 for r in members if self.row_key(r) in selected)
                rows.append((group_key(name), group_row(name, members, now, name in self.collapsed, n_sel,
                                                        self.cv_summary(name, members), worst_of(worst, members),
                                                        name_width=width, silent_after=self.silent_after)))
            else:
                key = self.row_key(item)
                rows.append((key, self._run_cells(item, key, now, key in selected, baseline, worst.get(item.key),
                                                  width, colors.get(item.key))))
        self.sort_mark = (self.sort_by, self.sort_reverse)
        # no baseline marked: its column would be '-' on every row (b marks one)
        self.set_rows(rows, narrow=self.narrow, hidden=() if baseline is not None else ("base",))

    def _run_cells(self, run: Any, key: str, now: float, selected: bool, baseline: Any, worst: Any,
                   width: int, color: Optional[str] = None) -> Dict[str, Any]:
        """A run's cells, built again only when something they show changed
        (the run's records, its status, selection, baseline or finding): a
        sweep of 10,000 finished runs is built once, not every second."""
        status = run.status
        if status in UNENDED:  # "silent 45s", "stopped 2d ago" move with the clock: what the cell shows
            status = run.status_at(now, self.silent_after)
            quiet = now - (run.last_seen or now)
            status = (status, int(quiet) if status == "silent" else fmt_ago(quiet) if status == "stopped" else None)
        signature = (run.version, status, selected, baseline is run,
                     None if baseline is None or baseline is run else (id(baseline), baseline.version),
                     id(worst), getattr(worst, "severity", None), width, color)
        cached = self._row_cache.get(key)
        if cached is not None and cached[0] == signature:
            return cached[1]
        cells = run_row(run, now, selected, baseline, worst, name_width=width, silent_after=self.silent_after,
                        color=color)
        self._row_cache[key] = (signature, cells)
        return cells

    def _mark_wanted_baseline(self) -> None:
        """Mark the run ``--baseline`` named once it has arrived (the
        engine was told at start and resolves the name itself)."""
        named = [r for r in list(self.store.runs.values()) if names_run(r, self.baseline_wanted)]
        run = min(named, key=lambda r: r.rank or 0) if named else None  # a job's name: its rank 0
        if run is not None:
            self.set_reactive(RunsPanel.baseline_key, self.row_key(run))  # while the rows are being built

    def _changed(self, by_cursor: bool = False) -> None:
        self.post_message(self.SubjectChanged(self, by_cursor))

    def on_runs_table_row_highlighted(self, event: RunsTable.RowHighlighted) -> None:
        event.stop()
        self._changed(by_cursor=True)

    def on_runs_table_row_selected(self, event: RunsTable.RowSelected) -> None:
        event.stop()
        key = event.key
        if group_of_key(key) is not None or job_of_key(key) is not None:
            self.action_toggle_group()
        elif key is not None:
            self.select_keys([key])

    def select_keys(self, keys: List[str]) -> None:
        """Select exactly ``keys`` (and move the cursor to the first)."""
        self.selected = tuple(keys)
        if keys:
            self.move_to_key(keys[0])

    # -- actions ----------------------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple) -> Optional[bool]:
        """Space (select a run) is off while the findings have the focus:
        the footer then has room for their keys at 80 columns."""
        focused = self.screen.focused
        if action == "toggle_select" and getattr(self.app, "waiting", False):
            return False   # no run to select yet
        return not (action == "toggle_select" and focused is not None and focused.id == "findings")

    def action_toggle_select(self) -> None:
        key = self.cursor_key()
        if key is None:
            return
        g, j = group_of_key(key), job_of_key(key)
        if g is not None or j is not None:  # a group row: all its folds (a job row: its ranks), or none
            keys = [self.row_key(r) for r in (self.group_members(g) if g is not None else self.job_ranks(j))]
            if keys and all(k in self.selected for k in keys):
                self.selected = tuple(k for k in self.selected if k not in keys)
            else:
                self.selected += tuple(k for k in keys if k not in self.selected)
        elif key in self.selected:
            self.selected = tuple(k for k in self.selected if k != key)
        else:
            self.selected += (key,)

    def action_select_all(self) -> None:
        self.selected = () if self.selected else tuple(self.row_key(r) for r in self.shown_runs())

    def action_baseline(self) -> None:
        key = self.cursor_key()
        if key is None:
            return
        if self.run_by_key(key) is None:  # a fold group's or a job's row
            self.app.notify("the baseline is a run: highlight one of the folds or ranks", timeout=2)
            return
        self.baseline_wanted = None  # the user chose: --baseline no longer applies
        self.baseline_key = None if self.baseline_key == key else key
        run = self.baseline
        self.app.notify("baseline: %s" % (short_name(run.name) if run else "none"), timeout=2)
        self.post_message(self.BaselineChanged(run))

    def action_filter(self) -> None:
        def done(text: Optional[str]) -> None:
            if text is not None:
                self.filter = parse_filter(text)

        self.app.push_screen(FilterScreen(self.filter.text), done)

    def action_toggle_group(self) -> None:
        """Collapse the fold group of the highlighted row into its group row,
        or expand it; on a multi-rank job: its ranks, or one row."""
        j = self.cursor_job()
        if j is not None and self.cursor_group() is None:
            self.expanded_jobs.symmetric_difference_update({j})
            self.refresh_rows()
            self.move_to_key(job_key(j))
            self._changed()
            return
        g = self.cursor_group()
        if g is None:
            self.app.notify("not in a fold group (runs tagged group/fold) or a multi-rank job", timeout=2)
            return
        self.collapsed.symmetric_difference_update({g})
        self.refresh_rows()
        self.move_to_key(group_key(g))
        self._changed()

    def action_sort(self, column: str = "") -> None:
        """Sort by ``column`` (a key of the table's columns), or the next one."""
        if column:
            self.order = (column, self.sort_by == column and not self.sort_reverse)
        else:
            columns = [None] + list(SORT_COLUMNS)
            at = columns.index(self.sort_by)
            for column in columns[at + 1:] + columns[:at + 1]:
                if column != "base" or self.baseline is not None:  # no baseline: its column is hidden
                    break
            self.order = (column, False)

    def action_reverse_sort(self) -> None:
        self.order = (self.sort_by or SORT_COLUMNS[0], not self.sort_reverse)

    def header_clicked(self, column: str) -> None:
        if column in SORT_COLUMNS:
            self.action_sort(column)

    def _on_click(self, event: events.Click) -> None:
        if event.y == 0:
            column = self.column_at(event.x + int(self.scroll_offset.x))
            if column is not None:
                event.stop()
                self.header_clicked(column)
            return
        super()._on_click(event)
