"""``tui-monitor diagnose --follow`` as a real process, on real trainings
(tiny torch models on the CPU) and on streams written here: findings and runs
printed as they happen, ``--notify`` once per finding, ``--until-done`` and
its exit statuses, signals."""
from __future__ import annotations

import collections
import importlib.util
import json
import signal
from pathlib import Path

import pytest

from conftest import child, free_port, wait_for
from follow_helpers import HOSTILE_NAME, monitor, notifications, training
from source_helpers import append, header, metrics

needs_torch = pytest.mark.skipif(importlib.util.find_spec("torch") is None,
                                 reason="trains a real model: pip install torch==2.13.0")

ENV_LOG = ('printf "%s|%s|%s|%s|%s\\n" "$TUI_MONITOR_EVENT" "$TUI_MONITOR_KIND" "$TUI_MONITOR_RUN" '
           '"$TUI_MONITOR_STEP" "$TUI_MONITOR_SEVERITY" >> env.txt')


def is_event(kind, change):
    def match(line):
        try:
            e = json.loads(line)
        except ValueError:
            return False
        return e.get("type") == kind and e.get("change") == change
    return match


@needs_torch
def test_a_nan_training_is_reported_while_it_still_writes_and_paged_once_per_finding(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    go = tmp_path / "go"
    mon = monitor("diagnose", "--follow", "--json", "--until-done", "runs",
                  "--notify", f"cat >> notes.jsonl; {ENV_LOG}", cwd=tmp_path)
    mon.wait_err("followed live")  # the history (none) is read: what comes now is news
    train = training(runs, HOSTILE_NAME, "nan", go, cwd=tmp_path)  # where a name that ran would leave files

    line = mon.wait_out(is_event("finding", "raised"), what="a finding")
    finding = json.loads(line)["finding"]
    assert finding["kind"] == "divergence" and finding["severity"] == "critical"
    assert finding["runs"][0]["name"] == HOSTILE_NAME
    # the training cannot end before `go` exists: it is still writing
    assert train.proc.poll() is None
    stream = next(runs.glob("*.jsonl"))
    size = stream.stat().st_size
    wait_for(lambda: stream.stat().st_size > size, message="the training to write more after the finding")
    go.touch()

    assert train.exit_status() == 1, train.err[-3:]  # FloatingPointError, not the give-up exit 3
    assert mon.exit_status() == 1  # a run crashed, a critical finding stands
    events = mon.json()
    kinds = [(e["type"], e.get("change")) for e in events]
    assert kinds[0] == ("run", "started") and kinds[-1] == ("done", None)
    assert kinds.index(("finding", "raised")) < kinds.index(("run", "ended"))
    ended = next(e for e in events if e.get("change") == "ended")
    assert ended["run"]["status"] == "crashed" and ended["run"]["error"].startswith("FloatingPointError: loss is")
    assert events[-1]["status"] == 1 and events[-1]["runs"] == {"crashed": 1}

    # --notify: exactly one notification per critical finding and one for the run's end
    raised = {e["finding"]["id"] for e in events if e["type"] == "finding" and e["change"] in ("raised", "changed")
              and e["finding"]["severity"] == "critical"}
    notes = notifications(tmp_path / "notes.jsonl")
    paged = collections.Counter(e["finding"]["id"] if e["type"] == "finding" else ("end", e["run"]["run_id"])
                                for n in notes for e in n["events"])
    assert set(paged) == raised | {("end", ended["run"]["run_id"])}
    assert set(paged.values()) == {1}
    assert all(n["count"] == len(n["events"]) for n in notes)
    # names with shell metacharacters arrive intact, and nothing ran them
    for n in notes:
        for e in n["events"]:
            name = e["finding"]["runs"][0]["name"] if e["type"] == "finding" else e["run"]["name"]
            assert name == HOSTILE_NAME
    env = (tmp_path / "env.txt").read_text().splitlines()
    assert len(env) == len(notes) and all(f"|{HOSTILE_NAME}|" in line for line in env)
    assert not list(tmp_path.rglob("pwned*")) and not list(Path.cwd().glob("pwned*"))


@needs_torch
def test_a_healthy_training_pages_no_finding_only_its_end(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    mon = monitor("diagnose", "--follow", "--until-done", "runs", "--notify-on", "warning",
                  "--notify", "cat >> notes.jsonl", cwd=tmp_path)
    mon.wait_err("followed live")
    train = training(runs, "healthy-mlp", "healthy", tmp_path / "never")
    assert train.exit_status() == 0
    assert mon.exit_status() == 0, mon.out
    text = list(mon.out)
    assert any(" run       started    healthy-mlp (id " in line for line in text), text
    assert any(" run       ended      healthy-mlp finished at step 199" in line for line in text), text
    assert "every run has ended (1 finished); findings standing: none; exit status 0" in text[-1]
    notes = notifications(tmp_path / "notes.jsonl")
    assert [n["event"] for n in notes] == ["run_ended"]
    assert notes[0]["title"] == "healthy-mlp finished at step 199"


def finished_stream(path, name, crashed=False, nan=False):
    append(path, header(run_id=name, name=name))
    for step in range(40):
        append(path, metrics(step + 1, step, "NaN" if nan and step > 30 else 1.0 / (1 + step)))
    end = {"type": "end", "seq": 41, "time": 1100.0, "status": "crashed" if crashed else "finished", "dropped": 0}
    append(path, json.dumps(end) + "\n")


@pytest.mark.parametrize("crashed,status", [(False, 0), (True, 1)])
def test_until_done_exit_status_and_history_pages_nobody(tmp_path, crashed, status):
    finished_stream(tmp_path / "a.jsonl", "old-run", crashed=crashed, nan=crashed)
    mon = monitor("diagnose", "--follow", "--until-done", "--json", tmp_path / "a.jsonl",
                  "--notify", "cat >> notes.jsonl", cwd=tmp_path)
    assert mon.exit_status() == status
    events = mon.json()
    assert [(e["type"], e.get("change")) for e in events][:1] == [("run", "started")]
    assert events[-1]["type"] == "done" and events[-1]["status"] == status
    assert not (tmp_path / "notes.jsonl").exists()  # what was there at start is not news


def test_until_done_ends_on_a_run_that_stopped_long_ago(tmp_path):
    # an old log without an end record is stopped: --until-done waited for it forever
    append(tmp_path / "a.jsonl", header(run_id="gone", name="gone-run"))
    for step in range(20):
        append(tmp_path / "a.jsonl", metrics(step + 1, step, 1.0 / (1 + step)))
    finished_stream(tmp_path / "b.jsonl", "done-run")
    mon = monitor("diagnose", "--follow", "--until-done", tmp_path, "--notify", "cat >> notes.jsonl", cwd=tmp_path)
    assert mon.exit_status() == 1  # nobody knows that it finished
    out = "\n".join(mon.out)
    assert "stopped    gone-run stopped at step 19: no end record, and nothing heard for 24 h" in out, out
    assert "every run has ended (1 finished, 1 stopped)" in mon.out[-1]
    assert not (tmp_path / "notes.jsonl").exists()  # history


@pytest.mark.parametrize("sig,status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signals_stop_it_with_their_status(tmp_path, sig, status):
    mon = monitor("diagnose", "--follow", tmp_path)
    mon.wait_err("followed live")
    mon.proc.send_signal(sig)
    assert mon.exit_status() == status


def test_it_follows_a_listener(tmp_path):
    port = free_port()
    mon = monitor("diagnose", "--follow", "--listen", f"127.0.0.1:{port}", cwd=tmp_path)
    mon.wait_err("followed live")
    hook = child(f"""
        import tui_monitor
        run = tui_monitor.init("over-the-wire", dir="", to="127.0.0.1:{port}")
        for step in range(30):
            run.log({{"loss": 1.0 / (1 + step) if step < 20 else float("nan")}}, step=step)
        run.close()
    """, cwd=tmp_path)
    assert hook.wait(60) == 0
    line = mon.wait_out(lambda l: "CRITICAL  raised     divergence/non_finite  over-the-wire from step 20" in l)
    assert "the train loss became NaN at step 20" in line
    mon.wait_out(lambda l: " ended      over-the-wire finished at step 29" in l)


def test_usage_errors(tmp_path):
    for args, message in [
        (("diagnose", "--until-done", tmp_path), "--until-done is for the follow mode: add --follow"),
        (("diagnose", "--notify", "true", tmp_path), "--notify is for the follow mode: add --follow"),
        (("diagnose",), "give a file or folder to diagnose"),
        (("diagnose", "--follow", "--notify", " ", tmp_path), "--notify needs a command"),
        (("diagnose", "--follow", "--notify-on", "warning", tmp_path), "go with --notify CMD"),
        (("diagnose", "--follow", "--listen", "nowhere", tmp_path), "diagnose:"),
        (("diagnose", "--follow", "--listen", "127.0.0.1:0", "--token", "s3cret"), "--token is no longer accepted"),
        (("watch", "--once", "--notify", "true", tmp_path), "--notify follows runs live: it cannot be used with --once"),
        (("watch", "--notify-timeout", "0", "--notify", "true", tmp_path), "--notify-timeout must be more than 0"),
    ]:
        mon = monitor(*args, cwd=tmp_path)
        assert mon.exit_status() == 2, args
        wait_for(lambda mon=mon: mon.err, message="the error")
        assert any(message in line for line in mon.err), (args, mon.err)
