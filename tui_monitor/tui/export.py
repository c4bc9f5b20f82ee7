"""Exports: the chart's series as CSV, and text files (the SVG screenshot).

:func:`csv_rows` copies what it needs on the calling (UI) thread, cheaply
(array copies); :func:`write_csv` formats and writes it, meant for a worker
thread. Files are written next to the target and renamed into place, and
never overwrite an existing file.

Names in a CSV are stream data that other programs interpret: a terminal
showing the file (``cat``) runs the escape sequences in it, a spreadsheet
runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula
(``=cmd|' /C calc'!A0``). So every text cell has its control characters
(and bidi, invisible and separator characters) stripped, and one that then
starts with a formula character, a tab or a carriage return is prefixed with
``'`` (OWASP's advice for CSV injection); numbers are written by this module
and are numbers.
"""
from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any, List, Sequence, Tuple

import numpy as np

from ..safe_text import strip_controls
from .chartdata import series_for

__all__ = ["csv_rows", "csv_text", "write_csv", "write_text", "CSV_HEADER", "free_path"]

CSV_HEADER = ("run", "run_id", "rank", "split", "metric", "step", "time", "value")

Block = Tuple[str, str, int, str, str, np.ndarray, np.ndarray, np.ndarray]


def csv_rows(runs: Sequence[Any], metric: str) -> List[Block]:
    """Every point of ``metric`` (all splits) of ``runs``, as copied arrays."""
    out: List[Block] = []
    for run in runs:
        for split, s in series_for(run, metric):
            snap = s.snapshot()
            out.append((str(run.name), str(run.run_id), int(run.rank), split, metric,
                        np.array(snap.steps), np.array(snap.times), np.array(snap.values)))
    return out


#: What a spreadsheet takes as the start of a formula (OWASP: CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_text(value: object) -> str:
    """A text cell safe to open: control characters stripped, a formula
    neutralised with a leading ``'``."""
    text = strip_controls(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def _num(v: float) -> str:
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return repr(float(v))


def free_path(path: Path) -> Path:
    """``path``, or ``stem-2.ext``, ``stem-3.ext``... when it exists."""
    path = Path(path)
    if not path.exists():
        return path
    i = 2
    while True:
        p = path.with_name("%s-%d%s" % (path.stem, i, path.suffix))
        if not p.exists():
            return p
        i += 1


def _atomic_write(path: Path, fill) -> Path:
    path = free_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:
        fill(f)
    os.replace(tmp, path)
    return path


def write_csv(path: Path, blocks: Sequence[Block]) -> Path:
    """Write ``blocks`` (from :func:`csv_rows`) as CSV; returns the path used."""
    def fill(f) -> None:
        w = csv.writer(f)
        w.writerow(CSV_HEADER)
        for name, run_id, rank, split, metric, steps, times, values in blocks:
            text = tuple(map(csv_text, (name, run_id))), tuple(map(csv_text, (split, metric)))
            for st, t, v in zip(steps.tolist(), times.tolist(), values.tolist()):
                w.writerow((*text[0], rank, *text[1], st, _num(t), _num(v)))
    return _atomic_write(Path(path), fill)


def write_text(path: Path, text: str) -> Path:
    return _atomic_write(Path(path), lambda f: f.write(text))
