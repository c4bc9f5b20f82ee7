"""What every reader of a log format other than the stream is built from.

A file is followed by a :class:`~tui_monitor.sources.tail.FileTail` (offsets,
truncation, rotation, deletion) whatever its format; only the reader that
turns its bytes into records differs. This module holds what those readers
share and nothing else: :class:`RecordReader` (the reader interface),
:class:`FormatTail` (a tail whose reader is made per file), :class:`LineSplitter`
(bounded lines for the line-based formats) and the made-up stream they emit
(:func:`run_header`, :func:`next_seq`, :func:`run_id_for`, :func:`end_record`).

Which reader follows which file is decided in :mod:`.registry`; the readers
(:mod:`.csvlog`, :mod:`.text`, :mod:`.tfevents`, :mod:`.hftrainer`,
:mod:`.mlflowstore`, :mod:`.wandblog`) import this module only, and the
registry imports them: the arrows go one way.

Every reader synthesises the stream's records (a ``run`` header, then
``metrics`` records, an ``end`` when the log says how the run ended) as plain
dicts, so the store, the diagnosis and the TUI see one kind of run whatever
it was read from.
"""
from __future__ import annotations

import collections
import hashlib
import os
import re
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..stream import MAX_PROBLEMS, Problem
from .tail import FileTail, OnProblem, OnRecords

__all__ = ["MAX_LINE", "FormatTail", "LineSplitter", "RecordReader", "WholeFileTail", "end_record", "lightning_key",
           "next_seq", "run_header", "run_id_for"]

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


_LIGHTNING_STEP = re.compile(r"(.+)_step\Z")


def lightning_key(key: str) -> str:
    """A Lightning metric logged with both ``on_step`` and ``on_epoch``
    comes as ``train_loss_step`` and ``train_loss_epoch``: the per-step one
    is the metric itself (``train_loss``), the epoch's mean keeps its suffix."""
    m = _LIGHTNING_STEP.match(key)
    return m.group(1) if m and key not in ("global_step", "trainer/global_step") else key


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


def end_record(seq: int, t: Optional[float], status: str = "finished", step: Optional[int] = None,
               error: Optional[Dict[str, str]] = None) -> dict:
    """The ``end`` record a reader makes up when the log says how its run
    ended. A log that stops without saying so gets none: the store shows
    its run as ``stopped`` once nothing came for a day (store/run.py)."""
    rec: Dict[str, Any] = {"type": "end", "seq": seq, "time": t, "status": status, "dropped": 0, "step": step}
    if error:
        rec["error"] = error
    return rec


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

    def at_end(self, mtime: float, now: float) -> List[dict]:
        """Records due when a read reached the current end of the file,
        whose last write was at ``mtime`` (wall clock ``now``): what waits
        for more input that is not coming (a file untouched for seconds),
        or what a file read whole holds. None by default."""
        return []

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

    def _read(self, limit: Optional[int] = -1) -> bool:
        more = super()._read(limit)
        if not more and self.reader is not None and self.fd is not None:
            try:
                self._at_end(os.fstat(self.fd).st_mtime)
            except OSError:
                pass
        return more

    def poll(self) -> bool:
        more = super().poll()
        if not more and getattr(self.reader, "holding", False):
            # Idle, with lines waiting for what should have followed them
            # (a progress bar's redraw): the reader decides when to stop waiting.
            try:
                self._at_end(os.stat(self.path).st_mtime)
            except OSError:
                pass
        return more

    def _at_end(self, mtime: float) -> None:
        records = self.reader.at_end(mtime, time.time())  # type: ignore[union-attr]
        self._forward_problems()
        if records:
            self.on_records(self.key, records)

    def mtime(self) -> float:
        """The file's modification time: the wall time given to rows that
        carry none (read as history it is the last write; read live, now)."""
        try:
            return os.fstat(self.fd).st_mtime if self.fd is not None else os.stat(self.path).st_mtime
        except OSError:
            return time.time()


class WholeFileTail(FormatTail):
    """A tail for a file written whole each time (not appended to): read
    again from its start whenever it changed since the reader began."""

    def __init__(self, *args: Any, **kw: Any):
        self._began: Optional[int] = None
        super().__init__(*args, **kw)

    def _restart(self) -> None:
        super()._restart()
        try:
            self._began = os.fstat(self.fd).st_mtime_ns if self.fd is not None else None
        except OSError:
            self._began = None

    def _check_in_place(self) -> None:
        try:
            mtime = os.fstat(self.fd).st_mtime_ns
        except OSError:
            return
        if self._began is not None and mtime != self._began:
            self._restart()


def run_id_for(kind: str, path: str) -> str:
    """A stable run id for a run read from ``path`` (so the same folder read
    twice, or by two monitors, is the same run)."""
    real = os.path.realpath(path)
    return f"{kind}-{hashlib.sha1(real.encode('utf-8', 'surrogateescape')).hexdigest()[:12]}"
