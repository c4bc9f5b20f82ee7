"""Weights & Biases runs kept on disk (``WANDB_MODE=offline``), without syncing.

A run trained offline leaves ``wandb/offline-run-<date>-<id>/run-<id>.wandb``
(an online run keeps the same file under ``wandb/run-...``): W&B's
transaction log, which ``wandb sync`` would upload. It is read as it grows:

- The framing is LevelDB's log format, as W&B writes it: a 7-byte file
  header (``:W&B``, a magic number, a version), then records in 32 KiB
  blocks, each with a 7-byte header (CRC-32 of its type and data, length,
  type: whole, first, middle or last piece of a record); fewer than 7 bytes
  left in a block are padding. A record cut short at the end of the file is
  still being written: it waits for the rest. A CRC mismatch skips the
  record; a broken header stops reading the file; both are reported with
  the byte offset.
- The records are W&B's protobuf ``Record`` messages, decoded with the
  ``wandb`` package's own definitions (``wandb.proto.wandb_internal_pb2``:
  the optional ``wandb`` extra). wandb 0.20+ no longer ships a Python reader
  of the file (its ``wandb leet inspect`` is a Go program); its record
  definitions are what stays stable and public. Without the package the
  file is recognised and reported, not read.

What is read: the ``run`` record (name ``<project>/<display name>``, config,
start), ``history`` rows (numbers at ``_step``, at ``_timestamp``; media,
tables and text are left out), and the ``exit`` record (exit code 0:
finished; else crashed). W&B's other files beside it (``files/``,
``logs/``, ``debug.log``) are its own: not read, not reported.
"""
from __future__ import annotations

import json
import os
import re
import struct
import zlib
from typing import Any, Dict, List, Optional

from .formats import FormatTail, RecordReader, end_record, run_header, run_id_for
__all__ = ["WandbReader", "is_run_file", "make_tail", "owned_by", "sniff"]

MAGIC = b":W&B"
FILE_HEADER = 7
BLOCK = 32 * 1024
RECORD_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
_TYPE_CRC = {t: zlib.crc32(bytes([t])) for t in (FULL, FIRST, MIDDLE, LAST)}
_RUN_FILE = re.compile(r"run-[\w-]+\.wandb\Z")
_RUN_DIR = re.compile(r"(offline-)?run-\d{8}_\d{6}-[\w-]+\Z")
INSTALL = "a W&B run: install the wandb package (pip install 'tui-monitor[wandb]') to read it"


def is_run_file(path: str) -> bool:
    return bool(_RUN_FILE.match(os.path.basename(path)))


def sniff(head: bytes, path: str = "") -> bool:
    return head.startswith(MAGIC)


def owned_by(path: str) -> Optional[str]:
    """"" for W&B's own files (a run folder's ``files/`` and ``logs/``, the
    ``wandb/`` folder's debug logs): not read and not reported; None for
    any other file."""
    parts = os.path.abspath(path).split(os.sep)
    if any(_RUN_DIR.match(p) for p in parts[:-1]):
        return ""
    if len(parts) > 1 and parts[-2] == "wandb" and parts[-1].startswith("debug"):
        return ""
    return None


def _records_module() -> Any:
    try:
        from wandb.proto import wandb_internal_pb2  # type: ignore
    except Exception:  # noqa: BLE001 - not installed, or a protobuf runtime it cannot load
        return None
    return wandb_internal_pb2


def _value(item: Any) -> Any:
    which = item.WhichOneof("value") if item.DESCRIPTOR.oneofs_by_name.get("value") else None
    if which in ("integer", "number"):
        return getattr(item, which)
    if which is not None:
        return None  # none, boolean, text, json: not a point on a curve
    try:
        return json.loads(item.value_json)
    except ValueError:
        return None


def _key(item: Any) -> str:
    return item.key or ".".join(item.nested_key)


