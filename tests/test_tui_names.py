"""Names from a stream are cut wherever the TUI shows them (issue 13, item
15): a run named with a megabyte, or with zero-width and bidi characters,
is shown escaped and cut on every screen (main, findings, a finding's
evidence, gradients, job view, problems, help) at 80x24 and 120x40, never
wrapped into a screenful, and what the widgets hold stays small."""
from __future__ import annotations

import re

import pytest

from diagnose_helpers import rank_records
from tui_helpers import fixed_app, screen_text, sync, synthetic_store, until
from tui_monitor.sources import Ingest
from tui_monitor.stream import Problem
from tui_monitor.tui.rowkeys import job_key
from tui_monitor.tui.screens import FindingScreen
from tui_monitor.tui.widgets import RunsTable

MEGABYTE = "n" * (1 << 20)
#: A name with a bidi override and a zero-width space in it (escaped on screen), long too.
HIDDEN = "evil\u202eeman\u200bname" + "z" * 5000
HIDDEN_SHOWN = "evil\\u202eeman\\u200b"


def named_store(name: str):
    """The fixed runs, the overfitting one named ``name``, and a 2-rank job
    named ``name`` on a host named ``name``."""
    store = synthetic_store(names={"b": name})
    for rank in range(2):
        recs = rank_records(rank, world=2, steps=60, run_id="job-big", host=name + "-host")
        recs[0]["name"] = name
        store.apply_many(recs, stream=f"rank{rank}")
    return store


def longest_run_of(text: str, ch: str) -> int:
    return max((len(m) for m in re.findall(re.escape(ch) + "+", text)), default=0)


def check_screen(app, what: str, name: str) -> str:
    """The screen shows ``name`` cut (an ellipsis right after its start), on
    a line or two per place it appears, and no widget holds a screenful."""
    text = screen_text(app)
    lines = text.splitlines()
    assert "\u202e" not in text and "\u200b" not in text, what          # shown escaped, never raw
    ch = name[-1]
    assert longest_run_of(text, ch) <= 100, what                         # cut, not wrapped whole
    lines_with_it = [line for line in lines if ch * 12 in line]
    assert len(lines_with_it) <= 14, (what, len(lines_with_it))
    for w in app.screen.walk_children():
        size = w.virtual_size
        assert size.height < 400 and size.width < 1000, (what, w, size)
    return text


async def screens(pilot, app, name: str) -> dict:
    """Every screen in turn: main, findings focused, a finding's evidence,
    gradients, job view, problems, help; what each showed."""
    seen = {}
    table = app.query_one(RunsTable)
    await until(pilot, lambda: app.findings, message="the findings")
    await pilot.pause()
    seen["main"] = check_screen(app, "main", name)
    await pilot.press("f")
    await pilot.pause()
    seen["findings"] = check_screen(app, "findings", name)
    finding = next(i for i, f in enumerate(app.findings_panel.findings_list.findings) if f.kind == "overfitting")
    app.findings_panel.findings_list.highlighted = finding
    await pilot.press("enter")
    if app.narrow:     # below 120 columns enter opens the finding's screen; wider, the panel shows it
        await until(pilot, lambda: isinstance(app.screen, FindingScreen), message="the finding's screen")
    await pilot.pause()
    seen["evidence"] = check_screen(app, "evidence", name)
    await pilot.press("escape", "escape")
    table.move_to_key(RunsTable.row_key(app.store.get("bbbb2222")))
    await pilot.press("g")
    await pilot.pause()
    seen["grads"] = check_screen(app, "grads", name)
    await pilot.press("g")
    table.move_to_key(job_key("job-big"))
    await pilot.press("j")
    await pilot.pause()
    seen["job"] = check_screen(app, "job", name)
    await pilot.press("j", "p")
    await pilot.pause()
    seen["problems"] = check_screen(app, "problems", name)
    await pilot.press("escape", "question_mark")
    await pilot.pause()
    seen["help"] = check_screen(app, "help", name)
    return seen


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
@pytest.mark.parametrize("name, shown", [(MEGABYTE, "n" * 20), (HIDDEN, HIDDEN_SHOWN)], ids=["megabyte", "hidden"])
@sync
async def test_a_long_or_hidden_name_is_shown_escaped_and_cut_on_every_screen(size, name, shown):
    store = named_store(name)
    ingest = Ingest(store)
    ingest.problem(Problem("/runs/" + name + ".jsonl", 3, f"run {name!r} rank 0: a problem naming the run"))
    app = fixed_app(store, engine="auto", ingest=ingest)
    async with app.run_test(size=size) as pilot:
        seen = await screens(pilot, app, name)
    cut = re.escape(shown) + r"\S*…"
    for what in ("main", "findings", "evidence", "grads", "job"):
        assert re.search(cut, seen[what]), what                          # its escaped start, then an ellipsis
    assert "…" + name[-1] * 20 in seen["problems"] and ".jsonl:3" in seen["problems"]   # a path: its end
    assert "overfitting" in seen["evidence"] and "advice:" in seen["evidence"]
    assert "layer" in seen["grads"] and "rank" in seen["job"] and ".jsonl:3" in seen["problems"]
