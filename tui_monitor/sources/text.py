"""Plain-text training logs: progress lines turned into metrics.

For jobs nobody instrumented: ``python train.py | tee log.txt | tui-monitor
watch -`` (standard input), or a file the job prints to (``slurm-1234.out``,
``nohup.out``, a ``tee``'d log) named on the command line, read from its
start (the history) and then followed.

A line is split at ``\\n`` and at ``\\r`` (progress bars redraw with ``\\r``;
one over 64 KiB is skipped and reported), stripped of terminal escapes, and
given to the patterns below; the first that takes it wins and lines no
pattern takes are skipped (a log is mostly other things). User patterns
(``--parse-regex``, Python regexes whose named groups are the metrics, with
``step`` and ``split`` special) come before the built-in ones:

- Keras: an ``Epoch 3/10`` line sets the epoch; the progress line that ends
  the epoch (``32/32 ... - loss: 0.42 - val_loss: 0.51``, Keras 2 or 3, any
  verbosity, and Keras 1's ``67s - loss: ...``) gives its values at that
  epoch (partial-epoch redraws are left out); a second such line after the
  epoch's is ``model.evaluate()``'s: the test split.
- Python dicts, as Hugging Face's ``Trainer`` prints them
  (``{'loss': 0.5, 'grad_norm': 1.2, 'learning_rate': 5e-05, 'epoch': 1.0}``,
  ``{'eval_loss': ...}``; transformers 5 prints the numbers as strings,
  ``{'loss': '3.832', ...}``, and those are read too): read with ``ast.literal_eval`` (no code runs). The
  step is the dict's ``step`` if it has one, else the count of the last
  training progress bar seen, else one more than the last step (an eval dict
  takes the last step). The bar's count is the one it is redrawn with right
  after the dict, for an evaluation's dict too (tqdm redraws at once after
  printing; the count drawn before may be a few steps old); a dict waits for
  that redraw across writes, until the input has been quiet for
  :data:`QUIET` s or ends. The end-of-training summary (``train_runtime``)
  is left out.
- tqdm bars with a postfix (``45/100 [00:10<00:12, 4.5it/s, loss=0.42]``):
  the values at step 45 (each step once).
- Bracketed counters (the PyTorch tutorials): ``Epoch [1/5], Step [100/600],
  Loss: 0.31`` (the step within the epoch counted over the run: 700 for
  epoch 2), ``[1,  2000] loss: 2.187`` (the epoch's length is the largest
  count printed in it), ``Train Epoch: 1 [0/60000 (0%)]\tLoss: 2.30``
  (samples seen), ``Epoch [1/50], Train Loss: 0.91, Val Loss: 0.88``.
- build-nanogpt's ``log.txt``: ``250 train 6.12``, ``250 val 6.01`` (a split
  word is that split's loss; another word names the metric).
- Generic progress lines with a step and at least one ``name value`` pair:
  ``step 100 loss 2.31``, ``iter 100: loss 2.3100, time 12.34ms`` (nanoGPT),
  ``step 100: train loss 2.31, val loss 2.40`` (nanoGPT's eval),
  ``Step 100 | loss=2.31 | lr=1e-3``, ``[epoch 2, iter 50] loss: 0.3``,
  ``step:100/1750 val_loss:4.12``. A split word before the name (``train
  loss``, ``val loss``) names the split; names are read in lower case.
  Timings with a unit (``ms``, ``s``) are read in seconds; totals
  (``train_time``, ``elapsed``) are left out, not taken for a metric
  ``time`` of the train split. A line about an evaluation without a step
  (``validation loss: 3.07``, ``Test set: Average loss: 0.10, Accuracy:
  9682/10000 (97%)``) belongs to the last step seen; ``9682/10000 (97%)`` is
  read as the fraction.

Each file (or standard input) is one run: its header is made up (name from
the file name, run id from the path); rows get the time they were read (for a
file's history, its modification time). Standard input ends the run at end of
file: ``crashed`` when a Python traceback was the last thing printed, else
``finished``.
"""
from __future__ import annotations

