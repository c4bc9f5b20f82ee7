"""The README's pictures of the TUI, made from real runs.

    python docs/screenshots.py [--runs DIR] [--out docs/img] [--size 120x40]

Trains the demo's real small runs (``tui-monitor demo --no-tui --fast``)
and a real two-rank DDP job (``torchrun`` on ``tests/ranks/ddp_train.py``),
unless ``--runs`` names a folder that already holds them; then opens the
app headless through Textual's Pilot on those streams, with the real
diagnosis engine, presses the keys that show each main screen, saves the
screen as SVG and turns it into PNG. Run it again whenever the UI changes,
look at every picture at full size, and commit docs/img/*.png. Pictures are
made by hand, not in CI (``.ci/run`` neither runs nor needs this).

What it needs: torch (the ``demo`` extra) to train, ``rsvg-convert``
(Debian's ``librsvg2-bin``) and a monospace font, DejaVu Sans Mono
(``fonts-dejavu-core``), to draw the SVG; pillow (optional) to make the PNGs
small. rsvg-convert alone misdraws Textual's SVG: it ignores ``textLength``
(a run of text drifts out of its cells), drops leading non-breaking spaces
(columns shift left), and draws braille from a fallback font wider than a
cell (a chart spills into the next panel). So :func:`cell_svg` first places
every character in its own cell, and draws each braille pattern as the dots
it stands for, as a terminal does.
"""
from __future__ import annotations

import argparse
import asyncio
import html
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: (file stem, what it shows, keys pressed, size or None for --size)
SCREENS = (
    ("main", "the runs, the chart of the highlighted run, the findings", ("down",), None),
    ("compare", "every run selected, log y", ("a", "y"), None),
    ("finding-80x24", "f then enter at 80x24: a finding's evidence and advice", ("f", "enter"), (80, 24)),
    ("grads", "the gradient and system view of the too-deep plain net", ("@opt_deep-s0", "g"), None),
    ("job", "a two-rank DDP job: one line per rank, per-rank step times", ("@ddp", "enter", "j"), None),
    ("help", "every key", ("question_mark",), None),
)


#: Textual's SVG: one ``<text>`` per run of characters of one style.
_TEXT = re.compile(r'<text class="([^"]+)" x="([\d.]+)" y="([\d.]+)" textLength="([\d.]+)" '
                   r'clip-path="([^"]+)">(.*?)</text>', re.S)
