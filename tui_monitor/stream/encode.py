"""Records written back as the stream spells them (``cat --json``, the
diagnose command's store food): non-finite floats as strings, integers exact."""
from __future__ import annotations

import json
from typing import Any, Dict

import orjson

from ..safe_text import json_escapes
from ..schema import encode_metric_value


def _jsonable(x: Any) -> Any:
    t = type(x)
    if t is float:
        return encode_metric_value(x)
    if t is not dict and t is not list and t is not tuple and isinstance(x, float):   # numpy.float64
        return encode_metric_value(float(x))
    if t is dict:
        return {k: _jsonable(v) for k, v in x.items()}
    if t is list or t is tuple:
        return [_jsonable(v) for v in x]
    return x


def json_text(obj: Any) -> str:
    """``obj`` as one line of JSON for a terminal, a file or a pipe: non-finite
    floats spelled as the stream spells them (``"NaN"``, ``"Infinity"``; strict
    parsers refuse a bare NaN), anything JSON has no type for as its text,
    stream text kept as it is with its control characters escaped."""
    return json.dumps(_jsonable(obj), ensure_ascii=False, allow_nan=False, default=str).translate(json_escapes())


def record_to_json(record: Any) -> Dict[str, Any]:
    """A record as a JSON-ready dict in the stream's own form: the fields that
    were given, non-finite floats spelled ``"NaN"``, ``"Infinity"``,
    ``"-Infinity"``, integers exact."""
    d = record.model_dump(exclude_unset=True)
    d.pop("type", None)
    return _jsonable({"type": record.type, **d})


def dumps_record(record: Any) -> bytes:
    """One record as a JSON line (without the ``\\n``)."""
    obj = record_to_json(record)
    try:
        return orjson.dumps(obj)
    except (TypeError, orjson.JSONEncodeError):  # integers beyond 64 bits, lone surrogates, deep nesting
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode()
