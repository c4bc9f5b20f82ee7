"""The system sampler for the hook's writer thread (tui_monitor/_sysinfo.py)."""
from __future__ import annotations

import json
import subprocess
import sys
import types

from conftest import ROOT
from tui_monitor._sysinfo import FIELDS, SystemSampler, sample_once


def test_cpu_path_sample():
    s = sample_once()
    for key in ("cpu_percent", "rss", "ram_total", "ram_used", "load1"):
        assert key in s and s[key] >= 0, key
    assert s["rss"] > 1_000_000 and s["ram_total"] >= s["ram_used"]
    assert all(isinstance(v, float) for v in s.values())
    assert set(s) <= set(FIELDS)


def test_step_time_from_log_spacing():
    clock = [100.0]
    sp = SystemSampler(every=5, clock=lambda: clock[0])
    assert not sp.due(100.5) and sp.due(101.0)  # the first a second after start
    for i in range(11):
        sp.observe(i, 100.0 + 0.2 * i)
    s = sp.sample(102.0)
    assert abs(s["step_time"] - 0.2) < 1e-9 and abs(s["steps_per_sec"] - 5.0) < 1e-9
    assert not sp.due(104.0) and sp.due(107.0)
    s2 = sp.sample(107.0)  # no log since: no step time
    assert "step_time" not in s2
    sp.observe(20, 104.0)
    assert abs(sp.sample(112.0)["step_time"] - 0.2) < 1e-9  # from the last log of the previous interval
    sp.observe("x", 1.0)  # not an int step: ignored
    sp.observe(30, 106.0)
    assert abs(sp.sample(117.0)["step_time"] - 0.2) < 1e-9  # (30 - 20) steps over (106 - 104) s, "x" left out


def test_cuda_only_when_loaded_and_initialised(monkeypatch):
    calls = []
    cuda = types.SimpleNamespace(is_initialized=lambda: False, memory_allocated=lambda i: calls.append(i) or 10,
                                 memory_reserved=lambda i: 20, max_memory_allocated=lambda i: 30,
                                 current_device=lambda: 0, device_count=lambda: 1)
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    monkeypatch.setitem(sys.modules, "pynvml", None)  # "not installed"
    sp = SystemSampler()
    assert "cuda_mem_allocated" not in sp.sample() and not calls
    cuda.is_initialized = lambda: True
    s = sp.sample()
    assert s["cuda_mem_allocated"] == 10.0 and s["cuda_mem_reserved"] == 20.0 and s["cuda_max_mem_allocated"] == 30.0


def test_nvml_and_a_failing_source(monkeypatch):
    nv = types.SimpleNamespace(
        nvmlInit=lambda: None, nvmlDeviceGetHandleByIndex=lambda i: ("h", i),
        nvmlDeviceGetUtilizationRates=lambda h: types.SimpleNamespace(gpu=87),
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(used=5 << 30, total=80 << 30))
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    s = SystemSampler().sample()
    assert s["gpu_util"] == 87.0 and s["gpu_mem_total"] == float(80 << 30)

    def boom():
        raise RuntimeError("NVML Shared Library Not Found")

    nv.nvmlInit = boom
    sp = SystemSampler()
    s = sp.sample()
    assert "gpu_util" not in s and "cpu_percent" in s  # absent, the rest still there
    assert "gpu_util" not in sp.sample()


def test_stdlib_only():
    code = ("import sys, json; sys.path.insert(0, sys.argv[1]); from tui_monitor import _sysinfo; "
            "s = _sysinfo.sample_once(); "
            "bad = [m for m in ('numpy', 'torch', 'pynvml', 'textual', 'rich', 'pydantic') if m in sys.modules]; "
            "print(json.dumps([bad, sorted(s)]))")
    out = subprocess.run([sys.executable, "-I", "-c", code, str(ROOT)], capture_output=True, text=True, timeout=60)
    bad, keys = json.loads(out.stdout)
    assert bad == [] and "rss" in keys


def _fake_nvml(handles):
    """An NVML with GPUs by UUID and PCI index (no GPU here: NVML cannot be had otherwise)."""
    def by_uuid(u):
        if u not in handles:
            raise RuntimeError("NVML_ERROR_NOT_FOUND")
        return handles[u]
    return types.SimpleNamespace(
        nvmlInit=lambda: None, nvmlDeviceGetHandleByUUID=by_uuid,
        nvmlDeviceGetHandleByIndex=lambda i: "index-%d" % i,
        nvmlDeviceGetUtilizationRates=lambda h: types.SimpleNamespace(gpu={"gpu-b": 90, "gpu-a": 10}.get(h, 50)),
        nvmlDeviceGetMemoryInfo=lambda h: types.SimpleNamespace(used=1, total=2))


