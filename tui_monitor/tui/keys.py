"""Keys: the bindings, the help screen's list and the command palette's
entries, in one place so that they stay in step."""
from __future__ import annotations

from typing import Any, Callable, List, Tuple

from textual.binding import Binding

__all__ = ["BINDINGS", "KEYS", "SMOOTHING_STEPS", "palette_commands"]

#: Smoothing weights the [ and ] keys step through.
SMOOTHING_STEPS = (0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.99)

#: Every key, for the help screen: (keys, what it does).
KEYS: Tuple[Tuple[str, str], ...] = (
    ("?", "this help"),
    ("q / ctrl+c", "quit"),
    ("ctrl+p", "command palette: every action by name"),
    ("↑ ↓ pgup pgdn", "move in the runs list (the chart follows the highlighted run)"),
    ("space", "select / unselect the run for comparison (drawn together; on a group row: all its folds)"),
    ("enter", "show only this run (on a fold group's row: collapse / expand the group)"),
    ("z", "collapse / expand the fold group (runs tagged group/fold; its row shows the cv mean ± std)"),
    ("a", "select all shown runs / clear the selection"),
    ("b", "mark the highlighted run as the baseline (again: unmark)"),
    ("/", "filter runs by name (regex)"),
    ("m", "pick the metric"),
    ("M", "next metric"),
    ("[ ]", "less / more smoothing (debiased EMA)"),
    ("r", "raw series under the smoothed one: on / off"),
    ("y", "log y axis on / off"),
    ("x", "x axis: step, relative time, wall time"),
    ("+ -", "zoom in / out on x"),
    ("< > (h l)", "pan left / right"),
    ("0", "reset zoom"),
    ("wheel", "mouse wheel over the chart: zoom in / out on x around the pointer"),
    ("shift+wheel", "pan left / right (a horizontal wheel too)"),
    ("click", "click a run to highlight it, a finding to focus the chart on it"),
    ("f", "focus the findings (enter on one shows its runs and step)"),
    ("tab", "next panel"),
    ("g", "gradient and system view / back"),
    ("p", "stream problems: each line that could not be read, as FILE:LINE and why"),
    ("s", "save the screen as SVG"),
    ("e", "export the chart's series as CSV"),
    ("j", "job view / back: one line per rank of a multi-rank job, per-rank step times (enter / z on a job's "
          "row: its ranks)"),
)


BINDINGS = [
    Binding("question_mark", "help", "help"),
    Binding("q", "quit", "quit"),
    Binding("ctrl+c", "quit", "quit", show=False, priority=True),
    Binding("space", "toggle_select", "select", show=True),
    Binding("a", "select_all", "all/none", show=False),
    Binding("b", "baseline", "baseline", show=True),
    Binding("z", "toggle_group", "fold group", show=False),
    Binding("slash", "filter", "filter", show=False),
    Binding("m", "pick_metric", "metric", show=True),
    Binding("M", "next_metric", "next metric", show=False),
    Binding("left_square_bracket", "smoothing(-1)", "less smoothing", show=False),
    Binding("right_square_bracket", "smoothing(1)", "more smoothing", show=False),
    Binding("r", "toggle_raw", "raw", show=False),
    Binding("y", "log_y", "log y", show=True),
    Binding("x", "x_axis", "x axis", show=False),
    Binding("plus,equals_sign", "zoom(0.5)", "zoom in", show=False),
    Binding("minus,underscore", "zoom(2)", "zoom out", show=False),
    Binding("less_than_sign,h", "pan(-0.25)", "pan left", show=False),
    Binding("greater_than_sign,l", "pan(0.25)", "pan right", show=False),
    Binding("0", "reset_zoom", "reset zoom", show=False),
    Binding("f", "focus_findings", "findings", show=True),
    Binding("g", "toggle_grads", "grads", show=True),
    Binding("j", "toggle_job", "job", show=False),
    Binding("p", "problems", "problems", show=False),
    Binding("s", "save_svg", "svg", show=False),
    Binding("e", "export_csv", "csv", show=False),
]


def palette_commands(app: Any) -> List[Tuple[str, str, Callable[[], Any]]]:
    """(title, help, callback) of every action, for the command palette."""
    return [
        ("Help: keys", "Every key of the monitor", app.action_help),
        ("Select run", "Select or unselect the highlighted run for comparison", app.action_toggle_select),
        ("Select all / none", "Select every shown run, or clear the selection", app.action_select_all),
        ("Mark baseline", "Mark the highlighted run as the baseline", app.action_baseline),
        ("Collapse / expand fold group", "Fold the highlighted cross-validation group into one row with its "
         "mean ± std, or show its folds", app.action_toggle_group),
        ("Filter runs", "Filter the runs by a regex on their names", app.action_filter),
        ("Pick metric", "Choose the metric the chart shows", app.action_pick_metric),
        ("Next metric", "Show the next metric", app.action_next_metric),
        ("More smoothing", "Raise the EMA weight", lambda: app.action_smoothing(1)),
        ("Less smoothing", "Lower the EMA weight", lambda: app.action_smoothing(-1)),
        ("Toggle raw series", "Show or hide the raw series under the smoothed one", app.action_toggle_raw),
        ("Toggle log y", "Logarithmic y axis on or off", app.action_log_y),
        ("Cycle x axis", "Step, relative time or wall time", app.action_x_axis),
        ("Zoom in", "Zoom in on x", lambda: app.action_zoom(0.5)),
        ("Zoom out", "Zoom out on x", lambda: app.action_zoom(2)),
        ("Pan left", "Move the x window left", lambda: app.action_pan(-0.25)),
        ("Pan right", "Move the x window right", lambda: app.action_pan(0.25)),
        ("Reset zoom", "Show the whole x range", app.action_reset_zoom),
        ("Focus findings", "Move to the findings list", app.action_focus_findings),
        ("Gradient and system view", "Per-layer gradients, lr, step time, GPU/CPU", app.action_toggle_grads),
        ("Job view", "The ranks of a multi-rank job: host, step, step time, loss, status; per-rank step times",
         app.action_toggle_job),
        ("Stream problems", "Every line that could not be read: file, line and reason", app.action_problems),
        ("Save SVG", "Save the screen as an SVG file", app.action_save_svg),
        ("Export CSV", "Export the chart's series as CSV", app.action_export_csv),
    ]
