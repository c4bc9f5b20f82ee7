"""CSV metric logs, followed live as they grow.

Three layouts are recognised from the header row:

- **wide**, one row per logging call, a column per metric, empty cells for
  metrics not logged in that call: Lightning's ``CSVLogger``
  (``lightning_logs/version_N/metrics.csv``: ``epoch,step,train_loss,val_loss``),
  Keras' ``CSVLogger`` (``epoch,loss,val_loss,...``: the epoch is the step),
  and any CSV with a ``step`` / ``global_step`` / ``iteration`` / ``iter`` /
  ``epoch`` column;
- **long**, one value a row: ``step,metric,value`` (also ``name``/``key``/
  ``tag`` for ``metric``; optional ``split`` and ``time`` columns);
- **one series**, TensorBoard's "download CSV": ``Wall time,Step,Value``,
  named after the file.

A CSV with none of these (a data set that happens to sit in a run folder) is
not a metrics log: found in a folder it is left alone; named on the command
line it is reported once. Either way nothing more of it is read, though a
rewrite of its first line (into a metrics log) is still noticed. A line over
64 KiB is skipped and reported. Column names map to splits as stream keys do
(``val_loss`` -> val ``loss``). Rows carry no wall time unless a ``time`` /
``wall_time`` / ``timestamp`` column gives one; they get the file's
modification time (history: the last write; live: now).

Lightning rewrites the whole file when a metric appears that the header does
not have yet (``open(path, "w")`` with the wider header, then every row
again). Appends are read from the last offset as usual; before each read the
header line is compared with the file's bytes where it was read (after
any blank lines the file starts with), and a change, a
truncation or a replaced file makes the file be read again from the start,
with the rows already taken skipped (compared by their non-empty cells, which
a rewrite leaves as they were). A rewrite whose rows differ from those taken
is a new run in the same file (a Keras ``CSVLogger`` started again without
``append``): it gets a new header.

``hparams.yaml`` next to ``metrics.csv`` (Lightning) is the run's config, read
with ``yaml.safe_load`` when PyYAML is installed, else with a small parser of
the plain block mappings ``yaml.dump`` writes; a later change to it is sent
as a ``meta`` record.
"""
from __future__ import annotations

import csv
import os
import re
from typing import Any, Dict, List, Optional

from ..schema import split_metric
from .formats import FormatTail, LineSplitter, RecordReader, lightning_key, next_seq, run_header, run_id_for
from .hparams import INTEGER, HparamsWatch, parse_simple_yaml, read_hparams
from .naming import file_run_name

__all__ = ["CSVReader", "CSVTail", "HparamsWatch", "make_tail", "parse_simple_yaml", "read_hparams", "sniff",
           "why_not"]

_STEP_COLUMNS = ("step", "global_step", "trainer/global_step", "iteration", "iter", "it", "batch", "epoch")
_TIME_COLUMNS = ("time", "wall_time", "walltime", "wall time", "timestamp")
_METRIC_COLUMNS = ("metric", "name", "key", "tag")
#: The index column pandas writes (``DataFrame.to_csv()``): no name, or ``Unnamed: 0`` read back and written again.
_INDEX_COLUMNS = ("", "unnamed: 0")
_LOSS_LIKE = ("loss", "accuracy", "acc", "mae", "mse", "rmse", "perplexity", "ppl", "error")


# ---------------------------------------------------------------- layouts

def _norm(col: str) -> str:
    return col.strip().lower()


class _Layout:
    def __init__(self, columns: List[str], stem: str):
        self.columns = columns
        low = [_norm(c) for c in columns]
        self.kind = ""
        self.step = self.time = self.metric = self.value = self.split = None
        self.series_name = stem
        for name in _TIME_COLUMNS:
            if name in low:
                self.time = low.index(name)
                break
        for name in _STEP_COLUMNS:
            if name in low:
                self.step = low.index(name)
                break
        metric = next((low.index(n) for n in _METRIC_COLUMNS if n in low), None)
        if "value" in low and metric is not None:
            self.kind, self.metric, self.value = "long", metric, low.index("value")
            self.split = low.index("split") if "split" in low else None
        elif "value" in low and self.step is not None and len(columns) <= 3:
            self.kind, self.value = "series", low.index("value")
        elif self.step is not None:
            self.kind = "wide"
        elif any(_loss_like(c) for c in low):
            # pd.DataFrame(history.history).to_csv(...): no step column; the
            # unnamed index column counts the epochs, or else the row does.
            self.kind = "wide"
            if low and low[0] in _INDEX_COLUMNS:
                self.step = 0
        skip = {self.step, self.time}
        # Lightning's CSVLogger writes both epoch and step: its on_step/on_epoch suffixes are read as it means them
        rename = lightning_key if "epoch" in low and "step" in low else (lambda c: c)
        self.metrics = [(i, rename(c.strip())) for i, c in enumerate(columns) if i not in skip and c.strip()]


