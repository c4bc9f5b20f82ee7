"""The diagnosis engine's glue: one ``update()`` at a time in a thread worker
(or inline, for deterministic tests), its findings, decision paths and
cross-validation summaries handed back to the UI thread.

A mixin of :class:`~tui_monitor.tui.app.MonitorApp`.
"""
from __future__ import annotations

import time
from typing import Any, Dict, List, Optional, Tuple

from ._text import safe
from .findings import engine_findings
from .widgets import ChartView

__all__ = ["DiagnosisWorker"]

#: Least seconds between two engine updates while records stream in: findings
#: need no more, and every update competes with the UI thread for the GIL.
DIAGNOSE_EVERY = 1.0


class DiagnosisWorker:
    """Runs the engine off the UI thread and applies what it found."""

    def _diagnose(self) -> None:
        if self.diagnoser is None:
            return
        if not self.threaded:
            findings, paths, cv = self._diagnose_once()
            self._diagnosed(findings, paths, cv=cv)
            return
        now = time.monotonic()
        if self._diag_busy or now - getattr(self, "_diag_started", -1e9) < DIAGNOSE_EVERY:
            self._diag_again = True  # the timer comes back for it
            return
        self._diag_again = False
        self._diag_started = now
        self._diag_busy = True
        self.run_worker(self._diagnose_thread, thread=True, group="diagnose", exit_on_error=False)

    def _diagnose_once(self) -> Tuple[List[Any], Dict[Any, Any], Dict[str, Any]]:
        engine = self.diagnoser
        result = engine.update()
        findings = engine_findings(engine, result)
        cv: Dict[str, Any] = {}
        if hasattr(engine, "cv_summaries"):
            try:
                cv = {str(c.group): c for c in engine.cv_summaries()}
            except Exception:  # noqa: BLE001 - a summary is a nicety
                cv = {}
        paths: Dict[Any, Any] = {}
        if hasattr(engine, "decision_path"):
            for run in list(self.store.runs.values()):
                try:
                    paths[run.key] = engine.decision_path(run.key)
                except Exception:  # noqa: BLE001 - a path is a nicety
                    paths[run.key] = None
        return findings, paths, cv

    def _diagnose_thread(self) -> None:
        findings: List[Any] = []
        paths: Dict[Any, Any] = {}
        cv: Dict[str, Any] = {}
        try:
            findings, paths, cv = self._diagnose_once()
        except Exception as e:  # noqa: BLE001
            findings, paths, cv = list(self.findings), dict(self.paths), dict(self.cv)
            try:
                self.call_from_thread(self.notify, "diagnosis failed: %s" % safe(e), severity="error")
            except Exception:  # noqa: BLE001
                pass
        try:
            self.call_from_thread(self._diagnosed, findings, paths, True, cv)
        except Exception:  # noqa: BLE001 - the app is closing
            self._diag_busy = False

    def _diagnosed(self, findings: List[Any], paths: Dict[Any, Any], from_thread: bool = False,
                   cv: Optional[Dict[str, Any]] = None) -> None:
        self.findings = findings
        self.paths = paths
        if cv is not None:
            self.cv = cv
        if from_thread:
            self._diag_busy = False
        if self.chosen is not None:
            cid = getattr(self.chosen, "id", None)
            self.chosen = next((f for f in findings if f is self.chosen or (cid and getattr(f, "id", None) == cid)),
                               None)
        if self.is_mounted:
            self._refresh_findings()
            self._refresh_runs()
            self._refresh_status()
            self.query_one("#chart", ChartView).refresh()
