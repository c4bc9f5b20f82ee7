"""Following one stream file from its last offset.

A file is read in chunks from where the last read stopped; a last line
without ``\\n`` waits in the reader for the rest. The open file descriptor is
kept, so a file deleted while its writer still appends to it is followed to
the end; a file replaced at its path (rotation, ``mv`` + recreate) is read to
its end and then the new one is followed; a file truncated below the offset
is read again from the start. Each of these is reported as a warning. A
deleted file that has been read to its end and has not grown for
:data:`DELETED_QUIET` seconds is closed (its writer is gone), and the
follower forgets it.

An idle file costs one ``stat`` a poll: when the inode, the size (all of it
read) and the modification time are those of the last poll, nothing else is
done.
"""
from __future__ import annotations

import os
import time
from typing import Any, Callable, List, Optional

from ..stream import Problem, StreamReader
from ..stream.reader import new_problems

CHUNK = 1 << 20
#: Seconds a deleted file, read to its end, may go without growing before it is closed.
DELETED_QUIET = 60.0

OnRecords = Callable[[Any, List[Any]], None]
OnProblem = Callable[[Problem], None]


class FileTail:
    """Follows one file; :meth:`poll` reads what is new. Not thread-safe:
    one follower thread owns it."""

    def __init__(self, path: str, on_records: OnRecords, on_problem: OnProblem,
                 budget: int = CHUNK, clock: Callable[[], float] = time.monotonic):
        self.path = str(path)
        self.on_records = on_records
        self.on_problem = on_problem
        # bytes read per poll: the follower goes round all files a chunk at a
        # time, so twenty long histories all show up at once, not one by one
        self.budget = budget
        self.fd: Optional[int] = None
        self.ident = None  # (st_dev, st_ino) of the open file
        self.offset = 0
        self.generation = 0
        self.reader: Optional[StreamReader] = None
        self.key: Any = None
        self.deleted = False
        self.gone = False  # deleted, read and closed: the follower drops this tail
        self.clock = clock
        self._stamp: Optional[tuple] = None  # (dev, ino, size, mtime_ns) at the last look
        self._quiet_since = 0.0  # when a deleted file last grew
        self._reported = 0

    # -- the public side ------------------------------------------------------

    def poll(self) -> bool:
        """Read what is new. Returns True when more is left for the next
        poll (the read budget ran out)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return self._poll_deleted() if self.fd is not None else False
        except OSError as e:
            self._warn(f"cannot stat: {e.strerror or e}")
            return False
        stamp = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if (stamp == self._stamp and self.fd is not None
                and (st.st_size == self.offset or self._reader_done())):
            return False  # idle: nothing changed since the last look
        self._stamp = stamp
        if self.fd is None:
            if not self._open():
                return False
        elif (st.st_dev, st.st_ino) != self.ident:
            self._read(limit=None)            # finish the old file first
            self._warn("file was replaced; following the new one")
            self.close()
            if not self._open():
                return False
        elif self.deleted:
            self.deleted = False
        self._check_in_place()
        try:
            size = os.fstat(self.fd).st_size
        except OSError:
            size = self.offset
        if size < self.offset:
            self._warn(f"file was truncated to {size} bytes; reading it again from the start")
            self._restart()
        return self._read()

    def close(self) -> None:
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None

    # -- internals ------------------------------------------------------------

    def _poll_deleted(self) -> bool:
        """Follow a deleted file to its end (its writer may still append);
        once it has not grown for :data:`DELETED_QUIET` s, close it: an
        unlinked file's descriptor would otherwise hold its disk space and
        a descriptor for as long as the monitor runs."""
        now = self.clock()
        if not self.deleted:
            self.deleted, self._quiet_since, self._stamp = True, now, None
            self._warn("file was deleted; following it to its end")
        offset = self.offset
        more = self._read()
        if more or self.offset != offset:
            self._quiet_since = now
        elif now - self._quiet_since >= DELETED_QUIET:
            self._warn(f"deleted file quiet for {DELETED_QUIET:g} s; closed")
            self.close()
            self.gone = True
        return more

    def _reader_done(self) -> bool:
        """Whether the reader wants no more of this file (see
        :attr:`.formats.RecordReader.done`); a stream file is read to its end."""
        return False

    def _check_in_place(self) -> None:
        """A look at the file before reading it, for formats whose writers
        rewrite it in place (CSV logs); :meth:`_restart` to read it again."""

    def _open(self) -> bool:
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            return False
        except OSError as e:
            self._warn(f"cannot open: {e.strerror or e}")
            return False
        st = os.fstat(fd)
        self.fd, self.ident, self.deleted = fd, (st.st_dev, st.st_ino), False
        self._restart()
        return True

    def _restart(self) -> None:
        """A new stream: new reader, new store key, from offset 0."""
        self.offset = 0
        self.generation += 1
        self.key = (self.path, self.generation)
        self.reader = StreamReader(self.path, raw_metrics=True)
        self._reported = 0

    def _read(self, limit: Optional[int] = -1) -> bool:
        budget = self.budget if limit == -1 else limit
        read = 0
        while budget is None or read < budget:
            if self._reader_done():
                return False
            try:
                data = os.pread(self.fd, CHUNK, self.offset)
            except OSError as e:
                self._warn(f"read failed: {e.strerror or e}")
                return False
            if not data:
                return False
            self.offset += len(data)
            read += len(data)
            records = self.reader.feed(data)
            self._forward_problems()
            if records:
                self.on_records(self.key, records)
        return True

    def _forward_problems(self) -> None:
        problems, self._reported = new_problems(self.reader, self._reported)
        for p in problems:
            self.on_problem(p)

    def _warn(self, reason: str) -> None:
        line = self.reader.line_number if self.reader is not None else 0
        self.on_problem(Problem(self.path, line, reason, "warning"))
