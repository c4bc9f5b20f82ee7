"""Accepting hook connections over TCP or a Unix socket.

One thread serves every connection with a selector. The handshake is in
docs/stream-format.md ("Over a socket"): hello, welcome with the highest
``seq`` held for that stream, records, acks. A stream's reader outlives its
connections, so a writer that reconnects resends only what is missing and
nothing is taken twice.

Safety: loopback unless told otherwise; any other address needs a token,
compared in constant time and never logged; a connection that sends no valid
hello within a few seconds, sends garbage, or has the wrong token is closed
and counted; lines are bounded by the reader, connections by a cap.
"""
from __future__ import annotations

import hmac
import ipaddress
import json
import os
import selectors
import socket
import threading
import time
from typing import Dict, Optional, Tuple

from ..hook import parse_address
from ..stream import Problem, StreamReader
from .tail import OnProblem, OnRecords

HELLO_LIMIT = 64 * 1024
HELLO_TIMEOUT = 5.0
MAX_CONNECTIONS = 512
ACK_EVERY = 0.2


def is_loopback(family: int, addr) -> bool:
    if family == getattr(socket, "AF_UNIX", None):
        return True
    host = addr[0]
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Conn:
    __slots__ = ("sock", "peer", "opened", "buf", "reader", "stream", "acked", "last_ack")

    def __init__(self, sock, peer):
        self.sock, self.peer, self.opened = sock, peer, time.monotonic()
        self.buf = b""
        self.reader: Optional[StreamReader] = None
        self.stream = None
        self.acked = -1
        self.last_ack = 0.0


