"""The reading side survives any input (property-based)."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import only_run
from tui_monitor.sources import as_dict
from tui_monitor.sources.formats import LineSplitter
from tui_monitor.store import Store
from tui_monitor.schema import split_metric
from tui_monitor.stream import StreamReader

GOOD = [
    b'{"type":"run","seq":0,"v":1,"run_id":"f","name":"fuzz","start":1.0,"host":"h","pid":1}\n',
    b'{"type":"metrics","seq":1,"step":0,"time":1.0,"values":{"loss":0.5}}\n',
    b'{"type":"metrics","seq":2,"step":1,"time":2.0,"values":{"loss":"NaN","val_loss":1e308}}\n',
    b'{"type":"grads","seq":3,"step":1,"time":2.0,"norm":1.5,"layers":{"a":{"grad":1.0}}}\n',
    b'{"type":"heartbeat","seq":4,"time":3.0,"step":1}\n',
    b'{"type":"end","seq":5,"time":4.0,"status":"crashed","error":{"type":"E","message":"m"}}\n',
]
NASTY = [
    b"{", b"}", b"\n", b"\xff", b"\x00", b'"', b"[" * 300, b"{" * 300, b"\\u0000", b"NaN", b"1e999",
    b'{"type":"metrics","seq":-1}', b'{"type":1}', b'{"seq":"0"}', b"9" * 40, b"\r\n", b'{"type":"run"}',
    b'{"type":"metrics","seq":9,"step":true,"time":"x","values":[]}', b'{"type":"metrics","v":99}',
]
pieces = st.one_of(st.sampled_from(GOOD), st.sampled_from(NASTY), st.binary(max_size=64))


def read(data: bytes, cuts):
    reader = StreamReader("fuzz", max_line_bytes=4096, raw_metrics=True)
    out, start = [], 0
    for cut in sorted(c % (len(data) + 1) for c in cuts) + [len(data)]:
        out += reader.feed(data[start:cut])
        start = cut
    return reader, out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(pieces, max_size=40), st.lists(st.integers(min_value=0, max_value=10**6), max_size=8))
def test_any_bytes_in_any_chunks(parts, cuts):
    data = b"".join(parts)
    reader, records = read(data, cuts)
    whole, records_whole = read(data, [])
    # never raises, and how the bytes were cut changes nothing
    assert [as_dict(r) if not isinstance(r, dict) else r for r in records] == \
        [as_dict(r) if not isinstance(r, dict) else r for r in records_whole]
    assert [str(p) for p in reader.problems] == [str(p) for p in whole.problems]
    assert reader.pending_bytes <= 4096
    # every problem names the source and a line that exists
    lines = data.count(b"\n") + 1
    assert all(p.source == "fuzz" and 0 <= p.line_number <= lines for p in reader.problems)
    # and the store takes whatever the reader lets through
    store = Store(splitter=split_metric)
    store.apply_many([as_dict(r) for r in records], stream="fuzz")


LINE_PIECES = st.one_of(st.sampled_from([b"\n", b"\r", b"\r\n", b"step 1 loss 2.0", b"x" * 100, b"y" * 60]),
                        st.binary(max_size=16))


@settings(max_examples=300, deadline=None)
@given(st.lists(LINE_PIECES, max_size=40), st.lists(st.integers(min_value=0, max_value=10**6), max_size=8),
       st.booleans())
def test_the_line_splitter_cuts_the_same_whatever_the_chunks(parts, cuts, split_cr):
    data = b"".join(parts)

    def split(cuts):
        splitter = LineSplitter(max_line=64, split_cr=split_cr)
        out, start = [], 0
        for cut in sorted(c % (len(data) + 1) for c in cuts) + [len(data)]:
            out += splitter.feed(data[start:cut])
            start = cut
            assert len(splitter.pending) <= 64
        return out, splitter.rest()

    whole = split([])
    assert split(cuts) == whole
    lines, rest = whole
    assert all(data[at:at + len(line)] == line for at, line in lines if line is not None)
    plain = re.split(rb"\r\n|\r|\n" if split_cr else rb"\n", data)
    if all(len(line) <= 64 for line in plain):          # nothing too long: exactly the lines
        assert [line for _, line in lines] == plain[:-1] and rest == plain[-1]
    else:                                                # each line too long comes out once, as None
        assert sum(line is None for _, line in lines) == sum(len(line) > 64 for line in plain)


def test_a_ten_megabyte_line_is_skipped_with_bounded_memory():
    reader = StreamReader("big")
    chunk = b"x" * (1 << 20)
    for _ in range(10):
        assert reader.feed(chunk) == []
        assert reader.pending_bytes <= 1 << 20
    out = reader.feed(b"\n" + GOOD[0])
    assert [r.type for r in out] == ["run"]
    assert "longer than" in reader.problems[0].reason and reader.problems[0].line_number == 1


def test_deep_nesting_does_not_crash_the_interpreter():
    reader = StreamReader("deep")
    out = reader.feed(b'{"type":"metrics","x":' + b"[" * 200_000 + b"]" * 200_000 + b"}\n" + GOOD[0])
    assert [r.type for r in out] == ["run"]
    assert "nested" in reader.problems[0].reason


def test_duplicated_and_out_of_order_steps_are_kept_as_data():
    lines = [GOOD[0]] + [json.dumps({"type": "metrics", "seq": i + 1, "step": s, "time": 1.0,
                                     "values": {"loss": float(i)}}).encode() + b"\n"
                         for i, s in enumerate([0, 1, 1, 5, 2, 3])]
    reader = StreamReader("order", raw_metrics=True)
    records = reader.feed(b"".join(lines + lines[2:4]))      # two records sent twice
    store = Store(splitter=split_metric)
    store.apply_many([as_dict(r) for r in records], stream="s")
    (run,) = store.runs.values()
    s = run.series[("train", "loss")]
    assert s.steps.tolist() == [0, 1, 1, 5, 2, 3] and not s.monotonic
    assert reader.stats.duplicates == 2


@pytest.mark.slow
@settings(max_examples=20_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(pieces, max_size=200), st.lists(st.integers(min_value=0, max_value=10**6), max_size=32))
def test_fuzz_for_minutes(parts, cuts):
    """The same properties over many more, longer inputs: `pytest -m slow`."""
    test_any_bytes_in_any_chunks.hypothesis.inner_test(parts, cuts)


# ---------------------------------------------------------------- file descriptors

FD_LIMIT = """
import json, os, resource, sys, time
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (1024, min(hard, 1024) if hard != resource.RLIM_INFINITY else 1024))
from tui_monitor.sources import Ingest

