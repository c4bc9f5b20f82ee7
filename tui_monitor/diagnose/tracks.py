"""Incremental summaries of one run's series, the state the detectors read.

Each track keeps a cursor into its :class:`~tui_monitor.store.Series` and
only reads the points appended since the last :meth:`feed`, so the cost of
an update is proportional to what arrived, not to the run's history.

* :class:`LossTrack` (the training loss, often one point a step; also used
  for a score such as accuracy, and the learning rate): a bounded list of
  block summaries (at most ``MAX_BLOCKS``; blocks start at one point, and
  when full, neighbours are merged and the block size doubles), the first
  values, a robust estimate of the minibatch noise, the longest run of
  identical values at the end (:class:`Streak`), and the non-finite values
  met.
* :class:`EvalTrack` (a held-out loss, a point per evaluation): the
  evaluations themselves (few), with the running best.
* :class:`GradTrack` (``grads`` records): the recent per-layer gradient and
  weight norms and dead-unit fractions.
"""
from __future__ import annotations

import math
from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np

__all__ = ["LossTrack", "EvalTrack", "jitter_of", "GradTrack", "Windows", "Streak", "pick_loss", "pick_lr", "MAX_BLOCKS"]

MAX_BLOCKS = 128
_HEAD = 10  # first finite values kept for the initial level


def pick_loss(run, split: str) -> Optional[str]:
    """The loss metric of ``split``: ``loss`` if logged, else the first
    metric whose name contains ``loss``, else None."""
    names = [m for s, m in run.metrics(split)]
    if "loss" in names:
        return "loss"
    for m in names:
        if "loss" in m.lower():
            return m
    return None


def pick_lr(run) -> Optional[str]:
    names = [m for s, m in run.metrics("train")]
    for cand in ("lr", "learning_rate", "lr-0", "lr_0"):
        if cand in names:
            return cand
    return None


class Windows(NamedTuple):
    """The last two adjacent windows of a training loss: the medians of
    their block means (a few spiked blocks do not move a median), where each
    begins, and the spread of the newer one."""

    before: float  #: the older window's median block mean
    now: float  #: the newer window's median block mean
    before_step: int  #: the older window's first step
    now_step: int  #: the newer window's first step
    now_min: float
    now_max: float
    now_p10: float  #: 10th percentile of the newer window's block means
    now_p90: float  #: 90th percentile
    n_points: int  #: points in each window
    blocks: int  #: blocks in each window


class Streak(NamedTuple):
    """The values at the end of a series that are all identical to the last
    (within a relative tolerance): a loss or score that no longer moves."""

    value: float
    first_step: int
    points: int


