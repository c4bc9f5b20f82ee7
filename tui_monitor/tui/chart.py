"""The line chart renderable: braille curves, axes with ticks, a legend,
markers for non-finite values and vertical guides (best validation step, a
finding's onset).

A pure Rich renderable fed with already-decimated points (see
:mod:`tui_monitor.tui.chartdata`): its cost depends on the size of the chart,
not on the length of the series. All text from the stream (labels) is shown
literally: it goes into :class:`rich.text.Text` / segments, never markup.
"""
from __future__ import annotations

import math
import time as _time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple

import numpy as np
from rich.color import Color
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from ._text import safe, shorten
from .canvas import BrailleCanvas
from .legend import Entry, legend_rows
from .ticks import YView, log_tick_labels, log_ticks, nice_ticks, robust_range, tick_labels, time_ticks

__all__ = ["Line", "Key", "VMark", "ChartSpec", "LineChart", "Y_AXIS_WIDTH", "plot_size", "fmt_clock", "fmt_elapsed",
           "line_style", "faint_color", "held_out_color"]

#: Columns taken by the y axis (labels and the axis line).
Y_AXIS_WIDTH = 8
#: Rows taken besides the plot: the legend (its first row), the x axis line
#: and its labels. The legend takes a second row when it needs one and the
#: plot keeps :data:`MIN_PLOT_ROWS` rows.
CHROME_ROWS = 3
MIN_PLOT_ROWS = 6
LEAST_PLOT_ROWS = 3

# marker characters by Decimated.mark_kind: NaN, +inf, -inf
MARK_CHARS = ("×", "▲", "▼")
MARK_NAMES = ("NaN", "+inf", "-inf")
_MARK_STYLE = Style(color="bright_red", bold=True)
PATTERN_GLYPH = {"solid": "━", "dash": "╍", "dot": "┈"}
#: Lines are drawn in this order of pattern (a split's style: solid train,
#: dashed val, dotted test), so held-out lines lie over every training line.
PATTERN_ORDER = {"solid": 0, "dash": 1, "dot": 2}
#: The background a faint band is blended towards (the dark theme's), and how
#: much of the line's colour the band keeps: a darker shade of the same hue,
#: as TensorBoard draws the raw series under a smoothed one.
BAND_BACKGROUND = (0x12, 0x12, 0x12)
BAND_ALPHA = 0.32
#: How much of a run's colour its held-out lines keep (the rest is white):
#: enough to tell the runs apart by hue when several are drawn.
HELD_OUT_KEEP = 0.65
HELD_OUT_KEEP_ALONE = 0.35


@dataclass
class Line:
    """One curve: x in data units, y finite (non-finite values go to marks)."""

    x: np.ndarray
    y: np.ndarray
    color: str = "white"
    pattern: str = "solid"  # solid | dash | dot
    faint: bool = False  # the raw series under a smoothed one: a band beneath the lines, in a darker shade
    label: Optional[str] = None  # legend text (plain, from the stream)
    mark_x: np.ndarray = field(default_factory=lambda: np.empty(0))
    mark_kind: np.ndarray = field(default_factory=lambda: np.empty(0, np.int8))


@dataclass
class Key:
    """A legend entry: a swatch of ``pattern`` in ``color``, then ``text``
    (plain, from the stream; ``pattern`` "": no swatch). ``name``: a run's
    name (abbreviated before any entry is dropped); else a key such as a
    split's line style."""

    text: str
    color: str
    pattern: str = "solid"
    name: bool = True


@dataclass
class VMark:
    """A vertical guide at ``x`` with a one-character ``glyph`` at the top."""

    x: float
    color: str = "green"
    glyph: str = "│"
    label: str = ""


@dataclass
class ChartSpec:
    lines: List[Line] = field(default_factory=list)
    vmarks: List[VMark] = field(default_factory=list)
    x_range: Optional[Tuple[float, float]] = None  # None: the data's
    x_kind: str = "step"  # step | relative | wall
    log_y: bool = False
    title: str = ""  # plain text
    note: str = ""  # plain text, right of the legend (smoothing, zoom)
    empty: str = "no data yet"
    x_format: Optional[Callable[[float], str]] = None  # for wall time ticks
    y_range: Optional[Tuple[float, float]] = None  # None: from the data (on the plotted scale: log10 on a log axis)
    keys: List[Key] = field(default_factory=list)  # the legend's entries; none: one per labelled line


