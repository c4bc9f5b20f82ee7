"""Step 2 of the method: the held-out loss (or, when a run logs none, a
held-out score read in its own direction: :mod:`.heldout_signal`).
Overfitting (Prechelt's early stopping criteria over strips of evaluations)
and mismatch (a test split that is high from early on while validation tracks
training; a test split that rises from its first evaluations while
validation falls; or a gap that is large from the start and does not grow).
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Tuple

import numpy as np

from .findings import Finding, make_finding
from .heldout_signal import Heldout, near_span, train_strip
from .settings import Settings
from .tracks import jitter_of

__all__ = ["overfitting_finding", "mismatch_finding", "HeldoutMemo", "memo_for"]


class HeldoutMemo:
    """What the held-out rules computed once per evaluation and keep on the
    run's state, so an update only handles the evaluations that are new.
    Slotted: a mistyped attribute raises."""

    __slots__ = ("metric", "pairs", "next_val", "test_index", "train_at_val", "gaps", "gaps_done")

    def __init__(self, metric: str = "loss") -> None:
        #: what the held-out signal measures ("loss", or a score's name): a memo is for one signal
        self.metric = metric
        #: (step, val, test) at the steps both splits evaluated, in order
        self.pairs: List[Tuple[int, float, float]] = []
        #: the next val evaluation to match, and test's step -> index
        self.next_val = 0
        self.test_index: Dict[int, int] = {}
        #: the training counterpart's level (badness) near each val evaluation
        self.train_at_val: List[Optional[float]] = []
        #: (step, val / train badness, the gap in the units logged: val - train for a loss, train - val
        #: for a score that improves upward) per val evaluation after the first
        self.gaps: List[Tuple[int, float, float]] = []
        #: val evaluations the gaps cover (step 0's evaluation precedes any training)
        self.gaps_done = 1


def memo_for(st, view: Heldout) -> HeldoutMemo:
    """The run state's memo for ``view``'s signal (a new one when the signal
    changed: a held-out loss that appeared after a score)."""
    if st.memo.metric != view.metric:
        st.memo = HeldoutMemo(view.metric)
    return st.memo


def train_near(st, step: int, span: int, s: Settings) -> Optional[float]:
    """Mean training loss over the steps :func:`~.heldout_signal.near_span`
    before ``step``."""
    v = train_strip(st.train_series(), step, near_span(span, s))
    return float(v.mean()) if len(v) else None


def lr_at(st, step: int) -> Optional[float]:
    """The learning rate logged last at or before ``step``, if any."""
    from .tracks import pick_lr

    name = pick_lr(st.run)
    series = st.run.get(name, "train") if name else None
    if series is None or not len(series):
        return None
    snap = series.snapshot()
    if snap.steps_sorted:
        i = int(np.searchsorted(snap.steps, step, side="right")) - 1
    else:
        at = np.flatnonzero(snap.steps <= step)
        i = int(at[-1]) if len(at) else -1
    if i < 0:
        return None
    v = float(snap.values[i])
    return v if math.isfinite(v) else None


def _gl(v: float, best: float) -> float:
    """Prechelt's generalisation loss in percent: 100 (E_va / E_opt - 1)."""
    if best > 0:
        return 100.0 * (v / best - 1.0)
    return 100.0 * (v - best) / max(abs(best), 1e-12)


def required_sigmas(s: Settings, population: int) -> float:
    """How many evaluation-noise sigmas an excess must reach: ``gl_jitter``
    for one run, more with many runs in view (among N runs of pure noise,
    the largest excess grows like sqrt(2 ln N) sigmas)."""
    return math.sqrt(s.gl_jitter ** 2 + 2.0 * math.log(max(1, population)))


def clear_of_noise(excess: float, sigma_pct: float, s: Settings, population: int) -> bool:
    """The bar every held-out rule's excess (percent: a rise above the best,
    a ratio above 1) must clear besides its own threshold:
    :func:`required_sigmas` evaluation-noise sigmas."""
    return excess > required_sigmas(s, population) * sigma_pct


