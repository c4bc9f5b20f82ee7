"""The listener's memory per stream: what many run ids leave behind.

    python bench/listener.py                # 20,000 run ids, about two minutes
    python bench/listener.py --quick        # 2,000 run ids

A client process opens N streams one after the other, each under a new run
id (the handshake, a header, one metric record), as N short jobs would:
``ended`` streams then send their ``end``; ``quiet`` ones hang up without
one (killed jobs). A fresh process listens, and the memory its Python
objects hold (tracemalloc, after a garbage collection: unlike the resident
size, it falls when state is let go) is read before, once the N streams are
done, and once the listener's keep time has passed (ended streams are kept
30 s for a lost last ack, quiet ones 10 minutes, at most 2,000 of them at any
time; here both keep times are shortened to 1 s so a run takes minutes).

Anchor, measured side by side the same way: the same N streams into a full
``Ingest``, whose store keeps a row per run (it must: they are shown). The
ratio column is the listener's own bytes per run id over the whole
monitor's. Absolute figures move with the Python build and allocator; the
per-run-id column and the ratio carry.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import socket
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tui_monitor.hook import HANDSHAKE  # noqa: E402


def live() -> int:
    """Bytes of Python objects alive now (tracemalloc): unlike the resident
    size, it falls when state is let go (the allocator keeps freed arenas)."""
    gc.collect()
    return tracemalloc.get_traced_memory()[0]


def client(port: int, n: int, ended: bool) -> None:
    """N streams, one after the other, each a new run id."""
    for i in range(n):
        run_id = f"bench-{i}"
        with socket.create_connection(("127.0.0.1", port)) as c, c.makefile("rb") as f:
            mine = os.urandom(16).hex()
            c.sendall(json.dumps({"type": "hello", "v": 1, "handshake": HANDSHAKE, "run_id": run_id, "rank": 0,
                                  "pid": 1000 + i, "start": 1.0, "nonce": mine}).encode() + b"\n")
            json.loads(f.readline())
            c.sendall(b'{"type":"auth"}\n')
            json.loads(f.readline())
            lines = [{"type": "run", "seq": 0, "v": 1, "run_id": run_id, "name": "bench", "start": 1.0,
                      "host": "h", "pid": 1000 + i, "rank": 0, "world_size": 1, "config": {"lr": 0.1}},
                     {"type": "metrics", "seq": 1, "step": 0, "time": 2.0, "values": {"loss": 1.0}}]
            if ended:
                lines.append({"type": "end", "seq": 2, "time": 3.0, "status": "finished"})
            c.sendall("".join(json.dumps(rec) + "\n" for rec in lines).encode())
            last = len(lines) - 1
            while json.loads(f.readline() or b'{"seq":-2}').get("seq", -2) not in (last, -2):
                pass


def serve(mode: str, n: int, ended: bool) -> dict:
    """Listen in this process, run the client, and measure."""
    from tui_monitor.sources import Ingest
    from tui_monitor.sources.listen import Listener

    tracemalloc.start()
    if mode == "ingest":
        ingest = Ingest()
        lst = ingest.listen("127.0.0.1:0")
        ingest.start()
    else:
        lst = Listener("127.0.0.1:0", lambda stream, records: None, lambda problem: None).start()
    lst.streams.ended_keep = lst.streams.idle_keep = 1.0
    before = live()
    t0 = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--client", str(lst.bound[1]), "--runs", str(n)]
                   + ([] if ended else ["--quiet-streams"]), check=True)
    took = time.perf_counter() - t0
    deadline = time.monotonic() + 30
    while len(lst._open) + len(lst._pending) and time.monotonic() < deadline:
        time.sleep(0.05)
    done, kept_done = live(), len(lst.streams)
    time.sleep(2.5)                                      # past the (shortened) keep times
    later, kept_later = live(), len(lst.streams)
    return {"mode": mode, "n": n, "took": took, "done": done - before, "later": later - before,
            "kept_done": kept_done, "kept_later": kept_later}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20_000)
    ap.add_argument("--quick", action="store_true", help="2,000 run ids")
    ap.add_argument("--client", type=int, metavar="PORT", help=argparse.SUPPRESS)
    ap.add_argument("--serve", choices=["listener", "ingest"], help=argparse.SUPPRESS)
    ap.add_argument("--quiet-streams", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    n = 2_000 if a.quick else a.runs
    if a.client:
        client(a.client, n, ended=not a.quiet_streams)
        return 0
    if a.serve:
        print(json.dumps(serve(a.serve, n, ended=not a.quiet_streams)))
        return 0
    print(f"{n:,} run ids, one stream each, one after the other")
    print(f"{'streams':<8} {'process':<9} {'took s':>7} {'kept':>6} {'B/run id when done':>19} "
          f"{'kept later':>10} {'B/run id later':>15} {'ratio':>6}")
    for kind in ("ended", "quiet"):
        rows = {}
        for mode in ("ingest", "listener"):
            out = subprocess.run([sys.executable, __file__, "--serve", mode, "--runs", str(n)]
                                 + ([] if kind == "ended" else ["--quiet-streams"]),
                                 check=True, capture_output=True, text=True).stdout
            rows[mode] = json.loads(out.strip().splitlines()[-1])
        for mode in ("ingest", "listener"):
            r = rows[mode]
            ratio = r["later"] / rows["ingest"]["later"] if rows["ingest"]["later"] > 0 else float("nan")
            print(f"{kind:<8} {mode:<9} {r['took']:>7.1f} {r['kept_done']:>6,} {r['done'] / n:>19,.0f} "
                  f"{r['kept_later']:>10,} {r['later'] / n:>15,.0f} {ratio:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
