"""Shared test helpers: child processes, waiting on conditions, reading streams."""
from __future__ import annotations

import json
import os
import socket
import struct
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    # A suite started in the background of a script inherits SIGINT ignored
    # (POSIX shells do that to background jobs), and so would every process
    # the tests start. The tests that press Ctrl+C need what a terminal
    # gives: Python's KeyboardInterrupt here, the default in children.
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def wait_for(condition, timeout=20.0, interval=0.01, message="condition"):
    """Poll ``condition`` until it is truthy; fail the test after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


_CHILDREN: list = []


def child(code: str, *args: str, env: dict | None = None, **kw) -> subprocess.Popen:
    """Start a fresh Python running ``code`` (dedented) with the repo
    importable. It does not outlive the test: one still running at the end
    (a test that failed before it stopped it) is killed."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = str(ROOT) + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.update(env or {})
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    _CHILDREN.append(proc)
    return proc


@pytest.fixture(autouse=True)
def _no_child_outlives_its_test():
    yield
    while _CHILDREN:
        proc = _CHILDREN.pop()
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def raw_lines(path) -> list[bytes]:
    data = Path(path).read_bytes()
    return data.split(b"\n")


def records(path) -> list[dict]:
    """Every whole line of a stream as a dict (asserts each whole line parses)."""
    lines = raw_lines(path)
    assert lines[-1] == b"", f"stream ends in a partial line: {lines[-1][:80]!r}"
    return [json.loads(line) for line in lines[:-1]]


def records_of_a_killed_writer(path) -> list[dict]:
    """The whole lines of a stream whose writer died abruptly (SIGKILL,
    ``os._exit``): each parses, and the last may be a record's beginning (a
    fatal signal can cut a write of many pages short), never anything else."""
    lines = raw_lines(path)
    assert lines[-1] == b"" or lines[-1].startswith(b'{"type":"'), f"not a record's beginning: {lines[-1][:80]!r}"
    return [json.loads(line) for line in lines[:-1]]


def stream_files(directory) -> list[Path]:
    return sorted(Path(directory).rglob("*.jsonl"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def only_run(ing):
    """The one run an :class:`~tui_monitor.sources.Ingest` holds (fails otherwise)."""
    assert len(ing.store.runs) == 1, [r.name for r in ing.store.runs.values()]
    return next(iter(ing.store.runs.values()))


def bits(x: float) -> bytes:
    """A float's exact bits, for bit-exact comparisons (NaN payloads, -0.0)."""
    return struct.pack("<d", x)


class FakeListener:
    """A listener speaking the hook's side of the handshake (hello,
    challenge, auth, welcome), for the hook's socket tests: each connection,
    one after the other, is served by :meth:`session` (by default: ack every
    record). With ``token``, it proves that it knows that token; it never
    checks the hook's proof (``auths`` keeps what the hook answered)."""

    WELCOME = b'{"type":"welcome","handshake":2,"have":-1,"session":"fake"}\n'

    def __init__(self, token=None):
        self.token = token
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.hellos, self.auths, self.records, self.conns = [], [], [], []
        self._f = None
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.conns.append(conn)
            try:
                self.session(conn, conn.makefile("rb"))
            except OSError:
                pass
            finally:
                self._f = None   # the socket is closed only once its file is gone too

    def hello(self, f):
        self._f = f
        self.hellos.append(json.loads(f.readline()))

    def challenge(self, conn):
        """Send the challenge (with the proof of the token, if any) and read the auth."""
        from tui_monitor.hook import HANDSHAKE, handshake_proof

        nonce = os.urandom(16).hex()
        msg = {"type": "challenge", "handshake": HANDSHAKE, "nonce": nonce, "token": self.token is not None}
        if self.token is not None:
            msg["proof"] = handshake_proof(self.token.encode(), "listener", self.hellos[-1]["nonce"], nonce)
        conn.sendall(json.dumps(msg).encode() + b"\n")
        line = self._f.readline()          # empty: the hook hung up (it would not answer)
        self.auths.append(json.loads(line) if line else None)

    def welcome(self, conn):
        self.challenge(conn)
        conn.sendall(self.WELCOME)

    def session(self, conn, f):
        self.hello(f)
        self.welcome(conn)
        self.ack_all(conn, f)

    def ack_all(self, conn, f):
        for line in f:
            rec = json.loads(line)
            self.records.append(rec)
            conn.sendall(json.dumps({"type": "ack", "seq": rec["seq"]}).encode() + b"\n")
        conn.close()

    def close(self):
        self.server.close()
        for c in self.conns:
            c.close()
