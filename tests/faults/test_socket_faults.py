"""The socket path under faults: slow, absent and flooding peers."""
from __future__ import annotations

import json
import os
import socket

import pytest

import tui_monitor as tm
from conftest import FakeListener, child, free_port, records, wait_for
from source_helpers import RawWriter, losses
from tui_monitor.sources import Ingest


@pytest.fixture
def listening_with():
    """Starts an ingest listening on a free loopback port (with ``token``,
    if given) and returns (ingest, listener, port); all are stopped after
    the test."""
    started = []

    def start(token=None):
        ing = Ingest()
        lst = ing.listen("127.0.0.1:0", token=token)
        ing.start()
        started.append(ing)
        return ing, lst, lst.bound[1]

    yield start
    for ing in started:
        ing.stop()


@pytest.fixture
def listening(listening_with):
    """(ingest, listener, port) of an ingest listening on loopback."""
    return listening_with()

class StuckListener(FakeListener):
    """Says welcome, then never reads again: a consumer that stopped."""

    def session(self, conn, f):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.hello(f)
        self.welcome(conn)  # and never read from it again


class EagerAckListener(FakeListener):
    """Sends its welcome and an ack in one write, so they reach the hook in
    one packet; then reads on and acknowledges nothing more."""

    def session(self, conn, f):
        self.hello(f)
        self.challenge(conn)
        conn.sendall(self.WELCOME + b'{"type":"ack","seq":3}\n')
        for line in f:
            self.records.append(json.loads(line))


def test_an_ack_in_the_same_packet_as_the_welcome_is_not_lost():
    listener = EagerAckListener()
    run = tm.init("eager", dir=False, to=f"127.0.0.1:{listener.port}", flush_every=0.01, system_every=0)
    try:
        for step in range(5):
            run.log({"loss": float(step)}, step=step)
        wait_for(lambda: run._socket.acked == 3, timeout=10, message="the ack that came with the welcome")
        wait_for(lambda: [r.get("step") for r in listener.records if r["type"] == "metrics"] == list(range(5)),
                 message="the records after the welcome")
        assert run._socket.acked == 3 and len(listener.hellos) == 1    # the same connection, nothing acked since
    finally:
        run.close(socket_timeout=0.1)
        listener.close()


@pytest.mark.parametrize("with_file", [True, False])
def test_a_stuck_listener_never_slows_the_loop_and_memory_stays_capped(tmp_path, with_file, capfd):
    stuck = StuckListener()
    try:
        run = tm.init("stuck", dir=tmp_path if with_file else False, to=f"127.0.0.1:{stuck.port}",
                      flush_every=0.01, socket_buffer=1000)
        for step in range(20_000):          # if log() blocked on the socket, this would never end
            run.log({"loss": float(step), "pad": "x" * 100}, step=step)
        run.flush()                         # every record has reached the sink
        assert run._socket.overflow > 0
        with run._socket.lock:
            assert len(run._socket.buf) == 1000
        run.close(socket_timeout=0.5)
        if with_file:
            recs = records(run.path)
            assert [r["step"] for r in recs if r["type"] == "metrics"] == list(range(20_000))
            assert recs[-1]["dropped"] == 0            # pushed out of the socket buffer, but safe in the file
        else:
            # pushed out unsent, or still in the buffer unacknowledged when close() gave up: all counted
            assert run.drop_reasons.keys() == {"socket buffer full", "not acknowledged by the listener"}
            assert run.drop_reasons["not acknowledged by the listener"] == 1000       # the buffer, full at the end
            assert run.dropped == sum(run.drop_reasons.values()) == run._seq          # every record made: none acked
            err = capfd.readouterr().err
            assert "socket buffer full" in err and "1000 record(s) were not acknowledged" in err
    finally:
        stuck.close()


def test_listener_absent_at_start_then_present_gets_everything(tmp_path):
    port = free_port()
    run = tm.init("early", dir=False, to=f"127.0.0.1:{port}", flush_every=0.01)
    for step in range(300):
        run.log({"loss": float(step)}, step=step)
    wait_for(lambda: run._socket.buf and run._socket.buf[-1][0] >= 300, message="records queued for the socket")
    ing = Ingest()
    ing.listen(f"127.0.0.1:{port}")
    ing.start()
    try:
        for step in range(300, 400):
            run.log({"loss": float(step)}, step=step)
        run.close(socket_timeout=20)
        got = wait_for(lambda: [r for r in ing.store.runs.values() if r.status == "finished"], message="the end")[0]
        assert got.series[("train", "loss")].steps.tolist() == list(range(400))
    finally:
        ing.stop()


SAME_RUN_ID = """
import sys, tui_monitor as tm
run = tm.init("requeued", dir=False, to=sys.argv[1], run_id="slurm-77", flush_every=0.01)
for step in range(int(sys.argv[2]), int(sys.argv[3])):
    run.log({"loss": float(step)}, step=step)
run.close(socket_timeout=20)
"""


