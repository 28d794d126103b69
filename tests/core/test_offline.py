"""Offline runs: recorded in the local spool only, created in the store by `mltrack sync`.

Every test records with the real spool and syncs with the real `mltrack sync` command into a
real store (sqlite, and `mlflow server` on PostgreSQL where the store matters).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import numpy as np
import pandas as pd
import pytest
from conftest import fresh_sqlite_uri, run_cli

import mltrack
from mltrack.storage.spool import SPOOL_ID_TAG

ROOT = Path(__file__).resolve().parents[2]
USER_GUIDE = ROOT / "docs" / "user-guide.md"
FRAME = pd.DataFrame({"a": [1.0, 2.0, 3.0]})


def now_ms() -> int:
    return int(time.time() * 1000)


def sync(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> list[dict[str, Any]]:
    result = run_cli("sync", "--json", *args, env=env, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def spools(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / ".mltrack" / "spool").glob("offline-*/*"))


def runs_with_spool_id(client: mlflow.MlflowClient, spool_id: str) -> list[Any]:
    experiments = [e.experiment_id for e in client.search_experiments()]
    return list(client.search_runs(experiments, filter_string=f"tags.`{SPOOL_ID_TAG}` = '{spool_id}'"))


@pytest.fixture
def silent_server() -> Iterator[tuple[str, socket.socket]]:
    """A tracking URI whose port accepts connections and never answers (a hung server): any
    attempt to use it would hang, and its pending connections show whether anyone tried."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.setblocking(False)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", listener
    finally:
        listener.close()


def nobody_connected(listener: socket.socket) -> bool:
    try:
        listener.accept()[0].close()
    except BlockingIOError:
        return True
    return False


def test_an_offline_run_is_created_by_sync_with_everything_it_recorded(tracking_uri: str, tmp_path: Path) -> None:
    mltrack.configure(mode="offline")
    (tmp_path / "notes.txt").write_text("trained offline")
    with mltrack.start_run(
        "laptop", experiment="offline-e2e", tags={"team": "vision"}, description="on a train"
    ) as run:
        mltrack.log_params({"lr": 0.01, "opt": {"name": "adam"}})
        for step in range(50):
            mltrack.log_metric("loss", 1.0 / (step + 1), step=step, timestamp=1_700_000_000_000 + step)
        mltrack.set_tag("phase", "done")
        mltrack.log_artifact(tmp_path / "notes.txt", "docs")
        mltrack.log_dict({"layers": [64, 32]}, "config/model.json")
        model = mltrack.log_model(lambda frame: np.asarray(frame["a"]) * 2, "model")
        with mltrack.start_run("fold-1", nested=True) as child:
            mltrack.log_metric("fold_acc", 0.9)
    ended_by = now_ms()
    assert run.run_id.startswith("offline-") and child.run_id.startswith("offline-")
    assert model.model_uri == f"runs:/{run.run_id}/model"
    client = mlflow.MlflowClient(tracking_uri)
    assert client.get_experiment_by_name("offline-e2e") is None  # nothing reached the store

    reports = {r["offline_run_id"]: r for r in sync()}

    report = reports[run.run_id]
    assert report["created"] is True
    assert (report["metrics"], report["params"], report["status_set"]) == (50, 2, "FINISHED")
    synced = client.get_run(report["run_id"])
    assert client.get_experiment(synced.info.experiment_id).name == "offline-e2e"
    assert synced.info.run_name == "laptop"
    assert synced.info.status == "FINISHED"
    assert synced.info.start_time == run.start_time
    assert run.start_time <= synced.info.end_time <= ended_by  # when it ended, not when it was synced
    assert synced.data.params == {"lr": "0.01", "opt.name": "adam"}
    tags = synced.data.tags
    assert (tags["team"], tags["phase"], tags["mlflow.note.content"]) == ("vision", "done", "on a train")
    assert tags["mltrack.version"] == mltrack.__version__  # the context tags
    assert tags[SPOOL_ID_TAG] == run.run_id.removeprefix("offline-")
    history = sorted(client.get_metric_history(synced.info.run_id, "loss"), key=lambda m: m.step)
    assert [(m.step, m.timestamp, m.value) for m in history] == [
        (s, 1_700_000_000_000 + s, 1.0 / (s + 1)) for s in range(50)
    ]
    downloaded = Path(client.download_artifacts(synced.info.run_id, "", str(tmp_path / "downloaded")))
    assert report["artifacts"] == sum(1 for f in downloaded.rglob("*") if f.is_file())
    assert (downloaded / "docs" / "notes.txt").read_text() == "trained offline"
    assert json.loads((downloaded / "config" / "model.json").read_text()) == {"layers": [64, 32]}
    loaded = mlflow.pyfunc.load_model(str(downloaded / "model"))
    np.testing.assert_allclose(loaded.predict(FRAME), [2.0, 4.0, 6.0])
    child_run = client.get_run(reports[child.run_id]["run_id"])
    assert child_run.data.tags["mlflow.parentRunId"] == synced.info.run_id
    assert child_run.info.experiment_id == synced.info.experiment_id
    assert child_run.data.metrics == {"fold_acc": 0.9}

    assert sync() == []  # the second sync has nothing left to do
    assert len(runs_with_spool_id(client, tags[SPOOL_ID_TAG])) == 1
    mltrack.configure(mode="online")
    assert mltrack.get_run(run.run_id).info.run_id == synced.info.run_id  # the offline id finds it


