"""The store's bulk path: stretches of ``metrics`` records applied as numpy
columns, one ``extend`` per series, instead of record by record.

This is where ``watch`` spends its time on a backlog, so it stays free of
per-record Python calls beyond the C-level ``map``/``itemgetter`` loops.
:class:`BulkApply` is a mixin of :class:`~tui_monitor.store.Store` and uses
its writer-side internals (``_apply``, ``_flush``, ``_split``, ...).
"""

from __future__ import annotations

import itertools
import operator
from typing import TYPE_CHECKING, Any, Iterable, Set

import numpy as np

from ..ranges import TIME_MAX as _TIME_MAX, TIME_MIN as _TIME_MIN
from .run import RunKey

if TYPE_CHECKING:
    from .run import Run

__all__ = ["BulkApply", "PointBatch"]

#: Consecutive metrics records with the same names and split taken as one
#: block (one numpy array, one ``extend`` per series) when at least this many.
_BLOCK_MIN = 8
#: Value types the bulk path converts itself (as ``store._number`` does);
#: anything else sends the stretch to the record-by-record path.
_PLAIN_NUMBERS = frozenset((float, int, bool))
_NONFINITE_STRINGS = frozenset(("NaN", "Infinity", "-Infinity"))  # store.py keeps the values: no pydantic here
_INT = frozenset((int,))
_TIME_TYPES = frozenset((float, int))
_METRICS_FIELDS = ("type", "seq", "step", "time", "split", "values", "text")


class PointBatch:
    """Metric and gradient points gathered by ``apply_many`` before a bulk
    ``extend`` per series."""

    __slots__ = ("points",)

    def __init__(self) -> None:
        # (run, kind, key) -> ([steps], [times], [values])
        self.points = {}  # type: Dict[tuple, Tuple[list, list, list]]

    def put(self, run: "Run", kind: int, key: Any, step: int, t: float, v: float) -> None:
        p = self.points.get((run, kind, key))
        if p is None:
            p = self.points[(run, kind, key)] = ([], [], [])
        p[0].append(step)
        p[1].append(t)
        p[2].append(v)