def noise_confidence(excess: float, sigma_pct: float, evaluations: int, tries: int, s: Settings) -> float:
    """How sure an excess of ``excess`` percent is not noise of ``sigma_pct``
    percent: one minus the chance that noise alone makes an excess this
    large in any of ``tries`` independent tries (pairs of evaluations, runs
    in view), with the noise estimated from the ``evaluations`` themselves
    (a Student-t tail with n - 3 degrees of freedom: few evaluations, heavy
    tails); between ``confidence_floor`` (the excess cleared the bar of
    :func:`clear_of_noise`: at least even odds) and ``confidence_ceiling``
    (what one run's held-out evidence can claim)."""
    sigma = max(sigma_pct, 0.25)  # a perfectly smooth curve still has rounding-level noise
    z = excess / sigma
    nu = max(1.0, evaluations - 3.0)
    zg = z * (1.0 - 1.0 / (4.0 * nu)) / math.sqrt(1.0 + z * z / (2.0 * nu))  # t tail as a normal one
    p = 0.5 * math.erfc(zg / math.sqrt(2.0))
    return max(s.confidence_floor, min(s.confidence_ceiling, 1.0 - min(1.0, max(1, tries) * p)))


def rise_confidence(gl: float, sigma_pct: float, evaluations: int, population: int, s: Settings) -> float:
    """:func:`noise_confidence` of a rise of ``gl`` percent over the best
    evaluation: the difference of two noisy evaluations (sqrt(2) sigma),
    between any two of them (the best is itself the lowest: a pair, not one
    value, is tested), in any of the ``population`` runs in view."""
    pairs = max(1, evaluations * (evaluations - 1) // 2)
    return noise_confidence(gl, max(sigma_pct, 0.25) * math.sqrt(2.0), evaluations, max(1, population) * pairs, s)


def ratio_confidence(strength: float, ratio: float, sigma_pct: float, evaluations: int, population: int,
                     s: Settings) -> float:
    """A mismatch rule's confidence: its ``strength`` when the evidence is
    clear of noise (what the pattern says of the cause), times how sure its
    ``ratio`` (a median over the evaluations) is not noise of ``sigma_pct``
    percent an evaluation in any of the ``population`` runs in view
    (:func:`noise_confidence`, relative to the most it can say)."""
    noise = noise_confidence(100.0 * (ratio - 1.0), sigma_pct, evaluations, population, s)
    return strength * noise / s.confidence_ceiling


def overfitting_finding(st, view: Heldout, s: Settings, prior: Optional[Finding],
                        population: int = 1) -> Optional[Finding]:
    """Training loss still falling while the held-out signal (``view``: the
    validation split's, the test split's only when there is no validation
    split: with both, a rising test split is mismatch's business) has gone
    worse than its best by GL > ``gl_alpha`` percent (the view's bars: a
    loss's, or a score's read as 1/value) and above the evaluation noise
    (more with many runs in view: ``population``) over ``up_strips``
    successive evaluations (UP_s), or by ``gl_strong`` at once. Not while the
    learning rate is warming up (training and held-out losses rise together
    then). A finding already raised stays until GL falls below ``gl_keep``."""
    ev = view.split()
    if ev is None or len(ev) < s.min_evals or ev.best_index < 0:
        return None
    b = view.bars
    split = "val" if ev is view.val else "test"
    i = len(ev) - 1
    v, step = ev.values[i], ev.steps[i]
    # GL over the running median of 3 evaluations: one lucky evaluation neither sets the best nor a rise
    gl = _gl(ev.smooth[i], ev.best_smooth)
    since = i - ev.best_smooth_index
    jit = 100.0 * ev.jitter()
    span = (ev.steps[i] - ev.steps[i - 1]) if i else 1
    best_step = ev.steps[ev.best_smooth_index]
    # the training losses of the last strip, read once: their spread is Prechelt's progress
    # P_k = 1000 (mean/min - 1); training "now" and "at the best" are the losses near those steps
    strip = train_strip(st.train_series(), step, span)
    near = near_span(span, s)
    tr_now = train_near(st, step, span, s)
    tr_best = train_near(st, best_step, span, s)
    train_ok = tr_now is not None and tr_best is not None and tr_now <= tr_best * s.train_at_best
    pk = None
    if i and len(strip) and strip.min() > 0:
        pk = 1000.0 * (float(strip.mean()) / float(strip.min()) - 1.0)
    pq = gl / pk if pk else None
    threshold = max(b.gl_alpha, required_sigmas(s, population) * jit)  # clear_of_noise, and GL_alpha
    holding = prior is not None and gl > max(b.gl_keep, 0.5 * threshold) and since >= 1
    ups = ev.smooth_ups()
    firing = since >= 2 and gl > threshold and (ups >= s.up_strips or gl > b.gl_strong)
    if not (train_ok and (firing or holding)):
        return None
    lr_best, lr_now = lr_at(st, best_step), lr_at(st, step)
    if lr_best and lr_now and lr_now >= s.lr_rising * lr_best:
        return None  # a warm-up: the rate grew since the best evaluation, and the losses rise with it
    # where it began: the first evaluation after the best that rose above GL_alpha
    onset = next((ev.steps[j] for j in range(ev.best_smooth_index + 1, i + 1)
                  if _gl(ev.smooth[j], ev.best_smooth) > b.gl_alpha), step)
    conf = rise_confidence(gl, jit, len(ev), population, s)
    shown = view.shown
    what = view.name(split)
    evid = {"split": split, "metric": view.metric, "best": shown(ev.best), "best_step": ev.best_step,
            "best_smoothed": shown(ev.best_smooth), "best_smoothed_step": best_step, "value": shown(v),
            "value_smoothed": shown(ev.smooth[i]), "step": step, "GL": gl, "UP": ups, "PQ": pq, "P_k": pk,
            "evaluations_since_best": since, "jitter_percent": jit, "runs_in_view": population,
            "train_at_best": tr_best, "train_now": tr_now, "near_steps": near}
    turning = ("falling" if view.upward else "rising") + f" over its last {ups} evaluation{'s' if ups != 1 else ''}"
    near_words = "at those steps" if near == 1 else f"near those steps (mean of the {near} steps before each)"
    text = (f"the {what} (running median of 3 evaluations) {view.worse_by(gl, ev.smooth[i], ev.best_smooth, best_step)} "
            f"after {since} evaluations{', ' + turning if ups else ''}, while the training loss {near_words} went "
            f"from {tr_best:.4g} to {tr_now:.4g}: overfitting. ")
    if ev.best_index == 0:
        text += (f"The {what} never improved on its first evaluation ({shown(ev.best):.4g} at step "
                 f"{ev.best_step}): no checkpoint of this run beats the model it started from")
    else:
        extreme, side = ("highest", "lower") if view.upward else ("lowest", "higher")
        text += (f"Keep the checkpoint of step {ev.best_step} (its {extreme} evaluation, {shown(ev.best):.4g}); "
                 f"the latest is {shown(v):.4g}, {abs(shown(v) - shown(ev.best)):.4g} {side}")
    return make_finding("overfitting", "validation_turned", [st.run], onset, "warning", conf, evid, text,
                        seen_at_step=step, onset_moves=True)


def _matched(memo: HeldoutMemo, a, b):
    """(step, a value, b value) at the steps both tracks evaluated, in
    order; memoised, so each evaluation is matched once."""
    index = memo.test_index
    for k in range(len(index), len(b)):
        index[b.steps[k]] = k
    pairs = memo.pairs
    i = memo.next_val
    while i < len(a):
        k = index.get(a.steps[i])
        if k is None:
            if a.steps[i] > (b.steps[-1] if len(b) else -1):
                break  # its test evaluation may still come
        else:
            pairs.append((a.steps[i], a.values[i], b.values[k]))
        i += 1
    memo.next_val = i
    return pairs


def _sample(xs, most: int = 300):
    """At most about ``most`` evenly spaced items of ``xs``: medians over a
    long run's thousands of evaluations stay O(1) per update."""
    step = max(1, len(xs) // most)
    return xs[::step]


def mismatch_finding(st, view: Heldout, s: Settings, overfitting: Optional[Finding],
                     population: int = 1) -> Optional[Finding]:
    """Mismatch, from the strongest evidence available: a test split high
    from early on while validation tracks training (``test_shift``); a test
    split that rises from its first evaluation while validation falls
    (``test_rises``); without a test split, a validation/training gap large
    from the start that neither grows nor shrinks (``persistent_gap``)."""
    if overfitting is not None:
        return None
    val, test = view.val, view.test
    memo = memo_for(st, view)
    if val is not None and test is not None and len(val) >= s.min_evals and len(test) >= s.min_evals:
        pairs = _matched(memo, val, test)
        if len(pairs) >= s.min_evals:
            f = _test_shift(st, view, s, pairs, population) or _test_rises(st, view, s, pairs, population)
            if f is not None:
                return f
    return _persistent_gap(st, view, memo, s, population)


def _test_shift(st, view: Heldout, s: Settings, pairs, population: int) -> Optional[Finding]:
    """The test split high from early on while validation tracks training:
    the median of test / val at least ``mismatch_ratio`` (and
    ``mismatch_early`` in the first third), clear of the two splits'
    evaluation noise (more with many runs in view), with no overfitting U
    on the test split."""
    test, b = view.test, view.bars
    third = max(2, len(pairs) // 3)
    r = np.array([t / v if v > 0 else math.inf for _, v, t in _sample(pairs)])
    early = np.array([t / v if v > 0 else math.inf for _, v, t in _sample(pairs[:third])])
    med, med_early = float(np.median(r)), float(np.median(early))
    last_t = pairs[-1][2]
    test_gl = _gl(last_t, test.best)
    val_tracks = True
    tr = view.train_near(pairs[-1][0], pairs[-1][0] - pairs[-2][0], s)
    if tr is not None and tr > 0:  # the test split's excess over validation dominates validation's over training
        val_tracks = pairs[-1][1] / tr < max(b.mismatch_ratio, med)
    # the noise of a ratio of two evaluations: both splits' jitter
    noise = 100.0 * math.hypot(test.jitter(), view.val.jitter())
    if not (med >= b.mismatch_ratio and med_early >= b.mismatch_early and test_gl < 10 * b.gl_alpha
            and val_tracks and clear_of_noise(100.0 * (med - 1.0), noise, s, population)):
        return None
    first = pairs[0][0]
    conf = ratio_confidence(min(0.9, 0.5 + 0.15 * math.log2(med)), med, noise, len(pairs), population, s)
    shown = view.shown
    evid = {"metric": view.metric, "test_over_val_median": med, "test_over_val_early": med_early,
            "test": shown(last_t), "val": shown(pairs[-1][1]), "train": shown(tr), "evaluations": len(pairs),
            "jitter_percent": noise, "runs_in_view": population}
    text = (f"{view.ratio(view.name('test'), last_t, view.name('val'), pairs[-1][1], med)}, the median of their "
            f"ratio over {len(pairs)} evaluations, and {med_early:.2g}x already in the first third, while "
            f"validation tracks training and the test split shows no overfitting U: the test data come from "
            f"another distribution (mismatch)")
    return make_finding("mismatch", "test_shift", [st.run], first, "warning", conf, evid, text,
                        seen_at_step=pairs[-1][0])


def _test_rises(st, view: Heldout, s: Settings, pairs, population: int) -> Optional[Finding]:
    """The test split rises from its first evaluations while validation
    (drawn like the training data) falls: what the model learns holds on
    the training distribution and fails on the test's."""
    val, test, b = view.val, view.test, view.bars
    first_best = max(1, int(s.test_first_share * len(test)))
    if test.best_smooth_index > first_best:
        return None  # the test loss improved for a while: an overfitting U, not this
    i = len(test) - 1
    gl = _gl(test.smooth[i], test.best_smooth)
    jit = 100.0 * test.jitter()
    if gl <= max(b.gl_alpha, required_sigmas(s, population) * jit) or test.smooth_ups() < 1 and gl <= b.gl_strong:
        return None
    v0, v_now = val.smooth[0], val.smooth[len(val) - 1]
    if not (v0 > 0 and v_now <= (1.0 - s.left_initial) * v0 and _gl(v_now, val.best_smooth) <= b.gl_alpha):
        return None
    t0 = test.steps[0]
    conf = rise_confidence(gl, jit, len(test), population, s)
    shown = view.shown
    evid = {"metric": view.metric, "test_first": shown(test.values[0]), "test_best_smoothed": shown(test.best_smooth),
            "test_now_smoothed": shown(test.smooth[i]), "test_GL": gl, "val_first": shown(val.values[0]),
            "val_now_smoothed": shown(v_now), "evaluations": len(pairs), "jitter_percent": jit,
            "runs_in_view": population}
    worse, better = ("fallen", "rose") if view.upward else ("risen", "fell")
    level = view.worse_by(gl, test.smooth[i], test.best_smooth, test.steps[test.best_smooth_index])
    text = (f"the {view.name('test')} has {worse} since its first evaluations: it {level} (running medians of 3 "
            f"evaluations), while the {view.name('val')} {better} from {shown(v0):.4g} to {shown(v_now):.4g}: what the model learns holds on data drawn like the training data and fails "
            f"on the test data, which come from another distribution (mismatch; overfitting would show on "
            f"validation too)")
    return make_finding("mismatch", "test_rises", [st.run], t0, "warning", conf, evid, text, seen_at_step=pairs[-1][0])


def _still_falling(ev, s: Settings) -> bool:
    """Whether a held-out signal is still improving steadily: over the last
    third of its evaluations (at least 3), its running median (badness) fell
    at ``falling_share`` of them and by more than ``falling_sigmas``
    evaluation-noise sigmas in all."""
    sm = ev.smooth
    k = max(3, len(sm) // 3)
    if len(sm) <= k:
        return False
    tail = np.asarray(sm[-k - 1:])
    d = np.diff(tail)
    fell = tail[0] - tail[-1]
    return bool((d < 0).mean() >= s.falling_share and fell > s.falling_sigmas * ev.jitter() * abs(tail[0]))


def _persistent_gap(st, view: Heldout, memo: HeldoutMemo, s: Settings, population: int) -> Optional[Finding]:
    """No test split: validation at least ``gap_ratio`` x training (in
    badness: for a score that improves upward, training at least that
    multiple of validation) from the first evaluations on and still now,
    their ratio not shrunk below ``gap_shrink`` x its early value (a gap
    that closes is not persistent), the gap (in the units logged) not grown
    beyond ``gap_growth`` x (overfitting's grows), the held-out signal no
    longer improving steadily (:func:`_still_falling`: the gap may yet
    close), no U, and a ratio clear of the evaluation noise of both sides
    (more with many runs in view). Needs the training counterpart of the
    signal."""
    val, b = view.val, view.bars
    if val is None or len(val) < s.gap_min_evals or view.train is None:
        return None
    span = max(1, val.steps[1] - val.steps[0]) if len(val) > 1 else 1
    cache = memo.train_at_val  # training level near each evaluation, computed once
    while len(cache) < len(val):
        cache.append(view.train_near(val.steps[len(cache)], span, s))
    gaps = memo.gaps
    done = memo.gaps_done
    sign = -1.0 if view.upward else 1.0
    shown = view.shown
    for step, v, tr in zip(val.steps[done:], val.values[done:], cache[done:]):
        if tr is not None and tr > 0:
            gaps.append((step, v / tr, sign * (shown(v) - shown(tr))))
    memo.gaps_done = len(val)
    if len(gaps) < s.gap_min_evals - 1:
        return None
    third = max(2, len(gaps) // 3)
    early = [g for _, g, _ in _sample(gaps[:third])]
    late = [g for _, g, _ in _sample(gaps[-third:])]
    ratios = np.array([g for _, g, _ in _sample(gaps)])
    d_early = float(np.median([d for _, _, d in _sample(gaps[:third])]))
    d_late = float(np.median([d for _, _, d in _sample(gaps[-third:])]))
    if _gl(val.values[-1], val.best) > b.gl_alpha:  # U-shaped: overfitting's business, not mismatch
        return None
    med = float(np.median(ratios))
    if _still_falling(val, s):
        return None  # the held-out signal is still improving: the gap may yet close
    r_early, r_late = float(np.median(early)), float(np.median(late))
    # the noise of a ratio of the two: the held-out evaluations' jitter and the training level's near them
    noise = 100.0 * math.hypot(val.jitter(), jitter_of([c for c in cache[-52:] if c is not None]))
    if not (min(early) >= b.gap_ratio and med >= b.gap_ratio and r_late >= b.gap_ratio
            and r_late >= s.gap_shrink * r_early and 0 < d_early and d_late <= s.gap_growth * d_early
            and clear_of_noise(100.0 * (med - 1.0), noise, s, population)):
        return None
    conf = ratio_confidence(0.5, med, noise, len(gaps), population, s)
    evid = {"metric": view.metric, "val_over_train_median": med, "ratio_early": r_early, "ratio_late": r_late,
            "gap_early": d_early, "gap_late": d_late, "evaluations": len(gaps), "jitter_percent": noise,
            "runs_in_view": population}
    held, train = view.name("val"), view.name("train")
    pair = f"the {train} is {med:.2g}x the {held}" if view.upward else f"the {held} is {med:.2g}x the {train}"
    minus = f"{train} minus {held}" if view.upward else f"{held} minus {train}"
    text = (f"{pair} near each evaluation (the median of their ratio over {len(gaps)} evaluations: {r_early:.2g}x "
            f"in the first third, {r_late:.2g}x in the last), and the gap ({minus}) does not grow ({d_early:.4g} "
            f"in the first third, {d_late:.4g} in the last, medians): not the overfitting pattern; the held-out "
            f"data may come from another distribution (mismatch)")
    return make_finding("mismatch", "persistent_gap", [st.run], gaps[0][0], "warning", conf, evid, text,
                        also_possible=["overfitting"], seen_at_step=val.steps[-1])
