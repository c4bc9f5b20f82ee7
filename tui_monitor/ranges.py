"""The ranges numbers from a stream must fall in, in one place (no imports:
the store, which must not import pydantic, uses them too).

The stream reader checks every number against these at decode
(:mod:`tui_monitor.schema`); past that edge a step fits the store's int64
columns, a pid can be given to ``kill()`` and a time to the clock functions.
"""
from __future__ import annotations

INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
INT32_MAX = (1 << 31) - 1
#: Seconds since the epoch that a clock can show: the years 1 to 9999 (``datetime``'s range).
TIME_MIN, TIME_MAX = -62135596800.0, 253402300799.0
