"""Colours: one per run, one per split, one per status and severity.

Hex colours; Rich downgrades them to 256 or 16 colours on terminals that
have fewer."""
from __future__ import annotations

__all__ = ["RUN_COLORS", "SPLIT_PATTERNS", "STATUS_STYLES", "SEVERITY_STYLES", "run_color",
           "BASELINE_COLOR", "GROUP_MARK", "BEST_COLOR", "ONSET_COLOR"]

RUN_COLORS = ("#4fc3f7", "#ffb74d", "#81c784", "#f48fb1", "#ba68c8", "#fff176", "#4db6ac", "#e57373",
              "#a1887f", "#90a4ae", "#aed581", "#7986cb")
SPLIT_PATTERNS = {"train": "solid", "val": "dash", "test": "dot"}
STATUS_STYLES = {"running": "bold #81c784", "finished": "#90a4ae", "crashed": "bold #e57373",
                 "interrupted": "#ffb74d", "silent": "bold #fff176", "stopped": "#b0a080"}
SEVERITY_STYLES = {"critical": "bold white on #c62828", "error": "bold white on #c62828",
                   "warning": "bold black on #ffb74d", "info": "black on #90caf9", "ok": "black on #81c784"}
BASELINE_COLOR = "#9e9e9e"
#: A fold group's or a job's row marks (▸ ▾, ● ◐ for its members selected): no
#: run's colour, since its members are drawn each in their own.
GROUP_MARK = "bold #e0e0e0"
BEST_COLOR = "#81c784"
ONSET_COLOR = "#ef5350"


def run_color(index: int) -> str:
    return RUN_COLORS[index % len(RUN_COLORS)]
