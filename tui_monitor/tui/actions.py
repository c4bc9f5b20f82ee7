"""Every action of the monitor, in one table: the key bindings, the help
screen and the command palette are all made from it, so they cannot drift
apart.

An action string names the widget that owns the action, as Textual's
namespaced actions do: ``chart.zoom(0.5)`` runs ``ChartPanel.action_zoom``,
``runs_panel.baseline`` ``RunsPanel.action_baseline``, ``findings_panel.focus``
``FindingsPanel.action_focus``; a bare name is the app's own (the views, the
help, quitting, saving the screen). The app exposes those widgets under these
names (see :attr:`NAMESPACES`).
"""
from __future__ import annotations

from typing import Any, Callable, List, NamedTuple, Tuple

from textual.binding import Binding

from .runsort import SORT_COLUMNS
from .widgets.runs import COLUMNS

__all__ = ["Action", "ACTIONS", "GESTURES", "NAMESPACES", "bindings", "help_rows", "palette_entries", "KEYS"]

#: The widgets actions can name, as attributes of the app.
NAMESPACES = ("chart", "runs_panel", "findings_panel")


class Action(NamedTuple):
    """One action: ``keys`` (Textual key names, comma separated), the
    ``action`` string it runs, a ``short`` description (the footer's, when
    ``footer``), what it does in a sentence (``help``: the help screen and
    the palette), and the palette's ``title`` (none: not in the palette).
    ``display``: how the help screen writes the keys."""

    keys: str
    action: str
    short: str
    help: str
    title: str = ""
    footer: bool = False
    display: str = ""
    priority: bool = False

    def key_display(self) -> str:
        return self.display or " / ".join(_KEY_NAMES.get(k, k) for k in self.keys.split(","))


_KEY_NAMES = {"question_mark": "?", "space": "space", "slash": "/", "left_square_bracket": "[",
              "right_square_bracket": "]", "plus": "+", "equals_sign": "=", "minus": "-", "underscore": "_",
              "less_than_sign": "<", "greater_than_sign": ">", "ctrl+c": "ctrl+c"}

ACTIONS: Tuple[Action, ...] = (
    Action("question_mark", "help", "help", "every key, and how to read the screen", "Help: keys", footer=True),
    Action("q", "quit", "quit", "quit", footer=True, display="q / ctrl+c"),
    Action("ctrl+c", "quit", "quit", "quit", priority=True),
    # runs
    Action("space", "runs_panel.toggle_select", "select",
           "select / unselect the highlighted run for comparison (drawn together; on a group row: all its folds)",
           "Select run", footer=True),
    Action("a", "runs_panel.select_all", "all/none", "select every shown run / clear the selection",
           "Select all / none"),
    Action("b", "runs_panel.baseline", "baseline", "mark the highlighted run as the baseline (again: unmark)",
           "Mark baseline"),
    Action("z", "runs_panel.toggle_group", "fold group",
           "collapse / expand the fold group (runs tagged group/fold; its row shows the cv mean ± std) or a "
           "multi-rank job's ranks", "Collapse / expand fold group"),
    Action("slash", "runs_panel.filter", "filter",
           "filter the runs: a regex on the name, and/or config conditions such as lr>1e-3 batch=64",
           "Filter runs"),
    Action("o", "runs_panel.sort", "sort", "sort the runs by the next column (%s); again: the next"
           % ", ".join(dict((k, label) for k, label, _ in COLUMNS)[k] for k in SORT_COLUMNS), "Sort runs by next column"),
    Action("O", "runs_panel.reverse_sort", "reverse sort", "reverse the order of the runs", "Reverse sort"),
    # chart
    Action("m", "chart.pick_metric", "metric", "pick the metric the chart shows", "Pick metric", footer=True),
    Action("M", "chart.next_metric", "next metric", "next metric", "Next metric"),
    Action("left_square_bracket", "chart.smoothing(-1)", "less smoothing", "less smoothing (debiased EMA)",
           "Less smoothing"),
    Action("right_square_bracket", "chart.smoothing(1)", "more smoothing", "more smoothing (debiased EMA)",
           "More smoothing"),
    Action("r", "chart.toggle_raw", "raw", "the raw series under the smoothed one: on / off", "Toggle raw series"),
    Action("y", "chart.log_y", "log y", "log y axis on / off", "Toggle log y"),
    Action("x", "chart.x_axis", "x axis", "x axis: step, relative time, wall time", "Cycle x axis"),
    Action("plus,equals_sign", "chart.zoom(0.5)", "zoom in", "zoom in on x", "Zoom in"),
    Action("minus,underscore", "chart.zoom(2)", "zoom out", "zoom out on x", "Zoom out"),
    Action("less_than_sign,h", "chart.pan(-0.25)", "pan left", "move the x window left", "Pan left",
           display="< / h"),
    Action("greater_than_sign,l", "chart.pan(0.25)", "pan right", "move the x window right", "Pan right",
           display="> / l"),
    Action("0", "chart.reset_zoom", "reset zoom", "show the whole x range", "Reset zoom"),
    Action("e", "chart.export_csv", "csv", "export the chart's series as CSV", "Export CSV"),
    # findings and views
    Action("f", "findings_panel.focus", "findings",
           "focus the findings: ↑ ↓ move, enter shows a finding's evidence and advice and its runs on the chart, "
           "esc goes back to the runs", "Focus findings", footer=True),
    Action("g", "toggle_view('grads')", "grads", "gradient and system view / back", "Gradient and system view",
           footer=True),
    Action("j", "toggle_view('job')", "job",
           "job view / back: one line per rank of a multi-rank job, per-rank step times (enter / z on a job's "
           "row: its ranks)", "Job view"),
    Action("p", "problems", "problems", "stream problems: each line that could not be read, as FILE:LINE and why",
           "Stream problems"),
    Action("s", "save_svg", "svg", "save the screen as SVG", "Save SVG"),
    Action("n", "toggle_alerts", "alerts",
           "alerts on / off: a bell and a desktop notification on a new critical finding (watch --no-bell starts "
           "with them off); the header counts the findings that came since you last pressed a key",
           "Toggle alerts"),
)

