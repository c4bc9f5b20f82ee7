"""The stream format v1 (docs/stream-format.md) as pydantic models.

This module is the reading side's contract: one model per record type, plus
the socket handshake messages. Validation is strict about JSON types (a
``"3"`` is not a step, ``true`` is not a number) and lenient about everything
a newer writer may add: unknown fields are ignored, never fatal. Unknown
record *types* are the reader's business (:mod:`tui_monitor.stream` skips and
counts them).

Metric values are JSON numbers or one of the strings ``"NaN"``,
``"Infinity"``, ``"-Infinity"``; they decode to Python ``float`` bit for bit,
and integers stay ``int`` (of any size).

Required fields are the ones a reader cannot do without (``seq`` on every
stream record, ``run_id`` in the header, ``step``/``time``/``values`` in
metrics, ...); the rest default to "not known".
"""
from __future__ import annotations

import functools
import math
from typing import Annotated, Any, Dict, List, Literal, Optional, Tuple, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from .ranges import INT32_MAX, INT64_MAX, INT64_MIN, TIME_MAX, TIME_MIN

FORMAT_VERSION = 1

#: The non-finite spellings of the format (those of the protobuf JSON mapping).
NONFINITE: Dict[str, float] = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}

__all__ = [
    "FORMAT_VERSION", "NONFINITE", "INT64_MIN", "INT64_MAX", "INT32_MAX", "TIME_MIN", "TIME_MAX", "MetricValue", "decode_metric_value", "encode_metric_value",
    "ModelInfo", "ErrorInfo", "LayerGrad",
    "RunHeader", "Meta", "Metrics", "Grads", "Heartbeat", "System", "Dropped", "End",
    "Hello", "Challenge", "Auth", "Welcome", "Refused", "Ack",
    "Record", "Message", "RECORD_TYPES", "MESSAGE_TYPES", "TYPES",
    "SPLITS", "normalise_split", "split_metric",
]


# ---------------------------------------------------------------- values

def decode_metric_value(v: Any) -> Union[int, float]:
    """A metric value from its JSON form; raise ``ValueError`` for anything else.

    ``int`` (not ``bool``) and ``float`` pass through unchanged; the three
    non-finite strings become the matching float.
    """
    t = type(v)
    if t is float or t is int:
        return v
    if t is str:
        try:
            return NONFINITE[v]
        except KeyError:
            raise ValueError(f"expected a number or one of \"NaN\", \"Infinity\", \"-Infinity\", got the string {v[:40]!r}") from None
    raise ValueError(f"expected a number, got {_json_type_name(v)}")


def encode_metric_value(v: Union[int, float]) -> Union[int, float, str]:
    """The JSON form of a metric value: non-finite floats as the spec's strings."""
    if type(v) is float and not math.isfinite(v):
        return "NaN" if v != v else ("Infinity" if v > 0 else "-Infinity")
    return v


def _json_type_name(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, dict):
        return "an object"
    if isinstance(v, list):
        return "an array"
    return type(v).__name__


#: A metric value: int, or float (non-finite spelled as strings on the wire).
MetricValue = Annotated[Union[int, float], BeforeValidator(decode_metric_value)]


# ---------------------------------------------------------------- ranges
#
# Every number of a record is checked here, once, at decode: past this edge a
# step fits the store's int64 columns, a pid can be given to kill(), a time to
# the clock functions. A value outside its range is an error in a field the
# record cannot do without (the record is not read) and is left out, with a
# warning, from one it can (see ``stream.decode``).

