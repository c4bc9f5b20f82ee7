"""The engine's state as a report: a JSON-ready dict (the schema in
docs/diagnosis.schema.json) and plain text. Text from a stream (run names,
metric names) is data: the caller escapes it for the terminal."""
from __future__ import annotations

from typing import Any, Callable, Dict, List

from .findings import severity_rank

__all__ = ["SCHEMA_VERSION", "report_dict", "report_text"]

SCHEMA_VERSION = 1


def report_dict(engine) -> Dict[str, Any]:
    """``{"schema": 1, "findings": [...], "runs": [...], "cv": [...], "summary": {...}}``."""
    findings = [f.to_dict() for f in engine.findings]
    runs = []
    for key, st in list(engine.states.items()):
        # by the state's key: a run renamed since the last update still has
        # its state under the old key (``st.run.key`` has no state yet)
        p = engine.decision_path(key)
        r = st.run
        runs.append({"run_id": r.run_id, "rank": r.rank, "name": r.name, "status": r.status,
                     "last_step": st.train.last_step, "verdict": p.verdict, "needs": p.needs,
                     "decisions": p.to_dict()["decisions"]})
    worst = engine.worst()
    counts = {s: sum(1 for f in engine.findings if f.severity == s) for s in ("info", "warning", "critical")}
    return {"schema": SCHEMA_VERSION, "findings": findings, "runs": runs,
            "cv": [c.to_dict() for c in engine.cv_summaries()],
            "summary": {"runs": len(runs), "findings": counts, "worst": worst}}


def report_text(engine, clean: Callable[[Any], str] = str) -> str:
    lines: List[str] = []
    fs = engine.findings
    if not fs:
        lines.append("No findings: nothing at warning level or above in %d run%s." %
                     (len(engine.states), "" if len(engine.states) == 1 else "s"))
    for f in fs:
        at = f" from step {f.step}" if f.step is not None else ""
        lines.append(f"{f.severity.upper():8} {f.headline(clean)}{at}  (confidence {f.confidence:.2f})")
        lines.append(f"  evidence: {clean(f.explanation)}")
        lines.append(f"  advice:   {f.advice}")
        lines.append(f"  method:   {f.guidance_step}")
        if f.also_possible:
            lines.append(f"  also possible: {', '.join(f.also_possible)}")
    lines.append("")
    lines.append("Decision paths:")
    for p in sorted(engine.decision_paths(), key=lambda p: p.name):
        lines.append(f"  {clean(p.name)}: {clean(p.text())}")
    cv = engine.cv_summaries()
    if cv:
        lines.append("")
        lines.append("Cross-validation:")
        for c in cv:
            lines.append(f"  {clean(c.text())}")
    return "\n".join(lines) + "\n"


def exit_status(engine) -> int:
    """0 when nothing is at warning level or above, else 1."""
    return 1 if any(severity_rank(f.severity) >= 1 for f in engine.findings) else 0