import ast
import os
import re
import select
import socket
import sys
import threading
import time
from typing import Any, Dict, List, Optional, Pattern, Sequence, Tuple

from ..schema import split_metric
from ..stream import Problem
from ..stream.reader import new_problems
from .formats import MAX_LINE, FormatTail, LineSplitter, RecordReader, next_seq, run_header, run_id_for
from .naming import file_run_name

__all__ = ["TextParser", "TextReader", "StdinSource", "compile_patterns", "make_tail", "reattach_tty", "sniff"]

_NUM = r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|nan|NaN|inf|Inf)"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][A-Za-z0-9]|\x1b[=>]")
_KERAS_EPOCH = re.compile(r"^\s*Epoch\s+(\d+)\s*/\s*(\d+)\s*$")
_KERAS_PROGRESS = re.compile(r"^\s*(\d+)/(\d+)\s")
_KERAS_OLD = re.compile(r"^\s*\d+s\s+-\s")  # Keras 1: "67s - loss: 2.48 - acc: 0.22"
_KERAS_PAIR = re.compile(r"(?:^|\s)-\s+([A-Za-z_][\w./]*):\s*(" + _NUM + r")")
_TQDM = re.compile(r"(\d+)/(\d+)\s*\[[^\]]*?\]")
_TQDM_PAIR = re.compile(r"([A-Za-z_][\w./-]*)=\s*(" + _NUM + r")")
_SPLIT_WORD = r"(?:train|training|val|valid|validation|eval|test|dev)"
_PAIR = re.compile(r"(?<![\w./-])((?:" + _SPLIT_WORD + r"[ _])?[A-Za-z_][\w./-]*?)(?:\s*[:=]\s*|\s+)(" + _NUM
                   + r")(ms|s|%)?(?![\w.])", re.IGNORECASE)
_STEP_KEYS = ("step", "global_step", "iter", "iteration", "it", "epoch")
#: Counters in brackets: ``Epoch [1/5]``, ``Step [100/600]`` (the PyTorch tutorials).
_COUNTER = re.compile(r"\b(epoch|step|iter|iteration|batch)\s*\[\s*(\d+)\s*/\s*(\d+)\s*\]", re.IGNORECASE)
#: ``Train Epoch: 1 [0/60000 (0%)]`` (PyTorch's MNIST example): the epoch and the samples seen in it.
_EPOCH_PROGRESS = re.compile(r"\bepoch:?\s*(\d+)\s*\[\s*(\d+)\s*/\s*(\d+)\s*(?:\(\s*\d+(?:\.\d*)?%\s*\))?\s*\]",
                             re.IGNORECASE)
#: ``[1,  2000] loss: 2.187`` (PyTorch's CIFAR-10 tutorial): the epoch and the mini-batch in it.
_EPOCH_BATCH = re.compile(r"^\[\s*(\d+)\s*,\s*(\d+)\s*\]")
#: ``250 train 6.12`` / ``250 val 6.01`` (build-nanogpt's log.txt): step, split or metric, value.
_STEP_NAME_VALUE = re.compile(r"^(\d+)\s+([A-Za-z_][\w./-]*)\s+(" + _NUM + r")$")
#: A line about one split as a whole: ``Test set: Average loss: ...``, ``Validation: ...``.
_SPLIT_LINE = re.compile(r"^(" + _SPLIT_WORD + r")(?:\s+set)?\s*[:|-]", re.IGNORECASE)
#: ``9682/10000 (97%)``: a count out of a total, read as the fraction.
_FRACTION = re.compile(r"\b(\d+)\s*/\s*(\d+)\s*\(\s*\d+(?:\.\d*)?%\s*\)")
#: Timings given with a unit are read in seconds; these, being totals rather
#: than a step's time, are left out (as is any that a split word would make a
#: metric of another split: ``train_time`` is no ``time`` of the train split).
_TOTAL_TIME = re.compile(r"(total|elapsed|wall|since|eta|remaining|runtime|uptime)", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 1e-3, "s": 1.0}
_TRACEBACK = "Traceback (most recent call last):"
#: Seconds without a write after which printed dicts stop waiting for the
#: progress bar's redraw (which follows them within milliseconds when it comes).
QUIET = 1.0
_ERROR_LINE = re.compile(r"^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)):?\s?(.*)$")


