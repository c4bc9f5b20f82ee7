"""A low-rate system sampler for the hook's writer thread: step time and
throughput, CUDA memory, GPU utilisation, process CPU and memory, host RAM.

Standard library only, like the hook (it is meant to be wired into
:mod:`tui_monitor.hook`, and copied with it). torch is used only when the
training script already imported it (``sys.modules``), and only when CUDA is
already initialised, so sampling never creates a CUDA context; NVML
(``nvidia-ml-py``, module ``pynvml``) through a guarded import. Every value
is silently absent where it cannot be had; a source that fails once is not
asked again. Nothing here raises.

Use from the writer thread (never from ``log()``)::

    sampler = SystemSampler()
    ...
    sampler.observe(step, t)        # for each metrics record written (cheap)
    if sampler.due(now):            # every ``every`` seconds (default 5)
        values = sampler.sample(now)  # flat dict of numbers
"""
from __future__ import annotations

import os
import sys
import time
from typing import Any, Dict, Optional

__all__ = ["SystemSampler", "sample_once", "FIELDS"]

#: Seconds from start to the first sample.
FIRST_AFTER = 1.0

#: Every field a sample may hold, with its unit.
FIELDS = {
    "step_time": "seconds per step, from the spacing of log() calls since the last sample",
    "steps_per_sec": "steps per second over the same interval",
    "cpu_percent": "CPU time of this process (all threads) over wall time since the last sample, in % of one core",
    "rss": "resident memory of this process, bytes",
    "max_rss": "peak resident memory of this process (where /proc has no current value), bytes",
    "ram_used": "host memory in use (MemTotal - MemAvailable), bytes",
    "ram_total": "host memory, bytes",
    "load1": "host load average over one minute",
    "cuda_mem_allocated": "torch.cuda.memory_allocated() of the current device, bytes",
    "cuda_mem_reserved": "torch.cuda.memory_reserved(), bytes",
    "cuda_max_mem_allocated": "torch.cuda.max_memory_allocated(), bytes",
    "gpu_util": "GPU utilisation from NVML, %",
    "gpu_mem_used": "GPU memory in use from NVML (all processes), bytes",
    "gpu_mem_total": "GPU memory from NVML, bytes",
}


def _page_size() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4096


