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
from ..stream.reader import new_problems
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


def _writer_of(hello: dict) -> Optional[Tuple[float, int]]:
    """``(start, pid)`` of the process a hello comes from, when it says."""
    start, pid = hello.get("start"), hello.get("pid")
    if type(pid) is int and type(start) in (int, float):
        return float(start), pid
    return None


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
        # per stream: the connection whose bytes the reader holds a part of a
        # line of, and how many of the reader's problems were handed on
        self._feeding: Dict[Tuple[str, int], _Conn] = {}
        self._reported: Dict[Tuple[str, int], int] = {}
        self._writers: Dict[Tuple[str, int], Tuple[float, int]] = {}  # per stream: (start, pid) of its process
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
        # Nothing one connection does may end this loop: an error while
        # serving a connection closes that connection (reported), an error
        # outside one is reported and the loop goes on.
        while not self.stopped.is_set():
            try:
                ready = self._sel.select(timeout=ACK_EVERY)
            except Exception as e:  # noqa: BLE001
                self._internal(None, e)
                self.stopped.wait(ACK_EVERY)
                continue
            for key, _ in ready:
                if key.data is None:
                    try:
                        self._accept()
                    except Exception as e:  # noqa: BLE001
                        self._internal(None, e)
                else:
                    self._guarded(key.data, self._readable)
            now = time.monotonic()
            for key in list(self._sel.get_map().values()):
                conn = key.data
                if conn is None:
                    continue
                if conn.reader is None and now - conn.opened > HELLO_TIMEOUT:
                    self._guarded(conn, lambda c: self._refuse(c, "no hello in time"))
                elif conn.reader is not None:
                    self._guarded(conn, lambda c: self._ack(c, now, force=False))

    def _guarded(self, conn: _Conn, step) -> None:
        try:
            step(conn)
        except Exception as e:  # noqa: BLE001 - a bug or a bad peer: this connection ends, not the listener
            self._internal(conn, e)
            try:
                self._close(conn)
            except Exception:  # noqa: BLE001
                pass

    def _internal(self, conn: Optional[_Conn], e: BaseException) -> None:
        what = "connection closed after an internal error" if conn is not None else "internal error"
        try:
            self._problem(conn.peer if conn is not None else None, f"{what}: {type(e).__name__}: {e}", "error")
        except Exception:  # noqa: BLE001 - the problem sink itself failed: nothing left to tell
            pass

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
        key = conn.stream[1:]
        feeding = self._feeding.get(key)
        if feeding is not conn:
            # Another connection of this stream fed the reader last: a line
            # it left unfinished is not the start of this one's first line.
            if feeding is not None:
                conn.reader.discard_pending("another connection of this stream took over mid-line")
            self._feeding[key] = conn
        records = conn.reader.feed(data)
        self._forward_problems(conn)
        if records:
            self.on_records(conn.stream, records)
        self._ack(conn, time.monotonic(), force=False)

    def _forward_problems(self, conn: _Conn) -> None:
        key = conn.stream[1:]
        problems, self._reported[key] = new_problems(conn.reader, self._reported.get(key, 0))
        for p in problems:
            self.on_problem(p)

    @staticmethod
    def _check_hello(line: bytes) -> Tuple[Optional[dict], str]:
        """The hello as a dict, or None and why it is not one."""
        try:
            hello = json.loads(line)
        except (ValueError, RecursionError):
            return None, "the first line was not a hello (not JSON)"
        if not isinstance(hello, dict) or hello.get("type") != "hello":
            return None, "the first line was not a hello"
        run_id = hello.get("run_id")
        if not isinstance(run_id, str) or not run_id:
            return None, "the hello has no valid run_id (a non-empty string)"
        rank = hello.get("rank", 0)
        if type(rank) is not int:  # bool is an int subclass: true is no rank
            return None, "the hello has no valid rank (an integer)"
        return hello, ""

    def _hello(self, conn: _Conn, line: bytes) -> bool:
        hello, why = self._check_hello(line)
        if hello is None:
            self._refuse(conn, why, tell=True)
            return False
        run_id, rank = hello["run_id"], hello.get("rank", 0)
        if self.token is not None:
            given = hello.get("token")
            if not isinstance(given, str) or not hmac.compare_digest(given.encode("utf-8", "surrogatepass"), self.token.encode()):
                self._refuse(conn, "wrong or missing token", tell=True)
                return False
        key = (run_id, rank)
        reader = self.readers.get(key)
        writer = _writer_of(hello)
        if reader is not None and writer is not None and self._writers.get(key) not in (None, writer):
            # Another process with this run id (a requeued job, an elastic
            # restart): its stream starts again at seq 0, so it gets a fresh
            # reader (have: -1) and sends everything; the store sees the new
            # header and counts a restart of the run.
            reader = None
            self._feeding.pop(key, None)
        if reader is None:
            reader = self.readers[key] = StreamReader(f"{self._peer(conn)} run {run_id} rank {rank}", raw_metrics=True)
            self._reported[key] = 0
        if writer is not None:
            self._writers[key] = writer
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
        if conn.reader is not None:
            key = conn.stream[1:]
            if self._feeding.get(key) is conn:
                # A line this connection left unfinished is never finished:
                # the writer sends it again, whole, when it reconnects.
                del self._feeding[key]
                conn.reader.discard_pending("the connection closed mid-line")
                self._forward_problems(conn)

    def _peer(self, conn: _Conn) -> str:
        return f"{self.address}<-{conn.peer[0]}:{conn.peer[1]}" if isinstance(conn.peer, tuple) else self.address

    def _problem(self, peer, reason: str, severity: str = "warning") -> None:
        where = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else self.address
        self.on_problem(Problem(f"{self.address} (from {where})", 0, reason, severity))