def test_a_sync_interrupted_after_creating_the_run_creates_no_second_one(sqlite_uri: str, tmp_path: Path) -> None:
    with mltrack.start_run("once", experiment="offline-idempotent", mode="offline") as run:
        mltrack.log_param("p", 1)
        for step in range(20):
            mltrack.log_metric("m", float(step), step=step)
    (folder,) = spools(tmp_path)
    copy = tmp_path / "spool-copy"
    shutil.copytree(folder, copy)
    (first,) = sync()
    # as if the first sync had been killed after creating the run, before removing the spool
    shutil.copytree(copy, folder)
    (again,) = sync()
    assert (first["created"], again["created"]) == (True, False)
    assert again["run_id"] == first["run_id"]
    client = mlflow.MlflowClient(sqlite_uri)
    assert [r.info.run_id for r in runs_with_spool_id(client, run.run_id.removeprefix("offline-"))] == [first["run_id"]]
    assert [m.step for m in client.get_metric_history(first["run_id"], "m")] == list(range(20))
    assert spools(tmp_path) == []


CHILD = """
import mmap, os, struct, sys, time
import mltrack
counter = mmap.mmap(os.open(sys.argv[1], os.O_RDWR), 8)
run = mltrack.start_run("killed-offline", experiment="offline-killed")
mltrack.log_param("total", 100_000)
print(run.run_id, flush=True)
for i in range(100_000):
    mltrack.log_metric("loss", 1.0 / (i + 1), step=i)
    struct.pack_into("<q", counter, 0, i + 1)
    if i == 2_000:
        time.sleep(120)  # killed here (or earlier)
"""


def test_a_run_killed_while_offline_is_synced_killed_with_every_point_it_accepted(
    tracking_uri: str, tmp_path: Path
) -> None:
    counter = tmp_path / "counter"
    counter.write_bytes(bytes(8))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(counter)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "MLTRACK_MODE": "offline"},
    )
    assert child.stdout is not None
    offline_id = child.stdout.readline().strip()
    assert offline_id.startswith("offline-"), child.communicate()[1]
    deadline = time.monotonic() + 60
    while int.from_bytes(counter.read_bytes(), "little") < 1_000:
        assert time.monotonic() < deadline, "the child did not log in time"
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=60)
    returned = int.from_bytes(counter.read_bytes(), "little")

    (report,) = sync()

    assert (report["offline_run_id"], report["created"], report["status_set"]) == (offline_id, True, "KILLED")
    client = mlflow.MlflowClient(tracking_uri)
    run = client.get_run(report["run_id"])
    assert run.info.status == "KILLED"
    assert run.info.run_name == "killed-offline"
    assert run.data.params == {"total": "100000"}
    assert "stopped without ending the run" in run.data.tags["mltrack.killed.reason"]
    assert run.data.tags["mltrack.killed.detected_by"] == "mltrack sync"
    steps = sorted(m.step for m in client.get_metric_history(run.info.run_id, "loss"))
    assert steps[:returned] == list(range(returned))  # every call that returned, at most one more
    assert returned <= len(steps) <= returned + 1
    assert spools(tmp_path) == []


