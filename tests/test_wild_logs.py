"""Every format people already have on disk, read by every command, live and
after the fact (issue 14): the real library writes the files in the test
(wild_logs.py), and ``watch`` (its follower, started as ``watch`` starts
it), ``watch --once``, ``diagnose``, ``diagnose --follow`` and ``cat`` read
them while the run is open (the writer stops halfway and waits) and after it
ended. What they read is compared with what the library logged.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple

import pytest

from conftest import ROOT
from tui_monitor.cli import main
from wild_logs import WILD, Expect, Snapshot, Wild, close, errors_of, missing, series, snapshot, truth_of, writer


class Said(NamedTuple):
    """What one command printed and its exit status."""
    rc: int
    out: str
    err: str


class Moment(NamedTuple):
    """The files as the commands read them at one moment."""
    truth: dict                    #: what the writer had logged by then
    store: Snapshot                #: what the follower started as ``watch`` starts it had read
    watch_once: Said
    diagnose: Said
    cats: Dict[str, Said]          #: file (relative) -> ``cat --json`` of it


class Looked(NamedTuple):
    wild: Wild
    folder: Path
    halfway: Moment
    after: Moment
    caught_up: bool                #: whether the live follower got to the end of what was written
    follow: Said                   #: ``diagnose --follow --json`` from before the run started to after it


def said(*argv: str) -> Said:
    """``tui-monitor ARGV``, run in this process as the command line runs it."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(argv))
    return Said(rc, out.getvalue(), err.getvalue())


