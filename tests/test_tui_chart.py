"""The pure parts of the TUI: canvas, ticks, chart renderable, chart data."""
from __future__ import annotations


import numpy as np
import pytest
from rich.console import Console

from tui_monitor.store import Series
from tui_monitor.tui._text import fmt_count, fmt_num, safe
from tui_monitor.tui.canvas import BRAILLE, BrailleCanvas
from tui_monitor.tui.chart import ChartSpec, Line, LineChart, VMark, plot_size
from tui_monitor.tui.chartdata import ViewState, build_chart, metric_names
from tui_monitor.tui.ticks import log_ticks, nice_ticks, time_ticks
from tui_helpers import synthetic_store


def lines_of(spec, w=80, h=16):
    return [t.plain for t in LineChart(spec).render_lines(w, h)]


def test_canvas_line_sets_dots_and_patterns():
    c = BrailleCanvas(4, 2)
    k = c.layer("red")
    c.polyline(k, np.array([0.0, 7.0]), np.array([0.0, 7.0]))
    bits, top = c.cells()
    assert (top >= 0).sum() == 4 and bits[0, 0] and bits[1, 3]  # a diagonal crosses 4 cells
    rows = c.rows()
    assert "".join(t for t, _ in rows[0]).startswith(BRAILLE[bits[0, 0]])
    solid = BrailleCanvas(20, 1)
    solid.polyline(solid.layer("x"), np.array([0.0, 39.0]), np.array([1.0, 1.0]))
    dash = BrailleCanvas(20, 1)
    dash.polyline(dash.layer("x"), np.array([0.0, 39.0]), np.array([1.0, 1.0]), "dash")
    n_solid = sum(bin(b).count("1") for b in solid.cells()[0].ravel())
    n_dash = sum(bin(b).count("1") for b in dash.cells()[0].ravel())
    assert n_solid == 40 and 15 <= n_dash <= 25


def test_canvas_clips_far_points():
    c = BrailleCanvas(3, 3)
    c.polyline(c.layer("x"), np.array([-1e12, 1e12]), np.array([1e15, -1e15]))
    assert c.cells()[0].shape == (3, 3)


def test_ticks():
    assert nice_ticks(0, 10, 5) == [0, 2, 4, 6, 8, 10]
    assert nice_ticks(0, 7, 3, integer=True)[:2] == [0, 2.5] or all(t == int(t) for t in nice_ticks(0, 7, 3, True))
    assert log_ticks(-3, 0, 4) == [-3, -2, -1, 0]
    assert time_ticks(0, 600, 5) == [0, 120, 240, 360, 480, 600]
    assert nice_ticks(1, 1) == [1] and nice_ticks(float("nan"), 1) == []


def test_text_is_escaped_not_markup():
    for name in ("[bold]x[/]", "[@click=app.quit]y[/]"):
        assert safe(name) == name  # markup characters stay as they are: the widgets never parse them
    assert safe("\x1b[31m") == "\\x1b[31m" and safe("a\tb\u202e") == "a\\tb\\u202e"
    assert fmt_num(float("nan")) == "NaN" and fmt_num(float("inf")) == "+inf" and fmt_num(None) == "-"
    assert fmt_num(1.5e-7) == "1.5e-7" and fmt_count(67329) == "67.3k"


def test_chart_draws_markers_legend_and_guides():
    x = np.arange(100, dtype=float)
    spec = ChartSpec(lines=[Line(x, np.exp(-x / 30), "cyan", label="[bold]run[/] train",
                                 mark_x=np.array([50.0, 60.0, 70.0]), mark_kind=np.array([0, 1, 2], np.int8))],
                     vmarks=[VMark(20.0, "green", "★", "best val @20")], title="loss")
    out = lines_of(spec)
    assert len(out) == 16 and all(len(line) == 80 for line in out)
    assert "[bold]run[/] train" in out[0] and "× NaN" in out[0] and "▲ +inf" in out[0]
    body = "\n".join(out[1:-2])
    assert "×" in out[1] and "▲" in out[1] and "▼" in out[-3] and "★" in out[1] and "┊" in body
    assert any(c in body for c in BRAILLE[1:])
    assert out[-1].strip().startswith("step")


