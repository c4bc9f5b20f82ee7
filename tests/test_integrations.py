"""Framework adapters and the frameworks' own loggers, with the real libraries:
a tiny Lightning Trainer.fit logged by our logger, by Lightning's CSVLogger
and by its TensorBoardLogger, and a tiny transformers.Trainer with our
callback (its printed output also read by the text parser), each read back by
the monitor."""
from __future__ import annotations

import contextlib
import io
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest

from conftest import only_run, wait_for
from source_helpers import read, values

torch = pytest.importorskip("torch", reason="torch is not installed")


# ---------------------------------------------------------------- Lightning

def _fit(tmp_path, logger, steps=6, on_epoch_too=False, **trainer_options):
    pl = pytest.importorskip("lightning.pytorch", reason="the integrations extra (lightning) is not installed")

    class Tiny(pl.LightningModule):
        def __init__(self, lr=0.05, hidden=8):
            super().__init__()
            self.save_hyperparameters()
            self.net = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))
            self.logged = {"train_loss": {}, "val_loss": {}}

        def training_step(self, batch, i):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log("train_loss", loss, on_step=True, on_epoch=on_epoch_too)
            self.logged["train_loss"][self.global_step] = loss.item()
            return loss

        def validation_step(self, batch, i):
            x, y = batch
            loss = torch.nn.functional.mse_loss(self.net(x), y)
            self.log("val_loss", loss, on_epoch=True)
            self.logged["val_loss"].setdefault(self.global_step, []).append(loss.item())

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    g = torch.Generator().manual_seed(0)
    x = torch.randn(24, 4, generator=g)
    ds = torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True))
    train = torch.utils.data.DataLoader(ds, batch_size=8)
    val = torch.utils.data.DataLoader(ds, batch_size=24)
    model = Tiny()
    trainer = pl.Trainer(max_steps=steps, max_epochs=2, logger=logger, log_every_n_steps=1, accelerator="cpu",
                         devices=1, enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False,
                         num_sanity_val_steps=0, default_root_dir=str(tmp_path), **trainer_options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, train, val)
    return model


def _check_lightning_run(run, model, exact=True):
    steps, vals = values(run, "loss", "train")
    want = model.logged["train_loss"]
    assert steps == sorted(want) and len(steps) == 6
    conv = (lambda v: v) if exact else (lambda v: float(np.float32(v)))
    assert vals == [conv(want[s]) for s in steps]
    vsteps, vvals = values(run, "loss", "val")
    assert vsteps == [2, 5]  # after each epoch of 3 batches (global_step is the count of steps done)
    assert [round(v, 5) for v in vvals] == [round(conv(model.logged["val_loss"][s][0]), 5) for s in (3, 6)]


def test_lightning_with_our_logger(tmp_path):
    pytest.importorskip("lightning.pytorch", reason="the integrations extra (lightning) is not installed")
    from tui_monitor.integrations.lightning import TuiMonitorLogger
    model = _fit(tmp_path, TuiMonitorLogger(dir=str(tmp_path / "runs"), name="tiny"))
    run = only_run(read(tmp_path / "runs"))
    assert run.name == "tiny" and run.status == "finished"
    params = sum(p.numel() for p in model.parameters())
    assert run.model["params"] == params == 4 * 8 + 8 + 8 + 1 and run.model["depth"] == 2
    assert run.config == {"lr": 0.05, "hidden": 8}
    steps, vals = values(run, "loss", "train")
    assert vals == [model.logged["train_loss"][s] for s in steps] and len(steps) == 6
    assert values(run, "loss", "val")[0] == [2, 5]  # the step Lightning passes its loggers (as in its CSV)


