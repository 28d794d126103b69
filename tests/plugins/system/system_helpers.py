"""Helpers shared by the system plugin's tests: MLflow's own system-metric names, and metric histories."""

from __future__ import annotations

from typing import Any

import mlflow


def names_from_mlflow_monitors(*monitor_classes: Any) -> set[str]:
    """The metric names MLflow's own monitors (``mlflow.system_metrics.metrics``) log on this machine."""
    names: set[str] = set()
    for monitor_class in monitor_classes:
        monitor = monitor_class()
        monitor.collect_metrics()
        names |= {f"system/{name}" for name in monitor.aggregate_metrics()}
    return names


def mlflow_host_metric_names() -> set[str]:
    """The names MLflow's CPU, disk and network monitors log, read from MLflow itself."""
    from mlflow.system_metrics.metrics.cpu_monitor import CPUMonitor
    from mlflow.system_metrics.metrics.disk_monitor import DiskMonitor
    from mlflow.system_metrics.metrics.network_monitor import NetworkMonitor

    return names_from_mlflow_monitors(CPUMonitor, DiskMonitor, NetworkMonitor)


# MLflow's GPU monitor (mlflow/system_metrics/metrics/gpu_monitor.py) needs a GPU to run; its names, per device:
MLFLOW_GPU_METRICS = (
    "memory_usage_percentage",
    "memory_usage_megabytes",
    "utilization_percentage",
    "power_usage_watts",
    "power_usage_percentage",
)


def history(uri: str, run_id: str, key: str) -> list[tuple[int, float]]:
    """``(step, value)`` of every point of ``key``, by step."""
    points = mlflow.MlflowClient(uri).get_metric_history(run_id, key)
    return sorted((m.step, m.value) for m in points)


def system_metrics(uri: str, run_id: str) -> dict[str, float]:
    run = mlflow.MlflowClient(uri).get_run(run_id)
    return {k: v for k, v in run.data.metrics.items() if k.startswith("system/")}
