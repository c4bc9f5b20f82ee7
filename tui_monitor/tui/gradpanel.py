"""The gradient and system view as renderables: per-layer gradient norms
(bars on a log scale), learning rate, step time and throughput, and the
system samples (GPU memory and utilisation, CPU, RAM) when the stream has
them. Pure: reads a run, returns Rich Text."""
from __future__ import annotations

import math
from typing import Any, Dict, Optional, Tuple

import numpy as np
from rich.text import Text

from ._text import fmt_num, short_name, shorten
from .chart import ChartSpec, Line
from .palette import RUN_COLORS

__all__ = ["step_timing", "system_values", "grads_text", "system_text", "grad_chart", "SYSTEM_SPLIT"]

#: Split under which the store keeps ``system`` samples, as ``(SYSTEM_SPLIT, field)`` series.
SYSTEM_SPLIT = "system"

_BAR = " ▏▎▍▌▋▊▉█"


def step_timing(run: Any, window: int = 50) -> Tuple[Optional[float], Optional[float]]:
    """``(seconds per step, steps per second)`` from the spacing of the last
    ``window`` training log calls (the train loss series, else any train series)."""
    s = run.get("loss", "train")
    if s is None or len(s) < 2:
        s = next((v for (sp, _), v in list(run.series.items()) if sp == "train" and len(v) >= 2), None)
    if s is None:
        return None, None
    snap = s.snapshot()
    steps = snap.steps[-window:].astype(np.float64)
    times = snap.times[-window:]
    ds = np.diff(steps)
    dt = np.diff(times)
    ok = (ds > 0) & np.isfinite(dt) & (dt >= 0)
    if not ok.any():
        return None, None
    per = float(np.median(dt[ok] / ds[ok]))
    return per, (1.0 / per if per > 0 else None)


def system_values(run: Any) -> Dict[str, float]:
    """The latest system sample, by field (empty when the stream has none)."""
    out: Dict[str, float] = {}
    for (split, name), s in list(run.series.items()):
        if split == SYSTEM_SPLIT and len(s):
            out[name] = s.last()[1]
    extra = getattr(run, "system", None)
    if isinstance(extra, dict):
        for k, v in extra.items():
            last = v.last() if hasattr(v, "last") else None
            if last is not None:
                out.setdefault(str(k), last[1])
    return out


def _bar(frac: float, width: int) -> str:
    frac = min(1.0, max(0.0, frac))
    full = frac * width
    n = int(full)
    rest = int((full - n) * 8)
    return ("█" * n + (_BAR[rest] if rest and n < width else "")).ljust(width)


def grads_text(run: Any, width: int = 80, max_layers: int = 30) -> Text:
    """Per-layer gradient norms of the latest ``grads`` record, first layer
    first, as bars on a log scale shared by all layers."""
    t = Text(no_wrap=True, end="")
    layers = run.layers()
    norm = run.grad_norm.last() if len(run.grad_norm) else None
    t.append("gradient norm ", "bold")
    t.append(fmt_num(norm[1]) if norm else "-", "#4fc3f7")
    if norm:
        t.append("  @%d" % norm[0], "dim")
    if not layers:
        t.append("\n(no gradient records: call run.watch(model) in the training script)", "dim")
        return t
    rows = []
    for layer in layers[:max_layers]:
        g = run.grads.get((layer, "grad"))
        w = run.grads.get((layer, "weight"))
        z = run.grads.get((layer, "zero_rows"))
        rows.append((layer, g.last()[1] if g is not None and len(g) else None,
                     w.last()[1] if w is not None and len(w) else None,
                     z.last()[1] if z is not None and len(z) else None))
    logs = [math.log10(g) for _, g, _, _ in rows if g is not None and g > 0 and math.isfinite(g)]
    lo, hi = (min(logs), max(logs)) if logs else (0.0, 1.0)
    if hi - lo < 1e-9:
        lo -= 1.0
    name_w = max(8, min(28, max(len(short_name(n, 29)) for n, *_ in rows)))
    bar_w = max(6, width - name_w - 36)
    t.append("\n")
    t.append("%s  %s  %9s %9s %6s" % ("layer".ljust(name_w), shorten("grad (log scale)", bar_w).ljust(bar_w), "grad", "weight",
                                      "dead"), "bold")
    for name, g, w, z in rows:
        t.append("\n")
        t.append(short_name(name, name_w).ljust(name_w))
        t.append("  ")
        if g is None or not math.isfinite(g) or g <= 0:
            style = "bold #ef5350" if g is not None and not math.isfinite(g) else "dim"
            t.append(("non-finite" if g is not None and not math.isfinite(g) else "0 / none").ljust(bar_w), style)
        else:
            frac = (math.log10(g) - lo) / (hi - lo)
            style = "#ef5350" if g > 1e3 else ("#fff176" if g < 1e-6 else "#4fc3f7")
            t.append(_bar(0.05 + 0.95 * frac, bar_w), style)
        t.append("  %9s %9s %6s" % (fmt_num(g, 3), fmt_num(w, 3),
                                     ("%d%%" % round(100 * z)) if z is not None and math.isfinite(z) else "-"),
                 "#ef5350" if z is not None and z > 0.5 else "")
    if len(layers) > max_layers:
        t.append("\n… %d more layers" % (len(layers) - max_layers), "dim")
    return t


