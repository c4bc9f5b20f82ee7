"""The training loops of the scenarios: what a setup is, and how it is
trained and logged through the hook.

Two ways of logging, as real jobs do: a training loss every optimizer step
with held-out losses every ``eval_every`` steps (most PyTorch loops), or one
record per epoch, the mean of its batches, with the held-out values of that
epoch (Keras's CSVLogger, Lightning's per-epoch logging). A setup with its
own ``trainer`` (a GAN, a policy gradient) logs what it likes.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional, Tuple

from .data import accuracy, shuffled_batches

__all__ = ["Setup", "train"]

Batch = Tuple[Any, Any]


@dataclass
class Setup:
    """One scenario, ready to train."""

    model: Any
    opt: Any
    loss_fn: Any
    data: Batch
    evals: Dict[str, Batch]
    config: Dict[str, Any]
    #: optimizer steps, or epochs when ``per_epoch``
    steps: int = 400
    #: minibatch size (the whole data set when at least its size)
    batch: int = 32
    #: evaluations every this many steps (epochs)
    eval_every: int = 20
    lr_at: Optional[Callable[[int], float]] = None
    corrupt: Optional[Callable[[int, Batch], Batch]] = None
    tags: Dict[str, Any] = field(default_factory=dict)
    #: one record per epoch (the mean over its batches) instead of one per step
    per_epoch: bool = False
    #: log accuracy (training batches and evaluations) next to the loss
    accuracy: bool = False
    #: log the held-out loss (False: the evaluations log their accuracy alone, as a Keras or Hugging Face
    #: log that reports only its metric)
    held_loss: bool = True
    #: gradients every this many backward passes (0: none, as a CSV log has none)
    watch_every: int = 10
    #: describe the model (its flexibility) in the header
    describe: bool = True
    #: a loop of its own: ``trainer(run, torch, setup, delay)``
    trainer: Optional[Callable[..., None]] = None


def _lr(opt) -> float:
    return float(opt.param_groups[0]["lr"])


def _set_lr(opt, lr_at, step: int) -> None:
    if lr_at is not None:
        for group in opt.param_groups:
            group["lr"] = lr_at(step)


def _evaluate(run, torch, s: Setup, step: int) -> None:
    with torch.no_grad():
        for split, (xe, ye) in s.evals.items():
            out = s.model(xe)
            values = {"loss": float(s.loss_fn(out, ye))} if s.held_loss else {}
            if s.accuracy:
                values["accuracy"] = accuracy(torch, out, ye)
            run.log(values, step=step, split=split)


def _step(torch, s: Setup, xb, yb) -> Tuple[float, Optional[float]]:
    s.opt.zero_grad(set_to_none=True)
    out = s.model(xb)
    loss = s.loss_fn(out, yb)
    loss.backward()
    s.opt.step()
    return float(loss.detach()), (accuracy(torch, out.detach(), yb) if s.accuracy else None)


class _NonFinite:
    """Stops the run (as a job that checks its loss would) a few steps after
    the first non-finite loss."""

    def __init__(self, patience: int = 5):
        self.patience, self.bad = patience, 0

    def check(self, value: float, step: int) -> None:
        if not math.isfinite(value):
            self.bad += 1
            if self.bad >= self.patience:
                raise FloatingPointError(f"loss is {value} at step {step}")


def train_steps(run, torch, s: Setup, seed: int, delay: float = 0.0) -> None:
    """Minibatch training with a training loss per step and held-out values
    every ``eval_every`` steps."""
    x, y = s.data
    n = len(x)
    g = torch.Generator().manual_seed(seed + 7)
    stop = _NonFinite()
    for step in range(s.steps):
        _set_lr(s.opt, s.lr_at, step)
        idx = torch.randint(0, n, (min(s.batch, n),), generator=g) if s.batch < n else torch.arange(n)
        xb, yb = x[idx], y[idx]
        if s.corrupt is not None:
            xb, yb = s.corrupt(step, (xb, yb))
        value, acc = _step(torch, s, xb, yb)
        values = {"loss": value, "lr": _lr(s.opt)}
        if acc is not None:
            values["accuracy"] = acc
        run.log(values, step=step)
        if step % s.eval_every == 0 or step == s.steps - 1:
            _evaluate(run, torch, s, step)
        stop.check(value, step)
        if delay:
            time.sleep(delay)


def train_epochs(run, torch, s: Setup, seed: int, delay: float = 0.0) -> None:
    """Epochs over shuffled minibatches; one record per epoch (the mean
    training loss and accuracy over its batches, the learning rate), and the
    held-out values every ``eval_every`` epochs."""
    x, y = s.data
    g = torch.Generator().manual_seed(seed + 7)
    stop = _NonFinite(patience=1)
    for epoch in range(s.steps):
        _set_lr(s.opt, s.lr_at, epoch)
        losses, accs = [], []
        for idx in shuffled_batches(torch, len(x), s.batch, g):
            value, acc = _step(torch, s, x[idx], y[idx])
            losses.append(value)
            if acc is not None:
                accs.append(acc)
        values = {"loss": sum(losses) / len(losses), "lr": _lr(s.opt)}
        if accs:
            values["accuracy"] = sum(accs) / len(accs)
        run.log(values, step=epoch)
        if epoch % s.eval_every == 0 or epoch == s.steps - 1:
            _evaluate(run, torch, s, epoch)
        stop.check(values["loss"], epoch)
        if delay:
            time.sleep(delay)


def train(run, torch, s: Setup, seed: int, delay: float = 0.0) -> None:
    if s.trainer is not None:
        s.trainer(run, torch, s, delay)
    elif s.per_epoch:
        train_epochs(run, torch, s, seed, delay)
    else:
        train_steps(run, torch, s, seed, delay)
