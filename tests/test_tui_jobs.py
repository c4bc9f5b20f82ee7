"""The TUI's multi-rank job: the ranks folded into one job row (expandable),
the job view with one line per rank and the per-rank step-time chart."""
from __future__ import annotations

import re


from rich.console import Console
from textual.widgets import ContentSwitcher

from diagnose_helpers import T0, Clock, rank_records
from tui_helpers import screen_text, synthetic_store, sync, until
from tui_monitor.diagnose import Diagnoser
from tui_monitor.tui import MonitorApp
from tui_monitor.tui.jobview import job_chart, job_layout, job_members, rank_lines
from tui_monitor.tui.rowkeys import job_key
from tui_monitor.tui.widgets import RunsTable
from tui_monitor.tui.widgets.jobs import JobView
from tui_monitor.tui.widgets.runs import run_row


def job_store(world=4, slow=2):
    store = synthetic_store()
    clock = Clock(T0 + 10.1)
    store.clock = clock
    for r in range(world):
        store.apply_many(rank_records(r, world=world, data_time=0.06 if r == slow else 0.005,
                                      host=f"gpu{r // 2:02d}"), stream=f"rank{r}")
    return store, clock


def test_job_layout_folds_ranks_into_one_row():
    store, _ = job_store()
    runs = list(store.runs.values())
    rows = job_layout([("run", r) for r in runs])
    kinds = [k for k, _ in rows]
    assert kinds.count("job") == 1 and kinds.count("run") == 3  # the 3 single runs stay
    (_, (run_id, ranks)), = [x for x in rows if x[0] == "job"]
    assert run_id == "job-1" and [r.rank for r in ranks] == [0, 1, 2, 3]
    rows = job_layout([("run", r) for r in runs], expanded={"job-1"})
    assert [k for k, _ in rows].count("run") == 7


def test_rank_lines_and_chart():
    store, clock = job_store()
    eng = Diagnoser(store, clock=clock)
    eng.update()
    ranks = job_members(store.runs.values(), "job-1")
    c = Console(width=140, record=True, file=None)
    with c.capture() as cap:
        c.print(rank_lines(ranks, eng.findings, clock.t))
    text = cap.get()
    lines = text.splitlines()
    assert "4 of 4 ranks" in lines[0] and "on 2 hosts" in lines[0]
    assert "data_time" in lines[1]
    row2 = next(line for line in lines if line.strip().startswith("2 "))
    assert "gpu01:0" in row2 and "99" in row2 and "straggler" in row2 and "100 ms" in row2
    spec = job_chart(ranks, 80)
    assert [ln.label for ln in spec.lines] == ["r0 gpu00", "r1 gpu00", "r2 gpu01", "r3 gpu01"]
    assert all(abs(float(ln.y.mean()) - 0.1) < 1e-3 for ln in spec.lines)


def test_the_step_time_chart_of_a_large_job_shows_the_slowest_ranks():
    store = synthetic_store()
    paces = {17: 0.3, 9: 0.2, 4: 0.05}  # rank 17 the slowest, then 9; rank 4 the fastest; the others 0.1
    for r in range(20):
        store.apply_many(rank_records(r, world=20, pace=paces.get(r, 0.1), host=f"gpu{r // 2:02d}"),
                         stream=f"rank{r}")
    ranks = job_members(store.runs.values(), "job-1")
    spec = job_chart(ranks, 200, max_ranks=6)
    labels = [ln.label.split()[0] for ln in spec.lines]
    assert len(labels) == 6 and {"r17", "r9", "r4"} <= set(labels)
    assert labels == sorted(labels, key=lambda lbl: int(lbl[1:]))  # drawn in rank order
    assert spec.note == "6 of 20 ranks: the slowest, the median and the fastest"
    assert len(job_chart(ranks[:5], 200, max_ranks=6).lines) == 5 and not job_chart(ranks[:5], 200).note


