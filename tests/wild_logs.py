"""Logs as the libraries people train with write them, for the tests of
every format against every command (test_wild_logs.py) and of each reader.

Each writer is a small real training, run in a process of its own with the
real library writing its own files (transformers' ``Trainer``, Keras 3 and
Keras 2 with their ``CSVLogger`` and ``TensorBoard`` callbacks and printed
progress, Lightning's ``CSVLogger`` and ``TensorBoardLogger``,
``torch.utils.tensorboard``, MLflow's file store, W&B offline, the printed
loops of the PyTorch tutorials and nanoGPT). Keras 1 cannot run beside Keras
3, so its printing is written again here from Keras 1.2's
``ProgbarLogger``/``Progbar`` (``KERAS1``) around a real torch training.
Nothing is copied from elsewhere: every file is made as the test runs.

A writer keeps what it logged as its truth (``truth.json``: log -> series
``split/metric`` -> ``[[step, value], ...]``), and stops halfway
(``WILD_HALFWAY``: it prints ``HALFWAY`` and waits for a line on standard
input) so a test can look at its files while they are being written.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Tuple, Union

#: Imported by every writer: where to write, the truth, the halfway stop, printed output.
PRELUDE = r'''
import json, os, sys, time
OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
_TRUTH = {}

def truth(log, split, metric, step, value):
    """What was logged: ``value`` of ``split``/``metric`` at ``step`` in ``log``."""
    _TRUTH.setdefault(log, {}).setdefault(f"{split}/{metric}", []).append([int(step), float(value)])

def save_truth(name="truth.json"):
    """Beside OUT, not in it: the monitor reads OUT."""
    with open(os.path.abspath(OUT) + "." + name, "w") as f:
        json.dump(_TRUTH, f)

def halfway():
    """The test reads the files as they stand, while the run is open, then lets it go on."""
    save_truth("truth-halfway.json")
    if os.environ.get("WILD_HALFWAY"):
        print("HALFWAY", file=sys.__stdout__, flush=True)
        sys.stdin.readline()

def printed(name):
    """Standard output and error into OUT/name, as `python -u train.py > name 2>&1` keeps them."""
    f = open(os.path.join(OUT, name), "w", buffering=1)
    sys.stdout = sys.stderr = f
    return f
'''

# ---------------------------------------------------------------- Hugging Face

#: A tiny GPT-2 that memorises 8 random sequences: the training loss falls,
#: the evaluation loss (16 other random sequences) rises from the first
#: evaluation on. 150 steps, a log every 5, an evaluation every 10, a
#: checkpoint every 50; printed as ``python -u train.py > train.log 2>&1``.
HF_TRAINER = PRELUDE + r'''
os.environ.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", WANDB_DISABLED="true")
import warnings
warnings.simplefilter("ignore")
import torch, transformers
torch.set_num_threads(1)
torch.manual_seed(0)
printed("train.log")
config = transformers.GPT2Config(vocab_size=64, n_positions=16, n_embd=32, n_layer=2, n_head=2)
model = transformers.GPT2LMHeadModel(config)

class Tokens(torch.utils.data.Dataset):
    def __init__(self, n, seed):
        self.x = torch.randint(0, 64, (n, 12), generator=torch.Generator().manual_seed(seed))
    def __len__(self):
        return len(self.x)
    def __getitem__(self, i):
        return {"input_ids": self.x[i], "labels": self.x[i]}

def record(history):
    _TRUTH.clear()
    for h in history:
        if "loss" in h and "train_runtime" not in h:
            truth("history", "train", "loss", h["step"], h["loss"])
            truth("history", "train", "grad_norm", h["step"], h["grad_norm"])
        if "eval_loss" in h:  # and the evaluation's timings, which the Trainer logs with it
            for key, value in h.items():
                if key.startswith("eval_"):
                    truth("history", "val", key[len("eval_"):], h["step"], value)

class Halfway(transformers.TrainerCallback):
    def on_save(self, args, state, control, **kwargs):  # the checkpoint is on disk
        if state.global_step == 50:
            record(state.log_history)
            halfway()

args = transformers.TrainingArguments(
    output_dir=os.path.join(OUT, "output"), max_steps=150, per_device_train_batch_size=8,
    per_device_eval_batch_size=16, learning_rate=3e-3, logging_steps=5, eval_strategy="steps", eval_steps=10,
    save_strategy="steps", save_steps=50, report_to=[], use_cpu=True, seed=0, dataloader_num_workers=0,
    disable_tqdm=False)
trainer = transformers.Trainer(model=model, args=args, train_dataset=Tokens(8, 1), eval_dataset=Tokens(16, 2),
                               callbacks=[Halfway()])
trainer.train()
record(trainer.state.log_history)
save_truth()
'''

# ---------------------------------------------------------------- Keras 3 and Keras 2

#: ``model.fit`` then ``model.evaluate``, with Keras' ``CSVLogger`` under the
#: name its docs give it, its ``TensorBoard`` callback (when TensorFlow is
#: here), the history saved with pandas as people do, and the printed
#: progress. argv: OUT, verbose, the Keras module (``keras``: Keras 3 on the
#: torch backend; ``tf_keras``: Keras 2), whether to write TensorBoard logs.
KERAS = PRELUDE + r'''
import importlib
import numpy as np
verbose, module, tensorboard = int(sys.argv[2]), sys.argv[3], sys.argv[4] == "tb"
keras = importlib.import_module(module)
printed("fit.out")
keras.utils.set_random_seed(0)
x = np.random.rand(96, 4).astype("float32"); y = x.sum(1, keepdims=True)
project = os.path.join(OUT, "project")
os.makedirs(project, exist_ok=True)
m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(1)])
m.compile(optimizer="sgd", loss="mse", metrics=["mae"])

class SlowBatches(keras.callbacks.Callback):
    # Batches slower than the progress bar's refresh (50 ms): the epoch's
    # last batch is drawn before validation runs, then drawn again with val_*.
    def on_train_batch_end(self, batch, logs=None):
        time.sleep(0.06)

    def on_test_batch_end(self, batch, logs=None):  # evaluate()'s last batch is drawn twice too
        time.sleep(0.06)

class Halfway(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        for key, value in logs.items():
            split, metric = ("val", key[4:]) if key.startswith("val_") else ("train", key)
            truth("history", split, metric, epoch, value)
        if epoch == 2:  # Keras prints the epoch's line after this callback: two lines are printed
            halfway()

callbacks = [keras.callbacks.CSVLogger(os.path.join(project, "training.log")), SlowBatches()]
if tensorboard:
    callbacks.append(keras.callbacks.TensorBoard(os.path.join(project, "logs")))
callbacks.append(Halfway())
h = m.fit(x, y, epochs=4, batch_size=16, validation_split=0.25, verbose=verbose, callbacks=callbacks)
evaluated = m.evaluate(x[:32], y[:32], batch_size=16, verbose=verbose, return_dict=True, callbacks=[SlowBatches()])
for key, value in evaluated.items():
    truth("evaluate", "test", key, 3, value)
try:
    import pandas as pd
except ImportError:
    pass
else:
    pd.DataFrame(h.history).to_csv(os.path.join(project, "history.csv"))
    pd.DataFrame(h.history).to_csv(os.path.join(project, "history_no_index.csv"), index=False)
save_truth()
'''

#: Keras 1's ``model.fit`` output, written by its printing code (Keras 1.2's
#: ``keras/callbacks.py: ProgbarLogger`` and ``keras/utils/generic_utils.py:
#: Progbar``, written again here: Keras 1 cannot be installed beside Keras 3)
#: around a real torch training: ``Train on N samples, validate on M
#: samples``, ``Epoch 1/3``, then with verbose=1 a bar redrawn with ``\b``
#: and ``\r`` (``96/96 [==============================] - 0s - loss: 0.4213
#: - acc: 0.5625 - val_loss: ...``), with verbose=2 one line an epoch
#: (``0s - loss: 0.4213 - acc: ...``). The values are running means over the
#: epoch's samples; val_* come with the epoch's last update.
KERAS1 = PRELUDE + r'''
import math
import torch
torch.manual_seed(0); torch.set_num_threads(1)
verbose = int(sys.argv[2])
printed("fit.out")
x = torch.randn(128, 8); target = (x[:, 0] + x[:, 1] > 0).long()
model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
opt = torch.optim.SGD(model.parameters(), lr=0.1)
n_train, batch_size, epochs = 96, 32, 3

class Progbar:
    """Keras 1.2's Progbar: running means weighted by samples, drawn at most every 10 ms."""
    def __init__(self, target):
        self.target, self.width, self.sums, self.names = target, 30, {}, []
        self.seen, self.start, self.last, self.drawn = 0, time.time(), 0.0, 0

    def update(self, current, values, force=False):
        for name, v in values:
            if name not in self.sums:
                self.sums[name] = [0.0, 0]
                self.names.append(name)
            self.sums[name][0] += v * (current - self.seen)
            self.sums[name][1] += current - self.seen
        self.seen = current
        now = time.time()
        shown = [(n, self.sums[n][0] / max(1, self.sums[n][1])) for n in self.names]
        if verbose == 1 and (force or now - self.last >= 0.01):
            digits = int(math.floor(math.log10(self.target))) + 1
            bar = f"{current:{digits}d}/{self.target:{digits}d} ["
            done = int(self.width * current / self.target)
            if done > 0:
                bar += "=" * (done - 1) + (">" if current < self.target else "=")
            bar += "." * (self.width - done) + "]"
            info = f" - ETA: {0:d}s" if current < self.target else f" - {int(now - self.start):d}s"
            for name, avg in shown:
                info += f" - {name}: {avg:.4f}" if abs(avg) > 1e-3 else f" - {name}: {avg:.4e}"
            line = bar + info
            sys.stdout.write("\b" * self.drawn + "\r" + line + " " * max(0, self.drawn - len(line)))
            self.drawn = len(line)
            if current >= self.target:
                sys.stdout.write("\n")
            sys.stdout.flush()
            self.last = now
        if verbose == 2 and current >= self.target:
            sys.stdout.write(f"{int(now - self.start):d}s" + "".join(f" - {n}: {a:.4f}" for n, a in shown) + "\n")
        return shown