folder, mode = sys.argv[1], sys.argv[2]
ing = Ingest()
ing.add_path(folder, poll=True, interval=0.05)

def wait(condition, timeout=120):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True

def last_loss(run_id):
    run = ing.store.get(run_id)
    s = run and run.series.get(("train", "loss"))
    return s.last() if s is not None else None

if mode == "once":
    ing.read_all()
else:
    ing.start()
    wait(lambda: len(ing.store.runs) >= 10_000 and not ing.catching_up)
    for i in (0, 5_000, 9_999):                     # written to after startup: seen live
        with open(os.path.join(folder, f"run{i:05d}.jsonl"), "a") as f:
            f.write(json.dumps({"type": "metrics", "seq": 2, "step": 1, "time": 2.0,
                                "values": {"loss": -1.0}}) + "\\n")
    wait(lambda: all(last_loss(f"r{i}") == (1, -1.0) for i in (0, 5_000, 9_999)), 60)
    ing.stop()
problems, total = ing.recent_problems()
print(json.dumps({"runs": len(ing.store.runs),
                  "live": [last_loss(f"r{i}") for i in (0, 5_000, 9_999)] if mode == "live" else [],
                  "problems": [str(p) for p in problems[:5]], "total": total,
                  "open": len(os.listdir("/proc/self/fd"))}))
