"""The hook in one process: threads, failing disks, odd values, gradients, sockets."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

import tui_monitor as tm
from conftest import FakeListener, records, stream_files, wait_for


def test_import_loads_only_the_standard_library():
    code = (
        "import sys; before = set(sys.modules); import tui_monitor; "
        "new = sorted(m.split('.')[0] for m in set(sys.modules) - before); "
        "print(' '.join(sorted(set(new))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert "tui_monitor" in out
    outside = [m for m in out if m != "tui_monitor" and m not in sys.stdlib_module_names and not m.startswith("_")]
    assert outside == [], f"import tui_monitor loaded non-stdlib modules: {outside}"
    for heavy in ("textual", "rich", "pydantic", "numpy", "watchdog", "torch", "orjson"):
        assert heavy not in out


@pytest.mark.parametrize("n_threads,flush_every", [(4, 0.01), (8, 0.005)])
def test_threads_logging_at_once_lose_nothing(tmp_path, n_threads, flush_every):
    run = tm.init("threads", dir=tmp_path, flush_every=flush_every)
    per_thread = 4000

    def worker(k):
        for i in range(per_thread):
            run.log({"loss": float(i), "thread": k}, step=i)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run.close()
    recs = records(run.path)
    assert [r["seq"] for r in recs] == list(range(len(recs)))
    got = sorted((r["values"]["thread"], r["step"], r["values"]["loss"]) for r in recs if r["type"] == "metrics")
    assert got == sorted((k, i, float(i)) for k in range(n_threads) for i in range(per_thread))
    assert recs[-1]["dropped"] == 0


def test_values_of_every_kind(tmp_path, capfd):
    import numpy as np
    run = tm.init("kinds", dir=tmp_path)
    run.log({
        "f": 0.1, "i": 7, "b": True, "big": 2**100, "np32": np.float32(0.5), "np64": np.float64(1e-300),
        "npi": np.int64(-3), "nested": {"a": 1.5, 2: {"deep": 2.5}}, 3: 4.0,
        "s": "a string", "none": None, "vec": np.arange(3), "obj": object(),
    }, step=1)
    run.close()
    recs = records(run.path)
    m = next(r for r in recs if r["type"] == "metrics")
    assert m["values"] == {"f": 0.1, "i": 7, "b": 1, "big": 2**100, "np32": 0.5, "np64": 1e-300, "npi": -3,
                           "nested/a": 1.5, "nested/2/deep": 2.5, "3": 4.0}
    assert m["text"] == {"s": "a string"}
    end = recs[-1]
    assert end["dropped"] == 3
    dropped = next(r for r in recs if r["type"] == "dropped")
    assert dropped["count"] == 3 and dropped["reasons"] == {"not a number": 3}
    err = capfd.readouterr().err
    assert err.count("tui-monitor: dropped values that are not numbers") == 1
    assert "none: NoneType" in err and "vec: ndarray" in err


def test_bad_calls_never_raise(tmp_path, capfd):
    run = tm.init("bad", dir=tmp_path)
    run.log(None)                       # not a mapping
    run.log([("loss", 1.0)])            # a list of pairs is a mapping to dict()
    run.log({"loss": 2.0}, step="seven")
    run.close()
    run.log({"loss": 3.0})              # after close: ignored with a warning
    recs = records(run.path)
    values = [r["values"]["loss"] for r in recs if r["type"] == "metrics"]
    assert values == [1.0, 2.0]
    assert recs[-1]["dropped"] == 1
    err = capfd.readouterr().err
    assert "log() ignored a call" in err and "log() after close() is ignored" in err


def test_non_finite_and_extreme_values_survive_exactly(tmp_path):
    run = tm.init("extreme", dir=tmp_path)
    vals = {"nan": float("nan"), "inf": float("inf"), "ninf": float("-inf"), "tiny": 5e-324,
            "small": 1e-300, "huge": 1.7976931348623157e308, "third": 1 / 3, "negzero": -0.0}
    run.log(vals, step=0)
    run.close()
    m = next(r for r in records(run.path) if r["type"] == "metrics")
    assert m["values"]["nan"] == "NaN" and m["values"]["inf"] == "Infinity" and m["values"]["ninf"] == "-Infinity"
    for k in ("tiny", "small", "huge", "third", "negzero"):
        assert m["values"][k].hex() == vals[k].hex()


def test_watch_records_flexibility_and_gradients(tmp_path):
    torch = pytest.importorskip("torch", reason="torch is the demo/integration extra")
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8), torch.nn.ReLU(),
                                torch.nn.Linear(8, 1))
    with torch.no_grad():                   # kill half the units of the second layer: dead ReLUs
        model[2].bias[:4] = -100.0
    run = tm.init("watched", dir=tmp_path, model=model, watch_every=5)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(32, 3), torch.randn(32, 1)
    for step in range(12):
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        run.log({"loss": loss}, step=step)
    run.close()
    recs = records(run.path)
    header = recs[0]
    assert header["model"] == {"params": 3 * 8 + 8 + 8 * 8 + 8 + 8 + 1, "trainable_params": 113, "depth": 3,
                               "layers": ["0.weight", "2.weight", "4.weight"], "width": 8, "input_features": 3}
    grads = [r for r in recs if r["type"] == "grads"]
    assert [g["step"] for g in grads] == [0, 5, 10]   # backward passes 1, 6, 11
    g = grads[0]
    assert list(g["layers"]) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    assert g["layers"]["2.weight"]["zero_rows"] == 0.5
    assert g["layers"]["4.weight"]["zero_rows"] == 0.0
    total = sum(layer["grad"] ** 2 for layer in g["layers"].values()) ** 0.5
    assert g["norm"] == pytest.approx(total, rel=1e-12)
    assert g["layers"]["0.weight"]["weight"] == pytest.approx(model[0].weight.detach().norm().item(), rel=0.05)


def test_gradients_on_torch_without_post_accumulate_hooks_build_no_class_per_backward(tmp_path):
    """torch before 2.1 has no post-accumulate hooks: the fallback hook sees
    the fresh gradient. It records the same norms, and does not build a new
    class (garbage for the cyclic collector) on every backward pass. The
    installed torch has the new hook, so parameters that hide it stand in."""
    import gc

    torch = pytest.importorskip("torch", reason="torch is the demo/integration extra")

    class OlderTorchParameter(torch.nn.Parameter):
        @property
        def register_post_accumulate_grad_hook(self):
            raise AttributeError("register_post_accumulate_grad_hook")   # as on torch < 2.1

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    model.weight = OlderTorchParameter(model.weight.detach().clone())
    model.bias = OlderTorchParameter(model.bias.detach().clone())
    assert not hasattr(model.weight, "register_post_accumulate_grad_hook")
    run = tm.init("oldtorch", dir=tmp_path, model=model, watch_every=1, flush_every=3600, system_every=0)
    x = torch.randn(4, 3)
    expected = []

    def step(i):
        model.zero_grad()
        model(x).pow(2).sum().backward()
        expected.append(model.weight.grad.norm().item())
        run.log({"loss": 1.0}, step=i)

    step(0)                                 # torch builds what it builds once
    gc.collect()
    gc.disable()
    try:
        classes = sum(type(o) is type for o in gc.get_objects())
        for i in range(1, 51):
            step(i)
        new_classes = sum(type(o) is type for o in gc.get_objects()) - classes
    finally:
        gc.enable()
    run.close()
    assert new_classes == 0, f"{new_classes} classes built in 50 backward passes"
    grads = [r for r in records(run.path) if r["type"] == "grads"]
    assert [g["step"] for g in grads] == list(range(51))
    assert [g["layers"]["weight"]["grad"] for g in grads] == pytest.approx(expected, rel=1e-6)
    assert all(set(g["layers"]) == {"weight", "bias"} for g in grads)


def test_heartbeats_while_the_loop_is_quiet(tmp_path):
    run = tm.init("sleepy", dir=tmp_path, flush_every=0.02, heartbeat_every=0.05)
    run.log({"loss": 1.0}, step=41)
    seen = threading.Event()
    hbs = []

    def watch():  # reads the file in another thread: the main thread only waits
        hbs.extend(wait_for(lambda: os.path.exists(run.path) and
                            [r for r in records(run.path) if r["type"] == "heartbeat"], message="a heartbeat"))
        seen.set()

    threading.Thread(target=watch, daemon=True).start()

    def the_loop_waits_here():
        assert seen.wait(30)

    the_loop_waits_here()
    run.close()
    hb = hbs[0]
    assert hb["step"] == 41 and hb["last_log"] <= hb["time"]
    # where the main thread waits: in this test's function
    assert any("the_loop_waits_here" in w for w in hb["where"]), hb["where"]


def test_the_header_is_written_at_once_not_at_the_first_flush(tmp_path):
    """A run killed in its first second (a rank that dies at once) is still
    seen: the writer's first pass runs right after init."""
    run = tm.init("early", dir=tmp_path, flush_every=3600)
    try:
        head = wait_for(lambda: os.path.exists(run.path) and records(run.path), timeout=10,
                        message="the header on disk without a flush")
        assert [r["type"] for r in head] == ["run"] and head[0]["name"] == "early"
    finally:
        run.close()
    assert [r["type"] for r in records(run.path)][-1] == "end"


