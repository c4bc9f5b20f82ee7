"""The multi-rank rules (tui_monitor/diagnose/ranks.py) on synthetic jobs:
stragglers, hangs, rank divergence and crashed ranks, with a fake clock."""
from __future__ import annotations

import math

import pytest

from diagnose_helpers import T0, Clock, heartbeats, rank_records
from tui_monitor.diagnose import Diagnoser, Settings
from tui_monitor.diagnose.report import report_dict
from tui_monitor.schema import split_metric
from tui_monitor.store import Store


def engine(streams, clock=None, **settings):
    clock = clock or Clock(max(r.get("time", 0) for recs in streams for r in recs))
    store = Store(splitter=split_metric, clock=clock)
    eng = Diagnoser(store, settings=Settings(**settings), clock=clock)
    for i, recs in enumerate(streams):
        store.apply_many(recs, stream=i)
    eng.update()
    return eng, store, clock


def dist(eng, symptom=None):
    return [f for f in eng.findings if f.kind == "distributed" and (symptom is None or f.symptom == symptom)]


# -- healthy -------------------------------------------------------------------


def test_healthy_job_is_quiet():
    streams = [rank_records(r) for r in range(4)]
    eng, store, clock = engine(streams)
    assert len(eng.jobs()["job-1"]) == 4
    assert dist(eng) == []
    clock.t += 1.0  # a second later, nothing new: still not hung
    eng.update()
    assert dist(eng) == []


def test_healthy_job_with_per_rank_jitter_is_quiet():
    # every rank's own timing jitters (the scheduler), lag a few ms at random
    streams = [rank_records(r, data_time=lambda s, r: 0.01 * (1 + 3 * ((s * 7919 + r * 31) % 5 == 0)), seed=r)
               for r in range(8)]
    eng, _, _ = engine(streams)
    assert dist(eng) == []


def test_single_process_runs_are_not_jobs():
    recs = rank_records(0, world=1)
    eng, _, _ = engine([recs])
    assert eng.jobs() == {} and dist(eng) == []


# -- straggler -----------------------------------------------------------------


def test_straggler_by_its_own_timing_names_rank_and_host():
    # lockstep DDP: every rank logs at the same pace; rank 2's data loading is slow
    streams = [rank_records(r, data_time=0.06 if r == 2 else 0.005, host=f"gpu{r:02d}") for r in range(4)]
    eng, _, _ = engine(streams)
    fs = dist(eng, "straggler")
    assert len(fs) == 1
    f = fs[0]
    assert f.runs[0] == ("job-1", 2) and f.severity == "warning"
    assert f.evidence["host"] == "gpu02" and f.evidence["measure"] == "data_time"
    assert "rank 2 (host gpu02)" in f.explanation and "data_time" in f.explanation
    assert f.evidence["extra_per_step"] == pytest.approx(0.055, rel=0.2)


def test_straggler_by_pace_when_ranks_are_not_in_lockstep():
    streams = [rank_records(r, pace=0.3 if r == 1 else 0.1, data_time=0.01) for r in range(4)]
    eng, _, _ = engine(streams)
    f = dist(eng, "straggler")[0]
    assert f.runs[0] == ("job-1", 1) and f.evidence["measure"] == "step time"
    assert "3.0x" in f.explanation


def test_straggler_by_lag_when_the_log_precedes_the_collective():
    streams = [rank_records(r, lag=0.05 if r == 3 else 0.0, data_time=0.01) for r in range(4)]
    eng, _, _ = engine(streams)
    f = dist(eng, "straggler")[0]
    assert f.runs[0] == ("job-1", 3) and f.evidence["measure"] == "lag"


def test_straggler_needs_a_persistent_slowdown_and_has_hysteresis():
    # a few slow steps (a hiccup) do not make a straggler
    streams = [rank_records(r, data_time=(lambda s, r: 0.08 if (r == 0 and s % 10 == 0) else 0.005)) for r in range(4)]
    eng, _, _ = engine(streams)
    assert dist(eng, "straggler") == []
    # raised at 1.5x, kept at 1.3x (above the 1.25 keep level), retracted at parity
    store = Store(splitter=split_metric, clock=Clock())
    eng = Diagnoser(store, settings=Settings(straggler_min_cost=0.0), clock=store.clock)
    phases = [(0.02, 0), (0.013, 100), (0.01, 200)]  # rank 0's data time vs 0.01 on the others
    seen = []
    for dt0, start in phases:
        for r in range(4):
            recs = rank_records(r, steps=100, start_step=start, t_start=T0 + start * 0.1,
                                data_time=(lambda s, rr, d=dt0: d if rr == 0 else 0.01))
            if start:
                recs = [dict(x, seq=x["seq"] + start) for x in recs[1:]]
            store.apply_many(recs, stream=r)
        store.clock.t = T0 + (start + 100) * 0.1
        eng.update()
        seen.append(bool(dist(eng, "straggler")))
    assert seen == [True, True, False]