def test_lightning_callback_with_another_logger(tmp_path):
    pytest.importorskip("lightning.pytorch", reason="the integrations extra (lightning) is not installed")
    from tui_monitor.integrations.lightning import TuiMonitorCallback
    import lightning.pytorch as pl
    cb = TuiMonitorCallback(dir=str(tmp_path / "runs"))

    class WithCallback(pl.Trainer):
        pass

    orig = pl.Trainer.__init__

    def init(self, *a, **k):
        k["callbacks"] = [cb]
        orig(self, *a, **k)

    WithCallback.__init__ = init
    old, pl.Trainer = pl.Trainer, WithCallback
    try:
        model = _fit(tmp_path, False)
    finally:
        pl.Trainer = old
    run = only_run(read(tmp_path / "runs"))
    assert run.name == "Tiny" and run.model["params"] == sum(p.numel() for p in model.parameters())
    steps, vals = values(run, "loss", "train")
    assert len(steps) >= 5 and all(vals[i] == model.logged["train_loss"][s - 1] for i, s in enumerate(steps))
    assert len(values(run, "loss", "val")[0]) == 2


def test_lightning_callback_logs_each_step_once_under_gradient_accumulation(tmp_path):
    pytest.importorskip("lightning.pytorch", reason="the integrations extra (lightning) is not installed")
    from tui_monitor.integrations.lightning import TuiMonitorCallback
    cb = TuiMonitorCallback(dir=str(tmp_path / "runs"))
    model = _fit(tmp_path, False, steps=3, accumulate_grad_batches=2, callbacks=[cb])
    steps, _ = values(only_run(read(tmp_path / "runs")), "loss", "train")
    assert model.global_step == 3 and steps == [1, 2, 3]  # once per optimizer step, after it, not per micro-batch


def test_lightning_csvlogger_read_back(tmp_path):
    pytest.importorskip("lightning.pytorch", reason="the integrations extra (lightning) is not installed")
    from lightning.pytorch.loggers import CSVLogger
    model = _fit(tmp_path, CSVLogger(str(tmp_path / "cifar"), name="lightning_logs"))
    assert (tmp_path / "cifar" / "lightning_logs" / "version_0" / "metrics.csv").exists()
    run = only_run(read(tmp_path / "cifar"))
    assert run.name == "cifar/lightning_logs/version_0" and run.config == {"lr": 0.05, "hidden": 8}
    _check_lightning_run(run, model)


def test_lightning_tensorboardlogger_read_back(tmp_path):
    pytest.importorskip("lightning.pytorch", reason="the integrations extra (lightning) is not installed")
    pytest.importorskip("tensorboard", reason="the integrations extra (tensorboard) is not installed")
    from lightning.pytorch.loggers import TensorBoardLogger
    model = _fit(tmp_path, TensorBoardLogger(str(tmp_path / "cifar"), name="lightning_logs"))
    ing = read(tmp_path / "cifar")
    run = only_run(ing)
    assert run.name == "cifar/lightning_logs/version_0" and run.config == {"lr": 0.05, "hidden": 8}
    _check_lightning_run(run, model, exact=False)  # TensorBoard keeps float32
    assert not list(ing.problems)


def _runs_table_row(run):
    from tui_monitor.store import Store
    from tui_monitor.summary import HEADERS, run_rows
    store = Store()
    store.runs = {run.key: run}
    return dict(zip(HEADERS, run_rows(store)[0]))


