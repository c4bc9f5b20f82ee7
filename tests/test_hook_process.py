"""The hook in real processes: signals, crashes, SIGKILL, exit paths, fork."""
from __future__ import annotations

import functools
import signal
import textwrap

import pytest

from conftest import FakeListener, child, raw_lines, records, records_of_a_killed_writer, stream_files, wait_for

LOOP = """
import sys, time, tui_monitor as tm
run = tm.init("job", dir=sys.argv[1], flush_every=0.02, config={"lr": 0.1})
print("ready", flush=True)
step = 0
while True:
    run.log({"loss": 1.0 / (step + 1), "lr": 0.1}, step=step)
    step += 1
    if step % 100 == 0:
        time.sleep(0.001)
"""


def metrics_lines(path) -> int:
    return sum(1 for line in raw_lines(path) if b'"metrics"' in line)


def started(proc, tmp_path, n=50):
    assert proc.stdout.readline().strip() == "ready"
    files = wait_for(lambda: stream_files(tmp_path), message="the stream file")
    wait_for(lambda: metrics_lines(files[0]) >= n, message=f"{n} metric lines")
    return files[0]


def test_sigkill_leaves_only_whole_lines(tmp_path):
    proc = child(LOOP, str(tmp_path))
    path = started(proc, tmp_path, n=2000)
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    # Every line but the last parses. The hook appends whole lines, but a
    # SIGKILL can cut a write of many pages short (the kernel stops between
    # pages for a fatal signal): the last line may be a record's beginning,
    # which readers take as not yet written.
    whole = records_of_a_killed_writer(path)
    assert whole[0]["type"] == "run"
    seqs = [r["seq"] for r in whole]
    assert seqs == list(range(len(seqs)))
    assert not any(r["type"] == "end" for r in whole)
    steps = [r["step"] for r in whole if r["type"] == "metrics"]
    assert steps == list(range(len(steps))) and len(steps) >= 2000


def test_sigterm_writes_end_record_and_dies_by_the_signal(tmp_path):
    proc = child(LOOP, str(tmp_path))
    path = started(proc, tmp_path)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == -signal.SIGTERM
    recs = records(path)
    end = recs[-1]
    assert end["type"] == "end"
    assert end["status"] == "interrupted" and end["signal"] == "SIGTERM"
    last_step = max(r["step"] for r in recs if r["type"] == "metrics")
    assert end["step"] >= last_step
    assert [r["seq"] for r in recs] == list(range(len(recs)))


def test_users_own_sigterm_handler_still_runs(tmp_path):
    code = textwrap.dedent("""
    import signal, sys, time, tui_monitor as tm
    def graceful(signum, frame):
        print("user handler ran", flush=True)
        sys.exit(3)
    signal.signal(signal.SIGTERM, graceful)
    """) + LOOP
    proc = child(code, str(tmp_path))
    path = started(proc, tmp_path)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 3
    assert "user handler ran" in proc.stdout.read()
    end = records(path)[-1]
    assert end["type"] == "end" and end["status"] == "interrupted" and end["signal"] == "SIGTERM"


def test_sigint_is_recorded_as_interrupted(tmp_path):
    proc = child(LOOP, str(tmp_path))
    path = started(proc, tmp_path)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) != 0
    assert "KeyboardInterrupt" in proc.stderr.read()
    end = records(path)[-1]
    assert end["type"] == "end" and end["status"] == "interrupted" and end["signal"] == "SIGINT"


def test_uncaught_exception_is_recorded_with_type_and_message(tmp_path):
    proc = child("""
    import sys, tui_monitor as tm
    run = tm.init("crashy", dir=sys.argv[1])
    for step in range(10):
        run.log({"loss": 1.0}, step=step)
    raise FloatingPointError("loss is NaN at step 9")
    """, str(tmp_path))
    assert proc.wait(20) == 1
    assert "FloatingPointError" in proc.stderr.read()  # the user's traceback still prints
    (path,) = stream_files(tmp_path)
    recs = records(path)
    end = recs[-1]
    assert end["status"] == "crashed"
    assert end["error"]["type"] == "FloatingPointError"
    assert end["error"]["message"] == "loss is NaN at step 9"
    assert 'line 6, in <module>' in end["error"]["traceback"]  # where it was raised
    assert sum(r["type"] == "metrics" for r in recs) == 10


