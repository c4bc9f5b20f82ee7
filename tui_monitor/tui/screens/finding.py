"""One finding in full: what is wrong, about which run, how sure, the
evidence and the advice, and the step of the guidance it comes from. Opened
by enter on a finding where the findings panel shows headlines only (below
120 columns): at 80x24 the evidence and advice are one key away, and ← →
read the next ones without going back to the list."""
from __future__ import annotations

from typing import Any, Dict, Sequence

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Static

from ..findings import finding_text

__all__ = ["FindingScreen"]

HINT = "← → the previous / next finding · esc: back (the chart shows this finding's runs and step)"


class FindingScreen(ModalScreen[int]):
    """``findings`` (in the list's order), showing the one at ``index``;
    dismisses with the index of the one shown last."""

    DEFAULT_CSS = """
    FindingScreen { align: center middle; }
    FindingScreen > VerticalScroll { width: 95%; max-width: 110; height: auto; max-height: 90%;
                                     border: round $accent; background: $surface; padding: 0 1; }
    FindingScreen #hint { color: $text-muted; }
    """
    BINDINGS = [Binding("escape,enter,q,f", "dismiss", "close", show=True),
                Binding("left,h", "step(-1)", "previous", show=True),
                Binding("right,l", "step(1)", "next", show=True)]

    class Shown(Message):
        """The screen shows ``finding`` now (the chart follows it)."""

        def __init__(self, finding: Any) -> None:
            super().__init__()
            self.finding = finding

    def __init__(self, findings: Sequence[Any], index: int, run_names: Dict[Any, str]) -> None:
        super().__init__()
        self.findings = list(findings)
        self.index = max(0, min(index, len(self.findings) - 1))
        self.run_names = run_names

    @property
    def finding(self) -> Any:
        return self.findings[self.index]

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(finding_text(self.finding, self.run_names, detail=True), id="finding")
            yield Static(Text("\n" + HINT), id="hint")

    def on_mount(self) -> None:
        self._title()

    def _title(self) -> None:
        self.query_one(VerticalScroll).border_title = "finding %d of %d" % (self.index + 1, len(self.findings))

    def action_step(self, by: int) -> None:
        index = max(0, min(self.index + int(by), len(self.findings) - 1))
        if index == self.index:
            return
        self.index = index
        self.query_one("#finding", Static).update(finding_text(self.finding, self.run_names, detail=True))
        self.query_one(VerticalScroll).scroll_home(animate=False)
        self._title()
        self.post_message(self.Shown(self.finding))

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(self.index)