@pytest.mark.parametrize("logger", ["csv", "tensorboard", "ours"])
def test_lightning_on_step_and_on_epoch_shows_the_train_loss(tmp_path, logger):
    """self.log("train_loss", loss, on_step=True, on_epoch=True) logs
    train_loss_step and train_loss_epoch: the runs table's train column
    shows the loss (it stayed "-")."""
    pytest.importorskip("lightning.pytorch", reason="the integrations extra (lightning) is not installed")
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
    from tui_monitor.integrations.lightning import TuiMonitorLogger
    from tui_monitor.safe_text import fmt_num
    if logger == "tensorboard":
        pytest.importorskip("tensorboard", reason="the integrations extra (tensorboard) is not installed")
    make = {"csv": lambda: CSVLogger(str(tmp_path / "mnist")), "tensorboard": lambda: TensorBoardLogger(str(tmp_path / "mnist")),
            "ours": lambda: TuiMonitorLogger(dir=str(tmp_path / "mnist"), name="tiny")}[logger]
    model = _fit(tmp_path, make(), on_epoch_too=True)
    run = only_run(read(tmp_path / "mnist"))
    conv = (lambda v: float(np.float32(v))) if logger == "tensorboard" else (lambda v: v)
    steps, vals = values(run, "loss", "train")
    assert steps == sorted(model.logged["train_loss"]) and len(steps) == 6
    assert vals == [conv(model.logged["train_loss"][s]) for s in steps]
    assert ("train", "loss_epoch") in run.series and ("train", "loss_step") not in run.series
    row = _runs_table_row(run)
    assert row["metric"] == "loss" and row["train"] == fmt_num(vals[-1]) != "-"


def test_lightning_runs_of_two_projects_have_names_that_tell_them_apart(tmp_path):
    pytest.importorskip("lightning.pytorch", reason="the integrations extra (lightning) is not installed")
    from lightning.pytorch.loggers import CSVLogger
    for project in ("mnist", "cifar"):
        _fit(tmp_path / project, CSVLogger(str(tmp_path / project)), steps=3)
    names = sorted(r.name for r in read(tmp_path).store.runs.values())
    assert names == ["cifar/lightning_logs/version_0", "mnist/lightning_logs/version_0"]


def _aged_and_watched_once(files, watched, name):
    """``files`` made three years old; the row of run ``name`` that
    ``tui-monitor watch --once watched`` prints."""
    import os
    import subprocess
    import sys
    from conftest import ROOT
    three_years = 3 * 365 * 86400
    for path in files.rglob("*"):
        st = path.stat()
        os.utime(path, (st.st_atime - three_years, st.st_mtime - three_years))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "tui_monitor", "watch", "--once", str(watched)],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return next(line for line in proc.stdout.splitlines() if line.startswith(name))


def test_an_old_lightning_run_is_shown_as_stopped_long_ago_not_silent_nor_finished(tmp_path):
    """A run read from logs written years ago, with no end record: stopped
    at its last write, nobody knows how (watch --once showed "silent
    1538864m", then "finished")."""
    pytest.importorskip("lightning.pytorch", reason="the integrations extra (lightning) is not installed")
    from lightning.pytorch.loggers import CSVLogger
    _fit(tmp_path, CSVLogger(str(tmp_path / "mnist")), steps=3)
    csv = tmp_path / "mnist" / "lightning_logs" / "version_0" / "metrics.csv"
    row = _aged_and_watched_once(tmp_path / "mnist", tmp_path / "mnist", "mnist/lightning_logs/version_0")
    assert row.split()[2:5] == ["stopped", "3y", "ago"]
    run = only_run(read(tmp_path / "mnist"))
    assert run.status == "stopped" and run.end is None and run.last_seen == csv.stat().st_mtime
    # the same logs written just now: a run that may still be going
    fresh = only_run(read(_copy_fresh(tmp_path / "mnist", tmp_path / "fresh")))
    assert fresh.status == "running" and fresh.end is None


def _copy_fresh(src, dst):
    import os
    import shutil
    shutil.copytree(src, dst)
    for path in dst.rglob("*"):
        os.utime(path, None)
    return dst


# ---------------------------------------------------------------- Hugging Face

class HFRun:
    """One tiny ``transformers.Trainer`` run: 10 steps, a training log every 3
    (3, 6, 9), an evaluation and a checkpoint every 5 (5, 10: the last
    evaluation is past the last training log), with our callback, its
    printed output captured as ``2>&1 | tee`` would, and what a follower
    read of the output folder at each checkpoint while it trained."""


