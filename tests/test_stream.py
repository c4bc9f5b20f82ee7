"""The reader: bytes in, records out, every bad line a Problem, never an exception."""
from __future__ import annotations

import json
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import bits
from tui_monitor.schema import End, Grads, Heartbeat, Meta, Metrics, RunHeader
from tui_monitor.stream import (
    MAX_LINE_BYTES, DecodeError, Problem, StreamReader, decode_line, dumps_record, read_file, record_to_json,
)


def wire(x):
    """A value as the spec writes it (what the hook does)."""
    if isinstance(x, float) and not math.isfinite(x):
        return "NaN" if x != x else ("Infinity" if x > 0 else "-Infinity")
    return x


def line(obj) -> bytes:
    return json.dumps(obj, allow_nan=False).encode() + b"\n"


def metrics(seq, step=None, values=None, **kw) -> bytes:
    d = {"type": "metrics", "seq": seq, "step": seq if step is None else step, "time": 1000.0 + seq,
         "values": {"loss": 1.0} if values is None else values}
    d.update(kw)
    return line(d)


HEADER = line({"type": "run", "seq": 0, "v": 1, "run_id": "r1", "name": "net", "start": 1000.0, "host": "h",
               "pid": 7, "rank": 0, "world_size": 1, "config": {"lr": 0.1}, "tags": {}})


# ---------------------------------------------------------------- exact values

SPECIAL = [math.nan, math.inf, -math.inf, 1e-300, 5e-324, -5e-324, 2.2250738585072014e-308, -0.0, 0.0,
           0.1 + 0.2, 1.7976931348623157e308, 1e22, 123456789.123456789, 2.0 ** 63, -(2.0 ** 63)]
INTS = [0, -1, 2 ** 63 - 1, 2 ** 63, 2 ** 64 - 1, 2 ** 64, -(2 ** 63), -(2 ** 63) - 1, 10 ** 30, -(10 ** 40), 3 ** 200]


def test_special_values_round_trip_exactly(tmp_path):
    values = {f"f{i}": wire(x) for i, x in enumerate(SPECIAL)}
    values.update({f"i{i}": n for i, n in enumerate(INTS)})
    p = tmp_path / "s.jsonl"
    p.write_bytes(HEADER + metrics(1, values=values))
    records, problems = read_file(p)
    assert problems == []
    got = records[1].values
    for i, x in enumerate(SPECIAL):
        v = got[f"f{i}"]
        assert type(v) is float
        if math.isnan(x):
            assert math.isnan(v)
        else:
            assert bits(v) == bits(x), (x, v)
    for i, n in enumerate(INTS):
        assert type(got[f"i{i}"]) is int and got[f"i{i}"] == n


def test_big_ints_exact_outside_values_too():
    rec = decode_line(line({"type": "run", "seq": 0, "run_id": "r", "config": {"seed": 2 ** 70, "x": [-(10 ** 25)]}}))
    assert rec.config == {"seed": 2 ** 70, "x": [-(10 ** 25)]}
    rec = decode_line(line({"type": "grads", "seq": 1, "step": 2 ** 62, "time": 1.0, "norm": 2 ** 65, "layers": {}}))
    assert rec.step == 2 ** 62 and rec.norm == 2 ** 65 and type(rec.norm) is int
    with pytest.raises(DecodeError, match=r"step: an integer of about 25 digits is out of range \(at most 9223372036854775807\)"):
        decode_line(line({"type": "grads", "seq": 1, "step": 2 ** 80, "time": 1.0, "layers": {}}))  # int64 steps


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True), st.integers(min_value=-(2 ** 100), max_value=2 ** 100))
def test_any_float_and_int_round_trip(x, n):
    rec = decode_line(line({"type": "metrics", "seq": 0, "step": 0, "time": 0.5, "values": {"x": wire(x), "n": n}}))
    v = rec.values["x"]
    assert type(v) is float
    assert (math.isnan(v) and math.isnan(x)) or bits(v) == bits(x)
    assert type(rec.values["n"]) is int and rec.values["n"] == n


