"""Which reader follows which file: the one place that dispatches by file type.

A file is recognised by its name or place where that is certain, else by its
first bytes (:data:`HEAD`), so a log is read whatever it was called:

=================================  ==============================  ===============
file                               recognised by                   reader
=================================  ==============================  ===============
``*.jsonl``                        name; or a first line that is   the stream
                                   a stream record                 format
``events.out.tfevents.*``          name; or TFRecord framing       :mod:`.tfevents`
                                   (a length and its CRC)
``trainer_state.json``             name; or a JSON object with     :mod:`.hftrainer`
                                   ``log_history``
``mlruns/<exp>/<run>/metrics/*``   place (a run folder with        :mod:`.mlflowstore`
                                   ``meta.yaml``)
``wandb/*run-*/run-*.wandb``       name; or W&B's ``:W&B`` magic   :mod:`.wandblog`
CSV (``metrics.csv``,              content: a header with a step,  :mod:`.csvlog`
``training.log``, ``results.csv``) epoch or loss-like column
printed output (``*.log``,         content: progress lines in      :mod:`.text`
``*.txt``, ``*.out``, ``*.err``)   the first 64 KiB
=================================  ==============================  ===============

A file named on the command line is read whatever it holds (as text when
nothing else takes it). A file found in a folder is read only when
recognised; :class:`Discovery` remembers its verdicts (looking again when a
file changes while it is still too short to tell) and reports the files it
skipped, folder by folder, with the reason, in the problems list. The files
a tracker keeps beside its logs (an MLflow run's ``params/``, a W&B run's
``files/``) are its own: skipped, and said so.
"""
from __future__ import annotations

import os
import re
import struct
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Tuple

from ..stream import Problem
from ..stream.files import NotRegularFile, open_regular
from . import csvlog, hftrainer, mlflowstore, text, tfevents, wandblog
from .tail import FileTail, OnProblem, OnRecords

__all__ = ["FORMATS", "HEAD", "Discovery", "Format", "Verdict", "by_name", "discoverable", "format_of", "identify",
           "make_tail"]

#: Bytes of a file looked at to recognise it.
HEAD = 64 * 1024
EMPTY = "empty so far"
#: Bytes compared to tell a file that grew from one rewritten in place.
PREFIX = 4096

MakeTail = Callable[[str, OnRecords, OnProblem, Dict[str, Any], bool], Optional[FileTail]]

#: Files that are never logs: checkpoints, weights, arrays, images, archives.
_BINARY = {".pt", ".pth", ".ckpt", ".bin", ".safetensors", ".pkl", ".pickle", ".npy", ".npz", ".h5", ".hdf5",
           ".keras", ".onnx", ".pb", ".tflite", ".joblib", ".msgpack", ".gguf", ".png", ".jpg", ".jpeg", ".gif",
           ".webp", ".bmp", ".svg", ".pdf", ".zip", ".gz", ".tgz", ".tar", ".bz2", ".xz", ".zst", ".whl",
           ".parquet", ".arrow", ".feather", ".mp4", ".wav", ".so", ".pyc", ".lock", ".db", ".sqlite"}
#: Extensions of printed output; only these are read as text when found in a folder.
_TEXT = {".log", ".txt", ".out", ".err"}


class Format(NamedTuple):
    """One kind of file: how it is recognised and how it is followed."""
    name: str
    by_name: Callable[[str], bool]                      #: path -> certain from its name or place alone
    sniff: Optional[Callable[[bytes, str], bool]]       #: (first bytes, path) -> recognised by content
    make: MakeTail

    def __repr__(self) -> str:
        return f"<Format {self.name}>"


class Verdict(NamedTuple):
    """What :func:`identify` says of one file."""
    format: Optional[Format]
    reason: str = ""      #: why it is not read (when ``format`` is None)
    final: bool = True    #: False: too little written yet to tell; look again when it grows


def _stream(path: str, on_records: OnRecords, on_problem: OnProblem, context: Dict[str, Any],
            explicit: bool) -> FileTail:
    return FileTail(path, on_records, on_problem)


def _is_stream_line(head: bytes, path: str) -> bool:
    import json
    line = head.split(b"\n", 1)[0].strip()
    if not line.startswith(b"{") or len(head.split(b"\n", 1)) < 2:
        return False
    try:
        obj = json.loads(line)
    except ValueError:
        return False
    return isinstance(obj, dict) and obj.get("type") in ("run", "metrics", "meta", "grads", "heartbeat",
                                                           "system", "dropped", "end") and "seq" in obj


def _is_tfrecord(head: bytes, path: str) -> bool:
    if len(head) < 12:
        return False
    (length,) = struct.unpack("<Q", head[:8])
    (crc,) = struct.unpack("<I", head[8:12])
    return length < 1 << 31 and tfevents.masked_crc32c(head[:8]) == crc