print(f"Train on {n_train} samples, validate on {len(x) - n_train} samples")
for epoch in range(epochs):
    print(f"Epoch {epoch + 1}/{epochs}")
    bar, seen = Progbar(n_train), 0
    for start in range(0, n_train, batch_size):
        xb, yb = x[start:start + batch_size], target[start:start + batch_size]
        out = model(xb)
        loss = torch.nn.functional.cross_entropy(out, yb)
        opt.zero_grad(); loss.backward(); opt.step()
        acc = (out.argmax(1) == yb).float().mean().item()
        seen += len(xb)
        values = [("loss", loss.item()), ("acc", acc)]
        if seen < n_train:  # the last batch is drawn with the epoch's end, val_* included
            bar.update(seen, values)
    with torch.no_grad():
        out = model(x[n_train:])
        values += [("val_loss", torch.nn.functional.cross_entropy(out, target[n_train:]).item()),
                   ("val_acc", (out.argmax(1) == target[n_train:]).float().mean().item())]
    for name, avg in bar.update(seen, values, force=True):
        split, metric = ("val", name[4:]) if name.startswith("val_") else ("train", name)
        truth("history", split, metric, epoch + 1, f"{avg:.4f}")
    if epoch == 0:
        halfway()
save_truth()
'''

# ---------------------------------------------------------------- Lightning

#: ``self.log("train_loss", loss, on_step=True, on_epoch=True)`` and a
#: validation loss per epoch, logged by Lightning's ``CSVLogger`` (flushed
#: every step) and ``TensorBoardLogger`` at once: 2 epochs of 3 steps.
LIGHTNING = PRELUDE + r'''
import warnings
warnings.simplefilter("ignore")
import torch
import lightning.pytorch as pl
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
torch.set_num_threads(1)