@sync
async def test_job_row_expands_and_job_view_shows_ranks():
    store, clock = job_store()
    app = MonitorApp(store, clock=clock, threaded=False)
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.query_one(RunsTable)
        await until(pilot, lambda: table.row_count == 4, message="3 runs and one job row")
        keys = list(table.row_keys)
        assert job_key("job-1") in keys
        await until(pilot, lambda: "ddp · 4 ranks · 2 hosts" in screen_text(app), message="the job row")
        await until(pilot, lambda: "ranks: straggler" in screen_text(app), message="the job's finding")
        table.move_to_key(job_key("job-1"))
        await pilot.pause()
        assert [r.rank for r in app.chart.drawn()[0]] == [0, 1, 2, 3]  # the chart draws every rank's loss
        await pilot.press("enter")
        await until(pilot, lambda: table.row_count == 8, message="the ranks under the job row")
        await pilot.press("j")
        view = app.query_one(JobView)
        await until(pilot, lambda: len(view.ranks) == 4, message="the job view")
        text = screen_text(app)
        assert "step time per rank" in text and "gpu01:0" in text
        await pilot.press("j")  # back from the job view
        assert app.query_one(ContentSwitcher).current != "job"
        await pilot.press("z")
        await until(pilot, lambda: table.row_count == 4, message="folded again")
        table.move_to_key(job_key("job-1"))
        await pilot.press("b")  # a job's row is not a run: no baseline
        assert app.runs_panel.baseline_key is None
        note = await until(pilot, lambda: list(app._notifications), message="the reason")
        assert note[-1].message.startswith("the baseline is a run")


def test_a_run_row_uses_the_given_silent_threshold():
    store, clock = job_store()
    single = next(r for r in store.runs.values() if r.world_size == 1)
    single.status, single.last_seen = "running", clock.t - 45  # quiet for 45 s
    cells = run_row(single, clock.t, False, None, None, silent_after=30)
    assert cells["status"].plain == "silent 45s"
    assert run_row(single, clock.t, False, None, None, silent_after=60)["status"].plain == "running"


@sync
async def test_the_rank_list_of_a_large_job_scrolls_to_its_last_rank():
    store, clock = job_store(world=64, slow=61)
    app = MonitorApp(store, clock=clock, threaded=False)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(RunsTable)
        await until(pilot, lambda: job_key("job-1") in table.row_keys, message="the job row")
        table.move_to_key(job_key("job-1"))
        await pilot.press("j")
        view = app.query_one(JobView)
        await until(pilot, lambda: len(view.ranks) == 64, message="the job view")
        rank_list = view.query_one("#rank-list")
        assert rank_list.max_scroll_y > 0  # 64 ranks do not fit in 60% of 40 lines
        assert not _rank_shown(app, 63, "gpu31:1")
        rank_list.focus()
        await pilot.press("end")
        await until(pilot, lambda: _rank_shown(app, 63, "gpu31:1"), message="rank 63 scrolled into view")
        assert "straggler" in _rank_shown(app, 61, "gpu30:1")


@sync
async def test_the_loss_chart_of_a_large_job_shows_the_rank_that_went_wrong():
    store = synthetic_store()
    bad = {17: lambda s: float("nan") if s > 80 else 1.0, 21: lambda s: 5.0, 3: lambda s: 0.01}
    for r in range(24):  # rank 17 goes NaN, 21 is high, 3 is low; the others near 1
        store.apply_many(rank_records(r, world=24, loss=lambda s, rank: bad[rank](s) if rank in bad else
                                      1.0 / (1 + 0.01 * s)), stream=f"rank{r}")
    app = MonitorApp(store, threaded=False)
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.query_one(RunsTable)
        await until(pilot, lambda: job_key("job-1") in table.row_keys, message="the job row")
        table.move_to_key(job_key("job-1"))
        await pilot.pause()
        ranks = [r.rank for r in app.chart.drawn()[0]]
        assert len(ranks) == 12 and {17, 21, 3} <= set(ranks) and ranks == sorted(ranks)
        assert app.chart.drawn()[1] == "12 of 24 ranks: highest, median, lowest"
        text = await until(pilot, lambda: "12 of 24 ranks" in screen_text(app) and screen_text(app),
                           message="the note on the chart")
        assert all("ddp[rank %d]" % r in text for r in ranks), text  # the ranks' curves are told apart in the legend