def test_dumps_record_round_trips():
    src = {"type": "metrics", "seq": 3, "step": 4, "time": 5.25, "split": "val",
           "values": {"a": "NaN", "b": "-Infinity", "c": 2 ** 70, "d": 5e-324}, "text": {"t": "x"}}
    rec = decode_line(line(src))
    out = dumps_record(rec)
    assert json.loads(out) == src
    assert record_to_json(rec) == src
    again = decode_line(out)
    assert bits(again.values["d"]) == bits(5e-324) and math.isnan(again.values["a"])
    # only the fields given are written back
    hb = decode_line(line({"type": "heartbeat", "seq": 1, "time": 2.0}))
    assert json.loads(dumps_record(hb)) == {"type": "heartbeat", "seq": 1, "time": 2.0}


# ---------------------------------------------------------------- lines and chunks

def test_partial_trailing_line_waits_for_the_rest():
    r = StreamReader("s")
    whole = HEADER + metrics(1)
    cut = len(HEADER) + 20
    got = r.feed(whole[:cut])
    assert [type(x) for x in got] == [RunHeader]
    assert r.pending_bytes == 20
    assert r.problems == [] and r.problem_count == 0
    assert r.feed(b"") == []
    got = r.feed(whole[cut:-1])  # still without its newline
    assert got == [] and r.pending_bytes == len(whole) - len(HEADER) - 1
    got = r.feed(b"\n")
    assert [x.seq for x in got] == [1] and r.pending_bytes == 0 and r.problems == []


def test_byte_by_byte_equals_whole():
    data = HEADER + metrics(1) + b"garbage\n" + metrics(2, values={"x": "NaN"}) + b'{"type":"x","seq":9}\n'
    whole = StreamReader("s")
    expected = whole.feed(data)
    drip = StreamReader("s")
    got = []
    for i in range(len(data)):
        got.extend(drip.feed(data[i:i + 1]))
    assert [dumps_record(x) for x in got] == [dumps_record(x) for x in expected]
    assert [x.seq for x in got] == [0, 1, 2]
    assert drip.problems == whole.problems == [Problem("s", 3, "malformed JSON: Expecting value (column 1)")]
    assert drip.stats == whole.stats


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=200), min_size=1, max_size=40))
def test_any_chunking_gives_the_same_result(sizes):
    data = HEADER + b"".join(metrics(i) for i in range(1, 30)) + b"[1]\n" + metrics(30)[:-5]
    r = StreamReader("s")
    got, pos, i = [], 0, 0
    while pos < len(data):
        n = sizes[i % len(sizes)]
        got.extend(r.feed(data[pos:pos + n]))
        pos += n
        i += 1
    assert [x.seq for x in got] == list(range(30))
    assert [(p.line_number, p.reason) for p in r.problems] == [(31, "not a JSON object (got an array)")]
    assert r.pending_bytes == len(metrics(30)) - 5


def test_crlf_lines():
    data = HEADER.replace(b"\n", b"\r\n") + metrics(1).replace(b"\n", b"\r\n") + b"nope\r\n" + metrics(2)
    r = StreamReader("s")
    got = r.feed(data)
    assert [x.seq for x in got] == [0, 1, 2]
    assert [(p.line_number, p.reason) for p in r.problems] == [(3, "malformed JSON: Expecting value (column 1)")]


def test_blank_lines_and_bom_are_ignored():
    r = StreamReader("s")
    got = r.feed(b"\xef\xbb\xbf" + HEADER + b"\n   \n" + metrics(1))
    assert [x.seq for x in got] == [0, 1]
    assert r.problems == [] and r.stats.blank == 2 and r.stats.lines == 4


# ---------------------------------------------------------------- bad lines