def test_nvml_follows_the_cuda_device_by_uuid_and_after_set_device(monkeypatch):
    device = [1]
    props = {0: types.SimpleNamespace(uuid="aaaa"), 1: types.SimpleNamespace(uuid="bbbb")}
    cuda = types.SimpleNamespace(is_initialized=lambda: True, current_device=lambda: device[0],
                                 get_device_properties=lambda i: props[i], memory_allocated=lambda i: 0,
                                 memory_reserved=lambda i: 0, max_memory_allocated=lambda i: 0)
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml({"GPU-aaaa": "gpu-a", "GPU-bbbb": "gpu-b"}))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,1")  # CUDA's 1 is PCI's 1 here, not index 1
    sp = SystemSampler()
    assert sp.sample()["gpu_util"] == 90.0 and sp._nvml_handle == "gpu-b"
    device[0] = 0  # torch.cuda.set_device(0) after the first sample
    assert sp.sample()["gpu_util"] == 10.0 and sp._nvml_handle == "gpu-a"


def test_nvml_falls_back_to_the_visible_list(monkeypatch):
    cuda = types.SimpleNamespace(is_initialized=lambda: True, current_device=lambda: 1,
                                 get_device_properties=lambda i: types.SimpleNamespace(),  # an older torch: no uuid
                                 memory_allocated=lambda i: 0, memory_reserved=lambda i: 0, max_memory_allocated=lambda i: 0)
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml({"GPU-cccc": "gpu-c"}))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    sp = SystemSampler()
    sp.sample()
    assert sp._nvml_handle == "index-5"  # NVML counts every GPU: CUDA's device 1 is PCI index 5
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-aaaa,GPU-cccc")
    sp = SystemSampler()
    sp.sample()
    assert sp._nvml_handle == "gpu-c"


def test_nvml_never_initialises_cuda(monkeypatch):
    touched = []
    cuda = types.SimpleNamespace(is_initialized=lambda: False, current_device=lambda: touched.append("cur") or 0,
                                 get_device_properties=lambda i: touched.append("props"))
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml({}))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    sp = SystemSampler()
    assert sp.sample()["gpu_util"] == 50.0 and sp._nvml_handle == "index-0" and touched == []


def _thread_local_cuda(devices=4, uuids=("aaaa", "bbbb", "cccc", "dddd")):
    """torch.cuda as the writer thread sees it: its current device is 0
    whatever the training thread set (torch's current device is per thread)."""
    asked = []
    return asked, types.SimpleNamespace(
        is_initialized=lambda: True, current_device=lambda: 0, device_count=lambda: devices,
        get_device_properties=lambda i: types.SimpleNamespace(uuid=uuids[i]),
        memory_allocated=lambda i: asked.append(i) or 100 + i, memory_reserved=lambda i: 0,
        max_memory_allocated=lambda i: 0)


def test_the_training_gpu_not_the_writer_threads(monkeypatch):
    asked, cuda = _thread_local_cuda()
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    monkeypatch.setitem(sys.modules, "pynvml", _fake_nvml({"GPU-aaaa": "gpu-a", "GPU-cccc": "gpu-c",
                                                           "GPU-dddd": "gpu-d"}))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    sp = SystemSampler()
    sp.local_rank = 2  # what the hook detected (torchrun, srun): every GPU visible, local rank 2 on cuda:2
    s = sp.sample()
    assert sp._nvml_handle == "gpu-c" and s["cuda_mem_allocated"] == 102.0 and asked == [2]
    sp.cuda_device = 3  # what the hook saw the model on wins
    assert sp.sample()["cuda_mem_allocated"] == 103.0 and sp._nvml_handle == "gpu-d"
    asked2, one = _thread_local_cuda(devices=1)  # each rank sees only its own GPU: the local rank is no index
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=one))
    sp = SystemSampler()
    sp.local_rank = 2
    sp.sample()
    assert asked2 == [0] and sp._nvml_handle == "gpu-a"


def test_watch_tells_the_sampler_the_models_gpu(tmp_path, monkeypatch):
    import tui_monitor as tm

    _, cuda = _thread_local_cuda()
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(cuda=cuda))
    param = types.SimpleNamespace(device=types.SimpleNamespace(type="cuda", index=1))
    model = types.SimpleNamespace(parameters=lambda: iter([param]))
    monkeypatch.setenv("SLURM_PROCID", "5")
    monkeypatch.setenv("SLURM_LOCALID", "1")  # srun: the hook's detection reaches the sampler
    run = tm.init("gpu", dir=tmp_path, system_every=5.0)
    try:
        assert run._sys.local_rank == 1
        run.watch(model, every=0, _describe=False)
        assert run._sys.cuda_device == 1
        cpu = types.SimpleNamespace(parameters=lambda: iter([types.SimpleNamespace(device=types.SimpleNamespace(
            type="cpu", index=None))]))
        run._sys.cuda_device = None
        run.watch(cpu, every=0, _describe=False)
        assert run._sys.cuda_device is None
    finally:
        run.close()
