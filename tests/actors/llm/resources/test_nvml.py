"""Reading GPUs through NVML: the real library (or its absence) and a fake module."""

from __future__ import annotations

import sys

import pytest

from actors.llm._messages import GpuProcess
from actors.llm.resources._nvml import NvmlReader, read_gpus, shutdown_nvml
from tests.support.fake_nvml import (
    GIB,
    NVML_ERROR_NO_PERMISSION,
    NVML_ERROR_NOT_SUPPORTED,
    FakeGpu,
    FakeNvml,
    FakeProcess,
    driver_missing,
)


def test_real_pynvml_never_raises_and_says_why_when_unavailable() -> None:
    """The installed bindings: GPUs where a driver is, else 'no GPU' with a reason."""
    reader = NvmlReader()
    try:
        reading = reader.read()
    finally:
        reader.close()
    if reading.available:
        assert reading.gpus
        assert all(g.total_bytes > 0 for g in reading.gpus)
        assert reading.error is None
    else:
        assert reading.gpus == ()
        assert reading.error
        assert not reader.initialised


def test_missing_bindings_degrade_to_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the pynvml module the reading is 'no GPU', naming the package."""
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    reading = NvmlReader().read()
    assert not reading.available
    assert reading.gpus == ()
    assert reading.error is not None
    assert "nvidia-ml-py" in reading.error


def test_driver_missing_degrades_to_no_gpu_and_is_not_retried_at_once() -> None:
    """A failing nvmlInit (no driver) gives 'no GPU'; the next read does not retry yet."""
    fake = driver_missing()
    reader = NvmlReader(fake)
    reading = reader.read()
    assert not reading.available
    assert reading.error is not None
    assert "Driver Not Loaded" in reading.error
    assert reader.read().error == reading.error
    assert fake.init_calls == 1
    reader.close()
    assert fake.shutdown_calls == 0  # never initialised, so nothing to shut down


def test_init_is_retried_after_the_retry_interval() -> None:
    """A driver that appears later is picked up on a later read."""
    fake = driver_missing()
    reader = NvmlReader(fake, retry_init_s=0.0)
    assert not reader.read().available
    fake.init_error = None
    assert reader.read().available
    reader.close()


def test_fake_gpus_are_read_in_full() -> None:
    """Name, UUID, memory, utilisation and processes (compute and graphics) are read."""
    gpu = FakeGpu(
        name="NVIDIA Test 80GB",
        uuid="GPU-1234",
        total=80 * GIB,
        used=30 * GIB,
        utilization_gpu=55,
        utilization_memory=20,
        processes=[
            FakeProcess(pid=101, name="ollama", used=20 * GIB),
            FakeProcess(pid=202, name="Xorg", used=None, graphics=True),
        ],
    )
    fake = FakeNvml([gpu, FakeGpu(uuid="GPU-5678")])
    reader = NvmlReader(fake)
    reading = reader.read()
    assert reading.available
    assert reading.error is None
    assert reading.errors == ()
    first, second = reading.gpus
    assert (first.index, first.name, first.uuid) == (0, "NVIDIA Test 80GB", "GPU-1234")
    assert (first.total_bytes, first.used_bytes, first.free_bytes) == (80 * GIB, 30 * GIB, 50 * GIB)
    assert (first.utilization_gpu, first.utilization_memory) == (55, 20)
    assert first.processes == (
        GpuProcess(pid=101, name="ollama", used_bytes=20 * GIB),
        GpuProcess(pid=202, name="Xorg", used_bytes=None),
    )
    assert second.index == 1
    assert reading.free_bytes == 50 * GIB + 24 * GIB
    assert reading.total_bytes == 104 * GIB
    reader.close()


def test_state_changes_show_in_the_next_read_and_init_happens_once() -> None:
    """NVML stays initialised between reads; the second read sees the new state."""
    gpu = FakeGpu(total=24 * GIB, used=2 * GIB)
    fake = FakeNvml([gpu])
    reader = NvmlReader(fake)
    assert reader.read().gpus[0].free_bytes == 22 * GIB
    gpu.used = 20 * GIB
    gpu.processes.append(FakeProcess(pid=7, name="llama-server", used=18 * GIB))
    later = reader.read().gpus[0]
    assert later.free_bytes == 4 * GIB
    assert [p.pid for p in later.processes] == [7]
    assert fake.init_calls == 1
    reader.close()
    reader.close()
    assert fake.shutdown_calls == 1
    assert fake.initialised == 0


def test_bytes_strings_from_older_bindings_are_decoded() -> None:
    """Names and UUIDs that arrive as bytes become str."""
    fake = FakeNvml(
        [FakeGpu(name="Old", uuid="GPU-old", processes=[FakeProcess(pid=1, name="py")])],
        name_as_bytes=True,
    )
    reader = NvmlReader(fake)
    gpu = reader.read().gpus[0]
    assert (gpu.name, gpu.uuid, gpu.processes[0].name) == ("Old", "GPU-old", "py")
    reader.close()


def test_a_failing_field_degrades_only_that_field() -> None:
    """Utilisation 'not supported', processes and names refused: the rest still reads."""
    gpu = FakeGpu(total=16 * GIB, used=4 * GIB, processes=[FakeProcess(pid=5, used=GIB)])
    fake = FakeNvml([gpu])
    fake.fail["nvmlDeviceGetUtilizationRates"] = NVML_ERROR_NOT_SUPPORTED
    fake.fail["nvmlSystemGetProcessName"] = NVML_ERROR_NO_PERMISSION
    fake.fail["nvmlDeviceGetGraphicsRunningProcesses"] = NVML_ERROR_NOT_SUPPORTED
    reader = NvmlReader(fake)
    reading = reader.read()
    assert reading.available
    info = reading.gpus[0]
    assert info.free_bytes == 12 * GIB
    assert info.utilization_gpu is None
    assert info.utilization_memory is None
    assert info.processes == (GpuProcess(pid=5, name="", used_bytes=GIB),)
    assert any("utilization" in e and "Not Supported" in e for e in reading.errors)
    assert any("process 5 name" in e for e in reading.errors)
    assert any("graphics processes" in e for e in reading.errors)
    reader.close()


def test_failing_memory_name_and_uuid_read_as_empty() -> None:
    """Memory unreadable counts as 0 bytes; a name falls back to 'GPU <index>'."""
    fake = FakeNvml([FakeGpu()])
    for fn in ("nvmlDeviceGetMemoryInfo", "nvmlDeviceGetName", "nvmlDeviceGetUUID"):
        fake.fail[fn] = NVML_ERROR_NOT_SUPPORTED
    reader = NvmlReader(fake)
    reading = reader.read()
    assert reading.available
    info = reading.gpus[0]
    assert (info.name, info.uuid, info.total_bytes, info.free_bytes) == ("GPU 0", "", 0, 0)
    assert len(reading.errors) == 3
    reader.close()


def test_no_devices_is_no_gpu() -> None:
    """NVML present but no GPU: not available, and it says so."""
    reader = NvmlReader(FakeNvml([]))
    reading = reader.read()
    assert not reading.available
    assert reading.error == "NVML sees no GPU"
    reader.close()


def test_device_count_failure_is_no_gpu() -> None:
    """Counting devices failing leaves nothing to read."""
    fake = FakeNvml()
    fake.fail["nvmlDeviceGetCount"] = NVML_ERROR_NO_PERMISSION
    reader = NvmlReader(fake)
    reading = reader.read()
    assert not reading.available
    assert reading.error is not None
    assert "Insufficient Permissions" in reading.error
    reader.close()


def test_read_gpus_keeps_one_initialised_reader_per_module() -> None:
    """read_gpus initialises a module once; shutdown_nvml shuts it down."""
    fake = FakeNvml()
    try:
        assert read_gpus(fake).available
        assert read_gpus(fake).available
        assert fake.init_calls == 1
    finally:
        shutdown_nvml()
    assert fake.shutdown_calls == 1
