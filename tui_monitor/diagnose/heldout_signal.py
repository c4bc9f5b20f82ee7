"""What step 2 of the method reads of a run: its held-out loss, or, when it
logs none, a held-out score (``val_accuracy`` alone, a common Keras or
Hugging Face log) read in its own direction.

A score that improves downward (WER, perplexity, an error rate) reads as a
loss. One that improves upward (accuracy, F1, mAP) is kept as its badness
1/value (:class:`~.tracks.EvalTrack` with ``invert``): its best is then the
lowest, a drop from the best is a rise above it (an accuracy from 0.90 to
0.85 reads as 5.9% worse: 0.90 / 0.85 - 1), and a ratio of two accuracies is
a ratio of badnesses. So the held-out rules (:mod:`.heldout`) read every
signal with one mechanism; only their thresholds differ (:class:`Bars`): the
ratios of an upward score are compressed (a healthy run's training accuracy
is ~1.05x its validation accuracy, where its losses differ 2x), so it has its
own bars in :class:`~.settings.Settings` (``score_*``). The explanations
show the values as logged (:meth:`Heldout.shown`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Optional

import numpy as np

from .settings import Settings
from .tracks import EvalTrack

if TYPE_CHECKING:
    from ..store import Series

__all__ = ["Bars", "Heldout", "heldout_of", "train_strip", "near_span"]


class Bars(NamedTuple):
    """The held-out rules' thresholds for one kind of signal."""

    #: overfitting: Prechelt's GL_alpha (percent above the best), GL at once, GL kept down to
    gl_alpha: float
    gl_strong: float
    gl_keep: float
    #: persistent gap: the held-out badness at least this multiple of the training's
    gap_ratio: float
    #: test shift: test at least this multiple of validation (median), and already this early
    mismatch_ratio: float
    mismatch_early: float


def bars(s: Settings, upward: bool) -> Bars:
    """A loss's bars, or (``upward``) a score's that improves upward."""
    if upward:
        return Bars(s.score_gl_alpha, s.score_gl_strong, s.score_gl_keep, s.score_gap_ratio,
                    s.score_mismatch_ratio, s.score_mismatch_early)
    return Bars(s.gl_alpha, s.gl_strong, s.gl_keep, s.gap_ratio, s.mismatch_ratio, s.mismatch_early)


def train_strip(series, step: int, span: int) -> np.ndarray:
    """The finite values of a training series over the steps (step - span,
    step]: what training looked like when an evaluation at ``step`` ran."""
    if series is None:
        return np.empty(0)
    v = series.range(step - max(1, span) + 1, step)
    return v[np.isfinite(v)] if len(v) else v


def near_span(span: int, s: Settings) -> int:
    """How many steps before an evaluation count as "near" it: the last
    quarter of the interval since the one before, at least ``near_points``
    steps (all of a shorter interval). An interval that began with the
    initial descent does not lift the training loss "at" the evaluation."""
    span = max(1, int(span))
    return min(span, max(s.near_points, span // 4))


_SPLIT_WORDS = {"val": "validation", "train": "training"}


class Heldout(NamedTuple):
    """A run's held-out signal: the tracks of its validation and test splits
    (badness: lower is better), what they measure, and the training series
    of the same quantity (the training loss; for a score, the training score
    of the same name when logged, else None: no gap can be measured)."""

    #: "loss", or the score's name ("accuracy", "f1")
    metric: str
    #: a score that improves upward, kept as 1/value
    upward: bool
    val: Optional[EvalTrack]
    test: Optional[EvalTrack]
    train: Optional["Series"]
    bars: Bars

    def split(self) -> Optional[EvalTrack]:
        """The split overfitting reads: validation, else test (None when
        neither has an evaluation yet)."""
        for track in (self.val, self.test):
            if track is not None and len(track):
                return track
        return None

    def shown(self, x: Optional[float]) -> Optional[float]:
        """A badness back in the units the user logged."""
        if x is None or not self.upward:
            return x
        return 1.0 / x if x else float("inf")

    def name(self, split: str) -> str:
        """``validation loss``, ``test accuracy``, ``training accuracy``..."""
        return f"{_SPLIT_WORDS.get(split, split)} {self.metric}"

    def worse_by(self, gl: float, now: float, best: float, step: int) -> str:
        """A rise of ``gl`` percent of the badness above its ``best`` (at
        ``step``), as the user reads the values: ``now`` above the best for
        a loss, the best above ``now`` for a score that improves upward."""
        if self.upward:
            return f"is {self.shown(now):.4g}; its best, {self.shown(best):.4g} at step {step}, is {gl:.1f}% above it"
        return f"is {self.shown(now):.4g}, {gl:.1f}% above its best ({best:.4g} at step {step})"

    def ratio(self, worse: str, worse_v: float, better: str, better_v: float, r: float) -> str:
        """``the WORSE (latest x) is R x the BETTER (latest y)`` for a loss;
        for a score that improves upward the same ratio of badnesses reads
        the other way (``the BETTER ... is R x the WORSE``)."""
        a = f"the {worse} (latest {self.shown(worse_v):.4g})"
        b = f"the {better} (latest {self.shown(better_v):.4g})"
        return f"{b} is {r:.2g}x {a}" if self.upward else f"{a} is {r:.2g}x {b}"

    def train_near(self, step: int, span: int, s: Settings) -> Optional[float]:
        """The training counterpart's badness near ``step`` (the mean of
        what was logged over :func:`near_span` steps before it), None when
        there is none."""
        v = train_strip(self.train, step, near_span(span, s))
        if not len(v):
            return None
        m = float(v.mean())
        if not self.upward:
            return m
        return 1.0 / m if m > 0 else None


def heldout_of(st, s: Settings) -> Optional[Heldout]:
    """The held-out signal of a run state: its held-out loss when it logs
    one, else its held-out score (``st.held_score``), else None."""
    if (st.val is not None and len(st.val)) or (st.test is not None and len(st.test)):
        return Heldout("loss", False, st.val, st.test, st.train_series(), bars(s, False))
    if st.held_score is None:
        return None
    name, upward = st.held_score
    val, test = st.val_score, st.test_score
    if not ((val is not None and len(val)) or (test is not None and len(test))):
        return None
    return Heldout(name, upward, val, test, st.run.get(name, "train"), bars(s, upward))
