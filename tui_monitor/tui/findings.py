"""Findings as the TUI sees them: ordering, run matching, plain-words text,
and the decision path of the guidance per run.

A finding is any object with the attributes ``kind``, ``symptom``, ``runs``,
``step``, ``severity``, ``confidence``, ``evidence``, ``advice``,
``guidance_step`` and ``id`` (the diagnosis engine's dataclass). Everything
in it is data from the stream or computed from it, so it is rendered with
:func:`~tui_monitor.tui._text.plain`, never as markup.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from ._text import fmt_num, safe, short_name, shorten
from .palette import SEVERITY_STYLES

__all__ = ["severity_rank", "severity_name", "sort_findings", "finding_runs", "matches_run", "is_about", "worst_by_run",
           "finding_title", "finding_cell", "finding_text", "decision_path", "PATH_STEPS", "KIND_WORDS",
           "engine_findings", "path_from_engine", "onset_marks"]

_SEVERITY = {"critical": 4, "error": 3, "high": 3, "warning": 2, "warn": 2, "medium": 2, "info": 1, "low": 1,
             "ok": 0, "none": 0}

KIND_WORDS = {
    "model_bias": "model bias", "optimization": "optimization", "overfitting": "overfitting",
    "mismatch": "mismatch", "divergence": "divergence", "non_finite": "non-finite loss",
    "distributed": "ranks",
}


def severity_rank(f: Any) -> int:
    s = getattr(f, "severity", None)
    if isinstance(s, (int, float)) and not isinstance(s, bool):
        return int(s)
    name = getattr(s, "name", None) or getattr(s, "value", None) or s
    return _SEVERITY.get(str(name).lower(), 0)


def severity_name(f: Any) -> str:
    r = severity_rank(f)
    return {4: "critical", 3: "error", 2: "warning", 1: "info"}.get(r, "info" if r > 0 else "ok")


def _step(f: Any) -> float:
    s = getattr(f, "step", None)
    return float(s) if isinstance(s, (int, float)) and not isinstance(s, bool) else -math.inf


def sort_findings(findings: Iterable[Any]) -> List[Any]:
    """Most severe first, then newest (highest step) first."""
    return sorted(findings, key=lambda f: (-severity_rank(f), -_step(f)))


def finding_runs(f: Any) -> List[Any]:
    runs = getattr(f, "runs", None) or ()
    if isinstance(runs, (str, tuple)) and not (isinstance(runs, tuple) and runs and isinstance(runs[0], (tuple, list))):
        if isinstance(runs, str) or (len(runs) == 2 and isinstance(runs[1], int)):
            return [runs]
    return list(runs)


def matches_run(ref: Any, run: Any) -> bool:
    """Whether ``ref`` (a run key, run id or name from a finding) names ``run``."""
    if isinstance(ref, (tuple, list)) and len(ref) == 2:
        return tuple(ref) == run.key
    if isinstance(ref, str):
        return ref == run.run_id or ref == run.name
    key = getattr(ref, "key", None)
    return key == run.key


def is_about(f: Any, run: Any) -> bool:
    """Whether ``f`` is about ``run``: its first run. The others are the runs
    it was compared with (a model-bias finding cites the bigger model that
    fits; that model is not biased)."""
    refs = finding_runs(f)
    return bool(refs) and matches_run(refs[0], run)


def worst_by_run(findings: Sequence[Any], runs: Iterable[Any]) -> Dict[Any, Any]:
    """run key -> the most severe finding about it."""
    # each finding indexed once by the run it is about (its first run), so
    # that a sweep of 10,000 runs costs a look-up per run, not a scan of
    # every finding per run
    by_ref: Dict[Any, Any] = {}
    for i, f in enumerate(sort_findings(findings)):
        refs = finding_runs(f)
        if not refs:
            continue
        ref = refs[0]
        ref = tuple(ref) if isinstance(ref, list) else ref
        if not isinstance(ref, (tuple, str)):
            ref = getattr(ref, "key", None)
        if ref is not None:
            by_ref.setdefault(ref, (i, f))  # the first is the most severe
    out: Dict[Any, Any] = {}
    if not by_ref:
        return out
    for run in runs:
        hits = [h for h in (by_ref.get(run.key), by_ref.get(run.run_id), by_ref.get(run.name)) if h is not None]
        if hits:
            out[run.key] = min(hits, key=lambda h: h[0])[1]
    return out


def finding_title(f: Any) -> str:
    kind = safe(getattr(f, "kind", "") or "")
    symptom = safe(getattr(f, "symptom", "") or "")
    words = KIND_WORDS.get(kind, kind.replace("_", " "))
    if symptom and symptom != kind:
        return "%s: %s" % (words, symptom.replace("_", " "))
    return words or "finding"


def finding_cell(f: Optional[Any], width: int = 40) -> Text:
    """A table cell for finding ``f``: its title as a badge in its severity's
    colours (empty without one), whole up to ``width`` characters (a narrow
    runs table cuts its finding column further)."""
    if f is None:
        return Text("", no_wrap=True)
    return Text(" %s " % shorten(finding_title(f), width), style=SEVERITY_STYLES.get(severity_name(f), ""), no_wrap=True)


def _evidence_text(ev: Any) -> str:
    if ev is None:
        return ""
    if isinstance(ev, dict):
        parts = []
        for k, v in ev.items():
            parts.append("%s=%s" % (safe(k), fmt_num(v) if isinstance(v, float) else safe(v)))
        return ", ".join(parts)
    if isinstance(ev, (list, tuple)):
        return "; ".join(_evidence_text(e) for e in ev)
    if isinstance(ev, float):
        return fmt_num(ev)
    return safe(ev)


def finding_text(f: Any, run_names: Optional[Dict[Any, str]] = None, detail: bool = True) -> RenderableType:
    """The finding in plain words: badge, title, runs and step; then
    (``detail``) the evidence, the advice and the guidance's step, each under
    its label, wrapped lines indented under their label's text (a wrapped
    line at the left edge read as the next finding's or another part)."""
    t = _headline(f, run_names)
    if not detail:
        return t
    parts = Table.grid(padding=(0, 1, 0, 0))
    parts.add_column(justify="right", style="dim", no_wrap=True)
    parts.add_column()
    expl = getattr(f, "explanation", None)
    ev = safe(expl) if expl else _evidence_text(getattr(f, "evidence", None))
    if ev:
        parts.add_row("evidence:", Text(ev))  # data: never markup
    adv = getattr(f, "advice", None)
    if adv:
        parts.add_row("advice:", Text(_evidence_text(adv)))
    gs = getattr(f, "guidance_step", None)
    if gs:
        parts.add_row("guidance:", Text(safe(gs), style="italic"))
    if not parts.row_count:
        return t
    t.end = "\n"
    return Group(t, Padding(parts, (0, 0, 0, 2)))