#: ``seq`` of a stream record: 0, 1, 2, ...
Seq = Annotated[int, Field(ge=0, le=INT64_MAX)]
#: A training step: the store keeps them as int64.
Step = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
#: A count (records dropped, parameters): never negative.
Count = Annotated[int, Field(ge=0, le=INT64_MAX)]
#: A process id: what ``kill()`` takes as one process (0 and negatives name groups).
Pid = Annotated[int, Field(ge=1, le=INT32_MAX)]
#: A rank or a local rank (torch keeps them as int32), and a world size.
Rank = Annotated[int, Field(ge=0, le=INT32_MAX)]
WorldSize = Annotated[int, Field(ge=1, le=INT32_MAX)]
#: A format version.
Version = Annotated[int, Field(ge=0, le=INT32_MAX)]
#: A wall-clock time (epoch seconds), finite and within what a clock can show.
Time = Annotated[float, Field(ge=TIME_MIN, le=TIME_MAX, allow_inf_nan=False)]

#: Fields never left out when out of range (the record is refused instead):
#: leaving a rank out would merge a rank's records into rank 0's.
IDENTITY_FIELDS = frozenset(("rank", "run_id"))


# ---------------------------------------------------------------- base

class _Model(BaseModel):
    # strict: JSON types are taken as they are (no "3" -> 3, no true -> 1;
    # an int is accepted where a float is expected and becomes a float).
    model_config = ConfigDict(extra="ignore", strict=True)


def _build(cls, fields: Dict[str, Any], fields_set: set):
    """Construct ``cls`` from already-validated ``fields`` without validation.

    The stream reader's hot path checks types explicitly (cheaper than both
    ``model_validate`` and ``model_construct``) and then builds the model with
    this. ``fields`` must hold every field of ``cls``. The test suite checks
    that the result equals ``cls.model_validate`` of the same input.
    """
    m = cls.__new__(cls)
    _set = object.__setattr__
    _set(m, "__dict__", fields)
    _set(m, "__pydantic_fields_set__", fields_set)
    _set(m, "__pydantic_extra__", None)
    _set(m, "__pydantic_private__", None)
    return m


# ---------------------------------------------------------------- stream records

class ModelInfo(_Model):
    """The model's flexibility (any field may be unknown)."""

    params: Optional[Count] = None
    trainable_params: Optional[Count] = None
    depth: Optional[Count] = None
    width: Optional[Count] = None
    input_features: Optional[Count] = None
    layers: Optional[List[str]] = None


class RunHeader(_Model):
    """``run``: the first record of a stream."""

    type: Literal["run"] = "run"
    seq: Seq
    v: Version = FORMAT_VERSION
    run_id: str
    name: str = ""
    start: Optional[Time] = None
    host: str = ""
    pid: Optional[Pid] = None
    rank: Rank = 0
    world_size: WorldSize = 1
    config: Dict[str, Any] = Field(default_factory=dict)
    model: Optional[ModelInfo] = None
    tags: Dict[str, Any] = Field(default_factory=dict)
    local_rank: Optional[Rank] = None
    job_id: Optional[str] = None
    small: bool = False  #: a rank writing only what the multi-rank view needs

    def amended(self, meta: "Meta") -> "RunHeader":
        """This header with a ``meta`` record applied: fields given replace
        the header's, objects (``config``, ``tags``, ``model``) are merged."""
        update: Dict[str, Any] = {}
        for name in meta.model_fields_set:
            if name in ("type", "seq", "time") or name not in RunHeader.model_fields:
                continue
            new = getattr(meta, name)
            if new is None:
                continue
            old = getattr(self, name)
            if isinstance(new, ModelInfo):
                base = old.model_dump(exclude_unset=True) if isinstance(old, ModelInfo) else {}
                base.update(new.model_dump(exclude_unset=True))
                new = ModelInfo.model_validate(base)
            elif isinstance(new, dict) and isinstance(old, dict):
                new = {**old, **new}
            update[name] = new
        return self.model_copy(update=update)


class Meta(_Model):
    """``meta``: amends the header (see :meth:`RunHeader.amended`)."""

    type: Literal["meta"] = "meta"
    seq: Seq
    time: Optional[Time] = None
    # any header field may be given
    run_id: Optional[str] = None
    name: Optional[str] = None
    start: Optional[Time] = None
    host: Optional[str] = None
    pid: Optional[Pid] = None
    rank: Optional[Rank] = None
    world_size: Optional[WorldSize] = None
    config: Optional[Dict[str, Any]] = None
    model: Optional[ModelInfo] = None
    tags: Optional[Dict[str, Any]] = None
    local_rank: Optional[Rank] = None
    job_id: Optional[str] = None
    small: Optional[bool] = None


