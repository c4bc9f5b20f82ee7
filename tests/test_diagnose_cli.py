"""tui-monitor diagnose: exit codes, the JSON schema, escaping."""
from __future__ import annotations

import contextlib
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from diagnose_helpers import decaying, run_records
from tui_monitor.cli import main

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "docs" / "diagnosis.schema.json").read_text())
CLS = {"task": "classification", "num_classes": 10}


def write(path, recs):
    path.write_text("".join(json.dumps(r, allow_nan=False) + "\n" for r in recs))
    return path


def run_cli(*args):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["diagnose", *map(str, args)])
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture
def runs(tmp_path):
    d = tmp_path / "runs"
    (d / "sub").mkdir(parents=True)
    write(d / "ok.jsonl", run_records("ok", decaying(300, 2.3, 0.2), decaying(30, 2.3, 0.3, tau=8), config=CLS))
    write(d / "sub" / "nan.jsonl", run_records("nan", [1.0] * 20 + [math.nan] * 3, run_id="n"))
    return d


def test_healthy_file_exits_0(runs):
    rc, out, err = run_cli(runs / "ok.jsonl")
    assert rc == 0 and err == ""
    assert out.startswith("No findings")
    assert "ok: training loss large? no" in out


def test_folder_is_searched_recursively_and_a_problem_exits_1(runs):
    rc, out, _ = run_cli(runs)
    assert rc == 1
    assert out.startswith("CRITICAL divergence/non_finite  nan from step 20")


def test_json_output_validates_against_the_schema(runs):
    rc, out, _ = run_cli("--json", runs)
    assert rc == 1
    rep = json.loads(out)
    jsonschema.validate(rep, SCHEMA)
    assert rep["summary"] == {"runs": 2, "findings": {"info": 0, "warning": 0, "critical": 1}, "worst": "critical"}
    [f] = rep["findings"]
    assert f["kind"] == "divergence" and f["step"] == 20 and f["evidence"]["value"] == "NaN"
    assert {r["name"]: r["verdict"] for r in rep["runs"]} == {"ok": "healthy", "nan": "divergence"}


def test_schema_rejects_a_wrong_report():
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"schema": 1, "findings": [{"kind": "bad"}], "runs": [], "cv": [],
                             "summary": {"runs": 0, "findings": {}, "worst": None}}, SCHEMA)


def test_usage_and_input_errors_exit_2(runs, tmp_path):
    assert run_cli(tmp_path / "missing.jsonl")[0] == 2
    (tmp_path / "empty").mkdir()
    assert run_cli(tmp_path / "empty")[0] == 2
    assert run_cli("--baseline", "nobody", runs / "ok.jsonl")[0] == 2
    assert run_cli("--task", "poetry", runs / "ok.jsonl")[0] == 2
    assert main(["diagnose"]) == 2


def test_task_on_the_command_line(tmp_path):
    # left its start (3.0) for a plateau at 2.2: large only against ln 10 = 2.30
    p = write(tmp_path / "lin.jsonl", run_records("lin", decaying(400, 3.0, 2.2, tau=30), model={"depth": 1}))
    assert run_cli(p)[0] == 0  # no reference: nothing to say
    rc, out, _ = run_cli("--task", "classification", "--num-classes", "10", p)
    assert rc == 1 and "model_bias" in out


def test_stream_text_is_escaped(tmp_path):
    recs = run_records("evil\x1b[31m\u202e", [1.0] * 20 + [math.nan], run_id="e")
    p = write(tmp_path / "e.jsonl", recs)
    rc, out, _ = run_cli(p)
    assert rc == 1
    assert "\x1b" not in out and "\u202e" not in out and "evil\\x1b[31m\\u202e" in out
    rc, out, _ = run_cli("--json", p)
    assert "\x1b" not in out and "\u202e" not in out
    assert json.loads(out)["findings"][0]["runs"][0]["name"] == "evil\x1b[31m\u202e"


