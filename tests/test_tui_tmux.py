"""End to end in a real terminal: ``tui-monitor watch`` inside a detached
tmux session of fixed size, on a stream that a real process is writing;
``capture-pane`` must show the run and a finding."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from tui_helpers import WRITER

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def capture(sock: str, session: str) -> str:
    r = subprocess.run(["tmux", "-L", sock, "capture-pane", "-p", "-t", session], capture_output=True, text=True)
    return r.stdout if r.returncode == 0 else ""


def wait_screen(sock, session, predicate, timeout, what):
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = capture(sock, session)
        if predicate(text):
            return text
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; the screen:\n{text}")


def test_watch_in_tmux_shows_the_run_and_a_finding(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    sock = f"tm-test-{os.getpid()}"
    session = "watch"
    env = dict(os.environ, PYTHONPATH=str(ROOT), TERM="xterm-256color", COLORTERM="truecolor")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(runs), "tmux-run", "400", "0.01", str(ROOT), "nan"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    cmd = f"{sys.executable} -m tui_monitor watch {runs}"
    try:
        subprocess.run(["tmux", "-L", sock, "-f", "/dev/null", "new-session", "-d", "-s", session, "-x", "120",
                        "-y", "36", cmd], check=True, env=env, cwd=str(tmp_path))
        wait_screen(sock, session, lambda t: "tmux-run" in t and "running" in t, 30, "the run, running")
        text = wait_screen(sock, session, lambda t: "divergence" in t, 60, "a divergence finding")
        assert "tmux-run" in text and ("crashed" in text or "running" in text)
        assert "loss" in text and "step" in text
        subprocess.run(["tmux", "-L", sock, "send-keys", "-t", session, "q"], check=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if subprocess.run(["tmux", "-L", sock, "has-session", "-t", session], capture_output=True).returncode:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("q did not quit the app")
    finally:
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)
        if writer.poll() is None:
            writer.kill()
        writer.wait(10)


@contextlib.contextmanager
def watching(tmp_path, name, steps, delay, size):
    """A writer process (a run that goes NaN) and ``tui-monitor watch`` on
    its folder in a detached tmux session of ``size``: yields (send, screen)."""
    runs = tmp_path / "runs"
    runs.mkdir()
    sock, session = f"tm-{name}-{os.getpid()}", "watch"
    env = dict(os.environ, PYTHONPATH=str(ROOT), TERM="xterm-256color", COLORTERM="truecolor")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(runs), name, str(steps), str(delay), str(ROOT), "nan"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        subprocess.run(["tmux", "-L", sock, "-f", "/dev/null", "new-session", "-d", "-s", session, "-x",
                        str(size[0]), "-y", str(size[1]), f"{sys.executable} -m tui_monitor watch {runs}"],
                       check=True, env=env, cwd=str(tmp_path))

        def send(key):
            subprocess.run(["tmux", "-L", sock, "send-keys", "-t", session, key], check=True)

        def screen(predicate, timeout, what):
            return wait_screen(sock, session, predicate, timeout, what)

        yield send, screen
    finally:
        subprocess.run(["tmux", "-L", sock, "kill-server"], capture_output=True)
        if writer.poll() is None:
            writer.kill()
        writer.wait(10)


def test_at_80x24_f_and_enter_open_a_findings_evidence_and_advice(tmp_path):
    with watching(tmp_path, "small-run", 200, 0, (80, 24)) as (send, screen):
        text = screen(lambda t: "divergence" in t and "f findings" in t, 60, "a divergence finding")
        assert "evidence:" not in text  # headlines only at 80 columns
        send("f")
        screen(lambda t: "esc: back to runs" in t, 15, "the findings focused")
        send("Enter")
        text = screen(lambda t: "evidence:" in t and "advice:" in t, 15, "the evidence and advice")
        assert "small-run" in text and "NaN" in text
        send("Escape")
        screen(lambda t: "evidence:" not in t, 15, "back to the main screen")