class Tiny(pl.LightningModule):
    def __init__(self, lr=0.05, hidden=8):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))

    def training_step(self, batch, i):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        truth("history", "train", "loss", self.global_step, loss.item())
        return loss

    def validation_step(self, batch, i):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("val_loss", loss, on_epoch=True)
        truth("history", "val", "loss", self.global_step - 1, loss.item())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

class Halfway(pl.Callback):
    def on_train_epoch_end(self, trainer, module):
        if trainer.current_epoch == 0:
            for logger in trainer.loggers:   # TensorBoard's writer flushes every 120 s by itself
                logger.save()
                getattr(logger.experiment, "flush", lambda: None)()
            halfway()

g = torch.Generator().manual_seed(0)
x = torch.randn(24, 4, generator=g)
ds = torch.utils.data.TensorDataset(x, x.sum(1, keepdim=True))
loggers = [CSVLogger(os.path.join(OUT, "mnist"), flush_logs_every_n_steps=1),
           TensorBoardLogger(os.path.join(OUT, "cifar"))]
trainer = pl.Trainer(max_epochs=2, logger=loggers, log_every_n_steps=1, accelerator="cpu", devices=1,
                     enable_progress_bar=False, enable_checkpointing=False, enable_model_summary=False,
                     num_sanity_val_steps=0, callbacks=[Halfway()])
