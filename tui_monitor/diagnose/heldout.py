"""Step 2 of the method: the held-out loss. Overfitting (Prechelt's early
stopping criteria over strips of evaluations) and mismatch (a test split
that is high from early on while validation tracks training; or a gap that is
large from the start and does not grow).
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Tuple

import numpy as np

from .findings import Finding, make_finding
from .settings import Settings

__all__ = ["overfitting_finding", "mismatch_finding", "train_at", "HeldoutMemo"]


class HeldoutMemo:
    """What the held-out rules computed once per evaluation and keep on the
    run's state, so an update only handles the evaluations that are new.
    Slotted: a mistyped attribute raises."""

    __slots__ = ("pairs", "next_val", "test_index", "train_at_val", "gaps", "gaps_done")

    def __init__(self) -> None:
        #: (step, val, test) at the steps both splits evaluated, in order
        self.pairs: List[Tuple[int, float, float]] = []
        #: the next val evaluation to match, and test's step -> index
        self.next_val = 0
        self.test_index: Dict[int, int] = {}
        #: the training level at each val evaluation
        self.train_at_val: List[Optional[float]] = []
        #: (step, val / train, val - train) per val evaluation after the first
        self.gaps: List[Tuple[int, float, float]] = []
        #: val evaluations the gaps cover (step 0's evaluation precedes any training)
        self.gaps_done = 1


def train_strip(st, step: int, span: int) -> np.ndarray:
    """The finite training losses of the steps (step - span, step]: what
    training looked like when an evaluation at ``step`` ran."""
    series = st.train_series()
    if series is None:
        return np.empty(0)
    v = series.range(step - max(1, span) + 1, step)
    return v[np.isfinite(v)] if len(v) else v


def train_at(st, step: int, span: int) -> Optional[float]:
    """Mean training loss over the steps (step - span, step]."""
    v = train_strip(st, step, span)
    return float(v.mean()) if len(v) else None


def near_span(span: int, s: Settings) -> int:
    """How many steps before an evaluation count as "near" it: the last
    quarter of the interval since the one before, at least ``near_points``
    steps (all of a shorter interval). An interval that began with the
    initial descent does not lift the training loss "at" the evaluation."""
    span = max(1, int(span))
    return min(span, max(s.near_points, span // 4))


def train_near(st, step: int, span: int, s: Settings) -> Optional[float]:
    """Mean training loss over the steps :func:`near_span` before ``step``."""
    return train_at(st, step, near_span(span, s))


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
    """How many evaluation-noise sigmas a rise must reach: ``gl_jitter`` for
    one run, more with many runs in view (among N runs of pure noise, the
    largest rise grows like sqrt(2 ln N) sigmas)."""
    return math.sqrt(s.gl_jitter ** 2 + 2.0 * math.log(max(1, population)))


def rise_confidence(gl: float, sigma_pct: float, evaluations: int, population: int) -> float:
    """How sure a rise of ``gl`` percent over the best evaluation is not
    noise of ``sigma_pct`` percent an evaluation: one minus the chance that
    noise alone makes a rise this large between any two of the
    ``evaluations`` (the best is itself the lowest of them: a pair, not one
    value, is tested) in any of the ``population`` runs in view, with the
    noise estimated from the evaluations themselves (a Student-t tail: few
    evaluations, heavy tails). Between 0.5 and 0.95."""
    sigma = max(sigma_pct, 0.25)  # a perfectly smooth curve still has rounding-level noise
    z = gl / (sigma * math.sqrt(2.0))  # the difference of two noisy evaluations
    nu = max(1.0, evaluations - 3.0)
    zg = z * (1.0 - 1.0 / (4.0 * nu)) / math.sqrt(1.0 + z * z / (2.0 * nu))  # t tail as a normal one
    p = 0.5 * math.erfc(zg / math.sqrt(2.0))
    pairs = max(1, evaluations * (evaluations - 1) // 2)
    return max(0.5, min(0.95, 1.0 - min(1.0, max(1, population) * pairs * p)))


def overfitting_finding(st, s: Settings, prior: Optional[Finding], population: int = 1) -> Optional[Finding]:
    """Training loss still falling while the validation loss (the test
    split's only when there is no validation split: with both, a rising
    test split is mismatch's business) has risen above its best by GL >
    ``gl_alpha`` percent and above the evaluation noise (more with many runs
    in view: ``population``) over ``up_strips`` successive evaluations
    (UP_s), or by ``gl_strong`` at once. Not while the learning rate is
    warming up (training and held-out losses rise together then). A
    finding already raised stays until GL falls below ``gl_keep``."""
    ev = st.val if st.val is not None and len(st.val) else st.test
    if ev is None or len(ev) < s.min_evals or ev.best_index < 0:
        return None
    split = "val" if ev is st.val else "test"
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
    strip = train_strip(st, step, span)
    near = near_span(span, s)
    tr_now = train_near(st, step, span, s)
    tr_best = train_near(st, best_step, span, s)
    train_ok = tr_now is not None and tr_best is not None and tr_now <= tr_best * 1.05
    pk = None
    if i and len(strip) and strip.min() > 0:
        pk = 1000.0 * (float(strip.mean()) / float(strip.min()) - 1.0)
    pq = gl / pk if pk else None
    threshold = max(s.gl_alpha, required_sigmas(s, population) * jit)
    holding = prior is not None and gl > max(s.gl_keep, 0.5 * threshold) and since >= 1
    ups = ev.smooth_ups()
    firing = since >= 2 and gl > threshold and (ups >= s.up_strips or gl > s.gl_strong)
    if not (train_ok and (firing or holding)):
        return None
    lr_best, lr_now = lr_at(st, best_step), lr_at(st, step)
    if lr_best and lr_now and lr_now >= s.lr_rising * lr_best:
        return None  # a warm-up: the rate grew since the best evaluation, and the losses rise with it
    # where it began: the first evaluation after the best that rose above GL_alpha
    onset = next((ev.steps[j] for j in range(ev.best_smooth_index + 1, i + 1)
                  if _gl(ev.smooth[j], ev.best_smooth) > s.gl_alpha), step)
    conf = rise_confidence(gl, jit, len(ev), population)
    evid = {"split": split, "best": ev.best, "best_step": ev.best_step, "best_smoothed": ev.best_smooth,
            "best_smoothed_step": best_step, "value": v, "value_smoothed": ev.smooth[i], "step": step, "GL": gl,
            "UP": ups, "PQ": pq, "P_k": pk, "evaluations_since_best": since, "jitter_percent": jit,
            "runs_in_view": population, "train_at_best": tr_best, "train_now": tr_now, "near_steps": near}
    rising = f", rising over the last {ups}" if ups else ""
    text = (f"the {split} loss (running median of 3 evaluations) is {gl:.1f}% above its best ({ev.best_smooth:.4g} "
            f"at step {best_step}) after {since} evaluations{rising}, while the training loss near those steps "
            f"(mean of the {near} steps before each) went from {tr_best:.4g} to {tr_now:.4g}: overfitting. ")
    if ev.best_index == 0:
        text += (f"The {split} loss never improved on its first evaluation ({ev.best:.4g} at step {ev.best_step}): "
                 f"no checkpoint of this run beats the model it started from")
    else:
        text += (f"Keep the checkpoint of step {ev.best_step} (its lowest evaluation, {ev.best:.4g}); the latest "
                 f"is {v:.4g}, {v - ev.best:.4g} higher")
    return make_finding("overfitting", "validation_turned", [st.run], onset, "warning", conf, evid, text,
                        seen_at_step=step, onset_moves=True)


def _matched(st, a, b):
    """(step, a value, b value) at the steps both tracks evaluated, in
    order; memoised on the run state, so each evaluation is matched once."""
    memo = st.memo
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


def mismatch_finding(st, s: Settings, overfitting: Optional[Finding], population: int = 1) -> Optional[Finding]:
    """Mismatch, from the strongest evidence available: a test split high
    from early on while validation tracks training (``test_shift``); a test
    split that rises from its first evaluation while validation falls
    (``test_rises``); without a test split, a validation/training gap large
    from the start that neither grows nor shrinks (``persistent_gap``)."""
    if overfitting is not None:
        return None
    val, test = st.val, st.test
    if val is not None and test is not None and len(val) >= s.min_evals and len(test) >= s.min_evals:
        pairs = _matched(st, val, test)
        if len(pairs) >= s.min_evals:
            f = _test_shift(st, s, pairs) or _test_rises(st, s, pairs, population)
            if f is not None:
                return f
    return _persistent_gap(st, s)


def _test_shift(st, s: Settings, pairs) -> Optional[Finding]:
    test = st.test
    third = max(2, len(pairs) // 3)
    r = np.array([t / v if v > 0 else math.inf for _, v, t in _sample(pairs)])
    early = np.array([t / v if v > 0 else math.inf for _, v, t in _sample(pairs[:third])])
    med, med_early = float(np.median(r)), float(np.median(early))
    last_t = pairs[-1][2]
    test_gl = _gl(last_t, test.best)
    val_tracks = True
    tr = train_near(st, pairs[-1][0], pairs[-1][0] - pairs[-2][0], s)
    if tr is not None and tr > 0:  # the test split's excess over validation dominates validation's over training
        val_tracks = pairs[-1][1] / tr < max(s.mismatch_ratio, med)
    if not (med >= s.mismatch_ratio and med_early >= s.mismatch_early and test_gl < 10 * s.gl_alpha
            and val_tracks):
        return None
    first = pairs[0][0]
    conf = min(0.9, 0.5 + 0.15 * math.log2(med))
    evid = {"test_over_val_median": med, "test_over_val_early": med_early, "test": last_t, "val": pairs[-1][1],
            "train": tr, "evaluations": len(pairs)}
    text = (f"the test loss (latest {last_t:.4g}) is {med:.2g}x the validation loss (latest {pairs[-1][1]:.4g}), "
            f"the median of their ratio over {len(pairs)} evaluations, and {med_early:.2g}x already in the first "
            f"third, while validation tracks training and the test loss shows no overfitting U: the test data come "
            f"from another distribution (mismatch)")
    return make_finding("mismatch", "test_shift", [st.run], first, "warning", conf, evid, text,
                        seen_at_step=pairs[-1][0])


def _test_rises(st, s: Settings, pairs, population: int) -> Optional[Finding]:
    """The test split rises from its first evaluations while validation
    (drawn like the training data) falls: what the model learns holds on
    the training distribution and fails on the test's."""
    val, test = st.val, st.test
    first_best = max(1, int(s.test_first_share * len(test)))
    if test.best_smooth_index > first_best:
        return None  # the test loss improved for a while: an overfitting U, not this
    i = len(test) - 1
    gl = _gl(test.smooth[i], test.best_smooth)
    jit = 100.0 * test.jitter()
    if gl <= max(s.gl_alpha, required_sigmas(s, population) * jit) or test.smooth_ups() < 1 and gl <= s.gl_strong:
        return None
    v0, v_now = val.smooth[0], val.smooth[len(val) - 1]
    if not (v0 > 0 and v_now <= (1.0 - s.left_initial) * v0 and _gl(v_now, val.best_smooth) <= s.gl_alpha):
        return None
    t0 = test.steps[0]
    conf = rise_confidence(gl, jit, len(test), population)
    evid = {"test_first": test.values[0], "test_best_smoothed": test.best_smooth, "test_now_smoothed": test.smooth[i],
            "test_GL": gl, "val_first": val.values[0], "val_now_smoothed": v_now, "evaluations": len(pairs),
            "jitter_percent": jit, "runs_in_view": population}
    text = (f"the test loss has risen since its first evaluations: {test.smooth[i]:.4g} now against {test.best_smooth:.4g} "
            f"at step {test.steps[test.best_smooth_index]} (running medians of 3 evaluations, +{gl:.0f}%), while the "
            f"validation loss fell from {v0:.4g} to {v_now:.4g}: what the model learns holds on data drawn like the "
            f"training data and fails on the test data, which come from another distribution (mismatch; overfitting "
            f"would show on validation too)")
    return make_finding("mismatch", "test_rises", [st.run], t0, "warning", conf, evid, text, seen_at_step=pairs[-1][0])


def _still_falling(ev, s: Settings) -> bool:
    """Whether a held-out loss is still coming down steadily: over the last
    third of its evaluations (at least 3), its running median fell at
    ``falling_share`` of them and by more than ``falling_sigmas``
    evaluation-noise sigmas in all."""
    sm = ev.smooth
    k = max(3, len(sm) // 3)
    if len(sm) <= k:
        return False
    tail = np.asarray(sm[-k - 1:])
    d = np.diff(tail)
    fell = tail[0] - tail[-1]
    return bool((d < 0).mean() >= s.falling_share and fell > s.falling_sigmas * ev.jitter() * abs(tail[0]))


def _persistent_gap(st, s: Settings) -> Optional[Finding]:
    """No test split: validation at least ``gap_ratio`` x training from the
    first evaluations on and still now, their ratio not shrunk below
    ``gap_shrink`` x its early value (a gap that closes is not persistent),
    the gap (val - train) not grown beyond ``gap_growth`` x (overfitting's
    grows), the validation loss no longer coming down steadily
    (:func:`_still_falling`: the gap may yet close), and no U."""
    val = st.val
    if val is None or len(val) < s.gap_min_evals:
        return None
    span = max(1, val.steps[1] - val.steps[0]) if len(val) > 1 else 1
    memo = st.memo
    cache = memo.train_at_val  # training level near each evaluation, computed once
    while len(cache) < len(val):
        cache.append(train_near(st, val.steps[len(cache)], span, s))
    gaps = memo.gaps
    done = memo.gaps_done
    for step, v, tr in zip(val.steps[done:], val.values[done:], cache[done:]):
        if tr is not None and tr > 0:
            gaps.append((step, v / tr, v - tr))
    memo.gaps_done = len(val)
    if len(gaps) < s.gap_min_evals - 1:
        return None
    third = max(2, len(gaps) // 3)
    early = [g for _, g, _ in _sample(gaps[:third])]
    late = [g for _, g, _ in _sample(gaps[-third:])]
    ratios = np.array([g for _, g, _ in _sample(gaps)])
    d_early = float(np.median([d for _, _, d in _sample(gaps[:third])]))
    d_late = float(np.median([d for _, _, d in _sample(gaps[-third:])]))
    if _gl(val.values[-1], val.best) > s.gl_alpha:  # U-shaped: overfitting's business, not mismatch
        return None
    med = float(np.median(ratios))
    if _still_falling(val, s):
        return None  # the validation loss is still coming down: the gap may yet close
    r_early, r_late = float(np.median(early)), float(np.median(late))
    if not (min(early) >= s.gap_ratio and med >= s.gap_ratio and r_late >= s.gap_ratio
            and r_late >= s.gap_shrink * r_early and 0 < d_early and d_late <= s.gap_growth * d_early):
        return None
    evid = {"val_over_train_median": med, "ratio_early": r_early, "ratio_late": r_late, "gap_early": d_early,
            "gap_late": d_late, "evaluations": len(gaps)}
    text = (f"the validation loss is {med:.2g}x the training loss near each evaluation (the median of their ratio "
            f"over {len(gaps)} evaluations: {r_early:.2g}x in the first third, {r_late:.2g}x in the last), and the "
            f"gap (validation minus training) does not grow ({d_early:.4g} in the first third, {d_late:.4g} in the "
            f"last, medians): not the overfitting pattern; the held-out data may come from another distribution "
            f"(mismatch)")
    return make_finding("mismatch", "persistent_gap", [st.run], gaps[0][0], "warning", 0.5, evid, text,
                        also_possible=["overfitting"], seen_at_step=val.steps[-1])
