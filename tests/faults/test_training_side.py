"""The training side survives what happens around it (issue: hardening)."""
from __future__ import annotations

import argparse
import collections
import collections.abc
import dataclasses
import fcntl
import gc
import json
import os
import selectors
import shutil
import struct
import termios
import threading
import time
import types

import pytest

import tui_monitor as tm
from conftest import records, records_of_a_killed_writer, stream_files, wait_for
from tui_monitor.sources import Ingest


def test_the_run_folder_removed_mid_run(tmp_path, capfd):
    runs = tmp_path / "runs"
    run = tm.init("nomad", dir=runs, flush_every=0.01)
    for step in range(50):
        run.log({"loss": float(step)}, step=step)
    wait_for(lambda: stream_files(runs) and len(records(stream_files(runs)[0])) >= 51, message="first records")
    shutil.rmtree(runs)                                  # someone cleans up
    for step in range(50, 100):
        run.log({"loss": float(step)}, step=step)
    run.close()
    (path,) = stream_files(runs)
    recs = records(path)
    assert recs[0]["type"] == "run" and recs[0]["run_id"] == run.run_id
    steps = [r["step"] for r in recs if r["type"] == "metrics"]
    assert steps == list(range(50, 100))                 # everything after the removal, nothing lost
    assert recs[-1]["type"] == "end" and recs[-1]["dropped"] == 0
    assert "was deleted; writing a new file" in capfd.readouterr().err
    ing = Ingest()                                       # and the monitor reads it as the same run
    ing.add_path(str(runs))
    ing.read_all()
    (got,) = ing.store.runs.values()
    assert got.run_id == run.run_id and got.series[("train", "loss")].steps.tolist() == list(range(50, 100))


def test_os_exit_leaves_only_whole_lines(tmp_path):
    from conftest import child

    proc = child("""
    import os, sys, time, tui_monitor as tm
    run = tm.init("abrupt", dir=sys.argv[1], flush_every=0.01)
    for step in range(3000):
        run.log({"loss": 1.0}, step=step)
        if step == 2000:
            run.flush()           # most of it on disk before the abrupt end
    os._exit(7)                   # no atexit, no end record: like SIGKILL
    """, str(tmp_path))
    assert proc.wait(20) == 7
    recs = records_of_a_killed_writer(stream_files(tmp_path)[0])
    steps = [r["step"] for r in recs if r["type"] == "metrics"]
    assert steps == list(range(len(steps))) and len(steps) > 2000
    assert recs[-1]["type"] != "end"


def test_values_of_every_kind_from_a_real_loop(tmp_path):
    import pytest

    torch = pytest.importorskip("torch", reason="torch is the demo/integration extra")
    import numpy as np
    run = tm.init("zoo", dir=tmp_path)
    run.log({"nan": float("nan"), "inf": torch.tensor(float("inf")), "huge": 10**40, "np": np.float16(0.5),
             "t": torch.tensor(3, dtype=torch.int64), "s": "text", "none": None, "nested": {"a": {"b": 1}},
             7: 1.0, ("tuple", "key"): 2.0, "list": [1, 2], "vec": torch.ones(3)}, step=0)
    run.close()
    recs = records(run.path)
    m = next(r for r in recs if r["type"] == "metrics")
    assert m["values"] == {"nan": "NaN", "inf": "Infinity", "huge": 10**40, "np": 0.5, "t": 3, "nested/a/b": 1,
                           "7": 1.0, "('tuple', 'key')": 2.0}
    assert m["text"] == {"s": "text"} and recs[-1]["dropped"] == 3    # None, the list and the vector, counted


def _unread(fd):
    """Bytes waiting in a pipe."""
    return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0]


def _read_to_eof(fd, timeout=20.0):
    """Everything a non-blocking pipe yields until its last writer closes it."""
    chunks, deadline = [], time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"the writer never closed the stream ({sum(map(len, chunks))} bytes read)")
            if sel.select(left):
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)


