"""Importers: TensorBoard event files, CSV logs and text logs, read into the
store through the follower's dispatch (sources/registry.py)."""
from __future__ import annotations

import os
import struct
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, only_run, wait_for
from source_helpers import follow, read, values
from tui_monitor.schema import split_metric
from tui_monitor.sources import Ingest
from tui_monitor.sources.registry import discoverable, format_of
from tui_monitor.sources.tfevents import EventFileReader, TBRun, frame_record
from tui_monitor.sources.text import TextParser, compile_patterns



def f32(x):
    return float(np.float32(x))


# ---------------------------------------------------------------- dispatch

def test_dispatch_by_name_and_by_content(tmp_path):
    assert format_of("runs/a.jsonl").name == "jsonl"
    assert format_of("tb/events.out.tfevents.1700000000.host.1.0").name == "tensorboard"
    files = {"metrics.csv": "epoch,step,train_loss\n0,0,1.5\n",
             "training.log": "epoch,loss,val_loss\n0,0.9,1.0\n",        # Keras' CSVLogger, as its docs name it
             "history.csv": ",loss,val_loss\n0,0.9,1.0\n",               # pandas' to_csv, with its index
             "log.txt": "250 train 6.12\n250 val 6.01\n",
             "stream.log": '{"type": "run", "seq": 0, "run_id": "r"}\n',
             "notes.txt": "remember to tune the learning rate\n" * 3,
             "data.csv": "x,y,label\n1,2,0\n",
             "model.pt": "\0" * 64,
             "slurm-1234.out": ""}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    found = {name: getattr(format_of(str(tmp_path / name)), "name", None) for name in files}
    assert found == {"metrics.csv": "csv", "training.log": "csv", "history.csv": "csv", "log.txt": "text",
                     "stream.log": "jsonl", "notes.txt": None, "data.csv": None, "model.pt": None,
                     "slurm-1234.out": None}
    # named on the command line, anything is read (as text when nothing else takes it), once it has content
    assert format_of(str(tmp_path / "notes.txt"), explicit=True).name == "text"
    assert format_of(str(tmp_path / "data.csv"), explicit=True).name == "csv"   # whose reader says why not
    assert format_of(str(tmp_path / "slurm-1234.out"), explicit=True) is None    # nothing to tell by yet
    assert not discoverable(str(tmp_path / "notes.txt")) and discoverable(str(tmp_path / "log.txt"))


def test_a_file_found_in_a_folder_has_its_start_read_once_to_recognise_it(tmp_path, monkeypatch):
    """The folder's discovery reads a file's first bytes to tell its format;
    the tail was then made by asking the registry again, which read them a
    second time (64 KiB more per file found)."""
    from tui_monitor.sources import registry

    (tmp_path / "metrics.csv").write_text("epoch,step,train_loss\n0,0,1.5\n0,1,1.25\n")
    (tmp_path / "log.txt").write_text("250 train 6.12\n250 val 6.01\n")
    heads = []
    real = registry._read_head
    monkeypatch.setattr(registry, "_read_head", lambda path, size=registry.HEAD: (heads.append(path), real(path, size))[1])
    store = read(str(tmp_path)).store
    assert sorted(os.path.basename(p) for p in heads) == ["log.txt", "metrics.csv"]
    assert len(store.runs) == 2   # both read


def test_readers_import_only_their_base_and_the_registry_imports_them():
    import ast
    sources = ROOT / "tui_monitor" / "sources"
    readers = ("csvlog", "text", "tfevents", "hftrainer", "mlflowstore", "wandblog")
    helpers = {"formats", "naming", "hparams"}   # the base, and what names runs and reads their configs

    def local_imports(name):
        tree = ast.parse((sources / f"{name}.py").read_text())
        return {n.module.split(".")[0] if n.module else a.name for n in ast.walk(tree)
                if isinstance(n, ast.ImportFrom) and n.level == 1 for a in n.names}

    for name in readers:
        assert local_imports(name) <= helpers, name
    assert local_imports("formats") <= {"tail"}
    assert set(readers) <= local_imports("registry")


