"""The reading side stays bounded: long lines, files that are not logs, idle
and deleted files, and the locks the sources share."""
from __future__ import annotations

import json
import os
import socket
import sys
import threading

import pytest

from conftest import only_run
from source_helpers import append, follow, header, losses, metrics, read, values
from tui_monitor.sources import Follower, Ingest
from tui_monitor.sources import ingest as ingest_mod
from tui_monitor.sources.csvlog import CSVReader, make_tail as csv_tail
from tui_monitor.sources.formats import MAX_LINE
from tui_monitor.sources.text import TextReader
from tui_monitor.stream import Problem


def too_long(problems):
    return [(p.line_number, p.severity) for p in problems if "longer than 64 KiB" in p.reason]


@pytest.fixture
def reads(monkeypatch):
    """Every ``os.pread`` and ``os.fstat`` made, as ``(name, fd, args)``:
    the real calls, counted."""
    calls = []

    def counting(name, real):
        def call(fd, *args):
            calls.append((name, fd, args))
            return real(fd, *args)
        return call

    monkeypatch.setattr(os, "pread", counting("pread", os.pread))
    monkeypatch.setattr(os, "fstat", counting("fstat", os.fstat))
    return calls


# ---------------------------------------------------------------- long lines

def test_a_binary_csv_without_newlines_stays_bounded(tmp_path):
    path = tmp_path / "blob.csv"
    path.write_bytes(b"")
    reader = CSVReader(csv_tail(str(path), lambda k, r: None, lambda p: None, {}), explicit=True)
    noise = os.urandom(1 << 20).replace(b"\n", b"\0")
    for _ in range(5):                                  # 5 MB, not one newline
        assert reader.feed(noise) == []
        assert len(reader.pending) <= MAX_LINE
    assert reader.ignored                               # no header: not a metrics log
    assert [p.reason for p in reader.problems] == [
        f"not a metrics CSV (its first line is over {MAX_LINE} bytes); not read"]


def test_a_text_log_without_newlines_stays_bounded_and_reads_on_after_it():
    reader = TextReader("log", "log", "run")
    noise = os.urandom(1 << 20).translate(None, b"\r\n")
    for _ in range(5):
        assert reader.feed(noise) == []
        assert len(reader.pending) <= MAX_LINE
    out = reader.feed(b" step 7 loss 9.0\nstep 1 loss 2.0\n")
    assert [(r["step"], r["values"]) for r in out if r["type"] == "metrics"] == [(1, {"loss": 2.0})]
    assert too_long(reader.problems) == [(1, "warning")]


