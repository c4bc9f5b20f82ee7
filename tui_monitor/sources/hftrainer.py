"""Hugging Face ``trainer_state.json``: the file every ``Trainer`` run leaves.

The ``Trainer`` writes it into each checkpoint (``checkpoint-500/``) and, with
``save_state()``, into its output folder: a JSON object whose ``log_history``
lists what it logged, each entry with its ``step``: training entries
(``loss``, ``grad_norm``, ``learning_rate``, ``epoch``), evaluations
(``eval_loss``, ...: the val split, as stream keys map) and, at the end, the
summary (``train_runtime``, ...) that says the training finished.

The run is the output folder: every ``trainer_state.json`` under it (one per
checkpoint, each holding the history so far) feeds one run, each entry once.
The file is written whole each time, so it is read whole again when it
changes (:class:`WholeFileTail`) and parsed once it is complete JSON; a file
still being written waits for the rest. Entries carry no time: they get the
file's modification time. The model's ``config.json`` beside it and the
state's batch size and step counts are the run's config (``training_args.bin``
is a pickle and is never loaded).
"""
from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, List, Set, Tuple

from ..stream.files import open_regular
from .formats import FormatTail, RecordReader, WholeFileTail, end_record, run_header, run_id_for
from .naming import folder_run_name

__all__ = ["HFRun", "TrainerStateReader", "is_state_file", "make_tail", "sniff"]

NAME = "trainer_state.json"
#: A trainer_state.json larger than this is not read (a million log entries is ~200 MB).
MAX_BYTES = 256 << 20
_CHECKPOINT = re.compile(r"checkpoint-\d+\Z")
_STATE_CONFIG = ("train_batch_size", "max_steps", "num_train_epochs", "logging_steps", "eval_steps", "save_steps")
_SUMMARY = ("train_runtime", "train_samples_per_second", "train_steps_per_second", "total_flos", "train_loss")


def is_state_file(path: str) -> bool:
    return os.path.basename(path) == NAME


def sniff(head: bytes, path: str = "") -> bool:
    """A JSON object with a ``log_history`` key (a trainer state under another name)."""
    return head.lstrip().startswith(b"{") and b'"log_history"' in head


def run_folder(path: str) -> str:
    """The run's folder: the output folder above ``checkpoint-N/``, else the file's own."""
    folder = os.path.dirname(os.path.abspath(path))
    return os.path.dirname(folder) if _CHECKPOINT.match(os.path.basename(folder)) else folder


class HFRun:
    """What the state files of one output folder share: the entries sent,
    the ``seq`` count, whether the header and the end went out."""

    def __init__(self, folder: str):
        self.folder = folder
        self.key = ("hf-trainer", folder)
        self.state: Dict[str, Any] = {"seq": 0}
        self.sent: Set[Tuple[Any, ...]] = set()
        self.header_sent = False
        self.ended = False
        self.last_step = 0

    def next_seq(self) -> int:
        seq = self.state["seq"]
        self.state["seq"] = seq + 1
        return seq

    def config(self, state: Dict[str, Any], beside: str) -> Dict[str, Any]:
        """The state's step counts and batch size, and the model's
        ``config.json`` (beside the state file, or in the output folder)."""
        config = {k: state[k] for k in _STATE_CONFIG if isinstance(state.get(k), (int, float, str))}
        model = _read_json(os.path.join(beside, "config.json")) or _read_json(os.path.join(self.folder, "config.json"))
        if isinstance(model, dict):
            config["model"] = {k: v for k, v in model.items() if isinstance(v, (int, float, str, bool))}
        return config


def _read_json(path: str) -> Any:
    try:
        with open(open_regular(path), "rb") as f:
            return json.loads(f.read(1 << 20))
    except (OSError, ValueError):
        return None


class TrainerStateReader(RecordReader):
    """A ``trainer_state.json`` in, once complete, the entries not yet sent out."""

    def __init__(self, source: str, run: HFRun):
        super().__init__(source)
        self.run = run
        self.buf = bytearray()
        self.too_big = False

    @property
    def done(self) -> bool:
        return self.too_big

    def feed(self, chunk: bytes) -> List[dict]:
        if len(self.buf) + len(chunk) > MAX_BYTES:
            self.too_big = True
            self.problem(f"larger than {MAX_BYTES >> 20} MiB; not read")
            self.buf = bytearray()
            return []
        self.buf += chunk
        return []

    def at_end(self, mtime: float, now: float) -> List[dict]:
        out: List[dict] = []
        text = bytes(self.buf).strip()
        if text.endswith(b"}"):
            try:
                state = json.loads(text)
            except ValueError:
                state = None  # still being written: the rest comes with the next change
            if isinstance(state, dict):
                self.buf = bytearray()
                out = self._entries(state, mtime)
        return out

    def _entries(self, state: Dict[str, Any], mtime: float) -> List[dict]:
        history = state.get("log_history")
        if not isinstance(history, list):
            self.problem("no log_history list; nothing to read", "warning")
            return []
        run, out = self.run, []
        for i, entry in enumerate(history):
            self.line_number = i + 1
            if not isinstance(entry, dict):
                continue
            step = entry.get("step")
            if not isinstance(step, int) or isinstance(step, bool):
                self.problem("log entry without an integer step; skipped", "warning")
                continue
            sig = (step, tuple(sorted((k, repr(v)) for k, v in entry.items())))
            if sig in run.sent:
                continue
            run.sent.add(sig)
            if not run.header_sent:
                run.header_sent = True
                out.append(run_header(run.next_seq(), run_id_for("hf", run.folder), folder_run_name(run.folder),
                                      mtime, run.config(state, os.path.dirname(self.source)), {"source": "hf-trainer", "path": run.folder}))
            run.last_step = max(run.last_step, step)
            if "train_runtime" in entry:  # the summary: the training finished
                if not run.ended:
                    run.ended = True
                    out.append(end_record(run.next_seq(), mtime, "finished", step))
                continue
            values = {k: v for k, v in entry.items() if k != "step" and k not in _SUMMARY
                      and isinstance(v, (int, float)) and not isinstance(v, bool)}
            if values:
                out.append({"type": "metrics", "seq": run.next_seq(), "step": step, "time": mtime, "values": values})
        steps, total = state.get("global_step"), state.get("max_steps")
        if (run.header_sent and not run.ended and isinstance(steps, int) and isinstance(total, int)
                and 0 < total <= steps):  # a checkpoint at the last step: the training got to its end
            run.ended = True
            out.append(end_record(run.next_seq(), mtime, "finished", steps))
        return out


def make_tail(path: str, on_records, on_problem, context: Dict[str, Any], explicit: bool = False) -> FormatTail:
    folder = run_folder(path)
    runs = context.setdefault("hf-trainer", {})
    run = runs.get(folder)
    if run is None:
        run = runs[folder] = HFRun(folder)
    return WholeFileTail(path, on_records, on_problem, lambda tail: TrainerStateReader(tail.path, run), key=run.key)
