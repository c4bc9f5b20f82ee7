"""Step 1 of the method on one run: is the training loss large, and if so,
model bias or optimization? Plus the live symptoms that cannot wait:
non-finite loss and divergence.

:func:`~.assess.assess` summarises the training loss (level, start, best,
progress over two windows, against the trivial loss); :func:`gradient_evidence`
reads the gradient signals; :func:`train_findings` turns both, with the
cross-run evidence from :mod:`.compare`, into findings.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

from .assess import Assessment, fmt
from .compare import CrossEvidence
from .findings import Finding, make_finding
from .settings import Settings
from .signals import direction, is_accuracy

__all__ = ["Symptom", "gradient_evidence", "nonfinite_findings",
           "divergence_finding", "train_findings"]


@dataclass(frozen=True)
class Symptom:
    """A symptom of optimization trouble read from the gradient signals (or
    the loss's own shape): its name, the sentence that says it, and the
    numbers behind it (they go into the finding's evidence)."""

    symptom: str
    text: str
    numbers: Dict[str, Any] = field(default_factory=dict)




def gradient_evidence(st, a: Assessment, s: Settings) -> List[Symptom]:
    """Symptoms in the gradient signals (and the loss's swings), strongest
    first."""
    g = st.grads
    out: List[Symptom] = []
    layers = g.weight_layers()
    if not layers:
        return out
    hidden = layers[:-1] or layers
    dead = [(l, g.mean(l, "zero_rows")) for l in hidden]
    dead = [(l, v) for l, v in dead if v is not None and g.count(l, "zero_rows") >= 2]
    if dead:
        l, v = max(dead, key=lambda x: x[1])
        if v >= s.dead_fraction:
            out.append(Symptom("dead_units", f"{v:.0%} of the units of {l} have an exactly zero gradient (dead units)",
                               {"layer": l, "dead_fraction": v}))
    if len(layers) >= 2:
        first, last = g.mean(layers[0], "grad"), g.mean(layers[-1], "grad")
        if first is not None and last is not None and last > 0 and g.count(layers[0], "grad") >= 2:
            ratio = first / last
            if ratio < s.vanishing_ratio:
                out.append(Symptom("vanishing_gradients",
                                   f"the first layer's gradient norm ({layers[0]}: {first:.3g}) is {ratio:.2g} of "
                                   f"the last layer's ({layers[-1]}: {last:.3g}): vanishing gradients",
                                   {"first_layer": layers[0], "last_layer": layers[-1], "first_grad": first,
                                    "last_grad": last, "ratio": ratio}))
    if g.norm_head and g.norm_recent:
        head = float(np.median(g.norm_head))
        rec = [v for _, v in g.norm_recent[-3:]]
        if head > 0 and len(rec) >= 3 and all((not math.isfinite(v)) or v > s.exploding_ratio * head for v in rec):
            out.append(Symptom("exploding_gradients",
                               f"the gradient norm grew from {head:.3g} to {rec[-1]:.3g}: exploding gradients",
                               {"start_norm": head, "recent_norm": rec[-1]}))
    rates = []
    for l in layers:
        pts = [(st_, v) for st_, v in g.recent.get((l, "weight"), []) if math.isfinite(v)]
        if len(pts) >= 3 and pts[-1][0] > pts[0][0] and pts[0][1] > 0:
            rates.append(abs(pts[-1][1] - pts[0][1]) / pts[0][1] / (pts[-1][0] - pts[0][0]))
    lr = st.lr_value()
    upd = None
    if lr is not None:
        ups = []
        for l in layers:
            gr, w = g.mean(l, "grad"), g.mean(l, "weight")
            if gr is not None and w:
                ups.append(lr * gr / w)
        upd = float(np.median(ups)) if ups else None
    if rates:
        rate = float(np.median(rates))
        if rate < s.tiny_update and (upd is None or upd < s.tiny_update * 10):
            extra = f"; learning rate {lr:.3g}, lr x grad / weight = {upd:.2g}" if upd is not None else ""
            out.append(Symptom("lr_too_small", f"the weights change by {rate:.2g} of their norm per step{extra}: "
                                               f"updates far too small for the loss",
                               {"weight_change_per_step": rate, "lr": lr, "update_ratio": upd}))
    tw = a.window
    was = any(g.symptom == "oscillation" for g in (st.gradient or []))
    swing = s.swing_ratio if not was else s.swing_ratio * s.swing_keep
    if tw is not None and tw.now_p10 > 0 and tw.now_p90 / tw.now_p10 >= swing and a.no_progress:
        out.append(Symptom("oscillation", f"over steps {tw.now_step}-{st.train.last_step} the loss swings between "
                                          f"{tw.now_p10:.3g} and {tw.now_p90:.3g} (10th and 90th percentiles of its "
                                          f"block means) without getting lower than at the start",
                           {"low": tw.now_p10, "high": tw.now_p90}))
    return out


def nonfinite_findings(st) -> List[Finding]:
    out = []
    for split, track in (("train", st.train), ("val", st.val), ("test", st.test)):
        if track is None or track.first_nonfinite is None:
            continue
        step, v = track.first_nonfinite
        what = "NaN" if v != v else ("+inf" if v > 0 else "-inf")
        out.append(make_finding(
            "divergence", "non_finite", [st.run], step, "critical", 1.0,
            {"split": split, "metric": st.loss_name(split), "first_step": step, "value": v, "count": track.nonfinite},
            f"the {split} loss became {what} at step {step} ({track.nonfinite} non-finite value"
            f"{'s' if track.nonfinite != 1 else ''} so far): training has diverged",
            seen_at_step=st.train.last_step))
        break  # one non-finite finding per run: the first split that had one
    return out


def _absolute_reference(st, a: Assessment):
    """(value, words) of what a training loss can never be orders of
    magnitude above without having diverged: the smallest of the trivial
    loss, the first points (the lowest of the first three, before anything
    could explode) and an evaluation at or before the first training step;
    and the run's own start, to tell a loss that went up from one that
    started high."""
    t = st.train
    cands = []
    if a.trivial and a.trivial > 0:
        cands.append((a.trivial, f"the trivial loss {fmt(a.trivial)}"))
    start = []
    if t.first is not None and t.first > 0:
        start.append((t.first, f"its first points ({fmt(t.first)})"))
    for split, held in (("val", st.val), ("test", st.test)):
        if held is not None and len(held) and t.first_step is not None and held.steps[0] <= t.first_step \
                and held.values[0] > 0:
            start.append((held.values[0], f"the {split} loss before training (step {held.steps[0]}: "
                                          f"{fmt(held.values[0])})"))
    cands.extend(start)
    if not cands:  # no positive reference: a loss that can be negative (RL, GAN) is not judged so
        return (None, None), None
    return min(cands), (min(start)[0] if start else None)


def divergence_finding(st, a: Assessment, s: Settings) -> Optional[Finding]:
    """The training loss exploded and stays finite: the last three block
    means rising and above ``diverge_rising`` x max(initial, best), or one
    above ``diverge_jump`` x; or, rising or not (a loss that exploded in the
    first steps and then creeps down), all three above ``diverge_level`` x
    the absolute reference (:func:`_absolute_reference`) after having gone
    up tenfold from its start."""
    t = st.train
    if len(t.bmean) < 3 or a.initial is None:
        return None
    last3 = t.bmean[-3:]
    rel = max(abs(a.initial), abs(a.best) if a.best is not None else 0.0)
    rising = rel > 0 and last3[0] < last3[1] < last3[2] and last3[0] > s.diverge_rising * rel
    jump = rel > 0 and last3[-1] > s.diverge_jump * rel
    (ref, ref_words), start = _absolute_reference(st, a)
    sustained = bool(ref and start and min(last3) > s.diverge_level * ref and t.peak() >= s.diverge_rise * start)
    drifted = _drifted(t, a, ref, s)
    if not (rising or jump or sustained or drifted):
        return None
    if not (rising or jump):
        base, base_words = ref, ref_words
    else:
        base, base_words = rel, f"{fmt(rel)} (its start or best, whichever is higher)"
    # where it began: the first block of the final stretch above 10x the reference (a loss that
    # left its level and swings there: the window that shows it, whichever is earlier)
    i = len(t.bmean) - 1
    while i > 0 and t.bmean[i - 1] > 10 * base:
        i -= 1
    onset = t.bfirst[i] if not drifted else min(t.bfirst[i], a.window.now_step)
    level = last3[-1]
    ratio = level / base
    ev = {"start_step": onset, "level": level, "initial": a.initial, "best": a.best, "reference": base,
          "ratio": ratio, "first_points": t.first}
    if rising or jump:
        text = (f"the training loss exploded from {base_words} to {fmt(level)} ({ratio:.3g}x; its latest block "
                f"mean) since step {onset}")
    elif drifted and not sustained:
        tw = a.window
        level, ratio = tw.now, tw.now / base
        ev.update({"level": level, "ratio": ratio, "window_steps": [tw.now_step, t.last_step]})
        text = (f"the loss (one that need not fall: no task, held-out loss or score says this is supervised "
                f"training) has left its level: over steps {tw.now_step}-{t.last_step} it sits at {fmt(level)} "
                f"(median of its block means), {ratio:.3g}x {base_words}, and swings between {fmt(tw.now_p10)} "
                f"and {fmt(tw.now_p90)} (10th and 90th percentiles): diverged, even though it is finite")
    else:
        lo, hi = min(last3), max(last3)
        text = (f"the training loss has stayed {fmt(lo)}-{fmt(hi)} (its last three block means, steps "
                f"{t.bfirst[-3]}-{t.last_step}), {min(last3) / base:.3g}x or more {base_words}, since it exploded "
                f"at step {onset}: diverged, even though it is finite"
                + (" and creeping down" if last3[-1] < last3[0] else ""))
    return make_finding("divergence", "exploding_loss", [st.run], onset, "critical", 0.9 if rising else 0.85,
                        ev, text, seen_at_step=t.last_step)


def _drifted(t, a: Assessment, ref: Optional[float], s: Settings) -> bool:
    """A loss that need not fall (a GAN's discriminator, no task, held-out
    loss or score: not supervised) and cannot be negative, whose recent
    window sits at ``diverge_rise`` x its absolute reference or more: a healthy
    one swings around its level (within 1.5x of it in the corpus), one whose
    rate is far too large has left it by an order of magnitude. A supervised
    loss that bounces above its start is the no-progress rule's
    (optimization); a loss that goes negative (a policy-gradient surrogate)
    has no scale to be a multiple of."""
    tw = a.window
    return bool(not a.supervised and tw is not None and ref and ref > 0 and min(t.bmin) >= 0
                and tw.now >= s.diverge_rise * ref)


def _evidence(st, a: Assessment) -> Dict[str, Any]:
    tw = a.window
    return {"level": a.level, "initial": a.initial, "best": a.best, "best_step": a.best_step,
            "trivial": a.trivial, "ratio_to_trivial": a.ratio,
            "window_steps": [tw.now_step, st.train.last_step] if tw else None,
            "window_points": tw.n_points if tw else None,
            "progress": a.progress, "progress_needed": a.progress_needed, "noise": st.train.noise}


def _lr_words(a: Assessment) -> str:
    if a.lr is None:
        return ""
    return f" (learning rate {a.lr.now:.3g}, peak {a.lr.peak:.3g})"


def signal_findings(st, a: Assessment, s: Settings) -> Optional[Finding]:
    """What a loss or score that no longer moves says, whatever its level
    against a reference: a collapsed model (the loss identical for a long
    stretch), a score that never moves (any score: accuracy, F1, mAP, WER...),
    a training score that fell far from its best in its own direction (an
    accuracy down, a WER up; also when only the run's own start called the
    loss small: a start that exploded misleads), or an accuracy at chance."""
    run, t = st.run, st.train
    small = a.large == "no"  # a small loss is not a failed optimizer, whatever else moves
    if small and a.trivial is not None:
        return None
    last = t.last_step
    k = a.collapsed
    if k is not None and not small:
        ev = {**_evidence(st, a), "value": k.value, "since_step": k.first_step, "points": k.points}
        text = (f"the training loss has been {k.value:.7g} (identical to {abs(int(math.log10(s.collapse_rtol)))} "
                f"digits) for {k.points} points since step {k.first_step}: the model's output no longer depends "
                f"on its input or its weights no longer move (a collapsed model: dead units, a saturated "
                f"output, a learning rate of zero), not a converged one, whose loss still varies from batch "
                f"to batch")
        return make_finding("optimization", "collapsed", [run], k.first_step, "warning", 0.8, ev, text,
                            seen_at_step=last)
    if st.score_name is None or not st.score.n_finite:
        return None
    name, split = st.score_name
    sc = st.score
    floor = a.window_points
    accuracy = is_accuracy(name)
    higher = direction(name) != -1
    scale = 100.0 if accuracy and (sc.peak() or 0.0) > 1.0 else 1.0  # an accuracy logged in percent
    streak = sc.streak
    if streak is not None and streak.points >= max(6, 2 * floor) and sc.n_finite >= 2 * floor and not small:
        v = streak.value / scale
        ev = {**_evidence(st, a), "score": f"{split}/{name}", "score_value": v, "since_step": streak.first_step,
              "points": streak.points}
        text = (f"the {split} {name} has been exactly {streak.value:.6g} for {streak.points} points since step "
                f"{streak.first_step}: a score that never moves is a model that predicts the same thing whatever "
                f"its input, a failed optimizer")
        return make_finding("optimization", "score_flat", [run], streak.first_step, "warning", 0.75, ev, text,
                            seen_at_step=last)
    c = st.task.classes
    w = max(floor, int(s.window_frac * sc.n_finite))
    tw = sc.two_windows(w)
    if tw is None:
        return None
    best = sc.best_window(tw.n_points, higher)
    warming = a.lr is not None and a.lr.rising
    # fell far from its best in its own direction: an accuracy to score_fell of its best window, a WER to
    # 1/score_fell of it
    fell = best is not None and best[0] > 0 and tw.now > 0 and (
        tw.now <= s.score_fell * best[0] if higher else best[0] <= s.score_fell * tw.now)
    if split == "train" and fell and not warming:
        ev = {**_evidence(st, a), "score": f"{split}/{name}", "score_best_window": best[0] / scale,
              "score_now": tw.now / scale, "best_window_step": best[1]}
        text = (f"the {split} {name} {'fell' if higher else 'rose'} from {best[0] / scale:.3g} (its best window, "
                f"from step {best[1]}) to {tw.now / scale:.3g} (median of its recent block means, steps "
                f"{tw.now_step}-{sc.last_step}){_lr_words(a)}: the optimizer is undoing what it learned, the "
                f"learning rate is probably too large")
        return make_finding("optimization", "score_fell", [run], best[1], "warning", 0.7, ev, text,
                            seen_at_step=last)
    if c is None or small or not accuracy:
        return None
    chance = 1.0 / c
    now = tw.now / scale
    if abs(now - chance) <= s.chance_tol * chance and tw.now_max / scale <= chance * (1 + 2 * s.chance_tol):
        ev = {**_evidence(st, a), "score": f"{split}/{name}", "score_level": now, "chance": chance,
              "classes": c, "window_steps": [tw.now_step, sc.last_step]}
        text = (f"the {split} {name} is at chance: {now:.3g} (median of its recent block means, steps "
                f"{tw.now_step}-{sc.last_step}) against 1/{c} = {chance:.3g}, and never above "
                f"{tw.now_max / scale:.3g} there: the model has learned nothing, the optimizer failed")
        return make_finding("optimization", "at_chance", [run], tw.before_step, "warning", 0.8, ev, text,
                            seen_at_step=last)
    return None


def train_findings(st, a: Assessment, grads: List[Symptom], cross: CrossEvidence, s: Settings) -> List[Finding]:
    """The step-1 verdict: a finding when the training loss is large (by the
    trivial loss, by its own start, or next to a less flexible run) and the
    run has stopped making progress; or a loss or score that does not move
    at all; or a loss that crawls from its start."""
    run = st.run
    lower_simpler = cross.lower_simpler  # less flexible, lower
    lower_bigger = cross.lower_bigger  # more flexible, clearly lower
    halted = bool(a.stalled or a.no_progress)
    tw = a.window
    last = st.train.last_step
    level = a.level
    ev = _evidence(st, a)
    start = tw.before_step if tw else st.train.first_step
    why_large = a.why if a.large == "yes" else None
    depth = st.depth()
    sym = grads[0] if grads else None
    if sym is not None:
        ev.update(sym.numbers)
    if halted and lower_simpler is not None:
        other, olevel = lower_simpler.run, lower_simpler.level
        ev.update({"compared_with": other.name, "other_level": olevel})
        text = (f"{run.name} (more flexible) ends its training loss at {fmt(level)}, higher than {other.name} "
                f"(less flexible) at {fmt(olevel)} (each the median of its recent block means): a more flexible "
                f"model must reach at least the smaller one's training loss, so this is optimization, not model "
                f"bias or overfitting")
        if sym is not None:
            text += f"; {sym.text}"
        conf = 0.85 if sym is not None else 0.75
        return [make_finding("optimization", sym.symptom if sym else "flexibility_inversion", [run, other], start,
                             "warning", conf, ev, text, seen_at_step=last)]
    if halted and sym is not None and why_large is not None:
        text = f"the training loss is large ({why_large}) and stopped improving; {sym.text}"
        return [make_finding("optimization", sym.symptom, [run], start, "warning", 0.8, ev, text,
                             seen_at_step=last)]
    if halted and lower_bigger is not None:
        other, olevel = lower_bigger.run, lower_bigger.level
        ev.update({"compared_with": other.name, "other_level": olevel})
        text = (f"the training loss plateaus at {fmt(level)} while the more flexible {other.name} reaches "
                f"{fmt(olevel)} on the same data (each the median of its recent block means): more flexibility "
                f"lowers it, so this is model bias")
        return [make_finding("model_bias", "plateau", [run, other], start, "warning", 0.85, ev, text,
                             seen_at_step=last)]
    sig = signal_findings(st, a, s) if a.supervised else None
    if sig is not None:
        return [sig]
    linear = depth is not None and depth <= 1
    if halted and why_large is not None and linear:
        text = (f"the training loss is large ({why_large}) and stopped improving in a linear model, which rarely "
                f"has optimization trouble: the model is not flexible enough")
        return [make_finding("model_bias", "plateau", [run], start, "warning", 0.65, ev, text,
                             also_possible=["optimization"], seen_at_step=last)]
    if a.above_start and a.large == "yes":
        return [_no_progress(st, a, ev, s)]
    if a.crawl is not None and a.supervised:
        return [_crawl_finding(st, a, ev)]
    if not halted or why_large is None:
        return []
    # one run, large loss, no gradient symptom: which cause is likelier, and which run would tell
    confirmed = a.stall_confirmed
    if not confirmed:
        return []  # the weaker single-run verdicts wait until the stall has lasted a second window
    if a.never_left:
        text = (f"the training loss is large ({why_large}) and has not moved: the optimizer is not making "
                f"progress. A smaller, easy-to-optimise baseline (linear or shallow) on the same data would "
                f"confirm: if it gets lower, this is optimization")
        return [make_finding("optimization", "stalled", [run], start, "warning", 0.55, ev, text,
                             also_possible=["model_bias"], seen_at_step=last)]
    if a.lr is not None and a.lr.decayed:
        return []  # a plateau after the schedule decayed is the end of training, not a stall
    if depth is not None and depth <= 3:
        text = (f"the training loss is large ({why_large}) and plateaued with healthy gradients in a small model "
                f"(depth {depth}): probably model bias. Run a bigger model on the same data to confirm: if it "
                f"gets lower, it was model bias")
        # one run cannot tell: an "info" (no alarm) that names the experiment which would
        return [make_finding("model_bias", "plateau", [run], start, "info", 0.5, ev, text,
                             also_possible=["optimization"], seen_at_step=last)]
    kind = "optimization" if depth is not None and depth >= 6 else "model_bias"
    other = "model_bias" if kind == "optimization" else "optimization"
    text = (f"the training loss is large ({why_large}) and plateaued with healthy gradients. One run cannot tell "
            f"model bias from optimization: train a shallower baseline (linear or 1-2 layers) on the same data; "
            f"if it gets lower, it is optimization, else try a bigger model")
    return [make_finding(kind, "plateau", [run], start, "info", 0.4, ev, text, also_possible=[other],
                         seen_at_step=last)]


def _no_progress(st, a: Assessment, ev: Dict[str, Any], s: Settings) -> Finding:
    """The loss never got meaningfully below its start and bounces above
    it: the optimizer makes no progress at all, whatever the size of its
    swings (oscillation when they exceed the minibatch noise)."""
    tw = a.window
    t = st.train
    se = (t.noise or 0.0) * math.sqrt(2.0 / tw.n_points)
    swings = tw.now_p90 - tw.now_p10 > max(s.z * se, s.min_progress * 2 * abs(tw.now))
    symptom = "oscillation" if swings else "stalled"
    ev = {**ev, "lowest_window": a.lowest, "low": tw.now_p10, "high": tw.now_p90}
    text = (f"the training loss never got meaningfully below where it started ({fmt(a.initial)}, the median of "
            f"its first points): its lowest window (median of block means) is {fmt(a.lowest)}, and over steps "
            f"{tw.now_step}-{t.last_step} it {'swings between' if swings else 'sits at'} {fmt(tw.now_p10)} and "
            f"{fmt(tw.now_p90)} (10th and 90th percentiles of its block means){_lr_words(a)}: the optimizer "
            f"makes no progress" + (", the learning rate is probably too large" if swings else ""))
    return make_finding("optimization", symptom, [st.run], t.first_step, "warning", 0.7, ev, text,
                        seen_at_step=t.last_step)


def _crawl_finding(st, a: Assessment, ev: Dict[str, Any]) -> Finding:
    """A crawl from the start: steady small drops with no fast phase, still
    far from any reference."""
    c = a.crawl
    t = st.train
    ref = (f"{a.ratio:.0%} of the trivial loss {fmt(a.trivial)}" if a.ratio is not None
           else f"{a.level / a.initial:.0%} of where it started ({fmt(a.initial)})")
    ev = {**ev, "quarters": c.quarters, "drops": c.drops}
    text = (f"the training loss crawls down from its start with no fast phase: the medians of the four quarters "
            f"of the run are {', '.join(fmt(q) for q in c.quarters)} (steady drops of "
            f"{', '.join(fmt(d) for d in c.drops)}), and after {t.n_finite} points it is still {ref}"
            f"{_lr_words(a)}: the learning rate is probably far too small (or training is far from converged)")
    return make_finding("optimization", "crawl", [st.run], t.first_step, "warning", 0.6, ev, text,
                        seen_at_step=t.last_step)
