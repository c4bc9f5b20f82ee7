"""Accepting hook connections over TCP or a Unix socket.

One thread serves every connection with a selector. The handshake is in
docs/stream-format.md ("Over a socket"; its messages: :mod:`.listen_handshake`):
hello, challenge, auth, welcome with the highest ``seq`` held for that
stream, then records and acks.
Streams (:mod:`.listen_streams`) outlive their connections: a writer that
reconnects proves that it holds its stream's secret and resends only what
is missing; any other hello starts a stream of its own, on a row of its own.

Safety: loopback unless told otherwise; any other address needs a token,
which never crosses the wire (each side proves that it knows it with an
HMAC of the other's nonce) and is never logged. Connections still in their
handshake are capped and short-lived (those that sent nothing go first, and
every one has a deadline), so idle or cycling connections cannot keep a
writer out; refusals are told as problems at most once a second per reason.
Lines are bounded by the reader, streaming connections by a cap.
"""
from __future__ import annotations

import collections
import ipaddress
import json
import os
import secrets
import selectors
import socket
import stat
import threading
import time
from typing import Callable, Dict, List, Optional, Set, Tuple

from ..hook import HANDSHAKE, parse_address, shared_token
from ..store.rows import as_row, kept_apart
from ..stream import MetricsRecord, Problem
from ..stream.reader import new_problems
from .listen_handshake import Handshake
from .listen_streams import SocketStream, StreamTable, WriterAlive
from .tail import OnProblem, OnRecords

HELLO_LIMIT = 64 * 1024
#: From accept to welcome, at most (s).
HANDSHAKE_TIMEOUT = 5.0
#: Streaming (welcomed) connections at most; past it, a newcomer pushes out
#: the one that has sent no whole record for longest, if that is over
#: STREAM_QUIET s (a hook sends a heartbeat every 10 s while its loop is
#: quiet; one pushed out reconnects and resumes its stream, losing nothing).
MAX_CONNECTIONS = 512
STREAM_QUIET = 60.0
#: Connections in their handshake at most; past it, the oldest that sent
#: nothing yet (else the oldest) is dropped for the newcomer.
MAX_PENDING = 128
#: Connections accepted per turn of the loop: a flood of them turns the
#: pending ones over slowly enough for a writer's handshake to finish.
ACCEPT_BATCH = 16
ACK_EVERY = 0.2
#: A refusal reason, or a stream's duplicates, is told at most this often (s).
TELL_EVERY = 1.0

_HELLO, _AUTH, _OPEN = "hello", "auth", "open"


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
    __slots__ = ("sock", "peer", "opened", "buf", "state", "handshake", "stream", "acked", "last_ack", "heard")

    def __init__(self, sock, peer, key: Optional[bytes]):
        self.sock, self.peer, self.opened = sock, peer, time.monotonic()
        self.heard = self.opened  # when its last whole line came (welcomed: records)
        self.buf = b""
        self.state = _HELLO
        self.handshake = Handshake(key)
        self.stream: Optional[SocketStream] = None
        self.acked = -1
        self.last_ack = 0.0


def _host(peer):
    return peer[0] if isinstance(peer, tuple) and peer else peer


class _Refusals:
    """Refused connections, told as problems without a flood: a reason at
    once, then at most once every TELL_EVERY s with the count since (a
    cycling flood used to make one problem per connection)."""

    def __init__(self, tell: Callable[[object, str], None]):
        self.tell = tell
        self.told_at: Dict[str, float] = {}
        self.untold: Dict[str, List] = {}     # reason -> [count, last peer]

    def add(self, reason: str, peer, now: float) -> None:
        entry = self.untold.get(reason)
        if entry is None:
            self.untold[reason] = [1, peer]
        else:
            entry[0] += 1
            entry[1] = peer
        if now - self.told_at.get(reason, float("-inf")) >= TELL_EVERY:
            self._tell(reason, now)

    def flush(self, now: float) -> None:
        for reason in list(self.untold):
            if now - self.told_at.get(reason, float("-inf")) >= TELL_EVERY:
                self._tell(reason, now)

    def _tell(self, reason: str, now: float) -> None:
        count, peer = self.untold.pop(reason)
        self.told_at[reason] = now
        more = f" ({count} connections since the last report)" if count > 1 else ""
        self.tell(peer, f"connection refused: {reason}{more}")


