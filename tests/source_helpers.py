"""Helpers for the source tests: stream lines to write, files to append to,
and what the store holds after reading them."""
from __future__ import annotations

import json
import os
import socket

from tui_monitor.hook import HANDSHAKE, handshake_proof
from tui_monitor.sources import Ingest


def header(run_id="r1", name="run", seq=0, **extra):
    rec = {"type": "run", "seq": seq, "v": 1, "run_id": run_id, "name": name, "start": 1000.0,
           "host": "elsewhere", "pid": 1, "rank": 0, "world_size": 1, "config": {}}
    rec.update(extra)
    return json.dumps(rec) + "\n"


def metrics(seq, step, loss, split=None):
    rec = {"type": "metrics", "seq": seq, "step": step, "time": 1000.0 + step, "values": {"loss": loss}}
    if split:
        rec["split"] = split
    return json.dumps(rec) + "\n"


def append(path, text, mode="a"):
    with open(path, mode + "b") as f:
        f.write(text.encode() if isinstance(text, str) else text)


def losses(store, run_id="r1", split="train"):
    run = store.get(run_id)
    if run is None or (split, "loss") not in run.series:
        return []
    s = run.series[(split, "loss")]
    return list(zip(s.steps.tolist(), s.values.tolist()))


def follow(*paths, context=None):
    """An Ingest that has read ``paths`` to their current ends, and its
    follower (to tick again after appending)."""
    ing = Ingest()
    f = ing.add_path(*map(str, paths))
    if context:
        f.context.update(context)
    ing.read_all()
    return ing, f


def read(*paths, context=None):
    return follow(*paths, context=context)[0]


def values(run, metric="loss", split="train"):
    s = run.get(metric, split)
    assert s is not None, f"no {split}/{metric} in {sorted(run.series)}"
    snap = s.snapshot()
    return list(snap.steps), list(snap.values)


class RawWriter:
    """A hook-like client over a real socket that speaks the handshake by
    hand (hello, auth), then sends exactly the bytes a test means: half
    lines, forged hellos, another run's id. ``welcome`` is the listener's
    last answer (a ``refused`` one too); ``session`` is what resumes this
    stream: pass it to a later RawWriter of the same writer."""

    def __init__(self, address, run_id="r1", rank=0, token=None, session=None, **hello_extra):
        self.sock = socket.create_connection(address, timeout=20)
        self.f = self.sock.makefile("rb")
        mine = os.urandom(16).hex()
        self.send_json({"type": "hello", "v": 1, "handshake": HANDSHAKE, "run_id": run_id, "rank": rank,
                        "nonce": mine, **hello_extra})
        self.challenge = self.welcome = self.read()
        self.session = None
        if self.challenge.get("type") != "challenge":
            return
        theirs = self.challenge["nonce"]
        key = token.encode() if token is not None else None
        auth = {"type": "auth"}
        if key is not None:
            auth["proof"] = handshake_proof(key, "writer", mine, theirs)
        if session is not None:
            auth["session"], auth["resume"] = session[0], handshake_proof(session[1], "resume", mine, theirs)
        self.send_json(auth)
        self.welcome = self.read()
        sid = self.welcome.get("session")
        if self.welcome.get("type") == "welcome":
            self.session = session if session is not None and session[0] == sid else (
                sid, bytes.fromhex(handshake_proof(key or b"", "session", mine, theirs, sid)))

    @property
    def have(self):
        return self.welcome.get("have")

    def send(self, data):
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def send_json(self, msg):
        self.send(json.dumps(msg) + "\n")

    def read(self):
        line = self.f.readline()
        return json.loads(line) if line else None

    def close(self):
        self.f.close()
        self.sock.close()
