"""The help screen: every key of the app, grouped, and how to read the screen."""
from __future__ import annotations

from typing import Iterable, Tuple

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

__all__ = ["HelpScreen", "help_table"]

LEGEND = (
    "Chart: train solid ━, validation dashed ╍, test dotted ┈; the raw series faint under the smoothed one. "
    "× NaN, ▲ +inf, ▼ -inf mark non-finite values; ★ the best validation step; ! a finding's onset. "
    "Runs: ● selected for comparison, ★ the baseline. Findings follow the guidance: training loss first "
    "(model bias or optimization), then held-out loss (overfitting or mismatch)."
)


def help_table(keys: Iterable[Tuple[str, str]]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold #4fc3f7", no_wrap=True)
    table.add_column()
    for key, desc in keys:
        table.add_row(Text(key), Text(desc))
    return table


class HelpScreen(ModalScreen):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 100; height: 90%; border: round $primary;
                                  background: $surface; padding: 0 1; }
    """
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "close")]

    def __init__(self, keys: Iterable[Tuple[str, str]]) -> None:
        super().__init__()
        self.keys = list(keys)

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = "keys · ↑↓ scroll · esc: close"
            yield Static(Text("tui-monitor — keys", style="bold"))
            yield Static(help_table(self.keys))
            yield Static(Text("\n" + LEGEND, style="dim"))

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
