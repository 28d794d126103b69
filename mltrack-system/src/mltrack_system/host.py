"""Probes of the host and of this process, read with psutil.

Each probe returns ``{name: value}`` with MLflow's system-metric names (without the ``system/``
prefix) and MLflow's units: megabytes are 10**6 bytes, percentages are 0-100. CPU figures are
computed from counters the probe keeps itself, not with ``psutil.cpu_percent()``, whose module-wide
"since the last call" state another caller in the process (MLflow's own monitor, a library) would
shorten.
"""

from __future__ import annotations

import os
import time
from typing import Any

MB = 1e6  # MLflow's system metrics use decimal megabytes


def _busy_and_total(times: Any) -> tuple[float, float]:
    fields = times._asdict()
    # On Linux, guest time is already counted in user time; counting it twice would inflate the total.
    total = sum(fields.values()) - fields.get("guest", 0.0) - fields.get("guest_nice", 0.0)
    idle = fields.get("idle", 0.0) + fields.get("iowait", 0.0)
    return total - idle, total


class CpuProbe:
    """Host CPU utilisation over the interval since the previous reading, all cores together."""

    group = "cpu"

    def __init__(self) -> None:
        import psutil

        self._cpu_times = psutil.cpu_times
        self._last = _busy_and_total(self._cpu_times())

    def read(self) -> dict[str, float]:
        busy, total = _busy_and_total(self._cpu_times())
        last_busy, last_total = self._last
        self._last = (busy, total)
        if total <= last_total:  # no clock tick since the last reading: nothing to say yet
            return {}
        share = (busy - last_busy) / (total - last_total)
        return {"cpu_utilization_percentage": min(100.0, max(0.0, share * 100))}

    def close(self) -> None:
        pass


class MemoryProbe:
    """Host memory in use (MLflow's definition: ``used`` of ``virtual_memory()``, against ``total``)."""

    group = "memory"

    def __init__(self) -> None:
        import psutil

        self._virtual_memory = psutil.virtual_memory

    def read(self) -> dict[str, float]:
        memory = self._virtual_memory()
        return {
            "system_memory_usage_megabytes": memory.used / MB,
            "system_memory_usage_percentage": memory.used / memory.total * 100 if memory.total else 0.0,
        }

    def close(self) -> None:
        pass


class DiskProbe:
    """Usage of the file system mounted at ``path``."""

    group = "disk"

    def __init__(self, path: str) -> None:
        import psutil

        self._disk_usage = psutil.disk_usage
        self._path = path

    def read(self) -> dict[str, float]:
        usage = self._disk_usage(self._path)
        return {
            "disk_usage_percentage": float(usage.percent),
            "disk_usage_megabytes": usage.used / MB,
            "disk_available_megabytes": usage.free / MB,
        }

    def close(self) -> None:
        pass


class NetworkProbe:
    """Bytes received and sent by the host since the probe was made (the run's start), as MLflow counts."""

    group = "network"

    def __init__(self) -> None:
        import psutil

        self._counters = psutil.net_io_counters
        start = self._counters()
        self._start = (start.bytes_recv, start.bytes_sent)

    def read(self) -> dict[str, float]:
        now = self._counters()
        received, sent = self._start
        # Counters wrap or reset when an interface goes away; never report negative traffic.
        return {
            "network_receive_megabytes": max(0, now.bytes_recv - received) / MB,
            "network_transmit_megabytes": max(0, now.bytes_sent - sent) / MB,
        }

    def close(self) -> None:
        pass


class ProcessProbe:
    """This process's resident memory and CPU (percent of one core, so up to 100 x cores, as ``top``)."""

    group = "process"

    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process(os.getpid())
        self._last = (self._cpu_seconds(), time.monotonic())

    def _cpu_seconds(self) -> float:
        times = self._process.cpu_times()
        return float(times.user + times.system)

    def read(self) -> dict[str, float]:
        cpu, now = self._cpu_seconds(), time.monotonic()
        last_cpu, last_now = self._last
        self._last = (cpu, now)
        values = {"process_rss_megabytes": self._process.memory_info().rss / MB}
        if now > last_now:
            values["process_cpu_utilization_percentage"] = max(0.0, (cpu - last_cpu) / (now - last_now) * 100)
        return values

    def close(self) -> None:
        pass