#: In order: the first whose name rule or sniff takes a file reads it.
FORMATS: Tuple[Format, ...] = (
    Format("jsonl", lambda path: path.endswith(".jsonl"), _is_stream_line, _stream),
    Format("tensorboard", lambda path: os.path.basename(path).startswith("events.out.tfevents."), _is_tfrecord,
           tfevents.make_tail),
    Format("wandb", wandblog.is_run_file, wandblog.sniff, wandblog.make_tail),
    Format("mlflow", mlflowstore.is_metric_file, None, mlflowstore.make_tail),
    Format("hf-trainer", hftrainer.is_state_file, hftrainer.sniff, hftrainer.make_tail),
    Format("csv", lambda path: False, csvlog.sniff, csvlog.make_tail),
    Format("text", lambda path: False, text.sniff, text.make_tail),
)
_BY_NAME = {f.name: f for f in FORMATS}


def _read_head(path: str, size: int = HEAD) -> Tuple[Optional[bytes], str]:
    try:
        with open(open_regular(path), "rb") as f:  # a FIFO would block, a device never end
            return f.read(size), ""
    except NotRegularFile as e:
        return None, f"not a regular file ({e.kind})"
    except OSError as e:
        return None, f"cannot read: {e.strerror or e}"


def _read_prefix(path: str) -> Tuple[Optional[bytes], str]:
    return _read_head(path, PREFIX)


def identify(path: str, explicit: bool = False, head: Optional[bytes] = None) -> Verdict:
    """Which format reads ``path``: named on the command line
    (``explicit``) anything not recognised is read as text (a ``.csv`` as
    CSV, whose reader says why it is not a metrics log); found in a folder
    only what is recognised."""
    verdict = by_name(path, explicit)
    if verdict is not None:
        return verdict
    ext = os.path.splitext(path)[1].lower()
    if head is None:
        head, why = _read_head(path)
        if head is None:
            return Verdict(None, why, final=False)
    if not head:
        return Verdict(None, EMPTY, final=False)
    for fmt in FORMATS:
        if fmt.sniff is None or (fmt.name == "text" and not explicit and ext not in _TEXT):
            continue
        if fmt.sniff(head, path):
            return Verdict(fmt)
    if explicit:
        return Verdict(_BY_NAME["csv"] if ext == ".csv" else _BY_NAME["text"])
    return Verdict(None, _why_not(head, ext), final=len(head) >= HEAD)


def by_name(path: str, explicit: bool = False) -> Optional[Verdict]:
    """The verdict that ``path``'s name and place decide without reading it
    (None: its content must tell)."""
    for fmt in FORMATS:
        if fmt.by_name(path):
            return Verdict(fmt)
    if explicit:
        return None
    owner = mlflowstore.owned_by(path)
    if owner is None:
        owner = wandblog.owned_by(path)
    if owner is not None:
        return Verdict(None, owner)  # a tracker's own file, read with its run or said why not
    if _companion(path):
        return Verdict(None, "")  # read with the log beside it: nothing to report
    if os.path.isdir(path):
        return Verdict(None, "")  # a link to a folder (wandb's latest-run): its files are found where they are
    if os.path.splitext(path)[1].lower() in _BINARY:
        return Verdict(None, "weights, data or media, not logs")
    return None


def _companion(path: str) -> bool:
    """A file read as part of the run beside it: Lightning's ``hparams.yaml``,
    the model's ``config.json`` beside a ``trainer_state.json``."""
    folder, name = os.path.split(path)
    if name == "hparams.yaml":
        return True
    return name == "config.json" and os.path.exists(os.path.join(folder, hftrainer.NAME))


def _why_not(head: bytes, ext: str) -> str:
    if b"\0" in head[:4096]:
        return "a binary file of no format the monitor reads"
    if ext == ".csv":
        return csvlog.why_not(head)
    if ext == ".json":
        return "JSON without log_history: not a trainer state"
    if ext in _TEXT:
        return f"no training progress lines in its first {HEAD // 1024} KiB"
    return "no log format the monitor reads (named on the command line, a file is read as printed output)"


def format_of(path: str, explicit: bool = False) -> Optional[Format]:
    """The format that follows ``path`` (None: not followed, or not yet
    decidable)."""
    return identify(path, explicit).format


def discoverable(path: str) -> bool:
    """Whether ``path`` found in a folder is followed."""
    return format_of(path) is not None


