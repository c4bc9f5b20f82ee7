"""The screen reads at 80x24: a finding's evidence and advice one key away,
the focus visible and the arrows moving what has it, the status line and
the footer whole, the empty and waiting states saying what is happening,
and the gradient table saying which of its layers are shown."""
from __future__ import annotations

import re

import pytest

from tui_helpers import FixedFindings, deep_store, fixed_app, screen_text, sync, until, write_run
from tui_monitor.sources import open_ingest
from tui_monitor.tui import MonitorApp
from tui_monitor.tui.findings import finding_text
from tui_monitor.tui.screens import FindingScreen
from tui_monitor.tui.widgets import FindingsList, RunsTable


@sync
async def test_at_80x24_a_findings_evidence_and_advice_are_one_key_away_and_the_arrows_follow_the_focus():
    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert "evidence:" not in text and "advice:" not in text  # headlines only at 80 columns
        assert "findings (f)" in text
        table = app.query_one(RunsTable)
        cursor = table.cursor_key()
        await pilot.press("f")
        fl = app.query_one(FindingsList)
        assert app.focused is fl and fl.highlighted == 0
        text = screen_text(app)
        assert "findings: ↑↓ move · enter: evidence & advice · esc: back to runs" in text  # the focus says so
        assert "esc runs" in text.splitlines()[-1]
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, FindingScreen), message="the finding's screen")
        text = screen_text(app)
        assert "evidence: the train loss became NaN at step 240" in text
        assert "advice: restart from the last good checkpoint" in text
        assert app.findings_panel.chosen.id == "div"  # and the chart shows it
        assert [r.name for r in app.chart.drawn()[0]] == ["diverging"]
        await pilot.press("escape")
        assert app.focused is fl
        await pilot.press("down")  # the findings' cursor moves, not the runs'
        assert fl.highlighted == 1
        runs_cursor = table.cursor_key()
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, FindingScreen), message="the second finding")
        assert "evidence: the val loss rose from its best 0.2461" in screen_text(app)
        await pilot.press("escape", "escape")  # back to the runs: the arrows move the runs again
        assert app.focused is table and "findings (f)" in screen_text(app)
        await pilot.press("up")
        assert table.cursor_key() != runs_cursor
        assert cursor is not None


@sync
async def test_at_160x48_the_findings_show_their_evidence_and_enter_shows_the_finding_on_the_chart():
    app = fixed_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        text = screen_text(app)
        assert "evidence: the train loss became NaN at step 240" in text and "advice: early stopping" in text
        await pilot.press("f", "down", "enter")
        assert not isinstance(app.screen, FindingScreen)  # nothing hidden to open
        assert app.findings_panel.chosen.id == "ovf" and [r.name for r in app.chart.drawn()[0]] == ["mlp-wide"]


def test_a_headline_names_the_run_it_is_about_and_the_compared_run_apart():
    from types import SimpleNamespace

    f = SimpleNamespace(kind="model_bias", symptom="plateau", runs=[("a", 0), ("b", 0)],
                        run_names=["linear", "mlp-wide"], step=100, severity="warning", confidence=0.8)
    headline = finding_text(f, detail=False).plain
    assert "linear (vs mlp-wide)" in headline and "linear, mlp-wide" not in headline


def test_a_findings_wrapped_evidence_and_advice_stay_under_their_label():
    """A wrapped line of evidence or advice is indented under its label's
    text (at the left edge it read as the start of another finding), and the
    text is data, never markup."""
    from types import SimpleNamespace

    from rich.console import Console

    f = SimpleNamespace(kind="divergence", symptom="non finite", runs=[("a", 0)], run_names=["net"], step=7,
                        severity="critical", confidence=1.0, guidance_step="1. Training loss large",
                        evidence="the train loss of [bold]net[/] became NaN at step 7 while the learning rate rose",
                        advice="restart from the last good checkpoint with a smaller learning rate or warm-up")
    console = Console(width=48, record=True, color_system=None)
    console.print(finding_text(f))
    lines = [line.rstrip() for line in console.export_text().splitlines()]
    ev = next(i for i, line in enumerate(lines) if "evidence:" in line)
    assert lines[ev].startswith("  evidence: the train loss of [bold]net[/]")  # as it came
    at = lines[ev].index("the train")
    assert lines[ev + 1][:at].strip() == "" and lines[ev + 1][at:at + 1].strip(), lines  # under its text
    advice = next(i for i, line in enumerate(lines) if "advice: restart" in line)
    assert lines[advice].index("restart") == at and lines[advice + 1][:at].strip() == ""
    assert lines[-1] == "  guidance: 1. Training loss large"


