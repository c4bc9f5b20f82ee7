"""Which reader follows which file: the one place that dispatches by file type.

A file is followed by a :class:`~tui_monitor.sources.tail.FileTail` (offsets,
truncation, rotation, deletion) whatever its format; only the reader that turns
its bytes into records differs:

================================  ==========================  ==================
file                              reader                      found in folders
================================  ==========================  ==================
``*.jsonl``                       the stream format           yes
``events.out.tfevents.*``         TensorBoard event files     yes (one run per
                                  (:mod:`.tfevents`)          folder)
``*.csv`` (``metrics.csv``, ...)  CSV logs (:mod:`.csvlog`)   yes (only CSVs that
                                                              look like metric
                                                              logs are read)
anything else                     text logs (:mod:`.text`)    no: only when named
                                                              on the command line
================================  ==========================  ==================

Every non-JSONL reader synthesises the stream's records (a ``run`` header, then
``metrics`` records) as plain dicts, so the store, the diagnosis and the TUI see
one kind of run whatever it was read from.
"""
from __future__ import annotations

import collections
import hashlib
import os
import re
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..stream import MAX_PROBLEMS, Problem
from .tail import FileTail, OnProblem, OnRecords

__all__ = ["FORMATS", "MAX_LINE", "Format", "FormatTail", "LineSplitter", "RecordReader", "discoverable",
           "format_of", "make_tail", "next_seq", "run_header", "run_id_for"]

#: The longest line the line-based readers (CSV, text) keep: a longer one is skipped.
MAX_LINE = 64 * 1024


class LineSplitter:
    """Bytes in, whole lines out, never holding more than ``max_line`` bytes:
    the one place the line-based readers cut their input, so a binary file
    with no newline costs no memory. A line longer than ``max_line`` comes
    out once, as None, as soon as it is known to be too long, and the rest
    of it is skipped up to its end (not taken as a line of its own).
    ``split_cr`` also ends lines at ``\\r`` (progress bars redraw with it)."""

    def __init__(self, max_line: int = MAX_LINE, split_cr: bool = False):
        self.max_line = max_line
        self.split_cr = split_cr
        self._ends = re.compile(rb"\r\n|\r|\n" if split_cr else rb"\n")
        self._after_cr = False  # the last chunk ended a line with \r: a \n next is its \r\n
        self.pending = b""
        self.offset = 0  # stream offset of pending[0] (while skipping: of the next byte)
        self.skipping = False
        self.first_skipped: Optional[bytes] = None  # the start of the first line skipped

    @property
    def too_long(self) -> str:
        """The reason to report a skipped line with."""
        size = f"{self.max_line // 1024} KiB" if self.max_line % 1024 == 0 else f"{self.max_line} bytes"
        return f"line longer than {size}; skipped"

    def feed(self, chunk: bytes) -> List[Tuple[int, Optional[bytes]]]:
        """``(offset, line)`` for each line that ``chunk`` completes (without
        its end); ``line`` is None for one too long. How the input is cut
        into chunks changes nothing."""
        if not chunk:
            return []
        if self._after_cr and chunk[:1] == b"\n":
            chunk, self.offset = chunk[1:], self.offset + 1
        data = self.pending + chunk if self.pending else chunk
        base, pos, out = self.offset, 0, []
        if self.skipping:  # inside a line too long: drop bytes up to its end
            m = self._ends.search(data)
            if m is None:
                self.offset = base + len(data)
                return out
            pos, self.skipping = m.end(), False
        limit = self.max_line
        for m in self._ends.finditer(data, pos):
            end = m.start()
            if end - pos <= limit:
                out.append((base + pos, data[pos:end]))
            else:
                self._skip(out, base, data, pos)
            pos = m.end()
        if len(data) - pos > limit:
            self._skip(out, base, data, pos)
            self.pending, self.offset, self.skipping = b"", base + len(data), True
        else:
            self.pending, self.offset = data[pos:], base + pos
        self._after_cr = self.split_cr and pos == len(data) and data.endswith(b"\r")
        return out

    def _skip(self, out: List[Tuple[int, Optional[bytes]]], base: int, data: bytes, pos: int) -> None:
        if self.first_skipped is None:
            self.first_skipped = data[pos:pos + 256]
        out.append((base + pos, None))

    def rest(self) -> bytes:
        """The unfinished last line (at end of input), taken out."""
        rest, self.pending = self.pending, b""
        self.offset += len(rest)
        return rest


def run_header(seq: int, run_id: str, name: str, start: Optional[float], config: Optional[Dict[str, Any]] = None,
               tags: Optional[Dict[str, Any]] = None, host: str = "") -> dict:
    """The ``run`` record a non-JSONL reader makes up for the run it reads
    (no process behind it: no pid, rank 0 of 1)."""
    return {"type": "run", "seq": seq, "v": 1, "run_id": run_id, "name": name, "start": start, "host": host,
            "pid": None, "rank": 0, "world_size": 1, "config": dict(config or {}), "tags": dict(tags or {})}


def next_seq(state: Dict[str, Any]) -> int:
    """The next ``seq`` of a made-up stream, counted in ``state`` (which
    outlives the reader: a file read again goes on counting)."""
    seq = state.get("seq", 0)
    state["seq"] = seq + 1
    return seq


