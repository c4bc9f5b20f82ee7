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