class SystemSampler:
    """Samples at most every ``every`` seconds (see :meth:`due`)."""

    def __init__(self, every: float = 5.0, clock=time.time) -> None:
        self.every = float(every)
        self.clock = clock
        self._start = clock()
        self._last_sample: Optional[float] = None
        self._cpu0: Optional[float] = None
        self._wall0: Optional[float] = None
        # (step, time) of the first and last log() seen since the last sample
        self._first: Optional[tuple] = None
        self._last: Optional[tuple] = None
        self._off: Dict[str, bool] = {}
        self._nvml: Any = None
        self._nvml_handle: Any = None
        self._nvml_index = 0  # the CUDA device the handle is for
        #: The CUDA device the training computes on, when the hook knows it
        #: (the model's, from ``watch()``): torch's current device is per
        #: thread, and this runs in the writer's, which never set_device'd.
        self.cuda_device: Optional[int] = None
        #: The process's local rank in a job (the hook's detection: torchrun,
        #: SLURM, Open MPI), the GPU a rank computes on when it sees them all.
        self.local_rank: Optional[int] = None
        self._page = _page_size()
        self._start_cpu()

    # -- feeding --------------------------------------------------------------

    def observe(self, step: Any, t: float) -> None:
        """Note a ``log()`` call at ``step`` and time ``t`` (from the record)."""
        if type(step) is not int:
            return
        if self._first is None:
            self._first = (step, t)
        self._last = (step, t)

    def due(self, now: Optional[float] = None) -> bool:
        """The first sample a second after start (a CPU share needs time to
        measure), then one every ``every`` seconds."""
        now = self.clock() if now is None else now
        if self._last_sample is None:
            return now - self._start >= min(self.every, FIRST_AFTER)
        return now - self._last_sample >= self.every

    # -- sampling -------------------------------------------------------------

    def sample(self, now: Optional[float] = None) -> Dict[str, float]:
        """A flat dict of the values available now (may be empty)."""
        now = self.clock() if now is None else now
        self._last_sample = now
        out: Dict[str, float] = {}
        for name, fn in (("steps", self._steps), ("cpu", self._cpu), ("rss", self._rss), ("ram", self._ram),
                         ("load", self._load), ("cuda", self._cuda), ("nvml", self._nvml_sample)):
            if self._off.get(name):
                continue
            try:
                fn(out)
            except Exception:  # noqa: BLE001 - absent, and not asked again
                self._off[name] = True
        return out

    def _steps(self, out: Dict[str, float]) -> None:
        first, last = self._first, self._last
        if first is not None and last is not None and last[0] > first[0] and last[1] > first[1]:
            dt = (last[1] - first[1]) / (last[0] - first[0])
            out["step_time"] = dt
            out["steps_per_sec"] = 1.0 / dt
        # the next interval starts at the last log seen
        self._first = last
        self._last = last

    def _start_cpu(self) -> None:
        t = os.times()
        self._cpu0 = t.user + t.system
        self._wall0 = time.monotonic()

    def _cpu(self, out: Dict[str, float]) -> None:
        t = os.times()
        cpu = t.user + t.system
        wall = time.monotonic()
        if self._cpu0 is not None and self._wall0 is not None and wall > self._wall0:
            out["cpu_percent"] = 100.0 * (cpu - self._cpu0) / (wall - self._wall0)
        self._cpu0, self._wall0 = cpu, wall

    def _rss(self, out: Dict[str, float]) -> None:
        try:
            with open("/proc/self/statm", "rb") as f:
                out["rss"] = float(int(f.read().split()[1]) * self._page)
                return
        except OSError:
            pass
        import resource  # stdlib; peak, not current: reported only where /proc is missing

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out["max_rss"] = float(peak if sys.platform == "darwin" else peak * 1024)

    def _ram(self, out: Dict[str, float]) -> None:
        info = {}
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                k, _, rest = line.partition(b":")
                if k in (b"MemTotal", b"MemAvailable"):
                    info[k] = int(rest.split()[0]) * 1024
        if b"MemTotal" in info:
            out["ram_total"] = float(info[b"MemTotal"])
            if b"MemAvailable" in info:
                out["ram_used"] = float(info[b"MemTotal"] - info[b"MemAvailable"])

    def _load(self, out: Dict[str, float]) -> None:
        out["load1"] = float(os.getloadavg()[0])

    def _cuda(self, out: Dict[str, float]) -> None:
        torch = sys.modules.get("torch")
        cuda = getattr(torch, "cuda", None) if torch is not None else None
        if cuda is None:
            return  # maybe imported later: ask again next time
        is_init = getattr(cuda, "is_initialized", None)
        if is_init is None or not is_init():
            return  # never initialise CUDA from here
        index = self._device_index(cuda)
        out["cuda_mem_allocated"] = float(cuda.memory_allocated(index))
        out["cuda_mem_reserved"] = float(cuda.memory_reserved(index))
        out["cuda_max_mem_allocated"] = float(cuda.max_memory_allocated(index))

    def _device_index(self, cuda: Any) -> int:
        """The training's CUDA device: the one the hook saw the model on;
        else the local rank when this process sees that many GPUs (torchrun
        with every GPU visible, each rank on its ``cuda:LOCAL_RANK``); else
        this thread's current device."""
        if self.cuda_device is not None:
            return self.cuda_device
        local = self.local_rank
        if local is not None:
            try:
                if local < int(cuda.device_count()):
                    return local
            except Exception:  # noqa: BLE001
                pass
        return int(cuda.current_device())

    def _nvml_sample(self, out: Dict[str, float]) -> None:
        if self._nvml is None:
            nvml = sys.modules.get("pynvml")
            if nvml is None:
                try:
                    import pynvml as nvml  # type: ignore  # nvidia-ml-py, when installed
                except Exception:  # noqa: BLE001
                    self._off["nvml"] = True
                    return
            nvml.nvmlInit()
            self._nvml = nvml
        torch = sys.modules.get("torch")
        cuda = getattr(torch, "cuda", None) if torch is not None else None
        if cuda is not None and not getattr(cuda, "is_initialized", lambda: False)():
            cuda = None  # asking it anything would initialise CUDA in this process: not ours to do
        index = self._device_index(cuda) if cuda is not None else 0
        if self._nvml_handle is None or index != self._nvml_index:  # first sample, or set_device since
            self._nvml_handle, self._nvml_index = _nvml_handle(self._nvml, cuda, index), index
        nvml, h = self._nvml, self._nvml_handle
        util = nvml.nvmlDeviceGetUtilizationRates(h)
        out["gpu_util"] = float(util.gpu)
        mem = nvml.nvmlDeviceGetMemoryInfo(h)
        out["gpu_mem_used"] = float(mem.used)
        out["gpu_mem_total"] = float(mem.total)


def _nvml_handle(nvml: Any, cuda: Any, index: int) -> Any:
    """NVML's handle of CUDA device ``index``. NVML numbers every GPU in PCI
    order; CUDA numbers the visible ones (``CUDA_VISIBLE_DEVICES``, by index
    or UUID), fastest first unless ``CUDA_DEVICE_ORDER=PCI_BUS_ID``. So the
    device's UUID is asked of torch first, then of the visible list; the
    visible list's index, or the index itself, is the last resort."""
    uuids = []
    try:
        uuid = cuda.get_device_properties(index).uuid if cuda is not None else None
        if uuid is not None:
            uuids.append("GPU-%s" % uuid if not str(uuid).startswith(("GPU-", "MIG-")) else str(uuid))
    except Exception:  # noqa: BLE001 - older torch: no uuid
        pass
    ids = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
    visible = ids[index] if index < len(ids) else None
    if visible is not None and visible.startswith(("GPU-", "MIG-")):
        uuids.append(visible)
    for uuid in uuids:
        try:
            return nvml.nvmlDeviceGetHandleByUUID(uuid)
        except Exception:  # noqa: BLE001 - a short UUID prefix, a MIG slice: try the next way
            continue
    return nvml.nvmlDeviceGetHandleByIndex(int(visible) if visible is not None and visible.isdigit() else index)


def sample_once() -> Dict[str, float]:
    """One sample with a fresh sampler (CPU percent needs an interval, so it
    is measured over a short one); for tests and ``python -m``."""
    s = SystemSampler()
    time.sleep(0.05)
    return s.sample()


if __name__ == "__main__":
    for k, v in sorted(sample_once().items()):
        print("%-24s %r" % (k, v))