#: Where Textual puts a row's baseline below the row's top, and a row's height (px).
_BASELINE, _ROW = 18.5, 24.4
#: Braille dots by bit: (column, row) in the 2x4 pattern.
_DOTS = ((0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (0, 3), (1, 3))
_FONT = "font-family: DejaVu Sans Mono, monospace;"


def _block(code: int) -> "tuple[float, float, float, float] | None":
    """The part of its cell a block element fills, as (left, top, width,
    height) fractions: full, left eighths, lower eighths, halves; None for
    any other character."""
    if code == 0x2588:
        return (0.0, 0.0, 1.0, 1.0)
    if 0x2589 <= code <= 0x258F:                 # ▉ .. ▏: 7/8 .. 1/8 from the left
        return (0.0, 0.0, (0x2590 - code) / 8, 1.0)
    if 0x2581 <= code <= 0x2587:                 # ▁ .. ▇: 1/8 .. 7/8 from the bottom
        h = (code - 0x2580) / 8
        return (0.0, 1.0 - h, 1.0, h)
    return {0x2580: (0.0, 0.0, 1.0, 0.5), 0x2590: (0.5, 0.0, 0.5, 1.0), 0x2594: (0.0, 0.0, 1.0, 0.125),
            0x2595: (0.875, 0.0, 0.125, 1.0)}.get(code)


def cell_svg(svg: str) -> str:
    """Textual's SVG with every character placed in its own cell (one
    ``<text>`` each; spaces left out), every braille pattern drawn as its
    dots and every block element (bars) as the part of the cell it fills,
    in the colour of its text: what a terminal shows, whatever the SVG
    renderer does with ``textLength``, spaces and fallback fonts."""
    from rich.cells import cell_len

    def cells(m: "re.Match[str]") -> str:
        cls, x, y, length, clip, content = m.groups()
        text = html.unescape(content)
        width = float(length) / max(1, cell_len(text))
        pos, top, out = float(x), float(y) - _BASELINE, []
        for ch in text:
            code = ord(ch)
            if 0x2800 < code <= 0x28FF:
                for bit, (col, row) in enumerate(_DOTS):
                    if (code - 0x2800) >> bit & 1:
                        out.append('<circle class="%s" cx="%.2f" cy="%.2f" r="%.2f"/>' % (
                            cls, pos + width * (0.28 + 0.44 * col), top + _ROW * (0.14 + 0.24 * row), width * 0.15))
            elif _block(code) is not None:
                left, up, w, h = _block(code)
                out.append('<rect class="%s" x="%.2f" y="%.2f" width="%.2f" height="%.2f" shape-rendering="crispEdges"/>'
                           % (cls, pos + left * width, top + up * _ROW, w * width, h * _ROW))
            elif not ch.isspace() and code != 0x2800:
                out.append('<text class="%s" x="%.2f" y="%s" clip-path="%s">%s</text>'
                           % (cls, pos, y, clip, html.escape(ch)))
            pos += width * cell_len(ch)
        return "".join(out)

    svg = re.sub(r"font-family: Fira Code, monospace;", _FONT, svg)
    return _TEXT.sub(cells, svg)


def train(directory: Path) -> None:
    """The demo's runs and a DDP job into ``directory`` (minutes on a laptop's CPU)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, "-m", "tui_monitor", "demo", "--no-tui", "--fast", "--dir", str(directory)],
                   env=env, check=True, stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--max_restarts", "0",
                    str(ROOT / "tests" / "ranks" / "ddp_train.py"), "--steps", "120", "--slow-rank", "1",
                    "--slow", "0.01", "--dir", str(directory), "--name", "ddp"],
                   env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def shoot(directory: Path, out: Path, size: "tuple[int, int]") -> list:
    from tui_monitor.sources import open_ingest
    from tui_monitor.tui import MonitorApp

    written = []
    for stem, _, keys, own_size in SCREENS:
        store, ingest = open_ingest([str(directory)], start=False)
        ingest.read_all()
        last = max((r.last_seen or 0.0) for r in store.runs.values())
        app = MonitorApp(store, ingest, threaded=False, clock=lambda last=last: last + 5.0)
        async with app.run_test(size=own_size or size) as pilot:
            await pilot.pause()
            for key in keys:
                if key.startswith("@"):  # highlight the run (or job) of that name
                    panel = app.runs_panel
                    for i in range(panel.row_count):
                        if panel.row_cells(i)[1].plain.split(" ")[0] == key[1:]:
                            panel.move_to_key(panel.row_keys[i])
                            break
                else:
                    await pilot.press(key)
                await pilot.pause()
            await pilot.pause(0.3)
            svg = app.export_screenshot(title="tui-monitor")
        ingest.stop()
        svg = cell_svg(svg)
        svg_path = out / (stem + ".svg")
        svg_path.write_text(svg)
        png = out / (stem + ".png")
        subprocess.run(["rsvg-convert", "--zoom", "0.75", str(svg_path), "-o", str(png)], check=True)
        svg_path.unlink()
        _shrink(png)
        written.append(png)
    return written


def _shrink(png: Path) -> None:
    """A terminal's few colours in a palette PNG: a quarter of the bytes.
    Octree keeps the colours of small areas (a legend's swatches, a line's
    dots); median cut into 64 colours made half the runs' colours one grey."""
    try:
        from PIL import Image
    except ImportError:  # pillow is optional: the PNG stays as rsvg wrote it
        return
    with Image.open(png) as im:
        small = im.convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE)
    small.save(png, optimize=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, help="a folder with the demo's runs and the ddp job (default: train them)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    ap.add_argument("--size", default="120x40", help="terminal size of the pictures (default 120x40)")
    a = ap.parse_args(argv)
    if shutil.which("rsvg-convert") is None:
        print("screenshots: rsvg-convert is needed (apt-get install librsvg2-bin)", file=sys.stderr)
        return 2
    font = subprocess.run(["fc-match", "DejaVu Sans Mono"], capture_output=True, text=True).stdout \
        if shutil.which("fc-match") else ""
    if "DejaVuSansMono" not in font:
        print("screenshots: DejaVu Sans Mono not found (apt-get install fonts-dejavu-core); the text will be "
              "drawn in another font", file=sys.stderr)
    w, h = (int(v) for v in a.size.split("x"))
    a.out.mkdir(parents=True, exist_ok=True)
    tmp = None
    runs = a.runs
    if runs is None:
        tmp = Path(tempfile.mkdtemp(prefix="tui-monitor-shots-"))
        runs = tmp
        print("training the demo's runs and a DDP job into %s ..." % runs, file=sys.stderr)
        train(runs)
    try:
        for png in asyncio.run(shoot(runs, a.out, (w, h))):
            print(png)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
