"""The decision path of one run: where it stands on each question of the
method, and why. The TUI draws it as a small tree::

    training loss large? -- yes --> model bias or optimization? -- optimization
                         -- no  --> held-out loss large? -- yes --> overfitting or mismatch? -- overfitting

A run is ``healthy`` only when the method's questions were answered: the
training loss is small and a held-out loss, evaluated often enough, shows
neither overfitting nor mismatch. Anything less is ``unknown``, with why and
what would decide it (``needs``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List

from .heldout_signal import heldout_of
from .settings import Settings

__all__ = ["Decision", "DecisionPath", "decision_path"]


@dataclass
class Decision:
    """One question of the method: ``answer`` is one of the listed options,
    or ``"unknown"`` (not enough evidence yet); ``findings`` are the ids of
    the findings behind it; ``needs`` says, for an unknown answer, what
    would decide it."""

    question: str
    answer: str
    why: str
    findings: List[str] = field(default_factory=list)
    needs: str = ""


@dataclass
class DecisionPath:
    """A run's way through the method. ``verdict`` is ``"healthy"``,
    ``"unknown"`` or a finding kind; ``decisions`` are the questions asked,
    in order (later ones only when the earlier answer leads there);
    ``needs`` is what would decide an unknown verdict ("" otherwise)."""

    run_id: str
    rank: int
    name: str
    verdict: str
    decisions: List[Decision]
    needs: str = ""

    def to_dict(self) -> Dict[str, Any]:
        from .findings import _jsonable

        return _jsonable(asdict(self))

    def text(self) -> str:
        out = " -> ".join(f"{d.question} {d.answer}" for d in self.decisions) + f" => {self.verdict}"
        if self.needs:
            out += f" (to decide: {self.needs})"
        return out


Q_TRAIN = "training loss large?"
Q_CAUSE = "model bias or optimization?"
Q_HELD = "held-out loss large?"
Q_HELD_CAUSE = "overfitting or mismatch?"


def decision_path(st, findings, s: Settings) -> DecisionPath:
    a = st.assessment
    run = st.run
    mine = [f for f in findings if f.runs and f.runs[0] == run.key and f.severity != "info"]
    step1 = [f for f in mine if f.kind in ("model_bias", "optimization", "divergence")]
    step2 = [f for f in mine if f.kind in ("overfitting", "mismatch")]
    ds: List[Decision] = []
    large = a.large if a is not None else None
    why = a.why if a is not None else "no training loss yet"

    def path(verdict: str, needs: str = "") -> DecisionPath:
        return DecisionPath(run.run_id, run.rank, run.name, verdict, ds, needs)

    if step1:
        f = max(step1, key=lambda f: (f.severity == "critical", f.confidence))
        ds.append(Decision(Q_TRAIN, "yes", why if large == "yes" else f.explanation.split(":")[0],
                           [x.id for x in step1]))
        cause = "optimization" if f.kind == "divergence" else f.kind
        ds.append(Decision(Q_CAUSE, cause, f.explanation, [f.id]))
        return path(f.kind)
    if large == "yes":
        ds.append(Decision(Q_TRAIN, "yes", why))
        if a.stalled is None:
            still, needs = "the run is too short to judge its progress", a.needs or "more training points"
        elif a.lr is not None and a.lr.decayed:
            still, needs = (f"its learning rate has decayed to {a.lr.now / a.lr.peak:.0%} of its peak: the "
                            f"schedule's end, not a stall"), ("a smaller baseline run of the same data: lower means "
                                                               "optimization, as high means model bias")
        elif a.stalled is False:
            still, needs = "it is still improving", "more training (a verdict comes once it stops improving)"
        else:
            still, needs = ("it has stopped improving for one window", "one more window of training points, or a "
                            "smaller baseline run of the same data")
        ds.append(Decision(Q_CAUSE, "unknown", f"no verdict yet: {still}", needs=needs))
        return path("unknown", needs)
    train_needs = a.needs if (a is not None and large is None) else ("a training loss" if a is None else "")
    ds.append(Decision(Q_TRAIN, "no" if large == "no" else "unknown", why, needs=train_needs))
    if step2:
        f = max(step2, key=lambda f: f.confidence)
        ds.append(Decision(Q_HELD, "yes", f.explanation.split(":")[0], [x.id for x in step2]))
        ds.append(Decision(Q_HELD_CAUSE, f.kind, f.explanation, [f.id]))
        return path(f.kind)
    view = heldout_of(st, s)
    held = view.split() if view is not None else None
    if held is None or not len(held):
        needs = "a held-out loss (log a val split)"
        ds.append(Decision(Q_HELD, "unknown", "no held-out loss or score logged", needs=needs))
        return path("unknown", _join(train_needs, needs))
    split = "val" if held is view.val else "test"
    shown = view.shown
    what = view.name(split)
    why_held = f"latest {what} {shown(held.values[-1]):.4g} (best {shown(held.best):.4g} at step {held.best_step})"
    if len(held) >= 2:
        tr = view.train_near(held.steps[-1], held.steps[-1] - held.steps[-2], s)
        if tr and tr > 0:
            r = held.values[-1] / tr
            if view.upward:
                why_held += f", the training {view.metric} near that step {shown(tr):.4g} ({r:.2g}x it)"
            else:
                why_held += f", {r:.2g}x the training {view.metric} near that step ({tr:.4g})"
    if len(held) < s.min_evals:
        needs = f"{s.min_evals - len(held)} more evaluations ({s.min_evals} in all)"
        ds.append(Decision(Q_HELD, "unknown", f"only {len(held)} evaluation{'s' if len(held) != 1 else ''} so far: "
                                              f"{why_held}", needs=needs))
        return path("unknown", _join(train_needs, needs))
    ds.append(Decision(Q_HELD, "no", why_held + ": no overfitting or mismatch pattern"))
    if large == "no":
        return path("healthy")
    return path("unknown", train_needs)


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)
