"""``tui-monitor cat``: stream files as plain text (header, one row per record,
problems) or as decoded JSON lines.

A file of another format (a CSV log, TensorBoard event file, printed output,
``trainer_state.json``, ...: :mod:`tui_monitor.sources.registry` decides by
name and content) is read by its own reader and shown as the stream's records
it makes, through the same decoding as a stream file. Standard input (``-``)
is read as a stream.
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys
from typing import Any, Dict, Iterable, List, Optional, TextIO

from ..safe_text import clean, json_escapes
from ..schema import normalise_split, split_metric
from ..stream import StreamReader, dumps_record
from . import PROG


def run(args: argparse.Namespace) -> int:
    split = normalise_split(args.split) if args.split else None
    status = 0
    for i, path in enumerate(args.paths):
        name = "<stdin>" if path == "-" else path
        reader: Any = StreamReader(name)
        records: List[Any] = []
        try:
            other = None if path == "-" else _read_other_format(path, reader, records)
            if path == "-":
                _read_into(sys.stdin.buffer, reader, records)
            elif other is None:
                with open(path, "rb") as f:
                    _read_into(f, reader, records)
            else:
                reader = _WithProblems(reader, other)
        except OSError as e:
            print(f"{PROG}: cannot read {clean(name)}: {clean(e.strerror or e)}", file=sys.stderr)
            status = 1
            continue
        if args.json:
            _print_json(records, reader, split, args.tail, sys.stdout, sys.stderr)
        else:
            if i:
                print()
            if len(args.paths) > 1:
                print(f"== {clean(name)}")
            _print_table(records, reader, split, args.tail, sys.stdout)
    return status


def _read_into(f, reader, records: List[Any]) -> None:
    while True:
        chunk = f.read(1 << 20)
        if not chunk:
            break
        records.extend(reader.feed(chunk))


class _WithProblems:
    """A stream reader's summary with the problems of the format reader
    that made its records (a CSV row that was not read, ...) first."""

    def __init__(self, reader: StreamReader, problems: List[Any]):
        self.reader, self.extra_problems = reader, problems

    def __getattr__(self, name: str) -> Any:
        return getattr(self.reader, name)

    @property
    def problems(self) -> List[Any]:
        return self.extra_problems + list(self.reader.problems)

    @property
    def problem_count(self) -> int:
        return len(self.extra_problems) + self.reader.problem_count


def _read_other_format(path: str, reader: StreamReader, records: List[Any]) -> Optional[List[Any]]:
    """Read ``path`` with its own format's reader when it is not a stream
    file, and return that reader's problems; None when it is one (or is not
    there to tell)."""
    import os

    import orjson

    from ..sources.registry import format_of
    from ..stream.encode import _jsonable

    if not os.path.isfile(path):
        return None
    fmt = format_of(path, explicit=True)
    if fmt is None or fmt.name == "jsonl":
        return None
    made: List[dict] = []
    problems: List[Any] = []
    tail = fmt.make(path, lambda key, recs: made.extend(recs), problems.append, {}, True)
    if tail is None:
        return None
    try:
        while tail.poll():
            pass
        finish = getattr(tail.reader, "finish", None)
        if finish is not None:  # the whole file is here: nothing more to wait for
            made.extend(finish())
    finally:
        tail.close()
    lines = b"".join(orjson.dumps(_jsonable(r), option=orjson.OPT_SERIALIZE_NUMPY) + b"\n" for r in made)
    records.extend(reader.feed(lines))
    return problems


def _split_values(rec, split: Optional[str]) -> Dict[str, Dict[str, Any]]:
    """Values (and text) of a metrics record grouped by split: split -> metric -> value."""
    groups: Dict[str, Dict[str, Any]] = {}
    for source in (rec.values, rec.text or {}):
        for key, value in source.items():
            s, metric = split_metric(key, rec.split)
            if split is None or s == split:
                groups.setdefault(s, {})[metric] = value
    return groups


def _print_json(records, reader, split, tail, out: TextIO, err: TextIO) -> None:
    # run and meta records are always kept; --split and --tail apply to the others
    out_records = []
    for r in records:
        if split is not None and r.type == "metrics":
            keep = {k for k in list(r.values) + list(r.text or {}) if split_metric(k, r.split)[0] == split}
            if not keep:
                continue
            update: Dict[str, Any] = {"values": {k: v for k, v in r.values.items() if k in keep}}
            if r.text:
                update["text"] = {k: v for k, v in r.text.items() if k in keep}
            r = r.model_copy(update=update)
        out_records.append(r)
    if tail is not None:
        rows = [i for i, r in enumerate(out_records) if r.type not in ("run", "meta")]
        drop = set(rows[:len(rows) - tail]) if tail < len(rows) else set()
        out_records = [r for i, r in enumerate(out_records) if i not in drop]
    table = json_escapes()
    for r in out_records:
        # valid JSON either way; DEL, C1 controls and bidi overrides escaped for the terminal
        out.write(dumps_record(r).decode("utf-8").translate(table) + "\n")
    for p in reader.problems:
        err.write(clean(p) + "\n")
    _print_summary(reader, err, problems=False)


def _print_table(records, reader, split, tail, out: TextIO) -> None:
    # the header shown is the first run record amended by every meta record
    header = header_record = None
    for r in records:
        if r.type == "run":
            if header is None:
                header = header_record = r
        elif r.type == "meta" and header is not None:
            header = header.amended(r)
    start = header.start if header is not None and header.start is not None else None
    if start is None:
        times = [r.time for r in records if getattr(r, "time", None) is not None]
        start = min(times) if times else None
    _print_header(header, [r for r in records if r.type == "meta"] if header is None else [], out)

    rows: List[List[str]] = []
    for r in records:
        if r is not header_record:  # the header block shows it; a later header gets a row
            rows.extend(_rows(r, split, start))
    if tail is not None:
        rows = rows[len(rows) - tail:] if tail else []
    if rows:
        out.write("\n")
        widths = [max(len(row[c]) for row in rows + [_ROW_HEAD]) for c in range(3)]
        for row in [_ROW_HEAD] + rows:
            out.write(f"{row[0]:>{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}".rstrip() + "\n")
    elif records:
        out.write("\n(no rows)\n")
    _print_summary(reader, out, problems=True)


_ROW_HEAD = ["step", "kind", "time", "values"]


def _print_header(h, metas, out: TextIO) -> None:
    if h is None:
        out.write("run      (no run header in this stream)\n")
        for m in metas:
            if m.model is not None:
                out.write(f"model    {_model_text(m.model)}\n")
        return
    name = clean(h.name) if h.name else "(unnamed)"
    out.write(f"run      {name}  id {clean(h.run_id)}\n")
    out.write(f"host     {clean(h.host) or '?'}  pid {h.pid if h.pid is not None else '?'}  "
              f"rank {h.rank}/{h.world_size}\n")
    out.write(f"started  {_when(h.start)}\n")
    out.write(f"config   {_mapping(h.config) or '(none)'}\n")
    out.write(f"model    {_model_text(h.model) if h.model is not None else '(not given)'}\n")
    if h.tags:
        out.write(f"tags     {_mapping(h.tags)}\n")
    if h.v != 1:
        out.write(f"format   v{h.v}\n")


def _when(t: Optional[float]) -> str:
    if t is None:
        return "?"
    try:
        return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    except (OverflowError, OSError, ValueError):
        return _num(t)


def _mapping(d: Dict[str, Any]) -> str:
    return "  ".join(f"{clean(k)}={_value(v)}" for k, v in d.items())


def _value(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return "true" if v is True else ("false" if v is False else "null")
    if isinstance(v, (int, float)):
        return _num(v)
    if isinstance(v, str):
        return clean(v)
    try:
        return clean(json.dumps(v, ensure_ascii=False, allow_nan=True, default=repr))
    except (ValueError, TypeError, RecursionError):
        return clean(repr(v))


def _num(v: Any) -> str:
    if type(v) is float:
        if v != v:
            return "NaN"
        if v in (float("inf"), float("-inf")):
            return "Infinity" if v > 0 else "-Infinity"
        text = format(v, ".6g")
        return text if any(c in text for c in ".en") else text + ".0"  # 1.0 is not the int 1
    return str(v)


def _model_text(m) -> str:
    parts = []
    if m.params is not None:
        parts.append(f"{m.params:,} params")
    if m.trainable_params is not None:
        parts.append(f"{m.trainable_params:,} trainable")
    for label, v in (("depth", m.depth), ("width", m.width), ("input features", m.input_features)):
        if v is not None:
            parts.append(f"{label} {v}")
    if m.layers:
        parts.append(f"layers {clean(m.layers[0])} .. {clean(m.layers[-1])}" if len(m.layers) > 1
                     else f"layer {clean(m.layers[0])}")
    return ", ".join(parts) or "(nothing known)"


def _rel(t: Optional[float], start: Optional[float]) -> str:
    if t is None:
        return ""
    if start is None:
        return _num(t)
    dt = t - start
    sign = "-" if dt < 0 else "+"
    dt = abs(dt)
    if dt != dt or dt == float("inf"):
        return "?"
    h, rest = divmod(dt, 3600)
    m, s = divmod(rest, 60)
    return f"{sign}{int(h)}:{int(m):02d}:{s:04.1f}"


def _rows(r, split: Optional[str], start: Optional[float]) -> Iterable[List[str]]:
    t = r.type
    if t == "metrics":
        for s, vals in _split_values(r, split).items():
            yield [str(r.step), clean(s), _rel(r.time, start),
                   "  ".join(f"{clean(k)}={_value(v)}" for k, v in vals.items())]
    elif t == "grads":
        grads = [g.grad for g in r.layers.values() if g.grad is not None]
        text = f"norm={_num(r.norm) if r.norm is not None else '?'}  {len(r.layers)} layers"
        if grads:
            text += f"  layer grad {_num(min(grads))}..{_num(max(grads))}"
        zero = [(clean(n), g.zero_rows) for n, g in r.layers.items() if g.zero_rows]
        if zero:
            text += "  zero rows: " + ", ".join(f"{n} {_num(z)}" for n, z in zero[:3])
            if len(zero) > 3:
                text += f" and {len(zero) - 3} more"
        yield [str(r.step), "grads", _rel(r.time, start), text]
    elif t == "heartbeat":
        text = "alive"
        if r.last_log is not None:
            text += f", last log {_num(round(r.time - r.last_log, 1))}s before"
        yield [str(r.step) if r.step is not None else "", "heartbeat", _rel(r.time, start), text]
    elif t == "dropped":
        reasons = ", ".join(f"{clean(k)} {n}" for k, n in r.reasons.items())
        yield ["", "dropped", _rel(r.time, start), f"{r.count} so far" + (f": {reasons}" if reasons else "")]
    elif t == "end":
        text = clean(r.status)
        if r.error is not None:
            text += f": {clean(r.error.type)}: {clean(r.error.message)}"
        if r.signal:
            text += f" ({clean(r.signal)})"
        text += f"  dropped={r.dropped}"
        yield [str(r.step) if r.step is not None else "", "end", _rel(r.time, start), text]
    elif t == "meta":
        changed = sorted(n for n in r.model_fields_set if n not in ("type", "seq", "time"))
        yield ["", "meta", _rel(r.time, start), "amends " + ", ".join(changed) if changed else "(nothing)"]
    elif t == "run":
        yield ["", "run", _rel(r.start, start), f"a new run starts: {clean(r.name)} id {clean(r.run_id)} "
                                                f"pid {r.pid if r.pid is not None else '?'}"]
    else:  # socket messages, should one be in a file
        yield ["", clean(t), "", ""]


def _print_summary(reader, out: TextIO, problems: bool) -> None:
    st = reader.stats
    if problems and reader.problems:
        out.write(f"\nproblems ({reader.problem_count}):\n")
        for p in reader.problems:
            out.write(f"  {clean(p)}" + (" [warning]" if p.severity == "warning" else "") + "\n")
        hidden = reader.problem_count - len(reader.problems)
        if hidden:
            out.write(f"  ... and {hidden} earlier (only the last {len(reader.problems)} are kept)\n")
    notes = []
    for type_, n in sorted(st.skipped.items()):
        notes.append(f"skipped {n} record{'s' * (n != 1)} of unknown type {clean(type_)!r} (written by a newer version?)")
    if st.duplicates:
        notes.append(f"dropped {st.duplicates} duplicate record{'s' * (st.duplicates != 1)} (seq already seen)")
    if st.missing:
        notes.append(f"{st.missing} record{'s' * (st.missing != 1)} missing (gaps in seq)")
    if reader.pending_bytes:
        notes.append(f"the last line ({reader.pending_bytes} bytes) has no newline: not yet written, not read")
    if notes:
        out.write("\n" if problems else "")
        for n in notes:
            out.write(f"note: {n}\n")
