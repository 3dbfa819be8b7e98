"""A small, typed reader of GPU state through NVML (the ``pynvml`` module).

``nvidia-ml-py`` installs a module named ``pynvml`` that wraps NVIDIA's management
library. This module reads from it what the ResourceMonitor needs, per GPU: name, UUID,
total/used/free memory, utilisation, and the processes using it with their memory.

It never raises for a missing GPU. When the module cannot be imported, the driver's
library is absent (``nvmlInit`` fails), or NVML sees no device, the reading says
``available=False`` and why. A call that fails for one field (utilisation is "not
supported" on many boards, a process's name may be unreadable) leaves that field empty
and notes it in :attr:`GpuReading.errors`; the rest of the reading stands.

NVML calls are local and fast (microseconds to a millisecond), so an actor may read on
its own thread. :class:`NvmlReader` initialises NVML once and keeps it initialised until
:meth:`NvmlReader.close`; :func:`read_gpus` uses one shared reader per module.

The module is injectable everywhere (``nvml_module=``), so tests can pass a fake with the
same function names (see ``tests/support/fake_nvml.py``).
"""

from __future__ import annotations

import atexit
import importlib
import threading
import time
from dataclasses import dataclass
from typing import Any

from actors.llm._messages import GpuInfo, GpuProcess

__all__ = ["GpuReading", "NvmlReader", "read_gpus", "shutdown_nvml"]


@dataclass(frozen=True, slots=True)
class GpuReading:
    """One reading of every GPU NVML sees.

    Attributes:
        gpus: The GPUs, in NVML index order (empty when none is available).
        available: Whether NVML is usable and sees at least one GPU.
        error: Why NVML is unavailable (``None`` when it is available).
        errors: Fields that could not be read, e.g. ``"gpu 0 utilization: Not Supported"``;
            the reading is still usable.
    """

    gpus: tuple[GpuInfo, ...] = ()
    available: bool = False
    error: str | None = None
    errors: tuple[str, ...] = ()

    @property
    def free_bytes(self) -> int:
        """Free memory summed over every GPU (0 when none)."""
        return sum(g.free_bytes for g in self.gpus)

    @property
    def total_bytes(self) -> int:
        """Total memory summed over every GPU (0 when none)."""
        return sum(g.total_bytes for g in self.gpus)


