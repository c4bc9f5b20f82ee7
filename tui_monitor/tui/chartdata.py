"""From the store to a chart: the view state (metric, smoothing, log-y, x
axis, zoom window) and :func:`build_chart`, which asks the store for the
decimated min/max points of every curve shown. Pure: no Textual, no I/O.

The cost of :func:`build_chart` follows the chart's width (two decimation
buckets per braille pixel column), not the series' length; smoothing is the
store's incremental EMA, computed on the raw series before decimation. With a
:class:`DecimationCache` (the app keeps one) a redraw of a series that did not
change (same series object, same length, same window, bucket count, x mode
and smoothing weight) reuses the decimated points instead of decimating again,
so a redraw costs the same for 1,000 and 1,000,000 points; a series that grew
has a new length, so it is decimated afresh.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any, Dict, Hashable, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from ..metric_direction import higher_is_better
from ..store import UNENDED
from ._text import run_label, short_name
from .chart import ChartSpec, Key, Line, VMark, held_out_color
from .palette import BASELINE_COLOR, BEST_COLOR, ONSET_COLOR, RUN_COLORS, SPLIT_PATTERNS, run_color

__all__ = ["ViewState", "X_KINDS", "SPLIT_ORDER", "metric_names", "build_chart", "x_extent", "series_for",
           "DecimationCache", "RunColors"]

X_KINDS = ("step", "relative", "wall")
SPLIT_ORDER = ("train", "val", "test")
MIN_SPAN = 1e-9
#: The split key's swatches when several runs are drawn (each in its colour).
SPLIT_KEY_COLOR = "#bdbdbd"


class RunColors:
    """One colour per run, the same in the chart, its legend and the runs
    table's selection mark, and stable: a run keeps its colour while it is
    drawn, whatever else is selected or unselected; a newly drawn run takes
    the first colour no drawn run has (the palette's twelve are all distinct;
    past twelve runs the least used colour).

    :meth:`assign` with the keys of the runs drawn (``run.key``), in the order
    they were selected, gives ``{key: colour}``; calling it again with the
    same keys gives the same answer, so the chart and the table can both ask.
    """

    def __init__(self, palette: Sequence[str] = RUN_COLORS) -> None:
        self.palette = tuple(palette)
        self._slot: Dict[Hashable, int] = {}

    def assign(self, keys: Iterable[Hashable]) -> Dict[Hashable, str]:
        keys = list(dict.fromkeys(keys))
        wanted = set(keys)
        slots = {k: i for k, i in self._slot.items() if k in wanted}
        used = [0] * len(self.palette)
        for i in slots.values():
            used[i] += 1
        for k in keys:
            if k not in slots:
                i = min(range(len(self.palette)), key=lambda j: (used[j], j))
                slots[k] = i
                used[i] += 1
        self._slot = slots
        return {k: self.palette[slots[k]] for k in keys}

    def color(self, key: Hashable) -> Optional[str]:
        """The colour ``key`` was last given, None if it is not drawn."""
        i = self._slot.get(key)
        return None if i is None else self.palette[i]


@dataclass
class ViewState:
    """What the chart shows; changed by keys, read by :func:`build_chart`."""

    metric: str = "loss"
    smoothing: float = 0.6  # EMA weight; 0 = off
    log_y: bool = False
    x_kind: str = "step"
    view: Tuple[float, float] = (0.0, 1.0)  # zoom window as fractions of the x extent
    show_raw: bool = True

    def zoomed(self) -> bool:
        return self.view != (0.0, 1.0)

    def zoom(self, factor: float, centre: Optional[float] = None) -> "ViewState":
        """Zoom by ``factor`` (< 1: in) around ``centre`` (a fraction; default
        the window's middle, or its right edge while following live data)."""
        lo, hi = self.view
        span = hi - lo
        new = min(1.0, max(0.001, span * factor))
        if centre is None:
            centre = hi if hi >= 1.0 else (lo + hi) / 2
            if hi >= 1.0:  # keep following the newest data
                return replace(self, view=(max(0.0, 1.0 - new), 1.0))
        lo2 = centre - new / 2
        lo2 = min(max(0.0, lo2), 1.0 - new)
        return replace(self, view=(lo2, lo2 + new))

    def zoom_at(self, factor: float, pos: float) -> "ViewState":
        """Zoom by ``factor`` (< 1: in) keeping the x under ``pos`` (a fraction
        of the visible window, 0 = its left edge: where the mouse is) in place."""
        lo, hi = self.view
        span = hi - lo
        pos = min(1.0, max(0.0, float(pos)))
        anchor = lo + pos * span
        new = min(1.0, max(0.001, span * factor))
        lo2 = min(max(0.0, anchor - pos * new), 1.0 - new)
        return replace(self, view=(lo2, lo2 + new))

    def pan(self, fraction: float) -> "ViewState":
        """Move the window by ``fraction`` of its width (negative: left)."""
        lo, hi = self.view
        span = hi - lo
        d = fraction * span
        lo2 = min(max(0.0, lo + d), 1.0 - span)
        return replace(self, view=(lo2, lo2 + span))


def metric_names(runs: Sequence[Any]) -> List[str]:
    """Metric names (without split) of ``runs``, loss first, then in order of appearance."""
    seen: Dict[str, None] = {}
    for run in runs:
        for split, metric in run.metrics():
            if split in SPLIT_ORDER:
                seen.setdefault(metric, None)
    names = list(seen)
    if "loss" in seen:
        names.remove("loss")
        names.insert(0, "loss")
    return names


def _origin(run: Any) -> float:
    if isinstance(run.start, (int, float)) and math.isfinite(run.start):
        return float(run.start)
    for s in list(run.series.values()):
        if len(s):
            return float(s.times[0])
    return 0.0


def series_for(run: Any, metric: str) -> List[Tuple[str, Any]]:
    """``(split, series)`` of ``metric`` in ``run``, train first."""
    out = []
    for split in SPLIT_ORDER:
        s = run.get(metric, split)
        if s is not None and len(s):
            out.append((split, s))
    return out


def x_extent(runs: Sequence[Any], metric: str, kind: str) -> Optional[Tuple[float, float]]:
    """The x range (in the chart's units) of every curve of ``metric``."""
    lo, hi = math.inf, -math.inf
    for run in runs:
        shift = _origin(run) if kind == "relative" else 0.0
        for _, s in series_for(run, metric):
            snap = s.snapshot()
            xs = snap.steps if kind == "step" else snap.times
            if not len(xs):
                continue
            srt = snap.steps_sorted if kind == "step" else snap.times_sorted
            a, b = (float(xs[0]), float(xs[-1])) if srt else (float(xs.min()), float(xs.max()))
            if math.isfinite(a) and math.isfinite(b):
                lo = min(lo, a - shift)
                hi = max(hi, b - shift)
    if lo > hi:
        return None
    return lo, hi


def _at_step(series: Any, step: int, kind: str, shift: float) -> Optional[float]:
    """The chart x of ``step`` in ``series`` (its time, in the time modes)."""
    if kind == "step":
        return float(step)
    snap = series.snapshot()
    if snap.steps_sorted:  # O(log n): no scan of a long series on every redraw
        i = int(np.searchsorted(snap.steps, step, "left"))
        if i >= len(snap.steps) or int(snap.steps[i]) != step:
            return None
        return float(snap.times[i]) - shift
    idx = np.flatnonzero(snap.steps == step)
    if not len(idx):
        return None
    return float(snap.times[idx[0]]) - shift


class DecimationCache:
    """Decimated (and smoothed) points per series, so that redrawing a chart
    whose series did not change does not decimate them again.

    An entry is keyed by the series' identity, x mode, window, bucket count
    and smoothing weight, and holds the series' length when it was made: a
    series that grew (series are append-only) misses and its entry is
    replaced. The entry keeps a reference to the series, so an id reused by
    a new object cannot match. At most ``max_entries`` entries (least
    recently used go first). Not thread-safe: one per UI thread."""

    def __init__(self, max_entries: int = 128) -> None:
        self.max_entries = max(1, int(max_entries))
        self._entries: "OrderedDict[tuple, tuple]" = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()

    def decimate(self, series: Any, buckets: int, x: str, lo: float, hi: float, weight: float = 0.0) -> Any:
        """``series.decimate(buckets, x, lo, hi)`` of the raw values (``weight``
        0) or of their EMA with ``weight``, from the cache when still valid."""
        key = (id(series), x, float(lo), float(hi), int(buckets), float(weight))
        n = len(series)
        entry = self._entries.get(key)
        if entry is not None and entry[0] is series and entry[1] == n:
            self._entries.move_to_end(key)
            self.hits += 1
            return entry[2]
        self.misses += 1
        values = series.ema(weight) if weight else None
        dec = series.decimate(buckets, x=x, lo=lo, hi=hi, values=values)
        self._entries[key] = (series, n, dec)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return dec


def _decimate(cache: Optional[DecimationCache], series: Any, buckets: int, x: str, lo: float, hi: float,
              weight: float = 0.0) -> Any:
    if cache is not None:
        return cache.decimate(series, buckets, x, lo, hi, weight)
    return series.decimate(buckets, x=x, lo=lo, hi=hi, values=series.ema(weight) if weight else None)


def column_means(x: np.ndarray, y: np.ndarray, lo: float, hi: float, columns: int) -> Tuple[np.ndarray, np.ndarray]:
    """One point per pixel column of ``[lo, hi]``: the mean x and y of the
    points in it (in x order). A smoothed line drawn through these is one
    connected line, where the min/max points of a still-noisy EMA would draw
    a vertical bar in every column."""
    if len(x) <= 1 or not hi > lo or columns < 1:
        return x.astype(np.float64), y
    col = np.clip(((x - lo) * (columns / (hi - lo))).astype(np.int64), 0, columns - 1)
    counts = np.bincount(col, minlength=columns)
    used = counts > 0
    n = counts[used]
    return (np.bincount(col, weights=x, minlength=columns)[used] / n,
            np.bincount(col, weights=y, minlength=columns)[used] / n)


def build_chart(
    runs: Sequence[Any],
    state: ViewState,
    px_width: int,
    baseline: Any = None,
    onsets: Sequence[Tuple[Any, int, str]] = (),
    title: Optional[str] = None,
    cache: Optional[DecimationCache] = None,
    colors: Optional[Mapping[Any, str]] = None,
) -> ChartSpec:
    """The chart of ``state.metric`` for ``runs`` (the first is the focused
    run: its best validation step is marked), decimated to ``px_width``
    pixel columns. ``baseline``: a run drawn in grey for comparison (train
    split) when it is not among ``runs``. ``onsets``: ``(run, step, label)``
    of findings to mark. ``cache``: reuse the decimated points of series
    that did not change since the last call (see :class:`DecimationCache`).
    ``colors``: each run's colour by its key (see :class:`RunColors`; a run
    not in it takes the palette's colour of its position). Colour tells the
    runs apart, line style the splits (solid train, dashed val, dotted test),
    with one or with several runs."""
    metric = state.metric
    kind = state.x_kind if state.x_kind in X_KINDS else "step"
    shown = list(runs)
    extra = [baseline] if baseline is not None and all(baseline is not r for r in shown) else []
    ext = x_extent(shown + extra, metric, kind)
    spec = ChartSpec(x_kind=kind, log_y=state.log_y, title=metric if title is None else title)
    notes = []
    if state.smoothing > 0:
        notes.append("ema %.2f" % state.smoothing)
    if state.log_y:
        notes.append("log y")
    if not shown:
        spec.empty = "no run selected"
        return spec
    if ext is None:  # which is it: not yet, or never (a finished run that did not log it)
        ended = all(getattr(r, "status", "running") not in UNENDED for r in shown)
        name = short_name(metric, 32)
        if not ended:
            spec.empty = "no %s values yet  (m: pick another metric)" % name
        elif len(shown) == 1:
            spec.empty = "%s logged no %s  (m: pick another metric)" % (run_label(shown[0]), name)
        else:
            spec.empty = "none of these runs logged %s  (m: pick another metric)" % name
        spec.note = "  ".join(notes)
        return spec
    lo, hi = ext
    span = max(hi - lo, MIN_SPAN)
    if hi <= lo:
        lo, hi = lo - 0.5, lo + 0.5
        span = 1.0
    w_lo = lo + state.view[0] * span
    w_hi = lo + state.view[1] * span
    spec.x_range = (w_lo, w_hi)
    if state.zoomed():
        notes.append("zoom %d%%" % round(100 * (state.view[1] - state.view[0])))
    spec.note = "  ".join(notes)
    buckets = max(1, px_width)
    xname = "step" if kind == "step" else "time"
    colors = colors or {}
    splits: List[str] = []
    for i, run in enumerate(shown + extra):
        is_base = i >= len(shown)
        shift = _origin(run) if kind == "relative" else 0.0
        color = BASELINE_COLOR if is_base else colors.get(getattr(run, "key", None)) or run_color(i)
        drawn = [(split, s) for split, s in series_for(run, metric) if not (is_base and split != "train")]
        if drawn:  # one run alone: its name, no swatch (the split key has its colour)
            spec.keys.append(Key(("baseline %s" if is_base else "%s") % run_label(run), color,
                                 "" if len(shown) == 1 and not extra else "solid"))
        for split, s in drawn:
            dec = _decimate(cache, s, buckets, xname, w_lo + shift, w_hi + shift)
            if is_base:
                label = "baseline %s" % run_label(run)
            elif len(shown) == 1:
                label = split
            else:
                label = "%s %s" % (run_label(run), split)
            if split not in splits and not is_base:
                splits.append(split)
            pattern = SPLIT_PATTERNS.get(split, "solid")
            line_color = color if split == "train" else held_out_color(color, alone=len(shown) == 1)
            smooth = state.smoothing > 0 and split == "train" and len(s) > 2
            xs = dec.x.astype(np.float64) - shift
            if smooth:
                sm = _decimate(cache, s, buckets, xname, w_lo + shift, w_hi + shift, state.smoothing)
                if state.show_raw:
                    spec.lines.append(Line(xs, dec.y, color, pattern, faint=True))
                sx, sy = column_means(sm.x.astype(np.float64) - shift, sm.y, w_lo, w_hi, buckets)
                spec.lines.append(Line(sx, sy, color, pattern, label=label,
                                       mark_x=dec.mark_x.astype(np.float64) - shift, mark_kind=dec.mark_kind))
            else:
                spec.lines.append(Line(xs, dec.y, line_color, pattern, label=label,
                                       mark_x=dec.mark_x.astype(np.float64) - shift, mark_kind=dec.mark_kind))
    # the split key: solid train, dashed val, dotted test (in the run's colour
    # when there is one run, else neutral)
    key_color = spec.keys[0].color if len(shown) == 1 and spec.keys else SPLIT_KEY_COLOR
    held_key = held_out_color(key_color, alone=len(shown) == 1)
    spec.keys.extend(Key(split, key_color if split == "train" else held_key,
                         SPLIT_PATTERNS.get(split, "solid"), name=False)
                     for split in SPLIT_ORDER if split in splits and (len(splits) > 1 or split != "train"))
    # the focused run's best held-out step, the way the metric improves (none
    # for a metric whose name does not say: a learning rate has no best)
    focus = shown[0]
    val = focus.get(metric, "val")
    better = higher_is_better(metric)
    if val is not None and len(val) and better is not None:
        best = val.max() if better else val.min()
        if best is not None:
            x = _at_step(val, best[1], kind, _origin(focus) if kind == "relative" else 0.0)
            if x is not None:
                # with several runs, in the colour of the run it is about
                color = spec.keys[0].color if len(shown) > 1 and spec.keys else BEST_COLOR
                spec.vmarks.append(VMark(x, color, "★", "best val @%d" % best[1]))
    for run, step, label in onsets:
        s = run.get(metric, "train") or next((s for _, s in series_for(run, metric)), None)
        if s is None or step is None:
            continue
        x = _at_step(s, int(step), kind, _origin(run) if kind == "relative" else 0.0)
        if x is not None:
            spec.vmarks.append(VMark(x, ONSET_COLOR, "!", label))
    return spec