def test_a_new_process_reusing_the_run_id_sends_its_whole_stream():
    # a requeued job: the second process has the same run id and starts its
    # seq at 0 again; the listener must not answer it with the first one's
    # "have", or its header and first records would never be sent
    ing = Ingest()
    address = f"127.0.0.1:{free_port()}"
    ing.listen(address)
    ing.start()
    try:
        assert child(SAME_RUN_ID, address, "0", "50").wait(30) == 0
        run = wait_for(lambda: ing.store.get("slurm-77"), message="the first process's run")
        wait_for(lambda: run.status == "finished", message="the first process's end")
        assert child(SAME_RUN_ID, address, "50", "80").wait(30) == 0
        wait_for(lambda: run.restarts == 1 and run.status == "finished" and run.last_step == 79,
                 message="the second process's whole stream")
        assert run.series[("train", "loss")].steps.tolist() == list(range(80))
        assert run.missing == 0
    finally:
        ing.stop()


def test_a_flood_of_connections_and_garbage_leaves_the_good_run_alone(tmp_path):
    ing = Ingest()
    lst = ing.listen("127.0.0.1:0")
    lst.max_connections = 50
    ing.start()
    port = lst.bound[1]
    flood = []
    try:
        good = tm.init("good", dir=False, to=f"127.0.0.1:{port}", flush_every=0.01)
        good.log({"loss": 1.0}, step=0)
        wait_for(lambda: ing.store.runs, message="the good run")
        for i in range(120):                      # idle sockets and garbage, well past the cap
            c = socket.create_connection(("127.0.0.1", port))
            if i % 2:
                c.sendall(os.urandom(512) + b"\n")
            flood.append(c)
        wait_for(lambda: lst.refused >= 60, message="refusals")
        for step in range(1, 200):
            good.log({"loss": 1.0 / step}, step=step)
        good.close(socket_timeout=20)
        run = wait_for(lambda: [r for r in ing.store.runs.values() if r.status == "finished"], message="the end")[0]
        assert run.series[("train", "loss")].steps.tolist() == list(range(200))
        assert len(ing.store.runs) == 1
        assert all(p.reason.startswith("connection refused") or "refused" in p.reason for p in ing.problems)
    finally:
        for c in flood:
            c.close()
        ing.stop()


def test_the_token_never_reaches_files_or_problems(tmp_path, listening_with):
    ing, lst, port = listening_with(token="hunter2-secret")
    run = tm.init("secret", dir=tmp_path, to=f"127.0.0.1:{port}", token="hunter2-secret", flush_every=0.01)
    run.log({"loss": 1.0}, step=0)
    run.close(socket_timeout=20)
    bad = tm.init("intruder", dir=False, to=f"127.0.0.1:{port}", token="wrong-token", flush_every=0.01)
    bad.log({"loss": 1.0}, step=0)
    wait_for(lambda: lst.refused >= 1, message="the intruder refused")
    bad.close(socket_timeout=0.2)
    assert "hunter2" not in open(run.path).read()
    assert all("hunter2" not in str(p) and "wrong-token" not in str(p) for p in ing.problems)
    assert [r.name for r in ing.store.runs.values()] == ["secret"]


# -- a raw hook-like client ------------------------------------------------------

def _line(rec):
    return (json.dumps(rec) + "\n").encode()


def _header(run_id="r1", seq=0):
    return _line({"type": "run", "seq": seq, "v": 1, "run_id": run_id, "name": "raw", "start": 1000.0,
                  "host": "elsewhere", "pid": 1, "rank": 0, "world_size": 1, "config": {}})


def _metrics(seq, step, loss):
    return _line({"type": "metrics", "seq": seq, "step": step, "time": 1000.0 + step, "values": {"loss": loss}})


def _connect(port, run_id="r1", rank=0, **kw):
    return RawWriter(("127.0.0.1", port), run_id, rank, **kw)


def test_a_half_line_of_a_dropped_connection_is_not_glued_to_the_next_ones_first_line(listening):
    ing, lst, port = listening
    c = _connect(port)
    assert c.welcome["type"] == "welcome" and c.have == -1
    third = _metrics(2, 1, 0.5)
    c.send(_header() + _metrics(1, 0, 1.0) + third[:25])     # the writer dies mid-line
    reader = lst.streams.feeding("r1").reader
    wait_for(lambda: losses(ing.store) == [(0, 1.0)] and reader.pending_bytes == 25, message="the half line")
    c.close()
    dropped = wait_for(lambda: [p for p in ing.problems if "closed mid-line" in p.reason],
                       message="the dropped half line reported")
    assert dropped[0].severity == "warning" and "25 bytes" in dropped[0].reason
    assert reader.pending_bytes == 0
    # the writer comes back, resumes its stream, and resends from what the listener has
    c = _connect(port, session=c.session)
    assert c.welcome["type"] == "welcome" and c.have == 1
    c.send(third + _metrics(3, 2, 0.25))
    wait_for(lambda: losses(ing.store) == [(0, 1.0), (1, 0.5), (2, 0.25)], message="the resent line read whole")
    while c.read() != {"type": "ack", "seq": 3}:   # acks go on: the writer can drain
        pass
    assert reader.contiguous_seq == 3 and reader.stats.errors == 0
    assert [p for p in ing.problems if p.severity == "error"] == []
    c.close()