def test_auto_steps_and_splits(tmp_path):
    run = tm.init("auto", dir=tmp_path)
    run.log({"loss": 1.0})
    run.log({"loss": 0.9})
    run.log({"loss": 1.2}, split="val")
    run.log({"loss": 0.8})
    run.close()
    m = [(r["step"], r.get("split"), r["values"]["loss"]) for r in records(run.path) if r["type"] == "metrics"]
    assert m == [(0, None, 1.0), (1, None, 0.9), (1, "val", 1.2), (2, None, 0.8)]


def mounted_tmpfs(path, options, instead):
    """Mount a tmpfs at ``path`` (a real filesystem that fills up or refuses
    writes); skip, saying why and which test covers the case instead, where
    the kernel will not (not root, or no mount capability in a container)."""
    path.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'mount failed'}); {instead}")
    return path


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 1 MiB tmpfs: a disk that really fills up. Needs root (as CI runs)."""
    mnt = mounted_tmpfs(tmp_path / "tiny", "size=1m", "the /dev/full test covers ENOSPC without it")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)])


def test_full_disk_never_raises_and_recovers(tiny_tmpfs, capfd):
    filler = tiny_tmpfs / "filler"
    filler.write_bytes(b"x" * (1024 * 1024 - 16 * 1024))
    run = tm.init("full", dir=tiny_tmpfs, flush_every=0.01)
    for step in range(2000):
        run.log({"loss": float(step), "lr": 0.1}, step=step)
    warned = []
    wait_for(lambda: warned.append(capfd.readouterr().err) or "No space left" in "".join(warned) or "disk full" in "".join(warned),
             message="a disk-full warning")
    assert run.closed is False
    filler.unlink()                           # space comes back
    for step in range(2000, 2100):
        run.log({"loss": float(step)}, step=step)
    run.close()
    recs = records(run.path)
    steps = [r["step"] for r in recs if r["type"] == "metrics"]
    assert steps == list(range(2100))         # held back, then written: nothing lost
    assert [r["seq"] for r in recs] == list(range(len(recs)))
    assert recs[-1]["status"] == "finished"


def test_enospc_from_the_kernel_never_raises(tmp_path, capfd):
    run = tm.init("devfull", path="/dev/full", flush_every=0.01, max_queue=100)
    for step in range(1000):
        run.log({"loss": float(step)}, step=step)
    run.close()
    err = capfd.readouterr().err
    assert "cannot write /dev/full: No space left on device" in err
    assert err.count("cannot write /dev/full") == 1
    assert run.dropped >= 800 and run.drop_reasons.get("disk full", 0) + run.drop_reasons.get("queue full", 0) == run.dropped


def test_unwritable_directory_never_raises(tmp_path, capfd):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    run = tm.init("nowhere", dir=blocker / "runs", flush_every=0.01)
    for step in range(100):
        run.log({"loss": 1.0}, step=step)
    run.close()
    err = capfd.readouterr().err
    assert "cannot write" in err and "Not a directory" in err
    assert run.dropped > 0 and list(run.drop_reasons) == ["write error (ENOTDIR)"]


def test_read_only_filesystem_never_raises(tmp_path, capfd):
    ro = mounted_tmpfs(tmp_path / "ro", "ro,size=64k", "test_unwritable_directory covers the non-root case")
    try:
        run = tm.init("ro", dir=ro, flush_every=0.01)
        run.log({"loss": 1.0}, step=0)
        run.close()
        assert "Read-only file system" in capfd.readouterr().err
        assert run.drop_reasons == {"write error (EROFS)": run.dropped} and run.dropped >= 3
    finally:
        subprocess.run(["umount", "-l", str(ro)])


def test_socket_sink_streams_every_record(tmp_path):
    listener = FakeListener(token="s3cret")
    run = tm.init("wire", dir=False, to=f"127.0.0.1:{listener.port}", token="s3cret", flush_every=0.01)
    for step in range(300):
        run.log({"loss": float(step)}, step=step)
    run.close()
    wait_for(lambda: listener.records and listener.records[-1]["type"] == "end", message="the end record")
    assert listener.hellos[0]["run_id"] == run.run_id
    assert "s3cret" not in json.dumps(listener.hellos + listener.auths)   # proven, never sent
    assert [r["seq"] for r in listener.records] == list(range(len(listener.records)))
    assert [r["step"] for r in listener.records if r["type"] == "metrics"] == list(range(300))
    assert all("token" not in json.dumps(r) for r in listener.records)
    assert stream_files(tmp_path) == []


def test_socket_sink_with_no_listener_never_blocks(tmp_path, capfd):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]               # a port nobody listens on
    run = tm.init("lonely", dir=tmp_path, to=f"127.0.0.1:{port}", flush_every=0.01)
    for step in range(100):
        run.log({"loss": 1.0}, step=step)
    run.close(timeout=1.0)
    assert "cannot stream to 127.0.0.1" in capfd.readouterr().err
    assert records(run.path)[-1]["dropped"] == 0   # everything is in the file


def test_a_record_over_the_line_limit_becomes_a_dropped_record(tmp_path, capfd):
    run = tm.init("huge", dir=tmp_path)
    run.log({"note": "x" * (2 << 20)}, step=0)   # a 2 MiB text value
    run.log({"loss": 1.0}, step=1)
    run.close()
    recs = records(run.path)
    assert [r["type"] for r in recs if r["type"] != "system"] == ["run", "dropped", "metrics", "end"]
    assert recs[1]["reasons"] == {"record over 1 MiB": 1} and recs[-1]["dropped"] == 1
    assert "record of" in capfd.readouterr().err


def test_a_real_training_loop_reads_back_bit_for_bit(tmp_path):
    """A tiny torch loop logs through the hook; the monitor's own reader gets
    every value back exactly, non-finite and extreme ones included."""
    torch = pytest.importorskip("torch", reason="torch is the demo/integration extra")
    import math
    import struct

    from tui_monitor.stream import read_file

    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = torch.randn(64, 4), torch.randn(64, 1)
    run = tm.init("exact", dir=tmp_path, config={"lr": 0.05, "eps": float("nan")}, model=model, watch_every=10)
    sent = []
    specials = [float("nan"), float("inf"), float("-inf"), 1e-300, 5e-324, -0.0, 2**63 + 1, 10**30]
    for step in range(40):
        loss = torch.nn.functional.mse_loss(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        extra = specials[step % len(specials)]
        run.log({"loss": loss, "lr": 0.05, "extra": extra}, step=step)
        sent.append((step, loss.item(), extra))
        if step % 10 == 9:
            with torch.no_grad():
                val = torch.nn.functional.mse_loss(model(x + 0.1), y)
            run.log({"loss": val}, step=step, split="val")
    run.close()
    recs, problems = read_file(run.path)
    assert problems == []
    header = recs[0]
    assert header.name == "exact" and header.model.trainable_params == 4 * 8 + 8 + 8 + 1
    assert header.config["eps"] == "NaN"
    train = [r for r in recs if r.type == "metrics" and r.split is None]
    assert [r.step for r in train] == [s for s, _, _ in sent]

    def same(a, b):
        if isinstance(b, int) and not isinstance(b, bool):
            return type(a) is int and a == b
        return struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and math.isnan(b))

    for r, (step, loss, extra) in zip(train, sent):
        assert struct.pack("<d", r.values["loss"]) == struct.pack("<d", loss)
        assert same(r.values["extra"], extra), (step, r.values["extra"], extra)
    assert len([r for r in recs if r.type == "metrics" and r.split == "val"]) == 4
    assert [r.step for r in recs if r.type == "grads"] == [0, 10, 20, 30]
    assert recs[-1].type == "end" and recs[-1].status == "finished"


def test_system_samples_come_from_the_writer_thread(tmp_path):
    from tui_monitor.sources import Ingest

    run = tm.init("sys", dir=tmp_path, flush_every=0.02, system_every=0.05)
    for step in range(200):
        run.log({"loss": 1.0}, step=step)
        if step % 50 == 0:
            wait_for(lambda step=step: os.path.exists(run.path) and
                     sum(r["type"] == "system" for r in records(run.path)) > step // 50, message="a system sample")
    run.close()
    samples = [r for r in records(run.path) if r["type"] == "system"]
    assert len(samples) >= 4
    last = samples[-1]["values"]
    assert last["rss"] > 1e6 and last["ram_total"] >= last["ram_used"] > 0 and last["cpu_percent"] >= 0
    assert any("step_time" in s["values"] and s["values"]["step_time"] > 0 for s in samples)
    assert all("cuda_mem_allocated" not in s["values"] for s in samples)   # no CUDA here: silently absent
    ing = Ingest()
    ing.add_path(str(run.path))
    ing.read_all()
    (got,) = ing.store.runs.values()
    assert got.series[("system", "rss")].values[-1] == last["rss"]
    assert ("system", "rss") not in [(sp, m) for sp, m in got.series if sp in ("train", "val", "test")]


def test_system_samples_off(tmp_path):
    run = tm.init("nosys", dir=tmp_path, system_every=0)
    run.log({"loss": 1.0}, step=0)
    run.close()
    assert not [r for r in records(run.path) if r["type"] == "system"]


def test_heartbeats_come_although_system_samples_are_written_more_often(tmp_path):
    """System samples (every system_every) are writes too: they must not hold
    back the heartbeats of a quiet loop (with the defaults, 5 s < 10 s, they did)."""
    run = tm.init("quiet", dir=tmp_path, flush_every=0.01, heartbeat_every=0.25, system_every=0.05)
    run.log({"loss": 1.0}, step=7)

    def three_heartbeats():
        recs = records(run.path) if os.path.exists(run.path) else []
        return recs if sum(r["type"] == "heartbeat" for r in recs) >= 3 else None

    recs = wait_for(three_heartbeats, timeout=10, message="three heartbeats between system samples")
    run.close()
    hb = [r for r in recs if r["type"] == "heartbeat"]
    samples = [r["time"] for r in recs if r["type"] == "system"]
    assert any(hb[0]["time"] < t < hb[1]["time"] for t in samples)   # samples were written in between
    assert all(h["step"] == 7 and h["last_log"] == hb[0]["last_log"] for h in hb)
    assert hb[0]["time"] - hb[0]["last_log"] >= 0.25
    assert all(b["time"] - a["time"] >= 0.25 for a, b in zip(hb, hb[1:]))   # one per heartbeat_every, no more
    assert all(any("three_heartbeats" in w or "wait_for" in w for w in h["where"]) for h in hb)


def test_one_bad_record_costs_only_itself(tmp_path, capfd):
    """A record the writer cannot convert (here: a split that cannot be
    named) is dropped and counted; the rest of its flush pass is kept and
    close() does not raise."""

    class Unnamed:
        def __str__(self):
            raise RuntimeError("no name")

    run = tm.init("badsplit", dir=tmp_path, flush_every=3600, system_every=0)
    wait_for(lambda: os.path.exists(run.path) and records(run.path), message="the header")  # later: one pass
    run.log({"loss": 1.0}, step=0)
    run.log({"loss": 2.0}, step=1, split=Unnamed())
    run.log({"loss": 3.0}, step=2)
    run.close()                             # the one pass: raised here before
    recs = records(run.path)
    assert [r["seq"] for r in recs] == list(range(len(recs)))
    assert [r["type"] for r in recs] == ["run", "metrics", "metrics", "dropped", "end"]
    assert [r["values"]["loss"] for r in recs if r["type"] == "metrics"] == [1.0, 3.0]
    assert recs[-2]["count"] == 1 and recs[-2]["reasons"] == {"bad record": 1}
    assert recs[-1]["dropped"] == 1 and recs[-1]["status"] == "finished"
    assert run.drop_reasons == {"bad record": 1}
    assert "could not convert a logged record" in capfd.readouterr().err


def test_socket_buffer_put_while_another_thread_snapshots(tmp_path):
    """put() (the writer thread) and unsent() (the socket thread) at once:
    no 'deque mutated during iteration', and every snapshot is a whole tail."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]               # nobody listens: the sink only buffers
    run = tm.init("race", dir=tmp_path, to=f"127.0.0.1:{port}", flush_every=3600, socket_buffer=500)
    wait_for(lambda: run._writer._seq >= 1, message="the header")
    sink = run._socket
    done, errors = threading.Event(), []

    def writer():
        try:
            for seq in range(1, 200_001):
                sink.put(seq, b"{}\n")
        except Exception as e:  # noqa: BLE001
            errors.append(e)
        done.set()

    t = threading.Thread(target=writer)
    t.start()
    snaps = 0
    try:
        while not done.is_set():
            tail = sink.unsent(-1)
            seqs = [seq for seq, _ in tail]
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs))) and len(seqs) <= 500
            snaps += 1
        t.join()
        assert errors == [] and snaps > 0
        assert [seq for seq, _ in sink.unsent(199_000)] == list(range(199_501, 200_001))
    finally:
        done.wait()
        run.close(socket_timeout=0.1)


