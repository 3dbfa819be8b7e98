"""A fake of the ``pynvml`` module, with state the tests change between reads.

:class:`FakeNvml` has the functions the reader calls, under pynvml's names, returning
objects of pynvml's shapes (``.total/.free/.used``, ``.gpu/.memory``, processes with
``.pid/.usedGpuMemory``), and raises its own :class:`NVMLError` (with ``.value``) where a
test asks for a failure. Pass an instance wherever a module is expected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

GIB = 1024**3

NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12

_TEXT = {
    NVML_ERROR_NOT_SUPPORTED: "Not Supported",
    NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
    NVML_ERROR_NOT_FOUND: "Not Found",
    NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
    NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
}


class NVMLError(Exception):
    """pynvml's error: ``value`` is the NVML return code."""

    def __init__(self, value: int) -> None:
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return _TEXT.get(self.value, f"Unknown Error {self.value}")


@dataclass
class FakeProcess:
    """A process on a GPU (``used`` None: NVML cannot say, as under WDDM)."""

    pid: int
    name: str = "python"
    used: int | None = None
    graphics: bool = False


@dataclass
class FakeGpu:
    """One GPU's state; change the fields between reads."""

    name: str = "NVIDIA Fake 24GB"
    uuid: str = "GPU-00000000-fake"
    total: int = 24 * GIB
    used: int = 0
    utilization_gpu: int = 0
    utilization_memory: int = 0
    processes: list[FakeProcess] = field(default_factory=list)

    @property
    def free(self) -> int:
        """Total minus used."""
        return self.total - self.used


class FakeNvml:
    """A ``pynvml``-shaped object over a list of :class:`FakeGpu`.

    Args:
        gpus: The GPUs it reports.
        init_error: An NVML error code ``nvmlInit`` raises (e.g. driver not loaded).
        name_as_bytes: Return strings as ``bytes``, as older bindings did.

    ``fail`` maps a function name (``"nvmlDeviceGetUtilizationRates"``) to the error code
    it raises from then on; ``init_calls`` and ``shutdown_calls`` count lifecycle calls.
    """

    NVMLError = NVMLError

    def __init__(
        self,
        gpus: list[FakeGpu] | None = None,
        *,
        init_error: int | None = None,
        name_as_bytes: bool = False,
    ) -> None:
        self.gpus = gpus if gpus is not None else [FakeGpu()]
        self.init_error = init_error
        self.name_as_bytes = name_as_bytes
        self.fail: dict[str, int] = {}
        self.init_calls = 0
        self.shutdown_calls = 0
        self.initialised = 0

    # ---- lifecycle -----------------------------------------------------------------

    def nvmlInit(self) -> None:  # noqa: N802 - pynvml's name
        self.init_calls += 1
        if self.init_error is not None:
            raise NVMLError(self.init_error)
        self.initialised += 1

    def nvmlShutdown(self) -> None:  # noqa: N802 - pynvml's name
        self.shutdown_calls += 1
        self._check("nvmlShutdown")
        self.initialised -= 1

    # ---- devices -------------------------------------------------------------------

    def nvmlDeviceGetCount(self) -> int:  # noqa: N802 - pynvml's name
        self._check("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:  # noqa: N802
        self._check("nvmlDeviceGetHandleByIndex")
        return self.gpus[index]

    def nvmlDeviceGetName(self, handle: FakeGpu) -> str | bytes:  # noqa: N802
        self._check("nvmlDeviceGetName")
        return handle.name.encode() if self.name_as_bytes else handle.name

    def nvmlDeviceGetUUID(self, handle: FakeGpu) -> str | bytes:  # noqa: N802
        self._check("nvmlDeviceGetUUID")
        return handle.uuid.encode() if self.name_as_bytes else handle.uuid

    def nvmlDeviceGetMemoryInfo(self, handle: FakeGpu) -> SimpleNamespace:  # noqa: N802
        self._check("nvmlDeviceGetMemoryInfo")
        return SimpleNamespace(total=handle.total, used=handle.used, free=handle.free)

    def nvmlDeviceGetUtilizationRates(self, handle: FakeGpu) -> SimpleNamespace:  # noqa: N802
        self._check("nvmlDeviceGetUtilizationRates")
        return SimpleNamespace(gpu=handle.utilization_gpu, memory=handle.utilization_memory)

    def nvmlDeviceGetComputeRunningProcesses(  # noqa: N802
        self, handle: FakeGpu
    ) -> list[SimpleNamespace]:
        self._check("nvmlDeviceGetComputeRunningProcesses")
        return [self._proc(p) for p in handle.processes if not p.graphics]

    def nvmlDeviceGetGraphicsRunningProcesses(  # noqa: N802
        self, handle: FakeGpu
    ) -> list[SimpleNamespace]:
        self._check("nvmlDeviceGetGraphicsRunningProcesses")
        return [self._proc(p) for p in handle.processes if p.graphics]

    def nvmlSystemGetProcessName(self, pid: int) -> str | bytes:  # noqa: N802
        self._check("nvmlSystemGetProcessName")
        for gpu in self.gpus:
            for proc in gpu.processes:
                if proc.pid == pid:
                    return proc.name.encode() if self.name_as_bytes else proc.name
        raise NVMLError(NVML_ERROR_NOT_FOUND)

    # ---- internals -----------------------------------------------------------------

    def _check(self, fn: str) -> None:
        if fn != "nvmlShutdown" and self.initialised <= 0:
            raise NVMLError(1)  # uninitialised
        code = self.fail.get(fn)
        if code is not None:
            raise NVMLError(code)

    @staticmethod
    def _proc(proc: FakeProcess) -> SimpleNamespace:
        return SimpleNamespace(pid=proc.pid, usedGpuMemory=proc.used)


def driver_missing() -> FakeNvml:
    """A fake whose ``nvmlInit`` fails as on a machine with no NVIDIA driver."""
    return FakeNvml(init_error=NVML_ERROR_DRIVER_NOT_LOADED)
