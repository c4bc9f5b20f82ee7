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