GARBAGE_HELLOS = [
    b'{"type":"hello","v":1,"run_id":[1]}\n',                  # unhashable: used to kill the thread under -O
    b'{"type":"hello","v":1,"run_id":{"a":1},"rank":0}\n',
    b'{"type":"hello","v":1,"run_id":"x","rank":true}\n',       # a bool is not a rank
    b'{"type":"hello","v":1,"run_id":"x","rank":"1"}\n',
    b'{"type":"hello","v":1,"run_id":"x","rank":1.5}\n',
    b'{"type":"hello","v":1,"run_id":"x","rank":[0]}\n',
    # out of the record format's range (0 to 2^31-1): the row's rank would be stored as the hello says
    b'{"type":"hello","v":1,"handshake":2,"run_id":"x","rank":-1,"nonce":"00112233445566778899aabbccddeeff"}\n',
    b'{"type":"hello","v":1,"handshake":2,"run_id":"x","rank":2147483648,"nonce":"00112233445566778899aabbccddeeff"}\n',
    b'{"type":"hello","v":1,"run_id":""}\n',
    b'{"type":"hello","v":1}\n',
    b'{"type":["hello"],"run_id":"x"}\n',
    b'["hello","x"]\n',
    b'null\n',
    b'\xff\xfe\x00garbage\n',
    b"[" * 50_000 + b"\n",                                        # nesting too deep for the parser
    b'{"type":"hello","v":1,"handshake":2,"run_id":"x","rank":0}\n',             # no nonce
    b'{"type":"hello","v":1,"handshake":2,"run_id":"x","rank":0,"nonce":"ab"}\n',  # too short to be one
    b'{"type":"hello","v":1,"handshake":2,"run_id":"x","rank":0,"nonce":["a"]}\n',
]


def _refused_reply(port, payload):
    with socket.create_connection(("127.0.0.1", port), timeout=20) as c:
        c.sendall(payload)
        return json.loads(c.makefile("rb").readline())


def test_garbage_hellos_of_every_shape_are_refused_and_a_good_hook_still_streams(listening):
    ing, lst, port = listening
    for payload in GARBAGE_HELLOS:
        reply = _refused_reply(port, payload)
        assert reply["type"] == "refused", (payload[:60], reply)
    assert lst.refused == len(GARBAGE_HELLOS) and len(lst.streams) == 0
    assert lst._thread.is_alive()
    # each reason told at once; the same reason again within a second is counted, told later
    reasons = [p.reason for p in ing.problems]
    assert 0 < len(reasons) <= len(GARBAGE_HELLOS) and all(r.startswith("connection refused: ") for r in reasons)
    assert any("rank" in r for r in reasons) and any("run_id" in r for r in reasons)
    assert any("nonce" in r for r in reasons)
    run = tm.init("good", dir=False, to=f"127.0.0.1:{port}", flush_every=0.01, rank=3)
    for step in range(50):
        run.log({"loss": float(step)}, step=step)
    run.close(socket_timeout=20)
    got = wait_for(lambda: [r for r in ing.store.runs.values() if r.status == "finished"], message="the end")[0]
    assert got.series[("train", "loss")].steps.tolist() == list(range(50)) and got.rank == 3


OPTIMIZED_LISTENER = """
import sys, time
from tui_monitor.sources import Ingest
assert False, "asserts run: this child was meant to run with -O"
ing = Ingest()
lst = ing.listen("127.0.0.1:0")
ing.start()
print(lst.bound[1], flush=True)
deadline = time.monotonic() + 60
while time.monotonic() < deadline and not any(r.status == "finished" for r in ing.store.runs.values()):
    time.sleep(0.01)
run = next(iter(ing.store.runs.values()), None)
print(run.series[("train", "loss")].steps.tolist() if run else None, lst.refused, flush=True)
ing.stop()
"""


def test_hellos_are_checked_without_asserts_under_python_dash_o():
    proc = child(OPTIMIZED_LISTENER, env={"PYTHONOPTIMIZE": "1"})
    try:
        port = int(proc.stdout.readline())
        for payload in GARBAGE_HELLOS:
            assert _refused_reply(port, payload)["type"] == "refused", payload[:60]
        run = tm.init("good", dir=False, to=f"127.0.0.1:{port}", flush_every=0.01)
        for step in range(20):
            run.log({"loss": float(step)}, step=step)
        run.close(socket_timeout=20)
        steps, refused = proc.stdout.readline().rsplit(None, 1)
        assert json.loads(steps) == list(range(20)) and int(refused) == len(GARBAGE_HELLOS)
    finally:
        proc.kill()
        proc.wait()


