"""tui_monitor/events.py: what an engine update and the runs' statuses say
happened, and which of it is history."""
from __future__ import annotations

import dataclasses
import json

from conftest import wait_for
from diagnose_helpers import run_records
from test_notify import nan_losses
from tui_monitor.diagnose import Diagnoser
from tui_monitor.diagnose.engine import Changes
from tui_monitor.events import EventTracker, FindingEvent, RunEvent, observed
from tui_monitor.sources import Ingest
from tui_monitor.schema import split_metric
from tui_monitor.store import Store


def changes_of(events):
    return [(type(e).__name__, e.change) for e in events]


def test_a_run_s_life_in_order_started_findings_ended():
    store = Store(splitter=split_metric)
    engine = Diagnoser(store)
    tracker = EventTracker(store)
    recs = run_records("r", nan_losses(), end=False)
    recs[0].update(time=1.7e9)
    store.apply_many(recs[:20], stream="s")
    assert changes_of(tracker.update(engine.update)[1]) == [("RunEvent", "started")]
    store.mark_silent(now=1.7e9 + 1000, after=30)
    assert changes_of(tracker.update(engine.update)[1]) == [("RunEvent", "silent")]
    store.apply_many(recs[20:], stream="s")
    events = tracker.update(engine.update)[1]
    assert changes_of(events) == [("RunEvent", "resumed"), ("FindingEvent", "raised")]
    assert events[1].finding.symptom == "non_finite"
    store.mark_silent(now=1.7e9 + 1000, after=30)
    store.apply_many([{"type": "end", "seq": len(recs), "time": 1.7e9 + 99, "status": "crashed",
                       "error": {"type": "ValueError", "message": "nan"}}], stream="s")
    events = tracker.update(engine.update)[1]
    assert changes_of(events) == [("RunEvent", "ended")]  # silent, then ended: no "resumed" between
    assert events[0].run.error == "ValueError: nan" and events[0].run.step == 79
    line = json.dumps(events[0].to_dict())
    assert json.loads(line)["run"] == {"run_id": "r", "rank": 0, "name": "r", "world_size": 1, "status": "crashed",
                                       "step": 79, "error": "ValueError: nan"}
    assert tracker.update(engine.update)[1] == []  # nothing new, nothing said


def test_a_change_is_news_only_when_severity_onset_or_confidence_moved():
    store = Store(splitter=split_metric)
    engine = Diagnoser(store)
    tracker = EventTracker(store)
    store.apply_many(run_records("r", nan_losses(), end=False), stream="s")
    f = next(e.finding for e in tracker.update(engine.update)[1] if isinstance(e, FindingEvent))
    say = lambda **kw: tracker.events(Changes(changed=[dataclasses.replace(f, **kw)]))  # noqa: E731
    assert say(explanation="11 non-finite values so far", confidence=0.95) == []
    assert changes_of(say(confidence=0.85)) == [("FindingEvent", "changed")]
    assert changes_of(say(severity="warning", confidence=0.85)) == [("FindingEvent", "changed")]
    assert changes_of(tracker.events(Changes(retracted=[f]))) == [("FindingEvent", "retracted")]
    assert tracker.events(Changes(retracted=[f])) == []  # retracted once


def test_history_is_what_was_read_before_the_sources_caught_up():
    store = Store(splitter=split_metric)
    caught_up = []
    told = []
    engine = Diagnoser(store)
    tracker = EventTracker(store, ready=lambda: bool(caught_up), on_ready=told.append)
    store.apply_many(run_records("old", nan_losses()), stream="old")
    events = tracker.update(engine.update)[1]
    assert events and not any(e.live for e in events)
    caught_up.append(True)
    wait_for(lambda: tracker.armed, message="the tracker to see the sources caught up")
    assert told == [1]
    assert tracker.update(engine.update)[1] == []
    store.apply_many(run_records("new", nan_losses()), stream="new")
    events = tracker.update(engine.update)[1]
    assert changes_of(events) == [("RunEvent", "started"), ("FindingEvent", "raised"), ("RunEvent", "ended")]
    assert all(e.live for e in events) and all(isinstance(e, RunEvent) or e.id.endswith("new#0") for e in events)
    tracker.stop()


def test_an_observed_engine_made_again_for_a_new_baseline_tells_the_same_tracker():
    ingest = Ingest()
    told = []
    engine = observed(Diagnoser, ingest.store, told.extend, ingest=ingest)
    ingest.store.apply_many(run_records("r", nan_losses(), end=False), stream="s")
    engine.update()
    assert changes_of(told) == [("RunEvent", "started"), ("FindingEvent", "raised")]
    again = type(engine)(ingest.store, baseline="r", task=None)  # what the TUI does when b marks a baseline
    assert [f.id for f in again.update().added] == [told[1].id]  # the new engine finds it again...
    assert len(told) == 2  # ...and it is not news
    assert isinstance(again, Diagnoser) and engine.findings[0].id == told[1].id


def test_a_run_that_stops_is_an_event_told_with_the_ends():
    # silent, then a day without a word: it stopped (it used to change status
    # with nothing said, so --follow never told it and --notify never paged)
    store = Store(splitter=split_metric)
    engine = Diagnoser(store)
    tracker = EventTracker(store)
    recs = run_records("r", [1.0 / (1 + i) for i in range(20)], end=False)
    store.apply_many(recs, stream="s")
    last = recs[-1]["time"]
    assert changes_of(tracker.update(engine.update)[1]) == [("RunEvent", "started")]
    store.mark_silent(now=last + 100, after=30)
    assert changes_of(tracker.update(engine.update)[1]) == [("RunEvent", "silent")]
    store.mark_silent(now=last + 2 * 86400, after=30)
    events = tracker.update(engine.update)[1]
    assert changes_of(events) == [("RunEvent", "stopped")] and events[0].run.status == "stopped"
    assert tracker.update(engine.update)[1] == []
    # read long after it stopped: started, then stopped, as a silent one is started, then silent
    old = Store(splitter=split_metric)
    old.apply_many(recs, stream="s")
    old.mark_silent(now=last + 2 * 86400, after=30)
    assert changes_of(EventTracker(old).events(Changes())) == [("RunEvent", "started"), ("RunEvent", "stopped")]


def test_a_job_whose_ranks_crash_out_of_rank_order_is_one_finding_raised_once():
    # rank_crashed's id listed every rank in the finding's order (the first
    # down, the later crashes, those still running): rank 3 crashing before
    # rank 1 changed the order, so the same finding was retracted and raised
    # under a new id, and paged (and rang the bell) again
    now = [1.7e9 + 50]
    store = Store(splitter=split_metric, clock=lambda: now[0])
    engine = Diagnoser(store)
    tracker = EventTracker(store, clock=lambda: now[0])
    for rank in range(4):
        recs = run_records("job", [1.0 / (1 + i) for i in range(50)], run_id="job", end=False)
        recs[0].update(rank=rank, world_size=4, pid=100 + rank, host="elsewhere")
        store.apply_many(recs, stream=rank)
    tracker.update(engine.update)
    findings = []
    for rank in (0, 3, 1, 2):
        now[0] += 1
        store.apply({"type": "end", "seq": 99, "time": now[0], "status": "crashed",
                     "error": {"type": "RuntimeError", "message": "NCCL error"}}, stream=rank)
        findings += [(e.change, e.id) for e in tracker.update(engine.update)[1] if isinstance(e, FindingEvent)]
    assert [change for change, _ in findings] == ["raised"], findings  # once, never retracted and raised again
    assert findings[0][1].startswith("distributed/rank_crashed/job#0")
