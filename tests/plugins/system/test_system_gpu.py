"""GPU metrics. The fake stands at the single seam of the NVML calls, ``mltrack_system.nvml.open_nvml``:
everything behind it (device listing, per-device reads, naming, a device that disappears) is the real
code; the last test runs the real NVML calls where a GPU is present."""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from dataclasses import dataclass

import mlflow
import pytest

import mltrack
from mltrack_system import gpu, nvml
from mltrack_system.nvml import DeviceLostError, GpuReading, NvmlUnavailableError

from .system_helpers import MLFLOW_GPU_METRICS, history, names_from_mlflow_monitors, system_metrics

OUR_GPU_METRICS = ("memory_total_megabytes", "temperature_celsius")


@dataclass
class FakeDevice:
    used_mb: float = 1_000.0
    total_mb: float = 80_000.0
    utilization: float | None = 50.0
    power_w: float | None = 300.0
    limit_w: float | None = 700.0
    temperature: float | None = 60.0
    answers: int | None = None  # reads before the device disappears; None: it stays


class FakeNvml:
    """What ``open_nvml()`` returns on a machine with these devices."""

    def __init__(self, *devices: FakeDevice) -> None:
        self.devices = devices
        self.reads: Counter[int] = Counter()
        self.closed = 0

    def device_count(self) -> int:
        return len(self.devices)

    def read(self, index: int) -> GpuReading:
        device = self.devices[index]
        self.reads[index] += 1
        if device.answers is not None and self.reads[index] > device.answers:
            raise DeviceLostError(f"GPU {index}: GPU is lost")
        return GpuReading(
            utilization_percentage=device.utilization,
            memory_used_bytes=device.used_mb * 1e6,
            memory_total_bytes=device.total_mb * 1e6,
            power_milliwatts=None if device.power_w is None else device.power_w * 1000,
            power_limit_milliwatts=None if device.limit_w is None else device.limit_w * 1000,
            temperature_celsius=device.temperature,
        )

    def close(self) -> None:
        self.closed += 1


@pytest.fixture
def fake_gpus(monkeypatch: pytest.MonkeyPatch) -> FakeNvml:
    monkeypatch.setenv("MLTRACK_PLUGINS__SYSTEM__INTERVAL_S", "0.5")
    monkeypatch.setenv("MLTRACK_PLUGINS__SYSTEM__GROUPS", "gpu")
    fake = FakeNvml(
        FakeDevice(used_mb=4_000, utilization=90),
        FakeDevice(used_mb=2_000, utilization=10, answers=1),
        FakeDevice(used_mb=40_000, utilization=None, power_w=None, temperature=None),
    )
    monkeypatch.setattr(nvml, "open_nvml", lambda: fake)
    return fake


def gpu_names(index: int, metrics: tuple[str, ...]) -> set[str]:
    return {f"system/gpu_{index}_{name}" for name in metrics}


def test_every_device_is_recorded_under_mlflows_gpu_names_plus_total_memory_and_temperature(
    sqlite_uri: str, fake_gpus: FakeNvml
) -> None:
    with mltrack.start_run() as run:
        time.sleep(0.7)
    got = system_metrics(sqlite_uri, run.run_id)
    assert gpu_names(0, MLFLOW_GPU_METRICS + OUR_GPU_METRICS) <= set(got)
    assert got["system/gpu_0_memory_usage_megabytes"] == pytest.approx(4_000)
    assert got["system/gpu_0_memory_usage_percentage"] == pytest.approx(5.0)
    assert got["system/gpu_0_memory_total_megabytes"] == pytest.approx(80_000)
    assert got["system/gpu_0_utilization_percentage"] == 90
    assert got["system/gpu_0_power_usage_watts"] == pytest.approx(300)
    assert got["system/gpu_0_power_usage_percentage"] == pytest.approx(300 / 700 * 100)
    assert got["system/gpu_0_temperature_celsius"] == 60
    assert fake_gpus.closed == 1  # the NVML session ends with the run


