"""The chart's decimation cache, the mouse (wheel zoom and pan on the chart,
clicking a finding), fold groups with their cross-validation summary, every
panel at 250×70 and 80×24, and 256-colour / truecolor terminals. In-process
stores with fixed data (no writer processes): fast."""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from textual import constants as textual_constants
from textual import events

from tui_helpers import NOW, fixed_app, fold_store, screen_text, sync, synthetic_store, until
from tui_monitor.tui import KEYS
from tui_monitor.tui.chart import Y_AXIS_WIDTH, plot_size
from tui_monitor.tui.chartdata import DecimationCache, ViewState, build_chart
from tui_monitor.tui.findings import decision_path
from tui_monitor.tui.widgets import ChartView, DecisionPathView, FindingsList, RunsTable
from tui_monitor.tui.rowkeys import group_key




# -- the decimation cache -----------------------------------------------------------------------------


def _points(spec):
    return [(l.faint, l.x.tolist(), l.y.tolist(), l.mark_x.tolist()) for l in spec.lines]


def test_cache_reuses_unchanged_series_and_refreshes_a_growing_one():
    store = synthetic_store()
    run = store.get("bbbb2222")
    state = ViewState(smoothing=0.6)
    cache = DecimationCache()
    first = build_chart([run], state, 100, cache=cache)
    assert cache.misses == 3 and cache.hits == 0  # train raw, train smoothed, val
    again = build_chart([run], state, 100, cache=cache)
    assert cache.misses == 3 and cache.hits == 3
    assert _points(again) == _points(first) == _points(build_chart([run], state, 100))
    # another window, width or weight: decimated again, and equal to no cache
    for st, w in ((ViewState(smoothing=0.6, view=(0.5, 1.0)), 100), (state, 60), (ViewState(smoothing=0.9), 100),
                  (ViewState(smoothing=0.6, x_kind="relative"), 100)):
        assert _points(build_chart([run], st, w, cache=cache)) == _points(build_chart([run], st, w))
    # the series grows: a miss, and the new point is drawn
    misses = cache.misses
    store.apply({"type": "metrics", "seq": 5000, "step": 300, "time": NOW, "values": {"loss": 0.75}}, stream="b")
    grown = build_chart([run], ViewState(smoothing=0.0), 100, cache=cache)
    assert cache.misses > misses
    assert grown.lines[0].x[-1] == 300 and grown.lines[0].y[-1] == 0.75
    # bounded
    small = DecimationCache(max_entries=2)
    build_chart([run], state, 100, cache=small)
    assert len(small) == 2


def test_cached_redraw_of_a_long_series_costs_what_a_short_one_does():
    """The issue's bench target in small: an unchanged 200,000-point series
    redraws (cache hit) in about the time of a 1,000-point one."""
    import time

    from tui_monitor.schema import split_metric
    from tui_monitor.store import Store
    from tui_monitor.tui.chart import LineChart

    def run_of(n):
        s = Store(splitter=split_metric)
        s.apply_many([{"type": "run", "seq": 0, "run_id": "r%d" % n, "name": "r", "start": 0.0}], stream="x")
        run = s.get("r%d" % n)
        steps = np.arange(n)
        run._series(("train", "loss")).extend(steps, steps * 0.01, np.exp(-steps / (n / 5)) + 0.01 * np.sin(steps))
        return run

    def cost(run):
        cache = DecimationCache()
        state = ViewState(smoothing=0.6)
        build_chart([run], state, 304, cache=cache)
        ts = []
        for _ in range(7):
            t0 = time.perf_counter()
            LineChart(build_chart([run], state, 304, cache=cache)).render_lines(160, 48)
            ts.append(time.perf_counter() - t0)
        return sorted(ts)[3]

    small, big = cost(run_of(1000)), cost(run_of(200_000))
    assert big < 3 * small + 0.002, (big, small)


# -- the mouse --------------------------------------------------------------------------------------