def test_close_while_the_writer_is_stuck_in_a_write_leaves_the_file_to_it(tmp_path, capfd):
    """A stalled disk (here: a FIFO nobody reads yet) holds the writer inside
    os.write past close()'s timeout. close() must return, and must not close
    the descriptor under that write; the writer ends the stream itself (every
    record, then the end) once the write goes through."""
    fifo = tmp_path / "stalled.jsonl"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        # the header alone is over a pipe's capacity: the writer's first pass blocks in it
        run = tm.init("stalled", path=str(fifo), config={"notes": "x" * 300_000}, flush_every=3600, system_every=0)
        capacity = fcntl.fcntl(reader, fcntl.F_GETPIPE_SZ)
        wait_for(lambda: _unread(reader) == capacity, message="the writer stuck on a full pipe")
        for step in range(100):
            run.log({"loss": float(step)}, step=step)
        started = time.monotonic()
        run.close(timeout=0.2)
        assert time.monotonic() - started < 5.0
        lines = _read_to_eof(reader).split(b"\n")   # the disk comes back
        assert lines[-1] == b""
        recs = [json.loads(line) for line in lines[:-1]]
        assert recs[0]["type"] == "run" and len(recs[0]["config"]["notes"]) == 300_000
        assert [r["step"] for r in recs if r["type"] == "metrics"] == list(range(100))
        assert [r["seq"] for r in recs] == list(range(len(recs)))
        assert recs[-1]["type"] == "end" and recs[-1]["status"] == "finished" and recs[-1]["dropped"] == 0
        wait_for(lambda: not run._writer.thread.is_alive(), message="the writer to finish")
        assert run.dropped == 0 and run._file.fd is None
        err = capfd.readouterr().err
        assert err.count("close() waited 0.2 s for the writer, still busy writing") == 1
    finally:
        os.close(reader)


def test_a_stuck_writer_still_ends_the_stream_on_the_socket(tmp_path):
    """With a socket sink too: when close() leaves the end to a stuck writer,
    the listener still gets every record and the end, once the write goes
    through (the sink is closed after the end, not before)."""
    ing = Ingest()
    lst = ing.listen("127.0.0.1:0")
    ing.start()
    fifo = tmp_path / "stalled.jsonl"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        run = tm.init("stalled", path=str(fifo), to=f"127.0.0.1:{lst.bound[1]}", config={"notes": "x" * 300_000},
                      flush_every=3600, system_every=0)
        capacity = fcntl.fcntl(reader, fcntl.F_GETPIPE_SZ)
        wait_for(lambda: _unread(reader) == capacity, message="the writer stuck on a full pipe")
        for step in range(100):
            run.log({"loss": float(step)}, step=step)
        run.close(timeout=0.2, socket_timeout=20)
        _read_to_eof(reader)   # the disk comes back
        got = wait_for(lambda: [r for r in ing.store.runs.values() if r.status == "finished"],
                       message="the end record through the socket")[0]
        assert got.series[("train", "loss")].steps.tolist() == list(range(100))
    finally:
        os.close(reader)
        ing.stop()


# ---------------------------------------------------------------- what was logged is what is recorded

def _metrics(path):
    return [(r["step"], r["values"]) for r in records(path) if r["type"] == "metrics"]


def test_values_are_read_when_logged_not_when_written(tmp_path):
    """A running sum kept in a tensor or a 0-d array and updated in place
    (``epoch_loss += loss``), and a dict of values reused from step to step:
    each record holds what the value was at its log(), although the writer
    reads the queue up to a second later."""
    torch = pytest.importorskip("torch", reason="torch is the demo/integration extra")
    import numpy as np

    run = tm.init("running", dir=tmp_path, system_every=0)      # flush_every: the default second
    epoch_loss, correct = torch.tensor(0.0), np.array(0)
    weight = torch.zeros((), requires_grad=True)
    nested = {"lr": 0.0, "deeper": {"momentum": 0.0}}
    for step in range(200):
        epoch_loss += 1.0
        correct += 2
        with torch.no_grad():
            weight += 0.5
        nested["lr"] = float(step)
        nested["deeper"]["momentum"] = -float(step)
        run.log({"epoch_loss": epoch_loss, "correct": correct, "w": weight, "opt": nested}, step=step)
    run.close()
    assert _metrics(run.path) == [
        (s, {"epoch_loss": s + 1.0, "correct": 2 * (s + 1), "w": 0.5 * (s + 1), "opt/lr": float(s),
             "opt/deeper/momentum": -float(s)})
        for s in range(200)]
    assert records(run.path)[-1]["dropped"] == 0


