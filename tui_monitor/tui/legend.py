"""The chart's legend: the title, one entry per run (a swatch of its colour
and its name), the split key (solid train, dashed val, dotted test), the
markers and guides, and the note (how to read the chart: smoothing, zoom,
values off the scale) at the right of the first row.

Every selected run is named: when the entries do not fit, the runs' names
are abbreviated (with an ellipsis, all to the same length, never so short
that two read the same), the guides' labels, then the markers' and the
split key are left out, and the legend wraps to another row; a run's name is
never left out while a row can be had. The note is always shown whole, cut
from its left only when it alone is wider than the row can give it. Pure:
Rich Text out, no Textual.
"""
from __future__ import annotations

import os
from typing import List, NamedTuple, Sequence

from rich.style import Style
from rich.text import Text

from ._text import shorten

__all__ = ["Entry", "legend_rows", "abbreviate", "MIN_NAME"]

#: The shortest a run's name is abbreviated to (with its ellipsis).
MIN_NAME = 4
#: Spaces between two entries.
GAP = "  "
_TITLE = Style(bold=True)
_NOTE = Style(dim=True)


class Entry(NamedTuple):
    """One legend entry: ``glyph`` (the swatch) in ``style``, then ``text``
    (plain, already made safe). ``name``: a run's name, which may be
    abbreviated. ``drop``: 0 for an entry that is always shown; entries with
    a higher value are left out first when nothing else makes room."""

    glyph: str
    style: Style
    text: str
    name: bool = False
    drop: int = 0

    def width(self, name_len: int, shared: int = 0) -> int:
        return len(self.glyph) + (1 if self.glyph else 0) + len(self.shown(name_len, shared))

    def shown(self, name_len: int, shared: int = 0) -> str:
        return abbreviate(self.text, name_len, shared) if self.name else self.text


def abbreviate(name: str, length: int, shared: int = 0) -> str:
    """``name`` in at most ``length`` characters. When the names shown share
    their first ``shared`` characters (``ddp[rank 0]``, ``ddp[rank 17]``),
    the ellipsis goes into that shared part, keeping what tells them apart
    (``ddp…17]``); else the end is cut (``opt_sha…``)."""
    if len(name) <= length:
        return name
    if shared:
        rest = name[shared:]
        if len(rest) + 2 <= length:
            return name[: length - 1 - len(rest)] + "…" + rest
        return "…" + shorten(rest, length - 1)
    return shorten(name, length)


def shared_prefix(names: Sequence[str]) -> int:
    """How many leading characters all ``names`` share (0 for fewer than two
    names or under 3 characters: not worth an ellipsis)."""
    if len(names) < 2:
        return 0
    n = len(os.path.commonprefix(list(names)))
    return n if n >= 3 else 0


def _wrap(entries: Sequence[Entry], name_len: int, first: int, width: int, shared: int = 0) -> List[List[Entry]]:
    """Entries in rows, greedily: ``first`` cells on the first row, ``width``
    on the others."""
    rows: List[List[Entry]] = [[]]
    room = first
    for e in entries:
        w = e.width(name_len, shared)
        need = w + (len(GAP) if rows[-1] else 0)
        if need > room and (rows[-1] or len(rows) == 1):  # the next row (the first may stay empty: a long note)
            rows.append([])
            room = width
            need = w
        rows[-1].append(e)
        room -= need
    return rows


def _fits(rows: List[List[Entry]], name_len: int, first: int, width: int, shared: int = 0) -> bool:
    for i, row in enumerate(rows):
        used = sum(e.width(name_len, shared) for e in row) + len(GAP) * max(0, len(row) - 1)
        if used > (first if i == 0 else width):
            return False
    return True


def legend_rows(title: str, entries: Sequence[Entry], note: str, width: int, max_rows: int = 2,
                most_rows: int = 0) -> List[Text]:
    """The legend as 1..``max_rows`` rows of Text, each ``width`` cells; up
    to ``most_rows`` rows when the runs could not all be named in
    ``max_rows`` (a short chart gives a row of its plot rather than hide a run)."""
    width = max(0, width)
    max_rows = max(1, max_rows)
    head = len(title) + len(GAP) if title else 0
    if note and len(note) > max(0, width - head - 1):  # the note alone is too wide: cut from its left
        note = ("…" + note[-max(0, width - head - 2):]) if width - head - 2 > 0 else ""
    first = max(0, width - head - (len(note) + len(GAP) if note else 0))
    longest = max((len(e.text) for e in entries if e.name), default=MIN_NAME)
    shared = shared_prefix([e.text for e in entries if e.name])

    names = {e.text for e in entries if e.name}

    def fit(kept: Sequence[Entry], rows_allowed: int):
        for name_len in range(max(longest, MIN_NAME), MIN_NAME - 1, -1):
            if len({abbreviate(n, name_len, shared) for n in names}) < len(names):
                break  # shorter still, two runs would read the same
            rows = _wrap(kept, name_len, first, width, shared)
            if len(rows) <= rows_allowed and _fits(rows, name_len, first, width, shared):
                return rows, name_len
        return None

    layout = None
    levels = sorted({e.drop for e in entries} | {0}, reverse=True)
    for rows_allowed in range(max_rows, max(max_rows, most_rows) + 1):
        for drop in levels:  # every entry first; the guides', markers' and split key's go before a row is added
            layout = fit([e for e in entries if e.drop <= drop], rows_allowed)
            if layout is not None:
                break
        if layout is not None:
            break
    if layout is None:  # not even the runs' shortest names fit: the last row is cut
        layout = (_wrap([e for e in entries if e.drop == 0], MIN_NAME, first, width, shared)[:max(max_rows, most_rows)],
                  MIN_NAME)
    rows, name_len = layout
    out = []
    for i, row in enumerate(rows):
        t = Text(no_wrap=True, end="", overflow="ellipsis")
        if i == 0 and title:
            t.append(title, _TITLE)
            t.append(GAP)
        for j, e in enumerate(row):
            if j:
                t.append(GAP)
            if e.glyph:
                t.append(e.glyph, e.style)
                t.append(" ")
            t.append(e.shown(name_len, shared))
        if i == 0 and note:
            t.truncate(max(0, width - len(note)), overflow="ellipsis", pad=True)
            t.append(note, _NOTE)
        t.truncate(width, overflow="ellipsis", pad=True)
        out.append(t)
    return out
