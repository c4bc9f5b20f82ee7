"""The training side survives what happens around it (issue: hardening)."""
from __future__ import annotations

import shutil

import tui_monitor as tm
from conftest import records, stream_files, wait_for
from tui_monitor.sources import Ingest


def test_the_run_folder_removed_mid_run(tmp_path, capfd):
    runs = tmp_path / "runs"
    run = tm.init("nomad", dir=runs, flush_every=0.01)
    for step in range(50):
        run.log({"loss": float(step)}, step=step)
    wait_for(lambda: stream_files(runs) and len(records(stream_files(runs)[0])) >= 51, message="first records")
    shutil.rmtree(runs)                                  # someone cleans up
    for step in range(50, 100):
        run.log({"loss": float(step)}, step=step)
    run.close()
    (path,) = stream_files(runs)
    recs = records(path)
    assert recs[0]["type"] == "run" and recs[0]["run_id"] == run.run_id
    steps = [r["step"] for r in recs if r["type"] == "metrics"]
    assert steps == list(range(50, 100))                 # everything after the removal, nothing lost
    assert recs[-1]["type"] == "end" and recs[-1]["dropped"] == 0
    assert "was deleted; writing a new file" in capfd.readouterr().err
    ing = Ingest()                                       # and the monitor reads it as the same run
    ing.add_path(str(runs))
    ing.read_all()
    (got,) = ing.store.runs.values()
    assert got.run_id == run.run_id and got.series[("train", "loss")].steps.tolist() == list(range(50, 100))


def test_os_exit_leaves_only_whole_lines(tmp_path):
    from conftest import child

    proc = child("""
    import os, sys, time, tui_monitor as tm
    run = tm.init("abrupt", dir=sys.argv[1], flush_every=0.01)
    for step in range(3000):
        run.log({"loss": 1.0}, step=step)
        if step == 2000:
            run.flush()           # most of it on disk before the abrupt end
    os._exit(7)                   # no atexit, no end record: like SIGKILL
    """, str(tmp_path))
    assert proc.wait(20) == 7
    recs = records(stream_files(tmp_path)[0])   # every line whole and parseable
    steps = [r["step"] for r in recs if r["type"] == "metrics"]
    assert steps == list(range(len(steps))) and len(steps) > 2000
    assert recs[-1]["type"] != "end"


def test_values_of_every_kind_from_a_real_loop(tmp_path):
    import pytest

    torch = pytest.importorskip("torch", reason="torch is the demo/integration extra")
    import numpy as np
    run = tm.init("zoo", dir=tmp_path)
    run.log({"nan": float("nan"), "inf": torch.tensor(float("inf")), "huge": 10**40, "np": np.float16(0.5),
             "t": torch.tensor(3, dtype=torch.int64), "s": "text", "none": None, "nested": {"a": {"b": 1}},
             7: 1.0, ("tuple", "key"): 2.0, "list": [1, 2]}, step=0)
    run.close()
    recs = records(run.path)
    m = next(r for r in recs if r["type"] == "metrics")
    assert m["values"] == {"nan": "NaN", "inf": "Infinity", "huge": 10**40, "np": 0.5, "t": 3, "nested/a/b": 1,
                           "7": 1.0, "('tuple', 'key')": 2.0}
    assert m["text"] == {"s": "text"} and recs[-1]["dropped"] == 2    # None and the list, counted