BAD = [
    (b"{not json", "malformed JSON: Expecting property name enclosed in double quotes (column 2)"),
    (b'{"type": "metrics", "seq": 1', "malformed JSON: Expecting ',' delimiter (column 29)"),
    (b'{"type": "run", "name": "\xff\xfe"}', "invalid UTF-8 at byte 25"),
    (b"[1, 2]", "not a JSON object (got an array)"),
    (b"42", "not a JSON object (got a number)"),
    (b'"metrics"', "not a JSON object (got a string)"),
    (b"null", "not a JSON object (got null)"),
    (b'{"seq": 1, "step": 1}', 'no "type" field'),
    (b'{"type": 3, "seq": 1}', '"type" is a number, not a string'),
    (b'{"type": "metrics", "seq": 1, "step": "1", "time": 1.0, "values": {}}',
     "bad metrics record: step: Input should be a valid integer, got a string"),
    (b'{"type": "metrics", "seq": 1, "step": 1, "time": 1.0, "values": [1]}',
     "bad metrics record: values: Input should be a valid dictionary, got an array"),
    (b'{"type": "metrics", "seq": 1, "time": 1.0, "values": {}}', "bad metrics record: missing field 'step'"),
    (b'{"type": "metrics", "step": 1, "time": 1.0, "values": {}}', "bad metrics record: missing field 'seq'"),
    (b'{"type": "metrics", "seq": -1, "step": 1, "time": 1.0, "values": {}}',
     "bad metrics record: seq: -1 is out of range (at least 0)"),
    (b'{"type": "run", "seq": 0, "run_id": 5}', "bad run record: run_id: Input should be a valid string, got a number"),
    (b'{"type": "end", "seq": 3, "time": 1.0, "status": "finished", "dropped": true}',
     "bad end record: dropped: Input should be a valid integer, got a boolean"),
    (b'{"type": "grads", "seq": 3, "step": 1, "time": 1.0, "norm": "big"}',
     "bad grads record: norm: expected a number or one of \"NaN\", \"Infinity\", \"-Infinity\", got the string 'big'"),
    (b"[" * 256 + b"]" * 256, "malformed JSON: nested more than 255 deep"),
    # deep enough to crash orjson 3.8 or the standard library's parser
    (b'{"type": "x", "a": NaN, "b": ' + b"[" * 400000 + b"]" * 400000 + b"}", "malformed JSON: nested more than 255 deep"),
]


@pytest.mark.parametrize("bad, reason", BAD, ids=[r[:40] for _, r in BAD])
def test_bad_line_becomes_a_problem_with_its_line_number(tmp_path, bad, reason):
    p = tmp_path / "bad.jsonl"
    p.write_bytes(HEADER + metrics(1) + bad + b"\n" + metrics(2))
    records, problems = read_file(p)
    assert [r.seq for r in records] == [0, 1, 2]
    assert problems == [Problem(str(p), 3, reason, "error")]
    with pytest.raises(DecodeError) as e:
        decode_line(bad)
    assert str(e.value) == reason


def test_too_long_line_is_skipped_without_buffering():
    r = StreamReader("s", max_line_bytes=100)
    short = metrics(0)
    assert len(short) < 100
    got = r.feed(short)
    assert [x.seq for x in got] == [0]
    # an over-long line arriving in pieces: reported once its pending part passes the limit
    for _ in range(1000):
        got = r.feed(b"x" * 50)
        assert got == []
        assert r.pending_bytes <= 100
    assert [(p.line_number, p.severity) for p in r.problems] == [(2, "error")]
    assert "longer than the 100-byte limit" in r.problems[0].reason
    got = r.feed(b"xxx\n" + metrics(1) + b"y" * 150 + b"\n" + metrics(2))
    assert [x.seq for x in got] == [1, 2]
    assert [p.line_number for p in r.problems] == [2, 4]
    assert r.problems[1].reason == "line of 150 bytes is longer than the 100-byte limit; skipped"
    assert r.stats.lines == 5


def test_default_line_limit_is_one_mib():
    r = StreamReader("s")
    assert r.max_line_bytes == MAX_LINE_BYTES == 1 << 20
    big = b'{"type":"metrics","seq":0,"step":0,"time":1.0,"values":{},"pad":"' + b"a" * (1 << 20) + b'"}\n'
    got = r.feed(big + metrics(1))
    assert [x.seq for x in got] == [1]
    assert [p.line_number for p in r.problems] == [1]


def test_unknown_type_is_skipped_not_an_error():
    r = StreamReader("s")
    got = r.feed(HEADER + line({"type": "histogram", "seq": 1, "bins": []}) + line({"type": "histogram", "seq": 2})
                 + metrics(3))
    assert [x.seq for x in got] == [0, 3]
    assert r.problems == [] and r.stats.errors == 0
    assert r.stats.skipped == {"histogram": 2}
    assert decode_line(line({"type": "histogram", "seq": 1})) is None