def test_tensorboard_tag_spellings_map_to_splits():
    assert split_metric("train/loss") == ("train", "loss")
    assert split_metric("loss/val") == ("val", "loss")
    assert split_metric("Loss/train") == ("train", "Loss")
    assert split_metric("Loss/Validation") == ("val", "Loss")
    assert split_metric("eval/accuracy") == ("val", "accuracy")


# ---------------------------------------------------------------- TensorBoard, without any TensorBoard package

def _pb_key(num, wt):
    return bytes([num << 3 | wt])


def _pb_bytes(num, data):
    n, out = len(data), b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            break
    return _pb_key(num, 2) + out + data


def _event(step, wall, tag, value, tensor=False):
    if tensor:  # a 0-d DT_FLOAT tensor, as tf.summary v2 writes scalars
        tp = _pb_key(1, 0) + b"\x01" + _pb_bytes(2, b"") + _pb_bytes(4, struct.pack("<f", value))
        val = _pb_bytes(1, tag.encode()) + _pb_bytes(8, tp) + _pb_bytes(9, _pb_bytes(1, _pb_bytes(1, b"scalars")))
    else:
        val = _pb_bytes(1, tag.encode()) + _pb_key(2, 5) + struct.pack("<f", value)
    return _pb_key(1, 1) + struct.pack("<d", wall) + _pb_key(2, 0) + bytes([step]) + _pb_bytes(5, _pb_bytes(1, val))


def test_hand_framed_event_file_partial_records_wait_and_crc_errors_name_the_offset(tmp_path):
    run = TBRun(str(tmp_path))
    events = [frame_record(_event(s, 1000.0 + s, "train/loss", 1.0 / (s + 1), tensor=s % 2 == 1)) for s in range(6)]
    data = b"".join(events)
    r = EventFileReader(str(tmp_path / "events.out.tfevents.1.h.2.0"), run)
    got = []
    for i in range(0, len(data), 5):  # five bytes at a time: every record is cut somewhere
        got += r.feed(data[i:i + 5])
    assert r.problem_count == 0
    assert [g["type"] for g in got] == ["run"] + ["metrics"] * 6
    assert [g["values"]["train/loss"] for g in got[1:]] == [f32(1.0 / (s + 1)) for s in range(6)]
    assert [g["step"] for g in got[1:]] == list(range(6))
    # a flipped byte in the second record's data: that record is skipped, named by its offset
    bad = bytearray(data)
    bad[len(events[0]) + 20] ^= 0xFF
    r2 = EventFileReader("f", TBRun(str(tmp_path)))
    out = r2.feed(bytes(bad))
    assert len([o for o in out if o["type"] == "metrics"]) == 5
    assert r2.problem_count == 1 and f"byte {len(events[0])}:" in r2.problems[0].reason
    # a flipped length: nothing after it can be framed
    bad = bytearray(data)
    bad[len(events[0]) + 1] ^= 0xFF
    r3 = EventFileReader("f", TBRun(str(tmp_path)))
    assert len([o for o in r3.feed(bytes(bad)) if o["type"] == "metrics"]) == 1
    assert "length" in r3.problems[0].reason and f"byte {len(events[0])}" in r3.problems[0].reason


def _summary_writer():
    pytest.importorskip("tensorboard", reason="the integrations extra (tensorboard) is not installed")
    torch_tb = pytest.importorskip("torch.utils.tensorboard", reason="torch is not installed")
    return torch_tb.SummaryWriter


