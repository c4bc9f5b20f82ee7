"""Every threshold the engine uses, in one place. docs/diagnosis.md says why
each value is what it is; change them with ``Diagnoser(store, settings=Settings(...))``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple

__all__ = ["Settings", "TUNABLE"]


@dataclass(frozen=True)
class Settings:
    # -- step 1: is the training loss large? --------------------------------------------------
    #: the loss is compared over two adjacent windows of this many logged points at least, for a
    #: loss logged every step ...
    patience: int = 100
    #: ... or this many evaluations' (or epochs') worth of points when the run says how many points
    #: an evaluation or an epoch spans (per-epoch logs: this many epochs) ...
    window_evals: int = 3
    #: ... and never fewer than this many points. A run's points count as epoch or interval summaries
    #: when an epoch or evaluation interval spans at most this many of them
    min_window: int = 3
    coarse_points: float = 2.0
    #: ... or this fraction of the points logged so far, whichever is larger
    window_frac: float = 0.25
    #: "no progress": the newer window is not lower than the older by z standard errors of the
    #: minibatch noise ...
    z: float = 3.0
    #: ... nor by this fraction of its level; a stall ends only on this multiple of that progress
    #: (hysteresis: a loss at the bar does not flicker between stalled and not)
    min_progress: float = 0.01
    stall_keep: float = 2.0
    #: large: at least this fraction of the trivial loss (ln C, the target variance)
    large_vs_trivial: float = 0.75
    #: ... and once large, stays large down to this much below that fraction (hysteresis)
    large_keep_margin: float = 0.1
    #: small: at most this fraction of the trivial loss
    small_vs_trivial: float = 0.3
    #: without a trivial loss: small when at most this fraction of where it started (an order of
    #: magnitude down)
    small_vs_start: float = 0.1
    #: "never left its initial value": within this fraction of where it started
    left_initial: float = 0.1
    #: no progress also when back up at this multiple of its best window (every block of the recent
    #: window above ``back_up_min`` x the best) ...
    back_up: float = 2.0
    back_up_min: float = 1.5
    #: ... and "no progress" ends only when the loss is back under this fraction of its start
    no_progress_keep: float = 0.8
    #: a crawl: steady progress (the drops of the run's quarters within this factor of each other:
    #: no fast phase) ...
    crawl_steadiness: float = 3.0
    #: ... while still above this fraction of where it started (or large against the trivial loss)
    crawl_above_start: float = 0.7
    #: collapsed: the loss identical to this relative precision ...
    collapse_rtol: float = 1e-6
    #: ... over at least this many points and this many steps (per-epoch logs: the points alone)
    collapse_points: int = 50
    collapse_steps: int = 1000
    #: a score (accuracy) at chance: within this fraction of 1/C of it, over the recent window
    chance_tol: float = 0.2
    #: a training score (accuracy) that fell: its recent window at most this fraction of its best window
    score_fell: float = 0.7
    #: the learning rate has decayed (schedule's end) at this fraction of its peak
    lr_decayed: float = 0.1
    #: the learning rate is warming up while it grew by this factor over the recent window
    lr_rising: float = 1.1
    #: across runs: a level counts as higher than another when above it by this factor ...
    cross_ratio: float = 1.15
    #: ... and by this fraction of the common scale (trivial loss, else the initial loss)
    cross_gap: float = 0.05
    # -- gradients -----------------------------------------------------------------------------
    #: dead units: this fraction of a layer's units with exactly zero gradient
    dead_fraction: float = 0.5
    #: vanishing: first-layer gradient norm below this fraction of the last layer's
    vanishing_ratio: float = 1e-3
    #: exploding: global gradient norm above this multiple of its first values
    exploding_ratio: float = 1e3
    #: update far too small: relative weight change per step below this
    tiny_update: float = 1e-6
    #: oscillation: block means in the recent window spanning at least this factor
    swing_ratio: float = 3.0
    #: ... kept down to this fraction of it (hysteresis)
    swing_keep: float = 2 / 3
    # -- divergence ------------------------------------------------------------------------------
    #: rising: the last 3 block means increasing and above this multiple of max(initial, best) ...
    diverge_rising: float = 100.0
    #: ... or one block mean above this multiple
    diverge_jump: float = 1e4
    #: ... or the last 3 block means all above this multiple of the absolute reference (the trivial
    #: loss, else the first points or a step-0 evaluation), rising or not, once the loss went up by
    #: this factor from its first points (a loss that merely starts high has not diverged)
    diverge_level: float = 100.0
    diverge_rise: float = 10.0
    # -- step 2: held-out ------------------------------------------------------------------------
    #: Prechelt's GL_alpha: the held-out loss this many percent above its best
    gl_alpha: float = 5.0
    #: ... and above this many evaluation-to-evaluation jitters
    gl_jitter: float = 4.0
    #: Prechelt's UP_s: risen over this many successive evaluations (strips) ...
    up_strips: int = 2
    #: ... unless GL is this large already
    gl_strong: float = 15.0
    #: an overfitting finding is kept while GL stays above this (hysteresis)
    gl_keep: float = 2.0
    #: evaluations needed before any held-out rule speaks
    min_evals: int = 4
    #: the training loss "near" an evaluation's step: the mean of the last quarter of the interval
    #: before it, at least this many points (all of a shorter interval) ...
    near_points: int = 16
    #: overfitting: the training loss near the latest evaluation still at most this multiple of the loss
    #: near the best one (training still improving or flat: a held-out rise with a rising training
    #: loss is the optimizer's, not overfitting)
    train_at_best: float = 1.05
    #: mismatch: test loss at least this multiple of the validation loss (median over evaluations)
    mismatch_ratio: float = 1.5
    #: ... and already this multiple in the first third of the evaluations
    mismatch_early: float = 1.3
    #: gap rule (no test split): validation at least this multiple of training from the start ...
    gap_ratio: float = 2.0
    #: ... and not growing by more than this factor since the first third ...
    gap_growth: float = 1.25
    #: ... and the ratio not shrinking below this fraction of its early value (a gap that closes is
    #: not persistent)
    gap_shrink: float = 0.8
    #: ... and the validation loss no longer coming down steadily: over the last third of its
    #: evaluations, falling at this share of them and by this many noise sigmas in all
    falling_share: float = 0.75
    falling_sigmas: float = 3.0
    #: a test split that rises from its first evaluations: its best among this first share of them
    test_first_share: float = 0.1
    #: evaluations needed by the gap rule
    gap_min_evals: int = 6
    #: how sure a held-out finding is: at least this once its excess cleared the noise bar (even odds:
    #: the bar already asks gl_jitter sigmas and more with many runs in view) ...
    confidence_floor: float = 0.5
    #: ... and at most this: one run's held-out evidence never makes it certain
    confidence_ceiling: float = 0.95
    #: a held-out score that improves upward (accuracy, F1, mAP), read when a run logs no held-out loss,
    #: as its badness 1/value (heldout_signal.py): GL in percent of the score (best / now - 1) ...
    score_gl_alpha: float = 2.0
    #: ... at once ...
    score_gl_strong: float = 5.0
    #: ... and kept down to
    score_gl_keep: float = 1.0
    #: ... a gap: the training score at least this multiple of the held-out score
    score_gap_ratio: float = 1.25
    #: ... a test split: the validation score at least this multiple of the test score (median), and
    #: already this multiple in the first third of the evaluations
    score_mismatch_ratio: float = 1.25
    score_mismatch_early: float = 1.15
    # -- multi-rank jobs (ranks.py) ----------------------------------------------------------------
    #: straggler: per-rank measures are medians over this many recent points (steps) ...
    straggler_window: int = 50
    #: ... and need at least this many
    straggler_min_points: int = 10
    #: a rank is a straggler at this multiple of the median of the other ranks ...
    straggler_ratio: float = 1.5
    #: ... and stays one down to this multiple (hysteresis)
    straggler_keep: float = 1.25
    #: ... and only when the extra time costs the job at least this fraction of its step time ...
    straggler_min_cost: float = 0.1
    #: ... and at least this many seconds a step
    straggler_min_seconds: float = 0.002
    #: hung: no new step for max(hang_min, hang_factor x the job's step time) seconds
    hang_min: float = 30.0
    hang_factor: float = 20.0
    #: rank divergence (3+ ranks): a rank's recent median loss or gradient norm this many times off the
    #: median of the others ...
    divergence_ratio: float = 3.0
    #: ... kept down to this factor (hysteresis) ...
    divergence_keep: float = 2.0
    #: ... and this many robust sigmas (of the other ranks' medians, in log space) away from them
    divergence_sigmas: float = 6.0


#: The thresholds whose value should be chosen on data rather than argued: each with 3-5 candidate
#: values, the default among them. A held-out harness (bench/diagnosis.py, leave one family of runs
#: out) picks among these on the other families with ``Settings(**{field: value})`` and scores the
#: choice on the family left out. docs/diagnosis.md says what each trades.
TUNABLE: Dict[str, Tuple[float, ...]] = {
    # how much a window holds in a per-epoch/per-evaluation log (3 epochs judges a 10-epoch log)
    "window_evals": (2, 3, 5),
    # ... and in a per-step log (minibatch noise against speed)
    "patience": (50, 100, 200),
    # "large" against the trivial loss
    "large_vs_trivial": (0.6, 0.75, 0.9),
    # "never left / never got meaningfully below its start"
    "left_initial": (0.05, 0.1, 0.2),
    # a crawl's steadiness (no fast phase)
    "crawl_steadiness": (2.0, 3.0, 5.0),
    # divergence: how far above the absolute reference
    "diverge_level": (10.0, 30.0, 100.0, 1000.0),
    # overfitting: Prechelt's GL_alpha, and the rise in evaluation-noise sigmas
    "gl_alpha": (3.0, 5.0, 10.0),
    "gl_jitter": (3.0, 4.0, 6.0),
    # ... and a held-out score's GL (a run that logs no held-out loss)
    "score_gl_alpha": (1.0, 2.0, 5.0),
    # mismatch: a gap's and a test split's ratio
    "gap_ratio": (1.5, 2.0, 3.0),
    "mismatch_ratio": (1.3, 1.5, 2.0),
}