def test_a_device_tensor_is_cloned_at_log_and_read_in_the_writer(tmp_path):
    """A CUDA loss must not be read in the loop (``.item()`` waits for the
    GPU): log() takes an asynchronous copy, the writer reads the copy. No GPU
    here: the tensor below is a real CPU tensor that says it is not on the
    CPU, which is all the hook looks at; an in-place update after log() must
    not reach the record, and no ``.item()`` may run in the caller."""
    torch = pytest.importorskip("torch", reason="torch is the demo/integration extra")
    calls = []

    class OnDevice(torch.Tensor):
        @property
        def is_cpu(self):
            return False

        def item(self):
            calls.append(("item", threading.current_thread().name))
            return super().item()

        def clone(self, *args, **kwargs):
            calls.append(("clone", threading.current_thread().name))
            return super().clone(*args, **kwargs)

    run = tm.init("device", dir=tmp_path, flush_every=0.01, system_every=0)
    loss = torch.tensor(0.25).as_subclass(OnDevice)
    run.log({"loss": loss}, step=0)
    loss.add_(100.0)                               # the next step's work, after log()
    assert calls[0] == ("clone", threading.current_thread().name)
    big = torch.zeros(3).as_subclass(OnDevice)
    run.log({"vector": big, "ok": 1.0}, step=1)    # not a scalar: no copy taken of it
    wait_for(lambda: os.path.exists(run.path) and len(_metrics(run.path)) == 2, message="both records written")
    run.close()
    assert calls[1:] == [("item", "tui-monitor-writer")]
    assert _metrics(run.path) == [(0, {"loss": 0.25}), (1, {"ok": 1.0})]
    assert run.drop_reasons == {"not a number": 1}


def test_a_logged_tensor_leaves_nothing_for_the_garbage_collector(tmp_path):
    """A record read from tensors holds only numbers: the queue the writer
    drains once a second must not give the garbage collector a second's worth
    of records to look through at every collection inside log() (a copy of a
    dict that held tensors stays tracked)."""
    torch = pytest.importorskip("torch", reason="torch is the demo/integration extra")
    run = tm.init("untracked", dir=tmp_path, flush_every=3600, system_every=0)
    loss, acc = torch.tensor(0.5), torch.tensor(0.25)
    for step in range(3):
        run.log({"loss": loss, "acc": acc, "lr": 0.1}, step=step)
    queued = [rec for rec in run._q if "loss" in rec]
    assert [rec["loss"] for rec in queued] == [0.5] * 3
    assert [gc.is_tracked(rec) for rec in queued] == [False] * 3
    run.close()
    assert _metrics(run.path) == [(s, {"loss": 0.5, "acc": 0.25, "lr": 0.1}) for s in range(3)]


class _Unreadable(collections.abc.Mapping):
    """A mapping whose items cannot be read (a lazy config view, a proxy gone stale)."""

    def __getitem__(self, key):
        raise KeyError(key)

    def __iter__(self):
        raise RuntimeError("the proxy is gone")

    def __len__(self):
        return 1


def test_a_value_that_cannot_be_read_at_log_costs_only_itself(tmp_path, capfd):
    run = tm.init("unreadable", dir=tmp_path, system_every=0)
    run.log({"loss": 0.5, "opt": _Unreadable(), "acc": 0.25}, step=0)
    run.close()
    assert _metrics(run.path) == [(0, {"loss": 0.5, "acc": 0.25})]
    assert run.drop_reasons == {"not a number": 1}
    assert "opt: _Unreadable (could not be read: RuntimeError('the proxy is gone'))" in capfd.readouterr().err


# ---------------------------------------------------------------- configs as people pass them

@dataclasses.dataclass
class _Optim:
    lr: float = 0.1
    betas: tuple = (0.9, 0.999)


@dataclasses.dataclass
class _Experiment:
    name: str = "cifar"
    optim: _Optim = dataclasses.field(default_factory=_Optim)


def _omegaconf():
    omegaconf = pytest.importorskip("omegaconf", reason="omegaconf is in the test extra: Hydra's config type")
    return omegaconf.OmegaConf.create({"data": "cifar10", "optim": {"lr": 0.1, "warmup_lr": "${optim.lr}"},
                                       "layers": [64, 64], "seed": "???"})