@pytest.fixture(scope="module")
def hf_run(tmp_path_factory):
    transformers = pytest.importorskip("transformers", reason="the integrations extra (transformers) is not installed")
    import os
    from tui_monitor.integrations.transformers import TuiMonitorCallback
    from tui_monitor.sources import Ingest
    tmp = tmp_path_factory.mktemp("hf")
    saved = {k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "WANDB_DISABLED")}
    os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", WANDB_DISABLED="true")
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=64, n_positions=16, n_embd=16, n_layer=1, n_head=2)
    model = transformers.GPT2LMHeadModel(config)

    class Tokens(torch.utils.data.Dataset):
        def __init__(self, n, seed):
            g = torch.Generator().manual_seed(seed)
            self.x = torch.randint(0, 64, (n, 12), generator=g)

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            return {"input_ids": self.x[i], "labels": self.x[i]}

    ing = Ingest()
    follower = ing.add_path(str(tmp / "out"))
    seen_live = {}

    class ReadAtEachCheckpoint(transformers.TrainerCallback):
        def on_save(self, args, state, control, **kwargs):  # the checkpoint is on disk: read what is there
            follower.scan()
            follower.tick()
            run = next(iter(ing.store.runs.values()), None)
            seen_live[state.global_step] = (
                {s: values(run, "loss", s) for s in ("train", "val") if run is not None and run.get("loss", s)},
                [dict(h) for h in state.log_history])

    args = transformers.TrainingArguments(
        output_dir=str(tmp / "out"), max_steps=10, per_device_train_batch_size=4, per_device_eval_batch_size=8,
        learning_rate=1e-3, logging_steps=3, eval_strategy="steps", eval_steps=5, save_strategy="steps",
        save_steps=5, report_to=[], use_cpu=True, disable_tqdm=False, max_grad_norm=1.0, dataloader_num_workers=0,
        seed=0)
    cb = TuiMonitorCallback(dir=str(tmp / "runs"), name="tiny-gpt2")
    trainer = transformers.Trainer(model=model, args=args, train_dataset=Tokens(48, 1), eval_dataset=Tokens(8, 2),
                                   callbacks=[cb, ReadAtEachCheckpoint()])
    out = io.StringIO()  # python train.py 2>&1 | tee hf.log: both streams, interleaved
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer.train()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    hf = HFRun()
    hf.dir, hf.model, hf.printed, hf.seen_live = tmp, model, out.getvalue(), seen_live
    hf.history = trainer.state.log_history
    hf.train_logs = [h for h in hf.history if "loss" in h and "train_runtime" not in h]
    hf.eval_logs = [h for h in hf.history if "eval_loss" in h]
    assert [h["step"] for h in hf.train_logs] == [3, 6, 9] and [h["step"] for h in hf.eval_logs] == [5, 10]
    return hf


def test_transformers_trainer_with_our_callback(hf_run):
    run = only_run(read(hf_run.dir / "runs"))
    assert run.name == "tiny-gpt2" and run.status == "finished"
    assert run.model["params"] == sum(p.numel() for p in hf_run.model.parameters())
    assert run.config["learning_rate"] == 1e-3 and run.config["model"]["n_embd"] == 16
    train_logs, eval_logs = hf_run.train_logs, hf_run.eval_logs
    assert values(run, "loss") == ([h["step"] for h in train_logs], [h["loss"] for h in train_logs])
    assert values(run, "loss", "val") == ([h["step"] for h in eval_logs], [h["eval_loss"] for h in eval_logs])
    assert values(run, "learning_rate")[1] == [h["learning_rate"] for h in train_logs]
    assert values(run, "grad_norm")[1] == pytest.approx([h["grad_norm"] for h in train_logs])
    assert ("train", "train_loss") not in run.series and ("train", "runtime") not in run.series


def _check_printed_run(run, hf_run):
    steps, losses = values(run, "loss")
    assert losses == pytest.approx([h["loss"] for h in hf_run.train_logs], rel=1e-3)
    assert steps == [h["step"] for h in hf_run.train_logs]  # the progress bar's count, redrawn after each dict
    vsteps, vlosses = values(run, "loss", "val")
    assert vlosses == pytest.approx([h["eval_loss"] for h in hf_run.eval_logs], rel=1e-3)
    assert vsteps == [5, 10]  # the final evaluation at the last step, not at the last training log's (9)