def test_normal_exit_without_close_is_finished(tmp_path):
    proc = child("""
    import sys, tui_monitor as tm
    run = tm.init("quiet", dir=sys.argv[1], flush_every=60)
    for step in range(1000):
        run.log({"loss": 1.0}, step=step)
    """, str(tmp_path))
    assert proc.wait(20) == 0, proc.stderr.read()
    recs = records(stream_files(tmp_path)[0])
    assert recs[-1]["type"] == "end" and recs[-1]["status"] == "finished" and recs[-1]["dropped"] == 0
    assert sum(r["type"] == "metrics" for r in recs) == 1000


def test_forked_children_do_not_duplicate_or_corrupt_the_stream(tmp_path):
    proc = child("""
    import os, sys, tui_monitor as tm
    run = tm.init("forky", dir=sys.argv[1], flush_every=60)
    for step in range(500):
        run.log({"loss": float(step)}, step=step)
        if step % 100 == 50:
            pid = os.fork()
            if pid == 0:
                run.log({"loss": -1.0}, step=10**6)   # ignored in the child, with a warning
                sys.exit(0)                            # runs atexit in the child
            os.waitpid(pid, 0)
    run.close()
    """, str(tmp_path))
    assert proc.wait(30) == 0, proc.stderr.read()
    recs = records(stream_files(tmp_path)[0])
    assert [r["seq"] for r in recs] == list(range(len(recs)))
    assert [r["type"] for r in recs].count("run") == 1
    assert [r["type"] for r in recs].count("end") == 1
    steps = [r["step"] for r in recs if r["type"] == "metrics"]
    assert steps == list(range(500))


def test_dataloader_workers_forked_after_init(tmp_path):
    pytest.importorskip("torch", reason="torch is the demo/integration extra")
    proc = child("""
    import sys, torch, tui_monitor as tm
    torch.set_num_threads(1)
    from torch.utils.data import DataLoader, TensorDataset
    run = tm.init("loader", dir=sys.argv[1], flush_every=0.01)
    ds = TensorDataset(torch.randn(256, 4), torch.randn(256, 1))
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    step = 0
    for epoch in range(2):
        for x, y in DataLoader(ds, batch_size=32, num_workers=2, multiprocessing_context="fork"):
            loss = torch.nn.functional.mse_loss(model(x), y)
            opt.zero_grad(); loss.backward(); opt.step()
            run.log({"loss": loss}, step=step)
            step += 1
    run.close()
    """, str(tmp_path))
    assert proc.wait(60) == 0, proc.stderr.read()
    recs = records(stream_files(tmp_path)[0])
    assert [r["seq"] for r in recs] == list(range(len(recs)))
    assert [r["step"] for r in recs if r["type"] == "metrics"] == list(range(16))
    assert recs[-1]["type"] == "end" and recs[-1]["status"] == "finished"


def test_disabled_by_environment_writes_nothing(tmp_path):
    proc = child("""
    import sys, tui_monitor as tm
    run = tm.init("off", dir=sys.argv[1])
    run.log({"loss": 1.0})
    run.close()
    """, str(tmp_path), env={"TUI_MONITOR_DISABLED": "1"})
    assert proc.wait(20) == 0
    assert stream_files(tmp_path) == []


def test_environment_chooses_the_directory(tmp_path):
    proc = child("""
    import tui_monitor as tm
    run = tm.init("envdir")
    run.log({"loss": 1.0})
    """, env={"TUI_MONITOR_DIR": str(tmp_path / "from_env")})
    assert proc.wait(20) == 0, proc.stderr.read()
    (path,) = stream_files(tmp_path / "from_env")
    assert path.name.startswith("envdir-")
    assert records(path)[-1]["status"] == "finished"