def plot_size(width: int, height: int) -> Tuple[int, int]:
    """Cells of the plot area inside a chart of ``width`` × ``height``."""
    return max(0, width - Y_AXIS_WIDTH), max(0, height - CHROME_ROWS)


def fmt_clock(t: float) -> str:
    """Local wall-clock time of day, ``HH:MM:SS``."""
    try:
        return _time.strftime("%H:%M:%S", _time.localtime(t))
    except (OverflowError, OSError, ValueError):
        return "?"


def fmt_elapsed(t: float) -> str:
    """Seconds as ``+M:SS`` / ``+H:MM:SS``."""
    if not math.isfinite(t):
        return "?"
    sign = "-" if t < 0 else ""
    t = int(round(abs(t)))
    h, rest = divmod(t, 3600)
    m, s = divmod(rest, 60)
    return "%s%d:%02d:%02d" % (sign, h, m, s) if h else "%s%d:%02d" % (sign, m, s)


_DIM = Style(dim=True)
_PARSED: dict = {}
_FAINT: dict = {}
_TINT: dict = {}


def _blend(color: str, towards: Tuple[int, int, int], keep: float) -> str:
    """``color`` mixed with ``towards``, keeping ``keep`` of it, as hex."""
    try:
        r, g, b = Color.parse(color).get_truecolor()
    except Exception:  # noqa: BLE001 - not a colour Rich knows: grey
        r, g, b = 0x9E, 0x9E, 0x9E
    return "#%02x%02x%02x" % tuple(round(keep * c + (1 - keep) * t) for c, t in zip((r, g, b), towards))


def faint_color(color: str) -> str:
    """A darker shade of ``color`` (a hex or named colour) for a faint band:
    an explicit colour, so that it reads as faint on every terminal (the "dim"
    attribute is drawn at full intensity by some)."""
    hexed = _FAINT.get(color)
    if hexed is None:
        hexed = _FAINT[color] = _blend(color, BAND_BACKGROUND, BAND_ALPHA)
    return hexed


def held_out_color(color: str, alone: bool = False) -> str:
    """A lighter tint of a run's ``color`` for its validation and test lines:
    the same hue (the same run), set apart from its training line where the
    two cross, besides the line style; paler for a run drawn ``alone`` (no
    other run's hue to keep apart from)."""
    key = (color, alone)
    hexed = _TINT.get(key)
    if hexed is None:
        hexed = _TINT[key] = _blend(color, (0xFF, 0xFF, 0xFF), HELD_OUT_KEEP_ALONE if alone else HELD_OUT_KEEP)
    return hexed


def line_style(line: "Line") -> Style:
    """The style of a line's cells (a band's darker shade for a faint line)."""
    return _get_style(faint_color(line.color) if line.faint else line.color)


def _get_style(style) -> Style:
    if isinstance(style, Style):
        return style
    st = _PARSED.get(style)
    if st is None:
        st = _PARSED[style] = Style.parse(style) if style else Style.null()
    return st


def text_segments(text: Text) -> List[Tuple[str, Optional[Style]]]:
    """``(text, style)`` runs as :meth:`rich.text.Text.render` yields them
    (no console needed: the styles are Style objects or plain style names)."""
    plain = text.plain
    if not text._spans:
        return [(plain, None)]
    spans = list(enumerate(text._spans, 1))
    style_map = {i: _get_style(span.style) for i, span in spans}
    style_map[0] = _get_style(text.style)
    events = [(0, False, 0), *((sp.start, False, i) for i, sp in spans), *((sp.end, True, i) for i, sp in spans),
              (len(plain), True, 0)]
    events.sort(key=lambda e: (e[0], e[1]))
    stack: List[int] = []
    out = []
    for (offset, leaving, sid), (next_offset, _, _) in zip(events, events[1:]):
        if leaving:
            stack.remove(sid)
        else:
            stack.append(sid)
        if next_offset > offset:
            out.append((plain[offset:next_offset], Style.combine(style_map[k] for k in sorted(stack))))
    return out


