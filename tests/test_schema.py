"""The record models and the split rule of docs/stream-format.md."""
from __future__ import annotations

import math

import pytest
from pydantic import ValidationError

from conftest import bits
from tui_monitor.schema import (
    RECORD_TYPES, Ack, Auth, Challenge, Dropped, End, Grads, Heartbeat, Hello, Meta, Metrics, ModelInfo, Refused,
    RunHeader, Welcome, _build, decode_metric_value, encode_metric_value, normalise_split, split_metric,
)


# ---------------------------------------------------------------- splits

@pytest.mark.parametrize("key, split, expected", [
    # the examples of the spec and the brief
    ("train/loss", None, ("train", "loss")),
    ("loss/val", None, ("val", "loss")),
    ("val_loss", None, ("val", "loss")),
    ("eval_loss", None, ("val", "loss")),
    ("valid-loss", None, ("val", "loss")),
    ("test.acc", None, ("test", "acc")),
    ("Loss/train", None, ("train", "Loss")),
    ("train_loss", None, ("train", "loss")),
    ("lr", None, ("train", "lr")),
    ("loss", None, ("train", "loss")),
    # every spelling, as prefix and as suffix
    ("training/loss", None, ("train", "loss")),
    ("validation_acc", None, ("val", "acc")),
    ("dev-loss", None, ("val", "loss")),
    ("acc/validation", None, ("val", "acc")),
    ("acc.eval", None, ("val", "acc")),
    ("acc_valid", None, ("val", "acc")),
    ("acc-test", None, ("test", "acc")),
    ("acc_training", None, ("train", "acc")),
    # case-insensitive split word, metric keeps its case
    ("Val/Loss", None, ("val", "Loss")),
    ("Accuracy/TEST", None, ("test", "Accuracy")),
    # prefix first, one word taken off
    ("val/loss/train", None, ("val", "loss/train")),
    ("train/val_loss", None, ("train", "val_loss")),
    ("train_loss_epoch", None, ("train", "loss_epoch")),
    # words inside other words, or with nothing left, are not splits
    ("validity", None, ("train", "validity")),
    ("testing_acc", None, ("train", "testing_acc")),
    ("devices", None, ("train", "devices")),
    ("val", None, ("train", "val")),
    ("val_", None, ("train", "val_")),
    ("_val", None, ("train", "_val")),
    ("latest", None, ("train", "latest")),
    ("", None, ("train", "")),
    # the spec's rule applied as written (documented choices)
    ("test_time", None, ("test", "time")),
    ("std_dev", None, ("val", "std")),
    # an explicit split wins; the key is taken as it is
    ("loss", "val", ("val", "loss")),
    ("val_loss", "train", ("train", "val_loss")),
    ("acc", "validation", ("val", "acc")),
    ("acc", "Eval", ("val", "acc")),
    ("acc", "dev", ("val", "acc")),
    ("acc", "training", ("train", "acc")),
    ("acc", "test", ("test", "acc")),
    ("acc", "holdout", ("holdout", "acc")),
    ("val_loss", "", ("val", "loss")),  # empty split counts as absent
])
def test_split_metric(key, split, expected):
    assert split_metric(key, split) == expected


def test_normalise_split():
    assert [normalise_split(s) for s in ("Validation", " val ", "EVAL", "train", "Training", "test", "x")] == \
        ["val", "val", "val", "train", "train", "test", "x"]


def test_metrics_scalars_infer_per_key():
    m = Metrics.model_validate({"type": "metrics", "seq": 0, "step": 3, "time": 1.0,
                                "values": {"train/loss": 1.5, "val/loss": 2.5, "lr": 0.1}})
    assert m.scalars() == [("train", "loss", 1.5), ("val", "loss", 2.5), ("train", "lr", 0.1)]
    m = Metrics.model_validate({"type": "metrics", "seq": 0, "step": 3, "time": 1.0, "split": "eval",
                                "values": {"train/loss": 1.5}})
    assert m.scalars() == [("val", "train/loss", 1.5)]


# ---------------------------------------------------------------- values

@pytest.mark.parametrize("text, expected", [("NaN", None), ("Infinity", math.inf), ("-Infinity", -math.inf)])
def test_nonfinite_strings_decode(text, expected):
    v = decode_metric_value(text)
    assert type(v) is float
    if expected is None:
        assert math.isnan(v)
    else:
        assert v == expected
    assert encode_metric_value(v) == text


@pytest.mark.parametrize("bad", [True, False, None, "nan", "inf", "1.5", [1], {"a": 1}])
def test_bad_metric_values_rejected(bad):
    with pytest.raises(ValueError):
        decode_metric_value(bad)


@pytest.mark.parametrize("value", [0, -1, 2 ** 64, -(2 ** 63) - 1, 10 ** 40, 0.1, 1e-300, 5e-324, -0.0, 1.7976931348623157e308])
def test_numbers_pass_through_exactly(value):
    m = Metrics.model_validate({"type": "metrics", "seq": 0, "step": 0, "time": 0.0, "values": {"x": value}})
    got = m.values["x"]
    assert type(got) is type(value)
    if isinstance(value, float):
        assert bits(got) == bits(value)
    else:
        assert got == value
    assert encode_metric_value(got) is got


# ---------------------------------------------------------------- records

def _metrics(**kw):
    d = {"type": "metrics", "seq": 1, "step": 2, "time": 3.5, "values": {"loss": 1.0}}
    d.update(kw)
    return d


def test_unknown_fields_are_ignored():
    m = Metrics.model_validate(_metrics(future_field={"x": 1}, another=[1, 2]))
    assert m.values == {"loss": 1.0}
    assert not hasattr(m, "future_field")
    h = RunHeader.model_validate({"type": "run", "seq": 0, "run_id": "r", "new": 1, "model": {"params": 5, "new": 2}})
    assert h.model.params == 5