def test_the_copy_one_file_hook_works_alone(tmp_path):
    """hooks/tui_monitor_hook.py copied next to a script, without the package."""
    import shutil
    from conftest import ROOT

    shutil.copyfile(ROOT / "hooks" / "tui_monitor_hook.py", tmp_path / "tui_monitor_hook.py")
    (tmp_path / "train.py").write_text(
        "import sys, tui_monitor_hook as tm\n"
        "run = tm.init('copied', dir=sys.argv[1])\n"
        "run.log({'loss': 0.5}, step=3)\n"
        "assert 'tui_monitor' not in sys.modules\n"
    )
    import subprocess
    import sys as _sys

    out = subprocess.run([_sys.executable, "-E", "-s", str(tmp_path / "train.py"), str(tmp_path / "runs")],
                         capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    recs = records(stream_files(tmp_path / "runs")[0])
    assert recs[1]["values"] == {"loss": 0.5} and recs[-1]["status"] == "finished"


@pytest.mark.parametrize("ranks,expect", [("all", "small"), ("full", "full"), ("zero", "none")])
def test_ranks_of_a_job_share_a_run_id_and_write_their_own_streams(tmp_path, ranks, expect):
    code = """
    import sys, tui_monitor as tm
    run = tm.init("ddp", dir=sys.argv[1])
    run.log({"loss": 0.5, "acc": 0.9, "data_time": 0.01}, step=0)
    run.close()
    """
    for rank in range(2):
        env = {"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2", "TORCHELASTIC_RUN_ID": "abc123",
               "TUI_MONITOR_RANKS": ranks}
        assert child(code, str(tmp_path), env=env).wait(20) == 0
    files = stream_files(tmp_path)
    assert [f.name.endswith(f"-rank{r}.jsonl") for r, f in enumerate(files)] == [True] * len(files)
    heads = [records(f)[0] for f in files]
    assert {h["run_id"] for h in heads} == {"torchrun-abc123"}
    assert [h["rank"] for h in heads] == list(range(len(files)))
    rank1 = [records(f) for f in files if f.name.endswith("-rank1.jsonl")]
    if expect == "none":
        assert len(files) == 1
        return
    values = rank1[0][1]["values"]
    assert values == ({"loss": 0.5, "data_time": 0.01} if expect == "small" else {"loss": 0.5, "acc": 0.9, "data_time": 0.01})
    assert rank1[0][0].get("small", False) is (expect == "small")


def _main_thread_sleeping(pid) -> bool:
    """Whether ``pid``'s main thread is inside a sleep (in C, not between bytecodes)."""
    if not _wchan_shown():
        pytest.skip("this kernel does not show where a thread waits (/proc/PID/task/TID/wchan)")
    return "nanosleep" in _wchan(pid, pid)


def _wchan(pid, tid) -> str:
    try:
        with open(f"/proc/{pid}/task/{tid}/wchan") as f:
            return f.read().strip()
    except OSError:
        return ""


@functools.lru_cache(maxsize=1)
def _wchan_shown() -> bool:
    """Whether wchan names a sleeping thread's wait here (some kernels show 0)."""
    import os
    import threading
    import time

    tid, done = [], threading.Event()
    t = threading.Thread(target=lambda: (tid.append(threading.get_native_id()), done.wait(5)), daemon=True)
    t.start()
    wait_for(lambda: tid, message="the probe thread")
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:  # a probe, not a sync: the thread may not be asleep yet
        if _wchan(os.getpid(), tid[0]) not in ("", "0"):
            done.set()
            return True
    done.set()
    return False


class _NeverAcks(FakeListener):
    """Welcomes, then reads and never acknowledges: a close() waits its socket timeout."""

    def session(self, conn, f):
        self.hello(f)
        self.welcome(conn)
        for _ in f:
            pass


def test_a_sigterm_the_main_thread_cannot_take_still_ends_the_run_and_the_process(tmp_path):
    """A main thread stuck in C code (a hung collective) never runs a Python
    signal handler; without the hook the default action would have killed
    the process. Here the main thread sleeps with SIGTERM blocked, so the
    kernel hands the signal to another thread: as good as untaken."""
    proc = child("""
    import signal, sys, time, tui_monitor as tm
    run = tm.init("stuck", dir=sys.argv[1], flush_every=0.02, system_every=0)
    for step in range(5):
        run.log({"loss": 1.0}, step=step)
    run.flush()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    time.sleep(600)
    """, str(tmp_path))
    wait_for(lambda: _main_thread_sleeping(proc.pid), message="the child's main thread in its sleep")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == -signal.SIGKILL
    (path,) = stream_files(tmp_path)
    recs = records(path)
    assert recs[-1]["type"] == "end" and recs[-1]["status"] == "interrupted" and recs[-1]["signal"] == "SIGTERM"
    assert "did not take it" in recs[-1]["error"]["message"]
    assert [r["step"] for r in recs if r["type"] == "metrics"] == list(range(5))


def test_a_sigterm_taken_late_by_the_main_thread_is_left_to_it(tmp_path):
    """The main thread takes it once back from a C call, within the grace:
    its close (here 2 s, waiting on a listener that never acks) then outlasts
    the grace, and the watcher must leave it be: a SIGTERM end, no kill."""
    listener = _NeverAcks()
    proc = child("""
    import signal, sys, time, tui_monitor as tm
    from tui_monitor import hook
    hook.SIGTERM_GRACE = 1.0
    run = tm.init("slow", dir=sys.argv[1], to=sys.argv[2], flush_every=0.02, system_every=0)
    run.log({"loss": 1.0}, step=0)
    run.flush()
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    time.sleep(0.5)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    time.sleep(600)
    """, str(tmp_path), f"127.0.0.1:{listener.port}")
    wait_for(lambda: listener.hellos, message="the run connected")
    wait_for(lambda: _main_thread_sleeping(proc.pid), message="the child's main thread in its sleep")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == -signal.SIGTERM
    end = records(stream_files(tmp_path)[0])[-1]
    assert end["type"] == "end" and end["status"] == "interrupted" and end["signal"] == "SIGTERM"
    assert "error" not in end


def test_a_keyboard_interrupt_inside_close_still_leaves_the_end(tmp_path):
    """Ctrl+C while close() waits for the writer: the end was the closing
    thread's to write, the interrupt took it away, and the exit's close()
    saw the run closed and did nothing: a run with no end."""
    proc = child("""
    import os, signal, sys, threading, time, tui_monitor as tm

    class Slow:
        def __float__(self):
            time.sleep(1.0)
            return 1.5

    run = tm.init("ki", dir=sys.argv[1], flush_every=3600, system_every=0)
    run.log({"x": Slow(), "y": 2.0}, step=0)
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
    try:
        run.close(timeout=10)
        print("not interrupted", flush=True)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    """, str(tmp_path))
    assert proc.wait(30) == 0, proc.stderr.read()
    assert proc.stdout.read().strip() == "interrupted"
    recs = records(stream_files(tmp_path)[0])
    assert [r["values"] for r in recs if r["type"] == "metrics"] == [{"x": 1.5, "y": 2.0}]
    assert recs[-1]["type"] == "end" and recs[-1]["status"] == "finished"


def test_a_sigterm_taken_while_the_watcher_ends_the_run_waits_for_the_same_end(tmp_path):
    """The main thread takes the SIGTERM just after the grace, while the
    signal thread is inside close() waiting for the writer: the handler's
    close() returned at once and killed the process, before the end was
    written."""
    proc = child("""
    import signal, sys, time, tui_monitor as tm
    from tui_monitor import hook
    hook.SIGTERM_GRACE = 0.3

    class Slow:
        def __float__(self):
            time.sleep(0.4)
            return 1.5

    run = tm.init("late", dir=sys.argv[1], flush_every=3600, system_every=0)
    run.flush()
    run.log({"x": Slow()}, step=0)
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    print("ready", flush=True)
    while run.state == "open":   # the grace runs out: the signal thread starts ending the run
        time.sleep(0.001)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})   # and the main thread takes it
    time.sleep(600)
    """, str(tmp_path))
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) in (-signal.SIGTERM, -signal.SIGKILL)
    recs = records(stream_files(tmp_path)[0])
    assert [r["values"] for r in recs if r["type"] == "metrics"] == [{"x": 1.5}]
    assert recs[-1]["type"] == "end" and recs[-1]["status"] == "interrupted" and recs[-1]["signal"] == "SIGTERM"