def settle(condition, timeout: float = 60.0) -> bool:
    """Wait for ``condition``; False (not a failure) when it does not come."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def read_as_logged(store: Snapshot, wild: Wild, truth: dict) -> bool:
    """Whether every run of ``wild`` holds every series its writer logged."""
    for expect in wild.runs:
        if expect.name not in store:
            return False
        got = store[expect.name][2]
        for key, (steps, values) in series(truth, expect).items():
            if key not in got or got[key][0] != steps or not close(expect, got[key][1], values):
                return False
    return True


def _look(wild: Wild, folder: Path, store: Snapshot, truth: dict) -> Moment:
    path = str(folder / wild.path)
    cats = {str(f.relative_to(folder)): said("cat", "--json", str(f))
            for pattern in wild.cat for f in sorted(folder.glob(pattern))}
    return Moment(truth, store, said("watch", "--once", path), said("diagnose", "--json", path), cats)


@pytest.fixture(scope="module", params=sorted(WILD))
def looked(request, tmp_path_factory) -> Looked:
    """One format written by its library while followed: read halfway, then to the end."""
    from tui_monitor.sources import open_ingest
    wild = WILD[request.param]
    need = missing(wild)
    if need:
        pytest.skip(f"{wild.name} is written by {', '.join(need)} (the integrations extra)")
    folder = tmp_path_factory.mktemp("wild") / wild.name
    folder.mkdir()
    path = folder / wild.path
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    # diagnose --follow and the follower of `watch`, started before the run: a file named is waited for
    follow = subprocess.Popen([sys.executable, "-m", "tui_monitor", "diagnose", "--follow", "--json", str(path)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    followed: List[str] = []
    reading = threading.Thread(target=lambda: followed.extend(follow.stdout), daemon=True)
    reading.start()
    store, ingest = open_ingest([str(path)])
    proc = writer(wild, folder, halfway=True)

    def now() -> Snapshot:
        with ingest._lock:   # the follower's threads write the store
            return snapshot(store)

    try:
        assert proc.stdout.readline() == "HALFWAY\n", errors_of(folder).read_text()[-3000:]
        settle(lambda: all(e.name in now() for e in wild.runs if e.at_halfway), 30)
        halfway = _look(wild, folder, now(), truth_of(folder, halfway=True))
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.wait(timeout=300) == 0, errors_of(folder).read_text()[-3000:]
        truth = truth_of(folder)
        caught_up = settle(lambda: read_as_logged(now(), wild, truth), 30)
        after = _look(wild, folder, now(), truth)
        # what diagnose --follow said of the runs, once it had seen them all end or go on
        settle(lambda: all(any(f'"name": "{e.name}"' in line for line in followed) for e in wild.runs), 20)
        settle(lambda: any('"type": "finding"' in line for line in followed), 5 if wild.name == "hf" else 0)
    finally:
        ingest.stop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        follow.send_signal(signal.SIGTERM)
        try:
            rc = follow.wait(timeout=30)
        except subprocess.TimeoutExpired:
            follow.kill()
            rc = follow.wait()
        reading.join(10)
    return Looked(wild, folder, halfway, after, caught_up, Said(rc, "".join(followed), follow.stderr.read()))


# ---------------------------------------------------------------- watch: followed live

def _series_read_are_logged(run: Tuple[str, Optional[int], dict], expect: Expect, truth: dict) -> List[str]:
    """What of ``run``'s series is not as ``truth`` logged it: a held-out
    series the writer never logged (a split read wrongly), or points read
    that are not the first points logged."""
    wrong = []
    logged = series(truth, expect)
    for key, (steps, values) in run[2].items():
        if key not in logged:
            if key[0] != "train":
                wrong.append(f"{key}: not logged (a split read wrongly?)")
            continue
        want_steps, want = logged[key]
        if steps != want_steps[:len(steps)] or not close(expect, values, want[:len(values)]):
            wrong.append(f"{key}: read {list(zip(steps, values))[:6]}..., logged {list(zip(want_steps, want))[:6]}...")
    return wrong


def test_watch_follows_it_live(looked):
    """The follower ``watch`` starts read the files as they were written:
    halfway, what it had was what the library had logged (no split read
    wrongly, no value or step off); at the end, all of it, once."""
    wild, half = looked.wild, looked.halfway
    assert set(half.store) <= {e.name for e in wild.runs}, sorted(half.store)
    for expect in wild.runs:
        if expect.at_halfway:
            assert expect.name in half.store, (expect.name, sorted(half.store))
            run = half.store[expect.name]
            assert any(steps for steps, _ in run[2].values()), run
            assert not _series_read_are_logged(run, expect, looked.after.truth), expect.name
    assert looked.caught_up, "the follower never read everything the library logged"
    assert sorted(looked.after.store) == sorted(e.name for e in wild.runs)
    for expect in wild.runs:
        run = looked.after.store[expect.name]
        assert not _series_read_are_logged(run, expect, looked.after.truth), expect.name
        assert run[0] == (expect.status or "running"), (expect.name, run[0])
        # a running total (modded-nanogpt's train_time:305ms) or a time left is no metric
        assert not {f"{split}/{metric}" for split, metric in run[2]} & set(expect.not_read), expect.name


# ---------------------------------------------------------------- watch --once

def _rows(text: str) -> Dict[str, Dict[str, str]]:
    """The runs table of ``watch --once``, by run name."""
    lines = text.splitlines()
    headers = lines[0].split()
    starts = [lines[0].index(h) for h in ("rank", "status", "step", "metric", "train", "val", "best val", "params")]
    rows = {}
    for line in lines[2:]:
        name = line[:starts[0]].strip()
        cells = [line[a:b].strip() for a, b in zip(starts, starts[1:] + [None])]
        rows[name] = dict(zip(["rank", "status", "step", "metric", "train", "val", "best", "params"], cells))
    assert headers[0] == "run", text
    return rows


def _last(truth: dict, expect: Expect, split: str, metric: str = "loss") -> Optional[Tuple[int, float]]:
    got = series(truth, expect).get((split, metric))
    return (got[0][-1], got[1][-1]) if got else None


@pytest.mark.parametrize("moment", ["halfway", "after"])
def test_watch_once(looked, moment):
    """``watch --once``: a row per run, its last step and its last train and
    val losses as logged; while the run is open, running."""
    at: Moment = getattr(looked, moment)
    assert at.watch_once.rc == 0, at.watch_once.err
    rows = _rows(at.watch_once.out)
    expected = [e for e in looked.wild.runs if moment == "after" or e.at_halfway]
    assert sorted(rows) == sorted(e.name for e in expected), at.watch_once.out
    for expect in expected:
        row = rows[expect.name]
        if moment == "halfway" or expect.status is None:
            assert row["status"].split()[0] in ("running", "silent"), row
        else:
            assert row["status"] == expect.status, row
        if moment == "halfway":
            continue
        for split in ("train", "val"):
            last = _last(at.truth, expect, split)
            if last is None:
                assert row[split] == "-", (expect.name, split, row)
            else:
                tolerance = 0 if expect.tolerance == "f32" else float(expect.tolerance)
                # the table shows 4 significant digits (1.47e-13 for 1.469e-13)
                assert float(row[split]) == pytest.approx(last[1], rel=5e-3, abs=tolerance), (expect.name, split, row)
        steps = [s for steps, _ in series(at.truth, expect).values() for s in steps]
        assert int(row["step"]) == max(steps), (expect.name, row)


# ---------------------------------------------------------------- diagnose

@pytest.mark.parametrize("moment", ["halfway", "after"])
def test_diagnose(looked, moment):
    """``diagnose``: every run diagnosed, with the held-out split the
    library logged (a run that logged none is said to have none); the tiny
    GPT-2 that memorises its training set is overfitting, from its
    trainer_state.json as from its printed output."""
    at: Moment = getattr(looked, moment)
    assert at.diagnose.rc in (0, 1), at.diagnose.err
    report = json.loads(at.diagnose.out)
    runs = {r["name"]: r for r in report["runs"]}
    expected = [e for e in looked.wild.runs if moment == "after" or e.at_halfway]
    assert sorted(runs) == sorted(e.name for e in expected)
    for expect in expected:
        run = runs[expect.name]
        held_out = next(d for d in run["decisions"] if d["question"] == "held-out loss large?")
        logged = series(at.truth, expect)
        split = next((s for s in ("val", "test") if (s, "loss") in logged), None)
        if not any(s in ("val", "test") for s, _ in logged):
            assert held_out["why"] == "no held-out loss or score logged", held_out
        elif split is not None:
            word = {"val": "validation"}.get(split, split)
            assert "no held-out" not in held_out["why"] and f"{word} loss" in held_out["why"], held_out
        train = logged.get(("train", "loss"))
        if moment == "after" and train:
            assert run["last_step"] == train[0][-1], run
    if looked.wild.name == "hf" and moment == "after":
        assert at.diagnose.rc == 1
        assert {r["name"]: r["verdict"] for r in report["runs"]} == {"hf/output": "overfitting",
                                                                    "hf/train.log": "overfitting"}


def test_diagnose_follow(looked):
    """``diagnose --follow``, started before the run: each run's start said
    as it came (the overfitting of the tiny GPT-2 raised live), stopped by
    SIGTERM with its status."""
    follow = looked.follow
    assert follow.rc == 143, follow.err
    events = [json.loads(line) for line in follow.out.splitlines()]
    started = {e["run"]["name"] for e in events if e["type"] == "run" and e["change"] == "started"}
    assert started == {e.name for e in looked.wild.runs}, follow.out
    if looked.wild.name == "hf":
        raised = {e["finding"]["kind"] for e in events if e["type"] == "finding" and e["change"] == "raised"}
        assert "overfitting" in raised, follow.out


# ---------------------------------------------------------------- cat

@pytest.mark.parametrize("moment", ["halfway", "after"])
def test_cat(looked, moment):
    """``cat --json FILE``: the file read by its own format's reader (a CSV
    as CSV, never as JSON Lines), as the records it makes: a run header,
    then the values logged at the steps logged; after the run, each series
    the file holds, whole."""
    at: Moment = getattr(looked, moment)
    if moment == "after":
        assert all(any(looked.folder.glob(p)) for p in looked.wild.cat), sorted(at.cats)
    whole: Dict[Tuple[str, str, str], set] = {}   # (run, split, metric) -> steps read from any of its files
    for name, got in at.cats.items():
        assert got.rc == 0, (name, got.err)
        records = [json.loads(line) for line in got.out.splitlines()]
        assert records and records[0]["type"] == "run", (name, got.out[:500], got.err)
        run = records[0]["name"]
        expect = next(e for e in looked.wild.runs if e.name == run)
        logged = series(looked.after.truth, expect)
        points: Dict[Tuple[str, str], Dict[int, float]] = {}
        for rec in records[1:]:
            if rec["type"] != "metrics":
                continue
            for key, value in rec["values"].items():
                split, metric = _split(key, rec.get("split"))
                if (split, metric) in logged:
                    points.setdefault((split, metric), {})[rec["step"]] = value
                else:
                    assert split == "train", (name, key, "a held-out series not logged")
        assert points, (name, got.out[:500])
        for key, read in points.items():
            steps, values = logged[key]
            want = dict(zip(steps, values))
            assert set(read) <= set(want), (name, key, sorted(set(read) - set(want)))
            assert close(expect, [_float(v) for v in read.values()], [want[s] for s in read]), (name, key)
            # a file holds the steps logged up to its last (a checkpoint's trainer_state.json those before it)
            assert sorted(read) == [s for s in steps if s <= max(read)], (name, key)
            whole.setdefault((run, *key), set()).update(read)
        assert "problem" not in got.err.lower() or moment == "halfway", (name, got.err)
    if moment == "after":   # and after the run, each series of each run whole, in one of its files
        for (run, split, metric), read in whole.items():
            expect = next(e for e in looked.wild.runs if e.name == run)
            assert sorted(read) == series(looked.after.truth, expect)[(split, metric)][0], (run, split, metric)


def _split(key: str, split: Optional[str]) -> Tuple[str, str]:
    from tui_monitor.schema import split_metric
    return split_metric(key, split)


def _float(v) -> float:
    return float(v) if not isinstance(v, str) else {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[v]