trainer.fit(Tiny(), torch.utils.data.DataLoader(ds, batch_size=8), torch.utils.data.DataLoader(ds, batch_size=24))
save_truth()
'''

# ---------------------------------------------------------------- TensorBoard, MLflow, W&B

#: ``torch.utils.tensorboard.SummaryWriter``: a training loss per step, a
#: validation loss every 5 steps (one as a 0-d tensor, as newer writers store
#: scalars), a text summary and a histogram that are not metrics.
SUMMARY_WRITER = PRELUDE + r'''
import torch
from torch.utils.tensorboard import SummaryWriter
torch.manual_seed(0); torch.set_num_threads(1)
model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.05)
x = torch.randn(48, 4); y = x.sum(1, keepdim=True)
w = SummaryWriter(os.path.join(OUT, "tb", "exp1"))
w.add_text("notes", "a text summary is not a metric", 0)
for step in range(30):
    loss = torch.nn.functional.mse_loss(model(x[:32]), y[:32])
    opt.zero_grad(); loss.backward(); opt.step()
    w.add_scalar("train/loss", loss.item(), step)
    truth("history", "train", "loss", step, loss.item())
    if step % 5 == 4:
        with torch.no_grad():
            val = torch.nn.functional.mse_loss(model(x[32:]), y[32:]).item()
        w.add_scalar("loss/val", val, step, new_style=step % 10 == 4)
        truth("history", "val", "loss", step, val)
        w.add_histogram("weights", model.weight.detach(), step)
    if step == 14:
        w.flush()
        halfway()
w.close()
save_truth()
'''

#: ``mlflow.log_metric`` into a file store (``mlruns/``), ended normally.
MLFLOW = PRELUDE + r'''
os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"   # MLflow 3 keeps the file store behind this switch
import mlflow, torch
torch.manual_seed(0); torch.set_num_threads(1)
mlflow.set_tracking_uri("file://" + os.path.join(os.path.abspath(OUT), "mlruns"))
mlflow.set_experiment("tiny")
model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.05)
x = torch.randn(48, 4); y = x.sum(1, keepdim=True)
with mlflow.start_run(run_name="sgd"):
    mlflow.log_params({"lr": 0.05, "layers": 1})
    for step in range(30):
        loss = torch.nn.functional.mse_loss(model(x[:32]), y[:32])
        opt.zero_grad(); loss.backward(); opt.step()
        mlflow.log_metric("train/loss", loss.item(), step=step)
        truth("history", "train", "loss", step, loss.item())
        if step % 5 == 4:
            with torch.no_grad():
                val = torch.nn.functional.mse_loss(model(x[32:]), y[32:]).item()
            mlflow.log_metric("val_loss", val, step=step)
            truth("history", "val", "loss", step, val)
        if step == 14:
            halfway()