def test_transformers_printed_output_read_from_a_file(hf_run, tmp_path):
    printed = tmp_path / "hf.log"
    printed.write_text(hf_run.printed)
    _check_printed_run(only_run(read(printed)), hf_run)


def _unread(fd):
    import fcntl
    import termios
    return struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0]


def test_transformers_printed_output_from_standard_input_write_by_write(hf_run):
    """Piped, the dict and the bar's redraw after it come in separate writes:
    the dict waits for the redraw (the count drawn before it is a step old)."""
    import os
    import threading
    from tui_monitor.sources import Ingest
    from tui_monitor.sources.text import StdinSource
    pieces, rest = [], hf_run.printed
    while "{'" in rest:  # cut after each printed dict, where the writer's next write() began
        cut = rest.index("}\n", rest.index("{'")) + 2
        pieces.append(rest[:cut])
        rest = rest[cut:]
    pieces.append(rest)
    assert len(pieces) == 7   # 3 training logs, 2 evaluations, the summary: 6 dicts
    r, w = os.pipe()
    ing = Ingest()
    src = StdinSource(ing.records, ing.problem, fd=r)
    os.close(r)
    thread = threading.Thread(target=src.read_all)
    thread.start()
    try:
        for piece in pieces:
            os.write(w, piece.encode())
            # taken out of the pipe before the next write: each write is a read of its own
            wait_for(lambda: _unread(src.fd) == 0, message="the piece read")
    finally:
        os.close(w)
        thread.join(10)
    _check_printed_run(only_run(ing), hf_run)


def test_transformers_trainer_state_read_after_the_fact_and_at_each_checkpoint(hf_run):
    out = hf_run.dir / "out"
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["checkpoint-10", "checkpoint-5"]
    ing = read(out)
    run = only_run(ing)   # two checkpoints' trainer_state.json, one run, each entry once
    assert run.name == "out" and run.header["tags"]["source"] == "hf-trainer" and run.status == "finished"
    train_logs, eval_logs = hf_run.train_logs, hf_run.eval_logs
    assert values(run, "loss") == ([3, 6, 9], [h["loss"] for h in train_logs])
    assert values(run, "loss", "val") == ([5, 10], [h["eval_loss"] for h in eval_logs])
    assert values(run, "grad_norm")[1] == [h["grad_norm"] for h in train_logs]
    assert run.config["max_steps"] == 10 and run.config["model"]["n_embd"] == 16
    assert run.duplicates == 0
    # the checkpoints' weights are said once, not once a checkpoint (a long training has hundreds)
    [skipped] = [p for p in ing.problems if "skipped" in p.reason]
    assert Path(skipped.source) == out and "in each of 2 folders (checkpoint-5, checkpoint-10)" in skipped.reason
    assert "model.safetensors" in skipped.reason
    # while it trained: at each checkpoint, what the follower had read was the history so far
    assert sorted(hf_run.seen_live) == [5, 10]
    for seen, history in hf_run.seen_live.values():
        assert seen["train"] == ([h["step"] for h in history if "loss" in h],
                                 [h["loss"] for h in history if "loss" in h])
        assert seen["val"][0] == [h["step"] for h in history if "eval_loss" in h]


# ---------------------------------------------------------------- MLflow's file store

def _mlflow(monkeypatch, tmp_path):
    mlflow = pytest.importorskip("mlflow", reason="mlflow-skinny is in the integrations extra")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")   # MLflow 3 keeps the file store behind this switch
    monkeypatch.setenv("MLFLOW_TRACKING_URI", (tmp_path / "mlruns").as_uri())
    mlflow.set_tracking_uri((tmp_path / "mlruns").as_uri())
    return mlflow


