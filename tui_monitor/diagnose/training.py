"""Step 1 of the method on one run: is the training loss large, and if so,
model bias or optimization? Plus the live symptoms that cannot wait:
non-finite loss and divergence.

:func:`assess` summarises the training loss (level, start, best, progress
over two windows, against the trivial loss); :func:`gradient_evidence`
reads the gradient signals; :func:`train_findings` turns both, with the
cross-run evidence from :mod:`.compare`, into findings.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import numpy as np

from .assess import Assessment
from .compare import CrossEvidence
from .findings import Finding, make_finding
from .settings import Settings

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
    swing = s.swing_ratio if not was else s.swing_ratio * 2 / 3
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


def divergence_finding(st, a: Assessment, s: Settings) -> Optional[Finding]:
    t = st.train
    if len(t.bmean) < 3 or t.initial is None:
        return None
    best = a.best
    ref = max(abs(t.initial), abs(best) if best is not None else 0.0)
    if ref <= 0:
        return None
    last3 = t.bmean[-3:]
    rising = last3[0] < last3[1] < last3[2] and last3[0] > s.diverge_rising * ref
    jump = last3[-1] > s.diverge_jump * ref
    if not (rising or jump):
        return None
    # where it began: the first block of the final stretch above 10x the reference
    i = len(t.bmean) - 1
    while i > 0 and t.bmean[i - 1] > 10 * ref:
        i -= 1
    start = t.bfirst[i]
    return make_finding(
        "divergence", "exploding_loss", [st.run], start, "critical", 0.9 if rising else 0.8,
        {"start_step": start, "level": last3[-1], "initial": t.initial, "best": best, "ratio": last3[-1] / ref},
        f"the training loss exploded from {ref:.4g} to {last3[-1]:.4g} ({last3[-1] / ref:.3g}x) since step {start}",
        seen_at_step=t.last_step)


def train_findings(st, a: Assessment, grads: List[Symptom], cross: CrossEvidence, s: Settings) -> List[Finding]:
    """The step-1 verdict: a finding when the training loss is large (by the
    trivial loss, by its own start, or next to a less flexible run) and the
    run has stopped making progress."""
    run = st.run
    lower_simpler = cross.lower_simpler  # less flexible, lower
    lower_bigger = cross.lower_bigger  # more flexible, clearly lower
    halted = bool(a.stalled or a.no_progress)
    if not halted:
        return []
    tw = a.window
    last = st.train.last_step
    level = a.level
    ev: Dict[str, Any] = {"level": level, "initial": a.initial, "best": a.best, "best_step": a.best_step,
                          "trivial": a.trivial, "ratio_to_trivial": a.ratio,
                          "window_steps": [tw.now_step, last] if tw else None,
                          "progress": a.progress, "progress_needed": a.progress_needed,
                          "noise": st.train.noise}
    start = tw.before_step if tw else st.train.first_step
    why_large = a.why if a.large == "yes" else None
    depth = st.depth()
    sym = grads[0] if grads else None
    if sym is not None:
        ev.update(sym.numbers)
    if lower_simpler is not None:
        other, olevel = lower_simpler.run, lower_simpler.level
        ev.update({"compared_with": other.name, "other_level": olevel})
        text = (f"{run.name} (more flexible) ends its training loss at {level:.4g}, higher than {other.name} "
                f"(less flexible) at {olevel:.4g}: a more flexible model must reach at least the smaller one's "
                f"training loss, so this is optimization, not model bias or overfitting")
        if sym is not None:
            text += f"; {sym.text}"
        conf = 0.85 if sym is not None else 0.75
        return [make_finding("optimization", sym.symptom if sym else "flexibility_inversion", [run, other], start,
                             "warning", conf, ev, text, seen_at_step=last)]
    if why_large is None and lower_bigger is None:
        return []
    if sym is not None and why_large is not None:
        text = f"the training loss is large ({why_large}) and stopped improving; {sym.text}"
        return [make_finding("optimization", sym.symptom, [run], start, "warning", 0.8, ev, text,
                             seen_at_step=last)]
    if lower_bigger is not None:
        other, olevel = lower_bigger.run, lower_bigger.level
        ev.update({"compared_with": other.name, "other_level": olevel})
        text = (f"the training loss plateaus at {level:.4g} while the more flexible {other.name} reaches "
                f"{olevel:.4g} on the same data: more flexibility lowers it, so this is model bias")
        return [make_finding("model_bias", "plateau", [run, other], start, "warning", 0.85, ev, text,
                             seen_at_step=last)]
    # one run, large loss, no gradient symptom: which cause is likelier, and which run would tell
    confirmed = a.stall_confirmed
    if depth is not None and depth <= 1:
        text = (f"the training loss is large ({why_large}) and stopped improving in a linear model, which rarely "
                f"has optimization trouble: the model is not flexible enough")
        return [make_finding("model_bias", "plateau", [run], start, "warning", 0.65, ev, text,
                             also_possible=["optimization"], seen_at_step=last)]
    if not confirmed:
        return []  # the weaker single-run verdicts wait until the stall has lasted a second window
    if a.never_left:
        text = (f"the training loss is large ({why_large}) and has not moved: the optimizer is not making "
                f"progress. A smaller, easy-to-optimise baseline (linear or shallow) on the same data would "
                f"confirm: if it gets lower, this is optimization")
        return [make_finding("optimization", "stalled", [run], start, "warning", 0.55, ev, text,
                             also_possible=["model_bias"], seen_at_step=last)]
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
