"""The incremental reader: bytes of one stream in, records out, with line
numbers, problems, duplicate and gap bookkeeping by ``seq``. It never raises on
bad input; decoding is :mod:`.fast` (raw metrics batches) and :mod:`.decode`."""
from __future__ import annotations

import collections
import operator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, List, Optional, Tuple, Union

from ..schema import RECORD_TYPES, RunHeader
from .files import open_regular
from .decode import DecodeError, UnknownRecord, Warnings, decode_record
from .fast import decode_metrics_lines

#: Longest line read (bytes, without the ``\n``); longer lines are skipped and reported.
MAX_LINE_BYTES = 1 << 20
#: Problems kept by a reader (all are counted).
MAX_PROBLEMS = 100
#: Gaps in ``seq`` remembered so that a late record can fill one.
MAX_GAPS = 1000
_READ_SIZE = 1 << 20

_SEQ = operator.attrgetter("seq")


@dataclass(frozen=True)
class Problem:
    """Something wrong with one line of a stream.

    ``severity`` is ``"error"`` when the line was not read at all and
    ``"warning"`` when it was read with something left out or worth knowing.
    A list that keeps one entry per file and reason (the ingest's) counts the
    repeats in ``count``, the line of the latest in ``last_line``.
    """

    source: str
    line_number: int
    reason: str
    severity: str = "error"
    count: int = 1
    last_line: int = 0

    def __str__(self) -> str:
        where = f"{self.source}:{self.line_number}" if self.line_number else self.source  # 0: the file as a whole
        return f"{where}: {self.reason}{self.repeats()}"

    def repeats(self) -> str:
        """`` (3 times, the last at line 9)`` for a repeated problem, else ``""``."""
        if self.count <= 1:
            return ""
        last = f", the last at line {self.last_line}" if self.last_line and self.last_line != self.line_number else ""
        return f" ({self.count} times{last})"

@dataclass
class ReaderStats:
    lines: int = 0       #: complete lines seen (including blank and bad ones)
    records: int = 0     #: records returned
    errors: int = 0      #: lines that could not be read
    warnings: int = 0    #: warnings (lines read with something left out, newer format, ...)
    duplicates: int = 0  #: records dropped because their ``seq`` was already seen
    missing: int = 0     #: ``seq`` numbers skipped over and not (yet) filled
    blank: int = 0       #: blank lines, ignored
    skipped: collections.Counter = field(default_factory=collections.Counter)  #: unknown type -> count


