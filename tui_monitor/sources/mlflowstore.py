"""MLflow's file store (``mlruns/``), read without MLflow.

``mlflow.log_metric`` with a ``file:`` tracking URI (the file store) writes::

    mlruns/<experiment id>/meta.yaml                 name: <experiment name>
    mlruns/<experiment id>/<run id>/meta.yaml        run_name, status, start_time, end_time
    mlruns/<experiment id>/<run id>/metrics/<name>   lines "<ms timestamp> <value> <step>"
    mlruns/<experiment id>/<run id>/params/<name>    the value
    mlruns/<experiment id>/<run id>/tags/<name>      the value (mlflow.runName, ...)

A run is its folder: each metric file is followed as it grows (a metric named
``train/loss`` is the file ``metrics/train/loss``) and all of them feed one
run, named ``<experiment>/<run name>``; ``params/`` is its config. The run's
``meta.yaml`` is followed too (read whole when it changes): its status says
how the run ended (``FINISHED``, ``FAILED``, ``KILLED``: finished, crashed,
interrupted) and when. The YAML is read with ``yaml.safe_load`` when PyYAML
is installed, else with a small parser of the plain mappings MLflow writes.
A line that is not ``timestamp value [step]`` is reported and skipped.
"""
from __future__ import annotations

import os
from typing import Any, Dict, List, Optional

from ..stream.files import open_regular
from .formats import FormatTail, LineSplitter, RecordReader, WholeFileTail, end_record, run_header
from .hparams import read_yaml, scalar

__all__ = ["MLflowRun", "MetaReader", "MetricFileReader", "is_metric_file", "make_tail", "owned_by", "run_folder"]

#: MLflow's RunStatus numbers (and names, as newer stores write) -> how the run ended.
_ENDED = {3: "finished", 4: "crashed", 5: "interrupted",
          "FINISHED": "finished", "FAILED": "crashed", "KILLED": "interrupted"}
_DEPTH = 8  # metric names nest this deep at most (metrics/a/b/c/...)


def _is_run(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, "meta.yaml")) and os.path.isdir(os.path.join(folder, "metrics"))


def run_folder(path: str) -> Optional[str]:
    """The MLflow run folder ``path`` is in (its ``meta.yaml`` or a file
    under its ``metrics/``, ``params/`` or ``tags/``), else None."""
    path = os.path.abspath(path)
    if os.path.basename(path) == "meta.yaml":
        folder = os.path.dirname(path)
        return folder if _is_run(folder) else None
    d = os.path.dirname(path)
    for _ in range(_DEPTH):
        parent = os.path.dirname(d)
        if os.path.basename(d) in ("metrics", "params", "tags") and _is_run(parent):
            return parent
        if parent == d:
            break
        d = parent
    return None


def is_metric_file(path: str) -> bool:
    """A metric file, or the meta.yaml, of an MLflow run."""
    folder = run_folder(path)
    if folder is None:
        return False
    rel = os.path.relpath(os.path.abspath(path), folder)
    return rel == "meta.yaml" or rel.split(os.sep, 1)[0] == "metrics"


def owned_by(path: str) -> Optional[str]:
    """"" for a file MLflow keeps beside a run's metrics and that is read
    with it (params, tags, the experiment's meta.yaml): not reported; None
    for any other file."""
    folder = run_folder(path)
    if folder is not None:
        return ""
    if os.path.basename(path) == "meta.yaml":
        folder = os.path.dirname(os.path.abspath(path))
        if os.path.basename(os.path.dirname(folder)) == "mlruns":
            return ""  # an experiment's meta.yaml
        try:
            if any(_is_run(os.path.join(folder, n)) for n in os.listdir(folder)):
                return ""
        except OSError:
            pass
    return None