CONFIGS = {
    "omegaconf": (_omegaconf, {"data": "cifar10", "optim": {"lr": 0.1, "warmup_lr": 0.1}, "layers": [64, 64],
                               "seed": "???"}),
    "userdict": (lambda: collections.UserDict(lr=0.1, data="cifar10"), {"lr": 0.1, "data": "cifar10"}),
    "mappingproxy": (lambda: types.MappingProxyType({"lr": 0.1, "nested": types.MappingProxyType({"a": 1})}),
                     {"lr": 0.1, "nested": {"a": 1}}),
    "dataclass": (_Experiment, {"name": "cifar", "optim": {"lr": 0.1, "betas": [0.9, 0.999]}}),
    "namespace": (lambda: argparse.Namespace(lr=0.1, epochs=3, data=None), {"lr": 0.1, "epochs": 3, "data": None}),
    "simplenamespace": (lambda: types.SimpleNamespace(lr=0.1, sub=types.SimpleNamespace(k=2)),
                        {"lr": 0.1, "sub": {"k": 2}}),
    "ordereddict": (lambda: collections.OrderedDict([("b", 1), ("a", 2)]), {"b": 1, "a": 2}),
}


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_configs_as_people_pass_them_are_read_as_plain_dicts(tmp_path, kind):
    """The reader takes a header's config only as an object: written as a
    string, it rejected the header, and the run lost its name, id, host and
    pid (and with them crash detection)."""
    make, expected = CONFIGS[kind]
    run = tm.init("configured", dir=tmp_path, config=make(), system_every=0)
    run.log({"loss": 1.0}, step=0)
    run.close()
    assert records(run.path)[0]["config"] == expected
    ing = Ingest()
    ing.add_path(str(tmp_path))
    ing.read_all()
    (got,) = ing.store.runs.values()
    assert (got.name, got.run_id, got.pid, got.config) == ("configured", run.run_id, os.getpid(), expected)
    assert list(ing.problems) == []


def test_a_run_with_a_hydra_config_killed_shows_as_crashed(tmp_path):
    """What the header carries is what crash detection needs (host, pid)."""
    _omegaconf()
    from conftest import child

    proc = child("""
    import os, sys, tui_monitor as tm
    from omegaconf import OmegaConf
    run = tm.init("hydra", dir=sys.argv[1], config=OmegaConf.create({"lr": 0.1}), flush_every=0.01)
    run.log({"loss": 1.0}, step=0)
    run.flush()
    os._exit(1)
    """, str(tmp_path))
    assert proc.wait(20) == 1, proc.stderr.read()
    ing = Ingest()
    ing.add_path(str(tmp_path))
    ing.read_all()
    ing.check_liveness()
    (got,) = ing.store.runs.values()
    assert (got.name, got.config, got.status) == ("hydra", {"lr": 0.1}, "crashed")


def test_the_hook_does_not_import_omegaconf_for_a_plain_config(tmp_path):
    from conftest import child

    proc = child("""
    import sys, tui_monitor as tm
    run = tm.init("plain", dir=sys.argv[1], config={"lr": 0.1, "sub": {"a": [1, 2]}})
    run.close()
    print("omegaconf" in sys.modules)
    """, str(tmp_path))
    assert proc.wait(20) == 0, proc.stderr.read()
    assert proc.stdout.read().strip() == "False"


class _Unprintable:
    def __repr__(self):
        raise RuntimeError("no repr")

    __str__ = __repr__


class _Gettable:
    """A mapping whose values cannot all be read."""

    def keys(self):
        return ["ok", "broken"]

    def __getitem__(self, key):
        if key == "broken":
            raise KeyError("gone")
        return 1


def test_a_bad_config_field_never_costs_the_run_its_header(tmp_path, capfd):
    config = {"lr": 0.1, "weird": _Unprintable(), "huge": 10 ** 5000, 7: "int key", "obj": object,
              "nested": {"deeper": _Unprintable()}}
    run = tm.init("oddities", dir=tmp_path, config=config, tags=["baseline", "fold-2"], system_every=0)
    run.close()
    head = records(run.path)[0]
    assert head["type"] == "run" and head["name"] == "oddities" and head["pid"] == os.getpid()
    cfg = head["config"]
    assert cfg["lr"] == 0.1 and cfg["7"] == "int key" and cfg["obj"] == repr(object)
    assert cfg["weird"] == "<_Unprintable: repr failed: RuntimeError('no repr')>"
    assert cfg["nested"] == {"deeper": "<_Unprintable: repr failed: RuntimeError('no repr')>"}
    assert cfg["huge"] == "<int of 5001 digits>"
    assert head["tags"] == {"baseline": True, "fold-2": True}
    run2 = tm.init("mapping-ish", dir=tmp_path, config=_Gettable(), system_every=0)
    run2.close()
    assert records(run2.path)[0]["config"] == {"ok": 1, "broken": "<unreadable: KeyError('gone')>"}
    run3 = tm.init("too-big", dir=tmp_path, config={"notes": "x" * (2 << 20)}, system_every=0)
    run3.close()
    head3 = records(run3.path)[0]
    assert head3["type"] == "run" and head3["name"] == "too-big"
    assert head3["config"] == {"_dropped": f"config of {(2 << 20) + 12} bytes is over the 1 MiB line limit"}
    assert "config of" in capfd.readouterr().err


