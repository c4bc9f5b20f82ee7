"""Real multi-process jobs: ``torchrun`` (gloo, CPU) running a tiny DDP loop
with the hook (tests/ranks/ddp_train.py), watched by the monitor as it would
watch a folder or a socket: one job with N ranks, correct values, and the
multi-rank findings (straggler, hung job, crashed rank) on real processes.

Each test starts its processes in a new session and kills the whole group in
``finally``; every wait is a condition with a timeout."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, free_port, wait_for
from tui_monitor.diagnose import Diagnoser, Settings
from tui_monitor.schema import split_metric
from tui_monitor.sources.ingest import Ingest
from tui_monitor.store import Store

torch = pytest.importorskip("torch", reason="torchrun jobs need torch (the demo extra)")
pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed not available")

SCRIPT = ROOT / "tests" / "ranks" / "ddp_train.py"


def torchrun(tmp_path: Path, nproc: int, *args: str, nnodes: int = 1, node_rank: int = 0, rdzv: str = None,
             rdzv_id: str = "tm-test", tag: str = "") -> subprocess.Popen:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    for k in ("TUI_MONITOR_RANKS", "TUI_MONITOR_DIR", "TUI_MONITOR_TO", "TUI_MONITOR_RUN_ID", "TUI_MONITOR_DISABLED"):
        env.pop(k, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--max_restarts", "0",
           "--monitor_interval", "0.1"]
    if rdzv:
        cmd += ["--nnodes", str(nnodes), "--node_rank", str(node_rank), "--rdzv_backend", "c10d",
                "--rdzv_endpoint", rdzv, "--rdzv_id", rdzv_id]
    else:
        cmd += ["--standalone"]
    cmd += [str(SCRIPT), *args]
    log = open(tmp_path / f"torchrun{tag}.log", "w")
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop(*procs: subprocess.Popen, marker: str = None) -> None:
    """Kill the torchrun agents' groups and then any rank still running whose
    command line holds ``marker`` (the test's folder): ranks live in groups of
    their own and a hung one outlives its agent otherwise."""
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            pass
    if marker:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = f.read().decode(errors="replace")
            except OSError:
                continue
            if "ddp_train.py" in cmd and marker in cmd:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass


def log_tail(tmp_path: Path) -> str:
    return "\n".join(p.read_text()[-3000:] for p in sorted(tmp_path.glob("torchrun*.log")))


class Monitor:
    """A store fed from a folder (and optionally a listener), with the engine."""

    def __init__(self, folder: Path = None, listen: str = None, **settings):
        self.store = Store(splitter=split_metric)
        self.ingest = Ingest(self.store)
        if folder is not None:
            self.ingest.add_path(str(folder), poll=True, interval=0.05)
        if listen:
            self.listener = self.ingest.listen(listen)
        self.engine = Diagnoser(self.store, settings=Settings(**settings))

    def start(self):
        self.ingest.start()
        return self

    def poll(self):
        self.ingest.check_liveness()
        self.engine.update()
        return self

    def read(self):
        self.ingest.read_all()
        self.engine.update()
        return self

    def job(self):
        jobs = self.engine.jobs()
        return next(iter(jobs.values())) if len(jobs) == 1 else None

    def findings(self, symptom):
        return [f for f in self.engine.findings if f.kind == "distributed" and f.symptom == symptom]

    def stop(self):
        self.ingest.stop()


def expected_first_losses(world: int):
    """The loss each rank computes at step 0 (the script's seeds and model)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 1))
    w_true = torch.randn(16, 1, generator=torch.Generator().manual_seed(7))
    out = []
    with torch.no_grad():
        for r in range(world):
            gen = torch.Generator().manual_seed(1000 + r)
            x = torch.randn(32, 16, generator=gen)
            y = x @ w_true + 0.1 * torch.randn(32, 1, generator=gen)
            out.append(float(torch.nn.functional.mse_loss(model(x), y)))
    return out


def test_four_ranks_are_one_job_with_correct_values(tmp_path):
    runs = tmp_path / "runs"
    proc = torchrun(tmp_path, 4, "--steps", "40", "--dir", str(runs))
    try:
        assert proc.wait(90) == 0, log_tail(tmp_path)
    finally:
        stop(proc, marker=str(tmp_path))
    assert len(list(runs.glob("*-rank[0-3].jsonl"))) == 4
    mon = Monitor(runs).read()
    jobs = mon.engine.jobs()
    assert len(jobs) == 1
    (run_id, ranks), = jobs.items()
    assert run_id.startswith("torchrun-")
    assert [r.rank for r in ranks] == [0, 1, 2, 3]
    assert all(r.world_size == 4 and r.status == "finished" and r.last_step == 39 for r in ranks)
    assert [r.header.get("local_rank") for r in ranks] == [0, 1, 2, 3]
    assert [bool(r.header.get("small")) for r in ranks] == [False, True, True, True]
    # rank 0 writes everything; the others the small stream (losses, grad norms, times)
    assert ("train", "lr") in ranks[0].series and all(("train", "lr") not in r.series for r in ranks[1:])
    for r in ranks:
        assert len(r.get("loss")) == 40 and len(r.get("data_time")) == 40
    # each rank's own loss at step 0 (its own data shard), to the bit the script computed
    first = [float(r.get("loss").values[0]) for r in ranks]
    assert first == pytest.approx(expected_first_losses(4), rel=1e-6)
    assert len(set(first)) == 4
    # DDP averages the gradients: every rank has the same gradient norm at every step
    import numpy as np

    g = np.array([r.get("grad_norm").values for r in ranks])
    assert np.allclose(g, g[0], rtol=1e-5)
    # a healthy job: no multi-rank finding
    assert [f for f in mon.engine.findings if f.kind == "distributed"] == []


def test_slow_rank_is_named_a_straggler(tmp_path):
    runs = tmp_path / "runs"
    proc = torchrun(tmp_path, 3, "--steps", "60", "--slow-rank", "1", "--slow", "0.03", "--dir", str(runs))
    try:
        assert proc.wait(90) == 0, log_tail(tmp_path)
    finally:
        stop(proc, marker=str(tmp_path))
    mon = Monitor(runs).read()
    f = mon.findings("straggler")
    assert len(f) == 1, [x.explanation for x in mon.engine.findings]
    f = f[0]
    assert f.runs[0][1] == 1 and f.evidence["rank"] == 1 and f.evidence["host"] == socket.gethostname()
    assert f.evidence["measure"] == "data_time" and f.evidence["extra_per_step"] >= 0.025
    assert "rank 1" in f.explanation


def test_rank_blocked_before_all_reduce_is_a_hung_job(tmp_path):
    runs = tmp_path / "runs"
    hang_min = 2.0
    proc = torchrun(tmp_path, 3, "--steps", "0", "--block-rank", "2", "--block-at", "30", "--dir", str(runs))
    mon = Monitor(runs, hang_min=hang_min, hang_factor=20).start()
    try:
        def stopped():
            mon.poll()
            job = mon.job()
            return job if job and len(job) == 3 and all(r.last_step == 29 for r in job) else None

        job = wait_for(stopped, timeout=60, interval=0.05, message="3 ranks at step 29")
        last_log = max(r.last_log for r in job)

        def hung():
            mon.poll()
            return mon.findings("job_hung")

        f = wait_for(hung, timeout=30, interval=0.1, message="a job_hung finding")[0]
        seen = time.time()
        limit = f.evidence["limit_s"]
        assert limit == pytest.approx(hang_min) or limit > hang_min
        # found within the threshold (plus the hook's flush and the poll)
        assert seen - last_log <= limit + 3.0, (seen - last_log, limit)
        assert f.step == 29 and f.severity == "critical"
        assert sorted(r for _, r in f.runs) == [0, 1, 2]
        assert "hung at step 29" in f.explanation
        # processes alive: heartbeats keep coming with the same step
        assert f.evidence["silent_ranks"] == []
        assert proc.poll() is None
    finally:
        stop(proc, marker=str(tmp_path))
        mon.stop()


def test_killed_rank_is_a_crashed_rank(tmp_path):
    runs = tmp_path / "runs"
    proc = torchrun(tmp_path, 3, "--steps", "0", "--die-rank", "1", "--die-at", "25", "--dir", str(runs))
    mon = Monitor(runs).start()
    try:
        def crashed():
            mon.poll()
            return mon.findings("rank_crashed")

        f = wait_for(crashed, timeout=60, interval=0.05, message="a rank_crashed finding")[0]
        assert f.runs[0][1] == 1 and f.evidence["inferred"] is True and f.severity == "critical", (
            f.explanation, f.evidence, [(r.rank, r.status, r.last_seen, r.end) for r in mon.job()])
        # what reached its stream before the kill (at worst only the header: steps go out once a second)
        assert f.evidence["step"] is None or f.evidence["step"] <= 24
        assert "step None" not in f.explanation
        assert "rank 1" in f.explanation
        proc.wait(30)  # torchrun takes the others down
        # once the others end (crashed on the lost peer, or stopped by torchrun), rank 1 stays first
        wait_for(lambda: mon.poll().job() and all(r.status != "running" for r in mon.job()), timeout=30,
                 message="every rank ended")
        f = mon.findings("rank_crashed")[0]
        assert f.runs[0][1] == 1
    finally:
        stop(proc, marker=str(tmp_path))
        mon.stop()


def test_two_nodes_one_folder_and_one_listener_are_one_job(tmp_path):
    """Two torchrun groups (--nnodes 2, node ranks 0 and 1, one c10d
    rendezvous on 127.0.0.1): node 0 writes to a folder, node 1 streams to a
    listener; the monitor shows one job with 4 ranks."""
    runs = tmp_path / "runs"
    addr = f"127.0.0.1:{free_port()}"
    mon = Monitor(runs, listen=addr).start()
    endpoint = f"127.0.0.1:{free_port()}"
    rid = f"tm{os.getpid()}"
    n0 = torchrun(tmp_path, 2, "--steps", "30", "--dir", str(runs), nnodes=2, node_rank=0, rdzv=endpoint,
                  rdzv_id=rid, tag="0")
    n1 = torchrun(tmp_path, 2, "--steps", "30", "--to", addr, nnodes=2, node_rank=1, rdzv=endpoint,
                  rdzv_id=rid, tag="1")
    try:
        assert n0.wait(90) == 0, log_tail(tmp_path)
        assert n1.wait(60) == 0, log_tail(tmp_path)

        def done():
            mon.poll()
            job = mon.job()
            return job if job and len(job) == 4 and all(r.status == "finished" for r in job) else None

        job = wait_for(done, timeout=30, message="4 finished ranks in one job")
        assert job[0].run_id == f"torchrun-{rid}"
        assert [r.rank for r in job] == [0, 1, 2, 3]
        assert [r.header.get("local_rank") for r in job] == [0, 1, 0, 1]
        assert all(r.last_step == 29 and len(r.get("loss")) == 30 for r in job)
        assert len(list(runs.glob("*.jsonl"))) == 2  # ranks 2 and 3 came over the socket only
        assert [f for f in mon.engine.findings if f.kind == "distributed"] == []
    finally:
        stop(n0, n1, marker=str(tmp_path))
        mon.stop()
