"""Reading the JSON-Lines stream (docs/stream-format.md): bytes in, records out.

This is the edge where the stream is validated, once. Everything past it gets
:mod:`tui_monitor.schema` models and never sees a malformed value.

- :class:`StreamReader` takes bytes as they come (a file being tailed, a
  socket) and returns the records of the lines completed so far. A last line
  without ``\\n`` is *not yet written*: it is kept pending, never an error.
  A reader never raises on bad input; each bad line becomes a
  :class:`Problem` (kept: the last ``max_problems``; counted: all).
- :func:`decode_line` decodes one line on its own (raising
  :class:`DecodeError` for a bad one), :func:`read_file` a whole file.

Speed. Two paths, one set of rules:

- The fast path (``raw_metrics=True``: what the store eats): all complete
  lines of a chunk are decoded and checked in one ``msgspec`` call as a list
  of :class:`MetricsRecord` (typed: ints, floats, the three non-finite
  strings and nothing else; big integers stay exact). When a batch fails, it
  is split in halves until every line that does not pass goes to the careful
  path on its own, which reads or reports it exactly as before. Measured
  (same process, a 5-scalar record): the msgspec call decodes *and* checks in
  ~0.4 us a record, less than ``orjson.loads`` of the line alone (~0.55 us);
  orjson and then the Python type checks cost ~1.0-1.15 us, per line or
  batched.
- The careful path, for every other line: ``orjson`` parses; a ``metrics``
  record is checked with plain type tests and built without pydantic
  validation; every other record, and any metrics record the fast check does
  not like, goes through pydantic. orjson does not refuse integers beyond 64
  bits (some versions silently return a float), so any record that might hold
  one is parsed again with the standard library, which keeps them exact.

Modules: :mod:`.decode` (one line, the careful path), :mod:`.fast` (the
msgspec batches), :mod:`.reader` (:class:`StreamReader`, :func:`read_file`),
:mod:`.encode` (records written back as JSON).
"""
from __future__ import annotations

from .decode import DecodeError, decode_line
from .encode import dumps_record, record_to_json
from .fast import MetricsRecord
from .reader import MAX_LINE_BYTES, MAX_PROBLEMS, Problem, ReaderStats, StreamReader, read_file

# importable from here as before the split, though not in __all__
from .decode import MAX_DEPTH  # noqa: F401
from .reader import MAX_GAPS  # noqa: F401

__all__ = [
    "MAX_LINE_BYTES", "MAX_PROBLEMS", "MetricsRecord", "Problem", "ReaderStats", "DecodeError", "StreamReader",
    "decode_line", "read_file", "record_to_json", "dumps_record",
]