class Metrics(_Model):
    """``metrics``: values by name at one step."""

    type: Literal["metrics"] = "metrics"
    seq: Seq
    step: Step
    time: Time
    split: Optional[str] = None
    values: Dict[str, MetricValue]
    text: Optional[Dict[str, str]] = None

    def scalars(self) -> List[Tuple[str, str, Union[int, float]]]:
        """``(split, metric, value)`` for every value, splits inferred as the
        spec says (see :func:`split_metric`)."""
        split = self.split
        return [(*split_metric(k, split), v) for k, v in self.values.items()]


class LayerGrad(_Model):
    grad: Optional[MetricValue] = None
    weight: Optional[MetricValue] = None
    zero_rows: Optional[MetricValue] = None


class Grads(_Model):
    """``grads``: gradient signals, layers in model order."""

    type: Literal["grads"] = "grads"
    seq: Seq
    step: Step
    time: Time
    norm: Optional[MetricValue] = None
    layers: Dict[str, LayerGrad] = Field(default_factory=dict)


class Heartbeat(_Model):
    type: Literal["heartbeat"] = "heartbeat"
    seq: Seq
    time: Time
    step: Optional[Step] = None
    last_log: Optional[Time] = None
    where: Optional[List[str]] = None  #: the main thread's innermost frames


class System(_Model):
    """``system``: resource samples from the writer thread (step time,
    memory, GPU); fields present only where measured."""

    type: Literal["system"] = "system"
    seq: Seq
    time: Time
    step: Optional[Step] = None
    values: Dict[str, MetricValue] = Field(default_factory=dict)


class Dropped(_Model):
    type: Literal["dropped"] = "dropped"
    seq: Seq
    time: Optional[Time] = None
    count: Count
    reasons: Dict[str, Count] = Field(default_factory=dict)


class ErrorInfo(_Model):
    type: str = ""
    message: str = ""
    traceback: Optional[str] = None


class End(_Model):
    """``end``: how the run ended. ``status`` is kept as written (a newer
    writer may add statuses); v1 writes ``finished``, ``crashed`` or
    ``interrupted``."""

    type: Literal["end"] = "end"
    seq: Seq
    time: Optional[Time] = None
    status: str
    error: Optional[ErrorInfo] = None
    signal: Optional[str] = None
    dropped: Count = 0
    step: Optional[Step] = None


# ---------------------------------------------------------------- socket messages

class Hello(_Model):
    type: Literal["hello"] = "hello"
    v: Version = FORMAT_VERSION
    handshake: int               #: the handshake's version (2; docs/stream-format.md)
    run_id: str
    rank: Rank = 0
    nonce: str                   #: random hex: the writer's part of every proof on this connection
    pid: Optional[Pid] = None    #: with ``start``: which process writes (the header's; informative)
    start: Optional[Time] = None


class Challenge(_Model):
    type: Literal["challenge"] = "challenge"
    handshake: int
    nonce: str                   #: random hex: the listener's part
    token: bool = False          #: whether the listener asks for the token
    proof: Optional[str] = None  #: HMAC of the token: the listener knows it


class Auth(_Model):
    type: Literal["auth"] = "auth"
    proof: Optional[str] = None    #: HMAC of the token: the writer knows it
    session: Optional[str] = None  #: the stream to continue...
    resume: Optional[str] = None   #: ... and the proof of its session secret


class Welcome(_Model):
    type: Literal["welcome"] = "welcome"
    handshake: int = 2
    have: Annotated[int, Field(ge=-1, le=INT64_MAX)]  #: -1: nothing yet
    session: str = ""            #: the stream's id: a reconnect names it to continue


class Refused(_Model):
    type: Literal["refused"] = "refused"
    reason: str = ""


