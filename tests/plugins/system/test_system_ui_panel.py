"""The "System metrics" panel on the UI's run page, from the hook the UI calls with its run document."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

import mlflow
import pytest

import mltrack
from mltrack_system import plugin
from mltrack_system.names import PEAKS_TAG


def document(metrics: Mapping[str, float | None], tags: dict[str, str] | None = None) -> dict[str, object]:
    """The shape of the UI's run document (mltrack_ui.hookspecs.ui_run_panels)."""
    info = {"run_id": "r1", "run_name": "n", "experiment_id": "0", "status": "FINISHED"}
    return {"info": info, "params": {}, "metrics": metrics, "tags": tags or {}}


def test_the_panel_lists_each_system_metrics_latest_value_with_its_peak() -> None:
    metrics = {
        "loss": 0.25,
        "system/gpu_10_utilization_percentage": 3.0,
        "system/gpu_2_utilization_percentage": 40.0,
        "system/process_rss_megabytes": 1234.56,
        "system/cpu_utilization_percentage": 12.0,
    }
    peaks = {"system/process_rss_megabytes": 2048.0, "system/cpu_utilization_percentage": 12.0}
    panels = plugin.ui_run_panels(run=document(metrics, {PEAKS_TAG: json.dumps(peaks)}))
    assert panels == [
        {
            "title": "System metrics",
            "kind": "keyvalue",
            "data": {
                "cpu_utilization_percentage": "12.0",
                "gpu_2_utilization_percentage": "40.0",
                "gpu_10_utilization_percentage": "3.0",
                "process_rss_megabytes": "1,234.6 (peak 2,048.0)",
            },
        }
    ]


def test_a_run_without_system_metrics_gets_no_panel() -> None:
    assert plugin.ui_run_panels(run=document({"loss": 0.5})) is None


def test_a_malformed_peaks_tag_or_a_missing_value_still_gives_the_latest_values() -> None:
    panels = plugin.ui_run_panels(
        run=document({"system/cpu_utilization_percentage": None, "system/disk_usage_percentage": 7.0}, {PEAKS_TAG: "{"})
    )
    assert panels is not None
    assert panels[0]["data"] == {"cpu_utilization_percentage": "n/a", "disk_usage_percentage": "7.0"}


def test_each_ranks_peaks_show_against_its_own_metrics() -> None:
    tags = {f"{PEAKS_TAG}.rank_0": '{"system/rank_0/cpu_utilization_percentage": 90}'}
    panels = plugin.ui_run_panels(run=document({"system/rank_0/cpu_utilization_percentage": 50.0}, tags))
    assert panels is not None
    assert panels[0]["data"] == {"rank_0/cpu_utilization_percentage": "50.0 (peak 90.0)"}


def test_a_sampled_run_read_back_from_the_store_gets_its_panel(
    sqlite_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLTRACK_PLUGINS__SYSTEM__INTERVAL_S", "0.5")
    with mltrack.start_run() as run:
        time.sleep(0.7)
    stored = mlflow.MlflowClient(sqlite_uri).get_run(run.run_id)
    panels = plugin.ui_run_panels(run=document(dict(stored.data.metrics), dict(stored.data.tags)))
    assert panels is not None
    data = panels[0]["data"]
    assert {"cpu_utilization_percentage", "process_rss_megabytes", "system_memory_usage_megabytes"} <= set(data)