@sync
async def test_at_80_columns_the_status_line_and_the_footer_are_whole():
    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("y", "plus")
        lines = screen_text(app).splitlines()
        status, footer = lines[0], lines[-1]
        for part in ("3 runs", "2 findings", "metric loss", "ema 0.60", "log y", "zoom 50%"):
            assert part in status, part
        assert "…" not in status
        for part in ("? help", "q quit", "space select", "m metric", "f findings", "g grads", "^p palette"):
            assert part in footer, part


@sync
async def test_an_empty_monitor_says_which_path_is_missing_and_where_it_listens(tmp_path):
    missing = tmp_path / "nosuchdir"
    store, ingest = open_ingest([str(missing)], listen="127.0.0.1:0")
    try:
        port = ingest.listeners[0].bound[1]
        app = MonitorApp(store, ingest, interval=0.05)
        async with app.run_test(size=(80, 24)) as pilot:
            text = await until(pilot, lambda: "listening on" in screen_text(app) and screen_text(app),
                               message="the waiting screen")
            assert "%s does not exist" % missing in " ".join(text.split())
            assert "TUI_MONITOR_TO=127.0.0.1:%d python train.py" % port in text
            assert "status" not in text  # no empty runs table over the words
            # the folder appears, and a run in it: the waiting screen makes way for it
            missing.mkdir()
            write_run(missing / "late.jsonl", "late-run")
            await until(pilot, lambda: "late-run" in screen_text(app), message="the run")
            assert "No runs yet" not in screen_text(app)
            assert app.focused is app.runs_panel  # the arrows move the runs at once
    finally:
        ingest.stop()


def last_line(text: str) -> str:
    """The screen's last line that is not blank: the footer."""
    return [line for line in text.splitlines() if line.strip()][-1]


@sync
async def test_an_empty_folder_says_the_monitor_waits_for_its_first_run(tmp_path):
    store, ingest = open_ingest([str(tmp_path)])
    try:
        app = MonitorApp(store, ingest, interval=0.05)
        async with app.run_test(size=(120, 40)) as pilot:
            text = await until(pilot, lambda: "waiting for the first run" in screen_text(app) and screen_text(app),
                               message="the waiting screen")
            assert str(tmp_path) in text and "does not exist" not in text
            status = text.splitlines()[0]  # nothing to chart or find yet: the status line says only that
            assert status.split() == ["tui-monitor", "0", "runs"], status
            # only keys that do something before a run comes
            footer = await until(pilot, lambda: (lambda f: "help" in f and f)(last_line(screen_text(app))),
                                 message="the footer")
            assert "help" in footer and "quit" in footer and "palette" in footer, footer
            for key in ("select", "metric", "findings", "grads"):
                assert key not in footer, footer
            write_run(tmp_path / "first.jsonl", "first-run")
            text = await until(pilot, lambda: "first-run" in screen_text(app) and screen_text(app),
                               message="the run")
            assert "0 findings" in text.splitlines()[0] and "metric loss" in text.splitlines()[0]
            footer = await until(pilot, lambda: (lambda f: "grads" in f and f)(last_line(screen_text(app))),
                                 message="the run's keys in the footer")
            for key in ("select", "metric", "findings"):
                assert key in footer, footer
    finally:
        ingest.stop()


@sync
async def test_the_gradient_table_of_20_layers_scrolls_and_says_which_layers_are_shown():
    app = fixed_app(deep_store(20))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("end", "g")
        text = await until(pilot, lambda: "layers 1–" in screen_text(app) and screen_text(app),
                           message="the layers hint")
        assert "of 20" in text and "layer19" not in text
        await pilot.press("tab")
        assert app.focused.id == "layer-table"
        await pilot.press("end")
        text = await until(pilot, lambda: "layer19.weight" in screen_text(app) and screen_text(app),
                           message="the last layer")
        assert re.search(r"layers \d+–20 of 20", text)


