"""The store: every run, fed with decoded stream records (the record
handlers here, the bulk path of ``apply_many`` in :mod:`.bulk`).

Threads: one thread (the ingest side) calls :meth:`Store.apply`,
:meth:`Store.apply_many` and :meth:`Store.mark_silent`; any other thread may
read. Containers that readers iterate (``Store.runs``, ``Run.series``,
``Run.grads``, ``Run.text``) are :class:`.growing.GrowingMap` s: an entry is
added in O(1) and a reader iterating one while it grows is never disturbed
(it used to be a new dict copied at every entry: quadratic in the names).
Series are safe to read while they grow (see :mod:`.series`). Scalars on a run
(``status``, ``last_seen``, ...) are plain attributes, each read atomically.
The ``version`` counters only ever increase, and are bumped after the data
they announce is in place: a reader that saw version V and then reads the data
sees at least what V announced.
"""

from __future__ import annotations

import itertools
import math
import time as _time
from typing import Any, Callable, List, Optional, Tuple

from ..ranges import INT64_MAX as _INT64_MAX, INT64_MIN as _INT64_MIN, TIME_MAX as _TIME_MAX, TIME_MIN as _TIME_MIN
from .bulk import BulkApply, PointBatch
from .growing import GrowingMap
from .rows import as_row, first_free, kept_apart
from .run import UNENDED, Run, RunKey

__all__ = ["Store", "default_splitter"]

Splitter = Callable[[str, Optional[str]], Tuple[str, str]]

_NONFINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}
_GRAD_FIELDS = ("grad", "weight", "zero_rows")
_TEXT_KEEP = 1000  # text values kept per key
_QUIET = ("silent", "stopped")  # statuses a record arriving turns back to running


def default_splitter(key: str, split: Optional[str]) -> Tuple[str, str]:
    """Placeholder for ``schema.split_metric``: the record's split, else
    ``train``; the key is the metric name as it is."""
    return (split or "train"), key


def _time_of(record: dict, default: float = math.nan) -> float:
    """The record's ``time`` as a float, or ``default`` when it has none
    (or one no clock can show: 1e300, inf, NaN). The stream reader checks
    the range at decode; the other readers' dicts come here unchecked."""
    t = record.get("time")
    if isinstance(t, (int, float)) and not isinstance(t, bool) and _TIME_MIN <= t <= _TIME_MAX:
        return float(t)
    return default


def _int64(step: Any) -> Optional[int]:
    """``step`` when it is an integer the series can keep (int64), else None."""
    if isinstance(step, float) and step.is_integer():
        step = int(step)
    if isinstance(step, int) and not isinstance(step, bool) and _INT64_MIN <= step <= _INT64_MAX:
        return step
    return None


def _time_or_last(run: Any, record: dict) -> float:
    """The record's time, else the run's latest (a record without one
    happened no earlier than what came before it)."""
    return _time_of(record, run.last_seen if run.last_seen is not None else math.nan)


def _writer(pid: Any, host: Any) -> str:
    """A writer, as a problem names it."""
    who = f"pid {pid}" if pid else "a writer that gave no pid"
    return f"{who} on {str(host)[:100]}" if host else who


def _number(v: Any) -> Optional[float]:
    """A metric value as a float, or None when it is not a number."""
    if type(v) is float:
        return v
    if isinstance(v, (int, float)):  # int, bool, numpy scalars
        try:
            return float(v)
        except OverflowError:
            return math.inf if v > 0 else -math.inf
    if isinstance(v, str):
        return _NONFINITE.get(v)
    return None