# ---------------------------------------------------------------- odd arguments

def test_a_string_step_is_read_as_a_number_and_automatic_steps_go_on(tmp_path, capfd):
    """``step="100"`` (read from a file name, a CSV) made every later
    automatic step fail, and those records were dropped."""
    np = pytest.importorskip("numpy")
    run = tm.init("steps", dir=tmp_path, system_every=0)
    run.log({"a": 1.0}, step="100")
    for _ in range(3):
        run.log({"a": 2.0})
    run.log({"a": 3.0}, step="seven")          # no number: the automatic step, said once
    run.log({"a": 4.0}, step=np.int64(200))
    run.log({"a": 5.0}, step=201.0)
    run.log({"a": 6.0}, step=2.5)               # not an integer: the automatic step
    run.log({"a": 7.0}, step=2 ** 70)           # past what the format holds: the automatic step
    run.log({"a": 8.0})
    run.close()
    assert [s for s, _ in _metrics(run.path)] == [100, 101, 102, 103, 104, 200, 201, 202, 203, 204]
    assert records(run.path)[-1]["dropped"] == 0 and records(run.path)[-1]["step"] == 204
    err = capfd.readouterr().err
    assert err.count("tui-monitor: step") == 1 and "step 'seven' is not an integer" in err


class _BadStr:
    def __str__(self):
        raise RuntimeError("no str")


@pytest.mark.parametrize("option,value,said", [
    ("name", _BadStr(), None),
    ("config", {"x": type("Unprintable", (), {"__repr__": lambda self: 1 / 0})()}, None),
    ("rank", "zero", "rank='zero' is not an integer"),
    ("world_size", "two", "world_size='two' is not an integer"),
    ("flush_every", "often", "flush_every='often' is not a number"),
    ("heartbeat_every", None, "heartbeat_every=None is not a number"),
    ("max_queue", "lots", "max_queue='lots' is not an integer"),
    ("socket_buffer", [], "socket_buffer=[] is not an integer"),
])
def test_init_never_raises_into_the_script(tmp_path, capfd, option, value, said):
    run = tm.init(**{"name": "opts", "dir": tmp_path, "system_every": 0, option: value})
    run.log({"loss": 1.0}, step=0)
    run.close()
    recs = records(run.path)
    assert [r["type"] for r in recs] == ["run", "metrics", "end"] and recs[-1]["status"] == "finished"
    if option == "name":
        assert recs[0]["name"] == "<_BadStr: str failed: RuntimeError('no str')>"
    if option == "rank":
        assert recs[0]["rank"] == 0
    if said:
        assert said in capfd.readouterr().err


def test_an_init_that_cannot_start_a_run_lets_the_script_go_on(tmp_path, capfd):
    """A misspelt option: the script goes on, told why, with a run that records nothing."""
    run = tm.init("typo", dir=tmp_path, flsh_every=0.1)
    run.log({"loss": 1.0}, step=0)
    run.flush()
    run.close()
    assert run.state == "off" and stream_files(tmp_path) == []
    err = capfd.readouterr().err
    assert err.count("tui-monitor: could not start the run") == 1 and "flsh_every" in err


def test_close_keeps_its_timeout_while_a_value_is_slow_to_read(tmp_path):
    """A value whose ``__float__`` takes long (a lazy tensor of some library,
    a remote value): close() read it in the caller's thread and ignored its
    timeout (40 s). The writer reads it; close() returns on time and the
    writer ends the stream when the value comes."""
    entered, release = threading.Event(), threading.Event()

    class Slow:
        def __float__(self):
            entered.set()
            release.wait(60)
            return 1.5

    run = tm.init("slow", dir=tmp_path, flush_every=3600, system_every=0)
    run.log({"x": Slow(), "y": 2.0}, step=0)
    returned = threading.Event()
    threading.Thread(target=lambda: (run.close(timeout=0.2), returned.set()), daemon=True).start()
    try:
        wait_for(returned.is_set, message="close() to return while the value is still being read")
        assert entered.is_set() and not release.is_set()
    finally:
        release.set()
    wait_for(lambda: records(run.path)[-1]["type"] == "end", message="the writer to end the stream")
    assert _metrics(run.path) == [(0, {"x": 1.5, "y": 2.0})]
    assert records(run.path)[-1]["status"] == "finished"


