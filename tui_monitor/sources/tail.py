"""Following one stream file from its last offset.

A file is read in chunks from where the last read stopped; a last line
without ``\\n`` waits in the reader for the rest. While a file is held open,
a file deleted while its writer still appends to it is followed to the end; a
file replaced at its path (rotation, ``mv`` + recreate) is read to its end and
then the new one is followed; a file truncated below the offset is read again
from the start. Each of these is reported as a warning. A deleted file that
has been read to its end and has not grown for :data:`DELETED_QUIET` seconds
is closed (its writer is gone), and the follower forgets it.

Descriptors are a budget, not one a file: the follower (:class:`OpenFiles`)
keeps the most recently active files open and :meth:`FileTail.release` s the
idle rest. The budget is the process's: the followers of a process (two
ingests, say) share it. A released tail keeps its offset, its reader and the identity of
its file; it is opened again when the size or the modification time at its
path moves, and goes on where it stopped (same file), from the start (a new
file at the path: replaced) or from the start of the same file (truncated).
What a released file cannot do is be followed after it is deleted or renamed
away: that is reported, and what its writer adds to it afterwards is not read.

Only regular files are read: a FIFO, a device (a symlink to ``/dev/zero``), a
socket at a followed path is reported once and left alone (opening a FIFO
blocks, a device never ends). Files are opened non-blocking and checked again
after the open, so a path swapped between the look and the open cannot hang.

An idle file costs one ``stat`` a poll: when the inode, the size (all of it
read) and the modification time are those of the last poll, nothing else is
done.
"""
from __future__ import annotations

import collections
import errno
import os
import resource
import stat as stat_mod
import threading
import time
import weakref
from typing import Any, Callable, List, Optional

from ..stream import Problem, StreamReader
from ..stream.files import NotRegularFile, file_kind, open_regular
from ..stream.reader import new_problems

CHUNK = 1 << 20
#: Seconds a deleted file, read to its end, may go without growing before it is closed.
DELETED_QUIET = 60.0

OnRecords = Callable[[Any, List[Any]], None]
OnProblem = Callable[[Problem], None]