save_truth()
'''

#: ``wandb.init`` with ``WANDB_MODE=offline``; W&B writes its log in 32 KiB
#: blocks, so enough steps are logged before halfway for some to be on disk.
WANDB = PRELUDE + r'''
os.environ.update(WANDB_MODE="offline", WANDB_SILENT="true", WANDB_DISABLE_GIT="true")
import torch, wandb
torch.manual_seed(0); torch.set_num_threads(1)
model = torch.nn.Linear(4, 1)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
x = torch.randn(32, 4); y = x.sum(1, keepdim=True)
run = wandb.init(project="tiny", name="sgd-0.1", config={"lr": 0.1, "layers": 1}, dir=OUT)
for step in range(2400):
    loss = torch.nn.functional.mse_loss(model(x[:24]), y[:24])
    opt.zero_grad(); loss.backward(); opt.step()
    row = {"train/loss": loss.item()}
    truth("history", "train", "loss", step, loss.item())
    if step % 100 == 99:
        with torch.no_grad():
            row["val/loss"] = torch.nn.functional.mse_loss(model(x[24:]), y[24:]).item()
        truth("history", "val", "loss", step, row["val/loss"])
    run.log(row, step=step)
    if step == 1999:
        halfway()
run.finish()
save_truth()
'''

# ---------------------------------------------------------------- printed loops

#: Small real training loops printing as the tutorials and repositories they
#: come from do, each into its own log, with what they printed as the truth.
LOOP_SETUP = r'''
import torch
torch.manual_seed(0); torch.set_num_threads(1)
model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
opt = torch.optim.SGD(model.parameters(), lr=0.05)
data = torch.randn(96, 8); target = torch.randint(0, 4, (96,))
def train_step(i, bs=8):
    x, y = data[(i * bs) % 64:(i * bs) % 64 + bs], target[(i * bs) % 64:(i * bs) % 64 + bs]
    loss = torch.nn.functional.cross_entropy(model(x), y)
    opt.zero_grad(); loss.backward(); opt.step()
    return loss.item()
def val_loss():
    with torch.no_grad():
        return torch.nn.functional.cross_entropy(model(data[64:]), target[64:]).item()
