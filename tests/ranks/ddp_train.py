"""A tiny DDP training loop with the hook, for the multi-rank tests and the
bench: run it with ``torchrun``. Gloo on CPU, one thread per rank.

Options (argv): ``--steps N`` (0: until killed), ``--slow-rank R --slow S``
(rank R sleeps S seconds in its data loading each step), ``--block-rank R
--block-at K`` (rank R stops before the all-reduce of step K and waits
forever: a collective hang), ``--die-rank R --die-at K`` (rank R kills
itself with SIGKILL at step K), ``--hook all|zero|none`` (every rank
streams, rank 0 only, or no hook), ``--dir D``/``--to ADDR`` (where streams
go), ``--name``, ``--ready FILE`` (touched by rank 0 once training runs),
``--step-sleep S`` (every rank sleeps S per step: a realistic pace),
``--report FILE`` (rank 0 writes its mean step time, for the bench).
"""
import argparse
import os
import signal
import sys
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=50)
p.add_argument("--slow-rank", type=int, default=-1)
p.add_argument("--slow", type=float, default=0.0)
p.add_argument("--block-rank", type=int, default=-1)
p.add_argument("--block-at", type=int, default=-1)
p.add_argument("--die-rank", type=int, default=-1)
p.add_argument("--die-at", type=int, default=-1)
p.add_argument("--hook", default="all", choices=["all", "zero", "none"])
p.add_argument("--dir", default=None)
p.add_argument("--to", default=None)
p.add_argument("--name", default="ddp")
p.add_argument("--ready", default=None)
p.add_argument("--step-sleep", type=float, default=0.0)
p.add_argument("--report", default=None)
p.add_argument("--warmup", type=int, default=0)
args = p.parse_args()

if sys.platform.startswith("linux"):  # die with the torchrun agent, even if it is SIGKILLed
    import ctypes

    ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:
        os._exit(1)

torch.set_num_threads(1)
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
torch.manual_seed(0)
model = DDP(torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1)))
opt = torch.optim.SGD(model.parameters(), lr=0.05)
gen = torch.Generator().manual_seed(1000 + rank)  # each rank its own shard
w_true = torch.randn(16, 1, generator=torch.Generator().manual_seed(7))

run = None
if args.hook != "none":
    import tui_monitor as tm

    run = tm.init(args.name, dir=args.dir if args.dir is not None else ("" if args.to else None), to=args.to, config={"lr": 0.05, "world": world},
                  ranks="all" if args.hook == "all" else "zero", flush_every=0.1, heartbeat_every=0.5,
                  system_every=0.5)

step = 0
times = []
while args.steps <= 0 or step < args.steps:
    t0 = time.perf_counter()
    if rank == args.slow_rank:
        time.sleep(args.slow)
    if args.step_sleep:
        time.sleep(args.step_sleep)
    x = torch.randn(32, 16, generator=gen)
    y = x @ w_true + 0.1 * torch.randn(32, 1, generator=gen)
    data_time = time.perf_counter() - t0
    if rank == args.die_rank and step == args.die_at:
        os.kill(os.getpid(), signal.SIGKILL)
    if rank == args.block_rank and step == args.block_at:
        while True:  # never reaches the all-reduce: the others wait in it
            time.sleep(1.0)
    loss = torch.nn.functional.mse_loss(model(x), y)
    opt.zero_grad()
    loss.backward()  # DDP's all-reduce
    gnorm = torch.sqrt(sum((q.grad ** 2).sum() for q in model.parameters()))
    opt.step()
    if run is not None:
        run.log({"loss": loss.item(), "grad_norm": gnorm.item(), "data_time": data_time, "lr": 0.05}, step=step)
    if step == 0 and rank == 0 and args.ready:
        open(args.ready, "w").close()
    times.append(time.perf_counter() - t0)
    step += 1

if run is not None:
    run.close()
if args.report and rank == 0:
    import json

    t = times[args.warmup:]
    with open(args.report, "w") as f:
        json.dump({"mean": sum(t) / len(t), "n": len(t), "times": t}, f)
dist.barrier()
dist.destroy_process_group()
# gloo's threads at interpreter shutdown abort now and then ("terminate called
# without an active exception"): everything is written, so leave at once
sys.stdout.flush()
os._exit(0)
