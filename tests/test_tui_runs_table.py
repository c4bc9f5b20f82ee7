"""The runs table widget on its own, in a real Textual app: only the rows
whose cells changed are rendered again, the header stays while the rows
scroll, and the keys and clicks move the cursor and post the messages."""
from __future__ import annotations

import contextlib

from typing import List

from rich.text import Text
from textual.app import App, ComposeResult

from tui_helpers import sync
from tui_monitor.tui.widgets import RunsTable
from tui_monitor.tui.widgets.runs import COLUMNS


def cells(name: str, step: int) -> dict:
    out = {k: Text("-") for k, _, _ in COLUMNS}
    out["name"] = Text(name)
    out["step"] = Text(str(step), justify="right")
    return out


def rows(n: int, step: int = 0, changed: int = -1):
    return [("k%d" % i, cells("run-%d" % i, step + (1 if i == changed else 0))) for i in range(n)]


class TableApp(App):
    CSS = "RunsTable { max-height: 100%; }"

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.highlighted: List[str] = []
        self.chosen: List[str] = []

    def compose(self) -> ComposeResult:
        yield RunsTable()

    def on_mount(self) -> None:
        table = self.query_one(RunsTable)
        table.set_rows(rows(self.n), narrow=False)
        table.focus()

    def on_runs_table_row_highlighted(self, event: RunsTable.RowHighlighted) -> None:
        self.highlighted.append(event.key)

    def on_runs_table_row_selected(self, event: RunsTable.RowSelected) -> None:
        self.chosen.append(event.key)


@contextlib.asynccontextmanager
async def mounted(n: int, size):
    """A :class:`TableApp` of ``n`` rows running headless: (app, pilot, table)."""
    app = TableApp(n)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        yield app, pilot, app.query_one(RunsTable)


def lines(table: RunsTable):
    return [table.render_line(y) for y in range(table.size.height)]


@sync
async def test_a_live_update_renders_only_the_changed_row_again():
    async with mounted(5, (100, 20)) as (app, pilot, table):
        before = lines(table)
        assert "run-2" in before[3].text and before[3].text.split()[-1] == "-"
        table.set_rows(rows(5, changed=2), narrow=False)
        after = lines(table)
        assert [a is b for a, b in zip(before, after)] == [True, True, True, False, True, True] + [True] * (
            len(before) - 6)
        assert " 1 " in after[3].text and " 0 " in before[3].text
        # moving the cursor re-renders the two rows it leaves and reaches, no others
        await pilot.press("down")
        moved = lines(table)
        assert [a is b for a, b in zip(after, moved)][:6] == [True, False, False, True, True, True]


@sync
async def test_the_header_stays_while_the_rows_scroll_and_keys_move_the_cursor():
    async with mounted(40, (100, 12)) as (app, pilot, table):
        assert table.size.height == 12 and app.highlighted == ["k0"]
        await pilot.press("end")
        assert table.cursor_key() == "k39" and app.highlighted[-1] == "k39"
        shown = lines(table)
        assert shown[0].text.split()[:2] == ["run", "status"]
        assert "run-39" in shown[-1].text and "run-29" in shown[1].text
        await pilot.press("pageup")
        assert table.cursor_row == 39 - 11
        await pilot.press("home", "down", "down", "enter")
        assert table.cursor_key() == "k2" and app.chosen == ["k2"]
        # a click on another row highlights it; a click on the highlighted row selects it
        top = int(table.scroll_offset.y)
        await pilot.click(RunsTable, offset=(10, 1 + 4 - top))
        assert table.cursor_key() == "k4" and app.chosen == ["k2"]
        await pilot.click(RunsTable, offset=(10, 1 + 4 - top))
        assert app.chosen == ["k2", "k4"]
        # a click on the header does nothing
        await pilot.click(RunsTable, offset=(10, 0))
        assert table.cursor_key() == "k4" and app.chosen == ["k2", "k4"]


@sync
async def test_the_cursor_follows_its_row_when_rows_are_added_or_removed():
    async with mounted(3, (100, 12)) as (app, pilot, table):
        await pilot.press("down")
        assert table.cursor_key() == "k1"
        lines(table)  # every row drawn (and cached) once
        # a row added and, in the same update, another row's value changed (same widths)
        table.set_rows([("new", cells("new", 0))] + rows(3, changed=2), narrow=False)
        assert table.cursor_key() == "k1" and table.cursor_row == 2 and table.row_count == 4
        await pilot.pause()
        shown = [line.text for line in lines(table)]
        assert "new" in shown[1] and "run-2" in shown[4] and " 1 " in shown[4]
        table.set_rows(rows(1), narrow=True)
        await pilot.pause()
        assert table.cursor_key() == "k0" and app.highlighted[-1] == "k0"
        assert table.row_cells(0)[1].plain == "run-0" and len(table.row_cells(0)) == sum(
            1 for _, _, narrow in COLUMNS if narrow)
        table.set_rows([], narrow=True)
        await pilot.pause()
        assert table.cursor_key() is None and app.highlighted[-1] is None
        assert table.size.height == 1 and lines(table)[0].text.split()[:2] == ["run", "status"]


@sync
async def test_a_table_wider_than_the_screen_narrows_the_finding_and_name_columns():
    async with mounted(0, (60, 12)) as (app, pilot, table):
        wide = cells("a-run-with-a-rather-long-name", 7)
        wide["finding"] = Text(" overfitting: validation turned ")
        table.set_rows([("k0", wide)], narrow=True)
        await pilot.pause()
        assert table.virtual_size.width <= 60 and not table.show_horizontal_scrollbar
        row = lines(table)[1].text
        # the finding column gave way first (to 10 cells), then the name
        assert len(row) == 60 and "overfitt…" in row and "a-run-with-a-rat…" in row
        await pilot.resize_terminal(140, 12)  # room again: the whole texts
        await pilot.pause()
        row = lines(table)[1].text
        assert "a-run-with-a-rather-long-name" in row and "overfitting: validation turned" in row
