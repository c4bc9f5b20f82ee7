"""The reader's fast path (raw mode: one msgspec call per chunk) against its
careful path (each line on its own): the same records, problems, line numbers,
seq bookkeeping and pending bytes, whatever the input."""
from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui_monitor.sources.ingest import as_dict
from tui_monitor.store import Store
from tui_monitor.stream import MetricsRecord, StreamReader

HEADER = (b'{"type":"run","seq":0,"v":1,"run_id":"r1","name":"x","start":1.0,"host":"h","pid":1,'
          b'"rank":0,"world_size":1,"config":{}}\n')


def metrics(seq, values=None, **kw) -> bytes:
    d = {"type": "metrics", "seq": seq, "step": seq, "time": 1000.0 + seq,
         "values": {"loss": 0.5, "lr": 1e-3} if values is None else values}
    d.update(kw)
    return json.dumps(d).encode() + b"\n"


class CarefulReader(StreamReader):
    """A raw reader whose fast path never takes a batch: every line goes to ``_take``."""

    def _decode_metrics(self, lines):
        return None


def normal(rec) -> dict:
    """A raw record (MetricsRecord, dict or model) as a comparable dict."""
    d = as_dict(rec)
    d = {k: v for k, v in d.items() if v is not None and k != "v"}
    if d.get("type") == "metrics":  # the format's fields (unknown ones are ignored); floats by repr
        d = {k: v for k, v in d.items() if k in ("type", "seq", "step", "time", "split", "values", "text")}
        d["values"] = {k: (type(v).__name__, repr(v)) for k, v in d["values"].items()}
        d["time"] = repr(d["time"])
    return d


def read(cls, data: bytes, sizes=None, **kw):
    r = cls("s.jsonl", raw_metrics=True, **kw)
    out = []
    if sizes is None:
        out += r.feed(data)
    else:
        i = 0
        for n in sizes:
            out += r.feed(data[i:i + n])
            i += n
        out += r.feed(data[i:])
    return r, out


def assert_same(data: bytes, sizes=None, fast_used=None, **kw):
    a, ra = read(StreamReader, data, sizes, **kw)
    b, rb = read(CarefulReader, data, sizes, **kw)
    assert [normal(x) for x in ra] == [normal(x) for x in rb]
    assert a.problems == b.problems
    assert a.stats == b.stats
    assert (a.contiguous_seq, a.pending_bytes, a.line_number) == (b.contiguous_seq, b.pending_bytes, b.line_number)
    if fast_used is not None:
        assert any(type(x) is MetricsRecord for x in ra) == fast_used
    return a, ra


def body(n=20, start=1):
    return b"".join(metrics(i) for i in range(start, start + n))


def test_good_stream_takes_the_fast_path_and_is_read_exactly():
    vals = {"loss": 0.1, "big": 2 ** 80, "neg": -(2 ** 70), "nan": "NaN", "inf": "Infinity", "ninf": "-Infinity",
            "tiny": 5e-324, "neg0": -0.0, "i": 3}
    data = HEADER + body(30) + metrics(31, vals, split="val", text={"note": "hi"}) + body(30, 32)
    r, out = assert_same(data, fast_used=True)
    rec = [x for x in out if x.seq == 31][0]
    assert type(rec) is MetricsRecord and rec.split == "val" and rec.text == {"note": "hi"}
    assert rec.values["big"] == 2 ** 80 and type(rec.values["big"]) is int
    assert math.isnan(rec.values["nan"]) and rec.values["inf"] == math.inf and rec.values["ninf"] == -math.inf
    assert math.copysign(1.0, rec.values["neg0"]) == -1.0
    assert r.stats.records == 62 and r.problems == []