def compile_patterns(patterns: Sequence[str]) -> List[Pattern]:
    """``--parse-regex`` patterns, checked: each must compile and name at
    least one group that is not ``step`` or ``split``."""
    out = []
    for p in patterns:
        try:
            rx = re.compile(p)
        except re.error as e:
            raise ValueError(f"--parse-regex {p!r}: {e}") from None
        if not set(rx.groupindex) - {"step", "split"}:
            raise ValueError(f"--parse-regex {p!r}: name the metrics with groups, e.g. (?P<loss>[0-9.e+-]+)")
        out.append(rx)
    return out


def _num(text: str) -> Optional[float]:
    try:
        v = float(text)
    except (TypeError, ValueError):
        return None
    return v


def _int(text: Any) -> Optional[int]:
    try:
        v = float(text)
    except (TypeError, ValueError):
        return None
    return int(v) if v == v and abs(v) != float("inf") else None


class TextParser:
    """Lines in, ``(step, split, values)`` out (None for a line that holds no
    metrics). Keeps the little state progress output needs: the Keras epoch,
    the last training bar's count, the last step."""

    def __init__(self, patterns: Sequence[Any] = ()):
        self.patterns = [re.compile(p) if isinstance(p, str) else p for p in patterns]
        self.epoch: Optional[int] = None
        self.keras_epoch_done: Optional[int] = None
        #: that epoch's last summary line: its bar's total, its metrics, its split (None: training's)
        self.keras_summary: Tuple[Optional[str], set, Optional[str]] = (None, set(), None)
        self.last_step = -1
        self.bar_total = 0
        self.bar_step: Optional[int] = None
        self.tqdm_last: Dict[int, int] = {}
        self.traceback = False
        self.error: Optional[Tuple[str, str]] = None
        self.matched = 0
        self.first_epoch: Optional[int] = None   # bracketed counters: the first epoch seen
        self.epoch_counts: Dict[int, int] = {}   # and the largest count printed in each epoch
        # Dicts whose step is the training bar's count wait for the bar's
        # redraw right after them (tqdm.write redraws it at once; the count
        # drawn before may be a few steps old): ``ready`` holds them then.
        self.held: List[Tuple[bool, Dict[str, float]]] = []
        self.ready: List[Tuple[int, Optional[str], Dict[str, float]]] = []
        #: the series read at the last step: a second value of one at that step is not read
        self.step_series: Tuple[int, set] = (-1, set())

    def line(self, text: str) -> Optional[Tuple[int, Optional[str], Dict[str, float]]]:
        text = _ANSI.sub("", text).strip()
        if not text or len(text) > MAX_LINE:
            return None
        self._watch_errors(text)
        out = self._once_a_step(self._parse(text))
        if out is not None:
            self.matched += 1
            self.last_step = out[0]
            self.traceback = False
        return out

    def _once_a_step(self, out):
        """``out`` less the series already read at its step: nanoGPT prints
        the evaluation's ``step 0: train loss ...`` and then the
        iteration's ``iter 0: loss ...``; the first is the step's value (a
        series has one value a step)."""
        if out is None:
            return None
        step, split, values = out
        if step != self.step_series[0]:
            self.step_series = (step, set())
        seen = self.step_series[1]
        fresh = {k: v for k, v in values.items() if split_metric(k, split) not in seen}
        seen.update(split_metric(k, split) for k in fresh)
        return (step, split, fresh) if fresh else None

    def _watch_errors(self, text: str) -> None:
        if text.startswith(_TRACEBACK):
            self.traceback, self.error = True, None
        elif self.traceback:
            m = _ERROR_LINE.match(text)
            if m and not text.startswith("File "):
                self.error = (m.group(1), m.group(2))

    def _parse(self, text: str):
        for rx in self.patterns:
            m = rx.search(text)
            if m:
                values = {k: _num(v) for k, v in m.groupdict().items() if k not in ("step", "split") and v is not None}
                values = {k: v for k, v in values.items() if v is not None}
                if values:
                    step = _int(m.groupdict().get("step"))
                    return (step if step is not None else self.last_step + 1), m.groupdict().get("split"), values
        m = _KERAS_EPOCH.match(text)
        if m:
            self.epoch = _int(m.group(1))
            return None
        m = _KERAS_PROGRESS.match(text)
        pairs = _KERAS_PAIR.findall(text) if " - " in text else None
        if pairs and (m or (self.epoch is not None and _KERAS_OLD.match(text))):
            if m and m.group(1) != m.group(2):
                return None  # a redraw inside the epoch
            # Keras 2's "- ETA: 0s" is the time left, not a metric
            values = {k: float(v) for k, v in pairs if not _TOTAL_TIME.fullmatch(k)}
            if self.epoch is None:
                return self.last_step + 1, None, values
            total = m.group(2) if m else None
            if self.keras_epoch_done == self.epoch:
                last_total, first, split = self.keras_summary
                if set(values) > first and all(split_metric(k)[0] != "train" for k in set(values) - first):
                    # The epoch's last batch was drawn before validation ran,
                    # then the line again with val_*: the values it adds.
                    self.keras_summary = (total, set(values), split)
                    return self.epoch, split, {k: v for k, v in values.items() if k not in first}
                if total == last_total and set(values) == first:
                    return None  # the last batch's line drawn again as the bar is finished
                self.keras_summary = (total, set(values), "test")
                return self.epoch, "test", values  # another bar's summary in the epoch: model.evaluate()
            self.keras_epoch_done, self.keras_summary = self.epoch, (total, set(values), None)
            return self.epoch, None, values
        if text.startswith("{") and text.endswith("}"):
            return self._dict(text)
        m = _TQDM.search(text)
        if m:
            n, total = _int(m.group(1)), _int(m.group(2))
            if n is None or total is None:  # thousands of digits: not a bar
                return None
            if total >= self.bar_total:
                self.bar_total, self.bar_step = total, n
                self.release(n)
            values = {k: float(v) for k, v in _TQDM_PAIR.findall(m.group(0))}
            if values and self.tqdm_last.get(total) != n:
                self.tqdm_last[total] = n
                return n, None, values
            return None
        return self._generic(text)

    def _dict(self, text: str):
        try:
            d = ast.literal_eval(text)
        except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError):
            return None
        if not isinstance(d, dict) or "train_runtime" in d:
            return None
        values = {}
        for k, v in d.items():
            if k in ("step", "global_step") or isinstance(v, bool):
                continue
            if isinstance(v, str):  # transformers 5 prints '3.832': four significant digits, as a string
                v = _num(v)
            if isinstance(v, (int, float)):
                values[str(k)] = float(v)
        if not values:
            return None
        step = _int(d.get("step", d.get("global_step")))
        if step is None:
            evaluating = any(split_metric(k)[0] != "train" for k in values)
            if self.bar_step is not None:
                self.held.append((evaluating, values))
                return None
            step = max(self.last_step, 0) if evaluating else self.last_step + 1
        return step, None, values

    def release(self, bar_step: Optional[int] = None) -> None:
        """Give the held dicts their steps: the training bar's count drawn
        right after them (an evaluation's too: the Trainer evaluates at the
        step the bar shows), or, at the end of the input, the last count
        drawn. A training dict never goes back (a count not past the last
        step is the next step); an evaluation may share its step."""
        bar = bar_step if bar_step is not None else (self.bar_step or 0)
        for evaluating, values in self.held:
            if evaluating:
                step = max(bar, self.last_step, 0)
            else:
                step = bar if bar > self.last_step else self.last_step + 1
            self.ready.append((step, None, values))
            self.last_step = step
            self.matched += 1
        self.held = []

    def _generic(self, text: str):
        m = _STEP_NAME_VALUE.match(text)
        if m:
            step, name, v = _int(m.group(1)), m.group(2), _num(m.group(3))
            if step is None or v is None:
                return None
            key = f"{name.lower()}_loss" if re.fullmatch(_SPLIT_WORD, name, re.IGNORECASE) else name
            return step, None, {key: v}
        step, text = self._counters(text)
        text = _FRACTION.sub(lambda f: repr(int(f.group(1)) / int(f.group(2))) if int(f.group(2)) else f.group(0), text)
        split_line = _SPLIT_LINE.match(text)
        split = split_line.group(1).lower() if split_line else None
        epoch = None
        values: Dict[str, float] = {}
        for name, v, unit in _PAIR.findall(text):
            key = re.sub(r"\s+", "_", name.strip()).lower()
            if key in _STEP_KEYS:
                iv = _int(v)
                if key == "epoch":
                    epoch = iv if epoch is None else epoch
                elif step is None:
                    step = iv
                continue
            x = _num(v)
            if x is None or key in values:
                continue
            scale = _UNIT_SECONDS.get(unit.lower()) if unit else None
            if scale is not None:
                if _TOTAL_TIME.search(key) or split_metric(key)[1] != key:
                    continue  # train_time:305ms, elapsed 12s: not a metric of the step
                x *= scale
            values[key] = x
        if not values:
            return None
        if step is None:
            step = epoch
        if step is None:
            # A line about an evaluation with no step of its own ("validation
            # loss: 3.07", "Test set: Average loss: ..."): the last step seen.
            if split is None and not any(split_metric(k)[0] != "train" for k in values):
                return None
            step = max(self.last_step, 0)
        return step, split, values

    def _counters(self, text: str) -> Tuple[Optional[int], str]:
        """The step that bracketed counters give (``Epoch [2/5], Step
        [100/600]``, ``Train Epoch: 2 [640/60000 (1%)]``, ``[2, 2000]``), and
        the text without them. A count within an epoch becomes a count over
        the run: the epochs before it (numbered from the first seen) times
        the epoch's length (its total, or the largest count printed in it)."""
        m = _EPOCH_PROGRESS.search(text)
        if m:
            epoch, n, total = int(m.group(1)), int(m.group(2)), int(m.group(3))
            return self._global(epoch, n, total), text[:m.start()] + text[m.end():]
        m = _EPOCH_BATCH.match(text)
        if m:
            epoch, n = int(m.group(1)), int(m.group(2))
            return self._global(epoch, n, None), text[m.end():]
        epoch = within = total = None
        for c in _COUNTER.finditer(text):
            if c.group(1).lower() == "epoch":
                epoch = int(c.group(2))
            else:
                within, total = int(c.group(2)), int(c.group(3))
        if epoch is None and within is None:
            return None, text
        rest = _COUNTER.sub(" ", text)
        if within is None:
            return epoch, rest
        return (within if epoch is None else self._global(epoch, within, total)), rest

    def _global(self, epoch: int, n: int, total: Optional[int]) -> int:
        if self.first_epoch is None:
            self.first_epoch = epoch
        self.epoch_counts[epoch] = max(self.epoch_counts.get(epoch, 0), n)
        if total is not None:
            return (epoch - self.first_epoch) * total + n
        return sum(c for e, c in self.epoch_counts.items() if e < epoch) + n