def test_an_error_serving_one_connection_closes_it_and_the_listener_goes_on():
    ing = Ingest()
    real = ing.records
    calls = []

    def records(stream, recs, **kw):    # the store fails once (a bug, say): that connection ends, nothing else
        calls.append(stream)
        if len(calls) == 1:
            raise RuntimeError("store bug")
        real(stream, recs, **kw)

    ing.records = records
    lst = ing.listen("127.0.0.1:0")
    ing.start()
    port = lst.bound[1]
    try:
        c = _connect(port, "first")
        c.send(_header("first"))
        assert c.read() is None                                    # closed by the listener
        c.close()
        err = [p for p in ing.problems if p.severity == "error"]
        assert len(err) == 1 and "internal error: RuntimeError: store bug" in err[0].reason
        c = _connect(port, "second")
        assert c.welcome["type"] == "welcome" and c.have == -1
        c.send(_header("second") + _metrics(1, 0, 0.5))
        wait_for(lambda: losses(ing.store, "second") == [(0, 0.5)], message="the next connection served")
        c.close()
        assert lst._thread.is_alive()
    finally:
        ing.stop()


def test_a_socket_buffer_of_zero_keeps_nothing_for_the_socket_and_everything_in_the_file(tmp_path):
    run = tm.init("zero", dir=tmp_path, to=f"127.0.0.1:{free_port()}", socket_buffer=0, flush_every=0.01)
    for step in range(5):
        run.log({"loss": float(step)}, step=step)
    run.close(socket_timeout=0.2)
    recs = records(run.path)
    assert [r["step"] for r in recs if r["type"] == "metrics"] == list(range(5))
    assert recs[-1]["type"] == "end" and recs[-1]["dropped"] == 0  # the file holds them: nothing lost
    assert len(run._socket.buf) == 0 and run._socket.overflow == len(recs)


# -- who may continue a stream (issue 13, item 6) ----------------------------------

def _steps_and_values(run):
    s = run.series[("train", "loss")]
    return s.steps.tolist(), s.values.tolist()


def test_a_hello_naming_a_live_run_cannot_take_its_stream_over(listening):
    ing, lst, port = listening
    victim = tm.init("victim", dir=False, to=f"127.0.0.1:{port}", flush_every=0.01, system_every=0)
    for step in range(50):
        victim.log({"loss": float(step)}, step=step)
    mine = wait_for(lambda: ing.store.get(victim.run_id), message="the victim's run")
    wait_for(lambda: mine.last_step == 49, message="the victim's first 50 steps")
    # everything the header says, pid and start too: still not the writer
    forger = _connect(port, victim.run_id, pid=victim._header["pid"], start=victim._header["start"])
    assert forger.welcome["type"] == "welcome" and forger.have == -1       # learns nothing of the victim's
    forger.send(_header(victim.run_id) + b"".join(_metrics(seq, 1000 + seq, -1.0) for seq in range(1, 30)))
    theirs = wait_for(lambda: ing.store.get(f"{victim.run_id}~2"), message="the forger's own row")
    wait_for(lambda: theirs.last_step == 1029, message="the forger's records, in its own row")
    for step in range(50, 80):
        victim.log({"loss": float(step)}, step=step)
    victim.close(socket_timeout=20)
    wait_for(lambda: mine.status == "finished", message="the victim's end")
    assert _steps_and_values(mine) == (list(range(80)), [float(s) for s in range(80)])
    assert mine.duplicates == 0 and mine.missing == 0 and victim.dropped == 0
    assert _steps_and_values(theirs) == (list(range(1001, 1030)), [-1.0] * 29)
    assert theirs.header["sent_run_id"] == victim.run_id and theirs.status == "running"
    assert (theirs.name, theirs.header["sent_name"], mine.name) == ("raw~2", "raw", "victim")
    told = [p.reason for p in ing.problems if "kept apart" in p.reason]
    assert len(told) == 1 and f"as run '{victim.run_id}~2'" in told[0]
    forger.close()


def _streaming(ing, port):
    """A writer whose header and first record are in the store."""
    first = _connect(port)
    first.send(_header() + _metrics(1, 0, 1.0))
    wait_for(lambda: losses(ing.store) == [(0, 1.0)], message="the first record")
    return first


def test_a_resume_needs_the_streams_secret(listening):
    ing, lst, port = listening
    first = _streaming(ing, port)
    first.close()
    sid, secret = first.session
    wrong = _connect(port, session=(sid, b"not the secret"))
    assert wrong.have == -1 and wrong.session[0] != sid        # a stream of its own
    right = _connect(port, session=first.session)
    assert right.have == 1 and right.session == first.session  # the writer carries on
    right.send(_metrics(2, 1, 0.5))
    wait_for(lambda: losses(ing.store) == [(0, 1.0), (1, 0.5)], message="the resumed stream's record")
    assert [p.reason for p in ing.problems if "without its secret" in p.reason] != []
    wrong.close()
    right.close()


