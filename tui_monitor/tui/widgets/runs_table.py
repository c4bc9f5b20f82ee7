"""The runs panel's table: a Line API widget that re-renders only the rows
whose cells changed.

Textual's DataTable invalidates every row's render cache on any
``update_cell``, so a live table (a step count ticking in one row) re-renders
all of its rows on each update. Here each row's strip is cached under its key
and dropped only when that row's cells change, the cursor reaches or leaves
it, or the columns are re-measured; a frame after a live update re-renders
just the rows that changed. The header stays on the first line while the rows
scroll under it.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from .runs import COLUMNS

__all__ = ["RunsTable"]

Cells = Dict[str, Text]

#: Columns that narrow, in this order, when the table is wider than the screen.
SHRINK_FIRST = ("finding", "name")
#: The least a narrowed column keeps.
MIN_SHRUNK = 10


class RunsTable(ScrollView, can_focus=True):
    """The runs, one row each, keyed by ``"run_id\\x00rank"`` (group and job
    rows by their own prefixed keys)."""

    DEFAULT_CSS = """
    RunsTable { height: auto; max-height: 40%; overflow-x: hidden; background: $surface; color: $foreground; }
    RunsTable:focus { background-tint: $foreground 5%; }
    RunsTable > .runs-table--header { text-style: bold; background: $panel; color: $foreground; }
    RunsTable > .runs-table--cursor {
        background: $block-cursor-blurred-background; color: $block-cursor-blurred-foreground;
        text-style: $block-cursor-blurred-text-style;
    }
    RunsTable:focus > .runs-table--cursor {
        background: $block-cursor-background; color: $block-cursor-foreground;
        text-style: $block-cursor-text-style;
    }
    """
    COMPONENT_CLASSES = {"runs-table--header", "runs-table--cursor"}

    BINDINGS = [
        Binding("enter", "select_cursor", "select", show=False),
        Binding("up", "cursor_up", "up", show=False),
        Binding("down", "cursor_down", "down", show=False),
        Binding("pageup", "page_up", "page up", show=False),
        Binding("pagedown", "page_down", "page down", show=False),
        Binding("home", "first", "first", show=False),
        Binding("end", "last", "last", show=False),
    ]

    class RowHighlighted(Message):
        """The cursor is on a different row (``key`` None: the table is empty)."""

        def __init__(self, key: Optional[str]) -> None:
            super().__init__()
            self.key = key

    class RowSelected(RowHighlighted):
        """Enter, or a click on the highlighted row."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self._columns: Tuple[str, ...] = ()
        self._natural: Dict[str, int] = {}  # what the content needs
        self._widths: Dict[str, int] = {}  # what is drawn (fitted to the width)
        self._rows: List[str] = []
        self._cells: Dict[str, Cells] = {}
        self._right: set = set()  # the columns whose cells are right-justified (numbers)
        self._strips: Dict[Optional[str], Tuple[tuple, Strip]] = {}  # key (None: header) -> (signature, strip)
        self.cursor_row = 0
        self._announced: Optional[str] = None
        self.sort_mark: Tuple[Optional[str], bool] = (None, False)  # (column, reversed): ▲ / ▼ in the header
        self._measured_mark = self.sort_mark

    @staticmethod
    def row_key(run) -> str:
        return "%s\x00%d" % (run.run_id, run.rank)

    @property
    def row_count(self) -> int:
        return len(self._rows)

    @property
    def row_keys(self) -> Tuple[str, ...]:
        """The rows' keys, top to bottom."""
        return tuple(self._rows)

    def row_cells(self, index: int) -> List[Text]:
        """The shown cells of row ``index``, in column order."""
        cells = self._cells[self._rows[index]]
        return [cells[c] for c in self._columns]

    # -- content ----------------------------------------------------------------------------------

    def set_rows(self, rows: Sequence[Tuple[str, Cells]], narrow: bool, hidden: Sequence[str] = ()) -> None:
        """Show ``rows`` (key, cells) in order, re-rendering only what changed;
        the columns of ``hidden`` (keys) are left out.

        Columns grow to fit new text but never shrink while the same rows
        are shown, or more (no jitter as values tick); rows gone or other
        columns measure them afresh."""
        cols = tuple(k for k, _, shown_narrow in COLUMNS if (shown_narrow or not narrow) and k not in hidden)
        keys = [k for k, _ in rows]
        cursor_key = self.cursor_key()
        same = cols == self._columns and keys == self._rows and self.sort_mark == self._measured_mark
        # Rows only added (or reordered) under the same columns keep the
        # widths measured so far: only new and changed rows are measured, so
        # a sweep whose runs arrive by thousands is not measured whole again
        # each second. Other columns, the sort mark or a row gone: anew.
        grown = (not same and cols == self._columns and self.sort_mark == self._measured_mark
                 and set(self._rows) <= set(keys))
        self._measured_mark = self.sort_mark
        widths = dict(self._natural) if same or grown else {k: len(label) + (k == self.sort_mark[0])
                                                            for k, label, _ in COLUMNS if k in cols}
        changed = []
        for i, (key, cells) in enumerate(rows):
            old = self._cells.get(key) if same or grown else None
            if old is not None and (old is cells or all(old.get(c) == cells.get(c) for c in cols)):
                continue
            changed.append(i)
            for c in cols:
                cell = cells.get(c)
                if cell is not None and cell.cell_len > widths[c]:
                    widths[c] = cell.cell_len
        self._cells = {k: c for k, c in rows}
        # a column of numbers has its header over their right edge
        self._right = {c for _, cells in rows[:20] for c, cell in cells.items() if cell.justify == "right"}
        if not same or widths != self._natural:
            self._columns, self._rows, self._natural = cols, keys, widths
            self._strips.clear()  # rows moved, or columns changed: draw every row anew
            self.refresh()
            self._fit()
            index = keys.index(cursor_key) if cursor_key in keys else min(self.cursor_row, max(len(keys) - 1, 0))
            self._move(index, scroll=cursor_key in keys)
            return
        for i in changed:
            self._strips.pop(keys[i], None)
            self.refresh_line(i + 1)

    def _fit(self) -> None:
        """Column widths for the table's width: when the content is wider,
        the finding and then the name columns give way (down to
        :data:`MIN_SHRUNK` cells, ellipsis-truncated); there is no horizontal
        scrollbar to take a line of an 80x24 screen (on a screen too narrow
        even then, the last columns are cut)."""
        widths = dict(self._natural)
        room = self.scrollable_content_region.width
        if room > 0:
            excess = sum(w + 2 for w in widths.values()) - room
            for c in SHRINK_FIRST:
                if excess <= 0:
                    break
                if c in widths and widths[c] > MIN_SHRUNK:
                    give = min(excess, widths[c] - MIN_SHRUNK)
                    widths[c] -= give
                    excess -= give
        if widths != self._widths:
            self._widths = widths
            self._strips.clear()
            self.refresh()
        self.virtual_size = Size(sum(w + 2 for w in widths.values()), len(self._rows) + 1)

    def column_at(self, x: int) -> Optional[str]:
        """The column under cell ``x`` of the table's content."""
        at = 0
        for c in self._columns:
            at += self._widths.get(c, 0) + 2
            if x < at:
                return c
        return None

    def on_resize(self, event: events.Resize) -> None:
        self._fit()

    # -- the cursor -------------------------------------------------------------------------------

    def cursor_key(self) -> Optional[str]:
        if 0 <= self.cursor_row < len(self._rows):
            return self._rows[self.cursor_row]
        return None

    def move_to_key(self, key: str) -> None:
        if key in self._rows:
            self._move(self._rows.index(key))

    def _move(self, index: int, scroll: bool = True) -> None:
        index = max(0, min(index, len(self._rows) - 1))
        if index != self.cursor_row:
            for i in (self.cursor_row, index):
                if 0 <= i < len(self._rows):
                    self._strips.pop(self._rows[i], None)
                    self.refresh_line(i + 1)
            self.cursor_row = index
        if scroll:
            self._scroll_into_view()
        key = self.cursor_key()
        if key != self._announced:
            self._announced = key
            self.post_message(self.RowHighlighted(key))

    def _scroll_into_view(self) -> None:
        visible = self._page()
        top = int(self.scroll_offset.y)
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= top + visible:
            self.scroll_to(y=self.cursor_row - visible + 1, animate=False, immediate=True)

    def _page(self) -> int:
        """Rows visible under the header."""
        return max(self.scrollable_content_region.height - 1, 1)

    def action_cursor_up(self) -> None:
        self._move(self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        self._move(self.cursor_row + 1)

    def action_page_up(self) -> None:
        self._move(self.cursor_row - self._page())

    def action_page_down(self) -> None:
        self._move(self.cursor_row + self._page())

    def action_first(self) -> None:
        self._move(0)

    def action_last(self) -> None:
        self._move(len(self._rows) - 1)

    def action_select_cursor(self) -> None:
        key = self.cursor_key()
        if key is not None:
            self.post_message(self.RowSelected(key))

    def _on_click(self, event: events.Click) -> None:
        if event.y < 1:  # the header
            return
        index = int(self.scroll_offset.y) + event.y - 1
        if not 0 <= index < len(self._rows):
            return
        event.stop()
        if index == self.cursor_row:
            self.action_select_cursor()
        else:
            self._move(index)

    # -- drawing ----------------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        base = self.rich_style
        scroll_x = int(self.scroll_offset.x)
        if y == 0:
            style = self.get_component_rich_style("runs-table--header")
            column, reverse = self.sort_mark
            cells = {k: Text(label + (("▼" if reverse else "▲") if k == column else ""),
                             justify="right" if k in self._right else "left")
                     for k, label, _ in COLUMNS if k in self._widths}
            return self._strip(None, (style, scroll_x, width, self.sort_mark, frozenset(self._right)), cells,
                               base + style, width, scroll_x)
        index = int(self.scroll_offset.y) + y - 1
        if not 0 <= index < len(self._rows):
            return Strip.blank(width, base)
        key = self._rows[index]
        style = base
        if index == self.cursor_row:
            style = base + self.get_component_rich_style("runs-table--cursor")
        return self._strip(key, (style, scroll_x, width), self._cells[key], style, width, scroll_x)

    def _strip(self, key: Optional[str], signature: tuple, cells: Cells, style: Style, width: int,
               scroll_x: int) -> Strip:
        cached = self._strips.get(key)
        if cached is not None and cached[0] == signature:
            return cached[1]
        line = Text(style=style, no_wrap=True, end="")
        for c in self._columns:
            w = self._widths[c]
            cell = cells.get(c) or Text("")
            if cell.cell_len > w:
                cell = cell.copy()
                cell.truncate(w, overflow="ellipsis")
            pad = " " * (w - cell.cell_len)
            line.append(" ")
            if cell.justify == "right":
                line.append(pad)
                line.append_text(cell)
            else:
                line.append_text(cell)
                line.append(pad)
            line.append(" ")
        strip = Strip(line.render(self.app.console), line.cell_len)
        strip = strip.crop_extend(scroll_x, scroll_x + width, style).simplify()
        self._strips[key] = (signature, strip)
        return strip
