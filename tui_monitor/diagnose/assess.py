"""Where one run's training loss stands: :class:`Assessment`, the typed
record every step-1 rule reads, and :func:`assess`, which computes it from
the run's tracks.

Windows are sized by the information the run carries, not by a point
count: a loss logged every step needs ``patience`` points a window (to
average the minibatch noise), a per-epoch log ``window_evals`` epochs, a
loss logged once per evaluation interval that many intervals
(:func:`window_floor`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, NamedTuple, Optional, Tuple

from .heldout_signal import heldout_of
from .settings import Settings
from .signals import LrState, is_supervised, lr_state
from .tracks import Streak, Windows

__all__ = ["Assessment", "Crawl", "assess", "fmt", "window_floor", "DECLARE"]

#: what decides step 1 when no reference is known
DECLARE = ("declare the task (config task + num_classes, or task: regression + target_var; or --task on the "
           "command line) or mark a baseline run of the same data (--baseline)")


def fmt(x: Optional[float]) -> str:
    """A number as the explanations print it (4 significant digits)."""
    if x is None:
        return "?"
    return f"{x:.4g}"


class Crawl(NamedTuple):
    """A loss that crawls down from its start: the medians of the run's
    four quarters (steady drops, no fast phase)."""

    quarters: List[float]
    drops: List[float]


@dataclass(frozen=True)
class Assessment:
    """Where a run's training loss stands after an update. Frozen and
    slotted: a mistyped field raises instead of reading as None."""

    __slots__ = ("level", "initial", "points", "trivial", "last_step", "best", "best_step", "window", "stalled",
                 "stall_confirmed", "never_left", "no_progress", "progress", "progress_needed", "ratio", "large",
                 "why", "needs", "window_points", "unit", "above_start", "lowest", "crawl", "collapsed", "lr",
                 "supervised")

    #: the current level: the newer window's median block mean, else the mean of the last ~32 points
    level: Optional[float]
    #: where it started: the median of its first finite values (before any that exploded)
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
    #: what would decide it while undecided ("" when decided)
    needs: str
    #: the smallest window the run's information allows (points), and what it counts ("points",
    #: "evaluations", "epochs")
    window_points: int
    unit: str
    #: it never got meaningfully below its start (its best window stays within ``left_initial``) and
    #: it now sits above it: no progress at all
    above_start: bool
    #: the lowest window median so far (None while too short)
    lowest: Optional[float]
    #: steady progress from the start with no fast phase, still far from any reference
    crawl: Optional[Crawl]
    #: the loss identical for a long stretch
    collapsed: Optional[Streak]
    #: the logged learning rate
    lr: Optional[LrState]
    #: the run says it is supervised training (a task, a held-out loss or a score: signals.is_supervised)
    supervised: bool


def window_floor(st, s: Settings) -> Tuple[int, str]:
    """The smallest window, in training points, that carries enough
    information to judge progress, and what it counts. An ``epoch`` metric
    or held-out evaluations say how many points an epoch or an evaluation
    interval spans; when that is at most ``coarse_points`` (each point summarises
    an epoch or an interval, as in a Keras CSV or a Hugging Face log), a
    window is ``window_evals`` of them (at least ``min_window`` points, at
    most ``patience``); otherwise (a loss logged every step, one minibatch a
    point) ``patience`` points, enough to average the minibatch noise."""
    t = st.train
    n = t.n_finite
    if n < 2 or t.first_step is None or t.last_step is None:
        return s.patience, "points"
    span = max(1, t.last_step - t.first_step)
    spacing = span / max(1, n - 1)  # steps between training points
    per, unit = None, "points"
    ep = st.run.get("epoch", "train")
    if ep is not None and len(ep) >= 2:
        vals = ep.values
        epochs = float(vals[len(vals) - 1]) - float(vals[0])
        if math.isfinite(epochs) and epochs >= 1:
            per, unit = n / epochs, "epochs"
    if per is None:
        view = heldout_of(st, s)
        held = view.split() if view is not None else None
        if held is not None and len(held) >= 2:
            interval = (held.steps[-1] - held.steps[0]) / (len(held) - 1)
            if interval > 0:
                per, unit = interval / spacing, "evaluations"
    if per is None or per > s.coarse_points:
        return s.patience, "points"
    return int(min(s.patience, max(s.min_window, math.ceil(s.window_evals * per)))), unit


def _crawl(t, level: float, start: float, s: Settings, triv: Optional[float], se: float) -> Optional[Crawl]:
    """Steady progress from the very start, with no fast phase, while still
    far from any reference: the four quarters of the run each lower than
    the one before by a similar amount (within ``crawl_steadiness``), by
    more than the noise, and the level still above ``crawl_above_start`` of
    the start (or large against the trivial loss)."""
    q = t.quarters()
    if q is None:
        return None
    drops = [q[i] - q[i + 1] for i in range(3)]
    if min(drops) <= max(se, 0.0) or max(drops) > s.crawl_steadiness * min(drops):
        return None
    far = (level >= s.large_vs_trivial * triv) if triv else (start > 0 and level >= s.crawl_above_start * start)
    return Crawl(q, drops) if far else None


def assess(st, s: Settings, prev: Optional[Assessment] = None) -> Assessment:
    """The run's :class:`Assessment`. ``prev``, the previous one, gives the
    verdicts hysteresis (Settings): a stall ends on clear progress only
    (``stall_keep`` x the bar that started it), a large loss stays large down
    to ``large_keep_margin`` below ``large_vs_trivial``, and "no progress"
    ends when the loss is back under ``no_progress_keep`` of its start."""
    t = st.train
    triv = st.task.trivial
    best_pair = t.best()
    best, best_step = best_pair if best_pair else (None, None)
    level = t.level()
    floor, unit = window_floor(st, s)
    head = max(1, min(10, floor // max(1, s.window_evals)))  # a per-epoch log's first point is its start
    init = t.start(head)
    w = max(floor, int(s.window_frac * t.n_finite))
    tw = t.two_windows(w)
    supervised = is_supervised(st)
    lr = lr_state(st.lr if st.lr.n_finite else None, w, s.lr_rising, s.lr_decayed)
    warming = lr is not None and lr.rising  # a warm-up: progress is judged once the rate stops growing
    stalled: Optional[bool] = None
    confirmed = never_left = no_progress = above_start = False
    progress = need = lowest = None
    crawl = None
    was_stalled = bool(prev and prev.stalled)
    if tw is not None:
        noise = t.noise or 0.0
        se = noise * math.sqrt(2.0 / tw.n_points)
        progress = tw.before - tw.now
        need = max(s.z * se, s.min_progress * abs(tw.now))
        if was_stalled:
            need *= s.stall_keep
        stalled = bool(progress < need)
        # confirmed: no progress over the window before either (three windows, from the data alone)
        three = t.window_medians(tw.n_points, 3)
        confirmed = bool(stalled and three is not None and three[0] - three[1] < need)
        lowest = t.lowest_window(tw.n_points)
        if init is not None:
            never_left = bool(stalled and tw.now >= init - s.left_initial * abs(init) and not warming)
            # no progress at all, whatever the stall test says (a loss that swings slowly shows
            # "progress" between two windows half the time): its best window never got meaningfully
            # below its start, and it now sits above it (beyond the start's own uncertainty)
            above_start = bool(init > 0 and lowest is not None and lowest >= (1.0 - s.left_initial) * init
                               and tw.now >= init + 2.0 * t.start_se(head) and not warming)
        back_up = best is not None and best > 0 and tw.now >= s.back_up * best and tw.now_min > best * s.back_up_min
        no_progress = bool(never_left or above_start or (init is not None and tw.now >= init) or back_up)
        if prev is not None and prev.no_progress and not no_progress and init is not None:
            no_progress = bool(tw.now >= s.no_progress_keep * init or back_up)
        level = tw.now
        if init is not None and not stalled and not warming and not (lr is not None and lr.decayed) \
                and t.n_finite >= 4 * floor:
            crawl = _crawl(t, level, init, s, triv, s.z * se)
    collapsed = _collapsed(t, floor, unit, s)
    ratio = (level / triv) if (level is not None and triv) else None
    large, why, needs = None, "no reference yet", ""
    if tw is None:
        need_pts = 2 * floor
        each = f", {s.window_evals} {unit} each" if unit != "points" else ""
        why = (f"only {t.n_finite} training points so far: too early to judge (progress is judged over two "
               f"windows of at least {floor} points{each})")
        needs = f"{max(1, need_pts - t.n_finite)} more training points ({need_pts} in all)"
    elif ratio is not None:
        what = f"the training loss (median of its recent block means, steps {tw.now_step}-{t.last_step}) {fmt(level)}"
        if ratio >= s.large_vs_trivial or (prev is not None and prev.large == "yes"
                                           and ratio >= s.large_vs_trivial - s.large_keep_margin):
            large, why = "yes", f"{what} is {ratio:.0%} of the trivial loss {fmt(triv)} ({st.task.why})"
        elif ratio <= s.small_vs_trivial:
            large, why = "no", f"{what} is {ratio:.0%} of the trivial loss {fmt(triv)}"
        else:
            why = f"{what} is {ratio:.0%} of the trivial loss {fmt(triv)}: neither clearly large nor small"
            needs = ("a baseline run of the same data (a smaller, easy-to-optimise model) to compare with, "
                     "or more training")
    else:
        what = f"the training loss (median of its recent block means, steps {tw.now_step}-{t.last_step}) {fmt(level)}"
        if init is not None and init > 0 and level is not None and 0 <= level <= s.small_vs_start * init:
            large, why = "no", (f"{what} is {level / init:.0%} of where it started ({fmt(init)}): an order of "
                                f"magnitude down (no trivial loss known: declare the task to judge against it)")
        else:
            why = f"{what}: no trivial loss to judge it against ({st.task.why})"
            needs = DECLARE
    if large != "no" and tw is not None and supervised and (never_left or above_start):
        large, needs = "yes", ""
        if never_left and tw.now > init + s.left_initial * abs(init):
            times = f" ({tw.now / init:.3g}x)" if init > 0 else ""
            why = (f"it is above where it started: the training loss (median of its block means) is "
                   f"{fmt(tw.now)} over steps {tw.now_step}-{t.last_step} against {fmt(init)} at the start{times}")
        elif never_left:
            why = (f"it never left its initial value: the training loss (median of its block means) is "
                   f"{fmt(tw.now)} over steps {tw.now_step}-{t.last_step} against {fmt(init)} at the start")
        else:
            why = (f"it never got meaningfully below its start ({fmt(init)}): its lowest window (median of block "
                   f"means) is {fmt(lowest)}, and over steps {tw.now_step}-{t.last_step} it sits above it at "
                   f"{fmt(tw.now)}")
    return Assessment(level=level, initial=init, points=t.n_finite, trivial=triv, last_step=t.last_step,
                      best=best, best_step=best_step, window=tw, stalled=stalled, stall_confirmed=confirmed,
                      never_left=never_left, no_progress=no_progress, progress=progress, progress_needed=need,
                      ratio=ratio, large=large, why=why, needs=needs, window_points=floor, unit=unit,
                      above_start=above_start, lowest=lowest, crawl=crawl, collapsed=collapsed, lr=lr,
                      supervised=supervised)


def _collapsed(t, floor: int, unit: str, s: Settings) -> Optional[Streak]:
    """The loss identical (to ``collapse_rtol``) over a long stretch: at
    least ``collapse_points`` points and ``collapse_steps`` steps, or, for a
    log of epochs or evaluations, two windows' worth of its points (and at
    least 10). An exact zero is a loss that reached its floor."""
    k = t.streak
    if k is None or k.value == 0.0 or t.last_step is None:
        return None
    if unit == "points":
        long = k.points >= s.collapse_points and t.last_step - k.first_step >= s.collapse_steps
    else:
        long = k.points >= max(10, 2 * floor)
    return k if long else None
