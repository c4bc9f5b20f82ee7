"""TensorBoard event files (``events.out.tfevents.*``), followed live.

Why a reader of our own, and not TensorFlow or the ``tensorboard`` package:

- TensorFlow is out of the question (hundreds of MB to read a few scalars).
- ``tensorboard``'s event reader (``tensorboard.backend.event_processing``)
  reads whole files through iterators that treat a partial last record as the
  end of the data rather than as "not yet"; it needs the ``protobuf`` runtime,
  whose major versions have broken ``tensorboard``'s generated modules more
  than once; and it would make a 10 MB package (plus protobuf) a dependency
  of the monitor for what is ~150 lines here.
- The format is small and frozen: TFRecord framing (``uint64 length``,
  ``uint32 masked CRC32C(length)``, ``data``, ``uint32 masked CRC32C(data)``,
  little-endian) around ``Event`` protobufs, of which we need five fields:
  ``Event.wall_time`` (1, double), ``Event.step`` (2, int64),
  ``Event.summary`` (5) -> ``Summary.value`` (1) -> ``tag`` (1),
  ``simple_value`` (2, float), ``metadata`` (9) -> ``plugin_data`` (1) ->
  ``plugin_name`` (1), and ``tensor`` (8, a ``TensorProto``: ``dtype`` (1),
  ``tensor_shape`` (2), ``tensor_content`` (4), ``float_val`` (5),
  ``double_val`` (6), ``int_val`` (7), ``int64_val`` (10), ``half_val``
  (13)) for the scalars that newer writers (``tf.summary`` v2,
  ``tensorboard.summary``) store as 0-d tensors. A protobuf wire decoder for
  those is a few dozen lines, has no dependency and is tested against files
  written by ``torch.utils.tensorboard`` and Lightning's ``TensorBoardLogger``.

Memory stays bounded whatever the file holds: a record's data is kept only
up to :data:`MAX_RECORD` bytes (16 MiB: far above any scalar event; graphs,
images and embeddings can be a few MB). A longer record (a crafted length of
gigabytes, or a giant summary) is reported once and passed over as its bytes
come, without being kept; its data CRC is not checked, as nothing of it is
read. The follower hands the reader a chunk at a time, so a large file is
read in pieces, never whole.

Both CRCs are checked (CRC32C, Castagnoli; the C implementation of
``google_crc32c`` or ``crc32c`` is used when installed, else a table in pure
Python, ~10 MB/s: event files of scalars are small). A record cut short at the
end of a file is a record still being written: it waits for the rest. A data
CRC mismatch skips that record; a length CRC mismatch leaves nothing to frame
the rest by, so reading that file stops; both are reported with the file and
the byte offset.

TensorBoard writes several event files into one run folder (one per writer
process or restart), so the run is the folder: every event file of a folder
feeds one run, under one stream key, with one header and one ``seq`` count.
Scalar events of one step that follow each other are merged into one
``metrics`` record. Tags map to splits as stream keys do
(:func:`tui_monitor.schema.split_metric`: ``train/loss``, ``loss/val``,
``Loss/train``, ``val_loss``). A ``hparams.yaml`` next to the event files
(Lightning's ``TensorBoardLogger`` writes one) becomes the run's config.
"""
from __future__ import annotations

import os
import re
import struct
from typing import Any, Dict, List, Optional, Tuple

from .formats import FormatTail, RecordReader, lightning_key, run_header, run_id_for
from .hparams import read_hparams
from .naming import folder_run_name

__all__ = ["EventFileReader", "MAX_RECORD", "TBRun", "crc32c", "masked_crc32c", "decode_event", "make_tail",
           "frame_record"]

#: The largest record kept to be decoded (bytes of data); longer ones are skipped, unread.
MAX_RECORD = 16 << 20

# ---------------------------------------------------------------- CRC32C


def _py_crc32c_table() -> List[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _py_crc32c_table()


def _py_crc32c(data: bytes, crc: int = 0) -> int:
    table = _TABLE
    crc ^= 0xFFFFFFFF
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _fast_crc32c():
    try:
        import google_crc32c  # type: ignore
        if getattr(google_crc32c, "implementation", "c") == "c":
            return lambda data: google_crc32c.value(bytes(data))
    except Exception:  # noqa: BLE001
        pass
    try:
        import crc32c as _c  # type: ignore
        return lambda data: _c.crc32c(bytes(data))
    except Exception:  # noqa: BLE001
        pass
    return None


crc32c = _fast_crc32c() or _py_crc32c


def masked_crc32c(data: bytes) -> int:
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def frame_record(data: bytes) -> bytes:
    """``data`` framed as one TFRecord (what a writer appends)."""
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked_crc32c(length)) + data + struct.pack("<I", masked_crc32c(data))


