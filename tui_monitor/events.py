"""What happened since the last look, as typed events: runs that started,
went silent, came back, ended or stopped (no end record and nothing heard
for a day), and findings the diagnosis raised, changed or retracted.

``tui-monitor diagnose --follow`` prints them, ``--notify`` (:mod:`.notify`)
pages on some of them, and ``watch`` hands them to its notifier through
an engine made by :func:`observed`, which the TUI drives like any engine. An
:class:`EventTracker` turns one ``Diagnoser.update()`` (its ``Changes``) and
the store's run statuses into events, in the order a reader wants them: runs
started, then findings, then runs ended.

What was there when the monitor started (the history it reads first) is
marked ``live=False``: printed, never paged. No textual or rich import.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple, Union

__all__ = ["ENDED", "DONE", "RunInfo", "RunEvent", "FindingEvent", "Event", "EventTracker", "history_read", "observed"]

#: The statuses of a run that has ended.
ENDED = ("finished", "crashed", "interrupted")
#: The statuses of a run that writes no more, as far as anyone can tell: it
#: ended, or it stopped (no end record, nothing heard for a day).
DONE = ENDED + ("stopped",)

#: A finding "changed" for a reader when its confidence moved by at least this
#: much (or its severity or onset step moved); a growing count in its
#: explanation is not news.
CONFIDENCE_MOVE = 0.1
#: Seconds between two questions to the sources: have you read what was there at start?
READY_POLL = 0.1


class RunInfo(NamedTuple):
    """A run as an event names it (a snapshot: the run keeps changing)."""

    run_id: str
    rank: int
    name: str
    label: str  # the name, with the rank for a multi-rank job
    world_size: int
    status: str
    step: Optional[int]
    error: Optional[str]  # how a crashed run ended: "Type: message", or why it is taken for crashed

    @classmethod
    def of(cls, run: Any) -> "RunInfo":
        ws = getattr(run, "world_size", 1) or 1
        name = str(getattr(run, "name", None) or run.run_id)
        return cls(run_id=str(run.run_id), rank=int(run.rank), name=name,
                   label=f"{name}[rank {run.rank}]" if ws > 1 else name, world_size=int(ws),
                   status=str(run.status), step=getattr(run, "last_step", None), error=_error_text(run))

    @property
    def key(self) -> Tuple[str, int]:
        return (self.run_id, self.rank)

    def to_dict(self) -> Dict[str, Any]:
        return {"run_id": self.run_id, "rank": self.rank, "name": self.name, "world_size": self.world_size,
                "status": self.status, "step": self.step, "error": self.error}


def _error_text(run: Any) -> Optional[str]:
    end = getattr(run, "end", None)
    if not isinstance(end, dict):
        return None
    error = end.get("error")
    text = ""
    if isinstance(error, dict):
        text = ": ".join(str(x) for x in (error.get("type"), error.get("message")) if x)
    elif error:
        text = str(error)
    if end.get("signal"):
        text = f"{text} ({end['signal']})" if text else str(end["signal"])
    return text or None


@dataclass(frozen=True)
class RunEvent:
    """A run ``started`` (first seen), went ``silent``, was ``resumed``
    (records again after silence, or a new process after it ended),
    ``ended`` (finished, crashed, interrupted) or ``stopped`` (no end record
    and nothing heard for a day: it stopped, nobody knows how)."""

    change: str
    run: RunInfo
    time: float
    live: bool = True

    def to_dict(self) -> Dict[str, Any]:
        return {"type": "run", "change": self.change, "time": round(self.time, 3), "run": self.run.to_dict()}


@dataclass(frozen=True)
class FindingEvent:
    """A finding ``raised``, ``changed`` (severity, onset step or confidence
    moved) or ``retracted`` (its evidence went away)."""

    change: str
    finding: Any  # tui_monitor.diagnose.Finding
    time: float
    live: bool = True

    @property
    def id(self) -> str:
        return self.finding.id

    @property
    def severity(self) -> str:
        return self.finding.severity

    def to_dict(self) -> Dict[str, Any]:
        return {"type": "finding", "change": self.change, "time": round(self.time, 3),
                "finding": self.finding.to_dict()}


Event = Union[RunEvent, FindingEvent]


class EventTracker:
    """Says what an engine update (and the runs' statuses) changed, as events.

    ``ready()`` says the sources have read what was there at start (the
    ingest is no longer catching up); a thread asks it every
    :data:`READY_POLL` s until it does, and keeps the store's version at
    that moment (``history_version``). An update that starts at or below
    that version sees only history: its events have ``live=False``. Without
    ``ready`` everything is live. ``on_ready(runs)`` is told once, from that
    thread, with the number of runs read by then. ``clock`` stamps the
    events (epoch seconds)."""

    def __init__(self, store: Any, ready: Optional[Callable[[], bool]] = None,
                 clock: Callable[[], float] = time.time,
                 on_ready: Optional[Callable[[int], None]] = None) -> None:
        self.store = store
        self.clock = clock
        self.history_version: Optional[int] = None if ready is not None else -1
        self._status: Dict[Tuple[str, int], str] = {}
        self._shown: Dict[str, Tuple[str, Optional[int], float]] = {}  # finding id -> what the last event showed
        self._stop = threading.Event()
        if ready is not None:
            threading.Thread(target=self._await_ready, args=(ready, on_ready), name="tui-monitor-history",
                             daemon=True).start()

    def _await_ready(self, ready: Callable[[], bool], on_ready: Optional[Callable[[int], None]]) -> None:
        while not self._stop.is_set():
            try:
                done = ready()
            except Exception:  # noqa: BLE001 - a source that cannot say: take it as caught up
                done = True
            if done:
                self.history_version = self.store.version
                if on_ready is not None:
                    on_ready(len(self.store.runs))
                return
            self._stop.wait(READY_POLL)

    def stop(self) -> None:
        self._stop.set()

    @property
    def armed(self) -> bool:
        """True once the history has been read: what comes next is news."""
        return self.history_version is not None

    def update(self, engine_update: Callable[[], Any]) -> Tuple[Any, List[Event]]:
        """One engine update (``engine.update``, called here): its
        ``Changes`` and the events."""
        version = self.store.version
        changes = engine_update()
        history = self.history_version
        return changes, self.events(changes, live=history is not None and version > history)

    def events(self, changes: Any, live: bool = True) -> List[Event]:
        """The events of ``changes`` (a ``Changes``) and of the runs' statuses
        since the last call."""
        now = self.clock()
        first, ended = self._run_events(now, live)
        found: List[Event] = []
        for f in [*getattr(changes, "added", ()), *getattr(changes, "changed", ())]:
            # a finding added again (an engine made afresh, for a new baseline, says everything
            # once more) is news only where it moved
            before = self._shown.get(f.id)
            if before is None or _moved(before, _shown(f)):
                found.append(FindingEvent("changed" if before is not None else "raised", f, now, live))
                self._shown[f.id] = _shown(f)
        for f in getattr(changes, "retracted", ()):
            if self._shown.pop(f.id, None) is not None:
                found.append(FindingEvent("retracted", f, now, live))
        return first + found + ended

    def _run_events(self, now: float, live: bool) -> Tuple[List[Event], List[Event]]:
        first: List[Event] = []
        ended: List[Event] = []
        seen = set()
        for run in list(self.store.runs.values()):
            key, status = run.key, run.status
            seen.add(key)
            before = self._status.get(key)
            if before == status:
                continue
            if before is None and not getattr(run, "has_header", True) and status not in ENDED:
                continue  # records before their stream's header: the header renames this run
            self._status[key] = status
            info = RunInfo.of(run)
            if before is None:
                first.append(RunEvent("started", info, now, live))
            elif status == "running":
                first.append(RunEvent("resumed", info, now, live))
            if status == "silent":
                first.append(RunEvent("silent", info, now, live))
            elif status == "stopped":  # as good as ended: told with the ends
                ended.append(RunEvent("stopped", info, now, live))
            elif status in ENDED and before not in ENDED:
                ended.append(RunEvent("ended", info, now, live))
        for key in [k for k in self._status if k not in seen]:
            del self._status[key]  # renamed (its header came) or gone from the store
        return first, ended


def _shown(f: Any) -> Tuple[str, Optional[int], float]:
    return (f.severity, f.step, float(f.confidence))


def _moved(before: Tuple[str, Optional[int], float], now: Tuple[str, Optional[int], float]) -> bool:
    return before[0] != now[0] or before[1] != now[1] or abs(before[2] - now[2]) >= CONFIDENCE_MOVE - 1e-9


def history_read(ingest: Any) -> Callable[[], bool]:
    """``ready`` for an :class:`EventTracker` over an
    :class:`~tui_monitor.sources.Ingest`: it has read what was there at
    start, and has looked once at which of those runs' processes are gone
    (so a run that died yesterday without a word is history, not news)."""
    def ready() -> bool:
        if ingest.catching_up:
            return False
        ingest.check_liveness()
        return True
    return ready


def observed(engine_class: Any, store: Any, on_events: Callable[[List[Event]], None], ingest: Any = None,
             **engine_args: Any) -> Any:
    """An ``engine_class(store, **engine_args)`` (a ``Diagnoser``) whose
    every ``update()`` also hands its events to ``on_events`` (the TUI's
    alerts, ``watch --notify``'s notifier); what ``ingest`` read before it
    caught up is history (without ``ingest``: what ``store`` holds now). The TUI calls
    it as it calls any engine; an engine it makes again of the same type (a
    new baseline) keeps telling the same tracker, so nothing already said is
    news. A failing ``on_events`` never fails the update."""
    tracker = EventTracker(store, ready=history_read(ingest) if ingest is not None else None)
    if ingest is None:  # a store filled by someone else: what it holds now is the history
        tracker.history_version = store.version

    class Observed(engine_class):
        events = tracker  # the tracker every engine of this type tells

        def update(self) -> Any:
            changes, events = tracker.update(super().update)
            if events:
                try:
                    on_events(events)
                except Exception:  # noqa: BLE001 - the diagnosis goes on
                    pass
            return changes

    Observed.__name__ = Observed.__qualname__ = "Observed" + engine_class.__name__
    return Observed(store, **engine_args)
