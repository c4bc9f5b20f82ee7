"""python -m tui_monitor.scenarios NAME --dir DIR [--seed S] [--fold K] [--delay SECONDS] [--steps N]
python -m tui_monitor.scenarios --list"""
from __future__ import annotations

import argparse
import sys

from . import SCENARIOS


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tui_monitor.scenarios",
                                 description="Train one labelled scenario (a tiny real PyTorch run) through the hook.")
    ap.add_argument("name", nargs="?", choices=list(SCENARIOS), metavar="NAME")
    ap.add_argument("--list", action="store_true", help="list the scenarios and their labels")
    ap.add_argument("--dir", default="runs", help="where the stream file goes (default: runs)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fold", type=int, default=0, help="for cv_fold: which fold (0-4)")
    ap.add_argument("--delay", type=float, default=0.0, help="seconds to sleep after each step, to watch live")
    ap.add_argument("--steps", type=int, default=None, help="override the number of steps")
    a = ap.parse_args(argv)
    if a.list or not a.name:
        for name, sc in SCENARIOS.items():
            label = sc.label + (f"/{sc.symptom}" if sc.symptom else "")
            print(f"{name:16} {label:32} {sc.description}")
        return 0 if a.list else 2
    from .train import run_scenario

    print(run_scenario(a.name, a.dir, a.seed, fold=a.fold, delay=a.delay, steps=a.steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
