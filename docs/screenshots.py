"""The README's pictures of the TUI, made from real runs.

    python docs/screenshots.py [--runs DIR] [--out docs/img] [--size 120x40]

Trains the demo's real small runs (``tui-monitor demo --no-tui --fast``)
and a real two-rank DDP job (``torchrun`` on ``tests/ranks/ddp_train.py``),
unless ``--runs`` names a folder that already holds them; then opens the
app headless through Textual's Pilot on those streams, with the real
diagnosis engine, presses the keys that show each main screen, saves the
screen as SVG and turns it into PNG with ``rsvg-convert`` (Debian's
librsvg2-bin; it draws braille and box characters from fallback fonts).
Run it again whenever the UI changes, and commit docs/img/*.png.
"""
from __future__ import annotations

import argparse
import asyncio
import os
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
                            panel.move_to_key(panel._rows[i])
                            break
                else:
                    await pilot.press(key)
                await pilot.pause()
            await pilot.pause(0.3)
            svg = app.export_screenshot(title="tui-monitor")
        ingest.stop()
        # librsvg keeps runs of spaces only when told to
        svg = svg.replace('<svg class="rich-terminal"', '<svg xml:space="preserve" class="rich-terminal"', 1)
        svg_path = out / (stem + ".svg")
        svg_path.write_text(svg)
        png = out / (stem + ".png")
        subprocess.run(["rsvg-convert", "--zoom", "0.75", str(svg_path), "-o", str(png)], check=True)
        svg_path.unlink()
        _shrink(png)
        written.append(png)
    return written


def _shrink(png: Path) -> None:
    """A terminal's few colours in a palette PNG: a quarter of the bytes."""
    try:
        from PIL import Image
    except ImportError:  # pillow is optional: the PNG stays as rsvg wrote it
        return
    with Image.open(png) as im:
        small = im.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT)
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
