"""The rows of one run id: several writers naming the same run id.

A run id names one run: the ranks of a job share it (one row per rank), and
a job started again after its process ended (a requeue, a resume) continues
it. But two processes that write at the same time under one id (two jobs
given the same ``TUI_MONITOR_RUN_ID``) are two runs: the second is kept
apart on a row of its own, ``RUN_ID~2`` (``~3``...), shown as ``NAME~2``,
its header keeping what it was sent as ``sent_run_id`` and ``sent_name``.

The listener decides this for its streams (:mod:`..sources.listen_streams`:
a stream that has not ended holds its row) and the store for the others,
stream files above all (:meth:`.store.Store._row_for`: a writer whose
process still runs, or whose records overlap the newcomer's, holds its
row). Both go through :func:`first_free`, :func:`as_row` and
:func:`kept_apart`, so the rows, the names and the problem read the same
whichever way the records came.
"""
from __future__ import annotations

from typing import Callable, Iterator, Optional, Tuple, TypeVar

__all__ = ["as_row", "first_free", "kept_apart", "row_ids"]

Holder = TypeVar("Holder")


def row_ids(run_id: str) -> Iterator[str]:
    """The rows of ``run_id`` in the order they are given out: ``run_id``,
    ``run_id~2``, ``run_id~3``..."""
    yield run_id
    n = 2
    while True:
        yield f"{run_id}~{n}"
        n += 1


def first_free(run_id: str, holder: Callable[[str], Optional[Holder]]) -> Tuple[str, Optional[Holder]]:
    """The first row of ``run_id`` that ``holder(row)`` says nobody holds,
    and who holds ``run_id``'s own row (None when the row found is it)."""
    first = None
    for row in row_ids(run_id):
        held = holder(row)
        if held is None:
            return row, first
        if first is None:
            first = held


def as_row(header: dict, run_id: str, row: str) -> dict:
    """``header`` (a writer's ``run`` record naming ``run_id``) as stored on
    ``row``: its run id is the row's, and a row kept apart is told apart by
    name too (``train~2``), what it was sent kept as ``sent_run_id`` and
    ``sent_name``. Changes and returns ``header``."""
    if header.get("run_id") != row:
        header["sent_run_id"] = header.get("run_id")
    if row != run_id and isinstance(header.get("name"), str):
        header["sent_name"] = header["name"]
        header["name"] += row[len(run_id):]
    header["run_id"] = row
    return header


def kept_apart(run_id: str, rank: int, holder: str, newcomer: str, why: str, row: str) -> str:
    """Why a writer's records are on ``row`` and not on its run id's row
    (``holder`` and ``newcomer`` say who writes each, e.g. ``pid 123``;
    ``why`` what the newcomer did, e.g. ``did not resume that stream``)."""
    return (f"run {run_id[:200]!r} rank {rank} is being written by {holder}; another writer ({newcomer}) {why}, "
            f"so its records are kept apart as run {row[:200]!r}")