def test_mlflow_file_store_followed_live_then_ended(tmp_path, monkeypatch):
    mlflow = _mlflow(monkeypatch, tmp_path)
    from tui_monitor.sources import Ingest
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.randn(32, 4)
    y = x.sum(1, keepdim=True)
    ing = Ingest()
    follower = ing.add_path(str(tmp_path / "mlruns"))
    logged = {"train/loss": [], "val_loss": []}
    mlflow.set_experiment("tiny-regression")
    with mlflow.start_run(run_name="lr-0.1"):
        mlflow.log_params({"lr": 0.1, "hidden": 0, "optimizer": "sgd"})
        for step in range(6):
            loss = torch.nn.functional.mse_loss(model(x[:24]), y[:24])
            opt.zero_grad()
            loss.backward()
            opt.step()
            mlflow.log_metric("train/loss", loss.item(), step=step)   # a name with a slash: a nested file
            logged["train/loss"].append(loss.item())
            if step % 2 == 1:
                with torch.no_grad():
                    val = torch.nn.functional.mse_loss(model(x[24:]), y[24:]).item()
                mlflow.log_metric("val_loss", val, step=step)
                logged["val_loss"].append(val)
            if step == 2:  # while it trains: what is on disk so far
                follower.scan()
                follower.tick()
                run = only_run(ing)
                assert values(run, "loss") == ([0, 1, 2], logged["train/loss"])
                assert run.status == "running"
    follower.scan()
    follower.tick()
    run = only_run(ing)
    assert run.name == "tiny-regression/lr-0.1" and run.run_id.startswith("mlflow-")
    assert run.config == {"lr": 0.1, "hidden": 0, "optimizer": "sgd"}
    assert values(run, "loss") == (list(range(6)), logged["train/loss"])
    assert values(run, "loss", "val") == ([1, 3, 5], logged["val_loss"])
    assert run.status == "finished"
    assert not list(ing.problems)


def test_mlflow_runs_of_an_experiment_are_told_apart_and_a_failed_one_crashed(tmp_path, monkeypatch):
    mlflow = _mlflow(monkeypatch, tmp_path)
    mlflow.set_experiment("sweep")
    for lr in (0.1, 0.01):
        with mlflow.start_run(run_name=f"lr-{lr}"):
            mlflow.log_param("lr", lr)
            mlflow.log_metric("loss", 1.0, step=0)
    try:
        with mlflow.start_run(run_name="diverged"):
            mlflow.log_metric("loss", float("nan"), step=0)
            raise FloatingPointError("loss is nan")
    except FloatingPointError:
        pass
    runs = {r.name: r for r in read(tmp_path / "mlruns").store.runs.values()}
    assert sorted(runs) == ["sweep/diverged", "sweep/lr-0.01", "sweep/lr-0.1"]
    assert runs["sweep/lr-0.01"].config == {"lr": 0.01} and runs["sweep/lr-0.1"].status == "finished"
    assert runs["sweep/diverged"].status == "crashed"
    assert np.isnan(values(runs["sweep/diverged"], "loss")[1][0])


def test_an_mlflow_run_left_running_long_ago_is_shown_as_stopped_not_silent(tmp_path, monkeypatch):
    import time
    mlflow = _mlflow(monkeypatch, tmp_path)
    mlflow.set_experiment("old")
    now, back = time.time(), 3 * 365 * 86400
    with monkeypatch.context() as clock:             # the run as MLflow wrote it three years ago
        clock.setattr(time, "time", lambda: now - back)
        clock.setattr(time, "time_ns", lambda: int((now - back) * 1e9))
        run = mlflow.start_run(run_name="killed")   # the process was killed: the run is never ended
        three_years_ago = int((now - back) * 1000)
        mlflow.log_metric("loss", 0.5, step=3, timestamp=three_years_ago)
    folder = tmp_path / "mlruns" / run.info.experiment_id / run.info.run_id
    row = _aged_and_watched_once(folder, tmp_path / "mlruns", "old/killed")   # as a run killed 3 years ago left it
    assert row.split()[2:5] == ["stopped", "3y", "ago"]
    stopped = only_run(read(tmp_path / "mlruns"))
    mlflow.end_run()
    assert stopped.status == "stopped" and stopped.end is None
    assert stopped.last_seen == three_years_ago / 1000