class StreamReader:
    """Incremental reader of one stream.

    ``feed(chunk)`` returns the records of the lines completed by ``chunk``;
    a partial last line waits for the rest (see :attr:`pending_bytes`).
    Records whose ``seq`` was already seen are dropped (counted in
    ``stats.duplicates``); a late record that fills a gap is kept. A ``run``
    header of a different process (run id, rank, pid or start differ) starts
    a new stream segment: ``seq`` tracking starts over, with a warning.

    With ``raw_metrics``, ``metrics`` records come out as checked
    :class:`MetricsRecord` (the fast path) or plain dicts (the careful path),
    not as models: food for :meth:`Store.apply_many`.
    """

    def __init__(self, source: str = "<stream>", *, max_line_bytes: int = MAX_LINE_BYTES,
                 max_problems: int = MAX_PROBLEMS, dedupe: bool = True, raw_metrics: bool = False):
        self.source = source
        # metrics records as MetricsRecord (the fast path) or checked plain dicts (the store's food)
        self.raw_metrics = raw_metrics
        self.max_line_bytes = max_line_bytes
        self.dedupe = dedupe
        self.stats = ReaderStats()
        self._problems: collections.deque = collections.deque(maxlen=max_problems)
        self._warned: set = set()
        self._line = 0
        self._pending: List[bytes] = []
        self._pending_len = 0
        self._skipping = False
        self._max_seq = -1
        self._gaps: List[List[int]] = []  # [first, last] missing seq ranges, oldest first
        self._header_key: Optional[tuple] = None

    # -- results

    @property
    def problems(self) -> List[Problem]:
        """The most recent problems (at most ``max_problems``), oldest first."""
        return list(self._problems)

    @property
    def problem_count(self) -> int:
        """All problems ever reported, including those no longer kept."""
        return self.stats.errors + self.stats.warnings

    @property
    def pending_bytes(self) -> int:
        """Bytes of a last line not yet completed by a ``\\n``."""
        return self._pending_len

    @property
    def contiguous_seq(self) -> int:
        """The highest ``seq`` with nothing missing before it (-1: none yet):
        what a socket listener answers a reconnecting writer."""
        return self._gaps[0][0] - 1 if self._gaps else self._max_seq

    @property
    def line_number(self) -> int:
        """Complete lines seen so far."""
        return self._line

    # -- input

    def discard_pending(self, reason: Optional[str] = None) -> int:
        """Forget a last line not yet completed (and the rest of an over-long
        line being skipped): its writer is gone, and what the next one sends
        starts on a line of its own. Returns the bytes dropped; with
        ``reason``, dropping any is reported as a warning (``reason`` is
        followed by the count)."""
        dropped = self._pending_len
        if self._skipping:
            self._skipping = False
            self._line += 1      # the over-long line (reported already) ends here
            self.stats.lines += 1
        if self._pending:
            self._pending = []
            self._pending_len = 0
            self._line += 1      # the unfinished line ends here, unread
            self.stats.lines += 1
            if reason:
                self._problem(self._line, f"{reason} ({dropped} bytes of an unfinished line dropped)", "warning")
        return dropped

    def feed(self, chunk: bytes) -> List[Any]:
        """Take the next bytes of the stream; return the records completed."""
        out: List[Any] = []
        if not chunk:
            return out
        if self._skipping:  # inside an over-long line: drop bytes up to its end
            i = chunk.find(b"\n")
            if i < 0:
                return out
            self._skipping = False
            self._line += 1
            self.stats.lines += 1
            chunk = chunk[i + 1:]
        head = b""
        if self._pending:
            i = chunk.find(b"\n")
            if i < 0:
                self._pending.append(chunk)
                self._pending_len += len(chunk)
                if self._pending_len > self.max_line_bytes:
                    self._too_long(self._pending_len, unfinished=True)
                return out
            head = b"".join(self._pending)
            self._pending = []
            self._pending_len = 0
        lines = chunk.split(b"\n")
        tail = lines.pop()
        if head:
            lines[0] = head + lines[0]
        if self.raw_metrics and lines:
            self._take_metrics(lines, out)
        else:
            take = self._take
            for line in lines:
                take(line, out)
        if tail:
            if len(tail) > self.max_line_bytes:
                self._too_long(len(tail), unfinished=True)
            else:
                self._pending = [tail]
                self._pending_len = len(tail)
        return out

    def _too_long(self, n: int, unfinished: bool) -> None:
        size = f"over {n} bytes so far" if unfinished else f"{n} bytes"
        # an unfinished line is the next one; a finished one was counted already
        self._problem(self._line + 1 if unfinished else self._line, f"line of {size} is longer than the {self.max_line_bytes}-byte limit; skipped")
        if unfinished:
            self._pending = []
            self._pending_len = 0
            self._skipping = True

    def _take_metrics(self, lines: List[bytes], out: List[Any]) -> None:
        """The fast path (raw mode): take ``lines`` as one batch of ``metrics``
        records, decoded and checked in one call. A batch that does not pass
        is split in halves (up to 16 lines: into single lines), and a single
        line that does not pass goes to :meth:`_take` (the careful path: other
        record types, bad lines, odd values).
        Results, problems, line numbers and seq bookkeeping are the same as
        taking each line with :meth:`_take`."""
        recs = decode_metrics_lines(lines, self.max_line_bytes)
        if recs is None:
            if len(lines) == 1:
                self._take(lines[0], out)
            elif len(lines) <= 16:  # few lines (or other records every few lines): one by one
                for line in lines:
                    self._take_metrics([line], out)
            else:
                mid = len(lines) // 2
                self._take_metrics(lines[:mid], out)
                self._take_metrics(lines[mid:], out)
            return
        n = len(recs)
        self._line += n
        self.stats.lines += n
        if self.dedupe:
            first = recs[0].seq
            if first == self._max_seq + 1 and list(map(_SEQ, recs)) == list(range(first, first + n)):
                self._max_seq = first + n - 1  # the common case: next in seq, no gap, no duplicate
            else:
                accept = self._accept_seq
                kept = [r for r in recs if accept(r.seq)]
                self.stats.duplicates += n - len(kept)
                recs = kept
        self.stats.records += len(recs)
        out.extend(recs)

    def _take(self, line: bytes, out: List[Any]) -> None:
        self._line += 1
        self.stats.lines += 1
        if len(line) > self.max_line_bytes:
            self._too_long(len(line), unfinished=False)
            return
        warns: Warnings = []
        try:
            rec = decode_record(line, warns, self.raw_metrics)
        except DecodeError as e:
            self._problem(self._line, str(e))
            return
        except Exception as e:  # noqa: BLE001 - a reader never raises on input
            self._problem(self._line, f"could not decode: {type(e).__name__}: {e}")
            return
        for key, message in warns:
            if key is None or key not in self._warned:
                if key is not None:
                    self._warned.add(key)
                self._problem(self._line, message, "warning")
        if rec is None:
            self.stats.blank += 1
            return
        if type(rec) is UnknownRecord:
            self.stats.skipped[rec.type] += 1
            return
        if rec.__class__ is dict:  # a raw metrics record
            if self.dedupe and not self._accept_seq(rec["seq"]):
                self.stats.duplicates += 1
                return
        elif self.dedupe and rec.type in RECORD_TYPES:
            if rec.type == "run":
                self._new_header(rec)
            if not self._accept_seq(rec.seq):
                self.stats.duplicates += 1
                return
        self.stats.records += 1
        out.append(rec)

    def _new_header(self, rec: RunHeader) -> None:
        key = (rec.run_id, rec.rank, rec.pid, rec.start)
        if self._header_key is not None and key != self._header_key:
            self._problem(self._line, f"a new run starts here (run id {rec.run_id!r}, rank {rec.rank}, "
                                      f"pid {rec.pid}); seq numbering starts over", "warning")
            self._max_seq = -1
            self._gaps = []
        self._header_key = key

    def _accept_seq(self, seq: int) -> bool:
        top = self._max_seq
        if seq > top:
            if seq > top + 1:
                self._gaps.append([top + 1, seq - 1])
                self.stats.missing += seq - top - 1
                if len(self._gaps) > MAX_GAPS:
                    first, last = self._gaps.pop(0)
                    self.stats.missing -= last - first + 1  # forgotten: no longer counted
            self._max_seq = seq
            return True
        for i, gap in enumerate(self._gaps):
            first, last = gap
            if first <= seq <= last:
                self.stats.missing -= 1
                if first == last:
                    del self._gaps[i]
                elif seq == first:
                    gap[0] = seq + 1
                elif seq == last:
                    gap[1] = seq - 1
                else:
                    self._gaps[i:i + 1] = [[first, seq - 1], [seq + 1, last]]
                return True
        return False

    def _problem(self, line_number: int, reason: str, severity: str = "error") -> None:
        if severity == "error":
            self.stats.errors += 1
        else:
            self.stats.warnings += 1
        self._problems.append(Problem(self.source, line_number, reason, severity))