@sync
async def test_runs_sort_by_any_column_and_filter_by_config_values():
    from tui_helpers import synthetic_store, run_records

    store = synthetic_store()
    for i, lr in enumerate((1e-4, 3e-3, 5e-2)):
        store.apply_many(run_records("lr%04d" % i, "sweep-lr%d" % i, [1.0 - 0.1 * i] * 20, val=[0.9 - 0.2 * i] * 2,
                                     config={"lr": lr, "optim": "adam" if i else "sgd"}), stream="s%d" % i)
    app = fixed_app(store)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        panel = app.runs_panel

        def names():
            return [panel.row_cells(i)[1].plain for i in range(panel.row_count)]

        panel.action_sort("best")  # the lowest best validation loss first
        await pilot.pause()
        assert names()[:3] == ["diverging", "mlp-wide", "sweep-lr2"] and "best val▲" in screen_text(app)
        assert "sort best val▲" in screen_text(app).splitlines()[0]  # the column's name, as its header says
        panel.action_sort("best")  # again: reversed
        await pilot.pause()
        assert names()[0] == "sweep-lr0" and "best val▼" in screen_text(app)
        panel.action_sort("finding")  # the worst finding first
        await pilot.pause()
        assert names()[:2] == ["diverging", "mlp-wide"]
        await pilot.press("o")  # o steps to the next column: after the last, the order runs came in
        assert panel.sort_by is None and names()[0] == "linear-baseline"
        await pilot.press("o")
        assert panel.sort_by == "name" and names()[0] == "diverging"
        # filter: config conditions and a regex on the name together
        await pilot.press("slash")
        await pilot.press(*"lr>1e-3")
        await pilot.press("enter")
        await until(pilot, lambda: panel.row_count == 2, message="the config filter")
        assert sorted(names()) == ["sweep-lr1", "sweep-lr2"] and "filter lr>1e-3" in screen_text(app)
        assert "2 of 6 runs  (2 finished)" in screen_text(app).splitlines()[0]  # what the filter let through
        await pilot.press("slash", "ctrl+u", *"optim=adam lr2", "enter")
        await until(pilot, lambda: names() == ["sweep-lr2"], message="both conditions")
        # a click on a column's header sorts by it
        await pilot.press("slash", "ctrl+u", "enter")
        await until(pilot, lambda: panel.row_count == 6, message="no filter")
        x = next(x for x in range(160) if panel.column_at(x) == "step")
        await pilot.click("#runs", offset=(x, 0))
        assert panel.sort_by == "step" and names()[0] == "sweep-lr0"


def test_the_filter_reads_regexes_and_config_conditions():
    from types import SimpleNamespace as run

    from tui_monitor.tui.runfilter import FilterError, parse_filter

    a = run(name="net-a", run_id="1", config={"lr": 0.01, "model": {"depth": 20}, "optim": "Adam"})
    b = run(name="net-b", run_id="2", config={"lr": 1e-4, "model": {"depth": 56}, "optim": "sgd"})
    for text, want in (("lr>1e-3", ["net-a"]), ("lr<=1e-4", ["net-b"]), ("model.depth>=50", ["net-b"]),
                       ("optim=adam", ["net-a"]), ("optim!=adam", ["net-b"]), ("net- lr>0", ["net-a", "net-b"]),
                       ("b$", ["net-b"]), ("batch=64", []), ("", ["net-a", "net-b"])):
        f = parse_filter(text)
        assert [r.name for r in (a, b) if not f or f.matches(r)] == want, text
    with pytest.raises(FilterError, match="bad regex"):
        parse_filter("net-[")


@sync
async def test_the_palette_runs_each_widgets_action_from_the_one_table():
    from tui_monitor.tui.actions import ACTIONS, KEYS

    app = fixed_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        assert all(a.title in commands for a in ACTIONS if a.title)
        assert commands["Toggle log y"].help == "y — log y axis on / off"  # the palette teaches the key
        assert commands["Zoom in"].help.startswith("+ / = — ")
        assert {k for k, _ in KEYS} >= {"/", "o", "f", "[", "y", "q / ctrl+c"}
        app.call_later(commands["Toggle log y"].callback)
        await until(pilot, lambda: app.chart.log_y, message="log y from the palette")
        app.call_later(commands["Sort runs by next column"].callback)
        await until(pilot, lambda: app.runs_panel.sort_by == "name", message="sorted from the palette")
        # the sort's help names the columns by the headers the table shows
        await pilot.press("b")  # a baseline: its column shows
        header = await until(pilot, lambda: next((line for line in screen_text(app).splitlines() if " status " in line
                                                 and "vs base" in line), None), message="the baseline's column")
        assert "train vs base" in header and "best val" in header
        assert "best val, params, train vs base, finding)" in commands["Sort runs by next column"].help


