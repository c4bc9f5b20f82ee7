"""The findings panel: the live findings (most severe and newest first),
the selected one's evidence and advice, and the decision path (where the
charted runs stand in the guidance).

Wide (120 columns and more) every finding shows its evidence and advice in
the list. Narrower, the list shows headlines, and enter on one opens its
evidence and advice (:class:`~tui_monitor.tui.screens.FindingScreen`):
one key away at 80x24. Choosing a finding posts
:class:`FindingsList.Chosen`: the app shows its runs and step on the chart.
The panel says when it has the focus (its title), and esc hands the focus
back to the runs.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from .._text import run_label, safe
from ..screens import FindingScreen
from .steady import SteadyStatic
from ..findings import decision_path, finding_text, path_from_engine, sort_findings
from .runs import run_group

__all__ = ["FindingsPanel", "FindingsList", "DecisionPathView", "path_line", "decision_path_text"]


class FindingsList(OptionList):
    """One option per finding; choosing one posts :class:`FindingsList.Chosen`."""

    # no border, focused or not: OptionList's focus border would shift the
    # options down a line under the pointer between mouse-down and click, so
    # that a click on an unfocused list missed the finding it was aimed at
    DEFAULT_CSS = """
    FindingsList, FindingsList:focus { height: 1fr; border: none; }
    /* a dark cursor: the run names (light blue) and the badges keep their colours readable on it */
    FindingsList:focus > .option-list--option-highlighted { background: $primary-darken-3; }
    """

    BINDINGS = [Binding("escape", "leave", "runs", show=True),
                Binding("enter", "select", "show", show=True)]

    class Chosen(Message):
        def __init__(self, finding: Any) -> None:
            super().__init__()
            self.finding = finding

    def on_focus(self) -> None:
        self.highlight_first()

    def highlight_first(self) -> None:
        """Highlight the first (the worst) finding unless one is: enter right
        after f (or tab) shows it."""
        if self.highlighted is None and self.findings:
            self.highlighted = 0

    def action_leave(self) -> None:
        """esc: back to the runs, at once (the app moves the focus now, not
        after a message: a key read with esc is the runs')."""
        self.app.leave_findings()

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.findings: List[Any] = []
        self.detail = True
        self._names: Dict[Any, str] = {}
        self._signature: tuple = ()

    def set_findings(self, findings: Sequence[Any], run_names: Dict[Any, str], detail: bool = True) -> None:
        """Show ``findings``; ``detail``: with evidence and advice."""
        ordered = sort_findings(findings)
        sig = tuple((id(f), getattr(f, "severity", None), getattr(f, "step", None), safe(getattr(f, "evidence", "")),
                     getattr(f, "confidence", None)) for f in ordered) + (detail, tuple(sorted(map(str, run_names.items()))))
        if sig == self._signature:
            return
        self._signature = sig
        self._names = dict(run_names)
        keep = self.highlighted
        old = self.findings[keep] if keep is not None and keep < len(self.findings) else None
        self.findings = ordered
        if not ordered:
            self.set_options([Option(Text("no findings: nothing wrong seen so far", style="dim"), disabled=True)])
            self.detail = detail
            return
        self.detail = detail
        self.set_options([Option(finding_text(f, run_names, detail=detail)) for f in ordered])
        if old is not None:
            oid = getattr(old, "id", None)
            for i, f in enumerate(ordered):
                if f is old or (oid and getattr(f, "id", None) == oid):
                    self.highlighted = i
                    break

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        i = event.option_index
        if 0 <= i < len(self.findings):
            finding = self.findings[i]
            self.post_message(self.Chosen(finding))
            if not self.detail:  # headlines only here: the evidence and advice on their own screen
                self.app.push_screen(FindingScreen(self.findings, i, self._names), self._read_up_to)

    def _read_up_to(self, index: Optional[int]) -> None:
        """Back from the finding's screen: the list highlights the finding
        read last there."""
        if index is not None and 0 <= index < len(self.findings):
            self.highlighted = index


_STATE_STYLE = {"yes": "bold #ef5350", "no": "#81c784", "open": "#fff176", "skip": "dim"}
_STATE_ICON = {"yes": "✗", "no": "✓", "open": "…", "skip": "·"}


class DecisionPathView(SteadyStatic):
    DEFAULT_CSS = """
    DecisionPathView { height: auto; max-height: 6; padding: 0 1; border-top: solid $primary-darken-2; }
    """


class FindingsPanel(Vertical):
    """The findings list over the decision path. ``chosen``: the finding
    the user picked (its runs and step are on the chart)."""

    DEFAULT_CSS = """
    FindingsPanel { border-top: solid $primary-darken-2; border-title-color: $text-muted; }
    FindingsPanel:focus-within { border-top: heavy $accent; border-title-color: $accent;
                                 border-title-style: bold; }
    FindingsPanel > FindingsList { height: 1fr; }
    """

    TITLE = "findings (f)"
    #: The title while the findings have the focus: what enter does where
    #: the list shows headlines only (narrow), and where it shows the evidence
    #: too (wide: a panel of 54 columns at 120, so the title is short).
    FOCUSED_TITLE = "findings: ↑↓ move · enter: evidence & advice · esc: back to runs"
    FOCUSED_TITLE_WIDE = "findings: ↑↓ · enter: on the chart · esc: runs"

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.chosen: Optional[Any] = None
        self.detail = False  # whether the list shows each finding's evidence and advice
        self.border_title = self.TITLE

    def _show_title(self) -> None:
        if not self.has_focus_within:
            self.border_title = self.TITLE
        else:
            self.border_title = self.FOCUSED_TITLE_WIDE if self.detail else self.FOCUSED_TITLE

    def compose(self) -> ComposeResult:
        yield FindingsList(id="findings")
        yield DecisionPathView(id="path")

    @property
    def findings_list(self) -> FindingsList:
        return self.query_one(FindingsList)

    def on_descendant_focus(self) -> None:
        self._show_title()
        self.screen.refresh_bindings()

    def on_descendant_blur(self) -> None:
        self._show_title()
        self.screen.refresh_bindings()

    def show(self, findings: Sequence[Any], run_names: Dict[Any, str], detail: bool, path: Text) -> None:
        """The findings (``detail``: with evidence and advice) and the
        decision path text."""
        self.findings_list.set_findings(findings, run_names, detail=detail)
        if detail != self.detail:
            self.detail = detail
            self._show_title()
        self.query_one(DecisionPathView).update(path)
        if self.chosen is not None:  # the same finding, as the engine found it again
            cid = getattr(self.chosen, "id", None)
            self.chosen = next((f for f in findings if f is self.chosen or (cid and getattr(f, "id", None) == cid)),
                               None)

    def check_action(self, action: str, parameters: tuple) -> Optional[bool]:
        """``f`` leaves the footer while the findings have the focus (room
        for their own keys at 80 columns)."""
        if action == "focus" and (self.has_focus_within or getattr(self.app, "waiting", False)):
            return False
        return True

    def action_focus(self) -> None:
        """``f``: the findings take the focus (the main view comes back if
        the gradients or the job view were shown)."""
        self.app.show_view("main")
        # now, not after the keys already queued: enter typed right after f
        # (one read of the terminal) is the findings' (focus() sets it later)
        self.findings_list.highlight_first()
        self.screen.set_focus(self.findings_list)


def path_line(run: Any, rows: Sequence[Tuple[str, str, str]]) -> Text:
    t = Text(no_wrap=False, end="")
    t.append(run_label(run), "bold")  # a job's ranks share a name
    t.append(": ")
    for i, (question, answer, state) in enumerate(rows):
        if i:
            t.append(" → ", "dim")
        t.append("%s %s " % (_STATE_ICON.get(state, "·"), safe(question)), _STATE_STYLE.get(state, ""))
        t.append(safe(answer), "bold" if state in ("yes", "no") else "dim")
    return t


def decision_path_text(runs: Sequence[Any], findings: Sequence[Any], paths: Dict[Any, Any],
                       group_cv: Callable[[str], Any]) -> Text:
    """Where the charted ``runs`` stand in the guidance: the cross-validation
    summary of their fold groups first (``group_cv(name)``: the answer for a
    group), then each run's decision path (the engine's, else one read from
    the findings)."""
    if not runs:
        return Text("decision path: no run", style="dim")
    out = Text(no_wrap=False, end="")
    groups: List[str] = []
    for run in runs:
        g = run_group(run)
        if g is not None and g not in groups:
            groups.append(g)
    for g in groups[:2]:
        summary = group_cv(g)
        out.append("cv ", "bold #4fc3f7")
        out.append(safe(summary.text()))
        out.append("\n")
    for i, run in enumerate(runs[:3]):
        if i:
            out.append("\n")
        engine_path = paths.get(run.key)
        rows = path_from_engine(engine_path)
        if rows is None:
            has_val = any(k[0] in ("val", "test") for k in run.metrics())
            rows = decision_path(run, findings, has_val)
        out.append_text(path_line(run, rows))
        if rows and engine_path is not None:
            out.append_text(verdict_text(engine_path))
    return out


def verdict_text(path: Any) -> Text:
    """Where the engine's path ends: ``⇒ VERDICT``, and for an unknown one
    what would decide it (declare the task, log a val split...): unknown is
    not healthy, and the screen says so as the report does. The asides in
    brackets (how to declare a task) are left to ``diagnose`` and the docs:
    the path has a few lines, under the findings."""
    verdict = str(getattr(path, "verdict", "") or "")
    t = Text(end="")
    if not verdict:
        return t
    t.append(" ⇒ ", "dim")
    style = {"healthy": _STATE_STYLE["no"], "unknown": _STATE_STYLE["open"]}.get(verdict, _STATE_STYLE["yes"])
    t.append(safe(verdict), style)
    needs = str(getattr(path, "needs", "") or "")
    needs = re.sub(r"\s*\([^()]*\)", "", needs)
    if needs:
        t.append("  to decide: ", "dim")
        t.append(safe(needs))
    return t