def test_zoom_at_keeps_the_pointer_in_place():
    v = ViewState()
    z = v.zoom_at(0.5, 0.25)
    assert z.view == pytest.approx((0.125, 0.625))  # x at 25% of the window stays at 25%
    assert z.zoom_at(2.0, 0.25).view == pytest.approx((0.0, 1.0))
    assert v.zoom_at(0.5, 1.0).view == pytest.approx((0.5, 1.0))
    assert v.zoom_at(0.5, 0.0).view == pytest.approx((0.0, 0.5))
    assert v.zoom_at(0.1, 0.5).view[1] - v.zoom_at(0.1, 0.5).view[0] == pytest.approx(0.1)


async def wheel(pilot, event_cls, widget, x, shift=False):
    await pilot._post_mouse_events([event_cls], widget, offset=(x, 3), shift=shift)
    await pilot.pause()


@sync
async def test_wheel_zooms_on_x_at_the_pointer_and_pans():
    app = fixed_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        chart = app.query_one("#chart", ChartView)
        pw, _ = plot_size(chart.content_size.width, chart.content_size.height)
        x = Y_AXIS_WIDTH + pw // 4  # a quarter into the plot
        pos = chart.plot_fraction(x)
        await wheel(pilot, events.MouseScrollUp, chart, x)
        lo, hi = app.chart.view.view
        assert hi - lo == pytest.approx(0.8)
        assert lo + pos * (hi - lo) == pytest.approx(pos)  # the x under the pointer did not move
        await wheel(pilot, events.MouseScrollUp, chart, x)
        spec_lo, spec_hi = chart.last_spec.x_range
        assert app.chart.view.zoomed() and "zoom 64%" in screen_text(app).splitlines()[0]
        before = app.chart.view.view
        await wheel(pilot, events.MouseScrollDown, chart, x, shift=True)  # shift+wheel: pan right
        assert app.chart.view.view[0] > before[0]
        assert app.chart.view.view[1] - app.chart.view.view[0] == pytest.approx(before[1] - before[0])
        await wheel(pilot, events.MouseScrollLeft, chart, x)  # horizontal wheel: pan left
        await wheel(pilot, events.MouseScrollLeft, chart, x)
        assert app.chart.view.view[0] < before[0] + 1e-9
        assert chart.last_spec.x_range[0] < spec_lo
        for _ in range(4):
            await wheel(pilot, events.MouseScrollDown, chart, x)  # zoom out again, to the whole range
        assert app.chart.view.view == pytest.approx((0.0, 1.0))
        # the wheel over the runs table scrolls the table, not the chart
        await wheel(pilot, events.MouseScrollUp, app.query_one(RunsTable), 5)
        assert app.chart.view.view == pytest.approx((0.0, 1.0))


@sync
async def test_clicking_a_finding_focuses_the_chart_on_it():
    app = fixed_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        fl = app.query_one(FindingsList)
        assert [f.id for f in fl.findings] == ["div", "ovf"]
        assert await pilot.click(FindingsList, offset=(4, 0))
        await until(pilot, lambda: app.findings_panel.chosen is not None, message="the finding chosen")
        assert app.findings_panel.chosen.id == "div"
        assert [r.name for r in app.chart.drawn()[0]] == ["diverging"]
        assert any(m.glyph == "!" and "@240" in m.label for m in app.query_one("#chart", ChartView).last_spec.vmarks)
        # the second finding: find its first line by clicking down the list
        for y in range(1, fl.size.height):
            await pilot.click(FindingsList, offset=(4, y))
            if app.findings_panel.chosen.id == "ovf":
                break
        assert app.findings_panel.chosen.id == "ovf" and [r.name for r in app.chart.drawn()[0]] == ["mlp-wide"]


# -- fold groups ----------------------------------------------------------------------------------


def rows_text(app):
    table = app.query_one(RunsTable)
    return [" ".join(c.plain if hasattr(c, "plain") else str(c) for c in table.row_cells(i))
            for i in range(table.row_count)]