def test_log_y_changes_the_drawing_and_ticks():
    x = np.arange(200, dtype=float)
    spec = ChartSpec(lines=[Line(x, 10.0 ** (-x / 50), "cyan", label="train")])
    lin = lines_of(spec)
    spec.log_y = True
    log = lines_of(spec)
    assert lin != log
    assert any("1e-3" in line or "0.001" in line for line in log)


def test_empty_chart_says_so():
    out = lines_of(ChartSpec(empty="no loss values yet"))
    assert any("no loss values yet" in line for line in out)
    assert plot_size(8, 3) == (0, 0)
    assert len(LineChart(ChartSpec(lines=[Line(np.arange(3.0), np.arange(3.0))])).render_lines(6, 2)) == 2


def test_rich_console_render():
    c = Console(width=60, file=None, record=True, color_system=None)
    with c.capture() as cap:
        c.print(LineChart(ChartSpec(lines=[Line(np.arange(10.0), np.arange(10.0), label="a")]), height=8))
    assert len(cap.get().splitlines()) == 8


def test_build_chart_cost_is_bounded_by_width():
    """Decimated min/max points: as many for 1,000,000 points as for 10,000."""
    s_big = Series()
    n = 1_000_000
    steps = np.arange(n)
    s_big.extend(steps, steps * 0.01, np.sin(steps / 1000.0) + 2)

    class R:
        run_id, rank, name, start, tags, model = "r", 0, "r", 0.0, {}, {}
        status = "running"

        def __init__(self, s):
            self.series = {("train", "loss"): s}

        def get(self, m, split="train"):
            return self.series.get((split, m))

        def metrics(self):
            return list(self.series)

    spec = build_chart([R(s_big)], ViewState(smoothing=0.6), px_width=300)
    pts = sum(len(l.x) for l in spec.lines)
    assert 0 < pts <= 2 * 2 * 300 + 8  # raw + smoothed, two per bucket
    z = build_chart([R(s_big)], ViewState(smoothing=0.0).zoom(0.01), px_width=300)
    assert z.x_range[0] >= 0.98 * n and len(z.lines[0].x) <= 2 * 300 + 2


def test_view_state_zoom_pan():
    v = ViewState()
    z = v.zoom(0.5)
    assert z.view == (0.5, 1.0)  # follows the newest data
    p = z.pan(-0.5)
    assert p.view == (0.25, 0.75)
    assert p.pan(-10).view == (0.0, 0.5) and p.zoom(100).view == (0.0, 1.0)
    assert v.zoom(0.5, centre=0.2).view == (0.0, 0.5)


def test_build_chart_from_store_marks_best_val_and_baseline():
    store = synthetic_store()
    runs = list(store.runs.values())
    assert metric_names(runs) == ["loss", "lr"]
    mlp = runs[1]
    spec = build_chart([mlp], ViewState(), px_width=200)
    labels = [l.label for l in spec.lines if l.label]
    assert labels == ["train", "val"]
    best = [m for m in spec.vmarks if m.glyph == "★"]
    assert best and best[0].x == mlp.get("loss", "val").min()[1]
    spec2 = build_chart([mlp], ViewState(), px_width=200, baseline=runs[0])
    assert any((l.label or "").startswith("baseline") for l in spec2.lines)
    div = build_chart([runs[2]], ViewState(), px_width=200)
    kinds = set(np.concatenate([l.mark_kind for l in div.lines]).tolist())
    assert kinds == {0, 1}  # NaN and +inf shown as markers
    rel = build_chart([mlp], ViewState(x_kind="relative"), px_width=200)
    assert rel.x_range[0] == pytest.approx(0.0) and rel.x_kind == "relative"


def test_a_plot_narrower_than_its_x_labels_renders():
    """An x tick label wider than the plot is left out, not an IndexError."""
    x = np.linspace(0.0, 0.001, 8)                     # wall clock over a millisecond: long labels
    spec = ChartSpec(lines=[Line(x, np.sin(x), "cyan", label="run")], x_kind="wall")
    for width in range(1, 30):
        rows = LineChart(spec).render_rows(width, 5)
        assert len(rows) == 5