_SYS_LABELS = (
    ("gpu_util", "GPU util", "%"), ("gpu_mem_used", "GPU mem", "B"), ("cuda_mem_allocated", "CUDA alloc", "B"),
    ("cuda_mem_reserved", "CUDA reserved", "B"), ("cuda_max_mem_allocated", "CUDA peak", "B"),
    ("cpu_percent", "CPU", "%"), ("rss", "RSS", "B"), ("ram_used", "RAM used", "B"), ("ram_total", "RAM total", "B"),
    ("load1", "load", ""),
)


#: The hook's timing samples: the first line's step time and throughput.
_TIMING = ("step_time", "steps_per_sec")


def _fmt_sys(v: float, unit: str) -> str:
    if unit == "B":
        for div, suffix in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
            if abs(v) >= div:
                return "%.1f %s" % (v / div, suffix)
        return "%d B" % v
    if unit == "%":
        return "%.0f%%" % v
    return fmt_num(v, 3)


def system_text(run: Any) -> Text:
    """Learning rate, step time, throughput and the system samples."""
    t = Text(no_wrap=True, end="")
    lr = run.get("lr", "train")
    per, rate = step_timing(run)
    sysv = system_values(run)
    if per is None and sysv.get("step_time"):  # nothing logged to time: the hook's own sample
        per, rate = sysv["step_time"], sysv.get("steps_per_sec")
    t.append("lr ", "bold")
    t.append(fmt_num(lr.last()[1]) if lr is not None and len(lr) else "-", "#ffb74d")
    t.append("   step time ", "bold")
    t.append(("%.3g s" % per) if per else "-", "#81c784")
    t.append("   throughput ", "bold")
    t.append(("%.3g steps/s" % rate) if rate else "-", "#81c784")
    sampled = bool(sysv)
    sysv = {k: v for k, v in sysv.items() if k not in _TIMING}  # said once, above
    if sysv:
        t.append("\n")
        parts = []
        known = set()
        for key, label, unit in _SYS_LABELS:
            if key in sysv:
                known.add(key)
                parts.append((label, _fmt_sys(sysv[key], unit)))
        for key, v in sorted(sysv.items()):
            if key not in known:
                parts.append((short_name(key, 24), fmt_num(v, 3)))
        for i, (label, value) in enumerate(parts):
            if i:
                t.append("   ")
            t.append(label + " ", "bold")
            t.append(value)
    elif not sampled:
        t.append("\n(no system samples in this stream)", "dim")
    return t


def grad_chart(run: Any, px_width: int, log_y: bool = True) -> ChartSpec:
    """Global gradient norm (and the learning rate, scaled) over steps."""
    spec = ChartSpec(title="gradient norm", log_y=log_y, empty="no gradient records")
    if len(run.grad_norm):
        d = run.grad_norm.decimate(max(1, px_width))
        spec.lines.append(Line(d.x.astype(np.float64), d.y, RUN_COLORS[0], label="‖g‖ " + short_name(run.name),
                               mark_x=d.mark_x.astype(np.float64), mark_kind=d.mark_kind))
    return spec
