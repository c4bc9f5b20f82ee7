"""One line to one record: the careful path, where every rule of the stream
format is checked and every bad line gets a message that says why. The
reader's fast path (:mod:`.fast`) sends here whatever it does not accept."""
from __future__ import annotations

import json
import re
from typing import Any, List, Optional, Tuple

import orjson
from pydantic import ValidationError

from ..schema import (
    FORMAT_VERSION, IDENTITY_FIELDS, INT32_MAX, INT64_MAX, INT64_MIN, NONFINITE, TIME_MAX, TIME_MIN, TYPES, Metrics, _build,
    _json_type_name, decode_metric_value,
)

_BIG = float(1 << 63)  # a float this large may be an integer orjson could not keep
_LONG_DIGITS = re.compile(rb"\d{19}")
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(rb"[\[\]{}]")
#: Deepest nesting read. Parsers can crash the interpreter on very deep input
#: (orjson 3.8 and the standard library both do, past ~100,000 levels), so a
#: long line is checked before it is parsed; 255 is also what orjson writes.
MAX_DEPTH = 255


class DecodeError(ValueError):
    """A line that is not a record; ``str(e)`` says why."""


class UnknownRecord:
    """A record of a type this reader does not know (a newer writer's): counted, not returned."""

    __slots__ = ("type",)

    def __init__(self, type_: str):
        self.type = type_


# warnings raised while decoding: (once-key or None, message)
Warnings = List[Tuple[Optional[str], str]]


def too_deep(line: bytes) -> bool:
    """Whether ``line`` nests deeper than :data:`MAX_DEPTH` (brackets in strings do not count)."""
    if line.count(b"[") + line.count(b"{") <= MAX_DEPTH:
        return False
    depth = 0
    for m in _BRACKETS.finditer(_STRINGS.sub(b"", line)):
        if m.group() in (b"[", b"{"):
            depth += 1
            if depth > MAX_DEPTH:
                return True
        else:
            depth -= 1
    return False


def _int(digits: str) -> Any:
    """A JSON integer, exact; one of more digits than Python converts
    (4,300) is far beyond any range here: a float (±inf), which every
    integer field refuses and a metric value takes as the overflow it is."""
    return int(digits) if len(digits) < 4000 else float(digits)


def _reparse(line: bytes, warns: Warnings) -> Any:
    """Parse with the standard library: exact big integers, clear messages."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DecodeError(f"invalid UTF-8 at byte {e.start}") from None
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        return None

    def constant(name: str) -> float:
        warns.append(("literal-nonfinite", f"non-standard JSON literal {name} (the format spells "
                                           f"non-finite values as strings: \"NaN\", \"Infinity\", \"-Infinity\")"))
        return NONFINITE[name]

    try:
        return json.loads(text, parse_constant=constant, parse_int=_int)
    except json.JSONDecodeError as e:
        raise DecodeError(f"malformed JSON: {e.msg} (column {e.colno})") from None
    except RecursionError:
        raise DecodeError(f"malformed JSON: nested more than {MAX_DEPTH} deep") from None


def _fast_metrics(obj: dict, raw: bool = False) -> Optional[Metrics]:
    """A ``metrics`` record by explicit type checks, or None to take the slow
    path. With ``raw``, the checked record as a plain dict (for the store's
    hot path: no model is built)."""
    seq = obj.get("seq")
    step = obj.get("step")
    values = obj.get("values")
    if type(seq) is not int or type(step) is not int or type(values) is not dict:
        return None
    if not (0 <= seq <= INT64_MAX and INT64_MIN <= step <= INT64_MAX):
        return None  # out of range: the model says which field, and why
    t = obj.get("time")
    if type(t) is not float:
        if type(t) is not int:
            return None
        t = float(t)
    if not TIME_MIN <= t <= TIME_MAX:  # NaN fails too
        return None
    split = obj.get("split")
    if split is not None and type(split) is not str:
        return None
    text = obj.get("text")
    if text is not None:
        if type(text) is not dict:
            return None
        for s in text.values():
            if type(s) is not str:
                return None
    fix = None
    for k, v in values.items():
        tv = type(v)
        if tv is float:
            if -_BIG < v < _BIG:
                continue
            return None  # maybe an integer orjson turned into a float
        if tv is int:
            continue
        if tv is str:
            f = NONFINITE.get(v)
            if f is None:
                return None
            if fix is None:
                fix = {}
            fix[k] = f
            continue
        return None
    if fix:
        values = {**values, **fix}
    if raw:
        obj["time"], obj["values"] = t, values
        return obj
    fields_set = {"type", "seq", "step", "time", "values"}
    if split is not None:
        fields_set.add("split")
    if text is not None:
        fields_set.add("text")
    return _build(Metrics, {"type": "metrics", "seq": seq, "step": step, "time": t, "split": split,
                            "values": values, "text": text}, fields_set)


_RANGE_ERRORS = frozenset(("greater_than_equal", "less_than_equal", "greater_than", "less_than", "finite_number"))


def _shown(v: Any) -> str:
    """A value for a message: a huge integer by its size (its digits may be
    thousands; Python refuses to print more than 4,300)."""
    if type(v) is int and v.bit_length() > 64:
        return f"an integer of about {int(v.bit_length() * 0.30103) + 1} digits"
    return repr(v)


def _range_text(err: Any) -> str:
    """Why a number is out of its field's range, in words."""
    v = err.get("input")
    ctx = err.get("ctx") or {}
    bounds = [b for b in ctx.values() if isinstance(b, (int, float))]
    if err["type"] == "finite_number" or any(b in (TIME_MIN, TIME_MAX) for b in bounds):
        if err["type"] == "finite_number" or isinstance(v, float):
            return f"{_shown(v)} is not a time a clock can show (epoch seconds of the years 1 to 9999)"
    side = "at least" if err["type"].startswith("greater") else "at most"
    bound = bounds[0] if bounds else "?"
    return f"{_shown(v)} is out of range ({side} {bound})"