def _headline(f: Any, run_names: Optional[Dict[Any, str]] = None) -> Text:
    """Badge, title, the run it is about (and those it was compared with), step, confidence."""
    sev = severity_name(f)
    t = Text(no_wrap=False, end="")
    t.append(" %s " % sev.upper()[:4], SEVERITY_STYLES.get(sev, ""))
    t.append(" ")
    t.append(finding_title(f), "bold")
    names = [short_name(n) for n in (getattr(f, "run_names", None) or [])]
    if not names:
        for r in finding_runs(f):
            key = tuple(r) if isinstance(r, (list, tuple)) else r
            default = r if isinstance(r, str) else (r[0] if isinstance(r, (list, tuple)) else r)
            names.append(short_name((run_names or {}).get(key, default)))
    if names:  # the run it is about; the others are the runs it was compared with
        t.append("  " + names[0], "#4fc3f7")
        if len(names) > 1:
            t.append(" (vs %s)" % ", ".join(names[1:]), "dim")
    step = getattr(f, "step", None)
    if step is not None:
        t.append("  @%s" % safe(step), "dim")
    conf = getattr(f, "confidence", None)
    if isinstance(conf, (int, float)) and not isinstance(conf, bool):
        t.append("  %d%% sure" % round(100 * float(conf)), "dim")
    return t