"""


def write_runs(folder, n):
    for i in range(n):
        (folder / f"run{i:05d}.jsonl").write_text(
            json.dumps({"type": "run", "seq": 0, "v": 1, "run_id": f"r{i}", "name": f"run {i}", "start": 1.0,
                        "host": "elsewhere", "pid": 1}) + "\n"
            + json.dumps({"type": "metrics", "seq": 1, "step": 0, "time": 1.0, "values": {"loss": 1.0}}) + "\n")


@pytest.mark.parametrize("mode", ["once", "live"])
def test_ten_thousand_runs_under_ulimit_1024_are_all_read(tmp_path, mode):
    from conftest import child
    write_runs(tmp_path, 10_000)
    proc = child(FD_LIMIT, str(tmp_path), mode)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    result = json.loads(out)
    assert result["runs"] == 10_000, result
    assert result["total"] == 0, result
    if mode == "live":
        assert result["live"] == [[1, -1.0]] * 3, result
    assert result["open"] < 512, result                  # a budget of descriptors, not one a file


def cli(*args, timeout=300, **kw):
    """``tui-monitor ARGS`` in a fresh process of this checkout."""
    import subprocess
    import sys
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run([sys.executable, "-m", "tui_monitor", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=timeout, **kw)


def test_watch_once_lists_every_run_under_ulimit_1024(tmp_path):
    import resource

    write_runs(tmp_path, 1_100)

    def limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    proc = cli("watch", "--once", tmp_path, preexec_fn=limit)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.split()[:2][-1:] != ["rank"]
            and line.startswith("run ")]
    assert len(rows) == 1_100 and proc.stderr == ""


SHARED_BUDGET = """
import gc, json, os, resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (128, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
from tui_monitor.sources import Ingest

def fds():
    return len(os.listdir("/proc/self/fd"))

before = fds()
ingests = []
for _ in range(4):              # --once reads left unstopped, one after another
    ing = Ingest()
    ing.add_path(sys.argv[1])
    ing.read_all()
    ingests.append(ing)
held = [len(ing.followers[0].open_files) for ing in ingests]
problems = [str(p) for ing in ingests for p in ing.problems]
runs = [len(ing.store.runs) for ing in ingests]
for ing in ingests[:3]:
    ing.stop()
last = ingests[3].followers[0]
last.tick()
alone = last.open_files.budget
dropped = Ingest()              # read, then dropped without stop(): its descriptors go with it
dropped.add_path(sys.argv[1])
dropped.read_all()
opened = fds()
del dropped
gc.collect()
print(json.dumps({"held": held, "problems": problems[:3], "runs": runs, "alone": alone,
                  "dropped_freed": opened - fds(), "open_at_end": fds() - before}))
"""


def test_the_descriptor_budget_is_shared_by_the_followers_of_a_process(tmp_path):
    # Each follower took a quarter of the limit for itself: four ingests in
    # one process (--once reads left unstopped) took all of it, the fourth
    # ran out (EMFILE), and anything else the process opened failed too; an
    # ingest dropped without stop() kept its descriptors for good.
    from conftest import child
    write_runs(tmp_path, 100)
    proc = child(SHARED_BUDGET, str(tmp_path))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    result = json.loads(out)
    assert result["problems"] == [] and result["runs"] == [100] * 4, result
    assert result["held"] == [32, 16, 10, 8], result          # a quarter of 128, shared by those holding some
    assert result["alone"] == 32, result                       # the others stopped: all of it again
    assert result["dropped_freed"] == 16, result               # its share beside the fourth
    assert result["open_at_end"] == 8, result                  # the fourth's, nothing leaked


# ---------------------------------------------------------------- only regular files

def folder_of_traps(tmp_path):
    """A good run beside a FIFO and a symlink to /dev/zero, both named like streams."""
    write_runs(tmp_path, 1)
    os.mkfifo(tmp_path / "pipe.jsonl")
    os.symlink("/dev/zero", tmp_path / "zero.jsonl")
    return tmp_path


NOT_REGULAR = ["{}: not a regular file (a FIFO); not read", "{}: not a regular file (a character device); not read"]


@pytest.mark.parametrize("command", ["watch", "diagnose"])
def test_a_fifo_or_a_device_named_like_a_stream_is_reported_once_and_skipped(tmp_path, command):
    folder = folder_of_traps(tmp_path)
    args = ["watch", "--once", folder] if command == "watch" else ["diagnose", folder]
    proc = cli(*args, timeout=60)
    assert proc.returncode in (0, 1), proc.stderr          # diagnose exits 1 when it finds something
    assert ("run 0" in proc.stdout) if command == "watch" else ("1 run" in proc.stdout or "run 0" in proc.stdout)
    expected = [m.format(folder / name) for m, name in zip(NOT_REGULAR, ["pipe.jsonl", "zero.jsonl"])]
    assert [line for line in proc.stderr.splitlines() if "regular" in line] == \
        [e if command == "watch" else f"tui-monitor: {e}" for e in expected]


def test_the_follower_looks_at_a_fifo_without_reading_it_and_follows_a_file_put_in_its_place(tmp_path):
    from source_helpers import follow, header, metrics, append
    folder = folder_of_traps(tmp_path)
    ing, f = follow(folder)
    for _ in range(20):
        f.tick()
    assert [str(p) for p in ing.problems] == [m.format(folder / n)
                                               for m, n in zip(NOT_REGULAR, ["pipe.jsonl", "zero.jsonl"])]
    os.unlink(folder / "pipe.jsonl")
    append(folder / "pipe.jsonl", header("late") + metrics(1, 0, 3.0))
    f.tick()
    assert ing.store.get("late").series[("train", "loss")].values.tolist() == [3.0]


def test_a_fifo_named_hparams_yaml_beside_a_csv_log_does_not_hang_the_read(tmp_path):
    (tmp_path / "metrics.csv").write_text("step,loss\n0,1.0\n1,0.5\n")
    os.mkfifo(tmp_path / "hparams.yaml")
    proc = cli("watch", "--once", tmp_path, timeout=60)
    assert proc.returncode == 0 and proc.stdout.splitlines()[2].split()[:5] == [tmp_path.name, "0", "running", "1",
                                                                             "loss"]


# ---------------------------------------------------------------- TensorBoard event files

def summary_writer_bytes(folder, steps, tag="loss"):
    """The bytes of an event file written by torch's real SummaryWriter."""
    pytest.importorskip("tensorboard", reason="the integrations extra (tensorboard) is not installed")
    from torch.utils.tensorboard import SummaryWriter
    w = SummaryWriter(str(folder))
    for step in steps:
        w.add_scalar(tag, 1.0 / (step + 1), step)
    w.close()
    (path,) = Path(folder).glob("events.out.tfevents.*")
    return path.read_bytes()


def test_an_event_file_is_read_with_a_bounded_buffer_and_an_overlong_record_is_skipped(tmp_path):
    import struct
    from tui_monitor.sources.tfevents import MAX_RECORD, frame_record, masked_crc32c
    before = summary_writer_bytes(tmp_path / "a", range(3))     # 4 records: the version, 3 scalars
    after = summary_writer_bytes(tmp_path / "b", range(3, 6))
    big = MAX_RECORD + 1
    length = struct.pack("<Q", big)                    # a length framed by the real rules (its CRC holds);
    huge = length + struct.pack("<I", masked_crc32c(length)) + bytes(big) + b"\0" * 4  # the data is never read
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    path = run_dir / "events.out.tfevents.1700000000.host.1.0"
    bad = bytearray(frame_record(b"\x10\x07"))
    bad[-1] ^= 0xFF                                    # a data CRC that fails, after it all: offsets still add up
    path.write_bytes(before + huge + after + bad)
    from source_helpers import follow
    ing, f = follow(run_dir)
    tail = f.tails[str(path)]
    run = only_run(ing)
    assert run.series[("train", "loss")].steps.tolist() == list(range(6))
    assert [(p.line_number, p.reason) for p in ing.problems] == [
        (5, f"byte {len(before)}: record of {big} bytes is over the {MAX_RECORD >> 20} MiB limit; skipped"),
        (10, f"byte {len(before) + len(huge) + len(after)}: record data fails its CRC; record skipped")]
    assert len(tail.reader.buf) == 0


def test_a_record_claiming_gigabytes_costs_no_memory_while_it_is_passed_over(tmp_path):
    import struct
    from tui_monitor.sources.tfevents import MAX_RECORD, EventFileReader, TBRun, masked_crc32c
    before = summary_writer_bytes(tmp_path / "a", range(3))
    length = struct.pack("<Q", 3 << 30)                # 3 GiB, as a crafted file claims
    reader = EventFileReader("crafted", TBRun(str(tmp_path)))
    out = reader.feed(before + length + struct.pack("<I", masked_crc32c(length)))
    assert [r["step"] for r in out if r["type"] == "metrics"] == [0, 1, 2]
    chunk = os.urandom(1 << 20)
    peak = 0
    for _ in range(40):                                # 40 MiB of it arrive: none of it is kept
        assert reader.feed(chunk) == []
        peak = max(peak, len(reader.buf))
    assert peak <= MAX_RECORD and peak == 0
    assert [p.reason for p in reader.problems] == [
        f"byte {len(before)}: record of {3 << 30} bytes is over the {MAX_RECORD >> 20} MiB limit; skipped"]


# ---------------------------------------------------------------- numbers out of range

BASE = {
    "run": {"type": "run", "seq": 1, "v": 1, "run_id": "r", "name": "n", "start": 1.0, "host": "h", "pid": 5,
            "rank": 0, "world_size": 2, "local_rank": 0, "model": {"params": 10}},
    "meta": {"type": "meta", "seq": 1, "time": 1.0, "pid": 5, "start": 1.0, "rank": 0, "world_size": 2,
             "local_rank": 0},
    "metrics": {"type": "metrics", "seq": 1, "step": 1, "time": 1.0, "values": {"loss": 1.0}},
    "grads": {"type": "grads", "seq": 1, "step": 1, "time": 1.0, "norm": 1.0, "layers": {}},
    "heartbeat": {"type": "heartbeat", "seq": 1, "time": 1.0, "step": 1, "last_log": 1.0},
    "system": {"type": "system", "seq": 1, "time": 1.0, "step": 1, "values": {"gpu": 1.0}},
    "dropped": {"type": "dropped", "seq": 1, "time": 1.0, "count": 1, "reasons": {"queue full": 1}},
    "end": {"type": "end", "seq": 1, "time": 1.0, "status": "finished", "dropped": 0, "step": 1},
}
# (record type, field, value, the record is still read without it)
OUT_OF_RANGE = [
    ("run", "seq", 2 ** 63, False), ("run", "pid", 2 ** 31, True), ("run", "pid", 0, True),
    ("run", "start", 1e300, True), ("run", "rank", 2 ** 31, False), ("run", "rank", -1, False),
    ("run", "world_size", 0, True), ("run", "local_rank", -1, True), ("run", "v", 2 ** 40, True),
    ("run", "model.params", -1, True), ("run", "model.depth", 2 ** 64, True),
    ("meta", "time", -1e12, True), ("meta", "pid", -5, True), ("meta", "start", 1e300, True),
    ("meta", "rank", 2 ** 31, False), ("meta", "world_size", 0, True), ("meta", "local_rank", 2 ** 31, True),
    ("metrics", "seq", 2 ** 63, False), ("metrics", "step", 2 ** 63, False),
    ("metrics", "step", -(2 ** 63) - 1, False), ("metrics", "time", 1e300, False),
    ("grads", "step", 2 ** 63, False), ("grads", "time", -1e12, False),
    ("heartbeat", "step", 2 ** 63, True), ("heartbeat", "last_log", 1e300, True), ("heartbeat", "time", 1e300, False),
    ("system", "step", 2 ** 63, True), ("system", "time", 1e300, False),
    ("dropped", "count", -1, False), ("dropped", "reasons.queue full", 2 ** 63, True), ("dropped", "time", 1e300, True),
    ("end", "dropped", -1, True), ("end", "step", 2 ** 64, True), ("end", "time", 1e300, True),
]


def with_field(rtype, field, value):
    rec = json.loads(json.dumps(BASE[rtype]))
    *path, last = field.split(".")
    parent = rec
    for key in path:
        parent = parent[key]
    parent[last] = value
    return rec


@pytest.mark.parametrize("rtype,field,value,kept", OUT_OF_RANGE)
@pytest.mark.parametrize("batched", [False, True])
def test_every_number_is_range_checked_at_decode(rtype, field, value, kept, batched):
    header = {"type": "run", "seq": 0, "v": 1, "run_id": "r", "name": "n", "start": 1.0, "host": "h", "pid": 5}
    bad = with_field(rtype, field, value)
    if rtype == "run":                                  # the header itself
        header, bad = None, {**bad, "seq": 0} if field != "seq" else bad
    after = [{"type": "metrics", "seq": i, "step": i, "time": 1.0, "values": {"loss": 0.5}} for i in range(2, 30)]
    lines = [r for r in (header, bad) if r] + (after if batched else [])  # batched: among metrics lines (fast path)
    reader = StreamReader("f.jsonl", raw_metrics=True)
    records = reader.feed(b"".join(json.dumps(r).encode() + b"\n" for r in lines))
    (problem,) = reader.problems
    assert problem.source == "f.jsonl" and problem.line_number == lines.index(bad) + 1
    assert problem.reason.startswith(f"{rtype} record: {field}: " if kept else f"bad {rtype} record: {field}: ")
    assert problem.reason.endswith("; left out") == kept and problem.severity == ("warning" if kept else "error")
    read = [r for r in lines if r is not bad or kept]
    assert [as_dict(r)["seq"] for r in records] == [r["seq"] for r in read]
    store = Store(splitter=split_metric)                 # and nothing past the edge raises
    store.apply_many([as_dict(r) if not isinstance(r, dict) else r for r in records], stream="f")
    from tui_monitor.summary import runs_table
    assert "n" in runs_table(store)


def test_a_step_beyond_int64_and_a_pid_beyond_int32_leave_watch_and_diagnose_working(tmp_path):
    import socket
    path = tmp_path / "big.jsonl"
    lines = [{"type": "run", "seq": 0, "v": 1, "run_id": "r", "name": "big", "start": 1.0,
              "host": socket.gethostname(), "pid": 2 ** 31},
             {"type": "system", "seq": 1, "time": 2.0, "step": 2 ** 63, "values": {"gpu_util": 50}},
             *({"type": "metrics", "seq": i, "step": i, "time": 2.0 + i, "values": {"loss": 1.0 / i}}
               for i in range(2, 12))]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    watch = cli("watch", "--once", path, timeout=60)
    assert watch.returncode == 0, watch.stderr
    row = watch.stdout.splitlines()[2].split()
    assert row[:2] == ["big", "0"] and row[-6:-4] == ["11", "loss"]
    assert watch.stderr.splitlines() == [
        f"{path}:1: run record: pid: 2147483648 is out of range (at most 2147483647); left out",
        f"{path}:2: system record: step: 9223372036854775808 is out of range (at most 9223372036854775807); left out"]
    diagnose = cli("diagnose", path, timeout=60)
    assert diagnose.returncode in (0, 1) and "Traceback" not in diagnose.stderr, diagnose.stderr
    assert "big" in diagnose.stdout


# ---------------------------------------------------------------- what is shown and written

def test_a_csv_export_has_no_escape_bytes_and_no_live_formulas(tmp_path):
    import csv
    from tui_monitor.tui.export import csv_rows, write_csv
    store = Store(splitter=split_metric)
    evil_name = "=cmd|' /C calc'!A0\x1b]0;pwned\x07\x1b[2J\u202e\u200b"
    store.apply({"type": "run", "seq": 0, "run_id": "\x07@SUM(1)", "name": evil_name, "start": 1.0}, "s")
    store.apply({"type": "metrics", "seq": 1, "step": 0, "time": 1.0, "values": {"-2+3": -0.5}}, "s")
    store.apply({"type": "metrics", "seq": 2, "step": 1, "time": 2.0, "values": {"-2+3": 0.25}}, "s")
    path = write_csv(tmp_path / "out.csv", csv_rows(list(store.runs.values()), "-2+3"))
    data = path.read_bytes()
    assert not [b for b in data.replace(b"\r\n", b"") if b < 0x20 or b == 0x7F]   # no raw control bytes
    assert "\u202e".encode() not in data and "\u200b".encode() not in data
    rows = list(csv.reader(data.decode().splitlines()))
    assert rows[1:] == [["'=cmd|' /C calc'!A0]0;pwned[2J", "'@SUM(1)", "0", "train", "'-2+3", "0", "1.0", "-0.5"],
                        ["'=cmd|' /C calc'!A0]0;pwned[2J", "'@SUM(1)", "0", "train", "'-2+3", "1", "2.0", "0.25"]]


def test_a_warning_repeated_thousands_of_times_keeps_one_entry_and_the_real_problems(tmp_path):
    from source_helpers import follow, header, metrics, append
    from tui_monitor.stream import Problem
    from tui_monitor.tui.screens.problems import problems_text
    path = tmp_path / "run.jsonl"
    append(path, header() + "{not json\n" + metrics(1, 0, 1.0))
    ing, f = follow(tmp_path)
    for _ in range(3000):                               # a source warning about the same thing, again and again
        ing.problem(Problem("<listener>", 0, "connection refused: wrong token", "warning"))
    problems, total = ing.recent_problems()
    assert total == 3001
    assert [(p.source, p.line_number, p.count) for p in problems] == [(str(path), 2, 1), ("<listener>", 0, 3000)]
    assert str(problems[1]) == "<listener>: connection refused: wrong token (3000 times)"
    shown = problems_text(problems, total).plain
    assert f"{path}:2" in shown and "connection refused: wrong token (3000 times)" in shown


def test_a_megabyte_run_name_is_cut_in_the_table_not_padded_into_every_row():
    from tui_monitor.summary import NAME_WIDTH, runs_table
    store = Store(splitter=split_metric)
    for i in range(201):
        name = "x" * (1 << 20) if i == 100 else f"run{i}"
        store.apply({"type": "run", "seq": 0, "run_id": f"r{i}", "name": name, "start": float(i)}, i)
        store.apply({"type": "metrics", "seq": 1, "step": 0, "time": 1.0, "values": {"loss": 1.0}}, i)
    text = runs_table(store, now=2.0)
    lines = text.splitlines()
    assert len(lines) == 203 and len(text) < 203 * 120
    assert lines[2 + 100].split()[0] == "x" * (NAME_WIDTH - 1) + "…"


INVISIBLE = {"\u200b": "\\u200b", "\u200d": "\\u200d", "\ufeff": "\\ufeff", "\u2060": "\\u2060",
             "\u202e": "\\u202e", "\u2067": "\\u2067", "\u200f": "\\u200f", "\u2028": "\\u2028",
             "\u2029": "\\u2029", "\x85": "\\x85", "\xad": "\\xad", "\U000E0041": "\\U000e0041"}


@pytest.mark.parametrize("char", sorted(INVISIBLE))
def test_invisible_bidi_and_separator_characters_in_names_are_shown_escaped(tmp_path, char):
    from tui_monitor.safe_text import clean
    assert clean(f"a{char}b") == f"a{INVISIBLE[char]}b"
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"type": "run", "seq": 0, "run_id": "r", "name": f"admin{char}x", "start": 1.0}) + "\n"
                    + json.dumps({"type": "metrics", "seq": 1, "step": 0, "time": 1.0, "values": {"loss": 1.0}})
                    + "\n", encoding="utf-8")
    out = cli("watch", "--once", path, timeout=60).stdout
    assert char not in out and f"admin{INVISIBLE[char]}x" in out


def test_a_megabyte_key_in_a_bad_field_gives_a_short_problem():
    key = "k" * (1 << 19)                              # half a megabyte: the line is within the limit
    reader = StreamReader("f.jsonl", raw_metrics=True)
    reader.feed(b"".join(json.dumps(r).encode() + b"\n" for r in (
        {"type": "dropped", "seq": 0, "count": 1, "reasons": {key: -1}},
        {"type": "metrics", "seq": 1, "step": 0, "time": 1.0, "values": {key: [1], "loss": 1.0}})))
    assert [len(p.reason) < 200 for p in reader.problems] == [True, True]
    assert reader.problems[0].reason.startswith("dropped record: reasons." + "k" * 59 + "…: -1 is out of range")