# -- hangs ---------------------------------------------------------------------


def test_collective_hang_all_ranks_stop_heartbeats_keep_coming():
    # rank 1 stopped first (its last log 0.4 s before the others: it never reached the all-reduce)
    streams = []
    for r in range(4):
        recs = rank_records(r, steps=60, pace=0.1)
        if r == 1:
            recs[-1]["time"] -= 0.4
        streams.append(heartbeats(recs, until=T0 + 6.0 + 40))
    clock = Clock(T0 + 6.0 + 40)
    eng, store, _ = engine(streams, clock=clock)
    f = dist(eng, "job_hung")
    assert len(f) == 1
    f = f[0]
    assert f.severity == "critical" and f.step == 59
    assert f.runs[0] == ("job-1", 1) and f.evidence["stopped_first"] == [1]
    assert "hung at step 59" in f.explanation and "alive" in f.explanation


def test_hang_threshold_is_relative_to_step_time():
    streams = [rank_records(r, steps=60, pace=0.1) for r in range(4)]
    clock = Clock(T0 + 6.0)
    eng, store, _ = engine(streams, clock=clock, hang_min=1.0, hang_factor=20)
    assert dist(eng, "job_hung") == []
    clock.t += 1.9  # 20 x 0.1 s = 2 s
    eng.update()
    assert dist(eng, "job_hung") == []
    clock.t += 0.2
    eng.update()
    f = dist(eng, "job_hung")[0]
    assert f.evidence["limit_s"] == pytest.approx(2.0, rel=0.05)
    # nothing came at all: it says so; all ranks stopped together: no culprit named
    assert "not even heartbeats" in f.explanation and f.evidence["stopped_first"] == []
    # the job resumes: retracted
    for r in range(4):
        store.apply({"type": "metrics", "seq": 61, "step": 60, "time": clock.t, "values": {"loss": 0.5}}, stream=r)
    ch = eng.update()
    assert dist(eng, "job_hung") == [] and any(x.symptom == "job_hung" for x in ch.retracted)


def test_hung_rank_while_others_step():
    streams = [rank_records(r, steps=200 if r != 2 else 40, pace=0.1) for r in range(4)]
    streams[2] = heartbeats(streams[2], until=T0 + 20)
    eng, _, _ = engine(streams, hang_min=5.0)
    f = dist(eng, "hung_rank")
    assert [x.runs[0] for x in f] == [("job-1", 2)]
    assert f[0].evidence["step"] == 39 and f[0].evidence["heartbeats"] is True


def test_silent_rank_stopped_first_in_a_hang():
    streams = [heartbeats(rank_records(r, steps=60), until=T0 + 60) for r in (0, 1, 3)]
    streams.insert(2, rank_records(2, steps=60))  # rank 2 sends nothing more
    clock = Clock(T0 + 60)
    eng, store, _ = engine(streams, clock=clock)
    # rank 2's last record arrived long ago
    store.runs[("job-1", 2)].last_arrival = T0 + 6.0
    eng.update()
    f = dist(eng, "job_hung")[0]
    assert f.runs[0] == ("job-1", 2) and f.evidence["silent_ranks"] == [2]


def test_batch_read_of_finished_files_is_not_a_hang():
    streams = [rank_records(r, steps=60) + [{"type": "end", "seq": 61, "time": T0 + 6.1, "status": "finished"}]
               for r in range(4)]
    eng, _, clock = engine(streams, clock=Clock(T0 + 3600))
    assert dist(eng) == []


# -- divergence ----------------------------------------------------------------


def test_rank_with_nan_while_others_finite():
    streams = [rank_records(r, loss=(lambda s, r: math.nan if (r == 3 and s >= 50) else 1.0)) for r in range(4)]
    eng, _, _ = engine(streams)
    f = dist(eng, "rank_divergence")
    assert len(f) == 1 and f[0].runs[0] == ("job-1", 3) and f[0].severity == "critical"
    assert f[0].evidence["first_step"] == 50 and f[0].evidence["finite_ranks"] == [0, 1, 2]