# ---------------------------------------------------------------- W&B offline runs

WANDB_TRAIN = """
import sys, torch, wandb
torch.manual_seed(0); torch.set_num_threads(1)
model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
x = torch.randn(32, 4); y = x.sum(1, keepdim=True)
run = wandb.init(project="tiny", name="sgd-0.1", config={"lr": 0.1, "layers": 1}, dir=sys.argv[1])
for step in range(2400):
    loss = torch.nn.functional.mse_loss(model(x[:24]), y[:24])
    opt.zero_grad(); loss.backward(); opt.step()
    row = {"train/loss": loss.item()}
    if step % 100 == 99:
        with torch.no_grad():
            row["val/loss"] = torch.nn.functional.mse_loss(model(x[24:]), y[24:]).item()
    run.log(row, step=step)
    print("LOGGED " + repr(row), flush=True)
    if step == 1999:
        print("WAITING", flush=True)
        sys.stdin.readline()   # the test reads the run as it stands, then lets it go on
if sys.argv[2] == "crash":
    raise RuntimeError("loss went nan")
run.finish()
"""


def _wandb_training(tmp_path, how="finish"):
    pytest.importorskip("wandb", reason="wandb is in the integrations extra (and the wandb extra)")
    import os
    import subprocess
    import sys
    env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true", WANDB_DISABLE_GIT="true",
               OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-c", WANDB_TRAIN, str(tmp_path), how], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _logged(lines):
    import ast
    return [ast.literal_eval(line[len("LOGGED "):]) for line in lines if line.startswith("LOGGED ")]


def test_wandb_offline_run_followed_live_then_finished(tmp_path):
    from tui_monitor.sources import Ingest
    proc = _wandb_training(tmp_path)
    try:
        first = []
        while not first or first[-1] != "WAITING\n":   # 2000 steps logged; it waits for us
            first.append(proc.stdout.readline())
            assert first[-1], proc.stderr.read()[-2000:]
        rows = _logged(first)
        ing = Ingest()
        follower = ing.add_path(str(tmp_path / "wandb"))

        def caught_up():  # wandb writes its log in blocks as they fill: most of the steps so far
            follower.scan()
            follower.tick()
            run = next(iter(ing.store.runs.values()), None)
            return run is not None and run.get("loss") is not None and len(run.get("loss")) >= 1000

        wait_for(caught_up, message="the steps the offline run has written so far")
        run = only_run(ing)
        steps, got = values(run, "loss")
        assert steps == list(range(len(steps))) and got == [r["train/loss"] for r in rows[:len(steps)]]
        assert run.status == "running"
        out, err = proc.communicate("go\n", timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err[-2000:]
    rows += _logged(out.splitlines())
    wait_for(lambda: (follower.scan(), follower.tick(), run.status == "finished")[-1], message="the exit record")
    assert run.name == "tiny/sgd-0.1" and run.config == {"lr": 0.1, "layers": 1}
    assert values(run, "loss") == (list(range(2400)), [r["train/loss"] for r in rows])
    assert values(run, "loss", "val") == (list(range(99, 2400, 100)), [r["val/loss"] for r in rows if "val/loss" in r])
    problems = [p for p in ing.problems if p.severity == "error"]
    assert not problems and not [p for p in ing.problems if "skipped" in p.reason]   # W&B's own files: silent


def test_wandb_offline_run_that_crashed_says_so(tmp_path):
    proc = _wandb_training(tmp_path, "crash")
    out, err = proc.communicate("go\n", timeout=120)
    assert proc.returncode == 1 and "loss went nan" in err
    run = only_run(read(tmp_path / "wandb"))
    assert run.status == "crashed" and values(run, "loss")[0] == list(range(2400))


def read_named(path):
    return read(path)


def test_plain_torch_helper_only_rank_zero_writes(tmp_path, monkeypatch):
    from tui_monitor.integrations.torch import NullRun, monitor
    model = torch.nn.Linear(3, 2)
    monkeypatch.setenv("RANK", "1")
    assert isinstance(monitor(model, dir=str(tmp_path / "r1")), NullRun)
    assert not (tmp_path / "r1").exists()
    run = monitor(model, dir=str(tmp_path / "all"), all_ranks=True)
    run.log({"loss": torch.tensor(1.5)}, step=0)
    run.close()
    monkeypatch.setenv("RANK", "0")
    run = monitor(model, name="lin", dir=str(tmp_path / "r0"), config={"lr": 0.1})
    for step in range(3):
        run.log({"loss": torch.tensor(1.0 / (step + 1))}, step=step)
    run.close()
    r = only_run(read(tmp_path / "r0"))
    assert r.name == "lin" and r.model["params"] == 8 and values(r, "loss")[0] == [0, 1, 2]
    assert only_run(read(tmp_path / "all")).rank == 1


LAUNCHER_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "GLOBAL_RANK", "TORCHELASTIC_RUN_ID", "MASTER_ADDR",
                 "MASTER_PORT", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_JOB_ID", "SLURM_STEP_ID",
                 "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK", "PMI_RANK",
                 "PMI_SIZE", "TUI_MONITOR_RUN_ID", "TUI_MONITOR_RANKS")