def test_an_integer_too_long_to_write_costs_only_itself(tmp_path, capfd):
    """Python will not write an int of more than 4,300 digits as text: the
    whole record was dropped."""
    run = tm.init("bigint", dir=tmp_path, system_every=0)
    run.log({"big": 10 ** 5000, "ok": 1.0, "fine": 2 ** 100}, step=0)
    run.close()
    assert _metrics(run.path) == [(0, {"ok": 1.0, "fine": 2 ** 100})]
    assert records(run.path)[-1]["dropped"] == 1 and run.drop_reasons == {"integer too long": 1}
    assert "big: int of 5001 digits" in capfd.readouterr().err

# ---------------------------------------------------------------- multiprocessing children

def _ends(directory):
    """{run name: (metrics records, the end record's status or None)} of every stream."""
    out = {}
    for path in stream_files(directory):
        recs = records_of_a_killed_writer(path)
        end = recs[-1] if recs and recs[-1]["type"] == "end" else None
        name = recs[0]["name"] if recs else f"<empty: {path.name}>"
        out[name] = (sum(r["type"] == "metrics" for r in recs), end and end["status"])
    return out


def _run_script(code, tmp_path, timeout=60):
    from conftest import child

    proc = child(code, str(tmp_path))
    assert proc.wait(timeout) == 0, proc.stderr.read()
    return proc.stderr.read()


def test_a_run_in_a_forked_process_ends_when_the_process_does(tmp_path):
    """A multiprocessing child under fork leaves through os._exit: no atexit,
    so nothing ended its run (50 records logged, 0 written, shown crashed)."""
    _run_script("""
    import multiprocessing as mp, sys, tui_monitor as tm

    def train(name, fail):
        run = tm.init(name, dir=sys.argv[1], system_every=0)
        for step in range(50):
            run.log({"loss": 1.0 / (step + 1)}, step=step)
        if fail:
            raise ValueError("diverged")

    if __name__ == "__main__":
        ctx = mp.get_context("fork")
        for name, fail in (("ok", False), ("fails", True)):
            p = ctx.Process(target=train, args=(name, fail))
            p.start()
            p.join()
            assert p.exitcode == (1 if fail else 0), p.exitcode
    """, tmp_path)
    assert _ends(tmp_path) == {"ok": (50, "finished"), "fails": (50, "crashed")}
    (failed,) = [records(p)[-1] for p in stream_files(tmp_path) if records(p)[0]["name"] == "fails"]
    assert failed["error"]["type"] == "ValueError" and failed["error"]["message"] == "diverged"


@pytest.mark.parametrize("how", ["with", "close-join"])
def test_runs_in_pool_workers_whose_work_is_done_end_finished(tmp_path, how):
    """``with Pool() as pool`` ends with terminate(): idle workers get
    SIGTERM, and their runs were marked interrupted although their work was
    done; close() and join() let the workers leave through os._exit, and
    their runs had no end at all."""
    _run_script("""
    import multiprocessing as mp, sys, tui_monitor as tm

    def task(i):
        run = tm.init(f"task{i}", dir=sys.argv[1], system_every=0)
        for step in range(20):
            run.log({"loss": float(i)}, step=step)
        return i

    if __name__ == "__main__":
        ctx = mp.get_context("fork")
        if sys.argv[2] == "with":
            with ctx.Pool(2) as pool:
                assert pool.map(task, range(4)) == list(range(4))
        else:
            pool = ctx.Pool(2)
            assert pool.map(task, range(4)) == list(range(4))
            pool.close()
            pool.join()
    """.replace("sys.argv[2]", repr(how)), tmp_path)
    assert _ends(tmp_path) == {f"task{i}": (20, "finished") for i in range(4)}


def test_a_pool_terminated_mid_task_still_says_interrupted(tmp_path):
    _run_script("""
    import multiprocessing as mp, os, sys, time, tui_monitor as tm

    def task(i):
        run = tm.init("busy", dir=sys.argv[1], system_every=0)
        run.log({"loss": 1.0}, step=0)
        run.flush()
        time.sleep(600)

    if __name__ == "__main__":
        pool = mp.get_context("fork").Pool(1)
        pool.apply_async(task, (0,))
        while not any(f.endswith(".jsonl") and b'"metrics"' in open(os.path.join(sys.argv[1], f), "rb").read()
                      for f in os.listdir(sys.argv[1])):
            time.sleep(0.01)
        pool.terminate()
        pool.join()
    """, tmp_path)
    assert _ends(tmp_path) == {"busy": (1, "interrupted")}


