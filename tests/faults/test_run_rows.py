"""Which row a stream file feeds when several writers name one run id
(issue 13, item 6, for files): two processes sharing ``TUI_MONITOR_RUN_ID``
are two rows, as over the socket; the ranks of one job are one job; a
requeued job (its previous process ended or is gone) continues its run; one
writer's file deleted and started again stays its run. Real processes write
through the hook."""
from __future__ import annotations

import json
import signal
import subprocess
import sys

from conftest import ROOT, child, records, stream_files, wait_for
from tui_monitor.sources import Ingest
from tui_monitor.store import Store

#: A job that logs step 0, waits for the file ``go``, logs steps 1..99, then
#: waits for the file ``done`` before it closes (so the test decides when
#: each writer is alive).
WRITER = """
import os, sys, time, tui_monitor as tm
name, loss, folder, go, done = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
first = int(sys.argv[6]) if len(sys.argv) > 6 else 0
run = tm.init(name, dir=folder, flush_every=0.01, system_every=0)
run.log({"loss": loss}, step=first)
run.flush()
print("ready", flush=True)
while not os.path.exists(go):
    time.sleep(0.01)
for step in range(first + 1, first + 100):
    run.log({"loss": loss}, step=step)
run.flush()
print("logged", flush=True)
while not os.path.exists(done):
    time.sleep(0.01)
run.close()
"""


def writer(tmp_path, name, loss, go="go", done="done", first=0, env=None):
    proc = child(WRITER, name, str(loss), str(tmp_path / "runs"), str(tmp_path / go), str(tmp_path / done),
                 str(first), env={"TUI_MONITOR_RUN_ID": "shared", **(env or {})})
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    return proc


def logged(proc):
    assert proc.stdout.readline().strip() == "logged", proc.stderr.read()


def requeued(tmp_path, first, name):
    """Kill ``first`` (no end record) once it has logged, and run the job
    again as ``name`` (steps 100..199) to its end."""
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    second = writer(tmp_path, name, 2.0, go="go2", first=100)
    (tmp_path / "go2").touch()
    logged(second)
    (tmp_path / "done").touch()
    assert second.wait(30) == 0
    return second


def series(run):
    s = run.series[("train", "loss")]
    return s.steps.tolist(), s.values.tolist()


