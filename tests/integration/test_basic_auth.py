"""MLflow's own authentication (``mlflow server --app-name basic-auth``) end to end.

A real basic-auth tracking server (sqlite backend, its own user database from a
``basic_auth.ini`` in a temporary folder) with an admin and one user. With
``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` set, MLTrack's writer (thread and
process), ``mltrack sync`` and the UI work; with wrong or missing ones every entry point fails
with one line naming the server and the variables to set, and nothing a process accepted is lost.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import fresh_sqlite_uri, run_cli

import mltrack
from mltrack.testing.servers import MlflowServer

pytestmark = pytest.mark.server

ADMIN = ("admin", "admin-password-for-tests-1")
USER = ("alice", "alice-password-for-tests-1")
POINTS = 3_000


@dataclass
class AuthServer:
    url: str

    def env(self, user: tuple[str, str] | None = USER) -> dict[str, str]:
        """The environment of a process logging as ``user`` (None: no credentials at all)."""
        env = {"MLTRACK_TRACKING_URI": self.url}
        if user is not None:
            env.update({"MLFLOW_TRACKING_USERNAME": user[0], "MLFLOW_TRACKING_PASSWORD": user[1]})
        return env


def _as_admin(url: str, path: str, body: dict[str, Any]) -> None:
    token = base64.b64encode(f"{ADMIN[0]}:{ADMIN[1]}".encode()).decode()
    request = urllib.request.Request(
        url + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Basic {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


@pytest.fixture(scope="module")
def auth_server(_sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    folder = tmp_path_factory.mktemp("basic-auth")
    config = folder / "basic_auth.ini"
    # MLflow creates the admin from this file the first time it starts on an empty user database.
    config.write_text(
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{folder / 'auth.db'}\n"
        f"admin_username = {ADMIN[0]}\n"
        f"admin_password = {ADMIN[1]}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        # a password check is a PBKDF2 hash (tens of ms of CPU): once a minute per user, not per request
        "auth_cache_ttl_seconds = 60\n"
    )
    server = MlflowServer(
        fresh_sqlite_uri(_sqlite_template, folder),
        folder / "artifacts",
        app_name="basic-auth",
        env={"MLFLOW_AUTH_CONFIG_PATH": str(config), "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16)},
    )
    server.start()
    try:
        _as_admin(server.url, "/api/2.0/mlflow/users/create", {"username": USER[0], "password": USER[1]})
        yield AuthServer(server.url)
    finally:
        server.stop()


@pytest.fixture
def as_admin(auth_server: AuthServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An ``MlflowClient`` of this test process, reading the server as its admin."""
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN[0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN[1])
    return MlflowClient(auth_server.url)


TRAIN = """
import sys
from pathlib import Path
import mltrack
experiment, points = sys.argv[1], int(sys.argv[2])
Path("notes.txt").write_text("logged through basic-auth")
with mltrack.start_run("authenticated", experiment=experiment) as run:
    mltrack.log_params({"lr": 0.1, "layers": 3})
    for step in range(points):
        mltrack.log_metric("loss", 1.0 / (step + 1), step=step)
    mltrack.log_artifact("notes.txt")
print(run.run_id)
"""


def train(auth_server: AuthServer, tmp_path: Path, experiment: str, **env: str) -> str:
    script = tmp_path / "train.py"
    script.write_text(TRAIN)
    result = subprocess.run(
        [sys.executable, str(script), experiment, str(POINTS)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, **auth_server.env(), **env},
        timeout=300,  # a few seconds on an idle machine; a shared CI machine can be far slower
    )
    assert result.returncode == 0, (result.stdout[-1000:], result.stderr[-3000:])
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("writer", ["thread", "process"])
def test_the_writer_logs_everything_with_credentials(
    auth_server: AuthServer, as_admin: Any, tmp_path: Path, writer: str
) -> None:
    run_id = train(auth_server, tmp_path, f"basic-auth-{writer}", MLTRACK_WRITER=writer)

    run = as_admin.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"lr": "0.1", "layers": "3"}
    steps = sorted(m.step for m in as_admin.get_metric_history(run_id, "loss"))
    assert steps == list(range(POINTS))
    assert [f.path for f in as_admin.list_artifacts(run_id)] == ["notes.txt"]


CRASH = """
import sys, time
import mltrack
run = mltrack.start_run("killed", experiment=sys.argv[1])
mltrack.log_param("lr", 0.1)
for step in range(int(sys.argv[2])):
    mltrack.log_metric("loss", 1.0 / (step + 1), step=step)
print(run.run_id, flush=True)
time.sleep(300)
"""