def new_problems(reader: Any, reported: int) -> Tuple[List[Problem], int]:
    """The problems ``reader`` found since ``reported`` of them were handed
    on, and the count to pass next time. Works with any reader that has
    ``problems`` (the last ones kept, oldest first) and ``problem_count``
    (all ever found): a :class:`StreamReader` or the importers' readers.
    Problems no longer kept when asked for are not returned (they stay
    counted in ``problem_count``)."""
    total = reader.problem_count
    new = total - reported
    if new <= 0:
        return [], total
    kept = reader.problems
    return kept[max(0, len(kept) - new):], total


def read_file(path: Union[str, Path], *, reader: Optional[StreamReader] = None) -> Tuple[List[Any], List[Problem]]:
    """Every record of a stream file and the problems met (the last
    ``MAX_PROBLEMS``; ``reader.stats`` has the counts). A last line without
    ``\\n`` is left unread (``reader.pending_bytes``). Raises ``OSError`` when
    the file cannot be read (:class:`NotRegularFile` for a FIFO, a device...:
    opening a FIFO would block, a device never ends); bad content never
    raises."""
    if reader is None:
        reader = StreamReader(str(path))
    records: List[Any] = []
    with open(open_regular(str(path)), "rb") as f:
        while True:
            chunk = f.read(_READ_SIZE)
            if not chunk:
                break
            records.extend(reader.feed(chunk))
    return records, reader.problems