@sync
async def test_fold_groups_collapse_and_show_the_cross_validation_summary():
    store = fold_store(3)
    app = fixed_app(store, engine="auto")  # the real engine, on the timer
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: app.diagnosis.cv, message="the engine's cv summaries")
        cv = app.diagnosis.cv["cv-mlp"]
        assert cv.n == 3 and cv.mean == pytest.approx(0.3419, abs=1e-3) and cv.std == pytest.approx(0.02, abs=1e-3)
        table = app.query_one(RunsTable)
        assert table.row_count == 3 + 1 + 3
        rows = rows_text(app)
        group_row = next(r for r in rows if "cv-mlp · 3 folds" in r)
        assert "0.342±0.02" in group_row and "1/3 silent" in group_row  # the most telling state, not the most common
        assert rows.index(group_row) == 3 and all("cv-mlp-f%d" % k in rows[4 + k] for k in range(3))
        # on the group row: the chart shows every fold, the panel the cv summary
        table.move_to_key(group_key("cv-mlp"))
        await pilot.pause()
        assert [r.name for r in app.chart.drawn()[0]] == ["cv-mlp-f0", "cv-mlp-f1", "cv-mlp-f2"]
        path = str(app.query_one(DecisionPathView).render())
        assert "cv cv-mlp: val loss (best per fold) 0.3419 ± 0.02 over 3 folds" in path
        assert "0.3419 ± 0.02" in screen_text(app)
        # z collapses, enter on the group row expands
        await pilot.press("z")
        assert app.runs_panel.collapsed == {"cv-mlp"} and table.row_count == 4
        assert table.cursor_key() == group_key("cv-mlp")
        assert "cv-mlp-f1" not in " ".join(rows_text(app))
        await pilot.press("enter")
        assert app.runs_panel.collapsed == set() and table.row_count == 7
        # z on a fold's row collapses its group and moves to the group row
        await pilot.press("down", "down", "z")
        assert app.runs_panel.collapsed == {"cv-mlp"} and table.cursor_key() == group_key("cv-mlp")
        await pilot.press("z")
        # space on the group row selects all its folds; again: none
        await pilot.press("space")
        assert len(app.runs_panel.selected) == 3 and rows_text(app)[3].startswith("▾●")
        await pilot.press("space")
        assert app.runs_panel.selected == ()
        # b on a group row marks nothing
        await pilot.press("b")
        assert app.runs_panel.baseline_key is None
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Collapse / expand fold group" in titles


@sync
async def test_fold_group_summary_without_an_engine():
    app = fixed_app(fold_store(4), engine=None)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        row = next(r for r in rows_text(app) if "cv-mlp · 4 folds" in r)
        # bests 0.3219, 0.3419, 0.3619, 0.3819: mean 0.3519, std (ddof 1) 0.02582
        assert "0.352±0.026" in row
        await pilot.press("z")  # the cursor is on a plain run: nothing to fold
        assert app.runs_panel.collapsed == set()


@sync
async def test_a_comparison_finding_marks_only_the_run_it_is_about():
    # the real engine: linear-baseline plateaus where the more flexible mlp-wide
    # fits (model bias of linear-baseline); mlp-wide is cited, not biased
    app = fixed_app(engine="auto")
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: any(f.kind == "model_bias" for f in app.findings), message="the model-bias finding")
        bias = next(f for f in app.findings if f.kind == "model_bias")
        assert bias.run_names == ["linear-baseline", "mlp-wide"]
        rows = await until(pilot, lambda: (lambda r: "model bias" in " ".join(r) and r)(rows_text(app)),
                           message="the badge in the runs table")
        assert "model bias: plateau" in next(r for r in rows if "linear-baseline" in r)
        assert "model bias" not in next(r for r in rows if "mlp-wide" in r)
        assert "overfitting" in next(r for r in rows if "mlp-wide" in r)  # its own finding
        wide = app.runs_panel.run_by_key(next(k for k in app.query_one(RunsTable).row_keys if "bbbb2222" in k))
        path = decision_path(wide, app.findings)
        assert path[0][1] == "no" and path[3] == ("overfit or mismatch?", "overfitting", "yes")


# -- every panel, at the two sizes the issue names ----------------------------------------------------