def make_tail(path: str, on_records: OnRecords, on_problem: OnProblem, explicit: bool = False,
              context: Optional[Dict[str, Any]] = None, fmt: Optional[Format] = None) -> Optional[FileTail]:
    """The tail that follows ``path`` (None when no format takes it, or
    nothing is written yet to tell which). ``context`` is one dict per
    follower, where formats keep what several files share (TensorBoard's
    one run per folder, an MLflow run's metric files). ``fmt``: the format
    already found for it (:meth:`Discovery.format`), not looked for again."""
    if fmt is None:
        fmt = format_of(path, explicit)
    if fmt is None:
        return None
    return fmt.make(path, on_records, on_problem, context if context is not None else {}, explicit)


# ---------------------------------------------------------------- folders

class Discovery:
    """Decides which files found in folders are followed, remembers each
    verdict (a file is looked at again only while it is too short to tell,
    or when it is replaced), and reports the files skipped, one problem per
    folder and scan, naming each with its reason."""

    #: Files named in one report; the rest are counted.
    NAMED = 6

    def __init__(self, on_problem: OnProblem):
        self.on_problem = on_problem
        #: path -> (inode, size, mtime) (None: decided by its name), the first bytes, the verdict
        self._verdicts: Dict[str, Tuple[Optional[Tuple[int, int, int]], bytes, Verdict]] = {}
        self._skipped: Dict[str, List[Tuple[str, str]]] = {}

    def wanted(self, path: str) -> bool:
        """Whether to follow ``path``, found in a folder. A file decided by
        its name or place (a stream file; weights or images, of which a data
        set may hold millions) is decided once, without reading it."""
        seen = self._verdicts.get(path)
        if seen is not None and seen[0] is None:
            return seen[2].format is not None
        verdict = by_name(path)
        if verdict is not None:
            self._verdicts[path] = (None, b"", verdict)
            self._note_skipped(path, verdict, None)
            return verdict.format is not None
        try:
            st = os.stat(path)
        except OSError:
            return False
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        seen = self._verdicts.get(path)
        if seen is not None and seen[0] == stamp:
            return seen[2].format is not None
        head, _ = _read_head(path) if seen is None or not seen[2].final else _read_prefix(path)
        if seen is not None and seen[2].final and head is not None and head == seen[1] and seen[0][0] == stamp[0]:
            # Grown, not rewritten (its start is as it was): the verdict holds.
            self._verdicts[path] = (stamp, seen[1], seen[2])
            return seen[2].format is not None
        if seen is not None and seen[2].final:
            head, _ = _read_head(path)
        verdict = identify(path, head=head)
        self._verdicts[path] = (stamp, (head or b"")[:PREFIX], verdict)
        self._note_skipped(path, verdict, seen)
        return verdict.format is not None

    def format(self, path: str) -> Optional[Format]:
        """The format :meth:`wanted` found for ``path`` (None: not decided, or none)."""
        seen = self._verdicts.get(path)
        return seen[2].format if seen is not None else None

    def _note_skipped(self, path: str, verdict: Verdict, seen: Any) -> None:
        if verdict.format is None and verdict.reason not in ("", EMPTY) and (seen is None or seen[2].reason != verdict.reason):
            folder, name = os.path.split(path)
            self._skipped.setdefault(folder, []).append((name, verdict.reason))

    def forget(self, path: str) -> None:
        self._verdicts.pop(path, None)

    def report(self) -> None:
        """One problem per folder for the files skipped since the last
        report: the files grouped by the reason they were skipped for.
        Folders that skipped the same files for the same reasons (a trainer's
        checkpoint-N folders, each with its weights) are one problem, naming
        the folders."""
        skipped, self._skipped = self._skipped, {}
        alike: Dict[Tuple[Tuple[str, str], ...], List[str]] = {}
        for folder, files in sorted(skipped.items()):
            alike.setdefault(tuple(sorted(files)), []).append(folder)
        for files, folders in alike.items():
            by_reason: Dict[str, List[str]] = {}
            for name, reason in files:
                by_reason.setdefault(reason, []).append(name)
            groups = [f"{_first_named(names, self.NAMED)}: {reason}" for reason, names in by_reason.items()]
            what = "file" if len(files) == 1 else "files"
            if len(folders) == 1:
                where, each = folders[0], ""
            else:
                parent = os.path.commonpath(folders)
                shown = sorted((os.path.relpath(f, parent) for f in folders), key=_natural)
                where, each = parent, f" in each of {len(folders)} folders ({_first_named(shown, self.NAMED)})"
            self.on_problem(Problem(where, 0, f"skipped {len(files)} {what}{each}: " + "; ".join(groups),
                                    "warning"))


def _natural(name: str) -> List[Any]:
    """A sort key that puts checkpoint-200 before checkpoint-1000."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)]


def _first_named(names: List[str], named: int) -> str:
    """The first ``named`` of ``names``, and how many more there are."""
    return ", ".join(names[:named]) + (f" and {len(names) - named} more" if len(names) > named else "")
