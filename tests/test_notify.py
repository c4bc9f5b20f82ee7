"""The notifier (tui_monitor/notify.py) with real commands run by /bin/sh:
which events page, once per finding, bursts as one notification, what the
command reads, and a command that fails or hangs."""
from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import wait_for
from diagnose_helpers import run_records
from follow_helpers import HOSTILE_NAME, notifications
from tui_monitor.diagnose import Diagnoser
from tui_monitor.events import EventTracker, FindingEvent, RunEvent, RunInfo
from tui_monitor.notify import Notifier
from tui_monitor.safe_text import clean
from tui_monitor.schema import split_metric
from tui_monitor.store import Store

QUICK = dict(quiet=0.05, longest=1.0, timeout=20.0)


def nan_losses(n=80, at=50):
    losses = list(0.5 + 0.5 * np.exp(-np.arange(n) / 20))
    losses[at:] = [float("nan")] * (n - at)
    return losses


def job_records(rank, world, name="job", losses=None):
    """One rank of a multi-rank job whose loss goes NaN at step 50."""
    recs = run_records(name, losses or nan_losses(), run_id="job-1", end=False)
    recs[0].update(rank=rank, world_size=world, host="elsewhere")
    recs.append({"type": "end", "seq": len(recs), "time": recs[-1]["time"] + 1, "status": "crashed",
                 "error": {"type": "FloatingPointError", "message": "loss is nan"}})
    return recs


def live_events(*streams):
    """The events a tracker reports once the streams are in a store (all live)."""
    store = Store(splitter=split_metric)
    engine = Diagnoser(store)
    tracker = EventTracker(store)
    for i, recs in enumerate(streams):
        store.apply_many(recs, stream=i)
    return tracker.update(engine.update)[1]


def a_finding(name="run-a", severity="critical"):
    events = live_events(run_records(name, nan_losses(), end=False))
    f = next(e.finding for e in events if isinstance(e, FindingEvent) and e.finding.symptom == "non_finite")
    return dataclasses.replace(f, severity=severity)


def cat_into(path):
    return f"cat >> '{path}'"


def test_a_finding_pages_once_however_often_it_flickers(tmp_path):
    notes = tmp_path / "notes.jsonl"
    f = a_finding()
    n = Notifier(cat_into(notes), **QUICK)
    try:
        assert n.offer([FindingEvent("raised", f, 1.0)]) == 1
        wait_for(lambda: len(notifications(notes)) == 1, message="the first notification")
        for change in ("retracted", "raised", "changed", "retracted", "raised"):  # flickers
            assert n.offer([FindingEvent(change, f, 2.0)]) == 0
    finally:
        assert n.close()
    got = notifications(notes)
    assert len(got) == 1 and n.sent == 1
    assert got[0]["event"] == "finding" and got[0]["events"][0]["finding"]["id"] == f.id


def test_a_64_rank_job_going_down_is_one_notification(tmp_path):
    notes = tmp_path / "notes.jsonl"
    events = live_events(*(job_records(r, 64) for r in range(64)))
    critical = {e.id for e in events if isinstance(e, FindingEvent) and e.severity == "critical"}
    ended = [e for e in events if isinstance(e, RunEvent) and e.change == "ended"]
    assert len(critical) >= 64 and len(ended) == 64
    n = Notifier(cat_into(notes), **QUICK)
    # the ranks' findings come over several updates, within the burst window
    for i in range(0, len(events), 16):
        n.offer(events[i:i + 16])
    assert n.close()
    got = notifications(notes)
    assert len(got) == 1, [g["title"] for g in got]
    note = got[0]
    assert note["event"] == "burst" and note["count"] == len(critical) + 64
    assert len(note["events"]) + note["omitted"] == note["count"] and len(note["events"]) == 100
    assert note["severity"] == "critical"
    assert "64 runs ended (64 crashed)" in note["title"] and "job (64 ranks)" in note["title"], note["title"]
    assert note["events"][0]["type"] == "finding"  # the most severe first


def test_what_pages_severity_threshold_history_and_run_ends(tmp_path):
    notes = tmp_path / "notes.jsonl"
    warning, critical = a_finding("w", "warning"), a_finding("c", "critical")
    info = RunInfo("r1", 0, "r", "r", 1, "finished", 10, None)
    crit_only = Notifier(cat_into(notes), **QUICK)
    events = [FindingEvent("raised", warning, 1.0), FindingEvent("raised", critical, 1.0),
              FindingEvent("raised", a_finding("old"), 1.0, live=False),  # history read at start
              RunEvent("started", info, 1.0), RunEvent("ended", info, 1.0),
              RunEvent("ended", RunInfo("r0", 0, "old", "old", 1, "crashed", 3, None), 1.0, live=False),
              RunEvent("silent", RunInfo("r2", 0, "far", "far", 1, "silent", 7, None), 1.0),
              RunEvent("stopped", RunInfo("r2", 0, "far", "far", 1, "stopped", 7, None), 1.0)]
    assert crit_only.offer(events) == 3  # the critical finding, the run that ended now, the one that stopped
    assert crit_only.close()
    note = notifications(notes)[0]
    assert [e.get("finding", {}).get("id") or e["run"]["name"] for e in note["events"]] == [critical.id, "r", "far"]
    assert "2 runs ended (1 stopped)" in note["title"], note["title"]
    notes.unlink()
    from_warning = Notifier(cat_into(notes), threshold="warning", **QUICK)
    assert from_warning.offer(events[:2]) == 2
    assert from_warning.close()
    assert notifications(notes)[0]["count"] == 2
    with pytest.raises(ValueError):
        Notifier("true", threshold="info")