def _rank_shown(app, rank, host):
    """The job view's line for ``rank`` as shown on screen, or ''."""
    rx = re.compile(r"^[│ ]*%d\s+%s\s" % (rank, re.escape(host)))
    return next((line for line in screen_text(app).splitlines() if rx.match(line)), "")


@sync
async def test_a_baseline_named_like_a_job_marks_its_rank_0_and_run_id_hash_rank_a_given_rank():
    for wanted, rank in (("ddp", 0), ("job-1#2", 2)):
        store, clock = job_store()
        app = MonitorApp(store, clock=clock, threaded=False, baseline=wanted)
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda app=app: app.runs_panel.baseline_key is not None, message="the baseline marked")
            assert app.runs_panel.run_by_key(app.runs_panel.baseline_key).rank == rank


@sync
async def test_b_on_a_rank_makes_that_rank_the_engines_baseline_not_the_job():
    store, clock = job_store()
    app = MonitorApp(store, clock=clock, threaded=False)
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.query_one(RunsTable)
        await until(pilot, lambda: job_key("job-1") in table.row_keys, message="the job row")
        table.move_to_key(job_key("job-1"))
        await pilot.press("enter")
        await until(pilot, lambda: any(app.runs_panel.run_by_key(k) is not None and app.runs_panel.run_by_key(k).rank == 2
                                       and app.runs_panel.run_by_key(k).world_size > 1 for k in table.row_keys),
                    message="the ranks under the job row")
        table.move_to_key(next(k for k in table.row_keys if app.runs_panel.run_by_key(k) is not None
                               and app.runs_panel.run_by_key(k).world_size > 1 and app.runs_panel.run_by_key(k).rank == 2))
        await pilot.press("b")
        assert app.diagnoser.baseline == "job-1#2"


@sync
async def test_at_80_columns_a_rank_line_stays_one_line():
    """A rank's line is wider than 80 columns with its finding: it is cut
    at the edge (the badge wrapped onto a line of its own, under the rank)."""
    store, clock = job_store()
    app = MonitorApp(store, clock=clock, threaded=False)
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.query_one(RunsTable)
        await until(pilot, lambda: "ranks: strag" in screen_text(app), message="the job's finding")
        table.move_to_key(job_key("job-1"))
        await pilot.press("j")
        view = app.query_one(JobView)
        await until(pilot, lambda: len(view.ranks) == 4, message="the job view")
        lines = screen_text(app).splitlines()
        start = next(i for i, line in enumerate(lines) if "rank  host" in line)
        ranks = lines[start + 1:start + 5]
        assert [line.split()[0] for line in ranks] == ["0", "1", "2", "3"], ranks


@sync
async def test_the_decision_path_names_a_jobs_ranks_apart():
    store, clock = job_store()
    app = MonitorApp(store, clock=clock, threaded=False)
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.query_one(RunsTable)
        await until(pilot, lambda: table.row_count == 4, message="the job row")
        table.move_to_key(job_key("job-1"))
        text = await until(pilot, lambda: "ddp[rank 1]: " in screen_text(app) and screen_text(app),
                           message="the ranks' paths")
        assert "ddp[rank 0]: " in text and " ddp: " not in text


@sync
async def test_a_job_rows_selection_mark_is_no_runs_colour():
    """The job row's ● (its ranks selected) was the first run colour, blue,
    though its ranks are drawn each in its own: it read as the blue run's."""
    from tui_monitor.tui.palette import RUN_COLORS

    store, clock = job_store()
    app = MonitorApp(store, clock=clock, threaded=False)
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.query_one(RunsTable)
        await until(pilot, lambda: table.row_count == 4, message="the job row")
        table.move_to_key(job_key("job-1"))
        await pilot.press("space")
        row = table.row_keys.index(job_key("job-1"))
        await until(pilot, lambda: table.row_cells(row)[0].plain.startswith("▸●"), message="the ranks selected")
        styles = {str(s.style) for s in table.row_cells(row)[0].spans}
        assert not any(c.lower() in st.lower() for c in RUN_COLORS for st in styles), styles
