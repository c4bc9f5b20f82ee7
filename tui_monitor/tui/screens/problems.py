"""The problems screen: what could not be read, and where (``FILE:LINE: reason``).

The status bar only counts them; this is where a user finds out which file and
line to look at. It reads the ingest's bounded list (a copy taken under its
lock, no I/O) once a second while open, newest first.
"""
from __future__ import annotations

from typing import Any, Callable, List, Sequence, Tuple

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from .._text import safe, short_name

__all__ = ["ProblemsScreen", "problems_text", "problems_summary"]

#: The problems shown: the ingest keeps more, but a screenful per kind is what is read.
SHOWN = 200

SEVERITY_STYLE = {"error": "bold #ef5350", "warning": "#fff176"}

#: The most characters of a problem's file shown (its end, for a longer path).
SOURCE_MAX = 100


def problems_summary(count: int) -> str:
    """The status bar's words for ``count`` problems."""
    return "%d stream problem%s (p)" % (count, "" if count == 1 else "s")


def problems_text(problems: Sequence[Any], total: int) -> Text:
    """``problems`` (oldest first, the last kept of ``total``) as plain text,
    newest first: severity, ``FILE:LINE``, reason. Every part is stream data,
    so it is escaped and never read as markup."""
    t = Text(no_wrap=False)
    if not total:
        t.append("No problems: every line of every stream was read.", "dim")
        return t
    kept = len(problems)
    t.append("%d problem%s reading the streams" % (total, "" if total == 1 else "s"), "bold")
    if sum(getattr(p, "count", 1) for p in problems) < total:  # an entry counts its repeats
        t.append(" (the last %d kinds are kept)" % kept, "dim")
    t.append("; newest first. error: the line was not read; warning: read, with something to know.\n", "dim")
    shown = list(problems)[-SHOWN:][::-1]
    for p in shown:
        severity = str(getattr(p, "severity", "error"))
        t.append("\n%-7s " % severity, SEVERITY_STYLE.get(severity, ""))
        line = getattr(p, "line_number", 0)
        source = str(getattr(p, "source", "?"))
        if len(source) > SOURCE_MAX:  # a path: its end says which file
            source = "…" + source[-(SOURCE_MAX - 1):]
        where = short_name(source, SOURCE_MAX + 20) + (":%d" % line if line else "")
        t.append(where, "#4fc3f7")
        t.append("  " + safe(str(getattr(p, "reason", ""))))
        if getattr(p, "count", 1) > 1:  # one entry per file and reason: how often it came
            t.append(p.repeats(), "dim")
    if kept > len(shown):
        t.append("\n\n… and %d older" % (kept - len(shown)), "dim")
    return t


class ProblemsScreen(ModalScreen):
    """Lists the ingest's problems; ``fetch()`` returns (problems, total)."""

    DEFAULT_CSS = """
    ProblemsScreen { align: center middle; }
    ProblemsScreen > VerticalScroll { width: 95%; height: auto; max-height: 90%; border: round $primary;
                                      background: $surface; padding: 0 1; }
    ProblemsScreen #problems { height: auto; }
    """
    BINDINGS = [Binding("escape,q,p", "dismiss", "close")]

    def __init__(self, fetch: Callable[[], Tuple[List[Any], int]]) -> None:
        super().__init__()
        self.fetch = fetch
        self.shown_total = -1

    def compose(self) -> ComposeResult:
        with VerticalScroll() as box:
            box.border_title = "stream problems · esc: close"
            yield Static(id="problems")

    def on_mount(self) -> None:
        self.refresh_problems()
        self.set_interval(1.0, self.refresh_problems)

    def refresh_problems(self) -> None:
        problems, total = self.fetch()
        if total != self.shown_total:  # only redraw when something new came
            self.shown_total = total
            self.query_one("#problems", Static).update(problems_text(problems, total))

    def action_dismiss(self) -> None:  # type: ignore[override]
        self.dismiss(None)