def test_a_run_started_first_outside_the_main_thread_leaves_sigterm_to_later_runs(tmp_path):
    """Signal handlers can only be set from the main thread: a first run
    started in another thread (a launcher's thread, a notebook's worker)
    marked the process hooked, and no later run, even one started in the
    main thread, got its end on SIGTERM."""
    proc = child("""
    import sys, threading, time, tui_monitor as tm
    t = threading.Thread(target=lambda: tm.init("first", dir=sys.argv[1], system_every=0).close())
    t.start()
    t.join()
    run = tm.init("second", dir=sys.argv[1], flush_every=0.02, system_every=0)
    print("ready", flush=True)
    step = 0
    while True:
        run.log({"loss": 1.0}, step=step)
        step += 1
        time.sleep(0.001)
    """, str(tmp_path))
    assert proc.stdout.readline().strip() == "ready"
    wait_for(lambda: len(stream_files(tmp_path)) == 2, message="both streams")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == -signal.SIGTERM
    ends = {records(p)[0]["name"]: records(p)[-1] for p in stream_files(tmp_path)}
    assert ends["first"]["type"] == "end" and ends["first"]["status"] == "finished"
    assert ends["second"]["type"] == "end" and ends["second"]["status"] == "interrupted"
    assert ends["second"]["signal"] == "SIGTERM"


