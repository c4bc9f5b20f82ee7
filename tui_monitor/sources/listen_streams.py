"""The listener's streams: one object per writer session, and the run row
each one feeds.

A stream is what one writer process sends under one session (see
docs/stream-format.md, "Over a socket"): its reader (seq bookkeeping, the
unfinished last line), the secret that lets only that writer resume it, the
connection feeding it now, and how much of its reader's problems and
duplicates was handed on. A new stream feeds the row of its own run id,
unless a stream that has not ended holds that row: then ``RUN_ID~2``,
``~3``... (two jobs sharing ``TUI_MONITOR_RUN_ID``, or someone else's hello
naming a live run, are rows of their own, never one alternating series; the
rows are given out as the store gives them to stream files: see
:mod:`..store.rows`). A stream whose run ended, or whose writer's process is
seen gone (on this host, its connection closed), gives its row up to the
next process of that run id (a requeued job, after an end or a kill: the
store counts a restart).

Streams without a connection are forgotten after a while (ended ones soon),
the oldest first past a cap: memory follows the live streams, not every run
id ever seen. A writer whose stream was forgotten starts a new one and
resends what it keeps; the store takes each record once.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple

from ..store.rows import first_free
from ..stream import StreamReader

RowKey = Tuple[str, int]

#: A stream with no connection is forgotten after this long (s)...
IDLE_KEEP = 600.0
#: ... one whose ``end`` came, after this long (time for a lost last ack).
ENDED_KEEP = 30.0
#: Streams without a connection kept at most (the longest idle forgotten first).
MAX_IDLE = 2000


@dataclass(eq=False)
class SocketStream:
    """One writer session's stream."""

    key: RowKey                             #: (run_id, rank) as the hello named them
    row: str                                #: the run id its records are stored under
    sid: str                                #: session id: public, says which stream a writer resumes
    secret: bytes = field(repr=False)       #: key of the resume proof; never sent, only its writer has it
    writer: Optional[Tuple[float, int]]     #: (start, pid) its hello gave, when it did
    reader: StreamReader
    conn: Any = None                        #: the connection feeding it now
    host: Optional[str] = None              #: the host its run record names, once it came
    reported: int = 0                       #: reader problems handed on
    duplicates_told: int = 0                #: reader duplicates handed on
    duplicates_at: float = float("-inf")    #: when duplicates were last told
    ended: bool = False                     #: its ``end`` record came
    idle_since: float = 0.0                 #: when its last connection closed (monotonic)

    @property
    def source(self) -> tuple:
        """The store's stream token: one per session, so two writers of one
        run id never share a stream's seq numbering."""
        return ("socket", self.row, self.key[1], self.sid)

    def describe(self) -> str:
        if self.writer is None:
            return "a writer that gave no pid"
        return f"pid {self.writer[1]}"


#: ``writer_alive(host, pid, start)``: whether that process still runs; None
#: when it cannot be told (another host).
WriterAlive = Callable[[Optional[str], int, float], Optional[bool]]


class StreamTable:
    """The streams a listener knows, by session id and by the row they feed.
    ``writer_alive`` tells whether a stream's writer still runs (None: the
    listener cannot tell, and a stream without an end holds its row)."""

    def __init__(self, idle_keep: float = IDLE_KEEP, ended_keep: float = ENDED_KEEP, max_idle: int = MAX_IDLE,
                 writer_alive: Optional[WriterAlive] = None):
        self.idle_keep, self.ended_keep, self.max_idle = idle_keep, ended_keep, max_idle
        self.writer_alive = writer_alive
        self.by_sid: Dict[str, SocketStream] = {}
        self.rows: Dict[RowKey, SocketStream] = {}     # row key -> the stream feeding that row
        self.idle: "collections.OrderedDict[str, SocketStream]" = collections.OrderedDict()

    def __len__(self) -> int:
        return len(self.by_sid)

    def get(self, sid: Any) -> Optional[SocketStream]:
        return self.by_sid.get(sid) if isinstance(sid, str) else None

    def feeding(self, run_id: str, rank: int = 0) -> Optional[SocketStream]:
        """The stream feeding the row ``(run_id, rank)`` now, if any."""
        return self.rows.get((run_id, rank))

    def new(self, key: RowKey, writer: Optional[Tuple[float, int]], sid: str, secret: bytes,
            source: str) -> Tuple[SocketStream, Optional[SocketStream]]:
        """A new stream for a hello naming ``key``, and the stream that
        keeps it off that row (None when it feeds its own run id's row)."""
        run_id, rank = key
        row, holder = first_free(run_id, lambda row: self._holder((row, rank)))
        stream = SocketStream(key, row, sid, secret, writer,
                              StreamReader(f"{source} run {row} rank {rank}", raw_metrics=True))
        self.by_sid[sid] = stream
        self.rows[(row, rank)] = stream
        return stream, holder

    def _holder(self, row_key: RowKey) -> Optional[SocketStream]:
        """The stream that keeps ``row_key`` from a new stream: one that is
        still connected, or whose writer may come back. One with no
        connection whose run ended, or whose writer's process is gone (a
        killed job, requeued), is forgotten: its row goes to the newcomer."""
        stream = self.rows.get(row_key)
        if stream is not None and stream.conn is None and (stream.ended or self._writer_gone(stream)):
            self.forget(stream)
            return None
        return stream

    def _writer_gone(self, stream: SocketStream) -> bool:
        if self.writer_alive is None or stream.writer is None:
            return False
        start, pid = stream.writer
        return self.writer_alive(stream.host, pid, start) is False

    def attach(self, stream: SocketStream, conn: Any) -> None:
        stream.conn = conn
        self.idle.pop(stream.sid, None)

    def detach(self, stream: SocketStream, now: float) -> None:
        stream.conn = None
        stream.idle_since = now
        self.idle[stream.sid] = stream
        self.idle.move_to_end(stream.sid)
        while len(self.idle) > self.max_idle:
            self.forget(next(iter(self.idle.values())))

    def forget(self, stream: SocketStream) -> None:
        if self.by_sid.get(stream.sid) is stream:
            del self.by_sid[stream.sid]
        if self.rows.get((stream.row, stream.key[1])) is stream:
            del self.rows[(stream.row, stream.key[1])]
        self.idle.pop(stream.sid, None)

    def expire(self, now: float) -> int:
        """Forget the streams idle past their keep; returns how many."""
        gone = [s for s in self.idle.values()
                if now - s.idle_since > (self.ended_keep if s.ended else self.idle_keep)]
        for stream in gone:
            self.forget(stream)
        return len(gone)
