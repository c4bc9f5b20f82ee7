"""Helpers for the follow-mode and notification tests: a real training that
goes NaN (or not), ``tui-monitor`` as a child process whose output lines are
collected as they come, and what a ``--notify`` command wrote."""
from __future__ import annotations

import json
import threading
from pathlib import Path

from conftest import child, wait_for

#: A small real training (CPU, one thread): an MLP fitting a linear target.
#: ``healthy``: 200 steps at a sane learning rate, then a clean end. ``nan``:
#: 60 good steps, then the learning rate jumps and the loss goes to inf and
#: NaN; it keeps training and logging until the file ``GO`` exists (the test
#: creates it once it has seen the finding), then raises, as a real NaN check
#: would: the run ends crashed. It gives up (exit 3) after two minutes.
TRAIN = r"""
import os, sys, time
import torch
torch.set_num_threads(1)
import tui_monitor
out, name, mode, go = sys.argv[1:5]
torch.manual_seed(0)
x = torch.randn(256, 8)
y = x @ torch.randn(8, 1) + 0.1 * torch.randn(256, 1)
model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
opt = torch.optim.SGD(model.parameters(), lr=0.05)
run = tui_monitor.init(name, dir=out, config={"data": "toy-regression"}, model=model)
deadline = time.monotonic() + 120
step = 0
while time.monotonic() < deadline:
    if mode == "nan" and step == 60:
        for g in opt.param_groups:
            g["lr"] = 2.0
    loss = torch.nn.functional.mse_loss(model(x), y)
    opt.zero_grad()
    loss.backward()
    opt.step()
    run.log({"loss": loss}, step=step)
    step += 1
    if mode == "healthy" and step >= 200:
        break
    if mode == "nan" and os.path.exists(go):
        raise FloatingPointError(f"loss is {loss.item()} at step {step}")
    time.sleep(0.005)
else:
    sys.exit(3)
run.close()
"""

#: ``tui-monitor`` with the arguments given, as ``python -m tui_monitor`` would run it.
CLI = "import sys\nfrom tui_monitor.cli import main\nsys.exit(main(sys.argv[1:]))"

#: What a shell-metacharacter name would do if anything ran it: each creates a file.
HOSTILE_NAME = "nan $(touch pwned1) `touch pwned2`; touch pwned3 'q\" && touch pwned4 | x"


class Lines:
    """A child's standard output and error, line by line, as they come."""

    def __init__(self, proc):
        self.proc = proc
        self.out: list = []
        self.err: list = []
        for stream, into in ((proc.stdout, self.out), (proc.stderr, self.err)):
            threading.Thread(target=self._read, args=(stream, into), daemon=True).start()

    @staticmethod
    def _read(stream, into):
        for line in stream:
            into.append(line.rstrip("\n"))

    def json(self) -> list:
        return [json.loads(line) for line in list(self.out)]

    def wait_out(self, predicate, timeout=90.0, what="a line"):
        """The first line of standard output for which ``predicate`` holds."""
        def found():
            return next((line for line in list(self.out) if predicate(line)), None)
        try:
            return wait_for(found, timeout=timeout, interval=0.05, message=what)
        except BaseException:
            print("stdout:", *self.out, "stderr:", *self.err, sep="\n")
            raise

    def wait_err(self, text, timeout=60.0):
        try:
            return wait_for(lambda: any(text in line for line in list(self.err)), timeout=timeout, interval=0.05,
                            message=f"{text!r} on standard error")
        except BaseException:
            print("stderr:", *self.err, sep="\n")
            raise

    def exit_status(self, timeout=60.0) -> int:
        wait_for(lambda: self.proc.poll() is not None, timeout=timeout, interval=0.05, message="the process to exit")
        return self.proc.returncode


def monitor(*args, cwd=None, env=None) -> Lines:
    """``tui-monitor ARGS...`` as a child process."""
    return Lines(child(CLI, *map(str, args), cwd=cwd, env=env))


def training(out, name, mode, go, cwd=None) -> Lines:
    """:data:`TRAIN` as a child process writing into the folder ``out``."""
    return Lines(child(TRAIN, str(out), name, mode, str(go), cwd=cwd))


def notifications(path) -> list:
    """The notifications a ``cat >> FILE`` command received, one JSON object a line."""
    p = Path(path)
    if not p.exists():
        return []
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
