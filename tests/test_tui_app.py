"""The app driven with keys (Textual's Pilot) against streams that real
processes are writing."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, wait_for
from tui_helpers import WRITER, screen_text, sync, until
from tui_monitor.sources import Ingest
from tui_monitor.tui import KEYS, MonitorApp
from tui_monitor.tui.widgets import ChartView, FindingsList, RunsTable


def start_writer(directory, name, steps=200, delay=0.01, nan=False, gate=None) -> subprocess.Popen:
    """A process logging ``steps`` steps; with ``gate=(path, step)`` it waits
    at that step until ``path`` exists."""
    args = [sys.executable, "-c", WRITER, str(directory), name, str(steps), str(delay), str(ROOT)]
    if nan:
        args.append("nan")
    if gate:
        args.append("gate=%s:%d" % gate)
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.fixture
def ingest(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    ing = Ingest()
    ing.add_path(str(runs), poll=True, interval=0.05)
    ing.start()
    yield ing, runs
    ing.stop()


@pytest.fixture
def writers():
    procs = []
    yield procs
    for p in procs:
        if p.poll() is None:
            p.kill()
        p.wait(10)


def chart_lines(app):
    chart = app.query_one("#chart", ChartView)
    r = chart.render()
    return [t.plain for t in r.render_lines(chart.content_size.width, chart.content_size.height)]


def row_count(app):
    return app.query_one(RunsTable).row_count


@sync
async def test_live_runs_findings_smoothing_logy_export(ingest, writers, tmp_path):
    ing, runs = ingest
    out = tmp_path / "out"
    go = tmp_path / "go"   # both runs stop at step 50 until the first curve is drawn
    writers.append(start_writer(runs, "net-a", steps=300, delay=0.01, nan=True, gate=(go, 50)))
    writers.append(start_writer(runs, "net-b", steps=300, delay=0.005, gate=(go, 50)))
    app = MonitorApp(ing.store, ing, out_dir=str(out), interval=0.05)
    async with app.run_test(size=(160, 48)) as pilot:
        # runs appear, curves update
        await until(pilot, lambda: row_count(app) == 2, message="two runs in the table")
        await until(pilot, lambda: app.query_one("#chart", ChartView).last_spec is not None
                    and app.query_one("#chart", ChartView).last_spec.lines, message="a curve")
        n0 = len(app.chart.drawn()[0][0].get("loss").values)
        assert n0 <= 51
        go.touch()
        await until(pilot, lambda: len(app.chart.drawn()[0][0].get("loss").values) > n0 + 20, message="more points")
        text = screen_text(app)
        assert "net-a" in text and "net-b" in text
        # a finding appears (the NaN of net-a) and can be selected
        await until(pilot, lambda: any(f.kind == "divergence" for f in app.findings), timeout=30,
                    message="a divergence finding")
        await until(pilot, lambda: "divergence" in screen_text(app), message="the finding on screen")
        await pilot.press("f")
        fl = app.query_one(FindingsList)
        assert app.focused is fl
        idx = next(i for i, f in enumerate(fl.findings) if f.kind == "divergence")
        fl.highlighted = idx
        await pilot.press("enter")
        await until(pilot, lambda: app.findings_panel.chosen is not None, message="the finding chosen")
        run_a = next(r for r in ing.store.runs.values() if r.name == "net-a")
        assert app.runs_panel.selected == (RunsTable.row_key(run_a),)
        assert [r.name for r in app.chart.drawn()[0]] == ["net-a"]
        spec = app.query_one("#chart", ChartView).last_spec
        assert any(m.glyph == "!" for m in spec.vmarks), "the finding's onset is marked"
        # smoothing and log-y change what is drawn
        before = chart_lines(app)
        await pilot.press("left_square_bracket", "left_square_bracket", "left_square_bracket")
        assert app.chart.view.smoothing == 0.0
        no_smooth = chart_lines(app)
        assert no_smooth != before
        await pilot.press("right_square_bracket")
        assert app.chart.view.smoothing == 0.3
        await pilot.press("y")
        assert app.chart.view.log_y
        logged = chart_lines(app)
        assert logged != no_smooth and "log y" in screen_text(app).splitlines()[0]
        # export writes a valid CSV of the chart's series
        for p in writers:
            p.wait(30)
        await until(pilot, lambda: all(r.end is not None for r in ing.store.runs.values()),
                    message="every record read")
        await pilot.press("e")
        await until(pilot, lambda: app.exports, message="the CSV export")
        path = Path(app.exports[0])
        assert path.parent == out and path.suffix == ".csv"
        rows = list(csv.reader(path.open()))
        assert rows[0] == ["run", "run_id", "rank", "split", "metric", "step", "time", "value"]
        n_points = sum(len(s) for key, s in run_a.series.items() if key[1] == "loss")
        assert len(rows) - 1 == n_points
        assert {r[3] for r in rows[1:]} == {"train", "val"} and "NaN" in {r[7] for r in rows[1:]}
        # s saves the screen
        await pilot.press("s")
        await until(pilot, lambda: len(app.exports) == 2, message="the SVG")
        assert Path(app.exports[1]).read_text().lstrip().startswith("<svg")


@sync
async def test_baseline_marking_changes_the_comparison(ingest, writers):
    ing, runs = ingest
    writers.append(start_writer(runs, "small", steps=80, delay=0))
    writers.append(start_writer(runs, "big", steps=80, delay=0))
    for p in writers:
        p.wait(30)
    app = MonitorApp(ing.store, ing, interval=0.05)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: row_count(app) == 2 and all(len(r.series) for r in ing.store.runs.values()),
                    message="two runs")
        table = app.query_one(RunsTable)
        keys = {app.runs_panel.run_by_key(k).name: k for k in table.row_keys}
        table.move_to_key(keys["small"])
        await pilot.press("b")
        assert app.runs_panel.baseline_key == keys["small"]
        assert app.diagnoser.baseline == app.runs_panel.run_by_key(keys["small"]).run_id
        table.move_to_key(keys["big"])
        await until(pilot, lambda: any((l.label or "").startswith("baseline small")
                                              for l in app.query_one("#chart", ChartView).last_spec.lines),
                           message="the baseline's curve on the chart")
        text = screen_text(app)
        assert "train vs base" in text and "baseline small" in text
        await pilot.press("b")  # another run: the baseline moves
        assert app.runs_panel.baseline_key == keys["big"]
        table.move_to_key(keys["big"])
        await pilot.press("b")  # the same run again: unmarked
        assert app.runs_panel.baseline_key is None
        # no baseline: its column, '-' on every row, makes way for the others
        await until(pilot, lambda: "train vs base" not in screen_text(app), message="the baseline's column gone")
        assert "best val" in screen_text(app)


@sync
async def test_stream_text_is_never_markup(ingest, writers):
    ing, runs = ingest
    names = ["[bold]x[/]", "[@click=app.quit]y[/]", "\x1b[31mred"]
    for n in names:
        writers.append(start_writer(runs, n, steps=30, delay=0))
    for p in writers:
        p.wait(30)
    app = MonitorApp(ing.store, ing, interval=0.05)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: row_count(app) == 3, message="three runs")
        await pilot.press("a")  # all selected: the legend shows every name
        text = await until(pilot, lambda: "[bold]x[/]" in screen_text(app) and screen_text(app),
                           message="every name in the legend")
        assert "[bold]x[/]" in text and "[@click=app.quit]y[/]" in text
        assert "\\x1b[31mred" in text and "\x1b" not in text
        for _ in range(3):
            await pilot.press("down")
            await pilot.click(RunsTable)
        assert app.is_running
        # a notification that names a run shows the name as it is
        table = app.query_one(RunsTable)
        table.move_to_key(next(k for k in table.row_keys if app.runs_panel.run_by_key(k).name == "[bold]x[/]"))
        await pilot.press("b")
        note = await until(pilot, lambda: list(app._notifications), message="the notification")
        assert (note[-1].message, note[-1].markup) == ("baseline: [bold]x[/]", False)
        await pilot.press("m")
        await until(pilot, lambda: len(app.screen_stack) > 1, message="the metric picker")
        await pilot.press("escape", "question_mark")
        help_text = await until(pilot, lambda: KEYS[0][0] in screen_text(app) and screen_text(app),
                                message="the help screen")
        for key, _ in KEYS[:5]:
            assert key in help_text


@sync
async def test_keys_zoom_pan_x_axis_metric_and_grads(ingest, writers):
    ing, runs = ingest
    writers.append(start_writer(runs, "one", steps=120, delay=0))
    writers[0].wait(30)
    app = MonitorApp(ing.store, ing, interval=0.05, x_format=lambda t: "T")
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: row_count(app) == 1 and len(next(iter(ing.store.runs.values())).series) >= 3,
                    message="one run")
        await pilot.press("plus")
        assert app.chart.view.view == (0.5, 1.0)
        await pilot.press("less_than_sign")
        assert app.chart.view.view == (0.375, 0.875)
        await pilot.press("0", "x")
        assert app.chart.view.x_kind == "relative" and "time" in chart_lines(app)[-1]
        await pilot.press("x")
        assert app.chart.view.x_kind == "wall" and "T" in chart_lines(app)[-1]
        await pilot.press("M")
        assert app.chart.view.metric == "lr"
        await pilot.press("g")
        await until(pilot, lambda: "step time" in screen_text(app), message="the gradient/system view")
        await pilot.press("g")
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for t in ("Mark baseline", "Toggle log y", "Export CSV", "Save SVG", "Pick metric", "Cycle x axis"):
            assert t in titles


@sync
async def test_redraws_only_when_the_store_changes(tmp_path):
    from tui_helpers import NOW, synthetic_store

    store = synthetic_store()
    app = MonitorApp(store, interval=0.02, clock=lambda: NOW, threaded=False)
    async with app.run_test(size=(120, 30)) as pilot:
        await until(pilot, lambda: app._version == store.version, message="the first redraw")
        n = app.redraws
        for _ in range(25):  # 25 ticks, nothing new
            app._tick()
        assert app.redraws == n
        store.apply({"type": "metrics", "seq": 10_000, "step": 301, "time": NOW, "values": {"loss": 0.1}}, stream="a")
        await until(pilot, lambda: app.redraws > n, message="a redraw")


@sync
async def test_problems_screen_names_file_line_and_reason(ingest):
    ing, runs = ingest
    bad = runs / "bad.jsonl"
    lines = [
        '{"type":"run","seq":0,"v":1,"run_id":"r1","name":"bad","start":1.0,"host":"h","pid":null,'
        '"rank":0,"world_size":1,"config":{},"tags":{}}',
        '{"type":"metrics","seq":1,"step":0,"time":1.0,"values":{"loss":1.0}}',
        'not json at all [bold]x[/]',
        '{"type":"metrics","seq":2,"step":1,"time":1.5,"values":{"[@click=app.quit]t[/]":[1,2]}}',
        '{"type":"metrics","seq":3,"step":1,"time":2.0,"values":{"loss":0.5}}',
    ]
    bad.write_text("\n".join(lines) + "\n")
    problems = wait_for(lambda: ing.recent_problems()[1] >= 2 and ing.recent_problems(), message="two problems")
    kept, total = problems
    assert total == 2 and [p.line_number for p in kept] == [3, 4]
    app = MonitorApp(ing.store, ing, interval=0.05)
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: "2 stream problems (p)" in screen_text(app), message="the count in the status bar")
        await pilot.press("p")
        text = await until(pilot, lambda: "bad.jsonl:3" in screen_text(app) and screen_text(app),
                           message="the problems screen")
        assert "2 problems reading the streams" in text
        at3, at4 = text.index("bad.jsonl:3"), text.index("bad.jsonl:4")
        assert at4 < at3  # newest first
        assert kept[0].reason[:30] in text and kept[1].reason[:30] in text
        assert "'[@click=app.quit]t[/]'" in text  # a metric name is shown as it is, not run as markup
        assert app.is_running
        # a new problem while the screen is open shows up there
        with bad.open("a") as f:
            f.write("{broken\n")
        await until(pilot, lambda: "bad.jsonl:6" in screen_text(app), message="the new problem")
        await pilot.press("escape")
        await until(pilot, lambda: len(app.screen_stack) == 1, message="back to the main screen")