def test_a_problem_repeated_by_many_connections_is_one_entry_with_a_count(listening):
    # Each connection comes from a port of its own: a problem named after
    # the port was a new entry every time, and a few hundred forged resumes
    # pushed every FILE:LINE problem out of the list.
    ing, lst, port = listening
    first = _streaming(ing, port)
    for _ in range(20):
        _connect(port, session=(first.session[0], b"not the secret")).close()
    forged = [p for p in ing.problems if "without its secret" in p.reason]
    assert len(forged) == 1 and forged[0].count == 20, forged
    assert forged[0].source == f"{lst.address} (from 127.0.0.1)"
    first.close()


def test_duplicates_a_writer_sends_are_counted_and_told(listening):
    ing, lst, port = listening
    c = _connect(port)
    c.send(_header() + _metrics(1, 0, 1.0) + _metrics(2, 1, 0.5) + _metrics(1, 0, 9.0) + _metrics(2, 1, 9.0))
    told = wait_for(lambda: [p for p in ing.problems if "duplicates" in p.reason], message="the duplicates told")
    assert "2 record(s) repeated a seq already received" in told[0].reason and told[0].severity == "warning"
    assert losses(ing.store) == [(0, 1.0), (1, 0.5)]
    c.close()


SHARED_RUN_ID = """
import os, sys, time, tui_monitor as tm
run = tm.init(sys.argv[2], dir=False, to=sys.argv[1], flush_every=0.01, system_every=0)
run.log({"loss": float(sys.argv[3])}, step=0)
while not os.path.exists(sys.argv[4]):   # both jobs are streaming before either goes on
    time.sleep(0.01)
for step in range(1, 100):
    run.log({"loss": float(sys.argv[3])}, step=step)
run.close(socket_timeout=20)
"""


def test_two_jobs_sharing_a_run_id_are_two_rows(tmp_path):
    ing = Ingest()
    address = f"127.0.0.1:{free_port()}"
    ing.listen(address)
    ing.start()
    go = tmp_path / "go"
    try:
        procs = [child(SHARED_RUN_ID, address, name, loss, str(go), env={"TUI_MONITOR_RUN_ID": "shared"})
                 for name, loss in (("a", "1.0"), ("b", "2.0"))]
        rows = wait_for(lambda: len(ing.store.runs) == 2 and ing.store.runs, message="both jobs' rows")
        go.touch()
        assert [p.wait(30) for p in procs] == [0, 0]
        runs = wait_for(lambda: [r for r in rows.values() if r.status == "finished"] if all(
            r.status == "finished" for r in ing.store.runs.values()) else None, message="both ends")
        assert sorted(r.key for r in runs) == [("shared", 0), ("shared~2", 0)]
        for run in runs:                                   # each row is one job's, whole and unmixed
            steps, values = _steps_and_values(run)
            name = run.header.get("sent_name", run.name)    # the second is shown as "b~2" (or "a~2")
            assert run.name == name + ("~2" if run.run_id == "shared~2" else "")
            assert steps == list(range(100)) and values == [1.0 if name == "a" else 2.0] * 100
            assert run.restarts == 0 and run.duplicates == 0
    finally:
        ing.stop()


KILLED_JOB = """
import sys, time, tui_monitor as tm
run = tm.init("job", dir=False, to=sys.argv[1], flush_every=0.01, system_every=0)
for step in range(int(sys.argv[2]), int(sys.argv[3])):
    run.log({"loss": 1.0 / (1 + step)}, step=step)
run.flush()
if sys.argv[4] == "hang":
    time.sleep(600)          # until it is killed, as a scheduler's SIGKILL finds a job
run.close(socket_timeout=20)
"""


def test_a_job_requeued_after_its_process_was_killed_continues_its_row(tmp_path):
    # The killed process sent no end, so its stream held the row for 10
    # minutes and the requeued job showed as job-7~2, though the first
    # process was plainly gone (this host, its pid ended).
    ing = Ingest()
    address = f"127.0.0.1:{free_port()}"
    lst = ing.listen(address)
    ing.start()
    env = {"TUI_MONITOR_RUN_ID": "job-7"}
    try:
        first = child(KILLED_JOB, address, "0", "50", "hang", env=env)
        run = wait_for(lambda: ing.store.get("job-7"), message="the first process's row")
        wait_for(lambda: run.last_step == 49, message="its records")
        first.kill()
        first.wait(10)
        wait_for(lambda: all(s.conn is None for s in lst.streams.by_sid.values()), message="its connection closed")
        again = child(KILLED_JOB, address, "50", "100", "end", env=env)
        assert again.wait(60) == 0, again.stderr.read()
        wait_for(lambda: any(r.status == "finished" for r in ing.store.runs.values()), message="the requeued job's end")
        assert [r.key for r in ing.store.runs.values()] == [("job-7", 0)]
        assert run.restarts == 1 and run.name == "job"
        assert _steps_and_values(run)[0] == list(range(100))
        assert not [p for p in ing.problems if "kept apart" in p.reason]
    finally:
        ing.stop()