@pytest.mark.parametrize("size", [(250, 70), (80, 24)], ids=["250x70", "80x24"])
@sync
async def test_every_panel_renders(size):
    app = fixed_app(fold_store(3))
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        text = screen_text(app)
        lines = text.splitlines()
        assert len(lines) == size[1] and all(len(l) <= size[0] for l in lines)
        for needle in ("tui-monitor", "6 runs", "linear-baseline", "diverging", "cv-mlp · 3 folds", "status",
                       "finding", "loss", "step", "divergence", "? help", "palette"):
            assert needle in text, needle
        assert "held-out loss large?" in text  # the decision path
        if size[0] >= 120:  # the wide layout: more columns, the findings' evidence and advice
            for needle in ("best val", "params", "evidence:", "advice:", "overfitting", "mlp-wide"):
                assert needle in text, needle
            assert "train vs base" not in text  # shown once a baseline is marked (b)
        await pilot.press("y", "x", "plus")
        spec = app.query_one("#chart", ChartView).last_spec
        assert spec.log_y and spec.x_kind == "relative" and app.chart.view.zoomed()
        if size[0] >= 120:
            assert "log y" in screen_text(app).splitlines()[0]
        await pilot.press("down", "g")
        await pilot.pause()
        assert "step time" in screen_text(app) and "grad" in screen_text(app)
        await pilot.press("g", "m")
        await pilot.pause()
        assert "metric" in screen_text(app)
        await pilot.press("escape", "slash")
        await pilot.pause()
        assert "filter runs · enter: apply" in screen_text(app)
        await pilot.press("escape", "question_mark")
        await pilot.pause()
        help_text = screen_text(app)
        assert "tui-monitor — keys" in help_text
        if size[1] >= 60:  # every key fits on the tall screen
            for key, _ in KEYS:
                assert key in help_text, key
        await pilot.press("escape")
        assert app.is_running


# -- 256 colours and truecolor ----------------------------------------------------------------------


def terminal_output(app) -> str:
    """The full frame as the driver writes it, through the app's console.
    Rich caches a Style's ANSI codes on the Style object for whichever colour
    system rendered it first, and other tests render these (shared) styles in
    truecolor: render fresh copies, as a new process would."""
    from rich.segment import Segment

    segments = []
    for seg in app.console.render(app.screen._compositor.render_update(full=True)):
        style = seg.style
        if style is not None and not seg.control:
            style = style.copy()
            style._ansi = None
        segments.append(Segment(seg.text, style, seg.control))
    return app.console._render_buffer(segments)


@pytest.mark.parametrize("colorterm,system,code", [("", "256", "38;5;"), ("truecolor", "truecolor", "38;2;")],
                         ids=["256", "truecolor"])
@sync
async def test_renders_in_256_colours_and_truecolor_and_saves_svg(colorterm, system, code, tmp_path, monkeypatch):
    # As in a terminal: Textual's console detects the colours from TERM / COLORTERM
    # (TEXTUAL_COLOR_SYSTEM, read when textual is imported, left on "auto").
    monkeypatch.setattr(textual_constants, "COLOR_SYSTEM", "auto")
    monkeypatch.setenv("TERM", "xterm-256color")
    if colorterm:
        monkeypatch.setenv("COLORTERM", colorterm)
    else:
        monkeypatch.delenv("COLORTERM", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    app = fixed_app(fold_store(3), out_dir=str(tmp_path))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        assert app.console.color_system == system
        raw = terminal_output(app)
        assert code in raw
        if system == "256":
            assert "38;2;" not in raw and "48;2;" not in raw
        plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw)
        assert "linear-baseline" in plain and "cv-mlp" in plain
        await pilot.press("s")
        await until(pilot, lambda: app.exports, message="the SVG")
        path = Path(app.exports[0])
        assert path.parent == tmp_path and path.suffix == ".svg"
        svg = path.read_text()
        root = ET.fromstring(svg)
        assert root.tag.endswith("svg")
        assert "linear" in svg and "baseline" in svg and "cv-mlp" in svg