def test_rank_divergence_keeps_its_id_as_lagging_ranks_pass_the_step():
    streams = [rank_records(r, loss=(lambda s, r: math.nan if (r == 3 and s >= 50) else 1.0)) for r in range(4)]
    late = [streams[r][46:] for r in (1, 2)]  # ranks 1 and 2 are read only up to step 44 at first
    for r in (1, 2):
        streams[r] = streams[r][:46]
    eng, store, _ = engine(streams)
    (first,) = dist(eng, "rank_divergence")
    assert first.evidence["finite_ranks"] == [0]
    for r, recs in zip((1, 2), late):
        store.apply_many(recs, stream=r)
    changes = eng.update()
    (now,) = dist(eng, "rank_divergence")
    assert now.id == first.id and now.evidence["finite_ranks"] == [0, 1, 2]
    assert not changes.retracted and not changes.added and [f.id for f in changes.changed] == [first.id]


def test_rank_divergence_keeps_its_id_when_another_rank_goes_bad():
    def loss(s, r):
        return math.nan if (r == 3 and s >= 50) or (r == 2 and s >= 80) else 1.0
    streams = [rank_records(r, loss=loss) for r in range(4)]
    eng, store, _ = engine([recs[:70] for recs in streams])
    (first,) = dist(eng, "rank_divergence")
    for r, recs in enumerate(streams):
        store.apply_many(recs[70:], stream=r)
    changes = eng.update()
    found = {f.runs[0][1]: f for f in dist(eng, "rank_divergence")}
    assert sorted(found) == [2, 3] and found[3].id == first.id and found[3].step == 50
    assert first.id not in [f.id for f in changes.retracted]
    assert found[3].runs[1:] == [("job-1", 0), ("job-1", 1)]  # it cites the ranks still finite, not the job


def test_all_ranks_nan_is_not_rank_divergence():
    streams = [rank_records(r, loss=(lambda s, r: math.nan if s >= 50 else 1.0)) for r in range(4)]
    eng, _, _ = engine(streams)
    assert dist(eng, "rank_divergence") == []
    assert any(f.kind == "divergence" for f in eng.findings)


def test_grad_norm_far_outside_the_others():
    streams = [rank_records(r, grad_norm=(20.0 if r == 1 else 1.0) * (1 + 0.05 * (r % 3))) for r in range(4)]
    eng, _, _ = engine(streams)
    f = dist(eng, "rank_divergence")
    assert [x.runs[0] for x in f] == [("job-1", 1)] and f[0].evidence["metric"] == "grad_norm"


def test_losses_that_differ_by_data_are_not_divergence():
    # DDP: each rank sees its own shard: losses differ by a few percent
    streams = [rank_records(r, loss=(lambda s, r: (1.0 + 0.1 * r) / (1 + 0.01 * s))) for r in range(4)]
    eng, _, _ = engine(streams)
    assert dist(eng, "rank_divergence") == []


# -- crashes -------------------------------------------------------------------


def test_crashed_rank_while_others_run():
    streams = [rank_records(r, steps=60) for r in range(4)]
    streams[1].append({"type": "end", "seq": 61, "time": T0 + 6.05, "status": "crashed", "step": 59,
                       "error": {"type": "RuntimeError", "message": "CUDA error: an illegal memory access"}})
    eng, _, _ = engine(streams)
    f = dist(eng, "rank_crashed")
    assert len(f) == 1 and f[0].runs[0] == ("job-1", 1) and f[0].severity == "critical"
    assert "RuntimeError" in f[0].explanation and "still run" in f[0].explanation


def test_first_rank_to_go_is_named_when_the_others_follow():
    streams = [rank_records(r, steps=60) for r in range(4)]
    for r in range(4):
        if r == 2:  # killed: no end record; the monitor saw its process gone
            continue
        streams[r].append({"type": "end", "seq": 61, "time": T0 + 6.5 + 0.01 * r, "status": "crashed", "step": 59,
                           "error": {"type": "DistBackendError", "message": "Connection closed by peer"}})
    eng, store, _ = engine(streams)
    store.mark_gone(store.runs[("job-1", 2)], "process 102 ended without an end record")
    eng.update()
    f = dist(eng, "rank_crashed")
    assert len(f) == 1 and f[0].runs[0] == ("job-1", 2)
    assert f[0].evidence["inferred"] is True and sorted(f[0].evidence["crashed_after"]) == [0, 1, 3]
    assert "went down with it" in f[0].explanation