def test_an_overlong_csv_row_is_skipped_whole_and_reported_once(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("step,loss\n0,1.0\n" + "9" * (MAX_LINE + 10))   # a row still being written ...
    ing, f = follow(tmp_path)
    append(path, "9" * (3 * MAX_LINE) + ",5.0\n1,0.9\n")               # ... ends much later
    f.tick()
    append(path, "7," + "8" * MAX_LINE + "\n2,0.8\n")                  # and one in a single write
    f.tick()
    assert values(only_run(ing)) == ([0, 1, 2], [1.0, 0.9, 0.8])      # nothing of the fragments
    assert too_long(ing.problems) == [(3, "warning")]                 # one entry per file and reason:
    (p,) = [p for p in ing.problems if "longer than" in p.reason]
    assert (p.count, p.last_line) == (2, 5)                           # twice, the last at line 5
    assert len(f.tails[str(path)].reader.pending) == 0


def test_an_overlong_text_line_is_skipped_whole_and_reported_once(tmp_path):
    log = tmp_path / "train.log"
    log.write_text("step 1 loss 2.0\n" + "x" * (MAX_LINE + 10))
    ing, f = follow(log)
    append(log, "x" * MAX_LINE + " step 5 loss 9.0\r\nstep 2 loss 1.5\n")  # the fragment would parse
    f.tick()
    assert values(only_run(ing)) == ([1, 2], [2.0, 1.5])
    assert too_long(ing.problems) == [(2, "warning")]


def test_numbers_with_thousands_of_digits_are_read_not_raised(tmp_path):
    big = "9" * 5000                                     # int() refuses more than 4300 digits
    path = tmp_path / "metrics.csv"
    path.write_text(f"step,loss\n{big},1.0\n1,{big}\n2,0.5\n")
    ing = read(tmp_path)
    assert values(only_run(ing)) == ([0, 1, 2], [1.0, float("inf"), 0.5])
    reader = TextReader("log", "log", "run")
    out = reader.feed(f"Epoch {big}/10\n {big}/100 [00:01<00:02, 1it/s, loss=0.5]\nstep 1 loss 2.0\n".encode())
    assert [(r["step"], r["values"]) for r in out if r["type"] == "metrics"] == [(1, {"loss": 2.0})]


def test_an_overlong_line_on_standard_input_is_reported():
    from tui_monitor.sources.text import StdinSource
    r, w = os.pipe()
    ing = Ingest()
    src = StdinSource(ing.records, ing.problem, fd=r)
    os.close(r)
    writer = threading.Thread(target=lambda: (os.write(w, b"x" * (3 * MAX_LINE) + b"\nstep 1 loss 2.0\n"),
                                              os.close(w)))
    writer.start()
    src.read_all()
    writer.join()
    assert values(only_run(ing)) == ([1], [2.0])
    assert [(p.source, p.line_number, p.reason) for p in ing.problems] == [
        ("<stdin>", 1, "line longer than 64 KiB; skipped")]


# ---------------------------------------------------------------- CSVs that are not logs

def test_a_csv_that_is_not_a_log_is_not_read_again_until_rewritten(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("name,size\na,1\n")
    ing, f = follow(tmp_path)
    assert str(path) not in f.tails and not ing.store.runs   # found in a folder, not a metrics log: not followed
    skipped = [p for p in ing.problems if "skipped" in p.reason]
    assert len(skipped) == 1 and "data.csv: a CSV without a step" in skipped[0].reason
    for _ in range(3):
        append(path, "b,2\n" * 50_000)                  # it grows: only its first bytes are looked at again
        f.scan()
    assert str(path) not in f.tails and len(list(ing.problems)) == 1
    append(path, "step,loss\n0,1.0\n1,0.5\n", mode="w")  # rewritten into a metrics log
    f.scan()
    f.tick()
    assert values(only_run(ing)) == ([0, 1], [1.0, 0.5])


def test_a_binary_csv_rewritten_into_a_larger_log_is_read(tmp_path):
    path = tmp_path / "metrics.csv"
    noise = [os.urandom(70_000).replace(b"\n", b"\0") for _ in range(3)]
    path.write_bytes(b"\n".join(noise) + b"\n")          # three lines too long
    ing, f = follow(tmp_path)
    assert str(path) not in f.tails
    append(path, noise[0])
    f.scan()                                            # its start is where it was: not looked at again
    assert str(path) not in f.tails
    rows = "".join(f"{i},{i / 1000}\n" for i in range(30_000))
    append(path, "step,loss\n" + rows, mode="w")        # larger than it was: no truncation seen
    ing.read_all()
    assert values(only_run(ing))[0] == list(range(30_000))


# ---------------------------------------------------------------- idle files

def test_an_idle_file_costs_one_stat_a_poll(tmp_path, reads):
    stream, log = tmp_path / "a.jsonl", tmp_path / "metrics.csv"
    append(stream, header() + metrics(1, 0, 1.0))
    log.write_text("step,loss\n0,1.0\n")
    ing, f = follow(tmp_path)
    f.tick()                                            # one look that finds nothing new
    del reads[:]
    for _ in range(20):
        f.tick()
    assert reads == []                                  # no fstat, no header check, no read
    append(stream, metrics(2, 1, 0.5))
    append(log, "1,0.5\n")
    f.tick()
    assert losses(ing.store) == [(0, 1.0), (1, 0.5)]
    (csv_run,) = [r for r in ing.store.runs.values() if r.run_id != "r1"]
    assert values(csv_run) == ([0, 1], [1.0, 0.5])


def test_a_same_size_csv_rewrite_after_idle_polls_is_still_seen(tmp_path):
    path = tmp_path / "metrics.csv"
    path.write_text("step,loss\n0,1.0\n")
    ing, f = follow(tmp_path)
    for _ in range(3):
        f.tick()
    mtime = path.stat().st_mtime_ns
    append(path, "step,lass\n0,2.0\n", mode="w")        # Lightning-style rewrite, same size
    os.utime(path, ns=(mtime + 10**9, mtime + 10**9))   # a later write (not the same clock tick)
    f.tick()
    (rewritten,) = [r for r in ing.store.runs.values() if ("train", "lass") in r.series]
    assert values(rewritten, "lass") == ([0], [2.0])
    assert [p.reason for p in ing.problems] == ["file was rewritten with different rows; reading it as a new run"]


def test_an_event_file_that_cannot_be_framed_is_not_read_on(tmp_path):
    from tui_monitor.sources.tfevents import frame_record
    path = tmp_path / "events.out.tfevents.1.host.1.0"
    path.write_bytes(b"\x10" + b"\0" * 7 + b"bad!" + b"x" * 100)  # a length whose CRC fails
    ing, f = follow(tmp_path)
    tail = f.tails[str(path)]
    offset = tail.offset
    append(path, frame_record(b"") * 1000)
    f.tick()
    assert tail.offset == offset and tail.reader.done
    assert ["cannot be framed" in p.reason for p in ing.problems] == [True]


# ---------------------------------------------------------------- deleted files

def test_a_deleted_file_gone_quiet_is_closed_and_a_new_one_is_followed(tmp_path):
    now = [1000.0]
    ing = Ingest()
    f = Follower([str(tmp_path)], ing.records, ing.problem, poll=True, clock=lambda: now[0])
    path = tmp_path / "gone.jsonl"
    append(path, header() + metrics(1, 0, 1.0))
    f.tick()
    tail = f.tails[str(path)]
    fd = tail.fd
    writer = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        os.unlink(path)
        f.tick()
        now[0] += 59
        os.write(writer, metrics(2, 1, 0.5).encode())  # its writer goes on: still followed
        f.tick()
        now[0] += 59
        f.tick()
        assert losses(ing.store) == [(0, 1.0), (1, 0.5)] and tail.fd == fd
        now[0] += 2                                     # read to its end and quiet for 61 s
        f.tick()
        with pytest.raises(OSError):
            os.fstat(fd)
        assert tail.fd is None and str(path) not in f.tails
        assert [p.reason for p in ing.problems][-1] == "deleted file quiet for 60 s; closed"
        append(path, header("again") + metrics(1, 0, 7.0))
        now[0] += 1
        f.tick()
        assert losses(ing.store, "again") == [(0, 7.0)] and f.tails[str(path)] is not tail
    finally:
        os.close(writer)
        f.stop()


# ---------------------------------------------------------------- the ingest hub

def test_records_are_applied_while_liveness_reads_proc(monkeypatch):
    ing = Ingest()
    ing.records("s", [{"type": "run", "seq": 0, "v": 1, "run_id": "mine", "name": "mine", "start": 1.0,
                       "host": socket.gethostname(), "pid": os.getpid(), "rank": 0, "world_size": 1}])
    checking, applied = threading.Event(), threading.Event()
    got_through = []

    def slow_alive(pid, start):
        checking.set()
        got_through.append(applied.wait(5))             # a slow /proc, until a source got through
        return True

    def source():
        checking.wait(5)
        ing.records("s", [{"type": "metrics", "seq": 1, "step": 0, "time": 2.0, "values": {"loss": 0.5}}])
        applied.set()

    monkeypatch.setattr(ingest_mod, "_alive", slow_alive)
    t = threading.Thread(target=source)
    t.start()
    ing.check_liveness(now=3.0)
    t.join(10)
    assert got_through == [True] and values(only_run(ing)) == ([0], [0.5])
    assert only_run(ing).status == "running"


def test_liveness_leaves_alone_a_run_resumed_while_proc_was_read(monkeypatch):
    ing = Ingest()

    def run(run_id, pid, start, seq=0):
        return [{"type": "run", "seq": seq, "v": 1, "run_id": run_id, "name": run_id, "start": start,
                 "host": socket.gethostname(), "pid": pid, "rank": 0, "world_size": 1}]

    ing.records("a", run("killed", 1 << 30, 1.0))
    ing.records("b", run("resumed", 1 << 30, 1.0))
    resumer = threading.Thread(target=ing.records, args=("c", run("resumed", os.getpid(), 2.0)))

    def gone(pid, start):                               # the old processes are gone ...
        if resumer.ident is None:
            resumer.start()                             # ... and one run resumes in a new one meanwhile
            resumer.join(5)
        return False

    monkeypatch.setattr(ingest_mod, "_alive", gone)
    ing.check_liveness(now=3.0)
    resumer.join(5)
    assert ing.store.get("killed").status == "crashed"
    resumed = ing.store.get("resumed")
    assert (resumed.status, resumed.pid, resumed.restarts) == ("running", os.getpid(), 1)


def test_problems_from_many_threads_are_all_counted_and_read_whole():
    ing = Ingest(max_problems=10**6)
    n, threads = 5000, 8
    torn = []
    done = threading.Event()

    def report(k):
        for i in range(n):
            ing.problem(Problem(f"t{k}", i, f"bad {i % 100}", "warning"))  # each reason 50 times

    def watch():
        while not done.is_set():
            problems, total = ing.recent_problems()
            if sum(p.count for p in problems) != total:
                torn.append((len(problems), total))

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        watcher = threading.Thread(target=watch)
        watcher.start()
        workers = [threading.Thread(target=report, args=(k,)) for k in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        done.set()
        watcher.join()
    finally:
        sys.setswitchinterval(old)
    problems, total = ing.recent_problems()
    assert total == ing.problem_count == n * threads and torn == []
    assert sorted((p.source, p.reason, p.line_number, p.count, p.last_line) for p in problems) == sorted(
        (f"t{k}", f"bad {j}", j, n // 100, n - 100 + j) for k in range(threads) for j in range(100))


def test_silent_after_reaches_the_stored_status():
    for after, expected in ((30.0, "silent"), (120.0, "running")):
        ing = Ingest(silent_after=after)
        ing.records("s", [json.loads(header()), json.loads(metrics(1, 0, 1.0))])  # last record at t=1000
        ing.check_liveness(now=1060.0)
        assert ing.store.get("r1").status == expected


# ---------------------------------------------------------------- the descriptor budget

def budgeted(tmp_path, budget):
    """A follower of ``tmp_path`` allowed ``budget`` open files, read to the end."""
    ing = Ingest()
    f = ing.add_path(str(tmp_path), poll=True)
    f.open_files.budget = budget
    ing.read_all()
    return ing, f


def held_open(f):
    return sorted(os.path.basename(p) for p, t in f.tails.items() if t.fd is not None)


def test_idle_files_over_the_budget_are_closed_and_read_on_where_they_stopped(tmp_path):
    for name in "abcd":
        append(tmp_path / f"{name}.jsonl", header(name) + metrics(1, 0, 1.0))
    ing, f = budgeted(tmp_path, 2)
    assert held_open(f) == ["c.jsonl", "d.jsonl"]      # the most recently read
    append(tmp_path / "a.jsonl", metrics(2, 1, 0.5))
    f.tick()
    assert held_open(f) == ["a.jsonl", "d.jsonl"]      # a moved: opened again; c, idle longest, closed
    assert losses(ing.store, "a") == [(0, 1.0), (1, 0.5)]
    run = ing.store.get("a")
    assert run.duplicates == 0 and run.restarts == 0 and list(ing.problems) == []
    for _ in range(3):
        f.tick()
    assert held_open(f) == ["a.jsonl", "d.jsonl"]      # idle files are not opened to be looked at


def test_a_closed_idle_file_replaced_truncated_or_deleted_is_seen(tmp_path):
    for name in "abcd":
        append(tmp_path / f"{name}.jsonl", header(name) + metrics(1, 0, 1.0) + metrics(2, 1, 1.0))
    ing, f = budgeted(tmp_path, 1)
    assert held_open(f) == ["d.jsonl"]
    os.rename(tmp_path / "a.jsonl", tmp_path / "a.old")  # rotation: a new file at the path
    append(tmp_path / "a.jsonl", header("a2") + metrics(1, 0, 2.0))
    append(tmp_path / "b.jsonl", header("b2") + metrics(1, 0, 3.0), mode="w")  # truncated, rewritten
    os.unlink(tmp_path / "c.jsonl")
    f.tick()
    assert losses(ing.store, "a2") == [(0, 2.0)] and losses(ing.store, "b2") == [(0, 3.0)]
    by_file = {os.path.basename(p.source): p.reason for p in ing.problems}
    assert by_file == {
        "a.jsonl": "file was replaced while idle (not held open); following the new one",
        "b.jsonl": "file was truncated to %d bytes; reading it again from the start"
                   % (tmp_path / "b.jsonl").stat().st_size,
        "c.jsonl": "file was deleted or moved away while idle (not held open); what it had was read"}
    assert "c.jsonl" not in {os.path.basename(p) for p in f.tails}
    append(tmp_path / "c.jsonl", header("c2") + metrics(1, 0, 4.0))
    f.scan()
    f.tick()
    assert losses(ing.store, "c2") == [(0, 4.0)]


def test_a_deleted_file_being_followed_keeps_its_descriptor_over_the_budget(tmp_path):
    for name in "ab":
        append(tmp_path / f"{name}.jsonl", header(name) + metrics(1, 0, 1.0))
    ing, f = budgeted(tmp_path, 1)
    writer = os.open(tmp_path / "b.jsonl", os.O_WRONLY | os.O_APPEND)
    try:
        os.unlink(tmp_path / "b.jsonl")
        f.tick()                                        # b is deleted: followed through its descriptor
        append(tmp_path / "a.jsonl", metrics(2, 1, 0.5))
        f.tick()                                        # a needs one too: b keeps its own
        os.write(writer, metrics(2, 1, 0.25).encode())
        f.tick()
        assert losses(ing.store, "b") == [(0, 1.0), (1, 0.25)] and losses(ing.store, "a") == [(0, 1.0), (1, 0.5)]
    finally:
        os.close(writer)
        f.stop()


def test_running_out_of_descriptors_shrinks_the_budget_once(tmp_path, monkeypatch):
    import errno
    for name in "abcdef":
        append(tmp_path / f"{name}.jsonl", header(name) + metrics(1, 0, 1.0))
    real_open, opened = os.open, []

    def scarce(path, *args, **kw):                      # the process has room for 4 more descriptors
        if str(path).endswith(".jsonl") and len([t for t in opened if t]) >= 4:
            raise OSError(errno.EMFILE, "Too many open files")
        fd = real_open(path, *args, **kw)
        opened.append(fd)
        return fd

    real_close = os.close

    def close(fd):
        if fd in opened:
            opened[opened.index(fd)] = None
        real_close(fd)

    monkeypatch.setattr(os, "open", scarce)
    monkeypatch.setattr(os, "close", close)
    ing, f = budgeted(tmp_path, 100)
    f.tick()
    assert sorted(r.run_id for r in ing.store.runs.values()) == list("abcdef")
    assert f.open_files.budget == 3
    assert [p.reason for p in ing.problems] == [
        "out of file descriptors with 4 files open; keeping at most 3 open at once"]
