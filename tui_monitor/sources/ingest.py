"""The ingest hub: every source's records go into one store.

Sources run in their own threads and call :meth:`Ingest.records`; a lock
keeps the store single-writer, and nothing slow (reading /proc) is done
while holding it. The UI never waits on this: it reads the store and polls
``store.version`` on a timer. Housekeeping (silent and vanished runs) runs
on its own slow timer thread.
"""
from __future__ import annotations

import collections
import dataclasses
import os
import socket
import threading
import time
from typing import Any, Iterable, List, Optional, Tuple

import msgspec

from ..schema import split_metric
from ..store import UNENDED, Store
from ..stream import MetricsRecord, Problem
from .follow import Follower
from .listen import Listener

#: A running stream with no record (not even a heartbeat) for this long is
#: shown as silent: the hook sends a heartbeat every 10 s while the loop is quiet.
SILENT_AFTER = 30.0
HOUSEKEEPING_EVERY = 2.0


def as_dict(record: Any) -> dict:
    """A decoded record as a plain dict, as the store takes it."""
    if record.__class__ is dict:
        return record
    if record.__class__ is MetricsRecord:
        return msgspec.structs.asdict(record)
    if getattr(record, "type", None) == "metrics":
        return record.__dict__  # flat: values are already floats and ints
    return record.model_dump()


class Ingest:
    """Follows paths and sockets into ``store``."""

    def __init__(self, store: Optional[Store] = None, max_problems: int = 500, silent_after: float = SILENT_AFTER):
        self.store = store if store is not None else Store(splitter=split_metric)
        self.silent_after = silent_after
        # two writers under one run id: the store asks whether the one holding
        # the row still runs, and says where it put the other (store/rows.py)
        self.store.writer_alive = self._writer_alive
        self.store.report = self._kept_apart
        self.store.silent_after = silent_after
        # one entry per (file, reason), the latest last: a warning repeated a
        # thousand times is one entry with a count, and cannot push the real
        # FILE:LINE problems out of the list
        self._problems: "collections.OrderedDict[Tuple[str, str], Problem]" = collections.OrderedDict()
        self.max_problems = max_problems
        self.problem_count = 0
        self.records_in = 0
        self.followers: List[Follower] = []
        self.listeners: List[Listener] = []
        self.hostname = socket.gethostname()
        self._lock = threading.Lock()
        self._problems_lock = threading.Lock()  # sources report from their own threads
        self._stop = threading.Event()
        self._house: Optional[threading.Thread] = None

    # -- configuration --------------------------------------------------------

    def add_path(self, *paths: str, poll: Optional[bool] = None, interval: Optional[float] = None) -> Follower:
        f = Follower(paths, self.records, self.problem, poll=poll, interval=interval)
        self.followers.append(f)
        if self._house is not None:
            f.start()
        return f

    def listen(self, address: str, token: Optional[str] = None) -> Listener:
        lst = Listener(address, self._stream_records, self.problem, token=token, writer_alive=self._process_alive)
        self.listeners.append(lst)
        if self._house is not None:
            lst.start()
        return lst

    # -- running --------------------------------------------------------------

    def start(self) -> "Ingest":
        for s in [*self.followers, *self.listeners]:
            s.start()
        self._house = threading.Thread(target=self._housekeeping, name="tui-monitor-house", daemon=True)
        self._house.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for s in [*self.followers, *self.listeners]:
            s.stop()

    def read_all(self) -> None:
        """Read every followed file to its current end, in this thread."""
        for f in self.followers:
            f.read_all()
        self.check_liveness()

    @property
    def catching_up(self) -> bool:
        """True while a follower still has history to read (a backlog)."""
        return any(f.catching_up for f in self.followers)

    # -- what sources call ----------------------------------------------------

    def records(self, stream: Any, records: Iterable[Any], rows_decided: bool = False) -> None:
        # The reader's fast-path records go to the store as they are (it takes
        # them in blocks); the rest as dicts.
        batch = [r if r.__class__ is dict or r.__class__ is MetricsRecord else as_dict(r) for r in records]
        with self._lock:
            self.store.apply_many(batch, stream=stream, rows_decided=rows_decided)
            self.records_in += len(batch)

    def _stream_records(self, stream: Any, records: Iterable[Any]) -> None:
        """A listener's records: it gave each stream its row itself."""
        self.records(stream, records, rows_decided=True)

    def _writer_alive(self, run: Any) -> Optional[bool]:
        """Whether the process writing ``run`` still runs; None when it
        cannot be seen from here (another host, no pid)."""
        return self._process_alive(run.host, run.pid, run.start)

    def _process_alive(self, host: Any, pid: Any, start: Optional[float]) -> Optional[bool]:
        """Whether process ``pid`` of ``host``, started at ``start``, still
        runs; None when it cannot be seen from here (another host, no pid)."""
        if host != self.hostname or not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
            return None
        return _alive(pid, start)

    def _kept_apart(self, stream: Any, message: str) -> None:
        # a file's stream token is (path, generation) or (kind, path): the path names it
        parts = stream if isinstance(stream, tuple) else (stream,)
        source = next((p for p in parts if isinstance(p, str) and os.sep in p), str(parts[0]) if parts else "")
        self.problem(Problem(source, 1, message, "warning"))

    def problem(self, problem: Problem) -> None:
        key = (problem.source, problem.reason)
        with self._problems_lock:
            self.problem_count += 1
            kept = self._problems.pop(key, None)
            if kept is not None:
                problem = dataclasses.replace(kept, count=kept.count + problem.count,
                                              last_line=problem.last_line or problem.line_number)
            elif len(self._problems) >= self.max_problems:
                self._problems.popitem(last=False)
            self._problems[key] = problem

    @property
    def problems(self) -> List[Problem]:
        """The problems kept, one per file and reason, oldest first."""
        return self.recent_problems()[0]

    def recent_problems(self) -> Tuple[List[Problem], int]:
        """The problems kept (one per file and reason, with the count of its
        repeats; the latest ``max_problems``, oldest first) and how many were
        ever reported, repeats included, taken together (sources add to both
        from their own threads)."""
        with self._problems_lock:
            return list(self._problems.values()), self.problem_count

    # -- housekeeping -----------------------------------------------------------

    def _housekeeping(self) -> None:
        while not self._stop.wait(HOUSEKEEPING_EVERY):
            try:
                self.check_liveness()
            except Exception as e:  # noqa: BLE001
                self.problem(Problem("<monitor>", 0, f"internal error: {e!r}"))

    def check_liveness(self, now: Optional[float] = None) -> None:
        """Mark runs silent (stopped after a day), and crashed when their
        process on this host is gone without an end record, unless nothing
        came from it for a day (then it stopped, nobody knows how: a log
        read long after its process went). /proc is read outside the store
        lock: a slow /proc must not hold up the sources."""
        now = now if now is not None else time.time()
        with self._lock:
            local = [(run, run.pid, run.start) for run in self.store.runs.values()
                     if run.host == self.hostname and run.pid and run.status in UNENDED
                     and run.status_at(now, self.silent_after) != "stopped"]
        gone = [(run, pid, start) for run, pid, start in local if not _alive(pid, start)]
        with self._lock:
            for run, pid, start in gone:
                # still the same process, and not ended meanwhile
                if run.status in UNENDED and (run.pid, run.start) == (pid, start):
                    self.store.mark_gone(run, f"process {pid} on {run.host} ended without an end "
                                              "record (killed? out of memory?)")
            self.store.mark_silent(now=now, after=self.silent_after)