# -- the token never crosses the wire (issue 13, item 7) ---------------------------

class Relay:
    """A TCP relay between a hook and a listener that keeps every byte it
    carries, both ways: what anyone on the path would see."""

    def __init__(self, upstream):
        import threading

        self.upstream, self.seen = upstream, bytearray()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        import selectors

        while True:
            try:
                down, _ = self.server.accept()
            except OSError:
                return
            up = socket.create_connection(self.upstream)
            with selectors.DefaultSelector() as sel:
                sel.register(down, selectors.EVENT_READ, up)
                sel.register(up, selectors.EVENT_READ, down)
                open_ends = 2
                while open_ends == 2:
                    for key, _ in sel.select(5):
                        try:
                            data = key.fileobj.recv(65536)
                            if data:
                                key.data.sendall(data)
                        except OSError:
                            data = b""
                        if not data:
                            open_ends -= 1
                            break
                        self.seen += data
            down.close()
            up.close()

    def close(self):
        self.server.close()


def test_the_token_never_crosses_the_wire(tmp_path):
    ing = Ingest()
    lst = ing.listen("127.0.0.1:0", token="hunter2-secret")
    ing.start()
    relay = Relay(lst.bound)
    try:
        token_file = tmp_path / "token"
        token_file.write_text("hunter2-secret\n")          # as `echo` writes it: the newline is no part of it
        token_file.chmod(0o600)
        code = """
        import sys, tui_monitor as tm
        run = tm.init("wired", dir=False, to=sys.argv[1], flush_every=0.01, system_every=0)
        for step in range(100):
            run.log({"loss": float(step)}, step=step)
        run.close(socket_timeout=20)
        print(run.dropped)
        """
        proc = child(code, f"127.0.0.1:{relay.port}", env={"TUI_MONITOR_TOKEN_FILE": str(token_file)})
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0 and out.split() == ["0"], err
        run = wait_for(lambda: [r for r in ing.store.runs.values() if r.status == "finished"], message="the end")[0]
        assert run.series[("train", "loss")].steps.tolist() == list(range(100))
        assert b'"type":"challenge"' in relay.seen.replace(b" ", b"") and b"hunter2" not in relay.seen
    finally:
        relay.close()
        ing.stop()


class Impostor(FakeListener):
    """Holds the address the hook was told, asks for a token it does not
    know, and keeps every byte the hook sends."""

    def session(self, conn, f):
        self.hello(f)
        conn.sendall(json.dumps({"type": "challenge", "handshake": 2, "nonce": "ab" * 16, "token": True,
                                 "proof": "00" * 32}).encode() + b"\n")
        self.records.append(f.read())               # all the hook sends until it hangs up


def test_a_listener_that_cannot_prove_the_token_gets_nothing(capfd):
    impostor = Impostor()
    run = tm.init("careful", dir=False, to=f"127.0.0.1:{impostor.port}", token="hunter2-secret",
                  flush_every=0.01, system_every=0)
    try:
        run.log({"loss": 1.0}, step=0)
        wait_for(lambda: len(impostor.records) >= 1, message="the hook hanging up on the impostor")
        assert impostor.records[0] == b""                   # no auth, no record
        assert "hunter2" not in json.dumps(impostor.hellos)
        assert "did not prove that it knows the token" in capfd.readouterr().err
        assert not run._socket.connected
    finally:
        run.close(socket_timeout=0.1)
        impostor.close()


def test_a_hook_without_the_token_is_told_what_to_set(capfd, listening_with):
    ing, lst, port = listening_with(token="hunter2-secret")
    run = tm.init("tokenless", dir=False, to=f"127.0.0.1:{port}", flush_every=0.01, system_every=0)
    run.log({"loss": 1.0}, step=0)
    wait_for(lambda: lst.refused >= 1, message="the hang-up after the challenge counted")
    run.close(socket_timeout=0.1)
    assert "it asks for a token: set TUI_MONITOR_TOKEN" in capfd.readouterr().err
    assert ing.store.runs == {}
    assert any("hung up after the challenge" in p.reason for p in ing.problems)


def test_an_old_hook_is_refused_with_a_reason_that_says_what_to_update(listening_with):
    ing, lst, port = listening_with(token="hunter2-secret")
    old_hello = b'{"type":"hello","v":1,"run_id":"old","rank":0,"pid":1,"start":1.0,"token":"hunter2-secret"}\n'
    reply = _refused_reply(lst.bound[1], old_hello)
    assert reply["type"] == "refused" and "older handshake" in reply["reason"]
    assert "update tui-monitor" in reply["reason"] and ing.store.runs == {}
    assert all("hunter2" not in str(p) for p in ing.problems)