def test_summary_writer_followed_live_two_files_one_run(tmp_path):
    SummaryWriter = _summary_writer()
    logdir = tmp_path / "tb" / "exp1"
    ing = Ingest()
    ing.add_path(str(tmp_path / "tb"), poll=True, interval=0.02)
    ing.start()
    try:
        w = SummaryWriter(str(logdir))
        for step in range(5):
            w.add_scalar("train/loss", 2.0 / (step + 1), step)
            w.add_scalar("lr", 0.1, step, new_style=True)  # a 0-d tensor, as newer writers store scalars
        w.add_text("notes", "a text summary is not a metric", 0)
        w.add_histogram("weights", np.arange(10.0), 0)
        w.flush()
        wait_for(lambda: ing.store.runs and (next(iter(ing.store.runs.values())).get("loss", "train") or [None]) and
                 len(next(iter(ing.store.runs.values())).get("loss", "train")) == 5, message="first scalars")
        for step in range(5, 8):  # more, while the monitor follows
            w.add_scalar("train/loss", 2.0 / (step + 1), step)
            w.add_scalar("loss/val", 3.0 / (step + 1), step)
        w.flush()
        w.close()
        w2 = SummaryWriter(str(logdir))  # a second event file in the same folder (a resumed job)
        w2.add_scalar("train/loss", 0.1, 8)
        w2.close()
        assert len(list(logdir.glob("events.out.tfevents.*"))) == 2
        run = only_run(ing)
        wait_for(lambda: len(run.get("loss", "train")) == 9 and run.get("loss", "val") is not None
                 and len(run.get("loss", "val")) == 3, message="live scalars")
    finally:
        ing.stop()
    steps, vals = values(run, "loss", "train")
    assert steps == list(range(9)) and vals == [f32(2.0 / (s + 1)) for s in range(8)] + [f32(0.1)]
    assert values(run, "loss", "val") == ([5, 6, 7], [f32(3.0 / (s + 1)) for s in range(5, 8)])
    assert values(run, "lr")[1] == [f32(0.1)] * 5
    assert sorted(run.series) == [("train", "loss"), ("train", "lr"), ("val", "loss")]
    assert run.name == "exp1" and run.header["tags"]["source"] == "tensorboard"
    assert not [p for p in ing.problems if p.severity == "error"]


def test_truncated_event_file_is_not_yet_then_read_when_complete(tmp_path):
    SummaryWriter = _summary_writer()
    src = tmp_path / "src"
    w = SummaryWriter(str(src))
    for step in range(10):
        w.add_scalar("train/loss", float(step), step)
    w.close()
    (full,) = src.glob("events.out.tfevents.*")
    data = full.read_bytes()
    dst = tmp_path / "run"
    dst.mkdir()
    target = dst / full.name
    target.write_bytes(data[: len(data) - 7])  # the last record cut short
    ing, f = follow(dst)
    run = only_run(ing)
    assert values(run, "loss")[0] == list(range(9)) and not list(ing.problems)
    with open(target, "ab") as fh:  # the writer finishes the record
        fh.write(data[len(data) - 7:])
    f.tick()
    assert values(run, "loss")[0] == list(range(10)) and not list(ing.problems)


# ---------------------------------------------------------------- CSV

def test_csv_columns_appearing_mid_run_with_lightnings_own_writer(tmp_path):
    writer_mod = pytest.importorskip("lightning.fabric.loggers.csv_logs",
                                     reason="the integrations extra (lightning) is not installed")
    folder = tmp_path / "cifar" / "lightning_logs" / "version_0"
    w = writer_mod._ExperimentWriter(str(folder))
    (folder / "hparams.yaml").write_text("lr: 0.01\nhidden: 32\nnested:\n  a: 1\n")
    ing = Ingest()
    f = ing.add_path(str(tmp_path))
    for step in range(3):
        w.log_metrics({"train_loss": 1.0 / (step + 1), "epoch": 0}, step)
    w.save()
    f.tick()
    run = only_run(ing)
    assert values(run, "loss") == ([0, 1, 2], [1.0, 0.5, 1.0 / 3])
    # a validation metric appears: Lightning rewrites the file with a wider header
    w.log_metrics({"val_loss": 0.9, "epoch": 0}, 2)
    for step in range(3, 5):
        w.log_metrics({"train_loss": 1.0 / (step + 1), "epoch": 1}, step)
    w.save()
    header = (folder / "metrics.csv").read_text().splitlines()[0]
    assert "val_loss" in header
    f.tick()
    assert values(run, "loss") == ([0, 1, 2, 3, 4], [1.0, 0.5, 1.0 / 3, 0.25, 0.2])  # nothing twice
    assert values(run, "loss", "val") == ([2], [0.9])
    assert run.name == "cifar/lightning_logs/version_0"  # the project's folder tells it from other projects' version_0
    assert run.config == {"lr": 0.01, "hidden": 32, "nested": {"a": 1}}
    assert len(ing.store.runs) == 1