#: The guidance's questions, in order.
PATH_STEPS = ("train loss large?", "bias or optimization?", "held-out loss large?", "overfit or mismatch?")

_TRAIN_KINDS = {"model_bias": "model bias", "optimization": "optimization", "divergence": "optimization",
                "non_finite": "optimization"}
_HELD_KINDS = {"overfitting": "overfitting", "mismatch": "mismatch"}


def decision_path(run: Any, findings: Sequence[Any], has_val: bool = True) -> List[Tuple[str, str, str]]:
    """Where ``run`` stands in the guidance: ``(question, answer, state)``
    per step; state is ``yes`` (a problem found there), ``no`` (passed),
    ``open`` (not decided) or ``skip`` (not reached)."""
    mine = [f for f in findings if is_about(f, run) and severity_rank(f) >= 2]
    kinds = [str(getattr(f, "kind", "")) for f in sort_findings(mine)]
    train = next((_TRAIN_KINDS[k] for k in kinds if k in _TRAIN_KINDS), None)
    held = next((_HELD_KINDS[k] for k in kinds if k in _HELD_KINDS), None)
    if train:
        return [(PATH_STEPS[0], "yes", "yes"), (PATH_STEPS[1], train, "yes"),
                (PATH_STEPS[2], "-", "skip"), (PATH_STEPS[3], "-", "skip")]
    if held:
        return [(PATH_STEPS[0], "no", "no"), (PATH_STEPS[1], "-", "skip"),
                (PATH_STEPS[2], "yes", "yes"), (PATH_STEPS[3], held, "yes")]
    done = getattr(run, "status", "running") != "running"
    state = "no" if done else "open"
    return [(PATH_STEPS[0], "no" if done else "so far no", state), (PATH_STEPS[1], "-", "skip"),
            (PATH_STEPS[2], ("no" if done else "so far no") if has_val else "no held-out data",
             state if has_val else "open"), (PATH_STEPS[3], "-", "skip")]


def engine_findings(engine: Any, result: Any = None) -> List[Any]:
    """The current findings of ``engine`` (its ``findings`` attribute, else
    what ``update()`` returned when that is a list)."""
    fs = getattr(engine, "findings", None)
    if fs is not None and not callable(fs):
        return list(fs)
    return list(result) if isinstance(result, (list, tuple)) else []


def path_from_engine(dp: Any) -> Optional[List[Tuple[str, str, str]]]:
    """An engine ``DecisionPath`` as ``(question, answer, state)`` rows."""
    decisions = getattr(dp, "decisions", None)
    if not decisions:
        return None
    rows = []
    for d in decisions:
        ans = str(getattr(d, "answer", ""))
        if ans == "unknown":
            state = "open"
        elif ans == "no":
            state = "no"
        else:
            state = "yes"
        rows.append((str(getattr(d, "question", "")), ans, state))
    return rows


def onset_marks(findings: Sequence[Any], chosen: Any, runs: Sequence[Any]) -> List[Tuple[Any, int, str]]:
    """``(run, step, label)`` of the findings to mark on a chart of ``runs``:
    the ``chosen`` one when it is about one of them, else the worst finding
    (above info) about the focused run (the first)."""
    if chosen is not None:
        about = [r for r in runs if is_about(chosen, r)]
        if about and getattr(chosen, "step", None) is not None:
            return [(about[0], chosen.step, "%s @%s" % (finding_title(chosen), chosen.step))]
    out = []
    worst = worst_by_run(findings, runs[:1])
    for run in runs[:1]:
        f = worst.get(run.key)
        if f is not None and getattr(f, "step", None) is not None and severity_rank(f) >= 2:
            out.append((run, f.step, "%s @%s" % (finding_title(f), f.step)))
    return out