class Listener:
    """Serves hook connections at ``address`` (``HOST:PORT`` or
    ``unix:/path``) and hands their records on."""

    def __init__(self, address: str, on_records: OnRecords, on_problem: OnProblem,
                 token: Optional[str] = None, max_connections: int = MAX_CONNECTIONS):
        self.address = address
        self.family, self.addr = parse_address(address)
        if not is_loopback(self.family, self.addr) and not token:
            raise ValueError(f"listening on {address} would let anyone on the network send streams; "
                             "pass a shared token (--token, or TUI_MONITOR_TOKEN) or listen on 127.0.0.1")
        self.token = token
        self.on_records, self.on_problem = on_records, on_problem
        self.max_connections = max_connections
        self.readers: Dict[Tuple[str, int], StreamReader] = {}
        self.refused = 0
        self.connections = 0
        self.stopped = threading.Event()
        self._sel = selectors.DefaultSelector()
        self._server = self._bind()
        self._thread: Optional[threading.Thread] = None

    @property
    def bound(self):
        """The address actually bound (the port, when 0 was asked for)."""
        return self._server.getsockname()

    def _bind(self) -> socket.socket:
        srv = socket.socket(self.family, socket.SOCK_STREAM)
        if self.family == getattr(socket, "AF_UNIX", None):
            if os.path.exists(self.addr):
                probe = socket.socket(socket.AF_UNIX)
                try:
                    probe.connect(self.addr)
                    probe.close()
                    raise OSError(f"{self.addr} is in use by a running listener")
                except (ConnectionRefusedError, FileNotFoundError):
                    os.unlink(self.addr)  # a stale socket of a listener that died
            old = os.umask(0o077)        # only this user may connect
            try:
                srv.bind(self.addr)
            finally:
                os.umask(old)
        else:
            srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            srv.bind(self.addr)
        srv.listen(128)
        srv.setblocking(False)
        self._sel.register(srv, selectors.EVENT_READ, None)
        return srv

    def start(self) -> "Listener":
        self._thread = threading.Thread(target=self._loop, name="tui-monitor-listen", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self.stopped.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for key in list(self._sel.get_map().values()):
            try:
                key.fileobj.close()
            except OSError:
                pass
        if self.family == getattr(socket, "AF_UNIX", None):
            try:
                os.unlink(self.addr)
            except OSError:
                pass

    # -- the loop ------------------------------------------------------------------

    def _loop(self) -> None:
        while not self.stopped.is_set():
            for key, _ in self._sel.select(timeout=ACK_EVERY):
                if key.data is None:
                    self._accept()
                else:
                    self._readable(key.data)
            now = time.monotonic()
            for key in list(self._sel.get_map().values()):
                conn = key.data
                if conn is None:
                    continue
                if conn.reader is None and now - conn.opened > HELLO_TIMEOUT:
                    self._refuse(conn, "no hello in time")
                elif conn.reader is not None:
                    self._ack(conn, now, force=False)

    def _accept(self) -> None:
        try:
            sock, peer = self._server.accept()
        except OSError:
            return
        if len(self._sel.get_map()) - 1 >= self.max_connections:
            self.refused += 1
            self._problem(peer, f"refused: over {self.max_connections} connections")
            sock.close()
            return
        sock.setblocking(False)
        self.connections += 1
        self._sel.register(sock, selectors.EVENT_READ, _Conn(sock, peer))

    def _readable(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(1 << 18)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            return
        if conn.reader is None:
            conn.buf += data
            nl = conn.buf.find(b"\n")
            if nl < 0:
                if len(conn.buf) > HELLO_LIMIT:
                    self._refuse(conn, "hello line too long")
                return
            if not self._hello(conn, conn.buf[:nl]):
                return
            data, conn.buf = conn.buf[nl + 1:], b""
            if not data:
                return
        records = conn.reader.feed(data)
        if records:
            self.on_records(conn.stream, records)
        self._ack(conn, time.monotonic(), force=False)

    def _hello(self, conn: _Conn, line: bytes) -> bool:
        try:
            hello = json.loads(line)
            assert isinstance(hello, dict) and hello.get("type") == "hello"
            run_id, rank = hello["run_id"], hello.get("rank", 0)
            assert isinstance(run_id, str) and run_id and isinstance(rank, int)
        except Exception:  # noqa: BLE001 - anything but a hello is refused
            self._refuse(conn, "the first line was not a hello", tell=True)
            return False
        if self.token is not None:
            given = hello.get("token")
            if not isinstance(given, str) or not hmac.compare_digest(given.encode(), self.token.encode()):
                self._refuse(conn, "wrong or missing token", tell=True)
                return False
        key = (run_id, rank)
        reader = self.readers.get(key)
        if reader is None:
            reader = self.readers[key] = StreamReader(f"{self._peer(conn)} run {run_id} rank {rank}", raw_metrics=True)
        conn.reader, conn.stream = reader, ("socket", run_id, rank)
        have = reader.contiguous_seq
        conn.acked = have
        return self._send(conn, {"type": "welcome", "have": have})

    def _ack(self, conn: _Conn, now: float, force: bool) -> None:
        seq = conn.reader.contiguous_seq
        if seq > conn.acked and (force or now - conn.last_ack >= ACK_EVERY or seq - conn.acked >= 1000):
            if self._send(conn, {"type": "ack", "seq": seq}):
                conn.acked, conn.last_ack = seq, now

    def _send(self, conn: _Conn, msg: dict) -> bool:
        try:
            conn.sock.send((json.dumps(msg) + "\n").encode())
            return True
        except BlockingIOError:
            return True   # the writer is not reading; the next ack will do
        except OSError:
            self._close(conn)
            return False

    def _refuse(self, conn: _Conn, reason: str, tell: bool = False) -> None:
        self.refused += 1
        self._problem(conn.peer, f"connection refused: {reason}")
        if tell:
            try:
                conn.sock.send((json.dumps({"type": "refused", "reason": reason}) + "\n").encode())
            except OSError:
                pass
        self._close(conn)

    def _close(self, conn: _Conn) -> None:
        try:
            self._sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        try:
            conn.sock.close()
        except OSError:
            pass

    def _peer(self, conn: _Conn) -> str:
        return f"{self.address}<-{conn.peer[0]}:{conn.peer[1]}" if isinstance(conn.peer, tuple) else self.address

    def _problem(self, peer, reason: str) -> None:
        where = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else self.address
        self.on_problem(Problem(f"{self.address} (from {where})", 0, reason, "warning"))
