"""Following files and directories: one thread for any number of files.

Every tick the follower stats each known file and reads what is new (a stat
is a few microseconds, so 1,000 files cost milliseconds), and rescans the
directories for new stream files. watchdog only makes this prompt: its events
wake the thread at once instead of at the next tick. On filesystems where
inotify does not see writes made by other machines (NFS, Lustre, sshfs, ...)
watchdog is left out and the ticks are shorter; ``poll=True`` forces that.
"""
from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Tuple

from ..stream import Problem
from ..stream.files import open_regular
from .registry import Discovery, make_tail
from .tail import FileTail, OnProblem, OnRecords, OpenFiles

#: Filesystems whose remote writes inotify does not report.
REMOTE_FS = {"nfs", "nfs4", "lustre", "cifs", "smb3", "smbfs", "9p", "gpfs", "beegfs", "ceph",
             "glusterfs", "afs", "panfs", "wekafs", "virtiofs", "vboxsf", "davfs"}
SUFFIXES = (".jsonl",)  # named files that are followed even before they exist
#: Seconds between looks for new files, and the least time between ticks.
SCAN_EVERY = 1.0
MIN_TICK_GAP = 0.05
#: Bytes of a new stream file looked at for its header's start time.
HEADER_PEEK = 65536


def filesystem_type(path: str, mounts: Optional[str] = None) -> str:
    """The type of the filesystem holding ``path`` (from /proc/self/mounts;
    ``""`` when unknown)."""
    if mounts is None:
        try:
            with open("/proc/self/mounts", encoding="utf-8", errors="replace") as f:
                mounts = f.read()
        except OSError:
            return ""
    real = os.path.realpath(path)
    best, best_type = "", ""
    for line in mounts.splitlines():
        parts = line.split()
        if len(parts) < 3:
            continue
        point = parts[1].replace("\\040", " ")
        inside = real == point or real.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, best_type = point, parts[2]
    return best_type


def header_start(path: str) -> float:
    """The ``start`` of the stream file at ``path`` (its first line, a ``run``
    record), or infinity when there is none to read yet."""
    try:
        fd = open_regular(path)
    except OSError:
        return math.inf
    try:
        first = os.read(fd, HEADER_PEEK).split(b"\n", 1)
        header = json.loads(first[0]) if len(first) == 2 else None
    except (OSError, ValueError, RecursionError):
        return math.inf
    finally:
        os.close(fd)
    start = header.get("start") if isinstance(header, dict) and header.get("type") == "run" else None
    if type(start) not in (int, float):
        return math.inf
    try:
        start = float(start)
    except OverflowError:
        return math.inf
    return start if math.isfinite(start) else math.inf


def reading_order(path: str) -> Tuple:
    """Files found together are read in name order (TensorBoard's files of
    one run, oldest first), stream files among themselves by when their
    writer started: a killed job's file is read before its requeued
    successor's whatever their names, so the successor continues its row
    (:mod:`..store.rows` decides with what was read before)."""
    if path.endswith(SUFFIXES):
        return (1, header_start(path), path)
    return (0, 0.0, path)


def needs_polling(path: str, mounts: Optional[str] = None) -> bool:
    """True where filesystem events cannot be trusted to see new writes."""
    fs = filesystem_type(path, mounts)
    return fs in REMOTE_FS or fs.startswith("fuse.sshfs") or fs == "fuse"