def _text(value: object) -> str:
    """NVML strings arrive as ``str`` or ``bytes`` depending on the binding's version."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    code = getattr(exc, "value", None)
    return f"{text} (NVML error {code})" if isinstance(code, int) else text


class NvmlReader:
    """Reads GPU state through one NVML module, initialising it once.

    Args:
        nvml_module: A ``pynvml``-shaped module; ``None`` imports ``pynvml``.
        retry_init_s: After ``nvmlInit`` failed, how long to wait before trying again
            (a driver rarely appears later; trying costs a failed library load).

    Not thread-safe on its own: one owner (an actor) calls :meth:`read`, or the caller
    serialises (as :func:`read_gpus` does).
    """

    def __init__(self, nvml_module: Any = None, *, retry_init_s: float = 60.0) -> None:
        self._module: Any = nvml_module
        self._retry_init_s = retry_init_s
        self._initialised = False
        self._init_error: str | None = None
        self._failed_at: float | None = None

    @property
    def initialised(self) -> bool:
        """Whether NVML is initialised by this reader now."""
        return self._initialised

    def read(self) -> GpuReading:
        """Read every GPU; never raises for a missing library, driver or device."""
        nvml = self._ensure_init()
        if nvml is None:
            return GpuReading(error=self._init_error)
        error_type = self._error_type(nvml)
        try:
            count = int(nvml.nvmlDeviceGetCount())
        except error_type as exc:
            return GpuReading(error=f"NVML could not count GPUs: {_describe(exc)}")
        if count == 0:
            return GpuReading(error="NVML sees no GPU")
        gpus: list[GpuInfo] = []
        errors: list[str] = []
        for index in range(count):
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
            except error_type as exc:
                errors.append(f"gpu {index}: {_describe(exc)}")
                continue
            gpus.append(self._read_device(nvml, error_type, index, handle, errors))
        if not gpus:
            return GpuReading(error="NVML could not open any GPU", errors=tuple(errors))
        return GpuReading(gpus=tuple(gpus), available=True, errors=tuple(errors))

    def close(self) -> None:
        """Shut NVML down if this reader initialised it (safe to call twice)."""
        if not self._initialised:
            return
        self._initialised = False
        nvml = self._module
        try:
            nvml.nvmlShutdown()
        except self._error_type(nvml):
            return  # shutting down a library that is already gone is not worth a crash

    # ---- internals -----------------------------------------------------------------

    @staticmethod
    def _error_type(nvml: Any) -> type[Exception]:
        error = getattr(nvml, "NVMLError", None)
        if isinstance(error, type) and issubclass(error, Exception):
            return error
        return Exception

    def _ensure_init(self) -> Any:
        """The initialised module, or ``None`` (with ``_init_error`` saying why)."""
        if self._initialised:
            return self._module
        if self._failed_at is not None and (
            time.monotonic() - self._failed_at < self._retry_init_s
        ):
            return None
        if self._module is None:
            try:
                self._module = importlib.import_module("pynvml")
            except ImportError as exc:
                return self._init_failed(f"NVML bindings not installed (nvidia-ml-py): {exc}")
        nvml = self._module
        try:
            nvml.nvmlInit()
        except self._error_type(nvml) as exc:
            return self._init_failed(f"NVML unavailable (no NVIDIA driver?): {_describe(exc)}")
        except OSError as exc:  # a broken library can fail to load outside NVMLError
            return self._init_failed(f"NVML library failed to load: {exc}")
        self._initialised = True
        self._init_error = None
        self._failed_at = None
        return nvml

    def _init_failed(self, why: str) -> None:
        self._init_error = why
        self._failed_at = time.monotonic()

    def _read_device(
        self,
        nvml: Any,
        error_type: type[Exception],
        index: int,
        handle: object,
        errors: list[str],
    ) -> GpuInfo:
        def field(label: str, fn: Any, *args: object) -> Any:
            try:
                return fn(*args)
            except error_type as exc:
                errors.append(f"gpu {index} {label}: {_describe(exc)}")
                return None

        name = field("name", nvml.nvmlDeviceGetName, handle)
        uuid = field("uuid", nvml.nvmlDeviceGetUUID, handle)
        memory = field("memory", nvml.nvmlDeviceGetMemoryInfo, handle)
        rates = field("utilization", nvml.nvmlDeviceGetUtilizationRates, handle)
        processes: dict[int, GpuProcess] = {}
        for label, getter in (
            ("compute processes", "nvmlDeviceGetComputeRunningProcesses"),
            ("graphics processes", "nvmlDeviceGetGraphicsRunningProcesses"),
        ):
            fn = getattr(nvml, getter, None)
            if fn is None:
                continue
            for proc in field(label, fn, handle) or ():
                self._add_process(nvml, error_type, proc, processes, errors)
        return GpuInfo(
            index=index,
            name=_text(name) if name is not None else f"GPU {index}",
            uuid=_text(uuid) if uuid is not None else "",
            total_bytes=int(memory.total) if memory is not None else 0,
            used_bytes=int(memory.used) if memory is not None else 0,
            free_bytes=int(memory.free) if memory is not None else 0,
            utilization_gpu=int(rates.gpu) if rates is not None else None,
            utilization_memory=int(rates.memory) if rates is not None else None,
            processes=tuple(processes.values()),
        )

    @staticmethod
    def _add_process(
        nvml: Any,
        error_type: type[Exception],
        proc: Any,
        into: dict[int, GpuProcess],
        errors: list[str],
    ) -> None:
        pid = int(proc.pid)
        used = getattr(proc, "usedGpuMemory", None)
        used_bytes = int(used) if used is not None else None
        known = into.get(pid)
        if known is not None:
            # A process can be both a compute and a graphics client; keep one entry.
            if known.used_bytes is None and used_bytes is not None:
                into[pid] = GpuProcess(pid=pid, name=known.name, used_bytes=used_bytes)
            return
        name = ""
        get_name = getattr(nvml, "nvmlSystemGetProcessName", None)
        if get_name is not None:
            try:
                name = _text(get_name(pid))
            except error_type as exc:  # it exited meanwhile, or we may not look
                errors.append(f"process {pid} name: {_describe(exc)}")
        into[pid] = GpuProcess(pid=pid, name=name, used_bytes=used_bytes)


_shared: dict[int, tuple[Any, NvmlReader]] = {}
_shared_lock = threading.Lock()


def read_gpus(nvml_module: Any = None) -> GpuReading:
    """Read every GPU through a shared reader of ``nvml_module`` (``pynvml`` by default).

    NVML is initialised on the first call and stays initialised until
    :func:`shutdown_nvml` (called at interpreter exit). Never raises for a missing
    library, driver or GPU: the reading says ``available=False`` and why.
    """
    key = id(nvml_module)
    with _shared_lock:
        entry = _shared.get(key)
        if entry is None:
            entry = (nvml_module, NvmlReader(nvml_module))
            _shared[key] = entry
        return entry[1].read()


def shutdown_nvml() -> None:
    """Shut down NVML for every shared reader :func:`read_gpus` created."""
    with _shared_lock:
        readers = [reader for _, reader in _shared.values()]
        _shared.clear()
    for reader in readers:
        reader.close()


atexit.register(shutdown_nvml)
