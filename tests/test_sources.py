"""Sources with real files, processes and sockets: follow, rotate, listen."""
from __future__ import annotations

import json
import os
import signal
import socket
import threading

import pytest

from conftest import child, wait_for
from source_helpers import RawWriter, append, header, losses, metrics, read
from tui_monitor.sources import Ingest, needs_polling


@pytest.fixture
def ingest():
    ing = Ingest()
    yield ing
    ing.stop()


def follow(ingest, *paths, poll=None, interval=0.02):
    f = ingest.add_path(*paths, poll=poll, interval=interval)
    ingest.start() if ingest._house is None else None
    return f


def ticks_pass(follower, n=3):
    """Wait until the follower has looked at least ``n`` more times."""
    target = follower.ticks + n
    wait_for(lambda: follower.ticks >= target, message=f"{n} follower ticks")


def test_partial_line_waits_for_its_newline(tmp_path, ingest):
    path = tmp_path / "a.jsonl"
    line = metrics(1, 0, 0.5)
    append(path, header() + line[:20])
    f = follow(ingest, str(path))
    wait_for(lambda: ingest.store.get("r1"), message="the header")
    ticks_pass(f)
    assert losses(ingest.store) == [] and list(ingest.problems) == []
    append(path, line[20:])
    wait_for(lambda: losses(ingest.store) == [(0, 0.5)], message="the completed line")
    assert list(ingest.problems) == []


def test_a_writer_process_is_followed_history_first_then_live(tmp_path, ingest):
    proc = child("""
    import sys, time, tui_monitor as tm
    run = tm.init("live", dir=sys.argv[1], flush_every=0.01)
    for step in range(1500):
        run.log({"loss": 1.0 / (step + 1)}, step=step)
        if step == 700:
            run.flush()              # some history exists before the monitor starts
            print("half", flush=True)
        if step % 50 == 0:
            time.sleep(0.01)
    run.close()
    """, str(tmp_path))
    assert proc.stdout.readline().strip() == "half"
    follow(ingest, str(tmp_path))
    assert proc.wait(30) == 0
    run = wait_for(lambda: [r for r in ingest.store.runs.values() if r.status == "finished"], message="the end")[0]
    s = run.series[("train", "loss")]
    assert s.steps.tolist() == list(range(1500))
    assert s.values.tolist() == [1.0 / (i + 1) for i in range(1500)]
    assert run.duplicates == 0 and run.missing == 0


def test_truncation_reads_again_from_the_start(tmp_path, ingest):
    path = tmp_path / "t.jsonl"
    append(path, header("old") + "".join(metrics(i + 1, i, 1.0) for i in range(10)))
    follow(ingest, str(path))
    wait_for(lambda: len(losses(ingest.store, "old")) == 10, message="the first run")
    append(path, header("new") + metrics(1, 0, 2.0), mode="w")  # truncated and rewritten
    wait_for(lambda: losses(ingest.store, "new") == [(0, 2.0)], message="the rewritten file")
    reasons = [p.reason for p in ingest.problems]
    assert any("truncated" in r for r in reasons), reasons


def test_rotation_finishes_the_old_file_then_follows_the_new(tmp_path, ingest):
    path = tmp_path / "rot.jsonl"
    append(path, header("first") + metrics(1, 0, 1.0))
    f = follow(ingest, str(path))
    wait_for(lambda: losses(ingest.store, "first") == [(0, 1.0)], message="the first file")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    os.rename(path, tmp_path / "rot.jsonl.1")
    os.write(fd, metrics(2, 1, 0.9).encode())       # the old writer's last words
    os.close(fd)
    append(path, header("second") + metrics(1, 0, 5.0))
    wait_for(lambda: losses(ingest.store, "second") == [(0, 5.0)], message="the new file")
    assert losses(ingest.store, "first") == [(0, 1.0), (1, 0.9)]
    assert any("replaced" in p.reason for p in ingest.problems)
    assert len(f.tails) == 1                           # rot.jsonl.1 is not a stream name


def test_a_deleted_file_is_followed_to_its_end(tmp_path, ingest):
    path = tmp_path / "gone.jsonl"
    append(path, header() + metrics(1, 0, 1.0))
    f = follow(ingest, str(tmp_path))
    wait_for(lambda: losses(ingest.store) == [(0, 1.0)], message="the file")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    os.unlink(path)
    ticks_pass(f)
    os.write(fd, metrics(2, 1, 0.5).encode())
    os.close(fd)
    wait_for(lambda: losses(ingest.store) == [(0, 1.0), (1, 0.5)], message="records written after deletion")
    assert any("deleted" in p.reason for p in ingest.problems)