class BulkApply:
    """``apply_many`` and its stretch path, for :class:`~tui_monitor.store.Store`."""

    def apply_many(self, records: Iterable[dict], stream: Any = None, rows_decided: bool = False) -> Set[RunKey]:
        """Apply records of one ``stream`` in order, the same as ``apply`` on
        each but faster for runs of ``metrics`` and ``grads`` records: their
        points are gathered per series and appended in bulk. Besides dicts,
        ``metrics`` records may be objects with the fields as attributes (the
        stream reader's checked fast-path records). Returns the keys of the
        runs that changed."""
        self._rows_decided = rows_decided
        try:
            return self._apply_many(records, stream)
        finally:
            self._rows_decided = False

    def _apply_many(self, records: Iterable[dict], stream: Any) -> Set[RunKey]:
        batch = PointBatch()
        changed = set()  # type: Set[RunKey]
        now = self.clock()
        apply_one = self._apply
        records = records if isinstance(records, list) else list(records)
        i, n = 0, len(records)
        while i < n:
            record = records[i]
            if record.__class__ is dict:
                rtype = record.get("type")
            else:  # a record with attributes: the reader's fast-path metrics (stream.MetricsRecord)
                rtype = getattr(record, "type", None)
            if rtype == "metrics":
                if n - i >= _BLOCK_MIN:
                    end = self._metrics_block(records, i, stream, batch, now)
                    if end > i:
                        changed.add(self._streams[stream].key)
                        i = end
                        continue
                if record.__class__ is not dict:
                    record = {f: getattr(record, f, None) for f in _METRICS_FIELDS}
            elif rtype != "grads" and record.__class__ is dict:
                self._flush(batch)  # order against headers, ends, restarts
            run = apply_one(record, stream, batch, now)
            if run is not None:
                changed.add(run.key)
            i += 1
        self._flush(batch)
        return changed

    def _metrics_block(self, records: list, start: int, stream: Any, batch: PointBatch, now: float) -> int:
        """Apply a stretch of metrics records from ``start`` at once: grouped
        by (split, names) — a loop logs the same names every step, with
        evaluations interleaved — each group becomes numpy columns and one
        ``extend`` per series. Returns where the stretch ended, or ``start``
        when the records need the record-by-record path (odd types, text,
        duplicates, too few). The records are all dicts or all of the first
        one's class (attributes)."""
        first = records[start]
        cls = first.__class__
        get, field = (dict.get, operator.itemgetter) if cls is dict else (getattr, operator.attrgetter)
        checked = cls is not dict  # the fast reader's records: msgspec checked every field's type
        groups = {}  # type: Dict[tuple, list]
        owner = {}  # type: Dict[Tuple[str, str], tuple]  # series -> the one group that feeds it
        end, n = start, len(records)
        while end < n:
            r = records[end]
            if r.__class__ is not cls or get(r, "type", None) != "metrics" or get(r, "text", None):
                break
            vals = get(r, "values", None)
            if vals.__class__ is not dict or not vals:
                break
            key = (get(r, "split", None), tuple(vals))
            g = groups.get(key)
            if g is None:
                # Groups are appended one after the other, so two groups must
                # not feed one series (its points would go out of order): a
                # record that would is where this stretch ends.
                split = None if key[0] is None else str(key[0])
                fed = [self._split(str(name), split) for name in key[1]]
                if any(f in owner for f in fed):
                    break
                for f in fed:
                    owner[f] = key
                g = groups[key] = []
            g.append(r)
            end += 1
        if end - start < _BLOCK_MIN:
            return start
        run = self._run_for(first, stream)
        columns = []
        try:  # columns by C-level loops; a missing field fails or shows in the dtype
            sq = np.array(list(map(field("seq"), records[start:end])))
            for (split, names), block in groups.items():
                steps = list(map(field("step"), block))
                times = list(map(field("time"), block))
                # Dicts as the one-record path reads them: integer steps (not
                # bools), times that are numbers (np.array would parse "5" or
                # take True). The reader's typed records are checked already.
                if checked is False and (not set(map(type, steps)) <= _INT
                                         or not set(map(type, times)) <= _TIME_TYPES):
                    return start
                st = np.array(steps)
                tm = np.array(times, dtype=np.float64)
                row = operator.itemgetter(*names)  # a tuple, or with one name the value
                flat = map(row, map(field("values"), block))
                if len(names) > 1:
                    flat = itertools.chain.from_iterable(flat)
                flat = list(flat)
                kinds = _PLAIN_NUMBERS if checked else set(map(type, flat))
                if not kinds <= _PLAIN_NUMBERS:
                    # np.fromiter would take "1.5", "nan" or None as numbers
                    # where the one-record path counts a problem: only the
                    # stream format's non-finite strings may ride along.
                    if not kinds <= _PLAIN_NUMBERS | {str} or not _NONFINITE_STRINGS.issuperset(
                        v for v in flat if v.__class__ is str
                    ):
                        return start
                vals = np.fromiter(flat, dtype=np.float64, count=len(block) * len(names))
                if st.dtype.kind != "i" or not ((tm >= _TIME_MIN) & (tm <= _TIME_MAX)).all():
                    return start  # times no clock shows (NaN too): the careful path takes them as none
                columns.append((split, names, st, tm, vals.reshape(len(block), len(names))))
        except (KeyError, AttributeError, ValueError, TypeError, OverflowError):
            return start
        if sq.dtype.kind != "i":
            return start
        gaps = np.diff(sq)
        if sq[0] <= run.seq or (gaps.size and gaps.min() <= 0):
            return start  # duplicates or resends: let the careful path count them
        self._flush(batch)
        run.missing += int(sq[-1] - sq[0] + 1 - (end - start)) + max(0, int(sq[0]) - run.seq - 1)
        run.seq = int(sq[-1])
        latest = max(float(c[3].max()) for c in columns)
        if run.last_seen is None or latest > run.last_seen:
            run.last_seen = latest
        run.last_arrival = now
        if run.status in ("silent", "stopped"):
            run.status = "running"
        last = records[end - 1]
        run.last_step = int(get(last, "step", 0))
        run.last_log = float(get(last, "time", 0.0))
        for split, names, st, tm, vals in columns:
            split = None if split is None else str(split)
            for c, name in enumerate(names):
                run._series(self._split(str(name), split)).extend(st, tm, vals[:, c])
        self._bump(run)
        return end