def test_report_json_follows_the_schema():
    import jsonschema
    import json
    from pathlib import Path

    streams = [rank_records(r, data_time=0.06 if r == 2 else 0.005) for r in range(4)]
    streams[1].append({"type": "end", "seq": 200, "time": T0 + 10.05, "status": "crashed", "step": 99,
                       "error": {"type": "RuntimeError", "message": "boom"}})
    eng, _, _ = engine(streams)
    rep = report_dict(eng)
    assert {f["symptom"] for f in rep["findings"] if f["kind"] == "distributed"} >= {"straggler", "rank_crashed"}
    schema = json.loads((Path(__file__).parent.parent / "docs" / "diagnosis.schema.json").read_text())
    jsonschema.validate(rep, schema)


def test_idle_updates_read_no_series_again(monkeypatch):
    # the time-based rules alone run when nothing arrived: no run's series is
    # read again, whatever its length (counted, not timed: bench/ has the costs)
    from tui_monitor.diagnose.engine import RunState

    streams = [rank_records(r, steps=2000) for r in range(8)]
    eng, _, clock = engine(streams)
    fed = []
    feed = RunState.feed
    monkeypatch.setattr(RunState, "feed", lambda self: fed.append(self.run.key) or feed(self))
    for _ in range(200):
        clock.t += 0.01
        changes = eng.update()
        assert not changes
    assert fed == [] and eng.updates >= 201


def test_a_rank_quiet_since_before_a_crash_on_a_lost_peer_went_first():
    # rank 1 was SIGKILLed: its stream stops at step 40 with no end record, and
    # its process is not (yet) known to be gone; the others then die of it
    streams = [rank_records(r, steps=60 if r != 1 else 40) for r in range(3)]
    for r in (0, 2):
        streams[r].append({"type": "end", "seq": 61, "time": T0 + 6.2, "status": "crashed", "step": 59,
                           "error": {"type": "RuntimeError",
                                     "message": "gloo/transport/tcp/pair.cc:537] Read error: Connection reset by peer"}})
    eng, _, _ = engine(streams)
    f = dist(eng, "rank_crashed")[0]
    assert f.runs[0] == ("job-1", 1) and f.evidence["inferred"] is True
    assert "lost peer" in f.explanation
    # an error that is not about a lost peer names the crashed rank itself
    streams = [rank_records(r, steps=60 if r != 1 else 40) for r in range(3)]
    streams[0].append({"type": "end", "seq": 61, "time": T0 + 6.2, "status": "crashed", "step": 59,
                       "error": {"type": "ValueError", "message": "bad batch"}})
    eng, _, _ = engine(streams)
    assert dist(eng, "rank_crashed")[0].runs[0] == ("job-1", 0)


def test_a_rank_that_died_before_its_first_step_reached_the_stream_is_named_first():
    # rank 1 was killed within its first second: only its header reached the
    # stream (the header goes out at init, steps once a second)
    streams = [rank_records(r, steps=60 if r != 1 else 0) for r in range(3)]
    for r in (0, 2):
        streams[r].append({"type": "end", "seq": 61, "time": T0 + 6.2, "status": "crashed", "step": 59,
                           "error": {"type": "RuntimeError", "message": "Connection closed by peer [127.0.0.1]:1"}})
    eng, _, _ = engine(streams)
    f = dist(eng, "rank_crashed")[0]
    assert f.runs[0] == ("job-1", 1) and f.evidence["step"] is None
    assert "before any step reached its stream" in f.explanation and "None" not in f.explanation


def test_heartbeats_that_say_where_a_rank_waits_name_the_one_outside_the_collective():
    # all ranks stopped at the same step at the same time; heartbeats carry the
    # main thread's innermost frames: rank 2 is not where the others are
    streams = []
    for r in range(4):
        recs = heartbeats(rank_records(r, steps=60), until=T0 + 50)
        where = "train.py:80 in <module>" if r == 2 else "torch/_tensor.py:626 in backward"
        for x in recs:
            if x["type"] == "heartbeat":
                x["where"] = where
        streams.append(recs)
    eng, _, _ = engine(streams, clock=Clock(T0 + 50))
    f = dist(eng, "job_hung")[0]
    assert f.runs[0] == ("job-1", 2) and f.evidence["stopped_first"] == [2]
    assert "train.py:80" in f.explanation