def test_keras_long_and_tensorboard_export_csvs(tmp_path):
    (tmp_path / "keras.csv").write_text("epoch,accuracy,loss,val_accuracy,val_loss\n"
                                        "0,0.5,0.69,0.52,0.68\n1,0.7,0.55,0.66,0.60\n")
    (tmp_path / "long.csv").write_text("step,metric,value\n0,loss,2.0\n0,val_loss,2.2\n1,loss,1.5\n")
    (tmp_path / "run-exp-tag-loss.csv").write_text("Wall time,Step,Value\n1700000000.5,10,0.75\n1700000001.5,20,0.5\n")
    (tmp_path / "dataset.csv").write_text("x,y,label\n1,2,0\n")  # not a metrics log: left alone
    ing = read(tmp_path)
    runs = {r.name: r for r in ing.store.runs.values()}
    assert sorted(runs) == ["keras", "long", "run-exp-tag-loss"]
    assert values(runs["keras"], "loss") == ([0, 1], [0.69, 0.55])
    assert values(runs["keras"], "loss", "val") == ([0, 1], [0.68, 0.60])
    assert values(runs["long"], "loss") == ([0, 1], [2.0, 1.5]) and values(runs["long"], "loss", "val") == ([0], [2.2])
    s = runs["run-exp-tag-loss"].get("run-exp-tag-loss", "train").snapshot()
    assert list(s.steps) == [10, 20] and list(s.times) == [1700000000.5, 1700000001.5]


def test_ultralytics_and_timm_csvs_keep_working(tmp_path):
    # Neither can run here (Ultralytics fetches weights at run time; timm needs torchvision): their
    # headers as they write them, space-padded (Ultralytics) and plain (timm's update_summary).
    yolo = tmp_path / "runs" / "detect" / "train"
    yolo.mkdir(parents=True)
    (yolo / "results.csv").write_text(
        "                  epoch,         train/box_loss,         train/cls_loss,   metrics/mAP50(B),"
        "           val/box_loss,           val/cls_loss\n"
        "                      1,                 1.2345,                 2.3456,            0.12345,"
        "                 1.4567,                 2.5678\n")
    timm = tmp_path / "output" / "train" / "20240101-120000-resnet18-224"
    timm.mkdir(parents=True)
    (timm / "summary.csv").write_text("epoch,train_loss,eval_loss,eval_top1,eval_top5,lr\n"
                                      "0,6.9,6.8,0.1,0.5,0.1\n1,6.5,6.4,0.3,1.2,0.1\n")
    runs = {r.name: r for r in read(tmp_path).store.runs.values()}
    assert sorted(runs) == ["20240101-120000-resnet18-224", "detect/train"]
    assert values(runs["detect/train"], "box_loss", "val") == ([1], [1.4567])
    assert values(runs["20240101-120000-resnet18-224"], "loss", "val") == ([0, 1], [6.8, 6.4])
    assert values(runs["20240101-120000-resnet18-224"], "top1", "val") == ([0, 1], [0.1, 0.3])


def test_csv_appends_are_followed_and_a_partial_row_waits(tmp_path):
    p = tmp_path / "metrics.csv"
    p.write_text("step,loss\n0,1.0\n1,0.")
    ing, f = follow(tmp_path)
    run = only_run(ing)
    assert values(run, "loss") == ([0], [1.0])
    with open(p, "a") as fh:
        fh.write("9\n2,0.8\n")
    f.tick()
    assert values(run, "loss") == ([0, 1, 2], [1.0, 0.9, 0.8])


def test_simple_yaml_without_pyyaml():
    from tui_monitor.sources.csvlog import parse_simple_yaml
    text = "lr: 0.001\nname: resnet\nlayers:\n- 64\n- 128\nopt:\n  kind: adam\n  betas: [0.9, 0.99]\nflag: true\nnone: null\n"
    assert parse_simple_yaml(text) == {"lr": 0.001, "name": "resnet", "layers": [64, 128],
                                       "opt": {"kind": "adam", "betas": [0.9, 0.99]}, "flag": True, "none": None}
    assert parse_simple_yaml("obj: !!python/object:os.system\n  x: 1\n")["obj"].startswith("!!python")


# ---------------------------------------------------------------- text
# The printed formats of real loops (the PyTorch tutorials, nanoGPT, build-nanogpt, modded-nanogpt, Keras 1)
# are printed by real trainings and read live and after by every command in test_wild_logs.py.

