"""Reading the JSON-Lines stream (docs/stream-format.md): bytes in, records out.

This is the edge where the stream is validated, once. Everything past it gets
:mod:`tui_monitor.schema` models and never sees a malformed value.

- :class:`StreamReader` takes bytes as they come (a file being tailed, a
  socket) and returns the records of the lines completed so far. A last line
  without ``\\n`` is *not yet written*: it is kept pending, never an error.
  A reader never raises on bad input; each bad line becomes a
  :class:`Problem` (kept: the last ``max_problems``; counted: all).
- :func:`decode_line` decodes one line on its own (raising
  :class:`DecodeError` for a bad one), :func:`read_file` a whole file.

Speed. Two paths, one set of rules:

- The fast path (``raw_metrics=True``: what the store eats): all complete
  lines of a chunk are decoded and checked in one ``msgspec`` call as a list
  of :class:`MetricsRecord` (typed: ints, floats, the three non-finite
  strings and nothing else; big integers stay exact). When a batch fails, it
  is split in halves until every line that does not pass goes to the careful
  path on its own, which reads or reports it exactly as before. Measured
  (same process, a 5-scalar record): the msgspec call decodes *and* checks in
  ~0.4 us a record, less than ``orjson.loads`` of the line alone (~0.55 us);
  orjson and then the Python type checks cost ~1.0-1.15 us, per line or
  batched.
- The careful path, for every other line: ``orjson`` parses; a ``metrics``
  record is checked with plain type tests and built without pydantic
  validation; every other record, and any metrics record the fast check does
  not like, goes through pydantic. orjson does not refuse integers beyond 64
  bits (some versions silently return a float), so any record that might hold
  one is parsed again with the standard library, which keeps them exact.
"""
from __future__ import annotations

import collections
import json
import math
import operator
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Dict, List, Literal, Optional, Tuple, Union

import msgspec
import orjson
from pydantic import ValidationError

from .schema import (
    FORMAT_VERSION, NONFINITE, RECORD_TYPES, TYPES, Metrics, RunHeader, _build,
    _json_type_name, decode_metric_value,
)

__all__ = [
    "MAX_LINE_BYTES", "MAX_PROBLEMS", "MetricsRecord", "Problem", "ReaderStats", "DecodeError", "StreamReader",
    "decode_line", "read_file", "record_to_json", "dumps_record",
]

#: Longest line read (bytes, without the ``\n``); longer lines are skipped and reported.
MAX_LINE_BYTES = 1 << 20
#: Problems kept by a reader (all are counted).
MAX_PROBLEMS = 100
#: Gaps in ``seq`` remembered so that a late record can fill one.
MAX_GAPS = 1000

_BIG = float(1 << 63)  # a float this large may be an integer orjson could not keep
_LONG_DIGITS = re.compile(rb"\d{19}")
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(rb"[\[\]{}]")
#: Deepest nesting read. Parsers can crash the interpreter on very deep input
#: (orjson 3.8 and the standard library both do, past ~100,000 levels), so a
#: long line is checked before it is parsed; 255 is also what orjson writes.
MAX_DEPTH = 255
_READ_SIZE = 1 << 20


class MetricsRecord(msgspec.Struct, gc=False):
    """A ``metrics`` record as the fast path reads it (raw mode): exactly what
    the careful path reads without a problem, with values ints and floats.

    The fast path decodes a chunk's lines against this type in one call; any
    line it does not fit (a version field, non-string text, a value ``true``
    or ``"3"``, a number too large for a float, ...) fails the batch and the
    careful path reads it and says why. Unknown fields are ignored, as there.
    ``gc=False``: these hold no cycles, and the cycle collector need not walk
    the hundreds of thousands a second that come through (measured: ~0.7 us a
    record less than plain dicts).
    """

    type: Literal["metrics"]
    seq: Annotated[int, msgspec.Meta(ge=0)]
    step: int
    time: float  # an integer is taken, as a float
    values: Dict[str, Union[int, float, Literal["NaN", "Infinity", "-Infinity"]]]
    split: Optional[str] = None
    text: Optional[Dict[str, str]] = None
    v: None = None  # a version field: the careful path (it warns about newer versions)


_METRICS_LINES = msgspec.json.Decoder(List[MetricsRecord])
_METRICS_LINE = msgspec.json.Decoder(MetricsRecord)
_SEQ = operator.attrgetter("seq")
#: Only a batch holding one of these bytes can hold a non-finite string value
#: ("N\u0061N" is "NaN" too). Single bytes: searching for one is a fast memchr.
_NONFINITE_MARKS = (b"N", b"I", b"\\")


@dataclass(frozen=True)
class Problem:
    """Something wrong with one line of a stream.

    ``severity`` is ``"error"`` when the line was not read at all and
    ``"warning"`` when it was read with something left out or worth knowing.
    """

    source: str
    line_number: int
    reason: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.source}:{self.line_number}: {self.reason}"


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


class DecodeError(ValueError):
    """A line that is not a record; ``str(e)`` says why."""


