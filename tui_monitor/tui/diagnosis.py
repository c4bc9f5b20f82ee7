"""One pass of the diagnosis engine, as the app runs it off the UI thread:
``update()``, then its findings, each run's decision path and the fold
groups' cross-validation summaries, handed back together as a
:class:`Diagnosis`. Pure of Textual."""
from __future__ import annotations

import weakref
from typing import Any, Dict, List, NamedTuple

from .findings import engine_findings

__all__ = ["Diagnosis", "diagnose_once", "DIAGNOSE_EVERY"]

#: Least seconds between two engine updates while records stream in: findings
#: need no more, and every update competes with the UI thread for the GIL.
DIAGNOSE_EVERY = 1.0


class Diagnosis(NamedTuple):
    findings: List[Any]
    paths: Dict[Any, Any]  # run key -> the engine's decision path
    cv: Dict[str, Any]  # fold group -> cross-validation summary


def diagnose_once(engine: Any, store: Any) -> Diagnosis:
    """Update ``engine`` and collect what the panels show."""
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
        # a run's path is asked again only when its records or the findings
        # changed: a sweep of finished runs is walked once, not every update
        known = _known_paths(engine)
        stamp = _findings_stamp(findings)
        for run in list(store.runs.values()):
            seen = known.get(run.key)
            if seen is not None and seen[0] == (run.version, stamp):
                paths[run.key] = seen[1]
                continue
            try:
                paths[run.key] = engine.decision_path(run.key)
            except Exception:  # noqa: BLE001 - a path is a nicety
                paths[run.key] = None
            known[run.key] = ((run.version, stamp), paths[run.key])
    return Diagnosis(findings, paths, cv)


_PATHS: "weakref.WeakKeyDictionary[Any, Dict[Any, Any]]" = weakref.WeakKeyDictionary()


def _known_paths(engine: Any) -> Dict[Any, Any]:
    """The paths already asked of ``engine`` (forgotten with the engine:
    a new baseline makes a new engine)."""
    try:
        return _PATHS.setdefault(engine, {})
    except TypeError:  # an engine that cannot be weakly referenced: no memory
        return {}


def _findings_stamp(findings: List[Any]) -> tuple:
    return tuple((getattr(f, "id", None) or id(f), str(getattr(f, "severity", "")), getattr(f, "step", None))
                 for f in findings)
