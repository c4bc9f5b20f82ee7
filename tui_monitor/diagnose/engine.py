"""The engine: :class:`Diagnoser` runs the detectors over a store,
incrementally.

``update()`` reads, per run, only the points appended since the previous
call (runs whose ``version`` did not move are skipped), recomputes that run's
verdicts from the bounded summaries in :mod:`.tracks`, redoes the cross-run
comparison of the groups that changed, and returns what changed: findings
added, changed and retracted. Call it from the UI's timer (not per record);
it never raises on odd data.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import time as _time

import numpy as np
from typing import Any, Callable, Dict, List, Optional, Tuple

from .assess import Assessment, assess
from .compare import (NO_CROSS, CrossEvidence, CVSummary, cross_evidence, cross_key, cross_run, cross_update,
                      cv_summaries)
from .findings import Finding, severity_rank
from .heldout import HeldoutMemo, mismatch_finding, overfitting_finding
from .heldout_signal import heldout_of
from .path import DecisionPath, decision_path
from .ranks import RankDetector
from .reference import Task, data_key, flexibility, task_of
from .settings import Settings
from .signals import direction, pick_accuracy, pick_score
from .tracks import EvalTrack, GradTrack, LossTrack, pick_loss, pick_lr
from .training import Symptom, divergence_finding, gradient_evidence, nonfinite_findings, train_findings

__all__ = ["Diagnoser", "Changes", "RunState"]

RunKey = Tuple[str, int]


class RunState:
    """What the engine keeps about one run between updates."""

    def __init__(self, run, task_override: Optional[Dict[str, Any]]) -> None:
        self.run = run
        self.version = -1
        self.task_override = task_override
        self.task: Task = task_of(run, task_override)
        self.loss_names: Dict[str, Optional[str]] = {"train": None, "val": None, "test": None}
        self.train = LossTrack()
        self.val: Optional[EvalTrack] = None
        self.test: Optional[EvalTrack] = None
        self.grads = GradTrack()
        #: the score the step-1 rules read (an accuracy, train else val; else any score, train else val:
        #: F1, mAP, WER...) when logged, and the learning rate, as block tracks
        self.score_name: Optional[Tuple[str, str]] = None
        self.score = LossTrack()
        self.lr = LossTrack()
        #: without a held-out loss, the held-out score read instead ((name, improves upward)), and its
        #: evaluations per split as badness (heldout_signal)
        self.held_score: Optional[Tuple[str, bool]] = None
        self.val_score: Optional[EvalTrack] = None
        self.test_score: Optional[EvalTrack] = None
        self.assessment: Optional[Assessment] = None
        self.gradient: List[Symptom] = []
        self.findings: Dict[str, Finding] = {}
        self.memo = HeldoutMemo()  # the held-out rules' per-evaluation values
        self.last_inputs: Optional[tuple] = None
        self.group: Optional[str] = None  # the data it was last compared on
        self.cross_key: tuple = ()  # what the cross-run comparison read of it last time ...
        self.cross_run = None  # ... and its numbers (compare.cross_run), None when not compared

    # helpers for the detectors
    def has_heldout(self) -> bool:
        """A held-out loss or, without one, a held-out score."""
        return any(t is not None and len(t) > 0 for t in (self.val, self.test, self.val_score, self.test_score))

    def loss_name(self, split: str) -> Optional[str]:
        return self.loss_names.get(split)

    def train_series(self):
        name = self.loss_names["train"]
        return self.run.get(name, "train") if name else None

    def lr_value(self) -> Optional[float]:
        """The last logged learning rate."""
        return self.lr.level() if self.lr.n_finite else None

    def depth(self) -> Optional[int]:
        d = (self.run.model or {}).get("depth")
        return int(d) if isinstance(d, (int, float)) and not isinstance(d, bool) else None

    def inputs(self) -> tuple:
        """What the verdicts read from the run besides the tracks: the task,
        the model's size, the learning rate, the name, the status (a group's
        cross-validation is complete when every fold has ended), the data it
        is compared on and the tags that group or mark it. A run whose version
        moved with nothing new in these or the tracks (a heartbeat, a system
        sample) is not assessed again."""
        t, run = self.task, self.run
        tags = run.tags if isinstance(run.tags, dict) else {}
        return (t.kind, t.trivial, t.why, tuple(map(repr, flexibility(run))), self.lr_value(), run.name, run.status,
                data_key(run), tuple(str(tags.get(k)) for k in ("group", "fold", "baseline")))

    def feed(self) -> bool:
        """Take in what is new; True when anything was."""
        run = self.run
        self.task = task_of(run, self.task_override)  # the header may be amended by meta records
        changed = False
        for split in ("train", "val", "test"):
            if self.loss_names[split] is None:
                self.loss_names[split] = pick_loss(run, split)
            name = self.loss_names[split]
            if name is None:
                continue
            series = run.get(name, split)
            if series is None:
                continue
            if split == "train":
                changed |= self.train.feed(series)
            else:
                track = getattr(self, split)
                if track is None:
                    track = EvalTrack()
                    setattr(self, split, track)
                changed |= bool(track.feed(series))
        if self.score_name is None:  # an accuracy first (chance is 1/C for it), then any score
            for pick, split in ((pick_accuracy, "train"), (pick_accuracy, "val"), (pick_score, "train"),
                                (pick_score, "val")):
                name = pick(run, split)
                if name is not None:
                    self.score_name = (name, split)
                    break
        if self.score_name is not None:
            series = run.get(*self.score_name)
            if series is not None:
                changed |= self.score.feed(series)
        changed |= self._feed_held_score()
        lr = pick_lr(run)
        if lr is not None:
            series = run.get(lr, "train")
            if series is not None:
                changed |= self.lr.feed(series)
        changed |= self.grads.feed(run)
        return changed


    def _feed_held_score(self) -> bool:
        """Without a held-out loss, the held-out score (an accuracy first,
        else any score: F1, WER...) of the validation split, else the test
        split's, and the same metric of the other split."""
        run = self.run
        if self.held_score is None:
            if self.loss_names["val"] is not None or self.loss_names["test"] is not None:
                return False
            for pick, split in ((pick_accuracy, "val"), (pick_accuracy, "test"), (pick_score, "val"),
                                (pick_score, "test")):
                name = pick(run, split)
                if name is not None:
                    self.held_score = (name, direction(name) == 1)
                    break
            else:
                return False
        name, upward = self.held_score
        changed = False
        for split in ("val", "test"):
            series = run.get(name, split)
            if series is None:
                continue
            attr = f"{split}_score"
            track = getattr(self, attr)
            if track is None:
                track = EvalTrack(invert=upward)
                setattr(self, attr, track)
            changed |= bool(track.feed(series))
        return changed