def test_newer_version_is_read_with_one_warning():
    r = StreamReader("s")
    hdr = line({"type": "run", "seq": 0, "v": 2, "run_id": "r", "new_field": {"x": 1}})
    got = r.feed(hdr + metrics(1, v=2, newer={"a": 1}) + metrics(2, v=3))
    assert [type(x) for x in got] == [RunHeader, Metrics, Metrics]
    assert got[0].v == 2
    assert len(r.problems) == 1
    w = r.problems[0]
    assert (w.line_number, w.severity) == (1, "warning")
    assert "v2 is newer" in w.reason
    assert r.stats.warnings == 1 and r.stats.errors == 0


def test_duplicates_by_seq_are_dropped():
    r = StreamReader("s")
    got = r.feed(HEADER + metrics(1) + metrics(2) + metrics(1) + metrics(2, values={"loss": 9.0}) + metrics(3) + HEADER)
    assert [x.seq for x in got] == [0, 1, 2, 3]
    assert got[2].values == {"loss": 1.0}  # the first copy wins
    assert r.stats.duplicates == 3 and r.problems == []


def test_gaps_are_counted_and_a_late_record_fills_one():
    r = StreamReader("s")
    got = r.feed(HEADER + metrics(1) + metrics(5) + metrics(3) + metrics(3) + metrics(6))
    assert [x.seq for x in got] == [0, 1, 5, 3, 6]
    assert r.stats.missing == 2  # 2 and 4
    assert r.stats.duplicates == 1
    got = r.feed(metrics(2) + metrics(4) + metrics(4))
    assert [x.seq for x in got] == [2, 4] and r.stats.missing == 0 and r.stats.duplicates == 2


def test_dedupe_can_be_turned_off():
    r = StreamReader("s", dedupe=False)
    assert [x.seq for x in r.feed(metrics(1) + metrics(1))] == [1, 1]


def test_a_new_run_in_the_same_stream_starts_seq_over():
    other = line({"type": "run", "seq": 0, "v": 1, "run_id": "r2", "name": "net", "start": 2000.0, "pid": 8})
    r = StreamReader("s")
    got = r.feed(HEADER + metrics(1) + metrics(2) + other + metrics(1))
    assert [(type(x).__name__, x.seq) for x in got] == [("RunHeader", 0), ("Metrics", 1), ("Metrics", 2),
                                                       ("RunHeader", 0), ("Metrics", 1)]
    assert got[3].run_id == "r2"
    assert [(p.line_number, p.severity) for p in r.problems] == [(4, "warning")]
    assert r.stats.duplicates == 0


def test_problems_are_bounded_but_all_counted():
    r = StreamReader("s")
    r.feed(b"bad\n" * 150 + metrics(0))
    assert len(r.problems) == 100
    assert r.problem_count == 150 and r.stats.errors == 150
    assert r.problems[0].line_number == 51 and r.problems[-1].line_number == 150
    r = StreamReader("s", max_problems=3)
    r.feed(b"bad\n" * 5)
    assert [p.line_number for p in r.problems] == [3, 4, 5]


def test_bad_metric_values_are_left_out_with_a_warning():
    r = StreamReader("s")
    got = r.feed(metrics(0, values={"loss": 0.5, "acc": "high", "ok": True, "none": None, "inf": "Infinity"},
                         text={"note": "hi", "n": 3}))
    assert len(got) == 1
    assert got[0].values == {"loss": 0.5, "inf": math.inf}
    assert got[0].text == {"note": "hi"}
    (w,) = r.problems
    assert (w.line_number, w.severity) == (1, "warning")
    assert w.reason == ("metrics values left out, not numbers: 'acc' (a string), 'ok' (a boolean), "
                        "'none' (null), text 'n' (a number)")


def test_literal_nan_accepted_with_one_warning():
    r = StreamReader("s")
    bad = b'{"type":"metrics","seq":%d,"step":0,"time":1.0,"values":{"loss":NaN,"x":-Infinity,"y":Infinity}}\n'
    got = r.feed(bad % 0 + bad % 1)
    assert len(got) == 2
    assert math.isnan(got[0].values["loss"]) and got[0].values["x"] == -math.inf and got[1].values["y"] == math.inf
    assert [(p.line_number, p.severity) for p in r.problems] == [(1, "warning")]