def test_log_in_a_forked_child_on_the_parents_run_says_so_once(tmp_path):
    stderr = _run_script("""
    import multiprocessing as mp, sys, tui_monitor as tm
    run = tm.init("parent", dir=sys.argv[1], system_every=0)

    def child():
        for step in range(3):
            run.log({"loss": -1.0}, step=step)

    if __name__ == "__main__":
        p = mp.get_context("fork").Process(target=child)
        p.start()
        p.join()
        run.log({"loss": 1.0}, step=0)
        run.close()
    """, tmp_path)
    assert _ends(tmp_path) == {"parent": (1, "finished")}
    assert stderr.count("tui-monitor: log() in a forked child") == 1, stderr
    assert "is not recorded: start a run in the child with init()" in stderr


# ---------------------------------------------------------------- a writer that falls behind

def test_a_writer_that_falls_behind_keeps_writing_and_the_queue_bound_holds(tmp_path):
    """One thread logging 50-value dicts as fast as it can: the writer's pass
    drained the queue until it was empty, which it never was, so the file
    stayed at the header, and what it had taken piled up outside the bounded
    queue. Every pass now ends; the queue keeps its bound, and what it
    turns away is counted and written."""
    values = {f"layer{j}/grad_norm": float(j) for j in range(50)}
    run = tm.init("flood", dir=tmp_path, system_every=0, max_queue=20_000, flush_every=0.05)
    stop, longest, logged = threading.Event(), [0], [0]

    def flood():
        q = run._q
        while not stop.is_set():
            run.log(values)
            logged[0] += 1
            longest[0] = max(longest[0], len(q))

    logger = threading.Thread(target=flood, daemon=True)
    logger.start()
    try:
        # a stat, not a read: reading a file that grows by megabytes a second
        # starves the two threads under test (a 50-value record is over 1 KB)
        wait_for(lambda: os.path.exists(run.path) and os.path.getsize(run.path) >= 1000 * 1300,
                 message="records on disk while the loop goes on")
        wait_for(lambda: run.drop_reasons.get("queue full", 0) >= 1000, message="the queue to turn records away")
    finally:
        stop.set()
        logger.join(30)
    run.close(timeout=60)
    recs = records(run.path)
    written = sum(r["type"] == "metrics" for r in recs)
    assert recs[-1]["type"] == "end" and written + recs[-1]["dropped"] == logged[0]
    assert set(run.drop_reasons) <= {"queue full", "close() timed out"}
    # at most 5 values a record on average wait: 20,000 records of 5 values, 2,000 of 50
    assert longest[0] <= 2_000 + 1
    assert any(r["type"] == "dropped" and r["reasons"].get("queue full") for r in recs[:-1])


def test_close_writes_what_it_can_within_its_timeout_and_counts_the_rest(tmp_path, capfd):
    """A writer far behind at close(): it wrote on past close()'s timeout
    and, at exit, everything was lost uncounted. Now close() returns on time
    with the end written, counting what it could not write."""
    class Slow:
        """A value that takes a millisecond to read (the writer's work, not the loop's)."""

        def __float__(self):
            time.sleep(0.001)
            return 1.0

    run = tm.init("behind", dir=tmp_path, system_every=0, flush_every=3600)
    wait_for(lambda: os.path.exists(run.path) and records(run.path), message="the header")
    for step in range(3000):
        run.log({"slow": Slow()}, step=step)      # about 3 s of the writer's time
    returned = threading.Event()
    threading.Thread(target=lambda: (run.close(timeout=0.5), returned.set()), daemon=True).start()
    wait_for(returned.is_set, message="close() to return")
    recs = records(run.path)                         # the end is there when close() returns
    end = recs[-1]
    assert end["type"] == "end" and end["status"] == "finished"
    written = [r["step"] for r in recs if r["type"] == "metrics"]
    assert 0 < len(written) < 3000 and written == list(range(len(written)))
    assert end["dropped"] == 3000 - len(written) and run.drop_reasons == {"close() timed out": end["dropped"]}
    assert "close() timed out" in capfd.readouterr().err