def test_time_int_becomes_float():
    m = Metrics.model_validate(_metrics(time=7))
    assert m.time == 7.0 and type(m.time) is float


@pytest.mark.parametrize("patch, where", [
    ({"step": "3"}, "step"),
    ({"step": 3.0}, "step"),
    ({"step": True}, "step"),
    ({"seq": None}, "seq"),
    ({"time": True}, "time"),
    ({"time": "now"}, "time"),
    ({"values": [1.0]}, "values"),
    ({"values": {"loss": "high"}}, "values"),
    ({"split": 1}, "split"),
    ({"text": {"note": 1}}, "text"),
])
def test_wrong_types_rejected(patch, where):
    with pytest.raises(ValidationError) as e:
        Metrics.model_validate(_metrics(**patch))
    assert e.value.errors()[0]["loc"][0] == where


@pytest.mark.parametrize("missing", ["seq", "step", "time", "values"])
def test_required_metrics_fields(missing):
    d = _metrics()
    del d[missing]
    with pytest.raises(ValidationError) as e:
        Metrics.model_validate(d)
    assert e.value.errors()[0]["type"] == "missing"


def test_header_defaults_and_amend():
    h = RunHeader.model_validate({"type": "run", "seq": 0, "run_id": "abc", "name": "n", "config": {"lr": 0.1, "bs": 8},
                                  "model": {"params": 10, "depth": 2}})
    assert (h.v, h.rank, h.world_size, h.host, h.pid, h.tags) == (1, 0, 1, "", None, {})
    meta = Meta.model_validate({"type": "meta", "seq": 1, "time": 1.0, "model": {"depth": 3, "width": 64},
                                "config": {"lr": 0.2}, "name": "m"})
    a = h.amended(meta)
    assert a.model == ModelInfo(params=10, depth=3, width=64)
    assert a.config == {"lr": 0.2, "bs": 8}
    assert a.name == "m" and a.run_id == "abc"
    assert h.config == {"lr": 0.1, "bs": 8} and h.model.depth == 2  # the original is unchanged
    # a header without a model gets the meta's
    h2 = RunHeader.model_validate({"type": "run", "seq": 0, "run_id": "abc"})
    assert h2.amended(meta).model == ModelInfo(depth=3, width=64)


def test_meta_can_amend_every_header_field():
    assert set(RunHeader.model_fields) - {"type", "seq", "v"} <= set(Meta.model_fields)
    h = RunHeader.model_validate({"type": "run", "seq": 0, "run_id": "abc"})
    meta = Meta.model_validate({"type": "meta", "seq": 1, "job_id": "slurm-7", "local_rank": 1, "small": True})
    a = h.amended(meta)
    assert (a.job_id, a.local_rank, a.small) == ("slurm-7", 1, True)


def test_other_records():
    g = Grads.model_validate({"type": "grads", "seq": 4, "step": 9, "time": 1.0, "norm": "NaN",
                              "layers": {"a.weight": {"grad": 0.5, "weight": "Infinity", "zero_rows": 0.25}, "b": {}}})
    assert math.isnan(g.norm) and g.layers["a.weight"].weight == math.inf and g.layers["b"].grad is None
    assert list(g.layers) == ["a.weight", "b"]
    hb = Heartbeat.model_validate({"type": "heartbeat", "seq": 5, "time": 2.0, "step": None})
    assert hb.step is None and hb.last_log is None
    d = Dropped.model_validate({"type": "dropped", "seq": 6, "time": 3.0, "count": 3, "reasons": {"disk full": 3}})
    assert d.reasons == {"disk full": 3}
    e = End.model_validate({"type": "end", "seq": 7, "time": 4.0, "status": "crashed",
                            "error": {"type": "ValueError", "message": "m", "traceback": "tb"}, "dropped": 2})
    assert e.error.type == "ValueError" and e.dropped == 2 and e.signal is None
    with pytest.raises(ValidationError):
        Dropped.model_validate({"type": "dropped", "seq": 6, "count": "3"})
    assert set(RECORD_TYPES) == {"run", "meta", "metrics", "grads", "heartbeat", "system", "dropped", "end"}


def test_socket_messages():
    hello = Hello.model_validate({"type": "hello", "v": 1, "handshake": 2, "run_id": "r", "rank": 2, "nonce": "ab" * 16})
    assert hello.pid is None and not hasattr(hello, "token")
    assert Challenge.model_validate({"type": "challenge", "handshake": 2, "nonce": "cd" * 16}).proof is None
    assert Auth.model_validate({"type": "auth"}).session is None
    assert Welcome.model_validate({"type": "welcome", "handshake": 2, "have": -1, "session": "s"}).have == -1
    assert Refused.model_validate({"type": "refused", "reason": "bad token"}).reason == "bad token"
    assert Ack.model_validate({"type": "ack", "seq": 41}).seq == 41
    with pytest.raises(ValidationError):
        Welcome.model_validate({"type": "welcome"})


def test_fast_build_equals_validation():
    """The reader's unvalidated construction must give the same model as pydantic."""
    d = _metrics(split="val", text={"note": "hi"})
    fast = _build(Metrics, {"type": "metrics", "seq": 1, "step": 2, "time": 3.5, "split": "val",
                            "values": {"loss": 1.0}, "text": {"note": "hi"}},
                  {"type", "seq", "step", "time", "split", "values", "text"})
    slow = Metrics.model_validate(d)
    assert fast == slow
    assert fast.model_dump() == slow.model_dump()
    assert fast.model_fields_set == slow.model_fields_set
    assert fast.model_copy(update={"step": 5}).step == 5
    assert repr(fast) == repr(slow)
