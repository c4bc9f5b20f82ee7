"""A Static that ignores updates to the content it already shows.

``Static.update`` always asks for a new layout (the content's size may have
changed), and a layout re-renders the whole screen: a status line or panel
refreshed on every tick with the same text would cost a full frame each time.
"""
from __future__ import annotations

from typing import Any

from textual.widgets import Static


class SteadyStatic(Static):
    _shown: Any = None

    def update(self, content: Any = "", *args: Any, **kw: Any) -> None:
        if content == self._shown and not args and not kw:
            return
        self._shown = content
        super().update(content, *args, **kw)