def test_watch_takes_the_token_from_a_file_or_the_environment_never_the_command_line(tmp_path, capsys, monkeypatch):
    from tui_monitor.cli import main

    assert main(["watch", "--listen", "127.0.0.1:0", "--token", "hunter2"]) == 2
    err = capsys.readouterr().err
    assert "--token is no longer accepted" in err and "--token-file" in err and "TUI_MONITOR_TOKEN" in err
    loose = tmp_path / "loose"
    loose.write_text("hunter2\n")
    loose.chmod(0o644)
    assert main(["watch", "--listen", "127.0.0.1:0", "--token-file", str(loose)]) == 2
    assert f"chmod 600 {loose}" in capsys.readouterr().err
    from tui_monitor.cli import build_parser
    from tui_monitor.commands.watch import listen_token

    loose.chmod(0o600)
    args = build_parser().parse_args(["watch", "--listen", "0.0.0.0:7007", "--token-file", str(loose)])
    assert listen_token(args) == b"hunter2"
    monkeypatch.setenv("TUI_MONITOR_TOKEN", "from-env")
    assert listen_token(build_parser().parse_args(["watch", "--listen", "0.0.0.0:7007"])) == b"from-env"


# -- no one kept out who belongs, no state kept for who left (issue 13, item 8) ----

class ConnectionFlood:
    """Holds ``n`` connections to ``port`` that never send a byte; each one
    the listener drops is opened again at once. Stops when told, or after
    ``limit`` s."""

    def __init__(self, port, n=520, limit=60.0):
        import threading

        self.port, self.n, self.limit = port, n, limit
        self.stop = threading.Event()
        self.opened = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        import selectors
        import time

        deadline = time.monotonic() + self.limit
        with selectors.DefaultSelector() as sel:
            while not self.stop.is_set() and time.monotonic() < deadline:
                while len(sel.get_map()) < self.n:
                    try:
                        c = socket.create_connection(("127.0.0.1", self.port), timeout=1)
                    except OSError:
                        break
                    self.opened += 1
                    sel.register(c, selectors.EVENT_READ)
                for key, _ in sel.select(0.05):       # dropped by the listener: open another
                    sel.unregister(key.fileobj)
                    key.fileobj.close()
            for key in list(sel.get_map().values()):
                key.fileobj.close()

    def close(self):
        self.stop.set()
        self.thread.join(10)


def test_idle_and_cycling_connections_never_keep_a_writer_with_the_token_out(listening_with):
    import time

    ing, lst, port = listening_with(token="hunter2-secret")
    flood = ConnectionFlood(port)
    began = time.monotonic()
    try:
        wait_for(lambda: lst.refused >= 1000, timeout=60, message="the flood cycling through the listener")
        run = tm.init("wanted", dir=False, to=f"127.0.0.1:{port}", token="hunter2-secret",
                      flush_every=0.01, system_every=0)
        for step in range(50):
            run.log({"loss": float(step)}, step=step)
        got = wait_for(lambda: ing.store.runs and next(iter(ing.store.runs.values())), message="the writer in")
        wait_for(lambda: got.last_step == 49, message="all the writer's records, with the flood going on")
        run.close(socket_timeout=20)
        assert run.dropped == 0 and got.status == "finished"
        assert got.series[("train", "loss")].steps.tolist() == list(range(50))
        flood.close()
        elapsed = time.monotonic() - began
        # told once a second per reason, with counts: not one problem per connection
        problems, total = ing.recent_problems()
        reasons = {p.reason.split(" (")[0] for p in problems}
        assert all(p.reason.startswith("connection refused: ") for p in problems)
        assert total <= len(reasons) * (elapsed + 2) and lst.refused >= 1000
    finally:
        flood.close()


def _ended_stream(port, run_id):
    c = _connect(port, run_id)
    c.send(_header(run_id) + _metrics(1, 0, 1.0)
           + _line({"type": "end", "seq": 2, "time": 1002.0, "status": "finished"}))
    while c.read() != {"type": "ack", "seq": 2}:
        pass
    c.close()


def test_welcomed_connections_that_send_nothing_cannot_keep_a_writer_out(listening):
    # On loopback without a token anyone may stream: 512 connections that
    # were welcomed and then sent nothing (or a byte now and then, never a
    # whole line) refused every writer after them, for good.
    ing, lst, port = listening
    lst.max_connections, lst.stream_quiet = 4, 0.0
    dribbler = _connect(port, run_id="dribble")
    dribbler.send(b'{"type": "run"')                       # never a whole line
    idle = [_connect(port, run_id=f"idle{i}") for i in range(2)]
    active = _streaming(ing, port)                         # has sent records: kept over the quiet ones
    run = tm.init("writer", dir=False, to=f"127.0.0.1:{port}", flush_every=0.01, system_every=0)
    for step in range(20):
        run.log({"loss": 1.0 / (1 + step)}, step=step)
    run.close(socket_timeout=20)
    got = wait_for(lambda: [r for r in ing.store.runs.values() if r.status == "finished"], message="the writer's end")
    assert got[0].series[("train", "loss")].steps.tolist() == list(range(20))
    assert dribbler.read() is None                         # the one quiet longest was closed for it
    active.send(_metrics(2, 1, 0.5))
    wait_for(lambda: losses(ing.store) == [(0, 1.0), (1, 0.5)], message="the active writer still streaming")
    pushed = [p for p in ing.problems if "closed for a newcomer" in p.reason]
    assert len(pushed) == 1, ing.problems
    for c in (dribbler, *idle, active):
        c.close()