def _ms(value: Any) -> Optional[float]:
    return value / 1000.0 if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class MLflowRun:
    """What the files of one MLflow run share: its header, the ``seq``
    count, whether it ended."""

    def __init__(self, folder: str):
        self.folder = folder
        self.key = ("mlflow", folder)
        self.seq = 0
        self.header_sent = False
        self.ended = False
        self.last_step = 0
        self._meta: Dict[str, Any] = {}
        self._meta_stamp: Any = None

    def next_seq(self) -> int:
        seq = self.seq
        self.seq += 1
        return seq

    def meta(self) -> Dict[str, Any]:
        """The run's meta.yaml, read again only when it changed."""
        path = os.path.join(self.folder, "meta.yaml")
        try:
            st = os.stat(path)
            stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        except OSError:
            stamp = None
        if stamp != self._meta_stamp:
            self._meta, self._meta_stamp = read_yaml(path), stamp
        return self._meta

    def header(self, t: Optional[float]) -> dict:
        meta = self.meta()
        experiment = read_yaml(os.path.join(os.path.dirname(self.folder), "meta.yaml")).get("name")
        run_id = str(meta.get("run_id") or meta.get("run_uuid") or os.path.basename(self.folder))
        name = meta.get("run_name") or _read_text(os.path.join(self.folder, "tags", "mlflow.runName")) or run_id
        full = f"{experiment}/{name}" if experiment else str(name)
        start = _ms(meta.get("start_time"))
        tags = {"source": "mlflow", "path": self.folder}
        if experiment:
            tags["experiment"] = str(experiment)
        self.header_sent = True
        return run_header(self.next_seq(), f"mlflow-{run_id}", full, start if start is not None else t,
                          self.params(), tags)

    def params(self) -> Dict[str, Any]:
        folder = os.path.join(self.folder, "params")
        out: Dict[str, Any] = {}
        for root, _, names in os.walk(folder):
            for n in sorted(names):
                path = os.path.join(root, n)
                text = _read_text(path)
                if text is not None:
                    out[os.path.relpath(path, folder).replace(os.sep, "/")] = scalar(text)
        return out

    def ending(self, mtime: float, now: float) -> List[dict]:
        """The ``end`` record once the run's meta.yaml says it ended (one
        that says it still runs but wrote nothing for a day is shown as
        stopped by the store)."""
        if self.ended or not self.header_sent:
            return []
        meta = self.meta()
        status = _ENDED.get(meta.get("status"))
        if status is not None:
            self.ended = True
            end = _ms(meta.get("end_time"))
            return [end_record(self.next_seq(), end if end is not None else mtime, status, self.last_step)]
        return []


def _read_text(path: str) -> Optional[str]:
    try:
        with open(open_regular(path), encoding="utf-8", errors="replace") as f:
            return f.read(1 << 16).strip()
    except OSError:
        return None


class MetricFileReader(RecordReader):
    """Lines of one metric file in, ``metrics`` records out."""

    def __init__(self, source: str, run: MLflowRun, metric: str):
        super().__init__(source)
        self.run, self.metric = run, metric
        self.lines = LineSplitter()

    def feed(self, chunk: bytes) -> List[dict]:
        out: List[dict] = []
        run = self.run
        for _, raw in self.lines.feed(chunk):
            self.line_number += 1
            if raw is None:
                self.problem(self.lines.too_long, "warning")
                continue
            parts = raw.split()
            if not parts:
                continue
            try:
                t = int(parts[0]) / 1000.0
                value = float(parts[1])
                step = int(parts[2]) if len(parts) > 2 else 0
            except (ValueError, IndexError):
                self.problem("not 'timestamp value step'; skipped", "warning")
                continue
            if not run.header_sent:
                out.append(run.header(t))
            run.last_step = max(run.last_step, step)
            out.append({"type": "metrics", "seq": run.next_seq(), "step": step, "time": t,
                        "values": {self.metric: value}})
        return out

    def at_end(self, mtime: float, now: float) -> List[dict]:
        return self.run.ending(mtime, now)


class MetaReader(RecordReader):
    """A run's ``meta.yaml``, read whole when it changes: the run's end."""

    def __init__(self, source: str, run: MLflowRun):
        super().__init__(source)
        self.run = run

    def feed(self, chunk: bytes) -> List[dict]:
        return []

    def at_end(self, mtime: float, now: float) -> List[dict]:
        return self.run.ending(mtime, now)


def make_tail(path: str, on_records, on_problem, context: Dict[str, Any], explicit: bool = False) -> FormatTail:
    folder = run_folder(path) or os.path.dirname(os.path.dirname(os.path.abspath(path)))
    runs = context.setdefault("mlflow", {})
    run = runs.get(folder)
    if run is None:
        run = runs[folder] = MLflowRun(folder)
    if os.path.basename(path) == "meta.yaml":
        return WholeFileTail(path, on_records, on_problem, lambda tail: MetaReader(tail.path, run), key=run.key)
    metric = os.path.relpath(os.path.abspath(path), os.path.join(folder, "metrics")).replace(os.sep, "/")
    return FormatTail(path, on_records, on_problem, lambda tail: MetricFileReader(tail.path, run, metric),
                      key=run.key)