def test_two_hundred_files_appearing_during_the_scan(tmp_path, ingest):
    follow(ingest, str(tmp_path))

    def make():
        for i in range(200):
            d = tmp_path / f"group{i % 7}"
            d.mkdir(exist_ok=True)
            append(d / f"run{i}.jsonl", header(f"run{i}") + metrics(1, 0, float(i)))

    t = threading.Thread(target=make)
    t.start()
    t.join()
    wait_for(lambda: len(ingest.store.runs) == 200, timeout=30, message="200 runs")
    assert sorted(losses(ingest.store, f"run{i}")[0][1] for i in range(200)) == [float(i) for i in range(200)]


def test_a_thousand_files_in_one_folder(tmp_path):
    for i in range(1000):
        append(tmp_path / f"r{i:04d}.jsonl", header(f"r{i}") + metrics(1, 0, 1.0))
    ing = Ingest()
    ing.add_path(str(tmp_path))
    try:
        ing.read_all()
        assert len(ing.store.runs) == 1000 and ing.problem_count == 0
    finally:
        ing.stop()  # closes the thousand files it holds


def test_polling_follows_without_filesystem_events(tmp_path, ingest):
    path = tmp_path / "p.jsonl"
    append(path, header())
    f = follow(ingest, str(path), poll=True, interval=0.05)
    assert f.polling and f._observer is None        # no watchdog at all: ticks alone
    for i in range(5):
        append(path, metrics(i + 1, i, float(i)))
    wait_for(lambda: len(losses(ingest.store)) == 5, message="polled records")


def test_network_filesystems_are_polled():
    mounts = ("/dev/vda / ext4 rw 0 0\n"
              "server:/export /mnt/nfs nfs4 rw 0 0\n"
              "user@host:/home /mnt/ssh fuse.sshfs rw 0 0\n"
              "lustre@o2ib:/scratch /scratch lustre rw 0 0\n"
              "tmpfs /mnt/nfs/local tmpfs rw 0 0\n")
    assert needs_polling("/mnt/nfs/runs", mounts) is True
    assert needs_polling("/mnt/ssh/runs", mounts) is True
    assert needs_polling("/scratch/job/runs", mounts) is True
    assert needs_polling("/home/me/runs", mounts) is False
    assert needs_polling("/mnt/nfs/local/runs", mounts) is False    # the deepest mount wins


def test_bad_input_is_reported_with_file_line_and_reason(tmp_path):
    path = tmp_path / "bad.jsonl"
    lines = [
        header().encode(),
        b"{not json\n",
        b'{"type":"metrics","seq":1,"step":0,"time":1.0,"values":{"loss":0.5}}\n',
        b"\xff\xfe invalid utf-8\n",
        b'{"type":"from_the_future","seq":2}\n',
        b'{"type":"metrics","seq":3,"step":1,"time":1.0,"values":{"loss":0.4},"v":2}\n',
        b'{"type":"metrics","seq":4,"step":2,"time":1.0,"values":{"loss":"' + b"x" * (1 << 21) + b'"}}\n',
        b'{"type":"metrics","seq":5,"step":"three","time":1.0,"values":{"loss":0.3}}\n',
        b'{"type":"metrics","seq":6,"step":4,"time":1.0,"values":{"loss":0.2}}\n',
    ]
    append(path, b"".join(lines))
    ing = read(path)
    assert losses(ing.store) == [(0, 0.5), (1, 0.4), (4, 0.2)]
    by_line = {p.line_number: p for p in ing.problems}
    assert by_line[2].source == str(path) and by_line[2].severity == "error"
    assert "utf-8" in by_line[4].reason.lower()
    assert "longer than" in by_line[7].reason
    assert "step" in by_line[8].reason
    assert 6 in by_line and by_line[6].severity == "warning"       # a newer version: read, with a warning
    assert 5 not in by_line                                          # unknown types are skipped quietly
    assert ing.store.get("r1").status == "stopped"     # no end record, and its last record is from 1970


def test_a_process_gone_without_end_is_crashed_and_a_quiet_one_is_silent(tmp_path):
    proc = child("""
    import sys, time, tui_monitor as tm
    run = tm.init("victim", dir=sys.argv[1], flush_every=0.01)
    run.log({"loss": 1.0}, step=0)
    print("ready", flush=True)
    time.sleep(60)
    """, str(tmp_path))
    assert proc.stdout.readline().strip() == "ready"
    ing = Ingest()
    ing.add_path(str(tmp_path))
    wait_for(lambda: ing.read_all() or [r for r in ing.store.runs.values() if r.last_step == 0], message="the run")
    run = next(iter(ing.store.runs.values()))
    ing.check_liveness(now=run.last_seen + 1)
    assert run.status == "running"
    ing.check_liveness(now=run.last_seen + 600)
    assert run.status == "silent"
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    ing.check_liveness()
    assert run.status == "crashed" and run.end["error"]["type"] == "ProcessGone"