class TextReader(RecordReader):
    """Bytes of a text log in, the run's records out."""

    def __init__(self, source: str, name: str, run_id: str, patterns: Sequence[Any] = (),
                 clock=time.time, state: Optional[Dict[str, Any]] = None, tags: Optional[dict] = None):
        super().__init__(source)
        self.parser = TextParser(patterns)
        self.name, self.run_id, self.clock = name, run_id, clock
        self.state = state if state is not None else {}
        self.state.setdefault("seq", 0)
        self.tags = tags or {}
        self.lines = LineSplitter(split_cr=True)

    @property
    def pending(self) -> bytes:
        """The unfinished last line (at most :data:`.formats.MAX_LINE` bytes)."""
        return self.lines.pending

    def feed(self, chunk: bytes) -> List[dict]:
        lines = self.lines.feed(chunk)
        return self._lines([raw for _, raw in lines]) if lines else []

    def finish(self) -> List[dict]:
        """End of input: the last line counts even without its newline."""
        rest = self.lines.rest()
        return (self._lines([rest]) if rest.strip() else []) + self.flush()

    def _lines(self, lines: List[Optional[bytes]]) -> List[dict]:
        out: List[dict] = []
        now = None
        parse = self.parser.line
        for raw in lines:
            self.line_number += 1
            if raw is None:
                self.problem(self.lines.too_long, "warning")
                continue
            if not raw:
                continue
            got = parse(raw.decode("utf-8", "replace"))
            if self.parser.ready or got is not None:
                if now is None:
                    now = self.clock()
                ready, self.parser.ready = self.parser.ready, []
                for item in ready + ([got] if got is not None else []):
                    self._record(out, now, *item)
        return out

    @property
    def holding(self) -> bool:
        """Whether printed dicts wait for the progress bar's redraw to give
        them their step (it comes right after them, in the next write)."""
        return bool(self.parser.held)

    def flush(self) -> List[dict]:
        """The dicts still waiting for a redraw, with the last count drawn:
        none is coming (end of input, or the writer has been quiet)."""
        if not self.parser.held:
            return []
        self.parser.release()
        out: List[dict] = []
        ready, self.parser.ready = self.parser.ready, []
        now = self.clock()
        for item in ready:
            self._record(out, now, *item)
        return out

    def at_end(self, mtime: float, now: float) -> List[dict]:
        return self.flush() if now - mtime >= QUIET else []

    def _record(self, out: List[dict], now: float, step: int, split: Optional[str], values: Dict[str, float]) -> None:
        if not self.state.get("header_sent"):
            self.state["header_sent"] = True
            out.append(run_header(next_seq(self.state), self.run_id, self.name, now,
                                  tags={"source": "text", **self.tags}))
        rec = {"type": "metrics", "seq": next_seq(self.state), "step": step, "time": now, "values": values}
        if split:
            rec["split"] = split
        out.append(rec)

    def end_record(self) -> Optional[dict]:
        if not self.state.get("header_sent"):
            return None
        rec = {"type": "end", "seq": next_seq(self.state), "time": self.clock(), "status": "finished", "dropped": 0,
               "step": max(self.parser.last_step, 0)}
        if self.parser.error is not None:
            etype, msg = self.parser.error
            rec["status"] = "crashed"
            rec["error"] = {"type": etype, "message": msg}
        return rec


