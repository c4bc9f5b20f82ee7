"""Small modal pickers: the metric shown, and the regex filter on run names."""
from __future__ import annotations

from typing import List

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from .._text import safe, short_name
from ..runfilter import FilterError, parse_filter

__all__ = ["MetricPicker", "FilterScreen"]


class MetricPicker(ModalScreen):
    """Choose the chart's metric; dismisses with its name (or None)."""

    DEFAULT_CSS = """
    MetricPicker { align: center middle; }
    MetricPicker > Vertical { width: 50; max-width: 90%; height: auto; max-height: 80%;
                              border: round $primary; background: $surface; }
    MetricPicker OptionList { height: auto; max-height: 20; border: none; }
    """
    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, metrics: List[str], current: str) -> None:
        super().__init__()
        self.metrics = metrics
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "metric · enter: show · esc: cancel"
            ol = OptionList(*[Option(Text(short_name(m))) for m in self.metrics] or
                            [Option(Text("no metrics yet", style="dim"), disabled=True)])
            yield ol

    def on_mount(self) -> None:
        ol = self.query_one(OptionList)
        if self.current in self.metrics:
            ol.highlighted = self.metrics.index(self.current)
        ol.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.metrics[event.option_index])

    def action_cancel(self) -> None:
        self.dismiss(None)


class FilterScreen(ModalScreen):
    """A regex on run names and config conditions; dismisses with the text ('' clears)."""

    DEFAULT_CSS = """
    FilterScreen { align: center top; }
    FilterScreen > Vertical { width: 60; max-width: 95%; height: auto; margin-top: 2;
                              border: round $primary; background: $surface; }
    FilterScreen #err { color: $error; height: auto; padding: 0 1; }
    FilterScreen #what { padding: 0 1; }
    """
    BINDINGS = [Binding("escape", "cancel", "cancel")]

    def __init__(self, current: str) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "filter runs · enter: apply · esc: cancel"
            yield Static(Text("by name (a regex) and config (lr>1e-3 batch=64); empty shows all"), id="what")
            yield Input(value=self.current, placeholder="e.g. ^opt_|fold  lr>=1e-3  optim=adam", id="pattern")
            yield Static("", id="err")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            parse_filter(event.value)
        except FilterError as e:
            self.query_one("#err", Static).update(Text(safe(e)))
            return
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