HOOK_OVER_SOCKET = """
import sys, time, tui_monitor as tm
run = tm.init("wired", dir=False, to=sys.argv[1], flush_every=0.01)
for step in range(int(sys.argv[2])):
    run.log({"loss": float(step)}, step=step)
    if step % 20 == 0:
        time.sleep(0.01)
run.close(socket_timeout=20)
"""


@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_listener_killed_and_restarted_still_ends_with_every_record_once(tmp_path, kind):
    if kind == "tcp":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            address = f"127.0.0.1:{s.getsockname()[1]}"
    else:
        address = f"unix:{tmp_path / 'tm.sock'}"
    first = Ingest()
    first.listen(address)
    first.start()
    n = 1000
    proc = child(HOOK_OVER_SOCKET, address, str(n))
    wait_for(lambda: first.store.runs and (next(iter(first.store.runs.values())).last_step or 0) >= 100,
             message="100 steps at the first listener")
    first.stop()                                  # the monitor goes away mid-run
    second = Ingest()                             # ... and a fresh one comes up, knowing nothing
    wait_for(lambda: _try_listen(second, address), message="the address to be free again")
    second.start()
    try:
        assert proc.wait(60) == 0, proc.stderr.read()
        run = wait_for(lambda: [r for r in second.store.runs.values() if r.status == "finished"],
                       message="the end record at the second listener")[0]
        steps = run.series[("train", "loss")].steps.tolist()
        assert steps == list(range(n))            # the whole history, each record once
        assert run.duplicates == 0 and run.missing == 0 and run.name == "wired"
    finally:
        second.stop()


def _try_listen(ingest, address):
    try:
        ingest.listen(address)
        return True
    except OSError:
        return False


def test_off_loopback_needs_a_token_and_bad_clients_are_refused(tmp_path):
    with pytest.raises(ValueError, match="token"):
        Ingest().listen("0.0.0.0:0")
    ing = Ingest()
    lst = ing.listen("0.0.0.0:0", token="let-me-in")
    ing.start()
    port = lst.bound[1]
    try:
        with socket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(b"GET / HTTP/1.1\r\n\r\n")
            assert json.loads(c.makefile("rb").readline())["type"] == "refused"
        for token in ("wrong", None):
            c = RawWriter(("127.0.0.1", port), "x", token=token)
            assert c.challenge["token"] is True and c.welcome["type"] == "refused"
            c.close()
        c = RawWriter(("127.0.0.1", port), "ok", token="let-me-in")
        assert c.welcome["type"] == "welcome" and c.have == -1
        c.send(header("ok") + metrics(1, 0, 0.25))
        wait_for(lambda: losses(ing.store, "ok") == [(0, 0.25)], message="the good client's record")
        c.close()
        assert lst.refused == 3
        assert all("let-me-in" not in str(p) for p in ing.problems)
    finally:
        ing.stop()


def test_bad_lines_over_a_socket_are_reported_like_bad_lines_in_a_file(tmp_path, ingest):
    lst = ingest.listen("127.0.0.1:0")
    ingest.start()
    c = RawWriter(lst.bound, "r1")
    assert c.welcome["type"] == "welcome" and c.have == -1
    c.send(header() + "{not json\n" + metrics(1, 0, 0.5)
           + '{"type":"metrics","seq":2,"step":"three","time":1.0,"values":{"loss":0.3}}\n'
           + metrics(3, 4, 0.2))
    wait_for(lambda: losses(ingest.store) == [(0, 0.5), (4, 0.2)], message="the good records")
    by_line = {p.line_number: p for p in ingest.problems}
    assert sorted(by_line) == [2, 4], list(ingest.problems)
    port = c.sock.getsockname()[1]
    assert by_line[2].severity == "error" and by_line[4].severity == "error"
    assert "step" in by_line[4].reason
    # the peer and the stream name the source, as a file's path does
    assert by_line[2].source == f"127.0.0.1:0<-127.0.0.1:{port} run r1 rank 0"
    c.close()
    assert ingest.problem_count == 2


def test_watch_once_prints_the_runs(tmp_path, capsys):
    from tui_monitor.cli import main

    append(tmp_path / "a.jsonl", header("a", name="[bold]sneaky\x1b[31m") + metrics(1, 0, 0.7) +
           metrics(2, 0, 0.9, split="val") + json.dumps({"type": "end", "seq": 3, "time": 1.0, "status": "finished"}) + "\n")
    assert main(["watch", "--once", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    row = out.splitlines()[2]
    assert row.split()[:2] == ["[bold]sneaky\\x1b[31m", "0"]
    assert "finished" in row and "0.7" in row and "0.9 @0" in row
    assert main(["watch", "--once", str(tmp_path / "nope")]) == 1