BAD_METRICS = [
    ("bool value", metrics(21, {"loss": True})),
    ("bool step", metrics(21, step=True)),
    ("numeric string", metrics(21, {"loss": "3.5"})),
    ("other string", metrics(21, {"loss": "nan"})),
    ("null value", metrics(21, {"loss": None})),
    ("list value", metrics(21, {"loss": [1.0]})),
    ("object value", metrics(21, {"loss": {"a": 1}})),
    ("string step", metrics(21, step="21")),
    ("float step", metrics(21, step=21.0)),
    ("float seq", metrics(21.0)),
    ("negative seq", metrics(-1)),
    ("string time", metrics(21, time="now")),
    ("bool time", metrics(21, time=False)),
    ("missing step", b'{"type":"metrics","seq":21,"time":1.0,"values":{}}\n'),
    ("missing seq", b'{"type":"metrics","step":21,"time":1.0,"values":{}}\n'),
    ("missing time", b'{"type":"metrics","seq":21,"step":21,"values":{}}\n'),
    ("missing values", b'{"type":"metrics","seq":21,"step":21,"time":1.0}\n'),
    ("values a list", metrics(21, [1.0])),
    ("split a number", metrics(21, split=3)),
    ("text not strings", metrics(21, text={"a": 1})),
    ("text a list", metrics(21, text=["a"])),
    ("newer version", metrics(21, v=2)),
    ("same version", metrics(21, v=1)),
    ("NaN literal", b'{"type":"metrics","seq":21,"step":21,"time":1.0,"values":{"loss":NaN}}\n'),
    ("1e400", b'{"type":"metrics","seq":21,"step":21,"time":1.0,"values":{"loss":1e400}}\n'),
    ("huge int", b'{"type":"metrics","seq":21,"step":21,"time":1.0,"values":{"loss":1' + b"0" * 400 + b'}}\n'),
    ("huge int time", b'{"type":"metrics","seq":21,"step":21,"time":1' + b"0" * 30 + b',"values":{}}\n'),
    ("big seq", b'{"type":"metrics","seq":1' + b"0" * 25 + b',"step":21,"time":1.0,"values":{}}\n'),
    ("escaped NaN", b'{"type":"metrics","seq":21,"step":21,"time":1.0,"values":{"loss":"N\\u0061N"}}\n'),
    ("duplicate key", b'{"type":"metrics","seq":21,"seq":5,"step":21,"time":1.0,"values":{"a":1,"a":true}}\n'),
    ("duplicate key ok", b'{"type":"metrics","seq":5,"seq":21,"step":21,"time":1.0,"values":{"a":true,"a":1}}\n'),
    ("two records on a line", metrics(21).rstrip() + b"," + metrics(22)),
    ("two records and a blank", metrics(21).rstrip() + b"," + metrics(22) + b"\n"),
    ("trailing junk", metrics(21).rstrip() + b" x\n"),
    ("blank", b"\n"),
    ("spaces", b"   \n"),
    ("crlf", metrics(21).rstrip() + b"\r\n"),
    ("bom", b"\xef\xbb\xbf" + metrics(21)),
    ("invalid utf-8", b'{"type":"metrics","seq":21,"step":21,"time":1.0,"values":{"\xff":1}}\n'),
    ("lone surrogate", b'{"type":"metrics","seq":21,"step":21,"time":1.0,"values":{"\\ud800":1}}\n'),
    ("control char", b'{"type":"metrics","seq":21,"step":21,"time":1.0,"values":{"a\x01":1}}\n'),
    ("unknown field", metrics(21, extra={"deep": [[[1]]]})),
    ("nested 255 deep", metrics(21, x=json.loads("[" * 254 + "]" * 254))),
    ("nested 256 deep", metrics(21, x=json.loads("[" * 255 + "]" * 255))),
    ("nested very deep", metrics(21).rstrip()[:-1] + b',"x":' + b"[" * 100000 + b"]" * 100000 + b"}\n"),
    ("array", b"[1, 2]\n"),
    ("other type", b'{"type":"heartbeat","seq":21,"time":1.0,"step":3}\n'),
    ("unknown type", b'{"type":"future","seq":21}\n'),
    ("duplicate seq", metrics(5)),
    ("gap", metrics(30)),
]


@pytest.mark.parametrize("bad", [b for _, b in BAD_METRICS], ids=[n for n, _ in BAD_METRICS])
def test_fast_path_reads_and_rejects_what_the_careful_path_does(bad):
    data = HEADER + body(20) + bad + body(20, 40)
    assert_same(data, fast_used=True)
    assert_same(data, sizes=[len(HEADER) + 7, 500, 1, 333])  # chunk edges anywhere
    assert_same(data, dedupe=False)
    assert_same(bad * 12 + body(20, 100) + bad * 3)  # runs of them, and at the chunk edges


def test_line_limit_applies_to_the_fast_path():
    long = metrics(21, {f"k{i}": float(i) for i in range(40)})
    a, out = assert_same(HEADER + body(20) + long + body(20, 40), max_line_bytes=len(long) - 2)
    assert a.problems and "longer than" in a.problems[0].reason and a.problems[0].line_number == 22


def test_duplicates_gaps_and_late_records_as_the_careful_path_counts_them():
    order = list(range(1, 200)) + [50, 51, 52] + list(range(260, 300)) + [220, 221, 259, 1] + list(range(300, 400))
    data = HEADER + b"".join(metrics(i) for i in order)
    a, _ = assert_same(data)
    assert a.stats.duplicates == 4 and a.stats.missing == 60 - 3
    for seed in range(5):
        rng = random.Random(seed)
        seqs = [rng.randrange(0, 300) for _ in range(400)]
        assert_same(HEADER + b"".join(metrics(i) for i in seqs), sizes=[rng.randrange(1, 3000) for _ in range(10)])