def _where(err: Any) -> str:
    """The field of an error (``reasons.disk full``); a map's key cut to 60
    characters, as a stream's keys may be any length."""
    return ".".join(str(x) if len(str(x)) <= 60 else str(x)[:59] + "…" for x in err["loc"])


def _describe(e: ValidationError, type_: str) -> str:
    parts = []
    errors = e.errors(include_url=False)
    for err in errors[:3]:
        loc = _where(err)
        if err["type"] == "missing":
            parts.append(f"missing field {loc!r}")
        elif err["type"] in _RANGE_ERRORS:
            parts.append(f"{loc}: {_range_text(err)}")
        else:
            msg = err["msg"]
            if msg.startswith("Value error, "):
                msg = msg[len("Value error, "):]
            elif "input" in err:
                msg = f"{msg}, got {_json_type_name(err['input'])}"
            parts.append(f"{loc}: {msg}" if loc else msg)
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    return f"bad {type_} record: " + "; ".join(parts) + more


def _leave_out_of_range(obj: dict, e: ValidationError, cls: Any, type_: str, warns: Warnings) -> Optional[dict]:
    """``obj`` without the numbers out of range, when every error is one in
    a field the record can do without (an optional field, an entry of a
    map, a field of a nested object); a warning for each. None when the
    record cannot be read without them (``seq``, a metrics ``step``, a rank)."""
    errors = e.errors(include_url=False)
    for err in errors:
        loc = err["loc"]
        if err["type"] not in _RANGE_ERRORS or not loc:
            return None
        if len(loc) == 1:
            field = cls.model_fields.get(loc[0])
            if field is None or field.is_required() or loc[0] in IDENTITY_FIELDS:
                return None
    out = dict(obj)
    for err in errors:
        *path, last = err["loc"]
        parent = out
        for key in path:
            if not isinstance(parent.get(key), dict):
                return None
            parent[key] = dict(parent[key])
            parent = parent[key]
        parent.pop(last, None)
        warns.append((None, f"{type_} record: {_where(err)}: {_range_text(err)}; left out"))
    return out


def _key(k: str) -> str:
    """A metric name in a message: quoted, cut to 60 characters."""
    return repr(k) if len(k) <= 60 else repr(k[:59]) + "…"


def _salvage_metrics(obj: dict, warns: Warnings) -> dict:
    """Drop the values (and text) that are not what the format allows, with a warning."""
    values = obj.get("values")
    bad = []
    if isinstance(values, dict):
        good = {}
        for k, v in values.items():
            try:
                good[k] = decode_metric_value(v)
            except ValueError:
                bad.append(f"{_key(k)} ({_json_type_name(v)})")
        if bad:
            obj = {**obj, "values": good}
    text = obj.get("text")
    if isinstance(text, dict):
        good_text = {k: v for k, v in text.items() if isinstance(v, str)}
        if len(good_text) != len(text):
            bad.extend(f"text {_key(k)} ({_json_type_name(v)})" for k, v in text.items() if not isinstance(v, str))
            obj = {**obj, "text": good_text}
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        warns.append((None, f"metrics values left out, not numbers: {shown}"))
    return obj


def decode_record(line: bytes, warns: Warnings, raw: bool = False) -> Any:
    """A record, ``None`` (blank line) or an ``UnknownRecord``; raise DecodeError."""
    exact = False  # parsed by the standard library already
    if len(line) > 2 * MAX_DEPTH and too_deep(line):
        raise DecodeError(f"malformed JSON: nested more than {MAX_DEPTH} deep")
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError:
        obj = _reparse(line, warns)
        if obj is None:
            return None
        exact = True
    if type(obj) is dict:
        if obj.get("type") == "metrics" and "v" not in obj:
            rec = _fast_metrics(obj, raw)
            if rec is not None:
                return rec
        if not exact and _LONG_DIGITS.search(line):
            obj = _reparse(line, warns)
    else:
        raise DecodeError(f"not a JSON object (got {_json_type_name(obj)})")
    type_ = obj.get("type")
    if type(type_) is not str:
        if "type" not in obj:
            raise DecodeError('no "type" field')
        raise DecodeError(f'"type" is {_json_type_name(type_)}, not a string')
    v = obj.get("v")
    if type(v) is int and FORMAT_VERSION < v <= INT32_MAX:  # beyond: out of range, said below
        warns.append(("version", f"stream format v{v} is newer than this reader's v{FORMAT_VERSION}; "
                                 "reading what it understands"))
    cls = TYPES.get(type_)
    if cls is None:
        return UnknownRecord(type_)
    if type_ == "metrics":
        obj = _salvage_metrics(obj, warns)
    try:
        return cls.model_validate(obj)
    except ValidationError as e:
        kept = _leave_out_of_range(obj, e, cls, type_, warns)
        if kept is None:
            raise DecodeError(_describe(e, type_)) from None
    try:
        return cls.model_validate(kept)
    except ValidationError as e:
        raise DecodeError(_describe(e, type_)) from None


def decode_line(line: bytes) -> Any:
    """Decode one line (with or without its ``\\n``) to a record or message.

    Returns ``None`` for a blank line or a record of a type this reader does
    not know (newer writers may add types). Raises :class:`DecodeError` for a
    line that is not a valid record. Warnings (a newer format version, values
    left out) are not reported here; :class:`StreamReader` reports them.
    """
    rec = decode_record(line, [])
    return None if isinstance(rec, UnknownRecord) else rec
