"""The ``s`` (SVG screenshot) and ``e`` (CSV of the chart's series) keys.

What to write is taken on the UI thread (cheap copies); the file is written
by a thread worker, so the UI thread does no file I/O. A mixin of
:class:`~tui_monitor.tui.app.MonitorApp`.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Callable

from ._text import safe
from .export import csv_rows, write_csv, write_text

__all__ = ["ExportActions"]


class ExportActions:
    """Exports to ``out_dir``, written off the UI thread."""

    def _next_path(self, stem: str, suffix: str) -> Path:
        self._exports_n += 1
        return self.out_dir / ("%s-%d%s" % (stem, self._exports_n, suffix))

    def action_save_svg(self) -> None:
        svg = self.export_screenshot()
        path = self._next_path("tui-monitor-screen", ".svg")
        self._write_in_thread(path, lambda p: write_text(p, svg), "screen saved")

    def action_export_csv(self) -> None:
        runs = self.chart_runs()
        rows = csv_rows(runs, self.view.metric)  # copies of the arrays: the writer thread owns them
        metric = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.view.metric)[:40] or "metric"
        path = self._next_path("tui-monitor-%s" % metric, ".csv")
        self._write_in_thread(path, lambda p: write_csv(p, rows), "series exported")

    def _write_in_thread(self, path: Path, write: Callable[[Path], Any], what: str) -> None:
        def work() -> None:
            try:
                final = write(path)
            except OSError as e:
                self.call_from_thread(self.notify, "could not write %s: %s" % (safe(path), safe(e.strerror or e)),
                                      severity="error")
                return
            self.exports.append(str(final))
            self.call_from_thread(self.notify, "%s: %s" % (what, safe(final)), timeout=4)

        self.run_worker(work, thread=True, group="export", exit_on_error=False)