def test_nesting_up_to_the_limit_is_read_and_written_back():
    deep = b"[" * 253 + b"1" + b"]" * 253  # 255 levels with the two objects around it
    rec = decode_line(b'{"type": "run", "seq": 0, "run_id": "r", "config": {"a": ' + deep + b'}, "s": "' + b"[" * 600 + b'"}')
    assert dumps_record(rec) == b'{"type":"run","seq":0,"run_id":"r","config":{"a":' + deep + b"}}"


def test_unreadable_file_raises_oserror(tmp_path):
    with pytest.raises(OSError):
        read_file(tmp_path / "missing.jsonl")


def test_every_record_type_through_a_file(tmp_path):
    p = tmp_path / "all.jsonl"
    p.write_bytes(
        HEADER
        + line({"type": "meta", "seq": 1, "time": 1000.5, "model": {"params": 10, "layers": ["a", "b"]}})
        + metrics(2, split="val", text={"msg": "ok"})
        + line({"type": "grads", "seq": 3, "step": 2, "time": 1003.0, "norm": 1.5,
                "layers": {"a": {"grad": 1.0, "weight": 2.0, "zero_rows": 0.0}}})
        + line({"type": "heartbeat", "seq": 4, "time": 1010.0, "step": 2, "last_log": 1002.0})
        + line({"type": "dropped", "seq": 5, "time": 1011.0, "count": 1, "reasons": {"disk full": 1}})
        + line({"type": "end", "seq": 6, "time": 1012.0, "status": "interrupted", "signal": "SIGINT", "dropped": 1}))
    records, problems = read_file(p)
    assert problems == []
    assert [type(r) for r in records] == [RunHeader, Meta, Metrics, Grads, Heartbeat, type(records[5]), End]
    assert records[1].model.layers == ["a", "b"]
    assert records[2].split == "val" and records[2].text == {"msg": "ok"}
    assert records[3].layers["a"].weight == 2.0
    assert records[5].reasons == {"disk full": 1}
    assert records[6].signal == "SIGINT" and records[6].status == "interrupted"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=60), max_size=20))
def test_reader_never_raises(chunks):
    r = StreamReader("fuzz", max_line_bytes=64)
    for c in chunks:
        for rec in r.feed(c):
            assert rec.type
    assert r.pending_bytes <= 64


def test_reader_never_raises_on_mutated_records():
    rng = random.Random(7)
    base = HEADER + metrics(1, values={"a": "NaN", "b": 2 ** 70}) + line(
        {"type": "grads", "seq": 2, "step": 1, "time": 1.0, "norm": 1.0, "layers": {"x": {"grad": 1.0}}})
    for _ in range(2000):
        data = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(data))
            if data[pos] == ord("\n"):
                continue
            data[pos] = rng.choice(b'{}[]",:0123456789-eE.\\ntruefalsnul\xff\x00')
        r = StreamReader("m")
        r.feed(bytes(data))
        assert r.stats.lines == 3
        assert r.stats.records + r.stats.errors + r.stats.blank + sum(r.stats.skipped.values()) \
            + r.stats.duplicates == 3


def test_json_text_spells_non_finite_floats_as_the_stream_does_and_escapes_control_characters():
    """--notify's stdin and diagnose --follow --json write through it: a bare
    NaN would make a strict parser (jq, JSON.parse) refuse the whole line."""
    import numpy as np

    from tui_monitor.stream.encode import json_text

    text = json_text({"loss": float("nan"), "peak": np.float64("inf"), "low": [float("-inf"), 1.5],
                      "name": "run\x1b]0;pwned\x07", "at": object.__new__(type("Odd", (), {"__str__": lambda s: "odd"}))})
    assert "\n" not in text and "\x1b" not in text and "\x07" not in text
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c}")) == {
        "loss": "NaN", "peak": "Infinity", "low": ["-Infinity", 1.5], "name": "run\x1b]0;pwned\x07", "at": "odd"}
