"""``tui-monitor demo``: train small real runs in the background and watch them."""
from __future__ import annotations

import argparse
import sys

from ..safe_text import clean
from . import PROG


def run(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    from ..scenarios import SCENARIOS

    names = [n.strip() for n in args.runs.split(",") if n.strip()] if args.runs else None
    unknown = [n for n in names or () if n not in SCENARIOS]
    if unknown:
        print(f"{PROG} demo: no scenario {clean(unknown[0])!r}; known: {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    return run_demo(args.dir, tui=not args.no_tui, delay=0.0 if args.fast else max(0.0, args.delay), seed=args.seed,
                    scenarios=names)