def test_a_forked_child_that_starts_no_run_dies_of_sigterm_as_without_the_hook(tmp_path):
    """A child forked after init() (a DataLoader or pool worker) inherited
    the hook's SIGTERM handler but not the thread that ends the process when
    the main thread cannot take it: stuck in C code, the child no longer
    died of SIGTERM. It has no run of its own: its signals are as they were
    before the hook."""
    proc = child("""
    import os, signal, sys, threading, time, tui_monitor as tm
    run = tm.init("parent", dir=sys.argv[1], system_every=0)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})   # the main thread: as if stuck in C
        os.write(w, b"x")
        time.sleep(600)
        os._exit(0)
    os.read(r, 1)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            print("child", "killed by SIGTERM" if os.WTERMSIG(status) == signal.SIGTERM else status, flush=True)
            break
        time.sleep(0.01)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        print("child still alive", flush=True)
    run.close()
    """, str(tmp_path))
    assert proc.wait(30) == 0, proc.stderr.read()
    assert proc.stdout.read().strip() == "child killed by SIGTERM"
    assert records(stream_files(tmp_path)[0])[-1]["status"] == "finished"


def test_a_forked_child_with_its_own_run_stuck_in_c_still_ends_it_on_sigterm(tmp_path):
    """A child forked after the parent's init() starts a run of its own (a
    multiprocessing worker that trains): the thread that ends a run whose
    main thread cannot take a SIGTERM was the parent's, and the child's run
    was left without an end, the child alive."""
    proc = child("""
    import os, signal, sys, time, tui_monitor as tm
    parent = tm.init("parent", dir=sys.argv[1], system_every=0)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        run = tm.init("child", dir=sys.argv[1], flush_every=0.02, system_every=0)
        for step in range(5):
            run.log({"loss": 1.0}, step=step)
        run.flush()
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})   # the main thread: as if stuck in C
        os.write(w, b"x")
        time.sleep(600)
        os._exit(0)
    os.read(r, 1)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            print("child", signal.Signals(os.WTERMSIG(status)).name if os.WIFSIGNALED(status) else status, flush=True)
            break
        time.sleep(0.01)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        print("child still alive", flush=True)
    parent.close()
    """, str(tmp_path))
    assert proc.wait(60) == 0, proc.stderr.read()
    assert proc.stdout.read().strip() == "child SIGKILL"
    ends = {records(p)[0]["name"]: records(p)[-1] for p in stream_files(tmp_path)}
    assert ends["parent"]["status"] == "finished"
    assert ends["child"]["type"] == "end" and ends["child"]["status"] == "interrupted"
    assert ends["child"]["signal"] == "SIGTERM" and "did not take it" in ends["child"]["error"]["message"]
