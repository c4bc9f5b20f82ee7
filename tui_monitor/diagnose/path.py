"""The decision path of one run: where it stands on each question of the
method, and why. The TUI draws it as a small tree::

    training loss large? -- yes --> model bias or optimization? -- optimization
                         -- no  --> held-out loss large? -- yes --> overfitting or mismatch? -- overfitting
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List

__all__ = ["Decision", "DecisionPath", "decision_path"]


@dataclass
class Decision:
    """One question of the method: ``answer`` is one of the listed options,
    or ``"unknown"`` (not enough evidence yet); ``findings`` are the ids of
    the findings behind it."""

    question: str
    answer: str
    why: str
    findings: List[str] = field(default_factory=list)


@dataclass
class DecisionPath:
    """A run's way through the method. ``verdict`` is ``"healthy"``,
    ``"unknown"`` or a finding kind; ``decisions`` are the questions asked,
    in order (later ones only when the earlier answer leads there)."""

    run_id: str
    rank: int
    name: str
    verdict: str
    decisions: List[Decision]

    def to_dict(self) -> Dict[str, Any]:
        from .findings import _jsonable

        return _jsonable(asdict(self))

    def text(self) -> str:
        return " -> ".join(f"{d.question} {d.answer}" for d in self.decisions) + f" => {self.verdict}"


Q_TRAIN = "training loss large?"
Q_CAUSE = "model bias or optimization?"
Q_HELD = "held-out loss large?"
Q_HELD_CAUSE = "overfitting or mismatch?"


def decision_path(st, findings) -> DecisionPath:
    a = st.assessment
    run = st.run
    mine = [f for f in findings if f.runs and f.runs[0] == run.key and f.severity != "info"]
    step1 = [f for f in mine if f.kind in ("model_bias", "optimization", "divergence")]
    step2 = [f for f in mine if f.kind in ("overfitting", "mismatch")]
    ds: List[Decision] = []
    large = a.large if a is not None else None
    why = a.why if a is not None else "no training loss yet"
    if step1:
        f = max(step1, key=lambda f: (f.severity == "critical", f.confidence))
        ds.append(Decision(Q_TRAIN, "yes", why if large == "yes" else f.explanation.split(":")[0],
                           [x.id for x in step1]))
        cause = "optimization" if f.kind == "divergence" else f.kind
        ds.append(Decision(Q_CAUSE, cause, f.explanation, [f.id]))
        return DecisionPath(run.run_id, run.rank, run.name, f.kind, ds)
    if large == "yes":
        ds.append(Decision(Q_TRAIN, "yes", why))
        still = "still improving" if a.stalled is False else "not enough points to judge progress"
        ds.append(Decision(Q_CAUSE, "unknown", f"the loss is {still}; no verdict until it stops improving"))
        return DecisionPath(run.run_id, run.rank, run.name, "unknown", ds)
    ds.append(Decision(Q_TRAIN, "no" if large == "no" else "unknown", why))
    if step2:
        f = max(step2, key=lambda f: f.confidence)
        ds.append(Decision(Q_HELD, "yes", f.explanation.split(":")[0], [x.id for x in step2]))
        ds.append(Decision(Q_HELD_CAUSE, f.kind, f.explanation, [f.id]))
        return DecisionPath(run.run_id, run.rank, run.name, f.kind, ds)
    held = st.val if st.val is not None and len(st.val) else st.test
    if held is None or not len(held):
        ds.append(Decision(Q_HELD, "unknown", "no held-out loss logged (log a val split)"))
        verdict = "unknown" if large != "no" else "healthy"
        return DecisionPath(run.run_id, run.rank, run.name, verdict, ds)
    lv = a.level if a is not None else None
    last = held.values[-1]
    why = f"latest held-out loss {last:.4g} (best {held.best:.4g} at step {held.best_step})"
    if lv:
        why += f", {last / lv:.2g}x the training loss" if lv > 0 else ""
    ds.append(Decision(Q_HELD, "no", why + ": no overfitting or mismatch pattern"))
    return DecisionPath(run.run_id, run.rank, run.name, "healthy" if large != "yes" else "unknown", ds)