def test_streams_that_ended_or_went_quiet_are_forgotten(listening):
    ing, lst, port = listening
    lst.streams.ended_keep = 0.0                   # seconds after their end and last connection
    for i in range(200):
        _ended_stream(port, f"ended-{i}")
    wait_for(lambda: len(lst.streams) == 0, message="every ended stream forgotten")
    assert len(ing.store.runs) == 200 and all(r.status == "finished" for r in ing.store.runs.values())
    lst.streams.max_idle = 10                      # quiet (no end) and disconnected: the oldest go first
    for i in range(50):
        c = _connect(port, f"quiet-{i}")
        c.send(_header(f"quiet-{i}"))
        wait_for(lambda i=i: ing.store.get(f"quiet-{i}"), message="the quiet stream's header")
        c.close()
    wait_for(lambda: len(lst.streams.idle) == len(lst.streams) == 10, message="the cap kept")
    assert {s.row for s in lst.streams.by_sid.values()} == {f"quiet-{i}" for i in range(40, 50)}


def test_a_writer_whose_stream_was_forgotten_resends_and_the_store_takes_each_record_once(listening):
    ing, lst, port = listening
    lst.streams.idle_keep = 0.0
    c = _connect(port)
    c.send(_header() + _metrics(1, 0, 1.0) + _metrics(2, 1, 0.5))
    wait_for(lambda: losses(ing.store) == [(0, 1.0), (1, 0.5)], message="the first records")
    c.close()
    wait_for(lambda: len(lst.streams) == 0, message="the quiet stream forgotten")
    back = _connect(port, session=c.session)
    assert back.have == -1 and back.session[0] != c.session[0]   # a new stream: it sends all it has
    back.send(_header() + _metrics(1, 0, 1.0) + _metrics(2, 1, 0.5) + _metrics(3, 2, 0.25))
    wait_for(lambda: losses(ing.store) == [(0, 1.0), (1, 0.5), (2, 0.25)], message="the rest, once")
    run = ing.store.get("r1")
    assert run.duplicates == 3 and run.restarts == 0 and len(ing.store.runs) == 1
    back.close()


# -- a Unix socket path (issue 13, item 9) ------------------------------------------

def test_listen_on_a_unix_path_replaces_only_a_stale_socket(tmp_path):
    precious = tmp_path / "notes.txt"
    precious.write_text("not a socket\n")
    target = tmp_path / "elsewhere.txt"
    target.write_text("linked\n")
    link = tmp_path / "link.sock"
    link.symlink_to(target)
    (tmp_path / "dir.sock").mkdir()
    for path, kind in ((precious, "a file"), (link, "a symbolic link"), (tmp_path / "dir.sock", "a directory")):
        with pytest.raises(OSError, match=f"is {kind}, not a socket: not replacing it"):
            Ingest().listen(f"unix:{path}")
    assert precious.read_text() == "not a socket\n" and target.read_text() == "linked\n" and link.is_symlink()
    stale = tmp_path / "stale.sock"
    with socket.socket(socket.AF_UNIX) as s:          # a listener that died without cleaning up
        s.bind(str(stale))
    ing = Ingest()
    ing.listen(f"unix:{stale}")                       # nobody answers there: replaced
    ing.start()
    try:
        with pytest.raises(OSError, match="in use by a running listener"):
            Ingest().listen(f"unix:{stale}")
        run = tm.init("unix", dir=False, to=f"unix:{stale}", flush_every=0.01, system_every=0)
        run.log({"loss": 0.5}, step=0)
        run.close(socket_timeout=20)
        got = wait_for(lambda: [r for r in ing.store.runs.values() if r.status == "finished"], message="the end")[0]
        assert got.series[("train", "loss")].steps.tolist() == [0]
    finally:
        ing.stop()
    assert not stale.exists()                         # its own socket, removed on stop


def test_a_listener_stopping_leaves_a_path_taken_over_since_alone(tmp_path):
    path = tmp_path / "tm.sock"
    ing = Ingest()
    ing.listen(f"unix:{path}")
    path.unlink()                                     # someone removed it, and put a file there
    path.write_text("mine now\n")
    ing.stop()
    assert path.read_text() == "mine now\n"


def test_the_handshake_proofs_are_the_hmac_the_spec_describes():
    """docs/stream-format.md is enough to write a writer in another language."""
    import hashlib
    import hmac

    from tui_monitor.hook import handshake_proof

    spec = hmac.new(b"hunter2", b"tui-monitor\nwriter\n" + b"ab" * 16 + b"\n" + b"cd" * 16, hashlib.sha256).hexdigest()
    assert handshake_proof(b"hunter2", "writer", "ab" * 16, "cd" * 16) == spec
