"""``tui-monitor demo``: real small training runs that walk through the
guidance, trained in the background while the TUI watches them.

The runs are the labelled scenarios of :mod:`tui_monitor.scenarios` (tiny
PyTorch models on synthetic data, CPU, one thread each), started as
subprocesses writing their streams into a temporary folder (or ``--dir``).
Every child is started in its own session and asked to die with this
process (``PR_SET_PDEATHSIG`` on Linux); on any exit of the demo (quit,
Ctrl+C, a crash of the TUI, SIGTERM/SIGHUP) the children still running are
terminated, then killed, by their process ids, and the temporary folder is
removed. A run that ends while the demo goes on is reaped at once (a thread
waits on each child), so no defunct process lingers under the TUI.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

__all__ = ["DEMO_RUNS", "Demo", "run_demo"]

#: (scenario, what it shows), in the order of the guidance.
DEMO_RUNS: Tuple[Tuple[str, str], ...] = (
    ("bias_linear", "a linear baseline on a nonlinear task: model bias"),
    ("bias_mlp", "an MLP on the same data, which fits it"),
    ("opt_shallow", "a shallow net that trains"),
    ("opt_deep", "a 20-layer plain net, worse on training data than the shallow one: optimization"),
    ("overfit", "a big net on few samples: overfitting"),
    ("mismatch", "a shifted test set: mismatch"),
    ("diverge_nan", "a learning rate too large: divergence to NaN"),
)


def _package_root() -> str:
    return str(Path(__file__).resolve().parent.parent)


def _die_with_parent() -> None:  # runs in the child, between fork and exec
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - not Linux: cleanup relies on the parent
        pass


#: Where the demo's runs print their output, in its folder.
LOGS = ".logs"


class Demo:
    """The background runs of the demo. Use as a context manager: leaving it
    (normally or by an exception) stops every child and removes the
    temporary folder."""

    def __init__(self, directory: Optional[str] = None, delay: float = 0.05, seed: int = 0,
                 scenarios: Sequence[str] = tuple(name for name, _ in DEMO_RUNS), keep: bool = False) -> None:
        self.own_dir = directory is None
        self.dir = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="tui-monitor-demo-"))
        self.keep = keep or not self.own_dir
        self.delay = delay
        self.seed = seed
        self.scenarios = list(scenarios)
        self.procs: Dict[str, subprocess.Popen] = {}
        self._old_handlers: Dict[int, object] = {}

    def start(self) -> "Demo":
        self.dir.mkdir(parents=True, exist_ok=True)
        logs = self.dir / LOGS     # hidden: the monitor watching the folder does not read (and skip) them
        logs.mkdir(exist_ok=True)
        env = dict(os.environ)
        env["PYTHONPATH"] = _package_root() + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.setdefault("OMP_NUM_THREADS", "1")
        for name in self.scenarios:
            cmd = [sys.executable, "-m", "tui_monitor.scenarios", name, "--dir", str(self.dir),
                   "--seed", str(self.seed), "--delay", repr(float(self.delay))]
            with open(logs / (name + ".log"), "wb") as log:
                self.procs[name] = subprocess.Popen(
                    cmd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True, preexec_fn=_die_with_parent if sys.platform == "linux" else None)
            threading.Thread(target=self.procs[name].wait, name="reap-" + name, daemon=True).start()
        return self

    def __enter__(self) -> "Demo":
        for sig in (signal.SIGTERM, signal.SIGHUP):
            try:
                self._old_handlers[sig] = signal.signal(sig, _raise_exit)
            except (ValueError, OSError):  # not the main thread
                pass
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        for sig, old in self._old_handlers.items():
            try:
                signal.signal(sig, old)  # type: ignore[arg-type]
            except (ValueError, OSError, TypeError):
                pass

    def running(self) -> List[str]:
        return [n for n, p in self.procs.items() if p.poll() is None]

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait for every run to end; False on timeout. Polls instead of
        ``Popen.wait()``: each child's reaper thread holds its wait lock, and
        a main thread blocked on that lock would not see a Ctrl+C that the
        kernel handed to a reaper thread until the run ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.running():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True

    def failed(self) -> List[Tuple[str, int]]:
        """Runs whose process exited with an error (a scenario that diverges
        still exits 0: it ends its stream with a crashed status)."""
        return [(n, p.returncode) for n, p in self.procs.items() if p.returncode not in (None, 0)]

    def stop(self, grace: float = 3.0) -> None:
        """Terminate the children still running (their process groups), then
        kill what is left; remove the temporary folder."""
        alive = [p for p in self.procs.values() if p.poll() is None]
        for p in alive:
            _signal_group(p, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for p in alive:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(p, signal.SIGKILL)
                try:
                    p.wait(2.0)
                except subprocess.TimeoutExpired:
                    pass
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def _signal_group(p: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(p.pid, sig)  # the child leads its own session and group
    except (ProcessLookupError, PermissionError):
        try:
            p.send_signal(sig)
        except ProcessLookupError:
            pass


def _raise_exit(signum, frame) -> None:
    raise SystemExit(128 + signum)


def run_demo(directory: Optional[str] = None, tui: bool = True, delay: float = 0.05, seed: int = 0,
             keep: bool = False, scenarios: Optional[Sequence[str]] = None, out=None, err=None) -> int:
    """The ``demo`` command. With ``tui`` false, wait for the runs and print
    the runs table and the diagnosis."""
    out = out or sys.stdout
    err = err or sys.stderr
    if importlib.util.find_spec("torch") is None:
        err.write("tui-monitor demo: the demo trains real models and needs PyTorch: "
                  "pip install torch (the CPU build is enough)\n")
        return 1
    names = list(scenarios) if scenarios else [n for n, _ in DEMO_RUNS]
    with Demo(directory, delay=delay, seed=seed, scenarios=names, keep=keep) as demo:
        if tui:
            from .sources import open_ingest
            from .tui import run_app

            store, ingest = open_ingest([str(demo.dir)])
            try:
                run_app(store, ingest)
            finally:
                ingest.stop()
            return 0
        out.write("training %d runs into %s ...\n" % (len(names), demo.dir))
        out.flush()
        demo.wait()
        from .diagnose import Diagnoser
        from .diagnose.report import report_text
        from .sources import open_ingest
        from .summary import runs_table

        store, ingest = open_ingest([str(demo.dir)], start=False)
        ingest.read_all()
        engine = Diagnoser(store)
        engine.update()
        out.write(runs_table(store) + "\n\n" + report_text(engine))
        failed = demo.failed()
        for name, rc in failed:
            err.write("tui-monitor demo: run %s exited with status %d (see %s)\n"
                      % (name, rc, demo.dir / LOGS / (name + ".log")))
        if demo.keep:
            out.write("streams kept in %s\n" % demo.dir)
        return 1 if failed else 0
