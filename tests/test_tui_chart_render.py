"""The chart as a reader sees it: rendered to cells (character and style) from
real training runs, and asserted on what is on it.

The runs are trained here with torch (tiny models, CPU, a second or two each)
and written through the hook; the store reads their streams as the TUI does.
"""
from __future__ import annotations

import math
from typing import List, NamedTuple, Optional

import numpy as np
import pytest
from rich.color import Color
from rich.style import Style

from tui_monitor.tui.canvas import BRAILLE
from tui_monitor.tui.chart import Y_AXIS_WIDTH, LineChart
from tui_monitor.tui.chartdata import ViewState, build_chart

torch = pytest.importorskip("torch", reason="the chart tests train real models: torch is the demo extra")

STEPS = 300


# -------------------------------------------------------------- real runs


def _train_regression(hook, d, name, seed, batch=4, steps=STEPS):
    """A small MLP on a noisy regression task with minibatches of ``batch``:
    a noisy training loss, a validation loss every 10 steps, SGD at a
    constant learning rate 0.05 (logged as ``lr`` from the optimizer)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(512, 4, generator=g)
    y = torch.sin(x.sum(1, keepdim=True)) + 0.3 * torch.randn(512, 1, generator=g)
    xv, yv = x[:128], y[:128]
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    run = hook.init(name, dir=d, heartbeat_every=3600)
    for step in range(steps):
        idx = torch.randint(0, 512, (batch,), generator=g)
        loss = torch.nn.functional.mse_loss(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        run.log({"loss": float(loss.detach()), "lr": opt.param_groups[0]["lr"]}, step=step)
        if step % 10 == 0:
            with torch.no_grad():
                run.log({"loss": float(torch.nn.functional.mse_loss(model(xv), yv))}, step=step, split="val")
    run.close()


def _train_classifier(hook, d, name, seed=0, steps=STEPS):
    """A 3-class classifier, Adam at a constant 1e-3: loss and accuracy per
    step, validation loss, accuracy and logit margin (a metric whose name
    tells no direction) every 10 steps."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(8, 3, generator=g)
    x = torch.randn(512, 8, generator=g)
    y = (x @ w).argmax(1)
    xv = torch.randn(256, 8, generator=g)
    yv = (xv @ w).argmax(1)
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    run = hook.init(name, dir=d, heartbeat_every=3600)
    for step in range(steps):
        idx = torch.randint(0, 512, (16,), generator=g)
        out = model(x[idx])
        loss = torch.nn.functional.cross_entropy(out, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        acc = float((out.argmax(1) == y[idx]).float().mean())
        run.log({"loss": float(loss.detach()), "accuracy": acc, "lr": opt.param_groups[0]["lr"]}, step=step)
        if step % 10 == 0:
            with torch.no_grad():
                o = model(xv)
                top2 = o.topk(2, dim=1).values
                run.log({"loss": float(torch.nn.functional.cross_entropy(o, yv)),
                         "accuracy": float((o.argmax(1) == yv).float().mean()),
                         "margin": float((top2[:, 0] - top2[:, 1]).mean())}, step=step, split="val")
    run.close()


def _train_exploding(hook, d, name, seed=0, steps=STEPS):
    """Linear regression that trains at lr 0.01 for 150 steps, then at 1.3:
    the loss falls from ~5 to ~0.1, then grows by ~x6 a step past 1e35 to
    +inf, where the run stops."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 4, generator=g)
    y = x.sum(1, keepdim=True) + 0.3 * torch.randn(256, 1, generator=g)
    torch.manual_seed(seed)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    run = hook.init(name, dir=d, heartbeat_every=3600)
    for step in range(steps):
        if step == 150:
            opt.param_groups[0]["lr"] = 1.3
        loss = torch.nn.functional.mse_loss(model(x), y)
        value = float(loss.detach())
        run.log({"loss": value, "lr": opt.param_groups[0]["lr"]}, step=step)
        if not math.isfinite(value):
            break
        opt.zero_grad()
        loss.backward()
        opt.step()
    run.close(status="crashed")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A store holding the streams of real runs: ``noisy-a`` and ``noisy-b``
    (noisy regression with validation, SGD lr 0.05), ``clf`` (accuracy,
    Adam lr 1e-3), ``explode`` (a loss that falls, then diverges past 1e35)."""
    from tui_monitor import hook
    from tui_monitor.sources import Ingest

    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("runs")
    _train_regression(hook, str(d), "noisy-a", seed=1)
    _train_regression(hook, str(d), "noisy-b", seed=2, batch=8)
    _train_classifier(hook, str(d), "clf")
    _train_exploding(hook, str(d), "explode")
    ing = Ingest()
    ing.add_path(str(d), poll=True)
    ing.read_all()
    return {r.name: r for r in ing.store.runs.values()}


# -------------------------------------------------------------- the chart as cells


class Cell(NamedTuple):
    char: str
    style: object


def cells(spec, w=100, h=24) -> List[List[Cell]]:
    """The chart as rows of cells."""
    out = []
    for row in LineChart(spec).render_rows(w, h):
        line = []
        for text, style in row:
            line.extend(Cell(ch, style) for ch in text)
        assert len(line) == w
        out.append(line)
    return out


def text_of(grid) -> List[str]:
    return ["".join(c.char for c in row) for row in grid]


def plot_rows(grid) -> List[int]:
    """Indexes of the rows of the plot area (an axis character in the y axis' column)."""
    return [i for i, row in enumerate(grid) if row[Y_AXIS_WIDTH - 1].char in "│┤"]


def color_of(style) -> Optional[str]:
    if style is None or style.color is None:
        return None
    r, g, b = style.color.get_truecolor()
    return "#%02x%02x%02x" % (r, g, b)


def luminance(hex_color: str) -> float:
    r, g, b = Color.parse(hex_color).get_truecolor()
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def dots(ch: str) -> int:
    """The dot bits of a braille character (0 for anything else)."""
    return BRAILLE.index(ch) if ch in BRAILLE else 0


# -------------------------------------------------------------- noisy training loss


def without_bands(spec, like=None):
    """A copy of ``spec`` without its faint lines, on the axes of ``like``
    (default: ``spec``'s own, as drawn)."""
    from dataclasses import replace

    like = like or spec
    return replace(spec, lines=[l for l in spec.lines if not l.faint], x_range=LineChart(like).x_view(),
                   y_range=LineChart(like).y_view().range)


def test_noisy_loss_draws_the_smoothed_line_over_a_faint_band(trained):
    """The smoothed line is one connected line in the run's colour; the raw
    series is a band beneath it, in a clearly darker shade of that colour (not
    only the terminal's "dim"): no cell of the line shows the band's dots."""
    run = trained["noisy-a"]
    spec = build_chart([run], ViewState(metric="loss", smoothing=0.9), px_width=2 * 92)
    grid = cells(spec)
    rows = plot_rows(grid)
    line = next(l for l in spec.lines if not l.faint and l.pattern == "solid")
    line_color = color_of(Style.parse(line.color))
    plot = [grid[r][Y_AXIS_WIDTH:] for r in rows]
    band_colors = {color_of(c.style) for row in plot for c in row if dots(c.char)} - {line_color}
    band_colors.discard(color_of(Style.parse(next(l.color for l in spec.lines if l.pattern == "dash"))))
    assert len(band_colors) == 1
    band_color = band_colors.pop()
    assert luminance(band_color) < 0.6 * luminance(line_color)
    on_line = [[dots(c.char) and color_of(c.style) == line_color for c in row] for row in plot]
    on_band = [[dots(c.char) and color_of(c.style) == band_color for c in row] for row in plot]
    assert sum(map(sum, on_band)) > len(plot[0])  # a band, not a line
    # connected: every column from the first to the last holds the line (or
    # the validation line drawn over it), and its cells in neighbouring
    # columns touch; most columns show the line itself
    fg = [[bool(dots(c.char)) and color_of(c.style) != band_color for c in row] for row in plot]
    cols = [[r for r in range(len(plot)) if fg[r][c]] for c in range(len(plot[0]))]
    drawn = [c for c, rs in enumerate(cols) if rs]
    assert len(drawn) > 0.9 * len(plot[0]) and drawn[-1] - drawn[0] + 1 == len(drawn)
    assert sum(any(on_line[r][c] for r in range(len(plot))) for c in drawn) > 0.75 * len(drawn)
    for a, b in zip(drawn, drawn[1:]):
        assert min(abs(ra - rb) for ra in cols[a] for rb in cols[b]) <= 1


def test_a_band_never_changes_a_cell_of_a_line(trained):
    """Where a line (a smoothed training line, a dashed validation line) is
    drawn, the cell shows that line's dots and colour exactly as without the
    bands: one run, then two runs whose bands overlap the other's lines."""
    state = ViewState(metric="loss", smoothing=0.9)
    for runs in ([trained["noisy-a"]], [trained["noisy-a"], trained["noisy-b"]]):
        spec = build_chart(runs, state, px_width=2 * 92)
        assert any(l.faint for l in spec.lines)
        grid, bare = cells(spec), cells(without_bands(spec))
        compared = 0
        for r in plot_rows(bare):
            for c in range(Y_AXIS_WIDTH, 100):
                if dots(bare[r][c].char):
                    assert grid[r][c] == bare[r][c], (len(runs), r, c, grid[r][c], bare[r][c])
                    compared += 1
        assert compared > 100


def test_validation_lines_are_drawn_over_every_training_line(trained):
    """Two runs: each dashed validation line keeps its own colour in every
    cell it passes, over the other run's training line too."""
    runs = [trained["noisy-a"], trained["noisy-b"]]
    spec = build_chart(runs, ViewState(metric="loss", smoothing=0.9), px_width=2 * 92)
    vals = [l for l in spec.lines if l.pattern == "dash"]
    assert len(vals) == 2 and vals[0].color != vals[1].color
    grid = cells(spec)
    for val in vals:
        from dataclasses import replace

        alone = cells(replace(without_bands(spec), lines=[val]))
        other = cells(replace(without_bands(spec), lines=[v for v in vals if v is not val]))
        n = 0
        for r in plot_rows(alone):
            for c in range(Y_AXIS_WIDTH, 100):
                if alone[r][c].char != " " and other[r][c].char == " ":
                    assert color_of(grid[r][c].style) == color_of(Style.parse(val.color)), (r, c)
                    assert dots(grid[r][c].char) & dots(alone[r][c].char) == dots(alone[r][c].char)
                    n += 1
        assert n > 20


# -------------------------------------------------------------- constant metrics and tick labels


def y_labels(grid) -> List[str]:
    """The y axis' labels, top to bottom."""
    return [grid[r][: Y_AXIS_WIDTH - 1] and "".join(c.char for c in grid[r][: Y_AXIS_WIDTH - 1]).strip()
            for r in plot_rows(grid) if grid[r][Y_AXIS_WIDTH - 1].char == "┤"]


def line_rows(grid, spec) -> set:
    """The plot rows where a line (not a band) has dots."""
    colors = {color_of(Style.parse(l.color)) for l in spec.lines if not l.faint}
    return {r for r in plot_rows(grid) for c in grid[r][Y_AXIS_WIDTH:] if dots(c.char) and color_of(c.style) in colors}


def parse_label(label: str) -> float:
    units = {"k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
    if label[-1:] in units:
        return float(label[:-1]) * units[label[-1]]
    return float(label)


@pytest.mark.parametrize("run, value", [("noisy-a", 0.05), ("clf", 1e-3)])
def test_a_constant_learning_rate_is_a_flat_line_on_labelled_axis(trained, run, value):
    """The learning rate a scheduler-free optimizer logs is one flat line
    (one row of the plot, smoothed or not), on an axis whose labels are
    distinct, exact, and put the value on a tick."""
    r = trained[run]
    lr = set(r.get("lr").values.tolist())
    assert len(lr) == 1 and lr.pop() == pytest.approx(value)
    for smoothing in (0.0, 0.6):
        spec = build_chart([r], ViewState(metric="lr", smoothing=smoothing), px_width=2 * 92)
        grid = cells(spec)
        assert len(line_rows(grid, spec)) == 1, text_of(grid)
        labels = y_labels(grid)
        assert len(labels) >= 3 and len(set(labels)) == len(labels), labels
        values = [parse_label(l) for l in labels]
        assert values == sorted(values, reverse=True)
        assert any(v == pytest.approx(value, rel=1e-9) for v in values), labels
        # the line is drawn on the row of the value's label
        row_of = {"".join(c.char for c in grid[r][: Y_AXIS_WIDTH - 1]).strip(): r for r in plot_rows(grid)}
        label = next(l for l, v in zip(labels, values) if v == pytest.approx(value, rel=1e-9))
        assert line_rows(grid, spec) == {row_of[label]}


def test_a_near_constant_series_is_flat_with_distinct_labels():
    """A value that moves by a few parts in a million (float noise, a decay
    barely begun) is drawn flat, not stretched over the whole height."""
    from tui_monitor.tui.chart import ChartSpec, Line

    x = np.arange(200, dtype=float)
    for y in (0.1 + 1e-9 * np.sin(x), 0.1 * (1 - 2e-6 * x / 200), 1234.5 + 1e-4 * np.cos(x)):
        spec = ChartSpec(lines=[Line(x, y, "#4fc3f7", label="lr")], title="lr")
        grid = cells(spec)
        assert len(line_rows(grid, spec)) == 1, text_of(grid)
        labels = y_labels(grid)
        assert len(set(labels)) == len(labels) >= 3, labels


@pytest.mark.parametrize("lo, hi", [(0.25, 1.25), (0.2, 1.3), (0, 1e-3), (0.09, 0.11), (-3.7, 12.2), (1e-6, 5e-6),
                                    (0, 2.5e5), (1e4, 1.6e4), (0.999, 1.001), (-1e-3, 0), (2e6, 7.5e6),
                                    (100, 100.5), (0.6931, 0.6932), (0, 1), (0, 2.5e-4)])
@pytest.mark.parametrize("height", [10, 12, 16, 24, 40])
def test_tick_labels_are_exact_and_distinct(lo, hi, height):
    """Every y label, read back, is its tick's value (at a tick step of 0.25:
    1.25 1.00 0.75 0.50 0.25, not 1.2 1.0 0.8 0.5 0.2), the labels differ, and
    they fit the axis."""
    from tui_monitor.tui.chart import ChartSpec, Line
    from tui_monitor.tui.ticks import nice_ticks

    x = np.arange(50, dtype=float)
    spec = ChartSpec(lines=[Line(x, np.linspace(lo, hi, 50), "#4fc3f7", label="m")], y_range=(lo, hi))
    grid = cells(spec, w=80, h=height)
    labels = y_labels(grid)
    assert len(labels) >= 2 and len(set(labels)) == len(labels), labels
    values = [parse_label(l) for l in labels]
    step = min(abs(a - b) for a, b in zip(values, values[1:]))
    ticks = nice_ticks(lo, hi, len(values))
    for v in values:
        k = round(v / step)
        assert abs(v - k * step) <= 1e-9 * max(abs(v), step), (labels, v, step)
    assert all(len(l) <= Y_AXIS_WIDTH - 1 for l in labels)
    assert ticks  # the ticks the labels come from exist


def test_quarter_steps_are_labelled_with_two_decimals():
    from tui_monitor.tui.ticks import tick_labels

    assert tick_labels([1.25, 1.0, 0.75, 0.5, 0.25]) == ["1.25", "1.00", "0.75", "0.50", "0.25"]
    assert tick_labels([0.0006, 0.0008, 0.001, 0.0012]) == ["0.0006", "0.0008", "0.0010", "0.0012"]
    assert tick_labels([0.0, 1e-5, 2e-5]) == ["0", "1e-5", "2e-5"]
    assert tick_labels([0.0, 50000.0, 100000.0, 150000.0]) == ["0", "50k", "100k", "150k"]
    assert tick_labels([1.5e-7, 2.5e-7]) == ["1.5e-7", "2.5e-7"]


# -------------------------------------------------------------- the best marker


def star_column(grid) -> Optional[int]:
    top = plot_rows(grid)[0]
    cols = [c for c, cell in enumerate(grid[top]) if cell.char == "★"]
    return cols[0] if cols else None


def x_column(spec, x, w=100) -> int:
    """The cell column of ``x`` in a chart ``w`` wide."""
    lo, hi = LineChart(spec).x_view()
    px = 2 * (w - Y_AXIS_WIDTH)
    return Y_AXIS_WIDTH + int(round((x - lo) * (px - 1) / (hi - lo))) // 2


@pytest.mark.parametrize("metric, best", [("accuracy", max), ("loss", min)])
def test_the_best_marker_follows_the_metric_direction(trained, metric, best):
    """★ best val sits on the highest validation accuracy and on the lowest
    validation loss (it used to mark the minimum of every metric: the worst
    accuracy)."""
    run = trained["clf"]
    val = run.get(metric, "val")
    steps, values = val.steps.tolist(), val.values.tolist()
    want_value = best(values)
    want_step = steps[values.index(want_value)]
    worst_step = steps[values.index(max(values) if best is min else min(values))]
    spec = build_chart([run], ViewState(metric=metric), px_width=2 * 92)
    marks = [m for m in spec.vmarks if m.glyph == "★"]
    assert [m.x for m in marks] == [want_step] and marks[0].label.endswith("@%d" % want_step)
    grid = cells(spec)
    assert star_column(grid) == x_column(spec, want_step) != x_column(spec, worst_step)
    legend = text_of(grid)[0]
    assert "best val @%d" % want_step in legend


def test_no_best_marker_for_a_metric_without_a_direction(trained):
    """A validation metric whose name does not say which way is better gets
    no ★ (a guess would be wrong half the time)."""
    run = trained["clf"]
    assert len(run.get("margin", "val")) > 10
    spec = build_chart([run], ViewState(metric="margin"), px_width=2 * 92)
    assert not [m for m in spec.vmarks if m.glyph == "★"]
    assert "★" not in "".join(text_of(cells(spec)))


@pytest.mark.parametrize("name, higher", [
    ("loss", False), ("val_loss", False), ("train/loss", False), ("error_rate", False), ("top1_err", False),
    ("perplexity", False), ("ppl", False), ("WER", False), ("cer", False), ("eval_mse", False), ("nll", False),
    ("accuracy", True), ("val_acc", True), ("valAccuracy", True), ("top5", True), ("f1", True), ("F1Score", True),
    ("macro_f1", True), ("auc", True), ("roc_auc", True), ("mAP", True), ("map50", True), ("bleu", True),
    ("rougeL", True), ("rouge2", True), ("recall", True), ("precision", True), ("IoU", True), ("mean_iou", True),
    ("dice", True), ("acc_error", False), ("lr", None), ("learning_rate", None), ("grad_norm", None),
    ("samples_per_sec", None), ("epoch", None)])
def test_metric_direction(name, higher):
    from tui_monitor.metric_direction import higher_is_better

    assert higher_is_better(name) is higher


# -------------------------------------------------------------- a diverging run among others


def rows_of_line(grid, color) -> set:
    return {r for r in plot_rows(grid) for c in grid[r][Y_AXIS_WIDTH:]
            if dots(c.char) and color_of(c.style) == color}


def test_a_diverging_run_does_not_flatten_the_others(trained):
    """A run whose loss goes past 1e35 next to two healthy ones: the healthy
    runs keep most of the chart's height (they used to be one line at 0),
    the diverging one leaves through the top edge, with arrows in its colour
    where it is off the scale, and the note says so."""
    explode = trained["explode"]
    assert explode.get("loss").max()[0] > 1e35
    runs = [trained["noisy-a"], trained["noisy-b"], explode]
    spec = build_chart(runs, ViewState(metric="loss", smoothing=0.0), px_width=2 * 92)
    grid = cells(spec, h=24)
    plot = plot_rows(grid)
    for run in runs[:2]:
        line = next(l for l in spec.lines if l.label and l.label.startswith(run.name) and l.pattern == "solid")
        assert len(rows_of_line(grid, color_of(Style.parse(line.color)))) >= 0.2 * len(plot), run.name
    line = next(l for l in spec.lines if l.label and l.label.startswith("explode"))
    color = color_of(Style.parse(line.color))
    top = grid[plot[0]]
    arrows = [c for c, cell in enumerate(top) if cell.char == "↑"]
    assert arrows and all(color_of(top[c].style) == color for c in arrows)
    steps = explode.get("loss").steps
    values = explode.get("loss").values
    first_off = int(steps[np.argmax(np.nan_to_num(values, posinf=1e300) > 1e4)])
    assert min(arrows) <= x_column(spec, first_off) + 1 and max(arrows) >= x_column(spec, first_off)
    assert "↑ off scale" in text_of(grid)[0] or "↑ off scale" in text_of(grid)[1]
    labels = [parse_label(l) for l in y_labels(grid)]
    assert max(labels) < 100  # the axis is the healthy runs', not 1e36's


def test_a_diverging_run_alone_keeps_its_descent_readable(trained):
    """The same run alone: the descent before the divergence spans several
    rows; the rest is off the scale, said so."""
    explode = trained["explode"]
    spec = build_chart([explode], ViewState(metric="loss", smoothing=0.0), px_width=2 * 92)
    grid = cells(spec, h=24)
    line = next(l for l in spec.lines if not l.faint)
    assert len(rows_of_line(grid, color_of(Style.parse(line.color)))) >= 0.4 * len(plot_rows(grid))
    assert "↑" in "".join(c.char for c in grid[plot_rows(grid)[0]])


def test_an_ordinary_loss_curve_is_not_clipped(trained):
    """A loss that falls from its initial value by a factor of ten or so is
    drawn whole: no arrow, no note."""
    spec = build_chart([trained["clf"]], ViewState(metric="loss", smoothing=0.0), px_width=2 * 92)
    grid = cells(spec)
    assert "↑" not in "".join(text_of(grid)) and "off scale" not in text_of(grid)[0]
    y = trained["clf"].get("loss").values
    labels = [parse_label(l) for l in y_labels(grid)]
    assert max(labels) >= 0.8 * float(np.max(y))


# -------------------------------------------------------------- comparing runs: a colour per run, a legend naming each

DEMO_NAMES = ("bias_linear-s0", "bias_mlp-s0", "opt_shallow-s0", "opt_deep-s0", "overfit-s0", "mismatch-s0",
              "diverge_nan-s0")


@pytest.fixture(scope="module")
def seven_store(tmp_path_factory):
    """A store of seven real runs named as the demo's, each with a validation loss."""
    from tui_monitor import hook
    from tui_monitor.sources import Ingest

    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("seven")
    for i, name in enumerate(DEMO_NAMES):
        _train_regression(hook, str(d), name, seed=10 + i, batch=8 + 4 * i, steps=120)
    ing = Ingest()
    ing.add_path(str(d), poll=True)
    ing.read_all()
    return ing.store


@pytest.fixture(scope="module")
def seven(seven_store):
    """The seven runs, in the demo's order."""
    by_name = {r.name: r for r in seven_store.runs.values()}
    return [by_name[n] for n in DEMO_NAMES]


def legend_cells(grid) -> List[List[Cell]]:
    """The legend's rows (those above the plot)."""
    return grid[: plot_rows(grid)[0]]


def named_in_legend(grid, name, color) -> bool:
    """``name`` (or an abbreviation of it with an ellipsis) is in the legend,
    after a swatch in ``color``."""
    from tui_monitor.tui.legend import MIN_NAME

    for row in legend_cells(grid):
        text = "".join(c.char for c in row)
        for i in range(len(row) - 3):
            if row[i].char == "━" and row[i + 1].char == "━" and color_of(row[i].style) == color:
                label = text[i + 3:].split("  ")[0]
                if label == name:
                    return True
                if "…" in label and len(label) >= MIN_NAME:
                    head, _, tail = label.partition("…")
                    if name.startswith(head) and name.endswith(tail):
                        return True
    return False


@pytest.mark.parametrize("width, height", [(72, 14), (80, 9), (80, 14), (120, 14)])
def test_seven_runs_each_named_in_its_colour(seven, width, height):
    """All seven demo runs compared: seven distinct colours, each run's lines
    in its colour (solid train; dashed val in a lighter tint of it), and every run named in the legend after a
    swatch of it, at 80 columns too (abbreviated, on two rows); the note is
    whole. A chart as short as the 80x24 screen gives it (9 rows) gives a row
    of its plot to the legend rather than leave a run out."""
    from tui_monitor.tui.chart import held_out_color
    from tui_monitor.tui.chartdata import RunColors

    colors = RunColors().assign([r.key for r in seven])
    spec = build_chart(seven, ViewState(metric="loss"), px_width=2 * (width - Y_AXIS_WIDTH), colors=colors)
    assert len(set(colors.values())) == 7
    for run in seven:
        own = [l for l in spec.lines if l.label and l.label.startswith(run.name + " ")]
        assert {(l.pattern, l.color) for l in own} == {("solid", colors[run.key]),
                                                       ("dash", held_out_color(colors[run.key]))}
    grid = cells(spec, w=width, h=height)
    assert len(plot_rows(grid)) >= 3
    for run in seven:
        assert named_in_legend(grid, run.name, color_of(Style.parse(colors[run.key]))), \
            (run.name, text_of(legend_cells(grid)))
    head = "".join(text_of(legend_cells(grid)))
    assert "ema 0.60" in head and "train" in head and "val" in head  # the split key and the note
    assert len(legend_cells(grid)) <= 2
    if width >= 120:
        assert all(run.name in head for run in seven)


def test_a_run_keeps_its_colour_as_others_are_selected(seven):
    from tui_monitor.tui.chartdata import RunColors

    rc = RunColors()
    a, b, c, d = (r.key for r in seven[:4])
    first = rc.assign([a])
    two = rc.assign([a, b])
    assert two[a] == first[a] and two[b] != two[a]
    three = rc.assign([a, b, c])
    assert three[a] == two[a] and three[b] == two[b] and len(set(three.values())) == 3
    without_a = rc.assign([b, c])  # unselecting a run changes no other run's colour
    assert without_a == {b: three[b], c: three[c]}
    again = rc.assign([b, c, d])
    assert again[d] == three[a] and rc.color(d) == three[a]  # the freed colour is reused
    assert len(set(rc.assign([r.key for r in seven] + [("x", i) for i in range(5)]).values())) == 12


def test_one_run_has_its_colour_and_a_split_key(trained):
    """One run: train in the run's colour, val in a lighter tint of it, told
    apart by line style too, and a key saying which style is which."""
    from tui_monitor.tui.chart import held_out_color

    spec = build_chart([trained["noisy-a"]], ViewState(metric="loss"), px_width=2 * 92)
    train = {l.color for l in spec.lines if l.pattern == "solid"}
    held_out = {l.color for l in spec.lines if l.pattern == "dash"}
    assert len(train) == 1 and held_out == {held_out_color(*train, alone=True)}
    head = text_of(legend_cells(cells(spec)))[0]
    assert "━━ train" in head and "╍╍ val" in head and "noisy-a" in head


def test_names_sharing_a_prefix_keep_what_tells_them_apart():
    from tui_monitor.tui.legend import abbreviate, shared_prefix

    names = ["ddp[rank %d]" % r for r in (0, 3, 17, 21)]
    k = shared_prefix(names)
    shown = [abbreviate(n, 8, k) for n in names]
    assert shown == ["ddp[r…0]", "ddp[r…3]", "ddp[…17]", "ddp[…21]"]
    assert abbreviate("opt_shallow-s0", 8) == "opt_sha…"


def test_the_runs_table_marks_each_selected_run_in_its_chart_colour(seven, seven_store):
    """Select three runs: each one's selection mark in the runs table is a
    swatch of the colour of its lines in the chart; unselecting the first
    leaves the others' colours as they were."""
    import asyncio

    from tui_helpers import until
    from tui_monitor.tui import MonitorApp
    from tui_monitor.tui.widgets import ChartView, RunsTable

    def marks(app):
        table = app.query_one(RunsTable)
        out = {}
        for i in range(table.row_count):
            mark = table.row_cells(i)[0]
            if mark.plain.startswith("●"):
                span = next(s for s in mark.spans if s.start == 0)
                out[table.row_keys[i]] = color_of(Style.parse(str(span.style)))
        return out

    def chart_colors(app):
        spec = app.query_one("#chart", ChartView).last_spec
        return {l.label.rsplit(" ", 1)[0]: color_of(Style.parse(l.color)) for l in spec.lines
                if l.label and l.label.endswith(" train")} if spec is not None else {}

    async def main():
        app = MonitorApp(seven_store, diagnoser=None, interval=3600, threaded=False)
        async with app.run_test(size=(120, 40)) as pilot:
            table = app.query_one(RunsTable)
            await until(pilot, lambda: table.row_count == 7, message="the seven runs listed")
            for key in ("space", "down", "space", "down", "down", "space"):
                await pilot.press(key)
            await until(pilot, lambda: len(marks(app)) == 3 and len(chart_colors(app)) == 3, message="3 drawn")
            await pilot.pause()
            by_key = {RunsTable.row_key(r): r.name for r in seven}
            first = marks(app)
            drawn = chart_colors(app)
            assert len(set(first.values())) == 3
            for key, color in first.items():
                assert drawn[by_key[key]] == color
            table.move_to_key(next(iter(first)))
            await pilot.press("space")  # unselect the first
            await until(pilot, lambda: len(marks(app)) == 2, message="2 selected")
            await pilot.pause()
            assert marks(app) == {k: c for k, c in first.items() if k != next(iter(first))}

    asyncio.run(main())



# -------------------------------------------------------------- the note


@pytest.mark.parametrize("width", [40, 56, 72, 80, 100])
def test_the_note_is_whole_next_to_a_long_legend(seven, width):
    """The note (which ranks are drawn, the smoothing) is on the first row,
    its end (ema) never cut, and every run is still named: the note wins over
    the legend's tail, and both fit."""
    from tui_monitor.tui.chartdata import RunColors

    colors = RunColors().assign([r.key for r in seven[:4]])
    spec = build_chart(seven[:4], ViewState(metric="loss"), px_width=2 * (width - Y_AXIS_WIDTH), colors=colors)
    spec.note = "12 of 24 ranks: highest, median, lowest  " + spec.note
    grid = cells(spec, w=width, h=16)
    first = text_of(grid)[0]
    assert first.rstrip().endswith("ema 0.60"), first
    if width >= 80:
        assert "12 of 24 ranks" in first
    for run in seven[:4]:
        assert named_in_legend(grid, run.name, color_of(Style.parse(colors[run.key]))), text_of(legend_cells(grid))


def test_a_log_axis_labels_its_ticks_in_one_form(trained):
    """Log y over the diverging run (0.1 .. 1e35): every label scientific and
    exact (1e-1 .. 1e30), not 10000 next to 1e5."""
    spec = build_chart([trained["explode"]], ViewState(metric="loss", smoothing=0.0, log_y=True), px_width=2 * 92)
    spec.y_range = (-1.5, 36.0)
    labels = y_labels(cells(spec, h=30))
    assert len(labels) >= 4 and all("e" in l for l in labels), labels
    values = [parse_label(l) for l in labels]
    assert all(math.log10(v) == pytest.approx(round(math.log10(v)), abs=1e-9) or str(l)[0] in "25"
               for v, l in zip(values, labels))
    small = build_chart([trained["clf"]], ViewState(metric="loss", smoothing=0.0, log_y=True), px_width=2 * 92)
    assert all("e" not in l for l in y_labels(cells(small, h=30)))


def test_a_log_axis_narrower_than_a_decade_still_has_labels(trained):
    """Log y over values between 0.5 and 0.6 (no 1, 2 or 5 in range): round
    values, exact, at least two of them."""
    from tui_monitor.tui.chart import ChartSpec, Line

    x = np.arange(100, dtype=float)
    spec = ChartSpec(lines=[Line(x, 0.55 + 0.05 * np.sin(x / 7), "#4fc3f7", label="loss")], log_y=True)
    for height in (9, 12, 24):
        labels = y_labels(cells(spec, h=height))
        assert len(labels) >= 2 and len(set(labels)) == len(labels), (height, labels)
        assert all(0.4 < parse_label(l) < 0.7 for l in labels), labels


def test_a_metric_no_run_logged_says_so_and_how_to_pick_another():
    """'no grad_norm values yet' over a finished run promised values that
    will never come."""
    from tui_helpers import run_records, synthetic_store

    store = synthetic_store()
    done = [store.get("aaaa1111"), store.get("bbbb2222")]
    assert build_chart(done[:1], ViewState(metric="acc"), 100).empty == \
        "linear-baseline logged no acc  (m: pick another metric)"
    assert build_chart(done, ViewState(metric="acc"), 100).empty == \
        "none of these runs logged acc  (m: pick another metric)"
    store.apply_many(run_records("live0001", "live", [1.0, 0.9], end=None), stream="live")
    live = store.get("live0001")
    assert build_chart([live], ViewState(metric="acc"), 100).empty == "no acc values yet  (m: pick another metric)"
