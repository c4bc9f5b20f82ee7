"""One finding in full: what is wrong, about which run, how sure, the
evidence and the advice, and the step of the guidance it comes from. Opened
by enter on a finding where the findings panel shows headlines only (below
120 columns): at 80x24 the evidence and advice are one key away."""
from __future__ import annotations

from typing import Any, Dict

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from ..findings import finding_text

__all__ = ["FindingScreen"]


class FindingScreen(ModalScreen):
    DEFAULT_CSS = """
    FindingScreen { align: center middle; }
    FindingScreen > VerticalScroll { width: 95%; max-width: 110; height: auto; max-height: 90%;
                                     border: round $accent; background: $surface; padding: 0 1; }
    FindingScreen #hint { color: $text-muted; }
    """
    BINDINGS = [Binding("escape,enter,q,f", "dismiss", "close", show=True)]

    def __init__(self, finding: Any, run_names: Dict[Any, str]) -> None:
        super().__init__()
        self.finding = finding
        self.run_names = run_names

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(finding_text(self.finding, self.run_names, detail=True), id="finding")
            yield Static(Text("\nesc: back (the chart shows its runs and step; ↑ ↓ move to the next finding)"),
                         id="hint")

    def on_mount(self) -> None:
        self.query_one(VerticalScroll).border_title = "finding"

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
