"""Generate the labelled corpus of real (tiny) PyTorch runs.

    python demo/generate_corpus.py DIR [--seeds 0,1,2] [--workers 2] [--only NAME,...] [--families F,...]

Writes one stream per run and DIR/corpus.json with the expected labels (the
streams themselves say nothing of them). Then: `tui-monitor diagnose DIR`, or
`python bench/diagnosis.py --corpus DIR`. The scenarios themselves live in
the installed package (tui_monitor/scenarios), so `tui-monitor demo` works
without this folder.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tui_monitor.scenarios import FAMILIES  # noqa: E402
from tui_monitor.scenarios.corpus import generate  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--only", help="comma-separated scenario names")
    ap.add_argument("--families", help=f"comma-separated families ({', '.join(FAMILIES)})")
    a = ap.parse_args(argv)
    t0 = time.perf_counter()

    def progress(done: int, total: int) -> None:
        tty = sys.stderr.isatty()
        if tty or done == total or done % 20 == 0:
            print(f"\r{done}/{total} runs, {time.perf_counter() - t0:.0f} s", end="\n" if done == total or not tty
                  else "", file=sys.stderr, flush=True)
    entries = generate(a.dir, seeds=[int(s) for s in a.seeds.split(",")],
                       scenarios=a.only.split(",") if a.only else None, workers=a.workers,
                       families=a.families.split(",") if a.families else None, progress=progress)
    print(f"{len(entries)} runs in {time.perf_counter() - t0:.1f} s -> {a.dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