def test_plain_torch_helper_under_slurm_without_world_size(tmp_path, monkeypatch):
    """srun sets SLURM_PROCID/SLURM_NTASKS, not RANK/WORLD_SIZE: the helper's
    run has the launcher's rank and world size, the job's run id and its own
    -rankN stream (it was world size 1, one file name for every rank)."""
    from tui_monitor.integrations.torch import NullRun, monitor
    for var in LAUNCHER_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("SLURM_PROCID", "1")
    monkeypatch.setenv("SLURM_NTASKS", "2")
    monkeypatch.setenv("SLURM_LOCALID", "1")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    model = torch.nn.Linear(3, 2)
    assert isinstance(monitor(model, dir=str(tmp_path / "zero")), NullRun)   # rank 1 does not write by default
    run = monitor(model, name="lin", dir=str(tmp_path / "all"), all_ranks=True)
    run.log({"loss": torch.tensor(0.5), "acc": 0.9}, step=0)
    run.close()
    assert (run.rank, run.world_size, run.local_rank, run.run_id) == (1, 2, 1, "slurm-4242")
    assert run.path.endswith("-rank1.jsonl")
    r = only_run(read(tmp_path / "all"))
    assert (r.rank, r.world_size) == (1, 2) and values(r, "loss") == ([0], [0.5])
    assert ("train", "acc") not in r.series          # a rank other than 0 writes the small stream


def test_launcher_rank_without_its_world_size(monkeypatch):
    from tui_monitor import hook
    from tui_monitor.integrations._common import global_rank
    for var in LAUNCHER_VARS:
        monkeypatch.delenv(var, raising=False)
    assert hook.distributed_info() == (0, None, 1, None) and global_rank() == 0
    monkeypatch.setenv("GLOBAL_RANK", "3")                      # Lightning's
    assert hook.distributed_info() == (3, None, 1, None) and global_rank() == 3
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert hook.distributed_info() == (3, None, 4, None)
    monkeypatch.setenv("RANK", "2")                             # torchrun's wins
    assert hook.distributed_info()[0] == global_rank() == 2
    for var in ("RANK", "GLOBAL_RANK", "WORLD_SIZE"):
        monkeypatch.delenv(var)
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "5")             # mpirun, no size variable
    assert hook.distributed_info() == (5, None, 1, None) and global_rank() == 5