def sniff(head: bytes, path: str = "") -> bool:
    """Whether ``head`` (a file's first bytes) is printed training output:
    at least two lines the built-in patterns read as metrics (one, when
    that is all the file has)."""
    parser = TextParser()
    found = 0
    lines = re.split(rb"\r\n|\r|\n", head)
    complete = lines[:-1] if lines and not head.endswith((b"\n", b"\r")) else lines
    for raw in complete:
        if parser.line(raw.decode("utf-8", "replace")) is not None or parser.ready:
            parser.ready = []
            found += 1
            if found >= 2:
                return True
    parser.release()
    return found + len(parser.ready) >= 2


def make_tail(path: str, on_records, on_problem, context: Dict[str, Any], explicit: bool = False) -> FormatTail:
    patterns = context.get("parse_regex") or ()
    name = file_run_name(path, keep_extension=True)

    def reader(tail: FormatTail) -> TextReader:
        return TextReader(tail.path, name, run_id_for("text", path), patterns, clock=tail.mtime, state=tail.state,
                          tags={"path": os.path.abspath(path)})

    return FormatTail(path, on_records, on_problem, reader, key=("text", os.path.abspath(path)))


# ---------------------------------------------------------------- standard input

def reattach_tty() -> bool:
    """Point file descriptor 0 back at the terminal (``/dev/tty``), so a TUI
    can read keys while the metrics come through a pipe. Call after
    :class:`StdinSource` took the pipe. False when there is no terminal."""
    try:
        if os.isatty(0):
            return True
        fd = os.open("/dev/tty", os.O_RDONLY)
    except OSError:
        return False
    os.dup2(fd, 0)
    os.close(fd)
    try:
        sys.stdin = open(0, encoding="utf-8", errors="replace", closefd=False)
    except OSError:
        pass
    return True