def test_parse_regex_comes_first_and_needs_named_metrics(tmp_path):
    log = tmp_path / "job.log"
    log.write_text("it 1 l=2.5 acc=0.1\nit 2 l=2.0 acc=0.2\nstep 3 loss 1.0\n")
    run = only_run(read(log, context={"parse_regex": compile_patterns([r"it (?P<step>\d+) l=(?P<loss>\S+)"])}))
    assert values(run, "loss") == ([1, 2, 3], [2.5, 2.0, 1.0])
    with pytest.raises(ValueError):
        compile_patterns([r"it (?P<step>\d+)"])
    with pytest.raises(ValueError):
        compile_patterns([r"it ("])


def test_generic_lines_and_tqdm_postfixes():
    p = TextParser()
    assert p.line("step 100 loss 2.31") == (100, None, {"loss": 2.31})
    assert p.line("Step 300 | loss=2.31 | lr=1e-3") == (300, None, {"loss": 2.31, "lr": 0.001})
    assert p.line("Loading 100 files") is None
    bar = " 45%|####5     | 45/100 [00:10<00:12,  4.50it/s, loss=0.42, lr=0.001]"
    assert p.line(bar) == (45, None, {"loss": 0.42, "lr": 0.001})
    assert p.line(bar) is None  # the same step redrawn
    assert p.line("epoch 2 | train_loss: 0.31 val_loss: 0.40") == (2, None, {"train_loss": 0.31, "val_loss": 0.4})


NANOGPT_LOOP = r"""
import time, torch
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Embedding(32, 16), torch.nn.Linear(16, 32))
opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
data = torch.randint(0, 32, (512,))
def batch():
    ix = torch.randint(0, len(data) - 9, (8,))
    return torch.stack([data[i:i+8] for i in ix]), torch.stack([data[i+1:i+9] for i in ix])
@torch.no_grad()
def estimate():
    out = {}
    for split in ("train", "val"):
        x, y = batch()
        out[split] = torch.nn.functional.cross_entropy(model(x).view(-1, 32), y.view(-1)).item()
    return out
t0 = time.time()
for iter_num in range(31):
    if iter_num % 10 == 0:
        losses = estimate()
        print(f"step {iter_num}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}", flush=True)
    x, y = batch()
    loss = torch.nn.functional.cross_entropy(model(x).view(-1, 32), y.view(-1))
    opt.zero_grad(); loss.backward(); opt.step()
    t1 = time.time(); dt = t1 - t0; t0 = t1
    if iter_num % 5 == 0:
        print(f"iter {iter_num}: loss {loss.item():.4f}, time {dt*1000:.2f}ms, mfu {-100.0:.2f}%", flush=True)
"""


def _expected_from(lines):
    import re
    train, val, it = {}, {}, {}
    for line in lines:
        m = re.match(r"step (\d+): train loss ([\d.]+), val loss ([\d.]+)", line)
        if m:
            train[int(m[1])], val[int(m[1])] = float(m[2]), float(m[3])
        m = re.match(r"iter (\d+): loss ([\d.]+)", line)
        if m:
            it[int(m[1])] = float(m[2])
    return train, val, it


def test_nanogpt_style_loop_output_through_stdin():
    pytest.importorskip("torch", reason="torch is not installed")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    train = subprocess.run([sys.executable, "-c", NANOGPT_LOOP], capture_output=True, text=True, env=env, timeout=120)
    assert train.returncode == 0, train.stderr
    printed = train.stdout.splitlines()
    train_loss, val_loss, iter_loss = _expected_from(printed)
    assert len(train_loss) == 4 and len(iter_loss) == 7
    # python train.py | tui-monitor watch --once -
    watch = subprocess.run([sys.executable, "-m", "tui_monitor", "watch", "--once", "-"], input=train.stdout,
                           capture_output=True, text=True, env=env, timeout=60)
    assert watch.returncode == 0, watch.stderr
    assert "stdin" in watch.stdout and "finished" in watch.stdout
    # and the same output as a file, read by the store
    from tui_monitor.sources.text import TextReader
    r = TextReader("x", "x", "x")
    recs = r.feed(train.stdout.encode())
    got_val = {rec["step"]: rec["values"]["val_loss"] for rec in recs if "val_loss" in rec.get("values", {})}
    got_iter = {rec["step"]: rec["values"]["loss"] for rec in recs if "loss" in rec.get("values", {})}
    got_train = {rec["step"]: rec["values"]["train_loss"] for rec in recs if "train_loss" in rec.get("values", {})}
    # a series has one value a step: at an evaluation's step, the evaluation's train loss, printed first
    assert got_val == val_loss and got_train == train_loss
    assert got_iter == {step: loss for step, loss in iter_loss.items() if step not in train_loss}
    assert {split_metric(k) for rec in recs if rec["type"] == "metrics" for k in rec["values"]} >= {
        ("train", "loss"), ("val", "loss"), ("train", "time"), ("train", "mfu")}