def test_stream_text_reaches_the_command_intact_and_is_never_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where a command substitution that ran would leave its files
    name = HOSTILE_NAME + " \x1b]0;retitled\x07"
    f = a_finding(name)
    cmd = ('cat >> notes.jsonl; printf "%s\\n" "$TUI_MONITOR_RUN" "$TUI_MONITOR_KIND" "$TUI_MONITOR_SYMPTOM" '
           '"$TUI_MONITOR_STEP" "$TUI_MONITOR_SEVERITY" "$TUI_MONITOR_EVENT" "$TUI_MONITOR_TITLE" > env.txt')
    n = Notifier(cmd, **QUICK)
    n.offer([FindingEvent("raised", f, 1.0)])
    assert n.close() and n.failures == 0
    note = notifications(tmp_path / "notes.jsonl")[0]
    assert note["events"][0]["finding"]["runs"][0]["name"] == name  # exactly, escape character included
    assert "\x1b" not in (tmp_path / "notes.jsonl").read_text()  # as \u001b: the JSON is safe to cat
    env = (tmp_path / "env.txt").read_text().split("\n")
    assert env[:6] == [clean(name), "divergence", "non_finite", "50", "critical", "finding"]
    assert env[6] == f"CRITICAL {clean(name)}: divergence/non_finite from step 50"
    assert "\x1b" not in env[0] and "\\x1b]0;retitled\\x07" in env[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["env.txt", "notes.jsonl"]  # no pwned*


def test_a_hung_command_is_killed_with_what_it_started_and_reported_once(tmp_path):
    reports = []
    cmd = f"sleep 300 & echo $! > '{tmp_path}/child.pid'; wait"
    n = Notifier(cmd, quiet=0.05, longest=1.0, timeout=1.0, on_failure=reports.append)
    n.offer([FindingEvent("raised", a_finding("a"), 1.0)])
    assert n.busy  # offer() came back while the command runs
    wait_for(lambda: reports, timeout=30, message="the timeout to be reported")
    assert reports == ["the --notify command did not finish in time and was killed"]
    pid = int((tmp_path / "child.pid").read_text())

    def gone():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True,
                              text=True).stdout.strip().startswith("Z")
    wait_for(gone, timeout=10, message="the command's child to be killed")
    n.offer([FindingEvent("raised", a_finding("b"), 2.0)])
    assert n.close(timeout=30)
    assert n.failures == 2 and len(reports) == 1  # said once


def test_a_failing_command_is_reported_once_until_it_works_again(tmp_path):
    reports = []
    ok = tmp_path / "ok"
    cmd = f"test -e '{ok}' || {{ echo 'no route to the phone' >&2; exit 3; }}"
    n = Notifier(cmd, on_failure=reports.append, **QUICK)

    def page(name):
        before = n.sent + n.failures
        n.offer([FindingEvent("raised", a_finding(name), 1.0)])
        wait_for(lambda: n.sent + n.failures == before + 1, timeout=30, message="the command to run")

    page("a")
    page("b")
    assert reports == ["the --notify command exited with status 3: no route to the phone"]
    ok.touch()
    page("c")
    ok.unlink()
    page("d")
    assert n.close()
    assert (n.sent, n.failures, len(reports)) == (1, 3, 2)


def test_a_command_that_reads_nothing_and_a_missing_one(tmp_path):
    events = live_events(*(job_records(r, 64, name="job-" + "x" * 1000) for r in range(64)))
    from tui_monitor.notify import Notification
    assert len(Notification(tuple(events)).stdin()) > 65536  # more than a pipe holds: the writer must not block
    n = Notifier("true", **QUICK)
    n.offer(events)
    assert n.close() and (n.sent, n.failures) == (1, 0)
    reports = []
    n = Notifier("no-such-command-here", on_failure=reports.append, **QUICK)
    n.offer([FindingEvent("raised", a_finding(), 1.0)])
    assert n.close()
    assert len(reports) == 1 and reports[0].startswith("the --notify command exited with status 127")


def test_the_notify_module_imports_no_ui():
    code = ("import sys, tui_monitor.notify, tui_monitor.events, tui_monitor.commands.follow; "
            "print([m for m in ('textual', 'rich') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, PYTHONPATH=os.getcwd()))
    assert out.stdout.strip() == "[]"