def _loss_like(column: str) -> bool:
    """A column that holds a training metric, as named by Keras' history,
    pandas and most loops: ``loss``, ``val_loss``, ``train/box_loss``, ``acc``."""
    split, metric = split_metric(column.strip().lower())
    return "loss" in metric or metric in _LOSS_LIKE


def _columns(line: bytes) -> List[str]:
    text = line.decode("utf-8", "replace").lstrip("\ufeff").rstrip("\r")
    try:
        return next(csv.reader([text]))
    except (csv.Error, StopIteration):
        return []


_NAME_CELL = re.compile(r"[^\W\d]|\Z")  # a column name starts with a letter or _ (or is empty: an index)


def sniff(head: bytes, path: str = "") -> bool:
    """Whether ``head`` (a file's first bytes) is a metrics CSV: a header of
    names with a step, epoch or iteration column (or a loss-like one, the
    row counting the epochs), then rows of numbers. A header alone decides
    only when it has a step column."""
    lines = [ln for ln in head.split(b"\n") if ln.strip()]
    if not lines or len(lines) == 1 and not head.endswith(b"\n"):
        return False
    columns = _columns(lines[0])
    if len(columns) < 2 or not all(_NAME_CELL.match(c.strip()) for c in columns):
        return False
    layout = _Layout(columns, "")
    if not layout.kind:
        return False
    if len(lines) < 2 or (len(lines) == 2 and not head.endswith(b"\n")):
        return any(_norm(c) in _STEP_COLUMNS for c in columns)
    cells = _columns(lines[1])
    if len(cells) != len(columns):
        return False
    numeric = sum(1 for c in cells if not c.strip() or _number(c) is not None)
    return numeric * 2 > len(cells) or layout.kind == "long"


def why_not(head: bytes) -> str:
    """Why a ``.csv`` is not read as a metrics log."""
    lines = [ln for ln in head.split(b"\n") if ln.strip()]
    if not lines:
        return "empty so far"
    return "a CSV without a step, epoch or loss-like column: a data set?"


def _number(cell: str) -> Optional[Any]:
    s = cell.strip()
    if not s:
        return None
    if INTEGER.match(s):
        return int(s)
    try:
        return float(s)
    except ValueError:
        return None


# ---------------------------------------------------------------- the reader