def test_real_process(runs):
    out = subprocess.run([sys.executable, "-m", "tui_monitor", "diagnose", str(runs / "ok.jsonl")],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "No findings" in out.stdout


# ---------------------------------------------------------------- every format `watch` reads

def overfitting_curves(n=400, every=10):
    """A training loss that keeps falling and a validation loss that turns
    up at step 120 and climbs far above its best: overfitting by any rule."""
    train = [2.3 * math.exp(-s / 60) + 0.01 for s in range(n)]
    val = [(s, 0.8 + (s / n - 0.3) ** 2 * 6) for s in range(0, n, every)]
    return train, val


def healthy_curves(n=400, every=10):
    train = [2.3 * math.exp(-s / 80) + 0.3 for s in range(n)]
    val = [(s, 2.3 * math.exp(-s / 80) + 0.35) for s in range(0, n, every)]
    return train, val


def summary_writer():
    pytest.importorskip("tensorboard", reason="the integrations extra (tensorboard) is not installed")
    return pytest.importorskip("torch.utils.tensorboard", reason="torch is not installed").SummaryWriter


def write_tensorboard(folder, curves):
    SummaryWriter = summary_writer()
    train, val = curves
    w = SummaryWriter(str(folder))
    for s, v in enumerate(train):
        w.add_scalar("train/loss", v, s)
    for s, v in val:
        w.add_scalar("val/loss", v, s)
    w.close()
    [event_file] = folder.glob("events.out.tfevents.*")
    return event_file


def write_lightning_csv(root, name, curves):
    """Lightning's own CSVLogger (the fabric one, which the Trainer's wraps)."""
    csv_logs = pytest.importorskip("lightning.fabric.loggers", reason="the integrations extra (lightning) is not installed")
    train, val = curves
    logger = csv_logs.CSVLogger(str(root), name=name, version=0)
    vals = dict(val)
    for s, v in enumerate(train):
        logger.log_metrics({"train_loss": v, **({"val_loss": vals[s]} if s in vals else {})}, step=s)
    logger.finalize("success")
    return Path(logger.log_dir) / "metrics.csv"


def write_text_log(path, curves):
    """What a nanoGPT-style loop prints."""
    train, val = curves
    vals = dict(val)
    lines = []
    for s, v in enumerate(train):
        lines.append(f"iter {s}: loss {v:.4f}, time 12.34ms")
        if s in vals:
            lines.append(f"step {s}: train loss {v:.4f}, val loss {vals[s]:.4f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def kinds(out):
    return sorted({f["kind"] for f in json.loads(out)["findings"]})


def test_tensorboard_folder_and_event_file(tmp_path):
    event_file = write_tensorboard(tmp_path / "tb" / "overfit", overfitting_curves())
    write_tensorboard(tmp_path / "tb" / "fine", healthy_curves())
    rc, out, err = run_cli("--json", tmp_path / "tb")
    assert rc == 1, err
    rep = json.loads(out)
    jsonschema.validate(rep, SCHEMA)
    assert {r["name"]: r["verdict"] for r in rep["runs"]} == {"overfit": "overfitting", "fine": "healthy"}
    rc, out, _ = run_cli("--json", event_file)  # named by itself: the same run, not an empty report
    assert rc == 1 and kinds(out) == ["overfitting"] and len(json.loads(out)["runs"]) == 1
    rc, out, err = run_cli(tmp_path / "tb" / "fine")
    assert rc == 0 and out.startswith("No findings") and err == ""


def test_lightning_csv_folder_and_file(tmp_path):
    bad = write_lightning_csv(tmp_path / "logs", "overfit", overfitting_curves())
    write_lightning_csv(tmp_path / "logs", "fine", healthy_curves())
    rc, out, err = run_cli("--json", tmp_path / "logs")
    assert rc == 1, err
    assert {r["name"].split("/")[0]: r["verdict"] for r in json.loads(out)["runs"]} == {
        "overfit": "overfitting", "fine": "healthy"}
    rc, out, _ = run_cli("--json", bad)
    assert rc == 1 and kinds(out) == ["overfitting"]


def test_keras_csvlogger_layout_per_epoch(tmp_path):
    # Keras's CSVLogger writes one row per epoch: epoch,loss,val_loss
    train, val = overfitting_curves(n=60, every=1)
    rows = "".join(f"{e},{train[e]},{v}\n" for e, v in val)
    p = tmp_path / "history.csv"
    p.write_text("epoch,loss,val_loss\n" + rows)
    rc, out, _ = run_cli("--json", p)
    assert rc == 1 and kinds(out) == ["overfitting"]


def test_text_log_named_and_on_standard_input(tmp_path):
    log = write_text_log(tmp_path / "slurm-1234.out", overfitting_curves())
    rc, out, err = run_cli("--json", log)
    assert rc == 1, err
    assert kinds(out) == ["overfitting"]
    proc = subprocess.run([sys.executable, "-m", "tui_monitor", "diagnose", "-"], input=log.read_text(),
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "overfitting" in proc.stdout
    rc, out, _ = run_cli(write_text_log(tmp_path / "ok.log", healthy_curves()))
    assert rc == 0 and out.startswith("No findings")


def test_a_path_that_yields_no_run_exits_2_naming_what_was_looked_for(runs, tmp_path):
    other = tmp_path / "other"
    (other / "deep").mkdir(parents=True)
    (other / "deep" / "notes.txt").write_text("loss went down\n")  # no progress line: not a training log
    (other / "data.csv").write_text("x,y,label\n1,2,0\n")  # a data set, not a metrics log
    rc, out, err = run_cli(runs, other)  # one good folder does not hide an empty one
    assert rc == 2 and out == ""
    assert f"no runs under {other}: looked for stream files (*.jsonl), TensorBoard event files" in err
    assert "CSV metric logs and printed training logs" in err and f"{runs}:" not in err  # only the empty one
    rc, _, err = run_cli(other / "data.csv")
    assert rc == 2
    assert f"{other / 'data.csv'}:" in err.replace("tui-monitor: ", "")  # the reader's reason, with the file
    assert f"no run in {other / 'data.csv'}: read it as a CSV metric log and found no metrics" in err
    rc, _, err = run_cli(other / "deep" / "notes.txt")
    assert rc == 2 and "read it as a printed training log" in err
    proc = subprocess.run([sys.executable, "-m", "tui_monitor", "diagnose", "-"], input="hello\n",
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2 and "no run on standard input" in proc.stderr


def test_bad_lines_are_reported_and_the_rest_diagnosed(runs):
    with open(runs / "ok.jsonl", "a") as f:
        f.write("{not json\n")
    rc, out, err = run_cli(runs / "ok.jsonl")
    assert rc == 0 and out.startswith("No findings")
    assert f"{runs / 'ok.jsonl'}:" in err and len(err.strip().splitlines()) == 1