@sync
async def test_f_and_enter_arriving_together_open_the_finding_not_select_a_run():
    """A terminal delivers keys typed fast (or sent by tmux) in one read: the
    driver queues both at once. Enter after f goes to the findings, which f
    focused, not to the runs table (it selected the highlighted run)."""
    from textual import events

    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.post_message(events.Key("f", "f"))
        app.post_message(events.Key("enter", "\r"))
        await until(pilot, lambda: isinstance(app.screen, FindingScreen), message="the finding's screen")
        assert app.runs_panel.selected == (app.runs_panel.row_key(app.store.get("cccc3333")),)  # the finding's run
        assert "evidence: the train loss became NaN at step 240" in screen_text(app)


@sync
async def test_o_steps_over_the_baselines_column_while_it_is_hidden():
    """No baseline marked: its column is hidden, so o goes from params to
    finding (it stopped on the hidden column, sorting by '-' on every row);
    with one, o stops there."""
    app = fixed_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        panel = app.runs_panel
        panel.action_sort("params")
        await pilot.press("o")
        assert panel.sort_by == "finding"
        await pilot.press("b")  # a baseline: its column shows
        await until(pilot, lambda: "train vs base" in screen_text(app), message="the baseline's column")
        panel.action_sort("params")
        await pilot.press("o")
        assert panel.sort_by == "base"
        await pilot.press("b")  # unmarked: its column hides, and the sort by it goes
        await until(pilot, lambda: "train vs base" not in screen_text(app), message="the column and its sort gone")
        assert panel.sort_by is None


@sync
async def test_esc_and_down_arriving_together_move_the_runs_not_the_findings():
    """Esc leaves the findings at once: a key in the same read as esc (down)
    moves the runs' cursor; it moved the findings' highlight, since the runs
    took the focus only once a message had gone round."""
    from textual import events

    app = fixed_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("f")
        findings = app.findings_panel.findings_list
        assert app.focused is findings and findings.highlighted == 0
        app.post_message(events.Key("escape", None))
        app.post_message(events.Key("down", None))
        await until(pilot, lambda: app.runs_panel.cursor_row == 1, message="the runs' cursor moved")
        assert app.focused is app.runs_panel and findings.highlighted == 0


@sync
async def test_the_runs_table_shows_whole_finding_titles_where_there_is_room_and_aligns_numbers_under_their_headers():
    from types import SimpleNamespace as f

    class LongTitle(FixedFindings):
        def __init__(self, store, baseline=None):
            super().__init__(store)
            self.findings.append(f(kind="optimization", symptom="vanishing_gradients", runs=[("aaaa1111", 0)],
                                   run_names=["linear-baseline"], step=50, severity="warning", confidence=0.8,
                                   evidence={}, explanation="x", advice="y", guidance_step="", id="van"))

    from tui_helpers import synthetic_store

    store = synthetic_store()
    app = fixed_app(store, engine=LongTitle(store))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        lines = screen_text(app).splitlines()
        header = lines[1]
        assert "optimization: vanishing gradients" in next(line for line in lines if "linear-baseline" in line)
        row = next(line for line in lines if "mlp-wide" in line)
        for label in ("step", "train", "val", "params"):  # the header's last letter over the number's last digit
            end = header.index(label) + len(label)
            assert row[end - 1] != " " and row[end] == " ", (label, header, row)
    async with fixed_app(store, engine=LongTitle(store)).run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        lines = screen_text(pilot.app).splitlines()
        assert all(len(line.rstrip()) <= 80 for line in lines[1:6])  # narrow: the finding column gives way
        row = next(line for line in lines if "linear-baseline" in line)
        assert re.search(r"optimization: \w+…", row), row


@sync
async def test_the_focused_findings_title_is_whole_and_says_what_enter_does_at_120_columns():
    app = fixed_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("f")
        text = screen_text(app)
        # the evidence is in the list already: enter puts the finding on the chart
        assert "findings: ↑↓ · enter: on the chart · esc: runs━" in text
        await pilot.press("escape")
        assert "findings (f)" in screen_text(app) and "esc: runs" not in screen_text(app)