#: Keys and gestures that belong to a widget's own bindings or to the mouse:
#: listed in the help, not bound here.
GESTURES: Tuple[Tuple[str, str], ...] = (
    ("ctrl+p", "command palette: every action by name"),
    ("↑ ↓ pgup pgdn", "move in the focused list (the runs: the chart follows the highlighted run)"),
    ("enter", "on a run: show only this run; on a fold group's or job's row: collapse / expand it; "
              "on a finding: its evidence and advice"),
    ("tab", "next panel: the runs, the chart, the findings (the focused one is lit; the findings' title then "
            "lists their keys)"),
    ("esc", "back: close a screen, or from the findings to the runs"),
    ("wheel", "mouse wheel over the chart: zoom in / out on x around the pointer"),
    ("shift+wheel", "pan left / right (a horizontal wheel too)"),
    ("click", "click a run to highlight it, a column's header to sort by it, a finding to show it"),
)


def bindings() -> List[Binding]:
    """The app's bindings: one per action, its short text as description
    (the footer's, and the palette's for Textual's own listing)."""
    return [Binding(a.keys, a.action, a.short, show=a.footer, priority=a.priority, tooltip=a.help)
            for a in ACTIONS]


def help_rows() -> List[Tuple[str, str]]:
    """(keys, what they do) for the help screen, in the table's order, the
    gestures after ``?`` and ``q``."""
    rows = [(a.key_display(), a.help) for a in ACTIONS if a.keys != "ctrl+c"]
    rows[2:2] = list(GESTURES)
    return rows


def palette_entries(run: Callable[[str], Any]) -> List[Tuple[str, str, Callable[[], Any]]]:
    """(title, help, callback) of every action with a palette title (its
    help starts with its key, so the palette teaches the keys); the callback
    hands the action string to ``run`` (the app's ``run_action``)."""
    return [(a.title, "%s — %s" % (a.key_display(), a.help), (lambda s=a.action: run(s))) for a in ACTIONS if a.title]


#: The help screen's rows (keys, what they do).
KEYS: Tuple[Tuple[str, str], ...] = tuple(help_rows())