class Listener:
    """Serves hook connections at ``address`` (``HOST:PORT`` or
    ``unix:/path``) and hands their records on. ``token`` (str or bytes) is
    the shared secret hooks must prove they know; it is never sent."""

    def __init__(self, address: str, on_records: OnRecords, on_problem: OnProblem,
                 token=None, max_connections: int = MAX_CONNECTIONS, max_pending: int = MAX_PENDING,
                 writer_alive: Optional[WriterAlive] = None):
        self.address = address
        self.family, self.addr = parse_address(address)
        self.key = shared_token(token)
        if not is_loopback(self.family, self.addr) and self.key is None:
            raise ValueError(f"listening on {address} would let anyone on the network send streams; "
                             "give a shared token (TUI_MONITOR_TOKEN, or --token-file) or listen on 127.0.0.1")
        self.on_records, self.on_problem = on_records, on_problem
        self.max_connections, self.max_pending = max_connections, max_pending
        self.stream_quiet = STREAM_QUIET
        self.streams = StreamTable(writer_alive=writer_alive)
        self._pending: Dict[_Conn, None] = {}   # in their handshake, oldest first
        self._open: Set[_Conn] = set()          # welcomed: streaming
        self._refusals = _Refusals(self._problem)
        self.refused = 0
        self.connections = 0
        self.stopped = threading.Event()
        self._last_sweep = 0.0
        self._sel = selectors.DefaultSelector()
        self._socket_id: Optional[Tuple[int, int]] = None   # (dev, inode) of the Unix socket made here
        self._server = self._bind()
        self._thread: Optional[threading.Thread] = None

    @property
    def bound(self):
        """The address actually bound (the port, when 0 was asked for)."""
        return self._server.getsockname()

    def _bind(self) -> socket.socket:
        srv = socket.socket(self.family, socket.SOCK_STREAM)
        try:
            if self.family == getattr(socket, "AF_UNIX", None):
                self._remove_stale_socket(self.addr)
                old = os.umask(0o077)        # only this user may connect
                try:
                    srv.bind(self.addr)
                finally:
                    os.umask(old)
                st = os.lstat(self.addr)
                self._socket_id = (st.st_dev, st.st_ino)
            else:
                srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                srv.bind(self.addr)
            srv.listen(512)
        except BaseException:
            srv.close()
            raise
        srv.setblocking(False)
        self._sel.register(srv, selectors.EVENT_READ, None)
        return srv

    @staticmethod
    def _remove_stale_socket(path: str) -> None:
        """Make room at ``path`` for the socket: only a socket that no
        listener answers on is removed; anything else there is an error."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            kind = ("a symbolic link" if stat.S_ISLNK(st.st_mode) else
                    "a directory" if stat.S_ISDIR(st.st_mode) else "a file")
            raise OSError(f"{path} is {kind}, not a socket: not replacing it (remove it yourself, or listen elsewhere)")
        probe = socket.socket(socket.AF_UNIX)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            os.unlink(path)                  # a stale socket of a listener that died
            return
        finally:
            probe.close()
        raise OSError(f"{path} is in use by a running listener")

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
        if self._socket_id is not None:    # our socket only: the path may have been taken over since
            try:
                st = os.lstat(self.addr)
                if (st.st_dev, st.st_ino) == self._socket_id:
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
            # Connections first, then new ones: a writer's hello, read, puts
            # its connection past those that sent nothing, which the
            # newcomers push out first.
            accept = False
            for key, _ in ready:
                if key.data is None:
                    accept = True
                else:
                    self._guarded(key.data, self._readable)
            if accept:
                try:
                    self._accept()
                except Exception as e:  # noqa: BLE001
                    self._internal(None, e)
            try:
                self._housekeeping(time.monotonic())
            except Exception as e:  # noqa: BLE001
                self._internal(None, e)

    def _housekeeping(self, now: float) -> None:
        while self._pending:                 # handshakes past their deadline, oldest first
            conn = next(iter(self._pending))
            if now - conn.opened <= HANDSHAKE_TIMEOUT:
                break
            why = "no hello in time" if conn.state is _HELLO else "no answer to the challenge in time"
            self._guarded(conn, lambda c, why=why: self._refuse(c, why))
            self._pending.pop(conn, None)    # even if closing it failed
        if now - self._last_sweep < ACK_EVERY:
            return
        self._last_sweep = now
        for conn in list(self._open):
            self._guarded(conn, lambda c: self._ack(c, now, force=False))
            if conn.stream is not None:
                self._tell(conn.stream, now)
        self.streams.expire(now)
        self._refusals.flush(now)

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
        for _ in range(ACCEPT_BATCH):
            try:
                sock, peer = self._server.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # out of descriptors (EMFILE): make room, or the loop would spin on it
                self._refusals.add(f"cannot accept: {e.strerror or e}", None, time.monotonic())
                if self._pending:
                    self._refuse(self._first_to_drop(), "out of file descriptors: the oldest in its handshake dropped")
                else:
                    self.stopped.wait(ACK_EVERY)
                return
            sock.setblocking(False)
            self.connections += 1
            if len(self._pending) >= self.max_pending:
                self._refuse(self._first_to_drop(), "too many connections in their handshake: the oldest dropped")
            conn = _Conn(sock, peer, self.key)
            self._pending[conn] = None
            self._sel.register(sock, selectors.EVENT_READ, conn)

    def _first_to_drop(self) -> _Conn:
        """The pending connection to drop for a newcomer: the oldest that has
        sent nothing (a writer sends its hello at once), else the oldest of
        the host with the most connections in their handshake."""
        silent = next((c for c in self._pending if c.state is _HELLO and not c.buf), None)
        if silent is not None:
            return silent
        hosts = collections.Counter(_host(c.peer) for c in self._pending)
        busiest = hosts.most_common(1)[0][0]
        return next(c for c in self._pending if _host(c.peer) == busiest)

    def _readable(self, conn: _Conn) -> None:
        try:
            data = conn.sock.recv(1 << 18)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            if conn.state is _AUTH:    # a writer with another token hangs up here: its proof would not pass
                self._refuse(conn, "the writer hung up after the challenge (has it another token than this listener?)")
            elif conn.state is _HELLO:
                self._refuse(conn, "closed before a hello")
            else:
                self._close(conn)
            return
        if conn.state is not _OPEN:
            data = self._handshake(conn, data)
            if not data:
                return
        self._feed(conn, data)

    # -- the handshake ---------------------------------------------------------------

    def _handshake(self, conn: _Conn, data: bytes) -> bytes:
        """Take the handshake's lines from ``data``; returns what came after
        them (records), b"" when nothing did or the connection was refused."""
        conn.buf += data
        while conn.state is not _OPEN:
            nl = conn.buf.find(b"\n")
            if nl < 0:
                if len(conn.buf) > HELLO_LIMIT:
                    self._refuse(conn, "handshake line too long")
                return b""
            line, conn.buf = conn.buf[:nl], conn.buf[nl + 1:]
            if not (self._on_hello(conn, line) if conn.state is _HELLO else self._on_auth(conn, line)):
                return b""
        data, conn.buf = conn.buf, b""
        return data

    def _on_hello(self, conn: _Conn, line: bytes) -> bool:
        challenge, why = conn.handshake.on_hello(line)
        if challenge is None:
            self._refuse(conn, why, tell=True)
            return False
        conn.state = _AUTH
        return self._send(conn, challenge)

    def _on_auth(self, conn: _Conn, line: bytes) -> bool:
        auth, why = conn.handshake.on_auth(line)
        if auth is None:
            self._refuse(conn, why, tell=True)
            return False
        if len(self._open) >= self.max_connections and not self._push_out_quietest():
            self._refuse(conn, f"over {self.max_connections} streaming connections", tell=True)
            return False
        stream = self._resumed(conn, auth) or self._new_stream(conn)
        self.streams.attach(stream, conn)
        conn.stream, conn.state = stream, _OPEN
        self._pending.pop(conn, None)
        self._open.add(conn)
        conn.acked = stream.reader.contiguous_seq
        return self._send(conn, {"type": "welcome", "handshake": HANDSHAKE, "have": conn.acked, "session": stream.sid})

    def _push_out_quietest(self) -> bool:
        """Make room for a newcomer at the streaming cap: close the streaming
        connection that has sent no whole line for longest, if that is over
        ``stream_quiet`` s (idle connections, or one dribbling a byte at a
        time, must not keep writers out for good). Its writer, if it was
        one, reconnects and resumes its stream."""
        now = time.monotonic()
        quietest = min(self._open, key=lambda c: c.heard, default=None)
        if quietest is None or now - quietest.heard <= self.stream_quiet:
            return False
        self._refusals.add(f"streaming connections at the cap of {self.max_connections}: the one quiet longest "
                           f"(no record for over {self.stream_quiet:g} s) closed for a newcomer", quietest.peer, now)
        self._close(quietest, "pushed out, quiet for longest,")
        return True

    def _resumed(self, conn: _Conn, auth: dict) -> Optional[SocketStream]:
        """The stream this connection resumes, when it proves it is that
        stream's writer; None for a new stream."""
        sid = auth.get("session")
        stream = self.streams.get(sid)
        if stream is None:   # no session, or one this listener never gave or has forgotten
            return None
        if not conn.handshake.resumes(stream.key, stream.secret, auth):
            self._problem(conn.peer, f"{stream.reader.source}: a connection named this stream without its secret; "
                                     "taken as a new stream", "warning")
            return None
        if stream.conn is not None:  # its writer gave up on that connection and came back
            self._close(stream.conn, "the writer reconnected")
        return stream

    def _new_stream(self, conn: _Conn) -> SocketStream:
        sid = secrets.token_hex(8)
        while self.streams.get(sid) is not None:
            sid = secrets.token_hex(8)
        hs = conn.handshake
        key = hs.stream_key
        stream, holder = self.streams.new(key, hs.writer, sid, hs.session_secret(sid), self._peer(conn))
        if holder is not None:
            self._problem(conn.peer, kept_apart(key[0], key[1], holder.describe(), stream.describe(),
                                                "did not resume that stream", stream.row), "warning")
        return stream

    # -- streaming -------------------------------------------------------------------

    def _feed(self, conn: _Conn, data: bytes) -> None:
        stream = conn.stream
        lines = stream.reader.line_number
        records = stream.reader.feed(data)
        if stream.reader.line_number != lines:
            conn.heard = time.monotonic()
        self._tell(stream, time.monotonic())
        if records:
            self.on_records(stream.source, self._as_stored(conn, records))
        self._ack(conn, time.monotonic(), force=False)

    def _as_stored(self, conn: _Conn, records: list) -> list:
        """``records`` as the store takes them: a header names the stream's
        row and rank (whatever its own fields say); an end marks the stream
        ended."""
        stream, out = conn.stream, records
        for i, rec in enumerate(records):
            if rec.__class__ is MetricsRecord or rec.__class__ is dict:   # metrics: most of them
                continue
            kind = getattr(rec, "type", None)
            if kind == "end":
                stream.ended = True
            elif kind == "run":
                if out is records:
                    out = list(records)
                out[i] = self._header(conn, rec.model_dump())
        return out

    def _header(self, conn: _Conn, header: dict) -> dict:
        stream = conn.stream
        run_id, rank = stream.key
        if (header.get("run_id"), header.get("rank")) != stream.key:
            self._problem(conn.peer, f"{stream.reader.source}: the run record names run "
                                     f"{str(header.get('run_id'))[:200]!r} rank {header.get('rank')}, not the "
                                     "hello's; stored under the hello's", "warning")
        header["rank"] = rank
        host = header.get("host")
        stream.host = host if isinstance(host, str) else None
        return as_row(header, run_id, stream.row)

    def _tell(self, stream: SocketStream, now: float, final: bool = False) -> None:
        """Hand on the stream's new reader problems, and its duplicates (at
        most once every TELL_EVERY s, and when its connection closes)."""
        problems, stream.reported = new_problems(stream.reader, stream.reported)
        for p in problems:
            self.on_problem(p)
        dups = stream.reader.stats.duplicates
        if dups > stream.duplicates_told and (final or now - stream.duplicates_at >= TELL_EVERY):
            self.on_problem(Problem(stream.reader.source, stream.reader.line_number,
                                    f"{dups - stream.duplicates_told} record(s) repeated a seq already received and "
                                    f"were dropped as duplicates ({dups} on this stream)", "warning"))
            stream.duplicates_told, stream.duplicates_at = dups, now

    def _ack(self, conn: _Conn, now: float, force: bool) -> None:
        seq = conn.stream.reader.contiguous_seq
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
        self._refusals.add(reason, conn.peer, time.monotonic())
        if tell:
            try:
                refusal = {"type": "refused", "handshake": HANDSHAKE, "reason": reason}
                conn.sock.send((json.dumps(refusal) + "\n").encode())
            except OSError:
                pass
        self._close(conn)

    def _close(self, conn: _Conn, why: str = "the connection closed") -> None:
        self._pending.pop(conn, None)
        self._open.discard(conn)
        try:
            self._sel.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        try:
            conn.sock.close()
        except OSError:
            pass
        stream = conn.stream
        if stream is not None and stream.conn is conn:
            # A line this connection left unfinished is never finished: the
            # writer sends it again, whole, when it reconnects.
            stream.reader.discard_pending(f"{why} mid-line")
            now = time.monotonic()
            self._tell(stream, now, final=True)
            self.streams.detach(stream, now)

    def _peer(self, conn: _Conn) -> str:
        return f"{self.address}<-{conn.peer[0]}:{conn.peer[1]}" if isinstance(conn.peer, tuple) else self.address

    def _problem(self, peer, reason: str, severity: str = "warning") -> None:
        # named by the peer's host, not its port: each connection has a port
        # of its own, and the problems list keeps one entry per source and reason
        where = peer[0] if isinstance(peer, tuple) and peer else self.address
        self.on_problem(Problem(f"{self.address} (from {where})", 0, reason, severity))