@dataclass
class Changes:
    """What one :meth:`Diagnoser.update` changed."""

    added: List[Finding] = field(default_factory=list)
    changed: List[Finding] = field(default_factory=list)
    retracted: List[Finding] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.retracted)


class Diagnoser:
    """The diagnosis engine over a :class:`~tui_monitor.store.Store`.

    ``baseline``: a run id, name or ``run_id#rank`` to compare every other run
    of the same data against (a header tag ``baseline: true`` does the same).
    ``task``: config keys that override every run's (``{"task":
    "classification", "num_classes": 10}``). ``settings``: thresholds.
    ``clock``: the time (epoch seconds) the multi-rank rules judge hangs
    against; the store's clock by default (the one that stamps arrivals).
    """

    def __init__(self, store, baseline: Optional[str] = None, task: Optional[Dict[str, Any]] = None,
                 settings: Optional[Settings] = None, clock: Optional[Callable[[], float]] = None) -> None:
        self.store = store
        self.baseline = baseline
        self.task = dict(task) if task else None
        self.settings = settings or Settings()
        self.states: Dict[RunKey, RunState] = {}
        self._findings: Dict[str, Finding] = {}
        self._group_cross: Dict[str, Dict[RunKey, CrossEvidence]] = {}
        #: the states of each data group, kept as runs come, go and change group
        self._members: Dict[str, Dict[RunKey, RunState]] = {}
        #: findings by the run they are about, rebuilt when findings change (decision paths read it)
        self._by_run: Optional[Dict[RunKey, List[Finding]]] = None
        self._cv: List[CVSummary] = []
        self.updates = 0
        self.clock = clock or getattr(store, "clock", None) or _time.time
        self.ranks = RankDetector(self.settings, self.clock)
        self._job_findings: Dict[str, Finding] = {}
        #: runs in view with a held-out loss (or score), and that count rounded up to a power of two: the held-out
        #: rules ask more of a rise among many runs (a sweep), and are redone when the rounded count moves
        self._heldout_keys: set = set()
        self.population = 1

    # -- reading -----------------------------------------------------------

    @property
    def findings(self) -> List[Finding]:
        """Current findings, most urgent first (severity, then confidence)."""
        return sorted(self._findings.values(), key=lambda f: (-severity_rank(f.severity), -f.confidence, f.id))

    def worst(self) -> Optional[str]:
        """The highest severity among current findings, or None."""
        fs = self.findings
        return fs[0].severity if fs else None

    def findings_for(self, run_key: RunKey) -> List[Finding]:
        """The findings about one run (the run they are about first)."""
        if self._by_run is None:
            by: Dict[RunKey, List[Finding]] = {}
            for f in self._findings.values():
                if f.runs:
                    by.setdefault(tuple(f.runs[0]), []).append(f)
            self._by_run = by
        return self._by_run.get(tuple(run_key), [])

    def decision_path(self, run_key: RunKey) -> Optional[DecisionPath]:
        st = self.states.get(tuple(run_key))
        if st is None:
            return None
        return decision_path(st, self.findings_for(st.run.key), self.settings)

    def decision_paths(self) -> List[DecisionPath]:
        return [decision_path(st, self.findings_for(st.run.key), self.settings) for st in self.states.values()]

    def cv_summaries(self) -> List[CVSummary]:
        return list(self._cv)

    # -- the update ----------------------------------------------------------

    def update(self) -> Changes:
        """Process what arrived since the last call; return the changes."""
        with np.errstate(all="ignore"):  # losses near the float limits overflow to inf, quietly
            return self._update()

    def _update(self) -> Changes:
        self.updates += 1
        s = self.settings
        touched: List[RunState] = []
        changes = Changes()
        runs = self.store.runs
        # States whose key no longer names their run: a placeholder run the
        # store renamed when its stream's header came, or a run that left the
        # store. Drop them and retract what they said; the run carries on
        # under its new key (a fresh state below).
        stale = [(key, st) for key, st in self.states.items() if key not in runs or st.run.key != key]
        dirty_groups: Dict[str, set] = {}  # group -> the keys of its runs that moved, came or went
        for key, st in stale:
            del self.states[key]
            self._heldout_keys.discard(key)
            self._merge(st.findings, {}, changes)
            st.findings = {}
            if st.group is not None:
                self._members.get(st.group, {}).pop(key, None)
                dirty_groups.setdefault(st.group, set()).add(key)
        for run in list(runs.values()):
            st = self.states.get(run.key)
            if st is None:
                st = self.states[run.key] = RunState(run, self.task)
            elif st.run is not run:
                st.run = run
            if st.version == run.version:
                continue
            st.version = run.version
            fed = st.feed()
            inputs = st.inputs()
            if not fed and inputs == st.last_inputs and st.assessment is not None:
                continue
            group = data_key(run)
            if st.group != group:
                if st.group is not None:
                    self._members.get(st.group, {}).pop(run.key, None)
                    dirty_groups.setdefault(st.group, set()).add(run.key)  # it left: compare the rest again
                self._members.setdefault(group, {})[run.key] = st
                dirty_groups.setdefault(group, set()).add(run.key)
            st.last_inputs, st.group = inputs, group
            st.assessment = assess(st, s, st.assessment)
            st.gradient = gradient_evidence(st, st.assessment, s) if st.assessment.window is not None else []
            if st.has_heldout():
                self._heldout_keys.add(run.key)
            ck = cross_key(st, s, self.baseline)
            if ck != st.cross_key:  # its group is compared again only when what it reads moved
                st.cross_key, st.cross_run = ck, cross_run(st, ck)
                dirty_groups.setdefault(group, set()).add(run.key)
            touched.append(st)
        self._update_jobs(changes)  # time-based: every update, even when no run moved
        if not touched and not dirty_groups:
            return changes
        # cross-run evidence for the groups where a member's level, size or tags moved, or a run left
        redo = {st.run.key: st for st in touched}
        population = 1 << max(0, len(self._heldout_keys) - 1).bit_length()
        if population != self.population:
            self.population = population
            for key in self._heldout_keys:
                st = self.states.get(key)
                if st is not None:
                    redo[key] = st
        for g, moved in dirty_groups.items():
            members = list(self._members.get(g, {}).values())
            if not members:
                self._group_cross.pop(g, None)
                self._members.pop(g, None)
                continue
            old = self._group_cross.get(g, {})
            new = None
            if len(members) <= 1:
                new = {m.run.key: NO_CROSS for m in members}
            elif old and len(moved) <= 8:  # a few runs moved: update from the last comparison, O(n x moved)
                new = cross_update(self._members[g], moved, s, self.baseline, old)
            if new is None:
                new = cross_evidence(members, s, self.baseline, old)
            for m in members:  # a run whose citations changed is judged again
                key = m.run.key
                a, b = new.get(key, NO_CROSS), old.get(key, NO_CROSS)
                if a is not b and a.signature() != b.signature():
                    redo[key] = m
            self._group_cross[g] = new
        # per-run verdicts
        for key, st in redo.items():
            cross = self._group_cross.get(st.group, {}).get(key, NO_CROSS)
            new = {f.id: f for f in self._run_findings(st, cross)}
            self._merge(st.findings, new, changes)
            st.findings = new
        if any(("fold" in (st.run.tags or {})) for st in touched) or \
                any(("fold" in (st.run.tags or {})) for _, st in stale):
            self._cv = cv_summaries(list(self.states.values()))
        return changes

    def _update_jobs(self, changes: Changes) -> None:
        """The multi-rank rules (:mod:`.ranks`) over every job, diffed
        against what they said last time."""
        new = {f.id: f for f in self.ranks.update(list(self.store.runs.values()))}
        self._merge(self._job_findings, new, changes)
        self._job_findings = new

    def _merge(self, old: Dict[str, Finding], new: Dict[str, Finding], changes: Changes) -> None:
        """Diff one source's findings against what it said last time. A
        finding keeps its earliest onset unless it says its onset moves
        (``onset_moves``: overfitting's follows the best evaluation)."""
        for fid, f in new.items():
            prev = old.get(fid)
            if prev is None:
                changes.added.append(f)
                continue
            if prev.step is not None and not f.onset_moves:
                f.step = min(prev.step, f.step) if f.step is not None else prev.step
            if not prev.same_as(f):
                changes.changed.append(f)
        for fid, f in old.items():
            if fid not in new:
                changes.retracted.append(f)
                self._findings.pop(fid, None)
        self._findings.update(new)
        if old or new:
            self._by_run = None

    def jobs(self) -> Dict[str, List[Any]]:
        """run_id -> the ranks of each multi-rank job in the store."""
        from .ranks import jobs_of

        return jobs_of(list(self.store.runs.values()))

    def _run_findings(self, st: RunState, cross: CrossEvidence) -> List[Finding]:
        s = self.settings
        out: List[Finding] = []
        nf = nonfinite_findings(st)
        out.extend(nf)
        a = st.assessment
        if not nf and a is not None:
            div = divergence_finding(st, a, s)
            if div is not None:
                out.append(div)
            else:
                out.extend(train_findings(st, a, st.gradient, cross, s))
        view = heldout_of(st, s) if not nf else None
        if view is not None:
            prior = next((f for f in st.findings.values() if f.kind == "overfitting"), None)
            of = overfitting_finding(st, view, s, prior, self.population)
            if of is not None:
                out.append(of)
            mm = mismatch_finding(st, view, s, of, self.population)
            if mm is not None:
                out.append(mm)
        return out