#: Errors that say the process (or system) is out of descriptors, not that the file is bad.
_OUT_OF_FDS = (errno.EMFILE, errno.ENFILE)
def descriptor_budget() -> int:
    """How many followed files may be open at once: a quarter of the soft
    ``RLIMIT_NOFILE`` (the rest is for sockets, the listener's connections,
    the TUI and the libraries), at least 16 and at most 1,024."""
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):
        soft = 1024
    if soft == resource.RLIM_INFINITY or soft <= 0:
        soft = 1 << 20
    return max(16, min(1024, soft // 4))


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
        self.released = False  # closed to save a descriptor; ident, offset and reader kept
        self.active = False  # read or opened since the follower last looked (see OpenFiles)
        self.out_of_fds = False  # the last open failed for want of a descriptor: try again
        self._irregular: Optional[str] = None  # what the path is when it is not a regular file (reported)

    # -- the public side ------------------------------------------------------

    def poll(self) -> bool:
        """Read what is new. Returns True when more is left for the next
        poll (the read budget ran out)."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if self.fd is not None:
                return self._poll_deleted()
            if self.released:
                self._forget("file was deleted or moved away while idle (not held open); what it had was read")
            return False
        except OSError as e:
            self._warn(f"cannot stat: {e.strerror or e}")
            return False
        if not stat_mod.S_ISREG(st.st_mode):
            self._not_regular(file_kind(st.st_mode))
            return False
        self._irregular = None
        stamp = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if (stamp == self._stamp and (self.fd is not None or self.released)
                and (st.st_size == self.offset or self._reader_done())):
            return False  # idle: nothing changed since the last look
        self._stamp = stamp
        if self.fd is None:
            if not (self._reopen() if self.released else self._open()):
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

    def __del__(self) -> None:
        # a follower dropped without stop(): its descriptors go with it
        if getattr(self, "fd", None) is not None:
            self.close()

    def release(self) -> bool:
        """Close the descriptor of an idle file, keeping where it was read to
        (the next :meth:`poll` that sees it move opens it again). False when
        it must stay open: a deleted file can only be followed through it."""
        if self.fd is None or self.deleted:
            return False
        self.close()
        self.released = True
        return True

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
        fd = self._open_fd()
        if fd is None:
            return False
        st = os.fstat(fd)
        self.fd, self.ident, self.deleted, self.released = fd, (st.st_dev, st.st_ino), False, False
        self.active = True
        self._restart()
        return True

    def _reopen(self) -> bool:
        """Open a released file again: the same file goes on from its offset
        (a truncation is caught by :meth:`poll`), another one at the path is
        a replacement, read from its start."""
        fd = self._open_fd()
        if fd is None:
            return False
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) == self.ident:
            self.fd, self.released, self.active = fd, False, True
            return True
        os.close(fd)
        self.released = False
        self._warn("file was replaced while idle (not held open); following the new one")
        return self._open()

    def _open_fd(self) -> Optional[int]:
        self.out_of_fds = False
        try:
            return open_regular(self.path)
        except FileNotFoundError:
            return None
        except NotRegularFile as e:
            self._not_regular(e.kind)
            return None
        except OSError as e:
            if e.errno in _OUT_OF_FDS:  # not this file's fault: the follower makes room, then it is tried again
                self.out_of_fds = True
                self._stamp = None
                return None
            self._warn(f"cannot open: {e.strerror or e}")
            return None

    def _not_regular(self, kind: str) -> None:
        """The path is (now) a FIFO, a device...: say so once, read none of
        it; a file held open before is finished and closed."""
        if self.fd is not None:
            self._read(limit=None)
            self.close()
        self.released, self._stamp = False, None
        if self._irregular != kind:
            self._irregular = kind
            self._warn(f"not a regular file ({kind}); not read")

    def _forget(self, reason: str) -> None:
        self._warn(reason)
        self.released = False
        self.gone = True

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
            self.active = True
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


#: The budgets of this process's followers that share :func:`descriptor_budget`.
_SHARING: "weakref.WeakSet[OpenFiles]" = weakref.WeakSet()
_SHARING_LOCK = threading.Lock()  # followers come, go and look from their own threads


class OpenFiles:
    """The descriptor budget of one follower: at most ``budget`` tails hold
    a descriptor, the most recently active ones; the least recently active
    is released when another needs one. The budget is the process's
    (:func:`descriptor_budget`), shared equally by the followers that hold
    descriptors (looked at by :meth:`refresh`, once a tick): a follower
    alone has all of it, and two ingests in one process (one left unstopped
    after a ``--once`` read) no longer take a quarter of the limit each. A
    ``budget`` given (or set) is this follower's own, unshared. A tail that
    could not open for want of descriptors (``EMFILE``: others in the
    process hold them) shrinks the budget to what is open now, less a
    quarter, once, with a warning. :meth:`close` leaves the sharing."""

    def __init__(self, on_problem: OnProblem, budget: Optional[int] = None):
        self.on_problem = on_problem
        self._open: "collections.OrderedDict[FileTail, None]" = collections.OrderedDict()
        self._squeezed = False
        self._process = descriptor_budget()
        self._own = budget            # given or set: not shared
        self._limit: Optional[int] = None   # after running out of descriptors
        self._budget = budget if budget is not None else self._process
        if budget is None:
            with _SHARING_LOCK:
                _SHARING.add(self)

    def __len__(self) -> int:
        return len(self._open)

    @property
    def budget(self) -> int:
        return self._budget

    @budget.setter
    def budget(self, value: int) -> None:
        self._own = value
        with _SHARING_LOCK:
            _SHARING.discard(self)
        self.refresh()

    def refresh(self) -> None:
        """Take this follower's share of the process's budget again (the
        followers holding descriptors may have come or gone)."""
        if self._own is not None:
            budget = self._own
        else:
            with _SHARING_LOCK:
                others = list(_SHARING)
            holders = 1 + sum(1 for other in others if other is not self and other._open)
            budget = max(1, self._process // holders)
        self._budget = budget if self._limit is None else min(budget, self._limit)

    def close(self) -> None:
        """The follower stopped (its tails closed): its share goes to the others."""
        with _SHARING_LOCK:
            _SHARING.discard(self)
        self._open.clear()

    def polled(self, tail: FileTail) -> None:
        """Account for ``tail`` after a poll: it holds a descriptor or not,
        and was active or not."""
        if tail.fd is None:
            self._open.pop(tail, None)
            if tail.out_of_fds:
                self._squeeze(tail)
            return
        if tail.active or tail not in self._open:
            tail.active = False
            self._open[tail] = None
            self._open.move_to_end(tail)
        self._evict(keep=tail)

    def forget(self, tail: FileTail) -> None:
        self._open.pop(tail, None)

    def _evict(self, keep: FileTail) -> None:
        excess = len(self._open) - self.budget
        if excess <= 0:
            return
        victims = []
        for old in self._open:  # least recently active first
            if len(victims) >= excess:
                break
            if old is not keep and old.fd is not None and not old.deleted:  # a deleted file needs its fd
                victims.append(old)
        for old in victims:
            old.release()
            del self._open[old]

    def _squeeze(self, tail: FileTail) -> None:
        if not self._squeezed:
            self._squeezed = True
            new = max(1, len(self._open) * 3 // 4)
            self.on_problem(Problem("<follower>", 0, f"out of file descriptors with {len(self._open)} files "
                                                     f"open; keeping at most {new} open at once", "warning"))
            self._limit = new
            self.refresh()
        self._evict(keep=tail)
