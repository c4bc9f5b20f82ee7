"""Where one run's training loss stands: :class:`Assessment`, the typed
record every step-1 rule reads, and :func:`assess`, which computes it from
the run's tracks."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from .settings import Settings
from .tracks import Windows

__all__ = ["Assessment", "assess", "fmt"]


def fmt(x: Optional[float]) -> str:
    """A number as the explanations print it (4 significant digits)."""
    if x is None:
        return "?"
    return f"{x:.4g}"


@dataclass(frozen=True)
class Assessment:
    """Where a run's training loss stands after an update. Frozen and
    slotted: a mistyped field raises instead of reading as None."""

    __slots__ = ("level", "initial", "points", "trivial", "last_step", "best", "best_step", "window", "stalled",
                 "stall_confirmed", "never_left", "no_progress", "progress", "progress_needed", "ratio", "large",
                 "why")

    #: the current level: the newer window's median block mean, else the mean of the last ~32 points
    level: Optional[float]
    #: where it started: the median of its first finite values
    initial: Optional[float]
    #: finite training points so far
    points: int
    #: the trivial loss of the task, when known
    trivial: Optional[float]
    last_step: Optional[int]
    #: the lowest block mean and the last step of its block
    best: Optional[float]
    best_step: Optional[int]
    #: the two-window comparison, None while too short
    window: Optional[Windows]
    #: no progress between the windows (None while too short)
    stalled: Optional[bool]
    #: ... nor over the window before (three windows)
    stall_confirmed: bool
    #: stalled within ``left_initial`` of where it started
    never_left: bool
    #: stalled and not below its start, or back far above its best
    no_progress: bool
    #: older window minus newer window, and what counted as progress
    progress: Optional[float]
    progress_needed: Optional[float]
    #: level / trivial
    ratio: Optional[float]
    #: "yes", "no" or None (undecided)
    large: Optional[str]
    #: the answer to "training loss large?" in words
    why: str


def assess(st, s: Settings, prev: Optional[Assessment] = None) -> Assessment:
    """The run's :class:`Assessment`. ``prev``, the previous one, gives the
    verdicts hysteresis: a stall ends on clear progress only (twice the bar
    that started it), a large loss stays large down to 0.65 of the trivial
    loss, and "no progress" ends when the loss is back under 0.8 of its
    start."""
    t = st.train
    triv = st.task.trivial
    best_pair = t.best()
    best, best_step = best_pair if best_pair else (None, None)
    level = t.level()
    w = max(s.patience, int(s.window_frac * t.n_finite))
    tw = t.two_windows(w)
    stalled: Optional[bool] = None
    confirmed = never_left = no_progress = False
    progress = need = None
    was_stalled = bool(prev and prev.stalled)
    if tw is not None:
        noise = t.noise or 0.0
        se = noise * math.sqrt(2.0 / tw.n_points)
        progress = tw.before - tw.now
        need = max(s.z * se, s.min_progress * abs(tw.now))
        if was_stalled:
            need *= 2.0
        stalled = bool(progress < need)
        # confirmed: no progress over the window before either (three windows, from the data alone)
        three = t.window_medians(tw.n_points, 3)
        confirmed = bool(stalled and three is not None and three[0] - three[1] < need)
        init = t.initial
        if init is not None:
            never_left = bool(stalled and tw.now >= init - s.left_initial * abs(init))
        back_up = best is not None and best > 0 and tw.now >= 2.0 * best and tw.now_min > best * 1.5
        no_progress = bool(never_left or (init is not None and tw.now >= init) or back_up)
        if prev is not None and prev.no_progress and not no_progress and init is not None:
            no_progress = bool(tw.now >= 0.8 * init or back_up)
        level = tw.now
    ratio = (level / triv) if (level is not None and triv) else None
    large, why = None, "no reference yet"
    if tw is None:
        why = f"only {t.n_finite} training points so far: too early to judge"
    elif ratio is not None:
        if ratio >= s.large_vs_trivial or (prev is not None and prev.large == "yes"
                                           and ratio >= s.large_vs_trivial - 0.1):
            large, why = "yes", f"{fmt(level)} is {ratio:.0%} of the trivial loss {fmt(triv)} ({st.task.why})"
        elif ratio <= s.small_vs_trivial:
            large, why = "no", f"{fmt(level)} is {ratio:.0%} of the trivial loss {fmt(triv)}"
        else:
            why = f"{fmt(level)} is {ratio:.0%} of the trivial loss {fmt(triv)}: neither clearly large nor small"
    if large != "no" and never_left and tw is not None:
        large = "yes"
        why = (f"it never left its initial value: {fmt(tw.now)} over steps {tw.now_step}-{t.last_step} "
               f"against {fmt(t.initial)} at the start")
    return Assessment(level=level, initial=t.initial, points=t.n_finite, trivial=triv, last_step=t.last_step,
                      best=best, best_step=best_step, window=tw, stalled=stalled, stall_confirmed=confirmed,
                      never_left=never_left, no_progress=no_progress, progress=progress, progress_needed=need,
                      ratio=ratio, large=large, why=why)
