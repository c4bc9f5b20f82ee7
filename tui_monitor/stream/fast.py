"""The fast path: a chunk's ``metrics`` lines decoded and checked in one
``msgspec`` call (see the package docstring for why and how fast). A batch
that does not pass returns None; the reader then splits it and sends the
lines that fail to the careful path (:mod:`.decode`)."""
from __future__ import annotations

from typing import Annotated, Dict, List, Literal, Optional, Union

import msgspec

from ..schema import INT64_MAX, INT64_MIN, NONFINITE, TIME_MAX, TIME_MIN
from .decode import MAX_DEPTH, too_deep


class MetricsRecord(msgspec.Struct, gc=False):
    """A ``metrics`` record as the fast path reads it (raw mode): exactly what
    the careful path reads without a problem, with values ints and floats.

    The fast path decodes a chunk's lines against this type in one call; any
    line it does not fit (a version field, non-string text, a value ``true``
    or ``"3"``, a number too large for a float, ...) fails the batch and the
    careful path reads it and says why. Unknown fields are ignored, as there.
    ``gc=False``: these hold no cycles, and the cycle collector need not walk
    the hundreds of thousands a second that come through (measured: ~0.7 us a
    record less than plain dicts).
    """

    type: Literal["metrics"]
    seq: Annotated[int, msgspec.Meta(ge=0, le=INT64_MAX)]  # the ranges of schema.py: out of them, the
    step: Annotated[int, msgspec.Meta(ge=INT64_MIN, le=INT64_MAX)]  # careful path says which field and why
    time: Annotated[float, msgspec.Meta(ge=TIME_MIN, le=TIME_MAX)]  # an integer is taken, as a float
    values: Dict[str, Union[int, float, Literal["NaN", "Infinity", "-Infinity"]]]
    split: Optional[str] = None
    text: Optional[Dict[str, str]] = None
    v: None = None  # a version field: the careful path (it warns about newer versions)


_METRICS_LINES = msgspec.json.Decoder(List[MetricsRecord])
_METRICS_LINE = msgspec.json.Decoder(MetricsRecord)
#: Only a batch holding one of these bytes can hold a non-finite string value
#: ("N\u0061N" is "NaN" too). Single bytes: searching for one is a fast memchr.
_NONFINITE_MARKS = (b"N", b"I", b"\\")


def decode_metrics_lines(lines: List[bytes], max_line_bytes: int) -> Optional[List[MetricsRecord]]:
    """``lines`` as checked :class:`MetricsRecord` s, or None when any line
    is not one (or is longer than ``max_line_bytes``)."""
    longest = max(map(len, lines))
    if longest > max_line_bytes:
        return None
    if longest > 2 * MAX_DEPTH and any(too_deep(x) for x in lines if len(x) > 2 * MAX_DEPTH):
        return None
    try:
        if len(lines) == 1:
            data = lines[0]
            recs = [_METRICS_LINE.decode(data)]
        else:
            parts = lines.copy()  # one JSON array, in one copy ("[" + ... + "]" would copy twice more)
            parts[0] = b"[" + parts[0]
            parts[-1] += b"]"
            data = b",".join(parts)
            recs = _METRICS_LINES.decode(data)
    except Exception:  # noqa: BLE001 - msgspec.DecodeError, ValidationError, RecursionError
        return None
    if len(recs) != len(lines):  # a line held two records ("{...},{...}")
        return None
    if any(mark in data for mark in _NONFINITE_MARKS):
        for r in recs:  # the three strings as floats, as decode._fast_metrics does
            values = r.values
            for k, v in values.items():
                if v.__class__ is str:
                    values[k] = NONFINITE[v]
    return recs