class WandbReader(RecordReader):
    """Bytes of one ``run-*.wandb`` file in, the run's records out."""

    def __init__(self, source: str):
        super().__init__(source)
        self.pb = _records_module()
        self.buf = bytearray()
        self.offset = 0          # file offset of buf[0]
        self.stopped = False
        self.pieces = bytearray()  # a record in pieces (FIRST, MIDDLE...)
        self.state: Dict[str, Any] = {"seq": 0}
        self.header_sent = False
        self.ended = False
        self.last_step = 0
        self.last_time: Optional[float] = None
        self.pending: List[dict] = []  # history rows before the run record (not written so in practice)
        if self.pb is None:
            self.problem(INSTALL, "warning")
            self.stopped = True

    @property
    def done(self) -> bool:
        return self.stopped

    def next_seq(self) -> int:
        seq = self.state["seq"]
        self.state["seq"] = seq + 1
        return seq

    # -- framing -----------------------------------------------------------------

    def feed(self, chunk: bytes) -> List[dict]:
        if self.stopped:
            return []
        self.buf += chunk
        out: List[dict] = []
        if self.offset == 0:
            if len(self.buf) < FILE_HEADER:
                return out
            if not bytes(self.buf[:4]) == MAGIC:
                self.problem("not a W&B transaction log (no :W&B header); stopped reading it")
                self.stopped = True
                return out
            del self.buf[:FILE_HEADER]
            self.offset = FILE_HEADER
        pos = 0
        buf = self.buf
        while True:
            at = self.offset + pos
            left = BLOCK - at % BLOCK
            if left < RECORD_HEADER:  # the block's tail: padding
                if len(buf) - pos < left:
                    break
                pos += left
                continue
            if len(buf) - pos < RECORD_HEADER:
                break
            crc, length, kind = struct.unpack_from("<IHB", buf, pos)
            if kind == 0 and length == 0 and crc == 0:  # zeros: a block padded by the writer
                pos += left
                continue
            if kind not in _TYPE_CRC or RECORD_HEADER + length > left:
                self.problem(f"byte {at}: broken record header; the rest of the file cannot be framed, "
                             "stopped reading it")
                self.stopped = True
                break
            end = pos + RECORD_HEADER + length
            if end > len(buf):
                break  # still being written
            data = bytes(buf[pos + RECORD_HEADER:end])
            pos = end
            if zlib.crc32(data, _TYPE_CRC[kind]) != crc:
                self.problem(f"byte {at}: record fails its CRC; skipped")
                self.pieces = bytearray()
                continue
            if kind == FULL:
                self._record(data, out)
            elif kind == FIRST:
                self.pieces = bytearray(data)
            elif kind == MIDDLE:
                self.pieces += data
            else:
                self.pieces += data
                self._record(bytes(self.pieces), out)
                self.pieces = bytearray()
        del buf[:pos]
        self.offset += pos
        return out

    # -- records -----------------------------------------------------------------

    def _record(self, data: bytes, out: List[dict]) -> None:
        self.line_number += 1
        rec = self.pb.Record()
        try:
            rec.ParseFromString(data)
        except Exception as e:  # noqa: BLE001 - protobuf's DecodeError and friends
            self.problem(f"not a W&B record: {e}", "warning")
            return
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            self._run(rec.run, out)
        elif kind == "history":
            self._history(rec.history, out)
        elif kind == "exit" and self.header_sent and not self.ended:
            self.ended = True
            code = rec.exit.exit_code
            error = None if code == 0 else {"type": "exit", "message": f"exit code {code}"}
            out.append(end_record(self.next_seq(), self.last_time, "finished" if code == 0 else "crashed",
                                  self.last_step, error))

    def _run(self, run: Any, out: List[dict]) -> None:
        if self.header_sent:
            return
        config: Dict[str, Any] = {}
        for item in run.config.update:
            key = _key(item)
            if key.startswith("_"):
                continue
            try:
                config[key] = json.loads(item.value_json)
            except ValueError:
                config[key] = item.value_json
        start = run.start_time.seconds + run.start_time.nanos / 1e9 if run.HasField("start_time") else None
        name = "/".join(x for x in (run.project, run.display_name or run.run_id) if x)
        tags = {"source": "wandb", "path": os.path.dirname(os.path.abspath(self.source))}
        if run.run_id:
            tags["wandb_id"] = run.run_id
        out.append(run_header(self.next_seq(), run_id_for("wandb", self.source), name, start, config, tags,
                              host=run.host))
        self.header_sent = True
        out.extend(self._renumbered(self.pending))
        self.pending = []

    def _renumbered(self, records: List[dict]) -> List[dict]:
        for r in records:
            r["seq"] = self.next_seq()
        return records

    def _history(self, history: Any, out: List[dict]) -> None:
        values: Dict[str, Any] = {}
        step = history.step.num if history.HasField("step") else None
        t = None
        for item in history.item:
            key, v = _key(item), _value(item)
            if key == "_step" and isinstance(v, (int, float)):
                step = int(v) if step is None else step
            elif key == "_timestamp" and isinstance(v, (int, float)):
                t = float(v)
            elif not key.startswith("_") and isinstance(v, (int, float)) and not isinstance(v, bool):
                values[key] = float(v)
        if not values:
            return
        step = step if step is not None else self.last_step + 1
        self.last_step, self.last_time = max(self.last_step, step), t if t is not None else self.last_time
        rec = {"type": "metrics", "seq": 0, "step": step, "time": t, "values": values}
        if not self.header_sent:
            self.pending.append(rec)
            return
        rec["seq"] = self.next_seq()
        out.append(rec)



def make_tail(path: str, on_records, on_problem, context: Dict[str, Any], explicit: bool = False) -> FormatTail:
    return FormatTail(path, on_records, on_problem, lambda tail: WandbReader(tail.path),
                      key=("wandb", os.path.abspath(path)))