def test_a_partial_last_line_is_kept_pending():
    data = HEADER + body(20)
    a, out = read(StreamReader, data + metrics(21)[:-5])
    assert len(out) == 21 and a.pending_bytes == len(metrics(21)) - 5
    out = a.feed(metrics(21)[-5:] + metrics(22)[:3])
    assert [x.seq for x in out] == [21] and a.pending_bytes == 3
    assert_same(data + metrics(21)[:-5])


def test_new_run_header_in_the_middle_starts_seq_over():
    header2 = HEADER.replace(b'"pid":1', b'"pid":2')
    assert_same(HEADER + body(20) + header2 + body(20) + body(5, 100))


# ---------------------------------------------------------------- random records

_value = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False), st.integers(min_value=-(2 ** 100), max_value=2 ** 100),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "nan", "3", "", "inf"]), st.booleans(), st.none(),
    st.lists(st.integers(), max_size=2),
)
_record = st.fixed_dictionaries(
    {"type": st.sampled_from(["metrics"] * 8 + ["heartbeat", "x"]),
     "seq": st.one_of(st.integers(min_value=0, max_value=30), st.integers(min_value=-3, max_value=2 ** 70),
                      st.floats(0, 30), st.just("1")),
     "step": st.one_of(st.integers(min_value=-5, max_value=2 ** 70), st.just(True), st.just(1.5)),
     "time": st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-2 ** 70, 2 ** 70),
                       st.just("t")),
     "values": st.one_of(st.dictionaries(st.sampled_from(["loss", "lr", "a/b", "val_loss", "NaN", "\u00e9"]),
                                         _value, max_size=4), st.just([]))},
    optional={"split": st.one_of(st.sampled_from(["train", "val"]), st.none(), st.just(1)),
              "text": st.one_of(st.dictionaries(st.sampled_from(["a", "b"]), st.one_of(st.text(max_size=3),
                                                                                       st.integers())), st.none()),
              "v": st.one_of(st.just(1), st.just(2), st.none()),
              "extra": st.one_of(st.integers(), st.lists(st.integers()))},
)


def _dumps(rec) -> bytes:
    return json.dumps(rec, allow_nan=False).encode()


@settings(max_examples=150, deadline=None)
@given(st.lists(_record, min_size=1, max_size=40), st.lists(st.integers(1, 400), max_size=6),
       st.lists(st.sampled_from([b"", b"{", b"\xff", b"  ", b"NaN"]), max_size=3))
def test_fast_and_careful_paths_agree_on_random_records(recs, sizes, junk):
    lines = [_dumps(r) for r in recs] + list(junk)
    random.Random(len(lines)).shuffle(lines)
    assert_same(b"\n".join(lines) + b"\n", sizes)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(["loss", "lr", "acc"]), st.floats(allow_nan=True), min_size=1),
                min_size=1, max_size=60))
def test_fast_and_careful_paths_agree_on_good_streams(rows):
    data = HEADER + b"".join(metrics(i + 1, {k: ("NaN" if v != v else ("Infinity" if v == math.inf else
                                                 ("-Infinity" if v == -math.inf else v))) for k, v in row.items()})
                             for i, row in enumerate(rows))
    assert_same(data, fast_used=True)


# ---------------------------------------------------------------- into the store

def _store(cls, data):
    store = Store()
    r, out = read(cls, data, sizes=[70_000] * 10)
    store.apply_many([x if x.__class__ in (dict, MetricsRecord) else as_dict(x) for x in out], stream="s")
    return store.get("r1")


def test_store_gets_the_same_from_both_paths():
    rng = np.random.default_rng(3)
    lines = [HEADER]
    seq = 1
    for step in range(3000):
        lines.append(metrics(seq, {"loss": float(rng.standard_normal()), "acc": int(rng.integers(0, 9))}))
        seq += 1
        if step % 50 == 0:
            lines.append(metrics(seq, {"loss": "Infinity"}, split="val"))
            seq += 1
        if step % 97 == 0:
            lines.append(b'{"type":"grads","seq":%d,"step":%d,"time":1.0,"norm":1.5,"layers":{"a":{"grad":0.1}}}\n'
                         % (seq, step))
            seq += 1
        if step == 700:
            lines.append(metrics(seq - 5))  # a duplicate
            seq += 3  # a gap
        if step == 900:
            lines.append(metrics(seq, {"loss": True}))  # a bad line
            seq += 1
    data = b"".join(lines)
    a, b = _store(StreamReader, data), _store(CarefulReader, data)
    assert a.series.keys() == b.series.keys() and a.grads.keys() == b.grads.keys()
    for k in a.series:
        assert a.series[k].values.tobytes() == b.series[k].values.tobytes()
        np.testing.assert_array_equal(a.series[k].steps, b.series[k].steps)
        np.testing.assert_array_equal(a.series[k].times, b.series[k].times)
    assert (a.seq, a.missing, a.duplicates, a.last_step, a.last_log) == (b.seq, b.missing, b.duplicates,
                                                                        b.last_step, b.last_log)