def test_offline_mode_never_contacts_an_unanswering_server_and_sync_keeps_the_run_until_it_can(
    silent_server: tuple[str, socket.socket],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    uri, listener = silent_server
    mltrack.configure(mode="offline", tracking_uri=uri)
    with mltrack.start_run("warm-up"):  # loads the plugins, outside the measurement
        pass
    started = time.monotonic()
    with mltrack.start_run("no-server") as run:
        mltrack.log_params({"a": 1})
        for step in range(1_000):
            mltrack.log_metric("loss", 0.5, step=step)
        mltrack.set_tag("t", "v")
        mltrack.flush()
    elapsed = time.monotonic() - started
    # online, the same calls would hang on this server (MLflow's HTTP timeout is minutes)
    assert elapsed < 2.0, f"offline start_run/log/end_run took {elapsed:.2f}s"
    time.sleep(0.3)  # a background writer, had one been started, would have tried by now
    assert nobody_connected(listener)
    assert [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")] == []
    assert capfd.readouterr().err == ""

    listener.close()  # the server is gone for good: `mltrack sync` fails at once and keeps the runs
    result = run_cli("sync", env={"MLTRACK_MODE": "offline"})
    assert result.returncode == 1
    assert f"cannot reach the tracking server at {uri}" in result.stderr
    assert "run `mltrack sync` again" in result.stderr
    assert len(spools(tmp_path)) == 2
    listed = run_cli("sync", "--dry-run", "--json")
    assert run.run_id in {row["run_id"] for row in json.loads(listed.stdout)}


def test_reading_or_registering_an_offline_run_says_it_is_offline_and_keeps_the_model(
    silent_server: tuple[str, socket.socket], tmp_path: Path
) -> None:
    uri, listener = silent_server
    with mltrack.start_run("reader", tracking_uri=uri, mode="offline") as run:
        with pytest.raises(mltrack.RunNotFoundError, match=r"is offline: reading the run needs") as caught:
            mltrack.get_run(run.run_id)
        assert caught.value.hint is not None and "mltrack sync" in caught.value.hint
        with pytest.raises(mltrack.MLTrackError, match=r"saved in offline run offline-\w+.*registering"):
            mltrack.log_model(lambda frame: frame, "model", registered_model_name="churn")
        with pytest.raises(mltrack.RunNotFoundError, match=r"MlflowClient.get_metric_history"):
            run.store.client.get_metric_history(run.run_id, "loss")  # what plugins reach for
    (folder,) = spools(tmp_path)
    assert (folder / "artifacts" / "model" / "MLmodel").is_file()  # saved, to be uploaded by sync
    assert nobody_connected(listener)


def test_offline_settings_and_arguments_are_checked_at_start_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLTRACK_MODE", "offline")
    monkeypatch.setenv("MLTRACK_SPOOL", "0")
    with pytest.raises(mltrack.ConfigError, match=r"'mode'.*set spool = true"):
        mltrack.start_run()
    monkeypatch.delenv("MLTRACK_SPOOL")
    mltrack.configure(tracking_uri="http://127.0.0.1:9")
    with pytest.raises(mltrack.InvalidInputError, match=r"mode 'later': must be 'online' or 'offline'"):
        mltrack.start_run(mode="later")
    with pytest.raises(mltrack.MLTrackError, match=r"cannot resume run abc offline"):
        mltrack.start_run(run_id="abc")
    with mltrack.start_run(), pytest.raises(mltrack.InvalidInputError, match=r"child of an offline run"):
        mltrack.start_run(nested=True, mode="online")


def offline_section() -> str:
    guide = USER_GUIDE.read_text()
    match = re.search(r"^## Offline runs\n(.*?)(?=^## )", guide, re.MULTILINE | re.DOTALL)
    assert match, "docs/user-guide.md has no '## Offline runs' section"
    return match.group(1)


def test_the_user_guide_offline_example_runs_and_syncs_as_written(_sqlite_template: Path, tmp_path: Path) -> None:
    code = re.search(r"^```python\n(.*?)^```", offline_section(), re.MULTILINE | re.DOTALL)
    assert code
    script = tmp_path / "train_offline.py"
    script.write_text(code.group(1))
    env = {k: v for k, v in os.environ.items() if k not in ("MLTRACK_TRACKING_URI", "MLFLOW_TRACKING_URI")}
    recorded = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120
    )
    assert recorded.returncode == 0, recorded.stderr
    assert recorded.stdout.startswith("offline-")
    assert not (tmp_path / "mlflow.db").exists()  # offline: the default store was not touched
    uri = fresh_sqlite_uri(_sqlite_template, tmp_path)  # the same file, migrated already (faster)

    (report,) = sync(env=env, cwd=tmp_path)

    assert report["created"] and report["status_set"] == "FINISHED"
    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("offline-demo")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.run_id == report["run_id"]
    assert run.data.params == {"lr": "0.01", "epochs": "3"}
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["notes.txt"]