class Follower:
    """Follows stream files under ``paths`` (files or directories, searched
    recursively for the files :mod:`.registry` recognises, by name or by
    content, and reports the others; a file named in ``paths`` is followed
    whatever it holds) in a background thread, with at most a budget of them
    open at once (:class:`.tail.OpenFiles`). ``context`` is handed to the formats
    (``parse_regex``: text patterns; what files of one run share). A tail
    that is done (a deleted file gone quiet) is dropped; a new file at its
    path is found by the next scan. ``clock`` times the scans and the tails
    (tests give a fake one)."""

    def __init__(self, paths: Iterable[str], on_records: OnRecords, on_problem: OnProblem,
                 poll: Optional[bool] = None, interval: Optional[float] = None,
                 clock: Callable[[], float] = time.monotonic):
        self.roots = [str(p) for p in paths]
        self.on_records = on_records
        self.on_problem = on_problem
        self.polling = any(needs_polling(p) for p in self.roots) if poll is None else bool(poll)
        self.interval = interval if interval is not None else (0.5 if self.polling else 1.0)
        self.tails: Dict[str, FileTail] = {}
        self.open_files = OpenFiles(on_problem)  # which tails hold a descriptor
        self.clock = clock
        self.wake = threading.Event()
        self.stopped = threading.Event()
        self.ticks = 0
        self._observer = None
        self._thread: Optional[threading.Thread] = None
        self._missing_warned: set = set()
        self._catching_up = False  # some file had more than one poll's budget left last tick
        self._last_scan = 0.0
        self.context: Dict = {}
        self.discovery = Discovery(on_problem)  # which files found in folders are read (sources/registry.py)

    # -- control ----------------------------------------------------------------

    def start(self) -> "Follower":
        if not self.polling:
            self._observer = self._start_watchdog()
        self._thread = threading.Thread(target=self._loop, name="tui-monitor-follow", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.stopped.set()
        self.wake.set()
        if self._observer is not None:
            try:
                self._observer.stop()
                self._observer.join(timeout)
            except Exception:  # noqa: BLE001
                pass
        if self._thread is not None:
            self._thread.join(timeout)
        for tail in self.tails.values():
            tail.close()
        self.open_files.close()

    @property
    def catching_up(self) -> bool:
        """True while files still hold more than one poll could read."""
        return self._catching_up or self.ticks == 0

    def read_all(self) -> None:
        """One pass to the current end of every file, in the calling thread
        (for ``--once`` and tests)."""
        self.open_files.refresh()
        self.scan()
        for tail in list(self.tails.values()):
            while tail.poll():
                pass
            self.open_files.polled(tail)
        self._drop_gone()

    # -- the loop -----------------------------------------------------------------

    def _loop(self) -> None:
        while not self.stopped.is_set():
            try:
                self.tick()
            except Exception as e:  # noqa: BLE001 - one bad tick must not end following
                self.on_problem(Problem("<follower>", 0, f"internal error: {e!r}", "error"))
            if not self._catching_up:
                # Writers flushing many files wake us dozens of times a second:
                # reading them together, at most 20 times a second, costs the
                # monitor's other threads far less than a tick per event.
                self.stopped.wait(MIN_TICK_GAP)
            self.wake.wait(self.interval)
            self.wake.clear()

    def tick(self) -> None:
        now = self.clock()
        if now - self._last_scan >= SCAN_EVERY:  # new files: found within a second
            self.scan()
            self._last_scan = now
        more = False
        self.open_files.refresh()
        for tail in list(self.tails.values()):
            if self.stopped.is_set():
                return
            more |= tail.poll()
            self.open_files.polled(tail)
        self._drop_gone()
        self.ticks += 1
        self._catching_up = more
        if more:
            self.wake.set()  # a file had more than one poll's budget: come straight back

    def scan(self) -> List[str]:
        """Pick up stream files that appeared, in the order they are read
        (:func:`reading_order`); returns their paths."""
        new = []
        for root in self.roots:
            for path in sorted((p for p in self._files_under(root) if p not in self.tails), key=reading_order):
                explicit = path == root  # else found in a folder: the discovery has read its start already
                tail = make_tail(path, self.on_records, self.on_problem, explicit=explicit, context=self.context,
                                 fmt=None if explicit else self.discovery.format(path))
                if tail is not None:
                    tail.clock = self.clock
                    self.tails[path] = tail
                    new.append(path)
        self.discovery.report()
        return new

    def _drop_gone(self) -> None:
        """Forget tails that are done (closed), so they are not looked at again."""
        for path in [p for p, tail in self.tails.items() if tail.gone]:
            self.open_files.forget(self.tails.pop(path))

    def _files_under(self, root: str) -> List[str]:
        if os.path.isfile(root) or root.endswith(SUFFIXES) and not os.path.isdir(root):
            return [root]  # a named file is followed even before it exists
        if not os.path.isdir(root):
            if root not in self._missing_warned:
                self._missing_warned.add(root)
                self.on_problem(Problem(root, 0, "no such file or directory (yet); waiting for it", "warning"))
            return []
        out = []
        stack = [root]
        while stack:
            d = stack.pop()
            try:
                with os.scandir(d) as it:
                    for e in it:
                        if e.is_dir(follow_symlinks=False):
                            if not e.name.startswith("."):
                                stack.append(e.path)
                        elif e.path in self.tails or self.discovery.wanted(e.path):
                            out.append(e.path)
            except OSError:
                continue
        return sorted(out)  # in name order: TensorBoard's files of one run, oldest first

    def _start_watchdog(self):
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:
            self.polling = True
            return None
        wake = self.wake

        class Wake(FileSystemEventHandler):
            def on_any_event(self, event):  # noqa: D401 - any change: look now
                wake.set()

        observer = Observer()
        watched = set()
        for root in self.roots:
            d = root if os.path.isdir(root) else str(Path(root).parent)
            if d in watched or not os.path.isdir(d):
                continue
            try:
                observer.schedule(Wake(), d, recursive=os.path.isdir(root))
                watched.add(d)
            except Exception:  # noqa: BLE001 - e.g. out of inotify watches: ticks still work
                pass
        try:
            observer.daemon = True
            observer.start()
        except Exception:  # noqa: BLE001
            return None
        return observer