# ---------------------------------------------------------------- protobuf wire


class _WireError(ValueError):
    pass


def _varint(buf: bytes, pos: int) -> Tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise _WireError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _WireError("varint too long")


def _fields(buf: bytes):
    """``(field number, wire type, value)`` for each field of a message;
    length-delimited values are bytes, fixed ones raw little-endian bytes."""
    pos, n = 0, len(buf)
    while pos < n:
        key, pos = _varint(buf, pos)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, pos = _varint(buf, pos)
        elif wt == 1:
            v, pos = buf[pos:pos + 8], pos + 8
        elif wt == 2:
            ln, pos = _varint(buf, pos)
            v, pos = buf[pos:pos + ln], pos + ln
        elif wt == 5:
            v, pos = buf[pos:pos + 4], pos + 4
        else:
            raise _WireError(f"unsupported wire type {wt}")
        if pos > n:
            raise _WireError("truncated field")
        yield num, wt, v


def _int64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _int32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


_DT_FLOAT, _DT_DOUBLE, _DT_INT32, _DT_INT64, _DT_HALF = 1, 2, 3, 9, 19
_DT_UINT8, _DT_INT16, _DT_INT8, _DT_BFLOAT16 = 4, 5, 6, 14
_CONTENT = {_DT_FLOAT: "<f", _DT_DOUBLE: "<d", _DT_INT32: "<i", _DT_INT64: "<q", _DT_HALF: "<e",
            _DT_UINT8: "<B", _DT_INT16: "<h", _DT_INT8: "<b"}