class LossTrack:
    """Block summaries of a (noisy, per-step) loss series."""

    __slots__ = ("cursor", "n_finite", "head", "nonfinite", "first_nonfinite",
                 "block", "bmean", "bmin", "bmax", "bfirst", "blast", "pend_v", "pend_s", "noise",
                 "last_step", "first_step", "_raw", "_raw_new", "rtol", "streak")

    def __init__(self, block: int = 1, rtol: float = 1e-6) -> None:
        self.cursor = 0
        self.n_finite = 0
        self.head: List[float] = []
        self.nonfinite = 0
        self.first_nonfinite: Optional[Tuple[int, float]] = None
        self.block = block
        self.bmean: List[float] = []
        self.bmin: List[float] = []
        self.bmax: List[float] = []
        self.bfirst: List[int] = []
        self.blast: List[int] = []
        self.pend_v = np.empty(0)
        self.pend_s = np.empty(0, dtype=np.int64)
        self.noise: Optional[float] = None  # minibatch noise (std), robust, recent
        self.last_step: Optional[int] = None
        self.first_step: Optional[int] = None
        self._raw = np.empty(0)  # the last 64 finite values, for the noise estimate
        self._raw_new = 0
        self.rtol = rtol
        self.streak: Optional[Streak] = None

    def feed(self, series) -> bool:
        """Read the points appended since the last call; True if any."""
        n = len(series)
        if n <= self.cursor:
            return False
        snap = series.snapshot()
        steps = np.asarray(snap.steps[self.cursor:n], dtype=np.int64)
        vals = np.asarray(snap.values[self.cursor:n], dtype=np.float64)
        self.cursor = n
        if self.first_step is None:
            self.first_step = int(steps[0])
        self.last_step = int(steps[-1])
        fin = np.isfinite(vals)
        if not fin.all():
            bad = np.flatnonzero(~fin)
            self.nonfinite += len(bad)
            if self.first_nonfinite is None:
                self.first_nonfinite = (int(steps[bad[0]]), float(vals[bad[0]]))
            steps, vals = steps[fin], vals[fin]
        if not len(vals):
            return True
        self.n_finite += len(vals)
        self._extend_streak(steps, vals)
        if len(self.head) < _HEAD:
            self.head.extend(vals[: _HEAD - len(self.head)].tolist())
        # minibatch noise: a robust sigma of successive differences (a smooth trend barely
        # contributes), over the last 64 values, re-estimated every 32 new ones
        self._raw = np.concatenate([self._raw, vals[-64:]])[-64:]
        self._raw_new += len(vals)
        if (self._raw_new >= 32 or self.noise is None) and len(self._raw) >= 8:
            d = np.diff(self._raw)
            est = 1.4826 * float(np.median(np.abs(d - np.median(d)))) / math.sqrt(2.0)
            self.noise = est if self.noise is None else 0.5 * self.noise + 0.5 * est
            self._raw_new = 0
        v = np.concatenate([self.pend_v, vals]) if len(self.pend_v) else vals
        s = np.concatenate([self.pend_s, steps]) if len(self.pend_s) else steps
        b = self.block
        k = len(v) // b
        if k:
            full = v[: k * b].reshape(k, b)
            fs = s[: k * b].reshape(k, b)
            self.bmean.extend(full.mean(1).tolist())
            self.bmin.extend(full.min(1).tolist())
            self.bmax.extend(full.max(1).tolist())
            self.bfirst.extend(fs[:, 0].tolist())
            self.blast.extend(fs[:, -1].tolist())
            self.pend_v = v[k * b:].copy()
            self.pend_s = s[k * b:].copy()
            while len(self.bmean) > MAX_BLOCKS:
                self._merge()
        else:
            self.pend_v = np.array(v, dtype=np.float64)
            self.pend_s = np.array(s, dtype=np.int64)
        return True

    def _extend_streak(self, steps: np.ndarray, vals: np.ndarray) -> None:
        """The run of values identical to the last one, carried across feeds."""
        last = float(vals[-1])
        tol = self.rtol * max(abs(last), 1e-300)
        off = np.flatnonzero(np.abs(vals - last) > tol)
        if len(off):
            i = int(off[-1]) + 1
            self.streak = Streak(last, int(steps[i]), len(vals) - i)
        elif self.streak is not None and abs(self.streak.value - last) <= tol:
            self.streak = Streak(self.streak.value, self.streak.first_step, self.streak.points + len(vals))
        else:
            self.streak = Streak(last, int(steps[0]), len(vals))

    def _merge(self) -> None:
        m = len(self.bmean) // 2 * 2
        mean = np.asarray(self.bmean[:m]).reshape(-1, 2)
        mn = np.asarray(self.bmin[:m]).reshape(-1, 2)
        mx = np.asarray(self.bmax[:m]).reshape(-1, 2)
        self.bmean = mean.mean(1).tolist() + self.bmean[m:]
        self.bmin = mn.min(1).tolist() + self.bmin[m:]
        self.bmax = mx.max(1).tolist() + self.bmax[m:]
        self.bfirst = self.bfirst[:m:2] + self.bfirst[m:]
        self.blast = self.blast[1:m:2] + self.blast[m:]
        self.block *= 2

    # -- levels

    def _head(self, k: int) -> List[float]:
        """The first ``k`` of the first values that had not exploded (above
        10x the lowest of the first three)."""
        head = self.head
        low = min(head[:3])
        if low > 0:
            head = [v for v in head if v <= 10.0 * low] or head[:1]
        return head[:max(1, k)]

    def start(self, k: int = _HEAD) -> Optional[float]:
        """The loss the run started at: the median of its first ``k`` finite
        values (a per-epoch log's first point is already an epoch of
        training: there ``k`` is 1), leaving out those that already exploded
        (above 10x the lowest of the first three): a start is never taken
        from values that blew up in the first steps (or the first epoch)."""
        if not self.head:
            return None
        return float(np.median(self._head(k)))

    @property
    def initial(self) -> Optional[float]:
        """:meth:`start` over the first ten values."""
        return self.start()

    def start_se(self, k: int = _HEAD) -> float:
        """The standard error of :meth:`start` (a median of a few noisy
        values): 1.25 x a robust sigma of them / sqrt(n)."""
        if not self.head:
            return 0.0
        head = np.asarray(self._head(k))
        if len(head) < 3:
            return 0.0
        mad = float(np.median(np.abs(head - np.median(head))))
        return 1.25 * 1.4826 * mad / math.sqrt(len(head))

    @property
    def first(self) -> Optional[float]:
        """The lowest of the first three finite values: where the run stood
        before anything could explode."""
        return float(min(self.head[:3])) if self.head else None

    def best(self) -> Optional[Tuple[float, int]]:
        """(level, step): the lowest block mean, a smoothed best."""
        if not self.bmean:
            return None
        i = int(np.argmin(self.bmean))
        return self.bmean[i], self.blast[i]

    def window(self, points: int) -> Optional[Tuple[float, int, int]]:
        """(mean, first step, blocks) of the last complete blocks covering at
        least ``points`` points."""
        nb = max(1, -(-points // self.block))
        if len(self.bmean) < nb:
            return None
        part = self.bmean[-nb:]
        return float(np.mean(part)), self.bfirst[-nb], nb

    def two_windows(self, points: int) -> Optional[Windows]:
        """The last two adjacent windows of at least ``points`` points each,
        or None when there are not enough blocks."""
        nb = max(2, -(-points // self.block))
        if len(self.bmean) < 2 * nb:
            return None
        a = np.asarray(self.bmean[-2 * nb:-nb])
        b = np.asarray(self.bmean[-nb:])
        # medians of block means: a few spiked blocks (a bad batch) do not move them
        return Windows(float(np.median(a)), float(np.median(b)), self.bfirst[-2 * nb], self.bfirst[-nb],
                       float(b.min()), float(b.max()), float(np.percentile(b, 10)), float(np.percentile(b, 90)),
                       nb * self.block, nb)

    def window_medians(self, points: int, k: int) -> Optional[List[float]]:
        """Medians of block means over the last ``k`` adjacent windows of
        ``points`` points each, oldest first, or None when too short."""
        nb = max(2, -(-points // self.block))
        if len(self.bmean) < k * nb:
            return None
        m = np.asarray(self.bmean[len(self.bmean) - k * nb:]).reshape(k, nb)
        return np.median(m, axis=1).tolist()

    def lowest_window(self, points: int) -> Optional[float]:
        """The lowest median of block means over consecutive windows of at
        least ``points`` points (aligned on the last block): where the run
        got to at its best, robust to a lucky block."""
        found = self.best_window(points, higher=False)
        return None if found is None else found[0]

    def best_window(self, points: int, higher: bool) -> Optional[Tuple[float, int]]:
        """The highest (``higher``) or lowest median of block means over
        consecutive windows of at least ``points`` points (aligned on the last
        block), and the first step of that window: where a score peaked, in
        its own direction."""
        nb = max(1, -(-points // self.block))
        k = len(self.bmean) // nb
        if k < 1:
            return None
        start = len(self.bmean) - k * nb
        med = np.median(np.asarray(self.bmean[start:]).reshape(k, nb), axis=1)
        i = int(np.argmax(med) if higher else np.argmin(med))
        return float(med[i]), self.bfirst[start + i * nb]

    def quarters(self) -> Optional[List[float]]:
        """Medians of the block means in the four quarters of the run, oldest
        first (None with fewer than 8 blocks)."""
        n = len(self.bmean)
        if n < 8:
            return None
        return [float(np.median(part)) for part in np.array_split(np.asarray(self.bmean), 4)]

    def peak(self) -> Optional[float]:
        """The highest block mean (for a learning rate: its peak)."""
        return float(max(self.bmean)) if self.bmean else None

    def level(self) -> Optional[float]:
        """The current level: the mean of the last ~32 points."""
        nb = max(1, -(-32 // self.block))
        if len(self.bmean) >= nb:
            return float(np.median(self.bmean[-nb:]))
        if self.bmean:
            return float(np.mean(self.bmean))
        if len(self.pend_v):
            return float(self.pend_v.mean())
        return None


def jitter_of(values) -> float:
    """Relative noise of a series of evaluations, trend removed: a robust
    sigma of the second differences (a straight trend has none), divided by
    sqrt(6) (the variance of a second difference of white noise is 6
    sigma^2) and by the level (the median of the absolute values). 0 with
    fewer than 4 values."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if len(v) < 4:
        return 0.0
    d2 = np.diff(v, 2)
    level = float(np.median(np.abs(v))) or 1e-12
    return 1.4826 * float(np.median(np.abs(d2))) / math.sqrt(6.0) / level


class EvalTrack:
    """Held-out evaluations: (step, value), the best, the run of rises.

    ``invert``: a score that improves upward (an accuracy) is kept as its
    badness 1/value (:mod:`.heldout_signal`), so "best" is the lowest and
    a drop of the score is a rise, as for a loss; its values at or below 0
    have no badness and are left out (they are not a non-finite loss)."""

    __slots__ = ("cursor", "steps", "values", "best", "best_step", "best_index", "nonfinite", "first_nonfinite",
                 "ups", "smooth", "best_smooth", "best_smooth_index", "invert")

    def __init__(self, invert: bool = False) -> None:
        self.invert = invert
        self.cursor = 0
        self.steps: List[int] = []
        self.values: List[float] = []
        self.best = math.inf
        self.best_step: Optional[int] = None
        self.best_index = -1
        self.nonfinite = 0
        self.first_nonfinite: Optional[Tuple[int, float]] = None
        self.ups = 0  # consecutive evaluations that rose
        #: running median of 3 evaluations, and its best: robust to one lucky evaluation
        self.smooth: List[float] = []
        self.best_smooth = math.inf
        self.best_smooth_index = -1

    def feed(self, series) -> List[int]:
        """Read new evaluations; return the indices (into ``values``) added."""
        n = len(series)
        if n <= self.cursor:
            return []
        snap = series.snapshot()
        steps = snap.steps[self.cursor:n].tolist()
        vals = snap.values[self.cursor:n].tolist()
        self.cursor = n
        added = []
        for s, v in zip(steps, vals):
            if self.invert:
                if not (math.isfinite(v) and v > 0):
                    continue
                v = 1.0 / v
            if not math.isfinite(v):
                self.nonfinite += 1
                if self.first_nonfinite is None:
                    self.first_nonfinite = (int(s), float(v))
                continue
            if self.values and self.steps[-1] == s:  # the same evaluation logged again: keep the last
                self.values[-1] = v
                idx = len(self.values) - 1
                if idx == self.best_index and v > self.best:
                    self._rebest()
            else:
                if self.values:
                    self.ups = self.ups + 1 if v > self.values[-1] else 0
                self.steps.append(int(s))
                self.values.append(float(v))
                idx = len(self.values) - 1
            if v < self.best:
                self.best, self.best_step, self.best_index = float(v), int(s), idx
            sm = float(np.median(self.values[max(0, idx - 2): idx + 1]))
            if idx < len(self.smooth):
                self.smooth[idx] = sm
            else:
                self.smooth.append(sm)
            if sm < self.best_smooth:
                self.best_smooth, self.best_smooth_index = sm, idx
            added.append(idx)
        return added

    def _rebest(self) -> None:
        i = int(np.argmin(self.values))
        self.best, self.best_step, self.best_index = self.values[i], self.steps[i], i

    def jitter(self) -> float:
        """Relative noise of the evaluations (:func:`jitter_of` the last 52)."""
        return jitter_of(self.values[-52:])

    def smooth_ups(self) -> int:
        """Successive rises of the running median, counted back from the last."""
        n = 0
        sm = self.smooth
        for j in range(len(sm) - 1, 0, -1):
            if sm[j] > sm[j - 1]:
                n += 1
            else:
                break
        return n

    def __len__(self) -> int:
        return len(self.values)


class GradTrack:
    """The recent gradient signals: per layer and field, the last values."""

    KEEP = 8

    __slots__ = ("cursors", "recent", "norm_cursor", "norm_head", "norm_recent", "layers")

    def __init__(self) -> None:
        self.cursors: Dict[Tuple[str, str], int] = {}
        self.recent: Dict[Tuple[str, str], List[Tuple[int, float]]] = {}
        self.norm_cursor = 0
        self.norm_head: List[float] = []
        self.norm_recent: List[Tuple[int, float]] = []
        self.layers: List[str] = []

    def feed(self, run) -> bool:
        changed = False
        gn = run.grad_norm
        n = len(gn)
        if n > self.norm_cursor:
            snap = gn.snapshot()
            pts = list(zip(snap.steps[self.norm_cursor:n].tolist(), snap.values[self.norm_cursor:n].tolist()))
            self.norm_cursor = n
            for _, v in pts:
                if len(self.norm_head) < 5 and math.isfinite(v):
                    self.norm_head.append(v)
            self.norm_recent = (self.norm_recent + pts)[-self.KEEP:]
            changed = True
        grads = run.grads
        if len(grads) != len(self.cursors):
            self.layers = run.layers()
        for key, series in list(grads.items()):
            n = len(series)
            c = self.cursors.get(key, 0)
            if n > c:
                snap = series.snapshot()
                lo = max(c, n - self.KEEP)
                pts = list(zip(snap.steps[lo:n].tolist(), snap.values[lo:n].tolist()))
                self.recent[key] = (self.recent.get(key, []) + pts)[-self.KEEP:]
                self.cursors[key] = n
                changed = True
        return changed

    def weight_layers(self) -> List[str]:
        """Layers with a dead-unit field (matrices: linear and conv weights),
        in model order; else every layer with a gradient."""
        mats = [l for l in self.layers if (l, "zero_rows") in self.recent]
        return mats or [l for l in self.layers if (l, "grad") in self.recent]

    def mean(self, layer: str, fld: str, last: int = 3) -> Optional[float]:
        pts = self.recent.get((layer, fld))
        if not pts:
            return None
        vals = [v for _, v in pts[-last:] if math.isfinite(v)]
        return float(np.mean(vals)) if vals else None

    def count(self, layer: str, fld: str) -> int:
        return len(self.recent.get((layer, fld), ()))
