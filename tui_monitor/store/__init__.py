"""The run store: runs, their metric series, smoothing and decimation.

Imports numpy and the standard library only.

* :class:`Series`: append-only (step, time, value) points in growable numpy
  buffers, 20 bytes a point (at most 24 with the growth slack), with
  ``last``, ``min``/``max``, ``range``/``window``, an incremental
  TensorBoard-style ``ema`` and a min/max ``decimate`` for charts.
* :class:`Run`: one stream's header, status and series.
* :class:`Store`: runs by ``(run_id, rank)``, fed with decoded records by
  ``apply``/``apply_many``; ``version`` counters tell readers what changed.

Threads: one writer (the ingest side), any number of readers; see
:mod:`tui_monitor.store.series` and :mod:`tui_monitor.store.store`.

Modules: :mod:`.series` (Series), :mod:`.run` (Run), :mod:`.store` (Store
and its record handlers), :mod:`.bulk` (the bulk path of ``apply_many``).
"""

from ._numeric import NAN, NEGINF, POSINF, Decimated, decimate_arrays, ema_reference
from .run import STATUSES, STOPPED_AFTER, UNENDED, Run, RunKey
from .store import Store, default_splitter
from .series import Series, Snapshot

__all__ = [
    "Series",
    "Snapshot",
    "Decimated",
    "Run",
    "RunKey",
    "Store",
    "STATUSES",
    "STOPPED_AFTER",
    "UNENDED",
    "default_splitter",
    "decimate_arrays",
    "ema_reference",
    "NAN",
    "POSINF",
    "NEGINF",
]