def watch_once(*paths):
    out = subprocess.run([sys.executable, "-m", "tui_monitor", "watch", "--once", *map(str, paths)],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return out.stdout


def diagnose_json(*paths):
    out = subprocess.run([sys.executable, "-m", "tui_monitor", "diagnose", "--json", *map(str, paths)],
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode in (0, 1), out.stderr
    return json.loads(out.stdout)


def run_lines(table: str) -> list:
    return [line for line in table.splitlines()[2:] if line.strip()]


def test_two_live_processes_sharing_a_run_id_are_two_rows_read_from_their_files(tmp_path):
    ing = Ingest()
    ing.add_path(str(tmp_path / "runs"), poll=True, interval=0.05)
    ing.start()
    try:
        procs = [writer(tmp_path, "a", 1.0), writer(tmp_path, "b", 2.0)]
        assert len(stream_files(tmp_path / "runs")) == 2
        wait_for(lambda: len(ing.store.runs) == 2, message="both writers' rows")
        (tmp_path / "go").touch()
        for p in procs:
            logged(p)
        wait_for(lambda: all(len(r.series.get(("train", "loss"), ())) == 100 for r in ing.store.runs.values()),
                 message="every step of both")
        (tmp_path / "done").touch()
        assert [p.wait(30) for p in procs] == [0, 0]
        wait_for(lambda: all(r.status == "finished" for r in ing.store.runs.values()), message="both ends")
        runs = sorted(ing.store.runs.values(), key=lambda r: r.run_id)
        assert [r.key for r in runs] == [("shared", 0), ("shared~2", 0)]
        for run in runs:                              # each row one writer's, whole and unmixed
            sent = run.header.get("sent_name", run.name)
            assert run.name == sent + ("~2" if run.run_id == "shared~2" else "")
            assert series(run) == (list(range(100)), [1.0 if sent == "a" else 2.0] * 100)
            assert run.restarts == 0 and run.duplicates == 0 and run.missing == 0
        apart = runs[1]
        assert apart.header["sent_run_id"] == "shared"
        problems = [p for p in ing.problems if "kept apart" in p.reason]
        assert len(problems) == 1 and "'shared~2'" in problems[0].reason
        assert problems[0].source.endswith(".jsonl") and f"pid {apart.pid}" in problems[0].reason
    finally:
        ing.stop()


def test_two_processes_that_ran_together_are_two_rows_when_read_afterwards(tmp_path):
    procs = [writer(tmp_path, "a", 1.0), writer(tmp_path, "b", 2.0)]
    (tmp_path / "go").touch()
    for p in procs:
        logged(p)
    (tmp_path / "done").touch()
    assert [p.wait(30) for p in procs] == [0, 0]
    rows = run_lines(watch_once(tmp_path / "runs"))
    assert len(rows) == 2 and {r.split()[0] for r in rows} in ({"a", "b~2"}, {"a~2", "b"}), rows
    assert all(r.split()[2] == "finished" and r.split()[3] == "99" for r in rows), rows
    report = diagnose_json(tmp_path / "runs")
    assert sorted(r["run_id"] for r in report["runs"]) == ["shared", "shared~2"]


def test_a_requeued_job_continues_its_run(tmp_path):
    """The first process is killed (no end record); the job is started again
    with the same run id: one row, one restart, both stretches in it, live
    and read afterwards."""
    ing = Ingest()
    ing.add_path(str(tmp_path / "runs"), poll=True, interval=0.05)
    ing.start()
    try:
        first = writer(tmp_path, "job", 1.0)
        (tmp_path / "go").touch()
        logged(first)
        wait_for(lambda: len(ing.store.runs) == 1 and len(next(iter(ing.store.runs.values())).series.get(
            ("train", "loss"), ())) == 100, message="the first process's steps")
        second = requeued(tmp_path, first, "job")
        wait_for(lambda: next(iter(ing.store.runs.values())).status == "finished", message="the end")
        assert len(ing.store.runs) == 1 and not [p for p in ing.problems if "kept apart" in p.reason]
        run = next(iter(ing.store.runs.values()))
        assert run.key == ("shared", 0) and run.restarts == 1 and run.pid == second.pid
        assert series(run) == (list(range(200)), [1.0] * 100 + [2.0] * 100)
    finally:
        ing.stop()
    assert len(stream_files(tmp_path / "runs")) == 2
    rows = run_lines(watch_once(tmp_path / "runs"))
    assert len(rows) == 1 and rows[0].split()[:4] == ["job", "0", "finished", "199"], rows


def test_a_job_started_again_after_it_finished_continues_its_run(tmp_path):
    first = writer(tmp_path, "job", 1.0)
    (tmp_path / "go").touch()
    (tmp_path / "done").touch()
    logged(first)
    assert first.wait(30) == 0
    second = writer(tmp_path, "job", 2.0, first=100)
    logged(second)
    assert second.wait(30) == 0
    rows = run_lines(watch_once(tmp_path / "runs"))
    assert len(rows) == 1 and rows[0].split()[:4] == ["job", "0", "finished", "199"], rows


def test_the_ranks_of_one_job_share_its_run_id_and_stay_one_job(tmp_path):
    ranks = [writer(tmp_path, "ddp", float(r), env={"RANK": str(r), "WORLD_SIZE": "2"}) for r in (0, 1)]
    (tmp_path / "go").touch()
    (tmp_path / "done").touch()
    for p in ranks:
        logged(p)
    assert [p.wait(30) for p in ranks] == [0, 0]
    rows = run_lines(watch_once(tmp_path / "runs"))
    assert sorted(r.split()[:3] for r in rows) == [["ddp", "0", "finished"], ["ddp", "1", "finished"]], rows
    report = diagnose_json(tmp_path / "runs")
    assert sorted((r["run_id"], r["rank"]) for r in report["runs"]) == [("shared", 0), ("shared", 1)]


def test_a_writers_file_deleted_and_started_again_stays_its_run(tmp_path):
    """The hook starts a deleted file again at its path with the run's
    header: the same writer, so the same row (no ~2, no restart)."""
    ing = Ingest()
    ing.add_path(str(tmp_path / "runs"), poll=True, interval=0.05)
    ing.start()
    try:
        proc = writer(tmp_path, "job", 1.0)
        wait_for(lambda: len(ing.store.runs) == 1, message="the row")
        path, = stream_files(tmp_path / "runs")
        wait_for(lambda: ing.store.get("shared") is not None and ing.store.get("shared").last_step == 0,
                 message="step 0 read")
        path.unlink()
        (tmp_path / "go").touch()
        logged(proc)
        (tmp_path / "done").touch()
        assert proc.wait(30) == 0
        assert records(path)[0]["type"] == "run"        # started again with the header
        wait_for(lambda: ing.store.get("shared").status == "finished", message="the end")
        assert len(ing.store.runs) == 1 and not [p for p in ing.problems if "kept apart" in p.reason]
        run = ing.store.get("shared")
        assert run.restarts == 0 and series(run) == (list(range(100)), [1.0] * 100)
    finally:
        ing.stop()


def _header(pid, start, host="node7", rank=0):
    return {"type": "run", "seq": 0, "v": 1, "run_id": "shared", "name": "job", "start": start, "host": host,
            "pid": pid, "rank": rank, "world_size": 1, "config": {}, "tags": {}}


def _losses(first_seq, steps, t0, loss):
    return [{"type": "metrics", "seq": first_seq + i, "step": s, "time": t0 + i, "values": {"loss": loss}}
            for i, s in enumerate(steps)]


def test_writers_the_monitor_cannot_see_are_told_apart_by_their_times():
    """On another host (no process to look at): a writer that began while the
    other still wrote is kept apart; one that began after the other went
    quiet for longer than the silence limit, with no end record (killed
    there), continues its run."""
    told = []
    store = Store(report=lambda stream, message: told.append((stream, message)), silent_after=30.0)
    t = 1.7e9
    store.apply_many([_header(100, t), *_losses(1, range(100), t + 1, 1.0)], stream="a.jsonl")
    store.apply_many([_header(200, t + 50), *_losses(1, range(100), t + 51, 2.0)], stream="b.jsonl")
    assert sorted(store.runs) == [("shared", 0), ("shared~2", 0)]
    assert store.get("shared~2").name == "job~2" and store.get("shared~2").header["sent_name"] == "job"
    assert len(told) == 1 and told[0][0] == "b.jsonl" and "pid 100 on node7" in told[0][1]
    assert "'shared~2'" in told[0][1] and "pid 200 on node7" in told[0][1]
    # each writer's later records go on feeding its own row
    store.apply_many(_losses(101, [100], t + 200, 1.0), stream="a.jsonl")
    store.apply_many(_losses(101, [100], t + 201, 2.0), stream="b.jsonl")
    assert set(store.get("shared").series[("train", "loss")].values.tolist()) == {1.0}
    assert set(store.get("shared~2").series[("train", "loss")].values.tolist()) == {2.0}
    # requeued an hour later: the first free row, as a restart
    store.apply_many([_header(300, t + 3600), *_losses(1, [101], t + 3601, 3.0)], stream="c.jsonl")
    assert len(store.runs) == 2 and store.get("shared").restarts == 1 and store.get("shared").pid == 300
    # a writer heard 20 s before the newcomer began may still be at it: the
    # newcomer takes the next row whose writer went quiet long ago (b's)
    store.apply_many([_header(400, t + 3621), *_losses(1, [0], t + 3622, 4.0)], stream="d.jsonl")
    assert len(store.runs) == 2 and store.get("shared").pid == 300
    assert store.get("shared~2").pid == 400 and store.get("shared~2").restarts == 1
    store.apply_many([_header(500, t + 3630)], stream="e.jsonl")     # both held now: a third row
    assert len(store.runs) == 3 and store.get("shared~3").pid == 500


def test_a_writer_whose_process_runs_holds_its_row_whatever_the_times():
    alive = {100: True}
    store = Store(writer_alive=lambda run: alive.get(run.pid))
    t = 1.7e9
    store.apply_many([_header(100, t, host="here"), *_losses(1, [0], t, 1.0)], stream="a.jsonl")
    store.apply_many([_header(200, t + 3600, host="here")], stream="b.jsonl")
    assert sorted(store.runs) == [("shared", 0), ("shared~2", 0)]
    alive[100] = False                  # gone: the next writer continues its run
    store.apply_many([_header(300, t + 7200, host="here")], stream="c.jsonl")
    assert len(store.runs) == 2 and store.get("shared").pid == 300 and store.get("shared").restarts == 1


def test_a_killed_job_read_after_its_requeued_successor_by_name_still_continues_one_row(tmp_path):
    """The requeued job was given another name, so its file sorts first
    ("alpha-..." before "zeta-..."): read in name order, the killed
    predecessor came second, after the successor had written past its start,
    and was kept apart as shared~2. Stream files are read in the order their
    writers started."""
    first = writer(tmp_path, "zeta", 1.0)
    (tmp_path / "go").touch()
    logged(first)
    requeued(tmp_path, first, "alpha")
    names = sorted(p.name for p in stream_files(tmp_path / "runs"))
    assert names[0].startswith("alpha-") and names[1].startswith("zeta-")
    rows = run_lines(watch_once(tmp_path / "runs"))
    assert len(rows) == 1 and rows[0].split()[:4] == ["alpha", "0", "finished", "199"], rows
    ing = Ingest()
    ing.add_path(str(tmp_path / "runs"))
    ing.read_all()
    run, = ing.store.runs.values()
    assert run.restarts == 1 and series(run) == (list(range(200)), [1.0] * 100 + [2.0] * 100)
    assert not [p for p in ing.problems if "kept apart" in p.reason]