def test_mltrack_sync_delivers_a_killed_run_only_with_credentials(
    auth_server: AuthServer, as_admin: Any, tmp_path: Path
) -> None:
    # A thread writer that would flush once a minute: at the kill, the points are in the spool only.
    env = {**os.environ, **auth_server.env(), "MLTRACK_FLUSH_INTERVAL_MS": "60000", "MLTRACK_WRITER": "thread"}
    child = subprocess.Popen(
        [sys.executable, "-c", CRASH, "basic-auth-sync", str(POINTS)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    run_id = child.stdout.readline().strip()
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=60)
    assert run_id, "the child did not start its run"

    refused = run_cli("sync", env=auth_server.env((USER[0], "not-the-password")))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    [error] = [line for line in refused.stderr.splitlines() if line.startswith("Error:")]
    assert auth_server.url in error and "refused the credentials of user 'alice'" in error
    assert "MLFLOW_TRACKING_USERNAME" in error and "MLFLOW_TRACKING_PASSWORD" in error
    assert as_admin.get_run(run_id).info.status == "RUNNING"  # nothing written, the spool kept

    result = run_cli("sync", "--json", env=auth_server.env())
    assert result.returncode == 0, result.stderr
    [report] = json.loads(result.stdout)
    assert report["run_id"] == run_id and report["status_set"] == "KILLED" and report["metrics"] == POINTS
    run = as_admin.get_run(run_id)
    assert run.info.status == "KILLED" and run.data.params == {"lr": "0.1"}
    assert sorted(m.step for m in as_admin.get_metric_history(run_id, "loss")) == list(range(POINTS))


@pytest.fixture(scope="module")
def logged_run(auth_server: AuthServer, tmp_path_factory: pytest.TempPathFactory) -> str:
    return train(auth_server, tmp_path_factory.mktemp("ui-run"), "basic-auth-ui")


def serve_ui(uri: str) -> Any:
    from mltrack_ui.app import create_app
    from mltrack_ui.background_server import BackgroundServer

    return BackgroundServer(create_app(tracking_uri=uri))


def get_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_ui_shows_runs_metrics_and_artifacts_with_credentials(
    auth_server: AuthServer, logged_run: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in auth_server.env().items():
        monkeypatch.setenv(name, value)
    with serve_ui(auth_server.url) as ui:
        status, run = get_json(f"{ui.url}/api/runs/{logged_run}")
        assert status == 200 and run["params"] == {"lr": "0.1", "layers": "3"}
        status, listing = get_json(f"{ui.url}/api/runs?experiment_ids={run['experiment_id']}")
        assert status == 200 and [r["run_id"] for r in listing["runs"]] == [logged_run]
        status, history = get_json(f"{ui.url}/api/metrics/history?run_ids={logged_run}&keys=loss")
        assert status == 200 and history["series"][0]["total"] == POINTS
        status, preview = get_json(f"{ui.url}/api/runs/{logged_run}/artifacts/preview?path=notes.txt")
        assert status == 200 and preview["content"] == "logged through basic-auth"


@pytest.mark.parametrize("user", [(USER[0], "not-the-password"), None], ids=["wrong-password", "no-credentials"])
def test_wrong_credentials_are_one_line_naming_the_server_and_the_variables(
    auth_server: AuthServer, monkeypatch: pytest.MonkeyPatch, user: tuple[str, str] | None
) -> None:
    env = auth_server.env(user)
    expected = "refused the credentials of user 'alice'" if user else "requires a login"

    cli = run_cli("runs", "list", env=env)
    assert cli.returncode == 1 and "Traceback" not in cli.stderr
    error, hint = cli.stderr.strip().splitlines()
    assert error.startswith("Error: the tracking server at " + auth_server.url) and expected in error
    assert "MLFLOW_TRACKING_USERNAME" in hint and "MLFLOW_TRACKING_PASSWORD" in hint

    for name in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(mltrack.StoreError, match=expected) as refused:
        mltrack.start_run(experiment="basic-auth-refused")
    assert "MLFLOW_TRACKING_PASSWORD" in str(refused.value.hint)
    with serve_ui(auth_server.url) as ui:
        status, body = get_json(f"{ui.url}/api/runs")
        assert status == 502 and expected in body["error"] and "MLFLOW_TRACKING_USERNAME" in body["hint"]


def test_a_run_in_an_experiment_the_user_may_not_edit_is_refused_until_an_admin_grants_edit(
    auth_server: AuthServer, as_admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    experiment_id = as_admin.create_experiment(f"admins-only-{secrets.token_hex(4)}")  # alice may only READ it
    for name, value in auth_server.env().items():
        monkeypatch.setenv(name, value)
    with pytest.raises(mltrack.StoreError, match="403") as refused:
        mltrack.start_run(experiment_id=experiment_id)
    assert auth_server.url in str(refused.value) and "Permission denied" in str(refused.value)

    # what docs/team-server.md tells an admin to do
    from mlflow.server import get_app_client

    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", ADMIN[0])
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN[1])
    get_app_client("basic-auth", tracking_uri=auth_server.url).grant_user_permission(
        USER[0], "experiment", experiment_id, "EDIT"
    )
    for name, value in auth_server.env().items():
        monkeypatch.setenv(name, value)
    with mltrack.start_run(experiment_id=experiment_id) as run:
        mltrack.log_metric("loss", 0.5)
    assert as_admin.get_run(run.run_id).info.status == "FINISHED"
