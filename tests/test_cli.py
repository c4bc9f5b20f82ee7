"""The command line: in-process through main([...]) and once as a real process."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tui_monitor.cli import clean, main

ROOT = Path(__file__).resolve().parent.parent


def line(obj) -> str:
    return json.dumps(obj, allow_nan=False) + "\n"


START = 1764430000.5
STREAM = "".join([
    line({"type": "run", "seq": 0, "v": 1, "run_id": "3f2a9c1d7e4b", "name": "resnet20", "start": START,
          "host": "gpu07", "pid": 4242, "rank": 1, "world_size": 4, "config": {"lr": 0.1, "opt": "sgd"},
          "tags": {"baseline": True}}),
    line({"type": "meta", "seq": 1, "time": START + 0.1,
          "model": {"params": 272474, "trainable_params": 272000, "depth": 20, "width": 64, "input_features": 3}}),
    line({"type": "metrics", "seq": 2, "step": 0, "time": START + 0.5, "values": {"loss": 2.3026, "lr": 0.1}}),
    line({"type": "metrics", "seq": 3, "step": 0, "time": START + 8.7, "split": "val",
          "values": {"loss": 2.2991, "acc": 0.11}}),
    line({"type": "metrics", "seq": 4, "step": 1, "time": START + 9.0,
          "values": {"loss": "NaN", "big": 2 ** 70, "eval_loss": "Infinity"}}),
    "this is not json\n",
    line({"type": "grads", "seq": 5, "step": 1, "time": START + 9.5, "norm": 0.5,
          "layers": {"fc1.weight": {"grad": 0.25, "weight": 2.0, "zero_rows": 0.5}, "fc2.weight": {"grad": 0.001}}}),
    line({"type": "heartbeat", "seq": 6, "time": START + 20.0, "step": 1, "last_log": START + 9.0}),
    line({"type": "end", "seq": 7, "time": START + 3725.0, "status": "crashed", "step": 1, "dropped": 0,
          "error": {"type": "FloatingPointError", "message": "loss is NaN"}}),
])


@pytest.fixture
def stream(tmp_path) -> Path:
    p = tmp_path / "run.jsonl"
    p.write_text(STREAM)
    return p


def test_version(capsys):
    assert main(["version"]) == 0
    assert capsys.readouterr().out == "tui-monitor 0.1.0\n"
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == "tui-monitor 0.1.0\n"


def test_help_teaches(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "tui-monitor cat" in out and "version" in out and "exit status" in out
    # the main jobs first, and every kind of log it reads, not only its own streams
    for example in ("tui-monitor demo", "tui-monitor watch runs/", "tui-monitor diagnose runs/",
                    "tui-monitor diagnose --follow"):
        assert example in out, example
    for kind in ("TensorBoard", "CSV", "trainer_state.json", "MLflow", "W&B", "printed"):
        assert kind in out, kind
    assert main(["cat", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--split" in out and "--tail" in out and "--json" in out and "examples:" in out


def test_usage_errors_exit_2(capsys):
    assert main([]) == 2
    assert "a command is required" in capsys.readouterr().err
    assert main(["frobnicate"]) == 2
    assert main(["cat"]) == 2
    assert main(["cat", "--tail", "-1", "x"]) == 2
    assert "must be 0 or more" in capsys.readouterr().err


def test_cat_table(stream, capsys):
    assert main(["cat", str(stream)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0] == "run      resnet20  id 3f2a9c1d7e4b"
    assert lines[1] == "host     gpu07  pid 4242  rank 1/4"
    assert lines[2] == "started  2025-11-29T15:26:40Z"
    assert lines[3] == "config   lr=0.1  opt=sgd"
    assert lines[4] == "model    272,474 params, 272,000 trainable, depth 20, width 64, input features 3"
    assert lines[5] == "tags     baseline=true"
    rows = [ln.split() for ln in lines if ln[:6].strip().isdigit()]
    assert rows[0] == ["0", "train", "+0:00:00.5", "loss=2.3026", "lr=0.1"]
    assert rows[1] == ["0", "val", "+0:00:08.7", "loss=2.2991", "acc=0.11"]
    assert rows[2] == ["1", "train", "+0:00:09.0", "loss=NaN", f"big={2 ** 70}"]
    assert rows[3] == ["1", "val", "+0:00:09.0", "loss=Infinity"]
    assert rows[4][:5] == ["1", "grads", "+0:00:09.5", "norm=0.5", "2"]
    assert "layer grad 0.001..0.25" in " ".join(rows[4])
    assert rows[5][:3] == ["1", "heartbeat", "+0:00:20.0"] and "last log 11.0s before" in " ".join(rows[5])
    assert rows[6] == ["1", "end", "+1:02:05.0", "crashed:", "FloatingPointError:", "loss", "is", "NaN", "dropped=0"]
    assert f"problems (1):\n  {stream}:6: malformed JSON: Expecting value (column 1)\n" in out


def test_cat_split_and_tail(stream, capsys):
    assert main(["cat", "--split", "validation", str(stream)]) == 0
    out = capsys.readouterr().out
    splits = [ln.split()[1] for ln in out.splitlines() if ln[:6].strip().isdigit()]
    assert splits == ["val", "val", "grads", "heartbeat", "end"]
    assert main(["cat", "--tail", "2", str(stream)]) == 0
    out = capsys.readouterr().out
    rows = [ln.split()[1] for ln in out.splitlines() if ln[:6].strip().isdigit()]
    assert rows == ["heartbeat", "end"]
    assert "run      resnet20" in out  # the header is always shown


def test_cat_json(stream, capsys):
    assert main(["cat", "--json", str(stream)]) == 0
    cap = capsys.readouterr()
    recs = [json.loads(ln) for ln in cap.out.splitlines()]
    assert [r["seq"] for r in recs] == [0, 1, 2, 3, 4, 5, 6, 7]
    assert recs[4]["values"] == {"loss": "NaN", "big": 2 ** 70, "eval_loss": "Infinity"}
    assert recs[0]["config"] == {"lr": 0.1, "opt": "sgd"}
    assert f"{stream}:6: malformed JSON" in cap.err  # problems on stderr, stdout stays JSON
    assert main(["cat", "--json", "--split", "val", "--tail", "1", str(stream)]) == 0
    recs = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert [r["type"] for r in recs] == ["run", "meta", "end"]
    assert main(["cat", "--json", "--split", "val", str(stream)]) == 0
    recs = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert [r["values"] for r in recs if r["type"] == "metrics"] == [{"loss": 2.2991, "acc": 0.11},
                                                                    {"eval_loss": "Infinity"}]


def test_cat_unreadable_file_exits_1(stream, tmp_path, capsys):
    missing = tmp_path / "nope.jsonl"
    assert main(["cat", str(missing), str(stream)]) == 1
    cap = capsys.readouterr()
    assert f"tui-monitor: cannot read {missing}: No such file or directory" in cap.err
    assert "resnet20" in cap.out  # the readable file is still shown
    assert main(["cat", str(tmp_path)]) == 1
    assert str(tmp_path) in capsys.readouterr().err


def test_cat_partial_last_line_is_a_note_not_a_problem(tmp_path, capsys):
    p = tmp_path / "live.jsonl"
    p.write_text(STREAM.splitlines(keepends=True)[0] + '{"type": "metrics", "seq": 1, "st')
    assert main(["cat", str(p)]) == 0
    out = capsys.readouterr().out
    assert "problems" not in out
    assert "note: the last line (33 bytes) has no newline: not yet written, not read" in out


def test_stream_text_cannot_drive_the_terminal(tmp_path, capsys):
    evil = "x\x1b[2J\x1b]0;pwned\x07\u009b31m\u202eY\nZ"
    p = tmp_path / "evil.jsonl"
    p.write_text(line({"type": "run", "seq": 0, "run_id": evil, "name": evil, "config": {evil: evil}})
                 + line({"type": "metrics", "seq": 1, "step": 0, "time": 1.0, "values": {evil: 1.0}})
                 + line({"type": evil, "seq": 2}), encoding="utf-8")
    for args in (["cat", str(p)], ["cat", "--json", str(p)]):
        assert main(args) == 0
        cap = capsys.readouterr()
        for text in (cap.out, cap.err):
            for bad in ("\x1b", "\x07", "\u009b", "\u202e"):
                assert bad not in text, (args, bad)
    assert clean(evil) == "x\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m\\u202eY\\nZ"
    # the JSON output still decodes to the original text
    main(["cat", "--json", str(p)])
    recs = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert recs[0]["name"] == evil and list(recs[1]["values"]) == [evil]


def test_lone_surrogates_and_bad_utf8_print(tmp_path, capsys):
    p = tmp_path / "s.jsonl"
    p.write_bytes(b'{"type": "run", "seq": 0, "run_id": "r", "name": "a\\ud800b", "config": {"n": 1e400}}\n'
                  b'{"type": "metrics", "seq": 1, "step": 0, "time": 1.0, "values": {"\xff": 1}}\n')
    assert main(["cat", str(p)]) == 0
    out = capsys.readouterr().out
    assert "run      a\\ud800b  id r" in out
    assert f"{p}:2: invalid UTF-8 at byte 66" in out
    assert main(["cat", "--json", str(p)]) == 0
    rec = json.loads(capsys.readouterr().out.splitlines()[0])
    assert rec["name"] == "a\ud800b" and rec["config"] == {"n": "Infinity"}


def test_import_is_light():
    code = ("import sys, tui_monitor.cli; "
            "print(sorted(m for m in ('textual', 'rich', 'pydantic', 'orjson') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True).stdout
    assert out.strip() == "[]"


def test_subprocess(stream):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "tui_monitor.cli", "cat", str(stream)], capture_output=True,
                       text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "run      resnet20  id 3f2a9c1d7e4b" in p.stdout and f"{stream}:6: malformed JSON" in p.stdout
    p = subprocess.run([sys.executable, "-m", "tui_monitor", "cat", "--json", "-"], input=STREAM,
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 0, p.stderr
    assert len(p.stdout.splitlines()) == 8 and "<stdin>:6: malformed JSON" in p.stderr
    assert math.isnan(float(json.loads(p.stdout.splitlines()[4])["values"]["loss"]))
    p = subprocess.run([sys.executable, "-m", "tui_monitor", "cat", str(stream) + ".missing"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 1 and ".missing: No such file or directory" in p.stderr
