"""The socket path under faults: slow, absent and flooding peers."""
from __future__ import annotations

import os
import socket
import threading

import pytest

import tui_monitor as tm
from conftest import records, wait_for
from tui_monitor.sources import Ingest


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StuckListener:
    """Says welcome, then never reads again: a consumer that stopped."""

    def __init__(self):
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.conns = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            conn.makefile("rb").readline()
            conn.sendall(b'{"type":"welcome","have":-1}\n')
            self.conns.append(conn)     # and never read from it again

    def close(self):
        self.server.close()
        for c in self.conns:
            c.close()


@pytest.mark.parametrize("with_file", [True, False])
def test_a_stuck_listener_never_slows_the_loop_and_memory_stays_capped(tmp_path, with_file, capfd):
    stuck = StuckListener()
    try:
        run = tm.init("stuck", dir=tmp_path if with_file else False, to=f"127.0.0.1:{stuck.port}",
                      flush_every=0.01, socket_buffer=1000)
        for step in range(20_000):          # if log() blocked on the socket, this would never end
            run.log({"loss": float(step), "pad": "x" * 100}, step=step)
        wait_for(lambda: run._socket.overflow > 0, message="the socket buffer to fill")
        assert len(run._socket.buf) <= 1000
        run.close(socket_timeout=0.5)
        if with_file:
            recs = records(run.path)
            assert [r["step"] for r in recs if r["type"] == "metrics"] == list(range(20_000))
            assert recs[-1]["dropped"] == 0            # pushed out of the socket buffer, but safe in the file
        else:
            assert run.dropped == run.drop_reasons["socket buffer full"] > 0
            assert "socket buffer full" in capfd.readouterr().err
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


def test_the_token_never_reaches_files_or_problems(tmp_path):
    ing = Ingest()
    lst = ing.listen("127.0.0.1:0", token="hunter2-secret")
    ing.start()
    try:
        run = tm.init("secret", dir=tmp_path, to=f"127.0.0.1:{lst.bound[1]}", token="hunter2-secret", flush_every=0.01)
        run.log({"loss": 1.0}, step=0)
        run.close(socket_timeout=20)
        bad = tm.init("intruder", dir=False, to=f"127.0.0.1:{lst.bound[1]}", token="wrong-token", flush_every=0.01)
        bad.log({"loss": 1.0}, step=0)
        wait_for(lambda: lst.refused >= 1, message="the intruder refused")
        bad.close(socket_timeout=0.2)
        assert "hunter2" not in open(run.path).read()
        assert all("hunter2" not in str(p) and "wrong-token" not in str(p) for p in ing.problems)
        assert [r.name for r in ing.store.runs.values()] == ["secret"]
    finally:
        ing.stop()