class StdinSource:
    """Standard input (a pipe from the training job) as one text run. Takes
    a duplicate of fd 0 at once, so fd 0 can be given back to the terminal
    (:func:`reattach_tty`)."""

    #: A pipe has no history to catch up on: what comes is live (the
    #: follower interface that :attr:`Ingest.catching_up` asks).
    catching_up = False

    def __init__(self, on_records, on_problem, patterns: Sequence[Any] = (), fd: int = 0, name: str = "stdin"):
        self.on_records, self.on_problem = on_records, on_problem
        self.fd = os.dup(fd)
        started = time.time()
        self.key = ("stdin", os.getpid(), started)
        self.reader = TextReader("<stdin>", name, f"stdin-{socket.gethostname()}-{os.getpid()}-{int(started)}",
                                 patterns)
        self.stopped = threading.Event()
        self.eof = False
        self._thread: Optional[threading.Thread] = None
        self._reported = 0  # the reader's problems handed on

    def start(self) -> "StdinSource":
        self._thread = threading.Thread(target=self.read_all, name="tui-monitor-stdin", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 0.5) -> None:
        self.stopped.set()
        if self._thread is not None:
            self._thread.join(timeout)  # a blocked read() ends with the process

    def read_all(self) -> None:
        """Read to end of input, in the calling thread."""
        while not self.eof and not self.stopped.is_set():
            if self.reader.holding and not _readable(self.fd, QUIET):
                self._send(self.reader.flush())  # no redraw came after the dicts: the last count drawn
                continue
            try:
                data = os.read(self.fd, 1 << 16)
            except InterruptedError:
                continue
            except OSError as e:
                self.on_problem(Problem("<stdin>", self.reader.line_number, f"read failed: {e}", "warning"))
                data = b""
            if not data:
                self.eof = True
                records = self.reader.finish()
                end = self.reader.end_record()
                if end is not None:
                    records.append(end)
            else:
                records = self.reader.feed(data)
            self._send(records)
        try:
            os.close(self.fd)
        except OSError:
            pass

    def _send(self, records: List[dict]) -> None:
        problems, self._reported = new_problems(self.reader, self._reported)
        for p in problems:
            self.on_problem(p)
        if records:
            self.on_records(self.key, records)


def _readable(fd: int, timeout: float) -> bool:
    """Whether ``fd`` has input (or its end) within ``timeout`` seconds."""
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    except (OSError, ValueError):
        return True


def attach(ingest: Any, patterns: Sequence[Any] = (), stdin: bool = False) -> Optional[StdinSource]:
    """Give an :class:`~tui_monitor.sources.Ingest` (not started yet) the
    ``--parse-regex`` patterns for the text files it follows and, with
    ``stdin``, standard input as one more source."""
    for follower in ingest.followers:
        if hasattr(follower, "context"):
            follower.context["parse_regex"] = list(patterns)
    if not stdin:
        return None
    source = StdinSource(ingest.records, ingest.problem, patterns)
    ingest.followers.append(source)  # started, stopped and read like the followers
    return source
