"""One stream's state: a :class:`Run`, written by the store only.

The store's module (:mod:`.store`) says which thread writes and how readers
stay safe: containers on a run are replaced, never mutated in place.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from .growing import GrowingMap
from .series import Series

__all__ = ["Run", "RunKey", "STATUSES", "STOPPED_AFTER", "UNENDED"]

RunKey = Tuple[str, int]

#: Possible values of :attr:`Run.status`.
STATUSES = ("running", "finished", "crashed", "interrupted", "silent", "stopped")
#: The statuses of a run with no end record (its writer may still be at it,
#: or stopped long ago without saying how).
UNENDED = ("running", "silent", "stopped")
#: A run with no end record and nothing heard for this long (s) is
#: ``stopped``: a live job that writes nothing for a day is not training
#: anyway, and one whose log was last written years ago is not "silent for
#: years" (nor "finished": nobody knows how it ended).
STOPPED_AFTER = 24 * 3600.0

_PROBLEMS_KEEP = 50  # problem messages kept per run


class Run:
    """What is known about one stream: one rank of one run.

    Identity: ``run_id``, ``rank`` (:attr:`key`). From the header (``run``
    record, amended by ``meta``): ``name``, ``start``, ``host``, ``pid``,
    ``world_size``, ``config``, ``model``, ``tags``, and all of it as
    ``header``. Then:

    * ``series``: ``{(split, metric): Series}`` from ``metrics`` records;
      ``text``: ``{(split, metric): [(step, time, str), ...]}`` (last 1000);
    * ``grad_norm``: the global gradient norm, and ``grads``:
      ``{(layer, field): Series}`` with field ``grad``, ``weight`` or
      ``zero_rows``; :meth:`layers` lists the layers in model order;
    * ``status``: ``running``, ``finished``, ``crashed``, ``interrupted``,
      ``silent`` (running, but nothing heard for a while) or ``stopped`` (no
      end record and nothing heard for :data:`STOPPED_AFTER`: it stopped,
      nobody knows how; see :meth:`status_at` and :meth:`Store.mark_silent`);
      ``end``: the ``end`` record, if any;
    * ``last_seen``: the latest record ``time``; ``last_arrival``: the store
      clock when the last record came; ``last_step``; ``last_log`` and
      ``heartbeat`` (the last heartbeat record);
    * ``dropped`` and ``dropped_reasons``: what the writer reported it could
      not deliver; ``missing``: records the seq numbers say never came;
      ``duplicates``: records skipped as already seen; ``unknown``: count of
      unknown record types by type; ``problems``: records or values the store
      could not use, with the last messages in ``problem_log``;
    * ``restarts``: times a new header came for this key (a resumed process);
    * ``version``: bumped on every change.
    """

    def __init__(self, run_id: str, rank: int = 0) -> None:
        self.run_id = run_id
        self.rank = rank
        self.name = run_id
        self.start = None  # type: Optional[float]
        self.host = None  # type: Optional[str]
        self.pid = None  # type: Optional[int]
        self.world_size = 1
        self.header = {}  # type: Dict[str, Any]
        self.config = {}  # type: Dict[str, Any]
        self.model = {}  # type: Dict[str, Any]
        self.tags = {}  # type: Dict[str, Any]
        self.has_header = False
        self.status = "running"
        self.end = None  # type: Optional[Dict[str, Any]]
        self.last_seen = None  # type: Optional[float]
        self.last_arrival = None  # type: Optional[float]
        self.last_step = None  # type: Optional[int]
        self.last_log = None  # type: Optional[float]
        self.heartbeat = None  # type: Optional[Dict[str, Any]]
        self.series = GrowingMap()  # type: Mapping[Tuple[str, str], Series]
        self.text = GrowingMap()  # type: Mapping[Tuple[str, str], List[Tuple[int, float, str]]]
        self.grad_norm = Series()
        self.grads = GrowingMap()  # type: Mapping[Tuple[str, str], Series]
        self.dropped = 0
        self.dropped_reasons = {}  # type: Dict[str, int]
        self.missing = 0
        self.duplicates = 0
        self.unknown = {}  # type: Dict[str, int]
        self.problems = 0
        self.problem_log = []  # type: List[str]
        self.restarts = 0
        self.seq = -1  # highest seq applied
        self.version = 0

    def __repr__(self) -> str:
        return "Run(%r, rank=%d, name=%r, status=%r, series=%d)" % (
            self.run_id,
            self.rank,
            self.name,
            self.status,
            len(self.series),
        )

    @property
    def key(self) -> RunKey:
        return (self.run_id, self.rank)

    def get(self, metric: str, split: str = "train") -> Optional[Series]:
        return self.series.get((split, metric))

    def metrics(self, split: Optional[str] = None) -> List[Tuple[str, str]]:
        """The (split, metric) keys, in the order they first appeared."""
        return [k for k in list(self.series) if split is None or k[0] == split]

    def layers(self) -> List[str]:
        """Layer names of the gradient series, in model order."""
        seen = {}  # type: Dict[str, None]
        for layer, _ in list(self.grads):
            seen.setdefault(layer, None)
        return list(seen)

    def status_at(self, now: float, silent_after: float = 60.0, stopped_after: float = STOPPED_AFTER) -> str:
        """The status as it stands at ``now`` (epoch seconds): for a run with
        no end record, ``silent`` when no record came for ``silent_after``
        seconds, ``stopped`` when none came for ``stopped_after``. Compares
        the record times against ``now``, so the two clocks must roughly
        agree."""
        st = self.status
        if st in UNENDED:
            quiet = None if self.last_seen is None else now - self.last_seen
            if quiet is not None and quiet > stopped_after:
                return "stopped"
            if quiet is not None and quiet > silent_after:
                return "silent"
            return "running"
        return st

    def quiet_for(self, now: float) -> Optional[float]:
        """Seconds since the last record (None before any time came)."""
        return None if self.last_seen is None else max(0.0, now - self.last_seen)

    # -- writer side ------------------------------------------------------

    def problem(self, message: str) -> None:
        """Count a record or value the store (or a source) could not use."""
        self.problems += 1
        log = self.problem_log
        if len(log) >= _PROBLEMS_KEEP:
            log = log[-(_PROBLEMS_KEEP - 1) :]
        self.problem_log = log + [message]

    def _series(self, key: Tuple[str, str]) -> Series:
        s = self.series.get(key)
        if s is None:
            s = self.series[key] = Series()  # O(1); readers iterating it are not disturbed
        return s

    def _grad_series(self, key: Tuple[str, str]) -> Series:
        s = self.grads.get(key)
        if s is None:
            s = self.grads[key] = Series()
        return s