def test_values_a_device_does_not_report_are_left_out(sqlite_uri: str, fake_gpus: FakeNvml) -> None:
    with mltrack.start_run() as run:
        pass
    assert {name for name in system_metrics(sqlite_uri, run.run_id) if "gpu_2" in name} == gpu_names(
        2, ("memory_usage_megabytes", "memory_usage_percentage", "memory_total_megabytes")
    )


def test_a_device_that_disappears_stops_its_metrics_and_the_others_go_on(
    sqlite_uri: str, fake_gpus: FakeNvml, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG), mltrack.start_run() as run:
        time.sleep(1.2)
    assert [step for step, _ in history(sqlite_uri, run.run_id, "system/gpu_1_utilization_percentage")] == [0]
    assert len(history(sqlite_uri, run.run_id, "system/gpu_0_utilization_percentage")) >= 3
    assert fake_gpus.reads[1] == 2  # read once more, found gone, never asked again
    assert mlflow.MlflowClient(sqlite_uri).get_run(run.run_id).info.status == "FINISHED"
    assert [r.getMessage() for r in caplog.records if r.levelno > logging.DEBUG and "GPU" in r.getMessage()] == []
    assert any("GPU 1 stopped answering" in r.getMessage() for r in caplog.records)


def test_nvml_listing_no_device_gives_no_gpu_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeNvml()
    monkeypatch.setattr(nvml, "open_nvml", lambda: fake)
    assert gpu.open_gpu_probe() is None
    assert fake.closed == 1


def test_without_nvml_there_are_no_gpu_metrics_and_one_debug_line(
    sqlite_uri: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # nvidia-ml-py not installed: its import fails
    monkeypatch.setattr(gpu, "_said_no_gpu", False)
    with caplog.at_level(logging.DEBUG, logger="mltrack.system"):
        with mltrack.start_run() as first:
            pass
        with mltrack.start_run() as second:
            pass
    for run in (first, second):
        assert not any("gpu" in name for name in system_metrics(sqlite_uri, run.run_id))
        assert mlflow.MlflowClient(sqlite_uri).get_run(run.run_id).info.status == "FINISHED"
    said = [r for r in caplog.records if "no GPU metrics" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.DEBUG
    assert "nvidia-ml-py is not installed" in said[0].getMessage()


def real_nvml() -> nvml.NvmlSession | None:
    try:
        return nvml.open_nvml()
    except NvmlUnavailableError:
        return None


def test_without_an_nvidia_driver_the_real_seam_says_nvml_is_unavailable() -> None:
    session = real_nvml()
    if session is not None:
        session.close()
        pytest.skip("this machine has NVML: the gpu-marked test covers it")
    with pytest.raises(NvmlUnavailableError, match=r"NVML did not initialise|nvidia-ml-py is not installed"):
        nvml.open_nvml()
    assert gpu.open_gpu_probe() is None


@pytest.mark.gpu
def test_real_nvml_reads_every_device_under_the_names_mlflows_own_monitor_uses(sqlite_uri: str) -> None:
    session = real_nvml()
    if session is None or session.device_count() == 0:
        pytest.skip("no NVIDIA GPU with its driver here")
    count = session.device_count()
    for index in range(count):
        reading = session.read(index)
        assert 0 < reading.memory_used_bytes <= reading.memory_total_bytes
        assert reading.utilization_percentage is None or 0 <= reading.utilization_percentage <= 100
        assert reading.temperature_celsius is None or 0 < reading.temperature_celsius < 130
    session.close()

    from mlflow.system_metrics.metrics.gpu_monitor import GPUMonitor

    theirs = names_from_mlflow_monitors(GPUMonitor)
    with mltrack.start_run() as run:
        pass
    ours = set(system_metrics(sqlite_uri, run.run_id))
    assert theirs <= ours
    assert {f"system/gpu_{i}_memory_usage_megabytes" for i in range(count)} <= ours
