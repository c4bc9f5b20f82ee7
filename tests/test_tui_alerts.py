"""Alerts in the TUI (tui_monitor/tui/alerts.py): the bell and the desktop
escape on a new critical finding, the header's count of what arrived since
you last looked, ``n``, the help and the palette; and ``watch`` in a real
terminal (tmux), where the bell must reach the terminal once."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT, wait_for
from diagnose_helpers import run_records
from test_notify import nan_losses
from tui_helpers import WRITER, screen_text, sync, until
from tui_monitor.schema import split_metric
from tui_monitor.sources import Ingest
from tui_monitor.store import Store
from tui_monitor.tui import KEYS, MonitorApp
from tui_monitor.tui.alerts import Alerts, desktop_escape, escape_kind


def nan_run(name):
    return run_records(name, nan_losses(), end=False)


def status(app) -> str:
    return str(app.query_one("#status").render())


@sync
async def test_a_new_critical_finding_rings_once_and_is_counted_until_you_look():
    store = Store(splitter=split_metric)
    app = MonitorApp(store, None, threaded=False, interval=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.alerts.rung == 0 and "since" not in status(app)
        store.apply_many(nan_run("first"), stream="a")
        await until(pilot, lambda: app.alerts.rung == 1, message="the bell")
        await until(pilot, lambda: "1 new finding since" in status(app), message="the count in the header")
        assert status(app).startswith("tui-monitor   1 new finding since")  # after the name, before the runs
        # three runs going down together: one bell, three counted
        for name in ("b", "c", "d"):
            store.apply_many(nan_run(name), stream=name)
        await until(pilot, lambda: app.alerts.unseen == 4, message="four findings counted")
        assert app.alerts.rung == 2
        assert "4 new findings since" in status(app)
        await pilot.press("y")  # a key: you are looking
        await until(pilot, lambda: "since" not in status(app), message="the count to go")
        # n: alerts off; findings are still counted, no bell
        await pilot.press("n")
        assert not app.alerts.enabled and "alerts off" in status(app)
        store.apply_many(nan_run("e"), stream="e")
        await until(pilot, lambda: app.alerts.unseen == 1, message="the fifth finding counted")
        assert app.alerts.rung == 2
        await pilot.press("n")
        assert app.alerts.enabled and "alerts off" not in status(app)


@sync
async def test_what_was_there_at_start_rings_nothing(tmp_path):
    (tmp_path / "old.jsonl").write_text("".join(json.dumps(r) + "\n" for r in nan_run("old")))
    ingest = Ingest()
    ingest.add_path(str(tmp_path), poll=True, interval=0.05)
    ingest.start()
    app = MonitorApp(ingest.store, ingest, threaded=False, interval=0.05)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: any(f.run_names == ["old"] for f in app.findings), message="the old finding")
            await until(pilot, lambda: app.diagnoser.events.armed, message="the history read")
            (tmp_path / "new.jsonl").write_text("".join(json.dumps(r) + "\n" for r in nan_run("new")))
            await until(pilot, lambda: app.alerts.rung == 1, timeout=30, message="the bell for the new run")
            assert app.alerts.unseen == 1  # the new run's finding; the old one was on the screen from the start
            assert "1 new finding since" in status(app)
    finally:
        ingest.stop()


@sync
async def test_n_is_in_the_help_and_the_palette_and_no_bell_starts_it_off():
    assert any(keys == "n" and "alerts on / off" in what for keys, what in KEYS)
    app = MonitorApp(Store(splitter=split_metric), None, threaded=False, bell=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert "alerts off" in status(app)
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        app.call_later(commands["Toggle alerts"].callback)
        await until(pilot, lambda: app.alerts.enabled, message="alerts on from the palette")
        await pilot.press("question_mark")
        await pilot.press("end")  # the help's last rows
        await until(pilot, lambda: re.search(r"│ n +alerts on / off", screen_text(app)), message="n in the help")


def test_the_desktop_escape_where_the_terminal_has_one():
    assert escape_kind({"TERM_PROGRAM": "iTerm.app"}) == "9"
    assert escape_kind({"TERM": "foot"}) == "777" and escape_kind({"VTE_VERSION": "7600"}) == "777"
    assert escape_kind({"TERM": "xterm-256color"}) is None  # unknown: the bell alone
    assert escape_kind({"TERM_PROGRAM": "iTerm.app", "TUI_MONITOR_DESKTOP_ESCAPE": "none"}) is None
    name = "evil\x07\x1b]0;retitled\x07; x"  # as a finding's title carries it: escaped already, and more
    assert desktop_escape("9", "tui-monitor", name) == "\x1b]9;tui-monitor: evil  ]0,retitled , x\x07"
    assert desktop_escape("777", "t", "b") == "\x1b]777;notify;t;b\x07"
    assert desktop_escape("9", "t", "b", in_tmux=True) == "\x1bPtmux;\x1b\x1b]9;t: b\x07\x1b\\"
    assert desktop_escape(None, "t", "b") == ""
    rung = []
    alerts = Alerts(env={"TERM_PROGRAM": "WezTerm"})
    alerts.on_events([])
    assert not alerts.ring([], lambda: rung.append("bell"), rung.append) and rung == []


# -- a real terminal ---------------------------------------------------------------------------

needs_tmux = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")

#: An OSC or DCS sequence (their BEL or ST ends them: not a bell).
_SEQUENCES = re.compile(rb"\x1b\](?:[^\x07\x1b]|\x1b(?!\\))*(?:\x07|\x1b\\)|\x1bP(?:[^\x1b]|\x1b\x1b|\x1b(?!\\))*\x1b\\")


def capture(tmux, session) -> str:
    return subprocess.run(tmux + ["capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout


def bells(raw: bytes) -> int:
    """Bell characters the program sent to the terminal, outside escape sequences."""
    return _SEQUENCES.sub(b"", raw).count(b"\x07")


@needs_tmux
def test_watch_in_tmux_rings_the_terminal_bell_once_and_notifies_once(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    sock, session = f"tm-alerts-{os.getpid()}", "watch"
    raw = tmp_path / "pane.raw"
    env = dict(os.environ, PYTHONPATH=str(ROOT), TERM="xterm-256color", TUI_MONITOR_DESKTOP_ESCAPE="777")
    tmux = ["tmux", "-L", sock]
    cmd = f"{sys.executable} -m tui_monitor watch {runs} --notify 'cat >> {tmp_path}/notes.jsonl'"
    writer = None
    try:
        subprocess.run(tmux + ["-f", "/dev/null", "new-session", "-d", "-s", session, "-x", "120", "-y", "36",
                               "sleep 600"], check=True, env=env, cwd=str(tmp_path))
        # the pane's output as the terminal gets it, from the program's very first byte
        subprocess.run(tmux + ["pipe-pane", "-o", "-t", session, f"cat >> {raw}"], check=True)
        subprocess.run(tmux + ["respawn-pane", "-k", "-t", session, cmd], check=True, env=env)
        # the monitor is up on its empty folder (its history: read within 0.1 s of its first look; the
        # writer's NaN comes seconds later)
        wait_for(lambda: "alerts off" not in (shown := capture(tmux, session)) and "tui-monitor" in shown,
                 timeout=30, message="the empty monitor")
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(runs), "bell-run", "300", "0.01", str(ROOT),
                                   "nan"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_for(lambda: bells(raw.read_bytes()) >= 1, timeout=60, message="the bell")
        assert writer.wait(60) == 0
        wait_for(lambda: (tmp_path / "notes.jsonl").exists(), timeout=30, message="the notification")
        screen = capture(tmux, session)
        assert re.search(r"\b[12] new findings? since", screen), screen  # the NaN (and what it may have followed)
        data = raw.read_bytes()
        assert bells(data) == 1
        assert data.count(b"\x1bPtmux;\x1b\x1b]777;notify;tui-monitor;CRITICAL bell-run: divergence/non_finite") == 1
        subprocess.run(tmux + ["send-keys", "-t", session, "q"], check=True)
        wait_for(lambda: subprocess.run(tmux + ["list-panes", "-t", session, "-F", "#{pane_dead}#{pane_current_command}"],
                                        capture_output=True, text=True).stdout.strip() != "0python", timeout=20,
                 message="q to quit")
        notes = [json.loads(line) for line in (tmp_path / "notes.jsonl").read_text().splitlines()]
        findings = [e for n in notes for e in n["events"] if e["type"] == "finding"]
        assert [f["finding"]["symptom"] for f in findings] == ["non_finite"]
        assert bells(raw.read_bytes()) == 1
    finally:
        subprocess.run(tmux + ["kill-server"], capture_output=True)
        if writer is not None and writer.poll() is None:
            writer.kill()
        if writer is not None:
            writer.wait(10)


def test_a_failing_notify_command_reaches_the_app_once():
    from test_notify import QUICK, a_finding
    from tui_monitor.events import FindingEvent
    from tui_monitor.notify import Notifier

    told = []
    notifier = Notifier("echo 'no phone' >&2; exit 3", on_failure=told.append, **QUICK)
    alerts = Alerts(notifier=notifier, env={})
    alerts.on_events([FindingEvent("raised", a_finding("a"), 1.0), FindingEvent("raised", a_finding("b"), 1.0)])
    assert notifier.close()
    assert alerts.failures() == ["the --notify command exited with status 3: no phone"] == told
    assert alerts.failures() == []
    assert alerts.take().new == 2  # and the findings are counted for the header