def test_stdin_run_that_crashed_says_so(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    text = "step 1 loss 2.0\nstep 2 loss nan\nTraceback (most recent call last):\n  File \"t.py\", line 3\n" \
           "FloatingPointError: loss is NaN\n"
    watch = subprocess.run([sys.executable, "-m", "tui_monitor", "watch", "--once", "-"], input=text,
                           capture_output=True, text=True, env=env, timeout=60)
    assert watch.returncode == 0 and "crashed" in watch.stdout, watch.stdout + watch.stderr


def test_a_named_text_log_is_followed_history_first_then_live(tmp_path):
    log = tmp_path / "slurm-1234.out"
    log.write_text("starting\nstep 1 loss 2.0\n")
    ing, f = follow(log)
    run = only_run(ing)
    assert values(run, "loss") == ([1], [2.0])
    with open(log, "a") as fh:
        fh.write("step 2 loss 1.5\r\nstep 3 lo")
    f.tick()
    assert values(run, "loss") == ([1, 2], [2.0, 1.5])
    with open(log, "a") as fh:
        fh.write("ss 1.25\n")
    f.tick()
    assert values(run, "loss") == ([1, 2, 3], [2.0, 1.5, 1.25])


def test_csv_with_leading_blank_lines_is_not_read_again_on_every_poll(tmp_path):
    p = tmp_path / "metrics.csv"
    p.write_text("\n\r\nstep,loss\n0,1.0\n1,0.9\n")
    ing, f = follow(tmp_path)
    run = only_run(ing)
    tail = f.tails[str(p)]
    generation, offset, taken = tail.generation, tail.offset, ing.records_in
    assert values(run, "loss") == ([0, 1], [1.0, 0.9]) and offset == p.stat().st_size
    mtime = p.stat().st_mtime_ns
    for i in range(1, 6):  # touched, not grown: each tick looks at the header again (an idle file is not looked at)
        os.utime(p, ns=(mtime + i * 10 ** 9, mtime + i * 10 ** 9))
        f.tick()
    # the header (at byte 3, after the blank lines) was found where it was read: no re-read
    assert (tail.generation, tail.offset, ing.records_in) == (generation, offset, taken)
    with open(p, "a") as fh:
        fh.write("2,0.8\n")
    f.tick()
    f.tick()
    assert values(run, "loss") == ([0, 1, 2], [1.0, 0.9, 0.8])
    assert tail.generation == generation and run.duplicates == 0 and not list(ing.problems)


def test_stdin_source_added_to_the_followers_is_never_catching_up(tmp_path):
    from tui_monitor.sources.text import StdinSource
    r, w = os.pipe()
    ing = Ingest()
    src = StdinSource(ing.records, ing.problem, fd=r)   # takes its own duplicate of the fd
    os.close(r)
    ing.followers.append(src)                             # as text.attach does with standard input
    assert ing.catching_up is False
    os.write(w, b"step 1 loss 2.0\nstep 2 loss 1.5\n")
    os.close(w)
    src.read_all()
    assert values(only_run(ing), "loss") == ([1, 2], [2.0, 1.5])
    assert ing.catching_up is False
    (tmp_path / "job.log").write_text("step 1 loss 2.0\nstep 2 loss 1.5\n")
    ing.add_path(str(tmp_path))                           # with a file follower that has not looked yet
    assert ing.catching_up is True