def test_socket_sink_streams_when_the_process_holds_over_1024_descriptors(capfd):
    """A training process often holds many files open: select() cannot wait
    on a descriptor past 1024 ("filedescriptor out of range"), the sink must."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1200:
        pytest.skip(f"the hard limit on open files ({hard}) is below 1200: no descriptor past 1024 to be had")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1200) if hard == resource.RLIM_INFINITY
                                                else min(max(soft, 1200), hard), hard))
    held = [os.open(os.devnull, os.O_RDONLY) for _ in range(1100)]
    listener = FakeListener()
    try:
        run = tm.init("many-files", dir=False, to=f"127.0.0.1:{listener.port}", flush_every=0.01, system_every=0)
        for step in range(100):
            run.log({"loss": float(step)}, step=step)
        run.close(socket_timeout=20)
        wait_for(lambda: listener.records and listener.records[-1]["type"] == "end", message="the end record")
        assert [r["step"] for r in listener.records if r["type"] == "metrics"] == list(range(100))
        assert "cannot stream" not in capfd.readouterr().err
    finally:
        for fd in held:
            os.close(fd)
        listener.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class LateListener(FakeListener):
    """Welcomes only once ``go`` is set, so the sink meets a long backlog that
    the writer keeps adding to while it is sent; accepts again if dropped."""

    def __init__(self):
        self.go = threading.Event()
        super().__init__()

    def session(self, conn, f):
        self.hello(f)
        self.go.wait()
        self.welcome(conn)
        self.ack_all(conn, f)


def test_socket_sink_sends_a_backlog_while_the_writer_adds_to_it(capfd):
    """The socket thread walks a long unsent tail while the writer thread
    appends to it (threads switched often): the connection must survive."""
    listener = LateListener()
    run = tm.init("backlog", dir=False, to=f"127.0.0.1:{listener.port}", flush_every=0.001, system_every=0)
    for step in range(10_000):
        run.log({"loss": float(step)}, step=step)
    # built at the normal switch interval: the sink waits for the welcome 5 s at most
    wait_for(lambda: run._writer._seq > 10_000, message="the backlog in the socket buffer")
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-4)  # from here, the two threads interleave often
    try:
        listener.go.set()
        for step in range(10_000, 30_000):
            run.log({"loss": float(step)}, step=step)
    finally:
        sys.setswitchinterval(old_interval)
    run.close(socket_timeout=60)  # the rest at the normal interval: other tests' threads may still be about
    wait_for(lambda: listener.records and listener.records[-1]["type"] == "end", timeout=60, message="the end record")
    assert "cannot stream" not in capfd.readouterr().err
    assert len(listener.hellos) == 1                     # one connection, never torn down
    assert [r["seq"] for r in listener.records] == list(range(len(listener.records)))
    assert [r["step"] for r in listener.records if r["type"] == "metrics"] == list(range(30_000))
    listener.server.close()


class DroppingListener(FakeListener):
    """Welcomes every connection, then closes it at once."""

    def session(self, conn, f):
        self.hello(f)
        self.welcome(conn)
        conn.close()


def test_socket_backoff_starts_again_after_a_welcome(tmp_path):
    """A listener that welcomes and then drops the connection is retried
    every 0.5 s: the backoff resets on the welcome (it grew 0.5, 1, 2, 4 s...)."""
    listener = DroppingListener()
    run = tm.init("flaky", dir=tmp_path, to=f"127.0.0.1:{listener.port}", flush_every=0.01, system_every=0)
    run.log({"loss": 1.0}, step=0)
    try:
        # after three welcomes the wait before the next try is back at 0.5-1 s
        # (never reset, it would have doubled to 2-4 s by now)
        wait_for(lambda: len(listener.hellos) >= 3, timeout=30.0, message="three connections")
        assert run._socket.backoff <= 1.0
    finally:
        run.close(socket_timeout=0.1)
        listener.server.close()


def test_drops_counted_from_many_threads_at_once_lose_no_count(tmp_path, capfd):
    """The writer thread and the socket sink's thread both count drops: with
    threads switched as often as they can be, no increment may be lost."""
    run = tm.init("drops", dir=tmp_path, flush_every=3600, system_every=0)
    n_threads, per_thread = 8, 20_000
    start = threading.Barrier(n_threads)

    def dropper(k):
        start.wait()
        for _ in range(per_thread):
            run._drop(f"reason {k % 2}", 1)

    threads = [threading.Thread(target=dropper, args=(k,)) for k in range(n_threads)]
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old_interval)
    run.close()
    assert run.dropped == n_threads * per_thread
    assert run.drop_reasons == {"reason 0": n_threads * per_thread // 2, "reason 1": n_threads * per_thread // 2}
    assert records(run.path)[-1]["dropped"] == n_threads * per_thread


def test_a_disk_full_backlog_is_not_copied_whole_on_every_retry(capfd):
    """While the disk stays full, each flush pass adds its new lines to the
    backlog and retries it; it must not build a copy of the whole backlog
    each time (every flush_every, for as long as the disk is full)."""
    import tracemalloc

    tracemalloc.start()  # from before the backlog exists: growing it in place counts only the growth
    try:
        run = tm.init("backlog", path="/dev/full", flush_every=3600, system_every=0, max_queue=1_000_000)
        for step in range(20_000):
            run.log({"loss": float(step), "pad": "x" * 500}, step=step)
        run.flush()                                       # over 10 MB held back: /dev/full takes nothing
        for step in range(20_000, 20_010):
            run.log({"loss": float(step)}, step=step)
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            run.flush()                                   # one retry of the whole backlog
            extra = tracemalloc.get_traced_memory()[1] - base
            # a copy would be over 10 MB; growing the backlog by an eighth now and then is not
            assert extra < 4_000_000, f"a retry allocated {extra} bytes for a 10 MB backlog"
    finally:
        tracemalloc.stop()
    run.close()
    # nothing lost along the way: the header, every record and the end, counted
    assert run.dropped == run.drop_reasons["disk full"] == 1 + 20_010 + 1
    assert "cannot write /dev/full: No space left on device" in capfd.readouterr().err


def test_a_write_that_fails_with_a_bug_keeps_the_lines_for_the_next_pass(tmp_path):
    """Not an OSError (a bug in a sink, say): the lines of that pass are kept
    and written by the next one, not lost uncounted."""
    run = tm.init("bug", dir=tmp_path, flush_every=3600, system_every=0)
    run.flush()
    real, failed = run._file.write, []

    def write_once_broken(data):
        if not failed:
            failed.append(len(data))
            raise ValueError("a bug")
        return real(data)

    run._file.write = write_once_broken
    run.log({"loss": 1.0}, step=0)
    run.flush()
    assert failed and [r for r in records(run.path) if r["type"] == "metrics"] == []
    run.log({"loss": 0.5}, step=1)
    run.close()
    recs = records(run.path)
    assert [r["step"] for r in recs if r["type"] == "metrics"] == [0, 1]
    assert recs[-1]["type"] == "end" and recs[-1]["dropped"] == 0


def test_two_runs_of_one_name_and_run_id_in_one_second_get_a_file_each(tmp_path, monkeypatch):
    """Two processes sharing TUI_MONITOR_RUN_ID (and name, and rank) started in
    the same second would make the same file name: the second takes the
    next free one (``~2``, sorted after the first) instead of writing into the first's file, which no
    reader could take apart again."""
    monkeypatch.setenv("TUI_MONITOR_RUN_ID", "shared")
    for _ in range(10):   # both inits within one second of the clock (which the file name carries)
        before = int(time.time())
        a = tm.init("twin", dir=str(tmp_path), flush_every=0.01)
        b = tm.init("twin", dir=str(tmp_path), flush_every=0.01)
        if int(time.time()) == before:
            break
        a.close()
        b.close()
        for f in stream_files(tmp_path):
            os.remove(f)
    a.log({"loss": 1.0}, step=0)
    b.log({"loss": 2.0}, step=0)
    a.close()
    b.close()
    files = stream_files(tmp_path)
    assert len(files) == 2, files
    assert [str(f) for f in files] == sorted([a.path, b.path])
    first, second = sorted((a.path, b.path), key=len)   # whichever writer opened its file first
    assert second == first[:-len(".jsonl")] + "~2.jsonl"
    for run, loss in ((a, 1.0), (b, 2.0)):
        recs = records(run.path)
        assert [r["type"] for r in recs] == ["run", "metrics", "end"]
        assert recs[1]["values"] == {"loss": loss}


def test_a_path_given_by_the_user_is_appended_to_as_given(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text("")
    run = tm.init("mine", path=str(path), flush_every=0.01)
    run.log({"loss": 1.0}, step=0)
    run.close()
    assert run.path == str(path) and stream_files(tmp_path) == [path]
    assert [r["type"] for r in records(path)] == ["run", "metrics", "end"]
