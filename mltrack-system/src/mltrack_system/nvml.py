"""The single seam between this plugin and NVIDIA's management library: every NVML call is here.

``open_nvml()`` returns an ``NvmlSession`` (or None where there is no NVML to talk to), and the GPU
probe only ever calls its three methods. Tests replace ``open_nvml`` with a fake session to cover
several devices, a device that disappears and NVML missing, without a GPU.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol


class GpuReading(NamedTuple):
    """One device's state at one instant; None where the device does not report a value."""

    utilization_percentage: float | None
    memory_used_bytes: float
    memory_total_bytes: float
    power_milliwatts: float | None
    power_limit_milliwatts: float | None
    temperature_celsius: float | None


class DeviceLostError(Exception):
    """The device no longer answers (unplugged, fallen off the bus, reset): stop reading it."""


class NvmlSession(Protocol):
    """What the GPU probe needs from NVML."""

    def device_count(self) -> int: ...

    def read(self, index: int) -> GpuReading:
        """The device's current state; raises ``DeviceLostError`` once it is gone."""
        ...

    def close(self) -> None: ...


class NvmlUnavailableError(Exception):
    """No NVML here: the package is not installed, the driver's library is missing, or no GPU."""


class PynvmlSession:
    """An ``NvmlSession`` over the ``pynvml`` module of nvidia-ml-py (initialised in ``__init__``)."""

    def __init__(self) -> None:
        try:
            import pynvml
        except ImportError as exc:
            raise NvmlUnavailableError(f"nvidia-ml-py is not installed ({exc})") from None
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as exc:
            raise NvmlUnavailableError(f"NVML did not initialise: {exc}") from None
        self._nvml: Any = pynvml
        self._handles: dict[int, Any] = {}

    def device_count(self) -> int:
        return int(self._nvml.nvmlDeviceGetCount())

    def _handle(self, index: int) -> Any:
        handle = self._handles.get(index)
        if handle is None:
            handle = self._handles[index] = self._nvml.nvmlDeviceGetHandleByIndex(index)
        return handle

    def _optional(self, call: Any, *args: Any) -> float | None:
        # Many boards do not report power or utilisation (NOT_SUPPORTED); the rest is still worth having.
        nvml = self._nvml
        try:
            return float(call(*args))
        except (nvml.NVMLError_NotSupported, nvml.NVMLError_NoPermission):
            return None

    def read(self, index: int) -> GpuReading:
        nvml = self._nvml
        try:
            handle = self._handle(index)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            utilization: float | None
            try:
                utilization = float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            except (nvml.NVMLError_NotSupported, nvml.NVMLError_NoPermission):
                utilization = None
            return GpuReading(
                utilization_percentage=utilization,
                memory_used_bytes=float(memory.used),
                memory_total_bytes=float(memory.total),
                power_milliwatts=self._optional(nvml.nvmlDeviceGetPowerUsage, handle),
                power_limit_milliwatts=self._optional(nvml.nvmlDeviceGetEnforcedPowerLimit, handle),
                temperature_celsius=self._optional(nvml.nvmlDeviceGetTemperature, handle, nvml.NVML_TEMPERATURE_GPU),
            )
        except nvml.NVMLError as exc:
            self._handles.pop(index, None)
            raise DeviceLostError(f"GPU {index}: {exc}") from None

    def close(self) -> None:
        try:
            self._nvml.nvmlShutdown()
        except self._nvml.NVMLError:
            pass


def open_nvml() -> NvmlSession:
    """A session on this machine's NVML; raises ``NvmlUnavailableError`` saying why there is none."""
    return PynvmlSession()
