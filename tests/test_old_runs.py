"""Runs with no end record that stopped writing long ago (issue 14, item 4):
shown as stopped, with how long ago, everywhere (the store, ``watch
--once``, ``diagnose --json``, the TUI's runs table and status line); not
"silent for three years", not "finished" (nobody knows they finished), not
"crashed". The status moves with the clock: a file watched while it goes
quiet for a day becomes stopped without being read again."""
from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import time

import pytest

from conftest import ROOT, child, records, stream_files
from tui_helpers import screen_text, sync, until
from tui_monitor.sources import Ingest
from tui_monitor.store import Store

THREE_YEARS = 3 * 365 * 86400

HOOK_RUN = """
import sys, tui_monitor as tm
run = tm.init(sys.argv[2], dir=sys.argv[1], flush_every=0.01, system_every=0, config={"lr": 0.1})
for step in range(20):
    run.log({"loss": 1.0 / (step + 1)}, step=step)
run.flush()
import os
os._exit(0)          # no end record: as a job killed with SIGKILL leaves its stream
"""


def hook_log_of_long_ago(folder, name, host=None):
    """A real stream file written by the hook in a process that died
    without an end record, as it reads three years later: its record
    times three years back, and (with ``host``) written on another machine."""
    proc = child(HOOK_RUN, str(folder), name)
    assert proc.wait(60) == 0, proc.stderr.read()
    path, = [p for p in stream_files(folder) if p.name.startswith(name)]
    out = []
    for rec in records(path):
        for field in ("time", "start"):
            if isinstance(rec.get(field), (int, float)):
                rec[field] -= THREE_YEARS
        if host and rec["type"] == "run":
            rec["host"] = host
        out.append(json.dumps(rec))
    path.write_text("\n".join(out) + "\n")
    assert not any(r["type"] == "end" for r in records(path))
    aged(path)
    return path


def aged(*paths, by=THREE_YEARS):
    for path in paths:
        st = os.stat(path)
        os.utime(path, (st.st_atime - by, st.st_mtime - by))


def csv_log(path, steps=30):
    """A CSV log as Keras' CSVLogger or a hand-written loop leaves it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["epoch", "loss", "val_loss"])
        for e in range(steps):
            w.writerow([e, 1.0 / (e + 1), 1.2 / (e + 1)])
    return path


def cli(*args):
    out = subprocess.run([sys.executable, "-m", "tui_monitor", *map(str, args)], capture_output=True, text=True,
                         timeout=120, cwd=ROOT)
    assert out.returncode in (0, 1), out.stderr
    return out.stdout


def watch_once_rows(folder):
    lines = cli("watch", "--once", folder).splitlines()
    head = lines[0]
    col = head.index("status"), head.index("step")
    return {line.split()[0]: line[col[0]:col[1]].strip() for line in lines[2:] if line.strip()}


def test_watch_once_shows_runs_that_stopped_years_ago_as_stopped_with_how_long_ago(tmp_path):
    hook_log_of_long_ago(tmp_path / "logs", "here")                          # this host, its pid long gone
    hook_log_of_long_ago(tmp_path / "logs", "elsewhere", host="gpu-node-17")  # a host we cannot look at
    aged(csv_log(tmp_path / "logs" / "keras" / "training.log"))
    rows = watch_once_rows(tmp_path / "logs")
    assert rows == {"here": "stopped 3y ago", "elsewhere": "stopped 3y ago", "keras/training.log": "stopped 3y ago"}


def test_diagnose_json_says_stopped(tmp_path):
    hook_log_of_long_ago(tmp_path, "old", host="gpu-node-17")
    report = json.loads(cli("diagnose", "--json", tmp_path))
    assert [r["status"] for r in report["runs"]] == ["stopped"]


def test_the_store_status_of_an_old_csv_log_is_stopped_with_no_end_made_up(tmp_path):
    path = aged(csv_log(tmp_path / "run" / "metrics.csv")) or tmp_path / "run" / "metrics.csv"
    ing = Ingest()
    ing.add_path(str(tmp_path))
    ing.read_all()
    run, = ing.store.runs.values()
    assert run.status == "stopped" and run.end is None
    assert run.last_seen == pytest.approx(os.stat(path).st_mtime)
    # rows written again later: it goes on, running
    with open(path, "a") as f:
        f.write("30,0.03,0.04\n")
    ing.read_all()
    assert run.status == "running" and run.last_step == 30 and run.restarts == 0


def test_a_log_that_goes_quiet_for_a_day_while_watched_becomes_stopped_without_being_read(tmp_path):
    path = csv_log(tmp_path / "run" / "metrics.csv")
    ing = Ingest()
    ing.add_path(str(tmp_path))
    ing.read_all()
    run, = ing.store.runs.values()
    assert run.status == "running"
    written = os.stat(path).st_mtime
    version = ing.store.version
    ing.check_liveness(now=written + 3600)           # the periodic check, an hour later
    assert run.status == "silent"
    ing.check_liveness(now=written + 26 * 3600)      # and a day later: the file was not read again
    assert run.status == "stopped" and ing.store.version > version
    assert run.status_at(written + 26 * 3600) == "stopped" and run.status_at(written + 10, 60) == "running"


def test_a_process_gone_a_moment_ago_is_crashed_one_gone_long_ago_stopped(tmp_path):
    """The process check says crashed only of a run heard from within the
    day: a week-old log whose pid is gone stopped, nobody knows how."""
    store = Store()
    t = time.time()
    for run_id, last in (("recent", t - 60), ("old", t - 7 * 86400)):
        store.apply_many([{"type": "run", "seq": 0, "run_id": run_id, "name": run_id, "start": last - 100,
                           "host": "h", "pid": 999_999, "rank": 0, "world_size": 1},
                          {"type": "metrics", "seq": 1, "step": 0, "time": last, "values": {"loss": 1.0}}],
                         stream=run_id)
    ing = Ingest(store)
    ing.hostname = "h"
    ing.check_liveness(now=t)
    assert store.get("recent").status == "crashed" and store.get("old").status == "stopped"


@sync
async def test_the_tui_shows_stopped_runs_in_the_runs_table_and_the_status_line(tmp_path):
    from tui_monitor.tui import MonitorApp

    aged(csv_log(tmp_path / "old" / "metrics.csv"))
    csv_log(tmp_path / "new" / "metrics.csv")
    ing = Ingest()
    ing.add_path(str(tmp_path))
    ing.read_all()
    app = MonitorApp(ing.store, ing, interval=0.05)
    async with app.run_test(size=(120, 40)) as pilot:
        text = await until(pilot, lambda: "stopped 3y ago" in screen_text(app) and screen_text(app),
                           message="the stopped run's status")
        old_line = next(line for line in text.splitlines() if " old " in line)
        assert "stopped 3y ago" in old_line and "finished" not in old_line and "silent" not in old_line
        assert "1 running" in text and "1 stopped" in text