@sync
async def test_baseline_and_task_given_at_start_reach_the_engine_and_the_runs_table():
    from tui_monitor.cli import build_parser
    from tui_monitor.commands import task_override
    from tui_monitor.tui import MonitorApp

    args = build_parser().parse_args(["watch", "--baseline", "linear-baseline", "--task", "classification",
                                      "--num-classes", "10", "--silent-after", "120", "runs/"])
    task = task_override(args)
    assert task == {"task": "classification", "num_classes": 10, "target_var": None}
    app = MonitorApp(synthetic_store(), clock=lambda: NOW, threaded=False, baseline=args.baseline, task=task,
                     silent_after=args.silent_after)
    assert app.silent_after == 120.0
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.query_one(RunsTable)
        await until(pilot, lambda: app.runs_panel.baseline_key is not None, message="the baseline marked")
        assert app.runs_panel.run_by_key(app.runs_panel.baseline_key).name == "linear-baseline"
        assert app.diagnoser.baseline == "linear-baseline" and app.diagnoser.task == task
        await until(pilot, lambda: "★" in screen_text(app), message="the baseline's star")
        # b on another run: a new baseline, and the task given at start is kept
        table.move_to_key(next(k for k in table.row_keys if app.runs_panel.run_by_key(k).name == "mlp-wide"))
        await pilot.press("b")
        assert app.runs_panel.run_by_key(app.runs_panel.baseline_key).name == "mlp-wide"
        assert app.diagnoser.task == task and app.diagnoser.baseline == app.runs_panel.run_by_key(app.runs_panel.baseline_key).run_id


def test_silent_after_must_be_positive(capsys):
    from tui_monitor.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["watch", "--silent-after", "0"])
    assert "must be more than 0" in capsys.readouterr().err


@sync
async def test_the_runs_panels_state_is_reactive_setting_it_redraws_the_rows_and_the_chart():
    """Selection, filter, order and baseline are the runs panel's reactives:
    set from code (not through a key), the rows and the chart follow."""
    from tui_monitor.tui.runfilter import parse_filter

    app = fixed_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        panel = app.runs_panel
        names = lambda: [panel.row_cells(i)[1].plain for i in range(panel.row_count)]  # noqa: E731
        keys = {panel.run_by_key(k).name: k for k in panel.row_keys}
        panel.selected = (keys["mlp-wide"], keys["diverging"])
        await until(pilot, lambda: [r.name for r in app.chart.drawn()[0]] == ["mlp-wide", "diverging"],
                    message="the chart draws the selection")
        assert rows_text(app)[names().index("mlp-wide")].startswith("●")
        panel.filter = parse_filter("mlp")
        await until(pilot, lambda: names() == ["mlp-wide"], message="the rows filtered")
        panel.filter = parse_filter("")
        panel.order = ("name", True)
        await until(pilot, lambda: names() == sorted(names(), reverse=True), message="the rows sorted")
        await until(pilot, lambda: "sort run▼" in screen_text(app).splitlines()[0], message="the status line's sort")
        panel.baseline_key = keys["linear-baseline"]
        await until(pilot, lambda: app.chart.subject.baseline is not None, message="the chart's baseline")
        assert app.chart.subject.baseline.name == "linear-baseline"


@pytest.mark.parametrize("size", [(120, 40), (80, 24)], ids=["120x40", "80x24"])
@sync
async def test_the_decision_path_says_unknown_and_what_would_decide_it(size):
    """A run with no declared task and no held-out split: the engine's
    verdict is unknown, not healthy, and the decision path on screen says so
    with what would decide it, as the text report and the JSON do."""
    from tui_helpers import run_records

    from tui_monitor.store import Store

    store = Store()
    train = 2.0 * np.exp(-np.arange(600) / 150) + 0.9
    store.apply_many(run_records("free0001", "free-run", train), stream="free")
    app = fixed_app(store, engine="auto")
    async with app.run_test(size=size) as pilot:

        def path_on_screen() -> str:
            lines = screen_text(app).splitlines()
            start = next((i for i, line in enumerate(lines) if "free-run: " in line and "large?" in line), None)
            if start is None:
                return ""
            column = lines[start].index("free-run: ")   # the path's panel: what is right of its left edge
            return " ".join(" ".join(line[column:] for line in lines[start:-1]).split())

        path = await until(pilot, lambda: (lambda p: "⇒ unknown" in p and p)(path_on_screen()),
                           message="the verdict on the path")
        assert "held-out loss large? unknown ⇒ unknown to decide: declare the task" in path, path
        assert "healthy" not in path
        # without the asides in brackets (how to declare a task), so the findings keep their rows
        assert path.endswith("to decide: declare the task or mark a baseline run of the same data; "
                             "a held-out loss"), path