'''

LOOPS = {
    # pytorch-tutorial (yunjey): the step counts within the epoch
    "epoch_step": r"""
total_step = 6
for epoch in range(2):
    for i in range(total_step):
        loss = train_step(i)
        if (i + 1) % 2 == 0:
            print(f"Epoch [{epoch + 1}/2], Step [{i + 1}/{total_step}], Loss: {loss:.4f}")
            truth(LOG, "train", "loss", epoch * total_step + i + 1, f"{loss:.4f}")
    if epoch == 0:
        halfway()
""",
    # PyTorch's CIFAR-10 tutorial: [epoch, mini-batch] with the running loss
    "cifar_tutorial": r"""
for epoch in range(2):
    running_loss = 0.0
    for i in range(9):
        running_loss += train_step(i)
        if i % 3 == 2:
            print(f"[{epoch + 1}, {i + 1:5d}] loss: {running_loss / 3:.3f}")
            truth(LOG, "train", "loss", epoch * 9 + i + 1, f"{running_loss / 3:.3f}")
            running_loss = 0.0
    if epoch == 0:
        halfway()
""",
    # PyTorch's MNIST example: samples seen in the epoch, then the test set's line
    "mnist_example": r"""
n, bs = 64, 8
for epoch in range(1, 3):
    for batch_idx in range(n // bs):
        loss = train_step(batch_idx, bs)
        if batch_idx % 2 == 0:
            print("Train Epoch: {} [{}/{} ({:.0f}%)]\tLoss: {:.6f}".format(
                epoch, batch_idx * bs, n, 100. * batch_idx / (n // bs), loss))
            truth(LOG, "train", "loss", (epoch - 1) * n + batch_idx * bs, f"{loss:.6f}")
            last = (epoch - 1) * n + batch_idx * bs
    with torch.no_grad():
        out = model(data[64:]); test_loss = torch.nn.functional.cross_entropy(out, target[64:]).item()
        correct = int((out.argmax(1) == target[64:]).sum())
    print("\nTest set: Average loss: {:.4f}, Accuracy: {}/{} ({:.0f}%)\n".format(
        test_loss, correct, 32, 100. * correct / 32))
    truth(LOG, "test", "loss", last, f"{test_loss:.4f}")
    truth(LOG, "test", "accuracy", last, repr(correct / 32))
    if epoch == 1:
        halfway()
""",
    # a common epoch summary line
    "epoch_summary": r"""
for epoch in range(3):
    losses = [train_step(i) for i in range(8)]
    tl, vl = sum(losses) / len(losses), val_loss()
    print(f"Epoch [{epoch + 1}/3], Train Loss: {tl:.4f}, Val Loss: {vl:.4f}")
    truth(LOG, "train", "loss", epoch + 1, f"{tl:.4f}"); truth(LOG, "val", "loss", epoch + 1, f"{vl:.4f}")
    if epoch == 1:
        halfway()
""",
    # build-nanogpt: the evaluation printed on its own before the step's line
    "nanogpt_stdout": r"""
t0 = time.time()
for step in range(12):
    if step % 4 == 0:
        vl = val_loss()
        print(f"validation loss: {vl:.4f}")
        truth(LOG, "val", "loss", max(step - 1, 0), f"{vl:.4f}")  # the last step seen before it (0: none yet)
    loss = train_step(step)
    norm = 1.0
    dt = time.time() - t0; t0 = time.time()
    print(f"step {step:4d} | loss: {loss:.6f} | lr {0.05:.4e} | norm: {norm:.4f} | dt: {dt*1000:.2f}ms | tok/sec: {8 / max(dt, 1e-9):.2f}")
    truth(LOG, "train", "loss", step, f"{loss:.6f}"); truth(LOG, "train", "dt", step, repr(float(f"{dt*1000:.2f}") / 1000))
    if step == 6:
        halfway()
""",
    # modded-nanogpt: cumulative train_time is not a metric; the step's average time is, in seconds
    "modded_nanogpt": r"""
t0 = time.time()
for step in range(7):
    if step % 3 == 0:
        vl = val_loss()
        ms = 1000 * (time.time() - t0)
        print(f"step:{step}/6 val_loss:{vl:.4f} train_time:{ms:.0f}ms step_avg:{ms / max(step, 1):.2f}ms")
        truth(LOG, "val", "loss", step, f"{vl:.4f}")
        truth(LOG, "train", "step_avg", step, float(f"{ms / max(step, 1):.2f}") / 1000)   # read in seconds
    train_step(step)
    if step == 3:
        halfway()
""",
    # nanoGPT's train.py: the iteration's line, and the evaluation's every 10
    "nanogpt": r"""
t0 = time.time()
for iter_num in range(31):
    if iter_num % 10 == 0:
        tl, vl = val_loss(), val_loss()
        print(f"step {iter_num}: train loss {tl:.4f}, val loss {vl:.4f}")
        truth(LOG, "train", "loss", iter_num, f"{tl:.4f}"); truth(LOG, "val", "loss", iter_num, f"{vl:.4f}")
    loss = train_step(iter_num)
    t1 = time.time(); dt = t1 - t0; t0 = t1
    if iter_num % 5 == 0:
        print(f"iter {iter_num}: loss {loss:.4f}, time {dt*1000:.2f}ms, mfu {-100.0:.2f}%")
        if iter_num % 10:
            truth(LOG, "train", "loss", iter_num, f"{loss:.4f}")
    if iter_num == 15:
        halfway()
""",
}

#: One printed loop: argv OUT, the loop's name; it prints into OUT/<name>.log.
LOOP = PRELUDE + LOOP_SETUP + r'''
LOG = sys.argv[2]
printed(LOG + ".log")
exec(json.loads(sys.argv[3]), dict(globals()))
save_truth()
'''

#: build-nanogpt's ``log.txt``: ``<step> train <loss>`` each step and ``<step>
#: val <loss>`` every 4, appended by opening the file each time, as it does.
BUILD_NANOGPT = PRELUDE + LOOP_SETUP + r'''
log_dir = os.path.join(OUT, "log")
os.makedirs(log_dir, exist_ok=True)
log_file = os.path.join(log_dir, "log.txt")
with open(log_file, "w") as f:
    pass
for step in range(9):
    if step % 4 == 0 or step == 8:
        vl = val_loss()
        with open(log_file, "a") as f:
            f.write(f"{step} val {vl:.4f}\n")
        truth("history", "val", "loss", step, f"{vl:.4f}")
    loss = train_step(step)
    with open(log_file, "a") as f:
        f.write(f"{step} train {loss:.6f}\n")
    truth("history", "train", "loss", step, f"{loss:.6f}")
    if step == 4:
        halfway()