class _Unknown:
    __slots__ = ("type",)

    def __init__(self, type_: str):
        self.type = type_


# warnings raised while decoding: (once-key or None, message)
_Warnings = List[Tuple[Optional[str], str]]


# ---------------------------------------------------------------- decoding

def _too_deep(line: bytes) -> bool:
    if line.count(b"[") + line.count(b"{") <= MAX_DEPTH:
        return False
    depth = 0
    for m in _BRACKETS.finditer(_STRINGS.sub(b"", line)):
        if m.group() in (b"[", b"{"):
            depth += 1
            if depth > MAX_DEPTH:
                return True
        else:
            depth -= 1
    return False


def _reparse(line: bytes, warns: _Warnings) -> Any:
    """Parse with the standard library: exact big integers, clear messages."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DecodeError(f"invalid UTF-8 at byte {e.start}") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        return None

    def constant(name: str) -> float:
        warns.append(("literal-nonfinite", f"non-standard JSON literal {name} (the format spells "
                                           f"non-finite values as strings: \"NaN\", \"Infinity\", \"-Infinity\")"))
        return NONFINITE[name]

    try:
        return json.loads(text, parse_constant=constant)
    except json.JSONDecodeError as e:
        raise DecodeError(f"malformed JSON: {e.msg} (column {e.colno})") from None
    except RecursionError:
        raise DecodeError(f"malformed JSON: nested more than {MAX_DEPTH} deep") from None


def _fast_metrics(obj: dict, raw: bool = False) -> Optional[Metrics]:
    """A ``metrics`` record by explicit type checks, or None to take the slow
    path. With ``raw``, the checked record as a plain dict (for the store's
    hot path: no model is built)."""
    seq = obj.get("seq")
    step = obj.get("step")
    values = obj.get("values")
    if type(seq) is not int or seq < 0 or type(step) is not int or type(values) is not dict:
        return None
    t = obj.get("time")
    if type(t) is not float:
        if type(t) is not int:
            return None
        t = float(t)
    split = obj.get("split")
    if split is not None and type(split) is not str:
        return None
    text = obj.get("text")
    if text is not None:
        if type(text) is not dict:
            return None
        for s in text.values():
            if type(s) is not str:
                return None
    fix = None
    for k, v in values.items():
        tv = type(v)
        if tv is float:
            if -_BIG < v < _BIG:
                continue
            return None  # maybe an integer orjson turned into a float
        if tv is int:
            continue
        if tv is str:
            f = NONFINITE.get(v)
            if f is None:
                return None
            if fix is None:
                fix = {}
            fix[k] = f
            continue
        return None
    if fix:
        values = {**values, **fix}
    if raw:
        obj["time"], obj["values"] = t, values
        return obj
    fields_set = {"type", "seq", "step", "time", "values"}
    if split is not None:
        fields_set.add("split")
    if text is not None:
        fields_set.add("text")
    return _build(Metrics, {"type": "metrics", "seq": seq, "step": step, "time": t, "split": split,
                            "values": values, "text": text}, fields_set)


def _describe(e: ValidationError, type_: str) -> str:
    parts = []
    errors = e.errors(include_url=False)
    for err in errors[:3]:
        loc = ".".join(str(x) for x in err["loc"])
        if err["type"] == "missing":
            parts.append(f"missing field {loc!r}")
        else:
            msg = err["msg"]
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, "):]
            elif "input" in err:
                msg = f"{msg}, got {_json_type_name(err['input'])}"
            parts.append(f"{loc}: {msg}" if loc else msg)
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return f"bad {type_} record: " + "; ".join(parts) + more


def _salvage_metrics(obj: dict, warns: _Warnings) -> dict:
    """Drop the values (and text) that are not what the format allows, with a warning."""
    values = obj.get("values")
    bad = []
    if isinstance(values, dict):
        good = {}
        for k, v in values.items():
            try:
                good[k] = decode_metric_value(v)
            except ValueError:
                bad.append(f"{k!r} ({_json_type_name(v)})")
        if bad:
            obj = {**obj, "values": good}
    text = obj.get("text")
    if isinstance(text, dict):
        good_text = {k: v for k, v in text.items() if isinstance(v, str)}
        if len(good_text) != len(text):
            bad.extend(f"text {k!r} ({_json_type_name(v)})" for k, v in text.items() if not isinstance(v, str))
            obj = {**obj, "text": good_text}
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        warns.append((None, f"metrics values left out, not numbers: {shown}"))
    return obj


def _decode(line: bytes, warns: _Warnings, raw: bool = False) -> Any:
    """A record, ``None`` (blank line) or an ``_Unknown``; raise DecodeError."""
    exact = False  # parsed by the standard library already
    if len(line) > 2 * MAX_DEPTH and _too_deep(line):
        raise DecodeError(f"malformed JSON: nested more than {MAX_DEPTH} deep")
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        obj = _reparse(line, warns)
        if obj is None:
            return None
        exact = True
    if type(obj) is dict:
        if obj.get("type") == "metrics" and "v" not in obj:
            rec = _fast_metrics(obj, raw)
            if rec is not None:
                return rec
        if not exact and _LONG_DIGITS.search(line):
            obj = _reparse(line, warns)
    else:
        raise DecodeError(f"not a JSON object (got {_json_type_name(obj)})")
    type_ = obj.get("type")
    if type(type_) is not str:
        if "type" not in obj:
            raise DecodeError('no "type" field')
        raise DecodeError(f'"type" is {_json_type_name(type_)}, not a string')
    v = obj.get("v")
    if type(v) is int and v > FORMAT_VERSION:
        warns.append(("version", f"stream format v{v} is newer than this reader's v{FORMAT_VERSION}; "
                                 "reading what it understands"))
    cls = TYPES.get(type_)
    if cls is None:
        return _Unknown(type_)
    if type_ == "metrics":
        obj = _salvage_metrics(obj, warns)
    try:
        return cls.model_validate(obj)
    except ValidationError as e:
        raise DecodeError(_describe(e, type_)) from None


def decode_line(line: bytes) -> Any:
    """Decode one line (with or without its ``\\n``) to a record or message.

    Returns ``None`` for a blank line or a record of a type this reader does
    not know (newer writers may add types). Raises :class:`DecodeError` for a
    line that is not a valid record. Warnings (a newer format version, values
    left out) are not reported here; :class:`StreamReader` reports them.
    """
    rec = _decode(line, [])
    return None if isinstance(rec, _Unknown) else rec


# ---------------------------------------------------------------- the reader

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
        recs = self._decode_metrics(lines)
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

    def _decode_metrics(self, lines: List[bytes]) -> Optional[List[MetricsRecord]]:
        """``lines`` as checked :class:`MetricsRecord` s, or None when any line
        is not one."""
        longest = max(map(len, lines))
        if longest > self.max_line_bytes:
            return None
        if longest > 2 * MAX_DEPTH and any(_too_deep(x) for x in lines if len(x) > 2 * MAX_DEPTH):
            return None
        try:
            if len(lines) == 1:
                data = lines[0]
                recs = [_METRICS_LINE.decode(data)]
            else:
                parts = lines.copy()  # one JSON array, in one copy ("[" + ... + "]" would copy twice more)
                parts[0] = b"[" + parts[0]
                parts[-1] += b"]"
                data = b",".join(parts)
                recs = _METRICS_LINES.decode(data)
        except Exception:  # noqa: BLE001 - msgspec.DecodeError, ValidationError, RecursionError
            return None
        if len(recs) != len(lines):  # a line held two records ("{...},{...}")
            return None
        if any(mark in data for mark in _NONFINITE_MARKS):
            for r in recs:  # the three strings as floats, as _fast_metrics does
                values = r.values
                for k, v in values.items():
                    if v.__class__ is str:
                        values[k] = NONFINITE[v]
        return recs

    def _take(self, line: bytes, out: List[Any]) -> None:
        self._line += 1
        self.stats.lines += 1
        if len(line) > self.max_line_bytes:
            self._too_long(len(line), unfinished=False)
            return
        warns: _Warnings = []
        try:
            rec = _decode(line, warns, self.raw_metrics)
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
        if type(rec) is _Unknown:
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


def read_file(path: Union[str, Path], *, reader: Optional[StreamReader] = None) -> Tuple[List[Any], List[Problem]]:
    """Every record of a stream file and the problems met (the last
    ``MAX_PROBLEMS``; ``reader.stats`` has the counts). A last line without
    ``\\n`` is left unread (``reader.pending_bytes``). Raises ``OSError`` when
    the file cannot be read; bad content never raises."""
    if reader is None:
        reader = StreamReader(str(path))
    records: List[Any] = []
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_READ_SIZE)
            if not chunk:
                break
            records.extend(reader.feed(chunk))
    return records, reader.problems


# ---------------------------------------------------------------- writing records back

def _jsonable(x: Any) -> Any:
    t = type(x)
    if t is float:
        return x if math.isfinite(x) else ("NaN" if x != x else ("Infinity" if x > 0 else "-Infinity"))
    if t is dict:
        return {k: _jsonable(v) for k, v in x.items()}
    if t is list or t is tuple:
        return [_jsonable(v) for v in x]
    return x


def record_to_json(record: Any) -> Dict[str, Any]:
    """A record as a JSON-ready dict in the stream's own form: the fields that
    were given, non-finite floats spelled ``"NaN"``, ``"Infinity"``,
    ``"-Infinity"``, integers exact."""
    d = record.model_dump(exclude_unset=True)
    d.pop("type", None)
    return _jsonable({"type": record.type, **d})


def dumps_record(record: Any) -> bytes:
    """One record as a JSON line (without the ``\\n``)."""
    obj = record_to_json(record)
    try:
        return orjson.dumps(obj)
    except (TypeError, orjson.JSONEncodeError):  # integers beyond 64 bits, lone surrogates, deep nesting
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()
