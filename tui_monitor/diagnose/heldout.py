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


def _gl(v: float, best: float) -> float:
    """Prechelt's generalisation loss in percent: 100 (E_va / E_opt - 1)."""
    if best > 0:
        return 100.0 * (v / best - 1.0)
    return 100.0 * (v - best) / max(abs(best), 1e-12)


def overfitting_finding(st, s: Settings, prior: Optional[Finding]) -> Optional[Finding]:
    """Training loss still falling while the held-out loss has risen above its
    best by GL > ``gl_alpha`` percent (and above the evaluation jitter) over
    ``up_strips`` successive evaluations (UP_s), or by ``gl_strong`` at once.
    A finding already raised stays until GL falls below ``gl_keep``."""
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
    # the training losses of the last strip, read once: their mean is training
    # now, and their spread Prechelt's progress P_k = 1000 (mean/min - 1)
    strip = train_strip(st, step, span)
    tr_now = float(strip.mean()) if len(strip) else None
    tr_best = train_at(st, ev.best_step, span)
    train_ok = tr_now is not None and tr_best is not None and tr_now <= tr_best * 1.05
    pk = None
    if i and len(strip) and strip.min() > 0:
        pk = 1000.0 * (float(strip.mean()) / float(strip.min()) - 1.0)
    pq = gl / pk if pk else None
    threshold = max(s.gl_alpha, s.gl_jitter * jit)
    holding = prior is not None and gl > max(s.gl_keep, 0.5 * threshold) and since >= 1
    ups = ev.smooth_ups()
    firing = since >= 2 and gl > threshold and (ups >= s.up_strips or gl > s.gl_strong)
    if not (train_ok and (firing or holding)):
        return None
    # where it began: the first evaluation after the best that rose above GL_alpha
    onset = next((ev.steps[j] for j in range(ev.best_smooth_index + 1, i + 1)
                  if _gl(ev.smooth[j], ev.best_smooth) > s.gl_alpha), step)
    conf = min(0.95, 0.5 + gl / 100.0 + 0.05 * min(since, 6))
    evid = {"split": split, "best": ev.best, "best_step": ev.best_step, "value": v, "step": step, "GL": gl,
            "UP": ups, "PQ": pq, "P_k": pk, "evaluations_since_best": since, "jitter_percent": jit,
            "train_at_best": tr_best, "train_now": tr_now}
    text = (f"the {split} loss is {gl:.1f}% above its best ({ev.best:.4g} at step {ev.best_step}) after {since} "
            f"evaluations, rising over the last {ups}, while the training loss went from {tr_best:.4g} to "
            f"{tr_now:.4g}: overfitting. Keep the checkpoint of step {ev.best_step}; {v - ev.best:.4g} of "
            f"{split} loss has been lost since")
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


def mismatch_finding(st, s: Settings, overfitting: Optional[Finding]) -> Optional[Finding]:
    if overfitting is not None:
        return None
    val, test = st.val, st.test
    if val is not None and test is not None and len(val) >= s.min_evals and len(test) >= s.min_evals:
        pairs = _matched(st, val, test)
        if len(pairs) >= s.min_evals:
            third = max(2, len(pairs) // 3)
            r = np.array([t / v if v > 0 else math.inf for _, v, t in _sample(pairs)])
            early = np.array([t / v if v > 0 else math.inf for _, v, t in _sample(pairs[:third])])
            med, med_early = float(np.median(r)), float(np.median(early))
            last_t = pairs[-1][2]
            test_gl = _gl(last_t, test.best)
            val_tracks = True
            tr = train_at(st, pairs[-1][0], 1 + (pairs[-1][0] - pairs[-2][0]))
            if tr is not None and tr > 0:
                val_tracks = pairs[-1][1] / tr < s.mismatch_ratio
            if med >= s.mismatch_ratio and med_early >= s.mismatch_early and test_gl < 10 * s.gl_alpha and val_tracks:
                first = pairs[0][0]
                conf = min(0.9, 0.5 + 0.15 * math.log2(med))
                evid = {"test_over_val_median": med, "test_over_val_early": med_early, "test": last_t,
                        "val": pairs[-1][1], "train": tr, "evaluations": len(pairs)}
                text = (f"the test loss ({last_t:.4g}) is {med:.2g}x the validation loss ({pairs[-1][1]:.4g}) over "
                        f"{len(pairs)} evaluations, and {med_early:.2g}x already in the first third, while "
                        f"validation tracks training and the test loss shows no overfitting U: the test data come "
                        f"from another distribution (mismatch)")
                return make_finding("mismatch", "test_shift", [st.run], first, "warning", conf, evid, text,
                                    seen_at_step=pairs[-1][0])
    # no test split: a gap that is large from the start and does not grow
    if val is None or len(val) < s.gap_min_evals:
        return None
    span = max(1, val.steps[1] - val.steps[0]) if len(val) > 1 else 1
    memo = st.memo
    cache = memo.train_at_val  # training level at each evaluation, computed once
    while len(cache) < len(val):
        cache.append(train_at(st, val.steps[len(cache)], span))
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
    ratios = np.array([g for _, g, _ in _sample(gaps)])
    d_early = float(np.median([d for _, _, d in _sample(gaps[:third])]))
    d_late = float(np.median([d for _, _, d in _sample(gaps[-third:])]))
    if _gl(val.values[-1], val.best) > s.gl_alpha:  # U-shaped: overfitting's business, not mismatch
        return None
    if min(early) >= s.gap_ratio and float(np.median(ratios)) >= s.gap_ratio and d_early > 0 and \
            d_late <= s.gap_growth * d_early:
        evid = {"val_over_train_median": float(np.median(ratios)), "gap_early": d_early, "gap_late": d_late,
                "evaluations": len(gaps)}
        text = (f"the validation loss is {float(np.median(ratios)):.2g}x the training loss from the first "
                f"evaluations on, and the gap does not grow ({d_early:.4g} early, {d_late:.4g} now): not the "
                f"overfitting pattern; the held-out data may come from another distribution (mismatch)")
        return make_finding("mismatch", "persistent_gap", [st.run], gaps[0][0], "warning", 0.5, evid, text,
                            also_possible=["overfitting"], seen_at_step=val.steps[-1])
    return None