save_truth()
'''


# ---------------------------------------------------------------- what each format is and should read as

class Expect(NamedTuple):
    """One run the monitor should find in a format's files."""
    name: str                                  #: the run's name, as the monitor shows it
    logs: Tuple[str, ...] = ("history",)       #: its series in the writer's truth
    #: how close a value read must be: 0 exact; an absolute tolerance for printed
    #: values (4 decimals: 5e-5); "f32" for TensorBoard, which keeps float32
    tolerance: Union[float, str] = 0.0
    relative: bool = False                     #: tolerance relative (transformers 5 prints 4 significant digits)
    offset: int = 0                            #: its steps after the truth's (Keras prints epochs from 1)
    #: how the log says the run ended (None: it never says; read fresh, it may still be going)
    status: Optional[str] = None
    at_halfway: bool = True                    #: whether the run has anything on disk halfway
    not_read: Tuple[str, ...] = ()             #: series (``split/metric``) the log prints that are no metric


class Wild(NamedTuple):
    """A format: its writer, what the commands are pointed at, what they should find."""
    name: str                      #: also the writer's folder, which names some of its runs
    script: str
    args: Tuple[str, ...]
    needs: Tuple[str, ...]         #: modules the writer needs (the test is skipped, saying so, without them)
    path: str                      #: what watch and diagnose are given, relative to the writer's folder
    cat: Tuple[str, ...]           #: files `cat` is given (globs, relative)
    runs: Tuple[Expect, ...]


#: Keras prints 4 decimals.
PRINTED4 = 5e-5
_KERAS_FILES = (Expect("project/training.log"), Expect("project/history.csv", at_halfway=False),
                Expect("history_no_index", at_halfway=False), Expect("project/logs", tolerance="f32"),
                Expect("fit.out", ("history", "evaluate"), tolerance=PRINTED4, offset=1))
WILD: Dict[str, Wild] = {w.name: w for w in (
    Wild("hf", HF_TRAINER, (), ("transformers",), ".", ("output/checkpoint-*/trainer_state.json", "train.log"),
         (Expect("hf/output", status="finished"), Expect("hf/train.log", tolerance=1e-3, relative=True))),
    Wild("keras3", KERAS, ("2", "keras", "tb"), ("keras", "torch", "tensorflow", "pandas"), ".",
         ("project/training.log", "project/history.csv", "project/history_no_index.csv", "fit.out",
          "project/logs/train/events.out.tfevents.*", "project/logs/validation/events.out.tfevents.*"),
         _KERAS_FILES),
    Wild("keras3-bar", KERAS, ("1", "keras", "-"), ("keras", "torch"), "fit.out", ("fit.out",),
         (Expect("fit.out", ("history", "evaluate"), tolerance=PRINTED4, offset=1),)),
    Wild("keras2", KERAS, ("2", "tf_keras", "tb"), ("tf_keras", "tensorflow", "pandas"), ".",
         ("project/training.log", "fit.out", "project/logs/validation/events.out.tfevents.*"), _KERAS_FILES),
    Wild("keras2-bar", KERAS, ("1", "tf_keras", "-"), ("tf_keras", "tensorflow"), "fit.out", ("fit.out",),
         (Expect("fit.out", ("history", "evaluate"), tolerance=PRINTED4, offset=1),)),
    Wild("keras1-bar", KERAS1, ("1",), ("torch",), "fit.out", ("fit.out",), (Expect("fit.out"),)),
    Wild("keras1", KERAS1, ("2",), ("torch",), "fit.out", ("fit.out",), (Expect("fit.out"),)),
    Wild("lightning", LIGHTNING, (), ("lightning", "tensorboard"), ".",
         ("mnist/lightning_logs/version_0/metrics.csv", "cifar/lightning_logs/version_0/events.out.tfevents.*"),
         (Expect("mnist/lightning_logs/version_0"), Expect("cifar/lightning_logs/version_0", tolerance="f32"))),
    Wild("tensorboard", SUMMARY_WRITER, (), ("torch", "tensorboard"), "tb", ("tb/exp1/events.out.tfevents.*",),
         (Expect("exp1", tolerance="f32"),)),
    Wild("mlflow", MLFLOW, (), ("mlflow", "torch"), "mlruns",
         ("mlruns/*/*/metrics/train/loss", "mlruns/*/*/metrics/val_loss"), (Expect("tiny/sgd", status="finished"),)),
    Wild("wandb", WANDB, (), ("wandb", "torch"), "wandb", ("wandb/offline-run-*/run-*.wandb",),
         (Expect("tiny/sgd-0.1", status="finished"),)),
    Wild("build-nanogpt", BUILD_NANOGPT, (), ("torch",), ".", ("log/log.txt",), (Expect("build-nanogpt/log/log.txt"),)),
    # each log found in its folder by its content, from its first lines on
    *(Wild(f"printed-{name}", LOOP, (name, json.dumps(code)), ("torch",), ".", (f"{name}.log",),
           (Expect(f"{name}.log", (name,), not_read=("train/time",) if name == "modded_nanogpt" else ()),))
      for name, code in LOOPS.items()),
)}


def missing(wild: Wild) -> List[str]:
    return [m for m in wild.needs if importlib.util.find_spec(m) is None]


def truth_of(folder: Path, halfway: bool = False) -> Dict[str, Dict[str, List[List[float]]]]:
    path = folder.with_name(folder.name + (".truth-halfway.json" if halfway else ".truth.json"))
    return json.loads(path.read_text()) if path.exists() else {}


def errors_of(folder: Path) -> Path:
    """Where the writer into ``folder`` keeps its standard error (beside it)."""
    return folder.with_name(folder.name + ".stderr")


def writer(wild: Wild, folder: Path, halfway: bool) -> subprocess.Popen:
    """The writer of ``wild`` started into ``folder`` (stopping halfway
    when ``halfway``: read its first line, then write one to let it go on).
    Its standard error goes to a file (:func:`errors_of`): a pipe nobody
    reads while it runs would fill and stop it."""
    env = dict(os.environ, KERAS_BACKEND="torch", OMP_NUM_THREADS="1", TF_CPP_MIN_LOG_LEVEL="3",
               PYTHONUNBUFFERED="1", WILD_HALFWAY="1" if halfway else "")
    with open(errors_of(folder), "w") as err:
        return subprocess.Popen([sys.executable, "-c", wild.script, str(folder), *wild.args], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=err, text=True, env=env)


def write(wild: Wild, folder: Path, timeout: float = 300) -> Path:
    """Run ``wild``'s writer to its end into ``folder``; fails with its error output."""
    proc = writer(wild, folder, halfway=False)
    proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"{wild.name}: {errors_of(folder).read_text()[-3000:]}"
    return folder


def series(truth: dict, expect: Expect) -> Dict[Tuple[str, str], Tuple[List[int], List[float]]]:
    """``(split, metric) -> (steps, values)`` of the run ``expect`` in a writer's truth."""
    out = {}
    for log in expect.logs:
        for key, points in truth.get(log, {}).items():
            split, metric = key.split("/", 1)
            out[(split, metric)] = ([int(s) + expect.offset for s, _ in points], [v for _, v in points])
    return out


def close(expect: Expect, got: List[float], want: List[float]) -> bool:
    """Whether the values read are the values logged, as closely as ``expect``'s format keeps them."""
    import math

    import numpy as np
    if len(got) != len(want):
        return False
    for g, w in zip(got, want):
        if expect.tolerance == "f32":
            w = float(np.float32(w))
            ok = g == w or (math.isnan(g) and math.isnan(w))
        elif expect.relative:
            ok = math.isclose(g, w, rel_tol=float(expect.tolerance))
        else:  # 5.37 ms read as 0.00537 s may differ from float("5.37") / 1000 in the last bit
            ok = abs(g - w) <= float(expect.tolerance) or math.isclose(g, w, rel_tol=1e-12)
        if not ok:
            return False
    return True


Snapshot = Dict[str, Tuple[str, Optional[int], Dict[Tuple[str, str], Tuple[List[int], List[float]]]]]


def snapshot(store) -> Snapshot:
    """Every run of ``store``: name -> (status, last step, its series)."""
    out: Snapshot = {}
    for run in list(store.runs.values()):
        got = {}
        for key, s in list(run.series.items()):
            snap = s.snapshot()
            got[key] = ([int(x) for x in snap.steps], [float(x) for x in snap.values])
        out[run.name] = (run.status, run.last_step, got)
    return out
