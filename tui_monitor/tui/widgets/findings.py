"""The findings panel (live findings, most severe and newest first) and the
decision-path view (where a run stands in the guidance)."""
from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

from rich.text import Text
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from .._text import safe
from .steady import SteadyStatic
from ..findings import finding_text, sort_findings

__all__ = ["FindingsList", "DecisionPathView", "path_line"]


class FindingsList(OptionList):
    """One option per finding; choosing one posts :class:`FindingsList.Chosen`."""

    # no border, focused or not: OptionList's focus border would shift the
    # options down a line under the pointer between mouse-down and click, so
    # that a click on an unfocused list missed the finding it was aimed at
    DEFAULT_CSS = """
    FindingsList, FindingsList:focus { height: 1fr; border: none; }
    """

    class Chosen(Message):
        def __init__(self, finding: Any) -> None:
            super().__init__()
            self.finding = finding

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.findings: List[Any] = []
        self._signature: tuple = ()

    def set_findings(self, findings: Sequence[Any], run_names: Dict[Any, str], detail: bool = True) -> None:
        ordered = sort_findings(findings)
        sig = tuple((id(f), getattr(f, "severity", None), getattr(f, "step", None), safe(getattr(f, "evidence", "")),
                     getattr(f, "confidence", None)) for f in ordered) + (detail, tuple(sorted(map(str, run_names.items()))))
        if sig == self._signature:
            return
        self._signature = sig
        keep = self.highlighted
        old = self.findings[keep] if keep is not None and keep < len(self.findings) else None
        self.findings = ordered
        if not ordered:
            self.set_options([Option(Text("no findings: nothing wrong seen so far", style="dim"), disabled=True)])
            return
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
            self.post_message(self.Chosen(self.findings[i]))


_STATE_STYLE = {"yes": "bold #ef5350", "no": "#81c784", "open": "#fff176", "skip": "dim"}
_STATE_ICON = {"yes": "✗", "no": "✓", "open": "…", "skip": "·"}


class DecisionPathView(SteadyStatic):
    DEFAULT_CSS = """
    DecisionPathView { height: auto; max-height: 6; padding: 0 1; border-top: solid $primary-darken-2; }
    """


def path_line(run: Any, rows: Sequence[Tuple[str, str, str]]) -> Text:
    t = Text(no_wrap=False, end="")
    t.append(safe(run.name), "bold")
    t.append(": ")
    for i, (question, answer, state) in enumerate(rows):
        if i:
            t.append(" → ", "dim")
        t.append("%s %s " % (_STATE_ICON.get(state, "·"), safe(question)), _STATE_STYLE.get(state, ""))
        t.append(safe(answer), "bold" if state in ("yes", "no") else "dim")
    return t