def _packed(wt: int, v: Any, fmt: str) -> List[float]:
    if wt == 2:
        size = struct.calcsize(fmt)
        return [x[0] for x in struct.iter_unpack(fmt, v[: len(v) // size * size])] if v else []
    return [struct.unpack(fmt, v)[0]]


def _packed_varints(wt: int, v: Any, signed64: bool) -> List[int]:
    if wt == 0:
        vals = [v]
    else:
        vals, pos = [], 0
        while pos < len(v):
            x, pos = _varint(v, pos)
            vals.append(x)
    return [_int64(x) if signed64 else _int32(x) for x in vals]


def _tensor_scalar(buf: bytes) -> Optional[float]:
    """The value of a TensorProto holding one number; None for anything else
    (strings, several elements)."""
    dtype = _DT_FLOAT
    dims: List[int] = []
    content = None
    vals: List[float] = []
    for num, wt, v in _fields(buf):
        if num == 1 and wt == 0:
            dtype = v
        elif num == 2 and wt == 2:
            for dn, dwt, dv in _fields(v):
                if dn == 2 and dwt == 2:
                    size = 1
                    for sn, swt, sv in _fields(dv):
                        if sn == 1 and swt == 0:
                            size = _int64(sv)
                    dims.append(size)
        elif num == 4 and wt == 2:
            content = v
        elif num == 5 and wt in (2, 5):
            vals += _packed(wt, v, "<f")
        elif num == 6 and wt in (1, 2):
            vals += _packed(wt, v, "<d")
        elif num == 7 and wt in (0, 2):
            vals += _packed_varints(wt, v, False)
        elif num == 10 and wt in (0, 2):
            vals += _packed_varints(wt, v, True)
        elif num == 13 and wt in (0, 2):  # half_val: float16 bits in int32s
            vals += [struct.unpack("<e", struct.pack("<H", x & 0xFFFF))[0] for x in _packed_varints(wt, v, False)]
    count = 1
    for d in dims:
        count *= d
    if count != 1:
        return None
    if content is not None:
        if dtype == _DT_BFLOAT16 and len(content) == 2:
            return struct.unpack("<f", b"\x00\x00" + bytes(content))[0]
        fmt = _CONTENT.get(dtype)
        if fmt is None or len(content) != struct.calcsize(fmt):
            return None
        return struct.unpack(fmt, content)[0]
    if len(vals) == 1 and dtype in (_DT_FLOAT, _DT_DOUBLE, _DT_INT32, _DT_INT64, _DT_HALF, _DT_BFLOAT16,
                                    _DT_UINT8, _DT_INT16, _DT_INT8):
        return vals[0]
    return None


def decode_event(data: bytes, plugins: Optional[Dict[str, str]] = None) -> Tuple[Optional[float], Optional[int], Dict[str, float]]:
    """``(wall_time, step, {tag: value})`` of one serialized ``Event``: its
    scalars, from ``simple_value`` or a one-number tensor. ``plugins``
    remembers each tag's plugin (sent with its first value only), so tensors
    of other plugins (text, histograms, hparams) are left out."""
    wall_time = step = None
    values: Dict[str, float] = {}
    plugins = plugins if plugins is not None else {}
    for num, wt, v in _fields(data):
        if num == 1 and wt == 1:
            wall_time = struct.unpack("<d", v)[0]
        elif num == 2 and wt == 0:
            step = _int64(v)
        elif num == 5 and wt == 2:
            for sn, swt, sv in _fields(v):
                if sn != 1 or swt != 2:
                    continue
                tag, simple, tensor, plugin = None, None, None, None
                for fn, fwt, fv in _fields(sv):
                    if fn == 1 and fwt == 2:
                        tag = bytes(fv).decode("utf-8", "replace")
                    elif fn == 2 and fwt == 5:
                        simple = struct.unpack("<f", fv)[0]
                    elif fn == 8 and fwt == 2:
                        tensor = fv
                    elif fn == 9 and fwt == 2:
                        for mn, mwt, mv in _fields(fv):
                            if mn == 1 and mwt == 2:
                                for pn, pwt, pv in _fields(mv):
                                    if pn == 1 and pwt == 2:
                                        plugin = bytes(pv).decode("utf-8", "replace")
                if tag is None:
                    continue
                if plugin is not None:
                    plugins[tag] = plugin
                if simple is not None:
                    values[tag] = simple
                elif tensor is not None and plugins.get(tag, "scalars") == "scalars":
                    x = _tensor_scalar(tensor)
                    if x is not None:
                        values[tag] = x
    return wall_time, step, values


# ---------------------------------------------------------------- one run per folder

_NAME = re.compile(r"^events\.out\.tfevents\.(\d+)\.(.+)\.(\d+)\.\d+(?:\..*)?$")


def run_name(folder: str) -> str:
    """A run's name from its folder (:func:`.naming.folder_run_name`)."""
    return folder_run_name(folder)


def load_hparams(folder: str) -> Dict[str, Any]:
    """``hparams.yaml`` in ``folder`` as a dict (empty when absent or unreadable)."""
    return read_hparams(os.path.join(folder, "hparams.yaml"))


#: Keras' TensorBoard callback writes ``logs/train/`` and ``logs/validation/``:
#: one run (``logs``), the folder naming the split of what is in it.
_SPLIT_FOLDERS = {"train": "train", "validation": "val"}
#: Its tags: ``epoch_loss`` is the epoch's ``loss``; ``evaluation_loss_vs_iterations``
#: repeats the validation's at the training step, and is left out.
_KERAS_EPOCH_TAG = re.compile(r"epoch_(.+)\Z")
_KERAS_ITERATION_TAG = re.compile(r"evaluation_.+_vs_iterations\Z")


def run_folder(path: str) -> Tuple[str, Optional[str]]:
    """The run an event file belongs to and the split its folder names:
    the file's folder, or for Keras' ``train``/``validation`` folders (that
    hold event files only) the folder above them."""
    folder = os.path.dirname(os.path.abspath(path))
    split = _SPLIT_FOLDERS.get(os.path.basename(folder))
    if split is not None:
        try:
            names = os.listdir(folder)
        except OSError:
            names = []
        if all(n.startswith("events.out.tfevents.") or n in ("plugins", "profile") for n in names):
            return os.path.dirname(folder), split
    return folder, None


class TBRun:
    """What the event files of one run folder share: the run's header, the
    ``seq`` count and the tags' plugins; for Keras' split folders, which
    split each file's folder names."""

    def __init__(self, folder: str):
        self.folder = folder
        self.key = ("tensorboard", os.path.abspath(folder))
        self.seq = 0
        self.header_sent = False
        self.plugins: Dict[str, str] = {}
        self.splits: Dict[str, str] = {}      # event file -> split of its folder (Keras' layout)
        self.ended = False
        self.last_step = 0
        self.lightning = False

    def shape(self, source: str, records: List[dict]) -> List[dict]:
        """The metrics records of ``source`` as the run has them: in Keras'
        layout, its folder's split and the epoch's tags by their names."""
        for rec in records:
            if rec.get("type") == "metrics":
                self.last_step = max(self.last_step, rec["step"])
                if "epoch" in rec["values"]:
                    self.lightning = True  # Lightning logs the epoch with every step it logs
                if self.lightning:
                    rec["values"] = {lightning_key(k): v for k, v in rec["values"].items()}
        split = self.splits.get(source)
        if split is None:
            return records
        out = []
        for rec in records:
            if rec.get("type") == "metrics":
                values = {}
                for tag, v in rec["values"].items():
                    if _KERAS_ITERATION_TAG.match(tag):
                        continue
                    m = _KERAS_EPOCH_TAG.match(tag)
                    values[m.group(1) if m else tag] = v
                if not values:
                    continue
                rec["values"], rec["split"] = values, split
            out.append(rec)
        return out

    def header(self, start: Optional[float], file_name: str) -> dict:
        m = _NAME.match(file_name)
        tags: Dict[str, Any] = {"source": "tensorboard", "path": os.path.abspath(self.folder)}
        host = ""
        if m:
            host = m.group(2)
            tags["writer_pid"] = int(m.group(3))
            if start is None:
                start = float(m.group(1))
        rec = run_header(self.seq, run_id_for("tb", self.folder), run_name(self.folder), start,
                         load_hparams(self.folder), tags, host=host)
        self.seq += 1
        self.header_sent = True
        return rec


class EventFileReader(RecordReader):
    """Bytes of one event file in, ``metrics`` records (and the run's header,
    for the first file of a folder to have any) out."""

    def __init__(self, source: str, run: TBRun):
        super().__init__(source)
        self.run = run
        self.buf = bytearray()  # at most one record (up to MAX_RECORD) and one chunk
        self.offset = 0  # file offset of buf[0]
        self.skip = 0  # bytes of an over-long record still to pass over
        self.stopped = False

    @property
    def done(self) -> bool:
        return self.stopped  # nothing left to frame the rest of the file by

    def feed(self, chunk: bytes) -> List[dict]:
        if self.stopped:
            return []
        if self.skip:
            passed = min(self.skip, len(chunk))
            self.skip -= passed
            self.offset += passed
            chunk = chunk[passed:]
            if not chunk:
                return []
        buf = self.buf
        buf += chunk
        pos, n = 0, len(buf)
        events: List[Tuple[Optional[float], Optional[int], Dict[str, float]]] = []
        while n - pos >= 12:
            head = bytes(buf[pos:pos + 8])
            (length,) = struct.unpack("<Q", head)
            (lcrc,) = struct.unpack("<I", buf[pos + 8:pos + 12])
            if masked_crc32c(head) != lcrc:
                self.problem(f"byte {self.offset + pos}: record length fails its CRC; the rest of the file "
                             "cannot be framed, stopped reading it")
                self.stopped = True
                pos = n
                break
            end = pos + 12 + length + 4
            if length > MAX_RECORD:
                self.line_number += 1
                self.problem(f"byte {self.offset + pos}: record of {length} bytes is over the "
                             f"{MAX_RECORD >> 20} MiB limit; skipped")
                if end > n:  # pass over the rest as it comes, keeping none of it
                    self.skip = end - n
                    pos = n
                    break
                pos = end
                continue
            if end > n:
                break  # still being written
            data = bytes(buf[pos + 12:pos + 12 + length])
            (dcrc,) = struct.unpack("<I", buf[end - 4:end])
            self.line_number += 1
            if masked_crc32c(data) != dcrc:
                self.problem(f"byte {self.offset + pos}: record data fails its CRC; record skipped")
            else:
                try:
                    wall, step, values = decode_event(data, self.run.plugins)
                except (_WireError, struct.error, IndexError) as e:
                    self.problem(f"byte {self.offset + pos}: not a readable Event: {e}")
                else:
                    if values or not self.run.header_sent:
                        events.append((wall, step, values))
            pos = end
        del buf[:pos]
        self.offset += pos
        return self._records(events)

    def _records(self, events) -> List[dict]:
        out: List[dict] = []
        run = self.run
        last: Optional[dict] = None
        for wall, step, values in events:
            if not run.header_sent:
                out.append(run.header(wall, os.path.basename(self.source)))
            if not values:
                continue
            step = step if step is not None else 0
            t = wall if wall is not None else 0.0
            if last is not None and last["step"] == step and not (values.keys() & last["values"].keys()):
                last["values"].update(values)
                continue
            last = {"type": "metrics", "seq": run.seq, "step": step, "time": t, "values": dict(values)}
            run.seq += 1
            out.append(last)
        return run.shape(self.source, out)



def make_tail(path: str, on_records, on_problem, context: Dict[str, Any], explicit: bool = False) -> FormatTail:
    folder, split = run_folder(path)
    runs = context.setdefault("tensorboard", {})
    run = runs.get(folder)
    if run is None:
        run = runs[folder] = TBRun(folder)
    if split is not None:
        run.splits[path] = split
    return FormatTail(path, on_records, on_problem, lambda tail: EventFileReader(tail.path, run), key=run.key)
