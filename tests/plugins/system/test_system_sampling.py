"""Real sampling of this machine with psutil into a real sqlite store, at the shortest interval (0.5 s)."""

from __future__ import annotations

import json
import logging
import signal
import time
from pathlib import Path

import mlflow
import pytest
from conftest import run_cli, run_python

import mltrack
from mltrack_system.names import PEAKS_TAG
from mltrack_system.sampler import REGISTRY, resolve_node_id

from .conftest import sampler_threads
from .system_helpers import history, mlflow_host_metric_names, system_metrics

OURS = {"system/process_rss_megabytes", "system/process_cpu_utilization_percentage"}


@pytest.fixture
def half_second(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLTRACK_PLUGINS__SYSTEM__INTERVAL_S", "0.5")


def test_a_run_records_mlflows_system_metrics_and_the_process_under_mlflows_names(
    sqlite_uri: str, half_second: None
) -> None:
    with mltrack.start_run() as run:
        time.sleep(1.2)
    assert set(system_metrics(sqlite_uri, run.run_id)) == mlflow_host_metric_names() | OURS


def test_values_are_in_range_for_this_machine(sqlite_uri: str, half_second: None) -> None:
    import psutil

    with mltrack.start_run() as run:
        time.sleep(0.7)
    got = system_metrics(sqlite_uri, run.run_id)
    for name in ("cpu_utilization_percentage", "system_memory_usage_percentage", "disk_usage_percentage"):
        assert 0 <= got[f"system/{name}"] <= 100, name
    memory_mb = psutil.virtual_memory().total / 1e6
    assert 0 < got["system/system_memory_usage_megabytes"] < memory_mb
    assert 0 < got["system/process_rss_megabytes"] < memory_mb
    disk = psutil.disk_usage("/")
    assert got["system/disk_usage_megabytes"] + got["system/disk_available_megabytes"] <= disk.total / 1e6
    assert got["system/network_receive_megabytes"] >= 0 and got["system/network_transmit_megabytes"] >= 0
    assert got["system/process_cpu_utilization_percentage"] >= 0


def test_steps_are_the_sample_index_and_the_run_end_writes_the_last_sample(sqlite_uri: str, half_second: None) -> None:
    with mltrack.start_run() as run:
        time.sleep(1.2)
        sampler = REGISTRY.get(run.run_id)
        assert sampler is not None
        taken_while_running = sampler.steps
    points = history(sqlite_uri, run.run_id, "system/system_memory_usage_megabytes")
    assert [step for step, _ in points] == list(range(len(points)))
    assert len(points) == taken_while_running + 1 >= 2  # one every 0.5 s, then one at the end


def test_the_sampler_stops_with_the_run_and_leaves_no_thread(sqlite_uri: str, half_second: None) -> None:
    with mltrack.start_run() as run:
        assert len(sampler_threads()) == 1
    assert sampler_threads() == [] and REGISTRY.run_ids() == []
    assert mlflow.MlflowClient(sqlite_uri).get_run(run.run_id).info.status == "FINISHED"


def test_the_run_end_writes_each_metrics_peak_as_a_tag(sqlite_uri: str, half_second: None) -> None:
    with mltrack.start_run() as run:
        time.sleep(1.2)
    tags = mlflow.MlflowClient(sqlite_uri).get_run(run.run_id).data.tags
    peaks = json.loads(tags[PEAKS_TAG])
    rss = [value for _, value in history(sqlite_uri, run.run_id, "system/process_rss_megabytes")]
    assert peaks["system/process_rss_megabytes"] == pytest.approx(max(rss), abs=1e-3)


def test_only_the_configured_groups_are_sampled(
    sqlite_uri: str, half_second: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLTRACK_PLUGINS__SYSTEM__GROUPS", "memory,process")
    with mltrack.start_run() as run:
        pass
    assert set(system_metrics(sqlite_uri, run.run_id)) == {
        "system/system_memory_usage_megabytes",
        "system/system_memory_usage_percentage",
        *OURS,
    }


def test_switched_off_by_setting_no_run_is_sampled(sqlite_uri: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLTRACK_PLUGINS__SYSTEM__ENABLED", "0")
    with mltrack.start_run() as run:
        assert sampler_threads() == []
    assert system_metrics(sqlite_uri, run.run_id) == {}


def test_switched_off_for_one_run_with_configure_the_next_run_is_sampled_again(sqlite_uri: str) -> None:
    mltrack.configure(plugins={"system": {"enabled": False}})
    with mltrack.start_run() as quiet:
        pass
    mltrack.configure(plugins={"system": {"enabled": True}})
    with mltrack.start_run() as sampled:
        pass
    assert system_metrics(sqlite_uri, quiet.run_id) == {}
    assert "system/system_memory_usage_megabytes" in system_metrics(sqlite_uri, sampled.run_id)


def test_nested_runs_each_get_their_own_sampler(sqlite_uri: str, half_second: None) -> None:
    with mltrack.start_run() as parent, mltrack.start_run(nested=True) as child:
        assert sorted(REGISTRY.run_ids()) == sorted([parent.run_id, child.run_id])
        assert len(sampler_threads()) == 2
    assert sampler_threads() == []
    assert system_metrics(sqlite_uri, parent.run_id) and system_metrics(sqlite_uri, child.run_id)


def test_a_failing_reading_never_breaks_the_run_and_is_said_once_at_debug_level(
    sqlite_uri: str, half_second: None, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real failure, no fake: psutil.disk_usage raises for a path that does not exist, at every sample.
    monkeypatch.setenv("MLTRACK_PLUGINS__SYSTEM__DISK_PATH", "/no/such/mount")
    with caplog.at_level(logging.DEBUG, logger="mltrack.system"), mltrack.start_run() as run:
        time.sleep(1.2)
    got = system_metrics(sqlite_uri, run.run_id)
    assert "system/cpu_utilization_percentage" in got and not any("disk" in name for name in got)
    assert mlflow.MlflowClient(sqlite_uri).get_run(run.run_id).info.status == "FINISHED"
    said = [r for r in caplog.records if r.name == "mltrack.system" and "disk" in r.getMessage()]
    assert len(said) == 1 and said[0].levelno == logging.DEBUG
    assert len(history(sqlite_uri, run.run_id, "system/cpu_utilization_percentage")) >= 2  # read more than once


@pytest.mark.parametrize(
    ("environ", "node_id"),
    [
        ({}, ""),
        ({"RANK": "3", "WORLD_SIZE": "4"}, "rank_3"),
        ({"RANK": "0", "WORLD_SIZE": "1"}, ""),
        ({"LOCAL_RANK": "1"}, "rank_1"),
        ({"RANK": "not-a-number"}, ""),
    ],
)
def test_the_node_id_comes_from_the_rank_in_a_job_of_several_ranks(environ: dict[str, str], node_id: str) -> None:
    assert resolve_node_id("auto", environ) == node_id
    assert resolve_node_id("node-a", environ) == "node-a" and resolve_node_id("", environ) == ""


def test_each_rank_records_under_its_own_name_in_a_shared_run(
    sqlite_uri: str, half_second: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    with mltrack.start_run() as run:
        time.sleep(0.7)
    names = set(system_metrics(sqlite_uri, run.run_id))
    assert names == {name.replace("system/", "system/rank_1/") for name in mlflow_host_metric_names() | OURS}
    assert f"{PEAKS_TAG}.rank_1" in mlflow.MlflowClient(sqlite_uri).get_run(run.run_id).data.tags


def test_samples_go_through_the_spool_so_a_killed_process_keeps_them(tmp_path: Path, sqlite_uri: str) -> None:
    code = (
        "import os, signal, time, mltrack\n"
        "run = mltrack.start_run()\n"
        "print(run.run_id, flush=True)\n"
        "time.sleep(1.3)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = run_python(code, env={"MLTRACK_PLUGINS__SYSTEM__INTERVAL_S": "0.5"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    run_id = killed.stdout.split()[0]
    synced = run_cli("sync")
    assert synced.returncode == 0, synced.stderr
    assert mlflow.MlflowClient(sqlite_uri).get_run(run_id).info.status == "KILLED"
    points = history(sqlite_uri, run_id, "system/cpu_utilization_percentage")
    assert [step for step, _ in points] == list(range(len(points))) and len(points) >= 2