class RecordReader:
    """Base of the non-JSONL readers: what :class:`FileTail` needs from a
    reader (``feed``, ``problems``, ``problem_count``, ``line_number``)."""

    def __init__(self, source: str):
        self.source = source
        self._problems: collections.deque = collections.deque(maxlen=MAX_PROBLEMS)
        self._problem_count = 0
        self.line_number = 0

    @property
    def done(self) -> bool:
        """True when the reader wants no more of this file (it is not a
        metrics log, or cannot be framed): the tail stops reading it."""
        return False

    @property
    def problems(self) -> List[Problem]:
        return list(self._problems)

    @property
    def problem_count(self) -> int:
        return self._problem_count

    def feed(self, chunk: bytes) -> List[dict]:  # pragma: no cover - abstract
        raise NotImplementedError

    def problem(self, reason: str, severity: str = "error", line: Optional[int] = None) -> None:
        self._problems.append(Problem(self.source, self.line_number if line is None else line, reason, severity))
        self._problem_count += 1


class FormatTail(FileTail):
    """A :class:`FileTail` whose reader is made by ``make_reader(tail)`` (a
    new one each time the file starts over: opened, truncated, replaced) and
    whose records go out under ``key`` when one is given (several files
    feeding one run, as TensorBoard's do), else under the tail's own key."""

    def __init__(self, path: str, on_records: OnRecords, on_problem: OnProblem,
                 make_reader: Callable[["FormatTail"], RecordReader], key: Any = None, **kw: Any):
        self.make_reader = make_reader
        self.fixed_key = key
        self.state: Dict[str, Any] = {}  # kept across restarts, for readers that need it
        super().__init__(path, on_records, on_problem, **kw)

    def _restart(self) -> None:
        super()._restart()
        self.reader = self.make_reader(self)  # type: ignore[assignment]
        if self.fixed_key is not None:
            self.key = self.fixed_key

    def _reader_done(self) -> bool:
        return self.reader.done  # type: ignore[union-attr]

    def mtime(self) -> float:
        """The file's modification time: the wall time given to rows that
        carry none (read as history it is the last write; read live, now)."""
        try:
            return os.fstat(self.fd).st_mtime if self.fd is not None else os.stat(self.path).st_mtime
        except OSError:
            import time
            return time.time()


def run_id_for(kind: str, path: str) -> str:
    """A stable run id for a run read from ``path`` (so the same folder read
    twice, or by two monitors, is the same run)."""
    real = os.path.realpath(path)
    return f"{kind}-{hashlib.sha1(real.encode('utf-8', 'surrogateescape')).hexdigest()[:12]}"


# ---------------------------------------------------------------- the registry

MakeTail = Callable[[str, OnRecords, OnProblem, Dict[str, Any], bool], Optional[FileTail]]


class Format:
    """One kind of file: how it is recognised and how it is followed."""

    def __init__(self, name: str, match: Callable[[str], bool], make: MakeTail, discover: bool = True):
        self.name, self.match, self.make, self.discover = name, match, make, discover

    def __repr__(self) -> str:
        return f"<Format {self.name}>"


def _jsonl(path: str, on_records: OnRecords, on_problem: OnProblem, context: Dict[str, Any], explicit: bool) -> FileTail:
    return FileTail(path, on_records, on_problem)


def _tfevents(path: str, on_records: OnRecords, on_problem: OnProblem, context: Dict[str, Any], explicit: bool) -> FileTail:
    from .tfevents import make_tail as make
    return make(path, on_records, on_problem, context, explicit)


def _csv(path: str, on_records: OnRecords, on_problem: OnProblem, context: Dict[str, Any], explicit: bool) -> FileTail:
    from .csvlog import make_tail as make
    return make(path, on_records, on_problem, context, explicit)


def _text(path: str, on_records: OnRecords, on_problem: OnProblem, context: Dict[str, Any], explicit: bool) -> FileTail:
    from .text import make_tail as make
    return make(path, on_records, on_problem, context, explicit)


def _is_tfevents(name: str) -> bool:
    return name.startswith("events.out.tfevents.")


#: First match wins; the last entry takes any file named explicitly.
FORMATS: Tuple[Format, ...] = (
    Format("jsonl", lambda name: name.endswith(".jsonl"), _jsonl),
    Format("tensorboard", _is_tfevents, _tfevents),
    Format("csv", lambda name: name.lower().endswith(".csv"), _csv),
    Format("text", lambda name: True, _text, discover=False),
)


def format_of(path: str, explicit: bool = False) -> Optional[Format]:
    """The format that follows ``path``: found in a folder (``explicit``
    False) only the discoverable ones; named explicitly, any."""
    name = os.path.basename(path)
    for fmt in FORMATS:
        if (explicit or fmt.discover) and fmt.match(name):
            return fmt
    return None


def discoverable(name: str) -> bool:
    """Whether a file called ``name`` found in a folder is followed."""
    return format_of(name) is not None


def make_tail(path: str, on_records: OnRecords, on_problem: OnProblem, explicit: bool = False,
              context: Optional[Dict[str, Any]] = None) -> Optional[FileTail]:
    """The tail that follows ``path`` (None when no format takes it).
    ``context`` is one dict per follower, where formats keep what several
    files share (TensorBoard's one run per folder)."""
    fmt = format_of(path, explicit)
    if fmt is None:
        return None
    return fmt.make(path, on_records, on_problem, context if context is not None else {}, explicit)
