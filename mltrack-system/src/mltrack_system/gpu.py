"""The GPU probe: per-device utilisation, memory, power and temperature through the NVML seam.

Names follow MLflow's GPU monitor (``gpu_<index>_utilization_percentage``, ...), plus two it does
not record: ``gpu_<index>_memory_total_megabytes`` and ``gpu_<index>_temperature_celsius``.
"""

from __future__ import annotations

import logging

from mltrack_system import nvml

logger = logging.getLogger("mltrack.system")

_said_no_gpu = False  # the "no GPU metrics" line is said once per process, not once per run


class GpuProbe:
    """Reads every device NVML listed when the probe was made; a device that stops answering is dropped."""

    group = "gpu"

    def __init__(self, session: nvml.NvmlSession) -> None:
        self._session = session
        self._devices = list(range(session.device_count()))

    @property
    def devices(self) -> list[int]:
        return list(self._devices)

    def read(self) -> dict[str, float]:
        values: dict[str, float] = {}
        for index in list(self._devices):
            try:
                reading = self._session.read(index)
            except Exception as exc:  # gone for good or not, a device that failed once is not read again
                self._devices.remove(index)
                logger.debug("mltrack system metrics: GPU %d stopped answering (%s); its metrics stop here", index, exc)
                continue
            values.update(device_metrics(index, reading))
        return values

    def close(self) -> None:
        self._session.close()


def device_metrics(index: int, reading: nvml.GpuReading) -> dict[str, float]:
    """One device's reading as metrics, in MLflow's names and units (megabytes of 10**6 bytes, watts)."""
    prefix = f"gpu_{index}_"
    values = {prefix + "memory_usage_megabytes": reading.memory_used_bytes / 1e6}
    if reading.memory_total_bytes > 0:
        values[prefix + "memory_usage_percentage"] = reading.memory_used_bytes / reading.memory_total_bytes * 100
        values[prefix + "memory_total_megabytes"] = reading.memory_total_bytes / 1e6
    if reading.utilization_percentage is not None:
        values[prefix + "utilization_percentage"] = reading.utilization_percentage
    if reading.power_milliwatts is not None:
        values[prefix + "power_usage_watts"] = reading.power_milliwatts / 1000
        if reading.power_limit_milliwatts:
            values[prefix + "power_usage_percentage"] = reading.power_milliwatts / reading.power_limit_milliwatts * 100
    if reading.temperature_celsius is not None:
        values[prefix + "temperature_celsius"] = reading.temperature_celsius
    return values


def open_gpu_probe() -> GpuProbe | None:
    """A probe of this machine's NVIDIA GPUs, or None (with one debug line per process) where there are none."""
    global _said_no_gpu
    reason: str
    try:
        session = nvml.open_nvml()
    except nvml.NvmlUnavailableError as exc:
        reason = str(exc)
    else:
        try:
            if session.device_count() > 0:
                return GpuProbe(session)
            reason = "NVML lists no device"
        except Exception as exc:
            reason = f"NVML could not list devices ({exc})"
        session.close()
    if not _said_no_gpu:
        _said_no_gpu = True
        logger.debug("mltrack system metrics: no GPU metrics: %s", reason)
    return None
