"""``tui-monitor demo``: its training processes never outlive it."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, wait_for

pytest.importorskip("torch", reason="the demo trains real models: torch is the demo extra")


def headers(directory) -> list:
    out = []
    for p in Path(directory).glob("*.jsonl"):
        try:
            first = p.read_bytes().split(b"\n", 1)[0]
            out.append(json.loads(first))
        except (OSError, ValueError):
            pass
    return out


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie is gone too (nothing left to run)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def start_demo(directory, *extra):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "tui_monitor", "demo", "--no-tui", "--dir", str(directory),
                             "--runs", "bias_linear,overfit", "--delay", "0.05", *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["int", "term", "kill"])
def test_children_end_with_the_demo(tmp_path, sig):
    demo = start_demo(tmp_path)
    try:
        hs = wait_for(lambda: len(headers(tmp_path)) == 2 and headers(tmp_path), timeout=60,
                      message="both runs started")
        pids = [h["pid"] for h in hs]
        assert not any(gone(p) for p in pids)
        demo.send_signal(sig)
        assert demo.wait(30) == (-sig if sig == signal.SIGKILL else 128 + sig)  # how it ended, said plainly
        wait_for(lambda: all(gone(p) for p in pids), timeout=15, message="the training processes gone")
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait(10)


def test_a_run_that_ends_is_reaped_while_the_demo_goes_on(tmp_path):
    from tui_monitor.demo import Demo

    with Demo(str(tmp_path), scenarios=["bias_linear", "overfit"], delay=0.0) as demo:
        early = demo.procs["bias_linear"]
        wait_for(lambda: early.returncode is not None, timeout=120, message="the first run's end, seen unasked")
        assert early.returncode == 0
        assert not Path(f"/proc/{early.pid}").exists()  # reaped: no defunct entry left


def test_children_end_when_the_tui_crashes(tmp_path, monkeypatch):
    import tui_monitor.tui as tui
    from tui_monitor.demo import run_demo

    seen = []

    def crashing_app(store, ingest, **kw):
        hs = wait_for(lambda: headers(tmp_path), timeout=60, message="a run started")
        seen.extend(h["pid"] for h in hs)
        raise RuntimeError("the TUI crashed")

    monkeypatch.setattr(tui, "run_app", crashing_app)
    with pytest.raises(RuntimeError):
        run_demo(str(tmp_path), tui=True, scenarios=["bias_linear"], delay=0.05)
    assert seen and all(gone(p) for p in seen)


def test_no_tui_prints_the_runs_and_the_diagnosis(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "tui_monitor", "demo", "--no-tui", "--fast", "--dir", str(tmp_path),
                        "--runs", "diverge_nan"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "diverge_nan-s0" in r.stdout and "divergence" in r.stdout
    bad = subprocess.run([sys.executable, "-m", "tui_monitor", "demo", "--runs", "nope"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "no scenario" in bad.stderr


def _waiting(thread) -> bool:
    import sys as _sys

    f = _sys._current_frames().get(thread.ident)
    while f is not None:
        if f.f_code.co_name == "wait" and f.f_code.co_filename.endswith("demo.py"):
            return True  # inside Demo.wait
        f = f.f_back
    return False


def test_ctrl_c_reaches_the_demo_whichever_thread_the_kernel_gives_it_to(tmp_path):
    """A process-wide SIGINT goes to any thread; here it is sent to a child's
    reaper thread while the main thread waits for the runs."""
    import threading
    import time

    from tui_monitor.demo import Demo

    demo = Demo(str(tmp_path), scenarios=["bias_linear"], delay=0.05).start()
    safety = threading.Timer(30, demo.stop)  # without the fix, the wait would last the whole run
    try:
        reaper = next(t for t in threading.enumerate() if t.name == "reap-bias_linear")
        main = threading.current_thread()
        assert main is threading.main_thread()

        def interrupt():
            wait_for(lambda: _waiting(main), message="the main thread waiting for the runs")
            signal.pthread_kill(reaper.ident, signal.SIGINT)

        threading.Thread(target=interrupt, daemon=True).start()
        safety.start()
        began = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            demo.wait()
        assert time.monotonic() - began < 10
        assert demo.running() == ["bias_linear"]  # it was the interrupt, not the run's end
    finally:
        safety.cancel()
        demo.stop()