def test_close_in_the_middle_of_a_long_pass_still_returns_with_the_end(tmp_path, capfd):
    """The writer was already in a pass over a long queue when close() came
    (its pass every second, a flush()): only the last pass kept close()'s
    time, so close() gave up and the end came seconds later, or never."""
    read = []

    class Slow:
        def __float__(self):
            read.append(1)
            time.sleep(0.001)
            return 1.0

    run = tm.init("mid-pass", dir=tmp_path, system_every=0, flush_every=3600)
    wait_for(lambda: os.path.exists(run.path) and records(run.path), message="the header")
    for step in range(3000):
        run.log({"slow": Slow()}, step=step)      # about 3 s of the writer's time
    run.flush(timeout=0)                          # a pass starts over the whole queue
    wait_for(lambda: read, message="the writer's pass to start reading")
    returned = threading.Event()
    threading.Thread(target=lambda: (run.close(timeout=0.5), returned.set()), daemon=True).start()
    wait_for(returned.is_set, message="close() to return")
    recs = records(run.path)                         # the end is there when close() returns
    end = recs[-1]
    assert end["type"] == "end" and end["status"] == "finished"
    written = [r["step"] for r in recs if r["type"] == "metrics"]
    assert 0 < len(written) < 3000 and written == list(range(len(written)))
    assert end["dropped"] == 3000 - len(written) and run.drop_reasons == {"close() timed out": end["dropped"]}
    assert "close() waited" not in capfd.readouterr().err

# ---------------------------------------------------------------- two closes at once

def test_a_close_that_finishes_while_another_hands_over_its_end_leaves_the_run_closed(tmp_path, capfd):
    """Two threads close one run (the SIGTERM thread and the training's own
    close at the end, a user's thread): the other close() ran its whole
    course while this one was still building its end record (here: inside
    the error's ``__str__``). This one then set the run back to closing, and
    waited its whole timeout for an end already written."""
    run = tm.init("twice", dir=tmp_path, flush_every=3600, system_every=0)
    run.log({"loss": 0.5}, step=0)

    class ClosedMeanwhile:
        def __str__(self):
            other = threading.Thread(target=run.close)
            other.start()
            other.join()
            return "diverged"

    returned = threading.Event()
    closer = threading.Thread(target=lambda: (run.close(status="crashed", error=ClosedMeanwhile(), timeout=30),
                                              returned.set()), daemon=True)
    closer.start()
    wait_for(returned.is_set, message="the second close() to return", timeout=60)
    assert run.state == "closed"
    recs = records(run.path)
    assert [r["type"] for r in recs] == ["run", "metrics", "end"]
    assert "close() waited" not in capfd.readouterr().err
    run.log({"loss": 0.25}, step=1)    # after close(): ignored, not counted as logged during close()
    assert run.dropped == 0


def test_a_forked_child_closing_a_run_its_parent_gave_up_on_writes_nothing(tmp_path):
    """close() gave up on a writer busy with a slow value and left the end
    to it; a child forked then (a DataLoader worker) and closed the run: the
    child, where no writer thread runs, wrote the parent's queue and an end
    of its own into the parent's file."""
    _run_script("""
    import os, sys, time, tui_monitor as tm

    reading = []

    class Slow:
        def __float__(self):
            reading.append(1)
            time.sleep(1.0)
            return 1.5

    run = tm.init("parent", dir=sys.argv[1], flush_every=0.01, system_every=0)
    run.log({"x": Slow()}, step=0)
    while not reading:                 # a pass of the writer reads x
        time.sleep(0.001)
    run.log({"y": 2.0}, step=1)
    run.close(timeout=0.1)             # gives up: the writer is still reading x
    pid = os.fork()
    if pid == 0:
        run.close(timeout=2)
        os._exit(0)
    assert os.waitpid(pid, 0)[1] == 0
    while run.state != "closed":
        time.sleep(0.01)
    """, tmp_path)
    (path,) = stream_files(tmp_path)
    recs = records(path)
    assert [r["type"] for r in recs] == ["run", "metrics", "metrics", "end"]
    assert [r["seq"] for r in recs] == [0, 1, 2, 3]


def test_a_log_that_lands_after_the_last_pass_is_counted(tmp_path):
    """Another thread's log() had looked at the state (open) and was still
    reading its values when close() ran its course: its record went into
    a queue nobody would read again, and no count said so."""
    reading, release = threading.Event(), threading.Event()

    class Lazy(collections.abc.Mapping):
        """A mapping read at log() (a config view): this one waits to be read."""

        def __getitem__(self, key):
            return {"momentum": 0.9}[key]

        def __iter__(self):
            reading.set()
            release.wait(30)
            return iter(["momentum"])

        def __len__(self):
            return 1

    run = tm.init("late-log", dir=tmp_path, flush_every=3600, system_every=0)
    run.log({"loss": 0.5}, step=0)
    logger = threading.Thread(target=lambda: run.log({"opt": Lazy()}, step=1), daemon=True)
    logger.start()
    wait_for(reading.is_set, message="the other thread's log() to be reading its values")
    run.close()
    release.set()
    logger.join(30)
    assert _metrics(run.path) == [(0, {"loss": 0.5})]
    assert run.drop_reasons == {"logged during close()": 1}