def test_the_system_line_shows_one_step_time():
    """The hook's system samples carry step_time and steps_per_sec: the
    line says the step time and throughput once (it listed them again, with
    other values, as 'step_time 0.0119  steps_per_sec 84')."""
    from tui_helpers import NOW, T0, run_records
    from tui_monitor.schema import split_metric
    from tui_monitor.store import Store
    from tui_monitor.tui.gradpanel import system_text

    store = Store(splitter=split_metric, clock=lambda: NOW)
    recs = run_records("sys1", "with-system", [1.0 - 0.01 * i for i in range(50)], end=None)
    recs.append({"type": "system", "seq": len(recs), "time": T0 + 50, "step": 49,
                 "values": {"step_time": 0.0119, "steps_per_sec": 84.0, "cpu_percent": 17.0, "rss": 3.2e8}})
    store.apply_many(recs, stream="s")
    text = system_text(store.get("sys1")).plain
    assert text.count("step time") == 1 and "step_time" not in text and "steps_per_sec" not in text
    assert "throughput 1 steps/s" in text and "CPU 17%" in text  # the spacing of the log calls: 1 s a step
    # a stream with no train series to time: the sample's step time fills the line
    store.apply_many([{"type": "run", "seq": 0, "v": 1, "run_id": "sys2", "name": "sys-only", "start": T0,
                       "host": "h", "pid": 1, "rank": 0, "world_size": 1, "config": {}, "tags": {}},
                      {"type": "system", "seq": 1, "time": T0 + 1, "values": {"step_time": 0.0119,
                                                                              "steps_per_sec": 84.0}}], stream="t")
    text = system_text(store.get("sys2")).plain
    assert "step time 0.0119 s" in text and "throughput 84 steps/s" in text and "step_time" not in text
    assert "no system samples" not in text


@sync
async def test_every_modal_screen_says_how_to_close_it():
    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        for key, hint in (("question_mark", "keys · ↑↓ scroll · esc: close"), ("p", "stream problems · esc: close"),
                          ("m", "metric · enter: show · esc: cancel"),
                          ("slash", "filter runs · enter: apply · esc: cancel")):
            await pilot.press(key)
            text = await until(pilot, lambda hint=hint: hint in screen_text(app) and screen_text(app), message=hint)
            if key == "p":  # no problems: a small box, not a screenful of nothing
                lines = text.splitlines()
                top = next(i for i, line in enumerate(lines) if "╭─ stream problems" in line)
                assert "╰" in lines[top + 2], text
            await pilot.press("escape")
            await until(pilot, lambda hint=hint: hint not in screen_text(app), message="closed")


def test_the_waiting_screen_gives_each_source_the_line_of_code_that_feeds_it():
    from tui_monitor.tui.waiting import SourcesState, waiting_text

    listening = waiting_text(SourcesState(listening=("127.0.0.1:7007",))).plain
    assert "    TUI_MONITOR_TO=127.0.0.1:7007 python train.py" in listening
    assert 'tui_monitor.init(name=..., to="127.0.0.1:7007")' in listening
    assert "dir=" not in listening  # a stream file would not reach the listener
    assert "ssh -R 7007:127.0.0.1:7007 THAT_HOST" in listening
    missing = waiting_text(SourcesState(missing=("nosuchdir/",))).plain
    assert '\n    run = tui_monitor.init(name=..., dir="nosuchdir/")\n' in missing  # where watch looks
    assert '\n    run.log({"loss": loss}, step=step)\n' in missing


@sync
async def test_the_findings_screen_reads_the_next_finding_with_the_arrows():
    app = fixed_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("f", "enter")
        await until(pilot, lambda: isinstance(app.screen, FindingScreen), message="the finding's screen")
        text = screen_text(app)
        assert "finding 1 of 2" in text and "← → the previous / next finding" in text
        await pilot.press("right")
        text = await until(pilot, lambda: "finding 2 of 2" in screen_text(app) and screen_text(app),
                           message="the next finding")
        assert "evidence: the val loss rose from its best 0.2461" in text
        await until(pilot, lambda: [r.name for r in app.chart.drawn()[0]] == ["mlp-wide"], message="the chart")
        await pilot.press("right")  # the last: stays
        assert "finding 2 of 2" in screen_text(app)
        await pilot.press("escape")
        assert app.query_one(FindingsList).highlighted == 1  # the list where the reading stopped