class CSVReader(RecordReader):
    """Lines of one CSV file in, the run's records out. ``state`` (kept by
    the tail across restarts) remembers the rows taken and the run."""

    def __init__(self, tail: "CSVTail", explicit: bool):
        super().__init__(tail.path)
        self.tail = tail
        self.explicit = explicit
        self.state = tail.state
        self.state.setdefault("sigs", [])
        self.state.setdefault("generation", 0)
        self.state.setdefault("seq", 0)
        self.state.setdefault("hparams", None)
        self.lines = LineSplitter()
        self.header_line: Optional[bytes] = None
        self.header_offset = 0  # where the header line starts (after any blank lines)
        self.layout: Optional[_Layout] = None
        self.ignored = False  # not a metrics log: nothing more of it is read
        self.row = 0  # data rows read by this reader

    @property
    def done(self) -> bool:
        return self.ignored

    @property
    def pending(self) -> bytes:
        """The unfinished last line (at most :data:`.formats.MAX_LINE` bytes)."""
        return self.lines.pending

    # -- bytes in ---------------------------------------------------------------

    def feed(self, chunk: bytes) -> List[dict]:
        lines = self.lines.feed(chunk) if not self.ignored else []
        if not lines:
            return []
        out: List[dict] = []
        now = None
        for at, raw in lines:
            self.line_number += 1
            if raw is None:
                if self.header_line is None:
                    # No header to read (a binary file named .csv): its first
                    # bytes stand in for one, so a rewrite is still noticed.
                    self.header_line, self.header_offset = self.lines.first_skipped, at
                    self._ignore(f"its first line is over {self.lines.max_line} bytes")
                    return []
                self.problem(self.lines.too_long, "warning")
                continue
            if self.header_line is None:
                if not raw.strip():
                    continue
                self.header_line, self.header_offset = raw + b"\n", at
                if not self._header(raw):
                    return []
                continue
            if not raw.strip():
                continue
            try:
                cells = next(csv.reader([raw.decode("utf-8", "replace").rstrip("\r")]))
            except (csv.Error, StopIteration) as e:
                self.problem(f"not a CSV row: {e}", "warning")
                continue
            if now is None:
                now = self.tail.mtime()
            rec = self._row(cells, now, out)
            if rec is not None:
                out.append(rec)
        if out or self.state.get("header_sent"):
            self._hparams(out, now if now is not None else self.tail.mtime())
        return out

    def _header(self, raw: bytes) -> bool:
        text = raw.decode("utf-8", "replace").lstrip("\ufeff").rstrip("\r")
        try:
            columns = next(csv.reader([text]))
        except (csv.Error, StopIteration):
            columns = []
        stem = os.path.splitext(os.path.basename(self.source))[0]
        layout = _Layout(columns, stem)
        if not layout.kind:
            self._ignore("no step, epoch or iteration column, no loss-like column, and not step,metric,value")
            return False
        self.layout = layout
        return True

    def _ignore(self, why: str) -> None:
        """Not a metrics log: stop reading it (reported when it was named)."""
        self.ignored = True
        if self.explicit:
            self.problem(f"not a metrics CSV ({why}); not read", "warning")

    # -- rows -------------------------------------------------------------------

    def _row(self, cells: List[str], now: float, out: List[dict]) -> Optional[dict]:
        lay = self.layout
        assert lay is not None
        sig = tuple(sorted((lay.columns[i].strip(), c) for i, c in enumerate(cells) if c.strip() and i < len(lay.columns)))
        sigs = self.state["sigs"]
        index = self.row
        self.row += 1
        if index < len(sigs):
            if sigs[index] == sig:
                return None  # taken before a rewrite
            # Different rows at the same place: a new run in this file.
            self.problem("file was rewritten with different rows; reading it as a new run", "warning")
            self.state["generation"] += 1
            self.state["header_sent"] = False
            self.state["seq"] = 0
            del sigs[index:]
        sigs.append(sig)
        step = None
        if lay.step is not None and lay.step < len(cells):
            s = _number(cells[lay.step])
            step = int(s) if isinstance(s, (int, float)) and s == s and abs(s) != float("inf") else None
        if step is None:
            step = index
        t = now
        if lay.time is not None and lay.time < len(cells):
            tv = _number(cells[lay.time])
            if isinstance(tv, (int, float)) and tv == tv:
                t = float(tv)
        split = None
        if lay.kind == "wide":
            values = {}
            for i, name in lay.metrics:
                if i < len(cells):
                    v = _number(cells[i])
                    if v is not None:
                        values[name] = v
        elif lay.kind == "series":
            v = _number(cells[lay.value]) if lay.value < len(cells) else None
            values = {lay.series_name: v} if v is not None else {}
        else:
            name = cells[lay.metric].strip() if lay.metric < len(cells) else ""
            v = _number(cells[lay.value]) if lay.value < len(cells) else None
            values = {name: v} if name and v is not None else {}
            if lay.split is not None and lay.split < len(cells) and cells[lay.split].strip():
                split = cells[lay.split].strip()
            prev = out[-1] if out else None
            if (values and prev is not None and prev.get("type") == "metrics" and prev["step"] == step
                    and prev.get("split") == split and name not in prev["values"]):
                prev["values"].update(values)
                return None
        if not values:
            return None
        if not self.state.get("header_sent"):
            out.append(self._run_header(t))
        self.state["last_step"] = step
        rec = {"type": "metrics", "seq": next_seq(self.state), "step": step, "time": t, "values": values}
        if split:
            rec["split"] = split
        return rec

    def _run_header(self, t: float) -> dict:
        folder = os.path.dirname(os.path.abspath(self.source))
        name = file_run_name(self.source)
        gen = self.state["generation"]
        run_id = run_id_for("csv", self.source) + (f"-{gen}" if gen else "")
        watch = self.state["hparams"] = HparamsWatch(folder)
        watch.changed()
        self.state["header_sent"] = True
        return run_header(next_seq(self.state), run_id, name, t, watch.config,
                          {"source": "csv", "path": os.path.abspath(self.source)})

    def _hparams(self, out: List[dict], now: float) -> None:
        watch = self.state.get("hparams")
        if watch is not None and watch.changed():
            out.append({"type": "meta", "seq": next_seq(self.state), "time": now, "config": dict(watch.config)})


class CSVTail(FormatTail):
    """A CSV file's tail: also starts over when the header line changed
    under it (Lightning's rewrite in place; a file that was not a metrics
    log rewritten into one). The header is looked for where it was read
    (after any blank lines the file starts with)."""

    def _check_in_place(self) -> None:
        reader = self.reader
        if isinstance(reader, CSVReader) and reader.header_line is not None:
            try:
                head = os.pread(self.fd, len(reader.header_line), reader.header_offset)
            except OSError:
                head = reader.header_line
            if head != reader.header_line:
                self._restart()


def make_tail(path: str, on_records, on_problem, context: Dict[str, Any], explicit: bool = False) -> CSVTail:
    # One key for the file whatever its restarts: a rewrite goes on feeding the same run.
    return CSVTail(path, on_records, on_problem, lambda tail: CSVReader(tail, explicit),
                   key=("csv", os.path.abspath(path)))
