"""The signals a log carries besides its losses: scores read in their own
direction (accuracy, F1, mAP up; WER, perplexity down), the learning rate,
and what says a run is supervised training at all.

A training score is summarised by the same block track as the loss
(:class:`~.tracks.LossTrack`), and so is the learning rate: the engine feeds
them incrementally like the loss. A held-out score is kept per evaluation
(:class:`~.tracks.EvalTrack`), read as a badness (1/value for one that
improves upward: ``EvalTrack(invert=True)``, :mod:`.heldout_signal`) so the
held-out rules read it as they read a loss.
"""
from __future__ import annotations

from typing import NamedTuple, Optional

from .. import metric_direction

__all__ = ["direction", "pick_score", "pick_accuracy", "is_accuracy", "is_score", "LrState", "lr_state",
           "is_supervised"]

#: words of an accuracy (chance is 1/C)
ACCURACY_WORDS = frozenset(("acc", "accuracy", "top1"))
#: words of metrics that have a direction but do not score a supervised model's predictions: what a
#: reinforcement-learning run or the system logs (a return need not be positive or bounded, and a run
#: that logs one says nothing of a supervised task)
NOT_SCORE_WORDS = frozenset(("reward", "rewards", "return", "returns", "regret", "latency", "episode"))

def direction(name: str) -> Optional[int]:
    """+1 when higher is better (``accuracy``, ``f1``, ``mAP``), -1 when
    lower is (``loss``, ``wer``, ``perplexity``), None when the name does
    not say: :func:`tui_monitor.metric_direction.direction`, the one reading
    of a metric's name that the chart's best marker uses too."""
    found = metric_direction.direction(name)
    return None if found is None else (1 if found == metric_direction.HIGHER else -1)


def is_accuracy(name: str) -> bool:
    """An accuracy (chance is 1/C), not an error rate (``top1_err``)."""
    return any(w in ACCURACY_WORDS for w in metric_direction.words(name)) and metric_direction.direction(name) == metric_direction.HIGHER


def is_score(name: str) -> bool:
    """A metric that scores a supervised model's predictions, with a
    direction its name says (:func:`direction`): accuracy, F1, mAP, AUC, BLEU
    (higher is better), WER, CER, perplexity, error (lower). Not a loss (the
    loss rules read those), nor a name with no direction (the learning rate,
    a timing), nor a reinforcement-learning return or a latency
    (:data:`NOT_SCORE_WORDS`)."""
    words = metric_direction.words(name)
    if "loss" in words or any(w in NOT_SCORE_WORDS for w in words):
        return False
    return direction(name) is not None


def pick_accuracy(run, split: str) -> Optional[str]:
    """The accuracy of ``split`` (``accuracy``, ``acc``, ``top1``...), the
    first logged, or None."""
    for _, m in run.metrics(split):
        if is_accuracy(m):
            return m
    return None


def pick_score(run, split: str) -> Optional[str]:
    """The score of ``split`` the rules read: its accuracy when logged (chance
    is 1/C for it alone), else the first metric that :func:`is_score` (F1,
    mAP, WER...), else None."""
    found = pick_accuracy(run, split)
    if found is not None:
        return found
    for _, m in run.metrics(split):
        if is_score(m):
            return m
    return None


class LrState(NamedTuple):
    """The logged learning rate: now, at its peak so far, and whether the
    schedule is warming up (rising over the recent window) or has decayed
    (to ``lr_decayed`` of its peak)."""

    now: float
    peak: float
    rising: bool
    decayed: bool


def lr_state(track, window_points: int, rising: float, decayed: float) -> Optional[LrState]:
    """The :class:`LrState` from a learning-rate track, None when not logged."""
    now = track.level() if track is not None else None
    peak = track.peak() if track is not None else None
    if now is None or peak is None or peak <= 0:
        return None
    tw = track.two_windows(window_points)
    is_rising = tw is not None and tw.before > 0 and tw.now >= rising * tw.before
    return LrState(now, peak, bool(is_rising), bool(now <= decayed * peak))


def is_supervised(st) -> bool:
    """Whether the run says it is supervised learning, where a loss that
    does not fall is a fault: a declared (or inferred) task, a held-out loss
    or a score of predictions (:func:`is_score`: an accuracy, F1, WER...).
    Without any of these (a reinforcement-learning or GAN loss, which need
    not fall; a reward is not such a score), a loss that does not move is not
    judged on its own."""
    if st.task.trivial is not None or st.task.kind in ("classification", "regression"):
        return True
    if (st.val is not None and len(st.val)) or (st.test is not None and len(st.test)):
        return True
    return st.score_name is not None