class Ack(_Model):
    type: Literal["ack"] = "ack"
    seq: Seq


Record = Union[RunHeader, Meta, Metrics, Grads, Heartbeat, System, Dropped, End]
Message = Union[Hello, Challenge, Auth, Welcome, Refused, Ack]

#: Stream records by ``type``: they carry ``seq`` and are de-duplicated by it.
RECORD_TYPES: Dict[str, type] = {
    "run": RunHeader, "meta": Meta, "metrics": Metrics, "grads": Grads,
    "heartbeat": Heartbeat, "system": System, "dropped": Dropped, "end": End,
}
#: Socket handshake messages by ``type`` (no stream ``seq``).
MESSAGE_TYPES: Dict[str, type] = {"hello": Hello, "challenge": Challenge, "auth": Auth, "welcome": Welcome,
                                   "refused": Refused, "ack": Ack}
TYPES: Dict[str, type] = {**RECORD_TYPES, **MESSAGE_TYPES}


# ---------------------------------------------------------------- splits

SPLITS = ("train", "val", "test")

_SPLIT_WORDS = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val", "eval": "val", "dev": "val",
    "test": "test",
}
_SEPARATORS = frozenset("/_-.")
_LONGEST_WORD = max(map(len, _SPLIT_WORDS))


def normalise_split(split: str) -> str:
    """``"validation"`` -> ``"val"``, ``"Training"`` -> ``"train"``; a split
    the format does not know is returned stripped, as written."""
    s = split.strip()
    return _SPLIT_WORDS.get(s.lower(), s)


@functools.lru_cache(maxsize=65536)
def split_metric(key: str, split: Optional[str] = None) -> Tuple[str, str]:
    """Map a metric key to ``(split, metric)`` as the spec says.

    - An explicit ``split`` wins and the key is taken as it is
      (``split_metric("val_loss", "train") == ("train", "val_loss")``);
      known spellings are normalised (``"validation"`` -> ``"val"``). An empty
      string counts as absent.
    - Otherwise a prefix or suffix word ``train``/``training``,
      ``val``/``valid``/``validation``/``eval``/``dev`` or ``test``, joined to
      the rest by ``/``, ``_``, ``-`` or ``.``, names the split and the rest
      names the metric: ``eval_loss`` -> ``("val", "loss")``, ``Loss/train``
      -> ``("train", "Loss")``. The split word matches case-insensitively;
      the metric keeps its case. The prefix is tried first
      (``val/loss/train`` -> ``("val", "loss/train")``), and only one word is
      taken off.
    - Everything else is train: ``lr`` -> ``("train", "lr")``.

    Choices, documented because the rule is purely lexical:

    - The word must be followed (prefix) or preceded (suffix) by a
      separator, and the rest must not be empty, so ``validity``,
      ``testing_acc``, ``devices``, ``val`` and ``val_`` are train metrics
      named as written.
    - The spec's rule is applied as written even where a name reads
      otherwise: ``test_time`` -> ``("test", "time")`` (a test-phase timing
      is plausibly a test metric), and ``std_dev`` -> ``("val", "std")`` and
      ``max_val`` -> ``("val", "max")``. A writer that means something else
      passes ``split`` explicitly, which turns inference off.
    """
    if split:
        return normalise_split(split), key
    n = len(key)
    # prefix: the first separator, within the longest split word's reach
    for i in range(min(n, _LONGEST_WORD + 1)):
        if key[i] in _SEPARATORS:
            found = _SPLIT_WORDS.get(key[:i].lower())
            if found is not None and i + 1 < n:
                return found, key[i + 1:]
            break
    # suffix: the last separator, within reach of the end
    for j in range(n - 1, max(n - _LONGEST_WORD - 2, -1), -1):
        if key[j] in _SEPARATORS:
            found = _SPLIT_WORDS.get(key[j + 1:].lower())
            if found is not None and j > 0:
                return found, key[:j]
            break
    return "train", key