def _y_transform(y: np.ndarray, log_y: bool) -> Tuple[np.ndarray, np.ndarray]:
    """``(ty, ok)``: y on the plotted scale and which points could be plotted
    (on a log axis, values <= 0 cannot)."""
    if not log_y:
        return y, np.ones(len(y), dtype=bool)
    ok = y > 0
    ty = np.full(len(y), np.nan)
    ty[ok] = np.log10(y[ok])
    return ty, ok


class LineChart:
    """Rich renderable for a :class:`ChartSpec`; fills the width it is given
    and ``height`` rows (default: the height the console offers, else 12)."""

    def __init__(self, spec: ChartSpec, height: Optional[int] = None) -> None:
        self.spec = spec
        self.height = height

    # -- ranges -------------------------------------------------------------

    def x_view(self) -> Tuple[float, float]:
        """The x range drawn (the spec's, else the data's)."""
        if self.spec.x_range is not None:
            lo, hi = self.spec.x_range
        else:
            xs = [l.x for l in self.spec.lines if len(l.x)] + [l.mark_x for l in self.spec.lines if len(l.mark_x)]
            if not xs:
                return 0.0, 1.0
            lo = min(float(np.min(x)) for x in xs)
            hi = max(float(np.max(x)) for x in xs)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return 0.0, 1.0
        if hi <= lo:
            hi = lo + 1.0
        return float(lo), float(hi)

    def y_view(self) -> "YView":
        """The y range drawn, on the plotted scale (see :class:`YView`)."""
        x_lo, x_hi = self.x_view()
        if self.spec.y_range is not None:
            return YView(tuple(map(float, self.spec.y_range)))
        lines, bands = [], []
        for line in self.spec.lines:
            if not len(line.y):
                continue
            inside = (line.x >= x_lo) & (line.x <= x_hi)
            ty, ok = _y_transform(line.y[inside], self.spec.log_y)
            ty = ty[ok & np.isfinite(ty)]
            if len(ty):
                (bands if line.faint else lines).append(ty)
        if not lines and not bands:
            return YView(None)
        return robust_range(np.concatenate(lines or bands), np.concatenate(bands) if lines and bands else None,
                            self.spec.log_y)

    # -- rendering ----------------------------------------------------------

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        height = self.height or options.height or 12
        for row in self.render_rows(width, height):
            for text, style in row:
                yield Segment(text, style)
            yield Segment.line()

    def render_lines(self, width: int, height: int) -> List[Text]:
        """The chart as ``height`` lines of Text, each ``width`` cells."""
        out = []
        for row in self.render_rows(width, height):
            t = Text(no_wrap=True, end="")
            for text, style in row:
                t.append(text, style)
            out.append(t)
        return out

    def render_rows(self, width: int, height: int) -> List[List[Tuple[str, Optional[Style]]]]:
        """The chart as ``height`` rows of ``(text, style)`` segments (style
        None: unstyled), each ``width`` cells: what rendering the chart's lines
        as Rich Text would give, without building Text (the hot path of the
        chart widget)."""
        spec = self.spec
        pw, ph = plot_size(width, height)
        x_lo, x_hi = self.x_view()
        y_view = self.y_view()
        y_range = y_view.range
        clip_note = ""
        if y_view.clipped_hi or y_view.clipped_lo:
            clip_note = "%s off scale" % ("↑↓" if y_view.clipped_hi and y_view.clipped_lo
                                          else "↑" if y_view.clipped_hi else "↓")
        out: List[List[Tuple[str, Optional[Style]]]] = [text_segments(t)
                                                         for t in self._legend(width, height, clip_note)]
        ph = max(0, ph - (len(out) - 1))
        if pw < 4 or ph < 1:
            out.extend([(" " * width, None)] for _ in range(height - 1))
            return out[:height]
        has_marks = any(len(l.mark_x) for l in spec.lines)
        if y_range is None and not has_marks:
            body = [[(" " * width, None)] for _ in range(height - 1)]
            mid = min(len(body) - 1, max(0, (height - 1) // 2 - 1))
            msg = shorten(spec.empty, width)
            # a Text without spans renders unstyled (its own style unused)
            body[mid] = [(msg.center(width), None)]
            return (out + body)[:height]
        if y_range is None:
            y_range = (0.0, 1.0)
        y_lo, y_hi = y_range
        canvas = BrailleCanvas(pw, ph)
        sx = (canvas.px_width - 1) / (x_hi - x_lo)
        sy = (canvas.px_height - 1) / (y_hi - y_lo)

        def col_of(x: float) -> int:
            return int(round((x - x_lo) * sx)) // 2

        # guides first (below the curves)
        for vm in spec.vmarks:
            if not (x_lo <= vm.x <= x_hi):
                continue
            c = col_of(vm.x)
            st = Style(color=vm.color, dim=True)
            for r in range(ph):
                canvas.text(r, c, "┊", st, above=False)
            canvas.text(0, c, vm.glyph[:1] or "│", Style(color=vm.color, bold=True), above=True)
        # bands beneath every line; training lines, then validation, then test
        ordered = [l for l in spec.lines if l.faint] + sorted(
            (l for l in spec.lines if not l.faint), key=lambda l: PATTERN_ORDER.get(l.pattern, 0))
        for line in ordered:
            if len(line.x):
                ty, ok = _y_transform(line.y, spec.log_y)
                px = (line.x[ok].astype(np.float64) - x_lo) * sx
                py = np.round((y_hi - ty[ok]) * sy, 6)  # float noise does not flip a pixel
                if len(px):
                    k = canvas.layer(line_style(line), band=line.faint)
                    canvas.polyline(k, px, py, "solid" if line.faint else line.pattern)
                    if not line.faint and (y_view.clipped_hi or y_view.clipped_lo):
                        self._off_scale(canvas, line, px, py)
                if spec.log_y and not ok.all():  # values <= 0 cannot be drawn on a log axis
                    for x in line.x[~ok][:50]:
                        canvas.text(ph - 1, col_of(float(x)), "▽", Style(color=line.color), above=True)
        for line in spec.lines:
            if line.faint:
                continue
            for x, kind in zip(line.mark_x.tolist(), line.mark_kind.tolist()):
                if not (x_lo <= x <= x_hi):
                    continue
                row = ph - 1 if kind == 2 else 0
                canvas.text(row, col_of(float(x)), MARK_CHARS[kind], _MARK_STYLE)
        rows = canvas.rows()

        # y axis
        tick_rows = self._y_ticks(y_lo, y_hi, ph, sy)
        axis_style = Style(color="bright_black")
        label_style = Style(color="grey62")
        blank_label = (" " * (Y_AXIS_WIDTH - 1), None)
        plain_axis = ("│", axis_style)
        tick_axis = ("┤", axis_style)
        for r in range(ph):
            label = tick_rows.get(r)
            if label is not None:
                row = [(label[: Y_AXIS_WIDTH - 1].rjust(Y_AXIS_WIDTH - 1), label_style), tick_axis]
            else:
                row = [blank_label, plain_axis]
            row.extend(rows[r])
            out.append(row)

        # x axis
        xt, xlabels = self._x_ticks(x_lo, x_hi, pw)
        axis = ["─"] * pw
        labels = [" "] * pw
        used_until = -2
        for x, lab in zip(xt, xlabels):
            c = col_of(x)
            if not (0 <= c < pw):
                continue
            axis[c] = "┬"
            start = max(0, min(pw - len(lab), c - len(lab) // 2))
            if start <= used_until + 1 or start + len(lab) > pw:
                continue  # overlaps the previous label, or wider than the plot
            for i, ch in enumerate(lab):
                labels[start + i] = ch
            used_until = start + len(lab)
        # as Text(head, style=axis) + append(axis, axis) renders
        out.append([(" " * (Y_AXIS_WIDTH - 1) + "└", axis_style), ("".join(axis), axis_style + axis_style)])
        xname = {"step": "step", "relative": "time", "wall": "clock"}.get(spec.x_kind, "")
        out.append([(xname[: Y_AXIS_WIDTH - 1].rjust(Y_AXIS_WIDTH - 1) + " ", _DIM),
                    ("".join(labels), _DIM + label_style)])
        return out[:height]

    @staticmethod
    def _off_scale(canvas: BrailleCanvas, line: "Line", px: np.ndarray, py: np.ndarray) -> None:
        """Arrows in the line's colour on the top (bottom) row, in the
        columns where it is above (below) the axis."""
        style = _get_style(line.color)
        for row, glyph, off in ((0, "↑", py < -0.5), (canvas.height - 1, "↓", py > canvas.px_height - 0.5)):
            if off.any():
                for col in np.unique(np.rint(px[off]).astype(np.int64) // 2).tolist():
                    canvas.text(row, col, glyph, style, above=True)

    def _y_ticks(self, lo: float, hi: float, ph: int, sy: float) -> dict:
        """``{row: label}`` of the y axis: round ticks, one per row at most,
        labelled exactly (fewer ticks when the labels would not fit)."""
        log_y = self.spec.log_y
        n = max(2, ph // 3) if log_y else max(2, min(6, ph // 2))
        while True:
            ticks = log_ticks(lo, hi, n) if log_y else nice_ticks(lo, hi, n)
            within_decade = log_y and len([t for t in ticks if lo <= t <= hi]) < 2
            if within_decade:  # a log axis spanning less than 1-2-5: round values, placed on the log scale
                ticks = [math.log10(v) for v in nice_ticks(10 ** lo, 10 ** hi, max(n, min(6, ph // 2))) if v > 0]
            rows: dict = {}
            for t in ticks:
                r = int(round((hi - t) * sy)) // 4
                if 0 <= r < ph and r not in rows:
                    rows[r] = t
            if log_y and not within_decade:
                labels = log_tick_labels([10 ** t for t in rows.values()])
            elif log_y:
                labels = tick_labels([10 ** t for t in rows.values()])
            else:
                labels = tick_labels(list(rows.values()))
            if n <= 2 or all(len(l) <= Y_AXIS_WIDTH - 1 for l in labels):
                return dict(zip(rows, labels))
            n -= 1

    def _x_ticks(self, lo: float, hi: float, pw: int) -> Tuple[List[float], List[str]]:
        n = max(2, pw // 12)
        kind = self.spec.x_kind
        if kind == "step":
            ticks = nice_ticks(lo, hi, n, integer=True)
            return ticks, tick_labels(ticks, width=8, si_from=1e3)
        if kind == "relative":
            ticks = time_ticks(lo, hi, n)
            return ticks, [fmt_elapsed(t) for t in ticks]
        fmt = self.spec.x_format or fmt_clock
        ticks = time_ticks(lo, hi, max(2, pw // 14))
        return ticks, [fmt(t) for t in ticks]

    def legend_entries(self) -> List[Entry]:
        """The legend's entries: the spec's keys (else one per labelled
        line), then the markers of non-finite values, then the guides."""
        spec = self.spec
        entries = []
        if spec.keys:
            for k in spec.keys:
                glyph = PATTERN_GLYPH.get(k.pattern, "━") * 2 if k.pattern else ""
                entries.append(Entry(glyph, _get_style(k.color), safe(k.text),
                                     name=k.name, drop=0 if k.name else 1))
        else:
            seen = set()
            for line in spec.lines:
                if line.faint or not line.label or (line.label, line.color, line.pattern) in seen:
                    continue
                seen.add((line.label, line.color, line.pattern))
                entries.append(Entry(PATTERN_GLYPH.get(line.pattern, "━") * 2, _get_style(line.color),
                                     safe(line.label), name=True))
        kinds = set()
        for line in spec.lines:
            kinds.update(line.mark_kind.tolist())
        for k in sorted(kinds):
            entries.append(Entry(MARK_CHARS[k], _MARK_STYLE, MARK_NAMES[k], drop=2))
        for vm in spec.vmarks:
            if vm.label:
                entries.append(Entry(vm.glyph, Style(color=vm.color, bold=True), safe(vm.label), drop=3))
        return entries

    def _legend(self, width: int, height: int, extra_note: str = "") -> List[Text]:
        """The legend's rows: as many as it needs, up to one more for every
        8 rows of plot (4 at most) while the plot keeps :data:`MIN_PLOT_ROWS`;
        more (the plot keeping :data:`LEAST_PLOT_ROWS`) rather than leave out
        a run."""
        note = "  ".join(n for n in (safe(self.spec.note), extra_note) if n)
        plot_rows = height - CHROME_ROWS
        max_rows = max(1, min(4, 1 + plot_rows // 8, 1 + plot_rows - MIN_PLOT_ROWS))
        most_rows = max(1, min(4, 1 + plot_rows - LEAST_PLOT_ROWS))
        return legend_rows(safe(self.spec.title), self.legend_entries(), note, width, max_rows, most_rows)
