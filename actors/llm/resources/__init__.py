"""GPU memory and model admission: the :class:`ResourceMonitor` actor and the NVML reader."""

from actors.llm.resources._monitor import RegisterHost, ResourceMonitor
from actors.llm.resources._nvml import GpuReading, NvmlReader, read_gpus

__all__ = ["GpuReading", "NvmlReader", "RegisterHost", "ResourceMonitor", "read_gpus"]