class Store(BulkApply):
    """All runs, keyed by ``(run_id, rank)``, fed with decoded records.

    Records are plain dicts shaped like the stream format's (``type`` ``run``,
    ``meta``, ``metrics``, ``grads``, ``heartbeat``, ``dropped``, ``end``),
    with metric values already numbers (the strings ``"NaN"``, ``"Infinity"``,
    ``"-Infinity"`` are accepted too). Only the header carries the run's
    identity, so records are applied per *stream*: pass the same ``stream``
    token (a path, a connection id) for every record of one stream; the
    header binds it to its run. Records of a stream whose header has not come
    go to a run named after the stream (``(str(stream), 0)``), which the
    header then renames when that key is free.

    Never raises on a bad record: it is counted on the run (``problems``,
    ``unknown``) and skipped. Records with a ``seq`` at or below the highest
    already applied for the run are duplicates and skipped; a jump counts the
    missing records. A new header (``seq`` 0 with another ``start`` or
    ``pid``) for an existing key is a restart: the run resumes (status back
    to running, ``restarts`` + 1, seq numbering starts again) and its series
    carry on (steps may go back; see :class:`Series`).

    A header from another writer (another ``start`` or ``pid``) whose run id
    and rank a writer still at it holds (its process runs, or its records go
    on after the newcomer began) goes to a row of its own, ``RUN_ID~2``, as
    :mod:`.rows` says; ``report(stream, message)`` is told why. The listener
    decides that for its streams itself (``rows_decided=True``).

    ``splitter(key, split) -> (split, metric)`` maps a metric key and the
    record's split (or None) to the series it feeds; results are cached.
    ``clock`` gives ``last_arrival``. ``writer_alive(run)`` says whether the
    process that writes ``run`` still runs (None: cannot tell, e.g. on
    another host); ``silent_after`` is how long a writer that cannot be
    seen may be quiet and still hold its row.
    """

    def __init__(
        self,
        splitter: Optional[Splitter] = None,
        clock: Callable[[], float] = _time.time,
        writer_alive: Optional[Callable[[Run], Optional[bool]]] = None,
        report: Optional[Callable[[Any, str], None]] = None,
        silent_after: float = 60.0,
    ) -> None:
        self.splitter = splitter or default_splitter
        self.clock = clock
        self.writer_alive = writer_alive
        self.report = report
        self.silent_after = silent_after
        self._rows_decided = False  # set by apply/apply_many for the records they apply
        self.runs = GrowingMap()  # type: Mapping[RunKey, Run]
        self.version = 0
        self._streams = {}  # type: Dict[Any, Run]
        self._split_cache = {}  # type: Dict[Tuple[str, Optional[str]], Tuple[str, str]]
        self._versions = itertools.count(1)

    # -- reading ------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self):
        return iter(list(self.runs.values()))

    def __getitem__(self, key: RunKey) -> Run:
        return self.runs[key]

    def get(self, run_id: str, rank: int = 0) -> Optional[Run]:
        return self.runs.get((run_id, rank))

    # -- writing --------------------------------------------------------------

    def _bump(self, run: Run) -> None:
        v = next(self._versions)
        run.version = v
        self.version = v

    def _add_run(self, run: Run) -> None:
        self.runs[run.key] = run

    def _run_for(self, record: dict, stream: Any) -> Run:
        run = self._streams.get(stream)
        if run is None:
            run = Run(str(stream), 0)
            existing = self.runs.get(run.key)
            if existing is not None:
                run = existing
            else:
                self._add_run(run)
            self._streams[stream] = run
        return run

    def _split(self, key: str, split: Optional[str]) -> Tuple[str, str]:
        ck = (key, split)
        r = self._split_cache.get(ck)
        if r is None:
            r = self.splitter(key, split)
            r = (str(r[0]), str(r[1]))
            if len(self._split_cache) < 100_000:
                self._split_cache[ck] = r
        return r

    def _seen(self, run: Run, record: dict, now: float) -> bool:
        """Seq and liveness bookkeeping; False for a duplicate to skip."""
        seq = record.get("seq")
        if type(seq) is int:
            if seq <= run.seq:
                run.duplicates += 1
                return False
            if seq > run.seq + 1:
                run.missing += seq - run.seq - 1
            run.seq = seq
        t = _time_of(record)
        if t == t and (run.last_seen is None or t > run.last_seen):  # t == t: not NaN
            run.last_seen = t
        run.last_arrival = now
        if run.status in _QUIET:
            run.status = "running"
        return True

    def apply(self, record: dict, stream: Any = None, rows_decided: bool = False) -> Optional[Run]:
        """Apply one record of ``stream``; returns the run it changed (None
        when nothing changed: a duplicate). ``rows_decided``: a header's run
        id is its row, as its source decided (the listener's streams)."""
        batch = PointBatch()
        self._rows_decided = rows_decided
        try:
            run = self._apply(record, stream, batch, self.clock())
        finally:
            self._rows_decided = False
        self._flush(batch)
        return run

    def mark_silent(self, now: Optional[float] = None, after: float = 60.0) -> List[Run]:
        """Turn runs with no end record and no record for ``after`` seconds
        (by the record times, against ``now``, default the store clock) to
        ``silent``, and those with none for a day (:data:`.run.STOPPED_AFTER`)
        to ``stopped`` (a record arriving turns them back to running). Call
        from the ingest thread, as the clock moves. Returns the runs changed."""
        if now is None:
            now = self.clock()
        out = []
        for run in list(self.runs.values()):
            if run.status in UNENDED:
                status = run.status_at(now, after)
                if status != run.status and status != "running":
                    run.status = status
                    self._bump(run)
                    out.append(run)
        return out

    def mark_gone(self, run: Run, message: str) -> None:
        """End a running stream whose process is known to be gone without an
        ``end`` record (killed, out of memory): status ``crashed``. Call from
        the ingest thread."""
        if run.end is not None or run.status not in UNENDED:
            return
        run.end = {"type": "end", "status": "crashed", "time": run.last_seen,
                   "error": {"type": "ProcessGone", "message": message}, "inferred": True}
        run.status = "crashed"
        self._bump(run)

    # -- record handlers --------------------------------------------------------

    def _apply(self, record: Any, stream: Any, batch: PointBatch, now: float) -> Optional[Run]:
        if not isinstance(record, dict):
            run = self._run_for({}, stream)
            run.problem("not an object: %.80r" % (record,))
            self._bump(run)
            return run
        rtype = record.get("type")
        if rtype == "run":
            return self._on_header(record, stream, now)
        run = self._run_for(record, stream)
        if not self._seen(run, record, now):
            return None
        try:
            if rtype == "metrics":
                self._on_metrics(run, record, batch)
            elif rtype == "grads":
                self._on_grads(run, record, batch)
            elif rtype == "heartbeat":
                run.heartbeat = dict(record)
                self._step_from(run, record)
                ll = record.get("last_log")
                if isinstance(ll, (int, float)):
                    run.last_log = float(ll)
            elif rtype == "system":
                self._on_system(run, record, batch)
            elif rtype == "meta":
                self._on_meta(run, record)
            elif rtype == "dropped":
                self._on_dropped(run, record)
            elif rtype == "end":
                self._on_end(run, record)
            else:
                name = str(rtype)[:64]
                run.unknown = {**run.unknown, name: run.unknown.get(name, 0) + 1}
        except Exception as exc:  # a malformed record must not stop ingest
            run.problem("%s record: %s: %s" % (rtype, type(exc).__name__, exc))
        if rtype not in ("metrics", "grads"):
            self._bump(run)
        return run

    def _step_from(self, run: Run, record: dict) -> Optional[int]:
        # the series keep steps as int64: a larger one (a digit string, 1e30) is no step
        step = _int64(record.get("step"))
        if step is not None:
            run.last_step = step
        return step

    def _on_header(self, record: dict, stream: Any, now: float) -> Run:
        run_id = record.get("run_id")
        rank = record.get("rank", 0)
        if not isinstance(rank, int) or isinstance(rank, bool):
            rank = 0
        prior = self._streams.get(stream)
        if not isinstance(run_id, str) or not run_id:
            run = prior or self._run_for(record, stream)
            run.problem("run record without a run_id")
            self._bump(run)
            return run
        if not self._rows_decided:
            row = self._row_for(record, stream, run_id, rank, prior)
            if row != run_id:
                record = as_row(dict(record), run_id, row)
                run_id = row
        key = (run_id, rank)
        run = self.runs.get(key)
        if run is None:
            if prior is not None and not prior.has_header and prior.key != key:
                # The stream's records came first: rename its run.
                self.runs.discard(prior.key)
                if prior.name == prior.run_id:  # still named after the stream token
                    prior.name = run_id
                prior.run_id, prior.rank = key
                self.runs[key] = prior
                run = prior
            else:
                run = Run(run_id, rank)
                self._add_run(run)
        elif run.has_header:
            same = record.get("start") == run.start and record.get("pid") == run.pid
            if same and record.get("seq", 0) <= run.seq:
                # The same header again (a second reader, a resend).
                run.duplicates += 1
                self._streams[stream] = run
                return run
            # A new process for this key: a resumed run.
            run.restarts += 1
            run.seq = -1
            run.status = "running"
            run.end = None
        self._streams[stream] = run
        self._seen(run, record, now)
        header = {k: v for k, v in record.items() if k not in ("type", "seq")}
        run.header = header
        run.has_header = True
        self._header_fields(run, header)
        start = header.get("start")
        if isinstance(start, (int, float)) and (run.last_seen is None or start > run.last_seen):
            run.last_seen = float(start)
        self._bump(run)
        return run

    def _row_for(self, record: dict, stream: Any, run_id: str, rank: int, prior: Optional[Run]) -> str:
        """The row a header naming ``run_id`` and ``rank`` feeds: the one
        its stream feeds already (a writer started again in the same file),
        the one its writer feeds through another file (a deleted file
        started again), else the first that no other writer still holds
        (:meth:`_held`): a requeued job continues its run, a second job
        under the same id gets ``run_id~2``."""
        if prior is not None and prior.has_header and prior.rank == rank and \
                prior.header.get("sent_run_id", prior.run_id) == run_id:
            return prior.run_id
        start, pid, host = record.get("start"), record.get("pid"), record.get("host")

        def holder(row: str) -> Optional[Run]:
            run = self.runs.get((row, rank))
            if run is None or not run.has_header or run is prior:
                return None
            if (run.start, run.pid, run.host) == (start, pid, host):
                return None  # the same writer, through another file
            return run if self._held(run, start) else None

        row, held_by = first_free(run_id, holder)
        if held_by is not None and self.report is not None:
            self.report(stream, kept_apart(run_id, rank, _writer(held_by.pid, held_by.host), _writer(pid, host),
                                           "writes under the same run id at the same time", row))
        return row

    def _held(self, run: Run, start: Any) -> bool:
        """Whether the writer of ``run`` still holds its row against a new
        writer that began at ``start``: its process runs, or it wrote after
        the newcomer began (they ran together), or, when its process cannot
        be seen and it has not ended, it was heard within ``silent_after``
        of that. An ended run whose records stop before the newcomer began
        (a requeued job) holds nothing."""
        ended = run.status not in UNENDED
        alive = None if ended or self.writer_alive is None else self.writer_alive(run)
        if alive:
            return True
        last = run.last_seen
        if not isinstance(start, (int, float)) or isinstance(start, bool) or last is None:
            return not ended and alive is None
        grace = self.silent_after if alive is None and not ended else 0.0
        return last > start - grace

    def _header_fields(self, run: Run, h: dict) -> None:
        name = h.get("name")
        if name is not None:
            run.name = str(name)
        for attr in ("start", "host", "pid"):
            if attr in h:
                setattr(run, attr, h[attr])
        ws = h.get("world_size")
        if isinstance(ws, int) and not isinstance(ws, bool):
            run.world_size = ws
        for attr in ("config", "model", "tags"):
            v = h.get(attr)
            setattr(run, attr, dict(v) if isinstance(v, dict) else ({} if v is None else {"value": v}))

    def _on_meta(self, run: Run, record: dict) -> None:
        header = dict(run.header)
        for k, v in record.items():
            if k in ("type", "seq", "time"):
                continue
            old = header.get(k)
            if isinstance(old, dict) and isinstance(v, dict):
                header[k] = {**old, **v}
            else:
                header[k] = v
        run.header = header
        self._header_fields(run, header)

    def _on_dropped(self, run: Run, record: dict) -> None:
        count = record.get("count")
        if isinstance(count, int) and count > run.dropped:
            run.dropped = count
        reasons = record.get("reasons")
        if isinstance(reasons, dict):
            merged = dict(run.dropped_reasons)
            for k, v in reasons.items():
                if isinstance(v, int):
                    merged[str(k)] = max(v, merged.get(str(k), 0))
            run.dropped_reasons = merged

    def _on_end(self, run: Run, record: dict) -> None:
        status = record.get("status")
        if status not in ("finished", "crashed", "interrupted"):
            run.problem("end record with status %.40r" % (status,))
            status = "crashed" if record.get("error") else "finished"
        run.end = dict(record)
        dropped = record.get("dropped")
        if isinstance(dropped, int) and dropped > run.dropped:
            run.dropped = dropped
        self._step_from(run, record)
        run.status = status

    def _required_step(self, run: Run, record: dict) -> int:
        """The record's step; without one, a problem and the run's last step."""
        step = self._step_from(run, record)
        if step is None:
            run.problem("%s record without an integer step" % record.get("type"))
            step = run.last_step if run.last_step is not None else 0
        return step

    def _on_metrics(self, run: Run, record: dict, batch: PointBatch) -> None:
        step = self._required_step(run, record)
        t = _time_or_last(run, record)
        run.last_log = t
        split = record.get("split")
        if split is not None and not isinstance(split, str):
            split = str(split)
        values = record.get("values")
        points = batch.points
        if isinstance(values, dict):
            split_of = self._split
            for name, raw in values.items():
                v = _number(raw)
                if v is None:
                    run.problem("metric %.60r: not a number: %.40r" % (name, raw))
                    continue
                bk = (run, 0, split_of(str(name), split))
                p = points.get(bk)
                if p is None:
                    p = points[bk] = ([], [], [])
                p[0].append(step)
                p[1].append(t)
                p[2].append(v)
        elif values is not None:
            run.problem("metrics record: values is not an object")
        text = record.get("text")
        if isinstance(text, dict) and text:
            kept = run.text
            for name, s in text.items():
                key = self._split(str(name), split)
                lst = kept.get(key, [])
                if len(lst) >= _TEXT_KEEP:
                    lst = lst[-(_TEXT_KEEP - 1) :]
                kept[key] = lst + [(step, t, str(s))]  # a new list: a reader keeps the one it has
        batch.points.setdefault((run, 3, None), ([], [], []))

    def _on_system(self, run: Run, record: dict, batch: PointBatch) -> None:
        """Resource samples become series ``("system", field)``: not a split
        of the method, so the metric picker leaves them out."""
        step = _int64(record.get("step"))
        if step is None:
            step = run.last_step if run.last_step is not None else 0
        t = _time_or_last(run, record)
        values = record.get("values")
        if not isinstance(values, dict):
            return
        for name, raw in values.items():
            v = _number(raw)
            if v is not None:
                batch.put(run, 0, ("system", str(name)), step, t, v)
        batch.points.setdefault((run, 3, None), ([], [], []))

    def _on_grads(self, run: Run, record: dict, batch: PointBatch) -> None:
        step = self._required_step(run, record)
        t = _time_or_last(run, record)

        def put(kind, key, v):
            batch.put(run, kind, key, step, t, v)

        norm = record.get("norm")
        if norm is not None:
            v = _number(norm)
            if v is None:
                run.problem("grads norm: not a number: %.40r" % (norm,))
            else:
                put(1, None, v)
        layers = record.get("layers")
        if isinstance(layers, dict):
            for layer, fields in layers.items():
                if not isinstance(fields, dict):
                    run.problem("grads layer %.60r: not an object" % (layer,))
                    continue
                for f in _GRAD_FIELDS:
                    raw = fields.get(f)
                    if raw is None:
                        continue
                    v = _number(raw)
                    if v is None:
                        run.problem("grads %.60r.%s: not a number" % (layer, f))
                        continue
                    put(2, (str(layer), f), v)
        elif layers is not None:
            run.problem("grads record: layers is not an object")
        batch.points.setdefault((run, 3, None), ([], [], []))

    def _flush(self, batch: PointBatch) -> None:
        if not batch.points:
            return
        touched = []
        for (run, kind, key), (steps, times, values) in batch.points.items():
            if kind == 3:  # marker: the run changed
                touched.append(run)
                continue
            if kind == 0:
                s = run._series(key)
            elif kind == 1:
                s = run.grad_norm
            else:
                s = run._grad_series(key)
            if len(values) == 1:
                s.append(steps[0], times[0], values[0])
            else:
                s.extend(steps, times, values)
        batch.points = {}
        for run in touched:
            self._bump(run)
