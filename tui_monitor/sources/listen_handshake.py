"""The listener's side of one connection's handshake (docs/stream-format.md,
"Over a socket", version 2), as messages in and out: no sockets here.

hello -> challenge (the listener's nonce, and its proof of the token) ->
auth (the writer's proof, and a resume proof for a stream it had) ->
welcome. The token and the session secrets never cross the wire: each side
shows an HMAC over both nonces instead.
"""
from __future__ import annotations

import hmac
import json
import secrets
from typing import Optional, Tuple

from ..hook import HANDSHAKE, handshake_proof
from ..ranges import INT32_MAX

RowKey = Tuple[str, int]

OLD_HOOK = (f"the hook speaks an older handshake than {HANDSHAKE} (one that sends the token in the clear): "
            "update tui-monitor, or the copied tui_monitor_hook.py, on the training side")


def proven(given, key: bytes, label: str, *parts: str) -> bool:
    """Whether ``given`` is the proof of ``key`` for ``label`` and ``parts``
    (compared in constant time)."""
    return (isinstance(given, str) and given.isascii()
            and hmac.compare_digest(given, handshake_proof(key, label, *parts)))


def nonce_ok(nonce) -> bool:
    return isinstance(nonce, str) and 16 <= len(nonce) <= 128 and nonce.isascii() and nonce.isalnum()


_NOT_JSON = object()


def _json(line: bytes):
    try:
        return json.loads(line)
    except (ValueError, RecursionError):   # RecursionError: nesting too deep for the parser
        return _NOT_JSON


class Handshake:
    """One connection's handshake, for a listener whose token is ``key``
    (None: it asks for none)."""

    __slots__ = ("key", "hello", "nonce")

    def __init__(self, key: Optional[bytes]):
        self.key = key
        self.hello: dict = {}
        self.nonce = ""          # the listener's, sent in the challenge

    @property
    def stream_key(self) -> RowKey:
        """(run_id, rank) the hello named."""
        return self.hello["run_id"], self.hello.get("rank", 0)

    @property
    def writer(self) -> Optional[Tuple[float, int]]:
        """``(start, pid)`` of the process the hello says it comes from, when it says."""
        start, pid = self.hello.get("start"), self.hello.get("pid")
        if type(pid) is int and type(start) in (int, float):
            return float(start), pid
        return None

    def on_hello(self, line: bytes) -> Tuple[Optional[dict], str]:
        """The challenge to answer the hello ``line`` with, or None and why
        the connection is refused."""
        hello = _json(line)
        if hello is _NOT_JSON:
            return None, "the first line was not a hello (not JSON)"
        if not isinstance(hello, dict) or hello.get("type") != "hello":
            return None, "the first line was not a hello"
        run_id = hello.get("run_id")
        if not isinstance(run_id, str) or not run_id:
            return None, "the hello has no valid run_id (a non-empty string)"
        rank = hello.get("rank", 0)
        if type(rank) is not int or not 0 <= rank <= INT32_MAX:  # bool is an int subclass: true is no rank
            return None, f"the hello has no valid rank (an integer from 0 to {INT32_MAX})"
        if hello.get("handshake") != HANDSHAKE:
            return None, OLD_HOOK
        if not nonce_ok(hello.get("nonce")):
            return None, "the hello has no valid nonce"
        self.hello, self.nonce = hello, secrets.token_hex(16)
        challenge = {"type": "challenge", "handshake": HANDSHAKE, "nonce": self.nonce, "token": self.key is not None}
        if self.key is not None:  # a writer streams only to a listener that knows the token
            challenge["proof"] = handshake_proof(self.key, "listener", hello["nonce"], self.nonce)
        return challenge, ""

    def on_auth(self, line: bytes) -> Tuple[Optional[dict], str]:
        """The auth ``line`` as a dict once its proof of the token holds, or
        None and why the connection is refused."""
        auth = _json(line)
        if not isinstance(auth, dict) or auth.get("type") != "auth":
            return None, "the answer to the challenge was not an auth"
        if self.key is not None and not proven(auth.get("proof"), self.key, "writer", self.hello["nonce"], self.nonce):
            return None, "wrong or missing token"
        return auth, ""

    def resumes(self, key: RowKey, secret: bytes, auth: dict) -> bool:
        """Whether ``auth`` proves that this writer holds ``secret``, the
        session secret of the stream ``key`` it names."""
        return key == self.stream_key and proven(auth.get("resume"), secret, "resume", self.hello["nonce"], self.nonce)

    def session_secret(self, sid: str) -> bytes:
        """A new stream's session secret: from both nonces (and the token,
        when there is one), so the writer derives it too."""
        return bytes.fromhex(handshake_proof(self.key or b"", "session", self.hello["nonce"], self.nonce, sid))