def _boot_time() -> int:
    """When the host booted (``btime`` of /proc/stat), in wall-clock time: read
    each time, as it moves when the clock is stepped (NTP), and a stale one
    would take a live run's process for a newer one with a recycled pid."""
    with open("/proc/stat", "rb") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(b"btime"))


def _alive(pid: int, start: Optional[float]) -> bool:
    """Whether process ``pid`` still runs (and was not replaced by a newer
    process with a recycled pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True
    if start is None:
        return True
    try:  # a process that started after the run did is not the run's
        with open(f"/proc/{pid}/stat", "rb") as f:
            ticks = int(f.read().rsplit(b")", 1)[1].split()[19])
        began = _boot_time() + ticks / os.sysconf("SC_CLK_TCK")
        return began <= start + 2.0
    except Exception:  # noqa: BLE001 - no /proc: trust kill(0)
        return True


def open_ingest(paths: Iterable[str] = (), listen: Optional[str] = None, token: Optional[str] = None,
                poll: Optional[bool] = None, start: bool = True,
                silent_after: float = SILENT_AFTER) -> "tuple[Store, Ingest]":
    """A store fed from ``paths`` (files or directories) and, optionally, a
    socket listener; started unless ``start=False``."""
    ingest = Ingest(silent_after=silent_after)
    paths = list(paths)
    if paths:
        ingest.add_path(*paths, poll=poll)
    if listen:
        ingest.listen(listen, token=token or os.environ.get("TUI_MONITOR_TOKEN"))
    if start:
        ingest.start()
    return ingest.store, ingest
